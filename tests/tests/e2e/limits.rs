//! The descriptor limit: a server started with a low soft `RLIMIT_NOFILE`
//! and a higher hard one raises the soft limit at start and serves more
//! clients than the soft limit would have allowed (docs/reliability.md).

use std::net::SocketAddr;
use std::time::Duration;
use tern_tests::rtmp::RtmpClient;
use tern_tests::{Server, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The soft limit the server is started with.
const SOFT: u64 = 256;
/// Clients: well past `SOFT` (each costs the server one descriptor).
const CLIENTS: usize = 400;

/// Does the plain RTMP handshake (C0+C1 → S0+S1+S2) within `within`;
/// returns the socket if the server answered it in full, so the caller can
/// keep the connection open.
async fn handshake(addr: SocketAddr, within: Duration) -> Option<TcpStream> {
    tokio::time::timeout(within, async {
        let mut socket = TcpStream::connect(addr).await.ok()?;
        let mut c0c1 = vec![0u8; 1 + 1536];
        c0c1[0] = 3;
        socket.write_all(&c0c1).await.ok()?;
        let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
        socket.read_exact(&mut s0s1s2).await.ok()?;
        (s0s1s2[0] == 3).then_some(socket)
    })
    .await
    .ok()
    .flatten()
}

fn log_line<'a>(log: &'a str, needle: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?}; log:\n{log}"))
}

#[tokio::test(flavor = "current_thread")]
async fn a_low_soft_limit_is_raised_to_the_hard_limit() {
    let hard = 4096;
    let server = Server::start(ServerOptions {
        nofile: Some((SOFT, hard)),
        ..ServerOptions::default()
    });
    let log = server.log();
    let line = log_line(&log, "descriptor limit (RLIMIT_NOFILE)");
    assert!(
        line.contains(&format!("soft={hard}")) && line.contains(&format!("was={SOFT}")),
        "{line}"
    );
    // 4096 is above the default 1000 connections per address + reserve.
    assert!(!log.contains("descriptor limit is below"), "{log}");

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(RtmpClient::connect(&format!("c{i}"), server.rtmp_addr(), "chat/fds").await);
    }
    let stats = server.stats();
    assert_eq!(
        stats["connections"]["rtmp"].as_u64(),
        Some(CLIENTS as u64),
        "{stats}"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.pid().unwrap()))
        .unwrap()
        .count();
    assert!(fds > SOFT as usize, "the server holds {fds} descriptors");
}

/// The control: with soft = hard = 256 there is nothing to raise, the
/// server warns at start, and clients past the limit are not served — so
/// the test above would fail if the limit were not raised.
#[tokio::test(flavor = "current_thread")]
async fn without_headroom_the_server_warns_and_clients_past_the_limit_wait() {
    let server = Server::start(ServerOptions {
        nofile: Some((SOFT, SOFT)),
        ..ServerOptions::default()
    });
    let log = server.log();
    let line = log_line(&log, "descriptor limit (RLIMIT_NOFILE)");
    assert!(line.contains(&format!("soft={SOFT}")), "{line}");
    log_line(&log, "descriptor limit is below");

    let attempts = (0..CLIENTS).map(|_| handshake(server.rtmp_addr(), Duration::from_secs(5)));
    let served: Vec<TcpStream> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        served.len() < SOFT as usize && served.len() > SOFT as usize / 2,
        "{} of {CLIENTS} handshakes answered under a limit of {SOFT}",
        served.len()
    );
    assert!(server.log().contains("accept failed"), "{}", server.log());
}
