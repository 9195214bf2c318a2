//! Handshake tests: client ↔ server pairs, hand-built C1s, known answers
//! computed outside Rust, error paths, and fuzzed input.
//!
//! The digest checks here recompute every HMAC directly from the byte
//! layout (concatenating slices, own offset arithmetic) instead of calling
//! the module's helpers, so a shared mistake cannot hide.

use alloc::string::ToString;
use alloc::vec::Vec;

use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha2::Sha256;

use super::*;

const FIXED: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E,
    0x57, //
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const FP: &[u8] = b"Genuine Adobe Flash Player 001";
const FMS: &[u8] = b"Genuine Adobe Flash Media Server 001";

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn full(public: &[u8]) -> Vec<u8> {
    [public, &FIXED[..]].concat()
}

fn offset(packet: &[u8], base: usize) -> usize {
    packet[base..base + 4]
        .iter()
        .map(|&b| b as usize)
        .sum::<usize>()
        % 728
        + base
        + 4
}

/// Checks the digest at `base`'s position; returns it.
fn check_digest(packet: &[u8], base: usize, key: &[u8]) -> Option<[u8; 32]> {
    let o = offset(packet, base);
    let without = [&packet[..o], &packet[o + 32..]].concat();
    let d = hmac(key, &without);
    (packet[o..o + 32] == d).then_some(d)
}

/// The trailing signature of C2/S2 under `full_key` and the peer's digest.
fn check_signature(packet: &[u8], full_key: &[u8], peer_digest: &[u8; 32]) -> bool {
    let key = hmac(full_key, peer_digest);
    packet[1504..] == hmac(&key, &packet[..1504])
}

fn pattern(mul: usize, add: usize) -> [u8; RANDOM_LEN] {
    core::array::from_fn(|i| (i * mul + add) as u8)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// C0+C1 as a Flash Player would build it, digest at `base` (8 or 772).
fn flash_c0c1(random: &[u8; RANDOM_LEN], base: usize) -> (Vec<u8>, [u8; 32]) {
    let mut c1 = random.to_vec();
    c1[..8].copy_from_slice(&[0, 0, 0, 0, 10, 0, 45, 2]);
    let o = offset(&c1, base);
    let without = [&c1[..o], &c1[o + 32..]].concat();
    let d = hmac(FP, &without);
    c1[o..o + 32].copy_from_slice(&d);
    ([&[3u8][..], &c1].concat(), d)
}

/// Runs a client and a server against each other; returns (C0+C1+C2, S0+S1+S2).
fn run_pair(client: &mut ClientHandshake, server: &mut ServerHandshake) -> (Vec<u8>, Vec<u8>) {
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        while let Some(b) = client.poll_transmit() {
            let n = server.handle_input(&b).unwrap();
            assert_eq!(n, b.len());
            to_server.extend_from_slice(&b);
        }
        while let Some(b) = server.poll_transmit() {
            let n = client.handle_input(&b).unwrap();
            assert_eq!(n, b.len());
            to_client.extend_from_slice(&b);
        }
    }
    assert!(client.is_complete() && server.is_complete());
    (to_server, to_client)
}

#[test]
fn plain_pair() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0x1111_2222, HandshakeKind::Plain);
    let mut server = ServerHandshake::new(&pattern(13, 5), 0x0102_0304);
    let (c, s) = run_pair(&mut client, &mut server);
    assert_eq!((c.len(), s.len()), (3073, 3073));
    assert_eq!(server.kind(), Some(HandshakeKind::Plain));
    assert_eq!(server.digest_scheme(), None);
    assert_eq!(client.kind(), Some(HandshakeKind::Plain));
    let (c1, c2) = (&c[1..1537], &c[1537..]);
    let (s1, s2) = (&s[1..1537], &s[1537..]);
    assert_eq!((c[0], s[0]), (3, 3));
    assert_eq!(c1[..8], [0x11, 0x11, 0x22, 0x22, 0, 0, 0, 0]);
    assert_eq!(s1[..8], [1, 2, 3, 4, 0, 0, 0, 0]);
    assert_eq!(s1[8..], pattern(13, 5)[8..]);
    assert_eq!(s2, c1, "S2 echoes C1");
    assert_eq!(c2, s1, "C2 echoes S1");
}

