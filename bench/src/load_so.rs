//! Shared-object mode: K writers change one shared object (each its own
//! key) and N subscribers receive every change; or, for comparison, K
//! Redis clients PUBLISH the same values on a channel N clients SUBSCRIBE
//! to.
//!
//! On tern, a share of the writers and subscribers (`ws_share`, rounded)
//! may be WebSocket clients speaking tern's JSON protocol v1
//! (`docs/ws-protocol.md`, subprotocol `tern.v1`) in the same room and
//! shared object as the RTMP ones: every change then crosses from RTMP to
//! WebSocket clients and back, and latency is kept per transport as well.
//!
//! Every value starts with its writer's number and the moment it was sent
//! (µs on the load tool's clock), so a subscriber measures delivery latency
//! from the value alone. Writers either send at a fixed rate (open loop:
//! latency under a known load) or as fast as deliveries allow (closed loop:
//! a writer sends its next change once no more than `window − 1` of its
//! changes are still on their way to some subscriber), which measures
//! delivered changes per second without letting queues grow without bound.

use crate::hist::Hist;
use crate::procfs::Procs;
use crate::record::{Record, SoRun};
use crate::resp;
use crate::session::{Clock, RtmpUrl, Session, SessionError};
use crate::ws_client::WsClient;
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tern_core::Limits;
use tern_core::amf0::Value;
use tern_core::message::{MessageError, SharedObjectView, SoEvent, so_event_type};
use tern_core::rtmp::{ClientConfig, ClientEvent};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

/// Where the changes go.
#[derive(Clone, Debug)]
pub enum Target {
    /// A tern shared object, over RTMP, WebSocket or both: one scope (room)
    /// reached as `rtmp://host:port/app/room` and as
    /// `ws://host:http_port/app/room`, and the SO name.
    Tern {
        /// The scope's RTMP URL (needed unless every client is WebSocket).
        rtmp: Option<RtmpUrl>,
        /// The scope's WebSocket URL (needed if `ws_share` gives any
        /// WebSocket client).
        ws: Option<String>,
        /// Share of the subscribers, and of the writers, that are WebSocket
        /// clients (0..=1; each count rounded to the nearest integer).
        ws_share: f64,
        /// Shared object name.
        name: String,
        /// The same scope on other nodes of a tern cluster: RTMP
        /// subscribers and writers are spread round-robin over `rtmp` and
        /// these (client `i` on the `i % (1 + len)`-th).
        more_rtmp: Vec<RtmpUrl>,
    },
    /// A Redis pub/sub channel.
    Redis {
        /// `host:port`.
        address: String,
        /// Channel.
        channel: String,
    },
}

/// What to run.
#[derive(Clone, Debug)]
pub struct SoOptions {
    /// Target.
    pub target: Target,
    /// Writers.
    pub writers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// Changes per second per writer; 0: closed loop.
    pub rate: f64,
    /// Closed loop: changes a writer may have undelivered.
    pub window: u32,
    /// Value size, bytes (at least [`HEADER_LEN`]).
    pub value_bytes: usize,
    /// Time between the start of writing and measuring.
    pub warmup: Duration,
    /// Measurement window.
    pub duration: Duration,
    /// Server label for the record.
    pub label: String,
    /// Server processes to measure.
    pub server: Procs,
    /// Connection attempts in flight at once.
    pub connect_concurrency: usize,
}

/// `WWWWW:TTTTTTTTTTTTTTTTTTTT:` — writer number and send time (µs).
pub const HEADER_LEN: usize = 27;

/// A value of `size` bytes from writer `writer` sent at `stamp_us`.
pub fn encode_value(writer: usize, stamp_us: u64, size: usize) -> String {
    let mut v = String::with_capacity(size.max(HEADER_LEN));
    encode_value_into(&mut v, writer, stamp_us, size);
    v
}

