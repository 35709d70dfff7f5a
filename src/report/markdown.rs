//! The Markdown report: target and wall time, a pass/fail/skip table by rule, every finding
//! with its request and reply, and the commands called and skipped (with reasons).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::conform::{ConformRun, Counts, Outcome, ResultKind, Rule};

/// The run as a Markdown document.
pub fn to_markdown(run: &ConformRun) -> String {
    let mut out = String::new();
    header(run, &mut out);
    summary(run, &mut out);
    findings(run, &mut out);
    commands(run, &mut out);
    out
}

fn header(run: &ConformRun, out: &mut String) {
    let t = &run.target;
    let _ = writeln!(out, "# qmpcheck conform: {}\n", t.description);
    let version = t.version.as_deref().unwrap_or("unknown");
    let package = t.package.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
    let _ = writeln!(out, "- target version: {version}{package}");
    let _ = writeln!(out, "- capabilities offered: {}", list_or_none(&t.capabilities));
    let _ = writeln!(out, "- wall time: {:.2} s", run.wall_time.as_secs_f64());
    if let Some(shard) = run.shard {
        let _ = writeln!(out, "- shard: {shard}");
    }
    for note in &run.notes {
        let _ = writeln!(out, "- {note}");
    }
    if let Some(why) = &run.interrupted {
        let _ = writeln!(out, "- **interrupted**: {why} (results up to then are below)");
    }
    out.push('\n');
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn summary(run: &ConformRun, out: &mut String) {
    let mut by_rule: BTreeMap<(Rule, bool), Counts> = BTreeMap::new();
    for r in &run.results {
        by_rule.entry((r.rule, r.kind == ResultKind::Command)).or_default().add(&r.outcome);
    }
    let total = run.counts();
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| rule | checks | passed | failed | skipped |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    for ((rule, generated), c) in &by_rule {
        let what = if *generated { "generated per-command checks" } else { "cases" };
        let _ = writeln!(out, "| {rule} | {what} | {} | {} | {} |", c.passed, c.failed, c.skipped);
    }
    let _ = writeln!(
        out,
        "| **all** | | **{}** | **{}** | **{}** |\n",
        total.passed, total.failed, total.skipped
    );
}

fn findings(run: &ConformRun, out: &mut String) {
    let failed: Vec<_> = run.results.iter().filter(|r| matches!(r.outcome, Outcome::Fail { .. })).collect();
    let _ = writeln!(out, "## Findings ({})\n", failed.len());
    if failed.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for r in failed {
        let Outcome::Fail { evidence } = &r.outcome else { continue };
        let _ = writeln!(out, "### {} ({})\n", r.id, r.rule);
        let _ = writeln!(out, "{}\n", r.name);
        let _ = writeln!(out, "- expected: {}", evidence.expected);
        let _ = writeln!(out, "- request:\n\n{}", fenced(&evidence.request));
        let _ = writeln!(out, "- reply:\n\n{}", fenced(&evidence.reply));
    }
    let skipped: Vec<_> = run
        .results
        .iter()
        .filter(|r| r.kind == ResultKind::Case)
        .filter_map(|r| match &r.outcome {
            Outcome::Skip { reason } => Some((r, reason)),
            _ => None,
        })
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "## Cases skipped ({})\n", skipped.len());
        let _ = writeln!(out, "| case | rule | reason |");
        let _ = writeln!(out, "|---|---|---|");
        for (r, reason) in skipped {
            let _ = writeln!(out, "| {} | {} | {} |", r.id, r.rule, cell(reason));
        }
        out.push('\n');
    }
}

fn commands(run: &ConformRun, out: &mut String) {
    // Accepted, rejected by class, skipped by reason: rendered by `conform::summary`.
    out.push_str(&crate::conform::summary::commands_markdown(run));
}

/// A fenced block that no backtick run inside the text can close early.
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{text}\n{fence}\n")
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
