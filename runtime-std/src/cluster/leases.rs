//! Leases on this node's registered publishes (docs/cluster.md, "Replace
//! across nodes").
//!
//! A publish registered in the cluster's stream registry holds a lease: it
//! may stay live only while the registry keeps confirming it. Each
//! successful write of its entry (the claim, then every refresh) renews
//! the lease from the moment the write was *sent*. [`watch`] ends a
//! publish whose lease has lapsed, on its own task, so that a registry
//! task waiting on an unreachable NATS cannot keep it alive.
//!
//! The other side of the contract is in [`super::streams`]: a takeover of
//! a publish on a node that does not answer goes ahead only
//! [`takeover_wait`] after the takeover's write. Every renewal of the old
//! publish's lease was sent before that write (a later one would have
//! failed its compare-and-set), so by then the lease has lapsed by
//! 2 × [`margin`] and the old publisher has been ended.

use crate::server::Shared;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::scope_path::ScopePath;
use tokio::time::Instant;
use tracing::warn;

/// How often [`watch`] looks for lapsed leases.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The distance between a lease's end and the TTL, and between the TTL
/// and a takeover's go-ahead: a quarter of the TTL, at most 500 ms.
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 4).min(Duration::from_millis(500))
}

/// How long a publish lasts without a renewal: the TTL less the margin
/// (and less [`watch`]'s check interval, so that it is ended by then).
pub fn length(ttl: Duration) -> Duration {
    ttl.saturating_sub(margin(ttl) + CHECK_EVERY)
}

/// How long a takeover that its old node did not answer waits after its
/// write: the TTL plus the margin.
pub fn takeover_wait(ttl: Duration) -> Duration {
    ttl + margin(ttl)
}

#[derive(Debug)]
struct Lease {
    renewed: Instant,
    scope: ScopePath,
    name: String,
}

/// The leases of this node's publishes, by registry key.
#[derive(Debug, Default)]
pub struct Leases(Mutex<BTreeMap<String, Lease>>);

impl Leases {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Lease>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A publish was granted on a write sent at `sent`.
    pub fn grant(&self, key: &str, sent: Instant, scope: &ScopePath, name: &str) {
        self.map().insert(
            key.to_owned(),
            Lease {
                renewed: sent,
                scope: scope.clone(),
                name: name.to_owned(),
            },
        );
    }

    /// A write sent at `sent` confirmed `key`'s publish. A lease that
    /// lapsed (or was given up) meanwhile is not revived.
    pub fn renew(&self, key: &str, sent: Instant) {
        if let Some(lease) = self.map().get_mut(key) {
            lease.renewed = lease.renewed.max(sent);
        }
    }

    /// `key`'s publish ended here.
    pub fn end(&self, key: &str) {
        self.map().remove(key);
    }

    /// Removes and returns the leases older than `length` at `now`.
    fn lapsed(&self, now: Instant, length: Duration) -> Vec<(String, Lease)> {
        let mut map = self.map();
        let keys: Vec<String> = map
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.renewed) >= length)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| map.remove(&k).map(|l| (k, l)))
            .collect()
    }
}

/// Ends the publishes whose lease lapsed, until dropped (aborted).
pub async fn watch(shared: Arc<Shared>, leases: Arc<Leases>, ttl: Duration) {
    let length = length(ttl);
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (key, lease) in leases.lapsed(Instant::now(), length) {
            warn!(stream = %key, "cluster: the stream registry did not confirm this node's publish for {length:?}; its publisher is ended");
            let now = shared.now();
            shared.with_hub(|hub| {
                hub.end_publish(
                    now,
                    &lease.scope,
                    &lease.name,
                    "lost its registration in the cluster (the stream registry did not answer)",
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_ends_before_a_takeover_may_go_ahead() {
        for secs in [2, 3, 10, 3600] {
            let ttl = Duration::from_secs(secs);
            // The old node's lease ends (and its check has run) at least
            // 2 × 250 ms before an unanswered takeover goes ahead.
            assert!(length(ttl) + CHECK_EVERY + Duration::from_millis(500) <= takeover_wait(ttl));
            assert!(
                length(ttl) >= ttl / 2,
                "{ttl:?}: a lease too short to refresh"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_keep_a_lease_and_ended_leases_stay_ended() {
        let leases = Leases::default();
        let scope = ScopePath::app("live").unwrap();
        let t0 = Instant::now();
        leases.grant("live.cam", t0, &scope, "cam");
        let length = Duration::from_secs(2);
        assert!(
            leases
                .lapsed(t0 + Duration::from_secs(1), length)
                .is_empty()
        );
        leases.renew("live.cam", t0 + Duration::from_secs(1));
        // A renewal sent earlier than the last one does not shorten it.
        leases.renew("live.cam", t0);
        assert!(
            leases
                .lapsed(t0 + Duration::from_millis(2900), length)
                .is_empty()
        );
        let lapsed = leases.lapsed(t0 + Duration::from_secs(3), length);
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].1.name, "cam");
        // Gone once lapsed: a late renewal does not bring it back.
        leases.renew("live.cam", t0 + Duration::from_secs(3));
        assert!(
            leases
                .lapsed(t0 + Duration::from_secs(60), length)
                .is_empty()
        );
        leases.grant("live.b", t0, &scope, "b");
        leases.end("live.b");
        assert!(
            leases
                .lapsed(t0 + Duration::from_secs(60), length)
                .is_empty()
        );
    }
}
