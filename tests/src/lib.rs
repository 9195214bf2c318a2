//! tern-tests: end-to-end tests against the built `tern` binary and real
//! clients (ffmpeg, rtmpdump, GStreamer). The test files live in
//! `tests/tests/`; this library holds what they share:
//!
//! - [`tern_binary`]: builds the `tern` binary once per test process.
//! - [`Server`]: a `tern serve` child on free ports with its own data
//!   directory; SIGTERM, `kill -9` and restart.
//! - [`Proc`]: any client process, always under `timeout`, with its output
//!   in files and waits with deadlines, so no test can hang.
//! - [`http_get`]: a tiny HTTP/1.1 GET over `std::net::TcpStream`;
//!   [`http::request`] for any method, headers and a body.
//! - [`require_tool`], [`test_flv`], [`Probe`]: external tools, the test
//!   media and ffprobe's view of a capture.
//! - [`browser`]: Chromium through tests/browser's scripts (readiness,
//!   the demo page's chat round trip).
//! - [`rtmp::RtmpClient`]: the core RTMP client over tokio, for
//!   shared-object tests that mix RTMP and WebSocket clients.
//! - [`recording_proxy::RecordingProxy`]: what a client sent on the wire, rendered
//!   by `tern trace`.
//! - [`webhook::Webhook`]: a webhook receiver for the HTTP callback tests.
//! - [`ws::WsClient`]: a WebSocket (protocol v1) client over tokio.
//!
//! See docs/testing.md for what each test shows.

pub mod browser;
pub mod http;
pub mod recording_proxy;
pub mod rtmp;
pub mod webhook;
pub mod ws;

use serde_json::Value as Json;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Length of [`test_flv`] in seconds.
pub const TEST_FLV_SECS: u32 = 12;

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace
/// root if relative), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The cargo that runs the tests, without the variables cargo sets for a
/// test process (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, …). Build scripts
/// such as ring's rerun when those change (`rerun-if-env-changed`), so a
/// nested cargo that inherited them rebuilt ring and every crate above it
/// (rustls, async-nats, tern) and the outer `cargo test` rebuilt them back
/// on its next run.
pub fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                key,
                "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            command.env_remove(key);
        }
    }
    command
}

