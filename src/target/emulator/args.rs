//! Argument checking as QEMU's QAPI input visitor does it, with QEMU 7.2's error texts.
//!
//! The walk follows the generated visitors: members in declaration order (base first, then
//! the union branch the discriminator selects), each value checked by type, and only when
//! every member passed, a check for members the type does not have. The first problem
//! ends the walk. Texts and which name they use (the full path `a[0].b` or the bare member
//! name) were read from `qobject-input-visitor.c` and `qapi-visit-core.c` and confirmed
//! against QEMU 7.2:
//!
//! | problem | desc |
//! |---|---|
//! | mandatory member absent | `Parameter 'PATH' is missing` |
//! | member the type lacks | `Parameter 'PATH' is unexpected` |
//! | wrong JSON type | `Invalid parameter type for 'PATH', expected: string\|integer\|number\|boolean\|object\|array\|null` |
//! | unsigned type given a non-integer | `Parameter 'PATH' expects uint64` |
//! | `int8`..`uint32` out of range | `Parameter 'NAME' expects int8_t` (`uint32_t`, ...) |
//! | enum value not listed | `Parameter 'NAME' does not accept value 'V'` |
//! | alternate given a JSON type it lacks | `Invalid parameter type for 'NAME', expected: ALTERNATE` |
//!
//! NAME is the bare member name, or `null` for an array element, as in QEMU. Unsigned
//! types accept negative integers (QEMU's backward compatibility), which then wrap.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::spec::{Alternative, Builtin, EnumValue, JsonType, Spec, TypeKind, TypeRef};

/// Bound on following union branches and bases in a malformed (cyclic) model.
const MAX_TYPE_DEPTH: usize = 64;

/// Checks `arguments` against a command's arguments type (`None`: the command takes none,
/// so every member is unexpected). Returns QEMU's error desc for the first problem.
pub fn check_arguments(
    spec: &Spec,
    args_type: Option<&TypeRef>,
    arguments: &Map<String, Value>,
) -> Result<(), String> {
    let mut visitor = Visitor { spec, path: Vec::new() };
    match args_type {
        Some(ty) => visitor.visit_object(ty, arguments),
        None => visitor.check_unexpected(arguments, &HashSet::new()),
    }
}

/// Checks one value against a type, as when it is a member named `name` of the arguments.
pub fn check_value(spec: &Spec, ty: &TypeRef, name: &str, value: &Value) -> Result<(), String> {
    let mut visitor = Visitor { spec, path: vec![Segment::Key(name.to_string())] };
    visitor.visit_value(ty, value)
}

/// One step of the path to the value being visited.
#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

/// The JSON type of a value, as QEMU's `QType` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QType {
    String,
    Number,
    Bool,
    Null,
    Dict,
    List,
}

impl QType {
    fn of(value: &Value) -> QType {
        match value {
            Value::String(_) => QType::String,
            Value::Number(_) => QType::Number,
            Value::Bool(_) => QType::Bool,
            Value::Null => QType::Null,
            Value::Object(_) => QType::Dict,
            Value::Array(_) => QType::List,
        }
    }

    /// The `QType` of values of a JSON type (`None` for [`JsonType::Any`]: several).
    fn of_type(json: JsonType) -> Option<QType> {
        Some(match json {
            JsonType::Str => QType::String,
            JsonType::Int | JsonType::Number => QType::Number,
            JsonType::Bool => QType::Bool,
            JsonType::Null => QType::Null,
            JsonType::Object => QType::Dict,
            JsonType::Array => QType::List,
            JsonType::Any => return None,
        })
    }
}

struct Visitor<'a> {
    spec: &'a Spec,
    path: Vec<Segment>,
}

