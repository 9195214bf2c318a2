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
//! A task learns that deliveries wait for it through a `Notify` that the
//! hub's `Ready` event pokes. It pulls deliveries only while its own output
//! buffer is small, so a slow client leaves its deliveries in the hub, where
//! its outbox applies the drop policy without holding anyone else back.

use crate::config::Config;
use crate::file_store::FileStore;
use crate::net::Listener;
use crate::stats::{
    ConnectionCounts, ScopeStats, SharedObjectStats, StatsSnapshot, StatsSource, StreamStats,
};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tern_core::hub::{
    ConnId, DefaultApplication, Hub, HubConfig, HubEvent, OutboxLimits, Protocol, Request,
    TieredSessions,
};
use tern_core::rtmp::{ServerConfig, ServerConnection};
use tern_core::shared_object::SoLimits;
use tern_core::{Duration, Instant, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info, warn};

/// Output a connection buffers before it stops taking deliveries.
const HIGH_WATER: usize = 256 * 1024;
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 64 * 1024;
/// How often the hub's timers (idle rooms, idle connections) are checked.
const HUB_TICK: std::time::Duration = std::time::Duration::from_millis(250);
/// A write that makes no progress for this long means the client stopped
/// reading for good: the connection is dropped (its outbox has long since
/// been dropping media, and the hub may already have given up on it).
const WRITE_STALL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long connections get to say goodbye at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The hub and who to wake when it has something for a connection.
struct HubCell {
    hub: Hub,
    wakers: BTreeMap<ConnId, Arc<Notify>>,
}

impl HubCell {
    /// Routes the hub's events: wake-ups to tasks, the rest to the log.
    fn dispatch(&mut self) {
        while let Some(event) = self.hub.poll_event() {
            match event {
                HubEvent::Ready(conn) => {
                    if let Some(waker) = self.wakers.get(&conn) {
                        waker.notify_one();
                    }
                }
                HubEvent::Closing { conn, reason } => {
                    info!(conn = %conn, "closing connection: {reason}");
                    if let Some(waker) = self.wakers.get(&conn) {
                        waker.notify_one();
                    }
                }
                HubEvent::Rejected { conn, reason } => {
                    info!(conn = %conn, "connect rejected: {reason}");
                }
                HubEvent::Refused { conn, reason } => {
                    info!(conn = %conn, "request refused: {reason}");
                }
                HubEvent::StoreFailed { scope, name, error } => {
                    error!(%scope, so = %name, "persistent shared object store failed: {error}");
                }
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
    seed: u64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// A server state for `config`, loading nothing yet (objects load on use).
    pub fn new(config: &Config) -> Arc<Shared> {
        let limits = Limits::default();
        let hub_config = hub_config(config, &limits);
        let app = DefaultApplication {
            sessions: TieredSessions {
                idle_timeout: secs(config.sessions.idle_timeout_secs),
                premium_idle_timeout: secs(config.sessions.premium_idle_timeout_secs),
                premium_key: config.sessions.premium_query_key.clone(),
                premium_value: config.sessions.premium_query_value.clone(),
                session_timeout: config.sessions.session_timeout_secs.map(secs),
            },
        };
        let store = FileStore::new(&config.server.data_dir).with_limits(limits.clone());
        let hub = Hub::with_parts(hub_config, Box::new(app), Box::new(store));
        let rtmp = ServerConfig {
            out_chunk_size: config.server.out_chunk_size,
            ping_interval: secs(config.sessions.ping_interval_secs.max(1)),
            ping_timeout: secs(config.sessions.ping_interval_secs.max(1)),
            limits,
            ..ServerConfig::default()
        };
        Arc::new(Shared {
            hub: Mutex::new(HubCell {
                hub,
                wakers: BTreeMap::new(),
            }),
            start: tokio::time::Instant::now(),
            next_conn: AtomicU64::new(1),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            rtmp,
            seed: 0x7e57_7e57,
        })
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
        let mut cell = self.lock();
        let result = f(&mut cell.hub);
        cell.dispatch();
        result
    }

    fn register(&self) -> (ConnId, Arc<Notify>) {
        let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let notify = Arc::new(Notify::new());
        self.lock().wakers.insert(id, Arc::clone(&notify));
        (id, notify)
    }

    fn unregister(&self, id: ConnId) {
        let now = self.now();
        let mut cell = self.lock();
        cell.wakers.remove(&id);
        cell.hub.handle(now, id, Request::Disconnect);
        cell.dispatch();
    }

    /// Handshake bytes: not secret (RTMP's handshake is no cryptography),
    /// just varied per connection, and reproducible from the seed.
    fn handshake_random(&self, id: ConnId) -> [u8; tern_core::handshake::RANDOM_LEN] {
        let mut block = [0u8; tern_core::handshake::RANDOM_LEN];
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
                rtmp: hub.connection_count(Protocol::Rtmp) as u64,
                websocket: hub.connection_count(Protocol::WebSocket) as u64,
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
        }
    }
}

/// Accepts RTMP connections until `shutdown` flips, serving each on its own
/// task; at shutdown every client is told the connection closes and gets
/// [`SHUTDOWN_GRACE`] to receive it.
pub async fn serve_rtmp<L: Listener>(
    shared: Arc<Shared>,
    mut listener: L,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "RTMP listening");
    }
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (id, notify) = shared.register();
                    let span = tracing::info_span!("rtmp", conn = %id, %peer);
                    let shared = Arc::clone(&shared);
                    tasks.spawn(
                        async move {
                            debug!("accepted");
                            let reason = run_rtmp(&shared, stream, peer, id, notify).await;
                            shared.unregister(id);
                            info!("closed: {reason}");
                        }
                        .instrument(span),
                    );
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    let now = shared.now();
    shared.with_hub(|hub| hub.close_all(now, "server shutting down"));
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = tasks.len(),
            "connections still open after the grace period; dropping them"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

/// Runs the hub's timers until `shutdown` flips.
pub async fn run_hub_timers(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HUB_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            _ = tick.tick() => {
                let now = shared.now();
                shared.with_hub(|hub| {
                    if hub.poll_timeout().is_some_and(|t| t <= now) {
                        hub.handle_timeout(now);
                    }
                });
            }
        }
    }
}

