//! Command messages (type 20 AMF0, type 17 AMF3-prefixed): remote procedure
//! calls `name, transaction id, command object, args…`.
//!
//! [`Command`] is the generic wire view. [`ClientCommand`] is what a server
//! makes of a client's call, [`ServerReply`] what a client makes of a
//! server's. The builder functions ([`connect_result`], [`on_status`], …)
//! produce the replies Red5 and FMS send.

use super::MessageError;
use crate::Limits;
use crate::amf0::{self, Properties, Value};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

/// A command message: `name`, `transaction_id`, `command_object`, `args`.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Procedure name (`connect`, `_result`, `onStatus`, …).
    pub name: String,
    /// Transaction id; 0 when no reply is expected.
    pub transaction_id: f64,
    /// The command object (connect parameters) or, usually, `Null`.
    pub command_object: Value,
    /// Remaining arguments.
    pub args: Vec<Value>,
}

impl Command {
    /// A command with a `Null` command object.
    pub fn new(name: impl Into<String>, transaction_id: f64, args: Vec<Value>) -> Self {
        Command {
            name: name.into(),
            transaction_id,
            command_object: Value::Null,
            args,
        }
    }

    /// Parses AMF0 command values (for type 17 the caller strips the leading
    /// encoding byte first; [`Message::decode`](super::Message::decode) does).
    ///
    /// The name must be a string and the transaction id a number; a missing
    /// command object reads as `Null` (some encoders omit it on
    /// notifications), so re-encoding such input adds one `05` byte.
    pub fn decode(payload: &[u8], limits: &Limits) -> Result<Self, MessageError> {
        Self::from_values(decode_values(payload, limits)?)
    }

    /// Parses a type-17 payload (after its encoding byte): like
    /// [`decode`](Self::decode), with every AVM+ value first put into the
    /// shared model — the name and transaction id too, which some writers
    /// (Red5 2.x) send as AMF3. The AVM+ values of the payload share one
    /// set of AMF3 reference tables ([`crate::amf3::unwrap_body`]).
    pub fn decode_amf3(payload: &[u8], limits: &Limits) -> Result<Self, MessageError> {
        let mut values = amf0::BodyDecoder::new(limits)
            .decode_all(payload)
            .map_err(|error| MessageError::Amf0 {
                what: "command",
                error,
            })?;
        crate::amf3::unwrap_body(&mut values, limits).map_err(|error| MessageError::Amf3 {
            what: "command argument",
            error,
        })?;
        Self::from_values(values)
    }

    fn from_values(values: Vec<Value>) -> Result<Self, MessageError> {
        let mut it = values.into_iter();
        let name = match it.next() {
            Some(Value::String(s) | Value::LongString(s)) => s,
            Some(_) => return Err(wrong("command message", "name", "string")),
            None => return Err(missing("command message", "name")),
        };
        let transaction_id = match it.next() {
            Some(Value::Number(n)) => n,
            Some(_) => return Err(wrong("command message", "transaction id", "number")),
            None => return Err(missing("command message", "transaction id")),
        };
        let command_object = it.next().unwrap_or(Value::Null);
        Ok(Command {
            name,
            transaction_id,
            command_object,
            args: it.collect(),
        })
    }

