//! The emulator: a QMP server derived from the model, for testing clients without QEMU.
//!
//! It answers like QEMU 7.2 (checked byte for byte against the real binary by
//! `tests/emulator.rs`, except for the divergences listed below): the greeting, capabilities negotiation, the dispatcher's checks
//! (`qapi/qmp-dispatch.c`), QAPI argument checking with QEMU's error texts
//! (`qapi/qobject-input-visitor.c`, `qapi/qapi-visit-core.c`), out-of-band commands, parse
//! errors (an object repeating a key, at any depth, included) and the control-character
//! parser reset. Replies are the smallest value the model's
//! return type allows; a few commands keep a little state (run state, block nodes, objects),
//! and queries of devices `-machine none -nodefaults` lacks fail as QEMU's do, all listed in
//! one table, [`behaviour::BEHAVIOURS`].
//!
//! Layers, pure first:
//! - [`session`]: one connection's protocol state machine, bytes in, [`Outgoing`] out, no I/O.
//! - [`args`]: the argument checker (usable alone as an oracle of QEMU's input visitor).
//! - [`values`]: minimal schema-valid values of a type.
//! - [`behaviour`]: the table of commands with effects, and the state they change.
//! - [`fault`]: injected faults (hang, die, garbage) parsed from `hang`, `die@quit`, `garbage:0.1`.
//! - [`mod@encode`]: QEMU's output form (key order of its hash tables, ASCII, `%.17g`, CRLF).
//! - [`server`]: a blocking UNIX socket server, one thread per connection, with a stop handle.
//!
//! Known divergences from QEMU 7.2, chosen knowingly:
//! - Over-deep (> 1024) or over-large (> 64 MiB) texts get one error, and the text is dropped
//!   to its end; QEMU sends one follow-on "expecting value" per stray closer. Past the 2 Mi
//!   token limit the text and its crossing token are dropped with QEMU's error and the rest
//!   is read as new texts, one reply per remaining token as QEMU sends (exact for numbers,
//!   strings and punctuation; a bare run like `1true` counts as one token where QEMU's
//!   lexer sees two). With OOB negotiated QEMU 7.2 aborts on that flood instead (an
//!   assertion on its request queue in `monitor/qmp.c`); the emulator answers as without OOB.
//!   Parse error texts are mapped from serde_json's and match QEMU's for the common cases
//!   only; single-quoted strings (a QEMU extension) are parse errors here.
//! - A control character (not TAB/CR/LF) or 0xFE/0xFF resets the parser with one
//!   "JSON parse error, stray '...'" naming that byte only (QEMU names the token so far),
//!   then skips to a structural or control byte as QEMU's lexer does. Other lexical errors
//!   inside a token (`01`, `\ud800`) get serde_json-derived texts, and `-0` echoes as `-0`
//!   (QEMU reads it as the integer 0).
//! - When several members are unexpected, the first in input order is named (QEMU's order
//!   follows a GLib hash table). Numbers QEMU parses as infinity (`1e400`) are parse errors.
//! - Models from introspection collapse integer widths to `int` and mask type names, so
//!   range errors (`expects uint8_t`) and alternate names (`expected: StrOrNull`) need a
//!   QAPI-sourced model to match QEMU.
//! - `quit` closes the connection only; the server keeps serving others.
//! - As in QEMU 7.2 (and unlike qmp-spec's advice), `exec-oob` without `id` is executed;
//!   `stop` in `prelaunch` changes nothing; events come before the reply that caused them.

pub mod args;
pub mod behaviour;
pub mod encode;
pub mod fault;
pub mod server;
pub mod session;
pub mod values;

pub use behaviour::{Behaviour, RunStatus, VmState, BEHAVIOURS};
pub use encode::encode;
pub use fault::{Fault, FaultParseError, Trigger};
pub use server::{serve, serve_stream, ServerHandle};
pub use session::Session;

use serde_json::Value;

/// What a session sends, in the order QEMU would send it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A reply, an error or an event; write it with [`encode()`].
    Message(Value),
    /// Bytes to write as they are: a garbled or truncated reply from a [`Fault`].
    Raw(Vec<u8>),
    /// Close the connection after writing everything before this.
    Close,
}

impl Outgoing {
    /// The message, when this is one.
    pub fn message(&self) -> Option<&Value> {
        match self {
            Outgoing::Message(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes to put on the wire (empty for [`Outgoing::Close`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Outgoing::Message(v) => encode(v),
            Outgoing::Raw(b) => b.clone(),
            Outgoing::Close => Vec::new(),
        }
    }
}

/// The version the emulator announces in its greeting and `query-version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedVersion {
    /// Major version (7).
    pub major: u64,
    /// Minor version (2).
    pub minor: u64,
    /// Micro version (0).
    pub micro: u64,
    /// The `package` string.
    pub package: String,
}

impl Default for EmulatedVersion {
    fn default() -> Self {
        EmulatedVersion { major: 7, minor: 2, micro: 0, package: "qmpcheck-emulator".to_string() }
    }
}

/// How an emulated server behaves beyond what the model says.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// Version in the greeting and `query-version`.
    pub version: EmulatedVersion,
    /// Capabilities offered in the greeting (QEMU 7.2 offers `oob`).
    pub capabilities: Vec<String>,
    /// The VM name `query-name` reports (`-name`); none by default, like QEMU without `-name`.
    pub name: Option<String>,
    /// A fault to inject, if any.
    pub fault: Option<Fault>,
    /// Seed of the deterministic choices a fault makes (which replies are garbled).
    pub seed: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            version: EmulatedVersion::default(),
            capabilities: vec!["oob".to_string()],
            name: None,
            fault: None,
            seed: 0,
        }
    }
}
