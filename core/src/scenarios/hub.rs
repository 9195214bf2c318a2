//! Whole-behaviour tests of the hub, driven through real RTMP client and
//! server connections in virtual time (see `crate::testing`).

use crate::amf0::Value;
use crate::hub::*;
use crate::message::{SharedObjectMessage, SoEvent};
use crate::rtmp::{ClientConfig, ClientEvent};
use crate::scope_path::ScopePath;
use crate::testing::Harness;
use crate::time::{Duration, Instant};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

fn so_messages(events: Vec<ClientEvent>) -> Vec<SharedObjectMessage> {
    events
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::SharedObject(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn connected(events: &[ClientEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, ClientEvent::Connected { .. }))
}

fn text(s: &str) -> Value {
    Value::string(s)
}

fn change(k: &str, v: &str) -> SoEvent {
    SoEvent::Change {
        key: k.to_string(),
        value: text(v),
    }
}

/// Three clients in /chat/room1, all using transient SO "chat".
fn room_of_three() -> Harness {
    let mut h = Harness::new(HubConfig::default());
    for _ in 0..3 {
        let i = h.connect("chat/room1");
        assert!(connected(&h.take(i)), "connect");
    }
    for i in 0..3 {
        h.peers[i].client.so_use("chat", false).unwrap();
        h.drive();
        h.take(i);
    }
    h
}

#[test]
fn use_gets_use_success_clear_and_every_key() {
    let mut h = room_of_three();
    h.peers[0]
        .client
        .so_set(
            "chat",
            false,
            vec![("a".into(), text("1")), ("b".into(), text("2"))],
        )
        .unwrap();
    h.drive();
    let late = h.connect("chat/room1");
    h.take(late);
    h.peers[late].client.so_use("chat", false).unwrap();
    h.drive();
    let got = so_messages(h.take(late));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].version, 1, "use does not change the version");
    assert_eq!(
        got[0].events,
        vec![
            SoEvent::UseSuccess,
            SoEvent::Clear,
            change("a", "1"),
            change("b", "2")
        ]
    );
    for i in 0..3 {
        assert!(so_messages(h.take(i)).iter().all(|m| m.version == 1));
    }
}

#[test]
fn set_acks_the_writer_and_changes_everyone_else_even_when_unchanged() {
    let mut h = room_of_three();
    for round in 1..=2u32 {
        // The same line twice: both reach everybody.
        h.peers[0]
            .client
            .so_set("chat", false, vec![("message".into(), text("hi"))])
            .unwrap();
        h.drive();
        let writer = so_messages(h.take(0));
        assert_eq!(writer.len(), 1);
        assert_eq!(writer[0].version, round);
        assert_eq!(
            writer[0].events,
            vec![SoEvent::Success {
                key: "message".into()
            }]
        );
        for i in 1..3 {
            let got = so_messages(h.take(i));
            assert_eq!(got.len(), 1, "client {i} round {round}");
            assert_eq!(got[0].version, round);
            assert_eq!(got[0].events, vec![change("message", "hi")]);
        }
    }
}

/// The fan-out of a change encodes it once: every RTMP subscriber is sent
/// the very same bytes (one shared chunk, no per-subscriber encoding).
#[test]
fn a_notice_is_encoded_once_for_every_rtmp_subscriber() {
    let mut h = room_of_three();
    for i in [1, 2] {
        h.peers[i].reading = false;
    }
    h.peers[0]
        .client
        .so_set("chat", false, vec![("k".into(), text("v"))])
        .unwrap();
    h.drive();
    let mut sent = Vec::new();
    for i in [1, 2] {
        let id = h.peers[i].id;
        let delivery = h.hub.poll_delivery(id).expect("a notice");
        h.peers[i].server.handle_delivery(h.now, delivery);
        sent.push(h.peers[i].server.poll_transmit().expect("its bytes"));
        assert!(h.peers[i].server.poll_transmit().is_none(), "one buffer");
    }
    assert_eq!(sent[0], sent[1]);
    assert_eq!(sent[0].as_ptr(), sent[1].as_ptr(), "one shared encoding");
    for i in [1, 2] {
        h.peers[i].reading = true;
        h.peers[i].client.handle_input(h.now, &sent[i - 1]).unwrap();
    }
    h.drive();
    for i in [1, 2] {
        let got = so_messages(h.take(i));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].events, vec![change("k", "v")]);
    }
}

#[test]
fn one_message_is_one_batch_and_one_version_step() {
    let mut h = room_of_three();
    h.peers[1]
        .client
        .so_set(
            "chat",
            false,
            vec![
                ("x".into(), text("1")),
                ("y".into(), text("2")),
                ("z".into(), text("3")),
            ],
        )
        .unwrap();
    h.drive();
    let others = so_messages(h.take(0));
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].version, 1);
    assert_eq!(others[0].events.len(), 3);
}

#[test]
fn delete_removes_for_everyone_including_the_writer() {
    let mut h = room_of_three();
    h.peers[0]
        .client
        .so_set("chat", false, vec![("k".into(), text("v"))])
        .unwrap();
    h.drive();
    for i in 0..3 {
        h.take(i);
    }
    h.peers[2].client.so_delete("chat", false, "k").unwrap();
    h.drive();
    for i in 0..3 {
        let got = so_messages(h.take(i));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].version, 2);
        assert_eq!(got[0].events, vec![SoEvent::Remove { key: "k".into() }]);
    }
    let scope = ScopePath::resolve("chat/room1", 4).unwrap();
    assert!(
        h.hub
            .shared_object_data(&scope, "chat")
            .unwrap()
            .1
            .is_empty()
    );
}

#[test]
fn send_reaches_everyone_and_keeps_the_version() {
    let mut h = room_of_three();
    h.peers[1]
        .client
        .so_send("chat", false, "messageTransmit", vec![text("hi")])
        .unwrap();
    h.drive();
    for i in 0..3 {
        let got = so_messages(h.take(i));
        assert_eq!(got.len(), 1, "client {i}");
        assert_eq!(got[0].version, 0);
        assert_eq!(
            got[0].events,
            vec![SoEvent::SendMessage {
                method: "messageTransmit".into(),
                args: vec![text("hi")]
            }]
        );
    }
}

#[test]
fn release_stops_delivery_and_tells_nobody() {
    let mut h = room_of_three();
    h.peers[2].client.so_release("chat", false).unwrap();
    h.drive();
    for i in 0..3 {
        assert!(so_messages(h.take(i)).is_empty(), "release is silent");
    }
    h.peers[0]
        .client
        .so_set("chat", false, vec![("k".into(), text("v"))])
        .unwrap();
    h.drive();
    assert_eq!(so_messages(h.take(1)).len(), 1);
    assert!(
        so_messages(h.take(2)).is_empty(),
        "released client hears nothing"
    );
}

