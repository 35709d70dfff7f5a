//! Turning one parsed top-level expression (struct, union, alternate, enum, command, event)
//! into model items, checking its keys and value shapes as QEMU's `expr.py` does. Every
//! problem becomes a diagnostic; what can be kept is kept.

use super::doc::DocBlock;
use super::lexer::Pos;
use super::value::{Entry, Node, Value};
use crate::spec::{
    Alternative, Builtin, Command, DiagnosticKind, EnumValue, Event, Member, Source, Spec, TypeDef, TypeKind,
    TypeRef, Variant,
};

/// The definition meta keys, in the order messages list them.
const METAS: [&str; 6] = ["struct", "union", "alternate", "enum", "command", "event"];

/// The keys each meta accepts (QEMU's `check_keys` lists).
fn allowed_keys(meta: &str) -> &'static [&'static str] {
    match meta {
        "struct" => &["struct", "data", "base", "if", "features"],
        "union" => &["union", "base", "discriminator", "data", "if", "features"],
        "alternate" => &["alternate", "data", "if", "features"],
        "enum" => &["enum", "data", "prefix", "if", "features"],
        "command" => &[
            "command",
            "data",
            "returns",
            "boxed",
            "if",
            "features",
            "gen",
            "success-response",
            "allow-oob",
            "allow-preconfig",
            "coroutine",
        ],
        "event" => &["event", "data", "boxed", "if", "features"],
        _ => &[],
    }
}

/// Builds model items from expressions of one file.
pub(crate) struct Builder<'a> {
    /// The model being filled.
    pub spec: &'a mut Spec,
    /// The file label for sources.
    pub file: &'a str,
}

/// A definition expression being read: its entries, meta and name.
struct Def<'n> {
    entries: &'n [Entry],
    meta: &'static str,
    name: String,
    source: Source,
    source_pos: Pos,
}

impl Def<'_> {
    fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// How messages name it: `command 'migrate'`.
    fn label(&self) -> String {
        format!("{} '{}'", self.meta, self.name)
    }
}

