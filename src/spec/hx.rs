//! Parser for `qmp-commands.hx` files and diff hunks of them (seed 002).
//!
//! An `.hx` file pairs a C struct per command (`{ .name = "x", .args_type = "a:s,b:i?", ... }`)
//! with an `SQMP ... EQMP` prose block in the `qmp-commands.txt` format. `args_type` is what
//! the monitor really accepts, so it decides which arguments exist and whether they are
//! optional; the prose adds docs, examples and sharper types (`MirrorSyncMode` where
//! args_type only says `s`). Where the two disagree a [`DiagnosticKind::DocFinding`] says so.
//!
//! A diff of the file (lines marked `+`, `-`, or context) yields two models: the old side
//! (context and `-` lines) and the new side (context and `+` lines). Scraped diffs lose the
//! leading whitespace of context lines, so a line `- "x": ...` may be a context prose bullet or
//! the removal of an indented line; [`classify`] decides by looking for the `+` line that
//! replaces it. Prose pieces that a hunk cut off from their heading become [`Fragment`]s;
//! [`attribute`] names them by matching their members against another model.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Builtin, Command, DiagnosticKind, Direction, Example, Member, Source, SourceKind, Spec, TypeRef,
};

/// The two sides of an `.hx` document. A plain file has identical sides.
#[derive(Debug, Clone)]
pub struct HxSides {
    /// The model before the diff (`PATH@old`).
    pub old: Spec,
    /// The model after the diff (`PATH@new`, also plain `PATH`).
    pub new: Spec,
    /// Prose pieces of the old side that no heading or struct names.
    pub old_fragments: Vec<Fragment>,
    /// Prose pieces of the new side that no heading or struct names.
    pub new_fragments: Vec<Fragment>,
    /// Whether the text was a diff (has `+` lines or `@@` headers).
    pub is_diff: bool,
}

/// A piece of prose (member table and examples) whose command the text does not name,
/// because a diff hunk starts after the heading.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// Where the piece starts.
    pub source: Source,
    /// The `- "name": doc (type)` members it documents, in order.
    pub members: Vec<Member>,
    /// The `->` / `<-` examples it holds.
    pub examples: Vec<Example>,
}

/// Parses an `.hx` file or a diff of one. Never fails. For a diff, sources are labelled
/// `FILE@old` and `FILE@new`; for a plain file both sides are labelled `FILE`.
pub fn parse(text: &str, file: &str) -> HxSides {
    if looks_like_diff(text) {
        parse_labelled(text, &format!("{file}@old"), &format!("{file}@new"))
    } else {
        parse_labelled(text, file, file)
    }
}

/// Parses like [`parse`] with explicit labels for the sources of each side.
pub fn parse_labelled(text: &str, old_label: &str, new_label: &str) -> HxSides {
    // Scraped pages may use no-break spaces for spaces.
    let normalized;
    let text = if text.contains('\u{a0}') {
        normalized = text.replace('\u{a0}', " ");
        normalized.as_str()
    } else {
        text
    };
    let is_diff = looks_like_diff(text);
    let lines = if is_diff { classify(text) } else { plain_lines(text) };
    let old_lines = side_lines(&lines, Mark::Old);
    let new_lines = side_lines(&lines, Mark::New);
    let (old, old_fragments) = parse_side(&old_lines, old_label, is_diff);
    let (new, new_fragments) = parse_side(&new_lines, new_label, is_diff);
    HxSides { old, new, old_fragments, new_fragments, is_diff }
}

/// Names each fragment after the command of `reference` whose arguments or return members
/// share the most member names with it (at least two, and at least half of the fragment's),
/// then adds that command to the side with the fragment's members and examples. Commands the
/// `.hx` text names itself are never candidates. Every attribution, and every fragment left
/// unnamed, is recorded as a [`DiagnosticKind::Recovered`] diagnostic.
pub fn attribute(sides: &mut HxSides, reference: &Spec) {
    let named: BTreeSet<String> =
        sides.old.commands.keys().chain(sides.new.commands.keys()).cloned().collect();
    let candidates = candidate_sets(reference, &named);
    let ref_label = reference_label(reference);
    for (spec, fragments) in
        [(&mut sides.old, &mut sides.old_fragments), (&mut sides.new, &mut sides.new_fragments)]
    {
        let mut left = Vec::new();
        for fragment in fragments.drain(..) {
            match best_candidate(&candidates, &fragment) {
                Some(best) => attach_fragment(spec, fragment, best, reference, &ref_label),
                None => {
                    spec.diag(
                        DiagnosticKind::Recovered,
                        fragment.source.clone(),
                        format!(
                            "prose fragment documenting {} matches no command of {ref_label}",
                            name_list(&fragment.members)
                        ),
                    );
                    left.push(fragment);
                }
            }
        }
        *fragments = left;
    }
}