    /// Appends the AMF0 encoding (type 20 payload) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        amf0::encode(&Value::String(self.name.clone()), out);
        amf0::encode(&Value::Number(self.transaction_id), out);
        amf0::encode(&self.command_object, out);
        for a in &self.args {
            amf0::encode(a, out);
        }
    }

    /// The AMF0 encoding as a shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.encode(&mut out);
        Bytes::from(out)
    }

    /// Appends the type-17 payload to `out`, as Flash Player writes a call
    /// on an objectEncoding-3 connection: the encoding byte 0, the name
    /// and transaction id as AMF0 string and number, the command object as
    /// AMF0 when it is null or undefined (else as one AVM+ value), and
    /// every argument as one AVM+ value ([`crate::amf3::wrap_avmplus`]),
    /// the AVM+ values made readable with shared or per-value tables
    /// ([`crate::amf3::portable_body`]). (`limits` bound the decoding of
    /// AVM+ values nested in AMF0 ones.)
    pub fn encode_amf3(&self, limits: &Limits, out: &mut Vec<u8>) {
        out.push(0);
        amf0::encode(&Value::String(self.name.clone()), out);
        amf0::encode(&Value::Number(self.transaction_id), out);
        let mut values = Vec::with_capacity(self.args.len() + 1);
        values.push(match &self.command_object {
            v @ (Value::Null | Value::Undefined) => v.clone(),
            v => crate::amf3::wrap_avmplus(v, limits),
        });
        values.extend(
            self.args
                .iter()
                .map(|a| crate::amf3::wrap_avmplus(a, limits)),
        );
        crate::amf3::portable_body(&mut values, limits);
        for v in &values {
            amf0::encode(v, out);
        }
    }

    /// The type-17 payload ([`encode_amf3`](Self::encode_amf3)) as a
    /// shareable buffer.
    pub fn to_bytes_amf3(&self, limits: &Limits) -> Bytes {
        let mut out = Vec::new();
        self.encode_amf3(limits, &mut out);
        Bytes::from(out)
    }
}

fn decode_values(payload: &[u8], limits: &Limits) -> Result<Vec<Value>, MessageError> {
    amf0::decode_all(payload, limits).map_err(|error| MessageError::Amf0 {
        what: "command",
        error,
    })
}

fn missing(command: &'static str, field: &'static str) -> MessageError {
    MessageError::MissingField { command, field }
}

fn wrong(command: &'static str, field: &'static str, expected: &'static str) -> MessageError {
    MessageError::WrongType {
        command,
        field,
        expected,
    }
}

/// Splits a stream name into the name proper and its query string:
/// `"live?token=x"` → `("live", Some("token=x"))`. Encoders append tokens
/// this way; the stream is identified by the part before `?`.
pub fn split_stream_name(raw: &str) -> (&str, Option<&str>) {
    match raw.split_once('?') {
        Some((name, query)) => (name, Some(query)),
        None => (raw, None),
    }
}

/// Parameters of `connect`, taken from its command object.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectParams {
    /// `app`: application (and room) path, e.g. `live` or `chat/room1`.
    pub app: String,
    /// `tcUrl`: the URL the client connected to.
    pub tc_url: Option<String>,
    /// `flashVer`: client identification (`FMLE/3.0 …`, `LNX 9,0,124,2`).
    pub flash_ver: Option<String>,
    /// `swfUrl`.
    pub swf_url: Option<String>,
    /// `pageUrl`.
    pub page_url: Option<String>,
    /// `objectEncoding`: 0 (AMF0) or 3 (AMF3); 0 when absent.
    pub object_encoding: f64,
    /// The whole command object, for hooks that want other properties.
    pub object: Value,
    /// Connect arguments after the command object (tokens, credentials).
    pub args: Vec<Value>,
}

/// `publish` type argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishKind {
    /// `"live"` (also used when the argument is absent).
    Live,
    /// `"record"`: record to a new file.
    Record,
    /// `"append"`: append to an existing recording.
    Append,
}

impl PublishKind {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            PublishKind::Live => "live",
            PublishKind::Record => "record",
            PublishKind::Append => "append",
        }
    }
}

/// Which message stream a `deleteStream` means, as the client said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamRef {
    /// A message stream id (the documented form: ffmpeg, librtmp, Flash).
    Id(u32),
    /// A stream name (GStreamer's `rtmp2sink` sends the published name).
    Name(String),
    /// Nothing usable (absent, null, or a number that is not an id): the
    /// stream of the message, or the connection's only stream.
    Unspecified,
}

