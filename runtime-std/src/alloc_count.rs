//! A counting global allocator, for the `count-allocations` build of the
//! `tern` binary: it shows under load how many heap allocations the server
//! makes per relayed media message (`tern-load media --metrics-url`).
//!
//! [`CountingAlloc`] wraps [`System`] and adds one to a counter per
//! allocation (`alloc`, `alloc_zeroed` and `realloc` calls) and the bytes
//! asked for; those totals only ever grow (Prometheus counters): the
//! question is how often the server goes to the allocator. A third figure,
//! the live heap, is the bytes of blocks allocated and not yet freed (frees
//! subtract, a `realloc` counts its change): set beside the process's RSS
//! it tells a leak (live heap grows) from memory the allocator keeps after
//! the program freed it (RSS grows, live heap flat), the question of the
//! soak in docs/reliability.md. The counters are relaxed [`AtomicU64`]s, so
//! counting costs three uncontended atomic adds per allocation and orders
//! nothing.
//!
//! The binary installs it with `#[global_allocator]` (see `main.rs`) only
//! when the feature is on; [`totals`] reads the counters, and `/metrics`
//! prints them as `tern_heap_allocations_total` and
//! `tern_heap_allocated_bytes_total`, and the gauge `tern_heap_live_bytes`. In a build that has the feature but
//! does not install the allocator (the library's users), both stay 0.

// The only unsafe code of the crate: `GlobalAlloc` is an unsafe trait.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated minus bytes freed; wrapping arithmetic, read as the
/// difference (it never goes below zero: a block is freed after it was
/// allocated, and frees of blocks from before the allocator was installed
/// do not happen, since it is installed before `main`).
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

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
    /// Bytes in blocks allocated and not yet freed (requested sizes, not
    /// the allocator's own rounding and bookkeeping).
    pub live_bytes: u64,
}

/// The counters now. Relaxed loads: the two values may be a few allocations
/// apart from each other if other threads allocate meanwhile.
pub fn totals() -> AllocTotals {
    AllocTotals {
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        allocated_bytes: ALLOCATED_BYTES.load(Ordering::Relaxed),
        live_bytes: LIVE_BYTES.load(Ordering::Relaxed),
    }
}

fn count(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// A block of `old` bytes became one of `new` bytes (0 for none).
fn resize(old: usize, new: usize) {
    // Wrapping: fetch_add and fetch_sub on AtomicU64 wrap, and the sum over
    // every call is the live total.
    LIVE_BYTES.fetch_add(new as u64, Ordering::Relaxed);
    LIVE_BYTES.fetch_sub(old as u64, Ordering::Relaxed);
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
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            resize(0, layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            resize(0, layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` (every block of this allocator
        // does), with this layout, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        resize(layout.size(), 0);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as for `dealloc`; `new_size` is checked by the caller.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        // On failure the old block stays allocated, unchanged.
        if !new.is_null() {
            resize(layout.size(), new_size);
        }
        new
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

    #[test]
    fn the_live_heap_rises_with_a_block_and_falls_when_it_is_freed() {
        // Other test threads allocate and free meanwhile, so compare with a
        // block far larger than what they hold.
        const BIG: usize = 64 << 20;
        let before = totals().live_bytes;
        let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(BIG));
        let held = totals().live_bytes;
        assert!(held.wrapping_sub(before) as i64 >= (BIG - (1 << 20)) as i64);
        drop(std::hint::black_box(v));
        let after = totals().live_bytes;
        assert!(
            (after.wrapping_sub(before) as i64) < (1 << 20),
            "64 MiB freed, live heap still {} bytes above",
            after.wrapping_sub(before) as i64
        );
    }
}
