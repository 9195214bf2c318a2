//! Accept loops: one task per accepted RTMP or HTTP socket, and shutdown.

use super::connection::run_connection;
use super::http_dispatch::serve_http_connection;
use super::state::Shared;
use crate::access::conn::ConnAccess;
use crate::direct_write::Attached;
use crate::net::Listener;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use tern_core::rtmp::ServerConnection;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, warn};

/// How long connections get to say goodbye at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Accepts connections until `shutdown` flips, each served by `serve` on
/// its own task; then gives open connections [`SHUTDOWN_GRACE`] to receive
/// the goodbye that [`close_all`] queued, and drops the rest.
pub(crate) async fn accept_loop<L, F, Fut>(
    what: &'static str,
    mut listener: L,
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) -> io::Result<()>
where
    L: Listener,
    F: FnMut(L::Stream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "{what} listening");
    }
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tasks.spawn(serve(stream, peer));
                }
                Err(e) => {
                    warn!("{what} accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = tasks.len(),
            "{what} connections still open after the grace period; dropping them"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

/// Accepts RTMP connections until `shutdown` flips, each on its own task.
pub async fn serve_rtmp<L: Listener>(
    shared: Arc<Shared>,
    listener: L,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    accept_loop("RTMP", listener, shutdown, |stream, peer| {
        let fd = L::descriptor(&stream);
        serve_rtmp_connection(Arc::clone(&shared), stream, fd, peer)
    })
    .await
}

/// Serves one RTMP connection (plain, or RTMPS after its TLS handshake)
/// until it ends. `fd` is the socket's descriptor when the server may
/// write to it directly (`direct_write`); `None` for TLS streams.
pub(crate) fn serve_rtmp_connection<S: crate::net::Stream>(
    shared: Arc<Shared>,
    stream: S,
    fd: Option<RawFd>,
    peer: SocketAddr,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (id, hub_peer) = shared.register();
    let span = tracing::info_span!("rtmp", conn = %id, %peer);
    async move {
        debug!("accepted");
        // Built in a block and boxed: a local that lives across the
        // await below would stay in the task (the 1536-byte random
        // block), and an async fn keeps a by-value argument twice.
        let conn = Box::new({
            let random = shared.handshake_random(id);
            ServerConnection::new(shared.rtmp.clone(), shared.now(), &random, Some(peer.ip()))
        });
        let stream = Attached::new(&hub_peer, stream, fd);
        let mut access = Box::new(ConnAccess::new(
            &shared,
            id,
            Some(peer.ip()),
            Arc::clone(&hub_peer),
        ));
        let ended = run_connection(
            &shared,
            stream,
            id,
            &hub_peer,
            conn,
            &mut access,
            Vec::new(),
        )
        .await;
        // The `*_done` callbacks of what it still published or played.
        access.finish(&shared);
        shared.unregister(id);
        shared.closed(&ended);
    }
    .instrument(span)
}

/// Accepts HTTP connections until `shutdown` flips: plain requests are
/// answered by [`http::serve_request`](crate::http::serve_request); WebSocket upgrades become
/// [`WsConnection`](tern_core::ws::WsConnection)s served like RTMP connections, on the same hub.
pub async fn serve_http<L: Listener>(
    shared: Arc<Shared>,
    listener: L,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut requests: u64 = 0;
    accept_loop("HTTP/WebSocket", listener, shutdown, |stream, peer| {
        requests += 1;
        let span = tracing::info_span!("http", req = requests, %peer);
        let fd = L::descriptor(&stream);
        serve_http_connection(Arc::clone(&shared), stream, fd, peer).instrument(span)
    })
    .await
}

/// Resolves once the shutdown flag is set (or its sender is gone).
pub async fn stopped(flag: &mut watch::Receiver<bool>) {
    loop {
        if *flag.borrow_and_update() {
            return;
        }
        if flag.changed().await.is_err() {
            return;
        }
    }
}
