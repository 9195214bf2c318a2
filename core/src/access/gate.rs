//! The per-connection gate between a connection and the hub.

use super::hook::{CallId, HookCall, HookKind, HookReply, percent_decode};
use super::token;
use super::{AccessPolicy, AppPolicy, TokenBucket};
use crate::amf0::Value;
use crate::hub::shared_object::{status, status_update};
use crate::hub::{
    ConnId, ConnectRequest, Delivery, Level, Protocol, RejectCode, Request, SoDelivery, SoOp,
};
use crate::scope_path::{ScopePath, query_param, split_query};
use crate::time::Instant;
use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::IpAddr;

/// Requests a connection may queue behind a pending callback; one more
/// closes it (a client waiting for an answer sends a handful).
pub const MAX_HELD: usize = 256;

/// Shared-object requests refused in a row for the rate limit, after which
/// the client is disconnected: it keeps sending without waiting.
pub const REFUSALS_BEFORE_DROP: u32 = 100;

/// The status a client over its shared-object budget gets (as a shared-
/// object status on RTMP, an `error` with this code on WebSocket).
pub const RATE_LIMITED: &str = "SharedObject.RateLimited";

/// What callbacks tell about the connection (kept only when its app has
/// callbacks).
#[derive(Debug)]
struct Session {
    app: String,
    flashver: String,
    swfurl: String,
    tcurl: String,
    pageurl: String,
    connect_query: String,
    protocol: Protocol,
    epoch: u64,
}

/// A publish or play the gate let through.
#[derive(Debug)]
struct Active {
    stream: u32,
    publishing: bool,
    name: String,
    query: String,
    started: Instant,
    next_update: Instant,
    update_call: Option<CallId>,
    timestamp: u32,
}

/// A request waiting for its callback's reply.
#[derive(Debug)]
struct Waiting {
    id: CallId,
    request: Request,
}

/// Something to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateEvent {
    /// A request was refused (the client was told).
    Refused(String),
    /// The gate closes the connection.
    Closing(String),
}

/// One connection's access checks and callbacks, sans-IO.
///
/// # Call order
///
/// 1. For each request the connection produced, in order:
///    [`Gate::handle`]`(now, wall, request)`. `Some(request)` goes to the
///    hub at once (the usual case, and always for media while nothing is
///    pending); `None` means the gate kept it: refused, or waiting for a
///    callback (then every later request waits behind it, in order).
/// 2. Drain [`Gate::poll_request`] into the hub (requests released by a
///    callback's reply), [`Gate::poll_reply`] into the connection
///    (`handle_delivery`: refusals, closes), [`Gate::poll_call`] into the
///    HTTP client, and [`Gate::poll_event`] into the log.
/// 3. When a call whose [`HookKind::wants_reply`] completes:
///    [`Gate::resolve`]`(now, wall, id, reply)`, then 2 again. Calls that
///    want no reply are fire and forget.
/// 4. At [`Gate::poll_timeout`]: [`Gate::handle_timeout`] (`on_update`),
///    then 2.
/// 5. When the connection ends, [`Gate::finish`], then drain
///    [`Gate::poll_call`] once more (the `*_done` callbacks).
///
/// `now` is the runtime's monotonic time; `wall` is Unix time in seconds,
/// used only for signed URLs' `expires`.
#[derive(Debug)]
pub struct Gate {
    policy: Arc<AccessPolicy>,
    conn: ConnId,
    address: Option<IpAddr>,
    connect_seen: bool,
    closed: bool,
    refused_in_row: u32,
    scope: Option<ScopePath>,
    so_bucket: TokenBucket,
    /// Made on first need (a callback, a refusal, a stream in an app with
    /// callbacks): most connections never need it, and a server holds
    /// thousands of them.
    x: Option<Box<Extra>>,
}

/// The parts of a [`Gate`] that most connections never use.
#[derive(Debug, Default)]
struct Extra {
    session: Option<Session>,
    active: Vec<Active>,
    waiting: Option<Waiting>,
    held: VecDeque<Request>,
    to_hub: VecDeque<Request>,
    replies: VecDeque<Delivery>,
    calls: VecDeque<HookCall>,
    events: VecDeque<GateEvent>,
    next_call: u64,
}

/// A callback's meaning for a decision.
enum Verdict {
    Allow,
    Rename(String),
    Reject(String),
}

