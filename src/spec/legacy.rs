//! Parser for legacy prose docs: `qmp-commands.txt` and `qmp-events.txt` (seeds 000, 001, 004).
//!
//! The documents are prose: one section per command or event, with an argument table
//! (`- "name": text (json-type, optional)`), a return description, notes and `->`/`<-`
//! examples. Scraped copies are damaged (line numbers glued on, headers, blank lines and
//! indentation lost), so the parser works in stages, each in its own submodule:
//! `lines` undoes the scrape, `sections` cuts the text into sections (recovering lost
//! headers from examples), `body` splits a section into description, tables, notes and
//! examples, `members` reads one member's prose and `tables` nests flattened tables
//! into implicit structs (`:obj-eject-arg`, `:query-blockstats-ret.stats`).
//!
//! Commands documented only by a title ("Show rocker switch") or by nothing but their
//! example get their name from the example, with a `recovered` diagnostic.

mod body;
mod example;
mod lines;
mod members;
mod sections;
mod tables;
mod text;

use std::borrow::Cow;
use std::collections::BTreeMap;

use body::Body;
use example::ExampleBlock;
use sections::Section;

use super::{
    Command, Diagnostic, DiagnosticKind, Direction, Event, Example, JsonType, Source, SourceKind, Spec,
    TypeRef,
};

/// Underlines longer or shorter than the name by more than this are reported.
const UNDERLINE_SLACK: usize = 2;

/// Parses a legacy prose document (commands or events). Never fails: problems become
/// diagnostics in the returned model.
pub fn parse(text: &str, file: &str) -> Spec {
    let mut spec = Spec::new(SourceKind::Legacy);
    let prepared = lines::prepare(text, file, &mut spec);
    let events_doc = is_events_doc(&prepared.lines);
    let sections = sections::split(&prepared.lines, events_doc, prepared.numbered);
    let numbered = prepared.numbered;
    let mut doc = Doc { spec, file, events_doc, numbered, example_names: BTreeMap::new() };
    for section in &sections {
        doc.section(section);
    }
    doc.example_only_commands();
    doc.spec
}

/// Whether prepared lines are an events document: headers in capitals and `"event"`
/// examples rather than command names and `"execute"` examples.
fn is_events_doc(lines: &[lines::Line]) -> bool {
    let mut caps = 0usize;
    let mut lower = 0usize;
    for pair in lines.windows(2) {
        let underlined = pair[1].text.len() >= 3 && pair[1].text.chars().all(|c| c == '-');
        if underlined && sections::is_name_token(&pair[0].text, true) {
            caps += 1;
        } else if underlined && sections::is_name_token(&pair[0].text, false) {
            lower += 1;
        }
    }
    let events = lines.iter().filter(|l| l.text.contains("\"event\"")).count();
    let executes = lines.iter().filter(|l| l.text.contains("\"execute\"")).count();
    caps > lower || (caps == lower && events > executes)
}

/// The parse state of one document.
struct Doc<'a> {
    spec: Spec,
    file: &'a str,
    events_doc: bool,
    /// Whether line-number gaps mean lost lines.
    numbered: bool,
    /// Every command a request example executes, with the first place it does.
    example_names: BTreeMap<String, Source>,
}

