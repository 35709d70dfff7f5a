//! JSON Schemas derived from a hand-built model: every type kind and builtin, recursion,
//! union arguments, alternates and masked names; valid instances pass, and each kind of
//! invalid instance fails at the expected instance path.

use qmpcheck::check::examples::{check_examples, check_examples_report};
use qmpcheck::check::schema::{
    def_ref, file_stem, SchemaOptions, SchemaRole, SchemaSet, SchemaViolation, Validators,
};
use qmpcheck::spec::{
    Alternative, Builtin, Command, DiagnosticKind, Direction, EnumValue, Event, Example, Member, Source,
    SourceKind, Spec, TypeDef, TypeKind, TypeRef, Variant,
};
use serde_json::{json, Value};

fn src() -> Source {
    Source::new("synthetic", 1)
}

fn member(name: &str, ty: TypeRef, optional: bool) -> Member {
    Member::new(name, ty, optional)
}

fn b(builtin: Builtin) -> TypeRef {
    TypeRef::Builtin(builtin)
}

fn add_type(spec: &mut Spec, name: &str, kind: TypeKind, implicit: bool) {
    let mut def = TypeDef::new(name, kind, src());
    def.implicit = implicit;
    spec.types.insert(name.to_string(), def);
}

fn strukt(members: Vec<Member>) -> TypeKind {
    TypeKind::Struct { base: None, members }
}

