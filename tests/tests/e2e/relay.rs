//! Relays end to end (docs/relay.md): tern pushes a published stream to
//! nginx-rtmp and to a second tern, pulls one from nginx-rtmp for several
//! local players, and survives targets that die, come back or never
//! answer. ffmpeg publishes the 12 s test stream; ffmpeg players capture
//! and ffprobe checks every capture (H.264 + AAC, each frame once and in
//! order).

use serde_json::Value as Json;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tern_tests::{
    Proc, Server, ServerOptions, check_av_capture, ffmpeg_play, ffmpeg_publish, require,
    require_tools, test_flv, wait_for, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;
const NGINX_RTMP: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

fn tools(nginx: bool) -> bool {
    let mut ok = require_tools(&["ffmpeg", "ffprobe"]);
    if nginx {
        ok = ok
            && require_tools(&["nginx"])
            && require("libnginx-mod-rtmp", Path::new(NGINX_RTMP).exists());
    }
    if ok {
        test_flv();
    }
    ok
}

fn server(config: &str) -> Server {
    Server::start(ServerOptions {
        config: Some(config.to_owned()),
        ..ServerOptions::default()
    })
}

/// nginx-rtmp with application `live` and its stat page.
struct Nginx {
    proc: Proc,
    rtmp: u16,
    http: u16,
}

impl Nginx {
    fn start(dir: &Path) -> Nginx {
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(&prefix).unwrap();
        let (rtmp, http) = (free_port(), free_port());
        let p = prefix.display();
        let conf = format!(
            "load_module {NGINX_RTMP};\n\
             daemon off; master_process off; worker_processes 1;\n\
             pid {p}/nginx.pid; error_log {p}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{ access_log off; client_body_temp_path {p}/body; proxy_temp_path {p}/proxy;\n\
               fastcgi_temp_path {p}/fcgi; uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;\n\
               server {{ listen 127.0.0.1:{http}; location /stat {{ rtmp_stat all; }} }} }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{rtmp}; chunk_size 4096;\n\
               application live {{ live on; record off; }} }} }}\n"
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let error_log = prefix.join("error.log").to_string_lossy().into_owned();
        let proc = Proc::spawn(
            &prefix,
            "nginx",
            SECS(180),
            "nginx",
            [
                "-c",
                &conf_path.to_string_lossy(),
                "-p",
                &format!("{p}/"),
                "-e",
                &error_log,
            ],
        );
        let up = wait_for(SECS(10), || {
            std::net::TcpStream::connect(("127.0.0.1", rtmp)).ok()
        });
        assert!(up.is_some(), "nginx did not start: {}", proc.stderr_text());
        Nginx { proc, rtmp, http }
    }

    fn url(&self, path: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{path}", self.rtmp)
    }

    /// (clients, publishers) nginx-rtmp's stat page lists for stream
    /// `name` of app `live` ((0, 0) if it lists no such stream).
    fn clients(&self, name: &str) -> (usize, usize) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.http));
        let Ok(page) = tern_tests::http_get(addr, "/stat") else {
            return (0, 0);
        };
        let body = page.body.replace('\r', "");
        let needle = format!("<stream>\n<name>{name}</name>");
        let Some(at) = body.find(&needle) else {
            return (0, 0);
        };
        let stream = &body[at..];
        let stream = &stream[..stream.find("</stream>").unwrap_or(stream.len())];
        let clients: Vec<&str> = stream
            .split("<client>")
            .skip(1)
            .map(|c| &c[..c.find("</client>").unwrap_or(c.len())])
            .collect();
        let publishers = clients
            .iter()
            .filter(|c| c.contains("<publishing/>"))
            .count();
        (clients.len(), publishers)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.proc.signal("QUIT");
        self.proc.wait(SECS(5));
    }
}

