//! A client's replica of one shared object, rebuilt only from what the
//! server sent it, with the exactly-once checks of DESIGN.md §5.
//!
//! Rules checked on every message, for a subscribed client:
//! - a use-success (with clear and one change per key) is a full sync: the
//!   replica takes the data and the version as sent (this is the only place
//!   a version may jump: first use, re-use, reconnect);
//! - every other change — someone's batch, or the client's own batch
//!   answered with successes — is exactly one version step;
//! - a broadcast message does not change the version;
//! - a status (refusal) is unexpected: the simulated clients only write
//!   what the server must accept.

use std::collections::{BTreeMap, VecDeque};
use tern_core::amf0::Value;
use tern_core::message::{SharedObjectMessage, SoEvent};

/// Where a replica stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubState {
    /// Not subscribed (never used, released, or the connection is gone).
    Released,
    /// `use` sent; waiting for the full sync.
    Pending,
    /// Synced and receiving changes.
    Synced,
}

/// Why a message broke the rules.
#[derive(Clone, Debug, PartialEq)]
pub enum SoViolation {
    /// A change that is not the next version: skipped or repeated.
    Version {
        /// What the message carried.
        got: u32,
        /// What the next change should carry.
        expected: u32,
        /// What the message was.
        what: &'static str,
    },
    /// The server refused something.
    Refused { code: String },
    /// Successes with no write of ours waiting, or for other keys.
    StrayAck { detail: String },
    /// Cluster mode: a version seen again (after a resync on another
    /// node) carried a different change than the first time.
    Order { version: u32 },
}

impl std::fmt::Display for SoViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SoViolation::Version {
                got,
                expected,
                what,
            } => {
                let why = if got > expected {
                    "skipped"
                } else {
                    "repeated or reordered"
                };
                write!(f, "{what} at version {got}, expected {expected} ({why})")
            }
            SoViolation::Refused { code } => write!(f, "server refused: {code}"),
            SoViolation::StrayAck { detail } => write!(f, "stray acknowledgement: {detail}"),
            SoViolation::Order { version } => {
                write!(f, "version {version} changed something else than before")
            }
        }
    }
}

/// One client's view of one shared object.
#[derive(Clone, Debug, PartialEq)]
pub struct SoReplica {
    /// Object name.
    pub name: String,
    /// Persistence flag used for every request.
    pub persistent: bool,
    /// Subscription state.
    pub state: SubState,
    /// Version of the last change applied.
    pub version: u32,
    /// Attributes.
    pub data: BTreeMap<String, Value>,
    /// Own batches with sets, oldest first, awaiting their successes.
    pending: VecDeque<Vec<(String, Value)>>,
    /// Change events from other clients applied.
    pub changes: u64,
    /// Own batches acknowledged.
    pub acks: u64,
    /// Broadcast messages received.
    pub messages: u64,
    /// `use`s sent on this connection.
    uses_sent: u32,
    /// Use-successes received on this connection.
    uses_seen: u32,
    /// Cluster mode ([`allow_refusals`](Self::allow_refusals)): a
    /// `SharedObject.NoWriteAccess` is taken as the bus being down.
    refusals_allowed: bool,
    /// A refusal detached the replica; the client should use it again.
    resync_wanted: bool,
    /// Refusals taken (cluster mode).
    pub refusals: u64,
    /// Cluster mode: for each version step of someone else's change, a
    /// hash of what it changed (for the one-global-order check across
    /// clients).
    pub steps: Option<BTreeMap<u32, u64>>,
}

impl SoReplica {
    /// A replica of an object not used yet.
    pub fn new(name: impl Into<String>, persistent: bool) -> SoReplica {
        SoReplica {
            name: name.into(),
            persistent,
            state: SubState::Released,
            version: 0,
            data: BTreeMap::new(),
            pending: VecDeque::new(),
            changes: 0,
            acks: 0,
            messages: 0,
            uses_sent: 0,
            uses_seen: 0,
            refusals_allowed: false,
            resync_wanted: false,
            refusals: 0,
            steps: None,
        }
    }

    /// Cluster mode: a `SharedObject.NoWriteAccess` refusal is what a node
    /// cut off from the bus answers every write with (docs/cluster.md), so
    /// it is not a violation here. Which of the unanswered writes it
    /// refused cannot be told, so the replica detaches (as
    /// [`detach`](Self::detach)) and asks for a fresh sync
    /// ([`take_resync`](Self::take_resync)); whether refusals came only
    /// during partitions is the cluster checker's business. Also records
    /// [`steps`](Self::steps).
    pub fn allow_refusals(&mut self) {
        self.refusals_allowed = true;
        self.steps = Some(BTreeMap::new());
    }

