//! What the generated per-command checks did, counted and grouped for reports: commands
//! accepted, rejected (by error class), failed, and skipped (by reason).
//!
//! Reads only the result stream ([`ConformRun`]), so a merged run of shards gives the same
//! summary as the unsharded run.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::result::{CaseResult, CommandNote, ConformRun, Outcome, ResultKind};

/// Counts and names of the generated command checks of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandSummary {
    /// Commands checked (every command of the model, in the shard).
    pub checked: usize,
    /// Commands called whose reply was a valid return.
    pub accepted: Vec<String>,
    /// Commands called and refused with an error of a known class, by class.
    pub rejected: BTreeMap<String, Vec<String>>,
    /// Commands whose check failed.
    pub failed: Vec<String>,
    /// Commands not called (or refused for a missing device), by reason group.
    pub skipped: BTreeMap<String, Vec<String>>,
}

impl CommandSummary {
    /// Summarises the command checks of `run`.
    pub fn of(run: &ConformRun) -> CommandSummary {
        let mut summary = CommandSummary::default();
        for r in run.results.iter().filter(|r| r.kind == ResultKind::Command) {
            summary.checked += 1;
            let name = r.name.clone();
            match (&r.call, &r.outcome) {
                (_, Outcome::Fail { .. }) | (Some(CommandNote::Failed { .. }), _) => {
                    summary.failed.push(name)
                }
                (Some(CommandNote::Rejected { class, .. }), _) => {
                    summary.rejected.entry(class.clone()).or_default().push(name)
                }
                (Some(CommandNote::Skipped { group }), _) => {
                    summary.skipped.entry(group.clone()).or_default().push(name)
                }
                (None, Outcome::Skip { reason }) => {
                    summary.skipped.entry(reason.clone()).or_default().push(name)
                }
                (Some(CommandNote::Accepted { .. }), _) | (None, _) => summary.accepted.push(name),
            }
        }
        summary
    }

    /// Commands sent whose check passed or failed (skips excluded).
    pub fn called(&self) -> usize {
        self.accepted.len() + self.rejected_count() + self.failed.len()
    }

    /// Commands refused with an error of a known class.
    pub fn rejected_count(&self) -> usize {
        self.rejected.values().map(Vec::len).sum()
    }

    /// Commands skipped, whatever the reason.
    pub fn skipped_count(&self) -> usize {
        self.skipped.values().map(Vec::len).sum()
    }

    /// Commands skipped in reason groups starting with `prefix`.
    pub fn skipped_with(&self, prefix: &str) -> usize {
        self.skipped.iter().filter(|(g, _)| g.starts_with(prefix)).map(|(_, v)| v.len()).sum()
    }

    /// One line of numbers: `called C (accepted A, rejected R: CLASS n, ...; failed F); skipped S`.
    pub fn line(&self) -> String {
        let classes: Vec<String> = self.rejected.iter().map(|(c, v)| format!("{c} {}", v.len())).collect();
        let classes = if classes.is_empty() { String::new() } else { format!(": {}", classes.join(", ")) };
        format!(
            "{} commands: called {} (accepted {}, rejected {}{classes}, failed {}), skipped {}",
            self.checked,
            self.called(),
            self.accepted.len(),
            self.rejected_count(),
            self.failed.len(),
            self.skipped_count()
        )
    }
}

/// The `## Commands` section of the Markdown report.
pub fn commands_markdown(run: &ConformRun) -> String {
    let summary = CommandSummary::of(run);
    let mut out = String::new();
    if summary.checked == 0 {
        return out;
    }
    let by_name: BTreeMap<&str, &CaseResult> =
        run.results.iter().filter(|r| r.kind == ResultKind::Command).map(|r| (r.name.as_str(), r)).collect();
    let _ = writeln!(out, "## Commands\n");
    let _ = writeln!(out, "Generated per-command checks, {}.\n", summary.line());
    let _ = writeln!(
        out,
        "A rejection is an error of a known class to arguments valid by the schema (a semantic \
         refusal, e.g. an unknown property): the check passes. Arguments are seeded; \
         setup and cleanup steps (create → use → delete) are listed with their replies.\n"
    );
    let _ = writeln!(out, "### Accepted ({})\n", summary.accepted.len());
    let _ = writeln!(out, "| command | steps | arguments |");
    let _ = writeln!(out, "|---|---|---|");
    for name in &summary.accepted {
        let (arguments, steps) = match by_name.get(name.as_str()).and_then(|r| r.call.as_ref()) {
            Some(CommandNote::Accepted { arguments, steps }) => (args_cell(arguments), steps.join(" → ")),
            _ => (String::new(), String::new()),
        };
        let _ = writeln!(out, "| {name} | {} | {arguments} |", cell(&steps));
    }
    let _ = writeln!(out, "\n### Rejected ({})\n", summary.rejected_count());
    let _ = writeln!(out, "| command | class | desc | steps | arguments |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for names in summary.rejected.values() {
        for name in names {
            if let Some(CommandNote::Rejected { arguments, steps, class, desc }) =
                by_name.get(name.as_str()).and_then(|r| r.call.as_ref())
            {
                let _ = writeln!(
                    out,
                    "| {name} | {class} | {} | {} | {} |",
                    cell(desc),
                    cell(&steps.join(" → ")),
                    args_cell(arguments)
                );
            }
        }
    }
    if !summary.failed.is_empty() {
        let _ = writeln!(
            out,
            "\n### Failed ({}): {} (evidence under Findings)",
            summary.failed.len(),
            summary.failed.join(", ")
        );
    }
    let _ = writeln!(out, "\n### Skipped ({}), by reason\n", summary.skipped_count());
    let _ = writeln!(out, "| reason | count | commands |");
    let _ = writeln!(out, "|---|---:|---|");
    for (group, names) in &summary.skipped {
        let _ = writeln!(out, "| {} | {} | {} |", cell(group), names.len(), names.join(", "));
    }
    let detailed: Vec<(&String, &str)> = summary
        .skipped
        .values()
        .flatten()
        .filter_map(|name| match by_name.get(name.as_str()).map(|r| (&r.outcome, &r.call)) {
            Some((Outcome::Skip { reason }, Some(CommandNote::Skipped { group }))) if reason != group => {
                Some((name, reason.as_str()))
            }
            _ => None,
        })
        .collect();
    if !detailed.is_empty() {
        let _ = writeln!(out, "\nDetails of the skips:\n");
        let _ = writeln!(out, "| command | reason |");
        let _ = writeln!(out, "|---|---|");
        for (name, detail) in detailed {
            let _ = writeln!(out, "| {name} | {} |", cell(detail));
        }
    }
    out.push('\n');
    out
}

/// Arguments as inline code, cut at 300 characters.
fn args_cell(arguments: &Value) -> String {
    let text = arguments.to_string();
    let cut: String = text.chars().take(300).collect();
    let more = if cut.len() < text.len() { " ..." } else { "" };
    format!("`{}`{more}", cut.replace('`', "'").replace('|', "\\|"))
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
