//! Properties the cargo-fuzz targets under `fuzz/` check, as library functions, so each
//! fuzz target is a 3-line shim and unit tests call the same checks.
//!
//! Each function takes arbitrary bytes and panics (with a message naming the property)
//! when the property fails; a parser panicking on its own counts as a failure too.
//!
//! | function | property |
//! |---|---|
//! | [`decoder_split`] | the stream decoder returns the same texts (bytes, offsets, values, errors) whether the input arrives whole or cut at a fuzzer-chosen point |
//! | [`spec_parsers`] | the legacy, hx, QAPI and introspection parsers never panic, and each model survives a serde JSON round trip unchanged and renders |
//! | [`emulator_session`] | whatever bytes a client sends after negotiating, every message the emulator sends is QMP-shaped JSON (a reply with the request's id or an id-less error, or an event) and encodes to ASCII that decodes back to the same value |
//! | [`reply_validation`] | the validators never panic on any JSON, and agree with the jsonschema crate's reference `is_valid` on the same schema |

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::check::schema::{SchemaRole, SchemaSet, Validators};
use crate::spec::Spec;
use crate::target::emulator::{encode, EmulatorConfig, Outgoing, Session};
use crate::wire::stream::{DecodeError, Decoder, DecoderConfig, Text};
use crate::wire::Message;

/// Small decoder limits, so the fuzzer reaches the size and depth errors quickly.
pub const FUZZ_DECODER: DecoderConfig = DecoderConfig { max_text: 4096, max_depth: 64 };

/// Decodes `input` whole, and again cut at a point the first two bytes choose; the two
/// must give the same texts.
pub fn decoder_split(data: &[u8]) {
    let (head, input) = data.split_at(data.len().min(2));
    let choice = head.iter().fold(0usize, |acc, &b| acc * 256 + usize::from(b));
    let cut = if input.is_empty() { 0 } else { choice % (input.len() + 1) };
    let whole = decode_all(&[input]);
    let (a, b) = input.split_at(cut);
    let split = decode_all(&[a, b]);
    assert_eq!(whole, split, "decoder gives other texts when the input is cut at {cut}");
    let bytewise: Vec<&[u8]> = input.chunks(1).collect();
    if input.len() <= 512 {
        assert_eq!(whole, decode_all(&bytewise), "decoder gives other texts when fed byte by byte");
    }
}

/// Everything a decoder yields for `chunks` fed in order, then finished.
pub fn decode_all(chunks: &[&[u8]]) -> Vec<Result<Text, DecodeError>> {
    let mut decoder = Decoder::new(FUZZ_DECODER);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        while let Some(item) = decoder.next_text() {
            out.push(item);
        }
    }
    while let Some(item) = decoder.finish() {
        out.push(item);
    }
    out
}

/// Runs every spec parser on `data` (as lossy UTF-8): [`spec_legacy`], [`spec_hx`],
/// [`spec_qapi`], [`spec_introspect`].
pub fn spec_parsers(data: &[u8]) {
    spec_legacy(data);
    spec_hx(data);
    spec_qapi(data);
    spec_introspect(data);
}

/// The legacy prose parser never panics; its model round-trips and renders.
pub fn spec_legacy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_model("legacy", &crate::spec::legacy::parse(&text, "fuzz.txt"));
}

/// The `.hx` parser never panics; both sides' models round-trip and render.
pub fn spec_hx(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let sides = crate::spec::hx::parse(&text, "fuzz.hx");
    check_model("hx old", &sides.old);
    check_model("hx new", &sides.new);
}

/// The QAPI schema parser never panics (every include is missing); its model round-trips.
pub fn spec_qapi(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_model("qapi", &crate::spec::qapi::parse(&text, "fuzz.json", &mut |_| None));
}

/// The introspection parser never panics; its model round-trips and renders.
pub fn spec_introspect(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_model("introspect", &crate::spec::introspect::parse(&text, "fuzz.json"));
}

/// A model survives a serde JSON round trip unchanged and renders to a JSON object.
fn check_model(kind: &str, spec: &Spec) {
    let json = serde_json::to_vec(spec).unwrap_or_else(|e| panic!("{kind} model does not serialize: {e}"));
    let back: Spec = crate::wire::stream::parse_typed(&json)
        .unwrap_or_else(|e| panic!("{kind} model does not deserialize: {e}"));
    assert_eq!(&back, spec, "{kind} model changes in a JSON round trip");
    let rendered = crate::spec::render::to_json(spec);
    assert!(rendered.is_object(), "{kind} rendering is not an object");
}

