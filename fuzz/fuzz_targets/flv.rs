//! Everything in `tern_core::flv` that reads bytes from outside: the tag
//! reader, a recorded file's metadata rewrite, and the FLV player
//! connection's request side.
//!
//! Input: `[mode, la, lb, split, rest…]`, every part run on every input:
//! 1. `rest` as FLV data: `parse_file_header`, `FlvTagView::parse` tag by
//!    tag and `tags`. Each tag read re-encodes (`write_tag`) to exactly the
//!    bytes it took, except the bits the reader ignores (the type byte's
//!    top three bits, the stream id); `tags` gives the same tags as reading
//!    one by one, or fails where that does.
//! 2. `rest` as a data tag body: `metadata::with_seek_fields` under
//!    `limits_from(la, lb)`. On success, filling the slots gives a body
//!    whose `onMetaData` has exactly those `duration` and `filesize` (as
//!    AMF0 encodings, NaN included), of the same length, and running
//!    `with_seek_fields` again on it changes nothing but the two numbers
//!    (which it zeroes).
//! 3. `rest` in pieces (`split`) as the bytes an FLV player sends: mode bit
//!    0 clear, an HTTP-FLV request head from the first byte; set, a valid
//!    WebSocket upgrade for `/live/cam.flv` then `rest` as frames. Requests
//!    are answered as the hub would (connect accepted, play started; mode
//!    bit 1: then the stream ends). Checked: `pending_bytes` is what
//!    `poll_transmit` hands out; after a close no requests and no output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::amf0::{self, Value};
use tern_core::flv::metadata;
use tern_core::flv::tag::{self, FlvTagView};
use tern_core::flv::{FlvConfig, FlvConnection, Framing};
use tern_core::hub::{Delivery, Level, Request, SessionLimits};
use tern_core::scope_path::ScopePath;
use tern_core::{Instant, Limits};
use tern_core_fuzz::{limits_from, pieces};

fuzz_target!(|data: &[u8]| {
    let [mode, la, lb, split, rest @ ..] = data else {
        return;
    };
    tags(rest);
    seek_fields(rest, &limits_from(*la, *lb));
    connection(*mode, *split, rest);
});

