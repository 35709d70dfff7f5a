//! `compat::diff` on synthetic models (each K rule), properties over generated models, and
//! the real pairs: seed 002 (old → new sides of an .hx diff), seed 001 → seed 000 (legacy
//! prose of two QEMU versions) and QEMU 7.2 → 10.0.2 (recorded introspection).
//!
//! Set `QMPCHECK_WRITE_REPORTS=1` to (re)write `reports/compat-*.md` and `.json` from the
//! real pairs while running these tests.

use std::collections::BTreeSet;

use proptest::prelude::*;
use qmpcheck::compat::{self, render, Change, ChangeKind, CompatReport, FailOn, Rule, Severity};
use qmpcheck::spec::{
    Alternative, Builtin, Command, EnumValue, Event, Member, Source, SourceKind, Spec, TypeDef, TypeKind,
    TypeRef, Variant,
};

// ---------------------------------------------------------------------------------------
// Building synthetic models

const INT: TypeRef = TypeRef::Builtin(Builtin::Int);
const STR: TypeRef = TypeRef::Builtin(Builtin::Str);
const BOOL: TypeRef = TypeRef::Builtin(Builtin::Bool);

fn member(name: &str, ty: TypeRef, optional: bool, line: u32) -> Member {
    let mut m = Member::new(name, ty, optional);
    m.source = Some(Source::new("m.txt", line));
    m
}

fn arg(name: &str, ty: TypeRef, line: u32) -> Member {
    member(name, ty, false, line)
}

fn opt(name: &str, ty: TypeRef, line: u32) -> Member {
    member(name, ty, true, line)
}

fn named(spec: &mut Spec, name: &str, kind: TypeKind) -> TypeRef {
    spec.types.insert(name.to_string(), TypeDef::new(name, kind, Source::new("t.txt", 1)));
    TypeRef::named(name)
}

fn enum_type(spec: &mut Spec, name: &str, values: &[&str]) -> TypeRef {
    named(spec, name, TypeKind::Enum { values: values.iter().map(|v| EnumValue::new(*v)).collect() })
}

fn struct_type(spec: &mut Spec, name: &str, members: Vec<Member>) -> TypeRef {
    named(spec, name, TypeKind::Struct { base: None, members })
}

fn command<'s>(
    spec: &'s mut Spec,
    name: &str,
    line: u32,
    args: Vec<Member>,
    returns: Option<TypeRef>,
) -> &'s mut Command {
    let mut c = Command::new(name, Source::new("c.txt", line));
    if !args.is_empty() {
        c.args = Some(spec.add_implicit_struct(format!(":obj-{name}-arg"), args, Source::new("c.txt", line)));
    }
    c.returns = returns;
    spec.commands.insert(name.to_string(), c);
    spec.commands.get_mut(name).expect("just inserted")
}

fn event(spec: &mut Spec, name: &str, line: u32, data: Vec<Member>) {
    let mut e = Event::new(name, Source::new("e.txt", line));
    e.data = Some(spec.add_implicit_struct(format!(":obj-{name}-data"), data, Source::new("e.txt", line)));
    spec.events.insert(name.to_string(), e);
}

fn qapi() -> Spec {
    Spec::new(SourceKind::Qapi)
}

/// `(rule, severity, path)` of every change, for exact comparisons.
fn triples(report: &CompatReport) -> Vec<(Rule, Severity, String)> {
    report.changes.iter().map(|c| (c.rule, c.severity, c.path.clone())).collect()
}

fn t(rule: Rule, severity: Severity, path: &str) -> (Rule, Severity, String) {
    (rule, severity, path.to_string())
}

fn only_change(report: &CompatReport) -> &Change {
    assert_eq!(report.changes.len(), 1, "expected one change, got {:#?}", report.changes);
    &report.changes[0]
}

// ---------------------------------------------------------------------------------------
// One test per rule, on synthetic models

#[test]
fn k1_command_and_event_removed_and_added() {
    let mut old = qapi();
    command(&mut old, "gone", 1, vec![], None);
    event(&mut old, "GONE", 2, vec![]);
    let mut new = qapi();
    command(&mut new, "fresh", 3, vec![], None);
    let report = compat::diff(&old, &new);
    assert_eq!(
        triples(&report),
        vec![
            t(Rule::K1, Severity::Breaking, "gone"),
            t(Rule::K1, Severity::Compatible, "fresh"),
            t(Rule::K1, Severity::Breaking, "GONE"),
        ]
    );
    assert_eq!(report.changes[0].old.as_deref(), Some("c.txt:1"));
    assert_eq!(report.changes[1].new.as_deref(), Some("c.txt:3"));
    assert!(report.changes[0].message.contains("CommandNotFound"), "{}", report.changes[0].message);
    assert!(report.trips(FailOn::Breaking));
}

#[test]
fn k2_k3_arguments_added_removed_and_optionality() {
    let mut old = qapi();
    command(
        &mut old,
        "c",
        1,
        vec![arg("keep", STR, 10), arg("drop", INT, 11), opt("tighten", BOOL, 12)],
        None,
    );
    let mut new = qapi();
    command(
        &mut new,
        "c",
        1,
        vec![opt("keep", STR, 20), arg("tighten", BOOL, 21), opt("extra", INT, 22), arg("must", STR, 23)],
        None,
    );
    let report = compat::diff(&old, &new);
    assert_eq!(
        triples(&report),
        vec![
            t(Rule::K2, Severity::Compatible, "c.arguments.keep"),
            t(Rule::K3, Severity::Breaking, "c.arguments.drop"),
            t(Rule::K2, Severity::Breaking, "c.arguments.tighten"),
            t(Rule::K2, Severity::Compatible, "c.arguments.extra"),
            t(Rule::K2, Severity::Breaking, "c.arguments.must"),
        ]
    );
    let drop = report.at("c.arguments.drop").expect("drop reported");
    assert_eq!((drop.old.as_deref(), drop.new.as_deref()), (Some("m.txt:11"), Some("c.txt:1")));
    let extra = report.at("c.arguments.extra").expect("extra reported");
    assert_eq!((extra.old.as_deref(), extra.new.as_deref()), (Some("c.txt:1"), Some("m.txt:22")));
}

#[test]
fn k4_output_members_through_arrays() {
    let mut old = qapi();
    let stats = struct_type(&mut old, "10", vec![arg("rd", INT, 1), arg("wr", INT, 2), arg("idle", INT, 3)]);
    let info = struct_type(&mut old, "11", vec![arg("stats", stats, 4)]);
    command(&mut old, "query-x", 1, vec![], Some(TypeRef::array(info)));
    let mut new = qapi();
    // Masked names differ between builds: "20"/"21" are the same types as "10"/"11".
    let stats = struct_type(&mut new, "21", vec![arg("rd", INT, 1), opt("wr", INT, 2), arg("flag", BOOL, 3)]);
    let info = struct_type(&mut new, "20", vec![arg("stats", stats, 4)]);
    command(&mut new, "query-x", 1, vec![], Some(TypeRef::array(info)));
    let report = compat::diff(&old, &new);
    assert_eq!(
        triples(&report),
        vec![
            t(Rule::K4, Severity::Breaking, "query-x.return[].stats.wr"),
            t(Rule::K4, Severity::Breaking, "query-x.return[].stats.idle"),
            t(Rule::K4, Severity::Compatible, "query-x.return[].stats.flag"),
        ]
    );
    assert_eq!(report.changes[0].kind, ChangeKind::NowOptional);
}

#[test]
fn k5_type_changes_by_direction() {
    let mut old = qapi();
    command(&mut old, "c", 1, vec![arg("n", INT, 1), arg("s", STR, 2)], None);
    let r = struct_type(&mut old, "r", vec![arg("n", INT, 1), arg("s", STR, 2)]);
    command(&mut old, "q", 2, vec![], Some(r));
    let mut new = qapi();
    let alt = named(
        &mut new,
        "alt",
        TypeKind::Alternate {
            alternatives: vec![
                Alternative { name: "i".into(), ty: INT },
                Alternative { name: "b".into(), ty: BOOL },
            ],
        },
    );
    command(&mut new, "c", 1, vec![arg("n", alt.clone(), 1), arg("s", BOOL, 2)], None);
    let r = struct_type(&mut new, "r2", vec![arg("n", alt, 1), arg("s", BOOL, 2)]);
    command(&mut new, "q", 2, vec![], Some(r));
    let report = compat::diff(&old, &new);
    assert_eq!(
        triples(&report),
        vec![
            t(Rule::K5, Severity::Compatible, "c.arguments.n"),
            t(Rule::K5, Severity::Breaking, "c.arguments.s"),
            t(Rule::K5, Severity::Breaking, "q.return.n"),
            t(Rule::K5, Severity::Breaking, "q.return.s"),
        ]
    );
}

