//! The safety deny rules as data, and the two gates that enforce them.
//!
//! The rules live in `deny-rules.toml` (next to this file, built into the binary; a copy
//! can be loaded from a path). They say, per command, what a fuzzer must never let QEMU do
//! (shared/docs/safety.md): run programs, touch host files outside the scratch dir, open
//! network listeners or host devices. [`SafetyRules::check`] is the gate the generator
//! passes every command through; [`SafetyRules::check_bytes`] is the last gate before bytes
//! reach a socket: it parses whatever JSON texts the bytes hold and applies the same rules,
//! and when the bytes are anything but clean JSON (mutated, truncated, duplicate keys,
//! QEMU's single-quoted extension) it refuses them if they so much as name a command that
//! has a rule, because QEMU's parser may read them differently.
//!
//! Verdicts: [`Verdict::Allow`], [`Verdict::Rewrite`] (paths moved into the scratch dir) and
//! [`Verdict::Deny`] with the rule id and its reason. [`SafetyRules::rules_table`] renders
//! every rule as Markdown for reports.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use crate::spec::Spec;
use crate::wire::stream::UniqueKeysValue;

/// The built-in rules file (also the default for every fuzz run).
pub const BUILTIN_RULES: &str = include_str!("deny-rules.toml");

/// The label the built-in rules report in errors and tables.
pub const BUILTIN_RULES_FILE: &str = "src/gen/deny-rules.toml";

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The command is never sent.
    Deny,
    /// The command is sent; its effect is expected (documentation only).
    Allow,
    /// Listed members must take one of the listed values or prefixes.
    AllowOnly,
    /// Listed members must not take the listed values.
    DenyValues,
    /// Listed members must not appear.
    DenyMembers,
    /// Listed path members are rewritten into the scratch dir.
    RewritePath,
    /// String values of the listed members must be paths inside the scratch dir.
    ScratchPaths,
    /// Integer values of the listed members must not exceed a maximum.
    Max,
    /// Denied unless the unstable campaign is on.
    Campaign,
}

impl Action {
    /// The spelling in the rules file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Allow => "allow",
            Action::AllowOnly => "allow-only",
            Action::DenyValues => "deny-values",
            Action::DenyMembers => "deny-members",
            Action::RewritePath => "rewrite-path",
            Action::ScratchPaths => "scratch-paths",
            Action::Max => "max",
            Action::Campaign => "campaign",
        }
    }

    const ALL: [Action; 9] = [
        Action::Deny,
        Action::Allow,
        Action::AllowOnly,
        Action::DenyValues,
        Action::DenyMembers,
        Action::RewritePath,
        Action::ScratchPaths,
        Action::Max,
        Action::Campaign,
    ];

    fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == text)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One rule of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique id, named in verdicts and findings.
    pub id: String,
    /// Command names or `prefix*` globs; `*` alone matches every command.
    pub commands: Vec<String>,
    /// Commands (or globs) a `*` rule does not apply to.
    pub except: Vec<String>,
    /// What it does.
    pub action: Action,
    /// Member names it looks at (at any depth of the arguments).
    pub members: Vec<String>,
    /// Values (`allow-only`, exact) or patterns (`deny-values`, `prefix*` globs).
    pub values: Vec<String>,
    /// Allowed value prefixes (`allow-only`, `rewrite-path`).
    pub prefixes: Vec<String>,
    /// `allow-only`: the text after the prefix must be a path inside the scratch dir.
    pub scratch_path: bool,
    /// `max`: the largest integer allowed.
    pub max: Option<i128>,
    /// `max`: the smallest integer allowed, if any (`min` in the file).
    pub min: Option<i128>,
    /// Why the rule exists.
    pub reason: String,
    /// Where the rule is (`FILE:LINE`).
    pub source: String,
}

impl Rule {
    /// Whether the rule applies to `command`.
    pub fn applies_to(&self, command: &str) -> bool {
        let listed = self.commands.iter().any(|p| p == "*" || glob_match(p, command));
        listed && !self.except.iter().any(|p| glob_match(p, command))
    }

    fn names_member(&self, member: &str) -> bool {
        self.members.iter().any(|m| m == member)
    }
}