#[test]
fn server_side_set_delete_clear_reach_every_subscriber() {
    let mut h = room_of_three();
    let scope = ScopePath::resolve("chat/room1", 4).unwrap();
    let now = h.now;
    let set = vec![SoChange::Set {
        key: "topic".into(),
        value: text("news"),
    }];
    assert_eq!(h.hub.so_apply(now, &scope, "chat", false, set), Ok(1));
    let delete = vec![SoChange::Delete {
        key: "topic".into(),
    }];
    assert_eq!(h.hub.so_apply(now, &scope, "chat", false, delete), Ok(2));
    assert_eq!(h.hub.so_clear(now, &scope, "chat", false), Ok(3));
    h.drive();
    for i in 0..3 {
        let got = so_messages(h.take(i));
        let summary: Vec<(u32, Vec<SoEvent>)> =
            got.into_iter().map(|m| (m.version, m.events)).collect();
        assert_eq!(
            summary,
            vec![
                (1, vec![change("topic", "news")]),
                (
                    2,
                    vec![SoEvent::Remove {
                        key: "topic".into()
                    }]
                ),
                (3, vec![SoEvent::Clear]),
            ]
        );
    }
}

#[test]
fn persistence_mismatch_and_write_without_use_get_statuses() {
    let mut h = room_of_three();
    h.peers[0].client.so_use("chat", true).unwrap();
    h.drive();
    let got = so_messages(h.take(0));
    assert_eq!(
        got[0].events,
        vec![SoEvent::Status {
            code: "SharedObject.BadPersistence".into(),
            level: "error".into()
        }]
    );
    let other = h.connect("chat/room1");
    h.take(other);
    h.peers[other]
        .client
        .so_set("chat", false, vec![("k".into(), text("v"))])
        .unwrap();
    h.drive();
    let got = so_messages(h.take(other));
    assert_eq!(
        got[0].events,
        vec![SoEvent::Status {
            code: "SharedObject.NoWriteAccess".into(),
            level: "error".into()
        }]
    );
    for i in 0..3 {
        assert!(
            so_messages(h.take(i)).is_empty(),
            "refused writes change nothing"
        );
    }
}

#[test]
fn limits_refuse_a_whole_batch_atomically() {
    let mut config = HubConfig::default();
    config.shared_objects.max_keys = 2;
    let mut h = Harness::new(config);
    let a = h.connect("chat");
    h.peers[a].client.so_use("s", false).unwrap();
    h.drive();
    h.take(a);
    let batch = vec![
        ("1".into(), text("a")),
        ("2".into(), text("b")),
        ("3".into(), text("c")),
    ];
    h.peers[a].client.so_set("s", false, batch).unwrap();
    h.drive();
    let got = so_messages(h.take(a));
    assert!(
        matches!(got[0].events[0], SoEvent::Status { ref code, .. } if code == "SharedObject.NoWriteAccess")
    );
    let scope = ScopePath::app("chat").unwrap();
    let (version, data) = h.hub.shared_object_data(&scope, "s").unwrap();
    assert_eq!(
        (version, data.len()),
        (0, 0),
        "nothing of the batch applied"
    );
}

#[test]
fn persistent_objects_are_stored_before_the_ack_and_reloaded() {
    let mut h = Harness::new(HubConfig::default());
    let a = h.connect("chat/room1");
    h.peers[a].client.so_use("scores", true).unwrap();
    h.peers[a]
        .client
        .so_set("scores", true, vec![("alice".into(), Value::Number(3.0))])
        .unwrap();
    h.drive();
    // Everyone leaves; the object is unloaded after room_idle, then used again.
    h.disconnect(a);
    h.advance(Duration::from_secs(120));
    let scope = ScopePath::resolve("chat/room1", 4).unwrap();
    assert!(!h.hub.has_scope(&scope));
    let b = h.connect("chat/room1");
    h.peers[b].client.so_use("scores", true).unwrap();
    h.drive();
    let got = so_messages(h.take(b));
    assert_eq!(got.last().unwrap().version, 1);
    assert!(got.last().unwrap().events.contains(&SoEvent::Change {
        key: "alice".into(),
        value: Value::Number(3.0)
    }));
}

/// A tiny deterministic PRNG for the property tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a subscriber has seen of "s": (version, notice) in order.
fn history(messages: &[SharedObjectMessage]) -> Vec<(u32, SoEvent)> {
    messages
        .iter()
        .flat_map(|m| m.events.iter().map(move |e| (m.version, e.clone())))
        .collect()
}

fn exactly_once_run(seed: u64) {
    let subscribers = 50;
    let writers = 5;
    let mut rng = Rng(seed | 1);
    let mut h = Harness::new(HubConfig::default());
    for i in 0..subscribers {
        let p = h.connect("chat/prop");
        h.peers[p].client.so_use("s", false).unwrap();
        h.drive();
        assert_eq!(p, i);
        h.take(p);
    }
    let mut sends = 0;
    let mut batches = 0;
    let mut issued = 0;
    for op in 0..120 {
        let w = rng.below(writers) as usize;
        let key = alloc::format!("k{}", rng.below(8));
        match rng.below(4) {
            0 | 1 => {
                batches += 1;
                let v = text(&alloc::format!("{op}"));
                h.peers[w]
                    .client
                    .so_set("s", false, vec![(key, v)])
                    .unwrap();
            }
            2 => {
                batches += 1;
                h.peers[w].client.so_delete("s", false, &key).unwrap();
            }
            _ => {
                sends += 1;
                let args = vec![Value::Number(op as f64)];
                h.peers[w].client.so_send("s", false, "m", args).unwrap();
            }
        }
        issued += 1;
        // Interleave: sometimes let several writers' messages pile up before
        // anything is delivered.
        if rng.below(3) == 0 {
            h.drive();
        }
    }
    h.drive();
    assert_eq!(issued, batches + sends);
    let views: Vec<Vec<SharedObjectMessage>> =
        (0..subscribers).map(|i| so_messages(h.take(i))).collect();
    // Everyone sees every batch exactly once, versions 1..=batches in order
    // (writers see their own batch as success/remove, others as change/remove).
    for (i, view) in views.iter().enumerate() {
        let versions: Vec<u32> = view
            .iter()
            .filter(|m| !matches!(m.events.first(), Some(SoEvent::SendMessage { .. })))
            .map(|m| m.version)
            .collect();
        let want: Vec<u32> = (1..=batches).collect();
        assert_eq!(versions, want, "seed {seed}: subscriber {i} versions");
        let messages = view
            .iter()
            .filter(|m| matches!(m.events.first(), Some(SoEvent::SendMessage { .. })))
            .count();
        assert_eq!(
            messages, sends as usize,
            "seed {seed}: subscriber {i} sends"
        );
    }
    // Same order for all: compare the non-writers' full histories, and every
    // subscriber's sequence of (version, kind) interleaving of sends/batches.
    let reference = history(&views[writers as usize]);
    for view in &views[writers as usize..] {
        assert_eq!(history(view), reference, "seed {seed}: same order for all");
    }
    let shape =
        |view: &Vec<SharedObjectMessage>| -> Vec<u32> { view.iter().map(|m| m.version).collect() };
    for view in &views {
        assert_eq!(shape(view), shape(&views[writers as usize]), "seed {seed}");
    }
    // And the final state of every view equals the server's.
    let scope = ScopePath::resolve("chat/prop", 4).unwrap();
    let (_, server) = h.hub.shared_object_data(&scope, "s").unwrap();
    for (i, view) in views[writers as usize..].iter().enumerate() {
        let mut state = alloc::collections::BTreeMap::new();
        for (_, event) in history(view) {
            match event {
                SoEvent::Change { key, value } => {
                    state.insert(key, value);
                }
                SoEvent::Remove { key } => {
                    state.remove(&key);
                }
                _ => {}
            }
        }
        assert_eq!(
            &state,
            server,
            "seed {seed}: subscriber {} state",
            i + writers as usize
        );
    }
}

