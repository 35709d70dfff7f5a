//! Turning a SOURCE argument (file, folder, `PATH@old`, `qemu:BINARY`, `builtin`) into a model.
//!
//! This is the I/O edge of model building: it reads files and launches QEMU, then hands text
//! to the pure parsers in [`crate::spec`].
//!
//! - a file: its kind is detected from content ([`crate::spec::detect`]) unless given;
//! - `PATH@old` / `PATH@new`: one side of an `.hx` diff (plain `PATH` of a diff is the new side);
//! - a folder: a QAPI folder (its `qapi-schema.json` as the root when present, else every
//!   `*.json`), otherwise every file in it; the models are merged ([`crate::spec::merge`]);
//! - `qemu:BINARY`, `storage-daemon:BINARY`: QEMU launched sandboxed and introspected.
//! - `builtin`: the embedded QEMU 7.2 model recorded in corpus/.
//!
//! Source labels are the path as given (with `@old`/`@new` for `.hx` sides); QAPI includes
//! are labelled by the including file's directory joined with the include path.

use std::path::{Path, PathBuf};

use crate::spec::{self, DiagnosticKind, Source, SourceKind, Spec};
use crate::target::record::record;
use crate::target::Binary;

/// Why a source could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The kind of a document could not be told from its content.
    #[error("{path}: cannot tell what kind of document this is (use --kind)")]
    UnknownKind {
        /// The path as given.
        path: String,
    },
    /// Nothing exists at the path.
    #[error("{path}: no such file or folder")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The file is not UTF-8 text.
    #[error("{path}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The path as given.
        path: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// `@old`/`@new` was given for a document that is not an `.hx` file.
    #[error("{path}: '@{side}' selects a side of an .hx diff, but this is a {kind} document")]
    SideOfNonHx {
        /// The path as given (without the suffix).
        path: String,
        /// `old` or `new`.
        side: String,
        /// The kind the document has.
        kind: SourceKind,
    },
    /// A folder with nothing to load.
    #[error("{path}: folder holds no document")]
    EmptyFolder {
        /// The path as given.
        path: String,
    },
    /// Launching or asking QEMU failed.
    #[error("{source_arg}: {source}")]
    Target {
        /// The SOURCE argument as given.
        source_arg: String,
        /// What went wrong.
        source: Box<crate::target::TargetError>,
    },
    /// A source form this build does not load yet.
    #[error("{source_arg}: {reason}")]
    Unsupported {
        /// The SOURCE argument as given.
        source_arg: String,
        /// Why, and what to use instead.
        reason: String,
    },
}

/// The text of the embedded `builtin` model: QEMU 7.2's `query-qmp-schema` for
/// qemu-system-x86_64, recorded by `qmpcheck record` (corpus/qemu-7.2/).
pub const BUILTIN_TRANSCRIPT: &str = include_str!("../corpus/qemu-7.2/qemu-system-x86_64.json");

/// The label sources of the `builtin` model carry.
pub const BUILTIN_LABEL: &str = "builtin:corpus/qemu-7.2/qemu-system-x86_64.json";

/// The embedded model (QEMU 7.2, qemu-system-x86_64 with `-machine none`).
pub fn builtin() -> Spec {
    spec::introspect::parse(BUILTIN_TRANSCRIPT, BUILTIN_LABEL)
}

/// Loads one SOURCE argument into a model. `kind` overrides content detection.
pub fn load(arg: &str, kind: Option<SourceKind>) -> Result<Spec, LoadError> {
    Loader { kind, reference: None }.load(arg)
}

/// How SOURCE arguments are loaded.
#[derive(Debug, Clone, Default)]
pub struct Loader {
    /// Overrides content detection of the document kind.
    pub kind: Option<SourceKind>,
    /// A model that names the headless prose pieces of `.hx` diffs (hunks that cut off a
    /// section's heading): see [`spec::hx::attribute`].
    pub reference: Option<Spec>,
}

impl Loader {
    /// Loads one SOURCE argument into a model.
    pub fn load(&self, arg: &str) -> Result<Spec, LoadError> {
        if arg == "builtin" {
            return Ok(builtin());
        }
        if let Some(model) = load_live(arg)? {
            return Ok(model);
        }
        let (path, side) = split_side(arg);
        let fs_path = Path::new(path);
        if !fs_path.exists() {
            return Err(LoadError::NotFound { path: path.to_string() });
        }
        if fs_path.is_dir() {
            if let Some(side) = side {
                return Err(LoadError::SideOfNonHx {
                    path: path.to_string(),
                    side: side.name().into(),
                    kind: SourceKind::Qapi,
                });
            }
            return load_folder(path, self.kind);
        }
        load_file(path, side, self.kind, self.reference.as_ref())
    }
}

