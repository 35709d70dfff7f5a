//! The crash-safe findings store: one folder per signature, written before any restart.
//!
//! Layout under the campaign's out dir `DIR`:
//! - `DIR/findings/SIGNATURE/` — `meta.json` ([`Meta`]), `transcript.jsonl` (every byte sent
//!   and received, one JSON line each, with direction and stream offset), `reproducer.json`
//!   (the steps replay and minimize use), `reproducer.qmp` (the same bytes, one step a line,
//!   to paste after `qmp_capabilities`), `stderr.txt` (QEMU's stderr) and `README.txt` (what
//!   was found, and a socat one-liner that replays it);
//! - `DIR/state.json` — the campaign state that `--resume` continues from.
//!
//! Crash safety: every file is written to a temp file in its own dir, fsynced, renamed over
//! its final name, then the dir is fsynced. A new finding is assembled in a temp folder
//! (`findings/.tmp-…`) and renamed into place whole, so a finding folder that is visible is
//! complete; [`Store::open`] removes temp folders and temp files left by a crash. A duplicate
//! (same signature) only bumps `count` and `last_seen` in `meta.json`, atomically as well.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::signature::{FindingClass, Signature};
use super::transcript::{Step, Transcript};

/// Name of the folder holding one folder per finding.
pub const FINDINGS_DIR: &str = "findings";
/// Name of the campaign state file.
pub const STATE_FILE: &str = "state.json";
/// Prefix of every temp file and temp folder the store writes; [`Store::open`] removes them.
pub const TEMP_PREFIX: &str = ".tmp-";
/// `meta.json` of a finding.
pub const META_FILE: &str = "meta.json";
/// `transcript.jsonl` of a finding.
pub const TRANSCRIPT_FILE: &str = "transcript.jsonl";
/// `reproducer.json` of a finding: the steps, machine-readable.
pub const REPRODUCER_FILE: &str = "reproducer.json";
/// `reproducer.qmp` of a finding: the bytes to paste after negotiation.
pub const REPRODUCER_TEXT_FILE: &str = "reproducer.qmp";
/// `stderr.txt` of a finding.
pub const STDERR_FILE: &str = "stderr.txt";
/// `README.txt` of a finding.
pub const README_FILE: &str = "README.txt";

/// Why the store could not read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or folder operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was attempted (`write`, `read`, `rename`, ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A JSON file of the store does not parse.
    #[error("{path} is not a valid {what}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What it should hold (`meta.json`, `state file`, ...).
        what: &'static str,
        /// serde_json's message.
        message: String,
    },
}

/// Where and under what a finding was seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingContext {
    /// QEMU's version (`7.2.22`) or the emulator's.
    pub qemu_version: String,
    /// The target as text (`qemu:/usr/bin/qemu-system-x86_64`, `emulated[fault=die@stop]`).
    pub target: String,
    /// The campaign seed.
    pub seed: u64,
    /// The iteration whose case found it.
    pub iteration: u64,
    /// The mutator that made the case, when it was mutated.
    pub mutator: Option<String>,
}

/// Everything the store writes for one new finding.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRecord {
    /// Its class.
    pub class: FindingClass,
    /// Its signature (the folder name derives from it).
    pub signature: Signature,
    /// The command name of the case that found it.
    pub command: String,
    /// What was seen, one line (`signal 6 (SIGABRT)`, `no reply within 2s`, ...).
    pub detail: String,
    /// Every byte sent and received on the session.
    pub transcript: Transcript,
    /// The steps to send after negotiation to reproduce it.
    pub reproducer: Vec<Step>,
    /// QEMU's stderr (empty for the emulator).
    pub stderr: String,
    /// The QEMU command line (empty for the emulator), for the README.
    pub command_line: Vec<String>,
    /// Where and when.
    pub context: FindingContext,
}

