//! Running one step on a negotiated session and classifying what came back.
//!
//! The campaign, replay and minimize all run steps through [`Session::run_step`], so a
//! reproducer is judged exactly as the campaign judged it.
//!
//! - A generated step carries an `id`; its reply is awaited by that id (structurally).
//! - A mutated step is followed by `0xFF` (QEMU's lexer resets on it, W3) and a sentinel
//!   command with a fresh known `id`; everything up to the sentinel's reply belongs to the
//!   step. Replies are never counted: after over-limit input QEMU floods id-less errors.
//! - When a reply is lost (garbled) or arrives without the id, a sentinel resynchronises.
//!
//! Outcomes: fine; an observation (violation or unexpected success, the session lives on);
//! the connection closed (the caller asks the target how it died); or a hang (no message
//! for the timeout while a reply was due).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::signature::Signature;
use super::transcript::{Expect, Origin, Step, Transcript};
use crate::check::schema::Validators;
use crate::conform::case::ERROR_CLASSES;
use crate::wire::{Client, ClientConfig, DecodeError, Incoming, Message, Reply, WireError};

use super::instance::{Instance, InstanceError};

/// The command the sentinel runs (every QMP server has it).
pub const SENTINEL_COMMAND: &str = "query-version";
/// Prefix of the sentinel ids (`qmpcheck-sentinel-N`).
pub const SENTINEL_PREFIX: &str = "qmpcheck-sentinel-";
/// The byte sent before a sentinel after mutated input: a lexical error resets the parser.
pub const RESET_BYTE: u8 = 0xFF;
/// Longest the negotiation may stay silent, whatever the reply timeout.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a step may take in all, as a multiple of the reply timeout (a flood of id-less
/// errors is read to its end, but not forever).
const STEP_BUDGET: u32 = 20;

/// Something wrong with a reply, found while the session lives on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Its signature.
    pub signature: Signature,
    /// What was seen, one line.
    pub detail: String,
}

/// What running one step gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Nothing wrong. `returned`: the step's reply was a success.
    Fine {
        /// Whether the awaited reply (generated) or any reply (mutated) was a success.
        returned: bool,
    },
    /// A violation or an unexpected success; the session is usable.
    Observed(Observation),
    /// The connection closed (or could not be written): ask the target how it died.
    Closed {
        /// What the wire said.
        detail: String,
    },
    /// No message within the timeout while a reply was due.
    Hang {
        /// What the wire said.
        detail: String,
    },
}

/// A negotiated session on a target, recording its transcript.
#[derive(Debug)]
pub struct Session {
    client: Client,
    transcript: Transcript,
    sentinels: u64,
    timeout: Duration,
    /// The command of the step running (named in W5 violations).
    current: String,
    /// How long the step may stay silent: the timeout plus parse time for big input.
    allowance: Duration,
}

/// QEMU 7.2 parses big strings at about 200 KiB/s (shared/docs/qmp-facts.md): a step may
/// be silent for the timeout plus 1 s per 100 KiB sent before it is a hang.
pub fn allowance(timeout: Duration, bytes: usize) -> Duration {
    timeout + Duration::from_millis((bytes / 100).try_into().unwrap_or(u64::MAX))
}

/// How a wait for an id ended.
enum Waited {
    Got(Vec<Incoming>),
    Closed(String),
    Hang(String),
}