/// A client's command, typed. Unknown names become [`ClientCommand::Call`].
#[derive(Clone, Debug, PartialEq)]
pub enum ClientCommand {
    /// `connect`.
    Connect {
        /// Transaction id (1 from every known client).
        transaction_id: f64,
        /// The parsed command object and extra arguments.
        params: ConnectParams,
    },
    /// `createStream`.
    CreateStream {
        /// Transaction id to answer with the new stream id.
        transaction_id: f64,
    },
    /// `deleteStream(stream id)` (or, leniently, a stream name).
    DeleteStream {
        /// The message stream to delete.
        target: StreamRef,
    },
    /// `closeStream` (stops publishing/playing on the message's stream).
    CloseStream,
    /// `releaseStream(name)` (FMLE/OBS/ffmpeg before publishing).
    ReleaseStream {
        /// Transaction id.
        transaction_id: f64,
        /// Raw stream name (may carry `?query`).
        name: String,
    },
    /// `FCPublish(name)`.
    FcPublish {
        /// Transaction id.
        transaction_id: f64,
        /// Raw stream name.
        name: String,
    },
    /// `FCUnpublish(name)`.
    FcUnpublish {
        /// Transaction id.
        transaction_id: f64,
        /// Raw stream name.
        name: String,
    },
    /// `publish(name, type)`.
    Publish {
        /// Transaction id.
        transaction_id: f64,
        /// Raw stream name (may carry `?query`, see [`split_stream_name`]).
        name: String,
        /// Live, record or append.
        kind: PublishKind,
    },
    /// `publish(false)` or `publish(null)`: Flash's way to stop publishing.
    StopPublish {
        /// Transaction id.
        transaction_id: f64,
    },
    /// `play(name, start, duration, reset)`.
    Play {
        /// Transaction id.
        transaction_id: f64,
        /// Raw stream name (may carry `?query`).
        name: String,
        /// -2 live or recorded, -1 live only, ≥ 0 recorded from that time (ms).
        start: f64,
        /// -1 until the end, 0 a single frame, > 0 that many ms.
        duration: f64,
        /// Flush previous playlist (default true).
        reset: bool,
    },
    /// `play(false)`: Flash's way to stop playing.
    StopPlay {
        /// Transaction id.
        transaction_id: f64,
    },
    /// `play2(params)`: stream switching; tolerated, carried untyped.
    Play2 {
        /// Transaction id.
        transaction_id: f64,
        /// The parameters object (`Null` when absent).
        params: Value,
    },
    /// `pause(pause, millis)`.
    Pause {
        /// true to pause, false to resume.
        pause: bool,
        /// Stream time of the pause/resume in ms (0 when absent).
        millis: f64,
    },
    /// `seek(millis)`.
    Seek {
        /// Target stream time in ms.
        millis: f64,
    },
    /// `receiveAudio(flag)`.
    ReceiveAudio(bool),
    /// `receiveVideo(flag)`.
    ReceiveVideo(bool),
    /// `getStreamLength(name)`.
    GetStreamLength {
        /// Transaction id.
        transaction_id: f64,
        /// Raw stream name.
        name: String,
    },
    /// Anything else: an application method call.
    Call {
        /// Method name.
        name: String,
        /// Transaction id (0: no reply expected).
        transaction_id: f64,
        /// Command object (usually `Null`).
        command_object: Value,
        /// Arguments.
        args: Vec<Value>,
    },
}

/// Longest command name a [`Tolerated`] note repeats (longer ones are cut
/// on a character boundary).
pub const MAX_NOTED_NAME: usize = 64;

/// One lenient reading: a well-framed command whose arguments did not have
/// the documented shape, and what the server made of it (see "Lenient
/// reading" in docs/architecture.md). Runtimes log these at debug level;
/// the session goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tolerated {
    /// The command as the client named it (at most [`MAX_NOTED_NAME`] bytes).
    pub command: String,
    /// What did not match, and how it was read.
    pub reading: String,
}

impl Tolerated {
    /// A note about `command` (cut to [`MAX_NOTED_NAME`] bytes).
    pub fn new(command: &str, reading: impl Into<String>) -> Self {
        let mut end = command.len().min(MAX_NOTED_NAME);
        while !command.is_char_boundary(end) {
            end -= 1;
        }
        Tolerated {
            command: String::from(command.get(..end).unwrap_or_default()),
            reading: reading.into(),
        }
    }
}

impl core::fmt::Display for Tolerated {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "lenient reading of {:?}: {}", self.command, self.reading)
    }
}

/// What [`ClientCommand::from_command`] made of a command: the typed
/// command and the lenient readings it took (empty for a command of the
/// documented shape).
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// The typed command.
    pub command: ClientCommand,
    /// Every argument that was read leniently, in argument order.
    pub tolerated: Vec<Tolerated>,
}

