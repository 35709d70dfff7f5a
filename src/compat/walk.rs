//! The parallel walk of two type graphs behind [`super::diff`].
//!
//! Starting from one command's arguments (input) and return (output), or one event's data
//! (output), the walker follows members (matched by name, renames by K7 evidence), union
//! branches (by discriminator value), alternates (by the JSON type of each alternative),
//! arrays, enums (value sets) and builtins. Type *names* are never compared. The (old type,
//! new type, direction) pairs being compared on the current path stop recursive types (a
//! pair met again below itself is not walked again), and let a type reached both as input
//! and as output get both treatments.
//!
//! **Shared types.** A pair of types reached at several paths of one subject (BlockdevRef
//! under each format driver of `blockdev-create`, two members changing from the same struct
//! to the same enum) is walked at every path, so nothing depends on which path comes first
//! in either side's member order: swapping OLD and NEW reverses every change. Each change
//! found inside such a pair is then reported once per subject, at the pair's occurrence
//! with the shortest path (ties: the smaller path, comparing OLD's and NEW's spellings as an
//! unordered pair, so the choice is the same both ways), and [`Change::also_at`] lists the
//! same change at every other occurrence (at most [`super::ALSO_AT_LIMIT`], the shortest;
//! [`Change::also_at_more`] counts the rest): complete, without one row per copy.
//!
//! **Cost.** Walking a shared pair again at every place is exponential when types fan out
//! through several members at many levels (2^40 paths for 40 levels of two members of one
//! type). So a pair is walked once per context (its (old, new, direction) plus what the
//! place passes down: stability and the nearest known sources), and its changes are kept
//! *relative to the pair*: per change (grouped as above), the occurrence that comes first
//! by NEW's spelling and the one that comes first by OLD's spelling (the shortest-path rule
//! picks one of those two at the subject, whatever the prefix), the shortest few spellings
//! for `also_at`, a saturating count of occurrences, and each occurrence's position in the
//! walk (rows keep the walk's order). Every further place the pair is reached re-roots that
//! result under its path instead of walking again. A result is reused only where the pairs
//! on the current path that the first walk reached are exactly the ones it was stopped at
//! (recursion), so the reuse gives what walking again would. Only cycles make results
//! differ from place to place; past [`REWALKS`] walks again of an already walked pair in
//! one subject (a schema full of cycles), an earlier result is reused as it is: for places
//! reached around a cycle, `also_at`, `also_at_more` (and in contrived cases the place
//! chosen as the shortest) may then be off, and need not be the same both ways (which
//! result came first follows OLD's member order). QEMU's schemas never get there.
//!
//! **Moves between common members and union branches.** A member in OLD's common members
//! that NEW has only in some union branches (or the reverse) is one move, compared with its
//! counterpart in each branch that has it (type and optionality changes are reported there,
//! separately). Its severity, for discriminator `D`, where the values that *lose* the member
//! are NEW's values of `D` whose branch lacks it (values without a branch included):
//!
//! | move | no value loses it | OLD had `D` as an enum | OLD had no `D` (or not an enum) |
//! |---|---|---|---|
//! | output, into branches (K4) | info | breaking if a value OLD produced loses it, else warning | warning |
//! | input, into branches (K3) | info | breaking if a value OLD accepted loses it, else compatible | breaking |
//! | output, out of branches (K4) | info | compatible | compatible |
//! | input, out of branches (K2) | info | compatible | compatible |
//!
//! Output with no `D` in OLD is a warning, not breaking: every object old QEMU sent had the
//! member, and a branch kept it, so the values that lack it describe kinds of objects that
//! arrived with `D` (like a new output enum value, K6: a warning). Readers must check `D`.
//! Input with no `D` in OLD breaks: a call passing the argument must now send the value of
//! `D` whose branch takes it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use crate::spec::{
    is_unstable, Alternative, Builtin, Command, EnumValue, Event, JsonType, Member, Source, Spec, TypeKind,
    TypeRef, Variant,
};

use super::{rename_evidence, rename_key, Change, ChangeKind, Rule, Severity, SubjectKind, ALSO_AT_LIMIT};

/// Which way data flows at a point of the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Dir {
    /// The client sends it (command arguments).
    Input,
    /// The client reads it (returns, event data).
    Output,
}

/// Where the walk is: the path so far, the nearest known sources, direction, stability.
#[derive(Debug, Clone)]
struct At {
    /// The path under NEW's names.
    path: String,
    /// The same path under OLD's names (differs below a rename).
    old_path: String,
    old_src: Option<Source>,
    new_src: Option<Source>,
    dir: Dir,
    /// An unstable item (either side) encloses this point: changes here never gate (K8).
    unstable: bool,
}

impl At {
    /// The point of a member, taking its names, sources and stability from either side.
    fn member(&self, old: Option<&Member>, new: Option<&Member>) -> At {
        let unstable_member = |m: Option<&Member>| m.is_some_and(|m| is_unstable(&m.name, &m.features));
        let old_name = old.or(new).map_or("", |m| m.name.as_str());
        let new_name = new.or(old).map_or("", |m| m.name.as_str());
        At {
            path: format!("{}.{}", self.path, new_name),
            old_path: format!("{}.{}", self.old_path, old_name),
            old_src: old.and_then(|m| m.source.clone()).or_else(|| self.old_src.clone()),
            new_src: new.and_then(|m| m.source.clone()).or_else(|| self.new_src.clone()),
            dir: self.dir,
            unstable: self.unstable || unstable_member(old) || unstable_member(new),
        }
    }

    /// The same point with `suffix` appended to the path (`[]`, `{driver=qcow2}`, `<str>`).
    fn suffix(&self, suffix: &str) -> At {
        At {
            path: format!("{}{}", self.path, suffix),
            old_path: format!("{}{}", self.old_path, suffix),
            ..self.clone()
        }
    }

    /// Whether the item at this point is something the client sends.
    fn is_input(&self) -> bool {
        self.dir == Dir::Input
    }

    /// "argument" or "member", for messages.
    fn role(&self) -> &'static str {
        match self.dir {
            Dir::Input => "argument",
            Dir::Output => "member",
        }
    }
}

/// What a type is, once resolved; names are gone.
enum Shape<'s> {
    Builtin(Builtin),
    Enum(&'s [EnumValue]),
    /// A struct or union; `None` is the empty object of a command without arguments or
    /// return, or an event without data.
    Object(Option<&'s TypeRef>),
    Alternate(&'s [Alternative]),
    Array(&'s TypeRef),
    Unknown(String),
}

/// What alternates are told apart by: a resolved type's JSON type; an alternate (nested in
/// another, which QAPI forbids) and a type that does not resolve stand for themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum JsonKind {
    Json(JsonType),
    Alternate,
    Unknown,
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonKind::Json(t) => t.fmt(f),
            JsonKind::Alternate => f.write_str("alternate"),
            JsonKind::Unknown => f.write_str("unknown"),
        }
    }
}

fn shape<'s>(spec: &'s Spec, ty: Option<&'s TypeRef>) -> Shape<'s> {
    let Some(ty) = ty else { return Shape::Object(None) };
    match ty {
        TypeRef::Builtin(b) => Shape::Builtin(*b),
        TypeRef::Array(e) => Shape::Array(e),
        TypeRef::Unknown(t) => Shape::Unknown(t.clone()),
        TypeRef::Named(n) => match spec.types.get(n).map(|d| &d.kind) {
            None => Shape::Unknown(n.clone()),
            Some(TypeKind::Builtin { builtin }) => Shape::Builtin(*builtin),
            Some(TypeKind::Enum { values }) => Shape::Enum(values),
            Some(TypeKind::Struct { .. } | TypeKind::Union { .. }) => Shape::Object(Some(ty)),
            Some(TypeKind::Alternate { alternatives }) => Shape::Alternate(alternatives),
            Some(TypeKind::Array { element }) => Shape::Array(element),
        },
    }
}

fn json_kind(shape: &Shape<'_>) -> JsonKind {
    match shape {
        Shape::Builtin(b) => JsonKind::Json(b.json_type()),
        Shape::Enum(_) => JsonKind::Json(JsonType::Str),
        Shape::Object(_) => JsonKind::Json(JsonType::Object),
        Shape::Alternate(_) => JsonKind::Alternate,
        Shape::Array(_) => JsonKind::Json(JsonType::Array),
        Shape::Unknown(_) => JsonKind::Unknown,
    }
}