impl Doc<'_> {
    fn source(&self, line: u32) -> Source {
        Source::new(self.file, line)
    }

    fn diag(&mut self, kind: DiagnosticKind, line: u32, message: String) {
        let source = self.source(line);
        self.spec.diagnostics.push(Diagnostic::new(kind, source, message));
    }

    fn section(&mut self, section: &Section) {
        let body = body::read_body(section, self.events_doc, self.numbered);
        for e in body.examples.iter().filter(|e| e.direction == Direction::Request) {
            if let Some(name) = &e.name {
                let source = self.source(e.line);
                self.example_names.entry(name.clone()).or_insert(source);
            }
        }
        let Some(name) = self.section_name(section, &body) else { return };
        self.check_example_names(&name, &body);
        let line = section.first_line();
        if self.events_doc {
            self.event(name, line, &body);
        } else {
            self.command(name, line, &body);
        }
    }

    /// The name a section documents: its header, else the name its examples use most (the
    /// last of equals), with a diagnostic saying so.
    fn section_name(&mut self, section: &Section, body: &Body) -> Option<String> {
        if let Some(header) = section.header.as_ref().filter(|h| h.is_name && h.underline.is_none()) {
            let executed = body
                .examples
                .iter()
                .filter(|e| e.direction == Direction::Request)
                .filter_map(|e| e.name.as_deref());
            let names: Vec<&str> = executed.collect();
            if let (false, Some(last)) = (names.contains(&header.text.as_str()), names.last()) {
                let message = format!(
                    "header '{}' (no underline) is not the command its example executes; took '{last}'",
                    header.text
                );
                self.diag(DiagnosticKind::DocFinding, header.line, message);
                return Some((*last).to_string());
            }
        }
        if let Some(header) = section.header.as_ref().filter(|h| h.is_name) {
            match header.underline {
                Some(len) if len.abs_diff(header.text.len()) > UNDERLINE_SLACK => {
                    let message = format!(
                        "header '{}' is underlined with {len} dashes for {} characters",
                        header.text,
                        header.text.len()
                    );
                    self.diag(DiagnosticKind::DocFinding, header.line, message);
                }
                None => {
                    let message =
                        format!("header '{}' has no underline; taken as a section header", header.text);
                    self.diag(DiagnosticKind::Recovered, header.line, message);
                }
                _ => {}
            }
            return Some(header.text.clone());
        }
        let wanted = if self.events_doc { Direction::Event } else { Direction::Request };
        let mut counts: Vec<(&str, usize, u32)> = Vec::new();
        for e in body.examples.iter().filter(|e| e.direction == wanted) {
            let Some(name) = e.name.as_deref() else { continue };
            match counts.iter_mut().find(|(n, _, _)| *n == name) {
                Some(entry) => entry.1 += 1,
                None => counts.push((name, 1, e.line)),
            }
        }
        let best = counts.iter().enumerate().max_by_key(|(i, (_, count, _))| (*count, *i)).map(|(_, c)| *c);
        let Some((name, _, example_line)) = best else {
            let has_table = body.args.has_items() || body.returns.has_items() || body.data.has_items();
            if has_table {
                let message =
                    "a section with a member table names no command and has no example; skipped".to_string();
                self.diag(DiagnosticKind::Damaged, section.first_line(), message);
            }
            return None;
        };
        let what = if self.events_doc { "event" } else { "command" };
        let message = match &section.header {
            Some(h) => format!(
                "section '{}' has a title, not a name; {what} name '{name}' recovered from its example",
                h.text
            ),
            None => format!("section has no header; {what} name '{name}' recovered from its example"),
        };
        self.diag(DiagnosticKind::Recovered, example_line, message);
        Some(name.to_string())
    }

    /// Reports examples naming another command (or event) than their section.
    fn check_example_names(&mut self, name: &str, body: &Body) {
        let wanted = if self.events_doc { Direction::Event } else { Direction::Request };
        let mut reported: Vec<&str> = Vec::new();
        for e in body.examples.iter().filter(|e| e.direction == wanted) {
            let Some(other) = e.name.as_deref() else { continue };
            if other != name && !reported.contains(&other) {
                reported.push(other);
                let verb = if self.events_doc { "shows event" } else { "executes" };
                let message = format!("example in the section of '{name}' {verb} '{other}'");
                self.diag(DiagnosticKind::DocFinding, e.line, message);
            }
        }
    }

    fn command(&mut self, name: String, line: u32, body: &Body) {
        let source = self.source(line);
        if let Some(existing) = self.spec.commands.get_mut(&name) {
            let first = existing.sources.first().map_or(0, |s| s.line);
            existing.sources.push(source);
            let message = format!("command '{name}' is documented twice (first at line {first})");
            self.diag(DiagnosticKind::DocFinding, line, message);
            return;
        }
        let mut command = Command::new(name.clone(), source);
        let body = &self.reassign_orphan_members(&name, body);
        command.doc = doc_text(&body.desc).or_else(|| doc_text(&body.returns_intro));
        command.examples = self.examples(&body.examples);
        command.args = self.arguments(&name, body);
        command.returns = self.returns(&name, body);
        self.spec.commands.insert(name, command);
    }

    /// Members listed before an empty `Arguments:` heading (query-migrate-capabilities) are
    /// what a query returns; for other commands they stay arguments. Either way a finding.
    fn reassign_orphan_members<'b>(&mut self, name: &str, body: &'b Body) -> Cow<'b, Body> {
        let Some(line) = body.args_listed_before_heading else { return Cow::Borrowed(body) };
        let mut body = body.clone();
        let query = name.starts_with("query-") && !body.returns.has_items();
        let taken = if query { "read as the return value" } else { "read as arguments" };
        let message = format!("members of '{name}' are listed before an empty 'Arguments:'; {taken}");
        self.diag(DiagnosticKind::DocFinding, line, message);
        if query {
            body.returns = std::mem::take(&mut body.args);
        }
        Cow::Owned(body)
    }

    fn arguments(&mut self, name: &str, body: &Body) -> Option<TypeRef> {
        if let (Some(none_line), true) = (body.args_none, body.args.has_items()) {
            self.diag(
                DiagnosticKind::DocFinding,
                none_line,
                format!("'{name}' says 'Arguments: None' but lists members"),
            );
        }
        let evidence = evidence(&body.examples, Direction::Request, "arguments");
        let root = format!(":obj-{name}-arg");
        let args = tables::build(&mut self.spec, self.file, &root, &body.args.entries, &evidence)?;
        for note in body.notes.iter().chain(body.desc.iter()) {
            apply_note_defaults(&mut self.spec, &root, note);
        }
        Some(args)
    }

    fn returns(&mut self, name: &str, body: &Body) -> Option<TypeRef> {
        let intro = body.returns_intro.join(" ");
        let is_array = returns_array(&intro);
        let evidence = evidence(&body.examples, Direction::Reply, "return");
        let root = format!(":{name}-ret");
        match tables::build(&mut self.spec, self.file, &root, &body.returns.entries, &evidence) {
            Some(t) if is_array => Some(TypeRef::array(t)),
            Some(t) => Some(t),
            None => list_of_named(&intro).map(TypeRef::array),
        }
    }

    fn event(&mut self, name: String, line: u32, body: &Body) {
        let source = self.source(line);
        if let Some(existing) = self.spec.events.get_mut(&name) {
            existing.sources.push(source);
            self.diag(DiagnosticKind::DocFinding, line, format!("event '{name}' is documented twice"));
            return;
        }
        let mut event = Event::new(name.clone(), source);
        event.doc = doc_text(&body.desc);
        event.examples = self.examples(&body.examples);
        if let (Some(none_line), true) = (body.data_none, body.data.has_items()) {
            self.diag(
                DiagnosticKind::DocFinding,
                none_line,
                format!("'{name}' says 'Data: None.' but lists members"),
            );
        }
        event.data = match named_data(body) {
            Some(named) => Some(named),
            None => {
                let evidence = evidence(&body.examples, Direction::Event, "data");
                let root = format!(":obj-{name}-data");
                tables::build(&mut self.spec, self.file, &root, &body.data.entries, &evidence)
            }
        };
        self.spec.events.insert(name, event);
    }

    fn examples(&self, blocks: &[ExampleBlock]) -> Vec<Example> {
        blocks
            .iter()
            .map(|b| Example { direction: b.direction, text: b.text.clone(), source: self.source(b.line) })
            .collect()
    }

    /// Commands known only from an example in another command's section.
    fn example_only_commands(&mut self) {
        if self.events_doc {
            return;
        }
        let names = std::mem::take(&mut self.example_names);
        for (name, source) in names {
            if self.spec.commands.contains_key(&name) {
                continue;
            }
            let message = format!("command '{name}' appears only in an example of another section");
            self.spec.diag(DiagnosticKind::Recovered, source.clone(), message);
            self.spec.commands.insert(name.clone(), Command::new(name, source));
        }
    }
}

