//! Test harness: clients of every protocol, their server connections and
//! one hub, driven against each other in virtual time with no runtime (the
//! way quinn-proto's `Pair` drives two endpoints).
//!
//! The harness plays the runtime's part for every server connection the
//! same way, through [`Connection`] ([`serve`]): requests to the hub,
//! deliveries only while the connection's output is under a socket buffer
//! and its client reads (back-pressure), bytes to the client, and a
//! `Disconnect` once it closes. [`Harness::advance`] fires the hub's, the
//! servers' and the clients' timers in time order.

use crate::connection::Connection;
use crate::hub::{ConnId, Hub, HubConfig, HubEvent, Request};
use crate::rtmp::{ClientConfig, ClientConnection, ClientEvent, ServerConfig, ServerConnection};
use crate::time::{Duration, Instant};
use crate::trace::{Direction, Tracer};
use crate::ws::frame::{FrameHeader, Opcode, encode_raw};
use crate::ws::{WsConfig, WsConnection};
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::{IpAddr, Ipv4Addr};

/// Bytes the harness lets a server connection hold before it stops pulling
/// deliveries for it (the runtime's back-pressure).
pub const SOCKET_BUFFER: usize = 256 * 1024;

/// The first WebSocket peer's connection id (RTMP peers count from 1).
pub const WS_IDS: u64 = 1_000;

/// One client, its server-side connection and what it has seen.
#[derive(Debug)]
pub struct Peer {
    pub id: ConnId,
    pub client: ClientConnection,
    pub server: ServerConnection,
    /// Client events not yet taken.
    pub events: Vec<ClientEvent>,
    /// False: the client's socket is full (it never reads); the harness
    /// pulls no deliveries for it.
    pub reading: bool,
    /// The socket is closed.
    pub closed: bool,
    /// Every byte the client sent / received, for traces.
    pub c2s: Vec<u8>,
    pub s2c: Vec<u8>,
}

/// A WebSocket test client and its server connection.
#[derive(Debug)]
pub struct WsPeer {
    pub id: ConnId,
    pub server: WsConnection,
    pub client: WsClient,
    /// False: the client's socket is full (it never reads).
    pub reading: bool,
    /// The socket is closed.
    pub closed: bool,
}

impl WsPeer {
    /// Sends one masked text frame (a JSON op, or a chat line).
    pub fn send_text(&mut self, text: &str) {
        self.client
            .outgoing
            .extend(client_frame(true, Opcode::Text, text.as_bytes()));
    }

    /// Takes the text frames received so far, parsed as JSON.
    pub fn take_json(&mut self) -> Vec<serde_json::Value> {
        core::mem::take(&mut self.client.received)
            .into_iter()
            .map(|(op, p)| {
                assert_eq!(op, 1, "a text frame");
                serde_json::from_slice(&p).unwrap()
            })
            .collect()
    }
}

/// The client side of a WebSocket: what it sends, and the frames it got.
#[derive(Debug, Default)]
pub struct WsClient {
    /// Bytes not yet handed to the server connection.
    pub outgoing: Vec<u8>,
    /// Bytes from the server not yet parsed.
    buf: Vec<u8>,
    head_seen: bool,
    /// Frames received: opcode and payload.
    pub received: Vec<(u8, Vec<u8>)>,
}

impl WsClient {
    /// Takes bytes from the server: the 101 answer, then frames.
    fn receive(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if !self.head_seen
            && let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n")
        {
            assert!(self.buf.starts_with(b"HTTP/1.1 101 "));
            self.buf.drain(..end + 4);
            self.head_seen = true;
        }
        if self.head_seen {
            self.received.extend(server_frames(&mut self.buf));
        }
    }
}

/// The mask test clients put on their frames.
pub const MASK: [u8; 4] = [0xa1, 0x02, 0xc3, 0x44];

