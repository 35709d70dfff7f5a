//! Framing of QMP's JSON stream: bytes in, complete JSON texts out.
//!
//! QMP is a stream of JSON texts with any whitespace between them (W1): a read may hold
//! several texts, part of one, or a text split anywhere, CRLF included. [`Decoder`] keeps
//! the unconsumed bytes and a small scanner state (depth, inside a string, after a
//! backslash) so each byte is looked at once, finds where a top-level value ends, and then
//! parses exactly that slice with serde_json (recursion limit off, stack grown on the heap
//! by serde_stacker, so QEMU's 1024-deep echoed ids parse).
//!
//! Framing is cheap next to parsing: string contents are skipped eight bytes at a time
//! (SWAR) and past 32 bytes with SIMD `memchr2`, looking for `"` and `\\` only; the bytes
//! between strings go through a class table, and a text that fills the
//! buffer is moved out of it rather than copied. Texts up to 128 deep are parsed on the
//! thread's stack (serde_json's own limit); only deeper ones take the slower serde_stacker
//! path. With a token limit the scanner goes byte by byte (the counting needs each byte).
//!
//! [`Decoder::with_unique_keys`] makes a text holding an object with a repeated key (at any
//! depth) a syntax error `duplicate key`, as QEMU's `qobject/json-parser.c` does (the
//! emulator asks for it; the client path does not pay for the check).
//!
//! Bytes from the server are untrusted: a text longer than [`DecoderConfig::max_text`] or
//! nested deeper than [`DecoderConfig::max_depth`] is an error, its bytes are dropped as
//! they arrive, and decoding resumes after it. A text that is not valid JSON is an error
//! for that text only.
//!
//! An optional token limit ([`Decoder::with_max_tokens`], off by default so the client path
//! does no counting) emulates QEMU's `MAX_TOKEN_COUNT`: the token that would make a text
//! hold more than the limit ends it with [`DecodeError::TooManyTokens`], that token and
//! everything before it are dropped, and the bytes after it are read as new texts, as
//! `qobject/json-streamer.c` does (which is why QEMU then answers every remaining token).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};

/// Limits of one [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest accepted text in bytes (default 64 MiB, QEMU's own token limit).
    pub max_text: usize,
    /// Deepest accepted nesting (default 4096; QEMU echoes ids up to 1024 deep). Bounds the
    /// recursion of dropping and printing a parsed value.
    pub max_depth: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig { max_text: 64 << 20, max_depth: 4096 }
    }
}

/// One complete JSON text taken from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    /// Byte offset of the text's first byte in the stream (0 = first byte ever fed).
    pub offset: u64,
    /// The text's bytes exactly as received (no surrounding whitespace).
    pub raw: Vec<u8>,
    /// The parsed value.
    pub value: Value,
}

/// Why a text could not be taken from the stream. Decoding continues after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A text grew past the size limit; its bytes are dropped up to its end.
    #[error("text at offset {offset} exceeds {limit} bytes")]
    TooLarge {
        /// Stream offset where the text starts.
        offset: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// A text nests deeper than the depth limit; its bytes are dropped up to its end.
    #[error("text at offset {offset} nests deeper than {limit}")]
    TooDeep {
        /// Stream offset where the text starts.
        offset: u64,
        /// The depth limit.
        limit: usize,
    },
    /// A text reached the token limit; it is dropped together with the token that would
    /// have crossed it, and decoding resumes right after that token.
    #[error("text at offset {offset} holds more than {limit} tokens")]
    TooManyTokens {
        /// Stream offset where the text starts.
        offset: u64,
        /// The token limit.
        limit: usize,
    },
    /// A delimited text is not valid JSON.
    #[error("invalid json at offset {offset} ({len} bytes, ends `{tail}`): {message}")]
    Syntax {
        /// Stream offset where the text starts.
        offset: u64,
        /// Length of the text in bytes.
        len: usize,
        /// serde_json's message (with line and column inside the text).
        message: String,
        /// The text's last bytes, escaped.
        tail: String,
    },
}

/// Incremental splitter and parser of a JSON text stream.
#[derive(Debug, Clone)]
pub struct Decoder {
    config: DecoderConfig,
    /// Unconsumed bytes; `buf[start..]` is live.
    buf: Vec<u8>,
    start: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// How far into `buf` the scanner has looked.
    scanned: usize,
    scan: Scan,
    /// Set while the bytes of an over-limit text are dropped.
    discarding: bool,
    /// Stream offset where the current text began (valid while `scan` is not `Idle`).
    text_offset: u64,
    /// Most tokens one text may hold; `None` (the default) counts nothing.
    max_tokens: Option<usize>,
    /// Tokens of the current text so far (counted only with `max_tokens`).
    tokens: usize,
    /// Whether the last byte was inside a bare token (a number or a keyword).
    bare: bool,
    /// Whether an object repeating a key makes its text a syntax error.
    unique_keys: bool,
}

