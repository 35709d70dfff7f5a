//! Legacy prose parser against the damaged seeds 000 (qmp-commands.txt ~2.8, numbered, most
//! headers lost), 001 (qmp-commands.txt ~2.6/2.7, flattened, blame annotations) and 004
//! (qmp-events.txt, numbered). Expected sets are computed here with independent, simple
//! scans of the seed text; values were checked by reading the seeds.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use qmpcheck::spec::legacy::parse;
use qmpcheck::spec::{Builtin, DiagnosticKind, Direction, Member, Spec, TypeRef};
use serde_json::json;

const SEED_000: &str = "000_6c43ee94cdfc87ea.txt";
const SEED_001: &str = "001_c6909e2e14ac2656.txt";
const SEED_004: &str = "004_2c2e15d7dcde0b66.txt";

fn seed(name: &str) -> String {
    let path = format!("{}/../shared/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn parsed(name: &str) -> Spec {
    parse(&seed(name), name)
}

/// Lines of a seed with a leading line number removed (numbered seeds) and NBSPs as spaces,
/// each with the number a reader would cite.
fn numbered_lines(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.replace('\u{a0}', " ");
            let digits: String = l.chars().take_while(char::is_ascii_digit).collect();
            let no = digits.parse().ok()?;
            Some((no, l[digits.len()..].trim().to_string()))
        })
        .collect()
}

fn physical_lines(text: &str) -> Vec<(u32, String)> {
    text.lines().enumerate().map(|(i, l)| (i as u32 + 1, l.trim().to_string())).collect()
}

/// Names over a `-----` underline: `name` then a line of dashes right after it.
fn headed_names(lines: &[(u32, String)]) -> Vec<String> {
    lines
        .windows(2)
        .filter(|w| w[1].1.len() >= 3 && w[1].1.chars().all(|c| c == '-'))
        .map(|w| w[0].1.clone())
        .filter(|n| {
            n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .collect()
}

/// Every `"execute": "NAME"` in the text.
fn executed_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("\"execute\"") {
        let rest = text[i + 9..].trim_start();
        let Some(rest) = rest.strip_prefix(':') else { continue };
        let Some(rest) = rest.trim_start().strip_prefix('"') else { continue };
        if let Some(end) = rest.find('"') {
            out.insert(rest[..end].to_string());
        }
    }
    out
}

fn args<'a>(spec: &'a Spec, command: &str) -> Vec<&'a Member> {
    spec.command_args(&spec.commands[command])
}

fn arg<'a>(spec: &'a Spec, command: &str, name: &str) -> &'a Member {
    args(spec, command).into_iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{command}.{name}"))
}

fn str_ty() -> TypeRef {
    TypeRef::Builtin(Builtin::Str)
}

fn kinds(spec: &Spec) -> BTreeMap<DiagnosticKind, usize> {
    let mut out = BTreeMap::new();
    for d in &spec.diagnostics {
        *out.entry(d.kind).or_insert(0) += 1;
    }
    out
}

fn has_diag(spec: &Spec, kind: DiagnosticKind, line: u32, fragment: &str) -> bool {
    spec.diagnostics.iter().any(|d| d.kind == kind && d.source.line == line && d.message.contains(fragment))
}

#[test]
fn seed_001_commands_are_the_headed_names_plus_example_names() {
    let text = seed(SEED_001);
    let headed: BTreeSet<String> = headed_names(&physical_lines(&text)).into_iter().collect();
    assert_eq!(headed.len(), 117);
    let spec = parse(&text, SEED_001);
    let names: BTreeSet<String> = spec.commands.keys().cloned().collect();
    let expected: BTreeSet<String> = headed.union(&executed_names(&text)).cloned().collect();
    assert_eq!(names, expected);
    assert_eq!(spec.commands.len(), 123);
    assert!(spec.events.is_empty());
    // The six commands without a name header: five under a title, one under a bare header
    // that names another command.
    let recovered: Vec<&String> = names.difference(&headed).collect();
    assert_eq!(
        recovered,
        vec![
            "dump-guest-memory",
            "query-hotpluggable-cpus",
            "query-rocker",
            "query-rocker-of-dpa-flows",
            "query-rocker-of-dpa-groups",
            "query-rocker-ports"
        ]
    );
    assert!(has_diag(&spec, DiagnosticKind::Recovered, 2900, "'Show rocker switch' has a title"));
    assert!(has_diag(&spec, DiagnosticKind::DocFinding, 379, "took 'dump-guest-memory'"));
    assert_eq!(spec.commands["dump-guest-memory"].sources[0].line, 379);
    // Commands documented without an example still count (they are headed).
    assert!(spec.commands["query-qmp-schema"].examples.is_empty());
}

