//! The HTTP endpoints during a live publish, and a graceful SIGTERM.

use std::time::{Duration, Instant};
use tern_tests::{
    Probe, Proc, Server, ServerOptions, ffmpeg_play, ffmpeg_publish, metric, require_tools,
    tern_so, test_flv, wait_for, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// An ffmpeg player that discards what it receives.
fn null_player(server: &Server, tag: &str, url: &str) -> Proc {
    Proc::spawn(
        server.dir(),
        tag,
        SECS(40),
        "ffmpeg",
        [
            "-nostdin", "-v", "error", "-i", url, "-c", "copy", "-f", "null", "-",
        ],
    )
}

/// `/healthz`, `/api/stats` and `/metrics` with one publisher and two
/// players: the stream is publishing with 2 subscribers, 3 RTMP
/// connections, bytes out growing; when the players leave, the counts
/// drop back.
#[test]
fn stats_and_metrics_reflect_a_publish_with_two_players() {
    if !require_tools(&["ffmpeg"]) {
        return;
    }
    test_flv();
    let server = Server::start(ServerOptions::default());
    let health = server.http_get("/healthz").expect("GET /healthz");
    assert_eq!(health.status, 200, "{health:?}");

    let url = server.rtmp_url("live/stats");
    let _publisher = ffmpeg_publish(server.dir(), "publisher", &url, SECS(40));
    wait_publishing(&server, "/live", "stats");
    let players = [
        null_player(&server, "player-1", &url),
        null_player(&server, "player-2", &url),
    ];
    let stream = wait_for(SECS(10), || {
        server
            .stream_stats("/live", "stats")
            .filter(|s| s["subscribers"] == 2)
    })
    .unwrap_or_else(|| panic!("no 2 subscribers after 10 s: {}", server.stats()));
    assert_eq!(stream["publishing"], true, "{stream}");

    let stats = server.stats();
    assert_eq!(stats["connections"]["rtmp"], 3, "{stats}");
    let metrics = server.metrics();
    let sample = |series: &str| {
        metric(&metrics, series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert_eq!(sample("tern_connections{protocol=\"rtmp\"}"), 3.0);
    assert_eq!(sample("tern_streams"), 1.0);
    assert_eq!(sample("tern_stream_publishers"), 1.0);
    assert_eq!(sample("tern_stream_subscribers"), 2.0);

    // Media keeps flowing to both players: about 2 × 220 kbit/s here.
    let out_before = stats["bytes_out"].as_u64().expect("bytes_out");
    let in_before = stats["bytes_in"].as_u64().expect("bytes_in");
    let metric_before = sample("tern_bytes_out_total");
    std::thread::sleep(SECS(2));
    let stats = server.stats();
    let out_after = stats["bytes_out"].as_u64().expect("bytes_out");
    let in_after = stats["bytes_in"].as_u64().expect("bytes_in");
    assert!(
        out_after >= out_before + 20_000,
        "bytes_out {out_before} -> {out_after} in 2 s"
    );
    assert!(
        in_after >= in_before + 10_000,
        "bytes_in {in_before} -> {in_after} in 2 s"
    );
    // Two players receive what one publisher sends, roughly twice over.
    let (sent, received) = (out_after - out_before, in_after - in_before);
    assert!(
        sent as f64 > 1.3 * received as f64,
        "{sent} bytes out vs {received} in over 2 s for 2 players"
    );
    let metric_after = metric(&server.metrics(), "tern_bytes_out_total").expect("bytes out");
    assert!(
        metric_after > metric_before,
        "{metric_before} -> {metric_after}"
    );

    drop(players);
    let gone = wait_for(SECS(10), || {
        server
            .stream_stats("/live", "stats")
            .filter(|s| s["subscribers"] == 0 && s["publishing"] == true)
    });
    assert!(gone.is_some(), "players still counted: {}", server.stats());
    let stats = server.stats();
    assert_eq!(stats["connections"]["rtmp"], 1, "{stats}");
}

/// SIGTERM during a live publish: every client is told the connection
/// closed (the shared-object watcher prints `closed`), the ffmpeg player
/// and publisher exit, and the server exits 0 within a few seconds.
#[test]
fn sigterm_closes_clients_and_exits_0() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    test_flv();
    let mut server = Server::start(ServerOptions::default());
    let dir = server.dir().to_owned();
    let url = server.rtmp_url("live/bye");
    let mut publisher = ffmpeg_publish(&dir, "publisher", &url, SECS(40));
    wait_publishing(&server, "/live", "bye");
    let recorded = dir.join("player.flv");
    let mut player = ffmpeg_play(&dir, "player", &url, 30, &recorded);
    let mut watcher = tern_so(
        &dir,
        "watcher",
        SECS(40),
        &["watch", &server.rtmp_url("chat/room1"), "room"],
    );
    watcher
        .wait_for_json(SECS(10), |l| l["event"] == "sync")
        .unwrap_or_else(|| panic!("no sync: {}", watcher.stderr_text()));
    let subscribed = wait_for(SECS(10), || {
        server
            .stream_stats("/live", "bye")
            .filter(|s| s["subscribers"] == 1)
    });
    assert!(subscribed.is_some(), "no player: {}", server.stats());
    // Let the player record a little.
    std::thread::sleep(SECS(2));

    let stopping = Instant::now();
    server.sigterm();
    let status = server
        .wait_exit(SECS(10))
        .unwrap_or_else(|| panic!("tern still running 10 s after SIGTERM"));
    let took = stopping.elapsed();
    assert!(status.success(), "tern exited with {status}");
    assert!(took < SECS(5), "tern took {took:?} to shut down");
    assert!(server.log().contains("shutting down"), "{}", server.log());

    let closed = watcher
        .wait_for_json(SECS(5), |l| l["event"] == "closed")
        .unwrap_or_else(|| {
            panic!(
                "the watcher was not told the connection closed; stdout:\n{}\nstderr:\n{}",
                watcher.stdout_text(),
                watcher.stderr_text()
            )
        });
    eprintln!("watcher: {closed}");
    let status = watcher.wait_exit(SECS(5));
    assert!(status.success(), "tern so watch exited with {status}");

    player.wait_exit(SECS(10));
    publisher.wait_exit(SECS(10));
    // What the player got before the end is a readable recording.
    let probe = Probe::of(&recorded).unwrap_or_else(|e| panic!("{e}"));
    let video = probe.stream("video").expect("no video recorded");
    assert_eq!(video.codec_name, "h264");
    assert!(video.frames >= 25, "{video:?}");
    eprintln!(
        "after SIGTERM: player ran {:?}, publisher {:?}, shutdown took {took:?}",
        player.ran_for(),
        publisher.ran_for()
    );
}
