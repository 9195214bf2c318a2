//! The socket abstraction the server code is written against, so the very
//! same accept loops run on tokio's sockets and on turmoil's simulated ones
//! (`sim/` implements [`Listener`] for `turmoil::net::TcpListener`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use tokio::io::{AsyncRead, AsyncWrite};

/// Bytes an accepted TCP socket holds that were not sent yet
/// (`TCP_NOTSENT_LOWAT`), on top of what is in flight.
///
/// Without a bound the kernel grows a socket's send buffer to
/// `net.ipv4.tcp_wmem`'s maximum (4 MiB on Linux by default, reached at once
/// on loopback), so a client that reads slower than its stream never blocks
/// the server's writes: seconds of media pile up in the kernel, where the
/// outbox's drop policy cannot see them, and the client is never cut back
/// (docs/flv.md, "Slow players"). Bounding the unsent bytes keeps the
/// backlog in the outbox. Bytes in flight (the congestion window) are not
/// limited by it, so a fast client on a long path keeps its throughput; a
/// write that would pass the bound is partial and the task waits for the
/// socket as for any blocked write.
pub const UNSENT_LIMIT: u32 = 64 * 1024;

/// A byte stream the server can serve: a TCP stream or a simulated one.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Something that accepts connections.
pub trait Listener: Send + 'static {
    /// The connections it accepts.
    type Stream: Stream;

    /// Waits for the next connection. Errors are per attempt (for example
    /// too many open files): the caller logs them and keeps accepting.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The address it listens on (useful after binding port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The descriptor of an accepted socket, if it has one: the server
    /// then writes shared-object notices to it without waking its task
    /// (see `direct_write`). Simulated sockets have none.
    fn descriptor(_stream: &Self::Stream) -> Option<RawFd> {
        None
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Small request/response exchanges and interactive SO traffic: do
        // not wait to coalesce writes.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
        }
        limit_unsent(&stream, peer);
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }

    fn descriptor(stream: &Self::Stream) -> Option<RawFd> {
        Some(stream.as_raw_fd())
    }
}

/// Bounds what `stream` holds unsent to [`UNSENT_LIMIT`] (Linux and
/// Android; elsewhere the send buffer is left to the kernel).
fn limit_unsent(stream: &tokio::net::TcpStream, peer: SocketAddr) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LIMIT) {
        tracing::debug!(%peer, "cannot set TCP_NOTSENT_LOWAT: {e}");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (stream, peer);
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_hold_a_bounded_amount_unsent() {
        let mut listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = Listener::local_addr(&listener).unwrap();
        let client = tokio::net::TcpStream::connect(addr);
        let (accepted, client) = tokio::join!(Listener::accept(&mut listener), client);
        let (stream, _) = accepted.unwrap();
        let socket = socket2::SockRef::from(&stream);
        assert_eq!(socket.tcp_notsent_lowat().unwrap(), UNSENT_LIMIT);
        // A client that reads nothing: the server's writes stop at about
        // the bound (plus what the client's receive buffer took), not at
        // the megabytes of an autotuned send buffer.
        let client = client.unwrap();
        let mut written = 0usize;
        let chunk = [0u8; 16 * 1024];
        loop {
            match stream.try_write(&chunk) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write failed: {e}"),
            }
            assert!(written < 16 * 1024 * 1024, "the writes never blocked");
        }
        let received = socket2::SockRef::from(&client).recv_buffer_size().unwrap();
        assert!(
            written <= UNSENT_LIMIT as usize + received + 65_536,
            "{written} bytes taken with a {received}-byte receive buffer"
        );
    }
}
