//! Renderings of a model for people and programs: the JSON shape of design.md and a table.

use serde_json::{Map, Value};

use super::{DiagnosticKind, Member, Source, Spec, TypeDef, TypeKind, TypeRef, Variant};

/// The `qmpcheck spec --format json` document:
/// `{"commands":[{"name","args":[{"name","type","optional"}],"returns","source"}],
/// "events":[{"name","data":[...],"source"}],"types":[...],"diagnostics":[{"source","message"}]}`.
///
/// `source` is the first place an item was read (`FILE:LINE`); `sources` lists them all.
///
/// Built as `Map`s directly (key order as listed above, then the optional keys), not with
/// `json!`, which would serialize every nested `Value` a second time.
pub fn to_json(spec: &Spec) -> Value {
    let commands: Vec<Value> = spec
        .commands
        .values()
        .map(|c| {
            let mut v = Map::with_capacity(8);
            v.insert("name".into(), string(&c.name));
            v.insert("args".into(), members_json(spec.command_args(c).into_iter()));
            v.insert("returns".into(), c.returns.as_ref().map_or(Value::Null, type_string));
            v.insert("source".into(), first_source(&c.sources));
            v.insert("sources".into(), sources_json(&c.sources));
            let variants = c.args.as_ref().map(|a| spec.variants(a)).unwrap_or_default();
            if !variants.is_empty() {
                v.insert("variants".into(), variants_json(variants));
            }
            if c.allow_oob {
                v.insert("allow_oob".into(), Value::Bool(true));
            }
            if !c.features.is_empty() {
                v.insert("features".into(), strings(&c.features));
            }
            Value::Object(v)
        })
        .collect();
    let events: Vec<Value> = spec
        .events
        .values()
        .map(|e| {
            let mut v = Map::with_capacity(5);
            v.insert("name".into(), string(&e.name));
            v.insert("data".into(), members_json(spec.event_data(e).into_iter()));
            v.insert("source".into(), first_source(&e.sources));
            v.insert("sources".into(), sources_json(&e.sources));
            if !e.features.is_empty() {
                v.insert("features".into(), strings(&e.features));
            }
            Value::Object(v)
        })
        .collect();
    let types: Vec<Value> = spec.types.values().map(type_json).collect();
    let diagnostics: Vec<Value> = spec
        .diagnostics
        .iter()
        .map(|d| {
            let mut v = Map::with_capacity(3);
            v.insert("source".into(), Value::String(d.source.to_string()));
            v.insert("kind".into(), Value::String(kind_name(d.kind).into()));
            v.insert("message".into(), string(&d.message));
            Value::Object(v)
        })
        .collect();
    let mut doc = Map::with_capacity(4);
    doc.insert("commands".into(), Value::Array(commands));
    doc.insert("events".into(), Value::Array(events));
    doc.insert("types".into(), Value::Array(types));
    doc.insert("diagnostics".into(), Value::Array(diagnostics));
    Value::Object(doc)
}

/// The serde (kebab-case) spelling of a diagnostic kind.
fn kind_name(kind: DiagnosticKind) -> &'static str {
    match kind {
        DiagnosticKind::Syntax => "syntax",
        DiagnosticKind::Damaged => "damaged",
        DiagnosticKind::Recovered => "recovered",
        DiagnosticKind::MissingInclude => "missing-include",
        DiagnosticKind::UnresolvedType => "unresolved-type",
        DiagnosticKind::DocFinding => "doc-finding",
        DiagnosticKind::Drift => "drift",
    }
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| string(s)).collect())
}

fn type_string(t: &TypeRef) -> Value {
    Value::String(t.to_string())
}

fn first_source(sources: &[Source]) -> Value {
    sources.first().map_or(Value::Null, |s| Value::String(s.to_string()))
}

fn sources_json(sources: &[Source]) -> Value {
    Value::Array(sources.iter().map(|s| Value::String(s.to_string())).collect())
}

fn variants_json(variants: &[Variant]) -> Value {
    Value::Array(
        variants
            .iter()
            .map(|var| {
                let mut v = Map::with_capacity(2);
                v.insert("value".into(), string(&var.value));
                v.insert("type".into(), type_string(&var.ty));
                Value::Object(v)
            })
            .collect(),
    )
}

