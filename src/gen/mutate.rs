//! Named mutators: each turns a valid generated command into bytes QEMU must refuse (or
//! survive), and says which, so the fuzz loop can classify an unexpected success.
//!
//! Expectations were checked against QEMU 7.2 (duplicate keys, invalid UTF-8, `\ud800`, a
//! 0xFF byte and truncation are "JSON parse error"s; `exec-oob` without the capability is
//! "QMP input member 'exec-oob' is unexpected"; an integer past `int64` is "Invalid
//! parameter type"; 2^53+1 reaches an `int` member intact). Every output is bounded
//! ([`MAX_STRING`], [`NESTING`]).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};

use super::choice::ChoiceSource;
use super::GeneratedCommand;
use crate::spec::{Builtin, Member, Spec, TypeKind, TypeRef};

/// Size of the huge string (1 MiB), well under QEMU's 64 MiB token limit.
pub const MAX_STRING: usize = 1 << 20;

/// Nesting depth of the over-deep mutator: past QEMU's limit of 1024.
pub const NESTING: usize = 1100;

/// The member name the unknown-member mutator adds.
pub const UNKNOWN_MEMBER: &str = "qmpcheck-unknown-member";

/// What QEMU must do with a mutated command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expectation {
    /// An error reply (GenericError) to this command; success is a finding.
    Rejected,
    /// One or more id-less "JSON parse error" replies; the session survives (a sentinel
    /// command with a known id answers afterwards).
    ParseErrorThenSurvive,
    /// Valid input QEMU may still refuse on its merits: any reply; only a crash, a hang or
    /// an invalid reply is a finding.
    Accepted,
}

impl Expectation {
    /// Short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Expectation::Rejected => "rejected",
            Expectation::ParseErrorThenSurvive => "parse-error-then-survive",
            Expectation::Accepted => "accepted",
        }
    }
}

/// The mutators, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutator {
    /// Remove a mandatory top-level member.
    DropMandatory,
    /// Add a member the command does not have.
    UnknownMember,
    /// Give a member (or `arguments` itself) a JSON type its type does not accept.
    WrongType,
    /// Put an integer edge (i64/u64 limits, -1, 2^53+1, 2^64, as raw text) in an integer member.
    IntegerEdge,
    /// A 1 MiB string in a string member (or in `id`).
    HugeString,
    /// An empty string in a string member (or in `id`).
    EmptyString,
    /// An `id` nested past QEMU's depth limit.
    DeepNesting,
    /// Invalid UTF-8 bytes inside a string.
    InvalidUtf8,
    /// A lone surrogate escape (`\ud800`) inside a string.
    LoneSurrogate,
    /// The text cut short, then 0xFF so QEMU's parser resets.
    Truncated,
    /// A member repeated in the raw text.
    DuplicateKey,
    /// A 0xFF byte between two tokens (QEMU's parser reset).
    ParserReset,
    /// `exec-oob` instead of `execute` without the `oob` capability.
    ExecOobWithoutCapability,
    /// An `id` of one of JSON's types (echoed unchanged by rule C2).
    IdOfEveryType,
}

impl Mutator {
    /// Every mutator, in a fixed order.
    pub const ALL: [Mutator; 14] = [
        Mutator::DropMandatory,
        Mutator::UnknownMember,
        Mutator::WrongType,
        Mutator::IntegerEdge,
        Mutator::HugeString,
        Mutator::EmptyString,
        Mutator::DeepNesting,
        Mutator::InvalidUtf8,
        Mutator::LoneSurrogate,
        Mutator::Truncated,
        Mutator::DuplicateKey,
        Mutator::ParserReset,
        Mutator::ExecOobWithoutCapability,
        Mutator::IdOfEveryType,
    ];

