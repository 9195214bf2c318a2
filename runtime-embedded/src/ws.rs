//! WebSocket slots: the core's [`WsConnection`] (the HTTP upgrade, then
//! JSON protocol v1 or chat mode) in the shared slot loop (`crate::slot`),
//! on [`Config::ws_port`](crate::Config::ws_port).

use crate::clock::now;
use crate::server::Server;
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::RawMutex;

use tern_core::ws::WsConnection;

impl<const N: usize, M: RawMutex> Server<N, M> {
    /// Serves WebSocket connections on `slot`, one after another, forever.
    ///
    /// The same contract as [`run_rtmp`](Server::run_rtmp): one task per
    /// slot with its own buffers, on a slot no other task (RTMP or
    /// WebSocket) serves. The connection reads the HTTP upgrade request
    /// from its first byte, so nothing else may listen on
    /// [`Config::ws_port`](crate::Config::ws_port).
    ///
    /// # Panics
    /// If `slot >= N`, or another task already serves `slot`.
    pub async fn run_ws(
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
            config.ws_port,
            rx_buffer,
            tx_buffer,
            |_, peer| WsConnection::new(config.ws.clone(), now(), peer),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Ended;
    use crate::slot::ended_by;
    use tern_core::Instant;
    use tern_core::connection::CloseReason;
    use tern_core::hub::Request;
    use tern_core::ws::{UpgradeError, WsError};

    #[test]
    fn clean_closes_are_not_protocol_errors() {
        let ended = |r: CloseReason<WsError>| ended_by(&r);
        assert_eq!(
            ended(CloseReason::Peer { code: Some(1000) }),
            Ended::ByClient
        );
        assert_eq!(
            ended(CloseReason::Server {
                reason: "shutdown".into()
            }),
            Ended::ByServer
        );
        assert_eq!(
            ended(CloseReason::Failed(WsError::Idle { silent_ms: 1 })),
            Ended::Timeout
        );
        assert_eq!(
            ended(CloseReason::Failed(WsError::Handshake(
                UpgradeError::HeadTooLarge
            ))),
            Ended::Protocol
        );
    }

    #[test]
    fn an_upgrade_request_opens_the_connection() {
        let mut conn =
            WsConnection::new(crate::Config::default().ws, Instant::from_millis(0), None);
        let request = b"GET /chat/room1 HTTP/1.1\r\nHost: device\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\n";
        WsConnection::handle_input(&mut conn, Instant::from_millis(1), request).unwrap();
        assert!(matches!(
            WsConnection::poll_event(&mut conn),
            Some(Request::Connect(_))
        ));
        let answer = WsConnection::poll_transmit(&mut conn).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 101"));
        assert!(!WsConnection::is_closing(&conn));
    }
}
