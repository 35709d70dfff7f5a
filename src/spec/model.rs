//! The model: commands, events and named types, each remembering where it came from.
//!
//! Every source kind (legacy prose, `.hx` args_type, QAPI json, live introspection) is parsed
//! into this one shape, and everything else in qmpcheck (JSON Schemas, generators, the
//! emulator, compat reports) is derived from it. The model follows QAPI's own structure:
//! a command's arguments and an event's data are an *object type* (implicit types get QAPI's
//! own `:obj-NAME-arg` style names), so there is one way to reach members everywhere.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where an item was read: `FILE:LINE` or, for one-line files, `FILE:LINE:COLUMN`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Source {
    /// File path or label as the user gave it (e.g. `seeds/002.txt@old`, `qemu:/usr/bin/...`).
    pub file: String,
    /// 1-based line number (0 when the source has no lines, e.g. a live QEMU).
    pub line: u32,
    /// 1-based column, given when lines alone do not locate the item (seed 003 is one line).
    pub column: Option<u32>,
}

impl Source {
    /// A source position at `line` of `file`.
    pub fn new(file: impl Into<String>, line: u32) -> Self {
        Source { file: file.into(), line, column: None }
    }

    /// A source position at `line`:`column` of `file`.
    pub fn at(file: impl Into<String>, line: u32, column: u32) -> Self {
        Source { file: file.into(), line, column: Some(column) }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}:{}:{}", self.file, self.line, c),
            None => write!(f, "{}:{}", self.file, self.line),
        }
    }
}

/// The kind of document a model came from, ordered from least to most authoritative.
///
/// Merging keeps the fact from the highest kind (`Introspect > Qapi > Hx > Legacy`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Prose tables of `qmp-commands.txt` / `qmp-events.txt`.
    Legacy,
    /// `qmp-commands.hx` `.args_type` strings (and diffs of them).
    Hx,
    /// QAPI schema files (`qapi/*.json`).
    Qapi,
    /// A `query-qmp-schema` reply, from a file, a recording or a live QEMU.
    Introspect,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Legacy => "legacy",
            SourceKind::Hx => "hx",
            SourceKind::Qapi => "qapi",
            SourceKind::Introspect => "introspect",
        })
    }
}

/// QAPI's built-in types, plus the untyped `json-object` of legacy prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// `str` / json-string.
    Str,
    /// `number` / json-number (a double).
    Number,
    /// `int` / json-int (64-bit signed).
    Int,
    /// `int8`.
    Int8,
    /// `int16`.
    Int16,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `uint8`.
    Uint8,
    /// `uint16`.
    Uint16,
    /// `uint32`.
    Uint32,
    /// `uint64`.
    Uint64,
    /// `size` (unsigned 64-bit byte count).
    Size,
    /// `bool` / json-bool.
    Bool,
    /// `null`.
    Null,
    /// `any` / json-value: any JSON value.
    Any,
    /// An object whose members no source documents (legacy `json-object`, hx `O`).
    Object,
}

impl Builtin {
    /// Every builtin, in a fixed order (for generators and tables).
    pub const ALL: [Builtin; 16] = [
        Builtin::Str,
        Builtin::Number,
        Builtin::Int,
        Builtin::Int8,
        Builtin::Int16,
        Builtin::Int32,
        Builtin::Int64,
        Builtin::Uint8,
        Builtin::Uint16,
        Builtin::Uint32,
        Builtin::Uint64,
        Builtin::Size,
        Builtin::Bool,
        Builtin::Null,
        Builtin::Any,
        Builtin::Object,
    ];

