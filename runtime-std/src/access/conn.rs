//! One connection's gate, driven by its task (the runtime side of
//! [`Gate`]'s call order).

use super::hooks::HookInbox;
use super::unix_now;
use crate::direct_write::Peer;
use crate::server::Shared;
use std::net::IpAddr;
use std::sync::Arc;
use tern_core::Instant;
use tern_core::access::{Gate, GateEvent};
use tern_core::connection::Connection;
use tern_core::hub::{ConnId, Delivery, Request};
use tracing::{info, warn};

/// A connection's gate, the inbox its callbacks answer into (made on the
/// first call), and how to wake its task.
#[derive(Debug)]
pub struct ConnAccess {
    gate: Gate,
    inbox: Option<Arc<HookInbox>>,
    peer: Arc<Peer>,
    id: ConnId,
    address: Option<IpAddr>,
}

impl ConnAccess {
    /// The gate of connection `id` from `address`.
    pub fn new(shared: &Shared, id: ConnId, address: Option<IpAddr>, peer: Arc<Peer>) -> Self {
        ConnAccess {
            gate: Gate::new(
                Arc::clone(shared.access_policy()),
                id,
                address,
                shared.now(),
            ),
            inbox: None,
            peer,
            id,
            address,
        }
    }

    /// The next request for the hub: released ones first, then the
    /// connection's own, each through the gate (and the server-wide
    /// connect rate).
    fn next_for_hub<C: Connection>(
        &mut self,
        shared: &Shared,
        conn: &mut C,
        now: Instant,
        wall: u64,
    ) -> Option<Request> {
        if let Some(request) = self.gate.poll_request() {
            return Some(request);
        }
        loop {
            let request = conn.poll_event()?;
            // Counted once per connection (a WebSocket's was counted
            // before its upgrade).
            if matches!(request, Request::Connect(_))
                && !self.gate.connect_seen()
                && let Some(address) = self.address
                && !shared.connect_allowed(now, address)
            {
                self.gate.refuse_connect(format!(
                    "too many connects from {address} (scopes.max_connects_per_address_per_sec)"
                ));
                continue;
            }
            if let Some(request) = self.gate.handle(now, wall, request) {
                return Some(request);
            }
        }
    }

    /// Moves everything the connection and the gate have to their places:
    /// requests to the hub, refusals to the connection (after what the hub
    /// queued for it before), calls to the HTTP client, events to the log.
    pub fn pump<C: Connection>(&mut self, shared: &Shared, conn: &mut C, now: Instant) {
        let wall = unix_now();
        if let Some(first) = self.next_for_hub(shared, conn, now, wall) {
            shared.with_hub(|hub| {
                hub.handle(now, self.id, first);
                while let Some(request) = self.next_for_hub(shared, conn, now, wall) {
                    hub.handle(now, self.id, request);
                }
            });
        }
        self.settle(shared, conn, now);
    }

    /// Hands the callbacks' replies that arrived to the gate; true if any.
    pub fn take_replies<C: Connection>(
        &mut self,
        shared: &Shared,
        conn: &mut C,
        now: Instant,
    ) -> bool {
        let Some(inbox) = &self.inbox else {
            return false;
        };
        let replies = inbox.take();
        if replies.is_empty() {
            return false;
        }
        let wall = unix_now();
        for (id, reply) in replies {
            self.gate.resolve(now, wall, id, reply);
        }
        self.pump(shared, conn, now);
        true
    }

    /// When the gate's timers (`on_update`) are due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.gate.poll_timeout()
    }

    /// Fires the gate's timers.
    pub fn handle_timeout<C: Connection>(&mut self, shared: &Shared, conn: &mut C, now: Instant) {
        if self.gate.poll_timeout().is_some_and(|t| t <= now) {
            self.gate.handle_timeout(now);
            self.settle(shared, conn, now);
        }
    }

    /// The connection ended: the `*_done` callbacks go out on their own.
    pub fn finish(&mut self, shared: &Shared) {
        self.gate.finish();
        let hooks = shared.hook_runner();
        while let Some(call) = self.gate.poll_call() {
            hooks.start(call, None);
        }
    }

    /// The gate's refusal of a WebSocket upgrade, if it refuses: decides
    /// the connect (waiting for `on_connect` on this task) before the
    /// upgrade is answered, so a refused client gets HTTP 403.
    pub async fn admit_upgrade(&mut self, shared: &Shared, connect: Request) -> Result<(), String> {
        let now = shared.now();
        let wall = unix_now();
        if let Request::Connect(_) = &connect
            && let Some(address) = self.address
            && !shared.connect_allowed(now, address)
        {
            self.gate.refuse_connect(format!(
                "too many connects from {address} (scopes.max_connects_per_address_per_sec)"
            ));
        } else if self.gate.handle(now, wall, connect).is_some() {
            return Ok(());
        }
        while self.gate.is_waiting() {
            let Some(call) = self.gate.poll_call() else {
                break;
            };
            let reply = shared.hook_runner().call_now(&call).await;
            self.gate.resolve(shared.now(), unix_now(), call.id, reply);
        }
        self.log_events();
        // The connection makes its own connect once upgraded; the gate
        // lets that one through.
        if let Some(Request::Connect(_)) = self.gate.poll_request() {
            return Ok(());
        }
        let mut reason = "connect refused".to_owned();
        while let Some(reply) = self.gate.poll_reply() {
            if let Delivery::Rejected { description, .. } = reply {
                reason = description;
            }
        }
        Err(reason)
    }

    fn settle<C: Connection>(&mut self, shared: &Shared, conn: &mut C, now: Instant) {
        if let Some(first) = self.gate.poll_reply() {
            // What the hub queued before the refusal goes first (a
            // connect's acceptance before a refused publish's status).
            shared.with_hub(|hub| {
                while let Some(delivery) = hub.poll_delivery(self.id) {
                    conn.handle_delivery(now, delivery);
                }
            });
            conn.handle_delivery(now, first);
            while let Some(reply) = self.gate.poll_reply() {
                conn.handle_delivery(now, reply);
            }
        }
        self.log_events();
        let hooks = shared.hook_runner();
        while let Some(call) = self.gate.poll_call() {
            let wants_reply = call.kind.wants_reply();
            let inbox = wants_reply.then(|| {
                let inbox = Arc::clone(self.inbox.get_or_insert_with(Arc::default));
                let peer = Arc::clone(&self.peer);
                let wake: Box<dyn FnOnce() + Send> = Box::new(move || peer.wakeup.wake());
                (inbox, wake)
            });
            hooks.start(call, inbox);
        }
    }

    fn log_events(&mut self) {
        while let Some(event) = self.gate.poll_event() {
            match event {
                GateEvent::Refused(why) => info!("refused: {why}"),
                GateEvent::Closing(why) => warn!("closing: {why}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection has one (boxed, so one allocation): what access
    /// control costs an idle connection.
    #[test]
    fn a_connection_s_access_state_is_small() {
        let size = std::mem::size_of::<ConnAccess>();
        assert!(size <= 160, "ConnAccess is {size} bytes");
        eprintln!("ConnAccess: {size} bytes");
    }
}
