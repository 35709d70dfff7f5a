//! What a session sent and received, and the steps a reproducer replays.
//!
//! [`Transcript`] keeps every byte sent and every text received on one target session (up
//! to [`TRANSCRIPT_LIMIT`] bytes; past it the oldest entries go and a count says how many),
//! with the direction and the stream offset in that direction. It is written as JSON lines.
//! [`Step`] is one case as a reproducer holds it: the exact bytes plus what the campaign
//! knew about them (command, generated id or mutator and expectation), so replay classifies
//! replies exactly as the campaign did.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Most bytes a transcript keeps (oldest entries are dropped past it).
pub const TRANSCRIPT_LIMIT: usize = 4 << 20;

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// qmpcheck → target.
    Send,
    /// target → qmpcheck.
    Recv,
    /// A remark of the harness (a decode error, a timeout, a death).
    Note,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Direction.
    pub flow: Flow,
    /// Stream offset of the first byte in that direction (0 for notes).
    pub offset: u64,
    /// The campaign iteration, when the bytes belong to a case.
    pub iteration: Option<u64>,
    /// The bytes (for notes: the remark as UTF-8).
    pub bytes: Vec<u8>,
}

/// Bytes sent and received on one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    entries: VecDeque<Entry>,
    sent: u64,
    received: u64,
    kept: usize,
    dropped: u64,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Transcript {
        Transcript::default()
    }

    /// Records bytes sent; returns their stream offset.
    pub fn sent(&mut self, iteration: Option<u64>, bytes: &[u8]) -> u64 {
        let offset = self.sent;
        self.sent += bytes.len() as u64;
        self.push(Entry { flow: Flow::Send, offset, iteration, bytes: bytes.to_vec() });
        offset
    }

    /// Records a text received at `offset` of the receive stream.
    pub fn received(&mut self, iteration: Option<u64>, offset: u64, bytes: &[u8]) {
        self.received = self.received.max(offset + bytes.len() as u64);
        self.push(Entry { flow: Flow::Recv, offset, iteration, bytes: bytes.to_vec() });
    }

    /// Records a remark.
    pub fn note(&mut self, iteration: Option<u64>, text: &str) {
        self.push(Entry { flow: Flow::Note, offset: 0, iteration, bytes: text.as_bytes().to_vec() });
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// How many entries were dropped to stay under [`TRANSCRIPT_LIMIT`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Total bytes sent on the session.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// JSON lines: `{"dir","offset","iteration","len","text"|"hex"}` per entry, preceded by
    /// a note when entries were dropped.
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.dropped > 0 {
            let line = json!({"dir": "note", "offset": 0, "len": 0,
                "text": format!("{} older entries dropped (transcript limit {} bytes)", self.dropped, TRANSCRIPT_LIMIT)});
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
        for e in &self.entries {
            let mut line = json!({"dir": e.flow, "offset": e.offset, "len": e.bytes.len()});
            if let Some(i) = e.iteration {
                line["iteration"] = json!(i);
            }
            let (key, value) = bytes_field(&e.bytes);
            line[key] = Value::String(value);
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    fn push(&mut self, entry: Entry) {
        self.kept += entry.bytes.len();
        self.entries.push_back(entry);
        while self.kept > TRANSCRIPT_LIMIT && self.entries.len() > 1 {
            if let Some(old) = self.entries.pop_front() {
                self.kept -= old.bytes.len();
                self.dropped += 1;
            }
        }
    }
}

/// `("text", s)` for UTF-8 bytes, else `("hex", h)`.
pub fn bytes_field(bytes: &[u8]) -> (&'static str, String) {
    match std::str::from_utf8(bytes) {
        Ok(s) => ("text", s.to_string()),
        Err(_) => ("hex", to_hex(bytes)),
    }
}

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex text; `None` when it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// What the mutator said a malformed command should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// An error reply (success is an unexpected-success finding).
    Error,
    /// A success.
    Success,
    /// Either.
    Any,
}

/// How a step's bytes were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// A valid command from the generator, tagged with this `id`; its reply is awaited by id.
    Generated {
        /// The id the command carries.
        id: Value,
    },
    /// Bytes from a mutator; the session is resynchronised after them (0xFF + sentinel).
    Mutated {
        /// The mutator's name.
        mutator: String,
        /// What the reply should be.
        expect: Expect,
    },
}

/// One case as sent: the bytes and what is known about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StepRepr", try_from = "StepRepr")]
pub struct Step {
    /// The command name (`execute` value, or the name the mutator started from).
    pub command: String,
    /// How the bytes were made.
    pub origin: Origin,
    /// The exact bytes sent.
    pub bytes: Vec<u8>,
}

impl Step {
    /// The mutator's name, for mutated steps.
    pub fn mutator(&self) -> Option<&str> {
        match &self.origin {
            Origin::Mutated { mutator, .. } => Some(mutator),
            Origin::Generated { .. } => None,
        }
    }
}

/// The JSON form of a step: bytes as `text` when UTF-8, else `hex`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepRepr {
    command: String,
    #[serde(flatten)]
    origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
}

impl From<Step> for StepRepr {
    fn from(step: Step) -> StepRepr {
        let (key, value) = bytes_field(&step.bytes);
        let (text, hex) = if key == "text" { (Some(value), None) } else { (None, Some(value)) };
        StepRepr { command: step.command, origin: step.origin, text, hex }
    }
}

impl TryFrom<StepRepr> for Step {
    type Error = String;

    fn try_from(repr: StepRepr) -> Result<Step, String> {
        let bytes = match (repr.text, repr.hex) {
            (Some(t), _) => t.into_bytes(),
            (None, Some(h)) => from_hex(&h).ok_or_else(|| format!("bad hex in step of {}", repr.command))?,
            (None, None) => return Err(format!("step of {} has neither text nor hex", repr.command)),
        };
        Ok(Step { command: repr.command, origin: repr.origin, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_text_and_hex() {
        let steps = vec![
            Step {
                command: "stop".into(),
                origin: Origin::Generated { id: json!(7) },
                bytes: br#"{"execute":"stop","id":7}"#.to_vec(),
            },
            Step {
                command: "cont".into(),
                origin: Origin::Mutated { mutator: "bit-flip".into(), expect: Expect::Error },
                bytes: vec![b'{', 0xff, b'}'],
            },
        ];
        let text = serde_json::to_string(&steps).unwrap();
        assert!(text.contains(r#""hex":"7bff7d""#), "{text}");
        assert!(text.contains(r#""kind":"generated""#), "{text}");
        let back: Vec<Step> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, steps);
    }

    #[test]
    fn transcript_offsets_and_limit() {
        let mut t = Transcript::new();
        assert_eq!(t.sent(Some(0), b"abc"), 0);
        assert_eq!(t.sent(Some(1), b"de"), 3);
        t.received(Some(1), 10, b"{}");
        let lines = String::from_utf8(t.to_jsonl()).unwrap();
        assert_eq!(lines.lines().count(), 3);
        assert!(lines.lines().nth(1).unwrap().contains(r#""offset":3"#));
        let big = vec![b'x'; TRANSCRIPT_LIMIT / 2 + 1];
        t.sent(None, &big);
        t.sent(None, &big);
        assert_eq!(t.dropped(), 4);
    }
}