#[test]
fn digest_pair_verified_independently() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Digest);
    let mut server = ServerHandshake::new(&pattern(13, 5), 0x0102_0304);
    let (c, s) = run_pair(&mut client, &mut server);
    assert_eq!(server.kind(), Some(HandshakeKind::Digest));
    assert_eq!(server.digest_scheme(), Some(DigestScheme::Base8));
    assert_eq!(client.kind(), Some(HandshakeKind::Digest));
    let (c1, c2) = (&c[1..1537], &c[1537..]);
    let (s1, s2) = (&s[1..1537], &s[1537..]);
    assert_ne!(c1[4..8], [0; 4]);
    assert_eq!(s1[..8], [1, 2, 3, 4, 0x0D, 0x0E, 0x0A, 0x0D]);
    let client_digest = check_digest(c1, 8, FP).expect("C1 digest at base 8");
    let server_digest = check_digest(s1, 8, FMS).expect("S1 digest at base 8, as C1's");
    assert!(check_digest(s1, 772, FMS).is_none());
    assert!(check_signature(s2, &full(FMS), &client_digest));
    assert!(check_signature(c2, &full(FP), &server_digest));
}

/// Expected values computed with Python's `hmac`/`hashlib` from the same
/// byte patterns (client random `i*7+3`, server random `i*13+5`).
#[test]
fn digest_known_answers() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Digest);
    let mut server = ServerHandshake::new(&pattern(13, 5), 0x0102_0304);
    let (c, s) = run_pair(&mut client, &mut server);
    let c1_digest = hex("612af37c38c4a1b74e5737fc4021ded17ed92a9431c19bc665cf421131bad8a6");
    let s1_digest = hex("26fe5854cb94cd0b7a5c01a6e2e5f1b81c2bed20772528e40cb0f74d18c32798");
    let s2_sig = hex("6d8e83f5674f28ac9c86654fe16d549d82afaf4c8e2c78023e558efcaefc2657");
    let c2_sig = hex("9b7a57d1ffd59e8ec594a673959c549e067a010ac492091b62d168ca0d6548c3");
    assert_eq!(c[1 + 290..1 + 290 + 32], c1_digest[..]);
    assert_eq!(s[1 + 526..1 + 526 + 32], s1_digest[..]);
    assert_eq!(s[1537 + 1504..], s2_sig[..]);
    assert_eq!(c[1537 + 1504..], c2_sig[..]);
    assert_eq!(s[1537..1537 + 1504], pattern(13, 5)[32..]);
}

fn server_detects(base: usize, scheme: DigestScheme) {
    let (c0c1, client_digest) = flash_c0c1(&pattern(11, 1), base);
    let mut server = ServerHandshake::new(&pattern(13, 5), 0);
    assert_eq!(server.handle_input(&c0c1), Ok(1537));
    assert_eq!(server.kind(), Some(HandshakeKind::Digest));
    assert_eq!(server.digest_scheme(), Some(scheme));
    let s = server.poll_transmit().unwrap();
    assert_eq!(s.len(), 3073);
    let (s1, s2) = (&s[1..1537], &s[1537..]);
    assert!(
        check_digest(s1, base, FMS).is_some(),
        "S1 digest uses C1's layout"
    );
    assert!(check_signature(s2, &full(FMS), &client_digest));
    assert_eq!(server.poll_transmit(), None);
    assert_eq!(server.handle_input(&[0; 1536]), Ok(1536));
    assert!(server.is_complete());
}

#[test]
fn scheme_0_base_772_detected() {
    server_detects(772, DigestScheme::Base772);
}

#[test]
fn scheme_1_base_8_detected() {
    server_detects(8, DigestScheme::Base8);
}

#[test]
fn versioned_c1_without_valid_digest_gets_plain() {
    let (mut c0c1, _) = flash_c0c1(&pattern(11, 1), 8);
    let o = 1 + offset(&c0c1[1..], 8);
    c0c1[o] ^= 1;
    let mut server = ServerHandshake::new(&pattern(13, 5), 0);
    server.handle_input(&c0c1).unwrap();
    assert_eq!(server.kind(), Some(HandshakeKind::Plain));
    let s = server.poll_transmit().unwrap();
    assert_eq!(s[1537..], c0c1[1..]);
    assert_eq!(s[5..9], [0; 4]);
}

#[test]
fn zero_version_c1_gets_plain_even_with_digest() {
    let (mut c0c1, _) = flash_c0c1(&pattern(11, 1), 8);
    c0c1[5..9].fill(0);
    let mut server = ServerHandshake::new(&pattern(13, 5), 0);
    server.handle_input(&c0c1).unwrap();
    assert_eq!(server.kind(), Some(HandshakeKind::Plain));
}