/// `meta.json` of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The class (`crash`, `sandbox-leak`, `hang`, `violation`, `unexpected-success`).
    pub class: FindingClass,
    /// The full signature text.
    pub signature: String,
    /// The command name of the first case that found it.
    pub command: String,
    /// What was seen the first time.
    pub detail: String,
    /// How many times it was seen.
    pub count: u64,
    /// First seen, seconds since the Unix epoch.
    pub first_seen: u64,
    /// Last seen, seconds since the Unix epoch.
    pub last_seen: u64,
    /// QEMU's (or the emulator's) version.
    pub qemu_version: String,
    /// The target as text.
    pub target: String,
    /// The campaign seed of the first sighting.
    pub seed: u64,
    /// The iteration of the first sighting.
    pub iteration: u64,
    /// The mutator of the first sighting, if mutated.
    pub mutator: Option<String>,
    /// Steps in `reproducer.json`.
    pub reproducer_steps: usize,
    /// Whether `reproducer.json` was minimized.
    #[serde(default)]
    pub minimized: bool,
}

/// What [`Store::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new finding folder.
    New {
        /// The folder.
        dir: PathBuf,
    },
    /// A known signature: its count was bumped.
    Duplicate {
        /// The folder.
        dir: PathBuf,
        /// The count now.
        count: u64,
    },
}

impl Recorded {
    /// The finding's folder.
    pub fn dir(&self) -> &Path {
        match self {
            Recorded::New { dir } | Recorded::Duplicate { dir, .. } => dir,
        }
    }
}

/// The campaign state that `--resume` continues from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignState {
    /// The campaign seed.
    pub seed: u64,
    /// The next iteration to run.
    pub iteration: u64,
    /// Counters so far.
    pub counters: super::Counters,
    /// The target as text (a resume against another target is refused by the campaign).
    pub target: String,
    /// The shard as `K/N`, when sharded.
    pub shard: Option<String>,
    /// Seconds of fuzzing done before this state was written.
    pub elapsed_secs: f64,
}

/// The findings store of one out dir.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What [`Store::open`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Temp files and folders removed (left by a crash mid-write).
    pub removed: Vec<PathBuf>,
}

impl Store {
    /// Opens (creating) the store under `dir`, removing temp files and folders a crash left,
    /// and finding folders without a `meta.json` (never complete).
    pub fn open(dir: impl AsRef<Path>) -> Result<(Store, Cleanup), StoreError> {
        let root = dir.as_ref().to_path_buf();
        let findings = root.join(FINDINGS_DIR);
        fs::create_dir_all(&findings).map_err(io_err("create", &findings))?;
        let store = Store { root };
        let cleanup = store.clean()?;
        Ok((store, cleanup))
    }

    /// The out dir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `DIR/findings`.
    pub fn findings_dir(&self) -> PathBuf {
        self.root.join(FINDINGS_DIR)
    }

    /// The folder of a signature (whether or not it exists).
    pub fn finding_dir(&self, signature: &Signature) -> PathBuf {
        self.findings_dir().join(signature.dir_name())
    }

