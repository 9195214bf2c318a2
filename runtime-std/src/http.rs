//! The HTTP side of the HTTP/WebSocket port: `/healthz`, `/metrics`,
//! `/api/stats`, the page at `/`, and the hand-off of WebSocket upgrades.
//!
//! Deliberately small: one request per connection (every response says
//! `Connection: close`), bounded heads, and bodies only for the admin API
//! (`Content-Length`, at most [`MAX_BODY_BYTES`]). It runs over any
//! [`Stream`](crate::net::Stream) — TCP, TLS, or the simulator's turmoil
//! sockets — so every port serves the same code.
//!
//! # Why not hyper
//!
//! hyper 1.x was weighed for this port (docs/architecture.md, "The HTTP
//! side") and not taken, for now: what lives long on this port (WebSocket,
//! next HTTP-FLV) must be a core `Connection` driven by the runtime's
//! connection loop, which owns the socket (vectored and merged writes,
//! direct writes to its descriptor, the slow-client policy). hyper would
//! own the socket and write the `101` itself, while the core's
//! `WsConnection` answers the upgrade (the embedded runtime has no hyper).
//! What remains for HTTP proper is short request/response exchanges,
//! which this module covers.
//!
//! Layers, from the bottom:
//! - [`RequestHead::parse`]: sans-IO parse of a buffered head (`httparse`).
//! - [`read_head`]: reads a head from a stream, bounded by
//!   [`MAX_HEAD_BYTES`], returning any bytes read past it.
//! - [`route`] and [`respond`]: what a request asks for, and the answer.
//! - [`serve_request`]: one request on one stream; a WebSocket upgrade is
//!   handed back to the caller as [`Served::Upgrade`] with the stream
//!   untouched past the head.
//!
//! The accept loop that uses these, and hands upgrades to the WebSocket
//! side, is `server::serve_http`.

use crate::admin::Access;
use crate::stats::{PROMETHEUS_CONTENT_TYPE, StatsSource};
use bytes::BufMut;
use std::fmt;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most header lines accepted in one request.
pub const MAX_HEADERS: usize = 64;

/// How long a client may take to send its request head (and then its
/// body).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request body accepted (admin API writes: one shared-object
/// value as JSON, or a message's arguments).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The demo page at `/` (a chat room and a shared-object inspector over the
/// WebSocket JSON protocol), embedded in the binary.
pub const INDEX_HTML: &str = include_str!("../static/index.html");

/// mpegts.js 1.8.2's minified build, for the demo page's Live section
/// (Apache-2.0; `static/vendor/mpegts/` holds its licence).
pub const MPEGTS_JS: &[u8] = include_bytes!("../static/vendor/mpegts/mpegts.js");

/// mpegts.js's licence, served next to it.
pub const MPEGTS_LICENSE: &str = include_str!("../static/vendor/mpegts/LICENSE");

/// A parsed request line and headers, owned (it outlives the read buffer,
/// for example when handed to the WebSocket side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, … as sent.
    pub method: String,
    /// Request target: path and query (`/chat/room?x=1`).
    pub target: String,
    /// Minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header names and raw values in the order sent.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RequestHead {
    /// Parses a head at the front of `buf`. `Ok(None)` if more bytes are
    /// needed; otherwise the head and its length in bytes (what follows
    /// belongs to the body or, after an upgrade, to the new protocol).
    pub fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(buf) {
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => Err(HeadError::TooLarge),
            Ok(httparse::Status::Complete(len)) => {
                let head = RequestHead {
                    method: request.method.unwrap_or_default().to_owned(),
                    target: request.path.unwrap_or_default().to_owned(),
                    version: request.version.unwrap_or(1),
                    headers: request
                        .headers
                        .iter()
                        .map(|h| (h.name.to_owned(), h.value.to_vec()))
                        .collect(),
                };
                Ok(Some((head, len)))
            }
            Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
            Err(e) => Err(HeadError::Malformed(e)),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// True if header `name` has the comma-separated token `token`
    /// (case-insensitive), as in `Connection: keep-alive, Upgrade`.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The target's path (before `?`).
    pub fn path(&self) -> &str {
        tern_core::scope_path::split_query(&self.target).0
    }

    /// The target's query (after `?`, possibly empty).
    pub fn query(&self) -> &str {
        tern_core::scope_path::split_query(&self.target).1
    }

    /// A `GET` asking to switch to WebSocket (`Upgrade: websocket`). Only
    /// the intent: the WebSocket side checks the rest of the handshake.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == "GET" && self.header_has_token("upgrade", "websocket")
    }
}

