//! The QAPI schema parser: seed 003 (a one-line migration.json), a synthetic multi-line
//! schema covering every expression kind, malformed inputs, and robustness under damage.

use std::collections::BTreeMap;

use proptest::prelude::*;
use qmpcheck::spec::qapi;
use qmpcheck::spec::{Builtin, DiagnosticKind, Member, Source, Spec, TypeKind, TypeRef};

const SEED_003: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds/003_3e9b81ae133ae229.txt");

fn seed_003() -> String {
    std::fs::read_to_string(SEED_003).expect("seed 003 is readable")
}

fn parse_seed() -> Spec {
    qapi::parse(&seed_003(), "003.txt", &mut |_| None)
}

fn no_includes(text: &str) -> Spec {
    qapi::parse(text, "t.json", &mut |_| None)
}

fn builtin(b: Builtin) -> TypeRef {
    TypeRef::Builtin(b)
}

fn diags(spec: &Spec, kind: DiagnosticKind) -> Vec<String> {
    spec.diagnostics.iter().filter(|d| d.kind == kind).map(|d| d.to_string()).collect()
}

fn members<'a>(spec: &'a Spec, ty: &str) -> Vec<&'a Member> {
    spec.members(&TypeRef::named(ty))
}

/// (name, type, optional) of each member, for compact assertions.
fn shape(members: &[&Member]) -> Vec<(String, String, bool)> {
    members.iter().map(|m| (m.name.clone(), m.ty.to_string(), m.optional)).collect()
}

#[test]
fn seed_003_counts_match_the_file() {
    let spec = parse_seed();
    assert_eq!(spec.commands.len(), 29);
    assert_eq!(spec.events.len(), 4);
    let named: Vec<_> = spec.types.values().filter(|t| !t.implicit).collect();
    let count = |meta: fn(&TypeKind) -> bool| named.iter().filter(|t| meta(&t.kind)).count();
    assert_eq!(count(|k| matches!(k, TypeKind::Struct { .. })), 20);
    assert_eq!(count(|k| matches!(k, TypeKind::Enum { .. })), 15);
    assert_eq!(count(|k| matches!(k, TypeKind::Union { .. })), 1);
    assert_eq!(named.len(), 36);
    // Implicit argument/data structs: 16 commands and 4 events have inline data.
    let counts = spec.type_counts();
    assert_eq!(counts.get("struct"), Some(&(20 + 20)));
    assert_eq!(spec.types.values().filter(|t| t.implicit).count(), 20);
    assert!(spec.types.contains_key(":obj-migrate-arg"));
    assert!(spec.types.contains_key(":obj-MIGRATION-data"));
    assert_eq!(diags(&spec, DiagnosticKind::Syntax), Vec::<String>::new());
    assert_eq!(
        diags(&spec, DiagnosticKind::MissingInclude),
        [
            "003.txt:1:69: include file 'common.json' not found",
            "003.txt:1:98: include file 'sockets.json' not found"
        ]
    );
}

#[test]
fn seed_003_unresolved_types_are_those_of_the_missing_includes() {
    let spec = parse_seed();
    let mut unresolved: Vec<String> =
        spec.unresolved().into_iter().map(|(owner, ty)| format!("{owner}: {ty}")).collect();
    unresolved.sort();
    assert_eq!(
        unresolved,
        [
            "MigrateSetParameters.tls-authz: StrOrNull",
            "MigrateSetParameters.tls-creds: StrOrNull",
            "MigrateSetParameters.tls-hostname: StrOrNull",
            "MigrationAddress[rdma]: InetSocketAddress",
            "MigrationAddress[socket]: SocketAddress",
            "MigrationInfo.socket-address: SocketAddress",
        ]
    );
    assert_eq!(diags(&spec, DiagnosticKind::UnresolvedType).len(), 6);
    let socket = spec
        .diagnostics
        .iter()
        .find(|d| d.message == "type 'SocketAddress' used by 'MigrationAddress[socket]' is not defined")
        .expect("diagnostic for SocketAddress");
    assert_eq!(socket.source, spec.types["MigrationAddress"].sources[0]);
}