    /// Writes a new finding (complete, fsynced) or bumps the count of a known one.
    pub fn record(&self, finding: &FindingRecord) -> Result<Recorded, StoreError> {
        let dir = self.finding_dir(&finding.signature);
        let meta_path = dir.join(META_FILE);
        if meta_path.exists() {
            let mut meta = read_meta(&dir)?;
            meta.count += 1;
            meta.last_seen = now_secs();
            write_json_atomic(&meta_path, &meta)?;
            return Ok(Recorded::Duplicate { dir, count: meta.count });
        }
        let temp = self.findings_dir().join(temp_name(&finding.signature.dir_name()));
        fs::create_dir(&temp).map_err(io_err("create", &temp))?;
        let written = write_finding_files(&temp, finding);
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&temp);
            return Err(e);
        }
        fsync_dir(&temp)?;
        fs::rename(&temp, &dir).map_err(io_err("rename", &temp))?;
        fsync_dir(&self.findings_dir())?;
        Ok(Recorded::New { dir })
    }

    /// Every complete finding, by folder name.
    pub fn list(&self) -> Result<Vec<(PathBuf, Meta)>, StoreError> {
        let findings = self.findings_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&findings).map_err(io_err("read", &findings))? {
            let entry = entry.map_err(io_err("read", &findings))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) || !path.join(META_FILE).is_file() {
                continue;
            }
            out.push((path.clone(), read_meta(&path)?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Writes the campaign state atomically.
    pub fn save_state(&self, state: &CampaignState) -> Result<(), StoreError> {
        write_json_atomic(&self.root.join(STATE_FILE), state)
    }

    /// The campaign state, when one was saved.
    pub fn load_state(&self) -> Result<Option<CampaignState>, StoreError> {
        let path = self.root.join(STATE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&path).map_err(io_err("read", &path))?;
        serde_json::from_str(&text).map(Some).map_err(|e| StoreError::Corrupt {
            path,
            what: "state file",
            message: e.to_string(),
        })
    }

    fn clean(&self) -> Result<Cleanup, StoreError> {
        let mut cleanup = Cleanup::default();
        remove_temps(&self.root, &mut cleanup)?;
        let findings = self.findings_dir();
        for entry in fs::read_dir(&findings).map_err(io_err("read", &findings))? {
            let entry = entry.map_err(io_err("read", &findings))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                remove_any(&path)?;
                cleanup.removed.push(path);
            } else if path.is_dir() {
                remove_temps(&path, &mut cleanup)?;
                if !path.join(META_FILE).is_file() {
                    remove_any(&path)?;
                    cleanup.removed.push(path);
                }
            }
        }
        if !cleanup.removed.is_empty() {
            fsync_dir(&findings)?;
        }
        Ok(cleanup)
    }
}

/// Reads `meta.json` of a finding folder.
pub fn read_meta(dir: &Path) -> Result<Meta, StoreError> {
    let path = dir.join(META_FILE);
    let text = fs::read_to_string(&path).map_err(io_err("read", &path))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        path,
        what: "meta.json",
        message: e.to_string(),
    })
}

/// Reads `reproducer.json` of a finding folder.
pub fn read_reproducer(dir: &Path) -> Result<Vec<Step>, StoreError> {
    let path = dir.join(REPRODUCER_FILE);
    let text = fs::read_to_string(&path).map_err(io_err("read", &path))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        path,
        what: "reproducer.json",
        message: e.to_string(),
    })
}

/// Replaces the reproducer of a finding (both files, atomically each) and marks `meta.json`
/// minimized.
pub fn write_minimized(dir: &Path, steps: &[Step]) -> Result<(), StoreError> {
    write_json_atomic(&dir.join(REPRODUCER_FILE), &steps)?;
    write_atomic(&dir.join(REPRODUCER_TEXT_FILE), &reproducer_text(steps))?;
    let mut meta = read_meta(dir)?;
    meta.reproducer_steps = steps.len();
    meta.minimized = true;
    write_json_atomic(&dir.join(META_FILE), &meta)
}

/// Writes `bytes` to `path` crash-safely: temp file in the same dir, fsync, rename, fsync
/// of the dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(temp_name(&name));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&temp);
        return Err(StoreError::Io { action: "write", path: temp, source });
    }
    fs::rename(&temp, path).map_err(io_err("rename", &temp))?;
    fsync_dir(dir)
}

/// [`write_atomic`] of pretty JSON with a final newline.
pub fn write_json_atomic<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    let mut text = serde_json::to_vec_pretty(value).unwrap_or_default();
    text.push(b'\n');
    write_atomic(path, &text)
}