impl Session {
    /// Connects, reads the greeting and negotiates; everything goes into the transcript.
    pub fn open(instance: &Instance, timeout: Duration) -> Result<Session, InstanceError> {
        // The greeting of a target just started may be slow on a loaded machine: it gets
        // the negotiation timeout, not the (possibly very short) reply timeout.
        let config =
            ClientConfig { read_timeout: timeout.max(NEGOTIATION_TIMEOUT), ..ClientConfig::default() };
        let client = instance.connect(config)?;
        let mut session = Session {
            client,
            transcript: Transcript::new(),
            sentinels: 0,
            timeout,
            current: "qmp_capabilities".to_string(),
            // A target just started may be slow to answer its first command.
            allowance: timeout.max(NEGOTIATION_TIMEOUT),
        };
        let greeting = session.client.greeting_raw().to_vec();
        session.transcript.received(None, 0, &greeting);
        let id = json!("qmpcheck-negotiate");
        let bytes = command_bytes("qmp_capabilities", None, &id);
        session.send(None, &bytes).map_err(InstanceError::Wire)?;
        match session.wait_for(None, &id, &mut Vec::new())? {
            Waited::Got(_) => {
                session.client.set_read_timeout(timeout);
                Ok(session)
            }
            Waited::Closed(detail) | Waited::Hang(detail) => Err(InstanceError::Negotiate { detail }),
        }
    }

    /// The transcript so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Notes a remark in the transcript.
    pub fn note(&mut self, iteration: Option<u64>, text: &str) {
        self.transcript.note(iteration, text);
    }

    /// Sends a step and classifies the replies. `validators` checks returns and events by
    /// the schema when given.
    pub fn run_step(
        &mut self,
        step: &Step,
        iteration: Option<u64>,
        validators: Option<&Validators>,
    ) -> StepOutcome {
        self.current.clone_from(&step.command);
        self.allowance = allowance(self.timeout, step.bytes.len());
        if let Err(e) = self.send(iteration, &step.bytes) {
            return StepOutcome::Closed { detail: e.to_string() };
        }
        let mut problems = Vec::new();
        let result = match &step.origin {
            Origin::Generated { id } => self.run_generated(step, id, iteration, validators, &mut problems),
            Origin::Mutated { mutator, expect } => {
                self.run_mutated(step, mutator, *expect, iteration, &mut problems)
            }
        };
        match result {
            Ok(returned) => match problems.into_iter().next() {
                Some(obs) => StepOutcome::Observed(obs),
                None => StepOutcome::Fine { returned },
            },
            Err(Waited::Closed(detail)) => StepOutcome::Closed { detail },
            Err(Waited::Hang(detail)) => StepOutcome::Hang { detail },
            Err(Waited::Got(_)) => StepOutcome::Fine { returned: false },
        }
    }

    fn run_generated(
        &mut self,
        step: &Step,
        id: &Value,
        iteration: Option<u64>,
        validators: Option<&Validators>,
        problems: &mut Vec<Observation>,
    ) -> Result<bool, Waited> {
        let got = match self.wait_for(iteration, id, problems).map_err(|e| Waited::Closed(e.to_string()))? {
            Waited::Got(got) => got,
            other => return Err(other),
        };
        let command = step.command.as_str();
        let mut returned = false;
        for incoming in &got {
            match &incoming.message {
                Message::Reply(reply) if reply.id() == Some(id) => {
                    returned = reply.is_return();
                    check_reply(command, reply, validators, problems);
                }
                Message::Reply(reply) if reply.id().is_none() => problems.push(violation(
                    "C2",
                    command,
                    "",
                    format!("a reply without the command's id: {}", short(&incoming.raw)),
                )),
                Message::Reply(_) => problems.push(violation(
                    "C2",
                    command,
                    "",
                    format!("a reply with another id: {}", short(&incoming.raw)),
                )),
                other => check_other(command, other, &incoming.raw, validators, problems),
            }
        }
        Ok(returned)
    }