/// Scanner state between reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Between texts, skipping whitespace.
    Idle,
    /// Inside a container (`{`/`[`) at `depth`, possibly inside a string.
    Container { depth: usize, in_string: bool, escaped: bool },
    /// Inside a top-level string.
    TopString { escaped: bool },
    /// Inside a top-level scalar (number or literal).
    Scalar,
}

/// What one byte did to the scanner.
enum Step {
    /// The byte belongs to no text (whitespace between texts).
    Skip,
    /// The byte starts or continues a text.
    Continue,
    /// The byte ends the current text (inclusive).
    EndIncluding,
    /// The text ended just before this byte (a scalar's delimiter); rescan the byte.
    EndBefore,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            buf: Vec::new(),
            start: 0,
            base: 0,
            scanned: 0,
            scan: Scan::Idle,
            discarding: false,
            text_offset: 0,
            max_tokens: None,
            tokens: 0,
            bare: false,
            unique_keys: false,
        }
    }

    /// The same decoder with a limit on the tokens of one text, counted as QEMU's lexer
    /// does: each of `{ } [ ] , :` and each string is one token, as is each run of other
    /// bytes outside strings (a number or a keyword); whitespace is none. A text that would
    /// hold more than `limit` tokens is [`DecodeError::TooManyTokens`].
    pub fn with_max_tokens(mut self, limit: usize) -> Self {
        self.max_tokens = Some(limit);
        self
    }

    /// The same decoder rejecting texts in which an object repeats a key, at any depth:
    /// such a text is [`DecodeError::Syntax`] with the message `duplicate key at line L
    /// column C` (C just after the repeated member's value), QEMU's parser's check.
    pub fn with_unique_keys(mut self) -> Self {
        self.unique_keys = true;
        self
    }

    /// Whether repeated keys are rejected ([`Decoder::with_unique_keys`]).
    pub fn unique_keys(&self) -> bool {
        self.unique_keys
    }

    /// The token limit, if one is set.
    pub fn max_tokens(&self) -> Option<usize> {
        self.max_tokens
    }

    /// The limits in force.
    pub fn config(&self) -> DecoderConfig {
        self.config
    }

    /// Appends bytes as they arrive from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.compact();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Total bytes fed so far (the stream offset of the next byte).
    pub fn stream_len(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Bytes fed but not yet returned as part of a text (a partial text and whitespace).
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// Signals the end of the stream: a top-level scalar still open is complete now.
    /// Returns it, or `None` when nothing or only an unfinished container remains.
    pub fn finish(&mut self) -> Option<Result<Text, DecodeError>> {
        if let Some(item) = self.next_text() {
            return Some(item);
        }
        if self.scan == Scan::Scalar && !self.discarding {
            let end = self.buf.len();
            self.scan = Scan::Idle;
            return Some(self.take_text(end));
        }
        None
    }

    /// The next complete text, if the bytes fed so far hold one.
    pub fn next_text(&mut self) -> Option<Result<Text, DecodeError>> {
        let item = if self.max_tokens.is_some() { self.next_bytewise() } else { self.next_bulk() };
        if item.is_none() && self.discarding {
            // Nothing of the dropped text needs keeping.
            self.buf.clear();
            self.base += self.scanned as u64;
            self.start = 0;
            self.scanned = 0;
        }
        item
    }

    /// [`Decoder::next_text`] without a token limit: runs of bytes at a time.
    fn next_bulk(&mut self) -> Option<Result<Text, DecodeError>> {
        loop {
            if self.scan == Scan::Idle {
                let rest = self.buf.get(self.scanned..).unwrap_or(&[]);
                let Some(skip) = rest.iter().position(|&b| !is_space(b)) else {
                    self.scanned = self.buf.len();
                    if !self.discarding {
                        self.start = self.scanned;
                    }
                    return None;
                };
                self.scanned += skip;
                if !self.discarding {
                    self.start = self.scanned;
                }
                self.text_offset = self.base + self.scanned as u64;
            }
            let (to, depth_limit) = if self.discarding {
                (self.buf.len(), usize::MAX)
            } else {
                // Stop right where the text would cross the size limit.
                let window = self.start.saturating_add(self.config.max_text).saturating_add(1);
                (self.buf.len().min(window), self.config.max_depth)
            };
            let bytes = self.buf.get(self.scanned..to).unwrap_or(&[]);
            match scan_run(&mut self.scan, bytes, depth_limit) {
                Run::End(len) => {
                    self.scanned += len;
                    self.scan = Scan::Idle;
                    if let Some(item) = self.end_text(self.scanned) {
                        return Some(item);
                    }
                }
                Run::Deep(len) => {
                    self.scanned += len;
                    self.discarding = true;
                    let limit = self.config.max_depth;
                    return Some(Err(DecodeError::TooDeep { offset: self.text_offset, limit }));
                }
                Run::More => {
                    self.scanned = to.max(self.scanned);
                    if !self.discarding && self.scanned - self.start > self.config.max_text {
                        self.discarding = true;
                        let limit = self.config.max_text;
                        return Some(Err(DecodeError::TooLarge { offset: self.text_offset, limit }));
                    }
                    return None;
                }
            }
        }
    }

    /// [`Decoder::next_text`] with a token limit: one byte at a time.
    fn next_bytewise(&mut self) -> Option<Result<Text, DecodeError>> {
        while self.scanned < self.buf.len() {
            let i = self.scanned;
            let byte = self.buf.get(i).copied().unwrap_or(b' ');
            if self.scan == Scan::Idle {
                self.text_offset = self.base + i as u64;
                self.tokens = 0;
                self.bare = false;
            }
            let was_in_string = self.max_tokens.is_some() && in_string(self.scan);
            match step(&mut self.scan, byte) {
                Step::Skip => {
                    self.scanned += 1;
                    if !self.discarding {
                        self.start = self.scanned;
                    }
                }
                Step::Continue => {
                    self.scanned += 1;
                    if let Some(err) = self.count_token(was_in_string, byte) {
                        return Some(Err(err));
                    }
                    if let Some(err) = self.check_limits() {
                        return Some(Err(err));
                    }
                }
                Step::EndIncluding => {
                    self.scanned += 1;
                    self.scan = Scan::Idle;
                    if let Some(err) = self.count_token(was_in_string, byte) {
                        return Some(Err(err));
                    }
                    if let Some(item) = self.end_text(self.scanned) {
                        return Some(item);
                    }
                }
                Step::EndBefore => {
                    self.scan = Scan::Idle;
                    self.bare = false;
                    if let Some(item) = self.end_text(i) {
                        return Some(item);
                    }
                }
            }
        }
        None
    }

    /// Counts the token `byte` (just scanned, outside a string before it when
    /// `!was_in_string`) starts, if any. Past the limit: drops the text and that token (a
    /// string or bare token is skipped to its end) and reports it.
    fn count_token(&mut self, was_in_string: bool, byte: u8) -> Option<DecodeError> {
        let limit = self.max_tokens?;
        if self.discarding || was_in_string {
            return None;
        }
        let starts = match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {
                self.bare = false;
                false
            }
            b'{' | b'}' | b'[' | b']' | b',' | b':' | b'"' => {
                self.bare = false;
                true
            }
            _ => !std::mem::replace(&mut self.bare, true),
        };
        if !starts {
            return None;
        }
        self.tokens += 1;
        if self.tokens <= limit {
            return None;
        }
        let offset = self.text_offset;
        self.tokens = 0;
        self.bare = false;
        match byte {
            b'"' => {
                self.scan = Scan::TopString { escaped: false };
                self.discarding = true;
            }
            b'{' | b'}' | b'[' | b']' | b',' | b':' => {
                self.scan = Scan::Idle;
                self.start = self.scanned;
            }
            _ => {
                self.scan = Scan::Scalar;
                self.discarding = true;
            }
        }
        Some(DecodeError::TooManyTokens { offset, limit })
    }

    /// Advances the scanner over one byte.
    /// Reports a limit the current text just crossed, and starts dropping its bytes.
    fn check_limits(&mut self) -> Option<DecodeError> {
        if self.discarding {
            return None;
        }
        let offset = self.text_offset;
        if let Scan::Container { depth, .. } = self.scan {
            if depth > self.config.max_depth {
                self.discarding = true;
                return Some(DecodeError::TooDeep { offset, limit: self.config.max_depth });
            }
        }
        let len = self.scanned.saturating_sub(self.start);
        if len > self.config.max_text {
            self.discarding = true;
            return Some(DecodeError::TooLarge { offset, limit: self.config.max_text });
        }
        None
    }

    /// Handles the end of a text at `end` (exclusive): returns it unless it was being dropped.
    fn end_text(&mut self, end: usize) -> Option<Result<Text, DecodeError>> {
        if self.discarding {
            self.discarding = false;
            self.start = end;
            return None;
        }
        let len = end.saturating_sub(self.start);
        if len > self.config.max_text {
            // A text ending in the very read that crossed the limit.
            self.start = end;
            return Some(Err(DecodeError::TooLarge {
                offset: self.text_offset,
                limit: self.config.max_text,
            }));
        }
        Some(self.take_text(end))
    }

    /// Cuts `buf[start..end]` out as one text and parses it.
    fn take_text(&mut self, end: usize) -> Result<Text, DecodeError> {
        let offset = self.text_offset;
        self.scanned = self.scanned.max(end);
        let tail_len = self.buf.len().saturating_sub(end);
        let raw = if self.start == 0 && tail_len <= end.min(MOVE_TAIL_MAX) {
            // The text fills the buffer (but for a short tail): move it out, keep the tail.
            let tail = self.buf.get(end..).unwrap_or(&[]).to_vec();
            let mut raw = std::mem::replace(&mut self.buf, tail);
            raw.truncate(end);
            self.base += end as u64;
            self.scanned = self.scanned.saturating_sub(end);
            raw
        } else {
            let raw = self.buf.get(self.start..end).unwrap_or(&[]).to_vec();
            self.start = end;
            raw
        };
        let parsed = if self.unique_keys { parse_json_unique_keys(&raw) } else { parse_json(&raw) };
        match parsed {
            Ok(value) => Ok(Text { offset, raw, value }),
            Err(e) => Err(DecodeError::Syntax {
                offset,
                len: raw.len(),
                message: error_message(&e),
                tail: escaped_tail(&raw, 48),
            }),
        }
    }

    /// Drops consumed bytes from the front of the buffer.
    fn compact(&mut self) {
        self.buf.drain(..self.start);
        self.base += self.start as u64;
        self.scanned -= self.start;
        self.start = 0;
    }
}

