//! Human-readable traces of one direction of an RTMP byte stream.
//!
//! [`Tracer`] skips (and summarises) the handshake, then reassembles chunks
//! and prints one line per message. It backs the message-level snapshot
//! tests and the `tern trace <file>` command, so its output is
//! deterministic and every line is bounded ([`MAX_LINE_LEN`]).
//!
//! # Line format
//!
//! Every line starts with the direction, `C→S` or `S→C`.
//!
//! ```text
//! C→S handshake C0 version=3
//! C→S handshake C1 time=0 version=0.0.0.0 (plain)
//! S→C handshake S1 time=1000 version=4.0.0.1 (digest)
//! C→S handshake C2 time=0 time2=0
//! C→S csid=3 ts=0 len=283 type=20 command connect tx=1 {app: "live", …}
//! S→C csid=4 ts=0 len=130 type=20 sid=1 command onStatus tx=0 null {level: "status", …}
//! C→S error: chunk stream 5 starts with a fmt 1/2/3 chunk but has no previous header
//! C→S end: 7 bytes of an incomplete chunk
//! ```
//!
//! A message line is `csid= ts= len= type=`, then `sid=` only when the
//! message stream id is not 0, then the body:
//!
//! | type        | body                                                                 |
//! |-------------|----------------------------------------------------------------------|
//! | 1           | `set-chunk-size 4096`                                                |
//! | 2           | `abort csid=4`                                                       |
//! | 3           | `ack 12345`                                                          |
//! | 4           | `user-control stream-begin 1` (`stream-eof N`, `stream-dry N`, `set-buffer-length STREAM MSms`, `stream-is-recorded N`, `ping-request N`, `ping-response N`, `event=E N bytes`) |
//! | 5           | `window-ack-size 2500000`                                            |
//! | 6           | `set-peer-bandwidth 2500000 dynamic` (`hard`, `soft`)                |
//! | 8           | `audio aac raw 372 bytes`, `audio aac seq-header 2 bytes`, `audio speex 43 bytes`, `audio Opus seq-header 19 bytes` |
//! | 9           | `video key avc seq-header 45 bytes`, `video inter avc 1200 bytes`, `video key hvc1 seq-header 40 bytes` |
//! | 17, 20      | `command NAME tx=N OBJECT ARG…`                                      |
//! | 15, 18      | `data HANDLER VALUE…` (`data @setDataFrame onMetaData {…}`)          |
//! | 16, 19      | `shared-object "chat" v=3 transient [use, change message="hi", success message]` |
//! | 22, other   | `aggregate N bytes`, `unknown N bytes`                               |
//!
//! A payload that does not decode gives `FAMILY invalid (N bytes): ERROR`
//! and tracing goes on (the chunk stream is still in step). A chunk
//! stream error gives an `error:` line and stops the tracer for good.
//!
//! Names (command names, data handlers, object keys, shared-object keys)
//! are written bare when they are short and made of letters, digits and
//! `_ @ . $ - : /`; otherwise they are quoted like strings. Values use
//! [`render_value`].
//!
//! # Decisions
//!
//! - The C1/S1 `(plain)`/`(digest)` tag only reflects the version field
//!   (zero means plain); the digest itself is not verified.
//! - A C0/S0 version other than 3 is an error (the rest would be RTMPE or
//!   not RTMP at all).
//! - Lines are queued and handed out by [`Tracer::poll_line`]; the caller
//!   should drain them after each [`Tracer::feed`] (the queue grows with
//!   the input given to one `feed`). Input bytes are held only up to the
//!   end of the last whole chunk; partial messages are bounded by
//!   [`Limits`] inside the chunk decoder.

mod render;
#[cfg(test)]
mod tests;

use render::Bounded;
pub use render::{render_message, render_value};

use crate::Limits;
use crate::chunk::{ChunkDecoder, ChunkError};
use crate::rtmp::handshake::{HandshakeError, PACKET_LEN, RTMP_VERSION};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::BytesMut;
use core::fmt::{self, Write};

/// Longest line (in bytes) a renderer produces before cutting it and
/// appending `…`.
pub const MAX_LINE_LEN: usize = 1024;

