//! The client side of one RTMP connection: what `tern so`, the load tool,
//! the simulator and the tests use to talk to a server.

use super::wire::Wire;
use super::{RtmpError, aggregate, csid};
use crate::Limits;
use crate::amf0::Value;
use crate::hub::MediaKind;
use crate::message::{
    Command, Message, ProtocolControl, ServerReply, SharedObjectMessage, SharedObjectView, SoEvent,
    UserControl,
};
use crate::rtmp::handshake::{ClientHandshake, HandshakeKind, RANDOM_LEN};
use crate::time::Instant;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// Settings of a client connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// `connect.app`: `app[/room…][?query]`.
    pub app: String,
    /// `connect.tcUrl`: the URL, e.g. `rtmp://host/app/room`.
    pub tc_url: String,
    /// `connect.flashVer`.
    pub flash_ver: String,
    /// Handshake flavour.
    pub handshake: HandshakeKind,
    /// Outbound chunk size announced once connected (0: keep 128).
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size we announce.
    pub window_ack_size: u32,
    /// Parser bounds.
    pub limits: Limits,
    /// Report shared-object messages undecoded, as
    /// [`ClientEvent::SharedObjectPayload`], to be read in place with
    /// [`SharedObjectView`]: no owned message per notice, for clients that
    /// look at a few fields of many notices (the load tool's subscribers).
    /// Their framing (header, event types and lengths) is still checked
    /// here; the event bodies when the application reads them. Off (the
    /// default): [`ClientEvent::SharedObject`].
    pub raw_shared_objects: bool,
    /// Speak AMF3 as an ActionScript 3 / AIR client does: `connect` (type
    /// 20, AMF0) with objectEncoding 3, then shared-object messages as type
    /// 16 with every value and argument as one AVM+ (AMF3) value
    /// ([`SharedObjectMessage::encode_amf3`]), commands as type 17
    /// ([`Command::encode_amf3`]) and data as type 15 (the encoding byte 0
    /// before the body given to [`ClientConnection::send_media`], which
    /// the caller writes; values in it may be AVM+). Off (the default):
    /// AMF0.
    pub amf3: bool,
}

impl ClientConfig {
    /// A client for `app` on `tc_url` with tern's defaults.
    pub fn new(app: impl Into<String>, tc_url: impl Into<String>) -> Self {
        ClientConfig {
            app: app.into(),
            tc_url: tc_url.into(),
            flash_ver: String::from("LNX 9,0,124,2"),
            handshake: HandshakeKind::Plain,
            out_chunk_size: 4096,
            window_ack_size: 2_500_000,
            limits: Limits::default(),
            raw_shared_objects: false,
            amf3: false,
        }
    }
}

/// Something the server told the client.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded; the info object.
    Connected { info: Value },
    /// `connect` failed.
    ConnectFailed { code: String, description: String },
    /// `createStream` answered.
    StreamCreated { transaction_id: f64, stream_id: u32 },
    /// `onStatus` on message stream `stream_id`.
    Status {
        /// Message stream id.
        stream_id: u32,
        /// `status`, `warning` or `error`.
        level: String,
        /// E.g. `NetStream.Play.Start`.
        code: String,
        /// Human-readable text.
        description: String,
    },
    /// A `_result` for a call other than connect/createStream.
    Result {
        transaction_id: f64,
        args: Vec<Value>,
    },
    /// An `_error`.
    Error { transaction_id: f64, info: Value },
    /// A shared-object message.
    SharedObject(SharedObjectMessage),
    /// A shared-object message as its type-19 payload, framing checked
    /// (with [`ClientConfig::raw_shared_objects`]); read it with
    /// [`SharedObjectView::parse`].
    SharedObjectPayload(Bytes),
    /// Audio, video or data on a played stream.
    Media {
        /// Message stream id.
        stream_id: u32,
        /// Kind.
        kind: MediaKind,
        /// Timestamp (ms).
        timestamp: u32,
        /// Body.
        payload: Bytes,
    },
    /// A user control event (StreamBegin, StreamEOF, …; ping requests are
    /// answered before they are reported).
    UserControl(UserControl),
    /// Any other command the server called.
    Call(Command),
}

#[derive(Debug)]
enum Phase {
    Handshake(ClientHandshake),
    Open,
}

