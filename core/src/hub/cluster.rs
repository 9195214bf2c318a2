//! A clustered hub's shared objects: writes are proposed to the bus and
//! applied when they come back sequenced (see [`crate::cluster`] for the
//! call order, docs/cluster.md for the design).
//!
//! Every node applies every sequenced message, so each node holds a
//! replica of every object the cluster wrote; a client's `use` on any node
//! is answered from that replica (use-success, clear, the whole state).
//! What must be the same on every node for the replicas to agree, and is
//! therefore decided only from the sequenced messages and the
//! configuration: whether a message applies (app configured, depth, the
//! object's persistence as fixed by its first sequenced message, the
//! batch limits) and what it does. What only this node knows (who wrote,
//! who subscribes) decides only who is told what.

use super::request::{ConnId, SoChange};
use super::shared_object::{SharedObject, status, status_update};
use super::{Hub, HubEvent};
use crate::cluster::{Proposal, SoMessage, SoMessageOp};
use crate::scope_path::ScopePath;
use crate::time::Instant;
use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Client writes a node keeps waiting for their sequenced message at once;
/// past this, writes are refused (the bus is not keeping up).
pub const MAX_PENDING_WRITES: usize = 65_536;

/// Proposals waiting for the runtime to take them; past this, writes are
/// refused (the runtime is not draining [`Hub::poll_proposal`]).
pub const MAX_QUEUED_PROPOSALS: usize = 65_536;

#[derive(Debug)]
struct Pending {
    conn: ConnId,
    name: String,
    persistent: bool,
}

/// The cluster part of a hub's state.
#[derive(Debug)]
pub(super) struct ClusterState {
    /// This node's member id: unique per process start (the sequencer drops
    /// duplicates by `member/write`).
    member: String,
    next_write: u64,
    pending: BTreeMap<u64, Pending>,
    proposals: VecDeque<Proposal>,
    online: bool,
    /// The last sequence number applied.
    last_seq: u64,
    /// Objects whose persistence a sequenced message fixed.
    fixed: BTreeSet<(ScopePath, String)>,
    /// Rooms in use on the other nodes: node → room → connections, as
    /// their last presence said ([`Hub::set_remote_rooms`]).
    remote: BTreeMap<String, BTreeMap<ScopePath, u64>>,
}

/// One room of the cluster view ([`Hub::cluster_rooms`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRoom {
    /// The room.
    pub path: ScopePath,
    /// Connections per node (this node under its own id), nodes with
    /// none left out.
    pub nodes: BTreeMap<String, u64>,
}

impl ClusterRoom {
    /// Connections on every node.
    pub fn connections(&self) -> u64 {
        self.nodes.values().sum()
    }
}

impl Hub {
    /// Makes this hub one node of a cluster (call once, before any
    /// connection; see [`crate::cluster`]). `member` must be unique per
    /// process start, e.g. the node id and a random suffix. From now on
    /// shared-object writes go through [`Hub::poll_proposal`] and apply
    /// in [`Hub::apply_sequenced`]; the local [`Store`](super::Store) is
    /// not used (the sequencer's log is the durable record), and objects
    /// are not dropped when unused (each node keeps its replica). The hub
    /// starts offline: writes are refused until
    /// [`Hub::set_bus_online`]`(true)`.
    pub fn join_cluster(&mut self, member: String) {
        self.cluster = Some(alloc::boxed::Box::new(ClusterState {
            member,
            next_write: 1,
            pending: BTreeMap::new(),
            proposals: VecDeque::new(),
            online: false,
            last_seq: 0,
            fixed: BTreeSet::new(),
            remote: BTreeMap::new(),
        }));
    }

    /// This node's rooms with connections, for its presence message
    /// (docs/cluster.md, "Rooms across nodes").
    pub fn local_rooms(&self) -> Vec<(ScopePath, u64)> {
        self.scopes
            .iter()
            .filter(|(path, s)| !path.is_app() && s.connections > 0)
            .map(|(path, s)| (path.clone(), s.connections as u64))
            .collect()
    }

