//! Recording live streams to FLV (nginx-rtmp's `record`): ffmpeg publishes
//! the 12 s test stream, ffprobe reads what tern wrote.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tern_tests::webhook::Webhook;
use tern_tests::{
    Probe, Server, ServerOptions, check_av_capture, ffmpeg_play, ffmpeg_publish, metric,
    require_tools, wait_for, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn server(app: &str) -> Server {
    Server::start(ServerOptions {
        config: Some(format!("[apps.live]\n{app}\n")),
        ..ServerOptions::default()
    })
}

/// The `.flv` files under `dir`, sorted by name.
fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "flv"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Publishes the whole test stream to live/cam and waits for the
/// recording to be done.
fn publish_all(server: &Server) {
    let mut publisher = ffmpeg_publish(
        server.dir(),
        "publisher",
        &server.rtmp_url("live/cam"),
        SECS(30),
    );
    let status = publisher.wait_exit(SECS(30));
    assert!(
        status.success(),
        "ffmpeg failed: {}",
        publisher.stderr_text()
    );
    let done = wait_for(SECS(10), || {
        let metrics = server.metrics();
        metric(&metrics, "tern_recordings_total{result=\"done\"}").filter(|n| *n >= 1.0)
    });
    assert!(done.is_some(), "no recording done: {}", server.log());
}

#[test]
fn record_all_writes_one_file_with_every_frame() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let server = server("record = \"all\"");
    publish_all(&server);
    let files = recordings(&server.data_dir().join("recordings/live"));
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("cam-") && name.len() == "cam-20261206-114539.flv".len(),
        "{name}"
    );
    let summary = check_av_capture(&files[0], 12.0, 1.0, 0.5).unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.video_secs >= 11.0, "{summary:?}");
    assert!(server.log().contains("record done"));
}

/// `duration` and `filesize` of the first `onMetaData` in `file`.
fn metadata_length(file: &Path) -> (Option<f64>, Option<f64>) {
    use tern_core::amf0::{self, Value};
    use tern_core::flv::tag;
    let bytes = fs::read(file).unwrap();
    let tags = tag::tags(&bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let limits = tern_core::Limits::default();
    let values = tags
        .iter()
        .filter(|t| t.kind == tern_core::hub::MediaKind::Data)
        .filter_map(|t| amf0::decode_all(t.body, &limits).ok())
        .find(|v| v.first().and_then(Value::as_str) == Some("onMetaData"))
        .unwrap_or_else(|| panic!("no onMetaData in {}", file.display()));
    let get = |key: &str| {
        values
            .get(1)
            .and_then(|m| m.get(key))
            .and_then(Value::as_f64)
    };
    (get("duration"), get("filesize"))
}

#[test]
fn a_finished_recording_has_its_length_in_its_metadata_and_is_reported() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let hook = Webhook::start();
    let url = hook.url("/on_record_done");
    let server = server(&format!("record = \"all\"\non_record_done = {url:?}"));
    publish_all(&server);
    let files = recordings(&server.data_dir().join("recordings/live"));
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let size = fs::metadata(file).unwrap().len();
    // The publisher (ffmpeg, from a 12 s file) said 12 s; what counts is
    // the file: its last timestamp, and its size to the byte.
    let (duration, filesize) = metadata_length(file);
    let duration = duration.expect("no duration");
    assert!((11.0..12.5).contains(&duration), "duration {duration}");
    assert_eq!(filesize, Some(size as f64));
    let probed = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    let probed: f64 = String::from_utf8_lossy(&probed.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("ffprobe: {e}: {probed:?}"));
    assert!(
        (probed - duration).abs() < 0.5,
        "ffprobe {probed}, metadata {duration}"
    );

    let calls = wait_for(SECS(10), || {
        let calls = hook.calls();
        (!calls.is_empty()).then_some(calls)
    })
    .unwrap_or_else(|| panic!("no on_record_done call: {}", server.log()));
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!(call.path, "/on_record_done");
    assert_eq!(call.call(), "record_done");
    assert_eq!(call.get("app"), Some("live"));
    assert_eq!(call.get("name"), Some("cam"));
    assert_eq!(call.get("recorder"), Some("/live/cam"));
    assert_eq!(call.get("scope"), Some("/live"));
    let path = PathBuf::from(call.get("path").unwrap_or_default());
    assert_eq!(path, fs::canonicalize(file).unwrap(), "{call:#?}");
    assert_eq!(call.get("filesize"), Some(size.to_string().as_str()));
    let reported: f64 = call.get("duration").unwrap_or_default().parse().unwrap();
    assert!((reported - duration).abs() < 0.001, "{call:#?}");
}

