//! The one table of special knowledge the generators use, and the names a sequence created.
//!
//! Everything else is derived from the model. What the model cannot say is *which* string
//! members name things that must exist: `blockdev-add` creates the block node its
//! `node-name` names, `blockdev-del` deletes it, `block_resize` uses it. [`KNOWLEDGE`] lists
//! those facts (plus a few preferred values that make create → use → delete sequences
//! succeed on a real QEMU, e.g. `qom-get` of the `type` property that every object has).
//! [`Context`] holds the names created so far in a sequence, so later commands draw them.

use std::collections::BTreeMap;
use std::fmt;

/// What kind of thing a name names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameKind {
    /// A block node (`node-name`).
    BlockNode,
    /// A QOM object made by `object-add` (`id`).
    Object,
    /// A block job (`job-id`).
    Job,
    /// A character device (`chardev-add` `id`).
    Chardev,
}

impl NameKind {
    /// Every kind, in table order.
    pub const ALL: [NameKind; 4] = [NameKind::BlockNode, NameKind::Object, NameKind::Job, NameKind::Chardev];

    /// Short label for reports and fresh names (`node`, `obj`, `job`, `chr`).
    pub fn label(self) -> &'static str {
        match self {
            NameKind::BlockNode => "node",
            NameKind::Object => "obj",
            NameKind::Job => "job",
            NameKind::Chardev => "chr",
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a command does with a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameRole {
    /// The member holds a fresh name the command creates.
    Create,
    /// The member refers to an existing name.
    Use,
    /// The member names an existing thing the command removes.
    Delete,
    /// The command (no member) shows things of the kind; a harmless "use" in a sequence.
    Observe,
}

/// One fact of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// The member plays `role` for a name of `kind`; `template` maps the name to the
    /// member's value (`{}` is the name itself, `/objects/{}` a QOM path).
    Name {
        /// Kind of thing named.
        kind: NameKind,
        /// What the command does with it.
        role: NameRole,
        /// Value template, `{}` replaced by the name.
        template: &'static str,
    },
    /// In create → use → delete sequences, the member takes one of these values.
    Prefer(&'static [&'static str]),
}

/// One row: a command (`*`: any command, and then the member may be at any depth), a
/// member (empty for [`NameRole::Observe`]) and the fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Command name, or `*` for any command.
    pub command: &'static str,
    /// Member name (top level of the arguments for named commands).
    pub member: &'static str,
    /// The fact.
    pub fact: Fact,
}

const fn name(command: &'static str, member: &'static str, kind: NameKind, role: NameRole) -> Row {
    Row { command, member, fact: Fact::Name { kind, role, template: "{}" } }
}

const fn observe(command: &'static str, kind: NameKind) -> Row {
    Row { command, member: "", fact: Fact::Name { kind, role: NameRole::Observe, template: "{}" } }
}

const fn prefer(command: &'static str, member: &'static str, values: &'static [&'static str]) -> Row {
    Row { command, member, fact: Fact::Prefer(values) }
}

use NameKind::{BlockNode, Chardev, Job, Object};
use NameRole::{Create, Delete, Use};

