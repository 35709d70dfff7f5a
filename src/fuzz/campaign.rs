//! The campaign loop: generate or mutate, gate, log, send, classify, store, restart.
//!
//! Each iteration draws a case ([`CaseSource`]: a valid command from
//! [`crate::gen::Generator`], or one passed through [`crate::gen::mutate::mutate_any`]),
//! passes its bytes through [`crate::gen::SafetyRules::check_bytes`] (denied cases are
//! counted and never sent; rewrites are sent rewritten), appends it to the case log
//! `DIR/cases.log` *before* sending, runs it ([`super::exec::Session::run_step`]) and
//! classifies what happened. A crash or hang is written to the store (fsynced) before the
//! target is restarted. The state file is written after every finding and every [`FuzzOptions::state_every`]
//! iterations and at the end, so `resume` continues the same sequence.
//!
//! Determinism: cases come in blocks of [`BLOCK`] iterations, each block from its own
//! generator seeded by (seed, block), so a resumed campaign draws exactly the cases the
//! uninterrupted one would have (the generator fast-forwards within the block).
//! Sharding `K/N` keeps the commands whose name hashes to shard K (the same partition as
//! `conform`), so N machines fuzz disjoint command sets with the same seed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::exec::{command_bytes, Session, StepOutcome};
use super::instance::{FuzzTarget, Instance, InstanceError};
use super::signature::{FindingClass, Signature};
use super::store::{CampaignState, FindingContext, FindingRecord, Recorded, Store, StoreError};
use super::transcript::{bytes_field, Expect, Origin, Step};
use super::{report, Counters};
use crate::check::schema::{SchemaOptions, SchemaSet, Validators};
use crate::conform::Shard;
use crate::gen::mutate::{mutate_any, Expectation};
use crate::gen::{GeneratorConfig, SafetyRules, SplitMix64, Verdict};
use crate::spec::Spec;
use crate::target::Exit;

/// Iterations per generator block (see the module doc).
pub const BLOCK: u64 = 1000;
/// Most steps of a session kept for a finding's reproducer (older ones are dropped).
pub const HISTORY_LIMIT: usize = 256;
/// Most bytes of those steps (older ones are dropped past it).
pub const HISTORY_BYTES: usize = 8 << 20;
/// File name of the case log (the current target session's cases, truncated per start).
pub const CASE_LOG: &str = "cases.log";

/// What to run.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// The target.
    pub target: FuzzTarget,
    /// The model to generate from; `None` asks the target (`query-qmp-schema`).
    pub model: Option<Arc<Spec>>,
    /// Stop after this many iterations (counted from the campaign's start, resumes included).
    pub iterations: Option<u64>,
    /// Stop after this much wall time (of this invocation).
    pub time: Option<Duration>,
    /// The seed.
    pub seed: u64,
    /// The out dir (findings, state, report, case log).
    pub out: PathBuf,
    /// The shard of the command set to fuzz.
    pub shard: Option<Shard>,
    /// Continue from `DIR/state.json` (its seed wins over [`FuzzOptions::seed`]).
    pub resume: bool,
    /// How long a reply may take before the case is a hang.
    pub reply_timeout: Duration,
    /// Percentage of cases that are mutated (0..=100).
    pub mutate_percent: u8,
    /// Write the state file every this many iterations.
    pub state_every: u64,
    /// Include `x-*`, unstable and deprecated commands (the separate campaign).
    pub unstable_campaign: bool,
    /// Mutators not to use (by name): their cases are sent unmutated instead. The draw
    /// stays the same, so the rest of the sequence does not change.
    pub exclude_mutators: Vec<String>,
    /// Commands never drawn (on top of the safety rules), e.g. ones a rule misses.
    pub skip_commands: Vec<String>,
}

impl FuzzOptions {
    /// Options with defaults: 1,000 iterations unless `iterations`/`time` are set later,
    /// seed 0, 2 s reply timeout, 30 % mutated, state every 100 iterations.
    pub fn new(target: FuzzTarget, out: impl Into<PathBuf>) -> FuzzOptions {
        FuzzOptions {
            target,
            model: None,
            iterations: None,
            time: None,
            seed: 0,
            out: out.into(),
            shard: None,
            resume: false,
            reply_timeout: Duration::from_secs(2),
            mutate_percent: 30,
            state_every: 100,
            unstable_campaign: false,
            exclude_mutators: Vec::new(),
            skip_commands: Vec::new(),
        }
    }
}

