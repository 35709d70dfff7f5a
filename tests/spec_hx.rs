//! The `.hx` parser on seed 002 (diff hunks of qmp-commands.hx) and on small snippets.
//! Every expected value below was read off the seed by hand (line numbers are the seed's).

use qmpcheck::spec::hx::{self, HxSides};
use qmpcheck::spec::{
    Builtin, Command, DiagnosticKind, Direction, Member, Source, SourceKind, Spec, TypeRef,
};

fn seed002() -> HxSides {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds/002_93f31401e52ab94f.txt");
    let text = std::fs::read_to_string(path).expect("seed 002 readable");
    hx::parse(&text, "002")
}

fn names(spec: &Spec) -> Vec<&str> {
    spec.commands.keys().map(String::as_str).collect()
}

fn args(spec: &Spec, command: &str) -> Vec<(String, String, bool)> {
    let c = spec.commands.get(command).unwrap_or_else(|| panic!("no command {command}"));
    spec.command_args(c).iter().map(|m| (m.name.clone(), m.ty.to_string(), m.optional)).collect()
}

fn messages(spec: &Spec, kind: DiagnosticKind) -> Vec<String> {
    spec.diagnostics.iter().filter(|d| d.kind == kind).map(|d| d.to_string()).collect()
}

fn str_ty() -> TypeRef {
    TypeRef::Builtin(Builtin::Str)
}

#[test]
fn both_sides_have_their_own_commands() {
    let sides = seed002();
    assert!(sides.is_diff);
    assert_eq!(sides.old.kind, Some(SourceKind::Hx));
    assert_eq!(
        names(&sides.old),
        ["blockdev-insert-medium", "blockdev-remove-medium", "change-backing-file"]
    );
    assert_eq!(
        names(&sides.new),
        ["blockdev-mirror", "change-backing-file", "x-blockdev-insert-medium", "x-blockdev-remove-medium"]
    );
}

#[test]
fn blockdev_mirror_is_new_with_nine_arguments() {
    let sides = seed002();
    assert!(!sides.old.commands.contains_key("blockdev-mirror"));
    let expected: Vec<(String, String, bool)> = [
        ("sync", "MirrorSyncMode", false),
        ("device", "str", false),
        ("target", "str", false),
        ("replaces", "str", true),
        ("speed", "int", true),
        ("on-source-error", "BlockdevOnError", true),
        ("on-target-error", "BlockdevOnError", true),
        ("granularity", "int", true),
        ("buf-size", "int", true),
    ]
    .iter()
    .map(|(n, t, o)| (n.to_string(), t.to_string(), *o))
    .collect();
    assert_eq!(args(&sides.new, "blockdev-mirror"), expected);
    let c = &sides.new.commands["blockdev-mirror"];
    assert_eq!(c.sources, vec![Source::new("002@new", 17), Source::new("002@new", 25)]);
    assert_eq!(c.args, Some(TypeRef::named(":obj-blockdev-mirror-arg")));
    let examples: Vec<(Direction, u32)> = c.examples.iter().map(|e| (e.direction, e.source.line)).collect();
    assert_eq!(examples, vec![(Direction::Request, 58), (Direction::Reply, 61)]);
    assert!(c.examples[0].text.ends_with("\"sync\": \"full\" } }"), "{}", c.examples[0].text);
    let on_error = sides.new.member_at(c.args.as_ref().expect("args"), "on-source-error").expect("member");
    assert_eq!(on_error.default, Some(serde_json::json!("report")));
    assert_eq!(on_error.doc.as_deref(), Some("the action to take on an error on the source"));
}