    /// True once after a refusal detached the replica: the client should
    /// send `release` and `use` and call [`use_sent`](Self::use_sent).
    pub fn take_resync(&mut self) -> bool {
        std::mem::take(&mut self.resync_wanted)
    }

    /// `use` was sent. Until its use-success arrives, whatever comes is
    /// left over from an earlier subscription (acks of writes sent before a
    /// release, the sync of a use taken back) and is ignored.
    pub fn use_sent(&mut self) {
        self.state = SubState::Pending;
        self.pending.clear();
        self.uses_sent += 1;
    }

    /// `release` was sent: whatever arrives until the next sync is ignored,
    /// and unanswered writes are forgotten (their outcome shows in the next
    /// sync).
    pub fn detach(&mut self) {
        self.state = SubState::Released;
        self.pending.clear();
    }

    /// The connection is gone: as [`detach`](Self::detach), and the next
    /// connection starts counting uses afresh.
    pub fn disconnected(&mut self) {
        self.detach();
        self.uses_sent = 0;
        self.uses_seen = 0;
    }

    /// A batch of ours was sent; sets wait for their successes.
    pub fn batch_sent(&mut self, sets: Vec<(String, Value)>) {
        if self.state != SubState::Released && !sets.is_empty() {
            self.pending.push_back(sets);
        }
    }

    /// Own writes not answered yet.
    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    /// Applies one message from the server.
    pub fn on_message(&mut self, msg: &SharedObjectMessage) -> Result<(), SoViolation> {
        let has = |f: fn(&SoEvent) -> bool| msg.events.iter().any(f);
        if has(|e| matches!(e, SoEvent::UseSuccess)) {
            self.uses_seen = self.uses_seen.saturating_add(1);
            if self.state == SubState::Released || self.uses_seen < self.uses_sent {
                // The answer to a use we took back with a release since.
                return Ok(());
            }
            self.state = SubState::Synced;
            self.version = msg.version;
            self.data.clear();
            return self.apply(msg, None);
        }
        if self.state != SubState::Synced || self.uses_seen < self.uses_sent {
            return Ok(());
        }
        if let Some(SoEvent::Status { code, .. }) = msg
            .events
            .iter()
            .find(|e| matches!(e, SoEvent::Status { .. }))
        {
            if self.refusals_allowed && code == "SharedObject.NoWriteAccess" {
                self.refusals += 1;
                self.resync_wanted = true;
                self.detach();
                return Ok(());
            }
            return Err(SoViolation::Refused { code: code.clone() });
        }
        let changes = has(|e| {
            matches!(
                e,
                SoEvent::Change { .. }
                    | SoEvent::Remove { .. }
                    | SoEvent::Success { .. }
                    | SoEvent::Clear
            )
        });
        if !changes {
            // A broadcast message: same version.
            self.messages += msg
                .events
                .iter()
                .filter(|e| matches!(e, SoEvent::SendMessage { .. }))
                .count() as u64;
            if msg.version != self.version {
                return Err(SoViolation::Version {
                    got: msg.version,
                    expected: self.version,
                    what: "message",
                });
            }
            return Ok(());
        }
        let expected = self.version.wrapping_add(1);
        let own = has(|e| matches!(e, SoEvent::Success { .. }));
        if msg.version != expected {
            // Resync on the server's word so one slip is reported once.
            self.version = msg.version;
            if own {
                self.pending.pop_front();
            }
            return Err(SoViolation::Version {
                got: msg.version,
                expected,
                what: if own { "acknowledgement" } else { "change" },
            });
        }
        self.version = expected;
        if own {
            let Some(batch) = self.pending.pop_front() else {
                return Err(SoViolation::StrayAck {
                    detail: format!("version {} with no write waiting", msg.version),
                });
            };
            self.acks += 1;
            return self.apply(msg, Some(batch));
        }
        self.changes += msg
            .events
            .iter()
            .filter(|e| matches!(e, SoEvent::Change { .. } | SoEvent::Remove { .. }))
            .count() as u64;
        if let Some(steps) = &mut self.steps {
            let hash = step_hash(msg);
            if steps
                .insert(msg.version, hash)
                .is_some_and(|before| before != hash)
            {
                self.apply(msg, None)?;
                return Err(SoViolation::Order {
                    version: msg.version,
                });
            }
        }
        self.apply(msg, None)
    }

