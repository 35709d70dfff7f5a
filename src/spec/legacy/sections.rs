//! Cutting a legacy document into one section per command or event.
//!
//! A section normally opens with a header (`name` over a `-----` line). Damaged copies lose
//! headers (seed 000) or their underlines (`dump` in seed 001), so a section also begins:
//! at a bare name line between an example and a description; after a section's examples,
//! at a line that starts a table (`Arguments:`, `- "x": ...`, `Return ...`) or at prose
//! followed by an example of a command the section has not named yet; and, in numbered
//! documents, at prose after a gap of several missing lines in a section with no example.

use super::example::{collect, example_start, ExampleBlock};
use super::lines::Line;
use super::text::{is_note_start, is_structural};

/// A section header: the `name` line over a `-----` line (or a bare name line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// The header text.
    pub text: String,
    /// Its line.
    pub line: u32,
    /// Whether the text is a command/event name (not a title like "Show rocker switch").
    pub is_name: bool,
    /// Length of the underline, `None` for a bare name line without one.
    pub underline: Option<usize>,
}

/// One piece of a section body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A prose or table line.
    Text(Line),
    /// A whole example.
    Example(ExampleBlock),
}

/// The lines of one command or event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Section {
    /// The header, if the section has one.
    pub header: Option<Header>,
    /// Body units in document order.
    pub units: Vec<Unit>,
}

impl Section {
    /// The line the section starts at.
    pub fn first_line(&self) -> u32 {
        if let Some(h) = &self.header {
            return h.line;
        }
        match self.units.first() {
            Some(Unit::Text(l)) => l.no,
            Some(Unit::Example(e)) => e.line,
            None => 0,
        }
    }

    fn has_examples(&self) -> bool {
        self.units.iter().any(|u| matches!(u, Unit::Example(_)))
    }

    /// Names this section answers to: a header name plus every command its requests execute.
    fn names(&self) -> Vec<&str> {
        let header = self.header.iter().filter(|h| h.is_name).map(|h| h.text.as_str());
        let examples = self.units.iter().filter_map(|u| match u {
            Unit::Example(e) if e.direction == crate::spec::Direction::Request => e.name.as_deref(),
            _ => None,
        });
        header.chain(examples).collect()
    }
}

/// A header, a chapter title (`====` underline) or a body unit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Header(Header),
    Chapter,
    Unit(Unit),
}

/// A gap of at least this many line numbers before prose means lost lines (a header) when
/// the section has not shown an example yet.
const SECTION_GAP: u32 = 5;

/// Cuts prepared lines into sections; `numbered` says line-number gaps mean lost lines.
/// Lines before the first section come out as a section without header (callers skip
/// those that name nothing).
pub(crate) fn split(lines: &[Line], events_doc: bool, numbered: bool) -> Vec<Section> {
    let pieces = pieces(lines, events_doc);
    let mut sections: Vec<Section> = Vec::new();
    let mut current = Section::default();
    let mut note_mode = false;
    let mut boundary_at: Option<usize> = None;
    let mut previous_no: Option<u32> = None;
    for (index, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Chapter => {
                flush(&mut sections, &mut current);
                note_mode = false;
            }
            Piece::Header(h) => {
                flush(&mut sections, &mut current);
                current.header = Some(h.clone());
                note_mode = false;
                previous_no = Some(h.line);
            }
            Piece::Unit(Unit::Example(e)) => {
                current.units.push(Unit::Example(e.clone()));
                note_mode = false;
                previous_no = Some(e.line);
            }
            Piece::Unit(Unit::Text(line)) => {
                let gap = previous_no.map_or(0, |p| line.no.saturating_sub(p));
                previous_no = Some(line.no);
                if boundary_at == Some(index) {
                    boundary_at = None;
                    flush(&mut sections, &mut current);
                    note_mode = false;
                } else if boundary_at.is_none() {
                    match text_boundary(&pieces, index, &current, note_mode, numbered.then_some(gap)) {
                        Boundary::Here => {
                            flush(&mut sections, &mut current);
                            note_mode = false;
                        }
                        Boundary::At(k) => boundary_at = Some(k),
                        Boundary::None => {}
                    }
                }
                if current.has_examples() && is_note_start(&line.text) {
                    note_mode = true;
                }
                current.units.push(Unit::Text(line.clone()));
            }
        }
    }
    flush(&mut sections, &mut current);
    sections
}

