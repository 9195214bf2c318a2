//! The client-side commands: `tern so watch`, `tern so set`, `tern trace`.
//!
//! `so` commands speak RTMP with the core's [`ClientConnection`] over a
//! tokio socket and print one JSON object per line, so scripts can read them:
//!
//! ```text
//! {"event":"sync","so":"chat","version":3,"data":{"message":"hi"}}
//! {"event":"change","so":"chat","version":4,"key":"message","value":"hello"}
//! {"event":"delete","so":"chat","version":5,"key":"message"}
//! {"event":"message","so":"chat","version":5,"method":"m","args":[1]}
//! {"event":"clear","so":"chat","version":6}
//! {"event":"status","so":"chat","version":6,"code":"SharedObject.NoWriteAccess","level":"error"}
//! {"event":"ack","so":"chat","version":7,"key":"message"}
//! ```
//!
//! Values map AMF0 ↔ JSON with the core's mapping (`tern_core::ws::json`,
//! the same one WebSocket clients see; DESIGN.md §6).

use serde_json::{Map, Value as Json, json};
use std::fmt;
use std::io::{self, Write};
use std::time::Duration;
use tern_core::message::{SharedObjectMessage, SoEvent};
use tern_core::rtmp::{ClientConfig, ClientConnection, ClientEvent, RtmpError};
use tern_core::trace::{Direction, Tracer};
use tern_core::ws::amf_json::{amf_to_json, json_to_amf};
use tern_core::{Instant, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a tool failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ToolError {
    /// The URL is not `rtmp://host[:port]/app[/room…][?query]`.
    BadUrl(String),
    /// Network trouble.
    Io(io::Error),
    /// The RTMP session failed.
    Rtmp(RtmpError),
    /// The server refused the connect.
    ConnectFailed { code: String, description: String },
    /// The server refused the shared-object operation.
    Refused { code: String },
    /// The server closed the connection.
    Closed,
    /// No answer in time.
    Timeout,
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::BadUrl(why) => write!(f, "bad URL: {why}"),
            ToolError::Io(e) => write!(f, "{e}"),
            ToolError::Rtmp(e) => write!(f, "{e}"),
            ToolError::ConnectFailed { code, description } => {
                write!(f, "connect refused: {code}: {description}")
            }
            ToolError::Refused { code } => write!(f, "refused: {code}"),
            ToolError::Closed => f.write_str("the server closed the connection"),
            ToolError::Timeout => f.write_str("no answer from the server in time"),
        }
    }
}

impl std::error::Error for ToolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ToolError::Io(e) => Some(e),
            ToolError::Rtmp(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ToolError {
    fn from(e: io::Error) -> Self {
        ToolError::Io(e)
    }
}

impl From<RtmpError> for ToolError {
    fn from(e: RtmpError) -> Self {
        ToolError::Rtmp(e)
    }
}

/// A parsed `rtmp://host[:port]/app[/room…][?query]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `host:port` to connect to (port 1935 if none).
    pub address: String,
    /// `app[/room…][?query]`: the connect `app`.
    pub app: String,
    /// The whole URL (the connect `tcUrl`).
    pub tc_url: String,
}

impl RtmpUrl {
    /// Parses an RTMP URL.
    pub fn parse(url: &str) -> Result<RtmpUrl, ToolError> {
        let rest = url
            .strip_prefix("rtmp://")
            .ok_or_else(|| ToolError::BadUrl(format!("{url:?} does not start with rtmp://")))?;
        let (host, app) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(ToolError::BadUrl(format!("{url:?} has no host")));
        }
        if app.trim_matches('/').is_empty() {
            return Err(ToolError::BadUrl(format!("{url:?} names no application")));
        }
        let address = if host.starts_with('[') || host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:1935")
        };
        Ok(RtmpUrl {
            address,
            app: app.to_owned(),
            tc_url: url.to_owned(),
        })
    }
}