#[test]
fn k5_int_widths_and_number() {
    let mut old = qapi();
    command(&mut old, "c", 1, vec![arg("a", TypeRef::Builtin(Builtin::Int32), 1), arg("b", INT, 2)], None);
    let mut new = qapi();
    command(
        &mut new,
        "c",
        1,
        vec![arg("a", TypeRef::Builtin(Builtin::Int64), 1), arg("b", TypeRef::Builtin(Builtin::Number), 2)],
        None,
    );
    let report = compat::diff(&old, &new);
    assert_eq!(
        triples(&report),
        vec![
            t(Rule::K5, Severity::Compatible, "c.arguments.a"),
            t(Rule::K5, Severity::Compatible, "c.arguments.b")
        ]
    );
    // Introspection collapses every width to int: no width change is visible or reported.
    old.kind = Some(SourceKind::Introspect);
    let report = compat::diff(&old, &new);
    assert_eq!(triples(&report), vec![t(Rule::K5, Severity::Compatible, "c.arguments.b")]);
}

#[test]
fn k6_enum_values_in_both_directions() {
    let mut old = qapi();
    let mode = enum_type(&mut old, "1", &["a", "b"]);
    command(&mut old, "c", 1, vec![arg("mode", mode.clone(), 5)], Some(mode));
    let mut new = qapi();
    let mode = enum_type(&mut new, "2", &["a", "c"]);
    command(&mut new, "c", 1, vec![arg("mode", mode.clone(), 5)], Some(mode));
    let report = compat::diff(&old, &new);
    // The same enum reached as input and as output gets both treatments.
    assert_eq!(
        triples(&report),
        vec![
            t(Rule::K6, Severity::Breaking, "c.arguments.mode=b"),
            t(Rule::K6, Severity::Compatible, "c.arguments.mode=c"),
            t(Rule::K6, Severity::Compatible, "c.return=b"),
            t(Rule::K6, Severity::Warning, "c.return=c"),
        ]
    );
}

#[test]
fn k7_argument_rename_by_separator_at_same_position() {
    let mut old = qapi();
    command(
        &mut old,
        "drive-mirror",
        1,
        vec![arg("device", STR, 1), arg("speed", INT, 2), opt("buf_size", INT, 3)],
        None,
    );
    let mut new = qapi();
    command(
        &mut new,
        "drive-mirror",
        1,
        vec![arg("device", STR, 1), arg("speed", INT, 2), opt("buf-size", INT, 4)],
        None,
    );
    let report = compat::diff(&old, &new);
    let c = only_change(&report);
    assert_eq!((c.rule, c.severity, c.kind), (Rule::K7, Severity::Breaking, ChangeKind::Renamed));
    assert_eq!(c.path, "drive-mirror.arguments.buf-size");
    assert_eq!(c.old_path.as_deref(), Some("drive-mirror.arguments.buf_size"));
    assert!(c.message.contains("same position 3, same type int, names differ by separator"), "{}", c.message);
    assert_eq!((c.old.as_deref(), c.new.as_deref()), (Some("m.txt:3"), Some("m.txt:4")));
}

#[test]
fn k7_command_renamed_into_unstable_name_still_gates() {
    let mut old = qapi();
    command(&mut old, "blockdev-remove-medium", 1, vec![arg("device", STR, 2)], None);
    let mut new = qapi();
    command(&mut new, "x-blockdev-remove-medium", 9, vec![arg("device", STR, 2)], None);
    let report = compat::diff(&old, &new);
    let c = only_change(&report);
    assert_eq!((c.rule, c.severity, c.gates), (Rule::K7, Severity::Breaking, true));
    assert_eq!(c.path, "x-blockdev-remove-medium");
    assert!(
        c.message.contains("names differ by an x- prefix; arguments and return otherwise unchanged"),
        "{}",
        c.message
    );
    assert!(c.message.contains("unstable"), "{}", c.message);
}

#[test]
fn k8_unstable_changes_never_gate_and_deprecation_warns() {
    let mut old = qapi();
    command(&mut old, "x-exp", 1, vec![arg("a", INT, 1)], None);
    command(&mut old, "old-way", 2, vec![arg("a", INT, 1)], None);
    command(&mut old, "c", 3, vec![arg("x-knob", INT, 1)], None);
    let mut new = qapi();
    command(&mut new, "x-exp", 1, vec![], None);
    command(&mut new, "old-way", 2, vec![arg("a", INT, 1)], None).features.push("deprecated".into());
    command(&mut new, "c", 3, vec![], None);
    let report = compat::diff(&old, &new);
    assert_eq!(
        triples(&report),
        vec![
            t(Rule::K3, Severity::Breaking, "c.arguments.x-knob"),
            t(Rule::K8, Severity::Warning, "old-way"),
            t(Rule::K3, Severity::Breaking, "x-exp.arguments.a"),
        ]
    );
    assert_eq!(report.changes.iter().map(|c| c.gates).collect::<Vec<_>>(), vec![false, true, false]);
    assert!(report.changes[1].message.contains("removal is coming"));
    assert!(!report.trips(FailOn::Breaking), "only unstable items broke");
    assert!(report.trips(FailOn::Any), "the deprecation gates under --fail-on any");
    assert!(!report.trips(FailOn::Never));
    assert_eq!(report.summary().ungated, 2);
}

#[test]
fn unions_compare_by_discriminator_value_and_recursion_ends() {
    let build = |suffix: &str, extra: bool| {
        let mut s = qapi();
        let driver = enum_type(&mut s, &format!("d{suffix}"), &["file", "nbd"]);
        let node = TypeRef::named(format!("node{suffix}"));
        let mut file_members = vec![arg("filename", STR, 1), opt("backing", node.clone(), 2)];
        if extra {
            file_members.push(opt("aio", STR, 3));
        }
        let file = struct_type(&mut s, &format!("f{suffix}"), file_members);
        let nbd = struct_type(&mut s, &format!("n{suffix}"), vec![arg("server", STR, 4)]);
        named(
            &mut s,
            &format!("node{suffix}"),
            TypeKind::Union {
                base: None,
                members: vec![arg("driver", driver, 5)],
                discriminator: "driver".into(),
                variants: vec![
                    Variant { value: "file".into(), ty: file, condition: None },
                    Variant { value: "nbd".into(), ty: nbd, condition: None },
                ],
            },
        );
        let mut c = Command::new("blockdev-add", Source::new("c.txt", 1));
        c.args = Some(node);
        s.commands.insert(c.name.clone(), c);
        s
    };
    let report = compat::diff(&build("1", false), &build("2", true));
    assert_eq!(
        triples(&report),
        vec![t(Rule::K2, Severity::Compatible, "blockdev-add.arguments{driver=file}.aio")]
    );
    assert!(compat::diff(&build("1", true), &build("9", true)).changes.is_empty());
}

// ---------------------------------------------------------------------------------------
// A pair of types reached at several paths of one subject

/// `(kind, path, old_path, also_at)` of every change.
type Placed = (ChangeKind, String, Option<String>, Vec<String>);

fn placed(report: &CompatReport) -> Vec<Placed> {
    report.changes.iter().map(|c| (c.kind, c.path.clone(), c.old_path.clone(), c.also_at.clone())).collect()
}

fn place(kind: ChangeKind, path: &str, also_at: &[&str]) -> Placed {
    (kind, path.to_string(), None, also_at.iter().map(|p| p.to_string()).collect())
}

