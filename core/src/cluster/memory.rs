//! The in-memory sequencer: one log shared by the nodes of a test or a
//! simulation, deterministic and single-threaded.

use super::{Bus, BusEvent, Proposal, Sequenced};
use alloc::collections::{BTreeSet, VecDeque};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

/// The shared log. Proposals are appended in the order they arrive;
/// duplicates (same [`Proposal::id`]) are dropped, as JetStream does.
#[derive(Debug, Default)]
pub struct MemorySequencer {
    log: Vec<Vec<u8>>,
    ids: BTreeSet<String>,
}

impl MemorySequencer {
    /// An empty log, shared.
    pub fn new() -> Rc<RefCell<MemorySequencer>> {
        Rc::new(RefCell::new(MemorySequencer::default()))
    }

    /// Messages sequenced so far.
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// True if nothing was sequenced.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Appends a proposal unless one with its [`Proposal::id`] was
    /// sequenced before (then it is dropped, as JetStream drops a
    /// duplicate). Returns true if it was appended. For a sequencer shared
    /// some other way than [`MemoryBus`] (the simulator's, across threads).
    pub fn append(&mut self, proposal: Proposal) -> bool {
        if self.ids.insert(proposal.id) {
            self.log.push(proposal.payload);
            true
        } else {
            false
        }
    }

    /// The message at `index` (sequence number `index + 1`).
    pub fn get(&self, index: usize) -> Option<Sequenced> {
        let payload = self.log.get(index)?.clone();
        Some(Sequenced {
            seq: index as u64 + 1,
            payload,
        })
    }
}

/// One node's connection to a [`MemorySequencer`]. It can be taken
/// offline (a partition): proposals then fail and nothing is read until it
/// is back, when it goes on from where it stopped.
#[derive(Debug)]
pub struct MemoryBus {
    log: Rc<RefCell<MemorySequencer>>,
    /// How many messages of the log this node has read.
    cursor: usize,
    online: bool,
    events: VecDeque<BusEvent>,
}

impl MemoryBus {
    /// A node reading `log` from its start (a node that joins replays
    /// everything, as a JetStream consumer from sequence 1 does).
    pub fn new(log: &Rc<RefCell<MemorySequencer>>) -> MemoryBus {
        MemoryBus {
            log: Rc::clone(log),
            cursor: 0,
            online: true,
            events: VecDeque::new(),
        }
    }

    /// Cuts (`false`) or restores (`true`) this node's link.
    pub fn set_online(&mut self, online: bool) {
        if self.online != online {
            self.online = online;
            self.events.push_back(BusEvent::Online(online));
        }
    }
}

impl Bus for MemoryBus {
    fn propose(&mut self, proposal: Proposal) {
        if !self.online {
            self.events.push_back(BusEvent::Failed {
                write: proposal.write,
                why: String::from("no link to the sequencer"),
            });
            return;
        }
        self.log.borrow_mut().append(proposal);
    }

    fn poll(&mut self) -> Option<BusEvent> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if !self.online {
            return None;
        }
        let next = self.log.borrow().get(self.cursor)?;
        self.cursor += 1;
        Some(BusEvent::Sequenced(next))
    }
}