    /// Applies the data events of `msg`; successes take their values from
    /// `batch` (our own sets, in order).
    fn apply(
        &mut self,
        msg: &SharedObjectMessage,
        batch: Option<Vec<(String, Value)>>,
    ) -> Result<(), SoViolation> {
        let mut sets = batch.unwrap_or_default().into_iter();
        for event in &msg.events {
            match event {
                SoEvent::Clear => self.data.clear(),
                SoEvent::Change { key, value } => {
                    self.data.insert(key.clone(), value.clone());
                }
                SoEvent::Remove { key } => {
                    self.data.remove(key);
                }
                SoEvent::Success { key } => match sets.next() {
                    Some((k, v)) if k == *key => {
                        self.data.insert(k, v);
                    }
                    other => {
                        return Err(SoViolation::StrayAck {
                            detail: format!(
                                "success for {key:?}, our write was {:?}",
                                other.map(|(k, _)| k)
                            ),
                        });
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }
}

/// What a change message did, as a hash: its data events in order.
fn step_hash(msg: &SharedObjectMessage) -> u64 {
    let mut h = crate::fnv::Fnv1a::new();
    for event in &msg.events {
        match event {
            SoEvent::Clear => h.write_str("clear"),
            SoEvent::Change { key, value } => {
                h.write_str("change");
                h.write_str(key);
                h.write_str(&format!("{value:?}"));
            }
            SoEvent::Remove { key } => {
                h.write_str("remove");
                h.write_str(key);
            }
            _ => {}
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(version: u32, events: Vec<SoEvent>) -> SharedObjectMessage {
        SharedObjectMessage {
            name: "chat".into(),
            version,
            persistent: false,
            events,
        }
    }

    fn change(k: &str, v: f64) -> SoEvent {
        SoEvent::Change {
            key: k.into(),
            value: Value::Number(v),
        }
    }

    #[test]
    fn sync_then_one_step_per_batch() {
        let mut r = SoReplica::new("chat", false);
        r.use_sent();
        r.on_message(&msg(
            3,
            vec![SoEvent::UseSuccess, SoEvent::Clear, change("a", 1.0)],
        ))
        .unwrap();
        assert_eq!((r.state, r.version), (SubState::Synced, 3));
        r.on_message(&msg(4, vec![change("b", 2.0), change("c", 3.0)]))
            .unwrap();
        r.batch_sent(vec![("a".into(), Value::Number(9.0))]);
        r.on_message(&msg(5, vec![SoEvent::Success { key: "a".into() }]))
            .unwrap();
        assert_eq!(r.data.get("a"), Some(&Value::Number(9.0)));
        assert_eq!(r.data.len(), 3);
        r.on_message(&msg(
            5,
            vec![SoEvent::SendMessage {
                method: "m".into(),
                args: vec![],
            }],
        ))
        .unwrap();
        assert!(matches!(
            r.on_message(&msg(7, vec![SoEvent::Remove { key: "a".into() }])),
            Err(SoViolation::Version {
                got: 7,
                expected: 6,
                ..
            })
        ));
        assert!(matches!(
            r.on_message(&msg(7, vec![change("a", 1.0)])),
            Err(SoViolation::Version {
                got: 7,
                expected: 8,
                ..
            })
        ));
        assert!(matches!(
            r.on_message(&msg(8, vec![SoEvent::Success { key: "z".into() }])),
            Err(SoViolation::StrayAck { .. })
        ));
    }

    #[test]
    fn a_use_taken_back_and_renewed_ignores_the_old_subscription() {
        // use, set, release, use: the first sync and the set's ack belong
        // to the subscription that was taken back.
        let mut r = SoReplica::new("chat", false);
        r.use_sent();
        r.batch_sent(vec![("a".into(), Value::Number(1.0))]);
        r.detach();
        r.use_sent();
        r.on_message(&msg(7, vec![SoEvent::UseSuccess, SoEvent::Clear]))
            .unwrap();
        r.on_message(&msg(8, vec![SoEvent::Success { key: "a".into() }]))
            .unwrap();
        assert_eq!(r.state, SubState::Pending);
        r.on_message(&msg(
            8,
            vec![SoEvent::UseSuccess, SoEvent::Clear, change("a", 1.0)],
        ))
        .unwrap();
        assert_eq!((r.state, r.version), (SubState::Synced, 8));
        r.on_message(&msg(9, vec![change("b", 2.0)])).unwrap();
        assert_eq!(r.data.len(), 2);
    }

    #[test]
    fn released_replicas_ignore_traffic_until_the_next_sync() {
        let mut r = SoReplica::new("chat", false);
        r.on_message(&msg(10, vec![change("a", 1.0)])).unwrap();
        assert_eq!(r.version, 0);
        // use, then release before the answer: the answer is stale.
        r.use_sent();
        r.detach();
        r.on_message(&msg(10, vec![SoEvent::UseSuccess, SoEvent::Clear]))
            .unwrap();
        assert_eq!(r.state, SubState::Released);
        r.disconnected();
        r.use_sent();
        r.on_message(&msg(0, vec![SoEvent::UseSuccess, SoEvent::Clear]))
            .unwrap();
        assert!(r.data.is_empty());
    }
}