#[test]
fn seed_000_commands_are_example_names_plus_headed_names() {
    let text = seed(SEED_000);
    let lines = numbered_lines(&text);
    let headed: BTreeSet<String> = headed_names(&lines).into_iter().collect();
    assert_eq!(headed.len(), 18);
    let executed = executed_names(&text);
    let spec = parse(&text, SEED_000);
    let names: BTreeSet<String> = spec.commands.keys().cloned().collect();
    let expected: BTreeSet<String> = executed.union(&headed).cloned().collect();
    assert_eq!(names, expected);
    assert_eq!(names.len(), 57);
    for name in names.difference(&headed) {
        let recovered = spec.diagnostics.iter().any(|d| {
            d.kind == DiagnosticKind::Recovered
                && (d.message.contains(&format!("name '{name}' recovered"))
                    || d.message.contains(&format!("header '{name}' has no underline")))
        });
        assert!(recovered, "no recovered diagnostic for {name}");
    }
    // Where the header line and underline are both gone, the name comes from the example.
    assert!(has_diag(&spec, DiagnosticKind::Recovered, 70, "command name 'eject' recovered"));
    // A bare name line without underline still heads its section.
    assert!(has_diag(
        &spec,
        DiagnosticKind::Recovered,
        149,
        "header 'x-colo-lost-heartbeat' has no underline"
    ));
    // change-backing-file has neither header nor example in this copy: reported, skipped.
    assert!(has_diag(&spec, DiagnosticKind::Damaged, 628, "names no command"));
}

#[test]
fn seed_004_events_are_the_headed_names() {
    let text = seed(SEED_004);
    let headed: BTreeSet<String> = headed_names(&numbered_lines(&text)).into_iter().collect();
    assert_eq!(headed.len(), 35);
    let spec = parse(&text, SEED_004);
    assert_eq!(spec.events.keys().cloned().collect::<BTreeSet<_>>(), headed);
    assert!(spec.commands.is_empty());
    assert_eq!(spec.events["ACPI_DEVICE_OST"].data, Some(TypeRef::named("ACPIOSTInfo")));
    assert_eq!(spec.events["STOP"].data, None);
    let unresolved: Vec<String> = spec.unresolved().into_iter().map(|(_, t)| t.to_string()).collect();
    assert_eq!(unresolved, vec!["ACPIOSTInfo"]);
}

#[test]
fn eject_arguments_in_both_command_docs() {
    for seed_name in [SEED_000, SEED_001] {
        let spec = parsed(seed_name);
        let got: Vec<(&str, TypeRef, bool)> =
            args(&spec, "eject").into_iter().map(|m| (m.name.as_str(), m.ty.clone(), m.optional)).collect();
        assert_eq!(
            got,
            vec![
                ("force", TypeRef::Builtin(Builtin::Bool), true),
                ("device", str_ty(), true),
                ("id", str_ty(), true)
            ],
            "{seed_name}"
        );
        // "Note: The "force" argument defaults to false."
        assert_eq!(arg(&spec, "eject", "force").default, Some(json!(false)), "{seed_name}");
        assert_eq!(spec.commands["eject"].args, Some(TypeRef::named(":obj-eject-arg")));
    }
}

