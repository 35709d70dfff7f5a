//! The commands the emulator gives an effect, in one table, and the state they change.
//!
//! Every other command the model defines is answered with the minimal valid value of its
//! return type (`{}` when it has none) once its arguments pass. A command listed here must
//! still be in the model to be found; what the table adds is state, events and the values
//! that state decides. Texts of errors and event data are QEMU 7.2's.
//!
//! The emulated machine is QEMU 7.2's `-machine none -nodefaults`: queries of devices or
//! features it lacks (a balloon, ACPI, SEV, SGX, ...) fail as QEMU's do, with the class and
//! desc listed here ([`Behaviour::Absent`]). `tests/emulator.rs` calls every argument-less
//! `query-*` command on both and compares the reply class (and for errors the desc).

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::EmulatorConfig;
use crate::spec::Spec;

/// What a command does beyond answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Pause: running becomes paused with a STOP event; otherwise nothing (as QEMU).
    Stop,
    /// Resume: prelaunch or paused becomes running with a RESUME event.
    Cont,
    /// Report the run state.
    QueryStatus,
    /// SHUTDOWN event, the reply, then the connection closes.
    Quit,
    /// RESET event.
    SystemReset,
    /// POWERDOWN event.
    SystemPowerdown,
    /// Register a block node by `node-name`.
    BlockdevAdd,
    /// Remove a block node by `node-name`.
    BlockdevDel,
    /// Register a QOM object by `id`.
    ObjectAdd,
    /// Remove a QOM object by `id`.
    ObjectDel,
    /// Report the configured VM name.
    QueryName,
    /// Report the configured version.
    QueryVersion,
    /// List the model's commands.
    QueryCommands,
    /// Always fails: the device or feature the command needs is absent from the machine.
    Absent {
        /// The error class (`DeviceNotActive`, `GenericError`, ...).
        class: &'static str,
        /// QEMU 7.2's desc.
        desc: &'static str,
    },
}

/// A [`Behaviour::Absent`] that fails with GenericError and `desc`.
const fn absent(desc: &'static str) -> Behaviour {
    Behaviour::Absent { class: "GenericError", desc }
}

/// The table: command name, behaviour, and what it does (printed in docs and reports).
pub const BEHAVIOURS: &[(&str, Behaviour, &str)] = &[
    ("stop", Behaviour::Stop, "running -> paused, STOP event before the reply; no effect otherwise"),
    ("cont", Behaviour::Cont, "prelaunch/paused -> running, RESUME event before the reply"),
    ("query-status", Behaviour::QueryStatus, "status (prelaunch at start, like -S) and running"),
    ("quit", Behaviour::Quit, "SHUTDOWN event (host-qmp-quit), the reply, then close"),
    ("system_reset", Behaviour::SystemReset, "RESET event (host-qmp-system-reset)"),
    ("system_powerdown", Behaviour::SystemPowerdown, "POWERDOWN event"),
    ("blockdev-add", Behaviour::BlockdevAdd, "registers node-name; missing or duplicate is GenericError"),
    ("blockdev-del", Behaviour::BlockdevDel, "removes node-name; unknown is GenericError"),
    ("object-add", Behaviour::ObjectAdd, "registers id; duplicate is GenericError"),
    ("object-del", Behaviour::ObjectDel, "removes id; unknown is GenericError"),
    ("query-name", Behaviour::QueryName, "the configured name, absent by default"),
    ("query-version", Behaviour::QueryVersion, "the configured version and package"),
    ("query-commands", Behaviour::QueryCommands, "every command of the model"),
    (
        "query-balloon",
        Behaviour::Absent { class: "DeviceNotActive", desc: "No balloon device has been activated" },
        "no balloon device (-nodefaults)",
    ),
    (
        "query-acpi-ospm-status",
        absent("command is not supported, missing ACPI device"),
        "no ACPI device (-machine none)",
    ),
    (
        "query-hotpluggable-cpus",
        absent("The feature 'query-hotpluggable-cpus' is not enabled"),
        "-machine none has no hotpluggable CPUs",
    ),
    ("query-sev-capabilities", absent("KVM not enabled"), "no KVM, so no SEV"),
    ("query-sev-launch-measure", absent("SEV launch measurement is not available"), "no SEV guest"),
    ("query-sgx", absent("SGX is only supported on PC machines"), "-machine none is not a PC"),
    ("query-sgx-capabilities", absent("SGX is not enabled in KVM"), "no KVM, so no SGX"),
    ("query-vm-generation-id", absent("VM Generation ID device not found"), "no vmgenid device"),
];

/// The behaviour the table gives `command`, if any.
pub fn behaviour_of(command: &str) -> Option<Behaviour> {
    BEHAVIOURS.iter().find(|(name, _, _)| *name == command).map(|(_, b, _)| *b)
}

