//! Conformance: the case loader, the runner against the emulator and real QEMU 7.2, the
//! reports (JUnit, Markdown, JSON) and shard merging.
//!
//! Known divergences are listed with a reason each (never `#[ignore]`): a run must fail
//! exactly the listed cases, so a divergence that starts passing fails the test too.

mod support;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmpcheck::conform::case::{builtin_cases, load_dir, parse_cases};
use qmpcheck::conform::generated::{plan, Plan, PlannedStep, StepRole, GROUP_CAMPAIGN, GROUP_NO_DEVICE};
use qmpcheck::conform::{
    run, CaseLoadError, CaseResult, CommandNote, CommandSummary, ConformError, ConformOptions, ConformRun,
    Outcome, Shard, SkipList, TargetSpec,
};
use qmpcheck::gen::{SafetyRules, Verdict};
use qmpcheck::report;
use qmpcheck::spec::Spec;
use qmpcheck::target::emulator::EmulatorConfig;
use qmpcheck::target::{Binary, Target};
use qmpcheck::wire::{Client, ClientConfig, Message};

// ---- loader -------------------------------------------------------------------------------

fn problems(text: &str) -> Vec<String> {
    match parse_cases(text, "t.toml") {
        Ok(cases) => panic!("expected problems, loaded {} cases", cases.len()),
        Err(p) => p.iter().map(|p| p.to_string()).collect(),
    }
}

const GOOD_STEP: &str = "[[case.step]]\nsend = '{}'\n";

#[test]
fn loader_rejects_unknown_and_missing_rules_with_line() {
    let text = format!(
        "[[case]]\nid = \"a\"\nrule = \"K1\"\ndescription = \"d\"\n{GOOD_STEP}\n[[case]]\nid = \"b\"\ndescription = \"d\"\n{GOOD_STEP}"
    );
    assert_eq!(
        problems(&text),
        vec![
            "t.toml:3: case.rule: unknown rule `K1` (expected one of W1-W5, S1-S4, C1-C6, E1-E3, O1-O3)",
            "t.toml:8: case.rule: missing: every case must cite a rule of qmp-rules.md",
        ]
    );
}

#[test]
fn loader_rejects_malformed_steps_with_field_and_reason() {
    let text = "[[case]]\nid = \"a\"\nrule = \"W1\"\ndescription = \"d\"\n\
                [[case.step]]\nsend = 'x'\nquiet_ms = 5\n\
                [[case.step]]\nsend_bytes = 'ab\\q'\n\
                [[case.step]]\nreply = { id = 1, class = \"Bogus\" }\n\
                [[case.step]]\nreply = { id = 1, no_id = true, class = \"ok\" }\n\
                [[case.step]]\nreply = { id = 1, class = \"GenericError\", returns = \"object\" }\n";
    assert_eq!(
        problems(text),
        vec![
            "t.toml:5: case.step: a step needs exactly one of send, send_bytes, pause_ms, greeting, reply, event, quiet_ms",
            "t.toml:8: case.step.send_bytes: unknown escape `\\q` at offset 2",
            "t.toml:10: case.step.reply.class: unknown class `Bogus` (ok, error, or one of GenericError, \
             CommandNotFound, DeviceNotActive, DeviceNotFound, KVMMissingCap)",
            "t.toml:12: case.step.reply: give exactly one of id, id_json, no_id = true",
            "t.toml:14: case.step.reply: returns/keys only apply to class = \"ok\"",
        ]
    );
}

#[test]
fn loader_reports_toml_errors_and_unknown_fields_with_line() {
    let syntax = problems("[[case]]\nid = \"a\"\nrule = W1\n");
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].starts_with("t.toml:3: "), "{}", syntax[0]);
    let unknown = problems(&format!(
        "[[case]]\nid = \"a\"\nrule = \"W1\"\ndescription = \"d\"\nnegociate = false\n{GOOD_STEP}"
    ));
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].starts_with("t.toml:5: unknown field `negociate`"), "{}", unknown[0]);
}

#[test]
fn loader_rejects_bad_ids_empty_cases_and_enable_without_negotiation() {
    let text = "[[case]]\nid = \"has space\"\nrule = \"W1\"\ndescription = \"\"\nnegotiate = false\nenable = [\"oob\"]\n";
    assert_eq!(
        problems(text),
        vec![
            "t.toml:2: case.id: `has space` is not a valid id (letters, digits, `-`, `_`, `.`)",
            "t.toml:1: case.description: missing or empty",
            "t.toml:1: case.step: a case needs at least one step",
            "t.toml:1: case.enable: capabilities can only be enabled when `negotiate` is true",
        ]
    );
}

#[test]
fn loader_rejects_duplicate_ids_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = format!("[[case]]\nid = \"same\"\nrule = \"C2\"\ndescription = \"d\"\n{GOOD_STEP}");
    std::fs::write(dir.path().join("a.toml"), &case).expect("write");
    std::fs::write(dir.path().join("b.toml"), format!("\n\n{case}")).expect("write");
    std::fs::write(dir.path().join("skip.toml"), "not a case file").expect("write");
    match load_dir(dir.path()) {
        Err(CaseLoadError::Invalid { problems }) => {
            assert_eq!(problems.len(), 1);
            let text = problems[0].to_string();
            assert!(
                text.ends_with("b.toml:3: case.id: duplicate id `same` (first at ".to_string().as_str())
                    || text.contains("b.toml:3: case.id: duplicate id `same` (first at "),
                "{text}"
            );
            assert!(text.ends_with("a.toml:1)"), "{text}");
        }
        other => panic!("expected a duplicate-id problem, got {other:?}"),
    }
}

