//! The model and its parsers: one parser per source kind, content detection, and merging
//! of several sources with drift diagnostics.
//!
//! **Invariant:** parsing never fails on damaged input. Each parser returns a [`Spec`] with
//! [`Diagnostic`]s naming FILE:LINE, so one run reports every problem. This module does no
//! I/O; [`crate::source`] reads files and launches QEMU.

pub mod detect;
pub mod hx;
pub mod introspect;
pub mod legacy;
pub mod merge;
pub mod model;
pub mod qapi;
pub mod render;

pub use model::*;
