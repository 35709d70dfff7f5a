//! A blocking QMP client over a UNIX socket.
//!
//! One command at a time (lockstep): [`Client::execute`] tags the command with a unique `id`,
//! writes it, then reads until the reply carrying that `id` (compared structurally) arrives.
//! Events met on the way are queued ([`Client::take_events`]); any other message (a reply
//! with another or no `id`, a non-conforming text, a decode error) is queued as a stray
//! ([`Client::take_strays`]), so nothing is skipped silently. Every read and write has a
//! deadline, and every error names the command in flight and the bytes received for it.
//! [`Client::send_raw`] and [`Client::read_message`] let conformance cases send malformed
//! bytes and look at whatever comes back.
//!
//! Bounds: a reply larger than [`DecoderConfig::max_text`] (default 64 MiB, QEMU's own token
//! limit) or deeper than [`DecoderConfig::max_depth`] is refused while it arrives — its bytes
//! are dropped, never buffered past the limit — and [`Client::execute`] ends with
//! [`WireError::Decode`] naming the limit (the caller's finding), not an out-of-memory kill.
//! Connecting never blocks past [`ClientConfig::connect_timeout`], even on a socket whose
//! accept queue is full (the connect is non-blocking and retried).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::message::{Event, Greeting, Message, Reply};
use super::stream::{escaped_tail, DecodeError, Decoder, DecoderConfig};

/// Timeouts and limits of a [`Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// How long [`Client::connect`] retries a socket that is not there or not listening yet.
    pub connect_timeout: Duration,
    /// Longest wait for one message (greeting, reply) and for one write.
    pub read_timeout: Duration,
    /// Decoder limits (text size and depth).
    pub decoder: DecoderConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            decoder: DecoderConfig::default(),
        }
    }
}

/// The command a client was waiting on when something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// Command name (`execute` value), or a description for raw reads.
    pub name: String,
    /// The command's `id`, rendered as compact JSON (shortened past 80 characters).
    pub id: Option<String>,
}

impl fmt::Display for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} (id {id})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What the client had received when an error struck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Bytes received since the command was sent (or since the read began).
    pub bytes: u64,
    /// The last of those bytes, escaped.
    pub tail: String,
}

impl fmt::Display for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "after {} bytes", self.bytes)?;
        if self.bytes > 0 {
            write!(f, " ending `{}`", self.tail)?;
        }
        Ok(())
    }
}

/// A failure of the wire itself (not a QMP error reply, which is a [`Reply::Error`]).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket could not be connected within the timeout.
    #[error("cannot connect to {path} within {waited:?}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// How long it was retried.
        waited: Duration,
        /// The last error.
        source: io::Error,
    },
    /// No complete message arrived in time.
    #[error("timeout after {waited:?} waiting for {in_flight}, {received}")]
    Timeout {
        /// What was being waited for.
        in_flight: InFlight,
        /// How long.
        waited: Duration,
        /// What had arrived.
        received: Received,
    },
    /// The server closed the connection.
    #[error("connection closed while waiting for {in_flight}, {received}")]
    Closed {
        /// What was being waited for.
        in_flight: InFlight,
        /// What had arrived.
        received: Received,
    },
    /// The server sent a text that is not JSON, too big or too deep.
    #[error("bad text while waiting for {in_flight}, {received}: {source}")]
    Decode {
        /// What was being waited for.
        in_flight: InFlight,
        /// What had arrived.
        received: Received,
        /// The decoder's error (boxed to keep the error small).
        source: Box<DecodeError>,
    },
    /// Reading or writing the socket failed.
    #[error("i/o error while {doing} {in_flight}: {source}")]
    Io {
        /// `sending` or `waiting for`.
        doing: &'static str,
        /// What was being sent or waited for.
        in_flight: InFlight,
        /// The OS error.
        source: io::Error,
    },
    /// The first message was not a greeting.
    #[error("expected a greeting, got {kind} at offset {offset}: {text}")]
    NotGreeting {
        /// The message kind.
        kind: &'static str,
        /// Stream offset of the text.
        offset: u64,
        /// The text, escaped and shortened.
        text: String,
    },
}

