//! A normal Linux WebSocket client (tokio-tungstenite) for tern's JSON
//! protocol v1: connects, uses one shared object, prints every text
//! message it receives, one per line, and exits 0 at the first `change`
//! (someone else set a key), or 1 when none came before the deadline.
//!
//! ```text
//! ws_watch ws://192.168.69.100:8081/chat/room1 s [--timeout 20]
//! ```
//!
//! `tests/tap_namespace.rs` runs it inside the TAP namespace against the
//! embedded server (`tap_server`) while `tern so set` changes the object
//! over RTMP.

use futures_util::{SinkExt, StreamExt};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(so)) = (args.next(), args.next()) else {
        eprintln!("usage: ws_watch <ws://host:port/app/room> <shared object> [--timeout SECS]");
        return ExitCode::from(2);
    };
    let timeout = match (args.next().as_deref(), args.next()) {
        (None, _) => Duration::from_secs(20),
        (Some("--timeout"), Some(secs)) => match secs.parse() {
            Ok(secs) => Duration::from_secs(secs),
            Err(e) => {
                eprintln!("ws_watch: --timeout {secs}: {e}");
                return ExitCode::from(2);
            }
        },
        (Some(other), _) => {
            eprintln!("ws_watch: unexpected argument {other:?}");
            return ExitCode::from(2);
        }
    };
    match tokio::time::timeout(timeout, watch(&url, &so)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("ws_watch: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("ws_watch: no change of {so} within {timeout:?}");
            ExitCode::FAILURE
        }
    }
}

/// Uses `so` on the server at `url` and prints messages until a `change`.
async fn watch(url: &str, so: &str) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("connect to {url}: {e}"))?;
    // `so` is a plain name ([A-Za-z0-9_.-]); no JSON escaping needed.
    let using = format!(r#"{{"op":"use","so":"{so}"}}"#);
    ws.send(Message::text(using))
        .await
        .map_err(|e| format!("send use: {e}"))?;
    while let Some(message) = ws.next().await {
        match message.map_err(|e| format!("read: {e}"))? {
            Message::Text(text) => {
                println!("{text}");
                let _ = std::io::stdout().flush();
                if text.contains(r#""op":"change""#) {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
            }
            Message::Close(frame) => return Err(format!("server closed: {frame:?}")),
            // Pings are answered by tungstenite itself.
            _ => {}
        }
    }
    Err("connection ended without a change".into())
}
