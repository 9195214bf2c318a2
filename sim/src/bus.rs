//! The cluster's sequencer in a simulation: core's
//! [`MemorySequencer`] shared by the server hosts of a
//! [`ClusterScenario`](crate::cluster::ClusterScenario), with a link per
//! node that the driver can cut (a partition between a node and the bus).
//!
//! The sequencer lives outside the hosts, as NATS does outside the tern
//! processes: crashing a node loses nothing that was sequenced, and a
//! bounced node replays the log from its start. Appending is instant (the
//! bus adds no latency of its own); every node is woken when a message is
//! appended. Everything is behind one `std` mutex because runtime-std's
//! tasks must be `Send`; a simulation is single-threaded, so the lock is
//! never contended and the order stays the seed's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tern_core::cluster::{Bus, BusEvent, MemorySequencer, Proposal};
use tern_runtime_std::cluster::ExternalBus;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    log: MemorySequencer,
    /// Per node: is its link up?
    online: Vec<bool>,
    /// Per node: how its current process is woken.
    news: Vec<Option<Arc<Notify>>>,
    /// Per node: processes started so far (the member id's suffix).
    starts: Vec<u64>,
}

/// The shared sequencer. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct SimSequencer(Arc<Mutex<Inner>>);

impl SimSequencer {
    /// An empty log for `nodes` nodes, every link up.
    pub fn new(nodes: usize) -> SimSequencer {
        SimSequencer(Arc::new(Mutex::new(Inner {
            log: MemorySequencer::default(),
            online: vec![true; nodes],
            news: vec![None; nodes],
            starts: vec![0; nodes],
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Messages sequenced so far.
    pub fn len(&self) -> usize {
        self.lock().log.len()
    }

    /// True if nothing was sequenced.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cuts (`false`) or restores (`true`) node `node`'s link. Cut, its
    /// proposals fail and it reads nothing; restored, it reads on from
    /// where it stopped.
    pub fn set_online(&self, node: usize, online: bool) {
        let news = {
            let mut inner = self.lock();
            if let Some(o) = inner.online.get_mut(node) {
                *o = online;
            }
            inner.news.get(node).cloned().flatten()
        };
        if let Some(n) = news {
            n.notify_one();
        }
    }

    /// True if node `node`'s link is up.
    pub fn is_online(&self, node: usize) -> bool {
        self.lock().online.get(node).copied().unwrap_or(false)
    }

    /// The link of a process starting on node `node`: reads the log from
    /// its start, member id `n<node>/<start count>` (unique per start).
    pub fn link(&self, node: usize) -> ExternalBus {
        let news = Arc::new(Notify::new());
        let start = {
            let mut inner = self.lock();
            if let Some(slot) = inner.news.get_mut(node) {
                *slot = Some(Arc::clone(&news));
            }
            let start = inner.starts.get(node).copied().unwrap_or(0) + 1;
            if let Some(s) = inner.starts.get_mut(node) {
                *s = start;
            }
            start
        };
        ExternalBus {
            bus: Box::new(SimLink {
                seq: self.clone(),
                node,
                cursor: 0,
                told: None,
                failed: VecDeque::new(),
            }),
            news,
            member: format!("n{node}/{start}"),
        }
    }
}

/// One process's side of the [`SimSequencer`].
#[derive(Debug)]
struct SimLink {
    seq: SimSequencer,
    node: usize,
    /// Messages of the log read so far.
    cursor: usize,
    /// The link state last reported to the hub.
    told: Option<bool>,
    failed: VecDeque<BusEvent>,
}

impl Bus for SimLink {
    fn propose(&mut self, proposal: Proposal) {
        let wake: Vec<Arc<Notify>> = {
            let mut inner = self.seq.lock();
            if !inner.online.get(self.node).copied().unwrap_or(false) {
                self.failed.push_back(BusEvent::Failed {
                    write: proposal.write,
                    why: "no link to the sequencer".to_owned(),
                });
                return;
            }
            if !inner.log.append(proposal) {
                return;
            }
            inner.news.iter().flatten().cloned().collect()
        };
        for n in wake {
            n.notify_one();
        }
    }

    fn poll(&mut self) -> Option<BusEvent> {
        if let Some(event) = self.failed.pop_front() {
            return Some(event);
        }
        let inner = self.seq.lock();
        let online = inner.online.get(self.node).copied().unwrap_or(false);
        if self.told != Some(online) {
            self.told = Some(online);
            return Some(BusEvent::Online(online));
        }
        if !online {
            return None;
        }
        let next = inner.log.get(self.cursor)?;
        self.cursor += 1;
        Some(BusEvent::Sequenced(next))
    }
}
