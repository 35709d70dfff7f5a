//! Recording a QEMU's self-description into one transcript file.
//!
//! The transcript is a JSON object holding the greeting and the `return` values of the
//! introspection queries, so a model can later be rebuilt without QEMU
//! ([`crate::spec::introspect::parse`] accepts it):
//! `{"greeting": {...}, "query-version": {...}, "query-qmp-schema": [...],
//! "query-commands": [...], "query-events": [...], "target": {"program", "path"}}`.
//! Queries other than `query-qmp-schema` are optional: one that fails is recorded as
//! `{"error": {"class", "desc"}}` under its name.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::qemu::{expect_return, Binary, Qemu, Target, TargetError};
use crate::wire::stream::parse_json;
use crate::wire::Client;

/// The queries recorded after the greeting, in order; only `query-qmp-schema` must succeed.
pub const QUERIES: [&str; 4] = ["query-version", "query-qmp-schema", "query-commands", "query-events"];

/// Launches `kind` at `path` and records its transcript.
pub fn record(kind: Binary, path: impl AsRef<Path>) -> Result<Value, TargetError> {
    let path = path.as_ref();
    let qemu = Qemu::launch(&Target::new(kind, path))?;
    let mut client = qemu.connect()?;
    let mut transcript = record_client(&mut client)?;
    if let Some(map) = transcript.as_object_mut() {
        map.insert(
            "target".into(),
            json!({"program": kind.program_name(), "path": path.display().to_string()}),
        );
    }
    Ok(transcript)
}

/// Records the transcript over an already connected client (greeting read, not negotiated).
pub fn record_client(client: &mut Client) -> Result<Value, TargetError> {
    let mut out = Map::new();
    let greeting = parse_json(client.greeting_raw()).unwrap_or(Value::Null);
    out.insert("greeting".into(), greeting);
    expect_return(client, "qmp_capabilities", None)?;
    for command in QUERIES {
        let value = match client.execute(command, None)?.into_result() {
            Ok(value) => value,
            Err(error) if command == "query-qmp-schema" => {
                return Err(TargetError::Qmp { command: command.to_string(), error })
            }
            Err(error) => json!({"error": {"class": error.class, "desc": error.desc}}),
        };
        out.insert(command.to_string(), value);
    }
    Ok(Value::Object(out))
}