/// One JSON line per event of a shared-object message. A use's answer
/// (use-success, clear, changes) becomes one `sync` line.
pub fn so_json_lines(message: &SharedObjectMessage) -> Vec<Json> {
    let base = |event: &str| {
        let mut m = Map::new();
        m.insert("event".into(), json!(event));
        m.insert("so".into(), json!(message.name));
        m.insert("version".into(), json!(message.version));
        m
    };
    if message.events.first() == Some(&SoEvent::UseSuccess) {
        let mut data = Map::new();
        for event in &message.events {
            if let SoEvent::Change { key, value } = event {
                data.insert(key.clone(), amf_to_json(value));
            }
        }
        let mut m = base("sync");
        m.insert("data".into(), Json::Object(data));
        return vec![Json::Object(m)];
    }
    message
        .events
        .iter()
        .filter_map(|event| {
            let mut m;
            match event {
                SoEvent::Change { key, value } => {
                    m = base("change");
                    m.insert("key".into(), json!(key));
                    m.insert("value".into(), amf_to_json(value));
                }
                SoEvent::Success { key } => {
                    m = base("ack");
                    m.insert("key".into(), json!(key));
                }
                SoEvent::Remove { key } => {
                    m = base("delete");
                    m.insert("key".into(), json!(key));
                }
                SoEvent::SendMessage { method, args } => {
                    m = base("message");
                    m.insert("method".into(), json!(method));
                    m.insert(
                        "args".into(),
                        Json::Array(args.iter().map(amf_to_json).collect()),
                    );
                }
                SoEvent::Clear => m = base("clear"),
                SoEvent::Status { code, level } => {
                    m = base("status");
                    m.insert("code".into(), json!(code));
                    m.insert("level".into(), json!(level));
                }
                _ => return None,
            }
            Some(Json::Object(m))
        })
        .collect()
}

/// A connected RTMP client session over TCP.
struct Session {
    socket: TcpStream,
    conn: ClientConnection,
    started: std::time::Instant,
    buf: Vec<u8>,
}