/// The type and optionality a monitor `args_type` code stands for (`s`, `i?`, `-f`, ...).
pub fn monitor_type(code: &str) -> Option<(TypeRef, bool)> {
    if code.starts_with('-') {
        return Some((TypeRef::Builtin(Builtin::Bool), true));
    }
    let (letter, optional) = match code.strip_suffix('?') {
        Some(rest) => (rest, true),
        None => (code, false),
    };
    let builtin = match letter {
        "s" | "S" | "F" | "B" => Builtin::Str,
        "i" | "l" | "M" => Builtin::Int,
        "o" => Builtin::Size,
        "T" => Builtin::Number,
        "b" => Builtin::Bool,
        "O" => Builtin::Object,
        "q" => Builtin::Any,
        _ => return None,
    };
    Some((TypeRef::Builtin(builtin), optional))
}

// ---------------------------------------------------------------------------------------------
// Diff classification

/// Which side(s) of a diff a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Both sides.
    Context,
    /// Old side only (`-`).
    Old,
    /// New side only (`+`).
    New,
    /// A hunk boundary (`@@`): lines are missing here.
    Gap,
}

/// One input line with its side and its text (marker and leading whitespace removed).
#[derive(Debug, Clone)]
struct DiffLine {
    line: u32,
    mark: Mark,
    text: String,
}

fn looks_like_diff(text: &str) -> bool {
    text.lines().any(|l| l.starts_with('+') || l.starts_with("@@ "))
}

fn plain_lines(text: &str) -> Vec<DiffLine> {
    text.lines()
        .enumerate()
        .map(|(i, l)| DiffLine { line: line_no(i), mark: Mark::Context, text: l.trim().to_string() })
        .collect()
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Marks every line of a diff. A `- X` line (dash, space) is a removal when X is a struct
/// field or brace, or when a `+` line right after its run of `-` lines has the same key;
/// otherwise it is a context prose bullet whose leading space the scrape removed.
fn classify(text: &str) -> Vec<DiffLine> {
    let raw: Vec<&str> = text.lines().collect();
    let mut out: Vec<DiffLine> = Vec::with_capacity(raw.len());
    for (i, l) in raw.iter().enumerate() {
        let (mark, body) = classify_line(&raw, i, l, out.last().map(|d| d.mark));
        out.push(DiffLine { line: line_no(i), mark, text: body.trim().to_string() });
    }
    out
}

fn classify_line<'a>(raw: &[&str], i: usize, l: &'a str, previous: Option<Mark>) -> (Mark, &'a str) {
    if l.starts_with("@@") {
        return (Mark::Gap, hunk_context(l));
    }
    if l.starts_with("+++ ") || l.starts_with("--- ") || l.starts_with("diff --git") {
        return (Mark::Gap, "");
    }
    if let Some(rest) = l.strip_prefix('+') {
        return (Mark::New, rest);
    }
    let Some(rest) = l.strip_prefix('-') else { return (Mark::Context, l) };
    if rest.starts_with("> ") || rest == ">" {
        // `-> {...}`: a context request example, not the removal of `> {...}`.
        return (Mark::Context, l);
    }
    if !rest.is_empty() && rest.chars().all(|c| c == '-') {
        // A heading underline takes the mark of its heading.
        return if previous == Some(Mark::Old) { (Mark::Old, rest) } else { (Mark::Context, l) };
    }
    if !rest.starts_with(' ') {
        return (Mark::Old, rest);
    }
    if is_removed_indented_line(raw, i, rest.trim()) {
        (Mark::Old, rest)
    } else {
        (Mark::Context, l)
    }
}

/// The text after the second `@@` of a hunk header (git's function context).
fn hunk_context(l: &str) -> &str {
    l.get(2..).and_then(|r| r.find("@@").and_then(|p| r.get(p + 2..))).unwrap_or("")
}

fn is_removed_indented_line(raw: &[&str], i: usize, body: &str) -> bool {
    if body.starts_with('.') || matches!(body, "{" | "}" | "}," | "]" | "],") {
        return true;
    }
    let Some(key) = line_key(body) else { return false };
    // Skip the rest of the run of `-` lines, then look at the `+` run after it.
    let mut j = i + 1;
    while raw.get(j).is_some_and(|l| l.starts_with('-') && !l.starts_with("->")) {
        j += 1;
    }
    while let Some(l) = raw.get(j).and_then(|l| l.strip_prefix('+')) {
        if line_key(l.trim()).as_deref() == Some(key.as_str()) {
            return true;
        }
        j += 1;
    }
    false
}

/// The identifying key of a line: its first quoted string or its `.field` name, after an
/// optional prose bullet dash.
fn line_key(body: &str) -> Option<String> {
    let body = body.strip_prefix("- ").unwrap_or(body).trim_start();
    if let Some(field) = body.strip_prefix('.') {
        return Some(field.split(|c: char| !c.is_alphanumeric() && c != '_' && c != '.').next()?.to_string());
    }
    let start = body.find('"')?;
    let rest = body.get(start + 1..)?;
    let end = rest.find('"')?;
    rest.get(..end).map(str::to_string)
}

