//! One live FLV player over HTTP (`GET /{app}/{room…}/{stream}.flv`,
//! chunked) or over WebSocket (the same path as an upgrade, binary frames).

use super::fanout::{Framing, media_encoder};
use super::tag::FILE_HEADER;
use crate::amf0::Value;
use crate::connection::CloseReason;
use crate::connection::SharedEncoding;
use crate::hub::{ConnectRequest, Delivery, Level, RejectCode, Request};
use crate::queue::{OutputQueue, release_queue};
use crate::time::{Duration, Instant};
use crate::ws::frame::{self, Decoder, Incoming, Opcode, close_code};
use crate::ws::handshake::{self, MAX_HEAD};
use crate::ws::{ProtocolError, UpgradeError};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use core::net::IpAddr;

/// The message stream id an FLV player plays on (it has only one).
const PLAY_STREAM: u32 = 1;

/// Largest WebSocket message an FLV player may send (it sends none but
/// control frames).
const MAX_CLIENT_MESSAGE: usize = 4096;

/// Settings of FLV connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlvConfig {
    /// Origins allowed to read the stream (`Access-Control-Allow-Origin`);
    /// `"*"` allows every origin.
    pub cors_origins: Vec<String>,
    /// Time the request head may take to arrive.
    pub head_timeout: Duration,
}

impl Default for FlvConfig {
    fn default() -> Self {
        FlvConfig {
            cors_origins: alloc::vec![String::from("*")],
            head_timeout: Duration::from_secs(10),
        }
    }
}

/// What an FLV request path names: `/{app}/{room…}/{stream}.flv[?query]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlvTarget {
    /// `app[/room…][?query]`: the scope to join (the hub validates it).
    pub scope: String,
    /// `stream[?query]`: the live stream to play.
    pub stream: String,
}

impl FlvTarget {
    /// Splits a request target (leading `/` optional); `None` unless the
    /// last path segment ends in `.flv` with a name before it and an app
    /// comes first.
    pub fn parse(target: &str) -> Option<FlvTarget> {
        let (path, query) = crate::scope_path::split_query(target);
        let path = path.trim_start_matches('/');
        let (scope, file) = path.rsplit_once('/')?;
        let stream = file.strip_suffix(".flv")?;
        if scope.is_empty() || stream.is_empty() {
            return None;
        }
        let with_query = |s: &str| {
            if query.is_empty() {
                String::from(s)
            } else {
                let mut out = String::from(s);
                out.push('?');
                out.push_str(query);
                out
            }
        };
        Some(FlvTarget {
            scope: with_query(scope),
            stream: with_query(stream),
        })
    }

    /// True if `path` (no query) looks like an FLV stream path; for routing.
    pub fn matches(path: &str) -> bool {
        path.ends_with(".flv")
    }
}

/// Why an FLV connection closes. [`FlvConnection::handle_input`] returns
/// the fatal input errors; [`FlvConnection::close_reason`] reports every
/// reason.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum FlvError {
    /// The request was not one we serve (an HTTP error answer is queued).
    BadRequest { status: u16, why: String },
    /// The WebSocket upgrade was refused (a 400 or 426 answer is queued).
    Handshake(UpgradeError),
    /// A WebSocket framing rule was broken (a close frame is queued).
    Protocol(ProtocolError),
    /// The request head did not arrive in time.
    HeadTimeout { ms: u64 },
    /// The hub refused the connect (403 or close 1008 queued).
    Rejected {
        /// The status code an RTMP client would get.
        code: RejectCode,
        /// The hub's description.
        description: String,
    },
    /// The hub refused the play (404 or close 1008 queued).
    NotFound { description: String },
    /// The stream was unpublished: the FLV stream ended. Not a failure.
    Ended,
    /// The peer closed its WebSocket. Not a failure.
    PeerClosed,
    /// The hub closed the connection (a lagging player, a shutdown).
    ServerClosed { reason: String },
}

