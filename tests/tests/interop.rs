//! Interoperability with the RTMP clients Debian ships: each publisher ends
//! its session cleanly (GStreamer's rtmp2sink ends with `deleteStream` by
//! name), and the interop matrix (every publisher × every player).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use std::time::Instant;
use tern_tests::{
    Proc, Server, ServerOptions, check_av_capture, require_gst_element, require_tools, target_dir,
    test_flv, wait_for, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A short H.264/AAC FLV (320x180 test pattern at 25 fps, 1 s GOP, 440 Hz
/// tone, `secs` long), made with ffmpeg once and cached in the target dir.
fn short_flv(secs: u32) -> PathBuf {
    pattern_flv("testsrc", secs)
}

/// Like [`short_flv`] with another lavfi video source (`testsrc2`,
/// `smptebars`, …), so two publishers' pictures differ.
fn pattern_flv(source: &str, secs: u32) -> PathBuf {
    static MADE: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _guard = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = target_dir().join("tern-tests");
    fs::create_dir_all(&dir).expect("cannot create the media dir");
    let path = dir.join(format!("{source}-320x180-25fps-gop25-{secs}s.flv"));
    if path.is_file() {
        return path;
    }
    let tmp = dir.join(format!("{source}-{secs}-{}.flv.tmp", std::process::id()));
    let output = Command::new("timeout")
        .args(["-k", "5", "60", "ffmpeg", "-nostdin", "-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("{source}=size=320x180:rate=25"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv"])
        .arg(&tmp)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg could not make the test FLV:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    fs::rename(&tmp, &path).expect("cannot move the test FLV into place");
    path
}

/// `gst-launch-1.0` publishing `flv` (demuxed and muxed again, as the
/// GStreamer recipe in docs/interop.md) to `url` with `sink` (`rtmp2sink`
/// or librtmp's `rtmpsink`).
fn gst_publish(dir: &Path, name: &str, sink: &str, flv: &Path, url: &str, limit: Duration) -> Proc {
    let pipeline = format!(
        "filesrc location={} ! flvdemux name=d d.video ! queue ! h264parse ! \
         flvmux name=m streamable=true ! {sink} location={url} d.audio ! queue ! aacparse ! m.",
        flv.display()
    );
    Proc::spawn(
        dir,
        name,
        limit,
        "gst-launch-1.0",
        pipeline.split_whitespace(),
    )
}

/// Lines of the server log that report a failed session.
fn protocol_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("protocol error") || l.contains("bad message"))
        .collect()
}

