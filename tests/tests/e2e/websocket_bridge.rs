//! RTMP and WebSocket clients in one room: core RTMP clients
//! ([`RtmpClient`]), tokio-tungstenite WebSocket clients and a Python
//! `websockets` client (tests/python/ws_client.py) share shared objects.
//! Every set, delete and send reaches every subscriber exactly once, in one
//! order for all; Red5 chat mode (subprotocol `chat`) bridges plain text and
//! SO changes of `message`.

use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tern_tests::rtmp::RtmpClient;
use tern_tests::ws::WsClient;
use tern_tests::{Proc, Server, ServerOptions, require_tool, wait_for, workspace_root};

const SECS: fn(u64) -> Duration = Duration::from_secs;
/// Between two scripted ops of one client, so the scripts interleave.
const PAUSE: Duration = Duration::from_millis(3);

fn python_client() -> PathBuf {
    workspace_root().join("tests/python/ws_client.py")
}

/// Whether python3 can import `websockets` (skips, or fails under
/// `TERN_REQUIRE_TOOLS=1`, when it cannot).
fn require_python_websockets() -> bool {
    if !require_tool("python3") {
        return false;
    }
    let present = std::process::Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    tern_tests::require(
        "Python package websockets (pip install websockets)",
        present,
    )
}

/// Starts tests/python/ws_client.py with `args`.
fn spawn_python(server: &Server, name: &str, args: &[&str]) -> Proc {
    let script = python_client().to_string_lossy().into_owned();
    Proc::spawn(
        server.dir(),
        name,
        SECS(40),
        "python3",
        std::iter::once(script.as_str()).chain(args.iter().copied()),
    )
}

/// The shared-object ops among `frames` (what the order check compares),
/// without the "go" message that starts the scripts.
fn so_ops(frames: &[Json], so: &str) -> Vec<Json> {
    frames
        .iter()
        .filter(|f| f["so"] == so && f["method"] != "go")
        .filter(|f| {
            matches!(
                f["op"].as_str(),
                Some("ack" | "change" | "delete" | "message")
            )
        })
        .cloned()
        .collect()
}

fn is_done(entry: &Json) -> bool {
    entry["op"] == "message" && entry["method"] == "done"
}

/// A client's script: ops in the WebSocket protocol's shape (without `so`).
fn scripts() -> Vec<(&'static str, Vec<Json>)> {
    let set = |key: &str, value: Json| json!({"op": "set", "key": key, "value": value});
    let delete = |key: &str| json!({"op": "delete", "key": key});
    let send =
        |who: &str, extra: Json| json!({"op": "send", "method": "note", "args": [who, extra]});
    let line = json!("same line");
    vec![
        (
            "rtmp-a",
            vec![
                set("message", line.clone()),
                set("message", line.clone()),
                set("a", json!({"by": "rtmp-a", "n": 1})),
                send("rtmp-a", json!(1)),
                delete("a"),
            ],
        ),
        (
            "rtmp-b",
            vec![
                set("b", json!([1, 2, 3])),
                send("rtmp-b", json!("x")),
                set("b", json!({"by": "rtmp-b", "n": 2, "ok": true})),
            ],
        ),
        (
            "ws-a",
            vec![
                set("w", json!({"by": "ws-a"})),
                set("message", json!("hello from ws-a")),
                send("ws-a", json!({"deep": [true, null]})),
                delete("w"),
            ],
        ),
        (
            "ws-b",
            vec![
                set("x", json!(null)),
                set("x", json!(2.5)),
                send("ws-b", json!(-7)),
            ],
        ),
        (
            "py",
            vec![
                set("py", json!("one")),
                set("message", line.clone()),
                set("message", line),
                delete("py"),
                send("py", json!([])),
            ],
        ),
    ]
}

