//! TLS end to end: RTMPS (`server.rtmps_bind`) and HTTPS/WSS
//! (`server.https_bind`) with certificates the test makes (rcgen), played
//! and published by real clients: ffmpeg and rtmpdump over `rtmps://`
//! (GnuTLS), Python `websockets` and Chromium over `wss://`, rustls
//! clients for the checks. Certificate reload on SIGHUP with a wss client
//! connected, and bad input: garbage ClientHellos, plain RTMP on the RTMPS
//! port, 500 stalled handshakes.

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_tests::browser::{DemoChat, browser_ready, page_errors};
use tern_tests::http::{parse_response, request_bytes};
use tern_tests::rtmp::RtmpClient;
use tern_tests::{
    HttpResponse, Probe, Proc, Server, ServerOptions, check_av_capture, require, require_tool,
    require_tools, target_dir, test_flv, wait_for, wait_publishing, workspace_root,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A self-signed certificate for `localhost` and 127.0.0.1.
struct Cert {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn make_cert() -> Cert {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).expect("rcgen");
    Cert {
        cert_pem: cert.pem(),
        key_pem: signing_key.serialize_pem(),
        der: cert.der().clone(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A server with RTMPS and HTTPS ports and the files of its certificate.
struct TlsServer {
    server: Server,
    rtmps: SocketAddr,
    https: SocketAddr,
    cert_path: PathBuf,
    key_path: PathBuf,
    /// Where the certificate files live (kept until the end of the test).
    _certs: tempfile::TempDir,
    cert: Cert,
}

impl TlsServer {
    /// `handshake_timeout_secs = 2`, so stalled handshakes end quickly.
    fn start() -> TlsServer {
        TlsServer::start_with_handshake_timeout(2)
    }

    fn start_with_handshake_timeout(secs: u64) -> TlsServer {
        let certs = tempfile::tempdir().expect("temp dir");
        let cert = make_cert();
        let cert_path = certs.path().join("fullchain.pem");
        let key_path = certs.path().join("privkey.pem");
        std::fs::write(&cert_path, &cert.cert_pem).unwrap();
        std::fs::write(&key_path, &cert.key_pem).unwrap();
        let rtmps = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let https = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = format!(
            "[server]\nrtmps_bind = \"{rtmps}\"\nhttps_bind = \"{https}\"\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\nhandshake_timeout_secs = {secs}\n",
            cert = cert_path.to_str().unwrap(),
            key = key_path.to_str().unwrap(),
        );
        let server = Server::start(ServerOptions {
            config: Some(config),
            ..ServerOptions::default()
        });
        TlsServer {
            server,
            rtmps,
            https,
            cert_path,
            key_path,
            _certs: certs,
            cert,
        }
    }

    fn dir(&self) -> &Path {
        self.server.dir()
    }
}

/// A rustls client that trusts exactly `trust`.
fn connector(trust: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.clone()).expect("bad trust anchor");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: SocketAddr,
    trust: &CertificateDer<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(SECS(10), connector(trust).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// The leaf certificate a new connection to `addr` is shown (trusting
/// `trust`).
async fn leaf_seen(
    addr: SocketAddr,
    trust: &CertificateDer<'static>,
) -> std::io::Result<CertificateDer<'static>> {
    let stream = tls_connect(addr, trust).await?;
    let (_, session) = stream.get_ref();
    session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.clone().into_owned())
        .ok_or_else(|| std::io::Error::other("no peer certificate"))
}

async fn https_get(addr: SocketAddr, trust: &CertificateDer<'static>, path: &str) -> HttpResponse {
    let mut stream = tls_connect(addr, trust)
        .await
        .unwrap_or_else(|e| panic!("TLS connect to {addr}: {e}"));
    stream
        .write_all(&request_bytes("GET", "localhost", path, &[], b""))
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(SECS(10), stream.read_to_end(&mut raw))
        .await
        .expect("HTTPS response within 10 s")
        .expect("HTTPS read");
    parse_response(&raw).expect("an HTTP response")
}

type Wss = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

async fn wss_connect(addr: SocketAddr, trust: &CertificateDer<'static>, path: &str) -> Wss {
    let stream = tls_connect(addr, trust).await.expect("TLS connect");
    let url = format!("wss://localhost:{}/{path}", addr.port());
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("WebSocket handshake over TLS");
    ws
}

async fn ws_next(ws: &mut Wss, within: Duration) -> Option<Json> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn ws_send(ws: &mut Wss, value: Json) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

/// ffmpeg publishes over `rtmps://`; ffmpeg (`-tls_verify 0`) and rtmpdump
/// (librtmp with GnuTLS) play it back over `rtmps://`, and get every frame
/// of what they recorded.
#[test]
fn ffmpeg_publishes_and_ffmpeg_and_rtmpdump_play_over_rtmps() {
    if !require_tools(&["ffmpeg", "ffprobe", "rtmpdump"]) {
        return;
    }
    let flv = test_flv().to_string_lossy().into_owned();
    let tls = TlsServer::start();
    let dir = tls.dir();
    let url = format!("rtmps://127.0.0.1:{}/live/secure", tls.rtmps.port());
    let mut publisher = Proc::spawn(
        dir,
        "publisher",
        SECS(30),
        "ffmpeg",
        [
            "-nostdin", "-v", "error", "-re", "-i", &flv, "-c", "copy", "-f", "flv", &url,
        ],
    );
    wait_publishing(&tls.server, "/live", "secure");
    let played = dir.join("ffmpeg.flv");
    let mut player = Proc::spawn(
        dir,
        "player",
        SECS(25),
        "ffmpeg",
        [
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-tls_verify",
            "0",
            "-i",
            &url,
            "-c",
            "copy",
            "-t",
            "5",
            "-f",
            "flv",
            played.to_str().unwrap(),
        ],
    );
    let dumped = dir.join("rtmpdump.flv");
    let mut rtmpdump = Proc::spawn_with_signal(
        dir,
        "rtmpdump",
        "INT",
        SECS(6),
        "rtmpdump",
        [
            "-q",
            "-r",
            &url,
            "--live",
            "-m",
            "3",
            "-o",
            dumped.to_str().unwrap(),
        ],
    );
    let status = player.wait_exit(SECS(25));
    assert!(
        status.success(),
        "ffmpeg rtmps player failed ({status}): {}",
        player.stderr_text()
    );
    let status = rtmpdump.wait_exit(SECS(15));
    assert!(
        matches!(status.code(), Some(0..=2)),
        "rtmpdump over rtmps failed ({status}): {}",
        rtmpdump.stderr_text()
    );
    assert!(
        publisher.wait(Duration::ZERO).is_none(),
        "the rtmps publisher stopped early: {}",
        publisher.stderr_text()
    );
    for (file, what, played_secs, short, extra) in [
        (&played, "ffmpeg over rtmps", 5.0, 0.5, 0.2),
        (&dumped, "rtmpdump over rtmps", 6.0, 1.5, 2.2),
    ] {
        match check_av_capture(file, played_secs, short, extra) {
            Ok(summary) => eprintln!("{what}: {summary:?}"),
            Err(e) => panic!("{what}: {e}"),
        }
    }
    let probe = Probe::of(&played).unwrap();
    assert!(probe.stream("video").is_some());
    let log = tls.server.log();
    assert!(log.contains("RTMPS listening"), "{log}");
}

fn require_python_websockets() -> bool {
    if !require_tool("python3") {
        return false;
    }
    let present = std::process::Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        "Python package websockets (pip install websockets)",
        present,
    )
}

/// Everything the HTTP port serves, over TLS: `/healthz`, the demo page and
/// `/api/stats` to a rustls client; Python `websockets` with
/// `ssl.create_default_context(cafile=…)` over `wss://` writes a shared
/// object that an RTMP client on the plain port sees change.
#[tokio::test(flavor = "current_thread")]
async fn https_pages_and_python_websockets_over_wss() {
    let tls = TlsServer::start();
    let trust = tls.cert.der.clone();
    let health = https_get(tls.https, &trust, "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let page = https_get(tls.https, &trust, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html"), "{}", page.body);
    let stats = https_get(tls.https, &trust, "/api/stats").await;
    let stats: Json = serde_json::from_str(&stats.body).unwrap();
    assert!(stats["connections"].is_object(), "{stats}");
    // A client that does not trust the certificate gets no session.
    let stranger = make_cert();
    assert!(tls_connect(tls.https, &stranger.der).await.is_err());

    if !require_python_websockets() {
        return;
    }
    let mut rtmp = RtmpClient::connect("rtmp", tls.server.rtmp_addr(), "chat/room1").await;
    let v0 = rtmp.use_so("board", false).await["version"]
        .as_u64()
        .unwrap();
    let script = workspace_root().join("tests/python/ws_client.py");
    let ca = tls.cert_path.to_str().unwrap().to_owned();
    let url = format!("wss://localhost:{}/chat/room1", tls.https.port());
    let ops = json!([
        {"op": "set", "so": "board", "key": "from", "value": "python over wss"},
        {"op": "send", "so": "board", "method": "done", "args": []}
    ])
    .to_string();
    let mut python = Proc::spawn(
        tls.dir(),
        "python-wss",
        SECS(30),
        "python3",
        [
            script.to_str().unwrap(),
            &url,
            "--so",
            "board",
            "--ops",
            &ops,
            "--until-method",
            "done",
            "--cafile",
            &ca,
        ],
    );
    let seen = rtmp.collect_until(SECS(15), |e| e.len() >= 2).await;
    assert_eq!(
        seen.first(),
        Some(&json!({"op": "change", "so": "board", "version": v0 + 1,
                     "key": "from", "value": "python over wss"})),
        "the RTMP client's view: {seen:?}; python: {}",
        python.stderr_text()
    );
    let status = python.wait_exit(SECS(20));
    assert!(
        status.success(),
        "python wss client failed ({status}): {}\n{}",
        python.stdout_text(),
        python.stderr_text()
    );
    let lines = python.json_lines();
    assert!(
        lines
            .iter()
            .any(|l| l["op"] == "ack" && l["key"] == "from" && l["version"] == v0 + 1),
        "no ack over wss: {lines:?}"
    );
}

/// SIGHUP with a new certificate: a wss client connected before keeps its
/// connection and keeps working; new connections are shown the new
/// certificate. A broken file at the next SIGHUP, and then a key that does
/// not match, keep the certificate in use, and the log says why.
#[tokio::test(flavor = "current_thread")]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let tls = TlsServer::start();
    let old = tls.cert.der.clone();
    let mut ws = wss_connect(tls.https, &old, "chat/room1").await;
    assert_eq!(ws_next(&mut ws, SECS(10)).await.unwrap()["op"], "welcome");
    ws_send(
        &mut ws,
        json!({"op": "use", "so": "board", "persistent": false}),
    )
    .await;
    assert_eq!(ws_next(&mut ws, SECS(10)).await.unwrap()["op"], "sync");
    assert_eq!(leaf_seen(tls.https, &old).await.unwrap(), old);

    let new = make_cert();
    std::fs::write(&tls.cert_path, &new.cert_pem).unwrap();
    std::fs::write(&tls.key_path, &new.key_pem).unwrap();
    let pid = tls.server.pid().expect("server running").to_string();
    let hup = || {
        let status = std::process::Command::new("kill")
            .args(["-s", "HUP", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    hup();
    let reloaded = wait_for(SECS(10), || {
        (tls.server.log().matches("TLS certificate reloaded").count() == 1).then_some(())
    });
    assert!(reloaded.is_some(), "no reload line: {}", tls.server.log());
    assert_eq!(leaf_seen(tls.https, &new.der).await.unwrap(), new.der);
    assert_eq!(leaf_seen(tls.rtmps, &new.der).await.unwrap(), new.der);
    assert!(
        tls_connect(tls.https, &old).await.is_err(),
        "a new connection still got the old certificate"
    );
    // The connection from before the reload still works both ways.
    ws_send(
        &mut ws,
        json!({"op": "set", "so": "board", "key": "k", "value": 1}),
    )
    .await;
    let ack = ws_next(&mut ws, SECS(10))
        .await
        .expect("the old wss connection was dropped");
    assert_eq!(ack["op"], "ack", "{ack}");

    // A broken certificate file: the new certificate stays.
    std::fs::write(&tls.cert_path, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    hup();
    let refused = wait_for(SECS(10), || {
        tls.server
            .log()
            .lines()
            .find(|l| l.contains("TLS certificate not reloaded"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no refusal line: {}", tls.server.log()));
    assert!(refused.contains("fullchain.pem"), "{refused}");
    assert_eq!(leaf_seen(tls.https, &new.der).await.unwrap(), new.der);

    // A key of another certificate: refused too.
    std::fs::write(&tls.cert_path, &new.cert_pem).unwrap();
    std::fs::write(&tls.key_path, make_cert().key_pem).unwrap();
    hup();
    let mismatch = wait_for(SECS(10), || {
        tls.server
            .log()
            .lines()
            .find(|l| l.contains("does not belong to the certificate"))
            .map(str::to_owned)
    });
    assert!(mismatch.is_some(), "{}", tls.server.log());
    assert_eq!(leaf_seen(tls.https, &new.der).await.unwrap(), new.der);
    ws_send(
        &mut ws,
        json!({"op": "set", "so": "board", "key": "k", "value": 2}),
    )
    .await;
    let ack = ws_next(&mut ws, SECS(10))
        .await
        .expect("the wss connection was dropped");
    assert_eq!(ack["op"], "ack", "{ack}");
    assert_eq!(tls.server.http_get("/healthz").unwrap().status, 200);
}

/// Sends `bytes` on a fresh TCP connection to `addr` and reads until the
/// server closes (at most `within`). Returns what it sent back, or `None`
/// if it did not close in time.
async fn send_and_read_to_close(
    addr: SocketAddr,
    bytes: &[u8],
    within: Duration,
) -> Option<Vec<u8>> {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(bytes).await.expect("write");
    let mut got = Vec::new();
    match tokio::time::timeout(within, tcp.read_to_end(&mut got)).await {
        Ok(_) => Some(got),
        Err(_) => None,
    }
}

/// Garbage instead of a ClientHello, plain HTTP on the HTTPS port and a
/// plain RTMP handshake on the RTMPS port are refused at once with a TLS
/// alert and a log line; 500 handshakes that stall are cut off after
/// `tls.handshake_timeout_secs` (4 s here) while other clients (HTTPS,
/// RTMPS, plain RTMP) are served at once.
#[tokio::test(flavor = "current_thread")]
async fn bad_tls_input_and_stalled_handshakes_leave_the_server_serving() {
    // Long enough that a client queued behind the stalled handshakes would
    // show, short enough for a quick test.
    let tls = TlsServer::start_with_handshake_timeout(4);
    let trust = tls.cert.der.clone();

    let mut garbage = vec![0x16, 0x03, 0x01, 0x00, 0x20];
    garbage.extend((0..32u8).map(|i| i.wrapping_mul(97)));
    let mut rtmp_c0c1 = vec![0x03];
    rtmp_c0c1.extend(std::iter::repeat_n(0x5a, 1536));
    for (what, addr, bytes) in [
        ("garbage ClientHello", tls.https, garbage.clone()),
        ("garbage ClientHello", tls.rtmps, garbage),
        (
            "plain HTTP on the HTTPS port",
            tls.https,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("plain RTMP on the RTMPS port", tls.rtmps, rtmp_c0c1),
    ] {
        let got = send_and_read_to_close(addr, &bytes, SECS(5))
            .await
            .unwrap_or_else(|| panic!("{what}: the server kept the connection open"));
        // Nothing but a TLS alert record (content type 21), if anything.
        assert!(
            got.is_empty() || got.first() == Some(&0x15),
            "{what}: answered {:02x?}",
            &got[..got.len().min(16)]
        );
    }
    let failures = wait_for(SECS(5), || {
        (tls.server.log().matches("TLS handshake failed").count() >= 4).then_some(())
    });
    assert!(
        failures.is_some(),
        "not every refused handshake was logged: {}",
        tls.server.log()
    );

    // 500 handshakes that send the first bytes of a record and stall.
    let mut stalled = Vec::new();
    for i in 0..500 {
        let addr = if i % 2 == 0 { tls.rtmps } else { tls.https };
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        stalled.push(tcp);
    }
    let opened = Instant::now();
    // Meanwhile everyone else is served at once.
    let health = https_get(tls.https, &trust, "/healthz").await;
    assert_eq!(health.status, 200);
    let mut rtmps = tls_connect(tls.rtmps, &trust)
        .await
        .expect("RTMPS handshake");
    let mut c0c1 = vec![0x03];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    rtmps.write_all(&c0c1).await.unwrap();
    let mut s0 = [0u8; 1];
    tokio::time::timeout(SECS(5), rtmps.read_exact(&mut s0))
        .await
        .expect("RTMP S0 over TLS within 5 s")
        .unwrap();
    assert_eq!(s0, [0x03], "RTMP version byte over TLS");
    let mut plain = RtmpClient::connect("plain", tls.server.rtmp_addr(), "chat/room1").await;
    plain.use_so("board", false).await;
    assert!(
        opened.elapsed() < SECS(3),
        "other clients waited for the stalled handshakes ({:?})",
        opened.elapsed()
    );

    // Each stalled handshake is closed after the 4 s deadline.
    let mut closed = 0;
    for mut tcp in stalled {
        let mut buf = Vec::new();
        let left = (opened + SECS(12)).saturating_duration_since(Instant::now());
        if let Ok(Ok(_)) = tokio::time::timeout(left, tcp.read_to_end(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 500, "stalled handshakes left open after 12 s");
    let cut = wait_for(SECS(5), || {
        let n = tls
            .server
            .log()
            .matches("TLS handshake not done within 4 s")
            .count();
        (n >= 500).then_some(n)
    });
    assert!(cut.is_some(), "not every stalled handshake was logged");
    assert_eq!(https_get(tls.https, &trust, "/healthz").await.status, 200);
    assert_eq!(tls.server.http_get("/healthz").unwrap().status, 200);
}

/// The demo page from `https://`, its chat over `wss://`, in Chromium
/// (`--ignore-certificate-errors`, see tests/browser/demo.mjs): the page's
/// line reaches an RTMP client and an RTMP client's line reaches the page.
#[tokio::test(flavor = "current_thread")]
async fn demo_page_over_https_and_wss_in_chromium() {
    if !browser_ready(&[]) {
        return;
    }
    let tls = TlsServer::start();
    let mut rtmp = RtmpClient::connect("rtmp", tls.server.rtmp_addr(), "chat/room1").await;
    let v0 = rtmp.use_so("chat", false).await["version"]
        .as_u64()
        .unwrap();
    let artifacts = target_dir().join("tern-tests/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let browser = DemoChat {
        dir: tls.dir(),
        page_url: &format!("https://127.0.0.1:{}/", tls.https.port()),
        rtmp_url: &tls.server.rtmp_url("chat/room1"),
        page_line: "hello over wss",
        rtmp_line: "hello from RTMP to wss",
        screenshot: &artifacts.join("demo-https.png"),
    }
    .run(&mut rtmp, v0)
    .await;
    let errors = page_errors(&browser);
    assert!(errors.is_empty(), "errors in the page: {errors:?}");
    // The page's WebSocket went through the HTTPS port.
    let log = tls.server.log();
    assert!(
        log.contains("https{"),
        "no connection on the HTTPS port: {log}"
    );
}
