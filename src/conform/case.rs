//! Conformance cases: the data format of `conformance/*.toml` and its loader.
//!
//! A case cites one rule, says how to set the session up, then lists steps: bytes to send
//! and what must (or must not) come back. The format is documented for case authors in
//! `conformance/README.md`. The loader reports every problem of every file with FILE:LINE,
//! the field and why, so a broken case file is fixed in one pass.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::rule::Rule;
use crate::spec::Source;

/// The error classes QMP defines (rule C4).
pub const ERROR_CLASSES: [&str; 5] =
    ["GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound", "KVMMissingCap"];

/// One conformance case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Unique ID across all case files (used for sharding and reports).
    pub id: String,
    /// The rule the case checks.
    pub rule: Rule,
    /// What the case checks, in one sentence.
    pub description: String,
    /// How the session is prepared before the steps run.
    pub setup: Setup,
    /// What is sent and what is expected, in order.
    pub steps: Vec<Step>,
    /// Whether a sentinel `query-version` must get its reply after the steps (default true).
    pub survives: bool,
    /// Whether the case needs a target of its own (it changes run state or may kill it).
    pub isolate: bool,
    /// Longest wait of one expectation, when the case needs another than the run's.
    pub timeout: Option<Duration>,
    /// Where the case starts (`conformance/wire.toml:12`).
    pub source: Source,
}

/// Session preparation and preconditions of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Send `qmp_capabilities` before the steps (default true).
    pub negotiate: bool,
    /// Capabilities to enable while negotiating.
    pub enable: Vec<String>,
    /// Capabilities the greeting must offer, else the case is skipped.
    pub requires_capabilities: Vec<String>,
    /// Commands the target's model must have, else the case is skipped.
    pub requires_commands: Vec<String>,
}

/// One step of a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write these bytes in one write.
    Send(Vec<u8>),
    /// Wait this long (to split texts across reads).
    Pause(Duration),
    /// The greeting read at connect time must have had the S1 shape.
    Greeting,
    /// A reply must arrive, matching the expectation.
    Reply(ReplyExpectation),
    /// An event of this name must arrive during the case (before or after any reply, E2).
    Event(String),
    /// No reply (return or error) may arrive for this long; events are allowed.
    Quiet(Duration),
}

/// Which reply an expectation is about.
#[derive(Debug, Clone, PartialEq)]
pub enum IdMatch {
    /// The reply whose `id` equals this value structurally (numbers compared by value).
    Id(Value),
    /// The oldest reply not yet matched that has no `id`.
    NoId,
}

/// What class of reply is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyClass {
    /// `{"return": ...}`.
    Ok,
    /// `{"error": ...}` of any class.
    AnyError,
    /// `{"error": {"class": THIS, ...}}`.
    Error(String),
}

/// The JSON type a `return` value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnShape {
    /// Any object.
    Object,
    /// Exactly `{}`.
    Empty,
    /// An array.
    Array,
    /// A string.
    String,
}

/// An expected reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyExpectation {
    /// Which reply.
    pub id: IdMatch,
    /// Its class.
    pub class: ReplyClass,
    /// The error `desc` must start with this (only where a rule fixes the wording, W3).
    pub desc_prefix: Option<String>,
    /// The `return` value's JSON type.
    pub returns: Option<ReturnShape>,
    /// Members the `return` object must have.
    pub keys: Vec<String>,
    /// No other reply may be pending before this one (C6 ordering).
    pub in_order: bool,
}

/// One problem in a case file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseProblem {
    /// Where (`conformance/wire.toml:14`).
    pub source: Source,
    /// The field concerned (`case.step.reply.class`), or empty for syntax errors.
    pub field: String,
    /// What is wrong, lowercase.
    pub message: String,
}

impl fmt::Display for CaseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: {}: {}", self.source, self.field, self.message)
        }
    }
}

