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
    AUDIO_STEP_MS, Proc, Server, ServerOptions, VIDEO_STEP_MS, require_gst_element, require_tools,
    target_dir, test_flv, wait_for, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The tests here run one at a time: each runs many real clients, and the
/// takeover test measures a deadline (1 s) that a machine busy with the
/// matrix's 10 clients should not decide.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A short H.264/AAC FLV (320x180 test pattern at 25 fps, 1 s GOP, 440 Hz
/// tone, `secs` long), made with ffmpeg once and cached in the target dir.
fn short_flv(secs: u32) -> PathBuf {
    pattern_flv("testsrc", secs)
}

/// Like [`short_flv`] with another lavfi video source (`testsrc2`,
/// `smptebars`, …), so two publishers' pictures differ.
fn pattern_flv(source: &str, secs: u32) -> PathBuf {
    // One maker at a time within this process.
    static MADE: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _guard = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    tern_tests::pattern_flv(source, 25, secs)
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
    let _serial = serial();
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

/// Checks a recording made across a takeover: H.264 + AAC, every packet
/// decoded; in each stream exactly one step in time larger than a frame
/// (the takeover: the second publisher continues 100 ms after the first
/// one's last message), every other step exactly one frame (nothing lost,
/// nothing repeated, never back in time: [`VIDEO_STEP_MS`],
/// [`AUDIO_STEP_MS`]); and the first video frame after the step is a
/// keyframe. Returns the video frames before and after the takeover.
fn check_takeover_capture(file: &Path) -> Result<(usize, usize), String> {
    let probe = tern_tests::Probe::of(file)?;
    let mut video_split = 0;
    for (kind, codec, step) in [
        ("video", "h264", VIDEO_STEP_MS),
        ("audio", "aac", AUDIO_STEP_MS),
    ] {
        let stream = probe
            .stream(kind)
            .ok_or_else(|| format!("no {kind} stream: {:?}", probe.streams))?;
        if stream.codec_name != codec {
            return Err(format!("{kind} is {}, not {codec}", stream.codec_name));
        }
        let packets = probe.packets_of(kind);
        if stream.frames != packets.len() as u64 {
            return Err(format!(
                "ffprobe decoded {} of {} {kind} packets",
                stream.frames,
                packets.len()
            ));
        }
        let pts: Vec<i64> = packets.iter().filter_map(|p| p.pts).collect();
        if pts.len() != packets.len() {
            return Err(format!("{kind} packets without pts"));
        }
        let odd: Vec<(usize, i64)> = pts
            .windows(2)
            .enumerate()
            .map(|(i, w)| (i + 1, w[1] - w[0]))
            .filter(|(_, d)| !step.contains(d))
            .collect();
        match odd.as_slice() {
            [(at, d)] if *d > *step.end() && *d <= 200 => {
                if kind == "video" {
                    if !packets[*at].keyframe {
                        return Err(format!(
                            "the first video frame after the takeover (packet {at}) is not a keyframe"
                        ));
                    }
                    video_split = *at;
                }
            }
            _ => {
                return Err(format!(
                    "{kind}: steps other than one frame ({step:?} ms) at (packet, ms) {odd:?}; \
                     expected exactly one takeover step of up to 200 ms"
                ));
            }
        }
    }
    let video = probe.packets_of("video").len();
    Ok((video_split, video - video_split))
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
    let _serial = serial();
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
    let (before, after) = match check_takeover_capture(&recording) {
        Ok(counts) => counts,
        Err(e) => panic!("player's recording: {e}"),
    };
    eprintln!("player: {before} video frames before the takeover, {after} after");
    // Up to 3.5 s of the first publisher (less the player's start, plus up
    // to a 2 s GOP of cache), then the second's 5 s (125 frames), of which
    // the player may miss the last moments as the stream ends.
    assert!((50..=140).contains(&before), "{before} frames before");
    assert!((110..=125).contains(&after), "{after} frames after");
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
    let _serial = serial();
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

// ----- the interop matrix -----

/// Seconds each matrix publisher streams.
const MATRIX_SECS: u32 = 6;

/// A publisher of the matrix.
struct Publisher {
    /// Row name in docs/interop.md.
    client: &'static str,
    /// Debian package whose version is reported.
    package: &'static str,
    notes: &'static str,
    start: fn(dir: &Path, flv: &Path, url: &str) -> Proc,
}

/// A player of the matrix: how to start it, and where its media lands.
struct Player {
    client: &'static str,
    package: &'static str,
    notes: &'static str,
    /// Starts it on `url`, recording into `out` (if it records).
    start: fn(dir: &Path, name: &str, url: &str, out: &Path) -> Proc,
    /// The recording's extension, or `None` when media is checked on
    /// stdout (ffprobe).
    records: Option<&'static str>,
}

fn publishers() -> Vec<Publisher> {
    vec![
        Publisher {
            client: "ffmpeg",
            package: "ffmpeg",
            notes: "`ffmpeg -re -i in.flv -c copy -f flv URL`; FMLE-style commands (releaseStream, FCPublish, FCUnpublish, deleteStream by id)",
            start: |dir, flv, url| ffmpeg_publish_file(dir, "pub-ffmpeg", flv, url, false),
        },
        Publisher {
            client: "GStreamer rtmp2sink",
            package: "gstreamer1.0-plugins-bad",
            notes: "`… ! flvmux streamable=true ! rtmp2sink location=URL`; every command with transaction 0, ends with `deleteStream` carrying the stream *name* (read leniently since issue 26)",
            start: |dir, flv, url| {
                gst_publish(dir, "pub-rtmp2sink", "rtmp2sink", flv, url, SECS(30))
            },
        },
        Publisher {
            client: "GStreamer rtmpsink (librtmp)",
            package: "librtmp1",
            notes: "`… ! flvmux streamable=true ! rtmpsink location=URL` (gstreamer1.0-plugins-bad); connect without flashVer",
            start: |dir, flv, url| gst_publish(dir, "pub-rtmpsink", "rtmpsink", flv, url, SECS(30)),
        },
    ]
}

fn gst_player(dir: &Path, name: &str, source: &str, location: &str, out: &Path) -> Proc {
    Proc::spawn(
        dir,
        name,
        SECS(30),
        "gst-launch-1.0",
        [
            "-e".to_owned(),
            source.to_owned(),
            format!("location={location}"),
            "!".to_owned(),
            "filesink".to_owned(),
            format!("location={}", out.display()),
        ],
    )
}

fn players() -> Vec<Player> {
    vec![
        Player {
            client: "ffmpeg",
            package: "ffmpeg",
            notes: "`ffmpeg -i URL -c copy out.flv`; sends getStreamLength, play start -2000",
            start: |dir, name, url, out| {
                let out = out.to_string_lossy().into_owned();
                Proc::spawn(
                    dir,
                    name,
                    SECS(30),
                    "ffmpeg",
                    [
                        "-nostdin", "-v", "error", "-y", "-i", url, "-c", "copy", "-f", "flv", &out,
                    ],
                )
            },
            records: Some("flv"),
        },
        Player {
            client: "ffprobe",
            package: "ffmpeg",
            notes: "`ffprobe -show_entries stream=codec_name URL`: probes and leaves (deleteStream by id)",
            start: |dir, name, url, _| {
                Proc::spawn(
                    dir,
                    name,
                    SECS(30),
                    "ffprobe",
                    [
                        "-v",
                        "error",
                        "-show_entries",
                        "stream=codec_name",
                        "-of",
                        "csv=p=0",
                        url,
                    ],
                )
            },
            records: None,
        },
        Player {
            client: "rtmpdump",
            package: "rtmpdump",
            notes: "`rtmpdump -r URL --live -o out.flv`; sends FCSubscribe (unknown: answered `_error`, noted at debug level)",
            start: |dir, name, url, out| {
                let out = out.to_string_lossy().into_owned();
                Proc::spawn(
                    dir,
                    name,
                    SECS(30),
                    "rtmpdump",
                    ["-q", "-r", url, "--live", "-m", "10", "-o", &out],
                )
            },
            records: Some("flv"),
        },
        Player {
            client: "GStreamer rtmp2src",
            package: "gstreamer1.0-plugins-bad",
            notes: "`gst-launch-1.0 -e rtmp2src location=URL ! filesink`; ends its session by closing the socket",
            start: |dir, name, url, out| gst_player(dir, name, "rtmp2src", url, out),
            records: Some("flv"),
        },
        Player {
            client: "GStreamer rtmpsrc (librtmp)",
            package: "librtmp1",
            notes: "`gst-launch-1.0 -e rtmpsrc location=\"URL live=1\" ! filesink`",
            start: |dir, name, url, out| {
                gst_player(dir, name, "rtmpsrc", &format!("{url} live=1"), out)
            },
            records: Some("flv"),
        },
        Player {
            client: "mpv",
            package: "mpv",
            notes: "`mpv --vo=null --ao=null --stream-record=out.flv URL` (libavformat's RTMP; decodes, runs headless)",
            start: |dir, name, url, out| {
                let record = format!("--stream-record={}", out.display());
                Proc::spawn(
                    dir,
                    name,
                    SECS(30),
                    "mpv",
                    [
                        "--no-config",
                        "--really-quiet",
                        "--vo=null",
                        "--ao=null",
                        &record,
                        url,
                    ],
                )
            },
            records: Some("flv"),
        },
        Player {
            client: "VLC",
            package: "vlc-bin",
            notes: "`cvlc --intf dummy --play-and-exit URL --sout '#std{access=file,mux=ts,dst=out.ts}'` (vlc-bin + vlc-plugin-base); Debian's VLC refuses to run as root, so under root the test runs it as `nobody`",
            start: |dir, name, url, out| {
                let sout = format!("#std{{access=file,mux=ts,dst={}}}", out.display());
                let mut args: Vec<String> = Vec::new();
                let root = Command::new("id")
                    .arg("-u")
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
                if root {
                    args.extend(["-u", "nobody", "--", "cvlc"].map(str::to_owned));
                }
                args.extend(
                    [
                        "-q",
                        "--intf",
                        "dummy",
                        "--play-and-exit",
                        url,
                        "--sout",
                        &sout,
                    ]
                    .map(str::to_owned),
                );
                let program = if root { "runuser" } else { "cvlc" };
                Proc::spawn(dir, name, SECS(30), program, args)
            },
            records: Some("ts"),
        },
    ]
}

/// The Debian version of `package` (`dpkg-query`), or `?` elsewhere.
fn package_version(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "?".to_owned())
}

/// Decoded video and audio frames of a recording (`None`: unreadable).
fn frames(file: &Path) -> Option<(u64, u64)> {
    let output = Command::new("timeout")
        .args(["-k", "5", "60", "ffprobe", "-v", "error", "-count_frames"])
        .args(["-show_entries", "stream=codec_type,nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut counts = (0, 0);
    for line in text.lines() {
        let mut parts = line.split(',');
        let (Some(kind), Some(n)) = (parts.next(), parts.next()) else {
            continue;
        };
        let n: u64 = n.trim().parse().unwrap_or(0);
        match kind.trim() {
            "video" => counts.0 += n,
            "audio" => counts.1 += n,
            _ => {}
        }
    }
    Some(counts)
}

/// One cell of the matrix: how a player did on one publisher's stream.
#[derive(Clone, Debug)]
struct Outcome {
    ok: bool,
    clean_end: bool,
    detail: String,
}

/// Every RTMP publisher and player Debian 12 ships, against tern: each
/// publisher streams a 6 s FLV, and while it is live every player plays it
/// at once, until the end of the stream. Pass: every client exits with its
/// success code by itself after receiving media (decoded frame counts of
/// each recording; ffprobe's codec list), and the server logs no protocol
/// error. The matrix is written to `target/tern-tests/interop.md`; with
/// `TERN_WRITE_INTEROP_DOC=1` also to docs/interop.md.
#[test]
fn interop_matrix() {
    let _serial = serial();
    let tools = [
        "ffmpeg",
        "ffprobe",
        "rtmpdump",
        "gst-launch-1.0",
        "mpv",
        "cvlc",
    ];
    let elements = ["rtmp2sink", "rtmpsink", "rtmp2src", "rtmpsrc"];
    let elements_ok = elements.iter().filter(|e| !require_gst_element(e)).count() == 0;
    if !(require_tools(&tools) && elements_ok) {
        return;
    }
    let flv = short_flv(MATRIX_SECS);
    let server = Server::start(ServerOptions {
        log: "info,tern_runtime_std::server=debug".to_owned(),
        ..ServerOptions::default()
    });
    let dir = server.dir().to_owned();
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("cannot create the output dir");
    // VLC may run as nobody: let it write its recording.
    let _ = Command::new("chmod").arg("777").arg(&out_dir).status();
    let started = Instant::now();
    let publishers = publishers();
    let players = players();
    let mut publish_results: Vec<Outcome> = Vec::new();
    let mut cells: Vec<Vec<Outcome>> = Vec::new();
    for (p, publisher) in publishers.iter().enumerate() {
        let name = format!("m{p}");
        let url = server.rtmp_url(&format!("live/{name}"));
        let mut pubproc = (publisher.start)(&dir, &flv, &url);
        wait_publishing(&server, "/live", &name);
        let mut running: Vec<(Proc, Option<PathBuf>)> = players
            .iter()
            .enumerate()
            .map(|(i, player)| {
                let out = player
                    .records
                    .map(|ext| out_dir.join(format!("{name}-player{i}.{ext}")));
                let target = out.clone().unwrap_or_else(|| out_dir.join("none"));
                let proc = (player.start)(&dir, &format!("{name}-player{i}"), &url, &target);
                (proc, out)
            })
            .collect();
        let status = pubproc.wait(SECS(u64::from(MATRIX_SECS) + 20));
        let text = format!("{}{}", pubproc.stdout_text(), pubproc.stderr_text());
        let published_ok = status.is_some_and(|s| s.success()) && !text.contains("ERROR");
        publish_results.push(Outcome {
            ok: published_ok,
            clean_end: published_ok,
            detail: match status {
                Some(s) if published_ok => format!("exit {}", s.code().unwrap_or(-1)),
                Some(s) => format!("{s}: {}", text.trim()),
                None => "did not end".to_owned(),
            },
        });
        let mut row = Vec::new();
        for (i, (proc, out)) in running.iter_mut().enumerate() {
            let status = proc.wait(SECS(15));
            let exited_ok = status.is_some_and(|s| s.success());
            let media = match out {
                Some(file) => match frames(file) {
                    Some((v, a)) if v >= 25 && a >= 20 => {
                        Ok(format!("{v} video + {a} audio frames"))
                    }
                    Some((v, a)) => Err(format!("only {v} video + {a} audio frames")),
                    None => Err("no readable recording".to_owned()),
                },
                None => {
                    let stdout = proc.stdout_text();
                    if stdout.contains("h264") && stdout.contains("aac") {
                        Ok("saw h264 + aac".to_owned())
                    } else {
                        Err(format!("probed {:?}", stdout.trim()))
                    }
                }
            };
            let detail = match (&status, &media) {
                (Some(s), Ok(m)) => format!("exit {}, {m}", s.code().unwrap_or(-1)),
                (Some(s), Err(m)) => format!("{s}, {m}; stderr: {}", proc.stderr_text().trim()),
                (None, m) => format!("still running; {m:?}"),
            };
            let ok = exited_ok && media.is_ok();
            eprintln!("{} → {}: {detail}", publisher.client, players[i].client);
            row.push(Outcome {
                ok,
                clean_end: exited_ok,
                detail,
            });
        }
        cells.push(row);
    }
    let elapsed = started.elapsed();
    let log = server.log();
    let errors = protocol_errors(&log);
    let doc = render_interop_doc(
        &publishers,
        &players,
        &publish_results,
        &cells,
        &errors,
        elapsed,
    );
    let target = target_dir().join("tern-tests");
    fs::create_dir_all(&target).expect("cannot create the target dir");
    fs::write(target.join("interop.md"), &doc).expect("cannot write the matrix");
    if std::env::var("TERN_WRITE_INTEROP_DOC").is_ok_and(|v| v == "1") {
        let path = tern_tests::workspace_root().join("docs/interop.md");
        fs::write(&path, &doc).expect("cannot write docs/interop.md");
    }
    eprintln!("matrix in {elapsed:?}:\n{doc}");
    assert_eq!(
        errors,
        Vec::<&str>::new(),
        "protocol errors in the server log"
    );
    for (p, publisher) in publishers.iter().enumerate() {
        assert!(
            publish_results[p].ok,
            "{} failed: {}",
            publisher.client, publish_results[p].detail
        );
        for (i, player) in players.iter().enumerate() {
            let cell = &cells[p][i];
            assert!(
                cell.ok,
                "{} playing {}: {}",
                player.client, publisher.client, cell.detail
            );
        }
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

/// docs/interop.md, from one run of [`interop_matrix`].
fn render_interop_doc(
    publishers: &[Publisher],
    players: &[Player],
    published: &[Outcome],
    cells: &[Vec<Outcome>],
    errors: &[&str],
    elapsed: Duration,
) -> String {
    let mut doc = String::from(
        "# Interoperability: the RTMP clients Debian ships\n\n\
         Generated by `tests/tests/e2e/interop.rs` (`interop_matrix`): every RTMP\n\
         publisher and player Debian 12 ships, against tern. Each publisher\n\
         streams a 6 s H.264/AAC FLV; while it is live every player plays it\n\
         at once, until the end of the stream. A client passes when it exits\n\
         with its success code by itself after receiving media (decoded frame\n\
         counts of its recording; ffprobe: the codecs it found), and the server\n\
         logs no protocol error for any of these sessions. Regenerate with\n\n\
         ```\n\
         TERN_WRITE_INTEROP_DOC=1 cargo test -p tern-tests --test e2e interop::interop_matrix\n\
         ```\n\n\
         (`.ci/install-tools.sh` installs every client; CI runs the test with\n\
         `TERN_REQUIRE_TOOLS=1`, so a missing client fails it.) mpv and VLC\n\
         both install on Debian 12 without a desktop (`apt-get install\n\
         --no-install-recommends mpv vlc-bin vlc-plugin-base`: 9 and 29\n\
         packages, about 45 s together) and run headless.\n\n\
         ## Clients\n\n\
         | client | version (Debian package) | publish | play | clean end | notes |\n\
         |---|---|---|---|---|---|\n",
    );
    /// One client's row: what it did as a publisher and as a player.
    struct Row {
        client: &'static str,
        package: &'static str,
        notes: Vec<String>,
        publish: Option<bool>,
        play: Option<bool>,
        clean: bool,
    }
    let mut rows: Vec<Row> = Vec::new();
    for (p, publisher) in publishers.iter().enumerate() {
        rows.push(Row {
            client: publisher.client,
            package: publisher.package,
            notes: vec![format!("publish: {}", publisher.notes)],
            publish: Some(published[p].ok),
            play: None,
            clean: published[p].clean_end,
        });
    }
    for (i, player) in players.iter().enumerate() {
        let all = cells.iter().all(|row| row[i].ok);
        let clean = cells.iter().all(|row| row[i].clean_end);
        let note = format!("play: {}", player.notes);
        match rows.iter_mut().find(|r| r.client == player.client) {
            Some(row) => {
                row.play = Some(all);
                row.clean &= clean;
                row.notes.push(note);
            }
            None => rows.push(Row {
                client: player.client,
                package: player.package,
                notes: vec![note],
                publish: None,
                play: Some(all),
                clean,
            }),
        }
    }
    for row in &rows {
        let cell = |v: Option<bool>| v.map_or("—", mark);
        doc.push_str(&format!(
            "| {} | {} ({}) | {} | {} | {} | {} |\n",
            row.client,
            package_version(row.package),
            row.package,
            cell(row.publish),
            cell(row.play),
            mark(row.clean),
            row.notes.join("; "),
        ));
    }
    doc.push_str("\n## Every pair\n\nRows publish, columns play.\n\n| publisher ↓ / player → |");
    for player in players {
        doc.push_str(&format!(" {} |", player.client));
    }
    doc.push_str("\n|---|");
    for _ in players {
        doc.push_str("---|");
    }
    doc.push('\n');
    for (p, publisher) in publishers.iter().enumerate() {
        doc.push_str(&format!("| {} |", publisher.client));
        for cell in &cells[p] {
            doc.push_str(&format!(" {} |", mark(cell.ok)));
        }
        doc.push('\n');
    }
    doc.push_str("\n## Details of this run\n\n");
    for (p, publisher) in publishers.iter().enumerate() {
        doc.push_str(&format!(
            "- {} published: {}\n",
            publisher.client, published[p].detail
        ));
        for (i, player) in players.iter().enumerate() {
            doc.push_str(&format!("  - {}: {}\n", player.client, cells[p][i].detail));
        }
    }
    doc.push_str(&format!(
        "\nServer protocol errors: {}. Matrix run time: {:.0} s.\n",
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join("; ")
        },
        elapsed.as_secs_f64()
    ));
    doc.push_str(
        "\n## Not in the matrix\n\n\
         - OBS Studio (Debian's `obs-studio`) needs a display, so it is not\n\
         \u{20} run here; it publishes FMLE-style like ffmpeg (`releaseStream`,\n\
         \u{20} `FCPublish`, `publish`, `FCUnpublish`, `deleteStream` by id).\n\
         - VLC's frame counts above are ffprobe's over VLC's MPEG-TS\n\
         \u{20} recording and exceed what was sent (the same frames counted over\n\
         \u{20} more PES packets); they only show that media arrived.\n\
         - `rtmpdump` cannot publish; `rtmpsuck`/`rtmpsrv` (same package) are\n\
         \u{20} proxies and servers, not clients.\n",
    );
    doc
}
