//! Allocation-light fan-out: relaying one media message to 100 players
//! allocates exactly as often as relaying it to one (the encoded chunks are
//! shared; nothing is allocated or copied per subscriber), and so does a
//! stream of shared-object changes to 1 or 100 subscribers. The same holds
//! with FLV players beside the RTMP ones: 100 of each allocate as often as
//! one of each (FLV players that started at the same message share one
//! encoding, docs/flv.md).
//!
//! Every subscriber's deliveries are counted too (into counters allocated
//! before the measurement), so a fan-out that skipped subscribers cannot
//! pass for an allocation-free one.
//!
//! A counting global allocator counts allocations made on the current thread
//! only, so other tests running in parallel threads do not disturb it.

use bytes::Bytes;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tern_core::Instant;
use tern_core::hub::{
    ConnId, ConnectRequest, Delivery, Hub, HubConfig, MediaKind, Protocol, Request, SoChange, SoOp,
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

fn connect(hub: &mut Hub, now: Instant, id: u64) {
    connect_as(hub, now, id, tern_core::rtmp::PROTOCOL);
}

fn connect_as(hub: &mut Hub, now: Instant, id: u64, protocol: Protocol) {
    let rtmp = protocol == tern_core::rtmp::PROTOCOL;
    hub.handle(
        now,
        ConnId(id),
        Request::Connect(ConnectRequest {
            protocol,
            target: "live".into(),
            params: tern_core::amf0::Value::Null,
            args: Vec::new(),
            address: None,
            notices: rtmp.then(tern_core::rtmp::notices_encoder),
        }),
    );
}

/// Drains every event and every outbox of connections `1..=players + 1`,
/// adding each connection's media and shared-object deliveries to
/// `received[id]` (indexed by connection id; allocated by the caller).
fn drain(hub: &mut Hub, players: u64, received: &mut [Received]) {
    while hub.poll_event().is_some() {}
    for id in 1..=players + 1 {
        while let Some(delivery) = hub.poll_delivery(ConnId(id)) {
            let Some(counts) = usize::try_from(id).ok().and_then(|i| received.get_mut(i)) else {
                continue;
            };
            match delivery {
                Delivery::Media(_) => counts.media += 1,
                Delivery::SharedObject(_) => counts.so += 1,
                _ => {}
            }
        }
    }
}

/// Deliveries one connection received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Received {
    media: u64,
    so: u64,
}

/// Asserts that each of connections `1..=subscribers` received `media`
/// media and `so` shared-object deliveries.
fn assert_everyone_received(received: &[Received], subscribers: u64, want: Received) {
    let short: Vec<(usize, Received)> = (1..=subscribers)
        .filter_map(|id| usize::try_from(id).ok())
        .map(|id| (id, received[id]))
        .filter(|(_, got)| *got != want)
        .collect();
    assert!(
        short.is_empty(),
        "{} of {subscribers} subscribers did not receive exactly {want:?}; the first: {:?}",
        short.len(),
        &short[..short.len().min(5)]
    );
}

/// Allocations for relaying `messages` video messages to `rtmp` RTMP and
/// `flv` HTTP-FLV players (ids `1..=rtmp`, then the FLV ones), after a
/// warm-up of two GOPs that lets every queue reach its steady capacity.
/// Asserts that every player received every message, the warm-up's and
/// these, and that FLV encodings were built when there are FLV players.
fn relay_allocations(rtmp: u64, flv: u64, messages: u32) -> u64 {
    let players = rtmp + flv;
    let mut received = vec![Received::default(); players as usize + 2];
    let now = Instant::from_millis(1);
    let mut hub = Hub::new(HubConfig::default());
    let publisher = players + 1;
    connect(&mut hub, now, publisher);
    hub.handle(
        now,
        ConnId(publisher),
        Request::Publish {
            stream: 1,
            name: "cam".into(),
        },
    );
    for id in 1..=players {
        // Each player plays as its connection asks: RTMP live-or-recorded
        // (-2), FLV live only (-1).
        let (protocol, start, encoder) = if id <= rtmp {
            (
                tern_core::rtmp::PROTOCOL,
                -2.0,
                tern_core::rtmp::media_encoder(4096, 1),
            )
        } else {
            (
                tern_core::flv::PROTOCOL,
                -1.0,
                tern_core::flv::fanout::media_encoder(tern_core::flv::Framing::HttpChunked),
            )
        };
        connect_as(&mut hub, now, id, protocol);
        hub.handle(
            now,
            ConnId(id),
            Request::Play {
                stream: 1,
                name: "cam".into(),
                start,
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
                // Not from 0, so each FLV player's clock (from 0) differs
                // from the publisher's.
                timestamp: 5_000 + n * 40,
                payload,
            },
        );
        drain(hub, players, &mut received);
    };
    for n in 0..100 {
        send(&mut hub, n);
    }
    let before = allocations();
    for n in 100..100 + messages {
        send(&mut hub, n);
    }
    let allocated = allocations() - before;
    let want = Received {
        media: u64::from(100 + messages),
        so: 0,
    };
    assert_everyone_received(&received, players, want);
    if flv > 0 {
        assert!(hub.encodings().of("flv") > 0, "FLV encodings were built");
    }
    allocated
}