fn side_lines(lines: &[DiffLine], side: Mark) -> Vec<DiffLine> {
    lines.iter().filter(|d| matches!(d.mark, Mark::Context | Mark::Gap) || d.mark == side).cloned().collect()
}

// ---------------------------------------------------------------------------------------------
// One side: structs and prose blocks

/// A `{ .name = ..., .args_type = ... }` block.
#[derive(Debug, Clone)]
struct StructBlock {
    name: String,
    name_line: u32,
    args_type: Option<String>,
    args_line: u32,
}

/// A run of prose lines (an `SQMP ... EQMP` block or a piece of one).
#[derive(Debug, Clone, Default)]
struct ProseBlock {
    lines: Vec<(u32, String)>,
}

fn parse_side(lines: &[DiffLine], label: &str, is_diff: bool) -> (Spec, Vec<Fragment>) {
    let mut spec = Spec::new(SourceKind::Hx);
    let mut structs: Vec<StructBlock> = Vec::new();
    let mut blocks: Vec<ProseBlock> = Vec::new();
    let mut current = ProseBlock::default();
    let mut i = 0;
    while let Some(d) = lines.get(i) {
        if d.mark == Mark::Gap || d.text == "SQMP" || d.text == "EQMP" {
            flush(&mut current, &mut blocks);
            if d.mark == Mark::Gap && is_heading_name(&d.text) {
                // git's hunk context names the heading the hunk continues.
                current.lines.push((d.line, d.text.clone()));
                current.lines.push((d.line, "---".to_string()));
            }
            i += 1;
            continue;
        }
        if starts_struct(lines, i) {
            flush(&mut current, &mut blocks);
            let (block, next) = read_struct(lines, i, label, &mut spec);
            if let Some(b) = block {
                structs.push(b);
            }
            i = next;
            continue;
        }
        current.lines.push((d.line, d.text.clone()));
        i += 1;
    }
    flush(&mut current, &mut blocks);
    let mut fragments = Vec::new();
    let mut prose_by_name: BTreeMap<String, ProseDoc> = BTreeMap::new();
    for block in &blocks {
        match heading(block) {
            Some((name, line, body_start)) => {
                let mut doc = read_prose(block.lines.get(body_start..).unwrap_or(&[]), label, &mut spec);
                // Members outside any section (a hunk cut the `Arguments:` line off) are
                // returns for `query-*` commands, else arguments.
                let loose = std::mem::take(&mut doc.loose);
                if name.starts_with("query-") {
                    doc.returns.extend(loose);
                } else {
                    doc.args.extend(loose);
                }
                prose_by_name.insert(name.clone(), ProseDoc { line, ..doc });
            }
            None => {
                for piece in split_fragments(&block.lines) {
                    let doc = read_prose(&piece, label, &mut spec);
                    let members: Vec<Member> =
                        doc.args.into_iter().chain(doc.returns).chain(doc.loose).collect();
                    if members.is_empty() && doc.examples.is_empty() {
                        continue;
                    }
                    let line = piece.first().map(|p| p.0).unwrap_or(0);
                    fragments.push(Fragment {
                        source: Source::new(label, line),
                        members,
                        examples: doc.examples,
                    });
                }
            }
        }
    }
    build_commands(&mut spec, structs, prose_by_name, label, is_diff);
    (spec, fragments)
}

fn flush(current: &mut ProseBlock, blocks: &mut Vec<ProseBlock>) {
    if current.lines.iter().any(|(_, t)| !t.is_empty()) {
        blocks.push(std::mem::take(current));
    } else {
        current.lines.clear();
    }
}

fn starts_struct(lines: &[DiffLine], i: usize) -> bool {
    let Some(d) = lines.get(i) else { return false };
    if d.text.starts_with(".name") {
        return true;
    }
    if d.text != "{" {
        return false;
    }
    let next = lines.get(i + 1..).unwrap_or(&[]).iter().find(|n| !n.text.is_empty() && n.mark != Mark::Gap);
    next.is_some_and(|n| n.text.starts_with(".name"))
}

