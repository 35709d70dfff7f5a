//! Fast validation of QMP replies and events straight from their bytes.
//!
//! [`super::schema`] derives JSON Schemas from the model and validates a parsed
//! `serde_json::Value` with the jsonschema crate: correct, but every reply is first built
//! as a tree of `Value`s (allocations per member) and then walked again. Fuzzing and CI
//! gates pay that per command. [`FastValidator`] compiles the model once into a graph of
//! nodes (one per type, shared, recursion allowed) and checks a reply *while parsing it*:
//! one pass over the bytes, no intermediate value, no allocation on the valid path for
//! replies without escaped strings.
//!
//! It implements exactly the semantics of the schemas of [`super::schema::SchemaSet`] for
//! outputs (command returns, event data; open objects unless [`SchemaOptions::strict`]), and
//! tests/fast_validate.rs checks that both agree, verdict and instance path of the first
//! error, on generated valid and mutated replies over the QEMU 7.2 model. Also checked on
//! the way: the bytes are one valid JSON text (RFC 8259: UTF-8, escapes and surrogates,
//! number grammar, finite numbers, as serde_json accepts them).
//!
//! How it stays fast:
//! - members are looked up with a cursor guess first (QEMU writes members in schema order,
//!   so the next slot nearly always matches), then by binary search;
//! - strings are scanned 8 bytes at a time; only escaped strings are decoded (into one
//!   reused buffer), only when their content matters (keys, enum values);
//! - integers are range-checked as they are accumulated; only fractions and exponents go
//!   through `f64` parsing, compared exactly against the bounds, as jsonschema does;
//! - union members that arrive before their discriminator are remembered by position and
//!   checked at the end of the object, never buffered;
//! - on a schema error the parse stops at once; the text is then scanned once more for
//!   syntax, so an invalid JSON text is always reported as such.
//!
//! [`FastStream`] adds framing for a byte stream: QEMU ends each message with CRLF, so a
//! text is parsed (and checked) when a newline arrives, found with SIMD `memchr`; a text
//! still incomplete at that newline just waits for more bytes, so correctness never
//! depends on where the newlines are.
//!
//! Known differences from the jsonschema path: a member repeated in one object is checked
//! every time it appears (serde_json keeps the last); typed values nest at most
//! [`MAX_TYPED_DEPTH`] deep (untyped `any` values have no limit); when a text has several
//! errors, the one reported is the first in document order, which is jsonschema's first
//! whenever members come in schema order.

use std::collections::BTreeMap;

use super::schema::SchemaOptions;
use crate::spec::{Alternative, Builtin, JsonType, Member, SourceKind, Spec, TypeKind, TypeRef};

/// Deepest nesting of typed values (objects and arrays of known types) checked; deeper
/// values are a [`ViolationKind::TooDeep`] violation. Bounds the recursion of the checker.
pub const MAX_TYPED_DEPTH: usize = 512;

/// Depth bound for flattening nested union branches, as in [`super::schema`].
const MAX_BRANCH_DEPTH: usize = 32;

/// A reply or event that breaks its schema, or bytes that are not one JSON text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Violation {
    /// JSON pointer into the instance (`/0/stats/rd_bytes`; empty for the root), as the
    /// jsonschema crate spells it. Empty for [`ViolationKind::InvalidJson`].
    pub instance_path: String,
    /// What is wrong.
    pub kind: ViolationKind,
}

/// What a [`Violation`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationKind {
    /// The bytes are not one valid JSON text (or end before it does).
    InvalidJson {
        /// Byte offset of the problem in the text.
        offset: usize,
        /// What the parser expected or found.
        message: &'static str,
    },
    /// A value of the wrong JSON type.
    WrongType {
        /// The JSON type(s) the schema wants (`integer`, `string`, `object, array`, ...).
        expected: String,
    },
    /// An integer outside its type's range (or a number that is not a whole number where an
    /// integer's range is checked).
    OutOfRange {
        /// Smallest allowed value.
        min: i128,
        /// Largest allowed value.
        max: i128,
    },
    /// A string that is not one of the enum's values.
    NotInEnum,
    /// A mandatory member is absent.
    MissingMember {
        /// The member's name.
        name: String,
    },
    /// A member the (strict) schema does not allow.
    UnexpectedMember {
        /// The member's name.
        name: String,
    },
    /// No alternative of an alternate accepts the value.
    NoAlternative,
    /// Typed values nest deeper than [`MAX_TYPED_DEPTH`].
    TooDeep,
    /// The model has no command or event of this name.
    UnknownName {
        /// `command` or `event`.
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A whole QMP message is not a reply, error, event or greeting object.
    NotAMessage,
}

impl Violation {
    fn describe(&self) -> String {
        let what = match &self.kind {
            ViolationKind::InvalidJson { offset, message } => {
                format!("invalid json at byte {offset}: {message}")
            }
            ViolationKind::WrongType { expected } => format!("not of type {expected}"),
            ViolationKind::OutOfRange { min, max } => format!("not an integer in {min}..={max}"),
            ViolationKind::NotInEnum => "not one of the enum's values".to_string(),
            ViolationKind::MissingMember { name } => format!("'{name}' is a required property"),
            ViolationKind::UnexpectedMember { name } => format!("'{name}' was unexpected"),
            ViolationKind::NoAlternative => "no alternative accepts the value".to_string(),
            ViolationKind::TooDeep => format!("typed values nest deeper than {MAX_TYPED_DEPTH}"),
            ViolationKind::UnknownName { what, name } => format!("unknown {what} '{name}'"),
            ViolationKind::NotAMessage => {
                "not a qmp message (return, error, event or greeting object)".to_string()
            }
        };
        if self.instance_path.is_empty() {
            what
        } else {
            format!("{}: {what}", self.instance_path)
        }
    }
}

/// What kind of QMP message [`FastValidator::check_message`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// `{"return": ...}`; checked against the command's return type when one was given.
    Return,
    /// `{"error": {...}}`.
    Error,
    /// `{"event": ...}`; its `data` checked against the event's type.
    Event,
    /// `{"QMP": ...}`, the greeting.
    Greeting,
}

/// The model compiled for checking outputs (command returns and event data) from bytes.
///
/// Build it once per model (a few milliseconds for QEMU 7.2) and share it: checking takes
/// `&self`, so one validator serves any number of threads.
#[derive(Debug, Clone)]
pub struct FastValidator {
    graph: Graph,
    returns: BTreeMap<String, NodeId>,
    events: BTreeMap<String, NodeId>,
}

impl FastValidator {
    /// Compiles the return type of every command and the data type of every event of
    /// `spec`, with the default (open) schema options.
    pub fn new(spec: &Spec) -> FastValidator {
        FastValidator::with_options(spec, SchemaOptions::default())
    }

    /// As [`FastValidator::new`], with `options.strict` closing output objects.
    pub fn with_options(spec: &Spec, options: SchemaOptions) -> FastValidator {
        let mut compiler = Compiler::new(spec, options);
        let none_means_empty = matches!(spec.kind, Some(SourceKind::Qapi | SourceKind::Introspect));
        let empty_output = if none_means_empty { compiler.empty_object() } else { ANY };
        let mut returns = BTreeMap::new();
        for command in spec.commands.values() {
            let node = match &command.returns {
                Some(ty) => compiler.type_node(ty),
                None => empty_output,
            };
            returns.insert(command.name.clone(), node);
        }
        let mut events = BTreeMap::new();
        for event in spec.events.values() {
            let node = match &event.data {
                Some(ty) => compiler.type_node(ty),
                None if none_means_empty => empty_output,
                None => OBJECT,
            };
            events.insert(event.name.clone(), node);
        }
        FastValidator { graph: compiler.graph, returns, events }
    }

    /// Checks `bytes`, one JSON text holding the value of a `return` of `command`.
    pub fn validate_return(&self, command: &str, bytes: &[u8]) -> Result<(), Violation> {
        let node = self.return_node(command)?;
        self.validate_text(node, bytes)
    }

    /// Checks `bytes`, one JSON text holding the `data` of event `event`.
    pub fn validate_event(&self, event: &str, bytes: &[u8]) -> Result<(), Violation> {
        let node = self.event_node(event)?;
        self.validate_text(node, bytes)
    }

