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
//!    connection's outbox went from empty to non-empty (wake its writer);
//!    the other events are for logs and for forcing slow connections shut.
//! 3. Whenever a connection's socket has room: [`Hub::poll_delivery`]`(conn)`
//!    until it returns `None`, turning each delivery into bytes. Not calling
//!    it is what a slow client looks like: its outbox applies the drop
//!    policy and nobody else waits.
//! 4. Call [`Hub::handle_timeout`]`(now)` when [`Hub::poll_timeout`] is
//!    reached (re-read it after every call of 1 or 4), then drain 2 again.

mod app;
mod outbox;
mod request;
#[cfg(test)]
mod tests;

pub use app::{Application, Decision, DefaultApplication, SoAccess, TieredSessions};
pub use outbox::{Outbox, OutboxLimits, OverflowReason, PushOutcome};
pub use request::{
    ConnId, ConnectRequest, Delivery, Level, MediaDelivery, MediaKind, MediaPriority, MediaRoute,
    Protocol, RejectCode, Request, SessionLimits, SoChange, SoNotice, SoOp, SoUpdate, media_csid,
};

use crate::Limits;
use crate::chunk::{RawMessage, encode_standalone};
use crate::message::DataMessage;
use crate::scope_path::{NameError, ScopePath, split_query, validate_segment};
use crate::shared_object::{SharedObject, SoLimits, status, status_update};
use crate::store::{MemoryStore, Store, StoreError, StoredObject};
use crate::stream::{CachedMessage, LiveStream, Player, Publisher, classify};
use crate::time::{Duration, Instant};
use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use core::net::IpAddr;

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
    /// Parser bounds (for data messages the hub inspects).
    pub limits: Limits,
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
            limits: Limits::default(),
        }
    }
}

/// Things the runtime should know about (log, or act on).
#[derive(Clone, Debug, PartialEq)]
pub enum HubEvent {
    /// The connection's outbox went from empty to non-empty.
    Ready(ConnId),
    /// The hub is closing the connection (a [`Delivery::Close`] is queued
    /// last in its outbox). If the client does not read it within a grace
    /// period, the runtime should drop the socket.
    Closing { conn: ConnId, reason: String },
    /// A connect was refused.
    Rejected { conn: ConnId, reason: String },
    /// A request was refused or ignored (the client got a status if it can).
    Refused { conn: ConnId, reason: String },
    /// A persistent shared object could not be loaded or saved.
    StoreFailed {
        scope: ScopePath,
        name: String,
        error: StoreError,
    },
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
pub enum HubError {
    /// The scope's app is not configured.
    UnknownApp(String),
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
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(ConnId),
    Scope(ScopePath),
    Object(ScopePath, String),
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
    /// (message stream id, stream name) it publishes.
    publishing: Vec<(u32, String)>,
    /// (message stream id, stream name) it plays.
    playing: Vec<(u32, String)>,
    /// The hub decided to close it; requests are ignored.
    closing: bool,
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
    outboxes: BTreeMap<ConnId, Outbox>,
    events: VecDeque<HubEvent>,
    /// Connections whose outbox overflowed during the current operation.
    overflowed: Vec<(ConnId, OverflowReason)>,
}

impl Mailroom {
    fn deliver(&mut self, conn: ConnId, delivery: Delivery) -> Option<PushOutcome> {
        let outbox = self.outboxes.get_mut(&conn)?;
        if outbox.closed().is_some() {
            return None;
        }
        let was_empty = outbox.is_empty();
        let outcome = outbox.push(delivery);
        match &outcome {
            PushOutcome::Overflow(reason) => {
                outbox.close(format!("{reason}"));
                self.overflowed.push((conn, *reason));
            }
            PushOutcome::Queued { .. } if was_empty => self.events.push_back(HubEvent::Ready(conn)),
            _ => {}
        }
        Some(outcome)
    }