proptest::proptest! {
    // Each case is a different interleaving of five writers' 120 ops; at
    // tens of milliseconds a case (debug build) proptest's default 256 fit.
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
    #[test]
    fn exactly_once_same_order_for_50_subscribers(seed in proptest::prelude::any::<u64>()) {
        exactly_once_run(seed);
    }
}

#[test]
fn the_four_naming_options_land_in_one_scope() {
    let mut h = Harness::new(HubConfig::default());
    let configs = [
        ClientConfig::new("chat/room1", "rtmp://h/chat/room1"),
        ClientConfig::new("chat?scope=room1", "rtmp://h/chat?scope=room1"),
        ClientConfig::new("chat", "rtmp://h/chat?scope=room1"),
        ClientConfig::new("chat/?scope=room1", "rtmp://h:1935/chat/?scope=room1"),
    ];
    for config in configs {
        let i = h.connect_with(config);
        assert!(connected(&h.take(i)));
    }
    let rooms: Vec<(String, usize)> = h
        .hub
        .scopes()
        .filter(|s| !s.path.is_app())
        .map(|s| (s.path.to_string(), s.connections))
        .collect();
    assert_eq!(rooms, vec![("/chat/room1".to_string(), 4)]);
}

struct RejectAll;
impl Application for RejectAll {
    fn on_connect(&mut self, _: ConnId, _: &ScopePath, _: &ConnectRequest) -> Decision {
        Decision::Reject("token missing".into())
    }
}

#[test]
fn a_rejected_connect_creates_no_scope_and_unknown_apps_are_invalid() {
    let hub = Hub::with_parts(
        HubConfig::default(),
        Box::new(RejectAll),
        Box::new(crate::hub::store::MemoryStore::new()),
    );
    let mut h = Harness::with_hub(hub);
    let i = h.connect("chat/secret");
    match h.take(i).as_slice() {
        [ClientEvent::ConnectFailed { code, description }, ..] => {
            assert_eq!(code, "NetConnection.Connect.Rejected");
            assert_eq!(description, "token missing");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.peers[i].closed, "rejected connection closed");
    assert_eq!(h.hub.scopes().count(), 2, "only the apps");

    let mut h = Harness::new(HubConfig::default());
    let i = h.connect("nosuchapp/room");
    assert!(matches!(
        h.take(i).as_slice(),
        [ClientEvent::ConnectFailed { code, .. }, ..] if code == "NetConnection.Connect.InvalidApp"
    ));
    let ok = h.connect("live");
    assert!(connected(&h.take(ok)), "others still served");
}

#[test]
fn empty_rooms_disappear_after_room_idle_and_apps_stay() {
    let mut h = Harness::new(HubConfig::default());
    let a = h.connect("chat/a/b");
    let b = h.connect("chat/c");
    h.peers[b].client.so_use("s", false).unwrap();
    h.drive();
    let paths =
        |h: &Harness| -> Vec<String> { h.hub.scopes().map(|s| s.path.to_string()).collect() };
    assert_eq!(
        paths(&h),
        ["/chat", "/chat/a", "/chat/a/b", "/chat/c", "/live"]
    );
    h.disconnect(a);
    h.disconnect(b);
    h.advance(Duration::from_secs(59));
    assert_eq!(paths(&h).len(), 5, "still within room_idle");
    h.advance(Duration::from_secs(2));
    assert_eq!(paths(&h), ["/chat", "/live"]);
    // A room that nobody ever joined (created by server-side code) goes too.
    let ghost = ScopePath::resolve("chat/ghost", 4).unwrap();
    let now = h.now;
    h.hub.so_apply(now, &ghost, "s", false, vec![]).unwrap();
    assert!(h.hub.has_scope(&ghost));
    h.advance(Duration::from_secs(61));
    assert!(!h.hub.has_scope(&ghost));
    assert_eq!(paths(&h), ["/chat", "/live"]);
}

#[test]
fn idle_timeouts_follow_the_tier_in_the_connect_query() {
    let mut h = Harness::new(HubConfig::default());
    let normal = h.connect("chat/r");
    let premium = h.connect_with(ClientConfig::new(
        "chat/r?tier=premium",
        "rtmp://h/chat/r?tier=premium",
    ));
    h.take(normal);
    h.take(premium);
    h.advance(Duration::from_mins(15) + Duration::from_secs(1));
    assert!(
        h.peers[normal].closed,
        "15 minutes idle closes a normal client"
    );
    let closed: Vec<_> = h.take(normal);
    assert!(closed.iter().any(
        |e| matches!(e, ClientEvent::Status { code, description, .. }
        if code == "NetConnection.Connect.Closed" && description.contains("idle"))
    ));
    assert!(!h.peers[premium].closed, "premium client stays");
    h.advance(Duration::from_mins(150));
    assert!(!h.peers[premium].closed, "still within 3 hours");
    h.advance(Duration::from_mins(16));
    assert!(
        h.peers[premium].closed,
        "3 hours idle closes a premium client"
    );
}

#[test]
fn silent_clients_are_pinged_and_closed_when_they_stay_silent() {
    let mut h = Harness::new(HubConfig::default());
    let alive = h.connect("chat");
    let silent = h.connect("chat");
    h.peers[silent].reading = false; // never sees the ping, never answers
    h.advance(Duration::from_secs(31));
    let pings = h
        .take(alive)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                ClientEvent::UserControl(crate::message::UserControl::PingRequest(_))
            )
        })
        .count();
    assert_eq!(pings, 1, "a quiet client is pinged after 30 s");
    h.advance(Duration::from_secs(31));
    assert!(!h.peers[alive].closed, "a client that answers pings stays");
    assert!(h.peers[silent].closed, "a client that does not is closed");
    assert!(matches!(
        h.peers[silent].server.close_reason(),
        Some(crate::connection::CloseReason::Failed(
            crate::rtmp::RtmpError::Unresponsive { .. }
        ))
    ));
    assert_eq!(h.hub.connection_count(crate::rtmp::PROTOCOL), 1);
}

