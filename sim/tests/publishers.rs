//! Stale publishers in the simulator: a publisher whose link is cut
//! (turmoil partition: no FIN, nothing retransmitted) comes back on a new
//! connection while the server still holds the dead one, and takes its
//! stream over (`publish_conflict = "replace"`); or, with a short
//! `publisher_idle_timeout_secs`, the dead one is dropped first and players
//! are told. Players stay connected throughout and every run is checked
//! like any other (order, timestamps, keyframe after every gap, recovery,
//! idle at the end) and is deterministic per seed.
//!
//! Replay one seed: `TERN_SIM_SEED=n cargo test -p tern-sim --test publishers`.

use std::time::Duration;
use tern_runtime_std::config::PublishConflictConfig;
use tern_sim::sweep::{assert_all_ok, sweep};
use tern_sim::{ClientSpec, Fault, Scenario, ServerTuning};

const PLAYERS: u64 = 3;

/// A publisher (client 0) and three players in one room; the publisher's
/// link is cut at 2 s for 2 s, and the connection it then gives up on is
/// left open, not closed (a device on a new network cannot send the FIN).
/// The server pings after 3 s of silence and gives up 3 s later (about
/// 8 s), so the publisher, which notices the silence after 3 s and
/// reconnects, finds its old connection still there.
fn stalled_publisher(name: &str, test: &str, tuning: ServerTuning) -> Scenario {
    let mut s = Scenario::new(name)
        .test("publishers", test)
        .tuning(ServerTuning {
            ping_interval_secs: 3,
            ..tuning
        })
        .client(
            ClientSpec::publisher("r0", "cam")
                .start_at(Duration::ZERO)
                .abandon_lost(),
        );
    for i in 0..PLAYERS {
        s = s.client(ClientSpec::player("r0", "cam").start_at(Duration::from_millis(100 + 10 * i)));
    }
    s.fault(
        Duration::from_secs(2),
        Fault::Partition {
            client: 0,
            for_: Duration::from_secs(2),
        },
    )
}

fn takeover() -> Scenario {
    stalled_publisher(
        "takeover",
        "a_returning_publisher_takes_over_and_players_stay",
        ServerTuning::default(),
    )
}

fn idle_drop() -> Scenario {
    stalled_publisher(
        "idle_drop",
        "a_stalled_publisher_is_dropped_and_players_are_told",
        ServerTuning {
            publisher_idle_timeout_secs: 1,
            publish_conflict: PublishConflictConfig::Reject,
            ..ServerTuning::default()
        },
    )
}

/// The publisher reconnects and is accepted at once, replacing its dead
/// connection: players get `PublishNotify` but never `UnpublishNotify`
/// (before the fix, a returning publisher got `BadName` until the server's
/// ping gave up on the dead connection, and players were told the stream
/// ended).
#[test]
fn a_returning_publisher_takes_over_and_players_stay() {
    let reports = sweep(&takeover(), 8);
    assert_all_ok(&reports);
    for r in &reports {
        let t = r.totals;
        assert!(t.reconnects >= 1, "seed {}: {t:?}", r.seed);
        assert_eq!(t.unpublish_notifies, 0, "seed {}: {t:?}", r.seed);
        assert!(t.publish_notifies >= PLAYERS, "seed {}: {t:?}", r.seed);
    }
}

/// With a 1 s idle timeout (and `reject`), the dead publisher is dropped
/// about 1 s after its last frame: players are told (`UnpublishNotify`)
/// and get `PublishNotify` when it is back.
#[test]
fn a_stalled_publisher_is_dropped_and_players_are_told() {
    let reports = sweep(&idle_drop(), 8);
    assert_all_ok(&reports);
    for r in &reports {
        let t = r.totals;
        assert!(t.unpublish_notifies >= PLAYERS, "seed {}: {t:?}", r.seed);
        assert!(t.publish_notifies >= PLAYERS, "seed {}: {t:?}", r.seed);
    }
}

#[test]
fn same_seed_same_trace() {
    for scenario in [takeover(), idle_drop()] {
        let a = scenario.run(11);
        let b = scenario.run(11);
        let name = scenario.name();
        a.assert_ok();
        assert_eq!(a.trace_hash, b.trace_hash, "{name}: same seed, same events");
        assert_eq!(a.timed_hash, b.timed_hash, "{name}: same seed, same times");
        assert_eq!(a.totals, b.totals, "{name}");
    }
}