/// Reads command arguments by position, leniently: a value of another type
/// is converted when the conversion is obvious (a number for a boolean, a
/// whole number for a name) and otherwise replaced by the argument's
/// default; each such reading is noted.
struct Args<'a> {
    command: &'static str,
    args: &'a [Value],
    notes: Vec<Tolerated>,
}

impl<'a> Args<'a> {
    fn note(&mut self, reading: String) {
        self.notes.push(Tolerated::new(self.command, reading));
    }

    /// The value at `i`, treating `Null`/`Undefined` as absent (Flash sends
    /// `undefined` for omitted optional parameters).
    fn opt(&self, i: usize) -> Option<&'a Value> {
        match self.args.get(i) {
            None | Some(Value::Null | Value::Undefined) => None,
            Some(v) => Some(v),
        }
    }

    /// A stream name: a string; a whole number reads as its decimal text;
    /// anything else (or nothing) as `""`, which the hub refuses with the
    /// command's usual status (`BadName`, `StreamNotFound`).
    fn name(&mut self, i: usize) -> String {
        match self.opt(i) {
            Some(v) => match v.as_str() {
                Some(s) => String::from(s),
                None => match v.as_f64().and_then(whole_number) {
                    Some(n) => {
                        let text = alloc::format!("{n}");
                        self.note(alloc::format!(
                            "stream name is a number, read as \"{text}\""
                        ));
                        text
                    }
                    None => {
                        let ty = type_name(v);
                        self.note(alloc::format!("stream name is {ty}, read as \"\""));
                        String::new()
                    }
                },
            },
            None => {
                self.note(String::from("stream name is missing, read as \"\""));
                String::new()
            }
        }
    }

    /// A number, `default` when absent; a numeric string reads as its
    /// number, anything else as `default`.
    fn number_or(&mut self, i: usize, field: &str, default: f64) -> f64 {
        let Some(v) = self.opt(i) else {
            return default;
        };
        if let Some(n) = v.as_f64() {
            return n;
        }
        if let Some(n) = v.as_str().and_then(|s| s.trim().parse::<f64>().ok()) {
            self.note(alloc::format!("{field} is a string, read as {n}"));
            return n;
        }
        let ty = type_name(v);
        self.note(alloc::format!("{field} is {ty}, read as {default}"));
        default
    }

    /// A boolean, `default` when absent; a number reads as `!= 0`, the
    /// strings `"true"`/`"false"` as themselves, anything else as `default`.
    fn bool_or(&mut self, i: usize, field: &str, default: bool) -> bool {
        let Some(v) = self.opt(i) else {
            return default;
        };
        let read = match v {
            Value::Boolean(b) => return *b,
            Value::Number(n) => Some(*n != 0.0),
            other => match other.as_str() {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            },
        };
        let ty = type_name(v);
        let b = read.unwrap_or(default);
        self.note(alloc::format!("{field} is {ty}, read as {b}"));
        b
    }

    /// Notes arguments past the `known` ones (they are ignored).
    fn extra(&mut self, known: usize) {
        let extra = self.args.len().saturating_sub(known);
        if extra > 0 {
            self.note(alloc::format!("{extra} extra argument(s) ignored"));
        }
    }

    /// `false` (or null) in the name position means "stop" for publish/play.
    fn is_stop(&self) -> bool {
        matches!(
            self.args.first(),
            Some(Value::Boolean(false) | Value::Null | Value::Undefined)
        )
    }
}

/// The AMF0 type of a value, for notes ("a boolean", "an object").
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Number(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::String(_) | Value::LongString(_) => "a string",
        Value::Null => "null",
        Value::Undefined => "undefined",
        Value::StrictArray(_) => "an array",
        Value::Date { .. } => "a date",
        Value::XmlDocument(_) => "an XML document",
        _ => "an object",
    }
}

/// `n` as an integer if it is a whole number that fits an `i64`.
fn whole_number(n: f64) -> Option<i64> {
    // `as` saturates (NaN becomes 0); the round trip keeps only values that
    // were already whole numbers in range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let v = n as i64;
    (v as f64 == n && n.abs() < 9.0e15).then_some(v)
}

/// An optional string property of the connect object: absent, `null`,
/// `undefined` or a non-string all read as `None` (Flash sends
/// `pageUrl: undefined` outside a browser).
fn opt_string_prop(obj: &Value, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(String::from)
}

