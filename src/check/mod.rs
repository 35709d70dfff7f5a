//! Checks derived from the model: JSON Schemas (validated with the jsonschema crate) and
//! the protocol rules of shared/docs/qmp-rules.md.

pub mod examples;
pub mod fast;
pub mod schema;
