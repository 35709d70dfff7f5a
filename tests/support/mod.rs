//! Helpers shared by integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The installed QEMU program `name` (searched on PATH, or a path). When it is missing the
/// test fails under CI (`CI=true`) and is skipped with a printed note otherwise.
pub fn qemu_binary(name: &str) -> Option<PathBuf> {
    if let Some(path) = qmpcheck::target::find_binary(name) {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} not installed, and CI=true: live QEMU tests must run in CI");
    }
    println!("skipping: {name} not installed");
    None
}