/// Description lines as one doc string.
fn doc_text(lines: &[String]) -> Option<String> {
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Member paths shown by the examples of one direction, below their top key (`arguments`,
/// `return`, `data`).
fn evidence(examples: &[ExampleBlock], direction: Direction, top: &str) -> BTreeMap<Vec<String>, JsonType> {
    let mut out = BTreeMap::new();
    for e in examples.iter().filter(|e| e.direction == direction) {
        for (path, kind) in example::key_paths(&e.text) {
            if let Some((first, rest)) = path.split_first() {
                if first == top && !rest.is_empty() {
                    out.entry(rest.to_vec()).or_insert(kind);
                }
            }
        }
    }
    out
}

/// Whether the sentences introducing a return value say it is an array: they mention a
/// json-array or a list, and do not open with "Return a json-object".
fn returns_array(intro: &str) -> bool {
    let lower = intro.to_ascii_lowercase();
    let first = lower.split(". ").next().unwrap_or_default();
    let says_object =
        first.starts_with("return") && first.contains("json-object") && !first.contains("json-array");
    let says_array = ["json-array", "list of", "a list"].iter().any(|w| lower.contains(w));
    !says_object && says_array
}

/// `Return a list of GICCapability objects` → `GICCapability`.
fn list_of_named(intro: &str) -> Option<TypeRef> {
    let words: Vec<&str> = intro.split_whitespace().collect();
    let of = words.windows(2).position(|w| w[0].eq_ignore_ascii_case("list") && w[1] == "of")?;
    let candidate = words.get(of + 2)?;
    members::is_type_name(candidate).then(|| TypeRef::named(*candidate))
}

/// `- data: ACPIOSTInfo type as described in qapi-schema.json`: event data that is a named
/// type rather than a table.
fn named_data(body: &Body) -> Option<TypeRef> {
    let [body::Entry::Item(item)] = body.data.entries.as_slice() else { return None };
    if item.head.name != "data" {
        return None;
    }
    let (first, rest) = item.head.rest.split_once(' ')?;
    (members::is_type_name(first) && rest.starts_with("type")).then(|| TypeRef::named(first))
}

/// Applies defaults that notes give: `The "force" argument defaults to false.` and
/// `All boolean arguments default to false`.
fn apply_note_defaults(spec: &mut Spec, root: &str, note: &str) {
    let lower = note.to_ascii_lowercase();
    if lower.contains("all boolean arguments default to false") {
        tables::default_bools_false(spec, root);
    }
    let mut rest = note;
    while let Some(pos) = rest.find("argument defaults to ") {
        let before = rest.get(..pos).unwrap_or_default();
        let after = rest.get(pos + "argument defaults to ".len()..).unwrap_or_default();
        let value = after.split_whitespace().next().unwrap_or_default().trim_end_matches(['.', ',']);
        if let Some(name) = text::quoted_strings(before, false).last() {
            tables::set_default(spec, root, name, value);
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Builtin;

    const COMMANDS: &str = r#"
eject
-----
Eject a removable medium.
Arguments:
- "force": force ejection (json-bool, optional)
- "id": the device (json-string)
Example:
-> { "execute": "eject", "arguments": { "id": "ide0-1-0" } }
<- { "return": {} }
Note: The "force" argument defaults to false.
query-thing
-----------
Each thing is a json-object, the returned value is a json-array of all things.
Each json-object contain the following:
- "name": the name (json-string)
- "stats": A json-object with statistics, it contains:
- "depth": queue depth (json-number)
- "parent": the parent (json-object, optional)
Example:
-> { "execute": "query-thing" }
<- { "return": [ { "name": "a", "stats": { "depth": 1.5 }, "parent": {} } ] }
"#;

    #[test]
    fn commands_with_args_returns_and_note_defaults() {
        let spec = parse(COMMANDS, "t.txt");
        assert!(!is_events_doc(&lines::prepare(COMMANDS, "t", &mut Spec::default()).lines));
        assert_eq!(spec.commands.keys().collect::<Vec<_>>(), vec!["eject", "query-thing"]);
        let eject = &spec.commands["eject"];
        assert_eq!(eject.sources[0].line, 2);
        let force = spec.member_at(eject.args.as_ref().expect("args"), "force").expect("force");
        assert_eq!(force.default, Some(serde_json::Value::Bool(false)));
        assert_eq!(eject.examples.len(), 2);
        let ret = spec.commands["query-thing"].returns.clone().expect("returns");
        assert!(matches!(ret, TypeRef::Array(_)));
        let depth = spec.member_at(&ret, "stats.depth").expect("depth");
        assert_eq!(depth.ty, TypeRef::Builtin(Builtin::Number));
        let parent = spec.member_at(&ret, "parent").expect("parent at top level");
        assert_eq!((parent.ty.clone(), parent.optional), (TypeRef::Builtin(Builtin::Object), true));
        assert!(spec.diagnostics.is_empty(), "{:?}", spec.diagnostics);
    }

    #[test]
    fn events_with_indented_tables_and_named_data() {
        let text = "1 EVT_A\n2 -------\n3 Data:\n4 - \"server\": info (json-object)\n5   - \"host\": address (json-string)\n\
                    6 - \"x\": other (json-int)\n7 { \"event\": \"EVT_A\" }\n8 EVT_B\n9 -----\n10  - data: FooInfo type as described\n";
        let spec = parse(text, "e.txt");
        assert_eq!(spec.events.len(), 2);
        let a = spec.events["EVT_A"].data.clone().expect("data");
        assert_eq!(
            spec.member_at(&a, "server.host").map(|m| m.ty.clone()),
            Some(TypeRef::Builtin(Builtin::Str))
        );
        assert_eq!(spec.member_at(&a, "x").and_then(|m| m.source.clone()), Some(Source::new("e.txt", 6)));
        assert_eq!(spec.events["EVT_B"].data, Some(TypeRef::named("FooInfo")));
    }
}
