//! The configuration's schema: every table and key, with its default.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Largest RTMP chunk size the protocol can express (core's bound).
pub use tern_core::chunk::MAX_CHUNK_SIZE;

/// Deepest room nesting a configuration may allow.
pub const MAX_SCOPE_DEPTH: usize = 32;

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listening sockets and server-wide settings.
    pub server: ServerConfig,
    /// Configured applications by name (the first scope path segment).
    /// Replaces the defaults (`live`, `chat`) when given.
    pub apps: BTreeMap<String, AppConfig>,
    /// Scope (room) lifetime and limits.
    pub scopes: ScopesConfig,
    /// Shared-object limits.
    pub shared_objects: SharedObjectsConfig,
    /// Live-stream buffering and back-pressure.
    pub streams: StreamsConfig,
    /// Per-connection idle/session timeouts and keepalives.
    pub sessions: SessionsConfig,
    /// WebSocket-specific settings.
    pub websocket: WebSocketConfig,
    /// The HTTP port: HTTP-FLV/WS-FLV origins, the admin API and the
    /// protection of its statistics.
    pub http: HttpConfig,
    /// Log output.
    pub logging: LoggingConfig,
    /// The certificate of the TLS ports (`server.rtmps_bind`,
    /// `server.https_bind`).
    pub tls: TlsConfig,
    /// `[cluster]`: share shared objects with other tern nodes over NATS
    /// JetStream (docs/cluster.md). Absent: a single node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        let apps = ["live", "chat"]
            .into_iter()
            .map(|name| (name.to_owned(), AppConfig::default()))
            .collect();
        Config {
            server: ServerConfig::default(),
            apps,
            scopes: ScopesConfig::default(),
            shared_objects: SharedObjectsConfig::default(),
            streams: StreamsConfig::default(),
            sessions: SessionsConfig::default(),
            websocket: WebSocketConfig::default(),
            http: HttpConfig::default(),
            logging: LoggingConfig::default(),
            tls: TlsConfig::default(),
            cluster: None,
        }
    }
}

/// `[server]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where RTMP clients connect.
    #[serde(deserialize_with = "socket_addr")]
    pub rtmp_bind: SocketAddr,
    /// Where HTTP (metrics, stats, demo page) and WebSocket clients connect.
    #[serde(deserialize_with = "socket_addr")]
    pub http_bind: SocketAddr,
    /// Chunk size the server announces and uses for what it sends.
    pub out_chunk_size: u32,
    /// Directory of persistent shared objects.
    pub data_dir: PathBuf,
    /// A write to a client that makes no progress for this long drops it.
    pub write_timeout_secs: u64,
    /// Every this many seconds freed heap pages go back to the OS (glibc
    /// `malloc_trim`); 0 never.
    pub heap_trim_secs: u64,
    /// Where RTMPS (RTMP over TLS) clients connect; unset = no RTMPS.
    /// Needs `[tls]`.
    #[serde(
        default,
        deserialize_with = "opt_socket_addr",
        skip_serializing_if = "Option::is_none"
    )]
    pub rtmps_bind: Option<SocketAddr>,
    /// Where HTTPS and WSS clients connect (everything the HTTP port serves,
    /// over TLS); unset = none. Needs `[tls]`.
    #[serde(
        default,
        deserialize_with = "opt_socket_addr",
        skip_serializing_if = "Option::is_none"
    )]
    pub https_bind: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            rtmp_bind: SocketAddr::from(([127, 0, 0, 1], 1935)),
            http_bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
            out_chunk_size: 4096,
            data_dir: PathBuf::from("./tern-data"),
            write_timeout_secs: 10,
            heap_trim_secs: 10,
            rtmps_bind: None,
            https_bind: None,
        }
    }
}

/// `[apps.<name>]`: access rules, signed URLs and callbacks (see
/// [`crate::access`]).
pub use crate::access::AppConfig;

/// `record = "…"`: which messages of a stream are recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordMode {
    /// Nothing.
    #[default]
    Off,
    /// Audio, video and metadata.
    All,
    /// Video (and metadata) only.
    Video,
    /// Audio (and metadata) only.
    Audio,
    /// Video keyframes (with the video sequence header and metadata) only.
    Keyframes,
}

/// `[scopes]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopesConfig {
    /// Seconds an empty room is kept before it is removed.
    pub room_idle_secs: u64,
    /// Most room segments below the app (`/app/a/b` has depth 2).
    pub max_depth: usize,
    /// Most rooms (at any depth) in one app.
    pub max_rooms_per_app: usize,
    /// Most connections in one scope.
    pub max_connections_per_scope: usize,
    /// Most connections from one client IP address.
    pub max_connections_per_address: usize,
    /// Connects (RTMP connect, WebSocket upgrade) per client IP address per
    /// second, with a burst of as many; 0: no limit.
    pub max_connects_per_address_per_sec: u32,
}

