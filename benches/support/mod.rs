//! Shared by the benches (and, through `#[path]`, tests/fast_validate.rs): value generation
//! from the model and the reply corpus. Each bench uses part of it.
#![allow(dead_code)]

pub mod corpus;
pub mod values;