/// A property: panics when `data` breaks it.
pub type Property = fn(&[u8]);

/// Every fuzz target: its name (the file under `fuzz/fuzz_targets/`) and its property.
pub const TARGETS: [(&str, Property); 7] = [
    ("decoder_split", decoder_split),
    ("spec_legacy", spec_legacy),
    ("spec_hx", spec_hx),
    ("spec_qapi", spec_qapi),
    ("spec_introspect", spec_introspect),
    ("emulator_session", emulator_session),
    ("reply_validation", reply_validation),
];

/// The seed corpus of a target, derived from the recorded QEMU 7.2 transcript (corpus/),
/// the generators and small synthetic snippets: `(file name, bytes)`. `fuzz/corpus-seeds/`
/// holds exactly these (a test compares them; `QMPCHECK_BLESS_SEEDS=1` rewrites them).
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let transcript =
        crate::wire::stream::parse_json_str(crate::source::BUILTIN_TRANSCRIPT).unwrap_or(Value::Null);
    let pick = |key: &str| transcript.get(key).cloned().unwrap_or(Value::Null);
    let line = |v: &Value| {
        let mut b = encode(v);
        b.truncate(b.len().saturating_sub(2));
        b.extend_from_slice(b"\r\n");
        b
    };
    let named = |prefix: &str, items: Vec<Vec<u8>>| {
        items.into_iter().enumerate().map(|(i, b)| (format!("{prefix}-{i:02}"), b)).collect::<Vec<_>>()
    };
    match target {
        "decoder_split" => {
            let greeting = line(&pick("greeting"));
            let version = line(&serde_json::json!({"return": pick("query-version"), "id": "qmpcheck-1"}));
            let event = line(&serde_json::json!({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}));
            let mut stream = vec![0u8, 40];
            stream.extend([greeting.clone(), version.clone(), event.clone()].concat());
            let mut cut = vec![0u8, 7];
            cut.extend(&version);
            cut.extend(b"{\"return\": [1, 2.5e3, \"\\u00e9\"], \"id\": {\"a\": [null]}}\r\n{\"error\":");
            let mut bad = vec![1u8, 0];
            bad.extend(b"{]} 12 \"x\" tru [[[[ \xff {\"a\":1}");
            named("stream", vec![stream, cut, bad])
        }
        "spec_introspect" => {
            let schema = pick("query-qmp-schema");
            let items = schema.as_array().cloned().unwrap_or_default();
            let mut out = Vec::new();
            for (i, chunk) in items.chunks(40).take(4).enumerate() {
                let value = if i % 2 == 0 {
                    Value::Array(chunk.to_vec())
                } else {
                    serde_json::json!({"return": chunk})
                };
                out.push(serde_json::to_vec_pretty(&value).unwrap_or_default());
            }
            named("schema", out)
        }
        "spec_qapi" => named("qapi", vec![
            b"{ 'enum': 'Colour', 'data': [ 'red', { 'name': 'blue', 'if': 'CONFIG_BLUE' } ] }\n\
              ##\n# @paint:\n#\n# @colour: what to paint with\n##\n\
              { 'command': 'paint', 'data': { 'colour': 'Colour', '*times': 'int' }, 'returns': [ 'str' ] }\n".to_vec(),
            b"{ 'struct': 'Base', 'data': { 'kind': 'Colour' } }\n\
              { 'union': 'U', 'base': 'Base', 'discriminator': 'kind', 'data': { 'red': 'Base' } }\n\
              { 'alternate': 'A', 'data': { 'n': 'int', 's': 'str' } }\n\
              { 'event': 'PAINTED', 'data': { 'a': 'A' }, 'features': [ 'deprecated' ] }\n\
              { 'include': 'missing.json' }\n".to_vec(),
        ]),
        "spec_legacy" => named("legacy", vec![
            b"paint\n-----\n\nPaint the thing.\n\nArguments:\n\n\
              - \"colour\": what to paint with (json-string)\n\
              - \"times\": how often (json-int, optional)\n\n\
              Example:\n\n-> { \"execute\": \"paint\", \"arguments\": { \"colour\": \"red\" } }\n<- { \"return\": {} }\n".to_vec(),
            b"PAINTED\n-------\n\nEmitted when painted.\n\nData:\n\n- \"colour\": the colour (json-string)\n\n\
              Example:\n\n{ \"event\": \"PAINTED\", \"data\": { \"colour\": \"red\" },\n  \"timestamp\": { \"seconds\": 1, \"microseconds\": 2 } }\n".to_vec(),
        ]),
        "spec_hx" => named("hx", vec![
            b"    {\n        .name       = \"paint\",\n        .args_type  = \"colour:s,times:i?,force:-f\",\n        .mhandler.cmd_new = qmp_marshal_paint,\n    },\n\nSQMP\npaint\n-----\n\nPaint it.\n\nEQMP\n".to_vec(),
            b"@@ -10,7 +10,7 @@\n     {\n         .name       = \"paint\",\n-        .args_type  = \"colour:s\",\n+        .args_type  = \"colour:s,buf-size:i?\",\n     },\n".to_vec(),
        ]),
        "emulator_session" => {
            let model = model();
            let mut generator = crate::gen::Generator::new(&model, 1);
            let mut rng = crate::gen::SplitMix64::new(1);
            let mut out = Vec::new();
            for i in 0..12u64 {
                let command = generator.next_command();
                let bytes = if i % 3 == 2 {
                    crate::gen::mutate::mutate_any(&model, &command, &mut rng).bytes
                } else {
                    line(&command.to_request(Some(Value::from(i))))
                };
                out.push(bytes);
            }
            named("session", out)
        }
        "reply_validation" => {
            let names = &validators().names;
            let index = |role: SchemaRole, name: &str| {
                names.iter().position(|(r, n)| *r == role && n == name).unwrap_or(0)
            };
            let with = |i: usize, v: &Value| {
                let mut b = u16::try_from(i).unwrap_or(0).to_be_bytes().to_vec();
                b.extend(serde_json::to_vec(v).unwrap_or_default());
                b
            };
            named("reply", vec![
                with(index(SchemaRole::Return, "query-version"), &pick("query-version")),
                with(index(SchemaRole::Return, "query-commands"), &pick("query-commands")),
                with(
                    index(SchemaRole::Return, "query-qmp-schema"),
                    &Value::Array(pick("query-qmp-schema").as_array().map(|a| a.iter().take(30).cloned().collect()).unwrap_or_default()),
                ),
                with(index(SchemaRole::Return, "query-status"), &serde_json::json!({"running": false, "singlestep": false, "status": "prelaunch"})),
                with(index(SchemaRole::Args, "query-status"), &serde_json::json!({"x": 1})),
            ])
        }
        _ => Vec::new(),
    }
}

