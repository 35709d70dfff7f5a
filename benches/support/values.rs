//! Realistic values of model types, for the bench corpus and the differential test.
//!
//! A deterministic generator (SplitMix64 seeded by the caller) walks the model's type graph:
//! structs and unions in member order (as QEMU writes them), union branches chosen by
//! discriminator, alternates by one alternative. Numbers look like QEMU's counters (bytes,
//! operations, nanoseconds), strings like device and node names. [`Profile`] says which
//! optional members appear and how far recursive types (BlockStats.parent/backing) nest.
//! Output is a `serde_json::Value` (members in insertion order) and [`to_qemu_json`] writes
//! it the way QEMU does (`{"a": 1, "b": [2, 3]}`).

use std::collections::BTreeMap;

use qmpcheck::spec::{Builtin, Spec, TypeKind, TypeRef};
use serde_json::{Map, Number, Value};

/// Which optional members a generated value has.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Probability that an optional member appears (1.0: all, 0.0: none).
    pub optional: f64,
    /// Optional members never generated (e.g. latency histograms QEMU leaves out).
    pub skip: Vec<&'static str>,
    /// How many times one named type may already be on the path before optional members of
    /// that type stop appearing (1: BlockStats has a parent, the parent has none).
    pub recursion: usize,
    /// Array lengths are drawn from `0..=max_array`.
    pub max_array: usize,
    /// Draw boundary values (type minimum/maximum, escaped and non-ASCII strings) sometimes.
    pub edges: bool,
}

impl Profile {
    /// Everything optional appears except `skip`, one level of recursion, arrays of one.
    pub fn full() -> Profile {
        Profile { optional: 1.0, skip: Vec::new(), recursion: 1, max_array: 1, edges: false }
    }

    /// Random optional members and array lengths, boundary values included.
    pub fn random() -> Profile {
        Profile { optional: 0.5, skip: Vec::new(), recursion: 1, max_array: 3, edges: true }
    }
}

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// Generates values of the types of one model.
pub struct ValueGen<'s> {
    spec: &'s Spec,
    /// The profile in force.
    pub profile: Profile,
    /// The random source.
    pub rng: Rng,
    /// How often each named type is on the current path.
    on_path: BTreeMap<String, usize>,
    /// A counter that makes names distinct (`drive7`, `#block7`).
    pub serial: u64,
}

const WORDS: [&str; 12] = [
    "virtio0",
    "ide0-hd0",
    "disk",
    "pc.ram",
    "floppy",
    "scsi0",
    "nvme1",
    "cd0",
    "qcow2",
    "raw",
    "iothread1",
    "vm",
];
const EDGE_STRINGS: [&str; 6] = ["", "a\"b", "back\\slash", "caf\u{e9}", "tab\tnew\nline", "\u{1f600}"];

