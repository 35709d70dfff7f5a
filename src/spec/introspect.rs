//! Parser for `query-qmp-schema` replies (SchemaInfo lists).
//!
//! Accepts the list bare, as a `{"return": [...]}` reply, or inside a `record` transcript
//! (`{"query-qmp-schema": [...], ...}`). Each SchemaInfo becomes a model item:
//! - `command` → [`Command`] (args = `arg-type`, returns = `ret-type`, `allow-oob`,
//!   features); an `arg-type`/`ret-type` naming the empty object (`"0"` in QEMU 7.2) gives
//!   `None`, as for a command without arguments or return;
//! - `event` → [`Event`] (data = `arg-type`, `None` for the empty object);
//! - `object` → [`TypeKind::Struct`], or [`TypeKind::Union`] with `tag` + `variants`
//!   (members flattened as introspection gives them, base `None`); a member with a `default`
//!   key (even `null`) is optional;
//! - `enum` (`members` with features, or the older `values`), `alternate`.
//!
//! References to `builtin` entries become [`TypeRef::Builtin`] and references to `array`
//! entries (`"[135]"`) become [`TypeRef::Array`]; neither kind is added to [`Spec::types`],
//! so array and builtin types look the same as in models from QAPI source. Masked names
//! (all digits) and implicit names (`:obj-...`) are kept and marked
//! [`TypeDef::implicit`]: compare them by structure.
//!
//! Sources: a label starting `qemu:` or `storage-daemon:` (a live QEMU) gives line 0; a
//! multi-line document gives the line where the entry starts; a one-line document gives
//! line 1 and the entry's byte offset + 1 as column.

use std::collections::HashMap;
use std::fmt::Display;

use serde_json::{Map, Value};

use super::{
    Alternative, Builtin, Command, DiagnosticKind, EnumValue, Event, Member, Source, SourceKind, Spec,
    TypeDef, TypeKind, TypeRef, Variant,
};
use crate::wire::stream::value_end;

/// Parses introspection JSON text: a bare SchemaInfo array, a `{"return": [...]}` reply or a
/// `record` transcript. Never fails.
pub fn parse(text: &str, file: &str) -> Spec {
    let mut spec = Spec::new(SourceKind::Introspect);
    // serde_json's default recursion limit (128) on purpose: SchemaInfo is a few levels deep,
    // and an unbounded parse of a hostile 100,000-deep file overflows the stack.
    let value = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v,
        Err(e) => {
            let line = u32::try_from(e.line()).unwrap_or(u32::MAX);
            let column = u32::try_from(e.column()).unwrap_or(u32::MAX);
            spec.diag(DiagnosticKind::Syntax, Source::at(file, line, column), format!("invalid json: {e}"));
            return spec;
        }
    };
    let positions = Positions::new(text, file);
    let Some((list, list_offset)) = locate_list(&value, text) else {
        let what = "expected a schemainfo array, a {\"return\": [...]} reply or a transcript with \"query-qmp-schema\"";
        spec.diag(DiagnosticKind::Syntax, positions.source(first_byte(text)), what);
        return spec;
    };
    let offsets = list_offset.map(|o| item_offsets(text.as_bytes(), o)).unwrap_or_default();
    let sources: Vec<Source> = (0..list.len())
        .map(|i| positions.source(offsets.get(i).copied().unwrap_or(list_offset.unwrap_or(0))))
        .collect();
    let mut builder = Builder { spec: &mut spec, entries: HashMap::new() };
    builder.index(list, &sources);
    for (entry, source) in list.iter().zip(&sources) {
        builder.entry(entry, source);
    }
    spec
}

/// Maps byte offsets to [`Source`]s for one document.
struct Positions<'a> {
    file: &'a str,
    live: bool,
    /// Offsets of every `\n` (for multi-line documents; empty for one-line ones).
    newlines: Vec<usize>,
}

impl<'a> Positions<'a> {
    fn new(text: &str, file: &'a str) -> Self {
        let live = file.starts_with("qemu:") || file.starts_with("storage-daemon:");
        let newlines: Vec<usize> =
            text.trim_end().bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i).collect();
        Positions { file, live, newlines }
    }

    fn source(&self, offset: usize) -> Source {
        if self.live {
            return Source::new(self.file, 0);
        }
        if self.newlines.is_empty() {
            return Source::at(self.file, 1, u32::try_from(offset + 1).unwrap_or(u32::MAX));
        }
        let line = self.newlines.partition_point(|&nl| nl < offset) + 1;
        Source::new(self.file, u32::try_from(line).unwrap_or(u32::MAX))
    }
}

