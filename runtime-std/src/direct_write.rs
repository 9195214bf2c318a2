//! Shared-object notices written straight to idle connections' sockets.
//!
//! A change to an object with 1000 subscribers means 1000 socket writes.
//! Waking 1000 connection tasks to make them costs each of them a task
//! switch, a hub lock, a look at its outbox and its timers — touching state
//! that has long left the cache — before its write; on one core that made
//! the last subscriber wait about 20 % longer than a server that writes all
//! 1000 sockets in one loop (docs/benchmarks.md, "Shared-object latency").
//!
//! So when the hub has something for a connection whose task waits idle
//! with nothing queued, and that something is a shared-object notice the
//! connection would send as the update's shared encoding anyway
//! ([`SharedEncoding`]), whoever ran the hub takes it from the outbox into
//! the connection's queue, and one task (`server::run_direct_writes`)
//! writes all such queues, one write per socket for everything queued.
//! Anything else (media, statuses, closes, a socket that does not take the
//! bytes at once) wakes the task as before, which then writes what was
//! left first.
//!
//! # Who writes when
//!
//! A [`Peer`] is either *parked* (its task waits with nothing queued and
//! has said how it encodes notices) or *busy*. Only while parked may others
//! take deliveries for it, and only under its lock, in outbox order, into
//! its queue; whoever then holds the lock writes the queue in order. The
//! task makes itself busy (taking whatever is still queued, to write before
//! anything of its own) first thing after waking, so the two never write
//! at once and bytes never reorder.
//!
//! # The socket
//!
//! The task owns the socket; others use its descriptor, and only while the
//! peer has it: [`Attached`] takes it back, under the same lock, before the
//! socket closes (also when the task is dropped mid-write at shutdown), so a
//! descriptor number reused by a later connection is never written to.
//! Simulated sockets (turmoil) have no descriptor: their tasks are always
//! woken, as before.

#![allow(unsafe_code)]

use crate::server::MAX_IOVECS;
use crate::wakeup::Wakeup;
use bytes::{Buf, Bytes};
use std::io::{self, IoSlice};
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use tern_core::connection::SharedEncoding;
use tern_core::hub::{ConnId, Hub};

/// One connection as the rest of the server sees it: how to wake its task,
/// and how to write to its socket while the task waits.
#[derive(Debug, Default)]
pub struct Peer {
    /// Pokes the task (the hub has something it must handle itself).
    pub wakeup: Wakeup,
    sink: Mutex<Sink>,
}

#[derive(Debug, Default)]
struct Sink {
    /// The socket's descriptor, while the task owns the socket and it may
    /// be written to by others (see the module docs).
    fd: Option<RawFd>,
    /// `None` while the task is busy; otherwise how its connection encodes
    /// notices, as it said when it parked.
    encoding: SharedEncoding,
    /// Bytes taken from the hub for this connection and not yet written.
    queue: Vec<Bytes>,
}

/// What [`Peer::offer`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The queue was empty and now holds bytes: [`Peer::flush`] must be
    /// called once the hub is let go (a queue that already held bytes is
    /// already due for one).
    pub schedule: bool,
    /// Deliveries taken from the outbox.
    pub taken: usize,
    /// The task must run (deliveries wait that it handles itself).
    pub wake: bool,
}

/// What [`Peer::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Bytes written to the socket.
    pub written: usize,
    /// The socket did not take everything: the task must write the rest.
    pub wake: bool,
}

