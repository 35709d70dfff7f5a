//! Merging several models into one, keeping the most authoritative fact and recording
//! every disagreement as a drift diagnostic.
//!
//! Authority follows [`SourceKind`] (`Introspect > Qapi > Hx > Legacy`); among models of the
//! same kind the one given first wins. The winner's command or event is kept whole (its
//! argument, return and data types), gaining the lower models' sources, and their docs and
//! examples where it has none. Each lower model is then compared with the winner, at the JSON
//! level (string/enum, int, number, bool, object, array, any), and each difference becomes a
//! [`DiagnosticKind::Drift`] diagnostic at the lower model's location naming both sources.
//! Commands or events that only some models have are never drift: a lower document may cover
//! only part of QEMU (seed 003 is only migration).
//!
//! Named types of every model are imported; when two models define the same name differently
//! (implicit `:obj-eject-arg`, introspection's masked `"135"`), the lower model's copy is
//! renamed `NAME@K` (K = the model's 1-based position in the input, plus a counter if taken)
//! and its references rewritten, before anything is imported.

use std::collections::{BTreeMap, BTreeSet};

use super::{Command, Diagnostic, DiagnosticKind, Event, JsonType, Member, Source, Spec, TypeKind, TypeRef};

/// Merges models; the most authoritative kind wins each fact, disagreements become
/// [`super::DiagnosticKind::Drift`] diagnostics. Merging one model returns it unchanged.
pub fn merge(specs: Vec<Spec>) -> Spec {
    if specs.len() <= 1 {
        return specs.into_iter().next().unwrap_or_default();
    }
    let mut ordered: Vec<(usize, Spec)> = specs.into_iter().enumerate().collect();
    // Stable: equal kinds keep the order given.
    ordered.sort_by_key(|(_, s)| std::cmp::Reverse(s.kind));
    let mut out = Spec { kind: ordered.first().and_then(|(_, s)| s.kind), ..Spec::default() };
    let mut drift = Vec::new();
    for (index, mut spec) in ordered {
        rename_collisions(&out, &mut spec, index + 1);
        import_types(&mut out, &spec);
        out.diagnostics.append(&mut spec.diagnostics);
        import_commands(&mut out, &spec, &mut drift);
        import_events(&mut out, &spec, &mut drift);
    }
    out.diagnostics.extend(drift);
    out
}

// ---------------------------------------------------------------------------------------------
// Types: import, collisions, renaming

fn rename_collisions(out: &Spec, spec: &mut Spec, position: usize) {
    let mut renames = BTreeMap::new();
    for (name, def) in &spec.types {
        let Some(existing) = out.types.get(name) else { continue };
        if shape(&existing.kind) == shape(&def.kind) {
            continue;
        }
        let mut candidate = format!("{name}@{position}");
        let mut n = 2;
        while out.types.contains_key(&candidate) || spec.types.contains_key(&candidate) {
            candidate = format!("{name}@{position}.{n}");
            n += 1;
        }
        renames.insert(name.clone(), candidate);
    }
    if !renames.is_empty() {
        rewrite(spec, &renames);
    }
}

/// A type's kind without docs and sources, for comparing definitions.
fn shape(kind: &TypeKind) -> TypeKind {
    let strip = |members: &[Member]| -> Vec<Member> {
        members.iter().map(|m| Member { doc: None, source: None, ..m.clone() }).collect()
    };
    match kind {
        TypeKind::Struct { base, members } => {
            TypeKind::Struct { base: base.clone(), members: strip(members) }
        }
        TypeKind::Union { base, members, discriminator, variants } => TypeKind::Union {
            base: base.clone(),
            members: strip(members),
            discriminator: discriminator.clone(),
            variants: variants.clone(),
        },
        other => other.clone(),
    }
}

/// Renames types of `spec` and every reference to them.
fn rewrite(spec: &mut Spec, renames: &BTreeMap<String, String>) {
    let fix = |t: &mut TypeRef| rewrite_ref(t, renames);
    let types = std::mem::take(&mut spec.types);
    for (name, mut def) in types {
        let name = renames.get(&name).cloned().unwrap_or(name);
        def.name = name.clone();
        match &mut def.kind {
            TypeKind::Struct { base, members } | TypeKind::Union { base, members, .. } => {
                if let Some(b) = base.as_mut() {
                    if let Some(new) = renames.get(b) {
                        *b = new.clone();
                    }
                }
                members.iter_mut().for_each(|m| fix(&mut m.ty));
            }
            TypeKind::Alternate { alternatives } => alternatives.iter_mut().for_each(|a| fix(&mut a.ty)),
            TypeKind::Array { element } => fix(element),
            TypeKind::Builtin { .. } | TypeKind::Enum { .. } => {}
        }
        if let TypeKind::Union { variants, .. } = &mut def.kind {
            variants.iter_mut().for_each(|v| fix(&mut v.ty));
        }
        spec.types.insert(name, def);
    }
    for c in spec.commands.values_mut() {
        c.args.iter_mut().chain(c.returns.iter_mut()).for_each(fix);
    }
    for e in spec.events.values_mut() {
        e.data.iter_mut().for_each(fix);
    }
}

