//! The generated check of one command: plan it from the model, send it, judge the reply.
//!
//! **Plan** ([`plan`], pure): a command on the skip list (`conformance/skip.toml`) or denied
//! outright by a safety rule (`src/gen/deny-rules.toml`, deprecated and unstable commands
//! included) is skipped with that reason. Otherwise its arguments come from the model-derived
//! walker of [`crate::gen`], seeded with the run's seed and the command's name, so the same
//! seed gives the same arguments in every shard and every rerun. When the command creates,
//! uses, deletes or shows a name of a kind the table [`crate::gen::names::KNOWLEDGE`] knows
//! (block node, QOM object, job, chardev), the plan wraps it in a create → use → delete
//! sequence: the names it needs are created first (with their own prerequisites, such as
//! the block node a job runs on) and everything still alive afterwards is deleted, so each
//! check leaves the target as it found it. Names are unique per check (the check's position
//! in the run offsets the name counter), so a name another check leaked never collides.
//!
//! **Send and judge** ([`execute`]): every step passes [`SafetyRules::check_in`] with the
//! target's scratch dir right before it is sent (the last gate). A return must be valid by
//! the command's return schema (C3), an error must have a known class (C4) and echo the id
//! (C2/C6), and every event met on the way must be valid by its schema (E1). An error of a
//! known class to the command itself passes and is recorded as a rejection (generated
//! arguments are valid by the schema yet may be semantically wrong); DeviceNotFound,
//! DeviceNotActive or "No ... has been activated" means the target lacks a device the
//! command acts on, and is recorded as a skip with the reply as reason. A reply that is not
//! a reply, a wrong id, no reply or a dead target fail the check; the runner
//! ([`super::run`]) then restarts the target.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::case::ERROR_CLASSES;
use super::result::{escape_bytes, CommandNote, Evidence, Outcome};
use super::shard::fnv1a;
use super::skip::SkipList;
use crate::check::schema::Validators;
use crate::gen::choice::Minimal;
use crate::gen::names::{self, NameRole};
use crate::gen::walk::{WalkConfig, Walker};
use crate::gen::{ChoiceSource, Context, GeneratedCommand, NameKind, SafetyRules, SplitMix64, Verdict};
use crate::spec::{Spec, TypeKind, TypeRef};
use crate::wire::{Client, ClientConfig, Reply, Stray};

/// Skip group of deprecated and unstable commands (the rules' campaign-only verdict).
pub const GROUP_CAMPAIGN: &str = "unstable or deprecated: runs only in the separate campaign";
/// Skip group of commands refused for a device the target lacks (learnt from the reply).
pub const GROUP_NO_DEVICE: &str = "needs a device (or other named thing) the target lacks: refused with \
     DeviceNotFound, DeviceNotActive or \"No ... has been activated\"";
/// Skip group of commands whose every draft the walker could not complete.
pub const GROUP_NO_ARGUMENTS: &str = "no arguments generated: every draft was blocked by the model and rules";
/// Skip group of commands not in the target's model.
pub const GROUP_NOT_IN_MODEL: &str = "not in the model";

/// Seeded drafts of the command under test before the smallest arguments are tried.
const DRAWS: usize = 32;
/// Names each check may create; check `i` names things from `i * NAME_STRIDE` on.
const NAME_STRIDE: usize = 64;
/// Nesting the scan for name members goes down to.
const SCAN_DEPTH: usize = 4;

/// What a step of a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRole {
    /// Creates a name the command needs.
    Setup,
    /// The command checked.
    UnderTest,
    /// Deletes a name left alive.
    Cleanup,
}

/// One command of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    /// The command and its arguments.
    pub command: GeneratedCommand,
    /// Why it is there.
    pub role: StepRole,
}

/// What the check of one command will do.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Send these steps (exactly one is [`StepRole::UnderTest`]).
    Call(Vec<PlannedStep>),
    /// Do not call the command.
    Skip {
        /// The reason without per-command details (reports group by it).
        group: String,
        /// The full reason.
        reason: String,
    },
}