/// A short structural description of a type for messages: `int`, `enum`, `object`,
/// `[str]`, `alternate (str|object)`; never a (masked or invented) type name.
fn describe(spec: &Spec, ty: Option<&TypeRef>, depth: usize) -> String {
    match shape(spec, ty) {
        Shape::Builtin(b) => b.name().to_string(),
        Shape::Enum(_) => "enum".to_string(),
        Shape::Object(_) => "object".to_string(),
        Shape::Array(e) if depth < 8 => format!("[{}]", describe(spec, Some(e), depth + 1)),
        Shape::Array(_) => "[...]".to_string(),
        Shape::Alternate(alts) => {
            let kinds: BTreeSet<String> =
                alts.iter().map(|a| json_kind(&shape(spec, Some(&a.ty))).to_string()).collect();
            format!("alternate ({})", kinds.into_iter().collect::<Vec<_>>().join("|"))
        }
        Shape::Unknown(t) if t.is_empty() => "an undocumented type".to_string(),
        Shape::Unknown(t) => format!("unresolved {t}"),
    }
}

fn has_feature(features: &[String], feature: &str) -> bool {
    features.iter().any(|f| f == feature)
}

/// A command or event, seen the same way by the walker.
struct Subject<'a> {
    name: &'a str,
    kind: SubjectKind,
    features: &'a [String],
    source: Option<Source>,
    unstable: bool,
}

impl<'a> Subject<'a> {
    fn command(c: &'a Command) -> Self {
        Subject {
            name: &c.name,
            kind: SubjectKind::Command,
            features: &c.features,
            source: c.sources.first().cloned(),
            unstable: c.is_unstable(),
        }
    }

    fn event(e: &'a Event) -> Self {
        Subject {
            name: &e.name,
            kind: SubjectKind::Event,
            features: &e.features,
            source: e.sources.first().cloned(),
            unstable: e.is_unstable(),
        }
    }

    fn noun(&self) -> &'static str {
        match self.kind {
            SubjectKind::Command => "command",
            SubjectKind::Event => "event",
        }
    }
}

/// One change before it is stamped with its subject.
struct Found {
    rule: Rule,
    severity: Severity,
    kind: ChangeKind,
    message: String,
}

/// A (old type, new type, direction) pair being compared.
type PairKey = (String, String, Dir);

/// Walks of a pair already walked in the same context in one subject (its earlier results
/// did not fit, because of where the recursion stopped) after which any earlier result is
/// reused (see the module docs, **Cost**). QEMU 7.2 → 10.0 needs none.
const REWALKS: usize = 1_000;

/// Results kept per pair and context, for places where the recursion stops differ.
const ENTRIES_PER_KEY: usize = 4;

/// What makes two occurrences of changes one change: the nearest enclosing pair (interned),
/// the place below it (NEW's and OLD's names) and the content.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    pair: u32,
    below: String,
    old_below: String,
    rule: Rule,
    severity: Severity,
    kind: ChangeKind,
    message: String,
    gates: bool,
}

impl GroupKey {
    /// Whether the change is spelled under OLD's names (removals).
    fn old_spelled(&self) -> bool {
        is_removal(self.kind)
    }
}

fn is_removal(kind: ChangeKind) -> bool {
    matches!(kind, ChangeKind::Removed | ChangeKind::ValueRemoved)
}

/// One occurrence of a change, relative to the root of the pair (or subject) holding it.
#[derive(Clone)]
struct Occurrence {
    /// The path below the root, NEW's names.
    path: String,
    /// The same, OLD's names.
    old_path: String,
    /// Position in the walk below the root (one index per enclosing pair), for row order.
    pos: Vec<u32>,
    old_src: Option<String>,
    new_src: Option<String>,
}

impl Occurrence {
    /// The same occurrence below a root reached at `path`/`old_path` (relative to the new
    /// root) as the `step`th thing found there.
    fn under(&self, path: &str, old_path: &str, step: u32) -> Occurrence {
        let mut pos = Vec::with_capacity(self.pos.len() + 1);
        pos.push(step);
        pos.extend_from_slice(&self.pos);
        Occurrence {
            path: format!("{path}{}", self.path),
            old_path: format!("{old_path}{}", self.old_path),
            pos,
            old_src: self.old_src.clone(),
            new_src: self.new_src.clone(),
        }
    }

    /// NEW's spelling first: shortest, then smallest; then OLD's; then walk order. Adding
    /// the same prefix to two occurrences keeps their order.
    fn new_first(&self) -> (usize, &str, usize, &str, &[u32]) {
        (self.path.len(), &self.path, self.old_path.len(), &self.old_path, &self.pos)
    }

    /// The same with OLD's spelling first.
    fn old_first(&self) -> (usize, &str, usize, &str, &[u32]) {
        (self.old_path.len(), &self.old_path, self.path.len(), &self.path, &self.pos)
    }
}

/// Every occurrence of one change below a root, summed up so that re-rooting it costs the
/// same whatever the number of occurrences.
#[derive(Clone)]
struct Group {
    /// The first occurrence by [`Occurrence::new_first`].
    by_new: Occurrence,
    /// The first occurrence by [`Occurrence::old_first`].
    by_old: Occurrence,
    /// The shortest spellings (then smallest; NEW's names, OLD's for removals), at most
    /// `ALSO_AT_LIMIT + 1`, duplicates kept: all of them when `count` is no larger.
    listed: Vec<String>,
    /// How many occurrences (saturating).
    count: u64,
}

impl Group {
    fn merge(&mut self, other: Group) {
        if other.by_new.new_first() < self.by_new.new_first() {
            self.by_new = other.by_new;
        }
        if other.by_old.old_first() < self.by_old.old_first() {
            self.by_old = other.by_old;
        }
        self.listed.extend(other.listed);
        self.listed.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        self.listed.truncate(ALSO_AT_LIMIT + 1);
        self.count = self.count.saturating_add(other.count);
    }
}

/// A pair being compared (or the subject itself, at the bottom), and what was found below it.
struct Frame {
    /// The pair (`u32::MAX` for the subject).
    id: u32,
    /// Where it is (NEW's names, OLD's names).
    path: String,
    old_path: String,
    /// Things found so far directly below (changes and pairs), for walk positions.
    steps: u32,
    groups: BTreeMap<GroupKey, Group>,
    /// Every pair reached below, including those the recursion stopped at.
    reached: HashSet<u32>,
    /// The pairs above this one that the recursion stopped at below it.
    cuts: BTreeSet<u32>,
}

impl Frame {
    fn new(id: u32, path: &str, old_path: &str) -> Frame {
        Frame {
            id,
            path: path.to_string(),
            old_path: old_path.to_string(),
            steps: 0,
            groups: BTreeMap::new(),
            reached: HashSet::new(),
            cuts: BTreeSet::new(),
        }
    }

    fn step(&mut self) -> u32 {
        let step = self.steps;
        self.steps = self.steps.saturating_add(1);
        step
    }

    fn add(&mut self, key: GroupKey, group: Group) {
        match self.groups.get_mut(&key) {
            Some(g) => g.merge(group),
            None => {
                self.groups.insert(key, group);
            }
        }
    }
}

/// What a pair's walk found, relative to the pair, with what it depends on.
struct Entry {
    groups: Vec<(GroupKey, Group)>,
    reached: HashSet<u32>,
    cuts: BTreeSet<u32>,
}

/// A pair in a context: what a result is reused for.
#[derive(Clone, PartialEq, Eq, Hash)]
struct MemoKey {
    pair: u32,
    unstable: bool,
    old_src: Option<String>,
    new_src: Option<String>,
}

/// The walker: holds both models and collects changes, one subject at a time.
pub(crate) struct Walker<'a> {
    old: &'a Spec,
    new: &'a Spec,
    /// Treat every integer width as `int` (one side is introspection or legacy prose).
    collapse_ints: bool,
    changes: Vec<Change>,
    /// Pair ids.
    pairs: HashMap<PairKey, u32>,
    /// The pairs on the current path (stops recursion).
    visited: HashSet<u32>,
    /// The same pairs, innermost last, with what was found below them.
    frames: Vec<Frame>,
    /// The subject: the pairs' results at their full paths.
    root: Frame,
    /// Changes of the subject outside any pair, with their walk positions.
    loose: Vec<(Vec<u32>, Change)>,
    /// Results of pairs walked in this subject.
    memo: HashMap<MemoKey, Vec<Rc<Entry>>>,
    /// Pairs walked again in this subject (see [`REWALKS`]).
    rewalks: usize,
    subject: String,
    subject_kind: SubjectKind,
}

