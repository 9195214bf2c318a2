//! A tiny RFC 6455 client-side codec for the tests: the upgrade request,
//! masked client frames, and unmasked server frames. Written here, not
//! taken from the core, so the tests check the server against the RFC
//! rather than against itself.
//
//! No tests in here: `memory_budget` includes it and must stay the only
//! test in its binary.
// Each test binary uses part of it.
#![allow(dead_code)]

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
