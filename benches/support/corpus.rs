//! The reply corpus of the benches, generated from the QEMU 7.2 model and checked against
//! its JSON Schemas (the jsonschema crate) before any bench uses it.
//!
//! - `query-blockstats` replies with 1, 100 and 1000 devices: each device with `qdev`,
//!   `node-name`, `stats` (one `timed_stats` entry or none), `driver-specific`, a `parent`
//!   node and a `backing` node (each with their own stats), as the model describes them;
//!   latency histograms left out, as QEMU does unless they are configured;
//! - the recorded `query-qmp-schema` replies of QEMU 7.2 and 10.0 (corpus/);
//! - a stream of small replies (status, name, version, kvm, ...) with an event after every
//!   fourth, each text ending in CRLF as QEMU sends them.

use std::path::Path;

use qmpcheck::check::schema::{SchemaOptions, SchemaSet, Validators};
use qmpcheck::spec::Spec;
use serde_json::{json, Value};

use super::values::{to_qemu_json, Profile, ValueGen};

/// The model every bench uses: QEMU 7.2's introspection embedded in the binary.
pub fn model() -> Spec {
    qmpcheck::source::builtin()
}

/// One reply text `{"return": ...}` (no CRLF) and the command it answers.
pub struct Reply {
    /// The command.
    pub command: String,
    /// The whole reply text as QEMU writes it.
    pub text: Vec<u8>,
}

/// A `query-blockstats` reply listing `devices` devices, checked against the schema.
pub fn blockstats(spec: &Spec, validators: &Validators, devices: usize) -> Reply {
    let profile = Profile {
        optional: 1.0,
        skip: vec!["rd_latency_histogram", "wr_latency_histogram", "flush_latency_histogram"],
        recursion: 1,
        max_array: 1,
        edges: false,
    };
    let mut gen = ValueGen::new(spec, profile, 0x5eed_b10c);
    let element = match spec.commands.get("query-blockstats").and_then(|c| c.returns.clone()) {
        Some(qmpcheck::spec::TypeRef::Array(element)) => *element,
        other => panic!("query-blockstats returns {other:?} in the model, not an array"),
    };
    let list: Vec<Value> = (0..devices).map(|_| gen.value(&element, "blockstats")).collect();
    let value = Value::Array(list);
    checked(validators, "query-blockstats", &value);
    Reply { command: "query-blockstats".into(), text: to_qemu_json(&json!({ "return": value })) }
}

/// The recorded `query-qmp-schema` reply of `version` (`7.2`, `10.0`), checked against the
/// 7.2 model's return schema (SchemaInfo objects are open, so 10.0's additions pass).
pub fn schema_reply(validators: &Validators, version: &str) -> Reply {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(format!("qemu-{version}"))
        .join("qemu-system-x86_64.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let transcript: Value =
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value = transcript.get("query-qmp-schema").cloned().expect("transcript has query-qmp-schema");
    checked(validators, "query-qmp-schema", &value);
    Reply { command: "query-qmp-schema".into(), text: to_qemu_json(&json!({ "return": value })) }
}

/// A stream of QMP texts, each ending in CRLF, and what each one is.
pub struct Stream {
    /// All texts back to back.
    pub bytes: Vec<u8>,
    /// Per text: the command a reply answers, `None` for an event.
    pub expect: Vec<Option<String>>,
}

/// Commands with small replies, cycled through by [`stream`].
pub const SMALL_COMMANDS: [&str; 8] = [
    "query-status",
    "query-name",
    "query-version",
    "query-kvm",
    "query-uuid",
    "stop",
    "cont",
    "query-iothreads",
];
/// Events interleaved by [`stream`].
pub const EVENTS: [&str; 5] =
    ["STOP", "RESUME", "DEVICE_DELETED", "BLOCK_JOB_COMPLETED", "JOB_STATUS_CHANGE"];

/// `texts` small replies and events (one event after every fourth reply), each checked.
pub fn stream(spec: &Spec, validators: &Validators, texts: usize) -> Stream {
    let profile = Profile { optional: 0.7, skip: Vec::new(), recursion: 0, max_array: 2, edges: false };
    let mut gen = ValueGen::new(spec, profile, 0x57_4ea4);
    let mut bytes = Vec::new();
    let mut expect = Vec::with_capacity(texts);
    let mut replies = 0usize;
    while expect.len() < texts {
        let message = if expect.len() % 5 == 4 {
            let name = EVENTS[expect.len() / 5 % EVENTS.len()];
            let event = spec.events.get(name).unwrap_or_else(|| panic!("event {name} not in the model"));
            let mut message = json!({"timestamp": {"seconds": 1_700_000_000 + expect.len(), "microseconds": 250_123}, "event": name});
            if let Some(ty) = &event.data {
                let data = gen.value(ty, "data");
                if let Err(errors) = validators.validate_event(name, &data) {
                    panic!("generated {name} data fails its schema: {errors:?}");
                }
                message["data"] = data;
            }
            expect.push(None);
            message
        } else {
            let name = SMALL_COMMANDS[replies % SMALL_COMMANDS.len()];
            replies += 1;
            let command =
                spec.commands.get(name).unwrap_or_else(|| panic!("command {name} not in the model"));
            let value = match &command.returns {
                Some(ty) => gen.value(ty, "return"),
                None => json!({}),
            };
            checked(validators, name, &value);
            expect.push(Some(name.to_string()));
            json!({"return": value, "id": format!("qmpcheck-{replies}")})
        };
        bytes.extend_from_slice(&to_qemu_json(&message));
        bytes.extend_from_slice(b"\r\n");
    }
    Stream { bytes, expect }
}

/// Validators for the model's schemas (open outputs, as replies are checked).
pub fn validators(spec: &Spec) -> Validators {
    Validators::new(&SchemaSet::build(spec, SchemaOptions::default()))
}

fn checked(validators: &Validators, command: &str, value: &Value) {
    if let Err(errors) = validators.validate_return(command, value) {
        let first: Vec<String> = errors.iter().take(3).map(|e| e.to_string()).collect();
        panic!("generated {command} reply fails its schema: {first:?}");
    }
}
