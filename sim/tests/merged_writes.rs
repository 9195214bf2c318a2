//! Merged writes (`streams.merge_write_ms`, runtime-std/src/server.rs): a
//! player's media leaves in bursts at most one window apart, nothing is
//! lost or reordered (the run's invariants), and shared-object changes are
//! not held back by the window.

use std::time::Duration;
use tern_sim::{ClientSpec, Report, Scenario, ServerTuning};

/// A publisher (a frame every 40 ms, audio with each) and one player.
fn run(merge_write_ms: u64) -> Report {
    let report = Scenario::new("merged_writes")
        .test("merged_writes", "media_leaves_in_bursts_one_window_apart")
        .tuning(ServerTuning {
            merge_write_ms,
            ..ServerTuning::default()
        })
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
