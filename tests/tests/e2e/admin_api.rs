//! The admin API (`[http] admin_token`) and the stats token against a real
//! `tern serve`: tokens, path checks, kicking connections, dropping a
//! publisher (ffmpeg), and shared-object writes that RTMP and WebSocket
//! subscribers see as ordinary changes. docs/admin-api.md describes the
//! routes.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use std::time::Duration;
use tern_tests::http::request;
use tern_tests::rtmp::RtmpClient;
use tern_tests::{HttpResponse, Server, ServerOptions, require_tool, wait_for};
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;
const ADMIN: &str = "admin-token-0123456789abcdef";
const STATS: &str = "stats-token-0123456789abcdef";

fn server(with_stats_token: bool) -> Server {
    let mut config = format!("[http]\nadmin_token = \"{ADMIN}\"\n");
    if with_stats_token {
        config.push_str(&format!("stats_token = \"{STATS}\"\n"));
    }
    Server::start(ServerOptions {
        config: Some(config),
        ..ServerOptions::default()
    })
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    request(server.http_addr(), method, path, &headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
}

fn admin(server: &Server, method: &str, path: &str, body: &str) -> Json {
    let response = call(server, method, path, Some(ADMIN), body);
    assert_eq!(response.status, 200, "{method} {path}: {}", response.body);
    serde_json::from_str(&response.body).expect("admin API answers JSON")
}

fn connections(server: &Server) -> Vec<Json> {
    admin(server, "GET", "/api/connections", "")["connections"]
        .as_array()
        .expect("connections is an array")
        .clone()
}

/// Without a token, with a wrong one, with the stats token where the admin
/// token is needed → 401; the right token → 200. `/healthz` stays open.
/// Paths that climb out of a scope or name no valid segment get a 400 that
/// says which segment, and the server keeps serving.
#[test]
fn tokens_guard_the_apis_and_bad_paths_get_clear_errors() {
    let server = server(true);
    for (path, good) in [
        ("/api/connections", &[ADMIN][..]),
        ("/api/stats", &[STATS, ADMIN][..]),
        ("/metrics", &[STATS, ADMIN][..]),
    ] {
        let none = call(&server, "GET", path, None, "");
        assert_eq!(none.status, 401, "{path} without a token: {}", none.body);
        let wrong = call(
            &server,
            "GET",
            path,
            Some("wrong-token-0123456789abcdef"),
            "",
        );
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        let almost = &ADMIN[..ADMIN.len() - 1];
        assert_eq!(call(&server, "GET", path, Some(almost), "").status, 401);
        for token in good {
            let ok = call(&server, "GET", path, Some(token), "");
            assert_eq!(ok.status, 200, "{path} with {token}: {}", ok.body);
        }
    }
    let stats_for_admin = call(&server, "GET", "/api/connections", Some(STATS), "");
    assert_eq!(
        stats_for_admin.status, 401,
        "the stats token is no admin token"
    );
    let delete = call(&server, "DELETE", "/api/connections/1", None, "");
    assert_eq!(delete.status, 401);
    assert_eq!(server.http_get("/healthz").unwrap().status, 200);

    for (method, path, body) in [
        ("GET", "/api/so/live/../../etc/passwd", ""),
        ("GET", "/api/so/live/%2e%2e/%2e%2e/etc/passwd", ""),
        ("PUT", "/api/so/chat/room/../../../tmp/evil/key", "1"),
        ("PUT", "/api/so/chat/./board/key", "1"),
        ("DELETE", "/api/streams/live/../cam", ""),
        ("GET", "/api/so/chat/a%2Fb/board", ""),
    ] {
        let response = call(&server, method, path, Some(ADMIN), body);
        assert_eq!(response.status, 400, "{method} {path}: {}", response.body);
        let error: Json = serde_json::from_str(&response.body).unwrap();
        let message = error["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("invalid path segment"),
            "{method} {path}: {message}"
        );
    }
    let response = call(
        &server,
        "PUT",
        "/api/so/nope/room/board/k",
        Some(ADMIN),
        "1",
    );
    assert_eq!(response.status, 404, "unknown app: {}", response.body);
    let response = call(
        &server,
        "PUT",
        "/api/so/chat/room/board/k",
        Some(ADMIN),
        "{not json",
    );
    assert_eq!(response.status, 400, "{}", response.body);
    // Nothing was written anywhere near the data directory's parent.
    assert!(!server.dir().join("tmp").exists());
    assert!(!server.data_dir().join("..").join("tmp").exists());
    assert_eq!(server.http_get("/healthz").unwrap().status, 200);
    // Still serves RTMP.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut rtmp = RtmpClient::connect("after", server.rtmp_addr(), "chat/room1").await;
        rtmp.use_so("chat", false).await;
    });
}

