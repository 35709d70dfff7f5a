//! The JSON form of a run: the report for machines and the format `report merge` reads.

use super::ReportError;
use crate::conform::ConformRun;

/// Pretty JSON of the whole run (target, results with evidence, wall time, shard).
pub fn to_json(run: &ConformRun) -> String {
    let mut text = serde_json::to_string_pretty(run).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads the JSON form back.
pub fn from_json(text: &str) -> Result<ConformRun, ReportError> {
    serde_json::from_str(text)
        .map_err(|e| ReportError::Json { path: "(text)".into(), message: e.to_string() })
}