    /// The QAPI spelling (`str`, `uint64`, ...); `Object` is spelled `object`.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Str => "str",
            Builtin::Number => "number",
            Builtin::Int => "int",
            Builtin::Int8 => "int8",
            Builtin::Int16 => "int16",
            Builtin::Int32 => "int32",
            Builtin::Int64 => "int64",
            Builtin::Uint8 => "uint8",
            Builtin::Uint16 => "uint16",
            Builtin::Uint32 => "uint32",
            Builtin::Uint64 => "uint64",
            Builtin::Size => "size",
            Builtin::Bool => "bool",
            Builtin::Null => "null",
            Builtin::Any => "any",
            Builtin::Object => "object",
        }
    }

    /// Parses a QAPI builtin name (`str`, `int32`, ...). `QType` is an enum, not a builtin.
    pub fn from_qapi(name: &str) -> Option<Builtin> {
        Builtin::ALL.iter().copied().find(|b| b.name() == name)
    }

    /// The inclusive integer range QEMU's input visitor accepts, for integer types.
    pub fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            Builtin::Int | Builtin::Int64 => (i64::MIN as i128, i64::MAX as i128),
            Builtin::Int8 => (i8::MIN as i128, i8::MAX as i128),
            Builtin::Int16 => (i16::MIN as i128, i16::MAX as i128),
            Builtin::Int32 => (i32::MIN as i128, i32::MAX as i128),
            Builtin::Uint8 => (0, u8::MAX as i128),
            Builtin::Uint16 => (0, u16::MAX as i128),
            Builtin::Uint32 => (0, u32::MAX as i128),
            Builtin::Uint64 | Builtin::Size => (0, u64::MAX as i128),
            _ => return None,
        })
    }

    /// The JSON type of this builtin's values.
    pub fn json_type(self) -> JsonType {
        match self {
            Builtin::Str => JsonType::Str,
            Builtin::Number => JsonType::Number,
            Builtin::Int
            | Builtin::Int8
            | Builtin::Int16
            | Builtin::Int32
            | Builtin::Int64
            | Builtin::Uint8
            | Builtin::Uint16
            | Builtin::Uint32
            | Builtin::Uint64
            | Builtin::Size => JsonType::Int,
            Builtin::Bool => JsonType::Bool,
            Builtin::Null => JsonType::Null,
            Builtin::Any => JsonType::Any,
            Builtin::Object => JsonType::Object,
        }
    }
}

/// The JSON type of a value, or the one JSON type every value of a type has.
///
/// QAPI alternates are told apart by it, and it is what a type looks like on the wire once
/// its names are gone; one enum so that the compat walk, the merge's drift check, the legacy
/// parser's example evidence and the schema checkers name JSON types the same way. `Int`
/// and `Number` stay apart as QAPI keeps them (JSON Schema and QEMU's `QType` fold them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JsonType {
    /// A string (`str`, enums).
    Str,
    /// An integer (`int` and every sized integer).
    Int,
    /// A number that may have a fraction (`number`).
    Number,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
    /// An object (structs, unions, untyped `json-object`).
    Object,
    /// An array.
    Array,
    /// Values of more than one JSON type: `any`, and alternates.
    Any,
}

impl fmt::Display for JsonType {
    /// QAPI's spelling, as messages show it: `str`, `int`, `number`, `bool`, `null`,
    /// `object`, `array`, `any`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonType::Str => "str",
            JsonType::Int => "int",
            JsonType::Number => "number",
            JsonType::Bool => "bool",
            JsonType::Null => "null",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Any => "any",
        })
    }
}

/// A reference to a type, as a member, return or array element names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeRef {
    /// A builtin type.
    Builtin(Builtin),
    /// A type defined in [`Spec::types`] under this name.
    Named(String),
    /// An array of the element type.
    Array(Box<TypeRef>),
    /// A type text no parser could resolve (kept verbatim, and listed as a diagnostic).
    Unknown(String),
}

impl TypeRef {
    /// Shorthand for a named type reference.
    pub fn named(name: impl Into<String>) -> Self {
        TypeRef::Named(name.into())
    }

    /// Shorthand for an array of `element`.
    pub fn array(element: TypeRef) -> Self {
        TypeRef::Array(Box::new(element))
    }
}

impl fmt::Display for TypeRef {
    /// QAPI notation: `str`, `BlockdevOnError`, `[str]`; unknown types as `?TEXT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeRef::Builtin(b) => f.write_str(b.name()),
            TypeRef::Named(n) => f.write_str(n),
            TypeRef::Array(e) => write!(f, "[{e}]"),
            TypeRef::Unknown(t) => write!(f, "?{t}"),
        }
    }
}

/// A member of an object: a command argument, a return or event data member, a struct field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Member name as it appears on the wire.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: TypeRef,
    /// Whether the member may be absent.
    pub optional: bool,
    /// A documented default (prose "default 'report'", introspection `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Values the prose lists as possible ("Possible values: ..."), for untyped strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Features (`deprecated`, `unstable`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// QAPI `if` condition, rendered as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Documentation text for the member, when the source has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Where the member was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

