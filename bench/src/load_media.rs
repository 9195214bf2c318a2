//! Media mode: one publisher sends the synthetic stream in real time from
//! its own thread; players, all on the calling thread, join in steps and
//! count bytes, frames, lost frames and lag behind the publisher's schedule.
//!
//! Each step adds players up to its count, lets them settle, then measures
//! a window. The run stops after the first step that is not sustained (lag
//! grew, frames were lost, players failed) or that saturated the load tool:
//! past that point the numbers would describe the load tool, not the server.

use crate::hist::Hist;
use crate::load_so::{decode_value, encode_value};
use crate::media::{self, FrameKind, Medium, Schedule, StreamSpec};
use crate::metrics::{self, HeapCounters, MetricsUrl};
use crate::procfs::Procs;
use crate::record::{MediaStep, Record, Saturated};
use crate::session::{Clock, RtmpUrl, Session, SessionError, Tls};
use bytes::BytesMut;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::amf0::Value;
use tern_core::hub::MediaKind;
use tern_core::message::SoEvent;
use tern_core::rtmp::ClientEvent;
use tokio::sync::Semaphore;

/// What to run.
#[derive(Clone, Debug)]
pub struct MediaOptions {
    /// Server URL (`rtmp://host:port/app`).
    pub url: RtmpUrl,
    /// Stream name.
    pub name: String,
    /// Total bitrate, bits/s.
    pub bitrate: u64,
    /// Player counts, ascending.
    pub steps: Vec<usize>,
    /// Time between reaching a step's player count and measuring.
    pub settle: Duration,
    /// Measurement window per step.
    pub window: Duration,
    /// How long the publisher streams alone before the first player: the
    /// server's RSS is sampled every 100 ms in the second half and
    /// averaged (the GOP cache fills and empties once per GOP, so one
    /// instant would catch it anywhere between empty and full). Zero: not
    /// measured.
    pub stream_baseline: Duration,
    /// Server label for the records.
    pub label: String,
    /// Server processes to measure.
    pub server: Procs,
    /// Connection attempts in flight at once.
    pub connect_concurrency: usize,
    /// How long a step may take to get all its players playing.
    pub connect_timeout: Duration,
    /// `/metrics` of a `count-allocations` build of tern: its heap
    /// counters are read at the start and the end of every window.
    pub metrics_url: Option<MetricsUrl>,
    /// Players connect over TLS (RTMPS) with this; the publisher stays
    /// on `url`. `None`: plain RTMP.
    pub tls: Option<Tls>,
    /// Players play HTTP-FLV from tern's HTTP port at this `host:port`
    /// (`GET /{app}/{name}.flv`) instead of RTMP; the publisher stays RTMP.
    pub flv_http: Option<String>,
    /// Chat during video: this many players (the first ones) also `use`
    /// the shared object [`CHAT_OBJECT`] in the stream's scope, and the
    /// publisher sets a key of it [`MediaOptions::chat_rate`] times a
    /// second with its send time; the step records how long a change took
    /// to reach a player that also plays the stream. 0: no chat (nginx-rtmp
    /// has no shared objects).
    pub chat_players: usize,
    /// Changes per second the publisher makes when `chat_players > 0`.
    pub chat_rate: u32,
}

/// The shared object of the chat-during-video measurement.
pub const CHAT_OBJECT: &str = "chat";
/// Size of a chat value, bytes (a chat line).
const CHAT_VALUE_BYTES: usize = 64;

/// What the publisher thread tells the players' thread.
#[derive(Debug, Default)]
struct PublisherState {
    /// The stream is on (sequence headers sent).
    ready: AtomicBool,
    /// Why the publisher stopped, if it did.
    failed: Mutex<Option<String>>,
    /// Most it fell behind its schedule since the last reset, µs.
    late_max_us: AtomicU64,
    /// Audio and video frames sent since the stream started.
    sent: AtomicU64,
    stop: AtomicBool,
}

