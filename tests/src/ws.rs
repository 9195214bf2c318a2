//! A WebSocket client of tern's protocol v1 (docs/ws-protocol.md) for the
//! tests that mix it with RTMP clients: tokio-tungstenite with every wait
//! bounded by a deadline.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A tokio-tungstenite client.
/// (Its stream is not `Debug`; the name says which client it is.)
pub struct WsClient {
    name: String,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server selected.
    pub subprotocol: Option<String>,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient")
            .field("name", &self.name)
            .field("subprotocol", &self.subprotocol)
            .finish_non_exhaustive()
    }
}

impl WsClient {
    /// Connects to `url` (10 s for the handshake); panics on failure.
    pub async fn connect(name: &str, url: &str) -> WsClient {
        WsClient::connect_with_subprotocol(name, url, None).await
    }

    /// [`connect`](Self::connect) asking for `subprotocol`.
    pub async fn connect_with_subprotocol(
        name: &str,
        url: &str,
        subprotocol: Option<&str>,
    ) -> WsClient {
        let mut request = url.into_client_request().expect("bad WebSocket URL");
        if let Some(protocol) = subprotocol {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(protocol).expect("bad subprotocol"),
            );
        }
        let (ws, response) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(request),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: no WebSocket handshake within 10 s"))
        .unwrap_or_else(|e| panic!("{name}: WebSocket handshake with {url} failed: {e}"));
        let subprotocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        WsClient {
            name: name.to_owned(),
            ws,
            subprotocol,
        }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.name));
    }

    /// Sends `value` as a text frame.
    pub async fn send_json(&mut self, value: &Json) {
        self.send_text(&value.to_string()).await;
    }

    /// The next text frame within `within` (pings and pongs skipped).
    pub async fn next_text(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match frame.unwrap_or_else(|e| panic!("{}: receive failed: {e}", self.name)) {
                Message::Text(text) => return Some(text.as_str().to_owned()),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("{}: unexpected frame {other:?}", self.name),
            }
        }
    }

    /// The next text frame as JSON (panics if it is not JSON).
    pub async fn next_json(&mut self, within: Duration) -> Option<Json> {
        let text = self.next_text(within).await?;
        Some(
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: frame is not JSON ({e}): {text:?}", self.name)),
        )
    }

    /// The next JSON frame whose `op` is `op`, skipping others; panics if
    /// none comes within 10 s.
    pub async fn next_op(&mut self, op: &str) -> Json {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self
                .next_json(left)
                .await
                .unwrap_or_else(|| panic!("{}: no {op} within 10 s", self.name));
            if frame["op"] == op {
                return frame;
            }
        }
    }

    /// Waits for `welcome`, uses `so` (transient) and returns its `sync`.
    pub async fn use_so(&mut self, so: &str) -> Json {
        let welcome = self.next_json(Duration::from_secs(10)).await;
        let welcome = welcome.unwrap_or_else(|| panic!("{}: no welcome", self.name));
        assert_eq!(welcome["op"], "welcome", "{}: {welcome}", self.name);
        self.send_json(&json!({"op": "use", "so": so, "persistent": false}))
            .await;
        let sync = self.next_json(Duration::from_secs(10)).await;
        let sync = sync.unwrap_or_else(|| panic!("{}: no sync", self.name));
        assert_eq!(sync["op"], "sync", "{}: {sync}", self.name);
        assert_eq!(sync["so"], so, "{}: {sync}", self.name);
        sync
    }

    /// JSON frames until `done` says the list is complete or `within`
    /// passes.
    pub async fn collect_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&[Json]) -> bool,
    ) -> Vec<Json> {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames = Vec::new();
        while !done(&frames) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_json(left).await {
                Some(frame) => frames.push(frame),
                None => break,
            }
        }
        frames
    }
}
