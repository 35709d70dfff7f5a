//! Fuzzing: the campaign loop, the crash-safe findings store, minimize and replay, and the
//! properties the cargo-fuzz targets under `fuzz/` check.
//!
//! - [`campaign`]: [`campaign::run`] — generate or mutate, pass the safety gate, log, send,
//!   classify, store findings before any restart, report.
//! - [`exec`]: one step on a negotiated session and its classification (shared by the
//!   campaign, replay and minimize, so a reproducer is judged as the campaign judged it).
//! - [`instance`]: one running target (real QEMU or the emulator) behind one interface.
//! - [`store`]: `DIR/findings/SIGNATURE/` written crash-safely, dedup, the resume state.
//! - [`signature`]: finding classes and signatures.
//! - [`transcript`]: bytes sent and received; reproducer steps.
//! - [`minimize`]: ddmin over steps and over argument JSON; [`minimize::replay`].
//! - [`report`]: `DIR/report.md` and `DIR/report.json`.
//! - [`props`]: property checks for cargo-fuzz shims and unit tests alike.
//!
//! **Invariant:** no byte reaches a target without passing
//! [`crate::gen::SafetyRules::check_bytes`] (campaign, replay and minimize alike).

pub mod campaign;
pub mod exec;
pub mod instance;
pub mod minimize;
pub mod props;
pub mod report;
pub mod signature;
pub mod store;
pub mod transcript;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use campaign::{progress_line, run, FuzzError, FuzzOptions, FuzzSummary, Progress};
pub use instance::{FuzzTarget, Instance};
pub use minimize::{minimize, replay, MinimizeOutcome, ReplayOptions, ReplayOutcome};
pub use signature::{FindingClass, Signature};
pub use store::{Meta, Store};
pub use transcript::{Expect, Origin, Step};

/// Counters of a campaign (kept across `--resume`). They add up:
/// `iterations = denied + executed`, `iterations = generated + mutated`,
/// `executed = fine + observations + deaths + hangs`, and the per-mutator counts sum to
/// `mutated`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Cases drawn.
    pub iterations: u64,
    /// Cases from the generator, sent as they were (valid commands).
    pub generated: u64,
    /// Cases from a mutator.
    pub mutated: u64,
    /// Mutated cases per mutator name.
    pub per_mutator: BTreeMap<String, u64>,
    /// Cases the safety gate denied (never sent).
    pub denied: u64,
    /// Denied cases per rule ID.
    pub denied_by_rule: BTreeMap<String, u64>,
    /// Cases the safety gate rewrote (paths moved into the scratch dir), then sent.
    pub rewritten: u64,
    /// Cases sent.
    pub executed: u64,
    /// Sent cases with nothing wrong.
    pub fine: u64,
    /// Sent cases whose reply broke a rule or succeeded unexpectedly.
    pub observations: u64,
    /// Sent cases after which the connection closed (crash, sandbox leak or expected exit).
    pub deaths: u64,
    /// Deaths that were expected (`quit`, exit code 0): no finding.
    pub expected_exits: u64,
    /// Sent cases with no reply in time.
    pub hangs: u64,
    /// Findings recorded (new and duplicate) by class.
    pub findings: BTreeMap<String, u64>,
    /// New finding folders.
    pub new_findings: u64,
    /// Duplicates (count bumped).
    pub duplicates: u64,
    /// Target restarts.
    pub restarts: u64,
}

impl Counters {
    /// Whether the identities in the type's doc hold.
    pub fn add_up(&self) -> bool {
        let by_mutator: u64 = self.per_mutator.values().sum();
        let by_class: u64 = self.findings.values().sum();
        self.iterations == self.denied + self.executed
            && self.iterations == self.generated + self.mutated
            && self.executed == self.fine + self.observations + self.deaths + self.hangs
            && by_mutator == self.mutated
            && by_class == self.new_findings + self.duplicates
            && self.deaths >= self.expected_exits
    }

    /// Findings recorded in all classes (new and duplicate).
    pub fn findings_total(&self) -> u64 {
        self.findings.values().sum()
    }
}