/// OLD: event `E` has `buf-size` then `gamma`, both one struct; command `c` takes `beta`
/// then `alpha`, both one enum `[on]`. NEW: `gamma` then `buf-size`, both one enum (the
/// same struct → enum change at two paths), and `alpha` then `beta`, the enum now `[on,
/// off]`. Member order differs between the sides, so reporting a shared change at the first
/// path in OLD's order put it at `buf-size` one way and `gamma` the other (the property
/// `swapping_old_and_new_reverses_every_change` failed on this shape with
/// PROPTEST_CASES=4000). Each change is one row, at the shortest path (`beta` before
/// `alpha`, `gamma` before `buf-size`), listing the other.
#[test]
fn a_shared_type_change_is_reported_at_the_same_paths_whatever_the_member_order() {
    let old = {
        let mut s = qapi();
        let inner = struct_type(&mut s, "s1", vec![arg("depth", INT, 1)]);
        event(&mut s, "E", 1, vec![arg("buf-size", inner.clone(), 2), arg("gamma", inner, 3)]);
        let on = enum_type(&mut s, "e1", &["on"]);
        command(&mut s, "c", 1, vec![arg("beta", on.clone(), 4), arg("alpha", on, 5)], None);
        s
    };
    let new = {
        let mut s = qapi();
        let mode = enum_type(&mut s, "e2", &["on"]);
        event(&mut s, "E", 1, vec![arg("gamma", mode.clone(), 2), arg("buf-size", mode, 3)]);
        let on_off = enum_type(&mut s, "e3", &["on", "off"]);
        command(&mut s, "c", 1, vec![arg("alpha", on_off.clone(), 4), arg("beta", on_off, 5)], None);
        s
    };
    let forward = compat::diff(&old, &new);
    assert_eq!(
        placed(&forward),
        vec![
            place(ChangeKind::ValueAdded, "c.arguments.beta=off", &["c.arguments.alpha=off"]),
            place(ChangeKind::TypeChanged, "E.data.gamma", &["E.data.buf-size"]),
        ]
    );
    assert_eq!(forward.changes[1].message, "member type changed from object to enum: expect enum values");
    let backward = compat::diff(&new, &old);
    assert_eq!(
        placed(&backward),
        vec![
            place(ChangeKind::ValueRemoved, "c.arguments.beta=off", &["c.arguments.alpha=off"]),
            place(ChangeKind::TypeChanged, "E.data.gamma", &["E.data.buf-size"]),
        ]
    );
    assert_reverses(&forward, &backward);
    // Looking a path up finds the change that lists it.
    assert_eq!(forward.at("E.data.buf-size").map(|c| c.path.as_str()), Some("E.data.gamma"));
    let md = render::markdown(&forward);
    assert!(md.contains("expect enum values (same change also at `data.buf-size`) |"), "{md}");
}

// ---------------------------------------------------------------------------------------
// Members moving between common members and union branches (one change, not two)

/// `(severity, rule, kind, path, old_path, message)` of every change.
type Row = (Severity, Rule, ChangeKind, String, Option<String>, String);

fn rows(report: &CompatReport) -> Vec<Row> {
    report
        .changes
        .iter()
        .map(|c| (c.severity, c.rule, c.kind, c.path.clone(), c.old_path.clone(), c.message.clone()))
        .collect()
}

/// The warning for `size` (int) moving from the common members into the `round` branch of
/// a new `shape` discriminator (values round and square): the same in several tests.
fn size_moved_into_round() -> Row {
    row(
        Severity::Warning,
        Rule::K4,
        ChangeKind::MovedIntoBranch,
        "q.return{shape=round}.size",
        Some("q.return.size"),
        "member `size` (int) moved from the common members into branch shape=round: still sent \
         when `shape` is `round`, absent when it is `square`; readers must check `shape` before \
         relying on it (OLD had no `shape` and a branch kept `size`, so the values without it \
         presumably came with `shape`: existing readers keep working)",
    )
}

fn row(
    severity: Severity,
    rule: Rule,
    kind: ChangeKind,
    path: &str,
    old_path: Option<&str>,
    message: &str,
) -> Row {
    (severity, rule, kind, path.to_string(), old_path.map(str::to_string), message.to_string())
}

/// A union type `name` discriminated by `shape` (an enum of `values`), with `common`
/// members after `shape` and one branch per `(value, members)`.
fn shape_union(
    spec: &mut Spec,
    name: &str,
    values: &[&str],
    common: Vec<Member>,
    branches: Vec<(&str, Vec<Member>)>,
) -> TypeRef {
    let tag = enum_type(spec, &format!("{name}-kind"), values);
    let mut members = vec![arg("shape", tag, 40)];
    members.extend(common);
    let variants = branches
        .into_iter()
        .map(|(value, members)| Variant {
            value: value.to_string(),
            ty: struct_type(spec, &format!("{name}-{value}"), members),
            condition: None,
        })
        .collect();
    named(spec, name, TypeKind::Union { base: None, members, discriminator: "shape".into(), variants })
}

/// `q` returning OLD's struct `{name, size}`.
fn widget_struct() -> Spec {
    let mut old = qapi();
    let w = struct_type(&mut old, "w1", vec![arg("name", STR, 1), arg("size", INT, 2)]);
    command(&mut old, "q", 1, vec![], Some(w));
    old
}

/// `q` returning a union on `shape` with `size` in the branches listed in `size_in`.
fn widget_union(values: &[&str], common: Vec<Member>, size_in: &[&str], size_ty: TypeRef) -> Spec {
    let mut new = qapi();
    let branches = values
        .iter()
        .map(|v| {
            let mut members = vec![arg(&format!("{v}-only"), BOOL, 50)];
            if size_in.contains(v) {
                members.push(arg("size", size_ty.clone(), 51));
            }
            (*v, members)
        })
        .collect();
    let mut all = vec![arg("name", STR, 41)];
    all.extend(common);
    let w = shape_union(&mut new, "w2", values, all, branches);
    command(&mut new, "q", 1, vec![], Some(w));
    new
}

/// Every change of `forward` has its reverse in `backward` (the property test's check).
fn assert_reverses(forward: &CompatReport, backward: &CompatReport) {
    assert_eq!(forward.changes.len(), backward.changes.len(), "{forward:#?}\n{backward:#?}");
    for c in &forward.changes {
        let path = match c.kind {
            ChangeKind::Added | ChangeKind::ValueAdded => c.path.clone(),
            _ => c.old_path.clone().unwrap_or_else(|| c.path.clone()),
        };
        let twin = backward
            .changes
            .iter()
            .find(|r| r.kind == c.kind.reversed() && r.path == path && r.rule == swapped_rule(c));
        assert!(twin.is_some(), "no reverse of {c:#?} in {:#?}", backward.changes);
        // Additions are spelled under NEW's names both ways: their other paths match exactly.
        if matches!(c.kind, ChangeKind::Added | ChangeKind::ValueAdded) {
            assert_eq!(twin.map(|r| &r.also_at), Some(&c.also_at), "{c:#?}");
        }
    }
}

#[test]
fn output_member_moved_into_one_branch_of_a_new_discriminator_is_one_warning() {
    let (old, new) = (widget_struct(), widget_union(&["round", "square"], vec![], &["round"], INT));
    let report = compat::diff(&old, &new);
    assert_eq!(
        rows(&report),
        vec![
            row(
                Severity::Compatible,
                Rule::K4,
                ChangeKind::Added,
                "q.return.shape",
                None,
                "new mandatory member `shape` (enum): readers must ignore unknown keys; may use it"
            ),
            size_moved_into_round(),
            row(
                Severity::Compatible,
                Rule::K4,
                ChangeKind::Added,
                "q.return{shape=round}.round-only",
                None,
                "new mandatory member `round-only` (bool): readers must ignore unknown keys; may use it"
            ),
            row(
                Severity::Compatible,
                Rule::K4,
                ChangeKind::Added,
                "q.return{shape=square}.square-only",
                None,
                "new mandatory member `square-only` (bool): readers must ignore unknown keys; may use it"
            ),
        ]
    );
    let moved = expect(&report, "q.return{shape=round}.size");
    assert_eq!(
        (moved.old.as_deref(), moved.new.as_deref(), moved.gates),
        (Some("m.txt:2"), Some("m.txt:51"), true)
    );
    assert!(!report.trips(FailOn::Breaking));
    assert_reverses(&report, &compat::diff(&new, &old));
}

