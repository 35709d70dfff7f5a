//! Finding classes and signatures: what makes two findings "the same".
//!
//! A signature is the class, the command name and a normalised key:
//! - crash: the signal (or exit code) plus the top assertion text of QEMU's stderr, with
//!   numbers and addresses stripped, so the same bug hit with other values dedups;
//! - sandbox leak (SIGSYS): the command only (a deny rule let it through);
//! - hang: the command only;
//! - violation: the rule ID plus the instance path (`/return/0/name`);
//! - unexpected success: the mutator that made the malformed command.
//!
//! [`Signature::dir_name`] turns it into a file-safe folder name with a short hash, so
//! distinct signatures never share a folder.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingClass {
    /// QEMU died: a signal (abort, segfault), a non-zero exit, an assertion.
    Crash,
    /// QEMU died of SIGSYS: the seccomp sandbox caught a command a deny rule should have
    /// stopped. A finding against qmpcheck, not QEMU.
    SandboxLeak,
    /// No reply within the timeout; the target was killed.
    Hang,
    /// A reply broke a protocol or schema rule (not JSON, wrong shape, id not echoed,
    /// return not valid by the schema).
    Violation,
    /// A command the mutator made malformed (expected an error) succeeded.
    UnexpectedSuccess,
}

impl FindingClass {
    /// Every class, in report order.
    pub const ALL: [FindingClass; 5] = [
        FindingClass::Crash,
        FindingClass::SandboxLeak,
        FindingClass::Hang,
        FindingClass::Violation,
        FindingClass::UnexpectedSuccess,
    ];

    /// The kebab-case name (`sandbox-leak`).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingClass::Crash => "crash",
            FindingClass::SandboxLeak => "sandbox-leak",
            FindingClass::Hang => "hang",
            FindingClass::Violation => "violation",
            FindingClass::UnexpectedSuccess => "unexpected-success",
        }
    }

    /// Whether the target must be restarted after it (it died or was killed).
    pub fn kills_target(self) -> bool {
        matches!(self, FindingClass::Crash | FindingClass::SandboxLeak | FindingClass::Hang)
    }
}

impl fmt::Display for FindingClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signature {
    class: FindingClass,
    command: String,
    key: String,
}

/// Longest normalised key kept (characters).
const KEY_LIMIT: usize = 120;

impl Signature {
    /// A crash: `how` is the signal name or `exit N`, `stderr` QEMU's stderr. The key is the
    /// last fatal line of stderr, else (for an exit with a code, where QEMU's last line is its
    /// fatal message) the last non-warning line.
    pub fn crash(command: &str, how: &str, stderr: &str) -> Signature {
        let top = normalise_stderr(stderr);
        let key = if top.is_empty() { how.to_string() } else { format!("{how} {top}") };
        Signature::new(FindingClass::Crash, command, &key)
    }

    /// A death by a signal: the key is the signal plus the last *fatal* line of stderr only.
    /// A segfault writes nothing, and the last line then belongs to an earlier command's
    /// error ("Failed to connect to ..."), which would split one bug into several signatures.
    pub fn crash_by_signal(command: &str, signal: &str, stderr: &str) -> Signature {
        let key = match fatal_line(stderr) {
            Some(line) => format!("{signal} {}", shorten(&strip_numbers(line), KEY_LIMIT)),
            None => signal.to_string(),
        };
        Signature::new(FindingClass::Crash, command, &key)
    }

    /// A SIGSYS death: a deny rule leaked.
    pub fn sandbox_leak(command: &str) -> Signature {
        Signature::new(FindingClass::SandboxLeak, command, "SIGSYS")
    }

    /// No reply in time.
    pub fn hang(command: &str) -> Signature {
        Signature::new(FindingClass::Hang, command, "")
    }

    /// A broken rule at an instance path (JSON pointer, empty for the whole reply).
    pub fn violation(rule: &str, command: &str, instance_path: &str) -> Signature {
        Signature::new(FindingClass::Violation, command, &format!("{rule} {}", normalise_path(instance_path)))
    }

    /// A malformed command that succeeded.
    pub fn unexpected_success(mutator: &str, command: &str) -> Signature {
        Signature::new(FindingClass::UnexpectedSuccess, command, mutator)
    }

    fn new(class: FindingClass, command: &str, key: &str) -> Signature {
        Signature { class, command: command.to_string(), key: shorten(key.trim(), KEY_LIMIT) }
    }

    /// The class.
    pub fn class(&self) -> FindingClass {
        self.class
    }

    /// The command name.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The normalised key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The full text: `class:command:key`.
    pub fn text(&self) -> String {
        format!("{}:{}:{}", self.class, self.command, self.key)
    }

