//! Real clients' sessions replayed into a server connection and a hub.
//!
//! `vectors/*.c2s` are the client-to-server bytes of one whole session of
//! each RTMP client Debian 12 ships (handshake, commands, a 1 s 64x36
//! H.264/AAC stream, the client's way of ending), captured through a TCP
//! relay in front of `tern serve` (`tests/python/rtmp_relay.py`, whose doc
//! shows how) and checked with `tern trace` (the command lines are quoted
//! in each test). Publishers publish `live/x`, players play `live/y`.
//! Each replay must run without a protocol error, with the stream published
//! or played, and (where the client ends its session with `deleteStream`)
//! with the stream gone at the end.

use crate::hub::{ConnId, Hub, HubConfig, HubEvent};
use crate::message::Tolerated;
use crate::rtmp::handshake::RANDOM_LEN;
use crate::rtmp::{ServerConfig, ServerConnection};
use crate::time::Instant;
use alloc::string::String;
use alloc::vec::Vec;

/// What a replay saw.
#[derive(Debug, Default)]
struct Replay {
    /// The stream was published at some point.
    published: bool,
    /// The stream had a player at some point.
    played: bool,
    /// Streams the hub still knows at the end (`scope/name`).
    left: Vec<String>,
    /// Lenient readings the connection took.
    tolerated: Vec<Tolerated>,
    /// Hub refusals.
    refused: Vec<String>,
}

/// Feeds `capture` in reads of `step` bytes to a fresh server connection
/// and hub, handing every request to the hub and every delivery back.
fn replay(capture: &[u8], stream: &str, step: usize) -> Replay {
    let mut hub = Hub::new(HubConfig::default());
    let now = Instant::from_millis(1_000);
    let mut conn = ServerConnection::new(ServerConfig::default(), now, &[7; RANDOM_LEN], None);
    let id = ConnId(1);
    let mut seen = Replay::default();
    for (i, piece) in capture.chunks(step).enumerate() {
        let now = Instant::from_millis(1_000 + i as u64);
        if let Err(e) = conn.handle_input(now, piece) {
            panic!("protocol error after {} bytes: {e}", i * step);
        }
        while let Some(request) = conn.poll_event() {
            hub.handle(now, id, request);
        }
        while let Some(delivery) = hub.poll_delivery(id) {
            conn.handle_delivery(now, delivery);
        }
        while conn.poll_transmit().is_some() {}
        while let Some(note) = conn.poll_tolerated() {
            seen.tolerated.push(note);
        }
        while let Some(event) = hub.poll_event() {
            match event {
                HubEvent::Refused { reason, .. }
                | HubEvent::Rejected { reason, .. }
                | HubEvent::Closing { reason, .. } => seen.refused.push(reason),
                _ => {}
            }
        }
        for s in hub.streams().filter(|s| s.name == stream) {
            seen.published |= s.publishing;
            seen.played |= s.players > 0;
        }
        assert!(!conn.is_closing(), "closing: {:?}", conn.close_reason());
    }
    seen.left = hub
        .streams()
        .map(|s| alloc::format!("{}/{}", s.scope, s.name))
        .collect();
    seen
}

/// Replays in large reads and in small ones (which also show the states
/// between commands: a play and its deleteStream may share a large read);
/// both must end alike. Returns the small reads' replay.
fn replay_both(capture: &[u8], stream: &str) -> Replay {
    let small = replay(capture, stream, 16);
    let whole = replay(capture, stream, 4096);
    assert_eq!(small.left, whole.left);
    assert_eq!(small.tolerated, whole.tolerated);
    small
}

fn assert_no_refusal(seen: &Replay) {
    assert_eq!(seen.refused, Vec::<String>::new());
}

/// `C→S … command deleteStream tx=0 null "x"` after `FCUnpublish tx=0 null
/// "x"` (GStreamer 1.22 rtmp2sink, every command with tx=0, on stream 0).
#[test]
fn gstreamer_rtmp2sink_deletes_its_stream_by_name() {
    let seen = replay_both(include_bytes!("vectors/gst2sink.c2s"), "x");
    assert!(seen.published);
    assert_eq!(seen.left, Vec::<String>::new(), "the stream was not closed");
    assert!(
        seen.tolerated
            .iter()
            .any(|t| t.command == "deleteStream" && t.reading.contains("stream named \"x\"")),
        "{:?}",
        seen.tolerated
    );
    assert_no_refusal(&seen);
}