/// GStreamer 1.22's rtmp2sink ends a publish with `deleteStream tx=0 null
/// "x"` (the stream *name*). Read leniently, the publish ends with exit 0,
/// no error on either side, and the stream is gone from the server.
#[test]
fn gstreamer_rtmp2sink_publish_ends_cleanly() {
    if !(require_tools(&["ffmpeg", "gst-launch-1.0"]) && require_gst_element("rtmp2sink")) {
        return;
    }
    let flv = short_flv(2);
    let server = Server::start(ServerOptions {
        log: "debug".to_owned(),
        ..ServerOptions::default()
    });
    let url = server.rtmp_url("live/x");
    let mut publisher = gst_publish(server.dir(), "rtmp2sink", "rtmp2sink", &flv, &url, SECS(20));
    let status = publisher.wait_exit(SECS(25));
    let (stdout, stderr) = (publisher.stdout_text(), publisher.stderr_text());
    assert!(
        status.success(),
        "gst-launch rtmp2sink failed ({status}); stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stdout.contains("ERROR") && !stderr.contains("ERROR"),
        "gst-launch reported an error; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let log = server.log();
    assert_eq!(protocol_errors(&log), Vec::<&str>::new());
    assert!(
        log.contains("lenient reading of \"deleteStream\""),
        "the deleteStream by name was not noted; log:\n{log}"
    );
    let gone = tern_tests::wait_for(SECS(5), || {
        server.stream_stats("/live", "x").is_none().then_some(())
    });
    assert!(
        gone.is_some(),
        "the stream is still listed: {}",
        server.stats()
    );
}

/// Stops (SIGSTOP) a process and everything in its group: an encoder whose
/// link died without a FIN, as far as the server can tell.
fn freeze(proc: &Proc) {
    let status = Command::new("kill")
        .args(["-s", "STOP", "--", &format!("-{}", proc.pid())])
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -STOP failed");
}

/// `ffmpeg -re [-stream_loop -1] -i FLV -c copy -f flv URL`.
fn ffmpeg_publish_file(dir: &Path, name: &str, flv: &Path, url: &str, looped: bool) -> Proc {
    let mut args = vec!["-nostdin", "-v", "error", "-re"];
    if looped {
        args.extend(["-stream_loop", "-1"]);
    }
    let flv = flv.to_string_lossy().into_owned();
    args.extend(["-i", &flv, "-c", "copy", "-f", "flv", url]);
    Proc::spawn(dir, name, SECS(60), "ffmpeg", args)
}

/// Decodes every frame of `file`; `Err` with ffmpeg's complaints if any.
fn decode_cleanly(file: &Path) -> Result<(), String> {
    let output = Command::new("timeout")
        .args(["-k", "5", "60", "ffmpeg", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let errors = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() && errors.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {errors}", output.status))
    }
}

/// An encoder whose link died (SIGSTOP) holds its name; the same encoder
/// coming back (a second ffmpeg publishing the same name) takes it over
/// within 1 s, and a player that started before keeps playing: its one
/// recording holds the first publisher's stream, then the second's from
/// its sequence headers and first keyframe, decodes without an error, and
/// has no hole and no step back in time.
#[test]
fn a_stalled_publisher_is_replaced_and_players_keep_playing() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let second = pattern_flv("smptebars", 5);
    let server = Server::start(ServerOptions::default());
    let dir = server.dir();
    let url = server.rtmp_url("live/enc");
    let first = ffmpeg_publish_file(dir, "first", test_flv(), &url, true);
    wait_publishing(&server, "/live", "enc");
    let recording = dir.join("player.flv");
    let rec = recording.to_string_lossy().into_owned();
    let mut player = Proc::spawn(
        dir,
        "player",
        SECS(40),
        "ffmpeg",
        [
            "-nostdin", "-v", "error", "-y", "-i", &url, "-c", "copy", "-f", "flv", &rec,
        ],
    );
    // The player plays the first publisher for a while.
    std::thread::sleep(SECS(3));
    freeze(&first);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut again = ffmpeg_publish_file(dir, "second", &second, &url, false);
    let replaced = wait_for(SECS(5), || {
        server
            .log()
            .contains("replaced by a new publisher of enc")
            .then(|| started.elapsed())
    });
    let took = replaced.unwrap_or_else(|| panic!("not replaced; log:\n{}", server.log()));
    eprintln!("second publisher accepted after {took:?}");
    assert!(took < SECS(1), "took over after {took:?}");
    let status = again.wait_exit(SECS(20));
    assert!(
        status.success(),
        "the second publisher failed ({status}): {}",
        again.stderr_text()
    );
    // It ended with deleteStream: the player gets UnpublishNotify, which
    // ffmpeg reads as the end of the stream.
    let status = player.wait_exit(SECS(15));
    assert!(
        status.success(),
        "the player failed ({status}): {}",
        player.stderr_text()
    );
    drop(first);
    // About 3.5 s of the first publisher (plus up to a GOP of cache), then
    // the second's 5 s, timestamps continuous.
    match check_av_capture(&recording, 8.5, 1.5, 2.2) {
        Ok(summary) => eprintln!("player: {summary:?}"),
        Err(e) => panic!("player's recording: {e}"),
    }
    if let Err(e) = decode_cleanly(&recording) {
        panic!("the player's recording does not decode cleanly: {e}");
    }
    assert_eq!(protocol_errors(&server.log()), Vec::<&str>::new());
}

/// With `publish_conflict = "reject"` the encoder coming back is refused
/// (ffmpeg exits) while its stalled connection holds the name; retrying as
/// an encoder does, it is accepted within `publisher_idle_timeout_secs` +
/// 1 s of the stall.
#[test]
fn with_reject_a_returning_encoder_gets_in_after_the_idle_timeout() {
    if !require_tools(&["ffmpeg"]) {
        return;
    }
    const IDLE: u64 = 3;
    let server = Server::start(ServerOptions {
        config: Some(format!(
            "[streams]\npublisher_idle_timeout_secs = {IDLE}\npublish_conflict = \"reject\"\n"
        )),
        ..ServerOptions::default()
    });
    let dir = server.dir();
    let url = server.rtmp_url("live/enc");
    let first = ffmpeg_publish_file(dir, "first", test_flv(), &url, true);
    wait_publishing(&server, "/live", "enc");
    std::thread::sleep(SECS(1));
    freeze(&first);
    let stalled = Instant::now();
    let flv = short_flv(3);
    let dropped_line = format!("publisher of enc sent no media for {IDLE}s");
    let mut refused = 0;
    let (accepted, mut again) = loop {
        assert!(
            stalled.elapsed() < SECS(IDLE + 5),
            "never accepted; log:\n{}",
            server.log()
        );
        let mut again = ffmpeg_publish_file(dir, &format!("again-{refused}"), &flv, &url, false);
        // Refused: ffmpeg exits at once. Accepted: the stalled publisher was
        // dropped and the name is live again (it can only be this one).
        let accepted = wait_for(Duration::from_millis(1500), || {
            if again.wait(Duration::ZERO).is_some() {
                return Some(None);
            }
            let live = server.log().contains(&dropped_line)
                && server
                    .stream_stats("/live", "enc")
                    .is_some_and(|s| s["publishing"] == true);
            live.then(|| Some(stalled.elapsed()))
        });
        match accepted {
            Some(Some(at)) => break (at, again),
            _ => refused += 1,
        }
    };
    let status = again.wait_exit(SECS(15));
    assert!(status.success(), "{}", again.stderr_text());
    eprintln!("accepted {accepted:?} after the stall, {refused} refusals before");
    assert!(
        refused >= 1,
        "a returning encoder should be refused at first"
    );
    assert!(
        accepted < SECS(IDLE + 1),
        "accepted only {accepted:?} after the stall"
    );
    let log = server.log();
    assert!(
        log.contains(&format!("publisher of enc sent no media for {IDLE}s")),
        "{log}"
    );
    assert_eq!(protocol_errors(&log), Vec::<&str>::new());
}
