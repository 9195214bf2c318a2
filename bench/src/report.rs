//! Markdown tables comparing tern with its peers (nginx-rtmp, Redis) from
//! the records of one run, as ratios tern / peer, and the targets.

use crate::record::{IdleRun, MediaStep, Record, Saturated, SoRun};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The label tern's records carry.
pub const TERN: &str = "tern";
/// Label of tern runs with `streams.gop_cache = false`: the feature set of
/// nginx-rtmp, which caches no GOP (`bench/media.sh` runs it at 100, 500
/// and 1000 players).
pub const TERN_NO_GOP_CACHE: &str = "tern-no-gop-cache";

/// Reads JSON lines (non-JSON lines are skipped, so raw logs work too).
pub fn parse_records(text: &str) -> Vec<Record> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .collect()
}

fn ratio(tern: f64, peer: f64) -> String {
    if peer > 0.0 && tern.is_finite() && peer.is_finite() {
        format!("{:.2}", tern / peer)
    } else {
        "–".to_owned()
    }
}

/// CPU used / CPU wanted (running + waiting for a core), in % of a core.
fn cpu(used: f64, demand: f64) -> String {
    format!("{:.0}/{:.0}%", used * 100.0, demand * 100.0)
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

fn lag(s: &MediaStep) -> String {
    format!(
        "{:.0} / {:+.0} ms{}",
        s.lag_p99_ms,
        s.lag_growth_ms,
        if s.sustained { "" } else { " ✗" }
    )
}

/// Every run of each step of `server`, keyed by (bitrate, players), in
/// record order.
fn media_runs<'a>(
    records: &'a [Record],
    server: &str,
) -> BTreeMap<(u64, usize), Vec<&'a MediaStep>> {
    let mut runs: BTreeMap<(u64, usize), Vec<&MediaStep>> = BTreeMap::new();
    for r in records {
        if let Record::Media(s) = r
            && s.server == server
        {
            runs.entry((s.bitrate_kbps, s.players)).or_default().push(s);
        }
    }
    runs
}

/// One run per step of `server`: where a step ran several times
/// (`ROUNDS` in bench/media.sh), the run with the median CPU-s/GB (the
/// lower middle of an even count), so one drifting run of a shared machine
/// does not decide a verdict.
fn media_of<'a>(records: &'a [Record], server: &str) -> BTreeMap<(u64, usize), &'a MediaStep> {
    media_runs(records, server)
        .into_iter()
        .map(|(key, mut runs)| {
            runs.sort_by(|a, b| a.cpu_secs_per_gb.total_cmp(&b.cpu_secs_per_gb));
            (key, runs[(runs.len() - 1) / 2])
        })
        .collect()
}

/// "0.64" for a step run once; "0.64 (0.60–0.71 over 3)" for one run
/// several times: the median run's CPU-s/GB and the range.
fn cpu_cell(
    runs: &BTreeMap<(u64, usize), Vec<&MediaStep>>,
    key: &(u64, usize),
    median: f64,
) -> String {
    match runs.get(key) {
        Some(all) if all.len() > 1 => {
            let min = all
                .iter()
                .map(|s| s.cpu_secs_per_gb)
                .fold(f64::INFINITY, f64::min);
            let max = all.iter().map(|s| s.cpu_secs_per_gb).fold(0.0, f64::max);
            format!("{median:.2} ({min:.2}–{max:.2} over {})", all.len())
        }
        _ => format!("{median:.2}"),
    }
}

/// How a target line reads: met or missed.
fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