/// The app part of a `tcUrl` (`rtmp://host[:port]/app/room?q` →
/// `app/room?q`), for a connect whose object has no usable `app`.
fn app_from_tc_url(tc_url: &str) -> Option<&str> {
    let rest = tc_url.split_once("://").map_or(tc_url, |(_, r)| r);
    let (_, path) = rest.split_once('/')?;
    (!path.is_empty()).then_some(path)
}

impl ClientCommand {
    /// Types a client's command, leniently (see [`Reading`]): this never
    /// fails. Arguments of another type than documented are converted when
    /// the conversion is obvious, else take their documented defaults;
    /// missing names read as `""` (the hub then refuses the stream with the
    /// usual status); extra arguments are ignored. Each such reading is
    /// listed in [`Reading::tolerated`].
    pub fn from_command(cmd: Command) -> Reading {
        let tx = cmd.transaction_id;
        let name = cmd.name.as_str();
        let command: &'static str = match name {
            "connect" => "connect",
            "createStream" => "createStream",
            "deleteStream" => "deleteStream",
            "closeStream" => "closeStream",
            "releaseStream" => "releaseStream",
            "FCPublish" => "FCPublish",
            "FCUnpublish" => "FCUnpublish",
            "publish" => "publish",
            "play" => "play",
            "play2" => "play2",
            "pause" | "pauseRaw" => "pause",
            "seek" => "seek",
            "receiveAudio" => "receiveAudio",
            "receiveVideo" => "receiveVideo",
            "getStreamLength" => "getStreamLength",
            _ => {
                return Reading {
                    command: ClientCommand::Call {
                        name: cmd.name,
                        transaction_id: tx,
                        command_object: cmd.command_object,
                        args: cmd.args,
                    },
                    tolerated: Vec::new(),
                };
            }
        };
        let mut a = Args {
            command,
            args: &cmd.args,
            notes: Vec::new(),
        };
        let typed = match command {
            "connect" => {
                let obj = &cmd.command_object;
                if obj.properties().is_none() {
                    let ty = type_name(obj);
                    a.note(alloc::format!(
                        "command object is {ty}, read as an empty object"
                    ));
                }
                let tc_url = opt_string_prop(obj, "tcUrl");
                let app = match obj.get("app").map(|v| v.as_str()) {
                    Some(Some(app)) => String::from(app),
                    found => {
                        let what = if found.is_some() {
                            "app is not a string"
                        } else {
                            "app is missing"
                        };
                        // The app the client meant is the path of its URL;
                        // with no URL either, "" (the hub answers InvalidApp).
                        let app = tc_url.as_deref().and_then(app_from_tc_url).unwrap_or("");
                        a.note(alloc::format!("{what}, read as {app:?} (from tcUrl)"));
                        String::from(app)
                    }
                };
                let object_encoding = obj
                    .get("objectEncoding")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let params = ConnectParams {
                    app,
                    tc_url,
                    flash_ver: opt_string_prop(obj, "flashVer"),
                    swf_url: opt_string_prop(obj, "swfUrl"),
                    page_url: opt_string_prop(obj, "pageUrl"),
                    object_encoding,
                    object: cmd.command_object.clone(),
                    args: cmd.args.clone(),
                };
                ClientCommand::Connect {
                    transaction_id: tx,
                    params,
                }
            }
            "createStream" => {
                a.extra(0);
                ClientCommand::CreateStream { transaction_id: tx }
            }
            "deleteStream" => {
                let target = match a.opt(0) {
                    Some(Value::Number(n)) => match f64_to_u32(*n) {
                        Some(id) => StreamRef::Id(id),
                        None => {
                            a.note(alloc::format!(
                                "stream id {n} is not an id, read as the message's stream"
                            ));
                            StreamRef::Unspecified
                        }
                    },
                    Some(v) => match v.as_str() {
                        Some(s) => {
                            a.note(alloc::format!(
                                "stream id is a string, read as the stream named {s:?}"
                            ));
                            StreamRef::Name(String::from(s))
                        }
                        None => {
                            let ty = type_name(v);
                            a.note(alloc::format!(
                                "stream id is {ty}, read as the message's stream"
                            ));
                            StreamRef::Unspecified
                        }
                    },
                    None => {
                        a.note(String::from(
                            "stream id is missing, read as the message's stream",
                        ));
                        StreamRef::Unspecified
                    }
                };
                a.extra(1);
                ClientCommand::DeleteStream { target }
            }
            "closeStream" => ClientCommand::CloseStream,
            "releaseStream" => {
                let name = a.name(0);
                a.extra(1);
                ClientCommand::ReleaseStream {
                    transaction_id: tx,
                    name,
                }
            }
            "FCPublish" => {
                let name = a.name(0);
                a.extra(1);
                ClientCommand::FcPublish {
                    transaction_id: tx,
                    name,
                }
            }
            "FCUnpublish" => {
                let name = a.name(0);
                a.extra(1);
                ClientCommand::FcUnpublish {
                    transaction_id: tx,
                    name,
                }
            }
            "publish" => {
                if a.is_stop() {
                    ClientCommand::StopPublish { transaction_id: tx }
                } else {
                    let name = a.name(0);
                    let kind = match a.opt(1) {
                        None => PublishKind::Live,
                        Some(v) => match v.as_str() {
                            Some("live") => PublishKind::Live,
                            Some("record") => PublishKind::Record,
                            Some("append") => PublishKind::Append,
                            // FMS's name for append that fills gaps.
                            Some("appendWithGap") => PublishKind::Append,
                            _ => {
                                let ty = type_name(v);
                                a.note(alloc::format!(
                                    "publishing type is {ty} other than live/record/append, \
                                     read as \"live\""
                                ));
                                PublishKind::Live
                            }
                        },
                    };
                    a.extra(2);
                    ClientCommand::Publish {
                        transaction_id: tx,
                        name,
                        kind,
                    }
                }
            }
            "play" => {
                if a.is_stop() {
                    ClientCommand::StopPlay { transaction_id: tx }
                } else {
                    let name = a.name(0);
                    let start = a.number_or(1, "start", -2.0);
                    let duration = a.number_or(2, "duration", -1.0);
                    // Old FMS clients send reset as a number (0 = false).
                    let reset = a.bool_or(3, "reset", true);
                    a.extra(4);
                    ClientCommand::Play {
                        transaction_id: tx,
                        name,
                        start,
                        duration,
                        reset,
                    }
                }
            }
            "play2" => {
                let params = a.opt(0).cloned().unwrap_or(Value::Null);
                if params == Value::Null {
                    a.note(String::from("parameters are missing, read as null"));
                }
                a.extra(1);
                ClientCommand::Play2 {
                    transaction_id: tx,
                    params,
                }
            }
            "pause" => {
                if a.opt(0).is_none() {
                    // Red5's pauseRaw and old players send no flag.
                    a.note(String::from("pause flag is missing, read as true"));
                }
                let pause = a.bool_or(0, "pause flag", true);
                let millis = a.number_or(1, "time", 0.0);
                a.extra(2);
                ClientCommand::Pause { pause, millis }
            }
            "seek" => {
                if a.opt(0).is_none() {
                    a.note(String::from("time is missing, read as 0"));
                }
                let millis = a.number_or(0, "time", 0.0);
                a.extra(1);
                ClientCommand::Seek { millis }
            }
            "receiveAudio" | "receiveVideo" => {
                if a.opt(0).is_none() {
                    a.note(String::from("flag is missing, read as true"));
                }
                let flag = a.bool_or(0, "flag", true);
                a.extra(1);
                if command == "receiveAudio" {
                    ClientCommand::ReceiveAudio(flag)
                } else {
                    ClientCommand::ReceiveVideo(flag)
                }
            }
            _ => {
                let name = a.name(0);
                a.extra(1);
                ClientCommand::GetStreamLength {
                    transaction_id: tx,
                    name,
                }
            }
        };
        Reading {
            command: typed,
            tolerated: a.notes,
        }
    }
}