fn tags(data: &[u8]) {
    let mut rest = data;
    if rest.starts_with(b"FLV") {
        match tag::parse_file_header(rest) {
            Ok((_, used)) => {
                assert_eq!(used, tag::FILE_HEADER_LEN);
                rest = &rest[used..];
            }
            Err(_) => {
                assert!(tag::tags(data).is_err(), "tags accepted a bad header");
                return;
            }
        }
    }
    let mut one_by_one = Vec::new();
    let mut failed = false;
    while !rest.is_empty() {
        match FlvTagView::parse(rest) {
            Ok((view, used)) => {
                assert!(used <= rest.len());
                let taken = &rest[..used];
                let mut again = Vec::new();
                tag::write_tag(&mut again, view.kind, view.timestamp, view.body)
                    .expect("a tag that was read fits a tag");
                assert_eq!(again.len(), used, "re-encoded length");
                assert_eq!(again[0], taken[0] & 0x1F, "tag type");
                assert_eq!(again[1..8], taken[1..8], "size and timestamp");
                assert_eq!(again[11..], taken[11..], "body and previous size");
                one_by_one.push(view);
                rest = &rest[used..];
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    match tag::tags(data) {
        Ok(all) => {
            assert!(!failed, "tags accepted what parse refused");
            assert_eq!(all, one_by_one);
        }
        Err(_) => assert!(failed, "tags refused what parse accepted"),
    }
}

fn seek_fields(body: &[u8], limits: &Limits) {
    let Some((mut out, fields)) = metadata::with_seek_fields(body, limits) else {
        return;
    };
    let len = out.len();
    // Values from the input, so odd doubles (NaN, -0, huge) show up too.
    let duration = f64::from_bits(u64::from_le_bytes(
        body.iter().copied().chain([0; 8]).take(8).collect::<Vec<_>>()[..]
            .try_into()
            .expect("8 bytes"),
    ));
    let filesize = body.len() as u64 * 7919;
    assert!(fields.fill(&mut out, duration, filesize), "slots inside the body");
    assert_eq!(out.len(), len, "filling changes no length");
    let values = amf0::decode_all(&out, &Limits::default()).expect("the rewrite decodes");
    assert_eq!(values.first().and_then(Value::as_str), Some("onMetaData"));
    let meta = values.get(1).expect("metadata follows its name");
    let encoded = |v: Option<&Value>| {
        let mut out = Vec::new();
        amf0::encode(v.expect("key present"), &mut out);
        out
    };
    assert_eq!(
        encoded(meta.get("duration")),
        encoded(Some(&Value::Number(duration)))
    );
    assert_eq!(
        encoded(meta.get("filesize")),
        encoded(Some(&Value::Number(filesize as f64)))
    );
    let (again, fields_again) = metadata::with_seek_fields(&out, &Limits::default())
        .expect("a rewritten body is metadata again");
    assert_eq!(fields_again, fields, "slots stay where they were");
    let mut zeroed = out.clone();
    assert!(fields.fill(&mut zeroed, 0.0, 0));
    assert_eq!(again, zeroed, "a second rewrite changes only the numbers");
}

fn connection(mode: u8, split: u8, rest: &[u8]) {
    let websocket = mode & 1 != 0;
    let ends = mode & 2 != 0;
    let framing = if websocket {
        Framing::WebSocket
    } else {
        Framing::HttpChunked
    };
    let mut now = Instant::from_millis(1);
    let mut conn = FlvConnection::new(FlvConfig::default(), framing, now, None);
    if websocket {
        let upgrade = "GET /live/cam.flv HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\n";
        conn.handle_input(now, upgrade.as_bytes())
            .expect("a valid upgrade is accepted");
        answer(&mut conn, now, ends);
    }
    for piece in pieces(split, rest) {
        now = Instant::from_millis(now.as_millis() + 7);
        let closing_before = conn.is_closing();
        let result = conn.handle_input(now, piece);
        if closing_before {
            assert!(conn.poll_event().is_none(), "request after close");
            assert!(conn.poll_transmit().is_none(), "output after close");
        }
        // The head's deadline can pass between pieces; what it queues (the
        // 408) is drained with the rest before the next piece.
        if result.is_ok() && conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now);
        }
        answer(&mut conn, now, ends);
        if result.is_err() {
            assert!(conn.is_closing(), "an error closes");
            break;
        }
    }
    // The head's deadline passes.
    now = Instant::from_millis(now.as_millis() + 60_000);
    if conn.poll_timeout().is_some_and(|t| t <= now) {
        conn.handle_timeout(now);
        assert!(conn.is_closing(), "a head that never came closes");
    }
    answer(&mut conn, now, ends);
}

/// Plays the hub for the connection's requests and drains its output.
fn answer(conn: &mut FlvConnection, now: Instant, ends: bool) {
    while let Some(request) = conn.poll_event() {
        match request {
            Request::Connect(_) => conn.handle_delivery(
                now,
                Delivery::Accepted {
                    scope: ScopePath::resolve("live", 4).expect("valid"),
                    session: SessionLimits {
                        idle_timeout: tern_core::Duration::from_secs(60),
                        session_timeout: None,
                    },
                },
            ),
            Request::Play { stream, .. } => {
                conn.handle_delivery(
                    now,
                    Delivery::Status {
                        stream,
                        level: Level::Status,
                        code: "NetStream.Play.Start",
                        description: String::new(),
                    },
                );
                if ends {
                    conn.handle_delivery(now, Delivery::StreamEof { stream });
                }
            }
            _ => {}
        }
    }
    let pending = conn.pending_bytes();
    let mut out = 0usize;
    while let Some(bytes) = conn.poll_transmit() {
        out += bytes.len();
    }
    assert_eq!(out, pending, "pending_bytes is what goes out");
    assert_eq!(conn.pending_bytes(), 0);
}
