//! Three tern nodes on one in-memory bus: the cluster scenario and its
//! cross-node checks (docs/cluster.md, "Simulation").
//!
//! The hosts `n0`, `n1`, `n2` each run runtime-std's real server
//! ([`server::cluster_host`]) joined to one [`SimSequencer`]. Chat clients,
//! RTMP and WebSocket, are spread over the nodes and all write; each
//! reconnects to the next node when its own cannot be reached. Faults
//! drawn from the seed: one node crash (turmoil crash, then bounce: the new
//! process replays the log), partitions between a node and the bus, and
//! partitions between a client and every node.
//!
//! Checked, besides every client's own rules ([`crate::so_view`]: each
//! version exactly once, a jump only at a fresh sync):
//! - one global order per object: every client that saw version `v` of an
//!   object as someone else's change saw the same change
//!   ([`check_order`]);
//! - identical final state: at the check every node's `/api/stats` has the
//!   same version of every object, every synced client view is at it and
//!   all views hold the same data; each node counts exactly the clients
//!   subscribed through it;
//! - writes are refused (`SharedObject.NoWriteAccess`) only while the
//!   writer's node is cut off from the bus (or just after), and nothing a
//!   cut-off node did diverges the state (the checks above);
//! - after everyone left, no node holds a connection, a stream or a
//!   subscriber. Rooms that hold objects stay: a clustered node keeps its
//!   replicas (docs/cluster.md, "Unused objects").

use crate::bus::SimSequencer;
use crate::checker;
use crate::client::{Client, ClientShared, ClientSpec, Observations, Timeline, Transport};
use crate::fnv::Fnv1a;
use crate::http::{StatsView, fetch_stats_from};
use crate::net::OBSERVER;
use crate::report::{Report, Totals, Violation, ViolationKind};
use crate::rng::SimRng;
use crate::server::{self, ServerTuning};
use crate::so_view::SubState;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tern_core::amf0::Value;

/// Nodes of every cluster run.
pub const NODES: usize = 3;

/// How long after a node's link to the bus is restored a refusal may
/// still arrive (it was sent while the link was down and travels back).
const REFUSAL_SLACK: Duration = Duration::from_millis(200);

/// Host name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("n{i}")
}

/// A fault of a cluster run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterFault {
    /// Crashes node `node`, then bounces it.
    NodeCrash {
        /// Which.
        node: usize,
        /// Down time.
        down_for: Duration,
    },
    /// Cuts node `node` off the bus.
    BusPartition {
        /// Which.
        node: usize,
        /// Until the link is back.
        for_: Duration,
    },
    /// Cuts client `client` off every node.
    ClientPartition {
        /// Which.
        client: usize,
        /// Until the repair.
        for_: Duration,
    },
}

/// Three nodes, chat clients on all of them, faults from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterScenario {
    name: String,
    test: (String, String),
    clients: Vec<ClientSpec>,
    tuning: ServerTuning,
    timeline: Timeline,
    max_latency: Duration,
}

impl ClusterScenario {
    /// `clients` chat clients in `rooms` rooms; client `i` lives on node
    /// `i % 3` (and falls back to the next ones); two in five speak
    /// WebSocket; all do random operations on `chat` (transient) and
    /// `board` (persistent).
    pub fn mixed(name: &str, clients: usize, rooms: usize) -> ClusterScenario {
        let rooms = rooms.max(1);
        let specs = (0..clients)
            .map(|i| {
                let nodes = (0..NODES).map(|k| node_name((i + k) % NODES)).collect();
                let spec = ClientSpec::chat(&format!("r{}", i % rooms))
                    .random_ops(Duration::from_millis(500))
                    .on_nodes(nodes);
                if (i * 2) % 5 < 2 {
                    spec.transport(Transport::WebSocket)
                } else {
                    spec
                }
            })
            .collect();
        ClusterScenario {
            name: name.to_owned(),
            test: ("cluster".to_owned(), name.to_owned()),
            clients: specs,
            tuning: ServerTuning::default(),
            timeline: Timeline {
                ops_end: Duration::from_secs(8),
                check_at: Duration::from_millis(13_500),
                leave_at: Duration::from_secs(14),
                idle_check_at: Duration::from_secs(17),
            },
            max_latency: Duration::from_millis(20),
        }
    }

    /// The test that runs it (for the reproduction command).
    pub fn test(mut self, file: &str, function: &str) -> ClusterScenario {
        self.test = (file.to_owned(), function.to_owned());
        self
    }

