//! Launching real QEMU (`qemu-system-x86_64`, `qemu-storage-daemon`) in a sandbox.
//!
//! The process envelope follows shared/docs/safety.md: no defaults, no user config, no
//! display, vCPUs stopped (`-S`), seccomp `-sandbox` denying obsolete calls, privilege
//! changes, spawning and resource control, no network back end, and QMP on a UNIX socket in
//! a per-run scratch dir that is also the working dir (and `HOME`/`TMPDIR`). QEMU's stdout
//! and stderr go to files in that dir. [`Qemu::launch`] returns only once a connection to
//! the socket has succeeded and the greeting came (QEMU creates the socket file before it
//! listens), so any connect after it succeeds. The process is killed and reaped when [`Qemu`] is
//! dropped; [`Qemu::wait_exit`] tells how it died (exit code or signal) so callers can tell
//! a SIGSYS (a sandbox hit: a deny-rule leak) from a SIGABRT or SIGSEGV (a QEMU crash).
//!
//! `qemu-storage-daemon` 7.2 has no sandbox option (`--help` lists none), so it runs with
//! the scratch dir and clean environment only.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

use crate::wire::{Client, ClientConfig, QmpError, WireError};

/// Which QEMU program to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `qemu-system-x86_64 -machine none`.
    SystemX86,
    /// `qemu-storage-daemon`.
    StorageDaemon,
}

impl Binary {
    /// The program's usual file name, looked up on PATH by [`find_binary`].
    pub fn program_name(self) -> &'static str {
        match self {
            Binary::SystemX86 => "qemu-system-x86_64",
            Binary::StorageDaemon => "qemu-storage-daemon",
        }
    }

    /// Whether this program supports `-sandbox` (the storage daemon does not, in 7.2).
    pub fn has_sandbox(self) -> bool {
        matches!(self, Binary::SystemX86)
    }
}

/// The seccomp policy passed to `-sandbox` (every option QEMU 7.2 accepts, all denying).
pub const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// Options refused in [`Target::extra_args`]: network back ends (safety.md: none).
pub const REFUSED_ARGS: [&str; 5] = ["-netdev", "-nic", "-net", "--netdev", "--nic"];

/// How to launch one QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Which program.
    pub kind: Binary,
    /// Path of the executable.
    pub path: PathBuf,
    /// Scratch dir to use; `None` makes a fresh temporary one, removed on drop.
    pub scratch: Option<PathBuf>,
    /// Extra arguments appended (e.g. `-compat ...`, `-L DIR`); network options are refused.
    pub extra_args: Vec<String>,
    /// Extra environment (e.g. `LD_LIBRARY_PATH` for an unpacked QEMU).
    pub env: Vec<(String, String)>,
    /// How long to wait for the QMP socket to accept a connection and greet.
    pub start_timeout: Duration,
    /// Client timeouts for [`Qemu::connect`].
    pub client: ClientConfig,
}

impl Target {
    /// A target for `kind` at `path`, fresh scratch dir, default timeouts.
    pub fn new(kind: Binary, path: impl Into<PathBuf>) -> Self {
        Target {
            kind,
            path: path.into(),
            scratch: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            start_timeout: Duration::from_secs(10),
            client: ClientConfig::default(),
        }
    }

    /// The arguments (without the program) for a QMP socket at `socket`.
    pub fn args(&self, socket: &Path) -> Vec<String> {
        let sock = socket.display();
        let mut args: Vec<String> = match self.kind {
            Binary::SystemX86 => vec![
                "-machine".into(),
                "none".into(),
                "-nodefaults".into(),
                "-display".into(),
                "none".into(),
                "-no-user-config".into(),
                "-S".into(),
                "-sandbox".into(),
                SANDBOX.into(),
                "-qmp".into(),
                format!("unix:{sock},server=on,wait=off"),
            ],
            Binary::StorageDaemon => vec![
                "--chardev".into(),
                format!("socket,path={sock},server=on,wait=off,id=m"),
                "--monitor".into(),
                "chardev=m".into(),
            ],
        };
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// How a QEMU process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal {
        /// The signal number (31 = SIGSYS on x86_64, 6 = SIGABRT, 11 = SIGSEGV).
        signal: i32,
        /// Whether it dumped core.
        core_dumped: bool,
    },
}

impl Exit {
    /// The signal, when one killed the process.
    pub fn signal(self) -> Option<Signal> {
        match self {
            Exit::Signal { signal, .. } => Signal::try_from(signal).ok(),
            Exit::Code(_) => None,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal { signal, core_dumped } => {
                let name = Signal::try_from(*signal).map(|s| s.as_str()).unwrap_or("unknown signal");
                write!(f, "signal {signal} ({name}){}", if *core_dumped { ", core dumped" } else { "" })
            }
        }
    }
}

