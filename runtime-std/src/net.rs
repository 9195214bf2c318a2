//! The socket abstraction the server code is written against, so the very
//! same accept loops run on tokio's sockets and on turmoil's simulated ones
//! (`sim/` implements [`Listener`] for `turmoil::net::TcpListener`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use tokio::io::{AsyncRead, AsyncWrite};

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
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }

    fn descriptor(stream: &Self::Stream) -> Option<RawFd> {
        Some(stream.as_raw_fd())
    }
}
