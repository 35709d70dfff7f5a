//! Typed QMP server messages: greeting, reply (return or error), event, or anything else.
//!
//! [`Message::classify`] is strict: a text takes a typed variant only when it has exactly the
//! shape qmp-spec gives it (S1, C3, C4, E1). Everything else is kept whole as
//! [`Message::Unknown`], because a non-conforming server message is data for a finding,
//! never a panic or a silent drop.

use serde_json::{Map, Value};

/// A message from the server, classified by shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `{"QMP": {"version": ..., "capabilities": [...]}}`.
    Greeting(Greeting),
    /// `{"return": ...}` or `{"error": ...}`, with the echoed `id` if any.
    Reply(Reply),
    /// `{"event": ..., "data": ..., "timestamp": ...}`.
    Event(Event),
    /// Any JSON text that is none of the above, kept as received.
    Unknown(Value),
}

/// The server's greeting (S1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The server's version.
    pub version: Version,
    /// Capabilities offered (e.g. `oob`).
    pub capabilities: Vec<String>,
}

/// `version` of the greeting (also the shape of `query-version`'s return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The numeric version.
    pub qemu: QemuVersion,
    /// Distribution package text (e.g. `Debian 1:7.2+dfsg-7`).
    pub package: String,
}

/// QEMU's major.minor.micro.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QemuVersion {
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Micro number.
    pub micro: u64,
}

impl std::fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Success (C3).
    Return {
        /// The `return` value.
        value: Value,
        /// The echoed `id`.
        id: Option<Value>,
    },
    /// Failure (C4).
    Error {
        /// Error class (`GenericError`, `CommandNotFound`, ...).
        class: String,
        /// Human-readable description (never match it exactly).
        desc: String,
        /// The echoed `id`.
        id: Option<Value>,
    },
}

/// An asynchronous event (E1).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name (`STOP`).
    pub event: String,
    /// The `data` member, when present.
    pub data: Option<Value>,
    /// When the server emitted it.
    pub timestamp: Timestamp,
}

/// An event's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since the epoch (QEMU sends -1 when the clock failed).
    pub seconds: i64,
    /// Microseconds within the second.
    pub microseconds: i64,
}

/// A QMP error reply turned into a Rust error by [`Reply::into_result`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {desc}")]
pub struct QmpError {
    /// Error class.
    pub class: String,
    /// Description.
    pub desc: String,
}

impl Message {
    /// Classifies a parsed server text by its shape (moving, never copying, its values).
    pub fn classify(value: Value) -> Message {
        let Value::Object(map) = value else { return Message::Unknown(value) };
        if map.contains_key("QMP") {
            match greeting(&map) {
                Some(g) => Message::Greeting(g),
                None => Message::Unknown(Value::Object(map)),
            }
        } else if map.contains_key("return") || map.contains_key("error") {
            reply(map).map_or_else(|map| Message::Unknown(Value::Object(map)), Message::Reply)
        } else if map.contains_key("event") {
            event(map).map_or_else(|map| Message::Unknown(Value::Object(map)), Message::Event)
        } else {
            Message::Unknown(Value::Object(map))
        }
    }

    /// A short name of the variant, for error messages and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Greeting(_) => "greeting",
            Message::Reply(Reply::Return { .. }) => "return",
            Message::Reply(Reply::Error { .. }) => "error",
            Message::Event(_) => "event",
            Message::Unknown(_) => "unknown",
        }
    }
}

impl Reply {
    /// The echoed `id`, if any.
    pub fn id(&self) -> Option<&Value> {
        match self {
            Reply::Return { id, .. } | Reply::Error { id, .. } => id.as_ref(),
        }
    }

    /// Whether this is a success.
    pub fn is_return(&self) -> bool {
        matches!(self, Reply::Return { .. })
    }

    /// The `return` value, or the error as [`QmpError`].
    pub fn into_result(self) -> Result<Value, QmpError> {
        match self {
            Reply::Return { value, .. } => Ok(value),
            Reply::Error { class, desc, .. } => Err(QmpError { class, desc }),
        }
    }
}

impl Greeting {
    /// Reads a greeting's `QMP` object.
    pub fn from_value(value: &Value) -> Option<Greeting> {
        value.as_object().and_then(greeting)
    }
}

