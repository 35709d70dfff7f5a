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

/// Models for tests that must hold on every realistic input: each committed fuzz corpus
/// file of the four `spec_*` targets and the recorded QEMU 7.2 transcript, parsed by every
/// parser (legacy, both hx sides, QAPI, introspection), labelled by file path.
#[cfg(test)]
pub(crate) fn corpus_models() -> Vec<(String, Spec)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["fuzz/corpus-seeds", "fuzz/corpus-grown"] {
        for target in ["spec_legacy", "spec_hx", "spec_qapi", "spec_introspect"] {
            let entries = std::fs::read_dir(root.join(dir).join(target)).into_iter().flatten().flatten();
            files.extend(entries.map(|e| e.path()));
        }
    }
    files.push(root.join("corpus/qemu-7.2/qemu-system-x86_64.json"));
    assert!(files.len() > 100, "corpus files found: {}", files.len());
    let mut models = Vec::new();
    for path in files {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        let what = path.display().to_string();
        let sides = hx::parse(&text, "f.hx");
        for spec in [
            legacy::parse(&text, "f.txt"),
            sides.old,
            sides.new,
            qapi::parse(&text, "f.json", &mut |_| None),
            introspect::parse(&text, "f.json"),
        ] {
            models.push((what.clone(), spec));
        }
    }
    models
}
