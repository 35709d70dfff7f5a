//! qmpcheck: conformance, fuzz and compatibility testing for QMP, the QEMU Machine Protocol.
//!
//! Everything derives from one model ([`spec::Spec`]) built from the documented argument
//! tables: legacy QMP docs, `.hx` args_type strings, QAPI schema files and live
//! `query-qmp-schema` replies. See ARCHITECTURE.md for the code map.
#![warn(missing_docs)]
// Safe Rust throughout, so the fuzz targets need no sanitizer to find memory errors in
// qmpcheck itself (fuzz/README.md); the one exception is allowed where it is.
#![deny(unsafe_code)]

pub mod check;
pub mod cli;
pub mod compat;
pub mod conform;
pub mod fuzz;
pub mod gen;
pub mod report;
pub mod source;
pub mod spec;
pub mod target;
pub mod wire;