/// A decision about one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Send it as it is.
    Allow,
    /// Send this instead: for [`SafetyRules::check`] the rewritten `arguments`; for
    /// [`SafetyRules::check_bytes`] the rewritten command object, or, when the bytes held
    /// several texts, an array of every text (each to be sent as its own text).
    Rewrite(Value),
    /// Never send it.
    Deny {
        /// The rule that refused it.
        rule_id: String,
        /// Why, naming the member and value at fault.
        reason: String,
    },
}

impl Verdict {
    /// Whether the verdict refuses the command.
    pub fn is_deny(&self) -> bool {
        matches!(self, Verdict::Deny { .. })
    }
}

/// Errors loading a rules file; each names `FILE:LINE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The text is not valid TOML or does not have the rules shape.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file label.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A rule is incomplete or contradicts itself.
    #[error("{file}:{line}: rule '{id}': {message}")]
    Invalid {
        /// The file label.
        file: String,
        /// 1-based line of the rule.
        line: usize,
        /// The rule's id (empty when it has none).
        id: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("{file}: {message}")]
    Io {
        /// The path.
        file: String,
        /// The OS error text.
        message: String,
    },
}

/// The loaded rules plus the campaign switch and the scratch dir used by [`SafetyRules::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyRules {
    rules: Vec<Rule>,
    file: String,
    unstable_campaign: bool,
    campaign_commands: BTreeSet<String>,
    scratch: Option<PathBuf>,
}

impl SafetyRules {
    /// The rules built into the binary.
    pub fn load_builtin() -> SafetyRules {
        match SafetyRules::from_str(BUILTIN_RULES, BUILTIN_RULES_FILE) {
            Ok(rules) => rules,
            // The built-in file is tested; an empty rule set would be unsafe, so deny all.
            Err(e) => SafetyRules::deny_everything(&e.to_string()),
        }
    }

