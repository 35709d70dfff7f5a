//! Generators derived from the model, named mutators, and the safety deny rules as data.
//!
//! - [`walk`]: the one type walker that builds valid `arguments` from the model; its
//!   decisions come from a [`choice::ChoiceSource`], so the seeded [`Generator`] (fuzz loop),
//!   [`strategy`] (proptest) and [`arbitrary`] (cargo-fuzz) share it.
//! - [`names`]: the one table of special knowledge (which commands create, use and delete
//!   block nodes, objects, jobs, chardevs) and the [`names::Context`] of live names, for
//!   create → use → delete sequences.
//! - [`mutate`]: named mutators turning a valid command into bytes QEMU must refuse, each
//!   with the [`mutate::Expectation`] the fuzz loop checks.
//! - [`safety`]: the deny rules (`deny-rules.toml`), checked on every generated command and
//!   again on the bytes before they reach a socket.
//!
//! **Invariant:** nothing leaves a generator that [`safety::SafetyRules::check`] refuses:
//! rewrites are applied, denied drafts are dropped and drawn again.
//! This module does no I/O (except [`safety::SafetyRules::load`] reading a rules file).

pub mod arbitrary;
pub mod choice;
pub mod mutate;
pub mod names;
pub mod safety;
pub mod strategy;
pub mod walk;

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub use choice::{ChoiceSource, SplitMix64};
pub use mutate::{Expectation, Mutated, Mutator, MutatorStats};
pub use names::{Context, NameKind};
pub use safety::{SafetyRules, Verdict};
pub use walk::WalkConfig;

use crate::spec::Spec;
use names::NameRole;

/// A command a generator produced: a name from the model and valid arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedCommand {
    /// The command name.
    pub name: String,
    /// The `arguments` object (`{}` when the command takes none).
    pub arguments: Value,
}

impl GeneratedCommand {
    /// The request object `{"execute": NAME, "arguments": ARGS}`, with `id` when given.
    pub fn to_request(&self, id: Option<Value>) -> Value {
        let mut object = Map::new();
        object.insert("execute".to_string(), Value::String(self.name.clone()));
        object.insert("arguments".to_string(), self.arguments.clone());
        if let Some(id) = id {
            object.insert("id".to_string(), id);
        }
        Value::Object(object)
    }

    /// The request as compact JSON bytes (what goes on the wire, without a line end).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_request(None)).unwrap_or_default()
    }
}

/// How a [`Generator`] draws commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Bounds and odds of each walk.
    pub walk: WalkConfig,
    /// Include `x-*`, `unstable` and `deprecated` commands (the separate campaign).
    pub unstable_campaign: bool,
    /// The scratch dir path rewrites go into (relative names when `None`).
    pub scratch: Option<PathBuf>,
    /// Drafts drawn before falling back to the smallest allowed command.
    pub retries: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig { walk: WalkConfig::default(), unstable_campaign: false, scratch: None, retries: 32 }
    }
}

/// Counts of what the generator did, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratorStats {
    /// Commands emitted.
    pub emitted: u64,
    /// Drafts the rules rewrote (then emitted).
    pub rewritten: u64,
    /// Drafts the rules denied (drawn again).
    pub denied: u64,
    /// Drafts the walk could not complete (drawn again).
    pub blocked: u64,
}

/// The seeded generator of the fuzz loop: the same model and seed give the same commands.
#[derive(Debug)]
pub struct Generator<'a> {
    spec: &'a Spec,
    rules: SafetyRules,
    eligible: Vec<&'a str>,
    rng: SplitMix64,
    context: Context,
    config: GeneratorConfig,
    stats: GeneratorStats,
}

impl<'a> Generator<'a> {
    /// A generator over `spec` with the built-in rules and default configuration.
    pub fn new(spec: &'a Spec, seed: u64) -> Self {
        Generator::with_config(spec, seed, SafetyRules::load_builtin(), GeneratorConfig::default())
    }

    /// A generator with explicit rules and configuration.
    pub fn with_config(spec: &'a Spec, seed: u64, rules: SafetyRules, config: GeneratorConfig) -> Self {
        let mut rules = rules.with_model(spec).with_unstable_campaign(config.unstable_campaign);
        if let Some(dir) = &config.scratch {
            rules = rules.with_scratch(dir.clone());
        }
        let eligible = eligible_commands(spec, &rules);
        Generator {
            spec,
            rules,
            eligible,
            rng: SplitMix64::new(seed),
            context: Context::new(),
            config,
            stats: GeneratorStats::default(),
        }
    }