    fn run_mutated(
        &mut self,
        step: &Step,
        mutator: &str,
        expect: Expect,
        iteration: Option<u64>,
        problems: &mut Vec<Observation>,
    ) -> Result<bool, Waited> {
        let got = match self.sentinel(iteration, true, problems).map_err(|e| Waited::Closed(e.to_string()))? {
            Waited::Got(got) => got,
            other => return Err(other),
        };
        let command = step.command.as_str();
        let mut returned = false;
        for incoming in &got {
            match &incoming.message {
                Message::Reply(reply) if is_sentinel(reply.id()) => {}
                Message::Reply(reply) => {
                    if reply.is_return() {
                        returned = true;
                        if expect == Expect::Error {
                            problems.push(Observation {
                                signature: Signature::unexpected_success(mutator, command),
                                detail: format!(
                                    "mutator {mutator} made an invalid {command}, which succeeded: {}",
                                    short(&incoming.raw)
                                ),
                            });
                        }
                    } else {
                        check_reply(command, reply, None, problems);
                    }
                }
                other => check_other(command, other, &incoming.raw, None, problems),
            }
        }
        Ok(returned)
    }

    /// Sends (after `0xFF` when `reset`) a sentinel and waits for its reply.
    fn sentinel(
        &mut self,
        iteration: Option<u64>,
        reset: bool,
        problems: &mut Vec<Observation>,
    ) -> Result<Waited, WireError> {
        self.sentinels += 1;
        let id = Value::String(format!("{SENTINEL_PREFIX}{}", self.sentinels));
        let mut bytes = if reset { vec![RESET_BYTE] } else { Vec::new() };
        bytes.extend(command_bytes(SENTINEL_COMMAND, None, &id));
        if let Err(e) = self.send(iteration, &bytes) {
            return Ok(Waited::Closed(e.to_string()));
        }
        self.wait_for(iteration, &id, problems)
    }

    /// Reads until the reply with `id`; a decode error or an id-less reply on the way
    /// sends a sentinel (the reply may be lost) and then either reply ends the wait.
    fn wait_for(
        &mut self,
        iteration: Option<u64>,
        id: &Value,
        problems: &mut Vec<Observation>,
    ) -> Result<Waited, WireError> {
        let started = Instant::now();
        let budget = self.allowance.max(self.timeout) * STEP_BUDGET;
        let mut got = Vec::new();
        let mut sentinel_id: Option<Value> = None;
        loop {
            if started.elapsed() > budget {
                return Ok(Waited::Hang(format!(
                    "no reply with id {id} within {budget:?} (messages kept coming)"
                )));
            }
            match self.client.read_message() {
                Ok(incoming) => {
                    self.transcript.received(iteration, incoming.offset, &incoming.raw);
                    let done = matches!(&incoming.message, Message::Reply(r)
                        if r.id() == Some(id) || (sentinel_id.is_some() && r.id() == sentinel_id.as_ref()));
                    let lost = !done
                        && sentinel_id.is_none()
                        && matches!(&incoming.message, Message::Reply(r) if r.id().is_none());
                    got.push(incoming);
                    if done {
                        return Ok(Waited::Got(got));
                    }
                    if lost && !is_sentinel(Some(id)) && !is_negotiation(id) {
                        sentinel_id = Some(self.resync_id(iteration)?);
                    }
                }
                Err(WireError::Decode { source, .. }) => {
                    let text = source.to_string();
                    self.transcript.note(iteration, &format!("decode error: {text}"));
                    // Over the size or depth limit: refused unread (never buffered past it).
                    let what = match *source {
                        DecodeError::TooLarge { .. } | DecodeError::TooDeep { .. } => "a reply refused",
                        _ => "a reply that is not JSON",
                    };
                    problems.push(violation("W5", &self.current, "", format!("{what}: {text}")));
                    if sentinel_id.is_none() && !is_sentinel(Some(id)) {
                        sentinel_id = Some(self.resync_id(iteration)?);
                    }
                }
                Err(WireError::Timeout { .. }) if started.elapsed() < self.allowance => {}
                Err(WireError::Timeout { .. }) => {
                    let detail = format!("no reply with id {id} within {:?}", started.elapsed());
                    self.transcript.note(iteration, &detail);
                    return Ok(Waited::Hang(detail));
                }
                Err(e) => {
                    let detail = e.to_string();
                    self.transcript.note(iteration, &detail);
                    return Ok(Waited::Closed(detail));
                }
            }
        }
    }

