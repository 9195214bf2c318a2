//! The semantic rules of a configuration ([`Config::validate`]): names,
//! ranges and combinations that the schema alone cannot express.

use super::{Config, ConfigError, ConfigErrorKind, MAX_CHUNK_SIZE, MAX_SCOPE_DEPTH, MIN_TOKEN_LEN};
use tern_core::scope_path::validate_segment;

/// A semantic problem found by validation, before it is located.
pub(super) struct Problem {
    /// Key path from the root.
    pub(super) key: Vec<String>,
    /// Point at the key itself rather than its value (for map keys such as
    /// app names).
    pub(super) at_key: bool,
    pub(super) kind: ConfigErrorKind,
}

impl Config {
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

    pub(super) fn problems(&self) -> Vec<Problem> {
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
            &["streams", "merge_write_busy_per_sec"],
            self.streams.merge_write_busy_per_sec,
            1,
            big,
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
        if let Some(cluster) = &self.cluster {
            let urls: Vec<&str> = cluster.nats_url.split(',').map(str::trim).collect();
            if urls.iter().any(|u| {
                !(u.starts_with("nats://") || u.starts_with("tls://")) || u.len() <= "nats://".len()
            }) {
                invalid(
                    &["cluster", "nats_url"],
                    "must be nats://host:port or tls://host:port (comma-separated for several)"
                        .to_owned(),
                );
            }
            if let Some(id) = &cluster.node_id
                && (id.is_empty()
                    || id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            {
                invalid(
                    &["cluster", "node_id"],
                    "must be 1 to 64 characters of [A-Za-z0-9_-]".to_owned(),
                );
            }
            if !(2..=3600).contains(&cluster.stream_ttl_secs) {
                invalid(
                    &["cluster", "stream_ttl_secs"],
                    "must be 2 to 3600".to_owned(),
                );
            }
            if let Some(addr) = &cluster.advertise_rtmp
                && !addr
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            {
                invalid(
                    &["cluster", "advertise_rtmp"],
                    "must be host:port".to_owned(),
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
        if let Some(path) = &self.tls.extra_ca {
            let connector = crate::relay::connect::TokioConnector::new(Some(path), true);
            if let Some(why) = connector.tls_error() {
                invalid(&["tls", "extra_ca"], why.to_owned());
            }
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