impl Member {
    /// A member with no default, features, condition or doc.
    pub fn new(name: impl Into<String>, ty: TypeRef, optional: bool) -> Self {
        Member {
            name: name.into(),
            ty,
            optional,
            default: None,
            values: Vec::new(),
            features: Vec::new(),
            condition: None,
            doc: None,
            source: None,
        }
    }
}

/// One value of an enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumValue {
    /// The value as sent on the wire.
    pub name: String,
    /// Features of this value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// QAPI `if` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

impl EnumValue {
    /// A plain enum value.
    pub fn new(name: impl Into<String>) -> Self {
        EnumValue { name: name.into(), features: Vec::new(), condition: None }
    }
}

/// One branch of a union: when the discriminator has `value`, the members of `ty` apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// The discriminator value selecting this branch.
    pub value: String,
    /// The object type whose members the branch adds.
    #[serde(rename = "type")]
    pub ty: TypeRef,
    /// QAPI `if` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// One alternative of an alternate type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// The branch name in QAPI (introspection has none: it uses the type's text).
    pub name: String,
    /// The alternative's type.
    #[serde(rename = "type")]
    pub ty: TypeRef,
}

/// What a named type is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "meta", rename_all = "lowercase")]
pub enum TypeKind {
    /// A builtin under a name (introspection lists builtins as types).
    Builtin {
        /// Which builtin.
        builtin: Builtin,
    },
    /// An enumeration of strings.
    Enum {
        /// Values in source order.
        values: Vec<EnumValue>,
    },
    /// A struct: optional base struct plus its own members.
    Struct {
        /// Name of the base struct whose members come first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
        /// Own members (base members not repeated).
        members: Vec<Member>,
    },
    /// A union: common members (from `base`, named or inline) plus one branch per
    /// discriminator value.
    Union {
        /// Name of the base struct, when the base is named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
        /// Inline base members (QAPI's anonymous base, introspection's flattened members).
        members: Vec<Member>,
        /// Name of the member whose value selects the branch.
        discriminator: String,
        /// The branches.
        variants: Vec<Variant>,
    },
    /// An alternate: a value of any one of the alternatives' types.
    Alternate {
        /// The alternatives.
        alternatives: Vec<Alternative>,
    },
    /// A named array type (introspection's `[135]`).
    Array {
        /// The element type.
        element: TypeRef,
    },
}

/// A named type.
///
/// In JSON the kind's fields sit beside the type's own (`{"name": ..., "meta": "struct",
/// "members": [...], "sources": [...]}`), as `#[serde(flatten)]` would put them; the impls
/// in `typedef_serde` below do that without flatten's buffering of every entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// The type's name (may be masked or invented, see `implicit`).
    pub name: String,
    /// What it is.
    pub kind: TypeKind,
    /// True when the name is not stable: invented by a parser for an anonymous object
    /// (`:obj-eject-arg`, `query-blockstats/return/stats`) or masked by introspection (`"135"`).
    /// Compare such types by structure, never by name.
    pub implicit: bool,
    /// Features of the type.
    pub features: Vec<String>,
    /// QAPI `if` condition.
    pub condition: Option<String>,
    /// Documentation text.
    pub doc: Option<String>,
    /// Every place the type was read.
    pub sources: Vec<Source>,
}

/// Serde for [`TypeDef`]: one JSON object holding the type's fields and its kind's (the
/// `meta` tag first, then the kind's fields), written and read in one pass. Absent
/// optional fields take their defaults, unknown keys are ignored, as with the derived,
/// flattened form this replaces.
mod typedef_serde {
    use std::fmt;

    use serde::de::{self, IgnoredAny, MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Alternative, Builtin, EnumValue, Member, Source, TypeDef, TypeKind, TypeRef, Variant};