#[test]
fn prose_and_args_type_disagreements_are_doc_findings() {
    let sides = seed002();
    assert_eq!(
        messages(&sides.new, DiagnosticKind::DocFinding),
        [
            "002@new:37: optional differs for 'blockdev-mirror'.'speed': args_type says optional, prose says required",
            "002@new:18: argument 'buf-size' of 'blockdev-mirror' is in args_type but not in its prose table \
             (the hunk may show only part of the table)",
            "002@new:40: argument 'buf_size' of 'blockdev-mirror' is documented in prose but not in args_type",
            "002@new:222: argument 'node-name' of 'x-blockdev-insert-medium' is in args_type but not in its \
             prose table (the hunk may show only part of the table)",
        ]
    );
    assert_eq!(messages(&sides.old, DiagnosticKind::DocFinding).len(), 1);
    assert_eq!(
        messages(&sides.new, DiagnosticKind::UnresolvedType),
        [
            "002@new:18: type 'MirrorSyncMode' is not defined in this document",
            "002@new:18: type 'BlockdevOnError' is not defined in this document",
        ]
    );
}

#[test]
fn medium_commands_are_renamed_with_x_prefix() {
    let sides = seed002();
    let device = vec![("device".to_string(), "str".to_string(), false)];
    let with_node = vec![device[0].clone(), ("node-name".to_string(), "str".to_string(), false)];
    assert_eq!(args(&sides.old, "blockdev-remove-medium"), device);
    assert_eq!(args(&sides.new, "x-blockdev-remove-medium"), device);
    assert_eq!(args(&sides.old, "blockdev-insert-medium"), with_node);
    assert_eq!(args(&sides.new, "x-blockdev-insert-medium"), with_node);
    assert!(!sides.new.commands.contains_key("blockdev-remove-medium"));
    let old = &sides.old.commands["blockdev-remove-medium"];
    assert_eq!(old.sources, vec![Source::new("002@old", 189), Source::new("002@old", 196)]);
    let new = &sides.new.commands["x-blockdev-remove-medium"];
    assert_eq!(new.sources, vec![Source::new("002@new", 190), Source::new("002@new", 198)]);
    // Lines 209, 212, 213, 214, 217 (old) and 210, 212, 213, 215, 217 (new).
    let lines = |c: &Command| c.examples.iter().map(|e| e.source.line).collect::<Vec<_>>();
    assert_eq!(lines(old), [209, 212, 213, 214, 217]);
    assert_eq!(lines(new), [210, 212, 213, 215, 217]);
    assert!(new.examples[0].text.starts_with("{ \"execute\": \"x-blockdev-remove-medium\""));
    assert!(old.examples[0].text.starts_with("{ \"execute\": \"blockdev-remove-medium\""));
}

#[test]
fn cut_struct_still_yields_its_command() {
    let sides = seed002();
    let expected: Vec<(String, String, bool)> = ["device", "image-node-name", "backing-file"]
        .iter()
        .map(|n| (n.to_string(), "str".to_string(), false))
        .collect();
    assert_eq!(args(&sides.old, "change-backing-file"), expected);
    assert_eq!(args(&sides.new, "change-backing-file"), expected);
    assert!(messages(&sides.old, DiagnosticKind::Recovered).contains(
        &"002@old:65: struct of 'change-backing-file' is cut before its closing brace".to_string()
    ));
}