#[test]
fn seed_001_query_blockstats_nesting() {
    let spec = parsed(SEED_001);
    let ret = spec.commands["query-blockstats"].returns.clone().expect("returns");
    assert_eq!(ret, TypeRef::array(TypeRef::named(":query-blockstats-ret")));
    let top: Vec<&str> =
        spec.members(&TypeRef::named(":query-blockstats-ret")).iter().map(|m| m.name.as_str()).collect();
    assert_eq!(top, vec!["device", "stats", "parent"]);
    let stats = spec.member_at(&ret, "stats").expect("stats");
    assert_eq!(stats.ty, TypeRef::named(":query-blockstats-ret.stats"));
    assert_eq!(spec.members(&stats.ty).len(), 21);
    let timed = spec.member_at(&ret, "stats.timed_stats").expect("timed_stats");
    assert_eq!(timed.ty, TypeRef::array(TypeRef::named(":query-blockstats-ret.stats.timed_stats")));
    let depth = spec.member_at(&ret, "stats.timed_stats.avg_rd_queue_depth").expect("avg_rd_queue_depth");
    assert_eq!(depth.ty, TypeRef::Builtin(Builtin::Number));
    assert_eq!(depth.source.as_ref().map(|s| s.line), Some(1526));
    assert_eq!(spec.members(&TypeRef::named(":query-blockstats-ret.stats.timed_stats")).len(), 12);
    // "parent" is a sibling of "stats" (the example shows it there), an untyped object.
    let parent = spec.member_at(&ret, "parent").expect("parent");
    assert_eq!((parent.ty.clone(), parent.optional), (TypeRef::Builtin(Builtin::Object), true));
    assert!(spec.member_at(&ret, "stats.timed_stats.parent").is_none());
    // This copy documents no "backing" member.
    assert!(spec.member_at(&ret, "backing").is_none());
    assert!(spec.member_at(&ret, "stats.idle_time_ns").is_some_and(|m| m.optional));
}

#[test]
fn seed_001_query_block_nesting_and_values() {
    let spec = parsed(SEED_001);
    let ret = spec.commands["query-block"].returns.clone().expect("returns");
    let at = |p: &str| spec.member_at(&ret, p).unwrap_or_else(|| panic!("{p}"));
    assert_eq!(at("inserted.image.snapshots.vm-clock-nsec").ty, TypeRef::Builtin(Builtin::Int));
    assert!(matches!(at("inserted.image.snapshots").ty, TypeRef::Array(_)));
    assert_eq!(at("inserted.image.backing-image").ty, TypeRef::Builtin(Builtin::Object));
    assert_eq!(at("io-status").values, vec!["ok", "failed", "nospace"]);
    assert_eq!(at("inserted.drv").values.len(), 21);
    assert!(has_diag(&spec, DiagnosticKind::DocFinding, 1297, "value 'file' is listed twice"));
    assert!(has_diag(&spec, DiagnosticKind::DocFinding, 1368, "'json_string'"));
}

#[test]
fn defaults_and_values() {
    let s001 = parsed(SEED_001);
    let format = arg(&s001, "ringbuf-write", "format");
    assert_eq!((format.ty.clone(), format.optional), (str_ty(), true));
    assert_eq!(format.values, vec!["utf8", "base64"]);
    assert_eq!(format.default, Some(json!("utf8")));
    let mirror = |name: &str| arg(&s001, "drive-mirror", name).clone();
    assert_eq!(mirror("on-source-error").ty, TypeRef::named("BlockdevOnError"));
    assert_eq!(mirror("on-source-error").default, Some(json!("report")));
    assert_eq!(mirror("buf-size").default, Some(json!("10M")));
    assert_eq!(mirror("unmap").default, Some(json!(true)));
    assert_eq!(mirror("mode").default, Some(json!("absolute-paths")));
    assert_eq!(mirror("sync").values, vec!["full", "top", "none"]);
    assert!(!mirror("sync").optional);
    assert_eq!(arg(&s001, "drive-backup", "sync").values, vec!["full", "top", "incremental", "none"]);
    assert_eq!(arg(&s001, "block-stream", "on-error").default, Some(json!("report")));
    assert_eq!(arg(&s001, "send-key", "hold-time").default, Some(json!(100)));
    // "(2) All boolean arguments default to false"
    assert_eq!(arg(&s001, "migrate", "blk").default, Some(json!(false)));
    assert_eq!(arg(&s001, "migrate", "uri").default, None);
    let status = s001
        .member_at(s001.commands["query-status"].returns.as_ref().expect("ret"), "status")
        .expect("status");
    assert_eq!(status.values.len(), 13);
    assert_eq!(status.values.first().map(String::as_str), Some("debug"));

    let s000 = parsed(SEED_000);
    let mode = arg(&s000, "blockdev-change-medium", "read-only-mode");
    assert_eq!(mode.values, vec!["retain", "read-only", "read-write"]);
    assert_eq!(mode.default, Some(json!("retain")));
    assert_eq!(arg(&s000, "drive-backup", "on-source-error").default, Some(json!("report")));
    assert_eq!(arg(&s000, "drive-backup", "compress").default, Some(json!(false)));

    let s004 = parsed(SEED_004);
    let data = |event: &str, member: &str| {
        let d = s004.events[event].data.clone().expect("data");
        s004.member_at(&d, member).cloned().unwrap_or_else(|| panic!("{event}.{member}"))
    };
    assert_eq!(data("BLOCK_IO_ERROR", "operation").values, vec!["read", "write"]);
    assert_eq!(data("BLOCK_IO_ERROR", "action").values, vec!["ignore", "report", "stop"]);
    assert_eq!(data("WATCHDOG", "action").values.len(), 6);
    assert_eq!(data("BLOCK_JOB_COMPLETED", "type").values, vec!["stream", "commit"]);
    assert_eq!(data("SPICE_INITIALIZED", "client.channel-id").ty, TypeRef::Builtin(Builtin::Int));
    assert!(data("VNC_DISCONNECTED", "client.sasl_username").optional);
    assert_eq!(data("BALLOON_CHANGE", "actual").ty, TypeRef::Builtin(Builtin::Number));
}

