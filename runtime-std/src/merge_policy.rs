//! How long a player's media may wait to be merged into one write: the
//! adaptive merge window.
//!
//! Holding media saves system calls (one vectored write per window instead
//! of one per message), and costs the held messages their wait. Holding is
//! worth it only when those system calls would be a noticeable share of the
//! server's CPU, i.e. when the server fans out many media messages a
//! second; below that the CPU is idle anyway and latency wins. So the
//! window follows the *demand*: media deliveries handed to connections per
//! second per worker thread, smoothed over about a second. Holding does
//! not change that figure (the same messages are delivered, in fewer
//! writes), so the window does not feed back on itself and does not
//! oscillate, as a window driven by the measured CPU would (holding lowers
//! the CPU, which would end the holding).
//!
//! - Below [`MergePolicy::hold_from`] deliveries/s the window is zero:
//!   media is written as soon as the connection's task runs (under load
//!   that already merges what arrived while it waited for its turn).
//! - From `hold_from` to [`MergePolicy::full_at`] it grows linearly to the
//!   ceiling, `streams.merge_write_ms`, which it never exceeds.
//! - `merge_write_ms = 0` means never hold; `merge_write_adaptive = false`
//!   holds for the whole ceiling whatever the load (the fixed window of
//!   earlier versions).
//!
//! Everything here is pure: the caller counts deliveries and measures the
//! elapsed time on its clock (tokio's, which the simulator drives), so a
//! simulated run decides exactly the same way every time. The thresholds
//! and the measurements that chose them are in docs/architecture.md
//! ("Adaptive merging").

use std::time::Duration;

/// Media deliveries per second per worker thread from which media is held
/// for the whole ceiling (`streams.merge_write_busy_per_sec`'s default).
pub const DEFAULT_FULL_AT: u64 = 60_000;

/// Weight of a new sample in the smoothed rate, in 1/1024ths (a quarter:
/// with samples every 250 ms the rate follows a change within about a
/// second).
const NEW_SAMPLE_WEIGHT: u64 = 256;

/// The merge window's rule: its ceiling, and the load at which it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergePolicy {
    /// The longest media may wait (`streams.merge_write_ms`); zero: never.
    pub ceiling: Duration,
    /// False: always the whole ceiling (the fixed window).
    pub adaptive: bool,
    /// Deliveries per second per worker from which the window is the
    /// whole ceiling. Holding starts at two thirds of it.
    pub full_at: u64,
}

impl MergePolicy {
    /// Deliveries per second per worker below which media is never held:
    /// two thirds of [`MergePolicy::full_at`].
    pub fn hold_from(&self) -> u64 {
        self.full_at / 3 * 2
    }

    /// How long media may wait after a connection's last write, at `load`.
    /// Never longer than the ceiling; zero if the ceiling is zero.
    pub fn window(&self, load: Load) -> Duration {
        if self.ceiling.is_zero() || !self.adaptive {
            return self.ceiling;
        }
        let from = self.hold_from();
        let full = self.full_at.max(from + 1);
        let rate = load.per_sec_per_worker;
        if rate <= from {
            return Duration::ZERO;
        }
        if rate >= full {
            return self.ceiling;
        }
        // Linear between the two thresholds, in whole microseconds.
        let ceiling_us = u64::try_from(self.ceiling.as_micros()).unwrap_or(u64::MAX);
        let share = u128::from(rate - from);
        let span = u128::from(full - from);
        let us = u128::from(ceiling_us) * share / span;
        Duration::from_micros(u64::try_from(us).unwrap_or(ceiling_us))
    }
}

/// The server's media load, smoothed: what [`MergePolicy::window`] reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Media deliveries per second per worker thread.
    pub per_sec_per_worker: u64,
}

/// What the server counted since the previous sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Media deliveries handed to connections.
    pub deliveries: u64,
    /// Time since the previous sample, on the server's clock.
    pub elapsed: Duration,
    /// Worker threads that share the work (at least one is assumed).
    pub workers: usize,
}