/// One player's counters for the current window.
#[derive(Clone, Debug, Default)]
struct PlayerStat {
    bytes: u64,
    frames: u64,
    lost: u64,
    max_lag_us: u64,
    /// Last sequence number seen, per medium (video, audio).
    last_seq: [Option<u32>; 2],
    playing: bool,
    ended: bool,
}

#[derive(Debug)]
struct Stats {
    players: Vec<PlayerStat>,
    /// Lag of every frame in the window's first and second half.
    lag: [Hist; 2],
    /// Added latency of every frame in the window: the publisher's send
    /// time to the player's receipt.
    added: Hist,
    /// Chat during video: a shared-object change's send time to a playing
    /// player's receipt, every delivery in the window.
    chat: Hist,
    half: usize,
    /// The window's start on the tool's clock, and its seconds so far.
    window_start_us: u64,
    seconds: Vec<SecondLag>,
    playing: usize,
    failed: usize,
    first_error: Option<String>,
}

impl Stats {
    fn on_frame(&mut self, id: usize, stamp: media::Stamp, now_us: u64) {
        let media::Stamp {
            medium,
            due_us,
            seq,
            ..
        } = stamp;
        let lag = now_us.saturating_sub(due_us);
        let half = self.half;
        if let Some(h) = self.lag.get_mut(half) {
            h.record(lag);
            self.added.record(now_us.saturating_sub(stamp.sent_us));
            let second = now_us.saturating_sub(self.window_start_us) / 1_000_000;
            if let Ok(second) = usize::try_from(second)
                && second < MAX_SECONDS
            {
                if self.seconds.len() <= second {
                    self.seconds.resize(second + 1, SecondLag::default());
                }
                if let Some(s) = self.seconds.get_mut(second) {
                    s.frames += 1;
                    s.max_lag_ms = s.max_lag_ms.max(lag as f64 / 1000.0);
                    s.late_frames += u64::from(lag > LATE_US);
                }
            }
        }
        let Some(p) = self.players.get_mut(id) else {
            return;
        };
        p.frames += 1;
        p.max_lag_us = p.max_lag_us.max(lag);
        let slot = match medium {
            Medium::Video => 0,
            Medium::Audio => 1,
        };
        if let Some(last) = p.last_seq.get_mut(slot) {
            match *last {
                Some(prev) if seq > prev => {
                    p.lost += u64::from(seq - prev - 1);
                    *last = Some(seq);
                }
                Some(_) => {}
                None => *last = Some(seq),
            }
        }
        if !p.playing {
            p.playing = true;
            self.playing += 1;
        }
    }

    fn ended(&mut self, id: usize, error: Option<SessionError>) {
        if let Some(p) = self.players.get_mut(id) {
            if p.playing {
                self.playing -= 1;
            }
            p.playing = false;
            p.ended = true;
        }
        self.failed += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.map_or_else(|| "stopped".to_owned(), |e| e.to_string()));
        }
    }

    fn start_window(&mut self, now_us: u64) {
        self.window_start_us = now_us;
        self.seconds.clear();
        for p in &mut self.players {
            p.bytes = 0;
            p.frames = 0;
            p.lost = 0;
            p.max_lag_us = 0;
        }
        self.lag.iter_mut().for_each(Hist::clear);
        self.added.clear();
        self.chat.clear();
        self.half = 0;
    }
}

/// Runs the steps; prints each step's record as a JSON line on stdout as
/// soon as it is measured, and returns them.
pub fn run(options: &MediaOptions) -> Result<Vec<MediaStep>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(options))
}