#[test]
fn shipped_cases_cover_every_rule_group() {
    let cases = builtin_cases().unwrap_or_else(|e| panic!("{e}"));
    let from_dir = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")).expect("dir loads");
    let summary = |cs: &[qmpcheck::conform::Case]| -> Vec<String> {
        cs.iter().map(|c| format!("{} {}", c.id, c.source)).collect()
    };
    assert_eq!(summary(&cases), summary(&from_dir), "embedded cases equal the files on disk");
    assert!(cases == from_dir);
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        *by_rule.entry(case.rule.to_string()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("C1", 6),
        ("C2", 4),
        ("C3", 2),
        ("C4", 2),
        ("C5", 4),
        ("C6", 3),
        ("E1", 1),
        ("E2", 1),
        ("O1", 4),
        ("O2", 2),
        ("O3", 1),
        ("S1", 1),
        ("S2", 3),
        ("S3", 4),
        ("S4", 1),
        ("W1", 5),
        ("W2", 3),
        ("W3", 6),
        ("W4", 6),
        ("W5", 2),
    ]
    .into_iter()
    .map(|(r, n)| (r.to_string(), n))
    .collect();
    assert_eq!(by_rule, expected);
    assert_eq!(cases.len(), 61);
}

// ---- runs -----------------------------------------------------------------------------------

/// A small model written for these tests (QAPI syntax): enough for every case but the
/// balloon one, with a few commands the generated check calls or skips.
const EMULATOR_MODEL: &str = r#"
{ 'enum': 'QMPCapability', 'data': [ 'oob' ] }
{ 'command': 'qmp_capabilities', 'data': { '*enable': [ 'QMPCapability' ] } }
{ 'struct': 'VersionTriple', 'data': { 'major': 'int', 'minor': 'int', 'micro': 'int' } }
{ 'struct': 'VersionInfo', 'data': { 'qemu': 'VersionTriple', 'package': 'str' } }
{ 'command': 'query-version', 'returns': 'VersionInfo' }
{ 'enum': 'RunState', 'data': [ 'debug', 'inmigrate', 'internal-error', 'io-error', 'paused',
  'postmigrate', 'prelaunch', 'finish-migrate', 'restore-vm', 'running', 'save-vm', 'shutdown',
  'suspended', 'watchdog', 'guest-panicked', 'colo' ] }
{ 'struct': 'StatusInfo', 'data': { 'running': 'bool', 'singlestep': 'bool', 'status': 'RunState' } }
{ 'command': 'query-status', 'returns': 'StatusInfo' }
{ 'command': 'stop' }
{ 'command': 'cont' }
{ 'event': 'STOP' }
{ 'event': 'RESUME' }
{ 'struct': 'ObjectPropertyInfo', 'data': { 'name': 'str', 'type': 'str', '*description': 'str' } }
{ 'command': 'qom-list', 'data': { 'path': 'str' }, 'returns': [ 'ObjectPropertyInfo' ] }
{ 'command': 'balloon', 'data': { 'value': 'int' } }
{ 'struct': 'YankInstance', 'data': { 'type': 'str' } }
{ 'command': 'query-yank', 'returns': [ 'YankInstance' ], 'allow-oob': true }
"#;

fn emulator_model() -> Arc<Spec> {
    let spec = qmpcheck::spec::qapi::parse(EMULATOR_MODEL, "conform-test-model", &mut |_| None);
    assert_eq!(spec.diagnostics, vec![], "the test model parses cleanly");
    Arc::new(spec)
}

fn emulated() -> TargetSpec {
    TargetSpec::Emulated { model: emulator_model(), config: EmulatorConfig::default() }
}

fn options() -> ConformOptions {
    ConformOptions::builtin().unwrap_or_else(|e| panic!("{e}"))
}

/// The shipped cases without W2-token-count-limit (2 Mi tokens to send), for tests that run
/// the emulator several times.
fn quick_options() -> ConformOptions {
    let mut opts = options();
    opts.cases.retain(|c| c.id != "W2-token-count-limit");
    opts
}

fn silent(_: &CaseResult) {}

fn ids_with(run: &ConformRun, status: &str) -> Vec<String> {
    run.results.iter().filter(|r| r.outcome.status() == status).map(|r| r.id.clone()).collect()
}

fn print_run(run: &ConformRun) {
    for r in &run.results {
        if let Outcome::Fail { evidence } = &r.outcome {
            println!(
                "FAIL {} [{}]\n  request: {}\n  reply: {}\n  expected: {}",
                r.id, r.rule, evidence.request, evidence.reply, evidence.expected
            );
        }
    }
    let c = run.counts();
    println!(
        "{}: {} passed, {} failed, {} skipped in {:?}",
        run.target.description, c.passed, c.failed, c.skipped, run.wall_time
    );
}