/// Largest tail of bytes after a text that fills the buffer copied to let the text be
/// moved out (more would cost more than copying the text).
const MOVE_TAIL_MAX: usize = 64 << 10;

/// JSON's whitespace.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// Byte classes of the bulk scanner: bytes that matter inside a container (outside its
/// strings), and bytes that end a top-level scalar.
const CONTAINER_STOP: [bool; 256] = byte_set(b"\"{}[]");
const SCALAR_END: [bool; 256] = byte_set(b" \t\r\n{}[],:\"");

const fn byte_set(members: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut i = 0;
    while i < members.len() {
        set[members[i] as usize] = true;
        i += 1;
    }
    set
}

/// Where [`scan_run`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Every byte given was scanned and the text goes on.
    More,
    /// The text ends before this many bytes of the run (the state is then `Idle`).
    End(usize),
    /// The opening bracket ending these many bytes of the run nests past the limit.
    Deep(usize),
}

/// Scans a run of `bytes` from state `scan`, which is not `Idle` or is `Idle` at the first
/// byte of a text, up to the end of the text or of the run. Same results as [`step`] byte
/// by byte, without looking at string contents other than `"` and `\\`.
fn scan_run(scan: &mut Scan, bytes: &[u8], max_depth: usize) -> Run {
    let mut i = 0;
    if *scan == Scan::Idle {
        let Some(&first) = bytes.first() else { return Run::More };
        i = 1;
        *scan = match first {
            b'{' | b'[' if max_depth == 0 => {
                *scan = Scan::Container { depth: 1, in_string: false, escaped: false };
                return Run::Deep(1);
            }
            b'{' | b'[' => Scan::Container { depth: 1, in_string: false, escaped: false },
            b'"' => Scan::TopString { escaped: false },
            // A stray closer or separator is a one-byte (invalid) text.
            b'}' | b']' | b',' | b':' => return Run::End(1),
            _ => Scan::Scalar,
        };
    }
    match scan {
        Scan::Idle => Run::More,
        Scan::Scalar => {
            match bytes.get(i..).and_then(|rest| rest.iter().position(|&b| SCALAR_END[usize::from(b)])) {
                Some(k) => Run::End(i + k),
                None => Run::More,
            }
        }
        Scan::TopString { escaped } => match skip_string(bytes, i, escaped) {
            Some(end) => Run::End(end),
            None => Run::More,
        },
        Scan::Container { depth, in_string, escaped } => loop {
            if *in_string {
                match skip_string(bytes, i, escaped) {
                    Some(after) => {
                        *in_string = false;
                        i = after;
                    }
                    None => return Run::More,
                }
            }
            let rest = bytes.get(i..).unwrap_or(&[]);
            let Some(k) = rest.iter().position(|&b| CONTAINER_STOP[usize::from(b)]) else {
                return Run::More;
            };
            i += k + 1;
            match rest.get(k) {
                Some(b'"') => *in_string = true,
                Some(b'{' | b'[') => {
                    *depth += 1;
                    if *depth > max_depth {
                        return Run::Deep(i);
                    }
                }
                _ => {
                    *depth -= 1;
                    if *depth == 0 {
                        return Run::End(i);
                    }
                }
            }
        },
    }
}

