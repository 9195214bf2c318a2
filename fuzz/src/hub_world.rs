//! The world of the `hub` fuzz target: one [`Hub`], RTMP clients (the
//! core's `ClientConnection` against a real `ServerConnection`) and
//! WebSocket clients (a small masked-frame JSON client against a real
//! `WsConnection`), driven in virtual time by an [`Op`] sequence that
//! `arbitrary` builds from the fuzzer's bytes.
//!
//! Invariants, checked after every operation (a violation panics):
//! - every subscriber of a shared object sees its versions go up one step
//!   per batch, never skipped or repeated, each key of a batch once, and a
//!   broadcast message at the current version;
//! - every subscriber that saw a batch saw the same keys in it (the first
//!   one to finish a version records it, the others are compared);
//! - a player never sees a video frame twice or out of order, and after
//!   frames it missed (other than disposable ones) its next frame is a
//!   keyframe; its first frame of a play is a keyframe;
//! - each outbox holds at most `max_pending_notices` notices (+ the close)
//!   and at most `max_media_bytes` of media (+ one message), each server
//!   connection at most the socket buffer plus one delivery;
//! - clients accept every byte the server writes;
//!
//! and at the end: after a full drain every synced replica equals the
//! server's object (data and version); after every client left and
//! `room_idle` passed, no room, stream or shared object is left.

use arbitrary::Arbitrary;
use bytes::Bytes;
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use tern_core::amf0::Value;
use tern_core::hub::{
    ConnId, Hub, HubConfig, MediaKind, MediaPriority, OutboxLimits, Request, SoChange,
};
use tern_core::message::{SharedObjectMessage, SoEvent};
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{
    ClientConfig, ClientConnection, ClientEvent, ServerConfig, ServerConnection,
};
use tern_core::scope_path::ScopePath;
use tern_core::time::{Duration, Instant};
use tern_core::ws::amf_json::{amf_to_json, json_to_amf};
use tern_core::ws::{WsConfig, WsConnection};

/// Rooms clients join (`app/room`).
pub const ROOMS: [&str; 3] = ["chat/a", "chat/b", "live/a"];
/// Shared objects: (name, persistent).
pub const OBJECTS: [(&str, bool); 3] = [("t0", false), ("t1", false), ("p", true)];
/// Keys writers use.
const KEYS: u8 = 6;
/// Stream names publishers and players use.
const STREAMS: [&str; 2] = ["s0", "s1"];
/// Most clients in one run.
const MAX_CLIENTS: usize = 10;
/// Bytes a server connection may hold before the driver stops pulling
/// deliveries for it (the runtime's socket back-pressure).
const SOCKET_BUFFER: usize = 4 * 1024;
/// Largest media payload the driver sends.
const MAX_PAYLOAD: usize = 2048;

/// A value a writer sets.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Val {
    Num(i16),
    Str(u8),
    Bool(bool),
}

impl Val {
    fn amf(self) -> Value {
        match self {
            Val::Num(n) => Value::Number(f64::from(n)),
            Val::Str(n) => Value::string(format!("v{n}")),
            Val::Bool(b) => Value::Boolean(b),
        }
    }
}

/// A media message a publisher sends.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Frame {
    VideoHeader,
    Key,
    Inter,
    Disposable,
    AudioHeader,
    Audio,
    Metadata,
}

/// One step of a run.
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    ConnectRtmp {
        room: u8,
    },
    ConnectWs {
        room: u8,
    },
    Use {
        client: u8,
        so: u8,
    },
    Release {
        client: u8,
        so: u8,
    },
    /// RTMP: one batch of these (distinct keys, first wins); WebSocket: the
    /// first one only (one op per frame).
    Write {
        client: u8,
        so: u8,
        changes: Vec<(u8, Option<Val>)>,
    },
    Send {
        client: u8,
        so: u8,
        arg: u8,
    },
    ServerSet {
        room: u8,
        so: u8,
        key: u8,
        val: Val,
    },
    ServerDelete {
        room: u8,
        so: u8,
        key: u8,
    },
    ServerClear {
        room: u8,
        so: u8,
    },
    Publish {
        client: u8,
        stream: u8,
    },
    Play {
        client: u8,
        stream: u8,
    },
    CloseStream {
        client: u8,
    },
    Media {
        client: u8,
        frame: Frame,
        dt: u8,
        size: u8,
    },
    Stall {
        client: u8,
    },
    Resume {
        client: u8,
    },
    /// A stalled client reads `n` deliveries.
    Trickle {
        client: u8,
        n: u8,
    },
    Disconnect {
        client: u8,
    },
    Advance {
        ms: u16,
    },
    /// A publisher sends `frames % 64` messages at once (keyframe, inter,
    /// disposable and audio in a fixed pattern), `dt` × 20 ms apart.
    Burst {
        client: u8,
        frames: u8,
        dt: u8,
    },
}

/// Hub settings the fuzzer picks.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Setup {
    pub gop_cache: bool,
    pub tiny_outbox: bool,
    pub small_chunks: bool,
    /// Start from a live room ([`LIVE_ROOM`]): client 0 publishes stream 0
    /// in room 0 and client 1, stalled, plays it. The media drop policy
    /// (cut-backs, lag overflow) needs about eight operations in this order
    /// before the first burst, which runs from scratch seldom found; with
    /// this the fuzzer starts there and spends its operations on what
    /// follows.
    pub live_room: bool,
}

