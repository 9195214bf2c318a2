//! The server: one hub shared by every connection task.
//!
//! # Threading
//!
//! Each accepted socket gets its own tokio task that owns its protocol
//! connection (handshake, chunk decoding and encoding, AMF), so protocol
//! work runs in parallel across cores. The [`Hub`] — scopes, shared objects,
//! streams — sits behind one short-held `std::sync::Mutex`: a task locks it
//! to hand over the requests a read produced and to take the deliveries
//! waiting for it, and never holds it across an `.await`. Fan-out inside the
//! hub is cheap (it clones `Bytes` handles into bounded outboxes), so one
//! hub per server is the design; sharding hubs by app is the next step if
//! the lock ever shows up in profiles (see docs/runtime-std.md).
//!
//! A task learns that deliveries wait for it through a [`Wakeup`] that the
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
//! itself or more than [`MERGE_FLUSH_BYTES`] of held media when it wakes.
//! Windows end on a small grid (`Shared::merge_deadline`), so the players
//! due at about the same time are written on one wake-up of the thread.

use crate::access::conn::ConnAccess;
use crate::access::hooks::HookRunner;
use crate::config::Config;
use crate::direct_write::{Attached, Peer};
use crate::ended::{CloseCounts, Ended, WriteEnd};
use crate::file_store::FileStore;
use crate::http::{self, RequestHead, Served};
use crate::net::Listener;
use crate::record::{self, RecordSettings};
use crate::stats::{
    ConnectionCounts, ScopeStats, SharedObjectStats, StatsSnapshot, StatsSource, StreamStats,
};
use crate::wakeup::Wakeup;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use tern_core::access::{AccessPolicy, ConnectRate, RateLimit};
use tern_core::flv::{FlvConfig, FlvConnection, Framing};
use tern_core::hub::Delivery;
use tern_core::hub::shared_object::SoLimits;
use tern_core::hub::{
    ConnId, DefaultApplication, Hub, HubConfig, HubEvent, OutboxLimits, PublishConflict, Request,
    TieredSessions,
};
use tern_core::rtmp::{ServerConfig, ServerConnection};
use tern_core::scope_path::ScopePath;
use tern_core::session::{CloseReason, Failure, ServerSession};
use tern_core::ws::{WsConfig, WsConnection};
use tern_core::{Duration, Instant, Limits};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info, warn};

/// Output a connection buffers before it stops taking deliveries.
const HIGH_WATER: usize = 256 * 1024;
/// Bytes read from a socket at once, at most, into a buffer on the stack
/// ([`poll_read_and_feed`]): publishers get large reads, and no connection
/// keeps a read buffer of its own.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers a connection's write batch keeps room for between writes.
const KEEP_BATCH: usize = 16;
/// Held media that is written at once, whatever the merge window, when the
/// task looks (it wakes for the first delivery after a write: a join burst).
const MERGE_FLUSH_BYTES: usize = 64 * 1024;
/// Merge windows end on multiples of this (since the server started), at
/// most a quarter of the window: see [`Shared::merge_deadline`].
const MERGE_GRID: std::time::Duration = std::time::Duration::from_millis(10);
/// How often the hub's timers (idle rooms, idle connections) are checked.
const HUB_TICK: std::time::Duration = std::time::Duration::from_millis(250);
/// After the hub gave up on a connection whose writes are blocked, how long
/// it still gets to take the goodbye before the socket is dropped.
const GIVE_UP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// How long connections get to say goodbye at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
/// Client addresses the connect rate remembers at once (about 100 bytes
/// each): see `ConnectRate`.
const MAX_RATE_ADDRESSES: usize = 65_536;

/// The hub and the connections it delivers to.
struct HubCell {
    hub: Hub,
    peers: BTreeMap<ConnId, Arc<Peer>>,
    /// Parked connections with notices to write ([`run_direct_writes`]).
    direct: Vec<Arc<Peer>>,
    /// Deliveries taken for parked connections so far (it tells
    /// [`run_direct_writes`] whether more keep coming).
    direct_taken: u64,
    /// Streams that started publishing in apps that record, for
    /// [`run_recordings`].
    to_record: Vec<(ScopePath, String)>,
    /// Apps that record, by name.
    records: Arc<BTreeMap<String, RecordSettings>>,
}

impl HubCell {
    /// Routes the hub's events: notices for parked connections to their
    /// queues (and the connections to `direct`), wake-ups to tasks, the
    /// rest to the log.
    fn dispatch(&mut self) {
        while let Some(event) = self.hub.poll_event() {
            match event {
                HubEvent::Ready(conn) => {
                    if let Some(peer) = self.peers.get(&conn) {
                        let offer = peer.offer(&mut self.hub, conn);
                        self.direct_taken += offer.taken as u64;
                        if offer.schedule {
                            self.direct.push(Arc::clone(peer));
                        }
                        if offer.wake {
                            peer.wakeup.wake();
                        }
                    }
                }
                HubEvent::Closing { conn, reason } => {
                    info!(conn = %conn, "closing connection: {reason}");
                    if let Some(peer) = self.peers.get(&conn) {
                        peer.wakeup.wake();
                    }
                }
                HubEvent::Rejected { conn, reason } => {
                    info!(conn = %conn, "connect rejected: {reason}");
                }
                HubEvent::Refused { conn, reason } => {
                    info!(conn = %conn, "request refused: {reason}");
                }
                HubEvent::Published { scope, name } => {
                    if self.records.contains_key(scope.app_name()) {
                        self.to_record.push((scope, name));
                    }
                }
                HubEvent::StoreFailed { scope, name, error } => {
                    error!(%scope, so = %name, "persistent shared object store failed: {error}");
                }
                HubEvent::Cluster { reason } => warn!("cluster: {reason}"),
            }
        }
    }
}