/// The `tern` binary, built once per test process with `cargo build
/// --workspace --tests --bin tern`.
///
/// The workspace and its test targets are named so that cargo resolves
/// the same features as `cargo test --workspace` (dev-dependencies turn on
/// more tokio and digest features): the dependencies `cargo test` just
/// built are reused and only the binary links. `-p tern-runtime-std` alone
/// resolves fewer features and rebuilt about twenty crates (a minute here,
/// two on CI). Run from a single test, the first call builds every test
/// target of the workspace once. See [`cargo`] for the environment.
pub fn tern_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let output = cargo()
            .current_dir(workspace_root())
            .args(["build", "--workspace", "--tests", "--bin", "tern"])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run cargo");
        assert!(
            output.status.success(),
            "building tern failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let bin = target_dir().join("debug").join("tern");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// Whether `tool` is an executable file on `PATH`.
pub fn tool_installed(tool: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(dir.join(tool))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// True if `tool` is installed. Otherwise prints `SKIPPED: <tool> not
/// installed` and returns false, so the test can return early, unless
/// `TERN_REQUIRE_TOOLS=1` (CI), where a missing tool fails the test.
pub fn require_tool(tool: &str) -> bool {
    require(tool, tool_installed(tool))
}

/// Like [`require_tool`] for a GStreamer element (`gst-inspect-1.0 NAME`
/// succeeds), e.g. `rtmp2src` from gstreamer1.0-plugins-bad.
pub fn require_gst_element(element: &str) -> bool {
    let present = tool_installed("gst-inspect-1.0")
        && Command::new("timeout")
            .args(["-k", "5", "30", "gst-inspect-1.0", element])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    require(&format!("GStreamer element {element}"), present)
}

/// Like [`require_tool`] for any prerequisite: `what` names it in the
/// SKIPPED line (e.g. `"playwright-core (npm ci in tests/browser)"`).
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("TERN_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
        panic!("{what} is not installed, and TERN_REQUIRE_TOOLS=1 requires it");
    }
    println!("SKIPPED: {what} not installed");
    false
}

/// [`require_tool`] for each tool (every missing one is reported).
pub fn require_tools(tools: &[&str]) -> bool {
    // Check every tool, so all the missing ones are reported at once.
    let missing = tools.iter().filter(|tool| !require_tool(tool)).count();
    missing == 0
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `within`.
pub fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free port")
}

fn signal_pid(signal: &str, target: &str) {
    // `kill` the command: the workspace forbids the `unsafe` a libc call needs.
    let _ = Command::new("kill")
        .args(["-s", signal, "--", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A client process: run under `timeout --preserve-status -k 5 LIMIT` (its
/// exit status is the program's own) in its own process group
/// (so dropping it kills the whole group), stdin closed, stdout and stderr
/// in files next to each other.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    started: Instant,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
    ran_for: Option<Duration>,
}

impl Proc {
    /// Starts `program args`; `timeout` sends it SIGTERM after `limit`, and
    /// SIGKILL 5 s later. Output goes to `dir/NAME.stdout` and `.stderr`.
    pub fn spawn<I, S>(dir: &Path, name: &str, limit: Duration, program: &str, args: I) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::spawn_with_signal(dir, name, "TERM", limit, program, args)
    }

    /// Like [`spawn`](Self::spawn), but `timeout` sends `signal` (e.g.
    /// `"INT"`, for a clean stop of gst-launch `-e` or rtmpdump) after
    /// `limit`.
    pub fn spawn_with_signal<I, S>(
        dir: &Path,
        name: &str,
        signal: &str,
        limit: Duration,
        program: &str,
        args: I,
    ) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new("timeout")
            .args(["--preserve-status", "-s", signal, "-k", "5"])
            .arg(format!("{:.1}", limit.as_secs_f64()))
            .arg(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("cannot create the stdout file"))
            .stderr(File::create(&stderr).expect("cannot create the stderr file"))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Proc {
            name: name.to_owned(),
            child,
            started: Instant::now(),
            stdout,
            stderr,
            status: None,
            ran_for: None,
        }
    }

    /// Its process id (that of `timeout`, which forwards signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `"INT"`) to the process; `timeout` forwards it.
    pub fn signal(&self, signal: &str) {
        if self.status.is_none() {
            signal_pid(signal, &self.child.id().to_string());
        }
    }

    /// Sends `signal` to the whole process group: `timeout` and the
    /// program (for `"STOP"` and `"CONT"`, which `timeout` cannot forward).
    pub fn signal_group(&self, signal: &str) {
        if self.status.is_none() {
            signal_pid(signal, &format!("-{}", self.child.id()));
        }
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = wait_child(&mut self.child, within);
            if self.status.is_some() {
                self.ran_for = Some(self.started.elapsed());
            }
        }
        self.status
    }

    /// Waits up to `within` for the process to exit; panics (with its
    /// stderr) if it does not.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        match self.wait(within) {
            Some(status) => status,
            None => panic!(
                "{} still running after {within:?}; stderr:\n{}",
                self.name,
                self.stderr_text()
            ),
        }
    }

    /// How long it ran, once it has exited.
    pub fn ran_for(&self) -> Option<Duration> {
        self.ran_for
    }

    /// Everything it wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits up to `within` for a stdout line that satisfies `matches`.
    pub fn wait_for_line(
        &mut self,
        within: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        wait_for(within, || {
            self.stdout_text()
                .lines()
                .find(|line| matches(line))
                .map(str::to_owned)
        })
    }

    /// Its stdout lines parsed as JSON (lines that are not JSON are skipped).
    pub fn json_lines(&self) -> Vec<Json> {
        self.stdout_text()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits up to `within` for a stdout JSON line that satisfies `matches`.
    pub fn wait_for_json(
        &mut self,
        within: Duration,
        mut matches: impl FnMut(&Json) -> bool,
    ) -> Option<Json> {
        wait_for(within, || {
            self.json_lines().into_iter().find(|j| matches(j))
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            signal_pid("KILL", &format!("-{}", self.child.id()));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_child(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    wait_for(within, || child.try_wait().ok().flatten())
}

/// How to start a [`Server`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// TOML configuration text, passed with `--config` (the ports and data
    /// directory are always set on the command line).
    pub config: Option<String>,
    /// The `--log` filter.
    pub log: String,
    /// Start the server under `prlimit --nofile=SOFT:HARD` (descriptor
    /// limits), as a shell with `ulimit -Sn SOFT -Hn HARD` would.
    pub nofile: Option<(u64, u64)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            config: None,
            log: "info".to_owned(),
            nofile: None,
        }
    }
}

/// A `tern serve` child process on free ports, with its own temporary
/// directory (data dir, stderr log, and room for the test's files). It is
/// killed (SIGKILL) when dropped; if the test is panicking, the server log
/// is printed and the directory kept (also kept when `TERN_KEEP_TEST_DIRS`
/// is set).
#[derive(Debug)]
pub struct Server {
    dir: tempfile::TempDir,
    options: ServerOptions,
    rtmp_port: u16,
    http_port: u16,
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl Server {
    /// Starts a server and waits until `/healthz` answers and the RTMP port
    /// accepts connections.
    pub fn start(options: ServerOptions) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("tern-e2e-")
            .tempdir()
            .expect("cannot create a temp dir");
        let mut server = Server {
            dir,
            options,
            rtmp_port: 0,
            http_port: 0,
            child: None,
            status: None,
        };
        // Another process may take a port between our probe and the bind:
        // then pick new ports and try again.
        for _ in 0..5 {
            server.rtmp_port = free_port();
            server.http_port = free_port();
            if server.rtmp_port != server.http_port && server.launch() {
                return server;
            }
        }
        panic!("the server did not start; log:\n{}", server.log());
    }

    /// Starts the process on the current ports; false if it could not bind.
    fn launch(&mut self) -> bool {
        let data_dir = self.data_dir();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("cannot open the server log");
        let mut command = match self.options.nofile {
            Some((soft, hard)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={soft}:{hard}")).arg(tern_binary());
                c
            }
            None => Command::new(tern_binary()),
        };
        command.current_dir(self.dir.path()).arg("serve");
        if let Some(config) = &self.options.config {
            let path = self.dir.path().join("tern.toml");
            fs::write(&path, config).expect("cannot write the config");
            command.arg("--config").arg(path);
        }
        command
            .arg("--rtmp-bind")
            .arg(format!("127.0.0.1:{}", self.rtmp_port))
            .arg("--http-bind")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--log")
            .arg(&self.options.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command.spawn().expect("cannot start tern");
        self.child = Some(child);
        self.status = None;
        let ready = wait_for(Duration::from_secs(15), || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Some(Err(status));
            }
            let healthy = self.http_get("/healthz").is_ok_and(|r| r.status == 200);
            let rtmp = TcpStream::connect(("127.0.0.1", self.rtmp_port)).is_ok();
            (healthy && rtmp).then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => true,
            Some(Err(status)) => {
                self.child = None;
                self.status = Some(status);
                let log = self.log();
                assert!(
                    log.contains("cannot listen"),
                    "tern exited at start ({status}); log:\n{log}"
                );
                false
            }
            None => panic!("tern did not become ready in 15 s; log:\n{}", self.log()),
        }
    }

    /// The test's scratch directory (also holds `data/` and `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's data directory (persistent shared objects).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Everything the server wrote to stderr (all runs).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The RTMP port.
    pub fn rtmp_port(&self) -> u16 {
        self.rtmp_port
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// The RTMP address.
    pub fn rtmp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.rtmp_port))
    }

    /// `ws://127.0.0.1:HTTP_PORT/PATH` (WebSocket is served on the HTTP
    /// port).
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}/{path}", self.http_addr())
    }

    /// `rtmp://127.0.0.1:PORT/PATH`.
    pub fn rtmp_url(&self, path: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{path}", self.rtmp_port)
    }

    /// GET `path` on the HTTP port.
    pub fn http_get(&self, path: &str) -> io::Result<HttpResponse> {
        http_get(self.http_addr(), path)
    }

    /// `/api/stats`, parsed.
    pub fn stats(&self) -> Json {
        let response = self.http_get("/api/stats").expect("GET /api/stats failed");
        assert_eq!(response.status, 200, "{}", response.body);
        serde_json::from_str(&response.body).expect("/api/stats is not JSON")
    }

    /// The entry of `/api/stats` `streams` for `scope` (e.g. `/live`) and
    /// `name`, if there is one.
    pub fn stream_stats(&self, scope: &str, name: &str) -> Option<Json> {
        self.stats()["streams"]
            .as_array()?
            .iter()
            .find(|s| s["scope"] == scope && s["name"] == name)
            .cloned()
    }

    /// `/metrics` as text.
    pub fn metrics(&self) -> String {
        let response = self.http_get("/metrics").expect("GET /metrics failed");
        assert_eq!(response.status, 200, "{}", response.body);
        response.body
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn sigterm(&self) {
        if let Some(pid) = self.pid() {
            signal_pid("TERM", &pid.to_string());
        }
    }

    /// Waits up to `within` for the server to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
        {
            self.status = wait_child(child, within);
        }
        self.status
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(child) = self.child.as_mut()
            && self.status.is_none()
        {
            let _ = child.kill();
            self.status = child.wait().ok();
        }
    }

    /// Starts the server again on the same ports and data directory (after
    /// [`kill9`](Self::kill9) or a shutdown; kills it first if it runs).
    pub fn restart(&mut self) {
        self.kill9();
        // The old listeners are gone with the process; a freshly closed port
        // can still be refused for a moment, so retry a few times.
        for _ in 0..10 {
            if self.launch() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("tern did not restart; log:\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() || std::env::var_os("TERN_KEEP_TEST_DIRS").is_some() {
            // Keep the captures and logs for a look.
            self.dir.disable_cleanup(true);
            eprintln!("test files kept in {}", self.dir.path().display());
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines.len().saturating_sub(80);
            eprintln!(
                "---- tern server log (last {} lines) ----\n{}\n----",
                lines.len() - tail,
                lines.get(tail..).unwrap_or_default().join("\n")
            );
        }
    }
}