    /// The mutator's name (kebab-case, used in findings and stats).
    pub fn name(self) -> &'static str {
        match self {
            Mutator::DropMandatory => "drop-mandatory",
            Mutator::UnknownMember => "unknown-member",
            Mutator::WrongType => "wrong-type",
            Mutator::IntegerEdge => "integer-edge",
            Mutator::HugeString => "huge-string",
            Mutator::EmptyString => "empty-string",
            Mutator::DeepNesting => "deep-nesting",
            Mutator::InvalidUtf8 => "invalid-utf8",
            Mutator::LoneSurrogate => "lone-surrogate",
            Mutator::Truncated => "truncated",
            Mutator::DuplicateKey => "duplicate-key",
            Mutator::ParserReset => "parser-reset",
            Mutator::ExecOobWithoutCapability => "exec-oob-without-capability",
            Mutator::IdOfEveryType => "id-of-every-type",
        }
    }

    /// The mutator of that name.
    pub fn from_name(name: &str) -> Option<Mutator> {
        Mutator::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Applies the mutator to `command` (valid for `spec`); `None` when it does not apply
    /// (no mandatory member to drop, no integer member, ...).
    pub fn apply(
        self,
        spec: &Spec,
        command: &GeneratedCommand,
        src: &mut dyn ChoiceSource,
    ) -> Option<Mutated> {
        let members = top_members(spec, &command.name);
        let request = command.to_request(None);
        let (bytes, expect) = match self {
            Mutator::DropMandatory => {
                let mandatory: Vec<&Member> = members.iter().copied().filter(|m| !m.optional).collect();
                let victim = mandatory.get(src.below(mandatory.len()))?;
                let mut args = object_of(&command.arguments);
                args.remove(&victim.name);
                (encode(&with_args(&request, Value::Object(args))), Expectation::Rejected)
            }
            Mutator::UnknownMember => {
                let mut args = object_of(&command.arguments);
                args.insert(UNKNOWN_MEMBER.to_string(), json!(1));
                (encode(&with_args(&request, Value::Object(args))), Expectation::Rejected)
            }
            Mutator::WrongType => {
                let typed: Vec<(&Member, Value)> =
                    members.iter().filter_map(|m| wrong_value(spec, &m.ty).map(|v| (*m, v))).collect();
                match typed.get(src.below(typed.len())) {
                    Some((member, value)) => {
                        let mut args = object_of(&command.arguments);
                        args.insert(member.name.clone(), value.clone());
                        (encode(&with_args(&request, Value::Object(args))), Expectation::Rejected)
                    }
                    None => (encode(&with_args(&request, json!([]))), Expectation::Rejected),
                }
            }
            Mutator::IntegerEdge => {
                let ints: Vec<(&Member, Builtin)> =
                    members.iter().filter_map(|m| int_builtin(spec, &m.ty).map(|b| (*m, b))).collect();
                let (member, builtin) = ints.get(src.below(ints.len()))?;
                let edge = INTEGER_EDGES[src.below(INTEGER_EDGES.len())];
                let mut args = object_of(&command.arguments);
                args.insert(member.name.clone(), Value::String(RAW_MARK.to_string()));
                let text = encode(&with_args(&request, Value::Object(args)));
                let bytes = replace_mark(&text, edge.as_bytes());
                (bytes, integer_expectation(*builtin, edge))
            }
            Mutator::HugeString | Mutator::EmptyString => {
                let text = if self == Mutator::HugeString { "a".repeat(MAX_STRING) } else { String::new() };
                let strs: Vec<&Member> = members.iter().copied().filter(|m| is_plain_str(spec, m)).collect();
                let value = match strs.get(src.below(strs.len())) {
                    Some(member) => {
                        let mut args = object_of(&command.arguments);
                        args.insert(member.name.clone(), Value::String(text));
                        with_args(&request, Value::Object(args))
                    }
                    None => with_id(&request, Value::String(text)),
                };
                (encode(&value), Expectation::Accepted)
            }
            Mutator::DeepNesting => {
                let text = encode(&with_id(&request, Value::String(RAW_MARK.to_string())));
                let mut nested = "[".repeat(NESTING).into_bytes();
                nested.extend("]".repeat(NESTING).into_bytes());
                (replace_mark(&text, &nested), Expectation::ParseErrorThenSurvive)
            }
            Mutator::InvalidUtf8 => {
                let text = encode(&with_id(&request, Value::String(RAW_MARK.to_string())));
                let bad: &[&[u8]] = &[b"\"\xc3\x28\"", b"\"\xff\xfe\"", b"\"\xed\xa0\x80\"", b"\"\xe2\x82\""];
                (replace_mark(&text, bad[src.below(bad.len())]), Expectation::ParseErrorThenSurvive)
            }
            Mutator::LoneSurrogate => {
                let text = encode(&with_id(&request, Value::String(RAW_MARK.to_string())));
                let bad: &[&[u8]] = &[b"\"\\ud800\"", b"\"a\\udc00b\"", b"\"\\ud800\\u0041\""];
                (replace_mark(&text, bad[src.below(bad.len())]), Expectation::ParseErrorThenSurvive)
            }
            Mutator::Truncated => {
                let text = encode(&request);
                let cut = 1 + src.below(text.len().saturating_sub(1).max(1));
                let mut bytes = text[..cut.min(text.len())].to_vec();
                bytes.push(0xFF);
                (bytes, Expectation::ParseErrorThenSurvive)
            }
            Mutator::DuplicateKey => {
                let text = encode(&request);
                let key = duplicated_key(&command.arguments);
                let bytes = duplicate_first_key(&text, &key);
                (bytes, Expectation::ParseErrorThenSurvive)
            }
            Mutator::ParserReset => {
                let text = encode(&request);
                let cuts: Vec<usize> = token_boundaries(&text);
                let at = cuts.get(src.below(cuts.len())).copied().unwrap_or(1);
                let mut bytes = text[..at].to_vec();
                bytes.push(0xFF);
                bytes.extend_from_slice(&text[at..]);
                (bytes, Expectation::ParseErrorThenSurvive)
            }
            Mutator::ExecOobWithoutCapability => {
                let mut object = object_of(&request);
                object.remove("execute");
                let mut out = Map::new();
                out.insert("exec-oob".to_string(), Value::String(command.name.clone()));
                out.extend(object);
                out.insert("id".to_string(), json!("qmpcheck-oob"));
                (encode(&Value::Object(out)), Expectation::Rejected)
            }
            Mutator::IdOfEveryType => {
                let ids = [
                    json!("s"),
                    json!(-7),
                    json!(1.5),
                    json!(true),
                    Value::Null,
                    json!([1, [2]]),
                    json!({"a": {}}),
                ];
                let id = ids[src.below(ids.len())].clone();
                (encode(&with_id(&request, id)), Expectation::Accepted)
            }
        };
        Some(Mutated { mutator: self, bytes, expect })
    }
}