/// Serves one RTMP connection; returns why it ended.
async fn run_rtmp<S: crate::net::Stream>(
    shared: &Shared,
    stream: S,
    peer: SocketAddr,
    id: ConnId,
    notify: Arc<Notify>,
) -> String {
    let now = shared.now();
    let random = shared.handshake_random(id);
    let mut conn = ServerConnection::new(shared.rtmp.clone(), now, &random, Some(peer.ip()));
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut requests: Vec<Request> = Vec::new();
    loop {
        // Take deliveries while our own buffer is small.
        let mut pulled = false;
        if conn.pending_bytes() < HIGH_WATER {
            let now = shared.now();
            shared.with_hub(|hub| {
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
        while let Some(bytes) = conn.poll_transmit() {
            match tokio::time::timeout(WRITE_STALL, writer.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return format!("write failed: {e}"),
                Err(_) => return format!("client stopped reading for {}s", WRITE_STALL.as_secs()),
            }
            shared
                .bytes_out
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        if conn.is_closing() {
            let _ = writer.shutdown().await;
            return match conn.close_reason() {
                Some(e) => {
                    warn!("{e}");
                    e.to_string()
                }
                None => "closed by the server".to_owned(),
            };
        }
        if pulled {
            continue;
        }
        let deadline = conn
            .poll_timeout()
            .map(|t| shared.start + std::time::Duration::from_millis(t.as_millis()));
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) => return "closed by the client".to_owned(),
                    Ok(n) => n,
                    Err(e) => return format!("read failed: {e}"),
                };
                shared.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                let now = shared.now();
                let input = conn.handle_input(now, buf.get(..n).unwrap_or_default());
                requests.extend(std::iter::from_fn(|| conn.poll_event()));
                if !requests.is_empty() {
                    shared.with_hub(|hub| {
                        for request in requests.drain(..) {
                            hub.handle(now, id, request);
                        }
                    });
                }
                if let Err(e) = input {
                    // Flush what is queued (e.g. an error reply), then close.
                    while let Some(bytes) = conn.poll_transmit() {
                        if writer.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    let _ = writer.shutdown().await;
                    warn!("protocol error: {e}");
                    return format!("protocol error: {e}");
                }
            }
            () = notify.notified() => {}
            () = sleep_until(deadline) => conn.handle_timeout(shared.now()),
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
