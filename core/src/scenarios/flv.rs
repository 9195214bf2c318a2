//! FLV players on the hub: the fast start, timestamps from 0 per join
//! point, encodings shared by players that joined at the same keyframe,
//! and a whole HTTP-FLV / WS-FLV connection driven through the hub.

use crate::amf0::Value;
use crate::connection::Connection;
use crate::flv::fanout::{Framing, media_encoder, unwrap_tag};
use crate::flv::tag::{self, FlvTagView};
use crate::flv::{FlvConfig, FlvConnection, FlvError};
use crate::hub::{ConnId, ConnectRequest, Delivery, Hub, HubConfig, MediaKind, Protocol, Request};
use crate::time::Instant;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

const NOW: Instant = Instant::from_millis(1_000);
const AVC_HEADER: &[u8] = &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f];
const AAC_HEADER: &[u8] = &[0xAF, 0, 0x12, 0x10];
const KEY: &[u8] = &[0x17, 1, 0, 0, 0, 9, 9];
const INTER: &[u8] = &[0x27, 1, 0, 0, 0, 8];
const AUDIO: &[u8] = &[0xAF, 1, 7, 7];

fn connect(hub: &mut Hub, conn: u64, protocol: Protocol) {
    hub.handle(
        NOW,
        ConnId(conn),
        Request::Connect(ConnectRequest {
            protocol,
            target: "live".into(),
            params: Value::Null,
            args: Vec::new(),
            address: None,
            notices: None,
        }),
    );
}

fn media(hub: &mut Hub, kind: MediaKind, timestamp: u32, payload: &'static [u8]) {
    hub.handle(
        NOW,
        ConnId(1),
        Request::Media {
            stream: 1,
            kind,
            timestamp,
            payload: Bytes::from_static(payload),
        },
    );
}

fn publisher(hub: &mut Hub) {
    connect(hub, 1, crate::rtmp::PROTOCOL);
    hub.handle(
        NOW,
        ConnId(1),
        Request::Publish {
            stream: 1,
            name: "cam".into(),
        },
    );
}

fn play_flv(hub: &mut Hub, conn: u64, framing: Framing) {
    connect(hub, conn, crate::flv::PROTOCOL);
    hub.handle(
        NOW,
        ConnId(conn),
        Request::Play {
            stream: 1,
            name: "cam".into(),
            start: -1.0,
            encoder: media_encoder(framing),
        },
    );
}

/// Every media delivery queued for `conn`, emptied.
fn media_of(hub: &mut Hub, conn: u64) -> Vec<Bytes> {
    let mut got = Vec::new();
    while let Some(d) = hub.poll_delivery(ConnId(conn)) {
        if let Delivery::Media(m) = d {
            got.push(m.encoded);
        }
    }
    got
}

fn stamps(encoded: &[Bytes], framing: Framing) -> Vec<(MediaKind, u32)> {
    encoded
        .iter()
        .map(|e| {
            let tag = unwrap_tag(framing, e).unwrap();
            let (view, _) = FlvTagView::parse(&tag).unwrap();
            (view.kind, view.timestamp)
        })
        .collect()
}

/// A publish that has headers and one GOP (keyframe at 5000).
fn live_stream(hub: &mut Hub) {
    publisher(hub);
    media(hub, MediaKind::Video, 4900, AVC_HEADER);
    media(hub, MediaKind::Audio, 4900, AAC_HEADER);
    media(hub, MediaKind::Video, 5000, KEY);
    media(hub, MediaKind::Audio, 4990, AUDIO); // interleaved just behind
    media(hub, MediaKind::Video, 5040, INTER);
}

#[test]
fn a_joiner_starts_at_zero_and_stays_monotonic_through_the_gop_burst() {
    let mut hub = Hub::new(HubConfig::default());
    live_stream(&mut hub);
    play_flv(&mut hub, 2, Framing::Raw);
    media(&mut hub, MediaKind::Video, 5080, INTER);
    let got = stamps(&media_of(&mut hub, 2), Framing::Raw);
    assert_eq!(
        got,
        vec![
            (MediaKind::Audio, 0), // sequence headers, stamped like the keyframe
            (MediaKind::Video, 0),
            (MediaKind::Video, 0), // the keyframe
            (MediaKind::Audio, 0), // 4990: before the base, held at 0
            (MediaKind::Video, 40),
            (MediaKind::Video, 80), // live
        ]
    );
}