/// Cases QEMU 7.2 fails, with the reason: each is a finding against QEMU, not a bad case.
const QEMU_72_DIVERGENCES: [(&str, &str); 1] = [(
    "O1-exec-oob-requires-id",
    "QEMU 7.2 runs {\"exec-oob\":\"query-yank\"} without an id and returns its result; \
     qmp-spec says id is mandatory with exec-oob",
)];

/// Cases the emulator fails: QEMU 7.2's divergence it mirrors.
const EMULATOR_DIVERGENCES: [(&str, &str); 1] =
    [("O1-exec-oob-requires-id", "mirrors QEMU 7.2 (see QEMU_72_DIVERGENCES)")];

#[test]
fn emulator_passes_every_case() {
    let opts = options();
    let run = run(&emulated(), &opts, &silent).unwrap_or_else(|e| panic!("{e}"));
    print_run(&run);
    let failed = ids_with(&run, "fail");
    let expected_failures: Vec<&str> = EMULATOR_DIVERGENCES.iter().map(|(id, _)| *id).collect();
    assert_eq!(failed, expected_failures, "the emulator fails exactly its listed divergences");
    assert_eq!(
        ids_with(&run, "skip"),
        vec!["C4-device-not-active", "command:cont", "command:qmp_capabilities", "command:stop"]
    );
    assert_eq!(ids_with(&run, "pass").len(), 61 - 2 + 5, "59 cases and 5 commands pass");
    let note = |id: &str| run.results.iter().find(|r| r.id == id).and_then(|r| r.call.clone());
    // No name table row creates what qom-list's path names in this model: a fresh name.
    assert!(
        matches!(note("command:qom-list"), Some(CommandNote::Accepted { arguments, .. })
            if arguments["path"].as_str().is_some_and(|p| p.starts_with("/objects/"))),
        "{:?}",
        note("command:qom-list")
    );
    assert_eq!(run.target.version.as_deref(), Some("7.2.0"));
}

/// Runs the shipped cases against a QEMU program; returns the run.
fn run_qemu(kind: Binary, name: &str) -> Option<ConformRun> {
    let binary = support::qemu_binary(name)?;
    let target = TargetSpec::Qemu(Target::new(kind, binary));
    let run = run(&target, &options(), &silent).unwrap_or_else(|e| panic!("{e}"));
    print_run(&run);
    Some(run)
}

#[test]
fn qemu_system_72_fails_only_the_listed_divergences() {
    let Some(run) = run_qemu(Binary::SystemX86, "qemu-system-x86_64") else { return };
    let expected: Vec<&str> = QEMU_72_DIVERGENCES.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids_with(&run, "fail"), expected);
    let skipped_cases: Vec<String> =
        ids_with(&run, "skip").into_iter().filter(|id| !id.starts_with("command:")).collect();
    assert_eq!(skipped_cases, Vec::<String>::new(), "qemu-system-x86_64 has every command the cases need");
    let summary = CommandSummary::of(&run);
    assert_eq!(
        summary.line(),
        "216 commands: called 151 (accepted 81, rejected 70: GenericError 70, failed 0), skipped 65"
    );
    assert_eq!(skip_counts(&summary), (8, 13, 24, 20), "skip list, denied by a rule, campaign, no device");
    assert_named_examples_accepted(&run);
}

/// blockdev-add (null-co) + blockdev-del, object-add + object-del, qom-get and qom-list on
/// a created object, query-named-block-nodes with a node, chardev-add + chardev-remove,
/// block-stream on a created node: called and accepted, every setup and cleanup step too.
fn assert_named_examples_accepted(run: &ConformRun) {
    let accepted = |name: &str, steps: &[&str]| -> serde_json::Value {
        let result = run.results.iter().find(|r| r.id == format!("command:{name}")).expect("checked");
        match &result.call {
            Some(CommandNote::Accepted { arguments, steps: got }) => {
                assert_eq!(got, steps, "{name}");
                arguments.clone()
            }
            other => panic!("{name}: expected accepted, got {other:?}"),
        }
    };
    let ok = |n: &str| format!("{n}: accepted");
    let args = accepted("blockdev-add", &[&ok("blockdev-add"), &ok("blockdev-del")]);
    assert!(["null-co", "null-aio"].contains(&args["driver"].as_str().unwrap_or("")), "{args}");
    assert!(args["node-name"].as_str().is_some_and(|n| n.starts_with("qnode")), "{args}");
    let args = accepted("blockdev-del", &[&ok("blockdev-add"), &ok("blockdev-del")]);
    assert!(args["node-name"].as_str().is_some_and(|n| n.starts_with("qnode")), "{args}");
    let args = accepted("object-del", &[&ok("object-add"), &ok("object-del")]);
    assert!(args["id"].as_str().is_some_and(|n| n.starts_with("qobj")), "{args}");
    let args = accepted("qom-get", &[&ok("object-add"), &ok("qom-get"), &ok("object-del")]);
    assert_eq!(args["property"], "type");
    assert!(args["path"].as_str().is_some_and(|p| p.starts_with("/objects/qobj")), "{args}");
    accepted("qom-list", &[&ok("object-add"), &ok("qom-list"), &ok("object-del")]);
    accepted(
        "query-named-block-nodes",
        &[&ok("blockdev-add"), &ok("query-named-block-nodes"), &ok("blockdev-del")],
    );
    accepted("chardev-remove", &[&ok("chardev-add"), &ok("chardev-remove")]);
    // The job is created with auto-dismiss off, so the cleanup's job-dismiss finds it.
    accepted(
        "block-stream",
        &[&ok("blockdev-add"), &ok("block-stream"), &ok("job-dismiss"), &ok("blockdev-del")],
    );
}

