//! The skip list: commands the per-command check never calls, each with a reason, and
//! commands whose check runs on a target of its own (`isolate`), each with a reason.
//!
//! Kept as data (`conformance/skip.toml`) so the list is reviewed like code and printed in
//! reports. An entry names a command exactly, or a prefix ending in `*` (`migrate*`).

use std::path::Path;

use serde::Deserialize;

use super::case::CaseProblem;
use crate::spec::Source;

/// One entry of the skip list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipEntry {
    /// Command name, or a prefix followed by `*`.
    pub pattern: String,
    /// Why it is never called.
    pub reason: String,
}

/// The skip list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipList {
    /// Entries in file order (`[[skip]]`).
    pub entries: Vec<SkipEntry>,
    /// Commands checked on a fresh target of their own (`[[isolate]]`): they leave state
    /// behind that would change what later checks see (so shards would differ).
    pub isolated: Vec<SkipEntry>,
}

impl SkipList {
    /// The first skip entry matching a command name.
    pub fn find(&self, command: &str) -> Option<&SkipEntry> {
        self.entries.iter().find(|e| matches(&e.pattern, command))
    }

    /// The first isolate entry matching a command name.
    pub fn isolates(&self, command: &str) -> Option<&SkipEntry> {
        self.isolated.iter().find(|e| matches(&e.pattern, command))
    }

    /// Parses the text of a skip list; `file` labels problems.
    pub fn parse(text: &str, file: &str) -> Result<SkipList, Vec<CaseProblem>> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            skip: Vec<toml::Spanned<RawEntry>>,
            #[serde(default)]
            isolate: Vec<toml::Spanned<RawEntry>>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawEntry {
            command: String,
            reason: String,
        }
        let line_of = |offset: usize| {
            u32::try_from(text.get(..offset).unwrap_or(text).matches('\n').count() + 1).unwrap_or(u32::MAX)
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(s.start)).unwrap_or(0);
            vec![CaseProblem {
                source: Source::new(file, line),
                field: String::new(),
                message: e.message().trim().to_lowercase(),
            }]
        })?;
        let mut problems = Vec::new();
        let mut check = |table: &str, list: Vec<toml::Spanned<RawEntry>>| -> Vec<SkipEntry> {
            let mut entries = Vec::new();
            for entry in list {
                let line = line_of(entry.span().start);
                let entry = entry.into_inner();
                if entry.reason.trim().is_empty() {
                    problems.push(CaseProblem {
                        source: Source::new(file, line),
                        field: format!("{table}.reason"),
                        message: format!("`{}` needs a reason", entry.command),
                    });
                }
                let stem = entry.command.strip_suffix('*').unwrap_or(&entry.command);
                if stem.is_empty() || stem.contains('*') {
                    problems.push(CaseProblem {
                        source: Source::new(file, line),
                        field: format!("{table}.command"),
                        message: format!("`{}`: a name, or a prefix with one trailing `*`", entry.command),
                    });
                }
                entries.push(SkipEntry { pattern: entry.command, reason: entry.reason });
            }
            entries
        };
        let entries = check("skip", raw.skip);
        let isolated = check("isolate", raw.isolate);
        if problems.is_empty() {
            Ok(SkipList { entries, isolated })
        } else {
            Err(problems)
        }
    }

    /// The skip list shipped with qmpcheck (`conformance/skip.toml`, embedded at build time).
    pub fn builtin() -> Result<SkipList, super::case::CaseLoadError> {
        SkipList::parse(include_str!("../../conformance/skip.toml"), "conformance/skip.toml")
            .map_err(|problems| super::case::CaseLoadError::Invalid { problems })
    }

    /// Reads and parses a skip list file.
    pub fn load(path: &Path) -> Result<SkipList, super::case::CaseLoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| super::case::CaseLoadError::Io { path: path.display().to_string(), source })?;
        SkipList::parse(&text, &path.display().to_string())
            .map_err(|problems| super::case::CaseLoadError::Invalid { problems })
    }
}

/// Whether `pattern` (a name, or a prefix ending in `*`) matches `command`.
fn matches(pattern: &str, command: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => command.starts_with(prefix),
        None => pattern == command,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_errors() {
        let list = SkipList::parse(
            "[[skip]]\ncommand = \"quit\"\nreason = \"ends\"\n[[skip]]\ncommand = \"migrate*\"\nreason = \"m\"\n",
            "s.toml",
        )
        .unwrap();
        assert_eq!(list.find("quit").map(|e| e.reason.as_str()), Some("ends"));
        assert_eq!(list.find("migrate-set-parameters").map(|e| e.pattern.as_str()), Some("migrate*"));
        assert!(list.find("query-migrate").is_none());
        assert!(list.isolates("quit").is_none());
        let list =
            SkipList::parse("[[isolate]]\ncommand = \"migrate\"\nreason = \"state\"\n", "s.toml").unwrap();
        assert_eq!(list.isolates("migrate").map(|e| e.reason.as_str()), Some("state"));
        assert!(list.find("migrate").is_none());
        let err = SkipList::parse("[[isolate]]\ncommand = \"*\"\nreason = \"r\"\n", "s.toml").unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "s.toml:1: isolate.command: `*`: a name, or a prefix with one trailing `*`"
        );
        let err = SkipList::parse("[[skip]]\ncommand = \"a*b*\"\nreason = \"\"\n", "s.toml").unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].to_string(), "s.toml:1: skip.reason: `a*b*` needs a reason");
    }
}