    /// Node `node`'s rooms in use, replacing what it said before (an empty
    /// list: it has none, or it is gone — its presence expired). A room
    /// stays on this node while any node has it in use; when the last
    /// other node lets go of a room that is unused here too, its idle
    /// clock starts now (`room_idle` from the moment it was empty
    /// everywhere).
    pub fn set_remote_rooms(&mut self, now: Instant, node: &str, rooms: Vec<(ScopePath, u64)>) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let rooms: BTreeMap<ScopePath, u64> = rooms.into_iter().filter(|(_, n)| *n > 0).collect();
        let before = if rooms.is_empty() {
            c.remote.remove(node)
        } else {
            c.remote.insert(node.to_owned(), rooms)
        };
        for path in before.into_iter().flat_map(BTreeMap::into_keys) {
            if self.remote_in_use(&path) {
                continue;
            }
            if let Some(scope) = self.scopes.get_mut(&path)
                && !scope.in_use()
            {
                scope.idle_since = Some(now);
                let due = now + self.config.room_idle;
                self.timers.insert((due, super::Timer::Scope(path)));
            }
        }
    }

    /// True if another node has connections in `path`.
    pub(super) fn remote_in_use(&self, path: &ScopePath) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.remote.values().any(|rooms| rooms.contains_key(path)))
    }

    /// Connections other nodes have in `path`, as their last presence
    /// said; 0 when not clustered.
    pub(super) fn remote_connections(&self, path: &ScopePath) -> usize {
        let Some(c) = self.cluster.as_ref() else {
            return 0;
        };
        let total: u64 = c.remote.values().filter_map(|rooms| rooms.get(path)).sum();
        usize::try_from(total).unwrap_or(usize::MAX)
    }

    /// Every room in use on some node, with its connections per node;
    /// this node's under `me`. Empty when not clustered.
    pub fn cluster_rooms(&self, me: &str) -> Vec<ClusterRoom> {
        let Some(c) = self.cluster.as_ref() else {
            return Vec::new();
        };
        let mut rooms: BTreeMap<ScopePath, BTreeMap<String, u64>> = BTreeMap::new();
        for (path, n) in self.local_rooms() {
            rooms.entry(path).or_default().insert(me.to_owned(), n);
        }
        for (node, theirs) in &c.remote {
            for (path, n) in theirs {
                rooms
                    .entry(path.clone())
                    .or_default()
                    .insert(node.clone(), *n);
            }
        }
        rooms
            .into_iter()
            .map(|(path, nodes)| ClusterRoom { path, nodes })
            .collect()
    }

    /// This node's id as the cluster knows it: its member id up to the
    /// last `/` (the per-start suffix). `None` when not clustered.
    pub fn cluster_node(&self) -> Option<&str> {
        let member = self.cluster.as_ref()?.member.as_str();
        Some(member.rsplit_once('/').map_or(member, |(node, _)| node))
    }

    /// True once [`Hub::join_cluster`] was called.
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// The last sequence number applied (0: none, or not clustered).
    pub fn last_sequence(&self) -> u64 {
        self.cluster.as_ref().map_or(0, |c| c.last_seq)
    }

    /// Client writes proposed and not yet sequenced.
    pub fn pending_writes(&self) -> usize {
        self.cluster.as_ref().map_or(0, |c| c.pending.len())
    }

    /// True if [`Hub::poll_proposal`] has something.
    pub fn has_proposals(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| !c.proposals.is_empty())
    }

    /// The next message to hand to the bus.
    pub fn poll_proposal(&mut self) -> Option<Proposal> {
        self.cluster.as_mut()?.proposals.pop_front()
    }

    /// The link to the sequencer came up or went down. Down, every write is
    /// refused with `SharedObject.NoWriteAccess` (the log says why) rather
    /// than applied on this node alone.
    pub fn set_bus_online(&mut self, online: bool) {
        if let Some(c) = self.cluster.as_mut() {
            c.online = online;
        }
    }

    /// The bus did not take this node's proposal `write`: its writer is
    /// told `SharedObject.NoWriteAccess`.
    pub fn proposal_failed(&mut self, now: Instant, write: u64, why: &str) {
        self.mail.now = now;
        let Some(p) = self.cluster.as_mut().and_then(|c| c.pending.remove(&write)) else {
            return;
        };
        let why = format!("cluster bus: {why}");
        self.refuse_so(p.conn, &p.name, p.persistent, status::NO_WRITE_ACCESS, why);
        self.settle_overflows(now);
    }

    /// Applies the message at `seq` of the global order. Messages at or
    /// below the last applied sequence are ignored (a redelivery); a
    /// message that cannot be read is skipped on every node alike (logged
    /// as [`HubEvent::Cluster`]).
    pub fn apply_sequenced(&mut self, now: Instant, seq: u64, payload: &[u8]) {
        self.mail.now = now;
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        if seq <= c.last_seq {
            return;
        }
        c.last_seq = seq;
        match SoMessage::decode(payload, &self.config.limits) {
            Ok(msg) => self.apply_so_message(now, seq, msg),
            Err(e) => self.mail.events.push_back(HubEvent::Cluster {
                reason: format!("message {seq} skipped: {e}"),
            }),
        }
        self.settle_overflows(now);
    }

    /// Forgets a disconnected connection's pending writes (its id may be
    /// reused).
    pub(super) fn forget_pending(&mut self, conn: ConnId) {
        if let Some(c) = self.cluster.as_mut() {
            c.pending.retain(|_, p| p.conn != conn);
        }
    }

    /// Queues a client's checked write (`writer`) or a server-side one
    /// (`None`) for sequencing. `Err` holds the reason to refuse it with.
    pub(super) fn propose_so(
        &mut self,
        writer: Option<ConnId>,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
        op: SoMessageOp,
    ) -> Result<(), String> {
        let Some(c) = self.cluster.as_mut() else {
            return Err("not clustered".to_owned());
        };
        if !c.online {
            return Err("cluster bus unavailable: writes are refused until it is back".to_owned());
        }
        if c.pending.len() >= MAX_PENDING_WRITES || c.proposals.len() >= MAX_QUEUED_PROPOSALS {
            return Err("cluster bus is not keeping up".to_owned());
        }
        let write = c.next_write;
        c.next_write += 1;
        let msg = SoMessage {
            origin: c.member.clone(),
            write,
            scope: scope.clone(),
            name: name.to_owned(),
            persistent,
            op,
        };
        if let Some(conn) = writer {
            c.pending.insert(
                write,
                Pending {
                    conn,
                    name: name.to_owned(),
                    persistent,
                },
            );
        }
        c.proposals.push_back(Proposal {
            subject: msg.subject(),
            id: format!("{}/{write}", c.member),
            write,
            payload: msg.encode(),
        });
        Ok(())
    }

    /// Proposes a client's batch after the same checks as on one node (the
    /// limits against this node's replica; they are checked again, against
    /// the sequenced state, when it applies).
    pub(super) fn propose_batch(
        &mut self,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
        changes: Vec<SoChange>,
    ) {
        let limits = self.config.shared_objects;
        let checked = self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map(|so| so.check_batch(&changes, &limits));
        if let Some(Err(e)) = checked {
            let why = format!("{e}");
            return self.refuse_so(conn, name, persistent, status::NO_WRITE_ACCESS, why);
        }
        if let Err(why) = self.propose_so(
            Some(conn),
            scope,
            name,
            persistent,
            SoMessageOp::Batch(changes),
        ) {
            self.refuse_so(conn, name, persistent, status::NO_WRITE_ACCESS, why);
        }
    }

    /// Proposes a server-side write; the version returned is the object's
    /// before it (the write applies when sequenced).
    pub(super) fn propose_server(
        &mut self,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
        op: SoMessageOp,
    ) -> Result<u32, super::HubError> {
        let version = self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map_or(0, SharedObject::version);
        self.propose_so(None, scope, name, persistent, op)
            .map_err(super::HubError::Cluster)?;
        Ok(version)
    }

    fn apply_so_message(&mut self, now: Instant, seq: u64, msg: SoMessage) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let waiting = if msg.origin == c.member {
            c.pending.remove(&msg.write)
        } else {
            None
        };
        let SoMessage {
            scope,
            name,
            persistent,
            op,
            ..
        } = msg;
        // Only a writer still subscribed hears its result.
        let writer = waiting.map(|p| p.conn).filter(|conn| {
            self.conns
                .get(conn)
                .is_some_and(|c| c.scope.as_ref() == Some(&scope) && c.objects.contains(&name))
        });
        let skip = |hub: &mut Hub, why: String| {
            hub.mail.events.push_back(HubEvent::Cluster {
                reason: format!("message {seq} for {scope}/{name} not applied: {why}"),
            });
        };
        let app_known = ScopePath::app(scope.app_name())
            .map(|app| self.scopes.contains_key(&app))
            .unwrap_or(false);
        if !app_known {
            return skip(
                self,
                format!("application {} not configured", scope.app_name()),
            );
        }
        if scope.depth() > self.config.max_depth {
            return skip(self, "scope deeper than max_depth".to_owned());
        }
        self.create_scope(now, &scope);
        if let Err(why) = self.fix_persistence(&scope, &name, persistent) {
            if let Some(w) = writer {
                self.refuse_so(w, &name, persistent, status::BAD_PERSISTENCE, why.clone());
            }
            return skip(self, why);
        }
        match op {
            SoMessageOp::Batch(changes) => {
                let limits = self.config.shared_objects;
                let Some(so) = self.object_mut(&scope, &name) else {
                    return;
                };
                if let Err(e) = so.check_batch(&changes, &limits) {
                    let why = format!("{e}");
                    if let Some(w) = writer {
                        self.refuse_so(w, &name, persistent, status::NO_WRITE_ACCESS, why.clone());
                    }
                    return skip(self, why);
                }
                let notices = so.apply_batch(changes);
                if let Some(w) = writer {
                    self.mail.deliver_update(w, &notices.writer);
                }
                self.broadcast(&scope, &name, &notices.others, writer);
            }
            SoMessageOp::Send { method, args } => {
                if let Some(so) = self.scopes.get(&scope).and_then(|s| s.objects.get(&name)) {
                    let update = so.message(method, args);
                    self.broadcast(&scope, &name, &update, None);
                }
            }
            SoMessageOp::Clear => {
                let Some(so) = self.object_mut(&scope, &name) else {
                    return;
                };
                let update = so.clear();
                self.broadcast(&scope, &name, &update, None);
            }
        }
        self.refresh_scope(now, &scope);
    }

    /// Makes sure the object exists with the persistence its first
    /// sequenced message gave it. An object that only local `use`s created
    /// (no sequenced message yet) with the other flag is replaced, its
    /// subscribers told `SharedObject.BadPersistence` and unsubscribed.
    fn fix_persistence(
        &mut self,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) -> Result<(), String> {
        let key = (scope.clone(), name.to_owned());
        let fixed = self
            .cluster
            .as_ref()
            .is_some_and(|c| c.fixed.contains(&key));
        let existing = self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map(|so| (so.is_persistent(), so.subscribers().to_vec()));
        match existing {
            Some((p, _)) if p == persistent => {}
            Some(_) if fixed => {
                return Err("persistence flag differs from the object's".to_owned());
            }
            Some((_, subscribers)) => {
                let update = status_update(name, !persistent, 0, status::BAD_PERSISTENCE);
                for conn in subscribers {
                    self.mail.deliver_update(conn, &update);
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.objects.retain(|o| o != name);
                    }
                }
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.objects.insert(
                        name.to_owned(),
                        SharedObject::new(name.to_owned(), persistent),
                    );
                }
            }
            None => {
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.objects.insert(
                        name.to_owned(),
                        SharedObject::new(name.to_owned(), persistent),
                    );
                }
            }
        }
        if let Some(c) = self.cluster.as_mut() {
            c.fixed.insert(key);
        }
        Ok(())
    }
}