/// The synthetic model every test uses.
fn model(kind: SourceKind) -> Spec {
    let mut spec = Spec::new(kind);
    // Introspection lists builtins as named types.
    add_type(&mut spec, "int", TypeKind::Builtin { builtin: Builtin::Int }, false);
    add_type(
        &mut spec,
        "Color",
        TypeKind::Enum { values: vec![EnumValue::new("red"), EnumValue::new("green")] },
        false,
    );
    add_type(
        &mut spec,
        "Base",
        strukt(vec![member("id", b(Builtin::Str), false), member("color", TypeRef::named("Color"), true)]),
        false,
    );
    add_type(
        &mut spec,
        "Point",
        TypeKind::Struct {
            base: Some("Base".into()),
            members: vec![member("x", TypeRef::named("int"), false)],
        },
        false,
    );
    // Masked introspection names: a struct "135" and its array type "[135]".
    add_type(&mut spec, "135", strukt(vec![member("count", b(Builtin::Uint8), false)]), true);
    add_type(&mut spec, "[135]", TypeKind::Array { element: TypeRef::named("135") }, true);
    add_type(
        &mut spec,
        "StrOrInt",
        TypeKind::Alternate {
            alternatives: vec![
                Alternative { name: "s".into(), ty: b(Builtin::Str) },
                Alternative { name: "i".into(), ty: b(Builtin::Int) },
            ],
        },
        false,
    );
    // A recursive union: BlockOpts (qcow2 branch) → BlockRef (alternate) → BlockOpts.
    add_type(
        &mut spec,
        "Driver",
        TypeKind::Enum {
            values: vec![EnumValue::new("file"), EnumValue::new("qcow2"), EnumValue::new("null-co")],
        },
        false,
    );
    add_type(&mut spec, "BlockOptsFile", strukt(vec![member("filename", b(Builtin::Str), false)]), false);
    add_type(
        &mut spec,
        "BlockOptsQcow2",
        strukt(vec![member("file", TypeRef::named("BlockRef"), false)]),
        false,
    );
    add_type(
        &mut spec,
        "BlockOpts",
        TypeKind::Union {
            base: None,
            members: vec![
                member("driver", TypeRef::named("Driver"), false),
                member("node-name", b(Builtin::Str), true),
            ],
            discriminator: "driver".into(),
            variants: vec![
                Variant { value: "file".into(), ty: TypeRef::named("BlockOptsFile"), condition: None },
                Variant { value: "qcow2".into(), ty: TypeRef::named("BlockOptsQcow2"), condition: None },
            ],
        },
        false,
    );
    add_type(
        &mut spec,
        "BlockRef",
        TypeKind::Alternate {
            alternatives: vec![
                Alternative { name: "definition".into(), ty: TypeRef::named("BlockOpts") },
                Alternative { name: "reference".into(), ty: b(Builtin::Str) },
            ],
        },
        false,
    );

    // A union whose branch is itself a union: Outer(kind=a) → InnerA(mode=x) → {xv}.
    let enum_of =
        |values: &[&str]| TypeKind::Enum { values: values.iter().map(|v| EnumValue::new(*v)).collect() };
    add_type(&mut spec, "Kind", enum_of(&["a", "b"]), false);
    add_type(&mut spec, "Mode", enum_of(&["x", "y"]), false);
    add_type(&mut spec, "LeafX", strukt(vec![member("xv", b(Builtin::Int), false)]), false);
    add_type(
        &mut spec,
        "InnerA",
        TypeKind::Union {
            base: None,
            members: vec![member("mode", TypeRef::named("Mode"), false)],
            discriminator: "mode".into(),
            variants: vec![Variant { value: "x".into(), ty: TypeRef::named("LeafX"), condition: None }],
        },
        false,
    );
    add_type(
        &mut spec,
        "Outer",
        TypeKind::Union {
            base: None,
            members: vec![member("kind", TypeRef::named("Kind"), false)],
            discriminator: "kind".into(),
            variants: vec![Variant { value: "a".into(), ty: TypeRef::named("InnerA"), condition: None }],
        },
        false,
    );
    let mut nest = Command::new("nest", src());
    nest.boxed = true;
    nest.args = Some(TypeRef::named("Outer"));
    spec.commands.insert("nest".into(), nest);

    // Command "go": one member per builtin, plus enum, alternate, masked array, struct.
    let mut mode = member("mode", b(Builtin::Str), true);
    mode.values = vec!["fast".into(), "slow".into()];
    mode.doc = Some("how to go".into());
    mode.default = Some(json!("fast"));
    let go_args = vec![
        member("i8", b(Builtin::Int8), false),
        member("u64", b(Builtin::Uint64), false),
        member("i", b(Builtin::Int), true),
        member("i16", b(Builtin::Int16), true),
        member("i32", b(Builtin::Int32), true),
        member("i64", b(Builtin::Int64), true),
        member("u8", b(Builtin::Uint8), true),
        member("u16", b(Builtin::Uint16), true),
        member("u32", b(Builtin::Uint32), true),
        member("size", b(Builtin::Size), true),
        member("num", b(Builtin::Number), true),
        member("flag", b(Builtin::Bool), true),
        member("nul", b(Builtin::Null), true),
        member("anything", b(Builtin::Any), true),
        member("obj", b(Builtin::Object), true),
        member("color", TypeRef::named("Color"), true),
        member("alt", TypeRef::named("StrOrInt"), true),
        member("list", TypeRef::named("[135]"), true),
        member("tags", TypeRef::array(b(Builtin::Str)), true),
        member("point", TypeRef::named("Point"), true),
        mode,
    ];
    let args = spec.add_implicit_struct(":obj-go-arg", go_args, src());
    let ret = spec.add_implicit_struct(
        "go/return/stats.v1",
        vec![member("done", b(Builtin::Bool), false), member("left", b(Builtin::Uint32), true)],
        src(),
    );
    let mut go = Command::new("go", src());
    go.args = Some(args);
    go.returns = Some(ret);
    spec.commands.insert("go".into(), go);

    spec.commands.insert("stop".into(), Command::new("stop", src()));

    let mut add = Command::new("add", src());
    add.boxed = true;
    add.args = Some(TypeRef::named("BlockOpts"));
    spec.commands.insert("add".into(), add);

    let mut points = Command::new("query-points", src());
    points.returns = Some(TypeRef::array(TypeRef::named("Point")));
    spec.commands.insert("query-points".into(), points);

    let data = spec.add_implicit_struct(
        ":obj-EV-arg",
        vec![member("node", TypeRef::named("BlockRef"), false)],
        src(),
    );
    let mut ev = Event::new("EV", src());
    ev.data = Some(data);
    spec.events.insert("EV".into(), ev);
    spec.events.insert("BARE".into(), Event::new("BARE", src()));
    spec
}

fn validators(kind: SourceKind, strict: bool) -> Validators {
    let set = SchemaSet::build(&model(kind), SchemaOptions { strict });
    let v = Validators::new(&set);
    assert_eq!(v.compile_all().expect("every schema compiles"), 12);
    v
}

/// The single violation of a failing instance.
fn one(result: Result<(), Vec<SchemaViolation>>) -> SchemaViolation {
    let list = result.expect_err("instance must fail");
    assert_eq!(list.len(), 1, "{list:#?}");
    list.into_iter().next().expect("one violation")
}

fn go(extra: Value) -> Value {
    let mut base = json!({"i8": 1, "u64": 2});
    if let (Value::Object(m), Value::Object(e)) = (&mut base, extra) {
        m.extend(e);
    }
    base
}