    /// The clients.
    pub fn clients(&self) -> &[ClientSpec] {
        &self.clients
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command that replays `seed`.
    pub fn repro(&self, seed: u64) -> String {
        format!(
            "TERN_SIM_SEED={seed} cargo test -p tern-sim --test {} {}",
            self.test.0, self.test.1
        )
    }

    /// The faults of `seed`, in time order: one node crash, two bus
    /// partitions (never of a node while it is down) and two client
    /// partitions, between 1 s and 3.5 s before the end of the operations.
    pub fn plan_faults(&self, seed: u64) -> Vec<(Duration, ClusterFault)> {
        let mut rng = SimRng::fork(seed, 0xC1_05_7E);
        let latest = ms(self.timeline.ops_end).saturating_sub(3_500).max(1_000);
        let mut out = Vec::new();
        let crashed = rng.below(NODES as u64) as usize;
        let crash_at = rng.range(1_000, latest);
        let down_for = rng.range(300, 1_500);
        out.push((
            Duration::from_millis(crash_at),
            ClusterFault::NodeCrash {
                node: crashed,
                down_for: Duration::from_millis(down_for),
            },
        ));
        for _ in 0..2 {
            let node = rng.below(NODES as u64) as usize;
            let at = rng.range(1_000, latest);
            let for_ = rng.range(300, 2_000);
            let overlaps = node == crashed && at < crash_at + down_for && crash_at < at + for_;
            if overlaps {
                continue;
            }
            out.push((
                Duration::from_millis(at),
                ClusterFault::BusPartition {
                    node,
                    for_: Duration::from_millis(for_),
                },
            ));
        }
        for _ in 0..2 {
            let client = rng.below(self.clients.len().max(1) as u64) as usize;
            let at = rng.range(1_000, latest);
            let for_ = rng.range(300, 2_000);
            out.push((
                Duration::from_millis(at),
                ClusterFault::ClientPartition {
                    client,
                    for_: Duration::from_millis(for_),
                },
            ));
        }
        out.sort_by_key(|(at, _)| *at);
        out
    }

    /// Runs one seed and checks it.
    pub fn run(&self, seed: u64) -> Report {
        crate::panics::install();
        crate::panics::take();
        let timeline = self.timeline;
        let mut sim = turmoil::Builder::new()
            .rng_seed(seed)
            .simulation_duration(timeline.idle_check_at + Duration::from_secs(10))
            .tick_duration(Duration::from_millis(10))
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(Duration::from_millis(1))
            .build();
        let sequencer = SimSequencer::new(NODES);
        let dirs: Vec<tempfile::TempDir> =
            (0..NODES).map(|_| crate::scenario::store_dir()).collect();
        for (n, dir) in dirs.iter().enumerate() {
            sim.host(
                node_name(n),
                server::cluster_host(
                    self.tuning.clone(),
                    dir.path().to_owned(),
                    sequencer.clone(),
                    n,
                ),
            );
        }
        let mut shared = Vec::new();
        let mut rng_latency = SimRng::fork(seed, 0x1A7E);
        for (i, spec) in self.clients.iter().enumerate() {
            let mut spec = spec.clone();
            let mut rng = SimRng::fork(seed, 0x5EED_0000 + i as u64);
            if spec.start.is_none() {
                spec.start = Some(Duration::from_millis(rng.range(0, 500)));
            }
            let state = Rc::new(RefCell::new(ClientShared::default()));
            let ops = crate::scenario::plan_random_ops(&spec, seed, i, timeline.ops_end);
            let name = crate::Scenario::client_name(i);
            let client = Client::new(i, name.clone(), spec, ops, timeline, rng, Rc::clone(&state));
            sim.client(name.clone(), client.run());
            for n in 0..NODES {
                let latency = rng_latency.range(1, ms(self.max_latency).max(1));
                sim.set_link_latency(name.clone(), node_name(n), Duration::from_millis(latency));
            }
            shared.push(state);
        }
        let observer = Rc::new(RefCell::new(ClusterLog::default()));
        sim.client(OBSERVER, observe(timeline, Rc::clone(&observer)));

        let faults = self.plan_faults(seed);
        let mut actions = Vec::new();
        // Per node: when its link to the bus was down.
        let mut cut: Vec<Vec<(u64, u64)>> = vec![Vec::new(); NODES];
        for (at, fault) in &faults {
            let (start, end, until) = match *fault {
                ClusterFault::NodeCrash { node, down_for } => {
                    (Action::Crash(node), Action::Bounce(node), down_for)
                }
                ClusterFault::BusPartition { node, for_ } => {
                    if let Some(c) = cut.get_mut(node) {
                        c.push((ms(*at), ms(*at + for_)));
                    }
                    (Action::Cut(node), Action::Restore(node), for_)
                }
                ClusterFault::ClientPartition { client, for_ } => {
                    (Action::Partition(client), Action::Repair(client), for_)
                }
            };
            actions.push((*at, start));
            actions.push((*at + until, end));
        }
        actions.sort_by_key(|(at, _)| *at);
        let mut actions = std::collections::VecDeque::from(actions);
        let mut failure = None;
        loop {
            let now = sim.elapsed();
            while actions.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, action)) = actions.pop_front() {
                    action.apply(&mut sim, &sequencer);
                }
            }
            match sim.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    failure = Some((ms(sim.elapsed()), e.to_string()));
                    break;
                }
            }
        }
        drop(sim);

        let mut violations = Vec::new();
        if let Some((at_ms, detail)) = failure {
            violations.push(Violation {
                at_ms,
                who: "sim".to_owned(),
                kind: ViolationKind::SimFailed,
                detail,
            });
        }
        for panic in crate::panics::take() {
            violations.push(Violation {
                at_ms: 0,
                who: "process".to_owned(),
                kind: ViolationKind::Panic,
                detail: panic,
            });
        }
        let observations: Vec<Observations> =
            shared.iter().map(|s| s.borrow().obs.clone()).collect();
        for obs in &observations {
            violations.extend(obs.violations.iter().cloned());
        }
        let log = observer.borrow().clone();
        let check_ms = ms(timeline.check_at);
        violations.extend(check_order(&self.clients, &observations, check_ms));
        violations.extend(check_refusals(&observations, &cut, check_ms));
        self.check_final(&observations, &log, &mut violations);
        self.check_idle(&log, &mut violations);

        let mut hash = Fnv1a::new();
        let mut timed_hash = Fnv1a::new();
        let mut totals = Totals::default();
        for (i, obs) in observations.iter().enumerate() {
            for (channel, h) in &obs.channels {
                hash.write_u64(i as u64);
                hash.write_str(channel);
                hash.write_u64(h.finish());
            }
            timed_hash.write_u64(i as u64);
            timed_hash.write_u64(obs.timed_hash.finish());
            totals.changes_delivered += obs.changes;
            totals.acks += obs.acks;
            totals.messages += obs.messages;
            totals.reconnects += obs.lost;
            totals.refusals += obs.refusals.len() as u64;
            let home = self.clients.get(i).and_then(|c| c.nodes.first());
            if let Some(snap) = &obs.snapshot
                && home.is_some_and(|h| *h != snap.host)
            {
                totals.moved += 1;
            }
        }
        hash.write_u64(sequencer.len() as u64);
        totals.sequenced = sequencer.len() as u64;
        violations.sort_by_key(|v| v.at_ms);
        Report {
            scenario: self.name.clone(),
            seed,
            trace_hash: hash.finish(),
            timed_hash: timed_hash.finish(),
            violations,
            tolerated: Vec::new(),
            totals,
            repro: self.repro(seed),
            stamp_latencies_ms: Vec::new(),
            logs: observations.into_iter().map(|o| o.log).collect(),
        }
    }

    /// Every node has every object at one version; every synced view is
    /// at it with one data; each node counts its own subscribers.
    fn check_final(
        &self,
        observations: &[Observations],
        log: &ClusterLog,
        out: &mut Vec<Violation>,
    ) {
        let at_ms = ms(self.timeline.check_at);
        let violation = |who: &str, kind, detail: String| Violation {
            at_ms,
            who: who.to_owned(),
            kind,
            detail,
        };
        let mut stats: Vec<(String, &StatsView)> = Vec::new();
        for n in 0..NODES {
            match log.at_check.get(n) {
                Some(Ok(s)) => stats.push((node_name(n), s)),
                Some(Err(e)) => out.push(violation(
                    &node_name(n),
                    ViolationKind::Stats,
                    format!("at the check: {e}"),
                )),
                None => out.push(violation(
                    &node_name(n),
                    ViolationKind::Stats,
                    "no stats at the check".to_owned(),
                )),
            }
        }
        // One version per object on every node.
        let mut versions: BTreeMap<(String, String), Vec<(String, u32)>> = BTreeMap::new();
        for (node, s) in &stats {
            for o in &s.objects {
                versions
                    .entry((o.scope.clone(), o.name.clone()))
                    .or_default()
                    .push((node.clone(), o.version));
            }
        }
        for ((scope, name), at) in &versions {
            let first = at.first().map_or(0, |a| a.1);
            if at.len() != stats.len() || at.iter().any(|a| a.1 != first) {
                out.push(violation(
                    OBSERVER,
                    ViolationKind::SoView,
                    format!("{scope} {name}: nodes disagree on the version: {at:?}"),
                ));
            }
        }
        // Synced views: (scope, name) → (client, host, version, data).
        type View<'a> = (String, String, u32, &'a BTreeMap<String, Value>);
        let mut groups: BTreeMap<(String, String), Vec<View<'_>>> = BTreeMap::new();
        for (i, (obs, spec)) in observations.iter().zip(&self.clients).enumerate() {
            let who = crate::Scenario::client_name(i);
            let Some(snap) = &obs.snapshot else {
                out.push(violation(
                    &who,
                    ViolationKind::NotRecovered,
                    "no snapshot at the check".to_owned(),
                ));
                continue;
            };
            if !snap.connected {
                out.push(violation(
                    &who,
                    ViolationKind::NotRecovered,
                    format!("not connected at the check (last tried {})", snap.host),
                ));
                continue;
            }
            for o in &snap.objects {
                if !o.wanted {
                    continue;
                }
                if o.state != SubState::Synced {
                    out.push(violation(
                        &who,
                        ViolationKind::NotRecovered,
                        format!("{} not synced at the check ({:?})", o.name, o.state),
                    ));
                    continue;
                }
                if o.pending_writes > 0 {
                    out.push(violation(
                        &who,
                        ViolationKind::WriteUnanswered,
                        format!(
                            "{}: {} write(s) unanswered at the check",
                            o.name, o.pending_writes
                        ),
                    ));
                }
                groups
                    .entry((format!("/live/{}", spec.room), o.name.clone()))
                    .or_default()
                    .push((who.clone(), snap.host.clone(), o.version, &o.data));
            }
        }
        for ((scope, name), views) in &groups {
            for (node, s) in &stats {
                let here = views.iter().filter(|v| &v.1 == node).count() as u64;
                let counted = s.object(scope, name).map_or(0, |o| o.subscribers);
                if here != counted {
                    out.push(violation(
                        node,
                        ViolationKind::SoView,
                        format!("{scope} {name}: node counts {counted} subscriber(s), {here} client(s) are subscribed through it"),
                    ));
                }
            }
            let server = versions
                .get(&(scope.clone(), name.clone()))
                .and_then(|at| at.first())
                .map(|a| a.1);
            for (who, host, version, _) in views {
                if Some(*version) != server {
                    out.push(violation(
                        who,
                        ViolationKind::SoView,
                        format!("{scope} {name}: view (on {host}) at version {version}, nodes at {server:?}"),
                    ));
                }
            }
            if let Some((first, _, _, data)) = views.first() {
                for (who, host, _, other) in views.iter().skip(1) {
                    if other != data {
                        out.push(violation(
                            who,
                            ViolationKind::SoView,
                            format!(
                                "{scope} {name}: data (on {host}) differs from {first}'s: {}",
                                crate::scenario::diff(data, other)
                            ),
                        ));
                    }
                }
            }
        }
    }

    /// After everyone left: no node holds a connection, a stream or a
    /// subscriber.
    fn check_idle(&self, log: &ClusterLog, out: &mut Vec<Violation>) {
        let at_ms = ms(self.timeline.idle_check_at);
        for n in 0..NODES {
            let node = node_name(n);
            let mut fail = |kind, detail: String| {
                out.push(Violation {
                    at_ms,
                    who: node.clone(),
                    kind,
                    detail,
                });
            };
            match log.at_idle.get(n) {
                Some(Ok(s)) => {
                    if s.rtmp_connections + s.ws_connections > 0 {
                        fail(
                            ViolationKind::LeakedConnection,
                            format!(
                                "{} RTMP and {} WebSocket connection(s) after every client left",
                                s.rtmp_connections, s.ws_connections
                            ),
                        );
                    }
                    if !s.streams.is_empty() {
                        fail(
                            ViolationKind::NotIdle,
                            format!("streams left: {:?}", s.streams),
                        );
                    }
                    let held: Vec<String> = s
                        .objects
                        .iter()
                        .filter(|o| o.subscribers > 0)
                        .map(|o| format!("{} {}", o.scope, o.name))
                        .collect();
                    if !held.is_empty() {
                        fail(
                            ViolationKind::NotIdle,
                            format!("objects still subscribed: {held:?}"),
                        );
                    }
                }
                Some(Err(e)) => fail(ViolationKind::Stats, format!("after everyone left: {e}")),
                None => fail(
                    ViolationKind::Stats,
                    "no stats after everyone left".to_owned(),
                ),
            }
            if let Some(open) = log.open_at_idle.get(n).copied().filter(|o| *o > 0) {
                fail(
                    ViolationKind::LeakedConnection,
                    format!("{open} TCP connection(s) still open after every client left"),
                );
            }
        }
    }
}

