//! Shared-object messages (type 19 AMF0; type 16 with a leading encoding
//! byte): one named SO, its version, and a list of events.
//!
//! Layout: u16 name length + UTF-8 name, u32 version, u32 flags, u32
//! reserved; then events `u8 type, u32 length, payload`. Keys, status codes
//! and levels are u16-length-prefixed UTF-8 without an AMF0 marker; values
//! and message arguments are AMF0, where an AMF3 client writes each as an
//! AVM+ switch (0x11) and one AMF3 value (Flash, and Red5 to AMF3 clients).
//!
//! Decoding puts values and arguments in the shared value model: each AVM+
//! value is decoded as AMF3 and replaced by its AMF0 form where AMF0 has
//! one ([`crate::amf3::unwrap_avmplus`]; AMF3-only values stay AVM+).
//! [`SharedObjectMessage::encode`] writes them as AMF0 (type 19);
//! [`SharedObjectMessage::encode_amf3`] writes the type-16 payload with
//! every value and argument as one AVM+ value.

use super::MessageError;
use super::cursor::{Reader, put_short_string};
use crate::Limits;
use crate::amf0::{self, Value};
use crate::amf3;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// Most events accepted in one message. Every event takes at least five
/// bytes, so the message size bounds this too; the constant keeps the event
/// list (and the work done per message) small even for large messages.
pub const MAX_SO_EVENTS: usize = 1024;

/// Event type codes ([`SoEvent::type_code`], [`SoEventView::event_type`]).
pub mod so_event_type {
    /// [`SoEvent::Use`](super::SoEvent::Use).
    pub const USE: u8 = 1;
    /// [`SoEvent::Release`](super::SoEvent::Release).
    pub const RELEASE: u8 = 2;
    /// [`SoEvent::RequestChange`](super::SoEvent::RequestChange).
    pub const REQUEST_CHANGE: u8 = 3;
    /// [`SoEvent::Change`](super::SoEvent::Change).
    pub const CHANGE: u8 = 4;
    /// [`SoEvent::Success`](super::SoEvent::Success).
    pub const SUCCESS: u8 = 5;
    /// [`SoEvent::SendMessage`](super::SoEvent::SendMessage).
    pub const SEND_MESSAGE: u8 = 6;
    /// [`SoEvent::Status`](super::SoEvent::Status).
    pub const STATUS: u8 = 7;
    /// [`SoEvent::Clear`](super::SoEvent::Clear).
    pub const CLEAR: u8 = 8;
    /// [`SoEvent::Remove`](super::SoEvent::Remove).
    pub const REMOVE: u8 = 9;
    /// [`SoEvent::RequestRemove`](super::SoEvent::RequestRemove).
    pub const REQUEST_REMOVE: u8 = 10;
    /// [`SoEvent::UseSuccess`](super::SoEvent::UseSuccess).
    pub const USE_SUCCESS: u8 = 11;
}

/// Flag bit meaning "persistent" in the header's flags field.
pub const FLAG_PERSISTENT: u32 = 2;

/// One shared-object event.
#[derive(Clone, Debug, PartialEq)]
pub enum SoEvent {
    /// 0x01 (C→S): subscribe to the SO.
    Use,
    /// 0x02 (C→S): unsubscribe.
    Release,
    /// 0x03 (C→S): set `key` to `value`.
    RequestChange {
        /// Attribute name.
        key: String,
        /// New value.
        value: Value,
    },
    /// 0x04 (S→C): `key` now holds `value`.
    Change {
        /// Attribute name.
        key: String,
        /// Current value.
        value: Value,
    },
    /// 0x05 (S→C): the receiver's own change of `key` was accepted.
    Success {
        /// Attribute name.
        key: String,
    },
    /// 0x06 (both): call `method(args…)` on every subscriber.
    SendMessage {
        /// Handler name.
        method: String,
        /// Arguments.
        args: Vec<Value>,
    },
    /// 0x07 (S→C): a status or error, e.g. `SharedObject.NoWriteAccess`.
    Status {
        /// Status code.
        code: String,
        /// `"error"`, `"warning"` or `"status"`.
        level: String,
    },
    /// 0x08 (S→C): drop all local data (precedes a full sync).
    Clear,
    /// 0x09 (S→C): `key` was deleted.
    Remove {
        /// Attribute name.
        key: String,
    },
    /// 0x0A (C→S): delete `key`.
    RequestRemove {
        /// Attribute name.
        key: String,
    },
    /// 0x0B (S→C): subscription accepted; initial data follows.
    UseSuccess,
}

