//! How a connection's task ended, typed to the end: the protocol
//! connection's own [`CloseReason`] or what happened to the socket. Logged
//! once per connection and counted by kind for `/metrics`
//! (`tern_connections_closed_total{reason=…}`).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use tern_core::connection::{CloseReason, Failure};

/// Why a connection's task ended.
#[derive(Debug)]
pub enum Ended<E> {
    /// The protocol connection closed (see its reason).
    Closed(CloseReason<E>),
    /// The client closed the socket.
    ByClient,
    /// Reading the socket failed.
    ReadFailed(io::Error),
    /// Writing to the socket did not go through.
    Write(WriteEnd),
}

/// Why writing to a connection's socket ended it.
#[derive(Debug)]
pub enum WriteEnd {
    /// The write failed.
    Failed(io::Error),
    /// The client read nothing for this long (s).
    Stalled { secs: u64 },
    /// The hub gave up on the client (it stopped reading its notices).
    GivenUp,
}

impl fmt::Display for WriteEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteEnd::Failed(e) => write!(f, "write failed: {e}"),
            WriteEnd::Stalled { secs } => write!(f, "client stopped reading for {secs}s"),
            WriteEnd::GivenUp => f.write_str("the hub gave up on a client that does not read"),
        }
    }
}

impl<E: Failure> Ended<E> {
    /// True if the end is worth a warning: a protocol failure or timeout.
    /// Sockets that fail or stall are the network's business, and orderly
    /// closes are not failures.
    pub fn is_failure(&self) -> bool {
        matches!(self, Ended::Closed(reason) if reason.is_failure())
    }

    /// The `reason` label it is counted under.
    pub fn label(&self) -> &'static str {
        match self {
            Ended::Closed(reason) => reason.kind().label(),
            Ended::ByClient => "client",
            Ended::ReadFailed(_) | Ended::Write(WriteEnd::Failed(_)) => "io",
            Ended::Write(WriteEnd::Stalled { .. }) => "write_stalled",
            Ended::Write(WriteEnd::GivenUp) => "given_up",
        }
    }
}

impl<E: fmt::Display> fmt::Display for Ended<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Closed(reason) => write!(f, "{reason}"),
            Ended::ByClient => f.write_str("closed by the client"),
            Ended::ReadFailed(e) => write!(f, "read failed: {e}"),
            Ended::Write(end) => write!(f, "{end}"),
        }
    }
}

/// Every `reason` label, in the order `/metrics` lists them.
pub const LABELS: [&str; 9] = [
    "server",
    "rejected",
    "peer",
    "timeout",
    "protocol",
    "client",
    "io",
    "write_stalled",
    "given_up",
];

/// Connections closed so far, by [`Ended::label`].
#[derive(Debug, Default)]
pub struct CloseCounts {
    counts: [AtomicU64; LABELS.len()],
}

impl CloseCounts {
    /// Counts one end.
    pub fn record<E: Failure>(&self, ended: &Ended<E>) {
        let label = ended.label();
        if let Some(i) = LABELS.iter().position(|l| *l == label)
            && let Some(count) = self.counts.get(i)
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every label with its count (zeros included).
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, u64> {
        LABELS
            .iter()
            .zip(&self.counts)
            .map(|(label, count)| ((*label).to_owned(), count.load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::rtmp::RtmpError;

    #[test]
    fn every_end_has_a_listed_label_and_is_counted() {
        let ends: Vec<Ended<RtmpError>> = vec![
            Ended::Closed(CloseReason::Server {
                reason: "bye".into(),
            }),
            Ended::Closed(CloseReason::Failed(RtmpError::Unresponsive {
                silent_ms: 1,
            })),
            Ended::Closed(CloseReason::Failed(RtmpError::CommandBeforeConnect(
                "x".into(),
            ))),
            Ended::ByClient,
            Ended::ReadFailed(io::ErrorKind::ConnectionReset.into()),
            Ended::Write(WriteEnd::Stalled { secs: 30 }),
            Ended::Write(WriteEnd::GivenUp),
        ];
        let counts = CloseCounts::default();
        for end in &ends {
            assert!(LABELS.contains(&end.label()), "{end}");
            counts.record(end);
        }
        let snapshot = counts.snapshot();
        assert_eq!(snapshot.len(), LABELS.len());
        let count = |label: &str| snapshot[label];
        assert_eq!(count("server"), 1);
        assert_eq!(count("timeout"), 1);
        assert_eq!(count("protocol"), 1);
        assert_eq!(count("client"), 1);
        assert_eq!(count("io"), 1);
        assert_eq!(count("write_stalled"), 1);
        assert_eq!(count("given_up"), 1);
        assert_eq!(count("rejected") + count("peer"), 0);
        assert!(ends[1].is_failure() && ends[2].is_failure());
        assert!(!ends[0].is_failure() && !ends[3].is_failure());
        use tern_core::connection::CloseKind::*;
        for kind in [Server, Rejected, Peer, Timeout, Protocol] {
            assert!(LABELS.contains(&kind.label()), "{kind:?}");
        }
    }
}
