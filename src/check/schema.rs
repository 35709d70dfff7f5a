//! JSON Schemas (draft 2020-12) derived from the model, and a cache of compiled validators.
//!
//! One schema document per command's arguments, per command's return value and per event's
//! data. Each document is standalone: the named types it reaches are copied into its `$defs`
//! (keyed by the type's own name, masked or implicit names included) and referenced with
//! `$ref`, so recursive types (introspection's `BlockdevOptions` ↔ `BlockdevRef`) work.
//!
//! Direction matters (rule C5 against K4): inputs (command arguments) are *closed*, because
//! QEMU rejects unknown members at every nesting level; outputs (returns, event data) are
//! *open* — clients must ignore unknown keys — unless [`SchemaOptions::strict`] is set.
//!
//! Mapping of the model:
//! - builtins: `str` → string, integer types → `integer` with `minimum`/`maximum` from
//!   [`Builtin::int_range`] (in introspected models, where QEMU reports every integer type
//!   as `int`, `int` spans `i64::MIN..=u64::MAX`), `number` → number (integers included, as in QEMU), `bool` →
//!   boolean, `null` → null, `any` → `{}`, `object` → open object;
//! - enum → `enum`; array → `items`; struct → `properties` + `required` (+
//!   `additionalProperties: false` when closed);
//! - alternate → one `if: {type}` / `then: branch` per alternative, as QAPI picks the branch
//!   by JSON type (`anyOf` when that cannot be told), so errors point inside the branch;
//! - union → common members plus one `allOf` entry per variant: `if` the discriminator has
//!   the variant's `const` value, `then` the branch members apply (branches that are unions
//!   nest). Closed unions close at the leaves: each branch repeats the enclosing member
//!   names as `true` next to `additionalProperties: false`, and one more entry closes
//!   discriminator values without a branch. This gives precise errors ("'filename' is a
//!   required property", "'file' was unexpected") where a `oneOf` would only say no branch
//!   matched, and validates about 5x faster than `unevaluatedProperties`;
//! - `Member.doc` → `description`, `default` → `default`, the `deprecated` feature →
//!   `deprecated: true`, `Member.values` (prose possible values) → `enum` on string members;
//! - unresolved types → `{}` with a `$comment` naming them (the model lists them as
//!   diagnostics already).
//!
//! A command without arguments takes a closed empty object. A command whose `returns` is
//! `None` returns `{}` when the model comes from QAPI or introspection (where `None` means
//! exactly that), and any JSON value for legacy and `.hx` models, whose prose often omits
//! the return type (even for queries returning arrays). An event without data has `{}` in
//! QAPI and introspection models, any object otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{json, Map, Value};

use crate::spec::{Alternative, Builtin, JsonType, Member, SourceKind, Spec, TypeDef, TypeKind, TypeRef};

/// The `$schema` URI every document declares.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// How schemas are built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaOptions {
    /// Forbid members the model does not list in outputs (returns and event data) too.
    /// Off by default: rule K4 says clients must ignore unknown keys.
    pub strict: bool,
}

/// Which of an item's schemas a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchemaRole {
    /// A command's `arguments` object.
    Args,
    /// A command's `return` value.
    Return,
    /// An event's `data` object.
    EventData,
}

impl SchemaRole {
    /// The file-name suffix and label (`args`, `return`, `data`).
    pub fn label(self) -> &'static str {
        match self {
            SchemaRole::Args => "args",
            SchemaRole::Return => "return",
            SchemaRole::EventData => "data",
        }
    }
}

impl fmt::Display for SchemaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Errors writing or compiling schemas.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A schema file or folder could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The jsonschema crate rejected a generated schema (a bug in this module).
    #[error("{role} schema of '{name}' does not compile: {message}")]
    Compile {
        /// Which schema of the item.
        role: SchemaRole,
        /// The command or event name.
        name: String,
        /// The crate's message.
        message: String,
    },
}

/// One way an instance breaks a schema, as the jsonschema crate reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer into the instance (`/stats/rd_bytes`; empty for the root).
    pub instance_path: String,
    /// JSON pointer into the schema of the failing keyword (`/properties/id/type`).
    pub schema_path: String,
    /// The crate's message (`"x" is not of type "integer"`).
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.instance_path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.instance_path, self.message)
        }
    }
}