    /// Reads rules from a file.
    pub fn load(path: &Path) -> Result<SafetyRules, RulesError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| RulesError::Io { file: file.clone(), message: e.to_string().to_lowercase() })?;
        SafetyRules::from_str(&text, &file)
    }

    /// Parses rules text; `file` labels errors (`FILE:LINE: message`).
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, file: &str) -> Result<SafetyRules, RulesError> {
        let lines = LineIndex::new(text);
        let raw: RawFile = toml::from_str(text).map_err(|e| RulesError::Syntax {
            file: file.to_string(),
            line: e.span().map(|s| lines.line(s.start)).unwrap_or(1),
            message: first_line(e.message()),
        })?;
        let mut rules = Vec::with_capacity(raw.rule.len());
        let mut ids = BTreeSet::new();
        for spanned in raw.rule {
            let line = lines.line(spanned.span().start);
            let rule = validate(spanned.into_inner(), file, line)?;
            if !ids.insert(rule.id.clone()) {
                return Err(invalid(file, line, &rule.id, "duplicate rule id"));
            }
            rules.push(rule);
        }
        if rules.is_empty() {
            return Err(RulesError::Syntax {
                file: file.to_string(),
                line: 1,
                message: "no [[rule]] entries".to_string(),
            });
        }
        Ok(SafetyRules {
            rules,
            file: file.to_string(),
            unstable_campaign: false,
            campaign_commands: BTreeSet::new(),
            scratch: None,
        })
    }

    /// The same rules with the unstable campaign switched on or off (off by default).
    pub fn with_unstable_campaign(mut self, on: bool) -> SafetyRules {
        self.unstable_campaign = on;
        self
    }

    /// The same rules, also treating the model's deprecated and unstable commands as
    /// campaign-only (the rules file can only name `x-*`).
    pub fn with_model(mut self, spec: &Spec) -> SafetyRules {
        for command in spec.commands.values() {
            if command.is_deprecated() || command.is_unstable() {
                self.campaign_commands.insert(command.name.clone());
            }
        }
        self
    }

    /// The same rules with a scratch dir for [`SafetyRules::check`]: absolute paths under it
    /// are allowed and rewrites go into it (without one, only relative paths are allowed,
    /// QEMU's working dir being the scratch dir, and rewrites give relative names).
    pub fn with_scratch(mut self, dir: impl Into<PathBuf>) -> SafetyRules {
        self.scratch = Some(dir.into());
        self
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The file the rules came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether the unstable campaign is on.
    pub fn unstable_campaign(&self) -> bool {
        self.unstable_campaign
    }

    /// Whether the command is refused whatever its arguments (a `deny` rule, or campaign-only).
    pub fn denies_command(&self, command: &str) -> bool {
        let campaign_off = !self.unstable_campaign;
        (campaign_off && self.campaign_commands.contains(command))
            || self.rules.iter().any(|r| {
                r.applies_to(command)
                    && (r.action == Action::Deny || (r.action == Action::Campaign && campaign_off))
            })
    }

    /// Checks one command and its `arguments` (pass `{}` or `null` when there are none).
    pub fn check(&self, command: &str, arguments: &Value) -> Verdict {
        self.check_in(command, arguments, self.scratch.as_deref())
    }

    /// [`SafetyRules::check`] with an explicit scratch dir.
    pub fn check_in(&self, command: &str, arguments: &Value, scratch: Option<&Path>) -> Verdict {
        if self.campaign_commands.contains(command) && !self.unstable_campaign {
            return Verdict::Deny {
                rule_id: "unstable-campaign".to_string(),
                reason: format!(
                    "'{command}' is deprecated or unstable: it runs only in the unstable campaign"
                ),
            };
        }
        let mut working = arguments.clone();
        for rule in self.rules.iter().filter(|r| r.applies_to(command)) {
            if let Err(why) = self.apply(rule, &mut working, scratch) {
                return Verdict::Deny { rule_id: rule.id.clone(), reason: format!("{why}: {}", rule.reason) };
            }
        }
        if &working == arguments {
            Verdict::Allow
        } else {
            Verdict::Rewrite(working)
        }
    }

    /// The last gate: checks every JSON text `bytes` holds with `scratch_dir` as the scratch
    /// dir. Bytes that are not a clean sequence of JSON texts (parse errors, truncation,
    /// duplicate keys, invalid UTF-8, nesting past 128) are denied when they name, even
    /// escaped, a command with a rule or a path member, since QEMU may parse them otherwise.
    pub fn check_bytes(&self, bytes: &[u8], scratch_dir: &Path) -> Verdict {
        let (texts, clean) = split_texts(bytes);
        let mut rewritten = Vec::with_capacity(texts.len());
        let mut any_rewrite = false;
        for text in &texts {
            match self.check_text(text, scratch_dir) {
                Verdict::Allow => rewritten.push(text.clone()),
                Verdict::Rewrite(v) => {
                    any_rewrite = true;
                    rewritten.push(v);
                }
                deny @ Verdict::Deny { .. } => return deny,
            }
        }
        if !clean {
            if let Some(deny) = self.scan_irregular(bytes) {
                return deny;
            }
            if any_rewrite {
                return Verdict::Deny {
                    rule_id: "irregular-bytes".to_string(),
                    reason: "a command needing a path rewrite sits in bytes that are not clean json"
                        .to_string(),
                };
            }
            return Verdict::Allow;
        }
        match (any_rewrite, rewritten.len()) {
            (false, _) => Verdict::Allow,
            (true, 1) => Verdict::Rewrite(rewritten.pop().unwrap_or(Value::Null)),
            (true, _) => Verdict::Rewrite(Value::Array(rewritten)),
        }
    }

    /// Every rule as a Markdown list (printed in every fuzz report).
    pub fn rules_table(&self) -> String {
        let mut out = format!(
            "Safety rules ({} from {}; unstable campaign {}):\n\n",
            self.rules.len(),
            self.file,
            if self.unstable_campaign { "on" } else { "off" }
        );
        for rule in &self.rules {
            out.push_str(&format!("- **{}** `{}`: {}", rule.id, rule.action, rule.commands.join(", ")));
            if !rule.except.is_empty() {
                out.push_str(&format!(" (except {})", rule.except.join(", ")));
            }
            if !rule.members.is_empty() {
                out.push_str(&format!("; members {}", rule.members.join(", ")));
            }
            if !rule.values.is_empty() {
                out.push_str(&format!("; values {}", rule.values.join(", ")));
            }
            if !rule.prefixes.is_empty() {
                out.push_str(&format!("; prefixes {}", rule.prefixes.join(", ")));
            }
            if let Some(max) = rule.max {
                out.push_str(&format!("; max {max}"));
            }
            if let Some(min) = rule.min {
                out.push_str(&format!("; min {min}"));
            }
            out.push_str(&format!(". {} ({})\n", rule.reason, rule.source));
        }
        out
    }

    /// What the generator should do for `command`, so it rarely builds what a rule refuses.
    pub fn steer(&self, command: &str) -> Steer {
        let mut steer = Steer::default();
        for rule in self.rules.iter().filter(|r| r.applies_to(command)) {
            for member in &rule.members {
                match rule.action {
                    Action::AllowOnly if !rule.values.is_empty() => {
                        steer.allowed_values.push((member.clone(), rule.values.clone()));
                    }
                    // A path after a required prefix: the walker writes the prefix and a
                    // plain relative name (without it a rewrite rule with prefixes denies).
                    Action::AllowOnly | Action::RewritePath if !rule.prefixes.is_empty() => {
                        steer.allowed_prefixes.push((member.clone(), rule.prefixes.clone()));
                    }
                    Action::DenyValues => steer.denied_values.push((member.clone(), rule.values.clone())),
                    Action::DenyMembers => steer.denied_members.push(member.clone()),
                    Action::Max => {
                        steer.int_max.push((member.clone(), rule.max.unwrap_or(0)));
                        if let Some(min) = rule.min {
                            steer.int_min.push((member.clone(), min));
                        }
                    }
                    _ => {}
                }
            }
        }
        steer
    }

    fn deny_everything(why: &str) -> SafetyRules {
        let rule = Rule {
            id: "rules-unavailable".to_string(),
            commands: vec!["*".to_string()],
            except: Vec::new(),
            action: Action::Deny,
            members: Vec::new(),
            values: Vec::new(),
            prefixes: Vec::new(),
            scratch_path: false,
            max: None,
            min: None,
            reason: format!("the built-in rules do not load: {why}"),
            source: BUILTIN_RULES_FILE.to_string(),
        };
        SafetyRules {
            rules: vec![rule],
            file: BUILTIN_RULES_FILE.to_string(),
            unstable_campaign: false,
            campaign_commands: BTreeSet::new(),
            scratch: None,
        }
    }

    /// Applies one rule to the working arguments; `Err` says what is refused.
    fn apply(&self, rule: &Rule, args: &mut Value, scratch: Option<&Path>) -> Result<(), String> {
        match rule.action {
            Action::Allow => Ok(()),
            Action::Deny => Err("command denied".to_string()),
            Action::Campaign if self.unstable_campaign => Ok(()),
            Action::Campaign => Err("unstable campaign is off".to_string()),
            Action::AllowOnly => {
                for_each_member(args, rule, &mut |name, value| allow_only(rule, name, value, scratch))
            }
            Action::DenyValues => for_each_member(args, rule, &mut |name, value| match value.as_str() {
                Some(s) if rule.values.iter().any(|p| glob_match(p, s)) => {
                    Err(format!("{name} '{s}' is denied"))
                }
                _ => Ok(()),
            }),
            Action::DenyMembers => {
                for_each_member(args, rule, &mut |name, _| Err(format!("member '{name}' is denied")))
            }
            Action::ScratchPaths => for_each_member(args, rule, &mut |name, value| match value.as_str() {
                Some(s) => path_inside(s, scratch).map_err(|why| format!("{name} '{}': {why}", clip(s))),
                None => Ok(()),
            }),
            Action::Max => for_each_member(args, rule, &mut |name, value| {
                let max = rule.max.unwrap_or(0);
                match (value.as_f64(), rule.min) {
                    (Some(f), _) if f > max as f64 => Err(format!("{name} {value} exceeds {max}")),
                    (Some(f), Some(min)) if f < min as f64 => Err(format!("{name} {value} is below {min}")),
                    _ => Ok(()),
                }
            }),
            Action::RewritePath => rewrite_members(args, rule, scratch),
        }
    }

    /// Checks one parsed text: a command object is checked by its name and arguments;
    /// anything else is not a command (QEMU refuses it) and passes.
    fn check_text(&self, text: &Value, scratch: &Path) -> Verdict {
        let Some(object) = text.as_object() else { return Verdict::Allow };
        let names: Vec<&str> =
            ["execute", "exec-oob"].iter().filter_map(|k| object.get(*k).and_then(Value::as_str)).collect();
        let empty = Value::Object(Map::new());
        let arguments = object.get("arguments").unwrap_or(&empty);
        let mut result = Verdict::Allow;
        for name in names {
            match self.check_in(name, arguments, Some(scratch)) {
                Verdict::Allow => {}
                Verdict::Rewrite(args) => {
                    let mut command = object.clone();
                    command.insert("arguments".to_string(), args);
                    result = Verdict::Rewrite(Value::Object(command));
                }
                deny => return deny,
            }
        }
        result
    }

    /// The conservative scan of bytes that are not clean JSON: deny when they name a command
    /// some rule restricts, an `x-`/campaign command, or a path member.
    fn scan_irregular(&self, bytes: &[u8]) -> Option<Verdict> {
        let decoded = unescape(&String::from_utf8_lossy(bytes));
        let quoted = |needle: &str, glob: bool| {
            ['"', '\''].iter().any(|q| {
                let open = format!("{q}{needle}");
                if glob {
                    decoded.contains(&open)
                } else {
                    decoded.contains(&format!("{open}{q}"))
                }
            })
        };
        let deny = |rule_id: &str, what: &str| {
            Some(Verdict::Deny {
                rule_id: rule_id.to_string(),
                reason: format!("bytes that are not clean json name {what}: refused conservatively"),
            })
        };
        for rule in &self.rules {
            if rule.action == Action::Allow || (rule.action == Action::Campaign && self.unstable_campaign) {
                continue;
            }
            for pattern in rule.commands.iter().filter(|p| p.as_str() != "*") {
                let (needle, glob) = match pattern.strip_suffix('*') {
                    Some(prefix) => (prefix, true),
                    None => (pattern.as_str(), false),
                };
                if quoted(needle, glob) {
                    return deny(&rule.id, &format!("'{pattern}'"));
                }
            }
            if rule.commands.iter().any(|p| p == "*") {
                if let Some(member) = rule.members.iter().find(|m| quoted(m, false)) {
                    return deny(&rule.id, &format!("member '{member}'"));
                }
            }
        }
        if !self.unstable_campaign {
            if let Some(name) = self.campaign_commands.iter().find(|n| quoted(n, false)) {
                return deny("unstable-campaign", &format!("'{name}'"));
            }
        }
        None
    }
}