#[test]
fn output_member_moved_into_branches_against_a_known_discriminator() {
    // OLD already had `shape` with `size` common; NEW keeps `size` for `round` only.
    let old = widget_union(&["round", "square"], vec![arg("size", INT, 2)], &[], INT);
    let new = widget_union(&["round", "square"], vec![], &["round"], INT);
    let report = compat::diff(&old, &new);
    assert_eq!(
        rows(&report),
        vec![row(
            Severity::Breaking,
            Rule::K4,
            ChangeKind::MovedIntoBranch,
            "q.return{shape=round}.size",
            Some("q.return.size"),
            "member `size` (int) moved from the common members into branch shape=round: still sent \
             when `shape` is `round`, absent when it is `square`; readers must check `shape` before \
             relying on it (OLD also sent `square`: readers relying on it there break)"
        )]
    );
    assert_reverses(&report, &compat::diff(&new, &old));

    // NEW adds `hex` without `size`, keeps it for both old values: only new objects lack it.
    let new = widget_union(&["round", "square", "hex"], vec![], &["round", "square"], INT);
    let report = compat::diff(&old, &new);
    assert_eq!(
        rows(&report),
        vec![
            row(
                Severity::Warning,
                Rule::K6,
                ChangeKind::ValueAdded,
                "q.return.shape=hex",
                None,
                "may now be 'hex': readers must handle values they do not know (may break strict readers)"
            ),
            row(
                Severity::Warning,
                Rule::K4,
                ChangeKind::MovedIntoBranch,
                "q.return{shape=round}.size",
                Some("q.return.size"),
                "member `size` (int) moved from the common members into branches shape=round, \
                 shape=square: still sent when `shape` is `round` or `square`, absent when it is `hex`; \
                 readers must check `shape` before relying on it (OLD never sent the values that lack \
                 it: existing readers keep working)"
            ),
        ]
    );
    assert_reverses(&report, &compat::diff(&new, &old));
}

#[test]
fn member_moved_into_every_branch_is_info_and_out_of_branches_compatible() {
    let old = widget_struct();
    let every = widget_union(&["round", "square"], vec![], &["round", "square"], INT);
    let report = compat::diff(&old, &every);
    let moved = expect(&report, "q.return{shape=round}.size");
    assert_eq!(
        (moved.severity, moved.rule, moved.kind, moved.old_path.as_deref(), moved.message.as_str()),
        (
            Severity::Info,
            Rule::K4,
            ChangeKind::MovedIntoBranch,
            Some("q.return.size"),
            "member `size` (int) moved from the common members into every branch of `shape`: still sent \
             whatever `shape` is; nothing to change"
        )
    );
    assert!(report.at("q.return{shape=square}.size").is_none(), "one change for every branch");
    assert_reverses(&report, &compat::diff(&every, &old));

    // The other way round: out of every branch (info), out of one branch (compatible).
    let report = compat::diff(&every, &old);
    assert_eq!(
        rows(&report).into_iter().filter(|r| r.2 == ChangeKind::MovedOutOfBranch).collect::<Vec<_>>(),
        vec![row(
            Severity::Info,
            Rule::K4,
            ChangeKind::MovedOutOfBranch,
            "q.return.size",
            Some("q.return{shape=round}.size"),
            "member `size` (int) moved from every branch of `shape` into the common members: sent \
             whatever `shape` is, as before; nothing to change"
        )]
    );
    let one = widget_union(&["round", "square"], vec![], &["round"], INT);
    let report = compat::diff(&one, &old);
    assert_eq!(
        rows(&report),
        vec![
            row(
                Severity::Breaking,
                Rule::K4,
                ChangeKind::Removed,
                "q.return.shape",
                None,
                "member `shape` (enum) is no longer sent: readers relying on it break; treat it as absent"
            ),
            row(
                Severity::Compatible,
                Rule::K4,
                ChangeKind::MovedOutOfBranch,
                "q.return.size",
                Some("q.return{shape=round}.size"),
                "member `size` (int) moved from branch shape=round into the common members: now sent \
                 whatever `shape` is (before only when it was `round`); readers may rely on it without \
                 checking `shape`"
            ),
            row(
                Severity::Breaking,
                Rule::K4,
                ChangeKind::Removed,
                "q.return{shape=round}.round-only",
                None,
                "member `round-only` (bool) is no longer sent: readers relying on it break; treat it as absent"
            ),
            row(
                Severity::Breaking,
                Rule::K4,
                ChangeKind::Removed,
                "q.return{shape=square}.square-only",
                None,
                "member `square-only` (bool) is no longer sent: readers relying on it break; treat it as absent"
            ),
        ]
    );
}

#[test]
fn member_moved_with_a_type_change_is_a_move_plus_a_k5_change() {
    let (old, new) = (widget_struct(), widget_union(&["round", "square"], vec![], &["round"], STR));
    let report = compat::diff(&old, &new);
    let moves: Vec<Row> = rows(&report).into_iter().filter(|r| r.3.ends_with(".size")).collect();
    assert_eq!(
        moves,
        vec![
            size_moved_into_round(),
            row(
                Severity::Breaking,
                Rule::K5,
                ChangeKind::TypeChanged,
                "q.return{shape=round}.size",
                Some("q.return.size"),
                "member type changed from int to str: expect str values"
            ),
        ]
    );
    assert_reverses(&report, &compat::diff(&new, &old));
}

/// `c` taking OLD's `{name, size?}` or a union on `shape`, `size?` in the branches listed.
fn args_spec(union: Option<(&[&str], &[&str])>, size_common: bool) -> Spec {
    let mut spec = qapi();
    let mut common = vec![arg("name", STR, 1)];
    if size_common {
        common.push(opt("size", INT, 2));
    }
    let ty = match union {
        None => struct_type(&mut spec, "a1", common),
        Some((values, size_in)) => {
            let branches = values
                .iter()
                .map(|v| (*v, if size_in.contains(v) { vec![opt("size", INT, 52)] } else { vec![] }))
                .collect();
            shape_union(&mut spec, "a2", values, common, branches)
        }
    };
    let mut c = Command::new("c", Source::new("c.txt", 1));
    c.args = Some(ty);
    spec.commands.insert("c".into(), c);
    spec
}

#[test]
fn argument_moved_into_branches_breaks_callers_unless_only_new_values_lose_it() {
    // No discriminator before: every call must now send `shape` (its own K2), and `size`
    // only with `shape` = `round`.
    let old = args_spec(None, true);
    let new = args_spec(Some((&["round", "square"], &["round"])), false);
    let report = compat::diff(&old, &new);
    assert_eq!(
        rows(&report),
        vec![
            row(
                Severity::Breaking,
                Rule::K2,
                ChangeKind::Added,
                "c.arguments.shape",
                None,
                "new mandatory argument `shape` (enum): every call must now pass it"
            ),
            row(
                Severity::Breaking,
                Rule::K3,
                ChangeKind::MovedIntoBranch,
                "c.arguments{shape=round}.size",
                Some("c.arguments.size"),
                "argument `size` (int) moved from the common arguments into branch shape=round: accepted \
                 when `shape` is `round`, rejected (\"Parameter 'size' is unexpected\") when it is \
                 `square`; calls passing `size` must now send `shape` set to `round` (OLD had no `shape` \
                 and accepted `size` without it)"
            ),
        ]
    );
    assert_reverses(&report, &compat::diff(&new, &old));

    // `shape` known before: calls with `square` passing `size` now fail.
    let old = args_spec(Some((&["round", "square"], &[])), true);
    let report = compat::diff(&old, &new);
    assert_eq!(
        rows(&report),
        vec![row(
            Severity::Breaking,
            Rule::K3,
            ChangeKind::MovedIntoBranch,
            "c.arguments{shape=round}.size",
            Some("c.arguments.size"),
            "argument `size` (int) moved from the common arguments into branch shape=round: accepted \
             when `shape` is `round`, rejected (\"Parameter 'size' is unexpected\") when it is `square`; \
             pass `size` only with `shape` set to `round` (OLD accepted it with `square` too: such calls \
             now fail)"
        )]
    );
    assert_reverses(&report, &compat::diff(&new, &old));

    // Only a new value loses it: existing calls keep working.
    let new = args_spec(Some((&["round", "square", "hex"], &["round", "square"])), false);
    let report = compat::diff(&old, &new);
    let moved = expect(&report, "c.arguments{shape=round}.size");
    assert_eq!(
        (moved.severity, moved.rule, moved.kind),
        (Severity::Compatible, Rule::K3, ChangeKind::MovedIntoBranch)
    );
    assert!(
        moved.message.ends_with(
            "pass `size` only with `shape` set to `round` or `square` (OLD never accepted the values \
             that lack it: existing calls keep working)"
        ),
        "{}",
        moved.message
    );
    assert_reverses(&report, &compat::diff(&new, &old));

    // Out of a branch into the common arguments: accepted with every value now.
    let report = compat::diff(&args_spec(Some((&["round", "square"], &["round"])), false), &old);
    assert_eq!(
        rows(&report),
        vec![row(
            Severity::Compatible,
            Rule::K2,
            ChangeKind::MovedOutOfBranch,
            "c.arguments.size",
            Some("c.arguments{shape=round}.size"),
            "argument `size` (int) moved from branch shape=round into the common arguments: now accepted \
             whatever `shape` is (before only when it was `round`); existing calls keep working"
        )]
    );
}

