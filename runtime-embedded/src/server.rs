//! The server: one hub shared by a fixed number of connection slots.
//!
//! # Sharing
//!
//! The [`Hub`] sits in an `embassy_sync` blocking mutex around a `RefCell`:
//! a connection task locks it to hand over the requests a read produced and
//! to take the deliveries waiting for it, and never holds it across an
//! `.await` (there is no way to: the lock is a closure). Each slot has a
//! [`Signal`] that the hub's [`HubEvent::Ready`] raises, so a task sleeping
//! in its `select` learns that deliveries wait for it. One more signal tells
//! the hub-timer task that the hub's next deadline moved earlier.
//!
//! # Connection ids
//!
//! Slot `s` of `N` serves connections `ConnId(k * N + s)` for `k = 1, 2, …`:
//! ids are unique for the server's life, and the slot of an id is `id % N`,
//! so routing a wake-up needs no table.

use crate::clock::{now, sleep_until};
use crate::config::Config;
use core::cell::RefCell;
use embassy_futures::select::select;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, RawMutex};
use embassy_sync::signal::Signal;
use tern_core::Instant;
use tern_core::hub::{ConnId, Hub, HubEvent, Request};
use tern_core::rtmp::handshake::RANDOM_LEN;

/// What the server counted since it started (no logging in `no_std`:
/// firmware reads these to see why connections ended).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections that ended: the client closed or reset the socket.
    pub closed_by_client: u64,
    /// Connections the server closed (the hub's close, e.g. a lagging
    /// subscriber, an idle timeout, or shutdown).
    pub closed_by_server: u64,
    /// Connections closed for malformed or over-limit RTMP or WebSocket
    /// input (a refused HTTP upgrade included).
    pub protocol_errors: u64,
    /// Connections closed for a handshake timeout, unanswered pings
    /// (RTMP) or silence (WebSocket).
    pub timeouts: u64,
    /// Connections dropped because a write made no progress in time.
    pub write_stalls: u64,
    /// Connects the hub refused.
    pub rejected_connects: u64,
    /// Requests the hub refused or ignored.
    pub refused_requests: u64,
    /// Persistent shared objects the store failed to load or save.
    pub store_failures: u64,
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    ByClient,
    ByServer,
    Protocol,
    Timeout,
    WriteStalled,
}

/// The state behind the lock.
struct State<const N: usize> {
    hub: Hub,
    /// The connection each slot serves now.
    slots: [Option<ConnId>; N],
    /// Slots a task runs (RTMP or WebSocket): one task per slot.
    claimed: [bool; N],
    /// The `k` of the next connection id (see the module docs).
    next: u64,
    counters: Counters,
}

impl<const N: usize> State<N> {
    /// Routes the hub's events: wake-ups to slots, the rest to counters.
    fn dispatch<M: RawMutex>(&mut self, wake: &[Signal<M, ()>; N]) {
        while let Some(event) = self.hub.poll_event() {
            match event {
                HubEvent::Ready(conn) | HubEvent::Closing { conn, .. } => {
                    let slot = slot_of::<N>(conn);
                    if self.slots.get(slot).copied().flatten() == Some(conn)
                        && let Some(signal) = wake.get(slot)
                    {
                        signal.signal(());
                    }
                }
                HubEvent::Rejected { .. } => self.counters.rejected_connects += 1,
                HubEvent::Refused { .. } => self.counters.refused_requests += 1,
                HubEvent::StoreFailed { .. } => self.counters.store_failures += 1,
                HubEvent::Cluster { .. } => {}
                HubEvent::Published { .. }
                | HubEvent::PlayWaiting { .. }
                | HubEvent::PublishClaim { .. }
                | HubEvent::Unpublished { .. } => {}
            }
        }
    }
}

/// A slot's claim by the task running it; released when the task's
/// future is dropped.
pub(crate) struct SlotClaim<'a, const N: usize, M: RawMutex> {
    server: &'a Server<N, M>,
    slot: usize,
}

