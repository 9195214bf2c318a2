//! The hub: scopes, shared objects and live streams, protocol-neutral.
//!
//! Connections hand the hub [`Request`]s; the hub answers with
//! [`Delivery`]s queued in each connection's bounded [`Outbox`]. One hub
//! serves a whole server (or one shard of it); it never blocks, reads a
//! clock or touches a socket.
//!
//! # Call order
//!
//! 1. For each request a connection produced, in that connection's order:
//!    [`Hub::handle`]`(now, conn, request)`. The first request of a
//!    connection is [`Request::Connect`]; the last is
//!    [`Request::Disconnect`] (always send it, also after a
//!    [`Delivery::Close`]), after which the id may be reused.
//! 2. Drain [`Hub::poll_event`]: [`HubEvent::Ready`] means that
//!    connection's outbox went from empty to non-empty, or got its first
//!    non-media delivery (wake its writer);
//!    the other events are for logs and for forcing slow connections shut.
//! 3. Whenever a connection's socket has room: [`Hub::poll_delivery`]`(conn)`
//!    until it returns `None`, turning each delivery into bytes. Not calling
//!    it is what a slow client looks like: its outbox applies the drop
//!    policy and nobody else waits.
//! 4. Call [`Hub::handle_timeout`]`(now)` when [`Hub::poll_timeout`] is
//!    reached (re-read it after every call of 1 or 4), then drain 2 again.

mod admin;
mod app;
mod claims;
mod cluster;
pub use cluster::ClusterRoom;
mod connections;
mod fanout;
mod objects;
mod outbox;
mod request;
mod scopes;
pub mod shared_object;
pub mod store;
pub mod stream;
mod streams;

pub use admin::ConnectionInfo;
pub use app::{Application, Decision, DefaultApplication, SoAccess, TieredSessions};
pub use fanout::{Encoder, EncodingStats, FanoutCodec};
pub use outbox::{Outbox, OutboxLimits, OverflowReason, PushOutcome};
pub use request::{
    ConnId, ConnectRequest, Delivery, Level, MediaDelivery, MediaKind, MediaPriority, Protocol,
    RejectCode, Request, SessionLimits, SoChange, SoDelivery, SoNotice, SoOp, SoUpdate,
};

use crate::Limits;
use crate::cluster::SoMessageOp;
use crate::scope_path::{NameError, ScopePath};
use crate::time::{Duration, Instant};
use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::IpAddr;
use fanout::EncodingCache;
use shared_object::{SharedObject, SoLimits};
use store::{MemoryStore, Store, StoreError};
use stream::LiveStream;

/// Everything a hub can be configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// Configured applications (first scope segment). Always exist.
    pub apps: Vec<String>,
    /// How long an unused room (and an unused shared object) lingers.
    pub room_idle: Duration,
    /// Room segments below the app.
    pub max_depth: usize,
    /// Rooms (scopes below the app, any depth) per app.
    pub max_rooms_per_app: usize,
    /// Connections directly in one scope.
    pub max_connections_per_scope: usize,
    /// Connections from one client address.
    pub max_connections_per_address: usize,
    /// Live streams per scope.
    pub max_streams_per_scope: usize,
    /// Shared-object bounds.
    pub shared_objects: SoLimits,
    /// Per-connection queue bounds.
    pub outbox: OutboxLimits,
    /// Bytes of the group of pictures cached for late joiners (0: off).
    pub max_gop_bytes: usize,
    /// A publisher that sent no media for this long is dropped (its
    /// connection closed, its players told `UnpublishNotify`). Zero: never.
    pub publisher_idle_timeout: Duration,
    /// What a publish of a name that is already live does.
    pub publish_conflict: PublishConflict,
    /// Parser bounds (for data messages the hub inspects).
    pub limits: Limits,
}