#[test]
fn renderers_carry_every_change() {
    let mut old = qapi();
    command(&mut old, "drive-mirror", 1, vec![opt("buf_size", INT, 3)], None);
    command(&mut old, "gone", 2, vec![], None);
    let mut new = qapi();
    command(&mut new, "drive-mirror", 1, vec![opt("buf-size", INT, 3)], None);
    let report = compat::diff(&old, &new);
    let json: serde_json::Value = serde_json::from_str(&render::json(&report)).expect("valid json");
    assert_eq!(json["summary"]["breaking"], 2);
    assert_eq!(json["summary"]["compatible"], 0);
    assert_eq!(json["summary"]["info"], 0);
    assert_eq!(json["changes"].as_array().map(Vec::len), Some(2));
    let first = &json["changes"][0];
    for key in ["rule", "severity", "path", "old", "new", "message"] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert_eq!(first["rule"], "K7");
    assert_eq!(first["severity"], "breaking");
    let md = render::markdown(&report);
    assert!(md.contains("| breaking | 2 | 0 |"), "{md}");
    assert!(md.contains("### `drive-mirror`"), "{md}");
    assert!(md.contains("| **breaking** | K7 | `arguments.buf-size` | `m.txt:3` | `m.txt:3` |"), "{md}");
    assert!(md.contains("### Removed commands (1)"), "{md}");
}

// ---------------------------------------------------------------------------------------
// Properties over generated models

/// A member as generated: name index, type choice, optional.
type GenMember = (usize, u8, bool);

/// A command as generated: name index, arguments, return members (if any), deprecated, and
/// union branches `kind=a` and `kind=b` (`kind=c` has none) that, when given, make both the
/// arguments and the return unions on `kind` (so members move between common and branches).
type GenCommand =
    (usize, Vec<GenMember>, Option<Vec<GenMember>>, bool, Option<(Vec<GenMember>, Vec<GenMember>)>);

const MEMBER_NAMES: [&str; 6] = ["alpha", "buf_size", "buf-size", "x-beta", "beta", "gamma"];
const ENUM_VALUES: [&str; 4] = ["on", "off", "x-auto", "auto"];
const COMMAND_NAMES: [&str; 5] = ["query-a", "do_b", "do-b", "x-do-b", "eject"];
const EVENT_NAMES: [&str; 3] = ["STOP", "RESUME", "X_STOP"];

/// One generated model: commands (name, args, returns) and events (name, data), plus a
/// salt for the (masked) type names so name-independence is exercised.
#[derive(Debug, Clone)]
struct GenModel {
    commands: Vec<GenCommand>,
    events: Vec<(usize, Vec<GenMember>)>,
    enum_values: Vec<usize>,
}

fn gen_members() -> impl Strategy<Value = Vec<GenMember>> {
    prop::collection::vec((0..MEMBER_NAMES.len(), 0u8..6, any::<bool>()), 0..4)
}

fn gen_model() -> impl Strategy<Value = GenModel> {
    (
        prop::collection::vec(
            (
                0..COMMAND_NAMES.len(),
                gen_members(),
                prop::option::of(gen_members()),
                any::<bool>(),
                prop::option::of((gen_members(), gen_members())),
            ),
            0..4,
        ),
        prop::collection::vec((0..EVENT_NAMES.len(), gen_members()), 0..3),
        prop::collection::vec(0..ENUM_VALUES.len(), 1..4),
    )
        .prop_map(|(commands, events, enum_values)| GenModel { commands, events, enum_values })
}

/// Builds the model; type names are `salt`-prefixed numbers, like introspection's.
fn build(g: &GenModel, salt: &str) -> Spec {
    let mut spec = Spec::new(SourceKind::Introspect);
    let mut counter = 0usize;
    let mut fresh = |prefix: &str| {
        counter += 1;
        format!("{prefix}{salt}{counter}")
    };
    let mut values: Vec<&str> = g.enum_values.iter().map(|&i| ENUM_VALUES[i]).collect();
    values.dedup();
    let values: Vec<&str> = values.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let enum_ty = enum_type(&mut spec, &fresh("e"), &values);
    let inner = struct_type(&mut spec, &fresh("s"), vec![arg("depth", INT, 1), opt("name", STR, 2)]);
    let kind_ty = enum_type(&mut spec, &fresh("k"), &["a", "b", "c"]);
    // Members named in `taken` (a union's common members) are left out of its branches.
    let member_list = |list: &[GenMember], taken: &[Member]| -> Vec<Member> {
        let mut out: Vec<Member> = Vec::new();
        for (i, &(n, ty, optional)) in list.iter().enumerate() {
            let name = MEMBER_NAMES[n];
            if out.iter().chain(taken).any(|m| m.name == name) {
                continue;
            }
            let ty = match ty {
                0 => INT,
                1 => STR,
                2 => BOOL,
                3 => enum_ty.clone(),
                4 => inner.clone(),
                _ => TypeRef::array(inner.clone()),
            };
            out.push(member(name, ty, optional, i as u32 + 1));
        }
        out
    };
    let mut members =
        |spec: &mut Spec, list: &[GenMember], branches: Option<&(Vec<GenMember>, Vec<GenMember>)>| {
            let common = member_list(list, &[]);
            let Some((a, b)) = branches else { return struct_type(spec, &fresh("o"), common) };
            let mut variants = Vec::new();
            for (value, list) in [("a", a), ("b", b)] {
                let ty = struct_type(spec, &fresh("o"), member_list(list, &common));
                variants.push(Variant { value: value.into(), ty, condition: None });
            }
            let mut all = vec![arg("kind", kind_ty.clone(), 9)];
            all.extend(common);
            named(
                spec,
                &fresh("u"),
                TypeKind::Union { base: None, members: all, discriminator: "kind".into(), variants },
            )
        };
    for (n, args, returns, deprecated, branches) in &g.commands {
        let name = COMMAND_NAMES[*n];
        let mut c = Command::new(name, Source::new("c.txt", *n as u32 + 1));
        c.args = Some(members(&mut spec, args, branches.as_ref()));
        c.returns = returns.as_ref().map(|r| members(&mut spec, r, branches.as_ref()));
        if *deprecated {
            c.features.push("deprecated".into());
        }
        spec.commands.insert(name.to_string(), c);
    }
    for (n, data) in &g.events {
        let name = EVENT_NAMES[*n];
        let mut e = Event::new(name, Source::new("e.txt", *n as u32 + 1));
        e.data = Some(members(&mut spec, data, None));
        spec.events.insert(name.to_string(), e);
    }
    spec
}

