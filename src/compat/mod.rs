//! Compatibility diff of two models (`qmpcheck compat OLD NEW`), classified by the K rules of
//! `qmp-rules.md`.
//!
//! Commands and events are matched by name (their only stable identity); everything below
//! them is compared **by structure**, walking both type graphs in parallel from each command's
//! arguments (input: what the client sends) and return (output: what the client reads), and
//! from each event's data (output). Type names are never compared: introspection masks them
//! as numbers that change between builds and parsers invent names for inline objects.
//!
//! A member that moved between an object's common members and its union branches (QEMU
//! 7.2 → 10.0: `query-sev`'s `policy` went into branch `sev-type=sev` when SevInfo became a
//! union) is one [`ChangeKind::MovedIntoBranch`] or [`ChangeKind::MovedOutOfBranch`] change,
//! not a removal plus an addition; its severity depends on which discriminator values lose
//! the member and whether OLD could produce (or accept) them (see `walk`'s docs).
//!
//! A change inside a type reached at several paths of one command or event (BlockdevRef
//! under each format driver) is one [`Change`] at the shortest of those paths, listing the
//! others in [`Change::also_at`]; the choice does not depend on member order, so swapping
//! OLD and NEW reverses every change. At most [`ALSO_AT_LIMIT`] other places are listed
//! (the shortest ones); [`Change::also_at_more`] counts the rest. A schema whose types fan
//! out through several members at many levels reaches one type at exponentially many
//! paths: the walk compares each pair of types once per context and re-roots what it found
//! at every further place, so its cost stays linear in the schemas' size (times the depth).
//!
//! Every [`Change`] carries the K rule, a [`Severity`], a path such as
//! `query-blockstats.return[].stats.account_invalid`, the old and new `FILE:LINE`, and a
//! message saying what a client must do. Changes to unstable items (`x-` names, the
//! `unstable` feature) are reported with `gates: false` (K8): they never trip
//! [`CompatReport::trips`]. This module is pure: no I/O, no exit codes (the CLI maps
//! [`CompatReport::trips`] to exit code 1).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::{SourceKind, Spec};

pub mod render;
mod walk;

/// How much a change matters to an existing client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Existing clients break (a removed command, a new mandatory argument, ...).
    Breaking,
    /// Nothing breaks yet, but clients should act: something became deprecated or lost its
    /// stability promise, or output may now carry values old readers do not know.
    Warning,
    /// A change existing clients do not notice (a new optional argument, a new command).
    Compatible,
    /// Worth knowing, no action needed (documentation detail appeared or vanished).
    Info,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 4] =
        [Severity::Breaking, Severity::Warning, Severity::Compatible, Severity::Info];

    /// The lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Breaking => "breaking",
            Severity::Warning => "warning",
            Severity::Compatible => "compatible",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The compatibility rules of `qmp-rules.md` (K1-K8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// Command or event removed (or added).
    K1,
    /// Argument added (or moved out of union branches into the common arguments), or its
    /// optionality changed.
    K2,
    /// Argument removed (or moved from the common arguments into union branches).
    K3,
    /// Output member added, removed, moved between common members and union branches, or
    /// its optionality changed.
    K4,
    /// Type changed.
    K5,
    /// Enum value added or removed.
    K6,
    /// Rename (command, event, argument, member).
    K7,
    /// Features: deprecated, unstable.
    K8,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// What happened to the item at a change's path. Swapping OLD and NEW turns each kind into
/// its [`ChangeKind::reversed`] counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The item (command, event, member, union branch) exists only in NEW.
    Added,
    /// The item exists only in OLD.
    Removed,
    /// The item exists in both under names that differ by separator or `x-` prefix.
    Renamed,
    /// An optional member became mandatory.
    NowMandatory,
    /// A mandatory member became optional.
    NowOptional,
    /// The member's type changed (including alternates gaining or losing a JSON type).
    TypeChanged,
    /// An enum gained a value.
    ValueAdded,
    /// An enum lost a value.
    ValueRemoved,
    /// The item gained the `deprecated` feature.
    Deprecated,
    /// The item lost the `deprecated` feature.
    Undeprecated,
    /// The item became unstable (`unstable` feature).
    NowUnstable,
    /// The item lost the `unstable` feature.
    NowStable,
    /// A member or argument left an object's common members for one or more of its union
    /// branches: it is now present only for some discriminator values. `path` is the first
    /// branch that has it (`query-sev.return{sev-type=sev}.policy`), `old_path` where it was.
    MovedIntoBranch,
    /// A member or argument left one or more union branches for the object's common
    /// members: it is now present whatever the discriminator is. `path` is the common
    /// member, `old_path` the first branch that had it.
    MovedOutOfBranch,
}

