//! Running one case on one fresh connection.
//!
//! Two [`Client`]s share the socket: a reader polling with a short timeout (so expectations
//! keep their own deadlines and quiet periods) and a writer with a long one (QEMU reads a
//! 2 MB text slowly, and its output buffer is unbounded, so writing first never deadlocks).
//! Replies are matched by `id` (structurally) or, for id-less ones, oldest first; they are
//! never counted (safety.md: an over-deep text is followed by a flood of id-less errors).
//! Every text received is also checked against the rules that hold for all messages: W5
//! (valid ASCII JSON), C4 (known error class) and E1 (event shape, data valid by the
//! event's schema).

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::case::{
    json_equal, Case, IdMatch, ReplyClass, ReplyExpectation, ReturnShape, Step, ERROR_CLASSES,
};
use super::result::{escape_bytes, Evidence, Outcome};
use crate::check::schema::Validators;
use crate::wire::{Client, ClientConfig, Incoming, Message, Reply, WireError};

/// The `id` of the sentinel command that proves the session survived.
pub const SENTINEL_ID: &str = "qmpcheck-sentinel";
/// The `id` of the negotiation command a case's setup sends.
pub const NEGOTIATE_ID: &str = "qmpcheck-negotiate";
/// How long one poll of the reader waits.
const POLL: Duration = Duration::from_millis(20);
/// How many bytes of request and reply evidence are kept.
const EVIDENCE_LIMIT: usize = 1500;

/// Runs `case` on a new connection to `socket`; `timeout` bounds each expectation.
pub fn run_case(case: &Case, socket: &Path, timeout: Duration, validators: &Validators) -> Outcome {
    let timeout = case.timeout.unwrap_or(timeout);
    let mut conn = match Conn::open(socket, timeout) {
        Ok(conn) => conn,
        Err(e) => return fail_plain("(connect)", &e.to_string(), "a connection and a greeting (S1)"),
    };
    match conn.run(case, timeout, validators) {
        Ok(()) => Outcome::Pass,
        Err(expected) => Outcome::Fail { evidence: conn.evidence(expected) },
    }
}

fn fail_plain(request: &str, reply: &str, expected: &str) -> Outcome {
    Outcome::Fail {
        evidence: Evidence { request: request.into(), reply: reply.into(), expected: expected.into() },
    }
}

/// One message received during the case.
struct Got {
    incoming: Incoming,
    consumed: bool,
}

/// A connection being driven by a case.
struct Conn {
    reader: Client,
    writer: Client,
    sent: Vec<u8>,
    got: Vec<Got>,
    closed: Option<String>,
}

impl Conn {
    fn open(socket: &Path, timeout: Duration) -> Result<Conn, std::io::Error> {
        let stream = connect_retrying(socket, timeout)?;
        let writer_stream = stream.try_clone()?;
        let reader =
            Client::from_stream(stream, ClientConfig { read_timeout: POLL, ..ClientConfig::default() });
        let writer = Client::from_stream(
            writer_stream,
            ClientConfig { read_timeout: timeout, ..ClientConfig::default() },
        );
        Ok(Conn { reader, writer, sent: Vec::new(), got: Vec::new(), closed: None })
    }

    /// Runs setup, steps and the survival check; `Err` holds what was expected.
    fn run(&mut self, case: &Case, timeout: Duration, validators: &Validators) -> Result<(), String> {
        self.expect_greeting(timeout)?;
        if case.setup.negotiate {
            let mut command = serde_json::json!({"execute": "qmp_capabilities", "id": NEGOTIATE_ID});
            if !case.setup.enable.is_empty() {
                command["arguments"] = serde_json::json!({"enable": case.setup.enable});
            }
            self.send(command.to_string().as_bytes())?;
            let id = IdMatch::Id(Value::String(NEGOTIATE_ID.into()));
            let expectation = ReplyExpectation {
                id,
                class: ReplyClass::Ok,
                desc_prefix: None,
                returns: None,
                keys: Vec::new(),
                in_order: false,
            };
            self.expect_reply(&expectation, timeout)
                .map_err(|e| format!("setup: negotiation succeeds (S3); {e}"))?;
        }
        for step in &case.steps {
            self.step(step, timeout)?;
            self.check_all(validators)?;
        }
        if case.survives {
            let sentinel = format!("{{\"execute\":\"query-version\",\"id\":\"{SENTINEL_ID}\"}}");
            self.send(sentinel.as_bytes())?;
            let any = ReplyExpectation {
                id: IdMatch::Id(Value::String(SENTINEL_ID.into())),
                class: ReplyClass::AnyError,
                desc_prefix: None,
                returns: None,
                keys: Vec::new(),
                in_order: false,
            };
            self.wait_reply(&any.id, timeout)
                .map_err(|e| format!("the session survives: the sentinel query-version gets a reply; {e}"))?;
        }
        self.check_all(validators)
    }

