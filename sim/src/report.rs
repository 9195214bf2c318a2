//! What a run found: violations, the trace hash, and the numbers the
//! summary table shows.

use std::fmt;

/// Which invariant a violation broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// turmoil stopped the run (a client failed or time ran out).
    SimFailed,
    /// Something panicked (client, server task or hub).
    Panic,
    /// The client could not parse what the server sent.
    Protocol,
    /// A shared-object change was skipped, repeated or reordered.
    SoVersion,
    /// The server refused an operation it should have accepted.
    SoRefused,
    /// An acknowledgement that matches no write.
    SoAck,
    /// A write of the client was never answered while connected.
    WriteUnanswered,
    /// A subscriber's view differs from the server's or another's.
    SoView,
    /// A client was not connected and synced at the check.
    NotRecovered,
    /// A frame came twice or out of order.
    MediaOrder,
    /// Video resumed after a gap without a keyframe.
    MediaGap,
    /// A frame's timestamp went backwards.
    TimestampBackwards,
    /// A re-sent sequence header carried an old timestamp.
    HeaderTimestampBackwards,
    /// A player reading at full speed was disconnected as too slow right
    /// after it started playing.
    UnfairDisconnect,
    /// Something other than the apps was left once everyone had left.
    NotIdle,
    /// A connection the server should have dropped is still open.
    LeakedConnection,
    /// `/api/stats` could not be read or disagrees with the clients.
    Stats,
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Simulated time (ms since the start).
    pub at_ms: u64,
    /// Client name, `server` or `observer`.
    pub who: String,
    /// Which rule.
    pub kind: ViolationKind,
    /// What exactly.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>6} ms] {:<8} {:?}: {}",
            self.at_ms, self.who, self.kind, self.detail
        )
    }
}

/// Totals over all clients of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Shared-object change events delivered to subscribers other than the
    /// writer (acknowledgements not counted).
    pub changes_delivered: u64,
    /// Own batches acknowledged.
    pub acks: u64,
    /// Broadcast messages delivered.
    pub messages: u64,
    /// Frames (audio and video) players received.
    pub frames_delivered: u64,
    /// Frames players missed, from the gaps in the counters they received.
    pub frames_dropped: u64,
    /// Longest gap one player saw, in frames (the players' view of the
    /// deepest queue the server had to cut).
    pub max_gap: u64,
    /// Media messages dropped by the server (`/api/stats`, at the check).
    pub server_dropped: u64,
    /// Subscribers the server disconnected for lagging (`/api/stats`).
    pub lag_disconnects: u64,
    /// Connections lost and re-established by clients.
    pub reconnects: u64,
    /// `Op::Stamp` broadcasts received (by every receiver).
    pub stamps_delivered: u64,
    /// Longest time an `Op::Stamp` broadcast took to reach a receiver, ms.
    pub max_stamp_latency_ms: u64,
    /// `NetStream.Play.PublishNotify` statuses players got before the
    /// check (a publisher started, or took a live name over).
    pub publish_notifies: u64,
    /// `NetStream.Play.UnpublishNotify` statuses players got before the
    /// check (a publisher left or was dropped; not sent on a takeover).
    pub unpublish_notifies: u64,
    /// Cluster runs: writes refused because the writer's node was cut off
    /// the bus.
    pub refusals: u64,
    /// Cluster runs: messages the bus sequenced.
    pub sequenced: u64,
    /// Cluster runs: clients that were on another node than their home
    /// one at the check (they moved after a crash or a lost connection).
    pub moved: u64,
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// FNV-1a over every client's observed events: per client and per
    /// channel (connection, each shared object, each message stream), the
    /// content of every event in order.
    pub trace_hash: u64,
    /// FNV-1a over every client's observed events with their times, in
    /// order: equal only if the runs were identical tick for tick.
    pub timed_hash: u64,
    /// Rules broken.
    pub violations: Vec<Violation>,
    /// Violations matching a known, reported bug the scenario tolerates.
    pub tolerated: Vec<Violation>,
    /// Numbers for the summary.
    pub totals: Totals,
    /// The command that replays this run.
    pub repro: String,
    /// Per client, every event in words (empty unless the scenario keeps
    /// logs: [`Scenario::log_events`](crate::Scenario::log_events)).
    pub logs: Vec<Vec<String>>,
    /// Per client, how long each `Op::Stamp` broadcast it received took
    /// (simulated ms), in order of arrival.
    pub stamp_latencies_ms: Vec<Vec<u64>>,
}

impl Report {
    /// True if no rule was broken.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Panics with the violations and the command that reproduces the run.
    pub fn assert_ok(&self) {
        if !self.is_ok() {
            panic!("{self}");
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} seed {}: {} violation(s) ({} tolerated as known bugs), trace {:016x}",
            self.scenario,
            self.seed,
            self.violations.len(),
            self.tolerated.len(),
            self.trace_hash
        )?;
        for v in self.violations.iter().take(30) {
            writeln!(f, "  {v}")?;
        }
        if self.violations.len() > 30 {
            writeln!(f, "  … {} more", self.violations.len() - 30)?;
        }
        writeln!(f, "reproduce with:\n  {}", self.repro)
    }
}