impl<'s> ValueGen<'s> {
    /// A generator over `spec` with `profile` and `seed`.
    pub fn new(spec: &'s Spec, profile: Profile, seed: u64) -> ValueGen<'s> {
        ValueGen { spec, profile, rng: Rng::new(seed), on_path: BTreeMap::new(), serial: 0 }
    }

    /// A value of `ty`; `name` is the member name it is for (shapes strings and numbers).
    pub fn value(&mut self, ty: &TypeRef, name: &str) -> Value {
        match ty {
            TypeRef::Builtin(b) => self.builtin(*b, name),
            TypeRef::Array(element) => self.array(element, name),
            TypeRef::Unknown(_) => Value::Null,
            TypeRef::Named(type_name) => self.named(type_name, name),
        }
    }

    fn array(&mut self, element: &TypeRef, name: &str) -> Value {
        let len = self.rng.below(self.profile.max_array as u64 + 1);
        Value::Array((0..len).map(|_| self.value(element, name)).collect())
    }

    fn named(&mut self, type_name: &str, name: &str) -> Value {
        let Some(def) = self.spec.types.get(type_name) else { return Value::Null };
        match &def.kind {
            TypeKind::Builtin { builtin } => self.builtin(*builtin, name),
            TypeKind::Enum { values } => {
                let pick = self.rng.below(values.len() as u64) as usize;
                values.get(pick).map_or(Value::Null, |v| Value::String(v.name.clone()))
            }
            TypeKind::Array { element } => self.array(element, name),
            TypeKind::Alternate { alternatives } => {
                let pick = self.rng.below(alternatives.len() as u64) as usize;
                match alternatives.get(pick) {
                    Some(alternative) => {
                        let ty = alternative.ty.clone();
                        self.value(&ty, name)
                    }
                    None => Value::Null,
                }
            }
            TypeKind::Struct { .. } | TypeKind::Union { .. } => {
                *self.on_path.entry(type_name.to_string()).or_insert(0) += 1;
                let mut map = Map::new();
                self.object_members(&TypeRef::Named(type_name.to_string()), &mut map, 0);
                if let Some(count) = self.on_path.get_mut(type_name) {
                    *count -= 1;
                }
                Value::Object(map)
            }
        }
    }

    /// Members of an object type, then those of the union branch its discriminator picks.
    fn object_members(&mut self, ty: &TypeRef, map: &mut Map<String, Value>, depth: usize) {
        let spec = self.spec;
        let union = match spec.resolve(ty).map(|d| &d.kind) {
            Some(TypeKind::Union { discriminator, variants, .. }) if depth < 8 => {
                Some((discriminator.clone(), variants.clone()))
            }
            _ => None,
        };
        for member in spec.members(ty) {
            let present = !member.optional || self.include_optional(&member.name, &member.ty);
            if !present {
                continue;
            }
            let value = match &union {
                // The discriminator picks a value that has a branch, when there are branches.
                Some((disc, variants)) if *disc == member.name && !variants.is_empty() => {
                    let pick = self.rng.below(variants.len() as u64) as usize;
                    variants.get(pick).map_or(Value::Null, |v| Value::String(v.value.clone()))
                }
                _ => self.value(&member.ty, &member.name),
            };
            map.insert(member.name.clone(), value);
        }
        let Some((disc, variants)) = union else { return };
        let chosen = map.get(&disc).and_then(Value::as_str).map(str::to_string);
        let branch = variants.iter().find(|v| Some(v.value.as_str()) == chosen.as_deref());
        if let Some(variant) = branch {
            let branch_ty = variant.ty.clone();
            self.object_members(&branch_ty, map, depth + 1);
        }
    }

    fn include_optional(&mut self, name: &str, ty: &TypeRef) -> bool {
        if self.profile.skip.contains(&name) {
            return false;
        }
        let mut inner = ty;
        while let TypeRef::Array(element) = inner {
            inner = element;
        }
        if let TypeRef::Named(type_name) = inner {
            if self.on_path.get(type_name).copied().unwrap_or(0) > self.profile.recursion {
                return false;
            }
        }
        let p = self.profile.optional;
        self.rng.chance(p)
    }

    fn builtin(&mut self, builtin: Builtin, name: &str) -> Value {
        if let Some((min, max)) = builtin.int_range() {
            return Value::Number(self.integer(min, max, name));
        }
        match builtin {
            Builtin::Str => Value::String(self.string(name)),
            Builtin::Number => {
                let x = self.rng.below(1_000_000) as f64 / 1000.0;
                Number::from_f64(x).map_or(Value::Null, Value::Number)
            }
            Builtin::Bool => Value::Bool(self.rng.chance(0.5)),
            Builtin::Null => Value::Null,
            Builtin::Any | Builtin::Object => {
                let mut map = Map::new();
                if self.rng.chance(0.5) {
                    map.insert("key".into(), Value::String(self.string("key")));
                }
                Value::Object(map)
            }
            _ => Value::Null,
        }
    }

    /// Counters as QEMU reports them: bytes up to terabytes, operations up to millions,
    /// nanoseconds up to hours; boundaries of the range sometimes in edge mode.
    fn integer(&mut self, min: i128, max: i128, name: &str) -> Number {
        if self.profile.edges && self.rng.chance(0.1) {
            let edge = if self.rng.chance(0.5) { min } else { max };
            return int_number(edge);
        }
        let scale: u64 = if name.contains("bytes") || name.contains("offset") || name.contains("size") {
            1 << 40
        } else if name.ends_with("_ns") || name.contains("time") {
            3_600_000_000_000
        } else if name.contains("operations") || name.contains("merged") {
            5_000_000
        } else {
            4096
        };
        let magnitude = self.rng.below(scale + 1) >> self.rng.below(24);
        let value = (magnitude as i128).clamp(min.max(0), max);
        let negative = min < 0 && self.profile.edges && self.rng.chance(0.1);
        int_number(if negative { (-value).max(min) } else { value })
    }

    fn string(&mut self, name: &str) -> String {
        if self.profile.edges && self.rng.chance(0.1) {
            let pick = self.rng.below(EDGE_STRINGS.len() as u64) as usize;
            return EDGE_STRINGS.get(pick).copied().unwrap_or("").to_string();
        }
        self.serial += 1;
        let n = self.serial;
        match name {
            "device" | "id" => format!("drive{n}"),
            "node-name" => format!("#block{n:03}"),
            "qdev" => format!("/machine/peripheral/virtio-disk{n}/virtio-backend"),
            "filename" | "file" | "path" => format!("/var/lib/libvirt/images/disk{n}.qcow2"),
            _ => {
                let pick = self.rng.below(WORDS.len() as u64) as usize;
                WORDS.get(pick).copied().unwrap_or("x").to_string()
            }
        }
    }
}

fn int_number(value: i128) -> Number {
    if let Ok(v) = i64::try_from(value) {
        Number::from(v)
    } else if let Ok(v) = u64::try_from(value) {
        Number::from(v)
    } else {
        Number::from(0)
    }
}

/// Writes a value as QEMU does: `": "` after names, `", "` between items, ASCII only
/// (non-ASCII as `\uXXXX`), members in the value's order.
pub fn to_qemu_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_qemu(value, &mut out);
    out
}

fn write_qemu(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_qemu(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_string(key, out);
                out.extend_from_slice(b": ");
                write_qemu(item, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (' '..='~').contains(&c) => out.push(c as u8),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{unit:04X}").as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}