/// Reads a struct block from `start`; returns it (when it has a name) and the index of the
/// first line after it. A block cut before its `}` ends at the first line that is not a field.
fn read_struct(
    lines: &[DiffLine],
    start: usize,
    label: &str,
    spec: &mut Spec,
) -> (Option<StructBlock>, usize) {
    let first_line = lines.get(start).map(|d| d.line).unwrap_or(0);
    let mut name: Option<(String, u32)> = None;
    let mut args: Option<(String, u32)> = None;
    let mut i = start;
    if lines.get(i).is_some_and(|d| d.text == "{") {
        i += 1;
    }
    let mut closed = false;
    let mut in_args = false;
    while let Some(d) = lines.get(i) {
        let t = d.text.as_str();
        if t == "}" || t == "}," {
            closed = true;
            i += 1;
            break;
        }
        if d.mark == Mark::Gap {
            break;
        }
        if let Some(rest) = t.strip_prefix(".name") {
            name = Some((string_literals(rest), d.line));
            in_args = false;
        } else if let Some(rest) = t.strip_prefix(".args_type") {
            args = Some((string_literals(rest), d.line));
            in_args = true;
        } else if t.starts_with('"') && in_args {
            if let Some((a, _)) = args.as_mut() {
                a.push_str(&string_literals(t));
            }
        } else if t.starts_with('.') || t.is_empty() {
            in_args = false;
        } else {
            break;
        }
        i += 1;
    }
    let Some((name, name_line)) = name.filter(|(n, _)| !n.is_empty()) else {
        spec.diag(DiagnosticKind::Syntax, Source::new(label, first_line), "command struct without a .name");
        return (None, i.max(start + 1));
    };
    if !closed {
        spec.diag(
            DiagnosticKind::Recovered,
            Source::new(label, name_line),
            format!("struct of '{name}' is cut before its closing brace"),
        );
    }
    let (args_type, args_line) = match args {
        Some((a, l)) => (Some(a), l),
        None => (None, name_line),
    };
    (Some(StructBlock { name, name_line, args_type, args_line }), i.max(start + 1))
}

/// The concatenation of every `"..."` literal on a line (C adjacent-literal style).
fn string_literals(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(e) = chars.next() {
                        out.push(e);
                    }
                }
                '"' => break,
                _ => out.push(c),
            }
        }
    }
    out
}

/// A block's heading: a command name followed by a `---` underline. Returns the name, its
/// line and the index of the first body line.
fn heading(block: &ProseBlock) -> Option<(String, u32, usize)> {
    let mut nonblank = block.lines.iter().enumerate().filter(|(_, (_, t))| !t.is_empty());
    let (_, (line, name)) = nonblank.next()?;
    let (k, (_, under)) = nonblank.next()?;
    (is_heading_name(name) && under.len() >= 3 && under.chars().all(|c| c == '-'))
        .then(|| (name.clone(), *line, k + 1))
}