impl Peer {
    fn lock(&self) -> MutexGuard<'_, Sink> {
        // Nothing panics while the lock is held; the state stays valid.
        self.sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Called with the hub locked when it has deliveries for `conn` (this
    /// peer): takes the leading ones the connection would send as shared
    /// encodings, if the task is parked.
    pub fn offer(&self, hub: &mut Hub, conn: ConnId) -> Offer {
        let mut sink = self.lock();
        let encoding = sink.encoding;
        if sink.fd.is_none() || encoding == SharedEncoding::None {
            return Offer {
                schedule: false,
                taken: 0,
                wake: true,
            };
        }
        let was_empty = sink.queue.is_empty();
        let queue = &mut sink.queue;
        let (taken, left) = hub.poll_deliveries_while(conn, |delivery| {
            let bytes = encoding.bytes(delivery);
            queue.extend(bytes.into_iter().flatten().cloned());
            bytes.is_some()
        });
        Offer {
            schedule: taken > 0 && was_empty,
            taken,
            wake: left,
        }
    }

    /// Called without the hub locked after [`offer`](Self::offer) asked
    /// for it: writes what the socket takes at once.
    pub fn flush(&self) -> Flushed {
        let mut sink = self.lock();
        if sink.queue.is_empty() {
            return Flushed::default();
        }
        let Some(fd) = sink.fd else {
            // The connection is gone; so is what it was owed.
            sink.queue = Vec::new();
            return Flushed::default();
        };
        if sink.encoding == SharedEncoding::None {
            // The task woke meanwhile (it takes the queue when it does).
            return Flushed {
                written: 0,
                wake: true,
            };
        }
        let mut written = 0;
        let wake = loop {
            match write_queue(fd, &sink.queue) {
                Ok(0) => break true,
                Ok(n) => {
                    written += n;
                    consume(&mut sink.queue, n);
                    if sink.queue.is_empty() {
                        break false;
                    }
                }
                // Full socket, or a failing one: the task writes the rest
                // with its bounds, or meets the error and closes.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        Flushed { written, wake }
    }

    /// The task: gives the peer its socket descriptor (`None`: the socket
    /// has none, so nobody but the task writes to it).
    pub fn attach(&self, fd: Option<RawFd>) {
        self.lock().fd = fd;
    }

    /// The task, first thing after waking: makes the peer busy and takes
    /// the bytes still queued for it, to write before anything else.
    pub fn resume(&self, batch: &mut Vec<Bytes>) {
        let mut sink = self.lock();
        sink.encoding = SharedEncoding::None;
        if !sink.queue.is_empty() {
            batch.append(&mut sink.queue);
        }
    }

    /// The task, about to wait with nothing queued: parks the peer; others
    /// may now write notices that the connection sends as `encoding`.
    pub fn park(&self, encoding: SharedEncoding) {
        self.lock().encoding = encoding;
    }

    /// Takes the descriptor back: nobody but the task writes from now on.
    fn detach(&self) {
        let mut sink = self.lock();
        sink.fd = None;
        sink.encoding = SharedEncoding::None;
        sink.queue = Vec::new();
    }
}

/// Writes the start of `queue` to `fd` without blocking.
fn write_queue(fd: RawFd, queue: &[Bytes]) -> io::Result<usize> {
    // SAFETY: `fd` comes from the peer's sink and is used under its lock;
    // the task takes it out of the sink (`Peer::detach`, called by
    // `Attached::drop`) before the socket that owns it is closed, so it is
    // an open descriptor of that socket for the whole call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let socket = socket2::SockRef::from(&borrowed);
    if let [single] = queue {
        return socket.send(single);
    }
    let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
    let mut count = 0;
    for (slot, bytes) in slices.iter_mut().zip(queue) {
        *slot = IoSlice::new(bytes);
        count += 1;
    }
    socket.send_vectored(slices.get(..count).unwrap_or_default())
}

/// Drops the first `n` bytes of `queue`.
fn consume(queue: &mut Vec<Bytes>, mut n: usize) {
    let mut done = 0;
    for bytes in queue.iter_mut() {
        if n >= bytes.len() {
            n -= bytes.len();
            done += 1;
        } else {
            bytes.advance(n);
            break;
        }
    }
    queue.drain(..done);
}

/// A connection's socket, owned by its task, attached to its [`Peer`]:
/// dropping it detaches the descriptor first, then closes the socket.
pub struct Attached<'a, S> {
    peer: &'a Peer,
    /// The socket.
    pub stream: S,
}

impl<'a, S> Attached<'a, S> {
    /// Attaches `stream` (whose descriptor is `fd`, if it has one) to `peer`.
    pub fn new(peer: &'a Peer, stream: S, fd: Option<RawFd>) -> Self {
        peer.attach(fd);
        Attached { peer, stream }
    }
}

impl<S> Drop for Attached<'_, S> {
    fn drop(&mut self) {
        // Runs before the fields drop, so before the socket closes.
        self.peer.detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use tern_core::amf0::Value;
    use tern_core::hub::{ConnectRequest, Delivery, HubConfig, Request, SoChange, SoOp};
    use tern_core::{Duration, Instant};

    const WRITER: ConnId = ConnId(1);
    const SUBSCRIBER: ConnId = ConnId(2);
    /// An open RTMP connection with chunk size 4096.
    fn rtmp() -> SharedEncoding {
        SharedEncoding::Shared {
            max_len: tern_core::rtmp::fanout::shared_notice_max_len(4096),
        }
    }

    /// A hub where SUBSCRIBER uses object "o" and WRITER just set a key:
    /// SUBSCRIBER's outbox holds that change.
    fn hub_with_a_change() -> (Hub, Bytes) {
        let mut hub = Hub::new(HubConfig::default());
        let now = Instant::from_millis(0);
        for conn in [WRITER, SUBSCRIBER] {
            let connect = ConnectRequest {
                protocol: tern_core::rtmp::PROTOCOL,
                target: "chat".into(),
                params: Value::Null,
                args: Vec::new(),
                address: None,
                notices: Some(tern_core::rtmp::notices_encoder()),
            };
            hub.handle(now, conn, Request::Connect(connect));
        }
        let so = |op| Request::SharedObject {
            name: "o".into(),
            persistent: false,
            op,
        };
        for conn in [WRITER, SUBSCRIBER] {
            hub.handle(now, conn, so(SoOp::Use));
        }
        let later = now + Duration::from_millis(5);
        let set = SoChange::Set {
            key: "k".into(),
            value: Value::string("v"),
        };
        for conn in [WRITER, SUBSCRIBER] {
            while hub.poll_delivery(conn).is_some() {}
        }
        hub.handle(later, WRITER, so(SoOp::Batch(vec![set])));
        while hub.poll_event().is_some() {}
        let Some(Delivery::SharedObject(so)) = hub.outbox(SUBSCRIBER).and_then(|o| o.front())
        else {
            panic!("no change queued for the subscriber");
        };
        let chunks = so.encoded.clone();
        assert!(!chunks.is_empty());
        (hub, chunks)
    }

    fn socket_pair() -> (UnixStream, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        (ours, theirs)
    }

    /// `socket` attached to `peer`, which is parked with `encoding`.
    fn parked<'a>(
        peer: &'a Peer,
        socket: &'a UnixStream,
        encoding: SharedEncoding,
    ) -> Attached<'a, &'a UnixStream> {
        let attached = Attached::new(peer, socket, Some(socket.as_raw_fd()));
        peer.park(encoding);
        attached
    }

    fn read_all(socket: &mut UnixStream) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_parked_connection_gets_the_shared_encoding_without_its_task() {
        let (mut hub, chunks) = hub_with_a_change();
        let (ours, mut theirs) = socket_pair();
        let peer = Peer::default();
        let _attached = parked(&peer, &ours, rtmp());
        let offer = peer.offer(&mut hub, SUBSCRIBER);
        assert_eq!(
            offer,
            Offer {
                schedule: true,
                taken: 1,
                wake: false
            }
        );
        assert!(hub.outbox(SUBSCRIBER).is_some_and(|o| o.is_empty()));
        let flushed = peer.flush();
        assert_eq!(
            flushed,
            Flushed {
                written: chunks.len(),
                wake: false
            }
        );
        assert_eq!(read_all(&mut theirs), chunks.to_vec());
    }

    #[test]
    fn a_busy_connection_is_woken_and_its_outbox_left_alone() {
        let (mut hub, _) = hub_with_a_change();
        let (ours, _theirs) = socket_pair();
        let peer = Peer::default();
        let _attached = parked(&peer, &ours, rtmp());
        peer.resume(&mut Vec::new());
        let offer = peer.offer(&mut hub, SUBSCRIBER);
        assert_eq!(
            offer,
            Offer {
                schedule: false,
                taken: 0,
                wake: true
            }
        );
        assert_eq!(hub.outbox(SUBSCRIBER).map(|o| o.len()), Some(1));
    }

    #[test]
    fn a_notice_the_connection_encodes_itself_wakes_it() {
        let (mut hub, _) = hub_with_a_change();
        let (ours, _theirs) = socket_pair();
        let peer = Peer::default();
        // The payload does not fit one chunk of this size: the connection
        // chunks it itself.
        let chunk_of_8 = tern_core::rtmp::fanout::shared_notice_max_len(8);
        let _attached = parked(
            &peer,
            &ours,
            SharedEncoding::Shared {
                max_len: chunk_of_8,
            },
        );
        let offer = peer.offer(&mut hub, SUBSCRIBER);
        assert!(offer.wake && !offer.schedule);
        assert_eq!(hub.outbox(SUBSCRIBER).map(|o| o.len()), Some(1));
    }

    #[test]
    fn a_task_that_wakes_first_writes_what_was_taken_for_it() {
        let (mut hub, chunks) = hub_with_a_change();
        let (ours, mut theirs) = socket_pair();
        let peer = Peer::default();
        let _attached = parked(&peer, &ours, rtmp());
        assert!(peer.offer(&mut hub, SUBSCRIBER).schedule);
        // The task woke (a read) between the offer and the flush.
        let mut batch = Vec::new();
        peer.resume(&mut batch);
        assert_eq!(batch, vec![chunks]);
        assert_eq!(peer.flush(), Flushed::default());
        assert!(read_all(&mut theirs).is_empty(), "written twice");
    }

    #[test]
    fn a_full_socket_leaves_the_rest_to_the_task_in_order() {
        let (mut hub, chunks) = hub_with_a_change();
        let (ours, mut theirs) = socket_pair();
        // Fill the socket.
        let filler = vec![7u8; 64 * 1024];
        let mut filled = 0;
        loop {
            match (&ours).write(&filler) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let peer = Peer::default();
        let _attached = parked(&peer, &ours, rtmp());
        assert!(peer.offer(&mut hub, SUBSCRIBER).schedule);
        let flushed = peer.flush();
        assert!(flushed.wake, "the task must write the rest");
        assert!(flushed.written < chunks.len());
        let mut batch = Vec::new();
        peer.resume(&mut batch);
        let rest: Vec<u8> = batch.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(rest, chunks[flushed.written..].to_vec());
        assert_eq!(read_all(&mut theirs).len(), filled + flushed.written);
    }

    #[test]
    fn a_closed_connection_is_never_written_to() {
        let (mut hub, _) = hub_with_a_change();
        let (ours, _theirs) = socket_pair();
        let peer = Peer::default();
        {
            let _attached = parked(&peer, &ours, rtmp());
            assert!(peer.offer(&mut hub, SUBSCRIBER).schedule);
        }
        // Dropped between the offer and the flush: the queue goes too.
        assert_eq!(peer.flush(), Flushed::default());
        assert!(peer.offer(&mut hub, SUBSCRIBER).wake);
    }

    #[test]
    fn consuming_advances_through_whole_and_partial_buffers() {
        let mut queue = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fgh"),
        ];
        consume(&mut queue, 4);
        assert_eq!(
            queue,
            vec![Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]
        );
        consume(&mut queue, 4);
        assert!(queue.is_empty());
    }
}
