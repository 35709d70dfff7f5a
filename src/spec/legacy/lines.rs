//! Line preparation: undoes the damage scraping did to a legacy document before any parsing.
//!
//! Seeds arrive with original line numbers glued to every line (000, 004), a web viewer's
//! header above the text (001, 004), and git-blame annotations (a commit message line plus a
//! date line) interleaved with the text (001). This module turns raw text into [`Line`]s that
//! carry the line number a reader would cite, the indentation that survived, and the text.

use std::rc::Rc;

use crate::spec::{DiagnosticKind, Source, Spec};

/// One non-blank line of the document, as the parsers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The line number to cite: the original number when the document carries them, else
    /// the physical line in the file.
    pub no: u32,
    /// Leading whitespace width (tabs count 8) that survived the scrape.
    pub indent: usize,
    /// The text, trimmed at both ends; never empty. Shared: sectioning copies lines.
    pub text: Rc<str>,
}

/// A share of number-prefixed lines at or above this marks a line-numbered document.
const NUMBERED_SHARE_PERCENT: usize = 80;

/// A document's lines after repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// Non-blank lines in order.
    pub lines: Vec<Line>,
    /// Whether the document carries its original line numbers (so gaps mean lost lines).
    pub numbered: bool,
}

/// Splits `text` into non-blank [`Line`]s, stripping line-number prefixes (keeping the
/// numbers), a header above line 1 and blame annotations. Notes what it skipped in `spec`.
pub(crate) fn prepare(text: &str, file: &str, spec: &mut Spec) -> Prepared {
    let nbsp_count = text.matches('\u{a0}').count();
    let normalized;
    let text = if nbsp_count > 0 {
        normalized = text.replace('\u{a0}', " ");
        normalized.as_str()
    } else {
        text
    };
    let raw: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let numbered = is_numbered(&raw);
    let mut out: Vec<Line> = Vec::with_capacity(raw.len());
    let mut last_physical: Option<usize> = None;
    let mut first_number_seen = false;
    let mut blame_pairs = 0usize;
    let mut first_blame_line = 0u32;
    for (index, raw_line) in raw.iter().enumerate() {
        let physical = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let (no, content) = if numbered {
            match split_number(raw_line) {
                Some((no, rest)) => {
                    first_number_seen = true;
                    (no, rest)
                }
                // A header above line 1 (gitweb, web viewer) is not part of the document.
                None if !first_number_seen => continue,
                None => (out.last().map_or(physical, |l| l.no), *raw_line),
            }
        } else {
            (physical, *raw_line)
        };
        let trimmed = content.trim();
        if trimmed.is_empty() {
            continue;
        }
        if is_blame_date(trimmed) {
            // The commit message is the physical line right above the date.
            if last_physical == Some(index.wrapping_sub(1)) && index > 0 {
                out.pop();
            }
            if blame_pairs == 0 {
                first_blame_line = no;
            }
            blame_pairs += 1;
            last_physical = None;
            continue;
        }
        out.push(Line { no, indent: indent_width(content), text: Rc::from(trimmed) });
        last_physical = Some(index);
    }
    if nbsp_count > 0 {
        let line = out.first().map_or(1, |l| l.no);
        let message = format!("read {nbsp_count} non-breaking spaces (from a web page) as plain spaces");
        spec.diag(DiagnosticKind::Recovered, Source::new(file, line), message);
    }
    if blame_pairs > 0 {
        spec.diag(
            DiagnosticKind::Damaged,
            Source::new(file, first_blame_line),
            format!(
                "skipped {blame_pairs} blame annotations (commit message and date lines) of a web viewer"
            ),
        );
    }
    Prepared { lines: out, numbered }
}

/// Whether most non-blank lines start with a line number.
fn is_numbered(raw: &[&str]) -> bool {
    let non_blank = raw.iter().filter(|l| !l.trim().is_empty()).count();
    if non_blank == 0 {
        return false;
    }
    let with_number = raw.iter().filter(|l| split_number(l).is_some()).count();
    with_number * 100 >= non_blank * NUMBERED_SHARE_PERCENT
}

/// `"123 text"` → `(123, "text")`; exactly one separating space is removed so that the
/// original indentation stays. A bare number is an empty numbered line.
fn split_number(line: &str) -> Option<(u32, &str)> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let no: u32 = line.get(..digits)?.parse().ok()?;
    let rest = line.get(digits..)?;
    if rest.is_empty() {
        return Some((no, rest));
    }
    if let Some(after) = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('\t')) {
        return Some((no, after));
    }
    None
}

/// Leading whitespace width, tabs counting 8.
fn indent_width(s: &str) -> usize {
    s.chars().take_while(|c| c.is_whitespace()).map(|c| if c == '\t' { 8 } else { 1 }).sum()
}

/// Whether a line is a blame date such as `2013-06-24 23:13:14 +08:00`.
fn is_blame_date(s: &str) -> bool {
    const TEMPLATE: &[u8] = b"dddd-dd-dd dd:dd:dd sdd:dd";
    let bytes = s.as_bytes();
    bytes.len() == TEMPLATE.len()
        && bytes.iter().zip(TEMPLATE).all(|(b, t)| match t {
            b'd' => b.is_ascii_digit(),
            b's' => *b == b'+' || *b == b'-',
            other => b == other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SourceKind;

    #[test]
    fn numbered_lines_keep_their_numbers_and_indent() {
        let mut spec = Spec::new(SourceKind::Legacy);
        let prepared = prepare("header junk\n7 foo\n9  - bar\n10\n11 baz\n", "f", &mut spec);
        assert!(prepared.numbered);
        assert_eq!(
            prepared.lines,
            vec![
                Line { no: 7, indent: 0, text: "foo".into() },
                Line { no: 9, indent: 1, text: "- bar".into() },
                Line { no: 11, indent: 0, text: "baz".into() }
            ]
        );
    }

    #[test]
    fn blame_pairs_are_dropped() {
        let mut spec = Spec::new(SourceKind::Legacy);
        let text = "a\nfix: something long\n2013-06-24 23:13:14 +08:00\nb\n";
        let lines = prepare(text, "f", &mut spec).lines;
        let texts: Vec<&str> = lines.iter().map(|l| &*l.text).collect();
        assert_eq!(texts, vec!["a", "b"]);
        assert_eq!(lines[1].no, 4);
        assert_eq!(spec.diagnostics.len(), 1);
    }
}
