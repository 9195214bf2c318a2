//! tern on embassy-net for small devices.
//!
//! This crate will hold the `no_std` embassy-net runtime: a fixed number of
//! connection tasks with static buffers driving the same `tern-core` hub as
//! the server binary (see issue "runtime-embedded"). For now it only proves
//! that the core builds without `std`.
#![no_std]

pub use tern_core;