fn is_heading_name(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// Splits an unnamed block where a new member table starts after examples (hunks without
/// `@@` headers run separate blocks together).
fn split_fragments(lines: &[(u32, String)]) -> Vec<Vec<(u32, String)>> {
    let mut pieces = vec![Vec::new()];
    let mut after_examples = false;
    for (line, text) in lines {
        if bullet_name(text).is_some() && after_examples {
            pieces.push(Vec::new());
            after_examples = false;
        }
        if is_example_keyword(text) || is_json_line(text) {
            after_examples = true;
        }
        if let Some(p) = pieces.last_mut() {
            p.push((*line, text.clone()));
        }
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

// ---------------------------------------------------------------------------------------------
// Prose tables

/// What one prose block documents.
#[derive(Debug, Clone, Default)]
struct ProseDoc {
    line: u32,
    doc: Option<String>,
    args: Vec<Member>,
    returns: Vec<Member>,
    /// Members listed outside any `Arguments:` / `Returns:` section.
    loose: Vec<Member>,
    examples: Vec<Example>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Intro,
    Arguments,
    Returns,
    Examples,
    Other,
}

fn read_prose(lines: &[(u32, String)], label: &str, spec: &mut Spec) -> ProseDoc {
    let mut doc = ProseDoc::default();
    let mut section = Section::Intro;
    let mut intro: Vec<&str> = Vec::new();
    let mut member: Option<(Member, String)> = None;
    let mut example: Option<(Example, i64)> = None;
    for (line, text) in lines {
        let text = text.as_str();
        if let Some((ex, depth)) = example.as_mut() {
            if *depth > 0 && !starts_example(text) && !text.is_empty() {
                ex.text.push('\n');
                ex.text.push_str(text);
                *depth += brace_balance(text);
                continue;
            }
            doc.examples.extend(example.take().map(|(e, _)| e));
        }
        if let Some(next) = section_keyword(text) {
            finish_member(&mut member, section, &mut doc, spec);
            section = next;
            continue;
        }
        if let Some(direction) = starts_example(text).then(|| example_direction(text)) {
            finish_member(&mut member, section, &mut doc, spec);
            let body = text.get(2..).unwrap_or("").trim().to_string();
            let depth = brace_balance(&body);
            example = Some((Example { direction, text: body, source: Source::new(label, *line) }, depth));
            continue;
        }
        if let Some((name, rest)) = bullet_name(text) {
            finish_member(&mut member, section, &mut doc, spec);
            let mut m = Member::new(name, TypeRef::Builtin(Builtin::Any), false);
            m.source = Some(Source::new(label, *line));
            member = Some((m, rest.to_string()));
            continue;
        }
        if text.starts_with("- ") || is_json_line(text) {
            // A note bullet (`- Possible values: ...`) or a piece of example output ends the member.
            finish_member(&mut member, section, &mut doc, spec);
            continue;
        }
        match member.as_mut() {
            Some((_, desc)) if !text.is_empty() => {
                desc.push(' ');
                desc.push_str(text);
            }
            _ if section == Section::Intro && !text.is_empty() => intro.push(text),
            _ => {}
        }
    }
    finish_member(&mut member, section, &mut doc, spec);
    doc.examples.extend(example.map(|(e, _)| e));
    if !intro.is_empty() {
        doc.doc = Some(intro.join(" "));
    }
    doc
}

fn section_keyword(text: &str) -> Option<Section> {
    Some(match text.trim_end_matches(':').trim() {
        "Arguments" | "Argument" => Section::Arguments,
        "Returns" | "Return" | "Return Value" => Section::Returns,
        "Example" | "Examples" => Section::Examples,
        "Notes" | "Note" => Section::Other,
        _ => return None,
    })
    .filter(|_| text.ends_with(':'))
}

fn is_example_keyword(text: &str) -> bool {
    section_keyword(text) == Some(Section::Examples) || starts_example(text)
}

fn starts_example(text: &str) -> bool {
    text.starts_with("->") || text.starts_with("<-")
}

fn example_direction(text: &str) -> Direction {
    if text.starts_with("->") {
        Direction::Request
    } else if text.contains("\"event\"") {
        Direction::Event
    } else {
        Direction::Reply
    }
}

/// `{`/`[` minus `}`/`]`, outside strings.
fn brace_balance(text: &str) -> i64 {
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        match (in_string, c) {
            (true, '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (true, '"') if !escaped => in_string = false,
            (false, '"') => in_string = true,
            (false, '{' | '[') => depth += 1,
            (false, '}' | ']') => depth -= 1,
            _ => {}
        }
        escaped = false;
    }
    depth
}

/// A prose bullet `- "name": rest` gives `(name, rest)`.
fn bullet_name(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("- \"").or_else(|| text.strip_prefix("-\""))?;
    let end = rest.find('"')?;
    let name = rest.get(..end)?;
    let after = rest.get(end + 1..)?.trim_start();
    let desc = after.strip_prefix(':')?;
    (!name.is_empty()).then_some((name, desc.trim()))
}

/// A line of example JSON without its `->`/`<-` marker: braces, or `"key":value`.
fn is_json_line(text: &str) -> bool {
    if matches!(text.trim_end_matches(','), "{" | "}" | "[" | "]" | "}}" | "]}") {
        return true;
    }
    let Some(rest) = text.strip_prefix('"') else { return false };
    let Some(end) = rest.find('"') else { return false };
    let Some(value) = rest.get(end + 1..).and_then(|r| r.trim_start().strip_prefix(':')) else {
        return false;
    };
    let value = value.trim_start();
    value.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '"' | '{' | '[' | '-'))
        || ["true", "false", "null"].iter().any(|k| value.starts_with(k))
}

fn finish_member(
    member: &mut Option<(Member, String)>,
    section: Section,
    doc: &mut ProseDoc,
    spec: &mut Spec,
) {
    let Some((mut m, desc)) = member.take() else { return };
    let source = m.source.clone().unwrap_or_else(|| Source::new("", 0));
    let mut text = desc.clone();
    match type_spec(&desc) {
        Some((spec_found, range)) => {
            m.ty = spec_found.ty;
            m.optional = spec_found.optional;
            m.default = spec_found.default.map(serde_json::Value::String);
            text.replace_range(range, "");
        }
        None if desc.contains("json-array") => m.ty = TypeRef::array(TypeRef::Builtin(Builtin::Any)),
        None if desc.contains("json-object") => m.ty = TypeRef::Builtin(Builtin::Object),
        None => spec.diag(
            DiagnosticKind::Recovered,
            source,
            format!("member '{}' has no type in parentheses; taken as any", m.name),
        ),
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.trim_end_matches('.').trim().to_string();
    m.doc = (!text.is_empty()).then_some(text);
    match section {
        Section::Arguments => doc.args.push(m),
        Section::Returns => doc.returns.push(m),
        _ => doc.loose.push(m),
    }
}

/// What a parenthesised `(json-int, optional, default 10M)` says.
struct TypeSpec {
    ty: TypeRef,
    optional: bool,
    default: Option<String>,
}

/// The first parenthesised group of `desc` that reads as a type spec.
/// Also gives the byte range of the group, parentheses included.
fn type_spec(desc: &str) -> Option<(TypeSpec, std::ops::Range<usize>)> {
    let mut offset = 0;
    while let Some(open) = desc.get(offset..)?.find('(').map(|p| p + offset) {
        let close = desc.get(open..)?.find(')').map(|p| p + open)?;
        if let Some(found) = read_type_spec(desc.get(open + 1..close)?) {
            return Some((found, open..close + 1));
        }
        offset = close + 1;
    }
    None
}

fn read_type_spec(inner: &str) -> Option<TypeSpec> {
    let mut parts = inner.split(',').map(str::trim);
    let ty = prose_type(parts.next()?)?;
    let mut optional = false;
    let mut default = None;
    for part in parts {
        if part == "optional" {
            optional = true;
        } else if let Some(value) = part.strip_prefix("default") {
            optional = true;
            let value = value.trim().trim_matches('\'').trim_matches('"');
            default = (!value.is_empty()).then(|| value.to_string());
        }
    }
    Some(TypeSpec { ty, optional, default })
}

/// A prose type word: `json-int`, `json-str`, ..., or a CamelCase type name.
fn prose_type(word: &str) -> Option<TypeRef> {
    let builtin = match word {
        "json-string" | "json-str" => Builtin::Str,
        "json-int" => Builtin::Int,
        "json-number" | "json-double" => Builtin::Number,
        "json-bool" => Builtin::Bool,
        "json-object" => Builtin::Object,
        "json-value" => Builtin::Any,
        "json-array" => return Some(TypeRef::array(TypeRef::Builtin(Builtin::Any))),
        _ => {
            let camel = word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && word.chars().all(|c| c.is_ascii_alphanumeric());
            return camel.then(|| TypeRef::named(word));
        }
    };
    Some(TypeRef::Builtin(builtin))
}

// ---------------------------------------------------------------------------------------------
// Commands: args_type first, prose for docs and sharper types

fn build_commands(
    spec: &mut Spec,
    structs: Vec<StructBlock>,
    mut prose: BTreeMap<String, ProseDoc>,
    label: &str,
    is_diff: bool,
) {
    for s in structs {
        let doc = prose.remove(&s.name);
        let mut command = Command::new(s.name.clone(), Source::new(label, s.name_line));
        let mut args = args_from_type(&s, label, spec);
        if let Some(doc) = &doc {
            command.sources.push(Source::new(label, doc.line));
            reconcile(&s, &mut args, doc, label, is_diff, spec);
        }
        if !args.is_empty() {
            command.args = Some(spec.add_implicit_struct(
                format!(":obj-{}-arg", s.name),
                args,
                Source::new(label, s.args_line),
            ));
        }
        if let Some(doc) = doc {
            fill_from_prose(spec, &mut command, doc, label);
        }
        insert_command(spec, command);
    }
    for (name, doc) in prose {
        let mut command = Command::new(name.clone(), Source::new(label, doc.line));
        if !doc.args.is_empty() {
            let args = doc.args.clone();
            command.args = Some(spec.add_implicit_struct(
                format!(":obj-{name}-arg"),
                args,
                Source::new(label, doc.line),
            ));
        }
        fill_from_prose(spec, &mut command, doc, label);
        insert_command(spec, command);
    }
    report_unresolved(spec);
}

fn insert_command(spec: &mut Spec, command: Command) {
    if let Some(first) = spec.commands.get(&command.name) {
        let at = first.sources.first().cloned().unwrap_or_else(|| Source::new("", 0));
        let here = command.sources.first().cloned().unwrap_or_else(|| Source::new("", 0));
        spec.diag(
            DiagnosticKind::DocFinding,
            here,
            format!("command '{}' defined again (first at {at})", command.name),
        );
        return;
    }
    spec.commands.insert(command.name.clone(), command);
}

/// Doc, return members and examples of a prose block.
fn fill_from_prose(spec: &mut Spec, command: &mut Command, doc: ProseDoc, label: &str) {
    command.doc = doc.doc;
    command.examples = doc.examples;
    let returns = doc.returns;
    if !returns.is_empty() {
        let name = format!(":{}-ret", command.name);
        command.returns = Some(spec.add_implicit_struct(name, returns, Source::new(label, doc.line)));
    }
}

fn args_from_type(s: &StructBlock, label: &str, spec: &mut Spec) -> Vec<Member> {
    let Some(args_type) = &s.args_type else { return Vec::new() };
    let mut members = Vec::new();
    for item in args_type.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let at = Source::new(label, s.args_line);
        let Some((name, code)) = item.split_once(':') else {
            spec.diag(
                DiagnosticKind::Syntax,
                at,
                format!("args_type item '{item}' of '{}' has no ':'", s.name),
            );
            continue;
        };
        let (ty, optional) = monitor_type(code).unwrap_or_else(|| {
            spec.diag(
                DiagnosticKind::UnresolvedType,
                at.clone(),
                format!("unknown args_type code '{code}' for '{}'.'{name}'", s.name),
            );
            (TypeRef::Unknown(code.to_string()), code.ends_with('?'))
        });
        let mut m = Member::new(name, ty, optional);
        m.source = Some(at);
        members.push(m);
    }
    members
}

/// Takes docs and sharper types from the prose into the args_type members, and reports each
/// disagreement between the two as a doc finding.
fn reconcile(
    s: &StructBlock,
    args: &mut [Member],
    doc: &ProseDoc,
    label: &str,
    is_diff: bool,
    spec: &mut Spec,
) {
    let partial = if is_diff { " (the hunk may show only part of the table)" } else { "" };
    for m in args.iter_mut() {
        let Some(p) = doc.args.iter().find(|p| p.name == m.name) else {
            spec.diag(
                DiagnosticKind::DocFinding,
                Source::new(label, s.args_line),
                format!(
                    "argument '{}' of '{}' is in args_type but not in its prose table{partial}",
                    m.name, s.name
                ),
            );
            continue;
        };
        let at = p.source.clone().unwrap_or_else(|| Source::new(label, doc.line));
        m.doc = p.doc.clone();
        m.default = p.default.clone();
        if p.optional != m.optional {
            spec.diag(
                DiagnosticKind::DocFinding,
                at.clone(),
                format!(
                    "optional differs for '{}'.'{}': args_type says {}, prose says {}",
                    s.name,
                    m.name,
                    optional_word(m.optional),
                    optional_word(p.optional)
                ),
            );
        }
        match sharper_type(&m.ty, &p.ty) {
            Ok(Some(t)) => m.ty = t,
            Ok(None) => {}
            Err(()) => spec.diag(
                DiagnosticKind::DocFinding,
                at,
                format!(
                    "type differs for '{}'.'{}': args_type says {}, prose says {}",
                    s.name, m.name, m.ty, p.ty
                ),
            ),
        }
    }
    for p in &doc.args {
        if !args.iter().any(|m| m.name == p.name) {
            let at = p.source.clone().unwrap_or_else(|| Source::new(label, doc.line));
            spec.diag(
                DiagnosticKind::DocFinding,
                at,
                format!("argument '{}' of '{}' is documented in prose but not in args_type", p.name, s.name),
            );
        }
    }
}

fn optional_word(optional: bool) -> &'static str {
    if optional {
        "optional"
    } else {
        "required"
    }
}