#[test]
fn every_builtin_and_kind_accepts_valid_values() {
    let v = validators(SourceKind::Introspect, false);
    let full = go(json!({
        "i": -5, "i16": -32768, "i32": 2147483647, "i64": i64::MIN, "u8": 255, "u16": 65535,
        "u32": 4294967295u64, "size": u64::MAX, "num": 1.5, "flag": true, "nul": null,
        "anything": [1, {"a": null}], "obj": {"free": "form"}, "color": "green", "alt": "text",
        "list": [{"count": 0}, {"count": 255}], "tags": ["a", "b"],
        "point": {"id": "p", "color": "red", "x": 3}, "mode": "slow"
    }));
    assert_eq!(v.validate_args("go", &full), Ok(()));
    // number accepts integers, as QEMU's number does; an alternate takes either branch.
    assert_eq!(v.validate_args("go", &go(json!({"num": 3, "alt": 7}))), Ok(()));
    assert_eq!(v.validate_args("stop", &json!({})), Ok(()));
}

#[test]
fn missing_unexpected_and_wrong_type_members_fail_at_their_path() {
    let v = validators(SourceKind::Introspect, false);
    let missing = one(v.validate_args("go", &json!({"i8": 1})));
    assert_eq!(
        (missing.instance_path.as_str(), missing.schema_path.as_str()),
        ("", "/$defs/:obj-go-arg/required")
    );
    assert!(missing.message.contains("\"u64\""), "{}", missing.message);

    let unexpected = one(v.validate_args("go", &go(json!({"bogus": 1}))));
    assert_eq!(unexpected.instance_path, "");
    assert!(unexpected.message.contains("'bogus'"), "{}", unexpected.message);

    let nested = one(v.validate_args("go", &go(json!({"point": {"id": "p", "x": 1, "y": 2}}))));
    assert_eq!(nested.instance_path, "/point");

    let wrong = one(v.validate_args("go", &go(json!({"flag": "yes"}))));
    assert_eq!(wrong.instance_path, "/flag");
    let wrong_null = one(v.validate_args("go", &go(json!({"nul": 0}))));
    assert_eq!(wrong_null.instance_path, "/nul");
    let wrong_num = one(v.validate_args("go", &go(json!({"num": "3"}))));
    assert_eq!(wrong_num.instance_path, "/num");
    let wrong_obj = one(v.validate_args("go", &go(json!({"obj": []}))));
    assert_eq!(wrong_obj.instance_path, "/obj");
    let wrong_alt = one(v.validate_args("go", &go(json!({"alt": true}))));
    assert_eq!(wrong_alt.instance_path, "/alt");
    let wrong_item = one(v.validate_args("go", &go(json!({"tags": ["a", 1]}))));
    assert_eq!(wrong_item.instance_path, "/tags/1");
    let base_member = one(v.validate_args("go", &go(json!({"point": {"x": 1}}))));
    assert_eq!(base_member.instance_path, "/point");
    assert!(base_member.message.contains("\"id\""), "{}", base_member.message);
    // Commands without arguments take only `{}`.
    let stop = one(v.validate_args("stop", &json!({"force": true})));
    assert_eq!(stop.instance_path, "");
}

#[test]
fn integer_ranges_follow_the_builtin() {
    let v = validators(SourceKind::Qapi, false);
    for ok in [json!(-128), json!(127)] {
        assert_eq!(v.validate_args("go", &json!({"i8": ok, "u64": 0})), Ok(()), "{ok}");
    }
    for bad in [json!(-129), json!(128), json!(1.5), json!("1")] {
        let e = one(v.validate_args("go", &json!({"i8": bad, "u64": 0})));
        assert_eq!(e.instance_path, "/i8", "{bad}");
    }
    // u64::MAX is above i64::MAX: the bound must still hold at the exact value.
    assert_eq!(v.validate_args("go", &json!({"i8": 0, "u64": u64::MAX})), Ok(()));
    let above: Value = serde_json::from_str("18446744073709551616").expect("parses as a float");
    for bad in [json!(-1), above] {
        let e = one(v.validate_args("go", &json!({"i8": 0, "u64": bad})));
        assert_eq!(e.instance_path, "/u64", "{bad}");
    }
    let u8_over = one(v.validate_args("go", &go(json!({"list": [{"count": 1}, {"count": 256}]}))));
    assert_eq!(u8_over.instance_path, "/list/1/count");
    // `int` is int64 from QAPI source, but any integer type in an introspected model.
    assert_eq!(one(v.validate_args("go", &go(json!({"i": u64::MAX})))).instance_path, "/i");
    let introspected = validators(SourceKind::Introspect, false);
    assert_eq!(introspected.validate_args("go", &go(json!({"i": u64::MAX, "i64": i64::MAX}))), Ok(()));
    assert_eq!(one(introspected.validate_args("go", &go(json!({"i64": u64::MAX})))).instance_path, "/i64");
}

