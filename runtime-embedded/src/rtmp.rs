//! RTMP slots: the core's [`ServerConnection`] in the shared slot loop
//! (`crate::slot`), on [`Config::rtmp_port`](crate::Config::rtmp_port).

use crate::clock::now;
use crate::server::Server;
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::RawMutex;

use tern_core::rtmp::ServerConnection;

impl<const N: usize, M: RawMutex> Server<N, M> {
    /// Serves RTMP connections on `slot`, one after another, forever.
    ///
    /// Run it in one task per slot, `slot` in `0..N`, each with its own
    /// buffers: `rx_buffer` is the TCP receive window and `tx_buffer` the
    /// send buffer ([`DEFAULT_RX_BUFFER`](crate::DEFAULT_RX_BUFFER) and
    /// [`DEFAULT_TX_BUFFER`](crate::DEFAULT_TX_BUFFER) are good sizes).
    /// Declared inside an `#[embassy_executor::task]` the buffers live in
    /// the task pool's static memory. RTMP and WebSocket tasks share the
    /// `N` slots: give each task its own.
    ///
    /// # Panics
    /// If `slot >= N`, or another task already serves `slot`: two tasks on
    /// one slot would steal each other's wake-ups, so this is refused
    /// outright.
    pub async fn run_rtmp(
        &self,
        stack: Stack<'_>,
        slot: usize,
        rx_buffer: &mut [u8],
        tx_buffer: &mut [u8],
    ) -> ! {
        let config = self.config();
        self.run_slot(
            stack,
            slot,
            config.rtmp_port,
            rx_buffer,
            tx_buffer,
            |id, peer| {
                let random = self.handshake_random(id);
                ServerConnection::new(config.rtmp.clone(), now(), &random, peer)
            },
        )
        .await
    }
}