/// An HTTP response: status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// `GET path` with `Connection: close` over a plain TCP stream, with 5 s
/// timeouts.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<HttpResponse> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of head"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
    Ok(HttpResponse {
        status,
        body: body.to_owned(),
    })
}

/// The value of a Prometheus sample line `series VALUE` in `metrics`, where
/// `series` is the metric name with its labels, e.g.
/// `tern_connections{protocol="rtmp"}`.
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// A 12 s H.264/AAC FLV (320x180 test pattern at 25 fps, 2 s GOP, 440 Hz
/// tone), made with ffmpeg once and cached in the target directory. Needs
/// ffmpeg: call [`require_tool`] first.
pub fn test_flv() -> &'static Path {
    static FLV: OnceLock<PathBuf> = OnceLock::new();
    FLV.get_or_init(|| pattern_flv("testsrc", 50, TEST_FLV_SECS))
}

/// A `secs`-second H.264/AAC FLV of the lavfi video source `source`
/// (`testsrc`, `testsrc2`, `smptebars`, …) at 320x180, 25 fps, a keyframe
/// every `gop` frames, with a 440 Hz tone; made with ffmpeg once and
/// cached in the target directory (several test processes may race: each
/// writes its own file and renames it into place). Needs ffmpeg.
pub fn pattern_flv(source: &str, gop: u32, secs: u32) -> PathBuf {
    let dir = target_dir().join("tern-tests");
    fs::create_dir_all(&dir).expect("cannot create the media dir");
    let path = dir.join(format!("{source}-320x180-25fps-gop{gop}-{secs}s.flv"));
    if path.is_file() {
        return path;
    }
    let tmp = dir.join(format!(
        "{source}-{gop}-{secs}-{}.flv.tmp",
        std::process::id()
    ));
    let output = Command::new("timeout")
        .args(["-k", "5", "60", "ffmpeg", "-nostdin", "-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("{source}=size=320x180:rate=25"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            &gop.to_string(),
        ])
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

/// One stream of a probed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbedStream {
    /// Stream index (as in packets' `stream_index`).
    pub index: u64,
    /// `video` or `audio`.
    pub codec_type: String,
    /// e.g. `h264`, `aac`.
    pub codec_name: String,
    /// Frames ffprobe decoded (`-count_frames`).
    pub frames: u64,
}

