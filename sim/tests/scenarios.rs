//! The simulator's main tests: a seed sweep of a 20-client mixed scenario
//! with faults, determinism of traces, and a summary table.
//!
//! Replay one seed: `TERN_SIM_SEED=n cargo test -p tern-sim --test scenarios mixed_scenario_sweep`;
//! sweep more: `TERN_SIM_SEEDS=500 cargo test -p tern-sim --test scenarios mixed_scenario_sweep`.

use std::time::Duration;
use tern_sim::sweep::{assert_all_ok, sweep};
use tern_sim::{ClientSpec, Fault, ObjectSpec, Scenario, ServerTuning, Transport};

/// Seeds the sweep runs unless `TERN_SIM_SEED(S)` says otherwise.
const SWEEP_SEEDS: u64 = 50;

/// Tuning for sweeps: the simulator's defaults (small queues, 1.5 s lag
/// bound, 1 s room idle), so drops, cut-backs and expiry all happen within
/// a run.
fn sweep_tuning() -> ServerTuning {
    ServerTuning::default()
}

/// 20 clients in 3 rooms: 3 publishers, 6 players, 11 chat clients (5 of
/// them on WebSocket, 6 on RTMP), random shared-object operations, joins
/// and leaves, and 4 random faults per seed (partitions, holds,
/// stop-reading, at most one server crash) on any of them.
fn mixed() -> Scenario {
    Scenario::mixed("mixed", 20, 3)
        .test("scenarios", "mixed_scenario_sweep")
        .tuning(sweep_tuning())
}

#[test]
fn mixed_scenario_sweep() {
    let scenario = mixed();
    assert_eq!(scenario.clients().len(), 20);
    assert_eq!(websocket_clients(&scenario), 5);
    let started = std::time::Instant::now();
    let reports = sweep(&scenario, SWEEP_SEEDS);
    let tolerated: usize = reports.iter().map(|r| r.tolerated.len()).sum();
    let faults: usize = reports
        .iter()
        .map(|r| scenario.plan_faults(r.seed).len())
        .sum();
    println!(
        "{} seed(s), {faults} fault(s), {tolerated} tolerated violation(s) of known bugs, in {:.1?}",
        reports.len(),
        started.elapsed()
    );
    assert_all_ok(&reports);
}

fn websocket_clients(scenario: &Scenario) -> usize {
    scenario
        .clients()
        .iter()
        .filter(|c| c.transport == Transport::WebSocket)
        .count()
}

/// Same seed, same hashes — for the mixed scenario (RTMP and WebSocket
/// chat clients, players, publishers, faults) and for a room where half
/// the subscribers are WebSocket chat clients and one of them is cut off.
#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let ws_room = table_row(
        8,
        0,
        4,
        Some(Fault::Partition {
            client: 6,
            for_: Duration::from_secs(2),
        }),
    );
    for scenario in [mixed(), ws_room] {
        assert!(websocket_clients(&scenario) > 0);
        let a = scenario.run(7);
        let b = scenario.run(7);
        let c = scenario.run(8);
        let name = scenario.name();
        assert_eq!(a.trace_hash, b.trace_hash, "{name}: same seed, same events");
        assert_eq!(
            a.timed_hash, b.timed_hash,
            "{name}: same seed, same events at the same times"
        );
        assert_eq!(a.totals, b.totals, "{name}");
        assert_ne!(
            a.trace_hash, c.trace_hash,
            "{name}: another seed, other events"
        );
        assert_ne!(a.timed_hash, c.timed_hash, "{name}");
    }
}