/// Skips string contents from `bytes[from..]` (just after an opening quote, or after a
/// backslash when `escaped`): the index after the closing quote, or `None` when the run
/// ends first (`escaped` then says whether it ended right after a backslash).
fn skip_string(bytes: &[u8], mut from: usize, escaped: &mut bool) -> Option<usize> {
    if *escaped {
        if from >= bytes.len() {
            return None;
        }
        from += 1;
        *escaped = false;
    }
    loop {
        let rest = bytes.get(from..)?;
        let k = find_quote_or_backslash(rest)?;
        if rest.get(k) == Some(&b'"') {
            return Some(from + k + 1);
        }
        // A backslash: the next byte is escaped, whatever it is.
        if from + k + 1 >= bytes.len() {
            *escaped = true;
            return None;
        }
        from += k + 2;
    }
}

/// Bytes of a string looked at eight at a time before handing the rest to SIMD `memchr2`
/// (most strings in QMP are short keys, where a call costs more than it saves).
const SWAR_PREFIX: usize = 32;

/// The index of the first `"` or `\\` in `bytes`.
fn find_quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    let head = bytes.get(..SWAR_PREFIX).unwrap_or(bytes);
    let mut words = head.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let hits = zero_bytes(word ^ splat(b'"')) | zero_bytes(word ^ splat(b'\\'));
        if hits != 0 {
            // The lowest flag is exact (false flags only follow a true one).
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    if let Some(k) = words.remainder().iter().position(|&b| b == b'"' || b == b'\\') {
        return Some(offset + k);
    }
    let rest = bytes.get(head.len()..)?;
    memchr::memchr2(b'"', b'\\', rest).map(|k| head.len() + k)
}