// ----- live streams -----

fn avc_header() -> Bytes {
    Bytes::from_static(&[0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f])
}
fn keyframe(n: u8) -> Bytes {
    Bytes::from(vec![0x17, 0x01, 0, 0, 0, n, 1, 2, 3])
}
fn inter(n: u8) -> Bytes {
    Bytes::from(vec![0x27, 0x01, 0, 0, 0, n, 4, 5])
}
fn aac_header() -> Bytes {
    Bytes::from_static(&[0xAF, 0x00, 0x12, 0x10])
}
fn aac(n: u8) -> Bytes {
    Bytes::from(vec![0xAF, 0x01, n, n])
}

/// A publisher on live/<name>; returns (harness, publisher index, stream id).
fn publishing(config: HubConfig, name: &str) -> (Harness, usize, u32) {
    let mut h = Harness::new(config);
    let p = h.connect("live");
    let stream = h.create_stream(p);
    h.peers[p].client.publish(stream, name).unwrap();
    h.drive();
    let events = h.take(p);
    assert!(
        events.iter().any(
            |e| matches!(e, ClientEvent::Status { code, .. } if code == "NetStream.Publish.Start")
        ),
        "{events:?}"
    );
    (h, p, stream)
}

fn play(h: &mut Harness, name: &str) -> usize {
    let v = h.connect("live");
    let stream = h.create_stream(v);
    h.peers[v].client.play(stream, name, -2.0).unwrap();
    h.drive();
    v
}