    /// Queues the final delivery even past the bounds.
    fn deliver_close(&mut self, conn: ConnId, reason: &str) {
        if let Some(outbox) = self.outboxes.get_mut(&conn) {
            let was_empty = outbox.is_empty();
            outbox.force_push(Delivery::Close {
                reason: reason.to_owned(),
            });
            if outbox.closed().is_none() {
                outbox.close(reason.to_owned());
            }
            if was_empty {
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
    conns: BTreeMap<ConnId, Conn>,
    per_address: BTreeMap<IpAddr, usize>,
    scopes: BTreeMap<ScopePath, Scope>,
    streams: BTreeMap<(ScopePath, String), LiveStream>,
    mail: Mailroom,
    timers: BTreeSet<(Instant, Timer)>,
    /// Per media message: one encoding per route (reused, never shrinks).
    encodings: Vec<(MediaRoute, Bytes)>,
    counters: HubCounters,
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
            encodings: Vec::new(),
            counters: HubCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Handles one request from `conn`.
    pub fn handle(&mut self, now: Instant, conn: ConnId, request: Request) {
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
                        self.publish(now, conn, &scope, stream, &name)
                    }
                    Request::Play {
                        stream,
                        name,
                        start,
                        route,
                    } => self.play(now, conn, &scope, stream, &name, start, route),
                    Request::CloseStream { stream } => self.close_stream(now, conn, stream),
                    Request::Media {
                        stream,
                        kind,
                        timestamp,
                        payload,
                    } => self.media(conn, stream, kind, timestamp, payload),
                    Request::Connect(_) | Request::Disconnect => {}
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

    /// `conn`'s outbox (for stats and tests).
    pub fn outbox(&self, conn: ConnId) -> Option<&Outbox> {
        self.mail.outboxes.get(&conn)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Expires idle connections, rooms and shared objects due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
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
            }
        }
        self.settle_overflows(now);
    }

    /// Media messages dropped so far by the outboxes of open connections.
    pub fn media_dropped_open(&self) -> u64 {
        self.mail.outboxes.values().map(Outbox::dropped_total).sum()
    }

    /// Counters for metrics.
    pub fn counters(&self) -> HubCounters {
        self.counters
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

    /// Closes every connection (graceful shutdown): each is told `reason`
    /// after what is already queued for it.
    pub fn close_all(&mut self, now: Instant, reason: &str) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in ids {
            self.close_conn(now, conn, reason.to_owned());
        }
    }

    // ----- server-side API for application code -----

    /// Applies `changes` to shared object `name` in `scope` as the server,
    /// creating scope and object as needed; every subscriber gets the
    /// changes. Returns the new version.
    pub fn so_apply(
        &mut self,
        now: Instant,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
        changes: Vec<SoChange>,
    ) -> Result<u32, HubError> {
        self.server_object(now, scope, name, persistent)?;
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
        let update = so.message(method, args);
        self.broadcast(scope, name, &update, None);
        self.settle_overflows(now);
        Ok(())
    }

    // ----- connections -----

    fn connect(&mut self, now: Instant, conn: ConnId, request: ConnectRequest) {
        if let Some(existing) = self.conns.get(&conn)
            && (existing.scope.is_some() || existing.closing)
        {
            self.mail.events.push_back(HubEvent::Refused {
                conn,
                reason: "second connect on one connection".to_owned(),
            });
            return;
        }
        self.conns.insert(
            conn,
            Conn {
                protocol: request.protocol,
                address: request.address,
                scope: None,
                session: SessionLimits {
                    idle_timeout: Duration::ZERO,
                    session_timeout: None,
                },
                connected_at: now,
                last_activity: now,
                objects: Vec::new(),
                publishing: Vec::new(),
                playing: Vec::new(),
                closing: false,
            },
        );
        self.mail
            .outboxes
            .entry(conn)
            .or_insert_with(|| Outbox::new(self.config.outbox));
        match self.admit(conn, &request) {
            Ok(scope) => {
                let session = self.app.session_limits(&request);
                self.create_scope(now, &scope);
                if let Some(s) = self.scopes.get_mut(&scope) {
                    s.connections += 1;
                    s.idle_since = None;
                }
                if let Some(address) = request.address {
                    *self.per_address.entry(address).or_insert(0) += 1;
                }
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.scope = Some(scope.clone());
                    state.session = session;
                }
                self.arm_conn_timer(now, conn);
                self.mail
                    .deliver(conn, Delivery::Accepted { scope, session });
            }
            Err((code, reason)) => {
                self.counters.rejected_connects += 1;
                self.mail.events.push_back(HubEvent::Rejected {
                    conn,
                    reason: reason.clone(),
                });
                self.mail.deliver(
                    conn,
                    Delivery::Rejected {
                        code,
                        description: reason.clone(),
                    },
                );
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.closing = true;
                }
                self.mail.deliver_close(conn, &reason);
            }
        }
    }

    /// Decides a connect; creates nothing.
    fn admit(
        &mut self,
        conn: ConnId,
        request: &ConnectRequest,
    ) -> Result<ScopePath, (RejectCode, String)> {
        let scope = ScopePath::resolve(&request.target, self.config.max_depth).map_err(|e| {
            let code = if matches!(e, NameError::Empty) {
                RejectCode::InvalidApp
            } else {
                RejectCode::Rejected
            };
            (code, format!("bad scope {:?}: {e}", request.target))
        })?;
        let app_path = ScopePath::app(scope.app_name())
            .map_err(|e| (RejectCode::InvalidApp, format!("bad application: {e}")))?;
        if !self.scopes.contains_key(&app_path) {
            return Err((
                RejectCode::InvalidApp,
                format!("application {:?} is not configured", scope.app_name()),
            ));
        }
        if let Some(address) = request.address {
            let count = self.per_address.get(&address).copied().unwrap_or(0);
            if count >= self.config.max_connections_per_address {
                return Err((
                    RejectCode::Rejected,
                    format!(
                        "too many connections from {address} (at most {})",
                        self.config.max_connections_per_address
                    ),
                ));
            }
        }
        match self.scopes.get(&scope) {
            Some(s) if s.connections >= self.config.max_connections_per_scope => {
                return Err((
                    RejectCode::Rejected,
                    format!(
                        "scope {scope} is full (at most {} connections)",
                        self.config.max_connections_per_scope
                    ),
                ));
            }
            Some(_) => {}
            None => {
                let new_rooms = self.missing_ancestors(&scope);
                let rooms = self.room_count(&app_path);
                if rooms + new_rooms > self.config.max_rooms_per_app {
                    return Err((
                        RejectCode::Rejected,
                        format!(
                            "application {} has too many rooms (at most {})",
                            app_path, self.config.max_rooms_per_app
                        ),
                    ));
                }
            }
        }
        match self.app.on_connect(conn, &scope, request) {
            Decision::Accept => Ok(scope),
            Decision::Reject(reason) => Err((RejectCode::Rejected, reason)),
        }
    }