/// Actions queued until `connect` is answered.
const MAX_QUEUED: usize = 4096;

/// The client side of one RTMP connection.
///
/// It starts the handshake at once and sends `connect` when it completes;
/// everything the application asks for before `connect` succeeds is queued
/// and sent in order afterwards. Call order: see the [module docs](super).
#[derive(Debug)]
pub struct ClientConnection {
    config: ClientConfig,
    phase: Phase,
    wire: Wire,
    events: VecDeque<ClientEvent>,
    connected: bool,
    queued: VecDeque<(u32, u32, u32, Message)>,
    next_transaction: f64,
    create_stream_transactions: Vec<f64>,
    closed: Option<RtmpError>,
    /// Messages received, by type id (0..32).
    received: [u64; 32],
}

impl ClientConnection {
    /// A connection whose handshake starts now.
    pub fn new(config: ClientConfig, now: Instant, random: &[u8; RANDOM_LEN]) -> Self {
        let epoch = (now.as_millis() & 0xFFFF_FFFF) as u32;
        let mut handshake = ClientHandshake::new(random, epoch, config.handshake);
        let mut wire = Wire::new(&config.limits);
        // A client's reads are small or few; keeping the buffer saves an
        // allocation per read (a subscriber's per notice).
        wire.keep_input_buffer();
        if let Some(c0c1) = handshake.poll_transmit() {
            wire.queue(c0c1);
        }
        ClientConnection {
            phase: Phase::Handshake(handshake),
            wire,
            events: VecDeque::new(),
            connected: false,
            queued: VecDeque::new(),
            next_transaction: 2.0,
            create_stream_transactions: Vec::new(),
            closed: None,
            received: [0; 32],
            config,
        }
    }

    /// How many messages of type `type_id` the server sent so far (after
    /// the handshake; types from 32 on are not counted): how a test sees
    /// which form (e.g. type 17 or 20) commands came in.
    pub fn received_messages(&self, type_id: u8) -> u64 {
        self.received
            .get(usize::from(type_id))
            .copied()
            .unwrap_or(0)
    }