/// Plans the check of command `name`: seeded by `seed` and the name, names offset by
/// `position` (the check's place in the run, the same in every shard).
pub fn plan(
    model: &Spec,
    rules: &SafetyRules,
    skip: &SkipList,
    name: &str,
    seed: u64,
    position: usize,
) -> Plan {
    if let Some(entry) = skip.find(name) {
        let group = format!("skip list: {}", entry.reason);
        return Plan::Skip { reason: group.clone(), group };
    }
    if !model.commands.contains_key(name) {
        return Plan::Skip { group: GROUP_NOT_IN_MODEL.into(), reason: GROUP_NOT_IN_MODEL.into() };
    }
    if rules.denies_command(name) {
        return match rules.check_in(name, &json!({}), None) {
            Verdict::Deny { rule_id, reason } => denied(rules, &rule_id, &reason),
            _ => denied(rules, "?", "denied outright"),
        };
    }
    let mut planner = Planner {
        model,
        rules,
        rng: SplitMix64::new(seed ^ fnv1a(name.as_bytes())),
        context: context_at(position),
        steps: Vec::new(),
    };
    let created: Vec<NameKind> = NameKind::ALL
        .into_iter()
        .filter(|k| names::commands_for(*k, NameRole::Create).contains(&name))
        .collect();
    let mut setup_kinds = Vec::new();
    for kind in planner.needed_kinds(name, &created) {
        planner.add_with_prerequisites(kind, &mut setup_kinds, 0);
    }
    for kind in &setup_kinds {
        if let Some(create) = planner.command_for(*kind, NameRole::Create) {
            if let Ok(command) = planner.draft(create, StepRole::Setup, false) {
                planner.steps.push(PlannedStep { command, role: StepRole::Setup });
            }
        }
    }
    match planner.draft_under_test(name) {
        Ok(command) => planner.steps.push(PlannedStep { command, role: StepRole::UnderTest }),
        Err(Refusal::Denied { rule_id, reason }) => return denied(rules, &rule_id, &reason),
        Err(Refusal::Blocked) => {
            return Plan::Skip { group: GROUP_NO_ARGUMENTS.into(), reason: GROUP_NO_ARGUMENTS.into() }
        }
    }
    let cleanup_kinds: Vec<NameKind> = created.iter().chain(setup_kinds.iter().rev()).copied().collect();
    for kind in cleanup_kinds {
        planner.delete_all(kind);
    }
    Plan::Call(planner.steps)
}

/// The skip of a command a rule refuses: grouped by the rule (its id and reason), with
/// the verdict's own words as the reason when they say more.
fn denied(rules: &SafetyRules, rule_id: &str, verdict_reason: &str) -> Plan {
    if rule_id == "unstable-campaign" {
        return Plan::Skip { group: GROUP_CAMPAIGN.into(), reason: GROUP_CAMPAIGN.into() };
    }
    let group = match rules.rules().iter().find(|r| r.id == rule_id) {
        Some(rule) => format!("denied by rule {rule_id}: {}", rule.reason),
        None => format!("denied by rule {rule_id}"),
    };
    let outright = verdict_reason.starts_with("command denied");
    let reason = if outright { group.clone() } else { format!("denied by rule {rule_id}: {verdict_reason}") };
    Plan::Skip { group, reason }
}

/// A context whose fresh names start past those of every earlier check.
fn context_at(position: usize) -> Context {
    let mut context = Context::new();
    for _ in 0..position.saturating_mul(NAME_STRIDE) {
        context.fresh(NameKind::BlockNode);
    }
    context
}

/// Why no arguments could be drafted.
enum Refusal {
    /// A rule refused the draft.
    Denied { rule_id: String, reason: String },
    /// The walker could not respect the model and the rules at once.
    Blocked,
}

struct Planner<'m> {
    model: &'m Spec,
    rules: &'m SafetyRules,
    rng: SplitMix64,
    context: Context,
    steps: Vec<PlannedStep>,
}

/// The walk of a step: the table's preferred values and the names alive, always; optional
/// members sometimes for the command under test (each is one more thing to check), never
/// for setup and cleanup (each is one more way for them to fail).
fn walk_config(role: StepRole) -> WalkConfig {
    let optional_percent = if role == StepRole::UnderTest { 15 } else { 0 };
    WalkConfig { prefer: true, use_existing_percent: 100, optional_percent, ..WalkConfig::default() }
}