/// `qemu:BINARY` / `storage-daemon:BINARY`: launch it sandboxed and introspect it.
fn load_live(arg: &str) -> Result<Option<Spec>, LoadError> {
    let (kind, path) = if let Some(p) = arg.strip_prefix("qemu:") {
        (Binary::SystemX86, p)
    } else if let Some(p) = arg.strip_prefix("storage-daemon:") {
        (Binary::StorageDaemon, p)
    } else {
        return Ok(None);
    };
    let transcript = record(kind, path)
        .map_err(|e| LoadError::Target { source_arg: arg.to_string(), source: Box::new(e) })?;
    Ok(Some(spec::introspect::parse(&transcript.to_string(), arg)))
}

/// The side of an `.hx` diff a `PATH@old` / `PATH@new` argument selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Old => "old",
            Side::New => "new",
        }
    }
}

/// Splits `PATH@old` / `PATH@new`; a path that itself exists with the suffix is taken whole.
fn split_side(arg: &str) -> (&str, Option<Side>) {
    if Path::new(arg).exists() {
        return (arg, None);
    }
    if let Some(p) = arg.strip_suffix("@old") {
        return (p, Some(Side::Old));
    }
    if let Some(p) = arg.strip_suffix("@new") {
        return (p, Some(Side::New));
    }
    (arg, None)
}

fn read_text(path: &str) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_string(), source })?;
    String::from_utf8(bytes)
        .map_err(|e| LoadError::NotUtf8 { path: path.to_string(), offset: e.utf8_error().valid_up_to() })
}

fn load_file(
    path: &str,
    side: Option<Side>,
    kind: Option<SourceKind>,
    reference: Option<&Spec>,
) -> Result<Spec, LoadError> {
    let text = read_text(path)?;
    let kind = kind
        .or_else(|| spec::detect::detect(&text))
        .ok_or_else(|| LoadError::UnknownKind { path: path.to_string() })?;
    if let (Some(side), false) = (side, kind == SourceKind::Hx) {
        return Err(LoadError::SideOfNonHx { path: path.to_string(), side: side.name().into(), kind });
    }
    Ok(match kind {
        SourceKind::Legacy => spec::legacy::parse(&text, path),
        SourceKind::Introspect => spec::introspect::parse(&text, path),
        SourceKind::Qapi => parse_qapi(&text, path),
        SourceKind::Hx => {
            let old_label = format!("{path}@old");
            let new_label = match side {
                Some(Side::New) => format!("{path}@new"),
                _ => path.to_string(),
            };
            let mut sides = spec::hx::parse_labelled(&text, &old_label, &new_label);
            if let Some(reference) = reference {
                spec::hx::attribute(&mut sides, reference);
            }
            match side {
                Some(Side::Old) => sides.old,
                _ => sides.new,
            }
        }
    })
}

/// Parses a QAPI file, reading includes relative to the including file's folder (or, for
/// nested includes the parser reports by their written path, relative to any folder an
/// include was already read from).
fn parse_qapi(text: &str, path: &str) -> Spec {
    let root_dir = Path::new(path).parent().map(Path::to_path_buf).unwrap_or_default();
    let mut dirs: Vec<PathBuf> = vec![root_dir];
    let mut read_include = |inc: &str| -> Option<(String, String)> {
        let found = dirs.iter().map(|d| d.join(inc)).find(|p| p.is_file())?;
        let text = std::fs::read_to_string(&found).ok()?;
        if let Some(parent) = found.parent().map(Path::to_path_buf) {
            if !dirs.contains(&parent) {
                dirs.push(parent);
            }
        }
        Some((found.to_string_lossy().into_owned(), text))
    };
    spec::qapi::parse(text, path, &mut read_include)
}

fn load_folder(path: &str, kind: Option<SourceKind>) -> Result<Spec, LoadError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|source| LoadError::Io { path: path.to_string(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    let label = |p: &Path| p.to_string_lossy().into_owned();
    let root = files.iter().find(|p| p.file_name().is_some_and(|n| n == "qapi-schema.json"));
    if let Some(root) = root {
        let text = read_text(&label(root))?;
        return Ok(parse_qapi(&text, &label(root)));
    }
    let json: Vec<&PathBuf> = files.iter().filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    let is_qapi_folder = kind == Some(SourceKind::Qapi)
        || json.iter().any(|p| {
            read_text(&label(p)).ok().and_then(|t| spec::detect::detect(&t)) == Some(SourceKind::Qapi)
        });
    let chosen: Vec<&PathBuf> = if is_qapi_folder { json } else { files.iter().collect() };
    let mut specs = Vec::new();
    let mut skipped = Vec::new();
    for file in chosen {
        let file_kind = if is_qapi_folder { Some(SourceKind::Qapi) } else { kind };
        match load_file(&label(file), None, file_kind, None) {
            Ok(spec) => specs.push(spec),
            Err(LoadError::UnknownKind { path }) => skipped.push(path),
            Err(e) => return Err(e),
        }
    }
    if specs.is_empty() {
        return Err(LoadError::EmptyFolder { path: path.to_string() });
    }
    let mut merged = spec::merge::merge(specs);
    for path in skipped {
        merged.diag(
            DiagnosticKind::Syntax,
            Source::new(path, 0),
            "skipped: cannot tell what kind of document this is",
        );
    }
    Ok(merged)
}