fn fragment_names(f: &hx::Fragment) -> Vec<&str> {
    f.members.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn unnamed_prose_pieces_become_fragments() {
    let sides = seed002();
    let starts = |fs: &[hx::Fragment]| fs.iter().map(|f| f.source.line).collect::<Vec<_>>();
    assert_eq!(starts(&sides.old_fragments), [1, 7, 67, 165]);
    assert_eq!(starts(&sides.new_fragments), [1, 7, 67, 165]);
    // Lines 10/11: the drive-mirror table (its heading is outside the hunk) fixes buf_size.
    assert_eq!(fragment_names(&sides.old_fragments[1]), ["speed", "granularity", "buf_size", "sync"]);
    assert_eq!(fragment_names(&sides.new_fragments[1]), ["speed", "granularity", "buf-size", "sync"]);
    assert_eq!(fragment_names(&sides.old_fragments[2]), ["invalid_flush_operations", "parent"]);
    assert_eq!(sides.new_fragments[2].members.len(), 17);
    assert_eq!(fragment_names(&sides.old_fragments[3]), ["current", "halted", "qom_path"]);
    assert_eq!(fragment_names(&sides.new_fragments[3]), ["current", "halted", "qom_path", "arch"]);
    let arch = &sides.new_fragments[3].members[3];
    assert_eq!(
        (arch.ty.clone(), arch.optional, arch.source.clone()),
        (str_ty(), false, Some(Source::new("002@new", 168)))
    );
}

/// A reference model shaped like seed 001 (qmp-commands.txt 2.6): member names only.
fn reference() -> Spec {
    let mut spec = Spec::new(SourceKind::Legacy);
    let at = Source::new("ref.txt", 1);
    let member = |n: &str| Member::new(n, str_ty(), false);
    let add_args = |spec: &mut Spec, name: &str, names: &[&str]| {
        let t = spec.add_implicit_struct(
            format!(":obj-{name}-arg"),
            names.iter().map(|n| member(n)).collect(),
            at.clone(),
        );
        let mut c = Command::new(name, at.clone());
        c.args = Some(t);
        spec.commands.insert(name.into(), c);
    };
    let mirror = ["device", "target", "speed", "granularity", "buf-size", "sync", "on-source-error"];
    add_args(&mut spec, "drive-mirror", &mirror);
    add_args(&mut spec, "blockdev-mirror", &mirror);
    add_args(&mut spec, "ringbuf-write", &["device", "data", "format"]);
    let mut timed_names = vec!["interval_length".to_string()];
    for stat in ["min", "max", "avg"] {
        for op in ["rd", "wr", "flush"] {
            timed_names.push(format!("{stat}_{op}_latency_ns"));
        }
    }
    timed_names.extend(["avg_rd_queue_depth".to_string(), "avg_wr_queue_depth".to_string()]);
    let timed = spec.add_implicit_struct("t", timed_names.iter().map(|n| member(n)).collect(), at.clone());
    let stats = spec.add_implicit_struct(
        "s",
        vec![
            member("invalid_flush_operations"),
            member("account_invalid"),
            member("account_failed"),
            Member::new("timed_stats", TypeRef::array(timed), false),
        ],
        at.clone(),
    );
    let blockstats = spec.add_implicit_struct(
        ":query-blockstats-ret",
        vec![member("device"), Member::new("stats", stats, false), member("parent")],
        at.clone(),
    );
    let mut c = Command::new("query-blockstats", at.clone());
    c.returns = Some(TypeRef::array(blockstats));
    spec.commands.insert(c.name.clone(), c);
    let cpus = spec.add_implicit_struct(
        ":query-cpus-ret",
        ["cpu", "current", "halted", "qom_path", "arch", "pc"].iter().map(|n| member(n)).collect(),
        at.clone(),
    );
    let mut c = Command::new("query-cpus", at);
    c.returns = Some(TypeRef::array(cpus));
    spec.commands.insert(c.name.clone(), c);
    spec
}

fn return_names(spec: &Spec, command: &str) -> Vec<String> {
    let r = spec.commands[command].returns.clone().expect("returns");
    let TypeRef::Array(element) = r else { panic!("{command} returns no array") };
    spec.members(&element).iter().map(|m| m.name.clone()).collect()
}

#[test]
fn fragments_are_named_by_a_reference_model() {
    let mut sides = seed002();
    hx::attribute(&mut sides, &reference());
    assert!(sides.old_fragments.is_empty() && sides.new_fragments.is_empty());
    assert_eq!(
        names(&sides.old),
        [
            "blockdev-insert-medium",
            "blockdev-remove-medium",
            "change-backing-file",
            "drive-mirror",
            "query-blockstats",
            "query-cpus",
            "ringbuf-write"
        ]
    );
    let arg_names = |spec: &Spec| args(spec, "drive-mirror").into_iter().map(|a| a.0).collect::<Vec<_>>();
    assert_eq!(arg_names(&sides.old), ["speed", "granularity", "buf_size", "sync"]);
    assert_eq!(arg_names(&sides.new), ["speed", "granularity", "buf-size", "sync"]);
    assert_eq!(return_names(&sides.old, "query-blockstats"), ["invalid_flush_operations", "parent"]);
    let new_stats = return_names(&sides.new, "query-blockstats");
    assert_eq!(new_stats.get(1..3), Some(&["account_invalid".to_string(), "account_failed".to_string()][..]));
    assert_eq!(return_names(&sides.old, "query-cpus"), ["current", "halted", "qom_path"]);
    assert_eq!(return_names(&sides.new, "query-cpus"), ["current", "halted", "qom_path", "arch"]);
    let recovered = messages(&sides.old, DiagnosticKind::Recovered);
    assert!(recovered.contains(
        &"002@old:7: prose fragment documenting 'speed', 'granularity', 'buf_size', 'sync' taken as the arguments \
          of 'drive-mirror' (its members match ref.txt); the hunk shows only part of the table"
            .to_string()
    ));
}

#[test]
fn plain_hx_file_has_equal_sides() {
    let text = "    {\n        .name       = \"eject\",\n        .args_type  = \"force:-f,device:B\",\n        \
                .mhandler.cmd_new = qmp_marshal_eject,\n    },\n\nSQMP\neject\n-----\n\nEject a removable medium.\n\n\
                Arguments:\n\n- \"force\": force ejection (json-bool, optional)\n- \"device\": device name (json-string)\n\n\
                Example:\n\n-> { \"execute\": \"eject\", \"arguments\": { \"device\": \"ide1-cd0\" } }\n<- { \"return\": {} }\n\nEQMP\n";
    let sides = hx::parse(text, "q.hx");
    assert!(!sides.is_diff);
    assert_eq!(sides.old, sides.new);
    let c = &sides.new.commands["eject"];
    assert_eq!(c.sources, vec![Source::new("q.hx", 2), Source::new("q.hx", 8)]);
    assert_eq!(c.doc.as_deref(), Some("Eject a removable medium."));
    assert_eq!(
        args(&sides.new, "eject"),
        [("force".to_string(), "bool".to_string(), true), ("device".to_string(), "str".to_string(), false)]
    );
    assert_eq!(sides.new.diagnostics, vec![]);
}

#[test]
fn hunk_header_context_names_the_block() {
    let text = "@@ -1,3 +1,3 @@ drive-mirror\n - \"speed\": speed (json-int)\n-- \"buf_size\": size (json-int, optional)\n\
                +- \"buf-size\": size (json-int, optional)\n";
    let sides = hx::parse(text, "d.diff");
    assert_eq!(
        args(&sides.old, "drive-mirror"),
        [("speed".into(), "int".into(), false), ("buf_size".into(), "int".into(), true)]
    );
    assert_eq!(
        args(&sides.new, "drive-mirror"),
        [("speed".into(), "int".into(), false), ("buf-size".into(), "int".into(), true)]
    );
    assert!(sides.old_fragments.is_empty());
}

#[test]
fn damaged_input_gives_diagnostics_not_panics() {
    for text in [
        "{\n.name\n",
        ".args_type = \"a\"",
        "SQMP\n- \"x\": (",
        "+ {\n+ .name = \"\u{e9}\",\n+ .args_type = \"a:z,b\",\n",
    ] {
        let _ = hx::parse(text, "bad");
    }
    let sides = hx::parse("+ {\n+ .name = \"q\",\n+ .args_type = \"a:z,b\",\n+ },\n", "bad");
    assert_eq!(
        messages(&sides.new, DiagnosticKind::UnresolvedType),
        ["bad@new:3: unknown args_type code 'z' for 'q'.'a'"]
    );
    assert_eq!(
        messages(&sides.new, DiagnosticKind::Syntax),
        ["bad@new:3: args_type item 'b' of 'q' has no ':'"]
    );
}

// ---------------------------------------------------------------------------------------------
// source::load: the .hx sides and load errors

mod load {
    use qmpcheck::source::{load, LoadError};
    use qmpcheck::spec::{Source, SourceKind};

    const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds/002_93f31401e52ab94f.txt");

    #[test]
    fn old_and_new_sides_of_an_hx_diff() {
        let old = load(&format!("{SEED}@old"), None).expect("old side loads");
        let new = load(&format!("{SEED}@new"), None).expect("new side loads");
        let plain = load(SEED, None).expect("plain path loads");
        assert!(old.commands.contains_key("blockdev-remove-medium"));
        assert!(!old.commands.contains_key("blockdev-mirror"));
        assert_eq!(new.commands.len(), 4);
        assert_eq!(new.commands["blockdev-mirror"].sources[0], Source::new(format!("{SEED}@new"), 17));
        assert_eq!(
            old.commands["blockdev-remove-medium"].sources[0],
            Source::new(format!("{SEED}@old"), 189)
        );
        // Plain PATH is the new side, labelled as given.
        assert_eq!(plain.commands.keys().collect::<Vec<_>>(), new.commands.keys().collect::<Vec<_>>());
        assert_eq!(plain.commands["blockdev-mirror"].sources[0], Source::new(SEED, 17));
        assert_eq!(plain.kind, Some(SourceKind::Hx));
    }

    fn scratch(name: &str, bytes: &[u8]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        (dir, path.to_string_lossy().into_owned())
    }

    #[test]
    fn errors_name_the_path_and_why() {
        let err = load("/nonexistent/x.json", None).expect_err("missing");
        assert!(matches!(&err, LoadError::NotFound { path } if path == "/nonexistent/x.json"));
        assert_eq!(err.to_string(), "/nonexistent/x.json: no such file or folder");

        let (_dir, path) = scratch("bad.txt", b"SQMP\nok\xff\n");
        let err = load(&path, None).expect_err("not utf-8");
        assert!(matches!(err, LoadError::NotUtf8 { offset: 7, .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("{path}: not UTF-8 text (invalid byte at offset 7)"));

        let (_dir, path) = scratch("prose.txt", b"nothing to see here\n");
        let err = load(&path, None).expect_err("unknown kind");
        assert_eq!(
            err.to_string(),
            format!("{path}: cannot tell what kind of document this is (use --kind)")
        );

        let (_dir, path) = scratch("l.txt", b"x\n-\n- \"a\": thing (json-int)\n");
        let err = load(&format!("{path}@old"), None).expect_err("side of legacy");
        assert_eq!(
            err.to_string(),
            format!("{path}: '@old' selects a side of an .hx diff, but this is a legacy document")
        );

        // `builtin` is the embedded QEMU 7.2 model; a live target that cannot start is named.
        assert_eq!(load("builtin", None).map(|s| s.commands.len()).ok(), Some(216));
        let err = load("qemu:/nonexistent/qemu-system-x86_64", None).expect_err("no such binary");
        assert!(matches!(err, LoadError::Target { .. }), "{err:?}");
        assert!(err.to_string().starts_with("qemu:/nonexistent/qemu-system-x86_64: "), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(&dir.path().to_string_lossy(), None).expect_err("empty folder");
        assert!(matches!(err, LoadError::EmptyFolder { .. }), "{err:?}");
    }

    /// A QAPI folder: `qapi-schema.json` is the root; `sub/a.json` includes `b.json`, which
    /// QEMU resolves relative to the including file (`sub/b.json`).
    #[test]
    fn qapi_folder_resolves_includes_relative_to_the_includer() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        write(
            "qapi-schema.json",
            "{ 'include': 'sub/a.json' }\n{ 'command': 'top', 'data': { 'x': 'A' } }\n",
        );
        write("sub/a.json", "{ 'include': 'b.json' }\n{ 'struct': 'A', 'data': { 'b': 'B' } }\n");
        write("sub/b.json", "{ 'enum': 'B', 'data': [ 'one' ] }\n");
        write("other.json", "{ 'command': 'not-included' }\n");
        let folder = dir.path().to_string_lossy().into_owned();
        let spec = load(&folder, None).expect("folder loads");
        assert_eq!(spec.commands.keys().collect::<Vec<_>>(), ["top"]);
        assert_eq!(spec.types["B"].sources[0].file, format!("{folder}/sub/b.json"));
        assert_eq!(spec.types["A"].sources[0].file, format!("{folder}/sub/a.json"));
        assert_eq!(spec.unresolved(), vec![]);
        // Without a root, every *.json is read.
        std::fs::remove_file(dir.path().join("qapi-schema.json")).expect("rm");
        let spec = load(&folder, None).expect("folder loads");
        assert_eq!(spec.commands.keys().collect::<Vec<_>>(), ["not-included"]);
    }

    #[test]
    fn kind_override_and_folder_of_hx_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hx = "SQMP\nstop\n----\n\nStop the VM.\n\nEQMP\n";
        std::fs::write(dir.path().join("a.hx"), hx).expect("write");
        std::fs::write(dir.path().join("b.hx"), hx.replace("stop\n----", "cont\n----")).expect("write");
        std::fs::write(dir.path().join("notes"), "words only\n").expect("write");
        let folder = dir.path().to_string_lossy().into_owned();
        let spec = load(&folder, None).expect("folder loads");
        assert_eq!(spec.commands.keys().collect::<Vec<_>>(), ["cont", "stop"]);
        assert_eq!(spec.commands["stop"].sources, vec![Source::new(format!("{folder}/a.hx"), 2)]);
        assert_eq!(spec.diagnostics.len(), 1, "{:?}", spec.diagnostics);
        assert_eq!(spec.diagnostics[0].source, Source::new(format!("{folder}/notes"), 0));
        // --kind hx on a file detection calls legacy.
        let path = dir.path().join("l.txt");
        std::fs::write(&path, hx.replace("SQMP\n", "").replace("EQMP\n", "- \"a\": x (json-int)\n"))
            .expect("write");
        let spec = load(&path.to_string_lossy(), Some(SourceKind::Hx)).expect("override");
        assert_eq!(spec.kind, Some(SourceKind::Hx));
        assert_eq!(spec.commands.keys().collect::<Vec<_>>(), ["stop"]);
    }
}

/// The same attribution against the legacy parse of seed 001 (qmp-commands.txt ~2.6/2.7),
/// whose drive-mirror, query-blockstats, query-cpus and ringbuf-write tables the fragments
/// come from (checked by hand: 001 lines 824, 1452, 1633).
#[test]
fn fragments_are_named_by_seed_001() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds/001_c6909e2e14ac2656.txt");
    let reference = qmpcheck::spec::legacy::parse(&std::fs::read_to_string(path).expect("seed 001"), "001");
    let mut sides = seed002();
    hx::attribute(&mut sides, &reference);
    assert_eq!((sides.old_fragments.len(), sides.new_fragments.len()), (0, 0));
    assert_eq!(
        names(&sides.new),
        [
            "blockdev-mirror",
            "change-backing-file",
            "drive-mirror",
            "query-blockstats",
            "query-cpus",
            "ringbuf-write",
            "x-blockdev-insert-medium",
            "x-blockdev-remove-medium"
        ]
    );
    let buf = |spec: &Spec| args(spec, "drive-mirror")[2].clone();
    assert_eq!(buf(&sides.old), ("buf_size".to_string(), "int".to_string(), true));
    assert_eq!(buf(&sides.new), ("buf-size".to_string(), "int".to_string(), true));
    assert_eq!(return_names(&sides.new, "query-cpus"), ["current", "halted", "qom_path", "arch"]);
    assert_eq!(return_names(&sides.old, "query-blockstats").len(), 2);
    assert_eq!(return_names(&sides.new, "query-blockstats").len(), 17);
}

/// Every prefix and every suffix of seed 002 (cut at a line) parses without panicking, and
/// every seed goes through the hx parser and detection (damaged input never panics).
#[test]
fn cut_anywhere_never_panics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds/002_93f31401e52ab94f.txt");
    let text = std::fs::read_to_string(path).expect("seed 002");
    let lines: Vec<&str> = text.lines().collect();
    for cut in 0..=lines.len() {
        let _ = hx::parse(&lines[..cut].join("\n"), "p");
        let _ = hx::parse(&lines[cut..].join("\n"), "s");
    }
    for seed in [
        "000_6c43ee94cdfc87ea.txt",
        "001_c6909e2e14ac2656.txt",
        "003_3e9b81ae133ae229.txt",
        "004_2c2e15d7dcde0b66.txt",
    ] {
        let path = format!("{}/../shared/seeds/{seed}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("seed");
        let sides = hx::parse(&text, seed);
        assert!(!sides.is_diff, "{seed}");
    }
}
