//! Reports of a conformance run: JUnit XML, Markdown and JSON, and `merge` of shards.
//!
//! Every reporter reads the same [`ConformRun`] (one stream of results); none decides an
//! exit code. The JSON form is the exchange format: shards write it, [`merge`] reads it back
//! and joins the shards into exactly the run an unsharded invocation gives.

pub mod json;
pub mod junit;
pub mod markdown;

use std::path::{Path, PathBuf};

pub use json::{from_json, to_json};
pub use junit::to_junit;
pub use markdown::to_markdown;

use crate::conform::ConformRun;

/// File names [`write_all`] uses inside the report folder.
pub const JUNIT_FILE: &str = "junit.xml";
/// Markdown report file name.
pub const MARKDOWN_FILE: &str = "report.md";
/// JSON results file name (what `report merge` reads).
pub const JSON_FILE: &str = "results.json";

/// Why a report could not be written, read or merged.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON results file does not hold a run.
    #[error("{path}: not a qmpcheck results file: {message}")]
    Json {
        /// The file (or `(text)`).
        path: String,
        /// The parser's message.
        message: String,
    },
    /// quick-junit could not serialize the report.
    #[error("cannot write junit xml: {0}")]
    Junit(String),
    /// The inputs of a merge do not make one run.
    #[error("cannot merge: {0}")]
    Merge(String),
}

/// Writes `junit.xml`, `report.md` and `results.json` into `dir` (created if needed).
pub fn write_all(run: &ConformRun, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    let files = [(JUNIT_FILE, to_junit(run)?), (MARKDOWN_FILE, to_markdown(run)), (JSON_FILE, to_json(run))];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| ReportError::Io { path: path.clone(), source })?;
        written.push(path);
    }
    Ok(written)
}

/// Reads a `results.json` file.
pub fn read_json_file(path: &Path) -> Result<ConformRun, ReportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ReportError::Io { path: path.to_path_buf(), source })?;
    from_json(&text).map_err(|e| match e {
        ReportError::Json { message, .. } => ReportError::Json { path: path.display().to_string(), message },
        other => other,
    })
}

/// Joins the runs of shards `1/N` .. `N/N` of one target into the unsharded run: results
/// in list order, the longest shard's wall time. Every shard must be there exactly once,
/// all of the same N and target, and no result may appear twice.
pub fn merge(inputs: Vec<ConformRun>) -> Result<ConformRun, ReportError> {
    let err = |m: String| ReportError::Merge(m);
    let first = inputs.first().ok_or_else(|| err("no input".into()))?;
    let target = first.target.clone();
    let count = match first.shard {
        Some(s) => s.count,
        None if inputs.len() == 1 => return Ok(first.clone()),
        None => return Err(err("an input is a whole run, not a shard".into())),
    };
    let mut seen = vec![false; usize::try_from(count).unwrap_or(0)];
    for run in &inputs {
        if run.target != target {
            return Err(err(format!(
                "targets differ: {} {:?} vs {} {:?}",
                target.description, target.version, run.target.description, run.target.version
            )));
        }
        let shard = run.shard.ok_or_else(|| err("an input is a whole run, not a shard".into()))?;
        if shard.count != count {
            return Err(err(format!("shard counts differ: {count} vs {}", shard.count)));
        }
        let slot = usize::try_from(shard.index).ok().and_then(|i| seen.get_mut(i.wrapping_sub(1)));
        match slot {
            Some(s) if !*s => *s = true,
            Some(_) => return Err(err(format!("shard {shard} given twice"))),
            None => return Err(err(format!("shard {shard} out of range"))),
        }
    }
    let missing: Vec<String> =
        seen.iter().enumerate().filter(|(_, s)| !**s).map(|(i, _)| format!("{}/{count}", i + 1)).collect();
    if !missing.is_empty() {
        return Err(err(format!("missing shard(s) {}", missing.join(", "))));
    }
    let mut results: Vec<_> = inputs.iter().flat_map(|r| r.results.iter().cloned()).collect();
    results.sort_by_key(|r| r.index);
    if let Some(pair) = results.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(err(format!("result {} appears in two shards", pair[0].id)));
    }
    let interrupted: Vec<String> = inputs.iter().filter_map(|r| r.interrupted.clone()).collect();
    Ok(ConformRun {
        target,
        results,
        wall_time: inputs.iter().map(|r| r.wall_time).max().unwrap_or_default(),
        shard: None,
        interrupted: (!interrupted.is_empty()).then(|| interrupted.join("; ")),
        notes: first.notes.iter().filter(|n| !n.starts_with("shard:")).cloned().collect(),
    })
}