/// Where a new section starts, seen from a prose line.
enum Boundary {
    None,
    Here,
    At(usize),
}

/// Decides whether the text piece at `index` (or a later prose line of its run) starts a
/// new section.
fn text_boundary(
    pieces: &[Piece],
    index: usize,
    current: &Section,
    note_mode: bool,
    gap: Option<u32>,
) -> Boundary {
    let Some(Piece::Unit(Unit::Text(line))) = pieces.get(index) else { return Boundary::None };
    if current.units.is_empty() && current.header.is_none() {
        return Boundary::None;
    }
    if !current.has_examples() {
        let plain = !is_structural(&line.text) && !is_note_start(&line.text);
        let starts_sentence = line.text.chars().next().is_some_and(char::is_uppercase);
        if plain && starts_sentence && gap.is_some_and(|g| g >= SECTION_GAP) && !current.units.is_empty() {
            return Boundary::Here;
        }
        return Boundary::None;
    }
    // Leftovers of an example whose other lines were lost (`"name": "bootindex",`).
    if is_note_start(&line.text) || line.text.starts_with(['"', '{', '}', '[', ']']) {
        return Boundary::None;
    }
    if is_structural(&line.text) {
        return Boundary::Here;
    }
    // Plain prose after examples: a caption, a note's continuation or a new description.
    let run_end = (index..pieces.len())
        .find(|&j| !matches!(&pieces[j], Piece::Unit(Unit::Text(l)) if is_plain(&l.text)))
        .unwrap_or(pieces.len());
    match pieces.get(run_end) {
        Some(Piece::Unit(Unit::Example(e))) if e.direction == crate::spec::Direction::Request => {
            let known = e.name.as_deref().map_or(true, |n| current.names().contains(&n));
            if known {
                Boundary::None
            } else if note_mode {
                split_run(pieces, index, run_end)
            } else {
                Boundary::Here
            }
        }
        Some(Piece::Unit(Unit::Text(_))) if !note_mode => Boundary::Here,
        _ => Boundary::None,
    }
}

/// Inside a note's run of prose, the new section starts after the widest line gap (the
/// latest one on ties: captions are short).
fn split_run(pieces: &[Piece], start: usize, end: usize) -> Boundary {
    let mut best: Option<(u32, usize)> = None;
    let mut previous: Option<u32> = None;
    for (offset, piece) in pieces.get(start..end).unwrap_or_default().iter().enumerate() {
        let Piece::Unit(Unit::Text(l)) = piece else { continue };
        if let Some(p) = previous {
            let gap = l.no.saturating_sub(p);
            if best.map_or(true, |(g, _)| gap >= g) {
                best = Some((gap, start + offset));
            }
        }
        previous = Some(l.no);
    }
    match best {
        Some((_, k)) => Boundary::At(k),
        None => Boundary::None,
    }
}

/// Prose that neither starts a table nor a note.
fn is_plain(text: &str) -> bool {
    !is_structural(text) && !is_note_start(text)
}

fn flush(sections: &mut Vec<Section>, current: &mut Section) {
    let done = std::mem::take(current);
    if done.header.is_some() || !done.units.is_empty() {
        sections.push(done);
    }
}

/// Classifies lines into headers, chapters, examples and prose.
fn pieces(lines: &[Line], events_doc: bool) -> Vec<Piece> {
    let mut out = Vec::with_capacity(lines.len());
    let mut index = 0;
    while let Some(line) = lines.get(index) {
        let next = lines.get(index + 1);
        if let Some(underline) = next.and_then(|n| underline_of(&n.text, '-')) {
            if can_be_header(&line.text) {
                let is_name = is_name_token(&line.text, events_doc);
                out.push(Piece::Header(Header {
                    text: line.text.to_string(),
                    line: line.no,
                    is_name,
                    underline: Some(underline),
                }));
                index += 2;
                continue;
            }
        }
        if next.and_then(|n| underline_of(&n.text, '=')).is_some() && can_be_header(&line.text) {
            out.push(Piece::Chapter);
            index += 2;
            continue;
        }
        if example_start(line, events_doc).is_some() {
            if let Some((example, after)) = collect(lines, index, events_doc) {
                out.push(Piece::Unit(Unit::Example(example)));
                index = after.max(index + 1);
                continue;
            }
        }
        if !events_doc && is_bare_header(lines, index) {
            out.push(Piece::Header(Header {
                text: line.text.to_string(),
                line: line.no,
                is_name: true,
                underline: None,
            }));
            index += 1;
            continue;
        }
        out.push(Piece::Unit(Unit::Text(line.clone())));
        index += 1;
    }
    out
}