    /// Checks one whole QMP message: a reply's `return` against `command`'s return type
    /// (only syntax when `command` is `None`), an event's `data` (`{}` when absent) against
    /// the event's type. `error` objects and `id`s are only checked for syntax.
    pub fn check_message(&self, command: Option<&str>, text: &[u8]) -> Result<MessageKind, Violation> {
        let expect = match command {
            Some(name) => Some(self.return_node(name)?),
            None => None,
        };
        let mut run = Run::new(&self.graph, text);
        let result = run.message(self, expect).and_then(|kind| run.end().map(|()| kind));
        result.map_err(|fail| self.finish_fail(fail, text))
    }

    /// Number of compiled nodes (types, arrays, builtins) in the graph; for reports.
    pub fn node_count(&self) -> usize {
        self.graph.nodes.len()
    }

    fn return_node(&self, command: &str) -> Result<NodeId, Violation> {
        self.returns.get(command).copied().ok_or_else(|| Violation {
            instance_path: String::new(),
            kind: ViolationKind::UnknownName { what: "command", name: command.to_string() },
        })
    }

    fn event_node(&self, event: &str) -> Result<NodeId, Violation> {
        self.events.get(event).copied().ok_or_else(|| Violation {
            instance_path: String::new(),
            kind: ViolationKind::UnknownName { what: "event", name: event.to_string() },
        })
    }

    fn validate_text(&self, node: NodeId, bytes: &[u8]) -> Result<(), Violation> {
        let mut run = Run::new(&self.graph, bytes);
        let result = run.value(node).and_then(|()| run.end());
        result.map_err(|fail| self.finish_fail(fail, bytes))
    }

    /// Turns a failure into a violation; a schema failure stands only if the whole text is
    /// valid JSON (otherwise the syntax error is what is wrong).
    fn finish_fail(&self, fail: Fail, bytes: &[u8]) -> Violation {
        match *fail.0 {
            Failure::Syntax { at, message } => syntax_violation(at, message),
            Failure::Schema(schema) => {
                let mut check = Run::new(&self.graph, bytes);
                match check.skip_value().and_then(|()| check.end()).map_err(|f| *f.0) {
                    Err(Failure::Syntax { at, message }) => syntax_violation(at, message),
                    _ => schema.into_violation(),
                }
            }
        }
    }
}

/// Framing plus checking over a byte stream of QMP messages (what a client reads).
///
/// Feed bytes as they arrive; [`FastStream::next_message`] returns each complete message,
/// checked. The buffer is reused: consumed bytes are dropped from its front lazily.
#[derive(Debug, Clone, Default)]
pub struct FastStream {
    buf: Vec<u8>,
    start: usize,
    /// Where to look for the next newline (everything before was looked at).
    searched: usize,
}

/// The end of a message text within the stream and what it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// The message's length in bytes (without surrounding whitespace).
    pub len: usize,
    /// What it was, or why it does not pass.
    pub result: Result<MessageKind, Violation>,
}

impl FastStream {
    /// An empty stream.
    pub fn new() -> FastStream {
        FastStream::default()
    }

    /// Appends bytes as they arrive.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.searched -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed but not yet returned as part of a message.
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// The next complete message, checked against `command`'s return type when it is a
    /// reply (see [`FastValidator::check_message`]); `None` until one is complete. A text
    /// that is not valid JSON is returned as an error and dropped up to the next newline.
    pub fn next_message(&mut self, validator: &FastValidator, command: Option<&str>) -> Option<Framed> {
        loop {
            let rest = self.buf.get(self.start..)?;
            let skipped = rest.iter().take_while(|b| is_ws(**b)).count();
            self.start += skipped;
            self.searched = self.searched.max(self.start);
            let tail = self.buf.get(self.searched..)?;
            let newline = memchr::memchr(b'\n', tail)?;
            let newline_at = self.searched + newline;
            let text = self.buf.get(self.start..)?;
            match message_end(validator, command, text) {
                Ended::Complete { len, result } => {
                    self.start += len;
                    self.searched = self.start;
                    return Some(Framed { len, result });
                }
                Ended::Incomplete => {
                    self.searched = newline_at + 1;
                }
                Ended::Broken(violation) => {
                    let len = newline_at + 1 - self.start;
                    self.start = newline_at + 1;
                    self.searched = self.start;
                    return Some(Framed { len, result: Err(violation) });
                }
            }
            if self.searched >= self.buf.len() {
                return None;
            }
        }
    }
}

/// How a message at the front of the buffer ends.
enum Ended {
    Complete { len: usize, result: Result<MessageKind, Violation> },
    Incomplete,
    Broken(Violation),
}

/// Parses (and checks) the first text of `text`, which starts at a non-blank byte.
fn message_end(validator: &FastValidator, command: Option<&str>, text: &[u8]) -> Ended {
    let expect = match command.map(|c| validator.return_node(c)) {
        Some(Ok(node)) => Some(node),
        Some(Err(v)) => return Ended::Broken(v),
        None => None,
    };
    let mut run = Run::new(&validator.graph, text);
    match run.message(validator, expect).map_err(|f| *f.0) {
        Ok(kind) => Ended::Complete { len: run.pos, result: Ok(kind) },
        Err(Failure::Syntax { at, .. }) if at >= text.len() => Ended::Incomplete,
        Err(Failure::Syntax { at, message }) => Ended::Broken(syntax_violation(at, message)),
        Err(Failure::Schema(schema)) => {
            let mut check = Run::new(&validator.graph, text);
            match check.skip_value().map_err(|f| *f.0) {
                Ok(()) => Ended::Complete { len: check.pos, result: Err(schema.into_violation()) },
                Err(Failure::Syntax { at, .. }) if at >= text.len() => Ended::Incomplete,
                Err(Failure::Syntax { at, message }) => Ended::Broken(syntax_violation(at, message)),
                Err(Failure::Schema(_)) => Ended::Broken(schema.into_violation()),
            }
        }
    }
}

fn syntax_violation(offset: usize, message: &'static str) -> Violation {
    Violation { instance_path: String::new(), kind: ViolationKind::InvalidJson { offset, message } }
}

// ---------------------------------------------------------------------------------------
// The compiled graph.

type NodeId = u32;
type ShapeId = u32;

const ANY: NodeId = 0;
const OBJECT: NodeId = 1;

#[derive(Debug, Clone)]
enum Node {
    /// Any JSON value.
    Any,
    /// Any object.
    Object,
    Str,
    Number,
    Int {
        min: i64,
        max: u64,
    },
    Bool,
    Null,
    /// A string from the enum set.
    Enum(u32),
    Array(NodeId),
    /// A struct or union.
    Shape(ShapeId),
    Alternate(u32),
    /// A member-level `enum` on top of a node (prose "possible values").
    Restricted {
        inner: NodeId,
        values: u32,
    },
}

#[derive(Debug, Clone, Default)]
struct Graph {
    nodes: Vec<Node>,
    shapes: Vec<Shape>,
    enums: Vec<EnumSet>,
    alternates: Vec<Alternate>,
}

/// Values of an enum, sorted for binary search.
#[derive(Debug, Clone)]
struct EnumSet {
    sorted: Vec<Box<[u8]>>,
}

impl EnumSet {
    fn new(values: impl Iterator<Item = String>) -> EnumSet {
        let mut sorted: Vec<Box<[u8]>> = values.map(|v| v.into_bytes().into_boxed_slice()).collect();
        sorted.sort();
        sorted.dedup();
        EnumSet { sorted }
    }

    fn contains(&self, value: &[u8]) -> bool {
        if self.sorted.len() <= 8 {
            self.sorted.iter().any(|v| &**v == value)
        } else {
            self.sorted.binary_search_by(|v| (**v).cmp(value)).is_ok()
        }
    }
}

/// The JSON kinds, as alternates dispatch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String = 0,
    Number = 1,
    Boolean = 2,
    Null = 3,
    Object = 4,
    Array = 5,
}

const KIND_NAMES: [&str; 6] = ["string", "number", "boolean", "null", "object", "array"];

#[derive(Debug, Clone)]
struct Alternate {
    /// The branch for each JSON kind (`type: [...]` + `if`/`then` in the schema).
    by_kind: [Option<NodeId>; 6],
    /// Set when kinds cannot tell the branches apart: `anyOf` in the schema.
    any_of: Option<Vec<NodeId>>,
}

/// A struct or union: members in schema order, and union branches.
#[derive(Debug, Clone, Default)]
struct Shape {
    slots: Vec<Slot>,
    /// `(name, slot index)` sorted by name.
    sorted: Vec<(Box<[u8]>, u32)>,
    /// Slot indexes of mandatory members, in schema order.
    required: Vec<u32>,
    union: Option<UnionPart>,
    /// Closed (strict): names not in any applying level are errors at the leaf.
    closed: bool,
}