/// Every schema derived from one model.
#[derive(Debug, Clone)]
pub struct SchemaSet {
    options: SchemaOptions,
    args: BTreeMap<String, Arc<Value>>,
    returns: BTreeMap<String, Arc<Value>>,
    events: BTreeMap<String, Arc<Value>>,
}

impl SchemaSet {
    /// Builds the argument and return schemas of every command and the data schema of
    /// every event of `spec`.
    pub fn build(spec: &Spec, options: SchemaOptions) -> SchemaSet {
        let builder = Builder::new(spec, options);
        let mut set =
            SchemaSet { options, args: BTreeMap::new(), returns: BTreeMap::new(), events: BTreeMap::new() };
        for command in spec.commands.values() {
            let args = builder.args_document(command);
            let returns = builder.return_document(command);
            set.args.insert(command.name.clone(), Arc::new(args));
            set.returns.insert(command.name.clone(), Arc::new(returns));
        }
        for event in spec.events.values() {
            let data = builder.event_document(event);
            set.events.insert(event.name.clone(), Arc::new(data));
        }
        set
    }

    /// The options the set was built with.
    pub fn options(&self) -> SchemaOptions {
        self.options
    }

    /// The schema of a command's `arguments`.
    pub fn command_args(&self, command: &str) -> Option<&Value> {
        self.args.get(command).map(|v| v.as_ref())
    }

    /// The schema of a command's `return` value.
    pub fn command_return(&self, command: &str) -> Option<&Value> {
        self.returns.get(command).map(|v| v.as_ref())
    }

    /// The schema of an event's `data`.
    pub fn event_data(&self, event: &str) -> Option<&Value> {
        self.events.get(event).map(|v| v.as_ref())
    }

    /// The schema of `name` in `role`.
    pub fn get(&self, role: SchemaRole, name: &str) -> Option<&Value> {
        self.map(role).get(name).map(|v| v.as_ref())
    }

    /// Number of documents (two per command, one per event).
    pub fn len(&self) -> usize {
        self.args.len() + self.returns.len() + self.events.len()
    }

    /// Whether the set holds no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every document with its role and item name, commands' first.
    pub fn iter(&self) -> impl Iterator<Item = (SchemaRole, &str, &Value)> {
        let roles = [SchemaRole::Args, SchemaRole::Return, SchemaRole::EventData];
        roles.into_iter().flat_map(move |role| {
            self.map(role).iter().map(move |(name, doc)| (role, name.as_str(), doc.as_ref()))
        })
    }

    /// Writes one pretty-printed file per document under `dir`:
    /// `commands/NAME.args.json`, `commands/NAME.return.json`, `events/NAME.data.json`
    /// (names made file-safe by [`file_stem`]). Returns the number of files written.
    pub fn write_all(&self, dir: &Path) -> Result<usize, SchemaError> {
        let mut written = 0;
        for (role, name, doc) in self.iter() {
            let folder = dir.join(if role == SchemaRole::EventData { "events" } else { "commands" });
            std::fs::create_dir_all(&folder)
                .map_err(|source| SchemaError::Io { path: folder.clone(), source })?;
            let path = folder.join(format!("{}.{}.json", file_stem(name), role.label()));
            let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
            text.push('\n');
            std::fs::write(&path, text).map_err(|source| SchemaError::Io { path, source })?;
            written += 1;
        }
        Ok(written)
    }

    fn map(&self, role: SchemaRole) -> &BTreeMap<String, Arc<Value>> {
        match role {
            SchemaRole::Args => &self.args,
            SchemaRole::Return => &self.returns,
            SchemaRole::EventData => &self.events,
        }
    }
}

/// A file-name stem for an item name: ASCII letters, digits, `-` and `_` are kept, every
/// other byte becomes `%HH`, so distinct names never share a file.
pub fn file_stem(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `$ref` to the `$defs` entry of a type name: JSON-pointer escaped (`~0`, `~1`) and
/// percent-encoded where a URI fragment needs it (masked `"135"`, `[135]`, `:obj-x-arg`,
/// `query-blockstats/return/stats` all work).
pub fn def_ref(name: &str) -> String {
    let escaped = name.replace('~', "~0").replace('/', "~1");
    let mut out = String::from("#/$defs/");
    for byte in escaped.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~:@!$&'()*+,;=".contains(&byte);
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Compiled validators for a [`SchemaSet`], each compiled once on first use.
///
/// `validate_*` return every violation. A name the set does not know, or a schema that
/// fails to compile (see [`Validators::compile_all`]), yields one violation with empty
/// paths saying so.
pub struct Validators {
    set: SchemaSet,
    compiled: BTreeMap<(SchemaRole, String), OnceLock<Result<jsonschema::Validator, String>>>,
}

impl fmt::Debug for Validators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validators").field("schemas", &self.compiled.len()).finish_non_exhaustive()
    }
}

