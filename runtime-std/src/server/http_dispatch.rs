//! One HTTP connection: the request head, then an HTTP answer, a WebSocket
//! upgrade handed to the core's sans-IO `WsConnection`, or an FLV stream.

use super::connection::run_connection;
use super::state::Shared;
use crate::access::conn::ConnAccess;
use crate::direct_write::Attached;
use crate::http::{self, RequestHead, Served};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use tern_core::flv::{FlvConnection, Framing};
use tern_core::hub::Request;
use tern_core::ws::WsConnection;
use tokio::io::AsyncWriteExt;
use tracing::{Instrument, debug, info};

/// Serves one connection of the HTTP port (plain, or HTTPS after its TLS
/// handshake): one request, or a WebSocket upgrade served until it ends.
pub(crate) async fn serve_http_connection<S: crate::net::Stream>(
    shared: Arc<Shared>,
    mut stream: S,
    fd: Option<RawFd>,
    peer: SocketAddr,
) {
    let site = http::Site {
        stats: shared.as_ref(),
        access: &shared.http_access,
        admin: Some(shared.as_ref()),
    };
    match http::serve_request_on(&mut stream, site).await {
        Ok(Served::Done) => {}
        Ok(Served::Upgrade { head, leftover }) => {
            let (id, hub_peer) = shared.register();
            let span = tracing::info_span!("ws", conn = %id, target = %head.target);
            // `move`: the request is dropped once it is bytes again, not
            // kept for the connection's life.
            async move {
                let mut access = Box::new(ConnAccess::new(
                    &shared,
                    id,
                    Some(peer.ip()),
                    Arc::clone(&hub_peer),
                ));
                if let Err(reason) =
                    admit_upgrade(&shared, &mut access, &mut stream, &head, peer).await
                {
                    shared.unregister(id);
                    info!("upgrade refused: {reason}");
                    return;
                }
                let mut initial = head_bytes(&head);
                initial.extend_from_slice(&leftover);
                drop((head, leftover));
                let conn = Box::new(WsConnection::new(
                    shared.ws.clone(),
                    shared.now(),
                    Some(peer.ip()),
                ));
                let stream = Attached::new(&hub_peer, stream, fd);
                let ended =
                    run_connection(&shared, stream, id, &hub_peer, conn, &mut access, initial)
                        .await;
                access.finish(&shared);
                shared.unregister(id);
                shared.closed(&ended);
            }
            .instrument(span)
            .await;
        }
        Ok(Served::Flv {
            head,
            leftover,
            websocket,
        }) => {
            let (id, hub_peer) = shared.register();
            let span = tracing::info_span!("flv", conn = %id, target = %head.target);
            async move {
                // The player's connect and play pass the app's access rules
                // and callbacks like an RTMP player's (protocol `Flv`).
                let mut access = Box::new(ConnAccess::new(
                    &shared,
                    id,
                    Some(peer.ip()),
                    Arc::clone(&hub_peer),
                ));
                let mut initial = head_bytes(&head);
                initial.extend_from_slice(&leftover);
                drop((head, leftover));
                let framing = if websocket {
                    Framing::WebSocket
                } else {
                    Framing::HttpChunked
                };
                let conn = Box::new(FlvConnection::new(
                    shared.flv.clone(),
                    framing,
                    shared.now(),
                    Some(peer.ip()),
                ));
                let stream = Attached::new(&hub_peer, stream, fd);
                let reason =
                    run_connection(&shared, stream, id, &hub_peer, conn, &mut access, initial)
                        .await;
                access.finish(&shared);
                shared.unregister(id);
                info!("closed: {reason}");
            }
            .instrument(span)
            .await;
        }
        Err(e) => debug!("connection failed: {e}"),
    }
}

/// Decides a WebSocket connect before the upgrade is answered (address
/// rules, signed URL, `on_connect`); a refused client gets HTTP 403 with
/// the reason. The echo endpoint is not an application: it is not checked.
pub(super) async fn admit_upgrade<S: crate::net::Stream>(
    shared: &Shared,
    access: &mut ConnAccess,
    stream: &mut S,
    head: &RequestHead,
    peer: SocketAddr,
) -> Result<(), String> {
    let target = head.target.trim_start_matches('/');
    let path = target.split('?').next().unwrap_or_default();
    if shared
        .ws
        .echo_path
        .as_deref()
        .is_some_and(|echo| echo.trim_start_matches('/') == path)
    {
        return Ok(());
    }
    let connect = Request::Connect(tern_core::hub::ConnectRequest {
        protocol: tern_core::ws::PROTOCOL,
        target: target.to_owned(),
        params: tern_core::amf0::Value::Null,
        args: Vec::new(),
        address: Some(peer.ip()),
        // Only decided here; the upgraded connection makes its own connect.
        notices: None,
    });
    let Err(reason) = access.admit_upgrade(shared, connect).await else {
        return Ok(());
    };
    let body = format!("{reason}\n");
    let response = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(shared.write_stall, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    Err(reason)
}

/// The request head as bytes again, for the WebSocket connection, which
/// parses the upgrade itself (the core owns the protocol).
pub(super) fn head_bytes(head: &RequestHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(format!(" HTTP/1.{}\r\n", head.version).as_bytes());
    for (name, value) in &head.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}
