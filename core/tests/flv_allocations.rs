//! Encode once for FLV players too: relaying a message to 100 FLV players
//! (HTTP-FLV framing) and 100 RTMP players allocates exactly as often as
//! relaying it to one of each. FLV players that started at the same
//! message share one encoding (docs/flv.md), so nothing is allocated per
//! subscriber. Every player's media deliveries are counted, so a fan-out
//! that skipped players cannot pass.
//!
//! The counting allocator counts the current thread only.

use bytes::Bytes;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tern_core::Instant;
use tern_core::hub::{
    ConnId, ConnectRequest, Delivery, Hub, HubConfig, MediaKind, Protocol, Request,
};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn connect(hub: &mut Hub, now: Instant, id: u64, protocol: Protocol) {
    hub.handle(
        now,
        ConnId(id),
        Request::Connect(ConnectRequest {
            protocol,
            target: "live".into(),
            params: tern_core::amf0::Value::Null,
            args: Vec::new(),
            address: None,
            notices: None,
        }),
    );
}

/// Allocations for relaying `messages` video messages to `each` RTMP and
/// `each` FLV players (all waiting before the publisher's first message),
/// after a two-GOP warm-up. Asserts every player got every message.
fn relay_allocations(each: u64, messages: u32) -> u64 {
    let players = 2 * each;
    let mut received = vec![0u64; players as usize + 2];
    let now = Instant::from_millis(1);
    let mut hub = Hub::new(HubConfig::default());
    let publisher = players + 1;
    connect(&mut hub, now, publisher, tern_core::rtmp::PROTOCOL);
    hub.handle(
        now,
        ConnId(publisher),
        Request::Publish {
            stream: 1,
            name: "cam".into(),
        },
    );
    for id in 1..=players {
        let flv = id > each;
        connect(
            &mut hub,
            now,
            id,
            if flv {
                tern_core::flv::PROTOCOL
            } else {
                tern_core::rtmp::PROTOCOL
            },
        );
        let encoder = if flv {
            tern_core::flv::fanout::media_encoder(tern_core::flv::Framing::HttpChunked)
        } else {
            tern_core::rtmp::media_encoder(4096, 1)
        };
        hub.handle(
            now,
            ConnId(id),
            Request::Play {
                stream: 1,
                name: "cam".into(),
                start: -1.0,
                encoder,
            },
        );
    }
    let keyframe = Bytes::from([0x17u8, 1, 0, 0, 0].repeat(2000));
    let inter = Bytes::from([0x27u8, 1, 0, 0, 0].repeat(400));
    let mut send = |hub: &mut Hub, n: u32| {
        let payload = if n.is_multiple_of(50) {
            keyframe.clone()
        } else {
            inter.clone()
        };
        hub.handle(
            now,
            ConnId(publisher),
            Request::Media {
                stream: 1,
                kind: MediaKind::Video,
                timestamp: 5_000 + n * 40,
                payload,
            },
        );
        while hub.poll_event().is_some() {}
        for id in 1..=players {
            while let Some(delivery) = hub.poll_delivery(ConnId(id)) {
                if let (Delivery::Media(_), Some(count)) = (
                    delivery,
                    usize::try_from(id).ok().and_then(|i| received.get_mut(i)),
                ) {
                    *count += 1;
                }
            }
        }
    };
    for n in 0..100 {
        send(&mut hub, n);
    }
    let before = allocations();
    for n in 100..100 + messages {
        send(&mut hub, n);
    }
    let allocated = allocations() - before;
    let want = u64::from(100 + messages);
    let short: Vec<(usize, u64)> = received
        .iter()
        .copied()
        .enumerate()
        .skip(1)
        .take(players as usize)
        .filter(|(_, got)| *got != want)
        .collect();
    assert!(
        short.is_empty(),
        "players short of {want} messages: {short:?}"
    );
    assert!(hub.encodings().of("flv") > 0, "FLV encodings were built");
    allocated
}

#[test]
fn flv_players_add_no_allocation_per_subscriber() {
    let messages = 100;
    let one = relay_allocations(1, messages);
    let hundred = relay_allocations(100, messages);
    println!(
        "allocations for {messages} messages: 1+1 players {one}, 100+100 players {hundred} ({:.2} per message)",
        one as f64 / f64::from(messages)
    );
    assert_eq!(one, hundred, "no per-subscriber allocation");
    assert!(one > 0, "the counter counts");
}