impl Validators {
    /// A cache over `set` (cheap: documents are shared, nothing compiles yet).
    pub fn new(set: &SchemaSet) -> Validators {
        let compiled =
            set.iter().map(|(role, name, _)| ((role, name.to_string()), OnceLock::new())).collect();
        Validators { set: set.clone(), compiled }
    }

    /// Compiles every schema now; returns how many, or the first that fails.
    pub fn compile_all(&self) -> Result<usize, SchemaError> {
        let mut count = 0;
        for (role, name) in self.compiled.keys() {
            if let Err(message) = self.validator(*role, name) {
                return Err(SchemaError::Compile { role: *role, name: name.clone(), message });
            }
            count += 1;
        }
        Ok(count)
    }

    /// Checks a command's `arguments` object (pass `{}` when the request has none).
    pub fn validate_args(&self, command: &str, arguments: &Value) -> Result<(), Vec<SchemaViolation>> {
        self.validate(SchemaRole::Args, command, arguments)
    }

    /// Checks the value of a command's `return`.
    pub fn validate_return(&self, command: &str, value: &Value) -> Result<(), Vec<SchemaViolation>> {
        self.validate(SchemaRole::Return, command, value)
    }

    /// Checks an event's `data` (pass `{}` when the event has none).
    pub fn validate_event(&self, event: &str, data: &Value) -> Result<(), Vec<SchemaViolation>> {
        self.validate(SchemaRole::EventData, event, data)
    }

    /// Checks `instance` against the schema of `name` in `role`.
    pub fn validate(
        &self,
        role: SchemaRole,
        name: &str,
        instance: &Value,
    ) -> Result<(), Vec<SchemaViolation>> {
        let validator = self.validator(role, name).map_err(|message| vec![plain_violation(message)])?;
        if validator.is_valid(instance) {
            return Ok(());
        }
        let errors: Vec<_> = validator.iter_errors(instance).collect();
        let violations = to_violations(&errors);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    fn validator(&self, role: SchemaRole, name: &str) -> Result<&jsonschema::Validator, String> {
        let key = (role, name.to_string());
        let Some(slot) = self.compiled.get(&key) else {
            let what = if role == SchemaRole::EventData { "event" } else { "command" };
            return Err(format!("unknown {what} '{name}'"));
        };
        let result = slot.get_or_init(|| {
            let doc = self.set.get(role, name).cloned().unwrap_or(Value::Null);
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(false)
                .build(&doc)
                .map_err(|e| e.to_string())
        });
        result.as_ref().map_err(|e| format!("{role} schema of '{name}' does not compile: {e}"))
    }
}

/// Converts the crate's errors.
fn to_violations(errors: &[jsonschema::ValidationError<'_>]) -> Vec<SchemaViolation> {
    errors
        .iter()
        .map(|error| SchemaViolation {
            instance_path: error.instance_path().as_str().to_string(),
            schema_path: error.schema_path().as_str().to_string(),
            message: error.to_string(),
        })
        .collect()
}

fn plain_violation(message: String) -> SchemaViolation {
    SchemaViolation { instance_path: String::new(), schema_path: String::new(), message }
}

/// Which way a value flows: inputs are always closed, outputs only when strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Input,
    Output,
}

/// Depth bound for flattening nested union branches (a malformed model may loop).
const MAX_BRANCH_DEPTH: usize = 32;

/// Builds definitions once per flow, then assembles per-item documents.
struct Builder<'s> {
    spec: &'s Spec,
    options: SchemaOptions,
    input_defs: BTreeMap<String, Value>,
    output_defs: BTreeMap<String, Value>,
    /// `$ref` string → type name, to follow references when collecting `$defs`.
    ref_names: BTreeMap<String, String>,
}

