//! The scenario builder and the driver that runs one seed of it.
//!
//! A [`Scenario`] says who connects where and does what, which faults hit
//! and how the server is tuned. [`Scenario::run`] plans it for one seed
//! (random operations and faults come from the seed only), runs it in
//! turmoil with runtime-std's real server on the `server` host, and checks
//! the invariants (see the crate docs) into a [`Report`].
//!
//! Every run has the same phases ([`Timeline`]): clients connect in the
//! first half second; operations and faults until `ops_end`; a settling
//! period in which every client must recover (reconnect, re-sync); the
//! check (clients record their views, the observer reads `/api/stats`);
//! everyone leaves; and after `room_idle` the observer checks that only
//! the apps are left.

use crate::client::{
    Client, ClientShared, ClientSpec, Op, Ops, Role, Timeline, Transport, sim_now,
};
use crate::fnv::Fnv1a;
use crate::http::{StatsView, fetch_stats};
use crate::net::{OBSERVER, SERVER};
use crate::report::{Report, Totals, Violation, ViolationKind};
use crate::rng::SimRng;
use crate::server::{self, ServerTuning};
use crate::so_view::SubState;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;
use tern_core::amf0::Value;
use tern_core::hub::store::Store;
use tern_core::scope_path::ScopePath;

/// A fault the driver applies between simulation steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Cuts the link between a client and the server (segments in flight
    /// and sent meanwhile are lost; turmoil's TCP does not retransmit, so
    /// the connection is dead even after the repair).
    Partition {
        /// Client index.
        client: usize,
        /// Until the repair.
        for_: Duration,
    },
    /// Holds every segment between a client and the server, then releases
    /// them (nothing is lost; everything arrives late).
    Hold {
        /// Client index.
        client: usize,
        /// Until the release.
        for_: Duration,
    },
    /// The client stops reading (and writing).
    StopReading {
        /// Client index.
        client: usize,
        /// How long.
        for_: Duration,
    },
    /// Crashes the server host, then bounces it: the new process starts
    /// from the same store directory.
    Crash {
        /// Down time.
        down_for: Duration,
    },
}

impl Fault {
    fn label(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Hold { .. } => "hold",
            Fault::StopReading { .. } => "stop-reading",
            Fault::Crash { .. } => "crash",
        }
    }
}

/// Which faults a run gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultPlan {
    /// These, at these times.
    Script(Vec<(Duration, Fault)>),
    /// `count` faults drawn from the seed (partitions, holds, stop-reading
    /// and at most one crash), at random times between 1 s and 3.5 s
    /// before the end of the operations, never two at once on one client.
    Random {
        /// How many.
        count: usize,
    },
}

/// A bug in the server that the simulator found. While such a bug is open,
/// a scenario may tolerate its symptoms ([`Scenario::tolerate`]) so that
/// sweeps keep checking everything else; tolerated violations are still
/// listed in the report ([`Report::tolerated`]). Both bugs below are fixed:
/// no scenario tolerates them, and `tests/regressions.rs` runs the
/// scenarios that showed them, untolerated. The variants stay as the names
/// of their symptoms, should either come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// Fixed. core hub: cached sequence headers (and metadata) were
    /// delivered to late joiners, and re-sent after a cut-back, with the
    /// timestamps they were published with. Players saw timestamps go
    /// backwards, and the outbox measured the stream's whole age as lag: a
    /// player joining a stream older than `max_lag_ms` was cut back on
    /// every push and disconnected as "too slow" before it read a byte.
    /// Symptoms: `HeaderTimestampBackwards`, `UnfairDisconnect`, and
    /// `NotRecovered` of the players it keeps disconnecting.
    StaleHeaderTimestamps,
    /// Fixed. runtime-std `server::run_rtmp` awaited `write_all` with no
    /// timeout: a peer that vanished (or never reads) pinned its connection
    /// task forever — ping timeouts and the hub's close could not reach it
    /// — so the socket, the task and the hub's connection entry leaked.
    /// Symptoms: `LeakedConnection`, ghost subscribers (`SoView`), and
    /// `NotIdle` when a connection leaked (its scope, stream and objects
    /// stay in use).
    BlockedWriterNeverDropped,
}