/// The relays `/api/stats` lists.
fn relays(server: &Server) -> Vec<Json> {
    server.stats()["relays"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_relay(server: &Server, within: Duration, f: impl Fn(&Json) -> bool) -> Json {
    wait_for(within, || relays(server).into_iter().find(|r| f(r))).unwrap_or_else(|| {
        panic!(
            "no such relay after {within:?}: {:#?}\nlog:\n{}",
            relays(server),
            server.log()
        )
    })
}

/// ffmpeg publishing the test stream in a loop (for tests longer than 12 s).
fn publish_looped(dir: &Path, url: &str, limit: Duration) -> Proc {
    tern_tests::ffmpeg_publish_looped(dir, "publisher", url, limit)
}

fn capture(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.flv"))
}

fn check(path: &Path, played: f64, what: &str, server: &Server) {
    if let Err(e) = check_av_capture(path, played, 2.5, 3.0) {
        panic!("{what}: {e}\nlog:\n{}", server.log());
    }
}

#[test]
fn pushes_to_nginx_rtmp_and_to_a_second_tern() {
    if !tools(true) {
        return;
    }
    let target = server("[apps.live]\n");
    let nginx = Nginx::start(target.dir());
    let origin = server(&format!(
        "[apps.live]\npush = [{:?}, {:?}]\n",
        nginx.url("live"),
        target.rtmp_url("live")
    ));
    let dir = origin.dir();
    let mut publisher = ffmpeg_publish(dir, "publisher", &origin.rtmp_url("live/cam"), SECS(30));
    wait_publishing(&origin, "/live", "cam");
    wait_publishing(&target, "/live", "cam");
    let pushes = wait_for(SECS(10), || {
        let r = relays(&origin);
        (r.len() == 2 && r.iter().all(|r| r["state"] == "live")).then_some(r)
    })
    .unwrap_or_else(|| panic!("two live pushes expected: {:#?}", relays(&origin)));
    assert!(
        pushes
            .iter()
            .all(|r| r["kind"] == "push" && r["stream"] == "/live/cam")
    );
    let (nginx_out, tern_out) = (capture(dir, "from-nginx"), capture(dir, "from-tern"));
    let mut players = [
        ffmpeg_play(dir, "nginx-player", &nginx.url("live/cam"), 5, &nginx_out),
        ffmpeg_play(
            dir,
            "tern-player",
            &target.rtmp_url("live/cam"),
            5,
            &tern_out,
        ),
    ];
    for p in &mut players {
        let status = p.wait_exit(SECS(25));
        assert!(status.success(), "player failed: {}", p.stderr_text());
    }
    check(&nginx_out, 5.0, "player of nginx-rtmp", &origin);
    check(&tern_out, 5.0, "player of the second tern", &origin);
    assert_eq!(
        nginx.clients("cam").1,
        1,
        "nginx-rtmp sees the push publishing"
    );
    let bytes = relays(&origin)
        .iter()
        .map(|r| r["bytes_out"].as_u64().unwrap_or(0))
        .min()
        .unwrap_or(0);
    assert!(
        bytes > 100_000,
        "each push wrote its stream: {:#?}",
        relays(&origin)
    );
    let metrics = origin.metrics();
    assert_eq!(
        tern_tests::metric(&metrics, "tern_relays{kind=\"push\",state=\"live\"}"),
        Some(2.0),
        "{metrics}"
    );
    publisher.wait_exit(SECS(25));
    // The stream ended: the pushes stop and say goodbye.
    let gone = wait_for(SECS(10), || relays(&origin).is_empty().then_some(()));
    assert!(
        gone.is_some(),
        "pushes outlived the stream: {:#?}",
        relays(&origin)
    );
    let unpublished = wait_for(SECS(10), || {
        target
            .stream_stats("/live", "cam")
            .is_none_or(|s| s["publishing"] == false)
            .then_some(())
    });
    assert!(unpublished.is_some(), "the target still has the stream");
    let log = origin.log();
    assert!(log.contains("push /live/cam → rtmp://127.0.0.1:"), "{log}");
    assert!(log.contains("connecting → live"), "{log}");
}

#[test]
fn pulls_from_nginx_rtmp_once_for_three_players_and_stops_after_they_leave() {
    if !tools(true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path());
    let edge = server(&format!(
        "[apps.live]\npull = {:?}\npull_idle_secs = 2\n",
        nginx.url("live")
    ));
    let work = edge.dir();
    let _publisher = publish_looped(work, &nginx.url("live/cam"), SECS(60));
    let published = wait_for(SECS(10), || (nginx.clients("cam").1 == 1).then_some(()));
    assert!(published.is_some(), "ffmpeg did not publish to nginx-rtmp");
    let outs: Vec<PathBuf> = (0..3)
        .map(|i| capture(work, &format!("player{i}")))
        .collect();
    let mut players: Vec<Proc> = outs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let p = ffmpeg_play(
                work,
                &format!("player{i}"),
                &edge.rtmp_url("live/cam"),
                6,
                out,
            );
            std::thread::sleep(Duration::from_millis(300));
            p
        })
        .collect();
    let three = wait_for(SECS(10), || {
        edge.stream_stats("/live", "cam")
            .filter(|s| s["subscribers"] == 3 && s["publishing"] == true)
    });
    assert!(
        three.is_some(),
        "three players on a pulled stream: {}",
        edge.stats()
    );
    // nginx-rtmp, the origin, has the publisher and one client: the pull.
    assert_eq!(nginx.clients("cam"), (2, 1), "origin clients");
    let pulls = relays(&edge);
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0]["kind"], "pull");
    assert_eq!(pulls[0]["state"], "live");
    for p in &mut players {
        let status = p.wait_exit(SECS(30));
        assert!(status.success(), "player failed: {}", p.stderr_text());
    }
    // The players are gone; 2 s later the pull stops and the origin has
    // only its publisher.
    let left = Instant::now();
    let stopped = wait_for(SECS(10), || {
        (relays(&edge).is_empty() && nginx.clients("cam") == (1, 1)).then_some(())
    });
    assert!(
        stopped.is_some(),
        "the pull did not stop: {:#?}, origin {:?}",
        relays(&edge),
        nginx.clients("cam")
    );
    assert!(
        left.elapsed() >= Duration::from_millis(1500),
        "stopped before pull_idle_secs"
    );
    for (i, out) in outs.iter().enumerate() {
        check(out, 6.0, &format!("player {i} of the pulled stream"), &edge);
    }
}