impl fmt::Display for Mutator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mutated command, ready for the safety gate and the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutated {
    /// Which mutator made it.
    pub mutator: Mutator,
    /// The bytes to send (one text, or a text and a reset byte).
    pub bytes: Vec<u8>,
    /// What QEMU must do.
    pub expect: Expectation,
}

/// Applies a mutator picked by `src` among those that apply to `command` (IdOfEveryType
/// always applies).
pub fn mutate_any(spec: &Spec, command: &GeneratedCommand, src: &mut dyn ChoiceSource) -> Mutated {
    let start = src.below(Mutator::ALL.len());
    for offset in 0..Mutator::ALL.len() {
        let mutator = Mutator::ALL[(start + offset) % Mutator::ALL.len()];
        if let Some(m) = mutator.apply(spec, command, src) {
            return m;
        }
    }
    Mutated {
        mutator: Mutator::IdOfEveryType,
        bytes: encode(&command.to_request(Some(json!(0)))),
        expect: Expectation::Accepted,
    }
}

/// Counters of one mutator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MutatorCount {
    /// Mutated commands produced.
    pub applied: u64,
    /// Times the mutator did not apply to the command drawn.
    pub not_applicable: u64,
    /// Outputs the safety gate refused.
    pub denied: u64,
    /// Replies that matched the expectation.
    pub as_expected: u64,
    /// Replies that did not (findings).
    pub unexpected: u64,
}

/// Counters per mutator, by name, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MutatorStats {
    /// The counters, keyed by [`Mutator::name`].
    pub counts: BTreeMap<&'static str, MutatorCount>,
}

