//! Merging models: authority, sources, type collisions and every kind of drift.

use qmpcheck::spec::merge::merge;
use qmpcheck::spec::{
    Builtin, Command, DiagnosticKind, Event, Member, Source, SourceKind, Spec, TypeDef, TypeKind, TypeRef,
};

fn b(builtin: Builtin) -> TypeRef {
    TypeRef::Builtin(builtin)
}

fn member(name: &str, ty: TypeRef, optional: bool, file: &str, line: u32) -> Member {
    let mut m = Member::new(name, ty, optional);
    m.source = Some(Source::new(file, line));
    m
}

/// A command `name` at `file:line` taking `args` (implicit `:obj-NAME-arg`).
fn command(spec: &mut Spec, file: &str, line: u32, name: &str, args: Vec<Member>) {
    let mut c = Command::new(name, Source::new(file, line));
    if !args.is_empty() {
        c.args = Some(spec.add_implicit_struct(format!(":obj-{name}-arg"), args, Source::new(file, line)));
    }
    spec.commands.insert(name.to_string(), c);
}

fn drift(spec: &Spec) -> Vec<String> {
    spec.diagnostics.iter().filter(|d| d.kind == DiagnosticKind::Drift).map(|d| d.to_string()).collect()
}

/// QAPI says `eject` takes `device: str` and `force: bool?`; the legacy doc disagrees.
fn qapi_and_legacy() -> (Spec, Spec) {
    let mut qapi = Spec::new(SourceKind::Qapi);
    command(
        &mut qapi,
        "block.json",
        10,
        "eject",
        vec![
            member("device", b(Builtin::Str), false, "block.json", 11),
            member("force", b(Builtin::Bool), true, "block.json", 12),
            member("id", b(Builtin::Str), true, "block.json", 13),
        ],
    );
    let mut legacy = Spec::new(SourceKind::Legacy);
    let mut doc_device = member("device", b(Builtin::Int), false, "cmds.txt", 101);
    doc_device.doc = Some("device name".into());
    command(
        &mut legacy,
        "cmds.txt",
        100,
        "eject",
        vec![
            doc_device,
            member("force", b(Builtin::Bool), false, "cmds.txt", 102),
            member("bogus", b(Builtin::Str), true, "cmds.txt", 103),
        ],
    );
    (qapi, legacy)
}

#[test]
fn merging_one_spec_is_identity() {
    let (qapi, _) = qapi_and_legacy();
    assert_eq!(merge(vec![qapi.clone()]), qapi);
    assert_eq!(merge(vec![]), Spec::default());
}

#[test]
fn every_argument_drift_kind_is_reported_at_the_lower_source() {
    let (qapi, legacy) = qapi_and_legacy();
    // Order given does not matter: QAPI outranks legacy.
    let merged = merge(vec![legacy, qapi]);
    assert_eq!(
        drift(&merged),
        [
            "cmds.txt:101: type of 'eject'.'device' differs: int (cmds.txt:101) vs str (block.json:11)",
            "cmds.txt:102: optional differs for 'eject'.'force': required (cmds.txt:102) vs optional (block.json:12)",
            "cmds.txt:103: argument 'bogus' of 'eject' documented in cmds.txt but absent from block.json:10",
            "cmds.txt:100: argument 'id' of 'eject' missing in cmds.txt (present in block.json:13)",
        ]
    );
}

#[test]
fn the_authoritative_fact_wins_and_sources_concatenate() {
    let (qapi, legacy) = qapi_and_legacy();
    let merged = merge(vec![legacy, qapi]);
    assert_eq!(merged.kind, Some(SourceKind::Qapi));
    let eject = &merged.commands["eject"];
    assert_eq!(eject.sources, vec![Source::new("block.json", 10), Source::new("cmds.txt", 100)]);
    let args: Vec<(String, TypeRef, bool)> =
        merged.command_args(eject).iter().map(|m| (m.name.clone(), m.ty.clone(), m.optional)).collect();
    assert_eq!(
        args,
        vec![
            ("device".to_string(), b(Builtin::Str), false),
            ("force".to_string(), b(Builtin::Bool), true),
            ("id".to_string(), b(Builtin::Str), true),
        ]
    );
    // The QAPI member had no doc: the legacy one fills it.
    assert_eq!(merged.command_args(eject)[0].doc.as_deref(), Some("device name"));
    // Both specs named their implicit type `:obj-eject-arg` with different members.
    assert_eq!(eject.args, Some(TypeRef::named(":obj-eject-arg")));
    assert!(merged.types.contains_key(":obj-eject-arg@1"), "{:?}", merged.types.keys().collect::<Vec<_>>());
    assert_eq!(merged.types.len(), 2);
}