#[test]
fn enums_and_prose_values_reject_other_strings() {
    let v = validators(SourceKind::Introspect, false);
    let color = one(v.validate_args("go", &go(json!({"color": "blue"}))));
    assert_eq!((color.instance_path.as_str(), color.schema_path.as_str()), ("/color", "/$defs/Color/enum"));
    let mode = one(v.validate_args("go", &go(json!({"mode": "medium"}))));
    assert_eq!(mode.instance_path, "/mode");
}

#[test]
fn union_arguments_select_the_branch_by_discriminator() {
    let v = validators(SourceKind::Introspect, false);
    assert_eq!(v.validate_args("add", &json!({"driver": "file", "filename": "a.img"})), Ok(()));
    // A discriminator value without a branch adds no members.
    assert_eq!(v.validate_args("add", &json!({"driver": "null-co", "node-name": "n0"})), Ok(()));
    // Recursion through the alternate: a nested definition or a reference.
    let nested = json!({"driver": "qcow2", "file": {"driver": "qcow2", "file": "node0"}});
    assert_eq!(v.validate_args("add", &nested), Ok(()));

    let missing = one(v.validate_args("add", &json!({"driver": "file"})));
    assert_eq!(
        (missing.instance_path.as_str(), missing.schema_path.as_str()),
        ("", "/$defs/BlockOpts/allOf/0/then/required")
    );
    assert!(missing.message.contains("\"filename\""), "{}", missing.message);

    // A member of another branch is unknown in this one.
    let other = one(v.validate_args("add", &json!({"driver": "file", "filename": "a", "file": "n"})));
    assert_eq!(other.instance_path, "");
    assert!(other.message.contains("'file'"), "{}", other.message);

    let bad_driver = one(v.validate_args("add", &json!({"driver": "vmdk"})));
    assert_eq!(bad_driver.instance_path, "/driver");

    let no_branch = one(v.validate_args("add", &json!({"driver": "null-co", "filename": "a"})));
    assert_eq!(no_branch.instance_path, "");
    assert!(no_branch.message.contains("'filename'"), "{}", no_branch.message);

    // Alternates choose the branch by JSON type, so errors point inside the branch.
    let deep = one(v.validate_args("add", &json!({"driver": "qcow2", "file": {"driver": "file"}})));
    assert_eq!(deep.instance_path, "/file");
    assert_eq!(deep.message, "\"filename\" is a required property");
    let deeper = json!({"driver": "qcow2", "file": {"driver": "file", "filename": 3}});
    assert_eq!(one(v.validate_args("add", &deeper)).instance_path, "/file/filename");
    let wrong_kind = one(v.validate_args("add", &json!({"driver": "qcow2", "file": 1})));
    assert_eq!(wrong_kind.instance_path, "/file");
    assert_eq!(wrong_kind.schema_path, "/$defs/BlockRef/type");
}

#[test]
fn union_branches_may_be_unions() {
    let v = validators(SourceKind::Introspect, false);
    assert_eq!(v.validate_args("nest", &json!({"kind": "a", "mode": "x", "xv": 1})), Ok(()));
    assert_eq!(v.validate_args("nest", &json!({"kind": "a", "mode": "y"})), Ok(()));
    assert_eq!(v.validate_args("nest", &json!({"kind": "b"})), Ok(()));
    let cases = [
        (json!({"kind": "a", "mode": "y", "xv": 1}), "'xv'"),
        (json!({"kind": "b", "mode": "x"}), "'mode'"),
        (json!({"kind": "a", "mode": "x"}), "\"xv\" is a required property"),
        (json!({"kind": "a"}), "\"mode\" is a required property"),
    ];
    for (instance, expected) in cases {
        let e = one(v.validate_args("nest", &instance));
        assert_eq!(e.instance_path, "", "{instance}");
        assert!(e.message.contains(expected), "{instance}: {}", e.message);
    }
}