    /// Scopes that creating `scope` would add (itself and missing parents).
    fn missing_ancestors(&self, scope: &ScopePath) -> usize {
        let mut count = 0;
        let mut cursor = Some(scope.clone());
        while let Some(path) = cursor {
            if self.scopes.contains_key(&path) {
                break;
            }
            count += 1;
            cursor = path.parent();
        }
        count
    }

    fn room_count(&self, app: &ScopePath) -> usize {
        self.scopes
            .range(app.clone()..)
            .skip(1)
            .take_while(|(p, _)| p.is_within(app) || p.app_name() == app.app_name())
            .filter(|(p, _)| p.is_within(app))
            .count()
    }

    /// Creates `scope` and its missing parents; new ones start idle.
    fn create_scope(&mut self, now: Instant, scope: &ScopePath) {
        let mut cursor = Some(scope.clone());
        while let Some(path) = cursor {
            if self.scopes.contains_key(&path) {
                break;
            }
            cursor = path.parent();
            self.scopes.insert(path.clone(), Scope::default());
            self.refresh_scope(now, &path);
        }
    }

    fn disconnect(&mut self, now: Instant, conn: ConnId) {
        self.detach(now, conn);
        self.conns.remove(&conn);
        if let Some(outbox) = self.mail.outboxes.remove(&conn) {
            self.counters.media_dropped_closed += outbox.dropped_total();
        }
    }

