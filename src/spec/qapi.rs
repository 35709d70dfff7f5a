//! Parser for QAPI schema files (`qapi/*.json`, seed 003).

use super::{SourceKind, Spec};

/// Parses one QAPI schema file. `read_include` is called with each `include` path as written
/// (relative to the including file) and returns `(label, text)` or `None` when missing.
pub fn parse(
    _text: &str,
    _file: &str,
    _read_include: &mut dyn FnMut(&str) -> Option<(String, String)>,
) -> Spec {
    Spec::new(SourceKind::Qapi)
}
