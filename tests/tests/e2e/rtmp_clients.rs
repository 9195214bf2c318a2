//! Live streams between real RTMP clients: ffmpeg publishes, ffmpeg,
//! rtmpdump and GStreamer play, ffprobe checks what they received.

use std::path::Path;
use std::time::{Duration, Instant};
use tern_tests::recording_proxy::{RecordingProxy, trace_client_bytes};
use tern_tests::{
    Probe, Proc, Server, ServerOptions, check_av_capture, ffmpeg_play, ffmpeg_publish,
    require_gst_element, require_tools, test_flv, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Exits 0 (panics with the process's stderr otherwise).
fn assert_success(proc: &mut Proc, within: Duration, what: &str) {
    let status = proc.wait_exit(within);
    assert!(
        status.success(),
        "{what} failed ({status}); stderr:\n{}",
        proc.stderr_text()
    );
}

fn check_capture(file: &Path, what: &str, played: f64, short: f64, extra: f64) {
    match check_av_capture(file, played, short, extra) {
        Ok(summary) => eprintln!("{what}: {summary:?}"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// One ffmpeg publisher, four concurrent players of three kinds: each gets
/// H.264 + AAC, every frame of the span it recorded, timestamps in order.
#[test]
fn ffmpeg_rtmpdump_and_gstreamer_players_receive_a_published_stream() {
    if !(require_tools(&["ffmpeg", "ffprobe", "rtmpdump", "gst-launch-1.0"])
        && require_gst_element("rtmp2src"))
    {
        return;
    }
    test_flv();
    let server = Server::start(ServerOptions::default());
    let dir = server.dir();
    let url = server.rtmp_url("live/test");
    let mut publisher = ffmpeg_publish(dir, "publisher", &url, SECS(30));
    wait_publishing(&server, "/live", "test");

    let ffmpeg_a = dir.join("ffmpeg-a.flv");
    let ffmpeg_b = dir.join("ffmpeg-b.flv");
    let dumped = dir.join("rtmpdump.flv");
    let gst_out = dir.join("gst.flv");
    let started = Instant::now();
    let mut players = vec![
        (
            "ffmpeg player a",
            ffmpeg_play(dir, "ffmpeg-a", &url, 5, &ffmpeg_a),
        ),
        (
            "ffmpeg player b",
            ffmpeg_play(dir, "ffmpeg-b", &url, 5, &ffmpeg_b),
        ),
    ];
    // rtmpdump and gst-launch stop cleanly (writing their whole file) on
    // SIGINT, which `timeout` sends after 6 s.
    let rtmpdump = Proc::spawn_with_signal(
        dir,
        "rtmpdump",
        "INT",
        SECS(6),
        "rtmpdump",
        ["-q", "-r", &url, "--live", "-m", "3", "-o"]
            .into_iter()
            .map(str::to_owned)
            .chain([dumped.to_string_lossy().into_owned()]),
    );
    let gst = Proc::spawn_with_signal(
        dir,
        "gst",
        "INT",
        SECS(6),
        "gst-launch-1.0",
        [
            "-e".to_owned(),
            "rtmp2src".to_owned(),
            format!("location={url}"),
            "!".to_owned(),
            "filesink".to_owned(),
            format!("location={}", gst_out.display()),
        ],
    );
    for (what, player) in &mut players {
        assert_success(player, SECS(20), what);
    }
    let (mut rtmpdump, mut gst) = (rtmpdump, gst);
    // rtmpdump's codes: 0 success, 1 failed, 2 incomplete, 3 no connect.
    // A live download it is told to stop (SIGINT) ends "incomplete"; that
    // is its success here, and the capture check below shows what it got.
    // 0 would say the stream ended by itself, which it did not (the
    // publisher runs 12 s); 1 and 3 are failures.
    let status = rtmpdump.wait_exit(SECS(15));
    eprintln!("rtmpdump exited with {status}");
    assert!(
        status.code() == Some(2),
        "rtmpdump did not end its interrupted live download as incomplete (2) \
         ({status}); stderr:\n{}",
        rtmpdump.stderr_text()
    );
    // gst-launch sometimes reports the interrupt as 130 after a clean EOS;
    // the capture check below judges what it wrote either way.
    let status = gst.wait_exit(SECS(15));
    eprintln!("gst-launch exited with {status}");
    assert!(
        matches!(status.code(), Some(0 | 130)),
        "gst-launch rtmp2src failed ({status}); stdout:\n{}\nstderr:\n{}",
        gst.stdout_text(),
        gst.stderr_text()
    );
    eprintln!("players done after {:?}", started.elapsed());
    assert!(
        publisher.wait(Duration::ZERO).is_none(),
        "the publisher stopped early; stderr:\n{}",
        publisher.stderr_text()
    );

    // The spans' tolerances are about where a capture starts and stops,
    // never about frames inside it (docs/testing.md has the measurements).
    // `-t 5` cuts the output at 5 s of media (4.96 s of video in every
    // run measured: the last frame's duration is not in the span).
    check_capture(&ffmpeg_a, "ffmpeg player a", 5.0, 0.5, 0.2);
    check_capture(&ffmpeg_b, "ffmpeg player b", 5.0, 0.5, 0.2);
    // Interrupted after 6 s: connect time costs up to ~1.5 s, the cached
    // GOP a joining player gets first adds up to 2 s (measured: 4.60 to
    // 6.04 s of video in six runs).
    check_capture(&dumped, "rtmpdump", 6.0, 1.5, 2.2);
    check_capture(&gst_out, "gst rtmp2src", 6.0, 1.5, 2.2);
}

/// Joins `url` as two players: one decodes 10 frames (no decode errors
/// allowed), one records 3 s with `-c copy`, whose first video packet must
/// be a keyframe. `video_secs` is the least video the 3 s recording must
/// hold (ffmpeg's `-t` counts from the first packet, audio or video).
fn join_late_and_check(server: &Server, url: &str, video_secs: f64) {
    let dir = server.dir();
    let mut decoder = Proc::spawn(
        dir,
        "decoder",
        SECS(20),
        "ffmpeg",
        [
            "-nostdin",
            "-v",
            "error",
            "-i",
            url,
            "-frames:v",
            "10",
            "-f",
            "null",
            "-",
        ],
    );
    let late = dir.join("late.flv");
    let mut recorder = ffmpeg_play(dir, "late", url, 3, &late);
    assert_success(&mut decoder, SECS(20), "ffmpeg decoding the late join");
    let errors = decoder.stderr_text();
    assert!(
        errors.trim().is_empty(),
        "decode errors for a late joiner:\n{errors}"
    );
    assert_success(&mut recorder, SECS(20), "ffmpeg recording the late join");
    let probe = Probe::of(&late).unwrap_or_else(|e| panic!("{e}"));
    let video = probe.packets_of("video");
    let first = video
        .first()
        .unwrap_or_else(|| panic!("no video in the late capture: {probe:?}"));
    assert!(
        first.keyframe,
        "the late joiner's first video packet is not a keyframe: {:?}",
        &video[..video.len().min(5)]
    );
    check_capture(&late, "late joiner", 3.0, 3.0 - video_secs, 0.2);
}

/// Publishes on a fresh server started with `options`, and joins
/// `join_after` after the publisher started (see [`join_late_and_check`]).
fn late_join(options: ServerOptions, join_after: Duration, video_secs: f64) {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    test_flv();
    let server = Server::start(options);
    let url = server.rtmp_url("live/late");
    let started = Instant::now();
    let _publisher = ffmpeg_publish(server.dir(), "publisher", &url, SECS(30));
    wait_publishing(&server, "/live", "late");
    std::thread::sleep(join_after.saturating_sub(started.elapsed()));
    join_late_and_check(&server, &url, video_secs);
}

/// A player that joins 3 s into a stream with a 2 s GOP starts with a
/// decodable keyframe (the one at 2 s, from the GOP cache).
#[test]
fn late_joiner_starts_with_a_keyframe() {
    late_join(ServerOptions::default(), SECS(3), 2.5);
}

/// The same 7 s into the stream, when the stream's timestamps are past
/// `max_lag_ms` (5 s). Regression: the join burst (metadata and sequence
/// headers stamped 0, then the GOP at 6 s+) used to count as lag and got the
/// player dropped.
#[test]
fn late_joiner_after_max_lag_starts_with_a_keyframe() {
    late_join(ServerOptions::default(), SECS(7), 2.5);
}

/// Without the GOP cache a late joiner waits for the next keyframe, and
/// still starts with it. Audio flows meanwhile, so up to one GOP (2 s) of
/// the 3 s recording may have no video (measured: 2.08 to 2.40 s of video
/// in six runs).
#[test]
fn late_joiner_without_gop_cache_starts_with_a_keyframe() {
    let options = ServerOptions {
        config: Some("[streams]\ngop_cache = false\n".to_owned()),
        ..ServerOptions::default()
    };
    late_join(options, SECS(7), 0.9);
}

/// ffmpeg's RTMP muxer publishes the way OBS does (releaseStream,
/// FCPublish, createStream, publish, and at the end FCUnpublish and
/// deleteStream: checked on the wire through a recording proxy), a player
/// receives it, and the stream stops publishing. A publish to an app that
/// is not configured is refused, and the server goes on serving.
#[test]
fn obs_style_publish_works_and_an_unknown_app_is_refused() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let flv = test_flv().to_string_lossy().into_owned();
    let server = Server::start(ServerOptions::default());
    let dir = server.dir();

    let url = server.rtmp_url("live/obs");
    // The publisher goes through a proxy that keeps what it sends and,
    // when it has gone, holds the server's side of its connection open for
    // 10 s; `-t 4` (input option) ends the publish after 4 s.
    let proxy = RecordingProxy::start(server.rtmp_addr(), dir, "obs-publisher", SECS(10));
    let mut publisher = Proc::spawn(
        dir,
        "obs-publisher",
        SECS(30),
        "ffmpeg",
        [
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-t",
            "4",
            "-i",
            &flv,
            "-c",
            "copy",
            "-f",
            "flv",
            &proxy.rtmp_url("live/obs"),
        ],
    );
    wait_publishing(&server, "/live", "obs");
    let received = dir.join("obs-player.flv");
    let mut player = ffmpeg_play(dir, "obs-player", &url, 2, &received);
    assert_success(
        &mut player,
        SECS(20),
        "ffmpeg playing the OBS-style publish",
    );
    assert_success(&mut publisher, SECS(20), "ffmpeg publishing OBS-style");
    let captures = proxy.finished_captures(SECS(10));
    assert_eq!(captures.len(), 1, "one publishing connection: {captures:?}");
    // The closing commands, not the closed socket, end the publish: the
    // server's side of the connection is still open here (the proxy holds
    // it 10 s after the client left; checked below). 6 s, not 2: a CI run
    // on a loaded 2-core machine once took longer than 2 s.
    let stopped = tern_tests::wait_for(SECS(6), || {
        server
            .stream_stats("/live", "obs")
            .is_none_or(|s| s["publishing"] != true)
            .then_some(())
    });
    assert!(
        proxy.upstream_open(),
        "the proxy closed the publisher's connection before the check (hold too short)"
    );
    assert!(
        stopped.is_some(),
        "live/obs still publishing after the publisher left, on a connection still \
         open: {}",
        server.stats()
    );
    let trace = trace_client_bytes(&captures[0]);
    let commands: Vec<&str> = trace
        .iter()
        .filter_map(|line| line.split(" command ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    let wanted = [
        "releaseStream",
        "FCPublish",
        "createStream",
        "publish",
        "FCUnpublish",
        "deleteStream",
    ];
    let mut next = commands.iter();
    for name in wanted {
        assert!(
            next.any(|c| *c == name),
            "the publisher did not send {name} (in the order {wanted:?}); it sent \
             {commands:?}; trace of {}:\n{}",
            captures[0].display(),
            trace.join("\n")
        );
    }
    check_capture(&received, "player of the OBS-style publish", 2.0, 0.5, 0.2);

    let mut refused = ffmpeg_publish(dir, "bad-app", &server.rtmp_url("nosuchapp/x"), SECS(15));
    let status = refused.wait_exit(SECS(20));
    assert!(
        !status.success(),
        "publishing to an unknown app succeeded; stderr:\n{}",
        refused.stderr_text()
    );
    let log = server.log();
    assert!(
        log.contains("InvalidApp") || log.contains("not configured"),
        "the server log does not mention the unknown app:\n{log}"
    );

    // Still serving.
    let url = server.rtmp_url("live/after");
    let _publisher = ffmpeg_publish(dir, "publisher-after", &url, SECS(30));
    wait_publishing(&server, "/live", "after");
    let received = dir.join("after.flv");
    let mut player = ffmpeg_play(dir, "player-after", &url, 2, &received);
    assert_success(&mut player, SECS(20), "ffmpeg playing after the refusal");
    check_capture(&received, "player after the refusal", 2.0, 0.5, 0.2);
}