impl ChangeKind {
    /// The kind the same change has when OLD and NEW are swapped.
    pub fn reversed(self) -> ChangeKind {
        match self {
            ChangeKind::Added => ChangeKind::Removed,
            ChangeKind::Removed => ChangeKind::Added,
            ChangeKind::Renamed => ChangeKind::Renamed,
            ChangeKind::NowMandatory => ChangeKind::NowOptional,
            ChangeKind::NowOptional => ChangeKind::NowMandatory,
            ChangeKind::TypeChanged => ChangeKind::TypeChanged,
            ChangeKind::ValueAdded => ChangeKind::ValueRemoved,
            ChangeKind::ValueRemoved => ChangeKind::ValueAdded,
            ChangeKind::Deprecated => ChangeKind::Undeprecated,
            ChangeKind::Undeprecated => ChangeKind::Deprecated,
            ChangeKind::NowUnstable => ChangeKind::NowStable,
            ChangeKind::NowStable => ChangeKind::NowUnstable,
            ChangeKind::MovedIntoBranch => ChangeKind::MovedOutOfBranch,
            ChangeKind::MovedOutOfBranch => ChangeKind::MovedIntoBranch,
        }
    }
}

/// Whether a change's subject is a command or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A command.
    Command,
    /// An event.
    Event,
}

/// One classified difference between OLD and NEW.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The K rule that classifies it.
    pub rule: Rule,
    /// How much it matters.
    pub severity: Severity,
    /// Where: `drive-mirror.arguments.buf-size`, `query-blockstats.return[].stats.x`,
    /// `blockdev-add.arguments{driver=qcow2}.cache`, `x.arguments.mode=existing` (an enum
    /// value), `x.arguments.target<str>` (an alternate's branch). NEW's names, except for
    /// removals, which only have OLD's.
    pub path: String,
    /// The path under OLD's names, when it differs from `path`: for renames and for
    /// everything below a renamed command, event or member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// `FILE:LINE` in OLD (for additions: the enclosing item in OLD, when there is one).
    pub old: Option<String>,
    /// `FILE:LINE` in NEW (for removals: the enclosing item in NEW, when there is one).
    pub new: Option<String>,
    /// What changed and what the client must do.
    pub message: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The command or event the path starts at (NEW's name when it was renamed).
    pub subject: String,
    /// Whether the subject is a command or an event.
    pub subject_kind: SubjectKind,
    /// False when an unstable item is involved (K8): reported, but never trips a gate.
    pub gates: bool,
    /// The same change at other paths of the same subject, when it is inside a type reached
    /// at several paths (BlockdevRef under each format driver): reported once, at the
    /// occurrence with the shortest path, with the others listed here (spelled like `path`).
    /// At most [`ALSO_AT_LIMIT`] of them, the shortest (ties: the smaller path), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_at: Vec<String>,
    /// How many further places have the same change but are not listed in `also_at`
    /// (the type is reached at more than [`ALSO_AT_LIMIT`] other paths; a count of paths,
    /// saturating at `usize::MAX`). Zero, and omitted from JSON, when `also_at` is complete.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub also_at_more: usize,
}

/// At most this many other places of one change are listed in [`Change::also_at`]; the rest
/// are only counted ([`Change::also_at_more`]), so a type reached at exponentially many
/// paths stays one readable row.
pub const ALSO_AT_LIMIT: usize = 20;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Counts of changes by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Breaking changes (gating or not).
    pub breaking: usize,
    /// Compatible changes.
    pub compatible: usize,
    /// Informational changes.
    pub info: usize,
    /// Warnings (deprecations, output enums gaining values).
    pub warning: usize,
    /// Changes that never gate because they touch unstable items (K8), of any severity.
    pub ungated: usize,
}

/// When `qmpcheck compat` should report failure (exit code 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Fail when a gating change is breaking.
    Breaking,
    /// Fail on any gating change at all.
    Any,
    /// Never fail because of changes.
    Never,
}

/// The result of [`diff`]: every change, in subject order (commands, then events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatReport {
    /// A label for OLD (its main source file), for report titles.
    pub old_label: String,
    /// A label for NEW.
    pub new_label: String,
    /// How many diagnostics reading OLD produced (damaged sources make spurious changes).
    #[serde(default)]
    pub old_diagnostics: usize,
    /// How many diagnostics reading NEW produced.
    #[serde(default)]
    pub new_diagnostics: usize,
    /// The changes.
    pub changes: Vec<Change>,
}