/// The QEMU 7.2 model the emulator and validation properties use (built once).
pub fn model() -> Arc<Spec> {
    static MODEL: OnceLock<Arc<Spec>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| Arc::new(crate::source::builtin())))
}

/// Negotiates an emulator session, feeds it `data`, and checks every message it sends.
pub fn emulator_session(data: &[u8]) {
    let mut session = Session::new(model(), EmulatorConfig::default());
    let negotiated = session.handle(b"{\"execute\":\"qmp_capabilities\"}");
    assert_eq!(negotiated.len(), 1, "negotiation gives one reply");
    let mut checked = Vec::new();
    for out in session.handle(data) {
        match out {
            Outgoing::Message(value) => check_server_message(value, &mut checked),
            Outgoing::Raw(bytes) => panic!("raw bytes without a fault: {}", String::from_utf8_lossy(&bytes)),
            Outgoing::Close => {}
        }
    }
}

/// Checks one message the emulator sent. `checked` holds the distinct values already
/// checked: fuzzed input makes the emulator repeat the same error reply hundreds of times
/// per input (QEMU answers every stray byte), and a value equal to one already checked
/// encodes and decodes the same way (encoding is a function of the value), so repeats
/// cost one comparison. Only the first [`CHECKED_MAX`] distinct values are remembered.
fn check_server_message(value: Value, checked: &mut Vec<Value>) {
    if checked.iter().any(|seen| same_in_order(seen, &value)) {
        return;
    }
    let bytes = encode(&value);
    assert!(bytes.is_ascii(), "non-ASCII output: {}", String::from_utf8_lossy(&bytes));
    let back = crate::wire::stream::parse_json(&bytes).unwrap_or_else(|e| panic!("output is not JSON: {e}"));
    assert_eq!(back, value, "encoding changes the value");
    match Message::classify(back) {
        Message::Reply(_) | Message::Event(_) => {}
        other => panic!("a {} message that is not QMP-shaped: {value}", other.kind()),
    }
    if checked.len() < CHECKED_MAX {
        checked.push(value);
    }
}