#[derive(Debug, Clone)]
struct Slot {
    name: Box<[u8]>,
    node: NodeId,
}

#[derive(Debug, Clone)]
struct UnionPart {
    /// Slot of the discriminator in the shape.
    disc: u32,
    /// `(value, branch shape)` sorted by value.
    branches: Vec<(Box<[u8]>, ShapeId)>,
}

impl Shape {
    fn find(&self, key: &[u8], hint: &mut usize) -> Option<u32> {
        if let Some(slot) = self.slots.get(*hint) {
            if same_bytes(&slot.name, key) {
                let found = *hint as u32;
                *hint += 1;
                return Some(found);
            }
        }
        let index = self.sorted.binary_search_by(|(name, _)| (**name).cmp(key)).ok()?;
        let found = self.sorted.get(index)?.1;
        *hint = found as usize + 1;
        Some(found)
    }

    fn branch(&self, value: &[u8]) -> Option<ShapeId> {
        let union = self.union.as_ref()?;
        let index = union.branches.binary_search_by(|(v, _)| (**v).cmp(value)).ok()?;
        union.branches.get(index).map(|(_, shape)| *shape)
    }
}

/// Byte-slice equality without a library call for the short names members have.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        if let Some(part) = s.get(at..at + 8) {
            w.copy_from_slice(part);
        }
        u64::from_le_bytes(w)
    };
    if a.len() < 8 {
        return a == b;
    }
    // Whole words, then the last (overlapping) word.
    let last = a.len() - 8;
    let mut at = 0;
    while at < last {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, last) == word(b, last)
}

/// Builds the graph from the model, one node per named type (memoised, so recursive types
/// close into cycles).
struct Compiler<'s> {
    spec: &'s Spec,
    options: SchemaOptions,
    graph: Graph,
    named: BTreeMap<String, NodeId>,
    shapes_by_name: BTreeMap<String, ShapeId>,
    builtins: BTreeMap<Builtin, NodeId>,
}