fn f64_to_u32(n: f64) -> Option<u32> {
    // `as` saturates (NaN becomes 0); the round trip keeps only values that
    // were already integers in range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let v = n as u32;
    (f64::from(v) == n).then_some(v)
}

/// `level` of a status info object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLevel {
    /// `"status"`.
    Status,
    /// `"warning"`.
    Warning,
    /// `"error"`.
    Error,
}

impl StatusLevel {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusLevel::Status => "status",
            StatusLevel::Warning => "warning",
            StatusLevel::Error => "error",
        }
    }
}

/// Status codes clients react to (Red5/FMS spelling).
pub mod status {
    /// connect accepted.
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    /// connect refused (auth, hooks, limits).
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    /// connect to an application that does not exist.
    pub const CONNECT_INVALID_APP: &str = "NetConnection.Connect.InvalidApp";
    /// connection closed by the server.
    pub const CONNECT_CLOSED: &str = "NetConnection.Connect.Closed";
    /// connection failed.
    pub const CONNECT_FAILED: &str = "NetConnection.Connect.Failed";
    /// unknown method called.
    pub const CALL_FAILED: &str = "NetConnection.Call.Failed";
    /// publish accepted.
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    /// name already being published (or invalid).
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    /// publisher stopped.
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    /// playlist reset.
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    /// playback started.
    pub const PLAY_START: &str = "NetStream.Play.Start";
    /// playback stopped.
    pub const PLAY_STOP: &str = "NetStream.Play.Stop";
    /// no such stream.
    pub const PLAY_STREAM_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    /// the stream a player waits for started publishing.
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
    /// the played stream's publisher left.
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    /// the player cannot keep up.
    pub const PLAY_INSUFFICIENT_BW: &str = "NetStream.Play.InsufficientBW";
    /// seek refused (live streams).
    pub const SEEK_FAILED: &str = "NetStream.Seek.Failed";
    /// pause accepted.
    pub const PAUSE_NOTIFY: &str = "NetStream.Pause.Notify";
    /// resume accepted.
    pub const UNPAUSE_NOTIFY: &str = "NetStream.Unpause.Notify";
    /// SO persistence mismatch.
    pub const SO_BAD_PERSISTENCE: &str = "SharedObject.BadPersistence";
    /// SO could not be created.
    pub const SO_OBJECT_CREATION_FAILED: &str = "SharedObject.ObjectCreationFailed";
    /// SO read refused.
    pub const SO_NO_READ_ACCESS: &str = "SharedObject.NoReadAccess";
    /// SO write refused.
    pub const SO_NO_WRITE_ACCESS: &str = "SharedObject.NoWriteAccess";
}

