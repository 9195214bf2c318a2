//! What one measurement found: one JSON line per record on standard
//! output, so scripts can collect runs and `tern-load report` can compare
//! them.

use serde::{Deserialize, Serialize};

/// One measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Record {
    /// One step of a media run.
    Media(MediaStep),
    /// A shared-object (or Redis pub/sub) run.
    So(SoRun),
    /// An idle-connections run.
    Idle(IdleRun),
}

/// Which process ran out of CPU first.
/// One second of a media step's window ([`MediaStep::timeline`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LagSecond {
    /// Seconds since the window's start.
    pub second: usize,
    /// Frames received by every player in that second.
    pub frames: u64,
    /// Of them, more than 500 ms behind the publisher's schedule.
    pub late_frames: u64,
    /// The largest lag of a frame received in that second, ms.
    pub max_lag_ms: f64,
    /// The server's CPU in about that second, fraction of one core.
    pub server_cpu: f64,
    /// The server's threads' time on a run queue in that second (runnable,
    /// not running), fraction of one core: high when another job took the
    /// CPU the server wanted.
    #[serde(default)]
    pub server_wait: f64,
    /// CPU of the load tool's players' thread in that second.
    #[serde(default)]
    pub tool_cpu: f64,
    /// Run-queue time of the load tool's players' thread in that second.
    #[serde(default)]
    pub tool_wait: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Saturated {
    /// The server used (almost) its whole core.
    Server,
    /// The load tool used (almost) its whole core.
    LoadTool,
}

/// CPU demand (running or runnable, as a fraction of one core) above which
/// a process counts as saturated.
pub const SATURATED: f64 = 0.9;

/// One step (player count) of a media run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaStep {
    /// Server label (`tern`, `nginx-rtmp`).
    pub server: String,
    /// Stream bitrate, kbit/s.
    pub bitrate_kbps: u64,
    /// Players asked for.
    pub players: usize,
    /// Players receiving media at the end of the window.
    pub playing: usize,
    /// Players that failed or were disconnected so far.
    pub failed: usize,
    /// Length of the measurement window, s.
    pub window_secs: f64,
    /// Bytes all players read in the window.
    pub delivered_bytes: u64,
    /// Frames (audio + video) all players received in the window.
    pub frames: u64,
    /// Frames players missed in the window (sequence-number gaps).
    pub lost_frames: u64,
    /// Lag behind the publisher's schedule (ms): median over all frames.
    pub lag_p50_ms: f64,
    /// 99th percentile.
    pub lag_p99_ms: f64,
    /// Maximum.
    pub lag_max_ms: f64,
    /// Mean lag in the second half of the window minus the first half (ms).
    pub lag_growth_ms: f64,
    /// Added latency (ms): from the publisher handing a frame to its
    /// connection to a player receiving it, both on the load tool's clock;
    /// median over all frames of the window (0 in records made before it
    /// was measured).
    #[serde(default)]
    pub added_p50_ms: f64,
    /// 99th percentile.
    #[serde(default)]
    pub added_p99_ms: f64,
    /// 99.9th percentile.
    #[serde(default)]
    pub added_p999_ms: f64,
    /// Chat during video: shared-object changes delivered in the window
    /// to players that also play the stream (0 when not measured).
    #[serde(default)]
    pub chat_deliveries: u64,
    /// Their latency (ms), the writer's send time to the player's
    /// receipt: median.
    #[serde(default)]
    pub chat_p50_ms: f64,
    /// 99th percentile.
    #[serde(default)]
    pub chat_p99_ms: f64,
    /// Maximum.
    #[serde(default)]
    pub chat_max_ms: f64,
    /// Most the publisher fell behind its own schedule in the window (ms).
    pub publisher_late_ms: f64,
    /// Per-player spread of bytes received in the window: min, median, max.
    pub player_bytes: [u64; 3],
    /// Per-player spread of the largest lag in the window (ms).
    pub player_max_lag_ms: [f64; 3],
    /// The window second by second: frames, late frames (> 500 ms behind
    /// the schedule), the largest lag, the server's CPU (a stall shows as
    /// late frames in a few seconds; the CPU says whether the server was
    /// busy or idle meanwhile).
    #[serde(default)]
    pub timeline: Vec<LagSecond>,
    /// Server CPU time in the window, s.
    pub server_cpu_secs: f64,
    /// Server CPU as a fraction of one core.
    pub server_cpu: f64,
    /// CPU of the load tool's players' thread, fraction of one core.
    pub tool_cpu: f64,
    /// Server CPU demand (running + waiting for a core) as a fraction of
    /// one core: the saturation signal on a machine shared with other jobs.
    pub server_demand: f64,
    /// CPU demand of the load tool's players' thread (the publisher has a
    /// thread of its own, not counted).
    pub tool_demand: f64,
    /// Server RSS before any client connected, bytes.
    pub server_rss_base: u64,
    /// Server RSS while the publisher streamed alone, before the first
    /// player (mean over a GOP), bytes; 0 if not measured.
    #[serde(default)]
    pub server_rss_stream: u64,
    /// Server RSS at the end of the window, bytes.
    pub server_rss: u64,
    /// Server CPU-seconds per delivered GB (10^9 bytes).
    pub cpu_secs_per_gb: f64,
    /// (RSS − base RSS) / players, bytes: everything the stream made the
    /// server hold, the publisher's state and the GOP cache included.
    pub rss_per_player: f64,
    /// (RSS − RSS with the stream alone) / players, bytes: what the players
    /// cost above the one publishing stream. `None` if not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_per_player_above_stream: Option<f64>,
    /// No lag growth, no lost frames, no failed players.
    pub sustained: bool,
    /// Which process was at its core's limit, if any.
    pub saturated: Option<Saturated>,
    /// Media messages (audio and video frames) the publisher sent in the
    /// window.
    #[serde(default)]
    pub messages_sent: u64,
    /// Heap allocations the server made in the window (from its
    /// `/metrics`, `--metrics-url`; a `count-allocations` build of tern).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations: Option<u64>,
    /// Bytes the server asked of its allocator in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_bytes: Option<u64>,
}