/// What a publish of a live name does (`[streams] publish_conflict`).
///
/// Either way the new publish must first pass every check a publish
/// passes (name, scope limits, the application's `on_publish`, which is
/// where access rules live); only then is the conflict decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PublishConflict {
    /// The new publisher takes over: the old one is told
    /// `NetStream.Unpublish.Success` ("taken over") and its connection is
    /// closed; players stay and continue with the new publisher's sequence
    /// headers and first keyframe, timestamps going on where the old
    /// publisher stopped. What an encoder reconnecting after a dead link
    /// needs (the old connection may take a minute to time out).
    #[default]
    Replace,
    /// The new publisher is refused with `NetStream.Publish.BadName` while
    /// the old one publishes (until it leaves or is dropped as idle).
    Reject,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            apps: alloc::vec![String::from("live"), String::from("chat")],
            room_idle: Duration::from_secs(60),
            max_depth: 4,
            max_rooms_per_app: 10_000,
            max_connections_per_scope: 10_000,
            max_connections_per_address: 1_000,
            max_streams_per_scope: 1_000,
            shared_objects: SoLimits::default(),
            outbox: OutboxLimits::default(),
            max_gop_bytes: 8 * 1024 * 1024,
            publisher_idle_timeout: Duration::from_secs(10),
            publish_conflict: PublishConflict::Replace,
            limits: Limits::default(),
        }
    }
}

/// Things the runtime should know about (log, or act on).
#[derive(Clone, Debug, PartialEq)]
pub enum HubEvent {
    /// The connection's outbox went from empty to non-empty, or received
    /// its first non-media delivery (a runtime that holds media back to
    /// merge writes must send notices at once).
    Ready(ConnId),
    /// The hub is closing the connection (a [`Delivery::Close`] is queued
    /// last in its outbox). If the client does not read it within a grace
    /// period, the runtime should drop the socket.
    Closing { conn: ConnId, reason: String },
    /// A connect was refused.
    Rejected { conn: ConnId, reason: String },
    /// A request was refused or ignored (the client got a status if it can).
    Refused { conn: ConnId, reason: String },
    /// A live stream started publishing (for server-side subscribers such
    /// as recorders, which play it like any player).
    Published { scope: ScopePath, name: String },
    /// A live play found no publisher and waits for one (for relays that
    /// pull the stream from an origin). Sent for every such play; the
    /// runtime starts at most one pull per stream.
    PlayWaiting { scope: ScopePath, name: String },
    /// A publish waits for the runtime's grant (a hub that requires
    /// claims: [`Hub::require_publish_claims`]); answer with
    /// [`Hub::resolve_publish_claim`].
    PublishClaim {
        claim: u64,
        scope: ScopePath,
        name: String,
    },
    /// A live stream's publisher left (unpublished, disconnected, dropped
    /// as idle). Not sent when a new publisher took the name over here, nor
    /// by [`Hub::end_publish`].
    Unpublished { scope: ScopePath, name: String },
    /// A persistent shared object could not be loaded or saved.
    StoreFailed {
        scope: ScopePath,
        name: String,
        error: StoreError,
    },
    /// A clustered hub skipped a sequenced message (every node skips it
    /// alike) or could not apply it as proposed; for the log.
    Cluster { reason: String },
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubCounters {
    /// Media messages dropped by outboxes of connections that closed.
    pub media_dropped_closed: u64,
    /// Connections closed for lagging or unread notifications.
    pub overflow_disconnects: u64,
    /// Connections closed for idle or session timeouts.
    pub timeout_disconnects: u64,
    /// Connects refused.
    pub rejected_connects: u64,
}

/// Snapshot of one scope, for stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeInfo<'a> {
    /// Path.
    pub path: &'a ScopePath,
    /// Connections directly in it.
    pub connections: usize,
}

/// Snapshot of one live stream, for stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo<'a> {
    /// Scope.
    pub scope: &'a ScopePath,
    /// Name.
    pub name: &'a str,
    /// Whether a publisher is on.
    pub publishing: bool,
    /// Players.
    pub players: usize,
}

/// Snapshot of one shared object, for stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedObjectInfo<'a> {
    /// Scope.
    pub scope: &'a ScopePath,
    /// Name.
    pub name: &'a str,
    /// Version.
    pub version: u32,
    /// Subscribers.
    pub subscribers: usize,
    /// Persistent or transient.
    pub persistent: bool,
}

/// Why a server-side (application) operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// The scope's app is not configured.
    UnknownApp(String),
    /// A clustered hub could not propose the write (the bus is down).
    Cluster(String),
    /// A bad object name.
    BadName(NameError),
    /// The object exists with the other persistence.
    BadPersistence,
    /// A limit refused the batch.
    Limit(String),
    /// The store failed.
    Store(StoreError),
}

