//! Measures the RAM the embedded server needs at its default capacities and
//! prints the table the crate README quotes (`cargo test -p
//! tern-runtime-embedded --test memory_budget -- --nocapture`).
//!
//! Static memory is `size_of` of what the firmware places in statics: the
//! server, one slot task's future (its socket buffers included) and the
//! stack's per-socket storage. Heap is counted by a counting allocator
//! while a hub and its server connections replay the bytes real clients
//! sent (connect, use a shared object, set one key): only server-side
//! allocations are live in the measured window, as on a device.
//!
//! One test in this binary: the counter sees every thread's allocations.
#![allow(unsafe_code)] // the counting global allocator below

use embassy_net::driver::HardwareAddress;
use embassy_net::{Stack, StackResources};
use embassy_net_driver_channel as channel;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use tern_runtime_embedded::tern_core::Instant;
use tern_runtime_embedded::tern_core::amf0::Value;
use tern_runtime_embedded::tern_core::handshake::RANDOM_LEN;
use tern_runtime_embedded::tern_core::hub::{ConnId, Hub};
use tern_runtime_embedded::tern_core::rtmp::{ClientConfig, ClientConnection, ServerConnection};
use tern_runtime_embedded::{Config, DEFAULT_RX_BUFFER, DEFAULT_TX_BUFFER, Server};

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

/// Heap of a hub alone, and of the hub plus `streams.len()` server
/// connections after replaying what their clients sent.
fn replay(config: &Config, streams: &[Vec<u8>]) -> (usize, usize) {
    let base = live();
    let mut hub = Hub::new(config.hub.clone());
    let hub_only = live() - base;
    let mut servers: Vec<ServerConnection> = Vec::with_capacity(streams.len());
    for (i, bytes) in streams.iter().enumerate() {
        let id = ConnId(i as u64 + 1);
        let mut server = ServerConnection::new(config.rtmp.clone(), T0, &server_random(i), None);
        server.handle_input(T0, bytes).unwrap();
        while let Some(request) = server.poll_event() {
            hub.handle(T0, id, request);
        }
        servers.push(server);
    }
    // Deliver everything (the other clients' changes too) and send it.
    for _ in 0..10 {
        for (i, server) in servers.iter_mut().enumerate() {
            while let Some(delivery) = hub.poll_delivery(ConnId(i as u64 + 1)) {
                server.handle_delivery(T0, delivery);
            }
            while server.poll_transmit().is_some() {}
        }
        while hub.poll_event().is_some() {}
    }
    let total = live() - base;
    let so = hub
        .shared_objects()
        .find(|o| o.name == "s")
        .map(|o| (o.version, o.subscribers));
    assert_eq!(
        so.map(|(_, subscribers)| subscribers),
        Some(streams.len()),
        "every replayed client uses s"
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
    let per_socket =
        size_of::<StackResources<{ SLOTS + 1 }>>() - size_of::<StackResources<SLOTS>>();
    let state = Box::leak(Box::new(channel::State::<1514, 1, 1>::new()));
    let (_runner, device) = channel::new(state, HardwareAddress::Ethernet([2, 0, 0, 0, 0, 1]));
    let resources = Box::leak(Box::new(StackResources::<{ SLOTS + 1 }>::new()));
    let (stack, _net_runner) =
        embassy_net::new(device, embassy_net::Config::default(), resources, 1);
    let server: &'static Server<SLOTS> = Box::leak(Box::new(Server::new(config.clone())));
    let slot_task = slot_task_size(server, stack);

    // Heap, steady state after connect + use + set.
    let one = record(&config, 1);
    let many = record(&config, SLOTS);
    let (hub_heap, heap_1) = replay(&config, &one);
    let (_, heap_n) = replay(&config, &many);
    let conn_heap_1 = heap_1 - hub_heap;
    let conn_heap_n = (heap_n - hub_heap) / SLOTS;

    let static_per_slot = slot_task + per_socket + (server_n - server_1) / (SLOTS - 1);
    let static_total = server_n + SLOTS * (slot_task + per_socket);
    let heap_total = heap_n;
    let rows: [(&str, usize); 8] = [
        ("static  Server<4>: hub handle, signals, config", server_n),
        (
            "static  one slot task: run_rtmp future + rx + tx buffers",
            slot_task,
        ),
        ("static  one embassy-net socket slot", per_socket),
        ("static  per connection, all told", static_per_slot),
        ("heap    empty hub (apps live, chat)", hub_heap),
        ("heap    per connection, alone in its room", conn_heap_1),
        ("heap    per connection, 4 clients in one room", conn_heap_n),
        (
            "total   4 slots, 4 clients: static + heap",
            static_total + heap_total,
        ),
    ];
    println!(
        "memory budget at Config::default(), {SLOTS} slots, buffers {DEFAULT_RX_BUFFER} rx + {DEFAULT_TX_BUFFER} tx (bytes):"
    );
    for (what, bytes) in rows {
        println!("  {what:<58} {bytes:>7}");
    }
    println!(
        "  worst case per connection (limits): reassembly {} + outbox media {} + output {} + message {}",
        config.rtmp.limits.max_reassembly_bytes,
        config.hub.outbox.max_media_bytes,
        config.high_water,
        config.rtmp.limits.max_message
    );

    // Guard rails: a change that doubles the footprint should be a decision.
    assert!(
        slot_task < DEFAULT_RX_BUFFER + DEFAULT_TX_BUFFER + 4096,
        "slot task grew: {slot_task}"
    );
    assert!(
        conn_heap_n < 16 * 1024,
        "per-connection heap grew: {conn_heap_n}"
    );
    assert!(hub_heap < 4 * 1024, "empty hub heap grew: {hub_heap}");
}

/// Size of the future a firmware's slot task holds: `run_rtmp` with its
/// socket buffers declared in the task, as in the crate docs.
fn slot_task_size(server: &'static Server<SLOTS>, stack: Stack<'static>) -> usize {
    let task = async move {
        let mut rx = [0u8; DEFAULT_RX_BUFFER];
        let mut tx = [0u8; DEFAULT_TX_BUFFER];
        server.run_rtmp(stack, 0, &mut rx, &mut tx).await
    };
    size_of_val(&task)
}
