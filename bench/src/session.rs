//! One RTMP client connection of the load tool: the core's
//! [`ClientConnection`] over a tokio socket, read into a buffer shared by
//! every connection of the thread (so thousands of idle or slow players
//! hold no read buffer of their own). Optionally over TLS (RTMPS): rustls'
//! connection is driven by hand on the same reads ([`Tls`]).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant as StdInstant;
use tern_core::Instant;
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{ClientConfig, ClientConnection, RtmpError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Bytes read from a socket at once.
pub const READ_BUF: usize = 256 * 1024;

thread_local! {
    /// The read buffer every connection of this thread shares: a read
    /// never holds it across an `.await`.
    static READ: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
    /// Plaintext out of TLS records, shared the same way.
    static PLAIN: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// How players reach an RTMPS port: its address and a client
/// configuration that trusts the server's certificate.
#[derive(Clone, Debug)]
pub struct Tls {
    /// `host:port` of the RTMPS port.
    pub address: String,
    /// Trusts the certificate given with `--tls-ca`.
    pub config: Arc<rustls::ClientConfig>,
}

impl Tls {
    /// A configuration trusting the PEM certificates in `ca_file`.
    pub fn new(address: String, ca_file: &std::path::Path) -> Result<Tls, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{}: {e}", ca_file.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca_file.display()))?;
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            address,
            config: Arc::new(config),
        })
    }
}

