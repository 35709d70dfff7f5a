//! The emulator against QEMU 7.2's observed behaviour: session rules, dispatcher errors,
//! id echo, argument errors (with nested paths, union branches, alternates, ranges),
//! state, faults, and serving two clients on a socket. Expected texts were taken from a
//! real QEMU 7.2 (`-machine none -S`); a test against the live binary compares both.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use qmpcheck::spec::{
    Alternative, Builtin, Command, EnumValue, Event, Member, Source, SourceKind, Spec, TypeDef, TypeKind,
    TypeRef, Variant,
};
use qmpcheck::target::emulator::{
    args, encode, serve, EmulatorConfig, Fault, FaultParseError, Outgoing, RunStatus, Session, Trigger,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// A synthetic model with every kind of type.

fn src() -> Source {
    Source::new("tests/emulator.rs", 1)
}

fn m(name: &str, ty: TypeRef, optional: bool) -> Member {
    Member::new(name, ty, optional)
}

fn b(builtin: Builtin) -> TypeRef {
    TypeRef::Builtin(builtin)
}

fn n(name: &str) -> TypeRef {
    TypeRef::named(name)
}

fn add_type(spec: &mut Spec, name: &str, kind: TypeKind) {
    spec.types.insert(name.to_string(), TypeDef::new(name, kind, src()));
}

fn add_struct(spec: &mut Spec, name: &str, members: Vec<Member>) {
    add_type(spec, name, TypeKind::Struct { base: None, members });
}

fn add_command<'a>(
    spec: &'a mut Spec,
    name: &str,
    args: Option<Vec<Member>>,
    returns: Option<TypeRef>,
) -> &'a mut Command {
    let mut command = Command::new(name, src());
    command.args = args.map(|members| spec.add_implicit_struct(format!(":obj-{name}-arg"), members, src()));
    command.returns = returns;
    spec.commands.entry(name.to_string()).or_insert(command)
}

