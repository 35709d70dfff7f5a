//! Checks the documentation's own JSON examples against the schemas derived from the model.
//!
//! Old QEMU docs carry examples with missing commas, `...` ellipses and wrong member names.
//! Each example is parsed as JSON as written, then checked in document order:
//! - a request (`-> {"execute": ...}`) must execute a command the model has, and its
//!   `arguments` must satisfy that command's argument schema. Examples often show setup steps
//!   (`blockdev-add` before `x-blockdev-change`), so a request for *another known* command is
//!   checked against that command, not reported (the legacy parser already reports names
//!   that differ from their section);
//! - a reply (`<- {"return": ...}`) must satisfy the return schema of the command the latest
//!   request executed (the section's own command before any request); error replies, and
//!   replies after a request for an unknown command, are skipped;
//! - an event example (under an event, or under a command whose example shows the event it
//!   causes) must name an event the model has — under a command, an unknown event is
//!   skipped since the model may hold no events at all — and its `data` must satisfy it.
//!
//! Every failing example becomes one [`DiagnosticKind::DocFinding`] at its source, naming the
//! item it is documented under and every violation.

use serde_json::Value;

use crate::check::schema::{SchemaSet, SchemaViolation, Validators};
use crate::spec::{Diagnostic, DiagnosticKind, Direction, Example, Spec};

/// The outcome of checking every example of a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExampleReport {
    /// Examples looked at (every example of every command and event).
    pub checked: usize,
    /// Examples that parsed and satisfied their schema.
    pub passed: usize,
    /// Examples that could not be judged: error replies, replies to unknown commands, events
    /// the model does not know shown under a command.
    pub skipped: usize,
    /// One finding per failing example (its violations joined with `; `).
    pub diagnostics: Vec<Diagnostic>,
}

impl ExampleReport {
    /// Examples with at least one finding.
    pub fn failed(&self) -> usize {
        self.checked - self.passed - self.skipped
    }
}

/// Checks every example of `spec` against `schemas`; returns the findings only.
pub fn check_examples(spec: &Spec, schemas: &SchemaSet) -> Vec<Diagnostic> {
    check_examples_report(spec, schemas).diagnostics
}

/// Checks every example of `spec` against `schemas`, with counts.
pub fn check_examples_report(spec: &Spec, schemas: &SchemaSet) -> ExampleReport {
    let checker = Checker { spec, validators: Validators::new(schemas) };
    let mut report = ExampleReport::default();
    for command in spec.commands.values() {
        let mut current = Some(command.name.clone());
        for example in &command.examples {
            report.record(checker.check(Owner::Command(&command.name), example, &mut current));
        }
    }
    for event in spec.events.values() {
        let mut current = None;
        for example in &event.examples {
            report.record(checker.check(Owner::Event(&event.name), example, &mut current));
        }
    }
    report
}

impl ExampleReport {
    fn record(&mut self, outcome: Outcome) {
        self.checked += 1;
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed(diagnostic) => self.diagnostics.push(diagnostic),
        }
    }
}

/// What an example is documented under.
#[derive(Debug, Clone, Copy)]
enum Owner<'a> {
    Command(&'a str),
    Event(&'a str),
}

impl Owner<'_> {
    fn describe(&self) -> String {
        match self {
            Owner::Command(name) => format!("example of command '{name}'"),
            Owner::Event(name) => format!("example of event '{name}'"),
        }
    }
}

enum Outcome {
    Passed,
    Skipped,
    Failed(Diagnostic),
}

struct Checker<'a> {
    spec: &'a Spec,
    validators: Validators,
}