impl<'a> Walker<'a> {
    /// A walker over OLD and NEW.
    pub(crate) fn new(old: &'a Spec, new: &'a Spec, collapse_ints: bool) -> Self {
        Walker {
            old,
            new,
            collapse_ints,
            changes: Vec::new(),
            pairs: HashMap::new(),
            visited: HashSet::new(),
            frames: Vec::new(),
            root: Frame::new(u32::MAX, "", ""),
            loose: Vec::new(),
            memo: HashMap::new(),
            rewalks: 0,
            subject: String::new(),
            subject_kind: SubjectKind::Command,
        }
    }

    /// The changes found so far.
    pub(crate) fn into_changes(mut self) -> Vec<Change> {
        self.flush();
        self.changes
    }

    /// Compares one command pair (either side may be missing).
    pub(crate) fn command(&mut self, old: Option<&'a Command>, new: Option<&'a Command>) {
        let (os, ns) = (old.map(Subject::command), new.map(Subject::command));
        if !self.subject_level(os.as_ref(), ns.as_ref()) {
            return;
        }
        let (Some(o), Some(n), Some(os)) = (old, new, os.as_ref()) else { return };
        let ns = Subject::command(n);
        let rename_at = self.changes.len();
        let at = self.subject_at(os, &ns, Dir::Input);
        self.compare(o.args.as_ref(), n.args.as_ref(), &at.suffix(".arguments"));
        let at = self.subject_at(os, &ns, Dir::Output);
        self.compare(o.returns.as_ref(), n.returns.as_ref(), &at.suffix(".return"));
        self.flush();
        self.finish_rename(os, &ns, rename_at);
    }

    /// Compares one event pair (either side may be missing).
    pub(crate) fn event(&mut self, old: Option<&'a Event>, new: Option<&'a Event>) {
        let (os, ns) = (old.map(Subject::event), new.map(Subject::event));
        if !self.subject_level(os.as_ref(), ns.as_ref()) {
            return;
        }
        let (Some(o), Some(n), Some(os)) = (old, new, os.as_ref()) else { return };
        let ns = Subject::event(n);
        let rename_at = self.changes.len();
        let at = self.subject_at(os, &ns, Dir::Output);
        self.compare(o.data.as_ref(), n.data.as_ref(), &at.suffix(".data"));
        self.flush();
        self.finish_rename(os, &ns, rename_at);
    }

    /// Reports what happened to the subject itself (K1 added/removed, K7 rename, K8
    /// features). Returns true when both sides exist and their insides must be compared.
    fn subject_level(&mut self, old: Option<&Subject<'_>>, new: Option<&Subject<'_>>) -> bool {
        self.flush();
        self.visited.clear();
        self.frames.clear();
        self.memo.clear();
        self.rewalks = 0;
        let inside = self.subject_itself(old, new);
        // Rows about the subject itself come first; `finish_rename` counts the rest.
        self.flush();
        inside
    }

    fn subject_itself(&mut self, old: Option<&Subject<'_>>, new: Option<&Subject<'_>>) -> bool {
        let (o, n) = match (old, new) {
            (Some(o), Some(n)) => (o, n),
            (Some(o), None) => {
                self.begin(o.name, o.kind);
                self.subject_removed(o);
                return false;
            }
            (None, Some(n)) => {
                self.begin(n.name, n.kind);
                let at = self.bare_at(n.name, None, n.source.clone(), n.unstable);
                let message = format!(
                    "new {} `{}`{}: nothing to change; available to use",
                    n.noun(),
                    n.name,
                    if n.unstable { " (unstable: no compatibility promise)" } else { "" }
                );
                self.push(
                    &at,
                    Found {
                        rule: Rule::K1,
                        severity: Severity::Compatible,
                        kind: ChangeKind::Added,
                        message,
                    },
                );
                return false;
            }
            (None, None) => return false,
        };
        self.begin(n.name, n.kind);
        if o.name != n.name {
            // Placeholder: finish_rename fills in the evidence once the insides are compared.
            let at = At {
                old_path: o.name.to_string(),
                ..self.bare_at(n.name, o.source.clone(), n.source.clone(), o.unstable)
            };
            self.push(
                &at,
                Found {
                    rule: Rule::K7,
                    severity: Severity::Breaking,
                    kind: ChangeKind::Renamed,
                    message: String::new(),
                },
            );
        }
        let at = At {
            old_path: o.name.to_string(),
            ..self.bare_at(n.name, o.source.clone(), n.source.clone(), o.unstable)
        };
        self.features(o.features, n.features, &format!("{} `{}`", n.noun(), n.name), &at);
        true
    }

    fn subject_removed(&mut self, o: &Subject<'_>) {
        let at = self.bare_at(o.name, o.source.clone(), None, o.unstable);
        let consequence = match o.kind {
            SubjectKind::Command => "calls now fail with CommandNotFound; stop using it",
            SubjectKind::Event => "it is never emitted any more; stop waiting for it",
        };
        let mut message = format!("{} `{}` was removed: {consequence}", o.noun(), o.name);
        if has_feature(o.features, "deprecated") {
            message.push_str(" (it was deprecated)");
        }
        if o.unstable {
            message.push_str(" (it was unstable: no promise, does not gate)");
        }
        self.push(
            &at,
            Found { rule: Rule::K1, severity: Severity::Breaking, kind: ChangeKind::Removed, message },
        );
    }

    /// Writes the message of a subject rename, now that the changes inside are known.
    fn finish_rename(&mut self, o: &Subject<'_>, n: &Subject<'_>, first: usize) {
        if o.name == n.name {
            return;
        }
        let inside = self.changes.len().saturating_sub(first);
        let detail = if inside == 0 {
            format!("{}; {} otherwise unchanged", rename_evidence(o.name, n.name), self.parts(n.kind))
        } else {
            format!(
                "{}; {} further change(s) listed under the new name",
                rename_evidence(o.name, n.name),
                inside
            )
        };
        let action = match n.kind {
            SubjectKind::Command => "calls to the old name fail with CommandNotFound; switch to the new name",
            SubjectKind::Event => "the old name is never emitted; listen for the new name",
        };
        let warning = if n.unstable && !o.unstable {
            ", which is unstable and carries no compatibility promise (K8)"
        } else {
            ""
        };
        let message =
            format!("{} `{}` was renamed to `{}` ({detail}): {action}{warning}", n.noun(), o.name, n.name);
        let rename =
            self.changes.iter_mut().rev().find(|c| c.kind == ChangeKind::Renamed && c.path == n.name);
        if let Some(change) = rename {
            change.message = message;
        }
    }