/// `publish tx=5 null "x" "live"` … `FCUnpublish tx=6 null "x"`,
/// `deleteStream tx=7 null 1` (ffmpeg 5.1, FMLE-style).
#[test]
fn ffmpeg_publisher() {
    let seen = replay_both(include_bytes!("vectors/ffmpeg-pub.c2s"), "x");
    assert!(seen.published);
    assert_eq!(seen.left, Vec::<String>::new());
    assert_eq!(seen.tolerated, Vec::new());
    assert_no_refusal(&seen);
}

/// librtmp through GStreamer's rtmpsink: connect without flashVer,
/// `deleteStream tx=7 null 1`.
#[test]
fn gstreamer_rtmpsink_librtmp_publisher() {
    let seen = replay_both(include_bytes!("vectors/rtmpsink.c2s"), "x");
    assert!(seen.published);
    assert_eq!(seen.left, Vec::<String>::new());
    assert_eq!(seen.tolerated, Vec::new());
    assert_no_refusal(&seen);
}

/// `getStreamLength tx=3 null "y"`, `play tx=4 null "y" -2000`,
/// `deleteStream tx=5 null 1` (ffmpeg and ffprobe 5.1).
#[test]
fn ffmpeg_and_ffprobe_players() {
    for capture in [
        &include_bytes!("vectors/ffmpeg-play.c2s")[..],
        &include_bytes!("vectors/ffprobe.c2s")[..],
    ] {
        let seen = replay_both(capture, "y");
        assert!(seen.played);
        assert_eq!(seen.left, Vec::<String>::new());
        assert_eq!(seen.tolerated, Vec::new());
        assert_no_refusal(&seen);
    }
}

/// `FCSubscribe tx=3 null "y"` (unknown: answered `_error`, noted),
/// `play tx=4 null "y" -1000 [2000]`, `deleteStream tx=5 null 1`
/// (rtmpdump 2.4 and librtmp through GStreamer's rtmpsrc).
#[test]
fn rtmpdump_and_rtmpsrc_players() {
    for capture in [
        &include_bytes!("vectors/rtmpdump.c2s")[..],
        &include_bytes!("vectors/rtmpsrc.c2s")[..],
    ] {
        let seen = replay_both(capture, "y");
        assert!(seen.played);
        assert_eq!(seen.left, Vec::<String>::new());
        assert!(
            seen.tolerated
                .iter()
                .any(|t| t.command == "FCSubscribe" && t.reading.contains("_error")),
            "{:?}",
            seen.tolerated
        );
        assert_no_refusal(&seen);
    }
}

/// `play tx=0 null "y" -2` on the command chunk stream; the session ends
/// by closing the socket (no deleteStream), so the play is still there.
#[test]
fn gstreamer_rtmp2src_player() {
    let seen = replay_both(include_bytes!("vectors/rtmp2src.c2s"), "y");
    assert!(seen.played);
    assert_eq!(seen.left, alloc::vec![String::from("/live/y")]);
    assert_eq!(seen.tolerated, Vec::new());
    assert_no_refusal(&seen);
}

/// One fmt-0 chunk on chunk stream 3, message stream 0, type 20 (the
/// payloads here fit the 128-byte chunk size the capture leaves set).
fn command_chunk(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 128);
    let len = payload.len() as u32;
    let mut out = alloc::vec![0x03, 0, 0, 0];
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(20);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

fn session_then(extra: &[u8]) -> (ServerConnection, Result<(), crate::rtmp::RtmpError>) {
    let mut conn = ServerConnection::new(
        ServerConfig::default(),
        Instant::from_millis(0),
        &[7; RANDOM_LEN],
        None,
    );
    let mut hub = Hub::new(HubConfig::default());
    let now = Instant::from_millis(1);
    // ffmpeg's player session up to (not including) its deleteStream: the
    // connection is open and accepted.
    let capture = include_bytes!("vectors/ffmpeg-play.c2s");
    let upto = capture.len() - 42; // deleteStream: fmt-1 header (8) + 34
    conn.handle_input(now, &capture[..upto]).expect("capture");
    while let Some(request) = conn.poll_event() {
        hub.handle(now, ConnId(1), request);
    }
    while let Some(delivery) = hub.poll_delivery(ConnId(1)) {
        conn.handle_delivery(now, delivery);
    }
    while conn.poll_transmit().is_some() {}
    while conn.poll_tolerated().is_some() {}
    let result = conn.handle_input(now, extra);
    (conn, result)
}