/// The operations a [`Setup::live_room`] run starts with (each step driven
/// and checked like the script's own): two RTMP clients in room 0, a
/// stream each (the first publish/play creates it), publish and play, then
/// the player stops reading.
pub const LIVE_ROOM: [Op; 8] = [
    Op::ConnectRtmp { room: 0 },
    Op::ConnectRtmp { room: 0 },
    Op::Publish {
        client: 0,
        stream: 0,
    },
    Op::Play {
        client: 1,
        stream: 0,
    },
    Op::Publish {
        client: 0,
        stream: 0,
    },
    Op::Play {
        client: 1,
        stream: 0,
    },
    Op::Advance { ms: 50 },
    Op::Stall { client: 1 },
];

/// A whole run: setup and operations.
#[derive(Arbitrary, Clone, Debug)]
pub struct Script {
    pub setup: Setup,
    pub ops: Vec<Op>,
}

// ---------------------------------------------------------------- replicas

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sub {
    Released,
    Pending,
    Synced,
}

/// What one notice of a batch did, as every subscriber must see it (the
/// writer's success counts as a set).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Did {
    Set(String),
    Delete(String),
    Clear,
}

/// One client's view of one shared object, rebuilt from what it received.
#[derive(Debug)]
struct Replica {
    state: Sub,
    version: u32,
    data: BTreeMap<String, Value>,
    /// Own batches (key → value of its sets), oldest first.
    pending: Vec<BTreeMap<String, Value>>,
    uses_sent: u32,
    uses_seen: u32,
    /// The notices of the batch at `version` seen so far.
    batch: Vec<Did>,
    /// Keys of own sets acknowledged at `version`.
    acked: BTreeSet<String>,
    /// Epoch of the object when synced (objects are recreated after they
    /// were unloaded, with versions from 0 again).
    epoch: u64,
}

impl Replica {
    fn new() -> Self {
        Replica {
            state: Sub::Released,
            version: 0,
            data: BTreeMap::new(),
            pending: Vec::new(),
            uses_sent: 0,
            uses_seen: 0,
            batch: Vec::new(),
            acked: BTreeSet::new(),
            epoch: 0,
        }
    }

    fn use_sent(&mut self) {
        self.state = Sub::Pending;
        self.pending.clear();
        self.uses_sent += 1;
    }

    fn detach(&mut self) {
        self.state = Sub::Released;
        self.pending.clear();
        self.batch.clear();
        self.acked.clear();
    }

    fn live(&self) -> bool {
        self.state == Sub::Synced && self.uses_seen >= self.uses_sent
    }
}

/// A notice as both protocols deliver it.
#[derive(Debug)]
enum Notice {
    Sync {
        version: u32,
        data: BTreeMap<String, Value>,
    },
    Change {
        version: u32,
        key: String,
        value: Value,
    },
    Ack {
        version: u32,
        key: String,
    },
    Remove {
        version: u32,
        key: String,
    },
    Clear {
        version: u32,
    },
    Message {
        version: u32,
    },
    Refused,
}

/// Batches every subscriber saw, per (room, object, epoch, version).
type Record = BTreeMap<(usize, usize, u64, u32), Vec<Did>>;

fn finish_batch(
    record: &mut Record,
    who: &str,
    key: (usize, usize, u64, u32),
    mut batch: Vec<Did>,
) {
    if batch.is_empty() {
        return;
    }
    batch.sort();
    match record.get(&key) {
        Some(seen) => assert_eq!(
            seen, &batch,
            "{who}: batch {key:?} differs from what another subscriber saw"
        ),
        None => {
            record.insert(key, batch);
        }
    }
}

impl Replica {
    /// Applies one notice; `at` names the replica in panics.
    fn on_notice(
        &mut self,
        n: Notice,
        at: &str,
        record: &mut Record,
        key: (usize, usize),
        epoch: u64,
    ) {
        if let Notice::Sync { version, data } = n {
            self.uses_seen += 1;
            if self.state == Sub::Released || self.uses_seen < self.uses_sent {
                return; // the answer to a use taken back since
            }
            self.state = Sub::Synced;
            self.version = version;
            self.data = data;
            self.batch.clear();
            self.acked.clear();
            self.epoch = epoch;
            return;
        }
        if !self.live() {
            return;
        }
        let (version, did) = match &n {
            Notice::Sync { .. } => return,
            Notice::Refused => {
                // The oldest write was refused (a limit): nothing changed.
                if !self.pending.is_empty() {
                    self.pending.remove(0);
                }
                return;
            }
            Notice::Message { version } => {
                assert_eq!(*version, self.version, "{at}: message at another version");
                return;
            }
            Notice::Change { version, key, .. } | Notice::Ack { version, key } => {
                (*version, Did::Set(key.clone()))
            }
            Notice::Remove { version, key } => (*version, Did::Delete(key.clone())),
            Notice::Clear { version } => (*version, Did::Clear),
        };
        if version == self.version.wrapping_add(1) {
            let done = std::mem::take(&mut self.batch);
            finish_batch(record, at, (key.0, key.1, self.epoch, self.version), done);
            self.acked.clear();
            self.version = version;
        } else if version != self.version || self.batch.is_empty() {
            panic!(
                "{at}: {did:?} at version {version} after {} ({})",
                self.version,
                if version > self.version {
                    "skipped"
                } else {
                    "repeated"
                }
            );
        }
        assert!(
            !self.batch.contains(&did),
            "{at}: {did:?} twice in the batch at version {version}"
        );
        self.batch.push(did);
        match n {
            Notice::Change { key, value, .. } => {
                self.data.insert(key, value);
            }
            Notice::Ack { version, key } => {
                let Some(batch) = self.pending.first() else {
                    panic!("{at}: ack of {key:?} at {version} with no write waiting");
                };
                let Some(value) = batch.get(&key) else {
                    panic!("{at}: ack of {key:?} at {version}, our write was {batch:?}");
                };
                self.data.insert(key.clone(), value.clone());
                self.acked.insert(key);
            }
            Notice::Remove { key, .. } => {
                self.data.remove(&key);
            }
            Notice::Clear { .. } => self.data.clear(),
            _ => {}
        }
    }

