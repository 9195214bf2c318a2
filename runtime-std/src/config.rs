//! The server's configuration: built-in defaults, a TOML file, then CLI
//! overrides (applied by `main.rs`).
//!
//! Every key has a default, so an empty file (or no file) is a working
//! configuration. `docs/config.md` documents each key; keep the two in step.
//!
//! Loading reports *every* problem it can find, each with the 1-based line
//! and column it comes from, so `tern check-config` can print them all at
//! once:
//!
//! 1. syntax errors (all of them, using the parser's recovery; if there are
//!    any, nothing else is checked);
//! 2. unknown keys and wrong types, found by deserializing the document one
//!    key at a time (serde stops at the first error of a whole document);
//! 3. semantic errors ([`Config::validate`]): bad app names, out-of-range
//!    numbers, and so on, checked on the document without the keys of step
//!    2 and located through the parsed document's spans.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tern_core::scope_path::{NameError, validate_segment};
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

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
    /// How long media for a player may wait to be merged into one write
    /// (0 = write every message as it comes). Notices, statuses and replies
    /// never wait. See docs/config.md for the trade-off.
    pub merge_write_ms: u64,
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
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            handshake_timeout_secs: 10,
        }
    }
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

/// Where in the file an error is (both 1-based; the column counts
/// characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `source` (clamped to its end).
    pub fn of_offset(source: &str, offset: usize) -> Location {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = source.get(..offset).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before.get(line_start..).unwrap_or_default().chars().count() + 1,
        }
    }
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file is not valid TOML.
    Syntax(String),
    /// A key that does not exist, or a value of the wrong type (the
    /// deserializer's message).
    Schema(String),
    /// An app name that is not a valid scope segment.
    InvalidAppName { name: String, reason: NameError },
    /// `[apps]` configures no app at all.
    NoApps,
    /// A number outside its allowed range.
    OutOfRange { value: u64, min: u64, max: u64 },
    /// Any other invalid value.
    Invalid(String),
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigErrorKind::Syntax(m) => write!(f, "TOML syntax error: {m}"),
            ConfigErrorKind::Schema(m) => f.write_str(m),
            ConfigErrorKind::InvalidAppName { name, reason } => {
                write!(f, "invalid app name {name:?}: {reason}")
            }
            ConfigErrorKind::NoApps => f.write_str("at least one app must be configured"),
            ConfigErrorKind::OutOfRange { value, min, max } => {
                write!(
                    f,
                    "{value} is out of range: must be between {min} and {max}"
                )
            }
            ConfigErrorKind::Invalid(m) => f.write_str(m),
        }
    }
}

/// One problem with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where it is in the file; `None` for problems not from a file (for
    /// example an invalid CLI override).
    pub location: Option<Location>,
    /// Dotted key (`server.out_chunk_size`), when the error is about one.
    pub key: Option<String>,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    /// The message without the location: `key: what is wrong`.
    pub fn message(&self) -> String {
        match &self.key {
            Some(key) => format!("{key}: {}", self.kind),
            None => self.kind.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = self.location {
            write!(f, "{}:{}: ", at.line, at.column)?;
        }
        f.write_str(&self.message())
    }
}

impl std::error::Error for ConfigError {}

/// Why [`Config::load`] failed.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    Invalid {
        path: PathBuf,
        errors: Vec<ConfigError>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, error } => {
                write!(f, "{}: cannot read: {error}", path.display())
            }
            LoadError::Invalid { path, errors } => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{}:{e}", path.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// A semantic problem found by validation, before it is located.
struct Problem {
    /// Key path from the root.
    key: Vec<String>,
    /// Point at the key itself rather than its value (for map keys such as
    /// app names).
    at_key: bool,
    kind: ConfigErrorKind,
}