/// Name of an event type for messages, `"unknown"` for undefined codes.
pub fn so_event_name(event_type: u8) -> &'static str {
    match event_type {
        1 => "use",
        2 => "release",
        3 => "request change",
        4 => "change",
        5 => "success",
        6 => "send message",
        7 => "status",
        8 => "clear",
        9 => "remove",
        10 => "request remove",
        11 => "use success",
        _ => "unknown",
    }
}

impl SoEvent {
    /// The event type code.
    pub fn type_code(&self) -> u8 {
        match self {
            SoEvent::Use => 1,
            SoEvent::Release => 2,
            SoEvent::RequestChange { .. } => 3,
            SoEvent::Change { .. } => 4,
            SoEvent::Success { .. } => 5,
            SoEvent::SendMessage { .. } => 6,
            SoEvent::Status { .. } => 7,
            SoEvent::Clear => 8,
            SoEvent::Remove { .. } => 9,
            SoEvent::RequestRemove { .. } => 10,
            SoEvent::UseSuccess => 11,
        }
    }

    /// Parses one event body (exactly the event's `length` bytes), its
    /// AVM+ values put into the shared model.
    fn decode(event_type: u8, body: &[u8], limits: &Limits) -> Result<Self, MessageError> {
        let mut ev = Self::decode_values(event_type, body, &mut amf0::BodyDecoder::new(limits))?;
        let what = ev.amf3_what();
        amf3::unwrap_body(ev.values_mut(), limits)
            .map_err(|error| MessageError::Amf3 { what, error })?;
        Ok(ev)
    }

    /// What an AMF3 error in this event's values is about.
    fn amf3_what(&self) -> &'static str {
        match self {
            SoEvent::SendMessage { .. } => "shared object send message argument",
            _ => "shared object value",
        }
    }

    /// The AMF values of the event, in wire order.
    fn values_mut(&mut self) -> Vec<&mut Value> {
        match self {
            SoEvent::RequestChange { value, .. } | SoEvent::Change { value, .. } => {
                alloc::vec![value]
            }
            SoEvent::SendMessage { args, .. } => args.iter_mut().collect(),
            _ => Vec::new(),
        }
    }

    /// Parses one event body (exactly the event's `length` bytes) with
    /// `values`, which may be shared by the events of one message; AVM+
    /// values are left as they are.
    fn decode_values(
        event_type: u8,
        body: &[u8],
        values: &mut amf0::BodyDecoder,
    ) -> Result<Self, MessageError> {
        let mut r = Reader::new(body);
        let ev = match event_type {
            1 => SoEvent::Use,
            2 => SoEvent::Release,
            8 => SoEvent::Clear,
            11 => SoEvent::UseSuccess,
            3 | 4 => {
                let key = r.short_string("shared object key")?;
                let mut rest = r.remaining();
                let value = values
                    .decode(&mut rest)
                    .map_err(|error| MessageError::Amf0 {
                        what: "shared object value",
                        error,
                    })?;
                r = Reader::new(rest);
                if event_type == 3 {
                    SoEvent::RequestChange { key, value }
                } else {
                    SoEvent::Change { key, value }
                }
            }
            5 => SoEvent::Success {
                key: r.short_string("shared object key")?,
            },
            9 => SoEvent::Remove {
                key: r.short_string("shared object key")?,
            },
            10 => SoEvent::RequestRemove {
                key: r.short_string("shared object key")?,
            },
            6 => {
                let mut rest = r.remaining();
                let method = values
                    .decode(&mut rest)
                    .map_err(|error| MessageError::Amf0 {
                        what: "shared object send message method",
                        error,
                    })?;
                let method = match method {
                    Value::String(s) | Value::LongString(s) => s,
                    _ => {
                        return Err(MessageError::WrongType {
                            command: "shared object send message",
                            field: "method",
                            expected: "string",
                        });
                    }
                };
                let args = values
                    .decode_all(rest)
                    .map_err(|error| MessageError::Amf0 {
                        what: "shared object send message arguments",
                        error,
                    })?;
                r = Reader::new(&[]);
                SoEvent::SendMessage { method, args }
            }
            7 => SoEvent::Status {
                code: r.short_string("shared object status code")?,
                level: r.short_string("shared object status level")?,
            },
            other => return Err(MessageError::UnknownSoEvent(other)),
        };
        if !r.is_empty() {
            return Err(MessageError::SoEventTrailing {
                event_type,
                extra: r.remaining().len(),
            });
        }
        Ok(ev)
    }

    /// Appends the event body (without type and length) to `out`.
    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            SoEvent::Use | SoEvent::Release | SoEvent::Clear | SoEvent::UseSuccess => {}
            SoEvent::RequestChange { key, value } | SoEvent::Change { key, value } => {
                put_short_string(out, key);
                amf0::encode(value, out);
            }
            SoEvent::Success { key } | SoEvent::Remove { key } | SoEvent::RequestRemove { key } => {
                put_short_string(out, key)
            }
            SoEvent::SendMessage { method, args } => {
                amf0::encode(&Value::String(method.clone()), out);
                for a in args {
                    amf0::encode(a, out);
                }
            }
            SoEvent::Status { code, level } => {
                put_short_string(out, code);
                put_short_string(out, level);
            }
        }
    }
}