/// Appends the value [`encode_value`] makes to `out`.
pub fn encode_value_into(out: &mut String, writer: usize, stamp_us: u64, size: usize) {
    use std::fmt::Write as _;
    let start = out.len();
    let _ = write!(out, "{:05}:{:020}:", writer % 100_000, stamp_us);
    let pad = size.saturating_sub(out.len() - start);
    out.extend(std::iter::repeat_n('x', pad));
}

/// How many of `n` clients are WebSocket clients at `share` (rounded).
pub fn ws_count(n: usize, share: f64) -> usize {
    ((n as f64 * share.clamp(0.0, 1.0)).round() as usize).min(n)
}

/// Whether client `i` of `n` is one of the `k` WebSocket ones: spread
/// evenly over `0..n`, so both kinds connect from the start.
pub fn is_ws(i: usize, n: usize, k: usize) -> bool {
    n > 0 && (i + 1) * k / n > i * k / n
}

/// How a subscriber receives changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Rtmp,
    Ws,
    Redis,
}

/// The writer and send time of a value made by [`encode_value`].
pub fn decode_value(value: &[u8]) -> Option<(usize, u64)> {
    let head = value.get(..HEADER_LEN)?;
    let text = std::str::from_utf8(head).ok()?;
    let writer = text.get(0..5)?.parse().ok()?;
    let stamp = text.get(6..26)?.parse().ok()?;
    Some((writer, stamp))
}

/// State every task of a run shares (one thread).
#[derive(Debug)]
struct Shared {
    clock: Clock,
    latency: RefCell<Hist>,
    /// Latency of deliveries to RTMP subscribers only.
    latency_rtmp: RefCell<Hist>,
    /// Latency of deliveries to WebSocket subscribers only.
    latency_ws: RefCell<Hist>,
    measuring: Cell<bool>,
    sent: Cell<u64>,
    delivered: Cell<u64>,
    ws_delivered: Cell<u64>,
    /// Per subscriber: changes it received in the window.
    received: Vec<Cell<u64>>,
    subscribed: Cell<usize>,
    writers_ready: Cell<usize>,
    failed: Cell<usize>,
    first_error: RefCell<Option<String>>,
    /// Per writer: deliveries of its changes still outstanding.
    pending: Vec<Cell<u64>>,
    wake: Vec<Notify>,
    go: Cell<bool>,
    go_signal: Notify,
    stop: Cell<bool>,
    /// Closed loop: a writer may send while `pending <= threshold`.
    threshold: u64,
}

impl Shared {
    fn on_delivery(&self, value: &[u8], subscriber: usize, transport: Transport) {
        let Some((writer, stamp)) = decode_value(value) else {
            return;
        };
        let now = self.clock.now_us();
        if self.measuring.get() {
            let latency = now.saturating_sub(stamp);
            self.latency.borrow_mut().record(latency);
            self.delivered.set(self.delivered.get() + 1);
            match transport {
                Transport::Rtmp => self.latency_rtmp.borrow_mut().record(latency),
                Transport::Ws => {
                    self.latency_ws.borrow_mut().record(latency);
                    self.ws_delivered.set(self.ws_delivered.get() + 1);
                }
                Transport::Redis => {}
            }
            if let Some(r) = self.received.get(subscriber) {
                r.set(r.get() + 1);
            }
        }
        if let (Some(p), Some(w)) = (self.pending.get(writer), self.wake.get(writer)) {
            p.set(p.get().saturating_sub(1));
            if p.get() <= self.threshold {
                w.notify_one();
            }
        }
    }

    fn fail(&self, e: impl std::fmt::Display) {
        self.failed.set(self.failed.get() + 1);
        let mut first = self.first_error.borrow_mut();
        if first.is_none() {
            *first = Some(e.to_string());
        }
    }

    /// Closed loop: waits until `writer` may send; open loop: until `due`.
    async fn turn(&self, writer: usize, due: Option<tokio::time::Instant>) {
        if let Some(due) = due {
            tokio::time::sleep_until(due).await;
            return;
        }
        let (Some(p), Some(w)) = (self.pending.get(writer), self.wake.get(writer)) else {
            return;
        };
        while p.get() > self.threshold {
            // A lost subscriber would stall the writer for good: go on after
            // a second without progress.
            if tokio::time::timeout(Duration::from_secs(1), w.notified())
                .await
                .is_err()
            {
                p.set(self.threshold);
            }
        }
    }

