//! The QMP wire: stream framing, typed messages and the client.