impl Version {
    /// Reads a `{"qemu": {...}, "package": ...}` object (greeting or `query-version`).
    pub fn from_value(value: &Value) -> Option<Version> {
        let map = value.as_object()?;
        only_keys(map, &["qemu", "package"])?;
        let qemu = map.get("qemu")?.as_object()?;
        only_keys(qemu, &["major", "minor", "micro"])?;
        Some(Version {
            qemu: QemuVersion {
                major: qemu.get("major")?.as_u64()?,
                minor: qemu.get("minor")?.as_u64()?,
                micro: qemu.get("micro")?.as_u64()?,
            },
            package: map.get("package")?.as_str()?.to_string(),
        })
    }
}

/// `Some(())` when every key of `map` is one of `allowed`.
fn only_keys(map: &Map<String, Value>, allowed: &[&str]) -> Option<()> {
    map.keys().all(|k| allowed.contains(&k.as_str())).then_some(())
}

fn greeting(map: &Map<String, Value>) -> Option<Greeting> {
    only_keys(map, &["QMP"])?;
    let qmp = map.get("QMP")?.as_object()?;
    only_keys(qmp, &["version", "capabilities"])?;
    let version = Version::from_value(qmp.get("version")?)?;
    let capabilities = qmp
        .get("capabilities")?
        .as_array()?
        .iter()
        .map(|c| c.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()?;
    Some(Greeting { version, capabilities })
}

/// A reply built from `map`, or `map` back when it does not have a reply's shape.
fn reply(mut map: Map<String, Value>) -> Result<Reply, Map<String, Value>> {
    if map.contains_key("return") {
        if only_keys(&map, &["return", "id"]).is_none() {
            return Err(map);
        }
        let id = map.remove("id");
        let value = map.remove("return").unwrap_or(Value::Null);
        return Ok(Reply::Return { value, id });
    }
    let Some((class, desc)) = error_of(&map) else { return Err(map) };
    Ok(Reply::Error { class, desc, id: map.remove("id") })
}

/// Class and desc of an `{"error": {"class", "desc"}, "id"?}` object.
fn error_of(map: &Map<String, Value>) -> Option<(String, String)> {
    only_keys(map, &["error", "id"])?;
    let error = map.get("error")?.as_object()?;
    only_keys(error, &["class", "desc"])?;
    Some((error.get("class")?.as_str()?.to_string(), error.get("desc")?.as_str()?.to_string()))
}

/// An event built from `map`, or `map` back when it does not have an event's shape.
fn event(mut map: Map<String, Value>) -> Result<Event, Map<String, Value>> {
    let Some((name, timestamp)) = event_head(&map) else { return Err(map) };
    let data = map.remove("data");
    Ok(Event { event: name, data, timestamp })
}

/// Name and timestamp of an event object whose keys and `data` have the right shape.
fn event_head(map: &Map<String, Value>) -> Option<(String, Timestamp)> {
    only_keys(map, &["event", "data", "timestamp"])?;
    if map.get("data").is_some_and(|d| !d.is_object()) {
        return None;
    }
    let ts = map.get("timestamp")?.as_object()?;
    only_keys(ts, &["seconds", "microseconds"])?;
    let timestamp =
        Timestamp { seconds: ts.get("seconds")?.as_i64()?, microseconds: ts.get("microseconds")?.as_i64()? };
    Some((map.get("event")?.as_str()?.to_string(), timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_each_shape() {
        let g = json!({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "p"},
            "capabilities": ["oob"]}});
        let Message::Greeting(g) = Message::classify(g) else { panic!("not a greeting") };
        assert_eq!(g.version.qemu.to_string(), "7.2.22");
        assert_eq!(g.capabilities, vec!["oob".to_string()]);
        assert_eq!(Message::classify(json!({"return": {}, "id": [1]})).kind(), "return");
        let e = Message::classify(json!({"error": {"class": "GenericError", "desc": "d"}}));
        assert_eq!(
            e,
            Message::Reply(Reply::Error { class: "GenericError".into(), desc: "d".into(), id: None })
        );
        let ev = json!({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}});
        assert_eq!(Message::classify(ev).kind(), "event");
    }

    #[test]
    fn non_conforming_shapes_stay_unknown() {
        for v in [
            json!({"return": {}, "extra": 1}),
            json!({"error": {"class": 1, "desc": "d"}}),
            json!({"event": "STOP"}),
            json!({"QMP": {"version": {}}}),
            json!([1]),
        ] {
            assert_eq!(Message::classify(v.clone()), Message::Unknown(v));
        }
    }
}