#[test]
fn outputs_allow_unknown_members_unless_strict() {
    let open = validators(SourceKind::Introspect, false);
    let strict = validators(SourceKind::Introspect, true);
    let extra = json!({"done": true, "left": 3, "new-in-next-version": 1});
    assert_eq!(open.validate_return("go", &extra), Ok(()));
    assert_eq!(one(strict.validate_return("go", &extra)).instance_path, "");
    // Missing mandatory output members fail either way.
    assert_eq!(one(open.validate_return("go", &json!({"left": 1}))).instance_path, "");
    // No return type in an introspected model means `{}`.
    assert_eq!(open.validate_return("stop", &json!({})), Ok(()));
    assert_eq!(open.validate_return("stop", &json!({"x": 1})), Ok(()));
    assert_eq!(one(strict.validate_return("stop", &json!({"x": 1}))).instance_path, "");
    assert_eq!(one(open.validate_return("stop", &json!([]))).instance_path, "");
    // Arrays of structs; nested unknown members in outputs.
    let points = json!([{"id": "a", "x": 1, "z": 0}, {"id": "b", "x": 2}]);
    assert_eq!(open.validate_return("query-points", &points), Ok(()));
    assert_eq!(one(strict.validate_return("query-points", &points)).instance_path, "/0");
    assert_eq!(one(open.validate_return("query-points", &json!([{"x": 1}]))).instance_path, "/0");
    // Events.
    assert_eq!(
        open.validate_event("EV", &json!({"node": {"driver": "file", "filename": "f", "extra": 1}})),
        Ok(())
    );
    assert_eq!(one(strict.validate_event("EV", &json!({"node": "n", "extra": 1}))).instance_path, "");
    assert_eq!(one(open.validate_event("EV", &json!({"node": 5}))).instance_path, "/node");
    assert_eq!(open.validate_event("BARE", &json!({})), Ok(()));
    // Unknown names are reported, not panicked on.
    let unknown = one(open.validate_event("NOPE", &json!({})));
    assert_eq!(unknown.message, "unknown event 'NOPE'");
}

#[test]
fn legacy_models_accept_any_undocumented_return() {
    let v = validators(SourceKind::Legacy, false);
    assert_eq!(v.validate_return("stop", &json!([1, 2])), Ok(()));
    assert_eq!(v.validate_event("BARE", &json!({"anything": 1})), Ok(()));
    assert_eq!(one(v.validate_event("BARE", &json!(3))).instance_path, "");
}

#[test]
fn documents_are_standalone_with_exactly_the_reachable_defs() {
    let set = SchemaSet::build(&model(SourceKind::Introspect), SchemaOptions::default());
    assert_eq!(set.len(), 12);
    let defs = |role: SchemaRole, name: &str| -> Vec<String> {
        let doc = set.get(role, name).expect("document exists");
        doc.get("$defs").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    assert_eq!(
        defs(SchemaRole::Args, "go"),
        ["135", ":obj-go-arg", "Color", "Point", "StrOrInt", "[135]", "int"],
        "Point's base members are flattened into it, so Base is not referenced"
    );
    assert_eq!(
        defs(SchemaRole::Args, "add"),
        ["BlockOpts", "BlockRef", "Driver"],
        "branch structs are inlined into the union"
    );
    assert_eq!(defs(SchemaRole::Return, "go"), ["go/return/stats.v1"]);
    assert_eq!(defs(SchemaRole::Args, "stop"), Vec::<String>::new());

    let go = set.command_args("go").expect("go args");
    assert_eq!(go["$schema"], json!("https://json-schema.org/draft/2020-12/schema"));
    assert_eq!(go["$ref"], json!("#/$defs/:obj-go-arg"));
    let mode = &go["$defs"][":obj-go-arg"]["properties"]["mode"];
    assert_eq!(
        mode,
        &json!({"type": "string", "enum": ["fast", "slow"], "description": "how to go", "default": "fast"})
    );
    let u64_schema = &go["$defs"][":obj-go-arg"]["properties"]["u64"];
    assert_eq!(u64_schema, &json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}));
    // Input objects are closed; the union is closed with unevaluatedProperties.
    assert_eq!(go["$defs"]["Point"]["additionalProperties"], json!(false));
    let add = set.command_args("add").expect("add args");
    // Unions close at their leaves: each branch lists the common members as `true`, and
    // discriminator values without a branch allow the common members only.
    let branches = &add["$defs"]["BlockOpts"]["allOf"];
    assert_eq!(
        branches[0]["then"],
        json!({
            "properties": {"filename": {"type": "string"}, "driver": true, "node-name": true},
            "required": ["filename"],
            "additionalProperties": false
        })
    );
    assert_eq!(
        branches[2],
        json!({
            "if": {"properties": {"driver": {"not": {"enum": ["file", "qcow2"]}}}, "required": ["driver"]},
            "then": {"properties": {"driver": true, "node-name": true}, "additionalProperties": false}
        })
    );
    assert_eq!(add["$defs"]["BlockOpts"].get("additionalProperties"), None);
    assert_eq!(set.command_return("go").expect("go return")["$ref"], json!("#/$defs/go~1return~1stats.v1"));
    assert!(set.event_data("NOPE").is_none());
}