/// One message read from the stream, with where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// Stream offset of the text's first byte.
    pub offset: u64,
    /// The text as received.
    pub raw: Vec<u8>,
    /// The parsed and classified message.
    pub message: Message,
}

/// Something read that was not the awaited reply nor an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Stray {
    /// A message that is not the awaited reply (another or no `id`, an unknown shape, ...).
    Message(Incoming),
    /// A text that could not be decoded.
    Decode(DecodeError),
}

/// A blocking QMP client.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    config: ClientConfig,
    decoder: Decoder,
    greeting: Option<Greeting>,
    greeting_raw: Vec<u8>,
    events: VecDeque<Event>,
    strays: Vec<Stray>,
    next_id: u64,
    /// Events and strays not queued because their queue was full.
    dropped: u64,
    /// Total bytes received on the connection.
    received_total: u64,
    /// The last bytes received (at most `TAIL` of them).
    tail: Vec<u8>,
}

/// Most events, and most strays, kept until taken (QEMU can answer one bad input with
/// 100,000 id-less errors); past it they are counted in [`Client::dropped`].
pub const MAX_QUEUED: usize = 100_000;

/// How many trailing bytes error messages quote.
const TAIL: usize = 64;

impl Client {
    /// Connects (retrying until the socket listens or the timeout passes) and reads the
    /// greeting.
    pub fn connect(path: impl AsRef<Path>, config: ClientConfig) -> Result<Client, WireError> {
        let mut client = Client::connect_raw(path, config)?;
        client.read_greeting()?;
        Ok(client)
    }

    /// Connects without reading anything (for conformance cases that inspect the greeting).
    pub fn connect_raw(path: impl AsRef<Path>, config: ClientConfig) -> Result<Client, WireError> {
        let path = path.as_ref();
        let started = Instant::now();
        loop {
            match connect_nonblocking(path) {
                Ok(stream) => return Ok(Client::from_stream(stream, config)),
                Err(e) if started.elapsed() < config.connect_timeout && retryable(&e) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(source) => {
                    return Err(WireError::Connect {
                        path: path.to_path_buf(),
                        waited: started.elapsed(),
                        source,
                    })
                }
            }
        }
    }

    /// Wraps a connected stream; nothing is read yet.
    pub fn from_stream(stream: UnixStream, config: ClientConfig) -> Client {
        Client {
            stream,
            config,
            decoder: Decoder::new(config.decoder),
            greeting: None,
            greeting_raw: Vec::new(),
            events: VecDeque::new(),
            strays: Vec::new(),
            next_id: 1,
            dropped: 0,
            received_total: 0,
            tail: Vec::new(),
        }
    }

    /// Reads the first message, which must be a greeting.
    pub fn read_greeting(&mut self) -> Result<&Greeting, WireError> {
        let incoming = self.read_message()?;
        match incoming.message {
            Message::Greeting(g) => {
                self.greeting_raw = incoming.raw;
                Ok(self.greeting.insert(g))
            }
            other => Err(WireError::NotGreeting {
                kind: other.kind(),
                offset: incoming.offset,
                text: escaped_tail(incoming.raw.get(..200.min(incoming.raw.len())).unwrap_or(&[]), 200),
            }),
        }
    }

    /// The greeting, once read.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The greeting's text as received (empty before [`Client::read_greeting`]).
    pub fn greeting_raw(&self) -> &[u8] {
        &self.greeting_raw
    }

