//! The runner: starts the target, learns its model, then runs every case (a fresh connection
//! each; a fresh target for `isolate` cases) and one generated check per command.
//!
//! The generated check calls every command of the target's own model that needs no
//! arguments and is not on the skip list, validates the reply with the compiled schema of
//! its return (rule C3; `strict` also rejects members the model does not list) or, for an
//! error, checks its class (C4), and validates every event met on the way (E1).
//! A target that dies mid-run ends the run with [`ConformError::TargetDied`], which keeps
//! the results checked so far.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::case::{builtin_cases, Case, CaseLoadError, ERROR_CLASSES};
use super::exec::run_case;
use super::result::{escape_bytes, CaseResult, ConformRun, Evidence, Outcome, ResultKind, Shard, TargetInfo};
use super::rule::Rule;
use super::skip::SkipList;
use crate::check::schema::{SchemaOptions, SchemaSet, Validators};
use crate::spec::Spec;
use crate::target::emulator::{serve, EmulatorConfig, ServerHandle};
use crate::target::{Qemu, Target, TargetError};
use crate::wire::{Client, ClientConfig, Greeting, Reply, Stray};

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
    /// The shipped cases and skip list, generated checks on, not strict, 10 s timeout.
    pub fn builtin() -> Result<ConformOptions, CaseLoadError> {
        Ok(ConformOptions {
            cases: builtin_cases()?,
            skip: SkipList::builtin()?,
            commands: true,
            strict: false,
            shard: None,
            timeout: Duration::from_secs(10),
            fresh_target_per_case: false,
        })
    }
}

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
        let (rule, kind, name, outcome) = match item {
            Item::Case(case) => {
                let outcome =
                    run_one_case(case, index, target, &mut main, &greeting, &model, opts, &validators)?;
                (case.rule, ResultKind::Case, case.description.clone(), outcome)
            }
            Item::Command(name) => {
                let outcome = check_command(name, &model, opts, &main, &mut commands_client, &validators);
                (Rule::C3, ResultKind::Command, name.clone(), outcome)
            }
        };
        let result = CaseResult { index, id, rule, kind, name, outcome, duration: t0.elapsed() };
        progress(&result);
        run.results.push(result);
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
    let mut notes = vec![format!("strict: {}", opts.strict), format!("timeout: {:?}", opts.timeout)];
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

/// The generated check of one command.
fn check_command(
    name: &str,
    model: &Spec,
    opts: &ConformOptions,
    main: &Live,
    client: &mut Option<Client>,
    validators: &Validators,
) -> Outcome {
    if let Some(entry) = opts.skip.find(name) {
        return Outcome::Skip { reason: format!("skip list ({}): {}", entry.pattern, entry.reason) };
    }
    let Some(command) = model.commands.get(name) else {
        return Outcome::Skip { reason: "not in the model".into() };
    };
    let mandatory: Vec<&str> =
        model.command_args(command).into_iter().filter(|m| !m.optional).map(|m| m.name.as_str()).collect();
    if !mandatory.is_empty() {
        return Outcome::Skip { reason: format!("needs arguments: {}", mandatory.join(", ")) };
    }
    let request = json!({"execute": name, "id": format!("command:{name}")});
    let request_text = request.to_string();
    if client.is_none() {
        match connect_negotiated(main.socket(), opts.timeout) {
            Ok(c) => *client = Some(c),
            Err(e) => return fail(&request_text, &e, "a connection that negotiates (S3)"),
        }
    }
    let Some(connected) = client.as_mut() else {
        return fail(&request_text, "(no connection)", "a connection that negotiates (S3)");
    };
    let reply = connected.execute_with_id(name, None, json!(format!("command:{name}")));
    let events = connected.take_events();
    let strays = connected.take_strays();
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => {
            // Whatever broke, the next command gets a new connection.
            *client = None;
            return fail(&request_text, &e.to_string(), "exactly one reply with the id echoed (C6)");
        }
    };
    let reply_text = reply_to_text(&reply);
    if let Some(stray) = strays.first() {
        let what = match stray {
            Stray::Message(m) => escape_bytes(&m.raw, 400),
            Stray::Decode(e) => e.to_string(),
        };
        return fail(
            &request_text,
            &format!("{reply_text}\n(also received: {what})"),
            "only the reply and events (W5/C6)",
        );
    }
    for event in &events {
        let data = event.data.clone().unwrap_or_else(|| json!({}));
        if let Err(v) = validators.validate_event(&event.event, &data) {
            let list: Vec<String> = v.iter().map(|v| v.to_string()).collect();
            let expected =
                format!("event {} data valid by its schema (E1): {}", event.event, list.join("; "));
            return fail(&request_text, &reply_text, &expected);
        }
    }
    match &reply {
        Reply::Return { value, .. } => match validators.validate_return(name, value) {
            Ok(()) => Outcome::Pass,
            Err(v) => {
                let list: Vec<String> = v.iter().map(|v| v.to_string()).collect();
                let mode = if opts.strict { "strict" } else { "open" };
                let expected =
                    format!("return valid by the {mode} schema of {name} (C3): {}", list.join("; "));
                fail(&request_text, &reply_text, &expected)
            }
        },
        Reply::Error { class, .. } if ERROR_CLASSES.contains(&class.as_str()) => Outcome::Pass,
        Reply::Error { class, .. } => fail(
            &request_text,
            &reply_text,
            &format!("error class one of {} (C4), got {class}", ERROR_CLASSES.join(", ")),
        ),
    }
}

fn fail(request: &str, reply: &str, expected: &str) -> Outcome {
    Outcome::Fail {
        evidence: Evidence {
            request: request.to_string(),
            reply: reply.to_string(),
            expected: expected.to_string(),
        },
    }
}

fn reply_to_text(reply: &Reply) -> String {
    let value = match reply {
        Reply::Return { value, id } => json!({"return": value, "id": id}),
        Reply::Error { class, desc, id } => json!({"error": {"class": class, "desc": desc}, "id": id}),
    };
    let text = value.to_string();
    escape_bytes(text.as_bytes(), 1500)
}

fn connect_negotiated(socket: &Path, timeout: Duration) -> Result<Client, String> {
    let config = ClientConfig { read_timeout: timeout, connect_timeout: timeout, ..ClientConfig::default() };
    let mut client = Client::connect(socket, config).map_err(|e| e.to_string())?;
    match client.negotiate(&[]).map_err(|e| e.to_string())? {
        Reply::Return { .. } => Ok(client),
        Reply::Error { class, desc, .. } => Err(format!("qmp_capabilities failed: {class}: {desc}")),
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
