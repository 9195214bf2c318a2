//! One connection's task: the loop that drives a [`Connection`] over a
//! socket (the call order is on `Connection`), with merged writes.

use super::state::Shared;
use super::write::write_all_bounded;
use crate::access::conn::ConnAccess;
use crate::direct_write::{Attached, Peer};
use crate::ended::Ended;
use std::io;
use std::sync::atomic::Ordering;
use std::task::Poll;
use tern_core::Instant;
use tern_core::connection::{CloseReason, Connection};
use tern_core::hub::{ConnId, Delivery};
use tokio::io::AsyncWriteExt;
use tracing::debug;

/// Output a connection buffers before it stops taking deliveries.
const HIGH_WATER: usize = 256 * 1024;
/// Bytes read from a socket at once, at most, into a buffer on the stack
/// ([`poll_read_and_feed`]): publishers get large reads, and no connection
/// keeps a read buffer of its own.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers a connection's write batch keeps room for between writes.
const KEEP_BATCH: usize = 16;
/// Held media that is written at once, whatever the merge window, when the
/// task looks (it wakes for the first delivery after a write: a join burst).
const MERGE_FLUSH_BYTES: usize = 64 * 1024;

/// Serves one connection (RTMP or WebSocket) through its gate (`access`),
/// driving it as [`Connection`] documents; returns why it ended. The
/// caller then calls [`ConnAccess::finish`].
///
/// The task owns the socket whole: it reads, or it writes, never both at
/// once, so no split (and no lock between halves) is needed. While it waits
/// with nothing queued, its peer is parked: whoever runs the hub may write
/// shared-object notices to the socket meanwhile (`direct_write`). The loop
/// runs once per read, wake-up or timer.
pub(super) async fn run_connection<S: crate::net::Stream, C: Connection>(
    shared: &Shared,
    mut io: Attached<'_, S>,
    id: ConnId,
    peer: &Peer,
    mut conn: Box<C>,
    access: &mut ConnAccess,
    initial: Vec<u8>,
) -> Ended<C::Error> {
    let stream = &mut io.stream;
    let wakeup = &peer.wakeup;
    let mut batch: Vec<bytes::Bytes> = Vec::new();
    // What the HTTP side read past the upgrade request is fed first; the
    // read branch below feeds each read itself. Either may end the
    // connection with a protocol error (then in its close reason).
    let mut failed = match initial.as_slice() {
        [] => false,
        data => feed(shared, &mut *conn, access, shared.now(), data),
    };
    // Not kept for the connection's life.
    drop(initial);
    // When everything queued was last written (the start of a merge window).
    let mut last_write = tokio::time::Instant::now();
    // One timer for the connection's own deadline and the end of a merge
    // window, re-armed only when its instant changes.
    let timer = tokio::time::sleep_until(far_future());
    tokio::pin!(timer);
    let mut armed: Option<tokio::time::Instant> = None;
    loop {
        // Busy from here on: nobody else writes, and what was taken from
        // the hub for us but not written goes out first.
        peer.resume(&mut batch);
        let now = shared.now();
        // Callback replies (a pending publish decided, on_update refused).
        access.take_replies(shared, &mut *conn, now);
        if std::mem::take(&mut failed) {
            // Flush what is queued (an error reply, a close frame), then
            // close; bounded like every other write.
            batch.extend(std::iter::from_fn(|| conn.poll_transmit()));
            let _ = write_all_bounded(shared, id, wakeup, stream, &batch).await;
            let _ = stream.shutdown().await;
            return closed(&*conn);
        }
        // Take deliveries while our own buffer is small — unless only media
        // waits and it may still be merged with what comes next.
        // The window follows the server's media load (`merge_policy`): zero
        // while the server is idle enough, up to `merge_write_ms` when busy.
        let mut pulled = false;
        let mut held_until = None;
        if conn.pending_bytes() < HIGH_WATER {
            let window = shared.merge_window();
            let may_hold = !window.is_zero() && conn.pending_bytes() == 0;
            let mut media = 0;
            shared.with_hub(|hub| {
                if may_hold
                    && hub
                        .outbox(id)
                        .is_some_and(|o| o.may_wait(MERGE_FLUSH_BYTES))
                {
                    let merge_until = shared.merge_deadline(last_write, window);
                    if tokio::time::Instant::now() < merge_until {
                        held_until = Some(merge_until);
                        return;
                    }
                }
                while conn.pending_bytes() < HIGH_WATER {
                    match hub.poll_delivery(id) {
                        Some(delivery) => {
                            media += u64::from(matches!(delivery, Delivery::Media(_)));
                            conn.handle_delivery(now, delivery);
                            pulled = true;
                        }
                        None => break,
                    }
                }
            });
            shared.count_media(media);
        }
        // Everything queued goes out in as few (vectored) writes as possible:
        // one system call per wake-up instead of one per message.
        batch.extend(std::iter::from_fn(|| conn.poll_transmit()));
        if !batch.is_empty() {
            let bytes: usize = batch.iter().map(bytes::Bytes::len).sum();
            if let Err(end) = write_all_bounded(shared, id, wakeup, stream, &batch).await {
                return Ended::Write(end);
            }
            batch.clear();
            if batch.capacity() > KEEP_BATCH {
                // A join burst (the cached GOP) made it large; a merged
                // write needs a handful. Rare, so this is no churn.
                batch.shrink_to(KEEP_BATCH);
            }
            last_write = tokio::time::Instant::now();
            shared.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        }
        if conn.is_closing() {
            let _ = stream.shutdown().await;
            return closed(&*conn);
        }
        if pulled {
            continue;
        }
        let deadline = match (conn.poll_timeout(), access.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        // A deadline too far to represent ("never") is no deadline.
        .and_then(|t| {
            shared
                .start
                .checked_add(std::time::Duration::from_millis(t.as_millis()))
        });
        let wake_at = match (deadline, held_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if wake_at != armed {
            timer.as_mut().reset(wake_at.unwrap_or_else(far_future));
            armed = wake_at;
        }
        // Everything queued is written: others may write notices now.
        peer.park(conn.shared_encoding());
        tokio::select! {
            // Fixed branch order keeps runs reproducible in the simulator.
            biased;
            read = std::future::poll_fn(|cx| {
                poll_read_and_feed(cx, shared, peer, &mut batch, stream, &mut *conn, access)
            }) => {
                let n = match read {
                    Ok((0, _)) => return Ended::ByClient,
                    Ok((n, fed_failed)) => {
                        failed = fed_failed;
                        n
                    }
                    Err(e) => return Ended::ReadFailed(e),
                };
                shared.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            }
            () = wakeup.wait() => {}
            () = &mut timer, if armed.is_some() => {
                // Fired: re-arm on the next round.
                armed = None;
                timer.as_mut().reset(far_future());
                if deadline.is_some_and(|d| d <= tokio::time::Instant::now()) {
                    let now = shared.now();
                    if conn.poll_timeout().is_some_and(|t| t <= now) {
                        conn.handle_timeout(now);
                        // What the timeout asked of the hub goes now.
                        access.pump(shared, &mut *conn, now);
                    }
                    if access.poll_timeout().is_some_and(|t| t <= now) {
                        // The gate may hand the connection a close and
                        // take deliveries from the hub: busy first, as
                        // for input, so nobody else writes meanwhile.
                        peer.resume(&mut batch);
                        access.handle_timeout(shared, &mut *conn, now);
                    }
                }
            }
        }
    }
}

/// Feeds `data` to the connection and hands what it asks of the hub
/// through its gate straight to the hub (no per-connection request
/// buffer; see [`ConnAccess::pump`]). Returns true if the input failed the
/// connection (the failure is its close reason).
pub(super) fn feed<C: Connection>(
    shared: &Shared,
    conn: &mut C,
    access: &mut ConnAccess,
    now: Instant,
    data: &[u8],
) -> bool {
    let failed = conn.handle_input(now, data).is_err();
    // Well-framed requests of an unexpected shape that were read leniently.
    while let Some(note) = conn.poll_tolerated() {
        debug!("{note}");
    }
    access.pump(shared, conn, now);
    failed
}

/// How a closing connection ended.
pub(super) fn closed<C: Connection>(conn: &C) -> Ended<C::Error> {
    // A connection that closes always has a reason; a hub close is the
    // only one that could arrive without one.
    Ended::Closed(conn.close_reason().cloned().unwrap_or(CloseReason::Server {
        reason: "closed by the server".to_owned(),
    }))
}

/// Reads what the socket has (up to [`READ_CHUNK`] bytes) into a buffer
/// on the stack and feeds it to the connection at once. The connection
/// keeps what it needs of it (a partial chunk, a payload) in its own
/// buffers, so no connection keeps a read buffer between reads: idle
/// clients and players, which read a few bytes a minute, hold none.
/// Input makes the peer busy first (its queued notices go to `batch`), as
/// waking does. Returns the bytes read (0: end of stream) and how feeding
/// them went.
pub(super) fn poll_read_and_feed<S: crate::net::Stream, C: Connection>(
    cx: &mut std::task::Context<'_>,
    shared: &Shared,
    peer: &Peer,
    batch: &mut Vec<bytes::Bytes>,
    stream: &mut S,
    conn: &mut C,
    access: &mut ConnAccess,
) -> Poll<io::Result<(usize, bool)>> {
    let mut storage = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut buf = tokio::io::ReadBuf::uninit(&mut storage);
    match std::pin::Pin::new(stream).poll_read(cx, &mut buf) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        Poll::Pending => return Poll::Pending,
    }
    let data = buf.filled();
    if data.is_empty() {
        return Poll::Ready(Ok((0, false)));
    }
    peer.resume(batch);
    Poll::Ready(Ok((
        data.len(),
        feed(shared, conn, access, shared.now(), data),
    )))
}

/// An instant no timer reaches (about 30 years on).
pub(super) fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365 * 30)
}

#[cfg(test)]
mod tests {
    use super::run_connection;
    use crate::access::conn::ConnAccess;
    use crate::config::Config;
    use crate::direct_write::Attached;
    use crate::server::Shared;
    use std::sync::Arc;
    use tern_core::rtmp::ServerConnection;

    /// Every connection's task holds this future for its whole life, so
    /// its size is memory per connection (what it was before and what that
    /// cost: docs/memory.md).
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let shared = Shared::new(&Config::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (id, peer) = shared.register();
        let random = shared.handshake_random(id);
        let conn = Box::new(ServerConnection::new(
            shared.rtmp.clone(),
            shared.now(),
            &random,
            None,
        ));
        let io = Attached::new(&peer, stream, None);
        let mut access = Box::new(ConnAccess::new(&shared, id, None, Arc::clone(&peer)));
        let task = run_connection(&shared, io, id, &peer, conn, &mut access, Vec::new());
        let size = std::mem::size_of_val(&task);
        assert!(size <= 704, "run_connection's future is {size} bytes");
        drop(task);
        shared.unregister(id);
    }
}
