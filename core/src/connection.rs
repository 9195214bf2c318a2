//! What a runtime needs of a server-side connection, whatever its protocol:
//! the one contract every protocol connection follows ([`Connection`]),
//! how a connection ends ([`CloseReason`]), and when a runtime may write a
//! connection's notices itself ([`SharedEncoding`]).
//!
//! This module knows no protocol: RTMP's
//! [`ServerConnection`](crate::rtmp::ServerConnection) and WebSocket's
//! [`WsConnection`](crate::ws::WsConnection) implement the trait in their
//! own modules, and a runtime writes its connection loop once, generic over
//! it.

use crate::hub::{Delivery, RejectCode, Request};
use crate::message::Tolerated;
use crate::time::Instant;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use bytes::Bytes;
use core::fmt;

/// A server-side protocol connection: bytes from the socket in, hub
/// [`Request`]s out; hub [`Delivery`]s in, bytes for the socket out.
///
/// # Driving a connection
///
/// This is the one place the contract is written; every protocol module
/// and runtime links here.
///
/// 1. [`handle_input`](Self::handle_input)`(now, bytes)` with everything
///    read from the socket, in order, from the first byte on (handshake or
///    HTTP upgrade included).
/// 2. Drain [`poll_event`](Self::poll_event) and hand each [`Request`] to
///    the hub, in order (the first is a [`Request::Connect`]).
/// 3. While [`pending_bytes`](Self::pending_bytes) is small, pull the hub's
///    deliveries for this connection and hand each to
///    [`handle_delivery`](Self::handle_delivery). Not pulling is what a slow
///    client looks like: the hub's drop policy then works on its outbox.
/// 4. Drain [`poll_transmit`](Self::poll_transmit) into the socket, writing
///    each buffer whole and in order.
/// 5. When [`poll_timeout`](Self::poll_timeout) is reached, call
///    [`handle_timeout`](Self::handle_timeout)`(now)`, then 2–4 again
///    (a timeout may queue a ping, a close frame, or requests).
/// 6. Once [`is_closing`](Self::is_closing) is true, flush 4, close the
///    socket, and send the hub [`Request::Disconnect`] (always, whatever
///    the reason). [`close_reason`](Self::close_reason) says why.
///
/// Rules:
/// - `now` is the runtime's monotonic clock and never goes backwards from
///   one call to the next.
/// - `poll_timeout` moves only after a call that takes `now`: input
///   (silence timers restart), a delivery, or a timeout. Re-read it after
///   each. A `handle_timeout` before the deadline, or a second one at the
///   same deadline, changes nothing.
/// - After a failure (a protocol error, a timeout) the connection takes no
///   more input: `handle_input` returns the same failure again and changes
///   nothing; after an orderly close it takes nothing and returns `Ok`.
///   Either way `poll_transmit` still holds what must be flushed (an error
///   answer, a close frame, a status), and deliveries are ignored.
pub trait Connection {
    /// A failure of this protocol's connection (see [`CloseReason::Failed`]).
    type Error: fmt::Display + fmt::Debug + Clone + Failure;

    /// Takes bytes read from the socket; `Err` is the failure that closes
    /// the connection (also in [`close_reason`](Self::close_reason)).
    fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), Self::Error>;
    /// The next request for the hub.
    fn poll_event(&mut self) -> Option<Request>;
    /// Turns a hub delivery into bytes.
    fn handle_delivery(&mut self, now: Instant, delivery: Delivery);
    /// The next bytes for the socket.
    fn poll_transmit(&mut self) -> Option<Bytes>;
    /// Bytes waiting in `poll_transmit` (pull deliveries only while small).
    fn pending_bytes(&self) -> usize;
    /// When `handle_timeout` should run next (`None` once closing).
    fn poll_timeout(&self) -> Option<Instant>;
    /// Fires the connection's timers that are due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// True once the connection should be flushed and closed.
    fn is_closing(&self) -> bool;
    /// Why it closes, once it does (every close, orderly or not).
    fn close_reason(&self) -> Option<&CloseReason<Self::Error>>;
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

/// What a protocol's failures tell a runtime beyond their text.
pub trait Failure {
    /// True if the failure is a timeout (a handshake that did not finish,
    /// a peer that went silent) rather than a broken rule.
    fn is_timeout(&self) -> bool;
}

/// Why a connection closes: the same for every protocol, with the
/// protocol's own failure `E` inside [`Failed`](CloseReason::Failed).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CloseReason<E> {
    /// The hub closed it ([`Delivery::Close`]); the client was told why.
    Server {
        /// What the client was told.
        reason: String,
    },
    /// The hub refused the connect; the client was told.
    Rejected {
        /// The status code the client got.
        code: RejectCode,
        /// The hub's description.
        description: String,
    },
    /// The peer closed the session in the protocol's own way (a WebSocket
    /// close frame, with its code if it gave one).
    Peer {
        /// The peer's close code, if any.
        code: Option<u16>,
    },
    /// The connection failed: a broken protocol rule or a timeout.
    Failed(E),
}

