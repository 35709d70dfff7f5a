//! Conformance: loads the cases of `conformance/` and runs them, plus one generated check
//! per command of the target's own model, against a target (real QEMU or the emulator).
//!
//! - [`rule`]: the rule IDs cases cite.
//! - [`case`]: the case file format and its loader (FILE:LINE errors).
//! - [`skip`]: the skip list of commands the generated check never calls.
//! - [`generated`]: the generated check of one command (plan, last safety gate, judging).
//! - [`result`]: the result stream every reporter reads; [`summary`]: the command checks
//!   counted and grouped for reports.
//! - [`shard`]: the `K/N` partition.
//! - [`exec`]: one case on one connection; [`run`]: the runner ([`run::run`]).

pub mod case;
pub mod exec;
pub mod generated;
pub mod result;
pub mod rule;
pub mod run;
pub mod shard;
pub mod skip;
pub mod summary;

pub use case::{Case, CaseLoadError, CaseProblem, Step};
pub use result::{
    CaseResult, CommandNote, ConformRun, Counts, Evidence, Outcome, ResultKind, Shard, TargetInfo,
};
pub use rule::Rule;
pub use run::{run, ConformError, ConformOptions, TargetSpec, DEFAULT_SEED};
pub use skip::SkipList;
pub use summary::CommandSummary;