async fn drive(options: &MediaOptions) -> Result<Vec<MediaStep>, String> {
    let clock = Clock::new();
    let tool = Procs::this_thread();
    let server_base = options.server.sample(clock.now_secs());
    let spec = StreamSpec::new(options.bitrate);
    if let Some(url) = &options.metrics_url {
        // Fail before any load if the server does not count allocations.
        metrics::fetch(url)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
    }
    let publisher = Arc::new(PublisherState::default());
    let thread = {
        let (url, name, publisher) = (
            options.url.clone(),
            options.name.clone(),
            Arc::clone(&publisher),
        );
        let chat_rate = if options.chat_players > 0 {
            options.chat_rate
        } else {
            0
        };
        std::thread::Builder::new()
            .name("publisher".into())
            .spawn(move || publisher_thread(&url, &name, (spec, chat_rate), clock, &publisher))
            .map_err(|e| format!("cannot start the publisher thread: {e}"))?
    };
    let ready_by = clock.now_secs() + 10.0;
    while !publisher.ready.load(Ordering::Acquire) {
        if let Some(why) = publisher.failed.lock().ok().and_then(|f| f.clone()) {
            return Err(format!("publisher failed: {why}"));
        }
        if clock.now_secs() > ready_by {
            return Err("publisher not publishing after 10 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server_stream_rss = stream_rss(options, clock).await;

    let stats = Rc::new(RefCell::new(Stats {
        players: Vec::new(),
        lag: [Hist::new(), Hist::new()],
        window_start_us: 0,
        seconds: Vec::new(),
        added: Hist::new(),
        chat: Hist::new(),
        half: 0,
        playing: 0,
        failed: 0,
        first_error: None,
    }));
    let stop = Rc::new(Cell::new(false));
    let url = Rc::new(options.url.clone());
    let tls = Rc::new(options.tls.clone());
    let name: Rc<str> = Rc::from(options.name.as_str());
    let connecting = Arc::new(Semaphore::new(options.connect_concurrency.max(1)));
    let mut records = Vec::new();
    let mut spawned = 0;
    let chat_players = options.chat_players;
    for &target in &options.steps {
        stats
            .borrow_mut()
            .players
            .resize(target.max(spawned), PlayerStat::default());
        while spawned < target {
            let permit = Arc::clone(&connecting)
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let id = spawned;
            let (url, name, stats, stop, tls) = (
                Rc::clone(&url),
                Rc::clone(&name),
                Rc::clone(&stats),
                Rc::clone(&stop),
                Rc::clone(&tls),
            );
            let flv_http = options.flv_http.clone();
            tokio::task::spawn_local(async move {
                let result = match flv_http {
                    Some(http) => {
                        let path = format!("/{}/{}.flv", url.app, name);
                        flv_player(id, &http, &path, clock, &stats, permit, &stop).await
                    }
                    None => {
                        let target = (&*url, tls.as_ref().as_ref());
                        let chat = id < chat_players;
                        player(id, target, (&name, chat), clock, &stats, permit, &stop).await
                    }
                };
                stats.borrow_mut().ended(id, result.err());
            });
            spawned += 1;
        }
        let all_in_by = clock.now_secs() + options.connect_timeout.as_secs_f64();
        loop {
            let (playing, failed) = {
                let s = stats.borrow();
                (s.playing, s.failed)
            };
            if playing + failed >= target || clock.now_secs() > all_in_by {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(options.settle).await;

        stats.borrow_mut().start_window(clock.now_us());
        publisher.late_max_us.store(0, Ordering::Relaxed);
        let heap0 = heap(options).await?;
        let sent0 = publisher.sent.load(Ordering::Relaxed);
        let server0 = options.server.sample(clock.now_secs());
        let tool0 = tool.sample(clock.now_secs());
        let mut cpu = Vec::new();
        let mut last = (server0, tool0);
        for half in 0..2 {
            stats.borrow_mut().half = half;
            let until = tokio::time::Instant::now() + options.window / 2;
            // One sample of the server and of the players' thread a second:
            // the timeline's CPU and run-queue columns.
            while tokio::time::Instant::now() < until {
                let next = (tokio::time::Instant::now() + Duration::from_secs(1)).min(until);
                tokio::time::sleep_until(next).await;
                let now = clock.now_secs();
                let sample = (options.server.sample(now), tool.sample(now));
                if sample.0.at - last.0.at >= 0.5 {
                    cpu.push(CpuSecond {
                        at: sample.0.at - server0.at,
                        server: sample.0.core_fraction_since(&last.0),
                        server_wait: sample.0.wait_fraction_since(&last.0),
                        tool: sample.1.core_fraction_since(&last.1),
                        tool_wait: sample.1.wait_fraction_since(&last.1),
                    });
                    last = sample;
                }
            }
        }
        let server1 = options.server.sample(clock.now_secs());
        let tool1 = tool.sample(clock.now_secs());
        let sent = publisher.sent.load(Ordering::Relaxed) - sent0;
        let heap = match (heap0, heap(options).await?) {
            (Some(h0), Some(h1)) => Some(h1.since(&h0)),
            _ => None,
        };

        let mut step = {
            let s = stats.borrow();
            measure(
                options,
                target,
                &s,
                &publisher,
                ([server_base, server0, server1], server_stream_rss),
                [tool0, tool1],
                (sent, heap),
            )
        };
        step.timeline = timeline(&stats.borrow().seconds, &cpu);
        println!(
            "{}",
            serde_json::to_string(&Record::Media(step.clone())).map_err(|e| e.to_string())?
        );
        eprintln!(
            "{} {} kbit/s {:>5} players: playing {} failed {}, {:.1} MB/s, lag p50 {:.1} p99 {:.1} growth {:.1} ms, added p50 {:.1} p99 {:.1} p99.9 {:.1} ms, lost {}, server {:.0}% (wants {:.0}%) tool {:.0}% (wants {:.0}%), {:.2} CPU-s/GB, RSS/player {:.0} B{}{}{}",
            step.server,
            step.bitrate_kbps,
            step.players,
            step.playing,
            step.failed,
            step.delivered_bytes as f64 / step.window_secs / 1e6,
            step.lag_p50_ms,
            step.lag_p99_ms,
            step.lag_growth_ms,
            step.added_p50_ms,
            step.added_p99_ms,
            step.added_p999_ms,
            step.lost_frames,
            step.server_cpu * 100.0,
            step.server_demand * 100.0,
            step.tool_cpu * 100.0,
            step.tool_demand * 100.0,
            step.cpu_secs_per_gb,
            step.rss_per_player,
            if step.sustained { "" } else { " NOT SUSTAINED" },
            match (step.allocations, step.messages_sent) {
                (Some(a), m) if m > 0 => format!(
                    ", {m} messages, {:.1} allocations/message ({:.4} per player)",
                    a as f64 / m as f64,
                    a as f64 / m as f64 / step.players.max(1) as f64
                ),
                _ => String::new(),
            },
            match step.saturated {
                Some(Saturated::LoadTool) => " (load tool saturated)",
                Some(Saturated::Server) => " (server saturated)",
                None => "",
            }
        );
        if let Some(worst) = step
            .timeline
            .iter()
            .filter(|s| s.late_frames > 0)
            .max_by(|a, b| a.max_lag_ms.total_cmp(&b.max_lag_ms))
        {
            eprintln!(
                "  late frames (lag > {} ms) in {} of {} seconds; worst second {}: max lag {:.0} ms, {} of {} frames late, server CPU {:.0} % (run queue {:.0} %), players' thread {:.0} % (run queue {:.0} %)",
                LATE_US / 1000,
                step.timeline.iter().filter(|s| s.late_frames > 0).count(),
                step.timeline.len(),
                worst.second,
                worst.max_lag_ms,
                worst.late_frames,
                worst.frames,
                worst.server_cpu * 100.0,
                worst.server_wait * 100.0,
                worst.tool_cpu * 100.0,
                worst.tool_wait * 100.0
            );
        }
        if step.chat_deliveries > 0 {
            eprintln!(
                "  chat during video: {} changes delivered, p50 {:.1} p99 {:.1} max {:.1} ms",
                step.chat_deliveries, step.chat_p50_ms, step.chat_p99_ms, step.chat_max_ms
            );
        }
        if let Some(e) = &stats.borrow().first_error {
            eprintln!("  first player error: {e}");
        }
        let stop_here = !step.sustained || step.saturated == Some(Saturated::LoadTool);
        records.push(step);
        if stop_here {
            break;
        }
    }
    stop.set(true);
    publisher.stop.store(true, Ordering::Relaxed);
    drop(thread); // detached: it stops at its next frame
    Ok(records)
}

/// Frames later than this behind the publisher's schedule count as late in
/// the timeline.
const LATE_US: u64 = 500_000;
/// Seconds of a window the timeline keeps at most.
const MAX_SECONDS: usize = 3600;

/// One second of the window as the players saw it.
#[derive(Clone, Copy, Debug, Default)]
struct SecondLag {
    frames: u64,
    late_frames: u64,
    max_lag_ms: f64,
}

/// CPU and run-queue time of the server and of the players' thread over
/// about one second of the window, fractions of one core.
#[derive(Clone, Copy, Debug, Default)]
struct CpuSecond {
    /// End of the sample, seconds since the window's start.
    at: f64,
    server: f64,
    server_wait: f64,
    tool: f64,
    tool_wait: f64,
}

/// The window's seconds with the CPU figures of each (the sample that ended
/// in or after it).
fn timeline(seconds: &[SecondLag], cpu: &[CpuSecond]) -> Vec<crate::record::LagSecond> {
    seconds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let end = (i + 1) as f64;
            let c = cpu
                .iter()
                .find(|c| c.at >= end - 0.05)
                .or(cpu.last())
                .copied()
                .unwrap_or_default();
            crate::record::LagSecond {
                second: i,
                frames: s.frames,
                late_frames: s.late_frames,
                max_lag_ms: s.max_lag_ms,
                server_cpu: c.server,
                server_wait: c.server_wait,
                tool_cpu: c.tool,
                tool_wait: c.tool_wait,
            }
        })
        .collect()
}

fn measure(
    options: &MediaOptions,
    target: usize,
    s: &Stats,
    publisher: &PublisherState,
    ([base, server0, server1], stream_rss): ([crate::procfs::Sample; 3], u64),
    [tool0, tool1]: [crate::procfs::Sample; 2],
    (messages_sent, heap): (u64, Option<HeapCounters>),
) -> MediaStep {
    let players = s.players.get(..target).unwrap_or_default();
    let mut lag = s.lag[0].clone();
    lag.merge(&s.lag[1]);
    let mut bytes: Vec<u64> = players.iter().map(|p| p.bytes).collect();
    let mut max_lag: Vec<u64> = players.iter().map(|p| p.max_lag_us).collect();
    let ms = |us: u64| us as f64 / 1000.0;
    let mut step = MediaStep {
        server: options.label.clone(),
        bitrate_kbps: options.bitrate / 1000,
        players: target,
        playing: s.playing,
        failed: s.failed,
        window_secs: server1.at - server0.at,
        delivered_bytes: bytes.iter().sum(),
        frames: players.iter().map(|p| p.frames).sum(),
        lost_frames: players.iter().map(|p| p.lost).sum(),
        lag_p50_ms: ms(lag.quantile(0.5)),
        lag_p99_ms: ms(lag.quantile(0.99)),
        lag_max_ms: ms(lag.max()),
        lag_growth_ms: (s.lag[1].mean() - s.lag[0].mean()) / 1000.0,
        added_p50_ms: ms(s.added.quantile(0.5)),
        added_p99_ms: ms(s.added.quantile(0.99)),
        added_p999_ms: ms(s.added.quantile(0.999)),
        chat_deliveries: s.chat.count(),
        chat_p50_ms: ms(s.chat.quantile(0.5)),
        chat_p99_ms: ms(s.chat.quantile(0.99)),
        chat_max_ms: ms(s.chat.max()),
        publisher_late_ms: ms(publisher.late_max_us.load(Ordering::Relaxed)),
        player_bytes: spread(&mut bytes),
        player_max_lag_ms: spread(&mut max_lag).map(ms),
        server_cpu_secs: server1.cpu - server0.cpu,
        server_cpu: server1.core_fraction_since(&server0),
        tool_cpu: tool1.core_fraction_since(&tool0),
        server_demand: server1.demand_since(&server0),
        tool_demand: tool1.demand_since(&tool0),
        server_rss_base: base.rss,
        server_rss_stream: stream_rss,
        server_rss: server1.rss,
        cpu_secs_per_gb: 0.0,
        rss_per_player: 0.0,
        rss_per_player_above_stream: None,
        sustained: false,
        saturated: None,
        messages_sent,
        allocations: heap.map(|h| h.allocations),
        allocated_bytes: heap.map(|h| h.allocated_bytes),
        timeline: Vec::new(),
    };
    step.derive();
    step
}

/// The server's mean RSS while the publisher streams alone (see
/// [`MediaOptions::stream_baseline`]); 0 when not measured.
async fn stream_rss(options: &MediaOptions, clock: Clock) -> u64 {
    if options.stream_baseline.is_zero() {
        return 0;
    }
    tokio::time::sleep(options.stream_baseline / 2).await;
    let samples = (options.stream_baseline.as_millis() / 200).max(1) as u64;
    let mut sum = 0;
    for _ in 0..samples {
        sum += options.server.sample(clock.now_secs()).rss;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sum / samples
}

/// The server's heap counters now, if asked for.
async fn heap(options: &MediaOptions) -> Result<Option<HeapCounters>, String> {
    match &options.metrics_url {
        Some(url) => metrics::fetch(url)
            .await
            .map(Some)
            .map_err(|e| format!("{url}: {e}")),
        None => Ok(None),
    }
}

/// Min, median and max.
fn spread(values: &mut [u64]) -> [u64; 3] {
    values.sort_unstable();
    [
        values.first().copied().unwrap_or(0),
        values.get(values.len() / 2).copied().unwrap_or(0),
        values.last().copied().unwrap_or(0),
    ]
}

/// One player: connect, create a stream, play, then count until stopped.
/// With `chat`, it also uses [`CHAT_OBJECT`] and records each change's
/// latency.
async fn player(
    id: usize,
    (url, tls): (&RtmpUrl, Option<&Tls>),
    (name, chat): (&str, bool),
    clock: Clock,
    stats: &RefCell<Stats>,
    permit: tokio::sync::OwnedSemaphorePermit,
    stop: &Cell<bool>,
) -> Result<(), SessionError> {
    // The permit bounds connection attempts in flight; it is given back
    // once the first frame arrives.
    let mut permit = Some(permit);
    let mut session = match tls {
        Some(tls) => Session::open_tls(url, tls, clock, id as u64 + 1).await?,
        None => Session::open(url, clock, id as u64 + 1).await?,
    };
    loop {
        let n = session.read().await?;
        let now = clock.now_us();
        {
            let mut st = stats.borrow_mut();
            if let Some(p) = st.players.get_mut(id) {
                p.bytes += n as u64;
            }
            while let Some(event) = session.conn.poll_event() {
                match event {
                    ClientEvent::Media { payload, .. } => {
                        if let Some(stamp) = media::read_stamp(&payload) {
                            st.on_frame(id, stamp, now);
                            permit = None;
                        }
                    }
                    ClientEvent::Connected { .. } => {
                        session.conn.create_stream()?;
                        if chat {
                            session.conn.so_use(CHAT_OBJECT, false)?;
                        }
                    }
                    ClientEvent::StreamCreated { stream_id, .. } => {
                        session.conn.play(stream_id, name, -2.0)?;
                    }
                    ClientEvent::SharedObject(m) => {
                        for event in &m.events {
                            if let SoEvent::Change {
                                value: Value::String(v),
                                ..
                            } = event
                                && let Some((_, sent_us)) = decode_value(v.as_bytes())
                            {
                                st.chat.record(now.saturating_sub(sent_us));
                            }
                        }
                    }
                    ClientEvent::ConnectFailed { code, .. } => {
                        return Err(SessionError::Refused(code));
                    }
                    ClientEvent::Status { level, code, .. } if level == "error" => {
                        return Err(SessionError::Refused(code));
                    }
                    _ => {}
                }
            }
        }
        if session.conn.pending_bytes() > 0 {
            session.flush().await?;
        }
        if stop.get() {
            drop(permit);
            return Ok(());
        }
    }
}

/// One HTTP-FLV player: `GET path`, then count the frames of the chunked
/// FLV body until stopped.
async fn flv_player(
    id: usize,
    address: &str,
    path: &str,
    clock: Clock,
    stats: &RefCell<Stats>,
    permit: tokio::sync::OwnedSemaphorePermit,
    stop: &Cell<bool>,
) -> Result<(), SessionError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut permit = Some(permit);
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .map_err(SessionError::Io)?;
    let _ = socket.set_nodelay(true);
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .map_err(SessionError::Io)?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut flv = BytesMut::with_capacity(64 * 1024);
    let mut head_done = false;
    let mut header_skipped = false;
    // Bytes of the current chunk's data still to come, then its CRLF.
    let (mut data_left, mut crlf_left) = (0usize, 0usize);
    loop {
        let n = socket.read_buf(&mut buf).await.map_err(SessionError::Io)?;
        if n == 0 {
            return Err(SessionError::Closed);
        }
        let now = clock.now_us();
        let mut st = stats.borrow_mut();
        if let Some(p) = st.players.get_mut(id) {
            p.bytes += n as u64;
        }
        if !head_done {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if !buf.starts_with(b"HTTP/1.1 200") {
                let line = String::from_utf8_lossy(&buf[..end.min(64)]).into_owned();
                return Err(SessionError::Refused(line));
            }
            let _ = buf.split_to(end + 4);
            head_done = true;
        }
        loop {
            if data_left > 0 {
                let take = data_left.min(buf.len());
                flv.extend_from_slice(&buf.split_to(take));
                data_left -= take;
                if data_left > 0 {
                    break;
                }
            }
            if crlf_left > 0 {
                let take = crlf_left.min(buf.len());
                let _ = buf.split_to(take);
                crlf_left -= take;
                if crlf_left > 0 {
                    break;
                }
            }
            let Some(line) = buf.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let len = std::str::from_utf8(&buf[..line])
                .ok()
                .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
                .ok_or_else(|| SessionError::Refused("bad chunk size".to_owned()))?;
            if len == 0 {
                return Err(SessionError::Closed);
            }
            let _ = buf.split_to(line + 2);
            (data_left, crlf_left) = (len, 2);
        }
        if !header_skipped && flv.len() >= tern_core::flv::tag::FILE_HEADER_LEN {
            let _ = flv.split_to(tern_core::flv::tag::FILE_HEADER_LEN);
            header_skipped = true;
        }
        while header_skipped && let Ok((view, used)) = tern_core::flv::tag::FlvTagView::parse(&flv)
        {
            if let Some(stamp) = media::read_stamp(view.body) {
                st.on_frame(id, stamp, now);
                permit = None;
            }
            let _ = flv.split_to(used);
        }
        drop(st);
        if stop.get() {
            drop(permit);
            return Ok(());
        }
    }
}

/// The publisher's thread: its own runtime, so its pacing does not depend
/// on how busy the players keep the main thread.
fn publisher_thread(
    url: &RtmpUrl,
    name: &str,
    spec: (StreamSpec, u32),
    clock: Clock,
    state: &PublisherState,
) {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(publish(url, name, spec, clock, state))
                .map_err(|e| e.to_string())
        });
    if let Err(e) = result
        && let Ok(mut failed) = state.failed.lock()
    {
        eprintln!("publisher: {e}");
        *failed = Some(e);
    }
}

/// Publishes `spec`'s stream in real time; with a chat rate above zero it
/// also uses [`CHAT_OBJECT`] and sets its key `line` that many times a
/// second (checked before each frame) to a value carrying the send time.
async fn publish(
    url: &RtmpUrl,
    name: &str,
    (spec, chat_rate): (StreamSpec, u32),
    clock: Clock,
    state: &PublisherState,
) -> Result<(), SessionError> {
    let mut session = Session::open(url, clock, 0).await?;
    let stream = 'open: loop {
        session.read().await?;
        while let Some(event) = session.conn.poll_event() {
            match event {
                ClientEvent::Connected { .. } => {
                    session.conn.create_stream()?;
                }
                ClientEvent::StreamCreated { stream_id, .. } => {
                    session.conn.publish(stream_id, name)?;
                }
                ClientEvent::Status {
                    stream_id, code, ..
                } if code == "NetStream.Publish.Start" => break 'open stream_id,
                ClientEvent::Status { level, code, .. } if level == "error" => {
                    return Err(SessionError::Refused(code));
                }
                ClientEvent::ConnectFailed { code, .. } => {
                    return Err(SessionError::Refused(code));
                }
                _ => {}
            }
        }
        session.flush().await?;
    };
    let c = &mut session.conn;
    c.send_media(stream, MediaKind::Data, 0, media::metadata(&spec))?;
    c.send_media(stream, MediaKind::Video, 0, media::avc_sequence_header())?;
    c.send_media(stream, MediaKind::Audio, 0, media::aac_sequence_header())?;
    if chat_rate > 0 {
        c.so_use(CHAT_OBJECT, false)?;
    }
    session.flush().await?;
    let start = clock.now_us();
    let chat_every_us = 1_000_000 / u64::from(chat_rate.max(1));
    let mut chat_due = start;
    state.ready.store(true, Ordering::Release);
    let mut buf = BytesMut::new();
    for frame in Schedule::new(spec) {
        if state.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let due = start + frame.due_us;
        while clock.now_us() < due {
            tokio::select! {
                readable = session.readable() => {
                    readable?;
                    session.try_read()?;
                    while session.conn.poll_event().is_some() {}
                    session.flush().await?;
                }
                () = tokio::time::sleep_until(clock.at(due)) => break,
            }
        }
        let late = clock.now_us().saturating_sub(due);
        state.late_max_us.fetch_max(late, Ordering::Relaxed);
        if chat_rate > 0 && clock.now_us() >= chat_due {
            let value = encode_value(0, clock.now_us(), CHAT_VALUE_BYTES);
            session.conn.so_set(
                CHAT_OBJECT,
                false,
                vec![("line".to_owned(), Value::String(value))],
            )?;
            chat_due += chat_every_us;
        }
        let kind = match frame.kind {
            FrameKind::Audio => MediaKind::Audio,
            FrameKind::Key | FrameKind::Inter => MediaKind::Video,
        };
        let body = media::frame_body(&frame, due, clock.now_us(), &mut buf);
        session
            .conn
            .send_media(stream, kind, frame.timestamp, body)?;
        state.sent.fetch_add(1, Ordering::Relaxed);
        session.flush().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_second_takes_the_sample_that_ended_in_or_after_it() {
        let seconds = [SecondLag::default(); 3];
        let cpu = [
            CpuSecond {
                at: 1.02,
                server: 0.25,
                server_wait: 0.75,
                tool: 0.4,
                tool_wait: 0.02,
            },
            CpuSecond {
                at: 2.5,
                server: 0.6,
                ..CpuSecond::default()
            },
        ];
        let t = timeline(&seconds, &cpu);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].server_cpu, t[0].server_wait), (0.25, 0.75));
        assert_eq!((t[0].tool_cpu, t[0].tool_wait), (0.4, 0.02));
        assert_eq!((t[1].server_cpu, t[1].server_wait), (0.6, 0.0));
        // Past the last sample: the last one.
        assert_eq!(t[2].server_cpu, 0.6);
        assert!(timeline(&seconds, &[]).iter().all(|s| s.server_wait == 0.0));
    }
}