/// Checks that every client saw every op exactly once, in one order, with
/// consecutive versions from `v0 + 1`, its own sets acknowledged and the
/// others' changed; returns the common sequence as `(version, origin, op)`.
fn check_views(
    views: &[(&str, Vec<Json>)],
    scripts: &[(&str, Vec<Json>)],
    v0: u64,
) -> Vec<(u64, String, Json)> {
    let total: usize = scripts.iter().map(|(_, ops)| ops.len()).sum();
    let dump = || {
        views
            .iter()
            .map(|(name, view)| {
                let lines: Vec<String> = view.iter().map(Json::to_string).collect();
                format!("{name}:\n  {}", lines.join("\n  "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (name, view) in views {
        assert_eq!(
            view.len(),
            total,
            "{name} received {} ops, {total} were sent\n{}",
            view.len(),
            dump()
        );
    }
    // Which client deletes which key (each key is deleted by one client).
    let deleter: BTreeMap<String, &str> = scripts
        .iter()
        .flat_map(|(name, ops)| {
            ops.iter()
                .filter(|op| op["op"] == "delete")
                .map(move |op| (op["key"].as_str().unwrap_or_default().to_owned(), *name))
        })
        .collect();
    let mut by_origin: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    let mut sequence = Vec::new();
    let mut version = v0;
    for i in 0..total {
        let entries: Vec<(&str, &Json)> = views.iter().map(|(n, v)| (*n, &v[i])).collect();
        let at = |what: &str| format!("op #{i}: {what}\n{}", dump());
        let first = entries[0].1;
        let (origin, op) = match first["op"].as_str() {
            Some("message") => {
                for (name, e) in &entries {
                    assert_eq!(*e, first, "{}", at(&format!("{name} differs")));
                }
                let origin = first["args"][0].as_str().unwrap_or_default().to_owned();
                let op = json!({"op": "send", "method": first["method"], "args": first["args"]});
                assert_eq!(
                    first["version"].as_u64(),
                    Some(version),
                    "{}",
                    at("a send must not change the version")
                );
                (origin, op)
            }
            Some("delete") => {
                for (name, e) in &entries {
                    assert_eq!(*e, first, "{}", at(&format!("{name} differs")));
                }
                version += 1;
                assert_eq!(
                    first["version"].as_u64(),
                    Some(version),
                    "{}",
                    at("version")
                );
                let key = first["key"].as_str().unwrap_or_default();
                let origin = deleter.get(key).copied().unwrap_or("nobody").to_owned();
                (origin, json!({"op": "delete", "key": key}))
            }
            Some("ack" | "change") => {
                version += 1;
                let acks: Vec<&str> = entries
                    .iter()
                    .filter(|(_, e)| e["op"] == "ack")
                    .map(|(n, _)| *n)
                    .collect();
                assert_eq!(acks.len(), 1, "{}", at("exactly one client gets the ack"));
                let changes: Vec<&Json> = entries
                    .iter()
                    .filter(|(_, e)| e["op"] == "change")
                    .map(|(_, e)| *e)
                    .collect();
                assert_eq!(
                    changes.len(),
                    entries.len() - 1,
                    "{}",
                    at("the others change")
                );
                let value = &changes[0]["value"];
                for (name, e) in &entries {
                    assert_eq!(e["version"].as_u64(), Some(version), "{}", at(name));
                    assert_eq!(e["key"], first["key"], "{}", at(name));
                    if e["op"] == "change" {
                        assert_eq!(&e["value"], value, "{}", at(name));
                    }
                }
                let op = json!({"op": "set", "key": first["key"], "value": value});
                (acks[0].to_owned(), op)
            }
            _ => panic!("{}", at("unexpected entry")),
        };
        by_origin
            .entry(origin.clone())
            .or_default()
            .push(op.clone());
        sequence.push((version, origin, op));
    }
    for (name, ops) in scripts {
        assert_eq!(
            by_origin.remove(*name).unwrap_or_default(),
            *ops,
            "{name}'s ops as everyone saw them differ from its script\n{}",
            dump()
        );
    }
    assert!(by_origin.is_empty(), "ops from nowhere: {by_origin:?}");
    sequence
}

/// Two core RTMP clients, two tokio-tungstenite clients (one joining as
/// `/chat?scope=room1`) and a Python `websockets` client use SO `board` in
/// room `chat/room1` and all run their scripts at once: every set, delete
/// and send reaches every client exactly once, all in the same order, with
/// versions counting up by one per set/delete; the originator of a set gets
/// the ack (RTMP: success), every other client a change; the identical line
/// set twice by two clients reaches everyone four times.
#[tokio::test(flavor = "current_thread")]
async fn one_room_of_rtmp_and_websocket_clients_sees_every_op_once_in_one_order() {
    if !require_python_websockets() {
        return;
    }
    let server = Server::start(ServerOptions::default());
    let so = "board";
    let scripts = scripts();
    let script = |name: &str| -> Vec<Json> {
        let ops = &scripts.iter().find(|(n, _)| *n == name).expect("script").1;
        ops.iter()
            .map(|op| {
                let mut op = op.clone();
                op["so"] = json!(so);
                op
            })
            .collect()
    };
    let total: usize = scripts.iter().map(|(_, ops)| ops.len()).sum();

    let mut rtmp_a = RtmpClient::connect("rtmp-a", server.rtmp_addr(), "chat/room1").await;
    let mut rtmp_b = RtmpClient::connect("rtmp-b", server.rtmp_addr(), "chat/room1").await;
    let mut ws_a = WsClient::connect("ws-a", &server.ws_url("chat/room1")).await;
    let mut ws_b = WsClient::connect("ws-b", &server.ws_url("chat?scope=room1")).await;
    assert_eq!(
        ws_a.subprotocol, None,
        "no subprotocol offered, none selected"
    );

    let mut syncs = vec![
        rtmp_a.use_so(so, false).await,
        rtmp_b.use_so(so, false).await,
        ws_a.use_so(so).await,
        ws_b.use_so(so).await,
    ];

    // The Python client offers tern.v1, uses the SO and runs its script
    // when the "go" message arrives; it exits on the final "done" message.
    let py_ops = Json::Array(script("py")).to_string();
    let url = server.ws_url("chat/room1");
    let mut py = spawn_python(
        &server,
        "py",
        &[
            &url,
            "--subprotocol",
            "tern.v1",
            "--so",
            so,
            "--ops",
            &py_ops,
            "--start-method",
            "go",
            "--delay",
            "0.004",
            "--until-method",
            "done",
        ],
    );
    let py_sync = py
        .wait_for_json(SECS(15), |l| l["op"] == "sync")
        .unwrap_or_else(|| {
            panic!(
                "the Python client got no sync: {}{}",
                py.stdout_text(),
                py.stderr_text()
            )
        });
    syncs.push(py_sync);
    let open = py.json_lines().into_iter().find(|l| l["op"] == "open");
    assert_eq!(
        open.map(|l| l["subprotocol"].clone()),
        Some(json!("tern.v1"))
    );
    // Nothing has been set yet, and all five see the same (fresh) object.
    let v0 = syncs[0]["version"].as_u64().expect("sync version");
    for sync in &syncs {
        assert_eq!(sync["version"].as_u64(), Some(v0), "{syncs:?}");
        assert_eq!(sync["data"], json!({}), "{syncs:?}");
    }

    // "go": Python starts its script, and so do the four Rust clients, a
    // few milliseconds between ops, so the five scripts interleave; then
    // each reads until it has seen `total` ops.
    rtmp_a.send(so, "go", &[]).await;
    let within = SECS(20);
    let enough = |entries: &[Json]| so_ops(entries, so).len() >= total;
    let rtmp_a_ops = script("rtmp-a");
    let rtmp_b_ops = script("rtmp-b");
    let ws_a_ops = script("ws-a");
    let ws_b_ops = script("ws-b");
    let (view_rtmp_a, view_rtmp_b, view_ws_a, view_ws_b) = tokio::join!(
        async {
            for op in &rtmp_a_ops {
                rtmp_op(&mut rtmp_a, op).await;
                tokio::time::sleep(PAUSE).await;
            }
            rtmp_a.collect_until(within, enough).await
        },
        async {
            for op in &rtmp_b_ops {
                rtmp_op(&mut rtmp_b, op).await;
                tokio::time::sleep(PAUSE).await;
            }
            rtmp_b.collect_until(within, enough).await
        },
        async {
            for op in &ws_a_ops {
                ws_a.send_json(op).await;
                tokio::time::sleep(PAUSE).await;
            }
            ws_a.collect_until(within, enough).await
        },
        async {
            for op in &ws_b_ops {
                ws_b.send_json(op).await;
                tokio::time::sleep(PAUSE).await;
            }
            ws_b.collect_until(within, enough).await
        },
    );

    // The end marker: every client must see it next, with nothing extra
    // (no duplicate) in between.
    rtmp_a.send(so, "done", &[]).await;
    let has_done = |entries: &[Json]| entries.iter().any(is_done);
    let (tail_rtmp_a, tail_rtmp_b, tail_ws_a, tail_ws_b) = tokio::join!(
        rtmp_a.collect_until(SECS(10), has_done),
        rtmp_b.collect_until(SECS(10), has_done),
        ws_a.collect_until(SECS(10), has_done),
        ws_b.collect_until(SECS(10), has_done),
    );
    let status = py.wait_exit(SECS(15));
    assert!(
        status.success(),
        "the Python client failed ({status}); stdout:\n{}\nstderr:\n{}",
        py.stdout_text(),
        py.stderr_text()
    );
    let view_py = py.json_lines();

    let mut views = Vec::new();
    for (name, head, tail) in [
        ("rtmp-a", view_rtmp_a, tail_rtmp_a),
        ("rtmp-b", view_rtmp_b, tail_rtmp_b),
        ("ws-a", view_ws_a, tail_ws_a),
        ("ws-b", view_ws_b, tail_ws_b),
        ("py", view_py, Vec::new()),
    ] {
        let errors: Vec<&Json> = head
            .iter()
            .chain(&tail)
            .filter(|e| e["op"] == "error")
            .collect();
        assert!(errors.is_empty(), "{name} got errors: {errors:?}");
        let mut all = so_ops(&head, so);
        all.extend(so_ops(&tail, so));
        let done = all.iter().position(is_done);
        assert_eq!(
            done,
            Some(total),
            "{name}: the end marker must follow exactly {total} ops: {all:#?}"
        );
        all.truncate(total);
        views.push((name, all));
    }
    let sequence = check_views(&views, &scripts, v0);
    println!("common order of {} ops:", sequence.len());
    for (version, origin, op) in &sequence {
        println!("  v{version} {origin}: {op}");
    }

    // The identical line was set four times (twice by rtmp-a, twice by py):
    // four batches in the common order, so (as checked above) every client
    // got four entries for it: acks for its own, changes for the others'.
    let same_line = json!({"op": "set", "key": "message", "value": "same line"});
    let repeats: Vec<u64> = sequence
        .iter()
        .filter(|(_, _, op)| *op == same_line)
        .map(|(version, _, _)| *version)
        .collect();
    assert_eq!(repeats.len(), 4, "{sequence:?}");
    for (name, view) in &views {
        let seen = view
            .iter()
            .filter(|e| {
                e["key"] == "message" && repeats.contains(&e["version"].as_u64().unwrap_or(0))
            })
            .count();
        assert_eq!(seen, 4, "{name}: {view:#?}");
    }

    // A late joiner's sync holds the state the common order leads to, at
    // the final version.
    let mut state = serde_json::Map::new();
    for (_, _, op) in &sequence {
        let key = op["key"].as_str().unwrap_or_default().to_owned();
        match op["op"].as_str() {
            Some("set") => {
                state.insert(key, op["value"].clone());
            }
            Some("delete") => {
                state.remove(&key);
            }
            _ => {}
        }
    }
    let last_version = sequence.last().map_or(v0, |(version, _, _)| *version);
    let mut late = WsClient::connect("late", &server.ws_url("chat/room1")).await;
    let sync = late.use_so(so).await;
    assert_eq!(sync["version"].as_u64(), Some(last_version), "{sync}");
    assert_eq!(sync["data"], Json::Object(state), "{sync}");
}

/// Applies one scripted op through an RTMP client.
async fn rtmp_op(client: &mut RtmpClient, op: &Json) {
    let so = op["so"].as_str().expect("so");
    let key = op["key"].as_str().unwrap_or_default();
    match op["op"].as_str() {
        Some("set") => client.set(so, key, &op["value"]).await,
        Some("delete") => client.delete(so, key).await,
        Some("send") => {
            let method = op["method"].as_str().expect("method");
            let args = op["args"].as_array().cloned().unwrap_or_default();
            client.send(so, method, &args).await;
        }
        other => panic!("unknown scripted op {other:?}"),
    }
}

/// The number of subscribers `/api/stats` lists for SO `name` in `scope`.
fn so_subscribers(server: &Server, scope: &str, name: &str) -> u64 {
    server.stats()["shared_objects"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|o| o["scope"] == scope && o["name"] == name)
                .and_then(|o| o["subscribers"].as_u64())
        })
        .unwrap_or(0)
}

fn wait_subscribers(server: &Server, scope: &str, name: &str, count: u64) {
    let reached = wait_for(SECS(10), || {
        (so_subscribers(server, scope, name) == count).then_some(())
    });
    assert!(
        reached.is_some(),
        "{scope} {name} does not have {count} subscribers: {}",
        server.stats()
    );
}

/// Red5 chat mode: text lines from chat-mode WebSocket clients (subprotocol
/// `chat`, tokio-tungstenite and Python) arrive at an RTMP client and a JSON
/// WebSocket client as changes of `message` on the transient SO `chat`, one
/// per line, repeated lines included; the sender does not get its own line
/// back. An RTMP set of `message` reaches the chat-mode clients as text (a
/// number as its JSON text); a set of another key does not.
#[tokio::test(flavor = "current_thread")]
async fn red5_chat_mode_bridges_text_lines_and_so_changes() {
    if !require_python_websockets() {
        return;
    }
    let server = Server::start(ServerOptions::default());
    let scope = "/chat/room2";
    let mut rtmp = RtmpClient::connect("rtmp", server.rtmp_addr(), "chat/room2").await;
    let sync = rtmp.use_so("chat", false).await;
    let v0 = sync["version"].as_u64().expect("version");
    let mut json_client = WsClient::connect("json", &server.ws_url("chat/room2")).await;
    json_client.use_so("chat").await;
    let mut chat =
        WsClient::connect_with_subprotocol("chat-rs", &server.ws_url("chat/room2"), Some("chat"))
            .await;
    assert_eq!(
        chat.subprotocol.as_deref(),
        Some("chat"),
        "subprotocol chat selected"
    );
    // A chat client's use is implicit: wait until the hub counts it.
    wait_subscribers(&server, scope, "chat", 3);

    chat.send_text("hello\n").await;
    chat.send_text("line two\r\nline three\n\n").await;
    chat.send_text("hello").await;
    let lines = ["hello", "line two", "line three", "hello"];
    let wanted = |n: usize| move |entries: &[Json]| entries.len() >= n;
    let (rtmp_view, json_view) = tokio::join!(
        rtmp.collect_until(SECS(10), wanted(4)),
        json_client.collect_until(SECS(10), wanted(4)),
    );
    for (name, view) in [("rtmp", &rtmp_view), ("json", &json_view)] {
        let expected: Vec<Json> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                json!({"op": "change", "so": "chat", "version": v0 + 1 + i as u64,
                    "key": "message", "value": line})
            })
            .collect();
        assert_eq!(*view, expected, "{name} saw the chat lines");
    }

    // A Python chat client joins and says one line; it stops once it has
    // the RTMP client's final line.
    let url = server.ws_url("chat/room2");
    let mut py = spawn_python(
        &server,
        "py-chat",
        &[
            &url,
            "--subprotocol",
            "chat",
            "--ops",
            r#"["from python"]"#,
            "--until-text",
            "rtmp says hi",
        ],
    );
    let from_py = json!({"op": "change", "so": "chat", "version": v0 + 5,
        "key": "message", "value": "from python"});
    let (rtmp_view, json_view) = tokio::join!(
        rtmp.collect_until(SECS(15), wanted(1)),
        json_client.collect_until(SECS(15), wanted(1)),
    );
    assert_eq!(
        rtmp_view,
        std::slice::from_ref(&from_py),
        "stdout: {}",
        py.stdout_text()
    );
    assert_eq!(json_view, [from_py]);
    wait_subscribers(&server, scope, "chat", 4);

    // The RTMP client sets another key (not shown in chat), a number and a
    // line.
    rtmp.set("chat", "topic", &json!("not for chat")).await;
    rtmp.set("chat", "message", &json!(42)).await;
    rtmp.set("chat", "message", &json!("rtmp says hi")).await;
    let acks = rtmp.collect_until(SECS(10), wanted(3)).await;
    let ack_versions: Vec<(Json, Option<u64>)> = acks
        .iter()
        .map(|e| (e["op"].clone(), e["version"].as_u64()))
        .collect();
    assert_eq!(
        ack_versions,
        [
            (json!("ack"), Some(v0 + 6)),
            (json!("ack"), Some(v0 + 7)),
            (json!("ack"), Some(v0 + 8))
        ],
        "{acks:?}"
    );
    let json_view = json_client.collect_until(SECS(10), wanted(3)).await;
    let values: Vec<&Json> = json_view.iter().map(|e| &e["value"]).collect();
    assert_eq!(
        values,
        [&json!("not for chat"), &json!(42), &json!("rtmp says hi")]
    );

    // The Rust chat client got everyone's lines but its own, in order.
    let mut texts = Vec::new();
    while texts.last().map(String::as_str) != Some("rtmp says hi") {
        match chat.next_text(SECS(10)).await {
            Some(text) => texts.push(text),
            None => break,
        }
    }
    assert_eq!(texts, ["from python", "42", "rtmp says hi"]);

    let status = py.wait_exit(SECS(15));
    assert!(
        status.success(),
        "the Python chat client failed ({status}); stdout:\n{}\nstderr:\n{}",
        py.stdout_text(),
        py.stderr_text()
    );
    let py_lines = py.json_lines();
    assert_eq!(
        py_lines.first(),
        Some(&json!({"op": "open", "subprotocol": "chat"}))
    );
    let py_texts: Vec<&Json> = py_lines
        .iter()
        .filter(|l| l["op"] == "text")
        .map(|l| &l["text"])
        .collect();
    assert_eq!(
        py_texts,
        [&json!("42"), &json!("rtmp says hi")],
        "no history, no own line"
    );
}

/// `check_views` itself: a consistent pair of views passes, and a view
/// where the originator got a change instead of its ack does not.
#[test]
fn check_views_accepts_one_order_and_rejects_an_echo() {
    let scripts = vec![
        ("a", vec![json!({"op": "set", "key": "k", "value": 1})]),
        (
            "b",
            vec![json!({"op": "send", "method": "m", "args": ["b"]})],
        ),
    ];
    let ack = json!({"op": "ack", "so": "s", "version": 1, "key": "k"});
    let change = json!({"op": "change", "so": "s", "version": 1, "key": "k", "value": 1});
    let message = json!({"op": "message", "so": "s", "version": 1, "method": "m", "args": ["b"]});
    let good = [
        ("a", vec![ack.clone(), message.clone()]),
        ("b", vec![change.clone(), message.clone()]),
    ];
    assert_eq!(check_views(&good, &scripts, 0).len(), 2);
    let echoed = [
        ("a", vec![change.clone(), message.clone()]),
        ("b", vec![change, message]),
    ];
    let result = std::panic::catch_unwind(|| check_views(&echoed, &scripts, 0));
    assert!(result.is_err(), "an echo to the originator must be caught");
}
