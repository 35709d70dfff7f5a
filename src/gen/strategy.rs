//! proptest strategies: valid arguments, allowed commands and create → use → delete
//! sequences, all drawn by the shared walker from a shrinkable byte vector.
//!
//! The bytes feed an [`arbitrary::Unstructured`], the walker's [`ChoiceSource`]: proptest
//! shrinks the bytes towards fewer and smaller ones, which the walker reads as "absent,
//! empty, first branch", so failures shrink towards the smallest valid arguments.

use std::sync::Arc;

use ::arbitrary::Unstructured;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

use super::choice::ChoiceSource;
use super::{
    draft_one, draw, eligible_commands, sequence, Context, GeneratedCommand, GeneratorConfig, GeneratorStats,
};
use super::{walk, SafetyRules};
use crate::spec::Spec;

/// Most decision bytes one value is drawn from.
pub const MAX_CHOICE_BYTES: usize = 2048;

fn choice_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..MAX_CHOICE_BYTES)
}

/// Valid `arguments` for `command` of `spec`, from the model alone (no rules, no context).
/// For a command the model lacks, `{}`.
pub fn arguments(spec: Arc<Spec>, command: String) -> impl Strategy<Value = Value> {
    choice_bytes().prop_map(move |bytes| {
        let mut u = Unstructured::new(&bytes);
        let steer = Default::default();
        let mut context = Context::new();
        let config = walk::WalkConfig::default();
        walk::Walker::new(&spec, &command, &steer, &mut context, &config).arguments(&mut u).arguments
    })
}

/// Allowed commands of `spec`: drawn from the commands the rules do not deny, with valid
/// arguments that pass [`SafetyRules::check`] (rewrites applied).
pub fn command(spec: Arc<Spec>, rules: Arc<SafetyRules>) -> impl Strategy<Value = GeneratedCommand> {
    let rules = Arc::new(rules.as_ref().clone().with_model(&spec));
    choice_bytes().prop_map(move |bytes| {
        let mut u = Unstructured::new(&bytes);
        let eligible = eligible_commands(&spec, &rules);
        let config = GeneratorConfig::default();
        let mut stats = GeneratorStats::default();
        draw(&spec, &rules, &eligible, &mut u, &mut Context::new(), &config, &mut stats).unwrap_or_else(
            || GeneratedCommand {
                name: "query-version".into(),
                arguments: Value::Object(Default::default()),
            },
        )
    })
}

/// Allowed commands for one named command (rules applied); `None` when the rules deny every
/// draft of it.
pub fn command_named(
    spec: Arc<Spec>,
    rules: Arc<SafetyRules>,
    name: String,
) -> impl Strategy<Value = Option<GeneratedCommand>> {
    let rules = Arc::new(rules.as_ref().clone().with_model(&spec));
    choice_bytes().prop_map(move |bytes| {
        let mut u = Unstructured::new(&bytes);
        let mut stats = GeneratorStats::default();
        let walk = walk::WalkConfig::default();
        draft_one(&spec, &rules, &name, &mut u, &mut Context::new(), &walk, &mut stats)
    })
}

/// Sequences: `count` (1..=max) create → use → delete scenarios back to back, sharing one
/// [`Context`], so later commands may use names earlier ones created.
pub fn sequences(
    spec: Arc<Spec>,
    rules: Arc<SafetyRules>,
    max: usize,
) -> impl Strategy<Value = Vec<GeneratedCommand>> {
    let rules = Arc::new(rules.as_ref().clone().with_model(&spec));
    choice_bytes().prop_map(move |bytes| {
        let mut u = Unstructured::new(&bytes);
        let mut context = Context::new();
        let config = GeneratorConfig::default();
        let mut stats = GeneratorStats::default();
        let count = 1 + u.below(max.max(1));
        let mut out = Vec::new();
        for _ in 0..count {
            out.extend(sequence(&spec, &rules, &mut u, &mut context, &config, &mut stats));
        }
        out
    })
}
