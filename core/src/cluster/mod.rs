//! The cluster bus: how several tern nodes share shared objects through one
//! sequencer (docs/cluster.md).
//!
//! Every shared-object write of a clustered hub is *proposed* instead of
//! applied: the hub checks it as on one node, then hands a [`Proposal`] to
//! the bus. The sequencer (a JetStream stream in `runtime-std`, a
//! [`MemorySequencer`] in tests and in the simulator) gives each proposal
//! a place in one global order, and every node — the writer's too —
//! applies the messages in that order. So every node computes the same
//! versions and the same state, and the writer's success is queued when
//! its own node applies its batch.
//!
//! # Call order (runtime side)
//!
//! 1. Once, before any connection: [`Hub::join_cluster`](crate::hub::Hub::join_cluster).
//! 2. After every hub call: move [`Hub::poll_proposal`](crate::hub::Hub::poll_proposal)
//!    to [`Bus::propose`].
//! 3. Whenever the bus has news: each [`Bus::poll`] event to the hub —
//!    [`BusEvent::Sequenced`] to [`Hub::apply_sequenced`](crate::hub::Hub::apply_sequenced),
//!    [`BusEvent::Failed`] to [`Hub::proposal_failed`](crate::hub::Hub::proposal_failed),
//!    [`BusEvent::Online`] to [`Hub::set_bus_online`](crate::hub::Hub::set_bus_online) —
//!    then drain the hub's events as after any call.
//!
//! [`pump`] does 2 and 3 for a bus that answers synchronously.

mod memory;
pub mod message;

pub use memory::{MemoryBus, MemorySequencer};
pub use message::{MessageError, SoMessage, SoMessageOp, so_subject};

use crate::hub::Hub;
use crate::time::Instant;
use alloc::string::String;
use alloc::vec::Vec;

/// A message a node wants sequenced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The subject (one per shared object, [`so_subject`]).
    pub subject: String,
    /// A key that is the same for a retried proposal (the sequencer drops
    /// duplicates by it): `node/write`.
    pub id: String,
    /// The proposing node's write id (see [`SoMessage::write`]).
    pub write: u64,
    /// The encoded [`SoMessage`].
    pub payload: Vec<u8>,
}

/// A message in its place in the global order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequenced {
    /// Its position: strictly increasing, the same on every node.
    pub seq: u64,
    /// The encoded [`SoMessage`].
    pub payload: Vec<u8>,
}

/// What the bus tells a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// The next message in the global order.
    Sequenced(Sequenced),
    /// The sequencer did not take this node's proposal `write` (the writer
    /// is told its write failed).
    Failed { write: u64, why: String },
    /// The node reached (`true`) or lost (`false`) the sequencer. Offline,
    /// the hub refuses writes rather than diverge.
    Online(bool),
}

/// A node's side of the sequencer. Never blocks: proposals are queued and
/// events are polled.
pub trait Bus {
    /// Hands a proposal to the sequencer.
    fn propose(&mut self, proposal: Proposal);
    /// The next event for this node, messages in sequence order.
    fn poll(&mut self) -> Option<BusEvent>;
}

/// Moves `hub`'s proposals to `bus` and `bus`'s events to `hub` until
/// neither has anything left. Returns how many events the hub got.
pub fn pump(now: Instant, hub: &mut Hub, bus: &mut dyn Bus) -> usize {
    let mut events = 0;
    loop {
        let mut moved = false;
        while let Some(p) = hub.poll_proposal() {
            bus.propose(p);
            moved = true;
        }
        while let Some(event) = bus.poll() {
            deliver(now, hub, event);
            events += 1;
            moved = true;
        }
        if !moved {
            return events;
        }
    }
}

/// Hands one bus event to the hub.
pub fn deliver(now: Instant, hub: &mut Hub, event: BusEvent) {
    match event {
        BusEvent::Sequenced(s) => hub.apply_sequenced(now, s.seq, &s.payload),
        BusEvent::Failed { write, why } => hub.proposal_failed(now, write, &why),
        BusEvent::Online(online) => hub.set_bus_online(online),
    }
}

#[cfg(test)]
mod tests;
