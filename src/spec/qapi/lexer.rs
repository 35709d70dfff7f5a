//! Tokens of the QAPI schema language: structural characters, single-quoted strings,
//! booleans and documentation blocks, each with its line:column.
//!
//! Comments normally end at a line break. A *flattened* file (one whose newlines became
//! spaces, like seed 003) has no line breaks, so its comments are ended by what follows
//! instead; see [`Lexer::skip_comment`] for the rules and why they hold for QEMU's files.

/// A position in the text: 1-based line and column (in characters) plus the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
    /// Byte offset into the text.
    pub offset: usize,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `:`
    Colon,
    /// `,`
    Comma,
    /// A single-quoted string, quotes removed.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A documentation block (`##` ... `##`): its lines with the `#` markers removed.
    Doc(Vec<String>),
    /// Text that is no token (a double-quoted string, a bare word).
    Stray(String),
    /// A string without its closing quote.
    Unterminated,
    /// End of the text.
    Eof,
}

impl Tok {
    /// How a message names this token when it was not what the parser expected.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Colon => "':'".into(),
            Tok::Comma => "','".into(),
            Tok::Str(s) => format!("string '{}'", shorten(s)),
            Tok::Bool(b) => format!("'{b}'"),
            Tok::Doc(_) => "a documentation comment".into(),
            Tok::Stray(s) => format!("'{}'", shorten(s)),
            Tok::Unterminated => "a string without its closing quote".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// At most 40 characters of `text`, for messages.
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    /// The token.
    pub tok: Tok,
    /// Its first character.
    pub pos: Pos,
}

/// Meta keys that open a top-level expression; a `{` followed by one of them quoted and a
/// `:` is taken as the start of an expression when a flattened comment must end.
const EXPR_KEYS: [&str; 8] =
    ["struct", "union", "alternate", "enum", "command", "event", "include", "pragma"];

