//! Server side of the handshake: C0+C1 in, S0+S1+S2 out, C2 in.

use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::Bytes;

use super::digest::{self, DigestScheme, PACKET_LEN, Packet};
use super::{HandshakeError, HandshakeKind, PacketBuf, RANDOM_LEN, RTMP_VERSION};

/// Version bytes a digest-mode S1 carries, as nginx-rtmp sends them. Clients
/// only look at whether they are non-zero (ffmpeg: byte 5 at least 3).
pub const SERVER_VERSION: [u8; 4] = [0x0D, 0x0E, 0x0A, 0x0D];

/// The server side of one RTMP handshake.
///
/// Reply S0+S1+S2 goes out in one piece once C0+C1 are in (as nginx-rtmp and
/// Red5 do): S1's digest depends on whether C1 had one. C2 is read and
/// dropped without validation, as Red5 and nginx-rtmp do: its content carries
/// nothing the server needs, and real clients disagree about it (ffmpeg
/// signs C2 the digest way when playing but echoes S1 when publishing), so
/// checking it would only turn clients away.
///
/// See the [module docs](super) for the polling order.
#[derive(Debug)]
pub struct ServerHandshake {
    state: State,
    epoch: u32,
    random: Box<[u8; RANDOM_LEN]>,
    transmit: Option<Bytes>,
    negotiated: Option<(HandshakeKind, Option<DigestScheme>)>,
}

#[derive(Debug)]
enum State {
    /// Waiting for C0 (`c0_seen` false) and then C1.
    C0C1 {
        c0_seen: bool,
        c1: PacketBuf,
    },
    /// S0+S1+S2 produced; skipping the rest of C2.
    C2 {
        remaining: usize,
    },
    Complete,
    Failed(HandshakeError),
}

impl ServerHandshake {
    /// A server handshake.
    ///
    /// `random` fills S1 (and S2 in digest mode); `epoch` goes into S1's time
    /// field, the base of the server's chunk timestamps (0 is fine).
    pub fn new(random: &[u8; RANDOM_LEN], epoch: u32) -> Self {
        ServerHandshake {
            state: State::C0C1 {
                c0_seen: false,
                c1: PacketBuf::new(),
            },
            epoch,
            random: Box::new(*random),
            transmit: None,
            negotiated: None,
        }
    }

    /// Consumes handshake bytes from `input` and returns how many it took.
    ///
    /// Takes at most C0+C1+C2 (3073 bytes) over the handshake's life; any
    /// bytes after C2 are the client's first chunks and are left to the
    /// caller. C0 is checked as soon as it arrives, so an HTTP request or an
    /// RTMPE client is refused after one byte.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let mut rest = input;
        loop {
            match &mut self.state {
                State::C0C1 { c0_seen, c1 } => {
                    if !*c0_seen {
                        let Some((&version, tail)) = rest.split_first() else {
                            break;
                        };
                        if version != RTMP_VERSION {
                            return Err(self.fail(HandshakeError::UnsupportedVersion(version)));
                        }
                        *c0_seen = true;
                        rest = tail;
                    }
                    let taken = c1.fill(rest);
                    rest = rest.get(taken..).unwrap_or_default();
                    if !c1.is_full() {
                        break;
                    }
                    let c1: Packet = *c1.buf;
                    let reply = self.respond_to_c1(&c1);
                    self.transmit = Some(reply);
                    self.state = State::C2 {
                        remaining: PACKET_LEN,
                    };
                }
                State::C2 { remaining } => {
                    let taken = (*remaining).min(rest.len());
                    *remaining = remaining.saturating_sub(taken);
                    rest = rest.get(taken..).unwrap_or_default();
                    if *remaining > 0 {
                        break;
                    }
                    self.state = State::Complete;
                }
                State::Complete => break,
                State::Failed(e) => return Err(e.clone()),
            }
        }
        Ok(input.len().saturating_sub(rest.len()))
    }

    /// S0+S1+S2, once, after C0+C1 have arrived.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.take()
    }

    /// True once C2 has been consumed. Bytes after it belong to the chunk stream.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// The handshake chosen after C1 arrived: plain, or digest (then with the
    /// layout of the client's digest). `None` before C1.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.negotiated.map(|(kind, _)| kind)
    }

    /// Where the client put its C1 digest (and the server its S1 digest), if
    /// the digest handshake was used.
    pub fn digest_scheme(&self) -> Option<DigestScheme> {
        self.negotiated.and_then(|(_, scheme)| scheme)
    }

    fn fail(&mut self, error: HandshakeError) -> HandshakeError {
        self.state = State::Failed(error.clone());
        error
    }

    /// Builds S0+S1+S2 for the C1 just gathered.
    fn respond_to_c1(&mut self, c1: &Packet) -> Bytes {
        let mut s1: Packet = *self.random;
        // A client that leaves the version zero speaks the spec's handshake
        // and would not understand a digest.
        let client_digest = if super::version_field(c1) == [0; 4] {
            None
        } else {
            digest::find_digest(c1, digest::PLAYER_KEY_PUBLIC)
        };
        let s2: Packet = match client_digest {
            Some((scheme, client_digest)) => {
                super::write_header(&mut s1, self.epoch, SERVER_VERSION);
                digest::imprint_digest(&mut s1, scheme, digest::SERVER_KEY_PUBLIC);
                let mut s2 = super::signed_filler(&self.random);
                digest::sign_packet(&mut s2, digest::SERVER_KEY, &client_digest);
                self.negotiated = Some((HandshakeKind::Digest, Some(scheme)));
                s2
            }
            None => {
                super::write_header(&mut s1, self.epoch, [0; 4]);
                self.negotiated = Some((HandshakeKind::Plain, None));
                *c1
            }
        };
        let mut out = Vec::with_capacity(1 + 2 * PACKET_LEN);
        out.push(RTMP_VERSION);
        out.extend_from_slice(&s1);
        out.extend_from_slice(&s2);
        Bytes::from(out)
    }
}