/// `byte` in each of a word's eight bytes.
const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The high bit of each zero byte of `word` set (and possibly of bytes above the lowest
/// zero byte: only the lowest flag is exact).
const fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(splat(1)) & !word & splat(0x80)
}

/// Whether the scanner is inside a string.
fn in_string(scan: Scan) -> bool {
    matches!(scan, Scan::Container { in_string: true, .. } | Scan::TopString { .. })
}

/// Advances the scanner state over one byte.
fn step(scan: &mut Scan, byte: u8) -> Step {
    match scan {
        Scan::Idle => match byte {
            b' ' | b'\t' | b'\r' | b'\n' => Step::Skip,
            _ => {
                *scan = match byte {
                    b'{' | b'[' => Scan::Container { depth: 1, in_string: false, escaped: false },
                    b'"' => Scan::TopString { escaped: false },
                    // A stray closer or separator is a one-byte (invalid) text.
                    b'}' | b']' | b',' | b':' => return Step::EndIncluding,
                    _ => Scan::Scalar,
                };
                Step::Continue
            }
        },
        Scan::Container { depth, in_string, escaped } => {
            if *in_string {
                if *escaped {
                    *escaped = false;
                } else if byte == b'\\' {
                    *escaped = true;
                } else if byte == b'"' {
                    *in_string = false;
                }
                return Step::Continue;
            }
            match byte {
                b'"' => *in_string = true,
                b'{' | b'[' => *depth += 1,
                b'}' | b']' => {
                    *depth -= 1;
                    if *depth == 0 {
                        return Step::EndIncluding;
                    }
                }
                _ => {}
            }
            Step::Continue
        }
        Scan::TopString { escaped } => {
            if *escaped {
                *escaped = false;
            } else if byte == b'\\' {
                *escaped = true;
            } else if byte == b'"' {
                return Step::EndIncluding;
            }
            Step::Continue
        }
        Scan::Scalar => match byte {
            b' ' | b'\t' | b'\r' | b'\n' | b'{' | b'}' | b'[' | b']' | b',' | b':' | b'"' => Step::EndBefore,
            _ => Step::Continue,
        },
    }
}

