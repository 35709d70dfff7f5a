//! The runner: starts the target, learns its model, then runs every case (a fresh connection
//! each; a fresh target for `isolate` cases) and one generated check per command
//! ([`super::generated`]: seeded arguments, create → use → delete sequences, the safety
//! rules as the last gate before sending).
//!
//! A target that dies during a case ends the run with [`ConformError::TargetDied`], which
//! keeps the results checked so far. A target that dies or stops answering during a
//! generated command check fails that check with the evidence (exit status, stderr), is
//! restarted, and the run goes on; the restart is named in the run's notes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::case::{builtin_cases, Case, CaseLoadError};
use super::exec::run_case;
use super::generated::{connect_negotiated, execute, plan, Checked, Exec, Plan, PlannedStep, StepRole};
use super::result::{CaseResult, CommandNote, ConformRun, Evidence, Outcome, ResultKind, Shard, TargetInfo};
use super::rule::Rule;
use super::skip::SkipList;
use crate::check::schema::{SchemaOptions, SchemaSet, Validators};
use crate::gen::SafetyRules;
use crate::spec::Spec;
use crate::target::emulator::{serve, EmulatorConfig, ServerHandle};
use crate::target::{Qemu, Target, TargetError};
use crate::wire::{Client, Greeting, Reply};

/// What to run against.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// Real QEMU (`qemu-system-x86_64` or `qemu-storage-daemon`), launched sandboxed.
    Qemu(Target),
    /// The emulator serving `model` in-process on a socket in a temporary dir.
    Emulated {
        /// The model it serves (and the generated checks use).
        model: Arc<Spec>,
        /// Its behaviour (version, capabilities, faults).
        config: EmulatorConfig,
    },
}

impl TargetSpec {
    /// `qemu:PATH`, `storage-daemon:PATH` or `emulated`.
    pub fn describe(&self) -> String {
        match self {
            TargetSpec::Qemu(t) => match t.kind {
                crate::target::Binary::SystemX86 => format!("qemu:{}", t.path.display()),
                crate::target::Binary::StorageDaemon => format!("storage-daemon:{}", t.path.display()),
            },
            TargetSpec::Emulated { .. } => "emulated".into(),
        }
    }
}

/// How a run is done.
#[derive(Debug, Clone)]
pub struct ConformOptions {
    /// The cases to run, in order.
    pub cases: Vec<Case>,
    /// Commands the generated check never calls.
    pub skip: SkipList,
    /// Seed of the generated arguments (with the command name: the same in every shard).
    pub seed: u64,
    /// Run the generated per-command checks.
    pub commands: bool,
    /// Reject return members the model does not list.
    pub strict: bool,
    /// Run only this shard of the combined list.
    pub shard: Option<Shard>,
    /// Longest wait of one expectation or one command.
    pub timeout: Duration,
    /// Start a fresh target for every case, not only for `isolate` ones.
    pub fresh_target_per_case: bool,
}

impl ConformOptions {
    /// The shipped cases and skip list, generated checks on (seed [`DEFAULT_SEED`]), not
    /// strict, 10 s timeout.
    pub fn builtin() -> Result<ConformOptions, CaseLoadError> {
        Ok(ConformOptions {
            cases: builtin_cases()?,
            skip: SkipList::builtin()?,
            seed: DEFAULT_SEED,
            commands: true,
            strict: false,
            shard: None,
            timeout: Duration::from_secs(10),
            fresh_target_per_case: false,
        })
    }
}

/// The seed of generated arguments unless the caller gives another.
pub const DEFAULT_SEED: u64 = 1;