#[test]
fn a_killed_server_leaves_a_readable_file() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let mut server = server("record = \"all\"");
    let publisher = ffmpeg_publish(
        server.dir(),
        "publisher",
        &server.rtmp_url("live/cam"),
        SECS(30),
    );
    wait_publishing(&server, "/live", "cam");
    std::thread::sleep(SECS(6));
    server.kill9();
    drop(publisher);
    let files = recordings(&server.data_dir().join("recordings/live"));
    assert_eq!(files.len(), 1, "{files:?}");
    let probe = Probe::of(&files[0]).unwrap_or_else(|e| panic!("{e}"));
    let video = probe.span_secs("video");
    assert!(video >= 4.0, "{video:.2} s of video after kill -9 at 6 s");
    assert!(
        probe
            .packets_of("video")
            .first()
            .is_some_and(|p| p.keyframe)
    );
}

#[test]
fn keyframes_mode_records_keyframes_only() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let server = server("record = \"keyframes\"");
    publish_all(&server);
    let files = recordings(&server.data_dir().join("recordings/live"));
    assert_eq!(files.len(), 1, "{files:?}");
    let probe = Probe::of(&files[0]).unwrap_or_else(|e| panic!("{e}"));
    assert!(probe.stream("audio").is_none(), "{:?}", probe.streams);
    let video = probe.packets_of("video");
    // 12 s with a keyframe every 2 s.
    assert!(video.len() >= 5, "{} keyframes", video.len());
    assert!(
        video.iter().all(|p| p.keyframe),
        "an inter frame was recorded"
    );
    assert_eq!(
        probe.stream("video").map(|s| s.codec_name.as_str()),
        Some("h264")
    );
}

#[test]
fn record_max_size_splits_into_readable_files() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    // The test stream is ~334 KB; a file ends at the first keyframe past
    // 80 KB.
    let server = server("record = \"all\"\nrecord_max_size = 80000");
    publish_all(&server);
    let files = recordings(&server.data_dir().join("recordings/live"));
    assert!(files.len() >= 3, "{files:?}");
    let mut total = 0.0;
    for file in &files {
        let probe = Probe::of(file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            probe.stream("video").map(|s| s.codec_name.as_str()),
            Some("h264")
        );
        assert_eq!(
            probe.stream("audio").map(|s| s.codec_name.as_str()),
            Some("aac")
        );
        let video = probe.packets_of("video");
        assert!(
            video.first().is_some_and(|p| p.keyframe),
            "{}",
            file.display()
        );
        assert!(video.first().and_then(|p| p.pts).is_some_and(|t| t <= 100));
        let frames = probe.stream("video").map_or(0, |s| s.frames);
        assert_eq!(
            frames,
            video.len() as u64,
            "every packet of {} decodes",
            file.display()
        );
        total += probe.span_secs("video");
    }
    assert!(
        total >= 10.0,
        "{total:.2} s of video in {} files",
        files.len()
    );
}

#[test]
fn an_unwritable_record_path_leaves_live_play_working() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let server = server("record = \"all\"\nrecord_path = \"/proc/tern-cannot-write-here\"");
    let publisher = ffmpeg_publish(
        server.dir(),
        "publisher",
        &server.rtmp_url("live/cam"),
        SECS(30),
    );
    wait_publishing(&server, "/live", "cam");
    let out = server.dir().join("play.flv");
    let url = format!("http://{}/live/cam.flv", server.http_addr());
    let mut player = ffmpeg_play(server.dir(), "player", &url, 4, &out);
    let status = player.wait_exit(SECS(20));
    assert!(status.success(), "ffmpeg failed: {}", player.stderr_text());
    check_av_capture(&out, 4.0, 1.5, 2.5).unwrap_or_else(|e| panic!("{e}"));
    let failed = wait_for(SECS(5), || {
        metric(
            &server.metrics(),
            "tern_recordings_total{result=\"failed\"}",
        )
        .filter(|n| *n >= 1.0)
    });
    assert!(failed.is_some(), "no failed recording counted");
    let log = server.log();
    assert!(
        log.contains("recording stopped") && log.contains("/proc/tern-cannot-write-here"),
        "the log does not say why: {log}"
    );
    drop(publisher);
}
