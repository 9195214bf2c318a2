//! The WebSocket side of a simulated client: `tokio-tungstenite`'s
//! `client_async` over a turmoil `TcpStream` to the server's HTTP port,
//! speaking tern's JSON protocol v1 (`docs/ws-protocol.md`).
//!
//! Every server message becomes a [`SharedObjectMessage`] for the same
//! [`SoReplica`] an RTMP client feeds: `sync` is a use-success with clear
//! and one change per key; `ack`, `change`, `delete` and `clear` are the
//! events of a batch; `message` is a broadcast; an `error` about an object
//! is a status (a refusal). JSON has one message per key where RTMP has
//! one message per batch, so consecutive data messages of one object at
//! one version are gathered into one batch before the replica sees them
//! (an exact repeat inside such a batch is reported as a repeated change).
//! The protocol's `set` carries one key, so a client's multi-key `Op::Set`
//! goes out as one batch per key.

use super::{
    CONNECT_TIMEOUT, Client, End, PROBE_EVERY, SILENCE_LIMIT, SoWire, WRITE_TIMEOUT, hash_so, ms,
    sim_now,
};
use crate::net::{HTTP_PORT, SERVER};
use crate::report::ViolationKind;
use crate::rng::SimRng;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value as Json, json};
use std::time::Duration;
use tern_core::amf0::Value;
use tern_core::message::{SharedObjectMessage, SoEvent};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long a leaving client waits to get its close frame out.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(100);

/// What one text message from the server means.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ServerMsg {
    /// `welcome`: the hub accepted the connection into `scope`.
    Welcome { scope: String },
    /// A shared-object message; `data` for the events of a batch (`ack`,
    /// `change`, `delete`, `clear`), which may span several messages.
    So {
        msg: SharedObjectMessage,
        data: bool,
    },
    /// `error` not about an object (a message the server could not take).
    Error { code: String, message: String },
}

/// Reads one JSON text message of protocol v1 into a [`ServerMsg`];
/// `persistent` gives an object's persistence flag (JSON does not carry it).
pub(crate) fn parse_server_msg(
    text: &str,
    persistent: impl Fn(&str) -> bool,
) -> Result<ServerMsg, String> {
    let json: Json = serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {text}"))?;
    let str_field = |name: &str| {
        json.get(name)
            .and_then(Json::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no string {name:?} in {text}"))
    };
    let op = str_field("op")?;
    if op == "welcome" {
        return Ok(ServerMsg::Welcome {
            scope: str_field("scope")?,
        });
    }
    if op == "error" && json.get("so").is_none() {
        return Ok(ServerMsg::Error {
            code: str_field("code")?,
            message: str_field("message").unwrap_or_default(),
        });
    }
    let name = str_field("so")?;
    let version = || {
        json.get("version")
            .and_then(Json::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("no version in {text}"))
    };
    let value = |name: &str| {
        json.get(name)
            .map(json_to_value)
            .ok_or_else(|| format!("no {name:?} in {text}"))
    };
    let (version, events, data) = match op.as_str() {
        "sync" => {
            let Some(data) = json.get("data").and_then(Json::as_object) else {
                return Err(format!("sync without data object: {text}"));
            };
            let mut events = vec![SoEvent::UseSuccess, SoEvent::Clear];
            events.extend(data.iter().map(|(k, v)| SoEvent::Change {
                key: k.clone(),
                value: json_to_value(v),
            }));
            (version()?, events, false)
        }
        "ack" => (
            version()?,
            vec![SoEvent::Success {
                key: str_field("key")?,
            }],
            true,
        ),
        "change" => (
            version()?,
            vec![SoEvent::Change {
                key: str_field("key")?,
                value: value("value")?,
            }],
            true,
        ),
        "delete" => (
            version()?,
            vec![SoEvent::Remove {
                key: str_field("key")?,
            }],
            true,
        ),
        "clear" => (version()?, vec![SoEvent::Clear], true),
        "message" => {
            let args = match json.get("args") {
                None => Vec::new(),
                Some(Json::Array(items)) => items.iter().map(json_to_value).collect(),
                Some(_) => return Err(format!("message args not an array: {text}")),
            };
            let event = SoEvent::SendMessage {
                method: str_field("method")?,
                args,
            };
            (version()?, vec![event], false)
        }
        "error" => {
            // A refusal: no version; the replica reports any status.
            let event = SoEvent::Status {
                code: str_field("code")?,
                level: "error".to_owned(),
            };
            (0, vec![event], false)
        }
        other => return Err(format!("unknown op {other:?}: {text}")),
    };
    Ok(ServerMsg::So {
        msg: SharedObjectMessage {
            persistent: persistent(&name),
            name,
            version,
            events,
        },
        data,
    })
}

/// JSON → AMF0 as the protocol maps it, for the values the simulator
/// writes and reads back: numbers, strings, booleans, null, arrays and
/// plain objects.
fn json_to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Value::string(s.clone()),
        Json::Array(items) => Value::StrictArray(items.iter().map(json_to_value).collect()),
        Json::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        ),
    }
}

