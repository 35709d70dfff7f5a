//! One running target of a campaign: real QEMU (sandboxed, via [`crate::target::qemu`]) or
//! the emulator served on a socket in a scratch dir, behind one small interface so the loop,
//! replay and minimize treat both alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::spec::Spec;
use crate::target::emulator::{self, EmulatorConfig, ServerHandle};
use crate::target::{Exit, Qemu, Target, TargetError};
use crate::wire::{Client, ClientConfig, WireError};

/// What to fuzz.
#[derive(Debug, Clone)]
pub enum FuzzTarget {
    /// Real QEMU launched from this description (a fresh scratch dir per launch).
    Qemu(Target),
    /// The emulator serving `model`, with `config` (faults included).
    Emulator {
        /// The model it serves.
        model: Arc<Spec>,
        /// Version, capabilities, fault.
        config: EmulatorConfig,
    },
}

impl FuzzTarget {
    /// A short description for reports and `meta.json` (`qemu:/usr/bin/qemu-system-x86_64`,
    /// `emulated`, `emulated[fault=die@stop]`).
    pub fn describe(&self) -> String {
        match self {
            FuzzTarget::Qemu(t) => match t.kind {
                crate::target::Binary::SystemX86 => format!("qemu:{}", t.path.display()),
                crate::target::Binary::StorageDaemon => format!("storage-daemon:{}", t.path.display()),
            },
            FuzzTarget::Emulator { config, .. } => match &config.fault {
                Some(f) => format!("emulated[fault={f}]"),
                None => "emulated".to_string(),
            },
        }
    }
}

/// Why a target could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// QEMU did not start.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The emulator's scratch dir or socket could not be made.
    #[error("cannot serve the emulator at {path}: {source}")]
    Serve {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Connecting or reading the greeting failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// `qmp_capabilities` got no reply.
    #[error("negotiation failed: {detail}")]
    Negotiate {
        /// What the wire said.
        detail: String,
    },
}

/// A running target.
#[derive(Debug)]
pub struct Instance {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Qemu(Box<Qemu>),
    Emulator {
        handle: Option<ServerHandle>,
        socket: PathBuf,
        /// Removed on drop (after the server stopped).
        dir: tempfile::TempDir,
    },
}

impl Instance {
    /// Starts a fresh target.
    pub fn launch(target: &FuzzTarget) -> Result<Instance, InstanceError> {
        match target {
            FuzzTarget::Qemu(t) => Ok(Instance { inner: Inner::Qemu(Box::new(Qemu::launch(t)?)) }),
            FuzzTarget::Emulator { model, config } => {
                let dir = tempfile::Builder::new()
                    .prefix("qmpcheck-emu-")
                    .tempdir()
                    .map_err(|source| InstanceError::Serve { path: std::env::temp_dir(), source })?;
                let socket = dir.path().join("qmp.sock");
                let handle = emulator::serve(&socket, Arc::clone(model), config.clone())
                    .map_err(|source| InstanceError::Serve { path: socket.clone(), source })?;
                Ok(Instance { inner: Inner::Emulator { handle: Some(handle), socket, dir } })
            }
        }
    }

    /// Connects a client and reads the greeting (not negotiated).
    pub fn connect(&self, config: ClientConfig) -> Result<Client, InstanceError> {
        Ok(Client::connect(self.socket(), config)?)
    }

    /// The QMP socket.
    pub fn socket(&self) -> &Path {
        match &self.inner {
            Inner::Qemu(q) => q.socket(),
            Inner::Emulator { socket, .. } => socket,
        }
    }

    /// The scratch dir (QEMU's working dir; the emulator's socket dir).
    pub fn scratch_dir(&self) -> &Path {
        match &self.inner {
            Inner::Qemu(q) => q.scratch_dir(),
            Inner::Emulator { dir, .. } => dir.path(),
        }
    }

    /// The command line (empty for the emulator).
    pub fn command_line(&self) -> Vec<String> {
        match &self.inner {
            Inner::Qemu(q) => q.command_line().to_vec(),
            Inner::Emulator { .. } => Vec::new(),
        }
    }

    /// QEMU's stderr so far (empty for the emulator).
    pub fn stderr(&self) -> String {
        match &self.inner {
            Inner::Qemu(q) => q.stderr(),
            Inner::Emulator { .. } => String::new(),
        }
    }

    /// How the process ended, waiting up to `timeout`; `None` when it still runs (or for
    /// the emulator, which has no process of its own).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Exit> {
        match &mut self.inner {
            Inner::Qemu(q) => q.wait_exit(timeout).ok().flatten(),
            Inner::Emulator { .. } => None,
        }
    }

    /// Kills the target (SIGKILL and reap; the emulator server is stopped).
    pub fn kill(&mut self) {
        match &mut self.inner {
            Inner::Qemu(q) => {
                let _ = q.kill(Signal::SIGKILL);
                let _ = q.wait_exit(Duration::from_secs(5));
            }
            Inner::Emulator { handle, .. } => {
                if let Some(h) = handle.take() {
                    h.stop();
                }
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}