impl<const N: usize, M: RawMutex> Drop for SlotClaim<'_, N, M> {
    fn drop(&mut self) {
        self.server.state.lock(|cell| {
            if let Some(claimed) = cell.borrow_mut().claimed.get_mut(self.slot) {
                *claimed = false;
            }
        });
    }
}

fn slot_of<const N: usize>(conn: ConnId) -> usize {
    // N > 0 is checked when the server is built.
    usize::try_from(conn.0 % (N.max(1) as u64)).unwrap_or(usize::MAX)
}

/// tern's embedded server: one hub and `N` connection slots.
///
/// `N` is the most connections served at once; each slot is one task
/// running [`Server::run_rtmp`] or [`Server::run_ws`] (see the crate docs
/// for the firmware side).
/// `M` is the raw mutex guarding the hub: [`CriticalSectionRawMutex`] (the
/// default) lets the server be shared between executors and makes it
/// `Sync`; [`NoopRawMutex`](embassy_sync::blocking_mutex::raw::NoopRawMutex)
/// suits firmware that runs every task on one executor and keeps interrupts
/// enabled while the hub works.
pub struct Server<const N: usize, M: RawMutex = CriticalSectionRawMutex> {
    state: Mutex<M, RefCell<State<N>>>,
    wake: [Signal<M, ()>; N],
    timers_changed: Signal<M, ()>,
    config: Config,
}

impl<const N: usize, M: RawMutex> core::fmt::Debug for Server<N, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("slots", &N)
            .field("rtmp_port", &self.config.rtmp_port)
            .field("ws_port", &self.config.ws_port)
            .finish_non_exhaustive()
    }
}

impl<const N: usize, M: RawMutex> Server<N, M> {
    /// A server with the default application (accept everything, tiered
    /// sessions) and an in-memory shared-object store.
    ///
    /// # Panics
    /// If `N` is 0.
    pub fn new(config: Config) -> Self {
        let hub = Hub::new(config.hub.clone());
        Self::from_hub(config, hub)
    }