/// Strings longer than this many characters are cut and end with `…`
/// inside the quotes.
pub const MAX_STRING_CHARS: usize = 80;

/// Which way the traced bytes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client: C0, C1, C2, then the client's chunk stream.
    ClientToServer,
    /// From the server: S0, S1, S2, then the server's chunk stream.
    ServerToClient,
}

impl Direction {
    /// `"C→S"` or `"S→C"`.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::ClientToServer => "C→S",
            Direction::ServerToClient => "S→C",
        }
    }

    /// The letter of the handshake packets this side sends: `C` or `S`.
    fn packet_letter(self) -> char {
        match self {
            Direction::ClientToServer => 'C',
            Direction::ServerToClient => 'S',
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.arrow())
    }
}

/// Why tracing stopped. After one, the tracer is dead and every later
/// [`Tracer::feed`] returns the same error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceError {
    /// C0/S0 named a version other than 3.
    Handshake(HandshakeError),
    /// The chunk stream could not be decoded.
    Chunk(ChunkError),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Handshake(e) => write!(f, "handshake: {e}"),
            TraceError::Chunk(e) => write!(f, "chunk stream: {e}"),
        }
    }
}

impl core::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            TraceError::Handshake(e) => Some(e),
            TraceError::Chunk(e) => Some(e),
        }
    }
}

impl From<ChunkError> for TraceError {
    fn from(e: ChunkError) -> Self {
        TraceError::Chunk(e)
    }
}

impl From<HandshakeError> for TraceError {
    fn from(e: HandshakeError) -> Self {
        TraceError::Handshake(e)
    }
}

/// Where the tracer is in the stream.
#[derive(Debug)]
enum Phase {
    /// Reading handshake packet `index` (0 = C0/S0, 1 = C1/S1, 2 = C2/S2),
    /// `got` bytes of it so far.
    Handshake { index: u8, got: usize },
    /// Decoding chunks.
    Chunks,
    /// Stopped by an error.
    Failed(TraceError),
}

/// Turns one direction of an RTMP byte stream into lines.
///
/// Feed bytes in any split with [`feed`](Tracer::feed), then drain
/// [`poll_line`](Tracer::poll_line) until `None`. Call
/// [`finish`](Tracer::finish) at the end of a capture to report bytes left
/// in an incomplete packet or chunk.
#[derive(Debug)]
pub struct Tracer {
    direction: Direction,
    limits: Limits,
    phase: Phase,
    /// First 8 bytes of the current handshake packet (time and version).
    head: [u8; 8],
    input: BytesMut,
    decoder: ChunkDecoder,
    lines: VecDeque<String>,
}

impl Tracer {
    /// A tracer at the start of a connection (before C0/S0).
    pub fn new(direction: Direction, limits: &Limits) -> Self {
        Tracer {
            direction,
            limits: limits.clone(),
            phase: Phase::Handshake { index: 0, got: 0 },
            head: [0; 8],
            input: BytesMut::new(),
            decoder: ChunkDecoder::new(limits),
            lines: VecDeque::new(),
        }
    }