/// An HTTP/1.1 WebSocket upgrade request for `path`, asking for
/// subprotocol `protocol` if given.
pub fn upgrade(path: &str, protocol: Option<&str>) -> Vec<u8> {
    let mut s = alloc::format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:8081\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = protocol {
        s.push_str(&alloc::format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    encode_raw(
        FrameHeader {
            fin,
            rsv: 0,
            opcode: opcode.as_u8(),
            mask: Some(MASK),
            len: 0,
        },
        payload,
    )
}

/// Parses unmasked server frames (whole ones only) off the front of `buf`.
pub fn server_frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 2 {
            return out;
        }
        assert_eq!(buf[1] & 0x80, 0, "server frames are never masked");
        assert_eq!(buf[0] & 0x70, 0, "no RSV bits");
        let (len, at) = match buf[1] & 0x7F {
            126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
            127 if buf.len() >= 10 => (
                u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return out,
            n => (n as usize, 2),
        };
        if buf.len() < at + len {
            return out;
        }
        out.push((buf[0] & 0x0F, buf[at..at + len].to_vec()));
        buf.drain(..at + len);
    }
}

/// Plays the runtime for one server connection of any protocol, once:
/// hands its requests to the hub, pulls deliveries while its output is
/// under [`SOCKET_BUFFER`] and the client reads, and hands its bytes to
/// `to_client` while the client reads. Returns true if anything moved.
pub fn serve<S: Connection>(
    hub: &mut Hub,
    now: Instant,
    id: ConnId,
    server: &mut S,
    reading: bool,
    mut to_client: impl FnMut(&Bytes),
) -> bool {
    let mut progress = false;
    while let Some(request) = server.poll_event() {
        progress = true;
        hub.handle(now, id, request);
    }
    if reading {
        while server.pending_bytes() < SOCKET_BUFFER {
            let Some(delivery) = hub.poll_delivery(id) else {
                break;
            };
            progress = true;
            server.handle_delivery(now, delivery);
        }
        while let Some(bytes) = server.poll_transmit() {
            progress = true;
            to_client(&bytes);
        }
    }
    progress
}

/// True once a closing server connection is flushed (or its client reads
/// nothing, so it never will be): the runtime closes the socket.
fn done<S: Connection>(server: &S, reading: bool) -> bool {
    server.is_closing() && (server.pending_bytes() == 0 || !reading)
}

/// The harness.
#[derive(Debug)]
pub struct Harness {
    pub now: Instant,
    pub hub: Hub,
    pub peers: Vec<Peer>,
    /// WebSocket peers (their ids start at [`WS_IDS`]).
    pub ws: Vec<WsPeer>,
    pub hub_events: Vec<HubEvent>,
    /// Connections the hub said were ready (`HubEvent::Ready`), in order.
    pub ready: Vec<ConnId>,
    pub server_config: ServerConfig,
    /// Record every byte moved, in order, for [`Harness::trace`].
    pub capture: bool,
    log: Vec<(usize, Direction, Vec<u8>)>,
}

/// Deterministic "random" bytes for handshakes.
fn random_block(seed: u64) -> [u8; crate::rtmp::handshake::RANDOM_LEN] {
    let mut block = [0u8; crate::rtmp::handshake::RANDOM_LEN];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    block
}

impl Harness {
    pub fn new(config: HubConfig) -> Self {
        Self::with_hub(Hub::new(config))
    }

    pub fn with_hub(hub: Hub) -> Self {
        Harness {
            now: Instant::from_millis(1_000),
            hub,
            peers: Vec::new(),
            ws: Vec::new(),
            hub_events: Vec::new(),
            ready: Vec::new(),
            server_config: ServerConfig::default(),
            capture: false,
            log: Vec::new(),
        }
    }

    /// Adds a client connecting to `rtmp://localhost/<app>` and drives the
    /// handshake and connect. Returns its index.
    pub fn connect(&mut self, app: &str) -> usize {
        let tc_url = alloc::format!("rtmp://localhost/{app}");
        self.connect_with(ClientConfig::new(app, tc_url))
    }

    pub fn connect_with(&mut self, config: ClientConfig) -> usize {
        let index = self.peers.len();
        let id = ConnId(index as u64 + 1);
        let client = ClientConnection::new(config, self.now, &random_block(id.0));
        let server = ServerConnection::new(
            self.server_config.clone(),
            self.now,
            &random_block(id.0 + 1000),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
        );
        self.peers.push(Peer {
            id,
            client,
            server,
            events: Vec::new(),
            reading: true,
            closed: false,
            c2s: Vec::new(),
            s2c: Vec::new(),
        });
        self.drive();
        index
    }

    /// Moves bytes, requests and deliveries until nothing moves.
    pub fn drive(&mut self) {
        for _round in 0..100_000 {
            let mut progress = false;
            for i in 0..self.peers.len() {
                progress |= self.step(i);
            }
            for i in 0..self.ws.len() {
                progress |= self.step_ws(i);
            }
            while let Some(event) = self.hub.poll_event() {
                match event {
                    HubEvent::Ready(conn) => self.ready.push(conn),
                    event => self.hub_events.push(event),
                }
            }
            if !progress {
                return;
            }
        }
        panic!("harness did not settle");
    }

    fn step(&mut self, i: usize) -> bool {
        let now = self.now;
        let capture = self.capture;
        let peer = &mut self.peers[i];
        if peer.closed {
            return false;
        }
        let mut progress = false;
        while let Some(bytes) = peer.client.poll_transmit() {
            progress = true;
            if capture {
                peer.c2s.extend_from_slice(&bytes);
                self.log
                    .push((i, Direction::ClientToServer, bytes.to_vec()));
            }
            if peer.server.handle_input(now, &bytes).is_err() {
                break;
            }
        }
        let (client, s2c, log) = (&mut peer.client, &mut peer.s2c, &mut self.log);
        progress |= serve(
            &mut self.hub,
            now,
            peer.id,
            &mut peer.server,
            peer.reading,
            |bytes| {
                if capture {
                    s2c.extend_from_slice(bytes);
                    log.push((i, Direction::ServerToClient, bytes.to_vec()));
                }
                client
                    .handle_input(now, bytes)
                    .expect("client rejects server bytes");
            },
        );
        while let Some(event) = peer.client.poll_event() {
            progress = true;
            peer.events.push(event);
        }
        if done(&peer.server, peer.reading) {
            peer.closed = true;
            self.hub.handle(now, peer.id, Request::Disconnect);
            progress = true;
        }
        progress
    }

    fn step_ws(&mut self, i: usize) -> bool {
        let now = self.now;
        let peer = &mut self.ws[i];
        if peer.closed {
            return false;
        }
        let mut progress = false;
        if !peer.client.outgoing.is_empty() {
            progress = true;
            let bytes = core::mem::take(&mut peer.client.outgoing);
            let _failed = peer.server.handle_input(now, &bytes);
        }
        let client = &mut peer.client;
        progress |= serve(
            &mut self.hub,
            now,
            peer.id,
            &mut peer.server,
            peer.reading,
            |b| client.receive(b),
        );
        if done(&peer.server, peer.reading) {
            peer.closed = true;
            self.hub.handle(now, peer.id, Request::Disconnect);
            progress = true;
        }
        progress
    }

    /// Adds a WebSocket client that sends the upgrade request for `path`
    /// (with subprotocol `protocol`, if given) and drives. Returns its
    /// index in [`ws`](Self::ws).
    pub fn connect_ws(&mut self, path: &str, protocol: Option<&str>) -> usize {
        self.connect_ws_with(WsConfig::default(), path, protocol)
    }

    pub fn connect_ws_with(
        &mut self,
        config: WsConfig,
        path: &str,
        protocol: Option<&str>,
    ) -> usize {
        let index = self.ws.len();
        let mut peer = WsPeer {
            id: ConnId(WS_IDS + index as u64),
            server: WsConnection::new(config, self.now, None),
            client: WsClient::default(),
            reading: true,
            closed: false,
        };
        peer.client.outgoing = upgrade(path, protocol);
        self.ws.push(peer);
        self.drive();
        index
    }

    /// Closes peer `i`'s socket (as a client that goes away).
    pub fn disconnect(&mut self, i: usize) {
        let now = self.now;
        let peer = &mut self.peers[i];
        if !peer.closed {
            peer.closed = true;
            self.hub.handle(now, peer.id, Request::Disconnect);
        }
        self.drive();
    }

    /// Advances virtual time by `by`, firing every timer on the way in
    /// order, and drives.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            let mut next = self.hub.poll_timeout();
            let open = self.peers.iter().filter(|p| !p.closed);
            let rtmp = open.flat_map(|p| [p.server.poll_timeout(), p.client.poll_timeout()]);
            let ws = self.ws.iter().filter(|p| !p.closed);
            for t in rtmp.chain(ws.map(|p| p.server.poll_timeout())).flatten() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.hub.handle_timeout(now);
                    for peer in self.peers.iter_mut().filter(|p| !p.closed) {
                        peer.server.handle_timeout(now);
                        peer.client.handle_timeout(now);
                    }
                    for peer in self.ws.iter_mut().filter(|p| !p.closed) {
                        peer.server.handle_timeout(now);
                    }
                    self.drive();
                }
                _ => break,
            }
        }
        self.now = end;
        self.drive();
    }

    /// Takes peer `i`'s events.
    pub fn take(&mut self, i: usize) -> Vec<ClientEvent> {
        core::mem::take(&mut self.peers[i].events)
    }

    /// Creates a stream on peer `i` and returns its id.
    pub fn create_stream(&mut self, i: usize) -> u32 {
        self.peers[i].client.create_stream().unwrap();
        self.drive();
        let events = self.take(i);
        events
            .iter()
            .find_map(|e| match e {
                ClientEvent::StreamCreated { stream_id, .. } => Some(*stream_id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no stream created: {events:?}"))
    }

    /// Every captured message so far, rendered by the trace renderer in the
    /// order the bytes moved, each line prefixed with its client (`c1`…).
    /// Handshake lines are left out when `with_handshake` is false.
    pub fn trace(&self, with_handshake: bool) -> Vec<String> {
        let limits = crate::Limits::default();
        let mut tracers: alloc::collections::BTreeMap<(usize, bool), Tracer> = Default::default();
        let mut lines = Vec::new();
        for (peer, direction, bytes) in &self.log {
            let key = (*peer, *direction == Direction::ClientToServer);
            let tracer = tracers
                .entry(key)
                .or_insert_with(|| Tracer::new(*direction, &limits));
            tracer.feed(bytes).expect("traced bytes decode");
            while let Some(line) = tracer.poll_line() {
                if with_handshake || !line.contains(" handshake ") {
                    lines.push(alloc::format!("c{} {line}", peer + 1));
                }
            }
        }
        lines
    }
}

/// The bytes `encoding` says a connection sends for `delivery`, in one
/// piece (panics if it says the connection encodes it itself).
pub fn shared_bytes(
    encoding: crate::connection::SharedEncoding,
    delivery: &crate::hub::Delivery,
) -> Vec<u8> {
    let pieces = encoding.bytes(delivery);
    let pieces = pieces.unwrap_or_else(|| panic!("no shared encoding for {delivery:?}"));
    pieces.iter().flat_map(|b| b.iter().copied()).collect()
}

/// A shared-object update of object "o": key "k" set to a string of `len`
/// bytes, as the hub delivers it to a subscriber with `encoder`.
pub fn so_change_delivery(len: usize, encoder: crate::hub::Encoder) -> crate::hub::Delivery {
    use crate::hub::{SoNotice, SoUpdate};
    so_delivery(
        SoUpdate::new(
            "o".into(),
            false,
            1,
            alloc::vec![SoNotice::Change {
                key: "k".into(),
                value: crate::amf0::Value::string("v".repeat(len)),
            }],
        ),
        Some(encoder),
    )
}

/// `update` as the hub delivers it to a subscriber with `encoder`.
pub fn so_delivery(
    update: crate::hub::SoUpdate,
    encoder: Option<crate::hub::Encoder>,
) -> crate::hub::Delivery {
    let encoded = encoder.map_or_else(bytes::Bytes::new, |e| e.encode_update(&update));
    crate::hub::Delivery::SharedObject(crate::hub::SoDelivery {
        update: alloc::sync::Arc::new(update),
        encoded,
    })
}