    /// An own batch is answered whole in one version step: it is done once
    /// every key it set was acknowledged at the current version.
    fn settle_own(&mut self) {
        if let Some(first) = self.pending.first()
            && first.keys().all(|k| self.acked.contains(k))
        {
            self.pending.remove(0);
            self.acked.clear();
        }
    }
}

// ----------------------------------------------------------------- players

#[derive(Debug, Default)]
struct Player {
    /// Play.Start seen: frames count from here.
    started: bool,
    /// Last video frame seen (its sequence number).
    last: Option<u32>,
}

/// Every video frame sent on a stream, by sequence number.
type Frames = BTreeMap<(usize, usize), Vec<MediaPriority>>;

// ----------------------------------------------------------------- clients

/// A WebSocket client: masks frames, parses the server's frames.
#[derive(Debug, Default)]
struct WsClient {
    /// The upgrade response is complete.
    upgraded: bool,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    mask: u32,
    closed: bool,
}

impl WsClient {
    fn frame(&mut self, opcode: u8, payload: &[u8]) {
        self.mask = self.mask.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let mask = self.mask.to_be_bytes();
        self.out.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => self.out.push(0x80 | n as u8),
            n if n < 65_536 => {
                self.out.push(0x80 | 126);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.out.push(0x80 | 127);
                self.out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&mask);
        self.out
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }

    fn text(&mut self, value: &Json) {
        self.frame(1, value.to_string().as_bytes());
    }

    /// Complete frames received: (opcode, payload). Panics on anything a
    /// server must not send (masked frames, fragments, reserved bits).
    fn frames(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let buf = &self.inbuf;
            if buf.len() < 2 {
                break;
            }
            assert_eq!(buf[0] & 0x70, 0, "server frame with reserved bits");
            assert_eq!(buf[0] & 0x80, 0x80, "server fragmented a message");
            assert_eq!(buf[1] & 0x80, 0, "server masked a frame");
            let (len, head) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
                127 if buf.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buf[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                126 | 127 => break,
                n => (usize::from(n), 2),
            };
            if buf.len() < head + len {
                break;
            }
            let opcode = buf[0] & 0x0f;
            let payload = buf[head..head + len].to_vec();
            self.inbuf.drain(..head + len);
            out.push((opcode, payload));
        }
        out
    }
}

#[derive(Debug)]
enum Side {
    Rtmp {
        client: Box<ClientConnection>,
        server: Box<ServerConnection>,
        /// Message stream created for publish/play.
        stream: Option<u32>,
        creating: bool,
        /// Stream name index published (after Publish.Start).
        publishing: Option<usize>,
        asked_publish: Option<usize>,
        /// Stream name index played.
        playing: Option<(usize, Player)>,
        timestamp: u32,
    },
    Ws {
        client: WsClient,
        server: Box<WsConnection>,
    },
}

#[derive(Debug)]
struct Client {
    id: ConnId,
    room: usize,
    side: Side,
    reading: bool,
    closed: bool,
    replicas: Vec<Replica>,
}

impl Client {
    fn name(&self) -> String {
        let kind = match self.side {
            Side::Rtmp { .. } => "rtmp",
            Side::Ws { .. } => "ws",
        };
        format!("{kind} client {:?} in {}", self.id, ROOMS[self.room])
    }
}

fn random_block(seed: u64) -> [u8; RANDOM_LEN] {
    let mut block = [0u8; RANDOM_LEN];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    block
}

fn scope(room: usize) -> ScopePath {
    ScopePath::resolve(ROOMS[room], 4).expect("valid room")
}

fn so_index(name: &str) -> Option<usize> {
    OBJECTS.iter().position(|(n, _)| *n == name)
}

fn key_name(k: u8) -> String {
    format!("k{}", k % KEYS)
}

/// Converts an RTMP shared-object message into notices.
fn rtmp_notices(m: &SharedObjectMessage) -> Vec<Notice> {
    let v = m.version;
    if m.events.iter().any(|e| matches!(e, SoEvent::UseSuccess)) {
        let mut data = BTreeMap::new();
        for e in &m.events {
            match e {
                SoEvent::Clear => data.clear(),
                SoEvent::Change { key, value } => {
                    data.insert(key.clone(), value.clone());
                }
                SoEvent::Remove { key } => {
                    data.remove(key);
                }
                _ => {}
            }
        }
        return vec![Notice::Sync { version: v, data }];
    }
    m.events
        .iter()
        .filter_map(|e| {
            Some(match e {
                SoEvent::Change { key, value } => Notice::Change {
                    version: v,
                    key: key.clone(),
                    value: value.clone(),
                },
                SoEvent::Success { key } => Notice::Ack {
                    version: v,
                    key: key.clone(),
                },
                SoEvent::Remove { key } => Notice::Remove {
                    version: v,
                    key: key.clone(),
                },
                SoEvent::Clear => Notice::Clear { version: v },
                SoEvent::SendMessage { .. } => Notice::Message { version: v },
                SoEvent::Status { .. } => Notice::Refused,
                _ => return None,
            })
        })
        .collect()
}