/// Parses one JSON text with no recursion limit (the stack grows on the heap as needed).
pub fn parse_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    parse_typed(bytes)
}

/// Parses one JSON text straight into `T` (no intermediate [`Value`]), with no recursion
/// limit, as [`parse_json`] does: for typed documents that may nest deeply (a model whose
/// type references nest), where serde_json's limit of 128 would refuse valid input.
pub fn parse_typed<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    parse_with(bytes, std::marker::PhantomData::<T>)
}

/// Parses one JSON text like [`parse_json`], refusing an object that repeats a key (after
/// unescaping, at any depth) with the error `duplicate key`, raised just after the repeated
/// member's value as QEMU's parser does (an earlier syntax error wins, a later one is
/// not reached).
pub fn parse_json_unique_keys(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    parse_with(bytes, UniqueKeys)
}

/// Parses with serde_json's recursion limit (128, safe on any thread's stack) first, and
/// again with the stack grown on the heap only when the text nests deeper.
fn parse_with<S, T>(bytes: &[u8], seed: S) -> Result<T, serde_json::Error>
where
    S: for<'de> DeserializeSeed<'de, Value = T> + Copy,
{
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match seed.deserialize(&mut de).and_then(|value| de.end().map(|()| value)) {
        Err(e) if is_recursion_limit(&e) => {}
        shallow => return shallow,
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = seed.deserialize(serde_stacker::Deserializer::new(&mut de))?;
    de.end()?;
    Ok(value)
}

/// Whether `error` is serde_json's recursion limit, decided by formatting only as much of
/// its message as the prefix needs (syntax errors are common on fuzzed and hostile input,
/// and formatting each one in full cost as much as the parse).
fn is_recursion_limit(error: &serde_json::Error) -> bool {
    /// Compares what is written with `rest`, stopping the formatting at the first
    /// difference or once all of `rest` matched.
    struct Prefix<'a> {
        rest: &'a [u8],
        matched: bool,
    }
    impl std::fmt::Write for Prefix<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let n = s.len().min(self.rest.len());
            if s.as_bytes().get(..n) != self.rest.get(..n) {
                return Err(std::fmt::Error);
            }
            self.rest = self.rest.get(n..).unwrap_or_default();
            if self.rest.is_empty() {
                self.matched = true;
                return Err(std::fmt::Error);
            }
            Ok(())
        }
    }
    if error.classify() != serde_json::error::Category::Syntax {
        return false;
    }
    let mut prefix = Prefix { rest: RECURSION_LIMIT.as_bytes(), matched: false };
    let _stopped = std::fmt::write(&mut prefix, format_args!("{error}"));
    prefix.matched
}

/// serde_json's message for `error` ("expected value at line 1 column 2"), formatted into
/// a buffer sized for it at once.
fn error_message(error: &serde_json::Error) -> String {
    use std::fmt::Write as _;
    let mut message = String::with_capacity(64);
    let _ = write!(message, "{error}");
    message
}

/// serde_json's message when its recursion limit stops a parse.
const RECURSION_LIMIT: &str = "recursion limit exceeded";

/// The message of a repeated key ([`parse_json_unique_keys`]), QEMU's wording.
pub const DUPLICATE_KEY: &str = "duplicate key";

/// A [`Value`] whose objects never repeat a key.
#[derive(Debug, Clone, Copy)]
struct UniqueKeys;

/// A JSON value read with QEMU's duplicate-key rule, as a `Deserialize` type, for serde's
/// streams of several texts (`serde_json::Deserializer::from_slice(b).into_iter()`).
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueKeysValue(pub Value);

impl<'de> serde::Deserialize<'de> for UniqueKeysValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        UniqueKeys.deserialize(deserializer).map(UniqueKeysValue)
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(UniqueKeys)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(UniqueKeys)?;
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(_) => return Err(serde::de::Error::custom(DUPLICATE_KEY)),
            }
        }
        Ok(Value::Object(object))
    }
}

/// Parses one JSON text given as `str` (see [`parse_json`]).
pub fn parse_json_str(text: &str) -> Result<Value, serde_json::Error> {
    parse_json(text.as_bytes())
}