    impl Serialize for TypeDef {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(None)?;
            map.serialize_entry("name", &self.name)?;
            match &self.kind {
                TypeKind::Builtin { builtin } => {
                    map.serialize_entry("meta", "builtin")?;
                    map.serialize_entry("builtin", builtin)?;
                }
                TypeKind::Enum { values } => {
                    map.serialize_entry("meta", "enum")?;
                    map.serialize_entry("values", values)?;
                }
                TypeKind::Struct { base, members } => {
                    map.serialize_entry("meta", "struct")?;
                    if let Some(base) = base {
                        map.serialize_entry("base", base)?;
                    }
                    map.serialize_entry("members", members)?;
                }
                TypeKind::Union { base, members, discriminator, variants } => {
                    map.serialize_entry("meta", "union")?;
                    if let Some(base) = base {
                        map.serialize_entry("base", base)?;
                    }
                    map.serialize_entry("members", members)?;
                    map.serialize_entry("discriminator", discriminator)?;
                    map.serialize_entry("variants", variants)?;
                }
                TypeKind::Alternate { alternatives } => {
                    map.serialize_entry("meta", "alternate")?;
                    map.serialize_entry("alternatives", alternatives)?;
                }
                TypeKind::Array { element } => {
                    map.serialize_entry("meta", "array")?;
                    map.serialize_entry("element", element)?;
                }
            }
            if self.implicit {
                map.serialize_entry("implicit", &true)?;
            }
            if !self.features.is_empty() {
                map.serialize_entry("features", &self.features)?;
            }
            if let Some(condition) = &self.condition {
                map.serialize_entry("condition", condition)?;
            }
            if let Some(doc) = &self.doc {
                map.serialize_entry("doc", doc)?;
            }
            map.serialize_entry("sources", &self.sources)?;
            map.end()
        }
    }

    /// The `meta` tag.
    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Meta {
        Builtin,
        Enum,
        Struct,
        Union,
        Alternate,
        Array,
    }

    /// Every key a type definition may have.
    #[derive(Deserialize)]
    #[serde(field_identifier, rename_all = "lowercase")]
    enum Key {
        Name,
        Meta,
        Builtin,
        Values,
        Base,
        Members,
        Discriminator,
        Variants,
        Alternatives,
        Element,
        Implicit,
        Features,
        Condition,
        Doc,
        Sources,
        #[serde(other)]
        Other,
    }

    /// Stores a field's value, refusing a second one.
    fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
        map: &mut A,
        slot: &mut Option<T>,
        name: &'static str,
    ) -> Result<(), A::Error> {
        if slot.is_some() {
            return Err(de::Error::duplicate_field(name));
        }
        *slot = Some(map.next_value()?);
        Ok(())
    }

    struct TypeDefVisitor;

    impl<'de> Visitor<'de> for TypeDefVisitor {
        type Value = TypeDef;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a type definition object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TypeDef, A::Error> {
            let mut name: Option<String> = None;
            let mut meta: Option<Meta> = None;
            let mut builtin: Option<Builtin> = None;
            let mut values: Option<Vec<EnumValue>> = None;
            let mut base: Option<Option<String>> = None;
            let mut members: Option<Vec<Member>> = None;
            let mut discriminator: Option<String> = None;
            let mut variants: Option<Vec<Variant>> = None;
            let mut alternatives: Option<Vec<Alternative>> = None;
            let mut element: Option<TypeRef> = None;
            let mut implicit: Option<bool> = None;
            let mut features: Option<Vec<String>> = None;
            let mut condition: Option<Option<String>> = None;
            let mut doc: Option<Option<String>> = None;
            let mut sources: Option<Vec<Source>> = None;
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Name => once(&mut map, &mut name, "name")?,
                    Key::Meta => once(&mut map, &mut meta, "meta")?,
                    Key::Builtin => once(&mut map, &mut builtin, "builtin")?,
                    Key::Values => once(&mut map, &mut values, "values")?,
                    Key::Base => once(&mut map, &mut base, "base")?,
                    Key::Members => once(&mut map, &mut members, "members")?,
                    Key::Discriminator => once(&mut map, &mut discriminator, "discriminator")?,
                    Key::Variants => once(&mut map, &mut variants, "variants")?,
                    Key::Alternatives => once(&mut map, &mut alternatives, "alternatives")?,
                    Key::Element => once(&mut map, &mut element, "element")?,
                    Key::Implicit => once(&mut map, &mut implicit, "implicit")?,
                    Key::Features => once(&mut map, &mut features, "features")?,
                    Key::Condition => once(&mut map, &mut condition, "condition")?,
                    Key::Doc => once(&mut map, &mut doc, "doc")?,
                    Key::Sources => once(&mut map, &mut sources, "sources")?,
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            fn need<T, E: de::Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
                value.ok_or_else(|| E::missing_field(field))
            }
            let kind = match need(meta, "meta")? {
                Meta::Builtin => TypeKind::Builtin { builtin: need(builtin, "builtin")? },
                Meta::Enum => TypeKind::Enum { values: need(values, "values")? },
                Meta::Struct => TypeKind::Struct { base: base.flatten(), members: need(members, "members")? },
                Meta::Union => TypeKind::Union {
                    base: base.flatten(),
                    members: need(members, "members")?,
                    discriminator: need(discriminator, "discriminator")?,
                    variants: need(variants, "variants")?,
                },
                Meta::Alternate => TypeKind::Alternate { alternatives: need(alternatives, "alternatives")? },
                Meta::Array => TypeKind::Array { element: need(element, "element")? },
            };
            Ok(TypeDef {
                name: need(name, "name")?,
                kind,
                implicit: implicit.unwrap_or(false),
                features: features.unwrap_or_default(),
                condition: condition.flatten(),
                doc: doc.flatten(),
                sources: need(sources, "sources")?,
            })
        }
    }

    impl<'de> Deserialize<'de> for TypeDef {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TypeDef, D::Error> {
            deserializer.deserialize_map(TypeDefVisitor)
        }
    }
}

