//! Human-readable traces of one direction of an RTMP byte stream.
//!
//! [`Tracer`] skips (and summarises) the handshake, then reassembles chunks
//! and prints one line per message. It backs the message-level snapshot
//! tests and the `tern trace <file>` command, so its output is
//! deterministic and every line is bounded ([`MAX_LINE_LEN`]).
//!
//! # Line format
//!
//! Every line starts with the direction, `C→S` or `S→C`.
//!
//! ```text
//! C→S handshake C0 version=3
//! C→S handshake C1 time=0 version=0.0.0.0 (plain)
//! S→C handshake S1 time=1000 version=4.0.0.1 (digest)
//! C→S handshake C2 time=0 time2=0
//! C→S csid=3 ts=0 len=283 type=20 command connect tx=1 {app: "live", …}
//! S→C csid=4 ts=0 len=130 type=20 sid=1 command onStatus tx=0 null {level: "status", …}
//! C→S error: chunk stream 5 starts with a fmt 1/2/3 chunk but has no previous header
//! C→S end: 7 bytes of an incomplete chunk
//! ```
//!
//! A message line is `csid= ts= len= type=`, then `sid=` only when the
//! message stream id is not 0, then the body:
//!
//! | type        | body                                                                 |
//! |-------------|----------------------------------------------------------------------|
//! | 1           | `set-chunk-size 4096`                                                |
//! | 2           | `abort csid=4`                                                       |
//! | 3           | `ack 12345`                                                          |
//! | 4           | `user-control stream-begin 1` (`stream-eof N`, `stream-dry N`, `set-buffer-length STREAM MSms`, `stream-is-recorded N`, `ping-request N`, `ping-response N`, `event=E N bytes`) |
//! | 5           | `window-ack-size 2500000`                                            |
//! | 6           | `set-peer-bandwidth 2500000 dynamic` (`hard`, `soft`)                |
//! | 8           | `audio aac raw 372 bytes`, `audio aac seq-header 2 bytes`, `audio speex 43 bytes`, `audio Opus seq-header 19 bytes` |
//! | 9           | `video key avc seq-header 45 bytes`, `video inter avc 1200 bytes`, `video key hvc1 seq-header 40 bytes` |
//! | 17, 20      | `command NAME tx=N OBJECT ARG…`                                      |
//! | 15, 18      | `data HANDLER VALUE…` (`data @setDataFrame onMetaData {…}`)          |
//! | 16, 19      | `shared-object "chat" v=3 transient [use, change message="hi", success message]` |
//! | 22, other   | `aggregate N bytes`, `unknown N bytes`                               |
//!
//! A payload that does not decode gives `FAMILY invalid (N bytes): ERROR`
//! and tracing goes on (the chunk stream is still in step). A chunk
//! stream error gives an `error:` line and stops the tracer for good.
//!
//! Names (command names, data handlers, object keys, shared-object keys)
//! are written bare when they are short and made of letters, digits and
//! `_ @ . $ - : /`; otherwise they are quoted like strings. Values use
//! [`render_value`].
//!
//! # Decisions
//!
//! - The C1/S1 `(plain)`/`(digest)` tag only reflects the version field
//!   (zero means plain); the digest itself is not verified.
//! - A C0/S0 version other than 3 is an error (the rest would be RTMPE or
//!   not RTMP at all).
//! - Lines are queued and handed out by [`Tracer::poll_line`]; the caller
//!   should drain them after each [`Tracer::feed`] (the queue grows with
//!   the input given to one `feed`). Input bytes are held only up to the
//!   end of the last whole chunk; partial messages are bounded by
//!   [`Limits`] inside the chunk decoder.

use crate::Limits;
use crate::amf0::Value;
use crate::chunk::{ChunkDecoder, ChunkError, RawMessage};
use crate::message::media::{
    AudioCodec, AudioPacketType, FourCc, VideoCodec, VideoFrameType, VideoPacketType, sound_format,
    video_codec,
};
use crate::message::{
    AudioTag, BandwidthLimit, Command, DataMessage, Message, ProtocolControl, SET_DATA_FRAME,
    SharedObjectMessage, SoEvent, UserControl, VideoTag, type_id,
};
use crate::rtmp::handshake::{HandshakeError, PACKET_LEN, RTMP_VERSION};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::BytesMut;
use core::fmt::{self, Write};

/// Longest line (in bytes) a renderer produces before cutting it and
/// appending `…`.
pub const MAX_LINE_LEN: usize = 1024;

/// Strings longer than this many characters are cut and end with `…`
/// inside the quotes.
pub const MAX_STRING_CHARS: usize = 80;

/// Deepest nesting [`render_value`] descends into; deeper values print `…`.
/// Decoded values are already bounded by `Limits::amf0_max_depth`; this
/// protects against values built by hand.
const MAX_RENDER_DEPTH: usize = 64;

/// Which way the traced bytes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client: C0, C1, C2, then the client's chunk stream.
    ClientToServer,
    /// From the server: S0, S1, S2, then the server's chunk stream.
    ServerToClient,
}

impl Direction {
    /// `"C→S"` or `"S→C"`.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::ClientToServer => "C→S",
            Direction::ServerToClient => "S→C",
        }
    }

    /// The letter of the handshake packets this side sends: `C` or `S`.
    fn packet_letter(self) -> char {
        match self {
            Direction::ClientToServer => 'C',
            Direction::ServerToClient => 'S',
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.arrow())
    }
}

/// Why tracing stopped. After one, the tracer is dead and every later
/// [`Tracer::feed`] returns the same error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceError {
    /// C0/S0 named a version other than 3.
    Handshake(HandshakeError),
    /// The chunk stream could not be decoded.
    Chunk(ChunkError),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Handshake(e) => write!(f, "handshake: {e}"),
            TraceError::Chunk(e) => write!(f, "chunk stream: {e}"),
        }
    }
}

impl core::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            TraceError::Handshake(e) => Some(e),
            TraceError::Chunk(e) => Some(e),
        }
    }
}

impl From<ChunkError> for TraceError {
    fn from(e: ChunkError) -> Self {
        TraceError::Chunk(e)
    }
}

impl From<HandshakeError> for TraceError {
    fn from(e: HandshakeError) -> Self {
        TraceError::Handshake(e)
    }
}