/// Offset of the first non-whitespace byte.
fn first_byte(text: &str) -> usize {
    text.len() - text.trim_start().len()
}

/// Finds the SchemaInfo list in the document and the byte offset where it starts.
fn locate_list<'v>(value: &'v Value, text: &str) -> Option<(&'v Vec<Value>, Option<usize>)> {
    match value {
        Value::Array(list) => Some((list, Some(first_byte(text)))),
        Value::Object(map) => {
            let key = ["return", "query-qmp-schema"]
                .into_iter()
                .find(|k| map.get(*k).is_some_and(Value::is_array))?;
            let list = map.get(key)?.as_array()?;
            Some((list, member_offset(text.as_bytes(), first_byte(text), key)))
        }
        _ => None,
    }
}

/// Offset of the value of member `key` of the object starting at `start` (valid JSON).
fn member_offset(bytes: &[u8], start: usize, key: &str) -> Option<usize> {
    let mut pos = skip_ws(bytes, start + 1);
    while bytes.get(pos) == Some(&b'"') {
        let key_end = value_end(bytes, pos)?;
        let name: Option<String> = serde_json::from_slice(bytes.get(pos..key_end)?).ok();
        pos = skip_ws(bytes, key_end);
        if bytes.get(pos) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(bytes, pos + 1);
        if name.as_deref() == Some(key) {
            return Some(value_start);
        }
        pos = skip_ws(bytes, value_end(bytes, value_start)?);
        if bytes.get(pos) != Some(&b',') {
            return None;
        }
        pos = skip_ws(bytes, pos + 1);
    }
    None
}

/// Offsets of the items of the array starting at `start` (valid JSON).
fn item_offsets(bytes: &[u8], start: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = skip_ws(bytes, start + 1);
    while let Some(&b) = bytes.get(pos) {
        if b == b']' {
            break;
        }
        out.push(pos);
        let Some(end) = value_end(bytes, pos) else { break };
        pos = skip_ws(bytes, end);
        if bytes.get(pos) != Some(&b',') {
            break;
        }
        pos = skip_ws(bytes, pos + 1);
    }
    out
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(|b| b.is_ascii_whitespace()) {
        pos += 1;
    }
    pos
}

/// Builds the model from the SchemaInfo entries.
struct Builder<'s, 'v> {
    spec: &'s mut Spec,
    /// Entries by name, for resolving references.
    entries: HashMap<&'v str, &'v Map<String, Value>>,
}

impl<'s, 'v> Builder<'s, 'v> {
    /// Indexes entries by name; reports entries without a name and duplicates.
    fn index(&mut self, list: &'v [Value], sources: &[Source]) {
        for (entry, source) in list.iter().zip(sources) {
            let Some(map) = entry.as_object() else { continue };
            let Some(name) = map.get("name").and_then(Value::as_str) else { continue };
            if self.entries.insert(name, map).is_some() {
                self.diag(source, format!("duplicate schemainfo name `{name}`; the later entry wins"));
            }
        }
    }

    fn diag(&mut self, source: &Source, message: String) {
        self.spec.diag(DiagnosticKind::Syntax, source.clone(), message);
    }

    /// Turns one SchemaInfo entry into a model item.
    fn entry(&mut self, entry: &'v Value, source: &Source) {
        let Some(map) = entry.as_object() else {
            return self.diag(source, format!("schemainfo entry is not an object: {}", short(entry)));
        };
        let Some(name) = map.get("name").and_then(Value::as_str) else {
            return self.diag(source, format!("schemainfo entry has no string `name`: {}", short(entry)));
        };
        let features = self.features(map, source, &name);
        match map.get("meta-type").and_then(Value::as_str) {
            Some("command") => self.command(name, map, features, source),
            Some("event") => self.event(name, map, features, source),
            Some("object") => {
                let kind = self.object(name, map, source);
                self.add_type(name, kind, features, source);
            }
            Some("enum") => {
                let kind = self.enumeration(name, map, source);
                self.add_type(name, kind, features, source);
            }
            Some("alternate") => {
                let kind = self.alternate(name, map, source);
                self.add_type(name, kind, features, source);
            }
            // Resolved where referenced (TypeRef::Builtin / TypeRef::Array).
            Some("builtin") | Some("array") => {}
            Some(other) => self.diag(source, format!("`{name}` has unknown meta-type `{other}`")),
            None => self.diag(source, format!("`{name}` has no string `meta-type`")),
        }
    }

