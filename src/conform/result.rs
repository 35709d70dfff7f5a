//! Results of a conformance run: one [`CaseResult`] per case and per generated command check.
//!
//! This is the one stream every reporter reads (JUnit, Markdown, JSON); the JSON form is
//! also what `report merge` reads back, so these types round-trip through serde.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rule::Rule;

/// Whether a result comes from a case file or from the per-command check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultKind {
    /// A case of `conformance/*.toml`.
    Case,
    /// The generated check of one command of the target's model.
    Command,
}

/// What was sent, what came back and what the rule expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The bytes sent, escaped (non-printable and non-ASCII as `\xHH`).
    pub request: String,
    /// What the server sent back (or `(nothing)`), escaped the same way.
    pub reply: String,
    /// What the rule expects, in words.
    pub expected: String,
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Everything expected happened.
    Pass,
    /// The target broke the rule.
    Fail {
        /// Request, reply and expectation.
        evidence: Evidence,
    },
    /// Not run, with the reason (precondition unmet, skip list, denied by a safety rule, no device).
    Skip {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// `pass`, `fail` or `skip`.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail { .. } => "fail",
            Outcome::Skip { .. } => "skip",
        }
    }
}

/// The result of one case or one command check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Position in the unsharded list (cases in file order, then commands by name); merging
    /// shards sorts by it.
    pub index: usize,
    /// Case ID, or `command:NAME` for a command check.
    pub id: String,
    /// The rule checked.
    pub rule: Rule,
    /// Case or command check.
    pub kind: ResultKind,
    /// Human-readable name (the case description, or the command name).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// For a generated command check: what was called and how the target answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CommandNote>,
}

/// What a generated command check did, beyond pass/fail/skip: the arguments sent, the
/// create → use → delete sequence around the call, and whether the target accepted or
/// refused the arguments (a refusal with a known error class passes: generated arguments
/// are valid by the schema, yet may be semantically wrong, e.g. an unknown property).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "lowercase")]
pub enum CommandNote {
    /// Called; the target returned a value valid by the return schema.
    Accepted {
        /// The `arguments` sent.
        arguments: Value,
        /// Every step sent, the command itself included, each as `NAME: accepted` or
        /// `NAME: CLASS` (`blockdev-add: accepted`, `block_resize: GenericError`, ...).
        steps: Vec<String>,
    },
    /// Called; the target refused the arguments with an error of a known class.
    Rejected {
        /// The `arguments` sent.
        arguments: Value,
        /// Every step sent, as for `Accepted`.
        steps: Vec<String>,
        /// The error class.
        class: String,
        /// The error text.
        desc: String,
    },
    /// Called, and the check failed (the outcome's evidence says why).
    Failed {
        /// The `arguments` sent (`null` when the failure came before the call).
        arguments: Value,
        /// Every step sent, as for `Accepted`.
        steps: Vec<String>,
    },
    /// Not called, or called and refused for a device the target lacks.
    Skipped {
        /// The reason without per-command details; reports group skips by it.
        group: String,
    },
}

impl CommandNote {
    /// `accepted`, `rejected`, `failed` or `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            CommandNote::Accepted { .. } => "accepted",
            CommandNote::Rejected { .. } => "rejected",
            CommandNote::Failed { .. } => "failed",
            CommandNote::Skipped { .. } => "skipped",
        }
    }
}

impl CaseResult {
    /// The group reports file this result under: the rule group for cases, `commands` for
    /// command checks (JUnit classname).
    pub fn group(&self) -> &'static str {
        match self.kind {
            ResultKind::Case => self.rule.group(),
            ResultKind::Command => "commands",
        }
    }
}

/// What the run talked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// How the target was given (`emulated`, `qemu:/usr/bin/qemu-system-x86_64`).
    pub description: String,
    /// `major.minor.micro` from the greeting.
    pub version: Option<String>,
    /// The greeting's `package` text.
    pub package: Option<String>,
    /// Capabilities the greeting offered.
    pub capabilities: Vec<String>,
}

/// Which part of a sharded run this is: shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based shard number.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// A finished (or interrupted) conformance run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConformRun {
    /// The target.
    pub target: TargetInfo,
    /// Results in list order.
    pub results: Vec<CaseResult>,
    /// Wall time of the whole run (the longest shard's, after a merge).
    #[serde(with = "duration_ms")]
    pub wall_time: Duration,
    /// The shard this run covered (`None` for a whole run or a complete merge).
    pub shard: Option<Shard>,
    /// Set when the run stopped early (the target died); the results up to then are kept.
    pub interrupted: Option<String>,
    /// Options in force, as text, for the report header (`strict`, skip list file).
    pub notes: Vec<String>,
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

impl Counts {
    /// Adds one outcome.
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail { .. } => self.failed += 1,
            Outcome::Skip { .. } => self.skipped += 1,
        }
    }

    /// All results counted.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped
    }
}

impl ConformRun {
    /// Counts over every result.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        self.results.iter().for_each(|r| c.add(&r.outcome));
        c
    }

    /// Whether any check failed or the run was interrupted (the CLI's exit code 1 vs 0).
    pub fn has_findings(&self) -> bool {
        self.interrupted.is_some() || self.results.iter().any(|r| matches!(r.outcome, Outcome::Fail { .. }))
    }
}

/// Escapes bytes for evidence: printable ASCII as is, `\r` `\n` `\t` `\\` escaped, the rest
/// as `\xHH`; past `limit` bytes the text is cut with a note of the total.
pub fn escape_bytes(bytes: &[u8], limit: usize) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(limit) {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > limit {
        out.push_str(&format!("... ({} bytes in all)", bytes.len()));
    }
    out
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_and_non_ascii() {
        assert_eq!(escape_bytes(b"{\"a\":1}\r\n\xff\\", 100), "{\"a\":1}\\r\\n\\xff\\\\");
        assert_eq!(escape_bytes(b"abcdef", 3), "abc... (6 bytes in all)");
    }
}