impl<'m> Planner<'m> {
    /// Kinds `name` needs alive before it runs: those it uses (at any depth of its
    /// arguments), deletes or shows, except those it creates.
    fn needed_kinds(&self, name: &str, created: &[NameKind]) -> Vec<NameKind> {
        let used = self.used_kinds(name, true);
        NameKind::ALL
            .into_iter()
            .filter(|k| !created.contains(k))
            .filter(|k| {
                used.contains(k)
                    || names::commands_for(*k, NameRole::Delete).contains(&name)
                    || names::commands_for(*k, NameRole::Observe).contains(&name)
                    || names::commands_for(*k, NameRole::Use).contains(&name)
            })
            .collect()
    }

    /// Adds `kind` after the kinds its create command needs (a job needs a block node).
    fn add_with_prerequisites(&self, kind: NameKind, out: &mut Vec<NameKind>, depth: usize) {
        if out.contains(&kind) || depth > NameKind::ALL.len() {
            return;
        }
        if let Some(create) = self.command_for(kind, NameRole::Create) {
            for pre in self.used_kinds(create, false).into_iter().filter(|k| *k != kind) {
                self.add_with_prerequisites(pre, out, depth + 1);
            }
        }
        if !out.contains(&kind) {
            out.push(kind);
        }
    }

    /// Kinds the members of `command` use: every member at any depth (`all`), or only the
    /// mandatory top-level ones.
    fn used_kinds(&self, command: &str, all: bool) -> Vec<NameKind> {
        let mut out = Vec::new();
        let Some(cmd) = self.model.commands.get(command) else { return out };
        for member in self.model.command_args(cmd) {
            if !all && member.optional {
                continue;
            }
            if let Some((kind, NameRole::Use, _)) = names::name_fact(command, &member.name, 0) {
                push_unique(&mut out, kind);
            }
            if all {
                let mut seen = Vec::new();
                self.scan(command, &member.ty, 1, &mut seen, &mut out);
            }
        }
        out
    }

    /// Adds the kinds the nested members of `ty` use.
    fn scan(
        &self,
        command: &str,
        ty: &TypeRef,
        depth: usize,
        seen: &mut Vec<String>,
        out: &mut Vec<NameKind>,
    ) {
        if depth > SCAN_DEPTH {
            return;
        }
        let ty = match ty {
            TypeRef::Array(element) => return self.scan(command, element, depth, seen, out),
            TypeRef::Named(name) if seen.contains(name) => return,
            TypeRef::Named(name) => {
                seen.push(name.clone());
                ty
            }
            _ => return,
        };
        let Some(def) = self.model.resolve(ty) else { return };
        match &def.kind {
            TypeKind::Struct { .. } | TypeKind::Union { .. } => {
                for member in self.model.members(ty) {
                    if let Some((kind, NameRole::Use, _)) = names::name_fact(command, &member.name, depth) {
                        push_unique(out, kind);
                    }
                    self.scan(command, &member.ty, depth + 1, seen, out);
                }
                for variant in self.model.variants(ty) {
                    self.scan(command, &variant.ty, depth, seen, out);
                }
            }
            TypeKind::Alternate { alternatives } => {
                for alternative in alternatives {
                    self.scan(command, &alternative.ty, depth, seen, out);
                }
            }
            TypeKind::Array { element } => self.scan(command, element, depth, seen, out),
            _ => {}
        }
    }