/// Why a request head was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// Longer than [`MAX_HEAD_BYTES`].
    TooLarge,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// Not HTTP/1.x.
    Malformed(httparse::Error),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => write!(f, "request head longer than {MAX_HEAD_BYTES} bytes"),
            HeadError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} request headers"),
            HeadError::Malformed(e) => write!(f, "malformed request head: {e}"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Why [`read_head`] returned no head.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadHeadError {
    /// The peer closed before sending anything (not worth a log line).
    Closed,
    /// The peer closed in the middle of the head.
    Truncated,
    /// The head is invalid; answer 400.
    Invalid(HeadError),
    /// The stream failed.
    Io(io::Error),
}

impl fmt::Display for ReadHeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadHeadError::Closed => f.write_str("connection closed before a request"),
            ReadHeadError::Truncated => f.write_str("connection closed inside the request head"),
            ReadHeadError::Invalid(e) => e.fmt(f),
            ReadHeadError::Io(e) => write!(f, "reading the request failed: {e}"),
        }
    }
}

impl std::error::Error for ReadHeadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadHeadError::Invalid(e) => Some(e),
            ReadHeadError::Io(e) => Some(e),
            ReadHeadError::Closed | ReadHeadError::Truncated => None,
        }
    }
}

/// Reads one request head. Returns it with the bytes read past it.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(RequestHead, Vec<u8>), ReadHeadError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Read straight into `buf`: a read buffer of its own would sit in
        // this future, and so in the task of every HTTP-FLV and WebSocket
        // connection for its whole life (the task's size is its largest
        // state's).
        let room = MAX_HEAD_BYTES.saturating_sub(buf.len()).clamp(1, 4096);
        buf.reserve(room);
        let n = stream
            .read_buf(&mut (&mut buf).limit(room))
            .await
            .map_err(ReadHeadError::Io)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadHeadError::Closed
            } else {
                ReadHeadError::Truncated
            });
        }
        if let Some((head, len)) = RequestHead::parse(&buf).map_err(ReadHeadError::Invalid)? {
            let leftover = buf.split_off(len.min(buf.len()));
            return Ok((head, leftover));
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`.
    Health,
    /// `GET /metrics`.
    Metrics,
    /// `GET /api/stats`.
    Stats,
    /// `GET /`: the demo page.
    Static,
    /// The admin API (`/api/connections…`, `/api/streams/…`, `/api/so/…`),
    /// any method: see [`crate::admin`].
    Admin,
    /// `GET /vendor/mpegts.js`: the player library the demo page uses.
    MpegtsJs,
    /// `GET /vendor/mpegts.LICENSE`: its licence.
    MpegtsLicense,
    /// A WebSocket upgrade, any path: the connection goes to the WebSocket
    /// side, which resolves the scope from the target.
    Upgrade,
    /// `GET|HEAD /{app}/{room…}/{stream}.flv`, or a WebSocket upgrade of
    /// such a path: a live FLV player (`websocket` tells which).
    Flv { websocket: bool },
    /// A known path with a method other than GET/HEAD.
    MethodNotAllowed,
    /// Anything else.
    NotFound,
}

/// Routes a request.
pub fn route(head: &RequestHead) -> Route {
    if tern_core::flv::FlvTarget::matches(head.path()) {
        // The FLV connection answers methods other than GET/HEAD itself.
        return Route::Flv {
            websocket: head.is_websocket_upgrade(),
        };
    }
    if head.is_websocket_upgrade() {
        return Route::Upgrade;
    }
    if crate::admin::is_admin_path(head.path()) {
        return Route::Admin;
    }
    let found = match head.path() {
        "/healthz" => Route::Health,
        "/metrics" => Route::Metrics,
        "/api/stats" => Route::Stats,
        "/" | "/index.html" => Route::Static,
        "/vendor/mpegts.js" => Route::MpegtsJs,
        "/vendor/mpegts.LICENSE" => Route::MpegtsLicense,
        _ => return Route::NotFound,
    };
    if matches!(head.method.as_str(), "GET" | "HEAD") {
        found
    } else {
        Route::MethodNotAllowed
    }
}

/// An HTTP response; always `Connection: close`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// Extra headers (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: body.into().into_bytes(),
        }
    }

    /// The bytes to send; without the body for `HEAD`.
    pub fn to_bytes(&self, with_body: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if with_body {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// Reason phrase of the status codes this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The answer to a routed request. `Upgrade` is not answered here (the
/// caller hands it on); if it gets here it is answered 501.
pub fn respond(route: Route, stats: &dyn StatsSource) -> Response {
    match route {
        Route::Health => Response::text(200, "ok\n"),
        Route::Metrics => Response {
            status: 200,
            content_type: PROMETHEUS_CONTENT_TYPE,
            headers: Vec::new(),
            body: stats.snapshot().render_prometheus().into_bytes(),
        },
        Route::Stats => Response {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: stats.snapshot().to_json().into_bytes(),
        },
        Route::Static => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: INDEX_HTML.as_bytes().to_vec(),
        },
        Route::MpegtsJs => Response {
            status: 200,
            content_type: "text/javascript; charset=utf-8",
            headers: Vec::new(),
            body: MPEGTS_JS.to_vec(),
        },
        Route::MpegtsLicense => Response::text(200, MPEGTS_LICENSE),
        Route::Upgrade | Route::Flv { .. } => {
            Response::text(501, "not served by the request handler\n")
        }
        Route::Admin => Response::text(404, "not found\n"),
        Route::MethodNotAllowed => Response {
            headers: vec![("Allow", "GET, HEAD".to_owned())],
            ..Response::text(405, "method not allowed\n")
        },
        Route::NotFound => Response::text(404, "not found\n"),
    }
}

/// What became of a connection after [`serve_request`].
#[derive(Debug)]
pub enum Served {
    /// A response was sent (or the peer left); close the stream.
    Done,
    /// A WebSocket upgrade request: nothing was written; the caller gives
    /// the stream, this head and the bytes read past it to the WebSocket
    /// side.
    Upgrade {
        /// The upgrade request.
        head: RequestHead,
        /// Bytes the client sent after the head (already WebSocket frames).
        leftover: Vec<u8>,
    },
    /// An FLV player (HTTP or WebSocket): nothing was written; the caller
    /// gives the stream, this head and the bytes past it to the FLV side.
    Flv {
        /// The request.
        head: RequestHead,
        /// Bytes the client sent after the head.
        leftover: Vec<u8>,
        /// It is a WebSocket upgrade (WS-FLV).
        websocket: bool,
    },
}

/// What a port serves besides its fixed pages: statistics, who may read
/// them, and the admin API.
#[derive(Clone, Copy)]
pub struct Site<'a> {
    /// Behind `/api/stats` and `/metrics`.
    pub stats: &'a dyn StatsSource,
    /// The tokens of `[http]`.
    pub access: &'a Access,
    /// The admin API, answered when `access` has an admin token and the
    /// request carries it.
    pub admin: Option<&'a crate::server::Shared>,
}

impl fmt::Debug for Site<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("access", self.access)
            .finish_non_exhaustive()
    }
}

/// Reads one request from `stream` and answers it, unless it is a WebSocket
/// upgrade: statistics open to all, no admin API. See [`serve_request_on`].
pub async fn serve_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    stats: &dyn StatsSource,
) -> io::Result<Served> {
    let open = Access::open();
    let site = Site {
        stats,
        access: &open,
        admin: None,
    };
    serve_request_on(stream, site).await
}

/// Reads one request from `stream` and answers it for `site`, unless it is
/// a WebSocket upgrade. Errors are the stream's; bad requests are
/// answered, not errors.
pub async fn serve_request_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    site: Site<'_>,
) -> io::Result<Served> {
    let read = tokio::time::timeout(HEAD_TIMEOUT, read_head(stream)).await;
    let (head, leftover) = match read {
        Err(_elapsed) => {
            debug!("request head timed out");
            send(stream, &Response::text(408, "request timeout\n"), true).await?;
            return Ok(Served::Done);
        }
        Ok(Ok(parts)) => parts,
        Ok(Err(ReadHeadError::Closed)) => return Ok(Served::Done),
        Ok(Err(ReadHeadError::Truncated)) => {
            debug!("peer closed inside the request head");
            return Ok(Served::Done);
        }
        Ok(Err(ReadHeadError::Io(e))) => return Err(e),
        Ok(Err(ReadHeadError::Invalid(e))) => {
            debug!("bad request: {e}");
            send(stream, &Response::text(400, format!("{e}\n")), true).await?;
            return Ok(Served::Done);
        }
    };
    let route = route(&head);
    debug!(method = %head.method, target = %head.target, ?route, "request");
    match route {
        Route::Upgrade => return Ok(Served::Upgrade { head, leftover }),
        Route::Flv { websocket } => {
            return Ok(Served::Flv {
                head,
                leftover,
                websocket,
            });
        }
        _ => {}
    }
    let response = match route {
        Route::Admin => match (site.admin, &site.access.admin) {
            (Some(shared), Some(_)) => {
                // The body is read (bounded) before the token is looked at,
                // so that a refused client still gets its answer rather
                // than a reset for unread bytes.
                let body = match read_body(stream, &head, leftover).await {
                    Ok(body) => body,
                    Err(BodyError::Answer(response)) => {
                        send(stream, &response, true).await?;
                        return Ok(Served::Done);
                    }
                    Err(BodyError::Io(e)) => return Err(e),
                };
                if site.access.is_admin(&head) {
                    let request = crate::admin::AdminRequest {
                        method: &head.method,
                        path: head.path(),
                        query: head.query(),
                        body: &body,
                    };
                    crate::admin::handle(shared, &request)
                } else {
                    debug!("admin API request without the admin token");
                    crate::admin::unauthorized()
                }
            }
            // No admin token configured: there is no admin API.
            _ => respond(Route::NotFound, site.stats),
        },
        Route::Stats | Route::Metrics if !site.access.may_read_stats(&head) => {
            crate::admin::unauthorized()
        }
        route => respond(route, site.stats),
    };
    send(stream, &response, head.method != "HEAD").await?;
    Ok(Served::Done)
}

/// Why [`read_body`] returned no body.
enum BodyError {
    /// The request is answered with this (411, 413, 400, 408).
    Answer(Response),
    /// The stream failed.
    Io(io::Error),
}

/// Reads the body `head` announces with `Content-Length` (none: empty),
/// starting with the bytes read past the head; bounded by
/// [`MAX_BODY_BYTES`] and [`HEAD_TIMEOUT`]. Chunked bodies are refused
/// with 411 (every client the admin API is meant for sends a length).
async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: &RequestHead,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, BodyError> {
    if head.header("transfer-encoding").is_some() {
        return Err(BodyError::Answer(Response::text(
            411,
            "send the body with Content-Length (chunked bodies are not accepted)\n",
        )));
    }
    let length = match head.header("content-length") {
        None => 0,
        Some(value) => match std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            Some(length) => length,
            None => {
                return Err(BodyError::Answer(Response::text(
                    400,
                    "invalid Content-Length\n",
                )));
            }
        },
    };
    if length > MAX_BODY_BYTES {
        return Err(BodyError::Answer(Response::text(
            413,
            format!("body of {length} bytes; at most {MAX_BODY_BYTES} accepted\n"),
        )));
    }
    if body.len() > length {
        body.truncate(length);
    }
    let missing = length - body.len();
    if missing > 0 {
        let start = body.len();
        body.resize(length, 0);
        let read = tokio::time::timeout(
            HEAD_TIMEOUT,
            stream.read_exact(body.get_mut(start..).unwrap_or_default()),
        )
        .await;
        match read {
            Err(_elapsed) => {
                return Err(BodyError::Answer(Response::text(408, "request timeout\n")));
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(BodyError::Answer(Response::text(
                    400,
                    "connection closed inside the body\n",
                )));
            }
            Ok(Err(e)) => return Err(BodyError::Io(e)),
            Ok(Ok(_)) => {}
        }
    }
    Ok(body)
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &Response,
    with_body: bool,
) -> io::Result<()> {
    stream.write_all(&response.to_bytes(with_body)).await?;
    stream.flush().await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{EmptyStats, StatsSnapshot};

    fn head(text: &str) -> RequestHead {
        RequestHead::parse(text.as_bytes()).unwrap().unwrap().0
    }

    /// Sends `request` over an in-memory stream and returns the response.
    async fn exchange(request: &[u8]) -> (String, Served) {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client.write_all(request).await.unwrap();
        let stats = || StatsSnapshot {
            bytes_in: 42,
            ..StatsSnapshot::default()
        };
        let served = serve_request(&mut server, &stats).await.unwrap();
        drop(server);
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        (response, served)
    }

    #[test]
    fn parse_head_and_leftover() {
        let raw = b"GET /chat/room?scope=x HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\r\n\x81\x00";
        let (head, len) = RequestHead::parse(raw).unwrap().unwrap();
        assert_eq!(len, raw.len() - 2);
        assert_eq!(head.method, "GET");
        assert_eq!(head.path(), "/chat/room");
        assert_eq!(head.query(), "scope=x");
        assert_eq!(head.version, 1);
        assert_eq!(head.header("host"), Some(&b"a"[..]));
        assert!(head.header_has_token("connection", "upgrade"));
        assert!(head.is_websocket_upgrade());
        assert_eq!(RequestHead::parse(b"GET / HTTP/1.1\r\nHo").unwrap(), None);
    }

    #[test]
    fn garbage_and_oversized_heads_are_refused() {
        assert!(matches!(
            RequestHead::parse(b"\x16\x03\x01 hello\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 10, b'a');
        assert_eq!(RequestHead::parse(&big), Err(HeadError::TooLarge));
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: 1\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(
            RequestHead::parse(many.as_bytes()),
            Err(HeadError::TooManyHeaders)
        );
    }

    #[test]
    fn routes() {
        assert_eq!(route(&head("GET /healthz HTTP/1.1\r\n\r\n")), Route::Health);
        assert_eq!(
            route(&head("HEAD /metrics HTTP/1.1\r\n\r\n")),
            Route::Metrics
        );
        assert_eq!(
            route(&head("GET /api/stats?x HTTP/1.0\r\n\r\n")),
            Route::Stats
        );
        assert_eq!(route(&head("GET / HTTP/1.1\r\n\r\n")), Route::Static);
        assert_eq!(route(&head("GET /nope HTTP/1.1\r\n\r\n")), Route::NotFound);
        assert_eq!(
            route(&head("POST /healthz HTTP/1.1\r\n\r\n")),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route(&head(
                "GET /chat/room HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
            )),
            Route::Upgrade
        );
        // only GET upgrades
        assert_eq!(
            route(&head("POST / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route(&head("GET /live/room/cam.flv?t=1 HTTP/1.1\r\n\r\n")),
            Route::Flv { websocket: false }
        );
        assert_eq!(
            route(&head(
                "GET /live/cam.flv HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
            )),
            Route::Flv { websocket: true }
        );
        assert_eq!(
            route(&head("GET /vendor/mpegts.js HTTP/1.1\r\n\r\n")),
            Route::MpegtsJs
        );
        let js = respond(Route::MpegtsJs, &EmptyStats);
        assert!(js.body.starts_with(b"/*! For license information"));
        let licence = respond(Route::MpegtsLicense, &EmptyStats);
        assert!(String::from_utf8_lossy(&licence.body).contains("Apache License"));
    }

    #[tokio::test]
    async fn healthz() {
        let (response, served) = exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(matches!(served, Served::Done));
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("Connection: close\r\n"));
        assert!(response.ends_with("\r\n\r\nok\n"));
    }

    #[tokio::test]
    async fn metrics_and_stats_come_from_the_source() {
        let (response, _) = exchange(b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(response.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(
            response.contains("\ntern_bytes_in_total 42\n"),
            "{response}"
        );
        let (response, _) = exchange(b"GET /api/stats HTTP/1.1\r\n\r\n").await;
        assert!(response.contains("Content-Type: application/json"));
        let body = response.split_once("\r\n\r\n").unwrap().1;
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["bytes_in"], 42);
    }

    #[tokio::test]
    async fn head_requests_have_no_body() {
        let (response, _) = exchange(b"HEAD /healthz HTTP/1.1\r\n\r\n").await;
        assert!(response.contains("Content-Length: 3\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[tokio::test]
    async fn errors_404_405_400() {
        let (response, _) = exchange(b"GET /x HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
        let (response, _) = exchange(b"DELETE /metrics HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
        assert!(response.contains("Allow: GET, HEAD\r\n"));
        let (response, _) = exchange(b"NOT HTTP AT ALL\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    }

    /// The request future is part of every HTTP connection's task, whose
    /// size is that of its largest state and is kept for the connection's
    /// life (an HTTP-FLV or WebSocket player's): it holds no read buffer
    /// of its own (it was 4,712 bytes with one, 656 without).
    #[test]
    fn the_request_future_holds_no_read_buffer() {
        let (_client, mut server) = tokio::io::duplex(64);
        let stats = StatsSnapshot::default;
        let future = serve_request(&mut server, &stats);
        let size = std::mem::size_of_val(&future);
        assert!(size < 2048, "serve_request's future is {size} bytes");
    }

    #[tokio::test]
    async fn oversized_head_gets_400_without_reading_on() {
        let mut request = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        request.resize(MAX_HEAD_BYTES * 2, b'a');
        let (response, _) = exchange(&request).await;
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
        assert!(response.contains("longer than 16384"));
    }

    #[tokio::test]
    async fn upgrade_is_handed_back_untouched() {
        let (response, served) = exchange(
            b"GET /chat/room HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nFRAME",
        )
        .await;
        assert_eq!(response, "");
        let Served::Upgrade { head, leftover } = served else {
            panic!("not an upgrade: {served:?}");
        };
        assert_eq!(head.path(), "/chat/room");
        assert_eq!(leftover, b"FRAME");
    }

    #[tokio::test]
    async fn early_close_is_quiet() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.shutdown().await.unwrap();
        let served = serve_request(&mut server, &EmptyStats).await.unwrap();
        assert!(matches!(served, Served::Done));
        drop(server);
        let mut response = Vec::new();
        client.read_to_end(&mut response).await.unwrap();
        assert!(response.is_empty());
    }

    #[tokio::test]
    async fn bodies_are_bounded_and_need_a_length() {
        let head = |extra: &str| {
            RequestHead::parse(format!("PUT /api/so/a/b/c/k HTTP/1.1\r\n{extra}\r\n").as_bytes())
                .unwrap()
                .unwrap()
                .0
        };
        let status = |r: Result<Vec<u8>, BodyError>| match r {
            Ok(body) => Ok(body),
            Err(BodyError::Answer(response)) => Err(response.status),
            Err(BodyError::Io(e)) => panic!("{e}"),
        };
        // Part of the body came with the head, the rest from the stream;
        // bytes past the length are not taken.
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"lo world!").await.unwrap();
        let got = read_body(
            &mut server,
            &head("Content-Length: 11\r\n"),
            b"hel".to_vec(),
        )
        .await;
        assert_eq!(status(got), Ok(b"hello world".to_vec()));
        let got = read_body(&mut server, &head(""), Vec::new()).await;
        assert_eq!(status(got), Ok(Vec::new()));
        let chunked = head("Transfer-Encoding: chunked\r\n");
        assert_eq!(
            status(read_body(&mut server, &chunked, Vec::new()).await),
            Err(411)
        );
        let big = head(&format!("Content-Length: {}\r\n", MAX_BODY_BYTES + 1));
        assert_eq!(
            status(read_body(&mut server, &big, Vec::new()).await),
            Err(413)
        );
        let bad = head("Content-Length: -3\r\n");
        assert_eq!(
            status(read_body(&mut server, &bad, Vec::new()).await),
            Err(400)
        );
        // The client leaves inside the body.
        drop(client);
        let short = head("Content-Length: 50\r\n");
        assert_eq!(
            status(read_body(&mut server, &short, b"x".to_vec()).await),
            Err(400)
        );
    }

    #[tokio::test]
    async fn stats_need_the_token_when_one_is_set_and_admin_paths_need_the_admin_api() {
        let access = Access {
            admin: None,
            stats: Some(crate::admin::Token::new("stats-token-0123456789".into())),
        };
        let ask = |request: &'static [u8]| {
            let access = access.clone();
            async move {
                let (mut client, mut server) = tokio::io::duplex(64 * 1024);
                client.write_all(request).await.unwrap();
                let site = Site {
                    stats: &EmptyStats,
                    access: &access,
                    admin: None,
                };
                serve_request_on(&mut server, site).await.unwrap();
                drop(server);
                let mut response = String::new();
                client.read_to_string(&mut response).await.unwrap();
                response
            }
        };
        let response = ask(b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 401 "), "{response}");
        assert!(response.contains("WWW-Authenticate: Bearer realm=\"tern\"\r\n"));
        let response =
            ask(b"GET /api/stats HTTP/1.1\r\nAuthorization: Bearer stats-token-0123456789\r\n\r\n")
                .await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        let response = ask(b"GET /healthz HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        // No admin token configured: no admin API.
        let response = ask(b"GET /api/connections HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_head_gets_408() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        let served = serve_request(&mut server, &EmptyStats).await.unwrap();
        assert!(matches!(served, Served::Done));
        drop(server);
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    }
}
