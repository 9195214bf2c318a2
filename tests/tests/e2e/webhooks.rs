//! HTTP callbacks with nginx-rtmp's names and meaning, seen by a webhook
//! receiver the test starts: ffmpeg publishing and playing through tern
//! makes on_connect, on_publish, on_play, on_update, on_play_done,
//! on_publish_done and on_done calls with nginx-rtmp's fields; 2xx allows,
//! 403 refuses, 302 with Location renames; a receiver that is down or
//! slower than the timeout refuses while other clients connect normally;
//! and nginx-rtmp pointed at the same receiver sends no field tern does not.

use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tern_tests::webhook::{HookAnswer, HookRequest, Webhook};
use tern_tests::{
    Server, ServerOptions, check_av_capture, ffmpeg_play, ffmpeg_publish, require_tools, test_flv,
    wait_for, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn hooks_config(hook: &Webhook, prefix: &str, extra: &str) -> String {
    let mut config = String::new();
    for name in [
        "on_connect",
        "on_publish",
        "on_play",
        "on_done",
        "on_publish_done",
        "on_play_done",
        "on_update",
    ] {
        config.push_str(&format!(
            "{name} = {:?}\n",
            hook.url(&format!("{prefix}/{name}"))
        ));
    }
    config.push_str(extra);
    config
}

fn wait_calls(
    hook: &Webhook,
    within: Duration,
    done: impl Fn(&[HookRequest]) -> bool,
) -> Vec<HookRequest> {
    wait_for(within, || {
        let calls = hook.calls();
        done(&calls).then_some(calls)
    })
    .unwrap_or_else(|| {
        panic!(
            "the receiver did not get the calls; it got {:#?}",
            hook.calls()
        )
    })
}

fn find<'a>(calls: &'a [HookRequest], call: &str, name: Option<&str>) -> &'a HookRequest {
    calls
        .iter()
        .find(|c| c.call() == call && name.is_none_or(|n| c.get("name") == Some(n)))
        .unwrap_or_else(|| panic!("no {call} call for {name:?} in {calls:#?}"))
}

fn play_ok(server: &Server, what: &str, url: &str) {
    let out = server.dir().join(format!("{what}.flv"));
    let mut player = ffmpeg_play(server.dir(), what, url, 3, &out);
    let status = player.wait_exit(SECS(25));
    assert!(status.success(), "{what}: {}", player.stderr_text());
    if let Err(e) = check_av_capture(&out, 3.0, 1.0, 2.0) {
        panic!("{what}: {e}");
    }
}

