//! tern-core: the sans-IO protocol core of tern.
//!
//! Everything here is pure state machines over bytes: no sockets, no clock,
//! no ambient randomness. Callers pass the current [`time::Instant`] and any
//! random bytes in, and pull bytes and events out. The same code runs on
//! tokio servers, on embassy devices and inside the turmoil simulator.
//!
//! Peer bytes never panic the core: every parser returns a typed error, and
//! the lints below forbid `unwrap`, `expect`, `panic!` and unchecked slice
//! indexing outside tests.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

extern crate alloc;

pub mod access;
pub mod amf0;
pub mod amf3;
pub mod chunk;
pub mod cluster;
pub mod connection;
pub mod flv;
pub mod hub;
pub mod limits;
pub mod message;
pub mod queue;
pub mod rtmp;
pub mod scope_path;
pub mod time;
pub mod trace;
pub mod ws;

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod testing;

pub use limits::Limits;
pub use time::{Duration, Instant};