/// Whether `a` and `b` are equal with object members in the same order: enough to know
/// they are equal, without hashing every key as `Value`'s own `==` does (an order
/// difference only costs a repeated check).
fn same_in_order(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && same_in_order(vx, vy))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(vx, vy)| same_in_order(vx, vy))
        }
        _ => a == b,
    }
}

/// How many distinct messages [`emulator_session`] remembers as checked per input.
const CHECKED_MAX: usize = 32;

/// The schemas of [`model`], our validators, every (role, name) they cover, and the
/// jsonschema crate's reference validator for each, compiled the first time it is needed.
struct Checkers {
    set: SchemaSet,
    validators: Validators,
    names: Vec<(SchemaRole, String)>,
    /// By index into `names`; `None` when jsonschema cannot compile the schema.
    references: Vec<OnceLock<Option<jsonschema::Validator>>>,
}

/// The checkers of [`model`] (built once; each reference validator compiled once, as
/// compiling one took longer than everything else the property does).
fn validators() -> &'static Checkers {
    static SET: OnceLock<Checkers> = OnceLock::new();
    SET.get_or_init(|| {
        let set = SchemaSet::build(&model(), Default::default());
        let names: Vec<_> = set.iter().map(|(role, name, _)| (role, name.to_string())).collect();
        let validators = Validators::new(&set);
        let references = names.iter().map(|_| OnceLock::new()).collect();
        Checkers { set, validators, names, references }
    })
}

/// Picks a schema by the first two bytes, parses the rest as JSON, and checks that the
/// validators agree with `jsonschema::is_valid` on it.
pub fn reply_validation(data: &[u8]) {
    let checkers = validators();
    let (head, rest) = data.split_at(data.len().min(2));
    let index = head.iter().fold(0usize, |acc, &b| acc * 256 + usize::from(b)) % checkers.names.len().max(1);
    let Some((role, name)) = checkers.names.get(index) else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(instance) = crate::wire::stream::parse_json_str(text) else { return };
    let ours = checkers.validators.validate(*role, name, &instance);
    let Some(slot) = checkers.references.get(index) else { return };
    let reference = slot.get_or_init(|| {
        checkers.set.get(*role, name).and_then(|schema| jsonschema::validator_for(schema).ok())
    });
    let Some(reference) = reference else { return };
    assert_eq!(
        ours.is_ok(),
        reference.is_valid(&instance),
        "validators and jsonschema disagree on {role} of {name}: {ours:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_split_holds_on_a_stream() {
        decoder_split(b"\x00\x07{\"a\": [1, 2]} 12 \"x\"\r\n{\"b\":");
        decoder_split(b"\x01\x00{]}{}");
        let texts = decode_all(&[b"{\"a\":1}", b" [2]"]);
        assert_eq!(texts.len(), 2);
    }

    #[test]
    fn emulator_session_holds_on_garbage() {
        emulator_session(
            b"{\"execute\":\"query-status\",\"id\":[1]}\xff{\"execute\":1}]]}{\"exec-oob\":\"x\"}",
        );
    }

    #[test]
    fn same_in_order_implies_equal() {
        let a = serde_json::json!({"error": {"class": "GenericError", "desc": "x"}, "id": [1, {"k": null}]});
        assert!(same_in_order(&a, &a.clone()));
        let reordered =
            serde_json::json!({"id": [1, {"k": null}], "error": {"class": "GenericError", "desc": "x"}});
        assert_eq!(a, reordered);
        assert!(!same_in_order(&a, &reordered), "an order difference is reported as different");
        let other =
            serde_json::json!({"error": {"class": "GenericError", "desc": "y"}, "id": [1, {"k": null}]});
        assert!(!same_in_order(&a, &other));
        assert!(!same_in_order(&serde_json::json!([1, 2]), &serde_json::json!([1])));
    }

    #[test]
    fn reply_validation_holds() {
        reply_validation(b"\x00\x00{\"running\":true,\"status\":\"running\"}");
        reply_validation(b"\x00\x05[1,\"a\",{}]");
    }

    #[test]
    fn spec_parsers_hold_on_snippets() {
        spec_parsers(b"{ 'command': 'x', 'data': { 'a': 'str' } }");
        spec_parsers(b"[{\"name\":\"x\",\"meta-type\":\"command\",\"arg-type\":\"0\",\"ret-type\":\"0\"}]");
    }
}
