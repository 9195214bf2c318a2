//! The admin API on the HTTP port (docs/admin-api.md), and who may use the
//! HTTP port's APIs at all.
//!
//! - [`Token`] and [`Access`]: the `[http] admin_token` and `stats_token`
//!   bearer tokens, compared in constant time.
//! - [`AdminRequest`] → [`handle`]: the routes below `/api/connections`,
//!   `/api/streams` and `/api/so`, answered from the hub. Writes go through
//!   the hub's server-side API (`so_apply`, `so_send`, `so_clear`,
//!   `kick`), so clients see ordinary change events, exactly as if another
//!   client had made them.
//!
//! Paths name scopes with validated segments only (`[A-Za-z0-9_.-]`,
//! never `.` or `..`): anything else is a `400` that says which segment,
//! before the hub is touched.

use crate::http::{RequestHead, Response};
use crate::server::Shared;
use serde_json::{Value as Json, json};
use std::fmt;
use subtle::ConstantTimeEq;
use tern_core::hub::{ConnId, HubError, Protocol, SoChange};
use tern_core::scope_path::{ScopePath, validate_segment};
use tern_core::ws::amf_json::{amf_to_json, json_to_amf};

/// A bearer token from the configuration.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A token (validated by the configuration: at least
    /// `config::MIN_TOKEN_LEN` printable characters).
    pub fn new(token: String) -> Token {
        Token(token)
    }

    /// True if `authorization` (the header's value) is `Bearer <this
    /// token>`. The comparison takes the same time wherever the first
    /// difference is; only the length of the configured token can show.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, given)) = split_scheme(value) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer") && bool::from(given.ct_eq(self.0.as_bytes()))
    }
}

/// `Scheme credentials` → (scheme, credentials without surrounding spaces).
fn split_scheme(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let value = value.trim_ascii();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    Some((scheme, rest.trim_ascii()))
}

/// Tokens never show in logs.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Who may use the HTTP port's APIs (`[http]`).
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// `admin_token`: the admin API exists only when it is set.
    pub admin: Option<Token>,
    /// `stats_token`: `/api/stats` and `/metrics` require it (or the admin
    /// token) when it is set.
    pub stats: Option<Token>,
}

impl Access {
    /// Everything open, no admin API.
    pub fn open() -> Access {
        Access::default()
    }

    /// The tokens of `[http]`.
    pub fn from_config(http: &crate::config::HttpConfig) -> Access {
        Access {
            admin: http.admin_token.clone().map(Token::new),
            stats: http.stats_token.clone().map(Token::new),
        }
    }

    /// True if `head` may read `/api/stats` and `/metrics`.
    pub fn may_read_stats(&self, head: &RequestHead) -> bool {
        let Some(stats) = &self.stats else {
            return true;
        };
        let auth = head.header("authorization");
        stats.admits(auth) || self.admin.as_ref().is_some_and(|a| a.admits(auth))
    }

    /// True if `head` carries the admin token (false when there is none).
    pub fn is_admin(&self, head: &RequestHead) -> bool {
        self.admin
            .as_ref()
            .is_some_and(|a| a.admits(head.header("authorization")))
    }
}

/// `401` with the challenge a client needs to know what to send.
pub fn unauthorized() -> Response {
    let mut response = error(401, "missing or wrong bearer token");
    response
        .headers
        .push(("WWW-Authenticate", "Bearer realm=\"tern\"".to_owned()));
    response
}

/// One admin API request, after its token was checked.
#[derive(Debug)]
pub struct AdminRequest<'a> {
    /// `GET`, `PUT`, …
    pub method: &'a str,
    /// The path, starting with `/api/`.
    pub path: &'a str,
    /// The query (after `?`, possibly empty).
    pub query: &'a str,
    /// The request body (empty when none was sent).
    pub body: &'a [u8],
}

