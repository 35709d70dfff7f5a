//! What the prose of one member item says: its type, whether it is optional, a default, and
//! the values it may take.
//!
//! Types are read from the parenthesised list (`(json-string, optional)`,
//! `(BlockdevOnError, default 'report')`), else from a `json-*` word in the text. Values come
//! from quoted words in that list (`"read" or "write"`), `one of '...'`, `possibilities
//! include "..."` and `one of the following` continuation lines.

use serde_json::Value;

use super::text::{quoted_strings, starts_with_ignore_case};
use crate::spec::{Builtin, TypeRef};

/// What the text of one member says.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct TypeInfo {
    /// The type, when the text names one.
    pub ty: Option<TypeRef>,
    /// Whether the member may be absent.
    pub optional: bool,
    /// A documented default.
    pub default: Option<Value>,
    /// Documented values.
    pub values: Vec<String>,
    /// Mistakes found in the text (lowercase messages).
    pub findings: Vec<String>,
}

/// Analyses a member's text: `lines[0]` is the text after the name, the rest are its
/// continuation lines.
pub(crate) fn analyse(lines: &[String]) -> TypeInfo {
    let text = lines.join(" ");
    let lower = text.to_ascii_lowercase();
    let mut info = TypeInfo::default();
    let groups = paren_groups(&text);
    let mut typed_groups = Vec::new();
    for group in &groups {
        let tokens: Vec<&str> = group.split([',', ';']).map(str::trim).filter(|t| !t.is_empty()).collect();
        let mut group_type = None;
        let one_of = group.trim_start().to_ascii_lowercase().starts_with("one of");
        for token in &tokens {
            let token_lower = token.to_ascii_lowercase();
            if token_lower == "optional" {
                info.optional = true;
            } else if let Some(raw) = token_lower.strip_prefix("default ") {
                let start = token.len() - raw.len();
                info.default = Some(parse_value(token.get(start..).unwrap_or(raw)));
            } else if token.starts_with(['"', '\'']) {
                if !one_of {
                    info.values.extend(quoted_strings(token, true));
                }
            } else if group_type.is_none() {
                group_type = type_in_token(token, &mut info.findings);
            }
        }
        if one_of {
            info.values.extend(quoted_strings(group, true));
        }
        if let Some(t) = group_type {
            typed_groups.push((t, group.clone()));
        }
    }
    let mut typed = typed_groups.into_iter();
    if let Some((first, _)) = typed.next() {
        for (other, group) in typed {
            if other != first {
                info.findings
                    .push(format!("a second type annotation ({group}) contradicts the first ({first})"));
            }
        }
        info.ty = Some(first);
    } else {
        info.ty = type_in_prose(&text, &mut info.findings);
    }
    if lower.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == "optional")
        || lower.contains("only present")
    {
        info.optional = true;
    }
    if let Some(after) = find_after(&text, "possibilities include") {
        info.values.extend(quoted_strings(after, false));
    }
    if lower.contains("one of the following") {
        for line in lines.iter().skip(1) {
            info.values.extend(leading_values(line));
        }
    }
    if info.default.is_none() {
        // Prose: "..., default 'report'." (not "default is to probe ...").
        for quote in ["default '", "default \""] {
            if let Some(after) = find_after(&text, quote) {
                let q = quote.chars().last().unwrap_or('\'');
                if let Some(value) = after.split(q).next().filter(|v| !v.is_empty()) {
                    info.default = Some(Value::String(value.to_string()));
                    break;
                }
            }
        }
    }
    if info.default.is_none() {
        if let Some(after) = find_after(&text, "defaults to ").or_else(|| find_after(&text, "Defaults to ")) {
            info.default =
                after.split_whitespace().next().map(|w| parse_value(w.trim_end_matches(['.', ',', ')'])));
        }
    }
    if info.default.is_some() {
        info.optional = true;
    }
    let mut seen = Vec::new();
    info.values.retain(|v| {
        let fresh = !seen.contains(v);
        seen.push(v.clone());
        fresh
    });
    if info.ty.is_none() && !info.values.is_empty() {
        info.ty = Some(TypeRef::Builtin(Builtin::Str));
    }
    info
}