fn peers<'a>(records: &'a [Record], pick: impl Fn(&'a Record) -> Option<&'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = records
        .iter()
        .filter_map(pick)
        .filter(|s| !s.starts_with(TERN))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Renders every table the records allow, then the verdict on each target.
pub fn render(records: &[Record]) -> String {
    let mut out = String::new();
    let mut verdicts: Vec<String> = Vec::new();
    let media_peers = peers(records, |r| match r {
        Record::Media(s) => Some(s.server.as_str()),
        _ => None,
    });
    let tern_media = media_of(records, TERN);
    let tern_runs = media_runs(records, TERN);
    for peer in &media_peers {
        let peer_media = media_of(records, peer);
        let peer_runs = media_runs(records, peer);
        let _ = writeln!(
            out,
            "### Live media: tern vs {peer}\n\n\
             | bitrate | players | CPU-s/GB tern | CPU-s/GB {peer} | ratio | RSS/player tern | RSS/player {peer} | ratio | lag p99 / growth tern | lag p99 / growth {peer} | server CPU used/wanted tern | {peer} | load tool CPU used/wanted (tern run) | ({peer} run) |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        let mut cpu_ok = Vec::new();
        let mut rss_ok = Vec::new();
        for (key, t) in &tern_media {
            let Some(p) = peer_media.get(key) else {
                continue;
            };
            let cpu_ratio = t.cpu_secs_per_gb / p.cpu_secs_per_gb;
            let rss_ratio = t.rss_per_player / p.rss_per_player;
            let _ = writeln!(
                out,
                "| {} kbit/s | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                key.0,
                key.1,
                cpu_cell(&tern_runs, key, t.cpu_secs_per_gb),
                cpu_cell(&peer_runs, key, p.cpu_secs_per_gb),
                ratio(t.cpu_secs_per_gb, p.cpu_secs_per_gb),
                kib(t.rss_per_player),
                kib(p.rss_per_player),
                ratio(t.rss_per_player, p.rss_per_player),
                lag(t),
                lag(p),
                cpu(t.server_cpu, t.server_demand),
                cpu(p.server_cpu, p.server_demand),
                cpu(t.tool_cpu, t.tool_demand),
                cpu(p.tool_cpu, p.tool_demand),
            );
            // A step where either run's load tool saturated measures the
            // tool as much as the server: the peer's writes then pile up in
            // its sockets and leave in larger pieces, which lowers its CPU
            // per GB (nginx-rtmp at 1500 × 2.5 Mbit/s: 1.19 against 1.89
            // at 1000). Those steps are shown, not judged.
            let tool_saturated = [t, p]
                .iter()
                .any(|s| s.saturated == Some(Saturated::LoadTool));
            if t.sustained && p.sustained && !tool_saturated {
                cpu_ok.push((key, cpu_ratio));
            }
            if [100, 500, 1000].contains(&key.1) {
                rss_ok.push((key, rss_ratio));
            }
        }
        out.push('\n');
        marginal_rss(&tern_media, &peer_media, peer, &mut out);
        let above_stream_verdict = rss_above_stream(&tern_media, &peer_media, peer, &mut out);
        let no_gop_verdict = without_gop_cache(records, &peer_media, peer, &mut out);
        let _ = writeln!(
            out,
            "### Largest player count without lag growth: tern vs {peer}\n\n\
             | bitrate | tern | {peer} | what ended the tern ramp | what ended the {peer} ramp |\n|---|---|---|---|---|"
        );
        let bitrates: std::collections::BTreeSet<u64> = tern_media.keys().map(|k| k.0).collect();
        for bitrate in bitrates {
            let t = ramp(&tern_media, bitrate);
            let p = ramp(&peer_media, bitrate);
            let _ = writeln!(
                out,
                "| {bitrate} kbit/s | {} | {} | {} | {} |",
                t.0, p.0, t.1, p.1
            );
        }
        out.push('\n');
        let worst_cpu = cpu_ok.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        if !cpu_ok.is_empty() {
            verdicts.push(format!(
                "- CPU per delivered GB ≤ ⅔ of {peer}: {} (worst ratio {:.2} over {} sustained points where neither load tool saturated)",
                verdict(worst_cpu <= 2.0 / 3.0),
                worst_cpu,
                cpu_ok.len()
            ));
        }
        let worst_rss = rss_ok.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        if !rss_ok.is_empty() {
            verdicts.push(format!(
                "- RSS per player ≤ ½ of {peer}: {} (worst ratio {:.2})",
                verdict(worst_rss <= 0.5),
                worst_rss
            ));
        }
        verdicts.extend(above_stream_verdict);
        verdicts.extend(no_gop_verdict);
    }

    allocations(records, &mut out);

    let idle: Vec<&IdleRun> = records
        .iter()
        .filter_map(|r| match r {
            Record::Idle(i) => Some(i),
            _ => None,
        })
        .collect();
    if let Some(t) = idle.iter().rev().find(|i| i.server == TERN) {
        for peer in peers(records, |r| match r {
            Record::Idle(i) => Some(i.server.as_str()),
            _ => None,
        }) {
            let Some(p) = idle.iter().rev().find(|i| i.server == peer) else {
                continue;
            };
            let _ = writeln!(
                out,
                "### Idle connections: tern vs {peer}\n\n\
                 | connections | RSS/conn tern | RSS/conn {peer} | ratio | RSS tern | RSS {peer} |\n|---|---|---|---|---|---|\n\
                 | {} / {} | {} | {} | {} | {:.1} MB | {:.1} MB |\n",
                t.connected,
                p.connected,
                kib(t.rss_per_connection),
                kib(p.rss_per_connection),
                ratio(t.rss_per_connection, p.rss_per_connection),
                t.server_rss as f64 / 1e6,
                p.server_rss as f64 / 1e6,
            );
            let r = t.rss_per_connection / p.rss_per_connection;
            verdicts.push(format!(
                "- RSS per idle connection ≤ ½ of {peer}: {} (ratio {r:.2})",
                verdict(r <= 0.5)
            ));
        }
    }

    let so: Vec<&SoRun> = records
        .iter()
        .filter_map(|r| match r {
            Record::So(s) => Some(s),
            _ => None,
        })
        .collect();
    let key = |s: &SoRun| (s.subscribers, s.writers, s.rate.to_bits(), s.value_bytes);
    // tern runs with several WebSocket shares compare with the same peer run.
    let tern_key = |s: &SoRun| (key(s), s.ws_share.to_bits());
    for peer in peers(records, |r| match r {
        Record::So(s) => Some(s.server.as_str()),
        _ => None,
    }) {
        let _ = writeln!(
            out,
            "### Shared-object fan-out: tern vs {peer} pub/sub\n\n\
             | subscribers | writers | rate/writer | value | WS share | latency p50 / p99 tern | p99 tern RTMP / WS subscribers | latency p50 / p99 {peer} | delivered/s tern | delivered/s {peer} | ratio | server CPU used/wanted tern | {peer} | load tool CPU used/wanted (tern run) | ({peer} run) |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        // Repeated runs of one load (`ROUNDS` in so.sh) are shown and
        // judged by their median p99, with the range beside it.
        let mut tern_runs: BTreeMap<_, Vec<&SoRun>> = BTreeMap::new();
        let mut peer_runs: BTreeMap<_, Vec<&SoRun>> = BTreeMap::new();
        for s in &so {
            if s.server == TERN {
                tern_runs.entry(tern_key(s)).or_default().push(*s);
            } else if s.server == peer {
                peer_runs.entry(key(s)).or_default().push(*s);
            }
        }
        for ((k, _), t_all) in &tern_runs {
            let Some(p_all) = peer_runs.get(k) else {
                continue;
            };
            let (t, p) = (median_run(t_all), median_run(p_all));
            let share = ws_share(t);
            let by_transport = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
            let rate = if t.rate > 0.0 {
                format!("{}/s", t.rate)
            } else {
                format!("max (window {})", t.window)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {rate} | {} B | {share} | {} | {} / {} ms | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} |",
                t.subscribers,
                t.writers,
                t.value_bytes,
                latencies(t_all),
                by_transport(t.rtmp_latency_p99_ms),
                by_transport(t.ws_latency_p99_ms),
                latencies(p_all),
                t.delivered_per_sec,
                p.delivered_per_sec,
                ratio(t.delivered_per_sec, p.delivered_per_sec),
                cpu(t.server_cpu, t.server_demand),
                cpu(p.server_cpu, p.server_demand),
                cpu(t.tool_cpu, t.tool_demand),
                cpu(p.tool_cpu, p.tool_demand),
            );
            if t.subscribers >= 1000 && t.rate > 0.0 {
                let median = if t_all.len() > 1 {
                    format!("median of {} runs: ", t_all.len())
                } else {
                    String::new()
                };
                verdicts.push(format!(
                    "- SO fan-out p99 < 10 ms at {} subscribers ({}/s per writer{}): {} ({median}{:.2} ms; {peer} {:.2} ms)",
                    t.subscribers,
                    t.rate,
                    mixed(t),
                    verdict(t.latency_p99_ms < 10.0),
                    t.latency_p99_ms,
                    p.latency_p99_ms
                ));
            }
            if t.rate == 0.0 {
                let r = t.delivered_per_sec / p.delivered_per_sec;
                verdicts.push(format!(
                    "- delivered changes/s within 2× of {peer} at {} subscribers{}: {} (tern/{peer} {r:.2})",
                    t.subscribers,
                    mixed(t),
                    verdict(r >= 0.5),
                ));
            }
        }
        out.push('\n');
    }
    if !verdicts.is_empty() {
        out.push_str("### Targets\n\n");
        for v in verdicts {
            out.push_str(&v);
            out.push('\n');
        }
    }
    out.push_str(&crate::latency_report::render(records));
    out
}

/// The run with the median p99 of `runs` (the lower middle of an even
/// count). `runs` is never empty.
fn median_run<'a>(runs: &[&'a SoRun]) -> &'a SoRun {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.latency_p99_ms.total_cmp(&b.latency_p99_ms));
    sorted[(sorted.len() - 1) / 2]
}

