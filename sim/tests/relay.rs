//! Origin and edge (docs/relay.md): two tern hosts in turmoil. A
//! publisher on the origin sends numbered synthetic frames; a player on
//! the edge plays the same name. Two ways the stream gets there:
//! - pull: the edge has `pull` from the origin, so the play starts a pull.
//!   Faults: the origin–edge link is partitioned for 3 s, later the origin
//!   crashes and comes back (the publisher reconnects).
//! - push: the origin has `push` to the edge, so the publish is pushed
//!   there. Faults: the same partition, later the edge (the push's target)
//!   crashes and comes back (the player reconnects, the push reconnects
//!   with its backoff and republishes, starting on a keyframe).
//!
//! Invariants, per seed: the edge player's frames are a subsequence of the
//! publisher's, in order; after any missed video frame its next video frame
//! is a keyframe (a relay that restarts starts on one); it gets frames
//! again after each fault; the relay
//! (the edge's pull, the origin's push) reconnected a bounded number of
//! times; the same seed gives the same frames and reconnects.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tern_core::hub::MediaKind;
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{ClientConfig, ClientConnection, ClientEvent};
use tern_runtime_std::relay::service::BoxedConnector;
use tern_runtime_std::relay::{RelayError, Target};
use tern_sim::ServerTuning;
use tern_sim::media::{FRAME_MS, Frame, GOP};
use tern_sim::net::{HTTP_PORT, RTMP_PORT, SimListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ORIGIN: &str = "origin";
const EDGE: &str = "edge";
/// The publisher stops sending at this time.
const PUBLISH_UNTIL: Duration = Duration::from_secs(22);
/// The player stops at this time.
const PLAY_UNTIL: Duration = Duration::from_secs(24);
const PARTITION_FOR: Duration = Duration::from_secs(3);

/// When the faults strike, drawn from the seed: the partition between 5
/// and 7 s, the crash between 12 and 14 s, the bounce 0.5 to 1.5 s later.
#[derive(Clone, Copy, Debug)]
struct Faults {
    partition_at: Duration,
    crash_at: Duration,
    bounce_at: Duration,
}

impl Faults {
    fn of(seed: u64) -> Faults {
        let mut rng = tern_sim::rng::SimRng::fork(seed, 0xED6E);
        let ms = |rng: &mut tern_sim::rng::SimRng, lo, hi| Duration::from_millis(rng.range(lo, hi));
        let partition_at = ms(&mut rng, 5_000, 7_000);
        let crash_at = ms(&mut rng, 12_000, 14_000);
        let bounce_at = crash_at + ms(&mut rng, 500, 1_500);
        Faults {
            partition_at,
            crash_at,
            bounce_at,
        }
    }
}

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

fn core_now() -> tern_core::Instant {
    tern_core::Instant::from_millis(u64::try_from(now().as_millis()).unwrap_or(u64::MAX))
}

/// What one run saw.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    sent: Vec<Frame>,
    played: Vec<(Duration, Frame)>,
    reconnects: Option<u64>,
}

/// How the stream reaches the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relay {
    /// The edge pulls from the origin; the origin crashes.
    Pull,
    /// The origin pushes to the edge; the edge crashes.
    Push,
}

impl Relay {
    /// The host whose `/api/stats` lists the relay.
    fn relaying_host(self) -> &'static str {
        match self {
            Relay::Pull => EDGE,
            Relay::Push => ORIGIN,
        }
    }

    /// When the relay's stats are read: while it still runs (a pull runs
    /// until its players are gone, a push until the publish ends).
    fn observe_at(self) -> Duration {
        match self {
            Relay::Pull => PLAY_UNTIL - Duration::from_millis(500),
            Relay::Push => PUBLISH_UNTIL - Duration::from_millis(500),
        }
    }

    /// The host that crashes and comes back.
    fn crashing_host(self) -> &'static str {
        match self {
            Relay::Pull => ORIGIN,
            Relay::Push => EDGE,
        }
    }
}

