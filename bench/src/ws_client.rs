//! The load tool's WebSocket client: just what its shared-object writers
//! and subscribers need of RFC 6455, written to cost as little per
//! delivered change as its RTMP and Redis subscribers do.
//!
//! Why not tokio-tungstenite (which the end-to-end tests and the simulator
//! use as an independent client): it allocates a message per frame and
//! reads each socket until it would block, so every delivered change cost a
//! WebSocket subscriber a second `read` and an allocation that its RTMP and
//! Redis neighbours do not pay — on the load tool's one core, during a
//! fan-out to 1000 subscribers, that is latency the tool adds to every
//! later subscriber's measurement. Here, as for the other subscribers, a
//! read that did not fill the buffer marks the socket drained
//! ([`mark_drained`]) and frames are parsed in place.
//!
//! What it speaks: the opening handshake (checking status 101, the
//! `Sec-WebSocket-Accept` and the subprotocol), unmasked server frames
//! whole (FIN set; a fragmented message or a masked frame is an error, as
//! tern never sends one), text, ping (answered with a pong), pong, binary
//! (ignored) and close; it sends masked text frames.

use crate::session::{SessionError, mark_drained};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;
use std::io;
use tern_core::ws::frame::{FrameHeader, Opcode, encode_raw};
use tern_core::ws::handshake::accept_key;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Largest response head to the upgrade request.
const MAX_HEAD: usize = 8 * 1024;

/// Largest frame payload accepted (tern's JSON messages in the benchmarks
/// are a few hundred bytes; a `sync` of a big object can be more).
pub const MAX_FRAME: usize = 1 << 20;

/// Bytes a read asks for at least.
const READ_CHUNK: usize = 4096;

/// Why a server frame could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A server frame with the mask bit set (RFC 6455 §5.1 forbids it).
    Masked,
    /// RSV bits set without an extension that defines them.
    Reserved,
    /// A fragment (FIN clear, or a continuation frame): tern sends every
    /// message in one frame, so this client does not reassemble.
    Fragmented,
    /// An opcode RFC 6455 reserves.
    UnknownOpcode(u8),
    /// A payload larger than [`MAX_FRAME`].
    TooLarge(u64),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Masked => f.write_str("masked frame from the server"),
            FrameError::Reserved => f.write_str("reserved bits set in a frame"),
            FrameError::Fragmented => f.write_str("fragmented message (not expected from tern)"),
            FrameError::UnknownOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            FrameError::TooLarge(n) => write!(f, "frame of {n} bytes (limit {MAX_FRAME})"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        SessionError::Io(io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// One whole frame from the server, borrowed from the read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    /// A text message (UTF-8 is checked by whoever parses it).
    Text(&'a [u8]),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping; its payload goes back in the pong.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The server closes.
    Close,
}

/// Reads the frame at the start of `input`: `Ok(None)` if it is not all
/// there yet, else the frame and the bytes it took.
pub fn parse_frame(input: &[u8]) -> Result<Option<(ServerFrame<'_>, usize)>, FrameError> {
    let (Some(&b0), Some(&b1)) = (input.first(), input.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::Reserved);
    }
    if b1 & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let opcode = b0 & 0x0F;
    let (len, header) = match b1 & 0x7F {
        126 => match input.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match input.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME as u64 {
        return Err(FrameError::TooLarge(len));
    }
    let end = header + len as usize;
    let Some(payload) = input.get(header..end) else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let frame = match Opcode::from_u8(opcode) {
        Some(Opcode::Continuation) => return Err(FrameError::Fragmented),
        Some(_) if !fin => return Err(FrameError::Fragmented),
        Some(Opcode::Text) => ServerFrame::Text(payload),
        Some(Opcode::Binary) => ServerFrame::Binary(payload),
        Some(Opcode::Ping) => ServerFrame::Ping(payload),
        Some(Opcode::Pong) => ServerFrame::Pong,
        Some(Opcode::Close) => ServerFrame::Close,
        None => return Err(FrameError::UnknownOpcode(opcode)),
    };
    Ok(Some((frame, end)))
}

/// A client frame: FIN set, masked with `mask`.
pub fn client_frame(opcode: Opcode, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    encode_raw(
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode: opcode.as_u8(),
            mask: Some(mask),
            len: payload.len() as u64,
        },
        payload,
    )
}

/// `ws://authority/path` split into the address to connect to, the `Host`
/// header and the request target.
fn split_url(url: &str) -> Option<(String, &str, &str)> {
    let rest = url.strip_prefix("ws://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    // A port is there unless the authority ends in a host (`h`, `[::1]`).
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && (!host.contains(':') || host.ends_with(']'))
    });
    let address = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((address, authority, path))
}