impl Config {
    /// Parses and validates a TOML document. Returns every error found,
    /// each with its line and column.
    pub fn from_toml_str(source: &str) -> Result<Config, Vec<ConfigError>> {
        let (root, syntax) = DeTable::parse_recoverable(source);
        if !syntax.is_empty() {
            let whole = 0..source.len();
            // Recovery often reports a cascade on the same line: keep the
            // first error of each line.
            let mut errors: Vec<ConfigError> = Vec::new();
            for e in &syntax {
                let at = Location::of_offset(source, e.span().unwrap_or(whole.clone()).start);
                if errors
                    .iter()
                    .any(|seen| seen.location.is_some_and(|l| l.line == at.line))
                {
                    continue;
                }
                errors.push(ConfigError {
                    location: Some(at),
                    key: None,
                    kind: ConfigErrorKind::Syntax(e.message().to_owned()),
                });
            }
            return Err(errors);
        }

        let mut errors = Vec::new();
        let mut bad_paths = Vec::new();
        for (key, value) in root.get_ref().iter() {
            schema_errors(
                source,
                &mut vec![key.clone()],
                value,
                &mut errors,
                &mut bad_paths,
            );
        }

        // Check the values of the rest too, so one run reports everything:
        // without the bad keys the document deserializes.
        let mut pruned = root.clone();
        for path in &bad_paths {
            remove_path(pruned.get_mut(), path);
        }
        match Config::deserialize(toml::de::Deserializer::from(pruned)) {
            Ok(config) => {
                for p in config.problems() {
                    let span = locate(root.get_ref(), &p.key, p.at_key);
                    errors.push(ConfigError {
                        location: span.map(|s| Location::of_offset(source, s.start)),
                        key: Some(p.key.join(".")),
                        kind: p.kind,
                    });
                }
                if errors.is_empty() {
                    return Ok(config);
                }
            }
            // Not expected once every failing key is removed; report it
            // rather than pass a config that did not deserialize.
            Err(e) if errors.is_empty() => errors.push(ConfigError {
                location: e.span().map(|s| Location::of_offset(source, s.start)),
                key: None,
                kind: ConfigErrorKind::Schema(e.message().to_owned()),
            }),
            Err(_) => {}
        }
        sort_by_location(&mut errors);
        Err(errors)
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let source = std::fs::read_to_string(path).map_err(|error| LoadError::Io {
            path: path.to_owned(),
            error,
        })?;
        Config::from_toml_str(&source).map_err(|errors| LoadError::Invalid {
            path: path.to_owned(),
            errors,
        })
    }

