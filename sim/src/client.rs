//! A simulated client: core's RTMP [`ClientConnection`] or a WebSocket
//! client speaking tern's JSON protocol (`ws`), over a turmoil `TcpStream`,
//! following its script, reconnecting when its connection dies, and
//! checking everything it receives.
//!
//! The client behaves like a careful application would: it notices a dead
//! connection (nothing heard for [`SILENCE_LIMIT`] although it probes the
//! server every [`PROBE_EVERY`], or a write that cannot go out for
//! [`WRITE_TIMEOUT`]), reconnects, uses its shared objects again and
//! re-publishes or re-plays. Its script's times are fixed when the scenario
//! is planned, so what it does never depends on what it saw.

use crate::fnv::Fnv1a;
use crate::media::{FRAME_MS, Frame, GOP, MediaViolation, PlayerCheck};
use crate::net::{HTTP_PORT, RTMP_PORT, SERVER};
use crate::report::{Violation, ViolationKind};
use crate::rng::SimRng;
use crate::so_view::{SoReplica, SoViolation, SubState};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;
use tern_core::amf0::{self, Value};
use tern_core::message::{SharedObjectMessage, SoEvent};
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{ClientConfig, ClientConnection, ClientEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) mod ws;

/// Longest wait for a TCP connection to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a single write may block before the connection counts as dead.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Silence from the server after which the connection counts as dead.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(3);
/// A client that heard nothing for this long sends a probe call (answered
/// by the server with `_error`), so silence always means trouble.
pub const PROBE_EVERY: Duration = Duration::from_millis(1000);
/// A player reading at full speed cannot be too slow this soon after it
/// started playing.
pub const JOIN_GRACE: Duration = Duration::from_millis(500);
/// Pause before reconnecting.
pub const RETRY_AFTER: Duration = Duration::from_millis(300);
/// Pause before publishing again after `NetStream.Publish.BadName` (the
/// server may still hold the previous connection's stream).
pub const PUBLISH_RETRY: Duration = Duration::from_millis(500);

/// How an [`Op::Stamp`] broadcast's text starts (the send time follows).
const STAMP: &str = "stamp:";

/// What a client does besides shared objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Shared objects only.
    Chat,
    /// Publishes synthetic media on `stream` in its room.
    Publisher {
        /// Stream name.
        stream: String,
    },
    /// Plays `stream` in its room.
    Player {
        /// Stream name.
        stream: String,
    },
}

/// How a client talks to the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// RTMP on port 1935, core's [`ClientConnection`].
    #[default]
    Rtmp,
    /// WebSocket on the HTTP port (`tokio-tungstenite` over a turmoil
    /// stream), JSON protocol v1 (`docs/ws-protocol.md`). Its shared-object
    /// messages feed the same [`SoReplica`] as RTMP's — `sync` as a
    /// use-success with every key, `ack` as our own successes,
    /// `change`/`delete` as changes, `message` as a broadcast — so every
    /// invariant covers both kinds of subscriber. Shared objects only: a
    /// WebSocket client's role must be [`Role::Chat`].
    WebSocket,
}

/// A shared object a client uses from the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSpec {
    /// Object name.
    pub name: String,
    /// Persistence flag.
    pub persistent: bool,
}

impl ObjectSpec {
    /// A transient object.
    pub fn transient(name: &str) -> ObjectSpec {
        ObjectSpec {
            name: name.to_owned(),
            persistent: false,
        }
    }

    /// A persistent object (saved by the server's store).
    pub fn persistent(name: &str) -> ObjectSpec {
        ObjectSpec {
            name: name.to_owned(),
            persistent: true,
        }
    }
}

/// One operation of a client.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Sets keys of `object` in one message (one batch).
    Set {
        /// Object name.
        object: String,
        /// Keys and values.
        changes: Vec<(String, Value)>,
    },
    /// Deletes `key` of `object`.
    Delete {
        /// Object name.
        object: String,
        /// Key.
        key: String,
    },
    /// Broadcasts `chat(text)` to the subscribers of `object`.
    Send {
        /// Object name.
        object: String,
        /// Argument.
        text: String,
    },
    /// Broadcasts `chat("stamp:<ms>")` to the subscribers of `object`,
    /// `<ms>` being the simulated time it is sent; receivers record how
    /// long it took ([`Observations::stamp_latencies_ms`]).
    Stamp {
        /// Object name.
        object: String,
    },
    /// Subscribes to `object` (again).
    Use {
        /// Object name.
        object: String,
    },
    /// Unsubscribes from `object`.
    Release {
        /// Object name.
        object: String,
    },
    /// Closes the connection; reconnects after `rejoin_after`.
    Leave {
        /// Time away.
        rejoin_after: Duration,
    },
    /// Stops reading the socket for a while (a frozen application: it
    /// writes nothing either). turmoil's flow control then blocks the
    /// server's writes, as a real slow consumer does.
    StopReading {
        /// How long.
        for_: Duration,
    },
}