    fn command(&mut self, name: &str, map: &'v Map<String, Value>, features: Vec<String>, source: &Source) {
        let mut command = Command::new(name, source.clone());
        command.args = self.object_ref(map, "arg-type", name, source);
        command.returns = self.object_ref(map, "ret-type", name, source);
        command.allow_oob = match map.get("allow-oob") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.diag(source, format!("`{name}` has a non-boolean allow-oob: {}", short(other)));
                false
            }
        };
        command.features = features;
        if self.spec.commands.insert(name.to_string(), command).is_some() {
            self.diag(source, format!("command `{name}` listed twice"));
        }
    }

    fn event(&mut self, name: &str, map: &'v Map<String, Value>, features: Vec<String>, source: &Source) {
        let mut event = Event::new(name, source.clone());
        event.data = self.object_ref(map, "arg-type", name, source);
        event.features = features;
        if self.spec.events.insert(name.to_string(), event).is_some() {
            self.diag(source, format!("event `{name}` listed twice"));
        }
    }

    /// The reference in `key`, or `None` when absent or naming the empty object.
    fn object_ref(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        owner: &str,
        source: &Source,
    ) -> Option<TypeRef> {
        let value = map.get(key)?;
        if let Some(name) = value.as_str() {
            if self.is_empty_object(name) {
                return None;
            }
        }
        Some(self.type_ref(value, &format_args!("{owner} {key}"), source))
    }

    fn is_empty_object(&self, name: &str) -> bool {
        self.entries.get(name).is_some_and(|e| {
            e.get("meta-type").and_then(Value::as_str) == Some("object")
                && e.get("members").and_then(Value::as_array).is_some_and(Vec::is_empty)
                && !e.contains_key("variants")
        })
    }

    /// Resolves a type name given as JSON (must be a string).
    fn type_ref(&mut self, value: &Value, context: &dyn Display, source: &Source) -> TypeRef {
        match value.as_str() {
            Some(name) => self.resolve(name, context, source, 0),
            None => {
                self.diag(source, format!("{context}: type is not a string: {}", short(value)));
                TypeRef::Unknown(value.to_string())
            }
        }
    }

    fn resolve(&mut self, name: &str, context: &dyn Display, source: &Source, depth: usize) -> TypeRef {
        if depth > 32 {
            self.diag(source, format!("{context}: array type `{name}` nests too deep (a cycle?)"));
            return TypeRef::Unknown(name.to_string());
        }
        let entry = self.entries.get(name).copied();
        let meta = entry.and_then(|e| e.get("meta-type")).and_then(Value::as_str);
        match (entry, meta) {
            (Some(e), Some("builtin")) => match builtin_of(name, e) {
                Some(b) => TypeRef::Builtin(b),
                None => {
                    self.diag(source, format!("{context}: builtin `{name}` has an unknown json-type"));
                    TypeRef::Unknown(name.to_string())
                }
            },
            (Some(e), Some("array")) => match e.get("element-type").and_then(Value::as_str) {
                Some(element) => TypeRef::array(self.resolve(element, context, source, depth + 1)),
                None => {
                    self.diag(source, format!("{context}: array `{name}` has no string element-type"));
                    TypeRef::Unknown(name.to_string())
                }
            },
            (Some(_), _) => TypeRef::named(name),
            (None, _) => {
                if let Some(b) = Builtin::from_qapi(name) {
                    return TypeRef::Builtin(b);
                }
                if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
                    return TypeRef::array(self.resolve(inner, context, source, depth + 1));
                }
                self.spec.diag(
                    DiagnosticKind::UnresolvedType,
                    source.clone(),
                    format!("{context}: type `{name}` is not defined"),
                );
                TypeRef::named(name)
            }
        }
    }

    fn add_type(&mut self, name: &str, kind: TypeKind, features: Vec<String>, source: &Source) {
        let mut def = TypeDef::new(name, kind, source.clone());
        def.implicit = is_masked_or_implicit(name);
        def.features = features;
        if self.spec.types.insert(name.to_string(), def).is_some() {
            self.diag(source, format!("type `{name}` listed twice"));
        }
    }

    fn object(&mut self, name: &str, map: &Map<String, Value>, source: &Source) -> TypeKind {
        let members = match map.get("members") {
            Some(Value::Array(list)) => list.iter().filter_map(|m| self.member(name, m, source)).collect(),
            Some(other) => {
                self.diag(source, format!("object `{name}` members is not an array: {}", short(other)));
                Vec::new()
            }
            None => {
                self.diag(source, format!("object `{name}` has no members"));
                Vec::new()
            }
        };
        let Some(tag) = map.get("tag") else {
            return TypeKind::Struct { base: None, members };
        };
        let discriminator = tag.as_str().unwrap_or_default().to_string();
        if discriminator.is_empty() {
            self.diag(source, format!("object `{name}` has a bad tag: {}", short(tag)));
        }
        let variants = match map.get("variants").and_then(Value::as_array) {
            Some(list) => list.iter().filter_map(|v| self.variant(name, v, source)).collect(),
            None => {
                self.diag(source, format!("object `{name}` has a tag but no variants array"));
                Vec::new()
            }
        };
        TypeKind::Union { base: None, members, discriminator, variants }
    }

    fn member(&mut self, owner: &str, value: &Value, source: &Source) -> Option<Member> {
        let Some(map) = value.as_object() else {
            self.diag(
                source,
                format!("object `{owner}` has a member that is not an object: {}", short(value)),
            );
            return None;
        };
        let Some(name) = map.get("name").and_then(Value::as_str) else {
            self.diag(
                source,
                format!("object `{owner}` has a member without a string name: {}", short(value)),
            );
            return None;
        };
        let context = format_args!("{owner}.{name}");
        let ty = match map.get("type") {
            Some(t) => self.type_ref(t, &context, source),
            None => {
                self.diag(source, format!("{context} has no type"));
                TypeRef::Unknown(String::new())
            }
        };
        let mut member = Member::new(name, ty, map.contains_key("default"));
        member.default = map.get("default").filter(|d| !d.is_null()).cloned();
        member.features = self.features(map, source, &context);
        member.source = Some(source.clone());
        Some(member)
    }

    fn variant(&mut self, owner: &str, value: &Value, source: &Source) -> Option<Variant> {
        let case = value.get("case").and_then(Value::as_str);
        let ty = value.get("type");
        let (Some(case), Some(ty)) = (case, ty) else {
            self.diag(source, format!("union `{owner}` has a bad variant: {}", short(value)));
            return None;
        };
        let ty = self.type_ref(ty, &format_args!("{owner}[{case}]"), source);
        Some(Variant { value: case.to_string(), ty, condition: None })
    }

    fn enumeration(&mut self, name: &str, map: &Map<String, Value>, source: &Source) -> TypeKind {
        let values = if let Some(Value::Array(members)) = map.get("members") {
            members
                .iter()
                .filter_map(|m| match m.get("name").and_then(Value::as_str) {
                    Some(n) => {
                        let mut value = EnumValue::new(n);
                        value.features =
                            m.as_object().map(|o| self.features(o, source, &name)).unwrap_or_default();
                        Some(value)
                    }
                    None => {
                        self.diag(source, format!("enum `{name}` has a bad member: {}", short(m)));
                        None
                    }
                })
                .collect()
        } else if let Some(Value::Array(values)) = map.get("values") {
            values
                .iter()
                .filter_map(|v| match v.as_str() {
                    Some(s) => Some(EnumValue::new(s)),
                    None => {
                        self.diag(source, format!("enum `{name}` has a non-string value: {}", short(v)));
                        None
                    }
                })
                .collect()
        } else {
            self.diag(source, format!("enum `{name}` has neither members nor values"));
            Vec::new()
        };
        TypeKind::Enum { values }
    }

    fn alternate(&mut self, name: &str, map: &Map<String, Value>, source: &Source) -> TypeKind {
        let Some(list) = map.get("members").and_then(Value::as_array) else {
            self.diag(source, format!("alternate `{name}` has no members array"));
            return TypeKind::Alternate { alternatives: Vec::new() };
        };
        let mut alternatives = Vec::new();
        for m in list {
            match m.get("type") {
                Some(t) => {
                    let ty = self.type_ref(t, &name, source);
                    let text = t.as_str().map(str::to_string).unwrap_or_else(|| t.to_string());
                    alternatives.push(Alternative { name: text, ty });
                }
                None => {
                    self.diag(source, format!("alternate `{name}` has a member without type: {}", short(m)))
                }
            }
        }
        TypeKind::Alternate { alternatives }
    }

    /// The `features` list of an entry or member (strings only).
    fn features(&mut self, map: &Map<String, Value>, source: &Source, owner: &dyn Display) -> Vec<String> {
        match map.get("features") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|f| {
                    let name = f.as_str().map(str::to_string);
                    if name.is_none() {
                        self.diag(source, format!("`{owner}` has a non-string feature: {}", short(f)));
                    }
                    name
                })
                .collect(),
            Some(other) => {
                self.diag(source, format!("`{owner}` features is not an array: {}", short(other)));
                Vec::new()
            }
        }
    }
}

