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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubConfig;
    use crate::rtmp::ClientEvent;
    use crate::testing::Harness;
    use alloc::string::ToString;

    fn codes(events: Vec<ClientEvent>) -> Vec<String> {
        events
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Status { code, .. } => Some(code),
                _ => None,
            })
            .collect()
    }

    /// Listing shows who publishes and plays; kicking the publisher
    /// unpublishes its stream for the player (an ordinary
    /// `UnpublishNotify`), and the publisher itself is closed.
    #[test]
    fn list_find_publisher_and_kick() {
        let mut h = Harness::new(HubConfig::default());
        let p = h.connect("live");
        let ps = h.create_stream(p);
        h.peers[p].client.publish(ps, "cam").unwrap();
        let v = h.connect("live");
        let vs = h.create_stream(v);
        h.peers[v].client.play(vs, "cam", -2.0).unwrap();
        h.drive();
        h.take(v);
        let (pid, vid) = (h.peers[p].id, h.peers[v].id);
        let listed: Vec<ConnectionInfo<'_>> = h.hub.connections().collect();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].id, pid);
        assert_eq!(listed[0].publishing, ["cam"]);
        assert_eq!(
            listed[0].scope.map(ToString::to_string),
            Some("/live".into())
        );
        assert_eq!(listed[1].playing, ["cam"]);
        assert_eq!(listed[1].protocol.name(), "rtmp");
        let live = ScopePath::app("live").unwrap();
        assert_eq!(h.hub.publisher_of(&live, "cam"), Some(pid));
        assert_eq!(h.hub.publisher_of(&live, "other"), None);

        let now = h.now;
        assert!(h.hub.kick(now, pid, "kicked by the admin API".into()));
        assert!(!h.hub.kick(now, pid, "again".into()), "already closing");
        assert!(!h.hub.kick(now, ConnId(999), "unknown".into()));
        h.drive();
        assert_eq!(codes(h.take(v)), ["NetStream.Play.UnpublishNotify"]);
        assert!(h.peers[p].closed || h.hub.connections().all(|c| c.id != pid));
        assert_eq!(h.hub.publisher_of(&live, "cam"), None);
        let left: Vec<ConnId> = h.hub.connections().map(|c| c.id).collect();
        assert_eq!(left, [vid]);
    }
}