fn videos(events: &[ClientEvent]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Media {
                kind: MediaKind::Video,
                payload,
                ..
            } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

fn send(h: &mut Harness, p: usize, stream: u32, kind: MediaKind, ts: u32, body: Bytes) {
    h.peers[p]
        .client
        .send_media(stream, kind, ts, body)
        .unwrap();
    h.drive();
}

/// A runtime may hold a player's media back to merge writes (runtime-std's
/// `streams.merge_write_ms`): it sleeps until the outbox goes from empty to
/// non-empty, so the hub must also wake it for the first notice that joins
/// held media — notices are never held.
#[test]
fn ready_fires_when_the_outbox_fills_and_again_for_the_first_notice() {
    let (mut h, p, stream) = publishing(HubConfig::default(), "cam");
    let v = play(&mut h, "cam");
    for i in [p, v] {
        h.peers[i].client.so_use("board", false).unwrap();
    }
    h.drive();
    h.take(v);
    let player = h.peers[v].id;
    h.peers[v].reading = false;
    h.ready.clear();
    let count = |h: &Harness| h.ready.iter().filter(|c| **c == player).count();

    send(&mut h, p, stream, MediaKind::Video, 0, keyframe(1));
    assert_eq!(count(&h), 1, "media into an empty outbox");
    for ts in 1..4u8 {
        send(
            &mut h,
            p,
            stream,
            MediaKind::Video,
            u32::from(ts) * 40,
            inter(ts),
        );
    }
    assert_eq!(count(&h), 1, "more media joins the held media quietly");

    h.peers[p]
        .client
        .so_set("board", false, vec![("k".into(), text("1"))])
        .unwrap();
    h.drive();
    assert_eq!(count(&h), 2, "the first notice wakes the writer");
    h.peers[p]
        .client
        .so_set("board", false, vec![("k".into(), text("2"))])
        .unwrap();
    h.drive();
    assert_eq!(count(&h), 2, "a second notice finds the writer awake");

    h.peers[v].reading = true;
    h.drive();
    let events = h.take(v);
    assert_eq!(videos(&events).len(), 4, "nothing held was lost");
    assert_eq!(so_messages(events).len(), 2);
}

/// Chat during video: a shared-object change overtakes the media queued
/// for a player that is behind (see `hub::outbox`, "notices ahead of
/// media"); the media still arrives whole and in order after it.
#[test]
fn a_shared_object_change_overtakes_two_megabytes_of_queued_media() {
    let (mut h, p, stream) = publishing(HubConfig::default(), "cam");
    let v = play(&mut h, "cam");
    for i in [p, v] {
        h.peers[i].client.so_use("chat", false).unwrap();
    }
    h.drive();
    h.take(p);
    h.take(v);
    let player = h.peers[v].id;
    h.peers[v].reading = false;

    // 40 frames of 50 kB, 1.6 s of a 10 Mbit/s stream: 2 MB queued, within
    // the default bounds (2 MiB, 5 s), so nothing is dropped.
    let frame = |n: u32| {
        let head: [u8; 5] = [if n == 0 { 0x17 } else { 0x27 }, 1, 0, 0, n as u8];
        Bytes::from(
            head.into_iter()
                .chain(core::iter::repeat_n(n as u8, 50_000 - 5))
                .collect::<Vec<u8>>(),
        )
    };
    let sent: Vec<Bytes> = (0..40).map(frame).collect();
    for (n, body) in sent.iter().enumerate() {
        send(
            &mut h,
            p,
            stream,
            MediaKind::Video,
            n as u32 * 40,
            body.clone(),
        );
    }
    let outbox = h.hub.outbox(player).unwrap();
    assert!(
        outbox.media_bytes() >= 2_000_000,
        "{}",
        outbox.media_bytes()
    );
    assert_eq!(outbox.dropped_total(), 0);

    h.peers[p]
        .client
        .so_set("chat", false, vec![("line".into(), text("hello"))])
        .unwrap();
    h.drive();
    let outbox = h.hub.outbox(player).unwrap();
    assert!(
        matches!(outbox.front(), Some(Delivery::SharedObject(_))),
        "the change is next, ahead of {} queued media bytes",
        outbox.media_bytes()
    );

    h.peers[v].reading = true;
    h.drive();
    let events = h.take(v);
    let first_so = events
        .iter()
        .position(|e| matches!(e, ClientEvent::SharedObject(_)))
        .expect("the change arrives");
    let first_media = events
        .iter()
        .position(|e| matches!(e, ClientEvent::Media { .. }))
        .expect("the media arrives");
    assert!(
        first_so < first_media,
        "change at {first_so}, first frame at {first_media}"
    );
    assert_eq!(videos(&events), sent, "every frame, in order, after it");
    let so = so_messages(events);
    assert_eq!(so.len(), 1);
    assert_eq!(so[0].events, vec![change("line", "hello")]);
}

#[test]
fn late_joiner_starts_with_metadata_headers_and_a_keyframe() {
    let (mut h, p, s) = publishing(HubConfig::default(), "cam");
    let meta = {
        let mut out = Vec::new();
        for v in [
            text("@setDataFrame"),
            text("onMetaData"),
            Value::object([("width", Value::Number(640.0))]),
        ] {
            crate::amf0::encode(&v, &mut out);
        }
        Bytes::from(out)
    };
    send(&mut h, p, s, MediaKind::Data, 0, meta);
    send(&mut h, p, s, MediaKind::Video, 0, avc_header());
    send(&mut h, p, s, MediaKind::Audio, 0, aac_header());
    send(&mut h, p, s, MediaKind::Video, 0, keyframe(1));
    send(&mut h, p, s, MediaKind::Audio, 10, aac(1));
    send(&mut h, p, s, MediaKind::Video, 40, inter(2));
    let v = play(&mut h, "cam");
    let events = h.take(v);
    let codes: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Status { code, .. } => Some(code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(codes, ["NetStream.Play.Reset", "NetStream.Play.Start"]);
    let first_media = events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Media { kind, payload, .. } => Some((*kind, payload.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_media.0, MediaKind::Data, "metadata first");
    let values = crate::amf0::decode_all(&first_media.1, &crate::Limits::default()).unwrap();
    assert_eq!(values[0], text("onMetaData"), "@setDataFrame stripped");
    assert_eq!(videos(&events), vec![avc_header(), keyframe(1), inter(2)]);
    // and it keeps receiving live frames
    send(&mut h, p, s, MediaKind::Video, 80, inter(3));
    assert_eq!(videos(&h.take(v)), vec![inter(3)]);
}

#[test]
fn without_a_gop_cache_a_joiner_waits_for_the_next_keyframe() {
    let config = HubConfig {
        max_gop_bytes: 0,
        ..HubConfig::default()
    };
    let (mut h, p, s) = publishing(config, "cam");
    send(&mut h, p, s, MediaKind::Video, 0, avc_header());
    send(&mut h, p, s, MediaKind::Video, 0, keyframe(1));
    let v = play(&mut h, "cam");
    send(&mut h, p, s, MediaKind::Video, 40, inter(2));
    send(&mut h, p, s, MediaKind::Video, 80, keyframe(3));
    send(&mut h, p, s, MediaKind::Video, 120, inter(4));
    assert_eq!(
        videos(&h.take(v)),
        vec![avc_header(), keyframe(3), inter(4)]
    );
}

#[test]
fn players_that_come_first_get_publish_notify_and_unpublish_notify() {
    let mut h = Harness::new(HubConfig::default());
    let v = play(&mut h, "later");
    let codes = |events: Vec<ClientEvent>| -> Vec<String> {
        events
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Status { code, .. } => Some(code),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        codes(h.take(v)),
        ["NetStream.Play.Reset", "NetStream.Play.Start"]
    );
    let p = h.connect("live");
    let s = h.create_stream(p);
    h.peers[p].client.publish(s, "later").unwrap();
    h.drive();
    assert_eq!(codes(h.take(v)), ["NetStream.Play.PublishNotify"]);
    send(&mut h, p, s, MediaKind::Video, 0, avc_header());
    send(&mut h, p, s, MediaKind::Video, 0, inter(1));
    send(&mut h, p, s, MediaKind::Video, 0, keyframe(2));
    assert_eq!(
        videos(&h.take(v)),
        vec![avc_header(), keyframe(2)],
        "starts on a keyframe"
    );
    h.peers[p].client.close_stream(s).unwrap();
    h.drive();
    assert_eq!(codes(h.take(v)), ["NetStream.Play.UnpublishNotify"]);
    assert!(codes(h.take(p)).contains(&"NetStream.Unpublish.Success".to_string()));
}

#[test]
fn a_second_publisher_gets_bad_name_when_conflicts_are_rejected() {
    let config = HubConfig {
        publish_conflict: PublishConflict::Reject,
        ..HubConfig::default()
    };
    let (mut h, _, _) = publishing(config, "cam");
    let q = h.connect("live");
    let s = h.create_stream(q);
    h.peers[q].client.publish(s, "cam").unwrap();
    h.drive();
    assert!(
        h.take(q)
            .iter()
            .any(|e| matches!(e, ClientEvent::Status { code, level, .. }
        if code == "NetStream.Publish.BadName" && level == "error"))
    );
}

#[test]
fn enhanced_rtmp_payloads_are_relayed_untouched() {
    let (mut h, p, s) = publishing(HubConfig::default(), "hevc");
    let v = play(&mut h, "hevc");
    h.take(v);
    let seq = Bytes::from_static(b"\x90hvc1\x01\x02\x03");
    let key = Bytes::from_static(b"\x91hvc1\x00\x00\x00\xAA\xBB");
    let frame = Bytes::from_static(b"\xA3hvc1\xCC");
    for (ts, body) in [(0, seq.clone()), (0, key.clone()), (40, frame.clone())] {
        send(&mut h, p, s, MediaKind::Video, ts, body);
    }
    assert_eq!(videos(&h.take(v)), vec![seq, key, frame]);
}

#[test]
fn a_subscriber_that_never_reads_does_not_hold_anyone_back() {
    let config = HubConfig {
        outbox: OutboxLimits {
            max_media_bytes: 64 * 1024,
            max_lag_ms: 2_000,
            max_cutbacks: 1_000,
            max_pending_notices: 64,
        },
        ..HubConfig::default()
    };
    let (mut h, p, s) = publishing(config.clone(), "cam");
    let fast: Vec<usize> = (0..3).map(|_| play(&mut h, "cam")).collect();
    let slow = play(&mut h, "cam");
    h.peers[slow].reading = false;
    for i in fast.iter().chain([&slow]) {
        h.take(*i);
    }
    send(&mut h, p, s, MediaKind::Video, 0, avc_header());
    let mut sent = vec![avc_header()];
    for n in 0..1500u32 {
        let body = if n % 50 == 0 {
            Bytes::from(
                vec![0x17, 1, 0, 0, 0, (n % 256) as u8]
                    .into_iter()
                    .chain(core::iter::repeat_n(7, 2000))
                    .collect::<Vec<u8>>(),
            )
        } else {
            Bytes::from(
                vec![0x27, 1, 0, 0, 0, (n % 256) as u8]
                    .into_iter()
                    .chain(core::iter::repeat_n(9, 500))
                    .collect::<Vec<u8>>(),
            )
        };
        sent.push(body.clone());
        send(&mut h, p, s, MediaKind::Video, n * 40, body);
        let queued = h.hub.outbox(h.peers[slow].id).unwrap().media_bytes();
        assert!(
            queued <= config.outbox.max_media_bytes,
            "slow queue {queued} within bound"
        );
    }
    for i in &fast {
        assert_eq!(videos(&h.take(*i)), sent, "fast player {i} got every frame");
    }
    let outbox = h.hub.outbox(h.peers[slow].id).unwrap();
    assert!(
        outbox.dropped_total() > 0,
        "the slow one lost frames, not the others"
    );
}

#[test]
fn a_subscriber_that_stays_behind_is_disconnected_with_a_reason() {
    let config = HubConfig {
        outbox: OutboxLimits {
            max_media_bytes: 16 * 1024,
            max_lag_ms: 1_000,
            max_cutbacks: 3,
            max_pending_notices: 64,
        },
        ..HubConfig::default()
    };
    let (mut h, p, s) = publishing(config, "cam");
    let slow = play(&mut h, "cam");
    h.peers[slow].reading = false;
    for n in 0..400u32 {
        let body = if n % 25 == 0 {
            keyframe(n as u8)
        } else {
            inter(n as u8)
        };
        send(&mut h, p, s, MediaKind::Video, n * 40, body);
    }
    assert!(
        h.hub_events
            .iter()
            .any(|e| matches!(e, HubEvent::Closing { conn, reason }
        if *conn == h.peers[slow].id && reason.contains("too slow"))),
        "{:?}",
        h.hub_events
    );
    assert_eq!(h.hub.counters().overflow_disconnects, 1);
    // The publisher is unaffected.
    assert!(!h.peers[p].closed);
    let info: Vec<_> = h.hub.streams().map(|s| (s.publishing, s.players)).collect();
    assert_eq!(
        info,
        vec![(true, 0)],
        "the lagging player was removed from the stream"
    );
}

// ----- caps and hooks -----

#[test]
fn connection_caps_per_scope_and_per_address() {
    let config = HubConfig {
        max_connections_per_scope: 2,
        max_connections_per_address: 3,
        max_rooms_per_app: 2,
        ..HubConfig::default()
    };
    let mut h = Harness::new(config);
    let a = h.connect("chat/r1");
    let b = h.connect("chat/r1");
    let c = h.connect("chat/r1");
    assert!(connected(&h.take(a)) && connected(&h.take(b)));
    assert!(
        h.take(c).iter().any(
            |e| matches!(e, ClientEvent::ConnectFailed { description, .. }
        if description.contains("full"))
        ),
        "third in a room of two"
    );
    let d = h.connect("chat/r2");
    assert!(connected(&h.take(d)));
    // All harness clients come from 127.0.0.1: the fourth accepted one is refused.
    let e = h.connect("chat/r2");
    assert!(h.take(e).iter().any(
        |ev| matches!(ev, ClientEvent::ConnectFailed { description, .. }
        if description.contains("too many connections from 127.0.0.1"))
    ));
    h.disconnect(d);
    // Two rooms exist already (r1, r2 lingers for room_idle): a third is refused.
    let f = h.connect("chat/r3");
    assert!(h.take(f).iter().any(
        |ev| matches!(ev, ClientEvent::ConnectFailed { description, .. }
        if description.contains("too many rooms"))
    ));
}

#[test]
fn too_many_objects_or_a_bad_name_is_object_creation_failed() {
    let mut config = HubConfig::default();
    config.shared_objects.max_per_scope = 1;
    let mut h = Harness::new(config);
    let a = h.connect("chat");
    h.peers[a].client.so_use("one", false).unwrap();
    h.peers[a].client.so_use("two", false).unwrap();
    h.peers[a].client.so_use("bad/name", false).unwrap();
    h.drive();
    let got = so_messages(h.take(a));
    let firsts: Vec<(String, SoEvent)> = got
        .into_iter()
        .map(|m| (m.name, m.events[0].clone()))
        .collect();
    let failed = SoEvent::Status {
        code: "SharedObject.ObjectCreationFailed".into(),
        level: "error".into(),
    };
    assert_eq!(
        firsts,
        vec![
            ("one".to_string(), SoEvent::UseSuccess),
            ("two".to_string(), failed.clone()),
            ("bad/name".to_string(), failed),
        ]
    );
}

/// Lets only `token=secret` publish, refuses play of "private", and makes
/// SO "readonly" unwritable.
struct Picky;
impl Application for Picky {
    fn on_publish(&mut self, _: ConnId, _: &ScopePath, _: &str, query: &str) -> Decision {
        if crate::scope_path::query_param(query, "token") == Some("secret") {
            Decision::Accept
        } else {
            Decision::Reject("bad token".into())
        }
    }
    fn on_play(&mut self, _: ConnId, _: &ScopePath, name: &str, _: &str) -> Decision {
        if name == "private" {
            Decision::Reject("not for you".into())
        } else {
            Decision::Accept
        }
    }
    fn on_shared_object(
        &mut self,
        _: ConnId,
        _: &ScopePath,
        name: &str,
        access: SoAccess,
    ) -> Decision {
        if name == "readonly" && access == SoAccess::Write {
            Decision::Reject("read only".into())
        } else {
            Decision::Accept
        }
    }
}

#[test]
fn application_hooks_decide_publish_play_and_writes() {
    let hub = Hub::with_parts(
        HubConfig::default(),
        Box::new(Picky),
        Box::new(crate::hub::store::MemoryStore::new()),
    );
    let mut h = Harness::with_hub(hub);
    let codes = |events: Vec<ClientEvent>| -> Vec<String> {
        events
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Status { code, .. } => Some(code),
                _ => None,
            })
            .collect()
    };
    let p = h.connect("live");
    let s = h.create_stream(p);
    h.peers[p].client.publish(s, "cam").unwrap();
    h.drive();
    assert_eq!(codes(h.take(p)), ["NetStream.Publish.BadName"]);
    h.peers[p].client.publish(s, "cam?token=secret").unwrap();
    h.drive();
    assert_eq!(codes(h.take(p)), ["NetStream.Publish.Start"]);
    let v = h.connect("live");
    let vs = h.create_stream(v);
    h.peers[v].client.play(vs, "private", -2.0).unwrap();
    h.drive();
    assert_eq!(codes(h.take(v)), ["NetStream.Play.StreamNotFound"]);
    h.peers[v].client.so_use("readonly", false).unwrap();
    h.peers[v]
        .client
        .so_set("readonly", false, vec![("k".into(), text("v"))])
        .unwrap();
    h.drive();
    let got = so_messages(h.take(v));
    assert_eq!(got[0].events[0], SoEvent::UseSuccess, "reading is fine");
    assert_eq!(
        got[1].events,
        vec![SoEvent::Status {
            code: "SharedObject.NoWriteAccess".into(),
            level: "error".into()
        }]
    );
}

#[test]
fn stored_objects_are_loaded_at_start() {
    use crate::hub::store::{MemoryStore, Store, StoredObject};
    let mut store = MemoryStore::new();
    let room = ScopePath::resolve("chat/room1", 4).unwrap();
    let mut data = alloc::collections::BTreeMap::new();
    data.insert("alice".to_string(), Value::Number(3.0));
    store
        .save(&room, "scores", &StoredObject { version: 7, data })
        .unwrap();
    let elsewhere = ScopePath::resolve("gone/room", 4).unwrap();
    store
        .save(&elsewhere, "old", &StoredObject::default())
        .unwrap();
    let mut hub = Hub::with_parts(
        HubConfig::default(),
        Box::new(DefaultApplication::default()),
        Box::new(store),
    );
    assert_eq!(
        hub.load_stored(Instant::from_millis(0)),
        Ok(1),
        "unknown app skipped"
    );
    let (version, data) = hub.shared_object_data(&room, "scores").unwrap();
    assert_eq!((version, data.len()), (7, 1));
}

// ----- stale publishers and takeovers -----

fn status_codes(events: &[ClientEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Status { code, .. } => Some(code.clone()),
            _ => None,
        })
        .collect()
}