/// A route handler: the request and the path segments after its prefix.
type Route = fn(&Shared, &AdminRequest<'_>, Vec<&str>) -> Answer;

/// The admin API's routes: a path prefix and its handler, which matches
/// the method and the rest of the path.
const ROUTES: [(&str, Route); 3] = [
    ("/api/connections", connections),
    ("/api/streams", streams),
    ("/api/so", shared_objects),
];

/// True if `path` belongs to the admin API.
pub fn is_admin_path(path: &str) -> bool {
    ROUTES.iter().any(|(prefix, _)| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

fn json_response(status: u16, body: &Json) -> Response {
    Response {
        status,
        content_type: "application/json",
        headers: Vec::new(),
        body: format!("{body}\n").into_bytes(),
    }
}

fn error(status: u16, message: impl fmt::Display) -> Response {
    json_response(status, &json!({ "error": message.to_string() }))
}

fn method_not_allowed(allow: &str) -> Response {
    let mut response = error(405, "method not allowed here");
    response.headers.push(("Allow", allow.to_owned()));
    response
}

/// Answers an admin API request (whose token was checked) from `shared`'s
/// hub.
pub fn handle(shared: &Shared, request: &AdminRequest<'_>) -> Response {
    let route = ROUTES
        .iter()
        .find_map(|(prefix, route)| Some((*route, strip(request.path, prefix)?)));
    let result = match route {
        Some((route, rest)) => route(shared, request, rest),
        None => Err(error(404, "no such API")),
    };
    result.unwrap_or_else(|response| response)
}

/// `200` with `body`.
fn ok(body: &Json) -> Answer {
    Ok(json_response(200, body))
}

/// A hub call's answer: `200` with `body` of its value, or its error.
fn hub_answer<T>(result: Result<T, HubError>, body: impl FnOnce(T) -> Json) -> Answer {
    result.map_err(|e| hub_error(&e)).and_then(|v| ok(&body(v)))
}

/// `{app}/{room…}/{name}`: the scope and the (validated) last segment,
/// `usage` when there is no scope before the name.
fn scoped_name<'s>(
    shared: &Shared,
    segments: &[&'s str],
    what: &str,
    usage: impl Fn() -> Response,
) -> Result<(ScopePath, &'s str), Response> {
    let (name, scope) = segments.split_last().ok_or_else(&usage)?;
    if scope.is_empty() {
        return Err(usage());
    }
    let scope = scope_of(shared, scope)?;
    Ok((scope, name_segment(name, what)?))
}

/// `path` without `prefix`, as the segments after it (`""` → none).
fn strip<'p>(path: &'p str, prefix: &str) -> Option<Vec<&'p str>> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() || rest == "/" {
        return Some(Vec::new());
    }
    let rest = rest.strip_prefix('/')?;
    Some(rest.split('/').collect())
}

type Answer = Result<Response, Response>;

fn protocol_name(protocol: Protocol) -> &'static str {
    protocol.name()
}

/// `GET /api/connections`, `DELETE /api/connections/{id}`.
fn connections(shared: &Shared, request: &AdminRequest<'_>, segments: Vec<&str>) -> Answer {
    let now = shared.now();
    match (request.method, segments.as_slice()) {
        ("GET" | "HEAD", []) => {
            let list: Vec<Json> = shared.with_hub(|hub| {
                hub.connections()
                    .map(|c| {
                        json!({
                            "id": c.id.0,
                            "protocol": protocol_name(c.protocol),
                            "address": c.address.map(|a| a.to_string()),
                            "scope": c.scope.map(ToString::to_string),
                            "connected_secs": (now - c.connected_at).as_millis() / 1000,
                            "idle_secs": (now - c.last_activity).as_millis() / 1000,
                            "publishing": c.publishing,
                            "playing": c.playing,
                            "shared_objects": c.shared_objects,
                        })
                    })
                    .collect()
            });
            ok(&json!({ "connections": list }))
        }
        (_, []) => Err(method_not_allowed("GET, HEAD")),
        ("DELETE", [id]) => {
            let id = parse_conn_id(id)?;
            let kicked =
                shared.with_hub(|hub| hub.kick(now, id, "closed by the server's admin".to_owned()));
            if kicked {
                tracing::info!(conn = %id, "connection closed through the admin API");
                ok(&json!({ "closed": id.0 }))
            } else {
                Err(error(404, format!("no open connection {}", id.0)))
            }
        }
        (_, [_]) => Err(method_not_allowed("DELETE")),
        _ => Err(error(
            404,
            "no such API: /api/connections/{id} has one segment",
        )),
    }
}

