//! The RTMP handshake (C0/C1/C2 ↔ S0/S1/S2), plain and digest.
//!
//! Sans-IO: [`ServerHandshake`] and [`ClientHandshake`] take bytes in with
//! `handle_input` and hand bytes out with `poll_transmit`. They never read a
//! clock or a random source: the caller passes [`RANDOM_LEN`] random bytes
//! and the value of the packet's time field.
//!
//! Version 3 only. Two flavours, both served the way nginx-rtmp and Red5 do:
//!
//! * **plain** (the published RTMP spec): S2 echoes C1, C2 echoes S1;
//! * **digest** (the "complex" handshake of Flash Player, ffmpeg and OBS):
//!   C1 and S1 carry an HMAC-SHA256 digest at a position given by
//!   [`DigestScheme`], keyed by the public part of Adobe's published player
//!   or server key ("Genuine Adobe Flash Player 001", 30 bytes; "Genuine
//!   Adobe Flash Media Server 001", 36 bytes) over the packet without the
//!   digest. C2/S2 are 1504 random bytes followed by HMAC-SHA256 over them,
//!   keyed by HMAC-SHA256(sender's full key = public part + 32 fixed bytes,
//!   peer's digest). A server that finds no valid client digest falls back
//!   to plain.
//!
//! Polling order, for either side: feed every received byte to
//! `handle_input`, which returns how many bytes belonged to the handshake
//! (the rest is the start of the chunk stream and stays with the caller);
//! then drain `poll_transmit` until `None`; then check `is_complete`. After
//! an error the handshake is dead: every later `handle_input` returns the
//! same error and the connection should be closed.

mod client;
mod digest;
mod server;

use alloc::boxed::Box;
use core::fmt;

pub use client::{CLIENT_VERSION, ClientHandshake};
pub use digest::{DIGEST_LEN, DigestScheme, PACKET_LEN};
pub use server::{SERVER_VERSION, ServerHandshake};

use digest::Packet;

/// The only RTMP version served: plain, unencrypted RTMP.
pub const RTMP_VERSION: u8 = 3;

/// Random bytes a handshake needs from the caller.
///
/// They fill C1/S1 after its 8-byte header and, in digest mode, C2/S2 before
/// its signature. They need not be secret: nothing in the handshake is secret.
pub const RANDOM_LEN: usize = PACKET_LEN;

/// Which handshake a client asks for, or which one was negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandshakeKind {
    /// The spec's handshake: the second packet echoes the peer's first.
    Plain,
    /// Flash Player's handshake with HMAC-SHA256 digests.
    Digest,
}

/// Why a handshake failed. The connection should be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// C0 or S0 named a version other than [`RTMP_VERSION`].
    UnsupportedVersion(u8),
    /// Digest client: S1 declares a server version but holds no valid
    /// server digest at either position.
    InvalidServerDigest,
    /// Digest client: the last 32 bytes of S2 are not the signature derived
    /// from our C1 digest.
    InvalidServerSignature,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HandshakeError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "unsupported RTMP handshake version {v} (only version {RTMP_VERSION} is served)"
                )?;
                match v {
                    6 | 8 | 9 => {
                        f.write_str("; this is RTMPE (encrypted RTMP), which is not supported")
                    }
                    b'A'..=b'Z' => write!(
                        f,
                        "; byte {v:#04x} is ASCII '{}', this looks like an HTTP request, not RTMP",
                        char::from(v)
                    ),
                    _ => Ok(()),
                }
            }
            HandshakeError::InvalidServerDigest => {
                f.write_str("server's S1 carries no valid digest")
            }
            HandshakeError::InvalidServerSignature => {
                f.write_str("server's S2 signature does not match our C1 digest")
            }
        }
    }
}

impl core::error::Error for HandshakeError {}

/// Gathers one packet from input that may arrive in pieces.
#[derive(Debug)]
struct PacketBuf {
    buf: Box<Packet>,
    len: usize,
}

impl PacketBuf {
    fn new() -> Self {
        PacketBuf {
            buf: Box::new([0; PACKET_LEN]),
            len: 0,
        }
    }

    /// Copies as much of `input` as still fits; returns the bytes taken.
    fn fill(&mut self, input: &[u8]) -> usize {
        let free = self.buf.get_mut(self.len..).unwrap_or_default();
        let n = free.len().min(input.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..n), input.get(..n)) {
            dst.copy_from_slice(src);
            self.len = self.len.saturating_add(n);
            n
        } else {
            0
        }
    }

    fn is_full(&self) -> bool {
        self.len == PACKET_LEN
    }
}

/// Writes the 8-byte header of C1/S1: time, then version (zero for plain).
fn write_header(packet: &mut Packet, epoch: u32, version: [u8; 4]) {
    let (time, rest) = packet.split_at_mut(4);
    time.copy_from_slice(&epoch.to_be_bytes());
    if let Some(v) = rest.get_mut(..4) {
        v.copy_from_slice(&version);
    }
}

/// The version field of C1/S1 (bytes 4..8). Zero means "plain handshake".
fn version_field(packet: &Packet) -> [u8; 4] {
    let mut v = [0; 4];
    if let Some(src) = packet.get(4..8) {
        v.copy_from_slice(src);
    }
    v
}

/// Random filler for the first 1504 bytes of a digest-mode C2/S2.
///
/// Taken from the end of the caller's random bytes so it does not line up
/// with the copy in C1/S1 (which starts at byte 8); peers never check it.
fn signed_filler(random: &[u8; RANDOM_LEN]) -> Packet {
    let mut packet = [0; PACKET_LEN];
    let (filler, _) = packet.split_at_mut(digest::SIGNED_LEN);
    if let Some(src) = random.get(DIGEST_LEN..) {
        filler.copy_from_slice(src);
    }
    packet
}

#[cfg(test)]
mod tests;
