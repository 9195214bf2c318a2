//! The connection contract ([`Connection`]) holds for every protocol:
//! the same generic checks run on RTMP and WebSocket connections.

use crate::connection::{CloseKind, Connection};
use crate::hub::{Delivery, HubConfig};
use crate::testing::Harness;
use crate::time::Instant;

fn drain<S: Connection>(s: &mut S) -> usize {
    core::iter::from_fn(|| s.poll_transmit())
        .map(|b| b.len())
        .sum()
}

/// A `handle_timeout` before the deadline, or a second one at it, changes
/// nothing: no bytes, no requests, the same next deadline.
fn extra_timeouts_are_no_ops<S: Connection>(s: &mut S) {
    drain(s);
    let deadline = s.poll_timeout().expect("an open connection has a timer");
    s.handle_timeout(Instant::from_millis(deadline.as_millis() - 1));
    assert_eq!(drain(s), 0, "early: nothing sent");
    assert!(s.poll_event().is_none());
    assert_eq!(s.poll_timeout(), Some(deadline), "early: same deadline");
    s.handle_timeout(deadline);
    drain(s);
    let after = s.poll_timeout();
    let closing = s.is_closing();
    s.handle_timeout(deadline);
    assert_eq!(drain(s), 0, "again: nothing sent");
    assert!(s.poll_event().is_none());
    assert_eq!(s.poll_timeout(), after, "again: same deadline");
    assert_eq!(s.is_closing(), closing);
}

/// After a failure: the same error again for more input, no timer, no
/// bytes for deliveries, and a failure as the close reason.
fn a_failure_sticks<S: Connection>(s: &mut S, now: Instant, bad: &[u8])
where
    S::Error: PartialEq,
{
    let error = s.handle_input(now, bad).expect_err("bad input fails");
    assert!(s.is_closing());
    drain(s);
    assert_eq!(s.handle_input(now, b"more").err(), Some(error.clone()));
    assert_eq!(s.poll_timeout(), None);
    s.handle_delivery(now, Delivery::StreamBegin { stream: 1 });
    s.handle_delivery(
        now,
        Delivery::Close {
            reason: "late".into(),
        },
    );
    assert_eq!(drain(s), 0, "deliveries after a failure are ignored");
    let reason = s.close_reason().expect("a reason");
    assert!(reason.is_failure());
    assert_eq!(reason.failure(), Some(&error));
    assert_eq!(reason.kind(), CloseKind::Protocol);
}

/// An orderly close (the hub's): not a failure, and later input is taken
/// as nothing.
fn an_orderly_close_is_not_a_failure<S: Connection>(s: &mut S, now: Instant) {
    s.handle_delivery(
        now,
        Delivery::Close {
            reason: "bye".into(),
        },
    );
    assert!(s.is_closing());
    assert!(drain(s) > 0, "the client is told");
    let reason = s.close_reason().expect("a reason");
    assert!(!reason.is_failure());
    assert_eq!(reason.kind(), CloseKind::Server);
    assert!(s.handle_input(now, b"anything").is_ok());
    assert_eq!(drain(s), 0);
}

fn harness() -> Harness {
    Harness::new(HubConfig::default())
}

#[test]
fn rtmp_follows_the_contract() {
    let mut h = harness();
    let c = h.connect("chat");
    let now = h.now;
    extra_timeouts_are_no_ops(&mut h.peers[c].server);
    // A chunk with fmt 0 on csid 2 claiming a 16 MiB message: over the limit.
    let bad = [0x02, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x14, 0, 0, 0, 0];
    let c = h.connect("chat");
    a_failure_sticks(&mut h.peers[c].server, now, &bad);
    let c = h.connect("chat");
    an_orderly_close_is_not_a_failure(&mut h.peers[c].server, now);
}

#[test]
fn websocket_follows_the_contract() {
    let mut h = harness();
    let c = h.connect_ws("/chat", None);
    let now = h.now;
    extra_timeouts_are_no_ops(&mut h.ws[c].server);
    // An unmasked client frame breaks RFC 6455.
    let c = h.connect_ws("/chat", None);
    a_failure_sticks(&mut h.ws[c].server, now, &[0x81, 0x01, b'x']);
    let c = h.connect_ws("/chat", None);
    an_orderly_close_is_not_a_failure(&mut h.ws[c].server, now);
}

/// A WebSocket client that does not read gets nothing pulled for it: its
/// notices wait in the hub's outbox until it reads again.
#[test]
fn the_harness_applies_back_pressure_to_websocket_clients_too() {
    let mut h = harness();
    let writer = h.connect_ws("/chat/room", None);
    let reader = h.connect_ws("/chat/room", None);
    for ws in [writer, reader] {
        h.ws[ws].send_text(r#"{"op":"use","so":"board"}"#);
    }
    h.drive();
    for ws in [writer, reader] {
        h.ws[ws].take_json();
    }
    h.ws[reader].reading = false;
    for n in 0..3 {
        let op = alloc::format!(r#"{{"op":"set","so":"board","key":"k","value":{n}}}"#);
        h.ws[writer].send_text(&op);
        h.drive();
    }
    let id = h.ws[reader].id;
    assert_eq!(
        h.hub.outbox(id).map(|o| o.len()),
        Some(3),
        "held in the hub"
    );
    assert!(h.ws[reader].take_json().is_empty());
    h.ws[reader].reading = true;
    h.drive();
    assert_eq!(h.ws[reader].take_json().len(), 3);
    assert_eq!(h.hub.outbox(id).map(|o| o.len()), Some(0));
}
