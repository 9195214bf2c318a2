//! Remote shared objects through `tern so` clients (the binary's own RTMP
//! client): changes reach every subscriber, and acknowledged persistent
//! values survive `kill -9`.

use serde_json::{Value as Json, json};
use std::time::Duration;
use tern_tests::rtmp::RtmpClient;
use tern_tests::{Proc, Server, ServerOptions, tern_so};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Runs `tern so set [--persistent] URL SO KEY JSON`, expects exit 0 and an
/// ack line for `key`; returns the acknowledged version.
fn set(server: &Server, tag: &str, persistent: bool, so: &str, key: &str, value: &str) -> u64 {
    let url = server.rtmp_url("chat/room1");
    let mut args = vec!["set"];
    if persistent {
        args.push("--persistent");
    }
    args.extend([url.as_str(), so, key, value]);
    let mut proc = tern_so(server.dir(), tag, SECS(15), &args);
    let status = proc.wait_exit(SECS(20));
    assert!(
        status.success(),
        "tern so set {key} failed ({status}): {}",
        proc.stderr_text()
    );
    let ack = proc
        .json_lines()
        .into_iter()
        .find(|line| line["event"] == "ack")
        .unwrap_or_else(|| panic!("no ack from tern so set: {:?}", proc.stdout_text()));
    assert_eq!(ack["key"], key, "{ack}");
    assert_eq!(ack["so"], so, "{ack}");
    ack["version"].as_u64().expect("ack without a version")
}

fn watch(server: &Server, tag: &str, persistent: bool, so: &str) -> Proc {
    let url = server.rtmp_url("chat/room1");
    let mut args = vec!["watch"];
    if persistent {
        args.push("--persistent");
    }
    args.extend([url.as_str(), so]);
    tern_so(server.dir(), tag, SECS(60), &args)
}

fn wait_sync(watcher: &mut Proc, tag: &str) -> Json {
    watcher
        .wait_for_json(SECS(10), |line| line["event"] == "sync")
        .unwrap_or_else(|| {
            panic!(
                "{tag} printed no sync line; stdout {:?}, stderr {:?}",
                watcher.stdout_text(),
                watcher.stderr_text()
            )
        })
}

fn wait_change(watcher: &mut Proc, tag: &str, key: &str, value: &Json) -> Json {
    watcher
        .wait_for_json(SECS(10), |line| {
            line["event"] == "change" && line["key"] == key && line["value"] == *value
        })
        .unwrap_or_else(|| {
            panic!(
                "{tag} did not see {key} = {value}; stdout:\n{}",
                watcher.stdout_text()
            )
        })
}