impl TypeDef {
    /// A type with no features, condition or doc, read at `source`.
    pub fn new(name: impl Into<String>, kind: TypeKind, source: Source) -> Self {
        TypeDef {
            name: name.into(),
            kind,
            implicit: false,
            features: Vec::new(),
            condition: None,
            doc: None,
            sources: vec![source],
        }
    }
}

/// Direction of a documentation example line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// `->`: what the client sends.
    Request,
    /// `<-`: what the server answers (a reply or an event).
    Reply,
    /// An event example (`<- { "event": ...}` or bare in qmp-events.txt).
    Event,
}

/// A JSON example as the documentation gives it, kept as text so doc mistakes stay visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Which way it flows.
    pub direction: Direction,
    /// The example's text, with the `->`/`<-` marker (and line numbers) removed.
    pub text: String,
    /// Where it starts.
    pub source: Source,
}

/// A QMP command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The command name (`query-status`).
    pub name: String,
    /// The arguments object type (a struct or, for boxed commands, possibly a union);
    /// `None` when the command takes no arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<TypeRef>,
    /// The return type; `None` when the command returns `{}` or no source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returns: Option<TypeRef>,
    /// Whether the command may run out of band.
    #[serde(default)]
    pub allow_oob: bool,
    /// QAPI `boxed`.
    #[serde(default)]
    pub boxed: bool,
    /// QAPI `coroutine`.
    #[serde(default)]
    pub coroutine: bool,
    /// QAPI `gen: false` (hand-written marshaller).
    #[serde(default)]
    pub no_gen: bool,
    /// QAPI `allow-preconfig`: the command may run in the preconfig state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_preconfig: bool,
    /// QAPI `success-response: false`: a successful run sends no reply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_success_response: bool,
    /// Features (`deprecated`, `unstable`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// QAPI `if` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Documentation text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Examples from the documentation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    /// Every place the command was read.
    pub sources: Vec<Source>,
}

impl Command {
    /// A command with no arguments, return, flags or doc, read at `source`.
    pub fn new(name: impl Into<String>, source: Source) -> Self {
        Command {
            name: name.into(),
            args: None,
            returns: None,
            allow_oob: false,
            boxed: false,
            coroutine: false,
            no_gen: false,
            allow_preconfig: false,
            no_success_response: false,
            features: Vec::new(),
            condition: None,
            doc: None,
            examples: Vec::new(),
            sources: vec![source],
        }
    }

    /// Whether the command carries no stability promise (`unstable` feature or `x-` name).
    pub fn is_unstable(&self) -> bool {
        is_unstable(&self.name, &self.features)
    }

    /// Whether the command is deprecated.
    pub fn is_deprecated(&self) -> bool {
        self.features.iter().any(|f| f == "deprecated")
    }
}

/// A QMP event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The event name (`STOP`).
    pub name: String,
    /// The data object type; `None` when the event has no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<TypeRef>,
    /// QAPI `boxed`.
    #[serde(default)]
    pub boxed: bool,
    /// Features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// QAPI `if` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Documentation text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Examples from the documentation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    /// Every place the event was read.
    pub sources: Vec<Source>,
}

impl Event {
    /// An event with no data, read at `source`.
    pub fn new(name: impl Into<String>, source: Source) -> Self {
        Event {
            name: name.into(),
            data: None,
            boxed: false,
            features: Vec::new(),
            condition: None,
            doc: None,
            examples: Vec::new(),
            sources: vec![source],
        }
    }

    /// Whether the event carries no stability promise.
    pub fn is_unstable(&self) -> bool {
        is_unstable(&self.name, &self.features)
    }
}

