//! Checks the documentation's own JSON examples against the schemas derived from the model.
//!
//! Old QEMU docs carry examples with missing commas, `...` ellipses and wrong member names.
//! Each example is parsed as JSON as written, then: a request (`-> {"execute": ...}`) must
//! execute its own command and its `arguments` must satisfy the command's argument schema;
//! a reply (`<- {"return": ...}`) must satisfy the return schema; an event example (under an
//! event, or under a command whose example shows the event it causes) must name a known
//! event and its `data` must satisfy that event's schema. Every failure becomes a
//! [`DiagnosticKind::DocFinding`] at the example's source.

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
    /// Examples that could not be judged: error replies, events the model does not know.
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
        for example in &command.examples {
            let owner = Owner::Command(&command.name);
            report.record(checker.check(owner, example));
        }
    }
    for event in spec.events.values() {
        for example in &event.examples {
            report.record(checker.check(Owner::Event(&event.name), example));
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
    fn check(&self, owner: Owner<'_>, example: &Example) -> Outcome {
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
            match self.check_event(owner, &value) {
                Some(p) => p,
                None => return Outcome::Skipped,
            }
        } else {
            match (owner, example.direction) {
                (Owner::Command(name), Direction::Request) => self.check_request(name, &value),
                (Owner::Command(name), _) => match self.check_reply(name, &value) {
                    Some(p) => p,
                    None => return Outcome::Skipped,
                },
                (Owner::Event(_), _) => vec!["has no \"event\" member".to_string()],
            }
        };
        if problems.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed(finding(format!("{what} {}", problems.join("; "))))
        }
    }

    /// Problems of a `{"execute": ..., "arguments": ...}` example of `command`.
    fn check_request(&self, command: &str, value: &Value) -> Vec<String> {
        let execute = value.get("execute").or_else(|| value.get("exec-oob"));
        let Some(execute) = execute else { return vec!["has no \"execute\" member".to_string()] };
        let Some(execute) = execute.as_str() else {
            return vec![format!("has a non-string \"execute\": {execute}")];
        };
        if execute != command {
            return vec![format!("executes '{execute}' instead")];
        }
        let empty = Value::Object(Default::default());
        let arguments = value.get("arguments").unwrap_or(&empty);
        violations("arguments", self.validators.validate_args(command, arguments))
    }

    /// Problems of a `{"return": ...}` example of `command`; `None` for an error reply.
    fn check_reply(&self, command: &str, value: &Value) -> Option<Vec<String>> {
        if value.get("error").is_some() {
            return None;
        }
        let Some(returned) = value.get("return") else {
            return Some(vec!["has neither \"return\" nor \"error\"".to_string()]);
        };
        Some(violations("return", self.validators.validate_return(command, returned)))
    }

    /// Problems of an `{"event": ..., "data": ...}` example; `None` when the model does not
    /// know the event and the example is under a command (the model may lack events).
    fn check_event(&self, owner: Owner<'_>, value: &Value) -> Option<Vec<String>> {
        let Some(name) = value.get("event").and_then(Value::as_str) else {
            return Some(vec!["has a non-string \"event\"".to_string()]);
        };
        if let Owner::Event(expected) = owner {
            if name != expected {
                return Some(vec![format!("shows event '{name}' instead")]);
            }
        } else if !self.spec.events.contains_key(name) {
            return None;
        }
        let empty = Value::Object(Default::default());
        let data = value.get("data").unwrap_or(&empty);
        let label = format!("event '{name}' data");
        Some(violations(&label, self.validators.validate_event(name, data)))
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