fn rewrite_ref(t: &mut TypeRef, renames: &BTreeMap<String, String>) {
    match t {
        TypeRef::Named(n) => {
            if let Some(new) = renames.get(n) {
                *n = new.clone();
            }
        }
        TypeRef::Array(e) => rewrite_ref(e, renames),
        TypeRef::Builtin(_) | TypeRef::Unknown(_) => {}
    }
}

fn import_types(out: &mut Spec, spec: &Spec) {
    for (name, def) in &spec.types {
        match out.types.get_mut(name) {
            Some(existing) => add_sources(&mut existing.sources, &def.sources),
            None => {
                out.types.insert(name.clone(), def.clone());
            }
        }
    }
}

fn add_sources(into: &mut Vec<Source>, from: &[Source]) {
    for s in from {
        if !into.contains(s) {
            into.push(s.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands and events

fn import_commands(out: &mut Spec, spec: &Spec, drift: &mut Vec<Diagnostic>) {
    for (name, lower) in &spec.commands {
        let Some(winner) = out.commands.get(name).cloned() else {
            out.commands.insert(name.clone(), lower.clone());
            continue;
        };
        let mut cmp = Comparison::new(out, spec, drift);
        cmp.compare_command(&winner, lower);
        let fills = cmp.fills;
        apply_fills(out, fills);
        if let Some(w) = out.commands.get_mut(name) {
            add_sources(&mut w.sources, &lower.sources);
            fill_text(&mut w.doc, &lower.doc);
            if w.examples.is_empty() {
                w.examples = lower.examples.clone();
            }
        }
    }
}

fn import_events(out: &mut Spec, spec: &Spec, drift: &mut Vec<Diagnostic>) {
    for (name, lower) in &spec.events {
        let Some(winner) = out.events.get(name).cloned() else {
            out.events.insert(name.clone(), lower.clone());
            continue;
        };
        let mut cmp = Comparison::new(out, spec, drift);
        cmp.compare_event(&winner, lower);
        let fills = cmp.fills;
        apply_fills(out, fills);
        if let Some(w) = out.events.get_mut(name) {
            add_sources(&mut w.sources, &lower.sources);
            fill_text(&mut w.doc, &lower.doc);
            if w.examples.is_empty() {
                w.examples = lower.examples.clone();
            }
        }
    }
}

fn fill_text(into: &mut Option<String>, from: &Option<String>) {
    if into.is_none() {
        into.clone_from(from);
    }
}

/// A member doc (and prose value list) the winner lacks: `(type, member, from)`.
type Fill = (String, String, Member);

fn apply_fills(out: &mut Spec, fills: Vec<Fill>) {
    for (type_name, member_name, from) in fills {
        let Some(def) = out.types.get_mut(&type_name) else { continue };
        let (TypeKind::Struct { members, .. } | TypeKind::Union { members, .. }) = &mut def.kind else {
            continue;
        };
        if let Some(m) = members.iter_mut().find(|m| m.name == member_name) {
            fill_text(&mut m.doc, &from.doc);
            if m.values.is_empty() {
                m.values = from.values;
            }
        }
    }
}

/// Compares one lower item with the winner and collects drift and doc fills.
struct Comparison<'a> {
    higher: &'a Spec,
    lower: &'a Spec,
    drift: &'a mut Vec<Diagnostic>,
    fills: Vec<Fill>,
    /// Members only one side has, paired by name at the end of the item (a member placed at
    /// different depths by the two documents is one "nesting differs" drift, not two).
    unmatched: Vec<Unmatched>,
}

/// A member one side has and the other lacks at the same path.
struct Unmatched {
    what: String,
    path: String,
    leaf: String,
    /// True when the lower model has it (documented but absent from the winner).
    in_lower: bool,
    /// Where the member is read in the model that has it.
    member_at: Source,
    /// Where the diagnostic goes (always in the lower model).
    at: Source,
    message: String,
}

/// One side of a comparison: the model, the item's first source.
#[derive(Clone)]
struct Side<'a> {
    spec: &'a Spec,
    at: Source,
}

impl<'a> Comparison<'a> {
    fn new(higher: &'a Spec, lower: &'a Spec, drift: &'a mut Vec<Diagnostic>) -> Self {
        Comparison { higher, lower, drift, fills: Vec::new(), unmatched: Vec::new() }
    }

    fn sides(&self, high_sources: &[Source], low_sources: &[Source]) -> Option<(Side<'a>, Side<'a>)> {
        let high = Side { spec: self.higher, at: high_sources.first()?.clone() };
        let low = Side { spec: self.lower, at: low_sources.first()?.clone() };
        Some((high, low))
    }

    fn compare_command(&mut self, winner: &Command, lower: &Command) {
        let Some((h, l)) = self.sides(&winner.sources, &lower.sources) else { return };
        let name = winner.name.as_str();
        match (&winner.args, &lower.args) {
            (Some(ht), Some(lt)) => {
                self.members("argument", name, "", (h.clone(), ht), (l.clone(), lt), 0, true)
            }
            (None, Some(lt)) => {
                for m in self.lower.members(lt) {
                    self.absent_from_higher("argument", name, "", m, &h, &l);
                }
            }
            _ => {}
        }
        if let (Some(ht), Some(lt)) = (&winner.returns, &lower.returns) {
            let (hc, lc) = (category(h.spec, ht), category(l.spec, lt));
            if !hc.agrees(&lc) {
                self.push(
                    &l.at,
                    format!("type of the return of '{name}' differs: {lt} ({}) vs {ht} ({})", l.at, h.at),
                );
            } else {
                let (hi, li) = (object_of(h.spec, ht), object_of(l.spec, lt));
                if let (Some(hi), Some(li)) = (hi, li) {
                    self.members("return member", name, "", (h, &hi), (l, &li), 0, false);
                }
            }
        }
        self.pair_unmatched(name);
    }

    fn compare_event(&mut self, winner: &Event, lower: &Event) {
        let Some((h, l)) = self.sides(&winner.sources, &lower.sources) else { return };
        let name = winner.name.as_str();
        match (&winner.data, &lower.data) {
            (Some(ht), Some(lt)) => {
                self.members("data member", name, "", (h.clone(), ht), (l.clone(), lt), 0, true)
            }
            (None, Some(lt)) => {
                for m in self.lower.members(lt) {
                    self.absent_from_higher("data member", name, "", m, &h, &l);
                }
            }
            _ => {}
        }
        self.pair_unmatched(name);
    }

    /// Reports the unmatched members, pairing a lower-only and a winner-only member of the
    /// same name and kind as one nesting drift.
    fn pair_unmatched(&mut self, owner: &str) {
        let entries = std::mem::take(&mut self.unmatched);
        let mut used = vec![false; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            if used.get(i).copied().unwrap_or(true) {
                continue;
            }
            let partner = entries.iter().enumerate().position(|(j, o)| {
                j > i
                    && !used.get(j).copied().unwrap_or(true)
                    && o.what == e.what
                    && o.leaf == e.leaf
                    && o.in_lower != e.in_lower
            });
            let Some(j) = partner else {
                self.push(&e.at, e.message.clone());
                continue;
            };
            used[j] = true;
            let Some(other) = entries.get(j) else { continue };
            let (low, high) = if e.in_lower { (e, other) } else { (other, e) };
            self.push(
                &low.member_at,
                format!(
                    "nesting of {} '{}' of '{owner}' differs: '{}' ({}) vs '{}' ({})",
                    e.what, e.leaf, low.path, low.member_at, high.path, high.member_at
                ),
            );
        }
    }

    /// Compares the members of two object types, descending into nested objects.
    #[allow(clippy::too_many_arguments)]
    fn members(
        &mut self,
        what: &str,
        owner: &str,
        prefix: &str,
        (h, high_ty): (Side<'a>, &TypeRef),
        (l, low_ty): (Side<'a>, &TypeRef),
        depth: usize,
        fill: bool,
    ) {
        if depth > 6 {
            return;
        }
        let high = h.spec.members(high_ty);
        let low = l.spec.members(low_ty);
        for lm in &low {
            match high.iter().find(|hm| hm.name == lm.name) {
                None => self.absent_from_higher(what, owner, prefix, lm, &h, &l),
                Some(hm) => {
                    if fill && depth == 0 && (hm.doc.is_none() || hm.values.is_empty()) {
                        if let TypeRef::Named(t) = high_ty {
                            self.fills.push((t.clone(), hm.name.clone(), (*lm).clone()));
                        }
                    }
                    self.member_pair(what, owner, prefix, (&h, hm), (&l, lm), depth);
                }
            }
        }
        for hm in &high {
            if !low.iter().any(|lm| lm.name == hm.name) {
                let hat = hm.source.as_ref().unwrap_or(&h.at).clone();
                let message = format!(
                    "{what} '{prefix}{}' of '{owner}' missing in {} (present in {hat})",
                    hm.name, l.at.file
                );
                self.unmatched.push(Unmatched {
                    what: what.to_string(),
                    path: format!("{prefix}{}", hm.name),
                    leaf: hm.name.clone(),
                    in_lower: false,
                    member_at: hat,
                    at: l.at.clone(),
                    message,
                });
            }
        }
    }

    fn member_pair(
        &mut self,
        what: &str,
        owner: &str,
        prefix: &str,
        (h, hm): (&Side<'a>, &Member),
        (l, lm): (&Side<'a>, &Member),
        depth: usize,
    ) {
        let hat = hm.source.clone().unwrap_or_else(|| h.at.clone());
        let lat = lm.source.clone().unwrap_or_else(|| l.at.clone());
        let path = format!("{prefix}{}", lm.name);
        let (hc, lc) = (category(h.spec, &hm.ty), category(l.spec, &lm.ty));
        if !hc.agrees(&lc) {
            self.push(
                &lat,
                format!("type of '{owner}'.'{path}' differs: {} ({lat}) vs {} ({hat})", lm.ty, hm.ty),
            );
            return;
        }
        if hm.optional != lm.optional {
            self.push(
                &lat,
                format!(
                    "optional differs for '{owner}'.'{path}': {} ({lat}) vs {} ({hat})",
                    optional_word(lm.optional),
                    optional_word(hm.optional)
                ),
            );
        }
        if let (Some(hi), Some(li)) = (object_of(h.spec, &hm.ty), object_of(l.spec, &lm.ty)) {
            let nested = format!("{path}.");
            let (h2, l2) = (Side { at: hat, spec: h.spec }, Side { at: lat, spec: l.spec });
            self.members(what, owner, &nested, (h2, &hi), (l2, &li), depth + 1, false);
        }
    }

    fn absent_from_higher(
        &mut self,
        what: &str,
        owner: &str,
        prefix: &str,
        lm: &Member,
        h: &Side<'a>,
        l: &Side<'a>,
    ) {
        let lat = lm.source.as_ref().unwrap_or(&l.at).clone();
        let message = format!(
            "{what} '{prefix}{}' of '{owner}' documented in {} but absent from {}",
            lm.name, lat.file, h.at
        );
        self.unmatched.push(Unmatched {
            what: what.to_string(),
            path: format!("{prefix}{}", lm.name),
            leaf: lm.name.clone(),
            in_lower: true,
            member_at: lat.clone(),
            at: lat,
            message,
        });
    }

    fn push(&mut self, at: &Source, message: String) {
        self.drift.push(Diagnostic::new(DiagnosticKind::Drift, at.clone(), message));
    }
}

fn optional_word(optional: bool) -> &'static str {
    if optional {
        "optional"
    } else {
        "required"
    }
}

// ---------------------------------------------------------------------------------------------
// JSON-level type categories

/// What a type looks like on the wire: its JSON type, down through array elements.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wire {
    /// A type that is not an array.
    Json(JsonType),
    /// An array of the element's shape.
    Array(Box<Wire>),
    /// Unresolved or unknown: never reported as drift.
    Unknown,
}

impl Wire {
    fn agrees(&self, other: &Wire) -> bool {
        match (self, other) {
            (Wire::Unknown, _) | (_, Wire::Unknown) => true,
            (Wire::Array(a), Wire::Array(b)) => a.agrees(b),
            (a, b) => a == b,
        }
    }
}

fn category(spec: &Spec, ty: &TypeRef) -> Wire {
    category_at(spec, ty, 0)
}

fn category_at(spec: &Spec, ty: &TypeRef, depth: usize) -> Wire {
    if depth > 16 {
        return Wire::Unknown;
    }
    let element = match (ty, spec.resolve(ty).map(|d| &d.kind)) {
        (TypeRef::Array(e), _) => Some(&**e),
        (_, Some(TypeKind::Array { element })) => Some(element),
        _ => None,
    };
    match element {
        Some(e) => Wire::Array(Box::new(category_at(spec, e, depth + 1))),
        None => spec.json_type(ty).map_or(Wire::Unknown, Wire::Json),
    }
}

/// The object type a (possibly array) type holds, when it names a struct or union.
fn object_of(spec: &Spec, ty: &TypeRef) -> Option<TypeRef> {
    let mut ty = ty.clone();
    let mut seen = BTreeSet::new();
    loop {
        match ty {
            TypeRef::Array(e) => ty = *e,
            TypeRef::Named(ref n) => match spec.types.get(n).map(|d| &d.kind) {
                Some(TypeKind::Array { element }) if seen.insert(n.clone()) => ty = element.clone(),
                Some(TypeKind::Struct { .. } | TypeKind::Union { .. }) => return Some(ty),
                _ => return None,
            },
            _ => return None,
        }
    }
}
