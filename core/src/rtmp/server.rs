//! The server side of one RTMP connection.

use super::fanout::{
    media_encoder, media_encoder_amf3, notice_fits, notice_payload, notices_encoder,
    notices_encoder_amf3, shared_notice_max_len, so_message, so_message_amf3,
};
use super::wire::Wire;
use super::{RtmpError, aggregate, csid};
use crate::Limits;
use crate::amf0::Value;
use crate::connection::{CloseReason, SharedEncoding, ToleratedLog};
use crate::hub::{ConnectRequest, Delivery, Level, MediaKind, Request, SoChange, SoOp};
use crate::message::{
    BandwidthLimit, ClientCommand, Command, Message, MessageError, ProtocolControl, Reading,
    SharedObjectMessage, SoEvent, StatusLevel, StreamRef, Tolerated, UserControl, connect_error,
    connect_result, create_stream_result, error, on_fc_publish, on_fc_unpublish, on_status, result,
    split_stream_name, status, type_id,
};
use crate::queue::release_queue;
use crate::rtmp::handshake::{RANDOM_LEN, ServerHandshake};
use crate::time::{Duration, Instant};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::IpAddr;

/// Settings of a server connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Outbound chunk size announced after connect (ffmpeg, nginx: 4096).
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size we ask the client to acknowledge by.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth we send.
    pub peer_bandwidth: u32,
    /// Silence after which we ping the client.
    pub ping_interval: Duration,
    /// Further silence after a ping before the client is given up.
    pub ping_timeout: Duration,
    /// Time the handshake may take.
    pub handshake_timeout: Duration,
    /// Message streams one connection may create.
    pub max_streams: usize,
    /// Parser bounds.
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            out_chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_streams: 16,
            limits: Limits::default(),
        }
    }
}

/// Boxed handshake: it is freed once done, so an open connection carries
/// neither its heap buffers nor its inline state.
#[derive(Debug)]
enum Phase {
    Handshake(Box<ServerHandshake>),
    Open,
}

/// The server side of one RTMP connection: handshake, chunk stream,
/// protocol control, and translation between RTMP commands and the hub's
/// protocol-neutral [`Request`]s and [`Delivery`]s.
///
/// Driven as [`Connection`](crate::connection::Connection) documents.
/// Its timers: the handshake timeout, then a ping after
/// [`ServerConfig::ping_interval`] of silence and a close
/// ([`RtmpError::Unresponsive`]) if the ping goes unanswered.
///
/// **Object encoding.** The client's `connect` decides it: objectEncoding
/// 3 makes an AMF3 connection, anything else AMF0, and the answer to
/// `connect` (always type 20, AMF0) says which. An AMF3 connection is sent
/// every later command as type 17 ([`Command::encode_amf3`]),
/// shared-object messages as type 16 and stream data as type 15; an AMF0
/// connection types 20, 19 and 18. Why each kind takes its form: "One
/// value model" in docs/architecture.md.
#[derive(Debug)]
pub struct ServerConnection {
    config: ServerConfig,
    phase: Phase,
    wire: Wire,
    events: VecDeque<Request>,
    peer: Option<IpAddr>,
    /// Transaction id and object encoding of the client's connect.
    connect: Option<(f64, f64)>,
    /// Message streams created, in order.
    streams: Vec<OwnStream>,
    next_stream: u32,
    started: Instant,
    last_input: Instant,
    ping_sent: Option<Instant>,
    /// Why it closes, once it does. Boxed: rare, and the connection is
    /// embedded in each runtime task.
    close: Option<Box<CloseReason<RtmpError>>>,
    /// The hub refused the connect; its `Close` follows.
    rejected: Option<Box<CloseReason<RtmpError>>>,
    /// Media went into `events` since it last drained: keep its buffer.
    media_in: bool,
    /// Lenient readings for the runtime's debug log.
    tolerated: ToleratedLog,
}

/// The chunk stream of a command on message stream `stream`.
fn command_csid(stream: u32) -> u32 {
    if stream == 0 {
        csid::COMMAND
    } else {
        csid::STREAM
    }
}

/// A message stream the client created, and the name it last published or
/// played on it (so a `deleteStream` by name finds it).
#[derive(Debug)]
struct OwnStream {
    id: u32,
    name: Option<String>,
}