/// How a client picks its operations.
#[derive(Clone, Debug, PartialEq)]
pub enum Ops {
    /// None besides its role.
    Idle,
    /// Random operations about every `mean_gap`, drawn from the seed.
    Random {
        /// Mean time between operations.
        mean_gap: Duration,
    },
    /// These operations at these times (from the start of the run).
    Script(Vec<(Duration, Op)>),
}

/// One client of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSpec {
    /// Room (below app `live`).
    pub room: String,
    /// Publisher, player or chat only.
    pub role: Role,
    /// Shared objects used from the start.
    pub objects: Vec<ObjectSpec>,
    /// Operations.
    pub ops: Ops,
    /// Reads at most this many bytes per second (a slow subscriber);
    /// `None` reads whatever arrives.
    pub read_rate: Option<u64>,
    /// When it first connects; `None`: a random moment in the first 500 ms.
    pub start: Option<Duration>,
    /// RTMP or WebSocket (chat only).
    pub transport: Transport,
    /// A connection it counts as lost is left open (never read, written or
    /// closed) instead of closed, as by a device whose network changed: the
    /// server gets no FIN and must find out by itself.
    pub abandon_lost: bool,
    /// Cluster runs: the server hosts it may use, its home node first.
    /// It connects to the first; when a connection cannot be opened it
    /// moves on to the next (a client of a crashed node reconnects
    /// elsewhere). Empty: the single `server` host. Non-empty also puts
    /// its replicas in cluster mode ([`SoReplica::allow_refusals`]).
    pub nodes: Vec<String>,
}

impl ClientSpec {
    fn new(room: &str, role: Role) -> ClientSpec {
        ClientSpec {
            room: room.to_owned(),
            role,
            objects: vec![
                ObjectSpec::transient("chat"),
                ObjectSpec::persistent("board"),
            ],
            ops: Ops::Idle,
            read_rate: None,
            start: None,
            transport: Transport::Rtmp,
            abandon_lost: false,
            nodes: Vec::new(),
        }
    }

    /// A client that only uses shared objects (`chat`, transient, and
    /// `board`, persistent, unless [`objects`](Self::objects) says else).
    pub fn chat(room: &str) -> ClientSpec {
        ClientSpec::new(room, Role::Chat)
    }

    /// A client that publishes `stream` in `room`.
    pub fn publisher(room: &str, stream: &str) -> ClientSpec {
        ClientSpec::new(
            room,
            Role::Publisher {
                stream: stream.to_owned(),
            },
        )
    }

    /// A client that plays `stream` in `room`.
    pub fn player(room: &str, stream: &str) -> ClientSpec {
        ClientSpec::new(
            room,
            Role::Player {
                stream: stream.to_owned(),
            },
        )
    }

    /// The shared objects it uses.
    pub fn objects(mut self, objects: Vec<ObjectSpec>) -> ClientSpec {
        self.objects = objects;
        self
    }

    /// Random operations about every `mean_gap`.
    pub fn random_ops(mut self, mean_gap: Duration) -> ClientSpec {
        self.ops = Ops::Random { mean_gap };
        self
    }

    /// Scripted operations.
    pub fn script(mut self, steps: Vec<(Duration, Op)>) -> ClientSpec {
        self.ops = Ops::Script(steps);
        self
    }

    /// Leaves lost connections open instead of closing them (see
    /// [`abandon_lost`](Self::abandon_lost)).
    pub fn abandon_lost(mut self) -> ClientSpec {
        self.abandon_lost = true;
        self
    }

    /// A slow subscriber reading at most `bytes_per_sec`.
    pub fn read_rate(mut self, bytes_per_sec: u64) -> ClientSpec {
        self.read_rate = Some(bytes_per_sec);
        self
    }

    /// How it talks to the server. WebSocket clients do not play media:
    /// [`Scenario::run`](crate::Scenario::run) refuses a WebSocket
    /// publisher or player.
    pub fn transport(mut self, transport: Transport) -> ClientSpec {
        self.transport = transport;
        self
    }

    /// The cluster nodes it uses, home first (see [`nodes`](Self::nodes)).
    pub fn on_nodes(mut self, nodes: Vec<String>) -> ClientSpec {
        self.nodes = nodes;
        self
    }

    /// Connects first at `at`.
    pub fn start_at(mut self, at: Duration) -> ClientSpec {
        self.start = Some(at);
        self
    }
}

/// The phases of every run, in simulated time from its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// Operations and faults end here.
    pub ops_end: Duration,
    /// Clients record their views and the observer reads `/api/stats`.
    pub check_at: Duration,
    /// Every client closes its connection and stops.
    pub leave_at: Duration,
    /// The observer checks that only the apps are left.
    pub idle_check_at: Duration,
}

