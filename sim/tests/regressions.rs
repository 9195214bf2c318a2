//! Bugs the simulator found in the server, each kept twice as a regression
//! test: as a small focused scenario, and as the seed of the mixed sweep
//! that first showed it. Both are fixed (see each test's doc for how).

use std::time::Duration;
use tern_sim::{ClientSpec, Fault, Scenario, ServerTuning};

/// A publisher from the start and one player that joins 4 s later, when
/// the stream is older than `max_lag_ms` (1.5 s in the simulator's
/// default tuning; 5 s in the server's default configuration).
fn late_joiner() -> Scenario {
    Scenario::new("late_joiner")
        .test("regressions", "late_joiner_is_not_cut_as_slow")
        .client(ClientSpec::publisher("r0", "cam").start_at(Duration::ZERO))
        .client(ClientSpec::player("r0", "cam").start_at(Duration::from_secs(4)))
}

/// Fixed bug: core hub delivered the cached sequence headers (and metadata) to a
/// late joiner, and re-sends them after a cut-back, with the timestamps
/// they were published with (`Hub::send_join_state`, and the
/// `needs_headers` branch of `Hub::media`). `Outbox::lag_with` measures lag
/// from the oldest queued media timestamp — now the header's — so the
/// joiner's queue spans the stream's whole age: every push of the GOP is a
/// cut-back and after `max_cutbacks` the joiner is closed "subscriber too
/// slow" in the very tick it started playing, over and over. Fixed in
/// `Outbox::lag_with` (sequence headers and metadata are not timeline) and
/// by stamping resent headers like the frame they precede.
#[test]
fn late_joiner_is_not_cut_as_slow() {
    late_joiner().run(1).assert_ok();
}

/// Seed 5 of the mixed sweep, where players that rejoined after a fault
/// were cut as too slow at join (`UnfairDisconnect`).
#[test]
fn mixed_seed_5_rejoining_players_are_not_cut() {
    Scenario::mixed("mixed", 20, 3)
        .test("regressions", "mixed_seed_5_rejoining_players_are_not_cut")
        .run(5)
        .assert_ok();
}

/// A player whose link is cut for 2.5 s: turmoil's TCP loses what was in
/// flight and does not retransmit, as when a peer vanishes; the server's
/// writes to it block for good once the send window is used up.
fn vanished_player() -> Scenario {
    Scenario::new("vanished_player")
        .test("regressions", "vanished_player_is_dropped")
        .tuning(ServerTuning {
            max_lag_ms: 60_000,
            ..ServerTuning::default()
        })
        .client(ClientSpec::publisher("r0", "cam").start_at(Duration::ZERO))
        .client(ClientSpec::player("r0", "cam").start_at(Duration::from_millis(100)))
        .fault(
            Duration::from_secs(2),
            Fault::Partition {
                client: 1,
                for_: Duration::from_millis(2_500),
            },
        )
}

/// Fixed bug: runtime-std `server::run_rtmp` awaited `writer.write_all` outside
/// its `select!`, with no timeout. A peer that vanished (or never reads)
/// pins the task there: the ping timeout never fires, the hub's close
/// (`HubEvent::Closing` pokes a `Notify` nobody awaits) cannot reach it,
/// so the socket, the task and the hub's connection — still subscribed,
/// still playing — stay forever: ghost subscribers, a room that never goes
/// idle. Fixed: writes are bounded (`server.write_timeout_secs`) and raced against the
/// hub giving up on the connection (`given_up`).
#[test]
fn vanished_player_is_dropped() {
    vanished_player().run(1).assert_ok();
}

/// Seed 3 of the mixed sweep, where two partitioned players left ghost
/// subscribers and a room that never went idle.
#[test]
fn mixed_seed_3_partitioned_players_are_dropped() {
    Scenario::mixed("mixed", 20, 3)
        .test(
            "regressions",
            "mixed_seed_3_partitioned_players_are_dropped",
        )
        .run(3)
        .assert_ok();
}