/// AMF0 → JSON for what the simulator writes (integral numbers become JSON
/// integers, as the server renders them).
fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Json::from(*n as i64),
        Value::Number(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::Boolean(b) => Json::Bool(*b),
        Value::String(s) | Value::LongString(s) => Json::String(s.clone()),
        Value::StrictArray(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Object(props) => Json::Object(
            props
                .iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect::<Map<String, Json>>(),
        ),
        _ => Json::Null,
    }
}

/// A `Sec-WebSocket-Key` drawn from the seed (tungstenite's own comes from
/// the thread RNG): base64 of 16 bytes.
fn ws_key(rng: &mut SimRng) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = (0..16).map(|_| rng.next_u64() as u8).collect();
    let mut out = String::with_capacity(24);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let c = ALPHABET.get(((n >> shift) & 63) as usize).copied();
                out.push(char::from(c.unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The per-connection state of a WebSocket client.
struct WsSession {
    /// `welcome` received: the hub accepted the connection.
    welcomed: bool,
    last_rx: Duration,
    last_probe: Duration,
    /// Messages to send, in order.
    outbox: Vec<Message>,
    /// Data messages of one object at one version, not applied yet.
    batch: Option<SharedObjectMessage>,
}

impl WsSession {
    fn text(&mut self, json: Json) {
        self.outbox.push(Message::text(json.to_string()));
    }
}

impl SoWire for WsSession {
    fn so_use(&mut self, name: &str, persistent: bool) {
        self.text(json!({"op": "use", "so": name, "persistent": persistent}));
    }

    fn so_set(
        &mut self,
        name: &str,
        _persistent: bool,
        changes: Vec<(String, Value)>,
    ) -> Vec<Vec<(String, Value)>> {
        changes
            .into_iter()
            .map(|(key, value)| {
                let v = value_to_json(&value);
                self.text(json!({"op": "set", "so": name, "key": key, "value": v}));
                vec![(key, value)]
            })
            .collect()
    }

    fn so_delete(&mut self, name: &str, _persistent: bool, key: &str) {
        self.text(json!({"op": "delete", "so": name, "key": key}));
    }

    fn so_send(&mut self, name: &str, _persistent: bool, method: &str, args: Vec<Value>) {
        let args: Vec<Json> = args.iter().map(value_to_json).collect();
        self.text(json!({"op": "send", "so": name, "method": method, "args": args}));
    }

    fn so_release(&mut self, name: &str, _persistent: bool) {
        self.text(json!({"op": "release", "so": name}));
    }
}

impl Client {
    /// The URL of this connection: the path form (`/live/r0`, offering
    /// subprotocol `tern.v1`) and the query form (`/live?scope=r0`, no
    /// subprotocol) alternate by client index and connection count, so
    /// both forms and both ways of selecting the JSON protocol are used.
    fn ws_url(&self) -> (String, bool) {
        let room = &self.spec.room;
        if (self.index + self.connects).is_multiple_of(2) {
            (format!("ws://{SERVER}:{HTTP_PORT}/live/{room}"), true)
        } else {
            (
                format!("ws://{SERVER}:{HTTP_PORT}/live?scope={room}"),
                false,
            )
        }
    }

    /// One WebSocket connection, from the upgrade until it ends.
    pub(super) async fn ws_session(&mut self, stream: turmoil::net::TcpStream) -> End {
        let (url, subprotocol) = self.ws_url();
        let mut request = match url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => {
                self.violate(ViolationKind::Protocol, format!("bad URL {url}: {e}"));
                return End::Lost(format!("bad URL: {e}"));
            }
        };
        let key = ws_key(&mut self.rng);
        if let Ok(key) = HeaderValue::from_str(&key) {
            request.headers_mut().insert("Sec-WebSocket-Key", key);
        }
        if subprotocol {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("tern.v1"),
            );
        }
        self.log(|| format!("upgrade {url}"));
        let upgrade = tokio_tungstenite::client_async(request, stream);
        let ws = match tokio::time::timeout(CONNECT_TIMEOUT, upgrade).await {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(WsError::Http(response))) => {
                let status = response.status();
                self.violate(
                    ViolationKind::Protocol,
                    format!("upgrade to {url} refused: {status}"),
                );
                return End::Lost(format!("upgrade refused: {status}"));
            }
            Ok(Err(e)) => return End::Lost(format!("upgrade failed: {e}")),
            Err(_) => return End::Lost("upgrade timed out".to_owned()),
        };
        let (mut tx, mut rx) = ws.split();
        let now = sim_now();
        let mut s = WsSession {
            welcomed: false,
            last_rx: now,
            last_probe: now,
            outbox: Vec::new(),
            batch: None,
        };
        self.skip_missed_ops(now);
        let end = self.ws_loop(&mut s, &mut tx, &mut rx).await;
        self.flush_batch(&mut s);
        // Every other connection (by client and connection count) says
        // goodbye with a close frame when it leaves; the others just drop
        // the TCP connection, so the server sees both kinds of leaving.
        let polite = (self.index / 2 + self.connects).is_multiple_of(2);
        if polite && matches!(end, End::Leave(_) | End::Done) {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, tx.send(Message::Close(None))).await;
        }
        end
    }

    async fn ws_loop<Tx, Rx>(&mut self, s: &mut WsSession, tx: &mut Tx, rx: &mut Rx) -> End
    where
        Tx: futures_util::Sink<Message, Error = WsError> + Unpin,
        Rx: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
    {
        loop {
            if !s.outbox.is_empty() {
                let out = std::mem::take(&mut s.outbox);
                let write = async {
                    for m in out {
                        tx.feed(m).await?;
                    }
                    tx.flush().await
                };
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return End::Lost(format!("write failed: {e}")),
                    Err(_) => return End::Lost("write blocked".to_owned()),
                }
            }
            let now = sim_now();
            if now >= self.timeline.check_at {
                self.flush_batch(s);
                self.maybe_snapshot(s.welcomed);
            }
            if now >= self.timeline.leave_at {
                return End::Done;
            }
            let paused = self.shared.borrow().paused || now < self.paused_until;
            if paused {
                // Silence while frozen is not the server's fault.
                s.last_rx = now;
            } else {
                if now.saturating_sub(s.last_rx) > SILENCE_LIMIT {
                    return End::Lost(format!(
                        "server silent for {} ms",
                        ms(now.saturating_sub(s.last_rx))
                    ));
                }
                if s.welcomed {
                    self.resync_refused(s);
                }
                // Operations wait for the hub's welcome (uses go first).
                while s.welcomed && self.ops.front().is_some_and(|(at, _)| *at <= now) {
                    let Some((_, op)) = self.ops.pop_front() else {
                        break;
                    };
                    if let Some(end) = self.perform(s, op, now) {
                        return end;
                    }
                }
                if now.saturating_sub(s.last_rx) >= PROBE_EVERY
                    && now.saturating_sub(s.last_probe) >= PROBE_EVERY
                {
                    // Answered with a pong: silence always means trouble.
                    s.outbox.push(Message::Ping(Default::default()));
                    s.last_probe = now;
                }
                if !s.outbox.is_empty() {
                    continue;
                }
            }
            let wake = self.ws_next_wake(s, now, paused);
            tokio::select! {
                biased;
                next = rx.next(), if !paused => {
                    let message = match next {
                        None => return End::Lost("closed by the server".to_owned()),
                        Some(Err(e)) => return End::Lost(format!("read failed: {e}")),
                        Some(Ok(m)) => m,
                    };
                    s.last_rx = sim_now();
                    let len = message.len();
                    match message {
                        Message::Text(text) => {
                            if let Some(end) = self.on_ws_text(s, text.as_str()) {
                                return end;
                            }
                        }
                        Message::Close(frame) => {
                            let why = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default();
                            self.log(|| format!("close {why}"));
                            return End::Lost(format!("closed by the server: {why}"));
                        }
                        Message::Binary(_) => {
                            self.violate(ViolationKind::Protocol, "binary message from the server");
                        }
                        // Pongs answer probes, pings are answered by
                        // tungstenite: timing, not content.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                    if let Some(rate) = self.spec.read_rate {
                        let pause = Duration::from_millis((len as u64 * 1000).div_ceil(rate.max(1)));
                        tokio::time::sleep(pause).await;
                    }
                }
                () = tokio::time::sleep(wake.saturating_sub(now)) => {}
            }
        }
    }

    fn ws_next_wake(&self, s: &WsSession, now: Duration, paused: bool) -> Duration {
        let mut wake = self.timeline.leave_at;
        let mut consider = |t: Duration| {
            if t < wake {
                wake = t;
            }
        };
        if now < self.timeline.check_at {
            consider(self.timeline.check_at);
        }
        if paused {
            consider(now + Duration::from_millis(20));
            return wake.max(now);
        }
        if s.welcomed
            && let Some((at, _)) = self.ops.front()
        {
            consider(*at);
        }
        consider((s.last_rx + PROBE_EVERY).max(s.last_probe + PROBE_EVERY));
        consider(s.last_rx + SILENCE_LIMIT + Duration::from_millis(1));
        wake.max(now)
    }

    /// Handles one text message; `Some` ends the connection.
    fn on_ws_text(&mut self, s: &mut WsSession, text: &str) -> Option<End> {
        self.log(|| format!("ws {text}"));
        let replicas = &self.replicas;
        let persistent = |name: &str| replicas.iter().any(|r| r.name == name && r.persistent);
        let parsed = match parse_server_msg(text, persistent) {
            Ok(m) => m,
            Err(e) => {
                self.violate(ViolationKind::Protocol, format!("client rejects: {e}"));
                return Some(End::Lost(format!("protocol error: {e}")));
            }
        };
        match parsed {
            ServerMsg::Welcome { scope } => {
                self.hash("conn", |h| {
                    h.write_str("connected");
                    h.write_str(&scope);
                });
                let expected = format!("/live/{}", self.spec.room);
                if scope != expected {
                    self.violate(
                        ViolationKind::Protocol,
                        format!("welcome to {scope}, expected {expected}"),
                    );
                }
                if s.welcomed {
                    self.violate(ViolationKind::Protocol, "second welcome");
                    return None;
                }
                s.welcomed = true;
                self.shared.borrow_mut().obs.sessions += 1;
                for i in 0..self.replicas.len() {
                    if self.wanted.get(i).copied().unwrap_or(false) {
                        self.use_object(s, i);
                    }
                }
            }
            ServerMsg::Error { code, message } => {
                self.hash("conn", |h| h.write_str(&code));
                self.violate(
                    ViolationKind::SoRefused,
                    format!("server error {code}: {message}"),
                );
            }
            ServerMsg::So { msg, data } => {
                self.hash(&format!("so:{}", msg.name), |h| hash_so(h, &msg));
                if !data {
                    self.flush_batch(s);
                    self.on_shared_object(&msg);
                    return None;
                }
                match &mut s.batch {
                    Some(batch) if batch.name == msg.name && batch.version == msg.version => {
                        for event in msg.events {
                            if batch.events.contains(&event) {
                                self.violate(
                                    ViolationKind::SoVersion,
                                    format!(
                                        "{}: {event:?} twice at version {} (repeated)",
                                        msg.name, msg.version
                                    ),
                                );
                            } else {
                                batch.events.push(event);
                            }
                        }
                    }
                    _ => {
                        self.flush_batch(s);
                        s.batch = Some(msg);
                    }
                }
            }
        }
        None
    }

    /// Applies the gathered batch, if any.
    fn flush_batch(&mut self, s: &mut WsSession) {
        if let Some(batch) = s.batch.take() {
            self.on_shared_object(&batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ServerMsg {
        parse_server_msg(text, |name| name == "board").unwrap()
    }

    #[test]
    fn server_messages_become_replica_events() {
        assert_eq!(
            parse(r#"{"op":"welcome","scope":"/live/r0"}"#),
            ServerMsg::Welcome {
                scope: "/live/r0".into()
            }
        );
        let ServerMsg::So { msg, data } =
            parse(r#"{"op":"sync","so":"board","version":4,"data":{"a":1,"b":"x"}}"#)
        else {
            panic!("not an SO message");
        };
        assert!(!data && msg.persistent);
        assert_eq!(msg.version, 4);
        assert_eq!(
            msg.events,
            vec![
                SoEvent::UseSuccess,
                SoEvent::Clear,
                SoEvent::Change {
                    key: "a".into(),
                    value: Value::Number(1.0)
                },
                SoEvent::Change {
                    key: "b".into(),
                    value: Value::string("x")
                },
            ]
        );
        let ServerMsg::So { msg, data } =
            parse(r#"{"op":"ack","so":"chat","version":5,"key":"k"}"#)
        else {
            panic!("not an SO message");
        };
        assert!(data && !msg.persistent);
        assert_eq!(msg.events, vec![SoEvent::Success { key: "k".into() }]);
        let ServerMsg::So { msg, data } =
            parse(r#"{"op":"message","so":"chat","version":5,"method":"chat","args":["hi",2]}"#)
        else {
            panic!("not an SO message");
        };
        assert!(!data);
        assert_eq!(
            msg.events,
            vec![SoEvent::SendMessage {
                method: "chat".into(),
                args: vec![Value::string("hi"), Value::Number(2.0)]
            }]
        );
        let ServerMsg::So { msg, .. } = parse(
            r#"{"op":"error","so":"chat","code":"SharedObject.NoWriteAccess","message":"no"}"#,
        ) else {
            panic!("not an SO message");
        };
        assert!(
            matches!(&msg.events[..], [SoEvent::Status { code, .. }] if code == "SharedObject.NoWriteAccess")
        );
        assert!(matches!(
            parse(r#"{"op":"error","code":"Protocol.UnknownOp","message":"?"}"#),
            ServerMsg::Error { .. }
        ));
        assert!(parse_server_msg(r#"{"op":"dance"}"#, |_| false).is_err());
        assert!(parse_server_msg("nope", |_| false).is_err());
    }

    #[test]
    fn values_map_like_the_protocol_says() {
        for v in [
            Value::Number(20_000_030.0),
            Value::Number(1.5),
            Value::string("c3 says 4"),
            Value::Boolean(true),
            Value::Null,
        ] {
            assert_eq!(json_to_value(&value_to_json(&v)), v);
        }
        assert_eq!(value_to_json(&Value::Number(7.0)).to_string(), "7");
    }

    #[test]
    fn keys_are_base64_of_16_bytes() {
        let mut rng = SimRng::fork(1, 2);
        let key = ws_key(&mut rng);
        assert_eq!(key.len(), 24);
        assert!(key.ends_with("=="));
        assert_ne!(key, ws_key(&mut rng));
    }
}