/// The last `max` bytes of `bytes` as printable ASCII: `\\`, `\r`, `\n`, `\t` and `\xNN`
/// for the rest of the unprintable bytes; quotes stay as they are. Prefixed `...` when cut.
pub fn escaped_tail(bytes: &[u8], max: usize) -> String {
    let from = bytes.len().saturating_sub(max);
    let tail = bytes.get(from..).unwrap_or(&[]);
    let mut text = String::with_capacity(tail.len() + 3);
    if from > 0 {
        text.push_str("...");
    }
    for &b in tail {
        match b {
            b'\\' => text.push_str("\\\\"),
            b'\r' => text.push_str("\\r"),
            b'\n' => text.push_str("\\n"),
            b'\t' => text.push_str("\\t"),
            0x20..=0x7e => text.push(char::from(b)),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                text.push_str("\\x");
                text.push(char::from(HEX[usize::from(b >> 4)]));
                text.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    text
}

/// The end (exclusive) of the JSON value starting at `start` in `bytes`, which must be valid
/// JSON there; `None` when no value ends before the slice does. Used to find where the items
/// of an already parsed document start, for source positions.
pub fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    let rest = bytes.get(start..)?;
    if rest.first().map_or(true, |&b| is_space(b)) {
        return None;
    }
    // The decoder's bulk scanner: strings are skipped by runs, not byte by byte.
    let mut scan = Scan::Idle;
    match scan_run(&mut scan, rest, usize::MAX) {
        Run::End(len) => Some(start + len),
        Run::Deep(_) => None,
        Run::More => (scan == Scan::Scalar).then_some(bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_end_finds_each_kind() {
        let text = br#"{"a": [1, "]"]} "x\"y" 12 true"#;
        assert_eq!(value_end(text, 0), Some(15));
        assert_eq!(value_end(text, 16), Some(22));
        assert_eq!(value_end(text, 23), Some(25));
        assert_eq!(value_end(text, 26), Some(30));
    }

    #[test]
    fn value_end_agrees_with_the_bytewise_scanner() {
        let bytewise = |bytes: &[u8], start: usize| {
            let mut scan = Scan::Idle;
            for (i, &byte) in bytes.get(start..)?.iter().enumerate() {
                match step(&mut scan, byte) {
                    Step::Skip => return None,
                    Step::Continue => {}
                    Step::EndIncluding => return Some(start + i + 1),
                    Step::EndBefore => return Some(start + i),
                }
            }
            (scan == Scan::Scalar).then_some(bytes.len())
        };
        for input in inputs(400, 40) {
            for start in 0..=input.len() {
                assert_eq!(value_end(&input, start), bytewise(&input, start), "{input:?} at {start}");
            }
        }
    }

    /// Everything `decoder` yields for `chunks` fed in order, then finished.
    fn drain(mut decoder: Decoder, chunks: &[&[u8]]) -> Vec<Result<Text, DecodeError>> {
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk);
            out.extend(std::iter::from_fn(|| decoder.next_text()));
        }
        out.extend(std::iter::from_fn(|| decoder.finish()));
        out
    }

    /// Deterministic inputs over the bytes that matter to framing.
    fn inputs(count: usize, len: usize) -> Vec<Vec<u8>> {
        const ALPHABET: &[u8] = b"{}[]\",:\\ a1\r\nxx\"\"{[";
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        (0..count)
            .map(|_| {
                (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let pick = usize::try_from(state >> 33).unwrap_or(0) % ALPHABET.len();
                        ALPHABET.get(pick).copied().unwrap_or(b' ')
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn bulk_scanner_agrees_with_the_bytewise_one_at_every_split() {
        let small = DecoderConfig { max_text: 12, max_depth: 3 };
        let mut compared = 0;
        // Items by kind: texts, too large, too deep, syntax errors.
        let mut kinds = [0usize; 4];
        for config in [DecoderConfig::default(), small] {
            for input in inputs(300, 40) {
                // A token limit no text reaches selects the byte-by-byte scanner.
                let reference = drain(Decoder::new(config).with_max_tokens(usize::MAX), &[&input]);
                for item in &reference {
                    let kind = match item {
                        Ok(_) => 0,
                        Err(DecodeError::TooLarge { .. }) => 1,
                        Err(DecodeError::TooDeep { .. }) => 2,
                        Err(_) => 3,
                    };
                    if let Some(count) = kinds.get_mut(kind) {
                        *count += 1;
                    }
                }
                assert_eq!(drain(Decoder::new(config), &[&input]), reference, "{input:?}");
                for cut in 0..=input.len() {
                    let (a, b) = input.split_at(cut);
                    assert_eq!(drain(Decoder::new(config), &[a, b]), reference, "cut {cut}: {input:?}");
                }
                let bytes: Vec<&[u8]> = input.chunks(1).collect();
                assert_eq!(drain(Decoder::new(config), &bytes), reference, "bytewise: {input:?}");
                compared += 1;
            }
        }
        assert_eq!(compared, 600);
        assert_eq!(kinds, [544, 249, 58, 1927]);
    }

    #[test]
    fn a_text_filling_the_buffer_is_moved_and_offsets_stay_right() {
        let mut d = Decoder::default();
        d.feed(b"{\"a\": 1}\r\n{\"b\"");
        let first = d.next_text().map(|r| r.map(|t| (t.offset, t.raw)));
        assert_eq!(first, Some(Ok((0, b"{\"a\": 1}".to_vec()))));
        assert_eq!(d.pending(), b"\r\n{\"b\"");
        d.feed(b": 2}");
        let second = d.next_text().map(|r| r.map(|t| (t.offset, t.value)));
        assert_eq!(second, Some(Ok((10, serde_json::json!({"b": 2})))));
        assert_eq!(d.stream_len(), 18);
    }

    #[test]
    fn deep_texts_parse_past_serde_jsons_limit() {
        let text = format!("{}{}", "[".repeat(600), "]".repeat(600));
        let value = parse_json(text.as_bytes()).map(|v| v.to_string().len());
        assert_eq!(value.ok(), Some(1200));
        let unique = parse_json_unique_keys(text.as_bytes()).map(|v| v.to_string().len());
        assert_eq!(unique.ok(), Some(1200));
    }

    #[test]
    fn repeated_keys_are_an_error_only_when_asked() {
        let text = br#"{"a": 1, "b": [{"c": 2, "\u0063": 3}]}"#;
        assert_eq!(parse_json(text).ok(), Some(serde_json::json!({"a": 1, "b": [{"c": 3}]})));
        let err = parse_json_unique_keys(text).map_err(|e| e.to_string());
        assert_eq!(err, Err("duplicate key at line 1 column 36".to_string()));
        // The check follows the value: a syntax error inside it comes first.
        let err = parse_json_unique_keys(br#"{"a": 1, "a": }"#).map_err(|e| e.to_string());
        assert_eq!(err, Err("expected value at line 1 column 15".to_string()));
    }

    #[test]
    fn recursion_limit_is_told_from_other_errors() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let limited = serde_json::from_str::<Value>(&deep).unwrap_err();
        assert!(is_recursion_limit(&limited), "{limited}");
        let syntax = serde_json::from_str::<Value>("[1,]").unwrap_err();
        assert!(!is_recursion_limit(&syntax), "{syntax}");
        let eof = serde_json::from_str::<Value>("[").unwrap_err();
        assert!(!is_recursion_limit(&eof), "{eof}");
        let typed: Vec<Value> = parse_typed(deep.as_bytes()).unwrap();
        assert_eq!(typed.len(), 1);
        assert_eq!(escaped_tail(b"a\x01\xff", 48), "a\\x01\\xff");
        assert_eq!(escaped_tail(b"abc\n", 2), "...c\\n");
    }

    #[test]
    fn quote_or_backslash_is_found_at_every_position() {
        for len in 0..80 {
            for at in 0..len {
                for special in [b'"', b'\\'] {
                    // Bytes next to the special ones in value (0x21, 0x5b, 0xa2) must not match.
                    let mut bytes: Vec<u8> = (0..len).map(|i| [b'!', b'[', 0xa2, b'a'][i % 4]).collect();
                    if let Some(b) = bytes.get_mut(at) {
                        *b = special;
                    }
                    if let Some(b) = bytes.get_mut(at + 1) {
                        *b = b'"';
                    }
                    assert_eq!(find_quote_or_backslash(&bytes), Some(at), "len {len} at {at}");
                }
            }
            let plain = vec![b'x'; len];
            assert_eq!(find_quote_or_backslash(&plain), None);
        }
    }

    #[test]
    fn scalars_end_at_delimiters_and_at_finish() {
        let mut d = Decoder::default();
        d.feed(b"12 {}7");
        assert_eq!(d.next_text().map(|r| r.map(|t| t.value)), Some(Ok(serde_json::json!(12))));
        assert_eq!(d.next_text().map(|r| r.map(|t| t.offset)), Some(Ok(3)));
        assert!(d.next_text().is_none());
        let last = d.finish().map(|r| r.map(|t| (t.offset, t.value)));
        assert_eq!(last, Some(Ok((5, serde_json::json!(7)))));
    }
}