    /// The next command. With a model offering no allowed command, `query-version` with no
    /// arguments.
    pub fn next_command(&mut self) -> GeneratedCommand {
        let drawn = draw(
            self.spec,
            &self.rules,
            &self.eligible,
            &mut self.rng,
            &mut self.context,
            &self.config,
            &mut self.stats,
        );
        drawn.unwrap_or_else(|| GeneratedCommand { name: "query-version".to_string(), arguments: json!({}) })
    }

    /// A create → use → delete sequence for one kind of name (see [`names::KNOWLEDGE`]);
    /// empty when the model has no such pair of commands.
    pub fn next_sequence(&mut self) -> Vec<GeneratedCommand> {
        sequence(self.spec, &self.rules, &mut self.rng, &mut self.context, &self.config, &mut self.stats)
    }

    /// Names created so far and not deleted.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The rules in force.
    pub fn rules(&self) -> &SafetyRules {
        &self.rules
    }

    /// Commands the generator may draw (the model minus commands the rules deny outright).
    pub fn eligible(&self) -> &[&'a str] {
        &self.eligible
    }

    /// Counts so far.
    pub fn stats(&self) -> &GeneratorStats {
        &self.stats
    }
}

/// The built-in rules, parsed once.
pub fn builtin_rules() -> &'static SafetyRules {
    static RULES: OnceLock<SafetyRules> = OnceLock::new();
    RULES.get_or_init(SafetyRules::load_builtin)
}

/// Commands of `spec` that `rules` do not deny outright, in name order.
pub fn eligible_commands<'s>(spec: &'s Spec, rules: &SafetyRules) -> Vec<&'s str> {
    spec.commands.keys().map(String::as_str).filter(|name| !rules.denies_command(name)).collect()
}

/// Draws one allowed command: up to `config.retries` drafts, then the first command whose
/// smallest arguments pass. `None` only when no command passes at all.
pub(crate) fn draw(
    spec: &Spec,
    rules: &SafetyRules,
    eligible: &[&str],
    src: &mut dyn ChoiceSource,
    context: &mut Context,
    config: &GeneratorConfig,
    stats: &mut GeneratorStats,
) -> Option<GeneratedCommand> {
    if eligible.is_empty() {
        return None;
    }
    for _ in 0..config.retries.max(1) {
        let name = eligible[src.below(eligible.len())];
        if let Some(command) = draft_one(spec, rules, name, src, context, &config.walk, stats) {
            return Some(command);
        }
    }
    eligible
        .iter()
        .find_map(|name| draft_one(spec, rules, name, &mut choice::Minimal, context, &config.walk, stats))
}

/// Walks `name` once and passes the draft through the rules; applies its name effects.
pub(crate) fn draft_one(
    spec: &Spec,
    rules: &SafetyRules,
    name: &str,
    src: &mut dyn ChoiceSource,
    context: &mut Context,
    walk: &WalkConfig,
    stats: &mut GeneratorStats,
) -> Option<GeneratedCommand> {
    let steer = rules.steer(name);
    let draft = walk::Walker::new(spec, name, &steer, context, walk).arguments(src);
    if draft.blocked {
        stats.blocked += 1;
        return None;
    }
    let arguments = match rules.check(name, &draft.arguments) {
        Verdict::Allow => draft.arguments,
        Verdict::Rewrite(rewritten) if rules.check(name, &rewritten) == Verdict::Allow => {
            stats.rewritten += 1;
            rewritten
        }
        _ => {
            stats.denied += 1;
            return None;
        }
    };
    context.apply(&draft.effects);
    stats.emitted += 1;
    Some(GeneratedCommand { name: name.to_string(), arguments })
}