#[test]
fn seed_003_migrate_set_parameters_members() {
    let spec = parse_seed();
    let command = &spec.commands["migrate-set-parameters"];
    assert!(command.boxed);
    assert_eq!(command.args, Some(TypeRef::named("MigrateSetParameters")));
    assert_eq!(command.returns, None);
    assert_eq!(
        command.doc.as_deref().map(|d| d.lines().next()),
        Some(Some("Set various migration parameters."))
    );
    let args = spec.command_args(command);
    let expected: Vec<(String, String, bool)> = [
        ("announce-initial", "size"),
        ("announce-max", "size"),
        ("announce-rounds", "size"),
        ("announce-step", "size"),
        ("throttle-trigger-threshold", "uint8"),
        ("cpu-throttle-initial", "uint8"),
        ("cpu-throttle-increment", "uint8"),
        ("cpu-throttle-tailslow", "bool"),
        ("tls-creds", "StrOrNull"),
        ("tls-hostname", "StrOrNull"),
        ("tls-authz", "StrOrNull"),
        ("max-bandwidth", "size"),
        ("avail-switchover-bandwidth", "size"),
        ("downtime-limit", "uint64"),
        ("x-checkpoint-delay", "uint32"),
        ("multifd-channels", "uint8"),
        ("xbzrle-cache-size", "size"),
        ("max-postcopy-bandwidth", "size"),
        ("max-cpu-throttle", "uint8"),
        ("multifd-compression", "MultiFDCompression"),
        ("multifd-zlib-level", "uint8"),
        ("multifd-zstd-level", "uint8"),
        ("block-bitmap-mapping", "[BitmapMigrationNodeAlias]"),
        ("x-vcpu-dirty-limit-period", "uint64"),
        ("vcpu-dirty-limit", "uint64"),
        ("mode", "MigMode"),
        ("zero-page-detection", "ZeroPageDetection"),
        ("direct-io", "bool"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string(), true))
    .collect();
    assert_eq!(shape(&args), expected);
    let by_name: BTreeMap<&str, &Member> = args.iter().map(|m| (m.name.as_str(), *m)).collect();
    assert_eq!(by_name["x-checkpoint-delay"].features, ["unstable"]);
    assert_eq!(by_name["x-vcpu-dirty-limit-period"].features, ["unstable"]);
    assert_eq!(by_name["x-vcpu-dirty-limit-period"].ty, builtin(Builtin::Uint64));
    assert!(by_name["direct-io"].features.is_empty());
}

#[test]
fn seed_003_docs_attach_to_definitions_and_members() {
    let spec = parse_seed();
    let stats = &spec.types["MigrationStats"];
    assert_eq!(stats.doc.as_deref(), Some("Detailed migration status.\n\nSince: 0.14"));
    let m = members(&spec, "MigrationStats");
    assert_eq!(m.len(), 17);
    assert_eq!(m[0].doc.as_deref(), Some("amount of bytes already transferred to the target VM"));
    assert_eq!(m[1].doc.as_deref(), Some("amount of bytes remaining to be transferred to the target VM"));
    assert_eq!(
        m[16].doc.as_deref(),
        Some(
            "Number of times dirty RAM synchronization could not avoid copying dirty pages. This is \
             between 0 and @dirty-sync-count * @multifd-channels. (since 7.1)"
        )
    );
    assert_eq!((m[0].name.as_str(), &m[0].ty), ("transferred", &builtin(Builtin::Int)));
    // Member docs of an inline command argument land on the implicit struct's members.
    let migrate = spec.command_args(&spec.commands["migrate"]);
    assert_eq!(
        shape(&migrate),
        [
            ("uri".to_string(), "str".to_string(), true),
            ("channels".into(), "[MigrationChannel]".into(), true),
            ("detach".into(), "bool".into(), true),
            ("resume".into(), "bool".into(), true),
        ]
    );
    assert_eq!(migrate[0].doc.as_deref(), Some("the Uniform Resource Identifier of the destination VM"));
    assert_eq!(
        migrate[2].doc.as_deref(),
        Some("this argument exists only for compatibility reasons and is ignored by QEMU")
    );
}