/// The paste-able text of a reproducer: each step's bytes, then a newline.
pub fn reproducer_text(steps: &[Step]) -> Vec<u8> {
    let mut out = Vec::new();
    for step in steps {
        out.extend_from_slice(&step.bytes);
        if !step.bytes.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn write_finding_files(dir: &Path, finding: &FindingRecord) -> Result<(), StoreError> {
    let now = now_secs();
    let ctx = &finding.context;
    let meta = Meta {
        class: finding.class,
        signature: finding.signature.text().to_string(),
        command: finding.command.clone(),
        detail: finding.detail.clone(),
        count: 1,
        first_seen: now,
        last_seen: now,
        qemu_version: ctx.qemu_version.clone(),
        target: ctx.target.clone(),
        seed: ctx.seed,
        iteration: ctx.iteration,
        mutator: ctx.mutator.clone(),
        reproducer_steps: finding.reproducer.len(),
        minimized: false,
    };
    write_durable(&dir.join(TRANSCRIPT_FILE), &finding.transcript.to_jsonl())?;
    write_durable(
        &dir.join(REPRODUCER_FILE),
        &serde_json::to_vec_pretty(&finding.reproducer).unwrap_or_default(),
    )?;
    write_durable(&dir.join(REPRODUCER_TEXT_FILE), &reproducer_text(&finding.reproducer))?;
    write_durable(&dir.join(STDERR_FILE), finding.stderr.as_bytes())?;
    write_durable(&dir.join(README_FILE), readme(finding).as_bytes())?;
    // meta.json last: a folder with it is complete even if the rename were not atomic.
    write_durable(&dir.join(META_FILE), &serde_json::to_vec_pretty(&meta).unwrap_or_default())
}

/// Writes and fsyncs a file inside a temp folder (the folder's rename publishes it).
fn write_durable(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let result = (|| {
        let mut file = File::create(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    result.map_err(io_err("write", path))
}

fn readme(finding: &FindingRecord) -> String {
    let mut text = String::new();
    text.push_str(&format!("qmpcheck finding: {}\n\n", finding.signature.text()));
    text.push_str(&format!(
        "class:   {}\ncommand: {}\nseen:    {}\n",
        finding.class, finding.command, finding.detail
    ));
    let ctx = &finding.context;
    text.push_str(&format!("target:  {} (version {})\n", ctx.target, ctx.qemu_version));
    text.push_str(&format!("seed:    {} iteration {}\n", ctx.seed, ctx.iteration));
    if let Some(m) = &ctx.mutator {
        text.push_str(&format!("mutator: {m}\n"));
    }
    text.push_str("\nFiles: reproducer.qmp (send after qmp_capabilities), reproducer.json (steps for\n");
    text.push_str("`qmpcheck replay` / `qmpcheck minimize`), transcript.jsonl (every byte sent and\n");
    text.push_str("received), stderr.txt (QEMU's stderr), meta.json.\n\n");
    if !finding.command_line.is_empty() {
        text.push_str(
            "Start QEMU as the campaign did (in an empty scratch dir, which is its working dir):\n\n  ",
        );
        text.push_str(&shell_words(&finding.command_line));
        text.push_str("\n\n");
    }
    text.push_str("Then send the reproducer (socat; or `nc -U qmp.sock` in place of socat):\n\n");
    text.push_str(
        "  (printf '%s\\n' '{\"execute\":\"qmp_capabilities\"}'; cat reproducer.qmp; sleep 2) \\\n",
    );
    text.push_str("    | socat - UNIX-CONNECT:qmp.sock\n");
    text
}

/// Quotes arguments for a POSIX shell.
fn shell_words(words: &[String]) -> String {
    let quote = |w: &String| {
        if !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b)) {
            w.clone()
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}

fn remove_temps(dir: &Path, cleanup: &mut Cleanup) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let entry = entry.map_err(io_err("read", dir))?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            remove_any(&path)?;
            cleanup.removed.push(path);
        }
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<(), StoreError> {
    let result = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    result.map_err(io_err("remove", path))
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", dir))
}

/// A temp name unique within this process and across processes.
fn temp_name(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{base}-{}-{n}", std::process::id())
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { action, path: path.to_path_buf(), source }
}

/// Counts of findings by class name, for summaries.
pub fn count_by_class(metas: &[(PathBuf, Meta)]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (_, meta) in metas {
        *out.entry(meta.class.to_string()).or_insert(0) += 1;
    }
    out
}