    fn sent_one(&self, writer: usize) {
        if self.measuring.get() {
            self.sent.set(self.sent.get() + 1);
        }
        if let Some(p) = self.pending.get(writer) {
            p.set(p.get() + self.subscribed.get() as u64);
        }
    }

    async fn wait_go(&self) {
        while !self.go.get() {
            self.go_signal.notified().await;
        }
    }
}

/// Runs one SO measurement; prints its record as a JSON line on stdout.
pub fn run(options: &SoOptions) -> Result<SoRun, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(options))
}

/// Client `i`'s node: `first`, then `more`, round-robin.
fn spread<'a>(first: &'a RtmpUrl, more: &'a [RtmpUrl], i: usize) -> &'a RtmpUrl {
    match i % (1 + more.len()) {
        0 => first,
        k => more.get(k - 1).unwrap_or(first),
    }
}

/// The WebSocket subscribers and writers of a run, and whether the
/// target can serve both kinds.
fn ws_split(options: &SoOptions) -> Result<(f64, usize, usize), String> {
    let Target::Tern {
        rtmp, ws, ws_share, ..
    } = &options.target
    else {
        return Ok((0.0, 0, 0));
    };
    if !(0.0..=1.0).contains(ws_share) {
        return Err(format!(
            "the WebSocket share must be in 0..=1, not {ws_share}"
        ));
    }
    let subscribers = ws_count(options.subscribers, *ws_share);
    let writers = ws_count(options.writers, *ws_share);
    if (subscribers > 0 || writers > 0) && ws.is_none() {
        return Err("a WebSocket share needs a WebSocket URL (--ws-url)".to_owned());
    }
    if (subscribers < options.subscribers || writers < options.writers) && rtmp.is_none() {
        return Err("RTMP clients need an RTMP URL (--url), or use --ws-share 1".to_owned());
    }
    Ok((*ws_share, subscribers, writers))
}