/// `7` or `c7` (as the logs write it).
fn parse_conn_id(text: &str) -> Result<ConnId, Response> {
    text.strip_prefix('c')
        .unwrap_or(text)
        .parse::<u64>()
        .map(ConnId)
        .map_err(|_| error(400, format!("{text:?} is not a connection id")))
}

/// The scope of `segments` (app, rooms…), every segment validated.
fn scope_of(shared: &Shared, segments: &[&str]) -> Result<ScopePath, Response> {
    let (app, rooms) = segments
        .split_first()
        .ok_or_else(|| error(400, "the path names no app"))?;
    let bad = |segment: &str, e: tern_core::scope_path::NameError| {
        error(400, format!("invalid path segment {segment:?}: {e}"))
    };
    let mut scope = ScopePath::app(app).map_err(|e| bad(app, e))?;
    for room in rooms {
        scope = scope.child(room).map_err(|e| bad(room, e))?;
    }
    let max_depth = shared.with_hub(|hub| hub.config().max_depth);
    if rooms.len() > max_depth {
        return Err(error(
            400,
            format!("scope is nested deeper than {max_depth} rooms"),
        ));
    }
    Ok(scope)
}

fn name_segment<'s>(segment: &'s str, what: &str) -> Result<&'s str, Response> {
    validate_segment(segment)
        .map(|()| segment)
        .map_err(|e| error(400, format!("invalid {what} {segment:?}: {e}")))
}

/// `DELETE /api/streams/{app}/{room…}/{name}`: closes the publisher's
/// connection (its players get the ordinary `UnpublishNotify`).
fn streams(shared: &Shared, request: &AdminRequest<'_>, segments: Vec<&str>) -> Answer {
    if let [stream @ .., "push"] = segments.as_slice()
        && stream.len() >= 2
        && matches!(request.method, "POST" | "DELETE")
    {
        return push(shared, request, stream);
    }
    if request.method != "DELETE" {
        return Err(method_not_allowed("DELETE"));
    }
    let (scope, name) = scoped_name(shared, &segments, "stream name", || {
        error(400, "expected /api/streams/{app}/{room…}/{name}")
    })?;
    let now = shared.now();
    let dropped = shared.with_hub(|hub| {
        let conn = hub.publisher_of(&scope, name)?;
        hub.kick(
            now,
            conn,
            format!("publisher of {scope}/{name} dropped by the server's admin"),
        )
        .then_some(conn)
    });
    match dropped {
        Some(conn) => {
            tracing::info!(conn = %conn, stream = %format!("{scope}/{name}"), "publisher dropped through the admin API");
            ok(&json!({ "dropped": format!("{scope}/{name}"), "connection": conn.0 }))
        }
        None => Err(error(404, format!("nobody publishes {scope}/{name}"))),
    }
}

/// `POST /api/streams/{app}/{room…}/{name}/push` with `{"url": …}`
/// starts pushing a live stream to a target (docs/relay.md);
/// `DELETE` stops the pushes of the stream to that URL, or all of its
/// pushes without a body.
fn push(shared: &Shared, request: &AdminRequest<'_>, segments: &[&str]) -> Answer {
    let (scope, name) = scoped_name(shared, segments, "stream name", || {
        error(400, "expected /api/streams/{app}/{room…}/{name}/push")
    })?;
    let stream = format!("{scope}/{name}");
    let url = if request.body.is_empty() {
        None
    } else {
        let body = parse_json(request.body)?;
        match body.get("url") {
            Some(Json::String(url)) => Some(url.clone()),
            _ => return Err(error(400, "the body must be {\"url\": \"rtmp://…\"}")),
        }
    };
    let target = url
        .as_deref()
        .map(crate::relay::Target::parse)
        .transpose()
        .map_err(|e| error(400, format!("bad url: {e}")))?;
    let relays = shared.relays();
    if request.method == "DELETE" {
        let stopped = relays.stop_push(&scope, name, target.as_ref());
        if stopped == 0 {
            return Err(error(404, format!("no such push of {stream}")));
        }
        tracing::info!(stream = %stream, stopped, "pushes stopped through the admin API");
        return ok(&json!({ "stream": stream, "stopped": stopped }));
    }
    let Some(target) = target else {
        return Err(error(400, "the body must be {\"url\": \"rtmp://…\"}"));
    };
    if shared.with_hub(|hub| hub.publisher_of(&scope, name).is_none()) {
        return Err(error(404, format!("nobody publishes {stream}")));
    }
    let url = target.to_string();
    if !relays.add_push(&scope, name, target) {
        return Err(error(409, format!("{stream} is pushed to {url} already")));
    }
    tracing::info!(stream = %stream, url = %url, "push added through the admin API");
    Ok(json_response(201, &json!({ "stream": stream, "url": url })))
}

