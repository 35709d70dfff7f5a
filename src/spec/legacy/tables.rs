//! Turning a flat table of member items into nested implicit struct types.
//!
//! Seed 004 keeps indentation, so nesting follows it. Seeds 000 and 001 lost it: there an
//! item whose text ends in a cue ("it contains:", "with the following members:", "a
//! json-object containing") opens a nested object for the items after it, and each later
//! item is placed in the deepest open object where the section's examples show a member of
//! that name and the object does not have one yet; with no such evidence it stays where it
//! is. A name already present in the open object also closes it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::body::{Entry, Item};
use super::members::{analyse, parse_value};
use super::text::quoted_strings;
use crate::spec::{Builtin, DiagnosticKind, JsonType, Member, Source, Spec, TypeRef};

/// Member paths an example shows (relative to the table's root object), with the JSON type
/// of each value.
pub(crate) type Evidence = BTreeMap<Vec<String>, JsonType>;

/// One object being filled.
struct Node {
    name: String,
    path: Vec<String>,
    indent: Option<usize>,
    line: u32,
    drafts: Vec<Draft>,
}

/// A member before its nested object (if any) is known.
struct Draft {
    member: Member,
    child: Option<usize>,
    opens: bool,
    holds: bool,
    array: bool,
}

/// Builds the implicit structs for `entries`, the root named `root`; returns a reference to
/// the root, or `None` when the table has no member.
pub(crate) fn build(
    spec: &mut Spec,
    file: &str,
    root: &str,
    entries: &[Entry],
    evidence: &Evidence,
) -> Option<TypeRef> {
    let first_line = entries.iter().find_map(|e| match e {
        Entry::Item(i) => Some(i.line),
        Entry::Intro(_) => None,
    })?;
    let mut builder = Builder {
        spec,
        file,
        evidence,
        nodes: vec![Node {
            name: root.to_string(),
            path: Vec::new(),
            indent: None,
            line: first_line,
            drafts: Vec::new(),
        }],
        stack: vec![0],
        last: None,
        indent_aware: indent_aware(entries),
        merging: false,
    };
    for entry in entries {
        match entry {
            Entry::Item(item) => builder.item(item),
            Entry::Intro(text) => builder.intro(text),
        }
    }
    builder.finish()
}

/// Whether item indentation carries nesting (it varies within the table).
fn indent_aware(entries: &[Entry]) -> bool {
    let mut indents = entries.iter().filter_map(|e| match e {
        Entry::Item(i) => Some(i.indent),
        Entry::Intro(_) => None,
    });
    let first = indents.next();
    indents.any(|i| Some(i) != first)
}

struct Builder<'a> {
    spec: &'a mut Spec,
    file: &'a str,
    evidence: &'a Evidence,
    nodes: Vec<Node>,
    stack: Vec<usize>,
    /// The member placed last: (node, draft index).
    last: Option<(usize, usize)>,
    indent_aware: bool,
    /// Items describe a second variant of an object that already has members.
    merging: bool,
}

