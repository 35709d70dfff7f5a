//! Differential test of the fast reply path (`check::fast`) against the reference, the
//! jsonschema crate over the schemas of `check::schema`.
//!
//! Values of every QEMU 7.2 return type and event data type are generated from the model
//! (benches/support/values.rs), written as QEMU writes them, and checked both ways: parsed
//! with serde_json and validated by jsonschema, and checked from the bytes by
//! `FastValidator`. Then one mutation (a wrong JSON kind, an out-of-range or fractional
//! integer, an unknown enum value, a removed or added member, a bad array element) and both
//! again. Both must give the same verdict and, when invalid, the same instance path for the
//! first error. Exhaustively over every type with a few seeds, then at random (proptest),
//! in the default (open outputs) and the strict (closed) schema options.

#[path = "../benches/support/values.rs"]
mod values;

use std::sync::OnceLock;

use proptest::prelude::*;
use qmpcheck::check::fast::{FastValidator, MessageKind, ViolationKind};
use qmpcheck::check::schema::{SchemaOptions, SchemaRole, SchemaSet, Validators};
use qmpcheck::spec::{Spec, TypeRef};
use qmpcheck::wire::stream::parse_json;
use serde_json::{json, Map, Value};

use values::{to_qemu_json, Profile, Rng, ValueGen};

/// One checker pair over one schema option.
struct Pair {
    reference: Validators,
    fast: FastValidator,
}

struct World {
    spec: Spec,
    open: Pair,
    strict: Pair,
    /// Every command with a return type and every event with data.
    items: Vec<(SchemaRole, String, TypeRef)>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let spec = qmpcheck::source::builtin();
        let pair = |options: SchemaOptions| Pair {
            reference: Validators::new(&SchemaSet::build(&spec, options)),
            fast: FastValidator::with_options(&spec, options),
        };
        let open = pair(SchemaOptions::default());
        let strict = pair(SchemaOptions { strict: true });
        let mut items = Vec::new();
        for command in spec.commands.values() {
            if let Some(ty) = &command.returns {
                items.push((SchemaRole::Return, command.name.clone(), ty.clone()));
            }
        }
        for event in spec.events.values() {
            if let Some(ty) = &event.data {
                items.push((SchemaRole::EventData, event.name.clone(), ty.clone()));
            }
        }
        World { spec, open, strict, items }
    })
}

/// The verdict of one checker: `None` when valid, else the instance path of the first error.
type Verdict = Option<String>;

fn reference_verdict(pair: &Pair, role: SchemaRole, name: &str, bytes: &[u8]) -> Verdict {
    let value = parse_json(bytes).expect("generated text is json");
    match pair.reference.validate(role, name, &value) {
        Ok(()) => None,
        Err(errors) => Some(errors.first().map(|e| e.instance_path.clone()).unwrap_or_default()),
    }
}

fn fast_verdict(pair: &Pair, role: SchemaRole, name: &str, bytes: &[u8]) -> Verdict {
    let result = match role {
        SchemaRole::EventData => pair.fast.validate_event(name, bytes),
        _ => pair.fast.validate_return(name, bytes),
    };
    match result {
        Ok(()) => None,
        Err(v) => {
            assert!(!matches!(v.kind, ViolationKind::InvalidJson { .. }), "valid json called invalid: {v}");
            Some(v.instance_path)
        }
    }
}

/// Generates a value of item `index`, checks it, mutates it once, checks again. Returns
/// (valid before, valid after) as the reference saw them.
fn differential(index: usize, seed: u64, strict: bool) -> (bool, bool) {
    let world = world();
    let (role, name, ty) = &world.items[index % world.items.len()];
    let pair = if strict { &world.strict } else { &world.open };
    let mut gen = ValueGen::new(&world.spec, Profile::random(), seed);
    let value = gen.value(ty, "value");
    let bytes = to_qemu_json(&value);
    let before = reference_verdict(pair, *role, name, &bytes);
    assert_eq!(fast_verdict(pair, *role, name, &bytes), before, "{role} of {name}, seed {seed}, valid value");
    assert_eq!(before, None, "generated {role} of {name} (seed {seed}) is valid for the reference");

    let mut rng = Rng::new(seed ^ 0xdead_beef);
    let mut mutated = value;
    let what = mutate(&mut mutated, &mut rng);
    let bytes = to_qemu_json(&mutated);
    let after = reference_verdict(pair, *role, name, &bytes);
    let fast = fast_verdict(pair, *role, name, &bytes);
    assert_eq!(
        fast,
        after,
        "{role} of {name}, seed {seed}, strict {strict}, mutation {what}: {}",
        String::from_utf8_lossy(&bytes)
    );
    (before.is_none(), after.is_none())
}

