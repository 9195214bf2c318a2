//! What an operator's tools (runtime-std's admin API) see of the hub and
//! may do to it: list connections, close one, find a stream's publisher.
//! Shared objects are written through the server-side API on [`Hub`]
//! (`so_apply`, `so_clear`, `so_send`).

use super::{ConnId, Hub, Protocol};
use crate::scope_path::ScopePath;
use crate::time::Instant;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

/// Snapshot of one connection the hub knows, for an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo<'a> {
    /// Its id.
    pub id: ConnId,
    /// RTMP or WebSocket.
    pub protocol: Protocol,
    /// The client's address, when the runtime gave one.
    pub address: Option<IpAddr>,
    /// Its scope; `None` until its connect was accepted.
    pub scope: Option<&'a ScopePath>,
    /// When it connected.
    pub connected_at: Instant,
    /// Its last application request.
    pub last_activity: Instant,
    /// Names of the streams it publishes.
    pub publishing: Vec<&'a str>,
    /// Names of the streams it plays.
    pub playing: Vec<&'a str>,
    /// Shared objects it uses.
    pub shared_objects: &'a [String],
}

impl Hub {
    /// Every connection the hub knows, in id order (those being closed
    /// left out).
    pub fn connections(&self) -> impl Iterator<Item = ConnectionInfo<'_>> {
        self.conns
            .iter()
            .filter(|(_, c)| !c.closing)
            .map(|(id, c)| ConnectionInfo {
                id: *id,
                protocol: c.protocol,
                address: c.address,
                scope: c.scope.as_ref(),
                connected_at: c.connected_at,
                last_activity: c.last_activity,
                publishing: c
                    .publishing
                    .iter()
                    .map(|(_, (_, name))| name.as_str())
                    .collect(),
                playing: c.playing.iter().map(|(_, name)| name.as_str()).collect(),
                shared_objects: &c.objects,
            })
    }

    /// Closes `conn` as the server: others are told at once (its streams
    /// unpublished, its objects released), the client last, with `reason`.
    /// False if the hub does not know it (or already closes it).
    pub fn kick(&mut self, now: Instant, conn: ConnId, reason: String) -> bool {
        if self.conns.get(&conn).is_none_or(|c| c.closing) {
            return false;
        }
        self.close_conn(now, conn, reason);
        true
    }

    /// The connection publishing stream `name` in `scope`, if any.
    pub fn publisher_of(&self, scope: &ScopePath, name: &str) -> Option<ConnId> {
        let key = (scope.clone(), String::from(name));
        self.streams.get(&key)?.publisher.map(|p| p.conn)
    }
}