fn verdict(kind: HookKind, reply: &HookReply) -> Verdict {
    match reply {
        HookReply::Status { code, .. } if (200..300).contains(code) => Verdict::Allow,
        HookReply::Status {
            code,
            location: Some(location),
        } if (300..400).contains(code) => {
            let name = location.trim().trim_start_matches('/');
            if name.is_empty() || name.contains("://") {
                Verdict::Reject(format!(
                    "{} replied HTTP {code} with Location {location:?}, which is not a stream name",
                    kind.config_key()
                ))
            } else {
                Verdict::Rename(name.to_owned())
            }
        }
        other => Verdict::Reject(format!("{} {other}", kind.config_key())),
    }
}

fn text_param(params: &Value, key: &str) -> String {
    params
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn push_query(fields: &mut Vec<(String, String)>, query: &str) {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        fields.push((percent_decode(k), percent_decode(v)));
    }
}

impl Gate {
    /// A gate for connection `conn` from `address`.
    pub fn new(
        policy: Arc<AccessPolicy>,
        conn: ConnId,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Self {
        let so_bucket = TokenBucket::full(policy.so_ops, now);
        Gate {
            policy,
            conn,
            address,
            connect_seen: false,
            closed: false,
            refused_in_row: 0,
            scope: None,
            so_bucket,
            x: None,
        }
    }

    /// Takes one request; see the type's call order.
    pub fn handle(&mut self, now: Instant, wall: u64, request: Request) -> Option<Request> {
        if self.closed {
            return None;
        }
        if self.is_waiting() {
            if self.x().held.len() >= MAX_HELD {
                self.close(format!(
                    "more than {MAX_HELD} requests while waiting for a callback"
                ));
            } else {
                self.x().held.push_back(request);
            }
            return None;
        }
        self.decide(now, wall, request)
    }

    /// A request released by a callback's reply, for the hub.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.x.as_mut()?.to_hub.pop_front()
    }

    /// A delivery for the connection itself (refusals and closes).
    pub fn poll_reply(&mut self) -> Option<Delivery> {
        self.x.as_mut()?.replies.pop_front()
    }

    /// An HTTP callback to make.
    pub fn poll_call(&mut self) -> Option<HookCall> {
        self.x.as_mut()?.calls.pop_front()
    }

    /// Something to log.
    pub fn poll_event(&mut self) -> Option<GateEvent> {
        self.x.as_mut()?.events.pop_front()
    }

    /// True while a request waits for a callback.
    pub fn is_waiting(&self) -> bool {
        self.x.as_ref().is_some_and(|x| x.waiting.is_some())
    }

    /// True once the gate has seen the connection's connect (later ones
    /// are passed to the hub, which refuses them).
    pub fn connect_seen(&self) -> bool {
        self.connect_seen
    }

    /// True once the gate closed the connection (or it finished).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Refuses the connect for a reason found outside the gate (the
    /// server-wide connect rate); like any refused connect, the connection
    /// is told and closed.
    pub fn refuse_connect(&mut self, reason: String) {
        self.connect_seen = true;
        self.reject_connect(reason);
    }

