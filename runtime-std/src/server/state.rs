//! What every task of one server shares: the hub behind its lock ([`Shared`]),
//! the connections it delivers to, counters, and the access policy.

use super::hub_config::{hub_config, secs_or_never};
use crate::access::hooks::HookRunner;
use crate::cluster::streams::{Job as StreamJob, StreamJobs};
use crate::config::Config;
use crate::direct_write::Peer;
use crate::ended::{CloseCounts, Ended};
use crate::file_store::FileStore;
use crate::merge_policy::{Load, MergePolicy, Sample};
use crate::record::RecordSettings;
use crate::relay::Kind;
use crate::relay::service::RelayService;
use crate::stats::{
    ConnectionCounts, ScopeStats, SharedObjectStats, StatsSnapshot, StatsSource, StreamStats,
};
use crate::wakeup::Wakeup;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tern_core::access::{AccessPolicy, ConnectRate, RateLimit};
use tern_core::connection::Failure;
use tern_core::flv::FlvConfig;
use tern_core::hub::{ConnId, DefaultApplication, Hub, HubEvent, Request, TieredSessions};
use tern_core::rtmp::ServerConfig;
use tern_core::scope_path::ScopePath;
use tern_core::ws::WsConfig;
use tern_core::{Instant, Limits};
use tracing::{error, info, warn};

/// Merge windows end on multiples of this (since the server started), at
/// most a quarter of the window: see [`Shared::merge_deadline`].
const MERGE_GRID: std::time::Duration = std::time::Duration::from_millis(10);
/// Client addresses the connect rate remembers at once (about 100 bytes
/// each): see `ConnectRate`.
const MAX_RATE_ADDRESSES: usize = 65_536;

/// The hub and the connections it delivers to.
pub(super) struct HubCell {
    pub(super) hub: Hub,
    pub(super) peers: BTreeMap<ConnId, Arc<Peer>>,
    /// Parked connections with notices to write ([`run_direct_writes`]).
    pub(super) direct: Vec<Arc<Peer>>,
    /// Deliveries taken for parked connections so far (it tells
    /// [`run_direct_writes`] whether more keep coming).
    pub(super) direct_taken: u64,
    /// Streams that started publishing in apps that record, for
    /// [`run_recordings`].
    pub(super) to_record: Vec<(ScopePath, String)>,
    /// Apps that record, by name.
    pub(super) records: Arc<BTreeMap<String, RecordSettings>>,
    /// Pushes and pulls (`crate::relay`).
    pub(super) relays: Arc<RelayService>,
    /// Stream events for the cluster's registry (`crate::cluster::streams`).
    pub(super) stream_jobs: Arc<StreamJobs>,
}

