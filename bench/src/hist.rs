//! A fixed-size log-linear histogram of microsecond values.
//!
//! 32 sub-buckets per power of two keep every recorded value within about
//! 3 % of the bucket it lands in, over the whole `u64` range, with no
//! allocation after construction: recording is one index computation and
//! one increment, cheap enough for every frame of every player.

/// Sub-bucket bits: 2^5 = 32 linear sub-buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are counted exactly, one bucket each.
const LINEAR: u64 = SUB * 2;
/// Enough buckets for `u64::MAX`.
const BUCKETS: usize = (LINEAR + (64 - SUB_BITS as u64 - 1) * SUB) as usize;

/// Counts of values in log-linear buckets.
#[derive(Clone, Debug)]
pub struct Hist {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    max: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist::new()
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // >= SUB_BITS + 1
    let m = (v >> (e - u64::from(SUB_BITS))) - SUB; // 0..SUB
    (LINEAR + (e - u64::from(SUB_BITS) - 1) * SUB + m) as usize
}

/// The smallest value that lands in bucket `i`.
fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let e = (i - LINEAR) / SUB + u64::from(SUB_BITS) + 1;
    let m = (i - LINEAR) % SUB;
    (SUB + m) << (e - u64::from(SUB_BITS))
}

impl Hist {
    /// An empty histogram.
    pub fn new() -> Self {
        Hist {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
        }
        self.count += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Forgets everything (keeps the allocation).
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.count = 0;
        self.sum = 0;
        self.max = 0;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest value recorded (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean (exact), 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value below which a fraction `q` (0..=1) of the values lie:
    /// the lower bound of the bucket holding that rank (never above the
    /// exact maximum). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if rank >= self.count {
            return self.max;
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return lower_bound(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut prev = 0;
        for v in (0..5000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            assert!(lower_bound(i) <= v);
            if v >= LINEAR {
                // within 1/32 of the value
                assert!(v - lower_bound(i) <= v / 32, "{v}");
            }
            if v < 5000 {
                assert!(i >= prev);
                prev = i;
            }
        }
        assert_eq!(lower_bound(index(64)), 64);
        assert_eq!(lower_bound(index(1 << 40)), 1 << 40);
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=1000 {
            h.record(v * 10);
        }
        let p50 = h.quantile(0.5);
        assert!((4850..=5000).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((9600..=9900).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.max(), 10_000);
        assert!((h.mean() - 5005.0).abs() < 1e-9);
        let mut g = Hist::new();
        g.merge(&h);
        assert_eq!(g.count(), 1000);
        g.clear();
        assert_eq!(g.count(), 0);
    }
}