impl Default for ScopesConfig {
    fn default() -> Self {
        ScopesConfig {
            room_idle_secs: 60,
            max_depth: 4,
            max_rooms_per_app: 10_000,
            max_connections_per_scope: 10_000,
            max_connections_per_address: 1_000,
            max_connects_per_address_per_sec: 0,
        }
    }
}

impl ScopesConfig {
    /// [`room_idle_secs`](Self::room_idle_secs) as a duration.
    pub fn room_idle(&self) -> Duration {
        Duration::from_secs(self.room_idle_secs)
    }
}

/// `[shared_objects]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedObjectsConfig {
    /// Most shared objects in one scope.
    pub max_per_scope: usize,
    /// Most attributes in one shared object.
    pub max_keys: usize,
    /// Largest encoded (AMF0) attribute value, in bytes.
    pub max_value_bytes: usize,
    /// Largest shared object (all keys and encoded values), in bytes.
    pub max_object_bytes: usize,
    /// Shared-object operations (changes, sends, uses) per connection per
    /// second; 0: no limit.
    pub max_ops_per_sec: u32,
    /// Operations a connection may make at once after a quiet spell.
    pub max_ops_burst: u32,
}

impl Default for SharedObjectsConfig {
    fn default() -> Self {
        SharedObjectsConfig {
            max_per_scope: 256,
            max_keys: 1024,
            max_value_bytes: 64 * 1024,
            max_object_bytes: 1024 * 1024,
            max_ops_per_sec: 100,
            max_ops_burst: 500,
        }
    }
}

/// `[streams]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// Send late joiners the frames since the last keyframe.
    pub gop_cache: bool,
    /// Largest cached GOP per stream, in bytes; a longer GOP is not cached
    /// (late joiners then wait for the next keyframe).
    pub max_gop_bytes: usize,
    /// Bytes queued per subscriber before frames are dropped.
    pub subscriber_queue_bytes: usize,
    /// How far (in media time) a subscriber may fall behind before it is
    /// cut back to the next keyframe; one that stays behind is disconnected.
    pub max_lag_ms: u64,
    /// The longest media for a player may wait to be merged into one
    /// write (0 = write every message as it comes). Notices, statuses and
    /// replies never wait. See docs/config.md for the trade-off.
    pub merge_write_ms: u64,
    /// True: media waits only while the server is busy (the window grows
    /// with the media deliveries per second, up to `merge_write_ms`);
    /// false: always the whole `merge_write_ms`.
    pub merge_write_adaptive: bool,
    /// Media deliveries per second per worker thread from which the
    /// adaptive window is the whole `merge_write_ms`; below two thirds of
    /// it media never waits.
    pub merge_write_busy_per_sec: u64,
    /// Drop a publisher that sent no media for this long (0 = never).
    pub publisher_idle_timeout_secs: u64,
    /// What a publish of a name that is already live does.
    pub publish_conflict: PublishConflictConfig,
}

/// `[streams] publish_conflict`: `"replace"` (the new publisher takes the
/// name over, once it passed every access check) or `"reject"` (it gets
/// `NetStream.Publish.BadName` while the old one publishes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishConflictConfig {
    /// The new publisher takes over.
    #[default]
    Replace,
    /// The new publisher is refused.
    Reject,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            gop_cache: true,
            max_gop_bytes: 8 * 1024 * 1024,
            subscriber_queue_bytes: 4 * 1024 * 1024,
            max_lag_ms: 5_000,
            merge_write_ms: 100,
            merge_write_adaptive: true,
            merge_write_busy_per_sec: crate::merge_policy::DEFAULT_FULL_AT,
            publisher_idle_timeout_secs: 10,
            publish_conflict: PublishConflictConfig::Replace,
        }
    }
}

/// `[sessions]`: the per-connection timeout policy (DESIGN.md §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Close a connection that sent nothing for this long (0 = never).
    pub idle_timeout_secs: u64,
    /// Idle timeout for premium clients (0 = never).
    pub premium_idle_timeout_secs: u64,
    /// Query parameter that marks a premium client (`?tier=premium`).
    pub premium_query_key: String,
    /// Value of [`premium_query_key`](Self::premium_query_key) that marks a
    /// premium client.
    pub premium_query_value: String,
    /// Close every connection after this long, active or not (unset = no
    /// limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_timeout_secs: Option<u64>,
    /// Seconds between RTMP pings (User Control PingRequest); 0 = no pings.
    pub ping_interval_secs: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            idle_timeout_secs: 15 * 60,
            premium_idle_timeout_secs: 3 * 60 * 60,
            premium_query_key: "tier".to_owned(),
            premium_query_value: "premium".to_owned(),
            session_timeout_secs: None,
            ping_interval_secs: 30,
        }
    }
}