/// "p50 / p99 ms" of the median run; with several runs, how many and the
/// range of their p99.
fn latencies(runs: &[&SoRun]) -> String {
    let m = median_run(runs);
    let text = format!("{:.2} / {:.2} ms", m.latency_p50_ms, m.latency_p99_ms);
    if runs.len() < 2 {
        return text;
    }
    let p99 = runs.iter().map(|r| r.latency_p99_ms);
    let min = p99.clone().fold(f64::INFINITY, f64::min);
    let max = p99.fold(0.0, f64::max);
    format!("{text} (median of {}; p99 {min:.2}–{max:.2})", runs.len())
}

/// The WebSocket share of a tern SO run: `0 %`, or `50 % (500 subs, 5
/// writers)`.
fn ws_share(s: &SoRun) -> String {
    if s.ws_subscribers + s.ws_writers == 0 {
        format!("{:.0} %", s.ws_share * 100.0)
    } else {
        format!(
            "{:.0} % ({} subs, {} writers)",
            s.ws_share * 100.0,
            s.ws_subscribers,
            s.ws_writers
        )
    }
}

/// A verdict's note on a run with WebSocket clients.
fn mixed(s: &SoRun) -> String {
    if s.ws_subscribers + s.ws_writers == 0 {
        String::new()
    } else {
        format!(", {:.0} % WebSocket", s.ws_share * 100.0)
    }
}