/// Applies one random mutation somewhere in `value`; returns what it did.
fn mutate(value: &mut Value, rng: &mut Rng) -> String {
    let mut paths = Vec::new();
    collect_paths(value, &mut Vec::new(), &mut paths);
    let path = paths.get(rng.below(paths.len() as u64) as usize).cloned().unwrap_or_default();
    let Some(target) = value_at(value, &path) else { return "none".into() };
    let choice = rng.below(8);
    let label = format!("{choice} at {path:?}");
    match (choice, &mut *target) {
        (0, _) => {
            let kinds = [json!("x"), json!(7), json!(1.5), json!(true), Value::Null, json!({}), json!([])];
            *target = kinds[rng.below(kinds.len() as u64) as usize].clone();
        }
        (1, Value::Number(_)) => {
            let odd = [json!(1.5), json!(-1), json!(1e19), json!(-1e19), json!(18446744073709551615u64)];
            *target = odd[rng.below(odd.len() as u64) as usize].clone();
        }
        (2, Value::String(_)) => *target = json!("no-such-value"),
        (3, Value::Object(map)) if !map.is_empty() => {
            let index = rng.below(map.len() as u64) as usize;
            let key = map.keys().nth(index).cloned().unwrap_or_default();
            map.shift_remove(&key);
        }
        (4, Value::Object(map)) => {
            map.insert("x-unknown-member".into(), json!(1));
        }
        (5, Value::Array(items)) => items.push(json!("x")),
        (6, Value::Array(items)) if !items.is_empty() => {
            items.remove(0);
        }
        _ => *target = Value::Object(Map::new()),
    }
    label
}

fn collect_paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                prefix.push(Step::Key(key.clone()));
                collect_paths(item, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                collect_paths(item, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn value_at<'v>(value: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    let mut current = value;
    for step in path {
        current = match step {
            Step::Key(key) => current.get_mut(key.as_str())?,
            Step::Index(i) => current.get_mut(*i)?,
        };
    }
    Some(current)
}

#[test]
fn every_return_and_event_type_agrees_with_jsonschema() {
    let world = world();
    let mut invalid = 0;
    let mut checked = 0;
    for index in 0..world.items.len() {
        for seed in 0..4u64 {
            for strict in [false, true] {
                let (_, valid_after) = differential(index, seed * 7919 + index as u64, strict);
                invalid += usize::from(!valid_after);
                checked += 1;
            }
        }
    }
    // 93 commands return something other than `{}` and 45 events carry data in QEMU 7.2
    // (x86_64, -machine none; counted in the recorded query-qmp-schema).
    let returns = world.items.iter().filter(|(role, _, _)| *role == SchemaRole::Return).count();
    assert_eq!((returns, world.items.len() - returns), (93, 45));
    assert_eq!(checked, world.items.len() * 8);
    // Mutations must break values often enough for the comparison to mean something.
    assert!(invalid * 3 > checked, "only {invalid} of {checked} mutated values were invalid");
}

#[test]
fn whole_messages_are_framed_and_checked() {
    let world = world();
    let mut gen = ValueGen::new(&world.spec, Profile::full(), 9);
    let ty = world.spec.commands["query-blockstats"].returns.clone().expect("returns");
    let reply = json!({"return": gen.value(&ty, "return"), "id": {"nested": [1, "x"]}});
    let text = to_qemu_json(&reply);
    assert_eq!(world.open.fast.check_message(Some("query-blockstats"), &text), Ok(MessageKind::Return));
    let mut broken = reply.clone();
    broken["return"] = json!([{"stats": 1}]);
    let err = world.open.fast.check_message(Some("query-blockstats"), &to_qemu_json(&broken)).unwrap_err();
    assert_eq!(err.instance_path, "/return/0/stats");
    let truncated = &text[..text.len() - 1];
    let err = world.open.fast.check_message(Some("query-blockstats"), truncated).unwrap_err();
    assert!(matches!(err.kind, ViolationKind::InvalidJson { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_values_and_mutations_agree(index in 0usize..1000, seed in any::<u64>(), strict in any::<bool>()) {
        differential(index, seed, strict);
    }
}