/// The load tool's clock: microseconds since it started. Every task and
/// thread of one run uses the same origin, so a stamp written by the
/// publisher can be compared with a player's reading.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: StdInstant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock {
            origin: StdInstant::now(),
        }
    }

    /// Microseconds since the origin.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Seconds since the origin.
    pub fn now_secs(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// The core's notion of now.
    pub fn core_now(&self) -> Instant {
        Instant::from_millis(self.now_us() / 1000)
    }

    /// The tokio instant `us` µs after the origin.
    pub fn at(&self, us: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.origin + std::time::Duration::from_micros(us))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// RTMP URLs are parsed as `tern so` parses them.
pub use tern_runtime_std::tools::RtmpUrl;

/// Why a session ended.
#[derive(Debug)]
pub enum SessionError {
    /// Socket trouble.
    Io(io::Error),
    /// The RTMP session failed.
    Rtmp(RtmpError),
    /// The server closed the connection.
    Closed,
    /// The server refused something.
    Refused(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Io(e) => write!(f, "{e}"),
            SessionError::Rtmp(e) => write!(f, "{e}"),
            SessionError::Closed => f.write_str("closed by the server"),
            SessionError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        SessionError::Io(e)
    }
}

impl From<RtmpError> for SessionError {
    fn from(e: RtmpError) -> Self {
        SessionError::Rtmp(e)
    }
}

/// An RTMP client connection on a socket.
#[derive(Debug)]
pub struct Session {
    /// The protocol state.
    pub conn: ClientConnection,
    socket: TcpStream,
    /// RTMPS: the TLS state between the socket and `conn`.
    tls: Option<Box<rustls::ClientConnection>>,
    clock: Clock,
    /// See [`Session::set_sparse_input`].
    sparse_input: bool,
}

/// Handshake bytes for connection `n`: varied, not secret.
fn random(n: u64) -> [u8; RANDOM_LEN] {
    let mut block = [0u8; RANDOM_LEN];
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in &mut block {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    block
}

impl Session {
    /// Connects to `url` and starts the handshake (`connect` follows by
    /// itself once it completes).
    pub async fn open(url: &RtmpUrl, clock: Clock, n: u64) -> Result<Session, SessionError> {
        Session::open_with(
            url,
            clock,
            n,
            ClientConfig::new(url.app.clone(), url.tc_url.clone()),
        )
        .await
    }

    /// [`open`](Self::open) with a client configuration of the caller's.
    pub async fn open_with(
        url: &RtmpUrl,
        clock: Clock,
        n: u64,
        config: ClientConfig,
    ) -> Result<Session, SessionError> {
        let socket = TcpStream::connect(&url.address).await?;
        socket.set_nodelay(true)?;
        let conn = ClientConnection::new(config, clock.core_now(), &random(n));
        let mut session = Session {
            conn,
            socket,
            tls: None,
            clock,
            sparse_input: false,
        };
        session.flush().await?;
        Ok(session)
    }

    /// [`open`](Self::open) over TLS to `tls.address` (the certificate
    /// must be valid for `localhost`): the TLS handshake first, then the
    /// RTMP one inside it.
    pub async fn open_tls(
        url: &RtmpUrl,
        tls: &Tls,
        clock: Clock,
        n: u64,
    ) -> Result<Session, SessionError> {
        let socket = TcpStream::connect(&tls.address).await?;
        socket.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("localhost")
            .map_err(|e| io::Error::other(e.to_string()))?;
        let client = rustls::ClientConnection::new(Arc::clone(&tls.config), name)
            .map_err(io::Error::other)?;
        let config = ClientConfig::new(url.app.clone(), url.tc_url.clone());
        let conn = ClientConnection::new(config, clock.core_now(), &random(n));
        let mut session = Session {
            conn,
            socket,
            tls: Some(Box::new(client)),
            clock,
            sparse_input: false,
        };
        while session.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
            session.write_tls().await?;
            if session.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                session.socket.readable().await?;
                session.try_read()?;
            }
        }
        session.flush().await?;
        Ok(session)
    }

    /// Sends what rustls has to send (records, alerts).
    async fn write_tls(&mut self) -> Result<(), SessionError> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut out)?;
        }
        if !out.is_empty() {
            self.socket.write_all(&out).await?;
        }
        Ok(())
    }

    /// Feeds `n` bytes read into `buf` to the connection (through TLS for
    /// RTMPS). Returns the RTMP bytes it got: for TLS, 0 is possible (a
    /// record not complete yet, or a handshake message).
    fn feed(&mut self, data: &[u8]) -> Result<usize, SessionError> {
        let Some(tls) = self.tls.as_mut() else {
            self.conn.handle_input(self.clock.core_now(), data)?;
            return Ok(data.len());
        };
        let mut rest = data;
        let mut total = 0;
        while !rest.is_empty() {
            tls.read_tls(&mut rest)?;
            tls.process_new_packets().map_err(io::Error::other)?;
            let drained: Result<usize, SessionError> = PLAIN.with(|plain| {
                let mut plain = plain.borrow_mut();
                let mut got = 0;
                loop {
                    match tls.reader().read(&mut plain) {
                        Ok(0) => return Err(SessionError::Closed),
                        Ok(m) => {
                            let input = plain.get(..m).unwrap_or_default();
                            self.conn.handle_input(self.clock.core_now(), input)?;
                            got += m;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
                        Err(e) => return Err(SessionError::Io(e)),
                    }
                }
            });
            total += drained?;
        }
        Ok(total)
    }

    /// Says that input comes as small messages far apart (shared-object
    /// notices), so a read that did not fill the buffer took all there was
    /// and the next wait may sleep at once ([`mark_drained`]). Not for
    /// players: a stream's next bytes often arrive while the last ones are
    /// decoded, and reading again before sleeping then saves a wake-up
    /// (with it, the tool spent 93 % of its core on 1500 nginx-rtmp players
    /// at 600 kbit/s instead of about 66 %).
    pub fn set_sparse_input(&mut self, sparse: bool) {
        self.sparse_input = sparse;
    }

    /// Writes everything the connection queued.
    pub async fn flush(&mut self) -> Result<(), SessionError> {
        if let Some(tls) = self.tls.as_mut() {
            while let Some(bytes) = self.conn.poll_transmit() {
                tls.writer().write_all(&bytes)?;
            }
            return self.write_tls().await;
        }
        while let Some(bytes) = self.conn.poll_transmit() {
            self.socket.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// Waits for input and feeds all of it that is there to the
    /// connection; returns the RTMP bytes read (over TLS: the plaintext).
    /// Events are left in `conn.poll_event()`.
    pub async fn read(&mut self) -> Result<usize, SessionError> {
        loop {
            self.socket.readable().await?;
            let got = READ.with(|buf| {
                let mut buf = buf.borrow_mut();
                match self.socket.try_read(&mut buf) {
                    Ok(0) => Err(SessionError::Closed),
                    Ok(n) => {
                        if self.sparse_input && n < buf.len() {
                            mark_drained(&self.socket);
                        }
                        self.feed(buf.get(..n).unwrap_or_default()).map(Some)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(SessionError::Io(e)),
                }
            })?;
            // Over TLS a read may complete no record yet: read on.
            match got {
                Some(n) if n > 0 || self.tls.is_none() => return Ok(n),
                _ => {}
            }
        }
    }

    /// Like [`read`](Self::read), but only if input is there already.
    pub fn try_read(&mut self) -> Result<usize, SessionError> {
        READ.with(|buf| {
            let mut buf = buf.borrow_mut();
            match self.socket.try_read(&mut buf) {
                Ok(0) => Err(SessionError::Closed),
                Ok(n) => {
                    if self.sparse_input && n < buf.len() {
                        mark_drained(&self.socket);
                    }
                    self.feed(buf.get(..n).unwrap_or_default())
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) => Err(SessionError::Io(e)),
            }
        })
    }

    /// Resolves when the socket has input.
    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }
}

/// Tells tokio that `socket` has no input left, after a read that did not
/// fill its buffer (so took all there was): the next wait then sleeps at
/// once instead of first making the read that would find that out — half
/// of a shared-object subscriber's system calls per delivered change
/// otherwise, which delay every later subscriber's read. Input arriving after the
/// read raises a new readiness event, which the runtime handles after this
/// (it runs on this thread), so none is missed.
pub fn mark_drained(socket: &TcpStream) {
    let _ = socket.try_io(tokio::io::Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = RtmpUrl::parse("rtmp://127.0.0.1:19350/live").unwrap();
        assert_eq!(u.address, "127.0.0.1:19350");
        assert_eq!(u.app, "live");
        let u = RtmpUrl::parse("rtmp://localhost/chat/room?x=1").unwrap();
        assert_eq!(u.address, "localhost:1935");
        assert_eq!(u.app, "chat/room?x=1");
        assert!(RtmpUrl::parse("http://x/live").is_err());
        assert!(RtmpUrl::parse("rtmp://x/").is_err());
    }

    #[test]
    fn clock_is_monotonic() {
        let c = Clock::new();
        let a = c.now_us();
        assert!(c.now_us() >= a);
        assert_ne!(random(1), random(2));
    }
}
