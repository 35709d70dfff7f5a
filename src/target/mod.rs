//! Targets that speak QMP: real QEMU launched in a sandbox, and the emulator.
//!
//! - [`qemu`]: launch `qemu-system-x86_64` / `qemu-storage-daemon` in a scratch dir, kill and
//!   reap it, tell how it died; [`qemu::introspect`] for a one-shot `query-qmp-schema`.
//! - [`record`]: a transcript of the greeting and introspection queries.

pub mod emulator;
pub mod qemu;
pub mod record;

pub use qemu::{find_binary, introspect, Binary, Exit, Qemu, Target, TargetError};