/// Why the cases could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CaseLoadError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// One or more case files are malformed; every problem is listed.
    #[error("{} problem(s) in conformance cases:\n{}", problems.len(), render_problems(problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<CaseProblem>,
    },
}

fn render_problems(problems: &[CaseProblem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

/// The case files shipped with qmpcheck, embedded at build time: (label, text), sorted by
/// name as [`load_dir`] reads them.
pub const BUILTIN_FILES: [(&str, &str); 5] = [
    ("conformance/dispatch.toml", include_str!("../../conformance/dispatch.toml")),
    ("conformance/events.toml", include_str!("../../conformance/events.toml")),
    ("conformance/oob.toml", include_str!("../../conformance/oob.toml")),
    ("conformance/session.toml", include_str!("../../conformance/session.toml")),
    ("conformance/wire.toml", include_str!("../../conformance/wire.toml")),
];

/// The embedded cases ([`BUILTIN_FILES`]), in file order.
pub fn builtin_cases() -> Result<Vec<Case>, CaseLoadError> {
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for (label, text) in BUILTIN_FILES {
        match parse_cases(text, label) {
            Ok(mut c) => cases.append(&mut c),
            Err(mut p) => problems.append(&mut p),
        }
    }
    problems.extend(duplicate_ids(&cases));
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(CaseLoadError::Invalid { problems })
    }
}

/// Loads every `*.toml` case file of a folder (sorted by name), except `skip.toml`.
/// IDs must be unique across files.
pub fn load_dir(dir: &Path) -> Result<Vec<Case>, CaseLoadError> {
    let io = |source| CaseLoadError::Io { path: dir.display().to_string(), source };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| p.file_name().map_or(true, |n| n != "skip.toml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|source| CaseLoadError::Io { path: file.display().to_string(), source })?;
        let label = display_path(&file);
        match parse_cases(&text, &label) {
            Ok(mut c) => cases.append(&mut c),
            Err(mut p) => problems.append(&mut p),
        }
    }
    problems.extend(duplicate_ids(&cases));
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(CaseLoadError::Invalid { problems })
    }
}

/// The path as a short label: relative to the crate root when it lies inside it.
fn display_path(file: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    file.strip_prefix(root).unwrap_or(file).display().to_string()
}

/// Parses one case file's text; `file` labels problems. Returns every problem found.
pub fn parse_cases(text: &str, file: &str) -> Result<Vec<Case>, Vec<CaseProblem>> {
    let lines = LineIndex::new(text);
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map(|s| lines.line(s.start)).unwrap_or(0);
            let message = e.message().trim().to_lowercase();
            return Err(vec![CaseProblem { source: Source::new(file, line), field: String::new(), message }]);
        }
    };
    let mut ctx = Ctx { file, lines: &lines, problems: Vec::new() };
    let cases: Vec<Case> = raw.case.into_iter().filter_map(|c| ctx.case(c)).collect();
    if ctx.problems.is_empty() {
        Ok(cases)
    } else {
        Err(ctx.problems)
    }
}

fn duplicate_ids(cases: &[Case]) -> Vec<CaseProblem> {
    let mut first: BTreeMap<&str, &Source> = BTreeMap::new();
    let mut out = Vec::new();
    for case in cases {
        if let Some(previous) = first.get(case.id.as_str()) {
            out.push(CaseProblem {
                source: case.source.clone(),
                field: "case.id".into(),
                message: format!("duplicate id `{}` (first at {previous})", case.id),
            });
        } else {
            first.insert(&case.id, &case.source);
        }
    }
    out
}