/// One packet of a probed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbedPacket {
    /// Its stream's index.
    pub stream_index: u64,
    /// Presentation timestamp (FLV: milliseconds), if any.
    pub pts: Option<i64>,
    /// ffprobe's flags contain `K`.
    pub keyframe: bool,
}

/// ffprobe's view of a media file: streams with codecs and decoded frame
/// counts, and every packet in file order.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    /// The streams.
    pub streams: Vec<ProbedStream>,
    /// The packets.
    pub packets: Vec<ProbedPacket>,
}

fn ffprobe_json(file: &Path, args: &[&str]) -> Result<Json, String> {
    let output = Command::new("timeout")
        .args(["-k", "5", "60", "ffprobe", "-v", "error"])
        .args(args)
        .args(["-of", "json"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ffprobe: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ffprobe {} failed ({}): {}",
            file.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("ffprobe output: {e}"))
}

fn json_u64(value: &Json) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

impl Probe {
    /// Probes `file` (two ffprobe runs: streams with `-count_frames`, then
    /// packets).
    pub fn of(file: &Path) -> Result<Probe, String> {
        let streams = ffprobe_json(
            file,
            &[
                "-count_frames",
                "-show_entries",
                "stream=index,codec_type,codec_name,nb_read_frames",
            ],
        )?;
        let packets = ffprobe_json(file, &["-show_entries", "packet=stream_index,pts,flags"])?;
        let text = |v: &Json| v.as_str().unwrap_or_default().to_owned();
        Ok(Probe {
            streams: streams["streams"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .map(|s| ProbedStream {
                            index: json_u64(&s["index"]).unwrap_or(u64::MAX),
                            codec_type: text(&s["codec_type"]),
                            codec_name: text(&s["codec_name"]),
                            frames: json_u64(&s["nb_read_frames"]).unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            packets: packets["packets"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .map(|p| ProbedPacket {
                            stream_index: json_u64(&p["stream_index"]).unwrap_or(u64::MAX),
                            pts: p["pts"].as_i64(),
                            keyframe: p["flags"].as_str().is_some_and(|f| f.contains('K')),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The first stream of `codec_type` (`video`, `audio`).
    pub fn stream(&self, codec_type: &str) -> Option<&ProbedStream> {
        self.streams.iter().find(|s| s.codec_type == codec_type)
    }

    /// The packets of the first stream of `codec_type`, in file order.
    pub fn packets_of(&self, codec_type: &str) -> Vec<&ProbedPacket> {
        let Some(index) = self.stream(codec_type).map(|s| s.index) else {
            return Vec::new();
        };
        self.packets
            .iter()
            .filter(|p| p.stream_index == index)
            .collect()
    }

    /// Seconds between the first and last pts of `codec_type`'s packets.
    pub fn span_secs(&self, codec_type: &str) -> f64 {
        let pts: Vec<i64> = self
            .packets_of(codec_type)
            .iter()
            .filter_map(|p| p.pts)
            .collect();
        match (pts.iter().min(), pts.iter().max()) {
            (Some(first), Some(last)) => (last - first) as f64 / 1000.0,
            _ => 0.0,
        }
    }
}

/// Timestamp step between two video frames of [`test_flv`]: 25 fps in
/// FLV's whole milliseconds.
pub const VIDEO_STEP_MS: std::ops::RangeInclusive<i64> = 40..=40;
/// Timestamp step between two AAC frames of [`test_flv`]: 1024 samples at
/// 44.1 kHz are 23.22 ms, which FLV's whole milliseconds round to 23 or 24.
pub const AUDIO_STEP_MS: std::ops::RangeInclusive<i64> = 23..=24;

/// What [`check_av_capture`] found.
#[derive(Clone, Debug)]
pub struct CaptureSummary {
    /// Decoded video frames (every video packet of the capture).
    pub video_frames: u64,
    /// Decoded audio frames (every audio packet of the capture).
    pub audio_frames: u64,
    /// Seconds of video (first to last pts).
    pub video_secs: f64,
    /// Seconds of audio (first to last pts).
    pub audio_secs: f64,
}

/// Checks one stream's packets of a capture: every packet has a pts, each
/// pts is one frame after the one before (`step` ms: so timestamps never
/// go back or repeat, and no frame is missing between the first and the
/// last packet), and ffprobe decodes every packet. Returns the frame count.
fn check_stream_frames(
    probe: &Probe,
    codec_type: &str,
    step: &std::ops::RangeInclusive<i64>,
) -> Result<u64, String> {
    let stream = probe
        .stream(codec_type)
        .ok_or_else(|| format!("no {codec_type} stream: {:?}", probe.streams))?;
    let packets = probe.packets_of(codec_type);
    let pts: Vec<i64> = packets.iter().filter_map(|p| p.pts).collect();
    if pts.len() != packets.len() {
        return Err(format!(
            "{} of {} {codec_type} packets have no pts",
            packets.len() - pts.len(),
            packets.len()
        ));
    }
    if let Some(at) = pts.windows(2).position(|w| !step.contains(&(w[1] - w[0]))) {
        let (before, after) = (pts[at], pts[at + 1]);
        let gap = after - before;
        let what = if gap <= 0 {
            "goes back or repeats".to_owned()
        } else if gap > *step.end() {
            format!("skips about {} frame(s)", (gap - 1) / step.end())
        } else {
            "is less than one frame".to_owned()
        };
        return Err(format!(
            "{codec_type} pts {what} inside the capture: packet {} at {before} ms, \
             packet {} at {after} ms (a step of {gap} ms; one frame is {step:?} ms); \
             {} packets from {} to {} ms",
            at,
            at + 1,
            pts.len(),
            pts[0],
            pts[pts.len() - 1]
        ));
    }
    if stream.frames != packets.len() as u64 {
        return Err(format!(
            "ffprobe decoded {} of {} {codec_type} packets",
            stream.frames,
            packets.len()
        ));
    }
    Ok(stream.frames)
}

/// Checks a player's FLV capture of [`test_flv`] played for about
/// `played_secs` seconds: H.264 and AAC; for video and for audio, between
/// the first and the last packet every frame is there once and in order
/// (each timestamp one frame after the one before: [`VIDEO_STEP_MS`],
/// [`AUDIO_STEP_MS`]) and decodes. Only the edges may be missing: what
/// came before the player joined and after it stopped. The video span must
/// fit the play time (up to `extra_secs` more, for the cached GOP a joining
/// player gets first; up to `short_secs` less, for connect time and a lost
/// tail).
pub fn check_av_capture(
    file: &Path,
    played_secs: f64,
    short_secs: f64,
    extra_secs: f64,
) -> Result<CaptureSummary, String> {
    let probe = Probe::of(file)?;
    let (video, audio) = match (probe.stream("video"), probe.stream("audio")) {
        (Some(video), Some(audio)) => (video, audio),
        _ => return Err(format!("not one video and one audio stream: {probe:?}")),
    };
    if video.codec_name != "h264" || audio.codec_name != "aac" {
        return Err(format!("codecs are not h264 + aac: {:?}", probe.streams));
    }
    let video_frames = check_stream_frames(&probe, "video", &VIDEO_STEP_MS)?;
    let audio_frames = check_stream_frames(&probe, "audio", &AUDIO_STEP_MS)?;
    let video_secs = probe.span_secs("video");
    let audio_secs = probe.span_secs("audio");
    let (low, high) = (played_secs - short_secs, played_secs + extra_secs);
    if video_secs < low || video_secs > high {
        return Err(format!(
            "{video_secs:.2} s of video ({video_frames} frames) for {played_secs:.2} s of play \
             (expected {low:.2}..{high:.2} s)"
        ));
    }
    Ok(CaptureSummary {
        video_frames,
        audio_frames,
        video_secs,
        audio_secs,
    })
}

/// Starts `ffmpeg -re -i test.flv -c copy -f flv URL` (stopped after
/// `limit`).
pub fn ffmpeg_publish(dir: &Path, name: &str, url: &str, limit: Duration) -> Proc {
    publish_test_flv(dir, name, url, limit, false)
}

/// Starts `ffmpeg -re -stream_loop -1 -i test.flv -c copy -f flv URL`: the
/// 12-s test stream over and over, for tests that run longer (stopped
/// after `limit`).
pub fn ffmpeg_publish_looped(dir: &Path, name: &str, url: &str, limit: Duration) -> Proc {
    publish_test_flv(dir, name, url, limit, true)
}

fn publish_test_flv(dir: &Path, name: &str, url: &str, limit: Duration, looped: bool) -> Proc {
    let flv = test_flv().to_string_lossy().into_owned();
    let mut args = vec!["-nostdin", "-v", "error", "-re"];
    if looped {
        args.extend(["-stream_loop", "-1"]);
    }
    args.extend(["-i", &flv, "-c", "copy", "-f", "flv", url]);
    Proc::spawn(dir, name, limit, "ffmpeg", args)
}

/// Starts `ffmpeg -i URL -c copy -t SECS -f flv OUT` (a player that records
/// `secs` seconds).
pub fn ffmpeg_play(dir: &Path, name: &str, url: &str, secs: u32, out: &Path) -> Proc {
    let secs_text = secs.to_string();
    let mut args: Vec<&OsStr> = [
        "-nostdin", "-v", "error", "-y", "-i", url, "-c", "copy", "-t",
    ]
    .into_iter()
    .map(OsStr::new)
    .collect();
    args.extend([OsStr::new(&secs_text), OsStr::new("-f"), OsStr::new("flv")]);
    args.push(out.as_os_str());
    Proc::spawn(
        dir,
        name,
        Duration::from_secs(u64::from(secs) + 15),
        "ffmpeg",
        args,
    )
}

/// `nats-server`'s arguments for JetStream on 127.0.0.1:`port` with its
/// store in `dir/jetstream` (a restart with the same ones keeps the
/// store).
pub fn nats_args(dir: &Path, port: u16) -> [String; 7] {
    [
        "-a".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
        "-js".to_owned(),
        "-sd".to_owned(),
        dir.join("jetstream").display().to_string(),
    ]
}

/// A `nats-server -js` on a free port, its store in `dir/jetstream`,
/// stopped after 300 s (the cluster tests start one per test).
pub fn start_nats(dir: &Path) -> (Proc, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free port")
        .port();
    let nats = Proc::spawn(
        dir,
        "nats",
        Duration::from_secs(300),
        "nats-server",
        nats_args(dir, port),
    );
    let up = wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
    });
    assert!(
        up.is_some(),
        "nats-server did not listen: {}",
        nats.stderr_text()
    );
    (nats, port)
}

/// Waits up to 10 s until `/api/stats` lists `scope`/`name` as publishing.
pub fn wait_publishing(server: &Server, scope: &str, name: &str) {
    let publishing = wait_for(Duration::from_secs(10), || {
        server
            .stream_stats(scope, name)
            .filter(|s| s["publishing"] == true)
    });
    assert!(
        publishing.is_some(),
        "{scope}/{name} is not publishing after 10 s; stats: {}",
        server.stats()
    );
}

/// Starts a `tern so ARGS…` client (stopped after `limit`).
pub fn tern_so(dir: &Path, name: &str, limit: Duration, args: &[&str]) -> Proc {
    let bin = tern_binary().to_string_lossy().into_owned();
    Proc::spawn(
        dir,
        name,
        limit,
        &bin,
        std::iter::once("so").chain(args.iter().copied()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tools_on_the_path() {
        assert!(tool_installed("sh"));
        assert!(!tool_installed("no-such-tool-for-tern-tests"));
    }

    #[test]
    fn reads_prometheus_samples() {
        let text =
            "# HELP x y\ntern_connections{protocol=\"rtmp\"} 3\ntern_streams 1\ntern_streams_x 7\n";
        assert_eq!(
            metric(text, "tern_connections{protocol=\"rtmp\"}"),
            Some(3.0)
        );
        assert_eq!(metric(text, "tern_streams"), Some(1.0));
        assert_eq!(metric(text, "tern_stream"), None);
    }
}