impl ServerConnection {
    /// A connection whose handshake starts now. `random` fills the
    /// handshake's random bytes; `peer` is the client's address (for hooks
    /// and per-address limits).
    pub fn new(
        config: ServerConfig,
        now: Instant,
        random: &[u8; RANDOM_LEN],
        peer: Option<IpAddr>,
    ) -> Self {
        let epoch = (now.as_millis() & 0xFFFF_FFFF) as u32;
        let wire = Wire::new(&config.limits);
        ServerConnection {
            phase: Phase::Handshake(Box::new(ServerHandshake::new(random, epoch))),
            wire,
            events: VecDeque::new(),
            peer,
            connect: None,
            streams: Vec::new(),
            next_stream: 1,
            started: now,
            last_input: now,
            ping_sent: None,
            close: None,
            rejected: None,
            media_in: false,
            tolerated: ToleratedLog::default(),
            config,
        }
    }

    /// Takes bytes read from the socket.
    pub fn handle_input(&mut self, now: Instant, mut data: &[u8]) -> Result<(), RtmpError> {
        if let Some(close) = &self.close {
            return close.failure().map_or(Ok(()), |e| Err(e.clone()));
        }
        self.last_input = now;
        self.ping_sent = None;
        if let Phase::Handshake(handshake) = &mut self.phase {
            let consumed = match handshake.handle_input(data) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e.into())),
            };
            if let Some(reply) = handshake.poll_transmit() {
                self.wire.queue(reply);
            }
            self.wire.count_input(consumed);
            data = data.get(consumed..).unwrap_or_default();
            if handshake.is_complete() {
                self.phase = Phase::Open;
            } else {
                return Ok(());
            }
        }
        self.wire.push_input(data);
        loop {
            match self.wire.next_message() {
                Ok(Some(raw)) => {
                    if let Err(e) = self.on_message(now, raw) {
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

    fn fail(&mut self, error: RtmpError) -> RtmpError {
        self.close_with(CloseReason::Failed(error.clone()));
        error
    }

    /// Closes for `reason`, unless it already closes.
    fn close_with(&mut self, reason: CloseReason<RtmpError>) {
        if self.close.is_none() {
            self.close = Some(Box::new(reason));
        }
    }

    /// The next request for the hub.
    pub fn poll_event(&mut self) -> Option<Request> {
        let event = self.events.pop_front()?;
        // On the pop that empties the queue (not on later polls of an empty
        // one, which would free a publisher's queue on every read).
        if self.events.is_empty() {
            release_queue(&mut self.events, self.media_in);
            self.media_in = false;
        }
        Some(event)
    }

    /// The next lenient reading taken (see "Lenient reading" in
    /// docs/architecture.md): drain after `handle_input` and log it.
    pub fn poll_tolerated(&mut self) -> Option<Tolerated> {
        self.tolerated.pop()
    }

    /// The next bytes for the socket.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.wire.poll_transmit()
    }

    /// Bytes waiting in `poll_transmit`.
    pub fn pending_bytes(&self) -> usize {
        self.wire.pending_bytes()
    }

    /// When `handle_timeout` should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closing() {
            return None;
        }
        Some(match (&self.phase, self.ping_sent) {
            (Phase::Handshake(_), _) => self.started + self.config.handshake_timeout,
            (Phase::Open, Some(sent)) => sent + self.config.ping_timeout,
            (Phase::Open, None) => self.last_input + self.config.ping_interval,
        })
    }

    /// Pings a silent client; gives up on one that stays silent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closing() {
            return;
        }
        match (&self.phase, self.ping_sent) {
            (Phase::Handshake(_), _) => {
                if now >= self.started + self.config.handshake_timeout {
                    let ms = self.config.handshake_timeout.as_millis();
                    self.close_with(CloseReason::Failed(RtmpError::HandshakeTimeout { ms }));
                }
            }
            (Phase::Open, Some(sent)) => {
                if now >= sent + self.config.ping_timeout {
                    let silent_ms = (now - self.last_input).as_millis();
                    self.close_with(CloseReason::Failed(RtmpError::Unresponsive { silent_ms }));
                }
            }
            (Phase::Open, None) => {
                if now >= self.last_input + self.config.ping_interval {
                    let stamp = (now.as_millis() & 0xFFFF_FFFF) as u32;
                    self.send_user_control(UserControl::PingRequest(stamp));
                    self.ping_sent = Some(now);
                }
            }
        }
    }

    /// True once the connection should be flushed and closed: after a fatal
    /// error, a timeout, or the hub's [`Delivery::Close`].
    pub fn is_closing(&self) -> bool {
        self.close.is_some()
    }

    /// How shared-object notices would go out now: the shared encoding
    /// once the connection is open and until it closes (see
    /// [`SharedEncoding`]).
    pub fn shared_encoding(&self) -> SharedEncoding {
        match self.phase {
            Phase::Open if !self.is_closing() => SharedEncoding::Shared {
                max_len: shared_notice_max_len(self.wire.out_chunk_size()),
            },
            _ => SharedEncoding::None,
        }
    }

    /// The outbound chunk size now (128 until the connect is accepted).
    pub fn out_chunk_size(&self) -> u32 {
        self.wire.out_chunk_size()
    }

    /// Why the connection closes, once it does.
    pub fn close_reason(&self) -> Option<&CloseReason<RtmpError>> {
        self.close.as_deref()
    }

    /// Turns a hub delivery into bytes for the client (nothing once
    /// closing).
    pub fn handle_delivery(&mut self, now: Instant, delivery: Delivery) {
        if self.is_closing() {
            return;
        }
        self.wire.note_delivery(now);
        match delivery {
            Delivery::Media(media) => {
                self.wire.mark_streaming();
                self.wire.queue(media.encoded);
            }
            Delivery::Accepted { .. } => {
                let (tx, encoding) = self.connect.unwrap_or((1.0, 0.0));
                let window = self.config.window_ack_size;
                self.send_control(ProtocolControl::WindowAckSize(window));
                self.send_control(ProtocolControl::SetPeerBandwidth {
                    size: self.config.peer_bandwidth,
                    limit: BandwidthLimit::Dynamic,
                });
                self.send_user_control(UserControl::StreamBegin(0));
                self.wire.set_out_chunk_size(self.config.out_chunk_size);
                let reply = connect_result(tx, encoding, "Connection succeeded.");
                self.send_command_amf0(0, reply);
            }
            Delivery::Rejected { code, description } => {
                let (tx, _) = self.connect.unwrap_or((1.0, 0.0));
                self.send_command_amf0(0, connect_error(tx, code.code(), &description));
                self.rejected = Some(Box::new(CloseReason::Rejected { code, description }));
            }
            Delivery::SharedObject(so) => {
                if notice_fits(&so.encoded, self.wire.out_chunk_size()) {
                    // The shared encoding: nothing encoded per subscriber.
                    self.wire.queue(so.encoded);
                } else {
                    // AMF3 connections were given the type-16 encoding.
                    let (type_id, payload) = if self.speaks_amf3() {
                        let payload = notice_payload(&so.encoded)
                            .unwrap_or_else(|| so_message_amf3(&so.update));
                        (crate::message::type_id::SHARED_OBJECT_AMF3, payload)
                    } else {
                        let payload = notice_payload(&so.encoded)
                            .unwrap_or_else(|| so_message(&so.update).to_bytes());
                        (crate::message::type_id::SHARED_OBJECT_AMF0, payload)
                    };
                    self.wire.send_raw(&crate::chunk::RawMessage {
                        csid: csid::COMMAND,
                        timestamp: 0,
                        type_id,
                        stream_id: 0,
                        payload,
                    });
                }
            }
            Delivery::Status {
                stream,
                level,
                code,
                description,
            } => {
                let level = match level {
                    Level::Status => StatusLevel::Status,
                    Level::Warning => StatusLevel::Warning,
                    Level::Error => StatusLevel::Error,
                };
                self.send_command(stream, on_status(level, code, &description, Vec::new()));
            }
            Delivery::StreamBegin { stream } => {
                self.send_user_control(UserControl::StreamBegin(stream));
            }
            Delivery::StreamEof { stream } => {
                self.send_user_control(UserControl::StreamEof(stream));
            }
            Delivery::Close { reason } => {
                self.send_command(
                    0,
                    on_status(
                        StatusLevel::Status,
                        status::CONNECT_CLOSED,
                        &reason,
                        Vec::new(),
                    ),
                );
                let close = self.rejected.take();
                self.close =
                    Some(close.unwrap_or_else(|| Box::new(CloseReason::Server { reason })));
            }
        }
    }

    fn send_control(&mut self, control: ProtocolControl) {
        self.wire
            .send(csid::CONTROL, 0, 0, &Message::Control(control));
    }

    fn send_user_control(&mut self, event: UserControl) {
        self.wire
            .send(csid::CONTROL, 0, 0, &Message::UserControl(event));
    }

    /// Sends a command in the connection's encoding: type 17 to an AMF3
    /// connection ([`Command::encode_amf3`]), type 20 otherwise.
    fn send_command(&mut self, stream: u32, command: Command) {
        if self.speaks_amf3() {
            let payload = command.to_bytes_amf3(&self.config.limits);
            self.wire.send_raw(&crate::chunk::RawMessage {
                csid: command_csid(stream),
                timestamp: 0,
                type_id: type_id::COMMAND_AMF3,
                stream_id: stream,
                payload,
            });
        } else {
            self.send_command_amf0(stream, command);
        }
    }

    /// Sends a command as type 20 whatever the connection speaks: the
    /// answer to `connect`, which tells the client the encoding.
    fn send_command_amf0(&mut self, stream: u32, command: Command) {
        self.wire
            .send(command_csid(stream), stream, 0, &Message::Command(command));
    }

    fn on_message(&mut self, now: Instant, raw: crate::chunk::RawMessage) -> Result<(), RtmpError> {
        let _ = now;
        let message = match Message::decode(&raw, &self.config.limits) {
            Ok(message) => message,
            // A command whose AMF0 walked fine but that has no string name
            // or no numeric transaction id: well framed, just not a call we
            // can read. Ignored (nothing to answer), noted; the session goes on.
            Err(
                e @ (MessageError::WrongType {
                    command: "command message",
                    ..
                }
                | MessageError::MissingField {
                    command: "command message",
                    ..
                }),
            ) if matches!(raw.type_id, type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3) => {
                let reading = format!("{e}; ignored");
                self.tolerated.push(Tolerated::new("(unnamed)", reading));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        match message {
            Message::Control(ProtocolControl::WindowAckSize(window)) => {
                self.wire.set_peer_window(window);
            }
            Message::Control(_) | Message::Unknown { .. } => {}
            Message::UserControl(UserControl::PingRequest(stamp)) => {
                self.send_user_control(UserControl::PingResponse(stamp));
            }
            Message::UserControl(_) => {}
            Message::Audio(payload) => {
                self.media(raw.stream_id, MediaKind::Audio, raw.timestamp, payload)
            }
            Message::Video(payload) => {
                self.media(raw.stream_id, MediaKind::Video, raw.timestamp, payload)
            }
            Message::Data(data) => {
                // Type 18: relayed as sent. Type 15: its values in the shared
                // model (AVM+ values unwrapped where AMF0 has a twin), so
                // players of either encoding and the metadata cache read
                // what an AMF0 publisher would have sent.
                let body = if raw.type_id == type_id::DATA_AMF3 {
                    // Readable by shared- and per-value-table readers alike.
                    let mut data = data;
                    crate::amf3::portable_body(&mut data.values, &self.config.limits);
                    data.to_bytes()
                } else {
                    raw.payload
                };
                self.media(raw.stream_id, MediaKind::Data, raw.timestamp, body);
            }
            Message::Aggregate(body) => {
                for part in aggregate::split(raw.timestamp, &body) {
                    self.media(raw.stream_id, part.kind, part.timestamp, part.payload);
                }
            }
            Message::Command(command) => self.on_command(raw.stream_id, command)?,
            Message::SharedObject(so) => {
                self.require_connect("shared object")?;
                self.on_shared_object(so);
            }
        }
        Ok(())
    }

    /// Whether `connect` asked for (and was answered with) objectEncoding 3.
    fn speaks_amf3(&self) -> bool {
        matches!(self.connect, Some((_, encoding)) if encoding == 3.0)
    }

    fn require_connect(&self, what: &str) -> Result<(), RtmpError> {
        match self.connect {
            Some(_) => Ok(()),
            None => Err(RtmpError::CommandBeforeConnect(String::from(what))),
        }
    }

    fn has_stream(&self, id: u32) -> bool {
        self.streams.iter().any(|s| s.id == id)
    }

    fn name_stream(&mut self, id: u32, name: &str) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.id == id) {
            s.name = Some(String::from(split_stream_name(name).0));
        }
    }

    /// The stream a `deleteStream` means (see [`StreamRef`]): the id given;
    /// else the stream that published or played that name; else the
    /// message's own stream; else the connection's only stream.
    fn resolve_stream(&self, target: &StreamRef, message_stream: u32) -> Option<u32> {
        if let StreamRef::Id(id) = target {
            return Some(*id);
        }
        if let StreamRef::Name(name) = target {
            let name = split_stream_name(name).0;
            let named = self
                .streams
                .iter()
                .rev()
                .find(|s| s.name.as_deref() == Some(name));
            if let Some(s) = named {
                return Some(s.id);
            }
        }
        if message_stream != 0 && self.has_stream(message_stream) {
            return Some(message_stream);
        }
        match self.streams.as_slice() {
            [only] => Some(only.id),
            _ => None,
        }
    }

    fn media(&mut self, stream: u32, kind: MediaKind, timestamp: u32, payload: Bytes) {
        if stream != 0 && self.has_stream(stream) {
            self.media_in = true;
            self.events.push_back(Request::Media {
                stream,
                kind,
                timestamp,
                payload,
            });
        }
    }

    fn status(&mut self, stream: u32, level: StatusLevel, code: &str, description: &str) {
        self.send_command(stream, on_status(level, code, description, Vec::new()));
    }

    fn on_command(&mut self, stream: u32, command: Command) -> Result<(), RtmpError> {
        if self.connect.is_none() && command.name != "connect" {
            return Err(RtmpError::CommandBeforeConnect(command.name));
        }
        let Reading { command, tolerated } = ClientCommand::from_command(command);
        self.tolerated.extend(tolerated);
        match command {
            ClientCommand::Connect {
                transaction_id,
                params,
            } => {
                if self.connect.is_some() {
                    let why = "already connected";
                    self.send_command(0, error(transaction_id, status::CALL_FAILED, why));
                    return Ok(());
                }
                // The encoding tern speaks: AMF3 (shared-object messages as
                // type 16, values as AVM+) when the client asked for it,
                // AMF0 for anything else; the reply says which.
                let encoding = if params.object_encoding == 3.0 {
                    3.0
                } else {
                    0.0
                };
                self.connect = Some((transaction_id, encoding));
                let mut target = params.app.clone();
                if !target.contains('?')
                    && let Some(query) = params.tc_url.as_deref().and_then(|u| u.split_once('?'))
                {
                    target.push('?');
                    target.push_str(query.1);
                }
                self.events.push_back(Request::Connect(ConnectRequest {
                    protocol: crate::rtmp::PROTOCOL,
                    target,
                    params: params.object,
                    args: params.args,
                    address: self.peer,
                    // An AMF3 connection gets its notices as type 16: one
                    // more encoding, shared by every AMF3 subscriber.
                    notices: Some(if encoding == 3.0 {
                        notices_encoder_amf3()
                    } else {
                        notices_encoder()
                    }),
                }));
            }
            ClientCommand::CreateStream { transaction_id } => {
                if self.streams.len() >= self.config.max_streams {
                    let why = format!("at most {} streams per connection", self.config.max_streams);
                    self.send_command(0, error(transaction_id, status::CALL_FAILED, &why));
                } else {
                    let id = self.next_stream;
                    self.next_stream = self.next_stream.wrapping_add(1).max(1);
                    self.streams.push(OwnStream { id, name: None });
                    self.send_command(0, create_stream_result(transaction_id, id));
                }
            }
            ClientCommand::DeleteStream { target } => match self.resolve_stream(&target, stream) {
                Some(id) => {
                    if target != StreamRef::Id(id) {
                        let reading = format!("{target:?} resolved to stream {id}");
                        self.tolerated.push(Tolerated::new("deleteStream", reading));
                    }
                    self.streams.retain(|s| s.id != id);
                    self.events.push_back(Request::CloseStream { stream: id });
                }
                None => {
                    let reading = format!("{target:?} matches no stream; ignored");
                    self.tolerated.push(Tolerated::new("deleteStream", reading));
                }
            },
            ClientCommand::CloseStream
            | ClientCommand::StopPublish { .. }
            | ClientCommand::StopPlay { .. } => {
                self.events.push_back(Request::CloseStream { stream });
            }
            ClientCommand::ReleaseStream { transaction_id, .. } => {
                self.send_command(0, result(transaction_id, alloc::vec![Value::Undefined]));
            }
            ClientCommand::FcPublish { name, .. } => {
                let description = format!("FCPublish to stream {name}");
                self.send_command(0, on_fc_publish(status::PUBLISH_START, &description));
            }
            ClientCommand::FcUnpublish { name, .. } => {
                let description = format!("FCUnpublish stream {name}");
                self.send_command(0, on_fc_unpublish(status::UNPUBLISH_SUCCESS, &description));
            }
            ClientCommand::Publish { name, .. } => {
                if stream == 0 || !self.has_stream(stream) {
                    let why = "publish on a stream that was not created";
                    self.status(stream, StatusLevel::Error, status::PUBLISH_BAD_NAME, why);
                } else {
                    self.name_stream(stream, &name);
                    self.events.push_back(Request::Publish { stream, name });
                }
            }
            ClientCommand::Play { name, start, .. } => {
                if stream == 0 || !self.has_stream(stream) {
                    let why = "play on a stream that was not created";
                    self.status(
                        stream,
                        StatusLevel::Error,
                        status::PLAY_STREAM_NOT_FOUND,
                        why,
                    );
                } else {
                    self.name_stream(stream, &name);
                    self.events.push_back(Request::Play {
                        stream,
                        name,
                        start,
                        encoder: if self.speaks_amf3() {
                            media_encoder_amf3(self.config.out_chunk_size, stream)
                        } else {
                            media_encoder(self.config.out_chunk_size, stream)
                        },
                    });
                }
            }
            ClientCommand::Play2 { .. }
            | ClientCommand::ReceiveAudio(_)
            | ClientCommand::ReceiveVideo(_) => {
                // Tolerated: live streams have one rendition and always carry both.
            }
            ClientCommand::Pause { pause, .. } => {
                let (code, what) = if pause {
                    (status::PAUSE_NOTIFY, "paused")
                } else {
                    (status::UNPAUSE_NOTIFY, "unpaused")
                };
                let description = format!("stream {what} (live streams keep running)");
                self.status(stream, StatusLevel::Status, code, &description);
            }
            ClientCommand::Seek { .. } => {
                let why = "seeking is not supported on live streams";
                self.status(stream, StatusLevel::Error, status::SEEK_FAILED, why);
            }
            ClientCommand::GetStreamLength { transaction_id, .. } => {
                self.send_command(0, result(transaction_id, alloc::vec![Value::Number(0.0)]));
            }
            ClientCommand::Call {
                name,
                transaction_id,
                ..
            } => {
                // An unknown name: answered (when an answer is expected) and
                // noted; the session goes on.
                let reading = if transaction_id != 0.0 {
                    let why = format!("Method not found ({name})");
                    self.send_command(0, error(transaction_id, status::CALL_FAILED, &why));
                    "unknown command, answered _error NetConnection.Call.Failed"
                } else {
                    "unknown command without a transaction, ignored"
                };
                self.tolerated.push(Tolerated::new(&name, reading));
            }
        }
        Ok(())
    }

    /// Turns one shared-object message into requests: use, release and send
    /// each become one; consecutive change/remove requests become one batch
    /// (one version step), as the client sent them in one message.
    fn on_shared_object(&mut self, message: SharedObjectMessage) {
        let SharedObjectMessage {
            name,
            persistent,
            events,
            ..
        } = message;
        let mut batch: Vec<SoChange> = Vec::new();
        let mut ops: Vec<SoOp> = Vec::new();
        for event in events {
            let op = match event {
                SoEvent::RequestChange { key, value } => {
                    batch.push(SoChange::Set { key, value });
                    continue;
                }
                SoEvent::RequestRemove { key } => {
                    batch.push(SoChange::Delete { key });
                    continue;
                }
                SoEvent::Use => SoOp::Use,
                SoEvent::Release => SoOp::Release,
                SoEvent::SendMessage { method, args } => SoOp::Send { method, args },
                // Server-to-client events have no meaning from a client.
                _ => continue,
            };
            if !batch.is_empty() {
                ops.push(SoOp::Batch(core::mem::take(&mut batch)));
            }
            ops.push(op);
        }
        if !batch.is_empty() {
            ops.push(SoOp::Batch(batch));
        }
        for op in ops {
            self.events.push_back(Request::SharedObject {
                name: name.clone(),
                persistent,
                op,
            });
        }
    }
}