#[test]
fn refs_and_file_names_escape_odd_names() {
    assert_eq!(def_ref("135"), "#/$defs/135");
    assert_eq!(def_ref("[135]"), "#/$defs/%5B135%5D");
    assert_eq!(def_ref(":obj-eject-arg"), "#/$defs/:obj-eject-arg");
    assert_eq!(def_ref("a/b~c d"), "#/$defs/a~1b~0c%20d");
    assert_eq!(file_stem("query-status"), "query-status");
    assert_eq!(file_stem("a/b.c"), "a%2Fb%2Ec");
    assert_eq!(file_stem("../x"), "%2E%2E%2Fx");
}

#[test]
fn write_all_writes_one_file_per_schema() {
    let set = SchemaSet::build(&model(SourceKind::Introspect), SchemaOptions::default());
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(set.write_all(dir.path()).expect("writes"), 12);
    let mut names: Vec<String> = ["commands", "events"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.path().join(sub)).expect("folder written"))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "BARE.data.json",
            "EV.data.json",
            "add.args.json",
            "add.return.json",
            "go.args.json",
            "go.return.json",
            "nest.args.json",
            "nest.return.json",
            "query-points.args.json",
            "query-points.return.json",
            "stop.args.json",
            "stop.return.json"
        ]
    );
    let text = std::fs::read_to_string(dir.path().join("commands/go.args.json")).expect("readable");
    let back: Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(Some(&back), set.command_args("go"));
}

fn example(direction: Direction, text: &str, line: u32) -> Example {
    Example { direction, text: text.to_string(), source: Source::new("doc.txt", line) }
}

#[test]
fn doc_examples_are_parsed_and_validated() {
    let mut spec = model(SourceKind::Legacy);
    let go = spec.commands.get_mut("go").expect("go");
    go.examples = vec![
        example(Direction::Request, "{ \"execute\": \"go\", \"arguments\": { \"i8\": 1, \"u64\": 2 } }", 10),
        example(Direction::Reply, "{ \"return\": { \"done\": true } }", 11),
        // A missing comma, an ellipsis, a wrong command, a wrong type, an extra argument.
        example(Direction::Request, "{ \"execute\": \"go\" \"arguments\": {} }", 20),
        example(Direction::Reply, "{ \"return\": { \"done\": true, ... } }", 21),
        // Setup steps execute other commands: checked against those, replies too.
        example(Direction::Request, "{ \"execute\": \"nonexistent\" }", 30),
        example(Direction::Reply, "{ \"return\": {} }", 31),
        example(Direction::Request, "{ \"execute\": \"query-points\" }", 32),
        example(Direction::Reply, "{ \"return\": [ { \"x\": 1 } ] }", 33),
        example(
            Direction::Request,
            "{ \"execute\": \"go\", \"arguments\": { \"i8\": \"1\", \"u64\": 2, \"x\": 1 } }",
            40,
        ),
        // Error replies cannot be judged; events the command causes are checked as events.
        example(Direction::Reply, "{ \"error\": { \"class\": \"GenericError\", \"desc\": \"no\" } }", 50),
        example(Direction::Event, "{ \"event\": \"EV\", \"data\": { \"node\": 1 } }", 51),
        example(Direction::Event, "{ \"event\": \"UNKNOWN\" }", 52),
    ];
    let ev = spec.events.get_mut("EV").expect("EV");
    ev.examples = vec![
        example(
            Direction::Event,
            "{ \"event\": \"EV\", \"data\": { \"node\": \"n0\" }, \"timestamp\": {} }",
            60,
        ),
        example(Direction::Event, "{ \"event\": \"BARE\" }", 61),
        example(Direction::Event, "{ \"event\": \"NOPE\" }", 62),
    ];
    let set = SchemaSet::build(&spec, SchemaOptions::default());
    let report = check_examples_report(&spec, &set);
    assert_eq!((report.checked, report.passed, report.skipped, report.failed()), (15, 5, 3, 7));
    let found: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(found.len(), 7);
    assert!(report.diagnostics.iter().all(|d| d.kind == DiagnosticKind::DocFinding));
    assert!(
        found[0].starts_with("doc.txt:20: example of command 'go' is not valid json: expected `,` or `}`"),
        "{}",
        found[0]
    );
    assert!(found[1].starts_with("doc.txt:21: example of command 'go' is not valid json:"), "{}", found[1]);
    assert_eq!(
        found[2],
        "doc.txt:30: example of command 'go' executes 'nonexistent', which the model does not have"
    );
    assert_eq!(
        found[3],
        "doc.txt:33: example of command 'go' return of 'query-points': at /0: \"id\" is a required property"
    );
    assert_eq!(
        found[4],
        "doc.txt:40: example of command 'go' arguments: at /i8: \"1\" is not of type \"integer\"; \
         arguments: additional properties are not allowed ('x' was unexpected)"
            .replace("additional", "Additional")
    );
    assert_eq!(
        found[5],
        "doc.txt:51: example of command 'go' event 'EV' data: at /node: 1 is not of types \"string\", \
         \"object\""
    );
    assert_eq!(
        found[6],
        "doc.txt:62: example of event 'EV' shows event 'NOPE', which the model does not have"
    );
    assert_eq!(check_examples(&spec, &set), report.diagnostics);
}

