//! Serving sessions on a UNIX socket: blocking I/O, one thread per connection.
//!
//! [`serve`] binds, starts an accept thread and returns at once with a [`ServerHandle`];
//! [`ServerHandle::stop`] (or dropping the handle) closes the listener and every open
//! connection and removes the socket file. Stopping never depends on the socket file: the
//! listening socket is shut down (`shutdown(2)`, which makes a blocked `accept` fail on
//! Linux), so a server whose file was removed or replaced still stops at once, and only the
//! file it bound is removed. [`serve_stream`] runs one session on any connected stream, for
//! callers that accept connections themselves.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use super::{EmulatorConfig, Outgoing, Session};
use crate::spec::Spec;

/// Stack of connection threads: replies echo ids nested 1024 deep, encoded recursively.
const CONNECTION_STACK: usize = 16 << 20;
/// Read buffer size per connection.
const READ_CHUNK: usize = 64 << 10;

/// A running emulator server. Stops when [`ServerHandle::stop`] is called or it is dropped.
#[derive(Debug)]
pub struct ServerHandle {
    path: PathBuf,
    /// Device and inode of the socket file bound, so stopping removes only that file.
    bound: Option<(u64, u64)>,
    /// A handle on the listening socket, shut down to wake the accept thread.
    listener: UnixListener,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stopping: AtomicBool,
    accepted: AtomicU64,
    /// Open connections (a clone of each stream, to shut it down on stop) and their threads.
    connections: Mutex<Vec<(UnixStream, JoinHandle<()>)>>,
}

/// Binds `socket_path` (replacing a stale socket file there, never another kind of file)
/// and serves the model on it until stopped. Every connection gets its own [`Session`].
pub fn serve(
    socket_path: impl AsRef<Path>,
    model: Arc<Spec>,
    config: EmulatorConfig,
) -> io::Result<ServerHandle> {
    let path = socket_path.as_ref().to_path_buf();
    remove_stale_socket(&path)?;
    let listener = UnixListener::bind(&path)?;
    let bound = std::fs::symlink_metadata(&path).ok().map(|m| (m.dev(), m.ino()));
    let control = listener.try_clone()?;
    let shared = Arc::new(Shared::default());
    let accept_shared = Arc::clone(&shared);
    let accept = thread::Builder::new()
        .name("qmp-emulator-accept".to_string())
        .spawn(move || accept_loop(&listener, &accept_shared, &model, &config))?;
    Ok(ServerHandle { path, bound, listener: control, shared, accept: Some(accept) })
}

/// Runs one session on a connected stream until the client leaves, `quit`, or a fault
/// closes it. Blocking.
pub fn serve_stream(stream: UnixStream, model: Arc<Spec>, config: EmulatorConfig) -> io::Result<()> {
    let mut session = Session::new(model, config);
    let mut writer = stream.try_clone()?;
    let mut reader = stream;
    let greeting = super::encode(&session.greeting());
    writer.write_all(&greeting)?;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for out in session.handle(buf.get(..n).unwrap_or_default()) {
            if out == Outgoing::Close {
                writer.flush()?;
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            writer.write_all(&out.to_bytes())?;
        }
    }
}

impl ServerHandle {
    /// The socket path served.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many connections were accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Stops accepting, closes every connection, waits for their threads and removes the
    /// socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Blocks until the server stops (for a foreground `qmpcheck emulate`).
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            // Wake the blocking accept (it fails with EINVAL); it sees the flag and returns.
            // This works whatever became of the socket file.
            if nix::sys::socket::shutdown(self.listener.as_raw_fd(), nix::sys::socket::Shutdown::Both)
                .is_err()
            {
                let _ = UnixStream::connect(&self.path);
            }
            let _ = accept.join();
        }
        let connections =
            std::mem::take(&mut *self.shared.connections.lock().unwrap_or_else(PoisonError::into_inner));
        for (stream, thread) in connections {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            let _ = thread.join();
        }
        let current = std::fs::symlink_metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        if current.is_some() && current == self.bound {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shutdown();
        }
    }
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>, model: &Arc<Spec>, config: &EmulatorConfig) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(control) = stream.try_clone() else { continue };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let (model, config) = (Arc::clone(model), config.clone());
        let spawned = thread::Builder::new()
            .name("qmp-emulator-conn".to_string())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                // A client that leaves mid-reply is not an error of the server.
                let _ = serve_stream(stream, model, config);
            });
        if let Ok(thread) = spawned {
            let mut connections = shared.connections.lock().unwrap_or_else(PoisonError::into_inner);
            connections.retain(|(_, t)| !t.is_finished());
            connections.push((control, thread));
        }
    }
}

/// Removes a socket file left by an earlier run; any other file at the path is an error.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