/// Checks that every source line of the model is the file's own line number: member lines
/// show the member's name, example lines start the example, headed items show their name.
fn assert_sources_match_prefixes(spec: &Spec, text: &str) {
    let by_no: BTreeMap<u32, String> = numbered_lines(text).into_iter().collect();
    let line_text = |no: u32| by_no.get(&no).cloned().unwrap_or_else(|| panic!("no line {no}"));
    let mut checked = 0;
    for def in spec.types.values() {
        if let qmpcheck::spec::TypeKind::Struct { members, .. } = &def.kind {
            for m in members {
                let no = m.source.as_ref().expect("member source").line;
                let text = line_text(no);
                assert!(
                    text.contains(&format!("\"{}\"", m.name)) || text.contains(&format!("{}:", m.name)),
                    "{no}: {text}"
                );
                checked += 1;
            }
        }
    }
    let examples = spec
        .commands
        .values()
        .flat_map(|c| &c.examples)
        .chain(spec.events.values().flat_map(|e| &e.examples));
    for e in examples {
        let text = line_text(e.source.line);
        assert!(
            text.starts_with("->") || text.starts_with("<-") || text.starts_with('{'),
            "{}: {text}",
            e.source.line
        );
        checked += 1;
    }
    for (name, no) in spec.events.iter().map(|(n, e)| (n, e.sources[0].line)) {
        assert_eq!(&line_text(no), name);
    }
    assert!(checked > 100, "only {checked} sources checked");
}