impl Known {
    /// True if `v` is a symptom; `all` is every violation of the run (a
    /// symptom may depend on another one of the same client).
    fn matches(self, v: &Violation, all: &[Violation]) -> bool {
        match self {
            Known::StaleHeaderTimestamps => match v.kind {
                ViolationKind::HeaderTimestampBackwards | ViolationKind::UnfairDisconnect => true,
                ViolationKind::NotRecovered => all
                    .iter()
                    .any(|u| u.kind == ViolationKind::UnfairDisconnect && u.who == v.who),
                _ => false,
            },
            Known::BlockedWriterNeverDropped => match v.kind {
                ViolationKind::LeakedConnection => true,
                ViolationKind::SoView => v.detail.contains("ghost"),
                // What a pinned connection keeps alive in the hub.
                ViolationKind::NotIdle => all
                    .iter()
                    .any(|u| u.kind == ViolationKind::LeakedConnection),
                _ => false,
            },
        }
    }
}

/// A scenario: clients, faults, server tuning and timing. Build it once,
/// [`run`](Self::run) it for as many seeds as you like.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    name: String,
    test: (String, String),
    clients: Vec<ClientSpec>,
    faults: FaultPlan,
    tuning: ServerTuning,
    timeline: Timeline,
    tick: Duration,
    max_latency: Duration,
    tcp_capacity: Option<usize>,
    tolerate: Vec<Known>,
    log_events: bool,
}

impl Scenario {
    /// An empty scenario called `name`, with the default timeline (8 s of
    /// operations and faults, the check at 13.5 s, everyone leaves at 14 s,
    /// the idle check at 17 s).
    pub fn new(name: &str) -> Scenario {
        Scenario {
            name: name.to_owned(),
            test: ("scenarios".to_owned(), name.to_owned()),
            clients: Vec::new(),
            faults: FaultPlan::Script(Vec::new()),
            tuning: ServerTuning::default(),
            timeline: Timeline {
                ops_end: Duration::from_secs(8),
                check_at: Duration::from_millis(13_500),
                leave_at: Duration::from_secs(14),
                idle_check_at: Duration::from_secs(17),
            },
            tick: Duration::from_millis(10),
            max_latency: Duration::from_millis(20),
            tcp_capacity: None,
            tolerate: Vec::new(),
            log_events: false,
        }
    }

    /// `clients` clients spread over `rooms` rooms: one publisher of `cam`
    /// per room, every third other client a player, the rest chat only —
    /// and of those, two in five (the 1st, 4th, 6th, 9th, … chat client)
    /// speak WebSocket, the others RTMP. Everyone uses `chat` (transient)
    /// and `board` (persistent) and does random operations; faults are
    /// [`FaultPlan::Random`] with one fault per five clients, on any kind
    /// of client.
    pub fn mixed(name: &str, clients: usize, rooms: usize) -> Scenario {
        let rooms = rooms.max(1);
        let mut scenario = Scenario::new(name).faults(FaultPlan::Random {
            count: clients.div_ceil(5),
        });
        let mut chat = 0;
        for i in 0..clients {
            let room = format!("r{}", i % rooms);
            let spec = if i < rooms {
                ClientSpec::publisher(&room, "cam").random_ops(Duration::from_millis(1500))
            } else if (i / rooms) % 3 == 1 {
                ClientSpec::player(&room, "cam").random_ops(Duration::from_millis(1200))
            } else {
                let spec = ClientSpec::chat(&room).random_ops(Duration::from_millis(600));
                let ws = (chat * 2) % 5 < 2;
                chat += 1;
                if ws {
                    spec.transport(Transport::WebSocket)
                } else {
                    spec
                }
            };
            scenario = scenario.client(spec);
        }
        scenario
    }

    /// The test that runs this scenario, for the reproduction command
    /// (`cargo test -p tern-sim --test <file> <function>`).
    pub fn test(mut self, file: &str, function: &str) -> Scenario {
        self.test = (file.to_owned(), function.to_owned());
        self
    }

    /// Adds a client.
    pub fn client(mut self, spec: ClientSpec) -> Scenario {
        self.clients.push(spec);
        self
    }

    /// Replaces the fault plan.
    pub fn faults(mut self, plan: FaultPlan) -> Scenario {
        self.faults = plan;
        self
    }