impl HubCell {
    /// Routes the hub's events: notices for parked connections to their
    /// queues (and the connections to `direct`), wake-ups to tasks, the
    /// rest to the log.
    pub(super) fn dispatch(&mut self) {
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
                    self.relays.on_published(&scope, &name);
                    if self.records.contains_key(scope.app_name()) {
                        self.to_record.push((scope, name));
                    }
                }
                HubEvent::PlayWaiting { scope, name } => {
                    self.relays.on_play_waiting(&scope, &name);
                    self.stream_jobs
                        .push(StreamJob::PlayWaiting { scope, name });
                }
                HubEvent::PublishClaim { claim, scope, name } => {
                    self.stream_jobs
                        .push(StreamJob::Claim { claim, scope, name });
                }
                HubEvent::Unpublished { scope, name } => {
                    self.stream_jobs
                        .push(StreamJob::Unpublished { scope, name });
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
    pub(super) hub: Mutex<HubCell>,
    pub(super) start: tokio::time::Instant,
    pub(super) next_conn: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) rtmp: ServerConfig,
    pub(super) ws: WsConfig,
    pub(super) flv: FlvConfig,
    /// A write that makes no progress for this long means the client
    /// stopped reading for good (or vanished): the connection is dropped.
    /// Its outbox has long since been dropping media; a live player never
    /// stalls this long (`server.write_timeout_secs`).
    pub(super) write_stall: std::time::Duration,
    /// How long media may wait to be merged into one write: its ceiling
    /// and how the load opens it (`crate::merge_policy`).
    pub(super) merge_policy: MergePolicy,
    /// The merge window in force, µs: [`Shared::merge_window`]. Set by
    /// [`run_hub_timers`](super::run_hub_timers) from the load.
    pub(super) merge_window_us: AtomicU64,
    /// Media deliveries handed to connections since the load was last
    /// sampled ([`Shared::sample_load`]).
    pub(super) media_delivered: AtomicU64,
    /// The last sampled load (deliveries per second per worker), for the
    /// stats.
    pub(super) media_load: AtomicU64,
    /// How often freed heap pages go back to the OS (`None`: never).
    pub(super) heap_trim: Option<std::time::Duration>,
    pub(super) seed: u64,
    /// Wakes [`run_direct_writes`].
    pub(super) direct_writes: Wakeup,
    /// Wakes [`run_recordings`].
    pub(super) recordings: Wakeup,
    /// Recorded files completed.
    pub(super) recordings_done: AtomicU64,
    /// Recordings that stopped on an error (disk, queue).
    pub(super) recordings_failed: AtomicU64,
    /// Connections closed, by reason.
    pub(super) closes: CloseCounts,
    /// What each connection's gate checks (`[apps.NAME]`, rate limits).
    pub(super) access: Arc<AccessPolicy>,
    /// Makes the HTTP callbacks the gates ask for.
    pub(super) hooks: HookRunner,
    /// Connects per address per second, server-wide.
    pub(super) connect_rate: Mutex<ConnectRate>,
    /// Who may use the HTTP port's APIs (`[http]` tokens).
    pub(crate) http_access: crate::admin::Access,
    /// Pushes and pulls (`crate::relay`).
    pub(crate) relays: Arc<RelayService>,
    /// Wakes the cluster task when the hub has proposals (`[cluster]`).
    pub(super) cluster: Arc<Wakeup>,
    /// The hub's stream events for the cluster's registry.
    pub(super) stream_jobs: Arc<StreamJobs>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Logs and counts how a connection's task ended (a warning for a
    /// protocol failure or timeout, else an info line).
    pub(super) fn closed<E: Failure + std::fmt::Display>(&self, ended: &Ended<E>) {
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
        let store = FileStore::new(&config.server.data_dir)
            .with_limits(limits.clone())
            .with_max_object_bytes(config.shared_objects.max_object_bytes);
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
        let merge_policy = MergePolicy {
            ceiling: std::time::Duration::from_millis(config.streams.merge_write_ms),
            adaptive: config.streams.merge_write_adaptive,
            full_at: config.streams.merge_write_busy_per_sec,
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
        let write_stall = std::time::Duration::from_secs(match config.server.write_timeout_secs {
            0 => 10,
            secs => secs,
        });
        let relays = Arc::new(RelayService::new(
            &config.apps,
            crate::relay::Settings {
                write_stall,
                setup_timeout: write_stall,
                limits: rtmp.limits.clone(),
            },
            crate::relay::service::connector_for(&config.tls),
        ));
        let stream_jobs = Arc::new(StreamJobs::default());
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
                relays: Arc::clone(&relays),
                stream_jobs: Arc::clone(&stream_jobs),
            }),
            start: tokio::time::Instant::now(),
            next_conn: AtomicU64::new(1),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            closes: CloseCounts::default(),
            rtmp,
            ws,
            flv,
            write_stall,
            merge_policy,
            merge_window_us: AtomicU64::new(duration_us(merge_policy.window(Load::default()))),
            media_delivered: AtomicU64::new(0),
            media_load: AtomicU64::new(0),
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
            relays,
            cluster: Arc::new(Wakeup::default()),
            stream_jobs,
        })
    }

    /// How long a player's media may wait now (zero: write at once): the
    /// window [`MergePolicy::window`] gave for the last sampled load, never
    /// more than `streams.merge_write_ms`.
    pub(super) fn merge_window(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.merge_window_us.load(Ordering::Relaxed))
    }

    /// Counts `n` media deliveries handed to a connection (the load).
    pub(super) fn count_media(&self, n: u64) {
        if n > 0 {
            self.media_delivered.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Takes the media deliveries counted over `elapsed` into `load` and
    /// sets the merge window from the result; returns the new load. The
    /// caller measures `elapsed` on tokio's clock (the simulator's in a
    /// simulated run), so the window is deterministic there.
    pub(super) fn sample_load(
        &self,
        load: Load,
        elapsed: std::time::Duration,
        workers: usize,
    ) -> Load {
        let load = load.update(Sample {
            deliveries: self.media_delivered.swap(0, Ordering::Relaxed),
            elapsed,
            workers,
        });
        self.merge_window_us.store(
            duration_us(self.merge_policy.window(load)),
            Ordering::Relaxed,
        );
        self.media_load
            .store(load.per_sec_per_worker, Ordering::Relaxed);
        load
    }

    /// The end of a merge window of length `window` that began with a
    /// write at `last_write`: `window` later, rounded down to a multiple
    /// of [`MERGE_GRID`] (at most a quarter of the window) since the server
    /// started. Players whose windows end within the same step of the grid
    /// then wake on the same timer tick and write in one pass of the
    /// scheduler, instead of each waking the thread on a millisecond of its
    /// own (100 players at 10 writes/s: about 1000 wake-ups of the server a
    /// second, 100 with the grid). A window is at most `window` long and
    /// at least that less one step.
    pub(super) fn merge_deadline(
        &self,
        last_write: tokio::time::Instant,
        window: std::time::Duration,
    ) -> tokio::time::Instant {
        let end = last_write + window;
        let grid = MERGE_GRID.min(window / 4).as_nanos();
        if grid == 0 {
            return end;
        }
        let past = end.saturating_duration_since(self.start).as_nanos() % grid;
        end - std::time::Duration::from_nanos(u64::try_from(past).unwrap_or(0))
    }

    /// What wakes the cluster task: the hub queued proposals.
    pub(crate) fn cluster_wakeup(&self) -> Arc<Wakeup> {
        Arc::clone(&self.cluster)
    }

    /// The queue of stream events for the cluster's registry.
    pub(crate) fn stream_jobs(&self) -> &Arc<StreamJobs> {
        &self.stream_jobs
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

    pub(super) fn lock(&self) -> MutexGuard<'_, HubCell> {
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
    pub(super) fn with_cell<R>(&self, f: impl FnOnce(&mut HubCell) -> R) -> R {
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
        if cell.hub.has_proposals() {
            self.cluster.wake();
        }
        result
    }

    pub(super) fn register(&self) -> (ConnId, Arc<Peer>) {
        let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let peer = Arc::new(Peer::default());
        self.lock().peers.insert(id, Arc::clone(&peer));
        (id, peer)
    }

    pub(super) fn unregister(&self, id: ConnId) {
        let now = self.now();
        self.with_cell(|cell| {
            cell.peers.remove(&id);
            cell.hub.handle(now, id, Request::Disconnect);
        });
    }

    /// Handshake bytes: not secret (RTMP's handshake is no cryptography),
    /// just varied per connection, and reproducible from the seed.
    pub(super) fn handshake_random(
        &self,
        id: ConnId,
    ) -> [u8; tern_core::rtmp::handshake::RANDOM_LEN] {
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

impl StatsSource for Shared {
    fn snapshot(&self) -> StatsSnapshot {
        let cell = self.lock();
        let hub = &cell.hub;
        let counters = hub.counters();
        let cluster = hub.cluster_node().map(|node| crate::stats::ClusterStats {
            node: node.to_owned(),
            rooms: hub
                .cluster_rooms(node)
                .into_iter()
                .map(|r| crate::stats::ClusterRoomStats {
                    path: r.path.to_string(),
                    connections: r.connections(),
                    nodes: r.nodes,
                })
                .collect(),
        });
        StatsSnapshot {
            cluster,
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
            merge_window_us: self.merge_window_us.load(Ordering::Relaxed),
            media_load_per_sec: self.media_load.load(Ordering::Relaxed),
            closes: self.closes.snapshot(),
            relays: self
                .relays
                .relays()
                .infos()
                .iter()
                .map(crate::stats::RelayStats::of)
                .collect(),
            relay_totals: [Kind::Push, Kind::Pull].map(|kind| {
                let (bytes_out, bytes_in, reconnects) = self.relays.relays().totals().of(kind);
                crate::stats::RelayTotals {
                    bytes_out,
                    bytes_in,
                    reconnects,
                }
            }),
        }
    }
}

/// `d` in whole microseconds (saturating).
fn duration_us(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Closes every connection (each client is told why): the start of a
/// graceful shutdown, after the accept loops were told to stop.
pub fn close_all(shared: &Shared, reason: &str) {
    let now = shared.now();
    shared.with_hub(|hub| hub.close_all(now, reason));
}

impl crate::relay::Host for Shared {
    fn now(&self) -> Instant {
        Shared::now(self)
    }

    fn register(&self) -> (ConnId, Arc<Peer>) {
        Shared::register(self)
    }

    fn unregister(&self, id: ConnId) {
        Shared::unregister(self, id);
    }

    fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        Shared::with_hub(self, f)
    }
}

impl Shared {
    /// Pushes and pulls.
    pub fn relays(&self) -> &Arc<RelayService> {
        &self.relays
    }
}

#[cfg(test)]
mod tests {
    use super::Shared;
    use crate::config::Config;
    use tern_core::{Duration, Instant};

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

    /// The window in force follows the sampled load: closed while idle,
    /// the whole ceiling under load, and always the ceiling when fixed.
    #[test]
    fn the_merge_window_follows_the_sampled_load() {
        use crate::merge_policy::Load;
        use std::time::Duration as Std;
        let mut config = Config::default();
        let shared = Shared::new(&config);
        assert_eq!(shared.merge_window(), Std::ZERO, "idle at the start");
        let mut load = Load::default();
        for _ in 0..20 {
            // 1000 players at 68 messages/s, sampled every 250 ms.
            shared.count_media(17_000);
            load = shared.sample_load(load, Std::from_millis(250), 1);
        }
        assert_eq!(shared.merge_window(), Std::from_millis(100));
        for _ in 0..20 {
            load = shared.sample_load(load, Std::from_millis(250), 1);
        }
        assert_eq!(shared.merge_window(), Std::ZERO, "idle again");
        config.streams.merge_write_adaptive = false;
        let fixed = Shared::new(&config);
        assert_eq!(fixed.merge_window(), Std::from_millis(100));
        fixed.sample_load(Load::default(), Std::from_millis(250), 1);
        assert_eq!(fixed.merge_window(), Std::from_millis(100));
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
                let end = shared.merge_deadline(last_write, merge);
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