impl Builder<'_> {
    fn src(&self, pos: Pos) -> Source {
        Source::at(self.file, pos.line, pos.col)
    }

    fn syntax(&mut self, pos: Pos, message: impl Into<String>) {
        let source = self.src(pos);
        self.spec.diag(DiagnosticKind::Syntax, source, message);
    }

    /// Adds the definition `node` describes, with `doc` attached when it documents it.
    pub(crate) fn definition(&mut self, node: &Node, doc: Option<DocBlock>) {
        let Some(def) = self.read_head(node) else { return };
        let doc = doc.filter(|d| {
            let matches = d.symbol.as_deref() == Some(def.name.as_str());
            if !matches {
                let message = format!(
                    "documentation for '{}' is followed by the definition of '{}'",
                    d.symbol.as_deref().unwrap_or(""),
                    def.name
                );
                self.spec.diag(DiagnosticKind::DocFinding, def.source.clone(), message);
            }
            matches
        });
        if self.is_duplicate(&def) {
            return;
        }
        match def.meta {
            "struct" => self.structure(&def, doc.as_ref()),
            "union" => self.union(&def, doc.as_ref()),
            "alternate" => self.alternate(&def, doc.as_ref()),
            "enum" => self.enumeration(&def, doc.as_ref()),
            "command" => self.command(&def, doc.as_ref()),
            _ => self.event(&def, doc.as_ref()),
        }
    }

    /// Finds the meta key and name, and reports keys the meta does not take.
    fn read_head<'n>(&mut self, node: &'n Node) -> Option<Def<'n>> {
        let Value::Dict(entries) = &node.value else { return None };
        let metas: Vec<&Entry> = entries.iter().filter(|e| METAS.contains(&e.key.as_str())).collect();
        let Some(first) = metas.first() else {
            let keys: Vec<String> = entries.iter().map(|e| format!("'{}'", e.key)).collect();
            self.syntax(
                node.pos,
                format!(
                    "expected one of 'struct', 'union', 'alternate', 'enum', 'command', 'event', 'include' \
                     or 'pragma', found keys {}",
                    if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
                ),
            );
            return None;
        };
        let meta = METAS.into_iter().find(|m| *m == first.key)?;
        if let Some(second) = metas.get(1) {
            self.syntax(
                second.pos,
                format!("expected one meta key, found '{}' after '{}'", second.key, meta),
            );
        }
        let name = match &first.value.value {
            Value::Str(s) if !s.is_empty() => s.clone(),
            _ => {
                let found = first.value.describe();
                self.syntax(first.value.pos, format!("expected a name string for '{meta}', found {found}"));
                return None;
            }
        };
        for entry in entries {
            if !allowed_keys(meta).contains(&entry.key.as_str()) && entry.key != first.key {
                self.syntax(
                    entry.pos,
                    format!("expected a key of {meta} '{name}', found unknown key '{}'", entry.key),
                );
            }
        }
        Some(Def { entries, meta, name, source: self.src(node.pos), source_pos: node.pos })
    }

    fn is_duplicate(&mut self, def: &Def) -> bool {
        let first = match def.meta {
            "command" => self.spec.commands.get(&def.name).map(|c| c.sources.first().cloned()),
            "event" => self.spec.events.get(&def.name).map(|e| e.sources.first().cloned()),
            _ => self.spec.types.get(&def.name).filter(|t| !t.implicit).map(|t| t.sources.first().cloned()),
        };
        let Some(first) = first else { return false };
        let at = first.map(|s| s.to_string()).unwrap_or_default();
        let message = format!("duplicate definition of {}, first at {at}; this one is ignored", def.label());
        self.spec.diag(DiagnosticKind::DocFinding, def.source.clone(), message);
        true
    }

    fn structure(&mut self, def: &Def, doc: Option<&DocBlock>) {
        let members = self.required_members(def, "data", doc);
        let base = def.get("base").and_then(|b| self.name_string(b, &format!("'base' of {}", def.label())));
        let kind = TypeKind::Struct { base, members };
        self.add_type(def, kind, doc);
    }

    fn union(&mut self, def: &Def, doc: Option<&DocBlock>) {
        let (base, members) = match def.get("base") {
            Some(node @ Node { value: Value::Dict(_), .. }) => (None, self.members(node, &def.label(), doc)),
            Some(node) => (self.name_string(node, &format!("'base' of {}", def.label())), Vec::new()),
            None => {
                self.syntax(def.source_pos, format!("expected key 'base' in {}, found none", def.label()));
                (None, Vec::new())
            }
        };
        let discriminator = match def.get("discriminator") {
            Some(node) => {
                self.name_string(node, &format!("'discriminator' of {}", def.label())).unwrap_or_default()
            }
            None => {
                self.syntax(
                    def.source_pos,
                    format!("expected key 'discriminator' in {}, found none", def.label()),
                );
                String::new()
            }
        };
        let variants = self
            .branches(def)
            .into_iter()
            .map(|(value, ty, condition)| Variant { value, ty, condition })
            .collect();
        self.add_type(def, TypeKind::Union { base, members, discriminator, variants }, doc);
    }

    fn alternate(&mut self, def: &Def, doc: Option<&DocBlock>) {
        let alternatives =
            self.branches(def).into_iter().map(|(name, ty, _condition)| Alternative { name, ty }).collect();
        self.add_type(def, TypeKind::Alternate { alternatives }, doc);
    }

    /// The `data` branches of a union or alternate: `'name': 'Type'` or
    /// `'name': { 'type': 'Type', 'if': ... }`.
    fn branches(&mut self, def: &Def) -> Vec<(String, TypeRef, Option<String>)> {
        let Some(data) = self.required(def, "data") else { return Vec::new() };
        let Value::Dict(entries) = &data.value else {
            let found = data.describe();
            self.syntax(data.pos, format!("expected an object for 'data' of {}, found {found}", def.label()));
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries {
            let what = format!("branch '{}' of {}", entry.key, def.label());
            if let Some((ty, condition, _features)) = self.member_type(&entry.value, &what) {
                out.push((entry.key.clone(), ty, condition));
            }
        }
        out
    }

    fn enumeration(&mut self, def: &Def, doc: Option<&DocBlock>) {
        let mut values = Vec::new();
        if let Some(data) = self.required(def, "data") {
            match &data.value {
                Value::List(items) => {
                    for item in items {
                        if let Some(v) = self.enum_value(item, def) {
                            values.push(v);
                        }
                    }
                }
                _ => {
                    let found = data.describe();
                    self.syntax(
                        data.pos,
                        format!("expected an array for 'data' of {}, found {found}", def.label()),
                    );
                }
            }
        }
        if let Some(prefix) = def.get("prefix") {
            self.name_string(prefix, &format!("'prefix' of {}", def.label()));
        }
        self.add_type(def, TypeKind::Enum { values }, doc);
    }

    fn enum_value(&mut self, item: &Node, def: &Def) -> Option<EnumValue> {
        match &item.value {
            Value::Str(s) => Some(EnumValue::new(s.clone())),
            Value::Dict(entries) => {
                let what = format!("a value of {}", def.label());
                self.check_keys(entries, &["name", "if", "features"], &what);
                let name = match entries.iter().find(|e| e.key == "name") {
                    Some(e) => self.name_string(&e.value, &format!("'name' of {what}"))?,
                    None => {
                        self.syntax(item.pos, format!("expected key 'name' in {what}, found none"));
                        return None;
                    }
                };
                let mut value = EnumValue::new(name);
                value.condition = self.condition_of(entries);
                value.features = self.features_of(entries);
                Some(value)
            }
            _ => {
                let found = item.describe();
                self.syntax(
                    item.pos,
                    format!("expected a string or object in 'data' of {}, found {found}", def.label()),
                );
                None
            }
        }
    }

    fn command(&mut self, def: &Def, doc: Option<&DocBlock>) {
        let mut command = Command::new(def.name.clone(), def.source.clone());
        command.condition = self.condition_of(def.entries);
        command.features = self.features_of(def.entries);
        command.doc = doc.map(|d| d.body.clone()).filter(|b| !b.is_empty());
        command.args =
            self.object_or_name(def, &format!(":obj-{}-arg", def.name), command.condition.clone(), doc);
        if let Some(returns) = def.get("returns") {
            command.returns = self.type_ref(returns, &format!("'returns' of {}", def.label()));
        }
        command.boxed = self.flag(def, "boxed", false);
        command.allow_oob = self.flag(def, "allow-oob", false);
        command.allow_preconfig = self.flag(def, "allow-preconfig", false);
        command.coroutine = self.flag(def, "coroutine", false);
        command.no_gen = !self.flag(def, "gen", true);
        command.no_success_response = !self.flag(def, "success-response", true);
        self.spec.commands.insert(def.name.clone(), command);
    }

    fn event(&mut self, def: &Def, doc: Option<&DocBlock>) {
        let mut event = Event::new(def.name.clone(), def.source.clone());
        event.condition = self.condition_of(def.entries);
        event.features = self.features_of(def.entries);
        event.doc = doc.map(|d| d.body.clone()).filter(|b| !b.is_empty());
        event.data =
            self.object_or_name(def, &format!(":obj-{}-data", def.name), event.condition.clone(), doc);
        event.boxed = self.flag(def, "boxed", false);
        self.spec.events.insert(def.name.clone(), event);
    }

    /// A command's or event's `data`: an inline object becomes the implicit struct
    /// `implicit_name` (none when empty); a type name is referenced as it is.
    fn object_or_name(
        &mut self,
        def: &Def,
        implicit_name: &str,
        condition: Option<String>,
        doc: Option<&DocBlock>,
    ) -> Option<TypeRef> {
        let data = def.get("data")?;
        match &data.value {
            Value::Dict(entries) if entries.is_empty() => None,
            Value::Dict(_) => {
                let members = self.members(data, &def.label(), doc);
                let source = self.src(data.pos);
                let ty = self.spec.add_implicit_struct(implicit_name, members, source);
                if let Some(t) = self.spec.types.get_mut(implicit_name) {
                    t.condition = condition;
                }
                Some(ty)
            }
            Value::Str(name) if !name.is_empty() => Some(type_from_name(name)),
            _ => {
                let found = data.describe();
                self.syntax(
                    data.pos,
                    format!("expected an object or a type name for 'data' of {}, found {found}", def.label()),
                );
                None
            }
        }
    }

    fn add_type(&mut self, def: &Def, kind: TypeKind, doc: Option<&DocBlock>) {
        let mut t = TypeDef::new(def.name.clone(), kind, def.source.clone());
        t.condition = self.condition_of(def.entries);
        t.features = self.features_of(def.entries);
        t.doc = doc.map(|d| d.body.clone()).filter(|b| !b.is_empty());
        self.spec.types.insert(def.name.clone(), t);
    }

    fn required<'n>(&mut self, def: &'n Def, key: &str) -> Option<&'n Node> {
        let found = def.get(key);
        if found.is_none() {
            self.syntax(def.source_pos, format!("expected key '{key}' in {}, found none", def.label()));
        }
        found
    }

    fn required_members(&mut self, def: &Def, key: &str, doc: Option<&DocBlock>) -> Vec<Member> {
        match self.required(def, key) {
            Some(node) => self.members(node, &def.label(), doc),
            None => Vec::new(),
        }
    }

    /// The members of an object value (`{ '*name': 'type', ... }`).
    fn members(&mut self, node: &Node, owner: &str, doc: Option<&DocBlock>) -> Vec<Member> {
        let Value::Dict(entries) = &node.value else {
            let found = node.describe();
            self.syntax(node.pos, format!("expected an object of members for {owner}, found {found}"));
            return Vec::new();
        };
        let mut members = Vec::new();
        for entry in entries {
            let (name, optional) = match entry.key.strip_prefix('*') {
                Some(n) => (n, true),
                None => (entry.key.as_str(), false),
            };
            let what = format!("member '{name}' of {owner}");
            let Some((ty, condition, features)) = self.member_type(&entry.value, &what) else { continue };
            let mut member = Member::new(name, ty, optional);
            member.condition = condition;
            member.features = features;
            member.doc = doc.and_then(|d| d.member(name));
            member.source = Some(self.src(entry.pos));
            members.push(member);
        }
        members
    }

    /// A member's type: `'type'`, `['type']` or `{ 'type': ..., 'if': ..., 'features': ... }`.
    fn member_type(&mut self, node: &Node, what: &str) -> Option<(TypeRef, Option<String>, Vec<String>)> {
        let Value::Dict(entries) = &node.value else {
            return Some((self.type_ref(node, what)?, None, Vec::new()));
        };
        self.check_keys(entries, &["type", "if", "features"], what);
        let Some(ty) = entries.iter().find(|e| e.key == "type") else {
            self.syntax(node.pos, format!("expected key 'type' in {what}, found none"));
            return None;
        };
        let ty = self.type_ref(&ty.value, what)?;
        Some((ty, self.condition_of(entries), self.features_of(entries)))
    }

    /// A type reference: `'name'` or `['name']`.
    fn type_ref(&mut self, node: &Node, what: &str) -> Option<TypeRef> {
        match &node.value {
            Value::Str(name) if !name.is_empty() => Some(type_from_name(name)),
            Value::List(items) => match items.as_slice() {
                [Node { value: Value::Str(name), .. }] if !name.is_empty() => {
                    Some(TypeRef::array(type_from_name(name)))
                }
                _ => {
                    self.syntax(
                        node.pos,
                        format!("expected an array of one type name for {what}, found another array"),
                    );
                    None
                }
            },
            _ => {
                let found = node.describe();
                self.syntax(node.pos, format!("expected a type name for {what}, found {found}"));
                None
            }
        }
    }

    fn name_string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) if !s.is_empty() => Some(s.clone()),
            _ => {
                let found = node.describe();
                self.syntax(node.pos, format!("expected a name string for {what}, found {found}"));
                None
            }
        }
    }

    fn flag(&mut self, def: &Def, key: &str, default: bool) -> bool {
        match def.get(key).map(|n| (&n.value, n)) {
            None => default,
            Some((Value::Bool(b), _)) => *b,
            Some((_, node)) => {
                let found = node.describe();
                self.syntax(
                    node.pos,
                    format!("expected true or false for '{key}' of {}, found {found}", def.label()),
                );
                default
            }
        }
    }

    fn check_keys(&mut self, entries: &[Entry], allowed: &[&str], what: &str) {
        for entry in entries {
            if !allowed.contains(&entry.key.as_str()) {
                self.syntax(
                    entry.pos,
                    format!("expected a key of {what}, found unknown key '{}'", entry.key),
                );
            }
        }
    }

    /// The `if` condition among `entries`, rendered as text.
    fn condition_of(&mut self, entries: &[Entry]) -> Option<String> {
        let node = &entries.iter().find(|e| e.key == "if")?.value;
        self.condition(node, false)
    }

    /// Renders a condition: `'CONFIG_X'`, `{'all': [...]}` as `A and B`, `{'any': [...]}` as
    /// `A or B`, `{'not': C}` as `not C`; nested compound terms get parentheses.
    fn condition(&mut self, node: &Node, nested: bool) -> Option<String> {
        match &node.value {
            Value::Str(s) if !s.is_empty() => Some(s.clone()),
            Value::Dict(entries) if entries.len() == 1 => {
                let entry = entries.first()?;
                let text = match (entry.key.as_str(), &entry.value.value) {
                    ("not", _) => format!("not {}", self.condition(&entry.value, true)?),
                    (op @ ("all" | "any"), Value::List(terms)) if !terms.is_empty() => {
                        let joiner = if op == "all" { " and " } else { " or " };
                        let rendered: Option<Vec<String>> =
                            terms.iter().map(|t| self.condition(t, true)).collect();
                        let rendered = rendered?;
                        if rendered.len() == 1 {
                            return rendered.into_iter().next();
                        }
                        rendered.join(joiner)
                    }
                    _ => {
                        let found = format!("'{}' with {}", entry.key, entry.value.describe());
                        self.syntax(
                            entry.pos,
                            format!(
                                "expected 'all' or 'any' with a non-empty array, or 'not', found {found}"
                            ),
                        );
                        return None;
                    }
                };
                Some(if nested && !text.starts_with("not ") { format!("({text})") } else { text })
            }
            _ => {
                let found = node.describe();
                self.syntax(
                    node.pos,
                    format!("expected a condition (string, 'all', 'any' or 'not'), found {found}"),
                );
                None
            }
        }
    }

    /// The `features` among `entries`: names of strings or `{ 'name': ..., 'if': ... }`.
    fn features_of(&mut self, entries: &[Entry]) -> Vec<String> {
        let Some(node) = entries.iter().find(|e| e.key == "features").map(|e| &e.value) else {
            return Vec::new();
        };
        let Value::List(items) = &node.value else {
            let found = node.describe();
            self.syntax(node.pos, format!("expected an array of features, found {found}"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::Str(s) if !s.is_empty() => out.push(s.clone()),
                Value::Dict(fields) => {
                    self.check_keys(fields, &["name", "if"], "a feature");
                    match fields.iter().find(|f| f.key == "name") {
                        Some(f) => {
                            if let Some(name) = self.name_string(&f.value, "'name' of a feature") {
                                out.push(name);
                            }
                        }
                        None => self.syntax(item.pos, "expected key 'name' in a feature, found none"),
                    }
                }
                _ => {
                    let found = item.describe();
                    self.syntax(item.pos, format!("expected a feature name or object, found {found}"));
                }
            }
        }
        out
    }
}

/// A builtin for QAPI's builtin names, else a named reference (`QType` is an enum).
fn type_from_name(name: &str) -> TypeRef {
    match Builtin::from_qapi(name) {
        Some(b) if b != Builtin::Object => TypeRef::Builtin(b),
        _ => TypeRef::Named(name.to_string()),
    }
}