/// One WebSocket connection of the load tool.
#[derive(Debug)]
pub struct WsClient {
    socket: TcpStream,
    /// Bytes read and not yet parsed (a partial frame at most, between reads).
    input: Vec<u8>,
    /// Masking keys come from this counter: masking is there for
    /// intermediaries' sake, not secrecy.
    next_mask: u32,
}

impl WsClient {
    /// Connects to `url` (`ws://host:port/path`) asking for `subprotocol`,
    /// which the server must select. `n` varies the handshake key.
    pub async fn connect(url: &str, subprotocol: &str, n: u64) -> Result<WsClient, SessionError> {
        let bad = |why: &dyn fmt::Display| SessionError::Refused(format!("{url}: {why}"));
        let (address, host, path) = split_url(url).ok_or_else(|| bad(&"not a ws:// URL"))?;
        let socket = TcpStream::connect(address.as_str()).await?;
        socket.set_nodelay(true)?;
        let key = STANDARD.encode([n.to_be_bytes(), (!n).to_be_bytes()].concat());
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        );
        let mut client = WsClient {
            socket,
            input: Vec::new(),
            next_mask: (n as u32).wrapping_mul(0x9E37_79B9) | 1,
        };
        client.socket.write_all(request.as_bytes()).await?;
        let head_len = loop {
            client.socket.readable().await?;
            client.try_fill()?;
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&client.input) {
                Ok(httparse::Status::Complete(len)) => {
                    let header = |name: &str| {
                        response
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| h.value)
                    };
                    if response.code != Some(101) {
                        return Err(bad(&format_args!("status {:?}", response.code)));
                    }
                    if header("Sec-WebSocket-Accept") != Some(accept_key(&key).as_bytes()) {
                        return Err(bad(&"wrong Sec-WebSocket-Accept"));
                    }
                    if header("Sec-WebSocket-Protocol") != Some(subprotocol.as_bytes()) {
                        return Err(bad(&format_args!("subprotocol {subprotocol} not selected")));
                    }
                    break len;
                }
                Ok(httparse::Status::Partial) if client.input.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => return Err(bad(&"response head too long")),
                Err(e) => return Err(bad(&e)),
            }
        };
        // What follows the head is the start of the frames.
        client.input.drain(..head_len);
        Ok(client)
    }

    /// Reads what the socket has, if anything (appending). A read that did
    /// not fill the room it had marks the socket drained.
    fn try_fill(&mut self) -> Result<(), SessionError> {
        self.input.reserve(READ_CHUNK);
        let room = self.input.capacity() - self.input.len();
        match self.socket.try_read_buf(&mut self.input) {
            Ok(0) => Err(SessionError::Closed),
            Ok(n) => {
                if n < room {
                    mark_drained(&self.socket);
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves when the socket has input.
    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Reads what is there and hands each whole text message read (or
    /// left from an earlier read) to `on_text`; answers pings.
    /// `Err(Closed)` once the server closes.
    pub async fn try_read_messages(
        &mut self,
        mut on_text: impl FnMut(&[u8]) -> Result<(), SessionError>,
    ) -> Result<(), SessionError> {
        self.try_fill()?;
        let mut used = 0;
        let mut pong = None;
        while let Some((frame, n)) = parse_frame(self.input.get(used..).unwrap_or_default())? {
            used += n;
            match frame {
                ServerFrame::Text(text) => on_text(text)?,
                ServerFrame::Ping(payload) => pong = Some(payload.to_vec()),
                ServerFrame::Close => return Err(SessionError::Closed),
                ServerFrame::Binary(_) | ServerFrame::Pong => {}
            }
        }
        self.input.drain(..used);
        if let Some(payload) = pong {
            self.send(Opcode::Pong, &payload).await?;
        }
        Ok(())
    }

    /// Waits for input unless a whole frame is left from an earlier read
    /// (the server's first message can come with the upgrade response),
    /// then as [`try_read_messages`](Self::try_read_messages).
    pub async fn read_messages(
        &mut self,
        on_text: impl FnMut(&[u8]) -> Result<(), SessionError>,
    ) -> Result<(), SessionError> {
        if parse_frame(&self.input)?.is_none() {
            self.socket.readable().await?;
        }
        self.try_read_messages(on_text).await
    }

    /// Sends one text message.
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(Opcode::Text, text.as_bytes()).await
    }

    async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        self.next_mask = self
            .next_mask
            .wrapping_mul(0x0019_660D)
            .wrapping_add(0x3C6E_F35F);
        let frame = client_frame(opcode, payload, self.next_mask.to_be_bytes());
        self.socket.write_all(&frame).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::ws::frame::encode_frame;

    #[test]
    fn reads_the_rfc_examples() {
        // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
        let hello = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(
            parse_frame(&hello),
            Ok(Some((ServerFrame::Text(b"Hello"), 7)))
        );
        // Every prefix is incomplete, not an error.
        for n in 0..hello.len() {
            assert_eq!(parse_frame(&hello[..n]), Ok(None));
        }
        // Unmasked ping "Hello".
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(
            parse_frame(&ping),
            Ok(Some((ServerFrame::Ping(b"Hello"), 7)))
        );
        // A fragmented unmasked "Hel" + "lo" is refused, not reassembled.
        assert_eq!(
            parse_frame(&[0x01, 0x03, 0x48, 0x65, 0x6c]),
            Err(FrameError::Fragmented)
        );
        assert_eq!(
            parse_frame(&[0x80, 0x02, 0x6c, 0x6f]),
            Err(FrameError::Fragmented)
        );
        // The masked "Hello" a client sends is an error from a server.
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(parse_frame(&masked), Err(FrameError::Masked));
        assert_eq!(
            client_frame(Opcode::Text, b"Hello", [0x37, 0xfa, 0x21, 0x3d]),
            masked
        );
    }

    #[test]
    fn reads_every_length_form_the_server_writes() {
        for len in [0, 125, 126, 300, 65_535, 65_536, 200_000] {
            let payload = vec![b'a'; len];
            let mut wire = encode_frame(Opcode::Text, &payload).to_vec();
            let whole = wire.len();
            assert_eq!(
                parse_frame(&wire),
                Ok(Some((ServerFrame::Text(&payload), whole))),
                "{len}"
            );
            // Two frames back to back: the first is read alone.
            wire.extend_from_slice(&encode_frame(Opcode::Close, &[]));
            assert_eq!(parse_frame(&wire).unwrap().unwrap().1, whole);
            assert_eq!(
                parse_frame(&wire[whole..]),
                Ok(Some((ServerFrame::Close, 2)))
            );
            assert_eq!(parse_frame(&wire[..whole - 1]), Ok(None), "{len}");
        }
    }

    #[test]
    fn refuses_what_tern_never_sends() {
        assert_eq!(parse_frame(&[0x91, 0x00]), Err(FrameError::Reserved));
        assert_eq!(
            parse_frame(&[0x83, 0x00]),
            Err(FrameError::UnknownOpcode(3))
        );
        let mut huge = vec![0x82, 0x7F];
        huge.extend_from_slice(&(MAX_FRAME as u64 + 1).to_be_bytes());
        assert_eq!(
            parse_frame(&huge),
            Err(FrameError::TooLarge(MAX_FRAME as u64 + 1))
        );
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("ws://127.0.0.1:8081/chat/room"),
            Some(("127.0.0.1:8081".to_owned(), "127.0.0.1:8081", "/chat/room"))
        );
        assert_eq!(
            split_url("ws://localhost/chat"),
            Some(("localhost:80".to_owned(), "localhost", "/chat"))
        );
        assert_eq!(
            split_url("ws://[::1]:9000/x"),
            Some(("[::1]:9000".to_owned(), "[::1]:9000", "/x"))
        );
        assert_eq!(
            split_url("ws://[::1]"),
            Some(("[::1]:80".to_owned(), "[::1]", "/"))
        );
        assert_eq!(split_url("http://x/y"), None);
        assert_eq!(split_url("ws:///y"), None);
    }
}
