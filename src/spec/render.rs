//! Renderings of a model for people and programs: the JSON shape of design.md and a table.

use serde_json::{json, Value};

use super::{Member, Source, Spec, TypeDef, TypeKind};

/// The `qmpcheck spec --format json` document:
/// `{"commands":[{"name","args":[{"name","type","optional"}],"returns","source"}],
/// "events":[{"name","data":[...],"source"}],"types":[...],"diagnostics":[{"source","message"}]}`.
///
/// `source` is the first place an item was read (`FILE:LINE`); `sources` lists them all.
pub fn to_json(spec: &Spec) -> Value {
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
            v["variants"] =
                variants.iter().map(|var| json!({"value": var.value, "type": var.ty.to_string()})).collect();
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
