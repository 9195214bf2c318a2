//! A minimal HTTP/1.1 GET over turmoil, and the parts of `/api/stats` the
//! invariants read.

use crate::net::{HTTP_PORT, SERVER};
use serde_json::Value;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET path` on the server's HTTP port: status code and body. The server
/// answers `Connection: close`, so the body is everything up to EOF.
pub async fn get(path: &str) -> io::Result<(u16, String)> {
    get_from(SERVER, path).await
}

/// [`get`] from host `host`.
pub async fn get_from(host: &str, path: &str) -> io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = turmoil::net::TcpStream::connect((host, HTTP_PORT)).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, io::Error>(response)
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "HTTP request timed out"))??;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of HTTP head"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status"))?;
    Ok((status, body.to_owned()))
}

/// One shared object as `/api/stats` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStats {
    /// Scope path, `/live/r0`.
    pub scope: String,
    /// Object name.
    pub name: String,
    /// Version after the last applied batch.
    pub version: u32,
    /// Subscribed connections.
    pub subscribers: u64,
    /// Saved to the store.
    pub persistent: bool,
}

/// The parts of `/api/stats` the invariants and the summary read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsView {
    /// RTMP connections.
    pub rtmp_connections: u64,
    /// WebSocket connections.
    pub ws_connections: u64,
    /// Scope paths, apps included.
    pub scopes: Vec<String>,
    /// `(scope, name)` of live streams.
    pub streams: Vec<(String, String)>,
    /// Shared objects in memory.
    pub objects: Vec<ObjectStats>,
    /// Media messages dropped from slow subscribers' queues.
    pub media_dropped: u64,
    /// Subscribers disconnected for lagging.
    pub lag_disconnects: u64,
}

impl StatsView {
    /// Reads the JSON body of `/api/stats`.
    pub fn parse(body: &str) -> Result<StatsView, String> {
        let json: Value = serde_json::from_str(body).map_err(|e| format!("stats JSON: {e}"))?;
        let u = |v: &Value| v.as_u64().unwrap_or(0);
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let list = |key: &str| json[key].as_array().cloned().unwrap_or_default();
        Ok(StatsView {
            rtmp_connections: u(&json["connections"]["rtmp"]),
            ws_connections: u(&json["connections"]["websocket"]),
            scopes: list("scopes").iter().map(|x| s(&x["path"])).collect(),
            streams: list("streams")
                .iter()
                .map(|x| (s(&x["scope"]), s(&x["name"])))
                .collect(),
            objects: list("shared_objects")
                .iter()
                .map(|x| ObjectStats {
                    scope: s(&x["scope"]),
                    name: s(&x["name"]),
                    version: u32::try_from(u(&x["version"])).unwrap_or(u32::MAX),
                    subscribers: u(&x["subscribers"]),
                    persistent: x["persistent"].as_bool().unwrap_or(false),
                })
                .collect(),
            media_dropped: u(&json["media_dropped"]),
            lag_disconnects: u(&json["lag_disconnects"]),
        })
    }

    /// The object `name` in `scope`, if in memory.
    pub fn object(&self, scope: &str, name: &str) -> Option<&ObjectStats> {
        self.objects
            .iter()
            .find(|o| o.scope == scope && o.name == name)
    }
}

/// `GET /api/stats`, parsed.
pub async fn fetch_stats() -> Result<StatsView, String> {
    fetch_stats_from(SERVER).await
}

/// [`fetch_stats`] from host `host`.
pub async fn fetch_stats_from(host: &str) -> Result<StatsView, String> {
    let (status, body) = get_from(host, "/api/stats")
        .await
        .map_err(|e| format!("GET /api/stats: {e}"))?;
    if status != 200 {
        return Err(format!("GET /api/stats: status {status}"));
    }
    StatsView::parse(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stats_document() {
        let body = r#"{"connections":{"rtmp":2,"websocket":1},
            "scopes":[{"path":"/live","connections":0},{"path":"/live/r0","connections":2}],
            "streams":[{"scope":"/live/r0","name":"cam","publishing":true,"subscribers":1}],
            "shared_objects":[{"scope":"/live/r0","name":"chat","version":7,"subscribers":2,"persistent":false}],
            "bytes_in":1,"bytes_out":2,"media_dropped":3,"lag_disconnects":4}"#;
        let s = StatsView::parse(body).unwrap();
        assert_eq!((s.rtmp_connections, s.ws_connections), (2, 1));
        assert_eq!(s.scopes, ["/live", "/live/r0"]);
        assert_eq!(s.streams, [("/live/r0".to_owned(), "cam".to_owned())]);
        assert_eq!(s.object("/live/r0", "chat").unwrap().version, 7);
        assert_eq!((s.media_dropped, s.lag_disconnects), (3, 4));
        assert!(StatsView::parse("nope").is_err());
    }
}