/// Whether a name with these features carries no stability promise.
pub fn is_unstable(name: &str, features: &[String]) -> bool {
    name.starts_with("x-") || features.iter().any(|f| f == "unstable")
}

/// What a diagnostic is about, so reports can group and tests can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnosticKind {
    /// Text of a formal source (QAPI, JSON) that breaks its grammar; the parser skipped to
    /// where it could resume. `spec` and `compat` exit 2 on these.
    Syntax,
    /// Text lost or garbled by the way a prose document was captured (missing lines, a web
    /// viewer's annotations); the parser skipped it and says what is missing.
    Damaged,
    /// Something recovered by inference (a command name taken from its example, ...).
    Recovered,
    /// A QAPI `include` whose file is not there.
    MissingInclude,
    /// A type reference no definition answers.
    UnresolvedType,
    /// A mistake in the documentation itself (a broken example, contradictory prose).
    DocFinding,
    /// Two sources disagree about the same item (see [`crate::spec::merge`]).
    Drift,
}

/// A problem found while reading a source; parsing continues past it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// What kind of problem.
    pub kind: DiagnosticKind,
    /// Where.
    pub source: Source,
    /// What and why, lowercase, no trailing period.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic of `kind` at `source`.
    pub fn new(kind: DiagnosticKind, source: Source, message: impl Into<String>) -> Self {
        Diagnostic { kind, source, message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// The whole model: what one or several sources say about a QMP server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Commands by name.
    pub commands: BTreeMap<String, Command>,
    /// Events by name.
    pub events: BTreeMap<String, Event>,
    /// Named types by name.
    pub types: BTreeMap<String, TypeDef>,
    /// Problems met while reading (never fatal).
    pub diagnostics: Vec<Diagnostic>,
    /// The most authoritative source kind that contributed (None for an empty model).
    pub kind: Option<SourceKind>,
}

impl Spec {
    /// An empty model of the given kind.
    pub fn new(kind: SourceKind) -> Self {
        Spec { kind: Some(kind), ..Spec::default() }
    }

    /// Records a diagnostic.
    pub fn diag(&mut self, kind: DiagnosticKind, source: Source, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(kind, source, message));
    }

    /// Adds an implicit (parser-invented) struct type holding `members` and returns a
    /// reference to it. Used for inline argument lists (`:obj-eject-arg`) and nested prose
    /// objects. An existing type of the same name is replaced.
    pub fn add_implicit_struct(
        &mut self,
        name: impl Into<String>,
        members: Vec<Member>,
        source: Source,
    ) -> TypeRef {
        let name = name.into();
        let mut def = TypeDef::new(name.clone(), TypeKind::Struct { base: None, members }, source);
        def.implicit = true;
        self.types.insert(name.clone(), def);
        TypeRef::Named(name)
    }

    /// The members of an object type, base members first; for a union, the common members
    /// only (see [`Spec::variants`]). Empty for non-object or unknown types.
    pub fn members(&self, ty: &TypeRef) -> Vec<&Member> {
        let mut out = Vec::new();
        self.collect_members(ty, &mut out, 0);
        out
    }

    fn collect_members<'a>(&'a self, ty: &TypeRef, out: &mut Vec<&'a Member>, depth: usize) {
        // Depth bound: a malformed model may have a base cycle.
        if depth > 64 {
            return;
        }
        let TypeRef::Named(name) = ty else { return };
        let Some(def) = self.types.get(name) else { return };
        match &def.kind {
            TypeKind::Struct { base, members } | TypeKind::Union { base, members, .. } => {
                if let Some(b) = base {
                    self.collect_members(&TypeRef::Named(b.clone()), out, depth + 1);
                }
                out.extend(members.iter());
            }
            _ => {}
        }
    }

    /// The union branches of an object type (empty for a struct).
    pub fn variants(&self, ty: &TypeRef) -> &[Variant] {
        match self.resolve(ty).map(|d| &d.kind) {
            Some(TypeKind::Union { variants, .. }) => variants,
            _ => &[],
        }
    }

    /// The definition a named reference points to.
    pub fn resolve(&self, ty: &TypeRef) -> Option<&TypeDef> {
        match ty {
            TypeRef::Named(n) => self.types.get(n),
            _ => None,
        }
    }

    /// The JSON type every value of `ty` has: [`JsonType::Any`] for `any` and for alternates
    /// (their values have one of several), `None` when `ty` does not resolve.
    pub fn json_type(&self, ty: &TypeRef) -> Option<JsonType> {
        Some(match ty {
            TypeRef::Builtin(b) => b.json_type(),
            TypeRef::Array(_) => JsonType::Array,
            TypeRef::Unknown(_) => return None,
            TypeRef::Named(_) => match &self.resolve(ty)?.kind {
                TypeKind::Builtin { builtin } => builtin.json_type(),
                TypeKind::Enum { .. } => JsonType::Str,
                TypeKind::Struct { .. } | TypeKind::Union { .. } => JsonType::Object,
                TypeKind::Array { .. } => JsonType::Array,
                TypeKind::Alternate { .. } => JsonType::Any,
            },
        })
    }

    /// The arguments of a command as a flat member list (base first; union branches excluded).
    pub fn command_args(&self, command: &Command) -> Vec<&Member> {
        command.args.as_ref().map(|t| self.members(t)).unwrap_or_default()
    }

    /// The data members of an event as a flat list.
    pub fn event_data(&self, event: &Event) -> Vec<&Member> {
        event.data.as_ref().map(|t| self.members(t)).unwrap_or_default()
    }

    /// Follows a dotted member path from a type: `stats.timed_stats.avg_rd_queue_depth`
    /// descends through objects and array elements. Returns the member found last.
    pub fn member_at(&self, ty: &TypeRef, path: &str) -> Option<&Member> {
        let mut current = ty.clone();
        let mut found = None;
        for part in path.split('.') {
            while let TypeRef::Array(e) = &current {
                current = (**e).clone();
            }
            if let Some(TypeKind::Array { element }) = self.resolve(&current).map(|d| &d.kind) {
                current = element.clone();
                while let TypeRef::Array(e) = &current {
                    current = (**e).clone();
                }
            }
            let m = self.members(&current).into_iter().find(|m| m.name == part)?;
            current = m.ty.clone();
            found = Some(m);
        }
        found
    }

    /// Every type reference the model makes that no definition answers.
    pub fn unresolved(&self) -> Vec<(String, TypeRef)> {
        let mut out = Vec::new();
        let mut check = |owner: &str, t: &TypeRef| {
            let mut t = t;
            while let TypeRef::Array(e) = t {
                t = e;
            }
            match t {
                TypeRef::Named(n) if !self.types.contains_key(n) => out.push((owner.to_string(), t.clone())),
                TypeRef::Unknown(_) => out.push((owner.to_string(), t.clone())),
                _ => {}
            }
        };
        for c in self.commands.values() {
            for t in c.args.iter().chain(c.returns.iter()) {
                check(&c.name, t);
            }
        }
        for e in self.events.values() {
            for t in e.data.iter() {
                check(&e.name, t);
            }
        }
        for d in self.types.values() {
            match &d.kind {
                TypeKind::Struct { base, members } | TypeKind::Union { base, members, .. } => {
                    if let Some(b) = base {
                        check(&d.name, &TypeRef::Named(b.clone()));
                    }
                    for m in members {
                        check(&format!("{}.{}", d.name, m.name), &m.ty);
                    }
                    if let TypeKind::Union { variants, .. } = &d.kind {
                        for v in variants {
                            check(&format!("{}[{}]", d.name, v.value), &v.ty);
                        }
                    }
                }
                TypeKind::Alternate { alternatives } => {
                    for a in alternatives {
                        check(&d.name, &a.ty);
                    }
                }
                TypeKind::Array { element } => check(&d.name, element),
                TypeKind::Builtin { .. } | TypeKind::Enum { .. } => {}
            }
        }
        out
    }

    /// Counts of named types by meta-type, e.g. `("struct", 20)`, for summaries and tests.
    pub fn type_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for d in self.types.values() {
            let meta = match d.kind {
                TypeKind::Builtin { .. } => "builtin",
                TypeKind::Enum { .. } => "enum",
                TypeKind::Struct { .. } => "struct",
                TypeKind::Union { .. } => "union",
                TypeKind::Alternate { .. } => "alternate",
                TypeKind::Array { .. } => "array",
            };
            *counts.entry(meta).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_path_descends_through_arrays_and_bases() {
        let mut spec = Spec::new(SourceKind::Legacy);
        let src = Source::new("t", 1);
        let inner = spec.add_implicit_struct(
            "inner",
            vec![Member::new("depth", TypeRef::Builtin(Builtin::Number), false)],
            src.clone(),
        );
        let outer =
            spec.add_implicit_struct("outer", vec![Member::new("timed", TypeRef::array(inner), false)], src);
        let m = spec.member_at(&outer, "timed.depth").expect("path resolves");
        assert_eq!(m.ty, TypeRef::Builtin(Builtin::Number));
        assert!(spec.member_at(&outer, "timed.nope").is_none());
    }

    #[test]
    fn unresolved_lists_dangling_names() {
        let mut spec = Spec::new(SourceKind::Qapi);
        let t = spec.add_implicit_struct(
            ":obj-x-arg",
            vec![Member::new("a", TypeRef::named("Missing"), false)],
            Source::new("t", 1),
        );
        let mut c = Command::new("x", Source::new("t", 1));
        c.args = Some(t);
        spec.commands.insert("x".into(), c);
        assert_eq!(spec.unresolved(), vec![(":obj-x-arg.a".to_string(), TypeRef::named("Missing"))]);
    }

    /// [`TypeDef`] with the derived, flattened serde its hand-written impls replace.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct FlatTypeDef {
        name: String,
        #[serde(flatten)]
        kind: TypeKind,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        implicit: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        features: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
        sources: Vec<Source>,
    }

    fn flat(d: &TypeDef) -> FlatTypeDef {
        FlatTypeDef {
            name: d.name.clone(),
            kind: d.kind.clone(),
            implicit: d.implicit,
            features: d.features.clone(),
            condition: d.condition.clone(),
            doc: d.doc.clone(),
            sources: d.sources.clone(),
        }
    }

    #[test]
    fn typedef_serde_matches_the_flattened_derive() {
        let mut defs: Vec<TypeDef> =
            crate::spec::corpus_models().into_iter().flat_map(|(_, spec)| spec.types.into_values()).collect();
        let mut def = TypeDef::new(
            "U",
            TypeKind::Union {
                base: Some("B".into()),
                members: vec![Member::new("m", TypeRef::Builtin(Builtin::Int), true)],
                discriminator: "m".into(),
                variants: Vec::new(),
            },
            Source::new("f", 1),
        );
        def.condition = Some("CONFIG_X".into());
        def.doc = Some("doc".into());
        def.features = vec!["unstable".into()];
        defs.push(def);
        defs.push(TypeDef::new("b", TypeKind::Builtin { builtin: Builtin::Size }, Source::at("f", 1, 2)));
        assert!(defs.len() > 100, "types found: {}", defs.len());
        for def in &defs {
            let json = serde_json::to_string(def).expect("serializes");
            assert_eq!(json, serde_json::to_string(&flat(def)).expect("serializes"));
            let back: TypeDef = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(&back, def);
            let value = serde_json::to_value(def).expect("to value");
            assert_eq!(&serde_json::from_value::<TypeDef>(value).expect("from value"), def);
        }
    }

    #[test]
    fn typedef_deserialize_defaults_ignores_unknown_keys_and_needs_the_rest() {
        let text =
            r#"{"sources": [], "extra": [1], "members": [], "name": "S", "meta": "struct", "base": null}"#;
        let def: TypeDef = serde_json::from_str(text).expect("deserializes");
        assert_eq!(def, flat_to_def(serde_json::from_str(text).expect("derived deserializes")));
        assert_eq!(def.kind, TypeKind::Struct { base: None, members: Vec::new() });
        for bad in [
            r#"{"name": "S", "members": [], "sources": []}"#,
            r#"{"name": "S", "meta": "struct", "sources": []}"#,
            r#"{"name": "S", "meta": "record", "members": [], "sources": []}"#,
            r#"{"meta": "enum", "values": [], "sources": []}"#,
            r#"{"name": "S", "meta": "enum", "values": []}"#,
            r#"["S", "enum"]"#,
        ] {
            assert!(serde_json::from_str::<TypeDef>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<FlatTypeDef>(bad).is_err(), "{bad}");
        }
    }

    fn flat_to_def(f: FlatTypeDef) -> TypeDef {
        TypeDef {
            name: f.name,
            kind: f.kind,
            implicit: f.implicit,
            features: f.features,
            condition: f.condition,
            doc: f.doc,
            sources: f.sources,
        }
    }

    #[test]
    fn source_display() {
        assert_eq!(Source::new("a.txt", 3).to_string(), "a.txt:3");
        assert_eq!(Source::at("b.json", 1, 40).to_string(), "b.json:1:40");
    }
}
