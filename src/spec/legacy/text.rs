//! Line classifiers shared by the sectioning and the table parser: what a line of legacy
//! prose is (a member item, a note, the start of a table or of a return description).

/// The head of a member item such as `- "device": device name (json-string)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemHead {
    /// The member name.
    pub name: String,
    /// The text after the name and its colon.
    pub rest: String,
    /// Whether the colon after the name is there (`- "setup-time" amount ...` lacks it).
    pub colon: bool,
}

/// Parses a member item line: `- "name": rest`, `- "name" rest` or `- name: rest`.
pub(crate) fn item_head(text: &str) -> Option<ItemHead> {
    let (name, rest, colon) = item_parts(text)?;
    Some(ItemHead { name: name.to_string(), rest: rest.to_string(), colon })
}

/// [`item_head`] without copying: name, rest and whether the colon is there.
fn item_parts(text: &str) -> Option<(&str, &str, bool)> {
    let body = text.strip_prefix('-')?;
    if !body.starts_with(char::is_whitespace) {
        return None;
    }
    let body = body.trim_start();
    if let Some(quoted) = body.strip_prefix('"') {
        let end = quoted.find('"')?;
        let name = quoted.get(..end)?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        let after = quoted.get(end + 1..)?.trim_start();
        return Some(match after.strip_prefix(':') {
            Some(r) => (name, r.trim_start(), true),
            None => (name, after, false),
        });
    }
    let name_len =
        body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(body.len());
    let name = body.get(..name_len)?;
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return None;
    }
    let rest = body.get(name_len..)?.trim_start().strip_prefix(':')?;
    Some((name, rest.trim_start(), true))
}

/// Whether a line is a member item.
pub(crate) fn is_member_item(text: &str) -> bool {
    item_parts(text).is_some()
}

/// A `- something` line that is not a member item (a note under the previous member, such
/// as `- Possible values: ...`).
pub(crate) fn sub_bullet(text: &str) -> Option<&str> {
    let body = text.strip_prefix('-')?;
    (body.starts_with(char::is_whitespace) && !is_member_item(text)).then(|| body.trim_start())
}

/// Whether a line opens a note (`Note:`, `Notes:`, `Warning:`, `(1) ...`).
pub(crate) fn is_note_start(text: &str) -> bool {
    if ["Note", "NOTE", "Warning"].iter().any(|p| text.starts_with(p)) {
        return true;
    }
    let Some(inner) = text.strip_prefix('(') else { return false };
    let digits = inner.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && inner.get(digits..).is_some_and(|r| r.starts_with(')'))
}

/// Whether a line opens an argument list (`Arguments:`, `Arguments: None.`).
pub(crate) fn arguments_line(text: &str) -> Option<&str> {
    let lower_prefix = text.get(..9)?;
    if !lower_prefix.eq_ignore_ascii_case("arguments") {
        return None;
    }
    let rest = text.get(9..)?.trim_start();
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix(':').map(str::trim)
}

/// Whether a line opens an event data list (`Data:`, `Data: None.`).
pub(crate) fn data_line(text: &str) -> Option<&str> {
    if text == "Data" {
        return Some("");
    }
    text.strip_prefix("Data:").map(str::trim)
}

/// Whether a line says what a command returns ("Return a json-object with ...", "Each
/// json-object contain the following:", "... the returned value is a json-array").
pub(crate) fn is_return_intro(text: &str) -> bool {
    starts_with_ignore_case(text, "return")
        || (starts_with_ignore_case(text, "each ") && contains_ignore_case(text, "json-object"))
        || contains_ignore_case(text, "returned value")
        || contains_ignore_case(text, "will be returned")
        || starts_with_ignore_case(text, "the main json-object")
        || starts_with_ignore_case(text, "each array entry")
}