/// Converts one JSON message from the server into (object, notice).
fn ws_notice(text: &[u8]) -> Option<(String, Notice)> {
    let msg: Json = serde_json::from_slice(text).expect("server sent JSON");
    let op = msg["op"].as_str().expect("server message has an op");
    let so = msg["so"].as_str().map(str::to_owned);
    let version = msg["version"].as_u64().map(|v| v as u32);
    let key = || msg["key"].as_str().expect("key").to_owned();
    let notice = match op {
        "welcome" => return None,
        "error" => Notice::Refused,
        "sync" => Notice::Sync {
            version: version.expect("version"),
            data: msg["data"]
                .as_object()
                .expect("sync data")
                .iter()
                .map(|(k, v)| (k.clone(), json_to_amf(v)))
                .collect(),
        },
        "change" => Notice::Change {
            version: version.expect("version"),
            key: key(),
            value: json_to_amf(&msg["value"]),
        },
        "ack" => Notice::Ack {
            version: version.expect("version"),
            key: key(),
        },
        "delete" => Notice::Remove {
            version: version.expect("version"),
            key: key(),
        },
        "clear" => Notice::Clear {
            version: version.expect("version"),
        },
        "message" => Notice::Message {
            version: version.expect("version"),
        },
        other => panic!("unknown server op {other:?}: {msg}"),
    };
    Some((so?, notice))
}

/// A media payload: the FLV tag head `frame` asks for, three zero bytes
/// (AVC composition time), the frame's sequence number on its stream, the
/// stream's room and name, then `size` padding.
fn video_payload(
    frame: Frame,
    seq: u32,
    stream: (usize, usize),
    size: u8,
) -> Option<(MediaKind, Bytes, MediaPriority)> {
    let (kind, head, priority): (MediaKind, &[u8], MediaPriority) = match frame {
        Frame::VideoHeader => (MediaKind::Video, &[0x17, 0], MediaPriority::SequenceHeader),
        Frame::Key => (MediaKind::Video, &[0x17, 1], MediaPriority::Key),
        Frame::Inter => (MediaKind::Video, &[0x27, 1], MediaPriority::Inter),
        Frame::Disposable => (MediaKind::Video, &[0x37, 1], MediaPriority::DisposableInter),
        Frame::AudioHeader => (MediaKind::Audio, &[0xAF, 0], MediaPriority::SequenceHeader),
        Frame::Audio => (MediaKind::Audio, &[0xAF, 1], MediaPriority::Audio),
        Frame::Metadata => return None,
    };
    let mut body = head.to_vec();
    body.extend_from_slice(&[0, 0, 0]);
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(&[stream.0 as u8, stream.1 as u8]);
    body.resize(body.len() + usize::from(size) * MAX_PAYLOAD / 256, 0);
    Some((kind, Bytes::from(body), priority))
}

// ------------------------------------------------------------------- world

/// The hub, its clients and the checks' memory.
pub struct World {
    now: Instant,
    hub: Hub,
    config: HubConfig,
    server_config: ServerConfig,
    clients: Vec<Client>,
    record: Record,
    /// Epoch per (room, object): bumped whenever the object is gone.
    epochs: BTreeMap<(usize, usize), u64>,
    frames: Frames,
}

impl World {
    pub fn new(setup: Setup) -> World {
        let mut config = HubConfig {
            room_idle: Duration::from_secs(2),
            max_gop_bytes: if setup.gop_cache { 16 * 1024 } else { 0 },
            ..HubConfig::default()
        };
        if setup.tiny_outbox {
            config.outbox = OutboxLimits {
                max_media_bytes: 8 * 1024,
                max_lag_ms: 2_000,
                max_cutbacks: 2,
                max_pending_notices: 16,
            };
        }
        let server_config = ServerConfig {
            out_chunk_size: if setup.small_chunks { 128 } else { 4096 },
            ..ServerConfig::default()
        };
        World {
            now: Instant::from_millis(1_000),
            hub: Hub::new(config.clone()),
            config,
            server_config,
            clients: Vec::new(),
            record: Record::new(),
            epochs: BTreeMap::new(),
            frames: Frames::new(),
        }
    }

    /// Runs a whole script with every check.
    pub fn run(script: &Script) {
        let mut world = World::new(script.setup);
        let prelude = if script.setup.live_room {
            &LIVE_ROOM[..]
        } else {
            &[]
        };
        for op in prelude.iter().chain(script.ops.iter().take(256)) {
            world.apply(op);
            world.drive();
            world.check_bounds();
            world.note_epochs();
        }
        world.finish();
    }

