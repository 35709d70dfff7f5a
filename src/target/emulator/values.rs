//! The smallest schema-valid value of a type, deterministically: mandatory members only,
//! the first enum value, `0`, `""`, `false`, empty arrays, the first union branch and the
//! first alternative. The emulator answers commands with these, so any client that parses
//! replies by the schema can run against it.

use serde_json::{json, Map, Value};

use crate::spec::{Builtin, Spec, TypeKind, TypeRef};

/// Bound on nesting through mandatory members (QAPI forbids cycles; a damaged model may not).
const MAX_DEPTH: usize = 32;

/// The minimal valid value of `ty` in `spec` (`null` for types the model does not resolve).
pub fn min_value(spec: &Spec, ty: &TypeRef) -> Value {
    min_value_at(spec, ty, 0)
}

fn min_value_at(spec: &Spec, ty: &TypeRef, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match ty {
        TypeRef::Builtin(b) => min_builtin(*b),
        TypeRef::Array(_) => json!([]),
        TypeRef::Unknown(_) => Value::Null,
        TypeRef::Named(_) => {
            let Some(def) = spec.resolve(ty) else { return Value::Null };
            match &def.kind {
                TypeKind::Builtin { builtin } => min_builtin(*builtin),
                TypeKind::Enum { values } => values.first().map_or(json!(""), |v| json!(v.name)),
                TypeKind::Array { .. } => json!([]),
                TypeKind::Alternate { alternatives } => {
                    alternatives.first().map_or(Value::Null, |a| min_value_at(spec, &a.ty, depth + 1))
                }
                TypeKind::Struct { .. } => Value::Object(min_members(spec, ty, depth)),
                TypeKind::Union { discriminator, variants, .. } => {
                    let mut object = min_members(spec, ty, depth);
                    if let Some(first) = variants.first() {
                        object.insert(discriminator.clone(), json!(first.value));
                        if let Value::Object(branch) = min_value_at(spec, &first.ty, depth + 1) {
                            object.extend(branch);
                        }
                    }
                    Value::Object(object)
                }
            }
        }
    }
}

/// The mandatory members of an object type with their minimal values, in declaration order.
fn min_members(spec: &Spec, ty: &TypeRef, depth: usize) -> Map<String, Value> {
    spec.members(ty)
        .into_iter()
        .filter(|m| !m.optional)
        .map(|m| (m.name.clone(), min_value_at(spec, &m.ty, depth + 1)))
        .collect()
}

fn min_builtin(builtin: Builtin) -> Value {
    match builtin {
        Builtin::Str => json!(""),
        Builtin::Bool => json!(false),
        Builtin::Null | Builtin::Any => Value::Null,
        Builtin::Object => json!({}),
        _ => json!(0),
    }
}