/// Why QEMU could not be launched or asked something.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The scratch dir could not be made.
    #[error("cannot create scratch dir: {0}")]
    Scratch(#[source] std::io::Error),
    /// The socket path does not fit a `sockaddr_un`.
    #[error("socket path {path} is {len} bytes, longer than the 107 a unix socket allows")]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// An extra argument is not allowed (network back ends).
    #[error("refused argument {arg}: qmpcheck never gives QEMU a network back end")]
    Refused {
        /// The argument.
        arg: String,
    },
    /// The program could not be started.
    #[error("cannot run {binary}: {source}")]
    Spawn {
        /// The program path.
        binary: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The program exited before its QMP socket appeared.
    #[error("{binary} exited during start-up ({exit}); stderr: {stderr}")]
    StartFailed {
        /// The program path.
        binary: PathBuf,
        /// How it ended.
        exit: Exit,
        /// Its stderr.
        stderr: String,
    },
    /// The QMP socket did not accept a connection (and greet) in time.
    #[error("{binary} did not accept a qmp connection within {waited:?} ({last}); stderr: {stderr}")]
    StartTimeout {
        /// The program path.
        binary: PathBuf,
        /// How long was waited.
        waited: Duration,
        /// The last failure: the connect error, or that no greeting came.
        last: String,
        /// Its stderr so far.
        stderr: String,
    },
    /// Talking QMP failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A command answered with an error.
    #[error("{command} failed: {error}")]
    Qmp {
        /// The command.
        command: String,
        /// The error reply.
        error: QmpError,
    },
    /// A command's return value has an unexpected shape.
    #[error("{command} returned {detail}")]
    BadReturn {
        /// The command.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// Signalling or waiting for the process failed.
    #[error("cannot {action} pid {pid}: {source}")]
    Process {
        /// `kill` or `wait for`.
        action: &'static str,
        /// The process id.
        pid: u32,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The scratch dir: owned (removed on drop) or given.
#[derive(Debug)]
enum Scratch {
    Temp(TempDir),
    Given(PathBuf),
}

impl Scratch {
    fn path(&self) -> &Path {
        match self {
            Scratch::Temp(t) => t.path(),
            Scratch::Given(p) => p,
        }
    }
}

/// A running QEMU. Killed (SIGKILL) and reaped on drop if still alive.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    exit: Option<Exit>,
    command_line: Vec<String>,
    socket: PathBuf,
    stderr_path: PathBuf,
    client_config: ClientConfig,
    started: Instant,
    /// Dropped after the child is reaped (field order).
    scratch: Scratch,
}

/// File name of the QMP socket inside the scratch dir.
pub const SOCKET_NAME: &str = "qmp.sock";
/// File name of QEMU's captured stderr inside the scratch dir.
pub const STDERR_NAME: &str = "stderr.log";
/// File name of QEMU's captured stdout inside the scratch dir.
pub const STDOUT_NAME: &str = "stdout.log";

impl Qemu {
    /// Starts QEMU and waits until its QMP socket accepts a connection and sends the
    /// greeting (that probe connection is then closed), within [`Target::start_timeout`].
    pub fn launch(target: &Target) -> Result<Qemu, TargetError> {
        if let Some(arg) = target.extra_args.iter().find(|a| refused(a)) {
            return Err(TargetError::Refused { arg: arg.clone() });
        }
        let scratch = match &target.scratch {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(TargetError::Scratch)?;
                Scratch::Given(dir.canonicalize().map_err(TargetError::Scratch)?)
            }
            None => Scratch::Temp(
                tempfile::Builder::new().prefix("qmpcheck-").tempdir().map_err(TargetError::Scratch)?,
            ),
        };
        let dir = scratch.path().to_path_buf();
        let socket = dir.join(SOCKET_NAME);
        let len = socket.as_os_str().len();
        if len > 107 {
            return Err(TargetError::SocketPathTooLong { path: socket, len });
        }
        // A stale socket from an earlier run in a given dir would fool the wait below.
        let _ = std::fs::remove_file(&socket);
        let stderr_path = dir.join(STDERR_NAME);
        let args = target.args(&socket);
        let child = spawn(target, &dir, &args, &stderr_path)?;
        let mut command_line = vec![target.path.display().to_string()];
        command_line.extend(args);
        let mut qemu = Qemu {
            child,
            exit: None,
            command_line,
            socket,
            stderr_path,
            client_config: target.client,
            started: Instant::now(),
            scratch,
        };
        qemu.wait_until_listening(&target.path, target.start_timeout)?;
        Ok(qemu)
    }

    /// Connects a client to the QMP socket and reads the greeting.
    pub fn connect(&self) -> Result<Client, TargetError> {
        Ok(Client::connect(&self.socket, self.client_config)?)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The program and arguments as spawned.
    pub fn command_line(&self) -> &[String] {
        &self.command_line
    }

    /// The QMP socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The scratch (and working) dir.
    pub fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// QEMU's stderr so far (lossy UTF-8; empty when unreadable).
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Sends `signal` to the process (no-op once it has been reaped).
    pub fn kill(&mut self, signal: Signal) -> Result<(), TargetError> {
        if self.exit.is_some() {
            return Ok(());
        }
        let pid = self.pid();
        let raw = i32::try_from(pid).unwrap_or(i32::MAX);
        nix::sys::signal::kill(Pid::from_raw(raw), signal).map_err(|e| TargetError::Process {
            action: "kill",
            pid,
            source: e.into(),
        })
    }

    /// How the process ended, if it has (reaps it; never blocks).
    pub fn try_exit(&mut self) -> Result<Option<Exit>, TargetError> {
        if self.exit.is_none() {
            let status = self.child.try_wait().map_err(|source| TargetError::Process {
                action: "wait for",
                pid: self.pid(),
                source,
            })?;
            self.exit = status.map(exit_of);
        }
        Ok(self.exit)
    }

    /// Waits up to `timeout` for the process to end; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<Exit>, TargetError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.try_exit()? {
                return Ok(Some(exit));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Retries connecting until QEMU accepts and greets: the socket file exists before QEMU
    /// listens (ECONNREFUSED), or not yet (ENOENT).
    fn wait_until_listening(&mut self, binary: &Path, timeout: Duration) -> Result<(), TargetError> {
        let started = Instant::now();
        let mut last = "no socket yet".to_string();
        loop {
            if let Some(exit) = self.try_exit()? {
                return Err(TargetError::StartFailed {
                    binary: binary.to_path_buf(),
                    exit,
                    stderr: self.stderr(),
                });
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(TargetError::StartTimeout {
                    binary: binary.to_path_buf(),
                    waited: started.elapsed(),
                    last,
                    stderr: self.stderr(),
                });
            }
            match probe_greeting(&self.socket, left) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            std::thread::sleep(START_POLL);
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Pause between connection attempts while QEMU starts.
const START_POLL: Duration = Duration::from_millis(2);

/// Connects to `socket` and reads up to the end of the greeting's line, within `timeout`;
/// `Err` says what failed. The connection is closed on return.
fn probe_greeting(socket: &Path, timeout: Duration) -> Result<(), String> {
    use std::io::Read;
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("connected, but no greeting came".into());
        }
        stream.set_read_timeout(Some(left)).map_err(|e| format!("set timeout: {e}"))?;
        match stream.read(&mut buf) {
            Ok(0) => return Err("connected, but closed before greeting".into()),
            Ok(n) if buf.get(..n).is_some_and(|b| b.contains(&b'\n')) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the greeting: {e}")),
        }
    }
}

/// Launches a target, negotiates, and runs one command, returning its `return` value.
pub fn query(target: &Target, command: &str) -> Result<Value, TargetError> {
    let qemu = Qemu::launch(target)?;
    let mut client = qemu.connect()?;
    expect_return(&mut client, "qmp_capabilities", None)?;
    expect_return(&mut client, command, None)
}

/// Launches `kind` at `path`, negotiates, runs `query-qmp-schema` and returns the SchemaInfo
/// array.
pub fn introspect(kind: Binary, path: impl AsRef<Path>) -> Result<Value, TargetError> {
    let value = query(&Target::new(kind, path.as_ref()), "query-qmp-schema")?;
    if !value.is_array() {
        return Err(TargetError::BadReturn {
            command: "query-qmp-schema".into(),
            detail: "a non-array".into(),
        });
    }
    Ok(value)
}

/// Runs a command and returns its `return` value, or the error reply as [`TargetError::Qmp`].
pub fn expect_return(client: &mut Client, command: &str, args: Option<Value>) -> Result<Value, TargetError> {
    client
        .execute(command, args)?
        .into_result()
        .map_err(|error| TargetError::Qmp { command: command.into(), error })
}

/// Finds a program: a name with a `/` is taken as a path, others are searched on PATH.
/// Returns the first regular, executable file.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn refused(arg: &str) -> bool {
    REFUSED_ARGS.iter().any(|r| arg == *r || arg.starts_with(&format!("{r}=")))
}

fn spawn(target: &Target, dir: &Path, args: &[String], stderr_path: &Path) -> Result<Child, TargetError> {
    let io_err = |source| TargetError::Spawn { binary: target.path.clone(), source };
    let stderr = File::create(stderr_path).map_err(io_err)?;
    let stdout = File::create(dir.join(STDOUT_NAME)).map_err(io_err)?;
    let mut command = Command::new(&target.path);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in &target.env {
        command.env(key, value);
    }
    command.spawn().map_err(io_err)
}

fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal { signal, core_dumped: status.core_dumped() },
        (None, None) => Exit::Code(-1),
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}
