//! The value grammar of QAPI expressions (objects, arrays, strings, booleans) and the
//! top-level loop that yields expressions, doc blocks and syntax errors, resynchronising
//! at the next top-level expression after an error.

use super::lexer::{shorten, Lexer, Pos, Tok, Token};

/// Nesting deeper than this is reported, not followed (QEMU's schemas nest about 4 deep).
const MAX_DEPTH: usize = 64;

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `'text'`
    Str(String),
    /// `true` / `false`
    Bool(bool),
    /// `[ ... ]`
    List(Vec<Node>),
    /// `{ 'key': value, ... }` in source order.
    Dict(Vec<Entry>),
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// The value.
    pub value: Value,
    /// Its first character.
    pub pos: Pos,
}

/// One `'key': value` of an object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key.
    pub key: String,
    /// Where the key's quote is.
    pub pos: Pos,
    /// The value.
    pub value: Node,
}

impl Node {
    /// How a message names this value's kind.
    pub(crate) fn describe(&self) -> String {
        match &self.value {
            Value::Str(s) => format!("string '{}'", shorten(s)),
            Value::Bool(b) => format!("'{b}'"),
            Value::List(_) => "an array".into(),
            Value::Dict(_) => "an object".into(),
        }
    }
}

/// A syntax error: where, and the whole message ("expected ... found ...").
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    /// Where the unexpected token starts.
    pub pos: Pos,
    /// What was expected and what was found.
    pub message: String,
}

/// One thing found at top level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// A documentation block's lines.
    Doc(Vec<String>, Pos),
    /// A complete top-level expression.
    Expr(Node),
    /// A syntax error; the parser has moved on to the next top-level expression.
    Error(SyntaxError),
}

/// Reads top-level items from a QAPI text.
pub(crate) struct Parser<'a> {
    lexer: Lexer<'a>,
    current: Token,
}

impl<'a> Parser<'a> {
    /// A parser at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        let mut lexer = Lexer::new(text);
        let current = lexer.next_token();
        Parser { lexer, current }
    }

    /// Lexical problems (doc block not closed, ...) met since the last call.
    pub(crate) fn take_problems(&mut self) -> Vec<(Pos, String)> {
        self.lexer.take_problems()
    }

    fn advance(&mut self) -> Token {
        let next = self.lexer.next_token();
        std::mem::replace(&mut self.current, next)
    }

    /// The next top-level item, or `None` at the end.
    pub(crate) fn next_item(&mut self) -> Option<Item> {
        let pos = self.current.pos;
        match &self.current.tok {
            Tok::Eof => None,
            Tok::Doc(_) => match self.advance().tok {
                Tok::Doc(lines) => Some(Item::Doc(lines, pos)),
                _ => None,
            },
            Tok::LBrace => match self.value(0) {
                Ok(node) => Some(Item::Expr(node)),
                Err(e) => {
                    let skip_one = e.pos.offset <= pos.offset;
                    self.lexer.resync(e.pos, skip_one);
                    self.current = self.lexer.next_token();
                    Some(Item::Error(e))
                }
            },
            other => {
                let e = SyntaxError {
                    pos,
                    message: format!(
                        "expected '{{' to begin a top-level expression, found {}",
                        other.describe()
                    ),
                };
                self.lexer.resync(pos, true);
                self.current = self.lexer.next_token();
                Some(Item::Error(e))
            }
        }
    }

    fn error(&self, expected: &str) -> SyntaxError {
        SyntaxError {
            pos: self.current.pos,
            message: format!("expected {expected}, found {}", self.current.tok.describe()),
        }
    }

    /// A value starting at the current token. `context` names where it sits, for messages.
    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        self.value_in(depth, "a value ('{', '[', string or boolean)")
    }

    fn value_in(&mut self, depth: usize, expected: &str) -> Result<Node, SyntaxError> {
        let pos = self.current.pos;
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("expected at most {MAX_DEPTH} levels of nesting, found more"),
            });
        }
        let value = match &self.current.tok {
            Tok::LBrace => {
                self.advance();
                Value::Dict(self.entries(depth)?)
            }
            Tok::LBracket => {
                self.advance();
                Value::List(self.elements(depth)?)
            }
            Tok::Str(_) | Tok::Bool(_) => match self.advance().tok {
                Tok::Str(s) => Value::Str(s),
                Tok::Bool(b) => Value::Bool(b),
                _ => return Err(self.error(expected)),
            },
            _ => return Err(self.error(expected)),
        };
        Ok(Node { value, pos })
    }

    /// The entries of an object whose `{` was consumed, through its `}`.
    fn entries(&mut self, depth: usize) -> Result<Vec<Entry>, SyntaxError> {
        let mut entries: Vec<Entry> = Vec::new();
        if self.current.tok == Tok::RBrace {
            self.advance();
            return Ok(entries);
        }
        let mut expected_key = "a string key or '}'";
        loop {
            let key_pos = self.current.pos;
            let key = match &self.current.tok {
                Tok::Str(s) => s.clone(),
                _ => return Err(self.error(expected_key)),
            };
            if entries.iter().any(|e| e.key == key) {
                return Err(SyntaxError {
                    pos: key_pos,
                    message: format!("expected a key not given before, found duplicate key '{key}'"),
                });
            }
            self.advance();
            if self.current.tok != Tok::Colon {
                return Err(self.error(&format!("':' after key '{key}'")));
            }
            self.advance();
            let value =
                self.value_in(depth + 1, &format!("a value ('{{', '[', string or boolean) for key '{key}'"))?;
            entries.push(Entry { key: key.clone(), pos: key_pos, value });
            match self.current.tok {
                Tok::RBrace => {
                    self.advance();
                    return Ok(entries);
                }
                Tok::Comma => {
                    self.advance();
                    expected_key = "a string key after ','";
                }
                _ => return Err(self.error(&format!("',' or '}}' after the value of key '{key}'"))),
            }
        }
    }

    /// The elements of an array whose `[` was consumed, through its `]`.
    fn elements(&mut self, depth: usize) -> Result<Vec<Node>, SyntaxError> {
        let mut elements = Vec::new();
        if self.current.tok == Tok::RBracket {
            self.advance();
            return Ok(elements);
        }
        loop {
            elements.push(self.value_in(depth + 1, "an array element ('{', '[', string or boolean)")?);
            match self.current.tok {
                Tok::RBracket => {
                    self.advance();
                    return Ok(elements);
                }
                Tok::Comma => {
                    self.advance();
                }
                _ => return Err(self.error("',' or ']' in array")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Vec<Item> {
        let mut p = Parser::new(text);
        std::iter::from_fn(|| p.next_item()).collect()
    }

    #[test]
    fn error_names_expectation_and_resyncs() {
        let got = items("{ 'command': 'a', 'data' }\n{ 'command': 'b' }\n");
        let Item::Error(e) = &got[0] else { panic!("{got:?}") };
        assert_eq!(e.message, "expected ':' after key 'data', found '}'");
        assert_eq!((e.pos.line, e.pos.col), (1, 26));
        let Item::Expr(n) = &got[1] else { panic!("{got:?}") };
        assert_eq!(n.pos.line, 2);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("{{ 'x': {} }}", "[".repeat(10_000));
        let got = items(&text);
        assert!(matches!(&got[0], Item::Error(e) if e.message.contains("levels of nesting")));
    }
}