#[test]
fn seed_003_sources_have_line_and_column() {
    let spec = parse_seed();
    let text = seed_003();
    let stats = &spec.types["MigrationStats"];
    let Source { line, column, .. } = stats.sources[0].clone();
    assert_eq!(line, 1);
    let column = column.expect("column given") as usize;
    assert!(text[column - 1..].starts_with("{ 'struct': 'MigrationStats'"));
    let transferred = members(&spec, "MigrationStats")[0].source.clone().expect("member source");
    let col = transferred.column.expect("column") as usize;
    assert!(text[col - 1..].starts_with("'transferred': 'int'"));
}

#[test]
fn seed_003_flags_conditions_and_variants() {
    let spec = parse_seed();
    assert!(spec.commands["migrate-pause"].allow_oob);
    assert!(spec.commands["migrate-recover"].allow_oob);
    assert!(!spec.commands["migrate"].allow_oob);
    let lost = &spec.commands["x-colo-lost-heartbeat"];
    assert_eq!(lost.features, ["unstable"]);
    assert_eq!(lost.condition.as_deref(), Some("CONFIG_REPLICATION"));
    assert_eq!(
        spec.commands["query-migrate-capabilities"].returns,
        Some(TypeRef::array(TypeRef::named("MigrationCapabilityStatus")))
    );
    let TypeKind::Enum { values } = &spec.types["MultiFDCompression"].kind else { panic!("enum") };
    let rendered: Vec<(String, Option<String>)> =
        values.iter().map(|v| (v.name.clone(), v.condition.clone())).collect();
    assert_eq!(
        rendered,
        [
            ("none".to_string(), None),
            ("zlib".into(), None),
            ("zstd".into(), Some("CONFIG_ZSTD".to_string())),
            ("qpl".into(), Some("CONFIG_QPL".into())),
            ("uadk".into(), Some("CONFIG_UADK".into())),
        ]
    );
    let TypeKind::Union { base, members, discriminator, variants } = &spec.types["MigrationAddress"].kind
    else {
        panic!("union")
    };
    assert_eq!(base, &None);
    assert_eq!(
        shape(&members.iter().collect::<Vec<_>>()),
        [("transport".to_string(), "MigrationAddressType".to_string(), false)]
    );
    assert_eq!(discriminator, "transport");
    let branches: Vec<String> = variants.iter().map(|v| format!("{}={}", v.value, v.ty)).collect();
    assert_eq!(
        branches,
        [
            "socket=SocketAddress",
            "exec=MigrationExecCommand",
            "rdma=InetSocketAddress",
            "file=FileMigrationArgs"
        ]
    );
}

const MAIN_SCHEMA: &str = r#"# -*- Mode: Python -*-
#
# A synthetic schema exercising every expression kind.

{ 'pragma': { 'doc-required': true } }
{ 'include': 'sub/common.json' }
{ 'include': 'sub/common.json' }   # a repeat: read once
{ 'include': 'absent.json' }

##
# = Section heading
##

##
# @Base:
#
# A base struct.
#
# @id: the identifier
#
# Since: 1.0
##
{ 'struct': 'Base', 'data': { 'id': 'int' } }

##
# @Thing:
#
# @name: its name
#     on two lines
#
# @tags: some tags
##
{ 'struct': 'Thing', 'base': 'Base',
  'data': { 'name': 'str',
            '*tags': ['str'],     # an array
            '*size': { 'type': 'size', 'if': 'CONFIG_SIZE',
                       'features': [ 'deprecated' ] },
            '*kind': 'Kind' },
  'features': [ 'unstable', { 'name': 'fancy', 'if': 'CONFIG_FANCY' } ],
  'if': { 'all': [ 'CONFIG_A', { 'any': [ 'CONFIG_B', { 'not': 'CONFIG_C' } ] } ] } }

{ 'enum': 'Kind', 'prefix': 'KIND',
  'data': [ 'small', { 'name': 'big', 'if': 'CONFIG_BIG', 'features': [ 'deprecated' ] } ],
  'features': [ 'deprecated' ], 'if': { 'not': 'CONFIG_NONE' } }

