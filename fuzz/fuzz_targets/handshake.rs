//! The server handshake (and the client's, for its input side).
//!
//! Input: `[split, mode, rest…]`.
//!
//! - mode bit 0 clear: `rest` is fed in fuzzer-chosen pieces to a
//!   `ServerHandshake` (mode bit 1 set: to a `ClientHandshake` instead).
//!   Checks: never panics; each call consumes at most what it was given;
//!   the total never exceeds C0+C1+C2 = 3073 bytes; once complete it
//!   consumed exactly 3073 and takes nothing more; after an error every
//!   later call returns the same error; the server's reply is one
//!   1+2×1536-byte piece, sent once.
//! - mode bit 0 set: a real `ClientHandshake` (plain, or digest if mode bit
//!   1 is set) talks to the server, with `rest` read as (u16 position, xor
//!   byte) triples that corrupt C1 on the way. Both sides must complete
//!   whatever the corruption (a corrupted digest makes the server fall back
//!   to plain, which the client accepts), and an untouched C1 must
//!   negotiate the kind the client asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::rtmp::handshake::{
    ClientHandshake, HandshakeKind, PACKET_LEN, RANDOM_LEN, ServerHandshake,
};
use tern_core_fuzz::{filler, pieces};

const HANDSHAKE_LEN: usize = 1 + 2 * PACKET_LEN;

/// What both handshake sides look like from outside.
trait Side {
    fn input(&mut self, b: &[u8]) -> Result<usize, tern_core::rtmp::handshake::HandshakeError>;
    fn transmit(&mut self) -> Vec<bytes::Bytes>;
    fn complete(&self) -> bool;
}

impl Side for ServerHandshake {
    fn input(&mut self, b: &[u8]) -> Result<usize, tern_core::rtmp::handshake::HandshakeError> {
        self.handle_input(b)
    }
    fn transmit(&mut self) -> Vec<bytes::Bytes> {
        std::iter::from_fn(|| self.poll_transmit()).collect()
    }
    fn complete(&self) -> bool {
        self.is_complete()
    }
}

impl Side for ClientHandshake {
    fn input(&mut self, b: &[u8]) -> Result<usize, tern_core::rtmp::handshake::HandshakeError> {
        self.handle_input(b)
    }
    fn transmit(&mut self) -> Vec<bytes::Bytes> {
        std::iter::from_fn(|| self.poll_transmit()).collect()
    }
    fn complete(&self) -> bool {
        self.is_complete()
    }
}

/// Feeds `input` in pieces; returns the bytes sent.
fn feed(side: &mut dyn Side, split: u8, input: &[u8]) -> usize {
    let mut total = 0usize;
    let mut sent = 0usize;
    let mut failed = None;
    for piece in pieces(split, input) {
        match side.input(piece) {
            Ok(n) => {
                assert!(failed.is_none(), "handshake recovered from {failed:?}");
                assert!(n <= piece.len(), "consumed {n} of {}", piece.len());
                total += n;
                assert!(total <= HANDSHAKE_LEN, "consumed {total} bytes");
                if side.complete() {
                    assert_eq!(total, HANDSHAKE_LEN);
                }
            }
            Err(e) => {
                if let Some(prev) = &failed {
                    assert_eq!(prev, &e, "error changed");
                }
                failed = Some(e);
            }
        }
        for t in side.transmit() {
            assert!(!t.is_empty());
            sent += t.len();
        }
    }
    sent
}

fn corrupt_and_run(kind: HandshakeKind, seed: u8, triples: &[u8]) {
    let mut client = ClientHandshake::new(&filler::<RANDOM_LEN>(seed), u32::from(seed), kind);
    let mut server = ServerHandshake::new(&filler::<RANDOM_LEN>(!seed), 7);
    let mut c0c1: Vec<u8> = client.transmit().concat();
    assert_eq!(c0c1.len(), 1 + PACKET_LEN);
    let mut touched = false;
    for t in triples.chunks_exact(3) {
        let pos = usize::from(u16::from_be_bytes([t[0], t[1]])) % PACKET_LEN;
        if t[2] != 0 {
            touched = true;
        }
        c0c1[1 + pos] ^= t[2];
    }
    assert_eq!(server.input(&c0c1), Ok(c0c1.len()));
    let reply: Vec<u8> = server.transmit().concat();
    assert_eq!(reply.len(), HANDSHAKE_LEN);
    assert_eq!(client.input(&reply), Ok(reply.len()));
    assert!(client.complete(), "client did not complete");
    let c2: Vec<u8> = client.transmit().concat();
    assert_eq!(server.input(&c2), Ok(PACKET_LEN));
    assert!(server.complete(), "server did not complete");
    if !touched {
        assert_eq!(server.kind(), Some(kind));
        assert_eq!(client.kind(), Some(kind));
    }
    assert_eq!(server.kind(), client.kind());
    // Nothing after completion belongs to the handshake.
    assert_eq!(server.input(&[3; 16]), Ok(0));
    assert_eq!(client.input(&[3; 16]), Ok(0));
}

fuzz_target!(|data: &[u8]| {
    let Some((&[split, mode], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    if mode & 1 == 1 {
        let kind = if mode & 2 == 2 {
            HandshakeKind::Digest
        } else {
            HandshakeKind::Plain
        };
        corrupt_and_run(kind, mode, rest);
        return;
    }
    if mode & 2 == 0 {
        let mut server = ServerHandshake::new(&filler::<RANDOM_LEN>(mode), 0);
        let sent = feed(&mut server, split, rest);
        assert!(
            sent == 0 || sent == HANDSHAKE_LEN,
            "server sent {sent} bytes"
        );
    } else {
        let mut client =
            ClientHandshake::new(&filler::<RANDOM_LEN>(mode), 0, HandshakeKind::Digest);
        let _ = client.transmit();
        let sent = feed(&mut client, split, rest);
        assert!(sent == 0 || sent == PACKET_LEN, "client sent {sent} bytes");
    }
});