async fn drive(options: &SoOptions) -> Result<SoRun, String> {
    let clock = Clock::new();
    let window = u64::from(options.window.max(1));
    let (ws_share, ws_subscribers, ws_writers) = ws_split(options)?;
    let shared = Rc::new(Shared {
        clock,
        latency: RefCell::new(Hist::new()),
        latency_rtmp: RefCell::new(Hist::new()),
        latency_ws: RefCell::new(Hist::new()),
        measuring: Cell::new(false),
        sent: Cell::new(0),
        delivered: Cell::new(0),
        ws_delivered: Cell::new(0),
        received: (0..options.subscribers).map(|_| Cell::new(0)).collect(),
        subscribed: Cell::new(0),
        writers_ready: Cell::new(0),
        failed: Cell::new(0),
        first_error: RefCell::new(None),
        pending: (0..options.writers).map(|_| Cell::new(0)).collect(),
        wake: (0..options.writers).map(|_| Notify::new()).collect(),
        go: Cell::new(false),
        go_signal: Notify::new(),
        stop: Cell::new(false),
        threshold: (window - 1) * options.subscribers as u64,
    });
    let tool = Procs::this();
    let connecting = Arc::new(Semaphore::new(options.connect_concurrency.max(1)));

    for id in 0..options.subscribers {
        let permit = Arc::clone(&connecting)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (shared, target) = (Rc::clone(&shared), options.target.clone());
        let ws_client = is_ws(id, options.subscribers, ws_subscribers);
        tokio::task::spawn_local(async move {
            let result = match &target {
                Target::Tern {
                    ws: Some(url),
                    name,
                    ..
                } if ws_client => ws_subscriber(id, url, name, &shared, Some(permit)).await,
                Target::Tern {
                    rtmp: Some(url),
                    name,
                    more_rtmp,
                    ..
                } if !ws_client => {
                    let url = spread(url, more_rtmp, id);
                    rtmp_subscriber(id, url, name, &shared, Some(permit)).await
                }
                Target::Tern { .. } => Err(SessionError::Refused("no URL".to_owned())),
                Target::Redis { address, channel } => {
                    redis_subscriber(id, address, channel, &shared, Some(permit))
                        .await
                        .map_err(SessionError::Io)
                }
            };
            if let Err(e) = result
                && !shared.stop.get()
            {
                shared.fail(format!("subscriber: {e}"));
            }
        });
    }
    wait_for(&shared, 60.0, |s| {
        s.subscribed.get() + s.failed.get() >= options.subscribers
    })
    .await;
    for writer in 0..options.writers {
        let (shared, options) = (Rc::clone(&shared), options.clone());
        let ws_client = is_ws(writer, options.writers, ws_writers);
        tokio::task::spawn_local(async move {
            let result = match &options.target {
                Target::Tern {
                    ws: Some(url),
                    name,
                    ..
                } if ws_client => ws_writer(writer, url, name, &options, &shared).await,
                Target::Tern {
                    rtmp: Some(url),
                    name,
                    more_rtmp,
                    ..
                } if !ws_client => {
                    let url = spread(url, more_rtmp, writer);
                    rtmp_writer(writer, url, name, &options, &shared).await
                }
                Target::Tern { .. } => Err(SessionError::Refused("no URL".to_owned())),
                Target::Redis { address, channel } => {
                    redis_writer(writer, address, channel, &options, &shared)
                        .await
                        .map_err(SessionError::Io)
                }
            };
            if let Err(e) = result
                && !shared.stop.get()
            {
                shared.fail(format!("writer: {e}"));
            }
        });
    }
    wait_for(&shared, 30.0, |s| {
        s.writers_ready.get() + s.failed.get() >= options.writers
    })
    .await;
    shared.go.set(true);
    shared.go_signal.notify_waiters();
    tokio::time::sleep(options.warmup).await;

    shared.latency.borrow_mut().clear();
    shared.latency_rtmp.borrow_mut().clear();
    shared.latency_ws.borrow_mut().clear();
    shared.sent.set(0);
    shared.delivered.set(0);
    shared.ws_delivered.set(0);
    for r in &shared.received {
        r.set(0);
    }
    shared.measuring.set(true);
    let server0 = options.server.sample(clock.now_secs());
    let tool0 = tool.sample(clock.now_secs());
    tokio::time::sleep(options.duration).await;
    shared.measuring.set(false);
    let server1 = options.server.sample(clock.now_secs());
    let tool1 = tool.sample(clock.now_secs());
    shared.stop.set(true);

    let secs = server1.at - server0.at;
    let latency = shared.latency.borrow();
    let ms = |us: u64| us as f64 / 1000.0;
    // Per transport only where that transport had subscribers and
    // deliveries.
    let quantile = |hist: &RefCell<Hist>, subscribers: usize, q: f64| {
        let hist = hist.borrow();
        (subscribers > 0 && hist.count() > 0).then(|| ms(hist.quantile(q)))
    };
    let tern = matches!(options.target, Target::Tern { .. });
    let rtmp_subscribers = if tern {
        options.subscribers - ws_subscribers
    } else {
        0
    };
    let run = SoRun {
        server: options.label.clone(),
        writers: options.writers,
        subscribers: options.subscribers,
        rate: options.rate,
        window: options.window,
        value_bytes: options.value_bytes,
        window_secs: secs,
        sent: shared.sent.get(),
        delivered: shared.delivered.get(),
        delivered_per_sec: shared.delivered.get() as f64 / secs,
        latency_p50_ms: ms(latency.quantile(0.5)),
        latency_p99_ms: ms(latency.quantile(0.99)),
        latency_max_ms: ms(latency.max()),
        server_cpu: server1.core_fraction_since(&server0),
        tool_cpu: tool1.core_fraction_since(&tool0),
        server_demand: server1.demand_since(&server0),
        tool_demand: tool1.demand_since(&tool0),
        server_rss: server1.rss,
        failed: shared.failed.get(),
        ws_share,
        ws_subscribers,
        ws_writers,
        ws_delivered: shared.ws_delivered.get(),
        starved_subscribers: shared.received.iter().filter(|r| r.get() == 0).count(),
        rtmp_latency_p50_ms: quantile(&shared.latency_rtmp, rtmp_subscribers, 0.5),
        rtmp_latency_p99_ms: quantile(&shared.latency_rtmp, rtmp_subscribers, 0.99),
        ws_latency_p50_ms: quantile(&shared.latency_ws, ws_subscribers, 0.5),
        ws_latency_p99_ms: quantile(&shared.latency_ws, ws_subscribers, 0.99),
    };
    println!(
        "{}",
        serde_json::to_string(&Record::So(run.clone())).map_err(|e| e.to_string())?
    );
    eprintln!(
        "{} so {} writers x {} subscribers, rate {} /s, {} B: {:.0} delivered/s, latency p50 {:.2} p99 {:.2} max {:.2} ms, server {:.0}% (wants {:.0}%) tool {:.0}% (wants {:.0}%), failed {}",
        run.server,
        run.writers,
        run.subscribers,
        run.rate,
        run.value_bytes,
        run.delivered_per_sec,
        run.latency_p50_ms,
        run.latency_p99_ms,
        run.latency_max_ms,
        run.server_cpu * 100.0,
        run.server_demand * 100.0,
        run.tool_cpu * 100.0,
        run.tool_demand * 100.0,
        run.failed
    );
    if run.ws_subscribers + run.ws_writers > 0 {
        let p99 = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
        eprintln!(
            "  WebSocket share {}: {} of {} subscribers, {} of {} writers; p99 RTMP {} ms, WebSocket {} ms; {} subscribers received nothing",
            run.ws_share,
            run.ws_subscribers,
            run.subscribers,
            run.ws_writers,
            run.writers,
            p99(run.rtmp_latency_p99_ms),
            p99(run.ws_latency_p99_ms),
            run.starved_subscribers
        );
    }
    if let Some(e) = shared.first_error.borrow().as_ref() {
        eprintln!("  first error: {e}");
    }
    Ok(run)
}