{ 'union': 'Shape', 'base': 'ShapeBase', 'discriminator': 'kind',
  'data': { 'small': 'Thing', 'big': { 'type': 'Base', 'if': 'CONFIG_BIG' } } }

{ 'union': 'Inline', 'base': { 'kind': 'Kind', '*extra': 'bool' }, 'discriminator': 'kind',
  'data': { 'small': 'Thing' } }

{ 'alternate': 'ThingOrName', 'data': { 'thing': 'Thing', 'name': 'str',
                                        'list': ['int'], 'n': { 'type': 'null' } } }

##
# @do-it:
#
# Does it.
#
# @target: where
##
{ 'command': 'do-it', 'data': { 'target': 'str', '*count': 'uint32', '*q': 'QType' },
  'returns': [ 'Thing' ], 'allow-oob': true, 'allow-preconfig': true,
  'coroutine': true, 'features': [ 'deprecated' ], 'if': 'CONFIG_DO' }
{ 'command': 'boxed-cmd', 'boxed': true, 'data': 'Shape', 'gen': false,
  'success-response': false }
{ 'command': 'named-args', 'data': 'Base', 'returns': 'int' }
{ 'command': 'no-args', 'data': {} }

{ 'event': 'THING_HAPPENED', 'data': { 'thing': 'Thing', '*why': 'any' },
  'features': [ 'unstable' ], 'if': 'CONFIG_EVENTS' }
{ 'event': 'BOXED_EVENT', 'boxed': true, 'data': 'Base' }
{ 'event': 'PLAIN' }
"#;

const SUB_COMMON: &str = "\
# included from main; includes main back (a cycle)
{ 'include': '../main.json' }
{ 'struct': 'ShapeBase', 'data': { 'kind': 'Kind' } }
{ 'enum': 'QType', 'data': [ 'none', 'qnull', 'qnum', 'qstring', 'qdict', 'qlist', 'qbool' ] }
";

fn parse_synthetic() -> (Spec, Vec<String>) {
    let mut asked = Vec::new();
    let spec = qapi::parse(MAIN_SCHEMA, "main.json", &mut |path| {
        asked.push(path.to_string());
        match path {
            "sub/common.json" => Some(("sub/common.json".to_string(), SUB_COMMON.to_string())),
            "../main.json" => Some(("main.json".to_string(), MAIN_SCHEMA.to_string())),
            _ => None,
        }
    });
    (spec, asked)
}

#[test]
fn synthetic_includes_cycles_and_diagnostics() {
    let (spec, asked) = parse_synthetic();
    assert_eq!(asked, ["sub/common.json", "../main.json", "sub/common.json", "absent.json"]);
    let all: Vec<(DiagnosticKind, String)> =
        spec.diagnostics.iter().map(|d| (d.kind, d.to_string())).collect();
    assert_eq!(
        all,
        [
            (
                DiagnosticKind::Recovered,
                "sub/common.json:2:1: inclusion loop: '../main.json' is already being read; not read again"
                    .to_string()
            ),
            (
                DiagnosticKind::MissingInclude,
                "main.json:8:1: include file 'absent.json' not found".to_string()
            ),
        ]
    );
    let base = &spec.types["ShapeBase"];
    assert_eq!(base.sources, [Source::at("sub/common.json", 3, 1)]);
}