/// Why a campaign could not run (findings are not errors).
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    /// The target could not be started or negotiated with.
    #[error("target {target}: {source}")]
    Target {
        /// The target as text.
        target: String,
        /// What failed (boxed to keep the error small).
        source: Box<InstanceError>,
    },
    /// The findings store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model could not be had from the target.
    #[error("cannot introspect {target}: {detail}")]
    Introspect {
        /// The target as text.
        target: String,
        /// What failed.
        detail: String,
    },
    /// The model offers no command to fuzz (after sharding).
    #[error("no command to fuzz in the model (shard {shard})")]
    NoCommands {
        /// The shard, or `all`.
        shard: String,
    },
    /// `resume` was asked against another target than the state file's.
    #[error("state file is for target {saved}, not {asked}")]
    ResumeMismatch {
        /// The saved target.
        saved: String,
        /// The target asked for.
        asked: String,
    },
    /// The report or case log could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A finding folder lacks what replay or minimize needs.
    #[error("finding {dir}: {detail}")]
    Finding {
        /// The folder.
        dir: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// A snapshot for the progress line.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Iterations so far (resumes included).
    pub iteration: u64,
    /// The iteration limit, when set.
    pub limit: Option<u64>,
    /// Cases sent per second in this invocation.
    pub exec_per_sec: f64,
    /// Findings recorded (new and duplicate).
    pub findings: u64,
    /// New finding folders.
    pub new_findings: u64,
    /// Target restarts.
    pub restarts: u64,
    /// Cases denied by the safety gate.
    pub denied: u64,
    /// Time in this invocation.
    pub elapsed: Duration,
}

/// One finding in a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingSummary {
    /// Its class.
    pub class: FindingClass,
    /// The signature text.
    pub signature: String,
    /// Times seen (all campaigns into this out dir).
    pub count: u64,
    /// Its folder.
    pub dir: PathBuf,
    /// The paste-able reproducer.
    pub reproducer: PathBuf,
    /// What was seen first.
    pub detail: String,
}

/// What a campaign did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzSummary {
    /// The target as text.
    pub target: String,
    /// The target's version (`7.2.22`).
    pub version: String,
    /// The seed.
    pub seed: u64,
    /// The shard, as `K/N`.
    pub shard: Option<String>,
    /// Wall time of this invocation, seconds.
    pub duration_secs: f64,
    /// Cases sent per second in this invocation.
    pub exec_per_sec: f64,
    /// Counters (resumes included).
    pub counters: Counters,
    /// Every finding of the out dir.
    pub findings: Vec<FindingSummary>,
    /// The safety rules in force (Markdown).
    pub rules_table: String,
    /// `DIR/report.md`.
    pub report_md: PathBuf,
    /// `DIR/report.json`.
    pub report_json: PathBuf,
}

impl FuzzSummary {
    /// Whether any finding is on record (exit code 1 for the CLI).
    pub fn has_findings(&self) -> bool {
        !self.findings.is_empty()
    }
}

/// A progress line on stderr (indicatif), hidden when stderr is not a terminal.
pub fn progress_line() -> impl Fn(&Progress) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    move |p: &Progress| {
        let limit = p.limit.map(|l| format!("/{l}")).unwrap_or_default();
        bar.set_message(format!(
            "iter {}{limit}  {:.0} exec/s  findings {} ({} new)  restarts {}  denied {}",
            p.iteration, p.exec_per_sec, p.findings, p.new_findings, p.restarts, p.denied
        ));
        bar.tick();
    }
}

