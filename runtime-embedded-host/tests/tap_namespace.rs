//! Root only: the host example (`examples/tap_server.rs`) on a TAP device
//! inside a network namespace this test creates, and normal Linux clients
//! in the same namespace: a WebSocket client (`examples/ws_watch.rs`,
//! tokio-tungstenite) uses a shared object, the `tern so` CLI sets an
//! attribute of it over RTMP, the WebSocket client sees the change, and a
//! second RTMP client reads the value back.
//!
//! Skips (passing, with a message on stderr) when not root or when `ip` or
//! `/dev/net/tun` is missing, unless `TERN_REQUIRE_TOOLS=1` (CI, which runs
//! as root and installs iproute2): then any of these fails the test. The
//! namespace gets a name unique to this process and is deleted afterwards,
//! also when the test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SERVER: &str = "192.168.69.100";
const LINUX_SIDE: &str = "192.168.69.1/24";
const URL: &str = "rtmp://192.168.69.100:1935/chat/room1";
const WS_URL: &str = "ws://192.168.69.100:8081/chat/room1";

#[test]
fn rtmp_and_websocket_clients_share_an_object_on_the_embedded_server() {
    if let Some(why) = skip_reason() {
        let required = std::env::var("TERN_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "tap_namespace cannot run: {why}, and TERN_REQUIRE_TOOLS=1 requires it"
        );
        eprintln!("SKIPPED tap_namespace: {why}");
        return;
    }
    let started = Instant::now();
    let (example, ws_watch, tern) = build_binaries();
    let ns = Namespace::create(&format!("tern-emb-{}", std::process::id()));

    let mut server = ns
        .command(&example)
        .args(["--tap", "tap0", "--address", &format!("{SERVER}/24")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the tap_server example");
    let lines = stdout_lines(&mut server);
    let server = KillOnDrop(server);
    let ready = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the example did not report readiness within 20 s");
    assert!(
        ready.contains("listening on 192.168.69.100:1935")
            && ready.contains("192.168.69.100:8081 (websocket"),
        "unexpected first line: {ready}"
    );
    println!("  server ready ({:?})", started.elapsed());

    // A WebSocket client uses `s` (and gives up by itself after 20 s).
    let mut ws = ns
        .command(&ws_watch)
        .args([WS_URL, "s", "--timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ws_watch");
    let ws_lines = stdout_lines(&mut ws);
    let mut ws = KillOnDrop(ws);
    let sync = wait_for_line(&ws_lines, r#""op":"sync""#, Duration::from_secs(10))
        .unwrap_or_else(|seen| panic!("ws_watch got no sync within 10 s; saw {seen:?}"));
    assert!(sync.contains(r#""so":"s""#), "unexpected sync: {sync}");
    println!("  websocket client uses s ({:?})", started.elapsed());

    // `tern so set` connects, uses the object, sets the key and waits for
    // the server's acknowledgement.
    let set = run(ns
        .command(&tern)
        .args(["so", "set", URL, "s", "k", r#""v""#]));
    assert!(
        set.status.success(),
        "tern so set failed: {}\nstdout: {}\nstderr: {}",
        set.status,
        String::from_utf8_lossy(&set.stdout),
        String::from_utf8_lossy(&set.stderr)
    );
    let out = String::from_utf8_lossy(&set.stdout);
    assert!(out.contains(r#""event":"ack""#), "no ack: {out}");
    println!("  tern so set: {} ({:?})", out.trim(), started.elapsed());

    // The WebSocket client sees the RTMP client's change.
    let change = wait_for_line(&ws_lines, r#""op":"change""#, Duration::from_secs(10))
        .unwrap_or_else(|seen| panic!("ws_watch saw no change within 10 s; saw {seen:?}"));
    assert!(
        change.contains(r#""so":"s""#)
            && change.contains(r#""key":"k""#)
            && change.contains(r#""value":"v""#),
        "unexpected change: {change}"
    );
    let status = ws.0.wait().expect("wait for ws_watch");
    assert!(status.success(), "ws_watch exited with {status}");
    println!("  websocket client saw: {change} ({:?})", started.elapsed());

    // A second client sees the value the first one left on the device.
    let mut watch = ns
        .command(&tern)
        .args(["so", "watch", URL, "s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tern so watch");
    let watch_lines = stdout_lines(&mut watch);
    let watch = KillOnDrop(watch);
    let sync = watch_lines
        .recv_timeout(Duration::from_secs(10))
        .expect("tern so watch printed nothing within 10 s");
    assert!(
        sync.contains(r#""event":"sync""#) && sync.contains(r#""k":"v""#),
        "unexpected sync line: {sync}"
    );
    drop(watch);
    drop(ws);
    drop(server);
    drop(ns);
    println!(
        "tern so set/watch and a WebSocket client against the embedded server on a TAP device: ok in {:?}",
        started.elapsed()
    );
}

fn skip_reason() -> Option<String> {
    let euid = current_euid();
    if euid != 0 {
        return Some(format!(
            "needs root to create a network namespace and a TAP device (euid {euid})"
        ));
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is not installed".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

/// The effective uid, from `/proc/self/status` (`Uid: real effective …`;
/// no `unsafe` libc call, no `id` command that may be missing itself).
fn current_euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|euid| euid.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// Builds (or finds up to date) the examples and the `tern` binary in this
/// test's own target directory.
fn build_binaries() -> (PathBuf, PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<this test>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target directory");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    // One build naming the workspace and its tests: the feature set of
    // `cargo test --workspace`, so after it nothing but these binaries
    // links (`-p` builds resolved fewer features and rebuilt ~20 crates;
    // tern-tests' `tern_binary()` does the same).
    let args = [
        "--workspace",
        "--tests",
        "--example",
        "tap_server",
        "--example",
        "ws_watch",
        "--bin",
        "tern",
    ];
    // Without the variables cargo sets for a test process: ring's build
    // script reruns when they change (`rerun-if-env-changed`), and a nested
    // build that inherited them rebuilt ring, rustls and what uses them
    // (tern-tests' `cargo()` does the same).
    let mut cargo = Command::new(env!("CARGO"));
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| {
            k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || matches!(
                    k,
                    "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                        | "OUT_DIR"
                )
        }) {
            cargo.env_remove(key);
        }
    }
    let out = run(cargo
        .arg("build")
        .args(args)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace));
    assert!(
        out.status.success(),
        "cargo build {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let examples = profile_dir.join("examples");
    (
        examples.join("tap_server"),
        examples.join("ws_watch"),
        profile_dir.join("tern"),
    )
}

/// A network namespace with `tap0` (192.168.69.1/24) in it, deleted on drop.
struct Namespace {
    name: String,
}

impl Namespace {
    fn create(name: &str) -> Namespace {
        // Left over from an earlier run killed before it could clean up.
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        let ns = Namespace { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["tuntap", "add", "name", "tap0", "mode", "tap"]);
        ns.ip(&["addr", "add", LINUX_SIDE, "dev", "tap0"]);
        ns.ip(&["link", "set", "tap0", "up"]);
        ns
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .arg(program)
            .stdin(Stdio::null());
        command
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "could not delete namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("could not delete namespace {}: {e}", self.name),
        }
    }
}

fn ip(args: &[&str]) {
    let out = run(Command::new("ip").args(args));
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command to completion (`tern so set` gives up by itself after
/// 10 s; cargo takes what a build takes).
fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// A child's stdout, line by line, through a channel (so reads can time out).
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("  | {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line containing `wanted` within `timeout`; `Err` holds the
/// lines seen instead.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    wanted: &str,
    timeout: Duration,
) -> Result<String, Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(wanted) => return Ok(line),
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    Err(seen)
}

/// Kills the child (and reaps it) when dropped, also on a failed assert.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
