//! Replay and minimize a finding: re-run its reproducer on a fresh target and compare
//! signatures; shrink it by delta debugging while the signature still reproduces.
//!
//! [`ddmin`] is Zeller's generic algorithm (subsets, then complements, at growing
//! granularity). [`minimize`] applies it to the sequence of steps, then shrinks each
//! remaining step's argument JSON greedily (drop a member, shorten a string, drop an array
//! element, simplify a number), keeping every change after which the finding still
//! reproduces, and writes the result back to the finding folder atomically. Every run goes
//! through the safety gate like the campaign's cases: replayed bytes never bypass it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::campaign::{gate, gate_rules, judge, FuzzError, Gated};
use super::exec::{command_bytes, Session};
use super::instance::{FuzzTarget, Instance};
use super::store::{read_meta, read_reproducer, write_minimized};
use super::transcript::{Origin, Step};
use crate::check::schema::{SchemaOptions, SchemaSet, Validators};
use crate::spec::Spec;
use crate::target::emulator::EmulatorConfig;
use crate::target::{Binary, Target};

/// How to replay and minimize.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The target to run on (fresh per run).
    pub target: FuzzTarget,
    /// The model for schema checks (violations need it) and the safety gate; `None` asks
    /// the target once.
    pub model: Option<Arc<Spec>>,
    /// Reply timeout (a hang is no reply within it).
    pub reply_timeout: Duration,
    /// Most target runs [`minimize`] may spend.
    pub max_runs: usize,
}

impl ReplayOptions {
    /// Defaults: 2 s timeout, 200 runs.
    pub fn new(target: FuzzTarget) -> ReplayOptions {
        ReplayOptions { target, model: None, reply_timeout: Duration::from_secs(2), max_runs: 200 }
    }

    /// Options for the target a finding's `meta.json` names: `qemu:PATH`,
    /// `storage-daemon:PATH`, or `emulated[fault=F]` (served from `emulator_model`).
    pub fn from_meta(dir: &Path, emulator_model: Arc<Spec>) -> Result<ReplayOptions, FuzzError> {
        let meta = read_meta(dir)?;
        let target = target_from_text(&meta.target, Arc::clone(&emulator_model)).ok_or_else(|| {
            FuzzError::Finding { dir: dir.to_path_buf(), detail: format!("unknown target `{}`", meta.target) }
        })?;
        let mut opts = ReplayOptions::new(target);
        if matches!(opts.target, FuzzTarget::Emulator { .. }) {
            opts.model = Some(emulator_model);
        }
        Ok(opts)
    }
}

/// The target a `meta.json` target text names (see [`FuzzTarget::describe`]).
pub fn target_from_text(text: &str, emulator_model: Arc<Spec>) -> Option<FuzzTarget> {
    if let Some(path) = text.strip_prefix("qemu:") {
        return Some(FuzzTarget::Qemu(Target::new(Binary::SystemX86, path)));
    }
    if let Some(path) = text.strip_prefix("storage-daemon:") {
        return Some(FuzzTarget::Qemu(Target::new(Binary::StorageDaemon, path)));
    }
    let fault = if text == "emulated" {
        None
    } else {
        let inner = text.strip_prefix("emulated[fault=")?.strip_suffix(']')?;
        Some(inner.parse().ok()?)
    };
    Some(FuzzTarget::Emulator {
        model: emulator_model,
        config: EmulatorConfig { fault, ..Default::default() },
    })
}

/// What a replay gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// The finding folder.
    pub dir: PathBuf,
    /// The signature on record.
    pub expected: String,
    /// The signature the replay produced, if any.
    pub got: Option<String>,
    /// Whether they are the same.
    pub reproduced: bool,
    /// Steps in the reproducer.
    pub steps: usize,
    /// Steps the safety gate refused during the replay (not sent).
    pub denied: usize,
}

/// What a minimization did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinimizeOutcome {
    /// The finding folder.
    pub dir: PathBuf,
    /// Whether the original reproducer reproduced at all (nothing is written when not).
    pub reproduced: bool,
    /// Steps before.
    pub steps_before: usize,
    /// Steps after.
    pub steps_after: usize,
    /// Reproducer bytes before.
    pub bytes_before: usize,
    /// Reproducer bytes after.
    pub bytes_after: usize,
    /// Target runs spent.
    pub runs: usize,
}

/// Re-runs a finding's reproducer on a fresh target and compares signatures.
pub fn replay(dir: &Path, opts: &ReplayOptions) -> Result<ReplayOutcome, FuzzError> {
    let meta = read_meta(dir)?;
    let steps = read_reproducer(dir)?;
    let runner = Runner::new(opts)?;
    let (got, denied) = runner.run(&steps)?;
    let got = got.map(|s| s.text());
    Ok(ReplayOutcome {
        dir: dir.to_path_buf(),
        reproduced: got.as_deref() == Some(meta.signature.as_str()),
        expected: meta.signature,
        got,
        steps: steps.len(),
        denied,
    })
}