#[test]
fn server_rejects_other_versions() {
    for v in [0u8, 1, 4, 6, 8, b'G', b'P', 0xFF] {
        let mut server = ServerHandshake::new(&pattern(13, 5), 0);
        let input = [&[v][..], &[0; 1536]].concat();
        assert_eq!(
            server.handle_input(&input),
            Err(HandshakeError::UnsupportedVersion(v))
        );
        // Dead for good.
        assert_eq!(
            server.handle_input(&[3]),
            Err(HandshakeError::UnsupportedVersion(v))
        );
        assert_eq!(server.poll_transmit(), None);
        assert!(!server.is_complete());
    }
    let mut server = ServerHandshake::new(&pattern(13, 5), 0);
    assert_eq!(
        server.handle_input(b"GET / HTTP/1.1\r\n"),
        Err(HandshakeError::UnsupportedVersion(b'G'))
    );
}

#[test]
fn error_display() {
    let http = HandshakeError::UnsupportedVersion(b'G').to_string();
    assert_eq!(
        http,
        "unsupported RTMP handshake version 71 (only version 3 is served); \
         byte 0x47 is ASCII 'G', this looks like an HTTP request, not RTMP"
    );
    let rtmpe = HandshakeError::UnsupportedVersion(6).to_string();
    assert!(
        rtmpe.contains("version 6") && rtmpe.contains("RTMPE"),
        "{rtmpe}"
    );
    assert_eq!(
        HandshakeError::UnsupportedVersion(4).to_string(),
        "unsupported RTMP handshake version 4 (only version 3 is served)"
    );
    assert_eq!(
        HandshakeError::InvalidServerDigest.to_string(),
        "server's S1 carries no valid digest"
    );
    assert!(
        HandshakeError::InvalidServerSignature
            .to_string()
            .contains("S2")
    );
}

#[test]
fn client_rejects_bad_s0() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Digest);
    assert_eq!(client.poll_transmit().unwrap().len(), 1537);
    assert_eq!(
        client.handle_input(&[6, 0, 0]),
        Err(HandshakeError::UnsupportedVersion(6))
    );
    assert_eq!(
        client.handle_input(&[3]),
        Err(HandshakeError::UnsupportedVersion(6))
    );
}

/// S0+S1+S2 from a real server, for tampering.
fn server_reply(client: &mut ClientHandshake) -> Vec<u8> {
    let mut server = ServerHandshake::new(&pattern(13, 5), 0);
    server
        .handle_input(&client.poll_transmit().unwrap())
        .unwrap();
    server.poll_transmit().unwrap().to_vec()
}

#[test]
fn digest_client_rejects_bad_s1_digest() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Digest);
    let mut reply = server_reply(&mut client);
    reply[1 + 526] ^= 0x80; // inside S1's digest (see digest_known_answers)
    assert_eq!(
        client.handle_input(&reply),
        Err(HandshakeError::InvalidServerDigest)
    );
    assert_eq!(client.poll_transmit(), None, "no C2 after a bad S1");
}

#[test]
fn digest_client_rejects_bad_s2_signature() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Digest);
    let mut reply = server_reply(&mut client);
    reply[3072] ^= 1;
    assert_eq!(
        client.handle_input(&reply),
        Err(HandshakeError::InvalidServerSignature)
    );
    assert!(!client.is_complete());
}

#[test]
fn digest_client_falls_back_for_plain_server() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Digest);
    let c0c1 = client.poll_transmit().unwrap();
    // A spec-only server: S1 version zero, S2 echoes C1.
    let s1 = {
        let mut s1 = pattern(13, 5);
        s1[..8].fill(0);
        s1
    };
    let reply = [&[3u8][..], &s1, &c0c1[1..]].concat();
    assert_eq!(client.handle_input(&reply), Ok(3073));
    assert!(client.is_complete());
    assert_eq!(client.kind(), Some(HandshakeKind::Plain));
    assert_eq!(client.poll_transmit().unwrap()[..], s1[..], "C2 echoes S1");
}

