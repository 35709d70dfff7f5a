//! One connection's QMP session, as a pure state machine: bytes in, [`Outgoing`] out.
//!
//! It follows QEMU 7.2's `monitor/qmp.c` and `qapi/qmp-dispatch.c` step by step:
//! framing by [`crate::wire::stream::Decoder`] (nesting above 1024, texts above 64 MiB,
//! texts of more than 2 Mi tokens and objects repeating a key at any depth are errors,
//! the last `JSON parse error, duplicate key` without `id`), the control-character reset, the
//! dispatcher's checks of the request's members (in QEMU's hash-table order), the command
//! lookup (only `qmp_capabilities` during negotiation), the OOB check, the arguments
//! ([`super::args`]), then the command itself ([`super::behaviour`] or a minimal value from
//! [`super::values`]). The `id` is copied into every reply to a request that is a JSON
//! object; parse errors have none.

use std::sync::{Arc, OnceLock};

use serde_json::{json, Map, Value};

use super::behaviour::{self, Effect};
use super::encode::qdict_order;
use super::fault::{Fault, SplitMix64, GARBAGE};
use super::values::min_value;
use super::{args, EmulatorConfig, Outgoing, VmState};
use crate::spec::{Command, EnumValue, Member, Source, SourceKind, Spec, TypeDef, TypeKind, TypeRef};
use crate::wire::stream::{DecodeError, Decoder, DecoderConfig, DUPLICATE_KEY};

/// QEMU's nesting limit (`MAX_NESTING` in `qobject/json-streamer.c`).
pub const MAX_NESTING: usize = 1024;
/// QEMU's token size limit (`MAX_TOKEN_SIZE`), used here as the limit of a whole text.
pub const MAX_TEXT: usize = 64 << 20;
/// QEMU's limit on the tokens of one text (`MAX_TOKEN_COUNT`, 2 Mi).
pub const MAX_TOKENS: usize = 2 << 20;

/// One client's session with the emulated server.
#[derive(Debug)]
pub struct Session {
    model: Arc<Spec>,
    config: EmulatorConfig,
    decoder: Decoder,
    negotiated: bool,
    oob: bool,
    state: VmState,
    answered: u64,
    rng: SplitMix64,
    hung: bool,
    closed: bool,
    /// After a lexical error: skipping input up to a resynchronisation byte.
    recovering: bool,
}

/// An error reply's class and desc.
struct QmpError {
    class: &'static str,
    desc: String,
}

impl QmpError {
    fn generic(desc: impl Into<String>) -> QmpError {
        QmpError { class: "GenericError", desc: desc.into() }
    }

    fn not_found(desc: impl Into<String>) -> QmpError {
        QmpError { class: "CommandNotFound", desc: desc.into() }
    }
}

/// What a request asks for, once the dispatcher's checks passed.
struct Request<'a> {
    name: &'a str,
    oob: bool,
    arguments: Map<String, Value>,
}

impl Session {
    /// A new session in capabilities-negotiation mode, VM in `prelaunch`.
    pub fn new(model: Arc<Spec>, config: EmulatorConfig) -> Session {
        let rng = SplitMix64::new(config.seed);
        Session {
            model,
            config,
            decoder: new_decoder(),
            negotiated: false,
            oob: false,
            state: VmState::default(),
            answered: 0,
            rng,
            hung: false,
            closed: false,
            recovering: false,
        }
    }

    /// The greeting sent on connect.
    pub fn greeting(&self) -> Value {
        let v = &self.config.version;
        json!({"QMP": {
            "version": {"qemu": {"major": v.major, "minor": v.minor, "micro": v.micro}, "package": v.package},
            "capabilities": self.config.capabilities,
        }})
    }