/// `fmsVer` reported in the connect reply; clients (ffmpeg, OBS, Flash)
/// only check that it is present.
pub const FMS_VERSION: &str = "FMS/3,5,7,7009";

fn info(level: StatusLevel, code: &str, description: &str) -> Properties {
    vec![
        (String::from("level"), Value::string(level.as_str())),
        (String::from("code"), Value::string(code)),
        (String::from("description"), Value::string(description)),
    ]
}

/// `_result` for `connect`: properties `{fmsVer, capabilities: 31, mode: 1}`
/// then info `{level: "status", code: NetConnection.Connect.Success,
/// description, objectEncoding}` (what Red5 and FMS send).
pub fn connect_result(transaction_id: f64, object_encoding: f64, description: &str) -> Command {
    let properties = Value::object([
        ("fmsVer", Value::string(FMS_VERSION)),
        ("capabilities", Value::Number(31.0)),
        ("mode", Value::Number(1.0)),
    ]);
    let mut props = info(StatusLevel::Status, status::CONNECT_SUCCESS, description);
    props.push((
        String::from("objectEncoding"),
        Value::Number(object_encoding),
    ));
    Command {
        name: String::from("_result"),
        transaction_id,
        command_object: properties,
        args: vec![Value::Object(props)],
    }
}

/// `_error` for `connect`: null, then `{level: "error", code, description}`
/// (code e.g. [`status::CONNECT_REJECTED`] or [`status::CONNECT_INVALID_APP`]).
pub fn connect_error(transaction_id: f64, code: &str, description: &str) -> Command {
    error(transaction_id, code, description)
}

/// `_result` with a null command object and `args`.
pub fn result(transaction_id: f64, args: Vec<Value>) -> Command {
    Command::new("_result", transaction_id, args)
}