/// What every task of one server shares.
pub struct Shared {
    hub: Mutex<HubCell>,
    start: tokio::time::Instant,
    next_conn: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    rtmp: ServerConfig,
    ws: WsConfig,
    flv: FlvConfig,
    /// A write that makes no progress for this long means the client
    /// stopped reading for good (or vanished): the connection is dropped.
    /// Its outbox has long since been dropping media; a live player never
    /// stalls this long (`server.write_timeout_secs`).
    write_stall: std::time::Duration,
    /// How long media may wait to be merged into one write (zero: never).
    merge_write: std::time::Duration,
    /// How often freed heap pages go back to the OS (`None`: never).
    heap_trim: Option<std::time::Duration>,
    seed: u64,
    /// Wakes [`run_direct_writes`].
    direct_writes: Wakeup,
    /// Wakes [`run_recordings`].
    recordings: Wakeup,
    /// Recorded files completed.
    recordings_done: AtomicU64,
    /// Recordings that stopped on an error (disk, queue).
    recordings_failed: AtomicU64,
    /// Connections closed, by reason.
    closes: CloseCounts,
    /// What each connection's gate checks (`[apps.NAME]`, rate limits).
    access: Arc<AccessPolicy>,
    /// Makes the HTTP callbacks the gates ask for.
    hooks: HookRunner,
    /// Connects per address per second, server-wide.
    connect_rate: Mutex<ConnectRate>,
    /// Who may use the HTTP port's APIs (`[http]` tokens).
    pub(crate) http_access: crate::admin::Access,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Logs and counts how a connection's task ended (a warning for a
    /// protocol failure or timeout, else an info line).
    fn closed<E: Failure + std::fmt::Display>(&self, ended: &Ended<E>) {
        self.closes.record(ended);
        if ended.is_failure() {
            warn!("closed: {ended}");
        } else {
            info!("closed: {ended}");
        }
    }

    /// A server state for `config`, loading nothing yet (objects load on use).
    pub fn new(config: &Config) -> Arc<Shared> {
        let limits = Limits::default();
        let hub_config = hub_config(config, &limits);
        let app = DefaultApplication {
            sessions: TieredSessions {
                idle_timeout: secs_or_never(config.sessions.idle_timeout_secs),
                premium_idle_timeout: secs_or_never(config.sessions.premium_idle_timeout_secs),
                premium_key: config.sessions.premium_query_key.clone(),
                premium_value: config.sessions.premium_query_value.clone(),
                session_timeout: config.sessions.session_timeout_secs.map(secs_or_never),
            },
        };
        let store = FileStore::new(&config.server.data_dir).with_limits(limits.clone());
        let hub = Hub::with_parts(hub_config, Box::new(app), Box::new(store));
        let rtmp = ServerConfig {
            out_chunk_size: config.server.out_chunk_size,
            ping_interval: secs_or_never(config.sessions.ping_interval_secs),
            ping_timeout: secs_or_never(config.sessions.ping_interval_secs),
            limits,
            ..ServerConfig::default()
        };
        let ws = WsConfig {
            max_message: config.websocket.max_message_bytes,
            ping_interval: secs_or_never(config.websocket.ping_interval_secs),
            idle_timeout: config
                .websocket
                .idle_timeout_secs
                .map_or(WsConfig::default().idle_timeout, secs_or_never),
            echo_path: config.websocket.echo_path.clone(),
            limits: rtmp.limits.clone(),
            ..WsConfig::default()
        };
        let records: Arc<BTreeMap<String, RecordSettings>> = Arc::new(
            config
                .apps
                .iter()
                .filter_map(|(name, app)| {
                    RecordSettings::of(app, &config.server.data_dir).map(|r| (name.clone(), r))
                })
                .collect(),
        );
        let flv = FlvConfig {
            cors_origins: config.http.cors_origins.clone(),
            ..FlvConfig::default()
        };
        Arc::new(Shared {
            hub: Mutex::new(HubCell {
                hub,
                peers: BTreeMap::new(),
                direct: Vec::new(),
                direct_taken: 0,
                to_record: Vec::new(),
                records: Arc::clone(&records),
            }),
            start: tokio::time::Instant::now(),
            next_conn: AtomicU64::new(1),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            closes: CloseCounts::default(),
            rtmp,
            ws,
            flv,
            write_stall: std::time::Duration::from_secs(match config.server.write_timeout_secs {
                0 => 10,
                secs => secs,
            }),
            merge_write: std::time::Duration::from_millis(config.streams.merge_write_ms),
            heap_trim: (config.server.heap_trim_secs > 0)
                .then(|| std::time::Duration::from_secs(config.server.heap_trim_secs)),
            seed: 0x7e57_7e57,
            direct_writes: Wakeup::default(),
            recordings: Wakeup::default(),
            recordings_done: AtomicU64::new(0),
            recordings_failed: AtomicU64::new(0),
            access: Arc::new(crate::access::policy(config)),
            hooks: HookRunner::new(&config.apps),
            connect_rate: Mutex::new(ConnectRate::new(
                RateLimit {
                    per_sec: config.scopes.max_connects_per_address_per_sec,
                    burst: config.scopes.max_connects_per_address_per_sec,
                },
                MAX_RATE_ADDRESSES,
            )),
            http_access: crate::admin::Access::from_config(&config.http),
        })
    }

    /// The end of a merge window that began with a write at `last_write`:
    /// `merge_write` later, rounded down to a multiple of [`MERGE_GRID`]
    /// (at most a quarter of the window) since the server started. Players
    /// whose windows end within the same step of the grid then wake on the
    /// same timer tick and write in one pass of the scheduler, instead of
    /// each waking the thread on a millisecond of its own (100 players at
    /// 10 writes/s: about 1000 wake-ups of the server a second, 100 with
    /// the grid). A window is at most `merge_write` long, as configured, and
    /// at least that less one step.
    fn merge_deadline(&self, last_write: tokio::time::Instant) -> tokio::time::Instant {
        let end = last_write + self.merge_write;
        let grid = MERGE_GRID.min(self.merge_write / 4).as_nanos();
        if grid == 0 {
            return end;
        }
        let past = end.saturating_duration_since(self.start).as_nanos() % grid;
        end - std::time::Duration::from_nanos(u64::try_from(past).unwrap_or(0))
    }

    /// The access policy every connection's gate checks.
    pub(crate) fn access_policy(&self) -> &Arc<AccessPolicy> {
        &self.access
    }

    /// The HTTP client for callbacks.
    pub(crate) fn hook_runner(&self) -> &HookRunner {
        &self.hooks
    }

    /// Counts a connect from `address`; false if it is over
    /// `scopes.max_connects_per_address_per_sec`.
    pub(crate) fn connect_allowed(&self, now: Instant, address: std::net::IpAddr) -> bool {
        self.connect_rate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .allow(now, address)
    }