impl Builder<'_> {
    fn item(&mut self, item: &Item) {
        let name = item.head.name.as_str();
        if self.indent_aware {
            self.place_by_indent(item.indent);
        } else {
            self.place_by_cues(name);
        }
        // A name the open object already has closes it.
        while !self.merging && self.stack.len() > 1 && self.top().drafts.iter().any(|d| d.member.name == name)
        {
            self.stack.pop();
        }
        let source = Source::new(self.file, item.line);
        if self.merging && self.top().drafts.iter().any(|d| d.member.name == name) {
            return;
        }
        if self.top().drafts.iter().any(|d| d.member.name == name) {
            let message = format!("member '{name}' is documented twice in '{}'", self.top().name);
            self.spec.diag(DiagnosticKind::DocFinding, source, message);
            return;
        }
        let mut draft = self.draft(item, source);
        draft.member.optional |= self.merging;
        let node = self.top_index();
        if let Some(n) = self.nodes.get_mut(node) {
            n.drafts.push(draft);
            self.last = Some((node, n.drafts.len() - 1));
        }
    }

    /// Indented tables: deeper than the open object means inside the member above.
    fn place_by_indent(&mut self, indent: usize) {
        while self.stack.len() > 1 && self.top().indent.is_some_and(|i| indent < i) {
            self.stack.pop();
        }
        if self.top().indent.is_some_and(|i| indent > i) {
            if let Some(child) = self.open_last() {
                self.stack.push(child);
            }
        }
        let top = self.top_index();
        if let Some(n) = self.nodes.get_mut(top) {
            n.indent.get_or_insert(indent);
        }
    }

    /// Flat tables: a cue on the member above opens its object; otherwise the examples say
    /// which open object has a member of this name.
    fn place_by_cues(&mut self, name: &str) {
        let opens = self
            .last
            .and_then(|(n, d)| self.nodes.get(n)?.drafts.get(d))
            .is_some_and(|d| d.opens && d.child.is_none());
        let last_is_open = self.last.is_some_and(|(n, _)| self.stack.last() == Some(&n));
        if opens && last_is_open {
            if let Some(child) = self.open_last() {
                self.stack.push(child);
            }
            return;
        }
        if self.evidence.is_empty() {
            return;
        }
        for depth in (0..self.stack.len()).rev() {
            let Some(node) = self.stack.get(depth).and_then(|&i| self.nodes.get(i)) else { break };
            let mut path = node.path.clone();
            path.push(name.to_string());
            let taken = node.drafts.iter().any(|d| d.member.name == name);
            if self.evidence.contains_key(&path) && !taken {
                self.stack.truncate(depth + 1);
                return;
            }
        }
    }

    /// A sentence introducing an object's members ("Clients are described by a
    /// json-object, ..."): the member whose name the sentence uses most gets them, else the
    /// member above. Describing an object that already has members adds the new ones as
    /// optional (a second variant, as query-pci's memory region).
    fn intro(&mut self, text: &str) {
        self.merging = false;
        let words = significant_words(text);
        let mut best: Option<(usize, u32, (usize, usize))> = None;
        for (n, node) in self.nodes.iter().enumerate() {
            for (d, draft) in node.drafts.iter().enumerate() {
                if !draft.holds {
                    continue;
                }
                let name = draft.member.name.to_ascii_lowercase();
                let name_words: Vec<&str> = name.split(['_', '-']).filter(|w| w.len() > 2).collect();
                let score =
                    words.iter().filter(|w| name_words.iter().any(|nw| nw.starts_with(w.as_str()))).count();
                let line = draft.member.source.as_ref().map_or(0, |s| s.line);
                if score > 0 && best.map_or(true, |(s, l, _)| score > s || (score == s && line >= l)) {
                    best = Some((score, line, (n, d)));
                }
            }
        }
        if let Some((_, _, target)) = best {
            self.last = Some(target);
        }
        let filled = self.last_child_filled();
        if let Some(child) = self.open_last() {
            self.merging = filled;
            self.push_path_to(child);
        }
    }

    fn last_child_filled(&self) -> bool {
        self.last
            .and_then(|(n, d)| self.nodes.get(n)?.drafts.get(d)?.child)
            .and_then(|c| self.nodes.get(c))
            .is_some_and(|c| !c.drafts.is_empty())
    }

    /// Makes the stack the chain of nodes from the root to `node`.
    fn push_path_to(&mut self, node: usize) {
        let mut chain = vec![node];
        let mut current = node;
        while let Some(parent) = self.parent_of(current) {
            if parent == 0 || chain.len() > 64 {
                break;
            }
            chain.push(parent);
            current = parent;
        }
        chain.reverse();
        self.stack = std::iter::once(0).chain(chain).collect();
    }

    fn parent_of(&self, node: usize) -> Option<usize> {
        self.nodes.iter().position(|n| n.drafts.iter().any(|d| d.child == Some(node)))
    }

    /// The child object of the last placed member, created if needed (only for members that
    /// can hold members).
    fn open_last(&mut self) -> Option<usize> {
        let (n, d) = self.last?;
        let (parent_name, parent_path) = {
            let node = self.nodes.get(n)?;
            (node.name.clone(), node.path.clone())
        };
        let draft = self.nodes.get(n)?.drafts.get(d)?;
        if let Some(child) = draft.child {
            return Some(child);
        }
        if !draft.holds {
            return None;
        }
        let member_name = draft.member.name.clone();
        let line = draft.member.source.as_ref().map_or(0, |s| s.line);
        let mut path = parent_path;
        path.push(member_name.clone());
        let child = self.nodes.len();
        self.nodes.push(Node {
            name: format!("{parent_name}.{member_name}"),
            path,
            indent: None,
            line,
            drafts: Vec::new(),
        });
        if let Some(draft) = self.nodes.get_mut(n).and_then(|node| node.drafts.get_mut(d)) {
            draft.child = Some(child);
        }
        Some(child)
    }

    fn draft(&mut self, item: &Item, source: Source) -> Draft {
        let lines = item.text_lines();
        let info = analyse(&lines);
        for finding in &info.findings {
            self.spec.diag(
                DiagnosticKind::DocFinding,
                source.clone(),
                format!("{}: {finding}", item.head.name),
            );
        }
        if !item.head.colon {
            let message = format!("member '{}' lacks the colon after its name", item.head.name);
            self.spec.diag(DiagnosticKind::DocFinding, source.clone(), message);
        }
        let text = lines.join(" ");
        let lower = text.to_ascii_lowercase();
        let mentions_object =
            ["json-object", "json-array", "list of", "dictionary"].iter().any(|w| lower.contains(w));
        let ends_with_cue = ["contains", "containing", "following", "members", "information"]
            .iter()
            .any(|w| lower.trim_end_matches([':', '.', ' ']).ends_with(w));
        let scalar =
            matches!(&info.ty, Some(TypeRef::Builtin(b)) if !matches!(b, Builtin::Object | Builtin::Any));
        let opens = !scalar && mentions_object && (text.trim_end().ends_with(':') || ends_with_cue);
        let array = matches!(info.ty, Some(TypeRef::Array(_)))
            || lower.contains("json-array")
            || lower.contains("list of");
        let ty = match info.ty.clone() {
            Some(t) => t,
            None => self.type_from_example(item, &source),
        };
        let holds = opens
            || matches!(&ty, TypeRef::Builtin(Builtin::Object))
            || matches!(&ty, TypeRef::Array(e) if matches!(**e, TypeRef::Builtin(Builtin::Object | Builtin::Any)));
        let ty = if opens && !matches!(ty, TypeRef::Array(_)) && array { TypeRef::array(ty) } else { ty };
        let mut member = Member::new(item.head.name.clone(), ty, info.optional);
        member.default = info.default.clone();
        member.values = info.values.clone();
        member.source = Some(source.clone());
        let mut doc = text.trim().to_string();
        for sub in &item.subs {
            self.sub_bullet(&mut member, sub, &source);
            doc.push('\n');
            doc.push_str(sub);
        }
        dedup_values(&mut member.values, &item.head.name, &source, self.spec);
        member.doc = (!doc.is_empty()).then_some(doc);
        Draft { member, child: None, opens, holds, array }
    }

    /// Reads a `- Possible values: ...` line into the member.
    fn sub_bullet(&mut self, member: &mut Member, sub: &str, _source: &Source) {
        let lower = sub.to_ascii_lowercase();
        if !lower.starts_with("possible values") {
            return;
        }
        let values = quoted_strings(sub, false);
        member.values.extend(values);
        if let Some(index) = sub.find("(default)") {
            if let Some(v) = quoted_strings(sub.get(..index).unwrap_or_default(), false).last() {
                member.default.get_or_insert_with(|| Value::String(v.clone()));
                member.optional = true;
            }
        }
        if member.ty == TypeRef::Unknown(String::new()) {
            member.ty = TypeRef::Builtin(Builtin::Str);
        }
    }

    /// The type an example shows for a member the prose gives none.
    fn type_from_example(&mut self, item: &Item, source: &Source) -> TypeRef {
        let name = item.head.name.as_str();
        let mut path = self.top().path.clone();
        path.push(name.to_string());
        let kind = self.evidence.get(&path).copied();
        let Some(kind) = kind else {
            if let Some(lost) = item.lost_after {
                let message = format!("no type for member '{name}': line {lost} after it is missing");
                self.spec.diag(DiagnosticKind::Damaged, source.clone(), message);
            } else {
                let message = format!("no type given for member '{name}'");
                self.spec.diag(DiagnosticKind::DocFinding, source.clone(), message);
            }
            return TypeRef::Unknown(String::new());
        };
        let ty = match kind {
            JsonType::Str => TypeRef::Builtin(Builtin::Str),
            JsonType::Int => TypeRef::Builtin(Builtin::Int),
            JsonType::Number => TypeRef::Builtin(Builtin::Number),
            JsonType::Bool => TypeRef::Builtin(Builtin::Bool),
            JsonType::Null | JsonType::Any => TypeRef::Builtin(Builtin::Any),
            JsonType::Object => TypeRef::Builtin(Builtin::Object),
            JsonType::Array => TypeRef::array(TypeRef::Builtin(Builtin::Any)),
        };
        let message = format!("no type given for member '{name}'; took {ty} from the example");
        self.spec.diag(DiagnosticKind::Recovered, source.clone(), message);
        ty
    }

    fn top_index(&self) -> usize {
        self.stack.last().copied().unwrap_or(0)
    }

    fn top(&self) -> &Node {
        let index = self.top_index();
        self.nodes.get(index).unwrap_or(&self.nodes[0])
    }

    /// Creates the structs, innermost first; returns the root reference.
    fn finish(self) -> Option<TypeRef> {
        let Builder { spec, file, nodes, .. } = self;
        let mut refs: Vec<Option<TypeRef>> = vec![None; nodes.len()];
        // Children come after their parents, so walking backwards finds every child's
        // reference made; the nodes are consumed, so members move rather than copy.
        for (index, node) in nodes.into_iter().enumerate().rev() {
            if node.drafts.is_empty() {
                continue;
            }
            let members = node
                .drafts
                .into_iter()
                .map(|d| {
                    let mut member = d.member;
                    if let Some(Some(child)) = d.child.and_then(|c| refs.get(c)).cloned() {
                        member.ty = if d.array { TypeRef::array(child) } else { child };
                    }
                    member
                })
                .collect();
            let reference = spec.add_implicit_struct(node.name, members, Source::new(file, node.line));
            if let Some(slot) = refs.get_mut(index) {
                *slot = Some(reference);
            }
        }
        refs.into_iter().next().flatten()
    }
}