async fn wait_for(shared: &Shared, secs: f64, done: impl Fn(&Shared) -> bool) {
    let by = shared.clock.now_secs() + secs;
    while !done(shared) && shared.clock.now_secs() < by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rtmp_subscriber(
    id: usize,
    url: &RtmpUrl,
    name: &str,
    shared: &Shared,
    mut permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<(), SessionError> {
    // Notices are read in place (SharedObjectView): the tool builds no
    // owned message per delivery, as its Redis subscribers build none.
    let mut config = ClientConfig::new(url.app.clone(), url.tc_url.clone());
    config.raw_shared_objects = true;
    let mut session = Session::open_with(url, shared.clock, 1000 + id as u64, config).await?;
    session.set_sparse_input(true);
    loop {
        session.read().await?;
        while let Some(event) = session.conn.poll_event() {
            match event {
                ClientEvent::Connected { .. } => session.conn.so_use(name, false)?,
                ClientEvent::ConnectFailed { code, .. } => {
                    return Err(SessionError::Refused(code));
                }
                ClientEvent::SharedObjectPayload(payload) => {
                    on_notice(&payload, id, shared, &mut permit)?;
                }
                _ => {}
            }
        }
        if session.conn.pending_bytes() > 0 {
            session.flush().await?;
        }
        if shared.stop.get() {
            return Ok(());
        }
    }
}

/// One shared-object message to an RTMP subscriber: the use is confirmed,
/// or each string change is a delivery; an error status ends the
/// subscriber.
fn on_notice(
    payload: &[u8],
    id: usize,
    shared: &Shared,
    permit: &mut Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<(), SessionError> {
    let bad = |e: MessageError| SessionError::Rtmp(e.into());
    let view = SharedObjectView::parse(payload).map_err(bad)?;
    for (i, event) in view.events().enumerate() {
        let event = event.map_err(bad)?;
        match event.event_type() {
            so_event_type::USE_SUCCESS if i == 0 => {
                if permit.take().is_some() {
                    shared.subscribed.set(shared.subscribed.get() + 1);
                }
                return Ok(());
            }
            so_event_type::STATUS => {
                if let SoEvent::Status { code, level } =
                    event.to_event(&Limits::default()).map_err(bad)?
                    && level == "error"
                {
                    return Err(SessionError::Refused(code));
                }
            }
            _ => {
                if let Some((_, value)) = event.string_change().map_err(bad)? {
                    shared.on_delivery(value.as_bytes(), id, Transport::Rtmp);
                }
            }
        }
    }
    Ok(())
}

async fn rtmp_writer(
    writer: usize,
    url: &RtmpUrl,
    name: &str,
    options: &SoOptions,
    shared: &Shared,
) -> Result<(), SessionError> {
    let mut session = Session::open(url, shared.clock, 900_000 + writer as u64).await?;
    // Connect and use the object (a write needs a prior use).
    'ready: loop {
        session.read().await?;
        while let Some(event) = session.conn.poll_event() {
            match event {
                ClientEvent::Connected { .. } => session.conn.so_use(name, false)?,
                ClientEvent::ConnectFailed { code, .. } => {
                    return Err(SessionError::Refused(code));
                }
                ClientEvent::SharedObject(m) if m.events.first() == Some(&SoEvent::UseSuccess) => {
                    break 'ready;
                }
                _ => {}
            }
        }
        session.flush().await?;
    }
    shared.writers_ready.set(shared.writers_ready.get() + 1);
    shared.wait_go().await;
    let key = format!("w{writer}");
    let mut pacing = Pacing::new(writer, options, shared.clock);
    loop {
        tokio::select! {
            readable = session.readable() => {
                readable?;
                session.try_read()?;
                while let Some(event) = session.conn.poll_event() {
                    if let ClientEvent::SharedObject(m) = event {
                        for e in &m.events {
                            if let SoEvent::Status { code, level } = e
                                && level == "error"
                            {
                                return Err(SessionError::Refused(code.clone()));
                            }
                        }
                    }
                }
            }
            () = shared.turn(writer, pacing.due()) => {
                let value = encode_value(writer, shared.clock.now_us(), options.value_bytes);
                session.conn.so_set(name, false, vec![(key.clone(), Value::String(value))])?;
                shared.sent_one(writer);
                pacing.advance();
            }
        }
        session.flush().await?;
        if shared.stop.get() {
            return Ok(());
        }
    }
}

/// Opens a WebSocket client of tern's JSON protocol (`ws://host:port/app/room`,
/// subprotocol `tern.v1`); `n` varies its handshake key.
async fn ws_open(url: &str, n: u64) -> Result<WsClient, SessionError> {
    WsClient::connect(url, WS_SUBPROTOCOL, n).await
}

/// The subprotocol of tern's JSON protocol v1.
const WS_SUBPROTOCOL: &str = "tern.v1";

/// The parts of a server message the load tool looks at, borrowed from
/// the frame (the bench's values and every op, code and SO name are plain
/// ASCII without escapes; a message that is not is skipped).
#[derive(Debug, serde::Deserialize)]
struct ServerMessage<'a> {
    op: &'a str,
    #[serde(default)]
    value: Option<&'a str>,
    #[serde(default)]
    code: Option<&'a str>,
}

impl ServerMessage<'_> {
    /// A text frame's message, if the load tool can read it.
    fn parse(text: &[u8]) -> Option<ServerMessage<'_>> {
        serde_json::from_slice(text).ok()
    }

    /// An `error` message ends the client that got it.
    fn refused(&self) -> SessionError {
        SessionError::Refused(self.code.unwrap_or("error").to_owned())
    }
}