    /// The reply to call `id`.
    pub fn resolve(&mut self, now: Instant, wall: u64, id: CallId, reply: HookReply) {
        if let Some(active) = self
            .x
            .as_mut()
            .and_then(|x| x.active.iter_mut().find(|a| a.update_call == Some(id)))
        {
            active.update_call = None;
            let strict = self.app().is_some_and(|a| a.update_strict);
            let ok = match &reply {
                HookReply::Status { code, .. } => (200..300).contains(code),
                HookReply::Failed(_) => !strict,
            };
            if !ok && !self.closed {
                self.close(format!("on_update {reply}"));
            }
            return;
        }
        let Some(waiting) = self
            .x
            .as_mut()
            .and_then(|x| x.waiting.take_if(|w| w.id == id))
        else {
            return;
        };
        if self.closed {
            return;
        }
        match waiting.request {
            Request::Connect(connect) => match verdict(HookKind::Connect, &reply) {
                Verdict::Allow => self.x().to_hub.push_back(Request::Connect(connect)),
                Verdict::Rename(_) => self.reject_connect(format!(
                    "on_connect {reply}: a connect cannot be redirected"
                )),
                Verdict::Reject(why) => self.reject_connect(why),
            },
            request @ (Request::Publish { .. } | Request::Play { .. }) => {
                let kind = if matches!(request, Request::Publish { .. }) {
                    HookKind::Publish
                } else {
                    HookKind::Play
                };
                match verdict(kind, &reply) {
                    Verdict::Allow => self.admit_stream(now, request),
                    Verdict::Rename(new) => {
                        let renamed = rename(request, &new);
                        self.admit_stream(now, renamed);
                    }
                    Verdict::Reject(why) => {
                        let (stream, publishing) = stream_of(&request);
                        self.refuse_stream(stream, publishing, why);
                    }
                }
            }
            other => self.x().to_hub.push_back(other),
        }
        while !self.is_waiting() && !self.closed {
            let Some(request) = self.x().held.pop_front() else {
                break;
            };
            if let Some(request) = self.decide(now, wall, request) {
                self.x().to_hub.push_back(request);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should run (`on_update`).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let app = self.app()?;
        if app.hooks.on_update.is_none() || app.update_interval.as_millis() == 0 || self.closed {
            return None;
        }
        self.x
            .as_ref()?
            .active
            .iter()
            .filter(|a| a.update_call.is_none())
            .map(|a| a.next_update)
            .min()
    }

    /// Makes the `on_update` calls due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(app) = self.app() else {
            return;
        };
        let Some(url) = app.hooks.on_update.clone() else {
            return;
        };
        let interval = app.update_interval;
        if interval.as_millis() == 0 || self.closed {
            return;
        }
        let count = self.x.as_ref().map_or(0, |x| x.active.len());
        for i in 0..count {
            let Some(a) = self.x.as_ref().and_then(|x| x.active.get(i)) else {
                break;
            };
            if a.update_call.is_some() || a.next_update > now {
                continue;
            }
            let call = if a.publishing {
                "update_publish"
            } else {
                "update_play"
            };
            let mut fields = self.session_fields(call);
            let time = now.saturating_since(a.started).as_millis() / 1000;
            fields.push(("time".to_owned(), time.to_string()));
            fields.push(("timestamp".to_owned(), a.timestamp.to_string()));
            fields.push(("name".to_owned(), a.name.clone()));
            let query = a.query.clone();
            self.push_args(&mut fields, &query);
            let id = self.call(HookKind::Update, url.clone(), fields);
            if let Some(a) = self.x().active.get_mut(i) {
                a.update_call = Some(id);
                a.next_update = now + interval;
            }
        }
    }

    /// The connection ended: the `*_done` calls for what it still
    /// published or played. Nothing passes afterwards.
    pub fn finish(&mut self) {
        let streams: Vec<u32> = self
            .x
            .as_ref()
            .map(|x| x.active.iter().map(|a| a.stream).collect())
            .unwrap_or_default();
        for stream in streams {
            self.end_stream(stream);
        }
        self.closed = true;
        if let Some(x) = &mut self.x {
            x.waiting = None;
            x.held.clear();
        }
    }

    // ----- decisions -----

    fn x(&mut self) -> &mut Extra {
        self.x.get_or_insert_with(Box::default)
    }

    fn session(&self) -> Option<&Session> {
        self.x.as_ref()?.session.as_ref()
    }

    fn app(&self) -> Option<&AppPolicy> {
        self.policy.apps.get(self.scope.as_ref()?.app_name())
    }

    fn decide(&mut self, now: Instant, wall: u64, request: Request) -> Option<Request> {
        match request {
            Request::Media {
                stream, timestamp, ..
            } => {
                if let Some(a) = self
                    .x
                    .as_mut()
                    .and_then(|x| x.active.iter_mut().find(|a| a.stream == stream))
                {
                    a.timestamp = timestamp;
                }
                Some(request)
            }
            Request::Connect(connect) => self.connect(now, wall, connect),
            Request::Publish { .. } | Request::Play { .. } => {
                self.stream_request(now, wall, request)
            }
            Request::CloseStream { stream } => {
                self.end_stream(stream);
                Some(request)
            }
            Request::SharedObject {
                name,
                persistent,
                op,
            } => self.shared_object(now, name, persistent, op),
            Request::Disconnect => Some(request),
        }
    }

