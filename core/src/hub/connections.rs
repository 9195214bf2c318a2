//! Connect, disconnect, hub-initiated closes and session deadlines.

use super::outbox::Outbox;
use super::request::{ConnId, ConnectRequest, Delivery, RejectCode, SessionLimits};
use super::{Conn, Decision, Hub, HubEvent, Scope, Timer};
use crate::scope_path::{NameError, ScopePath};
use crate::time::{Duration, Instant};
use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

impl Hub {
    pub(super) fn connect(&mut self, now: Instant, conn: ConnId, request: ConnectRequest) {
        if let Some(existing) = self.conns.get(&conn)
            && (existing.scope.is_some() || existing.closing)
        {
            self.mail.events.push_back(HubEvent::Refused {
                conn,
                reason: "second connect on one connection".to_owned(),
            });
            return;
        }
        self.conns.insert(
            conn,
            Box::new(Conn {
                protocol: request.protocol,
                address: request.address,
                scope: None,
                session: SessionLimits {
                    idle_timeout: Duration::ZERO,
                    session_timeout: None,
                },
                connected_at: now,
                last_activity: now,
                objects: Vec::new(),
                publishing: Vec::new(),
                playing: Vec::new(),
                closing: false,
                timer: None,
            }),
        );
        self.mail
            .outboxes
            .entry(conn)
            .or_insert_with(|| Box::new(Outbox::new(self.config.outbox)))
            .set_notices_encoder(request.notices);
        match self.admit(conn, &request) {
            Ok(scope) => {
                let session = self.app.session_limits(&request);
                self.create_scope(now, &scope);
                if let Some(s) = self.scopes.get_mut(&scope) {
                    s.connections += 1;
                    s.idle_since = None;
                }
                if let Some(address) = request.address {
                    *self.per_address.entry(address).or_insert(0) += 1;
                }
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.scope = Some(scope.clone());
                    state.session = session;
                }
                self.arm_conn_timer(now, conn);
                self.mail
                    .deliver(conn, Delivery::Accepted { scope, session });
            }
            Err((code, reason)) => {
                self.counters.rejected_connects += 1;
                self.mail.events.push_back(HubEvent::Rejected {
                    conn,
                    reason: reason.clone(),
                });
                self.mail.deliver(
                    conn,
                    Delivery::Rejected {
                        code,
                        description: reason.clone(),
                    },
                );
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.closing = true;
                }
                self.mail.deliver_close(conn, &reason);
            }
        }
    }

    /// Decides a connect; creates nothing.
    pub(super) fn admit(
        &mut self,
        conn: ConnId,
        request: &ConnectRequest,
    ) -> Result<ScopePath, (RejectCode, String)> {
        let scope = ScopePath::resolve(&request.target, self.config.max_depth).map_err(|e| {
            let code = if matches!(e, NameError::Empty) {
                RejectCode::InvalidApp
            } else {
                RejectCode::Rejected
            };
            (code, format!("bad scope {:?}: {e}", request.target))
        })?;
        let app_path = ScopePath::app(scope.app_name())
            .map_err(|e| (RejectCode::InvalidApp, format!("bad application: {e}")))?;
        if !self.scopes.contains_key(&app_path) {
            return Err((
                RejectCode::InvalidApp,
                format!("application {:?} is not configured", scope.app_name()),
            ));
        }
        if let Some(address) = request.address {
            let count = self.per_address.get(&address).copied().unwrap_or(0);
            if count >= self.config.max_connections_per_address {
                return Err((
                    RejectCode::Rejected,
                    format!(
                        "too many connections from {address} (at most {})",
                        self.config.max_connections_per_address
                    ),
                ));
            }
        }
        // In a cluster the cap counts every node's connections, as the
        // other nodes' last presence (at most about a second old) said:
        // joins on two nodes within that second can both pass.
        let here = self.scopes.get(&scope).map_or(0, |s| s.connections);
        let elsewhere = self.remote_connections(&scope);
        if here.saturating_add(elsewhere) >= self.config.max_connections_per_scope {
            let across = if elsewhere > 0 {
                format!(" across the cluster; {elsewhere} on other nodes")
            } else {
                String::new()
            };
            return Err((
                RejectCode::Rejected,
                format!(
                    "scope {scope} is full (at most {} connections{across})",
                    self.config.max_connections_per_scope
                ),
            ));
        }
        match self.scopes.get(&scope) {
            Some(_) => {}
            None => {
                let new_rooms = self.missing_ancestors(&scope);
                let rooms = self.room_count(&app_path);
                if rooms + new_rooms > self.config.max_rooms_per_app {
                    return Err((
                        RejectCode::Rejected,
                        format!(
                            "application {} has too many rooms (at most {})",
                            app_path, self.config.max_rooms_per_app
                        ),
                    ));
                }
            }
        }
        match self.app.on_connect(conn, &scope, request) {
            Decision::Accept => Ok(scope),
            Decision::Reject(reason) => Err((RejectCode::Rejected, reason)),
        }
    }

    /// Scopes that creating `scope` would add (itself and missing parents).
    pub(super) fn missing_ancestors(&self, scope: &ScopePath) -> usize {
        let mut count = 0;
        let mut cursor = Some(scope.clone());
        while let Some(path) = cursor {
            if self.scopes.contains_key(&path) {
                break;
            }
            count += 1;
            cursor = path.parent();
        }
        count
    }

    pub(super) fn room_count(&self, app: &ScopePath) -> usize {
        self.scopes
            .range(app.clone()..)
            .skip(1)
            .take_while(|(p, _)| p.is_within(app) || p.app_name() == app.app_name())
            .filter(|(p, _)| p.is_within(app))
            .count()
    }

    /// Creates `scope` and its missing parents; new ones start idle.
    pub(super) fn create_scope(&mut self, now: Instant, scope: &ScopePath) {
        let mut cursor = Some(scope.clone());
        while let Some(path) = cursor {
            if self.scopes.contains_key(&path) {
                break;
            }
            cursor = path.parent();
            self.scopes.insert(path.clone(), Scope::default());
            self.refresh_scope(now, &path);
        }
    }

    pub(super) fn disconnect(&mut self, now: Instant, conn: ConnId) {
        self.detach(now, conn);
        self.forget_pending(conn);
        if let Some(state) = self.conns.remove(&conn)
            && let Some(at) = state.timer
        {
            self.timers.remove(&(at, Timer::Conn(conn)));
        }
        if let Some(outbox) = self.mail.outboxes.remove(&conn) {
            self.counters.media_dropped_closed += outbox.dropped_total();
        }
    }

    /// Takes `conn` out of its scope, streams and objects (others are told).
    pub(super) fn detach(&mut self, now: Instant, conn: ConnId) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(scope) = state.scope.take() else {
            return;
        };
        let objects = core::mem::take(&mut state.objects);
        let publishing = core::mem::take(&mut state.publishing);
        let playing = core::mem::take(&mut state.playing);
        if let Some(address) = state.address
            && let Some(count) = self.per_address.get_mut(&address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&address);
            }
        }
        for name in objects {
            self.release_object(now, &scope, &name, conn);
        }
        for (stream, (_, name)) in publishing {
            self.unpublish(now, conn, &scope, stream, &name);
        }
        for (_, name) in playing {
            self.stop_playing(now, conn, &scope, &name);
        }
        if let Some(s) = self.scopes.get_mut(&scope) {
            s.connections = s.connections.saturating_sub(1);
        }
        self.app.on_disconnect(conn, &scope);
        self.refresh_scope(now, &scope);
    }

    /// The hub closes `conn`: others are told now, the client last.
    pub(super) fn close_conn(&mut self, now: Instant, conn: ConnId, reason: String) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if state.closing {
            return;
        }
        state.closing = true;
        self.detach(now, conn);
        self.mail.deliver_close(conn, &reason);
        self.mail
            .events
            .push_back(HubEvent::Closing { conn, reason });
    }

    pub(super) fn settle_overflows(&mut self, now: Instant) {
        while let Some((conn, reason)) = self.mail.overflowed.pop() {
            self.counters.overflow_disconnects += 1;
            self.close_conn(now, conn, format!("subscriber too slow: {reason}"));
        }
    }

    pub(super) fn arm_conn_timer(&mut self, now: Instant, conn: ConnId) {
        if let Some(state) = self.conns.get_mut(&conn) {
            let deadline = conn_deadline(state, now);
            if let Some(old) = state.timer.replace(deadline) {
                self.timers.remove(&(old, Timer::Conn(conn)));
            }
            self.timers.insert((deadline, Timer::Conn(conn)));
        }
    }

    pub(super) fn check_conn_deadline(&mut self, now: Instant, conn: ConnId) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        // The timer that called this has been taken out of the set.
        state.timer = None;
        if state.closing || state.scope.is_none() {
            return;
        }
        let deadline = conn_deadline(state, now);
        if deadline > now {
            state.timer = Some(deadline);
            self.timers.insert((deadline, Timer::Conn(conn)));
            return;
        }
        let reason = match state.session.session_timeout {
            Some(limit) if state.connected_at + limit <= now => {
                format!(
                    "session time limit of {}s reached",
                    limit.as_millis() / 1000
                )
            }
            _ => format!(
                "idle for {}s (limit for this client)",
                state.session.idle_timeout.as_millis() / 1000
            ),
        };
        self.counters.timeout_disconnects += 1;
        self.close_conn(now, conn, reason);
    }
}