fn corpus(path: &str) -> String {
    let full = format!("{}/corpus/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[test]
fn qemu_7_2_schemas_all_compile_and_accept_its_own_replies() {
    let text = corpus("qemu-7.2/qemu-system-x86_64.json");
    let spec = qmpcheck::spec::introspect::parse(&text, "qemu-7.2/qemu-system-x86_64.json");
    assert_eq!((spec.commands.len(), spec.events.len()), (216, 52));
    let recording: Value = serde_json::from_str(&text).expect("recording is json");
    for strict in [false, true] {
        let set = SchemaSet::build(&spec, SchemaOptions { strict });
        assert_eq!(set.len(), 2 * 216 + 52);
        let v = Validators::new(&set);
        assert_eq!(v.compile_all().expect("every 7.2 schema compiles"), 484);
        // QEMU's own replies satisfy the schemas derived from its own introspection, even
        // strict ones; query-qmp-schema's reply is a list of SchemaInfo unions.
        for command in ["query-version", "query-commands", "query-qmp-schema"] {
            let reply = &recording[command];
            assert!(reply.is_object() || reply.is_array(), "{command} recorded");
            assert_eq!(v.validate_return(command, reply), Ok(()), "{command} strict={strict}");
        }
    }

    let v = Validators::new(&SchemaSet::build(&spec, SchemaOptions::default()));
    let qcow2 = |file: Value| json!({"driver": "qcow2", "node-name": "n1", "file": file});
    let ok = qcow2(json!({"driver": "file", "filename": "/tmp/x.img", "aio": "threads"}));
    assert_eq!(v.validate_args("blockdev-add", &ok), Ok(()));
    assert_eq!(v.validate_args("blockdev-add", &qcow2(json!("node0"))), Ok(()));
    let cases = [
        (qcow2(json!({"driver": "file", "filename": 3})), "/file/filename", "3 is not of type \"string\""),
        (qcow2(json!({"driver": "file"})), "/file", "\"filename\" is a required property"),
        (qcow2(json!({"driver": "file", "filename": "f", "aio": "fast"})), "/file/aio", ""),
        (qcow2(json!({"driver": "nope"})), "/file/driver", ""),
        (qcow2(json!(true)), "/file", "true is not of types \"string\", \"object\""),
        (json!({"driver": "file", "filename": "f", "bogus": 1}), "", "('bogus' was unexpected)"),
        (json!({"driver": "file", "filename": "f", "file": "n0"}), "", "('file' was unexpected)"),
    ];
    for (instance, path, message) in cases {
        let e = one(v.validate_args("blockdev-add", &instance));
        assert_eq!(e.instance_path, path, "{instance}");
        assert!(e.message.contains(message), "{instance}: {}", e.message);
    }
    // Introspection reports every integer type as `int`, so an introspected `int` spans
    // i64::MIN..=u64::MAX (max-bandwidth is a size, block_resize size an int64: the
    // schema cannot tell them apart).
    let bandwidth = |n: Value| json!({"max-bandwidth": n});
    for ok in [json!(u64::MAX), json!(i64::MIN)] {
        assert_eq!(v.validate_args("migrate-set-parameters", &bandwidth(ok.clone())), Ok(()), "{ok}");
    }
    let above: Value = serde_json::from_str("18446744073709551616").expect("parses as a float");
    for bad in [above, json!(1.5), json!("1")] {
        let e = one(v.validate_args("migrate-set-parameters", &bandwidth(bad.clone())));
        assert_eq!(e.instance_path, "/max-bandwidth", "{bad}");
    }
}

#[test]
fn qemu_7_2_storage_daemon_schemas_all_compile() {
    let text = corpus("qemu-7.2/qemu-storage-daemon.json");
    let spec = qmpcheck::spec::introspect::parse(&text, "qemu-7.2/qemu-storage-daemon.json");
    assert_eq!((spec.commands.len(), spec.events.len()), (74, 13));
    let v = Validators::new(&SchemaSet::build(&spec, SchemaOptions { strict: true }));
    assert_eq!(v.compile_all().expect("every schema compiles"), 2 * 74 + 13);
}

/// Doc findings of one seed: (checked, passed, skipped, failed) and the rendered findings.
fn seed_findings(file: &str) -> ((usize, usize, usize, usize), Vec<String>) {
    let path = format!("{}/../shared/seeds/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let spec = qmpcheck::spec::legacy::parse(&text, file);
    let report = check_examples_report(&spec, &SchemaSet::build(&spec, SchemaOptions::default()));
    assert!(report.diagnostics.iter().all(|d| d.kind == DiagnosticKind::DocFinding));
    let counts = (report.checked, report.passed, report.skipped, report.failed());
    (counts, report.diagnostics.iter().map(|d| d.to_string()).collect())
}

#[test]
fn seed_001_doc_examples() {
    let (counts, found) = seed_findings("001_c6909e2e14ac2656.txt");
    assert_eq!(counts, (289, 254, 5, 30));
    assert_eq!(found.len(), 30);
    // Each verified by reading the seed at that line.
    for expected in [
        // `"actual":1073741824,` then `}` (the reply starts at 2334).
        "001_c6909e2e14ac2656.txt:2334: example of command 'query-balloon' is not valid json: trailing comma at line 4 column 1",
        // `"rd_operations":36772` with no comma before `"wr_total_times_ns"`.
        "001_c6909e2e14ac2656.txt:1538: example of command 'query-blockstats' is not valid json: expected `,` or `}` at line 12 column 1",
        // `"enable": "true"` for a json-bool.
        "001_c6909e2e14ac2656.txt:2836: example of command 'trace-event-set-state' arguments: at /enable: \"true\" is not of type \"boolean\"",
        // The table gives `"speed": ... (json-int)` without `optional`; the example omits it.
        "001_c6909e2e14ac2656.txt:900: example of command 'blockdev-mirror' arguments: \"speed\" is a required property",
        // The table lists "device" and "node-name" (neither optional); the example gives device.
        "001_c6909e2e14ac2656.txt:1043: example of command 'block_passwd' arguments: \"node-name\" is a required property",
    ] {
        assert!(found.iter().any(|f| f == expected), "missing {expected}\n{found:#?}");
    }
}

#[test]
fn seed_000_doc_examples() {
    let (counts, found) = seed_findings("000_6c43ee94cdfc87ea.txt");
    assert_eq!(counts, (87, 55, 4, 28));
    assert_eq!(found.len(), 28);
    for expected in [
        "000_6c43ee94cdfc87ea.txt:1820: example of command 'trace-event-set-state' arguments: at /enable: \"true\" is not of type \"boolean\"",
        "000_6c43ee94cdfc87ea.txt:668: example of command 'block_passwd' arguments: \"node-name\" is a required property",
    ] {
        assert!(found.iter().any(|f| f == expected), "missing {expected}\n{found:#?}");
    }
}

#[test]
fn seed_004_doc_examples() {
    let (counts, found) = seed_findings("004_2c2e15d7dcde0b66.txt");
    assert_eq!(counts, (35, 30, 0, 5));
    // `"data": {...}` followed by `"timestamp"` with no comma between (lines 180-182).
    let expected = "004_2c2e15d7dcde0b66.txt:179: example of event 'BLOCK_JOB_READY' is not valid json: expected `,` or `}` at line 4 column 1";
    assert!(found.iter().any(|f| f == expected), "{found:#?}");
}