impl<'s> Compiler<'s> {
    fn new(spec: &'s Spec, options: SchemaOptions) -> Compiler<'s> {
        let mut graph = Graph::default();
        graph.nodes.push(Node::Any);
        graph.nodes.push(Node::Object);
        Compiler {
            spec,
            options,
            graph,
            named: BTreeMap::new(),
            shapes_by_name: BTreeMap::new(),
            builtins: BTreeMap::new(),
        }
    }

    fn push(&mut self, node: Node) -> NodeId {
        self.graph.nodes.push(node);
        (self.graph.nodes.len() - 1) as NodeId
    }

    /// `{"type": "object"}` (closed in strict mode): a return of `{}`.
    fn empty_object(&mut self) -> NodeId {
        if !self.options.strict {
            return OBJECT;
        }
        let shape = Shape { closed: true, ..Shape::default() };
        self.graph.shapes.push(shape);
        let id = (self.graph.shapes.len() - 1) as ShapeId;
        self.push(Node::Shape(id))
    }

    fn builtin(&mut self, builtin: Builtin) -> NodeId {
        if let Some(id) = self.builtins.get(&builtin) {
            return *id;
        }
        let node = match builtin {
            Builtin::Str => Node::Str,
            Builtin::Number => Node::Number,
            Builtin::Bool => Node::Bool,
            Builtin::Null => Node::Null,
            Builtin::Object => Node::Object,
            Builtin::Any => Node::Any,
            // Introspection reports every integer type as `int`: its range is widened to what
            // QEMU takes for uint64 and size, as in the schemas.
            Builtin::Int if self.spec.kind == Some(SourceKind::Introspect) => {
                Node::Int { min: i64::MIN, max: u64::MAX }
            }
            other => match other.int_range() {
                Some((min, max)) => Node::Int {
                    min: i64::try_from(min).unwrap_or(i64::MIN),
                    max: u64::try_from(max).unwrap_or(u64::MAX),
                },
                None => Node::Any,
            },
        };
        let id = self.push(node);
        self.builtins.insert(builtin, id);
        id
    }

    fn type_node(&mut self, ty: &TypeRef) -> NodeId {
        match ty {
            TypeRef::Builtin(b) => self.builtin(*b),
            TypeRef::Array(element) => {
                let element = self.type_node(element);
                self.push(Node::Array(element))
            }
            TypeRef::Unknown(_) => ANY,
            TypeRef::Named(name) => self.named_node(name),
        }
    }

    fn named_node(&mut self, name: &str) -> NodeId {
        if let Some(id) = self.named.get(name) {
            return *id;
        }
        let Some(def) = self.spec.types.get(name) else { return ANY };
        let id = self.push(Node::Any);
        self.named.insert(name.to_string(), id);
        let node = match &def.kind {
            TypeKind::Builtin { builtin } => {
                let inner = self.builtin(*builtin);
                self.graph.nodes.get(inner as usize).cloned().unwrap_or(Node::Any)
            }
            TypeKind::Enum { values } => {
                self.graph.enums.push(EnumSet::new(values.iter().map(|v| v.name.clone())));
                Node::Enum((self.graph.enums.len() - 1) as u32)
            }
            TypeKind::Struct { .. } | TypeKind::Union { .. } => Node::Shape(self.shape(name, 0, &[])),
            TypeKind::Alternate { alternatives } => self.alternate(alternatives),
            TypeKind::Array { element } => Node::Array(self.type_node(element)),
        };
        if let Some(slot) = self.graph.nodes.get_mut(id as usize) {
            *slot = node;
        }
        id
    }

    /// The shape of a struct or union type (see `object_parts` in [`super::schema`]).
    /// `inherited` are the names enclosing levels allow (strict mode only).
    fn shape(&mut self, name: &str, depth: usize, inherited: &[String]) -> ShapeId {
        let memo = self.options.strict.then(|| format!("{name}\u{0}{}", inherited.join("\u{0}")));
        let key = memo.unwrap_or_else(|| name.to_string());
        if let Some(id) = self.shapes_by_name.get(&key) {
            return *id;
        }
        self.graph.shapes.push(Shape::default());
        let id = (self.graph.shapes.len() - 1) as ShapeId;
        self.shapes_by_name.insert(key, id);
        let ty = TypeRef::Named(name.to_string());
        let spec = self.spec;
        let members: Vec<&Member> = spec.members(&ty);
        let mut shape = Shape::default();
        for member in &members {
            let node = self.member_node(member);
            if !member.optional {
                shape.required.push(shape.slots.len() as u32);
            }
            shape.slots.push(Slot { name: member.name.clone().into_bytes().into_boxed_slice(), node });
        }
        let mut names: Vec<String> = inherited.to_vec();
        names.extend(members.iter().map(|m| m.name.clone()));
        let union = match spec.resolve(&ty).map(|d| &d.kind) {
            Some(TypeKind::Union { discriminator, variants, .. })
                if depth < MAX_BRANCH_DEPTH && !variants.is_empty() =>
            {
                Some((discriminator, variants))
            }
            _ => None,
        };
        match union {
            Some((discriminator, variants)) => {
                let disc = match shape.slots.iter().position(|s| &*s.name == discriminator.as_bytes()) {
                    Some(i) => i as u32,
                    None => {
                        let name = discriminator.clone().into_bytes().into_boxed_slice();
                        shape.slots.push(Slot { name, node: ANY });
                        (shape.slots.len() - 1) as u32
                    }
                };
                let mut branches = Vec::new();
                for variant in variants {
                    let branch = match &variant.ty {
                        TypeRef::Named(n) if self.is_object(n) => self.shape(n, depth + 1, &names),
                        _ => self.empty_branch(&names),
                    };
                    branches.push((variant.value.clone().into_bytes().into_boxed_slice(), branch));
                }
                branches.sort_by(|a, b| a.0.cmp(&b.0));
                branches.dedup_by(|a, b| a.0 == b.0);
                shape.union = Some(UnionPart { disc, branches });
                // A closed union without a branch for the value closes at this level.
                shape.closed = self.options.strict;
            }
            None => {
                shape.closed = self.options.strict;
                for name in inherited {
                    if !shape.slots.iter().any(|s| &*s.name == name.as_bytes()) {
                        let name = name.clone().into_bytes().into_boxed_slice();
                        shape.slots.push(Slot { name, node: ANY });
                    }
                }
            }
        }
        shape.sorted = shape.slots.iter().enumerate().map(|(i, s)| (s.name.clone(), i as u32)).collect();
        shape.sorted.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(slot) = self.graph.shapes.get_mut(id as usize) {
            *slot = shape;
        }
        id
    }

    fn is_object(&self, name: &str) -> bool {
        matches!(
            self.spec.types.get(name).map(|d| &d.kind),
            Some(TypeKind::Struct { .. } | TypeKind::Union { .. })
        )
    }

    /// A branch whose type has no members (not an object type): allows the enclosing names.
    fn empty_branch(&mut self, inherited: &[String]) -> ShapeId {
        let mut shape = Shape { closed: self.options.strict, ..Shape::default() };
        if self.options.strict {
            for name in inherited {
                shape.slots.push(Slot { name: name.clone().into_bytes().into_boxed_slice(), node: ANY });
            }
            shape.sorted = shape.slots.iter().enumerate().map(|(i, s)| (s.name.clone(), i as u32)).collect();
            shape.sorted.sort_by(|a, b| a.0.cmp(&b.0));
        }
        self.graph.shapes.push(shape);
        (self.graph.shapes.len() - 1) as ShapeId
    }

    fn member_node(&mut self, member: &Member) -> NodeId {
        let node = self.type_node(&member.ty);
        let stringish =
            matches!(member.ty, TypeRef::Builtin(Builtin::Str | Builtin::Any) | TypeRef::Unknown(_));
        if stringish && !member.values.is_empty() {
            self.graph.enums.push(EnumSet::new(member.values.iter().cloned()));
            let values = (self.graph.enums.len() - 1) as u32;
            return self.push(Node::Restricted { inner: node, values });
        }
        node
    }

    fn alternate(&mut self, alternatives: &[Alternative]) -> Node {
        let kinds: Vec<Option<Kind>> = alternatives.iter().map(|a| self.json_kind(&a.ty)).collect();
        let mut distinct: Vec<Kind> = kinds.iter().flatten().copied().collect();
        distinct.sort_by_key(|k| *k as usize);
        distinct.dedup();
        let nodes: Vec<NodeId> = alternatives.iter().map(|a| self.type_node(&a.ty)).collect();
        let mut alternate = Alternate { by_kind: [None; 6], any_of: None };
        if kinds.iter().any(Option::is_none) || distinct.len() != alternatives.len() {
            alternate.any_of = Some(nodes);
        } else {
            for (kind, node) in kinds.iter().flatten().zip(nodes) {
                if let Some(slot) = alternate.by_kind.get_mut(*kind as usize) {
                    *slot = Some(node);
                }
            }
        }
        self.graph.alternates.push(alternate);
        Node::Alternate((self.graph.alternates.len() - 1) as u32)
    }

    /// The JSON kind of values of `ty` (as `json_kind` in [`super::schema`]).
    fn json_kind(&self, ty: &TypeRef) -> Option<Kind> {
        Some(match self.spec.json_type(ty)? {
            JsonType::Str => Kind::String,
            JsonType::Int | JsonType::Number => Kind::Number,
            JsonType::Bool => Kind::Boolean,
            JsonType::Null => Kind::Null,
            JsonType::Object => Kind::Object,
            JsonType::Array => Kind::Array,
            JsonType::Any => return None,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The checking parser.

/// Why a check stopped. Boxed, so the `Result<(), Fail>` of every step is one register on
/// the valid path.
struct Fail(Box<Failure>);

enum Failure {
    /// Not valid JSON at byte `at` (`at == len`: the text ends early).
    Syntax { at: usize, message: &'static str },
    /// A schema violation; the path is collected while the failure unwinds.
    Schema(SchemaFail),
}

impl Fail {
    #[cold]
    fn syntax_at(at: usize, message: &'static str) -> Fail {
        Fail(Box::new(Failure::Syntax { at, message }))
    }

    fn is_schema(&self) -> bool {
        matches!(*self.0, Failure::Schema(_))
    }

    /// Adds a path segment to a schema failure.
    fn push_segment(mut self, segment: impl FnOnce() -> Segment) -> Fail {
        if let Failure::Schema(schema) = &mut *self.0 {
            schema.reversed.push(segment());
        }
        self
    }
}

struct SchemaFail {
    kind: ViolationKind,
    /// Path segments, innermost first.
    reversed: Vec<Segment>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl SchemaFail {
    fn into_violation(self) -> Violation {
        let mut path = String::new();
        for segment in self.reversed.iter().rev() {
            path.push('/');
            match segment {
                Segment::Key(key) => path.push_str(&key.replace('~', "~0").replace('/', "~1")),
                Segment::Index(i) => path.push_str(&i.to_string()),
            }
        }
        Violation { instance_path: path, kind: self.kind }
    }
}

#[cold]
fn schema_fail(kind: ViolationKind) -> Fail {
    Fail(Box::new(Failure::Schema(SchemaFail { kind, reversed: Vec::new() })))
}

fn wrong_type(expected: &str) -> Fail {
    schema_fail(ViolationKind::WrongType { expected: expected.to_string() })
}

fn is_ws(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Where a string's content is: in the text (no escapes) or decoded into the scratch buffer.
#[derive(Clone, Copy)]
enum Str {
    Raw(usize, usize),
    Scratch,
}

/// One object level that applies: the shape itself, then each chosen union branch.
struct Level {
    shape: ShapeId,
    hint: usize,
    seen: Seen,
    /// The discriminator was seen (and the branch, if any, pushed).
    resolved: bool,
}

/// Which slots of a shape were seen.
enum Seen {
    Small(u64),
    Big(Vec<bool>),
}

impl Seen {
    fn new(slots: usize) -> Seen {
        if slots <= 64 {
            Seen::Small(0)
        } else {
            Seen::Big(vec![false; slots])
        }
    }

    fn set(&mut self, slot: u32) {
        match self {
            Seen::Small(bits) => *bits |= 1u64 << (slot & 63),
            Seen::Big(flags) => {
                if let Some(flag) = flags.get_mut(slot as usize) {
                    *flag = true;
                }
            }
        }
    }

    fn get(&self, slot: u32) -> bool {
        match self {
            Seen::Small(bits) => bits & (1u64 << (slot & 63)) != 0,
            Seen::Big(flags) => flags.get(slot as usize).copied().unwrap_or(false),
        }
    }
}

struct Run<'g, 'b> {
    graph: &'g Graph,
    bytes: &'b [u8],
    pos: usize,
    scratch: Vec<u8>,
    depth: usize,
    /// Container stack of [`Run::skip_value`] (true = object), reused.
    stack: Vec<bool>,
}

impl<'g, 'b> Run<'g, 'b> {
    fn new(graph: &'g Graph, bytes: &'b [u8]) -> Run<'g, 'b> {
        Run { graph, bytes, pos: 0, scratch: Vec::new(), depth: 0, stack: Vec::new() }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if b > b' ' || !is_ws(b) {
                break;
            }
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Result<u8, Fail> {
        self.bytes.get(self.pos).copied().ok_or_else(|| Fail::syntax_at(self.pos, "unexpected end of text"))
    }

    #[cold]
    fn syntax(&self, message: &'static str) -> Fail {
        Fail::syntax_at(self.pos, message)
    }

    /// Only whitespace may follow the text.
    fn end(&mut self) -> Result<(), Fail> {
        self.ws();
        if self.pos < self.bytes.len() {
            return Err(self.syntax("trailing characters after the json text"));
        }
        Ok(())
    }

    /// Checks one value against `node`.
    fn value(&mut self, node: NodeId) -> Result<(), Fail> {
        self.ws();
        let first = self.peek()?;
        let graph = self.graph;
        match graph.nodes.get(node as usize).unwrap_or(&Node::Any) {
            Node::Any => self.skip_value(),
            Node::Object => match first {
                b'{' => self.skip_value(),
                _ => self.not_of_kind(first, "object"),
            },
            Node::Str => match first {
                b'"' => self.string().map(|_| ()),
                _ => self.not_of_kind(first, "string"),
            },
            Node::Int { min, max } => match first {
                b'-' | b'0'..=b'9' => self.integer(*min, *max),
                _ => self.not_of_kind(first, "integer"),
            },
            Node::Number => match first {
                b'-' | b'0'..=b'9' => self.number().map(|_| ()),
                _ => self.not_of_kind(first, "number"),
            },
            Node::Bool => match first {
                b't' => self.literal(b"true"),
                b'f' => self.literal(b"false"),
                _ => self.not_of_kind(first, "boolean"),
            },
            Node::Null => match first {
                b'n' => self.literal(b"null"),
                _ => self.not_of_kind(first, "null"),
            },
            Node::Enum(set) => match first {
                b'"' => self.enum_value(*set),
                _ => self.not_of_kind(first, "string"),
            },
            Node::Array(element) => match first {
                b'[' => self.array(*element),
                _ => self.not_of_kind(first, "array"),
            },
            Node::Shape(shape) => match first {
                b'{' => self.object(*shape),
                _ => self.not_of_kind(first, "object"),
            },
            Node::Alternate(alternate) => self.alternate(*alternate, first),
            Node::Restricted { inner, values } => {
                let start = self.pos;
                self.value(*inner)?;
                if first != b'"' {
                    return Err(schema_fail(ViolationKind::NotInEnum));
                }
                let end = self.pos;
                self.pos = start;
                let found = self.string()?;
                self.pos = end;
                let content = self.content(found);
                let ok = graph.enums.get(*values as usize).is_some_and(|set| set.contains(content));
                if ok {
                    Ok(())
                } else {
                    Err(schema_fail(ViolationKind::NotInEnum))
                }
            }
        }
    }

    /// A value of the wrong kind: a type error if it is valid JSON so far, else syntax.
    fn not_of_kind(&self, first: u8, expected: &str) -> Result<(), Fail> {
        match first {
            b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' | b'{' | b'[' => Err(wrong_type(expected)),
            _ => Err(self.syntax("expected a value")),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Fail> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(self.syntax("invalid literal"))
        }
    }

    fn enter(&mut self) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth > MAX_TYPED_DEPTH {
            return Err(schema_fail(ViolationKind::TooDeep));
        }
        Ok(())
    }

    fn array(&mut self, element: NodeId) -> Result<(), Fail> {
        self.enter()?;
        self.pos += 1;
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            if let Err(fail) = self.value(element) {
                return Err(with_segment(fail, || Segment::Index(index)));
            }
            self.ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    index += 1;
                }
                b']' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, shape_id: ShapeId) -> Result<(), Fail> {
        self.enter()?;
        let graph = self.graph;
        let shape = graph.shapes.get(shape_id as usize).ok_or_else(|| self.syntax("internal: no shape"))?;
        let mut levels: Vec<Level> = Vec::new();
        let mut first =
            Level { shape: shape_id, hint: 0, seen: Seen::new(shape.slots.len()), resolved: false };
        let unions = shape.union.is_some();
        let mut deferred: Vec<(usize, usize)> = Vec::new();
        let mut unexpected: Option<(usize, usize)> = None;
        self.pos += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return Err(self.syntax("expected a member name"));
                }
                let key_start = self.pos;
                let key = self.string()?;
                self.ws();
                if self.peek()? != b':' {
                    return Err(self.syntax("expected ':'"));
                }
                self.pos += 1;
                self.ws();
                let value_start = self.pos;
                let found = if unions {
                    self.find_in_levels(&mut first, &mut levels, key)
                } else {
                    let content = self.content(key);
                    shape.find(content, &mut first.hint).map(|slot| (0, slot))
                };
                match found {
                    Some((0, slot)) if !unions => {
                        first.seen.set(slot);
                        let node = shape.slots.get(slot as usize).map_or(ANY, |s| s.node);
                        if let Err(fail) = self.value(node) {
                            return Err(self.at_key(fail, key_start));
                        }
                    }
                    Some((level, slot)) => {
                        self.member(&mut first, &mut levels, level, slot, key_start)?;
                    }
                    None => {
                        if unions && self.pending_union(&first, &levels) {
                            deferred.push((key_start, value_start));
                        } else if unexpected.is_none() && self.closes(&first, &levels) {
                            unexpected = Some((key_start, value_start));
                        }
                        self.skip_value()?;
                    }
                }
                self.ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.syntax("expected ',' or '}'")),
                }
            }
        }
        let end = self.pos;
        if !deferred.is_empty() {
            self.deferred(&mut first, &mut levels, &mut deferred, &mut unexpected)?;
            self.pos = end;
        }
        if let Some((key_start, _)) = unexpected {
            self.pos = key_start;
            let key = self.string()?;
            let name = String::from_utf8_lossy(self.content(key)).into_owned();
            self.pos = end;
            return Err(schema_fail(ViolationKind::UnexpectedMember { name }));
        }
        for level in std::iter::once(&first).chain(levels.iter()) {
            let Some(level_shape) = graph.shapes.get(level.shape as usize) else { continue };
            for &slot in &level_shape.required {
                if !level.seen.get(slot) {
                    let name = level_shape.slots.get(slot as usize).map(|s| &*s.name).unwrap_or(b"");
                    let name = String::from_utf8_lossy(name).into_owned();
                    return Err(schema_fail(ViolationKind::MissingMember { name }));
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Looks a member name up in every applying level, the shape's own first.
    fn find_in_levels(&self, first: &mut Level, levels: &mut [Level], key: Str) -> Option<(usize, u32)> {
        let graph = self.graph;
        let content = self.content(key);
        let shape = graph.shapes.get(first.shape as usize)?;
        if let Some(slot) = shape.find(content, &mut first.hint) {
            return Some((0, slot));
        }
        for (i, level) in levels.iter_mut().enumerate() {
            let shape = graph.shapes.get(level.shape as usize)?;
            if let Some(slot) = shape.find(content, &mut level.hint) {
                return Some((i + 1, slot));
            }
        }
        None
    }

    /// Whether some applying level is a union whose discriminator has not been seen yet.
    fn pending_union(&self, first: &Level, levels: &[Level]) -> bool {
        std::iter::once(first).chain(levels.iter()).any(|level| {
            !level.resolved && self.graph.shapes.get(level.shape as usize).is_some_and(|s| s.union.is_some())
        })
    }

    /// Whether an unknown member is an error here: the innermost applying level is closed
    /// and final (no union branch still to come).
    fn closes(&self, first: &Level, levels: &[Level]) -> bool {
        let last = levels.last().unwrap_or(first);
        let Some(shape) = self.graph.shapes.get(last.shape as usize) else { return false };
        shape.closed && (shape.union.is_none() || last.resolved)
    }

    /// Checks the value of slot `slot` of level `level`; a discriminator picks its branch.
    fn member(
        &mut self,
        first: &mut Level,
        levels: &mut Vec<Level>,
        level: usize,
        slot: u32,
        key_start: usize,
    ) -> Result<(), Fail> {
        let graph = self.graph;
        let level_ref = if level == 0 {
            &mut *first
        } else {
            levels.get_mut(level - 1).ok_or_else(|| self.syntax("internal"))?
        };
        level_ref.seen.set(slot);
        let shape_id = level_ref.shape;
        let shape = graph.shapes.get(shape_id as usize).ok_or_else(|| self.syntax("internal: no shape"))?;
        let node = shape.slots.get(slot as usize).map(|s| s.node).unwrap_or(ANY);
        let value_start = self.pos;
        if let Err(fail) = self.value(node) {
            return Err(self.at_key(fail, key_start));
        }
        let is_disc = shape.union.as_ref().is_some_and(|u| u.disc == slot);
        if !is_disc {
            return Ok(());
        }
        let level_ref = if level == 0 {
            &mut *first
        } else {
            levels.get_mut(level - 1).ok_or_else(|| self.syntax("internal"))?
        };
        if level_ref.resolved {
            return Ok(());
        }
        level_ref.resolved = true;
        if self.bytes.get(value_start) != Some(&b'"') {
            return Ok(());
        }
        let end = self.pos;
        self.pos = value_start;
        let value = self.string()?;
        self.pos = end;
        if let Some(branch) = shape.branch(self.content(value)) {
            let slots = graph.shapes.get(branch as usize).map_or(0, |s| s.slots.len());
            levels.push(Level { shape: branch, hint: 0, seen: Seen::new(slots), resolved: false });
        }
        Ok(())
    }

    /// Checks members that came before the discriminator that makes them known.
    fn deferred(
        &mut self,
        first: &mut Level,
        levels: &mut Vec<Level>,
        deferred: &mut Vec<(usize, usize)>,
        unexpected: &mut Option<(usize, usize)>,
    ) -> Result<(), Fail> {
        loop {
            let before = levels.len();
            let mut index = 0;
            while index < deferred.len() {
                let Some(&(key_start, value_start)) = deferred.get(index) else { break };
                self.pos = key_start;
                let key = self.string()?;
                match self.find_in_levels(first, levels, key) {
                    Some((level, slot)) => {
                        deferred.remove(index);
                        self.pos = value_start;
                        self.member(first, levels, level, slot, key_start)?;
                    }
                    None => index += 1,
                }
                if levels.len() != before {
                    break;
                }
            }
            if levels.len() == before {
                break;
            }
        }
        if unexpected.is_none() && self.closes(first, levels) {
            *unexpected = deferred.first().copied();
        }
        Ok(())
    }

    /// Adds the member name starting at `key_start` to a failure's path.
    fn at_key(&mut self, fail: Fail, key_start: usize) -> Fail {
        if !fail.is_schema() {
            return fail;
        }
        let end = self.pos;
        self.pos = key_start;
        let key = match self.string() {
            Ok(key) => String::from_utf8_lossy(self.content(key)).into_owned(),
            Err(_) => String::new(),
        };
        self.pos = end;
        fail.push_segment(|| Segment::Key(key))
    }

    fn alternate(&mut self, alternate: u32, first: u8) -> Result<(), Fail> {
        let graph = self.graph;
        let Some(alternate) = graph.alternates.get(alternate as usize) else { return self.skip_value() };
        if let Some(branches) = &alternate.any_of {
            let start = self.pos;
            let depth = self.depth;
            for &branch in branches {
                match self.value(branch) {
                    Ok(()) => return Ok(()),
                    Err(fail) if fail.is_schema() => {
                        self.pos = start;
                        self.depth = depth;
                    }
                    Err(syntax) => return Err(syntax),
                }
            }
            // No branch took it: a schema error only if the value is valid JSON.
            self.skip_value()?;
            return Err(schema_fail(ViolationKind::NoAlternative));
        }
        let kind = match first {
            b'"' => Kind::String,
            b'-' | b'0'..=b'9' => Kind::Number,
            b't' | b'f' => Kind::Boolean,
            b'n' => Kind::Null,
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            _ => return Err(self.syntax("expected a value")),
        };
        match alternate.by_kind.get(kind as usize).copied().flatten() {
            Some(branch) => self.value(branch),
            None => {
                let expected: Vec<&str> = KIND_NAMES
                    .iter()
                    .zip(alternate.by_kind.iter())
                    .filter_map(|(name, branch)| branch.map(|_| *name))
                    .collect();
                Err(wrong_type(&expected.join(", ")))
            }
        }
    }

    fn enum_value(&mut self, set: u32) -> Result<(), Fail> {
        let found = self.string()?;
        let content = self.content(found);
        if self.graph.enums.get(set as usize).is_some_and(|s| s.contains(content)) {
            Ok(())
        } else {
            Err(schema_fail(ViolationKind::NotInEnum))
        }
    }

    fn content(&self, found: Str) -> &[u8] {
        match found {
            Str::Raw(start, end) => self.bytes.get(start..end).unwrap_or(&[]),
            Str::Scratch => &self.scratch,
        }
    }

    /// Scans a string at `pos` (on its opening quote); decodes it into the scratch buffer
    /// when it has escapes.
    fn string(&mut self) -> Result<Str, Fail> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.skip_plain();
            let byte = self.peek()?;
            match byte {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    if !escaped {
                        return Ok(Str::Raw(start, end));
                    }
                    self.decode(start, end);
                    return Ok(Str::Scratch);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0..=0x1f => return Err(self.syntax("control character in string")),
                _ => self.utf8_char()?,
            }
        }
    }

    /// Skips bytes that need no attention in a string (printable ASCII but `"` and `\`),
    /// eight at a time.
    #[inline]
    fn skip_plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let quote = w ^ (ONES * u64::from(b'"'));
            let backslash = w ^ (ONES * u64::from(b'\\'));
            let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
            let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
            let special = has_zero(quote) | has_zero(backslash) | control | (w & HIGHS);
            if special != 0 {
                // The lowest flagged byte is exact (borrows only flag bytes above a real hit).
                self.pos += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
        while let Some(&b) = self.bytes.get(self.pos) {
            if !(0x20..0x80).contains(&b) || b == b'"' || b == b'\\' {
                return;
            }
            self.pos += 1;
        }
    }

    /// One escape sequence at `pos` (on the backslash); surrogates must pair, as serde_json
    /// requires.
    fn escape(&mut self) -> Result<(), Fail> {
        let kind = self.bytes.get(self.pos + 1).copied();
        match kind {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => {
                let unit = self.hex4(self.pos + 2)?;
                self.pos += 6;
                match unit {
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(self.syntax("lone leading surrogate in hex escape"));
                        }
                        let low = self.hex4(self.pos + 2)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.syntax("lone leading surrogate in hex escape"));
                        }
                        self.pos += 6;
                        Ok(())
                    }
                    0xDC00..=0xDFFF => Err(self.syntax("lone trailing surrogate in hex escape")),
                    _ => Ok(()),
                }
            }
            Some(_) => Err(Fail::syntax_at(self.pos + 1, "invalid escape")),
            None => Err(Fail::syntax_at(self.bytes.len(), "unexpected end of text")),
        }
    }

    fn hex4(&self, at: usize) -> Result<u32, Fail> {
        let mut unit = 0u32;
        for i in 0..4 {
            let Some(&b) = self.bytes.get(at + i) else {
                return Err(Fail::syntax_at(self.bytes.len(), "unexpected end of text"));
            };
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(Fail::syntax_at(at + i, "invalid hex escape")),
            };
            unit = unit * 16 + u32::from(digit);
        }
        Ok(unit)
    }

    /// One multi-byte UTF-8 character at `pos`.
    fn utf8_char(&mut self) -> Result<(), Fail> {
        let lead = self.peek()?;
        let width = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return Err(self.syntax("invalid utf-8 in string")),
        };
        let Some(char_bytes) = self.bytes.get(self.pos..self.pos + width) else {
            // Cut by the end of the text: incomplete if what is there could still be a char.
            let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
            let incomplete = matches!(std::str::from_utf8(rest), Err(e) if e.error_len().is_none());
            return Err(if incomplete {
                Fail::syntax_at(self.bytes.len(), "unexpected end of text")
            } else {
                self.syntax("invalid utf-8 in string")
            });
        };
        if std::str::from_utf8(char_bytes).is_err() {
            return Err(self.syntax("invalid utf-8 in string"));
        }
        self.pos += width;
        Ok(())
    }