    /// Takes bytes as they arrive from the client (any split, several texts, partial texts)
    /// and returns what the server sends in answer, in order.
    pub fn handle(&mut self, bytes: &[u8]) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while self.is_live() && !rest.is_empty() {
            if self.recovering {
                // QEMU's lexer (IN_RECOVERY) skips to a structural or control byte, which it
                // then reads again from its start state.
                let Some(sync) = rest.iter().position(|&b| is_sync_byte(b)) else { break };
                rest = rest.split_at(sync).1;
                self.recovering = false;
            }
            let Some(cut) = rest.iter().position(|&b| is_reset_byte(b)) else {
                self.decoder.feed(rest);
                self.drain(&mut out);
                break;
            };
            let (segment, tail) = rest.split_at(cut);
            self.decoder.feed(segment);
            self.drain(&mut out);
            let Some((&byte, after)) = tail.split_first() else { break };
            rest = after;
            if self.is_live() {
                // The lexer fails on the byte, the streamer drops what it held, and the
                // lexer recovers.
                self.decoder = new_decoder();
                self.recovering = true;
                out.push(Outgoing::Message(parse_error(&format!(
                    "JSON parse error, stray '{}'",
                    stray(byte)
                ))));
            }
        }
        out
    }

    /// Handles one parsed request (what [`Session::handle`] does for each complete text).
    pub fn handle_value(&mut self, request: Value) -> Vec<Outgoing> {
        if !self.is_live() {
            return Vec::new();
        }
        let id = request.as_object().and_then(|o| o.get("id")).cloned();
        let name = request.as_object().and_then(command_name).map(str::to_string);
        if let Some(fault) = self.config.fault.clone() {
            match &fault {
                Fault::Hang(trigger) if trigger.fires(self.answered, name.as_deref()) => {
                    self.hung = true;
                    return Vec::new();
                }
                Fault::Die(trigger) if trigger.fires(self.answered, name.as_deref()) => {
                    let (mut out, reply) = self.dispatch(&request, id);
                    let bytes = super::encode(&reply);
                    let half = bytes.get(..bytes.len() / 2).unwrap_or_default().to_vec();
                    self.closed = true;
                    out.extend([Outgoing::Raw(half), Outgoing::Close]);
                    return out;
                }
                _ => {}
            }
        }
        let (mut out, reply) = self.dispatch(&request, id);
        self.answered += 1;
        out.push(self.maybe_garble(reply, name.as_deref()));
        if self.closed {
            out.push(Outgoing::Close);
        }
        out
    }

    /// Whether a [`Fault::Hang`] fired: the session reads but never answers again.
    pub fn is_hung(&self) -> bool {
        self.hung
    }

    /// Whether the session ended (`quit` or [`Fault::Die`]).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether capabilities negotiation is complete.
    pub fn is_negotiated(&self) -> bool {
        self.negotiated
    }

    /// Whether OOB was enabled during negotiation.
    pub fn oob_enabled(&self) -> bool {
        self.oob
    }

    /// The emulated VM's state.
    pub fn state(&self) -> &VmState {
        &self.state
    }

    /// The number of requests answered so far.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    fn is_live(&self) -> bool {
        !self.hung && !self.closed
    }

    fn drain(&mut self, out: &mut Vec<Outgoing>) {
        while self.is_live() {
            match self.decoder.next_text() {
                None => break,
                Some(Ok(text)) => out.extend(self.handle_value(text.value)),
                Some(Err(e)) => out.push(Outgoing::Message(parse_error(&decode_error_desc(&e)))),
            }
        }
    }

    fn maybe_garble(&mut self, reply: Value, name: Option<&str>) -> Outgoing {
        if let Some(Fault::Garbage { rate, command }) = &self.config.fault {
            let applies = command.as_deref().map_or(true, |c| Some(c) == name);
            if applies && self.rng.next_unit() < *rate {
                return Outgoing::Raw(GARBAGE.to_vec());
            }
        }
        Outgoing::Message(reply)
    }

    /// Runs a request: events it caused, and the reply (with `id` when the request had one).
    fn dispatch(&mut self, request: &Value, id: Option<Value>) -> (Vec<Outgoing>, Value) {
        let mut events = Vec::new();
        let result = self.execute(request, &mut events);
        let mut reply = Map::new();
        match result {
            Ok(value) => {
                reply.insert("return".to_string(), value);
            }
            Err(e) => {
                reply.insert("error".to_string(), json!({"class": e.class, "desc": e.desc}));
            }
        }
        if let Some(id) = id {
            reply.insert("id".to_string(), id);
        }
        (events, Value::Object(reply))
    }

    fn execute(&mut self, request: &Value, events: &mut Vec<Outgoing>) -> Result<Value, QmpError> {
        let request = check_request(request, self.oob)?;
        let model = Arc::clone(&self.model);
        if !self.negotiated && request.name != "qmp_capabilities" {
            return Err(QmpError::not_found("Expecting capabilities negotiation with 'qmp_capabilities'"));
        }
        let command = match model.commands.get(request.name) {
            Some(command) => (command, model.as_ref()),
            None if request.name == "qmp_capabilities" => protocol_command(),
            None => {
                return Err(QmpError::not_found(format!("The command {} has not been found", request.name)))
            }
        };
        let (command, spec) = command;
        if request.oob && !command.allow_oob {
            return Err(QmpError::generic(format!("The command {} does not support OOB", request.name)));
        }
        args::check_arguments(spec, command.args.as_ref(), &request.arguments).map_err(QmpError::generic)?;
        if request.name == "qmp_capabilities" {
            return self.negotiate(&request.arguments);
        }
        let minimal = command.returns.as_ref().map_or_else(|| json!({}), |ty| min_value(spec, ty));
        let Some(behaviour) = behaviour::behaviour_of(request.name) else { return Ok(minimal) };
        let effect = behaviour::run(behaviour, &mut self.state, &request.arguments, &self.config, spec)
            .map_err(|(class, desc)| QmpError { class, desc })?;
        Ok(self.apply(effect, minimal, events))
    }

    fn negotiate(&mut self, arguments: &Map<String, Value>) -> Result<Value, QmpError> {
        if self.negotiated {
            return Err(QmpError::not_found("Capabilities negotiation is already complete, command ignored"));
        }
        let enable: Vec<&str> = arguments
            .get("enable")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let unavailable: Vec<&str> =
            enable.iter().copied().filter(|c| !self.config.capabilities.iter().any(|o| o == c)).collect();
        if !unavailable.is_empty() {
            return Err(QmpError::generic(format!("Capability {} not available", unavailable.join(", "))));
        }
        self.negotiated = true;
        self.oob = enable.contains(&"oob");
        Ok(json!({}))
    }

    /// Turns an effect into events (pushed now, before the reply) and the reply value.
    fn apply(&mut self, effect: Effect, minimal: Value, events: &mut Vec<Outgoing>) -> Value {
        for (name, data) in effect.events {
            if let Some(event) = self.event(name, data) {
                events.push(Outgoing::Message(event));
            }
        }
        if effect.close {
            self.closed = true;
        }
        match (effect.reply, minimal) {
            (Some(Value::Object(overlay)), Value::Object(mut base)) => {
                base.extend(overlay);
                Value::Object(base)
            }
            (Some(overlay), _) => overlay,
            (None, minimal) => minimal,
        }
    }

    /// An event message, or `None` while negotiating (QEMU delivers none then).
    fn event(&self, name: &str, data: Option<Value>) -> Option<Value> {
        if !self.negotiated {
            return None;
        }
        let model_data =
            self.model.events.get(name).and_then(|e| e.data.as_ref()).map(|ty| min_value(&self.model, ty));
        let data = match (model_data, data) {
            (Some(Value::Object(mut base)), Some(Value::Object(overlay))) => {
                base.extend(overlay);
                Some(Value::Object(base))
            }
            (_, Some(overlay)) => Some(overlay),
            (model_data, None) => model_data,
        };
        let mut event = Map::new();
        event.insert("event".to_string(), json!(name));
        if let Some(data) = data {
            event.insert("data".to_string(), data);
        }
        event.insert("timestamp".to_string(), timestamp());
        Some(Value::Object(event))
    }
}