/// A create → use → delete sequence for a kind picked by `src` (prerequisite kinds, such as
/// the block node a job runs on, are created first and deleted last).
pub(crate) fn sequence(
    spec: &Spec,
    rules: &SafetyRules,
    src: &mut dyn ChoiceSource,
    context: &mut Context,
    config: &GeneratorConfig,
    stats: &mut GeneratorStats,
) -> Vec<GeneratedCommand> {
    let allowed = |name: &&str| spec.commands.contains_key(*name) && !rules.denies_command(name);
    let kinds: Vec<NameKind> = NameKind::ALL
        .into_iter()
        .filter(|k| {
            !creators(spec, *k, &allowed).is_empty()
                && names::commands_for(*k, NameRole::Delete).iter().any(&allowed)
        })
        .collect();
    if kinds.is_empty() {
        return Vec::new();
    }
    let kind = kinds[src.below(kinds.len())];
    // Few optional members: each is one more way for a real QEMU to refuse the step.
    let walk =
        WalkConfig { prefer: true, use_existing_percent: 100, optional_percent: 15, ..config.walk.clone() };
    let mut out = Vec::new();
    let mut step =
        |name: &str, src: &mut dyn ChoiceSource, context: &mut Context, out: &mut Vec<GeneratedCommand>| {
            if let Some(c) = draft_one(spec, rules, name, src, context, &walk, stats) {
                out.push(c);
            }
        };
    let create = pick(&creators(spec, kind, &allowed), &allowed, src);
    let prerequisites = create.map(|c| prerequisite_kinds(spec, c, kind)).unwrap_or_default();
    for pre in &prerequisites {
        if let Some(c) = pick(&creators(spec, *pre, &allowed), &allowed, src) {
            step(c, src, context, &mut out);
        }
    }
    if let Some(c) = create {
        step(c, src, context, &mut out);
    }
    let users = using_commands(spec, kind, &allowed);
    for _ in 0..=src.below(2) {
        if !users.is_empty() {
            step(users[src.below(users.len())], src, context, &mut out);
        }
    }
    for k in std::iter::once(kind).chain(prerequisites.iter().rev().copied()) {
        if let Some(c) = pick(&names::commands_for(k, NameRole::Delete), &allowed, src) {
            step(c, src, context, &mut out);
        }
    }
    out
}

fn pick<'n>(
    names: &[&'n str],
    allowed: &dyn Fn(&&str) -> bool,
    src: &mut dyn ChoiceSource,
) -> Option<&'n str> {
    let usable: Vec<&str> = names.iter().copied().filter(|n| allowed(n)).collect();
    usable.get(src.below(usable.len())).copied()
}

/// The commands that can start a sequence for `kind`: they create a name of it and need no
/// other one of the same kind (`drive-mirror` creates its target node but mirrors an
/// existing one, so it is a later step, not a start).
fn creators(spec: &Spec, kind: NameKind, allowed: &dyn Fn(&&str) -> bool) -> Vec<&'static str> {
    let creates = names::commands_for(kind, NameRole::Create);
    creates.into_iter().filter(|c| allowed(c) && !mandatory_use_kinds(spec, c).contains(&kind)).collect()
}

/// Kinds the mandatory top-level members of `command` use.
fn mandatory_use_kinds(spec: &Spec, command: &str) -> Vec<NameKind> {
    let Some(cmd) = spec.commands.get(command) else { return Vec::new() };
    let mut out = Vec::new();
    for member in spec.command_args(cmd).into_iter().filter(|m| !m.optional) {
        if let Some((k, NameRole::Use, _)) = names::name_fact(command, &member.name, 0) {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// Kinds whose names the mandatory top-level members of `create` use (other than `kind`).
fn prerequisite_kinds(spec: &Spec, create: &str, kind: NameKind) -> Vec<NameKind> {
    mandatory_use_kinds(spec, create).into_iter().filter(|k| *k != kind).collect()
}

/// Commands that use or observe a name of `kind`: the table's rows, plus every command of
/// the model with a top-level member the table's `*` rows tie to `kind`; not those that
/// create a name of any kind (it would outlive the sequence's deletes: block-stream's job
/// keeps the node busy).
fn using_commands<'s>(spec: &'s Spec, kind: NameKind, allowed: &dyn Fn(&&str) -> bool) -> Vec<&'s str> {
    let generic = names::generic_members(kind);
    let mut out: Vec<&str> = Vec::new();
    for (name, command) in &spec.commands {
        let listed = [NameRole::Use, NameRole::Observe]
            .iter()
            .any(|r| names::commands_for(kind, *r).contains(&name.as_str()));
        let by_member = spec.command_args(command).iter().any(|m| {
            generic.contains(&m.name.as_str())
                && matches!(names::name_fact(name, &m.name, 0), Some((k, NameRole::Use, _)) if k == kind)
        });
        let creates =
            NameKind::ALL.iter().any(|k| names::commands_for(*k, NameRole::Create).contains(&name.as_str()));
        if (listed || by_member) && !creates && allowed(&name.as_str()) {
            out.push(name.as_str());
        }
    }
    out
}
