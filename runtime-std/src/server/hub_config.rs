//! The mapping from the config file to the core hub's settings.

use crate::config::Config;
use tern_core::hub::shared_object::SoLimits;
use tern_core::hub::{HubConfig, OutboxLimits, PublishConflict};
use tern_core::{Duration, Limits};

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Seconds from the config where 0 means "never" (instants saturate, so a
/// maximal duration is a deadline that never comes).
pub(super) fn secs_or_never(s: u64) -> Duration {
    match s {
        0 => Duration::from_millis(u64::MAX),
        s => Duration::from_secs(s),
    }
}

/// The hub configuration a server config asks for.
pub fn hub_config(config: &Config, limits: &Limits) -> HubConfig {
    HubConfig {
        apps: config.apps.keys().cloned().collect(),
        room_idle: secs(config.scopes.room_idle_secs),
        max_depth: config.scopes.max_depth,
        max_rooms_per_app: config.scopes.max_rooms_per_app,
        max_connections_per_scope: config.scopes.max_connections_per_scope,
        max_connections_per_address: config.scopes.max_connections_per_address,
        shared_objects: SoLimits {
            max_per_scope: config.shared_objects.max_per_scope,
            max_keys: config.shared_objects.max_keys,
            max_value_bytes: config.shared_objects.max_value_bytes,
            max_object_bytes: config.shared_objects.max_object_bytes,
            ..SoLimits::default()
        },
        outbox: OutboxLimits {
            max_media_bytes: config.streams.subscriber_queue_bytes,
            max_lag_ms: u32::try_from(config.streams.max_lag_ms).unwrap_or(u32::MAX),
            ..OutboxLimits::default()
        },
        max_gop_bytes: if config.streams.gop_cache {
            config.streams.max_gop_bytes
        } else {
            0
        },
        // 0 means never, which the hub spells as a zero duration.
        publisher_idle_timeout: secs(config.streams.publisher_idle_timeout_secs),
        publish_conflict: match config.streams.publish_conflict {
            crate::config::PublishConflictConfig::Replace => PublishConflict::Replace,
            crate::config::PublishConflictConfig::Reject => PublishConflict::Reject,
        },
        limits: limits.clone(),
        ..HubConfig::default()
    }
}