impl SessionsConfig {
    /// The idle timeout for a client whose connect query is `query`
    /// (`a=1&tier=premium`), or `None` for no idle timeout.
    pub fn idle_timeout_for(&self, query: &str) -> Option<Duration> {
        let premium = tern_core::scope_path::query_param(query, &self.premium_query_key)
            == Some(self.premium_query_value.as_str());
        let secs = if premium {
            self.premium_idle_timeout_secs
        } else {
            self.idle_timeout_secs
        };
        (secs > 0).then(|| Duration::from_secs(secs))
    }
}

/// `[websocket]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Request path of a plain echo endpoint (for the Autobahn testsuite);
    /// unset = no echo endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo_path: Option<String>,
    /// Seconds between WebSocket pings; 0 = no pings.
    pub ping_interval_secs: u64,
    /// Seconds without any byte from the client (pongs included) before a
    /// WebSocket connection is closed; unset = 90, 0 = never. (The
    /// application-level idle timeout is the `[sessions]` policy, as for
    /// RTMP.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<u64>,
    /// Largest message (after reassembling fragments), in bytes.
    pub max_message_bytes: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            echo_path: None,
            ping_interval_secs: 30,
            idle_timeout_secs: None,
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// `[logging]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// A `tracing` filter: a level (`info`) or directives
    /// (`info,tern_runtime_std=debug`). `RUST_LOG`, when set, wins.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".to_owned(),
        }
    }
}

/// `[http]`: which pages may read HTTP-FLV streams, and who may use the
/// HTTP port's APIs (docs/admin-api.md).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Origins whose pages may read HTTP-FLV streams
    /// (`Access-Control-Allow-Origin`); `"*"` allows every origin.
    pub cors_origins: Vec<String>,
    /// Bearer token of the admin API (`/api/connections`, `/api/streams`,
    /// `/api/so`); unset = no admin API (404).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Bearer token that `/api/stats` and `/metrics` require; unset = open.
    /// The admin token is accepted there too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            cors_origins: vec!["*".to_owned()],
            admin_token: None,
            stats_token: None,
        }
    }
}

/// Tokens stay out of logs and `Debug` output.
impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |t: &Option<String>| if t.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("HttpConfig")
            .field("cors_origins", &self.cors_origins)
            .field("admin_token", &set(&self.admin_token))
            .field("stats_token", &set(&self.stats_token))
            .finish()
    }
}

/// Shortest token `[http]` accepts: a token is the only thing between the
/// network and the admin API, so a guessable one is refused at start.
pub const MIN_TOKEN_LEN: usize = 16;

/// `[tls]`: the certificate chain and key of the TLS ports, PEM files,
/// read at start and again on SIGHUP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The certificate chain (leaf first), e.g. Let's Encrypt's
    /// `fullchain.pem`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The private key (PKCS#8, PKCS#1 or SEC1 PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// A TLS handshake not finished within this many seconds is cut off
    /// (as an RTMP handshake that stalls).
    pub handshake_timeout_secs: u64,
    /// More CA certificates (PEM) that `rtmps://` relay targets may be
    /// signed by, besides the system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_ca: Option<PathBuf>,
    /// Check `rtmps://` relay targets' certificates; only an explicit
    /// `false` turns it off.
    pub tls_verify: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            handshake_timeout_secs: 10,
            extra_ca: None,
            tls_verify: true,
        }
    }
}

/// `[cluster]`: the NATS server (JetStream on) the nodes share, and who
/// this node is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `nats://host:port` (or `tls://host:port`); several servers of one
    /// NATS cluster separated by commas.
    pub nats_url: String,
    /// This node's name in logs and on the bus (`[A-Za-z0-9_-]`, at most
    /// 64). Default: the host name and the RTMP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// `host:port` where other nodes reach this node's RTMP port (they
    /// pull its streams from there). Default: `server.rtmp_bind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_rtmp: Option<String>,
    /// How long a stream's entry in the cluster's stream registry lives
    /// without its node refreshing it (every third of it): a dead node's
    /// streams are gone from the registry this long after its death. The
    /// same on every node (the registry bucket's `max_age`).
    #[serde(default = "default_stream_ttl_secs")]
    pub stream_ttl_secs: u64,
    /// A NATS credentials file (JWT + NKey seed), passed to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_creds: Option<PathBuf>,
    /// A PEM file of the CA that signed the NATS server's certificate;
    /// set, the connection requires TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_tls_ca: Option<PathBuf>,
}

fn default_stream_ttl_secs() -> u64 {
    10
}

/// Parses an optional `IP:PORT` (see [`socket_addr`]).
fn opt_socket_addr<'de, D: Deserializer<'de>>(de: D) -> Result<Option<SocketAddr>, D::Error> {
    socket_addr(de).map(Some)
}

/// Parses `IP:PORT` with a message that says what is expected.
fn socket_addr<'de, D: Deserializer<'de>>(de: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(de)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid bind address {text:?}: expected IP:PORT, e.g. \"127.0.0.1:1935\" or \"[::]:1935\""
        ))
    })
}