    fn pick(&self, client: u8) -> Option<usize> {
        if self.clients.is_empty() {
            return None;
        }
        let i = usize::from(client) % self.clients.len();
        (!self.clients[i].closed).then_some(i)
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::ConnectRtmp { room } => self.connect(usize::from(room) % ROOMS.len(), false),
            Op::ConnectWs { room } => self.connect(usize::from(room) % ROOMS.len(), true),
            Op::Use { client, so } => {
                let Some(i) = self.pick(client) else { return };
                let so = usize::from(so) % OBJECTS.len();
                let (name, persistent) = OBJECTS[so];
                let c = &mut self.clients[i];
                match &mut c.side {
                    Side::Rtmp { client, .. } => {
                        if client.so_use(name, persistent).is_err() {
                            return;
                        }
                    }
                    Side::Ws { client, .. } => {
                        client.text(&json!({"op": "use", "so": name, "persistent": persistent}))
                    }
                }
                c.replicas[so].use_sent();
            }
            Op::Release { client, so } => {
                let Some(i) = self.pick(client) else { return };
                let so = usize::from(so) % OBJECTS.len();
                let (name, persistent) = OBJECTS[so];
                let c = &mut self.clients[i];
                match &mut c.side {
                    Side::Rtmp { client, .. } => {
                        if client.so_release(name, persistent).is_err() {
                            return;
                        }
                    }
                    Side::Ws { client, .. } => client.text(&json!({"op": "release", "so": name})),
                }
                c.replicas[so].detach();
            }
            Op::Write {
                client,
                so,
                ref changes,
            } => {
                let Some(i) = self.pick(client) else { return };
                let so = usize::from(so) % OBJECTS.len();
                let (name, persistent) = OBJECTS[so];
                let mut seen = BTreeSet::new();
                let changes: Vec<(String, Option<Value>)> = changes
                    .iter()
                    .take(8)
                    .filter(|(k, _)| seen.insert(k % KEYS))
                    .map(|(k, v)| (key_name(*k), v.map(Val::amf)))
                    .collect();
                if changes.is_empty() {
                    return;
                }
                let c = &mut self.clients[i];
                let sets = match &mut c.side {
                    Side::Rtmp { client, .. } => {
                        let events = changes
                            .iter()
                            .map(|(key, v)| match v {
                                Some(value) => SoEvent::RequestChange {
                                    key: key.clone(),
                                    value: value.clone(),
                                },
                                None => SoEvent::RequestRemove { key: key.clone() },
                            })
                            .collect();
                        if client.shared_object(name, persistent, events).is_err() {
                            return;
                        }
                        changes
                            .into_iter()
                            .filter_map(|(k, v)| Some((k, v?)))
                            .collect::<BTreeMap<_, _>>()
                    }
                    Side::Ws { client, .. } => {
                        let (key, value) = changes.into_iter().next().expect("non-empty");
                        match value {
                            Some(value) => {
                                client.text(&json!({"op": "set", "so": name, "key": key,
                                    "value": amf_to_json(&value)}));
                                BTreeMap::from([(key, value)])
                            }
                            None => {
                                client.text(&json!({"op": "delete", "so": name, "key": key}));
                                BTreeMap::new()
                            }
                        }
                    }
                };
                let replica = &mut c.replicas[so];
                if replica.state != Sub::Released && !sets.is_empty() {
                    replica.pending.push(sets);
                }
            }
            Op::Send { client, so, arg } => {
                let Some(i) = self.pick(client) else { return };
                let (name, persistent) = OBJECTS[usize::from(so) % OBJECTS.len()];
                match &mut self.clients[i].side {
                    Side::Rtmp { client, .. } => {
                        let _ = client.so_send(
                            name,
                            persistent,
                            "m",
                            vec![Value::Number(f64::from(arg))],
                        );
                    }
                    Side::Ws { client, .. } => client
                        .text(&json!({"op": "send", "so": name, "method": "m", "args": [arg]})),
                }
            }
            Op::ServerSet { room, so, key, val } => {
                let (name, persistent) = OBJECTS[usize::from(so) % OBJECTS.len()];
                let change = SoChange::Set {
                    key: key_name(key),
                    value: val.amf(),
                };
                let scope = scope(usize::from(room) % ROOMS.len());
                let _ = self
                    .hub
                    .so_apply(now, &scope, name, persistent, vec![change]);
            }
            Op::ServerDelete { room, so, key } => {
                let (name, persistent) = OBJECTS[usize::from(so) % OBJECTS.len()];
                let change = SoChange::Delete { key: key_name(key) };
                let scope = scope(usize::from(room) % ROOMS.len());
                let _ = self
                    .hub
                    .so_apply(now, &scope, name, persistent, vec![change]);
            }
            Op::ServerClear { room, so } => {
                let (name, persistent) = OBJECTS[usize::from(so) % OBJECTS.len()];
                let scope = scope(usize::from(room) % ROOMS.len());
                let _ = self.hub.so_clear(now, &scope, name, persistent);
            }
            Op::Publish { client, stream } => {
                let Some(i) = self.pick(client) else { return };
                let name = usize::from(stream) % STREAMS.len();
                if let Side::Rtmp {
                    client,
                    stream: Some(id),
                    publishing: None,
                    asked_publish,
                    playing: None,
                    ..
                } = &mut self.clients[i].side
                {
                    if client.publish(*id, STREAMS[name]).is_ok() {
                        *asked_publish = Some(name);
                    }
                } else {
                    self.create_stream(i);
                }
            }
            Op::Play { client, stream } => {
                let Some(i) = self.pick(client) else { return };
                let name = usize::from(stream) % STREAMS.len();
                if let Side::Rtmp {
                    client,
                    stream: Some(id),
                    publishing: None,
                    asked_publish: None,
                    playing,
                    ..
                } = &mut self.clients[i].side
                {
                    if client.play(*id, STREAMS[name], -1.0).is_ok() {
                        *playing = Some((name, Player::default()));
                    }
                } else {
                    self.create_stream(i);
                }
            }
            Op::CloseStream { client } => {
                let Some(i) = self.pick(client) else { return };
                if let Side::Rtmp {
                    client,
                    stream: Some(id),
                    publishing,
                    asked_publish,
                    playing,
                    ..
                } = &mut self.clients[i].side
                    && client.close_stream(*id).is_ok()
                {
                    *publishing = None;
                    *asked_publish = None;
                    *playing = None;
                }
            }
            Op::Media {
                client,
                frame,
                dt,
                size,
            } => {
                if let Some(i) = self.pick(client) {
                    self.send_frame(i, frame, dt, size);
                }
            }
            Op::Burst { client, frames, dt } => {
                // A group of pictures' worth at once, before anyone reads:
                // what fills a slow player's outbox.
                if let Some(i) = self.pick(client) {
                    for n in 0..frames % 64 {
                        let frame = match n % 12 {
                            0 => Frame::Key,
                            3 | 7 => Frame::Disposable,
                            5 | 10 => Frame::Audio,
                            _ => Frame::Inter,
                        };
                        self.send_frame(i, frame, dt, 128);
                    }
                }
            }
            Op::Stall { client } => {
                if let Some(i) = self.pick(client) {
                    self.clients[i].reading = false;
                }
            }
            Op::Resume { client } => {
                if let Some(i) = self.pick(client) {
                    self.clients[i].reading = true;
                }
            }
            Op::Trickle { client, n } => {
                if let Some(i) = self.pick(client) {
                    for _ in 0..n % 8 {
                        let Some(d) = self.hub.poll_delivery(self.clients[i].id) else {
                            break;
                        };
                        match &mut self.clients[i].side {
                            Side::Rtmp { server, .. } => server.handle_delivery(now, d),
                            Side::Ws { server, .. } => server.handle_delivery(now, d),
                        }
                    }
                    self.flush_to_client(i);
                }
            }
            Op::Disconnect { client } => {
                if let Some(i) = self.pick(client) {
                    self.close(i);
                }
            }
            Op::Advance { ms } => self.advance(Duration::from_millis(u64::from(ms) * 8)),
        }
    }

    /// Client `i`, if it publishes, sends one media message `dt` × 20 ms
    /// after its last (`size` × 8 bytes of padding).
    fn send_frame(&mut self, i: usize, frame: Frame, dt: u8, size: u8) {
        let room = self.clients[i].room;
        if let Side::Rtmp {
            client,
            stream: Some(id),
            publishing: Some(name),
            timestamp,
            ..
        } = &mut self.clients[i].side
        {
            *timestamp = timestamp.wrapping_add(u32::from(dt) * 20);
            let frames = self.frames.entry((room, *name)).or_default();
            let seq = frames.len() as u32;
            if let Some((kind, payload, priority)) = video_payload(frame, seq, (room, *name), size)
            {
                if kind == MediaKind::Video {
                    frames.push(priority);
                }
                let _ = client.send_media(*id, kind, *timestamp, payload);
            } else {
                let meta = metadata();
                let _ = client.send_media(*id, MediaKind::Data, *timestamp, meta);
            }
        }
    }

    fn create_stream(&mut self, i: usize) {
        if let Side::Rtmp {
            client,
            stream: None,
            creating,
            ..
        } = &mut self.clients[i].side
            && !*creating
            && client.create_stream().is_ok()
        {
            *creating = true;
        }
    }

    fn connect(&mut self, room: usize, ws: bool) {
        if self.clients.len() >= MAX_CLIENTS {
            return;
        }
        let id = ConnId(self.clients.len() as u64 + 1);
        let peer = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        let side = if ws {
            let mut client = WsClient {
                mask: id.0 as u32,
                ..WsClient::default()
            };
            client.out.extend_from_slice(
                format!(
                    "GET /{} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                    ROOMS[room]
                )
                .as_bytes(),
            );
            Side::Ws {
                client,
                server: Box::new(WsConnection::new(WsConfig::default(), self.now, peer)),
            }
        } else {
            let app = ROOMS[room];
            let config = ClientConfig::new(app, format!("rtmp://localhost/{app}"));
            Side::Rtmp {
                client: Box::new(ClientConnection::new(config, self.now, &random_block(id.0))),
                server: Box::new(ServerConnection::new(
                    self.server_config.clone(),
                    self.now,
                    &random_block(id.0 + 1000),
                    peer,
                )),
                stream: None,
                creating: false,
                publishing: None,
                asked_publish: None,
                playing: None,
                timestamp: 0,
            }
        };
        self.clients.push(Client {
            id,
            room,
            side,
            reading: true,
            closed: false,
            replicas: OBJECTS.iter().map(|_| Replica::new()).collect(),
        });
    }

    /// The client goes away (its socket closes).
    fn close(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if !c.closed {
            c.closed = true;
            for r in &mut c.replicas {
                r.detach();
            }
            let id = c.id;
            self.hub.handle(self.now, id, Request::Disconnect);
        }
    }

    /// Moves bytes, requests and deliveries until nothing moves.
    fn drive(&mut self) {
        for _ in 0..10_000 {
            let mut progress = false;
            for i in 0..self.clients.len() {
                progress |= self.step(i);
            }
            while self.hub.poll_event().is_some() {}
            if !progress {
                return;
            }
        }
        panic!("the world did not settle");
    }

    fn step(&mut self, i: usize) -> bool {
        if self.clients[i].closed {
            return false;
        }
        let now = self.now;
        let mut progress = false;
        let c = &mut self.clients[i];
        let id = c.id;
        // Client → server.
        match &mut c.side {
            Side::Rtmp { client, server, .. } => {
                while let Some(bytes) = client.poll_transmit() {
                    progress = true;
                    let closing = server.is_closing();
                    if let Err(e) = server.handle_input(now, &bytes) {
                        assert!(closing, "server refused the core client's bytes: {e}");
                        break;
                    }
                }
                while let Some(request) = server.poll_event() {
                    progress = true;
                    self.hub.handle(now, id, request);
                }
            }
            Side::Ws { client, server } => {
                if !client.out.is_empty() {
                    progress = true;
                    let bytes = std::mem::take(&mut client.out);
                    let closing = server.is_closing();
                    if let Err(e) = server.handle_input(now, &bytes) {
                        assert!(closing, "server refused the WebSocket client's bytes: {e}");
                    }
                }
                while let Some(request) = server.poll_event() {
                    progress = true;
                    self.hub.handle(now, id, request);
                }
            }
        }
        // Hub → server → client.
        if c.reading {
            loop {
                let pending = match &c.side {
                    Side::Rtmp { server, .. } => server.pending_bytes(),
                    Side::Ws { server, .. } => server.pending_bytes(),
                };
                if pending >= SOCKET_BUFFER {
                    break;
                }
                let Some(d) = self.hub.poll_delivery(id) else {
                    break;
                };
                progress = true;
                match &mut c.side {
                    Side::Rtmp { server, .. } => server.handle_delivery(now, d),
                    Side::Ws { server, .. } => server.handle_delivery(now, d),
                }
            }
            progress |= self.flush_to_client(i);
        }
        let c = &mut self.clients[i];
        let (closing, pending) = match &c.side {
            Side::Rtmp { server, .. } => (server.is_closing(), server.pending_bytes()),
            Side::Ws { server, client } => {
                (server.is_closing() || client.closed, server.pending_bytes())
            }
        };
        if closing && (pending == 0 || !c.reading) {
            self.close(i);
            progress = true;
        }
        progress
    }

    /// Server bytes into the client and the client's events into the
    /// checks.
    fn flush_to_client(&mut self, i: usize) -> bool {
        let now = self.now;
        let mut progress = false;
        let c = &mut self.clients[i];
        let at = c.name();
        let room = c.room;
        match &mut c.side {
            Side::Rtmp {
                client,
                server,
                stream,
                creating,
                publishing,
                asked_publish,
                playing,
                ..
            } => {
                while let Some(bytes) = server.poll_transmit() {
                    progress = true;
                    if let Err(e) = client.handle_input(now, &bytes) {
                        panic!("{at}: client rejects the server's bytes: {e}");
                    }
                }
                while let Some(event) = client.poll_event() {
                    progress = true;
                    match event {
                        ClientEvent::StreamCreated { stream_id, .. } => {
                            *stream = Some(stream_id);
                            *creating = false;
                        }
                        ClientEvent::Status { code, .. } => match code.as_str() {
                            "NetStream.Publish.Start" => *publishing = asked_publish.take(),
                            "NetStream.Publish.BadName" => *asked_publish = None,
                            // Every play answers Reset then Start, behind
                            // the media queued for the play it replaces: a
                            // Reset begins a new play (frames count afresh,
                            // from a keyframe), however many plays were
                            // asked while this client was not reading.
                            "NetStream.Play.Reset" => {
                                if let Some((_, p)) = playing {
                                    *p = Player {
                                        started: true,
                                        last: None,
                                    };
                                }
                            }
                            "NetStream.Play.Start" | "NetStream.Play.PublishNotify" => {
                                if let Some((_, p)) = playing
                                    && !p.started
                                {
                                    *p = Player {
                                        started: true,
                                        last: None,
                                    };
                                }
                            }
                            _ => {}
                        },
                        ClientEvent::SharedObject(m) => {
                            let Some(so) = so_index(&m.name) else {
                                panic!("{at}: message for an object nobody used: {m:?}");
                            };
                            let epoch = self.epochs.get(&(room, so)).copied().unwrap_or(0);
                            let replica = &mut c.replicas[so];
                            for n in rtmp_notices(&m) {
                                replica.on_notice(n, &at, &mut self.record, (room, so), epoch);
                            }
                            replica.settle_own();
                        }
                        ClientEvent::Media {
                            kind: MediaKind::Video,
                            payload,
                            ..
                        } => {
                            if let Some((name, p)) = playing
                                && p.started
                            {
                                check_video(&self.frames, &at, (room, *name), p, &payload);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Side::Ws { client, server } => {
                while let Some(bytes) = server.poll_transmit() {
                    progress = true;
                    if client.closed {
                        continue;
                    }
                    client.inbuf.extend_from_slice(&bytes);
                    if !client.upgraded {
                        let Some(end) = client.inbuf.windows(4).position(|w| w == b"\r\n\r\n")
                        else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&client.inbuf[..end]).into_owned();
                        assert!(
                            head.starts_with("HTTP/1.1 101"),
                            "{at}: upgrade refused: {head}"
                        );
                        client.inbuf.drain(..end + 4);
                        client.upgraded = true;
                    }
                }
                let frames = if client.upgraded {
                    client.frames()
                } else {
                    Vec::new()
                };
                for (opcode, payload) in frames {
                    progress = true;
                    match opcode {
                        1 => {
                            let Some((name, notice)) = ws_notice(&payload) else {
                                continue;
                            };
                            let Some(so) = so_index(&name) else {
                                panic!("{at}: message for an object nobody used: {name}");
                            };
                            let epoch = self.epochs.get(&(room, so)).copied().unwrap_or(0);
                            let replica = &mut c.replicas[so];
                            replica.on_notice(notice, &at, &mut self.record, (room, so), epoch);
                            replica.settle_own();
                        }
                        8 => client.closed = true,
                        9 => client.frame(10, &payload),
                        10 => {}
                        other => panic!("{at}: server sent opcode {other}"),
                    }
                }
            }
        }
        progress
    }

    /// Advances virtual time by `by`, firing every timer on the way.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            let mut next = self.hub.poll_timeout();
            for c in &self.clients {
                if c.closed {
                    continue;
                }
                let t = match &c.side {
                    Side::Rtmp { client, server, .. } => {
                        [server.poll_timeout(), client.poll_timeout()]
                            .into_iter()
                            .flatten()
                            .min()
                    }
                    Side::Ws { server, .. } => server.poll_timeout(),
                };
                if let Some(t) = t {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.hub.handle_timeout(now);
                    for c in &mut self.clients {
                        if c.closed {
                            continue;
                        }
                        match &mut c.side {
                            Side::Rtmp { client, server, .. } => {
                                server.handle_timeout(now);
                                client.handle_timeout(now);
                            }
                            Side::Ws { server, .. } => server.handle_timeout(now),
                        }
                    }
                    self.drive();
                    self.note_epochs();
                }
                _ => break,
            }
        }
        self.now = end;
        self.drive();
    }

    /// Objects that are gone start a new epoch (a recreated object counts
    /// versions from the start again).
    fn note_epochs(&mut self) {
        for room in 0..ROOMS.len() {
            let scope = scope(room);
            for (so, (name, _)) in OBJECTS.iter().enumerate() {
                if self.hub.shared_object_data(&scope, name).is_none() {
                    let e = self.epochs.entry((room, so)).or_insert(0);
                    let key_prefix = (room, so, *e);
                    let had = self
                        .record
                        .range(
                            (key_prefix.0, key_prefix.1, key_prefix.2, 0)
                                ..=(key_prefix.0, key_prefix.1, key_prefix.2, u32::MAX),
                        )
                        .next()
                        .is_some();
                    if had {
                        *e += 1;
                    }
                }
            }
        }
    }

    fn check_bounds(&self) {
        let limits = self.config.outbox;
        for c in &self.clients {
            if let Some(outbox) = self.hub.outbox(c.id) {
                assert!(
                    outbox.notices() <= limits.max_pending_notices + 1,
                    "{}: {} notices queued, bound {}",
                    c.name(),
                    outbox.notices(),
                    limits.max_pending_notices
                );
                assert!(
                    outbox.media_bytes() <= limits.max_media_bytes + 2 * MAX_PAYLOAD,
                    "{}: {} media bytes queued, bound {}",
                    c.name(),
                    outbox.media_bytes(),
                    limits.max_media_bytes
                );
            }
            if c.closed {
                continue;
            }
            let pending = match &c.side {
                Side::Rtmp { server, .. } => server.pending_bytes(),
                Side::Ws { server, .. } => server.pending_bytes(),
            };
            assert!(
                pending <= SOCKET_BUFFER + 64 * 1024,
                "{}: server connection holds {pending} bytes",
                c.name()
            );
        }
    }

    /// Drains everything, compares every live replica with the server,
    /// then lets everyone leave and checks the hub forgets it all.
    fn finish(&mut self) {
        for c in &mut self.clients {
            c.reading = true;
        }
        self.advance(Duration::from_millis(1));
        for c in &self.clients {
            if c.closed {
                continue;
            }
            for (so, r) in c.replicas.iter().enumerate() {
                if !r.live() || !r.pending.is_empty() {
                    continue;
                }
                let (name, _) = OBJECTS[so];
                let Some((version, data)) = self.hub.shared_object_data(&scope(c.room), name)
                else {
                    panic!("{}: uses {name}, which the hub does not have", c.name());
                };
                assert_eq!(r.version, version, "{}: version of {name}", c.name());
                assert_eq!(&r.data, data, "{}: data of {name}", c.name());
            }
        }
        for i in 0..self.clients.len() {
            self.close(i);
        }
        self.drive();
        let idle = self.config.room_idle;
        self.advance(idle + idle + Duration::from_secs(1));
        let rooms: Vec<String> = self
            .hub
            .scopes()
            .filter(|s| s.path.as_str().matches('/').count() > 1)
            .map(|s| s.path.as_str().to_owned())
            .collect();
        assert!(
            rooms.is_empty(),
            "rooms left after everyone left: {rooms:?}"
        );
        let objects: Vec<String> = self
            .hub
            .shared_objects()
            .map(|o| format!("{}/{}", o.scope.as_str(), o.name))
            .collect();
        assert!(objects.is_empty(), "objects left: {objects:?}");
        assert_eq!(self.hub.streams().count(), 0, "streams left");
        for c in &self.clients {
            assert!(self.hub.outbox(c.id).is_none(), "{}: outbox left", c.name());
        }
    }
}

fn metadata() -> Bytes {
    let mut out = Vec::new();
    tern_core::amf0::encode(&Value::string("onMetaData"), &mut out);
    tern_core::amf0::encode(&Value::Null, &mut out);
    Bytes::from(out)
}

/// The video rules for a player that received `payload`.
fn check_video(frames: &Frames, at: &str, stream: (usize, usize), p: &mut Player, payload: &[u8]) {
    let Some(seq) = payload.get(5..11) else {
        panic!("{at}: video payload too short: {payload:?}");
    };
    if (usize::from(seq[4]), usize::from(seq[5])) != stream {
        return; // left over from an earlier play of another stream
    }
    let seq = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
    let sent = frames.get(&stream).map(Vec::as_slice).unwrap_or_default();
    let Some(&priority) = sent.get(seq as usize) else {
        panic!("{at}: video frame {seq} was never sent on {stream:?}");
    };
    if priority == MediaPriority::SequenceHeader {
        return;
    }
    match p.last {
        None => assert_eq!(
            priority,
            MediaPriority::Key,
            "{at}: first video frame of the play is frame {seq}, not a keyframe"
        ),
        Some(last) => {
            assert!(seq > last, "{at}: video frame {seq} after frame {last}");
            let missed_needed = sent[last as usize + 1..seq as usize]
                .iter()
                .any(|m| matches!(m, MediaPriority::Key | MediaPriority::Inter));
            assert!(
                !missed_needed || priority == MediaPriority::Key,
                "{at}: frames {}..{seq} were dropped and frame {seq} is {priority:?}, not a keyframe",
                last + 1
            );
        }
    }
    p.last = Some(seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live-room prelude is what lets the fuzzer reach the media drop
    /// policy: with a tiny outbox, bursts from the publisher to the stalled
    /// player must make its outbox drop media, within every check.
    #[test]
    fn a_live_room_reaches_the_media_drop_policy() {
        let setup = Setup {
            gop_cache: true,
            tiny_outbox: true,
            small_chunks: false,
            live_room: true,
        };
        let mut world = World::new(setup);
        for op in &LIVE_ROOM {
            world.apply(op);
            world.drive();
            world.check_bounds();
            world.note_epochs();
        }
        let player = world.clients[1].id;
        for _ in 0..6 {
            world.apply(&Op::Burst {
                client: 0,
                frames: 63,
                dt: 1,
            });
            world.drive();
            world.check_bounds();
            world.note_epochs();
        }
        let dropped = world.hub.outbox(player).map_or(0, |o| o.dropped_total());
        assert!(dropped > 0, "the stalled player's outbox dropped nothing");
        world.finish();
    }
}
