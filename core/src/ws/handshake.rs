//! The HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 §4.2).
//!
//! The request head is parsed with `httparse`, bounded by [`MAX_HEAD`].
//! Refusals are answered with `400 Bad Request` (or `426 Upgrade Required`
//! plus `Sec-WebSocket-Version: 13` for a wrong version) and a one-line
//! reason; then the connection closes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use core::fmt;
use sha1::{Digest, Sha1};

/// Largest request head accepted, in bytes.
pub const MAX_HEAD: usize = 16 * 1024;

/// Most header lines accepted in the request head.
pub const MAX_HEADERS: usize = 64;

/// The GUID RFC 6455 §1.3 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Subprotocols tern offers (`Sec-WebSocket-Protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subprotocol {
    /// `tern.v1`: the JSON protocol (also used when the client asks for none).
    TernV1,
    /// `chat`: Red5 chat-demo compatibility (plain text lines).
    Chat,
}

impl Subprotocol {
    /// The token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Subprotocol::TernV1 => "tern.v1",
            Subprotocol::Chat => "chat",
        }
    }

    fn from_token(token: &str) -> Option<Subprotocol> {
        // Subprotocol tokens are case-sensitive (RFC 6455 §11.3.4).
        match token {
            "tern.v1" => Some(Subprotocol::TernV1),
            "chat" => Some(Subprotocol::Chat),
            _ => None,
        }
    }
}

