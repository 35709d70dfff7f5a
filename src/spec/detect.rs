//! Source-kind detection from content, so `qmpcheck spec FILE` needs no `--kind`.
//!
//! Checked in order, cheapest certainty first:
//! 1. introspection: JSON (or JSON lines) holding SchemaInfo objects (`"meta-type"`), a
//!    `{"return": [...]}` reply of them, or a recorded transcript (an object with a
//!    `"query-qmp-schema"` key, or JSON lines of QMP messages);
//! 2. QAPI: single-quoted top-level expressions such as `{ 'command': ...` or `{ 'include': ...`;
//! 3. `.hx`: `SQMP`/`EQMP` markers or `.args_type =` / `.mhandler` struct fields;
//! 4. legacy prose: `json-*` typed bullets, `-> { "execute"` examples, `Arguments:`/`Data:`.

use serde_json::Value;

use super::SourceKind;

/// Guesses the kind of a document from its content; `None` when nothing matches.
///
/// Text kinds are scored, not first-matched: legacy docs quote QAPI in commit messages
/// (seed 001 holds two `{ 'command': ...` snippets), so QAPI wins only when its expressions
/// outnumber the prose and `.hx` signs together.
pub fn detect(text: &str) -> Option<SourceKind> {
    let text = text.trim_start_matches('\u{feff}');
    if is_introspection(text) {
        return Some(SourceKind::Introspect);
    }
    let qapi = qapi_expressions(text);
    let hx = hx_markers(text);
    let legacy = legacy_lines(text);
    if qapi > 0 && qapi > hx + legacy {
        Some(SourceKind::Qapi)
    } else if hx > 0 {
        Some(SourceKind::Hx)
    } else if legacy > 0 {
        Some(SourceKind::Legacy)
    } else {
        None
    }
}

/// Keys that open a QAPI top-level expression.
const QAPI_KEYS: [&str; 8] =
    ["command", "struct", "enum", "union", "event", "include", "alternate", "pragma"];

fn is_introspection(text: &str) -> bool {
    let trimmed = text.trim();
    if !(trimmed.starts_with('[') || trimmed.starts_with('{')) {
        return false;
    }
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return is_schema_value(&value);
    }
    is_json_lines(trimmed)
}

/// A SchemaInfo array, a `{"return": [...]}` reply of one, or a transcript object.
fn is_schema_value(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty() && items.iter().all(|i| i.get("meta-type").is_some()),
        Value::Object(map) => {
            map.contains_key("query-qmp-schema") || map.get("return").is_some_and(is_schema_value)
        }
        _ => false,
    }
}

/// Every non-blank line is a JSON object, and one of them is a QMP message or schema reply.
fn is_json_lines(text: &str) -> bool {
    let mut qmp_seen = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else { return false };
        qmp_seen |= ["QMP", "return", "execute", "event", "error", "query-qmp-schema"]
            .iter()
            .any(|k| map.contains_key(*k));
    }
    qmp_seen
}

fn qapi_expressions(text: &str) -> usize {
    let mut count = 0;
    // Look for `{ 'KEY':` with any whitespace between the tokens.
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(pos) = text.get(at..).and_then(|t| t.find('{')) {
        let after = text.get(at + pos + 1..).unwrap_or("").trim_start();
        if let Some(quoted) = after.strip_prefix('\'') {
            if QAPI_KEYS.iter().any(|k| {
                quoted
                    .strip_prefix(k)
                    .and_then(|r| r.strip_prefix('\''))
                    .is_some_and(|r| r.trim_start().starts_with(':'))
            }) {
                count += 1;
            }
        }
        at += pos + 1;
        if at >= bytes.len() {
            break;
        }
    }
    count
}

fn hx_markers(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            let body = l.trim_start_matches(['+', '-', ' ']).trim();
            body == "SQMP"
                || body == "EQMP"
                || body.starts_with(".args_type")
                || body.starts_with(".mhandler")
        })
        .count()
}

fn legacy_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            // Scraped pages (seed 004) use no-break spaces between words.
            let l = l.replace('\u{a0}', " ");
            let l = l.trim_start_matches(|c: char| c.is_ascii_digit() || c.is_whitespace());
            (l.starts_with("- \"") && l.contains("(json-"))
                || l.starts_with("-> { \"execute\"")
                || l.starts_with("{ \"event\"")
                || l.starts_with("<- { \"event\"")
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> String {
        let path = format!("{}/../shared/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_seed() {
        assert_eq!(detect(&seed("000_6c43ee94cdfc87ea.txt")), Some(SourceKind::Legacy));
        assert_eq!(detect(&seed("001_c6909e2e14ac2656.txt")), Some(SourceKind::Legacy));
        assert_eq!(detect(&seed("002_93f31401e52ab94f.txt")), Some(SourceKind::Hx));
        assert_eq!(detect(&seed("003_3e9b81ae133ae229.txt")), Some(SourceKind::Qapi));
        assert_eq!(detect(&seed("004_2c2e15d7dcde0b66.txt")), Some(SourceKind::Legacy));
    }

    #[test]
    fn introspection_shapes() {
        let schema =
            r#"[{"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1"}]"#;
        assert_eq!(detect(schema), Some(SourceKind::Introspect));
        let reply = format!(r#"{{"return": {schema}}}"#);
        assert_eq!(detect(&reply), Some(SourceKind::Introspect));
        assert_eq!(detect(r#"{"greeting": {}, "query-qmp-schema": []}"#), Some(SourceKind::Introspect));
        let lines = "{\"QMP\": {\"version\": {}}}\n{\"return\": {}}\n";
        assert_eq!(detect(lines), Some(SourceKind::Introspect));
    }

    #[test]
    fn json_that_is_not_a_schema() {
        assert_eq!(detect(r#"[{"name": "x"}]"#), None);
        assert_eq!(detect(r#"{"return": {}}"#), None);
        assert_eq!(detect("[]"), None);
    }

    #[test]
    fn qapi_single_and_multi_line() {
        assert_eq!(detect("# x\n{ 'include': 'common.json' }\n"), Some(SourceKind::Qapi));
        let multi = "##\n# @Foo:\n##\n{\n  'struct' : 'Foo',\n  'data': { 'a': 'int' } }\n";
        assert_eq!(detect(multi), Some(SourceKind::Qapi));
        assert_eq!(detect("## # @x: ## { 'command': 'x' }"), Some(SourceKind::Qapi));
    }

    #[test]
    fn hx_and_legacy() {
        assert_eq!(
            detect("    {\n        .name = \"x\",\n        .args_type = \"\",\n"),
            Some(SourceKind::Hx)
        );
        assert_eq!(detect("+SQMP\n+x\n"), Some(SourceKind::Hx));
        assert_eq!(detect("x\n-\n- \"a\": thing (json-int)\n"), Some(SourceKind::Legacy));
        assert_eq!(detect("12 -> { \"execute\": \"stop\" }\n"), Some(SourceKind::Legacy));
        assert_eq!(detect("just some words\n"), None);
    }
}
