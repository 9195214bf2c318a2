//! One RTMP connection slot: accept on the configured port, serve the
//! connection with the core's [`ServerConnection`] against the shared hub,
//! close, and accept again.
//!
//! The loop mirrors runtime-std's connection task, in the core's call order:
//! pull deliveries while the connection's pending output is under
//! `high_water` (back-pressure), write everything out, then wait for the
//! first of: bytes from the socket (handed to the connection straight from
//! the socket's receive ring, no copy), the slot's wake-up signal (the hub
//! has deliveries), or the connection's own deadline (handshake timeout,
//! ping).

use crate::clock::{now, sleep_until};
use crate::server::{Ended, Server};
use core::net::IpAddr;
use embassy_futures::select::{Either3, select3};
use embassy_net::Stack;
use embassy_net::tcp::{State, TcpSocket};
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_time::{Duration, Timer, with_timeout};
use tern_core::hub::ConnId;
use tern_core::rtmp::{RtmpError, ServerConnection};

/// Pause after a failed accept before listening again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl<const N: usize, M: RawMutex> Server<N, M> {
    /// Serves RTMP connections on `slot`, one after another, forever.
    ///
    /// Run it in one task per slot, `slot` in `0..N`, each with its own
    /// buffers: `rx_buffer` is the TCP receive window and `tx_buffer` the
    /// send buffer ([`DEFAULT_RX_BUFFER`](crate::DEFAULT_RX_BUFFER) and
    /// [`DEFAULT_TX_BUFFER`](crate::DEFAULT_TX_BUFFER) are good sizes).
    /// Declared inside an `#[embassy_executor::task]` the buffers live in
    /// the task pool's static memory.
    ///
    /// # Panics
    /// If `slot >= N`: two tasks on one slot would steal each other's
    /// wake-ups, so this is refused outright.
    pub async fn run_rtmp(
        &self,
        stack: Stack<'_>,
        slot: usize,
        rx_buffer: &mut [u8],
        tx_buffer: &mut [u8],
    ) -> ! {
        assert!(slot < N, "slot {slot} out of range: the server has {N}");
        loop {
            let mut socket = TcpSocket::new(stack, &mut *rx_buffer, &mut *tx_buffer);
            if socket.accept(self.config().rtmp_port).await.is_err() {
                Timer::after(ACCEPT_BACKOFF).await;
                continue;
            }
            // RTMP sends small messages (shared-object changes, acks) that
            // must not wait for the previous segment's ACK.
            socket.set_nagle_enabled(false);
            let peer = socket.remote_endpoint().map(|e| IpAddr::from(e.addr));
            let id = self.register(slot);
            let ended = self.serve_rtmp(&mut socket, slot, id, peer).await;
            self.unregister(slot, id, ended);
            self.linger(&mut socket).await;
        }
    }

    /// Serves one accepted connection; returns how it ended.
    async fn serve_rtmp(
        &self,
        socket: &mut TcpSocket<'_>,
        slot: usize,
        id: ConnId,
        peer: Option<IpAddr>,
    ) -> Ended {
        let config = self.config();
        let wake = self.wake(slot);
        // A wake-up left over from the slot's previous connection.
        wake.reset();
        let random = self.handshake_random(id);
        let mut conn = ServerConnection::new(config.rtmp.clone(), now(), &random, peer);
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
                return match conn.close_reason() {
                    Some(e) => ended_by(e),
                    None => Ended::ByServer,
                };
            }
            if pulled {
                continue;
            }
            let deadline = conn.poll_timeout();
            let outcome = select3(
                socket.read_with(|data| {
                    let input = conn.handle_input(now(), data);
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
                    if let Err(e) = input {
                        // Flush what is queued (an error reply), then close.
                        let _ = self.flush(socket, &mut conn).await;
                        return ended_by(&e);
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
    fn hand_over(&self, id: ConnId, conn: &mut ServerConnection) {
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
        conn: &mut ServerConnection,
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

fn ended_by(error: &RtmpError) -> Ended {
    match error {
        RtmpError::Unresponsive { .. } | RtmpError::HandshakeTimeout { .. } => Ended::Timeout,
        _ => Ended::Protocol,
    }
}