#[test]
fn callbacks_see_ffmpeg_and_decide() {
    if !require_tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    test_flv();
    let hook = Webhook::start();
    let config = format!(
        "[apps.live]\n{}\n[apps.chat]\n",
        hooks_config(
            &hook,
            "/tern",
            "notify_update_interval_secs = 1\nnotify_timeout_ms = 1500\n"
        )
    );
    let server = Server::start(ServerOptions {
        config: Some(config),
        ..ServerOptions::default()
    });
    let dir = server.dir();

    // 2xx: everything allowed; every call arrives with its fields.
    let mut publisher = ffmpeg_publish(
        dir,
        "publisher",
        &server.rtmp_url("live/cam?k=v%20w"),
        SECS(40),
    );
    wait_publishing(&server, "/live", "cam");
    play_ok(&server, "player", &server.rtmp_url("live/cam?p=1"));
    let calls = wait_calls(&hook, SECS(10), |c| {
        c.iter().any(|r| r.call() == "play_done") && c.iter().any(|r| r.call() == "update_publish")
    });
    let publish = find(&calls, "publish", Some("cam"));
    let port = server.rtmp_addr().port();
    for (field, want) in [
        ("app", "live"),
        ("name", "cam"),
        ("type", "live"),
        ("k", "v w"),
        ("addr", "127.0.0.1"),
        ("protocol", "rtmp"),
        ("scope", "/live"),
        ("tcurl", &format!("rtmp://127.0.0.1:{port}/live")),
    ] {
        assert_eq!(
            publish.get(field),
            Some(want),
            "publish.{field}: {publish:?}"
        );
    }
    assert_eq!(publish.method, "POST");
    assert_eq!(publish.path, "/tern/on_publish");
    assert!(
        publish.get("flashver").is_some_and(|f| f.contains("Lavf")),
        "{publish:?}"
    );
    assert!(
        publish
            .get("clientid")
            .is_some_and(|c| c.parse::<u64>().is_ok())
    );
    for field in ["swfurl", "pageurl"] {
        assert!(
            publish.get(field).is_some(),
            "publish has no {field}: {publish:?}"
        );
    }
    let connect = find(&calls, "connect", None);
    assert_eq!(connect.get("app"), Some("live"));
    assert!(connect.get("epoch").is_some());
    let play = find(&calls, "play", Some("cam"));
    assert_eq!(play.get("p"), Some("1"));
    assert_ne!(play.get("clientid"), publish.get("clientid"));
    let play_done = find(&calls, "play_done", Some("cam"));
    assert_eq!(play_done.get("clientid"), play.get("clientid"));
    let update = find(&calls, "update_publish", Some("cam"));
    assert!(update.get("time").is_some() && update.get("timestamp").is_some());
    publisher.signal("INT");
    publisher.wait(SECS(10));
    let calls = wait_calls(&hook, SECS(10), |c| {
        c.iter().any(|r| r.call() == "publish_done")
            && c.iter().filter(|r| r.call() == "done").count() >= 2
    });
    assert_eq!(
        find(&calls, "publish_done", Some("cam")).get("k"),
        Some("v w")
    );

    // 403 refuses: ffmpeg fails, no stream appears.
    hook.respond(|r| match r.call() {
        "publish" if r.get("name") == Some("denied") => HookAnswer::status(403),
        _ => HookAnswer::status(200),
    });
    let mut denied = ffmpeg_publish(dir, "denied", &server.rtmp_url("live/denied"), SECS(20));
    assert!(
        !denied.wait_exit(SECS(20)).success(),
        "published despite 403"
    );
    assert!(
        server.stream_stats("/live", "denied").is_none(),
        "{}",
        server.stats()
    );
    assert!(
        server.log().contains("on_publish HTTP 403"),
        "{}",
        server.log()
    );

    // 302 renames: a publish of `cam2` becomes `other`, a play of `alias`
    // plays `other`, and a player of `other` gets the picture.
    hook.respond(|r| {
        let to_other = HookAnswer {
            status: 302,
            location: Some("other".to_owned()),
            delay: Duration::ZERO,
        };
        match (r.call(), r.get("name")) {
            ("publish", Some("cam2")) | ("play", Some("alias")) => to_other,
            _ => HookAnswer::status(200),
        }
    });
    let mut renamed = ffmpeg_publish(dir, "renamed", &server.rtmp_url("live/cam2"), SECS(40));
    wait_publishing(&server, "/live", "other");
    assert!(server.stream_stats("/live", "cam2").is_none());
    play_ok(&server, "other-player", &server.rtmp_url("live/other"));
    play_ok(&server, "alias-player", &server.rtmp_url("live/alias"));
    renamed.signal("INT");
    renamed.wait(SECS(10));
}

/// A receiver that is down, or slower than `notify_timeout_ms`, refuses;
/// meanwhile 50 WebSocket clients of another app connect at once.
#[test]
fn slow_or_dead_receivers_refuse_without_holding_anyone_else() {
    if !require_tools(&["ffmpeg"]) {
        return;
    }
    test_flv();
    let hook = Webhook::start();
    hook.respond(|_| HookAnswer {
        status: 200,
        location: None,
        delay: SECS(20),
    });
    // A port nobody listens on: bind one, note it, close it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = format!(
        "[apps.live]\non_connect = {:?}\nnotify_timeout_ms = 3000\n\
         [apps.down]\non_publish = \"http://{dead}/on_publish\"\n[apps.chat]\n",
        hook.url("/slow")
    );
    let server = Server::start(ServerOptions {
        config: Some(config),
        ..ServerOptions::default()
    });
    let dir = server.dir();

    let mut down = ffmpeg_publish(dir, "down", &server.rtmp_url("down/cam"), SECS(20));
    assert!(
        !down.wait_exit(SECS(20)).success(),
        "published with the receiver down"
    );
    assert!(
        server.log().contains("cannot connect to"),
        "{}",
        server.log()
    );

    let started = Instant::now();
    let mut slow: Vec<_> = (0..5)
        .map(|i| {
            ffmpeg_publish(
                dir,
                &format!("slow{i}"),
                &server.rtmp_url(&format!("live/s{i}")),
                SECS(30),
            )
        })
        .collect();
    // The slow calls are in flight (the receiver holds them 20 s).
    assert!(wait_for(SECS(5), || (hook.calls().len() >= 5).then_some(())).is_some());
    let t = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let welcomed =
        runtime.block_on(async {
            let clients = (0..50).map(|i| {
            let url = server.ws_url(&format!("chat/room{}", i % 5));
            async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
                let first = tokio::time::timeout(SECS(5), ws.next()).await;
                matches!(first, Ok(Some(Ok(m))) if m.to_text().is_ok_and(|t| t.contains("welcome")))
            }
        });
            futures_util::future::join_all(clients).await
        });
    let took = t.elapsed();
    assert_eq!(welcomed.iter().filter(|w| **w).count(), 50, "{welcomed:?}");
    assert!(took < SECS(2), "50 clients of another app took {took:?}");
    for (i, p) in slow.iter_mut().enumerate() {
        let status = p.wait_exit(SECS(20));
        assert!(!status.success(), "slow{i} published");
    }
    let waited = started.elapsed();
    // Refused at the timeout (3 s), not after the receiver's 20 s.
    assert!(waited >= SECS(3) && waited < SECS(15), "{waited:?}");
    assert!(
        server.log().contains("no reply within 3000 ms"),
        "{}",
        server.log()
    );
    eprintln!(
        "50 WebSocket connects during 5 slow callbacks: {took:?}; slow ones refused after {waited:?}"
    );
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Publishes `cam?k=v` and plays `cam?p=1` for 3 s through `base`
/// (`rtmp://127.0.0.1:PORT/live`), then stops the publisher.
fn publish_and_play(dir: &std::path::Path, who: &str, base: &str, until_published: impl Fn()) {
    let mut publisher = ffmpeg_publish(
        dir,
        &format!("{who}-pub"),
        &format!("{base}/cam?k=v"),
        SECS(40),
    );
    until_published();
    let out = dir.join(format!("{who}-play.flv"));
    let mut player = ffmpeg_play(
        dir,
        &format!("{who}-play"),
        &format!("{base}/cam?p=1"),
        3,
        &out,
    );
    let status = player.wait_exit(SECS(30));
    assert!(status.success(), "{who} player: {}", player.stderr_text());
    // Long enough for an update (1 s period) while publishing.
    std::thread::sleep(SECS(1));
    publisher.signal("INT");
    publisher.wait(SECS(10));
}