/// Hints for the generator derived from the rules for one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steer {
    /// Members whose values must be one of these.
    pub allowed_values: Vec<(String, Vec<String>)>,
    /// Members whose values must start with one of these prefixes (then a scratch path).
    pub allowed_prefixes: Vec<(String, Vec<String>)>,
    /// Members whose values must not match these patterns.
    pub denied_values: Vec<(String, Vec<String>)>,
    /// Members that must be left out.
    pub denied_members: Vec<String>,
    /// Integer members with a maximum.
    pub int_max: Vec<(String, i128)>,
    /// Integer members with a minimum.
    pub int_min: Vec<(String, i128)>,
}

impl Steer {
    /// The values `member` must take, if restricted.
    pub fn allowed(&self, member: &str) -> Option<&[String]> {
        self.allowed_values.iter().find(|(m, _)| m == member).map(|(_, v)| v.as_slice())
    }

    /// The prefixes `member` must start with, if restricted.
    pub fn prefixes(&self, member: &str) -> Option<&[String]> {
        self.allowed_prefixes.iter().find(|(m, _)| m == member).map(|(_, v)| v.as_slice())
    }

    /// Whether `value` of `member` is denied.
    pub fn value_denied(&self, member: &str, value: &str) -> bool {
        self.denied_values.iter().any(|(m, pats)| m == member && pats.iter().any(|p| glob_match(p, value)))
    }