/// A shared-object message: events for one SO.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedObjectMessage {
    /// SO name.
    pub name: String,
    /// SO version the events bring the receiver to (0 from clients that
    /// have no copy yet).
    pub version: u32,
    /// Persistent (flags bit 2) or transient.
    pub persistent: bool,
    /// Events, applied in order.
    pub events: Vec<SoEvent>,
}

/// How many AVM+ values `v` holds, nested ones included.
fn avmplus_in(v: &Value) -> usize {
    match v {
        Value::Avmplus(_) => 1,
        Value::Object(p)
        | Value::EcmaArray { properties: p, .. }
        | Value::TypedObject { properties: p, .. } => p.iter().map(|(_, v)| avmplus_in(v)).sum(),
        Value::StrictArray(items) => items.iter().map(avmplus_in).sum(),
        _ => 0,
    }
}

impl SharedObjectMessage {
    /// Parses a type-19 payload (for type 16 the caller strips the leading
    /// encoding byte first): the [`SharedObjectView`] of it, every event
    /// made owned.
    ///
    /// The flags field is read as a bit set: the SO is persistent when bit
    /// value 2 is set, whatever the other bits (Flash only ever sends 0 or
    /// 2); the reserved field is ignored. Events are checked strictly:
    /// an undefined type, a length past the buffer, bytes left inside an
    /// event or invalid UTF-8 are errors, as are more than
    /// [`MAX_SO_EVENTS`] events.
    pub fn decode(payload: &[u8], limits: &Limits) -> Result<Self, MessageError> {
        SharedObjectView::parse(payload)?.to_message(limits)
    }