/// How long a target that broke a connection gets to exit before it is probed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Why a run could not be done (or had to stop).
#[derive(Debug, thiserror::Error)]
pub enum ConformError {
    /// QEMU could not be started.
    #[error("cannot start {target}: {source}")]
    Start {
        /// The target.
        target: String,
        /// Why.
        source: TargetError,
    },
    /// The emulator could not be started.
    #[error("cannot start the emulator: {0}")]
    Emulator(#[source] std::io::Error),
    /// The target started but the first exchange (greeting, negotiation, introspection) failed.
    #[error("{target}: {what}: {detail}")]
    Handshake {
        /// The target.
        target: String,
        /// Which step.
        what: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The target died during the run; `run` holds every result checked until then.
    #[error("{}: target died during the run ({}); {} results kept", run.target.description, reason, run.results.len())]
    TargetDied {
        /// How it died.
        reason: String,
        /// The partial run (`interrupted` is set).
        run: Box<ConformRun>,
    },
}

/// One item of the combined list.
enum Item<'a> {
    Case(&'a Case),
    Command(String),
}

impl Item<'_> {
    fn id(&self) -> String {
        match self {
            Item::Case(c) => c.id.clone(),
            Item::Command(name) => format!("command:{name}"),
        }
    }
}

/// Runs every case and command check (of the shard) against `target`, calling `progress`
/// with each result as it is known.
pub fn run(
    target: &TargetSpec,
    opts: &ConformOptions,
    progress: &dyn Fn(&CaseResult),
) -> Result<ConformRun, ConformError> {
    let started = Instant::now();
    let description = target.describe();
    let mut main = Live::start(target)?;
    let (greeting, model) = handshake(&main, target, opts.timeout)?;
    let schemas = SchemaSet::build(&model, SchemaOptions { strict: opts.strict });
    let validators = Validators::new(&schemas);
    let rules = SafetyRules::load_builtin().with_model(&model);
    let info = TargetInfo {
        description: description.clone(),
        version: Some(greeting.version.qemu.to_string()),
        package: Some(greeting.version.package.clone()),
        capabilities: greeting.capabilities.clone(),
    };
    let mut items: Vec<Item> = opts.cases.iter().map(Item::Case).collect();
    if opts.commands {
        items.extend(model.commands.keys().map(|name| Item::Command(name.clone())));
    }
    let mut run = ConformRun {
        target: info,
        results: Vec::new(),
        wall_time: Duration::ZERO,
        shard: opts.shard,
        interrupted: None,
        notes: notes(opts),
    };
    let mut commands_client: Option<Client> = None;
    for (index, item) in items.iter().enumerate() {
        let id = item.id();
        if opts.shard.is_some_and(|s| !s.contains(&id)) {
            continue;
        }
        let t0 = Instant::now();
        let (rule, kind, name, outcome, call, broken) = match item {
            Item::Case(case) => {
                let outcome =
                    run_one_case(case, index, target, &mut main, &greeting, &model, opts, &validators)?;
                (case.rule, ResultKind::Case, case.description.clone(), outcome, None, None)
            }
            Item::Command(name) => {
                let env = CommandEnv { model: &model, rules: &rules, validators: &validators, opts };
                let (checked, broken) = match main.died() {
                    Some(reason) => dead_before(name, &reason),
                    None => check_command(name, index, &env, target, &mut main, &mut commands_client),
                };
                (Rule::C3, ResultKind::Command, name.clone(), checked.outcome, Some(checked.note), broken)
            }
        };
        let result = CaseResult { index, id, rule, kind, name, outcome, duration: t0.elapsed(), call };
        progress(&result);
        run.results.push(result);
        if let Some(why) = broken {
            // Only command checks restart the target; the next one reconnects.
            commands_client = None;
            run.notes.push(format!("target restarted after {}: {why}", item.id()));
            if let Err(e) = main.restart(target) {
                run.wall_time = started.elapsed();
                let reason = format!("{why}; restarting it failed: {e}");
                run.interrupted = Some(reason.clone());
                return Err(ConformError::TargetDied { reason, run: Box::new(run) });
            }
            continue;
        }
        if !matches!(item, Item::Case(_)) {
            continue;
        }
        if let Some(reason) = main.died() {
            run.wall_time = started.elapsed();
            run.interrupted = Some(reason.clone());
            return Err(ConformError::TargetDied { reason, run: Box::new(run) });
        }
    }
    run.wall_time = started.elapsed();
    Ok(run)
}

fn notes(opts: &ConformOptions) -> Vec<String> {
    let mut notes = vec![
        format!("strict: {}", opts.strict),
        format!("timeout: {:?}", opts.timeout),
        format!("seed of generated arguments: {}", opts.seed),
    ];
    if let Some(shard) = opts.shard {
        notes.push(format!("shard: {shard}"));
    }
    notes
}

/// Runs one case: skip when unmet preconditions, else on the main target or a fresh one.
#[allow(clippy::too_many_arguments)]
fn run_one_case(
    case: &Case,
    index: usize,
    target: &TargetSpec,
    main: &mut Live,
    greeting: &Greeting,
    model: &Spec,
    opts: &ConformOptions,
    validators: &Validators,
) -> Result<Outcome, ConformError> {
    let missing_caps: Vec<&str> = case
        .setup
        .requires_capabilities
        .iter()
        .filter(|c| !greeting.capabilities.contains(c))
        .map(String::as_str)
        .collect();
    if !missing_caps.is_empty() {
        return Ok(Outcome::Skip {
            reason: format!("the greeting does not offer {}", missing_caps.join(", ")),
        });
    }
    let missing_commands: Vec<&str> = case
        .setup
        .requires_commands
        .iter()
        .filter(|c| !model.commands.contains_key(c.as_str()))
        .map(String::as_str)
        .collect();
    if !missing_commands.is_empty() {
        return Ok(Outcome::Skip { reason: format!("the target has no {}", missing_commands.join(", ")) });
    }
    if case.isolate || opts.fresh_target_per_case {
        let mut own = Live::start(&own_target(target, index))?;
        let outcome = run_case(case, own.socket(), opts.timeout, validators);
        return Ok(with_death(outcome, own.died()));
    }
    let outcome = run_case(case, main.socket(), opts.timeout, validators);
    Ok(with_death(outcome, main.died()))
}

/// The target of an isolated case: the same, in a scratch dir of its own when the caller
/// gave one (two QEMUs must never share a socket path).
fn own_target(target: &TargetSpec, index: usize) -> TargetSpec {
    match target {
        TargetSpec::Qemu(t) => {
            let mut t = t.clone();
            t.scratch = t.scratch.map(|dir| dir.join(format!("case-{index}")));
            TargetSpec::Qemu(t)
        }
        other => other.clone(),
    }
}

/// A target death during a case is a failure of that case, whatever it expected.
fn with_death(outcome: Outcome, death: Option<String>) -> Outcome {
    let Some(reason) = death else { return outcome };
    let mut evidence = match outcome {
        Outcome::Fail { evidence } => evidence,
        _ => Evidence { request: String::new(), reply: String::new(), expected: String::new() },
    };
    evidence.expected = format!("the target keeps running (it died: {reason}); {}", evidence.expected);
    Outcome::Fail { evidence }
}

/// What every generated command check reads.
struct CommandEnv<'a> {
    model: &'a Spec,
    rules: &'a SafetyRules,
    validators: &'a Validators,
    opts: &'a ConformOptions,
}