impl core::fmt::Display for HubError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HubError::UnknownApp(app) => write!(f, "application {app:?} is not configured"),
            HubError::BadName(e) => write!(f, "bad name: {e}"),
            HubError::BadPersistence => {
                f.write_str("shared object exists with the other persistence")
            }
            HubError::Limit(e) => write!(f, "refused by a limit: {e}"),
            HubError::Store(e) => write!(f, "{e}"),
            HubError::Cluster(why) => f.write_str(why),
        }
    }
}

impl core::error::Error for HubError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            HubError::BadName(e) => Some(e),
            HubError::Store(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(ConnId),
    Scope(ScopePath),
    Object(ScopePath, String),
    /// Check the stream's publisher for `publisher_idle_timeout`.
    Publisher(ScopePath, String),
}

#[derive(Debug)]
struct Conn {
    protocol: Protocol,
    address: Option<IpAddr>,
    scope: Option<ScopePath>,
    session: SessionLimits,
    connected_at: Instant,
    last_activity: Instant,
    /// Shared objects it subscribes to (in its scope).
    objects: Vec<String>,
    /// (message stream id, (scope, stream name)) it publishes: the whole
    /// stream key, so relaying a message looks the stream up without
    /// building a key.
    publishing: Vec<(u32, (ScopePath, String))>,
    /// (message stream id, stream name) it plays.
    playing: Vec<(u32, String)>,
    /// The hub decided to close it; requests are ignored.
    closing: bool,
    /// When its `Timer::Conn` is due, while one is armed: a disconnect
    /// takes the timer out with it, so the timer set holds one entry per
    /// open connection, not one per connection of the last idle timeout.
    timer: Option<Instant>,
}

#[derive(Debug, Default)]
struct Scope {
    connections: usize,
    streams: usize,
    objects: BTreeMap<String, SharedObject>,
    idle_since: Option<Instant>,
}

impl Scope {
    fn in_use(&self) -> bool {
        self.connections > 0
            || self.streams > 0
            || self.objects.values().any(|o| !o.subscribers().is_empty())
    }
}

/// Outboxes and events: the hub's outputs, kept apart from its state so a
/// fan-out can read the state while it writes here.
#[derive(Debug, Default)]
struct Mailroom {
    /// Boxed, like `Hub::conns`: see there.
    outboxes: BTreeMap<ConnId, Box<Outbox>>,
    events: VecDeque<HubEvent>,
    /// Connections whose outbox overflowed during the current operation.
    overflowed: Vec<(ConnId, OverflowReason)>,
    /// The time of the current operation (`handle`, `handle_timeout`,
    /// `close_all`); only for the outboxes' memory policy.
    now: Instant,
    /// The current fan-out's encodings (a media message or an update).
    encodings: EncodingCache,
    /// Encodings built so far.
    encoded: EncodingStats,
}

impl Mailroom {
    fn deliver(&mut self, conn: ConnId, delivery: Delivery) -> Option<PushOutcome> {
        let outbox = self.outboxes.get_mut(&conn)?;
        if outbox.closed().is_some() {
            return None;
        }
        let was_empty = outbox.is_empty();
        if was_empty {
            outbox.note_refill(self.now);
        }
        let first_notice = outbox.notices() == 0 && !matches!(delivery, Delivery::Media(_));
        let outcome = outbox.push(delivery);
        match &outcome {
            PushOutcome::Overflow(reason) => {
                outbox.close(format!("{reason}"));
                self.overflowed.push((conn, *reason));
            }
            PushOutcome::Queued { .. } if was_empty || first_notice => {
                self.events.push_back(HubEvent::Ready(conn));
            }
            _ => {}
        }
        Some(outcome)
    }

    /// Queues `update` for `conn`, in the encoding of `conn`'s notice
    /// encoder (made now if no receiver of `update` with an equal encoder
    /// was sent it yet).
    fn deliver_update(&mut self, conn: ConnId, update: &Arc<SoUpdate>) -> Option<PushOutcome> {
        let outbox = self.outboxes.get(&conn)?;
        if outbox.closed().is_some() {
            return None;
        }
        let encoded = match outbox.notices_encoder() {
            Some(encoder) => self.encodings.update(encoder, update, &mut self.encoded),
            None => Bytes::new(),
        };
        let delivery = Delivery::SharedObject(SoDelivery {
            update: Arc::clone(update),
            encoded,
        });
        self.deliver(conn, delivery)
    }

