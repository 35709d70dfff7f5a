//! Parser for QAPI schema files (`qapi/*.json`, seed 003).
//!
//! A QAPI file is a sequence of Python-dict-like expressions with single-quoted strings,
//! `#` comments and `##` documentation blocks. This module reads every expression kind
//! (struct, union, alternate, enum, command, event, include, pragma) into the model,
//! attaches doc blocks to the definition that follows, follows includes through a callback
//! (the caller does the I/O), and never fails: malformed expressions become `Syntax`
//! diagnostics naming FILE:LINE:COLUMN with what was expected and found, and parsing
//! resumes at the next top-level expression.
//!
//! Files whose newlines were lost (seed 003 is one line) are read too: see [`lexer`] for
//! how comments end there.

mod build;
mod doc;
mod lexer;
mod value;

use std::collections::BTreeSet;

use self::build::Builder;
use self::doc::DocBlock;
use self::lexer::Pos;
use self::value::{Node, Parser, Value};
use super::{DiagnosticKind, Source, SourceKind, Spec};

/// Includes nested deeper than this are not followed (QEMU's schema nests 3 deep).
const MAX_INCLUDE_DEPTH: usize = 32;

/// Parses one QAPI schema file. `read_include` is called with each `include` path as written
/// (relative to the including file) and returns `(label, text)` or `None` when missing.
///
/// Included files' definitions join the same model; each file is read once (repeats and
/// cycles are skipped). After parsing, every type reference no definition answers is
/// reported as an `UnresolvedType` diagnostic.
pub fn parse(text: &str, file: &str, read_include: &mut dyn FnMut(&str) -> Option<(String, String)>) -> Spec {
    let mut reader = Reader {
        spec: Spec::new(SourceKind::Qapi),
        read_include,
        read: BTreeSet::from([file.to_string()]),
        stack: Vec::new(),
    };
    reader.file(text, file);
    report_unresolved(&mut reader.spec);
    reader.spec
}

/// Parsing state shared by the root file and its includes.
struct Reader<'a> {
    spec: Spec,
    read_include: &'a mut dyn FnMut(&str) -> Option<(String, String)>,
    /// Labels of files already read (or being read).
    read: BTreeSet<String>,
    /// Labels of the files being read, outermost first.
    stack: Vec<String>,
}

impl Reader<'_> {
    fn file(&mut self, text: &str, file: &str) {
        self.stack.push(file.to_string());
        let mut parser = Parser::new(text);
        let mut pending: Option<(DocBlock, Pos)> = None;
        while let Some(item) = parser.next_item() {
            self.lexical_problems(&mut parser, file);
            match item {
                value::Item::Doc(lines, pos) => {
                    let doc = doc::interpret(&lines);
                    self.unattached(pending.take(), file);
                    if doc.symbol.is_some() {
                        pending = Some((doc, pos));
                    }
                }
                value::Item::Error(e) => {
                    pending = None;
                    self.spec.diag(DiagnosticKind::Syntax, at(file, e.pos), e.message);
                }
                value::Item::Expr(node) => self.expression(&node, file, &mut pending),
            }
        }
        self.lexical_problems(&mut parser, file);
        self.unattached(pending, file);
        self.stack.pop();
    }

    fn lexical_problems(&mut self, parser: &mut Parser, file: &str) {
        for (pos, message) in parser.take_problems() {
            self.spec.diag(DiagnosticKind::Syntax, at(file, pos), message);
        }
    }

    /// Reports a definition doc block that no definition followed.
    fn unattached(&mut self, doc: Option<(DocBlock, Pos)>, file: &str) {
        if let Some((doc, pos)) = doc {
            let symbol = doc.symbol.unwrap_or_default();
            let message = format!("documentation for '{symbol}' is not followed by the definition");
            self.spec.diag(DiagnosticKind::DocFinding, at(file, pos), message);
        }
    }

    fn expression(&mut self, node: &Node, file: &str, pending: &mut Option<(DocBlock, Pos)>) {
        let Value::Dict(entries) = &node.value else { return };
        let directive = entries.iter().find(|e| e.key == "include" || e.key == "pragma");
        let Some(directive) = directive else {
            let doc = pending.take().map(|(d, _)| d);
            Builder { spec: &mut self.spec, file }.definition(node, doc);
            return;
        };
        self.unattached(pending.take(), file);
        if entries.len() != 1 {
            let message = format!("expected '{}' alone in its expression, found other keys", directive.key);
            self.spec.diag(DiagnosticKind::Syntax, at(file, node.pos), message);
        }
        match (directive.key.as_str(), &directive.value.value) {
            ("include", Value::Str(path)) => self.include(path, file, node.pos),
            ("pragma", Value::Dict(_)) => {}
            (key, _) => {
                let want = if key == "include" { "a file name string" } else { "an object" };
                let message = format!("expected {want} for '{key}', found {}", directive.value.describe());
                self.spec.diag(DiagnosticKind::Syntax, at(file, directive.value.pos), message);
            }
        }
    }

    fn include(&mut self, path: &str, file: &str, pos: Pos) {
        let Some((label, text)) = (self.read_include)(path) else {
            let message = format!("include file '{path}' not found");
            self.spec.diag(DiagnosticKind::MissingInclude, at(file, pos), message);
            return;
        };
        if self.stack.contains(&label) {
            let message = format!("inclusion loop: '{path}' is already being read; not read again");
            self.spec.diag(DiagnosticKind::Recovered, at(file, pos), message);
            return;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            let message = format!("includes nested deeper than {MAX_INCLUDE_DEPTH}; '{path}' not read");
            self.spec.diag(DiagnosticKind::Recovered, at(file, pos), message);
            return;
        }
        if self.read.insert(label.clone()) {
            self.file(&text, &label);
        }
    }
}

fn at(file: &str, pos: Pos) -> Source {
    Source::at(file, pos.line, pos.col)
}

/// One `UnresolvedType` diagnostic per reference no definition answers, placed at the
/// member, command, event or type that makes it.
fn report_unresolved(spec: &mut Spec) {
    for (owner, ty) in spec.unresolved() {
        let source = owner_source(spec, &owner);
        spec.diag(
            DiagnosticKind::UnresolvedType,
            source,
            format!("type '{ty}' used by '{owner}' is not defined"),
        );
    }
}

/// Where `owner` (as [`Spec::unresolved`] names it: `cmd`, `Type`, `Type.member`,
/// `Type[branch]`) was read.
fn owner_source(spec: &Spec, owner: &str) -> Source {
    let first = |sources: &[Source]| sources.first().cloned();
    let found = if let Some(c) = spec.commands.get(owner) {
        first(&c.sources)
    } else if let Some(e) = spec.events.get(owner) {
        first(&e.sources)
    } else if let Some(t) = spec.types.get(owner) {
        first(&t.sources)
    } else if let Some((ty, member)) = owner.split_once('.') {
        let ty_ref = super::TypeRef::named(ty);
        let member_source =
            spec.members(&ty_ref).into_iter().find(|m| m.name == member).and_then(|m| m.source.clone());
        member_source.or_else(|| spec.types.get(ty).and_then(|t| first(&t.sources)))
    } else if let Some((ty, _)) = owner.split_once('[') {
        spec.types.get(ty).and_then(|t| first(&t.sources))
    } else {
        None
    };
    found.unwrap_or_else(|| Source::new("", 0))
}