impl MediaStep {
    /// Fills in the derived fields: per-GB CPU, per-player RSS, whether
    /// the step was sustained and what saturated.
    pub fn derive(&mut self) {
        self.cpu_secs_per_gb = if self.delivered_bytes == 0 {
            f64::INFINITY
        } else {
            self.server_cpu_secs / (self.delivered_bytes as f64 / 1e9)
        };
        self.rss_per_player = self.server_rss.saturating_sub(self.server_rss_base) as f64
            / self.players.max(1) as f64;
        self.rss_per_player_above_stream = (self.server_rss_stream > 0).then(|| {
            self.server_rss.saturating_sub(self.server_rss_stream) as f64
                / self.players.max(1) as f64
        });
        let expected = self.frames + self.lost_frames;
        let lost_share = if expected == 0 {
            1.0
        } else {
            self.lost_frames as f64 / expected as f64
        };
        self.sustained = self.playing == self.players
            && self.failed == 0
            && lost_share <= 0.001
            && self.lag_growth_ms <= 200.0
            && self.lag_p99_ms <= 1000.0;
        self.saturated = if self.tool_demand >= SATURATED {
            Some(Saturated::LoadTool)
        } else if self.server_demand >= SATURATED {
            Some(Saturated::Server)
        } else {
            None
        };
    }
}

/// A shared-object fan-out run (RTMP shared object or Redis pub/sub).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoRun {
    /// Server label (`tern`, `redis`).
    pub server: String,
    /// Writers.
    pub writers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// Changes per second per writer (0: as fast as deliveries allow).
    pub rate: f64,
    /// Messages each writer may have undelivered (closed loop only).
    pub window: u32,
    /// Value size, bytes.
    pub value_bytes: usize,
    /// Length of the measurement window, s.
    pub window_secs: f64,
    /// Changes the writers sent in the window.
    pub sent: u64,
    /// Changes delivered to subscribers in the window.
    pub delivered: u64,
    /// Delivered changes per second.
    pub delivered_per_sec: f64,
    /// Delivery latency percentiles, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Maximum.
    pub latency_max_ms: f64,
    /// Server CPU as a fraction of one core.
    pub server_cpu: f64,
    /// Load tool CPU as a fraction of one core.
    pub tool_cpu: f64,
    /// Server CPU demand (running + waiting), fraction of one core.
    pub server_demand: f64,
    /// Load tool CPU demand.
    pub tool_demand: f64,
    /// Server RSS at the end, bytes.
    pub server_rss: u64,
    /// Connections that failed.
    pub failed: usize,
    /// Share of subscribers and writers asked to be WebSocket clients
    /// (tern only; 0 in older records).
    #[serde(default)]
    pub ws_share: f64,
    /// Subscribers that were WebSocket clients (the rest RTMP).
    #[serde(default)]
    pub ws_subscribers: usize,
    /// Writers that were WebSocket clients (the rest RTMP).
    #[serde(default)]
    pub ws_writers: usize,
    /// Changes delivered to WebSocket subscribers in the window (included
    /// in `delivered`).
    #[serde(default)]
    pub ws_delivered: u64,
    /// Subscribers that received no change in the window.
    #[serde(default)]
    pub starved_subscribers: usize,
    /// Delivery latency to RTMP subscribers only, ms (tern runs with RTMP
    /// subscribers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmp_latency_p50_ms: Option<f64>,
    /// 99th percentile, RTMP subscribers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmp_latency_p99_ms: Option<f64>,
    /// Delivery latency to WebSocket subscribers only, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_latency_p50_ms: Option<f64>,
    /// 99th percentile, WebSocket subscribers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_latency_p99_ms: Option<f64>,
}