/// Decodes the escapes of a `send_bytes` string: `\xHH` (a byte), `\\`, `\n`, `\r`, `\t`,
/// `\*N:C` (the character C repeated N times) and `\*N{TEXT}` (TEXT, which cannot hold `}`,
/// repeated N times; at most 64 MiB in all). Any other backslash
/// sequence is an error naming its character offset.
pub fn decode_send_bytes(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next().map(|(_, e)| e) {
            Some('\\') => out.push(b'\\'),
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('x') => {
                let hex: String = (0..2).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                let byte = u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .ok_or_else(|| format!("`\\x` at offset {at} needs two hex digits, got `{hex}`"))?;
                out.push(byte);
            }
            Some('*') => {
                let mut count = String::new();
                while let Some((_, d)) = chars.next_if(|(_, d)| d.is_ascii_digit()) {
                    count.push(d);
                }
                let n: usize = count.parse().map_err(|_| format!("`\\*` at offset {at} needs a count"))?;
                let unit: String = match chars.next().map(|(_, c)| c) {
                    Some(':') => chars.next().map(|(_, c)| c.to_string()).unwrap_or_default(),
                    Some('{') => chars.by_ref().map(|(_, c)| c).take_while(|c| *c != '}').collect(),
                    _ => String::new(),
                };
                if unit.is_empty() {
                    return Err(format!("`\\*{n}` at offset {at} must be followed by `:C` or `{{TEXT}}`"));
                }
                if n.saturating_mul(unit.len()) > 64 << 20 {
                    return Err(format!("`\\*{n}` at offset {at} makes more than 64 MiB"));
                }
                out.extend_from_slice(unit.repeat(n).as_bytes());
            }
            Some(other) => return Err(format!("unknown escape `\\{other}` at offset {at}")),
            None => return Err(format!("lone backslash at the end (offset {at})")),
        }
    }
    Ok(out)
}

/// Numbers compare by value (QEMU echoes `1.0` as `1`); everything else structurally.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

// ---- raw (serde) shapes of the file -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    case: Vec<Spanned<RawCase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: Option<Spanned<String>>,
    rule: Option<Spanned<String>>,
    description: Option<String>,
    negotiate: Option<bool>,
    #[serde(default)]
    enable: Vec<String>,
    #[serde(default)]
    requires: RawRequires,
    survives: Option<bool>,
    isolate: Option<bool>,
    timeout_ms: Option<u64>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRequires {
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    commands: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    send: Option<String>,
    send_bytes: Option<String>,
    pause_ms: Option<u64>,
    greeting: Option<bool>,
    reply: Option<RawReply>,
    event: Option<String>,
    quiet_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    id: Option<toml::Value>,
    id_json: Option<String>,
    no_id: Option<bool>,
    class: String,
    desc_prefix: Option<String>,
    returns: Option<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    in_order: bool,
}

/// Byte offset to 1-based line number.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> u32 {
        let index = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(index.max(1)).unwrap_or(u32::MAX)
    }
}

/// Conversion state: where problems go.
struct Ctx<'a> {
    file: &'a str,
    lines: &'a LineIndex,
    problems: Vec<CaseProblem>,
}

