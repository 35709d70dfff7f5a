//! The type walker: builds a valid `arguments` object for a command from the model alone.
//!
//! One walker serves every generator; its decisions come from a [`ChoiceSource`] (seeded
//! RNG, `arbitrary` bytes, proptest bytes). Mandatory members are always present, optional
//! ones sometimes; integers stay in [`Builtin::int_range`] and favour edges; enums, union
//! discriminators and alternates pick a branch; arrays and nesting are bounded and, past
//! [`WalkConfig::max_depth`], take the terminating choice (absent, empty, scalar branch),
//! so recursive types end. Strings are short and printable (`[a-z0-9_-]`, a letter first,
//! never a path separator, `:` or `..`). Member names the table in [`super::names`] knows
//! draw names from a [`Context`], and the safety rules' [`Steer`] keeps the walker away
//! from values a rule would refuse.

use serde_json::{Map, Value};

use super::choice::ChoiceSource;
use super::names::{self, Context, NameEffect, NameRole};
use super::safety::Steer;
use crate::spec::{Builtin, Member, Spec, TypeKind, TypeRef};

/// Bounds and odds of the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkConfig {
    /// Nesting past which only terminating choices are taken.
    pub max_depth: usize,
    /// Most elements in an array.
    pub max_array: u64,
    /// Most characters in a generated string.
    pub max_string: u64,
    /// Chance (%) that an optional member is present.
    pub optional_percent: u64,
    /// Chance (%) that a name member draws an existing name when the context has one.
    pub use_existing_percent: u64,
    /// Take the table's preferred values (create → use → delete sequences).
    pub prefer: bool,
}

impl Default for WalkConfig {
    fn default() -> Self {
        WalkConfig {
            max_depth: 5,
            max_array: 3,
            max_string: 8,
            optional_percent: 50,
            use_existing_percent: 85,
            prefer: false,
        }
    }
}

/// Nesting at which even mandatory members stop (a malformed, infinitely recursive model).
const HARD_DEPTH: usize = 32;

/// What one walk produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The `arguments` object.
    pub arguments: Value,
    /// Names the command creates, uses or deletes.
    pub effects: Vec<NameEffect>,
    /// True when the walk could not respect the model and the rules at once (a mandatory
    /// member a rule denies, a hard depth stop); the draft should be discarded.
    pub blocked: bool,
}

/// Walks the arguments type of `command`.
pub struct Walker<'a> {
    spec: &'a Spec,
    command: &'a str,
    steer: &'a Steer,
    context: &'a mut Context,
    config: &'a WalkConfig,
    effects: Vec<NameEffect>,
    blocked: bool,
}

impl<'a> Walker<'a> {
    /// A walker for `command` of `spec`, steered by `steer`, drawing names from `context`.
    pub fn new(
        spec: &'a Spec,
        command: &'a str,
        steer: &'a Steer,
        context: &'a mut Context,
        config: &'a WalkConfig,
    ) -> Self {
        Walker { spec, command, steer, context, config, effects: Vec::new(), blocked: false }
    }

    /// Builds the arguments object (`{}` for a command without arguments or unknown).
    pub fn arguments(mut self, src: &mut dyn ChoiceSource) -> Draft {
        let args_type = self.spec.commands.get(self.command).and_then(|c| c.args.clone());
        let mut map = Map::new();
        if let Some(ty) = args_type {
            self.fill_object(&mut map, &ty, 0, src);
        }
        Draft { arguments: Value::Object(map), effects: self.effects, blocked: self.blocked }
    }

    /// Adds the members of a struct or union type (branch members included) to `map`.
    fn fill_object(
        &mut self,
        map: &mut Map<String, Value>,
        ty: &TypeRef,
        depth: usize,
        src: &mut dyn ChoiceSource,
    ) {
        if depth > HARD_DEPTH {
            self.blocked = true;
            return;
        }
        let spec = self.spec;
        let Some(def) = spec.resolve(ty) else { return };
        let chosen_branch = match &def.kind {
            TypeKind::Union { discriminator, variants, .. } => {
                let tag_member = spec.members(ty).into_iter().find(|m| &m.name == discriminator);
                let value = self.pick_discriminator(tag_member, variants, depth, src);
                Some((discriminator.clone(), value))
            }
            _ => None,
        };
        for member in spec.members(ty) {
            match &chosen_branch {
                Some((tag, value)) if &member.name == tag => {
                    map.insert(tag.clone(), Value::String(value.clone()));
                }
                _ => self.member(map, member, depth, src),
            }
        }
        if let Some((_, value)) = chosen_branch {
            if let Some(variant) = spec.variants(ty).iter().find(|v| v.value == value) {
                let branch = variant.ty.clone();
                self.fill_object(map, &branch, depth + 1, src);
            }
        }
    }

