//! The demo page at `/` in a real browser: Debian's headless chromium,
//! driven by tests/browser/demo.mjs (playwright-core), chats with RTMP
//! clients through the transient SO `chat`.

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tern_tests::rtmp::RtmpClient;
use tern_tests::{
    Proc, Server, ServerOptions, require, require_tool, target_dir, tern_so, workspace_root,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;
const CHROMIUM: &str = "/usr/bin/chromium";

/// The page joins room `chat/room1` and sends a line: a core RTMP client
/// using SO `chat` receives it as a change of `message`. `tern so set`
/// (another RTMP client) sets `message`, and the line shows in the page's
/// log after the page's own; the page's inspector, opened on SO `chat`,
/// lists `message` with that value. The screenshot is kept as
/// `<target>/tern-tests/artifacts/demo.png`.
#[tokio::test(flavor = "current_thread")]
async fn demo_page_chats_with_rtmp_clients_in_chromium() {
    let browser_dir = workspace_root().join("tests/browser");
    let playwright = browser_dir.join("node_modules/playwright-core/package.json");
    let ready = [
        require_tool("node"),
        require(
            "chromium (/usr/bin/chromium)",
            Path::new(CHROMIUM).is_file(),
        ),
        require(
            "playwright-core (npm ci in tests/browser)",
            playwright.is_file(),
        ),
    ];
    if ready.contains(&false) {
        return;
    }
    let server = Server::start(ServerOptions::default());
    let mut rtmp = RtmpClient::connect("rtmp", server.rtmp_addr(), "chat/room1").await;
    let sync = rtmp.use_so("chat", false).await;
    let v0 = sync["version"].as_u64().expect("version");

    let artifacts = target_dir().join("tern-tests/artifacts");
    std::fs::create_dir_all(&artifacts).expect("cannot create the artifacts dir");
    let screenshot = artifacts.join("demo.png");
    let _ = std::fs::remove_file(&screenshot);
    let page_line = "hello from chromium";
    let rtmp_line = "hello from RTMP";
    let url = format!("http://{}/", server.http_addr());
    let script = browser_dir.join("demo.mjs");
    let mut browser = Proc::spawn(
        server.dir(),
        "chromium",
        SECS(60),
        "node",
        [
            script.as_os_str(),
            "--url".as_ref(),
            url.as_ref(),
            "--room".as_ref(),
            "chat/room1".as_ref(),
            "--say".as_ref(),
            page_line.as_ref(),
            "--expect".as_ref(),
            rtmp_line.as_ref(),
            "--screenshot".as_ref(),
            screenshot.as_os_str(),
        ],
    );
    let failed = |browser: &Proc, what: &str| {
        panic!(
            "{what}; browser stdout:\n{}\nstderr:\n{}",
            browser.stdout_text(),
            browser.stderr_text()
        )
    };
    if browser
        .wait_for_json(SECS(30), |l| {
            l["event"] == "joined" || l["event"] == "error"
        })
        .is_none_or(|l| l["event"] != "joined")
    {
        failed(&browser, "the page did not join the room");
    }

    // The page's line reaches the RTMP client as a change of `message`.
    let seen = rtmp
        .collect_until(SECS(15), |entries| !entries.is_empty())
        .await;
    if seen
        != [json!({"op": "change", "so": "chat", "version": v0 + 1,
        "key": "message", "value": page_line})]
    {
        failed(&browser, &format!("the RTMP client saw {seen:?}"));
    }

    // An RTMP client's line reaches the page.
    let mut set = tern_so(
        server.dir(),
        "so-set",
        SECS(15),
        &[
            "set",
            &server.rtmp_url("chat/room1"),
            "chat",
            "message",
            &json!(rtmp_line).to_string(),
        ],
    );
    let status = set.wait_exit(SECS(20));
    assert!(
        status.success(),
        "tern so set failed: {}",
        set.stderr_text()
    );
    let status = browser.wait_exit(SECS(30));
    if !status.success() {
        failed(&browser, &format!("the browser script failed ({status})"));
    }
    let log = browser
        .json_lines()
        .into_iter()
        .find(|l| l["event"] == "log")
        .unwrap_or_else(|| failed(&browser, "no log line"));
    assert_eq!(
        log["lines"],
        json!([{"text": page_line, "mine": true}, {"text": rtmp_line, "mine": false}]),
        "the page's chat log"
    );
    let inspected = browser
        .json_lines()
        .into_iter()
        .find(|l| l["event"] == "inspected")
        .unwrap_or_else(|| failed(&browser, "no inspector line"));
    assert_eq!(
        inspected["keys"],
        json!([["message", json!(rtmp_line).to_string()]]),
        "the inspector's table of SO chat"
    );
    // (Chromium asks for /favicon.ico by itself; the demo has none.)
    let errors: Vec<_> = browser
        .json_lines()
        .into_iter()
        .filter(|l| {
            matches!(
                l["event"].as_str(),
                Some("pageerror" | "console" | "http-error")
            ) && !l["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/favicon.ico"))
        })
        .collect();
    assert!(errors.is_empty(), "errors in the page: {errors:?}");
    let png = std::fs::read(&screenshot).expect("no screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} is not a plausible screenshot ({} bytes)",
        screenshot.display(),
        png.len()
    );
    println!("screenshot: {}", screenshot.display());
}