    /// A server around a hub built by the firmware (its own
    /// [`Application`](tern_core::hub::Application) hooks or store).
    /// `config.hub` is ignored in favour of the hub's own configuration.
    ///
    /// # Panics
    /// If `N` is 0.
    pub fn from_hub(config: Config, hub: Hub) -> Self {
        assert!(N > 0, "a server needs at least one connection slot");
        Server {
            state: Mutex::new(RefCell::new(State {
                hub,
                slots: [None; N],
                claimed: [false; N],
                next: 1,
                counters: Counters::default(),
            })),
            wake: [const { Signal::new() }; N],
            timers_changed: Signal::new(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the server counted so far.
    pub fn counters(&self) -> Counters {
        self.state.lock(|cell| cell.borrow().counters)
    }

    /// Runs `f` on the hub (stats, server-side shared-object changes,
    /// [`Hub::close_all`]), then routes the events it produced: connection
    /// tasks are woken and the hub-timer task learns of new deadlines.
    ///
    /// `f` runs under the lock: it must not call back into the server.
    pub fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        self.state.lock(|cell| {
            let mut state = cell.borrow_mut();
            let before = state.hub.poll_timeout();
            let result = f(&mut state.hub);
            state.dispatch(&self.wake);
            if let Some(after) = state.hub.poll_timeout()
                && before.is_none_or(|before| after < before)
            {
                self.timers_changed.signal(());
            }
            result
        })
    }

    /// Runs the hub's timers (idle rooms, idle shared objects, session
    /// timeouts). Spawn it once, next to the connection tasks.
    pub async fn run_hub_timers(&self) -> ! {
        loop {
            let next = self.state.lock(|cell| cell.borrow().hub.poll_timeout());
            select(sleep_until(next), self.timers_changed.wait()).await;
            let now = now();
            self.with_hub(|hub| {
                if hub.poll_timeout().is_some_and(|at| at <= now) {
                    hub.handle_timeout(now);
                }
            });
        }
    }

    /// The wake-up signal of `slot`.
    pub(crate) fn wake(&self, slot: usize) -> &Signal<M, ()> {
        let slot = slot.min(N - 1);
        &self.wake[slot]
    }

    /// Marks `slot` as run by the calling task until the guard drops.
    ///
    /// # Panics
    /// If `slot >= N` or another task already runs it.
    pub(crate) fn claim(&self, slot: usize) -> SlotClaim<'_, N, M> {
        assert!(slot < N, "slot {slot} out of range: the server has {N}");
        let was_claimed = self.state.lock(|cell| {
            let mut state = cell.borrow_mut();
            let claimed = state.claimed.get_mut(slot);
            claimed.is_none_or(|c| core::mem::replace(c, true))
        });
        assert!(
            !was_claimed,
            "slot {slot} is already served by another task"
        );
        SlotClaim { server: self, slot }
    }

    /// Gives `slot` a fresh connection id.
    pub(crate) fn register(&self, slot: usize) -> ConnId {
        self.state.lock(|cell| {
            let mut state = cell.borrow_mut();
            let id = ConnId(
                state
                    .next
                    .saturating_mul(N as u64)
                    .saturating_add(slot as u64),
            );
            state.next += 1;
            if let Some(entry) = state.slots.get_mut(slot) {
                *entry = Some(id);
            }
            state.counters.accepted += 1;
            id
        })
    }

    /// Tells the hub the connection is gone and counts how it ended.
    ///
    /// Takes the time from the caller, as the core does, so unit tests run
    /// without an embassy time driver (the crate has no std dev-dependency).
    pub(crate) fn unregister(&self, now: Instant, slot: usize, id: ConnId, ended: Ended) {
        self.with_hub(|hub| hub.handle(now, id, Request::Disconnect));
        self.state.lock(|cell| {
            let mut state = cell.borrow_mut();
            if let Some(entry) = state.slots.get_mut(slot) {
                *entry = None;
            }
            let counters = &mut state.counters;
            match ended {
                Ended::ByClient => counters.closed_by_client += 1,
                Ended::ByServer => counters.closed_by_server += 1,
                Ended::Protocol => counters.protocol_errors += 1,
                Ended::Timeout => counters.timeouts += 1,
                Ended::WriteStalled => counters.write_stalls += 1,
            }
        });
    }

    /// Handshake filler bytes for connection `id`: not secret, just varied
    /// per connection and reproducible from the seed (xorshift64).
    pub(crate) fn handshake_random(&self, id: ConnId) -> [u8; RANDOM_LEN] {
        let mut block = [0u8; RANDOM_LEN];
        let mut x = (self.config.seed ^ id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        for b in &mut block {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x.to_le_bytes()[0];
        }
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_sync::blocking_mutex::raw::NoopRawMutex;

    #[test]
    fn ids_map_back_to_their_slot() {
        let server: Server<3, NoopRawMutex> = Server::new(Config::default());
        for round in 0..4 {
            for slot in 0..3 {
                let id = server.register(slot);
                assert_eq!(slot_of::<3>(id), slot, "round {round}");
                server.unregister(Instant::from_millis(0), slot, id, Ended::ByClient);
            }
        }
        let counters = server.counters();
        assert_eq!(counters.accepted, 12);
        assert_eq!(counters.closed_by_client, 12);
    }

    #[test]
    fn a_released_slot_can_be_claimed_again() {
        let server: Server<2, NoopRawMutex> = Server::new(Config::default());
        let first = server.claim(1);
        let _other = server.claim(0);
        drop(first);
        let _again = server.claim(1);
    }

    #[test]
    #[should_panic(expected = "slot 1 is already served by another task")]
    fn a_slot_is_served_by_one_task_at_a_time() {
        let server: Server<2, NoopRawMutex> = Server::new(Config::default());
        let _first = server.claim(1);
        let _second = server.claim(1);
    }

    #[test]
    fn handshake_bytes_differ_per_connection() {
        let server: Server<2, NoopRawMutex> = Server::new(Config::default());
        let a = server.handshake_random(ConnId(2));
        let b = server.handshake_random(ConnId(3));
        assert_ne!(a, b);
        assert_eq!(a, server.handshake_random(ConnId(2)));
    }

    #[test]
    fn server_is_sync_with_the_default_mutex() {
        fn assert_sync<T: Sync>() {}
        assert_sync::<Server<4>>();
    }
}