/// Where the tracer is in the stream.
#[derive(Debug)]
enum Phase {
    /// Reading handshake packet `index` (0 = C0/S0, 1 = C1/S1, 2 = C2/S2),
    /// `got` bytes of it so far.
    Handshake { index: u8, got: usize },
    /// Decoding chunks.
    Chunks,
    /// Stopped by an error.
    Failed(TraceError),
}

/// Turns one direction of an RTMP byte stream into lines.
///
/// Feed bytes in any split with [`feed`](Tracer::feed), then drain
/// [`poll_line`](Tracer::poll_line) until `None`. Call
/// [`finish`](Tracer::finish) at the end of a capture to report bytes left
/// in an incomplete packet or chunk.
#[derive(Debug)]
pub struct Tracer {
    direction: Direction,
    limits: Limits,
    phase: Phase,
    /// First 8 bytes of the current handshake packet (time and version).
    head: [u8; 8],
    input: BytesMut,
    decoder: ChunkDecoder,
    lines: VecDeque<String>,
}

impl Tracer {
    /// A tracer at the start of a connection (before C0/S0).
    pub fn new(direction: Direction, limits: &Limits) -> Self {
        Tracer {
            direction,
            limits: limits.clone(),
            phase: Phase::Handshake { index: 0, got: 0 },
            head: [0; 8],
            input: BytesMut::new(),
            decoder: ChunkDecoder::new(limits),
            lines: VecDeque::new(),
        }
    }

    /// The direction traced.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Takes the next bytes of the stream and queues a line for every
    /// handshake packet and message completed by them.
    ///
    /// On a chunk stream error (or a bad C0/S0 version) an `error:` line is
    /// queued and the error returned; the tracer then ignores further input
    /// and returns the same error.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), TraceError> {
        let mut rest = bytes;
        loop {
            match self.phase {
                Phase::Failed(ref e) => return Err(e.clone()),
                Phase::Chunks => break,
                Phase::Handshake { index, got } => {
                    if rest.is_empty() {
                        return Ok(());
                    }
                    let len = if index == 0 { 1 } else { PACKET_LEN };
                    let want = len.saturating_sub(got);
                    let (now, later) = rest.split_at_checked(want).unwrap_or((rest, &[]));
                    for (i, b) in now.iter().enumerate() {
                        if let Some(slot) = self.head.get_mut(got.saturating_add(i)) {
                            *slot = *b;
                        } else {
                            break;
                        }
                    }
                    rest = later;
                    let got = got.saturating_add(now.len());
                    if got < len {
                        self.phase = Phase::Handshake { index, got };
                        return Ok(());
                    }
                    self.handshake_packet(index)?;
                }
            }
        }
        self.input.extend_from_slice(rest);
        self.decode_chunks()
    }

    /// The next queued line, oldest first.
    pub fn poll_line(&mut self) -> Option<String> {
        self.lines.pop_front()
    }

    /// Marks the end of the capture: queues an `end:` line if bytes are
    /// left in an incomplete handshake packet or chunk. Nothing is queued
    /// for a clean end or after an error.
    pub fn finish(&mut self) {
        let dir = self.direction;
        let line = match self.phase {
            Phase::Failed(_) => return,
            Phase::Handshake { index: 0, got: 0 } => return,
            Phase::Handshake { index, got } => {
                let len = if index == 0 { 1 } else { PACKET_LEN };
                alloc::format!(
                    "{dir} end: handshake incomplete ({}{index} {got}/{len} bytes)",
                    dir.packet_letter()
                )
            }
            Phase::Chunks if self.input.is_empty() => return,
            Phase::Chunks => alloc::format!(
                "{dir} end: {} bytes of an incomplete chunk",
                self.input.len()
            ),
        };
        self.lines.push_back(line);
    }

    /// Renders a completed handshake packet and moves to the next phase.
    fn handshake_packet(&mut self, index: u8) -> Result<(), TraceError> {
        let dir = self.direction;
        let p = dir.packet_letter();
        let [t0, t1, t2, t3, v0, v1, v2, v3] = self.head;
        let time = u32::from_be_bytes([t0, t1, t2, t3]);
        let line = match index {
            0 => alloc::format!("{dir} handshake {p}0 version={t0}"),
            1 => {
                let kind = if [v0, v1, v2, v3] == [0; 4] {
                    "plain"
                } else {
                    "digest"
                };
                alloc::format!(
                    "{dir} handshake {p}1 time={time} version={v0}.{v1}.{v2}.{v3} ({kind})"
                )
            }
            _ => {
                let time2 = u32::from_be_bytes([v0, v1, v2, v3]);
                alloc::format!("{dir} handshake {p}2 time={time} time2={time2}")
            }
        };
        self.lines.push_back(line);
        self.head = [0; 8];
        if index == 0 && t0 != RTMP_VERSION {
            return Err(self.fail(HandshakeError::UnsupportedVersion(t0).into()));
        }
        self.phase = if index >= 2 {
            Phase::Chunks
        } else {
            Phase::Handshake {
                index: index.saturating_add(1),
                got: 0,
            }
        };
        Ok(())
    }

    fn decode_chunks(&mut self) -> Result<(), TraceError> {
        loop {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(raw)) => {
                    let line = render_message(self.direction, &raw, &self.limits);
                    self.lines.push_back(line);
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(e.into())),
            }
        }
    }

    /// Queues the error line, drops buffered input and stops the tracer.
    fn fail(&mut self, error: TraceError) -> TraceError {
        let mut out = Bounded::new(MAX_LINE_LEN);
        let _ = write!(out, "{} error: {}", self.direction, ErrorText(&error));
        self.lines.push_back(out.finish());
        self.input = BytesMut::new();
        self.phase = Phase::Failed(error.clone());
        error
    }
}

/// The inner error's own text, without the `TraceError` prefix.
struct ErrorText<'a>(&'a TraceError);

impl fmt::Display for ErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            TraceError::Handshake(e) => e.fmt(f),
            TraceError::Chunk(e) => e.fmt(f),
        }
    }
}

/// Traces a whole capture of one direction: every line [`Tracer`] queues,
/// the `end:` line of [`Tracer::finish`] included. A chunk stream error
/// shows as the last line.
pub fn render_capture(direction: Direction, bytes: &[u8], limits: &Limits) -> Vec<String> {
    let mut tracer = Tracer::new(direction, limits);
    // An error is already queued as a line; the capture ends there.
    let _ = tracer.feed(bytes);
    tracer.finish();
    tracer.lines.into_iter().collect()
}