/// The server on `host`, relaying as `relay` says.
fn server_host(
    dir: std::path::PathBuf,
    host: &'static str,
    relay: Relay,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = turmoil::Result>>> {
    move || {
        let mut config = ServerTuning::default().config(&dir);
        let live = config.apps.entry("live".to_owned()).or_default();
        match (relay, host) {
            (Relay::Pull, EDGE) => {
                live.pull = Some(format!("rtmp://{ORIGIN}:{RTMP_PORT}/live"));
                live.pull_idle_secs = 2;
            }
            (Relay::Push, ORIGIN) => live.push = vec![format!("rtmp://{EDGE}:{RTMP_PORT}/live")],
            _ => {}
        }
        Box::pin(async move {
            let rtmp = SimListener::bind(RTMP_PORT).await?;
            let http = SimListener::bind(HTTP_PORT).await?;
            let connector = BoxedConnector(Arc::new(|target: Target| {
                Box::pin(async move {
                    let stream = turmoil::net::TcpStream::connect(target.address())
                        .await
                        .map_err(|e| RelayError::Connect(e.to_string()))?;
                    Ok(Box::new(stream) as Box<dyn tern_runtime_std::net::Stream>)
                })
            }));
            tern_runtime_std::serve_on_with_connector(
                config,
                rtmp,
                http,
                connector,
                std::future::pending(),
            )
            .await?;
            Ok(())
        })
    }
}

/// Writes everything the client has queued.
async fn flush<W: AsyncWriteExt + Unpin>(
    client: &mut ClientConnection,
    out: &mut W,
) -> std::io::Result<()> {
    while let Some(bytes) = client.poll_transmit() {
        tokio::time::timeout(Duration::from_secs(2), out.write_all(&bytes))
            .await
            .map_err(|_| std::io::Error::other("write stalled"))??;
    }
    Ok(())
}

/// Connects to `host` and waits for `code` after creating a stream and
/// calling `start(client, stream_id)`.
async fn open(
    host: &str,
    code: &str,
    start: impl Fn(&mut ClientConnection, u32),
) -> std::io::Result<(ClientConnection, turmoil::net::TcpStream, Vec<ClientEvent>)> {
    let mut stream = turmoil::net::TcpStream::connect((host, RTMP_PORT)).await?;
    let config = ClientConfig::new("live", format!("rtmp://{host}/live"));
    let mut client = ClientConnection::new(config, core_now(), &[7; RANDOM_LEN]);
    client
        .create_stream()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut early = Vec::new();
    loop {
        flush(&mut client, &mut stream).await?;
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("no answer"))??;
        if n == 0 {
            return Err(std::io::Error::other("closed"));
        }
        client
            .handle_input(core_now(), &buf[..n])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::StreamCreated { stream_id, .. } => start(&mut client, stream_id),
                ClientEvent::Status { code: c, .. } if c == code => {
                    flush(&mut client, &mut stream).await?;
                    return Ok((client, stream, early));
                }
                other => early.push(other),
            }
        }
    }
}

/// Publishes frames to the origin until [`PUBLISH_UNTIL`], reconnecting
/// (and continuing the count) when the origin goes away.
async fn publisher(sent: Rc<RefCell<Vec<Frame>>>) -> turmoil::Result {
    let mut n: u32 = 0;
    while now() < PUBLISH_UNTIL {
        let Ok((mut client, stream, _)) = open(ORIGIN, "NetStream.Publish.Start", |c, id| {
            let _ = c.publish(id, "cam");
        })
        .await
        else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let (mut rd, mut wr) = tokio::io::split(stream);
        // What the server sends (acks, pings) is not needed here.
        let drain = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while matches!(rd.read(&mut buf).await, Ok(k) if k > 0) {}
        });
        // A new publish starts a new GOP.
        n = n.next_multiple_of(GOP);
        let mut frames = vec![(Frame::VideoHeader, 0), (Frame::AudioHeader, 0)];
        let mut failed = false;
        while now() < PUBLISH_UNTIL && !failed {
            let ts = n.wrapping_mul(FRAME_MS as u32);
            let video = if n.is_multiple_of(GOP) {
                Frame::Key(n)
            } else {
                Frame::Inter(n)
            };
            frames.push((video, ts));
            frames.push((Frame::Audio(n), ts));
            for (frame, ts) in frames.drain(..) {
                let _ = client.send_media(1, frame.kind(), ts, frame.encode());
                if !matches!(frame, Frame::VideoHeader | Frame::AudioHeader) {
                    sent.borrow_mut().push(frame);
                }
            }
            failed = flush(&mut client, &mut wr).await.is_err() || drain.is_finished();
            n += 1;
            tokio::time::sleep(Duration::from_millis(FRAME_MS)).await;
        }
        drain.abort();
    }
    Ok(())
}