impl MutatorStats {
    /// Empty counters for every mutator.
    pub fn new() -> Self {
        MutatorStats { counts: Mutator::ALL.iter().map(|m| (m.name(), MutatorCount::default())).collect() }
    }

    /// The counters of `mutator`, for updating.
    pub fn entry(&mut self, mutator: Mutator) -> &mut MutatorCount {
        self.counts.entry(mutator.name()).or_default()
    }

    /// Records an application result (`Some`: applied, `None`: not applicable).
    pub fn record(&mut self, mutator: Mutator, applied: Option<&Mutated>) {
        let count = self.entry(mutator);
        match applied {
            Some(_) => count.applied += 1,
            None => count.not_applicable += 1,
        }
    }

    /// A Markdown table of the counters.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| mutator | applied | not applicable | denied | as expected | unexpected |\n|---|---|---|---|---|---|\n",
        );
        for (name, c) in &self.counts {
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} |\n",
                c.applied, c.not_applicable, c.denied, c.as_expected, c.unexpected
            ));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------

/// Integer edges as raw JSON text.
pub const INTEGER_EDGES: [&str; 8] = [
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "-1",
    "9007199254740993",
    "18446744073709551616",
    "-9223372036854775809",
];

const RAW_MARK: &str = "@@qmpcheck-raw@@";

/// What QEMU 7.2's input visitor does with `edge` in a member of type `builtin`: integers
/// that fit `int64` or `uint64` are numbers of that kind, others are doubles (refused by
/// every integer type); signed types take what fits their range; unsigned types take what
/// fits, and `uint64`/`size` also take negative `int64` values (wrapped).
pub fn integer_expectation(builtin: Builtin, edge: &str) -> Expectation {
    let Ok(v) = edge.parse::<i128>() else { return Expectation::Rejected };
    let is_int = i64::try_from(v).is_ok();
    let is_uint = u64::try_from(v).is_ok();
    let accepted = match builtin {
        Builtin::Number => true,
        Builtin::Int | Builtin::Int8 | Builtin::Int16 | Builtin::Int32 | Builtin::Int64 => {
            let (lo, hi) = builtin.int_range().unwrap_or((0, 0));
            is_int && (lo..=hi).contains(&v)
        }
        Builtin::Uint64 | Builtin::Size => is_int || is_uint,
        Builtin::Uint8 | Builtin::Uint16 | Builtin::Uint32 => {
            let (_, hi) = builtin.int_range().unwrap_or((0, 0));
            is_uint && v <= hi
        }
        _ => false,
    };
    if accepted {
        Expectation::Accepted
    } else {
        Expectation::Rejected
    }
}

fn top_members<'s>(spec: &'s Spec, command: &str) -> Vec<&'s Member> {
    spec.commands.get(command).map(|c| spec.command_args(c)).unwrap_or_default()
}

fn object_of(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn with_args(request: &Value, args: Value) -> Value {
    let mut object = object_of(request);
    object.insert("arguments".to_string(), args);
    Value::Object(object)
}

fn with_id(request: &Value, id: Value) -> Value {
    let mut object = object_of(request);
    object.insert("id".to_string(), id);
    Value::Object(object)
}

fn encode(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Replaces the quoted placeholder string in `text` by `raw`.
fn replace_mark(text: &[u8], raw: &[u8]) -> Vec<u8> {
    let mark = format!("\"{RAW_MARK}\"");
    let mark = mark.as_bytes();
    match text.windows(mark.len()).position(|w| w == mark) {
        Some(at) => {
            let mut out = text[..at].to_vec();
            out.extend_from_slice(raw);
            out.extend_from_slice(&text[at + mark.len()..]);
            out
        }
        None => text.to_vec(),
    }
}

/// The member to duplicate: the first argument, else `execute` itself.
fn duplicated_key(arguments: &Value) -> String {
    arguments.as_object().and_then(|m| m.keys().next().cloned()).unwrap_or_else(|| "execute".to_string())
}

/// Repeats the first `"key": value` pair whose key is `key` right after itself.
fn duplicate_first_key(text: &[u8], key: &str) -> Vec<u8> {
    let Ok(value) = serde_json::from_slice::<Value>(text) else { return text.to_vec() };
    let Some(object) = value.as_object() else { return text.to_vec() };
    let (container, pair_value) = match object.get(key) {
        Some(v) => (None, v.clone()),
        None => match object.get("arguments").and_then(|a| a.get(key)) {
            Some(v) => (Some("arguments"), v.clone()),
            None => return text.to_vec(),
        },
    };
    let pair = format!("{}:{}", Value::String(key.to_string()), pair_value);
    let mut object = object.clone();
    let target = match container {
        Some(c) => object.get_mut(c).and_then(Value::as_object_mut),
        None => Some(&mut object),
    };
    if let Some(map) = target {
        map.insert(key.to_string(), Value::String(RAW_MARK.to_string()));
    }
    let text = encode(&Value::Object(object));
    replace_mark(&text, format!("{pair_value},{pair}").as_bytes())
}

/// Offsets just after a structural character or a string's closing quote.
fn token_boundaries(text: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    out.push(i + 1);
                }
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b"{}[],:".contains(&b) && i + 1 < text.len() {
            out.push(i + 1);
        }
    }
    out.retain(|&at| at < text.len());
    out
}

