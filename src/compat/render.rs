//! Renderings of a [`CompatReport`]: Markdown for review (a libvirt maintainer reading what
//! changed and what to do) and JSON for programs:
//! `{"summary": {"breaking","compatible","info",...}, "changes": [{"rule","severity","path","old","new","message",...}]}`.
//!
//! Renderers only format; they never decide the exit code ([`CompatReport::trips`] does).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::{Change, ChangeKind, CompatReport, Severity, SubjectKind, Summary};

/// Output format of `qmpcheck compat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown for review.
    Md,
    /// The JSON document.
    Json,
}

/// Renders `report` in `format`.
pub fn render(report: &CompatReport, format: Format) -> String {
    match format {
        Format::Md => markdown(report),
        Format::Json => json(report),
    }
}

/// The JSON document, pretty-printed, ending in a newline.
pub fn json(report: &CompatReport) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        summary: Summary,
        old_label: &'a str,
        new_label: &'a str,
        old_diagnostics: usize,
        new_diagnostics: usize,
        changes: &'a [Change],
    }
    let doc = Doc {
        summary: report.summary(),
        old_label: &report.old_label,
        new_label: &report.new_label,
        old_diagnostics: report.old_diagnostics,
        new_diagnostics: report.new_diagnostics,
        changes: &report.changes,
    };
    // Serializing plain structs of strings and numbers cannot fail.
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// The Markdown report: summary counts, breaking changes at a glance, then per command and
/// per event every change with its rule, OLD and NEW `FILE:LINE` and what the client must do.
pub fn markdown(report: &CompatReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# QMP compatibility: `{}` → `{}`\n", report.old_label, report.new_label);
    summary_table(&mut out, report);
    caveat(&mut out, report);
    at_a_glance(&mut out, report);
    for kind in [SubjectKind::Command, SubjectKind::Event] {
        subjects(&mut out, report, kind);
    }
    out
}

fn summary_table(out: &mut String, report: &CompatReport) {
    let s = report.summary();
    let ungated = |sev: Severity| report.changes.iter().filter(|c| c.severity == sev && !c.gates).count();
    let _ = writeln!(out, "| severity | changes | of which unstable (never gate) |");
    let _ = writeln!(out, "|---|---:|---:|");
    for (sev, n) in [
        (Severity::Breaking, s.breaking),
        (Severity::Warning, s.warning),
        (Severity::Compatible, s.compatible),
        (Severity::Info, s.info),
    ] {
        let _ = writeln!(out, "| {sev} | {n} | {} |", ungated(sev));
    }
    let _ = writeln!(
        out,
        "\nRules K1–K8 are those of `qmp-rules.md`. Paths start at the command or event: \
         `.arguments` is what the client sends, `.return` and `.data` what it reads; `[]` is an \
         array element, `{{tag=value}}` a union branch, `<json-type>` an alternate's branch, \
         `=value` an enum value. Changes to unstable items (`x-` names, `unstable` feature) are \
         listed but never gate (K8).\n"
    );
}

/// Damaged or partial sources make items look removed or untyped: say so up front.
fn caveat(out: &mut String, report: &CompatReport) {
    let (o, n) = (report.old_diagnostics, report.new_diagnostics);
    if o + n == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "> Reading the sources produced {o} diagnostic(s) for OLD and {n} for NEW (`qmpcheck spec` \
         lists them). Where a source is damaged or partial, a command or member may look \
         removed or its type unresolved although only the document lost it: check such \
         findings against the source lines given.\n"
    );
}

fn at_a_glance(out: &mut String, report: &CompatReport) {
    let gating: Vec<&Change> =
        report.changes.iter().filter(|c| c.gates && c.severity == Severity::Breaking).collect();
    if gating.is_empty() {
        let _ = writeln!(out, "No gating breaking changes.\n");
        return;
    }
    let _ = writeln!(out, "## Breaking changes at a glance ({})\n", gating.len());
    for c in gating {
        let also = match c.also_at.len().saturating_add(c.also_at_more) {
            0 => String::new(),
            1 => " (also at 1 other path)".to_string(),
            n => format!(" (also at {n} other paths)"),
        };
        let _ = writeln!(out, "- `{}` ({}): {}{also}", c.path, c.rule, c.message);
    }
    out.push('\n');
}