    /// Whether `member` must be left out.
    pub fn member_denied(&self, member: &str) -> bool {
        self.denied_members.iter().any(|m| m == member)
    }

    /// The maximum of an integer member, if any.
    pub fn max(&self, member: &str) -> Option<i128> {
        self.int_max.iter().find(|(m, _)| m == member).map(|(_, v)| *v)
    }

    /// The minimum of an integer member, if any.
    pub fn min(&self, member: &str) -> Option<i128> {
        self.int_min.iter().find(|(m, _)| m == member).map(|(_, v)| *v)
    }
}

/// Whether `name` matches `pattern` (exact, or `prefix*`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Whether `path` stays inside the scratch dir: relative without `..`, or absolute under
/// `scratch`; never a `proto:` prefix (QEMU treats `nbd:`, `json:`... as protocols).
pub fn path_inside(path: &str, scratch: Option<&Path>) -> Result<(), String> {
    if path.contains(':') {
        return Err("a ':' may select a protocol driver".to_string());
    }
    if path.contains('\0') || path.starts_with('~') {
        return Err("not a plain path".to_string());
    }
    let p = Path::new(path);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err("'..' leaves the scratch dir".to_string());
    }
    if p.is_absolute() {
        let inside = scratch.is_some_and(|dir| dir.is_absolute() && p.starts_with(dir));
        if !inside {
            return Err("absolute path outside the scratch dir".to_string());
        }
    }
    Ok(())
}

