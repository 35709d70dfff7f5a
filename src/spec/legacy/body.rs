//! Reading one section's body into its parts: description, argument / return / event data
//! tables (as flat entries), notes and examples. Nesting is decided later, in `tables`.

use super::example::ExampleBlock;
use super::lines::Line;
use super::sections::{Section, Unit};
use super::text::{
    arguments_line, data_line, is_example_caption, is_note_start, is_return_intro, item_head, sub_bullet,
    ItemHead,
};

/// One member item with everything written under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// Name and first-line text.
    pub head: ItemHead,
    /// Line of the item.
    pub line: u32,
    /// Indentation of the item line.
    pub indent: usize,
    /// Continuation lines of the item's own text.
    pub cont: Vec<String>,
    /// `- ...` lines under it that are not members (`- Possible values: ...`), each with
    /// its continuation joined.
    pub subs: Vec<String>,
    /// In numbered documents, the first missing line number right after the item's text
    /// (its type may have been on it).
    pub lost_after: Option<u32>,
}

impl Item {
    /// The item's text lines: the first line after the name, then its continuations.
    pub fn text_lines(&self) -> Vec<String> {
        std::iter::once(self.head.rest.clone()).chain(self.cont.iter().cloned()).collect()
    }
}

/// An entry of a flat table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A member item.
    Item(Item),
    /// A sentence introducing the members of an object described earlier
    /// ("Clients are described by a json-object, each one contain the following:").
    Intro(String),
}

/// A flat table and where it began.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Table {
    /// Entries in document order.
    pub entries: Vec<Entry>,
    /// The line of `Arguments:`/`Data:`/the return sentence, or of the first item.
    pub line: Option<u32>,
}

impl Table {
    /// Whether the table has at least one member item.
    pub fn has_items(&self) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::Item(_)))
    }
}

/// The parts of one section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Body {
    /// Description lines.
    pub desc: Vec<String>,
    /// Argument table.
    pub args: Table,
    /// Line of an `Arguments: None.`.
    pub args_none: Option<u32>,
    /// Line of an `Arguments:` heading with no items under it while items came before it.
    pub args_listed_before_heading: Option<u32>,
    /// Return table.
    pub returns: Table,
    /// The sentences saying what is returned.
    pub returns_intro: Vec<String>,
    /// Event data table.
    pub data: Table,
    /// Line of a `Data: None.`.
    pub data_none: Option<u32>,
    /// Note paragraphs.
    pub notes: Vec<String>,
    /// Examples in order.
    pub examples: Vec<ExampleBlock>,
}

/// Which part of the section the reader is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Desc,
    Args,
    Returns,
    Data,
    Examples,
    Notes,
}

/// Splits a section body into its parts.
/// `numbered` says line-number gaps mean lost lines.
pub(crate) fn read_body(section: &Section, events_doc: bool, numbered: bool) -> Body {
    let mut reader = Reader {
        body: Body::default(),
        mode: Mode::Desc,
        last_table: None,
        last_was_sub: false,
        events_doc,
        args_heading: None,
        in_intro: false,
    };
    let mut previous: Option<u32> = None;
    for unit in &section.units {
        let no = match unit {
            Unit::Example(e) => e.line,
            Unit::Text(l) => l.no,
        };
        // Items follow each other without blank lines, so a gap before the next item is
        // lost text rather than a dropped blank line.
        let next_is_item =
            matches!(unit, Unit::Text(l) if item_head(&l.text).is_some() || sub_bullet(&l.text).is_some());
        if let (true, true, Some(p)) = (numbered, next_is_item, previous) {
            if no > p + 1 {
                reader.mark_lost(p + 1);
            }
        }
        previous = Some(no);
        match unit {
            Unit::Example(e) => {
                reader.body.examples.push(e.clone());
                reader.mode = Mode::Examples;
            }
            Unit::Text(line) => reader.line(line),
        }
    }
    if let Some((line, before)) = reader.args_heading {
        if before > 0 && before == reader.body.args.entries.len() {
            reader.body.args_listed_before_heading = Some(line);
        }
    }
    reader.body
}

struct Reader {
    body: Body,
    mode: Mode,
    last_table: Option<Mode>,
    last_was_sub: bool,
    events_doc: bool,
    /// The last `Arguments:` heading and how many entries the table had then.
    args_heading: Option<(u32, usize)>,
    /// Inside a sentence introducing nested members that has not reached its colon.
    in_intro: bool,
}