/// Same webhook, two servers: every field nginx-rtmp sends for a call,
/// tern sends too, with the same meaning.
#[test]
fn tern_sends_every_field_nginx_rtmp_sends() {
    let module = std::path::Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so");
    if !(require_tools(&["ffmpeg", "ffprobe", "nginx"])
        && tern_tests::require("libnginx-mod-rtmp", module.exists()))
    {
        return;
    }
    test_flv();
    let hook = Webhook::start();
    let server = Server::start(ServerOptions {
        config: Some(format!(
            "[apps.live]\n{}",
            hooks_config(&hook, "/tern", "notify_update_interval_secs = 1\n")
        )),
        ..ServerOptions::default()
    });
    let dir = server.dir();
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(&prefix).unwrap();
    let nginx_port = free_port();
    let url = |name: &str| hook.url(&format!("/nginx/{name}"));
    let conf = format!(
        "load_module {module};\n\
         daemon off; master_process off; worker_processes 1;\n\
         pid {p}/nginx.pid; error_log {p}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         rtmp {{ server {{ listen 127.0.0.1:{nginx_port}; chunk_size 4096;\n\
           on_connect {};\n\
           application live {{ live on; record off;\n\
             on_publish {}; on_play {}; on_done {}; on_publish_done {};\n\
             on_play_done {}; on_update {}; notify_update_timeout 1s; }} }} }}\n",
        url("on_connect"),
        url("on_publish"),
        url("on_play"),
        url("on_done"),
        url("on_publish_done"),
        url("on_play_done"),
        url("on_update"),
        module = module.display(),
        p = prefix.display(),
    );
    std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
    let conf_path = prefix.join("nginx.conf").to_string_lossy().into_owned();
    let prefix_arg = format!("{}/", prefix.display());
    let error_log = prefix.join("error.log").to_string_lossy().into_owned();
    let mut nginx = tern_tests::Proc::spawn(
        &prefix,
        "nginx",
        SECS(120),
        "nginx",
        ["-c", &conf_path, "-p", &prefix_arg, "-e", &error_log],
    );
    assert!(
        wait_for(SECS(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            nginx_port
        ))
        .ok())
        .is_some(),
        "nginx did not start: {}",
        nginx.stderr_text()
    );

    let nginx_base = format!("rtmp://127.0.0.1:{nginx_port}/live");
    publish_and_play(dir, "nginx", &nginx_base, || {
        wait_calls(&hook, SECS(10), |c| c.iter().any(|r| r.call() == "publish"));
        std::thread::sleep(Duration::from_millis(500));
    });
    let tern_base = server.rtmp_url("live");
    publish_and_play(dir, "tern", &tern_base, || {
        wait_publishing(&server, "/live", "cam")
    });
    let done = |c: &[HookRequest], side: &str| {
        c.iter()
            .filter(|r| r.path.starts_with(side) && r.call() == "done")
            .count()
            >= 2
    };
    let calls = wait_calls(&hook, SECS(10), |c| done(c, "/nginx/") && done(c, "/tern/"));
    nginx.signal("QUIT");
    nginx.wait(SECS(10));

    let side = |prefix: &str| -> Vec<HookRequest> {
        calls
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    };
    let (from_nginx, from_tern) = (side("/nginx/"), side("/tern/"));
    let mut compared = Vec::new();
    for theirs in &from_nginx {
        let call = theirs.call();
        // The same call about the same client role: the player's calls
        // carry `p`, the publisher's `k`.
        let role = if theirs.get("p").is_some() { "p" } else { "k" };
        // Connects carry neither: the publisher connects first on both.
        let nth_connect = from_nginx
            .iter()
            .take_while(|r| !std::ptr::eq(*r, theirs))
            .filter(|r| r.call() == "connect")
            .count();
        let ours = from_tern
            .iter()
            .filter(|r| {
                r.call() == call
                    && r.path.rsplit('/').next() == theirs.path.rsplit('/').next()
                    && (call == "connect" || r.get(role).is_some())
            })
            .nth(if call == "connect" { nth_connect } else { 0 })
            .unwrap_or_else(|| panic!("tern made no {call} call like nginx-rtmp's {theirs:?}; tern made {from_tern:#?}"));
        assert_eq!(ours.method, theirs.method);
        for (field, value) in &theirs.fields {
            let mine = ours.get(field).unwrap_or_else(|| {
                panic!("{call}: nginx-rtmp sends {field}={value:?}, tern does not: {ours:?}")
            });
            match field.as_str() {
                // Per-server numbers: the same kind of value.
                "clientid" | "epoch" | "time" | "timestamp" => assert!(
                    mine.parse::<u64>().is_ok() && value.parse::<u64>().is_ok(),
                    "{call}.{field}: nginx-rtmp {value:?}, tern {mine:?}"
                ),
                // nginx-rtmp keeps 31 bytes of it (a fixed buffer).
                "flashver" => assert!(
                    mine == value || (value.len() == 31 && mine.starts_with(value.as_str())),
                    "{call}.flashver: nginx-rtmp {value:?}, tern {mine:?}"
                ),
                // The URL the client connected to: only the port differs.
                "tcurl" => assert_eq!(
                    mine.replace(&server.rtmp_addr().port().to_string(), "PORT"),
                    value.replace(&nginx_port.to_string(), "PORT"),
                    "{call}.tcurl"
                ),
                _ => assert_eq!(
                    mine, value,
                    "{call}.{field}: nginx-rtmp {value:?}, tern {mine:?}"
                ),
            }
            compared.push(format!("{call}.{field}"));
        }
    }
    compared.sort();
    compared.dedup();
    eprintln!("nginx-rtmp's calls: {from_nginx:#?}");
    eprintln!("compared: {compared:?}");
    for call in [
        "connect",
        "publish",
        "play",
        "update_publish",
        "update_play",
        "play_done",
        "publish_done",
        "done",
    ] {
        assert!(
            from_nginx.iter().any(|r| r.call() == call),
            "nginx-rtmp made no {call} call"
        );
    }
}