    /// Takes `conn` out of its scope, streams and objects (others are told).
    fn detach(&mut self, now: Instant, conn: ConnId) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(scope) = state.scope.take() else {
            return;
        };
        let objects = core::mem::take(&mut state.objects);
        let publishing = core::mem::take(&mut state.publishing);
        let playing = core::mem::take(&mut state.playing);
        if let Some(address) = state.address
            && let Some(count) = self.per_address.get_mut(&address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&address);
            }
        }
        for name in objects {
            self.release_object(now, &scope, &name, conn);
        }
        for (stream, name) in publishing {
            self.unpublish(now, conn, &scope, stream, &name);
        }
        for (_, name) in playing {
            self.stop_playing(now, conn, &scope, &name);
        }
        if let Some(s) = self.scopes.get_mut(&scope) {
            s.connections = s.connections.saturating_sub(1);
        }
        self.app.on_disconnect(conn, &scope);
        self.refresh_scope(now, &scope);
    }

    /// The hub closes `conn`: others are told now, the client last.
    fn close_conn(&mut self, now: Instant, conn: ConnId, reason: String) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if state.closing {
            return;
        }
        state.closing = true;
        self.detach(now, conn);
        self.mail.deliver_close(conn, &reason);
        self.mail
            .events
            .push_back(HubEvent::Closing { conn, reason });
    }

    fn settle_overflows(&mut self, now: Instant) {
        while let Some((conn, reason)) = self.mail.overflowed.pop() {
            self.counters.overflow_disconnects += 1;
            self.close_conn(now, conn, format!("subscriber too slow: {reason}"));
        }
    }

    fn arm_conn_timer(&mut self, now: Instant, conn: ConnId) {
        if let Some(deadline) = self.conns.get(&conn).map(|c| conn_deadline(c, now)) {
            self.timers.insert((deadline, Timer::Conn(conn)));
        }
    }

    fn check_conn_deadline(&mut self, now: Instant, conn: ConnId) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        if state.closing || state.scope.is_none() {
            return;
        }
        let deadline = conn_deadline(state, now);
        if deadline > now {
            self.timers.insert((deadline, Timer::Conn(conn)));
            return;
        }
        let reason = match state.session.session_timeout {
            Some(limit) if state.connected_at + limit <= now => {
                format!(
                    "session time limit of {}s reached",
                    limit.as_millis() / 1000
                )
            }
            _ => format!(
                "idle for {}s (limit for this client)",
                state.session.idle_timeout.as_millis() / 1000
            ),
        };
        self.counters.timeout_disconnects += 1;
        self.close_conn(now, conn, reason);
    }

    // ----- scopes -----

    /// Starts or stops a scope's idle clock after its use changed.
    fn refresh_scope(&mut self, now: Instant, path: &ScopePath) {
        if path.is_app() {
            return;
        }
        let room_idle = self.config.room_idle;
        let Some(scope) = self.scopes.get_mut(path) else {
            return;
        };
        if scope.in_use() {
            scope.idle_since = None;
        } else if scope.idle_since.is_none() {
            scope.idle_since = Some(now);
            self.timers
                .insert((now + room_idle, Timer::Scope(path.clone())));
        }
    }

    fn has_children(&self, path: &ScopePath) -> bool {
        self.scopes
            .range(path.clone()..)
            .skip(1)
            .take_while(|(p, _)| p.as_str().starts_with(path.as_str()))
            .any(|(p, _)| p.is_within(path))
    }

    fn check_scope_expiry(&mut self, now: Instant, path: &ScopePath) {
        let Some(scope) = self.scopes.get(path) else {
            return;
        };
        let Some(since) = scope.idle_since else {
            return;
        };
        if scope.in_use() || self.has_children(path) {
            return; // re-armed when it becomes unused / its last child goes
        }
        let due = since + self.config.room_idle;
        if due > now {
            self.timers.insert((due, Timer::Scope(path.clone())));
            return;
        }
        self.scopes.remove(path);
        if let Some(parent) = path.parent()
            && let Some(p) = self.scopes.get(&parent)
            && let Some(since) = p.idle_since
        {
            let due = (since + self.config.room_idle).max(now);
            self.timers.insert((due, Timer::Scope(parent)));
        }
    }

    // ----- shared objects -----

    fn object_mut(&mut self, scope: &ScopePath, name: &str) -> Option<&mut SharedObject> {
        self.scopes.get_mut(scope)?.objects.get_mut(name)
    }

    fn refuse_so(
        &mut self,
        conn: ConnId,
        name: &str,
        persistent: bool,
        code: &'static str,
        why: String,
    ) {
        let version = self
            .conns
            .get(&conn)
            .and_then(|c| c.scope.as_ref())
            .and_then(|s| self.scopes.get(s))
            .and_then(|s| s.objects.get(name))
            .map_or(0, SharedObject::version);
        self.mail.deliver(
            conn,
            Delivery::SharedObject(status_update(name, persistent, version, code)),
        );
        self.mail.events.push_back(HubEvent::Refused {
            conn,
            reason: format!("shared object {name:?}: {why}"),
        });
    }

    fn shared_object(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        name: String,
        persistent: bool,
        op: SoOp,
    ) {
        if let Err(e) = validate_segment(&name) {
            let code = status::OBJECT_CREATION_FAILED;
            return self.refuse_so(conn, &name, persistent, code, format!("{e}"));
        }
        let subscribed = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.objects.contains(&name));
        match op {
            SoOp::Use => self.use_object(now, conn, scope, &name, persistent),
            SoOp::Release => {
                if subscribed {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.objects.retain(|o| *o != name);
                    }
                    self.release_object(now, scope, &name, conn);
                }
            }
            SoOp::Batch(changes) => {
                if let Err((code, why)) =
                    self.check_write(conn, scope, &name, persistent, subscribed)
                {
                    return self.refuse_so(conn, &name, persistent, code, why);
                }
                let limits = self.config.shared_objects;
                if let Err(e) = self.apply_batch(scope, &name, Some(conn), changes, &limits) {
                    let why = format!("{e}");
                    self.refuse_so(conn, &name, persistent, status::NO_WRITE_ACCESS, why);
                }
            }
            SoOp::Send { method, args } => {
                if let Err((code, why)) =
                    self.check_write(conn, scope, &name, persistent, subscribed)
                {
                    return self.refuse_so(conn, &name, persistent, code, why);
                }
                if let Some(so) = self.scopes.get(scope).and_then(|s| s.objects.get(&name)) {
                    let update = so.message(method, args);
                    self.broadcast(scope, &name, &update, None);
                }
            }
        }
    }

    fn check_write(
        &mut self,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
        subscribed: bool,
    ) -> Result<(), (&'static str, String)> {
        if !subscribed {
            return Err((
                status::NO_WRITE_ACCESS,
                "not in use by this client".to_owned(),
            ));
        }
        let so_persistent = self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map(SharedObject::is_persistent);
        if so_persistent != Some(persistent) {
            return Err((
                status::BAD_PERSISTENCE,
                "persistence flag mismatch".to_owned(),
            ));
        }
        match self
            .app
            .on_shared_object(conn, scope, name, SoAccess::Write)
        {
            Decision::Accept => Ok(()),
            Decision::Reject(why) => Err((status::NO_WRITE_ACCESS, why)),
        }
    }

    fn use_object(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) {
        let exists = self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map(SharedObject::is_persistent);
        match exists {
            Some(existing) if existing != persistent => {
                let why = "persistence flag mismatch".to_owned();
                return self.refuse_so(conn, name, persistent, status::BAD_PERSISTENCE, why);
            }
            Some(_) => {}
            None => {
                if let Err((code, why)) = self.create_object(conn, scope, name, persistent) {
                    return self.refuse_so(conn, name, persistent, code, why);
                }
            }
        }
        if let Decision::Reject(why) = self.app.on_shared_object(conn, scope, name, SoAccess::Read)
        {
            return self.refuse_so(conn, name, persistent, status::NO_READ_ACCESS, why);
        }
        let Some(so) = self.object_mut(scope, name) else {
            return;
        };
        let update = so.subscribe(conn);
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.objects.iter().any(|o| o == name)
        {
            c.objects.push(name.to_owned());
        }
        self.mail.deliver(conn, Delivery::SharedObject(update));
        self.refresh_scope(now, scope);
    }

    /// Creates (or loads) an object for a client's first use.
    fn create_object(
        &mut self,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) -> Result<(), (&'static str, String)> {
        let count = self.scopes.get(scope).map_or(0, |s| s.objects.len());
        if count >= self.config.shared_objects.max_per_scope {
            return Err((
                status::OBJECT_CREATION_FAILED,
                format!(
                    "scope has {} shared objects already",
                    self.config.shared_objects.max_per_scope
                ),
            ));
        }
        if let Decision::Reject(why) =
            self.app
                .on_shared_object(conn, scope, name, SoAccess::Create)
        {
            return Err((status::OBJECT_CREATION_FAILED, why));
        }
        let so = self
            .instantiate(scope, name, persistent)
            .map_err(|e| (status::OBJECT_CREATION_FAILED, format!("{e}")))?;
        if let Some(s) = self.scopes.get_mut(scope) {
            s.objects.insert(name.to_owned(), so);
        }
        Ok(())
    }

    /// A new transient object, or a persistent one loaded from the store.
    fn instantiate(
        &mut self,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) -> Result<SharedObject, StoreError> {
        if !persistent {
            return Ok(SharedObject::new(name.to_owned(), false));
        }
        match self.store.load(scope, name) {
            Ok(Some(stored)) => Ok(SharedObject::restored(
                name.to_owned(),
                stored.version,
                stored.data,
            )),
            Ok(None) => Ok(SharedObject::new(name.to_owned(), true)),
            Err(error) => {
                self.mail.events.push_back(HubEvent::StoreFailed {
                    scope: scope.clone(),
                    name: name.to_owned(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    /// Makes sure a server-side operation has an object to work on.
    fn server_object(
        &mut self,
        now: Instant,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) -> Result<(), HubError> {
        validate_segment(name).map_err(HubError::BadName)?;
        let app = ScopePath::app(scope.app_name()).map_err(HubError::BadName)?;
        if !self.scopes.contains_key(&app) {
            return Err(HubError::UnknownApp(scope.app_name().to_owned()));
        }
        self.create_scope(now, scope);
        match self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map(SharedObject::is_persistent)
        {
            Some(p) if p != persistent => Err(HubError::BadPersistence),
            Some(_) => Ok(()),
            None => {
                let so = self
                    .instantiate(scope, name, persistent)
                    .map_err(HubError::Store)?;
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.objects.insert(name.to_owned(), so);
                }
                self.arm_object_timer(now, scope, name);
                Ok(())
            }
        }
    }

    /// Checks, applies, stores and fans out one batch. `writer` gets the
    /// writer's notices (successes); everyone else the changes.
    fn apply_batch(
        &mut self,
        scope: &ScopePath,
        name: &str,
        writer: Option<ConnId>,
        changes: Vec<SoChange>,
        limits: &SoLimits,
    ) -> Result<u32, HubError> {
        let Some(so) = self.object_mut(scope, name) else {
            return Err(HubError::BadPersistence);
        };
        so.check_batch(&changes, limits)
            .map_err(|e| HubError::Limit(format!("{e}")))?;
        let backup = so.is_persistent().then(|| so.clone());
        let notices = so.apply_batch(changes);
        let version = so.version();
        if let Some(backup) = backup
            && let Err(e) = self.save(scope, name)
        {
            if let Some(so) = self.object_mut(scope, name) {
                *so = backup;
            }
            return Err(HubError::Store(e));
        }
        if let Some(writer) = writer {
            self.mail
                .deliver(writer, Delivery::SharedObject(notices.writer));
        }
        self.broadcast(scope, name, &notices.others, writer);
        Ok(version)
    }

    fn save(&mut self, scope: &ScopePath, name: &str) -> Result<(), StoreError> {
        let Some(so) = self.scopes.get(scope).and_then(|s| s.objects.get(name)) else {
            return Ok(());
        };
        let stored = StoredObject {
            version: so.version(),
            data: so.data().clone(),
        };
        self.store.save(scope, name, &stored).inspect_err(|error| {
            self.mail.events.push_back(HubEvent::StoreFailed {
                scope: scope.clone(),
                name: name.to_owned(),
                error: error.clone(),
            });
        })
    }

    /// Queues `update` to every subscriber except `skip`, in subscription order.
    fn broadcast(
        &mut self,
        scope: &ScopePath,
        name: &str,
        update: &Arc<SoUpdate>,
        skip: Option<ConnId>,
    ) {
        let Some(so) = self.scopes.get(scope).and_then(|s| s.objects.get(name)) else {
            return;
        };
        for &subscriber in so.subscribers() {
            if Some(subscriber) != skip {
                self.mail
                    .deliver(subscriber, Delivery::SharedObject(Arc::clone(update)));
            }
        }
    }

    fn release_object(&mut self, now: Instant, scope: &ScopePath, name: &str, conn: ConnId) {
        let Some(so) = self.object_mut(scope, name) else {
            return;
        };
        so.unsubscribe(conn);
        if so.subscribers().is_empty() {
            self.arm_object_timer(now, scope, name);
        }
        self.refresh_scope(now, scope);
    }

    fn arm_object_timer(&mut self, now: Instant, scope: &ScopePath, name: &str) {
        self.timers.insert((
            now + self.config.room_idle,
            Timer::Object(scope.clone(), name.to_owned()),
        ));
    }

    fn check_object_expiry(&mut self, now: Instant, scope: &ScopePath, name: &str) {
        let Some(s) = self.scopes.get_mut(scope) else {
            return;
        };
        if s.objects
            .get(name)
            .is_some_and(|o| o.subscribers().is_empty())
        {
            // Transient objects vanish; persistent ones are already stored.
            s.objects.remove(name);
        }
        self.refresh_scope(now, scope);
    }

    // ----- live streams -----

    fn status(
        &mut self,
        conn: ConnId,
        stream: u32,
        level: Level,
        code: &'static str,
        description: String,
    ) {
        self.mail.deliver(
            conn,
            Delivery::Status {
                stream,
                level,
                code,
                description,
            },
        );
    }

    fn publish(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        stream: u32,
        target: &str,
    ) {
        let (name, query) = split_query(target);
        let refuse = |hub: &mut Hub, why: String| {
            hub.status(
                conn,
                stream,
                Level::Error,
                "NetStream.Publish.BadName",
                why.clone(),
            );
            hub.mail.events.push_back(HubEvent::Refused {
                conn,
                reason: format!("publish {name:?}: {why}"),
            });
        };
        if let Err(why) = validate_stream_name(name) {
            return refuse(self, why.to_owned());
        }
        let key = (scope.clone(), name.to_owned());
        if self
            .streams
            .get(&key)
            .is_some_and(|s| s.publisher.is_some())
        {
            return refuse(self, format!("{name} is already being published"));
        }
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.publishing.iter().any(|(s, _)| *s == stream))
        {
            return refuse(self, "this stream already publishes".to_owned());
        }
        let scope_streams = self.scopes.get(scope).map_or(0, |s| s.streams);
        if !self.streams.contains_key(&key) && scope_streams >= self.config.max_streams_per_scope {
            return refuse(self, "too many streams in this scope".to_owned());
        }
        if let Decision::Reject(why) = self.app.on_publish(conn, scope, name, query) {
            return refuse(self, why);
        }
        let live = self.stream_entry(key);
        live.publisher = Some(Publisher { conn, stream });
        live.reset_media();
        let players: Vec<(ConnId, u32)> = live
            .players
            .iter()
            .map(|p| (p.conn, p.route.stream_id))
            .collect();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.publishing.push((stream, name.to_owned()));
        }
        self.mail.deliver(conn, Delivery::StreamBegin { stream });
        self.status(
            conn,
            stream,
            Level::Status,
            "NetStream.Publish.Start",
            format!("{name} is now published"),
        );
        for (player, player_stream) in players {
            // Waiting players start on the first keyframe.
            if let Some(outbox) = self.mail.outboxes.get_mut(&player) {
                outbox.await_keyframe(player_stream);
            }
            self.mail.deliver(
                player,
                Delivery::StreamBegin {
                    stream: player_stream,
                },
            );
            self.status(
                player,
                player_stream,
                Level::Status,
                "NetStream.Play.PublishNotify",
                format!("{name} is now published"),
            );
        }
        let _ = now;
    }

    /// The stream entry for `key`, created (and counted in its scope) if new.
    fn stream_entry(&mut self, key: (ScopePath, String)) -> &mut LiveStream {
        if !self.streams.contains_key(&key)
            && let Some(s) = self.scopes.get_mut(&key.0)
        {
            s.streams += 1;
            s.idle_since = None;
        }
        self.streams.entry(key).or_default()
    }

    fn unpublish(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        stream: u32,
        name: &str,
    ) {
        let key = (scope.clone(), name.to_owned());
        let Some(live) = self.streams.get_mut(&key) else {
            return;
        };
        if live.publisher != Some(Publisher { conn, stream }) {
            return;
        }
        live.publisher = None;
        live.reset_media();
        let players: Vec<(ConnId, u32)> = live
            .players
            .iter()
            .map(|p| (p.conn, p.route.stream_id))
            .collect();
        for (player, player_stream) in players {
            self.mail.deliver(
                player,
                Delivery::StreamEof {
                    stream: player_stream,
                },
            );
            self.status(
                player,
                player_stream,
                Level::Status,
                "NetStream.Play.UnpublishNotify",
                format!("{name} is now unpublished"),
            );
        }
        self.drop_stream_if_unused(now, &key);
    }

    fn drop_stream_if_unused(&mut self, now: Instant, key: &(ScopePath, String)) {
        if self.streams.get(key).is_some_and(LiveStream::is_unused) {
            self.streams.remove(key);
            if let Some(s) = self.scopes.get_mut(&key.0) {
                s.streams = s.streams.saturating_sub(1);
            }
            self.refresh_scope(now, &key.0);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn play(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        stream: u32,
        target: &str,
        start: f64,
        route: MediaRoute,
    ) {
        let (name, query) = split_query(target);
        let not_found = |hub: &mut Hub, why: String| {
            hub.status(
                conn,
                stream,
                Level::Error,
                "NetStream.Play.StreamNotFound",
                why.clone(),
            );
            hub.mail.events.push_back(HubEvent::Refused {
                conn,
                reason: format!("play {name:?}: {why}"),
            });
        };
        if let Err(why) = validate_stream_name(name) {
            return not_found(self, why.to_owned());
        }
        let key = (scope.clone(), name.to_owned());
        let publishing = self
            .streams
            .get(&key)
            .is_some_and(|s| s.publisher.is_some());
        if start >= 0.0 && !publishing {
            return not_found(
                self,
                format!("{name} is not live (recordings are not served)"),
            );
        }
        let scope_streams = self.scopes.get(scope).map_or(0, |s| s.streams);
        if !self.streams.contains_key(&key) && scope_streams >= self.config.max_streams_per_scope {
            return not_found(self, "too many streams in this scope".to_owned());
        }
        if let Decision::Reject(why) = self.app.on_play(conn, scope, name, query) {
            return not_found(self, why);
        }
        // A new play on the same message stream replaces the old one.
        let previous = self.conns.get_mut(&conn).and_then(|c| {
            let i = c.playing.iter().position(|(s, _)| *s == stream)?;
            Some(c.playing.remove(i).1)
        });
        if let Some(previous) = previous {
            self.stop_playing(now, conn, scope, &previous);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.playing.push((stream, name.to_owned()));
        }
        let live = self.stream_entry(key.clone());
        live.players.push(Player {
            conn,
            route,
            needs_headers: false,
        });
        self.mail.deliver(conn, Delivery::StreamBegin { stream });
        self.status(
            conn,
            stream,
            Level::Status,
            "NetStream.Play.Reset",
            format!("playing and resetting {name}"),
        );
        self.status(
            conn,
            stream,
            Level::Status,
            "NetStream.Play.Start",
            format!("started playing {name}"),
        );
        self.send_join_state(conn, &key, route);
    }

    /// What a late joiner needs: metadata, sequence headers, then the GOP.
    fn send_join_state(&mut self, conn: ConnId, key: &(ScopePath, String), route: MediaRoute) {
        let Some(live) = self.streams.get(key) else {
            return;
        };
        if live.publisher.is_none() {
            if let Some(outbox) = self.mail.outboxes.get_mut(&conn) {
                outbox.await_keyframe(route.stream_id);
            }
            return;
        }
        let head = [&live.metadata, &live.audio_header, &live.video_header];
        let gop = live.gop();
        if gop.is_empty()
            && let Some(outbox) = self.mail.outboxes.get_mut(&conn)
        {
            outbox.await_keyframe(route.stream_id);
        }
        for message in head.into_iter().flatten().chain(gop) {
            let delivery = media_delivery(route, message, encode_media(route, message));
            self.mail.deliver(conn, Delivery::Media(delivery));
        }
    }

    fn stop_playing(&mut self, now: Instant, conn: ConnId, scope: &ScopePath, name: &str) {
        let key = (scope.clone(), name.to_owned());
        if let Some(live) = self.streams.get_mut(&key) {
            live.players.retain(|p| p.conn != conn);
        }
        self.drop_stream_if_unused(now, &key);
    }

    fn close_stream(&mut self, now: Instant, conn: ConnId, stream: u32) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(scope) = state.scope.clone() else {
            return;
        };
        let published = state
            .publishing
            .iter()
            .position(|(s, _)| *s == stream)
            .map(|i| state.publishing.remove(i).1);
        let played = state
            .playing
            .iter()
            .position(|(s, _)| *s == stream)
            .map(|i| state.playing.remove(i).1);
        if let Some(name) = published {
            self.unpublish(now, conn, &scope, stream, &name);
            self.status(
                conn,
                stream,
                Level::Status,
                "NetStream.Unpublish.Success",
                format!("{name} is now unpublished"),
            );
        }
        if let Some(name) = played {
            self.stop_playing(now, conn, &scope, &name);
        }
    }

    fn media(
        &mut self,
        conn: ConnId,
        stream: u32,
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    ) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let Some(scope) = state.scope.as_ref() else {
            return;
        };
        let Some((_, name)) = state.publishing.iter().find(|(s, _)| *s == stream) else {
            return; // media on a stream that does not publish: ignored
        };
        let key = (scope.clone(), name.clone());
        let (payload, is_metadata) = match kind {
            MediaKind::Data => normalise_data(payload, &self.config.limits),
            _ => (payload, false),
        };
        let message = CachedMessage {
            kind,
            priority: classify(kind, &payload),
            timestamp,
            payload,
        };
        let Some(live) = self.streams.get_mut(&key) else {
            return;
        };
        if is_metadata {
            live.metadata = Some(message.clone());
        }
        live.remember(&message, self.config.max_gop_bytes);
        self.encodings.clear();
        let keyframe = kind == MediaKind::Video && message.priority == MediaPriority::Key;
        for index in 0..live.players.len() {
            let Some(player) = live.players.get(index).copied() else {
                break;
            };
            let route = player.route;
            let chunks = match self.encodings.iter().find(|(r, _)| *r == route) {
                Some((_, bytes)) => bytes.clone(),
                None => {
                    let bytes = encode_media(route, &message);
                    self.encodings.push((route, bytes.clone()));
                    bytes
                }
            };
            if player.needs_headers && keyframe {
                for header in [&live.audio_header, &live.video_header]
                    .into_iter()
                    .flatten()
                {
                    let delivery = media_delivery(route, header, encode_media(route, header));
                    self.mail.deliver(player.conn, Delivery::Media(delivery));
                }
                if let Some(p) = live.players.get_mut(index) {
                    p.needs_headers = false;
                }
            }
            let outcome = self.mail.deliver(
                player.conn,
                Delivery::Media(media_delivery(route, &message, chunks)),
            );
            if let Some(PushOutcome::Queued { cut_back: true, .. }) = outcome
                && let Some(p) = live.players.get_mut(index)
            {
                p.needs_headers = !keyframe;
            }
        }
    }
}

/// Strips `@setDataFrame` from a data message (players get `onMetaData`, as
/// from nginx-rtmp) and tells whether it is metadata. Undecodable data is
/// relayed untouched.
fn normalise_data(payload: Bytes, limits: &Limits) -> (Bytes, bool) {
    match DataMessage::decode(&payload, limits) {
        Ok(data) => {
            let is_metadata = data.metadata().is_some();
            if data.is_set_data_frame() {
                (data.without_set_data_frame().to_bytes(), is_metadata)
            } else {
                (payload, is_metadata)
            }
        }
        Err(_) => (payload, false),
    }
}

/// A connection's next deadline: idle (unless it publishes or plays, which
/// counts as activity) or session length, whichever is first.
fn conn_deadline(conn: &Conn, now: Instant) -> Instant {
    let active = !conn.publishing.is_empty() || !conn.playing.is_empty();
    let idle = if active {
        now + conn.session.idle_timeout
    } else {
        conn.last_activity + conn.session.idle_timeout
    };
    match conn.session.session_timeout {
        Some(limit) => idle.min(conn.connected_at + limit),
        None => idle,
    }
}

fn csid_for(kind: MediaKind) -> u32 {
    match kind {
        MediaKind::Audio => media_csid::AUDIO,
        MediaKind::Video => media_csid::VIDEO,
        MediaKind::Data => media_csid::DATA,
    }
}

fn type_id_for(kind: MediaKind) -> u8 {
    match kind {
        MediaKind::Audio => 8,
        MediaKind::Video => 9,
        MediaKind::Data => 18,
    }
}

/// Chunks one media message for one route (done once per route).
fn encode_media(route: MediaRoute, message: &CachedMessage) -> Bytes {
    let raw = RawMessage {
        csid: csid_for(message.kind),
        timestamp: message.timestamp,
        type_id: type_id_for(message.kind),
        stream_id: route.stream_id,
        payload: message.payload.clone(),
    };
    let mut out = BytesMut::with_capacity(message.payload.len() + 16 + message.payload.len() / 128);
    // Media bodies are bounded by `Limits::max_message` (< 2^24), so this
    // cannot fail; an empty buffer would only make players skip the message.
    let _ = encode_standalone(&raw, route.chunk_size, &mut out);
    out.freeze()
}

fn media_delivery(route: MediaRoute, message: &CachedMessage, chunks: Bytes) -> MediaDelivery {
    MediaDelivery {
        stream: route.stream_id,
        kind: message.kind,
        priority: message.priority,
        timestamp: message.timestamp,
        chunks,
    }
}