    /// The direction traced.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Takes the next bytes of the stream and queues a line for every
    /// handshake packet and message completed by them.
    ///
    /// On a chunk stream error (or a bad C0/S0 version) an `error:` line is
    /// queued and the error returned; the tracer then ignores further input
    /// and returns the same error.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), TraceError> {
        let mut rest = bytes;
        loop {
            match self.phase {
                Phase::Failed(ref e) => return Err(e.clone()),
                Phase::Chunks => break,
                Phase::Handshake { index, got } => {
                    if rest.is_empty() {
                        return Ok(());
                    }
                    let len = if index == 0 { 1 } else { PACKET_LEN };
                    let want = len.saturating_sub(got);
                    let (now, later) = rest.split_at_checked(want).unwrap_or((rest, &[]));
                    for (i, b) in now.iter().enumerate() {
                        if let Some(slot) = self.head.get_mut(got.saturating_add(i)) {
                            *slot = *b;
                        } else {
                            break;
                        }
                    }
                    rest = later;
                    let got = got.saturating_add(now.len());
                    if got < len {
                        self.phase = Phase::Handshake { index, got };
                        return Ok(());
                    }
                    self.handshake_packet(index)?;
                }
            }
        }
        self.input.extend_from_slice(rest);
        self.decode_chunks()
    }

    /// The next queued line, oldest first.
    pub fn poll_line(&mut self) -> Option<String> {
        self.lines.pop_front()
    }

    /// Marks the end of the capture: queues an `end:` line if bytes are
    /// left in an incomplete handshake packet or chunk. Nothing is queued
    /// for a clean end or after an error.
    pub fn finish(&mut self) {
        let dir = self.direction;
        let line = match self.phase {
            Phase::Failed(_) => return,
            Phase::Handshake { index: 0, got: 0 } => return,
            Phase::Handshake { index, got } => {
                let len = if index == 0 { 1 } else { PACKET_LEN };
                alloc::format!(
                    "{dir} end: handshake incomplete ({}{index} {got}/{len} bytes)",
                    dir.packet_letter()
                )
            }
            Phase::Chunks if self.input.is_empty() => return,
            Phase::Chunks => alloc::format!(
                "{dir} end: {} bytes of an incomplete chunk",
                self.input.len()
            ),
        };
        self.lines.push_back(line);
    }

    /// Renders a completed handshake packet and moves to the next phase.
    fn handshake_packet(&mut self, index: u8) -> Result<(), TraceError> {
        let dir = self.direction;
        let p = dir.packet_letter();
        let [t0, t1, t2, t3, v0, v1, v2, v3] = self.head;
        let time = u32::from_be_bytes([t0, t1, t2, t3]);
        let line = match index {
            0 => alloc::format!("{dir} handshake {p}0 version={t0}"),
            1 => {
                let kind = if [v0, v1, v2, v3] == [0; 4] {
                    "plain"
                } else {
                    "digest"
                };
                alloc::format!(
                    "{dir} handshake {p}1 time={time} version={v0}.{v1}.{v2}.{v3} ({kind})"
                )
            }
            _ => {
                let time2 = u32::from_be_bytes([v0, v1, v2, v3]);
                alloc::format!("{dir} handshake {p}2 time={time} time2={time2}")
            }
        };
        self.lines.push_back(line);
        self.head = [0; 8];
        if index == 0 && t0 != RTMP_VERSION {
            return Err(self.fail(HandshakeError::UnsupportedVersion(t0).into()));
        }
        self.phase = if index >= 2 {
            Phase::Chunks
        } else {
            Phase::Handshake {
                index: index.saturating_add(1),
                got: 0,
            }
        };
        Ok(())
    }

    fn decode_chunks(&mut self) -> Result<(), TraceError> {
        loop {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(raw)) => {
                    let line = render_message(self.direction, &raw, &self.limits);
                    self.lines.push_back(line);
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(e.into())),
            }
        }
    }

    /// Queues the error line, drops buffered input and stops the tracer.
    fn fail(&mut self, error: TraceError) -> TraceError {
        let mut out = Bounded::new(MAX_LINE_LEN);
        let _ = write!(out, "{} error: {}", self.direction, ErrorText(&error));
        self.lines.push_back(out.finish());
        self.input = BytesMut::new();
        self.phase = Phase::Failed(error.clone());
        error
    }
}

/// The inner error's own text, without the `TraceError` prefix.
struct ErrorText<'a>(&'a TraceError);

impl fmt::Display for ErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            TraceError::Handshake(e) => e.fmt(f),
            TraceError::Chunk(e) => e.fmt(f),
        }
    }
}

/// Traces a whole capture of one direction: every line [`Tracer`] queues,
/// the `end:` line of [`Tracer::finish`] included. A chunk stream error
/// shows as the last line.
pub fn render_capture(direction: Direction, bytes: &[u8], limits: &Limits) -> Vec<String> {
    let mut tracer = Tracer::new(direction, limits);
    // An error is already queued as a line; the capture ends there.
    let _ = tracer.feed(bytes);
    tracer.finish();
    tracer.lines.into_iter().collect()
}
