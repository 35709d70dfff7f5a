//! The protocol rules that conformance cases cite (shared/docs/qmp-rules.md, groups W S C E O).
//!
//! Compatibility rules (K) compare two models and are not checked by running a target, so a
//! case citing one is rejected like any unknown ID.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One rule of qmp-rules.md that a conformance case can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Stream of JSON texts, any whitespace between them, CRLF after each server message.
    W1,
    /// Parser limits: token size, token count, nesting 1024.
    W2,
    /// Invalid JSON gets a GenericError; a control character resets the parser.
    W3,
    /// Invalid UTF-8 and lone surrogates are parse errors.
    W4,
    /// Everything the server sends is valid ASCII JSON.
    W5,
    /// The greeting's shape.
    S1,
    /// Capabilities-negotiation mode accepts only `qmp_capabilities`.
    S2,
    /// `qmp_capabilities` with `enable`; unknown capabilities are errors.
    S3,
    /// A second `qmp_capabilities` gets CommandNotFound.
    S4,
    /// Command shape: `execute`, `arguments` object, `id`; anything else is an error.
    C1,
    /// `id` is echoed unchanged.
    C2,
    /// Success is `{"return": X}` of the documented type.
    C3,
    /// Failure is `{"error": {"class", "desc"}}` with a known class.
    C4,
    /// Arguments are checked against the schema.
    C5,
    /// Exactly one reply per command, in order.
    C6,
    /// Event shape: `event`, `data`, `timestamp`.
    E1,
    /// Events may arrive between any two replies.
    E2,
    /// Rate-limited events.
    E3,
    /// `exec-oob` needs the `oob` capability and an `id`.
    O1,
    /// Only `allow-oob` commands run out of band.
    O2,
    /// An OOB reply may overtake earlier in-band replies.
    O3,
}

impl Rule {
    /// Every rule, in document order.
    pub const ALL: [Rule; 21] = [
        Rule::W1,
        Rule::W2,
        Rule::W3,
        Rule::W4,
        Rule::W5,
        Rule::S1,
        Rule::S2,
        Rule::S3,
        Rule::S4,
        Rule::C1,
        Rule::C2,
        Rule::C3,
        Rule::C4,
        Rule::C5,
        Rule::C6,
        Rule::E1,
        Rule::E2,
        Rule::E3,
        Rule::O1,
        Rule::O2,
        Rule::O3,
    ];

    /// The rule's ID as the document spells it (`W3`).
    pub fn id(self) -> &'static str {
        match self {
            Rule::W1 => "W1",
            Rule::W2 => "W2",
            Rule::W3 => "W3",
            Rule::W4 => "W4",
            Rule::W5 => "W5",
            Rule::S1 => "S1",
            Rule::S2 => "S2",
            Rule::S3 => "S3",
            Rule::S4 => "S4",
            Rule::C1 => "C1",
            Rule::C2 => "C2",
            Rule::C3 => "C3",
            Rule::C4 => "C4",
            Rule::C5 => "C5",
            Rule::C6 => "C6",
            Rule::E1 => "E1",
            Rule::E2 => "E2",
            Rule::E3 => "E3",
            Rule::O1 => "O1",
            Rule::O2 => "O2",
            Rule::O3 => "O3",
        }
    }

    /// The rule's group name (`wire`, `session`, `dispatch`, `events`, `oob`).
    pub fn group(self) -> &'static str {
        match self.id().as_bytes().first() {
            Some(b'W') => "wire",
            Some(b'S') => "session",
            Some(b'C') => "dispatch",
            Some(b'E') => "events",
            _ => "oob",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A rule ID that is not one of [`Rule::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule `{0}` (expected one of W1-W5, S1-S4, C1-C6, E1-E3, O1-O3)")]
pub struct UnknownRule(pub String);

impl FromStr for Rule {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Rule, UnknownRule> {
        Rule::ALL.iter().copied().find(|r| r.id() == s).ok_or_else(|| UnknownRule(s.to_string()))
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rule, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_k_rules_are_rejected() {
        for rule in Rule::ALL {
            assert_eq!(rule.id().parse::<Rule>(), Ok(rule));
        }
        assert_eq!("K1".parse::<Rule>(), Err(UnknownRule("K1".into())));
        assert_eq!("w1".parse::<Rule>(), Err(UnknownRule("w1".into())));
        assert_eq!(Rule::O2.group(), "oob");
        assert_eq!(Rule::C6.group(), "dispatch");
    }
}