/// `{"op":"use","so":NAME}`.
fn ws_use(so_json: &str) -> String {
    format!(r#"{{"op":"use","so":{so_json},"persistent":false}}"#)
}

/// Waits for `welcome`, uses the object and waits for its `sync`.
async fn ws_use_object(ws: &mut WsClient, so_json: &str) -> Result<(), SessionError> {
    loop {
        let (mut welcome, mut synced) = (false, false);
        ws.read_messages(|text| {
            match ServerMessage::parse(text) {
                Some(m) if m.op == "welcome" => welcome = true,
                Some(m) if m.op == "sync" => synced = true,
                Some(m) if m.op == "error" => return Err(m.refused()),
                _ => {}
            }
            Ok(())
        })
        .await?;
        if welcome {
            ws.send_text(&ws_use(so_json)).await?;
        }
        if synced {
            return Ok(());
        }
    }
}

async fn ws_subscriber(
    id: usize,
    url: &str,
    name: &str,
    shared: &Shared,
    mut permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<(), SessionError> {
    let so_json = serde_json::to_string(name).map_err(io::Error::other)?;
    let mut ws = ws_open(url, id as u64).await?;
    ws_use_object(&mut ws, &so_json).await?;
    if permit.take().is_some() {
        shared.subscribed.set(shared.subscribed.get() + 1);
    }
    loop {
        ws.read_messages(|text| {
            match ServerMessage::parse(text) {
                Some(m) if m.op == "change" => {
                    if let Some(value) = m.value {
                        shared.on_delivery(value.as_bytes(), id, Transport::Ws);
                    }
                }
                Some(m) if m.op == "error" => return Err(m.refused()),
                _ => {}
            }
            Ok(())
        })
        .await?;
        if shared.stop.get() {
            return Ok(());
        }
    }
}

async fn ws_writer(
    writer: usize,
    url: &str,
    name: &str,
    options: &SoOptions,
    shared: &Shared,
) -> Result<(), SessionError> {
    let so_json = serde_json::to_string(name).map_err(io::Error::other)?;
    let mut ws = ws_open(url, 900_000 + writer as u64).await?;
    ws_use_object(&mut ws, &so_json).await?;
    shared.writers_ready.set(shared.writers_ready.get() + 1);
    shared.wait_go().await;
    // Everything of a `set` but the value's stamp, made once.
    let head = format!(r#"{{"op":"set","so":{so_json},"key":"w{writer}","value":""#);
    let mut text = String::with_capacity(head.len() + options.value_bytes + 2);
    let mut pacing = Pacing::new(writer, options, shared.clock);
    loop {
        tokio::select! {
            readable = ws.readable() => {
                // Acks of its own sets and changes of the other writers:
                // not counted (as for RTMP writers); errors end the writer.
                readable?;
                ws.try_read_messages(|text| match ServerMessage::parse(text) {
                    Some(m) if m.op == "error" => Err(m.refused()),
                    _ => Ok(()),
                })
                .await?;
            }
            () = shared.turn(writer, pacing.due()) => {
                text.clear();
                text.push_str(&head);
                encode_value_into(&mut text, writer, shared.clock.now_us(), options.value_bytes);
                text.push_str("\"}");
                ws.send_text(&text).await?;
                shared.sent_one(writer);
                pacing.advance();
            }
        }
        if shared.stop.get() {
            return Ok(());
        }
    }
}

/// Open-loop pacing: writer `k` of `K` sends at `start + (n + k/K) / rate`.
#[derive(Debug)]
struct Pacing {
    interval_us: Option<f64>,
    start_us: f64,
    n: u64,
    clock: Clock,
}

impl Pacing {
    fn new(writer: usize, options: &SoOptions, clock: Clock) -> Self {
        let interval_us = (options.rate > 0.0).then(|| 1e6 / options.rate);
        let offset = interval_us.unwrap_or(0.0) * writer as f64 / options.writers.max(1) as f64;
        Pacing {
            interval_us,
            start_us: clock.now_us() as f64 + offset,
            n: 0,
            clock,
        }
    }

    fn due(&self) -> Option<tokio::time::Instant> {
        let interval = self.interval_us?;
        Some(
            self.clock
                .at((self.start_us + interval * self.n as f64) as u64),
        )
    }

    fn advance(&mut self) {
        self.n += 1;
    }
}

async fn redis_connect(address: &str) -> io::Result<TcpStream> {
    let socket = TcpStream::connect(address).await?;
    socket.set_nodelay(true)?;
    Ok(socket)
}

/// Reads what is there into `buf` (appending); `Ok(false)` if nothing was.
/// A short read marks the socket drained, as for RTMP subscribers
/// ([`Session::set_sparse_input`](crate::session::Session::set_sparse_input)).
fn redis_try_read(socket: &TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.reserve(16 * 1024);
    let room = buf.capacity() - buf.len();
    match socket.try_read_buf(buf) {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed by the server",
        )),
        Ok(n) => {
            if n < room {
                crate::session::mark_drained(socket);
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

async fn redis_subscriber(
    id: usize,
    address: &str,
    channel: &str,
    shared: &Shared,
    mut permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> io::Result<()> {
    let mut socket = redis_connect(address).await?;
    let mut out = Vec::new();
    resp::command(&[b"SUBSCRIBE", channel.as_bytes()], &mut out);
    socket.write_all(&out).await?;
    let mut buf = Vec::new();
    loop {
        socket.readable().await?;
        if !redis_try_read(&socket, &mut buf)? {
            continue;
        }
        let mut used = 0;
        while let Some((reply, n)) =
            resp::parse(buf.get(used..).unwrap_or_default()).map_err(io::Error::other)?
        {
            used += n;
            if let Some(payload) = reply.message_payload() {
                shared.on_delivery(payload, id, Transport::Redis);
            } else if reply.items().first() == Some(&resp::Item::Bulk(Some(b"subscribe")))
                && permit.take().is_some()
            {
                shared.subscribed.set(shared.subscribed.get() + 1);
            } else if let resp::Reply::Item(resp::Item::Error(e)) = reply {
                return Err(io::Error::other(String::from_utf8_lossy(e).into_owned()));
            }
        }
        buf.drain(..used);
        if shared.stop.get() {
            return Ok(());
        }
    }
}

async fn redis_writer(
    writer: usize,
    address: &str,
    channel: &str,
    options: &SoOptions,
    shared: &Shared,
) -> io::Result<()> {
    let mut socket = redis_connect(address).await?;
    shared.writers_ready.set(shared.writers_ready.get() + 1);
    shared.wait_go().await;
    let mut pacing = Pacing::new(writer, options, shared.clock);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        tokio::select! {
            readable = socket.readable() => {
                readable?;
                if redis_try_read(&socket, &mut buf)? {
                    let mut used = 0;
                    while let Some((reply, n)) =
                        resp::parse(buf.get(used..).unwrap_or_default()).map_err(io::Error::other)?
                    {
                        used += n;
                        if let resp::Reply::Item(resp::Item::Error(e)) = reply {
                            return Err(io::Error::other(String::from_utf8_lossy(e).into_owned()));
                        }
                    }
                    buf.drain(..used);
                }
            }
            () = shared.turn(writer, pacing.due()) => {
                let value = encode_value(writer, shared.clock.now_us(), options.value_bytes);
                out.clear();
                resp::command(&[b"PUBLISH", channel.as_bytes(), value.as_bytes()], &mut out);
                socket.write_all(&out).await?;
                shared.sent_one(writer);
                pacing.advance();
            }
        }
        if shared.stop.get() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_writer_and_time() {
        let v = encode_value(7, 123_456, 128);
        assert_eq!(v.len(), 128);
        assert_eq!(decode_value(v.as_bytes()), Some((7, 123_456)));
        let short = encode_value(3, 9, 10);
        assert_eq!(short.len(), HEADER_LEN);
        assert_eq!(decode_value(short.as_bytes()), Some((3, 9)));
        assert_eq!(decode_value(b"hello"), None);
    }
}
