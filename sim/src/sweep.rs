//! Seeds from the environment, and sweeps over many seeds.
//!
//! - `TERN_SIM_SEED=n` runs exactly seed `n` (to replay a failure);
//! - `TERN_SIM_SEEDS=count` runs seeds `1..=count`;
//! - otherwise a test's default count;
//! - `TERN_SIM_LOG_DIR=dir` keeps every client's events in words and
//!   writes them for each failing seed to `dir/<scenario>-<seed>/c<i>.log`.

use crate::report::Report;
use crate::scenario::Scenario;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The seeds to run.
pub fn seeds(default_count: u64) -> Vec<u64> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(seed) = var("TERN_SIM_SEED") {
        return vec![seed];
    }
    let count = var("TERN_SIM_SEEDS").unwrap_or(default_count);
    (1..=count).collect()
}

/// Runs `scenario` for every seed of [`seeds`], on as many threads as the
/// machine has cores (each run is its own single-threaded simulation), and
/// returns the reports in seed order.
pub fn sweep(scenario: &Scenario, default_count: u64) -> Vec<Report> {
    let seeds = seeds(default_count);
    let log_dir = std::env::var_os("TERN_SIM_LOG_DIR").map(std::path::PathBuf::from);
    let logged;
    let scenario = match &log_dir {
        Some(_) => {
            logged = scenario.clone().log_events(true);
            &logged
        }
        None => scenario,
    };
    let runs = |seed: u64| {
        let report = scenario.run(seed);
        if let Some(dir) = &log_dir
            && !report.is_ok()
        {
            write_logs(dir, &report);
        }
        report
    };
    sweep_seeds(&seeds, runs)
}

/// Runs `run` for every seed in `seeds` on as many threads as the machine
/// has cores and returns the reports in seed order (any scenario type,
/// e.g. [`crate::cluster::ClusterScenario`]).
pub fn sweep_seeds(seeds: &[u64], run: impl Fn(u64) -> Report + Sync) -> Vec<Report> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(seeds.len().max(1));
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::with_capacity(seeds.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(seed) = seeds.get(i) else { break };
                    let report = run(*seed);
                    reports
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|p| p.into_inner());
    reports.sort_by_key(|r| r.seed);
    reports
}

fn write_logs(dir: &std::path::Path, report: &Report) {
    let dir = dir.join(format!("{}-{}", report.scenario, report.seed));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    for (i, log) in report.logs.iter().enumerate() {
        let _ = std::fs::write(dir.join(format!("c{i}.log")), log.join("\n"));
    }
}

/// Panics if any report has violations, listing each failing seed with the
/// command that replays it.
pub fn assert_all_ok(reports: &[Report]) {
    let failed: Vec<&Report> = reports.iter().filter(|r| !r.is_ok()).collect();
    if failed.is_empty() {
        return;
    }
    let mut text = format!("{} of {} seed(s) failed\n", failed.len(), reports.len());
    for r in &failed {
        text.push_str(&r.to_string());
    }
    panic!("{text}");
}