    /// The first command of the table doing `role` for `kind` that the model has and the
    /// rules allow.
    fn command_for(&self, kind: NameKind, role: NameRole) -> Option<&'static str> {
        names::commands_for(kind, role)
            .into_iter()
            .find(|c| self.model.commands.contains_key(*c) && !self.rules.denies_command(c))
    }

    /// Drafts the command under test: seeded drafts, then the smallest arguments.
    fn draft_under_test(&mut self, name: &str) -> Result<GeneratedCommand, Refusal> {
        let mut last = Refusal::Blocked;
        for _ in 0..DRAWS {
            match self.draft(name, StepRole::UnderTest, false) {
                Ok(command) => return Ok(command),
                Err(refusal) => last = refusal,
            }
        }
        match self.draft(name, StepRole::UnderTest, true) {
            Ok(command) => Ok(command),
            Err(Refusal::Blocked) => Err(last),
            Err(denied) => Err(denied),
        }
    }

    /// Deletes every live name of `kind` (newest first) with the table's delete command.
    fn delete_all(&mut self, kind: NameKind) {
        let Some(delete) = self.command_for(kind, NameRole::Delete) else { return };
        while let Some(newest) = self.context.names(kind).last().cloned() {
            match self.draft(delete, StepRole::Cleanup, false) {
                Ok(command) => self.steps.push(PlannedStep { command, role: StepRole::Cleanup }),
                Err(_) => return,
            }
            if self.context.names(kind).last() == Some(&newest) {
                return; // the delete did not name it: give up rather than loop
            }
        }
    }

    /// One walk of `name` for a step of `role` through the rules (seeded, or the smallest
    /// arguments when `minimal`); applies its name effects when it passes.
    fn draft(&mut self, name: &str, role: StepRole, minimal: bool) -> Result<GeneratedCommand, Refusal> {
        let steer = self.rules.steer(name);
        let walk = walk_config(role);
        let mut smallest = Minimal;
        let src: &mut dyn ChoiceSource = if minimal { &mut smallest } else { &mut self.rng };
        let draft = Walker::new(self.model, name, &steer, &mut self.context, &walk).arguments(src);
        if draft.blocked {
            return Err(Refusal::Blocked);
        }
        let arguments = match self.rules.check(name, &draft.arguments) {
            Verdict::Allow => draft.arguments,
            Verdict::Rewrite(rewritten) => match self.rules.check(name, &rewritten) {
                Verdict::Allow => rewritten,
                Verdict::Deny { rule_id, reason } => return Err(Refusal::Denied { rule_id, reason }),
                Verdict::Rewrite(_) => return Err(Refusal::Blocked),
            },
            Verdict::Deny { rule_id, reason } => return Err(Refusal::Denied { rule_id, reason }),
        };
        self.context.apply(&draft.effects);
        Ok(GeneratedCommand { name: name.to_string(), arguments })
    }
}

fn push_unique(out: &mut Vec<NameKind>, kind: NameKind) {
    if !out.contains(&kind) {
        out.push(kind);
    }
}

// ---------------------------------------------------------------------------------------
// Sending and judging.

/// What the sending side needs.
pub(super) struct Exec<'a> {
    /// The target's QMP socket.
    pub socket: &'a Path,
    /// The target's scratch dir (the last gate checks paths against it).
    pub scratch: Option<&'a Path>,
    /// The rules of the last gate.
    pub rules: &'a SafetyRules,
    /// Return and event validators of the target's model.
    pub validators: &'a Validators,
    /// Longest wait for one reply.
    pub timeout: Duration,
    /// Whether return schemas are strict (for the failure text).
    pub strict: bool,
}

/// The result of one generated check.
pub(super) struct Checked {
    /// Pass, fail or skip.
    pub outcome: Outcome,
    /// What was called and how it was answered.
    pub note: CommandNote,
    /// Whether the connection broke or a reply did not come (the runner then checks
    /// whether the target died or hangs).
    pub wire_error: bool,
}

/// The transcript of one check, for evidence.
#[derive(Default)]
struct Transcript {
    requests: Vec<String>,
    replies: Vec<String>,
    steps: Vec<String>,
}

impl Transcript {
    fn evidence(&self, expected: String) -> Evidence {
        Evidence {
            request: escape_bytes(self.requests.join("\n").as_bytes(), 4000),
            reply: if self.replies.is_empty() {
                "(nothing)".into()
            } else {
                escape_bytes(self.replies.join("\n").as_bytes(), 4000)
            },
            expected,
        }
    }
}