/// "Allocations per relayed message" by players, for every server whose
/// media steps carry heap counters (`tern-load media --metrics-url`).
///
/// If the server allocates a fixed `c` per message for the publisher plus
/// `s` per message per player, allocations/message is `c + s·N`; the
/// per-player column is `c/N + s`, and the marginal column (between two
/// steps of one ramp) estimates `s` alone.
fn allocations(records: &[Record], out: &mut String) {
    let mut servers: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Media(s) if s.allocations.is_some() => Some(s.server.as_str()),
            _ => None,
        })
        .collect();
    servers.sort_unstable();
    servers.dedup();
    for server in servers {
        let _ = writeln!(
            out,
            "### Allocations per relayed message: {server}\n\n\
             | bitrate | players | messages sent | allocations | allocations / message | (allocations / message) / players | per message per added player | bytes allocated / message |\n\
             |---|---|---|---|---|---|---|---|"
        );
        let mut previous: Option<(u64, usize, f64)> = None;
        for (key, s) in media_of(records, server) {
            let (Some(allocations), Some(bytes)) = (s.allocations, s.allocated_bytes) else {
                continue;
            };
            let messages = s.messages_sent.max(1) as f64;
            let per_message = allocations as f64 / messages;
            let marginal = match previous {
                Some((bitrate, players, before)) if bitrate == key.0 && players < key.1 => {
                    format!("{:+.4}", (per_message - before) / (key.1 - players) as f64)
                }
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} kbit/s | {} | {} | {} | {:.2} | {:.4} | {marginal} | {:.0} |",
                key.0,
                key.1,
                s.messages_sent,
                allocations,
                per_message,
                per_message / key.1.max(1) as f64,
                bytes as f64 / messages,
            );
            previous = Some((key.0, key.1, per_message));
        }
        out.push('\n');
    }
}