impl fmt::Display for FlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlvError::BadRequest { status, why } => write!(f, "bad FLV request ({status}): {why}"),
            FlvError::Handshake(e) => write!(f, "WebSocket upgrade refused: {e}"),
            FlvError::Protocol(e) => write!(f, "WebSocket protocol error: {e}"),
            FlvError::HeadTimeout { ms } => write!(f, "no request head within {ms} ms"),
            FlvError::Rejected { description, .. } => {
                write!(f, "connect refused: {description}")
            }
            FlvError::NotFound { description } => write!(f, "play refused: {description}"),
            FlvError::Ended => f.write_str("the stream ended (unpublished)"),
            FlvError::PeerClosed => f.write_str("the client closed the WebSocket"),
            FlvError::ServerClosed { reason } => write!(f, "closed by the server: {reason}"),
        }
    }
}

impl core::error::Error for FlvError {}

impl crate::connection::Failure for FlvError {
    fn is_timeout(&self) -> bool {
        matches!(self, FlvError::HeadTimeout { .. })
    }
}

impl FlvError {
    /// The protocol-neutral close this is.
    fn close(self) -> CloseReason<FlvError> {
        match self {
            FlvError::Rejected { code, description } => CloseReason::Rejected { code, description },
            FlvError::Ended => CloseReason::Server {
                reason: String::from("the stream ended (unpublished)"),
            },
            FlvError::ServerClosed { reason } => CloseReason::Server { reason },
            FlvError::PeerClosed => CloseReason::Peer { code: None },
            other => CloseReason::Failed(other),
        }
    }
}

/// The name FLV players' connections are counted and hooked under.
pub const PROTOCOL: crate::hub::Protocol = crate::hub::Protocol::new("flv");

crate::connection::delegate_connection!(FlvConnection, FlvError);

#[derive(Debug)]
enum Phase {
    /// Collecting the request head.
    Head(Vec<u8>),
    /// Asked the hub to connect and play; nothing sent yet (HTTP) or only
    /// the `101` (WebSocket).
    Waiting { decoder: Option<Decoder> },
    /// The FLV header went out; tags follow.
    Streaming { decoder: Option<Decoder> },
}

/// The server side of one FLV player, over HTTP or WebSocket.
///
/// Call order: as every server connection's ([`crate::rtmp`] documents
/// it; [`crate::connection::Connection`] is implemented):
/// 1. `handle_input(now, bytes)` from the first byte of the request on;
///    `Err` closes the connection after flushing 4.
/// 2. `poll_event()` until `None`, into the hub: a [`Request::Connect`]
///    (protocol [`Protocol::Flv`]) and a [`Request::Play`] once the head is
///    read.
/// 3. `handle_delivery(now, d)` while `pending_bytes()` is small: the play's
///    start sends `200` (or the `101` already went) and the FLV header,
///    then each relayed message is its shared encoding (a chunk or a
///    binary frame), as is.
/// 4. `poll_transmit()` until `None`, in order.
/// 5. `handle_timeout(now)` at `poll_timeout()` (the head's deadline).
///
/// Once `is_closing()`, flush and close; `close_reason()` says why. An
/// unpublish ends the response (the last chunk, or a close frame 1000):
/// the player reconnects for the next publish, whose clock starts anew.
#[derive(Debug)]
pub struct FlvConnection {
    config: FlvConfig,
    framing: Framing,
    phase: Phase,
    peer: Option<IpAddr>,
    /// `Access-Control-Allow-Origin` value for this request, if any.
    allow_origin: Option<String>,
    events: VecDeque<Request>,
    /// The bytes for the socket.
    transmit: OutputQueue,
    started: Instant,
    /// A HEAD request: the response head only.
    head_only: bool,
    done: bool,
    reason: Option<Box<FlvError>>,
    /// `reason` as the common close model has it.
    close: Option<Box<CloseReason<FlvError>>>,
    fatal: Option<Box<FlvError>>,
}