/// Values listed at the start of a continuation line: `"debug" - ...`, `"ignore": ...`,
/// `"reset", "shutdown", or "none"`.
pub(crate) fn leading_values(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while let Some(inner) = rest.strip_prefix('"') {
        let Some(end) = inner.find('"') else { break };
        out.push(inner.get(..end).unwrap_or_default().to_string());
        rest = inner.get(end + 1..).unwrap_or_default().trim_start_matches([',', ' ']);
        rest = rest.strip_prefix("or ").unwrap_or(rest).trim_start();
    }
    out
}

/// A documented value as JSON: quoted text → string, `true`/`false` → bool, a plain number
/// → number, anything else (`10M`) → the text as a string.
pub(crate) fn parse_value(raw: &str) -> Value {
    let raw = raw.trim().trim_end_matches(['.', ',']);
    for q in ['\'', '"'] {
        if let Some(inner) = raw.strip_prefix(q) {
            return Value::String(inner.split(q).next().unwrap_or_default().to_string());
        }
    }
    match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => {
            if let Ok(i) = raw.parse::<i64>() {
                Value::from(i)
            } else if let Some(n) = raw.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Value::Number(n)
            } else {
                Value::String(raw.to_string())
            }
        }
    }
}

/// The text after the first occurrence of `needle`.
fn find_after<'a>(text: &'a str, needle: &str) -> Option<&'a str> {
    text.find(needle).and_then(|i| text.get(i + needle.len()..))
}

/// Contents of the top-level parenthesised groups, in order (unclosed ones dropped).
fn paren_groups(text: &str) -> Vec<String> {
    let mut groups = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => {
                if depth > 0 {
                    current.push(c);
                }
                depth += 1;
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    groups.push(std::mem::take(&mut current));
                } else {
                    current.push(c);
                }
            }
            _ if depth > 0 => current.push(c),
            _ => {}
        }
    }
    groups
}

/// The type a token of a parenthesised list names: a single type word, or a `json-*` word
/// inside a phrase (`device tree path` names none, `a json-array of key union values` does).
fn type_in_token(token: &str, findings: &mut Vec<String>) -> Option<TypeRef> {
    let words: Vec<&str> = token.split_whitespace().collect();
    if let [word] = words.as_slice() {
        return type_word(word.trim_end_matches('.'), &[], findings);
    }
    let index = words.iter().position(|w| is_json_word(w))?;
    type_word(words.get(index)?, words.get(index + 1..).unwrap_or_default(), findings)
}

/// The type prose names outside any list: its first `json-*` word or `list of`.
fn type_in_prose(text: &str, findings: &mut Vec<String>) -> Option<TypeRef> {
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let rest = words.get(i + 1..).unwrap_or_default();
        if is_json_word(w) {
            return type_word(w, rest, findings);
        }
        if w.trim_end_matches(['.', ',']).eq_ignore_ascii_case("dictionary") {
            return Some(TypeRef::Builtin(Builtin::Object));
        }
        if w.eq_ignore_ascii_case("list") && rest.first() == Some(&"of") {
            return Some(TypeRef::array(element_type(rest.get(1..).unwrap_or_default())));
        }
    }
    None
}

fn is_json_word(word: &str) -> bool {
    starts_with_ignore_case(word, "json-") || starts_with_ignore_case(word, "json_")
}

/// Maps one type word (`json-int`, `int`, `BlockdevOnError`); `following` are the words
/// after it, read for `json-array of X`.
fn type_word(word: &str, following: &[&str], findings: &mut Vec<String>) -> Option<TypeRef> {
    let clean = word.trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    let lower = clean.to_ascii_lowercase();
    let builtin = |b| Some(TypeRef::Builtin(b));
    match lower.as_str() {
        "json-string" | "string" | "str" => builtin(Builtin::Str),
        "json-str" | "json_string" => {
            findings.push(format!("nonstandard type name '{clean}' read as json-string"));
            builtin(Builtin::Str)
        }
        "json-int" | "int" | "integer" => builtin(Builtin::Int),
        "json-bool" | "bool" | "boolean" => builtin(Builtin::Bool),
        "json-number" | "number" => builtin(Builtin::Number),
        "json-object" | "json-objects" => builtin(Builtin::Object),
        "json-dict" | "dict" => {
            findings.push(format!("nonstandard type name '{clean}' read as json-object"));
            builtin(Builtin::Object)
        }
        "json-value" | "any" => builtin(Builtin::Any),
        "json-array" => {
            let element = match following {
                [of, rest @ ..] if of.eq_ignore_ascii_case("of") => element_type(rest),
                _ => TypeRef::Builtin(Builtin::Any),
            };
            Some(TypeRef::array(element))
        }
        _ if is_json_word(&lower) => {
            findings.push(format!("unknown type name '{clean}'"));
            Some(TypeRef::Unknown(clean.to_string()))
        }
        _ if is_type_name(clean) => Some(TypeRef::named(clean)),
        _ => None,
    }
}

