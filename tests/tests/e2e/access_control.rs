//! Access control with real clients: address rules (RTMP and WebSocket),
//! signed URLs made by `tern sign` (ffmpeg publishing and playing, also
//! with the OBS-style split of server URL and stream key), and
//! `client_so_write = false`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use tern_tests::{
    Proc, Server, ServerOptions, check_av_capture, ffmpeg_play, ffmpeg_publish, require_tools,
    tern_binary, test_flv, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// An ffmpeg publish that the server must refuse: ffmpeg fails and no
/// stream of that name appears.
fn assert_publish_refused(server: &Server, what: &str, url: &str, scope: &str, name: &str) {
    let mut publisher = ffmpeg_publish(server.dir(), what, url, SECS(20));
    let status = publisher.wait_exit(SECS(20));
    assert!(
        !status.success(),
        "{what}: ffmpeg published; stderr:\n{}",
        publisher.stderr_text()
    );
    assert!(
        server.stream_stats(scope, name).is_none(),
        "{what}: a stream appeared: {}",
        server.stats()
    );
}

/// Plays `url` for 3 s and checks that audio and video arrived.
fn assert_plays(server: &Server, what: &str, url: &str) {
    let out = server.dir().join(format!("{what}.flv"));
    let mut player = ffmpeg_play(server.dir(), what, url, 3, &out);
    let status = player.wait_exit(SECS(25));
    assert!(status.success(), "{what}: {}", player.stderr_text());
    if let Err(e) = check_av_capture(&out, 3.0, 1.0, 2.0) {
        panic!("{what}: {e}");
    }
}

/// The raw answer to a WebSocket upgrade of `path`: its status code and body.
fn upgrade(server: &Server, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server.http_addr()).unwrap();
    stream.set_read_timeout(Some(SECS(10))).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    // A refusal closes after its body.
    if got.starts_with(b"HTTP/1.1 403") {
        let _ = stream.read_to_end(&mut got);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn address_rules_refuse_before_anything_else() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    test_flv();
    let server = Server::start(ServerOptions {
        config: Some(
            r#"
[apps.live]
allow_publish = ["10.0.0.0/8"]
[apps.open]
allow_publish = ["127.0.0.1/32", "::1/128"]
allow_play = ["192.0.2.0/24"]
[apps.chat]
allow_connect = ["192.0.2.0/24", "2001:db8::/32"]
"#
            .to_owned(),
        ),
        ..ServerOptions::default()
    });
    assert_publish_refused(
        &server,
        "outside",
        &server.rtmp_url("live/cam"),
        "/live",
        "cam",
    );
    assert!(
        server
            .log()
            .contains("may not publish in /live (allow_publish)"),
        "{}",
        server.log()
    );

    // 127.0.0.1 may publish in `open`, but nobody here may play there.
    let mut publisher = ffmpeg_publish(
        server.dir(),
        "inside",
        &server.rtmp_url("open/cam"),
        SECS(30),
    );
    wait_publishing(&server, "/open", "cam");
    let out = server.dir().join("refused-player.flv");
    let mut player = ffmpeg_play(
        server.dir(),
        "refused-player",
        &server.rtmp_url("open/cam"),
        3,
        &out,
    );
    assert!(
        !player.wait_exit(SECS(20)).success(),
        "the player was let in"
    );
    assert!(server.log().contains("(allow_play)"));
    assert!(server.stream_stats("/open", "cam").unwrap()["subscribers"] == 0);
    publisher.signal("INT");
    publisher.wait(SECS(10));

    // WebSocket: refused before the upgrade, with the reason.
    let (code, body) = upgrade(&server, "chat/room1");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("allow_connect"), "{body}");
    let (code, _) = upgrade(&server, "open/room1");
    assert_eq!(code, 101);
    // The server serves on.
    assert_eq!(server.http_get("/healthz").unwrap().status, 200);
}