    fn parts(&self, kind: SubjectKind) -> &'static str {
        match kind {
            SubjectKind::Command => "arguments and return",
            SubjectKind::Event => "data",
        }
    }

    fn begin(&mut self, name: &str, kind: SubjectKind) {
        self.subject = name.to_string();
        self.subject_kind = kind;
    }

    fn bare_at(&self, path: &str, old_src: Option<Source>, new_src: Option<Source>, unstable: bool) -> At {
        At {
            path: path.to_string(),
            old_path: path.to_string(),
            old_src,
            new_src,
            dir: Dir::Output,
            unstable,
        }
    }

    fn subject_at(&self, o: &Subject<'_>, n: &Subject<'_>, dir: Dir) -> At {
        At {
            path: n.name.to_string(),
            old_path: o.name.to_string(),
            old_src: o.source.clone(),
            new_src: n.source.clone(),
            dir,
            unstable: o.unstable || n.unstable,
        }
    }

    fn push(&mut self, at: &At, found: Found) {
        self.push_gated(at, found, !at.unstable);
    }

    fn push_gated(&mut self, at: &At, found: Found, gates: bool) {
        let old_src = at.old_src.as_ref().map(|s| s.to_string());
        let new_src = at.new_src.as_ref().map(|s| s.to_string());
        let Some(frame) = self.frames.last_mut() else {
            // Outside any pair (the subject itself, or an unnamed type at its top): one row.
            let pos = vec![self.root.step()];
            let change = Change {
                rule: found.rule,
                severity: found.severity,
                path: String::new(),
                old_path: None,
                old: old_src,
                new: new_src,
                message: found.message,
                kind: found.kind,
                subject: self.subject.clone(),
                subject_kind: self.subject_kind,
                gates,
                also_at: Vec::new(),
                also_at_more: 0,
            };
            let change = with_paths(change, &at.path, &at.old_path);
            self.loose.push((pos, change));
            return;
        };
        // Every point below a pair extends the pair's paths (members, suffixes, branches).
        let below = at.path.strip_prefix(frame.path.as_str()).unwrap_or_default().to_string();
        let old_below = at.old_path.strip_prefix(frame.old_path.as_str()).unwrap_or_default().to_string();
        let key = GroupKey {
            pair: frame.id,
            below: below.clone(),
            old_below: old_below.clone(),
            rule: found.rule,
            severity: found.severity,
            kind: found.kind,
            message: found.message,
            gates,
        };
        let spelled = if key.old_spelled() { old_below.clone() } else { below.clone() };
        let occurrence =
            Occurrence { path: below, old_path: old_below, pos: vec![frame.step()], old_src, new_src };
        let group = Group { by_new: occurrence.clone(), by_old: occurrence, listed: vec![spelled], count: 1 };
        frame.add(key, group);
    }

    /// Re-roots a pair's result (walked here or earlier) at `at`, below the current pair
    /// (or the subject).
    fn emit(&mut self, id: u32, entry: &Entry, at: &At) {
        let parent = self.frames.last_mut().unwrap_or(&mut self.root);
        let prefix = at.path.strip_prefix(parent.path.as_str()).unwrap_or_default().to_string();
        let old_prefix = at.old_path.strip_prefix(parent.old_path.as_str()).unwrap_or_default().to_string();
        let step = parent.step();
        for (key, g) in &entry.groups {
            let spelled_prefix = if key.old_spelled() { &old_prefix } else { &prefix };
            let group = Group {
                by_new: g.by_new.under(&prefix, &old_prefix, step),
                by_old: g.by_old.under(&prefix, &old_prefix, step),
                listed: g.listed.iter().map(|p| format!("{spelled_prefix}{p}")).collect(),
                count: g.count,
            };
            parent.add(key.clone(), group);
        }
        parent.reached.extend(entry.reached.iter().copied());
        parent.reached.insert(id);
        let parent_id = parent.id;
        parent.cuts.extend(entry.cuts.iter().copied().filter(|&c| c != parent_id));
    }

    /// Turns what the subject's walk found into rows, in walk order: one row per change,
    /// at the occurrence with the smallest [`occurrence_rank`] (its pair's path), listing
    /// the others (at most [`ALSO_AT_LIMIT`], counting the rest).
    fn flush(&mut self) {
        let groups = std::mem::take(&mut self.root.groups);
        let mut rows = std::mem::take(&mut self.loose);
        self.root = Frame::new(u32::MAX, "", "");
        for (key, g) in groups {
            let rank = |o: &Occurrence| {
                let pair = o.path.strip_suffix(key.below.as_str()).unwrap_or(&o.path);
                let old_pair = o.old_path.strip_suffix(key.old_below.as_str()).unwrap_or(&o.old_path);
                (occurrence_rank(pair, old_pair), o.pos.clone())
            };
            let kept = if rank(&g.by_old) < rank(&g.by_new) { &g.by_old } else { &g.by_new };
            let spelled = if key.old_spelled() { &kept.old_path } else { &kept.path };
            let mut also_at: Vec<String> = Vec::new();
            for p in &g.listed {
                if p != spelled && !also_at.contains(p) && also_at.len() < ALSO_AT_LIMIT {
                    also_at.push(p.clone());
                }
            }
            let also_at_more = if usize::try_from(g.count).ok() == Some(g.listed.len()) {
                0
            } else {
                let shown = u64::try_from(also_at.len()).unwrap_or(u64::MAX);
                usize::try_from(g.count.saturating_sub(1).saturating_sub(shown)).unwrap_or(usize::MAX)
            };
            also_at.sort();
            let change = Change {
                rule: key.rule,
                severity: key.severity,
                path: String::new(),
                old_path: None,
                old: kept.old_src.clone(),
                new: kept.new_src.clone(),
                message: key.message.clone(),
                kind: key.kind,
                subject: self.subject.clone(),
                subject_kind: self.subject_kind,
                gates: key.gates,
                also_at,
                also_at_more,
            };
            rows.push((kept.pos.clone(), with_paths(change, &kept.path, &kept.old_path)));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        self.changes.extend(rows.into_iter().map(|(_, c)| c));
    }

    /// The interned id of a pair.
    fn pair_id(&mut self, old: &str, new: &str, dir: Dir) -> u32 {
        let next = u32::try_from(self.pairs.len()).unwrap_or(u32::MAX - 1);
        *self.pairs.entry((old.to_string(), new.to_string(), dir)).or_insert(next)
    }

    /// An earlier result of the pair in this context that walking again here would give:
    /// the pairs on the current path it reached are exactly those it stopped at. Past
    /// [`REWALKS`], any earlier result; otherwise, with earlier results, counts a walk again.
    fn reusable(&mut self, key: &MemoKey) -> Option<Rc<Entry>> {
        let entries = self.memo.get(key)?;
        let fits = |e: &Entry| {
            e.cuts.iter().all(|c| self.visited.contains(c))
                && self.frames.iter().all(|f| !e.reached.contains(&f.id) || e.cuts.contains(&f.id))
        };
        let found = match entries.iter().find(|e| fits(e)) {
            Some(e) => Some(Rc::clone(e)),
            None if self.rewalks >= REWALKS => entries.first().cloned(),
            None => None,
        };
        if found.is_none() {
            self.rewalks = self.rewalks.saturating_add(1);
        }
        found
    }

    /// K8: `deprecated` and `unstable` appearing or going away on `what`.
    /// A newly deprecated or newly unstable item gates (the promise changed); the rest is info.
    fn features(&mut self, old: &[String], new: &[String], what: &str, at: &At) {
        let changes = [
            ("deprecated", ChangeKind::Deprecated, ChangeKind::Undeprecated),
            ("unstable", ChangeKind::NowUnstable, ChangeKind::NowStable),
        ];
        for (feature, gained, lost) in changes {
            let (had, has) = (has_feature(old, feature), has_feature(new, feature));
            if had == has {
                continue;
            }
            let found = match (feature, has) {
                ("deprecated", true) => Found {
                    rule: Rule::K8,
                    severity: Severity::Warning,
                    kind: gained,
                    message: format!("{what} is now deprecated: removal is coming; stop using it"),
                },
                ("deprecated", false) => Found {
                    rule: Rule::K8,
                    severity: Severity::Info,
                    kind: lost,
                    message: format!("{what} is no longer deprecated"),
                },
                (_, true) => Found {
                    rule: Rule::K8,
                    severity: Severity::Warning,
                    kind: gained,
                    message: format!("{what} is now unstable: it carries no compatibility promise any more"),
                },
                _ => Found {
                    rule: Rule::K8,
                    severity: Severity::Info,
                    kind: lost,
                    message: format!("{what} is now stable: it carries a compatibility promise"),
                },
            };
            self.push(at, found);
        }
    }

    /// Compares what OLD and NEW have at one point of the walk. A pair of named types is
    /// walked once per context and its result re-rooted wherever it is reached again (see
    /// the module docs, **Cost**); a pair already being compared further up stops there.
    fn compare(&mut self, old_ty: Option<&'a TypeRef>, new_ty: Option<&'a TypeRef>, at: &At) {
        let (Some(TypeRef::Named(o)), Some(TypeRef::Named(n))) = (old_ty, new_ty) else {
            self.compare_shapes(old_ty, new_ty, at);
            return;
        };
        let id = self.pair_id(o, n, at.dir);
        if self.visited.contains(&id) {
            if let Some(frame) = self.frames.last_mut() {
                frame.reached.insert(id);
                if frame.id != id {
                    frame.cuts.insert(id);
                }
            }
            return;
        }
        let key = MemoKey {
            pair: id,
            unstable: at.unstable,
            old_src: at.old_src.as_ref().map(|s| s.to_string()),
            new_src: at.new_src.as_ref().map(|s| s.to_string()),
        };
        if let Some(entry) = self.reusable(&key) {
            self.emit(id, &entry, at);
            return;
        }
        self.visited.insert(id);
        self.frames.push(Frame::new(id, &at.path, &at.old_path));
        self.compare_shapes(old_ty, new_ty, at);
        self.visited.remove(&id);
        let Some(frame) = self.frames.pop() else { return };
        let entry = Rc::new(Entry {
            groups: frame.groups.into_iter().collect(),
            reached: frame.reached,
            cuts: frame.cuts,
        });
        let entries = self.memo.entry(key).or_default();
        if entries.len() < ENTRIES_PER_KEY {
            entries.push(Rc::clone(&entry));
        }
        self.emit(id, &entry, at);
    }

    fn compare_shapes(&mut self, old_ty: Option<&'a TypeRef>, new_ty: Option<&'a TypeRef>, at: &At) {
        let (os, ns) = (shape(self.old, old_ty), shape(self.new, new_ty));
        match (os, ns) {
            (Shape::Object(o), Shape::Object(n)) => self.compare_objects(o, n, at),
            (Shape::Enum(o), Shape::Enum(n)) => self.compare_enums(o, n, at),
            (Shape::Array(o), Shape::Array(n)) => self.compare(Some(o), Some(n), &at.suffix("[]")),
            (Shape::Alternate(o), Shape::Alternate(n)) => self.compare_alternates(o, n, at),
            (Shape::Builtin(o), Shape::Builtin(n)) => self.compare_builtins(o, n, at),
            (Shape::Unknown(o), Shape::Unknown(n)) if o == n => {}
            (o @ Shape::Unknown(_), n) | (o, n @ Shape::Unknown(_)) => {
                let message = format!(
                    "cannot compare {} with {}: a type is unresolved; check this {} by hand",
                    describe_shape(self.old, &o, old_ty),
                    describe_shape(self.new, &n, new_ty),
                    at.role()
                );
                self.push(at, info(Rule::K5, ChangeKind::TypeChanged, message));
            }
            (Shape::Alternate(alts), single) => self.alternate_to_single(alts, single, new_ty, at),
            (single, Shape::Alternate(alts)) => self.single_to_alternate(single, old_ty, alts, at),
            (Shape::Builtin(Builtin::Object), Shape::Object(_)) => {
                let message = format!("the {}'s members are now documented", at.role());
                self.push(at, info(Rule::K5, ChangeKind::TypeChanged, message));
            }
            (Shape::Object(_), Shape::Builtin(Builtin::Object)) => {
                let message = format!("the {}'s members are no longer documented", at.role());
                self.push(at, info(Rule::K5, ChangeKind::TypeChanged, message));
            }
            (o, n) => self.type_change(o, old_ty, n, new_ty, at),
        }
    }

    /// A change between shapes that are not both builtins, enums, objects, arrays or
    /// alternates: str ↔ enum and `any` can be compatible one way; the rest breaks.
    fn type_change(
        &mut self,
        o: Shape<'_>,
        old_ty: Option<&TypeRef>,
        n: Shape<'_>,
        new_ty: Option<&TypeRef>,
        at: &At,
    ) {
        let (from, to) = (describe(self.old, old_ty, 0), describe(self.new, new_ty, 0));
        let widens = match (&o, &n) {
            (Shape::Enum(_), Shape::Builtin(Builtin::Str)) => Some(true),
            (Shape::Builtin(Builtin::Str), Shape::Enum(_)) => Some(false),
            (_, Shape::Builtin(Builtin::Any)) => Some(true),
            (Shape::Builtin(Builtin::Any), _) => Some(false),
            _ => None,
        };
        let found = match widens {
            Some(widens) => self.widening(widens, &from, &to, at),
            None => breaking(
                Rule::K5,
                ChangeKind::TypeChanged,
                format!(
                    "{} type changed from {from} to {to}: {}",
                    at.role(),
                    if at.is_input() { format!("send {to} values") } else { format!("expect {to} values") }
                ),
            ),
        };
        self.push(at, found);
    }

    /// A type change that widens the set of values (`widens`) or narrows it: widening is
    /// compatible on input and breaking on output, narrowing the reverse (K5).
    fn widening(&self, widens: bool, from: &str, to: &str, at: &At) -> Found {
        let compatible = widens == at.is_input();
        let message = match (at.is_input(), widens) {
            (true, true) => {
                format!("argument type changed from {from} to {to}, which accepts every old value")
            }
            (true, false) => {
                format!("argument type narrowed from {from} to {to}: some old values are now rejected")
            }
            (false, true) => {
                format!("member type changed from {from} to {to}: readers may get values they never saw")
            }
            (false, false) => {
                format!("member type narrowed from {from} to {to}: only old values are produced")
            }
        };
        if compatible {
            Found { rule: Rule::K5, severity: Severity::Compatible, kind: ChangeKind::TypeChanged, message }
        } else {
            breaking(Rule::K5, ChangeKind::TypeChanged, message)
        }
    }

    fn compare_builtins(&mut self, o: Builtin, n: Builtin, at: &At) {
        if o == n {
            return;
        }
        let found = match (o.int_range(), n.int_range(), o.json_type(), n.json_type()) {
            (Some(_), Some(_), _, _) if self.collapse_ints => return,
            (Some((olo, ohi)), Some((nlo, nhi)), _, _) => {
                let (from, to) = (o.name(), n.name());
                if nlo <= olo && nhi >= ohi {
                    self.widening(true, from, to, at)
                } else if olo <= nlo && ohi >= nhi {
                    self.widening(false, from, to, at)
                } else {
                    let message =
                        format!("integer range changed from {from} to {to}: values may fall outside it");
                    breaking(Rule::K5, ChangeKind::TypeChanged, message)
                }
            }
            // QEMU's `number` accepts integers on input.
            (_, _, JsonType::Int, JsonType::Number) => self.widening(true, o.name(), n.name(), at),
            (_, _, JsonType::Number, JsonType::Int) => self.widening(false, o.name(), n.name(), at),
            (_, _, _, JsonType::Any) => self.widening(true, o.name(), n.name(), at),
            (_, _, JsonType::Any, _) => self.widening(false, o.name(), n.name(), at),
            _ => {
                let verb = if at.is_input() { "send" } else { "expect" };
                let message = format!(
                    "{} type changed from {} to {}: {verb} {} values",
                    at.role(),
                    o.name(),
                    n.name(),
                    n.name()
                );
                breaking(Rule::K5, ChangeKind::TypeChanged, message)
            }
        };
        self.push(at, found);
    }

    fn compare_objects(&mut self, old: Option<&'a TypeRef>, new: Option<&'a TypeRef>, at: &At) {
        let om: Vec<&'a Member> = old.map(|t| self.old.members(t)).unwrap_or_default();
        let nm: Vec<&'a Member> = new.map(|t| self.new.members(t)).unwrap_or_default();
        let ov: &'a [Variant] = old.map(|t| self.old.variants(t)).unwrap_or(&[]);
        let nv: &'a [Variant] = new.map(|t| self.new.variants(t)).unwrap_or(&[]);
        let old_side = Union::of(self.old, old, &om, ov);
        let new_side = Union::of(self.new, new, &nm, nv);
        // Common members of one side found in the other side's branches moved there.
        let moved_in: Vec<&'a Member> =
            om.iter().copied().filter(|o| !has(&nm, &o.name) && new_side.has(&o.name)).collect();
        let moved_out: Vec<&'a Member> =
            nm.iter().copied().filter(|n| !has(&om, &n.name) && old_side.has(&n.name)).collect();
        let om_rest: Vec<&'a Member> = om.iter().copied().filter(|o| !has(&moved_in, &o.name)).collect();
        let nm_rest: Vec<&'a Member> = nm.iter().copied().filter(|n| !has(&moved_out, &n.name)).collect();
        self.compare_members(&om_rest, &nm_rest, at);
        if ov.is_empty() && nv.is_empty() {
            return;
        }
        for o in &moved_in {
            self.moved_into_branches(o, &om, &nm, &new_side, at);
        }
        for n in &moved_out {
            self.moved_out_of_branches(n, &old_side, at);
        }
        let discriminator =
            discriminator(self.new, new).or_else(|| discriminator(self.old, old)).unwrap_or_default();
        let old_values = branch_values(self.old, old, &om);
        let new_values = branch_values(self.new, new, &nm);
        // Moved members were compared above, with their counterpart in each branch.
        let old_branch = |ty: &'a TypeRef| -> Vec<&'a Member> {
            self.old.members(ty).into_iter().filter(|m| !has(&moved_out, &m.name)).collect()
        };
        let new_branch = |ty: &'a TypeRef| -> Vec<&'a Member> {
            self.new.members(ty).into_iter().filter(|m| !has(&moved_in, &m.name)).collect()
        };
        let mut values: Vec<&str> = ov.iter().map(|v| v.value.as_str()).collect();
        values.extend(nv.iter().map(|v| v.value.as_str()).filter(|v| !ov.iter().any(|o| o.value == *v)));
        for value in values {
            let (o, n) = (ov.iter().find(|v| v.value == value), nv.iter().find(|v| v.value == value));
            let here = at.suffix(&format!("{{{discriminator}={value}}}"));
            match (o, n) {
                (Some(o), Some(n)) if moved_in.is_empty() && moved_out.is_empty() => {
                    self.compare(Some(&o.ty), Some(&n.ty), &here)
                }
                (Some(o), Some(n)) => {
                    let (obm, nbm) = (old_branch(&o.ty), new_branch(&n.ty));
                    self.compare_members(&obm, &nbm, &here);
                }
                // A branch whose discriminator value exists only on one side is covered by
                // the K6 change of the discriminator; otherwise its members came or went.
                (Some(o), None) if accepts(&new_values, value) => {
                    let members = old_branch(&o.ty);
                    self.compare_members(&members, &[], &here);
                }
                (None, Some(n)) if accepts(&old_values, value) => {
                    let members = new_branch(&n.ty);
                    self.compare_members(&[], &members, &here);
                }
                _ => {}
            }
        }
    }

    /// OLD's common member `o` is, in NEW, only in some union branches: one move change at
    /// the first branch that has it, then `o` compared with each branch's member.
    fn moved_into_branches(
        &mut self,
        o: &'a Member,
        om: &[&'a Member],
        nm: &[&'a Member],
        new_side: &Union<'a>,
        at: &At,
    ) {
        let d = new_side.discriminator.as_str();
        let keep = new_side.with(&o.name);
        let Some(&(first, first_member)) = keep.first() else { return };
        let kept: Vec<&str> = keep.iter().map(|(v, _)| *v).collect();
        let lose: Vec<&str> =
            new_side.values.iter().map(String::as_str).filter(|v| !kept.contains(v)).collect();
        // What OLD could produce or accept for `d`: known only when it had `d` as an enum.
        let old_d = om.iter().find(|m| m.name == d);
        let old_values = old_d.and_then(|m| enum_values(self.old, &m.ty));
        let lost_old: Vec<&str> = match &old_values {
            Some(vs) => lose.iter().copied().filter(|l| vs.iter().any(|v| v == l)).collect(),
            None => Vec::new(),
        };
        let ty = describe(self.old, Some(&o.ty), 0);
        let (name, role) = (&o.name, at.role());
        let (common, verb_in, verb_out) = if at.is_input() {
            ("arguments", "accepted", "rejected (\"Parameter '{m}' is unexpected\")")
        } else {
            ("members", "still sent", "absent")
        };
        let verb_out = verb_out.replace("{m}", name);
        let found = if lose.is_empty() && !(at.is_input() && nm.iter().any(|m| m.name == d && m.optional)) {
            Found {
                rule: if at.is_input() { Rule::K3 } else { Rule::K4 },
                severity: Severity::Info,
                kind: ChangeKind::MovedIntoBranch,
                message: format!(
                    "{role} `{name}` ({ty}) moved from the common {common} into every branch of `{d}`: \
                     {verb_in} whatever `{d}` is; nothing to change"
                ),
            }
        } else {
            let mut core = format!(
                "{role} `{name}` ({ty}) moved from the common {common} into {}: {verb_in} when `{d}` is {}",
                branch_list(d, &kept),
                value_list(&kept, " or ")
            );
            if !lose.is_empty() {
                core.push_str(&format!(", {verb_out} when it is {}", value_list(&lose, " or ")));
            }
            let check = format!("readers must check `{d}` before relying on it");
            let with = format!("`{d}` set to {}", value_list(&kept, " or "));
            let no_d = if old_d.is_some() { format!("no enum `{d}`") } else { format!("no `{d}`") };
            let lost = value_list(&lost_old, " and ");
            let (severity, action, why) = match (at.is_input(), &old_values, lost_old.is_empty()) {
                (false, Some(_), false) => (
                    Severity::Breaking,
                    check,
                    format!("OLD also sent {lost}: readers relying on it there break"),
                ),
                (false, Some(_), true) => (
                    Severity::Warning,
                    check,
                    "OLD never sent the values that lack it: existing readers keep working".to_string(),
                ),
                (false, None, _) => (
                    Severity::Warning,
                    check,
                    format!(
                        "OLD had {no_d} and a branch kept `{name}`, so the values without it presumably \
                         came with `{d}`: existing readers keep working"
                    ),
                ),
                (true, Some(_), false) => (
                    Severity::Breaking,
                    format!("pass `{name}` only with {with}"),
                    format!("OLD accepted it with {lost} too: such calls now fail"),
                ),
                (true, Some(_), true) => (
                    Severity::Compatible,
                    format!("pass `{name}` only with {with}"),
                    "OLD never accepted the values that lack it: existing calls keep working".to_string(),
                ),
                (true, None, _) => (
                    Severity::Breaking,
                    format!("calls passing `{name}` must now send {with}"),
                    format!("OLD had {no_d} and accepted `{name}` without it"),
                ),
            };
            Found {
                rule: if at.is_input() { Rule::K3 } else { Rule::K4 },
                severity,
                kind: ChangeKind::MovedIntoBranch,
                message: format!("{core}; {action} ({why})"),
            }
        };
        let branch_at = |value: &str| At {
            path: format!("{}{{{d}={value}}}", at.path),
            old_path: at.old_path.clone(),
            ..at.clone()
        };
        self.push(&branch_at(first).member(Some(o), Some(first_member)), found);
        for (value, n) in keep {
            self.compare_member(o, n, &branch_at(value));
        }
    }

    /// NEW's common member `n` was, in OLD, only in some union branches: one move change at
    /// the common member, then each OLD branch's member compared with `n`.
    fn moved_out_of_branches(&mut self, n: &'a Member, old_side: &Union<'a>, at: &At) {
        let d = old_side.discriminator.as_str();
        let had = old_side.with(&n.name);
        let Some(&(first, first_member)) = had.first() else { return };
        let kept: Vec<&str> = had.iter().map(|(v, _)| *v).collect();
        let lacked: Vec<&str> =
            old_side.values.iter().map(String::as_str).filter(|v| !kept.contains(v)).collect();
        let ty = describe(self.new, Some(&n.ty), 0);
        let (name, role) = (&n.name, at.role());
        let (common, verb, action) = if at.is_input() {
            ("arguments", "accepted", "existing calls keep working")
        } else {
            ("members", "sent", "readers may rely on it without checking `{d}`")
        };
        let action = action.replace("{d}", d);
        let (severity, message) = if lacked.is_empty() {
            (
                Severity::Info,
                format!(
                    "{role} `{name}` ({ty}) moved from every branch of `{d}` into the common {common}: \
                     {verb} whatever `{d}` is, as before; nothing to change"
                ),
            )
        } else {
            (
                Severity::Compatible,
                format!(
                    "{role} `{name}` ({ty}) moved from {} into the common {common}: now {verb} whatever `{d}` is \
                     (before only when it was {}); {action}",
                    branch_list(d, &kept),
                    value_list(&kept, " or ")
                ),
            )
        };
        let found = Found {
            rule: if at.is_input() { Rule::K2 } else { Rule::K4 },
            severity,
            kind: ChangeKind::MovedOutOfBranch,
            message,
        };
        let branch_at = |value: &str| At {
            path: at.path.clone(),
            old_path: format!("{}{{{d}={value}}}", at.old_path),
            ..at.clone()
        };
        self.push(&branch_at(first).member(Some(first_member), Some(n)), found);
        for (value, o) in had {
            self.compare_member(o, n, &branch_at(value));
        }
    }

    /// Matches members by name, pairs leftovers into K7 renames, and reports the rest as
    /// removed (K3 input, K4 output) or added (K2 input, K4 output).
    fn compare_members(&mut self, om: &[&'a Member], nm: &[&'a Member], at: &At) {
        let removed: Vec<usize> =
            (0..om.len()).filter(|&i| !nm.iter().any(|m| m.name == om[i].name)).collect();
        let added: Vec<usize> = (0..nm.len()).filter(|&j| !om.iter().any(|m| m.name == nm[j].name)).collect();
        let mut renamed: BTreeMap<usize, usize> = BTreeMap::new();
        for &i in &removed {
            let candidate = added.iter().copied().find(|&j| {
                !renamed.values().any(|&used| used == j)
                    && rename_key(&nm[j].name) == rename_key(&om[i].name)
                    && self.same_kind(&om[i].ty, &nm[j].ty)
            });
            if let Some(j) = candidate {
                renamed.insert(i, j);
            }
        }
        for (i, o) in om.iter().enumerate() {
            if let Some(n) = nm.iter().find(|m| m.name == o.name) {
                self.compare_member(o, n, at);
            } else if let Some(&j) = renamed.get(&i) {
                self.member_renamed(o, i, nm[j], j, at);
                self.compare_member(o, nm[j], at);
            } else {
                self.member_removed(o, at);
            }
        }
        for j in added {
            if !renamed.values().any(|&used| used == j) {
                self.member_added(nm[j], at);
            }
        }
    }

    fn same_kind(&self, o: &TypeRef, n: &TypeRef) -> bool {
        json_kind(&shape(self.old, Some(o))) == json_kind(&shape(self.new, Some(n)))
    }

    fn member_renamed(&mut self, o: &Member, i: usize, n: &Member, j: usize, parent: &At) {
        let here = parent.member(Some(o), Some(n));
        let position = if i == j {
            format!("same position {}", i + 1)
        } else {
            format!("position {} → {}", i + 1, j + 1)
        };
        let (from, to) = (describe(self.old, Some(&o.ty), 0), describe(self.new, Some(&n.ty), 0));
        let same_type =
            if from == to { format!("same type {to}") } else { format!("same JSON type ({from} → {to})") };
        let action = if parent.is_input() { "send" } else { "read" };
        let unstable_new = is_unstable(&n.name, &n.features) && !is_unstable(&o.name, &o.features);
        let message = format!(
            "{} `{}` was renamed to `{}` ({position}, {same_type}, {}): {action} `{}` instead{}",
            parent.role(),
            o.name,
            n.name,
            rename_evidence(&o.name, &n.name),
            n.name,
            if unstable_new { ", which is unstable and carries no compatibility promise (K8)" } else { "" }
        );
        let gates = !(parent.unstable || is_unstable(&o.name, &o.features));
        self.push_gated(&here, breaking(Rule::K7, ChangeKind::Renamed, message), gates);
    }

    fn member_removed(&mut self, o: &Member, parent: &At) {
        let here = parent.member(Some(o), None);
        let ty = describe(self.old, Some(&o.ty), 0);
        let mut message = if parent.is_input() {
            format!(
                "argument `{}` ({ty}) was removed: calls passing it now fail (\"Parameter '{}' is unexpected\"); stop sending it",
                o.name, o.name
            )
        } else {
            format!(
                "member `{}` ({ty}) is no longer sent: readers relying on it break; treat it as absent",
                o.name
            )
        };
        if has_feature(&o.features, "deprecated") {
            message.push_str(" (it was deprecated)");
        }
        let rule = if parent.is_input() { Rule::K3 } else { Rule::K4 };
        self.push(&here, breaking(rule, ChangeKind::Removed, message));
    }

    fn member_added(&mut self, n: &Member, parent: &At) {
        let here = parent.member(None, Some(n));
        let ty = describe(self.new, Some(&n.ty), 0);
        let found = match (parent.is_input(), n.optional) {
            (true, true) => Found {
                rule: Rule::K2,
                severity: Severity::Compatible,
                kind: ChangeKind::Added,
                message: format!("new optional argument `{}` ({ty}): existing calls keep working", n.name),
            },
            (true, false) => breaking(
                Rule::K2,
                ChangeKind::Added,
                format!("new mandatory argument `{}` ({ty}): every call must now pass it", n.name),
            ),
            (false, _) => Found {
                rule: Rule::K4,
                severity: Severity::Compatible,
                kind: ChangeKind::Added,
                message: format!(
                    "new {} member `{}` ({ty}): readers must ignore unknown keys; may use it",
                    if n.optional { "optional" } else { "mandatory" },
                    n.name
                ),
            },
        };
        self.push(&here, found);
    }

    /// A member present on both sides (possibly renamed): optionality, features, type.
    fn compare_member(&mut self, o: &'a Member, n: &'a Member, parent: &At) {
        let here = parent.member(Some(o), Some(n));
        if o.optional != n.optional {
            let found = match (parent.is_input(), n.optional) {
                (true, false) => breaking(
                    Rule::K2,
                    ChangeKind::NowMandatory,
                    format!("argument `{}` is now mandatory: every call must pass it", n.name),
                ),
                (true, true) => Found {
                    rule: Rule::K2,
                    severity: Severity::Compatible,
                    kind: ChangeKind::NowOptional,
                    message: format!("argument `{}` is now optional: existing calls keep working", n.name),
                },
                (false, true) => breaking(
                    Rule::K4,
                    ChangeKind::NowOptional,
                    format!("member `{}` is now optional: readers must cope with its absence", n.name),
                ),
                (false, false) => Found {
                    rule: Rule::K4,
                    severity: Severity::Compatible,
                    kind: ChangeKind::NowMandatory,
                    message: format!("member `{}` is now always present", n.name),
                },
            };
            self.push(&here, found);
        }
        // A member that just became unstable: that news gates, what changed inside does not.
        let promise = At { unstable: parent.unstable || is_unstable(&o.name, &o.features), ..here.clone() };
        self.features(&o.features, &n.features, &format!("{} `{}`", parent.role(), n.name), &promise);
        if !o.values.is_empty() && !n.values.is_empty() {
            let (ov, nv): (Vec<EnumValue>, Vec<EnumValue>) = (
                o.values.iter().map(EnumValue::new).collect(),
                n.values.iter().map(EnumValue::new).collect(),
            );
            self.compare_enums(&ov, &nv, &here);
        }
        self.compare(Some(&o.ty), Some(&n.ty), &here);
    }

    /// K6: values added or removed; a removed and an added value that differ only by
    /// separator or `x-` prefix are one K7 rename.
    fn compare_enums(&mut self, ov: &[EnumValue], nv: &[EnumValue], at: &At) {
        let removed: Vec<&EnumValue> = ov.iter().filter(|o| !nv.iter().any(|n| n.name == o.name)).collect();
        let added: Vec<&EnumValue> = nv.iter().filter(|n| !ov.iter().any(|o| o.name == n.name)).collect();
        let mut renamed_to: BTreeSet<&str> = BTreeSet::new();
        for o in &removed {
            let here = self.value_at(at, o, None);
            let rename = added.iter().find(|n| {
                !renamed_to.contains(n.name.as_str()) && rename_key(&n.name) == rename_key(&o.name)
            });
            if let Some(n) = rename {
                renamed_to.insert(&n.name);
                self.value_renamed(o, n, at);
                continue;
            }
            let found = if at.is_input() {
                breaking(
                    Rule::K6,
                    ChangeKind::ValueRemoved,
                    format!("value '{}' is no longer accepted: stop sending it", o.name),
                )
            } else {
                Found {
                    rule: Rule::K6,
                    severity: Severity::Compatible,
                    kind: ChangeKind::ValueRemoved,
                    message: format!("value '{}' is no longer produced", o.name),
                }
            };
            self.push(&here, found);
        }
        for n in added.iter().filter(|n| !renamed_to.contains(n.name.as_str())) {
            let here = self.value_at(at, n, Some(n));
            let found = if at.is_input() {
                Found {
                    rule: Rule::K6,
                    severity: Severity::Compatible,
                    kind: ChangeKind::ValueAdded,
                    message: format!("new value '{}' is accepted: existing calls keep working", n.name),
                }
            } else {
                Found {
                    rule: Rule::K6,
                    severity: Severity::Warning,
                    kind: ChangeKind::ValueAdded,
                    message: format!(
                        "may now be '{}': readers must handle values they do not know (may break strict readers)",
                        n.name
                    ),
                }
            };
            self.push(&here, found);
        }
        for o in ov {
            if let Some(n) = nv.iter().find(|n| n.name == o.name) {
                let here = self.value_at(at, o, Some(n));
                let promise =
                    At { unstable: at.unstable || is_unstable(&o.name, &o.features), ..here.clone() };
                self.features(&o.features, &n.features, &format!("value '{}'", n.name), &promise);
            }
        }
    }

    fn value_at(&self, at: &At, value: &EnumValue, other: Option<&EnumValue>) -> At {
        let unstable = is_unstable(&value.name, &value.features)
            || other.is_some_and(|v| is_unstable(&v.name, &v.features));
        At { unstable: at.unstable || unstable, ..at.suffix(&format!("={}", value.name)) }
    }

    fn value_renamed(&mut self, o: &EnumValue, n: &EnumValue, at: &At) {
        let here = At {
            path: format!("{}={}", at.path, n.name),
            old_path: format!("{}={}", at.old_path, o.name),
            ..at.clone()
        };
        let message = format!(
            "value '{}' was renamed to '{}' ({}): {} '{}' instead",
            o.name,
            n.name,
            rename_evidence(&o.name, &n.name),
            if at.is_input() { "send" } else { "expect" },
            n.name
        );
        let gates = !(at.unstable || is_unstable(&o.name, &o.features));
        self.push_gated(&here, breaking(Rule::K7, ChangeKind::Renamed, message), gates);
    }

    /// Alternates on both sides, matched by the JSON type of each alternative (K5).
    fn compare_alternates(&mut self, oa: &'a [Alternative], na: &'a [Alternative], at: &At) {
        let ok = self.by_kind(self.old, oa);
        let nk = self.by_kind(self.new, na);
        let kinds: BTreeSet<JsonKind> = ok.keys().chain(nk.keys()).copied().collect();
        for kind in kinds {
            let here = at.suffix(&format!("<{kind}>"));
            match (ok.get(&kind), nk.get(&kind)) {
                (Some(o), Some(n)) => self.compare(Some(&o.ty), Some(&n.ty), &here),
                (Some(_), None) => {
                    let found =
                        self.widening(false, &format!("alternate with {kind}"), "alternate without it", at);
                    self.push(&here, Found { kind: ChangeKind::Removed, ..found });
                }
                (None, Some(_)) => {
                    let found =
                        self.widening(true, "alternate", &format!("alternate also taking {kind}"), at);
                    self.push(&here, Found { kind: ChangeKind::Added, ..found });
                }
                (None, None) => {}
            }
        }
    }

    fn by_kind(&self, spec: &'a Spec, alts: &'a [Alternative]) -> BTreeMap<JsonKind, &'a Alternative> {
        alts.iter().map(|a| (json_kind(&shape(spec, Some(&a.ty))), a)).collect()
    }

    /// OLD was an alternate, NEW is one type: narrowing on input, compatible on output when
    /// NEW's type was one of the alternatives.
    fn alternate_to_single(
        &mut self,
        oa: &'a [Alternative],
        n: Shape<'_>,
        new_ty: Option<&'a TypeRef>,
        at: &At,
    ) {
        let kind = json_kind(&n);
        let from = describe_alts(self.old, oa);
        let to = describe(self.new, new_ty, 0);
        match self.by_kind(self.old, oa).get(&kind) {
            Some(o) => {
                let found = self.widening(false, &from, &to, at);
                self.push(at, found);
                self.compare(Some(&o.ty), new_ty, at);
            }
            None => {
                let message = format!("{} type changed from {from} to {to}", at.role());
                self.push(at, breaking(Rule::K5, ChangeKind::TypeChanged, message));
            }
        }
    }

    /// OLD was one type, NEW is an alternate: compatible on input when the old type is one
    /// of the alternatives (or int became a number alternative), breaking on output.
    fn single_to_alternate(
        &mut self,
        o: Shape<'_>,
        old_ty: Option<&'a TypeRef>,
        na: &'a [Alternative],
        at: &At,
    ) {
        let kind = json_kind(&o);
        let from = describe(self.old, old_ty, 0);
        let to = describe_alts(self.new, na);
        let by_kind = self.by_kind(self.new, na);
        let matched = by_kind.get(&kind).or_else(|| {
            if kind == JsonKind::Json(JsonType::Int) {
                by_kind.get(&JsonKind::Json(JsonType::Number))
            } else {
                None
            }
        });
        match matched {
            Some(n) => {
                let found = self.widening(true, &from, &to, at);
                self.push(at, found);
                self.compare(old_ty, Some(&n.ty), at);
            }
            None => {
                let message = format!("{} type changed from {from} to {to}", at.role());
                self.push(at, breaking(Rule::K5, ChangeKind::TypeChanged, message));
            }
        }
    }
}

/// `change` at `path`/`old_path` (NEW's and OLD's names): removals are spelled under OLD's
/// names, additions have no old path, the rest one only where it differs.
fn with_paths(change: Change, path: &str, old_path: &str) -> Change {
    let spelled = if is_removal(change.kind) { old_path } else { path };
    let old = match change.kind {
        ChangeKind::Added | ChangeKind::ValueAdded => None,
        _ => Some(old_path.to_string()).filter(|p| p != spelled),
    };
    Change { path: spelled.to_string(), old_path: old, ..change }
}

/// Orders the occurrences of a shared pair of types: shortest path first, then the smaller
/// path. OLD's and NEW's spellings are taken as an unordered pair, so swapping OLD and NEW
/// picks the same occurrence.
fn occurrence_rank(path: &str, old_path: &str) -> ((usize, String), (usize, String)) {
    let (a, b) = ((path.len(), path.to_string()), (old_path.len(), old_path.to_string()));
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

fn describe_alts(spec: &Spec, alts: &[Alternative]) -> String {
    let kinds: BTreeSet<String> =
        alts.iter().map(|a| json_kind(&shape(spec, Some(&a.ty))).to_string()).collect();
    format!("alternate ({})", kinds.into_iter().collect::<Vec<_>>().join("|"))
}

fn describe_shape(spec: &Spec, shape: &Shape<'_>, ty: Option<&TypeRef>) -> String {
    match shape {
        Shape::Unknown(t) if t.is_empty() => "an undocumented type".to_string(),
        Shape::Unknown(t) => format!("unresolved type {t}"),
        _ => describe(spec, ty, 0),
    }
}

fn breaking(rule: Rule, kind: ChangeKind, message: String) -> Found {
    Found { rule, severity: Severity::Breaking, kind, message }
}

fn info(rule: Rule, kind: ChangeKind, message: String) -> Found {
    Found { rule, severity: Severity::Info, kind, message }
}

/// The discriminator member name of a union type.
fn discriminator(spec: &Spec, ty: Option<&TypeRef>) -> Option<String> {
    match spec.resolve(ty?).map(|d| &d.kind) {
        Some(TypeKind::Union { discriminator, .. }) => Some(discriminator.clone()),
        _ => None,
    }
}

/// The values a union's discriminator accepts (`None` when unknown: not an enum).
fn branch_values(spec: &Spec, ty: Option<&TypeRef>, members: &[&Member]) -> Option<Vec<String>> {
    let name = discriminator(spec, ty)?;
    let member = members.iter().find(|m| m.name == name)?;
    enum_values(spec, &member.ty)
}

/// One side of an object seen as a union: its discriminator, every value the discriminator
/// takes (the enum's values, or the branches' when the enum is unknown) and each branch's
/// members. A struct is a union without branches.
struct Union<'a> {
    discriminator: String,
    values: Vec<String>,
    branches: Vec<(&'a str, Vec<&'a Member>)>,
}

impl<'a> Union<'a> {
    fn of(spec: &'a Spec, ty: Option<&'a TypeRef>, common: &[&'a Member], variants: &'a [Variant]) -> Self {
        let branches: Vec<(&'a str, Vec<&'a Member>)> =
            variants.iter().map(|v| (v.value.as_str(), spec.members(&v.ty))).collect();
        let values = branch_values(spec, ty, common)
            .unwrap_or_else(|| branches.iter().map(|(v, _)| v.to_string()).collect());
        Union { discriminator: discriminator(spec, ty).unwrap_or_default(), values, branches }
    }

    /// Whether some branch has a member of this name.
    fn has(&self, name: &str) -> bool {
        self.branches.iter().any(|(_, members)| has(members, name))
    }

    /// The branches that have a member of this name, with that member, in branch order.
    fn with(&self, name: &str) -> Vec<(&'a str, &'a Member)> {
        self.branches
            .iter()
            .filter_map(|(value, members)| members.iter().find(|m| m.name == name).map(|m| (*value, *m)))
            .collect()
    }
}

fn has(members: &[&Member], name: &str) -> bool {
    members.iter().any(|m| m.name == name)
}

/// `branch d=a` or `branches d=a, d=b`, for messages.
fn branch_list(d: &str, values: &[&str]) -> String {
    let list: Vec<String> = values.iter().map(|v| format!("{d}={v}")).collect();
    format!("branch{} {}", if values.len() == 1 { "" } else { "es" }, list.join(", "))
}

/// `` `a` ``, `` `a` or `b` ``, `` `a`, `b` or `c` ``, for messages.
fn value_list(values: &[&str], last: &str) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((one, [])) => one.clone(),
        Some((tail, head)) => format!("{}{last}{tail}", head.join(", ")),
    }
}

/// The values of an enum type (`None` when the type is not an enum).
fn enum_values(spec: &Spec, ty: &TypeRef) -> Option<Vec<String>> {
    match spec.resolve(ty).map(|d| &d.kind) {
        Some(TypeKind::Enum { values }) => Some(values.iter().map(|v| v.name.clone()).collect()),
        _ => None,
    }
}

/// Whether a discriminator value is valid on a side (unknown value sets accept everything).
fn accepts(values: &Option<Vec<String>>, value: &str) -> bool {
    values.as_ref().map_or(true, |vs| vs.iter().any(|v| v == value))
}
