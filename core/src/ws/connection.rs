//! One WebSocket server connection: upgrade, frames, and translation
//! between protocol v1 (or chat mode, or echo) and the hub.

use super::WsError;
use super::amf_json;
use super::fanout::notices_encoder;
use super::frame::{self, Decoder, Incoming, Opcode, close_code};
use super::handshake::{self, MAX_HEAD, Subprotocol};
use super::json::{self, ClientOp, OpError};
use crate::Limits;
use crate::amf0::Value;
use crate::connection::{CloseReason, SharedEncoding, ToleratedLog};
use crate::hub::{ConnectRequest, Delivery, Request, SoChange, SoDelivery, SoNotice, SoOp};
use crate::message::Tolerated;
use crate::queue::{OutputQueue, release_queue};
use crate::scope_path::validate_segment;
use crate::time::{Duration, Instant};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::IpAddr;

/// The shared object and key chat mode uses (Red5's chat demo).
const CHAT_SO: &str = "chat";
const CHAT_KEY: &str = "message";

/// Settings of a WebSocket connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// Largest message (all fragments together), in bytes. Larger → close 1009.
    pub max_message: usize,
    /// Silence after which we ping the client (and again after each ping).
    pub ping_interval: Duration,
    /// No byte at all for this long → close 1001.
    pub idle_timeout: Duration,
    /// Time the upgrade request may take to arrive.
    pub handshake_timeout: Duration,
    /// Request path (without query, leading `/` optional) of the echo
    /// endpoint for the Autobahn fuzzing client; `None`: no echo endpoint.
    pub echo_path: Option<String>,
    /// Shared objects one JSON connection may have in use at once.
    pub max_objects: usize,
    /// Bounds on values clients set (depth and count, as AMF0 peers decode).
    pub limits: Limits,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_message: 1024 * 1024,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            handshake_timeout: Duration::from_secs(10),
            echo_path: None,
            max_objects: 64,
            limits: Limits::default(),
        }
    }
}

/// What the open connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Protocol v1 (`tern.v1` or no subprotocol).
    Json,
    /// Red5 chat mode (`chat`).
    Chat,
    /// Echo for conformance testing; no hub work.
    Echo,
}

#[derive(Debug)]
enum Phase {
    /// Collecting the request head.
    Upgrade(Vec<u8>),
    /// Frames.
    Open { mode: Mode, decoder: Decoder },
}

/// The server side of one WebSocket connection, from the first byte of the
/// HTTP upgrade request on; the echo endpoint produces no requests.
///
/// Driven as [`Connection`](crate::connection::Connection) documents.
/// Its timers: the upgrade timeout, then a ping after
/// [`WsConfig::ping_interval`] of silence and a close 1001
/// ([`WsError::Idle`]) after [`WsConfig::idle_timeout`] without a byte.
#[derive(Debug)]
pub struct WsConnection {
    config: WsConfig,
    phase: Phase,
    peer: Option<IpAddr>,
    events: VecDeque<Request>,
    /// The bytes for the socket.
    transmit: OutputQueue,
    /// Shared objects this connection used, with the persistence it asked for.
    objects: BTreeMap<String, bool>,
    started: Instant,
    last_input: Instant,
    last_ping: Option<Instant>,
    /// Set once nothing more may be sent (close frame or HTTP error queued).
    done: bool,
    /// Why the connection closes, once it does (boxed: rare, and the
    /// connection is embedded in each runtime task).
    close: Option<Box<CloseReason<WsError>>>,
    /// Lenient readings for the runtime's debug log.
    tolerated: ToleratedLog,
}

impl WsConnection {
    /// A connection whose upgrade request starts arriving now; `peer` is the
    /// client's address (for hooks and per-address limits).
    pub fn new(config: WsConfig, now: Instant, peer: Option<IpAddr>) -> Self {
        WsConnection {
            config,
            phase: Phase::Upgrade(Vec::new()),
            peer,
            events: VecDeque::new(),
            transmit: OutputQueue::new(false),
            objects: BTreeMap::new(),
            started: now,
            last_input: now,
            last_ping: None,
            done: false,
            close: None,
            tolerated: ToleratedLog::default(),
        }
    }