/// Sends the steps of `name`'s plan on `client` (connecting when it is `None`) and judges
/// the replies.
pub(super) fn execute(
    name: &str,
    steps: &[PlannedStep],
    client: &mut Option<Client>,
    exec: &Exec,
) -> Checked {
    let mut transcript = Transcript::default();
    let mut under_test: Option<(Value, Reply)> = None;
    for (n, step) in steps.iter().enumerate() {
        let arguments = match gate(exec, step) {
            Ok(arguments) => arguments,
            Err((rule_id, reason)) if step.role == StepRole::UnderTest => {
                let Plan::Skip { group, reason } =
                    denied(exec.rules, &rule_id, &format!("at the last gate: {reason}"))
                else {
                    unreachable!("denied gives a skip")
                };
                return Checked {
                    outcome: Outcome::Skip { reason },
                    note: CommandNote::Skipped { group },
                    wire_error: false,
                };
            }
            Err((rule_id, _)) => {
                transcript.steps.push(format!("{}: not sent (rule {rule_id})", step.command.name));
                continue;
            }
        };
        let id = match step.role {
            StepRole::UnderTest => format!("command:{name}"),
            _ => format!("command:{name}:{n}"),
        };
        let request = json!({"execute": step.command.name, "arguments": arguments, "id": id});
        transcript.requests.push(request.to_string());
        let failed = |transcript: &Transcript, expected: String, wire_error: bool| Checked {
            outcome: Outcome::Fail { evidence: transcript.evidence(expected) },
            note: CommandNote::Failed {
                arguments: under_test_arguments(steps),
                steps: transcript.steps.clone(),
            },
            wire_error,
        };
        if client.is_none() {
            match connect_negotiated(exec.socket, exec.timeout) {
                Ok(c) => *client = Some(c),
                Err(e) => {
                    transcript.replies.push(e);
                    return failed(&transcript, "a connection that negotiates (S3)".into(), true);
                }
            }
        }
        let Some(connected) = client.as_mut() else { unreachable!("connected above") };
        let reply = connected.execute_with_id(&step.command.name, Some(arguments.clone()), json!(id));
        let events = connected.take_events();
        let strays = connected.take_strays();
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                *client = None;
                transcript.replies.push(e.to_string());
                let expected =
                    format!("exactly one reply to {}, with the id {id:?} echoed (C2/C6)", step.command.name);
                return failed(&transcript, expected, true);
            }
        };
        transcript.replies.push(reply_to_text(&reply));
        if let Some(stray) = strays.first() {
            let what = match stray {
                Stray::Message(m) => escape_bytes(&m.raw, 400),
                Stray::Decode(e) => e.to_string(),
            };
            transcript.replies.push(format!("(also received: {what})"));
            return failed(&transcript, "only the reply, with its id, and events (W5/C2/C6)".into(), false);
        }
        for event in &events {
            let data = event.data.clone().unwrap_or_else(|| json!({}));
            if let Err(v) = exec.validators.validate_event(&event.event, &data) {
                let list: Vec<String> = v.iter().map(|v| v.to_string()).collect();
                let expected =
                    format!("event {} data valid by its schema (E1): {}", event.event, list.join("; "));
                return failed(&transcript, expected, false);
            }
        }
        if let Err(expected) = judge_shape(&step.command.name, &reply, exec) {
            transcript.steps.push(format!("{}: invalid", step.command.name));
            return failed(&transcript, expected, false);
        }
        transcript.steps.push(step_label(&step.command.name, step.role, &reply));
        if step.role == StepRole::UnderTest {
            under_test = Some((arguments, reply));
        }
    }
    let Some((arguments, reply)) = under_test else {
        return Checked {
            outcome: Outcome::Skip { reason: "the plan holds no call of the command".into() },
            note: CommandNote::Skipped { group: GROUP_NO_ARGUMENTS.into() },
            wire_error: false,
        };
    };
    let steps = transcript.steps;
    match reply {
        Reply::Return { .. } => Checked {
            outcome: Outcome::Pass,
            note: CommandNote::Accepted { arguments, steps },
            wire_error: false,
        },
        Reply::Error { class, desc, .. } if lacks_device(&class, &desc) => Checked {
            outcome: Outcome::Skip { reason: format!("{GROUP_NO_DEVICE}: {class}: {desc}") },
            note: CommandNote::Skipped { group: GROUP_NO_DEVICE.into() },
            wire_error: false,
        },
        Reply::Error { class, desc, .. } => Checked {
            outcome: Outcome::Pass,
            note: CommandNote::Rejected { arguments, steps, class, desc },
            wire_error: false,
        },
    }
}