    fn step(&mut self, step: &Step, timeout: Duration) -> Result<(), String> {
        match step {
            Step::Send(bytes) => self.send(bytes),
            Step::Pause(d) => {
                std::thread::sleep(*d);
                Ok(())
            }
            Step::Greeting => Ok(()), // checked when the connection opened (every case)
            Step::Reply(expectation) => self.expect_reply(expectation, timeout),
            Step::Event(name) => self.expect_event(name, timeout),
            Step::Quiet(d) => self.expect_quiet(*d),
        }
    }

    fn expect_greeting(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while self.got.is_empty() {
            if self.closed.is_some() || Instant::now() >= deadline {
                return Err(format!("a greeting within {timeout:?} (S1)"));
            }
            self.pump()?;
        }
        match self.got.first_mut() {
            Some(first) if matches!(first.incoming.message, Message::Greeting(_)) => {
                first.consumed = true;
                Ok(())
            }
            _ => {
                Err("the first message is a greeting {\"QMP\": {\"version\", \"capabilities\"}} (S1)".into())
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.sent.extend_from_slice(bytes);
        self.writer.send_raw(bytes).map_err(|e| format!("the target reads what is sent; write failed: {e}"))
    }

    /// Reads at most one message (waiting one poll interval). `Err` on a W5 violation.
    fn pump(&mut self) -> Result<(), String> {
        if self.closed.is_some() {
            std::thread::sleep(POLL);
            return Ok(());
        }
        match self.reader.read_message() {
            Ok(incoming) => {
                self.got.push(Got { incoming, consumed: false });
                Ok(())
            }
            Err(WireError::Timeout { .. }) => Ok(()),
            Err(WireError::Decode { source, .. }) => {
                Err(format!("every server message is valid JSON (W5); got an undecodable text: {source}"))
            }
            Err(e) => {
                self.closed = Some(e.to_string());
                Ok(())
            }
        }
    }

    fn expect_reply(&mut self, expectation: &ReplyExpectation, timeout: Duration) -> Result<(), String> {
        let index = self.wait_reply(&expectation.id, timeout)?;
        let what = describe_id(&expectation.id);
        if expectation.in_order {
            if let Some(earlier) = self.first_pending_reply().filter(|&i| i < index) {
                let other =
                    self.got.get(earlier).map(|g| escape_bytes(&g.incoming.raw, 200)).unwrap_or_default();
                return Err(format!(
                    "the reply to {what} comes next, in order (C6); an earlier reply is pending: {other}"
                ));
            }
        }
        let Some(got) = self.got.get_mut(index) else { return Err(format!("the reply to {what}")) };
        got.consumed = true;
        let Message::Reply(reply) = &got.incoming.message else { return Err(format!("the reply to {what}")) };
        check_reply(reply, expectation).map_err(|e| format!("the reply to {what}: {e}"))
    }

    /// Waits for the first unconsumed reply matching `id`; returns its index.
    fn wait_reply(&mut self, id: &IdMatch, timeout: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(index) = self.find_reply(id) {
                return Ok(index);
            }
            if let Some(why) = &self.closed {
                return Err(format!("a reply to {} before the connection ended ({why})", describe_id(id)));
            }
            if Instant::now() >= deadline {
                return Err(format!("a reply to {} within {timeout:?}", describe_id(id)));
            }
            self.pump()?;
        }
    }

    fn find_reply(&self, id: &IdMatch) -> Option<usize> {
        self.got.iter().position(|g| {
            !g.consumed
                && match (&g.incoming.message, id) {
                    (Message::Reply(r), IdMatch::Id(want)) => {
                        r.id().is_some_and(|have| json_equal(have, want))
                    }
                    (Message::Reply(r), IdMatch::NoId) => r.id().is_none(),
                    _ => false,
                }
        })
    }

    fn first_pending_reply(&self) -> Option<usize> {
        self.got.iter().position(|g| !g.consumed && matches!(g.incoming.message, Message::Reply(_)))
    }

    fn expect_event(&mut self, name: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen =
                self.got.iter().any(|g| matches!(&g.incoming.message, Message::Event(e) if e.event == name));
            if seen {
                return Ok(());
            }
            if self.closed.is_some() || Instant::now() >= deadline {
                return Err(format!("an event {name} during the case (E1/E2), within {timeout:?}"));
            }
            self.pump()?;
        }
    }

    fn expect_quiet(&mut self, period: Duration) -> Result<(), String> {
        let replies_before = self.count_replies();
        let until = Instant::now() + period;
        while Instant::now() < until {
            self.pump()?;
            if self.count_replies() > replies_before {
                return Err(format!("no reply for {period:?} (the text so far is incomplete)"));
            }
        }
        Ok(())
    }

    fn count_replies(&self) -> usize {
        self.got.iter().filter(|g| matches!(g.incoming.message, Message::Reply(_))).count()
    }