/// A client's view of one object at the check.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectView {
    /// Object name.
    pub name: String,
    /// Persistence flag.
    pub persistent: bool,
    /// The client means to be subscribed.
    pub wanted: bool,
    /// Where the subscription stands.
    pub state: SubState,
    /// Version of the replica.
    pub version: u32,
    /// Attributes of the replica.
    pub data: BTreeMap<String, Value>,
    /// Own writes not answered yet.
    pub pending_writes: usize,
}

/// What a client looked like at the check.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// When it was taken.
    pub at_ms: u64,
    /// Connected and accepted by the server.
    pub connected: bool,
    /// The server host it was connected to (or last tried).
    pub host: String,
    /// One per object of its spec.
    pub objects: Vec<ObjectView>,
}

/// Everything one client observed.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// FNV-1a over every event it received with its time, in order.
    pub timed_hash: Fnv1a,
    /// FNV-1a per channel (`conn`, `so:<name>`, `stream:<id>`) over the
    /// content of its events, in order. Within one channel the order is
    /// the hub's; across channels it may depend on how the server's
    /// connection task interleaves direct replies and deliveries.
    pub channels: BTreeMap<String, Fnv1a>,
    /// Rules broken.
    pub violations: Vec<Violation>,
    /// Connections accepted by the server.
    pub sessions: u64,
    /// Connections lost (not left on purpose).
    pub lost: u64,
    /// Change events from others.
    pub changes: u64,
    /// Own batches acknowledged.
    pub acks: u64,
    /// Broadcast messages.
    pub messages: u64,
    /// The player's numbers, summed over its play sessions.
    pub frames: u64,
    /// Frames missed.
    pub dropped: u64,
    /// Longest gap.
    pub max_gap: u64,
    /// For every [`Op::Stamp`] broadcast received: simulated ms from its
    /// sending to its arrival (one clock: turmoil's).
    pub stamp_latencies_ms: Vec<u64>,
    /// `NetStream.Play.PublishNotify` statuses a player got before the
    /// check (not those of everyone leaving).
    pub publish_notifies: u64,
    /// `NetStream.Play.UnpublishNotify` statuses a player got before the
    /// check.
    pub unpublish_notifies: u64,
    /// The view at the check.
    pub snapshot: Option<Snapshot>,
    /// Cluster runs: writes refused with `SharedObject.NoWriteAccess`, as
    /// (simulated ms, server host).
    pub refusals: Vec<(u64, String)>,
    /// Cluster runs: per object, version → hash of someone else's change
    /// at that version, over all its connections.
    pub steps: BTreeMap<String, BTreeMap<u32, u64>>,
    /// Every event in words, if the scenario keeps a log.
    pub log: Vec<String>,
}

/// What the driver and a client share (the driver sets `paused` for
/// stop-reading faults; the client fills `obs`).
#[derive(Debug, Default)]
pub struct ClientShared {
    /// Stop reading (and writing) until cleared.
    pub paused: bool,
    /// Keep [`Observations::log`].
    pub log_events: bool,
    /// What the client saw.
    pub obs: Observations,
}

/// Simulated time since the run started.
pub fn sim_now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn sleep_until(at: Duration) {
    let now = sim_now();
    if at > now {
        tokio::time::sleep(at - now).await;
    }
}

/// How a connection ended.
#[derive(Debug)]
enum End {
    /// The connection died or the server closed it.
    Lost(String),
    /// The script said leave.
    Leave(Duration),
    /// The run is over.
    Done,
}

/// The shared-object requests of one connection, whatever its protocol.
trait SoWire {
    fn so_use(&mut self, name: &str, persistent: bool);
    /// Sends `changes` and returns them as the batches the server will
    /// acknowledge one by one (RTMP: one batch; WebSocket: one per key).
    fn so_set(
        &mut self,
        name: &str,
        persistent: bool,
        changes: Vec<(String, Value)>,
    ) -> Vec<Vec<(String, Value)>>;
    fn so_delete(&mut self, name: &str, persistent: bool, key: &str);
    fn so_send(&mut self, name: &str, persistent: bool, method: &str, args: Vec<Value>);
    fn so_release(&mut self, name: &str, persistent: bool);
}

impl SoWire for Session {
    fn so_use(&mut self, name: &str, persistent: bool) {
        let _ = self.conn.so_use(name, persistent);
    }

    fn so_set(
        &mut self,
        name: &str,
        persistent: bool,
        changes: Vec<(String, Value)>,
    ) -> Vec<Vec<(String, Value)>> {
        let _ = self.conn.so_set(name, persistent, changes.clone());
        vec![changes]
    }

    fn so_delete(&mut self, name: &str, persistent: bool, key: &str) {
        let _ = self.conn.so_delete(name, persistent, key);
    }

    fn so_send(&mut self, name: &str, persistent: bool, method: &str, args: Vec<Value>) {
        let _ = self.conn.so_send(name, persistent, method, args);
    }