/// The builtin a `builtin` entry stands for: by name, else by json-type.
fn builtin_of(name: &str, entry: &Map<String, Value>) -> Option<Builtin> {
    if let Some(b) = Builtin::from_qapi(name) {
        return Some(b);
    }
    Some(match entry.get("json-type").and_then(Value::as_str)? {
        "string" => Builtin::Str,
        "int" => Builtin::Int,
        "number" => Builtin::Number,
        "boolean" => Builtin::Bool,
        "null" => Builtin::Null,
        "value" => Builtin::Any,
        "object" => Builtin::Object,
        _ => return None,
    })
}

/// Masked (`"135"`) and implicit (`":obj-eject-arg"`) names are unstable.
fn is_masked_or_implicit(name: &str) -> bool {
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())) || name.starts_with(':')
}

/// A value as compact JSON, shortened for messages.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", text.get(..cut).unwrap_or("")),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Diagnostic;

    const SCHEMA: &str = r#"[
{"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1", "allow-oob": true},
{"name": "eject", "meta-type": "command", "arg-type": "2", "ret-type": "0", "features": ["deprecated"]},
{"name": "STOP", "meta-type": "event", "arg-type": "0"},
{"name": "0", "meta-type": "object", "members": []},
{"name": "1", "meta-type": "object", "members": [{"name": "status", "type": "3"}, {"name": "list", "type": "[str]"}]},
{"name": "2", "meta-type": "object", "members": [{"name": "force", "type": "bool", "default": null}],
 "tag": "force", "variants": [{"case": "x", "type": "0"}]},
{"name": "3", "meta-type": "enum", "values": ["a", "b"]},
{"name": "4", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "null"}]},
{"name": "[str]", "meta-type": "array", "element-type": "str"},
{"name": "str", "meta-type": "builtin", "json-type": "string"},
{"name": "bool", "meta-type": "builtin", "json-type": "boolean"},
{"name": "null", "meta-type": "builtin", "json-type": "null"}
]"#;

    #[test]
    fn builds_commands_events_and_types() {
        let spec = parse(SCHEMA, "s.json");
        assert_eq!(spec.diagnostics, Vec::<Diagnostic>::new());
        let status = &spec.commands["query-status"];
        assert_eq!(
            (status.args.clone(), status.returns.clone(), status.allow_oob),
            (None, Some(TypeRef::named("1")), true)
        );
        assert_eq!(status.sources, vec![Source::new("s.json", 2)]);
        let eject = &spec.commands["eject"];
        assert_eq!((eject.args.clone(), eject.returns.clone()), (Some(TypeRef::named("2")), None));
        assert!(eject.is_deprecated());
        assert_eq!(spec.events["STOP"].data, None);
        let m = spec.member_at(&TypeRef::named("1"), "list").map(|m| m.ty.clone());
        assert_eq!(m, Some(TypeRef::array(TypeRef::Builtin(Builtin::Str))));
        let counts: Vec<_> = spec.type_counts().into_iter().collect();
        assert_eq!(counts, vec![("alternate", 1), ("enum", 1), ("struct", 2), ("union", 1)]);
        assert!(spec.types["2"].implicit);
        assert!(spec.command_args(eject)[0].optional);
        assert_eq!(spec.variants(&TypeRef::named("2")).len(), 1);
    }

    #[test]
    fn one_line_reply_uses_columns_and_live_labels_line_zero() {
        let text = r#"{"return": [{"name": "c", "meta-type": "command", "arg-type": "9"}]}"#;
        let spec = parse(text, "r.json");
        assert_eq!(spec.commands["c"].sources, vec![Source::at("r.json", 1, 13)]);
        assert_eq!(spec.diagnostics.len(), 1);
        assert_eq!(spec.diagnostics[0].kind, DiagnosticKind::UnresolvedType);
        let live = parse(text, "qemu:/usr/bin/x");
        assert_eq!(live.commands["c"].sources, vec![Source::new("qemu:/usr/bin/x", 0)]);
    }

    #[test]
    fn damaged_input_gives_diagnostics() {
        let spec = parse("[{\"name\": 1}, 5,\n {\"name\": \"x\"}", "bad.json");
        assert_eq!(spec.diagnostics.len(), 1);
        assert_eq!(spec.diagnostics[0].kind, DiagnosticKind::Syntax);
        assert_eq!((spec.diagnostics[0].source.line, spec.diagnostics[0].source.column), (2, Some(14)));
        let spec = parse("[{\"name\": 1}, 5,\n {\"name\": \"x\"}]", "bad.json");
        let lines: Vec<u32> = spec.diagnostics.iter().map(|d| d.source.line).collect();
        assert_eq!(lines, vec![1, 1, 2]);
    }
}