    /// The configuration in force.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Changes the longest wait for one message and one write from now on (e.g. a long
    /// wait for a greeting, then the short per-reply timeout of a fuzz campaign).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.config.read_timeout = timeout;
    }

    /// Total bytes received on this connection.
    pub fn bytes_received(&self) -> u64 {
        self.received_total
    }

    /// Sends `qmp_capabilities` (with `enable` when not empty) and returns its reply.
    pub fn negotiate(&mut self, enable: &[&str]) -> Result<Reply, WireError> {
        let args = (!enable.is_empty()).then(|| json!({ "enable": enable }));
        self.execute("qmp_capabilities", args)
    }

    /// Runs one command with a fresh unique `id` and returns its reply.
    pub fn execute(&mut self, name: &str, arguments: Option<Value>) -> Result<Reply, WireError> {
        let id = json!(format!("qmpcheck-{}", self.next_id));
        self.next_id += 1;
        self.execute_with_id(name, arguments, id)
    }

    /// Runs one command tagged with the given `id` (any JSON value) and returns the reply
    /// whose `id` equals it structurally.
    pub fn execute_with_id(
        &mut self,
        name: &str,
        arguments: Option<Value>,
        id: Value,
    ) -> Result<Reply, WireError> {
        let in_flight = InFlight { name: name.to_string(), id: Some(short_json(&id)) };
        let mut command = serde_json::Map::new();
        command.insert("execute".into(), Value::String(name.to_string()));
        if let Some(args) = arguments {
            command.insert("arguments".into(), args);
        }
        command.insert("id".into(), id.clone());
        let mut bytes = serde_json::to_vec(&Value::Object(command)).unwrap_or_default();
        bytes.extend_from_slice(b"\r\n");
        self.write_all(&bytes, &in_flight)?;
        let mark = self.received_total;
        let deadline = Instant::now() + self.config.read_timeout;
        loop {
            let item = self.next_item(&in_flight, mark, deadline)?;
            match item {
                Ok(Incoming { message: Message::Reply(reply), .. }) if reply.id() == Some(&id) => {
                    return Ok(reply)
                }
                Ok(Incoming { message: Message::Event(event), .. }) => {
                    if self.events.len() < MAX_QUEUED {
                        self.events.push_back(event);
                    } else {
                        self.dropped += 1;
                    }
                }
                Ok(other) => self.push_stray(Stray::Message(other)),
                Err(e @ (DecodeError::TooLarge { .. } | DecodeError::TooDeep { .. })) => {
                    // Over a limit: refused (its bytes are being dropped), reported now.
                    return Err(WireError::Decode {
                        received: self.received_since(mark),
                        in_flight,
                        source: Box::new(e),
                    });
                }
                Err(e) => self.push_stray(Stray::Decode(e)),
            }
        }
    }

    /// Writes bytes as they are (for malformed input); nothing is read.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let in_flight = InFlight { name: "raw bytes".into(), id: None };
        self.write_all(bytes, &in_flight)
    }

    /// Reads the next message of any kind (nothing is queued). A text that cannot be
    /// decoded is an error; the stream stays usable after it.
    pub fn read_message(&mut self) -> Result<Incoming, WireError> {
        let in_flight = InFlight { name: "a message".into(), id: None };
        let mark = self.received_total;
        let deadline = Instant::now() + self.config.read_timeout;
        match self.next_item(&in_flight, mark, deadline)? {
            Ok(incoming) => Ok(incoming),
            Err(source) => Err(WireError::Decode {
                received: self.received_since(mark),
                in_flight,
                source: Box::new(source),
            }),
        }
    }

    /// The events queued while waiting for replies, oldest first; the queue is emptied.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// Everything else met while waiting for replies, oldest first; the queue is emptied.
    pub fn take_strays(&mut self) -> Vec<Stray> {
        std::mem::take(&mut self.strays)
    }

    /// How many events and strays were not queued because their queue held [`MAX_QUEUED`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn push_stray(&mut self, stray: Stray) {
        if self.strays.len() < MAX_QUEUED {
            self.strays.push(stray);
        } else {
            self.dropped += 1;
        }
    }

    /// Shuts the connection down in both directions.
    pub fn shutdown(&self) -> io::Result<()> {
        self.stream.shutdown(std::net::Shutdown::Both)
    }

    /// The next decoded text (or decode error), reading until the deadline.
    fn next_item(
        &mut self,
        in_flight: &InFlight,
        mark: u64,
        deadline: Instant,
    ) -> Result<Result<Incoming, DecodeError>, WireError> {
        let mut chunk = [0u8; 32 * 1024];
        loop {
            if let Some(item) = self.decoder.next_text() {
                return Ok(item.map(|t| Incoming {
                    offset: t.offset,
                    raw: t.raw,
                    message: Message::classify(t.value),
                }));
            }
            let now = Instant::now();
            let waited = self.config.read_timeout;
            if now >= deadline {
                return Err(self.timeout(in_flight, waited, mark));
            }
            if let Err(source) = self.stream.set_read_timeout(Some(deadline - now)) {
                return Err(WireError::Io { doing: "waiting for", in_flight: in_flight.clone(), source });
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    if let Some(item) = self.decoder.finish() {
                        return Ok(item.map(|t| Incoming {
                            offset: t.offset,
                            raw: t.raw,
                            message: Message::classify(t.value),
                        }));
                    }
                    return Err(WireError::Closed {
                        in_flight: in_flight.clone(),
                        received: self.received_since(mark),
                    });
                }
                Ok(n) => {
                    let got = chunk.get(..n).unwrap_or(&[]);
                    self.decoder.feed(got);
                    self.note_received(got);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(self.timeout(in_flight, waited, mark));
                }
                Err(source) => {
                    return Err(WireError::Io { doing: "waiting for", in_flight: in_flight.clone(), source });
                }
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8], in_flight: &InFlight) -> Result<(), WireError> {
        let result = self
            .stream
            .set_write_timeout(Some(self.config.read_timeout))
            .and_then(|_| self.stream.write_all(bytes));
        match result {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Err(self.timeout(in_flight, self.config.read_timeout, self.received_total))
            }
            Err(source) => Err(WireError::Io { doing: "sending", in_flight: in_flight.clone(), source }),
        }
    }

    fn timeout(&self, in_flight: &InFlight, waited: Duration, mark: u64) -> WireError {
        WireError::Timeout { in_flight: in_flight.clone(), waited, received: self.received_since(mark) }
    }

    fn note_received(&mut self, bytes: &[u8]) {
        self.received_total += bytes.len() as u64;
        self.tail.extend_from_slice(bytes);
        let excess = self.tail.len().saturating_sub(TAIL);
        self.tail.drain(..excess);
    }

    /// What arrived since the stream offset `mark`.
    fn received_since(&self, mark: u64) -> Received {
        let bytes = self.received_total.saturating_sub(mark);
        let keep = (bytes.min(self.tail.len() as u64)) as usize;
        let from = self.tail.len() - keep;
        Received { bytes, tail: escaped_tail(self.tail.get(from..).unwrap_or(&[]), TAIL) }
    }
}

/// Whether a connect error may go away by waiting (socket not created or not listening
/// yet, or its accept queue full).
fn retryable(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused | io::ErrorKind::WouldBlock)
}

/// One connect attempt that never blocks: a full accept queue is `WouldBlock` (retried by
/// the caller within its timeout) instead of a wait without end. The stream comes back
/// blocking.
fn connect_nonblocking(path: &Path) -> io::Result<UnixStream> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(AddressFamily::Unix, SockType::Stream, flags, None)?;
    let addr = UnixAddr::new(path)?;
    match socket::connect(fd.as_raw_fd(), &addr) {
        Ok(()) => {}
        // A UNIX connect completes at once or fails with EAGAIN; nothing is in progress.
        Err(nix::errno::Errno::EAGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => return Err(e.into()),
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Compact JSON, shortened past 80 characters.
fn short_json(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 80 {
        return text;
    }
    let cut = (0..=80).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{}... ({} bytes)", text.get(..cut).unwrap_or(""), text.len())
}