    /// Adds a scripted fault (turning a random plan into a script).
    pub fn fault(mut self, at: Duration, fault: Fault) -> Scenario {
        match &mut self.faults {
            FaultPlan::Script(list) => list.push((at, fault)),
            FaultPlan::Random { .. } => self.faults = FaultPlan::Script(vec![(at, fault)]),
        }
        self
    }

    /// Server tuning.
    pub fn tuning(mut self, tuning: ServerTuning) -> Scenario {
        self.tuning = tuning;
        self
    }

    /// Replaces the timeline (keep its phases in order, with time between
    /// `ops_end` and `check_at` for clients to recover).
    pub fn timeline(mut self, timeline: Timeline) -> Scenario {
        self.timeline = timeline;
        self
    }

    /// Link latencies are drawn per client, fixed for the run, between
    /// 1 ms and `max` (default 20 ms).
    pub fn max_latency(mut self, max: Duration) -> Scenario {
        self.max_latency = max;
        self
    }

    /// Segments (writes) a simulated TCP connection holds unread before the
    /// sender's writes block (turmoil's `tcp_capacity`, default 64): the
    /// socket buffer below the server's queues, which nothing can
    /// overtake. A small one models a server socket with a small send
    /// buffer (or `TCP_NOTSENT_LOWAT`).
    pub fn tcp_capacity(mut self, segments: usize) -> Scenario {
        self.tcp_capacity = Some(segments);
        self
    }

    /// Tolerates the symptom of a known, reported bug.
    pub fn tolerate(mut self, known: Known) -> Scenario {
        self.tolerate.push(known);
        self
    }