    /// Monotonic milliseconds since the server started (tokio's clock, so a
    /// simulator's virtual time works too).
    pub fn now(&self) -> Instant {
        let ms = self.start.elapsed().as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    fn lock(&self) -> MutexGuard<'_, HubCell> {
        // A panic while holding the lock would be a bug in the hub; keep
        // serving the other connections with the state as it is.
        self.hub
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the hub, then routes the events it produced.
    pub fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        self.with_cell(|cell| f(&mut cell.hub))
    }

    /// Runs `f` on the hub and its peers, then routes the events it
    /// produced (waking [`run_direct_writes`] if it has sockets to write).
    fn with_cell<R>(&self, f: impl FnOnce(&mut HubCell) -> R) -> R {
        let mut cell = self.lock();
        let result = f(&mut cell);
        let idle = cell.direct.is_empty();
        cell.dispatch();
        if idle && !cell.direct.is_empty() {
            self.direct_writes.wake();
        }
        if !cell.to_record.is_empty() {
            self.recordings.wake();
        }
        result
    }

    fn register(&self) -> (ConnId, Arc<Peer>) {
        let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let peer = Arc::new(Peer::default());
        self.lock().peers.insert(id, Arc::clone(&peer));
        (id, peer)
    }

    fn unregister(&self, id: ConnId) {
        let now = self.now();
        self.with_cell(|cell| {
            cell.peers.remove(&id);
            cell.hub.handle(now, id, Request::Disconnect);
        });
    }