#[test]
fn synthetic_struct_with_base_features_and_conditions() {
    let (spec, _) = parse_synthetic();
    let thing = &spec.types["Thing"];
    assert_eq!(thing.sources, [Source::at("main.json", 33, 1)]);
    assert_eq!(thing.features, ["unstable", "fancy"]);
    assert_eq!(thing.condition.as_deref(), Some("CONFIG_A and (CONFIG_B or not CONFIG_C)"));
    assert_eq!(thing.doc, None, "the block has only member sections");
    let TypeKind::Struct { base, .. } = &thing.kind else { panic!("struct") };
    assert_eq!(base.as_deref(), Some("Base"));
    let m = members(&spec, "Thing");
    assert_eq!(
        shape(&m),
        [
            ("id".to_string(), "int".to_string(), false),
            ("name".into(), "str".into(), false),
            ("tags".into(), "[str]".into(), true),
            ("size".into(), "size".into(), true),
            ("kind".into(), "Kind".into(), true),
        ]
    );
    assert_eq!(m[0].doc.as_deref(), Some("the identifier"));
    assert_eq!(m[1].doc.as_deref(), Some("its name on two lines"));
    assert_eq!(m[1].source, Some(Source::at("main.json", 34, 13)));
    assert_eq!(m[3].condition.as_deref(), Some("CONFIG_SIZE"));
    assert_eq!(m[3].features, ["deprecated"]);
    assert_eq!(m[3].source, Some(Source::at("main.json", 36, 13)));
    assert_eq!(spec.types["Base"].doc.as_deref(), Some("A base struct.\n\nSince: 1.0"));
}

#[test]
fn synthetic_enum_union_alternate() {
    let (spec, _) = parse_synthetic();
    let kind = &spec.types["Kind"];
    assert_eq!(kind.features, ["deprecated"]);
    assert_eq!(kind.condition.as_deref(), Some("not CONFIG_NONE"));
    let TypeKind::Enum { values } = &kind.kind else { panic!("enum") };
    assert_eq!(values.len(), 2);
    assert_eq!((values[1].name.as_str(), values[1].condition.as_deref()), ("big", Some("CONFIG_BIG")));
    assert_eq!(values[1].features, ["deprecated"]);

    let TypeKind::Union { base, members: own, discriminator, variants } = &spec.types["Shape"].kind else {
        panic!("union")
    };
    assert_eq!((base.as_deref(), own.len(), discriminator.as_str()), (Some("ShapeBase"), 0, "kind"));
    assert_eq!(variants.len(), 2);
    assert_eq!((variants[1].value.as_str(), &variants[1].ty), ("big", &TypeRef::named("Base")));
    assert_eq!(variants[1].condition.as_deref(), Some("CONFIG_BIG"));
    assert_eq!(shape(&members(&spec, "Shape")), [("kind".to_string(), "Kind".to_string(), false)]);

    let TypeKind::Union { base, members: own, .. } = &spec.types["Inline"].kind else { panic!("union") };
    assert_eq!(base, &None);
    assert_eq!(
        shape(&own.iter().collect::<Vec<_>>()),
        [("kind".to_string(), "Kind".to_string(), false), ("extra".into(), "bool".into(), true)]
    );

    let TypeKind::Alternate { alternatives } = &spec.types["ThingOrName"].kind else { panic!("alternate") };
    let alts: Vec<String> = alternatives.iter().map(|a| format!("{}:{}", a.name, a.ty)).collect();
    assert_eq!(alts, ["thing:Thing", "name:str", "list:[int]", "n:null"]);
}