    /// Checks the semantic rules (for a configuration built in code or
    /// changed by CLI overrides; errors have no location).
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(problems
            .into_iter()
            .map(|p| ConfigError {
                location: None,
                key: Some(p.key.join(".")),
                kind: p.kind,
            })
            .collect())
    }

    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut range = |key: &[&str], value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                out.push(Problem {
                    key: key.iter().map(|k| (*k).to_owned()).collect(),
                    at_key: false,
                    kind: ConfigErrorKind::OutOfRange { value, min, max },
                });
            }
        };
        let big = u64::MAX;
        let s = &self.server;
        range(
            &["server", "out_chunk_size"],
            u64::from(s.out_chunk_size),
            1,
            u64::from(MAX_CHUNK_SIZE),
        );
        let sc = &self.scopes;
        range(
            &["scopes", "max_depth"],
            sc.max_depth as u64,
            0,
            MAX_SCOPE_DEPTH as u64,
        );
        range(
            &["scopes", "max_connections_per_scope"],
            sc.max_connections_per_scope as u64,
            1,
            big,
        );
        range(
            &["scopes", "max_connections_per_address"],
            sc.max_connections_per_address as u64,
            1,
            big,
        );
        let so = &self.shared_objects;
        range(&["shared_objects", "max_keys"], so.max_keys as u64, 1, big);
        range(
            &["shared_objects", "max_value_bytes"],
            so.max_value_bytes as u64,
            1,
            big,
        );
        range(
            &["shared_objects", "max_object_bytes"],
            so.max_object_bytes as u64,
            1,
            big,
        );
        range(
            &["streams", "subscriber_queue_bytes"],
            self.streams.subscriber_queue_bytes as u64,
            1,
            big,
        );
        range(
            &["streams", "merge_write_ms"],
            self.streams.merge_write_ms,
            0,
            1000,
        );
        range(
            &["tls", "handshake_timeout_secs"],
            self.tls.handshake_timeout_secs,
            1,
            3600,
        );
        range(
            &["websocket", "max_message_bytes"],
            self.websocket.max_message_bytes as u64,
            1,
            big,
        );

        let mut invalid = |key: &[&str], message: String| {
            out.push(Problem {
                key: key.iter().map(|k| (*k).to_owned()).collect(),
                at_key: false,
                kind: ConfigErrorKind::Invalid(message),
            });
        };
        if s.data_dir.as_os_str().is_empty() {
            invalid(&["server", "data_dir"], "must not be empty".to_owned());
        }
        // Port 0 (any free port) on both is fine: each gets its own.
        if s.rtmp_bind == s.http_bind && s.rtmp_bind.port() != 0 {
            invalid(
                &["server", "http_bind"],
                format!("same address as server.rtmp_bind ({})", s.rtmp_bind),
            );
        }
        let tls_ports = [("rtmps_bind", s.rtmps_bind), ("https_bind", s.https_bind)];
        for (key, bind) in tls_ports {
            let Some(bind) = bind else { continue };
            if self.tls.cert.is_none() || self.tls.key.is_none() {
                invalid(
                    &["server", key],
                    "needs a certificate: set tls.cert and tls.key".to_owned(),
                );
            }
            let others = [
                ("rtmp_bind", Some(s.rtmp_bind)),
                ("http_bind", Some(s.http_bind)),
                ("rtmps_bind", s.rtmps_bind),
                ("https_bind", s.https_bind),
            ];
            if bind.port() != 0
                && let Some((other, _)) = others
                    .iter()
                    .find(|(other, addr)| *other != key && *addr == Some(bind))
            {
                invalid(
                    &["server", key],
                    format!("same address as server.{other} ({bind})"),
                );
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            invalid(
                &[
                    "tls",
                    if self.tls.cert.is_some() {
                        "key"
                    } else {
                        "cert"
                    },
                ],
                "tls.cert and tls.key go together".to_owned(),
            );
        }
        for (key, token) in [
            ("admin_token", &self.http.admin_token),
            ("stats_token", &self.http.stats_token),
        ] {
            if let Some(token) = token
                && (token.len() < MIN_TOKEN_LEN || token.chars().any(|c| !c.is_ascii_graphic()))
            {
                invalid(
                    &["http", key],
                    format!(
                        "must be at least {MIN_TOKEN_LEN} printable ASCII characters without \
                         spaces (e.g. the output of `openssl rand -hex 32`)"
                    ),
                );
            }
        }
        if so.max_value_bytes > so.max_object_bytes {
            invalid(
                &["shared_objects", "max_value_bytes"],
                format!(
                    "larger than shared_objects.max_object_bytes ({})",
                    so.max_object_bytes
                ),
            );
        }
        if self.sessions.premium_query_key.is_empty() {
            invalid(
                &["sessions", "premium_query_key"],
                "must not be empty".to_owned(),
            );
        }
        if let Some(path) = &self.websocket.echo_path
            && (!path.starts_with('/') || path.len() < 2 || path.contains(['?', '#', ' ']))
        {
            invalid(
                &["websocket", "echo_path"],
                format!("{path:?} must be a request path like \"/echo\""),
            );
        }
        if !is_log_filter(&self.logging.level) {
            invalid(
                &["logging", "level"],
                format!(
                    "{:?} is not a level (off, error, warn, info, debug, trace) or a filter \
                     like \"info,tern_runtime_std=debug\"",
                    self.logging.level
                ),
            );
        }

        if self.apps.is_empty() {
            out.push(Problem {
                key: vec!["apps".to_owned()],
                at_key: true,
                kind: ConfigErrorKind::NoApps,
            });
        }
        if so.max_ops_per_sec > 0 && so.max_ops_burst == 0 {
            out.push(Problem {
                key: vec!["shared_objects".to_owned(), "max_ops_burst".to_owned()],
                at_key: false,
                kind: ConfigErrorKind::Invalid(
                    "must be at least 1 when max_ops_per_sec is set".to_owned(),
                ),
            });
        }
        for (name, app) in &self.apps {
            for (key, message) in app.problems() {
                out.push(Problem {
                    key: vec!["apps".to_owned(), name.clone(), key.to_owned()],
                    at_key: false,
                    kind: ConfigErrorKind::Invalid(message),
                });
            }
        }
        for name in self.apps.keys() {
            if let Err(reason) = validate_segment(name) {
                out.push(Problem {
                    key: vec!["apps".to_owned(), name.clone()],
                    at_key: true,
                    kind: ConfigErrorKind::InvalidAppName {
                        name: name.clone(),
                        reason,
                    },
                });
            }
        }
        out
    }
}