/// The generated check of one command, and why the target must be restarted after it
/// (it died or stops answering), if it must.
fn check_command(
    name: &str,
    index: usize,
    env: &CommandEnv,
    target: &TargetSpec,
    main: &mut Live,
    client: &mut Option<Client>,
) -> (Checked, Option<String>) {
    let steps = match plan(env.model, env.rules, &env.opts.skip, name, env.opts.seed, index) {
        Plan::Skip { group, reason } => {
            let checked = Checked {
                outcome: Outcome::Skip { reason },
                note: CommandNote::Skipped { group },
                wire_error: false,
            };
            return (checked, None);
        }
        Plan::Call(steps) => steps,
    };
    if env.opts.skip.isolates(name).is_some() {
        // A target of its own, dropped afterwards: what the command leaves behind (or a
        // death) touches no other check, so no restart of the main target either.
        let mut own = match Live::start(&own_target(target, index)) {
            Ok(own) => own,
            Err(e) => {
                let evidence = Evidence {
                    request: "(nothing sent)".into(),
                    reply: e.to_string(),
                    expected: "a target of its own for an isolated command check".into(),
                };
                let note = CommandNote::Failed { arguments: Value::Null, steps: Vec::new() };
                return (Checked { outcome: Outcome::Fail { evidence }, note, wire_error: false }, None);
            }
        };
        let (mut checked, _) = send_steps(name, &steps, env, &mut own, &mut None);
        if let CommandNote::Accepted { steps, .. } | CommandNote::Rejected { steps, .. } = &mut checked.note {
            steps.insert(0, "(on a target of its own)".into());
        }
        return (checked, None);
    }
    send_steps(name, &steps, env, main, client)
}