#[test]
fn a_target_that_dies_and_comes_back_gets_the_stream_again() {
    if !tools(false) {
        return;
    }
    let mut target = server("[apps.live]\n");
    let origin = server(&format!(
        "[apps.live]\npush = [{:?}]\n",
        target.rtmp_url("live")
    ));
    let dir = origin.dir();
    let _publisher = publish_looped(dir, &origin.rtmp_url("live/cam"), SECS(60));
    wait_publishing(&origin, "/live", "cam");
    wait_publishing(&target, "/live", "cam");
    // A local player across the outage: every frame, in order.
    let local_out = capture(dir, "local");
    let mut local = ffmpeg_play(dir, "local", &origin.rtmp_url("live/cam"), 8, &local_out);
    std::thread::sleep(SECS(2));
    target.kill9();
    wait_relay(&origin, SECS(5), |r| r["state"] == "waiting");
    std::thread::sleep(Duration::from_millis(300));
    target.restart();
    let back = Instant::now();
    let reconnected = wait_for(SECS(10), || {
        target
            .stream_stats("/live", "cam")
            .filter(|s| s["publishing"] == true)
            .map(|_| back.elapsed())
    })
    .unwrap_or_else(|| panic!("the push did not come back: {:#?}", relays(&origin)));
    eprintln!("reconnected {reconnected:?} after the target's return");
    assert!(
        reconnected <= SECS(2),
        "reconnected only after {reconnected:?}"
    );
    let relay = wait_relay(&origin, SECS(5), |r| r["state"] == "live");
    assert_eq!(relay["reconnects"], 1, "{relay:#}");
    assert!(
        relay["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{relay:#}"
    );
    let remote_out = capture(dir, "remote");
    let mut remote = ffmpeg_play(dir, "remote", &target.rtmp_url("live/cam"), 4, &remote_out);
    assert!(
        remote.wait_exit(SECS(25)).success(),
        "{}",
        remote.stderr_text()
    );
    check(
        &remote_out,
        4.0,
        "the target's player after the return",
        &origin,
    );
    assert!(
        local.wait_exit(SECS(25)).success(),
        "{}",
        local.stderr_text()
    );
    check(
        &local_out,
        8.0,
        "the local player across the outage",
        &origin,
    );
}

#[test]
fn a_target_that_never_answers_holds_nobody_back() {
    if !tools(false) {
        return;
    }
    // Accepts TCP and never reads or writes a byte.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        hole.set_nonblocking(true).unwrap();
        let until = Instant::now() + SECS(40);
        while Instant::now() < until {
            if let Ok((s, _)) = hole.accept() {
                kept.push(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kept.len()
    });
    let origin = server(&format!(
        "[server]\nwrite_timeout_secs = 2\n[apps.live]\npush = [\"rtmp://127.0.0.1:{hole_port}/live\"]\n"
    ));
    let dir = origin.dir();
    let mut publisher = ffmpeg_publish(dir, "publisher", &origin.rtmp_url("live/cam"), SECS(30));
    wait_publishing(&origin, "/live", "cam");
    let out = capture(dir, "local");
    let mut player = ffmpeg_play(dir, "local", &origin.rtmp_url("live/cam"), 7, &out);
    assert!(
        player.wait_exit(SECS(25)).success(),
        "{}",
        player.stderr_text()
    );
    check(
        &out,
        7.0,
        "a local player while the push target is a black hole",
        &origin,
    );
    let relay = wait_relay(&origin, SECS(10), |r| {
        r["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer"))
    });
    assert_ne!(relay["state"], "live", "{relay:#}");
    assert!(
        publisher.wait_exit(SECS(20)).success(),
        "{}",
        publisher.stderr_text()
    );
    // The publisher ran at its own pace: the 12 s file took about 12 s.
    let ran = publisher.ran_for().unwrap();
    assert!(ran < SECS(15), "the publisher was held back: {ran:?}");
    drop(origin);
    assert!(
        held.join().unwrap() >= 1,
        "the relay never connected to the black hole"
    );
}

const ADMIN: &str = "relay-admin-token-0123456789";

fn admin(server: &Server, method: &str, path: &str, body: &str) -> (u16, Json) {
    let auth = format!("Bearer {ADMIN}");
    let r = tern_tests::http::request(
        server.http_addr(),
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .expect("admin request failed");
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Json::Null),
    )
}