    /// The discriminator value: a branch the rules allow, fewest mandatory members first.
    fn pick_discriminator(
        &mut self,
        tag: Option<&Member>,
        variants: &[crate::spec::Variant],
        depth: usize,
        src: &mut dyn ChoiceSource,
    ) -> String {
        let mut candidates: Vec<String> = variants.iter().map(|v| v.value.clone()).collect();
        if let Some(values) = tag.map(|m| self.enum_values(&m.ty)) {
            for v in values {
                if !candidates.contains(&v) {
                    candidates.push(v);
                }
            }
        }
        let name = tag.map(|m| m.name.as_str()).unwrap_or("");
        let weight = |value: &String| {
            variants
                .iter()
                .find(|v| &v.value == value)
                .map(|v| self.spec.members(&v.ty).iter().filter(|m| !m.optional).count())
                .unwrap_or(0)
        };
        candidates.sort_by_key(weight);
        let picked = self.pick_string(name, candidates, depth, src);
        picked.unwrap_or_default()
    }

    /// One member: present (always when mandatory), with a value of its type.
    fn member(
        &mut self,
        map: &mut Map<String, Value>,
        member: &Member,
        depth: usize,
        src: &mut dyn ChoiceSource,
    ) {
        if self.steer.member_denied(&member.name) {
            if !member.optional {
                self.blocked = true;
            }
            return;
        }
        let fact = names::name_fact(self.command, &member.name, depth).filter(|_| self.is_str(&member.ty));
        if let Some((kind, role, template)) = fact {
            let live = self.context.names(kind).len();
            let present = !member.optional
                || role == NameRole::Create
                || (live > 0 && src.percent(self.config.use_existing_percent))
                || src.percent(self.config.optional_percent);
            if !present {
                return;
            }
            let existing = |index: usize| self.context.names(kind).get(index).cloned().unwrap_or_default();
            let name = match role {
                NameRole::Create => self.context.fresh(kind),
                // In sequences the newest name is the one just created for this scenario.
                _ if self.config.prefer && live > 0 => existing(live - 1),
                _ if live > 0 && src.percent(self.config.use_existing_percent) => existing(src.below(live)),
                _ => self.string(src),
            };
            self.effects.push(NameEffect { kind, role, name: name.clone() });
            map.insert(member.name.clone(), Value::String(template.replace("{}", &name)));
            return;
        }
        let shallow = depth < self.config.max_depth;
        let preferred = self.config.prefer && names::preferred(self.command, &member.name).is_some();
        if member.optional && !preferred && !(shallow && src.percent(self.config.optional_percent)) {
            return;
        }
        let value = self.value(&member.ty, depth + 1, &member.name, &member.values, src);
        map.insert(member.name.clone(), value);
    }