    /// Keeps every client's events in words ([`Report::logs`]), for
    /// finding out what happened in a failing seed.
    pub fn log_events(mut self, on: bool) -> Scenario {
        self.log_events = on;
        self
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

    /// The clients.
    pub fn clients(&self) -> &[ClientSpec] {
        &self.clients
    }

    /// The phases of a run.
    pub fn phases(&self) -> Timeline {
        self.timeline
    }

    /// Client `i`'s host name.
    pub fn client_name(i: usize) -> String {
        format!("c{i}")
    }

    /// The faults of `seed`, in time order.
    pub fn plan_faults(&self, seed: u64) -> Vec<(Duration, Fault)> {
        let mut faults = match &self.faults {
            FaultPlan::Script(list) => list.clone(),
            FaultPlan::Random { count } => self.random_faults(seed, *count),
        };
        faults.sort_by_key(|(at, _)| *at);
        faults
    }

    fn random_faults(&self, seed: u64, count: usize) -> Vec<(Duration, Fault)> {
        let mut rng = SimRng::fork(seed, 0xFA17);
        let n = self.clients.len() as u64;
        let mut busy_until = vec![Duration::ZERO; self.clients.len()];
        let mut crashed = false;
        let mut out = Vec::new();
        let latest = ms(self.timeline.ops_end).saturating_sub(3_500).max(1_000);
        for _ in 0..count {
            let at = Duration::from_millis(rng.range(1_000, latest));
            let kind = rng.below(if crashed { 3 } else { 4 });
            if kind == 3 {
                crashed = true;
                let down_for = Duration::from_millis(rng.range(300, 1_500));
                out.push((at, Fault::Crash { down_for }));
                continue;
            }
            let for_ = Duration::from_millis(match kind {
                0 => rng.range(500, 3_000),
                1 => rng.range(200, 1_200),
                _ => rng.range(500, 3_000),
            });
            for _try in 0..10 {
                let client = rng.below(n) as usize;
                let free = busy_until.get(client).is_some_and(|b| *b <= at);
                let publisher = matches!(
                    self.clients.get(client).map(|c| &c.role),
                    Some(Role::Publisher { .. })
                );
                if !free || (kind == 2 && publisher) {
                    continue;
                }
                if let Some(b) = busy_until.get_mut(client) {
                    *b = at + for_ + Duration::from_millis(500);
                }
                out.push((
                    at,
                    match kind {
                        0 => Fault::Partition { client, for_ },
                        1 => Fault::Hold { client, for_ },
                        _ => Fault::StopReading { client, for_ },
                    },
                ));
                break;
            }
        }
        out
    }

    /// Client `index`'s operations for `seed`.
    pub fn plan_ops(&self, seed: u64, index: usize) -> Vec<(Duration, Op)> {
        let Some(spec) = self.clients.get(index) else {
            return Vec::new();
        };
        match &spec.ops {
            Ops::Idle => Vec::new(),
            Ops::Script(steps) => {
                let mut steps = steps.clone();
                steps.sort_by_key(|(at, _)| *at);
                steps
            }
            Ops::Random { .. } => plan_random_ops(spec, seed, index, self.timeline.ops_end),
        }
    }

    /// Runs the scenario for `seed` and checks it.
    ///
    /// # Panics
    /// If a WebSocket client publishes or plays (WebSocket clients use
    /// shared objects only).
    pub fn run(&self, seed: u64) -> Report {
        for (i, spec) in self.clients.iter().enumerate() {
            assert!(
                spec.transport == Transport::Rtmp || spec.role == Role::Chat,
                "client {i}: WebSocket clients do not publish or play"
            );
        }
        crate::panics::install();
        crate::panics::take();
        let dir = store_dir();
        let timeline = self.timeline;
        let mut builder = turmoil::Builder::new();
        builder
            .rng_seed(seed)
            .simulation_duration(timeline.idle_check_at + Duration::from_secs(10))
            .tick_duration(self.tick)
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(Duration::from_millis(1));
        if let Some(segments) = self.tcp_capacity {
            builder.tcp_capacity(segments);
        }
        let mut sim = builder.build();
        sim.host(
            SERVER,
            server::host(self.tuning.clone(), dir.path().to_owned()),
        );
        let mut shared = Vec::new();
        let mut rng_latency = SimRng::fork(seed, 0x1A7E);
        for (i, spec) in self.clients.iter().enumerate() {
            let mut spec = spec.clone();
            let mut rng = SimRng::fork(seed, 0x5EED_0000 + i as u64);
            if spec.start.is_none() {
                spec.start = Some(Duration::from_millis(rng.range(0, 500)));
            }
            let state = Rc::new(RefCell::new(ClientShared {
                log_events: self.log_events,
                ..ClientShared::default()
            }));
            let ops = self.plan_ops(seed, i);
            let client = Client::new(
                i,
                Self::client_name(i),
                spec,
                ops,
                timeline,
                rng,
                Rc::clone(&state),
            );
            sim.client(client.name.clone(), client.run());
            // A fixed latency per link, drawn from the seed: clients see
            // the server at different distances, but no draw depends on
            // how many segments a connection happened to send.
            let latency = rng_latency.range(1, ms(self.max_latency).max(1));
            sim.set_link_latency(Self::client_name(i), SERVER, Duration::from_millis(latency));
            shared.push(state);
        }
        let observer = Rc::new(RefCell::new(ObserverLog::default()));
        sim.client(OBSERVER, observe(timeline, Rc::clone(&observer)));

        let mut actions = Vec::new();
        for (at, fault) in self.plan_faults(seed) {
            let (start, end, until) = match fault {
                Fault::Partition { client, for_ } => {
                    (Action::Partition(client), Action::Repair(client), for_)
                }
                Fault::Hold { client, for_ } => {
                    (Action::Hold(client), Action::Release(client), for_)
                }
                Fault::StopReading { client, for_ } => {
                    (Action::Pause(client), Action::Resume(client), for_)
                }
                Fault::Crash { down_for } => (Action::Crash, Action::Bounce, down_for),
            };
            actions.push((at, start));
            actions.push((at + until, end));
        }
        actions.sort_by_key(|(at, _)| *at);
        let mut actions = std::collections::VecDeque::from(actions);

        let mut failure = None;
        loop {
            let now = sim.elapsed();
            while actions.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, action)) = actions.pop_front() {
                    action.apply(&mut sim, &shared);
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
        if let Some((at_ms, error)) = failure {
            violations.push(Violation {
                at_ms,
                who: "sim".to_owned(),
                kind: ViolationKind::SimFailed,
                detail: error,
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
        let observations: Vec<_> = shared.iter().map(|s| s.borrow().obs.clone()).collect();
        for obs in &observations {
            violations.extend(obs.violations.iter().cloned());
        }
        let log = observer.borrow().clone();
        self.check_views(&observations, &log, dir.path(), &mut violations);
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
            totals.frames_delivered += obs.frames;
            totals.frames_dropped += obs.dropped;
            totals.max_gap = totals.max_gap.max(obs.max_gap);
            totals.reconnects += obs.lost;
            totals.stamps_delivered += obs.stamp_latencies_ms.len() as u64;
            let slowest = obs.stamp_latencies_ms.iter().copied().max();
            totals.max_stamp_latency_ms = totals.max_stamp_latency_ms.max(slowest.unwrap_or(0));
            totals.publish_notifies += obs.publish_notifies;
            totals.unpublish_notifies += obs.unpublish_notifies;
        }
        if let Some(Ok(stats)) = &log.at_check {
            totals.server_dropped = stats.media_dropped;
            totals.lag_disconnects = stats.lag_disconnects;
        }
        violations.sort_by_key(|v| v.at_ms);
        let all = violations.clone();
        let (tolerated, violations): (Vec<_>, Vec<_>) = violations
            .into_iter()
            .partition(|v| self.tolerate.iter().any(|k| k.matches(v, &all)));
        Report {
            scenario: self.name.clone(),
            seed,
            trace_hash: hash.finish(),
            timed_hash: timed_hash.finish(),
            violations,
            tolerated,
            totals,
            repro: self.repro(seed),
            stamp_latencies_ms: observations
                .iter()
                .map(|o| o.stamp_latencies_ms.clone())
                .collect(),
            logs: observations.into_iter().map(|o| o.log).collect(),
        }
    }

    /// Every subscriber's view equals the server's, at the check.
    fn check_views(
        &self,
        observations: &[crate::client::Observations],
        log: &ObserverLog,
        store_dir: &Path,
        out: &mut Vec<Violation>,
    ) {
        let at_ms = ms(self.timeline.check_at);
        let violation = |who: &str, kind, detail: String| Violation {
            at_ms,
            who: who.to_owned(),
            kind,
            detail,
        };
        // (room, object) → (client, version, data) of every synced view.
        type View<'a> = (String, u32, &'a BTreeMap<String, Value>);
        let mut groups: BTreeMap<(String, String, bool), Vec<View<'_>>> = BTreeMap::new();
        // Rooms with slow readers: their views trail the server by their
        // backlog, so the server's subscriber count cannot be matched.
        let mut slow_rooms: Vec<&str> = Vec::new();
        for (i, (obs, spec)) in observations.iter().zip(&self.clients).enumerate() {
            let who = Self::client_name(i);
            if spec.read_rate.is_some() {
                // A slow reader is seconds behind by design: its changes
                // are checked one by one as they arrive, not at the check.
                slow_rooms.push(&spec.room);
                continue;
            }
            let Some(snapshot) = &obs.snapshot else {
                out.push(violation(
                    &who,
                    ViolationKind::NotRecovered,
                    "no view recorded at the check".to_owned(),
                ));
                continue;
            };
            if !snapshot.connected {
                out.push(violation(
                    &who,
                    ViolationKind::NotRecovered,
                    "not connected at the check".to_owned(),
                ));
                continue;
            }
            for o in &snapshot.objects {
                if o.wanted && o.state != SubState::Synced {
                    out.push(violation(
                        &who,
                        ViolationKind::NotRecovered,
                        format!("{}: not synced at the check ({:?})", o.name, o.state),
                    ));
                }
                if o.state == SubState::Synced {
                    if o.pending_writes > 0 {
                        out.push(violation(
                            &who,
                            ViolationKind::WriteUnanswered,
                            format!("{}: {} write(s) never answered", o.name, o.pending_writes),
                        ));
                    }
                    groups
                        .entry((spec.room.clone(), o.name.clone(), o.persistent))
                        .or_default()
                        .push((who.clone(), o.version, &o.data));
                }
            }
        }
        let stats = match &log.at_check {
            Some(Ok(stats)) => stats,
            Some(Err(e)) => {
                out.push(violation(
                    OBSERVER,
                    ViolationKind::Stats,
                    format!("at the check: {e}"),
                ));
                return;
            }
            None => {
                out.push(violation(
                    OBSERVER,
                    ViolationKind::Stats,
                    "no stats at the check".to_owned(),
                ));
                return;
            }
        };
        let mut store = tern_runtime_std::file_store::FileStore::new(store_dir);
        for ((room, name, persistent), views) in &groups {
            let scope = format!("/live/{room}");
            let Some(server) = stats.object(&scope, name) else {
                out.push(violation(
                    SERVER,
                    ViolationKind::SoView,
                    format!(
                        "{scope} {name}: {} subscriber(s) but the server has no such object",
                        views.len()
                    ),
                ));
                continue;
            };
            if !slow_rooms.contains(&room.as_str()) && server.subscribers != views.len() as u64 {
                let who: Vec<&str> = views.iter().map(|v| v.0.as_str()).collect();
                out.push(violation(
                    SERVER,
                    ViolationKind::SoView,
                    format!(
                        "{scope} {name}: server counts {} subscriber(s), {} client(s) are subscribed ({}){}",
                        server.subscribers,
                        views.len(),
                        who.join(","),
                        if server.subscribers > views.len() as u64 { " — ghost subscriber(s)" } else { "" }
                    ),
                ));
            }
            for (who, version, _) in views {
                if *version != server.version {
                    out.push(violation(
                        who,
                        ViolationKind::SoView,
                        format!(
                            "{scope} {name}: view at version {version}, server at {}",
                            server.version
                        ),
                    ));
                }
            }
            if let Some((first, _, data)) = views.first() {
                for (who, _, other) in views.iter().skip(1) {
                    if other != data {
                        out.push(violation(
                            who,
                            ViolationKind::SoView,
                            format!(
                                "{scope} {name}: data differs from {first}'s: {}",
                                diff(data, other)
                            ),
                        ));
                    }
                }
                if *persistent {
                    let stored = ScopePath::resolve(&format!("live/{room}"), 8)
                        .ok()
                        .and_then(|path| store.load(&path, name).ok().flatten());
                    match stored {
                        Some(stored) if stored.version == server.version && &stored.data == *data => {}
                        Some(stored) => out.push(violation(
                            SERVER,
                            ViolationKind::SoView,
                            format!(
                                "{scope} {name}: store has version {} ({}), server {} and {first} {}",
                                stored.version,
                                diff(data, &stored.data),
                                server.version,
                                views.first().map_or(0, |v| v.1)
                            ),
                        )),
                        None if server.version == 0 => {}
                        None => out.push(violation(
                            SERVER,
                            ViolationKind::SoView,
                            format!("{scope} {name}: persistent at version {} but not in the store", server.version),
                        )),
                    }
                }
            }
        }
    }

    /// After everyone left and `room_idle` passed, only the apps remain.
    fn check_idle(&self, log: &ObserverLog, out: &mut Vec<Violation>) {
        let at_ms = ms(self.timeline.idle_check_at);
        let mut fail = |kind, detail: String| {
            out.push(Violation {
                at_ms,
                who: SERVER.to_owned(),
                kind,
                detail,
            });
        };
        match &log.at_idle {
            Some(Ok(stats)) => {
                let rooms: Vec<&String> = stats
                    .scopes
                    .iter()
                    .filter(|s| s.matches('/').count() > 1)
                    .collect();
                if stats.rtmp_connections > 0 {
                    fail(
                        ViolationKind::LeakedConnection,
                        format!(
                            "the hub still has {} RTMP connection(s) after every client left",
                            stats.rtmp_connections
                        ),
                    );
                }
                if stats.ws_connections > 0 {
                    fail(
                        ViolationKind::LeakedConnection,
                        format!(
                            "the hub still has {} WebSocket connection(s) after every client left",
                            stats.ws_connections
                        ),
                    );
                }
                if !rooms.is_empty() {
                    fail(ViolationKind::NotIdle, format!("rooms left: {rooms:?}"));
                }
                if !stats.streams.is_empty() {
                    fail(
                        ViolationKind::NotIdle,
                        format!("streams left: {:?}", stats.streams),
                    );
                }
                if !stats.objects.is_empty() {
                    let names: Vec<String> = stats
                        .objects
                        .iter()
                        .map(|o| format!("{} {}", o.scope, o.name))
                        .collect();
                    fail(
                        ViolationKind::NotIdle,
                        format!("shared objects left: {names:?}"),
                    );
                }
            }
            Some(Err(e)) => fail(ViolationKind::Stats, format!("after everyone left: {e}")),
            None => fail(
                ViolationKind::Stats,
                "no stats after everyone left".to_owned(),
            ),
        }
        match log.server_streams_at_idle {
            Some(0) => {}
            Some(n) => fail(
                ViolationKind::LeakedConnection,
                format!("{n} TCP connection(s) still open on the server after every client left"),
            ),
            None => {}
        }
    }
}

/// A fresh store directory for one run: in memory (`/dev/shm`) where there
/// is one, since the file store fsyncs every change and simulated seconds
/// should not wait for a disk.
pub(crate) fn store_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix("tern-sim-");
        b
    };
    if shm.is_dir()
        && let Ok(dir) = builder().tempdir_in(shm)
    {
        return dir;
    }
    builder().tempdir().expect("a temporary store directory")
}