    /// Handshake bytes: not secret (RTMP's handshake is no cryptography),
    /// just varied per connection, and reproducible from the seed.
    fn handshake_random(&self, id: ConnId) -> [u8; tern_core::rtmp::handshake::RANDOM_LEN] {
        let mut block = [0u8; tern_core::rtmp::handshake::RANDOM_LEN];
        let mut x = (self.seed ^ id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        for b in &mut block {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x.to_le_bytes()[0];
        }
        block
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Seconds from the config where 0 means "never" (instants saturate, so a
/// maximal duration is a deadline that never comes).
fn secs_or_never(s: u64) -> Duration {
    match s {
        0 => Duration::from_millis(u64::MAX),
        s => Duration::from_secs(s),
    }
}

/// The hub configuration a server config asks for.
pub fn hub_config(config: &Config, limits: &Limits) -> HubConfig {
    HubConfig {
        apps: config.apps.keys().cloned().collect(),
        room_idle: secs(config.scopes.room_idle_secs),
        max_depth: config.scopes.max_depth,
        max_rooms_per_app: config.scopes.max_rooms_per_app,
        max_connections_per_scope: config.scopes.max_connections_per_scope,
        max_connections_per_address: config.scopes.max_connections_per_address,
        shared_objects: SoLimits {
            max_per_scope: config.shared_objects.max_per_scope,
            max_keys: config.shared_objects.max_keys,
            max_value_bytes: config.shared_objects.max_value_bytes,
            max_object_bytes: config.shared_objects.max_object_bytes,
            ..SoLimits::default()
        },
        outbox: OutboxLimits {
            max_media_bytes: config.streams.subscriber_queue_bytes,
            max_lag_ms: u32::try_from(config.streams.max_lag_ms).unwrap_or(u32::MAX),
            ..OutboxLimits::default()
        },
        max_gop_bytes: if config.streams.gop_cache {
            config.streams.max_gop_bytes
        } else {
            0
        },
        // 0 means never, which the hub spells as a zero duration.
        publisher_idle_timeout: secs(config.streams.publisher_idle_timeout_secs),
        publish_conflict: match config.streams.publish_conflict {
            crate::config::PublishConflictConfig::Replace => PublishConflict::Replace,
            crate::config::PublishConflictConfig::Reject => PublishConflict::Reject,
        },
        limits: limits.clone(),
        ..HubConfig::default()
    }
}

impl StatsSource for Shared {
    fn snapshot(&self) -> StatsSnapshot {
        let cell = self.lock();
        let hub = &cell.hub;
        let counters = hub.counters();
        StatsSnapshot {
            connections: ConnectionCounts {
                rtmp: hub.connection_count(tern_core::rtmp::PROTOCOL) as u64,
                websocket: hub.connection_count(tern_core::ws::PROTOCOL) as u64,
                flv: hub.connection_count(tern_core::flv::PROTOCOL) as u64,
            },
            scopes: hub
                .scopes()
                .map(|s| ScopeStats {
                    path: s.path.to_string(),
                    connections: s.connections as u64,
                })
                .collect(),
            streams: hub
                .streams()
                .map(|s| StreamStats {
                    scope: s.scope.to_string(),
                    name: s.name.to_owned(),
                    publishing: s.publishing,
                    subscribers: s.players as u64,
                })
                .collect(),
            shared_objects: hub
                .shared_objects()
                .map(|o| SharedObjectStats {
                    scope: o.scope.to_string(),
                    name: o.name.to_owned(),
                    version: o.version,
                    subscribers: o.subscribers as u64,
                    persistent: o.persistent,
                })
                .collect(),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            media_dropped: counters.media_dropped_closed + hub.media_dropped_open(),
            lag_disconnects: counters.overflow_disconnects,
            recordings_done: self.recordings_done.load(Ordering::Relaxed),
            recordings_failed: self.recordings_failed.load(Ordering::Relaxed),
            closes: self.closes.snapshot(),
        }
    }
}

/// Closes every connection (each client is told why): the start of a
/// graceful shutdown, after the accept loops were told to stop.
pub fn close_all(shared: &Shared, reason: &str) {
    let now = shared.now();
    shared.with_hub(|hub| hub.close_all(now, reason));
}

/// Accepts connections until `shutdown` flips, each served by `serve` on
/// its own task; then gives open connections [`SHUTDOWN_GRACE`] to receive
/// the goodbye that [`close_all`] queued, and drops the rest.
pub(crate) async fn accept_loop<L, F, Fut>(
    what: &'static str,
    mut listener: L,
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) -> io::Result<()>
where
    L: Listener,
    F: FnMut(L::Stream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "{what} listening");
    }
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tasks.spawn(serve(stream, peer));
                }
                Err(e) => {
                    warn!("{what} accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = tasks.len(),
            "{what} connections still open after the grace period; dropping them"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

/// Accepts RTMP connections until `shutdown` flips, each on its own task.
pub async fn serve_rtmp<L: Listener>(
    shared: Arc<Shared>,
    listener: L,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    accept_loop("RTMP", listener, shutdown, |stream, peer| {
        let fd = L::descriptor(&stream);
        serve_rtmp_connection(Arc::clone(&shared), stream, fd, peer)
    })
    .await
}

/// Serves one RTMP connection (plain, or RTMPS after its TLS handshake)
/// until it ends. `fd` is the socket's descriptor when the server may
/// write to it directly (`direct_write`); `None` for TLS streams.
pub(crate) fn serve_rtmp_connection<S: crate::net::Stream>(
    shared: Arc<Shared>,
    stream: S,
    fd: Option<RawFd>,
    peer: SocketAddr,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (id, hub_peer) = shared.register();
    let span = tracing::info_span!("rtmp", conn = %id, %peer);
    async move {
        debug!("accepted");
        // Built in a block and boxed: a local that lives across the
        // await below would stay in the task (the 1536-byte random
        // block), and an async fn keeps a by-value argument twice.
        let conn = Box::new({
            let random = shared.handshake_random(id);
            ServerConnection::new(shared.rtmp.clone(), shared.now(), &random, Some(peer.ip()))
        });
        let stream = Attached::new(&hub_peer, stream, fd);
        let mut access = Box::new(ConnAccess::new(
            &shared,
            id,
            Some(peer.ip()),
            Arc::clone(&hub_peer),
        ));
        let ended = run_connection(&shared, stream, id, &hub_peer, conn, &mut access, &[]).await;
        // The `*_done` callbacks of what it still published or played.
        access.finish(&shared);
        shared.unregister(id);
        shared.closed(&ended);
    }
    .instrument(span)
}

/// Accepts HTTP connections until `shutdown` flips: plain requests are
/// answered by [`http::serve_request`]; WebSocket upgrades become
/// [`WsConnection`]s served like RTMP connections, on the same hub.
pub async fn serve_http<L: Listener>(
    shared: Arc<Shared>,
    listener: L,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut requests: u64 = 0;
    accept_loop("HTTP/WebSocket", listener, shutdown, |stream, peer| {
        requests += 1;
        let span = tracing::info_span!("http", req = requests, %peer);
        let fd = L::descriptor(&stream);
        serve_http_connection(Arc::clone(&shared), stream, fd, peer).instrument(span)
    })
    .await
}

/// Serves one connection of the HTTP port (plain, or HTTPS after its TLS
/// handshake): one request, or a WebSocket upgrade served until it ends.
pub(crate) async fn serve_http_connection<S: crate::net::Stream>(
    shared: Arc<Shared>,
    mut stream: S,
    fd: Option<RawFd>,
    peer: SocketAddr,
) {
    let site = http::Site {
        stats: shared.as_ref(),
        access: &shared.http_access,
        admin: Some(shared.as_ref()),
    };
    match http::serve_request_on(&mut stream, site).await {
        Ok(Served::Done) => {}
        Ok(Served::Upgrade { head, leftover }) => {
            let (id, hub_peer) = shared.register();
            let span = tracing::info_span!("ws", conn = %id, target = %head.target);
            async {
                let mut access = Box::new(ConnAccess::new(
                    &shared,
                    id,
                    Some(peer.ip()),
                    Arc::clone(&hub_peer),
                ));
                if let Err(reason) =
                    admit_upgrade(&shared, &mut access, &mut stream, &head, peer).await
                {
                    shared.unregister(id);
                    info!("upgrade refused: {reason}");
                    return;
                }
                let mut initial = head_bytes(&head);
                initial.extend_from_slice(&leftover);
                let conn = Box::new(WsConnection::new(
                    shared.ws.clone(),
                    shared.now(),
                    Some(peer.ip()),
                ));
                let stream = Attached::new(&hub_peer, stream, fd);
                let ended =
                    run_connection(&shared, stream, id, &hub_peer, conn, &mut access, &initial)
                        .await;
                access.finish(&shared);
                shared.unregister(id);
                shared.closed(&ended);
            }
            .instrument(span)
            .await;
        }
        Ok(Served::Flv {
            head,
            leftover,
            websocket,
        }) => {
            let (id, hub_peer) = shared.register();
            let span = tracing::info_span!("flv", conn = %id, target = %head.target);
            async {
                // The player's connect and play pass the app's access rules
                // and callbacks like an RTMP player's (protocol `Flv`).
                let mut access = Box::new(ConnAccess::new(
                    &shared,
                    id,
                    Some(peer.ip()),
                    Arc::clone(&hub_peer),
                ));
                let mut initial = head_bytes(&head);
                initial.extend_from_slice(&leftover);
                let framing = if websocket {
                    Framing::WebSocket
                } else {
                    Framing::HttpChunked
                };
                let conn = Box::new(FlvConnection::new(
                    shared.flv.clone(),
                    framing,
                    shared.now(),
                    Some(peer.ip()),
                ));
                let stream = Attached::new(&hub_peer, stream, fd);
                let reason =
                    run_connection(&shared, stream, id, &hub_peer, conn, &mut access, &initial)
                        .await;
                access.finish(&shared);
                shared.unregister(id);
                info!("closed: {reason}");
            }
            .instrument(span)
            .await;
        }
        Err(e) => debug!("connection failed: {e}"),
    }
}

/// Decides a WebSocket connect before the upgrade is answered (address
/// rules, signed URL, `on_connect`); a refused client gets HTTP 403 with
/// the reason. The echo endpoint is not an application: it is not checked.
async fn admit_upgrade<S: crate::net::Stream>(
    shared: &Shared,
    access: &mut ConnAccess,
    stream: &mut S,
    head: &RequestHead,
    peer: SocketAddr,
) -> Result<(), String> {
    let target = head.target.trim_start_matches('/');
    let path = target.split('?').next().unwrap_or_default();
    if shared
        .ws
        .echo_path
        .as_deref()
        .is_some_and(|echo| echo.trim_start_matches('/') == path)
    {
        return Ok(());
    }
    let connect = Request::Connect(tern_core::hub::ConnectRequest {
        protocol: tern_core::ws::PROTOCOL,
        target: target.to_owned(),
        params: tern_core::amf0::Value::Null,
        args: Vec::new(),
        address: Some(peer.ip()),
        // Only decided here; the upgraded connection makes its own connect.
        notices: None,
    });
    let Err(reason) = access.admit_upgrade(shared, connect).await else {
        return Ok(());
    };
    let body = format!("{reason}\n");
    let response = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(shared.write_stall, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    Err(reason)
}

/// The request head as bytes again, for the WebSocket connection, which
/// parses the upgrade itself (the core owns the protocol).
fn head_bytes(head: &RequestHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(format!(" HTTP/1.{}\r\n", head.version).as_bytes());
    for (name, value) in &head.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Starts a recorder for each stream that begins publishing in an app
/// with `record` on, until `shutdown` flips (see [`crate::record`]).
pub async fn run_recordings(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => return,
            () = shared.recordings.wait() => {}
        }
        let (started, records) = {
            let mut cell = shared.lock();
            (
                std::mem::take(&mut cell.to_record),
                Arc::clone(&cell.records),
            )
        };
        for (scope, name) in started {
            let Some(settings) = records.get(scope.app_name()).cloned() else {
                continue;
            };
            let span = tracing::info_span!("record", scope = %scope, stream = %name);
            tokio::spawn(
                record_stream(Arc::clone(&shared), scope, name, settings).instrument(span),
            );
        }
    }
}

/// Plays `scope`/`name` as a server-side player and hands its tags to a
/// writer thread until the stream ends or the recording fails.
async fn record_stream(
    shared: Arc<Shared>,
    scope: ScopePath,
    name: String,
    settings: RecordSettings,
) {
    let label = format!("{scope}/{name}");
    let Some(base) = record::stream_base(&settings.dir, &scope, &name) else {
        record::not_started(
            &label,
            "the stream name is not a valid file name (letters, digits, '_', '-', '.')",
        );
        shared.recordings_failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let done_shared = Arc::clone(&shared);
    let done_label = label.clone();
    let on_done = move |path: &std::path::Path| {
        record::file_done(&done_label, path);
        done_shared.recordings_done.fetch_add(1, Ordering::Relaxed);
    };
    let (tx, writer) = match record::start_writer(settings.clone(), base, label.clone(), on_done) {
        Ok(started) => started,
        Err(e) => {
            record::not_started(&label, &format!("no writer thread: {e}"));
            shared.recordings_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let (id, peer) = shared.register();
    let now = shared.now();
    shared.with_hub(|hub| {
        hub.handle(
            now,
            id,
            Request::Connect(tern_core::hub::ConnectRequest {
                protocol: record::PROTOCOL,
                target: scope.as_str().trim_start_matches('/').to_owned(),
                params: tern_core::amf0::Value::Null,
                args: Vec::new(),
                address: None,
                notices: None,
            }),
        );
        hub.handle(
            now,
            id,
            Request::Play {
                stream: 1,
                name: name.clone(),
                start: -1.0,
                encoder: tern_core::flv::fanout::media_encoder(Framing::Raw),
            },
        );
    });
    let mut deliveries = Vec::new();
    let mut stop: Option<String> = None;
    while stop.is_none() {
        peer.wakeup.wait().await;
        shared.with_hub(|hub| {
            while let Some(d) = hub.poll_delivery(id) {
                deliveries.push(d);
            }
        });
        for delivery in deliveries.drain(..) {
            match delivery {
                Delivery::Media(media) if settings.keeps(media.kind, media.priority) => {
                    if let Err(why) = record::send(&tx, record::Tag::of(&media)) {
                        stop.get_or_insert_with(|| why.to_owned());
                    }
                }
                Delivery::StreamEof { .. } => {
                    stop.get_or_insert_with(String::new);
                }
                Delivery::Close { reason } => {
                    stop.get_or_insert(reason);
                }
                Delivery::Rejected { description, .. } => {
                    stop.get_or_insert(description);
                }
                Delivery::Status {
                    level: tern_core::hub::Level::Error,
                    description,
                    ..
                } => {
                    stop.get_or_insert(description);
                }
                _ => {}
            }
        }
    }
    shared.unregister(id);
    drop(tx);
    let finished = tokio::task::spawn_blocking(move || writer.join()).await;
    let failure = match finished {
        Ok(Ok(finished)) => finished.failure,
        _ => Some("the writer thread panicked".to_owned()),
    };
    let queue_full = stop.as_deref().is_some_and(|s| s.contains("queue full"));
    if let Some(why) = failure {
        shared.recordings_failed.fetch_add(1, Ordering::Relaxed);
        warn!("recording of {label} failed: {why}");
    } else if queue_full {
        shared.recordings_failed.fetch_add(1, Ordering::Relaxed);
        warn!("recording of {label} dropped: {}", stop.unwrap_or_default());
    } else {
        info!("recording of {label} ended");
    }
}

/// Runs the hub's timers, and the heap trim (`server.heap_trim_secs`,
/// see `heap_trim`), until `shutdown` flips.
pub async fn run_hub_timers(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HUB_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_trim = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => return,
            _ = tick.tick() => {
                let now = shared.now();
                shared.with_hub(|hub| {
                    if hub.poll_timeout().is_some_and(|t| t <= now) {
                        hub.handle_timeout(now);
                    }
                });
                if let Some(every) = shared.heap_trim
                    && last_trim.elapsed() >= every
                {
                    last_trim = tokio::time::Instant::now();
                    crate::heap_trim::release_free_pages();
                }
            }
        }
    }
}

/// Sockets [`run_direct_writes`] writes before it lets other tasks run.
const DIRECT_WRITES_PER_TURN: usize = 256;
/// Turns [`run_direct_writes`] waits at most for more notices.
const MAX_DEFERRALS: usize = 4;

/// Writes the shared-object notices that the hub's callers took for parked
/// connections (see `direct_write`), until `shutdown` flips.
///
/// One task, woken when the first connection gets queued. It lets the tasks
/// that are ready run before it writes, for up to `MAX_DEFERRALS` turns
/// of the scheduler while they keep adding notices: under load their
/// changes join the ones already queued, so a subscriber gets one write for
/// several changes (as when its own task wrote them); one change at a time,
/// that costs one turn. After every `DIRECT_WRITES_PER_TURN` sockets it
/// lets the other tasks run. On a server with several cores all direct
/// writes run on one at a time; the connections' own writes (media, busy
/// subscribers) still spread over all of them.
pub async fn run_direct_writes(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut peers: Vec<Arc<Peer>> = Vec::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => return,
            () = shared.direct_writes.wait() => {}
        }
        // Like a server that writes when it has read everything (Redis):
        // while the tasks that ran meanwhile keep adding notices, let them
        // go on, so that each socket gets one write for all of them. One
        // change at a time, this costs one turn of the scheduler.
        let mut taken = shared.lock().direct_taken;
        for _ in 0..MAX_DEFERRALS {
            tokio::task::yield_now().await;
            let now = shared.lock().direct_taken;
            if now == taken {
                break;
            }
            taken = now;
        }
        std::mem::swap(&mut peers, &mut shared.lock().direct);
        let mut written = 0;
        for (i, peer) in peers.drain(..).enumerate() {
            if i > 0 && i % DIRECT_WRITES_PER_TURN == 0 {
                // A large room must not hold the worker for its whole
                // fan-out (10 000 subscribers: ~70 ms): players' media and
                // readers get their turn now and then.
                tokio::task::yield_now().await;
            }
            let flushed = peer.flush();
            written += flushed.written;
            if flushed.wake {
                peer.wakeup.wake();
            }
        }
        if written > 0 {
            shared
                .bytes_out
                .fetch_add(written as u64, Ordering::Relaxed);
        }
    }
}

/// Serves one connection (RTMP or WebSocket) through its gate (`access`),
/// driving it as [`ServerSession`] documents; returns why it ended. The
/// caller then calls [`ConnAccess::finish`].
///
/// The task owns the socket whole: it reads, or it writes, never both at
/// once, so no split (and no lock between halves) is needed. While it waits
/// with nothing queued, its peer is parked: whoever runs the hub may write
/// shared-object notices to the socket meanwhile (`direct_write`). The loop
/// runs once per read, wake-up or timer.
async fn run_connection<S: crate::net::Stream, C: ServerSession>(
    shared: &Shared,
    mut io: Attached<'_, S>,
    id: ConnId,
    peer: &Peer,
    mut conn: Box<C>,
    access: &mut ConnAccess,
    initial: &[u8],
) -> Ended<C::Error> {
    let stream = &mut io.stream;
    let wakeup = &peer.wakeup;
    let mut batch: Vec<bytes::Bytes> = Vec::new();
    // What the HTTP side read past the upgrade request is fed first; the
    // read branch below feeds each read itself. Either may end the
    // connection with a protocol error (then in its close reason).
    let mut failed = match initial {
        [] => false,
        data => feed(shared, &mut *conn, access, shared.now(), data),
    };
    // When everything queued was last written (the start of a merge window).
    let mut last_write = tokio::time::Instant::now();
    // One timer for the connection's own deadline and the end of a merge
    // window, re-armed only when its instant changes.
    let timer = tokio::time::sleep_until(far_future());
    tokio::pin!(timer);
    let mut armed: Option<tokio::time::Instant> = None;
    loop {
        // Busy from here on: nobody else writes, and what was taken from
        // the hub for us but not written goes out first.
        peer.resume(&mut batch);
        let now = shared.now();
        // Callback replies (a pending publish decided, on_update refused).
        access.take_replies(shared, &mut *conn, now);
        if std::mem::take(&mut failed) {
            // Flush what is queued (an error reply, a close frame), then
            // close; bounded like every other write.
            batch.extend(std::iter::from_fn(|| conn.poll_transmit()));
            let _ = write_all_bounded(shared, id, wakeup, stream, &batch).await;
            let _ = stream.shutdown().await;
            return closed(&*conn);
        }
        // Take deliveries while our own buffer is small — unless only media
        // waits and it may still be merged with what comes next.
        let mut pulled = false;
        let mut held_until = None;
        if conn.pending_bytes() < HIGH_WATER {
            let may_hold = !shared.merge_write.is_zero() && conn.pending_bytes() == 0;
            shared.with_hub(|hub| {
                if may_hold
                    && hub
                        .outbox(id)
                        .is_some_and(|o| o.may_wait(MERGE_FLUSH_BYTES))
                {
                    let merge_until = shared.merge_deadline(last_write);
                    if tokio::time::Instant::now() < merge_until {
                        held_until = Some(merge_until);
                        return;
                    }
                }
                while conn.pending_bytes() < HIGH_WATER {
                    match hub.poll_delivery(id) {
                        Some(delivery) => {
                            conn.handle_delivery(now, delivery);
                            pulled = true;
                        }
                        None => break,
                    }
                }
            });
        }
        // Everything queued goes out in as few (vectored) writes as possible:
        // one system call per wake-up instead of one per message.
        batch.extend(std::iter::from_fn(|| conn.poll_transmit()));
        if !batch.is_empty() {
            let bytes: usize = batch.iter().map(bytes::Bytes::len).sum();
            if let Err(end) = write_all_bounded(shared, id, wakeup, stream, &batch).await {
                return Ended::Write(end);
            }
            batch.clear();
            if batch.capacity() > KEEP_BATCH {
                // A join burst (the cached GOP) made it large; a merged
                // write needs a handful. Rare, so this is no churn.
                batch.shrink_to(KEEP_BATCH);
            }
            last_write = tokio::time::Instant::now();
            shared.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        }
        if conn.is_closing() {
            let _ = stream.shutdown().await;
            return closed(&*conn);
        }
        if pulled {
            continue;
        }
        let deadline = match (conn.poll_timeout(), access.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        // A deadline too far to represent ("never") is no deadline.
        .and_then(|t| {
            shared
                .start
                .checked_add(std::time::Duration::from_millis(t.as_millis()))
        });
        let wake_at = match (deadline, held_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if wake_at != armed {
            timer.as_mut().reset(wake_at.unwrap_or_else(far_future));
            armed = wake_at;
        }
        // Everything queued is written: others may write notices now.
        peer.park(conn.shared_encoding());
        tokio::select! {
            // Fixed branch order keeps runs reproducible in the simulator.
            biased;
            read = std::future::poll_fn(|cx| {
                poll_read_and_feed(cx, shared, peer, &mut batch, stream, &mut *conn, access)
            }) => {
                let n = match read {
                    Ok((0, _)) => return Ended::ByClient,
                    Ok((n, fed_failed)) => {
                        failed = fed_failed;
                        n
                    }
                    Err(e) => return Ended::ReadFailed(e),
                };
                shared.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            }
            () = wakeup.wait() => {}
            () = &mut timer, if armed.is_some() => {
                // Fired: re-arm on the next round.
                armed = None;
                timer.as_mut().reset(far_future());
                if deadline.is_some_and(|d| d <= tokio::time::Instant::now()) {
                    let now = shared.now();
                    if conn.poll_timeout().is_some_and(|t| t <= now) {
                        conn.handle_timeout(now);
                        // What the timeout asked of the hub goes now.
                        access.pump(shared, &mut *conn, now);
                    }
                    if access.poll_timeout().is_some_and(|t| t <= now) {
                        // The gate may hand the connection a close and
                        // take deliveries from the hub: busy first, as
                        // for input, so nobody else writes meanwhile.
                        peer.resume(&mut batch);
                        access.handle_timeout(shared, &mut *conn, now);
                    }
                }
            }
        }
    }
}

/// Feeds `data` to the connection and hands what it asks of the hub
/// through its gate straight to the hub (no per-connection request
/// buffer; see [`ConnAccess::pump`]). Returns true if the input failed the
/// connection (the failure is its close reason).
fn feed<C: ServerSession>(
    shared: &Shared,
    conn: &mut C,
    access: &mut ConnAccess,
    now: Instant,
    data: &[u8],
) -> bool {
    let failed = conn.handle_input(now, data).is_err();
    // Well-framed requests of an unexpected shape that were read leniently.
    while let Some(note) = conn.poll_tolerated() {
        debug!("{note}");
    }
    access.pump(shared, conn, now);
    failed
}

/// How a closing connection ended.
fn closed<C: ServerSession>(conn: &C) -> Ended<C::Error> {
    // A connection that closes always has a reason; a hub close is the
    // only one that could arrive without one.
    Ended::Closed(conn.close_reason().cloned().unwrap_or(CloseReason::Server {
        reason: "closed by the server".to_owned(),
    }))
}

/// Reads what the socket has (up to [`READ_CHUNK`] bytes) into a buffer
/// on the stack and feeds it to the connection at once. The connection
/// keeps what it needs of it (a partial chunk, a payload) in its own
/// buffers, so no connection keeps a read buffer between reads: idle
/// clients and players, which read a few bytes a minute, hold none.
/// Input makes the peer busy first (its queued notices go to `batch`), as
/// waking does. Returns the bytes read (0: end of stream) and how feeding
/// them went.
fn poll_read_and_feed<S: crate::net::Stream, C: ServerSession>(
    cx: &mut std::task::Context<'_>,
    shared: &Shared,
    peer: &Peer,
    batch: &mut Vec<bytes::Bytes>,
    stream: &mut S,
    conn: &mut C,
    access: &mut ConnAccess,
) -> Poll<io::Result<(usize, bool)>> {
    let mut storage = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut buf = tokio::io::ReadBuf::uninit(&mut storage);
    match std::pin::Pin::new(stream).poll_read(cx, &mut buf) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        Poll::Pending => return Poll::Pending,
    }
    let data = buf.filled();
    if data.is_empty() {
        return Poll::Ready(Ok((0, false)));
    }
    peer.resume(batch);
    Poll::Ready(Ok((
        data.len(),
        feed(shared, conn, access, shared.now(), data),
    )))
}

/// An instant no timer reaches (about 30 years on).
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365 * 30)
}

/// Writes `batch` whole. A write that completes at once (the usual case)
/// costs no timer; a blocked one must not pin the task: it ends when the
/// client stalls too long, or soon after the hub gives up on it. Returns
/// why the connection must end, if it must.
///
/// Only the first attempt lives in the caller's future: the blocked case
/// (its timers, about 500 bytes of state) is boxed when it happens, so it
/// does not sit in every connection's task while the connection waits.
async fn write_all_bounded<S: crate::net::Stream>(
    shared: &Shared,
    id: ConnId,
    wakeup: &Wakeup,
    stream: &mut S,
    batch: &[bytes::Bytes],
) -> Result<(), WriteEnd> {
    let mut progress = BatchProgress::default();
    let first =
        std::future::poll_fn(|cx| Poll::Ready(progress.poll_write(cx, &mut *stream, batch))).await;
    let written = match first {
        Poll::Ready(result) => result,
        Poll::Pending => {
            return Box::pin(write_blocked(shared, id, wakeup, stream, batch, progress)).await;
        }
    };
    written.map_err(WriteEnd::Failed)
}

/// The rest of a write that blocked: bounded by `write_stall` and by the
/// hub giving up on the connection.
async fn write_blocked<S: crate::net::Stream>(
    shared: &Shared,
    id: ConnId,
    wakeup: &Wakeup,
    stream: &mut S,
    batch: &[bytes::Bytes],
    mut progress: BatchProgress,
) -> Result<(), WriteEnd> {
    let write = std::future::poll_fn(|cx| progress.poll_write(cx, &mut *stream, batch));
    tokio::select! {
        biased;
        written = tokio::time::timeout(shared.write_stall, write) => match written {
            Ok(result) => result.map_err(WriteEnd::Failed),
            Err(_) => Err(WriteEnd::Stalled {
                secs: shared.write_stall.as_secs(),
            }),
        },
        () = given_up(shared, id, wakeup) => Err(WriteEnd::GivenUp)
    }
}

/// Writes every buffer of `batch`, in order, with vectored writes of up to
/// [`MAX_IOVECS`] buffers each.
#[cfg(test)]
async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &[bytes::Bytes],
) -> io::Result<()> {
    let mut progress = BatchProgress::default();
    std::future::poll_fn(|cx| progress.poll_write(cx, &mut *writer, batch)).await
}

/// How far a batch has been written: the next buffer and the offset in it.
/// Kept outside the write's future so a blocked write can go on elsewhere.
#[derive(Debug, Default, Clone, Copy)]
struct BatchProgress {
    first: usize,
    offset: usize,
}

impl BatchProgress {
    /// Writes what is left of `batch` until it is all written or the writer
    /// blocks.
    fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        writer: &mut W,
        batch: &[bytes::Bytes],
    ) -> Poll<io::Result<()>> {
        while self.first < batch.len() {
            let poll = if batch.len() - self.first == 1 {
                // One buffer (a notice, a reply): a plain write is a
                // cheaper system call than a one-element writev.
                let rest = batch
                    .get(self.first)
                    .and_then(|b| b.get(self.offset..))
                    .unwrap_or_default();
                std::pin::Pin::new(&mut *writer).poll_write(cx, rest)
            } else {
                // The slices are built on the stack for each attempt: an
                // array held across an await would sit in every task.
                let mut slices = [io::IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                let buffers = batch.iter().skip(self.first).take(MAX_IOVECS);
                for (i, buffer) in buffers.enumerate() {
                    let start = if i == 0 { self.offset } else { 0 };
                    if let (Some(slot), Some(rest)) = (slices.get_mut(i), buffer.get(start..)) {
                        *slot = io::IoSlice::new(rest);
                        count = i + 1;
                    }
                }
                std::pin::Pin::new(&mut *writer)
                    .poll_write_vectored(cx, slices.get(..count).unwrap_or_default())
            };
            let written = match poll {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.advance(batch, written);
        }
        Poll::Ready(Ok(()))
    }

    /// Moves past `written` bytes of `batch`.
    fn advance(&mut self, batch: &[bytes::Bytes], mut written: usize) {
        while written > 0 {
            let Some(buffer) = batch.get(self.first) else {
                break;
            };
            let left = buffer.len() - self.offset;
            if written >= left {
                written -= left;
                self.first += 1;
                self.offset = 0;
            } else {
                self.offset += written;
                written = 0;
            }
        }
    }
}

/// Buffers handed to one vectored write.
pub(crate) const MAX_IOVECS: usize = 64;

/// Resolves [`GIVE_UP_GRACE`] after the hub closed `id`'s outbox (woken by
/// the [`Wakeup`] the hub's `Closing` event pokes). Consuming a plain
/// wake-up here is harmless: the task pulls deliveries at the top of its
/// loop anyway.
async fn given_up(shared: &Shared, id: ConnId, wakeup: &Wakeup) {
    loop {
        wakeup.wait().await;
        let closed = shared.with_hub(|hub| hub.outbox(id).is_some_and(|o| o.closed().is_some()));
        if closed {
            tokio::time::sleep(GIVE_UP_GRACE).await;
            return;
        }
    }
}

/// Resolves once the shutdown flag is set (or its sender is gone).
pub async fn stopped(flag: &mut watch::Receiver<bool>) {
    loop {
        if *flag.borrow_and_update() {
            return;
        }
        if flag.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_goes_out_whole_and_in_order_through_partial_writes() {
        use tokio::io::AsyncReadExt;
        let batch: Vec<bytes::Bytes> = (0..100u8)
            .map(|i| bytes::Bytes::from(vec![i; 1 + usize::from(i) * 37]))
            .collect();
        let want: Vec<u8> = batch.iter().flat_map(|b| b.iter().copied()).collect();
        // A tiny pipe forces many partial vectored writes.
        let (mut writer, mut reader) = tokio::io::duplex(61);
        let read = tokio::spawn(async move {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).await.map(|_| got)
        });
        write_batch(&mut writer, &batch).await.unwrap();
        drop(writer);
        assert_eq!(read.await.unwrap().unwrap(), want);
    }

    /// Every connection's task holds this future for its whole life, so
    /// its size is memory per connection (what it was before and what that
    /// cost: docs/memory.md).
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let shared = Shared::new(&Config::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (id, peer) = shared.register();
        let random = shared.handshake_random(id);
        let conn = Box::new(ServerConnection::new(
            shared.rtmp.clone(),
            shared.now(),
            &random,
            None,
        ));
        let io = Attached::new(&peer, stream, None);
        let mut access = Box::new(ConnAccess::new(&shared, id, None, Arc::clone(&peer)));
        let task = run_connection(&shared, io, id, &peer, conn, &mut access, &[]);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 704, "run_connection's future is {size} bytes");
        drop(task);
        shared.unregister(id);
    }

    #[test]
    fn zero_means_never_for_pings_and_timeouts() {
        let mut config = Config::default();
        config.sessions.ping_interval_secs = 0;
        config.websocket.ping_interval_secs = 0;
        config.websocket.idle_timeout_secs = Some(0);
        let shared = Shared::new(&config);
        let never = Duration::from_millis(u64::MAX);
        assert_eq!(shared.rtmp.ping_interval, never);
        assert_eq!(shared.ws.ping_interval, never);
        assert_eq!(shared.ws.idle_timeout, never);
        // Saturating instants: a "never" deadline is far in the future.
        assert_eq!((Instant::from_millis(5) + never).as_millis(), u64::MAX);
        let defaults = Shared::new(&Config::default());
        assert_eq!(defaults.rtmp.ping_interval, Duration::from_secs(30));
        assert_eq!(defaults.ws.idle_timeout, Duration::from_secs(90));
    }

    /// Merge windows end on the grid, are never longer than configured and
    /// at most one step shorter; players that wrote within one step of the
    /// grid share a deadline.
    #[tokio::test(start_paused = true)]
    async fn merge_windows_end_on_a_grid() {
        use std::time::Duration as Std;
        for (merge_ms, step_us) in [(100, 10_000), (20, 5_000), (1, 250)] {
            let mut config = Config::default();
            config.streams.merge_write_ms = merge_ms;
            let shared = Shared::new(&config);
            let merge = Std::from_millis(merge_ms);
            let step = Std::from_micros(step_us);
            let mut deadlines = std::collections::BTreeSet::new();
            for offset_us in (0..50_000).step_by(1_237) {
                let last_write = shared.start + Std::from_micros(offset_us);
                let end = shared.merge_deadline(last_write);
                assert!(
                    end <= last_write + merge,
                    "{merge_ms} ms: longer than configured"
                );
                assert!(
                    end > last_write + merge - step,
                    "{merge_ms} ms: over a step shorter"
                );
                let since = end.duration_since(shared.start);
                assert_eq!(
                    since.as_nanos() % step.as_nanos(),
                    0,
                    "{since:?} is off the grid"
                );
                deadlines.insert(end);
            }
            // 41 writes spread over 50 ms: at most one deadline per step.
            let steps = 50_000 / step_us as usize + 1;
            assert!(deadlines.len() <= steps, "{merge_ms} ms: {deadlines:?}");
        }
    }
}