/// `_error` with a null command object and `{level: "error", code,
/// description}`. For unknown methods use [`status::CALL_FAILED`] and a
/// description naming the method.
pub fn error(transaction_id: f64, code: &str, description: &str) -> Command {
    Command::new(
        "_error",
        transaction_id,
        vec![Value::Object(info(StatusLevel::Error, code, description))],
    )
}

/// `_result` for `createStream`: null, then the new message stream id.
pub fn create_stream_result(transaction_id: f64, stream_id: u32) -> Command {
    result(transaction_id, vec![Value::Number(f64::from(stream_id))])
}

/// `onStatus` (transaction 0, null command object) with info
/// `{level, code, description}` followed by `extra` properties in order
/// (e.g. `details` = stream name, `clientid`).
pub fn on_status(level: StatusLevel, code: &str, description: &str, extra: Properties) -> Command {
    let mut props = info(level, code, description);
    props.extend(extra);
    Command::new("onStatus", 0.0, vec![Value::Object(props)])
}

/// `onBWDone` (transaction 0, null, no arguments): sent after connect;
/// ffmpeg and Flash answer with `_checkbw` or ignore it.
pub fn on_bw_done() -> Command {
    Command::new("onBWDone", 0.0, Vec::new())
}

/// `onFCPublish` (transaction 0, null, `{level: "status", code,
/// description}`), the FMLE-era answer to `FCPublish`.
pub fn on_fc_publish(code: &str, description: &str) -> Command {
    Command::new(
        "onFCPublish",
        0.0,
        vec![Value::Object(info(StatusLevel::Status, code, description))],
    )
}

/// `onFCUnpublish`, the answer to `FCUnpublish`; same shape as
/// [`on_fc_publish`].
pub fn on_fc_unpublish(code: &str, description: &str) -> Command {
    Command::new(
        "onFCUnpublish",
        0.0,
        vec![Value::Object(info(StatusLevel::Status, code, description))],
    )
}

/// A server's command as seen by a client waiting for replies.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerReply {
    /// `_result`.
    Result {
        /// Transaction it answers.
        transaction_id: f64,
        /// Command object (connect properties, else usually `Null`).
        command_object: Value,
        /// Arguments (connect info object, new stream id, …).
        args: Vec<Value>,
    },
    /// `_error`.
    Error {
        /// Transaction it answers.
        transaction_id: f64,
        /// The info object (`Null` if the server sent none).
        info: Value,
    },
    /// `onStatus`.
    OnStatus {
        /// The info object (`Null` if the server sent none).
        info: Value,
    },
    /// Anything else (`onBWDone`, `onFCPublish`, application calls).
    Call(Command),
}

impl ServerReply {
    /// Classifies a command received from a server.
    pub fn from_command(cmd: Command) -> ServerReply {
        match cmd.name.as_str() {
            "_result" => ServerReply::Result {
                transaction_id: cmd.transaction_id,
                command_object: cmd.command_object,
                args: cmd.args,
            },
            "_error" => ServerReply::Error {
                transaction_id: cmd.transaction_id,
                info: cmd.args.into_iter().next().unwrap_or(Value::Null),
            },
            "onStatus" => ServerReply::OnStatus {
                info: cmd.args.into_iter().next().unwrap_or(Value::Null),
            },
            _ => ServerReply::Call(cmd),
        }
    }

    /// Transaction id of a `_result`/`_error`.
    pub fn transaction_id(&self) -> Option<f64> {
        match self {
            ServerReply::Result { transaction_id, .. }
            | ServerReply::Error { transaction_id, .. } => Some(*transaction_id),
            _ => None,
        }
    }

    /// The info object: `_error`/`onStatus` info, or for `_result` the
    /// first object argument (connect's info).
    pub fn info(&self) -> Option<&Value> {
        match self {
            ServerReply::Error { info, .. } | ServerReply::OnStatus { info } => Some(info),
            ServerReply::Result { args, .. } => args.iter().find(|v| v.properties().is_some()),
            ServerReply::Call(_) => None,
        }
    }

    /// `info.code`, e.g. `NetStream.Publish.Start`.
    pub fn code(&self) -> Option<&str> {
        self.info()?.get("code")?.as_str()
    }

    /// `info.level`.
    pub fn level(&self) -> Option<&str> {
        self.info()?.get("level")?.as_str()
    }
}