fn members_json<'a>(members: impl Iterator<Item = &'a Member>) -> Value {
    Value::Array(
        members
            .map(|m| {
                let mut v = Map::with_capacity(4);
                v.insert("name".into(), string(&m.name));
                v.insert("type".into(), type_string(&m.ty));
                v.insert("optional".into(), Value::Bool(m.optional));
                if let Some(d) = &m.default {
                    v.insert("default".into(), d.clone());
                }
                if !m.values.is_empty() {
                    v.insert("values".into(), strings(&m.values));
                }
                if !m.features.is_empty() {
                    v.insert("features".into(), strings(&m.features));
                }
                if let Some(s) = &m.source {
                    v.insert("source".into(), Value::String(s.to_string()));
                }
                Value::Object(v)
            })
            .collect(),
    )
}

fn type_json(d: &TypeDef) -> Value {
    let mut v = Map::with_capacity(8);
    v.insert("name".into(), string(&d.name));
    v.insert("source".into(), first_source(&d.sources));
    match &d.kind {
        TypeKind::Builtin { builtin } => {
            v.insert("meta".into(), Value::String("builtin".into()));
            v.insert("builtin".into(), Value::String(builtin.name().into()));
        }
        TypeKind::Enum { values } => {
            v.insert("meta".into(), Value::String("enum".into()));
            v.insert("values".into(), Value::Array(values.iter().map(|e| string(&e.name)).collect()));
        }
        TypeKind::Struct { base, members } => {
            v.insert("meta".into(), Value::String("struct".into()));
            v.insert("base".into(), base.as_deref().map_or(Value::Null, string));
            v.insert("members".into(), members_json(members.iter()));
        }
        TypeKind::Union { base, members, discriminator, variants } => {
            v.insert("meta".into(), Value::String("union".into()));
            v.insert("base".into(), base.as_deref().map_or(Value::Null, string));
            v.insert("members".into(), members_json(members.iter()));
            v.insert("discriminator".into(), string(discriminator));
            v.insert("variants".into(), variants_json(variants));
        }
        TypeKind::Alternate { alternatives } => {
            v.insert("meta".into(), Value::String("alternate".into()));
            let list = alternatives
                .iter()
                .map(|a| {
                    let mut alt = Map::with_capacity(2);
                    alt.insert("name".into(), string(&a.name));
                    alt.insert("type".into(), type_string(&a.ty));
                    Value::Object(alt)
                })
                .collect();
            v.insert("alternatives".into(), Value::Array(list));
        }
        TypeKind::Array { element } => {
            v.insert("meta".into(), Value::String("array".into()));
            v.insert("element".into(), type_string(element));
        }
    }
    if d.implicit {
        v.insert("implicit".into(), Value::Bool(true));
    }
    if !d.features.is_empty() {
        v.insert("features".into(), strings(&d.features));
    }
    Value::Object(v)
}

/// A plain-text table: one line per command and event with its arguments, then counts.
pub fn to_table(spec: &Spec) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // Capped: names are padded for alignment only, and `{:width$}` panics past u16::MAX.
    let width = spec.commands.keys().chain(spec.events.keys()).map(|n| n.len()).max().unwrap_or(0).min(64);
    for c in spec.commands.values() {
        let args = spec
            .command_args(c)
            .iter()
            .map(|m| format!("{}{}: {}", m.name, if m.optional { "?" } else { "" }, m.ty))
            .collect::<Vec<_>>()
            .join(", ");
        let ret = c.returns.as_ref().map(|r| format!(" -> {r}")).unwrap_or_default();
        let _ = writeln!(out, "command  {:width$}  ({args}){ret}", c.name);
    }
    for e in spec.events.values() {
        let data = spec
            .event_data(e)
            .iter()
            .map(|m| format!("{}{}: {}", m.name, if m.optional { "?" } else { "" }, m.ty))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "event    {:width$}  {{{data}}}", e.name);
    }
    let counts = spec.type_counts().iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        out,
        "\n{} commands, {} events, types: {}; {} diagnostics",
        spec.commands.len(),
        spec.events.len(),
        if counts.is_empty() { "none".to_string() } else { counts },
        spec.diagnostics.len()
    );
    out
}

#[cfg(test)]
mod tests {
    //! `to_json` builds its maps by hand; these tests hold it to the `json!`-built
    //! rendering it replaced, key order included, on every seed and grown fuzz input.

    use serde_json::{json, Value};

    use super::*;
    use crate::spec::{DiagnosticKind, Member, Source, Spec, TypeDef, TypeKind};