/// Skipped commands by kind of reason: (skip list, denied by a rule, unstable/deprecated
/// campaign, refused for a missing device).
fn skip_counts(summary: &CommandSummary) -> (usize, usize, usize, usize) {
    (
        summary.skipped_with("skip list: "),
        summary.skipped_with("denied by rule "),
        summary.skipped_with(GROUP_CAMPAIGN),
        summary.skipped_with(GROUP_NO_DEVICE),
    )
}

#[test]
fn qemu_storage_daemon_72_skips_what_it_lacks() {
    let Some(run) = run_qemu(Binary::StorageDaemon, "qemu-storage-daemon") else { return };
    assert_eq!(ids_with(&run, "fail"), Vec::<String>::new());
    let skipped_cases: Vec<String> =
        ids_with(&run, "skip").into_iter().filter(|id| !id.starts_with("command:")).collect();
    assert_eq!(
        skipped_cases,
        vec![
            "C4-device-not-active",
            "C5-integer-out-of-range",
            "E1-resume-and-stop-events",
            "E2-events-between-pipelined-replies",
            "O1-exec-oob-requires-id",
            "O2-oob-on-allow-oob-command",
            "O3-oob-reply-with-in-band-queue",
        ]
    );
    let summary = CommandSummary::of(&run);
    assert_eq!(
        summary.line(),
        "74 commands: called 60 (accepted 25, rejected 35: GenericError 35, failed 0), skipped 14"
    );
    assert_eq!(skip_counts(&summary), (2, 3, 8, 1), "skip list, denied by a rule, campaign, no device");
}

#[test]
fn qemu_killed_mid_run_keeps_results_so_far() {
    let Some(binary) = support::qemu_binary("qemu-system-x86_64") else { return };
    let scratch = tempfile::Builder::new().prefix("qmpc-kill").tempdir().expect("tempdir");
    let mut target = Target::new(Binary::SystemX86, binary);
    target.scratch = Some(scratch.path().to_path_buf());
    let seen = Cell::new(0usize);
    let kill_after = 5;
    let progress = |_: &CaseResult| {
        seen.set(seen.get() + 1);
        if seen.get() == kill_after {
            kill_qemu_in(scratch.path());
        }
    };
    match run(&TargetSpec::Qemu(target), &options(), &progress) {
        Err(ConformError::TargetDied { reason, run }) => {
            assert_eq!(reason, "signal 9 (SIGKILL)");
            assert_eq!(run.results.len(), kill_after);
            assert_eq!(run.interrupted.as_deref(), Some("signal 9 (SIGKILL)"));
            assert!(run.results.iter().all(|r| r.outcome == Outcome::Pass));
        }
        other => panic!("expected TargetDied, got {other:?}"),
    }
}

/// Kills (SIGKILL) the QEMU this test started, found by its scratch dir in its command line,
/// and waits until it can be reaped, so the runner sees it dead at its next check.
fn kill_qemu_in(scratch: &Path) {
    let needle = scratch.display().to_string();
    let pid = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .expect("the qemu of this test is running");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("kill");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        // A zombie leader is reapable only once every other thread has exited too.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat.split(") ").nth(1).is_some_and(|rest| rest.starts_with('Z'));
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0);
        if zombie && threads <= 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("qemu {pid} did not die");
}

// ---- generated command checks ---------------------------------------------------------------

/// The QEMU 7.2 model embedded in the binary, its rules (deprecated and unstable commands
/// campaign-only) and the shipped skip list.
fn builtin_plan_inputs() -> (Spec, SafetyRules, SkipList) {
    let model = qmpcheck::source::builtin();
    let rules = SafetyRules::load_builtin().with_model(&model);
    (model, rules, SkipList::builtin().unwrap_or_else(|e| panic!("{e}")))
}

fn step_names(steps: &[PlannedStep]) -> Vec<(StepRole, &str)> {
    steps.iter().map(|s| (s.role, s.command.name.as_str())).collect()
}