    /// A value of `ty`; `hint` is the member name (rules and the table key on it).
    fn value(
        &mut self,
        ty: &TypeRef,
        depth: usize,
        hint: &str,
        values: &[String],
        src: &mut dyn ChoiceSource,
    ) -> Value {
        if depth > HARD_DEPTH {
            self.blocked = true;
            return Value::Null;
        }
        match ty {
            TypeRef::Builtin(b) => self.builtin(*b, hint, values, depth, src),
            TypeRef::Array(element) => self.array(element, depth, hint, src),
            TypeRef::Unknown(_) => Value::Null,
            TypeRef::Named(_) => {
                let spec = self.spec;
                let Some(def) = spec.resolve(ty) else { return Value::Null };
                match &def.kind {
                    TypeKind::Builtin { builtin } => self.builtin(*builtin, hint, values, depth, src),
                    TypeKind::Enum { .. } => {
                        let all = self.enum_values(ty);
                        self.pick_string(hint, all, depth, src).map(Value::String).unwrap_or(Value::Null)
                    }
                    TypeKind::Struct { .. } | TypeKind::Union { .. } => {
                        let mut map = Map::new();
                        self.fill_object(&mut map, ty, depth, src);
                        Value::Object(map)
                    }
                    TypeKind::Alternate { alternatives } => {
                        let mut branches: Vec<&TypeRef> = alternatives.iter().map(|a| &a.ty).collect();
                        // Terminating branches (scalars) first; only they past max_depth.
                        branches.sort_by_key(|t| !self.is_scalar(t));
                        let scalars = branches.iter().filter(|t| self.is_scalar(t)).count();
                        let usable = if depth >= self.config.max_depth && scalars > 0 {
                            scalars
                        } else {
                            branches.len()
                        };
                        let Some(branch) = branches.get(src.below(usable)).copied().cloned() else {
                            return Value::Null;
                        };
                        self.value(&branch, depth, hint, values, src)
                    }
                    TypeKind::Array { element } => {
                        let element = element.clone();
                        self.array(&element, depth, hint, src)
                    }
                }
            }
        }
    }

    fn array(&mut self, element: &TypeRef, depth: usize, hint: &str, src: &mut dyn ChoiceSource) -> Value {
        let count = if depth >= self.config.max_depth { 0 } else { src.up_to(self.config.max_array) };
        Value::Array((0..count).map(|_| self.value(element, depth + 1, hint, &[], src)).collect())
    }

    fn builtin(
        &mut self,
        b: Builtin,
        hint: &str,
        values: &[String],
        depth: usize,
        src: &mut dyn ChoiceSource,
    ) -> Value {
        match b {
            Builtin::Str => self.str_value(hint, values, depth, src),
            Builtin::Bool => self.bool_value(hint, src),
            Builtin::Null => Value::Null,
            Builtin::Number => number(src),
            Builtin::Any => match src.below(4) {
                0 => Value::Null,
                1 => Value::from(src.up_to(100)),
                2 => Value::String(self.string(src)),
                _ => Value::Bool(src.percent(50)),
            },
            Builtin::Object => Value::Object(Map::new()),
            _ => self.integer(b, hint, src),
        }
    }

    /// A boolean: the table's preference in sequences, else either.
    fn bool_value(&mut self, hint: &str, src: &mut dyn ChoiceSource) -> Value {
        if self.config.prefer {
            let preferred = names::preferred(self.command, hint).into_iter().flatten();
            let parsed: Vec<bool> = preferred.filter_map(|v| v.parse::<bool>().ok()).collect();
            if let Some(&value) = parsed.get(src.below(parsed.len())) {
                return Value::Bool(value);
            }
        }
        Value::Bool(src.percent(50))
    }

    fn str_value(
        &mut self,
        hint: &str,
        values: &[String],
        depth: usize,
        src: &mut dyn ChoiceSource,
    ) -> Value {
        if !values.is_empty() {
            let picked = self.pick_string(hint, values.to_vec(), depth, src);
            return picked.map(Value::String).unwrap_or(Value::Null);
        }
        if let Some(allowed) = self.steer.allowed(hint) {
            let picked = self.pick_string(hint, allowed.to_vec(), depth, src);
            return picked.map(Value::String).unwrap_or(Value::Null);
        }
        if let Some(prefixes) = self.steer.prefixes(hint) {
            let prefix = prefixes.get(src.below(prefixes.len())).cloned().unwrap_or_default();
            // A socket after `unix:`, a plain file after other prefixes (`file:`).
            let suffix = if prefix == "unix:" { ".sock" } else { ".out" };
            return Value::String(format!("{prefix}q{}{suffix}", src.up_to(99)));
        }
        if self.config.prefer {
            if let Some(p) = names::preferred(self.command, hint) {
                if let Some(v) = p.get(src.below(p.len())) {
                    return Value::String(v.to_string());
                }
            }
        }
        Value::String(self.string(src))
    }