/// One message line (see the module docs), cut at [`MAX_LINE_LEN`].
pub fn render_message(direction: Direction, raw: &RawMessage, limits: &Limits) -> String {
    let mut out = Bounded::new(MAX_LINE_LEN);
    let _ = write_message_line(&mut out, direction, raw, limits);
    out.finish()
}

/// A compact one-line rendering of an AMF0 value, cut at [`MAX_LINE_LEN`].
///
/// Numbers print without `.0` when whole (exponent form below 1e-6 and
/// from 1e16), strings quoted and escaped (cut past [`MAX_STRING_CHARS`]
/// with `…`), objects `{k: v}`, ECMA arrays `[ecma k: v]`, strict arrays
/// `[a, b]`, `null`, `undefined`, `ref(N)`, `date(MS)` (`date(MS tz=M)` with
/// a time zone), `unsupported`, `xml("…")`, typed objects `Class{k: v}`,
/// AVM+ values `amf3(N bytes)`.
pub fn render_value(value: &Value) -> String {
    let mut out = Bounded::new(MAX_LINE_LEN);
    let _ = write_value(&mut out, value, 0);
    out.finish()
}

/// A `String` writer that refuses to grow past `cap` bytes. Once full,
/// every write fails, which stops the rendering early (so a huge value costs
/// no more work than a line's worth).
struct Bounded {
    out: String,
    cap: usize,
    full: bool,
}

impl Bounded {
    fn new(cap: usize) -> Self {
        Bounded {
            out: String::new(),
            cap,
            full: false,
        }
    }

    fn finish(mut self) -> String {
        if self.full {
            self.out.push('…');
        }
        self.out
    }
}

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full {
            return Err(fmt::Error);
        }
        let room = self.cap.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.push_str(s);
            return Ok(());
        }
        let cut = s.floor_char_boundary(room);
        self.out.push_str(s.get(..cut).unwrap_or_default());
        self.full = true;
        Err(fmt::Error)
    }
}

fn write_message_line(
    out: &mut impl Write,
    direction: Direction,
    raw: &RawMessage,
    limits: &Limits,
) -> fmt::Result {
    let len = raw.payload.len();
    write!(
        out,
        "{direction} csid={} ts={} len={len} type={}",
        raw.csid, raw.timestamp, raw.type_id
    )?;
    if raw.stream_id != 0 {
        write!(out, " sid={}", raw.stream_id)?;
    }
    out.write_char(' ')?;
    match Message::decode(raw, limits) {
        Ok(m) => write_body(out, &m),
        Err(e) => write!(out, "{} invalid ({len} bytes): {e}", family(raw.type_id)),
    }
}

/// The body word for a type id, used when its payload does not decode.
fn family(type_id: u8) -> &'static str {
    match type_id {
        type_id::SET_CHUNK_SIZE => "set-chunk-size",
        type_id::ABORT => "abort",
        type_id::ACKNOWLEDGEMENT => "ack",
        type_id::USER_CONTROL => "user-control",
        type_id::WINDOW_ACK_SIZE => "window-ack-size",
        type_id::SET_PEER_BANDWIDTH => "set-peer-bandwidth",
        type_id::AUDIO => "audio",
        type_id::VIDEO => "video",
        type_id::DATA_AMF0 | type_id::DATA_AMF3 => "data",
        type_id::SHARED_OBJECT_AMF0 | type_id::SHARED_OBJECT_AMF3 => "shared-object",
        type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => "command",
        type_id::AGGREGATE => "aggregate",
        _ => "unknown",
    }
}

fn write_body(out: &mut impl Write, m: &Message) -> fmt::Result {
    match m {
        Message::Control(c) => write_control(out, c),
        Message::UserControl(u) => write_user_control(out, u),
        Message::Audio(p) => write_audio(out, p),
        Message::Video(p) => write_video(out, p),
        Message::Command(c) => write_command(out, c),
        Message::Data(d) => write_data(out, d),
        Message::SharedObject(so) => write_shared_object(out, so),
        Message::Aggregate(p) => write!(out, "aggregate {} bytes", p.len()),
        Message::Unknown { payload, .. } => write!(out, "unknown {} bytes", payload.len()),
    }
}

fn write_control(out: &mut impl Write, c: &ProtocolControl) -> fmt::Result {
    match c {
        ProtocolControl::SetChunkSize(n) => write!(out, "set-chunk-size {n}"),
        ProtocolControl::Abort { csid } => write!(out, "abort csid={csid}"),
        ProtocolControl::Acknowledgement { sequence } => write!(out, "ack {sequence}"),
        ProtocolControl::WindowAckSize(n) => write!(out, "window-ack-size {n}"),
        ProtocolControl::SetPeerBandwidth { size, limit } => {
            let limit = match limit {
                BandwidthLimit::Hard => "hard",
                BandwidthLimit::Soft => "soft",
                BandwidthLimit::Dynamic => "dynamic",
            };
            write!(out, "set-peer-bandwidth {size} {limit}")
        }
    }
}

fn write_user_control(out: &mut impl Write, u: &UserControl) -> fmt::Result {
    out.write_str("user-control ")?;
    match u {
        UserControl::StreamBegin(n) => write!(out, "stream-begin {n}"),
        UserControl::StreamEof(n) => write!(out, "stream-eof {n}"),
        UserControl::StreamDry(n) => write!(out, "stream-dry {n}"),
        UserControl::SetBufferLength { stream_id, millis } => {
            write!(out, "set-buffer-length {stream_id} {millis}ms")
        }
        UserControl::StreamIsRecorded(n) => write!(out, "stream-is-recorded {n}"),
        UserControl::PingRequest(n) => write!(out, "ping-request {n}"),
        UserControl::PingResponse(n) => write!(out, "ping-response {n}"),
        UserControl::Unknown { event_type, data } => {
            write!(out, "event={event_type} {} bytes", data.len())
        }
    }
}

fn write_command(out: &mut impl Write, c: &Command) -> fmt::Result {
    out.write_str("command ")?;
    write_name(out, &c.name)?;
    out.write_str(" tx=")?;
    write_number(out, c.transaction_id)?;
    out.write_char(' ')?;
    write_value(out, &c.command_object, 0)?;
    for a in &c.args {
        out.write_char(' ')?;
        write_value(out, a, 0)?;
    }
    Ok(())
}