#[test]
fn plans_are_seeded_sequences_that_pass_the_last_gate() {
    let (model, rules, skip) = builtin_plan_inputs();
    let plans = |seed: u64| -> Vec<Plan> {
        model.commands.keys().enumerate().map(|(i, n)| plan(&model, &rules, &skip, n, seed, 61 + i)).collect()
    };
    let first = plans(1);
    assert_eq!(first, plans(1), "the same seed gives the same plans");
    assert_ne!(first, plans(2), "another seed gives other arguments");
    // A check's plan depends on its name, seed and position only, not on what ran before.
    let alone = plan(&model, &rules, &skip, "blockdev-del", 1, 7);
    assert_eq!(alone, plan(&model, &rules, &skip, "blockdev-del", 1, 7));
    let scratch = Path::new("/nonexistent-scratch");
    let mut called = 0;
    for plan in &first {
        let Plan::Call(steps) = plan else { continue };
        called += 1;
        assert_eq!(steps.iter().filter(|s| s.role == StepRole::UnderTest).count(), 1);
        for step in steps {
            let verdict = rules.check_in(&step.command.name, &step.command.arguments, Some(scratch));
            assert_eq!(verdict, Verdict::Allow, "{} {}", step.command.name, step.command.arguments);
        }
    }
    assert_eq!(called, 171, "commands of the 7.2 model the plans call");
    let call = |name: &str| match plan(&model, &rules, &skip, name, 1, 100) {
        Plan::Call(steps) => steps,
        Plan::Skip { reason, .. } => panic!("{name} skipped: {reason}"),
    };
    use StepRole::{Cleanup, Setup, UnderTest};
    let steps = call("blockdev-del");
    assert_eq!(step_names(&steps), vec![(Setup, "blockdev-add"), (UnderTest, "blockdev-del")]);
    assert_eq!(steps[0].command.arguments["node-name"], steps[1].command.arguments["node-name"]);
    assert!(["null-co", "null-aio"].contains(&steps[0].command.arguments["driver"].as_str().unwrap_or("")));
    let steps = call("object-del");
    assert_eq!(step_names(&steps), vec![(Setup, "object-add"), (UnderTest, "object-del")]);
    assert_eq!(steps[0].command.arguments["qom-type"], "iothread");
    assert_eq!(steps[0].command.arguments["id"], steps[1].command.arguments["id"]);
    let steps = call("qom-get");
    assert_eq!(
        step_names(&steps),
        vec![(Setup, "object-add"), (UnderTest, "qom-get"), (Cleanup, "object-del")]
    );
    let id = steps[0].command.arguments["id"].as_str().unwrap_or("").to_string();
    assert_eq!(steps[1].command.arguments["path"], format!("/objects/{id}"));
    let steps = call("job-pause");
    assert_eq!(
        step_names(&steps),
        vec![
            (Setup, "blockdev-add"),
            (Setup, "block-stream"),
            (UnderTest, "job-pause"),
            (Cleanup, "job-dismiss"),
            (Cleanup, "blockdev-del")
        ]
    );
    let steps = call("blockdev-add");
    assert_eq!(step_names(&steps), vec![(UnderTest, "blockdev-add"), (Cleanup, "blockdev-del")]);
    let steps = call("query-named-block-nodes");
    assert_eq!(
        step_names(&steps),
        vec![(Setup, "blockdev-add"), (UnderTest, "query-named-block-nodes"), (Cleanup, "blockdev-del")]
    );
    // Names are unique per check position: a name another check leaked never collides.
    let at = |position: usize| match plan(&model, &rules, &skip, "blockdev-add", 1, position) {
        Plan::Call(steps) => steps[0].command.arguments["node-name"].clone(),
        Plan::Skip { reason, .. } => panic!("{reason}"),
    };
    assert_ne!(at(100), at(101));
}

#[test]
fn skip_reasons_come_from_the_data_files() {
    let (model, rules, skip) = builtin_plan_inputs();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, name) in model.commands.keys().enumerate() {
        let Plan::Skip { group, reason } = plan(&model, &rules, &skip, name, 1, i) else { continue };
        if let Some(text) = group.strip_prefix("skip list: ") {
            assert_eq!(skip.find(name).map(|e| e.reason.as_str()), Some(text), "{name}");
            assert_eq!(reason, group);
        } else if let Some(rest) = group.strip_prefix("denied by rule ") {
            let (id, text) = rest.split_once(": ").expect("id: reason");
            let rule = rules.rules().iter().find(|r| r.id == id).expect("a rule of the file");
            assert_eq!(rule.reason, text, "{name}");
        } else {
            assert_eq!(group, GROUP_CAMPAIGN, "{name}");
            let command = &model.commands[name];
            assert!(name.starts_with("x-") || command.is_deprecated() || command.is_unstable(), "{name}");
        }
        groups.entry(group).or_default().push(name.clone());
    }
    let counts: Vec<(String, usize)> =
        groups.iter().map(|(g, v)| (g.chars().take(30).collect(), v.len())).collect();
    assert_eq!(
        counts,
        vec![
            ("denied by rule exports: export".to_string(), 5),
            ("denied by rule fds: file descr".to_string(), 4),
            ("denied by rule hmp: runs any H".to_string(), 1),
            ("denied by rule snapshots: inte".to_string(), 3),
            ("skip list: changes the run sta".to_string(), 1),
            ("skip list: changes the run sta".to_string(), 1),
            ("skip list: ends or resets the ".to_string(), 4),
            ("skip list: negotiation; checke".to_string(), 1),
            ("skip list: writes `size` bytes".to_string(), 1),
            ("unstable or deprecated: runs o".to_string(), 24),
        ]
    );
    assert_eq!(groups["denied by rule fds: file descriptors come only from the harness, never from generated commands"],
        vec!["add-fd", "closefd", "getfd", "remove-fd"]);
    assert_eq!(skip.isolates("migrate").map(|e| e.pattern.as_str()), Some("migrate"));
}