/// A connection's next deadline: idle (unless it publishes or plays, which
/// counts as activity) or session length, whichever is first.
pub(super) fn conn_deadline(conn: &Conn, now: Instant) -> Instant {
    let active = !conn.publishing.is_empty() || !conn.playing.is_empty();
    let idle = if active {
        now + conn.session.idle_timeout
    } else {
        conn.last_activity + conn.session.idle_timeout
    };
    match conn.session.session_timeout {
        Some(limit) => idle.min(conn.connected_at + limit),
        None => idle,
    }
}

#[cfg(test)]
mod tests {
    use crate::amf0::Value;
    use crate::hub::{ConnId, ConnectRequest, Hub, HubConfig, Protocol, Request};
    use crate::time::{Duration, Instant};
    use alloc::vec::Vec;

    fn connect(target: &str) -> Request {
        Request::Connect(ConnectRequest {
            protocol: Protocol::new("test"),
            target: target.into(),
            params: Value::Null,
            args: Vec::new(),
            address: None,
            notices: None,
        })
    }

    /// A connection's idle timer leaves with it: after a thousand
    /// connections came and went (each with a 15-minute idle deadline),
    /// the timer set holds only what the open ones and the room need.
    /// It used to keep every closed connection's entry until its deadline,
    /// so a server with churn held one per connection of the last 15 min.
    #[test]
    fn a_closed_connection_leaves_no_timer_behind() {
        let mut hub = Hub::new(HubConfig::default());
        let mut now = Instant::from_millis(1_000);
        let stay = ConnId(0);
        hub.handle(now, stay, connect("chat/a"));
        let baseline = hub.timers.len();
        for i in 1..=1000 {
            now = now + Duration::from_millis(10);
            hub.handle(now, ConnId(i), connect("chat/a"));
            hub.handle(now, ConnId(i), Request::Disconnect);
        }
        assert_eq!(hub.timers.len(), baseline);
        // The one that stayed is still watched: it is closed for idling.
        hub.handle_timeout(now + Duration::from_secs(3 * 3600));
        assert!(hub.conns.get(&stay).is_none_or(|c| c.closing));
    }
}