    /// Appends the type-19 payload to `out`: flags 2 or 0, reserved 0.
    /// When the values hold two or more AVM+ values, they are written so
    /// that readers with one set of AMF3 tables per message (Flash's and
    /// Red5's AMF0 readers, py3amf) and with fresh ones per value read
    /// the same ([`crate::amf3::portable_body`], decoding within
    /// `Limits::default()`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let avmplus: usize = self
            .events
            .iter()
            .map(|ev| match ev {
                SoEvent::RequestChange { value, .. } | SoEvent::Change { value, .. } => {
                    avmplus_in(value)
                }
                SoEvent::SendMessage { args, .. } => args.iter().map(avmplus_in).sum(),
                _ => 0,
            })
            .sum();
        if avmplus < 2 {
            return self.encode_as_is(out);
        }
        let mut portable = self.clone();
        amf3::portable_body(
            portable.events.iter_mut().flat_map(SoEvent::values_mut),
            &Limits::default(),
        );
        portable.encode_as_is(out);
    }

    /// [`encode`](Self::encode) without the rewriting.
    fn encode_as_is(&self, out: &mut Vec<u8>) {
        put_short_string(out, &self.name);
        out.extend_from_slice(&self.version.to_be_bytes());
        let flags = if self.persistent { FLAG_PERSISTENT } else { 0 };
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let mut body = Vec::new();
        for ev in &self.events {
            body.clear();
            ev.encode_body(&mut body);
            out.push(ev.type_code());
            let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&body);
        }
    }

    /// Appends the type-16 payload to `out`: the encoding byte 0, then the
    /// type-19 layout with every value and message argument written as one
    /// AVM+ value ([`crate::amf3::wrap_avmplus`]), as Flash and Red5 write
    /// them for AMF3 peers, made readable with shared or per-value tables
    /// ([`crate::amf3::portable_body`]). (`limits` bound the decoding of AVM+ values
    /// nested in AMF0 ones.)
    pub fn encode_amf3(&self, limits: &Limits, out: &mut Vec<u8>) {
        let wrap = |v: &Value| amf3::wrap_avmplus(v, limits);
        let mut events: Vec<SoEvent> = self
            .events
            .iter()
            .map(|ev| match ev {
                SoEvent::RequestChange { key, value } => SoEvent::RequestChange {
                    key: key.clone(),
                    value: wrap(value),
                },
                SoEvent::Change { key, value } => SoEvent::Change {
                    key: key.clone(),
                    value: wrap(value),
                },
                SoEvent::SendMessage { method, args } => SoEvent::SendMessage {
                    method: method.clone(),
                    args: args.iter().map(wrap).collect(),
                },
                other => other.clone(),
            })
            .collect();
        amf3::portable_body(events.iter_mut().flat_map(SoEvent::values_mut), limits);
        out.push(0);
        SharedObjectMessage {
            name: self.name.clone(),
            version: self.version,
            persistent: self.persistent,
            events,
        }
        .encode_as_is(out);
    }

    /// The type-19 payload as a shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.encode(&mut out);
        Bytes::from(out)
    }
}

/// A shared-object message read in place: the header's fields, and the
/// events one at a time from [`events`](Self::events), all borrowed from
/// the payload. Nothing is copied or allocated, so a client that only looks
/// for one key's string value (the load tool's subscribers) pays for no
/// owned message per notice. [`SharedObjectMessage::decode`] is this view
/// with every event made owned, so both check the same things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedObjectView<'a> {
    name: &'a str,
    version: u32,
    persistent: bool,
    events: &'a [u8],
}

impl<'a> SharedObjectView<'a> {
    /// Reads the header of a type-19 payload (for type 16 the caller strips
    /// the leading encoding byte first). The events are read as they are
    /// iterated.
    pub fn parse(payload: &'a [u8]) -> Result<Self, MessageError> {
        let mut r = Reader::new(payload);
        let name = r.short_str("shared object name")?;
        let version = r.u32("shared object version")?;
        let flags = r.u32("shared object flags")?;
        let _reserved = r.u32("shared object reserved field")?;
        Ok(SharedObjectView {
            name,
            version,
            persistent: flags & FLAG_PERSISTENT != 0,
            events: r.remaining(),
        })
    }

    /// SO name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The version the events bring the receiver to.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Persistent (flags bit 2) or transient.
    pub fn persistent(&self) -> bool {
        self.persistent
    }

