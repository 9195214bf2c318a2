//! Relays: streams pushed to other servers and pulled from an origin
//! (docs/relay.md).
//!
//! A relay is one RTMP client connection (core's
//! [`ClientConnection`](tern_core::rtmp::ClientConnection)) driven by a task
//! of its own, plus, on the local side, a hub connection like the
//! recorder's (`record.rs`): a server-side subscriber that joins the
//! stream's scope with protocol [`PROTOCOL`] and plays it.
//!
//! - [`push`]: plays a local stream and publishes it to a target.
//! - [`pull`]: plays an origin's stream and publishes it here.
//! - [`url`]: target URLs.
//! - [`backoff`]: reconnect delays (1 s up to 30 s, jittered).
//! - [`connect`]: the tokio connector (TCP, and TLS with rustls).
//!
//! Everything a relay does to the server goes through [`Host`], and every
//! socket it opens through a [`Connector`], so the same driving loop runs
//! on tokio's sockets in the server and on turmoil's in the simulator.

pub mod backoff;
pub mod connect;
pub mod pull;
pub mod push;
pub mod service;
pub mod url;

use crate::direct_write::Peer;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::hub::{ConnId, Hub};
use tern_core::rtmp::RtmpError;
use tern_core::scope_path::ScopePath;
use tern_core::time::Instant;
use tokio::sync::watch;
use tracing::{info, warn};
pub use url::Target;

/// The name relays' hub connections are counted and hooked under.
pub const PROTOCOL: tern_core::hub::Protocol = tern_core::hub::Protocol::new("relay");

/// What a relay needs from the server it runs in.
pub trait Host: Send + Sync + 'static {
    /// The server's clock (monotonic milliseconds, tokio's time).
    fn now(&self) -> Instant;
    /// A new hub connection id and the peer its deliveries wake.
    fn register(&self) -> (ConnId, Arc<Peer>);
    /// Disconnects `id` from the hub and forgets it.
    fn unregister(&self, id: ConnId);
    /// Runs `f` on the hub (and routes the events it produced).
    fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R;
}

/// Opens relay connections.
pub trait Connector: Send + Sync + 'static {
    /// The byte streams it opens.
    type Stream: crate::net::Stream;
    /// Connects to `target` (and does the TLS handshake for `rtmps`).
    fn connect(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Self::Stream, RelayError>> + Send;
}

/// Timing and bounds of relays.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A write that makes no progress for this long is a stalled target
    /// (`server.write_timeout_secs`).
    pub write_stall: Duration,
    /// Connecting, the handshake and `connect`/`publish` must be done
    /// within this long.
    pub setup_timeout: Duration,
    /// Parser bounds of the client connection.
    pub limits: tern_core::Limits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            write_stall: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(10),
            limits: tern_core::Limits::default(),
        }
    }
}

/// Why a relay's connection ended.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RelayError {
    /// The TCP connection could not be made.
    Connect(String),
    /// The TLS handshake failed (a certificate that does not verify, …).
    Tls(String),
    /// No answer in time while setting up (`what` was not done).
    SetupTimeout(&'static str),
    /// A write made no progress for this long.
    Stalled(Duration),
    /// A pull's origin sent nothing for this long.
    Silent(Duration),
    /// The target closed the connection.
    Closed,
    /// Reading or writing the socket failed.
    Io(String),
    /// The target refused `connect`, `publish` or `play` (its status code
    /// and description).
    Refused {
        /// E.g. `NetConnection.Connect.Rejected`.
        code: String,
        /// The target's text.
        description: String,
    },
    /// The target broke the protocol.
    Protocol(RtmpError),
    /// The local hub closed the relay's subscription (it fell too far
    /// behind, as a slow player would): the relay starts over.
    Dropped(String),
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::Connect(e) => write!(f, "cannot connect: {e}"),
            RelayError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            RelayError::SetupTimeout(what) => write!(f, "no answer to {what} in time"),
            RelayError::Stalled(d) => {
                write!(f, "write stalled: no progress for {} s", d.as_secs())
            }
            RelayError::Silent(d) => write!(f, "the origin sent nothing for {} s", d.as_secs()),
            RelayError::Closed => f.write_str("the target closed the connection"),
            RelayError::Io(e) => write!(f, "socket error: {e}"),
            RelayError::Refused { code, description } => {
                write!(f, "refused: {code}")?;
                if !description.is_empty() {
                    write!(f, " ({description})")?;
                }
                Ok(())
            }
            RelayError::Protocol(e) => write!(f, "protocol error: {e}"),
            RelayError::Dropped(why) => write!(f, "dropped by the local server: {why}"),
        }
    }
}

impl std::error::Error for RelayError {}

/// Push or pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A local stream published to a target.
    Push,
    /// An origin's stream played here.
    Pull,
}

impl Kind {
    /// `push` or `pull`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Push => "push",
            Kind::Pull => "pull",
        }
    }
}

/// Where a relay comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The app's `push`/`pull` in the config.
    Config,
    /// The admin API.
    Api,
    /// The cluster's stream registry (a stream published on another node).
    Cluster,
}