/// Client `index`'s operations for `seed` when its spec says
/// [`Ops::Random`] (nothing otherwise).
pub(crate) fn plan_random_ops(
    spec: &ClientSpec,
    seed: u64,
    index: usize,
    ops_end: Duration,
) -> Vec<(Duration, Op)> {
    match &spec.ops {
        Ops::Random { mean_gap } => {
            let mut rng = SimRng::fork(seed, 0x0C11_E700 + index as u64);
            random_ops(&mut rng, spec, index, ops_end, *mean_gap)
        }
        Ops::Script(steps) => {
            let mut steps = steps.clone();
            steps.sort_by_key(|(at, _)| *at);
            steps
        }
        Ops::Idle => Vec::new(),
    }
}

/// Random operations for one client, times fixed in advance.
fn random_ops(
    rng: &mut SimRng,
    spec: &ClientSpec,
    index: usize,
    ops_end: Duration,
    mean_gap: Duration,
) -> Vec<(Duration, Op)> {
    let mut out = Vec::new();
    if spec.objects.is_empty() {
        return out;
    }
    let end = ms(ops_end);
    let mean = ms(mean_gap).max(2);
    let mut t = ms(spec.start.unwrap_or_default()) + 300;
    let mut counter: u64 = 0;
    loop {
        t += rng.range(mean / 2, mean * 3 / 2);
        if t >= end {
            break;
        }
        counter += 1;
        let Some(object) = rng.pick(&spec.objects).map(|o| o.name.clone()) else {
            break;
        };
        let at = Duration::from_millis(t);
        let key = |rng: &mut SimRng| format!("k{}", rng.below(6));
        let roll = rng.below(100);
        let op = match roll {
            0..=49 => {
                let n = rng.range(1, 3);
                let changes = (0..n)
                    .map(|j| {
                        let v = (index as u64 * 1_000_000 + counter * 10 + j) as f64;
                        (key(rng), Value::Number(v))
                    })
                    .collect();
                Op::Set { object, changes }
            }
            50..=61 => Op::Delete {
                object,
                key: key(rng),
            },
            62..=76 => Op::Send {
                object,
                text: format!("c{index}#{counter}"),
            },
            77..=86 => {
                let back = t + rng.range(300, 1_500);
                if back >= end {
                    continue;
                }
                out.push((
                    Duration::from_millis(back),
                    Op::Use {
                        object: object.clone(),
                    },
                ));
                Op::Release { object }
            }
            87..=91 => {
                let away = rng.range(500, 2_000);
                if t + away + 1_000 >= end {
                    continue;
                }
                Op::Leave {
                    rejoin_after: Duration::from_millis(away),
                }
            }
            _ => Op::Set {
                object,
                changes: vec![(
                    "line".to_owned(),
                    Value::string(format!("c{index} says {counter}")),
                )],
            },
        };
        out.push((at, op));
    }
    out.sort_by_key(|(at, _)| *at);
    out
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A short description of how two attribute maps differ.
pub(crate) fn diff(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> String {
    let mut parts = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => parts.push(format!("{k} only in first")),
            Some(w) if w != v => parts.push(format!("{k}: {v:?} vs {w:?}")),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        parts.push(format!("{k} only in second"));
    }
    parts.join("; ")
}

/// One step of a fault.
#[derive(Clone, Copy, Debug)]
enum Action {
    Partition(usize),
    Repair(usize),
    Hold(usize),
    Release(usize),
    Pause(usize),
    Resume(usize),
    Crash,
    Bounce,
}

impl Action {
    fn apply(self, sim: &mut turmoil::Sim<'_>, shared: &[Rc<RefCell<ClientShared>>]) {
        let name = Scenario::client_name;
        match self {
            Action::Partition(c) => sim.partition(name(c), SERVER),
            Action::Repair(c) => sim.repair(name(c), SERVER),
            Action::Hold(c) => sim.hold(name(c), SERVER),
            Action::Release(c) => sim.release(name(c), SERVER),
            Action::Pause(c) | Action::Resume(c) => {
                if let Some(s) = shared.get(c) {
                    s.borrow_mut().paused = matches!(self, Action::Pause(_));
                }
            }
            Action::Crash => sim.crash(SERVER),
            Action::Bounce => sim.bounce(SERVER),
        }
    }
}

/// What the observer host saw.
#[derive(Clone, Debug, Default)]
struct ObserverLog {
    at_check: Option<Result<StatsView, String>>,
    at_idle: Option<Result<StatsView, String>>,
    server_streams_at_idle: Option<usize>,
}

async fn fetch_with_retry() -> Result<StatsView, String> {
    let mut last = Err("not tried".to_owned());
    for _ in 0..3 {
        last = fetch_stats().await;
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

async fn observe(timeline: Timeline, log: Rc<RefCell<ObserverLog>>) -> turmoil::Result {
    let until = |at: Duration| {
        let now = sim_now();
        tokio::time::sleep(at.saturating_sub(now))
    };
    until(timeline.check_at).await;
    let stats = fetch_with_retry().await;
    log.borrow_mut().at_check = Some(stats);
    until(timeline.idle_check_at).await;
    let open = turmoil::established_tcp_stream_count_on(SERVER);
    log.borrow_mut().server_streams_at_idle = Some(open);
    let stats = fetch_with_retry().await;
    log.borrow_mut().at_idle = Some(stats);
    Ok(())
}

/// The label of a fault plan for tables: the kinds it contains.
pub fn fault_label(faults: &[(Duration, Fault)]) -> String {
    if faults.is_empty() {
        return "none".to_owned();
    }
    let mut labels: Vec<&str> = faults.iter().map(|(_, f)| f.label()).collect();
    labels.dedup();
    labels.join("+")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ObjectSpec;

    #[test]
    fn plans_depend_on_the_seed_only() {
        let s = Scenario::mixed("t", 20, 3);
        assert_eq!(s.plan_faults(5), s.plan_faults(5));
        assert_ne!(s.plan_faults(5), s.plan_faults(6));
        assert_eq!(s.plan_ops(5, 7), s.plan_ops(5, 7));
        assert_ne!(s.plan_ops(5, 7), s.plan_ops(6, 7));
        let faults = s.plan_faults(5);
        assert_eq!(faults.len(), 4);
        for (at, _) in &faults {
            assert!(*at >= Duration::from_secs(1) && *at < s.timeline.ops_end);
        }
    }

    #[test]
    fn every_release_is_followed_by_a_use() {
        let s = Scenario::mixed("t", 20, 3);
        for seed in 0..20 {
            for i in 0..20 {
                let mut wanted = BTreeMap::new();
                for (_, op) in s.plan_ops(seed, i) {
                    match op {
                        Op::Use { object } => {
                            wanted.insert(object, true);
                        }
                        Op::Release { object } => {
                            wanted.insert(object, false);
                        }
                        _ => {}
                    }
                }
                assert!(wanted.values().all(|w| *w), "seed {seed} client {i}");
            }
        }
    }

    #[test]
    fn repro_names_the_test() {
        let s = Scenario::new("x").test("scenarios", "mixed_scenario_sweep");
        assert_eq!(
            s.repro(1234),
            "TERN_SIM_SEED=1234 cargo test -p tern-sim --test scenarios mixed_scenario_sweep"
        );
    }

    #[test]
    fn object_spec_constructors() {
        assert!(ObjectSpec::persistent("b").persistent);
        assert!(!ObjectSpec::transient("c").persistent);
    }
}