fn write_data(out: &mut impl Write, d: &DataMessage) -> fmt::Result {
    out.write_str("data")?;
    let mut values = d.values.iter().peekable();
    if values.peek().is_none() {
        return out.write_str(" (empty)");
    }
    // The handler name, and after @setDataFrame the real handler, print bare.
    if let Some(handler) = values.peek().and_then(|v| v.as_str()) {
        values.next();
        out.write_char(' ')?;
        write_name(out, handler)?;
        if handler == SET_DATA_FRAME
            && let Some(inner) = values.peek().and_then(|v| v.as_str())
        {
            values.next();
            out.write_char(' ')?;
            write_name(out, inner)?;
        }
    }
    for v in values {
        out.write_char(' ')?;
        write_value(out, v, 0)?;
    }
    Ok(())
}

fn write_shared_object(out: &mut impl Write, so: &SharedObjectMessage) -> fmt::Result {
    out.write_str("shared-object ")?;
    write_string(out, &so.name)?;
    let kind = if so.persistent {
        "persistent"
    } else {
        "transient"
    };
    write!(out, " v={} {kind} [", so.version)?;
    for (i, ev) in so.events.iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        write_so_event(out, ev)?;
    }
    out.write_char(']')
}

fn write_so_event(out: &mut impl Write, ev: &SoEvent) -> fmt::Result {
    match ev {
        SoEvent::Use => out.write_str("use"),
        SoEvent::Release => out.write_str("release"),
        SoEvent::Clear => out.write_str("clear"),
        SoEvent::UseSuccess => out.write_str("use-success"),
        SoEvent::RequestChange { key, value } | SoEvent::Change { key, value } => {
            out.write_str(if matches!(ev, SoEvent::Change { .. }) {
                "change "
            } else {
                "request-change "
            })?;
            write_name(out, key)?;
            out.write_char('=')?;
            write_value(out, value, 0)
        }
        SoEvent::Success { key } => {
            out.write_str("success ")?;
            write_name(out, key)
        }
        SoEvent::Remove { key } => {
            out.write_str("remove ")?;
            write_name(out, key)
        }
        SoEvent::RequestRemove { key } => {
            out.write_str("request-remove ")?;
            write_name(out, key)
        }
        SoEvent::SendMessage { method, args } => {
            out.write_str("send-message ")?;
            write_name(out, method)?;
            for a in args {
                out.write_char(' ')?;
                write_value(out, a, 0)?;
            }
            Ok(())
        }
        SoEvent::Status { code, level } => {
            out.write_str("status ")?;
            write_name(out, code)?;
            out.write_char(' ')?;
            write_name(out, level)
        }
    }
}

fn write_video(out: &mut impl Write, p: &[u8]) -> fmt::Result {
    let info = match VideoTag::parse(p) {
        Ok(info) => info,
        Err(e) => return write!(out, "video invalid ({} bytes): {e}", p.len()),
    };
    let frame = match info.frame_type {
        VideoFrameType::Key => "key",
        VideoFrameType::Inter => "inter",
        VideoFrameType::DisposableInter => "disposable",
        VideoFrameType::Generated => "generated",
        VideoFrameType::Command => "command",
    };
    write!(out, "video {frame}")?;
    if info.multitrack {
        out.write_str(" multitrack")?;
    }
    match info.codec {
        VideoCodec::Legacy(id) => {
            out.write_char(' ')?;
            match id {
                video_codec::SORENSON_H263 => out.write_str("h263")?,
                video_codec::SCREEN => out.write_str("screen")?,
                video_codec::VP6 => out.write_str("vp6")?,
                video_codec::VP6_ALPHA => out.write_str("vp6a")?,
                video_codec::SCREEN_V2 => out.write_str("screen2")?,
                video_codec::AVC => out.write_str("avc")?,
                video_codec::HEVC => out.write_str("hevc")?,
                other => write!(out, "codec={other}")?,
            }
        }
        VideoCodec::FourCc(cc) => {
            out.write_char(' ')?;
            write_fourcc(out, &cc)?;
        }
        VideoCodec::Unspecified => {}
    }
    let token = match info.packet_type {
        _ if info.is_sequence_header => Some("seq-header"),
        // Legacy AVC/HEVC: packet type 2 is end of sequence.
        None if matches!(
            info.codec,
            VideoCodec::Legacy(video_codec::AVC | video_codec::HEVC)
        ) && info.frame_type != VideoFrameType::Command
            && p.get(1) == Some(&2) =>
        {
            Some("seq-end")
        }
        None => None,
        Some(t) => match t {
            VideoPacketType::SequenceStart | VideoPacketType::Mpeg2TsSequenceStart => {
                Some("seq-header")
            }
            VideoPacketType::CodedFrames => None,
            VideoPacketType::SequenceEnd => Some("seq-end"),
            VideoPacketType::CodedFramesX => Some("frames-x"),
            VideoPacketType::Metadata => Some("metadata"),
            VideoPacketType::Multitrack => Some("multitrack"),
            VideoPacketType::ModEx => Some("modex"),
            VideoPacketType::Reserved(n) => {
                write!(out, " packet-type={n}")?;
                None
            }
        },
    };
    if let Some(token) = token {
        write!(out, " {token}")?;
    }
    write!(out, " {} bytes", p.len())
}

fn write_audio(out: &mut impl Write, p: &[u8]) -> fmt::Result {
    let info = match AudioTag::parse(p) {
        Ok(info) => info,
        Err(e) => return write!(out, "audio invalid ({} bytes): {e}", p.len()),
    };
    out.write_str("audio")?;
    if info.multitrack {
        out.write_str(" multitrack")?;
    }
    match info.codec {
        AudioCodec::Legacy(f) => {
            out.write_char(' ')?;
            match f {
                0 => out.write_str("pcm")?,
                1 => out.write_str("adpcm")?,
                sound_format::MP3 => out.write_str("mp3")?,
                3 => out.write_str("pcm-le")?,
                4 => out.write_str("nellymoser16k")?,
                5 => out.write_str("nellymoser8k")?,
                sound_format::NELLYMOSER => out.write_str("nellymoser")?,
                7 => out.write_str("g711a")?,
                8 => out.write_str("g711u")?,
                sound_format::AAC => out.write_str("aac")?,
                sound_format::SPEEX => out.write_str("speex")?,
                14 => out.write_str("mp3-8k")?,
                15 => out.write_str("device")?,
                other => write!(out, "format={other}")?,
            }
            if f == sound_format::AAC {
                out.write_str(if info.is_sequence_header {
                    " seq-header"
                } else {
                    " raw"
                })?;
            }
        }
        AudioCodec::FourCc(cc) => {
            out.write_char(' ')?;
            write_fourcc(out, &cc)?;
        }
        AudioCodec::Unspecified => {}
    }
    if let Some(t) = info.packet_type {
        match t {
            AudioPacketType::SequenceStart => out.write_str(" seq-header")?,
            AudioPacketType::CodedFrames => {}
            AudioPacketType::SequenceEnd => out.write_str(" seq-end")?,
            AudioPacketType::MultichannelConfig => out.write_str(" multichannel-config")?,
            AudioPacketType::Multitrack => out.write_str(" multitrack")?,
            AudioPacketType::ModEx => out.write_str(" modex")?,
            AudioPacketType::Reserved(n) => write!(out, " packet-type={n}")?,
        }
    }
    write!(out, " {} bytes", p.len())
}