impl CompatReport {
    /// Counts by severity.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.severity {
                Severity::Breaking => s.breaking += 1,
                Severity::Warning => s.warning += 1,
                Severity::Compatible => s.compatible += 1,
                Severity::Info => s.info += 1,
            }
            if !c.gates {
                s.ungated += 1;
            }
        }
        s
    }

    /// Whether the report should fail a gate with this policy. Ungated changes (K8) never do.
    pub fn trips(&self, fail_on: FailOn) -> bool {
        match fail_on {
            FailOn::Never => false,
            FailOn::Any => self.changes.iter().any(|c| c.gates),
            FailOn::Breaking => self.changes.iter().any(|c| c.gates && c.severity == Severity::Breaking),
        }
    }

    /// The changes whose path starts at `subject` (a command or event name).
    pub fn for_subject(&self, subject: &str) -> Vec<&Change> {
        self.changes.iter().filter(|c| c.subject == subject).collect()
    }

    /// The change at exactly `path`, if there is one (the first, if several); failing that,
    /// the first change that lists `path` in [`Change::also_at`].
    pub fn at(&self, path: &str) -> Option<&Change> {
        self.changes
            .iter()
            .find(|c| c.path == path)
            .or_else(|| self.changes.iter().find(|c| c.also_at.iter().any(|p| p == path)))
    }
}

/// Compares two models and classifies every difference by the K rules.
///
/// Commands and events are matched by name; a name present on one side only is paired
/// with one on the other side whose name differs only by separator or an `x-` prefix
/// (a K7 rename), and the pair is then compared like a matched one.
pub fn diff(old: &Spec, new: &Spec) -> CompatReport {
    let mut walker = walk::Walker::new(old, new, collapses_int_widths(old) || collapses_int_widths(new));
    let command_pairs = pair_by_name(&old.commands, &new.commands);
    for pair in &command_pairs {
        walker.command(pair.old.map(|n| &old.commands[n]), pair.new.map(|n| &new.commands[n]));
    }
    let event_pairs = pair_by_name(&old.events, &new.events);
    for pair in &event_pairs {
        walker.event(pair.old.map(|n| &old.events[n]), pair.new.map(|n| &new.events[n]));
    }
    CompatReport {
        old_label: label(old),
        new_label: label(new),
        old_diagnostics: old.diagnostics.len(),
        new_diagnostics: new.diagnostics.len(),
        changes: walker.into_changes(),
    }
}

/// Whether a model's integers are all spelled `int` whatever their width: introspection
/// collapses widths, legacy prose only knows `json-int`.
fn collapses_int_widths(spec: &Spec) -> bool {
    !matches!(spec.kind, Some(SourceKind::Qapi) | Some(SourceKind::Hx))
}

/// A command or event name on each side; both set when matched or renamed.
struct Pair<'a> {
    old: Option<&'a String>,
    new: Option<&'a String>,
}

/// Pairs names: equal names first, then renames (same [`rename_key`]), then the rest alone.
/// Ordered by OLD's name, with additions last.
fn pair_by_name<'a, T>(old: &'a BTreeMap<String, T>, new: &'a BTreeMap<String, T>) -> Vec<Pair<'a>> {
    let mut pairs = Vec::new();
    let mut taken: BTreeSet<&String> = BTreeSet::new();
    let added: Vec<&String> = new.keys().filter(|n| !old.contains_key(*n)).collect();
    for name in old.keys() {
        if let Some((n, _)) = new.get_key_value(name) {
            taken.insert(n);
            pairs.push(Pair { old: Some(name), new: Some(n) });
            continue;
        }
        let renamed = added.iter().find(|a| !taken.contains(*a) && rename_key(a) == rename_key(name));
        match renamed {
            Some(a) => {
                taken.insert(a);
                pairs.push(Pair { old: Some(name), new: Some(a) });
            }
            None => pairs.push(Pair { old: Some(name), new: None }),
        }
    }
    for a in added {
        if !taken.contains(a) {
            pairs.push(Pair { old: None, new: Some(a) });
        }
    }
    pairs
}

/// The part of a name that survives a K7 rename: no `x-`/`x_` prefix, `_` spelled `-`.
pub(crate) fn rename_key(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("x-").or_else(|| lower.strip_prefix("x_")).unwrap_or(&lower);
    bare.replace('_', "-")
}

/// How two names that share a [`rename_key`] differ, for the evidence of a rename.
pub(crate) fn rename_evidence(old: &str, new: &str) -> &'static str {
    let old_x = old.starts_with("x-") || old.starts_with("x_");
    let new_x = new.starts_with("x-") || new.starts_with("x_");
    let strip =
        |s: &str| if s.starts_with("x-") || s.starts_with("x_") { s[2..].to_string() } else { s.to_string() };
    let separators_differ = strip(old) != strip(new);
    match (old_x != new_x, separators_differ) {
        (true, true) => "names differ by an x- prefix and separator",
        (true, false) => "names differ by an x- prefix",
        _ => "names differ by separator",
    }
}

/// The file most items of a model were read from, as a report label.
fn label(spec: &Spec) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let sources = spec
        .commands
        .values()
        .flat_map(|c| c.sources.first())
        .chain(spec.events.values().flat_map(|e| e.sources.first()));
    for s in sources {
        *counts.entry(s.file.as_str()).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(f, _)| f.to_string())
        .unwrap_or_else(|| "(empty model)".to_string())
}