/// Sends the planned steps to `main` and judges them; a death or hang fails the check.
fn send_steps(
    name: &str,
    steps: &[PlannedStep],
    env: &CommandEnv,
    main: &mut Live,
    client: &mut Option<Client>,
) -> (Checked, Option<String>) {
    let exec = Exec {
        socket: main.socket(),
        scratch: main.scratch(),
        rules: env.rules,
        validators: env.validators,
        timeout: env.opts.timeout,
        strict: env.opts.strict,
    };
    let mut checked = execute(name, steps, client, &exec);
    let broken = breakage(main, checked.wire_error, env.opts.timeout);
    if let Some(why) = &broken {
        *client = None;
        let mut evidence = match checked.outcome {
            Outcome::Fail { evidence } => evidence,
            _ => Evidence { request: String::new(), reply: String::new(), expected: String::new() },
        };
        evidence.expected =
            format!("the target keeps running and answering (it {why}); {}", evidence.expected);
        checked.outcome = Outcome::Fail { evidence };
        if !matches!(checked.note, CommandNote::Failed { .. }) {
            let arguments = steps
                .iter()
                .find(|s| s.role == StepRole::UnderTest)
                .map(|s| s.command.arguments.clone())
                .unwrap_or(Value::Null);
            checked.note = CommandNote::Failed { arguments, steps: Vec::new() };
        }
    }
    (checked, broken)
}

/// The check of a command the target died before (after the previous check ended): a
/// failure naming the death, and the restart it calls for.
fn dead_before(name: &str, reason: &str) -> (Checked, Option<String>) {
    let evidence = Evidence {
        request: "(nothing sent)".into(),
        reply: "(nothing)".into(),
        expected: format!(
            "the target is alive when the check of {name} starts; it died after the previous check: {reason}"
        ),
    };
    let checked = Checked {
        outcome: Outcome::Fail { evidence },
        note: CommandNote::Failed { arguments: Value::Null, steps: Vec::new() },
        wire_error: false,
    };
    (checked, Some(format!("died before the check of {name}: {reason}")))
}

/// Why the target cannot go on after a command check: it died, or (after a broken or
/// timed-out exchange) it does not answer a fresh connection.
fn breakage(main: &mut Live, wire_error: bool, timeout: Duration) -> Option<String> {
    if let Some(reason) = main.died() {
        return Some(format!("died: {reason}"));
    }
    if !wire_error {
        return None;
    }
    if let Some(reason) = main.died_within(EXIT_GRACE) {
        return Some(format!("died: {reason}"));
    }
    let probe = connect_negotiated(main.socket(), timeout)
        .and_then(|mut c| c.execute("query-version", None).map_err(|e| e.to_string()));
    match probe {
        Ok(_) => None,
        Err(e) => Some(format!("hangs: a fresh connection gets no answer to query-version ({e})")),
    }
}