impl Visitor<'_> {
    /// QEMU's `full_name()`: `a.b[0].c`.
    fn full_name(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Segment::Key(k) if out.is_empty() => out.push_str(k),
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The full name of member `key` of the current object.
    fn full_name_of(&mut self, key: &str) -> String {
        self.path.push(Segment::Key(key.to_string()));
        let name = self.full_name();
        self.path.pop();
        name
    }

    /// The bare name QEMU's `visit_type_*N` and enum visitors use: `null` for list elements.
    fn bare_name(&self) -> String {
        match self.path.last() {
            Some(Segment::Key(k)) => k.clone(),
            _ => "null".to_string(),
        }
    }

    fn invalid_type(&self, expected: &str) -> String {
        format!("Invalid parameter type for '{}', expected: {expected}", self.full_name())
    }

    /// An object value of a struct or union type: members, then unexpected ones.
    fn visit_object(&mut self, ty: &TypeRef, object: &Map<String, Value>) -> Result<(), String> {
        let mut visited = HashSet::new();
        if !self.visit_members(ty, object, &mut visited, 0)? {
            // Not an object type the model resolves: nothing is known, accept every member.
            return Ok(());
        }
        self.check_unexpected(object, &visited)
    }

    fn check_unexpected(
        &mut self,
        object: &Map<String, Value>,
        visited: &HashSet<String>,
    ) -> Result<(), String> {
        match object.keys().find(|k| !visited.contains(k.as_str())) {
            Some(key) => Err(format!("Parameter '{}' is unexpected", self.full_name_of(key))),
            None => Ok(()),
        }
    }

    /// Visits the members of `ty` (base, own, then the selected branch). Returns false when
    /// `ty` is not an object type the model defines.
    fn visit_members(
        &mut self,
        ty: &TypeRef,
        object: &Map<String, Value>,
        visited: &mut HashSet<String>,
        depth: usize,
    ) -> Result<bool, String> {
        let spec = self.spec;
        let Some(def) = spec.resolve(ty) else { return Ok(false) };
        if depth > MAX_TYPE_DEPTH {
            return Ok(false);
        }
        let branches = match &def.kind {
            TypeKind::Struct { .. } => None,
            TypeKind::Union { discriminator, variants, .. } => Some((discriminator, variants)),
            _ => return Ok(false),
        };
        for member in spec.members(ty) {
            self.visit_member(&member.name, &member.ty, member.optional, object, visited)?;
        }
        if let Some((discriminator, variants)) = branches {
            let tag = object.get(discriminator).and_then(Value::as_str);
            if let Some(branch) = variants.iter().find(|v| Some(v.value.as_str()) == tag) {
                if !self.visit_members(&branch.ty, object, visited, depth + 1)? {
                    // A branch the model cannot resolve: accept whatever it would hold.
                    visited.extend(object.keys().cloned());
                }
            }
        }
        Ok(true)
    }

    fn visit_member(
        &mut self,
        name: &str,
        ty: &TypeRef,
        optional: bool,
        object: &Map<String, Value>,
        visited: &mut HashSet<String>,
    ) -> Result<(), String> {
        match object.get(name) {
            None if optional => Ok(()),
            None => Err(format!("Parameter '{}' is missing", self.full_name_of(name))),
            Some(value) => {
                visited.insert(name.to_string());
                self.path.push(Segment::Key(name.to_string()));
                let result = self.visit_value(ty, value);
                self.path.pop();
                result
            }
        }
    }

    fn visit_value(&mut self, ty: &TypeRef, value: &Value) -> Result<(), String> {
        match ty {
            TypeRef::Builtin(b) => self.visit_builtin(*b, value),
            TypeRef::Array(element) => self.visit_array(element, value),
            TypeRef::Unknown(_) => Ok(()),
            TypeRef::Named(_) => {
                let spec = self.spec;
                let Some(def) = spec.resolve(ty) else { return Ok(()) };
                match &def.kind {
                    TypeKind::Builtin { builtin } => self.visit_builtin(*builtin, value),
                    TypeKind::Enum { values } => self.visit_enum(values, value),
                    TypeKind::Struct { .. } | TypeKind::Union { .. } => match value {
                        Value::Object(object) => self.visit_object(ty, object),
                        _ => Err(self.invalid_type("object")),
                    },
                    TypeKind::Alternate { alternatives } => {
                        self.visit_alternate(&def.name, alternatives, value)
                    }
                    TypeKind::Array { element } => self.visit_array(element, value),
                }
            }
        }
    }

    fn visit_array(&mut self, element: &TypeRef, value: &Value) -> Result<(), String> {
        let Value::Array(items) = value else { return Err(self.invalid_type("array")) };
        for (index, item) in items.iter().enumerate() {
            self.path.push(Segment::Index(index));
            let result = self.visit_value(element, item);
            self.path.pop();
            result?;
        }
        Ok(())
    }

    fn visit_enum(&mut self, values: &[EnumValue], value: &Value) -> Result<(), String> {
        let Value::String(text) = value else { return Err(self.invalid_type("string")) };
        if values.is_empty() || values.iter().any(|v| &v.name == text) {
            Ok(())
        } else {
            Err(format!("Parameter '{}' does not accept value '{text}'", self.bare_name()))
        }
    }

    fn visit_alternate(
        &mut self,
        name: &str,
        alternatives: &[Alternative],
        value: &Value,
    ) -> Result<(), String> {
        let qtype = QType::of(value);
        let chosen = alternatives.iter().find(|a| self.alternative_accepts(&a.ty, qtype, 0));
        match chosen {
            Some(alternative) => self.visit_value(&alternative.ty, value),
            None => Err(format!("Invalid parameter type for '{}', expected: {name}", self.bare_name())),
        }
    }

    /// Whether an alternative of type `ty` is the branch QEMU picks for a value of `qtype`.
    fn alternative_accepts(&self, ty: &TypeRef, qtype: QType, depth: usize) -> bool {
        if let Some(TypeKind::Alternate { alternatives }) = self.spec.resolve(ty).map(|d| &d.kind) {
            return depth < MAX_TYPE_DEPTH
                && alternatives.iter().any(|a| self.alternative_accepts(&a.ty, qtype, depth + 1));
        }
        // A type that does not resolve, and `any`, accept every value.
        self.spec.json_type(ty).and_then(QType::of_type).map_or(true, |q| q == qtype)
    }

    fn visit_builtin(&mut self, builtin: Builtin, value: &Value) -> Result<(), String> {
        match builtin {
            Builtin::Str => value.is_string().then_some(()).ok_or_else(|| self.invalid_type("string")),
            Builtin::Number => value.is_number().then_some(()).ok_or_else(|| self.invalid_type("number")),
            Builtin::Bool => value.is_boolean().then_some(()).ok_or_else(|| self.invalid_type("boolean")),
            Builtin::Null => value.is_null().then_some(()).ok_or_else(|| self.invalid_type("null")),
            Builtin::Any | Builtin::Object => Ok(()),
            Builtin::Int | Builtin::Int64 => {
                value.as_i64().map(|_| ()).ok_or_else(|| self.invalid_type("integer"))
            }
            Builtin::Int8 | Builtin::Int16 | Builtin::Int32 => {
                let n = value.as_i64().ok_or_else(|| self.invalid_type("integer"))?;
                self.check_range(builtin, i128::from(n))
            }
            Builtin::Uint64 | Builtin::Size => self.as_uint64(value).map(|_| ()),
            Builtin::Uint8 | Builtin::Uint16 | Builtin::Uint32 => {
                let n = self.as_uint64(value)?;
                self.check_range(builtin, i128::from(n))
            }
        }
    }

    /// QEMU's `qobject_input_type_uint64`: unsigned, or signed wrapped for compatibility.
    fn as_uint64(&self, value: &Value) -> Result<u64, String> {
        value
            .as_u64()
            .or_else(|| value.as_i64().map(|n| n as u64))
            .ok_or_else(|| format!("Parameter '{}' expects uint64", self.full_name()))
    }

    fn check_range(&self, builtin: Builtin, n: i128) -> Result<(), String> {
        let Some((min, max)) = builtin.int_range() else { return Ok(()) };
        if (min..=max).contains(&n) {
            Ok(())
        } else {
            Err(format!("Parameter '{}' expects {}_t", self.bare_name(), builtin.name()))
        }
    }
}
