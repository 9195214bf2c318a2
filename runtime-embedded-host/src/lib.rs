//! Host-side examples and tests of `tern-runtime-embedded`; std, not for
//! devices.
//!
//! Everything here needs std (embassy-executor's `platform-std`,
//! embassy-time's std driver, critical-section's std implementation, the
//! TAP driver, tokio), so it lives outside the device crate, whose whole
//! dependency graph — dev-dependencies included — stays free of `std`
//! features (`.ci/check-no-std.sh`).
//!
//! - `examples/tap_server.rs`: the embedded server on a Linux TAP device;
//!   `examples/ws_watch.rs`: a plain Linux WebSocket client for it.
//! - `tests/in_memory.rs`, `tests/tap_namespace.rs`,
//!   `tests/memory_budget.rs`: see the `tern-runtime-embedded` README.
//! - [`ws_frames`]: the RFC 6455 client-side codec those tests share.

pub mod ws_frames;