#[test]
fn players_that_join_at_one_keyframe_share_every_encoding() {
    let mut hub = Hub::new(HubConfig::default());
    live_stream(&mut hub);
    for conn in 2..=6 {
        play_flv(&mut hub, conn, Framing::HttpChunked);
    }
    for conn in 2..=6 {
        media_of(&mut hub, conn);
    }
    let before = hub.encodings().of("flv");
    media(&mut hub, MediaKind::Video, 5080, INTER);
    assert_eq!(
        hub.encodings().of("flv") - before,
        1,
        "one encoding for five"
    );
    let first = media_of(&mut hub, 2);
    for conn in 3..=6 {
        let got = media_of(&mut hub, conn);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ptr(), first[0].as_ptr(), "the same bytes");
    }
    // A player joining at the next keyframe counts from it: a second
    // encoding, and its own zero.
    media(&mut hub, MediaKind::Video, 7000, KEY);
    for conn in 2..=6 {
        media_of(&mut hub, conn);
    }
    play_flv(&mut hub, 7, Framing::HttpChunked);
    let joined = stamps(&media_of(&mut hub, 7), Framing::HttpChunked);
    assert_eq!(joined.last(), Some(&(MediaKind::Video, 0)));
    let before = hub.encodings().of("flv");
    media(&mut hub, MediaKind::Video, 7040, INTER);
    assert_eq!(hub.encodings().of("flv") - before, 2, "two join points");
    assert_eq!(
        stamps(&media_of(&mut hub, 7), Framing::HttpChunked),
        vec![(MediaKind::Video, 40)]
    );
    assert_eq!(
        stamps(&media_of(&mut hub, 2), Framing::HttpChunked),
        vec![(MediaKind::Video, 2040)]
    );
}

#[test]
fn rtmp_players_keep_the_publishers_clock_beside_flv_players() {
    let mut hub = Hub::new(HubConfig::default());
    live_stream(&mut hub);
    play_flv(&mut hub, 2, Framing::WebSocket);
    connect(&mut hub, 3, crate::rtmp::PROTOCOL);
    hub.handle(
        NOW,
        ConnId(3),
        Request::Play {
            stream: 1,
            name: "cam".into(),
            start: -1.0,
            encoder: crate::rtmp::media_encoder(4096, 1),
        },
    );
    media_of(&mut hub, 2);
    media_of(&mut hub, 3);
    media(&mut hub, MediaKind::Video, 5080, INTER);
    assert_eq!(
        stamps(&media_of(&mut hub, 2), Framing::WebSocket),
        vec![(MediaKind::Video, 80)]
    );
    let rtmp = media_of(&mut hub, 3);
    let body = crate::chunk::standalone_payload(&rtmp[0], 4096).unwrap();
    assert_eq!(body.as_ref(), INTER);
    // fmt-0 header: the timestamp is the publisher's.
    assert_eq!(&rtmp[0][1..4], &[0, 0x13, 0xD8]);
}

#[test]
fn a_player_waiting_for_the_publisher_starts_at_its_first_message() {
    let mut hub = Hub::new(HubConfig::default());
    connect(&mut hub, 1, crate::rtmp::PROTOCOL);
    play_flv(&mut hub, 2, Framing::Raw);
    media_of(&mut hub, 2);
    hub.handle(
        NOW,
        ConnId(1),
        Request::Publish {
            stream: 1,
            name: "cam".into(),
        },
    );
    media(&mut hub, MediaKind::Video, 9000, AVC_HEADER);
    media(&mut hub, MediaKind::Video, 9000, KEY);
    media(&mut hub, MediaKind::Video, 9040, INTER);
    let got = stamps(&media_of(&mut hub, 2), Framing::Raw);
    assert_eq!(
        got,
        vec![
            (MediaKind::Video, 0),
            (MediaKind::Video, 0),
            (MediaKind::Video, 40)
        ]
    );
}

