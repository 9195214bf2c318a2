//! tern-bench: `tern-load`, the load tool behind `docs/benchmarks.md`, and
//! the pieces the criterion micro-benchmarks share.
//!
//! The load tool drives thousands of connections from one thread with the
//! core's [`ClientConnection`](tern_core::rtmp::ClientConnection):
//!
//! - [`load_media`]: one publisher of a synthetic H.264/AAC-like stream
//!   ([`media`]) and N players that count bytes, frames, lost frames and
//!   lag behind the publisher, in steps of player counts;
//! - [`load_so`]: K writers and N subscribers of one shared object, or of a
//!   Redis pub/sub channel ([`resp`]), for delivery latency and throughput;
//! - [`load_idle`]: N idle connections, for memory per connection;
//! - [`load_soak`]: players, publishers and shared-object clients coming
//!   and going for a long time (`bench/soak.sh`), checking every change.
//!
//! Server CPU and memory come from `/proc` ([`procfs`]), a counting build's
//! heap allocations from its `/metrics` ([`metrics`]); every measurement
//! is one JSON [`record`] line, and [`report`] turns a run's lines into the
//! comparison tables ([`latency_report`]: tern's merge windows' latency and
//! CPU against nginx-rtmp).

pub mod hist;
pub mod latency_report;
pub mod load_idle;
pub mod load_media;
pub mod load_so;
pub mod load_soak;
pub mod media;
pub mod metrics;
pub mod procfs;
pub mod record;
pub mod report;
pub mod resp;
pub mod session;
pub mod ws_client;