/// A relay's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Connecting, handshaking, waiting for `publish`/`play` to be accepted.
    Connecting,
    /// Media flows.
    Live,
    /// Waiting to reconnect after a failure.
    Waiting,
    /// Done (the stream ended, or the relay was removed).
    Stopped,
}

impl State {
    /// Lowercase name (stats labels, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Live => "live",
            State::Waiting => "waiting",
            State::Stopped => "stopped",
        }
    }

    /// Every state, for metrics.
    pub const ALL: [State; 4] = [
        State::Connecting,
        State::Live,
        State::Waiting,
        State::Stopped,
    ];
}

#[derive(Debug)]
struct Status {
    state: State,
    last_error: Option<String>,
}

/// One relay: what it moves where, its counters, and its stop switch.
#[derive(Debug)]
pub struct Relay {
    /// Unique while the server runs.
    pub id: u64,
    /// Push or pull.
    pub kind: Kind,
    /// The local stream's scope.
    pub scope: ScopePath,
    /// The local stream's name.
    pub name: String,
    /// The far end.
    pub target: Target,
    /// Config or admin API.
    pub source: Source,
    status: Mutex<Status>,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    reconnects: AtomicU64,
    stop: watch::Sender<bool>,
    totals: Arc<Totals>,
}

/// Server-wide relay counters (they only grow, unlike the sum over the
/// relays running): for `/metrics`.
#[derive(Debug, Default)]
pub struct Totals {
    /// Bytes written to far ends, push and pull.
    pub bytes_out: [AtomicU64; 2],
    /// Bytes read from far ends.
    pub bytes_in: [AtomicU64; 2],
    /// Reconnects.
    pub reconnects: [AtomicU64; 2],
}

impl Totals {
    /// `(bytes_out, bytes_in, reconnects)` of `kind`.
    pub fn of(&self, kind: Kind) -> (u64, u64, u64) {
        let i = kind as usize;
        let get = |a: &[AtomicU64; 2]| a.get(i).map_or(0, |v| v.load(Ordering::Relaxed));
        (
            get(&self.bytes_out),
            get(&self.bytes_in),
            get(&self.reconnects),
        )
    }

    fn add(counters: &[AtomicU64; 2], kind: Kind, n: u64) {
        if let Some(c) = counters.get(kind as usize) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// A relay's numbers at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayInfo {
    /// Id.
    pub id: u64,
    /// Push or pull.
    pub kind: Kind,
    /// `scope/name` of the local stream.
    pub stream: String,
    /// The target (query left out: it may hold a key).
    pub url: String,
    /// Config or API.
    pub source: Source,
    /// State.
    pub state: State,
    /// Bytes written to the far end.
    pub bytes_out: u64,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Connections after the first.
    pub reconnects: u64,
    /// Why the last connection failed, if one did.
    pub last_error: Option<String>,
}

impl Relay {
    fn new(
        id: u64,
        kind: Kind,
        scope: ScopePath,
        name: String,
        target: Target,
        source: Source,
        totals: Arc<Totals>,
    ) -> Self {
        Relay {
            totals,
            id,
            kind,
            scope,
            name,
            target,
            source,
            status: Mutex::new(Status {
                state: State::Connecting,
                last_error: None,
            }),
            bytes_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            stop: watch::channel(false).0,
        }
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `scope/name`.
    pub fn stream(&self) -> String {
        format!("{}/{}", self.scope, self.name)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.status().state
    }

    /// Moves to `state`, with one log line if it changed (a warning with
    /// the reason when a failure caused it).
    pub fn set_state(&self, state: State, error: Option<&RelayError>) {
        let mut status = self.status();
        if let Some(e) = error {
            status.last_error = Some(e.to_string());
        }
        if status.state == state {
            return;
        }
        let from = status.state;
        status.state = state;
        drop(status);
        let (kind, stream, target) = (self.kind.as_str(), self.stream(), &self.target);
        match error {
            Some(e) => warn!(
                relay = self.id,
                "{kind} {stream} → {target}: {} → {}: {e}",
                from.as_str(),
                state.as_str()
            ),
            None => info!(
                relay = self.id,
                "{kind} {stream} → {target}: {} → {}",
                from.as_str(),
                state.as_str()
            ),
        }
    }

    /// Counts bytes written to the far end.
    pub fn wrote(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        Totals::add(&self.totals.bytes_out, self.kind, n as u64);
    }

    /// Counts bytes read from the far end.
    pub fn read(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        Totals::add(&self.totals.bytes_in, self.kind, n as u64);
    }

    /// Counts a reconnect.
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        Totals::add(&self.totals.reconnects, self.kind, 1);
    }

