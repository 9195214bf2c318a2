//! Chat during video: a player whose media is backlogged (it reads slower
//! than the stream) still gets shared-object changes within a bound,
//! because the server sends notices ahead of queued media
//! (docs/architecture.md, "Notices ahead of media").
//!
//! Replay one seed: `TERN_SIM_SEED=n cargo test -p tern-sim --test chat_during_video`.

use std::time::Duration;
use tern_sim::sweep::{assert_all_ok, sweep};
use tern_sim::{ClientSpec, ObjectSpec, Op, Scenario, ServerTuning};

/// How often the chat client stamps a line, and for how long.
const EVERY: Duration = Duration::from_millis(250);
const FIRST: Duration = Duration::from_secs(1);
const LAST: Duration = Duration::from_secs(8);

/// Longest a stamped chat line may take to reach the backlogged player.
/// Its queued media in the outbox is overtaken; what is not is what lies
/// below the outbox: the simulated socket ([`TCP_CAPACITY`] writes) and a
/// write the connection task is blocked in. 5 seeds measured 1.5–1.9 s
/// (with the old single FIFO: see sim/README.md).
const BOUND: Duration = Duration::from_millis(2_500);

/// Writes a simulated connection holds unread before the server's writes
/// block (turmoil's default is 64; 4 models a small socket send buffer, so
/// the backlog builds up in the server's queues, where it can be
/// overtaken, and not in the socket).
const TCP_CAPACITY: usize = 4;

/// One room: a publisher, a player reading at full speed, a player reading
/// 12 KB/s (less than the stream's ~17.5 KB/s, so its media is always
/// backlogged and the server drops media for it), and a chat client that
/// broadcasts a time-stamped line on `chat` every 250 ms; everyone uses
/// `chat`. The simulator's default bounds (96 KiB queues, 1.5 s lag).
fn chat_during_video() -> Scenario {
    let chat = || vec![ObjectSpec::transient("chat")];
    let mut stamps = Vec::new();
    let mut at = FIRST;
    while at <= LAST {
        stamps.push((
            at,
            Op::Stamp {
                object: "chat".into(),
            },
        ));
        at += EVERY;
    }
    Scenario::new("chat_during_video")
        .test("chat_during_video", "chat_during_video_latency_is_bounded")
        .tuning(ServerTuning {
            // Production's ping interval: a ping waits behind the slow
            // player's socket backlog like media does, and at the
            // simulator's 2 s the player would be closed as unresponsive.
            ping_interval_secs: 30,
            ..ServerTuning::default()
        })
        .tcp_capacity(TCP_CAPACITY)
        .timeline(tern_sim::Timeline {
            // The slow player's goodbye waits behind its backlog: give the
            // room time to go idle (as the summary table does).
            idle_check_at: Duration::from_secs(22),
            ..Scenario::new("defaults").phases()
        })
        .client(
            ClientSpec::publisher("r0", "cam")
                .objects(chat())
                .start_at(Duration::ZERO),
        )
        .client(
            ClientSpec::player("r0", "cam")
                .objects(chat())
                .start_at(Duration::from_millis(100)),
        )
        .client(
            ClientSpec::player("r0", "cam")
                .objects(chat())
                .read_rate(12_000)
                .start_at(Duration::from_millis(110)),
        )
        .client(
            ClientSpec::chat("r0")
                .objects(chat())
                .script(stamps)
                .start_at(Duration::from_millis(120)),
        )
}

/// Clients, in the order [`chat_during_video`] adds them.
const SLOW_PLAYER: usize = 2;

#[test]
fn chat_during_video_latency_is_bounded() {
    let scenario = chat_during_video();
    let lines = ((LAST - FIRST).as_millis() / EVERY.as_millis() + 1) as usize;
    let reports = sweep(&scenario, 5);
    assert_all_ok(&reports);
    for r in &reports {
        let t = r.totals;
        let slow = &r.stamp_latencies_ms[SLOW_PLAYER];
        println!(
            "seed {}: backlogged player got {} of {lines} lines, slowest {:?} ms; media dropped by the server {}, frames missed by players {}, reconnects {}",
            r.seed,
            slow.len(),
            slow.iter().max(),
            t.server_dropped,
            t.frames_dropped,
            t.reconnects
        );
        assert!(
            t.server_dropped > 0 && t.frames_dropped > 0,
            "seed {}: the slow player's media must be backlogged: {t:?}",
            r.seed
        );
        for (i, got) in r.stamp_latencies_ms.iter().enumerate() {
            if i == SLOW_PLAYER {
                continue;
            }
            // Everyone else (the sender included: a broadcast reaches
            // every subscriber) gets every line at link speed.
            assert_eq!(got.len(), lines, "seed {} client {i}", r.seed);
            assert!(
                got.iter().all(|ms| *ms <= 100),
                "seed {} client {i}: {got:?}",
                r.seed
            );
        }
        // The backlogged player gets every line — or, when the server
        // dropped it for a write that made no progress (the simulator's
        // 2 s write timeout) and it came back, the lines sent while it was
        // connected — each within the bound.
        assert!(!slow.is_empty(), "seed {}", r.seed);
        if t.reconnects == 0 {
            assert_eq!(slow.len(), lines, "seed {}", r.seed);
        }
        let slowest = slow.iter().copied().max().unwrap_or(0);
        assert!(
            slowest <= BOUND.as_millis() as u64,
            "seed {}: a chat line took {slowest} ms to the backlogged player (bound {BOUND:?}); {}",
            r.seed,
            r.repro
        );
    }
}

#[test]
fn chat_during_video_is_deterministic() {
    let scenario = chat_during_video();
    let a = scenario.run(3);
    let b = scenario.run(3);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.timed_hash, b.timed_hash);
    assert_eq!(a.totals, b.totals);
    assert!(a.totals.stamps_delivered > 0);
}