/// Runs a campaign.
pub fn run(opts: &FuzzOptions, progress: &dyn Fn(&Progress)) -> Result<FuzzSummary, FuzzError> {
    let target_text = opts.target.describe();
    let (store, _cleanup) = Store::open(&opts.out)?;
    let resumed = if opts.resume { store.load_state()? } else { None };
    if let Some(state) = &resumed {
        if state.target != target_text {
            return Err(FuzzError::ResumeMismatch { saved: state.target.clone(), asked: target_text });
        }
    }
    let seed = resumed.as_ref().map_or(opts.seed, |s| s.seed);
    let mut counters = resumed.as_ref().map(|s| s.counters.clone()).unwrap_or_default();
    let start_iteration = resumed.as_ref().map_or(0, |s| s.iteration);
    let earlier_secs = resumed.as_ref().map_or(0.0, |s| s.elapsed_secs);

    let mut instance = launch(&opts.target)?;
    let version = target_version(&instance, opts.reply_timeout);
    let model = match &opts.model {
        Some(m) => Arc::clone(m),
        None => Arc::new(introspect_model(&instance, &target_text, opts.reply_timeout)?),
    };
    let fuzz_model = fuzzed_model(&model, opts.shard, &opts.skip_commands);
    let validators = Validators::new(&SchemaSet::build(&model, SchemaOptions::default()));
    let rules = gate_rules(&model, opts.unstable_campaign);
    let mut source = CaseSource::new(&fuzz_model, seed, opts.mutate_percent, opts.unstable_campaign);
    source.exclude(&opts.exclude_mutators);
    if source.is_empty() {
        return Err(FuzzError::NoCommands { shard: opts.shard.map_or("all".into(), |s| s.to_string()) });
    }

    let mut live = Live::start(&instance, &opts.out, opts.reply_timeout, &target_text)?;
    let ctx = RunContext { store: &store, target: &target_text, version: &version, seed };
    let started = Instant::now();
    let mut iteration = start_iteration;
    let mut last_progress = Instant::now();
    let state_every = opts.state_every.max(1);
    loop {
        if opts.iterations.is_some_and(|n| iteration >= n)
            || opts.time.is_some_and(|t| started.elapsed() >= t)
        {
            break;
        }
        let step = source.case(iteration);
        counters.iterations += 1;
        match step.mutator() {
            Some(m) => {
                counters.mutated += 1;
                *counters.per_mutator.entry(m.to_string()).or_insert(0) += 1;
            }
            None => counters.generated += 1,
        }
        let step = match gate(&rules, step, instance.scratch_dir()) {
            Gated::Send(step, rewritten) => {
                counters.rewritten += u64::from(rewritten);
                step
            }
            Gated::Denied(rule) => {
                counters.denied += 1;
                *counters.denied_by_rule.entry(rule).or_insert(0) += 1;
                iteration += 1;
                continue;
            }
        };
        live.log_case(iteration, &step)?;
        counters.executed += 1;
        let outcome = live.session.run_step(&step, Some(iteration), Some(&validators));
        live.remember(&step);
        let (restart, recorded) =
            handle_outcome(outcome, &step, iteration, &mut instance, &mut live, &ctx, &mut counters)?;
        if restart {
            drop(live);
            drop(instance);
            counters.restarts += 1;
            (instance, live) = relaunch(&opts.target, &opts.out, opts.reply_timeout)?;
        }
        iteration += 1;
        // After a finding the state is saved at once: a kill later resumes after this case,
        // so the finding's sighting is not recorded a second time.
        if recorded || (iteration - start_iteration) % state_every == 0 {
            store.save_state(&state(
                &counters,
                seed,
                iteration,
                &target_text,
                opts.shard,
                earlier_secs,
                started,
            ))?;
        }
        if last_progress.elapsed() >= Duration::from_millis(100) {
            last_progress = Instant::now();
            progress(&snapshot(&counters, iteration, opts.iterations, started));
        }
    }
    store.save_state(&state(&counters, seed, iteration, &target_text, opts.shard, earlier_secs, started))?;
    progress(&snapshot(&counters, iteration, opts.iterations, started));
    drop(live);
    drop(instance);
    let elapsed = started.elapsed().as_secs_f64();
    let executed_now = counters.executed - resumed.as_ref().map_or(0, |s| s.counters.executed);
    let mut summary = FuzzSummary {
        target: target_text,
        version,
        seed,
        shard: opts.shard.map(|s| s.to_string()),
        duration_secs: elapsed,
        exec_per_sec: if elapsed > 0.0 { executed_now as f64 / elapsed } else { 0.0 },
        counters,
        findings: Vec::new(),
        rules_table: rules.rules_table(),
        report_md: opts.out.join(report::REPORT_MD),
        report_json: opts.out.join(report::REPORT_JSON),
    };
    summary.findings = report::findings_of(&store)?;
    report::write(&summary)?;
    Ok(summary)
}

