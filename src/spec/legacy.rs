//! Parser for legacy prose docs: `qmp-commands.txt` and `qmp-events.txt` (seeds 000, 001, 004).

use super::{SourceKind, Spec};

/// Parses a legacy prose document (commands or events). Never fails: problems become
/// diagnostics in the returned model.
pub fn parse(_text: &str, _file: &str) -> Spec {
    Spec::new(SourceKind::Legacy)
}
