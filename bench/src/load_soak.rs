//! Soak mode (`tern-load soak`, run by `bench/soak.sh`): tern under churn
//! for a long time, to see leaks that a benchmark step is too short for.
//!
//! For `duration`, from one thread:
//! - `publishers` publishers, each in its own room `live/soak-p<i>`,
//!   stream `s` at `bitrate`, publish for 20–40 s, go away for 3 s and
//!   come back (a new connection each time);
//! - `players` player slots: each plays a random publisher's stream for
//!   5–30 s, leaves, and a new player takes the slot at once, so about
//!   `players` play at any time and tens join and leave every second;
//! - `so_clients` shared-object clients, alternately RTMP and WebSocket
//!   (tern's JSON protocol), in `so_rooms` rooms whose names change every
//!   `room_generation` (`chat/soak-<r>-g<gen>`: old rooms empty out and
//!   are removed, new ones are created); each uses object `so`, sets its
//!   own key about once a second and leaves after 10–40 s, and a new client
//!   takes its place.
//!
//! Every shared-object client checks what it receives: after the use's
//! sync, each change, acknowledgement or deletion must carry the next
//! version (every write here is a one-key batch, one version step), so a
//! lost change shows as a skipped version and a duplicate as a repeated
//! one. The run ends with one JSON line of counts ([`SoakReport`]).

use crate::media::{self, FrameKind, Schedule, StreamSpec};
use crate::session::{Clock, RtmpUrl, Session, SessionError};
use crate::ws_client::WsClient;
use bytes::BytesMut;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tern_core::amf0::Value;
use tern_core::hub::MediaKind;
use tern_core::message::{SharedObjectMessage, SoEvent};
use tern_core::rtmp::{ClientConfig, ClientEvent};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// `host:port` of tern's RTMP listener.
    pub rtmp: String,
    /// `host:port` of tern's HTTP/WebSocket listener.
    pub ws: String,
    /// How long the load runs.
    pub duration: Duration,
    /// Players at once.
    pub players: usize,
    /// Publishers (one room each).
    pub publishers: usize,
    /// Shared-object clients at once.
    pub so_clients: usize,
    /// Rooms the shared-object clients spread over.
    pub so_rooms: usize,
    /// How often the shared-object rooms get new names.
    pub room_generation: Duration,
    /// Each stream's bitrate, bits/s.
    pub bitrate: u64,
}

/// Counts of a soak run.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct SoakReport {
    /// Seconds the load ran.
    pub secs: u64,
    /// Publisher sessions started / that failed.
    pub publishes: u64,
    pub publish_errors: u64,
    /// Player sessions started / that failed before their time was up.
    pub plays: u64,
    pub play_errors: u64,
    /// Media bytes players read.
    pub played_bytes: u64,
    /// Shared-object sessions (RTMP, WebSocket) / that failed.
    pub so_rtmp_sessions: u64,
    pub so_ws_sessions: u64,
    pub so_errors: u64,
    /// Writes sent, acknowledgements received, others' changes received.
    pub writes: u64,
    pub acks: u64,
    pub changes: u64,
    /// Version steps skipped (a change lost) or repeated (a duplicate).
    pub skipped: u64,
    pub repeated: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

type Shared = Rc<RefCell<SoakReport>>;

fn fail(report: &Shared, what: &str, e: &SessionError) {
    let mut r = report.borrow_mut();
    if r.first_error.is_none() {
        r.first_error = Some(format!("{what}: {e}"));
    }
}

/// A tiny deterministic generator (each task its own).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
    fn secs(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from * 1000 + self.below((to - from) * 1000))
    }
}

/// Runs the soak and returns its counts.
pub fn run(options: &SoakOptions) -> Result<SoakReport, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(options.clone()))
}

