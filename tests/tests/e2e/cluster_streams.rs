//! Live streams across three `tern` nodes sharing a real `nats-server -js`
//! (docs/cluster.md, "Streams"): a stream published on node 1 plays on
//! node 3 (pulled from node 1), a second publisher of the name on node 2
//! replaces the first (or is refused under `publish_conflict = "reject"`)
//! and never leaves two live publishers, and `kill -9` of the publishing
//! node ends the stream for node 3's player with the unpublish status.

use serde_json::Value as Json;
use std::time::{Duration, Instant};
use tern_core::hub::MediaKind;
use tern_core::rtmp::ClientEvent;
use tern_tests::rtmp::RtmpClient;
use tern_tests::{
    Probe, Proc, Server, ServerOptions, check_av_capture, ffmpeg_play, ffmpeg_publish,
    require_tools, start_nats, wait_for, wait_publishing,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;
/// `[cluster] stream_ttl_secs` of the nodes.
const TTL_SECS: u64 = 3;

/// A node of the cluster; other nodes pull from its `rtmp_bind`
/// (127.0.0.1 and its port: `advertise_rtmp`'s default).
fn node(nats_port: u16, id: &str, conflict: &str) -> Server {
    Server::start(ServerOptions {
        config: Some(format!(
            "[cluster]\nnats_url = \"nats://127.0.0.1:{nats_port}\"\nnode_id = \"{id}\"\n\
             stream_ttl_secs = {TTL_SECS}\n\n[streams]\npublish_conflict = \"{conflict}\"\n"
        )),
        ..ServerOptions::default()
    })
}

/// A temp dir, a nats-server and `N` nodes ("n1"…) under `policy`;
/// `None` (the test skips) without nats-server, ffmpeg or ffprobe.
fn cluster<const N: usize>(policy: &str) -> Option<(tempfile::TempDir, Proc, [Server; N])> {
    if !require_tools(&["nats-server", "ffmpeg", "ffprobe"]) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (nats, port) = start_nats(dir.path());
    let nodes = std::array::from_fn(|i| node(port, &format!("n{}", i + 1), policy));
    Some((dir, nats, nodes))
}

fn relays(server: &Server) -> Vec<Json> {
    server.stats()["relays"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// True if `server` publishes `/live/cam` from a publisher of its own (not
/// a pull from another node).
fn publishes_itself(server: &Server) -> bool {
    let stats = server.stats();
    let publishing = stats["streams"].as_array().is_some_and(|streams| {
        streams
            .iter()
            .any(|s| s["scope"] == "/live" && s["name"] == "cam" && s["publishing"] == true)
    });
    let pulled = stats["relays"].as_array().is_some_and(|relays| {
        relays
            .iter()
            .any(|r| r["kind"] == "pull" && r["stream"] == "/live/cam")
    });
    publishing && !pulled
}

async fn create_stream(client: &mut RtmpClient) -> u32 {
    client.conn().create_stream().expect("createStream");
    client.flush().await;
    loop {
        match client.next_event(SECS(10)).await {
            Some(ClientEvent::StreamCreated { stream_id, .. }) => return stream_id,
            Some(_) => {}
            None => panic!("no createStream result within 10 s"),
        }
    }
}

/// A video message's frame type and packet type: (keyframe, is a NALU).
fn video_kind(payload: &[u8]) -> (bool, bool) {
    let key = payload.first().is_some_and(|b| b >> 4 == 1);
    let nalu = payload.get(1) == Some(&1);
    (key, nalu)
}

/// Plays `live/cam` on `server` with the RTMP test client; returns it and
/// the time from `play` to its first video frame, which must be a
/// keyframe.
async fn play_first_frame(name: &str, server: &Server) -> (RtmpClient, Duration) {
    let mut client = RtmpClient::connect(name, server.rtmp_addr(), "live").await;
    let stream = create_stream(&mut client).await;
    let asked = Instant::now();
    client.conn().play(stream, "cam", -1.0).expect("play");
    client.flush().await;
    loop {
        match client.next_event(SECS(10)).await {
            Some(ClientEvent::Media {
                kind: MediaKind::Video,
                payload,
                ..
            }) => {
                let (key, nalu) = video_kind(&payload);
                if nalu {
                    assert!(key, "{name}: the first video frame is not a keyframe");
                    return (client, asked.elapsed());
                }
            }
            Some(ClientEvent::Status { code, .. }) if code.contains("NotFound") => {
                panic!("{name}: {code}")
            }
            Some(_) => {}
            None => panic!("{name}: no video within 10 s of play"),
        }
    }
}

/// Reads `client`'s events for `within`: (video frames, keyframes, status
/// codes) in that time.
async fn watch_player(client: &mut RtmpClient, within: Duration) -> (u32, u32, Vec<String>) {
    let deadline = Instant::now() + within;
    let (mut frames, mut keys, mut codes) = (0, 0, Vec::new());
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match client.next_event(left).await {
            Some(ClientEvent::Media {
                kind: MediaKind::Video,
                payload,
                ..
            }) => {
                let (key, nalu) = video_kind(&payload);
                if nalu {
                    frames += 1;
                    keys += u32::from(key);
                }
            }
            Some(ClientEvent::Status { code, .. }) => codes.push(code),
            Some(_) => {}
            None => break,
        }
    }
    (frames, keys, codes)
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_published_on_node_1_plays_on_node_3_until_node_1_is_killed() {
    let Some((dir, _nats, [mut n1, n2, n3])) = cluster("replace") else {
        return;
    };
    let dir = dir.path();
    let _publisher = ffmpeg_publish(dir, "publisher-1", &n1.rtmp_url("live/cam"), SECS(40));
    wait_publishing(&n1, "/live", "cam");

    let (mut player, first) = play_first_frame("player-3", &n3).await;
    eprintln!("node 3: first frame {} ms after play", first.as_millis());
    assert!(
        first < SECS(3),
        "node 3's first frame came {first:?} after play"
    );
    // ffmpeg on node 3 too: H.264 + AAC, every frame once, from a keyframe.
    let out = dir.join("player-3.flv");
    let mut ffmpeg = ffmpeg_play(dir, "ffmpeg-3", &n3.rtmp_url("live/cam"), 3, &out);
    let (frames, _, codes) = watch_player(&mut player, SECS(2)).await;
    assert!(
        frames >= 25,
        "player-3 got {frames} frames in 2 s ({codes:?})"
    );
    assert!(ffmpeg.wait_exit(SECS(20)).success(), "ffmpeg player failed");
    let summary = check_av_capture(&out, 3.0, 1.5, 2.5).unwrap_or_else(|e| panic!("{e}"));
    let probe = Probe::of(&out).expect("probe");
    let first_video = probe.packets_of("video").into_iter().next().expect("video");
    assert!(
        first_video.keyframe,
        "ffmpeg on node 3 did not start on a keyframe"
    );
    eprintln!("ffmpeg on node 3: {summary:?}");
    // One pull on node 3 for both players, from node 1; node 1 sees it as
    // one player. Node 2 has no player and pulls nothing.
    let pulls: Vec<Json> = relays(&n3)
        .into_iter()
        .filter(|r| r["kind"] == "pull" && r["stream"] == "/live/cam")
        .collect();
    assert_eq!(pulls.len(), 1, "node 3's pulls: {pulls:?}");
    assert_eq!(pulls[0]["source"], "cluster");
    assert!(
        pulls[0]["url"]
            .as_str()
            .is_some_and(|u| u.contains(&format!(":{}/", n1.rtmp_port()))),
        "node 3 pulls from {} (node 1 is on port {})",
        pulls[0]["url"],
        n1.rtmp_port()
    );
    assert!(relays(&n2).is_empty(), "node 2: {:?}", relays(&n2));
    assert!(
        !publishes_itself(&n3),
        "node 3 registered its pull as a publish"
    );

    n1.kill9();
    let killed = Instant::now();
    let mut unpublished = None;
    while killed.elapsed() < SECS(TTL_SECS + 5) {
        match player.next_event(SECS(1)).await {
            Some(ClientEvent::Status { code, .. }) if code == "NetStream.Play.UnpublishNotify" => {
                unpublished = Some(killed.elapsed());
                break;
            }
            Some(_) | None => {}
        }
    }
    let unpublished = unpublished.unwrap_or_else(|| {
        panic!(
            "node 3's player got no UnpublishNotify within {} s of kill -9; log:\n{}",
            TTL_SECS + 5,
            n3.log()
        )
    });
    eprintln!(
        "node 3: UnpublishNotify {} ms after kill -9 of node 1",
        unpublished.as_millis()
    );
    // After the TTL the registry has forgotten node 1's stream: a player on
    // node 2 starts no pull and waits.
    std::thread::sleep(SECS(TTL_SECS + 1));
    let mut late = RtmpClient::connect("player-2", n2.rtmp_addr(), "live").await;
    let stream = create_stream(&mut late).await;
    late.conn().play(stream, "cam", -1.0).expect("play");
    late.flush().await;
    let (frames, _, _) = watch_player(&mut late, SECS(2)).await;
    assert_eq!(
        frames, 0,
        "node 2's player got media of a dead node's stream"
    );
    assert!(
        relays(&n2).is_empty(),
        "node 2 pulls a stream whose node is dead: {:?}",
        relays(&n2)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_second_publisher_on_node_2_replaces_the_first_and_node_3_s_player_continues() {
    let Some((dir, _nats, [n1, n2, n3])) = cluster("replace") else {
        return;
    };
    let dir = dir.path();
    let mut first = ffmpeg_publish(dir, "publisher-1", &n1.rtmp_url("live/cam"), SECS(40));
    wait_publishing(&n1, "/live", "cam");
    let (mut player, took) = play_first_frame("player-3", &n3).await;
    eprintln!("node 3: first frame {} ms after play", took.as_millis());

    let _second = ffmpeg_publish(dir, "publisher-2", &n2.rtmp_url("live/cam"), SECS(40));
    // Sampled until node 2 publishes alone. Node 2 is read first: its
    // publish, once started, lasts, so "node 2 live, then node 1 still
    // live" means both were live at node 1's read (reading node 1 first
    // could see the old publisher just before its end and the new one just
    // after its start). Node 2's publish starts only after node 1 has
    // confirmed through the registry that its publisher ended
    // (docs/cluster.md, "Replace across nodes"): no sample may see both.
    let started = Instant::now();
    let mut samples = 0;
    loop {
        let two = publishes_itself(&n2);
        let one = publishes_itself(&n1);
        samples += 1;
        assert!(
            !(one && two),
            "two live publishers of live/cam {:?} after node 2's encoder started",
            started.elapsed()
        );
        if two && !one {
            break;
        }
        assert!(
            started.elapsed() < SECS(10),
            "node 2 did not take the stream over in 10 s; node 2 log:\n{}",
            n2.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "node 2 took over {} ms after its publisher started ({samples} samples)",
        started.elapsed().as_millis()
    );
    assert!(
        n2.log().contains("confirmed its publisher ended"),
        "node 2 went ahead without node 1's confirmation; node 2 log:\n{}",
        n2.log()
    );
    let status = first.wait(SECS(10));
    assert!(
        status.is_some(),
        "node 1's publisher was not dropped after the takeover"
    );
    assert!(
        n1.log().contains("was taken over"),
        "node 1 log:\n{}",
        n1.log()
    );
    // Node 3 follows the name to node 2.
    let moved = wait_for(SECS(10), || {
        relays(&n3).into_iter().find(|r| {
            r["kind"] == "pull"
                && r["state"] == "live"
                && r["url"]
                    .as_str()
                    .is_some_and(|u| u.contains(&format!(":{}/", n2.rtmp_port())))
        })
    });
    assert!(
        moved.is_some(),
        "node 3 does not pull from node 2: {:?}",
        relays(&n3)
    );
    let (frames, keys, codes) = watch_player(&mut player, SECS(4)).await;
    eprintln!("node 3's player after the takeover: {frames} frames, {keys} keyframes, {codes:?}");
    assert!(
        frames >= 50 && keys >= 1,
        "node 3's player did not continue: {frames} frames, {keys} keyframes in 4 s ({codes:?})"
    );
    assert!(!publishes_itself(&n1) && publishes_itself(&n2));
}

#[tokio::test(flavor = "current_thread")]
async fn with_reject_a_second_publisher_on_node_2_is_refused() {
    let Some((dir, _nats, [n1, n2])) = cluster("reject") else {
        return;
    };
    let dir = dir.path();
    let _first = ffmpeg_publish(dir, "publisher-1", &n1.rtmp_url("live/cam"), SECS(40));
    wait_publishing(&n1, "/live", "cam");

    let mut second = RtmpClient::connect("publisher-2", n2.rtmp_addr(), "live").await;
    let stream = create_stream(&mut second).await;
    second.conn().publish(stream, "cam").expect("publish");
    second.flush().await;
    let answer = loop {
        match second.next_event(SECS(10)).await {
            Some(ClientEvent::Status {
                code, description, ..
            }) if code.starts_with("NetStream.Publish.") => break (code, description),
            Some(_) => {}
            None => panic!("publisher-2 got no answer to publish within 10 s"),
        }
    };
    assert_eq!(answer.0, "NetStream.Publish.BadName", "{answer:?}");
    assert!(answer.1.contains("n1"), "{answer:?}");
    assert!(publishes_itself(&n1) && !publishes_itself(&n2));
    // Once node 1's publisher is gone the name is free for node 2.
    drop(_first);
    let freed = wait_for(SECS(10), || (!publishes_itself(&n1)).then_some(()));
    assert!(freed.is_some(), "node 1 still publishes");
    let mut third = RtmpClient::connect("publisher-3", n2.rtmp_addr(), "live").await;
    let stream = create_stream(&mut third).await;
    third.conn().publish(stream, "cam").expect("publish");
    third.flush().await;
    let code = loop {
        match third.next_event(SECS(10)).await {
            Some(ClientEvent::Status { code, .. }) if code.starts_with("NetStream.Publish.") => {
                break code;
            }
            Some(_) => {}
            None => panic!("publisher-3 got no answer to publish within 10 s"),
        }
    };
    assert_eq!(code, "NetStream.Publish.Start");
}

/// The two sides of a takeover nobody answers: node 2 takes over the name
/// of a killed node 1 only after node 1's lease has surely lapsed (the TTL
/// and a margin after its claim), and a node that loses NATS ends its own
/// publisher when its lease lapses, before the TTL — so a takeover
/// elsewhere that it cannot confirm never overlaps it.
#[tokio::test(flavor = "current_thread")]
async fn an_unanswered_takeover_waits_for_the_lease_and_a_node_without_nats_ends_its_publisher() {
    let Some((dir, nats, [mut n1, n2])) = cluster("replace") else {
        return;
    };
    let dir = dir.path();
    let _first = ffmpeg_publish(dir, "publisher-1", &n1.rtmp_url("live/cam"), SECS(40));
    wait_publishing(&n1, "/live", "cam");

    n1.kill9();
    let killed = Instant::now();
    let _second = ffmpeg_publish(dir, "publisher-2", &n2.rtmp_url("live/cam"), SECS(40));
    let live = wait_for(SECS(TTL_SECS + 8), || publishes_itself(&n2).then_some(()));
    assert!(live.is_some(), "node 2 never published; log:\n{}", n2.log());
    let took = killed.elapsed();
    eprintln!(
        "node 2 published {} ms after node 1's kill",
        took.as_millis()
    );
    assert!(
        n2.log().contains("did not confirm the takeover"),
        "node 2 went ahead without waiting for node 1's lease; log:\n{}",
        n2.log()
    );

    nats.signal_group("STOP");
    let stopped = Instant::now();
    let ended = wait_for(SECS(TTL_SECS + 5), || {
        (!publishes_itself(&n2)).then_some(())
    });
    let took = stopped.elapsed();
    nats.signal_group("CONT");
    assert!(ended.is_some(), "node 2 kept publishing without NATS");
    eprintln!(
        "node 2 ended its publisher {} ms after NATS stopped",
        took.as_millis()
    );
    assert!(
        took < SECS(TTL_SECS),
        "node 2 ended its publisher {took:?} after NATS stopped: not within the TTL"
    );
    assert!(
        n2.log().contains("did not confirm this node's publish"),
        "log:\n{}",
        n2.log()
    );
}
