//! The fuzz report: `DIR/report.md` and `DIR/report.json`, from one [`FuzzSummary`].
//!
//! Both hold the target and its version, the duration and exec/s, the counters (mutators,
//! denials by rule, restarts), every finding by class with its signature and reproducer
//! path, and the safety rules in force.

use std::fmt::Write as _;

use super::campaign::{FindingSummary, FuzzError, FuzzSummary};
use super::signature::FindingClass;
use super::store::{write_atomic, Store, REPRODUCER_TEXT_FILE};

/// File name of the Markdown report.
pub const REPORT_MD: &str = "report.md";
/// File name of the JSON report.
pub const REPORT_JSON: &str = "report.json";

/// Every finding of a store, as summary rows (class order, then signature).
pub fn findings_of(store: &Store) -> Result<Vec<FindingSummary>, FuzzError> {
    let mut rows: Vec<FindingSummary> = store
        .list()?
        .into_iter()
        .map(|(dir, meta)| FindingSummary {
            class: meta.class,
            signature: meta.signature,
            count: meta.count,
            reproducer: dir.join(REPRODUCER_TEXT_FILE),
            dir,
            detail: meta.detail,
        })
        .collect();
    rows.sort_by(|a, b| (a.class, &a.signature).cmp(&(b.class, &b.signature)));
    Ok(rows)
}

/// Writes both reports (atomically each).
pub fn write(summary: &FuzzSummary) -> Result<(), FuzzError> {
    let mut json = serde_json::to_vec_pretty(summary).unwrap_or_default();
    json.push(b'\n');
    write_atomic(&summary.report_json, &json)?;
    write_atomic(&summary.report_md, markdown(summary).as_bytes())?;
    Ok(())
}

/// The Markdown report.
pub fn markdown(s: &FuzzSummary) -> String {
    let c = &s.counters;
    let mut out = String::new();
    let _ = writeln!(out, "# qmpcheck fuzz report\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| target | `{}` |", s.target);
    let _ = writeln!(out, "| version | {} |", s.version);
    let _ = writeln!(out, "| seed | {} |", s.seed);
    let _ = writeln!(out, "| shard | {} |", s.shard.as_deref().unwrap_or("all"));
    let _ = writeln!(out, "| duration | {:.1} s |", s.duration_secs);
    let _ = writeln!(out, "| exec/s | {:.0} |", s.exec_per_sec);
    let _ =
        writeln!(out, "| iterations | {} (generated {}, mutated {}) |", c.iterations, c.generated, c.mutated);
    let _ = writeln!(
        out,
        "| sent | {} (fine {}, observations {}, deaths {}, hangs {}) |",
        c.executed, c.fine, c.observations, c.deaths, c.hangs
    );
    let _ = writeln!(out, "| denied by the safety gate | {} |", c.denied);
    let _ = writeln!(out, "| rewritten by the safety gate | {} |", c.rewritten);
    let _ = writeln!(out, "| restarts | {} (expected exits {}) |", c.restarts, c.expected_exits);
    let _ = writeln!(out, "| findings | {} new, {} duplicates |\n", c.new_findings, c.duplicates);

    let _ = writeln!(out, "## Mutators\n");
    if c.per_mutator.is_empty() {
        let _ = writeln!(out, "None used.\n");
    } else {
        let _ = writeln!(out, "| mutator | cases |\n|---|---|");
        for (m, n) in &c.per_mutator {
            let _ = writeln!(out, "| {m} | {n} |");
        }
        out.push('\n');
    }
    if !c.denied_by_rule.is_empty() {
        let _ = writeln!(out, "## Denied by rule\n\n| rule | cases |\n|---|---|");
        for (r, n) in &c.denied_by_rule {
            let _ = writeln!(out, "| {r} | {n} |");
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Findings\n");
    if s.findings.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for class in FindingClass::ALL {
        let rows: Vec<&FindingSummary> = s.findings.iter().filter(|f| f.class == class).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {class} ({})\n", rows.len());
        let _ = writeln!(out, "| signature | count | reproducer | first seen |\n|---|---|---|---|");
        for f in rows {
            let _ = writeln!(
                out,
                "| `{}` | {} | `{}` | {} |",
                f.signature.replace('|', "\\|"),
                f.count,
                f.reproducer.display(),
                f.detail.replace('|', "\\|").replace('\n', " ")
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Safety rules in force\n");
    out.push_str(&s.rules_table);
    out
}
