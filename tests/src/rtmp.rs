//! An RTMP shared-object client for the WebSocket-bridge tests: the core's
//! sans-IO [`ClientConnection`] driven over a tokio `TcpStream`, with every
//! wait bounded by a deadline.
//!
//! It decodes AMF0 into JSON itself (not through runtime-std's mapping), so
//! the tests compare what an RTMP client received with what WebSocket
//! clients received using a mapping written independently of the server's.

use serde_json::{Map, Number, Value as Json, json};
use std::net::SocketAddr;
use std::time::Duration;
use tern_core::amf0::Value;
use tern_core::message::{SharedObjectMessage, SoEvent};
use tern_core::rtmp::{ClientConfig, ClientConnection, ClientEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connected RTMP client (connect answered with success).
#[derive(Debug)]
pub struct RtmpClient {
    name: String,
    socket: TcpStream,
    conn: ClientConnection,
    started: std::time::Instant,
    buf: Vec<u8>,
}

impl RtmpClient {
    /// Connects to `addr` with `connect.app` = `app` (e.g. `chat/room1`) and
    /// waits up to 10 s for the connect to succeed; panics otherwise.
    pub async fn connect(name: &str, addr: SocketAddr, app: &str) -> RtmpClient {
        RtmpClient::connect_with(name, addr, app, |_| {}).await
    }

    /// [`connect`](Self::connect) with the client's configuration changed
    /// by `configure` first (e.g. `amf3`, `raw_shared_objects`).
    pub async fn connect_with(
        name: &str,
        addr: SocketAddr,
        app: &str,
        configure: impl FnOnce(&mut ClientConfig),
    ) -> RtmpClient {
        let socket = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{name}: cannot connect to {addr}: {e}"));
        socket.set_nodelay(true).expect("set_nodelay");
        let mut random = [0u8; tern_core::rtmp::handshake::RANDOM_LEN];
        for (i, b) in random.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        let mut config = ClientConfig::new(app, format!("rtmp://{addr}/{app}"));
        configure(&mut config);
        let conn = ClientConnection::new(config, tern_core::Instant::ZERO, &random);
        let mut client = RtmpClient {
            name: name.to_owned(),
            socket,
            conn,
            started: std::time::Instant::now(),
            buf: vec![0; 64 * 1024],
        };
        loop {
            match client.next_event(Duration::from_secs(10)).await {
                Some(ClientEvent::Connected { .. }) => return client,
                Some(ClientEvent::ConnectFailed { code, description }) => {
                    panic!("{name}: connect refused: {code} {description}")
                }
                Some(_) => {}
                None => panic!("{name}: no connect answer within 10 s"),
            }
        }
    }

    /// The core connection, to queue requests (`so_use`, `so_set`, …); call
    /// [`flush`](Self::flush) afterwards.
    pub fn conn(&mut self) -> &mut ClientConnection {
        &mut self.conn
    }

    /// Writes everything the connection has queued.
    pub async fn flush(&mut self) {
        while let Some(bytes) = self.conn.poll_transmit() {
            if let Err(e) = self.socket.write_all(&bytes).await {
                panic!("{}: write failed: {e}", self.name);
            }
        }
    }

    /// Uses (subscribes to) shared object `so` and returns its sync (see
    /// [`so_entries`]) within 10 s.
    pub async fn use_so(&mut self, so: &str, persistent: bool) -> Json {
        self.conn.so_use(so, persistent).expect("so_use");
        self.flush().await;
        loop {
            let message = self.next_so(Duration::from_secs(10)).await;
            let message = message.unwrap_or_else(|| panic!("{}: no sync for {so}", self.name));
            if let Some(sync) = so_entries(&message)
                .into_iter()
                .find(|e| e["op"] == "sync" && e["so"] == so)
            {
                return sync;
            }
        }
    }

    /// Sets `key` to the JSON `value` (as AMF0) in one batch.
    pub async fn set(&mut self, so: &str, key: &str, value: &Json) {
        let changes = vec![(key.to_owned(), json_to_amf(value))];
        self.conn.so_set(so, false, changes).expect("so_set");
        self.flush().await;
    }

    /// Deletes `key`.
    pub async fn delete(&mut self, so: &str, key: &str) {
        self.conn.so_delete(so, false, key).expect("so_delete");
        self.flush().await;
    }

    /// Broadcasts `method(args)`.
    pub async fn send(&mut self, so: &str, method: &str, args: &[Json]) {
        let args = args.iter().map(json_to_amf).collect();
        self.conn.so_send(so, false, method, args).expect("so_send");
        self.flush().await;
    }

    /// The next event from the server within `within` (None on timeout or
    /// when the connection closed).
    pub async fn next_event(&mut self, within: Duration) -> Option<ClientEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.flush().await;
            if let Some(event) = self.conn.poll_event() {
                return Some(event);
            }
            let read = tokio::time::timeout_at(deadline, self.socket.read(&mut self.buf)).await;
            let n = match read {
                Ok(Ok(0)) | Err(_) => return None,
                Ok(Ok(n)) => n,
                Ok(Err(e)) => panic!("{}: read failed: {e}", self.name),
            };
            let now = tern_core::Instant::from_millis(
                u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            );
            let data = self.buf.get(..n).unwrap_or_default().to_vec();
            if let Err(e) = self.conn.handle_input(now, &data) {
                panic!("{}: bad input from the server: {e}", self.name);
            }
        }
    }

    /// The next event `pick` accepts within 10 s, skipping the others;
    /// panics with `what` otherwise.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(ClientEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Some(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                None => panic!("{}: no {what} within 10 s", self.name),
            }
        }
    }

    /// Creates a stream and returns its id (within 10 s).
    pub async fn create_stream(&mut self) -> u32 {
        self.conn.create_stream().expect("createStream");
        self.wait_for("createStream result", |e| match e {
            ClientEvent::StreamCreated { stream_id, .. } => Some(stream_id),
            _ => None,
        })
        .await
    }

    /// Waits (10 s) for an `onStatus` with `code`.
    pub async fn status(&mut self, code: &str) {
        self.wait_for(code, |e| match e {
            ClientEvent::Status { code: c, .. } if c == code => Some(()),
            _ => None,
        })
        .await
    }

    /// Publishes `name` on a new stream; returns the stream id once
    /// `NetStream.Publish.Start` came.
    pub async fn publish(&mut self, name: &str) -> u32 {
        let stream = self.create_stream().await;
        self.conn.publish(stream, name).expect("publish");
        self.status("NetStream.Publish.Start").await;
        stream
    }

    /// Plays `name` on a new stream, until `NetStream.Play.Start`.
    pub async fn play(&mut self, name: &str) {
        let stream = self.create_stream().await;
        self.conn.play(stream, name, -1.0).expect("play");
        self.status("NetStream.Play.Start").await;
    }

    /// The payload of the next data message (type 18, or type 15 after its
    /// encoding byte) within 10 s.
    pub async fn next_data_payload(&mut self) -> Vec<u8> {
        self.wait_for("data message", |e| match e {
            ClientEvent::Media {
                kind: tern_core::hub::MediaKind::Data,
                payload,
                ..
            } => Some(payload.to_vec()),
            _ => None,
        })
        .await
    }

    /// The next shared-object message within `within`, skipping other
    /// events.
    pub async fn next_so(&mut self, within: Duration) -> Option<SharedObjectMessage> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await? {
                ClientEvent::SharedObject(message) => return Some(message),
                _ => continue,
            }
        }
    }

    /// Collects shared-object entries ([`so_entries`], syncs excluded)
    /// until `done` says the list is complete, or `within` passes.
    pub async fn collect_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&[Json]) -> bool,
    ) -> Vec<Json> {
        let deadline = tokio::time::Instant::now() + within;
        let mut entries = Vec::new();
        while !done(&entries) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_so(left).await {
                Some(message) => entries.extend(
                    so_entries(&message)
                        .into_iter()
                        .filter(|e| e["op"] != "sync"),
                ),
                None => break,
            }
        }
        entries
    }
}