/// The scratch-dir form of a path: its last component made file-safe, under `scratch`
/// (or relative when there is none).
pub fn rewrite_into(path: &str, scratch: Option<&Path>) -> String {
    let last = path.rsplit(['/', '\\', ':']).next().unwrap_or("");
    let mut safe: String =
        last.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    safe = safe.trim_start_matches('.').to_string();
    if safe.is_empty() {
        safe = "qmpcheck-out".to_string();
    }
    match scratch {
        Some(dir) => dir.join(safe).display().to_string(),
        None => safe,
    }
}

// ---------------------------------------------------------------------------------------
// Rule application helpers.

/// Calls `f` on every member named by `rule` at any depth; stops at the first refusal.
fn for_each_member(
    value: &Value,
    rule: &Rule,
    f: &mut dyn FnMut(&str, &Value) -> Result<(), String>,
) -> Result<(), String> {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (key, member) in map {
                    if rule.names_member(key) {
                        f(key, member)?;
                    }
                    stack.push(member);
                }
            }
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    Ok(())
}

fn allow_only(rule: &Rule, name: &str, value: &Value, scratch: Option<&Path>) -> Result<(), String> {
    let Some(s) = value.as_str() else {
        // A non-string where a string is expected is refused by QEMU; objects of an
        // alternate are walked by the caller.
        return if value.is_object() || value.is_array() {
            Ok(())
        } else {
            Err(format!("{name} {value} is not an allowed value"))
        };
    };
    if rule.values.iter().any(|v| v == s) {
        return Ok(());
    }
    for prefix in &rule.prefixes {
        if let Some(rest) = s.strip_prefix(prefix.as_str()) {
            if !rule.scratch_path {
                return Ok(());
            }
            return path_inside(rest, scratch).map_err(|why| format!("{name} '{}': {why}", clip(s)));
        }
    }
    Err(format!("{name} '{}' is not allowed", clip(s)))
}

fn rewrite_members(value: &mut Value, rule: &Rule, scratch: Option<&Path>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                if rule.names_member(key) {
                    if let Value::String(s) = member {
                        *s = rewrite_one(rule, key, s, scratch)?;
                        continue;
                    }
                }
                rewrite_members(member, rule, scratch)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|v| rewrite_members(v, rule, scratch)),
        _ => Ok(()),
    }
}

fn rewrite_one(rule: &Rule, name: &str, value: &str, scratch: Option<&Path>) -> Result<String, String> {
    let (prefix, path) = if rule.prefixes.is_empty() {
        ("", value)
    } else {
        let hit =
            rule.prefixes.iter().find_map(|p| value.strip_prefix(p.as_str()).map(|rest| (p.as_str(), rest)));
        hit.ok_or_else(|| {
            format!("{name} '{}' has none of the prefixes {}", clip(value), rule.prefixes.join(", "))
        })?
    };
    if path_inside(path, scratch).is_ok() {
        return Ok(value.to_string());
    }
    Ok(format!("{prefix}{}", rewrite_into(path, scratch)))
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(80).collect::<String>())
    }
}

// ---------------------------------------------------------------------------------------
// Bytes: splitting into texts, duplicate keys, unescaping.

/// Parses `bytes` as whitespace-separated JSON texts. Returns the texts read and whether
/// the bytes were clean (every byte part of a valid text without duplicate keys).
fn split_texts(bytes: &[u8]) -> (Vec<Value>, bool) {
    let mut texts = Vec::new();
    let stream = serde_json::Deserializer::from_slice(bytes).into_iter::<UniqueKeysValue>();
    for item in stream {
        match item {
            Ok(UniqueKeysValue(v)) => texts.push(v),
            Err(_) => return (texts, false),
        }
    }
    (texts, true)
}