/// Splits a QAPI text into tokens.
pub(crate) struct Lexer<'a> {
    text: &'a str,
    pos: Pos,
    /// Nesting depth of `{`/`[` handed out so far (doc blocks exist only at depth 0).
    depth: u32,
    /// True when the text has no line breaks, so comments end by the flattened rules.
    flattened: bool,
    /// Lexical problems met (position, message), taken by the parser.
    problems: Vec<(Pos, String)>,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        let flattened = !text.trim_end().contains('\n');
        Lexer { text, pos: Pos { line: 1, col: 1, offset: 0 }, depth: 0, flattened, problems: Vec::new() }
    }

    /// Lexical problems met since the last call.
    pub(crate) fn take_problems(&mut self) -> Vec<(Pos, String)> {
        std::mem::take(&mut self.problems)
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos.offset..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos.offset += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn bump_bytes(&mut self, bytes: usize) {
        let end = self.pos.offset + bytes;
        while self.pos.offset < end && self.bump().is_some() {}
    }

    /// The character before the current position, if any.
    fn prev_char(&self) -> Option<char> {
        self.text.get(..self.pos.offset).and_then(|s| s.chars().next_back())
    }

    /// The next token.
    pub(crate) fn next_token(&mut self) -> Token {
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            let pos = self.pos;
            let Some(c) = self.peek() else { return Token { tok: Tok::Eof, pos } };
            let tok = match c {
                '#' => {
                    if self.depth == 0 && self.at_doc_start() {
                        let lines = self.doc_block();
                        return Token { tok: Tok::Doc(lines), pos };
                    }
                    self.skip_comment();
                    continue;
                }
                '{' | '[' => {
                    self.bump();
                    self.depth += 1;
                    if c == '{' {
                        Tok::LBrace
                    } else {
                        Tok::LBracket
                    }
                }
                '}' | ']' => {
                    self.bump();
                    self.depth = self.depth.saturating_sub(1);
                    if c == '}' {
                        Tok::RBrace
                    } else {
                        Tok::RBracket
                    }
                }
                ':' => {
                    self.bump();
                    Tok::Colon
                }
                ',' => {
                    self.bump();
                    Tok::Comma
                }
                '\'' => self.string(),
                _ if self.rest().starts_with("true") => {
                    self.bump_bytes(4);
                    Tok::Bool(true)
                }
                _ if self.rest().starts_with("false") => {
                    self.bump_bytes(5);
                    Tok::Bool(false)
                }
                _ => self.stray(),
            };
            return Token { tok, pos };
        }
    }

    /// A single-quoted string; `\` takes the next character literally.
    fn string(&mut self) -> Tok {
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return Tok::Unterminated,
                Some('\'') => return Tok::Str(value),
                Some('\\') => match self.bump() {
                    None | Some('\n') => return Tok::Unterminated,
                    Some(c) => value.push(c),
                },
                Some(c) => value.push(c),
            }
        }
    }

    /// A run of characters that belong to no token, up to the next structural character,
    /// space or quote.
    fn stray(&mut self) -> Tok {
        let mut text = String::new();
        if let Some(c) = self.bump() {
            text.push(c);
            if c == '"' {
                // A double-quoted string (JSON habit): name it whole.
                while let Some(c) = self.peek().filter(|c| *c != '\n') {
                    text.push(c);
                    self.bump();
                    if c == '"' {
                        break;
                    }
                }
                return Tok::Stray(text);
            }
        }
        while let Some(c) = self.peek() {
            if c.is_whitespace() || "[]{}:,'\"#".contains(c) {
                break;
            }
            text.push(c);
            self.bump();
        }
        Tok::Stray(text)
    }

    /// Whether the `#` here opens a documentation block.
    fn at_doc_start(&self) -> bool {
        let rest = self.rest();
        if !rest.starts_with("##") {
            return false;
        }
        if self.flattened {
            // `##` stands alone as a word in a flattened file.
            let after = rest[2..].chars().next();
            let before = self.prev_char();
            return after.map_or(true, char::is_whitespace) && before.map_or(true, char::is_whitespace);
        }
        true
    }

    /// Reads a documentation block from its opening `##` to its closing `##`.
    fn doc_block(&mut self) -> Vec<String> {
        if self.flattened {
            self.flat_doc_block()
        } else {
            self.line_doc_block()
        }
    }

    fn line_doc_block(&mut self) -> Vec<String> {
        let opening = self.take_line();
        if opening.trim_end() != "##" {
            self.problems.push((self.pos, "junk after '##' at start of documentation comment".into()));
        }
        let mut lines = Vec::new();
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            let here = self.pos;
            if self.peek() != Some('#') {
                self.problems.push((here, "documentation comment must end with '##'".into()));
                return lines;
            }
            let line = self.take_line();
            if line.starts_with("##") {
                if line.trim_end() != "##" {
                    self.problems.push((here, "junk after '##' at end of documentation comment".into()));
                }
                return lines;
            }
            let text = &line[1..];
            lines.push(text.strip_prefix(' ').unwrap_or(text).trim_end().to_string());
        }
    }

    /// The rest of the current line, consuming its line break.
    fn take_line(&mut self) -> String {
        let rest = self.rest();
        let end = rest.find('\n').unwrap_or(rest.len());
        let line = rest[..end].to_string();
        self.bump_bytes(end);
        self.bump();
        line
    }

    /// A flattened doc block: the text up to the next `##` word, split into lines at each
    /// `#` word (a `#` with space or an end on both sides).
    fn flat_doc_block(&mut self) -> Vec<String> {
        self.bump_bytes(2);
        let rest = self.rest();
        let (body_len, closed) = match find_doc_marker(rest) {
            Some(i) => (i, true),
            None => (rest.len(), false),
        };
        let body = &rest[..body_len];
        let lines = split_flat_lines(body);
        self.bump_bytes(body_len);
        if closed {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            self.bump_bytes(2);
        } else {
            self.problems.push((self.pos, "documentation comment must end with '##'".into()));
        }
        lines
    }

    /// Skips a comment that is not a documentation block.
    ///
    /// A line break always ends it. In a flattened file:
    /// - at top level the comment ends before the next `##` word (a doc block) or the next
    ///   `{` followed by a quoted meta key and `:` (`{ 'struct':`, `{ 'include':`, ...);
    /// - inside an expression it ends before the next quoted string followed by `:`, `,`,
    ///   `]`, `}` or `#` (a key or a list element: QEMU's comments in expressions annotate
    ///   list elements, as pragma.json does), before a `}` or `]` after a space, or before a
    ///   `{` that starts an expression.
    pub(crate) fn skip_comment(&mut self) {
        self.bump();
        while let Some(c) = self.peek() {
            if c == '\n' {
                return;
            }
            if self.flattened && self.comment_ends_here(c) {
                return;
            }
            self.bump();
        }
    }

    fn comment_ends_here(&self, c: char) -> bool {
        let rest = self.rest();
        if c == '{' && expr_start(rest) {
            return true;
        }
        let after_space = self.prev_char().is_some_and(char::is_whitespace);
        if self.depth == 0 {
            // Only a `##` word right here: searching further would make comments quadratic.
            let marker_here =
                rest.starts_with("##") && rest.as_bytes().get(2).map_or(true, u8::is_ascii_whitespace);
            return c == '#' && after_space && marker_here;
        }
        match c {
            '}' | ']' => after_space,
            '\'' => quoted_then_delimiter(rest),
            _ => false,
        }
    }

    /// Moves to `pos` (a position handed out earlier) and then forward to the next place a
    /// top-level expression or doc block may start, skipping at least one character when
    /// `skip_one` is set. Nesting depth is reset to 0.
    pub(crate) fn resync(&mut self, pos: Pos, skip_one: bool) {
        self.pos = pos;
        self.depth = 0;
        if skip_one {
            self.bump();
        }
        while let Some(c) = self.peek() {
            let rest = self.rest();
            if c == '{' && expr_start(rest) {
                return;
            }
            if c == '#' && rest.starts_with("##") {
                let at_line_start = self
                    .text
                    .get(..self.pos.offset)
                    .map(|before| before.trim_end_matches([' ', '\t']))
                    .map_or(true, |b| b.is_empty() || b.ends_with('\n'));
                if (self.flattened && self.at_doc_start()) || (!self.flattened && at_line_start) {
                    return;
                }
            }
            self.bump();
        }
    }
}

