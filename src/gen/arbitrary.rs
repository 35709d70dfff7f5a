//! `arbitrary`-driven generation for cargo-fuzz: the same walker as the proptest strategies
//! and the seeded generator, reading its decisions from the fuzzer's bytes.

use ::arbitrary::{Error, Result, Unstructured};

use super::{
    builtin_rules, draw, eligible_commands, Context, GeneratedCommand, GeneratorConfig, GeneratorStats,
};
use crate::spec::Spec;

/// An allowed command of `spec` (built-in rules; no `x-*`, unstable or deprecated command)
/// with valid arguments built from the fuzzer's bytes. Errors only when the model offers no
/// allowed command.
pub fn command_from(u: &mut Unstructured, spec: &Spec) -> Result<GeneratedCommand> {
    let rules = builtin_rules().clone().with_model(spec);
    let eligible = eligible_commands(spec, &rules);
    if eligible.is_empty() {
        return Err(Error::EmptyChoose);
    }
    let config = GeneratorConfig::default();
    let mut stats = GeneratorStats::default();
    draw(spec, &rules, &eligible, u, &mut Context::new(), &config, &mut stats).ok_or(Error::IncorrectFormat)
}