/// The VM's run state as `query-status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunStatus {
    /// Started with `-S`, never run.
    #[default]
    Prelaunch,
    /// Running.
    Running,
    /// Stopped by `stop`.
    Paused,
}

impl RunStatus {
    /// The `RunState` enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Prelaunch => "prelaunch",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
        }
    }
}

/// The state one emulated VM keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmState {
    /// Run state.
    pub status: RunStatus,
    /// Block node names added by `blockdev-add`.
    pub nodes: BTreeSet<String>,
    /// QOM object ids added by `object-add`.
    pub objects: BTreeSet<String>,
}

/// An event to send: name and data members to set (on top of the model's minimal data).
pub(crate) type EventOut = (&'static str, Option<Value>);

/// What running a behaviour produced.
#[derive(Debug, Default)]
pub(crate) struct Effect {
    /// Members to set in the reply (an object is merged into the minimal value; anything
    /// else replaces it).
    pub reply: Option<Value>,
    /// Events, sent before the reply as QEMU 7.2 does.
    pub events: Vec<EventOut>,
    /// Close the connection after the reply.
    pub close: bool,
}

impl Effect {
    fn reply(value: Value) -> Effect {
        Effect { reply: Some(value), ..Effect::default() }
    }

    fn event(name: &'static str, data: Option<Value>) -> Effect {
        Effect { events: vec![(name, data)], ..Effect::default() }
    }
}

/// Runs `behaviour` on `state` with the (already checked) arguments. `Err` is the error's
/// class and desc.
pub(crate) fn run(
    behaviour: Behaviour,
    state: &mut VmState,
    args: &Map<String, Value>,
    config: &EmulatorConfig,
    spec: &Spec,
) -> Result<Effect, (&'static str, String)> {
    if let Behaviour::Absent { class, desc } = behaviour {
        return Err((class, desc.to_string()));
    }
    run_stateful(behaviour, state, args, config, spec).map_err(|desc| ("GenericError", desc))
}

/// The behaviours that keep state; `Err` is a GenericError desc.
fn run_stateful(
    behaviour: Behaviour,
    state: &mut VmState,
    args: &Map<String, Value>,
    config: &EmulatorConfig,
    spec: &Spec,
) -> Result<Effect, String> {
    let text = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(match behaviour {
        Behaviour::Stop => {
            if state.status != RunStatus::Running {
                return Ok(Effect::default());
            }
            state.status = RunStatus::Paused;
            Effect::event("STOP", None)
        }
        Behaviour::Cont => {
            if state.status == RunStatus::Running {
                return Ok(Effect::default());
            }
            state.status = RunStatus::Running;
            Effect::event("RESUME", None)
        }
        Behaviour::QueryStatus => Effect::reply(
            json!({"status": state.status.as_str(), "running": state.status == RunStatus::Running}),
        ),
        Behaviour::Quit => Effect {
            events: vec![("SHUTDOWN", Some(json!({"guest": false, "reason": "host-qmp-quit"})))],
            close: true,
            ..Effect::default()
        },
        Behaviour::SystemReset => {
            Effect::event("RESET", Some(json!({"guest": false, "reason": "host-qmp-system-reset"})))
        }
        Behaviour::SystemPowerdown => Effect::event("POWERDOWN", None),
        Behaviour::BlockdevAdd => {
            let name = text("node-name").ok_or("'node-name' must be specified for the root node")?;
            if !state.nodes.insert(name.clone()) {
                return Err(format!("Duplicate nodes with node-name='{name}'"));
            }
            Effect::default()
        }
        Behaviour::BlockdevDel => {
            let name = text("node-name").unwrap_or_default();
            if !state.nodes.remove(&name) {
                return Err(format!("Failed to find node with node-name='{name}'"));
            }
            Effect::default()
        }
        Behaviour::ObjectAdd => {
            let id = text("id").unwrap_or_default();
            if !state.objects.insert(id.clone()) {
                return Err(format!("attempt to add duplicate property '{id}' to object (type 'container')"));
            }
            Effect::default()
        }
        Behaviour::ObjectDel => {
            let id = text("id").unwrap_or_default();
            if !state.objects.remove(&id) {
                return Err(format!("object '{id}' not found"));
            }
            Effect::default()
        }
        Behaviour::QueryName => match &config.name {
            Some(name) => Effect::reply(json!({ "name": name })),
            None => Effect::default(),
        },
        Behaviour::QueryVersion => {
            let v = &config.version;
            Effect::reply(json!({
                "qemu": {"major": v.major, "minor": v.minor, "micro": v.micro},
                "package": v.package,
            }))
        }
        Behaviour::QueryCommands => {
            Effect::reply(Value::Array(spec.commands.keys().map(|name| json!({ "name": name })).collect()))
        }
        Behaviour::Absent { desc, .. } => return Err(desc.to_string()),
    })
}