    fn so_release(&mut self, name: &str, persistent: bool) {
        let _ = self.conn.so_release(name, persistent);
    }
}

/// The per-connection state.
struct Session {
    conn: ClientConnection,
    stream_id: Option<u32>,
    publishing: bool,
    need_key: bool,
    publish_retry_at: Option<Duration>,
    last_rx: Duration,
    last_probe: Duration,
    next_media: Duration,
    play_started: Option<Duration>,
}

/// One simulated client.
pub(crate) struct Client {
    pub(crate) name: String,
    /// Position in the scenario (picks the WebSocket URL form).
    index: usize,
    /// TCP connections opened so far.
    connects: usize,
    /// Index in [`ClientSpec::nodes`] of the host it uses now.
    node: usize,
    spec: ClientSpec,
    timeline: Timeline,
    rng: SimRng,
    ops: VecDeque<(Duration, Op)>,
    replicas: Vec<SoReplica>,
    wanted: Vec<bool>,
    player: PlayerCheck,
    frame: u32,
    paused_until: Duration,
    shared: Rc<RefCell<ClientShared>>,
    /// Lost connections kept open (see [`ClientSpec::abandon_lost`]).
    abandoned: Vec<(
        turmoil::net::tcp::OwnedReadHalf,
        turmoil::net::tcp::OwnedWriteHalf,
    )>,
}

impl Client {
    pub(crate) fn new(
        index: usize,
        name: String,
        spec: ClientSpec,
        ops: Vec<(Duration, Op)>,
        timeline: Timeline,
        rng: SimRng,
        shared: Rc<RefCell<ClientShared>>,
    ) -> Client {
        let replicas = spec
            .objects
            .iter()
            .map(|o| {
                let mut r = SoReplica::new(o.name.clone(), o.persistent);
                if !spec.nodes.is_empty() {
                    r.allow_refusals();
                }
                r
            })
            .collect();
        let wanted = vec![true; spec.objects.len()];
        Client {
            name,
            index,
            connects: 0,
            node: 0,
            spec,
            timeline,
            rng,
            ops: ops.into(),
            replicas,
            wanted,
            player: PlayerCheck::default(),
            frame: 0,
            paused_until: Duration::ZERO,
            shared,
            abandoned: Vec::new(),
        }
    }

    /// The server host it uses now.
    pub(crate) fn host(&self) -> &str {
        self.spec
            .nodes
            .get(self.node)
            .map_or(SERVER, String::as_str)
    }

    /// Cluster runs: after a refusal detached a replica, uses it again
    /// (release, then use: a fresh sync).
    fn resync_refused(&mut self, wire: &mut impl SoWire) {
        let at = ms(sim_now());
        let host = self.host().to_owned();
        for (i, r) in self.replicas.iter_mut().enumerate() {
            if !r.take_resync() {
                continue;
            }
            self.shared
                .borrow_mut()
                .obs
                .refusals
                .push((at, host.clone()));
            wire.so_release(&r.name, r.persistent);
            if self.wanted.get(i).copied().unwrap_or(false) {
                wire.so_use(&r.name, r.persistent);
                r.use_sent();
            }
        }
    }

    fn violate(&self, kind: ViolationKind, detail: impl Into<String>) {
        let v = Violation {
            at_ms: ms(sim_now()),
            who: self.name.clone(),
            kind,
            detail: detail.into(),
        };
        self.shared.borrow_mut().obs.violations.push(v);
    }

    /// Mixes an observed event into the traces: the timed trace (every
    /// event with its time, in order) and the trace of `channel` (the
    /// event's content only, in the channel's order).
    fn hash(&self, channel: &str, f: impl Fn(&mut Fnv1a)) {
        let mut shared = self.shared.borrow_mut();
        let at = ms(sim_now());
        let obs = &mut shared.obs;
        obs.timed_hash.write_u64(at);
        obs.timed_hash.write_str(channel);
        f(&mut obs.timed_hash);
        f(obs.channels.entry(channel.to_owned()).or_default());
    }

    /// Adds a line to the event log, if it is kept.
    fn log(&self, line: impl FnOnce() -> String) {
        let mut shared = self.shared.borrow_mut();
        if shared.log_events {
            let at = ms(sim_now());
            let line = format!("{at:>6} {}", line());
            shared.obs.log.push(line);
        }
    }

