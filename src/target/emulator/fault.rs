//! Faults the emulator can inject, so clients and the harness can be tested against a
//! server that hangs, dies or talks nonsense.
//!
//! Syntax (`--fault`), case-sensitive:
//!
//! | text | fault |
//! |---|---|
//! | `hang` | answer the first command (`qmp_capabilities`), then read but never answer again |
//! | `hang:N` | answer N commands, then never again |
//! | `hang@CMD` | answer normally until a `CMD` command arrives, then never again |
//! | `die` / `die:N` / `die@CMD` | the same trigger, but send half of the reply and close the connection |
//! | `garbage:RATE` | replace each reply with non-JSON bytes with probability RATE (0..=1), deterministically from the seed |
//! | `garbage:RATE@CMD` | the same, only for replies to `CMD` |
//!
//! "Commands" count every JSON text that reaches the dispatcher (errors included, parse
//! errors not).

use std::fmt;
use std::str::FromStr;

/// When a hang or death happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// After this many commands were answered: the next one triggers.
    After(u64),
    /// On the first command with this name.
    Command(String),
}

/// An injected fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Stop answering (the connection stays open, input is read and dropped).
    Hang(Trigger),
    /// Write half of the triggering reply, then close the connection.
    Die(Trigger),
    /// Replace replies with non-JSON bytes.
    Garbage {
        /// Probability per reply, 0..=1.
        rate: f64,
        /// Only replies to this command, when given.
        command: Option<String>,
    },
}

/// Why a fault text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    /// The kind before `:`/`@` is not hang, die or garbage.
    #[error("unknown fault `{text}` (expected hang, die or garbage:RATE, optionally with :N or @COMMAND)")]
    UnknownKind {
        /// The text given.
        text: String,
    },
    /// The count after `hang:`/`die:` is not a non-negative integer.
    #[error("bad count `{count}` in fault `{text}` (expected a non-negative integer)")]
    BadCount {
        /// The text given.
        text: String,
        /// The count part.
        count: String,
    },
    /// The rate after `garbage:` is missing or not a number in 0..=1.
    #[error("bad rate `{rate}` in fault `{text}` (expected a number from 0 to 1)")]
    BadRate {
        /// The text given.
        text: String,
        /// The rate part.
        rate: String,
    },
    /// `@` with no command name after it.
    #[error("empty command name after `@` in fault `{text}`")]
    EmptyCommand {
        /// The text given.
        text: String,
    },
    /// Both `:N` and `@COMMAND` were given to hang or die.
    #[error("fault `{text}` gives both a count and a command; give one")]
    TwoTriggers {
        /// The text given.
        text: String,
    },
}

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(text: &str) -> Result<Fault, FaultParseError> {
        let (head, command) = match text.split_once('@') {
            Some((_, "")) => return Err(FaultParseError::EmptyCommand { text: text.to_string() }),
            Some((head, cmd)) => (head, Some(cmd.to_string())),
            None => (text, None),
        };
        let (kind, param) = match head.split_once(':') {
            Some((kind, param)) => (kind, Some(param)),
            None => (head, None),
        };
        match kind {
            "hang" | "die" => {
                let trigger = match (param, command) {
                    (Some(_), Some(_)) => {
                        return Err(FaultParseError::TwoTriggers { text: text.to_string() })
                    }
                    (None, Some(cmd)) => Trigger::Command(cmd),
                    (None, None) => Trigger::After(1),
                    (Some(count), None) => Trigger::After(count.parse().map_err(|_| {
                        FaultParseError::BadCount { text: text.to_string(), count: count.to_string() }
                    })?),
                };
                Ok(if kind == "hang" { Fault::Hang(trigger) } else { Fault::Die(trigger) })
            }
            "garbage" => {
                let rate_text = param.unwrap_or("");
                let rate =
                    rate_text.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| {
                        FaultParseError::BadRate { text: text.to_string(), rate: rate_text.to_string() }
                    })?;
                Ok(Fault::Garbage { rate, command })
            }
            _ => Err(FaultParseError::UnknownKind { text: text.to_string() }),
        }
    }
}

impl fmt::Display for Fault {
    /// The text [`Fault::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, trigger) = match self {
            Fault::Hang(t) => ("hang", t),
            Fault::Die(t) => ("die", t),
            Fault::Garbage { rate, command } => {
                write!(f, "garbage:{rate}")?;
                return match command {
                    Some(c) => write!(f, "@{c}"),
                    None => Ok(()),
                };
            }
        };
        match trigger {
            Trigger::After(n) => write!(f, "{kind}:{n}"),
            Trigger::Command(c) => write!(f, "{kind}@{c}"),
        }
    }
}

impl Trigger {
    /// Whether a command named `name`, arriving after `answered` commands, fires the trigger.
    pub fn fires(&self, answered: u64, name: Option<&str>) -> bool {
        match self {
            Trigger::After(n) => answered >= *n,
            Trigger::Command(c) => name == Some(c.as_str()),
        }
    }
}

/// The bytes a garbled reply is replaced with: not JSON, not UTF-8, one line.
pub const GARBAGE: &[u8] = b"\x00\xffqmpcheck-emulator-garbage\r\n";

/// A small deterministic generator (SplitMix64), so a seed replays the same garbled replies.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next value, uniform in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