    fn connect(&mut self, now: Instant, wall: u64, connect: ConnectRequest) -> Option<Request> {
        if self.connect_seen {
            // A second connect: the hub refuses it.
            return Some(Request::Connect(connect));
        }
        self.connect_seen = true;
        let Ok(scope) = ScopePath::resolve(&connect.target, self.policy.max_depth) else {
            // The hub explains what is wrong with the name.
            return Some(Request::Connect(connect));
        };
        self.scope = Some(scope.clone());
        let policy = Arc::clone(&self.policy);
        let Some(app) = policy.apps.get(scope.app_name()) else {
            return Some(Request::Connect(connect));
        };
        if !app.allow_connect.allows(self.address) {
            self.reject_connect(format!(
                "{} may not connect to application {} (allow_connect)",
                self.who(),
                scope.app_name()
            ));
            return None;
        }
        if connect.protocol == crate::ws::PROTOCOL
            && let Some(secret) = &app.secret
        {
            let query = connect.query();
            if let Err(e) = token::verify(
                secret,
                scope.as_str(),
                query_param(query, "token"),
                query_param(query, "expires"),
                wall,
            ) {
                self.reject_connect(format!("{e} ({})", scope));
                return None;
            }
        }
        if app.hooks.any() {
            let (path, query) = split_query(&connect.target);
            self.x().session = Some(Session {
                app: path.trim_matches('/').to_owned(),
                flashver: text_param(&connect.params, "flashVer"),
                swfurl: text_param(&connect.params, "swfUrl"),
                tcurl: text_param(&connect.params, "tcUrl"),
                pageurl: text_param(&connect.params, "pageUrl"),
                connect_query: query.to_owned(),
                protocol: connect.protocol,
                epoch: now.as_millis(),
            });
        }
        if let Some(url) = app.hooks.on_connect.clone() {
            let mut fields = self.session_fields("connect");
            let epoch = self.session().map_or(0, |s| s.epoch);
            fields.push(("epoch".to_owned(), epoch.to_string()));
            let query = connect.query().to_owned();
            push_query(&mut fields, &query);
            let id = self.call(HookKind::Connect, url, fields);
            self.x().waiting = Some(Waiting {
                id,
                request: Request::Connect(connect),
            });
            return None;
        }
        Some(Request::Connect(connect))
    }

    fn stream_request(&mut self, now: Instant, wall: u64, request: Request) -> Option<Request> {
        let (stream, publishing) = stream_of(&request);
        let target = match &request {
            Request::Publish { name, .. } | Request::Play { name, .. } => name.clone(),
            _ => return Some(request),
        };
        let Some(scope) = self.scope.clone() else {
            return Some(request); // the hub refuses it: not connected
        };
        let policy = Arc::clone(&self.policy);
        let Some(app) = policy.apps.get(scope.app_name()) else {
            self.activate(now, stream, publishing, &target);
            return Some(request);
        };
        let (name, query) = split_query(&target);
        let (rules, what, key) = if publishing {
            (&app.allow_publish, "publish", "allow_publish")
        } else {
            (&app.allow_play, "play", "allow_play")
        };
        if !rules.allows(self.address) {
            let why = format!("{} may not {what} in {} ({key})", self.who(), scope);
            self.refuse_stream(stream, publishing, why);
            return None;
        }
        if let Some(secret) = &app.secret {
            // The stream name's query (an OBS stream key) first, else the
            // connect URL's.
            let source = if query_param(query, "token").is_some() {
                query
            } else {
                self.session().map_or("", |s| s.connect_query.as_str())
            };
            let path = format!("{}/{name}", scope.as_str().trim_start_matches('/'));
            if let Err(e) = token::verify(
                secret,
                &path,
                query_param(source, "token"),
                query_param(source, "expires"),
                wall,
            ) {
                self.refuse_stream(stream, publishing, format!("{e} ({path})"));
                return None;
            }
        }
        let kind = if publishing {
            HookKind::Publish
        } else {
            HookKind::Play
        };
        if let Some(url) = app.hooks.url(kind) {
            let mut fields = self.session_fields(what);
            fields.push(("name".to_owned(), name.to_owned()));
            if let Request::Play { start, .. } = &request {
                // As nginx-rtmp prints them: start as an unsigned 32-bit
                // number (-2000, "live or recorded", wraps), no duration,
                // no reset (tern reads neither).
                #[allow(clippy::cast_possible_truncation)]
                let start = (*start as i64) as u32;
                fields.push(("start".to_owned(), start.to_string()));
                fields.push(("duration".to_owned(), "0".to_owned()));
                fields.push(("reset".to_owned(), "0".to_owned()));
            } else {
                // tern publishes live only; record and append are served
                // as live.
                fields.push(("type".to_owned(), "live".to_owned()));
            }
            self.push_args(&mut fields, query);
            let id = self.call(kind, url.to_owned(), fields);
            self.x().waiting = Some(Waiting { id, request });
            return None;
        }
        self.activate(now, stream, publishing, &target);
        Some(request)
    }