    /// Takes bytes read from the socket.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), WsError> {
        if let Some(close) = &self.close {
            return close.failure().map_or(Ok(()), |e| Err(e.clone()));
        }
        if self.done {
            // Closing: the peer's answer to our close, or bytes after its own.
            return Ok(());
        }
        self.last_input = now;
        self.last_ping = None;
        let rest = data;
        if let Phase::Upgrade(head) = &mut self.phase {
            let old = head.len();
            let take = rest.len().min(MAX_HEAD.saturating_sub(old));
            let (now_part, later) = rest.split_at_checked(take).unwrap_or((rest, &[]));
            head.extend_from_slice(now_part);
            if !handshake::head_complete(head, old) {
                if head.len() >= MAX_HEAD {
                    return Err(self.refuse(handshake::UpgradeError::HeadTooLarge));
                }
                return Ok(());
            }
            let parsed = handshake::parse_request(head);
            let (request, consumed) = match parsed {
                Ok(Some(found)) => found,
                Ok(None) if head.len() < MAX_HEAD => return Ok(()),
                Ok(None) => return Err(self.refuse(handshake::UpgradeError::HeadTooLarge)),
                Err(e) => return Err(self.refuse(e)),
            };
            // Bytes after the head (a client that did not wait) are frames.
            let mut early = head.split_off(consumed.min(head.len()));
            early.extend_from_slice(later);
            self.queue(Bytes::from(handshake::accept_response(&request)));
            let echo = self
                .config
                .echo_path
                .as_deref()
                .is_some_and(|p| p.trim_start_matches('/') == request.path());
            let mode = if echo {
                Mode::Echo
            } else if request.subprotocol == Some(Subprotocol::Chat) {
                Mode::Chat
            } else {
                Mode::Json
            };
            if mode != Mode::Echo {
                self.events.push_back(Request::Connect(ConnectRequest {
                    protocol: crate::ws::PROTOCOL,
                    target: request.target,
                    params: Value::Null,
                    args: Vec::new(),
                    address: self.peer,
                    // Chat mode renders its own lines: no shared encoding.
                    notices: (mode == Mode::Json).then(notices_encoder),
                }));
            }
            if mode == Mode::Chat {
                // Queued right behind the connect, so lines that arrive
                // before the hub's answer already find the object in use.
                self.events.push_back(Request::SharedObject {
                    name: String::from(CHAT_SO),
                    persistent: false,
                    op: SoOp::Use,
                });
            }
            self.phase = Phase::Open {
                mode,
                decoder: Decoder::new(self.config.max_message),
            };
            return self.frames(&early);
        }
        self.frames(rest)
    }

    /// Decodes frames from `data` and acts on each.
    fn frames(&mut self, mut data: &[u8]) -> Result<(), WsError> {
        loop {
            let Phase::Open { mode, decoder } = &mut self.phase else {
                return Ok(());
            };
            let mode = *mode;
            let incoming = match decoder.decode(&mut data) {
                Ok(Some(incoming)) => incoming,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.send_close(e.close_code(), &e.to_string());
                    let error = WsError::Protocol(e);
                    self.close_with(CloseReason::Failed(error.clone()));
                    return Err(error);
                }
            };
            match incoming {
                Incoming::Ping(payload) => self.queue(frame::encode_frame(Opcode::Pong, &payload)),
                Incoming::Pong(_) => {}
                Incoming::Close { code, .. } => {
                    // Echo a valid code; answer a bare close with 1000.
                    let code_out = code.unwrap_or(close_code::NORMAL);
                    self.send_close(code_out, "");
                    self.close_with(CloseReason::Peer { code });
                    return Ok(());
                }
                Incoming::Text(text) => self.on_text(mode, text),
                Incoming::Binary(data) => self.on_binary(mode, data),
            }
            if self.done {
                return Ok(());
            }
        }
    }

    fn on_text(&mut self, mode: Mode, text: Bytes) {
        match mode {
            Mode::Echo => self.queue(frame::encode_frame(Opcode::Text, &text)),
            Mode::Chat => {
                // The decoder validated the UTF-8.
                let text = core::str::from_utf8(&text).unwrap_or_default();
                for line in text.split('\n') {
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    if line.is_empty() {
                        continue;
                    }
                    self.events.push_back(Request::SharedObject {
                        name: String::from(CHAT_SO),
                        persistent: false,
                        op: SoOp::Batch(alloc::vec![SoChange::Set {
                            key: String::from(CHAT_KEY),
                            value: amf_json::amf_string(line),
                        }]),
                    });
                }
            }
            Mode::Json => match json::parse_client_op(&text, &self.config.limits) {
                Ok((op, tolerated)) => {
                    self.tolerated.extend(tolerated);
                    self.on_op(op);
                }
                Err(e) => {
                    // Answered, and the session goes on; an unknown op is
                    // also worth a debug line (a newer client, a typo).
                    if let OpError::UnknownOp(name) = &e {
                        let reading = "unknown op, answered with an error message";
                        self.tolerated.push(Tolerated::new(name, reading));
                    }
                    self.send_op_error(&e);
                }
            },
        }
    }

    fn on_binary(&mut self, mode: Mode, data: Bytes) {
        match mode {
            Mode::Echo => self.queue(frame::encode_frame(Opcode::Binary, &data)),
            // Chat clients only speak text lines; binary has no meaning there.
            Mode::Chat => {}
            Mode::Json => self.send_op_error(&OpError::Binary),
        }
    }

    fn send_op_error(&mut self, e: &OpError) {
        self.send_text(json::error(None, e.code(), &e.to_string()));
    }

    fn on_op(&mut self, op: ClientOp) {
        let (name, persistent, op) = match op {
            ClientOp::Use { so, persistent } => {
                if !self.objects.contains_key(&so) {
                    if self.objects.len() >= self.config.max_objects {
                        let max = self.config.max_objects;
                        return self.send_op_error(&OpError::TooManyObjects { max });
                    }
                    // Invalid names are refused by the hub; no need to remember them.
                    if validate_segment(&so).is_ok() {
                        self.objects.insert(so.clone(), persistent);
                    }
                } else {
                    self.objects.insert(so.clone(), persistent);
                }
                (so, persistent, SoOp::Use)
            }
            ClientOp::Set { so, key, value } => {
                let persistent = self.persistence(&so);
                let op = SoOp::Batch(alloc::vec![SoChange::Set { key, value }]);
                (so, persistent, op)
            }
            ClientOp::Delete { so, key } => {
                let persistent = self.persistence(&so);
                (
                    so,
                    persistent,
                    SoOp::Batch(alloc::vec![SoChange::Delete { key }]),
                )
            }
            ClientOp::Send { so, method, args } => {
                let persistent = self.persistence(&so);
                (so, persistent, SoOp::Send { method, args })
            }
            ClientOp::Release { so } => {
                let persistent = self.objects.remove(&so).unwrap_or(false);
                (so, persistent, SoOp::Release)
            }
        };
        self.events.push_back(Request::SharedObject {
            name,
            persistent,
            op,
        });
    }

    /// The persistence flag of this connection's `use` of `so` (false if none).
    fn persistence(&self, so: &str) -> bool {
        self.objects.get(so).copied().unwrap_or(false)
    }

    fn mode(&self) -> Option<Mode> {
        match &self.phase {
            Phase::Open { mode, .. } => Some(*mode),
            Phase::Upgrade(_) => None,
        }
    }

    /// Answers a bad upgrade and fails.
    fn refuse(&mut self, e: handshake::UpgradeError) -> WsError {
        self.queue(Bytes::from(handshake::error_response(&e)));
        self.done = true;
        let error = WsError::Handshake(e);
        self.close_with(CloseReason::Failed(error.clone()));
        error
    }

    fn queue(&mut self, bytes: Bytes) {
        if self.done {
            return;
        }
        self.transmit.push(bytes);
    }

    fn send_text(&mut self, text: String) {
        self.queue(frame::encode_frame(Opcode::Text, text.as_bytes()));
    }

    /// Closes for `reason`, unless it already closes.
    fn close_with(&mut self, reason: CloseReason<WsError>) {
        if self.close.is_none() {
            self.close = Some(Box::new(reason));
        }
    }

    /// Queues a close frame; nothing is sent after it.
    fn send_close(&mut self, code: u16, reason: &str) {
        let payload = frame::close_payload(code, reason);
        self.queue(frame::encode_frame(Opcode::Close, &payload));
        self.done = true;
    }

    /// The next lenient reading taken (see "Lenient reading" in
    /// docs/architecture.md): drain after `handle_input` and log it.
    pub fn poll_tolerated(&mut self) -> Option<Tolerated> {
        self.tolerated.pop()
    }

    /// The next request for the hub. Drained queues are freed (an idle
    /// connection holds none; WebSocket carries no media stream).
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

    /// When `handle_timeout` should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closing() {
            return None;
        }
        Some(match self.phase {
            Phase::Upgrade(_) => self.started + self.config.handshake_timeout,
            Phase::Open { .. } => {
                let idle = self.last_input + self.config.idle_timeout;
                let since = self.last_ping.unwrap_or(self.last_input);
                idle.min(since + self.config.ping_interval)
            }
        })
    }

    /// Pings a silent client; closes (1001) one that sent nothing at all for
    /// `idle_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closing() {
            return;
        }
        match self.phase {
            Phase::Upgrade(_) => {
                if now >= self.started + self.config.handshake_timeout {
                    let ms = self.config.handshake_timeout.as_millis();
                    self.done = true;
                    self.close_with(CloseReason::Failed(WsError::HandshakeTimeout { ms }));
                }
            }
            Phase::Open { .. } => {
                if now >= self.last_input + self.config.idle_timeout {
                    let silent_ms = (now - self.last_input).as_millis();
                    self.send_close(close_code::GOING_AWAY, "idle timeout");
                    self.close_with(CloseReason::Failed(WsError::Idle { silent_ms }));
                } else if now
                    >= self.last_ping.unwrap_or(self.last_input) + self.config.ping_interval
                {
                    self.queue(frame::encode_frame(Opcode::Ping, b""));
                    self.last_ping = Some(now);
                }
            }
        }
    }

    /// True once the connection should be flushed and closed: after a close
    /// frame (either side's), a refused upgrade, a protocol error, a
    /// timeout, or the hub's [`Delivery::Close`] or rejection.
    pub fn is_closing(&self) -> bool {
        self.done
    }

    /// How shared-object notices would go out now: the shared frames while
    /// the connection is open in JSON mode (see [`SharedEncoding`]).
    pub fn shared_encoding(&self) -> SharedEncoding {
        match self.mode() {
            Some(Mode::Json) if !self.done => SharedEncoding::Shared {
                max_len: usize::MAX,
            },
            _ => SharedEncoding::None,
        }
    }

    /// Why the connection closes (also for clean closes), if it does.
    pub fn close_reason(&self) -> Option<&CloseReason<WsError>> {
        self.close.as_deref()
    }

    /// Turns a hub delivery into frames. Media, stream statuses and stream
    /// begin/end are ignored: WebSocket clients do not play streams.
    pub fn handle_delivery(&mut self, now: Instant, delivery: Delivery) {
        if self.done {
            return;
        }
        self.transmit.note_delivery(now);
        let Some(mode) = self.mode() else {
            return;
        };
        match delivery {
            Delivery::Accepted { scope, .. } => {
                if mode == Mode::Json {
                    self.send_text(json::welcome(&scope));
                }
            }
            Delivery::Rejected { code, description } => {
                if mode == Mode::Json {
                    self.send_text(json::error(None, code.code(), &description));
                }
                self.send_close(close_code::POLICY_VIOLATION, &description);
                self.close_with(CloseReason::Rejected { code, description });
            }
            Delivery::SharedObject(SoDelivery { update, encoded }) => match mode {
                Mode::Json => {
                    // Made once per update by the hub, shared by every JSON
                    // subscriber; made here only if the hub had no encoder.
                    let frames = if encoded.is_empty() {
                        notices_encoder().encode_update(&update)
                    } else {
                        encoded
                    };
                    self.queue(frames);
                }
                Mode::Chat if update.name == CHAT_SO => {
                    // Only changes: a chat client shows its own line itself
                    // (its `Success` is not echoed) and gets no history.
                    if matches!(update.notices.first(), Some(SoNotice::UseSuccess)) {
                        return;
                    }
                    for notice in &update.notices {
                        if let SoNotice::Change { key, value } = notice
                            && key == CHAT_KEY
                        {
                            let text = match value.as_str() {
                                Some(s) => String::from(s),
                                None => amf_json::amf_to_json(value).to_string(),
                            };
                            self.send_text(text);
                        }
                    }
                }
                Mode::Chat | Mode::Echo => {}
            },
            Delivery::Close { reason } => {
                self.send_close(close_code::GOING_AWAY, &reason);
                self.close_with(CloseReason::Server { reason });
            }
            Delivery::Status { .. }
            | Delivery::StreamBegin { .. }
            | Delivery::StreamEof { .. }
            | Delivery::Media(_) => {}
        }
    }
}
