//! What a runtime needs of a server-side connection, whatever its protocol.
//!
//! RTMP's [`ServerConnection`](crate::rtmp::ServerConnection),
//! WebSocket's [`WsConnection`](crate::ws::WsConnection) and FLV's
//! [`FlvConnection`](crate::flv::FlvConnection) follow one call
//! order (see [`crate::rtmp`]), so a runtime writes its connection loop once,
//! generic over this trait.

use crate::flv::{FlvConnection, FlvError};
use crate::hub::{Delivery, Request};
use crate::message::Tolerated;
use crate::rtmp::{RtmpError, ServerConnection};
use crate::time::Instant;
use crate::ws::{WsConnection, WsError};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use bytes::Bytes;
use core::fmt;

/// A server-side protocol connection, driven in the order the
/// [`crate::rtmp`] module documents.
pub trait ServerSession {
    /// Why the connection failed or closed.
    type Error: fmt::Display + fmt::Debug;

    /// Takes bytes read from the socket; `Err` is fatal.
    fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), Self::Error>;
    /// The next request for the hub.
    fn poll_event(&mut self) -> Option<Request>;
    /// Turns a hub delivery into bytes.
    fn handle_delivery(&mut self, now: Instant, delivery: Delivery);
    /// The next bytes for the socket.
    fn poll_transmit(&mut self) -> Option<Bytes>;
    /// Bytes waiting in `poll_transmit` (pull deliveries only while small).
    fn pending_bytes(&self) -> usize;
    /// When `handle_timeout` should run next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Fires the connection's timers.
    fn handle_timeout(&mut self, now: Instant);
    /// True once the connection should be flushed and closed.
    fn is_closing(&self) -> bool;
    /// Why it closes, when it does.
    fn close_reason(&self) -> Option<&Self::Error>;
    /// True if the close was an orderly one (not worth a warning).
    fn closed_cleanly(&self) -> bool;
    /// What this connection would make of a shared-object notice if it
    /// were handed one now; see [`SharedEncoding`].
    fn shared_encoding(&self) -> SharedEncoding;
    /// The next lenient reading the connection took (a well-framed
    /// request of an unexpected shape it answered anyway); drain after
    /// `handle_input` and log at debug level.
    fn poll_tolerated(&mut self) -> Option<Tolerated>;
}

/// Lenient readings waiting for the runtime's log: at most
/// [`ToleratedLog::MAX`]; more in one go only count (a client repeating
/// the same odd command does not grow memory). Boxed and only while it
/// holds notes: a connection that never needs a lenient reading (nearly
/// all) carries one pointer.
#[derive(Debug, Default)]
pub(crate) struct ToleratedLog(Option<Box<Pending>>);

#[derive(Debug, Default)]
pub(crate) struct Pending {
    queue: VecDeque<Tolerated>,
    dropped: u32,
}

impl ToleratedLog {
    /// Notes kept until drained.
    pub(crate) const MAX: usize = 8;

    pub(crate) fn push(&mut self, note: Tolerated) {
        let pending = self.0.get_or_insert_with(Box::default);
        if pending.queue.len() < Self::MAX {
            pending.queue.push_back(note);
        } else {
            pending.dropped = pending.dropped.saturating_add(1);
        }
    }

    pub(crate) fn extend(&mut self, notes: impl IntoIterator<Item = Tolerated>) {
        for note in notes {
            self.push(note);
        }
    }

    /// The next note; after the last one, a summary of those not kept.
    /// Drained, it frees its memory.
    pub(crate) fn pop(&mut self) -> Option<Tolerated> {
        let pending = self.0.as_mut()?;
        if let Some(note) = pending.queue.pop_front() {
            return Some(note);
        }
        let dropped = pending.dropped;
        self.0 = None;
        (dropped > 0).then(|| {
            Tolerated::new(
                "(more)",
                alloc::format!("{dropped} further lenient readings not listed"),
            )
        })
    }
}