#[test]
fn sources_are_the_seeds_own_line_numbers() {
    for name in [SEED_000, SEED_004] {
        let text = seed(name);
        let spec = parse(&text, name);
        assert_sources_match_prefixes(&spec, &text);
    }
    let s000 = parsed(SEED_000);
    let eject = &s000.commands["eject"];
    assert_eq!(eject.examples[0].source.line, 70);
    assert_eq!(eject.examples[0].direction, Direction::Request);
    assert_eq!(eject.examples[0].text, r#"{ "execute": "eject", "arguments": { "id": "ide0-1-0" } }"#);
    assert_eq!(s000.commands["trace-event-set-state"].sources[0].line, 1796);
    // Lines left over from a broken example (1197, 1201) do not start a section.
    let tpm = &s000.commands["query-tpm"];
    assert_eq!(tpm.sources[0].line, 1209);
    assert_eq!(tpm.doc.as_deref(), Some("Return information about the TPM device."));
    assert_eq!(arg(&s000, "block-stream", "base-node").source.as_ref().map(|s| s.line), Some(200));
    let s004 = parsed(SEED_004);
    let ex = &s004.events["BALLOON_CHANGE"].examples[0];
    assert_eq!((ex.direction, ex.source.line), (Direction::Event, 27));
    assert_eq!(ex.text.lines().count(), 3);
    // Seed 001 has no numbers: its lines are the file's physical lines.
    let s001 = parsed(SEED_001);
    assert_eq!(s001.commands["query-blockstats"].sources[0].line, 1452);
    assert_eq!(arg(&s001, "eject", "id").source.as_ref().map(|s| s.line), Some(59));
}

#[test]
fn doc_mistakes_are_reported() {
    let s001 = parsed(SEED_001);
    assert!(has_diag(&s001, DiagnosticKind::Damaged, 548, "skipped 18 blame annotations"));
    assert!(has_diag(&s001, DiagnosticKind::DocFinding, 2113, "'setup-time' lacks the colon"));
    assert!(has_diag(&s001, DiagnosticKind::DocFinding, 400, "underlined with 10 dashes for 34"));
    assert!(has_diag(&s001, DiagnosticKind::DocFinding, 774, "'blockdev-snapshot' executes 'blockdev-add'"));
    assert!(has_diag(
        &s001,
        DiagnosticKind::DocFinding,
        2277,
        "empty 'Arguments:'; read as the return value"
    ));
    assert!(has_diag(&s001, DiagnosticKind::DocFinding, 2262, "empty 'Arguments:'; read as arguments"));
    assert!(has_diag(&s001, DiagnosticKind::DocFinding, 1640, "'json-str'"));
    assert!(has_diag(&s001, DiagnosticKind::DocFinding, 574, "no type given for member 'bitmap'"));
    // The type the prose forgot, taken from the example.
    assert_eq!(arg(&s001, "block_resize", "size").ty, TypeRef::Builtin(Builtin::Int));
    assert!(has_diag(&s001, DiagnosticKind::Recovered, 471, "took int from the example"));
    let s004 = parsed(SEED_004);
    assert!(has_diag(
        &s004,
        DiagnosticKind::DocFinding,
        489,
        "'MIGRATION' says 'Data: None.' but lists members"
    ));
    assert!(has_diag(&s004, DiagnosticKind::DocFinding, 237, "underlined with 20 dashes for 16"));
    let s000 = parsed(SEED_000);
    // The "(json-int)" line under "failed_rd_operations" is lost in this copy.
    assert!(has_diag(&s000, DiagnosticKind::Damaged, 1008, "line 1009 after it is missing"));
}

#[test]
fn diagnostic_counts_per_seed() {
    use DiagnosticKind::*;
    let counts = |name| kinds(&parsed(name));
    assert_eq!(counts(SEED_000), BTreeMap::from([(Damaged, 21), (Recovered, 49), (DocFinding, 10)]));
    assert_eq!(counts(SEED_001), BTreeMap::from([(Damaged, 1), (Recovered, 23), (DocFinding, 39)]));
    assert_eq!(counts(SEED_004), BTreeMap::from([(Recovered, 9), (DocFinding, 3)]));
}

/// Damages a seed: cut at `cut` (a fraction of its length) and overwrite bytes.
fn damaged(text: &str, cut: f64, flips: &[(f64, u8)]) -> String {
    let bytes = text.as_bytes();
    let end = ((bytes.len() as f64) * cut) as usize;
    let mut out = bytes[..end.min(bytes.len())].to_vec();
    for &(at, byte) in flips {
        if !out.is_empty() {
            let i = ((out.len() as f64) * at) as usize % out.len();
            out[i] = byte;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(b'\n'),
        Just(b'-'),
        Just(b'"'),
        Just(b'{'),
        Just(b'}'),
        Just(b'('),
        Just(b':'),
        any::<u8>()
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn damaged_seeds_never_panic(
        cut in 0.0f64..=1.0,
        flips in proptest::collection::vec((0.0f64..1.0, interesting_byte()), 0..12),
    ) {
        for name in [SEED_000, SEED_001, SEED_004] {
            let text = damaged(&seed(name), cut, &flips);
            let spec = parse(&text, name);
            prop_assert!(spec.commands.len() + spec.events.len() <= 200);
        }
    }
}