impl FlvConnection {
    /// A connection whose request starts arriving now: an HTTP-FLV request
    /// (`framing` [`Framing::HttpChunked`]) or a WebSocket upgrade
    /// ([`Framing::WebSocket`]). [`Framing::Raw`] is taken as HTTP.
    pub fn new(config: FlvConfig, framing: Framing, now: Instant, peer: Option<IpAddr>) -> Self {
        let framing = match framing {
            Framing::Raw => Framing::HttpChunked,
            other => other,
        };
        FlvConnection {
            config,
            framing,
            phase: Phase::Head(Vec::new()),
            peer,
            allow_origin: None,
            events: VecDeque::new(),
            transmit: OutputQueue::new(true),
            started: now,
            head_only: false,
            done: false,
            reason: None,
            close: None,
            fatal: None,
        }
    }

    /// Takes bytes read from the socket.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), FlvError> {
        let _ = now;
        if let Some(e) = &self.fatal {
            return Err(FlvError::clone(e));
        }
        if self.done {
            return Ok(());
        }
        match &mut self.phase {
            Phase::Head(head) => {
                let old = head.len();
                let take = data.len().min(MAX_HEAD.saturating_sub(old));
                head.extend_from_slice(data.get(..take).unwrap_or_default());
                if !handshake::head_complete(head, old) {
                    if head.len() >= MAX_HEAD {
                        return Err(self.fail_http(431, "request head too large"));
                    }
                    return Ok(());
                }
                let head = core::mem::take(head);
                self.on_head(&head)
            }
            Phase::Waiting { decoder } | Phase::Streaming { decoder } => match decoder {
                // An HTTP player sends nothing after its request; whatever
                // comes (a pipelined request) is not read.
                None => Ok(()),
                Some(_) => self.frames(data),
            },
        }
    }

    fn on_head(&mut self, head: &[u8]) -> Result<(), FlvError> {
        let (target, early) = if self.framing == Framing::WebSocket {
            match handshake::parse_request(head) {
                Ok(Some((request, consumed))) => {
                    self.queue(Bytes::from(handshake::accept_response(&request)));
                    (request.target, head.get(consumed..).unwrap_or_default())
                }
                Ok(None) => return Err(self.fail_http(400, "incomplete request head")),
                Err(e) => {
                    self.queue(Bytes::from(handshake::error_response(&e)));
                    return Err(self.fail(FlvError::Handshake(e)));
                }
            }
        } else {
            match self.parse_http(head) {
                Ok(target) => (target, &[][..]),
                Err(e) => return Err(e),
            }
        };
        let Some(target) = FlvTarget::parse(&target) else {
            return Err(self.fail_http(404, "not an FLV stream path"));
        };
        if self.head_only {
            self.send_http_head();
            self.done = true;
            return Ok(());
        }
        self.events.push_back(Request::Connect(ConnectRequest {
            protocol: PROTOCOL,
            target: target.scope,
            params: Value::Null,
            args: Vec::new(),
            address: self.peer,
            notices: None,
        }));
        self.events.push_back(Request::Play {
            stream: PLAY_STREAM,
            name: target.stream,
            // Live only: a stream not published yet is waited for.
            start: -1.0,
            encoder: media_encoder(self.framing),
        });
        let decoder =
            (self.framing == Framing::WebSocket).then(|| Decoder::new(MAX_CLIENT_MESSAGE));
        self.phase = Phase::Waiting { decoder };
        if early.is_empty() {
            Ok(())
        } else {
            let early = early.to_vec();
            self.frames(&early)
        }
    }

    /// The target of a plain HTTP request, or the error answer queued.
    fn parse_http(&mut self, head: &[u8]) -> Result<String, FlvError> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(self.fail_http(400, "incomplete head")),
            Err(_) => return Err(self.fail_http(400, "malformed request head")),
        }
        match request.method {
            Some("GET") => {}
            Some("HEAD") => self.head_only = true,
            _ => return Err(self.fail_http(405, "only GET and HEAD")),
        }
        let origin = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("origin"))
            .and_then(|h| core::str::from_utf8(h.value).ok());
        self.allow_origin = allow_origin(&self.config.cors_origins, origin);
        Ok(String::from(request.path.unwrap_or_default()))
    }

    /// Decodes the WebSocket player's frames: answers pings and a close.
    fn frames(&mut self, mut data: &[u8]) -> Result<(), FlvError> {
        loop {
            let (Phase::Waiting {
                decoder: Some(decoder),
            }
            | Phase::Streaming {
                decoder: Some(decoder),
            }) = &mut self.phase
            else {
                return Ok(());
            };
            match decoder.decode(&mut data) {
                Ok(None) => return Ok(()),
                Ok(Some(Incoming::Ping(payload))) => {
                    self.queue(frame::encode_frame(Opcode::Pong, &payload));
                }
                Ok(Some(Incoming::Close { code, .. })) => {
                    self.send_close(code.unwrap_or(close_code::NORMAL), "");
                    self.set_reason(FlvError::PeerClosed);
                    return Ok(());
                }
                Ok(Some(_)) => {} // a player has nothing to say
                Err(e) => {
                    self.send_close(e.close_code(), &e.to_string());
                    return Err(self.fail(FlvError::Protocol(e)));
                }
            }
        }
    }

    fn set_reason(&mut self, reason: FlvError) {
        if self.reason.is_none() {
            self.close = Some(Box::new(reason.clone().close()));
            self.reason = Some(Box::new(reason));
        }
    }

    fn fail(&mut self, error: FlvError) -> FlvError {
        self.set_reason(error.clone());
        self.fatal = Some(Box::new(error.clone()));
        self.done = true;
        error
    }

    fn fail_http(&mut self, status: u16, why: &str) -> FlvError {
        self.queue(error_response(status, why));
        self.fail(FlvError::BadRequest {
            status,
            why: String::from(why),
        })
    }

    fn queue(&mut self, bytes: Bytes) {
        if self.done || bytes.is_empty() {
            return;
        }
        self.transmit.push(bytes);
    }

    fn send_close(&mut self, code: u16, reason: &str) {
        let payload = frame::close_payload(code, reason);
        self.queue(frame::encode_frame(Opcode::Close, &payload));
        self.done = true;
    }

    fn send_http_head(&mut self) {
        let mut head = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache\r\nConnection: close\r\n",
        );
        if let Some(origin) = &self.allow_origin {
            head.push_str("Access-Control-Allow-Origin: ");
            head.push_str(origin);
            head.push_str("\r\n");
            if origin != "*" {
                head.push_str("Vary: Origin\r\n");
            }
        }
        head.push_str("\r\n");
        self.queue(Bytes::from(head));
    }

    /// Ends the stream in order: the last chunk or a normal close frame.
    fn finish(&mut self, reason: FlvError) {
        let streaming = matches!(self.phase, Phase::Streaming { .. });
        match self.framing {
            Framing::WebSocket => self.send_close(close_code::NORMAL, "stream ended"),
            _ if streaming => {
                self.queue(Bytes::from_static(b"0\r\n\r\n"));
                self.done = true;
            }
            _ => {
                let (status, why) = match &reason {
                    FlvError::Rejected { description, .. } => (403, description.as_str()),
                    FlvError::NotFound { description } => (404, description.as_str()),
                    _ => (503, "closed"),
                };
                let answer = error_response(status, why);
                self.queue(answer);
                self.done = true;
            }
        }
        self.set_reason(reason);
    }

    fn refuse(&mut self, reason: FlvError) {
        if self.framing == Framing::WebSocket {
            let text = reason.to_string();
            self.send_close(close_code::POLICY_VIOLATION, &text);
            self.set_reason(reason);
        } else {
            self.finish(reason);
        }
    }

    /// The next request for the hub.
    pub fn poll_event(&mut self) -> Option<Request> {
        let event = self.events.pop_front();
        release_queue(&mut self.events, false);
        event
    }

    /// The next bytes for the socket.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop()
    }

    /// Bytes waiting in `poll_transmit`.
    pub fn pending_bytes(&self) -> usize {
        self.transmit.pending_bytes()
    }

    /// When `handle_timeout` should run next: the head's deadline only (a
    /// player is watched by its outbox: one that does not read is given
    /// up by the hub).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Head(_) if !self.done => Some(self.started + self.config.head_timeout),
            _ => None,
        }
    }

    /// Fires the head's deadline (408).
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Head(_))
            && !self.done
            && now >= self.started + self.config.head_timeout
        {
            self.queue(error_response(408, "request timeout"));
            let ms = self.config.head_timeout.as_millis();
            self.fail(FlvError::HeadTimeout { ms });
        }
    }

    /// True once everything queued should be flushed and the socket closed.
    pub fn is_closing(&self) -> bool {
        self.done || self.reason.is_some()
    }

    /// Why the connection closes (the common close model).
    pub fn close_reason(&self) -> Option<&CloseReason<FlvError>> {
        self.close.as_deref()
    }

    /// Why the connection closes, in FLV's own terms.
    pub fn flv_close_reason(&self) -> Option<&FlvError> {
        self.reason.as_deref()
    }

    /// Lenient readings to log: none (an FLV player's only input is its
    /// request head, which is either served or refused).
    pub fn poll_tolerated(&mut self) -> Option<crate::message::Tolerated> {
        None
    }

    /// FLV players take no shared-object notices.
    pub fn shared_encoding(&self) -> SharedEncoding {
        SharedEncoding::None
    }

    /// Turns a hub delivery into bytes.
    pub fn handle_delivery(&mut self, now: Instant, delivery: Delivery) {
        if self.done {
            return;
        }
        self.transmit.note_delivery(now);
        match delivery {
            Delivery::Rejected { code, description } => {
                self.refuse(FlvError::Rejected { code, description });
            }
            Delivery::Status {
                level: Level::Error,
                description,
                ..
            } => self.refuse(FlvError::NotFound { description }),
            Delivery::Status {
                code: "NetStream.Play.Start",
                ..
            } => {
                if let Phase::Waiting { decoder } = &mut self.phase {
                    let decoder = decoder.take();
                    if self.framing == Framing::HttpChunked {
                        self.send_http_head();
                    }
                    self.queue(self.framing.wrap(&FILE_HEADER));
                    self.phase = Phase::Streaming { decoder };
                }
            }
            Delivery::Media(media) if matches!(self.phase, Phase::Streaming { .. }) => {
                self.queue(media.encoded);
            }
            Delivery::StreamEof { .. } => self.finish(FlvError::Ended),
            Delivery::Close { reason } => self.finish(FlvError::ServerClosed { reason }),
            Delivery::Accepted { .. }
            | Delivery::Status { .. }
            | Delivery::StreamBegin { .. }
            | Delivery::SharedObject(_)
            | Delivery::Media(_) => {}
        }
    }
}

/// The `Access-Control-Allow-Origin` value for a request from `origin`:
/// `*` if the list allows every origin, the origin itself if listed, else
/// none (the browser then refuses the response).
pub fn allow_origin(allowed: &[String], origin: Option<&str>) -> Option<String> {
    if allowed.iter().any(|a| a == "*") {
        return Some(String::from("*"));
    }
    let origin = origin?;
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(origin))
        .then(|| String::from(origin))
}

/// A short plain-text HTTP error answer.
fn error_response(status: u16, why: &str) -> Bytes {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let body_len = why.len() + 1;
    let mut out = String::new();
    let _ = fmt::write(
        &mut out,
        format_args!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n{why}\n"
        ),
    );
    Bytes::from(out)
}