impl Ctx<'_> {
    fn problem(&mut self, offset: usize, field: &str, message: impl Into<String>) {
        let source = Source::new(self.file, self.lines.line(offset));
        self.problems.push(CaseProblem { source, field: field.into(), message: message.into() });
    }

    fn case(&mut self, raw: Spanned<RawCase>) -> Option<Case> {
        let at = raw.span().start;
        let raw = raw.into_inner();
        let before = self.problems.len();
        let id = match raw.id {
            Some(id) if valid_id(id.get_ref()) => Some(id.into_inner()),
            Some(id) => {
                let msg = format!("`{}` is not a valid id (letters, digits, `-`, `_`, `.`)", id.get_ref());
                self.problem(id.span().start, "case.id", msg);
                None
            }
            None => {
                self.problem(at, "case.id", "missing");
                None
            }
        };
        let rule = match raw.rule {
            Some(r) => match r.get_ref().parse::<Rule>() {
                Ok(rule) => Some(rule),
                Err(e) => {
                    self.problem(r.span().start, "case.rule", e.to_string());
                    None
                }
            },
            None => {
                self.problem(at, "case.rule", "missing: every case must cite a rule of qmp-rules.md");
                None
            }
        };
        let description = raw.description.filter(|d| !d.trim().is_empty());
        if description.is_none() {
            self.problem(at, "case.description", "missing or empty");
        }
        if raw.step.is_empty() {
            self.problem(at, "case.step", "a case needs at least one step");
        }
        let negotiate = raw.negotiate.unwrap_or(true);
        if !negotiate && !raw.enable.is_empty() {
            self.problem(at, "case.enable", "capabilities can only be enabled when `negotiate` is true");
        }
        let steps: Vec<Step> = raw.step.into_iter().filter_map(|s| self.step(s)).collect();
        if self.problems.len() > before {
            return None;
        }
        Some(Case {
            id: id?,
            rule: rule?,
            description: description?,
            setup: Setup {
                negotiate,
                enable: raw.enable,
                requires_capabilities: raw.requires.capabilities,
                requires_commands: raw.requires.commands,
            },
            steps,
            survives: raw.survives.unwrap_or(true),
            isolate: raw.isolate.unwrap_or(false),
            timeout: raw.timeout_ms.map(Duration::from_millis),
            source: Source::new(self.file, self.lines.line(at)),
        })
    }

    fn step(&mut self, raw: Spanned<RawStep>) -> Option<Step> {
        let at = raw.span().start;
        let raw = raw.into_inner();
        let given = [
            raw.send.is_some(),
            raw.send_bytes.is_some(),
            raw.pause_ms.is_some(),
            raw.greeting.is_some(),
            raw.reply.is_some(),
            raw.event.is_some(),
            raw.quiet_ms.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.problem(
                at,
                "case.step",
                "a step needs exactly one of send, send_bytes, pause_ms, greeting, reply, event, quiet_ms",
            );
            return None;
        }
        if let Some(text) = raw.send {
            return Some(Step::Send(text.into_bytes()));
        }
        if let Some(text) = raw.send_bytes {
            return match decode_send_bytes(&text) {
                Ok(bytes) => Some(Step::Send(bytes)),
                Err(e) => {
                    self.problem(at, "case.step.send_bytes", e);
                    None
                }
            };
        }
        if let Some(ms) = raw.pause_ms {
            return Some(Step::Pause(Duration::from_millis(ms)));
        }
        if let Some(ms) = raw.quiet_ms {
            return Some(Step::Quiet(Duration::from_millis(ms)));
        }
        if let Some(name) = raw.event {
            return Some(Step::Event(name));
        }
        if let Some(flag) = raw.greeting {
            if !flag {
                self.problem(at, "case.step.greeting", "only `greeting = true` means something");
                return None;
            }
            return Some(Step::Greeting);
        }
        raw.reply.and_then(|r| self.reply(r, at)).map(Step::Reply)
    }

    fn reply(&mut self, raw: RawReply, at: usize) -> Option<ReplyExpectation> {
        let field = "case.step.reply";
        let id = match (raw.id, raw.id_json, raw.no_id.unwrap_or(false)) {
            (Some(v), None, false) => match toml_to_json(v) {
                Ok(v) => IdMatch::Id(v),
                Err(e) => {
                    self.problem(at, &format!("{field}.id"), e);
                    return None;
                }
            },
            (None, Some(text), false) => {
                let parsed = decode_send_bytes(&text).and_then(|bytes| {
                    let mut de = serde_json::Deserializer::from_slice(&bytes);
                    de.disable_recursion_limit();
                    let de = serde_stacker::Deserializer::new(&mut de);
                    Value::deserialize(de).map_err(|e| format!("not JSON: {e}"))
                });
                match parsed {
                    Ok(v) => IdMatch::Id(v),
                    Err(e) => {
                        self.problem(at, &format!("{field}.id_json"), e);
                        return None;
                    }
                }
            }
            (None, None, true) => IdMatch::NoId,
            _ => {
                self.problem(at, field, "give exactly one of id, id_json, no_id = true");
                return None;
            }
        };
        let class = match raw.class.as_str() {
            "ok" => ReplyClass::Ok,
            "error" => ReplyClass::AnyError,
            c if ERROR_CLASSES.contains(&c) => ReplyClass::Error(c.to_string()),
            c => {
                let msg = format!("unknown class `{c}` (ok, error, or one of {})", ERROR_CLASSES.join(", "));
                self.problem(at, &format!("{field}.class"), msg);
                return None;
            }
        };
        let returns = match raw.returns.as_deref() {
            None => None,
            Some("object") => Some(ReturnShape::Object),
            Some("empty") => Some(ReturnShape::Empty),
            Some("array") => Some(ReturnShape::Array),
            Some("string") => Some(ReturnShape::String),
            Some(other) => {
                let msg = format!("unknown shape `{other}` (object, empty, array, string)");
                self.problem(at, &format!("{field}.returns"), msg);
                return None;
            }
        };
        if class != ReplyClass::Ok && (returns.is_some() || !raw.keys.is_empty()) {
            self.problem(at, field, "returns/keys only apply to class = \"ok\"");
            return None;
        }
        if raw.desc_prefix.is_some() && class == ReplyClass::Ok {
            self.problem(at, field, "desc_prefix only applies to error classes");
            return None;
        }
        Some(ReplyExpectation {
            id,
            class,
            desc_prefix: raw.desc_prefix,
            returns,
            keys: raw.keys,
            in_order: raw.in_order,
        })
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn toml_to_json(value: toml::Value) -> Result<Value, String> {
    match value {
        toml::Value::String(s) => Ok(Value::String(s)),
        toml::Value::Integer(i) => Ok(Value::from(i)),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} is not a JSON number")),
        toml::Value::Boolean(b) => Ok(Value::Bool(b)),
        toml::Value::Datetime(d) => Err(format!("datetime {d} has no JSON form (use id_json)")),
        toml::Value::Array(items) => {
            items.into_iter().map(toml_to_json).collect::<Result<_, _>>().map(Value::Array)
        }
        toml::Value::Table(table) => table
            .into_iter()
            .map(|(k, v)| toml_to_json(v).map(|v| (k, v)))
            .collect::<Result<_, _>>()
            .map(Value::Object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_bytes_escapes() {
        assert_eq!(decode_send_bytes(r#"a\xff\r\n\\\*3:["#).unwrap(), b"a\xff\r\n\\[[[".to_vec());
        assert_eq!(decode_send_bytes(r"\xC3\x28").unwrap(), vec![0xC3, 0x28]);
        assert_eq!(decode_send_bytes(r"\q").unwrap_err(), "unknown escape `\\q` at offset 0");
        assert_eq!(
            decode_send_bytes(r"ab\xZ1").unwrap_err(),
            "`\\x` at offset 2 needs two hex digits, got `Z1`"
        );
        assert_eq!(decode_send_bytes(r"\*2{1,}]").unwrap(), b"1,1,]".to_vec());
        assert_eq!(
            decode_send_bytes(r"\*2[").unwrap_err(),
            "`\\*2` at offset 0 must be followed by `:C` or `{TEXT}`"
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equal(&serde_json::json!(1), &serde_json::json!(1.0)));
        assert!(json_equal(&serde_json::json!({"a": [1, "x"]}), &serde_json::json!({"a": [1.0, "x"]})));
        assert!(!json_equal(&serde_json::json!(1), &serde_json::json!("1")));
        assert!(!json_equal(&serde_json::json!([1]), &serde_json::json!([1, 2])));
    }

    #[test]
    fn builtin_cases_load() {
        let cases = builtin_cases().unwrap_or_else(|e| panic!("{e}"));
        assert!(cases.len() >= 40, "{} cases", cases.len());
    }

    #[test]
    fn line_index() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!((idx.line(0), idx.line(2), idx.line(5), idx.line(6)), (1, 2, 3, 4));
    }
}