/// The table. Specific rows win over `*` rows for the same member.
pub const KNOWLEDGE: &[Row] = &[
    // Block nodes.
    name("blockdev-add", "node-name", BlockNode, Create),
    name("blockdev-del", "node-name", BlockNode, Delete),
    // The mirror's target node: a new node in the graph (`device` is the source, a use).
    name("drive-mirror", "node-name", BlockNode, Create),
    name("*", "node-name", BlockNode, Use),
    name("*", "node", BlockNode, Use),
    name("*", "device", BlockNode, Use),
    observe("query-named-block-nodes", BlockNode),
    observe("query-block", BlockNode),
    prefer("blockdev-add", "driver", &["null-co", "null-aio"]),
    prefer("blockdev-add", "size", &["1048576"]),
    prefer("block_resize", "size", &["1048576"]),
    // QOM objects.
    name("object-add", "id", Object, Create),
    name("object-del", "id", Object, Delete),
    Row {
        command: "qom-list",
        member: "path",
        fact: Fact::Name { kind: Object, role: Use, template: "/objects/{}" },
    },
    Row {
        command: "qom-get",
        member: "path",
        fact: Fact::Name { kind: Object, role: Use, template: "/objects/{}" },
    },
    Row {
        command: "qom-set",
        member: "path",
        fact: Fact::Name { kind: Object, role: Use, template: "/objects/{}" },
    },
    prefer("qom-get", "property", &["type"]),
    prefer("object-add", "qom-type", &["iothread", "throttle-group"]),
    name("*", "iothread", Object, Use),
    // Block jobs (created on a null-co node, which block-stream finishes at once: without
    // auto-dismiss the job stays, concluded, so later commands find it and job-dismiss
    // removes it). The `device` of block-job-* names the job (its id), not a node.
    name("block-stream", "job-id", Job, Create),
    name("job-dismiss", "id", Job, Delete),
    name("block-job-dismiss", "id", Job, Delete),
    name("job-cancel", "id", Job, Use),
    name("job-pause", "id", Job, Use),
    name("job-resume", "id", Job, Use),
    name("job-complete", "id", Job, Use),
    name("job-finalize", "id", Job, Use),
    name("block-job-set-speed", "device", Job, Use),
    name("block-job-cancel", "device", Job, Use),
    name("block-job-pause", "device", Job, Use),
    name("block-job-resume", "device", Job, Use),
    name("block-job-complete", "device", Job, Use),
    name("block-job-finalize", "id", Job, Use),
    observe("query-jobs", Job),
    observe("query-block-jobs", Job),
    prefer("block-stream", "auto-dismiss", &["false"]),
    prefer("block-job-set-speed", "speed", &["0"]),
    // Character devices.
    name("chardev-add", "id", Chardev, Create),
    name("chardev-remove", "id", Chardev, Delete),
    name("chardev-change", "id", Chardev, Use),
    name("ringbuf-read", "device", Chardev, Use),
    name("ringbuf-write", "device", Chardev, Use),
    observe("query-chardev", Chardev),
    prefer("chardev-add", "type", &["null", "ringbuf"]),
];

/// The name fact for `member` of `command` at `depth` (0: top level of the arguments):
/// a specific row at the top level, else a `*` row.
pub fn name_fact(command: &str, member: &str, depth: usize) -> Option<(NameKind, NameRole, &'static str)> {
    let as_name = |row: &Row| match row.fact {
        Fact::Name { kind, role, template } if row.member == member => Some((kind, role, template)),
        _ => None,
    };
    if depth == 0 {
        if let Some(hit) = KNOWLEDGE.iter().filter(|r| r.command == command).find_map(as_name) {
            return Some(hit);
        }
    }
    KNOWLEDGE.iter().filter(|r| r.command == "*").find_map(as_name)
}

/// Preferred values for `member` of `command` (sequences only; a member with preferred
/// values is always present there, optional or not).
pub fn preferred(command: &str, member: &str) -> Option<&'static [&'static str]> {
    KNOWLEDGE.iter().find_map(|r| match r.fact {
        Fact::Prefer(values) if r.command == command && r.member == member => Some(values),
        _ => None,
    })
}

/// Commands with a specific row doing `role` for `kind`, in table order.
pub fn commands_for(kind: NameKind, role: NameRole) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for row in KNOWLEDGE {
        if let Fact::Name { kind: k, role: r, .. } = row.fact {
            if k == kind && r == role && row.command != "*" && !out.contains(&row.command) {
                out.push(row.command);
            }
        }
    }
    out
}

/// The `*` member names that use a name of `kind` in any command.
pub fn generic_members(kind: NameKind) -> Vec<&'static str> {
    KNOWLEDGE
        .iter()
        .filter(|r| r.command == "*")
        .filter(|r| matches!(r.fact, Fact::Name { kind: k, role: NameRole::Use, .. } if k == kind))
        .map(|r| r.member)
        .collect()
}

/// Most live names a [`Context`] keeps per kind (see [`Context::add`]).
pub const MAX_LIVE_NAMES: usize = 64;