#[test]
fn json_level_types_enum_is_string() {
    let mut qapi = Spec::new(SourceKind::Qapi);
    let e = TypeDef::new(
        "MirrorSyncMode",
        TypeKind::Enum { values: vec![qmpcheck::spec::EnumValue::new("full")] },
        Source::new("q.json", 1),
    );
    qapi.types.insert(e.name.clone(), e);
    command(
        &mut qapi,
        "q.json",
        5,
        "m",
        vec![
            member("sync", TypeRef::named("MirrorSyncMode"), false, "q.json", 6),
            member("size", b(Builtin::Uint64), false, "q.json", 7),
            member("list", TypeRef::array(b(Builtin::Str)), false, "q.json", 8),
        ],
    );
    let mut hx = Spec::new(SourceKind::Hx);
    command(
        &mut hx,
        "c.hx",
        50,
        "m",
        vec![
            member("sync", b(Builtin::Str), false, "c.hx", 50),
            member("size", b(Builtin::Size), false, "c.hx", 50),
            member("list", TypeRef::array(b(Builtin::Int)), false, "c.hx", 50),
        ],
    );
    let merged = merge(vec![qapi, hx]);
    assert_eq!(drift(&merged), ["c.hx:50: type of 'm'.'list' differs: [int] (c.hx:50) vs [str] (q.json:8)"]);
}

#[test]
fn return_and_event_members_drift_too() {
    let mut high = Spec::new(SourceKind::Introspect);
    let inner = high.add_implicit_struct(
        "5",
        vec![member("depth", b(Builtin::Number), false, "live", 0)],
        Source::new("live", 0),
    );
    let ret = high.add_implicit_struct(
        "3",
        vec![Member::new("stats", inner, false), Member::new("account_failed", b(Builtin::Bool), false)],
        Source::new("live", 0),
    );
    let mut c = Command::new("query-blockstats", Source::new("live", 0));
    c.returns = Some(TypeRef::array(ret));
    high.commands.insert(c.name.clone(), c);
    let data = high.add_implicit_struct(
        "7",
        vec![Member::new("actual", b(Builtin::Int), false)],
        Source::new("live", 0),
    );
    let mut ev = Event::new("BALLOON_CHANGE", Source::new("live", 0));
    ev.data = Some(data);
    high.events.insert(ev.name.clone(), ev);

    let mut low = Spec::new(SourceKind::Legacy);
    let inner = low.add_implicit_struct(
        "query-blockstats.stats",
        vec![member("depth", b(Builtin::Int), false, "doc.txt", 21)],
        Source::new("doc.txt", 20),
    );
    let ret = low.add_implicit_struct(
        ":query-blockstats-ret",
        vec![member("stats", inner, false, "doc.txt", 20)],
        Source::new("doc.txt", 19),
    );
    let mut c = Command::new("query-blockstats", Source::new("doc.txt", 18));
    c.returns = Some(TypeRef::array(ret));
    low.commands.insert(c.name.clone(), c);
    let data = low.add_implicit_struct(
        ":obj-BALLOON_CHANGE-data",
        vec![member("actual", b(Builtin::Number), false, "ev.txt", 23)],
        Source::new("ev.txt", 14),
    );
    let mut ev = Event::new("BALLOON_CHANGE", Source::new("ev.txt", 14));
    ev.data = Some(data);
    low.events.insert(ev.name.clone(), ev);

    let merged = merge(vec![low, high]);
    assert_eq!(
        drift(&merged),
        [
            "doc.txt:21: type of 'query-blockstats'.'stats.depth' differs: int (doc.txt:21) vs number (live:0)",
            "doc.txt:18: return member 'account_failed' of 'query-blockstats' missing in doc.txt (present in live:0)",
            "ev.txt:23: type of 'BALLOON_CHANGE'.'actual' differs: number (ev.txt:23) vs int (live:0)",
        ]
    );
    assert_eq!(merged.kind, Some(SourceKind::Introspect));
    assert_eq!(
        merged.events["BALLOON_CHANGE"].sources,
        vec![Source::new("live", 0), Source::new("ev.txt", 14)]
    );
}

#[test]
fn items_in_one_source_only_are_not_drift_and_keep_their_types() {
    let mut qapi = Spec::new(SourceKind::Qapi);
    command(
        &mut qapi,
        "migration.json",
        3,
        "migrate",
        vec![member("uri", b(Builtin::Str), false, "migration.json", 4)],
    );
    let mut legacy = Spec::new(SourceKind::Legacy);
    command(
        &mut legacy,
        "cmds.txt",
        7,
        "eject",
        vec![member("device", b(Builtin::Str), false, "cmds.txt", 8)],
    );
    let merged = merge(vec![qapi, legacy]);
    assert_eq!(drift(&merged), Vec::<String>::new());
    assert_eq!(merged.commands.keys().collect::<Vec<_>>(), ["eject", "migrate"]);
    assert_eq!(merged.command_args(&merged.commands["eject"])[0].source, Some(Source::new("cmds.txt", 8)));
    assert_eq!(merged.unresolved(), vec![]);
}