/// Plays `cam` on the edge until [`PLAY_UNTIL`], reconnecting if the edge
/// drops it.
async fn player(played: Rc<RefCell<Vec<(Duration, Frame)>>>) -> turmoil::Result {
    tokio::time::sleep(Duration::from_secs(1)).await;
    while now() < PLAY_UNTIL {
        let Ok((mut client, mut stream, early)) = open(EDGE, "NetStream.Play.Start", |c, id| {
            let _ = c.play(id, "cam", -1.0);
        })
        .await
        else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let mut record = |event: ClientEvent| {
            if let ClientEvent::Media {
                kind: kind @ (MediaKind::Audio | MediaKind::Video),
                payload,
                ..
            } = event
                && let Some(frame) = Frame::parse(kind, &payload)
                && !matches!(frame, Frame::VideoHeader | Frame::AudioHeader)
            {
                played.borrow_mut().push((now(), frame));
            }
        };
        early.into_iter().for_each(&mut record);
        let mut buf = vec![0u8; 16 * 1024];
        while now() < PLAY_UNTIL {
            let left = PLAY_UNTIL.saturating_sub(now());
            let Ok(read) = tokio::time::timeout(left, stream.read(&mut buf)).await else {
                break;
            };
            let n = match read {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            if client.handle_input(core_now(), &buf[..n]).is_err() {
                break;
            }
            while let Some(event) = client.poll_event() {
                record(event);
            }
            if flush(&mut client, &mut stream).await.is_err() {
                break;
            }
        }
    }
    Ok(())
}

/// The relay's reconnects, from the `/api/stats` of the host that runs it.
async fn relay_reconnects(relay: Relay, out: Rc<RefCell<Option<u64>>>) -> turmoil::Result {
    tokio::time::sleep(relay.observe_at()).await;
    let host = relay.relaying_host();
    let mut stream = turmoil::net::TcpStream::connect((host, HTTP_PORT)).await?;
    stream
        .write_all(format!("GET /api/stats HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let stats: serde_json::Value = serde_json::from_str(body)?;
    *out.borrow_mut() = stats["relays"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r["reconnects"].as_u64());
    Ok(())
}

fn run(seed: u64, relay: Relay) -> Outcome {
    let faults = Faults::of(seed);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(PLAY_UNTIL + Duration::from_secs(2))
        .tick_duration(Duration::from_millis(10))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .build();
    sim.host(
        ORIGIN,
        server_host(dirs[0].path().to_owned(), ORIGIN, relay),
    );
    sim.host(EDGE, server_host(dirs[1].path().to_owned(), EDGE, relay));
    let sent = Rc::new(RefCell::new(Vec::new()));
    let played = Rc::new(RefCell::new(Vec::new()));
    let reconnects = Rc::new(RefCell::new(None));
    sim.client("publisher", publisher(Rc::clone(&sent)));
    sim.client("player", player(Rc::clone(&played)));
    sim.client("observer", relay_reconnects(relay, Rc::clone(&reconnects)));
    let mut actions: Vec<(Duration, &str)> = vec![
        (faults.partition_at, "partition"),
        (faults.partition_at + PARTITION_FOR, "repair"),
        (faults.crash_at, "crash"),
        (faults.bounce_at, "bounce"),
    ];
    actions.reverse();
    loop {
        while actions.last().is_some_and(|(at, _)| *at <= sim.elapsed()) {
            match actions.pop().map(|(_, a)| a) {
                Some("partition") => sim.partition(ORIGIN, EDGE),
                Some("repair") => sim.repair(ORIGIN, EDGE),
                Some("crash") => sim.crash(relay.crashing_host()),
                Some("bounce") => sim.bounce(relay.crashing_host()),
                _ => {}
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => panic!(
                "seed {seed}: the simulation failed at {:?}: {e}",
                sim.elapsed()
            ),
        }
    }
    drop(sim);
    Outcome {
        sent: sent.borrow().clone(),
        played: played.borrow().clone(),
        reconnects: *reconnects.borrow(),
    }
}

/// The first video frame of `played` that is an inter frame not directly
/// after its predecessor (a decoder could not show it), if any.
fn inter_after_gap(played: &[(Duration, Frame)]) -> Option<&(Duration, Frame)> {
    let mut last: Option<u32> = None;
    played.iter().find(|(_, frame)| {
        let (n, key) = match *frame {
            Frame::Key(n) => (n, true),
            Frame::Inter(n) => (n, false),
            _ => return false,
        };
        let broken = !key && last.is_none_or(|prev| prev.wrapping_add(1) != n);
        last = Some(n);
        broken
    })
}

/// True if `sub` is a subsequence of `all`, in order.
fn is_subsequence(sub: &[Frame], all: &[Frame]) -> Option<usize> {
    let mut it = all.iter();
    sub.iter().position(|f| !it.any(|g| g == f))
}

#[test]
fn an_edge_player_sees_a_subsequence_of_the_origin_through_partition_and_crash() {
    check_seeds(Relay::Pull);
}

#[test]
fn a_pushed_stream_reaches_the_edge_player_through_partition_and_a_target_crash() {
    check_seeds(Relay::Push);
}

/// Runs the seeds (`TERN_SIM_SEED`, or 1 to 5) and checks the invariants.
fn check_seeds(relay: Relay) {
    let seeds: Vec<u64> = match std::env::var("TERN_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("TERN_SIM_SEED is a number")],
        Err(_) => (1..=5).collect(),
    };
    for seed in seeds {
        let repro = format!("TERN_SIM_SEED={seed} cargo test -p tern-sim --test relay ({relay:?})");
        let outcome = run(seed, relay);
        let played: Vec<Frame> = outcome.played.iter().map(|(_, f)| *f).collect();
        assert!(
            outcome.sent.len() > 800,
            "{repro}: the publisher sent only {} frames",
            outcome.sent.len()
        );
        if let Some(at) = is_subsequence(&played, &outcome.sent) {
            panic!(
                "{repro}: frame {at} of the edge player ({:?}) is not next in the origin's order",
                outcome.played[at]
            );
        }
        if let Some((at, frame)) = inter_after_gap(&outcome.played) {
            panic!("{repro}: the edge player got {frame:?} at {at:?} after a gap");
        }
        // Frames arrived before the partition, between the repair and the
        // crash, and after the origin came back.
        let f = Faults::of(seed);
        let windows = [
            (Duration::from_secs(2), f.partition_at),
            (f.partition_at + PARTITION_FOR, f.crash_at),
            (f.bounce_at, PLAY_UNTIL),
        ];
        for (from, to) in windows {
            let n = outcome
                .played
                .iter()
                .filter(|(at, _)| *at >= from && *at < to)
                .count();
            assert!(
                n > 25,
                "{repro}: the edge player got {n} frames between {from:?} and {to:?}"
            );
        }
        let reconnects = outcome
            .reconnects
            .unwrap_or_else(|| panic!("{repro}: {} reported no relay", relay.relaying_host()));
        assert!(
            (1..=8).contains(&reconnects),
            "{repro}: the relay reconnected {reconnects} times"
        );
        eprintln!(
            "{relay:?} seed {seed}: {f:?}: {} frames sent, {} played at the edge, {reconnects} reconnects",
            outcome.sent.len(),
            played.len()
        );
        assert_eq!(run(seed, relay), outcome, "{repro}: not deterministic");
    }
}

#[test]
fn the_gap_check_finds_an_inter_frame_after_a_missed_one() {
    let at = |ms| Duration::from_millis(ms);
    let played = [
        (at(0), Frame::Key(0)),
        (at(1), Frame::Audio(0)),
        (at(2), Frame::Inter(1)),
        (at(3), Frame::Key(25)),
        (at(4), Frame::Inter(26)),
    ];
    assert_eq!(inter_after_gap(&played), None);
    let missed = [
        (at(0), Frame::Key(0)),
        (at(1), Frame::Inter(1)),
        (at(2), Frame::Inter(3)),
    ];
    assert_eq!(inter_after_gap(&missed), Some(&(at(2), Frame::Inter(3))));
    assert_eq!(
        inter_after_gap(&[(at(0), Frame::Inter(7))]),
        Some(&(at(0), Frame::Inter(7))),
        "a play that starts on an inter frame"
    );
}