fn model() -> Arc<Spec> {
    let mut spec = Spec::new(SourceKind::Qapi);
    let enum_of =
        |values: &[&str]| TypeKind::Enum { values: values.iter().map(|v| EnumValue::new(*v)).collect() };
    add_type(&mut spec, "Color", enum_of(&["red", "green"]));
    add_type(&mut spec, "Kind", enum_of(&["alpha", "beta"]));
    add_type(&mut spec, "ShutdownCause", enum_of(&["none", "host-qmp-quit"]));
    add_type(&mut spec, "RunState", enum_of(&["debug", "prelaunch", "running", "paused"]));
    add_struct(
        &mut spec,
        "Inner",
        vec![
            m("name", b(Builtin::Str), false),
            m("flag", b(Builtin::Bool), true),
            m("level", b(Builtin::Uint8), true),
        ],
    );
    add_struct(&mut spec, "AlphaBranch", vec![m("a", b(Builtin::Int), false)]);
    add_struct(&mut spec, "BetaBranch", vec![m("b", n("Inner"), false)]);
    add_type(
        &mut spec,
        "Choice",
        TypeKind::Union {
            base: None,
            members: vec![m("kind", n("Kind"), false), m("common", b(Builtin::Str), true)],
            discriminator: "kind".to_string(),
            variants: vec![
                Variant { value: "alpha".to_string(), ty: n("AlphaBranch"), condition: None },
                Variant { value: "beta".to_string(), ty: n("BetaBranch"), condition: None },
            ],
        },
    );
    let alt = |name: &str, ty: TypeRef| Alternative { name: name.to_string(), ty };
    add_type(
        &mut spec,
        "StrOrNull",
        TypeKind::Alternate { alternatives: vec![alt("s", b(Builtin::Str)), alt("n", b(Builtin::Null))] },
    );
    add_type(
        &mut spec,
        "InnerOrName",
        TypeKind::Alternate {
            alternatives: vec![alt("definition", n("Inner")), alt("reference", b(Builtin::Str))],
        },
    );
    add_struct(
        &mut spec,
        "ProbeInfo",
        vec![
            m("text", b(Builtin::Str), false),
            m("count", b(Builtin::Int), false),
            m("color", n("Color"), false),
            m("items", TypeRef::array(n("Inner")), false),
            m("opt", b(Builtin::Str), true),
            m("choice", n("Choice"), false),
            m("alt", n("StrOrNull"), false),
        ],
    );
    add_struct(
        &mut spec,
        "StatusInfo",
        vec![
            m("running", b(Builtin::Bool), false),
            m("singlestep", b(Builtin::Bool), false),
            m("status", n("RunState"), false),
        ],
    );
    add_struct(&mut spec, "NameInfo", vec![m("name", b(Builtin::Str), true)]);
    add_struct(
        &mut spec,
        "VersionTriple",
        vec![
            m("major", b(Builtin::Int), false),
            m("minor", b(Builtin::Int), false),
            m("micro", b(Builtin::Int), false),
        ],
    );
    add_struct(
        &mut spec,
        "VersionInfo",
        vec![m("qemu", n("VersionTriple"), false), m("package", b(Builtin::Str), false)],
    );
    let probe_args = vec![
        m("text", b(Builtin::Str), false),
        m("count", b(Builtin::Int), true),
        m("small", b(Builtin::Int8), true),
        m("byte", b(Builtin::Uint8), true),
        m("big", b(Builtin::Uint64), true),
        m("sz", b(Builtin::Size), true),
        m("ratio", b(Builtin::Number), true),
        m("on", b(Builtin::Bool), true),
        m("nothing", b(Builtin::Null), true),
        m("anything", b(Builtin::Any), true),
        m("color", n("Color"), true),
        m("inner", n("Inner"), true),
        m("list", TypeRef::array(n("Inner")), true),
        m("colors", TypeRef::array(n("Color")), true),
        m("bytes", TypeRef::array(b(Builtin::Uint8)), true),
        m("choice", n("Choice"), true),
        m("alt", n("StrOrNull"), true),
        m("ref", n("InnerOrName"), true),
    ];
    add_command(&mut spec, "probe", Some(probe_args), Some(n("ProbeInfo")));
    add_command(&mut spec, "boxed-choice", None, None).args = Some(n("Choice"));
    add_command(&mut spec, "query-status", None, Some(n("StatusInfo")));
    add_command(&mut spec, "query-name", None, Some(n("NameInfo")));
    add_command(&mut spec, "query-version", None, Some(n("VersionInfo")));
    add_command(&mut spec, "query-dull", None, None);
    add_command(&mut spec, "stop", None, None);
    add_command(&mut spec, "cont", None, None);
    add_command(&mut spec, "quit", None, None);
    add_command(&mut spec, "query-yank", None, Some(TypeRef::array(n("Inner")))).allow_oob = true;
    add_command(
        &mut spec,
        "blockdev-add",
        Some(vec![m("driver", b(Builtin::Str), false), m("node-name", b(Builtin::Str), true)]),
        None,
    );
    add_command(&mut spec, "blockdev-del", Some(vec![m("node-name", b(Builtin::Str), false)]), None);
    add_command(
        &mut spec,
        "object-add",
        Some(vec![m("qom-type", b(Builtin::Str), false), m("id", b(Builtin::Str), false)]),
        None,
    );
    add_command(&mut spec, "object-del", Some(vec![m("id", b(Builtin::Str), false)]), None);
    for name in ["STOP", "RESUME"] {
        spec.events.insert(name.to_string(), Event::new(name, src()));
    }
    let mut shutdown = Event::new("SHUTDOWN", src());
    shutdown.data = Some(spec.add_implicit_struct(
        ":obj-SHUTDOWN-arg",
        vec![m("guest", b(Builtin::Bool), false), m("reason", n("ShutdownCause"), false)],
        src(),
    ));
    spec.events.insert("SHUTDOWN".to_string(), shutdown);
    Arc::new(spec)
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn session_with(config: EmulatorConfig) -> Session {
    Session::new(model(), config)
}

fn fresh() -> Session {
    session_with(EmulatorConfig::default())
}

fn negotiated() -> Session {
    let mut s = fresh();
    assert_eq!(send(&mut s, r#"{"execute":"qmp_capabilities"}"#), vec![json!({"return": {}})]);
    s
}

fn negotiated_oob() -> Session {
    let mut s = fresh();
    let out = send(&mut s, r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#);
    assert_eq!(out, vec![json!({"return": {}})]);
    s
}

/// Sends one text (a newline is added, as a client would) and returns the messages.
fn send(s: &mut Session, text: &str) -> Vec<Value> {
    send_bytes(s, format!("{text}\n").as_bytes())
}

fn send_bytes(s: &mut Session, bytes: &[u8]) -> Vec<Value> {
    s.handle(bytes)
        .into_iter()
        .map(|o| match o {
            Outgoing::Message(v) => v,
            other => panic!("expected only messages, got {other:?}"),
        })
        .collect()
}

/// The single reply to `text`; panics when there is not exactly one message.
fn one(s: &mut Session, text: &str) -> Value {
    let mut out = send(s, text);
    assert_eq!(out.len(), 1, "replies to {text}: {out:?}");
    out.remove(0)
}

fn error_of(reply: &Value) -> (String, String) {
    let class = reply["error"]["class"].as_str().unwrap_or_else(|| panic!("not an error: {reply}"));
    (class.to_string(), reply["error"]["desc"].as_str().unwrap_or_default().to_string())
}

/// Asserts the reply is an error of `class` whose desc is exactly `desc` (QEMU 7.2's text).
fn assert_error(reply: &Value, class: &str, desc: &str) {
    assert_eq!(error_of(reply), (class.to_string(), desc.to_string()), "reply {reply}");
}

fn probe(s: &mut Session, arguments: Value) -> Value {
    one(s, &json!({"execute": "probe", "arguments": arguments}).to_string())
}

// ---------------------------------------------------------------------------------------
// Session rules.

#[test]
fn greeting_has_the_configured_version_and_oob() {
    let s = fresh();
    assert_eq!(
        s.greeting(),
        json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": "qmpcheck-emulator"},
                       "capabilities": ["oob"]}})
    );
    let mut config = EmulatorConfig::default();
    config.version.minor = 9;
    config.capabilities.clear();
    let s = session_with(config);
    assert_eq!(s.greeting()["QMP"]["version"]["qemu"]["minor"], json!(9));
    assert_eq!(s.greeting()["QMP"]["capabilities"], json!([]));
    // On the wire the keys come in QEMU's hash order, as QEMU 7.2 sends them.
    let wire = String::from_utf8(encode(&fresh().greeting())).unwrap_or_default();
    assert_eq!(
        wire,
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \
         \"qmpcheck-emulator\"}, \"capabilities\": [\"oob\"]}}\r\n"
    );
}

#[test]
fn negotiation_mode_accepts_only_qmp_capabilities() {
    let mut s = fresh();
    let reply = one(&mut s, r#"{"execute":"query-status","id":1}"#);
    assert_error(&reply, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
    assert_eq!(reply["id"], json!(1));
    // Unknown commands get the same rewritten desc; dispatcher errors stay GenericError.
    let reply = one(&mut s, r#"{"execute":"no-such-thing"}"#);
    assert_error(&reply, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
    assert_error(&one(&mut s, r#"{"id":2}"#), "GenericError", "QMP input lacks member 'execute'");
    assert!(!s.is_negotiated());
    assert_eq!(one(&mut s, r#"{"execute":"qmp_capabilities","id":"x"}"#), json!({"return": {}, "id": "x"}));
    assert!(s.is_negotiated());
    assert_eq!(one(&mut s, r#"{"execute":"query-dull"}"#), json!({"return": {}}));
}

#[test]
fn capabilities_errors() {
    let mut s = fresh();
    let reply = one(&mut s, r#"{"execute":"qmp_capabilities","arguments":{"enable":["foo"]}}"#);
    assert_error(&reply, "GenericError", "Parameter 'null' does not accept value 'foo'");
    let reply = one(&mut s, r#"{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}"#);
    assert_error(&reply, "GenericError", "Invalid parameter type for 'enable', expected: array");
    // A capability the greeting did not offer.
    let mut config = EmulatorConfig::default();
    config.capabilities.clear();
    let mut s = session_with(config);
    let reply = one(&mut s, r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#);
    assert_error(&reply, "GenericError", "Capability oob not available");
    assert!(!s.is_negotiated());
}

#[test]
fn second_qmp_capabilities_is_command_not_found_and_session_survives() {
    let mut s = negotiated();
    let reply = one(&mut s, r#"{"execute":"qmp_capabilities","id":10}"#);
    assert_error(&reply, "CommandNotFound", "Capabilities negotiation is already complete, command ignored");
    assert_eq!(reply["id"], json!(10));
    // Arguments are checked first, as QEMU's marshaller runs before the command.
    let reply = one(&mut s, r#"{"execute":"qmp_capabilities","arguments":{"x":1}}"#);
    assert_error(&reply, "GenericError", "Parameter 'x' is unexpected");
    assert_eq!(one(&mut s, r#"{"execute":"query-dull"}"#), json!({"return": {}}));
}

#[test]
fn unknown_command_is_command_not_found() {
    let mut s = negotiated();
    let reply = one(&mut s, r#"{"execute":"nope","id":[1,2]}"#);
    assert_error(&reply, "CommandNotFound", "The command nope has not been found");
    assert_eq!(reply["id"], json!([1, 2]));
}

#[test]
fn dispatcher_errors_have_qemu_texts() {
    let mut s = negotiated();
    let cases = [
        (r#"[1]"#, "QMP input must be a JSON object"),
        (r#""hello""#, "QMP input must be a JSON object"),
        (r#"{"execute":1}"#, "QMP input member 'execute' must be a string"),
        (r#"{"execute":"query-dull","arguments":[]}"#, "QMP input member 'arguments' must be an object"),
        (r#"{"execute":"query-dull","arguments":null}"#, "QMP input member 'arguments' must be an object"),
        (r#"{"execute":"query-dull","foo":1}"#, "QMP input member 'foo' is unexpected"),
        (r#"{"exec-oob":"query-yank","id":1}"#, "QMP input member 'exec-oob' is unexpected"),
        (r#"{"id":1}"#, "QMP input lacks member 'execute'"),
        // QEMU checks members in its hash-table order: `execute` before `foo`/`arguments`.
        (r#"{"foo":1,"execute":2}"#, "QMP input member 'execute' must be a string"),
        (r#"{"arguments":1,"execute":2}"#, "QMP input member 'execute' must be a string"),
    ];
    for (text, desc) in cases {
        let reply = one(&mut s, text);
        assert_error(&reply, "GenericError", desc);
    }
    // With OOB negotiated, exec-oob is a known member.
    let mut s = negotiated_oob();
    let reply = one(&mut s, r#"{"exec-oob":"query-yank","execute":"query-yank","id":5}"#);
    assert_error(&reply, "GenericError", "QMP input member 'execute' clashes with 'exec-oob'");
    assert_eq!(reply["id"], json!(5));
    assert_error(
        &one(&mut s, r#"{"exec-oob":7}"#),
        "GenericError",
        "QMP input member 'exec-oob' must be a string",
    );
}

#[test]
fn id_is_echoed_for_every_json_type() {
    let mut s = negotiated();
    let ids = [
        json!("str"),
        json!(42),
        json!(-1.5),
        json!(18446744073709551615u64),
        json!(null),
        json!(true),
        json!([1, "two", null]),
        json!({"a": {"b": [1, {"c": null}]}}),
    ];
    for id in ids {
        let ok = one(&mut s, &json!({"execute": "query-dull", "id": id}).to_string());
        assert_eq!(ok, json!({"return": {}, "id": id}));
        let err = one(&mut s, &json!({"execute": "nope", "id": id}).to_string());
        assert_eq!(err["id"], id);
        assert_eq!(error_of(&err).0, "CommandNotFound");
        let bad = one(&mut s, &json!({"execute": "probe", "id": id, "arguments": {}}).to_string());
        assert_eq!(bad["id"], id);
        assert_error(&bad, "GenericError", "Parameter 'text' is missing");
    }
    // An id nested 1024 deep (QEMU's limit) comes back whole.
    let deep = format!("{{\"execute\":\"query-dull\",\"id\":{}{}}}", "[".repeat(1023), "]".repeat(1023));
    let reply = one(&mut s, &deep);
    let mut depth = 0;
    let mut cursor = &reply["id"];
    while let Some(inner) = cursor.as_array() {
        depth += 1;
        match inner.first() {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(depth, 1023);
}

#[test]
fn parse_errors_have_no_id_and_the_session_continues() {
    let mut s = negotiated();
    let cases = [
        ("abc", "JSON parse error, invalid keyword 'abc'"),
        ("}", "JSON parse error, expecting value"),
        (r#"{"a":1]"#, "JSON parse error, expected separator in dict"),
        ("[1 2]", "JSON parse error, expected separator in list"),
        ("[1,]", "JSON parse error, expecting value"),
        (r#"{"a"}"#, "JSON parse error, missing : in object pair"),
        (r#"{1:1}"#, "JSON parse error, key is not a string in object"),
        (r#""\x""#, "JSON parse error, invalid escape sequence in string"),
    ];
    for (text, desc) in cases {
        let reply = one(&mut s, text);
        assert_eq!(reply, json!({"error": {"class": "GenericError", "desc": desc}}), "input {text}");
    }
    let out = send_bytes(&mut s, b"{\"execute\":\"query-dull\",\"id\":\"\xc3\"}\n");
    assert_eq!(
        out,
        vec![
            json!({"error": {"class": "GenericError", "desc": "JSON parse error, invalid UTF-8 sequence in string"}})
        ]
    );
    assert_eq!(one(&mut s, r#"{"execute":"query-dull","id":9}"#), json!({"return": {}, "id": 9}));
}

/// Regression: fuzz campaigns against the emulator reported `unexpected-success:*:duplicate-key`
/// because serde_json keeps the last of repeated keys, where QEMU 7.2's parser refuses them.
#[test]
fn repeated_keys_are_parse_errors_without_id_at_any_depth() {
    let duplicate = json!({"error": {"class": "GenericError", "desc": "JSON parse error, duplicate key"}});
    let mut s = fresh();
    // Even in negotiation mode, before any dispatching.
    assert_eq!(one(&mut s, r#"{"execute":"qmp_capabilities","execute":"qmp_capabilities"}"#), duplicate);
    assert!(!s.is_negotiated());
    assert_eq!(one(&mut s, r#"{"execute":"qmp_capabilities"}"#), json!({"return": {}}));
    let deep = format!(
        "{{\"execute\":\"query-dull\",\"id\":{}{{\"k\":1,\"k\":1}}{}}}",
        "[".repeat(900),
        "]".repeat(900)
    );
    let cases = [
        r#"{"execute":"query-dull","id":1,"id":2}"#,
        r#"{"id":7,"execute":"query-dull","id":7}"#,
        r#"{"execute":"query-dull","id":{"a":1,"a":2}}"#,
        r#"{"execute":"query-dull","arguments":{"x":[{"y":1,"y":2}]},"id":5}"#,
        r#"{"execute":"query-dull","id":{"a":1,"\u0061":2}}"#,
        r#"[{"a":1,"a":2}]"#,
        // The check follows the repeated member's value: a later syntax error is not reached.
        r#"{"a":1,"a":2 "b":3}"#,
        deep.as_str(),
    ];
    for text in cases {
        assert_eq!(one(&mut s, text), duplicate, "input {}", text.get(..60).unwrap_or(text));
    }
    // A syntax error inside the repeated member's value comes first.
    assert_error(&one(&mut s, r#"{"a":1,"a":}"#), "GenericError", "JSON parse error, expecting value");
    // Equal keys in different objects are no repetition; the session goes on.
    let fine = r#"{"execute":"query-dull","id":[{"a":1},{"a":1,"b":{"a":2}}]}"#;
    assert_eq!(one(&mut s, fine), json!({"return": {}, "id": [{"a": 1}, {"a": 1, "b": {"a": 2}}]}));
}

#[test]
fn control_byte_resets_the_parser() {
    let mut s = negotiated();
    // A half text, then 0xFF: one id-less error, and the half text is forgotten.
    assert_eq!(send_bytes(&mut s, b"{\"execute\":\"query-dull\",\"id\":1"), Vec::<Value>::new());
    let out = send_bytes(&mut s, b"\xff");
    assert_eq!(
        out,
        vec![json!({"error": {"class": "GenericError", "desc": "JSON parse error, stray '\u{FFFD}'"}})]
    );
    assert_eq!(one(&mut s, r#"{"execute":"query-dull","id":2}"#), json!({"return": {}, "id": 2}));
    // ESC alone is a reset too; on the wire QEMU shows it as \u001B.
    let out = send_bytes(&mut s, b"\x1b");
    assert_eq!(
        out,
        vec![json!({"error": {"class": "GenericError", "desc": "JSON parse error, stray '\u{1b}'"}})]
    );
    let wire = String::from_utf8(encode(&out[0])).unwrap_or_default();
    assert_eq!(
        wire,
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\u001B'\"}}\r\n"
    );
}

#[test]
fn nesting_over_1024_is_an_error_and_the_session_survives() {
    let mut s = negotiated();
    let deep = format!("{{\"execute\":\"query-dull\",\"id\":{}{}}}", "[".repeat(1024), "]".repeat(1024));
    let out = send(&mut s, &deep);
    assert_eq!(
        out,
        vec![json!({"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}})]
    );
    assert_eq!(one(&mut s, r#"{"execute":"query-dull","id":3}"#), json!({"return": {}, "id": 3}));
}

/// The input of conformance case W2-token-count-limit: 8 + 2,100,000 + 3 tokens.
fn over_token_limit() -> Vec<u8> {
    over_token_limit_of("query-dull")
}

fn over_token_limit_of(command: &str) -> Vec<u8> {
    let mut text = format!("{{\"execute\":\"{command}\",\"id\":[").into_bytes();
    text.extend(b"1,".repeat(1_050_000));
    text.extend(b"1]}");
    text
}

#[test]
fn token_count_over_2_mi_is_dropped_then_every_remaining_token_is_answered() {
    let mut s = negotiated();
    let started = std::time::Instant::now();
    // Fed in 64 KiB reads, as the server reads it.
    let mut out = Vec::new();
    for chunk in over_token_limit().chunks(64 << 10) {
        out.extend(send_bytes(&mut s, chunk));
    }
    out.extend(send(&mut s, r#"{"execute":"query-dull","id":"after"}"#));
    // QEMU 7.2 sent exactly this for the same input: the limit error at token 2,097,153,
    // then one error per token of the 2,858 left (`,` `1` ... `1` `]` `}`), 2,860 in all.
    assert_eq!(out.len(), 2860);
    assert_error(&out[0], "GenericError", "JSON token count limit exceeded");
    assert_eq!(out[0].get("id"), None);
    let count = |desc: &str| out.iter().filter(|m| m["error"]["desc"] == json!(desc)).count();
    assert_eq!(count("JSON parse error, expecting value"), 1430);
    assert_eq!(count("QMP input must be a JSON object"), 1428);
    assert_error(&out[1], "GenericError", "JSON parse error, expecting value");
    assert_error(&out[2], "GenericError", "QMP input must be a JSON object");
    assert_eq!(out[2859], json!({"return": {}, "id": "after"}));
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn several_texts_in_one_read_and_one_text_split_across_reads() {
    let mut s = negotiated();
    let out = send_bytes(&mut s, br#"{"execute":"query-dull","id":1}{"execute":"query-dull","id":2}"#);
    assert_eq!(out, vec![json!({"return": {}, "id": 1}), json!({"return": {}, "id": 2})]);
    let text = br#"{"execute":"query-dull","id":"split"}"#;
    let (a, b) = text.split_at(10);
    assert!(send_bytes(&mut s, a).is_empty());
    assert_eq!(send_bytes(&mut s, b), vec![json!({"return": {}, "id": "split"})]);
}

#[test]
fn exec_oob_rules() {
    // Without negotiating OOB, exec-oob is an unexpected member.
    let mut s = negotiated();
    let reply = one(&mut s, r#"{"exec-oob":"query-yank","id":1}"#);
    assert_error(&reply, "GenericError", "QMP input member 'exec-oob' is unexpected");
    let mut s = negotiated_oob();
    assert!(s.oob_enabled());
    let reply = one(&mut s, r#"{"exec-oob":"query-status","id":3}"#);
    assert_error(&reply, "GenericError", "The command query-status does not support OOB");
    assert_eq!(reply["id"], json!(3));
    assert_eq!(one(&mut s, r#"{"exec-oob":"query-yank","id":4}"#), json!({"return": [], "id": 4}));
    // QEMU 7.2 runs an exec-oob without id too.
    assert_eq!(one(&mut s, r#"{"exec-oob":"query-yank"}"#), json!({"return": []}));
    let reply = one(&mut s, r#"{"exec-oob":"nope","id":6}"#);
    assert_error(&reply, "CommandNotFound", "The command nope has not been found");
    let reply = one(&mut s, r#"{"exec-oob":"query-yank","id":8,"arguments":{"a":1}}"#);
    assert_error(&reply, "GenericError", "Parameter 'a' is unexpected");
}

// ---------------------------------------------------------------------------------------
// Arguments.

#[test]
fn argument_errors_at_top_level() {
    let mut s = negotiated();
    let cases = [
        (json!({}), "Parameter 'text' is missing"),
        (json!({"text": 1}), "Invalid parameter type for 'text', expected: string"),
        (json!({"text": "t", "zzz": 1}), "Parameter 'zzz' is unexpected"),
        (json!({"text": "t", "count": "1"}), "Invalid parameter type for 'count', expected: integer"),
        (json!({"text": "t", "count": 1.0}), "Invalid parameter type for 'count', expected: integer"),
        (
            json!({"text": "t", "count": 9223372036854775808u64}),
            "Invalid parameter type for 'count', expected: integer",
        ),
        (json!({"text": "t", "ratio": "x"}), "Invalid parameter type for 'ratio', expected: number"),
        (json!({"text": "t", "on": 1}), "Invalid parameter type for 'on', expected: boolean"),
        (json!({"text": "t", "nothing": 0}), "Invalid parameter type for 'nothing', expected: null"),
        (json!({"text": "t", "inner": []}), "Invalid parameter type for 'inner', expected: object"),
        (json!({"text": "t", "list": {}}), "Invalid parameter type for 'list', expected: array"),
        (json!({"text": "t", "color": "blue"}), "Parameter 'color' does not accept value 'blue'"),
        (json!({"text": "t", "color": 3}), "Invalid parameter type for 'color', expected: string"),
        (json!({"text": "t", "small": 128}), "Parameter 'small' expects int8_t"),
        (json!({"text": "t", "small": -129}), "Parameter 'small' expects int8_t"),
        (json!({"text": "t", "small": 1.5}), "Invalid parameter type for 'small', expected: integer"),
        (json!({"text": "t", "byte": 300}), "Parameter 'byte' expects uint8_t"),
        (json!({"text": "t", "byte": -1}), "Parameter 'byte' expects uint8_t"),
        (json!({"text": "t", "byte": 1.5}), "Parameter 'byte' expects uint64"),
        (json!({"text": "t", "byte": "a"}), "Parameter 'byte' expects uint64"),
        (json!({"text": "t", "big": 1e30}), "Parameter 'big' expects uint64"),
        (json!({"text": "t", "sz": true}), "Parameter 'sz' expects uint64"),
        (json!({"text": "t", "alt": 1}), "Invalid parameter type for 'alt', expected: StrOrNull"),
        (
            json!({"text": "t", "text2": null, "nothing": 0}),
            "Invalid parameter type for 'nothing', expected: null",
        ),
    ];
    for (arguments, desc) in cases {
        let reply = probe(&mut s, arguments.clone());
        assert_error(&reply, "GenericError", desc);
    }
    // In range, and the values QEMU accepts for compatibility.
    let accepted = [
        json!({"text": "t", "small": -128, "byte": 255, "big": 18446744073709551615u64, "sz": -1}),
        json!({"text": "t", "ratio": 1, "alt": null, "anything": {"x": [1]}, "nothing": null}),
        json!({"text": "t", "alt": "s", "ref": "name", "colors": ["red", "green"], "bytes": [0, 255]}),
    ];
    for arguments in accepted {
        assert!(probe(&mut s, arguments.clone()).get("return").is_some(), "{arguments}");
    }
}

#[test]
fn argument_errors_nested_use_qemu_paths() {
    let mut s = negotiated();
    let cases = [
        (json!({"text": "t", "inner": {}}), "Parameter 'inner.name' is missing"),
        (
            json!({"text": "t", "inner": {"name": "n", "flag": 1}}),
            "Invalid parameter type for 'inner.flag', expected: boolean",
        ),
        (json!({"text": "t", "inner": {"name": "n", "x": 1}}), "Parameter 'inner.x' is unexpected"),
        (json!({"text": "t", "list": [{"name": "a"}, {}]}), "Parameter 'list[1].name' is missing"),
        (
            json!({"text": "t", "list": [{"name": 1}]}),
            "Invalid parameter type for 'list[0].name', expected: string",
        ),
        (json!({"text": "t", "list": [{"name": "a", "zz": 1}]}), "Parameter 'list[0].zz' is unexpected"),
        // Range and enum errors name the bare member, or 'null' for list elements, as QEMU.
        (json!({"text": "t", "inner": {"name": "n", "level": 256}}), "Parameter 'level' expects uint8_t"),
        (
            json!({"text": "t", "list": [{"name": "n", "level": 1.5}]}),
            "Parameter 'list[0].level' expects uint64",
        ),
        (json!({"text": "t", "colors": ["red", "pink"]}), "Parameter 'null' does not accept value 'pink'"),
        (
            json!({"text": "t", "colors": ["red", 1]}),
            "Invalid parameter type for 'colors[1]', expected: string",
        ),
        (json!({"text": "t", "bytes": [1, 256]}), "Parameter 'null' expects uint8_t"),
        (json!({"text": "t", "ref": {"name": 5}}), "Invalid parameter type for 'ref.name', expected: string"),
        (json!({"text": "t", "ref": true}), "Invalid parameter type for 'ref', expected: InnerOrName"),
    ];
    for (arguments, desc) in cases {
        let reply = probe(&mut s, arguments.clone());
        assert_error(&reply, "GenericError", desc);
    }
}

#[test]
fn argument_errors_in_union_branches() {
    let mut s = negotiated();
    let cases = [
        (json!({"text": "t", "choice": {}}), "Parameter 'choice.kind' is missing"),
        (json!({"text": "t", "choice": {"kind": "gamma"}}), "Parameter 'kind' does not accept value 'gamma'"),
        (json!({"text": "t", "choice": {"kind": "alpha"}}), "Parameter 'choice.a' is missing"),
        (
            json!({"text": "t", "choice": {"kind": "alpha", "a": "x"}}),
            "Invalid parameter type for 'choice.a', expected: integer",
        ),
        (json!({"text": "t", "choice": {"kind": "beta", "b": {}}}), "Parameter 'choice.b.name' is missing"),
        // A member of the other branch is unexpected, reported after the branch passed.
        (
            json!({"text": "t", "choice": {"kind": "alpha", "a": 1, "b": {"name": "x"}}}),
            "Parameter 'choice.b' is unexpected",
        ),
    ];
    for (arguments, desc) in cases {
        let reply = probe(&mut s, arguments.clone());
        assert_error(&reply, "GenericError", desc);
    }
    let ok =
        probe(&mut s, json!({"text": "t", "choice": {"kind": "beta", "common": "c", "b": {"name": "x"}}}));
    assert!(ok.get("return").is_some(), "{ok}");
    // A boxed command whose arguments are the union itself.
    let reply = one(&mut s, r#"{"execute":"boxed-choice","arguments":{"kind":"beta"}}"#);
    assert_error(&reply, "GenericError", "Parameter 'b' is missing");
    let reply = one(&mut s, r#"{"execute":"boxed-choice","arguments":{"kind":"alpha","a":1}}"#);
    assert_eq!(reply, json!({"return": {}}));
}

#[test]
fn commands_without_arguments_reject_any() {
    let mut s = negotiated();
    let reply = one(&mut s, r#"{"execute":"query-dull","arguments":{"x":1}}"#);
    assert_error(&reply, "GenericError", "Parameter 'x' is unexpected");
    assert_eq!(one(&mut s, r#"{"execute":"query-dull","arguments":{}}"#), json!({"return": {}}));
}

#[test]
fn argument_checker_is_usable_alone() {
    let spec = model();
    let color = TypeRef::named("Color");
    assert_eq!(args::check_value(&spec, &color, "c", &json!("red")), Ok(()));
    assert_eq!(
        args::check_value(&spec, &color, "c", &json!("x")),
        Err("Parameter 'c' does not accept value 'x'".to_string())
    );
}

// ---------------------------------------------------------------------------------------
// Replies and state.

#[test]
fn replies_are_minimal_valid_values() {
    let mut s = negotiated();
    let reply = probe(&mut s, json!({"text": "t"}));
    assert_eq!(
        reply,
        json!({"return": {"text": "", "count": 0, "color": "red", "items": [],
                          "choice": {"kind": "alpha", "a": 0}, "alt": ""}})
    );
    assert_eq!(one(&mut s, r#"{"execute":"query-name"}"#), json!({"return": {}}));
    assert_eq!(
        one(&mut s, r#"{"execute":"query-version"}"#),
        json!({"return": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": "qmpcheck-emulator"}})
    );
    let config = EmulatorConfig { name: Some("vm1".to_string()), ..EmulatorConfig::default() };
    let mut s = session_with(config);
    send(&mut s, r#"{"execute":"qmp_capabilities"}"#);
    assert_eq!(one(&mut s, r#"{"execute":"query-name"}"#), json!({"return": {"name": "vm1"}}));
}

fn assert_event(message: &Value, name: &str) {
    assert_eq!(message["event"], json!(name), "{message}");
    assert!(message["timestamp"]["seconds"].as_u64().is_some_and(|s| s > 1_600_000_000), "{message}");
    assert!(message["timestamp"]["microseconds"].as_u64().is_some_and(|us| us < 1_000_000), "{message}");
}

#[test]
fn stop_cont_and_query_status() {
    let mut s = negotiated();
    let status = |s: &mut Session| one(s, r#"{"execute":"query-status"}"#)["return"].clone();
    assert_eq!(status(&mut s), json!({"running": false, "singlestep": false, "status": "prelaunch"}));
    // As QEMU: stop in prelaunch changes nothing and sends no event.
    assert_eq!(send(&mut s, r#"{"execute":"stop"}"#), vec![json!({"return": {}})]);
    let out = send(&mut s, r#"{"execute":"cont","id":"c1"}"#);
    assert_eq!(out.len(), 2);
    assert_event(&out[0], "RESUME");
    assert_eq!(out[1], json!({"return": {}, "id": "c1"}));
    assert_eq!(status(&mut s), json!({"running": true, "singlestep": false, "status": "running"}));
    // STOP comes before stop's reply, as QEMU 7.2 sends it.
    let out = send(&mut s, r#"{"execute":"stop","id":"s1"}"#);
    assert_eq!(out.len(), 2);
    assert_event(&out[0], "STOP");
    assert_eq!(out[0].get("data"), None);
    assert_eq!(out[1], json!({"return": {}, "id": "s1"}));
    assert_eq!(status(&mut s)["status"], json!("paused"));
    assert_eq!(s.state().status, RunStatus::Paused);
    let out = send(&mut s, r#"{"execute":"cont"}"#);
    assert_eq!(out.len(), 2);
    assert_event(&out[0], "RESUME");
    assert_eq!(status(&mut s)["status"], json!("running"));
}

#[test]
fn blockdev_add_registry() {
    let mut s = negotiated();
    let add = r#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n1"}}"#;
    assert_eq!(one(&mut s, add), json!({"return": {}}));
    assert_error(&one(&mut s, add), "GenericError", "Duplicate nodes with node-name='n1'");
    let reply = one(&mut s, r#"{"execute":"blockdev-add","arguments":{"driver":"null-co"}}"#);
    assert_error(&reply, "GenericError", "'node-name' must be specified for the root node");
    let del = r#"{"execute":"blockdev-del","arguments":{"node-name":"n1"}}"#;
    assert_eq!(one(&mut s, del), json!({"return": {}}));
    assert_error(&one(&mut s, del), "GenericError", "Failed to find node with node-name='n1'");
    assert_eq!(one(&mut s, add), json!({"return": {}}));
    assert_eq!(s.state().nodes.len(), 1);
}

#[test]
fn object_add_and_del_registry() {
    let mut s = negotiated();
    let reply = one(&mut s, r#"{"execute":"object-del","arguments":{"id":"nope"}}"#);
    assert_error(&reply, "GenericError", "object 'nope' not found");
    let add = r#"{"execute":"object-add","arguments":{"qom-type":"iothread","id":"io1"}}"#;
    assert_eq!(one(&mut s, add), json!({"return": {}}));
    let reply = one(&mut s, add);
    assert_error(
        &reply,
        "GenericError",
        "attempt to add duplicate property 'io1' to object (type 'container')",
    );
    assert_eq!(one(&mut s, r#"{"execute":"object-del","arguments":{"id":"io1"}}"#), json!({"return": {}}));
    assert!(s.state().objects.is_empty());
}

#[test]
fn quit_sends_shutdown_then_reply_then_closes() {
    let mut s = negotiated();
    let out = s.handle(b"{\"execute\":\"quit\",\"id\":\"q\"}\n{\"execute\":\"query-dull\"}\n");
    assert_eq!(out.len(), 3, "{out:?}");
    let event = out[0].message().cloned().unwrap_or_default();
    assert_event(&event, "SHUTDOWN");
    assert_eq!(event["data"], json!({"guest": false, "reason": "host-qmp-quit"}));
    assert_eq!(out[1], Outgoing::Message(json!({"return": {}, "id": "q"})));
    assert_eq!(out[2], Outgoing::Close);
    assert!(s.is_closed());
    assert!(s.handle(b"{\"execute\":\"query-dull\"}\n").is_empty());
}

// ---------------------------------------------------------------------------------------
// Faults.

#[test]
fn fault_syntax_parses_and_rejects() {
    assert_eq!("hang".parse::<Fault>(), Ok(Fault::Hang(Trigger::After(1))));
    assert_eq!("hang:5".parse::<Fault>(), Ok(Fault::Hang(Trigger::After(5))));
    assert_eq!(
        "hang@query-status".parse::<Fault>(),
        Ok(Fault::Hang(Trigger::Command("query-status".into())))
    );
    assert_eq!("die".parse::<Fault>(), Ok(Fault::Die(Trigger::After(1))));
    assert_eq!("die@quit".parse::<Fault>(), Ok(Fault::Die(Trigger::Command("quit".into()))));
    assert_eq!("garbage:0.25".parse::<Fault>(), Ok(Fault::Garbage { rate: 0.25, command: None }));
    assert_eq!(
        "garbage:1@probe".parse::<Fault>(),
        Ok(Fault::Garbage { rate: 1.0, command: Some("probe".into()) })
    );
    assert!(matches!("explode".parse::<Fault>(), Err(FaultParseError::UnknownKind { .. })));
    assert!(matches!("garbage".parse::<Fault>(), Err(FaultParseError::BadRate { .. })));
    assert!(matches!("garbage:1.5".parse::<Fault>(), Err(FaultParseError::BadRate { .. })));
    assert!(matches!("hang:x".parse::<Fault>(), Err(FaultParseError::BadCount { .. })));
    assert!(matches!("die@".parse::<Fault>(), Err(FaultParseError::EmptyCommand { .. })));
    assert!(matches!("hang:2@quit".parse::<Fault>(), Err(FaultParseError::TwoTriggers { .. })));
    let err = "explode".parse::<Fault>().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("unknown fault `explode`"), "{err}");
    for text in ["hang:1", "die@quit", "garbage:0.5@probe"] {
        assert_eq!(text.parse::<Fault>().map(|f| f.to_string()), Ok(text.to_string()));
    }
}

fn with_fault(text: &str, seed: u64) -> Session {
    let fault = text.parse().unwrap_or_else(|e| panic!("{e}"));
    let config = EmulatorConfig { fault: Some(fault), seed, ..EmulatorConfig::default() };
    session_with(config)
}

#[test]
fn hang_after_n_commands_and_on_a_command() {
    let mut s = with_fault("hang:2", 0);
    assert_eq!(send(&mut s, r#"{"execute":"qmp_capabilities"}"#).len(), 1);
    assert_eq!(send(&mut s, r#"{"execute":"query-dull"}"#).len(), 1);
    assert!(s.handle(b"{\"execute\":\"query-dull\"}\n").is_empty());
    assert!(s.is_hung());
    assert!(s.handle(b"{\"execute\":\"query-dull\"}\n\xff").is_empty());
    let mut s = with_fault("hang@query-status", 0);
    send(&mut s, r#"{"execute":"qmp_capabilities"}"#);
    assert_eq!(send(&mut s, r#"{"execute":"query-dull"}"#).len(), 1);
    assert!(s.handle(b"{\"execute\":\"query-status\"}\n").is_empty());
    assert!(s.handle(b"{\"execute\":\"query-dull\"}\n").is_empty());
}

#[test]
fn die_sends_half_a_reply_then_closes() {
    let mut s = with_fault("die@query-version", 0);
    send(&mut s, r#"{"execute":"qmp_capabilities"}"#);
    let out = s.handle(b"{\"execute\":\"query-version\"}\n");
    let full = encode(
        &json!({"return": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": "qmpcheck-emulator"}}),
    );
    assert_eq!(out, vec![Outgoing::Raw(full[..full.len() / 2].to_vec()), Outgoing::Close]);
    assert!(s.is_closed());
}

#[test]
fn garbage_is_deterministic_by_seed() {
    let run = |seed: u64| {
        let mut s = with_fault("garbage:0.5", seed);
        (0..64)
            .map(|_| match s.handle(b"{\"execute\":\"qmp_capabilities\"}\n").as_slice() {
                [Outgoing::Raw(bytes)] => {
                    assert!(serde_json::from_slice::<Value>(bytes).is_err());
                    'g'
                }
                [Outgoing::Message(_)] => 'm',
                other => panic!("unexpected {other:?}"),
            })
            .collect::<String>()
    };
    let first = run(7);
    assert_eq!(first, run(7));
    assert_ne!(first, run(8));
    let garbled = first.chars().filter(|c| *c == 'g').count();
    assert!((16..=48).contains(&garbled), "{garbled} of 64 garbled at rate 0.5");
    // Rate 1 restricted to one command garbles exactly that command's replies.
    let mut s = with_fault("garbage:1@query-name", 1);
    assert_eq!(send(&mut s, r#"{"execute":"qmp_capabilities"}"#).len(), 1);
    assert!(matches!(s.handle(b"{\"execute\":\"query-name\"}\n").as_slice(), [Outgoing::Raw(_)]));
    assert!(matches!(s.handle(b"{\"execute\":\"query-dull\"}\n").as_slice(), [Outgoing::Message(_)]));
}

// ---------------------------------------------------------------------------------------
// Serving.

struct LineClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl LineClient {
    fn connect(path: &std::path::Path) -> LineClient {
        let stream = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect: {e}"));
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap_or_default();
        let writer = stream.try_clone().unwrap_or_else(|e| panic!("clone: {e}"));
        LineClient { reader: BufReader::new(stream), writer }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap_or_else(|e| panic!("read: {e}"));
        line
    }

    fn exec(&mut self, text: &str) -> Value {
        self.writer.write_all(format!("{text}\r\n").as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
        serde_json::from_str(&self.line()).unwrap_or_else(|e| panic!("reply: {e}"))
    }
}

#[test]
fn serves_two_clients_concurrently_with_separate_state() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("qmp.sock");
    let server = serve(&path, model(), EmulatorConfig::default()).unwrap_or_else(|e| panic!("serve: {e}"));
    let mut a = LineClient::connect(&path);
    let mut b = LineClient::connect(&path);
    let greeting = a.line();
    assert!(greeting.ends_with("\r\n"));
    assert_eq!(serde_json::from_str::<Value>(&greeting).ok(), Some(fresh().greeting()));
    assert_eq!(b.line(), greeting);
    assert_eq!(a.exec(r#"{"execute":"qmp_capabilities"}"#), json!({"return": {}}));
    // b is still negotiating while a is in command mode.
    assert_eq!(b.exec(r#"{"execute":"query-status"}"#)["error"]["class"], json!("CommandNotFound"));
    assert_eq!(b.exec(r#"{"execute":"qmp_capabilities"}"#), json!({"return": {}}));
    let add = r#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n"}}"#;
    assert_eq!(a.exec(add), json!({"return": {}}));
    assert_eq!(b.exec(add), json!({"return": {}}), "each connection is its own VM");
    // Interleaved traffic, each client gets its own replies in order.
    let threads: Vec<_> = [a, b]
        .into_iter()
        .enumerate()
        .map(|(k, mut client)| {
            std::thread::spawn(move || {
                for i in 0..200 {
                    let id = json!([k, i]);
                    let reply = client.exec(&json!({"execute": "query-dull", "id": id}).to_string());
                    assert_eq!(reply, json!({"return": {}, "id": id}));
                }
                client
            })
        })
        .collect();
    let mut clients: Vec<LineClient> =
        threads.into_iter().map(|t| t.join().unwrap_or_else(|_| panic!("client"))).collect();
    assert_eq!(server.accepted(), 2);
    // quit: SHUTDOWN, the reply, then end of stream.
    let mut a = clients.remove(0);
    a.writer.write_all(b"{\"execute\":\"quit\"}\n").unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Value>(&a.line()).ok().map(|v| v["event"].clone()),
        Some(json!("SHUTDOWN"))
    );
    assert_eq!(serde_json::from_str::<Value>(&a.line()).ok(), Some(json!({"return": {}})));
    assert_eq!(a.line(), "", "connection closed after quit");
    // The other client still works, and stop() ends it.
    let mut b = clients.remove(0);
    assert_eq!(b.exec(r#"{"execute":"query-dull","id":1}"#), json!({"return": {}, "id": 1}));
    server.stop();
    let mut rest = Vec::new();
    let _ = b.reader.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert!(!path.exists(), "socket file removed on stop");
}

/// Runs `job` on a thread; fails the test when it has not returned within `limit`.
fn finishes_within(limit: Duration, what: &str, job: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        job();
        let _ = done.send(());
    });
    assert!(finished.recv_timeout(limit).is_ok(), "{what} did not return within {limit:?}");
}

/// Regression: dropping (or stopping) a server whose socket file was removed hung forever,
/// because its accept thread was woken by connecting to that file.
#[test]
fn server_stops_after_its_socket_file_was_removed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for (k, how) in ["drop", "stop"].into_iter().enumerate() {
        let path = dir.path().join(format!("qmp-{k}.sock"));
        let server =
            serve(&path, model(), EmulatorConfig::default()).unwrap_or_else(|e| panic!("serve: {e}"));
        let mut client = LineClient::connect(&path);
        assert!(client.line().starts_with("{\"QMP\""));
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove: {e}"));
        finishes_within(Duration::from_secs(5), how, move || match how {
            "drop" => drop(server),
            _ => server.stop(),
        });
        assert_eq!(client.line(), "", "{how}: the open connection was closed");
    }
}

/// Stopping a server whose file was removed and bound again by another server leaves the
/// other's file in place.
#[test]
fn server_stop_removes_only_its_own_socket_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("qmp.sock");
    let first = serve(&path, model(), EmulatorConfig::default()).unwrap_or_else(|e| panic!("serve: {e}"));
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove: {e}"));
    let second = serve(&path, model(), EmulatorConfig::default()).unwrap_or_else(|e| panic!("serve: {e}"));
    finishes_within(Duration::from_secs(5), "stop", move || first.stop());
    assert!(path.exists(), "the second server's socket file is kept");
    let mut client = LineClient::connect(&path);
    assert!(client.line().starts_with("{\"QMP\""));
    assert_eq!(second.accepted(), 1);
    second.stop();
    assert!(!path.exists());
}

#[test]
fn serving_with_die_closes_mid_reply() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("qmp.sock");
    let fault = Fault::Die(Trigger::Command("query-version".to_string()));
    let config = EmulatorConfig { fault: Some(fault), ..EmulatorConfig::default() };
    let server = serve(&path, model(), config).unwrap_or_else(|e| panic!("serve: {e}"));
    let mut c = LineClient::connect(&path);
    c.line();
    assert_eq!(c.exec(r#"{"execute":"qmp_capabilities"}"#), json!({"return": {}}));
    c.writer.write_all(b"{\"execute\":\"query-version\"}\n").unwrap_or_default();
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert!(
        !rest.is_empty() && !rest.ends_with(b"\r\n"),
        "half a reply: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(serde_json::from_slice::<Value>(&rest).is_err());
    server.stop();
}

// ---------------------------------------------------------------------------------------
// The recorded QEMU 7.2 model, and the live binary side by side.

fn corpus_model() -> Arc<Spec> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/qemu-7.2/qemu-system-x86_64.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Arc::new(qmpcheck::spec::introspect::parse(&text, path))
}

#[test]
fn recorded_qemu_7_2_model_gives_qemu_errors() {
    let mut s = Session::new(corpus_model(), EmulatorConfig::default());
    send(&mut s, r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#);
    let cases = [
        (r#"{"execute":"balloon","arguments":{}}"#, "Parameter 'value' is missing"),
        (
            r#"{"execute":"balloon","arguments":{"value":true}}"#,
            "Invalid parameter type for 'value', expected: integer",
        ),
        (
            r#"{"execute":"query-cpu-model-expansion","arguments":{"type":"bogus","model":{"name":"x"}}}"#,
            "Parameter 'type' does not accept value 'bogus'",
        ),
        (
            r#"{"execute":"query-cpu-model-expansion","arguments":{"type":"static","model":{}}}"#,
            "Parameter 'model.name' is missing",
        ),
        (r#"{"execute":"blockdev-add","arguments":{"node-name":"a"}}"#, "Parameter 'driver' is missing"),
        (
            r#"{"execute":"blockdev-add","arguments":{"driver":"bogus","node-name":"a"}}"#,
            "Parameter 'driver' does not accept value 'bogus'",
        ),
        (
            r#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"a","cache":{"direct":1}}}"#,
            "Invalid parameter type for 'cache.direct', expected: boolean",
        ),
        (
            r#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"a","zzz":1}}"#,
            "Parameter 'zzz' is unexpected",
        ),
        (
            r#"{"execute":"blockdev-add","arguments":{"driver":"qcow2","node-name":"a","file":{"size":"q"}}}"#,
            "Parameter 'file.driver' is missing",
        ),
        (
            r#"{"execute":"migrate-set-parameters","arguments":{"block-bitmap-mapping":[{"node-name":"a"}]}}"#,
            "Parameter 'block-bitmap-mapping[0].alias' is missing",
        ),
        (
            r#"{"execute":"transaction","arguments":{"actions":[{"type":"abort"}]}}"#,
            "Parameter 'actions[0].data' is missing",
        ),
        (r#"{"exec-oob":"query-status","id":3}"#, "The command query-status does not support OOB"),
    ];
    for (text, desc) in cases {
        assert_error(&one(&mut s, text), "GenericError", desc);
    }
    assert_eq!(
        one(&mut s, r#"{"execute":"query-status"}"#),
        json!({"return": {"running": false, "singlestep": false, "status": "prelaunch"}})
    );
    assert_eq!(one(&mut s, r#"{"exec-oob":"query-yank","id":1}"#), json!({"return": [], "id": 1}));
    let commands = one(&mut s, r#"{"execute":"query-commands"}"#);
    assert_eq!(commands["return"].as_array().map(Vec::len), Some(216));
}

/// What the emulator is expected to do with one input, compared with live QEMU.
enum Expect {
    /// Byte-identical messages (event timestamps aside).
    Same,
    /// A known divergence, with the reason; it must still differ (or the list is stale).
    Differs(&'static str),
}

/// One side of the comparison: a raw client.
fn raw_client(path: &std::path::Path) -> qmpcheck::wire::Client {
    qmpcheck::wire::Client::connect_raw(path, qmpcheck::wire::ClientConfig::default())
        .unwrap_or_else(|e| panic!("connect {}: {e}", path.display()))
}

/// Sends `input` then a sentinel, and returns every message before the sentinel's reply,
/// events with their timestamp removed and everything else as raw text.
fn exchange(client: &mut qmpcheck::wire::Client, input: &[u8], n: usize) -> Vec<String> {
    let sentinel = format!("sentinel-{n}");
    client.send_raw(input).unwrap_or_else(|e| panic!("send: {e}"));
    client
        .send_raw(format!("\n{{\"execute\":\"query-name\",\"id\":\"{sentinel}\"}}\n").as_bytes())
        .unwrap_or_else(|e| panic!("send: {e}"));
    let mut seen = Vec::new();
    loop {
        let incoming = client.read_message().unwrap_or_else(|e| panic!("read after {seen:?}: {e}"));
        let mut value: Value = serde_json::from_slice(&incoming.raw).unwrap_or_default();
        if value.get("id") == Some(&json!(sentinel)) {
            return seen;
        }
        if let Some(event) = value.as_object_mut().filter(|o| o.contains_key("event")) {
            assert!(incoming.raw.starts_with(b"{\"timestamp\": {\"seconds\": "), "{:?}", incoming.raw);
            event.remove("timestamp");
            seen.push(format!("event {value}"));
        } else {
            seen.push(String::from_utf8_lossy(&incoming.raw).into_owned());
        }
    }
}

#[test]
fn emulator_matches_live_qemu_7_2() {
    use qmpcheck::target::{find_binary, Binary, Qemu, Target};
    let Some(binary) = find_binary("qemu-system-x86_64") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but qemu-system-x86_64 is not installed"
        );
        eprintln!("note: qemu-system-x86_64 not found, live comparison skipped");
        return;
    };
    let qemu =
        Qemu::launch(&Target::new(Binary::SystemX86, binary)).unwrap_or_else(|e| panic!("launch: {e}"));
    let mut real = raw_client(qemu.socket());
    let real_greeting = real.read_message().unwrap_or_else(|e| panic!("greeting: {e}")).raw;
    let greeting: Value = serde_json::from_slice(&real_greeting).unwrap_or_default();
    let version = &greeting["QMP"]["version"];
    if version["qemu"]["major"] != json!(7) || version["qemu"]["minor"] != json!(2) {
        eprintln!("note: installed QEMU is {version}, not 7.2; live comparison skipped");
        return;
    }
    // The emulator announces the same version, so even the greetings are byte-identical.
    let mut config = EmulatorConfig::default();
    config.version.micro = version["qemu"]["micro"].as_u64().unwrap_or(0);
    config.version.package = version["package"].as_str().unwrap_or_default().to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let server = serve(dir.path().join("emu.sock"), corpus_model(), config).unwrap_or_else(|e| panic!("{e}"));
    let mut emulated = raw_client(server.path());
    let emulated_greeting = emulated.read_message().unwrap_or_else(|e| panic!("greeting: {e}")).raw;
    assert_eq!(String::from_utf8_lossy(&emulated_greeting), String::from_utf8_lossy(&real_greeting));

    let deep_ok = format!("{{\"execute\":\"query-name\",\"id\":{}{}}}", "[".repeat(1023), "]".repeat(1023));
    let deep_bad = format!("{{\"execute\":\"query-name\",\"id\":{}{}}}", "[".repeat(1024), "]".repeat(1024));
    let deep_duplicate = format!(
        "{{\"execute\":\"query-name\",\"id\":{}{{\"k\":1,\"k\":1}}{}}}",
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        // Negotiation mode.
        (br#"{"execute":"query-status","id":1}"#.to_vec(), Expect::Same),
        (br#"{"id":1}"#.to_vec(), Expect::Same),
        (br#"[1]"#.to_vec(), Expect::Same),
        (br#"{"execute":"qmp_capabilities","arguments":{"enable":["foo"]}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}"#.to_vec(), Expect::Same),
        (br#"{"exec-oob":"qmp_capabilities","id":2}"#.to_vec(), Expect::Same),
        (br#"{"execute":"qmp_capabilities","execute":"qmp_capabilities","id":0}"#.to_vec(), Expect::Same),
        (br#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":"neg"}"#.to_vec(), Expect::Same),
        // Command mode: session and dispatcher.
        (br#"{"execute":"qmp_capabilities","id":{"a":[1,2]}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"nope","id":[1,{"a":null,"b":true,"c":-2.5e-5}]}"#.to_vec(), Expect::Same),
        (br#"{"execute":1,"id":"x"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-status","arguments":[]}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-status","arguments":null}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-status","foo":1}"#.to_vec(), Expect::Same),
        (br#"{"foo":1,"execute":2}"#.to_vec(), Expect::Same),
        (br#"{"exec-oob":"query-yank","execute":"query-yank","id":5}"#.to_vec(), Expect::Same),
        (br#"{"exec-oob":"query-status","id":3}"#.to_vec(), Expect::Same),
        (br#"{"exec-oob":"nope"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-status","id":{"k":["\u00e9",0.1,18446744073709551615]}}"#.to_vec(), Expect::Same),
        ("{\"execute\":\"query-name\",\"id\":\"\u{e9}\u{1F600}\"}".as_bytes().to_vec(), Expect::Same),
        (deep_ok.into_bytes(), Expect::Same),
        (deep_bad.into_bytes(), Expect::Differs("QEMU adds one 'expecting value' error per stray closer")),
        // Parse errors and the reset.
        (b"abc".to_vec(), Expect::Same),
        (b"}".to_vec(), Expect::Same),
        (br#"{"a":1]"#.to_vec(), Expect::Same),
        (br#"[1 2]"#.to_vec(), Expect::Same),
        (br#"{"a"}"#.to_vec(), Expect::Same),
        (br#"{1:1}"#.to_vec(), Expect::Same),
        (b"{\"execute\":\"query-status\"\xff".to_vec(), Expect::Same),
        (b"\x1b".to_vec(), Expect::Same),
        (b"[1,]".to_vec(), Expect::Same),
        (br#""\x""#.to_vec(), Expect::Same),
        (b"{\"execute\":\"query-name\",\"id\":\"\xc3\"}".to_vec(), Expect::Same),
        (b"tru".to_vec(), Expect::Same),
        (b"{\"execute\":\"query-name\" \"id\":1}".to_vec(), Expect::Same),
        // Repeated keys, at any depth: QEMU's parser refuses them (no id in the reply).
        (br#"{"execute":"query-status","execute":"query-status"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-status","id":1,"id":2}"#.to_vec(), Expect::Same),
        (br#"{"id":7,"execute":"query-status","id":7}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-status","id":{"a":1,"a":2}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-name","arguments":{"x":1,"x":1},"id":5}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-name","arguments":{"x":[{"y":1,"y":2}]},"id":5}"#.to_vec(), Expect::Same),
        (br#"{"a":1,"\u0061":2}"#.to_vec(), Expect::Same),
        (br#"[{"a":1,"a":2}]"#.to_vec(), Expect::Same),
        (br#"{"a":1,"a":}"#.to_vec(), Expect::Same),
        (br#"{"a":1,"a":1,"b"}"#.to_vec(), Expect::Same),
        (br#"{"a":1,"a":2 "b":3}"#.to_vec(), Expect::Same),
        (deep_duplicate.into_bytes(), Expect::Same),
        (br#"{"execute":"query-name","id":[{"a":1},{"a":1,"b":{"a":2}}]}"#.to_vec(), Expect::Same),
        (
            br#"{"execute":"query-name","id":"\ud800"}"#.to_vec(),
            Expect::Differs("QEMU quotes the escape: '\\ud800 is not a valid Unicode character'"),
        ),
        (
            br#"{"execute":"query-name","id":01}"#.to_vec(),
            Expect::Differs("a lexical error inside a token: QEMU names the token ('01') and recovers at '}'"),
        ),
        (
            b"{\"execute\":\"query-name\",\"id\":\"a\x01\"}".to_vec(),
            Expect::Differs("QEMU's stray text is the token so far ('\"a\\u0001'), ours the byte"),
        ),
        (br#"{"execute":"query-name","id":[1.5,1E2,0.1e-3,123456789012345678901234567890,-5]}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-name","id":-0}"#.to_vec(), Expect::Differs("serde_json reads -0 as a double, QEMU as the integer 0")),
        (br#"{"execute":"query-name",'id':'single'}"#.to_vec(), Expect::Differs("single-quoted strings are not parsed")),
        // Arguments.
        (br#"{"execute":"balloon","arguments":{}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"balloon","arguments":{"value":9223372036854775808}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-cpu-model-expansion","arguments":{"type":"bogus","model":{"name":"x"}}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-cpu-model-expansion","arguments":{"type":5,"model":{"name":"x"}}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-cpu-model-expansion","arguments":{"type":"static","model":{}}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-add","arguments":{"node-name":"a"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-add","arguments":{"driver":"bogus","node-name":"a"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"a","size":"x"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"a","cache":{"direct":1}}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"a","zzz":1}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-add","arguments":{"driver":"qcow2","node-name":"a","file":{"size":"q"}}}"#.to_vec(), Expect::Same),
        (
            br#"{"execute":"blockdev-add","arguments":{"driver":"qcow2","node-name":"a","file":5}}"#.to_vec(),
            Expect::Differs("introspection masks the alternate's name BlockdevRef"),
        ),
        (br#"{"execute":"blockdev-add","arguments":{"driver":"null-co"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"migrate-set-parameters","arguments":{"block-bitmap-mapping":[{"node-name":"a"}]}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"migrate-set-parameters","arguments":{"tls-creds":null}}"#.to_vec(), Expect::Same),
        (
            br#"{"execute":"migrate-set-parameters","arguments":{"cpu-throttle-initial":300}}"#.to_vec(),
            Expect::Differs("introspection collapses uint8 to int, so no range error"),
        ),
        (
            br#"{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":1e30}}"#.to_vec(),
            Expect::Differs("introspection collapses size to int: 'expected: integer', not 'expects uint64'"),
        ),
        (br#"{"execute":"transaction","arguments":{"actions":[{"type":"abort"}]}}"#.to_vec(), Expect::Same),
        // State.
        (br#"{"execute":"query-status","id":"st"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"stop"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"cont"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"stop"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-status"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"system_reset"}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n1"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n1"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"blockdev-del","arguments":{"node-name":"zz"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"object-add","arguments":{"qom-type":"iothread","id":"io1"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"object-add","arguments":{"qom-type":"iothread","id":"io1"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"object-del","arguments":{"id":"nope"}}"#.to_vec(), Expect::Same),
        (br#"{"execute":"query-name"}"#.to_vec(), Expect::Same),
        (br#"{"exec-oob":"query-yank","id":4}"#.to_vec(), Expect::Differs("the emulator has no chardevs to yank")),
    ];
    let mut mismatches = Vec::new();
    for (n, (input, expect)) in cases.iter().enumerate() {
        let want = exchange(&mut real, input, n);
        let got = exchange(&mut emulated, input, n);
        let shown = String::from_utf8_lossy(input);
        let shown = shown.get(..shown.len().min(100)).unwrap_or_default().to_string();
        match expect {
            Expect::Same if want != got => {
                mismatches.push(format!("{shown}\n  qemu: {want:?}\n  emu:  {got:?}"))
            }
            Expect::Differs(reason) if want == got => {
                mismatches.push(format!("{shown}: listed as differing ({reason}) but now the same"))
            }
            _ => {}
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    // quit: SHUTDOWN, the reply, then both close.
    for client in [&mut real, &mut emulated] {
        client.send_raw(b"{\"execute\":\"quit\",\"id\":\"q\"}\n").unwrap_or_else(|e| panic!("{e}"));
        let first: Value = serde_json::from_slice(&client.read_message().map(|m| m.raw).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(first["event"], json!("SHUTDOWN"));
        assert_eq!(first["data"], json!({"guest": false, "reason": "host-qmp-quit"}));
        let second = client.read_message().map(|m| m.raw).unwrap_or_default();
        assert_eq!(second, b"{\"return\": {}, \"id\": \"q\"}".to_vec());
        assert!(client.read_message().is_err(), "connection closed after quit");
    }
    server.stop();
}

/// A QEMU 7.2 launched sandboxed, and a raw client that has read its greeting and
/// negotiated without OOB; `None` (with a note) when it is missing or not 7.2.
fn live_qemu_7_2() -> Option<(qmpcheck::target::Qemu, qmpcheck::wire::Client)> {
    use qmpcheck::target::{Binary, Qemu, Target};
    let binary = support::qemu_binary("qemu-system-x86_64")?;
    let qemu =
        Qemu::launch(&Target::new(Binary::SystemX86, binary)).unwrap_or_else(|e| panic!("launch: {e}"));
    let mut client = raw_client(qemu.socket());
    let greeting = client.read_message().unwrap_or_else(|e| panic!("greeting: {e}")).raw;
    let greeting: Value = serde_json::from_slice(&greeting).unwrap_or_default();
    let version = &greeting["QMP"]["version"]["qemu"];
    if version["major"] != json!(7) || version["minor"] != json!(2) {
        println!("note: installed QEMU is {version}, not 7.2; live comparison skipped");
        return None;
    }
    assert_eq!(exchange(&mut client, br#"{"execute":"qmp_capabilities"}"#, 0), vec!["{\"return\": {}}"]);
    Some((qemu, client))
}

/// An emulator serving the recorded 7.2 model, and a client negotiated without OOB.
fn emulated_7_2(dir: &std::path::Path) -> (qmpcheck::target::emulator::ServerHandle, qmpcheck::wire::Client) {
    let server = serve(dir.join("emu.sock"), corpus_model(), EmulatorConfig::default())
        .unwrap_or_else(|e| panic!("serve: {e}"));
    let mut client = raw_client(server.path());
    client.read_message().unwrap_or_else(|e| panic!("greeting: {e}"));
    assert_eq!(exchange(&mut client, br#"{"execute":"qmp_capabilities"}"#, 0), vec!["{\"return\": {}}"]);
    (server, client)
}

/// Without OOB (with OOB negotiated, QEMU 7.2 aborts on this input: the follow-on errors
/// overflow its request queue, an assertion in monitor/qmp.c's handle_qmp_command).
#[test]
fn token_limit_matches_live_qemu_7_2() {
    let Some((_qemu, mut real)) = live_qemu_7_2() else { return };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (server, mut emulated) = emulated_7_2(dir.path());
    let input = over_token_limit_of("query-name");
    let want = exchange(&mut real, &input, 1);
    let got = exchange(&mut emulated, &input, 1);
    assert_eq!(want.len(), 2859);
    assert_eq!(
        want.first().map(String::as_str),
        Some("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON token count limit exceeded\"}}")
    );
    let differing: Vec<usize> =
        (0..want.len().max(got.len())).filter(|&i| want.get(i) != got.get(i)).collect();
    assert_eq!((got.len(), differing.first()), (2859, None), "first difference at {:?}", differing.first());
    server.stop();
}

/// A reply's class: `ok`, or the error's class and desc.
fn reply_class(text: &str) -> String {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    match value.get("error") {
        Some(error) => format!("{} {}", error["class"].as_str().unwrap_or("?"), error["desc"]),
        None if value.get("return").is_some() => "ok".to_string(),
        None => panic!("neither return nor error: {text}"),
    }
}

/// Every `query-*` command of 7.2 that needs no argument, on `-machine none -nodefaults`
/// and on the emulator: the same class, and for errors the same desc.
#[test]
fn argument_less_queries_match_live_qemu_7_2() {
    let Some((_qemu, mut real)) = live_qemu_7_2() else { return };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (server, mut emulated) = emulated_7_2(dir.path());
    let model = corpus_model();
    let queries: Vec<&str> = model
        .commands
        .values()
        .filter(|c| c.name.starts_with("query-"))
        .filter(|c| model.command_args(c).iter().all(|m| m.optional))
        .map(|c| c.name.as_str())
        .collect();
    let mut failing = Vec::new();
    let mut differing = Vec::new();
    for (n, name) in queries.iter().enumerate() {
        let request = format!("{{\"execute\":\"{name}\",\"id\":\"q\"}}");
        let call = |client: &mut qmpcheck::wire::Client| {
            let mut texts = exchange(client, request.as_bytes(), n);
            texts.retain(|t| !t.starts_with("event "));
            assert_eq!(texts.len(), 1, "{name}: {texts:?}");
            reply_class(&texts[0])
        };
        let (want, got) = (call(&mut real), call(&mut emulated));
        if want != "ok" {
            failing.push(*name);
        }
        if want != got {
            differing.push(format!("{name}\n  qemu: {want}\n  emu:  {got}"));
        }
    }
    assert_eq!(queries.len(), 58, "argument-less query commands in 7.2");
    assert!(
        differing.is_empty(),
        "{} of {} differ:\n{}",
        differing.len(),
        queries.len(),
        differing.join("\n")
    );
    // Each error QEMU gives is one Absent entry of the behaviour table, and no entry is unused.
    let mut absent: Vec<&str> = qmpcheck::target::emulator::BEHAVIOURS
        .iter()
        .filter(|(_, b, _)| matches!(b, qmpcheck::target::emulator::Behaviour::Absent { .. }))
        .map(|(name, _, _)| *name)
        .collect();
    absent.sort_unstable();
    assert_eq!(failing, absent);
    assert_eq!(failing.len(), 8);
    server.stop();
}
