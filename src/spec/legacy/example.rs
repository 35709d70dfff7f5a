//! Examples in legacy docs: `->` requests, `<-` replies and events, bare `{ "event" ...}`
//! blocks in qmp-events.txt. A block runs over as many lines as its brackets stay open.
//!
//! The JSON in these docs is often broken (missing commas, extra braces), so nothing here
//! parses it strictly: [`key_paths`] scans it leniently for the member names and the kind of
//! value each has, which the table parser uses to place members of flattened tables and to
//! guess types the prose omits.

use std::collections::BTreeMap;

use super::lines::Line;
use crate::spec::{Direction, JsonType};

/// One example as the document gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExampleBlock {
    /// Which way it flows.
    pub direction: Direction,
    /// Lines joined with `\n`, markers and line numbers removed.
    pub text: String,
    /// Line of its first line.
    pub line: u32,
    /// The command an `"execute"` names, or the event an `"event"` names.
    pub name: Option<String>,
}

/// Deepest nesting the lenient scanner tracks; deeper text is scanned flat.
const MAX_SCAN_DEPTH: usize = 128;

/// If `line` opens an example, its direction and the JSON text after the marker.
pub(crate) fn example_start(line: &Line, events_doc: bool) -> Option<(Direction, &str)> {
    let text = &*line.text;
    for (marker, direction) in [("->", Direction::Request), ("<-", Direction::Reply)] {
        if let Some(rest) = text.strip_prefix(marker) {
            let rest = rest.trim_start();
            if rest.starts_with('{') || rest.starts_with('[') {
                return Some((direction, rest));
            }
        }
    }
    if events_doc && text.starts_with('{') {
        return Some((Direction::Event, text));
    }
    None
}

/// Collects the example opening at `lines[start]`; returns it and the index after it.
/// Callers must have checked [`example_start`] on `lines[start]`.
pub(crate) fn collect(lines: &[Line], start: usize, events_doc: bool) -> Option<(ExampleBlock, usize)> {
    let first = lines.get(start)?;
    let (mut direction, rest) = example_start(first, events_doc)?;
    let mut parts: Vec<&str> = vec![rest];
    let mut depth = bracket_delta(rest);
    let mut next = start + 1;
    while depth > 0 {
        let Some(line) = lines.get(next) else { break };
        if example_start(line, false).is_some() || !looks_like_json(&line.text) {
            break;
        }
        depth += bracket_delta(&line.text);
        parts.push(&line.text);
        next += 1;
    }
    let text = parts.join("\n");
    let name = match direction {
        Direction::Request => string_member(&text, "execute"),
        _ => string_member(&text, "event"),
    };
    if direction == Direction::Reply && name.is_some() {
        direction = Direction::Event;
    }
    Some((ExampleBlock { direction, text, line: first.no, name }, next))
}

/// Net count of opening minus closing brackets outside strings.
fn bracket_delta(s: &str) -> i64 {
    let mut delta = 0i64;
    let mut in_string = false;
    let mut escaped = false;
    for c in s.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => delta += 1,
            '}' | ']' => delta -= 1,
            _ => {}
        }
    }
    delta
}

/// Whether a line can continue a JSON text (as opposed to prose after a broken example).
fn looks_like_json(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some('"' | '{' | '}' | '[' | ']' | ',' | ':' | '\'') => true,
        Some(c) if c.is_ascii_digit() => true,
        Some('-') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => ["true", "false", "null"].iter().any(|w| text.starts_with(w)),
    }
}

/// The string value of the first `"key": "value"` pair in a JSON-ish text.
pub(crate) fn string_member(text: &str, key: &str) -> Option<String> {
    let tokens = tokenize(text);
    tokens.windows(3).find_map(|w| match w {
        [Token::Str(k), Token::Punct(':'), Token::Str(v)] if k == key => Some(v.clone()),
        _ => None,
    })
}

