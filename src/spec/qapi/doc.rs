//! Reading a QAPI documentation block: the symbol it documents (`@Name:`), the free text,
//! and one text per `@member:` section (feature sections are kept apart).

/// A documentation block, interpreted.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct DocBlock {
    /// The documented definition (`@Name:` on the first line); `None` for free-form blocks.
    pub symbol: Option<String>,
    /// The free text: overview and tagged sections (`Since:`, `Returns:`), paragraphs
    /// separated by one blank line.
    pub body: String,
    /// `@member: text` sections, continuation lines joined with a space.
    pub members: Vec<(String, String)>,
    /// `@feature: text` sections under `Features:`.
    pub features: Vec<(String, String)>,
}

impl DocBlock {
    /// The text documenting `member`, if any.
    pub(crate) fn member(&self, member: &str) -> Option<String> {
        self.members.iter().find(|(name, _)| name == member).map(|(_, text)| text.clone())
    }
}

/// Where the next line goes.
enum State {
    Body,
    Member(usize),
    FeatureList,
    Feature(usize),
}

/// Interprets the lines of one doc block (markers removed).
pub(crate) fn interpret(lines: &[String]) -> DocBlock {
    let mut doc = DocBlock::default();
    let mut body: Vec<&str> = Vec::new();
    let mut lines = lines.iter().map(|l| l.trim()).skip_while(|l| l.is_empty()).peekable();
    if let Some(first) = lines.peek() {
        if let Some(symbol) = symbol_line(first) {
            doc.symbol = Some(symbol.to_string());
            lines.next();
        }
    }
    let mut state = State::Body;
    for line in lines {
        if line.is_empty() {
            state = match state {
                State::Feature(_) | State::FeatureList => State::FeatureList,
                _ => State::Body,
            };
            body.push("");
            continue;
        }
        if line == "Features:" {
            state = State::FeatureList;
            continue;
        }
        if let Some((name, text)) = section_line(line) {
            if matches!(state, State::FeatureList | State::Feature(_)) {
                doc.features.push((name.to_string(), text.to_string()));
                state = State::Feature(doc.features.len() - 1);
            } else {
                doc.members.push((name.to_string(), text.to_string()));
                state = State::Member(doc.members.len() - 1);
            }
            continue;
        }
        match state {
            State::Member(i) => append(&mut doc.members[i].1, line),
            State::Feature(i) => append(&mut doc.features[i].1, line),
            State::Body | State::FeatureList => {
                state = State::Body;
                body.push(line);
            }
        }
    }
    doc.body = join_paragraphs(&body);
    doc
}

/// `@Name:` alone on a line: the documented symbol.
fn symbol_line(line: &str) -> Option<&str> {
    let name = line.strip_prefix('@')?.strip_suffix(':')?;
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some(name)
}

/// `@name: text` (or `@name:` alone): a member or feature section.
fn section_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('@')?;
    let colon = rest.find(':')?;
    let name = &rest[..colon];
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.*".contains(c));
    let text = &rest[colon + 1..];
    (valid && (text.is_empty() || text.starts_with(char::is_whitespace))).then(|| (name, text.trim()))
}

fn append(text: &mut String, line: &str) {
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(line);
}

/// Lines joined with `\n`, runs of blank lines collapsed to one, ends trimmed.
fn join_paragraphs(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut blank = false;
    for line in lines {
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            out.push_str("\n\n");
        } else if !out.is_empty() {
            out.push('\n');
        }
        blank = false;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn symbol_members_features_and_body() {
        let doc = interpret(&lines(&[
            "@Thing:",
            "",
            "Overview line one",
            "line two.",
            "",
            "@a: first member",
            "    continued here",
            "@b:",
            "",
            "Features:",
            "",
            "@deprecated: do not use",
            "",
            "Since: 1.0",
        ]));
        assert_eq!(doc.symbol.as_deref(), Some("Thing"));
        assert_eq!(doc.body, "Overview line one\nline two.\n\nSince: 1.0");
        assert_eq!(
            doc.members,
            vec![("a".into(), "first member continued here".into()), ("b".into(), "".into())]
        );
        assert_eq!(doc.features, vec![("deprecated".into(), "do not use".into())]);
    }

    #[test]
    fn free_form_block_has_no_symbol() {
        let doc = interpret(&lines(&["= Migration"]));
        assert_eq!(doc.symbol, None);
        assert_eq!(doc.body, "= Migration");
    }
}