    /// Runs the client until the run's leave time.
    pub(crate) async fn run(mut self) -> turmoil::Result {
        sleep_until(self.spec.start.unwrap_or_default()).await;
        loop {
            let now = sim_now();
            self.maybe_snapshot(false);
            if now >= self.timeline.leave_at {
                break;
            }
            self.skip_missed_ops(now);
            let port = match self.spec.transport {
                Transport::Rtmp => RTMP_PORT,
                Transport::WebSocket => HTTP_PORT,
            };
            let host = self.host().to_owned();
            let connect = turmoil::net::TcpStream::connect((host.as_str(), port));
            let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(_)) | Err(_) => {
                    // A cluster client tries the next node.
                    if !self.spec.nodes.is_empty() {
                        self.node = (self.node + 1) % self.spec.nodes.len();
                    }
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
            };
            self.connects += 1;
            let end = match self.spec.transport {
                Transport::Rtmp => self.session(stream).await,
                Transport::WebSocket => self.ws_session(stream).await,
            };
            for r in &mut self.replicas {
                r.disconnected();
            }
            self.player.restart();
            match end {
                End::Done => break,
                End::Lost(why) => {
                    self.shared.borrow_mut().obs.lost += 1;
                    self.log(|| format!("lost: {why}"));
                    self.hash("conn", |h| h.write_str("lost"));
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                End::Leave(away) => {
                    self.log(|| "left".to_owned());
                    self.hash("conn", |h| h.write_str("left"));
                    tokio::time::sleep(away).await;
                }
            }
        }
        self.maybe_snapshot(false);
        let totals = self.replicas.iter().fold((0, 0, 0), |t, r| {
            (t.0 + r.changes, t.1 + r.acks, t.2 + r.messages)
        });
        let mut shared = self.shared.borrow_mut();
        shared.obs.changes = totals.0;
        shared.obs.acks = totals.1;
        shared.obs.messages = totals.2;
        for r in &self.replicas {
            if let Some(steps) = &r.steps {
                shared.obs.steps.insert(r.name.clone(), steps.clone());
            }
        }
        shared.obs.frames += self.player.frames;
        shared.obs.dropped += self.player.dropped;
        shared.obs.max_gap = shared.obs.max_gap.max(self.player.max_gap);
        Ok(())
    }