    /// A file-safe folder name: the text with unsafe bytes as `_`, shortened, then an
    /// 8-hex-digit hash of the full text.
    pub fn dir_name(&self) -> String {
        let text = self.text();
        let mut safe: String = text
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        safe.truncate(80);
        let trimmed = safe.trim_end_matches('_');
        format!("{trimmed}-{:08x}", fnv1a(text.as_bytes()) as u32)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// The assertion text of a stderr that explains a death, with numbers and addresses
/// stripped.
///
/// QEMU's stderr holds the whole session, so the search runs from the end: the last line
/// that looks like an assertion or a fatal error (`Assertion`, `assertion failed`,
/// `ERROR:`, `Unexpected error`, `Segmentation`, `Aborted`, `**`, `panic`), else the last
/// non-empty line that is not a warning; hex addresses become `ADDR`, digit runs `N`.
pub fn normalise_stderr(stderr: &str) -> String {
    let chosen = fatal_line(stderr)
        .or_else(|| stderr.lines().map(str::trim).rev().find(|l| !l.is_empty() && !l.contains("warning")))
        .unwrap_or("");
    shorten(&strip_numbers(chosen), KEY_LIMIT)
}

/// The last line of stderr that looks like an assertion or a fatal error.
pub fn fatal_line(stderr: &str) -> Option<&str> {
    const MARKERS: [&str; 8] = [
        "Assertion",
        "assertion failed",
        "ERROR:",
        "Unexpected error",
        "Segmentation",
        "Aborted",
        "**",
        "panic",
    ];
    stderr.lines().map(str::trim).rev().find(|l| MARKERS.iter().any(|m| l.contains(m)))
}

/// Replaces `0x…` addresses with `ADDR` and other digit runs with `N`.
pub fn strip_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        if c == '0' && matches!(bytes.get(i + 1), Some('x' | 'X')) {
            let mut j = i + 2;
            while bytes.get(j).is_some_and(|d| d.is_ascii_hexdigit()) {
                j += 1;
            }
            out.push_str("ADDR");
            i = j;
        } else if c.is_ascii_digit() {
            while bytes.get(i).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
            }
            out.push('N');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Array indexes in an instance path become `N` (`/return/3/name` → `/return/N/name`), so
/// the same broken member in any element dedups.
fn normalise_path(path: &str) -> String {
    path.split('/')
        .map(|part| if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) { "N" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

fn shorten(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// 64-bit FNV-1a (stable across platforms and releases).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_key_strips_numbers_and_addresses() {
        let stderr = "qemu-system-x86_64: Failed to connect to 'q45.sock': No such file or directory\n\
                      qemu-system-x86_64: ../hw/core/qdev.c:123: qdev_x: Assertion `dev->realized' failed at 0x7ffd12ab.\n\
                      qemu-system-x86_64: warning: foo\n";
        let sig = Signature::crash("device_add", "SIGABRT", stderr);
        assert_eq!(
            sig.text(),
            "crash:device_add:SIGABRT qemu-system-xN_N: ../hw/core/qdev.c:N: qdev_x: Assertion `dev->realized' failed at ADDR."
        );
        let again = Signature::crash("device_add", "SIGABRT", &stderr.replace("123", "456"));
        assert_eq!(sig, again);
    }

    #[test]
    fn unexpected_error_beats_earlier_lines() {
        let stderr = "qemu-system-x86_64: Failed to connect to 'q86.sock': No such file or directory\n\
                      Unexpected error in parse_option_size() at ../../util/qemu-option.c:145:\n\
                      Parameter 'size' expects a non-negative number below 2^64\n";
        assert_eq!(
            normalise_stderr(stderr),
            "Unexpected error in parse_option_size() at ../../util/qemu-option.c:N:"
        );
        assert_eq!(normalise_stderr("a 1\nb 22\n"), "b N");
    }

    #[test]
    fn a_silent_signal_death_ignores_earlier_error_lines() {
        // Regression: the 10-minute QEMU 7.2 campaign split calc-dirty-rate's SIGSEGV in two
        // because an earlier migrate-recover had left this line in stderr.
        let earlier = "qemu-system-x86_64: Failed to connect to 'q45.sock': No such file or directory\n";
        let a = Signature::crash_by_signal("calc-dirty-rate", "SIGSEGV", earlier);
        let b = Signature::crash_by_signal("calc-dirty-rate", "SIGSEGV", "");
        assert_eq!(a, b);
        assert_eq!(a.text(), "crash:calc-dirty-rate:SIGSEGV");
        let assertion = format!("{earlier}x.c:12: f: Assertion `a' failed.\n");
        let c = Signature::crash_by_signal("device_add", "SIGABRT", &assertion);
        assert_eq!(c.text(), "crash:device_add:SIGABRT x.c:N: f: Assertion `a' failed.");
    }

    #[test]
    fn violation_paths_dedup_array_indexes() {
        let a = Signature::violation("C3", "query-cpus-fast", "/3/props");
        let b = Signature::violation("C3", "query-cpus-fast", "/10/props");
        assert_eq!(a, b);
        assert_eq!(a.text(), "violation:query-cpus-fast:C3 /N/props");
    }

    #[test]
    fn dir_names_are_safe_and_distinct() {
        let a = Signature::hang("a/b");
        let b = Signature::hang("a_b");
        assert_eq!(a.dir_name().len(), "hang_a_b-".len() + 8);
        assert!(a.dir_name().starts_with("hang_a_b-"), "{}", a.dir_name());
        assert_ne!(a.dir_name(), b.dir_name());
    }
}
