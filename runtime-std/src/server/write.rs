//! Writing a connection's batch of buffers: vectored, bounded in time.

use super::state::Shared;
use crate::ended::WriteEnd;
use crate::wakeup::Wakeup;
use std::io;
use std::task::Poll;
use tern_core::hub::ConnId;
use tokio::io::AsyncWrite;

/// After the hub gave up on a connection whose writes are blocked, how long
/// it still gets to take the goodbye before the socket is dropped.
const GIVE_UP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Writes `batch` whole. A write that completes at once (the usual case)
/// costs no timer; a blocked one must not pin the task: it ends when the
/// client stalls too long, or soon after the hub gives up on it. Returns
/// why the connection must end, if it must.
///
/// Only the first attempt lives in the caller's future: the blocked case
/// (its timers, about 500 bytes of state) is boxed when it happens, so it
/// does not sit in every connection's task while the connection waits.
pub(super) async fn write_all_bounded<S: crate::net::Stream>(
    shared: &Shared,
    id: ConnId,
    wakeup: &Wakeup,
    stream: &mut S,
    batch: &[bytes::Bytes],
) -> Result<(), WriteEnd> {
    let mut progress = BatchProgress::default();
    let first =
        std::future::poll_fn(|cx| Poll::Ready(progress.poll_write(cx, &mut *stream, batch))).await;
    let written = match first {
        Poll::Ready(result) => result,
        Poll::Pending => {
            return Box::pin(write_blocked(shared, id, wakeup, stream, batch, progress)).await;
        }
    };
    written.map_err(WriteEnd::Failed)
}

/// The rest of a write that blocked: bounded by `write_stall` and by the
/// hub giving up on the connection.
pub(super) async fn write_blocked<S: crate::net::Stream>(
    shared: &Shared,
    id: ConnId,
    wakeup: &Wakeup,
    stream: &mut S,
    batch: &[bytes::Bytes],
    mut progress: BatchProgress,
) -> Result<(), WriteEnd> {
    let write = std::future::poll_fn(|cx| progress.poll_write(cx, &mut *stream, batch));
    tokio::select! {
        biased;
        written = tokio::time::timeout(shared.write_stall, write) => match written {
            Ok(result) => result.map_err(WriteEnd::Failed),
            Err(_) => Err(WriteEnd::Stalled {
                secs: shared.write_stall.as_secs(),
            }),
        },
        () = given_up(shared, id, wakeup) => Err(WriteEnd::GivenUp)
    }
}

/// Writes every buffer of `batch`, in order, with vectored writes of up to
/// [`MAX_IOVECS`] buffers each.
#[cfg(test)]
pub(super) async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &[bytes::Bytes],
) -> io::Result<()> {
    let mut progress = BatchProgress::default();
    std::future::poll_fn(|cx| progress.poll_write(cx, &mut *writer, batch)).await
}

/// How far a batch has been written: the next buffer and the offset in it.
/// Kept outside the write's future so a blocked write can go on elsewhere.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct BatchProgress {
    first: usize,
    offset: usize,
}

impl BatchProgress {
    /// Writes what is left of `batch` until it is all written or the writer
    /// blocks.
    pub(super) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        writer: &mut W,
        batch: &[bytes::Bytes],
    ) -> Poll<io::Result<()>> {
        while self.first < batch.len() {
            let poll = if batch.len() - self.first == 1 {
                // One buffer (a notice, a reply): a plain write is a
                // cheaper system call than a one-element writev.
                let rest = batch
                    .get(self.first)
                    .and_then(|b| b.get(self.offset..))
                    .unwrap_or_default();
                std::pin::Pin::new(&mut *writer).poll_write(cx, rest)
            } else {
                // The slices are built on the stack for each attempt: an
                // array held across an await would sit in every task.
                let mut slices = [io::IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                let buffers = batch.iter().skip(self.first).take(MAX_IOVECS);
                for (i, buffer) in buffers.enumerate() {
                    let start = if i == 0 { self.offset } else { 0 };
                    if let (Some(slot), Some(rest)) = (slices.get_mut(i), buffer.get(start..)) {
                        *slot = io::IoSlice::new(rest);
                        count = i + 1;
                    }
                }
                std::pin::Pin::new(&mut *writer)
                    .poll_write_vectored(cx, slices.get(..count).unwrap_or_default())
            };
            let written = match poll {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.advance(batch, written);
        }
        Poll::Ready(Ok(()))
    }

    /// Moves past `written` bytes of `batch`.
    pub(super) fn advance(&mut self, batch: &[bytes::Bytes], mut written: usize) {
        while written > 0 {
            let Some(buffer) = batch.get(self.first) else {
                break;
            };
            let left = buffer.len() - self.offset;
            if written >= left {
                written -= left;
                self.first += 1;
                self.offset = 0;
            } else {
                self.offset += written;
                written = 0;
            }
        }
    }
}

/// Buffers handed to one vectored write.
pub(crate) const MAX_IOVECS: usize = 64;

/// Resolves [`GIVE_UP_GRACE`] after the hub closed `id`'s outbox (woken by
/// the [`Wakeup`] the hub's `Closing` event pokes). Consuming a plain
/// wake-up here is harmless: the task pulls deliveries at the top of its
/// loop anyway.
pub(super) async fn given_up(shared: &Shared, id: ConnId, wakeup: &Wakeup) {
    loop {
        wakeup.wait().await;
        let closed = shared.with_hub(|hub| hub.outbox(id).is_some_and(|o| o.closed().is_some()));
        if closed {
            tokio::time::sleep(GIVE_UP_GRACE).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::write_batch;

    #[tokio::test]
    async fn a_batch_goes_out_whole_and_in_order_through_partial_writes() {
        use tokio::io::AsyncReadExt;
        let batch: Vec<bytes::Bytes> = (0..100u8)
            .map(|i| bytes::Bytes::from(vec![i; 1 + usize::from(i) * 37]))
            .collect();
        let want: Vec<u8> = batch.iter().flat_map(|b| b.iter().copied()).collect();
        // A tiny pipe forces many partial vectored writes.
        let (mut writer, mut reader) = tokio::io::duplex(61);
        let read = tokio::spawn(async move {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).await.map(|_| got)
        });
        write_batch(&mut writer, &batch).await.unwrap();
        drop(writer);
        assert_eq!(read.await.unwrap().unwrap(), want);
    }
}