    /// True once `connect` succeeded.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Takes bytes read from the socket.
    pub fn handle_input(&mut self, now: Instant, mut data: &[u8]) -> Result<(), RtmpError> {
        let _ = now;
        if let Some(e) = &self.closed {
            return Err(e.clone());
        }
        if let Phase::Handshake(handshake) = &mut self.phase {
            let consumed = match handshake.handle_input(data) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e.into())),
            };
            if let Some(c2) = handshake.poll_transmit() {
                self.wire.queue(c2);
            }
            self.wire.count_input(consumed);
            data = data.get(consumed..).unwrap_or_default();
            if !handshake.is_complete() {
                return Ok(());
            }
            self.phase = Phase::Open;
            self.send_connect();
        }
        self.wire.push_input(data);
        loop {
            match self.wire.next_message() {
                Ok(Some(raw)) => {
                    if let Err(e) = self.on_message(raw) {
                        return Err(self.fail(e));
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(self.fail(e.into())),
            }
        }
        self.wire.maybe_acknowledge();
        Ok(())
    }

    fn fail(&mut self, e: RtmpError) -> RtmpError {
        self.closed = Some(e.clone());
        e
    }

    /// The next event from the server.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The next bytes for the socket.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.wire.poll_transmit()
    }

    /// Bytes waiting in `poll_transmit`.
    pub fn pending_bytes(&self) -> usize {
        self.wire.pending_bytes()
    }

    /// The client has no timers of its own (the server pings it).
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// See [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    fn send_connect(&mut self) {
        let object = Value::object([
            ("app", Value::string(self.config.app.clone())),
            ("type", Value::string("nonprivate")),
            ("flashVer", Value::string(self.config.flash_ver.clone())),
            ("tcUrl", Value::string(self.config.tc_url.clone())),
            ("fpad", Value::Boolean(false)),
            ("capabilities", Value::Number(15.0)),
            ("audioCodecs", Value::Number(4071.0)),
            ("videoCodecs", Value::Number(252.0)),
            ("videoFunction", Value::Number(1.0)),
            (
                "objectEncoding",
                Value::Number(if self.config.amf3 { 3.0 } else { 0.0 }),
            ),
        ]);
        let mut connect = Command::new("connect", 1.0, Vec::new());
        connect.command_object = object;
        let window = self.config.window_ack_size;
        self.wire.send(
            csid::CONTROL,
            0,
            0,
            &Message::Control(ProtocolControl::WindowAckSize(window)),
        );
        self.wire
            .send(csid::COMMAND, 0, 0, &Message::Command(connect));
    }

    fn transaction(&mut self) -> f64 {
        let tx = self.next_transaction;
        self.next_transaction += 1.0;
        tx
    }

    /// Sends now if connected, else queues (bounded).
    fn submit(
        &mut self,
        chunk_stream: u32,
        stream: u32,
        timestamp: u32,
        message: Message,
    ) -> Result<(), RtmpError> {
        if let Some(e) = &self.closed {
            return Err(e.clone());
        }
        if self.connected {
            self.send_now(chunk_stream, stream, timestamp, &message);
        } else if self.queued.len() >= MAX_QUEUED {
            return Err(RtmpError::QueueFull { max: MAX_QUEUED });
        } else {
            self.queued
                .push_back((chunk_stream, stream, timestamp, message));
        }
        Ok(())
    }

    /// Sends one message: when speaking AMF3 shared-object messages as
    /// type 16, commands other than `connect` as type 17 and data as type
    /// 15; everything else as [`Message::encode`] writes it.
    fn send_now(&mut self, chunk_stream: u32, stream: u32, timestamp: u32, message: &Message) {
        let raw = |type_id, payload| crate::chunk::RawMessage {
            csid: chunk_stream,
            timestamp,
            type_id,
            stream_id: stream,
            payload,
        };
        match message {
            Message::Command(command) if self.config.amf3 && command.name != "connect" => {
                let payload = command.to_bytes_amf3(&self.config.limits);
                self.wire
                    .send_raw(&raw(crate::message::type_id::COMMAND_AMF3, payload));
            }
            Message::Unknown {
                type_id: crate::message::type_id::DATA_AMF0,
                payload,
            } if self.config.amf3 => {
                let mut body = Vec::with_capacity(payload.len() + 1);
                body.push(0);
                body.extend_from_slice(payload);
                self.wire
                    .send_raw(&raw(crate::message::type_id::DATA_AMF3, Bytes::from(body)));
            }
            Message::SharedObject(so) if self.config.amf3 => {
                let mut payload = Vec::new();
                so.encode_amf3(&self.config.limits, &mut payload);
                self.wire.send_raw(&crate::chunk::RawMessage {
                    csid: chunk_stream,
                    timestamp,
                    type_id: crate::message::type_id::SHARED_OBJECT_AMF3,
                    stream_id: stream,
                    payload: Bytes::from(payload),
                });
            }
            _ => self.wire.send(chunk_stream, stream, timestamp, message),
        }
    }

    fn command(&mut self, stream: u32, command: Command) -> Result<(), RtmpError> {
        let chunk_stream = if stream == 0 {
            csid::COMMAND
        } else {
            csid::STREAM
        };
        self.submit(chunk_stream, stream, 0, Message::Command(command))
    }

    /// Calls `createStream`; the answer is [`ClientEvent::StreamCreated`]
    /// with the returned transaction id.
    pub fn create_stream(&mut self) -> Result<f64, RtmpError> {
        let tx = self.transaction();
        self.create_stream_transactions.push(tx);
        self.command(0, Command::new("createStream", tx, Vec::new()))?;
        Ok(tx)
    }

    /// Publishes `name` live on message stream `stream`.
    pub fn publish(&mut self, stream: u32, name: &str) -> Result<(), RtmpError> {
        let args = alloc::vec![Value::string(name), Value::string("live")];
        self.command(stream, Command::new("publish", 0.0, args))
    }

    /// Plays `name` on message stream `stream` (`start` -2: live or recorded).
    pub fn play(&mut self, stream: u32, name: &str, start: f64) -> Result<(), RtmpError> {
        let args = alloc::vec![Value::string(name), Value::Number(start)];
        self.command(stream, Command::new("play", 0.0, args))
    }

    /// `closeStream` on `stream` (stops publishing or playing).
    pub fn close_stream(&mut self, stream: u32) -> Result<(), RtmpError> {
        self.command(stream, Command::new("closeStream", 0.0, Vec::new()))
    }

    /// `deleteStream(stream)`.
    pub fn delete_stream(&mut self, stream: u32) -> Result<(), RtmpError> {
        let args = alloc::vec![Value::Number(f64::from(stream))];
        self.command(0, Command::new("deleteStream", 0.0, args))
    }

    /// Calls an application method; the answer (if `expect_reply`) comes as
    /// [`ClientEvent::Result`] or [`ClientEvent::Error`] with this id.
    pub fn call(
        &mut self,
        name: &str,
        args: Vec<Value>,
        expect_reply: bool,
    ) -> Result<f64, RtmpError> {
        let tx = if expect_reply {
            self.transaction()
        } else {
            0.0
        };
        self.command(0, Command::new(name, tx, args))?;
        Ok(tx)
    }

    /// Sends an audio, video or data message on `stream`.
    pub fn send_media(
        &mut self,
        stream: u32,
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<(), RtmpError> {
        let (chunk_stream, type_id) = match kind {
            MediaKind::Audio => (csid::CLIENT_AUDIO, crate::message::type_id::AUDIO),
            MediaKind::Video => (csid::CLIENT_VIDEO, crate::message::type_id::VIDEO),
            MediaKind::Data => (csid::CLIENT_DATA, crate::message::type_id::DATA_AMF0),
        };
        let message = match type_id {
            crate::message::type_id::AUDIO => Message::Audio(payload),
            crate::message::type_id::VIDEO => Message::Video(payload),
            _ => Message::Unknown { type_id, payload },
        };
        // A publisher's output is a stream: keep its buffers between messages.
        self.wire.mark_streaming();
        self.submit(chunk_stream, stream, timestamp, message)
    }

    /// Sends one shared-object message with `events`.
    pub fn shared_object(
        &mut self,
        name: &str,
        persistent: bool,
        events: Vec<SoEvent>,
    ) -> Result<(), RtmpError> {
        let message = SharedObjectMessage {
            name: String::from(name),
            version: 0,
            persistent,
            events,
        };
        self.submit(csid::COMMAND, 0, 0, Message::SharedObject(message))
    }

    /// Subscribes to shared object `name`.
    pub fn so_use(&mut self, name: &str, persistent: bool) -> Result<(), RtmpError> {
        self.shared_object(name, persistent, alloc::vec![SoEvent::Use])
    }

    /// Unsubscribes from shared object `name`.
    pub fn so_release(&mut self, name: &str, persistent: bool) -> Result<(), RtmpError> {
        self.shared_object(name, persistent, alloc::vec![SoEvent::Release])
    }

    /// Sets several keys in one message (one batch, one version step).
    pub fn so_set(
        &mut self,
        name: &str,
        persistent: bool,
        changes: Vec<(String, Value)>,
    ) -> Result<(), RtmpError> {
        let events = changes
            .into_iter()
            .map(|(key, value)| SoEvent::RequestChange { key, value })
            .collect();
        self.shared_object(name, persistent, events)
    }

    /// Deletes `key`.
    pub fn so_delete(&mut self, name: &str, persistent: bool, key: &str) -> Result<(), RtmpError> {
        let event = SoEvent::RequestRemove {
            key: String::from(key),
        };
        self.shared_object(name, persistent, alloc::vec![event])
    }

    /// Broadcasts `method(args)` to every subscriber of `name`.
    pub fn so_send(
        &mut self,
        name: &str,
        persistent: bool,
        method: &str,
        args: Vec<Value>,
    ) -> Result<(), RtmpError> {
        let event = SoEvent::SendMessage {
            method: String::from(method),
            args,
        };
        self.shared_object(name, persistent, alloc::vec![event])
    }

    fn on_message(&mut self, raw: crate::chunk::RawMessage) -> Result<(), RtmpError> {
        if let Some(n) = self.received.get_mut(usize::from(raw.type_id)) {
            *n += 1;
        }
        if self.config.raw_shared_objects
            && let Some(payload) = Message::shared_object_payload(&raw)?
        {
            for event in SharedObjectView::parse(&payload)?.events() {
                event?;
            }
            self.events
                .push_back(ClientEvent::SharedObjectPayload(payload));
            return Ok(());
        }
        let message = Message::decode(&raw, &self.config.limits)?;
        match message {
            Message::Control(ProtocolControl::WindowAckSize(window)) => {
                self.wire.set_peer_window(window);
            }
            Message::Control(_) | Message::Unknown { .. } => {}
            Message::UserControl(UserControl::PingRequest(stamp)) => {
                self.wire.send(
                    csid::CONTROL,
                    0,
                    0,
                    &Message::UserControl(UserControl::PingResponse(stamp)),
                );
                // Answered already; reported for observability.
                let ping = UserControl::PingRequest(stamp);
                self.events.push_back(ClientEvent::UserControl(ping));
            }
            Message::UserControl(event) => self.events.push_back(ClientEvent::UserControl(event)),
            Message::Audio(payload) => self.media(&raw, MediaKind::Audio, payload),
            Message::Video(payload) => self.media(&raw, MediaKind::Video, payload),
            // Type 15: the body after its encoding byte (checked by decode).
            Message::Data(_) if raw.type_id == crate::message::type_id::DATA_AMF3 => {
                self.media(&raw, MediaKind::Data, raw.payload.slice(1..))
            }
            Message::Data(_) => self.media(&raw, MediaKind::Data, raw.payload.clone()),
            Message::Aggregate(body) => {
                for part in aggregate::split(raw.timestamp, &body) {
                    self.events.push_back(ClientEvent::Media {
                        stream_id: raw.stream_id,
                        kind: part.kind,
                        timestamp: part.timestamp,
                        payload: part.payload,
                    });
                }
            }
            Message::SharedObject(so) => self.events.push_back(ClientEvent::SharedObject(so)),
            Message::Command(command) => self.on_command(raw.stream_id, command),
        }
        Ok(())
    }

    fn media(&mut self, raw: &crate::chunk::RawMessage, kind: MediaKind, payload: Bytes) {
        self.events.push_back(ClientEvent::Media {
            stream_id: raw.stream_id,
            kind,
            timestamp: raw.timestamp,
            payload,
        });
    }

    fn on_command(&mut self, stream: u32, command: Command) {
        let text = |v: Option<&Value>, key: &str| {
            v.and_then(|i| i.get(key))
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_default()
        };
        match ServerReply::from_command(command) {
            ServerReply::Result {
                transaction_id,
                args,
                ..
            } if transaction_id == 1.0 && !self.connected => {
                self.connected = true;
                let info = args.into_iter().find(|a| a.get("code").is_some());
                self.events.push_back(ClientEvent::Connected {
                    info: info.unwrap_or(Value::Null),
                });
                if self.config.out_chunk_size > 0 {
                    self.wire.set_out_chunk_size(self.config.out_chunk_size);
                }
                while let Some((chunk_stream, stream, ts, message)) = self.queued.pop_front() {
                    self.send_now(chunk_stream, stream, ts, &message);
                }
            }
            ServerReply::Error {
                transaction_id,
                info,
            } if transaction_id == 1.0 && !self.connected => {
                self.events.push_back(ClientEvent::ConnectFailed {
                    code: text(Some(&info), "code"),
                    description: text(Some(&info), "description"),
                });
            }
            ServerReply::Result {
                transaction_id,
                args,
                ..
            } => {
                let created = self
                    .create_stream_transactions
                    .iter()
                    .position(|t| *t == transaction_id);
                let stream_id = args
                    .first()
                    .and_then(Value::as_f64)
                    .and_then(crate::hub::store::whole_u32);
                match (created, stream_id) {
                    (Some(i), Some(stream_id)) => {
                        self.create_stream_transactions.remove(i);
                        self.events.push_back(ClientEvent::StreamCreated {
                            transaction_id,
                            stream_id,
                        });
                    }
                    _ => self.events.push_back(ClientEvent::Result {
                        transaction_id,
                        args,
                    }),
                }
            }
            ServerReply::Error {
                transaction_id,
                info,
            } => self.events.push_back(ClientEvent::Error {
                transaction_id,
                info,
            }),
            ServerReply::OnStatus { info } => {
                let info = Some(&info);
                self.events.push_back(ClientEvent::Status {
                    stream_id: stream,
                    level: text(info, "level"),
                    code: text(info, "code"),
                    description: text(info, "description"),
                });
            }
            ServerReply::Call(command) => self.events.push_back(ClientEvent::Call(command)),
        }
    }
}
