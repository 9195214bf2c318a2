//! One RTMP client connection of the load tool: the core's
//! [`ClientConnection`] over a tokio socket, read into a buffer shared by
//! every connection of the thread (so thousands of idle or slow players
//! hold no read buffer of their own).

use std::cell::RefCell;
use std::fmt;
use std::io;
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
            clock,
            sparse_input: false,
        };
        session.flush().await?;
        Ok(session)
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
        while let Some(bytes) = self.conn.poll_transmit() {
            self.socket.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// Waits for input and feeds all of it that is there to the
    /// connection; returns the bytes read. Events are left in
    /// `conn.poll_event()`.
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
                        let data = buf.get(..n).unwrap_or_default();
                        self.conn.handle_input(self.clock.core_now(), data)?;
                        Ok(Some(n))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(SessionError::Io(e)),
                }
            })?;
            if let Some(n) = got {
                return Ok(n);
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
                    let data = buf.get(..n).unwrap_or_default();
                    self.conn.handle_input(self.clock.core_now(), data)?;
                    Ok(n)
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