/// QEMU's `qmp_dispatch_check_obj`: the request must be an object whose members are
/// `execute` or `exec-oob` (a string, not both), `arguments` (an object) and `id`.
fn check_request(request: &Value, oob_allowed: bool) -> Result<Request<'_>, QmpError> {
    let Value::Object(object) = request else {
        return Err(QmpError::generic("QMP input must be a JSON object"));
    };
    let mut exec_key: Option<&str> = None;
    for (key, value) in qdict_order(object) {
        match key.as_str() {
            "execute" | "exec-oob" if key == "execute" || oob_allowed => {
                if !value.is_string() {
                    return Err(QmpError::generic(format!("QMP input member '{key}' must be a string")));
                }
                if let Some(first) = exec_key {
                    return Err(QmpError::generic(format!(
                        "QMP input member '{key}' clashes with '{first}'"
                    )));
                }
                exec_key = Some(key);
            }
            "arguments" if !value.is_object() => {
                return Err(QmpError::generic("QMP input member 'arguments' must be an object"));
            }
            "arguments" | "id" => {}
            _ => return Err(QmpError::generic(format!("QMP input member '{key}' is unexpected"))),
        }
    }
    let name = command_name(object).ok_or_else(|| QmpError::generic("QMP input lacks member 'execute'"))?;
    let oob = !object.contains_key("execute");
    let arguments = object.get("arguments").and_then(Value::as_object).cloned().unwrap_or_default();
    Ok(Request { name, oob, arguments })
}