/// Whether `text` starts with `{`, a quoted meta key and `:`.
fn expr_start(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('{') else { return false };
    let Some(rest) = rest.trim_start().strip_prefix('\'') else { return false };
    EXPR_KEYS.iter().any(|key| {
        rest.strip_prefix(key)
            .and_then(|r| r.strip_prefix('\''))
            .is_some_and(|r| r.trim_start().starts_with(':'))
    })
}

/// Whether `text` starts with a quoted string followed by `:`, `,`, `]`, `}` or another
/// comment (the last element of a list, annotated as pragma.json does).
fn quoted_then_delimiter(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('\'') else { return false };
    let Some(close) = rest.find(['\'', '\n']) else { return false };
    let after = rest[close..].strip_prefix('\'').map(str::trim_start);
    after.is_some_and(|a| a.starts_with([':', ',', ']', '}', '#']))
}

/// Byte offset of the next `##` word in `text` (the whitespace before it belongs to the
/// body): a `##` with whitespace or an end on both sides.
fn find_doc_marker(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text.get(from..).and_then(|t| t.find("##")).map(|i| i + from) {
        let before_ok = i == 0 || bytes.get(i - 1).is_some_and(u8::is_ascii_whitespace);
        let after_ok = bytes.get(i + 2).map_or(true, u8::is_ascii_whitespace);
        if before_ok && after_ok {
            // Point at the whitespace run before the marker so the body excludes it.
            let start = text[..i].trim_end().len();
            return Some(start);
        }
        from = i + 2;
        while bytes.get(from) == Some(&b'#') {
            from += 1;
        }
    }
    None
}

/// Splits a flattened doc body into its lines: at each `#` that has whitespace (or an end)
/// on both sides. Lines are trimmed.
fn split_flat_lines(body: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = body.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b != b'#' {
            continue;
        }
        let before_ok = i == 0 || bytes.get(i - 1).is_some_and(u8::is_ascii_whitespace);
        let after_ok = bytes.get(i + 1).map_or(true, u8::is_ascii_whitespace);
        if before_ok && after_ok {
            lines.push(body.get(start..i).unwrap_or("").trim().to_string());
            start = i + 1;
        }
    }
    lines.push(body.get(start..).unwrap_or("").trim().to_string());
    // The text before the first `#` is the space after the opening `##`.
    if lines.first().is_some_and(String::is_empty) {
        lines.remove(0);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        let mut lexer = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn flattened_comment_ends_at_expression_start() {
        let text = "# header # more { 'command': 'x' }";
        assert_eq!(
            toks(text)[..4],
            [Tok::LBrace, Tok::Str("command".into()), Tok::Colon, Tok::Str("x".into())]
        );
    }

    #[test]
    fn flattened_doc_block_lines() {
        let text = "## # @X: # # Some text. # # @a: member a # continued # ## { 'struct': 'X' }";
        let t = toks(text);
        assert_eq!(
            t[0],
            Tok::Doc(vec![
                "@X:".into(),
                "".into(),
                "Some text.".into(),
                "".into(),
                "@a: member a".into(),
                "continued".into(),
                "".into()
            ])
        );
        assert_eq!(t[1], Tok::LBrace);
    }

    #[test]
    fn flattened_comment_inside_list_ends_at_element() {
        let text = "{ 'pragma': { 'x': [ # visible in: 'A', # query-a 'B' ] } }";
        let strs: Vec<Tok> = toks(text).into_iter().filter(|t| matches!(t, Tok::Str(_))).collect();
        assert_eq!(
            strs,
            [Tok::Str("pragma".into()), Tok::Str("x".into()), Tok::Str("A".into()), Tok::Str("B".into())]
        );
    }

    #[test]
    fn line_comments_end_at_newline() {
        let text = "# a { 'struct': 'no' }\n{ 'enum': 'E' } # trailing\n";
        assert_eq!(toks(text).len(), 5);
    }

    #[test]
    fn columns_count_characters() {
        let mut lexer = Lexer::new("\n  { 'é': 'x' }");
        assert_eq!(lexer.next_token().pos, Pos { line: 2, col: 3, offset: 3 });
        let key = lexer.next_token();
        assert_eq!(key.pos.col, 5);
        assert_eq!(lexer.next_token().pos.col, 8);
    }
}