/// The shipped options with no cases: only the generated command checks.
fn commands_only() -> ConformOptions {
    ConformOptions { cases: Vec::new(), ..options() }
}

fn emulated_builtin(config: EmulatorConfig) -> TargetSpec {
    TargetSpec::Emulated { model: Arc::new(qmpcheck::source::builtin()), config }
}

#[test]
fn emulator_generated_checks_call_commands_with_arguments() {
    let run = run(&emulated_builtin(EmulatorConfig::default()), &commands_only(), &silent)
        .unwrap_or_else(|e| panic!("{e}"));
    print_run(&run);
    let summary = CommandSummary::of(&run);
    assert_eq!(
        summary.line(),
        "216 commands: called 170 (accepted 163, rejected 7: GenericError 7, failed 0), skipped 46"
    );
    assert_eq!(skip_counts(&summary), (8, 13, 24, 1), "skip list, denied by a rule, campaign, no device");
    assert_eq!(summary.skipped[GROUP_NO_DEVICE], vec!["query-balloon"]);
    assert_named_examples_accepted_emulated(&run);
}

/// On the emulator every step of the named sequences is accepted (its jobs never finish).
fn assert_named_examples_accepted_emulated(run: &ConformRun) {
    for (name, steps) in [
        ("blockdev-del", vec!["blockdev-add", "blockdev-del"]),
        ("object-del", vec!["object-add", "object-del"]),
        ("qom-get", vec!["object-add", "qom-get", "object-del"]),
        ("query-named-block-nodes", vec!["blockdev-add", "query-named-block-nodes", "blockdev-del"]),
    ] {
        let result = run.results.iter().find(|r| r.id == format!("command:{name}")).expect("checked");
        let want: Vec<String> = steps.iter().map(|s| format!("{s}: accepted")).collect();
        assert!(
            matches!(&result.call, Some(CommandNote::Accepted { steps, .. }) if *steps == want),
            "{name}: {:?}",
            result.call
        );
    }
}

/// Runs the command checks on the emulator serving the builtin model with `fault`, with a
/// short reply timeout.
fn run_with_fault(fault: &str) -> ConformRun {
    let config = EmulatorConfig { fault: Some(fault.parse().expect("fault")), ..EmulatorConfig::default() };
    let opts = ConformOptions { timeout: Duration::from_millis(500), ..commands_only() };
    run(&emulated_builtin(config), &opts, &silent).unwrap_or_else(|e| panic!("{e}"))
}

fn expected_of(run: &ConformRun, id: &str) -> String {
    match run.results.iter().find(|r| r.id == id).map(|r| &r.outcome) {
        Some(Outcome::Fail { evidence }) => evidence.expected.clone(),
        other => panic!("{id}: expected a failure, got {other:?}"),
    }
}

#[test]
fn emulator_hang_fails_that_command_only_and_the_run_goes_on() {
    // The fault hangs the session that sends query-status; a fresh one still answers.
    let run = run_with_fault("hang@query-status");
    assert_eq!(ids_with(&run, "fail"), vec!["command:query-status"]);
    assert_eq!(
        expected_of(&run, "command:query-status"),
        "exactly one reply to query-status, with the id \"command:query-status\" echoed (C2/C6)"
    );
    let result = run.results.iter().find(|r| r.id == "command:query-status").expect("checked");
    let Outcome::Fail { evidence } = &result.outcome else { unreachable!() };
    assert_eq!(evidence.request, r#"{"execute":"query-status","arguments":{},"id":"command:query-status"}"#);
    assert!(run.notes.iter().all(|n| !n.starts_with("target restarted")), "{:?}", run.notes);
    assert_eq!(CommandSummary::of(&run).called(), 170);
    // query-version hangs every session (the liveness probe sends it too): the target
    // counts as hung, is restarted, and the run goes on.
    let run = run_with_fault("hang@query-version");
    assert_eq!(ids_with(&run, "fail"), vec!["command:query-version"]);
    assert!(
        expected_of(&run, "command:query-version").starts_with(
            "the target keeps running and answering (it hangs: a fresh connection gets no answer"
        ),
        "{}",
        expected_of(&run, "command:query-version")
    );
    let restarts =
        run.notes.iter().filter(|n| n.starts_with("target restarted after command:query-version: hangs"));
    assert_eq!(restarts.count(), 1, "{:?}", run.notes);
    assert_eq!(CommandSummary::of(&run).called(), 170);
}

#[test]
fn qemu_killed_during_command_checks_is_restarted_and_the_run_goes_on() {
    let Some(binary) = support::qemu_binary("qemu-system-x86_64") else { return };
    let scratch = tempfile::Builder::new().prefix("qmpc-kill").tempdir().expect("tempdir");
    let mut target = Target::new(Binary::SystemX86, binary);
    target.scratch = Some(scratch.path().to_path_buf());
    let seen = Cell::new(0usize);
    // add-fd and add_client are skipped, announce-self is the first command sent.
    let progress = |r: &CaseResult| {
        seen.set(seen.get() + 1);
        if seen.get() == 3 {
            assert_eq!(r.id, "command:announce-self");
            kill_qemu_in(scratch.path());
        }
    };
    let run = run(&TargetSpec::Qemu(target), &commands_only(), &progress).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.results.len(), 216, "every command is checked");
    assert_eq!(ids_with(&run, "fail"), vec!["command:balloon"]);
    let Outcome::Fail { evidence } = &run.results[3].outcome else { panic!("{:?}", run.results[3]) };
    assert_eq!(
        evidence.expected,
        "the target is alive when the check of balloon starts; it died after the previous check: signal 9 (SIGKILL)"
    );
    let restarts: Vec<&String> = run.notes.iter().filter(|n| n.starts_with("target restarted")).collect();
    assert_eq!(
        restarts,
        vec!["target restarted after command:balloon: died before the check of balloon: signal 9 (SIGKILL)"]
    );
    let summary = CommandSummary::of(&run);
    assert_eq!(summary.failed, vec!["balloon"]);
    assert_eq!(summary.called(), 152, "151 as unkilled, and balloon fails instead of its no-device skip");
}