impl<'s> Builder<'s> {
    fn new(spec: &'s Spec, options: SchemaOptions) -> Self {
        let mut builder = Builder {
            spec,
            options,
            input_defs: BTreeMap::new(),
            output_defs: BTreeMap::new(),
            ref_names: spec.types.keys().map(|n| (def_ref(n), n.clone())).collect(),
        };
        for def in spec.types.values() {
            let input = builder.def_schema(def, Flow::Input);
            builder.input_defs.insert(def.name.clone(), input);
            let output = builder.def_schema(def, Flow::Output);
            builder.output_defs.insert(def.name.clone(), output);
        }
        builder
    }

    fn closed(&self, flow: Flow) -> bool {
        flow == Flow::Input || self.options.strict
    }

    /// Whether `None` for a return or event data means "exactly `{}`" in this model.
    fn none_means_empty(&self) -> bool {
        matches!(self.spec.kind, Some(SourceKind::Qapi | SourceKind::Introspect))
    }

    fn args_document(&self, command: &crate::spec::Command) -> Value {
        let root = match &command.args {
            Some(ty) => self.type_schema(ty),
            // `properties: {}` makes the crate name the key ("'x' was unexpected") rather than
            // the value ("False schema does not allow 1").
            None => json!({"type": "object", "properties": {}, "additionalProperties": false}),
        };
        self.document(root, Flow::Input, format!("{} arguments", command.name), command.doc.as_deref())
    }

    fn return_document(&self, command: &crate::spec::Command) -> Value {
        let root = match &command.returns {
            Some(ty) => self.type_schema(ty),
            None => self.empty_output(),
        };
        self.document(root, Flow::Output, format!("{} return", command.name), None)
    }

    fn event_document(&self, event: &crate::spec::Event) -> Value {
        let root = match &event.data {
            Some(ty) => self.type_schema(ty),
            None if self.none_means_empty() => self.empty_output(),
            None => json!({"type": "object"}),
        };
        self.document(root, Flow::Output, format!("{} data", event.name), event.doc.as_deref())
    }

    /// The schema for an undocumented output: `{}` in QAPI models, anything otherwise.
    fn empty_output(&self) -> Value {
        if !self.none_means_empty() {
            return json!({});
        }
        let mut schema = json!({"type": "object"});
        if self.options.strict {
            schema["properties"] = json!({});
            schema["additionalProperties"] = Value::Bool(false);
        }
        schema
    }

    /// Wraps a root schema into a standalone document with the `$defs` it reaches.
    fn document(&self, root: Value, flow: Flow, title: String, doc: Option<&str>) -> Value {
        let defs = self.reachable_defs(&root, flow);
        let mut out = Map::new();
        out.insert("$schema".into(), Value::String(DRAFT_2020_12.into()));
        out.insert("title".into(), Value::String(title));
        if let Some(d) = doc {
            out.insert("description".into(), Value::String(d.to_string()));
        }
        if let Value::Object(root) = root {
            for (k, v) in root {
                out.entry(k).or_insert(v);
            }
        }
        if !defs.is_empty() {
            out.insert("$defs".into(), Value::Object(defs));
        }
        Value::Object(out)
    }

    /// Every definition `root` reaches through `$ref`, transitively.
    fn reachable_defs(&self, root: &Value, flow: Flow) -> Map<String, Value> {
        let defs = match flow {
            Flow::Input => &self.input_defs,
            Flow::Output => &self.output_defs,
        };
        let mut seen = BTreeSet::new();
        let mut pending = Vec::new();
        collect_refs(root, &mut pending);
        while let Some(reference) = pending.pop() {
            let Some(name) = self.ref_names.get(&reference) else { continue };
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(def) = defs.get(name) {
                collect_refs(def, &mut pending);
            }
        }
        seen.into_iter().filter_map(|name| defs.get(&name).map(|d| (name.clone(), d.clone()))).collect()
    }