fn sign(url: &str, secret: &str, expires_in: u64) -> String {
    let out = Command::new(tern_binary())
        .args([
            "sign",
            url,
            "--secret",
            secret,
            "--expires-in",
            &expires_in.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn signed_urls_from_tern_sign_admit_only_their_stream() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    test_flv();
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), "s3cret\n").unwrap();
    let server = Server::start(ServerOptions {
        config: Some(format!(
            "[apps.live]\nsecret = \"s3cret\"\n[apps.studio]\nsecret_file = {:?}\n",
            secret_file.path()
        )),
        ..ServerOptions::default()
    });
    let signed = sign(&server.rtmp_url("live/room1/cam"), "s3cret", 3600);
    assert!(signed.contains("/live/room1/cam?token="), "{signed}");

    // Refused: missing, wrong, expired, another stream's, another app's.
    let (_, query) = signed.split_once('?').unwrap();
    let token = query
        .split('&')
        .next()
        .unwrap()
        .trim_start_matches("token=");
    let expires = query.rsplit_once("expires=").unwrap().1;
    let mut wrong = token.to_owned();
    let flipped = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(63.., flipped);
    let past = now() - 10;
    let expired = tern_core::access::token::sign(b"s3cret", "live/room1/cam", past);
    let studio = sign(&server.rtmp_url("studio/room1/cam"), "s3cret", 3600);
    let studio_query = studio.split_once('?').unwrap().1;
    for (what, url) in [
        ("missing", server.rtmp_url("live/room1/cam")),
        (
            "wrong",
            server.rtmp_url(&format!("live/room1/cam?token={wrong}&expires={expires}")),
        ),
        (
            "expired",
            server.rtmp_url(&format!("live/room1/cam?token={expired}&expires={past}")),
        ),
        (
            "other-stream",
            server.rtmp_url(&format!("live/room1/cam2?{query}")),
        ),
        (
            "other-app",
            server.rtmp_url(&format!("live/room1/cam?{studio_query}")),
        ),
    ] {
        let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
        assert_publish_refused(&server, what, &url, "/live/room1", name);
    }
    let log = server.log();
    for reason in ["token and expires missing", "does not match", "expired at"] {
        assert!(log.contains(reason), "no {reason:?} in the log:\n{log}");
    }

    // Valid: publish and play with the signed URL.
    let mut publisher = ffmpeg_publish(server.dir(), "signed", &signed, SECS(30));
    wait_publishing(&server, "/live/room1", "cam");
    assert_plays(&server, "signed-player", &signed);
    // Playing without a token is refused like publishing.
    let out = server.dir().join("unsigned.flv");
    let mut unsigned = ffmpeg_play(
        server.dir(),
        "unsigned",
        &server.rtmp_url("live/room1/cam"),
        3,
        &out,
    );
    assert!(!unsigned.wait_exit(SECS(20)).success());
    publisher.signal("INT");
    publisher.wait(SECS(10));

    // OBS style: server URL `rtmp://host/studio/room1`, stream key
    // `cam?token=…&expires=…` (the secret read from secret_file).
    let key = studio.rsplit_once('/').unwrap().1;
    assert!(key.starts_with("cam?token="), "{key}");
    let flv = test_flv().to_string_lossy().into_owned();
    let server_url = server.rtmp_url("studio/room1");
    let mut obs = Proc::spawn(
        server.dir(),
        "obs-style",
        SECS(30),
        "ffmpeg",
        [
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-i",
            &flv,
            "-c",
            "copy",
            "-f",
            "flv",
            "-rtmp_app",
            "studio/room1",
            "-rtmp_playpath",
            key,
            &server_url,
        ],
    );
    wait_publishing(&server, "/studio/room1", "cam");
    assert_plays(&server, "obs-player", &studio);
    obs.signal("INT");
    obs.wait(SECS(10));
}

#[test]
fn websocket_connects_need_a_signed_url_too() {
    let server = Server::start(ServerOptions {
        config: Some("[apps.chat]\nsecret = \"k\"\n".to_owned()),
        ..ServerOptions::default()
    });
    let (code, body) = upgrade(&server, "chat/room1");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("missing"), "{body}");
    let signed = sign(&server.ws_url("chat/room1"), "k", 60);
    let path = signed
        .split_once(&format!("{}/", server.http_addr()))
        .unwrap()
        .1;
    assert_eq!(upgrade(&server, path).0, 101);
    // The token of one room does not open another.
    let other = path.replace("room1", "room2");
    assert_eq!(upgrade(&server, &other).0, 403);
}

#[test]
fn connects_per_address_per_second_are_limited() {
    let server = Server::start(ServerOptions {
        config: Some("[scopes]\nmax_connects_per_address_per_sec = 2\n".to_owned()),
        ..ServerOptions::default()
    });
    let started = std::time::Instant::now();
    let codes: Vec<u16> = (0..3).map(|_| upgrade(&server, "chat/room1").0).collect();
    // The burst (2), then refused until the bucket refills (one per 500 ms).
    assert_eq!(
        codes,
        [101, 101, 403],
        "3 upgrades in {:?}",
        started.elapsed()
    );
    assert!(server.log().contains("too many connects from 127.0.0.1"));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        upgrade(&server, "chat/room1").0,
        101,
        "no refill after 0.6 s at 2/s"
    );
}
