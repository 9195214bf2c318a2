//! The renderers: one line per message, one compact text per AMF0 value
//! (the formats are described in the [module docs](super)).

use super::{Direction, MAX_LINE_LEN, MAX_STRING_CHARS};
use crate::Limits;
use crate::amf0::Value;
use crate::chunk::RawMessage;
use crate::message::media::{
    AudioCodec, AudioPacketType, FourCc, VideoCodec, VideoFrameType, VideoPacketType, sound_format,
    video_codec,
};
use crate::message::{
    AudioTag, BandwidthLimit, Command, DataMessage, Message, ProtocolControl, SET_DATA_FRAME,
    SharedObjectMessage, SoEvent, UserControl, VideoTag, type_id,
};
use alloc::string::String;
use core::fmt::{self, Write};

/// Deepest nesting [`render_value`] descends into; deeper values print `…`.
/// Decoded values are already bounded by `Limits::amf0_max_depth`; this
/// protects against values built by hand.
const MAX_RENDER_DEPTH: usize = 64;

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
pub(super) struct Bounded {
    out: String,
    cap: usize,
    full: bool,
}

impl Bounded {
    pub(super) fn new(cap: usize) -> Self {
        Bounded {
            out: String::new(),
            cap,
            full: false,
        }
    }

    pub(super) fn finish(mut self) -> String {
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
pub(super) fn write_fourcc(out: &mut impl Write, cc: &FourCc) -> fmt::Result {
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

pub(super) fn write_name(out: &mut impl Write, s: &str) -> fmt::Result {
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
