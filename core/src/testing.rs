//! Test harness: N RTMP clients, their server connections and one hub,
//! driven against each other in virtual time with no runtime (the way
//! quinn-proto's `Pair` drives two endpoints). The two-peer case is the
//! client/server pair; more peers share the hub.

use crate::hub::{ConnId, Hub, HubConfig, HubEvent, Request};
use crate::rtmp::{ClientConfig, ClientConnection, ClientEvent, ServerConfig, ServerConnection};
use crate::time::{Duration, Instant};
use crate::trace::{Direction, Tracer};
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};

/// Bytes the harness lets a server connection hold before it stops pulling
/// deliveries for it (the runtime's back-pressure).
const SOCKET_BUFFER: usize = 256 * 1024;

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

/// The harness.
#[derive(Debug)]
pub struct Harness {
    pub now: Instant,
    pub hub: Hub,
    pub peers: Vec<Peer>,
    pub hub_events: Vec<HubEvent>,
    /// Connections the hub said were ready (`HubEvent::Ready`), in order.
    pub ready: Vec<ConnId>,
    pub server_config: ServerConfig,
    /// Record every byte moved, in order, for [`Harness::trace`].
    pub capture: bool,
    log: Vec<(usize, Direction, Vec<u8>)>,
}

/// Deterministic "random" bytes for handshakes.
fn random_block(seed: u64) -> [u8; crate::handshake::RANDOM_LEN] {
    let mut block = [0u8; crate::handshake::RANDOM_LEN];
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
        while let Some(request) = peer.server.poll_event() {
            progress = true;
            self.hub.handle(now, peer.id, request);
        }
        if peer.reading {
            while peer.server.pending_bytes() < SOCKET_BUFFER {
                let Some(delivery) = self.hub.poll_delivery(peer.id) else {
                    break;
                };
                progress = true;
                peer.server.handle_delivery(now, delivery);
            }
            while let Some(bytes) = peer.server.poll_transmit() {
                progress = true;
                if capture {
                    peer.s2c.extend_from_slice(&bytes);
                    self.log
                        .push((i, Direction::ServerToClient, bytes.to_vec()));
                }
                peer.client
                    .handle_input(now, &bytes)
                    .expect("client rejects server bytes");
            }
        }
        while let Some(event) = peer.client.poll_event() {
            progress = true;
            peer.events.push(event);
        }
        if peer.server.is_closing() && (peer.server.pending_bytes() == 0 || !peer.reading) {
            peer.closed = true;
            self.hub.handle(now, peer.id, Request::Disconnect);
            progress = true;
        }
        progress
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
            for peer in &self.peers {
                if !peer.closed
                    && let Some(t) = peer.server.poll_timeout()
                {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.hub.handle_timeout(now);
                    for peer in &mut self.peers {
                        if !peer.closed {
                            peer.server.handle_timeout(now);
                        }
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
    encoding: crate::session::SharedEncoding,
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