/// One global order per object: all clients that saw version `v` of an
/// object (as someone else's change) saw the same change
/// ([`checker::order_conflicts`] per room and object).
pub fn check_order(
    clients: &[ClientSpec],
    observations: &[Observations],
    at_ms: u64,
) -> Vec<Violation> {
    let names: Vec<String> = (0..observations.len())
        .map(crate::Scenario::client_name)
        .collect();
    type Steps<'a> = (&'a str, &'a BTreeMap<u32, u64>);
    let mut groups: BTreeMap<(&str, &str), Vec<Steps<'_>>> = BTreeMap::new();
    for ((obs, spec), who) in observations.iter().zip(clients).zip(&names) {
        for (name, steps) in &obs.steps {
            groups
                .entry((spec.room.as_str(), name.as_str()))
                .or_default()
                .push((who.as_str(), steps));
        }
    }
    let mut out = Vec::new();
    for ((room, name), views) in groups {
        for (who, detail) in checker::order_conflicts(views) {
            out.push(Violation {
                at_ms,
                who,
                kind: ViolationKind::SoVersion,
                detail: format!("{room}/{name} {detail}"),
            });
        }
    }
    out
}

/// Refusals only while the writer's node was cut off from the bus (plus
/// [`REFUSAL_SLACK`]). `cut[n]` lists node `n`'s cuts as (from, to) ms.
pub fn check_refusals(
    observations: &[Observations],
    cut: &[Vec<(u64, u64)>],
    at_ms: u64,
) -> Vec<Violation> {
    let slack = ms(REFUSAL_SLACK);
    let mut out = Vec::new();
    for (i, obs) in observations.iter().enumerate() {
        for (t, host) in &obs.refusals {
            let node = (0..NODES).find(|n| node_name(*n) == *host);
            let during = node.and_then(|n| cut.get(n)).is_some_and(|cuts| {
                cuts.iter()
                    .any(|(from, to)| *t >= *from && *t <= to + slack)
            });
            if !during {
                out.push(Violation {
                    at_ms: (*t).min(at_ms.max(*t)),
                    who: crate::Scenario::client_name(i),
                    kind: ViolationKind::SoRefused,
                    detail: format!(
                        "write refused by {host} at {t} ms, while it was linked to the bus"
                    ),
                });
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Crash(usize),
    Bounce(usize),
    Cut(usize),
    Restore(usize),
    Partition(usize),
    Repair(usize),
}

impl Action {
    fn apply(self, sim: &mut turmoil::Sim<'_>, sequencer: &SimSequencer) {
        match self {
            Action::Crash(n) => sim.crash(node_name(n)),
            Action::Bounce(n) => sim.bounce(node_name(n)),
            Action::Cut(n) => sequencer.set_online(n, false),
            Action::Restore(n) => sequencer.set_online(n, true),
            Action::Partition(c) => {
                for n in 0..NODES {
                    sim.partition(crate::Scenario::client_name(c), node_name(n));
                }
            }
            Action::Repair(c) => {
                for n in 0..NODES {
                    sim.repair(crate::Scenario::client_name(c), node_name(n));
                }
            }
        }
    }
}

/// What the observer saw, per node.
#[derive(Clone, Debug, Default)]
struct ClusterLog {
    at_check: Vec<Result<StatsView, String>>,
    at_idle: Vec<Result<StatsView, String>>,
    open_at_idle: Vec<usize>,
}

async fn fetch_with_retry(host: &str) -> Result<StatsView, String> {
    let mut last = Err("not tried".to_owned());
    for _ in 0..3 {
        last = fetch_stats_from(host).await;
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

async fn observe(timeline: Timeline, log: Rc<RefCell<ClusterLog>>) -> turmoil::Result {
    let until = |at: Duration| tokio::time::sleep(at.saturating_sub(crate::client::sim_now()));
    until(timeline.check_at).await;
    for n in 0..NODES {
        let stats = fetch_with_retry(&node_name(n)).await;
        log.borrow_mut().at_check.push(stats);
    }
    until(timeline.idle_check_at).await;
    for n in 0..NODES {
        let open = turmoil::established_tcp_stream_count_on(node_name(n));
        log.borrow_mut().open_at_idle.push(open);
    }
    for n in 0..NODES {
        let stats = fetch_with_retry(&node_name(n)).await;
        log.borrow_mut().at_idle.push(stats);
    }
    Ok(())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