/// Runs `conn` against `hub` as a runtime would: requests in, deliveries
/// out, bytes collected.
fn pump(hub: &mut Hub, id: u64, conn: &mut FlvConnection, out: &mut Vec<u8>) {
    loop {
        let mut moved = false;
        while let Some(request) = conn.poll_event() {
            hub.handle(NOW, ConnId(id), request);
            moved = true;
        }
        while let Some(d) = hub.poll_delivery(ConnId(id)) {
            conn.handle_delivery(NOW, d);
            moved = true;
        }
        while let Some(bytes) = conn.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        if !moved {
            return;
        }
    }
}

/// The body of a chunked response (after its head), de-chunked; and
/// whether the last chunk came.
fn dechunk(mut body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(line) = body.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let len = usize::from_str_radix(core::str::from_utf8(&body[..line]).unwrap(), 16).unwrap();
        if len == 0 {
            return (out, true);
        }
        out.extend_from_slice(&body[line + 2..line + 2 + len]);
        assert_eq!(&body[line + 2 + len..line + 4 + len], b"\r\n");
        body = &body[line + 4 + len..];
    }
}

#[test]
fn an_http_flv_request_gets_200_the_header_the_gop_and_live_tags() {
    let mut hub = Hub::new(HubConfig::default());
    live_stream(&mut hub);
    let mut conn = FlvConnection::new(FlvConfig::default(), Framing::HttpChunked, NOW, None);
    hub.handle(NOW, ConnId(9), Request::Disconnect); // unknown ids are harmless
    conn.handle_input(
        NOW,
        b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\nOrigin: http://page\r\n\r\n",
    )
    .unwrap();
    let mut out = Vec::new();
    pump(&mut hub, 2, &mut conn, &mut out);
    media(&mut hub, MediaKind::Video, 5080, INTER);
    pump(&mut hub, 2, &mut conn, &mut out);
    let text = core::str::from_utf8(&out[..out.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Type: video/x-flv"));
    assert!(text.contains("Transfer-Encoding: chunked"));
    assert!(text.contains("Access-Control-Allow-Origin: *"));
    let (flv, ended) = dechunk(&out[text.len() + 4..]);
    assert!(!ended);
    assert_eq!(&flv[..13], &tag::FILE_HEADER);
    let tags = tag::tags(&flv).unwrap();
    let got: Vec<(MediaKind, u32)> = tags.iter().map(|t| (t.kind, t.timestamp)).collect();
    assert_eq!(got.len(), 6);
    assert_eq!(got[2], (MediaKind::Video, 0));
    assert_eq!(tags[2].body, KEY);
    assert_eq!(got[5], (MediaKind::Video, 80));
    // Unpublish ends the response with the last chunk, cleanly.
    hub.handle(NOW, ConnId(1), Request::CloseStream { stream: 1 });
    pump(&mut hub, 2, &mut conn, &mut out);
    assert!(out.ends_with(b"0\r\n\r\n"));
    assert!(conn.is_closing());
    assert_eq!(conn.flv_close_reason(), Some(&FlvError::Ended));
    assert!(!Connection::close_reason(&conn).unwrap().is_failure());
    assert_eq!(hub.connection_count(crate::flv::PROTOCOL), 1);
}

#[test]
fn a_ws_flv_upgrade_gets_101_then_binary_frames_header_first() {
    let mut hub = Hub::new(HubConfig::default());
    live_stream(&mut hub);
    let mut conn = FlvConnection::new(FlvConfig::default(), Framing::WebSocket, NOW, None);
    conn.handle_input(
        NOW,
        b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut out = Vec::new();
    pump(&mut hub, 2, &mut conn, &mut out);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    let mut rest = &out[head_end..];
    let mut flv = Vec::new();
    let mut frames = 0;
    while !rest.is_empty() {
        assert_eq!(rest[0], 0x82, "binary, final");
        let len = usize::from(rest[1]);
        assert!(len < 126);
        flv.extend_from_slice(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        frames += 1;
    }
    assert_eq!(frames, 6, "the header, then one frame per tag");
    assert_eq!(&flv[..13], &tag::FILE_HEADER);
    assert_eq!(tag::tags(&flv).unwrap().len(), 5);
    // A masked close from the player is answered and ends the connection.
    conn.handle_input(NOW, &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])
        .unwrap();
    assert_eq!(conn.flv_close_reason(), Some(&FlvError::PeerClosed));
    let mut tail = Vec::new();
    pump(&mut hub, 2, &mut conn, &mut tail);
    assert_eq!(&tail[..2], &[0x88, 2]);
}

#[test]
fn refusals_and_bad_requests_get_http_errors() {
    let cases: [(&[u8], &str); 4] = [
        (b"GET /live/cam.mp4 HTTP/1.1\r\n\r\n", "HTTP/1.1 404"),
        (b"POST /live/cam.flv HTTP/1.1\r\n\r\n", "HTTP/1.1 405"),
        (b"GET /cam.flv HTTP/1.1\r\n\r\n", "HTTP/1.1 404"),
        (b"\x01\x02 nonsense\r\n\r\n", "HTTP/1.1 400"),
    ];
    for (request, status) in cases {
        let mut conn = FlvConnection::new(FlvConfig::default(), Framing::HttpChunked, NOW, None);
        assert!(conn.handle_input(NOW, request).is_err());
        let answer = conn.poll_transmit().unwrap();
        assert!(answer.starts_with(status.as_bytes()), "{status}");
        assert!(conn.is_closing());
        assert!(conn.poll_event().is_none());
    }
    // An app the hub does not know: 403 from the refused connect.
    let mut hub = Hub::new(HubConfig::default());
    let mut conn = FlvConnection::new(FlvConfig::default(), Framing::HttpChunked, NOW, None);
    conn.handle_input(NOW, b"GET /nope/cam.flv HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    pump(&mut hub, 5, &mut conn, &mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 403"),
        "{:?}",
        core::str::from_utf8(&out)
    );
    assert!(matches!(
        conn.flv_close_reason(),
        Some(FlvError::Rejected { .. })
    ));
    // A stream name the hub refuses (too long): 404 from the refused play.
    let mut conn = FlvConnection::new(FlvConfig::default(), Framing::HttpChunked, NOW, None);
    let request = alloc::format!("GET /live/{}.flv HTTP/1.1\r\n\r\n", "n".repeat(300));
    conn.handle_input(NOW, request.as_bytes()).unwrap();
    let mut out = Vec::new();
    pump(&mut hub, 6, &mut conn, &mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 404"),
        "{:?}",
        core::str::from_utf8(&out)
    );
}

#[test]
fn cors_answers_follow_the_configured_origins() {
    use crate::flv::connection_allow_origin as allow;
    let star = vec!["*".into()];
    let listed = vec!["https://a.example".into()];
    assert_eq!(allow(&star, None).as_deref(), Some("*"));
    assert_eq!(
        allow(&listed, Some("https://a.example")).as_deref(),
        Some("https://a.example")
    );
    assert_eq!(allow(&listed, Some("https://b.example")), None);
    assert_eq!(allow(&listed, None), None);
    let config = FlvConfig {
        cors_origins: listed,
        ..FlvConfig::default()
    };
    let mut hub = Hub::new(HubConfig::default());
    live_stream(&mut hub);
    let mut conn = FlvConnection::new(config, Framing::HttpChunked, NOW, None);
    conn.handle_input(
        NOW,
        b"GET /live/cam.flv HTTP/1.1\r\nOrigin: https://a.example\r\n\r\n",
    )
    .unwrap();
    let mut out = Vec::new();
    pump(&mut hub, 2, &mut conn, &mut out);
    let text = alloc::string::String::from_utf8_lossy(&out);
    assert!(text.contains("Access-Control-Allow-Origin: https://a.example\r\nVary: Origin\r\n"));
}