/// Greeting and model of the main target.
fn handshake(
    main: &Live,
    target: &TargetSpec,
    timeout: Duration,
) -> Result<(Greeting, Arc<Spec>), ConformError> {
    let name = target.describe();
    let err = |what, detail: String| ConformError::Handshake { target: name.clone(), what, detail };
    let mut client =
        connect_negotiated(main.socket(), timeout).map_err(|e| err("connect and negotiate", e))?;
    let greeting = client.greeting().cloned().ok_or_else(|| err("greeting", "none read".into()))?;
    let model = match target {
        TargetSpec::Emulated { model, .. } => Arc::clone(model),
        TargetSpec::Qemu(_) => {
            let schema = match client.execute("query-qmp-schema", None) {
                Ok(Reply::Return { value, .. }) => value,
                Ok(Reply::Error { class, desc, .. }) => {
                    return Err(err("query-qmp-schema", format!("{class}: {desc}")))
                }
                Err(e) => return Err(err("query-qmp-schema", e.to_string())),
            };
            let text = Value::Array(schema.as_array().cloned().unwrap_or_default()).to_string();
            Arc::new(crate::spec::introspect::parse(&text, &name))
        }
    };
    let _ = client.shutdown();
    Ok((greeting, model))
}

/// A running target.
enum Live {
    Qemu(Box<Qemu>),
    Emulated { handle: Option<ServerHandle>, socket: PathBuf, _dir: tempfile::TempDir },
}

impl Live {
    fn start(target: &TargetSpec) -> Result<Live, ConformError> {
        match target {
            TargetSpec::Qemu(t) => Qemu::launch(t)
                .map(|q| Live::Qemu(Box::new(q)))
                .map_err(|source| ConformError::Start { target: target.describe(), source }),
            TargetSpec::Emulated { model, config } => {
                let dir = tempfile::Builder::new()
                    .prefix("qmpcheck-emu")
                    .tempdir()
                    .map_err(ConformError::Emulator)?;
                let socket = dir.path().join("qmp.sock");
                let handle =
                    serve(&socket, Arc::clone(model), config.clone()).map_err(ConformError::Emulator)?;
                Ok(Live::Emulated { handle: Some(handle), socket, _dir: dir })
            }
        }
    }

    fn socket(&self) -> &Path {
        match self {
            Live::Qemu(q) => q.socket(),
            Live::Emulated { socket, .. } => socket,
        }
    }

    /// The scratch dir the last safety gate checks paths against.
    fn scratch(&self) -> Option<&Path> {
        match self {
            Live::Qemu(q) => Some(q.scratch_dir()),
            Live::Emulated { _dir, .. } => Some(_dir.path()),
        }
    }

    /// Waits up to `grace` for the target to exit; how it died, if it did.
    fn died_within(&mut self, grace: Duration) -> Option<String> {
        let deadline = Instant::now() + grace;
        loop {
            if let Some(reason) = self.died() {
                return Some(reason);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops this target (SIGKILL for QEMU) and starts a fresh one in its place.
    fn restart(&mut self, target: &TargetSpec) -> Result<(), ConformError> {
        if let Live::Qemu(q) = self {
            let _ = q.kill(nix::sys::signal::Signal::SIGKILL);
            let _ = q.wait_exit(EXIT_GRACE);
        }
        let fresh = Live::start(target)?;
        *self = fresh;
        Ok(())
    }

    /// How the target died, if it has.
    fn died(&mut self) -> Option<String> {
        match self {
            Live::Qemu(q) => match q.try_exit() {
                Ok(Some(exit)) => {
                    let stderr = q.stderr();
                    let stderr = stderr.trim();
                    Some(if stderr.is_empty() {
                        exit.to_string()
                    } else {
                        format!("{exit}; stderr: {stderr}")
                    })
                }
                Ok(None) => None,
                Err(e) => Some(e.to_string()),
            },
            Live::Emulated { handle, .. } => handle.is_none().then(|| "emulator stopped".to_string()),
        }
    }
}
