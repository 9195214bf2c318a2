//! A WebSocket server connection fed arbitrary bytes after a valid upgrade.
//!
//! Input: `[split, mode, rest…]`. The connection first gets a valid HTTP
//! upgrade request (mode bit 0: JSON protocol; set: Red5 chat subprotocol;
//! mode bit 1: the echo endpoint), then `rest` in fuzzer-chosen pieces.
//! Requests it produces are answered the way the hub would (connect
//! accepted, a use answered with a sync, a set with an ack), so the
//! delivery side is exercised too. Checks: never panics; input after a
//! close produces no requests and no output; output stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use tern_core::Instant;
use tern_core::hub::{
    Delivery, Request, SessionLimits, SoChange, SoDelivery, SoNotice, SoOp, SoUpdate,
};
use tern_core::scope_path::ScopePath;
use tern_core::ws::{WsConfig, WsConnection};
use tern_core_fuzz::pieces;

fuzz_target!(|data: &[u8]| {
    let [split, mode, rest @ ..] = data else {
        return;
    };
    let chat = mode & 1 != 0;
    let echo = mode & 2 != 0;
    let config = WsConfig {
        max_message: 64 * 1024,
        echo_path: Some("/echo".into()),
        ..WsConfig::default()
    };
    let mut now = Instant::from_millis(1);
    let mut conn = WsConnection::new(config, now, None);
    let path = if echo { "/echo" } else { "/chat/room1" };
    let protocol = if chat {
        "Sec-WebSocket-Protocol: chat\r\n"
    } else {
        ""
    };
    let upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    );
    conn.handle_input(now, upgrade.as_bytes())
        .expect("a valid upgrade is accepted");
    answer(&mut conn, now);
    for piece in pieces(*split, rest) {
        now = Instant::from_millis(now.as_millis() + 7);
        let closing_before = conn.is_closing();
        let result = conn.handle_input(now, piece);
        if closing_before {
            // Input after a close is ignored: no requests, no output.
            assert!(conn.poll_event().is_none(), "request after close");
            assert!(conn.poll_transmit().is_none(), "output after close");
        }
        answer(&mut conn, now);
        if result.is_err() {
            break;
        }
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now);
        }
    }
});

/// Plays the hub for the connection's requests and drains its output.
fn answer(conn: &mut WsConnection, now: Instant) {
    let mut version = 0u32;
    while let Some(request) = conn.poll_event() {
        let delivery = match request {
            Request::Connect(_) => Delivery::Accepted {
                scope: ScopePath::resolve("chat/room1", 4).expect("valid"),
                session: SessionLimits {
                    idle_timeout: tern_core::Duration::from_secs(60),
                    session_timeout: None,
                },
            },
            Request::SharedObject {
                name,
                persistent,
                op,
            } => {
                let notices = match op {
                    SoOp::Use => vec![SoNotice::UseSuccess, SoNotice::Clear],
                    SoOp::Batch(changes) => {
                        version += 1;
                        changes
                            .into_iter()
                            .map(|c| match c {
                                SoChange::Set { key, .. } => SoNotice::Success { key },
                                SoChange::Delete { key } => SoNotice::Remove { key },
                            })
                            .collect()
                    }
                    SoOp::Send { method, args } => vec![SoNotice::Message { method, args }],
                    SoOp::Release => continue,
                };
                let update = SoUpdate::new(name, persistent, version, notices);
                let encoded = tern_core::ws::fanout::notices_encoder().encode_update(&update);
                Delivery::SharedObject(SoDelivery {
                    update: Arc::new(update),
                    encoded,
                })
            }
            _ => continue,
        };
        conn.handle_delivery(now, delivery);
    }
    let mut pending = 0usize;
    while let Some(bytes) = conn.poll_transmit() {
        pending += bytes.len();
    }
    assert!(pending < 4 * 1024 * 1024, "output stays bounded");
}