/// What a `/api/so/…` path names, by method.
enum SoTarget<'p> {
    /// `GET …/{so}`.
    Object { scope: ScopePath, so: &'p str },
    /// `PUT`/`DELETE …/{so}/{key}` (the key percent-decoded).
    Key {
        scope: ScopePath,
        so: &'p str,
        key: String,
    },
    /// `POST …/{so}/send` or `…/{so}/clear`.
    Action {
        scope: ScopePath,
        so: &'p str,
        action: &'p str,
    },
}

fn so_target<'p>(
    shared: &Shared,
    method: &str,
    segments: &[&'p str],
) -> Result<SoTarget<'p>, Response> {
    let usage = || {
        error(
            400,
            "expected /api/so/{app}/{room…}/{object} (GET), …/{object}/{key} (PUT, DELETE) \
             or …/{object}/send|clear (POST)",
        )
    };
    match method {
        "GET" | "HEAD" => {
            let (scope, so) = scoped_name(shared, segments, "shared object name", usage)?;
            Ok(SoTarget::Object { scope, so })
        }
        "PUT" | "DELETE" | "POST" => {
            let (last, rest) = segments.split_last().ok_or_else(usage)?;
            let (scope, so) = scoped_name(shared, rest, "shared object name", usage)?;
            if method == "POST" {
                return match *last {
                    "send" | "clear" => Ok(SoTarget::Action {
                        scope,
                        so,
                        action: last,
                    }),
                    other => Err(error(
                        404,
                        format!("no action {other:?}: POST …/send or …/clear"),
                    )),
                };
            }
            let key = percent_decode(last)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| error(400, format!("invalid key {last:?}")))?;
            Ok(SoTarget::Key { scope, so, key })
        }
        _ => Err(method_not_allowed("GET, HEAD, PUT, DELETE, POST")),
    }
}

/// `%XX`-decodes a path segment into UTF-8; `None` if it is not valid.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The persistence a write uses: `?persistent=` if given, else the
/// object's own if it is loaded, else transient.
fn persistence(
    shared: &Shared,
    query: &str,
    scope: &ScopePath,
    so: &str,
) -> Result<bool, Response> {
    match tern_core::scope_path::query_param(query, "persistent") {
        Some("true" | "1") => return Ok(true),
        Some("false" | "0") => return Ok(false),
        Some(other) => {
            return Err(error(
                400,
                format!("persistent={other:?}: expected true or false"),
            ));
        }
        None => {}
    }
    Ok(shared.with_hub(|hub| {
        hub.shared_objects()
            .find(|o| o.scope == scope && o.name == so)
            .is_some_and(|o| o.persistent)
    }))
}

fn hub_error(e: &HubError) -> Response {
    let status = match e {
        HubError::UnknownApp(_) => 404,
        HubError::BadName(_) => 400,
        HubError::BadPersistence => 409,
        HubError::Limit(_) => 422,
        _ => 500,
    };
    error(status, e)
}

fn parse_json(body: &[u8]) -> Result<Json, Response> {
    serde_json::from_slice(body).map_err(|e| error(400, format!("the body is not JSON: {e}")))
}

