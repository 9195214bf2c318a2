//! Live FLV playback over HTTP and WebSocket, against real clients:
//! ffmpeg reads HTTP-FLV, tokio-tungstenite reads WS-FLV (ffprobe checks
//! the bytes), and a slow HTTP-FLV reader does not hold back fast ones.

use futures_util::StreamExt;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::path::Path;
use std::time::{Duration, Instant};
use tern_tests::{
    Probe, Server, ServerOptions, check_av_capture, ffmpeg_play, ffmpeg_publish, metric,
    require_tools, wait_for, wait_publishing,
};
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A capture starts on a video keyframe near 0 (each player's clock
/// starts at its first message), and the first packet of each stream is
/// not after 100 ms.
fn check_start(file: &Path) {
    let probe = Probe::of(file).unwrap_or_else(|e| panic!("{e}"));
    let video = probe.packets_of("video");
    assert!(
        video.first().is_some_and(|p| p.keyframe),
        "starts on a keyframe"
    );
    for kind in ["video", "audio"] {
        let first = probe.packets_of(kind).first().and_then(|p| p.pts);
        assert!(
            first.is_some_and(|pts| (0..=100).contains(&pts)),
            "{kind} starts at {first:?} ms, not near 0"
        );
    }
}

#[test]
fn ffmpeg_reads_http_flv_from_a_keyframe_with_monotonic_timestamps() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let server = Server::start(ServerOptions::default());
    // ffmpeg takes `live/room` as the RTMP app (app/instance) and `cam`
    // as the stream.
    let publisher = ffmpeg_publish(
        server.dir(),
        "publisher",
        &server.rtmp_url("live/room/cam"),
        SECS(30),
    );
    wait_publishing(&server, "/live/room", "cam");
    let url = format!("http://{}/live/room/cam.flv", server.http_addr());
    let out = server.dir().join("http.flv");
    let mut player = ffmpeg_play(server.dir(), "http-player", &url, 5, &out);
    let counted = wait_for(SECS(5), || {
        let stats = server.stats();
        let metrics = server.metrics();
        (stats["connections"]["flv"] == 1
            && metric(&metrics, "tern_connections{protocol=\"flv\"}") == Some(1.0))
        .then_some(())
    });
    assert!(
        counted.is_some(),
        "the FLV player is not counted: {}",
        server.stats()
    );
    let status = player.wait_exit(SECS(20));
    assert!(status.success(), "ffmpeg failed: {}", player.stderr_text());
    let summary = check_av_capture(&out, 5.0, 1.5, 2.5).unwrap_or_else(|e| panic!("{e}"));
    check_start(&out);
    eprintln!("HTTP-FLV capture: {summary:?}");
    drop(publisher);
}

#[test]
fn ws_flv_bytes_read_as_h264_and_aac_from_a_keyframe() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let server = Server::start(ServerOptions::default());
    let publisher = ffmpeg_publish(
        server.dir(),
        "publisher",
        &server.rtmp_url("live/cam"),
        SECS(30),
    );
    wait_publishing(&server, "/live", "cam");
    let url = server.ws_url("live/cam.flv");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (bytes, first_len) = runtime.block_on(async {
        let (mut ws, response) =
            tokio::time::timeout(SECS(10), tokio_tungstenite::connect_async(&url))
                .await
                .expect("no upgrade within 10 s")
                .expect("upgrade failed");
        assert_eq!(response.status(), 101);
        let mut bytes = Vec::new();
        let mut first_len = None;
        let until = tokio::time::Instant::now() + SECS(5);
        while let Ok(Some(message)) = tokio::time::timeout_at(until, ws.next()).await {
            match message.expect("WebSocket error") {
                Message::Binary(data) => {
                    first_len.get_or_insert(data.len());
                    bytes.extend_from_slice(&data);
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected message {other:?}"),
            }
        }
        (bytes, first_len)
    });
    assert_eq!(first_len, Some(13), "the FLV header comes first, alone");
    assert!(bytes.starts_with(b"FLV\x01"));
    let out = server.dir().join("ws.flv");
    fs::write(&out, &bytes).unwrap();
    let summary = check_av_capture(&out, 5.0, 1.5, 2.5).unwrap_or_else(|e| panic!("{e}"));
    check_start(&out);
    eprintln!("WS-FLV capture: {summary:?}");
    drop(publisher);
}

/// Reads an HTTP-FLV response at about `rate` bytes a second for `secs`,
/// through a small receive buffer; returns the bytes read.
fn slow_reader(addr: std::net::SocketAddr, path: &str, rate: usize, secs: u64) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let socket = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(addr).await.unwrap().into_std().unwrap()
    });
    socket.set_nonblocking(false).unwrap();
    let mut stream: StdTcpStream = socket;
    stream.set_read_timeout(Some(SECS(2))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut total = 0;
    let mut buf = [0u8; 1024];
    while started.elapsed() < SECS(secs) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis((1000 * buf.len() / rate) as u64));
    }
    total
}

// The backlog of a slow reader must reach its outbox to be cut back: the
// server bounds what a socket holds unsent (`net::UNSENT_LIMIT`); without
// that the kernel's autotuned send buffer took megabytes and the reader
// was never cut back (docs/flv.md, "Slow players").
#[test]
fn a_slow_http_flv_reader_does_not_hold_back_fast_ones() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let server = Server::start(ServerOptions {
        // The test stream is ~28 KB/s: a 10 KB/s reader falls ~0.6 s of
        // media behind each second; past 1.5 s it is cut back.
        config: Some("[streams]\nmax_lag_ms = 1500\n".to_owned()),
        ..ServerOptions::default()
    });
    // The test stream looped, so it cannot end before the slow reader has
    // fallen behind (the captures below end well before the first loop).
    let url = server.rtmp_url("live/cam");
    let publisher = tern_tests::ffmpeg_publish_looped(server.dir(), "publisher", &url, SECS(40));
    wait_publishing(&server, "/live", "cam");
    let addr = server.http_addr();
    let slow = std::thread::spawn(move || slow_reader(addr, "/live/cam.flv", 10 * 1024, 8));
    std::thread::sleep(SECS(1));
    let url = format!("http://{addr}/live/cam.flv");
    let mut players: Vec<_> = (0..3)
        .map(|i| {
            let out = server.dir().join(format!("fast-{i}.flv"));
            (
                ffmpeg_play(server.dir(), &format!("fast-{i}"), &url, 6, &out),
                out,
            )
        })
        .collect();
    // What the join may have dropped is behind us 3 s in: from here on
    // only a reader that is cut back again and again adds drops.
    std::thread::sleep(SECS(2));
    let dropped_early = metric(&server.metrics(), "tern_media_dropped_total").unwrap_or(0.0);
    for (player, out) in &mut players {
        let status = player.wait_exit(SECS(25));
        assert!(status.success(), "ffmpeg failed: {}", player.stderr_text());
        check_av_capture(out, 6.0, 1.5, 2.5).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
    let read = slow.join().unwrap();
    let metrics = server.metrics();
    let dropped = metric(&metrics, "tern_media_dropped_total").unwrap_or(0.0);
    let lagged = metric(&metrics, "tern_lag_disconnects_total").unwrap_or(0.0);
    eprintln!(
        "slow reader read {read} bytes; dropped {dropped} ({dropped_early} in its first 3 s), lag disconnects {lagged}"
    );
    assert!(
        dropped > dropped_early || lagged > 0.0,
        "the slow reader was neither cut back nor dropped:\n{metrics}\n{}",
        server.log()
    );
    drop(publisher);
}
