//! Three hubs on one in-memory sequencer: the cluster's contract without
//! sockets (docs/cluster.md).

use super::*;
use crate::amf0::Value;
use crate::hub::{
    ConnId, ConnectRequest, Delivery, HubConfig, Protocol, Request, SoChange, SoNotice, SoOp,
    shared_object::status,
};
use alloc::rc::Rc;
use alloc::vec;
use core::cell::RefCell;

struct Node {
    hub: Hub,
    bus: MemoryBus,
}

fn nodes(n: usize, log: &Rc<RefCell<MemorySequencer>>) -> Vec<Node> {
    (0..n)
        .map(|i| {
            let mut hub = Hub::new(HubConfig::default());
            hub.join_cluster(alloc::format!("node{i}/1"));
            hub.set_bus_online(true);
            Node {
                hub,
                bus: MemoryBus::new(log),
            }
        })
        .collect()
}

const T: Instant = Instant::from_millis(0);

fn pump_all(nodes: &mut [Node]) {
    loop {
        let mut moved = 0;
        for n in nodes.iter_mut() {
            moved += pump(T, &mut n.hub, &mut n.bus);
        }
        if moved == 0 {
            return;
        }
    }
}

fn connect(hub: &mut Hub, id: u64) {
    hub.handle(
        T,
        ConnId(id),
        Request::Connect(ConnectRequest {
            protocol: Protocol::new("websocket"),
            target: "chat/room".into(),
            params: Value::Null,
            args: vec![],
            address: None,
            notices: None,
        }),
    );
    drain(hub, id);
}

fn so(hub: &mut Hub, id: u64, persistent: bool, op: SoOp) {
    hub.handle(
        T,
        ConnId(id),
        Request::SharedObject {
            name: "board".into(),
            persistent,
            op,
        },
    );
}

fn set(key: &str, value: f64) -> SoOp {
    SoOp::Batch(vec![SoChange::Set {
        key: key.into(),
        value: Value::Number(value),
    }])
}

/// (version, notices) of every shared-object delivery queued for `id`.
fn drain(hub: &mut Hub, id: u64) -> Vec<(u32, Vec<SoNotice>)> {
    let mut out = Vec::new();
    while let Some(d) = hub.poll_delivery(ConnId(id)) {
        if let Delivery::SharedObject(d) = d {
            out.push((d.update.version, d.update.notices.clone()));
        }
    }
    out
}

#[test]
fn every_node_applies_every_write_once_in_one_order() {
    let log = MemorySequencer::new();
    let mut n = nodes(3, &log);
    for (i, node) in n.iter_mut().enumerate() {
        connect(&mut node.hub, i as u64 + 1);
        so(&mut node.hub, i as u64 + 1, false, SoOp::Use);
        drain(&mut node.hub, i as u64 + 1);
    }
    // Writers on two nodes, interleaved, before any message comes back.
    for k in 0..10 {
        so(&mut n[0].hub, 1, false, set("a", k as f64));
        so(&mut n[1].hub, 2, false, set("b", k as f64));
        // Nothing applies before the sequencer answers.
        assert_eq!(n[0].hub.shared_object_data(&scope(), "board").unwrap().0, 0);
    }
    pump_all(&mut n);
    assert_eq!(log.borrow().len(), 20);
    let mut states = Vec::new();
    for (i, node) in n.iter_mut().enumerate() {
        let got = drain(&mut node.hub, i as u64 + 1);
        let versions: Vec<u32> = got.iter().map(|(v, _)| *v).collect();
        // Writers and the reader alike: every version once, in order (a
        // writer hears its successes, the others' changes).
        assert_eq!(versions, (1..=20).collect::<Vec<_>>(), "node {i}");
        if i == 0 {
            let successes = got
                .iter()
                .filter(|(_, ns)| matches!(ns.as_slice(), [SoNotice::Success { .. }]))
                .count();
            assert_eq!(successes, 10);
        }
        let (v, data) = node.hub.shared_object_data(&scope(), "board").unwrap();
        states.push((v, data.clone()));
    }
    assert_eq!(states[0], states[1]);
    assert_eq!(states[1], states[2]);
    assert_eq!(states[0].0, 20);
}

fn scope() -> crate::scope_path::ScopePath {
    crate::scope_path::ScopePath::resolve("chat/room", 4).unwrap()
}