/// Names created earlier in a sequence and not yet deleted, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    names: BTreeMap<NameKind, Vec<String>>,
    counter: u64,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Context::default()
    }

    /// The live names of `kind`, oldest first.
    pub fn names(&self, kind: NameKind) -> &[String] {
        self.names.get(&kind).map(Vec::as_slice).unwrap_or(&[])
    }

    /// An empty context whose first fresh name is numbered `used + 1`, as if
    /// [`Context::fresh`] had been called `used` times (so several contexts never draw the
    /// same name: the conformance runner starts check `i` after `i * 64`).
    pub fn starting_after(used: u64) -> Self {
        Context { names: BTreeMap::new(), counter: used }
    }

    /// A name of `kind` no earlier command used (`qnode1`, `qobj2`, ...).
    pub fn fresh(&mut self, kind: NameKind) -> String {
        self.counter += 1;
        format!("q{}{}", kind.label(), self.counter)
    }

    /// Records that `name` of `kind` now exists. Past [`MAX_LIVE_NAMES`] of a kind the
    /// oldest is forgotten, so a generator that runs for hours without a reset neither grows
    /// nor slows down (most creates of a long run failed or were undone by QEMU restarts).
    pub fn add(&mut self, kind: NameKind, name: impl Into<String>) {
        let name = name.into();
        let list = self.names.entry(kind).or_default();
        if !list.contains(&name) {
            if list.len() >= MAX_LIVE_NAMES {
                list.remove(0);
            }
            list.push(name);
        }
    }

    /// Records that `name` of `kind` is gone.
    pub fn remove(&mut self, kind: NameKind, name: &str) {
        if let Some(list) = self.names.get_mut(&kind) {
            list.retain(|n| n != name);
        }
    }

    /// Applies the name effects of an emitted command.
    pub fn apply(&mut self, effects: &[NameEffect]) {
        for effect in effects {
            match effect.role {
                NameRole::Create => self.add(effect.kind, effect.name.clone()),
                NameRole::Delete => self.remove(effect.kind, &effect.name),
                NameRole::Use | NameRole::Observe => {}
            }
        }
    }

    /// Total number of live names.
    pub fn len(&self) -> usize {
        self.names.values().map(Vec::len).sum()
    }

    /// Whether no name is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a generated command does to a name (applied to the [`Context`] once emitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEffect {
    /// Kind of thing.
    pub kind: NameKind,
    /// Create, use or delete.
    pub role: NameRole,
    /// The name (not the templated value).
    pub name: String,
}

/// The table as Markdown, one line per row (for reports).
pub fn knowledge_table() -> String {
    let mut out = String::from("| command | member | fact |\n|---|---|---|\n");
    for row in KNOWLEDGE {
        let fact = match row.fact {
            Fact::Name { kind, role, template } => format!("{role:?} {kind} as `{template}`"),
            Fact::Prefer(values) => format!("prefer {}", values.join(", ")),
        };
        out.push_str(&format!("| {} | {} | {} |\n", row.command, row.member, fact));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_rows_win_at_top_level_only() {
        assert_eq!(name_fact("blockdev-add", "node-name", 0), Some((BlockNode, Create, "{}")));
        assert_eq!(name_fact("blockdev-add", "node-name", 2), Some((BlockNode, Use, "{}")));
        assert_eq!(name_fact("qom-get", "path", 0), Some((Object, Use, "/objects/{}")));
        assert_eq!(name_fact("query-status", "bogus", 0), None);
    }

    #[test]
    fn block_job_devices_name_jobs_and_drive_mirror_creates_its_node() {
        assert_eq!(name_fact("block-job-cancel", "device", 0), Some((Job, Use, "{}")));
        assert_eq!(name_fact("block-stream", "device", 0), Some((BlockNode, Use, "{}")));
        assert_eq!(name_fact("drive-mirror", "node-name", 0), Some((BlockNode, Create, "{}")));
        assert_eq!(commands_for(BlockNode, Create), vec!["blockdev-add", "drive-mirror"]);
        assert_eq!(commands_for(Job, Delete), vec!["job-dismiss", "block-job-dismiss"]);
    }

    #[test]
    fn context_starting_after_a_count_continues_from_it() {
        let mut walked = Context::new();
        for _ in 0..128 {
            walked.fresh(Object);
        }
        let mut started = Context::starting_after(128);
        assert_eq!(started, walked);
        assert_eq!(started.fresh(Job), "qjob129");
        assert!(started.is_empty());
    }

    #[test]
    fn context_tracks_create_and_delete() {
        let mut ctx = Context::new();
        let n = ctx.fresh(BlockNode);
        assert_eq!(n, "qnode1");
        ctx.apply(&[NameEffect { kind: BlockNode, role: Create, name: n.clone() }]);
        assert_eq!(ctx.names(BlockNode), std::slice::from_ref(&n));
        ctx.apply(&[NameEffect { kind: BlockNode, role: Delete, name: n }]);
        assert!(ctx.is_empty());
    }
}