    /// While disconnected, operations that fall due are skipped, except
    /// that use/release still change what the client wants.
    fn skip_missed_ops(&mut self, now: Duration) {
        while self.ops.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, op)) = self.ops.pop_front() else {
                break;
            };
            match op {
                Op::Use { object } => self.set_wanted(&object, true),
                Op::Release { object } => self.set_wanted(&object, false),
                _ => {}
            }
        }
    }

    fn index(&self, object: &str) -> Option<usize> {
        self.replicas.iter().position(|r| r.name == object)
    }

    fn set_wanted(&mut self, object: &str, wanted: bool) {
        if let Some(i) = self.replicas.iter().position(|r| r.name == object)
            && let Some(w) = self.wanted.get_mut(i)
        {
            *w = wanted;
        }
    }

    /// Records the view once, at the check (`connected`: a connection is
    /// open and accepted by the server).
    fn maybe_snapshot(&mut self, connected: bool) {
        let now = sim_now();
        if now < self.timeline.check_at || self.shared.borrow().obs.snapshot.is_some() {
            return;
        }
        let objects = self
            .replicas
            .iter()
            .zip(&self.wanted)
            .map(|(r, wanted)| ObjectView {
                name: r.name.clone(),
                persistent: r.persistent,
                wanted: *wanted,
                state: r.state,
                version: r.version,
                data: r.data.clone(),
                pending_writes: r.pending_writes(),
            })
            .collect();
        let host = self.host().to_owned();
        self.shared.borrow_mut().obs.snapshot = Some(Snapshot {
            at_ms: ms(now),
            connected,
            host,
            objects,
        });
    }

    fn core_now() -> tern_core::Instant {
        tern_core::Instant::from_millis(ms(sim_now()))
    }

    async fn session(&mut self, stream: turmoil::net::TcpStream) -> End {
        let (mut rd, mut wr) = stream.into_split();
        let end = self.session_on(&mut rd, &mut wr).await;
        if self.spec.abandon_lost && matches!(end, End::Lost(_)) {
            // A device on a new network cannot close its old connection:
            // keep it open and silent, so only the server's own timeouts
            // (or a takeover) end it.
            self.abandoned.push((rd, wr));
        }
        end
    }

    async fn session_on(
        &mut self,
        rd: &mut turmoil::net::tcp::OwnedReadHalf,
        wr: &mut turmoil::net::tcp::OwnedWriteHalf,
    ) -> End {
        let now = sim_now();
        let mut random = [0u8; RANDOM_LEN];
        for b in &mut random {
            *b = self.rng.next_u64() as u8;
        }
        let app = format!("live/{}", self.spec.room);
        let config = ClientConfig::new(app.clone(), format!("rtmp://{SERVER}/{app}"));
        let mut s = Session {
            conn: ClientConnection::new(config, Self::core_now(), &random),
            stream_id: None,
            publishing: false,
            need_key: true,
            publish_retry_at: None,
            last_rx: now,
            last_probe: now,
            next_media: now,
            play_started: None,
        };
        self.skip_missed_ops(now);
        for i in 0..self.replicas.len() {
            if self.wanted.get(i).copied().unwrap_or(false) {
                self.use_object(&mut s, i);
            }
        }
        if !matches!(self.spec.role, Role::Chat) {
            let _ = s.conn.create_stream();
        }
        let read_size = if self.spec.read_rate.is_some() {
            2 * 1024
        } else {
            64 * 1024
        };
        let mut buf = vec![0u8; read_size];
        loop {
            while let Some(bytes) = s.conn.poll_transmit() {
                match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return End::Lost(format!("write failed: {e}")),
                    Err(_) => return End::Lost("write blocked".to_owned()),
                }
            }
            let now = sim_now();
            self.maybe_snapshot(s.conn.is_connected());
            if now >= self.timeline.leave_at {
                return End::Done;
            }
            let paused = self.shared.borrow().paused || now < self.paused_until;
            if paused {
                // Silence while frozen is not the server's fault.
                s.last_rx = now;
            } else {
                if now.saturating_sub(s.last_rx) > SILENCE_LIMIT {
                    return End::Lost(format!(
                        "server silent for {} ms",
                        ms(now.saturating_sub(s.last_rx))
                    ));
                }
                self.resync_refused(&mut s);
                while self.ops.front().is_some_and(|(at, _)| *at <= now) {
                    let Some((_, op)) = self.ops.pop_front() else {
                        break;
                    };
                    if let Some(end) = self.perform(&mut s, op, now) {
                        return end;
                    }
                }
                if s.publishing && now >= s.next_media {
                    self.send_frame(&mut s);
                    s.next_media += Duration::from_millis(FRAME_MS);
                }
                if let (Some(at), Some(id)) = (s.publish_retry_at, s.stream_id)
                    && now >= at
                {
                    s.publish_retry_at = None;
                    if let Role::Publisher { stream } = &self.spec.role {
                        let _ = s.conn.publish(id, stream);
                    }
                }
                if now.saturating_sub(s.last_rx) >= PROBE_EVERY
                    && now.saturating_sub(s.last_probe) >= PROBE_EVERY
                {
                    let _ = s.conn.call("simPing", Vec::new(), true);
                    s.last_probe = now;
                }
                if s.conn.pending_bytes() > 0 {
                    continue;
                }
            }
            let wake = self.next_wake(&s, now, paused);
            tokio::select! {
                biased;
                read = rd.read(&mut buf), if !paused => {
                    let n = match read {
                        Ok(0) => return End::Lost("closed by the server".to_owned()),
                        Ok(n) => n,
                        Err(e) => return End::Lost(format!("read failed: {e}")),
                    };
                    s.last_rx = sim_now();
                    let input = s.conn.handle_input(Self::core_now(), buf.get(..n).unwrap_or_default());
                    while let Some(event) = s.conn.poll_event() {
                        self.on_event(&mut s, event);
                    }
                    if let Err(e) = input {
                        self.violate(ViolationKind::Protocol, format!("client rejects server bytes: {e}"));
                        return End::Lost(format!("protocol error: {e}"));
                    }
                    if let Some(rate) = self.spec.read_rate {
                        let pause = Duration::from_millis((n as u64 * 1000).div_ceil(rate.max(1)));
                        tokio::time::sleep(pause).await;
                    }
                }
                () = tokio::time::sleep(wake.saturating_sub(now)) => {}
            }
        }
    }

    fn next_wake(&self, s: &Session, now: Duration, paused: bool) -> Duration {
        let mut wake = self.timeline.leave_at;
        let mut consider = |t: Duration| {
            if t < wake {
                wake = t;
            }
        };
        if now < self.timeline.check_at {
            consider(self.timeline.check_at);
        }
        if paused {
            consider(now + Duration::from_millis(20));
            return wake.max(now);
        }
        if let Some((at, _)) = self.ops.front() {
            consider(*at);
        }
        if s.publishing {
            consider(s.next_media);
        }
        if let Some(at) = s.publish_retry_at {
            consider(at);
        }
        consider((s.last_rx + PROBE_EVERY).max(s.last_probe + PROBE_EVERY));
        consider(s.last_rx + SILENCE_LIMIT + Duration::from_millis(1));
        wake.max(now)
    }

    fn use_object(&mut self, wire: &mut impl SoWire, i: usize) {
        if let Some(r) = self.replicas.get_mut(i)
            && r.state == SubState::Released
        {
            wire.so_use(&r.name, r.persistent);
            r.use_sent();
        }
    }

    /// Performs one operation; `Some` ends the connection.
    fn perform(&mut self, wire: &mut impl SoWire, op: Op, now: Duration) -> Option<End> {
        self.log(|| format!("do {op:?}"));
        match op {
            Op::Set { object, changes } => {
                let r = self.replicas.iter_mut().find(|r| r.name == object)?;
                if r.state != SubState::Released {
                    for batch in wire.so_set(&r.name, r.persistent, changes) {
                        r.batch_sent(batch);
                    }
                }
            }
            Op::Delete { object, key } => {
                let r = self.replicas.iter_mut().find(|r| r.name == object)?;
                if r.state != SubState::Released {
                    wire.so_delete(&r.name, r.persistent, &key);
                }
            }
            Op::Send { object, text } => {
                let r = self.replicas.iter_mut().find(|r| r.name == object)?;
                if r.state != SubState::Released {
                    let args = vec![Value::string(text)];
                    wire.so_send(&r.name, r.persistent, "chat", args);
                }
            }
            Op::Stamp { object } => {
                let r = self.replicas.iter_mut().find(|r| r.name == object)?;
                if r.state != SubState::Released {
                    let args = vec![Value::string(format!("{STAMP}{}", ms(now)))];
                    wire.so_send(&r.name, r.persistent, "chat", args);
                }
            }
            Op::Use { object } => {
                let i = self.index(&object)?;
                self.set_wanted(&object, true);
                self.use_object(wire, i);
            }
            Op::Release { object } => {
                let i = self.index(&object)?;
                self.set_wanted(&object, false);
                let r = self.replicas.get_mut(i)?;
                if r.state != SubState::Released {
                    wire.so_release(&r.name, r.persistent);
                    r.detach();
                }
            }
            Op::Leave { rejoin_after } => return Some(End::Leave(rejoin_after)),
            Op::StopReading { for_ } => self.paused_until = now + for_,
        }
        None
    }

    fn send_frame(&mut self, s: &mut Session) {
        let Some(id) = s.stream_id else { return };
        let n = self.frame;
        self.frame += 1;
        let ts = (u64::from(n) * FRAME_MS) as u32;
        let mut frames = Vec::with_capacity(4);
        if s.need_key {
            frames.extend([Frame::VideoHeader, Frame::AudioHeader, Frame::Key(n)]);
            s.need_key = false;
        } else if n.is_multiple_of(GOP) {
            frames.push(Frame::Key(n));
        } else {
            frames.push(Frame::Inter(n));
        }
        frames.push(Frame::Audio(n));
        for f in frames {
            let _ = s.conn.send_media(id, f.kind(), ts, f.encode());
        }
    }

    fn on_event(&mut self, s: &mut Session, event: ClientEvent) {
        self.log(|| match &event {
            ClientEvent::Media {
                stream_id,
                kind,
                timestamp,
                payload,
            } => {
                format!(
                    "media {stream_id} {kind:?} {timestamp} {:?}",
                    Frame::parse(*kind, payload)
                )
            }
            other => format!("{other:?}"),
        });
        match event {
            ClientEvent::Connected { .. } => {
                self.shared.borrow_mut().obs.sessions += 1;
                self.hash("conn", |h| h.write_str("connected"));
            }
            ClientEvent::ConnectFailed { code, description } => {
                self.hash("conn", |h| h.write_str(&code));
                self.violate(
                    ViolationKind::SoRefused,
                    format!("connect refused: {code}: {description}"),
                );
            }
            ClientEvent::StreamCreated { stream_id, .. } => {
                self.hash("conn", |h| {
                    h.write_str("stream");
                    h.write_u64(u64::from(stream_id));
                });
                s.stream_id = Some(stream_id);
                match &self.spec.role {
                    Role::Publisher { stream } => {
                        let _ = s.conn.publish(stream_id, stream);
                    }
                    Role::Player { stream } => {
                        let _ = s.conn.play(stream_id, stream, -2.0);
                    }
                    Role::Chat => {}
                }
            }
            ClientEvent::Status {
                stream_id,
                code,
                description,
                ..
            } => {
                self.hash(&format!("stream:{stream_id}"), |h| {
                    h.write_str("status");
                    h.write_u64(u64::from(stream_id));
                    h.write_str(&code);
                });
                self.on_status(s, &code, &description);
            }
            ClientEvent::SharedObject(msg) => {
                self.hash(&format!("so:{}", msg.name), |h| hash_so(h, &msg));
                self.on_shared_object(&msg);
            }
            ClientEvent::Media {
                stream_id,
                kind,
                timestamp,
                payload,
            } => {
                self.hash(&format!("stream:{stream_id}"), |h| {
                    h.write_str("media");
                    h.write_u64(u64::from(stream_id));
                    h.write_u64(kind as u64);
                    h.write_u64(u64::from(timestamp));
                    h.write(&payload);
                });
                if Some(stream_id) == s.stream_id
                    && matches!(self.spec.role, Role::Player { .. })
                    && let Err(v) = self.player.on_media(kind, timestamp, &payload)
                {
                    self.media_violation(v);
                }
            }
            // Pings, probe answers, stream begin/EOF: timing, not content.
            // The simulator's clients decode shared objects (they never set
            // `raw_shared_objects`).
            ClientEvent::SharedObjectPayload(_)
            | ClientEvent::UserControl(_)
            | ClientEvent::Error { .. }
            | ClientEvent::Result { .. }
            | ClientEvent::Call(_) => {}
        }
    }

    fn on_status(&mut self, s: &mut Session, code: &str, description: &str) {
        match code {
            "NetConnection.Connect.Closed" if description.contains("too slow") => {
                // Cut as too slow right after starting to play, reading at
                // full speed: it cannot have fallen behind.
                let now = sim_now();
                let fast = self.spec.read_rate.is_none() && now >= self.paused_until;
                if let Some(started) = s.play_started
                    && fast
                    && now.saturating_sub(started) < JOIN_GRACE
                {
                    self.violate(
                        ViolationKind::UnfairDisconnect,
                        format!(
                            "closed {} ms after play start: {description}",
                            ms(now.saturating_sub(started))
                        ),
                    );
                }
            }
            "NetStream.Publish.Start" => {
                s.publishing = true;
                s.need_key = true;
                s.next_media = sim_now();
            }
            "NetStream.Publish.BadName" => {
                s.publish_retry_at = Some(sim_now() + PUBLISH_RETRY);
            }
            "NetStream.Play.Start" => {
                s.play_started = Some(sim_now());
                self.player.restart();
            }
            "NetStream.Play.Reset" => self.player.restart(),
            "NetStream.Play.PublishNotify" => {
                if sim_now() < self.timeline.check_at {
                    self.shared.borrow_mut().obs.publish_notifies += 1;
                }
                self.player.restart();
            }
            "NetStream.Play.UnpublishNotify" => {
                if sim_now() < self.timeline.check_at {
                    self.shared.borrow_mut().obs.unpublish_notifies += 1;
                }
                self.player.restart();
            }
            "NetStream.Play.StreamNotFound" => {
                self.violate(ViolationKind::SoRefused, "play refused: StreamNotFound");
            }
            _ => {}
        }
    }

    fn on_shared_object(&mut self, msg: &SharedObjectMessage) {
        let Some(r) = self.replicas.iter_mut().find(|r| r.name == msg.name) else {
            return;
        };
        for event in &msg.events {
            if let SoEvent::SendMessage { args, .. } = event
                && let Some(text) = args.first().and_then(Value::as_str)
                && let Some(sent) = text.strip_prefix(STAMP)
                && let Ok(sent) = sent.parse::<u64>()
            {
                let latency = ms(sim_now()).saturating_sub(sent);
                self.shared
                    .borrow_mut()
                    .obs
                    .stamp_latencies_ms
                    .push(latency);
            }
        }
        if let Err(v) = r.on_message(msg) {
            let kind = match v {
                SoViolation::Version { .. } => ViolationKind::SoVersion,
                SoViolation::Refused { .. } => ViolationKind::SoRefused,
                SoViolation::StrayAck { .. } => ViolationKind::SoAck,
                SoViolation::Order { .. } => ViolationKind::SoVersion,
            };
            let detail = format!("{}: {v}", msg.name);
            self.violate(kind, detail);
        }
    }

    fn media_violation(&self, v: MediaViolation) {
        let kind = match v {
            MediaViolation::TimestampBackwards { .. } => ViolationKind::TimestampBackwards,
            MediaViolation::HeaderTimestampBackwards { .. } => {
                ViolationKind::HeaderTimestampBackwards
            }
            MediaViolation::Reordered { .. } | MediaViolation::Unknown { .. } => {
                ViolationKind::MediaOrder
            }
            MediaViolation::InterAfterGap { .. } => ViolationKind::MediaGap,
        };
        self.violate(kind, v.to_string());
    }
}