/// The demo page's Live section plays what ffmpeg publishes to `live/cam`
/// (the test stream looped: H.264/AAC, 2 s GOP) through mpegts.js served
/// by tern, over HTTP-FLV and then over WS-FLV (tests/browser/live.mjs):
/// the video decodes ≥ 100 frames within 8 s, `currentTime` advances, and
/// the first frame is decoded within 1 s of starting the player, which
/// joins mid-GOP (the cached GOP gives it the keyframe at once).
/// Screenshots: `<target>/tern-tests/artifacts/live-{http,ws}.png`.
#[test]
fn live_section_plays_http_flv_and_ws_flv_in_chromium() {
    let browser_dir = workspace_root().join("tests/browser");
    let playwright = browser_dir.join("node_modules/playwright-core/package.json");
    let ready = [
        require_tool("node"),
        require_tool("ffmpeg"),
        require(
            "chromium (/usr/bin/chromium)",
            Path::new(CHROMIUM).is_file(),
        ),
        require(
            "playwright-core (npm ci in tests/browser)",
            playwright.is_file(),
        ),
    ];
    if ready.contains(&false) {
        return;
    }
    let server = Server::start(ServerOptions::default());
    let flv = tern_tests::test_flv().to_string_lossy().into_owned();
    let url = server.rtmp_url("live/cam");
    let publisher = Proc::spawn(
        server.dir(),
        "publisher",
        SECS(60),
        "ffmpeg",
        [
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            &flv,
            "-c",
            "copy",
            "-f",
            "flv",
            &url,
        ],
    );
    tern_tests::wait_publishing(&server, "/live", "cam");
    let artifacts = target_dir().join("tern-tests/artifacts");
    std::fs::create_dir_all(&artifacts).expect("cannot create the artifacts dir");
    let page = format!("http://{}/", server.http_addr());
    let script = browser_dir.join("live.mjs");
    for transport in ["http", "ws"] {
        // Past the first keyframe, so the player joins inside a GOP.
        std::thread::sleep(Duration::from_millis(700));
        let screenshot = artifacts.join(format!("live-{transport}.png"));
        let _ = std::fs::remove_file(&screenshot);
        let mut browser = Proc::spawn(
            server.dir(),
            &format!("chromium-{transport}"),
            SECS(60),
            "node",
            [
                script.as_os_str(),
                "--url".as_ref(),
                page.as_ref(),
                "--transport".as_ref(),
                transport.as_ref(),
                "--frames".as_ref(),
                "100".as_ref(),
                "--within".as_ref(),
                "8000".as_ref(),
                "--screenshot".as_ref(),
                screenshot.as_os_str(),
            ],
        );
        let status = browser.wait_exit(SECS(60));
        let lines = browser.json_lines();
        let report = || {
            format!(
                "{transport}: stdout:\n{}\nstderr:\n{}",
                browser.stdout_text(),
                browser.stderr_text()
            )
        };
        assert!(status.success(), "the player failed; {}", report());
        let first = lines
            .iter()
            .find(|l| l["event"] == "first-frame")
            .and_then(|l| l["ms"].as_f64())
            .unwrap_or_else(|| panic!("no first frame; {}", report()));
        assert!(
            first < 1000.0,
            "first frame after {first:.0} ms; {}",
            report()
        );
        let playing = lines
            .iter()
            .find(|l| l["event"] == "playing")
            .unwrap_or_else(|| panic!("not playing; {}", report()));
        assert!(
            playing["frames"].as_u64().is_some_and(|f| f >= 100),
            "{}",
            report()
        );
        assert!(
            playing["ms"].as_f64().is_some_and(|ms| ms <= 8000.0),
            "{}",
            report()
        );
        assert!(
            playing["advanced"].as_f64().is_some_and(|a| a > 0.5),
            "{}",
            report()
        );
        let errors: Vec<_> = lines
            .iter()
            .filter(|l| matches!(l["event"].as_str(), Some("pageerror" | "http-error")))
            .filter(|l| {
                !l["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("/favicon.ico"))
            })
            .collect();
        assert!(errors.is_empty(), "errors in the page: {errors:?}");
        let png = std::fs::read(&screenshot).expect("no screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
        println!(
            "{transport}: first frame {first:.0} ms, {} frames in {:.0} ms, delay {} s; {}",
            playing["frames"],
            playing["ms"].as_f64().unwrap_or(0.0),
            playing["delay"],
            screenshot.display()
        );
    }
    drop(publisher);
}