/// The safety rules of the gate: the built-in rules for this model.
pub fn gate_rules(model: &Spec, unstable_campaign: bool) -> SafetyRules {
    crate::gen::builtin_rules().clone().with_model(model).with_unstable_campaign(unstable_campaign)
}

/// What the gate decided.
pub(crate) enum Gated {
    /// Send this step (rewritten when the flag is set).
    Send(Step, bool),
    /// Never send; the rule ID.
    Denied(String),
}

/// Passes a step's bytes through the last gate; rewrites re-encode the texts.
pub(crate) fn gate(rules: &SafetyRules, step: Step, scratch: &Path) -> Gated {
    match rules.check_bytes(&step.bytes, scratch) {
        Verdict::Allow => Gated::Send(step, false),
        Verdict::Deny { rule_id, .. } => Gated::Denied(rule_id),
        Verdict::Rewrite(value) => {
            // Several texts come back as an array of them; one command as its object.
            let texts = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            let mut bytes = Vec::new();
            for text in &texts {
                bytes.extend(serde_json::to_vec(text).unwrap_or_default());
                bytes.extend_from_slice(b"\r\n");
            }
            Gated::Send(Step { bytes, ..step }, true)
        }
    }
}

/// What one case's outcome leads to: whether the target must be restarted, and whether a
/// finding was recorded.
fn handle_outcome(
    outcome: StepOutcome,
    step: &Step,
    iteration: u64,
    instance: &mut Instance,
    live: &mut Live,
    ctx: &RunContext<'_>,
    counters: &mut Counters,
) -> Result<(bool, bool), FuzzError> {
    let judged = judge(outcome, step, instance);
    match &judged {
        Judged::Fine => counters.fine += 1,
        Judged::Observed { .. } => counters.observations += 1,
        Judged::ExpectedExit => {
            counters.deaths += 1;
            counters.expected_exits += 1;
        }
        Judged::Died { .. } => counters.deaths += 1,
        Judged::Hung { .. } => counters.hangs += 1,
    }
    let restart = judged.restarts();
    let finding = judged.finding();
    let recorded = finding.is_some();
    if let Some((signature, detail)) = finding {
        let record = FindingRecord {
            class: signature.class(),
            command: step.command.clone(),
            detail,
            transcript: live.session.transcript().clone(),
            reproducer: live.history.clone(),
            stderr: instance.stderr(),
            command_line: instance.command_line(),
            context: FindingContext {
                qemu_version: ctx.version.to_string(),
                target: ctx.target.to_string(),
                seed: ctx.seed,
                iteration,
                mutator: step.mutator().map(str::to_string),
            },
            signature,
        };
        match ctx.store.record(&record)? {
            Recorded::New { .. } => counters.new_findings += 1,
            Recorded::Duplicate { .. } => counters.duplicates += 1,
        }
        *counters.findings.entry(record.class.to_string()).or_insert(0) += 1;
    }
    Ok((restart, recorded))
}

/// A step's outcome, judged with the target's exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Judged {
    Fine,
    Observed { signature: Signature, detail: String },
    ExpectedExit,
    Died { signature: Signature, detail: String },
    Hung { signature: Signature, detail: String },
}

impl Judged {
    fn restarts(&self) -> bool {
        matches!(self, Judged::ExpectedExit | Judged::Died { .. } | Judged::Hung { .. })
    }

    /// The finding's signature and detail, when there is one.
    pub(crate) fn finding(&self) -> Option<(Signature, String)> {
        match self {
            Judged::Fine | Judged::ExpectedExit => None,
            Judged::Observed { signature, detail }
            | Judged::Died { signature, detail }
            | Judged::Hung { signature, detail } => Some((signature.clone(), detail.clone())),
        }
    }
}