/// `/api/so/…`: read an object, set or delete a key, send a message, clear.
fn shared_objects(shared: &Shared, request: &AdminRequest<'_>, segments: Vec<&str>) -> Answer {
    let now = shared.now();
    match so_target(shared, request.method, &segments)? {
        SoTarget::Object { scope, so } => {
            let found = shared.with_hub(|hub| {
                let info = hub
                    .shared_objects()
                    .find(|o| *o.scope == scope && o.name == so)
                    .map(|o| (o.persistent, o.subscribers))?;
                let (version, data) = hub.shared_object_data(&scope, so)?;
                let data: serde_json::Map<String, Json> = data
                    .iter()
                    .map(|(k, v)| (k.clone(), amf_to_json(v)))
                    .collect();
                Some(json!({
                    "scope": scope.to_string(),
                    "name": so,
                    "version": version,
                    "persistent": info.0,
                    "subscribers": info.1,
                    "data": data,
                }))
            });
            match found {
                Some(body) => ok(&body),
                None => Err(error(
                    404,
                    format!("no shared object {so:?} loaded in {scope}"),
                )),
            }
        }
        SoTarget::Key { scope, so, key } => {
            let persistent = persistence(shared, request.query, &scope, so)?;
            let change = if request.method == "PUT" {
                let value = json_to_amf(&parse_json(request.body)?);
                SoChange::Set {
                    key: key.clone(),
                    value,
                }
            } else {
                SoChange::Delete { key: key.clone() }
            };
            let result =
                shared.with_hub(|hub| hub.so_apply(now, &scope, so, persistent, vec![change]));
            hub_answer(result, |version| {
                tracing::info!(%scope, so, key, method = request.method, version, "shared object written through the admin API");
                json!({ "version": version })
            })
        }
        SoTarget::Action {
            scope,
            so,
            action: "send",
        } => {
            let body = parse_json(request.body)?;
            let method = body
                .get("method")
                .and_then(Json::as_str)
                .filter(|m| !m.is_empty())
                .ok_or_else(|| error(400, "the body needs a \"method\" string"))?
                .to_owned();
            let args = match body.get("args") {
                None | Some(Json::Null) => Vec::new(),
                Some(Json::Array(args)) => args.iter().map(json_to_amf).collect(),
                Some(_) => return Err(error(400, "\"args\" must be an array")),
            };
            let result = shared.with_hub(|hub| {
                let subscribers = hub
                    .shared_objects()
                    .find(|o| *o.scope == scope && o.name == so)
                    .map_or(0, |o| o.subscribers);
                hub.so_send(now, &scope, so, method, args)
                    .map(|()| subscribers)
            });
            hub_answer(result, |subscribers| json!({ "sent_to": subscribers }))
        }
        SoTarget::Action { scope, so, .. } => {
            let persistent = persistence(shared, request.query, &scope, so)?;
            let result = shared.with_hub(|hub| hub.so_clear(now, &scope, so, persistent));
            hub_answer(result, |version| json!({ "version": version }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(auth: Option<&str>) -> RequestHead {
        let mut text = String::from("GET /api/connections HTTP/1.1\r\n");
        if let Some(auth) = auth {
            text.push_str(&format!("Authorization: {auth}\r\n"));
        }
        text.push_str("\r\n");
        RequestHead::parse(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let access = Access {
            admin: Some(Token::new("0123456789abcdef-admin".into())),
            stats: Some(Token::new("0123456789abcdef-stats".into())),
        };
        assert!(access.is_admin(&head(Some("Bearer 0123456789abcdef-admin"))));
        assert!(access.is_admin(&head(Some("bearer   0123456789abcdef-admin "))));
        assert!(!access.is_admin(&head(Some("Bearer 0123456789abcdef-admiN"))));
        assert!(!access.is_admin(&head(Some("Bearer 0123456789abcdef-admin2"))));
        assert!(!access.is_admin(&head(Some("Bearer 0123456789abcdef-admi"))));
        assert!(!access.is_admin(&head(Some("Basic 0123456789abcdef-admin"))));
        assert!(!access.is_admin(&head(Some("0123456789abcdef-admin"))));
        assert!(!access.is_admin(&head(None)));
        // Stats: its own token or the admin's.
        assert!(access.may_read_stats(&head(Some("Bearer 0123456789abcdef-stats"))));
        assert!(access.may_read_stats(&head(Some("Bearer 0123456789abcdef-admin"))));
        assert!(!access.may_read_stats(&head(None)));
        assert!(!access.is_admin(&head(Some("Bearer 0123456789abcdef-stats"))));
        // Nothing configured: stats open, no admin.
        assert!(Access::open().may_read_stats(&head(None)));
        assert!(!Access::open().is_admin(&head(Some("Bearer x"))));
        assert_eq!(format!("{:?}", access.admin), "Some(Token(<redacted>))");
    }

    #[test]
    fn admin_paths_and_keys() {
        assert!(is_admin_path("/api/connections"));
        assert!(is_admin_path("/api/connections/7"));
        assert!(is_admin_path("/api/so/live/chat"));
        assert!(is_admin_path("/api/streams/live/cam"));
        assert!(!is_admin_path("/api/stats"));
        assert!(!is_admin_path("/api/sox"));
        assert_eq!(percent_decode("a%20b%C3%A9").as_deref(), Some("a bé"));
        assert_eq!(percent_decode("%2e%2e").as_deref(), Some(".."));
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("cut%2"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
        assert_eq!(parse_conn_id("c12").unwrap(), ConnId(12));
        assert_eq!(parse_conn_id("12").unwrap(), ConnId(12));
        assert_eq!(parse_conn_id("x").unwrap_err().status, 400);
    }

    /// Requests straight against a server's hub: path traversal and
    /// malformed paths are refused before the hub is touched; writes reach
    /// the object.
    #[tokio::test]
    async fn so_requests_against_a_hub() {
        let shared = Shared::new(&crate::config::Config::default());
        let call = |method: &str, path: &str, body: &str| {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            handle(
                &shared,
                &AdminRequest {
                    method,
                    path,
                    query,
                    body: body.as_bytes(),
                },
            )
        };
        let text = |r: &Response| String::from_utf8_lossy(&r.body).into_owned();
        for bad in [
            "/api/so/live/../etc/passwd",
            "/api/so/live/%2e%2e/x",
            "/api/so/live/room/./x",
            "/api/so//x",
            "/api/so/live/a%2Fb/x",
        ] {
            let r = call("GET", bad, "");
            assert_eq!(r.status, 400, "{bad}: {}", text(&r));
            assert!(text(&r).contains("invalid"), "{bad}: {}", text(&r));
        }
        let r = call("PUT", "/api/so/live/../../x/k", "1");
        assert_eq!(r.status, 400, "{}", text(&r));
        let r = call("PUT", "/api/so/nope/room/board/k", "1");
        assert_eq!(r.status, 404, "unknown app: {}", text(&r));
        let r = call("PUT", "/api/so/live/room/board/k", "not json");
        assert_eq!(r.status, 400, "{}", text(&r));

        let r = call(
            "PUT",
            "/api/so/live/room/board/title%20one",
            r#"{"a":[1,"x"]}"#,
        );
        assert_eq!(r.status, 200, "{}", text(&r));
        let r = call("GET", "/api/so/live/room/board", "");
        assert_eq!(r.status, 200, "{}", text(&r));
        let got: Json = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(got["data"]["title one"], json!({"a": [1, "x"]}));
        assert_eq!(got["persistent"], false);
        let r = call("DELETE", "/api/so/live/room/board/title%20one", "");
        assert_eq!(r.status, 200, "{}", text(&r));
        let got: Json =
            serde_json::from_slice(&call("GET", "/api/so/live/room/board", "").body).unwrap();
        assert_eq!(got["data"], json!({}));
        let r = call("PUT", "/api/so/live/room/board/k?persistent=true", "1");
        assert_eq!(r.status, 409, "persistence differs: {}", text(&r));
        let r = call(
            "POST",
            "/api/so/live/room/board/send",
            r#"{"method":"m","args":[1]}"#,
        );
        assert_eq!(r.status, 200, "{}", text(&r));
        let r = call("POST", "/api/so/live/room/board/send", r#"{"args":[1]}"#);
        assert_eq!(r.status, 400, "{}", text(&r));
        let r = call("POST", "/api/so/live/room/board/explode", "{}");
        assert_eq!(r.status, 404, "{}", text(&r));
        let r = call("PATCH", "/api/so/live/room/board/k", "1");
        assert_eq!(r.status, 405, "{}", text(&r));
        let r = call("GET", "/api/so/live/room/missing", "");
        assert_eq!(r.status, 404, "{}", text(&r));

        let r = call("DELETE", "/api/connections/99", "");
        assert_eq!(r.status, 404, "{}", text(&r));
        let r = call("DELETE", "/api/streams/live/../cam", "");
        assert_eq!(r.status, 400, "{}", text(&r));
        let r = call("DELETE", "/api/streams/live/cam", "");
        assert_eq!(r.status, 404, "{}", text(&r));
        let r = call("GET", "/api/connections", "");
        assert_eq!(r.status, 200, "{}", text(&r));
        let got: Json = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(got["connections"], json!([]));
    }
}
