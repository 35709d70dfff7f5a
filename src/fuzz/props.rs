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

/// Runs every spec parser on `data` (as lossy UTF-8); each model must round-trip through
/// serde JSON unchanged and render to JSON.
pub fn spec_parsers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let hx = crate::spec::hx::parse(&text, "fuzz.hx");
    let models = [
        ("legacy", crate::spec::legacy::parse(&text, "fuzz.txt")),
        ("hx old", hx.old),
        ("hx new", hx.new),
        ("qapi", crate::spec::qapi::parse(&text, "fuzz.json", &mut |_| None)),
        ("introspect", crate::spec::introspect::parse(&text, "fuzz.json")),
    ];
    for (kind, spec) in &models {
        let json =
            serde_json::to_string(spec).unwrap_or_else(|e| panic!("{kind} model does not serialize: {e}"));
        let back: Spec = crate::wire::stream::parse_json_str(&json)
            .and_then(serde_json::from_value)
            .unwrap_or_else(|e| panic!("{kind} model does not deserialize: {e}"));
        assert_eq!(&back, spec, "{kind} model changes in a JSON round trip");
        let rendered = crate::spec::render::to_json(spec);
        assert!(rendered.is_object(), "{kind} rendering is not an object");
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
    for out in session.handle(data) {
        match out {
            Outgoing::Message(value) => check_server_message(&value),
            Outgoing::Raw(bytes) => panic!("raw bytes without a fault: {}", String::from_utf8_lossy(&bytes)),
            Outgoing::Close => {}
        }
    }
}

fn check_server_message(value: &Value) {
    let bytes = encode(value);
    assert!(bytes.is_ascii(), "non-ASCII output: {}", String::from_utf8_lossy(&bytes));
    let back = crate::wire::stream::parse_json(&bytes).unwrap_or_else(|e| panic!("output is not JSON: {e}"));
    assert_eq!(&back, value, "encoding changes the value");
    match Message::classify(back) {
        Message::Reply(_) | Message::Event(_) => {}
        other => panic!("a {} message that is not QMP-shaped: {value}", other.kind()),
    }
}

/// The schemas of [`model`], their validators, and every (role, name) they cover.
type Checkers = (SchemaSet, Validators, Vec<(SchemaRole, String)>);

/// The schema set and validators of [`model`] (built once).
fn validators() -> &'static Checkers {
    static SET: OnceLock<Checkers> = OnceLock::new();
    SET.get_or_init(|| {
        let set = SchemaSet::build(&model(), Default::default());
        let names = set.iter().map(|(role, name, _)| (role, name.to_string())).collect();
        let validators = Validators::new(&set);
        (set, validators, names)
    })
}

/// Picks a schema by the first two bytes, parses the rest as JSON, and checks that the
/// validators agree with `jsonschema::is_valid` on it.
pub fn reply_validation(data: &[u8]) {
    let (set, validators, names) = validators();
    let (head, rest) = data.split_at(data.len().min(2));
    let index = head.iter().fold(0usize, |acc, &b| acc * 256 + usize::from(b));
    let Some((role, name)) = names.get(index % names.len().max(1)) else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(instance) = crate::wire::stream::parse_json_str(text) else { return };
    let ours = validators.validate(*role, name, &instance);
    let Some(schema) = set.get(*role, name) else { return };
    let Ok(reference) = jsonschema::validator_for(schema) else { return };
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