/// Judges an outcome: a closed connection asks the target how it died; a hang kills it.
/// A successful `quit` is an expected exit; after any other fine step the process is
/// polled once (no wait), so a death right after a reply is charged to its own step.
pub(crate) fn judge(outcome: StepOutcome, step: &Step, instance: &mut Instance) -> Judged {
    match outcome {
        StepOutcome::Fine { returned } if returned && step.command == "quit" => {
            if instance.wait_exit(Duration::from_secs(3)).is_none() {
                instance.kill();
            }
            Judged::ExpectedExit
        }
        StepOutcome::Fine { .. } => match instance.wait_exit(Duration::ZERO) {
            None => Judged::Fine,
            Some(exit) => died(step, Some(exit), instance, "the process ended after its reply"),
        },
        StepOutcome::Observed(obs) => Judged::Observed { signature: obs.signature, detail: obs.detail },
        StepOutcome::Closed { detail } => {
            let exit = instance.wait_exit(Duration::from_secs(3));
            if exit.is_none() {
                instance.kill();
            }
            died(step, exit, instance, &detail)
        }
        StepOutcome::Hang { detail } => {
            instance.kill();
            Judged::Hung { signature: Signature::hang(&step.command), detail }
        }
    }
}

fn died(step: &Step, exit: Option<Exit>, instance: &Instance, detail: &str) -> Judged {
    match classify_death(&step.command, exit, &instance.stderr()) {
        Some(signature) => {
            let how = exit.map_or_else(|| "connection closed".to_string(), |e| e.to_string());
            Judged::Died { signature, detail: format!("{how} after {}: {detail}", step.command) }
        }
        None => Judged::ExpectedExit,
    }
}

/// The signature of a death, or `None` for an expected exit (exit code 0, or the
/// connection closed after `quit`).
pub fn classify_death(command: &str, exit: Option<Exit>, stderr: &str) -> Option<Signature> {
    match exit {
        Some(Exit::Code(0)) => None,
        None if command == "quit" => None,
        Some(Exit::Signal { signal, .. }) if signal == nix::sys::signal::Signal::SIGSYS as i32 => {
            Some(Signature::sandbox_leak(command))
        }
        Some(Exit::Signal { signal, .. }) => {
            let name = nix::sys::signal::Signal::try_from(signal).map(|s| s.as_str()).unwrap_or("signal");
            Some(Signature::crash_by_signal(command, name, stderr))
        }
        Some(Exit::Code(code)) => Some(Signature::crash(command, &format!("exit {code}"), stderr)),
        None => Some(Signature::crash(command, "connection closed", stderr)),
    }
}

struct RunContext<'a> {
    store: &'a Store,
    target: &'a str,
    version: &'a str,
    seed: u64,
}

/// A live session: the negotiated connection, its steps and the case log.
struct Live {
    session: Session,
    history: Vec<Step>,
    history_bytes: usize,
    log: File,
    log_path: PathBuf,
}

impl Live {
    fn start(instance: &Instance, out: &Path, timeout: Duration, target: &str) -> Result<Live, FuzzError> {
        let session = Session::open(instance, timeout)
            .map_err(|source| FuzzError::Target { target: target.to_string(), source: Box::new(source) })?;
        let path = out.join(CASE_LOG);
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| FuzzError::Io { path: path.clone(), source })?;
        Ok(Live { session, history: Vec::new(), history_bytes: 0, log, log_path: path })
    }

    /// Keeps a sent step for reproducers, within [`HISTORY_LIMIT`] and [`HISTORY_BYTES`].
    fn remember(&mut self, step: &Step) {
        self.history_bytes += step.bytes.len();
        self.history.push(step.clone());
        while self.history.len() > 1
            && (self.history.len() > HISTORY_LIMIT || self.history_bytes > HISTORY_BYTES)
        {
            let old = self.history.remove(0);
            self.history_bytes -= old.bytes.len();
        }
    }

    /// Appends the case to the case log (one JSON line) before it is sent.
    fn log_case(&mut self, iteration: u64, step: &Step) -> Result<(), FuzzError> {
        let (key, value) = bytes_field(&step.bytes);
        let mut line = json!({"iteration": iteration, "command": step.command});
        if let Some(m) = step.mutator() {
            line["mutator"] = json!(m);
        }
        line[key] = json!(value);
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        self.log.write_all(&bytes).map_err(|source| FuzzError::Io { path: self.log_path.clone(), source })
    }
}