/// Two watchers of one transient shared object see every set, from any
/// client, in order and with increasing versions; the server's stats list
/// the object with both subscribers; a client that joins later gets all the
/// values in its sync.
#[test]
fn two_watchers_see_each_others_sets() {
    let server = Server::start(ServerOptions::default());
    let mut alice = watch(&server, "watch-alice", false, "room");
    let mut bob = watch(&server, "watch-bob", false, "room");
    wait_sync(&mut alice, "alice's watcher");
    wait_sync(&mut bob, "bob's watcher");

    // `tern so watch` only reads, so each client's writes are separate
    // `tern so set` connections: a third party, then "alice", then "bob".
    let sets = [
        ("set-third", "topic", json!("weather")),
        ("set-alice", "alice", json!({"says": "hi bob", "n": 1})),
        ("set-bob", "bob", json!(["hi", "alice"])),
    ];
    let mut last_version = 0;
    for (tag, key, value) in &sets {
        let version = set(&server, tag, false, "room", key, &value.to_string());
        assert!(
            version > last_version,
            "version {version} after {last_version}"
        );
        last_version = version;
        for (watcher, who) in [(&mut alice, "alice's watcher"), (&mut bob, "bob's watcher")] {
            let change = wait_change(watcher, who, key, value);
            assert_eq!(change["version"].as_u64(), Some(version), "{change}");
        }
    }
    // Each watcher saw exactly those changes, in order.
    for (watcher, who) in [(&alice, "alice"), (&bob, "bob")] {
        let keys: Vec<Json> = watcher
            .json_lines()
            .into_iter()
            .filter(|l| l["event"] == "change")
            .map(|l| l["key"].clone())
            .collect();
        assert_eq!(
            keys,
            [json!("topic"), json!("alice"), json!("bob")],
            "{who}"
        );
    }

    let stats = server.stats();
    let object = stats["shared_objects"]
        .as_array()
        .and_then(|all| all.iter().find(|o| o["name"] == "room"))
        .unwrap_or_else(|| panic!("room is not in the stats: {stats}"));
    assert_eq!(object["scope"], "/chat/room1", "{object}");
    assert_eq!(object["subscribers"], 2, "{object}");
    assert_eq!(object["persistent"], false, "{object}");
    assert_eq!(object["version"].as_u64(), Some(last_version), "{object}");

    let mut late = watch(&server, "watch-late", false, "room");
    let sync = wait_sync(&mut late, "the late watcher");
    let expected: serde_json::Map<String, Json> = sets
        .iter()
        .map(|(_, key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    assert_eq!(sync["data"], Json::Object(expected), "{sync}");
    assert_eq!(sync["version"].as_u64(), Some(last_version), "{sync}");
}

/// Every acknowledged set of a persistent shared object is on disk: after
/// `kill -9` and a restart on the same data directory, a new subscriber's
/// sync holds all the values.
#[test]
fn persistent_values_survive_kill_9() {
    let mut server = Server::start(ServerOptions::default());
    let scores = [
        ("ann", 10),
        ("ben", 20),
        ("cat", 30),
        ("dan", 40),
        ("eve", 50),
    ];
    let mut last = 0;
    for (name, score) in scores {
        let version = set(
            &server,
            &format!("set-{name}"),
            true,
            "scores",
            name,
            &score.to_string(),
        );
        assert!(version > last, "version {version} after {last}");
        last = version;
    }
    // Overwrite one: the newest acknowledged value must win.
    let version = set(&server, "set-ann-again", true, "scores", "ann", "11");
    assert!(version > last, "version {version} after {last}");

    server.kill9();
    server.restart();

    let mut watcher = watch(&server, "watch-after-restart", true, "scores");
    let sync = wait_sync(&mut watcher, "the watcher after the restart");
    let data = sync["data"]
        .as_object()
        .unwrap_or_else(|| panic!("sync without data: {sync}"));
    let mut found: Vec<(String, f64)> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<(String, f64)> = [
        ("ann", 11.0),
        ("ben", 20.0),
        ("cat", 30.0),
        ("dan", 40.0),
        ("eve", 50.0),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), *v))
    .collect();
    assert_eq!(found, expected, "{sync}");
    assert!(
        sync["version"].as_u64() >= Some(version),
        "version went back from {version}: {sync}"
    );
}

/// A subscriber that stops reading while a writer makes many changes, then
/// reads: it gets every change once, in version order. The server writes
/// notices to idle subscribers' sockets itself until a socket is full; from
/// then on the connection's task writes, starting with what was left over
/// (runtime-std's `direct_write`). Every 50th value is too large for one
/// chunk, so the connection encodes it itself and the two ways interleave.
/// 8 MB in all: about twice what loopback socket buffers absorb here.
#[tokio::test(flavor = "current_thread")]
async fn a_subscriber_that_reads_late_gets_every_change_once_in_order() {
    const CHANGES: usize = 2500;
    // The writer sends as fast as it can, far above the default
    // shared-object rate limit (100/s, burst 500): this test is about
    // delivery order, so the limit is off (tests/tests/e2e/so_rate_limit.rs
    // tests the limit).
    let server = Server::start(ServerOptions {
        config: Some("[shared_objects]\nmax_ops_per_sec = 0\n".to_owned()),
        ..ServerOptions::default()
    });
    let addr = server.rtmp_addr();
    let mut subscriber = RtmpClient::connect("subscriber", addr, "chat/order").await;
    let mut writer = RtmpClient::connect("writer", addr, "chat/order").await;
    let first = subscriber.use_so("o", false).await["version"].clone();
    writer.use_so("o", false).await;
    let value = |i: usize| {
        let pad = if i % 50 == 49 { 20_000 } else { 3_000 };
        format!("{i:05}{}", "x".repeat(pad))
    };
    for i in 0..CHANGES {
        writer.set("o", "k", &json!(value(i))).await;
    }
    // Every change applied (the writer's acks) before the subscriber reads.
    let acks = writer.collect_until(SECS(60), |e| e.len() >= CHANGES).await;
    assert_eq!(acks.len(), CHANGES, "the writer's acks");
    let changes = subscriber
        .collect_until(SECS(60), |e| e.len() >= CHANGES)
        .await;
    assert_eq!(
        changes.len(),
        CHANGES,
        "every change reaches the subscriber"
    );
    let first = first.as_u64().expect("version");
    for (i, change) in changes.iter().enumerate() {
        assert_eq!(change["op"], "change");
        assert_eq!(change["version"], json!(first + 1 + i as u64), "change {i}");
        assert_eq!(change["value"], json!(value(i)), "change {i}");
    }
}