/// Video messages a player got: (timestamp, body).
fn timed_videos(events: &[ClientEvent]) -> Vec<(u32, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Media {
                kind: MediaKind::Video,
                timestamp,
                payload,
                ..
            } => Some((*timestamp, payload.clone())),
            _ => None,
        })
        .collect()
}

fn closing_reasons(h: &Harness) -> Vec<String> {
    h.hub_events
        .iter()
        .filter_map(|e| match e {
            HubEvent::Closing { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn publish_as_new_client(h: &mut Harness, name: &str) -> (usize, u32) {
    let q = h.connect("live");
    let s = h.create_stream(q);
    h.peers[q].client.publish(s, name).unwrap();
    h.drive();
    (q, s)
}

#[test]
fn a_publisher_without_media_is_dropped_after_the_idle_timeout() {
    let (mut h, p, s) = publishing(HubConfig::default(), "cam");
    let v = play(&mut h, "cam");
    send(&mut h, p, s, MediaKind::Video, 0, avc_header());
    send(&mut h, p, s, MediaKind::Video, 0, keyframe(1));
    h.take(v);
    // Media keeps it alive past the 10 s default.
    for ts in 1..=3u8 {
        h.advance(Duration::from_secs(6));
        send(
            &mut h,
            p,
            s,
            MediaKind::Video,
            u32::from(ts) * 6000,
            inter(ts),
        );
    }
    assert!(h.hub.streams().any(|s| s.name == "cam" && s.publishing));
    assert!(closing_reasons(&h).is_empty());
    // 9.9 s of silence: still there; past 10 s: dropped.
    h.advance(Duration::from_millis(9_900));
    assert!(h.hub.streams().any(|s| s.name == "cam" && s.publishing));
    h.advance(Duration::from_millis(200));
    assert!(!h.hub.streams().any(|s| s.name == "cam" && s.publishing));
    assert_eq!(
        closing_reasons(&h),
        ["publisher of cam sent no media for 10s"]
    );
    let publisher = status_codes(&h.take(p));
    assert_eq!(
        publisher,
        ["NetStream.Publish.Idle", "NetConnection.Connect.Closed"]
    );
    assert_eq!(status_codes(&h.take(v)), ["NetStream.Play.UnpublishNotify"]);
}

#[test]
fn a_zero_idle_timeout_never_drops_a_publisher() {
    let config = HubConfig {
        publisher_idle_timeout: Duration::ZERO,
        ..HubConfig::default()
    };
    let (mut h, p, s) = publishing(config, "cam");
    send(&mut h, p, s, MediaKind::Video, 0, keyframe(1));
    // Longer than the default idle timeout; the client answers pings.
    h.advance(Duration::from_secs(25));
    assert!(h.hub.streams().any(|s| s.name == "cam" && s.publishing));
    assert!(closing_reasons(&h).is_empty());
    assert_eq!(h.hub.poll_timeout().map(|t| t > h.now), Some(true));
}

/// The default conflict rule: the new publisher takes over at once; the
/// old one is told and closed; the player stays, gets no UnpublishNotify,
/// and continues with the new sequence header and first keyframe, with
/// timestamps going on from where the old publisher stopped.
#[test]
fn a_new_publisher_replaces_the_old_and_players_continue() {
    let (mut h, p, s) = publishing(HubConfig::default(), "cam");
    let v = play(&mut h, "cam");
    send(&mut h, p, s, MediaKind::Video, 0, avc_header());
    send(&mut h, p, s, MediaKind::Video, 0, keyframe(1));
    send(&mut h, p, s, MediaKind::Video, 40, inter(2));
    send(&mut h, p, s, MediaKind::Video, 80, inter(3));
    let before = timed_videos(&h.take(v));
    assert_eq!(before.last().map(|(ts, _)| *ts), Some(80));

    let (q, qs) = publish_as_new_client(&mut h, "cam");
    assert_eq!(status_codes(&h.take(q)), ["NetStream.Publish.Start"]);
    assert_eq!(
        status_codes(&h.take(p)),
        [
            "NetStream.Unpublish.Success",
            "NetConnection.Connect.Closed"
        ]
    );
    assert_eq!(closing_reasons(&h), ["replaced by a new publisher of cam"]);
    assert_eq!(
        status_codes(&h.take(v)),
        ["NetStream.Play.PublishNotify"],
        "no UnpublishNotify: the player stays"
    );
    // The old publisher's media no longer counts.
    send(&mut h, p, s, MediaKind::Video, 120, inter(4));
    // The new one: its own header, an inter frame (skipped: the player
    // waits for a keyframe), a keyframe.
    let new_header = Bytes::from_static(&[0x17, 0x00, 0, 0, 0, 1, 0x4d, 0, 0x1e]);
    send(&mut h, q, qs, MediaKind::Video, 0, new_header.clone());
    send(&mut h, q, qs, MediaKind::Video, 0, inter(9));
    send(&mut h, q, qs, MediaKind::Video, 40, keyframe(10));
    send(&mut h, q, qs, MediaKind::Video, 80, inter(11));
    let after = timed_videos(&h.take(v));
    let bodies: Vec<Bytes> = after.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(bodies, vec![new_header.clone(), keyframe(10), inter(11)]);
    let stamps: Vec<u32> = after.iter().map(|(t, _)| *t).collect();
    assert_eq!(stamps, [180, 220, 260], "continues 100 ms after 80");

    // A late joiner gets the new publisher's header and GOP.
    let w = play(&mut h, "cam");
    let joined = timed_videos(&h.take(w));
    let bodies: Vec<Bytes> = joined.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(bodies, vec![new_header, keyframe(10), inter(11)]);
}

/// Replacing is decided after the access checks: a publisher the
/// application refuses does not take a live name over.
#[test]
fn a_refused_publisher_does_not_replace_the_live_one() {
    let hub = Hub::with_parts(
        HubConfig::default(),
        Box::new(Picky),
        Box::new(crate::hub::store::MemoryStore::new()),
    );
    let mut h = Harness::with_hub(hub);
    let (p, _) = publish_as_new_client(&mut h, "cam?token=secret");
    assert_eq!(status_codes(&h.take(p)), ["NetStream.Publish.Start"]);
    let (q, _) = publish_as_new_client(&mut h, "cam");
    assert_eq!(status_codes(&h.take(q)), ["NetStream.Publish.BadName"]);
    assert!(h.take(p).is_empty(), "the live publisher is untouched");
    let (r, _) = publish_as_new_client(&mut h, "cam?token=secret");
    assert_eq!(status_codes(&h.take(r)), ["NetStream.Publish.Start"]);
    assert_eq!(
        status_codes(&h.take(p)),
        [
            "NetStream.Unpublish.Success",
            "NetConnection.Connect.Closed"
        ]
    );
}

/// With `Reject`, a reconnecting encoder is refused while its stale
/// connection holds the name, and accepted once the idle timeout dropped
/// it.
#[test]
fn rejected_conflicts_clear_when_the_stale_publisher_is_dropped() {
    let config = HubConfig {
        publish_conflict: PublishConflict::Reject,
        publisher_idle_timeout: Duration::from_secs(5),
        ..HubConfig::default()
    };
    let (mut h, p, s) = publishing(config, "cam");
    send(&mut h, p, s, MediaKind::Video, 0, keyframe(1));
    h.advance(Duration::from_secs(2));
    let (q, qs) = publish_as_new_client(&mut h, "cam");
    assert_eq!(status_codes(&h.take(q)), ["NetStream.Publish.BadName"]);
    h.advance(Duration::from_millis(3_100));
    assert_eq!(
        closing_reasons(&h),
        ["publisher of cam sent no media for 5s"]
    );
    h.peers[q].client.publish(qs, "cam").unwrap();
    h.drive();
    assert_eq!(status_codes(&h.take(q)), ["NetStream.Publish.Start"]);
}

/// Publish claims (`crate::hub::claims`) seen by RTMP clients: the hub
/// module itself stays protocol-neutral, so its claim tests live here.
mod publish_claims {
    use crate::hub::{HubConfig, HubEvent};
    use crate::rtmp::ClientEvent;
    use crate::scope_path::ScopePath;
    use crate::testing::Harness;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn statuses(events: Vec<ClientEvent>) -> Vec<(String, String)> {
        events
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Status {
                    code, description, ..
                } => Some((code, description)),
                _ => None,
            })
            .collect()
    }

    fn has(events: &[(String, String)], code: &str) -> bool {
        events.iter().any(|(c, _)| c == code)
    }

    fn publish(h: &mut Harness) -> (usize, u64) {
        let p = h.connect("live");
        let s = h.create_stream(p);
        h.hub_events.clear();
        h.peers[p].client.publish(s, "cam").unwrap();
        h.drive();
        let claim = h.hub_events.iter().find_map(|e| match e {
            HubEvent::PublishClaim { claim, name, .. } if name == "cam" => Some(*claim),
            _ => None,
        });
        (p, claim.expect("no PublishClaim event"))
    }

    /// A clustered hub starts a publish only when its claim is granted,
    /// refuses it with the runtime's reason, and ends a publisher whose
    /// name another node took over without telling its players.
    #[test]
    fn publishes_wait_for_their_claim() {
        let mut h = Harness::new(HubConfig::default());
        h.hub.require_publish_claims(&[]);
        let v = h.connect("live");
        let vs = h.create_stream(v);
        h.peers[v].client.play(vs, "cam", -1.0).unwrap();
        h.drive();
        h.take(v);

        let (p, claim) = publish(&mut h);
        assert!(
            !has(&statuses(h.take(p)), "NetStream.Publish.Start"),
            "started before the claim was decided"
        );
        let live = ScopePath::app("live").unwrap();
        assert!(!h.hub.is_published(&live, "cam"));
        let now = h.now;
        assert!(h.hub.resolve_publish_claim(now, claim, Ok(())));
        h.drive();
        assert!(has(&statuses(h.take(p)), "NetStream.Publish.Start"));
        assert!(has(&statuses(h.take(v)), "NetStream.Play.PublishNotify"));
        // A claim is answered once.
        assert!(!h.hub.resolve_publish_claim(now, claim, Ok(())));

        let (q, refused) = publish(&mut h);
        let why = String::from("cam is already being published (on node n1)");
        assert!(!h.hub.resolve_publish_claim(now, refused, Err(why.clone())));
        h.drive();
        let answer = statuses(h.take(q));
        assert!(
            answer
                .iter()
                .any(|(c, d)| c == "NetStream.Publish.BadName" && *d == why),
            "{answer:?}"
        );
        assert!(h.hub.is_published(&live, "cam"));

        h.hub_events.clear();
        let reason = "was taken over by a publisher on node n2";
        assert!(h.hub.end_publish(now, &live, "cam", reason));
        h.drive();
        let told = statuses(h.take(p));
        assert!(
            told.iter()
                .any(|(c, d)| c == "NetStream.Unpublish.Success" && d.contains(reason)),
            "{told:?}"
        );
        assert!(!has(&statuses(h.take(v)), "NetStream.Play.UnpublishNotify"));
        assert!(h.hub.has_waiting_players(&live, "cam"));
        assert!(
            h.hub_events
                .iter()
                .any(|e| matches!(e, HubEvent::PlayWaiting { name, .. } if name == "cam"))
        );
        assert!(
            !h.hub_events
                .iter()
                .any(|e| matches!(e, HubEvent::Unpublished { .. })),
            "a taken-over name is not ours to unregister"
        );
    }

    /// Exempt protocols (relays pulling from the owner) publish at once;
    /// a normal unpublish is reported for the registry.
    #[test]
    fn exempt_publishes_start_at_once_and_unpublish_is_reported() {
        let mut h = Harness::new(HubConfig::default());
        h.hub.require_publish_claims(&[crate::rtmp::PROTOCOL]);
        let p = h.connect("live");
        let s = h.create_stream(p);
        h.hub_events.clear();
        h.peers[p].client.publish(s, "cam").unwrap();
        h.drive();
        assert!(has(&statuses(h.take(p)), "NetStream.Publish.Start"));
        assert!(
            !h.hub_events
                .iter()
                .any(|e| matches!(e, HubEvent::PublishClaim { .. }))
        );
        h.peers[p].client.close_stream(s).unwrap();
        h.drive();
        assert!(
            h.hub_events
                .iter()
                .any(|e| matches!(e, HubEvent::Unpublished { name, .. } if name == "cam"))
        );
    }
}