/// The kind of a [`CloseReason`], for counters and metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CloseKind {
    /// [`CloseReason::Server`].
    Server,
    /// [`CloseReason::Rejected`].
    Rejected,
    /// [`CloseReason::Peer`].
    Peer,
    /// A failure that is a timeout.
    Timeout,
    /// Any other failure.
    Protocol,
}

impl CloseKind {
    /// A short lowercase label (`server`, `rejected`, `peer`, `timeout`,
    /// `protocol`).
    pub fn label(self) -> &'static str {
        match self {
            CloseKind::Server => "server",
            CloseKind::Rejected => "rejected",
            CloseKind::Peer => "peer",
            CloseKind::Timeout => "timeout",
            CloseKind::Protocol => "protocol",
        }
    }
}

impl<E: Failure> CloseReason<E> {
    /// True for [`Failed`](CloseReason::Failed): worth a warning. Orderly
    /// closes (the hub's, a refused connect, the peer's) are not.
    pub fn is_failure(&self) -> bool {
        matches!(self, CloseReason::Failed(_))
    }

    /// The failure, if it was one.
    pub fn failure(&self) -> Option<&E> {
        match self {
            CloseReason::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> CloseKind {
        match self {
            CloseReason::Server { .. } => CloseKind::Server,
            CloseReason::Rejected { .. } => CloseKind::Rejected,
            CloseReason::Peer { .. } => CloseKind::Peer,
            CloseReason::Failed(e) if e.is_timeout() => CloseKind::Timeout,
            CloseReason::Failed(_) => CloseKind::Protocol,
        }
    }
}

impl<E: fmt::Display> fmt::Display for CloseReason<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Server { reason } => write!(f, "closed by the server: {reason}"),
            CloseReason::Rejected { code, description } => {
                write!(f, "connect rejected ({}): {description}", code.code())
            }
            CloseReason::Peer { code: Some(code) } => write!(f, "peer closed with code {code}"),
            CloseReason::Peer { code: None } => f.write_str("peer closed without a code"),
            CloseReason::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for CloseReason<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CloseReason::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// When a runtime may send a connection's shared-object notices itself:
/// the connection sends a delivery's shared encoding
/// ([`SoDelivery::encoded`](crate::hub::SoDelivery::encoded)) as it is.
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
    /// An open connection that sends a notice's shared encoding as it is
    /// if it is at most `max_len` bytes (an RTMP connection's chunk size
    /// bounds what it can send as one chunk).
    Shared {
        /// Longest shared encoding sent as is.
        max_len: usize,
    },
}

impl SharedEncoding {
    /// The bytes the connection would send for `delivery`, if they are the
    /// shared encoding (`None`: the connection must handle it itself).
    pub fn bytes(self, delivery: &Delivery) -> Option<&[Bytes]> {
        let Delivery::SharedObject(so) = delivery else {
            return None;
        };
        match self {
            SharedEncoding::Shared { max_len }
                if !so.encoded.is_empty() && so.encoded.len() <= max_len =>
            {
                Some(core::slice::from_ref(&so.encoded))
            }
            _ => None,
        }
    }
}

/// Implements [`Connection`] for a connection type whose inherent
/// methods have the trait's names and signatures.
macro_rules! delegate_connection {
    ($ty:ty, $error:ty) => {
        impl $crate::connection::Connection for $ty {
            type Error = $error;
            fn handle_input(
                &mut self,
                now: $crate::time::Instant,
                data: &[u8],
            ) -> Result<(), $error> {
                <$ty>::handle_input(self, now, data)
            }
            fn poll_event(&mut self) -> Option<$crate::hub::Request> {
                <$ty>::poll_event(self)
            }
            fn handle_delivery(
                &mut self,
                now: $crate::time::Instant,
                delivery: $crate::hub::Delivery,
            ) {
                <$ty>::handle_delivery(self, now, delivery)
            }
            fn poll_transmit(&mut self) -> Option<bytes::Bytes> {
                <$ty>::poll_transmit(self)
            }
            fn pending_bytes(&self) -> usize {
                <$ty>::pending_bytes(self)
            }
            fn poll_timeout(&self) -> Option<$crate::time::Instant> {
                <$ty>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: $crate::time::Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn is_closing(&self) -> bool {
                <$ty>::is_closing(self)
            }
            fn close_reason(&self) -> Option<&$crate::connection::CloseReason<$error>> {
                <$ty>::close_reason(self)
            }
            fn shared_encoding(&self) -> $crate::connection::SharedEncoding {
                <$ty>::shared_encoding(self)
            }
            fn poll_tolerated(&mut self) -> Option<$crate::message::Tolerated> {
                <$ty>::poll_tolerated(self)
            }
        }
    };
}

pub(crate) use delegate_connection;

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