/// The element type named by the words after `json-array of` / `list of`.
fn element_type(words: &[&str]) -> TypeRef {
    for word in words.iter().take(5) {
        let w = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-').to_ascii_lowercase();
        let builtin = match w.as_str() {
            "json-object" | "json-objects" | "object" | "objects" | "dictionary" | "dictionaries" => {
                Builtin::Object
            }
            "json-string" | "json-strings" | "string" | "strings" => Builtin::Str,
            "json-int" | "int" | "integer" | "integers" => Builtin::Int,
            _ if is_type_name(word) => return TypeRef::named(*word),
            _ => continue,
        };
        return TypeRef::Builtin(builtin);
    }
    TypeRef::Builtin(Builtin::Any)
}

/// A QAPI-style type name: CamelCase with at least two capitals, letters and digits only
/// (`MirrorSyncMode`, `ACPIOSTInfo`; not `The` or `Since`).
pub(crate) fn is_type_name(word: &str) -> bool {
    word.len() >= 3
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_alphanumeric())
        && word.chars().any(|c| c.is_ascii_lowercase())
        && word.chars().filter(char::is_ascii_uppercase).count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> TypeInfo {
        analyse(&[text.to_string()])
    }

    #[test]
    fn type_lists() {
        let i = one("block device name (device tree path, json-string, optional)");
        assert_eq!((i.ty, i.optional), (Some(TypeRef::Builtin(Builtin::Str)), true));
        let i = one("action (BlockdevOnError, default 'report')");
        assert_eq!(i.ty, Some(TypeRef::named("BlockdevOnError")));
        assert_eq!(i.default, Some(Value::from("report")));
        assert!(i.optional);
        let i = one("in flight (json-int, default 10M)");
        assert_eq!(i.default, Some(Value::from("10M")));
        let i = one("discard (json-bool, optional, default true)");
        assert_eq!(i.default, Some(Value::Bool(true)));
        let i = one("I/O operation (json-string, \"read\" or \"write\")");
        assert_eq!(i.values, vec!["read", "write"]);
        let i = one("the action (default 'report'). 'stop' and 'enospc' (json-string, optional) (Since 2.1)");
        assert_eq!((i.ty, i.default), (Some(TypeRef::Builtin(Builtin::Str)), Some(Value::from("report"))));
    }

    #[test]
    fn prose_types_and_values() {
        let i = one("a json-array of json-objects, each json-object represents a");
        assert_eq!(i.ty, Some(TypeRef::array(TypeRef::Builtin(Builtin::Object))));
        let i = one("what to copy; possibilities include \"full\" for all, or \"none\" (MirrorSyncMode).");
        assert_eq!(i.ty, Some(TypeRef::named("MirrorSyncMode")));
        assert_eq!(i.values, vec!["full", "none"]);
        let i = analyse(&["it's one of the following (json-string):".into(), "\"ignore\": ignored".into()]);
        assert_eq!(i.values, vec!["ignore"]);
        let i = one("the action, default 'report'. 'stop' only if (BlockdevOnError, optional)");
        assert_eq!(i.default, Some(Value::from("report")));
        let i = one("the format, default is to probe if 'mode' is 'existing' (json-string, optional)");
        assert_eq!(i.default, None);
        let i = one("time to delay, milliseconds. Defaults to 100 (json-int, optional)");
        assert_eq!(i.default, Some(Value::from(100)));
        let i = one("bad (json-strng)");
        assert_eq!(i.ty, Some(TypeRef::Unknown("json-strng".into())));
        assert_eq!(i.findings.len(), 1);
    }
}