/// An idle-connections run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdleRun {
    /// Server label.
    pub server: String,
    /// Connections asked for.
    pub connections: usize,
    /// Connections that completed `connect`.
    pub connected: usize,
    /// Connections that failed.
    pub failed: usize,
    /// Server RSS before, bytes.
    pub server_rss_base: u64,
    /// Server RSS with every connection open, bytes.
    pub server_rss: u64,
    /// (RSS − base) / connected, bytes.
    pub rss_per_connection: f64,
    /// Load tool RSS with every connection open, bytes.
    pub tool_rss: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> MediaStep {
        MediaStep {
            server: "tern".into(),
            bitrate_kbps: 600,
            players: 100,
            playing: 100,
            failed: 0,
            window_secs: 10.0,
            delivered_bytes: 2_000_000_000,
            frames: 100_000,
            lost_frames: 0,
            lag_p50_ms: 1.0,
            lag_p99_ms: 5.0,
            lag_max_ms: 9.0,
            lag_growth_ms: 0.5,
            added_p50_ms: 0.5,
            added_p99_ms: 4.0,
            added_p999_ms: 8.0,
            chat_deliveries: 0,
            chat_p50_ms: 0.0,
            chat_p99_ms: 0.0,
            chat_max_ms: 0.0,
            publisher_late_ms: 0.1,
            player_bytes: [1, 2, 3],
            player_max_lag_ms: [1.0, 2.0, 3.0],
            timeline: Vec::new(),
            server_cpu_secs: 3.0,
            server_cpu: 0.3,
            tool_cpu: 0.5,
            server_demand: 0.4,
            tool_demand: 0.95,
            server_rss_base: 1_000_000,
            server_rss_stream: 2_000_000,
            server_rss: 3_000_000,
            cpu_secs_per_gb: 0.0,
            rss_per_player: 0.0,
            rss_per_player_above_stream: None,
            sustained: false,
            saturated: None,
            messages_sent: 400,
            allocations: Some(2000),
            allocated_bytes: Some(1 << 20),
        }
    }

    #[test]
    fn derives_and_round_trips() {
        let mut s = step();
        s.derive();
        assert!((s.cpu_secs_per_gb - 1.5).abs() < 1e-9);
        assert!((s.rss_per_player - 20_000.0).abs() < 1e-9);
        assert_eq!(s.rss_per_player_above_stream, Some(10_000.0));
        assert!(s.sustained);
        assert_eq!(s.saturated, Some(Saturated::LoadTool));
        let line = serde_json::to_string(&Record::Media(s.clone())).unwrap();
        assert!(line.starts_with(r#"{"mode":"media","server":"tern""#));
        assert_eq!(
            serde_json::from_str::<Record>(&line).unwrap(),
            Record::Media(s)
        );
        let mut old = serde_json::to_value(Record::Media(step())).unwrap();
        for field in [
            "messages_sent",
            "allocations",
            "allocated_bytes",
            "server_rss_stream",
            "rss_per_player_above_stream",
        ] {
            old.as_object_mut().unwrap().remove(field);
        }
        let Record::Media(mut old) = serde_json::from_value(old).unwrap() else {
            panic!("not media")
        };
        assert_eq!((old.messages_sent, old.allocations), (0, None));
        old.derive();
        assert_eq!(old.rss_per_player_above_stream, None, "not measured then");
        // An SO record from before the WebSocket fields.
        let old_so = r#"{"mode":"so","server":"tern","writers":10,"subscribers":100,"rate":10.0,"window":4,"value_bytes":128,"window_secs":8.0,"sent":800,"delivered":80000,"delivered_per_sec":10000.0,"latency_p50_ms":0.5,"latency_p99_ms":2.0,"latency_max_ms":3.0,"server_cpu":0.1,"tool_cpu":0.2,"server_demand":0.1,"tool_demand":0.2,"server_rss":1000,"failed":0}"#;
        let Record::So(old_so) = serde_json::from_str(old_so).unwrap() else {
            panic!("not so")
        };
        assert_eq!((old_so.ws_share, old_so.ws_subscribers), (0.0, 0));
        assert_eq!(old_so.ws_latency_p99_ms, None);
        let mut lagging = step();
        lagging.lag_growth_ms = 500.0;
        lagging.derive();
        assert!(!lagging.sustained);
    }
}