#[test]
fn a_node_that_joins_late_replays_and_syncs_its_clients() {
    let log = MemorySequencer::new();
    let mut n = nodes(1, &log);
    connect(&mut n[0].hub, 1);
    so(&mut n[0].hub, 1, true, SoOp::Use);
    for k in 0..5 {
        so(&mut n[0].hub, 1, true, set("k", k as f64));
    }
    pump_all(&mut n);
    // A fresh node (a restart after every node died): the log is the record.
    let mut late = nodes(1, &log);
    pump_all(&mut late);
    connect(&mut late[0].hub, 7);
    so(&mut late[0].hub, 7, true, SoOp::Use);
    let got = drain(&mut late[0].hub, 7);
    assert_eq!(
        got,
        vec![(
            5,
            vec![
                SoNotice::UseSuccess,
                SoNotice::Clear,
                SoNotice::Change {
                    key: "k".into(),
                    value: Value::Number(4.0)
                }
            ]
        )]
    );
}

#[test]
fn offline_nodes_refuse_writes_and_catch_up_when_back() {
    let log = MemorySequencer::new();
    let mut n = nodes(2, &log);
    for (i, node) in n.iter_mut().enumerate() {
        connect(&mut node.hub, i as u64 + 1);
        so(&mut node.hub, i as u64 + 1, false, SoOp::Use);
        drain(&mut node.hub, i as u64 + 1);
    }
    n[1].bus.set_online(false);
    pump_all(&mut n);
    so(&mut n[1].hub, 2, false, set("x", 1.0));
    let got = drain(&mut n[1].hub, 2);
    assert!(matches!(
        got.as_slice(),
        [(0, ns)] if ns == &vec![SoNotice::Status { code: status::NO_WRITE_ACCESS, level: "error" }]
    ));
    // Meanwhile node 0 writes; node 1 sees nothing until its link is back.
    so(&mut n[0].hub, 1, false, set("y", 1.0));
    so(&mut n[0].hub, 1, false, set("y", 2.0));
    pump_all(&mut n);
    assert!(drain(&mut n[1].hub, 2).is_empty());
    n[1].bus.set_online(true);
    pump_all(&mut n);
    let versions: Vec<u32> = drain(&mut n[1].hub, 2).iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, vec![1, 2]);
    so(&mut n[1].hub, 2, false, set("x", 1.0));
    pump_all(&mut n);
    assert_eq!(drain(&mut n[0].hub, 1).len(), 3, "two successes and x");
}

#[test]
fn a_proposal_the_bus_refuses_is_refused_to_its_writer() {
    let log = MemorySequencer::new();
    let mut n = nodes(1, &log);
    connect(&mut n[0].hub, 1);
    so(&mut n[0].hub, 1, false, SoOp::Use);
    drain(&mut n[0].hub, 1);
    so(&mut n[0].hub, 1, false, set("x", 1.0));
    // The link drops after the hub proposed but before the bus took it.
    n[0].bus.set_online(false);
    pump_all(&mut n);
    let got = drain(&mut n[0].hub, 1);
    assert_eq!(got.len(), 1);
    assert!(
        matches!(&got[0].1[..], [SoNotice::Status { code, .. }] if *code == status::NO_WRITE_ACCESS)
    );
    assert_eq!(n[0].hub.pending_writes(), 0);
    assert!(log.borrow().is_empty());
}

#[test]
fn limits_are_checked_again_in_sequence_order_on_every_node() {
    let log = MemorySequencer::new();
    let mut config = HubConfig::default();
    config.shared_objects.max_keys = 1;
    let mut n: Vec<Node> = (0..2)
        .map(|i| {
            let mut hub = Hub::new(config.clone());
            hub.join_cluster(alloc::format!("n{i}"));
            hub.set_bus_online(true);
            Node {
                hub,
                bus: MemoryBus::new(&log),
            }
        })
        .collect();
    for (i, node) in n.iter_mut().enumerate() {
        connect(&mut node.hub, i as u64 + 1);
        so(&mut node.hub, i as u64 + 1, false, SoOp::Use);
        drain(&mut node.hub, i as u64 + 1);
    }
    // Each passes the check on its own node; together they break max_keys.
    so(&mut n[0].hub, 1, false, set("a", 1.0));
    so(&mut n[1].hub, 2, false, set("b", 1.0));
    pump_all(&mut n);
    let first = drain(&mut n[0].hub, 1);
    let second = drain(&mut n[1].hub, 2);
    assert!(matches!(&first[..], [(1, ns)] if matches!(&ns[..], [SoNotice::Success { .. }])));
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(matches!(&second[0].1[..], [SoNotice::Change { .. }]));
    assert!(
        matches!(&second[1].1[..], [SoNotice::Status { code, .. }] if *code == status::NO_WRITE_ACCESS)
    );
    for node in &n {
        let (v, data) = node.hub.shared_object_data(&scope(), "board").unwrap();
        assert_eq!((v, data.len()), (1, 1));
    }
}

