//! The QMP wire: stream framing, typed messages and the client.
//!
//! - [`stream`]: bytes in, complete JSON texts out, with offsets and size/depth limits.
//! - [`message`]: greeting / reply / event / unknown, classified strictly by shape.
//! - [`client`]: a blocking client over a UNIX socket, lockstep, with timeouts everywhere.
//!
//! Bytes from the server are untrusted: nothing here panics or grows without bound on them.

pub mod client;
pub mod message;
pub mod stream;

pub use client::{Client, ClientConfig, InFlight, Incoming, Received, Stray, WireError};
pub use message::{Event, Greeting, Message, QemuVersion, QmpError, Reply, Timestamp, Version};
pub use stream::{DecodeError, Decoder, DecoderConfig, Text};