/// File order; errors without a location (none in practice) last.
fn sort_by_location(errors: &mut [ConfigError]) {
    errors.sort_by_key(|e| {
        e.location
            .map_or((usize::MAX, usize::MAX), |l| (l.line, l.column))
    });
}

/// True if `filter` is a level or comma-separated `[target=]level`
/// directives that `tracing_subscriber` accepts. Stricter than
/// `EnvFilter` alone, which takes any word as a target name (so a typo such
/// as `infp` would silently enable everything).
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let levels_ok = filter.split(',').all(|directive| {
        let level = directive.rsplit('=').next().unwrap_or_default().trim();
        LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level))
    });
    levels_ok
        && tracing_subscriber::EnvFilter::builder()
            .parse(filter)
            .is_ok()
}

/// Deserializes the document made of only `path = value` and records why it
/// fails; drills into tables so that each bad key gets its own error.
fn schema_errors<'i>(
    source: &str,
    path: &mut Vec<Spanned<DeString<'i>>>,
    value: &Spanned<DeValue<'i>>,
    errors: &mut Vec<ConfigError>,
    bad_paths: &mut Vec<Vec<String>>,
) {
    let Err(error) = Config::deserialize(toml::de::Deserializer::from(only(path, value))) else {
        return;
    };
    let before = errors.len();
    // Drill down only if the key itself is fine (the same key with an empty
    // table deserializes); otherwise the error is about this key.
    let empty = Spanned::new(value.span(), DeValue::Table(DeTable::new()));
    if let DeValue::Table(table) = value.get_ref()
        && path.len() < 4
        && Config::deserialize(toml::de::Deserializer::from(only(path, &empty))).is_ok()
    {
        for (key, inner) in table.iter() {
            path.push(key.clone());
            schema_errors(source, path, inner, errors, bad_paths);
            path.pop();
        }
    }
    if errors.len() == before {
        bad_paths.push(path.iter().map(|k| k.get_ref().to_string()).collect());
        let fallback = path.last().map_or(0, |k| k.span().start);
        let offset = error.span().map_or(fallback, |s| s.start);
        errors.push(ConfigError {
            location: Some(Location::of_offset(source, offset)),
            key: Some(
                path.iter()
                    .map(|k| k.get_ref().as_ref())
                    .collect::<Vec<&str>>()
                    .join("."),
            ),
            kind: ConfigErrorKind::Schema(error.message().to_owned()),
        });
    }
}

/// The document `{p0 = {p1 = {… = value}}}`, keeping the original spans.
fn only<'i>(path: &[Spanned<DeString<'i>>], value: &Spanned<DeValue<'i>>) -> Spanned<DeTable<'i>> {
    let mut inner = value.clone();
    for key in path.iter().skip(1).rev() {
        let mut table = DeTable::new();
        table.insert(key.clone(), inner);
        inner = Spanned::new(value.span(), DeValue::Table(table));
    }
    let mut root = DeTable::new();
    if let Some(first) = path.first() {
        root.insert(first.clone(), inner);
    }
    Spanned::new(value.span(), root)
}

/// Removes the entry at `path` (and nothing else) from `root`.
fn remove_path(root: &mut DeTable<'_>, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = root;
    for key in parents {
        match table.get_mut(key.as_str()).map(Spanned::get_mut) {
            Some(DeValue::Table(t)) => table = t,
            _ => return,
        }
    }
    table.remove(last.as_str());
}

