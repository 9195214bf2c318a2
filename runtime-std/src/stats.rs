//! What the server reports about itself: a [`StatsSnapshot`] taken from a
//! [`StatsSource`] (the hub, later), served as JSON at `/api/stats` and in
//! the Prometheus text format at `/metrics`.
//!
//! Prometheus metrics are server-wide totals only: per-scope or per-stream
//! labels would let clients create unbounded numbers of time series. The
//! per-scope detail is in the JSON.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Open connections by protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionCounts {
    /// RTMP connections (after the handshake).
    pub rtmp: u64,
    /// WebSocket connections (after the upgrade).
    pub websocket: u64,
    /// FLV players (HTTP-FLV and WS-FLV), once their play was asked for.
    pub flv: u64,
}

/// One live scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScopeStats {
    /// `/app/room`.
    pub path: String,
    /// Connections whose scope this is.
    pub connections: u64,
}

/// One live stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    /// Scope path the stream lives in.
    pub scope: String,
    /// Stream name.
    pub name: String,
    /// A publisher is attached (players may wait for one).
    pub publishing: bool,
    /// Players attached.
    pub subscribers: u64,
}

/// One shared object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedObjectStats {
    /// Scope path the object lives in.
    pub scope: String,
    /// Object name.
    pub name: String,
    /// Version after the last applied change.
    pub version: u32,
    /// Subscribed connections (RTMP and WebSocket).
    pub subscribers: u64,
    /// Saved to the store.
    pub persistent: bool,
}

/// One relay (docs/relay.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// Unique while the server runs.
    pub id: u64,
    /// `push` or `pull`.
    pub kind: &'static str,
    /// `scope/name` of the local stream.
    pub stream: String,
    /// The far end (query left out).
    pub url: String,
    /// `config` or `api`.
    pub source: &'static str,
    /// `connecting`, `live`, `waiting` or `stopped`.
    pub state: &'static str,
    /// Bytes written to the far end.
    pub bytes_out: u64,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Connections after the first.
    pub reconnects: u64,
    /// Why the last connection failed.
    pub last_error: Option<String>,
}

impl RelayStats {
    /// The stats of one relay.
    pub fn of(info: &crate::relay::RelayInfo) -> RelayStats {
        RelayStats {
            id: info.id,
            kind: info.kind.as_str(),
            stream: info.stream.clone(),
            url: info.url.clone(),
            source: match info.source {
                crate::relay::Source::Config => "config",
                crate::relay::Source::Api => "api",
                crate::relay::Source::Cluster => "cluster",
            },
            state: info.state.as_str(),
            bytes_out: info.bytes_out,
            bytes_in: info.bytes_in,
            reconnects: info.reconnects,
            last_error: info.last_error.clone(),
        }
    }
}

/// Server-wide relay counters of one kind (they only grow).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RelayTotals {
    /// Bytes written to far ends.
    pub bytes_out: u64,
    /// Bytes read from far ends.
    pub bytes_in: u64,
    /// Reconnects.
    pub reconnects: u64,
}

/// Everything `/metrics` and `/api/stats` report, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Open connections by protocol.
    pub connections: ConnectionCounts,
    /// Live scopes (apps and rooms), in path order.
    pub scopes: Vec<ScopeStats>,
    /// Live streams.
    pub streams: Vec<StreamStats>,
    /// Shared objects in memory.
    pub shared_objects: Vec<SharedObjectStats>,
    /// Bytes read from clients since start, all protocols.
    pub bytes_in: u64,
    /// Bytes written to clients since start, all protocols.
    pub bytes_out: u64,
    /// Media messages dropped from slow subscribers' queues since start.
    pub media_dropped: u64,
    /// Subscribers disconnected for staying too far behind, since start.
    pub lag_disconnects: u64,
    /// Recorded files completed (`on_record_done`).
    pub recordings_done: u64,
    /// Recordings stopped by an error (a disk that fails or does not keep up).
    pub recordings_failed: u64,
    /// The merge window in force, µs (`streams.merge_write_adaptive`:
    /// zero while the server is idle enough; see `merge_policy`).
    pub merge_window_us: u64,
    /// The media load that sets it: media deliveries per second per
    /// worker thread, smoothed.
    pub media_load_per_sec: u64,
    /// Connections closed since start, by reason (`server`, `rejected`,
    /// `peer`, `timeout`, `protocol`, `client`, `io`, `write_stalled`,
    /// `given_up`).
    pub closes: BTreeMap<String, u64>,
    /// The relays running (push and pull).
    pub relays: Vec<RelayStats>,
    /// Relay counters since start: `push`, `pull`.
    pub relay_totals: [RelayTotals; 2],
}

