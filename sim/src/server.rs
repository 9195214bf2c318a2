//! The server host: runtime-std's real `serve_on` on turmoil listeners, with
//! a configuration sized for short simulations.

use crate::net::{HTTP_PORT, RTMP_PORT, SimListener};
use std::path::{Path, PathBuf};
use tern_runtime_std::config::Config;

/// The knobs of the server that scenarios change. Everything else is
/// runtime-std's default configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTuning {
    /// `scopes.room_idle_secs` (whole seconds: the config's unit).
    pub room_idle_secs: u64,
    /// `sessions.ping_interval_secs` and `websocket.ping_interval_secs`:
    /// silence before the server pings a client, and again before it gives
    /// up on it (WebSocket: `websocket.idle_timeout_secs`, twice this).
    pub ping_interval_secs: u64,
    /// `streams.subscriber_queue_bytes`.
    pub subscriber_queue_bytes: usize,
    /// `streams.max_lag_ms`.
    pub max_lag_ms: u64,
    /// `streams.gop_cache`.
    pub gop_cache: bool,
    /// `streams.merge_write_ms`.
    pub merge_write_ms: u64,
    /// `streams.merge_write_adaptive`.
    pub merge_write_adaptive: bool,
    /// `streams.merge_write_busy_per_sec`.
    pub merge_write_busy_per_sec: u64,
    /// `streams.publisher_idle_timeout_secs`.
    pub publisher_idle_timeout_secs: u64,
    /// `streams.publish_conflict`.
    pub publish_conflict: tern_runtime_std::config::PublishConflictConfig,
}

impl Default for ServerTuning {
    /// Small bounds, so seconds of simulated time exercise idle rooms,
    /// pings and the media drop policy.
    fn default() -> Self {
        ServerTuning {
            room_idle_secs: 1,
            ping_interval_secs: 2,
            subscriber_queue_bytes: 96 * 1024,
            max_lag_ms: 1_500,
            gop_cache: true,
            merge_write_ms: tern_runtime_std::config::StreamsConfig::default().merge_write_ms,
            merge_write_adaptive: tern_runtime_std::config::StreamsConfig::default()
                .merge_write_adaptive,
            merge_write_busy_per_sec: tern_runtime_std::config::StreamsConfig::default()
                .merge_write_busy_per_sec,
            publisher_idle_timeout_secs: tern_runtime_std::config::StreamsConfig::default()
                .publisher_idle_timeout_secs,
            publish_conflict: tern_runtime_std::config::PublishConflictConfig::Replace,
        }
    }
}

impl ServerTuning {
    /// The configuration `serve_on` gets, storing persistent shared objects
    /// under `data_dir`.
    pub fn config(&self, data_dir: &Path) -> Config {
        let mut config = Config::default();
        config.server.rtmp_bind = ([0, 0, 0, 0], RTMP_PORT).into();
        config.server.http_bind = ([0, 0, 0, 0], HTTP_PORT).into();
        config.server.data_dir = data_dir.to_owned();
        config.scopes.room_idle_secs = self.room_idle_secs;
        config.sessions.ping_interval_secs = self.ping_interval_secs;
        // WebSocket connections get the same liveness rule as RTMP ones
        // (ping after one interval of silence, drop after another) instead
        // of the 30 s / 90 s defaults, which would outlast a whole run.
        config.websocket.ping_interval_secs = self.ping_interval_secs;
        config.websocket.idle_timeout_secs = Some(2 * self.ping_interval_secs);
        // Turmoil does not wake a writer blocked on flow control when the
        // peer goes away (a kernel would fail the write): the write timeout
        // is what drops such connections, so keep it short in simulated runs.
        config.server.write_timeout_secs = 2;
        config.streams.subscriber_queue_bytes = self.subscriber_queue_bytes;
        config.streams.max_lag_ms = self.max_lag_ms;
        config.streams.gop_cache = self.gop_cache;
        config.streams.merge_write_ms = self.merge_write_ms;
        config.streams.merge_write_adaptive = self.merge_write_adaptive;
        config.streams.merge_write_busy_per_sec = self.merge_write_busy_per_sec;
        config.streams.publisher_idle_timeout_secs = self.publisher_idle_timeout_secs;
        config.streams.publish_conflict = self.publish_conflict;
        config
    }
}

/// The software of the server host: binds both ports and serves until the
/// host is crashed (turmoil drops the whole runtime) or the run ends.
/// Called again by turmoil on every bounce, so a bounced server starts from
/// its store directory like a restarted process.
pub fn host(tuning: ServerTuning, data_dir: PathBuf) -> impl Fn() -> HostFuture {
    move || {
        let config = tuning.config(&data_dir);
        Box::pin(async move {
            let rtmp = SimListener::bind(RTMP_PORT).await?;
            let http = SimListener::bind(HTTP_PORT).await?;
            tern_runtime_std::serve_on(config, rtmp, http, std::future::pending()).await?;
            Ok(())
        })
    }
}

/// What [`host`] returns each time it starts the server.
pub type HostFuture = std::pin::Pin<Box<dyn std::future::Future<Output = turmoil::Result>>>;

/// The software of cluster node `node` ([`crate::cluster`]): as [`host`],
/// with the hub joined to `sequencer` through a fresh link each time the
/// host starts (a bounced node replays the log from its start, as a
/// restarted tern process replays the JetStream stream).
pub fn cluster_host(
    tuning: ServerTuning,
    data_dir: PathBuf,
    sequencer: crate::bus::SimSequencer,
    node: usize,
) -> impl Fn() -> HostFuture {
    move || {
        let config = tuning.config(&data_dir);
        let bus = sequencer.link(node);
        Box::pin(async move {
            let rtmp = SimListener::bind(RTMP_PORT).await?;
            let http = SimListener::bind(HTTP_PORT).await?;
            tern_runtime_std::serve_on_with_bus(config, rtmp, http, bus, std::future::pending())
                .await?;
            Ok(())
        })
    }
}