/// Well framed but not a readable call (no string name, no numeric
/// transaction id, nothing at all): ignored and noted, the session goes on.
#[test]
fn an_unreadable_but_well_framed_command_is_ignored() {
    for payload in [
        &[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x05][..], // 1.0, null
        &[0x02, 0x00, 0x01, b'x', 0x05][..],             // "x", null
        &[][..],                                         // nothing
    ] {
        let (mut conn, result) = session_then(&command_chunk(payload));
        assert_eq!(result, Ok(()), "{payload:02x?}");
        assert!(!conn.is_closing());
        let note = conn.poll_tolerated().expect("a note");
        assert_eq!(note.command, "(unnamed)");
        assert!(note.reading.contains("ignored"), "{note}");
    }
}

/// AMF0 that cannot be walked (marker 0xFF) is broken framing: a protocol
/// error, as before.
#[test]
fn a_command_whose_amf0_cannot_be_walked_is_a_protocol_error() {
    let (conn, result) = session_then(&command_chunk(&[0x02, 0x00, 0x01, b'x', 0xFF]));
    assert!(result.is_err(), "{result:?}");
    assert!(conn.is_closing());
}

fn command(name: &str, args: Vec<crate::amf0::Value>) -> Vec<u8> {
    command_chunk(&crate::message::Command::new(name, 0.0, args).to_bytes())
}

fn closed_streams(conn: &mut ServerConnection) -> Vec<u32> {
    core::iter::from_fn(|| conn.poll_event())
        .filter_map(|r| match r {
            crate::hub::Request::CloseStream { stream } => Some(stream),
            _ => None,
        })
        .collect()
}

/// `deleteStream` readings at the connection (ffmpeg's player session has
/// stream 1 playing "y"): by name; without an id (the connection's only
/// stream); an id as sent.
#[test]
fn delete_stream_resolves_a_name_or_the_connections_stream() {
    use crate::amf0::Value;
    for (args, note) in [
        (
            alloc::vec![Value::string("y")],
            Some("Name(\"y\") resolved to stream 1"),
        ),
        (
            alloc::vec![Value::string("y?token=1")],
            Some("resolved to stream 1"),
        ),
        (
            alloc::vec![Value::Null],
            Some("Unspecified resolved to stream 1"),
        ),
        (alloc::vec![], Some("Unspecified resolved to stream 1")),
        (alloc::vec![Value::Number(1.0)], None),
    ] {
        let (mut conn, result) = session_then(&command("deleteStream", args.clone()));
        assert_eq!(result, Ok(()));
        assert_eq!(closed_streams(&mut conn), [1], "{args:?}");
        let notes: Vec<Tolerated> = core::iter::from_fn(|| conn.poll_tolerated()).collect();
        match note {
            Some(note) => assert!(
                notes.iter().any(|t| t.reading.contains(note)),
                "{args:?}: {notes:?}"
            ),
            None => assert_eq!(notes, Vec::new()),
        }
    }
}

/// With two streams, a name that matches neither and no message stream:
/// nothing is closed, the reading is noted, the session goes on.
#[test]
fn delete_stream_that_matches_nothing_is_ignored() {
    use crate::amf0::Value;
    let mut extra = command("createStream", alloc::vec![]);
    extra.extend(command("deleteStream", alloc::vec![Value::string("nope")]));
    let (mut conn, result) = session_then(&extra);
    assert_eq!(result, Ok(()));
    assert_eq!(closed_streams(&mut conn), Vec::<u32>::new());
    assert!(!conn.is_closing());
    let notes: Vec<Tolerated> = core::iter::from_fn(|| conn.poll_tolerated()).collect();
    assert!(
        notes
            .iter()
            .any(|t| t.reading.contains("matches no stream")),
        "{notes:?}"
    );
}
