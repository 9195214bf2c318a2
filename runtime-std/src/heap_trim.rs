//! Handing freed heap pages back to the operating system.
//!
//! glibc's allocator keeps what a burst freed (a join burst's queues, the
//! handshakes of a thousand clients connecting at once, a GOP just
//! replaced) resident until the top of its arena happens to be free, which
//! in a server full of long-lived connections is rarely. The server's RSS
//! would then stay at its high-water mark for good. `malloc_trim(0)`
//! returns every whole free page of every arena (`madvise(MADV_DONTNEED)`),
//! so RSS follows what is actually in use. It walks the free lists under
//! each arena's lock, on the hub-timer task, a pause that grows with the
//! heap and that allocations wait for (timings in docs/memory.md, "Giving
//! memory back"). The server calls it every `server.heap_trim_secs`
//! (default 10, 0 = never); a server with a heap of hundreds of MB may want
//! a longer period.
//!
//! Other allocators (musl, or a platform without glibc) do not need or
//! offer it; there this does nothing.

/// Returns freed heap pages to the OS; true if any were released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_pages() -> bool {
    // SAFETY: malloc_trim only walks the allocator's own free lists under
    // its locks; it takes no pointer from us and is safe to call at any
    // time from any thread.
    #[allow(unsafe_code)]
    let released = unsafe { libc::malloc_trim(0) };
    released == 1
}

/// Returns freed heap pages to the OS; true if any were released.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_pages() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_is_handed_back() {
        // Many small blocks (below the mmap threshold, so they live in the
        // arena), then free all but the last: the pages in between are free
        // but not at the arena's top, which only a trim releases.
        let mut blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 2000]).collect();
        let last = blocks.pop();
        drop(blocks);
        assert!(release_free_pages(), "8 MB of free pages were released");
        drop(last);
    }
}