/// The span of the value (or key) at `path` in the parsed document.
fn locate(root: &DeTable<'_>, path: &[String], at_key: bool) -> Option<Range<usize>> {
    let (last, parents) = path.split_last()?;
    let mut table = root;
    for key in parents {
        match table.get(key.as_str())?.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    let (key, value) = table.get_key_value(last.as_str())?;
    Some(if at_key { key.span() } else { value.span() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(source: &str) -> Vec<ConfigError> {
        Config::from_toml_str(source).expect_err("should be invalid")
    }

    fn line_of(e: &ConfigError) -> usize {
        e.location.expect("located").line
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.rtmp_bind.to_string(), "127.0.0.1:1935");
        assert_eq!(config.server.http_bind.to_string(), "127.0.0.1:8081");
        assert_eq!(config.apps.keys().collect::<Vec<_>>(), vec!["chat", "live"]);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn values_override_defaults_section_by_section() {
        let config = Config::from_toml_str(
            "[server]\nrtmp_bind = \"0.0.0.0:19350\"\n\n[apps.radio]\n\n[streams]\ngop_cache = false\n",
        )
        .unwrap();
        assert_eq!(config.server.rtmp_bind.to_string(), "0.0.0.0:19350");
        assert_eq!(config.server.http_bind.to_string(), "127.0.0.1:8081");
        assert_eq!(config.apps.keys().collect::<Vec<_>>(), vec!["radio"]);
        assert!(!config.streams.gop_cache);
        assert_eq!(config.streams.max_lag_ms, 5_000);
    }

    #[test]
    fn defaults_serialize_to_a_file_that_parses_back() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(Config::from_toml_str(&text).unwrap(), Config::default());
    }

    #[test]
    fn syntax_error_has_its_line() {
        let e = errors("[server]\nrtmp_bind = \"127.0.0.1:1935\"\nout_chunk_size = = 3\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(matches!(e[0].kind, ConfigErrorKind::Syntax(_)));
        assert_eq!(line_of(&e[0]), 3);
    }

    #[test]
    fn every_syntax_error_is_reported() {
        let e = errors("a = = 1\n[server\nb = \"unterminated\n");
        assert!(e.len() >= 2, "{e:?}");
        assert_eq!(line_of(&e[0]), 1);
        assert!(e.iter().any(|e| line_of(e) == 2));
    }

    #[test]
    fn unknown_keys_each_get_their_line() {
        let e = errors(
            "[server]\nrtmp_bind = \"127.0.0.1:1935\"\nrtmp_port = 1935\n\n[sessions]\nidle = 3\n\n[nope]\nx = 1\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(line_of(&e[0]), 3);
        assert_eq!(e[0].key.as_deref(), Some("server.rtmp_port"));
        assert!(
            e[0].message().contains("unknown field `rtmp_port`"),
            "{}",
            e[0]
        );
        assert_eq!(line_of(&e[1]), 6);
        assert_eq!(e[1].key.as_deref(), Some("sessions.idle"));
        assert_eq!(line_of(&e[2]), 8);
        assert_eq!(e[2].key.as_deref(), Some("nope"));
    }

    #[test]
    fn wrong_type_has_line_and_column() {
        let e = errors("[scopes]\nmax_depth = 2\nroom_idle_secs = \"soon\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(matches!(e[0].kind, ConfigErrorKind::Schema(_)));
        assert_eq!(
            e[0].location,
            Some(Location {
                line: 3,
                column: 18
            })
        );
        assert_eq!(e[0].key.as_deref(), Some("scopes.room_idle_secs"));
    }

    #[test]
    fn negative_number_is_a_type_error() {
        let e = errors("[scopes]\n\nmax_depth = -1\n");
        assert_eq!(line_of(&e[0]), 3);
    }

    #[test]
    fn bad_bind_address_has_its_line() {
        let e = errors("[server]\n\nhttp_bind = \"localhost\"\n");
        assert_eq!(e.len(), 1);
        assert_eq!(line_of(&e[0]), 3);
        assert!(e[0].message().contains("IP:PORT"), "{}", e[0]);
    }

    #[test]
    fn chunk_size_bounds() {
        let e = errors("[server]\nout_chunk_size = 0\n");
        assert_eq!(
            e[0].kind,
            ConfigErrorKind::OutOfRange {
                value: 0,
                min: 1,
                max: 2_147_483_647
            }
        );
        assert_eq!(line_of(&e[0]), 2);
        assert_eq!(e[0].key.as_deref(), Some("server.out_chunk_size"));

        let e = errors("\n\n[server]\nout_chunk_size = 2147483648\n");
        assert!(matches!(
            e[0].kind,
            ConfigErrorKind::OutOfRange {
                value: 2_147_483_648,
                ..
            }
        ));
        assert_eq!(line_of(&e[0]), 4);

        // beyond u32 is a type error, still located
        let e = errors("[server]\nout_chunk_size = 99999999999\n");
        assert_eq!(line_of(&e[0]), 2);

        assert!(Config::from_toml_str("[server]\nout_chunk_size = 2147483647\n").is_ok());
    }

    #[test]
    fn invalid_app_names_point_at_the_name() {
        let e = errors("[apps.live]\n\n[apps.\"..\"]\n[apps.\"a b\"]\n");
        assert_eq!(e.len(), 2, "{e:?}");
        // BTreeMap order: ".." < "a b"
        assert!(matches!(
            &e[0].kind,
            ConfigErrorKind::InvalidAppName { name, reason: NameError::DotSegment } if name == ".."
        ));
        assert_eq!(line_of(&e[0]), 3);
        assert_eq!(line_of(&e[1]), 4);
        assert_eq!(e[1].location.unwrap().column, 7);
    }

    #[test]
    fn no_apps_is_an_error() {
        let e = errors("# comment\napps = {}\n");
        assert_eq!(e[0].kind, ConfigErrorKind::NoApps);
        assert_eq!(line_of(&e[0]), 2);
    }

    #[test]
    fn several_semantic_errors_at_once() {
        let e = errors(
            "[server]\nout_chunk_size = 0\nhttp_bind = \"127.0.0.1:1935\"\n[logging]\nlevel = \"loud!!\"\n[websocket]\necho_path = \"echo\"\n",
        );
        let lines: Vec<usize> = e.iter().map(line_of).collect();
        assert_eq!(lines, vec![2, 3, 5, 7], "{e:?}");
    }

    #[test]
    fn schema_and_value_errors_are_reported_together() {
        let e =
            errors("[server]\nrtmp_port = 1\nout_chunk_size = 0\nhttp_bind = 5\n[apps.\"a b\"]\n");
        let keys: Vec<&str> = e.iter().filter_map(|e| e.key.as_deref()).collect();
        assert_eq!(
            keys,
            vec![
                "server.rtmp_port",
                "server.out_chunk_size",
                "server.http_bind",
                "apps.a b"
            ],
            "{e:?}"
        );
        let lines: Vec<usize> = e.iter().map(line_of).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
    }

    #[test]
    fn display_is_line_col_message() {
        let e = errors("[server]\nout_chunk_size = 0\n");
        assert_eq!(
            e[0].to_string(),
            "2:18: server.out_chunk_size: 0 is out of range: must be between 1 and 2147483647"
        );
    }

    #[test]
    fn premium_clients_get_the_longer_idle_timeout() {
        let s = SessionsConfig::default();
        assert_eq!(s.idle_timeout_for(""), Some(Duration::from_secs(900)));
        assert_eq!(
            s.idle_timeout_for("token=x&tier=premium"),
            Some(Duration::from_secs(10_800))
        );
        assert_eq!(
            s.idle_timeout_for("tier=basic"),
            Some(Duration::from_secs(900))
        );
        let never = SessionsConfig {
            idle_timeout_secs: 0,
            ..s
        };
        assert_eq!(never.idle_timeout_for(""), None);
    }

    #[test]
    fn location_counts_characters() {
        let src = "é = 1\nab";
        assert_eq!(Location::of_offset(src, 0), Location { line: 1, column: 1 });
        assert_eq!(Location::of_offset(src, 2), Location { line: 1, column: 2 });
        assert_eq!(Location::of_offset(src, 1), Location { line: 1, column: 1 });
        assert_eq!(Location::of_offset(src, 7), Location { line: 2, column: 1 });
        assert_eq!(
            Location::of_offset(src, 99),
            Location { line: 2, column: 3 }
        );
    }

    #[test]
    fn load_reports_missing_file() {
        let err = Config::load(Path::new("/nonexistent/tern.toml")).unwrap_err();
        assert!(matches!(err, LoadError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/tern.toml"));
    }
}