/// Decodes JSON backslash escapes anywhere in the text (`\u0068` → `h`, `\"` → `"`), so an
/// escaped command name is found by the scan. Lone surrogates become U+FFFD.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16) {
                    Ok(code) if hex.len() == 4 => {
                        for _ in 0..4 {
                            chars.next();
                        }
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                    }
                    _ => out.push('u'),
                }
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The file format.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRule {
    id: Option<String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    action: Option<String>,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    scratch_path: bool,
    max: Option<i64>,
    min: Option<i64>,
    reason: Option<String>,
}

fn validate(raw: RawRule, file: &str, line: usize) -> Result<Rule, RulesError> {
    let id = raw.id.unwrap_or_default();
    let err = |msg: &str| invalid(file, line, &id, msg);
    if id.trim().is_empty() {
        return Err(err("missing id"));
    }
    let action_text = raw.action.ok_or_else(|| err("missing action"))?;
    let action = Action::parse(&action_text).ok_or_else(|| {
        let known: Vec<_> = Action::ALL.iter().map(|a| a.name()).collect();
        err(&format!("unknown action '{action_text}' (expected one of {})", known.join(", ")))
    })?;
    let reason = raw.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(err("missing reason"));
    }
    if raw.commands.is_empty() {
        return Err(err("no commands"));
    }
    let needs_members = !matches!(action, Action::Deny | Action::Allow | Action::Campaign);
    if needs_members && raw.members.is_empty() {
        return Err(err(&format!("action '{action}' needs members")));
    }
    match action {
        Action::AllowOnly if raw.values.is_empty() && raw.prefixes.is_empty() => {
            return Err(err("allow-only needs values or prefixes"));
        }
        Action::DenyValues if raw.values.is_empty() => return Err(err("deny-values needs values")),
        Action::Max if raw.max.is_none() => return Err(err("max needs max")),
        Action::Max if raw.min > raw.max => return Err(err("min exceeds max")),
        _ if raw.min.is_some() && action != Action::Max => return Err(err("only max takes min")),
        _ => {}
    }
    Ok(Rule {
        id,
        commands: raw.commands,
        except: raw.except,
        action,
        members: raw.members,
        values: raw.values,
        prefixes: raw.prefixes,
        scratch_path: raw.scratch_path,
        max: raw.max.map(i128::from),
        min: raw.min.map(i128::from),
        reason,
        source: format!("{file}:{line}"),
    })
}

fn invalid(file: &str, line: usize, id: &str, message: &str) -> RulesError {
    RulesError::Invalid { file: file.to_string(), line, id: id.to_string(), message: message.to_string() }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_string()
}

/// Byte offset → 1-based line.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_rules_load() {
        let rules = SafetyRules::from_str(BUILTIN_RULES, BUILTIN_RULES_FILE).expect("builtin rules load");
        assert!(rules.rules().iter().all(|r| !r.reason.is_empty()));
    }

    #[test]
    fn paths_inside_and_outside() {
        assert!(path_inside("dump.bin", None).is_ok());
        assert!(path_inside("../x", None).is_err());
        assert!(path_inside("/tmp/s/x", Some(Path::new("/tmp/s"))).is_ok());
        assert!(path_inside("/tmp/sx/x", Some(Path::new("/tmp/s"))).is_err());
        assert!(path_inside("nbd:localhost:1", None).is_err());
        assert_eq!(rewrite_into("/etc/passwd", Some(Path::new("/s"))), "/s/passwd");
        assert_eq!(rewrite_into("/dev/tcp/1.2.3.4/80", None), "80");
        assert_eq!(rewrite_into("..", None), "qmpcheck-out");
    }

    #[test]
    fn unescape_finds_escaped_names() {
        assert_eq!(unescape(r#""\u0068mp\"""#), "\"hmp\"\"");
    }

    #[test]
    fn duplicate_keys_make_bytes_irregular() {
        let (texts, clean) = split_texts(br#"{"a":1,"a":2}"#);
        assert!(texts.is_empty());
        assert!(!clean);
        let (texts, clean) = split_texts(b" {\"a\":1} [2] ");
        assert_eq!(texts, vec![json!({"a":1}), json!([2])]);
        assert!(clean);
    }
}