/// The integer builtin of a member type, following named builtins.
fn int_builtin(spec: &Spec, ty: &TypeRef) -> Option<Builtin> {
    let b = match ty {
        TypeRef::Builtin(b) => *b,
        TypeRef::Named(_) => match spec.resolve(ty).map(|d| &d.kind) {
            Some(TypeKind::Builtin { builtin }) => *builtin,
            _ => return None,
        },
        _ => return None,
    };
    b.int_range().map(|_| b)
}

fn is_plain_str(spec: &Spec, member: &Member) -> bool {
    member.values.is_empty()
        && match &member.ty {
            TypeRef::Builtin(Builtin::Str) => true,
            TypeRef::Named(_) => {
                matches!(
                    spec.resolve(&member.ty).map(|d| &d.kind),
                    Some(TypeKind::Builtin { builtin: Builtin::Str })
                )
            }
            _ => false,
        }
}

/// The JSON types a type accepts: `s`tring, `i`nteger, `n`umber (non-integer), `b`oolean,
/// `o`bject, `a`rray, `z` null. `None` for `any` and unknown types (everything goes).
fn accepted_kinds(spec: &Spec, ty: &TypeRef, depth: usize) -> Option<Vec<char>> {
    if depth > 16 {
        return None;
    }
    Some(match ty {
        TypeRef::Builtin(b) => match b {
            Builtin::Str => vec!['s'],
            Builtin::Number => vec!['i', 'n'],
            Builtin::Bool => vec!['b'],
            Builtin::Null => vec!['z'],
            Builtin::Any => return None,
            Builtin::Object => vec!['o'],
            _ => vec!['i'],
        },
        TypeRef::Array(_) => vec!['a'],
        TypeRef::Unknown(_) => return None,
        TypeRef::Named(_) => match &spec.resolve(ty)?.kind {
            TypeKind::Builtin { builtin } => {
                return accepted_kinds(spec, &TypeRef::Builtin(*builtin), depth + 1)
            }
            TypeKind::Enum { .. } => vec!['s'],
            TypeKind::Struct { .. } | TypeKind::Union { .. } => vec!['o'],
            TypeKind::Array { .. } => vec!['a'],
            TypeKind::Alternate { alternatives } => {
                let mut all = Vec::new();
                for a in alternatives {
                    all.extend(accepted_kinds(spec, &a.ty, depth + 1)?);
                }
                all
            }
        },
    })
}

/// A value of a JSON type `ty` does not accept.
fn wrong_value(spec: &Spec, ty: &TypeRef) -> Option<Value> {
    let accepted = accepted_kinds(spec, ty, 0)?;
    let candidates =
        [('b', json!(true)), ('s', json!("qmpcheck")), ('a', json!([])), ('o', json!({})), ('n', json!(0.5))];
    candidates.into_iter().find(|(k, _)| !accepted.contains(k)).map(|(_, v)| v)
}