#[test]
fn identical_types_are_shared_and_collisions_rewrite_references() {
    let shared = |file: &str| {
        TypeDef::new(
            "BlockdevOnError",
            TypeKind::Enum { values: vec![qmpcheck::spec::EnumValue::new("report")] },
            Source::new(file, 1),
        )
    };
    let mut a = Spec::new(SourceKind::Qapi);
    a.types.insert("BlockdevOnError".into(), shared("a.json"));
    let mut b_spec = Spec::new(SourceKind::Qapi);
    b_spec.types.insert("BlockdevOnError".into(), shared("b.json"));
    // `0` means different things in two introspection dumps.
    let mut x = Spec::new(SourceKind::Introspect);
    x.types.insert(
        "0".into(),
        TypeDef::new("0", TypeKind::Builtin { builtin: Builtin::Int }, Source::new("x", 0)),
    );
    let mut y = Spec::new(SourceKind::Introspect);
    y.types.insert(
        "0".into(),
        TypeDef::new("0", TypeKind::Builtin { builtin: Builtin::Str }, Source::new("y", 0)),
    );
    command(
        &mut y,
        "y",
        0,
        "only-in-y",
        vec![member("a", TypeRef::array(TypeRef::named("0")), false, "y", 0)],
    );
    let merged = merge(vec![a, b_spec, x, y]);
    assert_eq!(
        merged.types["BlockdevOnError"].sources,
        vec![Source::new("a.json", 1), Source::new("b.json", 1)]
    );
    let arg = merged.command_args(&merged.commands["only-in-y"])[0];
    assert_eq!(arg.ty, TypeRef::array(TypeRef::named("0@4")));
    assert_eq!(merged.types["0@4"].kind, TypeKind::Builtin { builtin: Builtin::Str });
    assert_eq!(merged.types["0"].kind, TypeKind::Builtin { builtin: Builtin::Int });
    assert_eq!(merged.unresolved(), vec![]);
}

fn seed(name: &str) -> String {
    let path = format!("{}/../shared/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Seed 001 (qmp-commands.txt ~2.6/2.7) given first, so it outranks seed 000 (~2.8) of the
/// same kind. Both drifts below were checked by hand: 000 line 200 documents `base-node`
/// "(Since 2.8)", absent from 001's block-stream (heading at 001 line 475); 000 lost the lines
/// 181-184 holding block_resize's `- "size"`, which 001 has at line 471.
#[test]
fn seed_001_with_seed_000_reports_drift() {
    let s1 = qmpcheck::spec::legacy::parse(&seed("001_c6909e2e14ac2656.txt"), "001");
    let s0 = qmpcheck::spec::legacy::parse(&seed("000_6c43ee94cdfc87ea.txt"), "000");
    let both: Vec<String> = s1.commands.keys().filter(|k| s0.commands.contains_key(*k)).cloned().collect();
    let merged = merge(vec![s1, s0]);
    let found = drift(&merged);
    for expected in [
        "000:200: argument 'base-node' of 'block-stream' documented in 000 but absent from 001:475",
        "000:175: argument 'size' of 'block_resize' missing in 000 (present in 001:471)",
    ] {
        assert!(found.contains(&expected.to_string()), "{expected} not in {found:#?}");
    }
    // Drift is only ever about items both documents have, and always located in the lower one.
    for d in merged.diagnostics.iter().filter(|d| d.kind == DiagnosticKind::Drift) {
        assert_eq!(d.source.file, "000", "{d}");
        assert!(both.iter().any(|c| d.message.contains(&format!("'{c}'"))), "{d}");
    }
    let resize = &merged.commands["block_resize"];
    assert_eq!(resize.sources.iter().map(|s| s.file.as_str()).collect::<Vec<_>>(), ["001", "000"]);
}

/// A member the two documents put at different depths is one drift, not a missing/absent pair.
#[test]
fn member_at_another_depth_is_one_nesting_drift() {
    let build = |file: &str, nested: bool| {
        let mut spec = Spec::new(SourceKind::Legacy);
        let at = |line| Source::new(file, line);
        let package = member("package", b(Builtin::Str), false, file, 5);
        let mut qemu_members = vec![member("major", b(Builtin::Int), false, file, 3)];
        if nested {
            qemu_members.push(package.clone());
        }
        let qemu = spec.add_implicit_struct("query-version.qemu", qemu_members, at(2));
        let mut top = vec![member("qemu", qemu, false, file, 2)];
        if !nested {
            top.push(package);
        }
        let ret = spec.add_implicit_struct(":query-version-ret", top, at(1));
        let mut c = Command::new("query-version", at(1));
        c.returns = Some(ret);
        spec.commands.insert(c.name.clone(), c);
        spec
    };
    let merged = merge(vec![build("new.txt", false), build("old.txt", true)]);
    assert_eq!(
        drift(&merged),
        ["old.txt:5: nesting of return member 'package' of 'query-version' differs: 'qemu.package' (old.txt:5) vs 'package' (new.txt:5)"]
    );
}
