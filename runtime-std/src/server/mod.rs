//! The server: one hub shared by every connection task.
//!
//! # Threading
//!
//! Each accepted socket gets its own tokio task that owns its protocol
//! connection (handshake, chunk decoding and encoding, AMF), so protocol
//! work runs in parallel across cores. The [`Hub`](tern_core::hub::Hub) — scopes, shared objects,
//! streams — sits behind one short-held `std::sync::Mutex`: a task locks it
//! to hand over the requests a read produced and to take the deliveries
//! waiting for it, and never holds it across an `.await`. Fan-out inside the
//! hub is cheap (it clones `Bytes` handles into bounded outboxes), so one
//! hub per server is the design; sharding hubs by app is the next step if
//! the lock ever shows up in profiles (see docs/runtime-std.md).
//!
//! A task learns that deliveries wait for it through a [`Wakeup`](crate::wakeup::Wakeup) that the
//! hub's `Ready` event pokes. It pulls deliveries only while its own output
//! buffer is small, so a slow client leaves its deliveries in the hub, where
//! its outbox applies the drop policy without holding anyone else back.
//!
//! Shared-object notices for a task that waits with nothing queued are not
//! a reason to wake it: whoever ran the hub moves them into the
//! connection's queue, and one task ([`run_direct_writes`]) writes such
//! queues to their sockets (see `direct_write`), so a change reaches 1000
//! idle subscribers in one loop of 1000 writes.
//!
//! # Merged writes
//!
//! Per delivered byte, a Linux server pays mostly for system calls and the
//! segments they make, not for copying. So media for a player may wait in
//! its outbox up to `streams.merge_write_ms` after the last write and then
//! leave in one vectored write (SRS's "merged write"). While it waits the
//! task sleeps: the hub wakes it only when the outbox goes from empty to
//! non-empty, or gets its first notice, status or close — those never wait,
//! and take the held media with them, as does a reply of the connection
//! itself or more than `MERGE_FLUSH_BYTES` (in `connection`) of held media when it wakes.
//! Windows end on a small grid (`Shared::merge_deadline`), so the players
//! due at about the same time are written on one wake-up of the thread.

mod accept;
mod background;
mod connection;
mod http_dispatch;
mod hub_config;
mod state;
mod write;

pub(crate) use accept::{accept_loop, serve_rtmp_connection};
pub use accept::{serve_http, serve_rtmp, stopped};
pub use background::{run_direct_writes, run_hub_timers, run_recordings};
pub(crate) use http_dispatch::serve_http_connection;
pub use hub_config::hub_config;
pub use state::{Shared, close_all};
pub(crate) use write::MAX_IOVECS;
