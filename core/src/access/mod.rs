//! Access control between a connection and the hub: address rules, signed
//! URLs, HTTP callbacks (webhooks with nginx-rtmp's names and meaning),
//! shared-object rate limits and write permission.
//!
//! Each connection's requests pass its [`Gate`] on their way to the hub. A
//! connect, publish or play goes through, in order: the app's address rules
//! ([`AddrRules`]), the signed-URL check when the app has a secret
//! ([`token`]), and the app's HTTP callback ([`HookCall`]); only then does
//! the hub (and its [`Application`](crate::hub::Application)) see it. Each
//! step can only narrow. A callback is a decision *pending*: the gate holds
//! that request and everything the connection asks after it, and the
//! runtime makes the HTTP call and hands the reply back
//! ([`Gate::resolve`]). So a slow webhook makes only its own connection
//! wait; the hub and every other client go on. See [`Gate`] for the call
//! order.

pub mod cidr;
mod gate;
mod hook;
pub mod rate;
pub mod token;

pub use cidr::{AddrRules, Cidr, CidrError};
pub use gate::{Gate, GateEvent, MAX_HELD, RATE_LIMITED, REFUSALS_BEFORE_DROP};
pub use hook::{CallId, HookCall, HookKind, HookReply, HookUrls, percent_decode};
pub use rate::{ConnectRate, RateLimit, TokenBucket};

use crate::time::Duration;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// What one application allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPolicy {
    /// Who may connect (RTMP connect, WebSocket upgrade).
    pub allow_connect: AddrRules,
    /// Who may publish.
    pub allow_publish: AddrRules,
    /// Who may play.
    pub allow_play: AddrRules,
    /// Signed URLs: publish, play and WebSocket connects need a valid
    /// `token` and `expires` ([`token`]).
    pub secret: Option<Vec<u8>>,
    /// HTTP callbacks.
    pub hooks: HookUrls,
    /// How often `on_update` is called per publish or play (zero: never).
    pub update_interval: Duration,
    /// `on_update`: a failed call (timeout, refused, no valid reply) drops
    /// the client too, not only a non-2xx reply (nginx-rtmp's
    /// `notify_update_strict`).
    pub update_strict: bool,
    /// Clients may write shared objects (false: only server-side code does).
    pub client_so_write: bool,
}

impl Default for AppPolicy {
    /// Everybody may do everything; no hooks.
    fn default() -> Self {
        AppPolicy {
            allow_connect: AddrRules::ALL,
            allow_publish: AddrRules::ALL,
            allow_play: AddrRules::ALL,
            secret: None,
            hooks: HookUrls::default(),
            update_interval: Duration::from_secs(30),
            update_strict: false,
            client_so_write: true,
        }
    }
}

/// The server's access policy: per-app rules and per-connection limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Rules per application name. An app without an entry allows
    /// everything (the hub still refuses apps that are not configured).
    pub apps: BTreeMap<String, AppPolicy>,
    /// Shared-object operations per connection.
    pub so_ops: RateLimit,
    /// Room depth, as the hub resolves scopes.
    pub max_depth: usize,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            apps: BTreeMap::new(),
            so_ops: RateLimit {
                per_sec: 100,
                burst: 500,
            },
            max_depth: 4,
        }
    }
}