impl Checker<'_> {
    /// Checks one example. `current` is the command whose reply is expected next: the
    /// section's own command at first, then the command of the latest request (`None` after
    /// a request for an unknown command).
    fn check(&self, owner: Owner<'_>, example: &Example, current: &mut Option<String>) -> Outcome {
        let finding =
            |message: String| Diagnostic::new(DiagnosticKind::DocFinding, example.source.clone(), message);
        let what = owner.describe();
        let value: Value = match serde_json::from_str(example.text.trim()) {
            Ok(v) => v,
            Err(e) => return Outcome::Failed(finding(format!("{what} is not valid json: {e}"))),
        };
        let Value::Object(object) = &value else {
            return Outcome::Failed(finding(format!("{what} is not a json object")));
        };
        let problems = if object.contains_key("event") {
            self.check_event(owner, &value)
        } else {
            match (owner, example.direction) {
                (Owner::Command(own), Direction::Request) => Some(self.check_request(own, &value, current)),
                (Owner::Command(own), _) => {
                    current.as_deref().and_then(|name| self.check_reply(own, name, &value))
                }
                (Owner::Event(_), _) => Some(vec!["has no \"event\" member".to_string()]),
            }
        };
        match problems {
            None => Outcome::Skipped,
            Some(problems) if problems.is_empty() => Outcome::Passed,
            Some(problems) => Outcome::Failed(finding(format!("{what} {}", problems.join("; ")))),
        }
    }

    /// Problems of a `{"execute": ..., "arguments": ...}` example; sets `current` to the
    /// executed command when the model has it.
    fn check_request(&self, own: &str, value: &Value, current: &mut Option<String>) -> Vec<String> {
        *current = None;
        let execute = value.get("execute").or_else(|| value.get("exec-oob"));
        let Some(execute) = execute else { return vec!["has no \"execute\" member".to_string()] };
        let Some(execute) = execute.as_str() else {
            return vec![format!("has a non-string \"execute\": {execute}")];
        };
        if !self.spec.commands.contains_key(execute) {
            return vec![format!("executes '{execute}', which the model does not have")];
        }
        *current = Some(execute.to_string());
        let empty = Value::Object(Default::default());
        let arguments = value.get("arguments").unwrap_or(&empty);
        violations(&label("arguments", own, execute), self.validators.validate_args(execute, arguments))
    }

    /// Problems of a `{"return": ...}` example replying to `command` (in the section of
    /// `own`); `None` for an error reply.
    fn check_reply(&self, own: &str, command: &str, value: &Value) -> Option<Vec<String>> {
        if value.get("error").is_some() {
            return None;
        }
        let Some(returned) = value.get("return") else {
            return Some(vec!["has neither \"return\" nor \"error\"".to_string()]);
        };
        Some(violations(&label("return", own, command), self.validators.validate_return(command, returned)))
    }

    /// Problems of an `{"event": ..., "data": ...}` example; `None` when the example is
    /// under a command and the model does not know the event (it may hold no events).
    fn check_event(&self, owner: Owner<'_>, value: &Value) -> Option<Vec<String>> {
        let Some(name) = value.get("event").and_then(Value::as_str) else {
            return Some(vec!["has a non-string \"event\"".to_string()]);
        };
        if !self.spec.events.contains_key(name) {
            return match owner {
                Owner::Event(_) => Some(vec![format!("shows event '{name}', which the model does not have")]),
                Owner::Command(_) => None,
            };
        }
        let empty = Value::Object(Default::default());
        let data = value.get("data").unwrap_or(&empty);
        Some(violations(&format!("event '{name}' data"), self.validators.validate_event(name, data)))
    }
}

/// `arguments` for the section's own command, `arguments of 'blockdev-add'` for another.
fn label(what: &str, own: &str, command: &str) -> String {
    if own == command {
        what.to_string()
    } else {
        format!("{what} of '{command}'")
    }
}

/// Renders violations as `LABEL PATH: MESSAGE` lines (empty when valid).
fn violations(label: &str, result: Result<(), Vec<SchemaViolation>>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(list) => list.iter().map(|v| format!("{label}: {}", describe(v))).collect(),
    }
}

fn describe(violation: &SchemaViolation) -> String {
    if violation.instance_path.is_empty() {
        violation.message.clone()
    } else {
        format!("at {}: {}", violation.instance_path, violation.message)
    }
}
