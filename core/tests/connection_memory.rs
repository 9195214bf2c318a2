//! Memory one idle connection holds in the core, pinned.
//!
//! An idle RTMP connection (handshake done, `connect` answered, then silent)
//! and an idle WebSocket connection (upgrade done, welcome sent) must not keep
//! buffers, queues or handshake state they no longer need: the server keeps
//! thousands of them. A counting global allocator tracks the bytes live on
//! the current thread (other tests run on other threads); the connection is
//! driven against a real client and hub, both are dropped, and what is still
//! live is the connection's own heap.
//!
//! The bounds are what was measured when they were set, plus a margin for
//! small changes (a longer scope name, an extra field); a failure means some
//! per-connection buffer stays allocated while idle again.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use tern_core::Instant;
use tern_core::hub::{ConnId, Hub, HubConfig, Request};
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{
    ClientConfig, ClientConnection, ClientEvent, ServerConfig, ServerConnection,
};
use tern_core::ws::{WsConfig, WsConnection};

struct Counting;

thread_local! {
    /// Bytes allocated and not yet freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: usize, sign: isize) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = LIVE.try_with(|c| c.set(c.get() + sign * bytes as isize));
}

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(layout.size(), -1);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(layout.size(), -1);
        add(new_size, 1);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Heap bytes an idle RTMP server connection may hold (measured: 168, the
/// chunk decoder's and encoder's state for the two chunk streams in use;
/// 1634 before idle buffers were released).
const RTMP_HEAP_BOUND: isize = 320;
/// Heap bytes an idle WebSocket connection may hold (measured: 0; 608 before).
const WS_HEAP_BOUND: isize = 128;
/// Inline size of a `ServerConnection` (measured: 464; 616 before); runtimes embed it in
/// each connection's task, sometimes more than once.
const RTMP_INLINE_BOUND: usize = 512;
/// Inline size of a `WsConnection` (measured: 408; 456 before).
const WS_INLINE_BOUND: usize = 448;

fn random(seed: u8) -> [u8; RANDOM_LEN] {
    let mut block = [0u8; RANDOM_LEN];
    for (i, b) in block.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    block
}

/// Drives `server` against a real client and hub until `connect` is
/// answered and nothing moves; returns the heap the server holds then.
fn idle_rtmp_heap(server_config: ServerConfig) -> isize {
    let now = Instant::from_millis(1_000);
    let id = ConnId(1);
    let before = live();
    let mut server = ServerConnection::new(
        server_config,
        now,
        &random(1),
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    );
    {
        let mut hub = Hub::new(HubConfig::default());
        let config = ClientConfig::new("live", "rtmp://localhost/live");
        let mut client = ClientConnection::new(config, now, &random(2));
        let mut connected = false;
        for _ in 0..100 {
            let mut progress = false;
            while let Some(bytes) = client.poll_transmit() {
                progress = true;
                server
                    .handle_input(now, &bytes)
                    .expect("server takes input");
            }
            while let Some(request) = server.poll_event() {
                progress = true;
                hub.handle(now, id, request);
            }
            while let Some(delivery) = hub.poll_delivery(id) {
                progress = true;
                server.handle_delivery(now, delivery);
            }
            while let Some(bytes) = server.poll_transmit() {
                progress = true;
                client
                    .handle_input(now, &bytes)
                    .expect("client takes input");
            }
            while let Some(event) = client.poll_event() {
                progress = true;
                connected |= matches!(event, ClientEvent::Connected { .. });
            }
            while hub.poll_event().is_some() {}
            if !progress {
                break;
            }
        }
        assert!(connected, "the client connected");
        assert!(!server.is_closing());
        // The hub forgets the connection as if it had disconnected; what it
        // holds for it is the hub's, not the connection's.
        hub.handle(now, id, Request::Disconnect);
    }
    let held = live() - before;
    drop(server);
    assert_eq!(live(), before, "dropping the connection frees everything");
    held
}

#[test]
fn an_idle_rtmp_connection_holds_little() {
    let heap = idle_rtmp_heap(ServerConfig::default());
    let inline = size_of::<ServerConnection>();
    println!("idle RTMP server connection: {heap} heap bytes + {inline} inline");
    assert!(
        heap <= RTMP_HEAP_BOUND,
        "idle RTMP connection holds {heap} heap bytes (bound {RTMP_HEAP_BOUND})"
    );
    assert!(
        inline <= RTMP_INLINE_BOUND,
        "ServerConnection is {inline} bytes inline (bound {RTMP_INLINE_BOUND})"
    );
}

#[test]
fn an_idle_websocket_connection_holds_little() {
    let now = Instant::from_millis(1_000);
    let id = ConnId(1);
    let before = live();
    let mut conn = WsConnection::new(WsConfig::default(), now, None);
    {
        let mut hub = Hub::new(HubConfig::default());
        let upgrade = b"GET /live HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\n";
        // In pieces, as reads may deliver it.
        let (a, b) = upgrade.split_at(40);
        conn.handle_input(now, a).expect("first part");
        conn.handle_input(now, b).expect("upgrade");
        let mut sent: VecDeque<u8> = VecDeque::new();
        for _ in 0..10 {
            let mut progress = false;
            while let Some(request) = conn.poll_event() {
                progress = true;
                hub.handle(now, id, request);
            }
            while let Some(delivery) = hub.poll_delivery(id) {
                progress = true;
                conn.handle_delivery(now, delivery);
            }
            while let Some(bytes) = conn.poll_transmit() {
                progress = true;
                sent.extend(bytes.iter());
            }
            while hub.poll_event().is_some() {}
            if !progress {
                break;
            }
        }
        let text = String::from_utf8_lossy(sent.make_contiguous()).into_owned();
        assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
        assert!(text.contains("welcome"), "the hub accepted: {text}");
        assert!(!conn.is_closing());
        hub.handle(now, id, Request::Disconnect);
    }
    let heap = live() - before;
    drop(conn);
    assert_eq!(live(), before, "dropping the connection frees everything");
    let inline = size_of::<WsConnection>();
    println!("idle WebSocket connection: {heap} heap bytes + {inline} inline");
    assert!(
        heap <= WS_HEAP_BOUND,
        "idle WebSocket connection holds {heap} heap bytes (bound {WS_HEAP_BOUND})"
    );
    assert!(
        inline <= WS_INLINE_BOUND,
        "WsConnection is {inline} bytes inline (bound {WS_INLINE_BOUND})"
    );
}
