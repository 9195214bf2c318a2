//! Merged writes (`streams.merge_write_ms`, runtime-std/src/server/): a
//! player's media leaves in bursts at most one window apart, nothing is
//! lost or reordered (the run's invariants), and shared-object changes are
//! not held back by the window. The adaptive window
//! (`streams.merge_write_adaptive`, runtime-std/src/merge_policy.rs) stays
//! closed on an idle server and opens under load, decided on the
//! simulator's clock.

use std::time::Duration;
use tern_sim::{ClientSpec, Report, Scenario, ServerTuning};

/// A publisher (a frame every 40 ms, audio with each) and one player,
/// with the fixed window of `merge_write_ms`.
fn run(merge_write_ms: u64) -> Report {
    run_tuned(ServerTuning {
        merge_write_ms,
        merge_write_adaptive: false,
        ..ServerTuning::default()
    })
}

fn run_tuned(tuning: ServerTuning) -> Report {
    let report = Scenario::new("merged_writes")
        .test("merged_writes", "media_leaves_in_bursts_one_window_apart")
        .tuning(tuning)
        .client(ClientSpec::publisher("r0", "cam").start_at(Duration::ZERO))
        .client(ClientSpec::player("r0", "cam").start_at(Duration::from_millis(200)))
        .log_events(true)
        .run(1);
    report.assert_ok();
    report
}

/// The virtual times (ms) at which the player's media arrived, one entry
/// per read that brought media.
fn media_arrivals(report: &Report) -> Vec<u64> {
    let player = report.logs.get(1).expect("the player's log");
    let mut at: Vec<u64> = player
        .iter()
        .filter(|line| line.contains(" media "))
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect();
    at.dedup();
    at
}

#[test]
fn media_leaves_in_bursts_one_window_apart() {
    let merged = media_arrivals(&run(100));
    let unmerged = media_arrivals(&run(0));
    let span = |a: &[u64]| a.last().unwrap_or(&0) - a.first().unwrap_or(&0);
    assert!(
        span(&merged) > 2_000,
        "the player played for seconds: {merged:?}"
    );
    // Without merging, every 40 ms frame is its own write; with 100 ms,
    // about one write per window (plus the one that opens each window).
    let per_sec = |a: &[u64]| a.len() as u64 * 1000 / span(a).max(1);
    assert!(
        per_sec(&unmerged) >= 20,
        "unmerged: {} writes/s",
        per_sec(&unmerged)
    );
    assert!(
        per_sec(&merged) <= 12,
        "merged: {} writes/s",
        per_sec(&merged)
    );
    // Held media never waits much longer than the window (the frame
    // interval plus link latency is the slack).
    eprintln!(
        "merged {} writes/s, unmerged {} writes/s, span {} ms",
        per_sec(&merged),
        per_sec(&unmerged),
        span(&merged)
    );
    let widest = merged.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(
        widest <= 100 + 40 + 20,
        "a gap of {widest} ms between bursts"
    );
}

/// Writes per second over the arrivals after the first `skip_ms` of play
/// (the adaptive window follows the load within about a second).
fn per_sec_after(arrivals: &[u64], skip_ms: u64) -> u64 {
    let first = arrivals.first().copied().unwrap_or(0);
    let late: Vec<u64> = arrivals
        .iter()
        .copied()
        .filter(|&t| t >= first + skip_ms)
        .collect();
    let span = late.last().unwrap_or(&0) - late.first().unwrap_or(&0);
    late.len() as u64 * 1000 / span.max(1)
}

#[test]
fn the_adaptive_window_holds_only_under_load() {
    // The default: one player's ~50 messages a second are far below the
    // load at which holding pays, so media is written as it comes.
    let idle = media_arrivals(&run_tuned(ServerTuning::default()));
    // The same stream on a server told that 30 deliveries a second per
    // worker is busy: the window opens to the whole 100 ms.
    let busy_tuning = ServerTuning {
        merge_write_busy_per_sec: 30,
        ..ServerTuning::default()
    };
    let busy = media_arrivals(&run_tuned(busy_tuning.clone()));
    let (idle_rate, busy_rate) = (per_sec_after(&idle, 1_500), per_sec_after(&busy, 1_500));
    eprintln!("adaptive: idle {idle_rate} writes/s, busy {busy_rate} writes/s");
    assert!(idle_rate >= 20, "idle: {idle_rate} writes/s, {idle:?}");
    assert!(busy_rate <= 12, "busy: {busy_rate} writes/s, {busy:?}");
    // Never beyond the ceiling.
    let widest = busy.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(
        widest <= 100 + 40 + 20,
        "a gap of {widest} ms between bursts"
    );
    // Decided on the simulator's clock: the same run, the same writes.
    assert_eq!(busy, media_arrivals(&run_tuned(busy_tuning)));
}