/// Length of an underline made of `c` (at least 3 of them).
fn underline_of(text: &str, c: char) -> Option<usize> {
    (text.len() >= 3 && text.chars().all(|x| x == c)).then_some(text.len())
}

/// Whether a line may be a header's text.
fn can_be_header(text: &str) -> bool {
    !text.starts_with('-') && !text.starts_with('=') && !text.starts_with('{') && !text.starts_with('"')
}

/// Whether header text is a command or event name rather than a title.
pub(crate) fn is_name_token(text: &str, events_doc: bool) -> bool {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let case_ok = if events_doc {
        text.chars().all(|c| !c.is_ascii_lowercase())
    } else {
        text.chars().any(|c| c.is_ascii_lowercase())
    };
    first_ok && rest_ok && case_ok
}

/// A command name alone on a line, right after an example or a sentence and before a
/// description: a header that lost its underline.
fn is_bare_header(lines: &[Line], index: usize) -> bool {
    let (Some(line), Some(prev), Some(next)) =
        (lines.get(index), index.checked_sub(1).and_then(|i| lines.get(i)), lines.get(index + 1))
    else {
        return false;
    };
    let text = &*line.text;
    let name_like = text.len() >= 2
        && text.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let after_end = prev.text.ends_with(['}', ']', '.', ')']);
    let before_start =
        next.text.chars().next().is_some_and(|c| c.is_uppercase()) || next.text.starts_with("- ");
    name_like && after_end && before_start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(numbered: &[(u32, &str)]) -> Vec<Line> {
        numbered.iter().map(|(no, t)| Line { no: *no, indent: 0, text: (*t).into() }).collect()
    }

    #[test]
    fn headed_sections_split_at_headers() {
        let l = lines(&[
            (1, "stop"),
            (2, "----"),
            (3, "Stop it."),
            (4, r#"-> { "execute": "stop" }"#),
            (5, "cont"),
            (6, "----"),
            (7, "Resume."),
        ]);
        let s = split(&l, false, true);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].header.as_ref().map(|h| h.text.as_str()), Some("stop"));
        assert_eq!(s[1].units.len(), 1);
    }

    #[test]
    fn headerless_section_starts_at_new_description() {
        let l = lines(&[
            (10, r#"-> { "execute": "a" }"#),
            (11, r#"<- { "return": {} }"#),
            (16, "Do b."),
            (20, r#"-> { "execute": "b" }"#),
            (22, "Caption for another b"),
            (23, r#"-> { "execute": "b" }"#),
            (30, r#"- "x": an argument (json-int)"#),
        ]);
        let s = split(&l, false, true);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].first_line(), 16);
        assert_eq!(s[1].units.len(), 4);
        assert_eq!(s[2].first_line(), 30);
    }

    #[test]
    fn example_leftovers_do_not_start_a_section() {
        let l = lines(&[
            (1, "a"),
            (2, "---"),
            (3, r#"-> { "execute": "a" }"#),
            (7, r#""name": "x","#),
            (12, "Return the b."),
            (15, r#"-> { "execute": "b" }"#),
        ]);
        let s = split(&l, false, true);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].first_line(), 12);
    }

    #[test]
    fn bare_name_after_example_is_a_header() {
        let l = lines(&[(1, r#"<- { "return": {} }"#), (2, "dump"), (3, "Dump memory.")]);
        let s = split(&l, false, true);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].header.as_ref().map(|h| (h.text.as_str(), h.underline)), Some(("dump", None)));
    }
}