/// A shared-object message as entries in the WebSocket protocol's shape,
/// so RTMP and WebSocket views compare directly: a use's answer
/// (use-success, clear, changes) is one `sync`; `Success` is `ack`,
/// `Change` `change`, `Remove` `delete`, `SendMessage` `message`, `Clear`
/// `clear`, `Status` `error`. Each entry carries the message's version.
pub fn so_entries(message: &SharedObjectMessage) -> Vec<Json> {
    let so = json!(message.name);
    let version = json!(message.version);
    if message.events.first() == Some(&SoEvent::UseSuccess) {
        let data: Map<String, Json> = message
            .events
            .iter()
            .filter_map(|e| match e {
                SoEvent::Change { key, value } => Some((key.clone(), amf_to_json(value))),
                _ => None,
            })
            .collect();
        return vec![json!({"op": "sync", "so": so, "version": version, "data": data})];
    }
    message
        .events
        .iter()
        .map(|event| match event {
            SoEvent::Change { key, value } => json!({"op": "change", "so": so,
                "version": version, "key": key, "value": amf_to_json(value)}),
            SoEvent::Success { key } => {
                json!({"op": "ack", "so": so, "version": version, "key": key})
            }
            SoEvent::Remove { key } => {
                json!({"op": "delete", "so": so, "version": version, "key": key})
            }
            SoEvent::SendMessage { method, args } => json!({"op": "message", "so": so,
                "version": version, "method": method,
                "args": args.iter().map(amf_to_json).collect::<Vec<_>>()}),
            SoEvent::Clear => json!({"op": "clear", "so": so, "version": version}),
            SoEvent::Status { code, level } => {
                json!({"op": "error", "so": so, "code": code, "level": level})
            }
            other => json!({"op": "unexpected", "so": so, "event": format!("{other:?}")}),
        })
        .collect()
}

/// AMF0 → JSON as docs/ws-protocol.md specifies (whole numbers up to 2^53
/// as integers, so they compare equal to the WebSocket side's).
pub fn amf_to_json(value: &Value) -> Json {
    let object = |props: &[(String, Value)]| {
        Json::Object(
            props
                .iter()
                .map(|(k, v)| (k.clone(), amf_to_json(v)))
                .collect(),
        )
    };
    match value {
        Value::Number(n) if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 => {
            json!(*n as i64)
        }
        Value::Number(n) => Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::Boolean(b) => Json::Bool(*b),
        Value::String(s) | Value::LongString(s) | Value::XmlDocument(s) => Json::String(s.clone()),
        Value::Object(p) => object(p),
        Value::EcmaArray { properties, .. } | Value::TypedObject { properties, .. } => {
            object(properties)
        }
        Value::StrictArray(items) => Json::Array(items.iter().map(amf_to_json).collect()),
        Value::Date { millis, .. } => json!({ "$date": millis }),
        _ => Json::Null,
    }
}

/// JSON → AMF0: objects become anonymous objects, arrays strict arrays.
pub fn json_to_amf(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::StrictArray(items.iter().map(json_to_amf).collect()),
        Json::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_amf(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_amf_round_trip() {
        let value = json!({"a": [1, 2.5, "x", null, true], "b": {"c": -3}});
        assert_eq!(amf_to_json(&json_to_amf(&value)), value);
    }
}