    fn to_json_reference(spec: &Spec) -> Value {
        let commands: Vec<Value> = spec
            .commands
            .values()
            .map(|c| {
                let mut v = json!({
                    "name": c.name,
                    "args": members_json(&spec.command_args(c)),
                    "returns": c.returns.as_ref().map(|t| t.to_string()),
                    "source": first_source(&c.sources),
                    "sources": c.sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                });
                let variants = c.args.as_ref().map(|a| spec.variants(a)).unwrap_or_default();
                if !variants.is_empty() {
                    v["variants"] = variants
                        .iter()
                        .map(|var| json!({"value": var.value, "type": var.ty.to_string()}))
                        .collect();
                }
                if c.allow_oob {
                    v["allow_oob"] = json!(true);
                }
                if !c.features.is_empty() {
                    v["features"] = json!(c.features);
                }
                v
            })
            .collect();
        let events: Vec<Value> = spec
            .events
            .values()
            .map(|e| {
                let mut v = json!({
                    "name": e.name,
                    "data": members_json(&spec.event_data(e)),
                    "source": first_source(&e.sources),
                    "sources": e.sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                });
                if !e.features.is_empty() {
                    v["features"] = json!(e.features);
                }
                v
            })
            .collect();
        let types: Vec<Value> = spec.types.values().map(type_json).collect();
        let diagnostics: Vec<Value> = spec
            .diagnostics
            .iter()
            .map(|d| json!({"source": d.source.to_string(), "kind": d.kind, "message": d.message}))
            .collect();
        json!({"commands": commands, "events": events, "types": types, "diagnostics": diagnostics})
    }

    fn first_source(sources: &[Source]) -> Option<String> {
        sources.first().map(|s| s.to_string())
    }

    fn members_json(members: &[&Member]) -> Vec<Value> {
        members
            .iter()
            .map(|m| {
                let mut v = json!({"name": m.name, "type": m.ty.to_string(), "optional": m.optional});
                if let Some(d) = &m.default {
                    v["default"] = d.clone();
                }
                if !m.values.is_empty() {
                    v["values"] = json!(m.values);
                }
                if !m.features.is_empty() {
                    v["features"] = json!(m.features);
                }
                if let Some(s) = &m.source {
                    v["source"] = json!(s.to_string());
                }
                v
            })
            .collect()
    }

    fn type_json(d: &TypeDef) -> Value {
        let mut v = json!({"name": d.name, "source": first_source(&d.sources)});
        match &d.kind {
            TypeKind::Builtin { builtin } => {
                v["meta"] = json!("builtin");
                v["builtin"] = json!(builtin.name());
            }
            TypeKind::Enum { values } => {
                v["meta"] = json!("enum");
                v["values"] = values.iter().map(|e| json!(e.name)).collect();
            }
            TypeKind::Struct { base, members } => {
                v["meta"] = json!("struct");
                v["base"] = json!(base);
                v["members"] = json!(members_json(&members.iter().collect::<Vec<_>>()));
            }
            TypeKind::Union { base, members, discriminator, variants } => {
                v["meta"] = json!("union");
                v["base"] = json!(base);
                v["members"] = json!(members_json(&members.iter().collect::<Vec<_>>()));
                v["discriminator"] = json!(discriminator);
                v["variants"] = variants
                    .iter()
                    .map(|var| json!({"value": var.value, "type": var.ty.to_string()}))
                    .collect();
            }
            TypeKind::Alternate { alternatives } => {
                v["meta"] = json!("alternate");
                v["alternatives"] =
                    alternatives.iter().map(|a| json!({"name": a.name, "type": a.ty.to_string()})).collect();
            }
            TypeKind::Array { element } => {
                v["meta"] = json!("array");
                v["element"] = json!(element.to_string());
            }
        }
        if d.implicit {
            v["implicit"] = json!(true);
        }
        if !d.features.is_empty() {
            v["features"] = json!(d.features);
        }
        v
    }

    #[test]
    fn kind_names_are_the_serde_names() {
        let kinds = [
            DiagnosticKind::Syntax,
            DiagnosticKind::Damaged,
            DiagnosticKind::Recovered,
            DiagnosticKind::MissingInclude,
            DiagnosticKind::UnresolvedType,
            DiagnosticKind::DocFinding,
            DiagnosticKind::Drift,
        ];
        for kind in kinds {
            assert_eq!(json!(kind), json!(kind_name(kind)));
        }
    }

    fn same_rendering(spec: &Spec, what: &str) {
        let fast = serde_json::to_string(&to_json(spec)).unwrap_or_default();
        let reference = serde_json::to_string(&to_json_reference(spec)).unwrap_or_default();
        assert_eq!(fast, reference, "{what}");
    }

    #[test]
    fn rendering_matches_the_json_macro_rendering() {
        for (what, spec) in crate::spec::corpus_models() {
            same_rendering(&spec, &what);
        }
    }
}