    fn shared_object(
        &mut self,
        now: Instant,
        name: String,
        persistent: bool,
        op: SoOp,
    ) -> Option<Request> {
        let cost = match &op {
            SoOp::Release => 0,
            SoOp::Batch(changes) => u32::try_from(changes.len()).unwrap_or(u32::MAX).max(1),
            SoOp::Use | SoOp::Send { .. } => 1,
        };
        let limit = self.policy.so_ops;
        if cost > 0 && !self.so_bucket.take(limit, now, cost) {
            self.refused_in_row += 1;
            if self.refused_in_row >= REFUSALS_BEFORE_DROP {
                self.close(format!(
                    "shared-object rate limit: {} requests refused in a row (limit {}/s, burst {})",
                    self.refused_in_row, limit.per_sec, limit.burst
                ));
                return None;
            }
            if self.refused_in_row == 1 {
                self.x().events.push_back(GateEvent::Refused(format!(
                    "shared-object rate limit reached ({}/s, burst {}): refusing {name}",
                    limit.per_sec, limit.burst
                )));
            }
            self.x()
                .replies
                .push_back(so_status(&name, persistent, RATE_LIMITED));
            return None;
        }
        if cost > 0 {
            self.refused_in_row = 0;
        }
        let writes = matches!(op, SoOp::Batch(_) | SoOp::Send { .. });
        if writes && self.app().is_some_and(|a| !a.client_so_write) {
            self.x().events.push_back(GateEvent::Refused(format!(
                "write to shared object {name}: client_so_write is off in this application"
            )));
            self.x()
                .replies
                .push_back(so_status(&name, persistent, status::NO_WRITE_ACCESS));
            return None;
        }
        Some(Request::SharedObject {
            name,
            persistent,
            op,
        })
    }

    // ----- outcomes -----

    fn activate(&mut self, now: Instant, stream: u32, publishing: bool, target: &str) {
        // Only callbacks (done, update) need to know what goes on.
        if !self.app().is_some_and(|a| a.hooks.any()) {
            return;
        }
        if self
            .x
            .as_ref()
            .is_some_and(|x| x.active.iter().any(|a| a.stream == stream))
        {
            self.end_stream(stream);
        }
        let interval = self
            .app()
            .map_or(crate::time::Duration::ZERO, |a| a.update_interval);
        let (name, query) = split_query(target);
        self.x().active.push(Active {
            stream,
            publishing,
            name: name.to_owned(),
            query: query.to_owned(),
            started: now,
            next_update: now + interval,
            update_call: None,
            timestamp: 0,
        });
    }

    fn admit_stream(&mut self, now: Instant, request: Request) {
        let (stream, publishing) = stream_of(&request);
        if let Request::Publish { name, .. } | Request::Play { name, .. } = &request {
            let name = name.clone();
            self.activate(now, stream, publishing, &name);
        }
        self.x().to_hub.push_back(request);
    }

    fn end_stream(&mut self, stream: u32) {
        let Some(x) = &mut self.x else {
            return;
        };
        let Some(i) = x.active.iter().position(|a| a.stream == stream) else {
            return;
        };
        let a = x.active.remove(i);
        let Some(app) = self.app() else {
            return;
        };
        let specific = if a.publishing {
            HookKind::PublishDone
        } else {
            HookKind::PlayDone
        };
        let urls: Vec<(HookKind, String)> = [specific, HookKind::Done]
            .into_iter()
            .filter_map(|k| Some((k, app.hooks.url(k)?.to_owned())))
            .collect();
        for (kind, url) in urls {
            let call = match kind {
                HookKind::PublishDone => "publish_done",
                HookKind::PlayDone => "play_done",
                _ => "done",
            };
            let mut fields = self.session_fields(call);
            fields.push(("name".to_owned(), a.name.clone()));
            self.push_args(&mut fields, &a.query);
            self.call(kind, url, fields);
        }
    }

