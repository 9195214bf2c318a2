//! The hub's administration API (`Hub::connections`, `Hub::kick`,
//! `Hub::publisher_of`) driven through real RTMP connections.
use crate::hub::{ConnId, ConnectionInfo, HubConfig};
use crate::rtmp::ClientEvent;
use crate::scope_path::ScopePath;
use crate::testing::Harness;
use alloc::string::String;
use alloc::string::ToString;
use alloc::vec::Vec;

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
