//! One connection slot, whatever the protocol: accept on a port, serve the
//! connection against the shared hub, close, and accept again.
//!
//! RTMP's [`ServerConnection`](tern_core::rtmp::ServerConnection) and
//! WebSocket's [`WsConnection`](tern_core::ws::WsConnection) share one call
//! order, so one loop serves both through [`Session`]. The loop mirrors
//! runtime-std's connection task:
//!
//! 1. pull deliveries while the connection's pending output is under
//!    `high_water` (back-pressure);
//! 2. write everything out;
//! 3. wait for the first of: bytes from the socket (handed to the
//!    connection straight from the socket's receive ring, no copy), the
//!    slot's wake-up signal (the hub has deliveries), or the connection's
//!    own deadline (handshake timeout, ping, idle close).

use crate::clock::{now, sleep_until};
use crate::server::{Ended, Server};
use core::net::IpAddr;
use embassy_futures::select::{Either3, select3};
use embassy_net::Stack;
use embassy_net::tcp::{State, TcpSocket};
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_time::{Duration, Timer, with_timeout};
use tern_core::connection::{CloseKind, CloseReason, Connection, Failure};
use tern_core::hub::ConnId;

/// Pause after a failed accept before listening again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the slot loop needs of a sans-IO server connection: the core's
/// documented call order, plus how a finished connection ended (for
/// [`Counters`](crate::Counters)).
pub(crate) trait Session: Connection {
    /// How the connection ended, once it is closing.
    fn ended(&self) -> Ended {
        self.close_reason().map_or(Ended::ByServer, ended_by)
    }
}

impl<C: Connection> Session for C {}

/// The counter a close reason goes to.
pub(crate) fn ended_by<E: Failure>(reason: &CloseReason<E>) -> Ended {
    match reason.kind() {
        CloseKind::Peer => Ended::ByClient,
        // A refused connect is counted in `rejected_connects` as well.
        CloseKind::Server | CloseKind::Rejected => Ended::ByServer,
        CloseKind::Timeout => Ended::Timeout,
        CloseKind::Protocol => Ended::Protocol,
    }
}

impl<const N: usize, M: RawMutex> Server<N, M> {
    /// Serves connections on `port` from `slot`, one after another, forever;
    /// `open` builds the protocol connection for each accepted socket.
    pub(crate) async fn run_slot<C: Session>(
        &self,
        stack: Stack<'_>,
        slot: usize,
        port: u16,
        rx_buffer: &mut [u8],
        tx_buffer: &mut [u8],
        mut open: impl FnMut(ConnId, Option<IpAddr>) -> C,
    ) -> ! {
        let _claim = self.claim(slot);
        loop {
            let mut socket = TcpSocket::new(stack, &mut *rx_buffer, &mut *tx_buffer);
            if socket.accept(port).await.is_err() {
                Timer::after(ACCEPT_BACKOFF).await;
                continue;
            }
            // Both protocols send small messages (shared-object changes,
            // acks) that must not wait for the previous segment's ACK.
            socket.set_nagle_enabled(false);
            let peer = socket.remote_endpoint().map(|e| IpAddr::from(e.addr));
            let id = self.register(slot);
            let ended = self.serve(&mut socket, slot, id, open(id, peer)).await;
            self.unregister(now(), slot, id, ended);
            self.linger(&mut socket).await;
        }
    }

    /// Serves one accepted connection; returns how it ended.
    async fn serve<C: Session>(
        &self,
        socket: &mut TcpSocket<'_>,
        slot: usize,
        id: ConnId,
        mut conn: C,
    ) -> Ended {
        let config = self.config();
        let wake = self.wake(slot);
        // A wake-up left over from the slot's previous connection.
        wake.reset();
        loop {
            // Take deliveries while our own buffer is small.
            let mut pulled = false;
            if conn.pending_bytes() < config.high_water {
                let now = now();
                self.with_hub(|hub| {
                    while conn.pending_bytes() < config.high_water {
                        let Some(delivery) = hub.poll_delivery(id) else {
                            break;
                        };
                        conn.handle_delivery(now, delivery);
                        pulled = true;
                    }
                });
            }
            if let Err(ended) = self.flush(socket, &mut conn).await {
                return ended;
            }
            if conn.is_closing() {
                return conn.ended();
            }
            if pulled {
                continue;
            }
            let deadline = conn.poll_timeout();
            let outcome = select3(
                socket.read_with(|data| {
                    let input = conn.handle_input(now(), data).map_err(|_| conn.ended());
                    (data.len(), input)
                }),
                wake.wait(),
                sleep_until(deadline),
            )
            .await;
            match outcome {
                // EOF and reset look alike through `read_with`.
                Either3::First(Err(_)) => return Ended::ByClient,
                Either3::First(Ok(input)) => {
                    self.hand_over(id, &mut conn);
                    if let Err(ended) = input {
                        // Flush what is queued (an error reply, a close
                        // frame), then close.
                        let _ = self.flush(socket, &mut conn).await;
                        return ended;
                    }
                }
                Either3::Second(()) => {}
                Either3::Third(()) => {
                    conn.handle_timeout(now());
                    self.hand_over(id, &mut conn);
                }
            }
        }
    }

    /// Hands the connection's requests to the hub, in order, under one lock.
    fn hand_over(&self, id: ConnId, conn: &mut impl Session) {
        let now = now();
        self.with_hub(|hub| {
            while let Some(request) = conn.poll_event() {
                hub.handle(now, id, request);
            }
        });
    }

    /// Writes everything the connection has queued.
    async fn flush(
        &self,
        socket: &mut TcpSocket<'_>,
        conn: &mut impl Session,
    ) -> Result<(), Ended> {
        while let Some(bytes) = conn.poll_transmit() {
            let mut rest: &[u8] = &bytes;
            while !rest.is_empty() {
                match with_timeout(self.config().write_timeout, socket.write(rest)).await {
                    Ok(Ok(n)) => rest = rest.get(n..).unwrap_or_default(),
                    Ok(Err(_)) => return Err(Ended::ByClient),
                    Err(_) => return Err(Ended::WriteStalled),
                }
            }
        }
        Ok(())
    }

    /// Closes the socket politely: our FIN after the last bytes, then a
    /// short wait for the peer's, then a reset if the peer is still there.
    /// (RFC 6455 §7.1.1 wants the server to close TCP first, as this does.)
    async fn linger(&self, socket: &mut TcpSocket<'_>) {
        let linger = self.config().linger;
        socket.close();
        let _ = with_timeout(linger, socket.flush()).await;
        let _ = with_timeout(linger, async {
            while socket.read_with(|data| (data.len(), ())).await.is_ok() {}
        })
        .await;
        if !matches!(socket.state(), State::Closed | State::TimeWait) {
            socket.abort();
            let _ = with_timeout(linger, socket.flush()).await;
        }
    }
}
