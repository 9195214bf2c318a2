//! Reconnect delays: exponential with jitter, from 1 s up to 30 s.
//!
//! Attempt `n` (counted from 0 since the relay last got through) waits a
//! delay drawn uniformly from `[b/2, b]` with `b = min(2 s · 2ⁿ, 30 s)`:
//! 1–2 s, 2–4 s, 4–8 s, 8–16 s, then 15–30 s for good. Half of each delay is
//! random, so relays cut off together (a target restarting) do not come
//! back in step. The randomness is passed in ([`Backoff::next`]), so the
//! simulator's runs stay reproducible per seed.

use std::time::Duration;

/// The shortest delay.
pub const MIN: Duration = Duration::from_secs(1);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(30);

/// The reconnect schedule of one relay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// A schedule whose next delay is the first (1–2 s).
    pub fn new() -> Self {
        Backoff::default()
    }

    /// Failures since the last [`reset`](Self::reset).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over (the relay got through: published or playing).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt, `random` choosing where in its
    /// range; counts the attempt.
    pub fn next(&mut self, random: u64) -> Duration {
        let ceiling = (MIN * 2)
            .checked_mul(1u32 << self.attempt.min(16))
            .map_or(MAX, |d| d.min(MAX));
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let span = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        (half + Duration::from_millis(random % (span + 1))).max(MIN)
    }
}

/// A small deterministic generator (xorshift64*) for the jitter, seeded
/// per relay.
#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator from `seed` (any value; 0 is mapped to a fixed odd one).
    pub fn new(seed: u64) -> Self {
        Jitter(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_their_ranges_up_to_thirty_seconds() {
        let ranges = [
            (1, 2),
            (2, 4),
            (4, 8),
            (8, 16),
            (15, 30),
            (15, 30),
            (15, 30),
        ];
        for random in [0u64, 1, 777, u64::MAX, 123_456_789] {
            let mut b = Backoff::new();
            for (n, (lo, hi)) in ranges.iter().enumerate() {
                let d = b.next(random);
                assert!(
                    d >= Duration::from_secs(*lo) && d <= Duration::from_secs(*hi),
                    "attempt {n}, random {random}: {d:?}"
                );
            }
            assert_eq!(b.attempts(), 7);
            for _ in 0..100 {
                assert!(b.next(random) <= MAX);
            }
            b.reset();
            assert!(b.next(random) <= Duration::from_secs(2));
        }
    }

    #[test]
    fn jitter_spreads_relays_cut_off_together() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 1..=20u64 {
            let mut j = Jitter::new(seed);
            let mut b = Backoff::new();
            b.next(j.next_u64());
            seen.insert(b.next(j.next_u64()).as_millis());
        }
        // Twenty relays draw (almost) twenty different second delays.
        assert!(seen.len() >= 18, "{seen:?}");
        let mut a = Jitter::new(5);
        let mut b = Jitter::new(5);
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