impl Session {
    async fn open(url: &RtmpUrl) -> Result<Session, ToolError> {
        let socket = TcpStream::connect(&url.address).await?;
        socket.set_nodelay(true)?;
        let started = std::time::Instant::now();
        let random = random_block();
        let conn = ClientConnection::new(
            ClientConfig::new(url.app.clone(), url.tc_url.clone()),
            Instant::ZERO,
            &random,
        );
        let mut session = Session {
            socket,
            conn,
            started,
            buf: vec![0; 64 * 1024],
        };
        loop {
            match session.next_event().await? {
                ClientEvent::Connected { .. } => return Ok(session),
                ClientEvent::ConnectFailed { code, description } => {
                    return Err(ToolError::ConnectFailed { code, description });
                }
                _ => {}
            }
        }
    }

    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    async fn flush(&mut self) -> Result<(), ToolError> {
        while let Some(bytes) = self.conn.poll_transmit() {
            self.socket.write_all(&bytes).await?;
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<ClientEvent, ToolError> {
        loop {
            self.flush().await?;
            if let Some(event) = self.conn.poll_event() {
                return Ok(event);
            }
            let n = self.socket.read(&mut self.buf).await?;
            if n == 0 {
                return Err(ToolError::Closed);
            }
            let now = self.now();
            let data = self.buf.get(..n).unwrap_or_default().to_vec();
            self.conn.handle_input(now, &data)?;
        }
    }
}

/// Handshake filler bytes: no secret, only variety between runs.
fn random_block() -> [u8; tern_core::rtmp::handshake::RANDOM_LEN] {
    let mut block = [0u8; tern_core::rtmp::handshake::RANDOM_LEN];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut x = seed;
    for b in &mut block {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x.to_le_bytes()[0];
    }
    block
}

fn print_line(out: &mut impl Write, line: &Json) -> Result<(), ToolError> {
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// `tern so watch`: prints the object's state, then every change, until the
/// server closes the connection.
pub async fn so_watch(
    url: &str,
    name: &str,
    persistent: bool,
    out: &mut impl Write,
) -> Result<(), ToolError> {
    let url = RtmpUrl::parse(url)?;
    let mut session = Session::open(&url).await?;
    session.conn.so_use(name, persistent)?;
    loop {
        match session.next_event().await? {
            ClientEvent::SharedObject(message) if message.name == name => {
                for line in so_json_lines(&message) {
                    print_line(out, &line)?;
                }
            }
            ClientEvent::Status {
                code, description, ..
            } if code == "NetConnection.Connect.Closed" => {
                print_line(out, &json!({"event": "closed", "reason": description}))?;
                return Ok(());
            }
            _ => {}
        }
    }
}

/// `tern so set`: sets one attribute and waits for the server's ack.
/// Returns the acknowledged version.
pub async fn so_set(
    url: &str,
    name: &str,
    persistent: bool,
    key: &str,
    value: &Json,
    out: &mut impl Write,
) -> Result<u32, ToolError> {
    let url = RtmpUrl::parse(url)?;
    let work = async {
        let mut session = Session::open(&url).await?;
        session.conn.so_use(name, persistent)?;
        session
            .conn
            .so_set(name, persistent, vec![(key.to_owned(), json_to_amf(value))])?;
        loop {
            if let ClientEvent::SharedObject(message) = session.next_event().await? {
                for event in &message.events {
                    match event {
                        SoEvent::Success { key: acked } if acked == key => {
                            print_line(
                                out,
                                &json!({"event": "ack", "so": name, "version": message.version, "key": key}),
                            )?;
                            return Ok(message.version);
                        }
                        SoEvent::Status { code, .. } => {
                            return Err(ToolError::Refused { code: code.clone() });
                        }
                        _ => {}
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| ToolError::Timeout)?
}

/// `tern trace`: renders a raw capture. With no direction given, a capture
/// whose first message is `connect` is read as client-to-server.
pub fn trace(bytes: &[u8], direction: Option<Direction>, out: &mut impl Write) -> io::Result<()> {
    let limits = Limits::default();
    let direction = direction.unwrap_or_else(|| {
        let lines = tern_core::trace::render_capture(Direction::ClientToServer, bytes, &limits);
        if lines.iter().any(|l| l.contains(" command connect ")) {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        }
    });
    let mut tracer = Tracer::new(direction, &limits);
    let result = tracer.feed(bytes);
    tracer.finish();
    while let Some(line) = tracer.poll_line() {
        writeln!(out, "{line}")?;
    }
    if let Err(e) = result {
        return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::amf0::Value;

    #[test]
    fn urls() {
        let u = RtmpUrl::parse("rtmp://127.0.0.1/chat/room1").unwrap();
        assert_eq!(u.address, "127.0.0.1:1935");
        assert_eq!(u.app, "chat/room1");
        let u = RtmpUrl::parse("rtmp://h:19350/chat?scope=a").unwrap();
        assert_eq!(
            (u.address.as_str(), u.app.as_str()),
            ("h:19350", "chat?scope=a")
        );
        assert!(RtmpUrl::parse("http://h/chat").is_err());
        assert!(RtmpUrl::parse("rtmp://h/").is_err());
    }

    /// A client-side capture: handshake, then a chunked `connect`.
    fn capture() -> Vec<u8> {
        use tern_core::chunk::{ChunkEncoder, RawMessage};
        use tern_core::message::{Command, Message};
        let mut bytes = vec![3u8];
        bytes.extend(std::iter::repeat_n(0u8, 2 * 1536));
        let mut connect = Command::new("connect", 1.0, Vec::new());
        connect.command_object = Value::object([("app", Value::string("live"))]);
        let (type_id, payload) = Message::Command(connect).encode();
        let mut out = bytes::BytesMut::new();
        ChunkEncoder::new().encode(
            &RawMessage {
                csid: 3,
                timestamp: 0,
                type_id,
                stream_id: 0,
                payload,
            },
            &mut out,
        );
        bytes.extend_from_slice(&out);
        bytes
    }

    #[test]
    fn trace_renders_a_capture_and_guesses_its_direction() {
        let mut out = Vec::new();
        trace(&capture(), None, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("C→S handshake C0 version=3"), "{text}");
        assert!(text.contains("C→S csid=3 ts=0"), "{text}");
        assert!(
            text.contains(r#"command connect tx=1 {app: "live"}"#),
            "{text}"
        );
        // RTMPE's version byte: a clear error, not a panic.
        let mut out = Vec::new();
        assert!(trace(&[6, 1, 2], Some(Direction::ClientToServer), &mut out).is_err());
    }

    #[test]
    fn json_mapping_round_trips() {
        let j: Json = serde_json::from_str(r#"{"a":[1,true,null,"x"],"d":{"$date":5}}"#).unwrap();
        let amf = json_to_amf(&j);
        assert_eq!(
            amf.get("d"),
            Some(&Value::Date {
                millis: 5.0,
                time_zone: 0
            })
        );
        assert_eq!(
            amf_to_json(&amf),
            serde_json::from_str::<Json>(r#"{"a":[1,true,null,"x"],"d":{"$date":5}}"#).unwrap()
        );
        assert_eq!(amf_to_json(&Value::Number(f64::NAN)), Json::Null);
    }
}
