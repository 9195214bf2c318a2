//! A tiny RFC 6455 client-side codec for the tests: the upgrade request,
//! masked client frames, and unmasked server frames. Written here, not
//! taken from the core, so the tests check the server against the RFC
//! rather than against itself.

/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Close frame opcode.
pub const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
/// Pong frame opcode.
pub const PONG: u8 = 0xA;

/// The HTTP/1.1 upgrade request for `path` (RFC 6455 §4.1; the key is the
/// RFC's own example nonce).
pub fn upgrade_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// `Sec-WebSocket-Accept` for the request's key (RFC 6455 §1.3's example).
pub const EXPECTED_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// One whole client frame (FIN set), its payload masked with `mask`.
pub fn client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// A masked text frame.
pub fn client_text(text: &str, mask: [u8; 4]) -> Vec<u8> {
    client_frame(TEXT, text.as_bytes(), mask)
}

/// Takes one whole server frame off the front of `buf`: `Ok(None)` while
/// it is incomplete. Servers send unmasked frames; tern sends whole
/// (unfragmented) messages.
pub fn server_frame(buf: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>, String> {
    let [first, second, ..] = buf[..] else {
        return Ok(None);
    };
    if first & 0x80 == 0 || first & 0x70 != 0 {
        return Err(format!("unexpected frame flags {first:#04x}"));
    }
    if second & 0x80 != 0 {
        return Err("server frame is masked".into());
    }
    let (len, header) = match second & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()), 10),
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    let end = header + usize::try_from(len).map_err(|_| "frame too long")?;
    if buf.len() < end {
        return Ok(None);
    }
    let payload = buf[header..end].to_vec();
    buf.drain(..end);
    Ok(Some((first & 0x0F, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trips_lengths() {
        for len in [0, 125, 126, 300, 70_000] {
            let payload = vec![7u8; len];
            let frame = client_frame(TEXT, &payload, [1, 2, 3, 4]);
            // Unmask and re-read the frame as a server frame would be.
            let mask_at = frame.len() - len - 4;
            let mut unmasked = frame[..mask_at].to_vec();
            unmasked[1] &= 0x7F;
            unmasked.extend(
                frame[mask_at + 4..]
                    .iter()
                    .zip([1u8, 2, 3, 4].iter().cycle())
                    .map(|(b, m)| b ^ m),
            );
            let (opcode, got) = server_frame(&mut unmasked).unwrap().unwrap();
            assert_eq!((opcode, got), (TEXT, payload));
            assert!(unmasked.is_empty());
        }
    }
}
