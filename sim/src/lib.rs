//! tern-sim: deterministic simulation of tern on turmoil 0.7.
//!
//! The server is the real thing: the `server` host runs
//! [`tern_runtime_std::serve_on`] — runtime-std's accept loops, connection
//! tasks, hub and file store — on turmoil listeners ([`net::SimListener`]).
//! Clients are core's RTMP client ([`tern_core::rtmp::ClientConnection`])
//! or WebSocket clients (`tokio-tungstenite`, tern's JSON protocol v1) over
//! turmoil `TcpStream`s ([`Transport`]). All time is turmoil's; all
//! randomness comes from the seed (turmoil's `rng_seed` and
//! [`rng::SimRng`]).
//!
//! A [`Scenario`] describes clients (rooms, roles, shared objects, random or
//! scripted operations, slow readers) and faults (partition/repair,
//! hold/release, server crash and bounce, clients that stop reading).
//! [`Scenario::run`] runs one seed and checks, into a [`Report`]:
//! - every subscriber's view of every shared object, RTMP or WebSocket,
//!   equals the server's
//!   (versions from `/api/stats` over simulated HTTP, data among the
//!   subscribers and, for persistent objects, in the store directory);
//! - no change is delivered twice or skipped: versions step by exactly one
//!   per batch; they jump only at a (re)sync;
//! - players get media in order, timestamps never go backwards, and video
//!   resumes after every gap on a keyframe;
//! - every client recovers from every fault by the check;
//! - after everyone leaves and `room_idle` passes, only the apps remain and
//!   the server holds no TCP connection;
//! - nothing panics.
//!
//! [`cluster::ClusterScenario`] runs three server hosts sharing one
//! in-memory sequencer ([`bus::SimSequencer`]) with node crashes and
//! partitions from the bus, and checks the cross-node invariants (one
//! global order per object, one final state, refusals only while cut off).
//!
//! `TERN_SIM_SEED=n` replays one run; `TERN_SIM_SEEDS=count` sweeps (see
//! [`sweep`]). A failing run prints the command that reproduces it.

pub mod bus;
pub mod checker;
pub mod client;
pub mod cluster;
pub mod fnv;
pub mod http;
pub mod media;
pub mod net;
pub mod panics;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod server;
pub mod so_view;
pub mod sweep;

pub use client::{ClientSpec, ObjectSpec, Op, Ops, Role, Timeline, Transport};
pub use report::{Report, Totals, Violation, ViolationKind};
pub use scenario::{Fault, FaultPlan, Known, Scenario};
pub use server::ServerTuning;