/// Minimizes a finding's reproducer (steps, then arguments) and writes it back.
pub fn minimize(dir: &Path, opts: &ReplayOptions) -> Result<MinimizeOutcome, FuzzError> {
    let meta = read_meta(dir)?;
    let steps = read_reproducer(dir)?;
    let runner = Runner::new(opts)?;
    let mut runs = 0usize;
    let mut failure: Option<FuzzError> = None;
    let bytes_of = |s: &[Step]| s.iter().map(|s| s.bytes.len()).sum::<usize>();
    let mut outcome = MinimizeOutcome {
        dir: dir.to_path_buf(),
        reproduced: false,
        steps_before: steps.len(),
        steps_after: steps.len(),
        bytes_before: bytes_of(&steps),
        bytes_after: bytes_of(&steps),
        runs: 0,
    };
    let best = {
        let mut reproduces = |candidate: &[Step]| -> bool {
            if runs >= opts.max_runs || failure.is_some() || candidate.is_empty() {
                return false;
            }
            runs += 1;
            match runner.run(candidate) {
                Ok((Some(sig), _)) => sig.text() == meta.signature,
                Ok((None, _)) => false,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        };
        if reproduces(&steps) {
            let mut best = ddmin(&steps, &mut reproduces);
            for index in 0..best.len() {
                shrink_step(&mut best, index, &mut reproduces);
            }
            Some(best)
        } else {
            None
        }
    };
    outcome.runs = runs;
    if let Some(e) = failure {
        return Err(e);
    }
    let Some(best) = best else { return Ok(outcome) };
    write_minimized(dir, &best)?;
    outcome.reproduced = true;
    outcome.steps_after = best.len();
    outcome.bytes_after = bytes_of(&best);
    Ok(outcome)
}

/// Zeller's ddmin: a 1-minimal subsequence of `items` for which `test` holds (`test` must
/// hold for `items`; it is not asked again for them).
pub fn ddmin<T: Clone>(items: &[T], test: &mut dyn FnMut(&[T]) -> bool) -> Vec<T> {
    let mut current = items.to_vec();
    let mut n = 2usize;
    while current.len() >= 2 {
        let chunks = split(&current, n);
        let mut reduced = false;
        for chunk in &chunks {
            if test(chunk) {
                current = chunk.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && chunks.len() > 2 {
            for skip in 0..chunks.len() {
                let complement: Vec<T> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .flat_map(|(_, c)| c.iter().cloned())
                    .collect();
                if test(&complement) {
                    current = complement;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= current.len() {
                break;
            }
            n = (n * 2).min(current.len());
        }
    }
    current
}

/// `items` cut into `n` nearly equal consecutive chunks.
fn split<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let n = n.clamp(1, items.len().max(1));
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = start + (items.len() - start) / (n - i);
        out.push(items.get(start..end).unwrap_or(&[]).to_vec());
        start = end;
    }
    out
}

/// Greedily shrinks the argument JSON of `steps[index]` while `test` holds.
fn shrink_step(steps: &mut [Step], index: usize, test: &mut dyn FnMut(&[Step]) -> bool) {
    let Some(step) = steps.get(index) else { return };
    let Some(Value::Object(request)) = parse_request(&step.bytes) else { return };
    let Some(mut args) = request.get("arguments").cloned() else { return };
    'outer: loop {
        for candidate in simplifications(&args) {
            let mut trial = steps.to_vec();
            let Some(slot) = trial.get_mut(index) else { return };
            slot.bytes = with_arguments(slot, &request, &candidate);
            if test(&trial) {
                args = candidate;
                steps.clone_from_slice(&trial);
                continue 'outer;
            }
        }
        return;
    }
}

fn parse_request(bytes: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    crate::wire::stream::parse_json_str(text.trim()).ok()
}

/// The step's bytes with `arguments` replaced (generated steps keep their id).
fn with_arguments(step: &Step, request: &Map<String, Value>, arguments: &Value) -> Vec<u8> {
    match &step.origin {
        Origin::Generated { id } => command_bytes(&step.command, Some(arguments), id),
        Origin::Mutated { .. } => {
            let mut object = request.clone();
            object.insert("arguments".into(), arguments.clone());
            let mut bytes = serde_json::to_vec(&Value::Object(object)).unwrap_or_default();
            bytes.extend_from_slice(b"\r\n");
            bytes
        }
    }
}

/// Most one-edit variants [`simplifications`] returns.
const MAX_VARIANTS: usize = 256;

/// One-edit simplifications of a JSON value, smallest edits of the biggest parts first:
/// drop an object member, drop an array element, empty or halve a string, zero a number,
/// at every depth.
pub fn simplifications(value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    variants(value, &mut |v| out.push(v), 0);
    out.truncate(MAX_VARIANTS);
    out
}

fn variants(value: &Value, emit: &mut dyn FnMut(Value), depth: usize) {
    if depth > 64 {
        return;
    }
    match value {
        Value::Object(map) => {
            for key in map.keys() {
                let mut smaller = map.clone();
                smaller.shift_remove(key);
                emit(Value::Object(smaller));
            }
            for (key, child) in map {
                variants(
                    child,
                    &mut |v| {
                        let mut changed = map.clone();
                        changed.insert(key.clone(), v);
                        emit(Value::Object(changed));
                    },
                    depth + 1,
                );
            }
        }
        Value::Array(items) => {
            if items.len() > 1 {
                emit(Value::Array(items.get(..items.len() / 2).unwrap_or(&[]).to_vec()));
            }
            for i in 0..items.len() {
                let mut smaller = items.clone();
                smaller.remove(i);
                emit(Value::Array(smaller));
            }
            for (i, child) in items.iter().enumerate() {
                variants(
                    child,
                    &mut |v| {
                        let mut changed = items.clone();
                        if let Some(slot) = changed.get_mut(i) {
                            *slot = v;
                        }
                        emit(Value::Array(changed));
                    },
                    depth + 1,
                );
            }
        }
        Value::String(s) if !s.is_empty() => {
            emit(Value::String(String::new()));
            if s.chars().count() > 1 {
                emit(Value::String(s.chars().take(s.chars().count() / 2).collect()));
            }
        }
        Value::Number(n) if n.as_i64() != Some(0) => emit(Value::from(0)),
        _ => {}
    }
}

/// Runs step sequences on fresh targets, judged as the campaign judges them.
struct Runner<'a> {
    opts: &'a ReplayOptions,
    validators: Validators,
    rules: crate::gen::SafetyRules,
}

impl<'a> Runner<'a> {
    fn new(opts: &'a ReplayOptions) -> Result<Runner<'a>, FuzzError> {
        let model = match &opts.model {
            Some(m) => Arc::clone(m),
            None => Arc::new(model_of(opts)?),
        };
        Ok(Runner {
            opts,
            validators: Validators::new(&SchemaSet::build(&model, SchemaOptions::default())),
            rules: gate_rules(&model, false),
        })
    }

    /// The first finding's signature on a fresh target, and the steps the gate refused.
    fn run(&self, steps: &[Step]) -> Result<(Option<super::Signature>, usize), FuzzError> {
        let mut instance = launch(&self.opts.target)?;
        let mut session = Session::open(&instance, self.opts.reply_timeout).map_err(|source| {
            FuzzError::Target { target: self.opts.target.describe(), source: Box::new(source) }
        })?;
        let mut denied = 0;
        for step in steps {
            let step = match gate(&self.rules, step.clone(), instance.scratch_dir()) {
                Gated::Send(step, _) => step,
                Gated::Denied(_) => {
                    denied += 1;
                    continue;
                }
            };
            let outcome = session.run_step(&step, None, Some(&self.validators));
            if let Some((signature, _)) = judge(outcome, &step, &mut instance).finding() {
                return Ok((Some(signature), denied));
            }
        }
        Ok((None, denied))
    }
}

fn launch(target: &FuzzTarget) -> Result<Instance, FuzzError> {
    Instance::launch(target)
        .map_err(|source| FuzzError::Target { target: target.describe(), source: Box::new(source) })
}

/// The model of the target: the emulator's own, or QEMU's `query-qmp-schema`.
fn model_of(opts: &ReplayOptions) -> Result<Spec, FuzzError> {
    match &opts.target {
        FuzzTarget::Emulator { model, .. } => Ok((**model).clone()),
        FuzzTarget::Qemu(target) => {
            let value = crate::target::qemu::query(target, "query-qmp-schema").map_err(|e| {
                FuzzError::Introspect { target: opts.target.describe(), detail: e.to_string() }
            })?;
            Ok(crate::spec::introspect::parse(&value.to_string(), &opts.target.describe()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_two_needed_items() {
        let items: Vec<u32> = (0..20).collect();
        let mut calls = 0;
        let got = ddmin(&items, &mut |c: &[u32]| {
            calls += 1;
            c.contains(&3) && c.contains(&17)
        });
        assert_eq!(got, vec![3, 17]);
        assert!(calls < 60, "{calls} tests");
    }

    #[test]
    fn ddmin_single_item() {
        let items: Vec<u32> = (0..9).collect();
        assert_eq!(ddmin(&items, &mut |c: &[u32]| c.contains(&8)), vec![8]);
    }

    #[test]
    fn simplifications_are_one_edit_each() {
        let v = serde_json::json!({"a": "xyzw", "b": [1, 2]});
        let got: Vec<String> = simplifications(&v).iter().map(Value::to_string).collect();
        assert_eq!(
            got,
            vec![
                r#"{"b":[1,2]}"#,
                r#"{"a":"xyzw"}"#,
                r#"{"a":"","b":[1,2]}"#,
                r#"{"a":"xy","b":[1,2]}"#,
                r#"{"a":"xyzw","b":[1]}"#,
                r#"{"a":"xyzw","b":[2]}"#,
                r#"{"a":"xyzw","b":[1]}"#,
                r#"{"a":"xyzw","b":[0,2]}"#,
                r#"{"a":"xyzw","b":[1,0]}"#,
            ]
        );
    }
}