/// The arguments of the step under test (for notes of failed checks).
fn under_test_arguments(steps: &[PlannedStep]) -> Value {
    steps
        .iter()
        .find(|s| s.role == StepRole::UnderTest)
        .map(|s| s.command.arguments.clone())
        .unwrap_or(Value::Null)
}

/// The last gate: the arguments to send, or the refusing rule and why.
fn gate(exec: &Exec, step: &PlannedStep) -> Result<Value, (String, String)> {
    let name = &step.command.name;
    match exec.rules.check_in(name, &step.command.arguments, exec.scratch) {
        Verdict::Allow => Ok(step.command.arguments.clone()),
        Verdict::Rewrite(rewritten) => match exec.rules.check_in(name, &rewritten, exec.scratch) {
            Verdict::Allow => Ok(rewritten),
            Verdict::Deny { rule_id, reason } => Err((rule_id, reason)),
            Verdict::Rewrite(_) => Err(("rewrite".into(), "a rewrite that does not settle".into())),
        },
        Verdict::Deny { rule_id, reason } => Err((rule_id, reason)),
    }
}

/// C3 for returns (the command's return schema), C4 for errors (a known class).
fn judge_shape(name: &str, reply: &Reply, exec: &Exec) -> Result<(), String> {
    match reply {
        Reply::Return { value, .. } => exec.validators.validate_return(name, value).map_err(|v| {
            let list: Vec<String> = v.iter().map(|v| v.to_string()).collect();
            let mode = if exec.strict { "strict" } else { "open" };
            format!("return of {name} valid by its {mode} schema (C3): {}", list.join("; "))
        }),
        Reply::Error { class, .. } if ERROR_CLASSES.contains(&class.as_str()) => Ok(()),
        Reply::Error { class, .. } => {
            Err(format!("error class one of {} (C4), got {class}", ERROR_CLASSES.join(", ")))
        }
    }
}

/// Whether an error says the target lacks the device the command acts on.
pub fn lacks_device(class: &str, desc: &str) -> bool {
    class == "DeviceNotFound"
        || class == "DeviceNotActive"
        || (desc.starts_with("No ") && desc.contains(" has been activated"))
}

/// `NAME: accepted` or `NAME: CLASS`, with the error text for setup and cleanup steps
/// (the command's own error text is in its note).
fn step_label(name: &str, role: StepRole, reply: &Reply) -> String {
    match reply {
        Reply::Return { .. } => format!("{name}: accepted"),
        Reply::Error { class, .. } if role == StepRole::UnderTest => format!("{name}: {class}"),
        Reply::Error { class, desc, .. } => {
            let short: String = desc.chars().take(100).collect();
            format!("{name}: {class} ({short})")
        }
    }
}

/// A reply as compact JSON text for evidence.
pub(super) fn reply_to_text(reply: &Reply) -> String {
    let value = match reply {
        Reply::Return { value, id } => json!({"return": value, "id": id}),
        Reply::Error { class, desc, id } => json!({"error": {"class": class, "desc": desc}, "id": id}),
    };
    let text = value.to_string();
    escape_bytes(text.as_bytes(), 1500)
}

/// Connects, reads the greeting and negotiates.
pub(super) fn connect_negotiated(socket: &Path, timeout: Duration) -> Result<Client, String> {
    let config = ClientConfig { read_timeout: timeout, connect_timeout: timeout, ..ClientConfig::default() };
    let mut client = Client::connect(socket, config).map_err(|e| e.to_string())?;
    match client.negotiate(&[]).map_err(|e| e.to_string())? {
        Reply::Return { .. } => Ok(client),
        Reply::Error { class, desc, .. } => Err(format!("qmp_capabilities failed: {class}: {desc}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_refusals() {
        assert!(lacks_device("DeviceNotActive", "anything"));
        assert!(lacks_device("DeviceNotFound", "Device 'x' not found"));
        assert!(lacks_device("GenericError", "No balloon device has been activated"));
        assert!(!lacks_device("GenericError", "Invalid parameter 'x'"));
    }
}
