//! Application hooks: the decisions a deployment makes about its clients.
//!
//! The hub asks an [`Application`] before it admits a connection, a
//! publisher, a player or a shared-object access, and asks it which
//! [`SessionLimits`] a new connection lives under. Every method has a default,
//! so an application overrides only what it cares about.

use super::request::{ConnId, ConnectRequest, SessionLimits};
use crate::scope_path::{ScopePath, query_param};
use crate::time::Duration;
use alloc::string::String;

/// An application's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Accept,
    /// Refuse, with a reason that is logged and (for connects) sent to the client.
    Reject(String),
}

/// Kinds of shared-object access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoAccess {
    /// Create an object that does not exist yet (on first use).
    Create,
    /// Subscribe and read.
    Read,
    /// Set, delete or send.
    Write,
}

/// Deployment hooks. All methods have permissive defaults.
pub trait Application {
    /// May `conn` join `scope`? Sees the connect parameters and the query
    /// (for example a token). Called before the scope exists: a rejected
    /// connect creates nothing.
    fn on_connect(
        &mut self,
        conn: ConnId,
        scope: &ScopePath,
        request: &ConnectRequest,
    ) -> Decision {
        let _ = (conn, scope, request);
        Decision::Accept
    }

    /// `conn` left `scope`.
    fn on_disconnect(&mut self, conn: ConnId, scope: &ScopePath) {
        let _ = (conn, scope);
    }

    /// May `conn` publish stream `name` (query split off) in `scope`?
    fn on_publish(&mut self, conn: ConnId, scope: &ScopePath, name: &str, query: &str) -> Decision {
        let _ = (conn, scope, name, query);
        Decision::Accept
    }

    /// May `conn` play stream `name` in `scope`?
    fn on_play(&mut self, conn: ConnId, scope: &ScopePath, name: &str, query: &str) -> Decision {
        let _ = (conn, scope, name, query);
        Decision::Accept
    }

    /// May `conn` access shared object `name` in `scope` this way?
    fn on_shared_object(
        &mut self,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
        access: SoAccess,
    ) -> Decision {
        let _ = (conn, scope, name, access);
        Decision::Accept
    }

    /// Idle and session timeouts for a new connection.
    fn session_limits(&mut self, request: &ConnectRequest) -> SessionLimits {
        TieredSessions::default().limits_for(request)
    }
}

/// The session policy tern ships: a longer idle timeout for clients whose
/// connect query carries a premium marker (`tier=premium` by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TieredSessions {
    /// Idle timeout for everybody else.
    pub idle_timeout: Duration,
    /// Idle timeout for premium clients.
    pub premium_idle_timeout: Duration,
    /// Query key that marks premium clients.
    pub premium_key: String,
    /// Query value that marks premium clients.
    pub premium_value: String,
    /// Hard session length, if any.
    pub session_timeout: Option<Duration>,
}

impl Default for TieredSessions {
    /// 15 minutes idle, 3 hours for `tier=premium`, no session cap.
    fn default() -> Self {
        TieredSessions {
            idle_timeout: Duration::from_mins(15),
            premium_idle_timeout: Duration::from_mins(180),
            premium_key: String::from("tier"),
            premium_value: String::from("premium"),
            session_timeout: None,
        }
    }
}

impl TieredSessions {
    /// True if the connect query marks the client as premium.
    pub fn is_premium(&self, request: &ConnectRequest) -> bool {
        query_param(request.query(), &self.premium_key) == Some(self.premium_value.as_str())
    }

    /// The limits for `request`.
    pub fn limits_for(&self, request: &ConnectRequest) -> SessionLimits {
        SessionLimits {
            idle_timeout: if self.is_premium(request) {
                self.premium_idle_timeout
            } else {
                self.idle_timeout
            },
            session_timeout: self.session_timeout,
        }
    }
}

/// An application that accepts everything and uses [`TieredSessions`].
#[derive(Clone, Debug, Default)]
pub struct DefaultApplication {
    /// The session policy.
    pub sessions: TieredSessions,
}

impl Application for DefaultApplication {
    fn session_limits(&mut self, request: &ConnectRequest) -> SessionLimits {
        self.sessions.limits_for(request)
    }
}