    /// The checks that hold for every message: W5, C4, E1 (with the event's schema).
    fn check_all(&self, validators: &Validators) -> Result<(), String> {
        for (n, got) in self.got.iter().enumerate() {
            let raw = &got.incoming.raw;
            if let Some(byte) = raw.iter().find(|b| !b.is_ascii()) {
                return Err(format!("every server message is ASCII (W5); message {n} has byte 0x{byte:02x}"));
            }
            match &got.incoming.message {
                Message::Greeting(_) if n == 0 => {}
                Message::Greeting(_) => {
                    return Err(format!("one greeting only (S1); message {n} is another"))
                }
                Message::Reply(Reply::Error { class, .. }) if !ERROR_CLASSES.contains(&class.as_str()) => {
                    return Err(format!(
                        "error classes are {} (C4); message {n} has {class}",
                        ERROR_CLASSES.join(", ")
                    ));
                }
                Message::Reply(_) => {}
                Message::Event(event) => {
                    let data = event.data.clone().unwrap_or_else(|| Value::Object(Default::default()));
                    if let Err(violations) = validators.validate_event(&event.event, &data) {
                        let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
                        return Err(format!(
                            "event {} data valid by its schema (E1): {}",
                            event.event,
                            list.join("; ")
                        ));
                    }
                }
                Message::Unknown(_) => {
                    return Err(format!(
                        "every message is a reply {{return|error, id?}} or an event {{event, data?, timestamp}} \
                         (C3/C4/E1); message {n} is neither"
                    ));
                }
            }
        }
        Ok(())
    }

    fn evidence(&self, expected: String) -> Evidence {
        let mut reply = Vec::new();
        for got in &self.got {
            reply.extend_from_slice(&got.incoming.raw);
            reply.extend_from_slice(b"\n");
        }
        let mut reply_text =
            if reply.is_empty() { "(nothing)".to_string() } else { escape_bytes(&reply, EVIDENCE_LIMIT) };
        if let Some(why) = &self.closed {
            reply_text.push_str(&format!(" [connection ended: {why}]"));
        }
        Evidence { request: escape_bytes(&self.sent, EVIDENCE_LIMIT), reply: reply_text, expected }
    }
}

/// Connects, retrying while the socket is missing or not listening yet: QEMU creates the
/// socket file (bind) a moment before it listens.
fn connect_retrying(socket: &Path, timeout: Duration) -> Result<UnixStream, std::io::Error> {
    let deadline = Instant::now() + timeout;
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

fn describe_id(id: &IdMatch) -> String {
    match id {
        IdMatch::Id(v) => {
            let text = v.to_string();
            if text.len() > 60 {
                format!("id {}... ({} bytes)", text.chars().take(60).collect::<String>(), text.len())
            } else {
                format!("id {text}")
            }
        }
        IdMatch::NoId => "an id-less text".into(),
    }
}

/// Checks class, desc prefix and return shape of a matched reply.
fn check_reply(reply: &Reply, expectation: &ReplyExpectation) -> Result<(), String> {
    match (&expectation.class, reply) {
        (ReplyClass::Ok, Reply::Return { value, .. }) => check_return(value, expectation),
        (ReplyClass::Ok, Reply::Error { class, .. }) => Err(format!("expected a return, got error {class}")),
        (ReplyClass::AnyError | ReplyClass::Error(_), Reply::Return { .. }) => {
            Err(format!("expected an error{}, got a return", class_suffix(&expectation.class)))
        }
        (ReplyClass::AnyError, Reply::Error { desc, .. }) => check_desc(desc, expectation),
        (ReplyClass::Error(want), Reply::Error { class, desc, .. }) => {
            if want != class {
                return Err(format!("expected error class {want}, got {class}"));
            }
            check_desc(desc, expectation)
        }
    }
}

fn class_suffix(class: &ReplyClass) -> String {
    match class {
        ReplyClass::Error(c) => format!(" of class {c}"),
        _ => String::new(),
    }
}

fn check_desc(desc: &str, expectation: &ReplyExpectation) -> Result<(), String> {
    match &expectation.desc_prefix {
        Some(prefix) if !desc.starts_with(prefix.as_str()) => {
            Err(format!("expected desc starting {prefix:?}"))
        }
        _ => Ok(()),
    }
}

fn check_return(value: &Value, expectation: &ReplyExpectation) -> Result<(), String> {
    let shape_ok = match expectation.returns {
        None => true,
        Some(ReturnShape::Object) => value.is_object(),
        Some(ReturnShape::Empty) => value.as_object().is_some_and(|m| m.is_empty()),
        Some(ReturnShape::Array) => value.is_array(),
        Some(ReturnShape::String) => value.is_string(),
    };
    if !shape_ok {
        return Err(format!("expected return of shape {:?}", expectation.returns));
    }
    let missing: Vec<&str> = expectation
        .keys
        .iter()
        .filter(|k| value.as_object().map_or(true, |m| !m.contains_key(k.as_str())))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("expected return members {}", missing.join(", ")))
    }
}