impl Load {
    /// The load after `sample`: a moving average that gives the new
    /// sample a quarter of the weight. A sample over no time changes
    /// nothing.
    pub fn update(self, sample: Sample) -> Load {
        let elapsed_us = sample.elapsed.as_micros();
        if elapsed_us == 0 {
            return self;
        }
        let workers = u128::try_from(sample.workers.max(1)).unwrap_or(1);
        let rate = u128::from(sample.deliveries) * 1_000_000 / elapsed_us / workers;
        let rate = u64::try_from(rate).unwrap_or(u64::MAX);
        let old = u128::from(self.per_sec_per_worker) * u128::from(1024 - NEW_SAMPLE_WEIGHT);
        let new = u128::from(rate) * u128::from(NEW_SAMPLE_WEIGHT);
        Load {
            per_sec_per_worker: u64::try_from((old + new) / 1024).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS100: Duration = Duration::from_millis(100);

    fn adaptive(ceiling: Duration) -> MergePolicy {
        MergePolicy {
            ceiling,
            adaptive: true,
            full_at: 60_000,
        }
    }

    fn load(per_sec: u64) -> Load {
        Load {
            per_sec_per_worker: per_sec,
        }
    }

    #[test]
    fn an_idle_server_never_holds() {
        let policy = adaptive(MS100);
        for rate in [0, 1, 6_800, 34_000, 40_000] {
            assert_eq!(policy.window(load(rate)), Duration::ZERO, "{rate}/s");
        }
    }

    #[test]
    fn a_busy_server_holds_up_to_the_ceiling_and_never_beyond() {
        let policy = adaptive(MS100);
        assert_eq!(policy.window(load(60_000)), MS100);
        assert_eq!(policy.window(load(68_000)), MS100);
        assert_eq!(policy.window(load(u64::MAX)), MS100);
        assert_eq!(policy.window(load(50_000)), Duration::from_millis(50));
        let mut last = Duration::ZERO;
        for rate in (0..=120_000).step_by(500) {
            let w = policy.window(load(rate));
            assert!(w <= MS100, "{rate}/s: {w:?}");
            assert!(w >= last, "the window shrank at {rate}/s");
            last = w;
        }
    }

    #[test]
    fn zero_means_never_hold_whatever_the_load() {
        for adaptive_on in [true, false] {
            let policy = MergePolicy {
                ceiling: Duration::ZERO,
                adaptive: adaptive_on,
                full_at: 60_000,
            };
            assert_eq!(policy.window(load(u64::MAX)), Duration::ZERO);
            assert_eq!(policy.window(load(0)), Duration::ZERO);
        }
    }

    #[test]
    fn the_fixed_window_ignores_the_load() {
        let policy = MergePolicy {
            adaptive: false,
            ..adaptive(MS100)
        };
        assert_eq!(policy.window(load(0)), MS100);
        assert_eq!(policy.window(load(1_000_000)), MS100);
    }

    #[test]
    fn tiny_thresholds_do_not_divide_by_zero() {
        for full_at in [0, 1, 2, 3] {
            let policy = MergePolicy {
                full_at,
                ..adaptive(MS100)
            };
            assert_eq!(policy.window(load(0)), Duration::ZERO, "{full_at}");
            assert_eq!(policy.window(load(10)), MS100, "{full_at}");
        }
    }

    #[test]
    fn the_load_follows_the_rate_within_about_a_second() {
        let tick = |deliveries| Sample {
            deliveries,
            elapsed: Duration::from_millis(250),
            workers: 1,
        };
        // 1000 players at 68 messages/s: 17 000 deliveries per 250 ms.
        let mut l = Load::default();
        let mut steps = 0;
        while l.per_sec_per_worker < 60_000 {
            l = l.update(tick(17_000));
            steps += 1;
        }
        assert!(steps <= 8, "{steps} samples to reach the full window");
        for _ in 0..40 {
            l = l.update(tick(17_000));
        }
        assert!((67_000..=68_000).contains(&l.per_sec_per_worker), "{l:?}");
        // The players leave: the window closes within a few seconds.
        let mut steps = 0;
        while adaptive(MS100).window(l) > Duration::ZERO {
            l = l.update(tick(0));
            steps += 1;
        }
        assert!(steps <= 8, "{steps} samples to close the window");
    }

    #[test]
    fn the_load_is_per_worker_and_ignores_empty_samples() {
        let l = Load::default().update(Sample {
            deliveries: 1_000,
            elapsed: Duration::from_millis(250),
            workers: 4,
        });
        // 4000/s over 4 workers is 1000/s each; a quarter of it is taken.
        assert_eq!(l.per_sec_per_worker, 250);
        let same = l.update(Sample {
            deliveries: 5,
            elapsed: Duration::ZERO,
            workers: 0,
        });
        assert_eq!(same, l);
        let zero_workers = Load::default().update(Sample {
            deliveries: 1_000,
            elapsed: Duration::from_secs(1),
            workers: 0,
        });
        assert_eq!(zero_workers.per_sec_per_worker, 250, "one worker assumed");
    }
}
