use super::*;
use crate::access::{AddrRules, HookUrls, RateLimit};
use crate::hub::{MediaKind, SoChange, SoNotice};
use alloc::collections::BTreeMap;
use alloc::vec;

const T0: Instant = Instant::from_millis(1_000);
const WALL: u64 = 1_700_000_000;

fn policy(app: AppPolicy) -> Arc<AccessPolicy> {
    let mut apps = BTreeMap::new();
    apps.insert("live".to_owned(), app);
    Arc::new(AccessPolicy {
        apps,
        ..AccessPolicy::default()
    })
}

fn addr(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn rtmp_connect(target: &str) -> Request {
    Request::Connect(ConnectRequest {
        protocol: crate::rtmp::PROTOCOL,
        target: target.to_owned(),
        params: Value::object([
            ("app", Value::string("live")),
            (
                "flashVer",
                Value::string("FMLE/3.0 (compatible; Lavf59.27.100)"),
            ),
            ("tcUrl", Value::string("rtmp://127.0.0.1:1935/live")),
        ]),
        args: vec![],
        address: addr("127.0.0.1"),
        notices: None,
    })
}

fn publish(name: &str) -> Request {
    Request::Publish {
        stream: 1,
        name: name.to_owned(),
    }
}

fn play(name: &str) -> Request {
    Request::Play {
        stream: 1,
        name: name.to_owned(),
        start: -2000.0,
        encoder: crate::rtmp::fanout::media_encoder(4096, 1),
    }
}

fn hooked() -> AppPolicy {
    AppPolicy {
        hooks: HookUrls {
            on_connect: Some("http://hook/connect".to_owned()),
            on_publish: Some("http://hook/publish".to_owned()),
            on_play: Some("http://hook/play".to_owned()),
            on_done: Some("http://hook/done".to_owned()),
            on_publish_done: Some("http://hook/publish_done".to_owned()),
            on_play_done: Some("http://hook/play_done".to_owned()),
            on_update: Some("http://hook/update".to_owned()),
            on_record_done: Some("http://hook/record_done".to_owned()),
        },
        ..AppPolicy::default()
    }
}

fn ok() -> HookReply {
    HookReply::Status {
        code: 200,
        location: None,
    }
}

fn replies(gate: &mut Gate) -> Vec<Delivery> {
    core::iter::from_fn(|| gate.poll_reply()).collect()
}

fn connected(app: AppPolicy, from: &str) -> Gate {
    let mut gate = Gate::new(policy(app), ConnId(7), addr(from), T0);
    let pass = gate.handle(T0, WALL, rtmp_connect("live?x=1"));
    if pass.is_none() {
        let call = gate.poll_call().unwrap();
        gate.resolve(T0, WALL, call.id, ok());
        assert!(matches!(gate.poll_request(), Some(Request::Connect(_))));
    }
    gate
}

#[test]
fn address_rules_refuse_publish_but_allow_play() {
    let app = AppPolicy {
        allow_publish: AddrRules::parse(&["10.0.0.0/8"]).unwrap(),
        ..AppPolicy::default()
    };
    let mut gate = connected(app.clone(), "192.0.2.1");
    assert_eq!(gate.handle(T0, WALL, play("cam")), Some(play("cam")));
    assert_eq!(gate.handle(T0, WALL, publish("cam")), None);
    let out = replies(&mut gate);
    assert!(
        matches!(
            &out[..],
            [Delivery::Status { code: "NetStream.Publish.BadName", description, .. }, Delivery::Close { .. }]
                if description.contains("allow_publish")
        ),
        "{out:?}"
    );
    assert!(gate.is_closed());
    // Nothing passes after the close, not even media.
    let media = Request::Media {
        stream: 1,
        kind: MediaKind::Video,
        timestamp: 0,
        payload: bytes::Bytes::new(),
    };
    assert_eq!(gate.handle(T0, WALL, media), None);

    let mut inside = connected(app, "10.1.2.3");
    assert_eq!(
        inside.handle(T0, WALL, publish("cam")),
        Some(publish("cam"))
    );
}

#[test]
fn address_rules_refuse_connect_before_any_hook() {
    let app = AppPolicy {
        allow_connect: AddrRules::parse(&["127.0.0.1/32"]).unwrap(),
        ..hooked()
    };
    let mut gate = Gate::new(policy(app), ConnId(1), addr("192.0.2.9"), T0);
    assert_eq!(gate.handle(T0, WALL, rtmp_connect("live")), None);
    assert!(
        gate.poll_call().is_none(),
        "no callback for a refused address"
    );
    assert!(matches!(
        replies(&mut gate).first(),
        Some(Delivery::Rejected { .. })
    ));
}

#[test]
fn signed_urls_for_publish_and_websocket_connect() {
    let app = AppPolicy {
        secret: Some(b"s3cret".to_vec()),
        ..AppPolicy::default()
    };
    let token = token::sign(b"s3cret", "live/cam", WALL + 60);
    let good = format!("cam?token={token}&expires={}", WALL + 60);
    let mut gate = connected(app.clone(), "127.0.0.1");
    assert!(gate.handle(T0, WALL, publish(&good)).is_some());

    for bad in [
        "cam".to_owned(),
        format!("cam2?token={token}&expires={}", WALL + 60),
        format!("cam?token={token}&expires={}", WALL + 61),
    ] {
        let mut gate = connected(app.clone(), "127.0.0.1");
        assert_eq!(gate.handle(T0, WALL, publish(&bad)), None, "{bad}");
        assert!(matches!(
            replies(&mut gate).first(),
            Some(Delivery::Status { .. })
        ));
    }
    // Expired.
    let mut gate = connected(app.clone(), "127.0.0.1");
    assert_eq!(gate.handle(T0, WALL + 61, publish(&good)), None);
    let out = replies(&mut gate);
    assert!(
        matches!(&out[0], Delivery::Status { description, .. } if description.contains("expired"))
    );

    // A WebSocket connect signs the room path.
    let ws_token = token::sign(b"s3cret", "live/room1", WALL + 5);
    let ws = |target: String| {
        Request::Connect(ConnectRequest {
            protocol: crate::ws::PROTOCOL,
            target,
            params: Value::Null,
            args: vec![],
            address: addr("127.0.0.1"),
            notices: None,
        })
    };
    let mut gate = Gate::new(policy(app.clone()), ConnId(2), addr("127.0.0.1"), T0);
    let target = format!("live/room1?token={ws_token}&expires={}", WALL + 5);
    assert!(gate.handle(T0, WALL, ws(target)).is_some());
    let mut gate = Gate::new(policy(app), ConnId(3), addr("127.0.0.1"), T0);
    let target = format!("live/room2?token={ws_token}&expires={}", WALL + 5);
    assert!(gate.handle(T0, WALL, ws(target)).is_none());
    assert!(matches!(
        replies(&mut gate).first(),
        Some(Delivery::Rejected { .. })
    ));
}

#[test]
fn callbacks_carry_nginx_fields_and_hold_later_requests() {
    let mut gate = Gate::new(policy(hooked()), ConnId(7), addr("127.0.0.1"), T0);
    assert_eq!(gate.handle(T0, WALL, rtmp_connect("live?x=1")), None);
    let call = gate.poll_call().unwrap();
    assert_eq!(call.kind, HookKind::Connect);
    assert_eq!(call.url, "http://hook/connect");
    assert_eq!(call.field("call"), Some("connect"));
    assert_eq!(call.field("addr"), Some("127.0.0.1"));
    assert_eq!(call.field("clientid"), Some("7"));
    assert_eq!(call.field("app"), Some("live"));
    assert_eq!(call.field("tcurl"), Some("rtmp://127.0.0.1:1935/live"));
    assert_eq!(
        call.field("flashver"),
        Some("FMLE/3.0 (compatible; Lavf59.27.100)")
    );
    assert_eq!(call.field("x"), Some("1"));
    assert_eq!(call.field("protocol"), Some("rtmp"));
    assert_eq!(call.field("scope"), Some("/live"));
    // What the client sends meanwhile waits, in order.
    assert_eq!(gate.handle(T0, WALL, publish("cam?k=v%20w")), None);
    assert!(gate.poll_request().is_none());
    gate.resolve(T0, WALL, call.id, ok());
    assert!(matches!(gate.poll_request(), Some(Request::Connect(_))));
    // The held publish is now decided: its own callback.
    assert!(gate.poll_request().is_none());
    let call = gate.poll_call().unwrap();
    assert_eq!(call.field("call"), Some("publish"));
    assert_eq!(call.field("name"), Some("cam"));
    assert_eq!(call.field("type"), Some("live"));
    assert_eq!(call.field("k"), Some("v w"));
    assert_eq!(call.field("x"), Some("1"));
    // A reply to an unknown call changes nothing.
    gate.resolve(T0, WALL, CallId(999), ok());
    assert!(gate.poll_request().is_none());
    gate.resolve(T0, WALL, call.id, ok());
    assert_eq!(gate.poll_request(), Some(publish("cam?k=v%20w")));

    // Updates while publishing, then the done calls at the end.
    assert_eq!(
        gate.poll_timeout(),
        Some(T0 + crate::time::Duration::from_secs(30))
    );
    let later = T0 + crate::time::Duration::from_secs(30);
    gate.handle_timeout(later);
    let update = gate.poll_call().unwrap();
    assert_eq!(update.field("call"), Some("update_publish"));
    assert_eq!(update.field("time"), Some("30"));
    assert_eq!(gate.poll_timeout(), None, "one update in flight at a time");
    gate.resolve(later, WALL, update.id, ok());
    assert!(!gate.is_closed());
    assert!(
        gate.handle(later, WALL, Request::CloseStream { stream: 1 })
            .is_some()
    );
    let done: Vec<_> = core::iter::from_fn(|| gate.poll_call()).collect();
    let names: Vec<_> = done.iter().map(|c| c.field("call").unwrap()).collect();
    assert_eq!(names, ["publish_done", "done"]);
    assert_eq!(done[0].field("name"), Some("cam"));
    assert!(!done[0].kind.wants_reply());
}

#[test]
fn callback_replies_allow_rename_or_reject() {
    let mut gate = connected(hooked(), "127.0.0.1");
    let _ = gate.poll_call();
    assert_eq!(gate.handle(T0, WALL, play("cam?a=b")), None);
    let call = gate.poll_call().unwrap();
    assert_eq!(call.field("start"), Some("4294965296"));
    gate.resolve(
        T0,
        WALL,
        call.id,
        HookReply::Status {
            code: 302,
            location: Some("other".to_owned()),
        },
    );
    assert_eq!(gate.poll_request(), Some(play("other?a=b")));
    // Done calls name the stream as renamed.
    gate.finish();
    let done = gate.poll_call().unwrap();
    assert_eq!(
        (done.field("call"), done.field("name")),
        (Some("play_done"), Some("other"))
    );

    for reply in [
        HookReply::Status {
            code: 403,
            location: None,
        },
        HookReply::Status {
            code: 302,
            location: None,
        },
        HookReply::Status {
            code: 302,
            location: Some("rtmp://elsewhere/live/x".to_owned()),
        },
        HookReply::Failed("timed out after 3000 ms".to_owned()),
    ] {
        let mut gate = connected(hooked(), "127.0.0.1");
        let _ = gate.poll_call();
        assert_eq!(gate.handle(T0, WALL, publish("cam")), None);
        let call = gate.poll_call().unwrap();
        gate.resolve(T0, WALL, call.id, reply.clone());
        assert!(gate.poll_request().is_none(), "{reply:?}");
        let out = replies(&mut gate);
        assert!(
            matches!(
                &out[..],
                [
                    Delivery::Status {
                        level: Level::Error,
                        ..
                    },
                    Delivery::Close { .. }
                ]
            ),
            "{reply:?}: {out:?}"
        );
        // A refused publish never started: no done calls.
        gate.finish();
        assert!(gate.poll_call().is_none());
    }

    // A refused connect.
    let mut gate = Gate::new(policy(hooked()), ConnId(1), addr("127.0.0.1"), T0);
    let _ = gate.handle(T0, WALL, rtmp_connect("live"));
    let call = gate.poll_call().unwrap();
    gate.resolve(
        T0,
        WALL,
        call.id,
        HookReply::Status {
            code: 500,
            location: None,
        },
    );
    let out = replies(&mut gate);
    assert!(
        matches!(&out[..], [Delivery::Rejected { description, .. }, Delivery::Close { .. }] if description.contains("500"))
    );
}

#[test]
fn failed_update_drops_only_when_strict_or_refused() {
    for (strict, reply, dropped) in [
        (false, HookReply::Failed("refused".to_owned()), false),
        (true, HookReply::Failed("refused".to_owned()), true),
        (
            false,
            HookReply::Status {
                code: 404,
                location: None,
            },
            true,
        ),
    ] {
        let app = AppPolicy {
            update_strict: strict,
            ..hooked()
        };
        let mut gate = connected(app, "127.0.0.1");
        let _ = gate.poll_call();
        let _ = gate.handle(T0, WALL, publish("cam"));
        let call = gate.poll_call().unwrap();
        gate.resolve(T0, WALL, call.id, ok());
        let t = gate.poll_timeout().unwrap();
        gate.handle_timeout(t);
        let update = gate.poll_call().unwrap();
        gate.resolve(t, WALL, update.id, reply);
        assert_eq!(gate.is_closed(), dropped, "strict {strict}");
    }
}

#[test]
fn held_requests_are_bounded() {
    let mut gate = Gate::new(policy(hooked()), ConnId(1), addr("127.0.0.1"), T0);
    let _ = gate.handle(T0, WALL, rtmp_connect("live"));
    for _ in 0..MAX_HELD {
        assert_eq!(
            gate.handle(T0, WALL, Request::CloseStream { stream: 1 }),
            None
        );
    }
    assert!(!gate.is_closed());
    let _ = gate.handle(T0, WALL, Request::CloseStream { stream: 1 });
    assert!(gate.is_closed());
    assert!(matches!(
        replies(&mut gate).last(),
        Some(Delivery::Close { .. })
    ));
}

fn so_set(key: &str) -> Request {
    Request::SharedObject {
        name: "chat".to_owned(),
        persistent: false,
        op: SoOp::Batch(vec![SoChange::Set {
            key: key.to_owned(),
            value: Value::Number(1.0),
        }]),
    }
}

#[test]
fn shared_object_flood_is_limited_then_dropped() {
    let mut apps = BTreeMap::new();
    apps.insert("live".to_owned(), AppPolicy::default());
    let policy = Arc::new(AccessPolicy {
        apps,
        so_ops: RateLimit {
            per_sec: 100,
            burst: 10,
        },
        ..AccessPolicy::default()
    });
    let mut gate = Gate::new(policy, ConnId(1), addr("127.0.0.1"), T0);
    assert!(gate.handle(T0, WALL, rtmp_connect("live")).is_some());
    let mut passed = 0;
    for _ in 0..10 {
        passed += usize::from(gate.handle(T0, WALL, so_set("k")).is_some());
    }
    assert_eq!(passed, 10);
    assert!(gate.handle(T0, WALL, so_set("k")).is_none());
    let out = replies(&mut gate);
    assert!(matches!(&out[..], [Delivery::SharedObject(u)]
        if u.update.notices == [SoNotice::Status { code: RATE_LIMITED, level: "error" }]));
    assert!(matches!(gate.poll_event(), Some(GateEvent::Refused(_))));
    // 10 ms later one more is accepted, which ends the streak.
    let t1 = T0 + crate::time::Duration::from_millis(10);
    assert!(gate.handle(t1, WALL, so_set("k")).is_some());
    // Releasing costs nothing.
    let release = Request::SharedObject {
        name: "chat".to_owned(),
        persistent: false,
        op: SoOp::Release,
    };
    assert!(gate.handle(t1, WALL, release).is_some());
    for i in 1..REFUSALS_BEFORE_DROP {
        assert!(gate.handle(t1, WALL, so_set("k")).is_none());
        assert!(!gate.is_closed(), "closed after {i}");
    }
    assert!(gate.handle(t1, WALL, so_set("k")).is_none());
    assert!(gate.is_closed());
    let last = replies(&mut gate).pop();
    assert!(matches!(last, Some(Delivery::Close { reason }) if reason.contains("rate limit")));
}

#[test]
fn client_so_write_off_refuses_writes_not_reads() {
    let app = AppPolicy {
        client_so_write: false,
        ..AppPolicy::default()
    };
    let mut gate = connected(app, "127.0.0.1");
    let use_so = Request::SharedObject {
        name: "board".to_owned(),
        persistent: false,
        op: SoOp::Use,
    };
    assert!(gate.handle(T0, WALL, use_so).is_some());
    assert!(gate.handle(T0, WALL, so_set("k")).is_none());
    let send = Request::SharedObject {
        name: "board".to_owned(),
        persistent: false,
        op: SoOp::Send {
            method: "m".to_owned(),
            args: vec![],
        },
    };
    assert!(gate.handle(T0, WALL, send).is_none());
    let out = replies(&mut gate);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|d| matches!(d, Delivery::SharedObject(u)
        if u.update.notices == [SoNotice::Status { code: status::NO_WRITE_ACCESS, level: "error" }])));
    assert!(!gate.is_closed());
}