    /// Asks the relay's task to stop.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// The stop switch, for the relay's task.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Its numbers now.
    pub fn info(&self) -> RelayInfo {
        let status = self.status();
        RelayInfo {
            id: self.id,
            kind: self.kind,
            stream: self.stream(),
            url: self.target.to_string(),
            source: self.source,
            state: status.state,
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            last_error: status.last_error.clone(),
        }
    }
}

/// The relays of one server.
#[derive(Debug, Default)]
pub struct Relays {
    live: Mutex<Vec<Arc<Relay>>>,
    next_id: AtomicU64,
    totals: Arc<Totals>,
}

impl Relays {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Relay>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a relay unless one of the same kind already moves this stream
    /// to this target (`None` then).
    pub fn add(
        &self,
        kind: Kind,
        scope: &ScopePath,
        name: &str,
        target: Target,
        source: Source,
    ) -> Option<Arc<Relay>> {
        let mut live = self.lock();
        let exists = live
            .iter()
            .any(|r| r.kind == kind && &r.scope == scope && r.name == name && r.target == target);
        if exists {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let relay = Arc::new(Relay::new(
            id,
            kind,
            scope.clone(),
            name.to_owned(),
            target,
            source,
            Arc::clone(&self.totals),
        ));
        live.push(Arc::clone(&relay));
        Some(relay)
    }

    /// Forgets `relay` (its task calls this when it ends).
    pub fn remove(&self, relay: &Relay) {
        self.lock().retain(|r| r.id != relay.id);
    }

    /// Stops the relays of `kind` for this stream whose target matches
    /// (every target if `target` is `None`); how many.
    pub fn stop_matching(
        &self,
        kind: Kind,
        scope: &ScopePath,
        name: &str,
        target: Option<&Target>,
    ) -> usize {
        let live = self.lock();
        let mut n = 0;
        for r in live.iter() {
            if r.kind == kind
                && &r.scope == scope
                && r.name == name
                && target.is_none_or(|t| t == &r.target)
            {
                r.stop();
                n += 1;
            }
        }
        n
    }

    /// Stops every relay (shutdown).
    pub fn stop_all(&self) {
        for r in self.lock().iter() {
            r.stop();
        }
    }

    /// The relay of `kind` for this stream, if one runs.
    pub fn find(&self, kind: Kind, scope: &ScopePath, name: &str) -> Option<Arc<Relay>> {
        self.lock()
            .iter()
            .find(|r| r.kind == kind && &r.scope == scope && r.name == name)
            .cloned()
    }

    /// The running pulls the cluster started.
    pub fn cluster_pulls(&self) -> Vec<Arc<Relay>> {
        self.lock()
            .iter()
            .filter(|r| r.kind == Kind::Pull && r.source == Source::Cluster)
            .cloned()
            .collect()
    }

    /// The server-wide counters.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Every relay's numbers, oldest first.
    pub fn infos(&self) -> Vec<RelayInfo> {
        self.lock().iter().map(|r| r.info()).collect()
    }
}

/// Connects `id` to `relay`'s scope as a server-side connection of
/// protocol [`PROTOCOL`], then sends `request` (the pull's publish, the
/// push's play).
fn join<H: Host>(host: &H, relay: &Relay, id: ConnId, request: tern_core::hub::Request) {
    let now = host.now();
    host.with_hub(|hub| {
        hub.handle(
            now,
            id,
            tern_core::hub::Request::Connect(tern_core::hub::ConnectRequest::server_side(
                PROTOCOL,
                relay.scope.as_str(),
            )),
        );
        hub.handle(now, id, request);
    });
}

/// The part of a relay session's RTMP conversation that pull and push
/// share: `Connected` moves `phase` on to `createStream`; a refused
/// `connect`, an `error`-level status and a `_error` reply end the session
/// as [`RelayError::Refused`]. Every other event is handed back.
fn setup_event(
    event: tern_core::rtmp::ClientEvent,
    phase: &mut &'static str,
) -> Result<Option<tern_core::rtmp::ClientEvent>, RelayError> {
    use tern_core::rtmp::ClientEvent;
    match event {
        ClientEvent::Connected { .. } => {
            *phase = "createStream";
            Ok(None)
        }
        ClientEvent::ConnectFailed { code, description } => {
            Err(RelayError::Refused { code, description })
        }
        ClientEvent::Status {
            level,
            code,
            description,
            ..
        } if level == "error" => Err(RelayError::Refused { code, description }),
        ClientEvent::Error { info, .. } => {
            let text = |key: &str| {
                info.get(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            Err(RelayError::Refused {
                code: text("code"),
                description: text("description"),
            })
        }
        other => Ok(Some(other)),
    }
}

/// The outcome of one write of a relay session's pending bytes `out`:
/// counted on `relay`, taken off `out`, and `last_progress` moved; a
/// closed socket or an error ends the session.
fn wrote(
    written: std::io::Result<usize>,
    relay: &Relay,
    out: &mut bytes::Bytes,
    last_progress: &mut tokio::time::Instant,
) -> Result<(), RelayError> {
    use bytes::Buf;
    match written {
        Ok(0) => Err(RelayError::Closed),
        Ok(n) => {
            relay.wrote(n);
            out.advance(n);
            *last_progress = tokio::time::Instant::now();
            Ok(())
        }
        Err(e) => Err(RelayError::Io(e.to_string())),
    }
}
