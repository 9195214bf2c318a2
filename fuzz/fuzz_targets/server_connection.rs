//! A whole server connection: valid handshake, then arbitrary chunk stream.
//!
//! Input: `[split, limits_a, limits_b, mode, stream…]`, where `mode` picks
//! - bit 0: limits from `limits_a`/`limits_b` (set) or `Limits::small()`;
//! - bit 1: digest (set) or plain client handshake;
//! - bit 2: the hub accepts (set) or rejects every connect;
//! - bit 3: the first piece of `stream` arrives in the same read as C2;
//! - bits 4–5: time between reads (0, 7 ms, 1 s, 31 s);
//! - bit 6: outbound chunk size 128 (set) or 4096.
//!
//! A `ClientHandshake` completes the handshake with the connection; then the
//! stream is fed in fuzzer-chosen pieces to `handle_input`, with
//! `poll_event` and `poll_transmit` drained and `handle_timeout` called when
//! due after every read, and a few timeouts at the end. Requests get the
//! answers a hub would give (accept/reject, statuses, StreamBegin).
//!
//! Checks, besides "never panics": once `handle_input` fails the
//! connection is closing and keeps failing; `pending_bytes` is 0 after
//! draining; and everything the server writes after the handshake is a
//! valid chunk stream of messages that `ChunkDecoder` and `Message::decode`
//! (default limits) accept, as a client would need.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_core::Limits;
use tern_core::chunk::ChunkDecoder;
use tern_core::hub::{Delivery, Level, RejectCode, Request, SessionLimits};
use tern_core::message::Message;
use tern_core::rtmp::handshake::{ClientHandshake, HandshakeKind, RANDOM_LEN};
use tern_core::rtmp::{ServerConfig, ServerConnection};
use tern_core::scope_path::ScopePath;
use tern_core::time::{Duration, Instant};
use tern_core_fuzz::{filler, limits_from, pieces};

/// Plays the client's side of the byte stream the server writes.
struct Peer {
    decoder: ChunkDecoder,
    buf: BytesMut,
    limits: Limits,
}

impl Peer {
    fn take(&mut self, conn: &mut ServerConnection) {
        while let Some(b) = conn.poll_transmit() {
            assert!(!b.is_empty(), "empty transmit");
            self.buf.extend_from_slice(&b);
        }
        assert_eq!(conn.pending_bytes(), 0, "pending bytes after draining");
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(raw)) => {
                    if let Err(e) = Message::decode(&raw, &self.limits) {
                        panic!("server sent an undecodable message {raw:?}: {e}");
                    }
                }
                Ok(None) => break,
                Err(e) => panic!("server wrote a bad chunk stream: {e}"),
            }
        }
    }
}

/// Answers requests the way a permissive (or refusing) hub would.
fn answer(conn: &mut ServerConnection, now: Instant, accept: bool) {
    let mut deliveries = Vec::new();
    while let Some(req) = conn.poll_event() {
        match req {
            Request::Connect(_) => deliveries.push(if accept {
                Delivery::Accepted {
                    scope: ScopePath::app("live").expect("valid app name"),
                    session: SessionLimits {
                        idle_timeout: Duration::from_secs(60),
                        session_timeout: None,
                    },
                }
            } else {
                Delivery::Rejected {
                    code: RejectCode::Rejected,
                    description: String::from("no"),
                }
            }),
            Request::Publish { stream, .. } => deliveries.push(Delivery::Status {
                stream,
                level: Level::Status,
                code: "NetStream.Publish.Start",
                description: String::from("publishing"),
            }),
            Request::Play { stream, .. } => {
                deliveries.push(Delivery::StreamBegin { stream });
                deliveries.push(Delivery::Status {
                    stream,
                    level: Level::Status,
                    code: "NetStream.Play.Start",
                    description: String::from("playing"),
                });
            }
            Request::CloseStream { stream } => deliveries.push(Delivery::StreamEof { stream }),
            _ => {}
        }
    }
    for d in deliveries {
        conn.handle_delivery(now, d);
    }
}

fn tick(conn: &mut ServerConnection, now: Instant) {
    if conn.poll_timeout().is_some_and(|t| now >= t) {
        conn.handle_timeout(now);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[split, la, lb, mode], stream)) = data.split_first_chunk::<4>() else {
        return;
    };
    let limits = if mode & 1 == 1 {
        limits_from(la, lb)
    } else {
        Limits::small()
    };
    let kind = if mode & 2 == 2 {
        HandshakeKind::Digest
    } else {
        HandshakeKind::Plain
    };
    let accept = mode & 4 == 4;
    let glue = mode & 8 == 8;
    let dt = Duration::from_millis([0, 7, 1000, 31_000][usize::from((mode >> 4) & 3)]);
    let config = ServerConfig {
        out_chunk_size: if mode & 64 == 64 { 128 } else { 4096 },
        max_streams: 3,
        limits,
        ..ServerConfig::default()
    };

    let mut now = Instant::from_millis(1_000);
    let mut conn = ServerConnection::new(config, now, &filler::<RANDOM_LEN>(mode), None);
    let mut client = ClientHandshake::new(&filler::<RANDOM_LEN>(!mode), 0, kind);

    // Handshake: C0+C1, S0+S1+S2, C2 (with the first piece glued on if asked).
    let c0c1 = client.poll_transmit().expect("C0+C1");
    conn.handle_input(now, &c0c1).expect("C0+C1 accepted");
    let reply: Vec<u8> = std::iter::from_fn(|| conn.poll_transmit())
        .flatten()
        .collect();
    assert_eq!(client.handle_input(&reply), Ok(reply.len()));
    assert!(client.is_complete());
    let mut c2 = client.poll_transmit().expect("C2").to_vec();
    let parts = pieces(split, stream);
    let mut parts = parts.as_slice();
    if glue && let Some((first, rest)) = parts.split_first() {
        c2.extend_from_slice(first);
        parts = rest;
    }

    let mut peer = Peer {
        decoder: ChunkDecoder::new(&Limits::default()),
        buf: BytesMut::new(),
        limits: Limits::default(),
    };
    let mut failed = conn.handle_input(now, &c2).is_err();
    answer(&mut conn, now, accept);
    peer.take(&mut conn);

    for piece in parts {
        if failed {
            break;
        }
        now = now + dt;
        tick(&mut conn, now);
        match conn.handle_input(now, piece) {
            Ok(()) => assert!(conn.close_reason().is_none_or(|r| !r.is_failure())),
            Err(e) => {
                assert!(conn.is_closing(), "failed with {e} but not closing");
                assert_eq!(conn.handle_input(now, &[]), Err(e), "error changed");
                failed = true;
            }
        }
        answer(&mut conn, now, accept);
        peer.take(&mut conn);
    }

    // Let time run: ping, then give up on the silent client.
    for _ in 0..3 {
        if let Some(t) = conn.poll_timeout() {
            now = now.max(t);
        }
        conn.handle_timeout(now);
        answer(&mut conn, now, accept);
        peer.take(&mut conn);
    }
    assert!(
        conn.is_closing(),
        "connection still open after its timeouts"
    );
    assert!(conn.handle_input(now, b"x").is_err());
});