/// A server without `admin_token` has no admin API.
#[test]
fn no_admin_token_no_admin_api() {
    let server = Server::start(ServerOptions::default());
    let response = call(&server, "GET", "/api/connections", Some(ADMIN), "");
    assert_eq!(response.status, 404, "{}", response.body);
    assert_eq!(server.http_get("/api/stats").unwrap().status, 200);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(server: &Server, path: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(
        SECS(10),
        tokio_tungstenite::connect_async(server.ws_url(path)),
    )
    .await
    .expect("no WebSocket handshake within 10 s")
    .expect("WebSocket handshake failed");
    ws
}

/// The next JSON text frame (pings skipped); `None` when closed or after
/// `within`.
async fn ws_next(ws: &mut Ws, within: Duration) -> Option<Json> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn ws_use(ws: &mut Ws, so: &str) -> Json {
    let welcome = ws_next(ws, SECS(10)).await.expect("no welcome");
    assert_eq!(welcome["op"], "welcome", "{welcome}");
    let use_op = json!({"op": "use", "so": so, "persistent": false}).to_string();
    ws.send(Message::text(use_op)).await.unwrap();
    let sync = ws_next(ws, SECS(10)).await.expect("no sync");
    assert_eq!(sync["op"], "sync", "{sync}");
    sync
}

/// `DELETE /api/connections/{id}` closes an RTMP and a WebSocket client
/// (the list shows both first, with their protocol and scope);
/// `DELETE /api/streams/live/{name}` drops ffmpeg's publish.
#[tokio::test(flavor = "current_thread")]
async fn kick_connections_and_drop_a_publisher() {
    let server = server(false);
    let mut rtmp = RtmpClient::connect("rtmp", server.rtmp_addr(), "chat/room1").await;
    rtmp.use_so("board", false).await;
    let mut ws = ws_connect(&server, "chat/room2").await;
    ws_use(&mut ws, "board").await;

    let list = connections(&server);
    let find = |protocol: &str, scope: &str| {
        list.iter()
            .find(|c| c["protocol"] == protocol && c["scope"] == scope)
            .unwrap_or_else(|| panic!("no {protocol} connection in {scope}: {list:?}"))
            .clone()
    };
    let rtmp_entry = find("rtmp", "/chat/room1");
    let ws_entry = find("websocket", "/chat/room2");
    assert_eq!(rtmp_entry["shared_objects"], json!(["board"]));
    assert_eq!(rtmp_entry["address"], "127.0.0.1");

    let kicked = admin(
        &server,
        "DELETE",
        &format!("/api/connections/{}", rtmp_entry["id"]),
        "",
    );
    assert_eq!(kicked["closed"], rtmp_entry["id"]);
    // The RTMP client is told and the socket closes.
    let mut closed = false;
    for _ in 0..20 {
        if rtmp.next_event(SECS(10)).await.is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the kicked RTMP client's connection stayed open");
    let again = call(
        &server,
        "DELETE",
        &format!("/api/connections/{}", rtmp_entry["id"]),
        Some(ADMIN),
        "",
    );
    assert_eq!(again.status, 404, "{}", again.body);

    admin(
        &server,
        "DELETE",
        &format!("/api/connections/c{}", ws_entry["id"]),
        "",
    );
    assert_eq!(
        ws_next(&mut ws, SECS(10)).await,
        None,
        "the kicked WebSocket stayed open"
    );
    let left = wait_for(SECS(5), || connections(&server).is_empty().then_some(()));
    assert!(left.is_some(), "still listed: {:?}", connections(&server));

    if !require_tool("ffmpeg") {
        return;
    }
    let mut publisher = tern_tests::ffmpeg_publish(
        server.dir(),
        "publish",
        &server.rtmp_url("live/cam"),
        SECS(30),
    );
    tern_tests::wait_publishing(&server, "/live", "cam");
    let dropped = admin(&server, "DELETE", "/api/streams/live/cam", "");
    assert_eq!(dropped["dropped"], "/live/cam");
    let gone = wait_for(SECS(10), || {
        server
            .stream_stats("/live", "cam")
            .is_none_or(|s| s["publishing"] == false)
            .then_some(())
    });
    assert!(gone.is_some(), "still publishing: {}", server.stats());
    // The test file lasts 12 s at -re: a dropped publisher ends well before.
    let status = publisher.wait_exit(SECS(20));
    assert!(
        publisher.ran_for().is_some_and(|d| d < SECS(11)),
        "ffmpeg went on publishing after its stream was dropped ({status}, ran {:?})",
        publisher.ran_for()
    );
    let none = call(&server, "DELETE", "/api/streams/live/cam", Some(ADMIN), "");
    assert_eq!(none.status, 404, "{}", none.body);
    assert!(
        server
            .log()
            .contains("publisher dropped through the admin API")
    );
}

/// `PUT`, `DELETE` and `POST …/send` on `/api/so/chat/room1/board` reach an
/// RTMP and a WebSocket subscriber as ordinary change, delete and message
/// events, in one version order; `GET` shows the object.
#[tokio::test(flavor = "current_thread")]
async fn so_writes_reach_rtmp_and_websocket_subscribers() {
    let server = server(true);
    let mut rtmp = RtmpClient::connect("rtmp", server.rtmp_addr(), "chat/room1").await;
    let sync = rtmp.use_so("board", false).await;
    let v0 = sync["version"].as_u64().unwrap();
    let mut ws = ws_connect(&server, "chat/room1").await;
    ws_use(&mut ws, "board").await;

    let put = admin(
        &server,
        "PUT",
        "/api/so/chat/room1/board/title",
        r#"{"text":"hello","n":3}"#,
    );
    assert_eq!(put["version"], v0 + 1);
    let deleted = admin(&server, "DELETE", "/api/so/chat/room1/board/title", "");
    assert_eq!(deleted["version"], v0 + 2);
    let sent = admin(
        &server,
        "POST",
        "/api/so/chat/room1/board/send",
        r#"{"method":"announce","args":["doors open",1]}"#,
    );
    assert_eq!(sent["sent_to"], 2);
    let put = admin(&server, "PUT", "/api/so/chat/room1/board/a%20b", "\"x\"");
    assert_eq!(put["version"], v0 + 3);

    let got = admin(&server, "GET", "/api/so/chat/room1/board", "");
    assert_eq!(got["data"], json!({"a b": "x"}));
    assert_eq!(got["version"], v0 + 3);
    assert_eq!(got["subscribers"], 2);

    let seen_rtmp = rtmp.collect_until(SECS(10), |e| e.len() >= 4).await;
    assert_eq!(
        seen_rtmp,
        [
            json!({"op": "change", "so": "board", "version": v0 + 1, "key": "title",
                   "value": {"text": "hello", "n": 3}}),
            json!({"op": "delete", "so": "board", "version": v0 + 2, "key": "title"}),
            json!({"op": "message", "so": "board", "version": v0 + 2, "method": "announce",
                   "args": ["doors open", 1]}),
            json!({"op": "change", "so": "board", "version": v0 + 3, "key": "a b", "value": "x"}),
        ],
        "the RTMP subscriber's view"
    );
    let mut seen_ws = Vec::new();
    while seen_ws.len() < 4 {
        match ws_next(&mut ws, SECS(10)).await {
            Some(frame) => seen_ws.push(frame),
            None => break,
        }
    }
    let ops: Vec<(&str, Option<u64>)> = seen_ws
        .iter()
        .map(|f| (f["op"].as_str().unwrap_or(""), f["version"].as_u64()))
        .collect();
    assert_eq!(
        ops,
        [
            ("change", Some(v0 + 1)),
            ("delete", Some(v0 + 2)),
            ("message", ops.get(2).and_then(|o| o.1)),
            ("change", Some(v0 + 3)),
        ],
        "the WebSocket subscriber's view: {seen_ws:?}"
    );
    assert_eq!(seen_ws[0]["value"], json!({"text": "hello", "n": 3}));
    assert_eq!(seen_ws[0]["key"], "title");
    assert_eq!(seen_ws[1]["key"], "title");
    assert_eq!(seen_ws[2]["method"], "announce");
    assert_eq!(seen_ws[2]["args"], json!(["doors open", 1]));
    assert_eq!(seen_ws[3]["key"], "a b");
}