#[test]
fn byte_at_a_time() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Digest);
    let mut server = ServerHandshake::new(&pattern(13, 5), 0);
    let c0c1 = client.poll_transmit().unwrap();
    for (i, b) in c0c1.iter().enumerate() {
        assert_eq!(
            server.poll_transmit(),
            None,
            "nothing before C1 is complete (byte {i})"
        );
        assert_eq!(server.handle_input(&[*b]), Ok(1));
    }
    let reply = server.poll_transmit().unwrap();
    for b in reply.iter() {
        assert!(!client.is_complete());
        assert_eq!(client.handle_input(&[*b]), Ok(1));
    }
    assert!(client.is_complete());
    let c2 = client.poll_transmit().unwrap();
    assert_eq!(c2.len(), 1536);
    for b in c2.iter() {
        assert!(!server.is_complete());
        assert_eq!(server.handle_input(&[*b]), Ok(1));
    }
    assert!(server.is_complete());
    assert_eq!(server.handle_input(&[1]), Ok(0));
    assert_eq!(client.handle_input(&[1]), Ok(0));
    assert_eq!(server.kind(), Some(HandshakeKind::Digest));
}

#[test]
fn bytes_after_c2_are_left_alone() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Digest);
    let mut server = ServerHandshake::new(&pattern(13, 5), 0);
    let c0c1 = client.poll_transmit().unwrap();
    let reply = {
        let mut probe = ServerHandshake::new(&pattern(13, 5), 0);
        probe.handle_input(&c0c1).unwrap();
        probe.poll_transmit().unwrap()
    };
    // Server's reply plus its first chunk in one read.
    let to_client = [&reply[..], b"\x02chunk"].concat();
    assert_eq!(client.handle_input(&to_client), Ok(3073));
    let c2 = client.poll_transmit().unwrap();
    // C0+C1+C2 and the client's first chunk in one read.
    let to_server = [&c0c1[..], &c2[..], b"\x03connect"].concat();
    assert_eq!(server.handle_input(&to_server), Ok(3073));
    assert!(server.is_complete());
    assert_eq!(server.poll_transmit().unwrap(), reply);
}

#[test]
fn client_queues_c2_behind_unpolled_c0c1() {
    let mut client = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Plain);
    let mut server = ServerHandshake::new(&pattern(13, 5), 0);
    let c0c1 = ClientHandshake::new(&pattern(7, 3), 0, HandshakeKind::Plain)
        .poll_transmit()
        .unwrap();
    server.handle_input(&c0c1).unwrap();
    client
        .handle_input(&server.poll_transmit().unwrap())
        .unwrap();
    let all = client.poll_transmit().unwrap();
    assert_eq!(all.len(), 3073);
    assert_eq!(all[..1537], c0c1[..]);
    assert_eq!(client.poll_transmit(), None);
}

fn feed_server(data: &[u8], cuts: &[usize]) {
    let mut server = ServerHandshake::new(&pattern(13, 5), 7);
    let mut total = 0;
    for piece in split(data, cuts) {
        match server.handle_input(piece) {
            Ok(n) => {
                assert!(n <= piece.len());
                total += n;
            }
            Err(HandshakeError::UnsupportedVersion(v)) => {
                assert_ne!(v, 3);
                return;
            }
            Err(e) => panic!("server cannot fail with {e}"),
        }
        if let Some(out) = server.poll_transmit() {
            assert_eq!(out.len(), 3073);
        }
    }
    assert!(total <= 3073);
    assert_eq!(server.is_complete(), total == 3073);
}

fn feed_client(data: &[u8], cuts: &[usize], kind: HandshakeKind) {
    let mut client = ClientHandshake::new(&pattern(7, 3), 7, kind);
    let mut total = 0;
    for piece in split(data, cuts) {
        let Ok(n) = client.handle_input(piece) else {
            return;
        };
        assert!(n <= piece.len());
        total += n;
        while client.poll_transmit().is_some() {}
    }
    assert!(total <= 3073);
    assert_eq!(client.is_complete(), total == 3073);
}

fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = data;
    for &c in cuts {
        let (a, b) = rest.split_at(c.min(rest.len()));
        pieces.push(a);
        rest = b;
    }
    pieces.push(rest);
    pieces
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..4000),
        cuts in prop::collection::vec(0usize..2000, 0..6),
        force_v3 in any::<bool>(),
        force_version_field in any::<bool>(),
    ) {
        let mut data = data;
        if force_v3 && !data.is_empty() {
            data[0] = 3;
        }
        // Non-zero C1/S1 version field sends the input down the digest paths.
        if force_version_field && data.len() > 5 {
            data[5] |= 1;
        }
        feed_server(&data, &cuts);
        feed_client(&data, &cuts, HandshakeKind::Plain);
        feed_client(&data, &cuts, HandshakeKind::Digest);
    }
}
