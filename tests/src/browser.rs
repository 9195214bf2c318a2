//! Chromium driven by the scripts in tests/browser (playwright-core): what
//! the browser tests (tests/tests/e2e/browser_demo.rs, tests/tests/e2e/tls.rs)
//! share — the readiness check and the demo page's chat round trip with an
//! RTMP client.

use crate::rtmp::RtmpClient;
use crate::{Proc, require, require_tool, tern_so, workspace_root};
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Debian's headless Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// tests/browser: the scripts and their `node_modules`.
pub fn browser_dir() -> PathBuf {
    workspace_root().join("tests/browser")
}

/// Whether node, Chromium, playwright-core (`npm ci` in tests/browser) and
/// `tools` are there; each missing one skips (or, under
/// `TERN_REQUIRE_TOOLS=1`, fails) as [`require`] says.
pub fn browser_ready(tools: &[&str]) -> bool {
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    let mut ready = vec![require_tool("node")];
    ready.extend(tools.iter().map(|t| require_tool(t)));
    ready.push(require(
        "chromium (/usr/bin/chromium)",
        Path::new(CHROMIUM).is_file(),
    ));
    ready.push(require(
        "playwright-core (npm ci in tests/browser)",
        playwright.is_file(),
    ));
    !ready.contains(&false)
}

/// Panics with `what` and the browser script's output.
pub fn browser_failed(browser: &Proc, what: &str) -> ! {
    panic!(
        "{what}; browser stdout:\n{}\nstderr:\n{}",
        browser.stdout_text(),
        browser.stderr_text()
    )
}

/// The page's errors in the script's output (uncaught errors, console
/// errors, failed requests), without the `/favicon.ico` Chromium asks for
/// by itself (the demo has none).
pub fn page_errors(browser: &Proc) -> Vec<Json> {
    browser
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
        .collect()
}

/// One chat round trip of the demo page (tests/browser/demo.mjs) in room
/// `chat/room1`.
#[derive(Debug)]
pub struct DemoChat<'a> {
    /// The server's data directory (for the processes' output).
    pub dir: &'a Path,
    /// The page (`http://…/` or `https://…/`).
    pub page_url: &'a str,
    /// The server's RTMP URL of `chat/room1`, for `tern so set`.
    pub rtmp_url: &'a str,
    /// The line the page says.
    pub page_line: &'a str,
    /// The line an RTMP client says.
    pub rtmp_line: &'a str,
    /// Where the script saves its screenshot.
    pub screenshot: &'a Path,
}

impl DemoChat<'_> {
    /// Runs the script: the page joins (30 s) and says its line, which
    /// `rtmp` (a client of `chat/room1` using SO `chat` at version `v0`)
    /// must see as the change of `message`; `tern so set` then says the
    /// RTMP line, and the page's log must hold both lines in order. Returns
    /// the finished browser for the caller's further checks; panics (with
    /// the browser's output) on anything else.
    pub async fn run(&self, rtmp: &mut RtmpClient, v0: u64) -> Proc {
        let script = browser_dir().join("demo.mjs");
        let mut browser = Proc::spawn(
            self.dir,
            "chromium",
            Duration::from_secs(60),
            "node",
            [
                script.as_os_str(),
                "--url".as_ref(),
                self.page_url.as_ref(),
                "--room".as_ref(),
                "chat/room1".as_ref(),
                "--say".as_ref(),
                self.page_line.as_ref(),
                "--expect".as_ref(),
                self.rtmp_line.as_ref(),
                "--screenshot".as_ref(),
                self.screenshot.as_os_str(),
            ],
        );
        if browser
            .wait_for_json(Duration::from_secs(30), |l| {
                l["event"] == "joined" || l["event"] == "error"
            })
            .is_none_or(|l| l["event"] != "joined")
        {
            browser_failed(&browser, "the page did not join the room");
        }
        // The page's line reaches the RTMP client as a change of `message`.
        let seen = rtmp
            .collect_until(Duration::from_secs(15), |entries| !entries.is_empty())
            .await;
        if seen
            != [json!({"op": "change", "so": "chat", "version": v0 + 1,
            "key": "message", "value": self.page_line})]
        {
            browser_failed(&browser, &format!("the RTMP client saw {seen:?}"));
        }
        // An RTMP client's line reaches the page.
        let mut set = tern_so(
            self.dir,
            "so-set",
            Duration::from_secs(15),
            &[
                "set",
                self.rtmp_url,
                "chat",
                "message",
                &json!(self.rtmp_line).to_string(),
            ],
        );
        let status = set.wait_exit(Duration::from_secs(20));
        assert!(
            status.success(),
            "tern so set failed: {}",
            set.stderr_text()
        );
        let status = browser.wait_exit(Duration::from_secs(30));
        if !status.success() {
            browser_failed(&browser, &format!("the browser script failed ({status})"));
        }
        let log = browser
            .json_lines()
            .into_iter()
            .find(|l| l["event"] == "log")
            .unwrap_or_else(|| browser_failed(&browser, "no log line"));
        assert_eq!(
            log["lines"],
            json!([{"text": self.page_line, "mine": true}, {"text": self.rtmp_line, "mine": false}]),
            "the page's chat log"
        );
        browser
    }
}