    /// Sends a plain sentinel (no reset byte) and returns its id.
    fn resync_id(&mut self, iteration: Option<u64>) -> Result<Value, WireError> {
        self.sentinels += 1;
        let id = Value::String(format!("{SENTINEL_PREFIX}{}", self.sentinels));
        let bytes = command_bytes(SENTINEL_COMMAND, None, &id);
        self.send(iteration, &bytes)?;
        Ok(id)
    }

    fn send(&mut self, iteration: Option<u64>, bytes: &[u8]) -> Result<(), WireError> {
        self.transcript.sent(iteration, bytes);
        self.client.send_raw(bytes)
    }
}

/// The bytes of a command: compact JSON then CRLF.
pub fn command_bytes(name: &str, arguments: Option<&Value>, id: &Value) -> Vec<u8> {
    let mut command = serde_json::Map::new();
    command.insert("execute".into(), Value::String(name.to_string()));
    if let Some(args) = arguments {
        command.insert("arguments".into(), args.clone());
    }
    command.insert("id".into(), id.clone());
    let mut bytes = serde_json::to_vec(&Value::Object(command)).unwrap_or_default();
    bytes.extend_from_slice(b"\r\n");
    bytes
}

fn is_sentinel(id: Option<&Value>) -> bool {
    id.and_then(Value::as_str).is_some_and(|s| s.starts_with(SENTINEL_PREFIX))
}

fn is_negotiation(id: &Value) -> bool {
    id.as_str() == Some("qmpcheck-negotiate")
}

/// Checks a reply's shape: a return valid by the schema (C3), a known error class (C4).
fn check_reply(
    command: &str,
    reply: &Reply,
    validators: Option<&Validators>,
    problems: &mut Vec<Observation>,
) {
    match reply {
        Reply::Return { value, .. } => {
            if let Some(v) = validators {
                if let Err(violations) = v.validate_return(command, value) {
                    if let Some(first) = violations.first() {
                        problems.push(violation(
                            "C3",
                            command,
                            &first.instance_path,
                            format!("return not valid by the schema: {first}"),
                        ));
                    }
                }
            }
        }
        Reply::Error { class, .. } => {
            if !ERROR_CLASSES.contains(&class.as_str()) {
                problems.push(violation(
                    "C4",
                    command,
                    "/error/class",
                    format!("unknown error class {class}"),
                ));
            }
        }
    }
}

/// Checks a message that is not a reply: events by shape and schema (E1), unknown shapes.
fn check_other(
    command: &str,
    message: &Message,
    raw: &[u8],
    validators: Option<&Validators>,
    problems: &mut Vec<Observation>,
) {
    match message {
        Message::Event(event) => {
            if let Some(v) = validators {
                let data = event.data.clone().unwrap_or_else(|| json!({}));
                if let Err(violations) = v.validate_event(&event.event, &data) {
                    if let Some(first) = violations.first() {
                        problems.push(violation(
                            "E1",
                            &event.event,
                            &first.instance_path,
                            format!("event data not valid by the schema: {first}"),
                        ));
                    }
                }
            }
        }
        Message::Unknown(value) => {
            let rule = if value.get("event").is_some() { "E1" } else { "C3" };
            problems.push(violation(
                rule,
                command,
                "",
                format!("a message of unknown shape: {}", short(raw)),
            ));
        }
        Message::Greeting(_) => {
            problems.push(violation("S1", command, "", format!("a second greeting: {}", short(raw))));
        }
        Message::Reply(_) => {}
    }
}

fn violation(rule: &str, command: &str, path: &str, detail: String) -> Observation {
    Observation { signature: Signature::violation(rule, command, path), detail }
}

/// A received text, shortened for a detail line.
fn short(raw: &[u8]) -> String {
    crate::wire::stream::escaped_tail(raw.get(..200.min(raw.len())).unwrap_or(&[]), 200)
}
