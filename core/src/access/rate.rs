//! Token buckets: how many operations a client may make per second, with
//! bursts. Time is passed in, so limits behave the same in the simulator.

use crate::time::Instant;
use alloc::collections::BTreeMap;
use core::net::IpAddr;

/// A rate with a burst allowance. `per_sec == 0` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained operations per second (0: no limit).
    pub per_sec: u32,
    /// Operations that may be spent at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    /// No limit at all.
    pub const UNLIMITED: RateLimit = RateLimit {
        per_sec: 0,
        burst: 0,
    };

    /// True if the limit is off.
    pub fn is_unlimited(&self) -> bool {
        self.per_sec == 0
    }

    fn capacity_milli(&self) -> u64 {
        u64::from(self.burst.max(1)) * 1000
    }
}

/// One client's budget: starts full, refills at `per_sec`, holds at most
/// `burst` operations. Counted in thousandths, so rates below one per
/// millisecond still refill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    milli: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(limit: RateLimit, now: Instant) -> Self {
        TokenBucket {
            milli: limit.capacity_milli(),
            last: now,
        }
    }

    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_since(self.last).as_millis();
        self.last = now.max(self.last);
        let gained = elapsed.saturating_mul(u64::from(limit.per_sec));
        self.milli = self
            .milli
            .saturating_add(gained)
            .min(limit.capacity_milli());
    }

    /// Spends `cost` operations if the budget holds them all; otherwise
    /// spends nothing and returns false. Unlimited always succeeds.
    pub fn take(&mut self, limit: RateLimit, now: Instant, cost: u32) -> bool {
        if limit.is_unlimited() {
            return true;
        }
        self.refill(limit, now);
        let cost = u64::from(cost) * 1000;
        if self.milli >= cost {
            self.milli -= cost;
            true
        } else {
            false
        }
    }

    /// True if the bucket is full at `now` (nothing to remember about it).
    pub fn is_full(&mut self, limit: RateLimit, now: Instant) -> bool {
        self.refill(limit, now);
        self.milli >= limit.capacity_milli()
    }
}

/// Connects per client address per second, server-wide. Remembers only
/// addresses whose bucket is not full, and at most `max_addresses` of them:
/// when that many addresses all connected within the last burst, newcomers
/// are let through (and counted from then on) rather than refused, so a
/// spread-out flood costs bounded memory without locking strangers out.
#[derive(Clone, Debug)]
pub struct ConnectRate {
    limit: RateLimit,
    max_addresses: usize,
    buckets: BTreeMap<IpAddr, TokenBucket>,
}

impl ConnectRate {
    /// A table for `limit` remembering at most `max_addresses` addresses.
    pub fn new(limit: RateLimit, max_addresses: usize) -> Self {
        ConnectRate {
            limit,
            max_addresses,
            buckets: BTreeMap::new(),
        }
    }

    /// Counts a connect from `addr` at `now`; false if over its budget.
    pub fn allow(&mut self, now: Instant, addr: IpAddr) -> bool {
        if self.limit.is_unlimited() {
            return true;
        }
        if !self.buckets.contains_key(&addr) && self.buckets.len() >= self.max_addresses {
            let limit = self.limit;
            self.buckets.retain(|_, b| !b.is_full(limit, now));
            if self.buckets.len() >= self.max_addresses {
                return true;
            }
        }
        let limit = self.limit;
        self.buckets
            .entry(addr)
            .or_insert_with(|| TokenBucket::full(limit, now))
            .take(limit, now, 1)
    }

    /// Addresses remembered now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_sec: 100,
        burst: 500,
    };

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::from_millis(1_000);
        let mut b = TokenBucket::full(LIMIT, t0);
        for _ in 0..500 {
            assert!(b.take(LIMIT, t0, 1));
        }
        assert!(!b.take(LIMIT, t0, 1));
        // 10 ms later: exactly one more.
        let t1 = Instant::from_millis(1_010);
        assert!(b.take(LIMIT, t1, 1));
        assert!(!b.take(LIMIT, t1, 1));
        // A batch is all or nothing.
        let t2 = Instant::from_millis(1_050);
        assert!(!b.take(LIMIT, t2, 5));
        assert!(b.take(LIMIT, t2, 4));
        // Never more than the burst, however long the pause.
        let t3 = Instant::from_millis(1_000_000);
        assert!(b.take(LIMIT, t3, 500));
        assert!(!b.take(LIMIT, t3, 1));
        // Time going backwards (it never should) grants nothing.
        assert!(!b.take(LIMIT, Instant::from_millis(5), 1));
    }

    #[test]
    fn sustained_rate_over_ten_seconds() {
        let mut b = TokenBucket::full(LIMIT, Instant::ZERO);
        let mut accepted = 0;
        // A flood: one attempt per millisecond for 10 s.
        for ms in 0..10_000 {
            if b.take(LIMIT, Instant::from_millis(ms), 1) {
                accepted += 1;
            }
        }
        // The burst plus 100/s.
        assert!((1_495..=1_500).contains(&accepted), "{accepted}");
    }

    #[test]
    fn unlimited_is_unlimited() {
        let mut b = TokenBucket::full(RateLimit::UNLIMITED, Instant::ZERO);
        for _ in 0..10_000 {
            assert!(b.take(RateLimit::UNLIMITED, Instant::ZERO, 1000));
        }
    }

    #[test]
    fn connects_per_address_are_bounded_in_memory() {
        let limit = RateLimit {
            per_sec: 2,
            burst: 2,
        };
        let mut rate = ConnectRate::new(limit, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::from_millis(0);
        assert!(rate.allow(now, a));
        assert!(rate.allow(now, a));
        assert!(!rate.allow(now, a));
        assert!(rate.allow(Instant::from_millis(500), a));
        for i in 2..10u8 {
            let other = IpAddr::from([10, 0, 0, i]);
            assert!(rate.allow(Instant::from_millis(500), other));
        }
        assert!(rate.tracked() <= 3);
        // Later, full buckets are forgotten to make room.
        assert!(rate.allow(Instant::from_millis(5_000), IpAddr::from([10, 0, 1, 1])));
        assert!(rate.tracked() <= 3);
    }
}