    fn reject_connect(&mut self, reason: String) {
        self.x().replies.push_back(Delivery::Rejected {
            code: RejectCode::Rejected,
            description: reason.clone(),
        });
        self.close(reason);
    }

    fn refuse_stream(&mut self, stream: u32, publishing: bool, reason: String) {
        let code = if publishing {
            "NetStream.Publish.BadName"
        } else {
            "NetStream.Play.Failed"
        };
        self.x().replies.push_back(Delivery::Status {
            stream,
            level: Level::Error,
            code,
            description: reason.clone(),
        });
        self.close(reason);
    }

    fn close(&mut self, reason: String) {
        self.x().replies.push_back(Delivery::Close {
            reason: reason.clone(),
        });
        self.x().events.push_back(GateEvent::Closing(reason));
        self.closed = true;
        let x = self.x();
        x.waiting = None;
        x.held.clear();
    }

    fn who(&self) -> String {
        match self.address {
            Some(a) => format!("address {a}"),
            None => "a client without an address".to_owned(),
        }
    }

    fn call(&mut self, kind: HookKind, url: String, fields: Vec<(String, String)>) -> CallId {
        let x = self.x();
        x.next_call += 1;
        let id = CallId(x.next_call);
        let app = self
            .scope
            .as_ref()
            .map(|s| s.app_name().to_owned())
            .unwrap_or_default();
        self.x().calls.push_back(HookCall {
            id,
            app,
            kind,
            url,
            fields,
        });
        id
    }

    /// nginx-rtmp's session fields, then tern's `protocol` and `scope`.
    fn session_fields(&self, call: &str) -> Vec<(String, String)> {
        let s = self.session();
        let text = |f: fn(&Session) -> &str| s.map_or(String::new(), |s| f(s).to_owned());
        let protocol = s.map_or(crate::rtmp::PROTOCOL, |s| s.protocol).name();
        alloc::vec![
            ("call".to_owned(), call.to_owned()),
            (
                "addr".to_owned(),
                self.address.map(|a| a.to_string()).unwrap_or_default()
            ),
            ("clientid".to_owned(), self.conn.0.to_string()),
            ("app".to_owned(), text(|s| &s.app)),
            ("flashver".to_owned(), text(|s| &s.flashver)),
            ("swfurl".to_owned(), text(|s| &s.swfurl)),
            ("tcurl".to_owned(), text(|s| &s.tcurl)),
            ("pageurl".to_owned(), text(|s| &s.pageurl)),
            ("protocol".to_owned(), protocol.to_owned()),
            (
                "scope".to_owned(),
                self.scope
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            ),
        ]
    }

    /// The stream name's query arguments, then the connect URL's.
    fn push_args(&self, fields: &mut Vec<(String, String)>, name_query: &str) {
        push_query(fields, name_query);
        if let Some(s) = self.session() {
            push_query(fields, &s.connect_query);
        }
    }
}

/// An error status about shared object `name`, rendered by the connection
/// itself (no shared encoding: it goes to this one client only). The gate
/// does not know the object's version; 0 stands for it.
fn so_status(name: &str, persistent: bool, code: &'static str) -> Delivery {
    Delivery::SharedObject(SoDelivery {
        update: status_update(name, persistent, 0, code),
        encoded: bytes::Bytes::new(),
    })
}

fn stream_of(request: &Request) -> (u32, bool) {
    match request {
        Request::Publish { stream, .. } => (*stream, true),
        Request::Play { stream, .. } => (*stream, false),
        _ => (0, false),
    }
}

/// The request with its stream name replaced (a 3xx callback reply); the
/// query stays.
fn rename(request: Request, new: &str) -> Request {
    let with_query = |old: &str| {
        let (_, query) = split_query(old);
        if query.is_empty() {
            new.to_owned()
        } else {
            format!("{new}?{query}")
        }
    };
    match request {
        Request::Publish { stream, name } => Request::Publish {
            stream,
            name: with_query(&name),
        },
        Request::Play {
            stream,
            name,
            start,
            encoder,
        } => Request::Play {
            stream,
            name: with_query(&name),
            start,
            encoder,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests;