/// `text.to_ascii_lowercase().starts_with(lower)` without the copy (`lower` is lowercase).
pub(crate) fn starts_with_ignore_case(text: &str, lower: &str) -> bool {
    text.as_bytes().get(..lower.len()).is_some_and(|head| head.eq_ignore_ascii_case(lower.as_bytes()))
}

/// `text.to_ascii_lowercase().contains(lower)` without the copy (`lower` is lowercase ASCII).
pub(crate) fn contains_ignore_case(text: &str, lower: &str) -> bool {
    let needle = lower.as_bytes();
    let Some((&first, _)) = needle.split_first() else { return true };
    let bytes = text.as_bytes();
    let upper = first.to_ascii_uppercase();
    let mut from = 0;
    while let Some(offset) = bytes.get(from..).and_then(|b| b.iter().position(|&c| c == first || c == upper))
    {
        let at = from + offset;
        if bytes.get(at..at + needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(needle)) {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Whether a line starts a table or another structural part of a section.
pub(crate) fn is_structural(text: &str) -> bool {
    arguments_line(text).is_some()
        || data_line(text).is_some()
        || is_member_item(text)
        || is_return_intro(text)
        || text.starts_with("Since")
}

/// Whether a line introduces examples (`Example:`, `Examples:`, `Example (1):`).
pub(crate) fn is_example_caption(text: &str) -> bool {
    text.starts_with("Example")
}

/// Every string between double quotes (and, with `single`, single quotes) in `text`.
pub(crate) fn quoted_strings(text: &str, single: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(offset) = text.get(pos..).and_then(|t| t.find(|c| c == '"' || (single && c == '\''))) {
        let start = pos + offset;
        let quote = if text.get(start..).is_some_and(|t| t.starts_with('"')) { '"' } else { '\'' };
        // A single quote right after a letter is an apostrophe (it's), not a quote.
        let apostrophe = quote == '\''
            && text.get(..start).and_then(|s| s.chars().last()).is_some_and(char::is_alphanumeric);
        pos = start + 1;
        if apostrophe {
            continue;
        }
        let Some(len) = text.get(pos..).and_then(|t| t.find(quote)) else { break };
        out.push(text.get(pos..pos + len).unwrap_or_default().to_string());
        pos += len + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_heads() {
        let h = item_head(r#"- "force": force ejection (json-bool, optional)"#).expect("item");
        assert_eq!(
            (h.name.as_str(), h.rest.as_str(), h.colon),
            ("force", "force ejection (json-bool, optional)", true)
        );
        let h = item_head(r#"- "setup-time" amount of setup"#).expect("item");
        assert!(!h.colon);
        let h = item_head("- backing-file: The backing file").expect("item");
        assert_eq!(h.name, "backing-file");
        assert!(item_head(r#"- Possible values: "utf8" (default), "base64""#).is_none());
        assert!(item_head("- if the guest has locked the tray, @force").is_none());
        assert!(item_head("-> { }").is_none());
    }

    #[test]
    fn classifiers() {
        assert!(is_note_start("(2) All boolean arguments default to false"));
        assert!(!is_note_start("(json-int)"));
        assert_eq!(arguments_line("Arguments: None."), Some("None."));
        assert_eq!(arguments_line("Arguments:"), Some(""));
        assert!(arguments_line("Argumentsx").is_none());
        assert!(is_return_intro("Each json-object contain the following:"));
        for text in
            ["RETURN x", "Each JSON-Object", "the Returned Value", "ré will be returned", "Éach", "", "r"]
        {
            let lower = text.to_ascii_lowercase();
            for needle in ["return", "each ", "json-object", "returned value", "will be returned", ""] {
                assert_eq!(contains_ignore_case(text, needle), lower.contains(needle), "{text} / {needle}");
                assert_eq!(
                    starts_with_ignore_case(text, needle),
                    lower.starts_with(needle),
                    "{text} / {needle}"
                );
            }
        }
        assert_eq!(
            quoted_strings(r#"one of 'normal', 'none' (it's) "x""#, true),
            vec!["normal", "none", "x"]
        );
    }
}