#[test]
fn allocations_per_relayed_message_do_not_depend_on_subscriber_count() {
    let messages = 100;
    let one = relay_allocations(1, 0, messages);
    let hundred = relay_allocations(100, 0, messages);
    println!(
        "allocations for {messages} messages: 1 player {one}, 100 players {hundred} ({:.2} per message)",
        one as f64 / f64::from(messages)
    );
    assert_eq!(one, hundred, "no per-subscriber allocation");
    assert!(one > 0, "the counter counts");
}

#[test]
fn flv_players_add_no_allocation_per_subscriber() {
    let messages = 100;
    let one = relay_allocations(1, 1, messages);
    let hundred = relay_allocations(100, 100, messages);
    println!(
        "allocations for {messages} messages: 1+1 players {one}, 100+100 players {hundred} ({:.2} per message)",
        one as f64 / f64::from(messages)
    );
    assert_eq!(one, hundred, "no per-subscriber allocation");
    assert!(one > 0, "the counter counts");
}

/// Allocations for `changes` shared-object changes (one every 100 ms) from
/// one writer to `subscribers` subscribers, each draining its outbox after
/// every change, after a warm-up of busy changes. Asserts that every
/// subscriber received every change.
fn change_allocations(subscribers: u64, changes: u64) -> u64 {
    let mut received = vec![Received::default(); subscribers as usize + 2];
    let mut hub = Hub::new(HubConfig::default());
    let writer = subscribers + 1;
    let so = |op| Request::SharedObject {
        name: "board".into(),
        persistent: false,
        op,
    };
    let start = Instant::from_millis(1);
    for id in 1..=writer {
        connect(&mut hub, start, id);
        hub.handle(start, ConnId(id), so(SoOp::Use));
    }
    drain(&mut hub, subscribers, &mut received);
    // The counts start after each subscriber's sync.
    received.fill(Received::default());
    let mut set = |hub: &mut Hub, n: u64| {
        let now = Instant::from_millis(1 + 100 * n);
        hub.handle(
            now,
            ConnId(writer),
            so(SoOp::Batch(vec![SoChange::Set {
                key: "k".into(),
                value: tern_core::amf0::Value::Number(n as f64),
            }])),
        );
        drain(hub, subscribers, &mut received);
    };
    for n in 1..=20 {
        set(&mut hub, n);
    }
    let before = allocations();
    for n in 21..21 + changes {
        set(&mut hub, n);
    }
    let allocated = allocations() - before;
    let want = Received {
        media: 0,
        so: 20 + changes,
    };
    assert_everyone_received(&received, subscribers, want);
    allocated
}

#[test]
fn allocations_per_shared_object_change_do_not_depend_on_subscriber_count() {
    let one = change_allocations(1, 50);
    let hundred = change_allocations(100, 50);
    println!("allocations for 50 changes: 1 subscriber {one}, 100 subscribers {hundred}");
    // A subscriber's queue that is refilled every 100 ms keeps its slots:
    // no allocation per subscriber per change.
    assert_eq!(one, hundred);
}
