//! runtime-std's [`Listener`] on turmoil's simulated TCP, and the names and
//! ports of the simulated hosts.
//!
//! The trait and turmoil's listener are both foreign, so the impl goes on a
//! newtype. Accepted streams are turmoil's `TcpStream` as they are: they are
//! `AsyncRead + AsyncWrite + Unpin + Send`, which is all the server asks.

use std::io;
use std::net::SocketAddr;
use tern_runtime_std::net::Listener;

/// Host name of the server in every simulation.
pub const SERVER: &str = "server";
/// Host name of the observer that queries `/api/stats`.
pub const OBSERVER: &str = "observer";
/// RTMP port on the server host.
pub const RTMP_PORT: u16 = 1935;
/// HTTP port on the server host.
pub const HTTP_PORT: u16 = 8081;

/// A turmoil TCP listener the server's accept loops can use.
pub struct SimListener(pub turmoil::net::TcpListener);

impl std::fmt::Debug for SimListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SimListener")
            .field(&self.0.local_addr().ok())
            .finish()
    }
}

impl SimListener {
    /// Binds `0.0.0.0:port` on the current simulated host.
    pub async fn bind(port: u16) -> io::Result<SimListener> {
        let addr = SocketAddr::from(([0, 0, 0, 0], port));
        turmoil::net::TcpListener::bind(addr).await.map(SimListener)
    }
}

impl Listener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