fn subjects(out: &mut String, report: &CompatReport, kind: SubjectKind) {
    let (title, noun) = match kind {
        SubjectKind::Command => ("Commands", "command"),
        SubjectKind::Event => ("Events", "event"),
    };
    let mut by_subject: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in report.changes.iter().filter(|c| c.subject_kind == kind) {
        by_subject.entry(c.subject.as_str()).or_default().push(c);
    }
    if by_subject.is_empty() {
        return;
    }
    let _ = writeln!(out, "## {title}\n");
    let only = |changes: &[&Change], k: ChangeKind| {
        changes.len() == 1 && changes[0].kind == k && changes[0].path == changes[0].subject
    };
    let removed: Vec<&Change> =
        by_subject.values().filter(|cs| only(cs, ChangeKind::Removed)).map(|cs| cs[0]).collect();
    let added: Vec<&Change> =
        by_subject.values().filter(|cs| only(cs, ChangeKind::Added)).map(|cs| cs[0]).collect();
    whole_subjects(out, &format!("Removed {noun}s"), "old", &removed, |c| c.old.as_deref());
    whole_subjects(out, &format!("Added {noun}s"), "new", &added, |c| c.new.as_deref());
    for (name, changes) in &by_subject {
        if only(changes, ChangeKind::Removed) || only(changes, ChangeKind::Added) {
            continue;
        }
        let _ = writeln!(out, "### `{name}`\n");
        let _ =
            writeln!(out, "| severity | rule | where | old | new | what changed; what the client must do |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for c in changes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                severity_cell(c),
                c.rule,
                code(relative_path(c)),
                code(c.old.as_deref().unwrap_or("")),
                code(c.new.as_deref().unwrap_or("")),
                cell(&message_with_also(c))
            );
        }
        out.push('\n');
    }
}

/// A compact table of subjects that were only added or only removed.
fn whole_subjects(
    out: &mut String,
    title: &str,
    side: &str,
    changes: &[&Change],
    source: impl Fn(&Change) -> Option<&str>,
) {
    if changes.is_empty() {
        return;
    }
    let _ = writeln!(out, "### {title} ({})\n", changes.len());
    let _ = writeln!(out, "| name | severity | {side} | note |");
    let _ = writeln!(out, "|---|---|---|---|");
    for c in changes {
        // Additions need no action: only their stability is worth a note. Removals keep
        // their message (what fails, whether it was deprecated).
        let note = match c.kind {
            ChangeKind::Added if c.gates => "",
            ChangeKind::Added => "unstable: no compatibility promise",
            _ => c.message.as_str(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            code(&c.subject),
            severity_cell(c),
            code(source(c).unwrap_or("")),
            cell(note)
        );
    }
    out.push('\n');
}

fn severity_cell(c: &Change) -> String {
    let name = match c.severity {
        Severity::Breaking => "**breaking**".to_string(),
        other => other.to_string(),
    };
    if c.gates {
        name
    } else {
        format!("{name} (unstable, no gate)")
    }
}

/// The message, followed by the other paths of the same change (below the subject) and
/// how many more are not listed.
fn message_with_also(c: &Change) -> String {
    if c.also_at.is_empty() {
        return c.message.clone();
    }
    let others: Vec<String> = c.also_at.iter().map(|p| code(below_subject(p, &c.subject))).collect();
    let more = match c.also_at_more {
        0 => String::new(),
        1 => " and 1 more place".to_string(),
        n => format!(" and {n} more places"),
    };
    format!("{} (same change also at {}{more})", c.message, others.join(", "))
}

/// The path below the subject (`arguments.buf-size`), or `(itself)` for the subject.
fn relative_path(c: &Change) -> &str {
    match c.path.strip_prefix(c.subject.as_str()) {
        Some("") | None => "(itself)",
        Some(rest) => rest.strip_prefix('.').unwrap_or(rest),
    }
}

/// `path` without its leading `subject.` (whole when it starts elsewhere: an old name).
fn below_subject<'p>(path: &'p str, subject: &str) -> &'p str {
    match path.strip_prefix(subject) {
        Some("") => "(itself)",
        Some(rest) => rest.strip_prefix('.').unwrap_or(rest),
        None => path,
    }
}

/// Text as a Markdown code span inside a table cell (empty stays empty).
fn code(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("`{}`", text.replace('|', "\\|"))
    }
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
