//! The demo page at `/` in a real browser: Debian's headless chromium,
//! driven by tests/browser/demo.mjs (playwright-core), chats with RTMP
//! clients through the transient SO `chat`.

use serde_json::json;
use std::time::Duration;
use tern_tests::browser::{DemoChat, browser_dir, browser_failed, browser_ready, page_errors};
use tern_tests::rtmp::RtmpClient;
use tern_tests::{Proc, Server, ServerOptions, target_dir};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The page joins room `chat/room1` and sends a line: a core RTMP client
/// using SO `chat` receives it as a change of `message`. `tern so set`
/// (another RTMP client) sets `message`, and the line shows in the page's
/// log after the page's own; the page's inspector, opened on SO `chat`,
/// lists `message` with that value. The screenshot is kept as
/// `<target>/tern-tests/artifacts/demo.png`.
#[tokio::test(flavor = "current_thread")]
async fn demo_page_chats_with_rtmp_clients_in_chromium() {
    if !browser_ready(&[]) {
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
    let rtmp_line = "hello from RTMP";
    let browser = DemoChat {
        dir: server.dir(),
        page_url: &format!("http://{}/", server.http_addr()),
        rtmp_url: &server.rtmp_url("chat/room1"),
        page_line: "hello from chromium",
        rtmp_line,
        screenshot: &screenshot,
    }
    .run(&mut rtmp, v0)
    .await;
    let inspected = browser
        .json_lines()
        .into_iter()
        .find(|l| l["event"] == "inspected")
        .unwrap_or_else(|| browser_failed(&browser, "no inspector line"));
    assert_eq!(
        inspected["keys"],
        json!([["message", json!(rtmp_line).to_string()]]),
        "the inspector's table of SO chat"
    );
    let errors = page_errors(&browser);
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
    if !browser_ready(&["ffmpeg"]) {
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
    let script = browser_dir().join("live.mjs");
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
