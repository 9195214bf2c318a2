//! What an embedded server is configured with: ports, the hub's bounds
//! tuned for a few hundred KiB of RAM, and each protocol's own knobs.

use alloc::string::String;
use alloc::vec;
use embassy_time::Duration;
use tern_core::Limits;
use tern_core::hub::shared_object::SoLimits;
use tern_core::hub::{HubConfig, OutboxLimits};
use tern_core::rtmp::ServerConfig;
use tern_core::ws::WsConfig;

/// Suggested size of one connection's TCP receive buffer (its TCP window).
pub const DEFAULT_RX_BUFFER: usize = 2048;
/// Suggested size of one connection's TCP transmit buffer.
pub const DEFAULT_TX_BUFFER: usize = 2048;

/// Settings of an embedded [`Server`](crate::Server).
///
/// [`Config::default`] is sized for a microcontroller: [`Limits::small`],
/// short outboxes, no GOP cache, a 1 KiB outbound chunk size, small shared
/// objects and 4 KiB WebSocket messages. Every field is public so firmware can adjust one bound
/// without restating the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// TCP port the RTMP listeners accept on.
    pub rtmp_port: u16,
    /// TCP port the WebSocket listeners accept on (the whole port: the
    /// connection reads the HTTP upgrade request itself).
    pub ws_port: u16,
    /// The hub's bounds (apps, rooms, shared objects, outboxes).
    pub hub: HubConfig,
    /// Per-connection RTMP settings (chunk size, pings, parser bounds).
    pub rtmp: ServerConfig,
    /// Per-connection WebSocket settings (message size, pings, objects).
    pub ws: WsConfig,
    /// Output bytes a connection may hold before it stops pulling
    /// deliveries from the hub (back-pressure: a slow client's deliveries
    /// stay in its outbox, where the drop policy applies).
    pub high_water: usize,
    /// A write that makes no progress for this long drops the connection
    /// (a client that stopped reading).
    pub write_timeout: Duration,
    /// How long a closing connection waits for its last bytes to be
    /// acknowledged and for the peer's FIN.
    pub linger: Duration,
    /// Seed of the handshake filler bytes (not a secret: RTMP's handshake
    /// carries no cryptography; this only varies them per connection).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        let limits = Limits::small();
        Config {
            rtmp_port: 1935,
            ws_port: 8081,
            hub: small_hub(&limits),
            rtmp: ServerConfig {
                out_chunk_size: 1024,
                window_ack_size: 256 * 1024,
                peer_bandwidth: 256 * 1024,
                max_streams: 4,
                limits: limits.clone(),
                ..ServerConfig::default()
            },
            ws: small_ws(limits),
            high_water: 4 * 1024,
            write_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            seed: 0x7e57_e3b0,
        }
    }
}

/// WebSocket bounds for a small device: a JSON message carries one
/// shared-object operation, so 4 KiB (a whole object at the hub's
/// `max_object_bytes`) is plenty; a connection may use as many objects as a
/// scope may hold.
fn small_ws(limits: Limits) -> WsConfig {
    WsConfig {
        max_message: 4 * 1024,
        max_objects: 4,
        echo_path: None,
        limits,
        ..WsConfig::default()
    }
}

/// Hub bounds for a small device: the fixed number of connection tasks
/// already caps connections, so these cap what each of them can make the
/// hub hold.
fn small_hub(limits: &Limits) -> HubConfig {
    HubConfig {
        apps: vec![String::from("live"), String::from("chat")],
        room_idle: tern_core::Duration::from_secs(60),
        max_depth: 2,
        max_rooms_per_app: 8,
        max_connections_per_scope: 64,
        max_connections_per_address: 64,
        max_streams_per_scope: 4,
        shared_objects: SoLimits {
            max_per_scope: 4,
            max_keys: 32,
            max_value_bytes: 1024,
            max_object_bytes: 4 * 1024,
            max_batch: 32,
            max_subscribers: 64,
        },
        outbox: OutboxLimits {
            max_media_bytes: 32 * 1024,
            max_lag_ms: 2_000,
            max_cutbacks: 4,
            max_pending_notices: 64,
        },
        max_gop_bytes: 0,
        publisher_idle_timeout: tern_core::Duration::from_secs(10),
        publish_conflict: tern_core::hub::PublishConflict::Replace,
        limits: limits.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_small() {
        let config = Config::default();
        assert_eq!(config.rtmp.limits, Limits::small());
        assert_eq!(config.hub.limits, Limits::small());
        assert_eq!(config.hub.max_gop_bytes, 0);
        assert!(config.hub.outbox.max_media_bytes <= 32 * 1024);
        assert!(config.rtmp.out_chunk_size <= 1024);
        assert!(config.high_water < config.hub.outbox.max_media_bytes);
        assert_eq!(config.ws.limits, Limits::small());
        assert!(config.ws.max_message <= config.hub.shared_objects.max_object_bytes);
        assert!(config.ws.max_objects <= config.hub.shared_objects.max_per_scope);
        assert_ne!(config.rtmp_port, config.ws_port);
    }
}
