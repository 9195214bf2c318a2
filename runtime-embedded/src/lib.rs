//! tern on embassy-net for small devices.
//!
//! A `#![no_std]` runtime for the same sans-IO core the `tern` server runs:
//! one [`Server`] holds the hub (scopes, shared objects, live streams) and
//! `N` connection slots; the firmware runs one task per slot (RTMP or
//! WebSocket) and one task for the hub's timers. Memory is fixed up front: the slot count is a
//! const generic, socket buffers are the firmware's (static) arrays, and
//! the core's bounds default to [`Limits::small`](tern_core::Limits::small)
//! with short outboxes and a 1 KiB chunk size (see [`Config`]). The
//! measured budget is in the crate README.
//!
//! # What the firmware brings
//!
//! - **A global allocator.** The core uses `alloc` (messages, shared-object
//!   values, outbox queues); this library defines no `#[global_allocator]`.
//!   On a microcontroller use e.g. `embedded-alloc` with a heap sized from
//!   the README's budget; on a host, std's allocator is already there.
//! - **An embassy time driver and a critical-section implementation** (the
//!   HAL's, or embassy-time's `std` feature and critical-section's `std`
//!   feature on a host).
//! - **An embassy-net stack** with the `tcp` and `proto-ipv4` features and
//!   at least `N` sockets in its `StackResources`.
//!
//! # Wiring it up
//!
//! ```ignore
//! use embassy_net::Stack;
//! use static_cell::StaticCell;
//! use tern_runtime_embedded::{Config, DEFAULT_RX_BUFFER, DEFAULT_TX_BUFFER, Server};
//!
//! const RTMP_SLOTS: usize = 4;
//! const WS_SLOTS: usize = 2;
//! type Tern = Server<{ RTMP_SLOTS + WS_SLOTS }>;
//!
//! #[embassy_executor::task(pool_size = RTMP_SLOTS)]
//! async fn rtmp_slot(server: &'static Tern, stack: Stack<'static>, slot: usize) -> ! {
//!     // Locals of a task live in its pool's static memory.
//!     let mut rx = [0; DEFAULT_RX_BUFFER];
//!     let mut tx = [0; DEFAULT_TX_BUFFER];
//!     server.run_rtmp(stack, slot, &mut rx, &mut tx).await
//! }
//!
//! #[embassy_executor::task(pool_size = WS_SLOTS)]
//! async fn ws_slot(server: &'static Tern, stack: Stack<'static>, slot: usize) -> ! {
//!     let mut rx = [0; DEFAULT_RX_BUFFER];
//!     let mut tx = [0; DEFAULT_TX_BUFFER];
//!     server.run_ws(stack, slot, &mut rx, &mut tx).await
//! }
//!
//! #[embassy_executor::task]
//! async fn hub_timers(server: &'static Tern) -> ! {
//!     server.run_hub_timers().await
//! }
//!
//! // After the stack is up:
//! static SERVER: StaticCell<Tern> = StaticCell::new();
//! let server: &'static Tern = SERVER.init(Server::new(Config::default()));
//! spawner.spawn(hub_timers(server).unwrap());
//! // Slots 0..4 serve RTMP, 4..6 WebSocket: each slot has one task.
//! for slot in 0..RTMP_SLOTS {
//!     spawner.spawn(rtmp_slot(server, stack, slot).unwrap());
//! }
//! for slot in RTMP_SLOTS..RTMP_SLOTS + WS_SLOTS {
//!     spawner.spawn(ws_slot(server, stack, slot).unwrap());
//! }
//! ```
//!
//! RTMP slots listen on [`Config::rtmp_port`] (1935), WebSocket slots on
//! [`Config::ws_port`] (8081); smoltcp hands each incoming connection to
//! one listening socket of its port, so `k` slots of a protocol serve up to
//! `k` of its clients at once and further SYNs wait or are refused. Both
//! kinds of client share the hub: an RTMP client's shared-object change
//! reaches WebSocket subscribers as a JSON `change`, and back.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod clock;
mod config;
mod rtmp;
mod server;
mod slot;
mod ws;

pub use clock::now;
pub use config::{Config, DEFAULT_RX_BUFFER, DEFAULT_TX_BUFFER};
pub use server::{Counters, Server};
pub use tern_core;