/// A fresh target and session after a death or hang; a start that fails is tried again
/// (up to [`START_ATTEMPTS`] times) before the campaign gives up.
fn relaunch(target: &FuzzTarget, out: &Path, timeout: Duration) -> Result<(Instance, Live), FuzzError> {
    let mut attempt = 1;
    loop {
        let started = launch(target).and_then(|instance| {
            Live::start(&instance, out, timeout, &target.describe()).map(|live| (instance, live))
        });
        match started {
            Ok(pair) => return Ok(pair),
            Err(e) if attempt >= START_ATTEMPTS => return Err(e),
            Err(_) => attempt += 1,
        }
    }
}

/// Starts tried per restart.
pub const START_ATTEMPTS: u32 = 3;

fn launch(target: &FuzzTarget) -> Result<Instance, FuzzError> {
    Instance::launch(target)
        .map_err(|source| FuzzError::Target { target: target.describe(), source: Box::new(source) })
}

/// The model with only the shard's commands, minus the skipped ones.
fn fuzzed_model(model: &Arc<Spec>, shard: Option<Shard>, skip: &[String]) -> Arc<Spec> {
    if shard.is_none() && skip.is_empty() {
        return Arc::clone(model);
    }
    let mut spec = (**model).clone();
    spec.commands.retain(|name, _| shard.map_or(true, |s| s.contains(name)) && !skip.contains(name));
    Arc::new(spec)
}

/// The target's version from `query-version` on a short-lived connection.
fn target_version(instance: &Instance, timeout: Duration) -> String {
    let config = crate::wire::ClientConfig { read_timeout: timeout, ..Default::default() };
    let Ok(client) = instance.connect(config) else { return "unknown".into() };
    let version = client.greeting().map(|g| g.version.qemu.to_string()).unwrap_or_else(|| "unknown".into());
    let _ = client.shutdown();
    version
}

/// The model of a live target (`query-qmp-schema`).
fn introspect_model(instance: &Instance, target: &str, timeout: Duration) -> Result<Spec, FuzzError> {
    let err = |detail: String| FuzzError::Introspect { target: target.to_string(), detail };
    let config = crate::wire::ClientConfig {
        read_timeout: timeout.max(Duration::from_secs(10)),
        ..Default::default()
    };
    let mut client = instance.connect(config).map_err(|e| err(e.to_string()))?;
    crate::target::qemu::expect_return(&mut client, "qmp_capabilities", None)
        .map_err(|e| err(e.to_string()))?;
    let schema = crate::target::qemu::expect_return(&mut client, "query-qmp-schema", None)
        .map_err(|e| err(e.to_string()))?;
    let _ = client.shutdown();
    Ok(crate::spec::introspect::parse(&schema.to_string(), target))
}

fn state(
    counters: &Counters,
    seed: u64,
    iteration: u64,
    target: &str,
    shard: Option<Shard>,
    earlier_secs: f64,
    started: Instant,
) -> CampaignState {
    CampaignState {
        seed,
        iteration,
        counters: counters.clone(),
        target: target.to_string(),
        shard: shard.map(|s| s.to_string()),
        elapsed_secs: earlier_secs + started.elapsed().as_secs_f64(),
    }
}

fn snapshot(counters: &Counters, iteration: u64, limit: Option<u64>, started: Instant) -> Progress {
    let elapsed = started.elapsed();
    let secs = elapsed.as_secs_f64();
    Progress {
        iteration,
        limit,
        exec_per_sec: if secs > 0.0 { counters.executed as f64 / secs } else { 0.0 },
        findings: counters.findings_total(),
        new_findings: counters.new_findings,
        restarts: counters.restarts,
        denied: counters.denied,
        elapsed,
    }
}

/// Cases of a campaign: generated commands, some of them mutated, deterministic in
/// (seed, iteration).
pub struct CaseSource<'a> {
    spec: &'a Spec,
    seed: u64,
    mutate_percent: u8,
    unstable_campaign: bool,
    generator: crate::gen::Generator<'a>,
    rng: SplitMix64,
    excluded: Vec<String>,
    /// The iteration the generator would draw next.
    next: u64,
}