/// Whether the prose type refines the args_type one: `Ok(Some)` to take it, `Ok(None)` to
/// keep the args_type type, `Err` when they contradict each other.
fn sharper_type(from_args: &TypeRef, from_prose: &TypeRef) -> Result<Option<TypeRef>, ()> {
    use Builtin::*;
    let TypeRef::Builtin(a) = from_args else { return Ok(None) };
    match from_prose {
        TypeRef::Named(_) if *a == Str || *a == Object => Ok(Some(from_prose.clone())),
        TypeRef::Named(_) => Ok(None),
        TypeRef::Builtin(Any) => Ok(None),
        TypeRef::Builtin(p) if p == a => Ok(None),
        TypeRef::Builtin(Int) if matches!(a, Size | Number) => Ok(None),
        TypeRef::Builtin(Number) if matches!(a, Int | Size) => Ok(None),
        TypeRef::Array(_) if *a == Object || *a == Any => Ok(None),
        _ if *a == Any => Ok(Some(from_prose.clone())),
        _ => Err(()),
    }
}

/// Named prose types (`MirrorSyncMode`) an `.hx` document never defines.
fn report_unresolved(spec: &mut Spec) {
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for def in spec.types.values() {
        if let super::TypeKind::Struct { members, .. } = &def.kind {
            for m in members {
                if let TypeRef::Named(n) = &m.ty {
                    if !spec.types.contains_key(n) && seen.insert(n.clone()) {
                        let at = m.source.clone().or_else(|| def.sources.first().cloned());
                        found.push((n.clone(), at.unwrap_or_else(|| Source::new("", 0))));
                    }
                }
            }
        }
    }
    for (name, at) in found {
        spec.diag(
            DiagnosticKind::UnresolvedType,
            at,
            format!("type '{name}' is not defined in this document"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Attribution of fragments

/// Member names of one command's arguments or returns, for matching fragments.
struct Candidate {
    command: String,
    returns: bool,
    names: BTreeSet<String>,
}

fn candidate_sets(reference: &Spec, excluded: &BTreeSet<String>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for c in reference.commands.values().filter(|c| !excluded.contains(&c.name)) {
        let args: BTreeSet<String> = reference.command_args(c).iter().map(|m| normal_name(&m.name)).collect();
        out.push(Candidate { command: c.name.clone(), returns: false, names: args });
        let mut names = BTreeSet::new();
        if let Some(r) = &c.returns {
            collect_names(reference, r, &mut names, 0);
        }
        out.push(Candidate { command: c.name.clone(), returns: true, names });
    }
    out
}

fn collect_names(spec: &Spec, ty: &TypeRef, names: &mut BTreeSet<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    let mut ty = ty;
    while let TypeRef::Array(e) = ty {
        ty = e;
    }
    if let Some(super::TypeKind::Array { element }) = spec.resolve(ty).map(|d| &d.kind) {
        collect_names(spec, element, names, depth + 1);
        return;
    }
    for m in spec.members(ty) {
        names.insert(normal_name(&m.name));
        collect_names(spec, &m.ty, names, depth + 1);
    }
}

fn normal_name(name: &str) -> String {
    name.replace('_', "-")
}

fn best_candidate<'a>(candidates: &'a [Candidate], fragment: &Fragment) -> Option<&'a Candidate> {
    let wanted: BTreeSet<String> = fragment.members.iter().map(|m| normal_name(&m.name)).collect();
    let score = |c: &Candidate| c.names.intersection(&wanted).count();
    let best = candidates.iter().max_by_key(|c| score(c))?;
    let top = score(best);
    let tied = candidates.iter().filter(|c| score(c) == top && c.command != best.command).count();
    (top >= 2 && top * 2 >= wanted.len() && tied == 0).then_some(best)
}

fn attach_fragment(spec: &mut Spec, fragment: Fragment, best: &Candidate, reference: &Spec, ref_label: &str) {
    let name = best.command.clone();
    let at = fragment.source.clone();
    spec.diag(
        DiagnosticKind::Recovered,
        at.clone(),
        format!(
            "prose fragment documenting {} taken as the {} of '{name}' (its members match {ref_label}); \
             the hunk shows only part of the table",
            name_list(&fragment.members),
            if best.returns { "return" } else { "arguments" }
        ),
    );
    let mut command = Command::new(name.clone(), at.clone());
    command.examples = fragment.examples;
    if best.returns {
        let t = spec.add_implicit_struct(format!(":{name}-ret"), fragment.members, at);
        let is_array = reference.commands.get(&name).and_then(|c| c.returns.as_ref()).is_some_and(|r| {
            matches!(r, TypeRef::Array(_))
                || matches!(reference.resolve(r).map(|d| &d.kind), Some(super::TypeKind::Array { .. }))
        });
        command.returns = Some(if is_array { TypeRef::array(t) } else { t });
    } else {
        command.args = Some(spec.add_implicit_struct(format!(":obj-{name}-arg"), fragment.members, at));
    }
    insert_command(spec, command);
}

fn reference_label(reference: &Spec) -> String {
    let files: BTreeSet<&str> =
        reference.commands.values().flat_map(|c| c.sources.iter().map(|s| s.file.as_str())).collect();
    let list: Vec<&str> = files.into_iter().collect();
    if list.is_empty() {
        "the reference model".to_string()
    } else {
        list.join(", ")
    }
}

fn name_list(members: &[Member]) -> String {
    let names: Vec<String> = members.iter().map(|m| format!("'{}'", m.name)).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_codes() {
        assert_eq!(monitor_type("s"), Some((TypeRef::Builtin(Builtin::Str), false)));
        assert_eq!(monitor_type("i?"), Some((TypeRef::Builtin(Builtin::Int), true)));
        assert_eq!(monitor_type("o"), Some((TypeRef::Builtin(Builtin::Size), false)));
        assert_eq!(monitor_type("-f"), Some((TypeRef::Builtin(Builtin::Bool), true)));
        assert_eq!(monitor_type("O?"), Some((TypeRef::Builtin(Builtin::Object), true)));
        assert_eq!(monitor_type("T"), Some((TypeRef::Builtin(Builtin::Number), false)));
        assert_eq!(monitor_type("z"), None);
    }

    #[test]
    fn dash_space_lines_are_context_unless_replaced() {
        let text = "- \"a\": doc (json-int)\n- \"k\":1\n+ \"k\":1,\n- .name = \"x\",\n--> { }\n-> {}\n";
        let marks: Vec<Mark> = classify(text).iter().map(|d| d.mark).collect();
        assert_eq!(marks, vec![Mark::Context, Mark::Old, Mark::New, Mark::Old, Mark::Old, Mark::Context]);
    }

    #[test]
    fn adjacent_literals_concatenate() {
        assert_eq!(string_literals(" = \"a:s,\" \"b:i?\","), "a:s,b:i?");
    }

    #[test]
    fn type_spec_skips_prose_parentheses() {
        let (t, range) =
            type_spec("the host file (e.g. qcow2) of it (json-int, default 10M)").expect("type spec");
        assert_eq!(range, 33..56);
        assert_eq!(t.ty, TypeRef::Builtin(Builtin::Int));
        assert!(t.optional);
        assert_eq!(t.default.as_deref(), Some("10M"));
    }
}
