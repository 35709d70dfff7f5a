//! Targets that speak QMP: real QEMU launched in a sandbox, and the emulator.