/// The largest sustained player count of a ramp at `bitrate`, and what
/// ended the ramp.
/// RSS per *added* player between consecutive steps of both ramps: the
/// slope, without what a server holds once per stream (the publisher, a GOP
/// cache), which the per-player column spreads over the players.
/// RSS per player of tern without its GOP cache against the peer at the
/// same steps: the same features, so what each server holds per player.
/// Returns the verdict line, if there were such runs.
fn without_gop_cache(
    records: &[Record],
    peer: &BTreeMap<(u64, usize), &MediaStep>,
    peer_name: &str,
    out: &mut String,
) -> Option<String> {
    let variant = media_of(records, TERN_NO_GOP_CACHE);
    let rows: Vec<(&(u64, usize), &MediaStep, &MediaStep)> = variant
        .iter()
        .filter_map(|(k, t)| peer.get(k).map(|p| (k, *t, *p)))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let _ = writeln!(
        out,
        "tern with `gop_cache = false` ({peer_name} caches no GOP either):\n\n\
         | bitrate | players | RSS/player tern | RSS/player {peer_name} | ratio | CPU-s/GB tern | CPU-s/GB {peer_name} | ratio | lag p99 / growth tern |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    let mut worst: f64 = 0.0;
    for (key, t, p) in rows {
        worst = worst.max(t.rss_per_player / p.rss_per_player);
        let _ = writeln!(
            out,
            "| {} kbit/s | {} | {} | {} | {} | {:.2} | {:.2} | {} | {} |",
            key.0,
            key.1,
            kib(t.rss_per_player),
            kib(p.rss_per_player),
            ratio(t.rss_per_player, p.rss_per_player),
            t.cpu_secs_per_gb,
            p.cpu_secs_per_gb,
            ratio(t.cpu_secs_per_gb, p.cpu_secs_per_gb),
            lag(t),
        );
    }
    out.push('\n');
    Some(format!(
        "- RSS per player ≤ ½ of {peer_name}, both without a GOP cache: {} (worst ratio {worst:.2})",
        verdict(worst <= 0.5)
    ))
}

/// RSS per player above the one publishing stream: (RSS − RSS while the
/// publisher streamed alone) / players, so what a server holds once per
/// stream (tern's GOP cache, the publisher's buffers) is counted apart from
/// what it holds per player. Judged at 100, 500 and 1000 players like the
/// per-player column. Returns the verdict line, if both runs measured it.
fn rss_above_stream(
    tern: &BTreeMap<(u64, usize), &MediaStep>,
    peer: &BTreeMap<(u64, usize), &MediaStep>,
    peer_name: &str,
    out: &mut String,
) -> Option<String> {
    let stream_cost = |s: &MediaStep| s.server_rss_stream.saturating_sub(s.server_rss_base) as f64;
    // (step, tern, peer, tern's and the peer's RSS per player above the stream)
    type Row<'a> = (&'a (u64, usize), &'a MediaStep, &'a MediaStep, f64, f64);
    let rows: Vec<Row> = tern
        .iter()
        .filter_map(|(k, t)| {
            let p = peer.get(k)?;
            Some((
                k,
                *t,
                *p,
                t.rss_per_player_above_stream?,
                p.rss_per_player_above_stream?,
            ))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    let _ = writeln!(
        out,
        "RSS per player above the publishing stream ((RSS − RSS while the publisher streamed alone) / players), and what the stream alone added:\n\n\
         | bitrate | players | tern | {peer_name} | ratio | stream alone tern | stream alone {peer_name} |\n\
         |---|---|---|---|---|---|---|"
    );
    let mut worst: f64 = 0.0;
    for (key, t, p, t_rss, p_rss) in rows {
        if [100, 500, 1000].contains(&key.1) {
            worst = worst.max(t_rss / p_rss);
        }
        let _ = writeln!(
            out,
            "| {} kbit/s | {} | {} | {} | {} | {} | {} |",
            key.0,
            key.1,
            kib(t_rss),
            kib(p_rss),
            ratio(t_rss, p_rss),
            kib(stream_cost(t)),
            kib(stream_cost(p)),
        );
    }
    out.push('\n');
    Some(format!(
        "- RSS per player above the publishing stream ≤ ½ of {peer_name}: {} (worst ratio {worst:.2})",
        verdict(worst <= 0.5)
    ))
}

fn marginal_rss(
    tern: &BTreeMap<(u64, usize), &MediaStep>,
    peer: &BTreeMap<(u64, usize), &MediaStep>,
    peer_name: &str,
    out: &mut String,
) {
    let slope = |a: &MediaStep, b: &MediaStep| {
        let added = b.players.saturating_sub(a.players) as f64;
        let grown = (b.server_rss as f64 - b.server_rss_base as f64)
            - (a.server_rss as f64 - a.server_rss_base as f64);
        (added > 0.0).then(|| grown / added)
    };
    let mut rows = Vec::new();
    let keys: Vec<&(u64, usize)> = tern.keys().filter(|k| peer.contains_key(k)).collect();
    for pair in keys.windows(2) {
        let (&a, &b) = (pair[0], pair[1]);
        if a.0 != b.0 {
            continue;
        }
        let (Some(t), Some(p)) = (slope(tern[&a], tern[&b]), slope(peer[&a], peer[&b])) else {
            continue;
        };
        rows.push(format!(
            "| {} kbit/s | {} → {} | {} | {} | {} |",
            a.0,
            a.1,
            b.1,
            kib(t),
            kib(p),
            ratio(t, p)
        ));
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "RSS per added player (growth of RSS between two steps / players added):\n\n\
         | bitrate | players | tern | {peer_name} | ratio |\n|---|---|---|---|---|"
    );
    for row in rows {
        let _ = writeln!(out, "{row}");
    }
    out.push('\n');
}

fn ramp(steps: &BTreeMap<(u64, usize), &MediaStep>, bitrate: u64) -> (String, String) {
    let ramp: Vec<&MediaStep> = steps
        .iter()
        .filter(|(k, _)| k.0 == bitrate)
        .map(|(_, s)| *s)
        .collect();
    let Some(last) = ramp.last() else {
        return ("–".to_owned(), "not run".to_owned());
    };
    let best = ramp
        .iter()
        .filter(|s| s.sustained)
        .map(|s| s.players)
        .max()
        .map_or("none".to_owned(), |n| n.to_string());
    let cpu = format!(
        "CPU used/wanted: server {}, load tool {}",
        cpu(last.server_cpu, last.server_demand),
        cpu(last.tool_cpu, last.tool_demand)
    );
    let why = match (last.sustained, last.saturated) {
        (_, Some(Saturated::LoadTool)) => {
            format!("load tool saturated at {} ({cpu})", last.players)
        }
        (false, Some(Saturated::Server)) => {
            format!("server saturated, lag grew at {} ({cpu})", last.players)
        }
        (false, None) => format!(
            "lag grew / frames lost at {} (p99 {:.0} ms, growth {:+.0} ms, lost {}, failed {}; {cpu})",
            last.players, last.lag_p99_ms, last.lag_growth_ms, last.lost_frames, last.failed
        ),
        (true, _) => format!("last step {} still sustained ({cpu})", last.players),
    };
    (best, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(server: &str, players: usize, cpu_secs: f64, rss: u64, tool: f64) -> Record {
        let mut s = MediaStep {
            server: server.into(),
            bitrate_kbps: 2500,
            players,
            playing: players,
            failed: 0,
            window_secs: 10.0,
            delivered_bytes: 1_000_000_000,
            frames: 1000,
            lost_frames: 0,
            lag_p50_ms: 1.0,
            lag_p99_ms: 4.0,
            lag_max_ms: 9.0,
            lag_growth_ms: 0.1,
            added_p50_ms: 0.5,
            added_p99_ms: 3.0,
            added_p999_ms: 8.0,
            chat_deliveries: 0,
            chat_p50_ms: 0.0,
            chat_p99_ms: 0.0,
            chat_max_ms: 0.0,
            publisher_late_ms: 0.0,
            player_bytes: [0; 3],
            player_max_lag_ms: [0.0; 3],
            timeline: Vec::new(),
            server_cpu_secs: cpu_secs,
            server_cpu: cpu_secs / 10.0,
            tool_cpu: tool,
            server_demand: cpu_secs / 10.0,
            tool_demand: tool,
            server_rss_base: 0,
            server_rss_stream: 0,
            server_rss: rss,
            cpu_secs_per_gb: 0.0,
            rss_per_player: 0.0,
            rss_per_player_above_stream: None,
            sustained: false,
            saturated: None,
            messages_sent: 0,
            allocations: None,
            allocated_bytes: None,
        };
        s.derive();
        Record::Media(s)
    }

    #[test]
    fn steps_where_a_load_tool_saturated_are_not_judged_for_cpu() {
        let records = vec![
            step("tern", 100, 1.0, 1_000_000, 0.1),
            step("tern", 500, 1.0, 1_000_000, 0.5),
            step("nginx-rtmp", 100, 2.0, 1_000_000, 0.1),
            // Saturated tool: the peer's figure looks as cheap as tern's.
            step("nginx-rtmp", 500, 1.0, 1_000_000, 0.97),
        ];
        let text = render(&records);
        assert!(
            text.contains("**met** (worst ratio 0.50 over 1 sustained points"),
            "{text}"
        );
    }

    #[test]
    fn a_step_run_several_times_is_judged_by_its_median_run() {
        let records = vec![
            step("tern", 1000, 0.6, 1_000_000, 0.2),
            step("nginx-rtmp", 1000, 1.0, 1_000_000, 0.3),
            step("tern", 1000, 0.5, 1_000_000, 0.2),
            step("nginx-rtmp", 1000, 1.2, 1_000_000, 0.3),
            step("tern", 1000, 0.7, 1_000_000, 0.2),
            step("nginx-rtmp", 1000, 0.9, 1_000_000, 0.3),
        ];
        let text = render(&records);
        // Medians 0.60 and 1.00: the ratio of the middle runs, not of the
        // last round (0.7 / 0.9 = 0.78, which would miss).
        assert!(
            text.contains(
                "| 2500 kbit/s | 1000 | 0.60 (0.50–0.70 over 3) | 1.00 (0.90–1.20 over 3) | 0.60 |"
            ),
            "{text}"
        );
        assert!(
            text.contains("CPU per delivered GB ≤ ⅔ of nginx-rtmp: **met** (worst ratio 0.60"),
            "{text}"
        );
    }

    #[test]
    fn rss_per_added_player_is_the_slope_between_steps() {
        // tern: 1 MB fixed + 8 KiB per player; peer: 16 KiB per player.
        let records = vec![
            step("tern", 100, 1.0, 1_000_000 + 100 * 8192, 0.1),
            step("tern", 500, 1.0, 1_000_000 + 500 * 8192, 0.1),
            step("nginx-rtmp", 100, 1.0, 100 * 16384, 0.1),
            step("nginx-rtmp", 500, 1.0, 500 * 16384, 0.1),
        ];
        let text = render(&records);
        assert!(
            text.contains("| 2500 kbit/s | 100 → 500 | 8.0 KiB | 16.0 KiB | 0.50 |"),
            "{text}"
        );
    }

    #[test]
    fn rss_above_the_stream_leaves_out_what_the_stream_alone_holds() {
        // tern: 700 KB once for the stream (a GOP cache), 4 KiB per player;
        // peer: 50 KB for the stream, 16 KiB per player.
        let with_stream = |server: &str, players: usize, stream: u64, per_player: u64| {
            let Record::Media(mut s) = step(server, players, 1.0, 0, 0.1) else {
                unreachable!()
            };
            s.server_rss_base = 1_000_000;
            s.server_rss_stream = 1_000_000 + stream;
            s.server_rss = s.server_rss_stream + players as u64 * per_player;
            s.derive();
            Record::Media(s)
        };
        let records = vec![
            with_stream("tern", 100, 700_000, 4096),
            with_stream("nginx-rtmp", 100, 50_000, 16384),
        ];
        let text = render(&records);
        assert!(
            text.contains(
                "| 2500 kbit/s | 100 | 4.0 KiB | 16.0 KiB | 0.25 | 683.6 KiB | 48.8 KiB |"
            ),
            "{text}"
        );
        // Spread over the players, the stream's 700 KB misses the target...
        assert!(
            text.contains("RSS per player ≤ ½ of nginx-rtmp: **missed** (worst ratio 0.66)"),
            "{text}"
        );
        // ...which the players alone meet.
        assert!(
            text.contains(
                "RSS per player above the publishing stream ≤ ½ of nginx-rtmp: **met** (worst ratio 0.25)"
            ),
            "{text}"
        );
        // Records from before the stream baseline have no such verdict.
        let old = vec![
            step("tern", 100, 1.0, 1_000_000, 0.1),
            step("nginx-rtmp", 100, 1.0, 2_000_000, 0.1),
        ];
        assert!(!render(&old).contains("above the publishing stream"));
    }

    #[test]
    fn the_run_without_gop_cache_is_compared_with_the_peer_not_taken_for_one() {
        let records = vec![
            step("tern", 100, 1.0, 3_000_000, 0.1),
            step(TERN_NO_GOP_CACHE, 100, 1.0, 700_000, 0.1),
            step("nginx-rtmp", 100, 2.0, 1_600_000, 0.1),
        ];
        let text = render(&records);
        assert!(
            !text.contains(&format!("tern vs {TERN_NO_GOP_CACHE}")),
            "{text}"
        );
        assert!(
            text.contains("| 2500 kbit/s | 100 | 6.8 KiB | 15.6 KiB | 0.44 |"),
            "{text}"
        );
        assert!(
            text.contains("both without a GOP cache: **met** (worst ratio 0.44)"),
            "{text}"
        );
        assert!(
            text.contains("RSS per player ≤ ½ of nginx-rtmp: **missed** (worst ratio 1.88)"),
            "{text}"
        );
    }

    /// A shared-object run of 10 writers and 1000 subscribers.
    fn so(server: &str, rate: f64, p99: f64, per_sec: f64) -> Record {
        Record::So(SoRun {
            server: server.into(),
            writers: 10,
            subscribers: 1000,
            rate,
            window: 4,
            value_bytes: 128,
            window_secs: 10.0,
            sent: 0,
            delivered: 0,
            delivered_per_sec: per_sec,
            latency_p50_ms: 1.0,
            latency_p99_ms: p99,
            latency_max_ms: p99,
            server_cpu: 0.5,
            tool_cpu: 0.5,
            server_demand: 0.5,
            tool_demand: 0.5,
            server_rss: 0,
            failed: 0,
            ws_share: 0.0,
            ws_subscribers: 0,
            ws_writers: 0,
            ws_delivered: 0,
            starved_subscribers: 0,
            rtmp_latency_p50_ms: None,
            rtmp_latency_p99_ms: None,
            ws_latency_p50_ms: None,
            ws_latency_p99_ms: None,
        })
    }

    #[test]
    fn repeated_so_runs_are_judged_by_their_median_p99() {
        let records = vec![
            so("tern", 10.0, 12.0, 10_000.0),
            so("redis", 10.0, 7.0, 10_000.0),
            so("tern", 10.0, 8.0, 10_000.0),
            so("redis", 10.0, 11.0, 10_000.0),
            so("tern", 10.0, 9.0, 10_000.0),
            so("redis", 10.0, 8.0, 10_000.0),
        ];
        let text = render(&records);
        assert!(
            text.contains("| 1.00 / 9.00 ms (median of 3; p99 8.00–12.00) | – / – ms | 1.00 / 8.00 ms (median of 3; p99 7.00–11.00) |"),
            "{text}"
        );
        assert!(
            text.contains("(10/s per writer): **met** (median of 3 runs: 9.00 ms; redis 8.00 ms)"),
            "{text}"
        );
        let worse = vec![
            so("tern", 10.0, 9.0, 10_000.0),
            so("tern", 10.0, 10.5, 10_000.0),
            so("tern", 10.0, 11.0, 10_000.0),
            so("redis", 10.0, 8.0, 10_000.0),
        ];
        assert!(
            render(&worse).contains(
                "(10/s per writer): **missed** (median of 3 runs: 10.50 ms; redis 8.00 ms)"
            ),
            "{}",
            render(&worse)
        );
    }

    #[test]
    fn renders_ratios_and_verdicts() {
        let Record::So(mut half) = so("tern", 10.0, 4.0, 10_000.0) else {
            unreachable!()
        };
        half.ws_share = 0.5;
        half.ws_subscribers = 500;
        half.ws_writers = 5;
        half.rtmp_latency_p99_ms = Some(3.5);
        half.ws_latency_p99_ms = Some(4.5);
        let records = vec![
            step("tern", 100, 1.0, 1_000_000, 0.2),
            step("nginx-rtmp", 100, 2.0, 4_000_000, 0.2),
            step("tern", 1000, 1.0, 10_000_000, 0.95),
            step("nginx-rtmp", 1000, 2.0, 40_000_000, 0.95),
            so("tern", 10.0, 3.0, 10_000.0),
            so("redis", 10.0, 1.0, 10_000.0),
            so("tern", 0.0, 30.0, 100_000.0),
            so("redis", 0.0, 20.0, 300_000.0),
            Record::So(half),
        ];
        let text = render(&records);
        assert!(
            text.contains("| 2500 kbit/s | 100 | 1.00 | 2.00 | 0.50 |"),
            "{text}"
        );
        assert!(text.contains("CPU per delivered GB ≤ ⅔ of nginx-rtmp: **met** (worst ratio 0.50"));
        assert!(text.contains("RSS per player ≤ ½ of nginx-rtmp: **met** (worst ratio 0.25)"));
        assert!(text.contains("load tool saturated at 1000"), "{text}");
        assert!(
            text.contains("SO fan-out p99 < 10 ms at 1000 subscribers (10/s per writer): **met**")
        );
        assert!(
            text.contains("within 2× of redis at 1000 subscribers: **missed** (tern/redis 0.33)")
        );
        assert!(
            text.contains(
                "| 1000 | 10 | 10/s | 128 B | 0 % | 1.00 / 3.00 ms | – / – ms | 1.00 / 1.00 ms |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| 1000 | 10 | 10/s | 128 B | 50 % (500 subs, 5 writers) | 1.00 / 4.00 ms | 3.50 / 4.50 ms | 1.00 / 1.00 ms |"),
            "{text}"
        );
        assert!(
            text.contains("(10/s per writer, 50 % WebSocket): **met** (4.00 ms; redis 1.00 ms)"),
            "{text}"
        );
        assert!(!text.contains("Allocations per relayed message"));
        let json = serde_json::to_string(&records[0]).unwrap();
        assert_eq!(parse_records(&format!("noise\n{json}\n")).len(), 1);
    }

    #[test]
    fn allocations_table() {
        let counted = |players: usize, allocations: u64| {
            let Record::Media(mut s) = step("tern", players, 1.0, 0, 0.2) else {
                unreachable!()
            };
            s.messages_sent = 400;
            s.allocations = Some(allocations);
            s.allocated_bytes = Some(400 * 1000);
            Record::Media(s)
        };
        let text = render(&[counted(1, 2000), counted(10, 2000), counted(100, 6000)]);
        assert!(
            text.contains(
                "### Allocations per relayed message: tern\n\n| bitrate | players | messages sent |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| 2500 kbit/s | 1 | 400 | 2000 | 5.00 | 5.0000 | – | 1000 |"),
            "{text}"
        );
        assert!(
            text.contains("| 2500 kbit/s | 10 | 400 | 2000 | 5.00 | 0.5000 | +0.0000 | 1000 |"),
            "{text}"
        );
        assert!(
            text.contains("| 2500 kbit/s | 100 | 400 | 6000 | 15.00 | 0.1500 | +0.1111 | 1000 |"),
            "{text}"
        );
    }
}