#[test]
fn a_push_added_through_the_admin_api_starts_on_a_keyframe() {
    if !tools(true) {
        return;
    }
    let origin = server(&format!("[http]\nadmin_token = \"{ADMIN}\"\n[apps.live]\n"));
    let dir = origin.dir();
    let nginx = Nginx::start(dir);
    let _publisher = publish_looped(dir, &origin.rtmp_url("live/cam"), SECS(60));
    wait_publishing(&origin, "/live", "cam");
    let body = format!("{{\"url\": {:?}}}", nginx.url("live"));
    let (status, _) = admin(&origin, "POST", "/api/streams/live/nobody/push", &body);
    assert_eq!(status, 404, "a push of a stream nobody publishes");
    let (status, _) = admin(
        &origin,
        "POST",
        "/api/streams/live/cam/push",
        "{\"url\": \"http://x/\"}",
    );
    assert_eq!(status, 400);
    // Mid-GOP (the test stream has a keyframe every 2 s) and with a
    // player already waiting at nginx-rtmp, which relays what it gets
    // from the first byte (no keyframe wait of its own).
    std::thread::sleep(Duration::from_millis(3300));
    let out = capture(dir, "from-nginx");
    let mut player = ffmpeg_play(dir, "nginx-player", &nginx.url("live/cam"), 4, &out);
    std::thread::sleep(Duration::from_millis(700));
    let (status, answer) = admin(&origin, "POST", "/api/streams/live/cam/push", &body);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["stream"], "/live/cam");
    let (status, _) = admin(&origin, "POST", "/api/streams/live/cam/push", &body);
    assert_eq!(status, 409, "the same push twice");
    let relay = wait_relay(&origin, SECS(10), |r| r["state"] == "live");
    assert_eq!(relay["source"], "api");
    assert!(
        player.wait_exit(SECS(25)).success(),
        "{}",
        player.stderr_text()
    );
    let probe = tern_tests::Probe::of(&out).unwrap();
    let first = probe.packets_of("video");
    assert!(
        first.first().is_some_and(|p| p.keyframe),
        "the target's first video frame is not a keyframe: {:?}",
        first.iter().take(3).collect::<Vec<_>>()
    );
    check(
        &out,
        4.0,
        "a player of a push added through the admin API",
        &origin,
    );
    let (status, answer) = admin(&origin, "DELETE", "/api/streams/live/cam/push", &body);
    assert_eq!(
        (status, answer["stopped"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    let gone = wait_for(SECS(10), || {
        (relays(&origin).is_empty() && nginx.clients("cam").1 == 0).then_some(())
    });
    assert!(
        gone.is_some(),
        "the push did not stop: {:#?}",
        relays(&origin)
    );
    let (status, _) = admin(&origin, "DELETE", "/api/streams/live/cam/push", "");
    assert_eq!(status, 404, "no push left to stop");
}

/// A tern with an RTMPS port and a self-signed certificate for
/// `localhost` and 127.0.0.1; returns it, the RTMPS port and the
/// certificate's PEM file.
fn rtmps_target(certs: &Path) -> (Server, u16, PathBuf) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).expect("rcgen");
    let (cert_path, key_path) = (certs.join("cert.pem"), certs.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    let port = free_port();
    let target = server(&format!(
        "[server]\nrtmps_bind = \"127.0.0.1:{port}\"\n[apps.live]\n[tls]\ncert = {:?}\nkey = {:?}\n",
        cert_path.to_str().unwrap(),
        key_path.to_str().unwrap()
    ));
    (target, port, cert_path)
}

#[test]
fn pushes_over_rtmps_and_a_wrong_certificate_fails_clearly() {
    if !tools(false) {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let (target, port, cert) = rtmps_target(certs.path());
    let url = |name: &str| format!("rtmps://127.0.0.1:{port}/live/{name}");
    // Trusting the certificate through [tls] extra_ca.
    let trusting = server(&format!(
        "[apps.live]\npush = [{:?}]\n[tls]\nextra_ca = {:?}\n",
        url("trusted"),
        cert.to_str().unwrap()
    ));
    // Not trusting it: the system's roots only.
    let strict = server(&format!("[apps.live]\npush = [{:?}]\n", url("strict")));
    // Not checking it, written out.
    let lax = server(&format!(
        "[apps.live]\npush = [{:?}]\n[tls]\ntls_verify = false\n",
        url("lax")
    ));
    let dir = target.dir();
    let mut publishers = Vec::new();
    for origin in [&trusting, &strict, &lax] {
        publishers.push(publish_looped(
            origin.dir(),
            &origin.rtmp_url("live/cam"),
            SECS(40),
        ));
        wait_publishing(origin, "/live", "cam");
    }
    wait_publishing(&target, "/live", "trusted");
    wait_publishing(&target, "/live", "lax");
    let relay = wait_relay(&strict, SECS(10), |r| r["last_error"].is_string());
    let why = relay["last_error"].as_str().unwrap();
    assert!(
        why.starts_with("TLS handshake failed") && why.contains("invalid peer certificate"),
        "not a clear error: {why}"
    );
    assert!(why.contains("extra_ca"), "the error says what to do: {why}");
    assert_ne!(relay["state"], "live");
    assert!(
        strict.log().contains("invalid peer certificate"),
        "the failure is logged"
    );
    assert!(
        target
            .stream_stats("/live", "strict")
            .is_none_or(|s| s["publishing"] == false)
    );
    let out = capture(dir, "trusted");
    let mut player = ffmpeg_play(dir, "player", &target.rtmp_url("live/trusted"), 4, &out);
    assert!(
        player.wait_exit(SECS(25)).success(),
        "{}",
        player.stderr_text()
    );
    check(
        &out,
        4.0,
        "a player of a stream pushed over RTMPS",
        &trusting,
    );
}