/// Anything that can report the server's state (the hub, a test fixture).
/// Called on the HTTP task for every `/metrics` or `/api/stats` request, so
/// it should be cheap and must not block for long.
pub trait StatsSource: Send + Sync + 'static {
    /// The current state.
    fn snapshot(&self) -> StatsSnapshot;
}

/// A source with nothing to report (used until the hub is wired in).
#[derive(Clone, Copy, Debug, Default)]
pub struct EmptyStats;

impl StatsSource for EmptyStats {
    fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot::default()
    }
}

impl<T: StatsSource + ?Sized> StatsSource for Arc<T> {
    fn snapshot(&self) -> StatsSnapshot {
        (**self).snapshot()
    }
}

impl<F> StatsSource for F
where
    F: Fn() -> StatsSnapshot + Send + Sync + 'static,
{
    fn snapshot(&self) -> StatsSnapshot {
        self()
    }
}

/// The `Content-Type` of [`render_prometheus`]'s output.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl StatsSnapshot {
    /// Renders the Prometheus text exposition format 0.0.4.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);

        metric(
            "tern_build_info",
            "gauge",
            "Build information; always 1.",
            &[(concat!("{version=\"", env!("CARGO_PKG_VERSION"), "\"}"), 1)],
        );
        metric(
            "tern_connections",
            "gauge",
            "Open client connections by protocol.",
            &[
                ("{protocol=\"rtmp\"}", self.connections.rtmp),
                ("{protocol=\"websocket\"}", self.connections.websocket),
                ("{protocol=\"flv\"}", self.connections.flv),
            ],
        );
        metric(
            "tern_scopes",
            "gauge",
            "Live scopes (apps and rooms).",
            &[("", count(self.scopes.len()))],
        );
        let persistent = self.shared_objects.iter().filter(|s| s.persistent).count();
        metric(
            "tern_shared_objects",
            "gauge",
            "Shared objects in memory, by persistence.",
            &[
                ("{persistent=\"true\"}", count(persistent)),
                (
                    "{persistent=\"false\"}",
                    count(self.shared_objects.len() - persistent),
                ),
            ],
        );
        metric(
            "tern_shared_object_subscribers",
            "gauge",
            "Shared-object subscriptions, summed over all shared objects.",
            &[("", self.shared_objects.iter().map(|s| s.subscribers).sum())],
        );
        metric(
            "tern_streams",
            "gauge",
            "Live streams (with a publisher or waiting players).",
            &[("", count(self.streams.len()))],
        );
        metric(
            "tern_stream_publishers",
            "gauge",
            "Streams with a publisher attached.",
            &[(
                "",
                count(self.streams.iter().filter(|s| s.publishing).count()),
            )],
        );
        metric(
            "tern_stream_subscribers",
            "gauge",
            "Players attached, summed over all streams.",
            &[("", self.streams.iter().map(|s| s.subscribers).sum())],
        );
        metric(
            "tern_bytes_in_total",
            "counter",
            "Bytes read from clients.",
            &[("", self.bytes_in)],
        );
        metric(
            "tern_bytes_out_total",
            "counter",
            "Bytes written to clients.",
            &[("", self.bytes_out)],
        );
        metric(
            "tern_media_dropped_total",
            "counter",
            "Media messages dropped from slow subscribers' queues.",
            &[("", self.media_dropped)],
        );
        metric(
            "tern_lag_disconnects_total",
            "counter",
            "Subscribers disconnected for falling too far behind.",
            &[("", self.lag_disconnects)],
        );
        metric(
            "tern_recordings_total",
            "counter",
            "Recorded files completed, and recordings stopped by an error.",
            &[
                ("{result=\"done\"}", self.recordings_done),
                ("{result=\"failed\"}", self.recordings_failed),
            ],
        );
        metric(
            "tern_merge_window_microseconds",
            "gauge",
            "How long a player's media may wait to be merged into one write now.",
            &[("", self.merge_window_us)],
        );
        metric(
            "tern_media_load_per_second",
            "gauge",
            "Media deliveries per second per worker thread (smoothed): what sets the merge window.",
            &[("", self.media_load_per_sec)],
        );
        let closes: Vec<(String, u64)> = self
            .closes
            .iter()
            .map(|(reason, n)| (format!("{{reason=\"{reason}\"}}"), *n))
            .collect();
        let closes: Vec<(&str, u64)> = closes.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        metric(
            "tern_connections_closed_total",
            "counter",
            "Connections closed, by reason.",
            &closes,
        );
        let mut relays = Vec::new();
        for kind in ["push", "pull"] {
            for state in ["connecting", "live", "waiting"] {
                let n = self
                    .relays
                    .iter()
                    .filter(|r| r.kind == kind && r.state == state)
                    .count();
                relays.push((format!("{{kind=\"{kind}\",state=\"{state}\"}}"), count(n)));
            }
        }
        let relays: Vec<(&str, u64)> = relays.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        metric(
            "tern_relays",
            "gauge",
            "Relays running, by kind and state (docs/relay.md).",
            &relays,
        );
        let [push, pull] = self.relay_totals;
        metric(
            "tern_relay_bytes_total",
            "counter",
            "Bytes relays wrote to (out) and read from (in) the far end.",
            &[
                ("{kind=\"push\",direction=\"out\"}", push.bytes_out),
                ("{kind=\"push\",direction=\"in\"}", push.bytes_in),
                ("{kind=\"pull\",direction=\"out\"}", pull.bytes_out),
                ("{kind=\"pull\",direction=\"in\"}", pull.bytes_in),
            ],
        );
        metric(
            "tern_relay_reconnects_total",
            "counter",
            "Relay connections after a relay's first.",
            &[
                ("{kind=\"push\"}", push.reconnects),
                ("{kind=\"pull\"}", pull.reconnects),
            ],
        );
        #[cfg(feature = "count-allocations")]
        {
            let heap = crate::alloc_count::totals();
            metric(
                "tern_heap_allocations_total",
                "counter",
                "Heap allocations (alloc and realloc calls) since start.",
                &[("", heap.allocations)],
            );
            metric(
                "tern_heap_allocated_bytes_total",
                "counter",
                "Bytes asked of the heap allocator since start.",
                &[("", heap.allocated_bytes)],
            );
            metric(
                "tern_heap_live_bytes",
                "gauge",
                "Bytes in heap blocks allocated and not yet freed.",
                &[("", heap.live_bytes)],
            );
        }
        out
    }

    /// The JSON document of `/api/stats`.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StatsSnapshot {
        StatsSnapshot {
            connections: ConnectionCounts {
                rtmp: 3,
                websocket: 2,
                flv: 4,
            },
            scopes: vec![
                ScopeStats {
                    path: "/chat".into(),
                    connections: 0,
                },
                ScopeStats {
                    path: "/chat/room1".into(),
                    connections: 5,
                },
            ],
            streams: vec![
                StreamStats {
                    scope: "/live".into(),
                    name: "cam".into(),
                    publishing: true,
                    subscribers: 2,
                },
                StreamStats {
                    scope: "/live".into(),
                    name: "waiting".into(),
                    publishing: false,
                    subscribers: 1,
                },
            ],
            shared_objects: vec![SharedObjectStats {
                scope: "/chat/room1".into(),
                name: "chat".into(),
                version: 7,
                subscribers: 4,
                persistent: false,
            }],
            bytes_in: 1000,
            bytes_out: 5000,
            media_dropped: 9,
            lag_disconnects: 1,
            recordings_done: 3,
            recordings_failed: 1,
            merge_window_us: 25_000,
            media_load_per_sec: 45_000,
            closes: [("timeout".into(), 2), ("client".into(), 5)].into(),
            relays: vec![RelayStats {
                id: 1,
                kind: "push",
                stream: "/live/cam".into(),
                url: "rtmp://a:1935/live".into(),
                source: "config",
                state: "live",
                bytes_out: 4096,
                bytes_in: 3100,
                reconnects: 2,
                last_error: Some("the target closed the connection".into()),
            }],
            relay_totals: [
                RelayTotals {
                    bytes_out: 8192,
                    bytes_in: 3100,
                    reconnects: 3,
                },
                RelayTotals::default(),
            ],
        }
    }

    #[test]
    fn prometheus_text_has_help_type_and_samples() {
        let text = sample().render_prometheus();
        for line in [
            "# HELP tern_connections Open client connections by protocol.",
            "# TYPE tern_connections gauge",
            "tern_connections{protocol=\"rtmp\"} 3",
            "tern_connections{protocol=\"websocket\"} 2",
            "tern_connections{protocol=\"flv\"} 4",
            "# TYPE tern_scopes gauge",
            "tern_scopes 2",
            "tern_shared_objects{persistent=\"true\"} 0",
            "tern_shared_objects{persistent=\"false\"} 1",
            "tern_shared_object_subscribers 4",
            "tern_streams 2",
            "tern_stream_publishers 1",
            "tern_stream_subscribers 3",
            "# TYPE tern_bytes_in_total counter",
            "tern_bytes_in_total 1000",
            "tern_bytes_out_total 5000",
            "tern_media_dropped_total 9",
            "tern_lag_disconnects_total 1",
            "tern_recordings_total{result=\"done\"} 3",
            "tern_recordings_total{result=\"failed\"} 1",
            "tern_merge_window_microseconds 25000",
            "tern_media_load_per_second 45000",
            "# TYPE tern_connections_closed_total counter",
            "tern_connections_closed_total{reason=\"client\"} 5",
            "tern_connections_closed_total{reason=\"timeout\"} 2",
            "# TYPE tern_relays gauge",
            "tern_relays{kind=\"push\",state=\"live\"} 1",
            "tern_relays{kind=\"pull\",state=\"waiting\"} 0",
            "tern_relay_bytes_total{kind=\"push\",direction=\"out\"} 8192",
            "tern_relay_bytes_total{kind=\"pull\",direction=\"in\"} 0",
            "tern_relay_reconnects_total{kind=\"push\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn every_sample_line_is_well_formed() {
        let text = sample().render_prometheus();
        let mut typed = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap().to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (name_labels, value) = line.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
            let name = name_labels.split('{').next().unwrap();
            assert!(name.starts_with("tern_"), "{line}");
            assert_eq!(typed.last().map(String::as_str), Some(name), "{line}");
        }
    }

    #[test]
    fn empty_snapshot_renders_zeros() {
        let text = EmptyStats.snapshot().render_prometheus();
        assert!(text.contains("\ntern_scopes 0\n"));
        assert!(text.contains("tern_connections{protocol=\"rtmp\"} 0"));
    }

    #[test]
    fn heap_counters_only_with_the_feature() {
        let text = EmptyStats.snapshot().render_prometheus();
        for name in [
            "tern_heap_allocations_total",
            "tern_heap_allocated_bytes_total",
            "tern_heap_live_bytes",
        ] {
            let present = text.lines().any(|l| l.starts_with(&format!("{name} ")));
            assert_eq!(present, cfg!(feature = "count-allocations"), "{name}");
        }
    }

    #[test]
    fn json_shape() {
        let json: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(json["connections"]["rtmp"], 3);
        assert_eq!(json["connections"]["flv"], 4);
        assert_eq!(json["scopes"][1]["path"], "/chat/room1");
        assert_eq!(json["scopes"][1]["connections"], 5);
        assert_eq!(json["streams"][0]["publishing"], true);
        assert_eq!(json["streams"][0]["subscribers"], 2);
        assert_eq!(json["shared_objects"][0]["version"], 7);
        assert_eq!(json["shared_objects"][0]["subscribers"], 4);
        assert_eq!(json["bytes_out"], 5000);
    }

    #[test]
    fn closures_and_arcs_are_sources() {
        let source = Arc::new(|| StatsSnapshot {
            bytes_in: 1,
            ..StatsSnapshot::default()
        });
        assert_eq!(source.snapshot().bytes_in, 1);
    }
}