/// A FourCC as text when printable ASCII, else `0x` and hex.
fn write_fourcc(out: &mut impl Write, cc: &FourCc) -> fmt::Result {
    match core::str::from_utf8(cc) {
        Ok(s) if cc.iter().all(u8::is_ascii_graphic) => out.write_str(s),
        _ => {
            out.write_str("0x")?;
            for b in cc {
                write!(out, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

/// Whether a name can be written without quotes.
fn is_bare(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_STRING_CHARS
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@.$-:/".contains(c))
}

fn write_name(out: &mut impl Write, s: &str) -> fmt::Result {
    if is_bare(s) {
        out.write_str(s)
    } else {
        write_string(out, s)
    }
}

/// A quoted, escaped string, cut after [`MAX_STRING_CHARS`] characters.
fn write_string(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for (i, c) in s.chars().enumerate() {
        if i >= MAX_STRING_CHARS {
            out.write_char('…')?;
            break;
        }
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

fn write_number(out: &mut impl Write, n: f64) -> fmt::Result {
    if n.is_nan() {
        return out.write_str("NaN");
    }
    if n.is_infinite() {
        return out.write_str(if n > 0.0 { "inf" } else { "-inf" });
    }
    let a = n.abs();
    if a != 0.0 && !(1e-6..1e16).contains(&a) {
        write!(out, "{n:e}")
    } else {
        write!(out, "{n}")
    }
}

fn write_properties(
    out: &mut impl Write,
    props: &[(String, Value)],
    depth: usize,
    first_sep: &str,
) -> fmt::Result {
    for (i, (k, v)) in props.iter().enumerate() {
        out.write_str(if i == 0 { first_sep } else { ", " })?;
        write_name(out, k)?;
        out.write_str(": ")?;
        write_value(out, v, depth)?;
    }
    Ok(())
}

fn write_value(out: &mut impl Write, v: &Value, depth: usize) -> fmt::Result {
    if depth >= MAX_RENDER_DEPTH {
        return out.write_char('…');
    }
    let inner = depth.saturating_add(1);
    match v {
        Value::Number(n) => write_number(out, *n),
        Value::Boolean(b) => write!(out, "{b}"),
        Value::String(s) | Value::LongString(s) => write_string(out, s),
        Value::Object(props) => {
            out.write_char('{')?;
            write_properties(out, props, inner, "")?;
            out.write_char('}')
        }
        Value::Null => out.write_str("null"),
        Value::Undefined => out.write_str("undefined"),
        Value::Reference(i) => write!(out, "ref({i})"),
        Value::EcmaArray { properties, .. } => {
            out.write_str("[ecma")?;
            write_properties(out, properties, inner, " ")?;
            out.write_char(']')
        }
        Value::StrictArray(items) => {
            out.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write_value(out, item, inner)?;
            }
            out.write_char(']')
        }
        Value::Date { millis, time_zone } => {
            out.write_str("date(")?;
            write_number(out, *millis)?;
            if *time_zone != 0 {
                write!(out, " tz={time_zone}")?;
            }
            out.write_char(')')
        }
        Value::Unsupported => out.write_str("unsupported"),
        Value::XmlDocument(s) => {
            out.write_str("xml(")?;
            write_string(out, s)?;
            out.write_char(')')
        }
        Value::TypedObject {
            class_name,
            properties,
        } => {
            write_name(out, class_name)?;
            out.write_char('{')?;
            write_properties(out, properties, inner, "")?;
            out.write_char('}')
        }
        Value::Avmplus(b) => write!(out, "amf3({} bytes)", b.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf0;
    use crate::chunk::encode_standalone;
    use crate::message::{Command, connect_result};
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use bytes::Bytes;
    use proptest::prelude::*;

    /// Hex to bytes, ignoring spaces.
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// C0 = 3, then C1 and C2 all zero (or S0 = 3, S1 with time 1000 and
    /// version 4.0.0.1, S2 all zero).
    fn handshake(direction: Direction) -> Vec<u8> {
        let mut out = vec![3u8];
        let mut p1 = vec![0u8; PACKET_LEN];
        if direction == Direction::ServerToClient {
            p1[..8].copy_from_slice(&[0, 0, 0x03, 0xe8, 4, 0, 0, 1]);
        }
        out.extend_from_slice(&p1);
        out.extend_from_slice(&[0u8; PACKET_LEN]);
        out
    }

    /// One message as a self-contained chunk sequence (fmt 0 first).
    fn chunks(csid: u32, ts: u32, type_id: u8, sid: u32, payload: &[u8], size: u32) -> Vec<u8> {
        let msg = RawMessage {
            csid,
            timestamp: ts,
            type_id,
            stream_id: sid,
            payload: Bytes::copy_from_slice(payload),
        };
        let mut out = BytesMut::new();
        encode_standalone(&msg, size, &mut out).unwrap();
        out.to_vec()
    }

    fn command_bytes(c: &Command) -> Vec<u8> {
        c.to_bytes().to_vec()
    }

    fn lines_of(t: &mut Tracer) -> Vec<String> {
        core::iter::from_fn(|| t.poll_line()).collect()
    }

    /// A client's side: PROTOCOL-NOTES vectors plus built media messages.
    fn client_capture() -> Vec<u8> {
        let mut b = handshake(Direction::ClientToServer);
        let connect = Command {
            name: "connect".into(),
            transaction_id: 1.0,
            command_object: Value::object([
                ("app", Value::string("live")),
                ("tcUrl", Value::string("rtmp://localhost/live")),
                ("objectEncoding", Value::Number(0.0)),
            ]),
            args: vec![],
        };
        b.extend(chunks(3, 0, 20, 0, &command_bytes(&connect), 128));
        b.extend(hex(
            "43 001e61 000019 14 02000c 63726561746553747265616d 00 4008000000000000 05",
        ));
        b.extend(hex("02 db5565 000004 05 00000000 00989680"));
        b.extend(hex("42 000000 000006 04 0007 ce4c5f73"));
        b.extend(hex("c2 0007 ce4c6743"));
        b.extend(hex("42 000000 00000a 04 0003 00000000 00001388"));
        b.extend(hex(
            "08 001fdd 00001d 14 01000000 020004 706c6179 00 0000000000000000 05 020009 73706565782e666c76",
        ));
        b.extend(hex("c2 0003 00000001 00001388"));
        b.extend(hex(
            "04 000000 000038 12 00000000 02000d 40736574446174614672616d65 02000a 6f6e4d65746144617461 08 00000001 0008 6475726174696f6e 00 0000000000000000 000009",
        ));
        let so_use = hex("0004 63686174 00000000 00000000 00000000 01 00000000");
        b.extend(chunks(5, 0, 19, 0, &so_use, 128));
        let so_req = hex(
            "0004 63686174 00000002 00000000 00000000 03 0000000e 0007 6d657373616765 02 0002 6869",
        );
        b.extend(chunks(5, 10, 19, 0, &so_req, 128));
        // Media on stream 1 after Set Chunk Size 4096.
        b.extend(chunks(2, 0, 1, 0, &4096u32.to_be_bytes(), 128));
        let mut seq = vec![0x17, 0, 0, 0, 0];
        seq.resize(45, 0x42);
        b.extend(chunks(6, 0, 9, 1, &seq, 4096));
        let mut inter = vec![0x27, 1, 0, 0, 0];
        inter.resize(1200, 0x11);
        b.extend(chunks(6, 33, 9, 1, &inter, 4096));
        b.extend(chunks(4, 0, 8, 1, &[0xaf, 0x00, 0x12, 0x10], 4096));
        let mut aac = vec![0xaf, 0x01];
        aac.resize(372, 0x21);
        b.extend(chunks(4, 23, 8, 1, &aac, 4096));
        let mut hevc = b"\x90hvc1".to_vec();
        hevc.resize(40, 1);
        b.extend(chunks(6, 66, 9, 1, &hevc, 4096));
        b.extend(chunks(6, 99, 9, 1, b"\xa1av01\x00\x00\x00\xff", 4096));
        b.extend(chunks(4, 46, 8, 1, &[0xb2, 1, 2, 3], 4096));
        b.extend(chunks(4, 69, 8, 1, b"\x90Opus\x01\x02", 4096));
        b.extend(chunks(7, 0, 22, 1, &[0; 30], 4096));
        b.extend(chunks(7, 0, 7, 1, &[1, 2, 3], 4096));
        b.extend(chunks(2, 0, 3, 0, &12345u32.to_be_bytes(), 4096));
        b.extend(chunks(2, 0, 2, 0, &4u32.to_be_bytes(), 4096));
        b.extend(chunks(2, 0, 4, 0, &hex("0006 000004d2"), 4096));
        // A command whose AMF0 is cut short: a message-level error only.
        b.extend(chunks(3, 0, 20, 0, &hex("02 0004 706c6179 00"), 4096));
        b
    }

    const CLIENT_LINES: &[&str] = &[
        "C→S handshake C0 version=3",
        "C→S handshake C1 time=0 version=0.0.0.0 (plain)",
        "C→S handshake C2 time=0 time2=0",
        "C→S csid=3 ts=0 len=91 type=20 command connect tx=1 {app: \"live\", tcUrl: \"rtmp://localhost/live\", objectEncoding: 0}",
        "C→S csid=3 ts=7777 len=25 type=20 command createStream tx=3 null",
        "C→S csid=2 ts=14374245 len=4 type=5 window-ack-size 10000000",
        "C→S csid=2 ts=14374245 len=6 type=4 user-control ping-response 3461111667",
        "C→S csid=2 ts=14374245 len=6 type=4 user-control ping-response 3461113667",
        "C→S csid=2 ts=14374245 len=10 type=4 user-control set-buffer-length 0 5000ms",
        "C→S csid=8 ts=8157 len=29 type=20 sid=1 command play tx=0 null \"speex.flv\"",
        "C→S csid=2 ts=14374245 len=10 type=4 user-control set-buffer-length 1 5000ms",
        "C→S csid=4 ts=0 len=56 type=18 data @setDataFrame onMetaData [ecma duration: 0]",
        "C→S csid=5 ts=0 len=23 type=19 shared-object \"chat\" v=0 transient [use]",
        "C→S csid=5 ts=10 len=37 type=19 shared-object \"chat\" v=2 transient [request-change message=\"hi\"]",
        "C→S csid=2 ts=0 len=4 type=1 set-chunk-size 4096",
        "C→S csid=6 ts=0 len=45 type=9 sid=1 video key avc seq-header 45 bytes",
        "C→S csid=6 ts=33 len=1200 type=9 sid=1 video inter avc 1200 bytes",
        "C→S csid=4 ts=0 len=4 type=8 sid=1 audio aac seq-header 4 bytes",
        "C→S csid=4 ts=23 len=372 type=8 sid=1 audio aac raw 372 bytes",
        "C→S csid=6 ts=66 len=40 type=9 sid=1 video key hvc1 seq-header 40 bytes",
        "C→S csid=6 ts=99 len=9 type=9 sid=1 video inter av01 9 bytes",
        "C→S csid=4 ts=46 len=4 type=8 sid=1 audio speex 4 bytes",
        "C→S csid=4 ts=69 len=7 type=8 sid=1 audio Opus seq-header 7 bytes",
        "C→S csid=7 ts=0 len=30 type=22 sid=1 aggregate 30 bytes",
        "C→S csid=7 ts=0 len=3 type=7 sid=1 unknown 3 bytes",
        "C→S csid=2 ts=0 len=4 type=3 ack 12345",
        "C→S csid=2 ts=0 len=4 type=2 abort csid=4",
        "C→S csid=2 ts=0 len=6 type=4 user-control ping-request 1234",
        "C→S csid=3 ts=0 len=8 type=20 command invalid (8 bytes): command: ",
    ];

    #[test]
    fn client_vectors() {
        let lines = render_capture(
            Direction::ClientToServer,
            &client_capture(),
            &Limits::default(),
        );
        let last = CLIENT_LINES.len() - 1;
        assert_eq!(lines.len(), CLIENT_LINES.len(), "{lines:#?}");
        for (got, want) in lines.iter().zip(CLIENT_LINES).take(last) {
            assert_eq!(got, want);
        }
        // The AMF0 error text belongs to the amf0 module; only its prefix is ours.
        assert!(
            lines[last].starts_with(CLIENT_LINES[last]),
            "{}",
            lines[last]
        );
    }

    fn server_capture() -> Vec<u8> {
        let mut b = handshake(Direction::ServerToClient);
        b.extend(chunks(2, 0, 5, 0, &2_500_000u32.to_be_bytes(), 128));
        b.extend(chunks(2, 0, 6, 0, &hex("002625a0 02"), 128));
        b.extend(chunks(2, 0, 4, 0, &hex("0000 00000000"), 128));
        let result = connect_result(1.0, 0.0, "Connection succeeded.");
        b.extend(chunks(3, 0, 20, 0, &command_bytes(&result), 128));
        b.extend(hex(
            "04000000000082140100000002 00086f6e537461747573 00 0000000000000000 05 03 0005 6c6576656c 020006 737461747573 0004 636f6465 020017 4e657453747265616d2e5075626c6973682e5374617274 000b 6465736372697074696f6e 020000 0007 64657461696c73 02000a 6d697865722d6f757433 0008 636c69656e746964 00 3ff0000000000000 00 c4 0009",
        ));
        for body in [
            "0004 63686174 00000002 00000000 00000000 0b 00000000 08 00000000",
            "0004 63686174 00000003 00000000 00000000 05 00000009 0007 6d657373616765",
            "0004 63686174 00000003 00000000 00000000 04 0000000e 0007 6d657373616765 02 0002 6869",
            "0004 63686174 00000003 00000000 00000000 06 00000017 02 000f 6d6573736167655472616e736d6974 02 0002 6869",
            "0004 63686174 00000003 00000000 00000000 07 00000023 001a 5368617265644f626a6563742e4e6f5772697465416363657373 0005 6572726f72",
        ] {
            b.extend(chunks(5, 0, 19, 0, &hex(body), 128));
        }
        b
    }

    const SERVER_LINES: &[&str] = &[
        "S→C handshake S0 version=3",
        "S→C handshake S1 time=1000 version=4.0.0.1 (digest)",
        "S→C handshake S2 time=0 time2=0",
        "S→C csid=2 ts=0 len=4 type=5 window-ack-size 2500000",
        "S→C csid=2 ts=0 len=5 type=6 set-peer-bandwidth 2500000 dynamic",
        "S→C csid=2 ts=0 len=6 type=4 user-control stream-begin 0",
        "S→C csid=3 ts=0 len=206 type=20 command _result tx=1 {fmsVer: \"FMS/3,5,7,7009\", capabilities: 31, mode: 1} {level: \"status\", code: \"NetConnection.Connect.Success\", description: \"Connection succeeded.\", objectEncoding: 0}",
        "S→C csid=4 ts=0 len=130 type=20 sid=1 command onStatus tx=0 null {level: \"status\", code: \"NetStream.Publish.Start\", description: \"\", details: \"mixer-out3\", clientid: 1}",
        "S→C csid=5 ts=0 len=28 type=19 shared-object \"chat\" v=2 transient [use-success, clear]",
        "S→C csid=5 ts=0 len=32 type=19 shared-object \"chat\" v=3 transient [success message]",
        "S→C csid=5 ts=0 len=37 type=19 shared-object \"chat\" v=3 transient [change message=\"hi\"]",
        "S→C csid=5 ts=0 len=46 type=19 shared-object \"chat\" v=3 transient [send-message messageTransmit \"hi\"]",
        "S→C csid=5 ts=0 len=58 type=19 shared-object \"chat\" v=3 transient [status SharedObject.NoWriteAccess error]",
    ];

    #[test]
    fn server_vectors() {
        let lines = render_capture(
            Direction::ServerToClient,
            &server_capture(),
            &Limits::default(),
        );
        assert_eq!(lines, SERVER_LINES);
    }

    #[test]
    fn chunk_error_stops_the_tracer() {
        let mut t = Tracer::new(Direction::ClientToServer, &Limits::default());
        t.feed(&handshake(Direction::ClientToServer)).unwrap();
        let err = TraceError::Chunk(ChunkError::NoPreviousHeader { csid: 5 });
        assert_eq!(
            t.feed(&hex("45 000000 000004 05 00000001")),
            Err(err.clone())
        );
        let lines = lines_of(&mut t);
        assert_eq!(
            lines.last().unwrap(),
            "C→S error: chunk stream 5 starts with a fmt 1/2/3 chunk but has no previous header"
        );
        assert_eq!(
            t.feed(&hex("02 000000 000004 05 00000000 00000001")),
            Err(err)
        );
        t.finish();
        assert_eq!(t.poll_line(), None);
    }

    #[test]
    fn bad_version() {
        let mut t = Tracer::new(Direction::ServerToClient, &Limits::default());
        assert_eq!(
            t.feed(&[6, 0, 0]),
            Err(TraceError::Handshake(HandshakeError::UnsupportedVersion(6)))
        );
        let lines = lines_of(&mut t);
        assert_eq!(lines[0], "S→C handshake S0 version=6");
        assert!(lines[1].starts_with("S→C error: unsupported RTMP handshake version 6"));
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn finish_reports_leftovers() {
        let lines = render_capture(Direction::ClientToServer, &[3, 0, 0, 0], &Limits::default());
        assert_eq!(
            lines,
            [
                "C→S handshake C0 version=3",
                "C→S end: handshake incomplete (C1 3/1536 bytes)"
            ]
        );
        let mut b = handshake(Direction::ClientToServer);
        b.extend(hex("02 000000 000004"));
        let lines = render_capture(Direction::ClientToServer, &b, &Limits::default());
        assert_eq!(
            lines.last().unwrap(),
            "C→S end: 7 bytes of an incomplete chunk"
        );
        assert!(render_capture(Direction::ClientToServer, &[], &Limits::default()).is_empty());
    }

    #[test]
    fn values() {
        let r = |v: Value| render_value(&v);
        assert_eq!(r(Value::Number(30.0)), "30");
        assert_eq!(r(Value::Number(-2.5)), "-2.5");
        assert_eq!(r(Value::Number(2_500_000.0)), "2500000");
        assert_eq!(r(Value::Number(1e300)), "1e300");
        assert_eq!(r(Value::Number(1.5e-9)), "1.5e-9");
        assert_eq!(r(Value::Number(f64::NAN)), "NaN");
        assert_eq!(r(Value::Number(f64::NEG_INFINITY)), "-inf");
        assert_eq!(r(Value::Boolean(true)), "true");
        assert_eq!(r(Value::string("a\"b\\c\n\u{1}é")), r#""a\"b\\c\n\u{1}é""#);
        let long: String = "x".repeat(100);
        assert_eq!(
            r(Value::string(long.clone())),
            format!("\"{}…\"", &long[..80])
        );
        assert_eq!(r(Value::LongString("ok".into())), "\"ok\"");
        assert_eq!(r(Value::Null), "null");
        assert_eq!(r(Value::Undefined), "undefined");
        assert_eq!(r(Value::Reference(2)), "ref(2)");
        assert_eq!(r(Value::Unsupported), "unsupported");
        assert_eq!(r(Value::XmlDocument("<a/>".into())), "xml(\"<a/>\")");
        assert_eq!(
            r(Value::Date {
                millis: 1.0e12,
                time_zone: 0
            }),
            "date(1000000000000)"
        );
        assert_eq!(
            r(Value::Date {
                millis: 5.0,
                time_zone: -60
            }),
            "date(5 tz=-60)"
        );
        assert_eq!(
            r(Value::Avmplus(Bytes::from_static(&[1, 2, 3]))),
            "amf3(3 bytes)"
        );
        assert_eq!(r(Value::Object(vec![])), "{}");
        assert_eq!(
            r(Value::object([
                ("a b", Value::Null),
                ("c", Value::Number(1.0))
            ])),
            "{\"a b\": null, c: 1}"
        );
        assert_eq!(
            r(Value::StrictArray(vec![
                Value::Number(1.0),
                Value::string("s")
            ])),
            "[1, \"s\"]"
        );
        assert_eq!(
            r(Value::TypedObject {
                class_name: "flex.Msg".into(),
                properties: vec![("x".into(), Value::Boolean(false))],
            }),
            "flex.Msg{x: false}"
        );
        // PROTOCOL-NOTES AMF0 vectors.
        let limits = Limits::default();
        let all = |h: &str| {
            amf0::decode_all(&hex(h), &limits)
                .unwrap()
                .iter()
                .map(render_value)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            all(
                "03 0004 6e616d65 02 0004 4d696b65 0003 616765 00 403e000000000000 0005 616c696173 02 0004 4d696b65 0000 09"
            ),
            ["{name: \"Mike\", age: 30, alias: \"Mike\"}"]
        );
        assert_eq!(
            all("02 000c 6f6e53747265616d53656e64 08 00000000 0005 76616c7565 02 0001 31 000009"),
            ["\"onStreamSend\"", "[ecma value: \"1\"]"]
        );
        assert_eq!(
            all("08 00000002 0001 30 02 0005 68656c6c6f 0001 31 02 0005 776f726c64 000009"),
            ["[ecma 0: \"hello\", 1: \"world\"]"]
        );
        assert_eq!(
            r(Value::EcmaArray {
                count: 0,
                properties: vec![]
            }),
            "[ecma]"
        );
    }

    #[test]
    fn long_renderings_are_capped() {
        let wide = Value::StrictArray(vec![Value::string("y".repeat(70)); 1000]);
        let s = render_value(&wide);
        assert!(s.len() <= MAX_LINE_LEN + '…'.len_utf8());
        assert!(s.ends_with('…'));
        let mut deep = Value::Null;
        for _ in 0..200 {
            deep = Value::StrictArray(vec![deep]);
        }
        let s = render_value(&deep);
        assert!(s.contains('…') && s.len() <= MAX_LINE_LEN + 3);
        // A line with a huge payload stays bounded too.
        let cmd = Command::new("x", 0.0, vec![wide]);
        let raw = RawMessage {
            csid: 3,
            timestamp: 0,
            type_id: 20,
            stream_id: 0,
            payload: cmd.to_bytes(),
        };
        let line = render_message(Direction::ServerToClient, &raw, &Limits::default());
        assert!(line.len() <= MAX_LINE_LEN + 3 && line.ends_with('…'));
    }

    #[test]
    fn names_and_fourcc() {
        let mut s = String::new();
        write_name(&mut s, "").unwrap();
        write_name(&mut s, " ").unwrap();
        write_name(&mut s, "on.Meta-Data_1").unwrap();
        write_fourcc(&mut s, b"\x00ab\xff").unwrap();
        assert_eq!(s, "\"\"\" \"on.Meta-Data_10x006162ff");
        assert_eq!(Direction::ServerToClient.to_string(), "S→C");
    }

    /// Feeds `bytes` cut at `cuts` (positions taken modulo the length).
    fn feed_split(bytes: &[u8], cuts: &[usize]) -> (Vec<String>, Option<TraceError>) {
        let mut t = Tracer::new(Direction::ClientToServer, &Limits::small());
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut err = None;
        let mut start = 0;
        for end in cuts.into_iter().chain([bytes.len()]) {
            if let Err(e) = t.feed(&bytes[start..end]) {
                err = Some(e);
            }
            start = end;
        }
        t.finish();
        (lines_of(&mut t), err)
    }

    proptest! {
        #[test]
        fn splits_give_the_same_lines(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
            let capture = client_capture();
            let whole = render_capture(Direction::ClientToServer, &capture, &Limits::small());
            let (split, err) = feed_split(&capture, &cuts);
            prop_assert_eq!(err, None);
            prop_assert_eq!(split, whole);
        }

        #[test]
        fn garbage_never_panics(
            garbage in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut bytes = handshake(Direction::ClientToServer);
            bytes.extend_from_slice(&garbage);
            let mut t = Tracer::new(Direction::ClientToServer, &Limits::small());
            let result = t.feed(&bytes);
            t.finish();
            let whole = lines_of(&mut t);
            for line in &whole {
                prop_assert!(line.starts_with("C→S "));
                prop_assert!(line.len() <= MAX_LINE_LEN + 3);
            }
            if result.is_err() {
                prop_assert!(whole.last().unwrap().starts_with("C→S error: "));
            }
            let (split, err) = feed_split(&bytes, &cuts);
            prop_assert_eq!(err, result.err());
            prop_assert_eq!(split, whole);
        }
    }
}
