//! One WebSocket client floods `set`s into a room with 50 ordinary
//! subscribers: it is limited (`SharedObject.RateLimited`) and then
//! dropped with a log line, while the 50 stay connected and receive every
//! change that was accepted, in order. And `client_so_write = false`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use std::time::Duration;
use tern_tests::{Server, ServerOptions};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECS: fn(u64) -> Duration = Duration::from_secs;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn next_json(ws: &mut Ws, within: Duration) -> Option<Json> {
    loop {
        match tokio::time::timeout(within, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            _ => return None,
        }
    }
}

/// Connects to `url`, waits for `welcome`, uses `so`, waits for its sync.
async fn joined(url: &str, so: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    assert_eq!(next_json(&mut ws, SECS(10)).await.unwrap()["op"], "welcome");
    ws.send(Message::text(
        json!({"op":"use","so":so,"persistent":false}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws, SECS(10)).await.unwrap()["op"], "sync");
    ws
}

fn set(key: &str, value: Json) -> Message {
    Message::text(json!({"op":"set","so":"board","key":key,"value":value}).to_string())
}

#[tokio::test]
async fn a_flooder_is_limited_then_dropped_and_subscribers_get_every_accepted_change() {
    let server = Server::start(ServerOptions::default());
    let url = server.ws_url("chat/flood");
    let mut subscribers = Vec::new();
    for _ in 0..50 {
        subscribers.push(joined(&url, "board").await);
    }
    // Each subscriber collects the values of `k` until `end` is set.
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut values = Vec::new();
                loop {
                    let Some(frame) = next_json(&mut ws, SECS(30)).await else {
                        return (values, false);
                    };
                    if frame["op"] == "change" && frame["key"] == "k" {
                        values.push(frame["value"].as_u64().unwrap());
                    } else if frame["op"] == "change" && frame["key"] == "end" {
                        return (values, true);
                    }
                }
            })
        })
        .collect();

    let flooder = joined(&url, "board").await;
    let (mut sink, mut stream) = flooder.split();
    let reader = tokio::spawn(async move {
        let (mut acks, mut limited, mut closed) = (0u64, 0u64, false);
        while let Ok(Some(frame)) = tokio::time::timeout(SECS(20), stream.next()).await {
            match frame {
                Ok(Message::Text(t)) => {
                    let j: Json = serde_json::from_str(t.as_str()).unwrap();
                    if j["op"] == "ack" {
                        acks += 1;
                    } else if j["op"] == "error" && j["code"] == "SharedObject.RateLimited" {
                        limited += 1;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        (acks, limited, closed)
    });
    let mut sent = 0u64;
    for i in 0..20_000u64 {
        if sink.send(set("k", json!(i))).await.is_err() {
            break;
        }
        sent += 1;
    }
    let (acks, limited, closed) = reader.await.unwrap();
    eprintln!(
        "flooder: sent {sent}, accepted {acks}, refused with RateLimited {limited}, closed {closed}"
    );
    assert!(closed, "the flooder was not dropped");
    assert!(
        (500..2_000).contains(&acks),
        "accepted {acks}: not the burst of 500 plus 100/s"
    );
    assert!(limited >= 1, "no RateLimited status");

    // A polite writer ends the subscribers' collection.
    let mut last = joined(&url, "board").await;
    last.send(set("end", json!(true))).await.unwrap();
    let mut lists = Vec::new();
    for reader in readers {
        let (values, stayed) = reader.await.unwrap();
        assert!(
            stayed,
            "a subscriber was disconnected after {} changes",
            values.len()
        );
        lists.push(values);
    }
    for values in &lists {
        assert_eq!(
            values.len() as u64,
            acks,
            "a subscriber missed accepted changes"
        );
        assert_eq!(values, &lists[0], "subscribers saw different changes");
        assert!(values.windows(2).all(|w| w[0] < w[1]), "out of order");
    }
    let log = server.log();
    assert!(log.contains("shared-object rate limit:"), "{log}");
    assert!(!log.contains("subscriber too slow"), "{log}");
}

#[tokio::test]
async fn client_so_write_false_lets_clients_read_only() {
    let server = Server::start(ServerOptions {
        config: Some("[apps.board]\nclient_so_write = false\n".to_owned()),
        ..ServerOptions::default()
    });
    let mut ws = joined(&server.ws_url("board/lobby"), "news").await;
    ws.send(set("headline", json!("hi"))).await.unwrap();
    let reply = next_json(&mut ws, SECS(10)).await.unwrap();
    assert_eq!(reply["op"], "error", "{reply}");
    assert_eq!(reply["code"], "SharedObject.NoWriteAccess", "{reply}");
    ws.send(Message::text(
        json!({"op":"send","so":"news","method":"m","args":[]}).to_string(),
    ))
    .await
    .unwrap();
    let reply = next_json(&mut ws, SECS(10)).await.unwrap();
    assert_eq!(reply["code"], "SharedObject.NoWriteAccess", "{reply}");
    // Still connected, and reading works.
    ws.send(Message::text(
        json!({"op":"use","so":"other","persistent":false}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws, SECS(10)).await.unwrap()["op"], "sync");
    assert!(server.log().contains("client_so_write is off"));
}

/// RTMP clients get the same answers as shared-object status events: a
/// read-only app refuses their writes, and a flooder is limited.
#[tokio::test]
async fn rtmp_clients_get_the_same_statuses() {
    use tern_tests::rtmp::RtmpClient;
    let server = Server::start(ServerOptions {
        config: Some(
            "[apps.board]\nclient_so_write = false\n[apps.chat]\n\
             [shared_objects]\nmax_ops_per_sec = 10\nmax_ops_burst = 20\n"
                .to_owned(),
        ),
        ..ServerOptions::default()
    });
    let mut reader = RtmpClient::connect("reader", server.rtmp_addr(), "board/lobby").await;
    reader.use_so("news", false).await;
    reader.set("news", "headline", &json!("hi")).await;
    let entries = reader.collect_until(SECS(10), |e| !e.is_empty()).await;
    assert_eq!(entries[0]["op"], "error", "{entries:?}");
    assert_eq!(
        entries[0]["code"], "SharedObject.NoWriteAccess",
        "{entries:?}"
    );

    // Fewer refusals than make it drop the client (that is the WebSocket
    // test's part): the client may keep writing without a reset.
    let mut flooder = RtmpClient::connect("flooder", server.rtmp_addr(), "chat/room").await;
    flooder.use_so("s", false).await;
    for i in 0..90 {
        flooder.set("s", "k", &json!(i)).await;
    }
    let entries = flooder.collect_until(SECS(10), |e| e.len() >= 90).await;
    let acks = entries.iter().filter(|e| e["op"] == "ack").count();
    let limited = entries
        .iter()
        .filter(|e| e["code"] == "SharedObject.RateLimited")
        .count();
    // The burst of 20 (less the use) and the odd refill; the rest refused.
    assert_eq!(acks + limited, 90, "{entries:?}");
    assert!((19..30).contains(&acks), "{acks} acks");
    assert!(
        server.log().contains("shared-object rate limit reached"),
        "{}",
        server.log()
    );
}