#[test]
fn qemu_command_check_shards_merge_into_the_unsharded_run() {
    let Some(binary) = support::qemu_binary("qemu-system-x86_64") else { return };
    let target = TargetSpec::Qemu(Target::new(Binary::SystemX86, binary));
    let opts = commands_only();
    let whole = run(&target, &opts, &silent).unwrap_or_else(|e| panic!("{e}"));
    let parts: Vec<ConformRun> = (1..=3)
        .map(|index| {
            let sharded = ConformOptions { shard: Some(Shard { index, count: 3 }), ..opts.clone() };
            run(&target, &sharded, &silent).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let merged = report::merge(parts).expect("merge");
    let key = |r: &ConformRun| -> Vec<(String, Outcome, Option<CommandNote>)> {
        r.results.iter().map(|c| (c.id.clone(), c.outcome.clone(), c.call.clone())).collect()
    };
    assert_eq!(key(&merged), key(&whole));
    assert_eq!(CommandSummary::of(&merged), CommandSummary::of(&whole));
}

// ---- reports and shards ---------------------------------------------------------------------

#[test]
fn junit_parses_back_with_the_summary_counts() {
    let run = run(&emulated(), &quick_options(), &silent).unwrap_or_else(|e| panic!("{e}"));
    let xml = report::to_junit(&run).expect("junit");
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("junit xml parses");
    let counts = run.counts();
    assert_eq!(parsed.tests, counts.total());
    assert_eq!(parsed.failures, counts.failed);
    let skipped: usize = parsed.test_suites.iter().map(|s| s.skipped).sum();
    assert_eq!(skipped, counts.skipped);
    let suites: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(suites, vec!["wire", "session", "dispatch", "events", "oob", "commands"]);
    let oob = parsed.test_suites.iter().find(|s| s.name.as_str() == "oob").expect("oob suite");
    let failure = oob
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "O1-exec-oob-requires-id")
        .expect("the O1 case is reported");
    assert_eq!(failure.classname.as_ref().map(|c| c.as_str()), Some("oob"));
    match &failure.status {
        quick_junit::TestCaseStatus::NonSuccess { description, .. } => {
            let text = description.as_ref().map(|d| d.as_str()).unwrap_or_default();
            assert!(text.contains("request: {\"execute\":\"qmp_capabilities\""), "{text}");
            assert!(text.contains("{\"exec-oob\":\"query-yank\"}"), "{text}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn markdown_lists_findings_rules_and_skipped_commands() {
    let run = run(&emulated(), &quick_options(), &silent).unwrap_or_else(|e| panic!("{e}"));
    let md = report::to_markdown(&run);
    assert!(md.starts_with("# qmpcheck conform: emulated\n"), "{md}");
    assert!(md.contains("- target version: 7.2.0 (qmpcheck-emulator)"), "{md}");
    assert!(md.contains("## Findings (1)\n"), "{md}");
    assert!(md.contains("### O1-exec-oob-requires-id (O1)"), "{md}");
    assert!(md.contains("| O1 | cases | 3 | 1 | 0 |"), "{md}");
    assert!(md.contains("| C3 | generated per-command checks | 5 | 0 | 3 |"), "{md}");
    assert!(
        md.contains(
            "Generated per-command checks, 8 commands: called 5 (accepted 5, rejected 0, failed 0), skipped 3.\n"
        ),
        "{md}"
    );
    assert!(
        md.contains("| skip list: changes the run state; checked with its STOP event by case E1-resume-and-stop-events | 1 | stop |"),
        "{md}"
    );
    assert!(md.contains("| query-status | query-status: accepted | `{}` |"), "{md}");
    assert!(md.contains("| balloon | balloon: accepted | `{\"value\":"), "{md}");
    assert!(md.contains("| C4-device-not-active | C4 | the target has no query-balloon |"), "{md}");
}

#[test]
fn shards_merge_into_the_unsharded_run() {
    let opts = quick_options();
    let whole = run(&emulated(), &opts, &silent).unwrap_or_else(|e| panic!("{e}"));
    let mut parts = Vec::new();
    for index in 1..=2 {
        let sharded = ConformOptions { shard: Some(Shard { index, count: 2 }), ..opts.clone() };
        let part = run(&emulated(), &sharded, &silent).unwrap_or_else(|e| panic!("{e}"));
        assert!(!part.results.is_empty() && part.results.len() < whole.results.len());
        // Through the JSON form, as `report merge` reads it.
        parts.push(report::from_json(&report::to_json(&part)).expect("json round trip"));
    }
    let merged = report::merge(parts.clone()).expect("merge");
    let key = |r: &ConformRun| -> Vec<(usize, String, String, Outcome, Option<CommandNote>)> {
        r.results
            .iter()
            .map(|c| (c.index, c.id.clone(), c.rule.to_string(), c.outcome.clone(), c.call.clone()))
            .collect()
    };
    assert_eq!(key(&merged), key(&whole));
    assert_eq!(merged.target, whole.target);
    assert_eq!(merged.shard, None);
    assert!(
        matches!(report::merge(vec![parts[0].clone()]), Err(report::ReportError::Merge(m)) if m == "missing shard(s) 2/2")
    );
    assert!(
        matches!(report::merge(vec![parts[0].clone(), parts[0].clone()]), Err(report::ReportError::Merge(m)) if m == "shard 1/2 given twice")
    );
}

// ---- snapshots of stable shapes (emulator) ----------------------------------------------------

/// An emulator serving the test model and a client connected to it (nothing read yet).
/// Fields drop in this order: the client, the server (which needs its socket file to wake
/// its accept thread), then the folder holding the socket.
struct Emu {
    client: Client,
    _server: qmpcheck::target::emulator::ServerHandle,
    _dir: tempfile::TempDir,
}

fn emulator_client() -> Emu {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("qmp.sock");
    let server = qmpcheck::target::emulator::serve(&socket, emulator_model(), EmulatorConfig::default())
        .expect("emulator serves");
    let config = ClientConfig { read_timeout: Duration::from_secs(5), ..Default::default() };
    let client = Client::connect_raw(&socket, config).expect("connect");
    Emu { client, _server: server, _dir: dir }
}

#[test]
fn snapshot_greeting_and_query_version_shapes() {
    let mut emu = emulator_client();
    let client = &mut emu.client;
    let greeting = client.read_message().expect("greeting");
    assert!(matches!(greeting.message, Message::Greeting(_)));
    let greeting_value: serde_json::Value = serde_json::from_slice(&greeting.raw).expect("json");
    client.negotiate(&[]).expect("negotiate");
    let version = client.execute_with_id("query-version", None, serde_json::json!("v")).expect("reply");
    let version_value = match version {
        qmpcheck::wire::Reply::Return { value, .. } => value,
        other => panic!("query-version failed: {other:?}"),
    };
    insta::with_settings!({snapshot_path => "../snapshots"}, {
        insta::assert_json_snapshot!("conform_greeting", greeting_value, {
            ".QMP.version.qemu.major" => "[number]",
            ".QMP.version.qemu.minor" => "[number]",
            ".QMP.version.qemu.micro" => "[number]",
            ".QMP.version.package" => "[package]",
        });
        insta::assert_json_snapshot!("conform_query_version", version_value, {
            ".qemu.major" => "[number]",
            ".qemu.minor" => "[number]",
            ".qemu.micro" => "[number]",
            ".package" => "[package]",
        });
    });
}

#[test]
fn snapshot_error_replies_to_malformed_input() {
    let mut emu = emulator_client();
    let client = &mut emu.client;
    client.read_message().expect("greeting");
    client.negotiate(&[]).expect("negotiate");
    let inputs: [&[u8]; 8] = [
        b"{\"execute\": query-version}\xff",
        b"[1, 2]",
        b"{\"execute\":\"query-version\",\"extra\":1}",
        b"{\"execute\":\"query-version\",\"arguments\":[]}",
        b"{\"arguments\":{}}",
        b"{\"execute\":\"qom-list\",\"arguments\":{}}",
        b"{\"execute\":\"qom-list\",\"arguments\":{\"path\":1}}",
        b"{\"execute\":\"query-version\",\"id\":\"\xc3\x28\"}",
    ];
    let mut replies = Vec::new();
    for input in inputs {
        client.send_raw(input).expect("send");
        client.send_raw(b"{\"execute\":\"query-version\",\"id\":\"sentinel\"}").expect("send sentinel");
        let mut errors = Vec::new();
        loop {
            let incoming = client.read_message().expect("reply");
            match incoming.message {
                Message::Reply(qmpcheck::wire::Reply::Error { class, desc, .. }) => {
                    errors.push(serde_json::json!({"class": class, "desc": desc}));
                }
                Message::Reply(r) if r.id() == Some(&serde_json::json!("sentinel")) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        replies.push(serde_json::json!({"input": qmpcheck::conform::result::escape_bytes(input, 200), "errors": errors}));
    }
    insta::with_settings!({snapshot_path => "../snapshots"}, {
        insta::assert_json_snapshot!("conform_malformed_input_errors", replies);
    });
}