#[test]
fn apps_without_rules_pass_everything() {
    let mut gate = Gate::new(Arc::new(AccessPolicy::default()), ConnId(1), None, T0);
    assert!(gate.handle(T0, WALL, rtmp_connect("chat/room")).is_some());
    assert!(gate.handle(T0, WALL, publish("cam")).is_some());
    assert!(gate.poll_call().is_none());
}

/// Every connection has a gate: one that needs no callbacks and refuses
/// nothing stays at its fixed size and allocates nothing more.
#[test]
fn an_ordinary_connection_gate_stays_small() {
    assert!(
        core::mem::size_of::<Gate>() <= 96,
        "{}",
        core::mem::size_of::<Gate>()
    );
    let mut gate = connected(AppPolicy::default(), "127.0.0.1");
    assert!(gate.handle(T0, WALL, publish("cam")).is_some());
    assert!(gate.handle(T0, WALL, play("cam")).is_some());
    assert!(gate.handle(T0, WALL, so_set("k")).is_some());
    assert!(
        gate.handle(T0, WALL, Request::CloseStream { stream: 1 })
            .is_some()
    );
    gate.finish();
    assert!(gate.x.is_none());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Connect(String),
        Publish(String),
        Play(String),
        Set(usize),
        Media,
        Close,
        Reply(u16, Option<String>),
        Fail,
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let text = "[a-z/?=&%0-9.]{0,24}";
        prop_oneof![
            text.prop_map(Op::Connect),
            text.prop_map(Op::Publish),
            text.prop_map(Op::Play),
            (0usize..4).prop_map(Op::Set),
            Just(Op::Media),
            Just(Op::Close),
            (100u16..600, proptest::option::of(text)).prop_map(|(c, l)| Op::Reply(c, l)),
            Just(Op::Fail),
            (0u64..40_000).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Whatever a client sends and the webhook answers: no panic,
        /// nothing reaches the hub while a decision is pending or after the
        /// gate closed, and every close is the connection's last reply.
        #[test]
        fn the_gate_never_leaks_past_a_pending_decision_or_a_close(
            ops in proptest::collection::vec(op(), 0..60),
            strict in any::<bool>(),
        ) {
            let app = AppPolicy {
                update_strict: strict,
                update_interval: crate::time::Duration::from_secs(5),
                secret: None,
                ..hooked()
            };
            let mut gate = Gate::new(policy(app), ConnId(1), addr("127.0.0.1"), T0);
            let mut now = T0;
            let mut calls = Vec::new();
            for op in ops {
                let waiting = gate.is_waiting();
                let closed = gate.is_closed();
                let passed = match op {
                    Op::Connect(t) => gate.handle(now, WALL, rtmp_connect(&format!("live/{t}"))),
                    Op::Publish(n) => gate.handle(now, WALL, publish(&n)),
                    Op::Play(n) => gate.handle(now, WALL, play(&n)),
                    Op::Set(n) => gate.handle(now, WALL, Request::SharedObject {
                        name: "so".to_owned(),
                        persistent: false,
                        op: SoOp::Batch(vec![SoChange::Delete { key: "k".to_owned() }; n]),
                    }),
                    Op::Media => gate.handle(now, WALL, Request::Media {
                        stream: 1,
                        kind: MediaKind::Audio,
                        timestamp: 5,
                        payload: bytes::Bytes::new(),
                    }),
                    Op::Close => gate.handle(now, WALL, Request::CloseStream { stream: 1 }),
                    Op::Reply(code, location) => {
                        if let Some(call) = calls.pop() {
                            gate.resolve(now, WALL, call, HookReply::Status { code, location });
                        }
                        None
                    }
                    Op::Fail => {
                        if let Some(call) = calls.pop() {
                            gate.resolve(now, WALL, call, HookReply::Failed("down".to_owned()));
                        }
                        None
                    }
                    Op::Wait(ms) => {
                        now = now + crate::time::Duration::from_millis(ms);
                        if gate.poll_timeout().is_some_and(|t| t <= now) {
                            gate.handle_timeout(now);
                        }
                        None
                    }
                };
                if waiting || closed {
                    prop_assert!(passed.is_none());
                }
                if closed {
                    prop_assert!(gate.poll_request().is_none());
                }
                while let Some(call) = gate.poll_call() {
                    if call.kind.wants_reply() {
                        calls.push(call.id);
                    }
                }
                let replies: Vec<Delivery> = core::iter::from_fn(|| gate.poll_reply()).collect();
                if let Some(i) = replies.iter().position(|d| matches!(d, Delivery::Close { .. })) {
                    prop_assert_eq!(i, replies.len() - 1);
                    prop_assert!(gate.is_closed());
                }
                while gate.poll_request().is_some() {}
                while gate.poll_event().is_some() {}
            }
            gate.finish();
            prop_assert!(gate.handle(now, WALL, publish("x")).is_none());
        }
    }
}
