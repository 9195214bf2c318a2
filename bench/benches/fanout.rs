//! Hub fan-out per subscriber: one publisher, N players of its stream;
//! the time to relay one media message (hand it to the hub, then take every
//! player's delivery out of its outbox), reported per subscriber
//! (criterion's "elements" are subscribers). With encode-once-send-many the
//! per-subscriber cost should be a few `Bytes` clones and queue operations.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tern_core::Instant;
use tern_core::amf0::Value;
use tern_core::hub::{ConnId, ConnectRequest, Hub, HubConfig, MediaKind, Request};

fn connect(hub: &mut Hub, now: Instant, id: u64) {
    hub.handle(
        now,
        ConnId(id),
        Request::Connect(ConnectRequest {
            protocol: tern_core::rtmp::PROTOCOL,
            target: "live".into(),
            params: Value::Null,
            args: Vec::new(),
            address: None,
            notices: Some(tern_core::rtmp::notices_encoder()),
        }),
    );
}

/// A hub with one publisher (id `players + 1`) and `players` players.
fn hub_with(players: u64) -> Hub {
    let now = Instant::from_millis(1);
    let mut hub = Hub::new(HubConfig {
        max_connections_per_address: 100_000,
        max_connections_per_scope: 100_000,
        ..HubConfig::default()
    });
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
        connect(&mut hub, now, id);
        hub.handle(
            now,
            ConnId(id),
            Request::Play {
                stream: 1,
                name: "cam".into(),
                start: -2.0,
                encoder: tern_core::rtmp::media_encoder(4096, 1),
            },
        );
    }
    drain(&mut hub, players);
    hub
}

fn drain(hub: &mut Hub, players: u64) {
    while hub.poll_event().is_some() {}
    for id in 1..=players {
        while let Some(d) = hub.poll_delivery(ConnId(id)) {
            black_box(d);
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    let now = Instant::from_millis(1);
    let keyframe = Bytes::from([0x17u8, 1, 0, 0, 0].repeat(2000));
    let inter = Bytes::from([0x27u8, 1, 0, 0, 0].repeat(1200));
    for players in [1u64, 10, 100, 1000] {
        let mut hub = hub_with(players);
        let publisher = ConnId(players + 1);
        let mut n: u32 = 0;
        group.throughput(Throughput::Elements(players));
        group.bench_function(BenchmarkId::new("relay_per_subscriber", players), |b| {
            b.iter(|| {
                let payload = if n.is_multiple_of(50) {
                    keyframe.clone()
                } else {
                    inter.clone()
                };
                hub.handle(
                    now,
                    publisher,
                    Request::Media {
                        stream: 1,
                        kind: MediaKind::Video,
                        timestamp: n.wrapping_mul(40),
                        payload,
                    },
                );
                n = n.wrapping_add(1);
                drain(&mut hub, players);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