#[test]
fn synthetic_commands_and_events() {
    let (spec, _) = parse_synthetic();
    assert_eq!(spec.commands.len(), 4);
    let c = &spec.commands["do-it"];
    assert_eq!(c.args, Some(TypeRef::named(":obj-do-it-arg")));
    assert_eq!(
        shape(&spec.command_args(c)),
        [
            ("target".to_string(), "str".to_string(), false),
            ("count".into(), "uint32".into(), true),
            ("q".into(), "QType".into(), true),
        ]
    );
    assert_eq!(spec.command_args(c)[2].ty, TypeRef::named("QType"));
    assert_eq!(spec.command_args(c)[0].doc.as_deref(), Some("where"));
    assert_eq!(c.doc.as_deref(), Some("Does it."));
    assert_eq!(c.returns, Some(TypeRef::array(TypeRef::named("Thing"))));
    assert!(
        c.allow_oob && c.allow_preconfig && c.coroutine && !c.boxed && !c.no_gen && !c.no_success_response
    );
    assert_eq!(c.features, ["deprecated"]);
    assert_eq!(c.condition.as_deref(), Some("CONFIG_DO"));
    let implicit = &spec.types[":obj-do-it-arg"];
    assert!(implicit.implicit);
    assert_eq!(implicit.condition.as_deref(), Some("CONFIG_DO"));

    let boxed = &spec.commands["boxed-cmd"];
    assert!(boxed.boxed && boxed.no_gen && boxed.no_success_response && !boxed.allow_preconfig);
    assert_eq!(boxed.args, Some(TypeRef::named("Shape")));
    let named = &spec.commands["named-args"];
    assert_eq!(
        (named.args.clone(), named.returns.clone(), named.boxed),
        (Some(TypeRef::named("Base")), Some(builtin(Builtin::Int)), false)
    );
    assert_eq!(spec.commands["no-args"].args, None);

    let e = &spec.events["THING_HAPPENED"];
    assert_eq!(e.data, Some(TypeRef::named(":obj-THING_HAPPENED-data")));
    assert_eq!(
        shape(&spec.event_data(e)),
        [("thing".to_string(), "Thing".to_string(), false), ("why".into(), "any".into(), true)]
    );
    assert_eq!(
        (e.features.clone(), e.condition.as_deref()),
        (vec!["unstable".to_string()], Some("CONFIG_EVENTS"))
    );
    let boxed = &spec.events["BOXED_EVENT"];
    assert!(boxed.boxed);
    assert_eq!(boxed.data, Some(TypeRef::named("Base")));
    assert_eq!(spec.events["PLAIN"].data, None);
    assert!(spec.unresolved().is_empty());
}

/// Parses `text` and returns its Syntax diagnostics as `FILE:LINE:COL: message`.
fn syntax_errors(text: &str) -> Vec<String> {
    diags(&no_includes(text), DiagnosticKind::Syntax)
}

#[test]
fn malformed_missing_colon_names_place_and_expectation() {
    let text = "{ 'command': 'a', 'data' }\n{ 'command': 'b' }\n";
    assert_eq!(syntax_errors(text), ["t.json:1:26: expected ':' after key 'data', found '}'"]);
    let spec = no_includes(text);
    assert_eq!(spec.commands.keys().collect::<Vec<_>>(), ["b"], "resynchronised at the next expression");
}

#[test]
fn malformed_missing_comma_and_missing_brace() {
    let text = "{ 'struct': 'S',\n  'data': { 'a': 'int' 'b': 'str' } }\n{ 'enum': 'E', 'data': [ 'x' ]\n{ 'event': 'EV' }\n";
    assert_eq!(
        syntax_errors(text),
        [
            "t.json:2:24: expected ',' or '}' after the value of key 'a', found string 'b'",
            "t.json:4:1: expected ',' or '}' after the value of key 'data', found '{'",
        ]
    );
    let spec = no_includes(text);
    assert!(spec.events.contains_key("EV"));
    assert!(spec.types.is_empty());
}

#[test]
fn malformed_strings_and_stray_text() {
    assert_eq!(
        syntax_errors("{ \"command\": \"x\" }\n"),
        ["t.json:1:3: expected a string key or '}', found '\"command\"'"]
    );
    assert_eq!(
        syntax_errors("{ 'command': 'x', 'data': 'oops\n}\n"),
        ["t.json:1:27: expected a value ('{', '[', string or boolean) for key 'data', found a string without its closing quote"]
    );
    assert_eq!(
        syntax_errors("[ 'x' ]\n{ 'enum': 'E', 'data': [ 'a', ] }\n"),
        [
            "t.json:1:1: expected '{' to begin a top-level expression, found '['",
            "t.json:2:31: expected an array element ('{', '[', string or boolean), found ']'",
        ]
    );
    assert_eq!(
        syntax_errors("{ 'event': 'E', 'data': { 'a': 'int' }"),
        ["t.json:1:39: expected ',' or '}' after the value of key 'data', found end of input"]
    );
}