    /// Decodes the (valid) escaped string content `start..end` into the scratch buffer.
    fn decode(&mut self, start: usize, end: usize) {
        self.scratch.clear();
        let raw = self.bytes.get(start..end).unwrap_or(&[]);
        let mut i = 0;
        while let Some(&b) = raw.get(i) {
            if b != b'\\' {
                self.scratch.push(b);
                i += 1;
                continue;
            }
            let simple = match raw.get(i + 1) {
                Some(b'n') => Some(b'\n'),
                Some(b't') => Some(b'\t'),
                Some(b'r') => Some(b'\r'),
                Some(b'b') => Some(0x08),
                Some(b'f') => Some(0x0c),
                Some(b'u') => None,
                Some(&other) => Some(other),
                None => return,
            };
            if let Some(byte) = simple {
                self.scratch.push(byte);
                i += 2;
                continue;
            }
            let unit = |at: usize| {
                raw.get(at..at + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .unwrap_or(0xFFFD)
            };
            let high = unit(i + 2);
            let (code, used) = if (0xD800..=0xDBFF).contains(&high) {
                let low = unit(i + 8);
                (0x10000 + ((high - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF), 12)
            } else {
                (high, 6)
            };
            let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
            let mut utf8 = [0u8; 4];
            self.scratch.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
            i += used;
        }
    }

    /// Scans a number's syntax; returns whether it was written as a plain integer.
    fn number(&mut self) -> Result<NumberShape, Fail> {
        let start = self.pos;
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return Err(self.syntax("invalid number")),
        }
        let int_digits = self.pos - int_start;
        let mut plain = true;
        let mut exponent = false;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.syntax("invalid number"));
            }
            self.digits();
            plain = false;
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return Err(self.syntax("invalid number"));
            }
            self.digits();
            plain = false;
            exponent = true;
        }
        // A number serde_json reads as infinity is an error there ("number out of range").
        if (exponent || int_digits > 300) && !self.float(start)?.is_finite() {
            return Err(Fail::syntax_at(start, "number out of range"));
        }
        Ok(NumberShape { start, plain })
    }

    #[inline]
    fn digits(&mut self) {
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    fn float(&self, start: usize) -> Result<f64, Fail> {
        let text = self.bytes.get(start..self.pos).and_then(|t| std::str::from_utf8(t).ok());
        text.and_then(|t| t.parse::<f64>().ok()).ok_or_else(|| Fail::syntax_at(start, "invalid number"))
    }

    /// An integer in `min..=max`: accumulated exactly when written as an integer that fits
    /// 64 bits; otherwise read as serde_json reads it (an `f64`) and compared exactly.
    fn integer(&mut self, min: i64, max: u64) -> Result<(), Fail> {
        let start = self.pos;
        let negative = self.bytes.get(start) == Some(&b'-');
        let digits_start = start + usize::from(negative);
        let mut magnitude: u64 = 0;
        let mut overflow = false;
        let mut at = digits_start;
        while let Some(&b) = self.bytes.get(at) {
            if !b.is_ascii_digit() {
                break;
            }
            match magnitude.checked_mul(10).and_then(|m| m.checked_add(u64::from(b - b'0'))) {
                Some(m) => magnitude = m,
                None => overflow = true,
            }
            at += 1;
        }
        // The common case, a plain integer that fits: done in the one pass above.
        let next = self.bytes.get(at).copied();
        let leading_zero = self.bytes.get(digits_start) == Some(&b'0') && at > digits_start + 1;
        let plain = at > digits_start && !leading_zero && !matches!(next, Some(b'.' | b'e' | b'E'));
        let shape = if plain && !overflow {
            self.pos = at;
            NumberShape { start, plain: true }
        } else {
            self.number()?
        };
        let range_fail =
            || schema_fail(ViolationKind::OutOfRange { min: i128::from(min), max: i128::from(max) });
        let as_float = !shape.plain || overflow || (negative && magnitude > i64::MAX as u64 + 1);
        if as_float {
            let value = self.float(shape.start)?;
            if value.fract() != 0.0 {
                return Err(wrong_type("integer"));
            }
            let in_range = value.abs() < 1.0e38 && {
                let exact = value as i128;
                exact >= i128::from(min) && exact <= i128::from(max)
            };
            return if in_range { Ok(()) } else { Err(range_fail()) };
        }
        let in_range = if negative {
            magnitude == 0 || i128::from(magnitude).wrapping_neg() >= i128::from(min)
        } else {
            magnitude <= max
        };
        if in_range {
            Ok(())
        } else {
            Err(range_fail())
        }
    }

    /// Checks the syntax of any one value without a schema (iterative: no depth limit).
    fn skip_value(&mut self) -> Result<(), Fail> {
        self.stack.clear();
        loop {
            // A value is expected here.
            self.ws();
            match self.peek()? {
                b'{' => {
                    self.pos += 1;
                    self.ws();
                    if self.peek()? == b'}' {
                        self.pos += 1;
                    } else {
                        self.stack.push(true);
                        self.member_name()?;
                        continue;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    self.ws();
                    if self.peek()? == b']' {
                        self.pos += 1;
                    } else {
                        self.stack.push(false);
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return Err(self.syntax("expected a value")),
            }
            // After a value: close containers or move to the next element.
            loop {
                let Some(&in_object) = self.stack.last() else { return Ok(()) };
                self.ws();
                match (self.peek()?, in_object) {
                    (b',', true) => {
                        self.pos += 1;
                        self.ws();
                        self.member_name()?;
                        break;
                    }
                    (b',', false) => {
                        self.pos += 1;
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        self.pos += 1;
                        self.stack.pop();
                    }
                    _ => return Err(self.syntax("expected ',' or a closing bracket")),
                }
            }
        }
    }

    /// `"name" :` inside an object (for [`Run::skip_value`]).
    fn member_name(&mut self) -> Result<(), Fail> {
        if self.peek()? != b'"' {
            return Err(self.syntax("expected a member name"));
        }
        self.string()?;
        self.ws();
        if self.peek()? != b':' {
            return Err(self.syntax("expected ':'"));
        }
        self.pos += 1;
        Ok(())
    }

    /// One whole QMP message object.
    fn message(&mut self, validator: &FastValidator, expect: Option<NodeId>) -> Result<MessageKind, Fail> {
        self.ws();
        if self.peek()? != b'{' {
            self.skip_value()?;
            return Err(schema_fail(ViolationKind::NotAMessage));
        }
        self.pos += 1;
        let mut kind = None;
        let mut event_name: Option<(usize, usize)> = None;
        let mut data_at: Option<usize> = None;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return Err(self.syntax("expected a member name"));
                }
                let key_start = self.pos;
                let key = self.string()?;
                self.ws();
                if self.peek()? != b':' {
                    return Err(self.syntax("expected ':'"));
                }
                self.pos += 1;
                self.ws();
                let value_start = self.pos;
                match self.content(key) {
                    b"return" => {
                        kind = Some(MessageKind::Return);
                        let node = expect.unwrap_or(ANY);
                        if let Err(fail) = self.value(node) {
                            return Err(self.at_key(fail, key_start));
                        }
                    }
                    b"error" => {
                        kind = Some(MessageKind::Error);
                        self.value(OBJECT).map_err(|f| self.at_key(f, key_start))?;
                    }
                    b"QMP" => {
                        kind = Some(MessageKind::Greeting);
                        self.skip_value()?;
                    }
                    b"event" => {
                        kind = Some(MessageKind::Event);
                        if self.peek()? == b'"' {
                            if let Str::Raw(s, e) = self.string()? {
                                event_name = Some((s, e));
                            }
                        } else {
                            self.skip_value()?;
                        }
                    }
                    b"data" => {
                        data_at = Some(value_start);
                        self.skip_value()?;
                    }
                    _ => self.skip_value()?,
                }
                self.ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.syntax("expected ',' or '}'")),
                }
            }
        }
        let Some(kind) = kind else { return Err(schema_fail(ViolationKind::NotAMessage)) };
        if kind == MessageKind::Event {
            self.event_data(validator, event_name, data_at)?;
        }
        Ok(kind)
    }

    /// Checks an event's data once its name is known (`{}` when the event has none).
    fn event_data(
        &mut self,
        validator: &FastValidator,
        name: Option<(usize, usize)>,
        data_at: Option<usize>,
    ) -> Result<(), Fail> {
        let Some((s, e)) = name else { return Err(schema_fail(ViolationKind::NotAMessage)) };
        let name = self.bytes.get(s..e).and_then(|n| std::str::from_utf8(n).ok()).unwrap_or("");
        let Some(&node) = validator.events.get(name) else {
            let name = name.to_string();
            return Err(schema_fail(ViolationKind::UnknownName { what: "event", name }));
        };
        let end = self.pos;
        let result = match data_at {
            Some(at) => {
                self.pos = at;
                self.value(node).map_err(|fail| fail.push_segment(|| Segment::Key("data".into())))
            }
            None => {
                let mut empty = Run::new(self.graph, b"{}");
                empty.value(node)
            }
        };
        self.pos = end;
        result
    }
}