async fn drive(options: SoakOptions) -> Result<SoakReport, String> {
    let clock = Clock::new();
    let report: Shared = Rc::default();
    let start = Instant::now();
    let end = start + options.duration;
    let options = Rc::new(options);
    let mut tasks = Vec::new();
    for i in 0..options.publishers {
        let (o, r) = (Rc::clone(&options), Rc::clone(&report));
        tasks.push(tokio::task::spawn_local(async move {
            publisher_slot(i, &o, clock, end, &r).await;
        }));
    }
    // Let the streams start, then ramp players and clients in over 10 s.
    sleep(Duration::from_secs(1)).await;
    let ramp = Duration::from_secs(10);
    for k in 0..options.players {
        let (o, r) = (Rc::clone(&options), Rc::clone(&report));
        let at = Instant::now() + ramp.mul_f64(k as f64 / options.players.max(1) as f64);
        tasks.push(tokio::task::spawn_local(async move {
            sleep_until(at).await;
            player_slot(k, &o, clock, end, &r).await;
        }));
    }
    for k in 0..options.so_clients {
        let (o, r) = (Rc::clone(&options), Rc::clone(&report));
        let at = Instant::now() + ramp.mul_f64(k as f64 / options.so_clients.max(1) as f64);
        tasks.push(tokio::task::spawn_local(async move {
            sleep_until(at).await;
            so_slot(k, &o, clock, start, end, &r).await;
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())?;
    }
    let mut out = report.borrow().clone();
    out.secs = start.elapsed().as_secs();
    Ok(out)
}

fn rtmp_url(options: &SoakOptions, app: &str) -> RtmpUrl {
    RtmpUrl {
        address: options.rtmp.clone(),
        app: app.to_owned(),
        tc_url: format!("rtmp://{}/{app}", options.rtmp),
    }
}

// -------------------------------------------------------------- publishers

async fn publisher_slot(
    i: usize,
    options: &SoakOptions,
    clock: Clock,
    end: Instant,
    report: &Shared,
) {
    let mut rng = Rng::new(i as u64 + 1);
    let url = rtmp_url(options, &format!("live/soak-p{i}"));
    let mut n = 0u64;
    while Instant::now() < end {
        let until = (Instant::now() + rng.secs(20, 40)).min(end);
        report.borrow_mut().publishes += 1;
        n += 1;
        if let Err(e) = publish(&url, options, clock, until, 1_000_000 + i as u64 * 1000 + n).await
        {
            report.borrow_mut().publish_errors += 1;
            fail(report, "publisher", &e);
        }
        sleep_until((Instant::now() + Duration::from_secs(3)).min(end)).await;
    }
}

async fn publish(
    url: &RtmpUrl,
    options: &SoakOptions,
    clock: Clock,
    until: Instant,
    n: u64,
) -> Result<(), SessionError> {
    let spec = StreamSpec::new(options.bitrate);
    let mut session = Session::open(url, clock, n).await?;
    let stream = 'open: loop {
        timeout_at(until, session.read())
            .await
            .map_err(|_| SessionError::Refused("publish not started in time".to_owned()))??;
        while let Some(event) = session.conn.poll_event() {
            match event {
                ClientEvent::Connected { .. } => {
                    session.conn.create_stream()?;
                }
                ClientEvent::StreamCreated { stream_id, .. } => {
                    session.conn.publish(stream_id, "s")?;
                }
                ClientEvent::Status {
                    stream_id, code, ..
                } if code == "NetStream.Publish.Start" => break 'open stream_id,
                ClientEvent::Status { level, code, .. } if level == "error" => {
                    return Err(SessionError::Refused(code));
                }
                ClientEvent::ConnectFailed { code, .. } => return Err(SessionError::Refused(code)),
                _ => {}
            }
        }
        session.flush().await?;
    };
    let c = &mut session.conn;
    c.send_media(stream, MediaKind::Data, 0, media::metadata(&spec))?;
    c.send_media(stream, MediaKind::Video, 0, media::avc_sequence_header())?;
    c.send_media(stream, MediaKind::Audio, 0, media::aac_sequence_header())?;
    session.flush().await?;
    let start = clock.now_us();
    let mut buf = BytesMut::new();
    for frame in Schedule::new(spec) {
        let due = start + frame.due_us;
        if clock.at(due) >= until {
            return Ok(());
        }
        loop {
            tokio::select! {
                readable = session.readable() => {
                    readable?;
                    session.try_read()?;
                    while session.conn.poll_event().is_some() {}
                    session.flush().await?;
                }
                () = sleep_until(clock.at(due)) => break,
            }
        }
        let kind = match frame.kind {
            FrameKind::Audio => MediaKind::Audio,
            FrameKind::Key | FrameKind::Inter => MediaKind::Video,
        };
        let body = media::frame_body(&frame, due, &mut buf);
        session
            .conn
            .send_media(stream, kind, frame.timestamp, body)?;
        session.flush().await?;
    }
    Ok(())
}

// ----------------------------------------------------------------- players

async fn player_slot(k: usize, options: &SoakOptions, clock: Clock, end: Instant, report: &Shared) {
    let mut rng = Rng::new(k as u64 + 10_000);
    let mut n = 0u64;
    while Instant::now() < end {
        let until = (Instant::now() + rng.secs(5, 30)).min(end);
        let p = rng.below(options.publishers as u64);
        let url = rtmp_url(options, &format!("live/soak-p{p}"));
        report.borrow_mut().plays += 1;
        n += 1;
        if let Err(e) = play(&url, clock, until, report, 2_000_000 + k as u64 * 1000 + n).await {
            report.borrow_mut().play_errors += 1;
            fail(report, "player", &e);
            sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn play(
    url: &RtmpUrl,
    clock: Clock,
    until: Instant,
    report: &Shared,
    n: u64,
) -> Result<(), SessionError> {
    let mut session = Session::open(url, clock, n).await?;
    loop {
        let Ok(read) = timeout_at(until, session.read()).await else {
            return Ok(()); // time is up: leave
        };
        report.borrow_mut().played_bytes += read? as u64;
        while let Some(event) = session.conn.poll_event() {
            match event {
                ClientEvent::Connected { .. } => {
                    session.conn.create_stream()?;
                }
                ClientEvent::StreamCreated { stream_id, .. } => {
                    session.conn.play(stream_id, "s", -2.0)?;
                }
                ClientEvent::ConnectFailed { code, .. } => return Err(SessionError::Refused(code)),
                ClientEvent::Status { level, code, .. } if level == "error" => {
                    return Err(SessionError::Refused(code));
                }
                _ => {}
            }
        }
        if session.conn.pending_bytes() > 0 {
            session.flush().await?;
        }
    }
}

// ---------------------------------------------------------- shared objects

/// One client's check of the versions it receives.
#[derive(Debug, Default)]
struct Versions {
    synced: Option<u32>,
}

impl Versions {
    fn sync(&mut self, version: u32) {
        self.synced = Some(version);
    }

    /// A change-like notice at `version`.
    fn step(&mut self, version: u32, report: &Shared) {
        let Some(last) = self.synced else { return };
        let expected = last.wrapping_add(1);
        let mut r = report.borrow_mut();
        if version > expected {
            r.skipped += u64::from(version - expected);
            if r.first_error.is_none() {
                r.first_error = Some(format!("version {version} after {last}: skipped"));
            }
        } else if version < expected {
            r.repeated += 1;
            if r.first_error.is_none() {
                r.first_error = Some(format!("version {version} after {last}: repeated"));
            }
        }
        self.synced = Some(version.max(last));
    }
}

async fn so_slot(
    k: usize,
    options: &SoakOptions,
    clock: Clock,
    start: Instant,
    end: Instant,
    report: &Shared,
) {
    let mut rng = Rng::new(k as u64 + 20_000);
    let mut n = 0u64;
    while Instant::now() < end {
        let until = (Instant::now() + rng.secs(10, 40)).min(end);
        let generation = start.elapsed().as_secs() / options.room_generation.as_secs().max(1);
        let room = format!("chat/soak-{}-g{generation}", k % options.so_rooms.max(1));
        n += 1;
        let id = 3_000_000 + k as u64 * 1000 + n;
        let result = if k.is_multiple_of(2) {
            report.borrow_mut().so_rtmp_sessions += 1;
            so_rtmp(&rtmp_url(options, &room), k, clock, until, report, id).await
        } else {
            report.borrow_mut().so_ws_sessions += 1;
            let url = format!("ws://{}/{room}", options.ws);
            so_ws(&url, k, until, report, id).await
        };
        if let Err(e) = result {
            report.borrow_mut().so_errors += 1;
            fail(report, "shared-object client", &e);
            sleep(Duration::from_millis(500)).await;
        }
    }
}

fn on_rtmp_so(m: &SharedObjectMessage, versions: &mut Versions, report: &Shared) {
    if m.events.iter().any(|e| matches!(e, SoEvent::UseSuccess)) {
        versions.sync(m.version);
        return;
    }
    let changes = m
        .events
        .iter()
        .filter(|e| matches!(e, SoEvent::Change { .. } | SoEvent::Remove { .. }))
        .count() as u64;
    let acks = m
        .events
        .iter()
        .filter(|e| matches!(e, SoEvent::Success { .. }))
        .count() as u64;
    if changes + acks > 0 || m.events.iter().any(|e| matches!(e, SoEvent::Clear)) {
        versions.step(m.version, report);
        let mut r = report.borrow_mut();
        r.changes += changes;
        r.acks += acks;
    }
}

async fn so_rtmp(
    url: &RtmpUrl,
    k: usize,
    clock: Clock,
    until: Instant,
    report: &Shared,
    n: u64,
) -> Result<(), SessionError> {
    let config = ClientConfig::new(url.app.clone(), url.tc_url.clone());
    let mut session = Session::open_with(url, clock, n, config).await?;
    session.set_sparse_input(true);
    let mut versions = Versions::default();
    let mut next_write = Instant::now() + Duration::from_secs(1);
    let mut seq = 0u64;
    let key = format!("w{k}");
    loop {
        tokio::select! {
            read = session.read() => {
                read?;
                while let Some(event) = session.conn.poll_event() {
                    match event {
                        ClientEvent::Connected { .. } => session.conn.so_use("so", false)?,
                        ClientEvent::SharedObject(m) => on_rtmp_so(&m, &mut versions, report),
                        ClientEvent::ConnectFailed { code, .. } => {
                            return Err(SessionError::Refused(code));
                        }
                        _ => {}
                    }
                }
            }
            () = sleep_until(next_write) => {
                next_write += Duration::from_millis(800 + (seq * 37) % 400);
                if versions.synced.is_some() {
                    seq += 1;
                    let value = Value::string(format!("{k}:{seq}"));
                    session.conn.so_set("so", false, vec![(key.clone(), value)])?;
                    report.borrow_mut().writes += 1;
                }
            }
            () = sleep_until(until) => return Ok(()),
        }
        session.flush().await?;
    }
}

fn on_ws_text(text: &[u8], versions: &mut Versions, report: &Shared) -> Result<(), SessionError> {
    let msg: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| SessionError::Refused(format!("server sent bad JSON: {e}")))?;
    let version = msg["version"].as_u64().unwrap_or(0) as u32;
    match msg["op"].as_str() {
        Some("sync") => versions.sync(version),
        Some(op @ ("change" | "delete" | "clear" | "ack")) => {
            versions.step(version, report);
            let mut r = report.borrow_mut();
            if op == "ack" {
                r.acks += 1;
            } else {
                r.changes += 1;
            }
        }
        Some("error") => {
            return Err(SessionError::Refused(format!("server error: {msg}")));
        }
        _ => {}
    }
    Ok(())
}

async fn so_ws(
    url: &str,
    k: usize,
    until: Instant,
    report: &Shared,
    n: u64,
) -> Result<(), SessionError> {
    let mut client = WsClient::connect(url, "tern.v1", n).await?;
    client
        .send_text(r#"{"op":"use","so":"so","persistent":false}"#)
        .await?;
    let mut versions = Versions::default();
    let mut next_write = Instant::now() + Duration::from_secs(1);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            read = client.read_messages(|text| on_ws_text(text, &mut versions, report)) => read?,
            () = sleep_until(next_write) => {
                next_write += Duration::from_millis(800 + (seq * 37) % 400);
                if versions.synced.is_some() {
                    seq += 1;
                    let op = serde_json::json!({
                        "op": "set", "so": "so", "key": format!("w{k}"), "value": format!("{k}:{seq}")
                    });
                    client.send_text(&op.to_string()).await?;
                    report.borrow_mut().writes += 1;
                }
            }
            () = sleep_until(until) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_skips_and_repeats_after_the_sync() {
        let report: Shared = Rc::default();
        let mut v = Versions::default();
        v.step(5, &report); // before the sync: not judged
        v.sync(3);
        v.step(4, &report);
        v.step(6, &report); // 5 skipped
        v.step(6, &report); // repeated
        v.step(7, &report);
        let r = report.borrow();
        assert_eq!((r.skipped, r.repeated), (1, 1));
        assert_eq!(r.first_error.as_deref(), Some("version 6 after 4: skipped"));
    }
}