/// Removes repeated values, reporting each repeat as a doc finding.
fn dedup_values(values: &mut Vec<String>, name: &str, source: &Source, spec: &mut Spec) {
    let mut seen: Vec<String> = Vec::new();
    for v in values.drain(..) {
        if seen.contains(&v) {
            spec.diag(
                DiagnosticKind::DocFinding,
                source.clone(),
                format!("{name}: value '{v}' is listed twice"),
            );
        } else {
            seen.push(v);
        }
    }
    *values = seen;
}

/// Lowercase words of an intro sentence that can name a member ("clients", "pci", "device").
fn significant_words(text: &str) -> Vec<String> {
    const STOP: [&str; 16] = [
        "the",
        "a",
        "an",
        "json-object",
        "json-array",
        "contains",
        "contain",
        "following",
        "each",
        "one",
        "is",
        "are",
        "described",
        "by",
        "can",
        "be",
    ];
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_ascii_lowercase)
        .filter(|w| w.len() > 2 && !STOP.contains(&w.as_str()))
        .collect()
}

/// Sets a default on a member of a struct (from a note such as `The "force" argument
/// defaults to false`); returns whether the member was found.
pub(crate) fn set_default(spec: &mut Spec, struct_name: &str, member: &str, value: &str) -> bool {
    let Some(def) = spec.types.get_mut(struct_name) else { return false };
    let crate::spec::TypeKind::Struct { members, .. } = &mut def.kind else { return false };
    let Some(m) = members.iter_mut().find(|m| m.name == member) else { return false };
    if m.default.is_none() {
        m.default = Some(parse_value(value));
    }
    m.optional = true;
    true
}

/// Gives every bool member of a struct without a default the default `false` ("All
/// boolean arguments default to false").
pub(crate) fn default_bools_false(spec: &mut Spec, struct_name: &str) {
    let Some(def) = spec.types.get_mut(struct_name) else { return };
    let crate::spec::TypeKind::Struct { members, .. } = &mut def.kind else { return };
    for m in members.iter_mut().filter(|m| m.ty == TypeRef::Builtin(Builtin::Bool) && m.default.is_none()) {
        m.default = Some(Value::Bool(false));
    }
}
