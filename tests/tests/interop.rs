//! Interoperability with the RTMP clients Debian ships: each publisher ends
//! its session cleanly (GStreamer's rtmp2sink ends with `deleteStream` by
//! name), and the interop matrix (every publisher × every player).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use tern_tests::{Proc, Server, ServerOptions, require_gst_element, require_tools, target_dir};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A short H.264/AAC FLV (320x180 test pattern at 25 fps, 1 s GOP, 440 Hz
/// tone, `secs` long), made with ffmpeg once and cached in the target dir.
fn short_flv(secs: u32) -> PathBuf {
    static MADE: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _guard = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = target_dir().join("tern-tests");
    fs::create_dir_all(&dir).expect("cannot create the media dir");
    let path = dir.join(format!("testsrc-320x180-25fps-gop25-{secs}s.flv"));
    if path.is_file() {
        return path;
    }
    let tmp = dir.join(format!("short-{secs}-{}.flv.tmp", std::process::id()));
    let output = Command::new("timeout")
        .args(["-k", "5", "60", "ffmpeg", "-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=25"])
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