    /// Queues the final delivery even past the bounds.
    fn deliver_close(&mut self, conn: ConnId, reason: &str) {
        if let Some(outbox) = self.outboxes.get_mut(&conn) {
            let wake = outbox.notices() == 0;
            outbox.force_push(Delivery::Close {
                reason: reason.to_owned(),
            });
            if outbox.closed().is_none() {
                outbox.close(reason.to_owned());
            }
            if wake {
                self.events.push_back(HubEvent::Ready(conn));
            }
        }
    }
}

/// The engine. See the module docs for the call order.
pub struct Hub {
    config: HubConfig,
    app: Box<dyn Application + Send>,
    store: Box<dyn Store + Send>,
    /// Boxed: ids only grow, so a B-tree leaf is split when full and stays
    /// about half empty; with the entries inline that empty half costs a
    /// whole `Conn` per slot (figures in docs/memory.md).
    conns: BTreeMap<ConnId, Box<Conn>>,
    per_address: BTreeMap<IpAddr, usize>,
    scopes: BTreeMap<ScopePath, Scope>,
    streams: BTreeMap<(ScopePath, String), LiveStream>,
    mail: Mailroom,
    timers: BTreeSet<(Instant, Timer)>,
    counters: HubCounters,
    /// Set by [`Hub::join_cluster`]: shared-object writes go through the
    /// cluster bus.
    cluster: Option<Box<cluster::ClusterState>>,
    /// Set by [`Hub::require_publish_claims`]: publishes wait for the
    /// runtime's grant (`claims.rs`).
    claims: Option<Box<claims::Claims>>,
}

impl core::fmt::Debug for Hub {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.conns.len())
            .field("scopes", &self.scopes.len())
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

/// Longest stream name accepted.
pub const MAX_STREAM_NAME: usize = 256;

fn validate_stream_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty stream name");
    }
    if name.len() > MAX_STREAM_NAME {
        return Err("stream name longer than 256 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("stream name has control characters");
    }
    Ok(())
}

impl Hub {
    /// A hub with the default application (accept everything, tiered
    /// sessions) and an in-memory store.
    pub fn new(config: HubConfig) -> Self {
        Self::with_parts(
            config,
            Box::new(DefaultApplication::default()),
            Box::new(MemoryStore::new()),
        )
    }