    /// The events in order. An undefined event type, a length past the
    /// payload or more than [`MAX_SO_EVENTS`] events end the iteration with
    /// the error.
    pub fn events(&self) -> SoEventViews<'a> {
        SoEventViews {
            rest: self.events,
            seen: 0,
            failed: false,
        }
    }

    /// The owned message, every event decoded. The AVM+ values of all the
    /// events share one set of AMF3 reference tables, as Red5 reads a
    /// shared-object message ([`crate::amf3::unwrap_body`]).
    pub fn to_message(&self, limits: &Limits) -> Result<SharedObjectMessage, MessageError> {
        let mut values = amf0::BodyDecoder::new(limits);
        let mut events = Vec::new();
        for event in self.events() {
            let event = event?;
            events.push(SoEvent::decode_values(
                event.event_type,
                event.body,
                &mut values,
            )?);
        }
        amf3::unwrap_body(events.iter_mut().flat_map(SoEvent::values_mut), limits).map_err(
            |error| MessageError::Amf3 {
                what: "shared object value",
                error,
            },
        )?;
        Ok(SharedObjectMessage {
            name: String::from(self.name),
            version: self.version,
            persistent: self.persistent,
            events,
        })
    }
}

/// The events of a [`SharedObjectView`], each borrowed and undecoded.
#[derive(Clone, Debug)]
pub struct SoEventViews<'a> {
    rest: &'a [u8],
    seen: usize,
    failed: bool,
}

impl<'a> Iterator for SoEventViews<'a> {
    type Item = Result<SoEventView<'a>, MessageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let event = self.read();
        self.failed = event.is_err();
        Some(event)
    }
}

impl<'a> SoEventViews<'a> {
    fn read(&mut self) -> Result<SoEventView<'a>, MessageError> {
        if self.seen >= MAX_SO_EVENTS {
            return Err(MessageError::TooManySoEvents {
                limit: MAX_SO_EVENTS,
            });
        }
        let mut r = Reader::new(self.rest);
        let event_type = r.u8("shared object event type")?;
        if !(so_event_type::USE..=so_event_type::USE_SUCCESS).contains(&event_type) {
            return Err(MessageError::UnknownSoEvent(event_type));
        }
        let length = r.u32("shared object event length")?;
        let available = r.remaining().len();
        let body = usize::try_from(length)
            .ok()
            .and_then(|len| r.take(len, "shared object event").ok())
            .ok_or(MessageError::SoEventOverrun {
                event_type,
                length,
                available,
            })?;
        self.rest = r.remaining();
        self.seen += 1;
        Ok(SoEventView { event_type, body })
    }
}

/// One event of a [`SharedObjectView`]: its type code (1–11) and its body,
/// not yet decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoEventView<'a> {
    event_type: u8,
    body: &'a [u8],
}

impl<'a> SoEventView<'a> {
    /// The event type code ([`SoEvent::type_code`]).
    pub fn event_type(&self) -> u8 {
        self.event_type
    }

    /// The event's body, without type and length.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The owned event.
    pub fn to_event(&self, limits: &Limits) -> Result<SoEvent, MessageError> {
        SoEvent::decode(self.event_type, self.body, limits)
    }

    /// For a change (4) or a request to change (3) whose value is an AMF0
    /// string or long string: the key and the string, borrowed. `Ok(None)`
    /// for any other event or value type (decode those with
    /// [`to_event`](Self::to_event)). The same malformations as in
    /// [`to_event`](Self::to_event) are errors: invalid UTF-8, a length past
    /// the body, bytes after the value.
    pub fn string_change(&self) -> Result<Option<(&'a str, &'a str)>, MessageError> {
        if !matches!(
            self.event_type,
            so_event_type::REQUEST_CHANGE | so_event_type::CHANGE
        ) {
            return Ok(None);
        }
        let mut r = Reader::new(self.body);
        let key = r.short_str("shared object key")?;
        let mut rest = r.remaining();
        let value = amf0::decode_str(&mut rest).map_err(|error| MessageError::Amf0 {
            what: "shared object value",
            error,
        })?;
        let Some(value) = value else {
            return Ok(None);
        };
        if !rest.is_empty() {
            return Err(MessageError::SoEventTrailing {
                event_type: self.event_type,
                extra: rest.len(),
            });
        }
        Ok(Some((key, value)))
    }
}
