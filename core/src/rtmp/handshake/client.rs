//! Client side of the handshake: C0+C1 out, S0+S1 in, C2 out, S2 in.

use alloc::boxed::Box;
use bytes::{Bytes, BytesMut};

use super::digest::{self, DIGEST_LEN, DigestScheme, PACKET_LEN, Packet};
use super::{HandshakeError, HandshakeKind, PacketBuf, RANDOM_LEN, RTMP_VERSION};

/// Version bytes a digest-mode C1 carries: Flash Player 9.0.124.2, as ffmpeg
/// sends them. Servers only look at whether they are non-zero.
pub const CLIENT_VERSION: [u8; 4] = [9, 0, 124, 2];

/// The client side of one RTMP handshake.
///
/// C0+C1 are ready as soon as it is created. C2 is produced as soon as S1 is
/// in (the spec allows it then; no server waits for C2 before sending S2).
/// The handshake completes when S2 has been read.
///
/// In digest mode C1's digest sits at [`DigestScheme::Base8`], as Flash
/// Player and ffmpeg place it. If S1's version field is zero the server
/// speaks only the plain handshake; the client then falls back to plain, as
/// ffmpeg does. Otherwise S1's digest and S2's signature must be valid.
///
/// See the [module docs](super) for the polling order.
#[derive(Debug)]
pub struct ClientHandshake {
    requested: HandshakeKind,
    state: State,
    random: Box<[u8; RANDOM_LEN]>,
    /// C1's digest, in digest mode.
    client_digest: Option<[u8; DIGEST_LEN]>,
    transmit: BytesMut,
    negotiated: Option<HandshakeKind>,
}

#[derive(Debug)]
enum State {
    /// Waiting for S0 (`s0_seen` false) and then S1.
    S0S1 {
        s0_seen: bool,
        s1: PacketBuf,
    },
    /// C2 produced; reading S2.
    S2 {
        s2: PacketBuf,
    },
    Complete,
    Failed(HandshakeError),
}

impl ClientHandshake {
    /// A client handshake; C0+C1 are queued for [`poll_transmit`](Self::poll_transmit).
    ///
    /// `random` fills C1 (and C2 in digest mode); `epoch` goes into C1's time
    /// field.
    pub fn new(random: &[u8; RANDOM_LEN], epoch: u32, kind: HandshakeKind) -> Self {
        let mut c1: Packet = *random;
        let client_digest = match kind {
            HandshakeKind::Plain => {
                super::write_header(&mut c1, epoch, [0; 4]);
                None
            }
            HandshakeKind::Digest => {
                super::write_header(&mut c1, epoch, CLIENT_VERSION);
                Some(digest::imprint_digest(
                    &mut c1,
                    DigestScheme::Base8,
                    digest::PLAYER_KEY_PUBLIC,
                ))
            }
        };
        let mut transmit = BytesMut::with_capacity(1 + PACKET_LEN);
        transmit.extend_from_slice(&[RTMP_VERSION]);
        transmit.extend_from_slice(&c1);
        ClientHandshake {
            requested: kind,
            state: State::S0S1 {
                s0_seen: false,
                s1: PacketBuf::new(),
            },
            random: Box::new(*random),
            client_digest,
            transmit,
            negotiated: None,
        }
    }

    /// Consumes handshake bytes from `input` and returns how many it took.
    ///
    /// Takes at most S0+S1+S2 (3073 bytes) over the handshake's life; bytes
    /// after S2 are the server's first chunks and are left to the caller.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let mut rest = input;
        loop {
            match &mut self.state {
                State::S0S1 { s0_seen, s1 } => {
                    if !*s0_seen {
                        let Some((&version, tail)) = rest.split_first() else {
                            break;
                        };
                        if version != RTMP_VERSION {
                            return Err(self.fail(HandshakeError::UnsupportedVersion(version)));
                        }
                        *s0_seen = true;
                        rest = tail;
                    }
                    let taken = s1.fill(rest);
                    rest = rest.get(taken..).unwrap_or_default();
                    if !s1.is_full() {
                        break;
                    }
                    let s1: Packet = *s1.buf;
                    let c2 = match self.respond_to_s1(&s1) {
                        Ok(c2) => c2,
                        Err(e) => return Err(self.fail(e)),
                    };
                    self.transmit.extend_from_slice(&c2);
                    self.state = State::S2 {
                        s2: PacketBuf::new(),
                    };
                }
                State::S2 { s2 } => {
                    let taken = s2.fill(rest);
                    rest = rest.get(taken..).unwrap_or_default();
                    if !s2.is_full() {
                        break;
                    }
                    if let (Some(HandshakeKind::Digest), Some(client_digest)) =
                        (self.negotiated, self.client_digest)
                        && !digest::verify_signature(&s2.buf, digest::SERVER_KEY, &client_digest)
                    {
                        return Err(self.fail(HandshakeError::InvalidServerSignature));
                    }
                    self.state = State::Complete;
                }
                State::Complete => break,
                State::Failed(e) => return Err(e.clone()),
            }
        }
        Ok(input.len().saturating_sub(rest.len()))
    }

    /// C0+C1 first, then C2 once S1 has arrived (joined if not yet polled).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(self.transmit.split().freeze())
        }
    }

    /// True once S2 has been read. Bytes after it belong to the chunk stream.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// The handshake in use, known once S1 has arrived: the requested kind,
    /// or plain if a digest client met a plain-only server.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.negotiated
    }

    fn fail(&mut self, error: HandshakeError) -> HandshakeError {
        self.state = State::Failed(error.clone());
        error
    }

    /// Builds C2 for `s1`, checking S1's digest in digest mode.
    fn respond_to_s1(&mut self, s1: &Packet) -> Result<Packet, HandshakeError> {
        let server_speaks_digest = super::version_field(s1) != [0; 4];
        let c2: Packet = match self.requested {
            HandshakeKind::Digest if server_speaks_digest => {
                let (_, server_digest) = digest::find_digest(s1, digest::SERVER_KEY_PUBLIC)
                    .ok_or(HandshakeError::InvalidServerDigest)?;
                let mut c2 = super::signed_filler(&self.random);
                digest::sign_packet(&mut c2, digest::PLAYER_KEY, &server_digest);
                self.negotiated = Some(HandshakeKind::Digest);
                c2
            }
            _ => {
                self.negotiated = Some(HandshakeKind::Plain);
                *s1
            }
        };
        Ok(c2)
    }
}