    fn def_schema(&self, def: &TypeDef, flow: Flow) -> Value {
        let mut schema = match &def.kind {
            TypeKind::Builtin { builtin } => self.builtin(*builtin),
            TypeKind::Enum { values } => {
                let names: Vec<Value> = values.iter().map(|v| Value::String(v.name.clone())).collect();
                json!({"type": "string", "enum": names})
            }
            TypeKind::Struct { .. } | TypeKind::Union { .. } => {
                self.object_schema(&TypeRef::Named(def.name.clone()), flow)
            }
            TypeKind::Alternate { alternatives } => self.alternate_schema(alternatives),
            TypeKind::Array { element } => json!({"type": "array", "items": self.type_schema(element)}),
        };
        if let Value::Object(map) = &mut schema {
            if !def.implicit {
                map.insert("title".into(), Value::String(def.name.clone()));
            }
            if let Some(doc) = &def.doc {
                map.insert("description".into(), Value::String(doc.clone()));
            }
            if def.features.iter().any(|f| f == "deprecated") {
                map.insert("deprecated".into(), Value::Bool(true));
            }
        }
        schema
    }

    /// A struct or union as one object schema, closed according to `flow`.
    fn object_schema(&self, ty: &TypeRef, flow: Flow) -> Value {
        let mut map = Map::new();
        map.insert("type".into(), Value::String("object".into()));
        let closure = if self.closed(flow) { Some(Vec::new()) } else { None };
        self.object_parts(ty, 0, &mut map, closure.as_deref());
        Value::Object(map)
    }

    /// Adds `properties`, `required` and, for unions, the `allOf` of `if`/`then` branches of
    /// `ty` to `map`. When `closed` is `Some(names)` (names allowed by enclosing levels), the
    /// object is closed where its member set is final: at a struct (or branch) without
    /// further branches with `additionalProperties: false`, the enclosing names listed as
    /// `true`; and for discriminator values without a branch. Closing at the leaves keeps
    /// each error in one place ("'file' was unexpected" at the object, or the wrong branch
    /// member's own error) and is 5x faster than `unevaluatedProperties`.
    fn object_parts(
        &self,
        ty: &TypeRef,
        depth: usize,
        map: &mut Map<String, Value>,
        closed: Option<&[String]>,
    ) {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for member in self.spec.members(ty) {
            properties.insert(member.name.clone(), self.member_schema(member));
            if !member.optional {
                required.push(Value::String(member.name.clone()));
            }
        }
        let mut names: Vec<String> = closed.unwrap_or_default().to_vec();
        names.extend(properties.keys().cloned());
        let union = match self.spec.resolve(ty).map(|d| &d.kind) {
            Some(TypeKind::Union { discriminator, variants, .. })
                if depth < MAX_BRANCH_DEPTH && !variants.is_empty() =>
            {
                Some((discriminator, variants))
            }
            _ => None,
        };
        let Some((discriminator, variants)) = union else {
            if closed.is_some() {
                for name in closed.unwrap_or_default() {
                    properties.entry(name.clone()).or_insert(Value::Bool(true));
                }
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.insert("properties".into(), Value::Object(properties));
            if !required.is_empty() {
                map.insert("required".into(), Value::Array(required));
            }
            return;
        };
        map.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            map.insert("required".into(), Value::Array(required));
        }
        let inherited = closed.map(|_| names.as_slice());
        let mut branches: Vec<Value> = variants
            .iter()
            .map(|variant| {
                let mut then = Map::new();
                self.object_parts(&variant.ty, depth + 1, &mut then, inherited);
                json!({
                    "if": {
                        "properties": {discriminator.as_str(): {"const": variant.value}},
                        "required": [discriminator],
                    },
                    "then": then,
                })
            })
            .collect();
        if closed.is_some() {
            let values: Vec<&str> = variants.iter().map(|v| v.value.as_str()).collect();
            let allowed: Map<String, Value> = names.iter().map(|n| (n.clone(), Value::Bool(true))).collect();
            branches.push(json!({
                "if": {
                    "properties": {discriminator.as_str(): {"not": {"enum": values}}},
                    "required": [discriminator],
                },
                "then": {"properties": allowed, "additionalProperties": false},
            }));
        }
        map.insert("allOf".into(), Value::Array(branches));
    }

