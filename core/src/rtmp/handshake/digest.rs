//! The digest ("complex") handshake's keys and HMAC-SHA256 arithmetic.
//!
//! Flash Player 9+ hides a 32-byte HMAC-SHA256 digest inside C1 and expects
//! one inside S1; ffmpeg, OBS (librtmp) and most servers (nginx-rtmp, Red5,
//! SRS) follow suit. It is not security, only a handshake signature: the keys
//! are public (widely published since rtmpdump). The layout:
//!
//! * the digest sits at `offset = (sum of 4 bytes at base) % 728 + base + 4`,
//!   with `base` either 8 or 772 (see [`DigestScheme`]);
//! * it is HMAC-SHA256 over the 1536-byte packet *without* those 32 bytes,
//!   keyed by the public part of the sender's key (30 bytes "Genuine Adobe
//!   Flash Player 001" for clients, 36 bytes "Genuine Adobe Flash Media Server
//!   001" for servers);
//! * C2/S2 end in a signature: HMAC-SHA256 over their first 1504 bytes, keyed
//!   by HMAC-SHA256(sender's full key, peer's digest). The full keys append 32
//!   fixed bytes to the public parts.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Length of C1, C2, S1 and S2.
pub const PACKET_LEN: usize = 1536;
/// Length of an HMAC-SHA256 digest.
pub const DIGEST_LEN: usize = 32;
/// Bytes of C2/S2 covered by the trailing signature.
pub(super) const SIGNED_LEN: usize = PACKET_LEN - DIGEST_LEN;

/// One C1/C2/S1/S2 packet.
pub(super) type Packet = [u8; PACKET_LEN];

/// Key for the client's C1 digest: the public part of the Flash Player key.
pub(super) const PLAYER_KEY_PUBLIC: &[u8; 30] = b"Genuine Adobe Flash Player 001";
/// Key for the server's S1 digest: the public part of the Flash Media Server key.
pub(super) const SERVER_KEY_PUBLIC: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";
/// Full Flash Player key (public part + 32 fixed bytes); derives the C2 signature key.
pub(super) const PLAYER_KEY: &[u8; 62] = b"Genuine Adobe Flash Player 001\
\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
/// Full Flash Media Server key (public part + the same 32 bytes); derives the S2 signature key.
pub(super) const SERVER_KEY: &[u8; 68] = b"Genuine Adobe Flash Media Server 001\
\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";

/// Where in a C1/S1 packet the digest is placed.
///
/// Implementations number these differently (crtmpserver calls the base-8
/// layout "scheme 0", other write-ups call it "scheme 1"), so the variants are
/// named for the base offset instead. Flash Player and ffmpeg put C1's digest
/// at base 8; the base-772 layout is what RTMPE clients use and some players
/// send for plain RTMP too. A server answers with the layout the client used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestScheme {
    /// Offset from the 4 bytes at 8..12; digest lies within bytes 12..772.
    Base8,
    /// Offset from the 4 bytes at 772..776; digest lies within bytes 776..1536.
    Base772,
}

impl DigestScheme {
    /// Both layouts, in the order a receiver tries them.
    pub(super) const ALL: [DigestScheme; 2] = [DigestScheme::Base8, DigestScheme::Base772];

    const fn base(self) -> usize {
        match self {
            DigestScheme::Base8 => 8,
            DigestScheme::Base772 => 772,
        }
    }