#[test]
fn redelivered_and_unreadable_messages_change_nothing() {
    let log = MemorySequencer::new();
    let mut n = nodes(1, &log);
    connect(&mut n[0].hub, 1);
    so(&mut n[0].hub, 1, false, SoOp::Use);
    drain(&mut n[0].hub, 1);
    so(&mut n[0].hub, 1, false, set("x", 1.0));
    let p = n[0].hub.poll_proposal().unwrap();
    n[0].hub.apply_sequenced(T, 1, &p.payload);
    n[0].hub.apply_sequenced(T, 1, &p.payload);
    n[0].hub.apply_sequenced(T, 2, &[0xff, 0x00]);
    assert_eq!(drain(&mut n[0].hub, 1).len(), 1);
    assert_eq!(n[0].hub.last_sequence(), 2);
    assert!(
        core::iter::from_fn(|| n[0].hub.poll_event())
            .any(|e| matches!(e, crate::hub::HubEvent::Cluster { .. }))
    );
}

/// A room stays while another node's presence says it is in use, and goes
/// `room_idle` after the last node let go of it (docs/cluster.md, "Rooms
/// across nodes").
#[test]
fn a_room_lives_while_any_node_uses_it() {
    let log = MemorySequencer::new();
    let mut ns = nodes(1, &log);
    let hub = &mut ns[0].hub;
    let room = crate::scope_path::ScopePath::resolve("chat/room", 8).unwrap();
    let at = |s: u64| Instant::from_millis(s * 1000);
    let has_room = |hub: &Hub| hub.scopes().any(|s| *s.path == room);
    connect(hub, 1);
    assert_eq!(hub.local_rooms(), vec![(room.clone(), 1)]);
    hub.set_remote_rooms(T, "node1", vec![(room.clone(), 2)]);
    let view = hub.cluster_rooms("node0");
    assert_eq!(view.len(), 1);
    assert_eq!(view[0].connections(), 3);
    assert_eq!(view[0].nodes.get("node1"), Some(&2));
    hub.handle(at(1), ConnId(1), Request::Disconnect);
    assert!(hub.local_rooms().is_empty());
    // Empty here past room_idle (60 s), in use on node1: kept.
    hub.handle_timeout(at(100));
    assert!(has_room(hub), "expired while node1 uses it");
    // node1 lets go at 110 s: the idle clock starts then.
    hub.set_remote_rooms(at(110), "node1", vec![]);
    assert!(hub.cluster_rooms("node0").is_empty());
    hub.handle_timeout(at(160));
    assert!(
        has_room(hub),
        "expired before room_idle after the last node"
    );
    hub.handle_timeout(at(171));
    assert!(
        !has_room(hub),
        "not expired room_idle after the last node let go"
    );
}

/// `max_connections_per_scope` counts the connections other nodes'
/// presence reports (docs/cluster.md, "Rooms across nodes").
#[test]
fn the_connection_cap_of_a_room_counts_every_node() {
    let log = MemorySequencer::new();
    let mut ns = nodes(1, &log);
    let hub = &mut ns[0].hub;
    let room = crate::scope_path::ScopePath::resolve("chat/room", 8).unwrap();
    let cap = HubConfig::default().max_connections_per_scope;
    let open = |hub: &Hub| hub.connections().count();
    connect(hub, 1);
    assert_eq!(open(hub), 1);
    // Another node holds all but one place: this node's second is refused.
    hub.set_remote_rooms(T, "node1", vec![(room.clone(), (cap - 2) as u64)]);
    connect(hub, 2);
    assert_eq!(open(hub), 2, "the last place was refused");
    connect(hub, 3);
    assert_eq!(
        open(hub),
        2,
        "a connection beyond the cluster-wide cap was let in"
    );
    // The other node's clients leave: there is room again.
    hub.set_remote_rooms(T, "node1", vec![]);
    connect(hub, 4);
    assert_eq!(open(hub), 3);
}