    /// Picks among `candidates` after the rules' filters (and, in sequences, the table's
    /// preferences); falls back to the unfiltered list rather than to nothing.
    fn pick_string(
        &mut self,
        hint: &str,
        candidates: Vec<String>,
        _depth: usize,
        src: &mut dyn ChoiceSource,
    ) -> Option<String> {
        let mut pool: Vec<String> = candidates.clone();
        if let Some(allowed) = self.steer.allowed(hint) {
            pool.retain(|v| allowed.contains(v));
        }
        pool.retain(|v| !self.steer.value_denied(hint, v));
        if self.config.prefer {
            if let Some(p) = names::preferred(self.command, hint) {
                let preferred: Vec<String> =
                    pool.iter().filter(|v| p.contains(&v.as_str())).cloned().collect();
                if !preferred.is_empty() {
                    pool = preferred;
                }
            }
        }
        if pool.is_empty() {
            pool = candidates;
        }
        pool.get(src.below(pool.len())).cloned()
    }

    fn integer(&mut self, b: Builtin, hint: &str, src: &mut dyn ChoiceSource) -> Value {
        let (mut lo, mut hi) = b.int_range().unwrap_or((0, 0));
        if let Some(max) = self.steer.max(hint) {
            hi = hi.min(max).max(lo);
        }
        if let Some(min) = self.steer.min(hint) {
            lo = lo.max(min).min(hi);
        }
        if self.config.prefer {
            if let Some(p) = names::preferred(self.command, hint) {
                if let Some(v) =
                    p.iter().filter_map(|s| s.parse::<i128>().ok()).find(|v| (lo..=hi).contains(v))
                {
                    return int_value(v);
                }
            }
        }
        let small_lo = lo.max(0).min(hi);
        let picked = match src.up_to(9) {
            0..=4 => src.in_range(small_lo, hi.min(small_lo + 64)),
            5 => lo,
            6 => hi,
            7 => 1.clamp(lo, hi),
            _ => src.in_range(lo, hi),
        };
        int_value(picked)
    }

    /// A short printable identifier-like string: a letter, then `[a-z0-9_-]`.
    fn string(&mut self, src: &mut dyn ChoiceSource) -> String {
        const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-";
        let len = src.up_to(self.config.max_string);
        let mut out = String::with_capacity(len as usize);
        for i in 0..len {
            let set = if i == 0 { FIRST } else { REST };
            out.push(char::from(set[src.below(set.len())]));
        }
        out
    }

    fn enum_values(&self, ty: &TypeRef) -> Vec<String> {
        match self.spec.resolve(ty).map(|d| &d.kind) {
            Some(TypeKind::Enum { values }) => values.iter().map(|v| v.name.clone()).collect(),
            _ => Vec::new(),
        }
    }

    fn is_str(&self, ty: &TypeRef) -> bool {
        match ty {
            TypeRef::Builtin(Builtin::Str) => true,
            TypeRef::Named(_) => matches!(
                self.spec.resolve(ty).map(|d| &d.kind),
                Some(TypeKind::Builtin { builtin: Builtin::Str })
            ),
            _ => false,
        }
    }

    fn is_scalar(&self, ty: &TypeRef) -> bool {
        match ty {
            TypeRef::Builtin(b) => !matches!(b, Builtin::Object | Builtin::Any),
            TypeRef::Named(_) => matches!(
                self.spec.resolve(ty).map(|d| &d.kind),
                Some(TypeKind::Enum { .. }) | Some(TypeKind::Builtin { .. })
            ),
            _ => false,
        }
    }
}

/// An integer as JSON: signed when it fits `i64`, else unsigned.
pub fn int_value(v: i128) -> Value {
    match i64::try_from(v) {
        Ok(i) => Value::from(i),
        Err(_) => u64::try_from(v).map(Value::from).unwrap_or(Value::Null),
    }
}

/// A finite double: small, fractional, or large.
fn number(src: &mut dyn ChoiceSource) -> Value {
    let x = match src.up_to(5) {
        0 => 0.0,
        1 => src.in_range(-1000, 1000) as f64 / 4.0,
        2 => 1.5e10,
        3 => -2.25,
        4 => f64::MAX,
        _ => src.in_range(0, 1 << 40) as f64 / 1024.0,
    };
    serde_json::Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null)
}