/// The rule an addition, removal or move has once OLD and NEW are swapped: an argument
/// added (K2) is an argument removed (K3) the other way round.
fn swapped_rule(change: &Change) -> Rule {
    match (change.rule, change.kind) {
        (Rule::K2, ChangeKind::Added) => Rule::K3,
        (Rule::K3, ChangeKind::Removed) => Rule::K2,
        // An argument moved into branches is removed from some calls, moved out added to some.
        (Rule::K3, ChangeKind::MovedIntoBranch) => Rule::K2,
        (Rule::K2, ChangeKind::MovedOutOfBranch) => Rule::K3,
        (rule, _) => rule,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_model_against_itself_reports_nothing(g in gen_model()) {
        let a = build(&g, "a");
        // Different masked type names, same structure: still nothing.
        let b = build(&g, "b");
        let report = compat::diff(&a, &b);
        prop_assert_eq!(&report.changes, &Vec::new());
        prop_assert!(!report.trips(FailOn::Any));
    }

    #[test]
    fn swapping_old_and_new_reverses_every_change(ga in gen_model(), gb in gen_model()) {
        let (a, b) = (build(&ga, "a"), build(&gb, "b"));
        let forward = compat::diff(&a, &b);
        let backward = compat::diff(&b, &a);
        prop_assert_eq!(forward.changes.len(), backward.changes.len());
        for c in &forward.changes {
            // The backward report names things by A's names, except its removals (our additions).
            let path = match c.kind {
                ChangeKind::Added | ChangeKind::ValueAdded => c.path.clone(),
                _ => c.old_path.clone().unwrap_or_else(|| c.path.clone()),
            };
            let twin = backward.changes.iter().find(|r| {
                r.kind == c.kind.reversed() && r.path == path && r.rule == swapped_rule(c)
            });
            prop_assert!(twin.is_some(), "no reverse of {:?} in {:#?}", c, backward.changes);
            // An addition's other paths (a shared type's change) are the reverse removal's,
            // spelled alike under NEW's names. (Other kinds are spelled under each report's
            // NEW names: occurrences one side spells alike, such as a member moved out of two
            // branches into one common member, are one path there and two the other way.)
            if matches!(c.kind, ChangeKind::Added | ChangeKind::ValueAdded) {
                let twin_also = twin.map(|r| r.also_at.clone()).unwrap_or_default();
                prop_assert_eq!(&c.also_at, &twin_also, "{:?} vs {:?}", c, twin);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Real pairs

fn seed(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds");
    let entry = std::fs::read_dir(dir)
        .expect("seeds folder")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(name))
        .unwrap_or_else(|| panic!("seed {name} missing"));
    std::fs::read_to_string(entry.path()).expect("seed readable")
}

/// Writes `reports/compat-NAME.md` and `.json` when QMPCHECK_WRITE_REPORTS is set.
fn maybe_write_reports(name: &str, report: &CompatReport) {
    if std::env::var_os("QMPCHECK_WRITE_REPORTS").is_none() {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/reports");
    std::fs::create_dir_all(dir).expect("reports folder");
    std::fs::write(format!("{dir}/compat-{name}.md"), render::markdown(report)).expect("write md");
    std::fs::write(format!("{dir}/compat-{name}.json"), render::json(report)).expect("write json");
}

fn expect<'r>(report: &'r CompatReport, path: &str) -> &'r Change {
    report.at(path).unwrap_or_else(|| {
        let paths: Vec<&str> = report.changes.iter().map(|c| c.path.as_str()).collect();
        panic!("no change at {path}; changes: {paths:#?}")
    })
}

// ---------------------------------------------------------------------------------------
// QEMU 7.2 → 10.0.2, recorded introspection (`qmpcheck record`) committed under corpus/

fn corpus(path: &str) -> (String, String) {
    let full = format!("{}/corpus/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("recording {full} missing ({e}); record it with `qmpcheck record`"));
    (text, format!("corpus/{path}"))
}

/// Names of every `meta-type` entity in a recording's `query-qmp-schema`, read directly
/// from the JSON (independently of the introspection parser).
fn raw_names(text: &str, meta: &str) -> BTreeSet<String> {
    let doc: serde_json::Value = serde_json::from_str(text).expect("recording is JSON");
    doc["query-qmp-schema"]
        .as_array()
        .expect("query-qmp-schema is an array")
        .iter()
        .filter(|e| e["meta-type"] == meta)
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

fn subjects_with(
    report: &CompatReport,
    kind: ChangeKind,
    subject_kind: compat::SubjectKind,
) -> BTreeSet<String> {
    report
        .changes
        .iter()
        .filter(|c| c.kind == kind && c.subject_kind == subject_kind && c.path == c.subject)
        .map(|c| c.subject.clone())
        .collect()
}

fn qemu_72_to_100() -> (CompatReport, String, String) {
    let (old_text, old_file) = corpus("qemu-7.2/qemu-system-x86_64.json");
    let (new_text, new_file) = corpus("qemu-10.0/qemu-system-x86_64.json");
    let old = qmpcheck::spec::introspect::parse(&old_text, &old_file);
    let new = qmpcheck::spec::introspect::parse(&new_text, &new_file);
    (compat::diff(&old, &new), old_text, new_text)
}

#[test]
fn qemu_72_to_100_added_and_removed_equal_the_raw_set_difference() {
    let (report, old_text, new_text) = qemu_72_to_100();
    maybe_write_reports("qemu-7.2-to-10.0", &report);
    for (meta, kind) in [("command", compat::SubjectKind::Command), ("event", compat::SubjectKind::Event)] {
        let (old, new) = (raw_names(&old_text, meta), raw_names(&new_text, meta));
        let removed: BTreeSet<String> = old.difference(&new).cloned().collect();
        let added: BTreeSet<String> = new.difference(&old).cloned().collect();
        assert_eq!(subjects_with(&report, ChangeKind::Removed, kind), removed, "removed {meta}s");
        assert_eq!(subjects_with(&report, ChangeKind::Added, kind), added, "added {meta}s");
        assert!(
            !report.changes.iter().any(|c| c.kind == ChangeKind::Renamed && c.subject_kind == kind),
            "no {meta} rename between 7.2 and 10.0"
        );
    }
    // Sizes checked by hand against the recordings (216 → 233 commands, 52 → 55 events).
    assert_eq!(raw_names(&old_text, "command").len(), 216);
    assert_eq!(raw_names(&new_text, "command").len(), 233);
    assert_eq!(subjects_with(&report, ChangeKind::Removed, compat::SubjectKind::Command).len(), 2);
    assert_eq!(subjects_with(&report, ChangeKind::Added, compat::SubjectKind::Command).len(), 19);
}

#[test]
fn qemu_72_to_100_argument_level_findings_checked_by_hand() {
    let (report, _, _) = qemu_72_to_100();
    let check = |path: &str, rule: Rule, severity: Severity, kind: ChangeKind, gates: bool| {
        let c = expect(&report, path);
        assert_eq!((c.rule, c.severity, c.kind, c.gates), (rule, severity, kind, gates), "{path}: {c:#?}");
    };
    // migrate: blk and inc (block migration) removed, uri became optional (channels added).
    check("migrate.arguments.blk", Rule::K3, Severity::Breaking, ChangeKind::Removed, true);
    check("migrate.arguments.inc", Rule::K3, Severity::Breaking, ChangeKind::Removed, true);
    check("migrate.arguments.uri", Rule::K2, Severity::Compatible, ChangeKind::NowOptional, true);
    check("migrate.arguments.channels", Rule::K2, Severity::Compatible, ChangeKind::Added, true);
    // query-status lost `singlestep`.
    check("query-status.return.singlestep", Rule::K4, Severity::Breaking, ChangeKind::Removed, true);
    // block-stream gained optional backing-mask-protocol.
    check(
        "block-stream.arguments.backing-mask-protocol",
        Rule::K2,
        Severity::Compatible,
        ChangeKind::Added,
        true,
    );
    // ChardevBackendKind lost 'console' (input, through the backend union's tag).
    check(
        "chardev-add.arguments.backend.type=console",
        Rule::K6,
        Severity::Breaking,
        ChangeKind::ValueRemoved,
        true,
    );
    // MigrationStatus gained a value readers of the MIGRATION event may not know.
    check(
        "MIGRATION.data.status=postcopy-recover-setup",
        Rule::K6,
        Severity::Warning,
        ChangeKind::ValueAdded,
        true,
    );
    // BlockdevDriver 'gluster' gained the deprecated feature.
    check("blockdev-add.arguments.driver=gluster", Rule::K8, Severity::Warning, ChangeKind::Deprecated, true);
    // An unstable output member: reported, never gates.
    check(
        "query-migrate-parameters.return.x-vcpu-dirty-limit-period",
        Rule::K4,
        Severity::Compatible,
        ChangeKind::Added,
        false,
    );
    // Removed unstable command, removed deprecated event.
    check("x-query-profile", Rule::K1, Severity::Breaking, ChangeKind::Removed, false);
    check("MEM_UNPLUG_ERROR", Rule::K1, Severity::Breaking, ChangeKind::Removed, true);
    assert!(expect(&report, "MEM_UNPLUG_ERROR").message.contains("(it was deprecated)"));
    // A recursive output type (BlockStats.parent/backing) is not walked again below itself.
    check(
        "query-blockstats.return[].stats.zone_append_bytes",
        Rule::K4,
        Severity::Compatible,
        ChangeKind::Added,
        true,
    );
    assert_eq!(report.for_subject("query-blockstats").len(), 12);
    let s = report.summary();
    // Before moves were recognised, query-sev's policy and handle counted as 2 breaking
    // removals plus 2 compatible additions (54, 31, 180); now they are 2 warnings.
    assert_eq!((s.breaking, s.warning, s.compatible, s.info, s.ungated), (52, 33, 178, 0, 14));
    assert!(report.trips(FailOn::Breaking));
}

/// query-sev: 7.2's SevInfo struct became a union on the new `sev-type` in 10.0, and its
/// `policy` and `handle` moved into branch `sev-type=sev` (SEV-SNP guests have neither).
/// One move each, not a removal plus an addition.
#[test]
fn qemu_72_to_100_query_sev_policy_and_handle_moved_into_the_sev_branch() {
    let (report, _, _) = qemu_72_to_100();
    let moved = |m: &str| {
        format!(
            "member `{m}` (int) moved from the common members into branch sev-type=sev: still sent when \
             `sev-type` is `sev`, absent when it is `sev-snp`; readers must check `sev-type` before \
             relying on it (OLD had no `sev-type` and a branch kept `{m}`, so the values without it \
             presumably came with `sev-type`: existing readers keep working)"
        )
    };
    let got: Vec<Row> = report
        .for_subject("query-sev")
        .into_iter()
        .map(|c| (c.severity, c.rule, c.kind, c.path.clone(), c.old_path.clone(), c.message.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            row(
                Severity::Compatible,
                Rule::K4,
                ChangeKind::Added,
                "query-sev.return.sev-type",
                None,
                "new mandatory member `sev-type` (enum): readers must ignore unknown keys; may use it"
            ),
            row(
                Severity::Warning,
                Rule::K4,
                ChangeKind::MovedIntoBranch,
                "query-sev.return{sev-type=sev}.policy",
                Some("query-sev.return.policy"),
                &moved("policy")
            ),
            row(
                Severity::Warning,
                Rule::K4,
                ChangeKind::MovedIntoBranch,
                "query-sev.return{sev-type=sev}.handle",
                Some("query-sev.return.handle"),
                &moved("handle")
            ),
            row(
                Severity::Compatible,
                Rule::K4,
                ChangeKind::Added,
                "query-sev.return{sev-type=sev-snp}.snp-policy",
                None,
                "new mandatory member `snp-policy` (int): readers must ignore unknown keys; may use it"
            ),
        ]
    );
    let policy = expect(&report, "query-sev.return{sev-type=sev}.policy");
    assert_eq!(
        (policy.old.as_deref(), policy.new.as_deref(), policy.gates),
        (
            Some("corpus/qemu-7.2/qemu-system-x86_64.json:7635"),
            Some("corpus/qemu-10.0/qemu-system-x86_64.json:16973"),
            true
        )
    );
    // No member anywhere is reported both removed and, under the same name, added in a branch.
    for c in report.changes.iter().filter(|c| c.kind == ChangeKind::Removed && c.path != c.subject) {
        let name = c.path.rsplit('.').next().unwrap_or_default();
        let twin = report.changes.iter().find(|a| {
            a.kind == ChangeKind::Added && a.subject == c.subject && a.path.ends_with(&format!("}}.{name}"))
        });
        assert!(twin.is_none(), "{c:#?} and {twin:#?} are one move");
    }
}

// ---------------------------------------------------------------------------------------
// Seed 002: the two sides of a diff of qmp-commands.hx

/// Seed 002's sides, with prose fragments the hunks cut off from their headings named
/// after seed 001's commands (the same era of qmp-commands.txt).
fn seed_002_report() -> CompatReport {
    let mut sides = qmpcheck::spec::hx::parse(&seed("002_"), "seeds/002.txt");
    let reference = qmpcheck::spec::legacy::parse(&seed("001_"), "seeds/001.txt");
    qmpcheck::spec::hx::attribute(&mut sides, &reference);
    compat::diff(&sides.old, &sides.new)
}

/// The one change of `subject` whose path ends with `.member`.
fn member_change<'r>(report: &'r CompatReport, subject: &str, member: &str) -> &'r Change {
    let suffix = format!(".{member}");
    let found: Vec<&Change> =
        report.for_subject(subject).into_iter().filter(|c| c.path.ends_with(&suffix)).collect();
    assert_eq!(found.len(), 1, "{subject} …{suffix}: {found:#?}");
    found[0]
}

#[test]
fn seed_002_renames_additions_and_output_members() {
    let report = seed_002_report();
    maybe_write_reports("seed-002", &report);
    for (old, new) in [
        ("blockdev-remove-medium", "x-blockdev-remove-medium"),
        ("blockdev-insert-medium", "x-blockdev-insert-medium"),
    ] {
        let c = expect(&report, new);
        assert_eq!(
            (c.rule, c.severity, c.kind, c.gates),
            (Rule::K7, Severity::Breaking, ChangeKind::Renamed, true)
        );
        assert_eq!(c.old_path.as_deref(), Some(old));
        assert!(
            c.message.contains("names differ by an x- prefix; arguments and return otherwise unchanged"),
            "{c:?}"
        );
        assert!(c.message.contains("unstable"), "{c:?}");
        assert_eq!(report.for_subject(new).len(), 1, "nothing else changed in {new}");
    }
    // `.name = "x-blockdev-remove-medium"` is line 190 of the seed, the old name line 189.
    let c = expect(&report, "x-blockdev-remove-medium");
    assert_eq!(
        (c.old.as_deref(), c.new.as_deref()),
        (Some("seeds/002.txt@old:189"), Some("seeds/002.txt@new:190"))
    );

    let c = expect(&report, "drive-mirror.arguments.buf-size");
    assert_eq!((c.rule, c.severity, c.kind), (Rule::K7, Severity::Breaking, ChangeKind::Renamed));
    assert_eq!(c.old_path.as_deref(), Some("drive-mirror.arguments.buf_size"));
    assert!(c.message.contains("same position 3, same type int, names differ by separator"), "{c:?}");
    assert_eq!(
        (c.old.as_deref(), c.new.as_deref()),
        (Some("seeds/002.txt@old:10"), Some("seeds/002.txt@new:11"))
    );

    let c = expect(&report, "blockdev-mirror");
    assert_eq!((c.rule, c.severity, c.kind), (Rule::K1, Severity::Compatible, ChangeKind::Added));
    assert_eq!(c.new.as_deref(), Some("seeds/002.txt@new:17"));

    for (subject, member) in [
        ("query-blockstats", "account_invalid"),
        ("query-blockstats", "account_failed"),
        ("query-cpus", "arch"),
    ] {
        let c = member_change(&report, subject, member);
        assert!(c.path.starts_with(&format!("{subject}.return[]")), "{c:?}");
        assert_eq!(
            (c.rule, c.severity, c.kind),
            (Rule::K4, Severity::Compatible, ChangeKind::Added),
            "{c:?}"
        );
    }
    let subjects: BTreeSet<&str> = report.changes.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(
        subjects,
        BTreeSet::from([
            "blockdev-mirror",
            "drive-mirror",
            "query-blockstats",
            "query-cpus",
            "x-blockdev-insert-medium",
            "x-blockdev-remove-medium"
        ])
    );
    assert_eq!(report.summary().breaking, 3);
    assert!(report.trips(FailOn::Breaking));
}

// ---------------------------------------------------------------------------------------
// Seed 001 (qmp-commands.txt ~2.6/2.7) → seed 000 (~2.8)

#[test]
fn seed_001_to_000_findings_checked_by_reading_both_seeds() {
    let old = qmpcheck::spec::legacy::parse(&seed("001_"), "seeds/001.txt");
    let new = qmpcheck::spec::legacy::parse(&seed("000_"), "seeds/000.txt");
    let report = compat::diff(&old, &new);
    maybe_write_reports("seed-001-to-000", &report);

    // block-stream: 001 (lines 475-497) documents job-id, device, base, backing-file, speed,
    // on-error; 000 adds base-node "(json-string, optional) (Since 2.8)" at its line 200.
    let stream = report.for_subject("block-stream");
    assert_eq!(stream.len(), 1, "{stream:#?}");
    let c = stream[0];
    assert_eq!(c.path, "block-stream.arguments.base-node");
    assert_eq!(
        (c.rule, c.severity, c.kind, c.gates),
        (Rule::K2, Severity::Compatible, ChangeKind::Added, true)
    );
    assert_eq!(c.new.as_deref(), Some("seeds/000.txt:200"));

    // query-block's "drv" list: 001 line 1304 has "tftp", 000 lines 826-830 do not
    // (QEMU 2.8 dropped the tftp protocol driver). Output, so nothing breaks.
    let c = expect(&report, "query-block.return[].inserted.drv=tftp");
    assert_eq!((c.rule, c.severity, c.kind), (Rule::K6, Severity::Compatible, ChangeKind::ValueRemoved));

    // x-colo-lost-heartbeat (000 line 149) is new and unstable: reported, never gates.
    let c = expect(&report, "x-colo-lost-heartbeat");
    assert_eq!(
        (c.rule, c.severity, c.kind, c.gates),
        (Rule::K1, Severity::Compatible, ChangeKind::Added, false)
    );
    assert_eq!(c.new.as_deref(), Some("seeds/000.txt:149"));
}

// ---------------------------------------------------------------------------------------
// A type graph that fans out at every level (exponentially many paths)

/// `c` takes `t` of type `L0`; each `Li` has members `a` and `bb`, both of type `Li+1`,
/// down to `L{depth}`, an enum `values`: 2^depth paths reach the enum. With `back`, the
/// enum level is a struct whose member `back` leads to `L0` again (a cycle), and the enum
/// sits below it at member `e`.
fn fan_out(depth: usize, values: &[&str], back: bool) -> Spec {
    let mut s = qapi();
    let bottom = enum_type(&mut s, "values", values);
    let mut below = if back {
        let members = vec![opt("back", TypeRef::named("L0"), 3), arg("e", bottom, 4)];
        struct_type(&mut s, &format!("L{depth}"), members)
    } else {
        bottom
    };
    for level in (0..depth).rev() {
        let members = vec![arg("a", below.clone(), 1), arg("bb", below, 2)];
        below = struct_type(&mut s, &format!("L{level}"), members);
    }
    command(&mut s, "c", 1, vec![arg("t", below, 1)], None);
    s
}

/// The 20 shortest other paths of the change at the bottom of [`fan_out`] (`bottom` is the
/// rest of the path below the last level): one `bb` among `a`s, as deep as possible (a
/// `bb` costs one character; deeper ones sort first), sorted.
fn fan_out_also_at(depth: usize, bottom: &str) -> Vec<String> {
    let mut paths: Vec<String> = (depth - 20..depth)
        .map(|bb| {
            let steps: Vec<&str> = (0..depth).map(|level| if level == bb { "bb" } else { "a" }).collect();
            format!("c.arguments.t.{}{bottom}", steps.join("."))
        })
        .collect();
    paths.sort();
    paths
}

/// 40 levels of two members of one type: 2^40 paths reach the enum that gains `off`.
/// Walking every path would never end (20 levels took 14 s in debug builds); each pair is
/// walked once and re-rooted, so this runs in milliseconds. The change is one row at the
/// shortest path (all `a`s), listing the 20 next shortest and counting the other 2^40 - 21,
/// the same both ways.
#[test]
fn a_type_reached_at_exponentially_many_paths_is_walked_once_and_listed_up_to_a_limit() {
    let depth = 40;
    let (old, new) = (fan_out(depth, &["on"], false), fan_out(depth, &["on", "off"], false));
    let path = format!("c.arguments.t.{}=off", vec!["a"; depth].join("."));
    let others = fan_out_also_at(depth, "=off");
    let more = (1usize << depth) - 1 - compat::ALSO_AT_LIMIT;
    let forward = compat::diff(&old, &new);
    let c = only_change(&forward);
    assert_eq!((c.kind, c.rule, c.severity), (ChangeKind::ValueAdded, Rule::K6, Severity::Compatible));
    assert_eq!((&c.path, &c.also_at, c.also_at_more), (&path, &others, more));
    let backward = compat::diff(&new, &old);
    let r = only_change(&backward);
    assert_eq!(r.kind, ChangeKind::ValueRemoved);
    assert_eq!((&r.path, &r.also_at, r.also_at_more), (&path, &others, more));
    assert_reverses(&forward, &backward);
    // Readable both ways: the Markdown row names 20 places and counts the rest.
    let md = render::markdown(&forward);
    assert!(
        md.contains(&format!("`{}` and {more} more places) |", others[19].trim_start_matches("c."))),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&render::json(&forward)).expect("valid json");
    assert_eq!(json["changes"][0]["also_at_more"], serde_json::json!(more));
    assert_eq!(json["changes"][0]["also_at"].as_array().map(Vec::len), Some(20));
}

/// The same with a cycle: the bottom level leads back to the top (`back`), where the walk
/// stops (the top is being compared further up). Results below the top depend on that
/// stop, which is the same at every place, so they are still reused: same row, same count.
#[test]
fn a_fan_out_with_a_cycle_back_to_the_top_is_walked_once_too() {
    let depth = 40;
    let (old, new) = (fan_out(depth, &["on"], true), fan_out(depth, &["on", "off"], true));
    let forward = compat::diff(&old, &new);
    let c = only_change(&forward);
    assert_eq!(c.path, format!("c.arguments.t.{}.e=off", vec!["a"; depth].join(".")));
    assert_eq!(c.also_at, fan_out_also_at(depth, ".e=off"));
    assert_eq!(c.also_at_more, (1usize << depth) - 1 - compat::ALSO_AT_LIMIT);
    assert_reverses(&forward, &compat::diff(&new, &old));
}

/// Just over the limit, the list is the shortest others and the count is exact; at the
/// limit, nothing is counted (5 levels: 32 paths, 31 others; 4 levels: 16 paths).
#[test]
fn also_at_lists_at_most_the_limit_and_counts_the_rest() {
    let report = compat::diff(&fan_out(5, &["on"], false), &fan_out(5, &["on", "off"], false));
    let c = only_change(&report);
    assert_eq!((c.also_at.len(), c.also_at_more), (20, 11));
    let report = compat::diff(&fan_out(4, &["on"], false), &fan_out(4, &["on", "off"], false));
    let c = only_change(&report);
    assert_eq!((c.also_at.len(), c.also_at_more), (15, 0));
    let md = render::markdown(&report);
    assert!(!md.contains("more place"), "{md}");
    let json = render::json(&report);
    assert!(json.contains("also_at") && !json.contains("also_at_more"), "{json}");
}

/// 30 structs `D0`..`D29`, each with the enum at `e` and members `m0`, `m1`, `m2` of types
/// 1, 7 and 13 further on (modulo 30): cycles everywhere, and the set of pairs above a
/// place differs from place to place, so results rarely fit elsewhere exactly. Walking
/// again is capped; the change is still one row at the shortest path, listing 20 others.
/// (The count of other places is approximate here: it is not asserted.)
#[test]
fn a_schema_full_of_cycles_finishes_with_one_row_per_change() {
    let build_dense = |values: &[&str]| {
        let mut s = qapi();
        let bottom = enum_type(&mut s, "values", values);
        let n = 30;
        for i in 0..n {
            let mut members = vec![arg("e", bottom.clone(), 1)];
            for (k, d) in [1usize, 7, 13].iter().enumerate() {
                members.push(arg(&format!("m{k}"), TypeRef::named(format!("D{}", (i + d) % n)), 2));
            }
            struct_type(&mut s, &format!("D{i}"), members);
        }
        command(&mut s, "c", 1, vec![arg("t", TypeRef::named("D0"), 1)], None);
        s
    };
    let (old, new) = (build_dense(&["on"]), build_dense(&["on", "off"]));
    let forward = compat::diff(&old, &new);
    let c = only_change(&forward);
    assert_eq!((c.kind, c.path.as_str()), (ChangeKind::ValueAdded, "c.arguments.t.e=off"));
    assert_eq!(c.also_at.len(), compat::ALSO_AT_LIMIT);
    assert!(c.also_at.contains(&"c.arguments.t.m0.e=off".to_string()), "{c:#?}");
    assert!(c.also_at_more > 0);
    let backward = compat::diff(&new, &old);
    assert_eq!(only_change(&backward).path, "c.arguments.t.e=off");
}