impl std::fmt::Debug for CaseSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseSource")
            .field("seed", &self.seed)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<'a> CaseSource<'a> {
    /// A source over `spec` (the commands to fuzz).
    pub fn new(spec: &'a Spec, seed: u64, mutate_percent: u8, unstable_campaign: bool) -> CaseSource<'a> {
        let (generator, rng) = block_generators(spec, seed, 0, unstable_campaign);
        CaseSource {
            spec,
            seed,
            mutate_percent,
            unstable_campaign,
            generator,
            rng,
            excluded: Vec::new(),
            next: 0,
        }
    }

    /// Leaves these mutators out (their cases go unmutated).
    pub fn exclude(&mut self, mutators: &[String]) {
        self.excluded = mutators.to_vec();
    }

    /// Whether the generator has no command to draw.
    pub fn is_empty(&self) -> bool {
        self.generator.eligible().is_empty()
    }

    /// The case of `iteration` (any order; in order is fastest).
    pub fn case(&mut self, iteration: u64) -> Step {
        let block = iteration / BLOCK;
        if iteration != self.next || (iteration % BLOCK == 0 && iteration != 0) {
            let (generator, rng) = block_generators(self.spec, self.seed, block, self.unstable_campaign);
            self.generator = generator;
            self.rng = rng;
            self.next = block * BLOCK;
            while self.next < iteration {
                let _ = self.draw(self.next);
                self.next += 1;
            }
        }
        self.next = iteration + 1;
        self.draw(iteration)
    }

    fn draw(&mut self, iteration: u64) -> Step {
        let command = self.generator.next_command();
        let mutate = crate::gen::ChoiceSource::up_to(&mut self.rng, 99) < u64::from(self.mutate_percent);
        let mutated = mutate.then(|| mutate_any(self.spec, &command, &mut self.rng));
        if let Some(mutated) = mutated.filter(|m| !self.excluded.iter().any(|e| e == m.mutator.name())) {
            let expect = match mutated.expect {
                Expectation::Rejected | Expectation::ParseErrorThenSurvive => Expect::Error,
                Expectation::Accepted => Expect::Any,
            };
            Step {
                command: command.name,
                origin: Origin::Mutated { mutator: mutated.mutator.name().to_string(), expect },
                bytes: mutated.bytes,
            }
        } else {
            let id = json!(format!("fuzz-{iteration}"));
            let bytes = command_bytes(&command.name, Some(&command.arguments), &id);
            Step { command: command.name, origin: Origin::Generated { id }, bytes }
        }
    }
}

fn block_generators(
    spec: &Spec,
    seed: u64,
    block: u64,
    unstable_campaign: bool,
) -> (crate::gen::Generator<'_>, SplitMix64) {
    let mut mix = SplitMix64::new(seed ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let gen_seed = mix.next_u64();
    let rng_seed = mix.next_u64();
    let config = GeneratorConfig { unstable_campaign, ..GeneratorConfig::default() };
    let rules = crate::gen::builtin_rules().clone();
    (crate::gen::Generator::with_config(spec, gen_seed, rules, config), SplitMix64::new(rng_seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deaths_are_classified_by_exit() {
        let abort = "qemu-system-x86_64: ../qom/object.c:1016: f: Assertion `x' failed.\n";
        let sig = |exit, command: &str, stderr: &str| classify_death(command, exit, stderr).map(|s| s.text());
        assert_eq!(sig(Some(Exit::Code(0)), "stop", ""), None);
        assert_eq!(sig(None, "quit", ""), None);
        assert_eq!(
            sig(Some(Exit::Signal { signal: 31, core_dumped: false }), "migrate", abort),
            Some("sandbox-leak:migrate:SIGSYS".to_string())
        );
        assert_eq!(
            sig(Some(Exit::Signal { signal: 6, core_dumped: true }), "device_add", abort),
            Some(
                "crash:device_add:SIGABRT qemu-system-xN_N: ../qom/object.c:N: f: Assertion `x' failed."
                    .to_string()
            )
        );
        assert_eq!(sig(Some(Exit::Code(1)), "stop", ""), Some("crash:stop:exit 1".to_string()));
        assert_eq!(sig(None, "stop", ""), Some("crash:stop:connection closed".to_string()));
    }
}
