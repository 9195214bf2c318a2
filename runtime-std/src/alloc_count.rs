//! A counting global allocator, for the `count-allocations` build of the
//! `tern` binary: it shows under load how many heap allocations the server
//! makes per relayed media message (`tern-load media --metrics-url`).
//!
//! [`CountingAlloc`] wraps [`System`] and adds one to a counter per
//! allocation (`alloc`, `alloc_zeroed` and `realloc` calls) and the bytes
//! asked for. Frees are not counted: the question is how often the server
//! goes to the allocator, and the totals only ever grow (Prometheus
//! counters). The counters are relaxed [`AtomicU64`]s, so counting costs two
//! uncontended atomic adds per allocation and orders nothing.
//!
//! The binary installs it with `#[global_allocator]` (see `main.rs`) only
//! when the feature is on; [`totals`] reads the counters, and `/metrics`
//! prints them as `tern_heap_allocations_total` and
//! `tern_heap_allocated_bytes_total`. In a build that has the feature but
//! does not install the allocator (the library's users), both stay 0.

// The only unsafe code of the crate: `GlobalAlloc` is an unsafe trait.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting allocations.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAlloc;

/// What has been allocated since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocTotals {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub allocations: u64,
    /// Bytes those calls asked for (for `realloc`, the new size).
    pub allocated_bytes: u64,
}

/// The counters now. Relaxed loads: the two values may be a few allocations
/// apart from each other if other threads allocate meanwhile.
pub fn totals() -> AllocTotals {
    AllocTotals {
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        allocated_bytes: ALLOCATED_BYTES.load(Ordering::Relaxed),
    }
}

fn count(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// implements `GlobalAlloc` correctly, and returns what `System` returned, so
// the contract (valid, suitably aligned blocks; `dealloc`/`realloc` only on
// blocks from this allocator with their layout) holds because it holds for
// `System`. The only addition is the counting, which does not allocate (two
// atomic adds on statics), so it cannot recurse into the allocator, and it
// cannot panic or unwind.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract; passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` (every block of this allocator
        // does), with this layout, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as for `dealloc`; `new_size` is checked by the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The library's test binary has no allocator of its own: install the
    // counting one so the test sees real allocations.
    #[global_allocator]
    static COUNTING: CountingAlloc = CountingAlloc;

    #[test]
    fn counts_a_vec_allocation_and_its_growth() {
        let before = totals();
        let mut v: Vec<u8> = std::hint::black_box(Vec::with_capacity(1000));
        v.push(1);
        let after_alloc = totals();
        // Other test threads may allocate meanwhile: at least ours counted.
        assert!(after_alloc.allocations > before.allocations);
        assert!(after_alloc.allocated_bytes >= before.allocated_bytes + 1000);
        v.reserve_exact(10_000);
        let after_grow = totals();
        assert!(after_grow.allocations > after_alloc.allocations);
        assert!(after_grow.allocated_bytes >= after_alloc.allocated_bytes + 10_001);
        drop(std::hint::black_box(v));
    }
}