/// A WebSocket connect asks `on_connect` (here with `notify_method =
/// "get"`) before the upgrade is answered: 2xx upgrades, 403 is an HTTP 403.
#[test]
fn websocket_connects_ask_on_connect_before_the_upgrade() {
    let hook = Webhook::start();
    hook.respond(|r| match r.get("user") {
        Some("alice") => HookAnswer::status(204),
        _ => HookAnswer::status(403),
    });
    let server = Server::start(ServerOptions {
        config: Some(format!(
            "[apps.chat]\non_connect = {:?}\nnotify_method = \"get\"\n",
            hook.url("/ws?from=tern")
        )),
        ..ServerOptions::default()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ok = tokio_tungstenite::connect_async(server.ws_url("chat/room1?user=alice")).await;
        assert!(ok.is_ok(), "alice was refused: {ok:?}");
        let refused =
            tokio_tungstenite::connect_async(server.ws_url("chat/room1?user=mallory")).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403);
            }
            other => panic!("mallory was not refused with 403: {other:?}"),
        }
    });
    let calls = hook.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let alice = &calls[0];
    assert_eq!(alice.method, "GET");
    assert_eq!(alice.path, "/ws");
    for (field, want) in [
        ("from", "tern"),
        ("call", "connect"),
        ("app", "chat/room1"),
        ("protocol", "websocket"),
        ("scope", "/chat/room1"),
        ("user", "alice"),
        ("addr", "127.0.0.1"),
        ("flashver", ""),
    ] {
        assert_eq!(alice.get(field), Some(want), "{field}: {alice:?}");
    }
    assert!(
        server.log().contains("on_connect HTTP 403"),
        "{}",
        server.log()
    );
}