/// Why an upgrade request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeError {
    /// No complete head within [`MAX_HEAD`] bytes.
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// Not parseable as an HTTP/1.x request.
    Malformed(&'static str),
    /// Method other than `GET`.
    NotGet,
    /// HTTP/1.0.
    OldHttp,
    /// A required header is missing (name).
    MissingHeader(&'static str),
    /// A header has a value we cannot accept (name).
    BadHeader(&'static str),
    /// A header that must appear once appears twice (name).
    DuplicateHeader(&'static str),
    /// `Sec-WebSocket-Version` other than 13 (answered with 426).
    UnsupportedVersion,
}

impl UpgradeError {
    /// The HTTP status answered.
    pub fn status(&self) -> u16 {
        match self {
            UpgradeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::HeadTooLarge => {
                write!(f, "request head longer than {MAX_HEAD} bytes")
            }
            UpgradeError::TooManyHeaders => {
                write!(f, "more than {MAX_HEADERS} header lines")
            }
            UpgradeError::Malformed(why) => write!(f, "malformed HTTP request: {why}"),
            UpgradeError::NotGet => f.write_str("method must be GET"),
            UpgradeError::OldHttp => f.write_str("HTTP/1.1 or later required"),
            UpgradeError::MissingHeader(name) => write!(f, "missing header {name}"),
            UpgradeError::BadHeader(name) => write!(f, "bad value of header {name}"),
            UpgradeError::DuplicateHeader(name) => write!(f, "header {name} given twice"),
            UpgradeError::UnsupportedVersion => {
                f.write_str("unsupported Sec-WebSocket-Version (13 required)")
            }
        }
    }
}

impl core::error::Error for UpgradeError {}

/// A valid upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The request target without its leading `/`: `app[/room…][?query]`
    /// (absolute-form targets are reduced to their path and query).
    pub target: String,
    /// The client's `Sec-WebSocket-Key`, as sent (trimmed).
    pub key: String,
    /// The subprotocol selected: the first of the client's offers that tern
    /// speaks, or `None` (no offer, or no known one).
    pub subprotocol: Option<Subprotocol>,
}

impl UpgradeRequest {
    /// The path part of [`target`](Self::target) (before `?`).
    pub fn path(&self) -> &str {
        crate::scope_path::split_query(&self.target).0
    }
}

/// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// True once `head` holds a blank line ending the request head (CRLF or
/// bare LF line endings, as httparse accepts). `from` is where new bytes
/// begin, so repeated calls scan each byte a bounded number of times.
pub(crate) fn head_complete(head: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(3);
    let tail = head.get(start..).unwrap_or_default();
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

/// Parses a request head. `Ok(None)`: incomplete, feed more bytes.
/// `Ok(Some((request, n)))`: the head is the first `n` bytes.
pub fn parse_request(head: &[u8]) -> Result<Option<(UpgradeRequest, usize)>, UpgradeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let consumed = match request.parse(head) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if head.len() >= MAX_HEAD {
                Err(UpgradeError::HeadTooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(UpgradeError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(UpgradeError::Malformed("bad version")),
        Err(httparse::Error::Token) => return Err(UpgradeError::Malformed("bad method")),
        Err(_) => return Err(UpgradeError::Malformed("bad request line or header")),
    };
    if consumed > MAX_HEAD {
        return Err(UpgradeError::HeadTooLarge);
    }
    if request.method != Some("GET") {
        return Err(UpgradeError::NotGet);
    }
    if request.version != Some(1) {
        return Err(UpgradeError::OldHttp);
    }
    let path = request
        .path
        .ok_or(UpgradeError::Malformed("no request target"))?;
    let mut host = false;
    let mut upgrade = false;
    let mut connection = false;
    let mut version: Option<&str> = None;
    let mut key: Option<&str> = None;
    let mut subprotocol: Option<Subprotocol> = None;
    for header in request.headers.iter() {
        let name = header.name;
        let text = |label: &'static str| {
            core::str::from_utf8(header.value)
                .map(str::trim)
                .map_err(|_| UpgradeError::BadHeader(label))
        };
        if name.eq_ignore_ascii_case("host") {
            host = true;
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(text("Upgrade")?, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(text("Connection")?, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            if version.is_some() {
                return Err(UpgradeError::DuplicateHeader("Sec-WebSocket-Version"));
            }
            version = Some(text("Sec-WebSocket-Version")?);
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            if key.is_some() {
                return Err(UpgradeError::DuplicateHeader("Sec-WebSocket-Key"));
            }
            key = Some(text("Sec-WebSocket-Key")?);
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") && subprotocol.is_none() {
            subprotocol = text("Sec-WebSocket-Protocol")?
                .split(',')
                .find_map(|t| Subprotocol::from_token(t.trim()));
        }
    }
    if !host {
        return Err(UpgradeError::MissingHeader("Host"));
    }
    if !upgrade {
        return Err(UpgradeError::MissingHeader("Upgrade: websocket"));
    }
    if !connection {
        return Err(UpgradeError::MissingHeader("Connection: upgrade"));
    }
    match version {
        None => return Err(UpgradeError::MissingHeader("Sec-WebSocket-Version")),
        Some("13") => {}
        Some(_) => return Err(UpgradeError::UnsupportedVersion),
    }
    let key = key.ok_or(UpgradeError::MissingHeader("Sec-WebSocket-Key"))?;
    match STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(UpgradeError::BadHeader("Sec-WebSocket-Key")),
    }
    Ok(Some((
        UpgradeRequest {
            target: String::from(target_of(path)),
            key: String::from(key),
            subprotocol,
        },
        consumed,
    )))
}

/// `app/room?query` from `/app/room?query` or `http://host/app/room?query`.
fn target_of(path: &str) -> &str {
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or(""),
        None => path,
    };
    path.trim_start_matches('/')
}

/// True if comma-separated `list` holds `token` (case-insensitive).
fn has_token(list: &str, token: &str) -> bool {
    list.split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `101 Switching Protocols` answer.
pub fn accept_response(request: &UpgradeRequest) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(&request.key)
    );
    if let Some(p) = request.subprotocol {
        out.push_str("Sec-WebSocket-Protocol: ");
        out.push_str(p.as_str());
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The refusal answer: status line, `Connection: close`, one-line reason.
pub fn error_response(error: &UpgradeError) -> Vec<u8> {
    let body = format!("{error}\n");
    let (status, extra) = match error.status() {
        426 => ("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n"),
        _ => ("400 Bad Request", ""),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn request(extra: &str) -> String {
        let mut s = String::from("GET /chat/room1?x=1 HTTP/1.1\r\nHost: example.com\r\n");
        s.push_str(extra);
        s.push_str("\r\n");
        s
    }

    const GOOD: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

    #[test]
    fn rfc_accept_key_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn valid_request() {
        let head = request(GOOD);
        let (req, n) = parse_request(head.as_bytes()).unwrap().unwrap();
        assert_eq!(n, head.len());
        assert_eq!(req.target, "chat/room1?x=1");
        assert_eq!(req.path(), "chat/room1");
        assert_eq!(req.subprotocol, None);
        let resp = String::from_utf8(accept_response(&req)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!resp.contains("Sec-WebSocket-Protocol"));
        assert!(resp.ends_with("\r\n\r\n"));
    }

    #[test]
    fn token_lists_and_case() {
        let head = request(
            "upgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\nSec-WebSocket-Protocol: x, chat, tern.v1\r\n",
        );
        let (req, _) = parse_request(head.as_bytes()).unwrap().unwrap();
        assert_eq!(req.subprotocol, Some(Subprotocol::Chat));
        let resp = String::from_utf8(accept_response(&req)).unwrap();
        assert!(resp.contains("Sec-WebSocket-Protocol: chat\r\n"));
    }

    #[test]
    fn absolute_target() {
        assert_eq!(target_of("http://h:1/live/a?scope=b"), "live/a?scope=b");
        assert_eq!(target_of("/"), "");
        assert_eq!(target_of("//chat"), "chat");
    }

    #[test]
    fn partial_then_too_large() {
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        let mut big = String::from("GET / HTTP/1.1\r\nX: ");
        big.push_str(&"a".repeat(MAX_HEAD));
        assert_eq!(
            parse_request(big.as_bytes()),
            Err(UpgradeError::HeadTooLarge)
        );
    }

    #[test]
    fn refusals() {
        let cases: [(&str, UpgradeError); 6] = [
            (
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
                UpgradeError::MissingHeader("Upgrade: websocket"),
            ),
            (
                "Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
                UpgradeError::MissingHeader("Connection: upgrade"),
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n",
                UpgradeError::UnsupportedVersion,
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n",
                UpgradeError::BadHeader("Sec-WebSocket-Key"),
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
                UpgradeError::MissingHeader("Sec-WebSocket-Key"),
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                UpgradeError::MissingHeader("Sec-WebSocket-Version"),
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(parse_request(request(extra).as_bytes()), Err(want));
        }
        let post = GOOD.to_string();
        let head = alloc::format!("POST / HTTP/1.1\r\nHost: a\r\n{post}\r\n");
        assert_eq!(parse_request(head.as_bytes()), Err(UpgradeError::NotGet));
        let head = alloc::format!("GET / HTTP/1.0\r\nHost: a\r\n{post}\r\n");
        assert_eq!(parse_request(head.as_bytes()), Err(UpgradeError::OldHttp));
        let head = alloc::format!("GET / HTTP/1.1\r\n{post}\r\n");
        assert_eq!(
            parse_request(head.as_bytes()),
            Err(UpgradeError::MissingHeader("Host"))
        );
    }

    #[test]
    fn error_answers() {
        let resp = String::from_utf8(error_response(&UpgradeError::UnsupportedVersion)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(resp.contains("Sec-WebSocket-Version: 13\r\n"));
        let resp = String::from_utf8(error_response(&UpgradeError::NotGet)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(resp.ends_with("\r\n\r\nmethod must be GET\n"));
        assert!(resp.contains("Content-Length: 19\r\n"));
    }

    #[test]
    fn head_end_detection() {
        assert!(!head_complete(b"GET / HTTP/1.1\r\n", 0));
        assert!(head_complete(b"GET / HTTP/1.1\r\n\r\n", 17));
        assert!(head_complete(b"GET / HTTP/1.1\n\n", 15));
    }
}