    /// A hub with the given application hooks and store.
    pub fn with_parts(
        config: HubConfig,
        app: Box<dyn Application + Send>,
        store: Box<dyn Store + Send>,
    ) -> Self {
        let mut scopes = BTreeMap::new();
        for app_name in &config.apps {
            if let Ok(path) = ScopePath::app(app_name) {
                scopes.insert(path, Scope::default());
            }
        }
        Hub {
            config,
            app,
            store,
            conns: BTreeMap::new(),
            per_address: BTreeMap::new(),
            scopes,
            streams: BTreeMap::new(),
            mail: Mailroom::default(),
            timers: BTreeSet::new(),
            counters: HubCounters::default(),
            cluster: None,
            claims: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Handles one request from `conn`.
    pub fn handle(&mut self, now: Instant, conn: ConnId, request: Request) {
        self.mail.now = now;
        match request {
            Request::Connect(connect) => self.connect(now, conn, connect),
            Request::Disconnect => self.disconnect(now, conn),
            other => {
                let Some(state) = self.conns.get_mut(&conn) else {
                    self.mail.events.push_back(HubEvent::Refused {
                        conn,
                        reason: "request before connect".to_owned(),
                    });
                    return;
                };
                if state.closing {
                    return;
                }
                if let Request::Media {
                    stream,
                    kind,
                    timestamp,
                    payload,
                } = other
                {
                    // The hot path: no scope clone (media needs no scope
                    // checks beyond the publish that accepted the stream).
                    state.last_activity = now;
                    self.media(now, conn, stream, kind, timestamp, payload);
                    self.settle_overflows(now);
                    return;
                }
                let Some(scope) = state.scope.clone() else {
                    self.mail.events.push_back(HubEvent::Refused {
                        conn,
                        reason: "request on a connection that was not accepted".to_owned(),
                    });
                    return;
                };
                state.last_activity = now;
                match other {
                    Request::SharedObject {
                        name,
                        persistent,
                        op,
                    } => self.shared_object(now, conn, &scope, name, persistent, op),
                    Request::Publish { stream, name } => {
                        self.publish(now, conn, &scope, stream, &name, streams::Claim::Unclaimed)
                    }
                    Request::Play {
                        stream,
                        name,
                        start,
                        encoder,
                    } => self.play(now, conn, &scope, stream, &name, start, encoder),
                    Request::CloseStream { stream } => self.close_stream(now, conn, stream),
                    Request::Media { .. } | Request::Connect(_) | Request::Disconnect => {}
                }
            }
        }
        self.settle_overflows(now);
    }

    /// The next event for the runtime.
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.mail.events.pop_front()
    }

    /// The next delivery for `conn`, when its socket has room.
    pub fn poll_delivery(&mut self, conn: ConnId) -> Option<Delivery> {
        self.mail.outboxes.get_mut(&conn)?.pop()
    }

    /// Takes `conn`'s next deliveries while `take` accepts them, handing
    /// each to `take`; returns how many it took and whether any are left.
    /// One outbox lookup for all of them (a runtime writing a fan-out's
    /// notices itself does this once per subscriber).
    pub fn poll_deliveries_while(
        &mut self,
        conn: ConnId,
        mut take: impl FnMut(&Delivery) -> bool,
    ) -> (usize, bool) {
        let Some(outbox) = self.mail.outboxes.get_mut(&conn) else {
            return (0, false);
        };
        let mut taken = 0;
        while outbox.front().is_some_and(&mut take) {
            let _sent = outbox.pop();
            taken += 1;
        }
        (taken, !outbox.is_empty())
    }

    /// `conn`'s outbox (for stats and tests).
    pub fn outbox(&self, conn: ConnId) -> Option<&Outbox> {
        self.mail.outboxes.get(&conn).map(|o| &**o)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Expires idle connections, rooms, shared objects and idle publishers
    /// due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.mail.now = now;
        while let Some((at, _)) = self.timers.first() {
            if *at > now {
                break;
            }
            let Some((_, timer)) = self.timers.pop_first() else {
                break;
            };
            match timer {
                Timer::Conn(conn) => self.check_conn_deadline(now, conn),
                Timer::Scope(path) => self.check_scope_expiry(now, &path),
                Timer::Object(path, name) => self.check_object_expiry(now, &path, &name),
                Timer::Publisher(path, name) => self.check_publisher_idle(now, path, name),
            }
        }
        self.settle_overflows(now);
    }

    /// Media messages dropped so far by the outboxes of open connections.
    pub fn media_dropped_open(&self) -> u64 {
        self.mail.outboxes.values().map(|o| o.dropped_total()).sum()
    }

    /// Counters for metrics.
    pub fn counters(&self) -> HubCounters {
        self.counters
    }

    /// Fan-out encodings built so far, per codec.
    pub fn encodings(&self) -> &EncodingStats {
        &self.mail.encoded
    }

    /// Accepted connections by protocol.
    pub fn connection_count(&self, protocol: Protocol) -> usize {
        self.conns
            .values()
            .filter(|c| c.scope.is_some() && c.protocol == protocol)
            .count()
    }

    /// Every scope, apps included, parents before children.
    pub fn scopes(&self) -> impl Iterator<Item = ScopeInfo<'_>> {
        self.scopes.iter().map(|(path, s)| ScopeInfo {
            path,
            connections: s.connections,
        })
    }

    /// True if the scope exists.
    pub fn has_scope(&self, path: &ScopePath) -> bool {
        self.scopes.contains_key(path)
    }