    fn member_schema(&self, member: &Member) -> Value {
        let mut schema = self.type_schema(&member.ty);
        let Value::Object(map) = &mut schema else { return schema };
        let stringish =
            matches!(member.ty, TypeRef::Builtin(Builtin::Str | Builtin::Any) | TypeRef::Unknown(_));
        if stringish && !member.values.is_empty() {
            let values: Vec<Value> = member.values.iter().map(|v| Value::String(v.clone())).collect();
            map.insert("enum".into(), Value::Array(values));
        }
        if let Some(doc) = &member.doc {
            map.insert("description".into(), Value::String(doc.clone()));
        }
        if let Some(default) = &member.default {
            map.insert("default".into(), default.clone());
        }
        if member.features.iter().any(|f| f == "deprecated") {
            map.insert("deprecated".into(), Value::Bool(true));
        }
        schema
    }

    /// An alternate: QAPI picks the branch by the value's JSON type, so the schema does the
    /// same with one `if: {type}` / `then: branch` per alternative, and errors point inside
    /// the chosen branch. Falls back to `anyOf` when a branch's JSON type is not known or
    /// two branches share one (not valid QAPI).
    fn alternate_schema(&self, alternatives: &[Alternative]) -> Value {
        let kinds: Vec<Option<&str>> = alternatives.iter().map(|a| self.json_kind(&a.ty)).collect();
        let distinct: BTreeSet<&str> = kinds.iter().flatten().copied().collect();
        if kinds.iter().any(Option::is_none) || distinct.len() != alternatives.len() {
            let branches: Vec<Value> = alternatives.iter().map(|a| self.type_schema(&a.ty)).collect();
            return json!({"anyOf": branches});
        }
        let branches: Vec<Value> = alternatives
            .iter()
            .zip(kinds.iter().flatten())
            .map(|(a, kind)| json!({"if": {"type": kind}, "then": self.type_schema(&a.ty)}))
            .collect();
        json!({"type": kinds, "allOf": branches})
    }

    /// The JSON Schema type a value of `ty` has (`number` for every numeric builtin, so an
    /// integer branch reports a fraction as a wrong value rather than a wrong type); `None`
    /// when values of `ty` may have several.
    fn json_kind(&self, ty: &TypeRef) -> Option<&'static str> {
        Some(match self.spec.json_type(ty)? {
            JsonType::Str => "string",
            JsonType::Int | JsonType::Number => "number",
            JsonType::Bool => "boolean",
            JsonType::Null => "null",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Any => return None,
        })
    }

    /// A builtin's schema. Introspection reports every integer type as `int`, so in an
    /// introspected model `int` may be any of them: its range is widened to
    /// `i64::MIN..=u64::MAX` (what QEMU's input visitor takes for uint64 and size).
    fn builtin(&self, builtin: Builtin) -> Value {
        if builtin == Builtin::Int && self.spec.kind == Some(SourceKind::Introspect) {
            return json!({"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX});
        }
        builtin_schema(builtin)
    }

    /// A reference to a type; the same in both flows (each flow has its own `$defs`).
    fn type_schema(&self, ty: &TypeRef) -> Value {
        match ty {
            TypeRef::Builtin(b) => self.builtin(*b),
            TypeRef::Named(name) if self.spec.types.contains_key(name) => json!({"$ref": def_ref(name)}),
            TypeRef::Named(name) => json!({"$comment": format!("unresolved type {name}")}),
            TypeRef::Array(element) => json!({"type": "array", "items": self.type_schema(element)}),
            TypeRef::Unknown(text) => json!({"$comment": format!("unresolved type {text}")}),
        }
    }
}

/// The schema of a builtin type.
pub fn builtin_schema(builtin: Builtin) -> Value {
    if let Some((min, max)) = builtin.int_range() {
        return json!({"type": "integer", "minimum": int_value(min), "maximum": int_value(max)});
    }
    match builtin {
        Builtin::Str => json!({"type": "string"}),
        Builtin::Number => json!({"type": "number"}),
        Builtin::Bool => json!({"type": "boolean"}),
        Builtin::Null => json!({"type": "null"}),
        Builtin::Object => json!({"type": "object"}),
        _ => json!({}),
    }
}

/// An i128 bound as a JSON number (u64 above i64::MAX, i64 otherwise).
fn int_value(n: i128) -> Value {
    if let Ok(i) = i64::try_from(n) {
        Value::from(i)
    } else if let Ok(u) = u64::try_from(n) {
        Value::from(u)
    } else {
        Value::from(n as f64)
    }
}

/// Pushes every `$ref` string found anywhere in `value`.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
