//! Measures the RAM the embedded server needs at its default capacities and
//! prints the table the `tern-runtime-embedded` README quotes (`cargo test
//! -p tern-runtime-embedded-host --test memory_budget -- --nocapture`).
//!
//! Static memory is `size_of` of what the firmware places in statics: the
//! server, one slot task's future (its socket buffers included) per
//! protocol and the stack's per-socket storage. Heap is counted by a
//! counting allocator while a hub and its server connections replay the
//! bytes real clients sent (connect, use a shared object, set one key):
//! only server-side allocations are live in the measured window, as on a
//! device. WebSocket clients' bytes are written by `ws_frames` (the
//! upgrade request and masked JSON frames).
//!
//! One test in this binary: the counter sees every thread's allocations.
#![allow(unsafe_code)] // the counting global allocator below

use embassy_net::driver::HardwareAddress;
use embassy_net::{Stack, StackResources};
use embassy_net_driver_channel as channel;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use tern_core::Instant;
use tern_core::amf0::Value;
use tern_core::hub::{ConnId, Hub};
use tern_core::hub::{Delivery, Request};
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{ClientConfig, ClientConnection, ServerConnection};
use tern_core::ws::WsConnection;
use tern_runtime_embedded::{Config, DEFAULT_RX_BUFFER, DEFAULT_TX_BUFFER, Server};
use tern_runtime_embedded_host::ws_frames;

const SLOTS: usize = 4;

/// System's allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
            LIVE.fetch_add(new_size, Ordering::SeqCst);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::SeqCst)
}

const T0: Instant = Instant::from_millis(1_000);

fn client_random(i: usize) -> [u8; RANDOM_LEN] {
    [u8::try_from(i + 1).unwrap(); RANDOM_LEN]
}

fn server_random(i: usize) -> [u8; RANDOM_LEN] {
    [u8::try_from(i + 101).unwrap(); RANDOM_LEN]
}

/// Runs `clients` real clients against a hub in memory (connect to
/// chat/room1, use `s`, set one key each) and returns the bytes each sent.
fn record(config: &Config, clients: usize) -> Vec<Vec<u8>> {
    let mut hub = Hub::new(config.hub.clone());
    let mut peers: Vec<(ClientConnection, ServerConnection, Vec<u8>)> = (0..clients)
        .map(|i| {
            let mut client = ClientConnection::new(
                ClientConfig::new("chat/room1", "rtmp://device/chat/room1"),
                T0,
                &client_random(i),
            );
            client.so_use("s", false).unwrap();
            client
                .so_set(
                    "s",
                    false,
                    vec![(format!("key{i}"), Value::String("a small value".into()))],
                )
                .unwrap();
            let server = ServerConnection::new(config.rtmp.clone(), T0, &server_random(i), None);
            (client, server, Vec::new())
        })
        .collect();
    for _ in 0..1000 {
        let mut progress = false;
        for (i, (client, server, sent)) in peers.iter_mut().enumerate() {
            let id = ConnId(i as u64 + 1);
            while let Some(bytes) = client.poll_transmit() {
                progress = true;
                sent.extend_from_slice(&bytes);
                server.handle_input(T0, &bytes).unwrap();
            }
            while let Some(request) = server.poll_event() {
                progress = true;
                hub.handle(T0, id, request);
            }
            while let Some(delivery) = hub.poll_delivery(id) {
                progress = true;
                server.handle_delivery(T0, delivery);
            }
            while let Some(bytes) = server.poll_transmit() {
                progress = true;
                client.handle_input(T0, &bytes).unwrap();
            }
            while client.poll_event().is_some() {
                progress = true;
            }
        }
        while hub.poll_event().is_some() {}
        if !progress {
            return peers.into_iter().map(|(_, _, sent)| sent).collect();
        }
    }
    panic!("the recorded session did not settle");
}

/// What a client sent, by protocol.
enum Sent {
    Rtmp(Vec<u8>),
    Ws(Vec<u8>),
}

/// A server connection of either protocol (the replay's view of them).
enum Conn {
    Rtmp(ServerConnection),
    Ws(WsConnection),
}

impl Conn {
    fn open(config: &Config, i: usize, sent: &Sent) -> Conn {
        match sent {
            Sent::Rtmp(bytes) => {
                let mut c = ServerConnection::new(config.rtmp.clone(), T0, &server_random(i), None);
                c.handle_input(T0, bytes).unwrap();
                Conn::Rtmp(c)
            }
            Sent::Ws(bytes) => {
                let mut c = WsConnection::new(config.ws.clone(), T0, None);
                c.handle_input(T0, bytes).unwrap();
                Conn::Ws(c)
            }
        }
    }