/// Where a number starts and whether it is written as a plain integer.
struct NumberShape {
    start: usize,
    plain: bool,
}

fn with_segment(fail: Fail, segment: impl FnOnce() -> Segment) -> Fail {
    fail.push_segment(segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{EnumValue, Source, TypeDef, Variant};

    fn member(name: &str, ty: TypeRef, optional: bool) -> Member {
        Member::new(name, ty, optional)
    }

    /// A small model: a union `Node` (driver: file|qcow2) with a recursive `backing`, an enum,
    /// an alternate and integer widths.
    fn model() -> Spec {
        let mut spec = Spec::new(SourceKind::Introspect);
        let src = Source::new("t", 1);
        let add = |spec: &mut Spec, name: &str, kind: TypeKind| {
            spec.types.insert(name.into(), TypeDef::new(name, kind, src.clone()));
        };
        add(
            &mut spec,
            "Driver",
            TypeKind::Enum { values: vec![EnumValue::new("file"), EnumValue::new("qcow2")] },
        );
        add(
            &mut spec,
            "File",
            TypeKind::Struct {
                base: None,
                members: vec![member("filename", TypeRef::Builtin(Builtin::Str), false)],
            },
        );
        add(
            &mut spec,
            "Qcow2",
            TypeKind::Struct {
                base: None,
                members: vec![
                    member("backing", TypeRef::named("Node"), true),
                    member("level", TypeRef::Builtin(Builtin::Uint8), true),
                ],
            },
        );
        add(
            &mut spec,
            "Node",
            TypeKind::Union {
                base: None,
                members: vec![
                    member("driver", TypeRef::named("Driver"), false),
                    member("size", TypeRef::Builtin(Builtin::Int64), false),
                    member("ratio", TypeRef::Builtin(Builtin::Number), true),
                ],
                discriminator: "driver".into(),
                variants: vec![
                    Variant { value: "file".into(), ty: TypeRef::named("File"), condition: None },
                    Variant { value: "qcow2".into(), ty: TypeRef::named("Qcow2"), condition: None },
                ],
            },
        );
        add(
            &mut spec,
            "StrOrNull",
            TypeKind::Alternate {
                alternatives: vec![
                    Alternative { name: "s".into(), ty: TypeRef::Builtin(Builtin::Str) },
                    Alternative { name: "n".into(), ty: TypeRef::Builtin(Builtin::Null) },
                ],
            },
        );
        let mut nodes = crate::spec::Command::new("query-nodes", src.clone());
        nodes.returns = Some(TypeRef::array(TypeRef::named("Node")));
        spec.commands.insert(nodes.name.clone(), nodes);
        let mut name = crate::spec::Command::new("query-name", src.clone());
        name.returns = Some(TypeRef::named("StrOrNull"));
        spec.commands.insert(name.name.clone(), name);
        let stop = crate::spec::Command::new("stop", src.clone());
        spec.commands.insert(stop.name.clone(), stop);
        let data = spec.add_implicit_struct(
            ":obj-GONE-arg",
            vec![member("id", TypeRef::Builtin(Builtin::Int), false)],
            src.clone(),
        );
        let mut event = crate::spec::Event::new("GONE", src);
        event.data = Some(data);
        spec.events.insert(event.name.clone(), event);
        spec
    }

    fn check(text: &str) -> Result<(), (String, ViolationKind)> {
        FastValidator::new(&model())
            .validate_return("query-nodes", text.as_bytes())
            .map_err(|v| (v.instance_path, v.kind))
    }

    fn path_of(text: &str) -> String {
        check(text).expect_err("invalid").0
    }

    #[test]
    fn valid_union_members_in_any_order() {
        assert_eq!(check(r#"[{"driver": "file", "size": 1, "filename": "a"}]"#), Ok(()));
        assert_eq!(check(r#"[{"filename": "a", "size": -5, "driver": "file"}]"#), Ok(()));
        let nested = r#"[{"driver":"qcow2","size":0,"backing":{"driver":"file","size":2,"filename":"b"},"level":255}]"#;
        assert_eq!(check(nested), Ok(()));
        assert_eq!(check("[]"), Ok(()));
        assert_eq!(check(" [ ] \r\n"), Ok(()));
    }

    #[test]
    fn errors_name_the_instance_path() {
        assert_eq!(path_of(r#"[{"driver": "file", "size": 1}]"#), "/0");
        assert_eq!(
            check(r#"[{"driver": "file", "size": 1}]"#).unwrap_err().1,
            ViolationKind::MissingMember { name: "filename".into() }
        );
        assert_eq!(path_of(r#"[{"driver": "file", "size": "1", "filename": "a"}]"#), "/0/size");
        let deep = r#"[{"driver":"qcow2","size":0},{"driver":"qcow2","size":0,"backing":{"driver":"file","size":2,"filename":7}}]"#;
        assert_eq!(path_of(deep), "/1/backing/filename");
        // A branch member before the discriminator is checked once the branch is known.
        assert_eq!(path_of(r#"[{"level": 256, "size": 1, "driver": "qcow2"}]"#), "/0/level");
        assert_eq!(path_of(r#"[{"driver": "nbd", "size": 1}]"#), "/0/driver");
    }

    #[test]
    fn integer_ranges_and_number_forms() {
        let level = |v: &str| check(&format!(r#"[{{"driver":"qcow2","size":0,"level":{v}}}]"#));
        assert_eq!(level("255"), Ok(()));
        assert_eq!(level("255.0"), Ok(()));
        assert_eq!(level("2.55e2"), Ok(()));
        assert_eq!(level("-0"), Ok(()));
        assert_eq!(level("256").unwrap_err().1, ViolationKind::OutOfRange { min: 0, max: 255 });
        assert_eq!(level("-1").unwrap_err().1, ViolationKind::OutOfRange { min: 0, max: 255 });
        assert_eq!(level("1.5").unwrap_err().1, ViolationKind::WrongType { expected: "integer".into() });
        let size = |v: &str| check(&format!(r#"[{{"driver":"qcow2","size":{v}}}]"#));
        assert_eq!(size("-9223372036854775808"), Ok(()));
        // serde_json reads integers past 64 bits as f64: -2^63 - 1 rounds onto -2^63.
        assert_eq!(size("-9223372036854775809"), Ok(()));
        assert!(size("-9223372036854777856").is_err());
        assert!(size("9223372036854775808").is_err());
        assert!(size("1e400").is_err());
    }

    #[test]
    fn syntax_errors_win_over_schema_errors() {
        let text = r#"[{"driver": "file", "size": "x", "filename": "a"}, tru]"#;
        let violation = FastValidator::new(&model()).validate_return("query-nodes", text.as_bytes());
        assert!(matches!(violation.unwrap_err().kind, ViolationKind::InvalidJson { .. }));
        for bad in [r#"["\ud800"]"#, "[\"\u{1}\"]", "[01]", "[1.]", "[1,]", "[] x", "[\"\\x\"]", "{\"a\" 1}"]
        {
            let v = FastValidator::new(&model()).validate_return("query-name", bad.as_bytes());
            assert!(matches!(v, Err(Violation { kind: ViolationKind::InvalidJson { .. }, .. })), "{bad}");
            assert!(serde_json::from_str::<serde_json::Value>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_and_utf8_are_decoded_for_names_and_enums() {
        assert_eq!(
            check(r#"[{"dri\u0076er": "fil\u0065", "size": 1, "filename": "\u00e9\ud83d\ude00é"}]"#),
            Ok(())
        );
        assert_eq!(path_of(r#"[{"driver": "file", "size": 1, "filename": 1, "x\/y~": 2}]"#), "/0/filename");
        let bad_utf8 = b"[{\"driver\": \"file\", \"size\": 1, \"filename\": \"\xff\"}]";
        let v = FastValidator::new(&model()).validate_return("query-nodes", bad_utf8);
        assert!(matches!(v.unwrap_err().kind, ViolationKind::InvalidJson { .. }));
    }

    #[test]
    fn alternates_dispatch_on_json_kind() {
        let v = FastValidator::new(&model());
        assert_eq!(v.validate_return("query-name", b"null"), Ok(()));
        assert_eq!(v.validate_return("query-name", b"\"x\""), Ok(()));
        let err = v.validate_return("query-name", b"1").unwrap_err();
        assert_eq!(err.kind, ViolationKind::WrongType { expected: "string, null".into() });
    }

    #[test]
    fn messages_and_streams() {
        let v = FastValidator::new(&model());
        let reply = br#"{"return": [{"driver": "file", "size": 1, "filename": "a"}], "id": {"a": [1]}}"#;
        assert_eq!(v.check_message(Some("query-nodes"), reply), Ok(MessageKind::Return));
        let event =
            br#"{"data": {"id": "x"}, "event": "GONE", "timestamp": {"seconds": 1, "microseconds": 2}}"#;
        let err = v.check_message(None, event).unwrap_err();
        assert_eq!(err.instance_path, "/data/id");
        assert_eq!(v.check_message(Some("stop"), br#"{"return": {}}"#), Ok(MessageKind::Return));
        let err = v.check_message(Some("stop"), br#"{"return": []}"#).unwrap_err();
        assert_eq!(err.instance_path, "/return");

        let mut stream = FastStream::new();
        let whole =
            b"{\"return\": {}}\r\n{\"event\": \"GONE\", \"data\": {\"id\": 3}}\r\n{\"return\": [}\r\n{\"ret";
        for chunk in whole.chunks(5) {
            stream.feed(chunk);
        }
        let first = stream.next_message(&v, Some("stop")).expect("first");
        assert_eq!((first.len, first.result), (14, Ok(MessageKind::Return)));
        let second = stream.next_message(&v, None).expect("second");
        assert_eq!(second.result, Ok(MessageKind::Event));
        let third = stream.next_message(&v, Some("stop")).expect("third");
        assert!(matches!(third.result, Err(Violation { kind: ViolationKind::InvalidJson { .. }, .. })));
        assert!(stream.next_message(&v, Some("stop")).is_none());
        stream.feed(b"urn\": {}}\r\n");
        let fourth = stream.next_message(&v, Some("stop")).expect("fourth");
        assert_eq!(fourth.result, Ok(MessageKind::Return));
        assert_eq!(stream.pending(), b"\r\n");
    }

    #[test]
    fn unknown_names_are_violations() {
        let v = FastValidator::new(&model());
        let err = v.validate_return("nope", b"{}").unwrap_err();
        assert_eq!(err.kind, ViolationKind::UnknownName { what: "command", name: "nope".into() });
    }
}