/// Every member path the text shows (object keys from the top, arrays transparent), with
/// the JSON type of the value first seen there. Works on broken JSON.
pub(crate) fn key_paths(text: &str) -> BTreeMap<Vec<String>, JsonType> {
    struct Frame {
        is_object: bool,
        key: Option<String>,
    }
    let tokens = tokenize(text);
    let mut out = BTreeMap::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut index = 0;
    while let Some(token) = tokens.get(index) {
        index += 1;
        let in_object = frames.last().is_some_and(|f| f.is_object);
        if let (true, Token::Str(s), Some(Token::Punct(':'))) = (in_object, token, tokens.get(index)) {
            if let Some(frame) = frames.last_mut() {
                frame.key = Some(s.clone());
            }
            index += 1;
            continue;
        }
        let kind = match token {
            Token::Str(_) => Some(JsonType::Str),
            Token::Word(w) => Some(word_type(w)),
            Token::Punct('{') => Some(JsonType::Object),
            Token::Punct('[') => Some(JsonType::Array),
            Token::Punct(_) => None,
        };
        if let Some(kind) = kind {
            if frames.last().is_some_and(|f| f.key.is_some()) {
                let path: Vec<String> = frames.iter().filter_map(|f| f.key.clone()).collect();
                out.entry(path).or_insert(kind);
            }
        }
        match token {
            Token::Punct(c @ ('{' | '[')) if frames.len() < MAX_SCAN_DEPTH => {
                frames.push(Frame { is_object: *c == '{', key: None });
            }
            Token::Punct('}' | ']') => {
                frames.pop();
                if let Some(parent) = frames.last_mut() {
                    if parent.is_object {
                        parent.key = None;
                    }
                }
            }
            Token::Str(_) | Token::Word(_) => {
                if let Some(frame) = frames.last_mut() {
                    if frame.is_object {
                        frame.key = None;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The JSON type of a bare word (`12`, `0.5`, `true`, `null`).
fn word_type(word: &str) -> JsonType {
    match word {
        "true" | "false" => JsonType::Bool,
        "null" => JsonType::Null,
        _ if word.parse::<i128>().is_ok() => JsonType::Int,
        _ if word.parse::<f64>().is_ok() => JsonType::Number,
        _ => JsonType::Str,
    }
}

/// A lexical token of lenient JSON.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Punct(char),
    Word(String),
}

/// Splits JSON-ish text into strings, punctuation and bare words.
fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut s = String::new();
                let mut escaped = false;
                for c in chars.by_ref() {
                    match c {
                        _ if escaped => {
                            s.push(c);
                            escaped = false;
                        }
                        '\\' => escaped = true,
                        '"' => break,
                        _ => s.push(c),
                    }
                }
                tokens.push(Token::Str(s));
            }
            '{' | '}' | '[' | ']' | ':' | ',' => tokens.push(Token::Punct(c)),
            c if c.is_whitespace() => {}
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{}[]:,\"".contains(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(no: u32, text: &str) -> Line {
        Line { no, indent: 0, text: text.into() }
    }

    #[test]
    fn multi_line_request_is_joined() {
        let lines = vec![
            line(3, r#"-> { "execute": "memsave","#),
            line(4, r#""arguments": { "val": 10 } }"#),
            line(5, r#"<- { "return": {} }"#),
        ];
        let (ex, next) = collect(&lines, 0, false).expect("example");
        assert_eq!(next, 2);
        assert_eq!(ex.name.as_deref(), Some("memsave"));
        assert_eq!(ex.direction, Direction::Request);
        assert_eq!(ex.text, "{ \"execute\": \"memsave\",\n\"arguments\": { \"val\": 10 } }");
        assert_eq!(ex.line, 3);
    }

    #[test]
    fn broken_example_stops_at_prose() {
        let lines = vec![line(1, r#"<- { "return": {"#), line(2, "Note: shortened")];
        let (_, next) = collect(&lines, 0, false).expect("example");
        assert_eq!(next, 1);
    }

    #[test]
    fn key_paths_survive_missing_commas() {
        let paths = key_paths(r#"{ "return": [ { "stats": { "a": 1 "b": 2.5 }, "parent": {} } ] }"#);
        let key = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(paths.get(&key(&["return", "stats", "a"])), Some(&JsonType::Int));
        assert_eq!(paths.get(&key(&["return", "stats", "b"])), Some(&JsonType::Number));
        assert_eq!(paths.get(&key(&["return", "parent"])), Some(&JsonType::Object));
        assert_eq!(paths.len(), 5);
    }
}