    /// Position of the digest in `packet`. Always leaves room for 32 bytes:
    /// at most 727 + 12 + 32 = 771 for base 8, 727 + 776 + 32 = 1535 for 772.
    pub(super) fn offset(self, packet: &Packet) -> usize {
        let base = self.base();
        let sum: usize = packet
            .iter()
            .skip(base)
            .take(4)
            .map(|&b| usize::from(b))
            .sum();
        sum % 728 + base + 4
    }
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub(super) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length (longer ones are hashed first), so
    // `new_from_slice` cannot fail; the fallback only satisfies the types.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; DIGEST_LEN];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC over `packet` leaving out the 32 bytes at `offset`.
fn digest_at(packet: &Packet, offset: usize, key: &[u8]) -> Option<[u8; DIGEST_LEN]> {
    let (head, rest) = packet.split_at_checked(offset)?;
    let tail = rest.get(DIGEST_LEN..)?;
    Some(hmac_sha256(key, &[head, tail]))
}

/// Looks for a valid digest made with `key`, trying both layouts.
///
/// Returns the layout and the digest (the peer's digest feeds the signature
/// of the packet we send back).
pub(super) fn find_digest(packet: &Packet, key: &[u8]) -> Option<(DigestScheme, [u8; DIGEST_LEN])> {
    DigestScheme::ALL.into_iter().find_map(|scheme| {
        let offset = scheme.offset(packet);
        let found = packet.get(offset..offset.checked_add(DIGEST_LEN)?)?;
        let expected = digest_at(packet, offset, key)?;
        (found == expected).then_some((scheme, expected))
    })
}

/// Writes a digest made with `key` into `packet` at `scheme`'s position and
/// returns it. The bytes that pick the position must already be final.
pub(super) fn imprint_digest(
    packet: &mut Packet,
    scheme: DigestScheme,
    key: &[u8],
) -> [u8; DIGEST_LEN] {
    let offset = scheme.offset(packet);
    let digest = digest_at(packet, offset, key).unwrap_or([0; DIGEST_LEN]);
    if let Some(slot) = offset
        .checked_add(DIGEST_LEN)
        .and_then(|end| packet.get_mut(offset..end))
    {
        slot.copy_from_slice(&digest);
    }
    digest
}

/// The trailing signature of C2/S2: HMAC over `signed` (the first 1504
/// bytes) keyed by HMAC(`full_key`, `peer_digest`).
pub(super) fn signature(
    full_key: &[u8],
    peer_digest: &[u8; DIGEST_LEN],
    signed: &[u8],
) -> [u8; DIGEST_LEN] {
    let key = hmac_sha256(full_key, &[peer_digest]);
    hmac_sha256(&key, &[signed])
}

/// Fills `packet` with filler bytes followed by the signature over them.
pub(super) fn sign_packet(packet: &mut Packet, full_key: &[u8], peer_digest: &[u8; DIGEST_LEN]) {
    let (signed, sig) = packet.split_at_mut(SIGNED_LEN);
    sig.copy_from_slice(&signature(full_key, peer_digest, signed));
}

/// Checks the trailing signature of a C2/S2 packet.
pub(super) fn verify_signature(
    packet: &Packet,
    full_key: &[u8],
    peer_digest: &[u8; DIGEST_LEN],
) -> bool {
    let (signed, sig) = packet.split_at(SIGNED_LEN);
    sig == signature(full_key, peer_digest, signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_keys_extend_public_parts() {
        assert!(PLAYER_KEY.starts_with(PLAYER_KEY_PUBLIC));
        assert!(SERVER_KEY.starts_with(SERVER_KEY_PUBLIC));
        assert_eq!(PLAYER_KEY[30..], SERVER_KEY[36..]);
        assert_eq!(PLAYER_KEY[30..34], [0xF0, 0xEE, 0xC2, 0x4A]);
        assert_eq!(PLAYER_KEY[58..], [0xCF, 0xEB, 0x31, 0xAE]);
    }

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let expected = [
            0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
            0x75, 0xc7, //
            0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec,
            0x38, 0x43,
        ];
        assert_eq!(mac, expected);
    }

    #[test]
    fn offsets_stay_in_their_half() {
        let mut p = [0u8; PACKET_LEN];
        assert_eq!(DigestScheme::Base8.offset(&p), 12);
        assert_eq!(DigestScheme::Base772.offset(&p), 776);
        p[8..12].fill(0xFF);
        p[772..776].fill(0xFF);
        // 4 * 255 = 1020; 1020 % 728 = 292.
        assert_eq!(DigestScheme::Base8.offset(&p), 292 + 12);
        assert_eq!(DigestScheme::Base772.offset(&p), 292 + 776);
        for sum in 0..=1020usize {
            let d = sum % 728;
            assert!(d + 12 + DIGEST_LEN <= 772);
            assert!(d + 776 + DIGEST_LEN <= PACKET_LEN);
        }
    }

    #[test]
    fn imprinted_digest_is_found() {
        for scheme in DigestScheme::ALL {
            let mut p = [0u8; PACKET_LEN];
            for (i, b) in p.iter_mut().enumerate() {
                *b = (i * 31 % 251) as u8;
            }
            let d = imprint_digest(&mut p, scheme, SERVER_KEY_PUBLIC);
            assert_eq!(find_digest(&p, SERVER_KEY_PUBLIC), Some((scheme, d)));
            assert_eq!(find_digest(&p, PLAYER_KEY_PUBLIC), None);
        }
    }
}