    fn poll_event(&mut self) -> Option<Request> {
        match self {
            Conn::Rtmp(c) => c.poll_event(),
            Conn::Ws(c) => c.poll_event(),
        }
    }

    fn handle_delivery(&mut self, delivery: Delivery) {
        match self {
            Conn::Rtmp(c) => c.handle_delivery(T0, delivery),
            Conn::Ws(c) => c.handle_delivery(T0, delivery),
        }
    }

    /// Sends (drops) everything queued; false when nothing was.
    fn drain(&mut self) -> bool {
        let mut any = false;
        loop {
            let sent = match self {
                Conn::Rtmp(c) => c.poll_transmit(),
                Conn::Ws(c) => c.poll_transmit(),
            };
            if sent.is_none() {
                return any;
            }
            any = true;
        }
    }
}

/// What `clients` WebSocket clients send: the upgrade to chat/room1, a use
/// of `s` and a set of one key each, as masked frames.
fn ws_clients(clients: usize) -> Vec<Sent> {
    (0..clients)
        .map(|i| {
            let mask = [0x11, 0x22, 0x33, i as u8];
            let mut bytes = ws_frames::upgrade_request("device", "/chat/room1").into_bytes();
            bytes.extend(ws_frames::client_text(r#"{"op":"use","so":"s"}"#, mask));
            let set = format!(r#"{{"op":"set","so":"s","key":"ws{i}","value":"a small value"}}"#);
            bytes.extend(ws_frames::client_text(&set, mask));
            Sent::Ws(bytes)
        })
        .collect()
}

fn rtmp_clients(config: &Config, clients: usize) -> Vec<Sent> {
    record(config, clients)
        .into_iter()
        .map(Sent::Rtmp)
        .collect()
}

/// Heap of a hub alone, and of the hub plus `clients.len()` server
/// connections after replaying what their clients sent.
fn replay(config: &Config, clients: &[Sent]) -> (usize, usize) {
    let base = live();
    let mut hub = Hub::new(config.hub.clone());
    let hub_only = live() - base;
    let mut servers: Vec<Conn> = Vec::with_capacity(clients.len());
    for (i, sent) in clients.iter().enumerate() {
        let id = ConnId(i as u64 + 1);
        let mut server = Conn::open(config, i, sent);
        while let Some(request) = server.poll_event() {
            hub.handle(T0, id, request);
        }
        servers.push(server);
    }
    // Deliver everything (the other clients' changes too) and send it.
    for _ in 0..10 {
        for (i, server) in servers.iter_mut().enumerate() {
            while let Some(delivery) = hub.poll_delivery(ConnId(i as u64 + 1)) {
                server.handle_delivery(delivery);
            }
            server.drain();
        }
        while hub.poll_event().is_some() {}
    }
    let total = live() - base;
    let so = hub
        .shared_objects()
        .find(|o| o.name == "s")
        .map(|o| (o.version, o.subscribers));
    assert_eq!(
        so,
        Some((clients.len() as u32, clients.len())),
        "every replayed client uses s and set its key"
    );
    drop(servers);
    drop(hub);
    (hub_only, total)
}

#[test]
fn memory_budget() {
    let config = Config::default();

    // Static memory.
    let server_n = size_of::<Server<SLOTS>>();
    let server_1 = size_of::<Server<1>>();
    let server_2n = size_of::<Server<{ 2 * SLOTS }>>();
    let per_socket =
        size_of::<StackResources<{ SLOTS + 1 }>>() - size_of::<StackResources<SLOTS>>();
    let state = Box::leak(Box::new(channel::State::<1514, 1, 1>::new()));
    let (_runner, device) = channel::new(state, HardwareAddress::Ethernet([2, 0, 0, 0, 0, 1]));
    let resources = Box::leak(Box::new(StackResources::<{ SLOTS + 1 }>::new()));
    let (stack, _net_runner) =
        embassy_net::new(device, embassy_net::Config::default(), resources, 1);
    let server: &'static Server<SLOTS> = Box::leak(Box::new(Server::new(config.clone())));
    let rtmp_task = rtmp_task_size(server, stack);
    let ws_task = ws_task_size(server, stack);
    let per_slot_server = (server_n - server_1) / (SLOTS - 1);

    // Heap, steady state after connect + use + set.
    let (hub_heap, rtmp_1) = replay(&config, &rtmp_clients(&config, 1));
    let (_, rtmp_n) = replay(&config, &rtmp_clients(&config, SLOTS));
    let (_, ws_1) = replay(&config, &ws_clients(1));
    let (_, ws_n) = replay(&config, &ws_clients(SLOTS));
    let mut mixed = rtmp_clients(&config, SLOTS);
    mixed.extend(ws_clients(SLOTS));
    let (_, mixed_heap) = replay(&config, &mixed);
    let rtmp_heap_1 = rtmp_1 - hub_heap;
    let rtmp_heap_n = (rtmp_n - hub_heap) / SLOTS;
    let ws_heap_1 = ws_1 - hub_heap;
    let ws_heap_n = (ws_n - hub_heap) / SLOTS;

    let rtmp_static = rtmp_task + per_socket + per_slot_server;
    let ws_static = ws_task + per_socket + per_slot_server;
    let rtmp_total = server_n + SLOTS * (rtmp_task + per_socket) + rtmp_n;
    let mixed_total = server_2n + SLOTS * (rtmp_task + ws_task + 2 * per_socket) + mixed_heap;
    let rows: [(&str, usize); 14] = [
        ("static  Server<4>: hub handle, signals, config", server_n),
        ("static  one more slot in Server<N>", per_slot_server),
        (
            "static  one RTMP slot task: run_rtmp future + rx + tx",
            rtmp_task,
        ),
        (
            "static  one WebSocket slot task: run_ws future + rx + tx",
            ws_task,
        ),
        ("static  one embassy-net socket slot", per_socket),
        ("static  per RTMP connection, all told", rtmp_static),
        ("static  per WebSocket connection, all told", ws_static),
        ("heap    empty hub (apps live, chat)", hub_heap),
        (
            "heap    per RTMP connection, alone in its room",
            rtmp_heap_1,
        ),
        (
            "heap    per RTMP connection, 4 clients in one room",
            rtmp_heap_n,
        ),
        (
            "heap    per WebSocket connection, alone in its room",
            ws_heap_1,
        ),
        (
            "heap    per WebSocket connection, 4 clients in one room",
            ws_heap_n,
        ),
        (
            "total   4 RTMP slots, 4 RTMP clients: static + heap",
            rtmp_total,
        ),
        (
            "total   4 RTMP + 4 WebSocket slots, 8 clients in one room",
            mixed_total,
        ),
    ];
    println!(
        "memory budget at Config::default(), buffers {DEFAULT_RX_BUFFER} rx + {DEFAULT_TX_BUFFER} tx (bytes):"
    );
    for (what, bytes) in rows {
        println!("  {what:<60} {bytes:>7}");
    }
    println!(
        "  worst case per RTMP connection (limits): reassembly {} + outbox media {} + output {} + message {}",
        config.rtmp.limits.max_reassembly_bytes,
        config.hub.outbox.max_media_bytes,
        config.high_water,
        config.rtmp.limits.max_message
    );
    println!(
        "  worst case per WebSocket connection (limits): upgrade head {} + message {} + output {} (+ {} notices in its outbox)",
        tern_core::ws::handshake::MAX_HEAD,
        config.ws.max_message,
        config.high_water,
        config.hub.outbox.max_pending_notices,
    );

    // Guard rails: a change that doubles the footprint should be a decision.
    for (what, task) in [("rtmp", rtmp_task), ("ws", ws_task)] {
        assert!(
            task < DEFAULT_RX_BUFFER + DEFAULT_TX_BUFFER + 4096,
            "{what} slot task grew: {task}"
        );
    }
    assert!(
        rtmp_heap_n < 16 * 1024,
        "per-connection RTMP heap grew: {rtmp_heap_n}"
    );
    assert!(
        ws_heap_n < 8 * 1024,
        "per-connection WebSocket heap grew: {ws_heap_n}"
    );
    assert!(hub_heap < 4 * 1024, "empty hub heap grew: {hub_heap}");
}

/// Size of the future a firmware's RTMP slot task holds: `run_rtmp` with
/// its socket buffers declared in the task, as in the crate docs.
fn rtmp_task_size(server: &'static Server<SLOTS>, stack: Stack<'static>) -> usize {
    let task = async move {
        let mut rx = [0u8; DEFAULT_RX_BUFFER];
        let mut tx = [0u8; DEFAULT_TX_BUFFER];
        server.run_rtmp(stack, 0, &mut rx, &mut tx).await
    };
    size_of_val(&task)
}

/// The same for a WebSocket slot task (`run_ws`).
fn ws_task_size(server: &'static Server<SLOTS>, stack: Stack<'static>) -> usize {
    let task = async move {
        let mut rx = [0u8; DEFAULT_RX_BUFFER];
        let mut tx = [0u8; DEFAULT_TX_BUFFER];
        server.run_ws(stack, 1, &mut rx, &mut tx).await
    };
    size_of_val(&task)
}