/// One row of the table: one room, a publisher and `subscribers`
/// subscribers of `chat` — the last `ws` of them WebSocket chat clients,
/// the others players (the first `slow` of them reading 8 KB/s, less than
/// half the stream's ~17.5 KB/s) — everyone chatting on `chat`, and one
/// fault at 3 s. Subscriber queues hold 32 KiB, so slow players reach their
/// gaps within the run.
fn table_row(subscribers: usize, slow: usize, ws: usize, fault: Option<Fault>) -> Scenario {
    let mut s = Scenario::new("table")
        .test("scenarios", "summary_table")
        .tuning(ServerTuning {
            subscriber_queue_bytes: 32 * 1024,
            ..sweep_tuning()
        })
        .timeline(tern_sim::Timeline {
            idle_check_at: Duration::from_secs(22),
            ..Scenario::new("defaults").phases()
        })
        .client(
            ClientSpec::publisher("r0", "cam")
                .objects(vec![ObjectSpec::transient("chat")])
                .start_at(Duration::ZERO),
        );
    for i in 0..subscribers {
        let start = Duration::from_millis(100 + 10 * i as u64);
        if i >= subscribers - ws {
            s = s.client(
                ClientSpec::chat("r0")
                    .transport(Transport::WebSocket)
                    .objects(vec![ObjectSpec::transient("chat")])
                    .random_ops(Duration::from_millis(1_000))
                    .start_at(start),
            );
            continue;
        }
        let mut player = ClientSpec::player("r0", "cam")
            .objects(vec![ObjectSpec::transient("chat")])
            .random_ops(Duration::from_millis(1_000))
            .start_at(start);
        if i < slow {
            player = player.read_rate(8_000);
        }
        s = s.client(player);
    }
    match fault {
        Some(f) => s.fault(Duration::from_secs(3), f),
        None => s,
    }
}

#[test]
fn summary_table() {
    let two = Duration::from_secs(2);
    // (subscribers, slow players, WebSocket chat clients, label, fault)
    let rows: Vec<(usize, usize, usize, &str, Option<Fault>)> = vec![
        (4, 0, 0, "none", None),
        (4, 1, 0, "none", None),
        (4, 2, 0, "none", None),
        (16, 0, 0, "none", None),
        (16, 4, 0, "none", None),
        (16, 8, 0, "none", None),
        (
            16,
            4,
            0,
            "partition",
            Some(Fault::Partition {
                client: 5,
                for_: two,
            }),
        ),
        (
            16,
            4,
            0,
            "hold",
            Some(Fault::Hold {
                client: 0,
                for_: Duration::from_secs(1),
            }),
        ),
        (
            16,
            4,
            0,
            "stop-reading",
            Some(Fault::StopReading {
                client: 5,
                for_: two,
            }),
        ),
        (
            16,
            4,
            0,
            "crash",
            Some(Fault::Crash {
                down_for: Duration::from_secs(1),
            }),
        ),
        // Half the subscribers on WebSocket (clients 9..=16).
        (16, 4, 8, "none", None),
        (
            16,
            4,
            8,
            "partition",
            Some(Fault::Partition {
                client: 12,
                for_: two,
            }),
        ),
        (
            16,
            4,
            8,
            "stop-reading",
            Some(Fault::StopReading {
                client: 12,
                for_: two,
            }),
        ),
        (
            16,
            4,
            8,
            "crash",
            Some(Fault::Crash {
                down_for: Duration::from_secs(1),
            }),
        ),
    ];
    let mut table = String::from(
        "subs | ws  | slow | fault        | changes | frames | dropped | max gap | srv dropped | lag cuts | known bugs | violations\n\
         -----|-----|------|--------------|---------|--------|---------|---------|-------------|----------|------------|-----------\n",
    );
    for (subscribers, slow, ws, label, fault) in rows {
        let r = table_row(subscribers, slow, ws, fault).run(1);
        for v in &r.violations {
            eprintln!("row {subscribers}/{ws}/{slow}/{label}: {v}");
        }
        assert!(r.violations.is_empty(), "{label}: {}", r.repro);
        let t = r.totals;
        table.push_str(&format!(
            "{subscribers:>4} | {:>2}% | {:>3}% | {label:<12} | {:>7} | {:>6} | {:>7} | {:>7} | {:>11} | {:>8} | {:>10} | {:>10}\n",
            ws * 100 / subscribers,
            slow * 100 / subscribers,
            t.changes_delivered,
            t.frames_delivered,
            t.frames_dropped,
            t.max_gap,
            t.server_dropped,
            t.lag_disconnects,
            r.tolerated.len(),
            r.violations.len(),
        ));
    }
    insta::assert_snapshot!(table);
}