impl Reader {
    fn line(&mut self, line: &Line) {
        let text = &*line.text;
        if let Some(rest) = arguments_line(text) {
            self.args_heading = Some((line.no, self.body.args.entries.len()));
            self.enter(Mode::Args, line.no);
            if rest.to_ascii_lowercase().starts_with("none") {
                self.body.args_none = Some(line.no);
            }
        } else if let (true, Some(rest)) = (self.events_doc, data_line(text)) {
            self.enter(Mode::Data, line.no);
            if rest.to_ascii_lowercase().starts_with("none") {
                self.body.data_none = Some(line.no);
            }
        } else if is_example_caption(text) {
            self.mode = Mode::Examples;
        } else if is_note_start(text) {
            self.mode = Mode::Notes;
            self.body.notes.push(text.to_string());
        } else if let Some(head) = item_head(text) {
            self.item(head, line);
        } else if let (Some(sub), true) = (sub_bullet(text), self.in_table_with_item()) {
            if let Some(item) = self.last_item() {
                item.subs.push(sub.to_string());
            }
            self.last_was_sub = true;
        } else if !self.events_doc && is_return_intro(text) && !self.returns_has_items() {
            self.enter(Mode::Returns, line.no);
            self.body.returns_intro.push(text.to_string());
        } else {
            self.prose(text);
        }
    }

    /// Notes that the line after the last item line is missing.
    fn mark_lost(&mut self, missing: u32) {
        if !matches!(self.mode, Mode::Args | Mode::Returns | Mode::Data) || self.last_was_sub {
            return;
        }
        if let Some(item) = self.last_item() {
            if item.lost_after.is_none() {
                item.lost_after = Some(missing);
            }
        }
    }

    fn enter(&mut self, mode: Mode, no: u32) {
        self.in_intro = false;
        self.mode = mode;
        self.last_table = Some(mode);
        self.last_was_sub = false;
        if let Some(table) = self.table(mode) {
            table.line.get_or_insert(no);
        }
    }

    fn item(&mut self, head: ItemHead, line: &Line) {
        let mode = match self.mode {
            Mode::Args | Mode::Returns | Mode::Data => self.mode,
            Mode::Desc if self.events_doc => Mode::Data,
            Mode::Desc => Mode::Args,
            Mode::Examples | Mode::Notes => {
                self.last_table.unwrap_or(if self.events_doc { Mode::Data } else { Mode::Args })
            }
        };
        self.enter(mode, line.no);
        let item = Item {
            head,
            line: line.no,
            indent: line.indent,
            cont: Vec::new(),
            subs: Vec::new(),
            lost_after: None,
        };
        if let Some(table) = self.table(mode) {
            table.entries.push(Entry::Item(item));
        }
    }

    fn prose(&mut self, text: &str) {
        match self.mode {
            Mode::Desc => self.body.desc.push(text.to_string()),
            Mode::Notes => match self.body.notes.last_mut() {
                Some(note) => {
                    note.push(' ');
                    note.push_str(text);
                }
                None => self.body.notes.push(text.to_string()),
            },
            Mode::Examples => {}
            Mode::Args | Mode::Returns | Mode::Data => {
                let intro = text.starts_with(char::is_uppercase)
                    && (text.contains("json-object") || text.contains("json-array"));
                if self.in_intro {
                    // The rest of an introducing sentence.
                    self.in_intro = !text.ends_with(':');
                } else if intro && self.in_table_with_item() {
                    let mode = self.mode;
                    if let Some(table) = self.table(mode) {
                        table.entries.push(Entry::Intro(text.to_string()));
                    }
                    self.last_was_sub = false;
                    self.in_intro = !text.ends_with(':');
                } else if self.in_table_with_item() {
                    let to_sub = self.last_was_sub;
                    if let Some(item) = self.last_item() {
                        match (to_sub, item.subs.last_mut()) {
                            (true, Some(sub)) => {
                                sub.push(' ');
                                sub.push_str(text);
                            }
                            _ => item.cont.push(text.to_string()),
                        }
                    }
                } else if self.mode == Mode::Returns {
                    self.body.returns_intro.push(text.to_string());
                }
            }
        }
    }

    fn table(&mut self, mode: Mode) -> Option<&mut Table> {
        match mode {
            Mode::Args => Some(&mut self.body.args),
            Mode::Returns => Some(&mut self.body.returns),
            Mode::Data => Some(&mut self.body.data),
            _ => None,
        }
    }

    fn in_table_with_item(&mut self) -> bool {
        let mode = self.mode;
        self.table(mode).is_some_and(|t| matches!(t.entries.last(), Some(Entry::Item(_) | Entry::Intro(_))))
            && self.last_item().is_some()
    }

    fn returns_has_items(&self) -> bool {
        self.body.returns.has_items()
    }

    fn last_item(&mut self) -> Option<&mut Item> {
        let mode = self.mode;
        self.table(mode)?.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Item(i) => Some(i),
            Entry::Intro(_) => None,
        })
    }
}