/// The command a request names (`execute`, else `exec-oob`).
fn command_name(object: &Map<String, Value>) -> Option<&str> {
    object.get("execute").or_else(|| object.get("exec-oob")).and_then(Value::as_str)
}

/// `qmp_capabilities` as QEMU defines it, for models that lack it (synthetic or legacy ones).
fn protocol_command() -> (&'static Command, &'static Spec) {
    static PROTOCOL: OnceLock<(Command, Spec)> = OnceLock::new();
    let (command, spec) = PROTOCOL.get_or_init(|| {
        let source = Source::new("qmpcheck-emulator", 0);
        let mut spec = Spec::new(SourceKind::Qapi);
        spec.types.insert(
            "QMPCapability".to_string(),
            TypeDef::new(
                "QMPCapability",
                TypeKind::Enum { values: vec![EnumValue::new("oob")] },
                source.clone(),
            ),
        );
        let enable = Member::new("enable", TypeRef::array(TypeRef::named("QMPCapability")), true);
        let args = spec.add_implicit_struct(":obj-qmp_capabilities-arg", vec![enable], source.clone());
        let mut command = Command::new("qmp_capabilities", source);
        command.args = Some(args);
        (command, spec)
    });
    (command, spec)
}

fn new_decoder() -> Decoder {
    Decoder::new(DecoderConfig { max_text: MAX_TEXT, max_depth: MAX_NESTING })
        .with_max_tokens(MAX_TOKENS)
        .with_unique_keys()
}

/// Bytes QEMU's lexer rejects anywhere: control characters but TAB, CR, LF, and bytes
/// that never occur in UTF-8.
fn is_reset_byte(byte: u8) -> bool {
    (byte < 0x20 && !matches!(byte, b'\t' | b'\r' | b'\n')) || byte >= 0xFE
}

/// Bytes that end QEMU's lexical error recovery: structural characters, control
/// characters (whitespace included) and bytes never in UTF-8.
fn is_sync_byte(byte: u8) -> bool {
    matches!(byte, b'[' | b']' | b'{' | b'}') || !(0x20..0xFE).contains(&byte)
}

/// How QEMU shows a stray byte: invalid UTF-8 becomes U+FFFD when its reply is encoded.
fn stray(byte: u8) -> char {
    if byte < 0x80 {
        char::from(byte)
    } else {
        '\u{FFFD}'
    }
}

fn parse_error(desc: &str) -> Value {
    json!({"error": {"class": "GenericError", "desc": desc}})
}

/// QEMU's desc for a text the decoder rejected.
fn decode_error_desc(error: &DecodeError) -> String {
    match error {
        DecodeError::TooDeep { .. } => "JSON nesting depth limit exceeded".to_string(),
        DecodeError::TooLarge { .. } => "JSON token size limit exceeded".to_string(),
        DecodeError::TooManyTokens { .. } => "JSON token count limit exceeded".to_string(),
        DecodeError::Syntax { message, tail, len, .. } => {
            format!("JSON parse error, {}", syntax_desc(message, tail, *len))
        }
    }
}

/// QEMU's wording for serde_json's syntax errors (the common cases; others pass through).
fn syntax_desc(message: &str, tail: &str, len: usize) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    let whole = (len <= 48).then_some(tail);
    let starts_alpha = whole.and_then(|t| t.chars().next()).is_some_and(|c| c.is_ascii_alphabetic());
    match message {
        _ if starts_alpha => format!("invalid keyword '{}'", whole.unwrap_or_default()),
        "expected value" | "trailing comma" | "EOF while parsing a value" => "expecting value".to_string(),
        "expected `:`" => "missing : in object pair".to_string(),
        "expected `,` or `}`" | "EOF while parsing an object" => "expected separator in dict".to_string(),
        "expected `,` or `]`" | "EOF while parsing a list" => "expected separator in list".to_string(),
        "key must be a string" => "key is not a string in object".to_string(),
        "invalid escape" => "invalid escape sequence in string".to_string(),
        "invalid unicode code point" => "invalid UTF-8 sequence in string".to_string(),
        m if m.contains("surrogate") || m.contains("hex escape") => {
            "invalid \\u escape: not a valid Unicode character".to_string()
        }
        DUPLICATE_KEY => DUPLICATE_KEY.to_string(),
        "invalid number" | "trailing characters" => match whole {
            Some(text) => format!("stray '{text}'"),
            None => message.to_string(),
        },
        other => other.to_string(),
    }
}

/// The current time as QEMU's event timestamp.
fn timestamp() -> Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    json!({"seconds": now.as_secs(), "microseconds": now.subsec_micros()})
}