fn hash_so(h: &mut Fnv1a, msg: &SharedObjectMessage) {
    h.write_str("so");
    h.write_str(&msg.name);
    h.write_u64(u64::from(msg.version));
    let mut value_bytes = Vec::new();
    for event in &msg.events {
        let (tag, key, value): (&str, Option<&str>, Option<&Value>) = match event {
            SoEvent::UseSuccess => ("use-success", None, None),
            SoEvent::Clear => ("clear", None, None),
            SoEvent::Change { key, value } => ("change", Some(key), Some(value)),
            SoEvent::Success { key } => ("success", Some(key), None),
            SoEvent::Remove { key } => ("remove", Some(key), None),
            SoEvent::SendMessage { method, .. } => ("message", Some(method), None),
            SoEvent::Status { code, .. } => ("status", Some(code), None),
            _ => ("other", None, None),
        };
        h.write_str(tag);
        if let Some(key) = key {
            h.write_str(key);
        }
        if let Some(value) = value {
            value_bytes.clear();
            amf0::encode(value, &mut value_bytes);
            h.write(&value_bytes);
        }
        if let SoEvent::SendMessage { args, .. } = event {
            for arg in args {
                value_bytes.clear();
                amf0::encode(arg, &mut value_bytes);
                h.write(&value_bytes);
            }
        }
    }
}
