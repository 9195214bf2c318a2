//! Signed URLs: `token = hex(HMAC-SHA256(secret, "<path>:<expires>"))`.
//!
//! `<path>` is the scope path without its leading slash followed by the
//! stream name for a publish or play (`live/cam`, `live/room1/cam`), and the
//! scope path alone for a WebSocket connect (`chat/room1`); `<expires>` is
//! the decimal Unix time (seconds) after which the token is refused. The
//! token and `expires` travel as query arguments (`cam?token=…&expires=…`).
//! docs/security.md states the rule for other languages.

use alloc::string::String;
use core::fmt;
use core::fmt::Write as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a signed URL was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// No `token` or no `expires` argument.
    Missing,
    /// `expires` is not a decimal number.
    BadExpires,
    /// `expires` lies in the past.
    Expired {
        /// The token's `expires`.
        expires: u64,
        /// The server's Unix time.
        now: u64,
    },
    /// The token is not the signature of this path and `expires` (wrong
    /// secret, another stream or app, or edited).
    Mismatch,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Missing => f.write_str("signed URL required: token and expires missing"),
            TokenError::BadExpires => f.write_str("signed URL: expires is not a Unix time"),
            TokenError::Expired { expires, now } => {
                write!(f, "signed URL expired at {expires} (server time {now})")
            }
            TokenError::Mismatch => f.write_str("signed URL: token does not match this path"),
        }
    }
}

fn mac(secret: &[u8], path: &str, expires: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => Hmac::<Sha256>::new(&Default::default()),
    };
    mac.update(path.as_bytes());
    mac.update(b":");
    mac.update(expires.as_bytes());
    mac
}

/// The token for `path` (no leading slash) valid until `expires`.
pub fn sign(secret: &[u8], path: &str, expires: u64) -> String {
    let expires = alloc::format!("{expires}");
    let tag = mac(secret, path.trim_start_matches('/'), &expires)
        .finalize()
        .into_bytes();
    let mut out = String::with_capacity(64);
    for b in tag.iter() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Checks `token` and `expires` (as found in the query) for `path` at Unix
/// time `now`. The comparison takes the same time whatever the token.
pub fn verify(
    secret: &[u8],
    path: &str,
    token: Option<&str>,
    expires: Option<&str>,
    now: u64,
) -> Result<(), TokenError> {
    let (Some(token), Some(expires_text)) = (token, expires) else {
        return Err(TokenError::Missing);
    };
    if expires_text.is_empty() || !expires_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::BadExpires);
    }
    let expires: u64 = expires_text.parse().map_err(|_| TokenError::BadExpires)?;
    let mut tag = [0u8; 32];
    if !decode_hex(token, &mut tag) {
        return Err(TokenError::Mismatch);
    }
    mac(secret, path.trim_start_matches('/'), expires_text)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Mismatch)?;
    // After the signature: an attacker learns nothing about the secret
    // from which error comes back, only whether the URL was genuine.
    if expires < now {
        return Err(TokenError::Expired { expires, now });
    }
    Ok(())
}

/// Decodes exactly `out.len()` bytes of hex (either case).
fn decode_hex(text: &str, out: &mut [u8]) -> bool {
    if text.len() != out.len() * 2 {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let (Some(hi), Some(lo)) = (
            pair.first().and_then(|c| (*c as char).to_digit(16)),
            pair.get(1).and_then(|c| (*c as char).to_digit(16)),
        ) else {
            return false;
        };
        *byte = u8::try_from(hi * 16 + lo).unwrap_or(0);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"s3cret",
        //   b"live/cam:1700000000",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"s3cret", "live/cam", 1_700_000_000),
            "1668cb0b4b6279a5d3e136284f03b343b45ad3c7829c4f7a2d9eb50df2506373"
        );
    }

    #[test]
    fn verify_accepts_and_refuses() {
        let t = sign(b"k", "live/r/cam", 1000);
        assert_eq!(
            verify(b"k", "live/r/cam", Some(&t), Some("1000"), 999),
            Ok(())
        );
        assert_eq!(
            verify(
                b"k",
                "/live/r/cam",
                Some(&t.to_uppercase()),
                Some("1000"),
                1000
            ),
            Ok(())
        );
        assert_eq!(
            verify(b"k", "live/r/cam", Some(&t), Some("1000"), 1001),
            Err(TokenError::Expired {
                expires: 1000,
                now: 1001
            })
        );
        assert_eq!(
            verify(b"k", "live/r/cam2", Some(&t), Some("1000"), 0),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            verify(b"k", "other/r/cam", Some(&t), Some("1000"), 0),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            verify(b"x", "live/r/cam", Some(&t), Some("1000"), 0),
            Err(TokenError::Mismatch)
        );
        // Moving the expiry breaks the signature.
        assert_eq!(
            verify(b"k", "live/r/cam", Some(&t), Some("2000"), 0),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            verify(b"k", "live/r/cam", Some("zz"), Some("1000"), 0),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            verify(b"k", "live/r/cam", None, Some("1000"), 0),
            Err(TokenError::Missing)
        );
        assert_eq!(
            verify(b"k", "live/r/cam", Some(&t), None, 0),
            Err(TokenError::Missing)
        );
        assert_eq!(
            verify(b"k", "live/r/cam", Some(&t), Some("-1"), 0),
            Err(TokenError::BadExpires)
        );
    }
}