/// How a connection turns shared-object notices into bytes, when that does
/// not depend on the connection's own state: it sends the delivery's shared
/// encoding ([`SoDelivery::encoded`](crate::hub::SoDelivery::encoded)) as
/// it is.
///
/// A runtime may then write such a delivery to an idle connection's socket
/// itself, without waking the connection's task: the bytes are the same,
/// and handing the delivery over would not change the connection (its
/// timers run on input only). The value holds only while the connection
/// sits idle with nothing queued; ask again after each use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SharedEncoding {
    /// Every delivery needs the connection (handshake, closing, chat mode).
    #[default]
    None,
    /// An open RTMP connection with this outbound chunk size: a notice whose
    /// payload fits one chunk goes out as the shared encoding.
    Rtmp {
        /// The connection's outbound chunk size.
        out_chunk_size: u32,
    },
    /// An open WebSocket in JSON mode: notices go out as the shared frames.
    WebSocketJson,
}

impl SharedEncoding {
    /// The bytes the connection would send for `delivery`, if they are the
    /// shared encoding (`None`: the connection must handle it itself). An
    /// empty slice means the connection would send nothing.
    pub fn bytes(self, delivery: &Delivery) -> Option<&[Bytes]> {
        let Delivery::SharedObject(so) = delivery else {
            return None;
        };
        let shared = core::slice::from_ref(&so.encoded);
        match self {
            SharedEncoding::None => None,
            // The same test as the connection's own (`handle_delivery`).
            SharedEncoding::Rtmp { out_chunk_size } => {
                crate::rtmp::fanout::notice_fits(&so.encoded, out_chunk_size).then_some(shared)
            }
            SharedEncoding::WebSocketJson if so.encoded.is_empty() => Some(&[]),
            SharedEncoding::WebSocketJson => Some(shared),
        }
    }
}

macro_rules! delegate_session {
    ($ty:ty, $error:ty, $clean:expr) => {
        impl ServerSession for $ty {
            type Error = $error;
            fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), $error> {
                <$ty>::handle_input(self, now, data)
            }
            fn poll_event(&mut self) -> Option<Request> {
                <$ty>::poll_event(self)
            }
            fn handle_delivery(&mut self, now: Instant, delivery: Delivery) {
                <$ty>::handle_delivery(self, now, delivery)
            }
            fn poll_transmit(&mut self) -> Option<Bytes> {
                <$ty>::poll_transmit(self)
            }
            fn pending_bytes(&self) -> usize {
                <$ty>::pending_bytes(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn is_closing(&self) -> bool {
                <$ty>::is_closing(self)
            }
            fn close_reason(&self) -> Option<&$error> {
                <$ty>::close_reason(self)
            }
            fn closed_cleanly(&self) -> bool {
                let clean: fn(Option<&$error>) -> bool = $clean;
                clean(<$ty>::close_reason(self))
            }
            fn shared_encoding(&self) -> SharedEncoding {
                <$ty>::shared_encoding(self)
            }
            fn poll_tolerated(&mut self) -> Option<Tolerated> {
                <$ty>::poll_tolerated(self)
            }
        }
    };
}

// RTMP reports a reason only for failures; a hub-requested close has none.
delegate_session!(ServerConnection, RtmpError, |reason| reason.is_none());
delegate_session!(WsConnection, WsError, |reason| matches!(
    reason,
    None | Some(WsError::PeerClosed { .. } | WsError::ServerClosed { .. })
));
delegate_session!(FlvConnection, FlvError, |reason| matches!(
    reason,
    None | Some(FlvError::Ended | FlvError::PeerClosed | FlvError::ServerClosed { .. })
));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerated_notes_are_bounded_and_summarised() {
        let mut log = ToleratedLog::default();
        for i in 0..20 {
            log.push(Tolerated::new("x", alloc::format!("{i}")));
        }
        let notes: alloc::vec::Vec<Tolerated> = core::iter::from_fn(|| log.pop()).collect();
        assert_eq!(notes.len(), ToleratedLog::MAX + 1);
        assert_eq!(notes[0].reading, "0");
        assert_eq!(
            notes[ToleratedLog::MAX].reading,
            "12 further lenient readings not listed"
        );
        assert_eq!(log.pop(), None);
    }
}