#[test]
fn malformed_shapes_are_reported_by_key() {
    assert_eq!(
        syntax_errors("{ 'struct': 'S', 'data': {}, 'bogus': true }\n{ 'command': 'c', 'returns': true, 'boxed': 'yes' }\n{ 'zap': 'z' }\n"),
        [
            "t.json:1:30: expected a key of struct 'S', found unknown key 'bogus'",
            "t.json:2:30: expected a type name for 'returns' of command 'c', found 'true'",
            "t.json:2:45: expected true or false for 'boxed' of command 'c', found string 'yes'",
            "t.json:3:1: expected one of 'struct', 'union', 'alternate', 'enum', 'command', 'event', 'include' or 'pragma', found keys 'zap'",
        ]
    );
    assert_eq!(
        syntax_errors("{ 'struct': 'S', 'data': { 'a': { 'if': 'X' } }, 'if': { 'all': [] } }"),
        [
            "t.json:1:33: expected key 'type' in member 'a' of struct 'S', found none",
            "t.json:1:58: expected 'all' or 'any' with a non-empty array, or 'not', found 'all' with an array",
        ]
    );
}

#[test]
fn malformed_doc_block_is_reported() {
    let text = "##\n# @S:\n{ 'struct': 'S', 'data': {} }\n";
    assert_eq!(syntax_errors(text), ["t.json:3:1: documentation comment must end with '##'"]);
    assert!(no_includes(text).types.contains_key("S"));
}

/// A flattened copy of the synthetic schema (newlines to spaces, as seed 003 was damaged)
/// reads to the same model apart from positions.
#[test]
fn flattened_synthetic_schema_reads_the_same() {
    let (lines, _) = parse_synthetic();
    let flat_main = MAIN_SCHEMA.replace('\n', " ");
    let flat_sub = SUB_COMMON.replace('\n', " ");
    let flat = qapi::parse(&flat_main, "main.json", &mut |path| match path {
        "sub/common.json" => Some(("sub/common.json".to_string(), flat_sub.clone())),
        "../main.json" => Some(("main.json".to_string(), flat_main.clone())),
        _ => None,
    });
    let summary = |spec: &Spec| -> Vec<String> {
        let mut out: Vec<String> = spec.commands.keys().cloned().collect();
        out.extend(spec.events.keys().cloned());
        for (name, t) in &spec.types {
            let m: Vec<String> = spec
                .members(&TypeRef::named(name))
                .iter()
                .map(|m| format!("{}:{}:{:?}", m.name, m.ty, m.doc))
                .collect();
            out.push(format!("{name} {:?} {:?} {m:?}", t.doc, t.condition));
        }
        out
    };
    assert_eq!(summary(&flat), summary(&lines));
    assert_eq!(flat.diagnostics.len(), 2);
}

/// Pathological inputs (many comment markers, quotes, brackets, doc markers) stay linear.
#[test]
fn pathological_inputs_parse_quickly() {
    let inputs = [
        "# ".repeat(50_000),
        format!("{{ 'struct': 'S', 'data': {{ {} }} }}", "# ' ".repeat(25_000)),
        format!("{{ 'enum': 'E', 'data': [ {} ] }}", "# x ' ".repeat(20_000)),
        "## ".repeat(40_000),
        "{ 'struct': ".repeat(10_000),
        "[".repeat(100_000),
        "{ 'command': 'c', 'data': { 'a': 'int' } \n".repeat(5_000),
    ];
    let start = std::time::Instant::now();
    for text in &inputs {
        let spec = no_includes(text);
        assert!(spec.commands.len() <= 1);
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "took {:?}", start.elapsed());
}

fn damaged_variants() -> impl Strategy<Value = (usize, Vec<(usize, u8)>)> {
    (0usize..80_000, proptest::collection::vec((0usize..80_000, any::<u8>()), 1..12))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn seed_003_damaged_never_panics((cut, flips) in damaged_variants()) {
        let text = seed_003();
        let bytes = text.as_bytes();
        let truncated = String::from_utf8_lossy(&bytes[..cut.min(bytes.len())]).into_owned();
        let spec = no_includes(&truncated);
        prop_assert!(spec.commands.len() <= 29);
        let mut flipped = bytes.to_vec();
        let len = flipped.len();
        for (at, byte) in flips {
            flipped[at % len] = byte;
        }
        let spec = no_includes(&String::from_utf8_lossy(&flipped));
        prop_assert!(spec.commands.len() <= 29 + 12);
    }
}