    /// Every live stream with a publisher or players.
    pub fn streams(&self) -> impl Iterator<Item = StreamInfo<'_>> {
        self.streams.iter().map(|((scope, name), s)| StreamInfo {
            scope,
            name,
            publishing: s.publisher.is_some(),
            players: s.players.len(),
        })
    }

    /// Every shared object in memory.
    pub fn shared_objects(&self) -> impl Iterator<Item = SharedObjectInfo<'_>> {
        self.scopes.iter().flat_map(|(scope, s)| {
            s.objects.values().map(move |o| SharedObjectInfo {
                scope,
                name: o.name(),
                version: o.version(),
                subscribers: o.subscribers().len(),
                persistent: o.is_persistent(),
            })
        })
    }

    /// The current attributes of a shared object in memory.
    pub fn shared_object_data(
        &self,
        scope: &ScopePath,
        name: &str,
    ) -> Option<(u32, &BTreeMap<String, crate::amf0::Value>)> {
        let so = self.scopes.get(scope)?.objects.get(name)?;
        Some((so.version(), so.data()))
    }

    /// Loads every persistent shared object the store holds (at start, so
    /// broken files show up at once and stats list them). Objects of apps
    /// that are not configured are skipped. Loaded objects nobody uses are
    /// unloaded again after `room_idle`, as any unused object; they stay in
    /// the store. Returns how many were loaded.
    pub fn load_stored(&mut self, now: Instant) -> Result<usize, StoreError> {
        if self.cluster.is_some() {
            return Ok(0); // the cluster's log is the record
        }
        let mut loaded = 0;
        for (scope, name) in self.store.list()? {
            if self.server_object(now, &scope, &name, true).is_ok() {
                loaded += 1;
            }
        }
        Ok(loaded)
    }

    /// Closes every connection (graceful shutdown): each is told `reason`
    /// after what is already queued for it.
    pub fn close_all(&mut self, now: Instant, reason: &str) {
        self.mail.now = now;
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in ids {
            self.close_conn(now, conn, reason.to_owned());
        }
    }

    // ----- server-side API for application code -----

    /// Applies `changes` to shared object `name` in `scope` as the server,
    /// creating scope and object as needed; every subscriber gets the
    /// changes. Returns the new version. On a clustered hub the write is
    /// proposed and applies when it comes back sequenced, so the version
    /// returned is the one before it (as for [`Hub::so_clear`]).
    pub fn so_apply(
        &mut self,
        now: Instant,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
        changes: Vec<SoChange>,
    ) -> Result<u32, HubError> {
        self.server_object(now, scope, name, persistent)?;
        if self.cluster.is_some() {
            return self.propose_server(scope, name, persistent, SoMessageOp::Batch(changes));
        }
        let limits = self.config.shared_objects;
        let result = self.apply_batch(scope, name, None, changes, &limits);
        self.settle_overflows(now);
        result
    }

    /// Clears shared object `name` in `scope` as the server.
    pub fn so_clear(
        &mut self,
        now: Instant,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) -> Result<u32, HubError> {
        self.server_object(now, scope, name, persistent)?;
        if self.cluster.is_some() {
            return self.propose_server(scope, name, persistent, SoMessageOp::Clear);
        }
        let Some(so) = self.object_mut(scope, name) else {
            return Err(HubError::BadPersistence);
        };
        let backup = so.is_persistent().then(|| so.clone());
        let update = so.clear();
        let version = so.version();
        if let Some(backup) = backup
            && let Err(e) = self.save(scope, name)
        {
            if let Some(so) = self.object_mut(scope, name) {
                *so = backup;
            }
            return Err(HubError::Store(e));
        }
        self.broadcast(scope, name, &update, None);
        self.settle_overflows(now);
        Ok(version)
    }

    /// Sends a message to every subscriber of `name` in `scope` as the server.
    pub fn so_send(
        &mut self,
        now: Instant,
        scope: &ScopePath,
        name: &str,
        method: String,
        args: Vec<crate::amf0::Value>,
    ) -> Result<(), HubError> {
        let Some(so) = self.scopes.get(scope).and_then(|s| s.objects.get(name)) else {
            return Ok(()); // nobody to tell
        };
        if self.cluster.is_some() {
            let persistent = so.is_persistent();
            let op = SoMessageOp::Send { method, args };
            return self.propose_server(scope, name, persistent, op).map(|_| ());
        }
        let update = so.message(method, args);
        self.broadcast(scope, name, &update, None);
        self.settle_overflows(now);
        Ok(())
    }
}
