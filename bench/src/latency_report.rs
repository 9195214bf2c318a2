//! The latency table of `bench/latency.sh`: tern with its default
//! (adaptive) merge window, with the fixed 100 ms window and without
//! merging, against nginx-rtmp, step by step: CPU-s per delivered GB,
//! added latency p50/p99/p99.9 and the chat-during-video latency; then the
//! goals of issue 24.

use crate::record::{MediaStep, Record};
use std::collections::BTreeMap;
use std::fmt::Write;

/// tern with its default configuration (the adaptive window).
pub const DEFAULT: &str = "tern";
/// tern with `merge_write_ms = 100` and `merge_write_adaptive = false`.
pub const FIXED: &str = "tern-merge-100-fixed";
/// tern with `merge_write_ms = 0`.
pub const ZERO: &str = "tern-merge-0";
/// The peer.
pub const NGINX: &str = "nginx-rtmp";

/// The servers in table order.
const SERVERS: [&str; 4] = [DEFAULT, FIXED, ZERO, NGINX];

/// The largest p99 the default may add over tern without merging at 100
/// and 500 players (ms), and the share of nginx-rtmp's CPU-s/GB it may use
/// at 1000 players.
const P99_SLACK_MS: f64 = 5.0;
const CPU_SHARE: f64 = 2.0 / 3.0;

/// Every step run by one of [`SERVERS`], by (bitrate, players) and server;
/// a step run several times keeps its median-CPU run.
fn steps(records: &[Record]) -> BTreeMap<(u64, usize), BTreeMap<&str, Vec<&MediaStep>>> {
    let mut out: BTreeMap<(u64, usize), BTreeMap<&str, Vec<&MediaStep>>> = BTreeMap::new();
    for r in records {
        if let Record::Media(s) = r
            && let Some(server) = SERVERS.iter().find(|&&n| n == s.server)
        {
            out.entry((s.bitrate_kbps, s.players))
                .or_default()
                .entry(server)
                .or_default()
                .push(s);
        }
    }
    out
}

fn median(runs: &[&MediaStep]) -> Option<MediaStep> {
    let mut sorted: Vec<&MediaStep> = runs.to_vec();
    sorted.sort_by(|a, b| a.cpu_secs_per_gb.total_cmp(&b.cpu_secs_per_gb));
    sorted
        .get(sorted.len().checked_sub(1)? / 2)
        .map(|s| (*s).clone())
}

/// The table and the goals' verdicts; empty if the records hold no run of
/// both the default and nginx-rtmp.
pub fn render(records: &[Record]) -> String {
    let all = steps(records);
    let mut out = String::new();
    if !all
        .values()
        .any(|by| by.contains_key(DEFAULT) && by.contains_key(NGINX))
    {
        return out;
    }
    out.push_str(
        "### Added latency and CPU: tern's merge windows vs nginx-rtmp\n\n\
         | bitrate | players | server | CPU-s/GB | vs nginx-rtmp | added latency p50 / p99 / p99.9 | chat during video p50 / p99 / max (changes) | lag p99 / growth | server CPU used/wanted | load tool used/wanted |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut verdicts = Vec::new();
    for (&(kbps, players), by) in &all {
        let picked: BTreeMap<&str, MediaStep> = by
            .iter()
            .filter_map(|(name, runs)| Some((*name, median(runs)?)))
            .collect();
        let nginx_cpu = picked.get(NGINX).map(|s| s.cpu_secs_per_gb);
        for name in SERVERS {
            let Some(s) = picked.get(name) else { continue };
            let runs = by.get(name).map_or(0, Vec::len);
            let vs = match nginx_cpu {
                Some(n) if n > 0.0 && name != NGINX => format!("{:.2}", s.cpu_secs_per_gb / n),
                _ => "–".to_owned(),
            };
            let chat = if s.chat_deliveries > 0 {
                format!(
                    "{:.1} / {:.1} / {:.1} ms ({})",
                    s.chat_p50_ms, s.chat_p99_ms, s.chat_max_ms, s.chat_deliveries
                )
            } else {
                "–".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} kbit/s | {players} | {name}{} | {:.2} | {vs} | {:.1} / {:.1} / {:.1} ms | {chat} | {:.0} / {:+.0} ms{} | {:.0}/{:.0}% | {:.0}/{:.0}% |",
                kbps,
                if runs > 1 {
                    format!(" (median of {runs})")
                } else {
                    String::new()
                },
                s.cpu_secs_per_gb,
                s.added_p50_ms,
                s.added_p99_ms,
                s.added_p999_ms,
                s.lag_p99_ms,
                s.lag_growth_ms,
                if s.sustained { "" } else { " ✗" },
                s.server_cpu * 100.0,
                s.server_demand * 100.0,
                s.tool_cpu * 100.0,
                s.tool_demand * 100.0,
            );
        }
        if let (Some(d), Some(z)) = (picked.get(DEFAULT), picked.get(ZERO))
            && players <= 500
        {
            let over = d.added_p99_ms - z.added_p99_ms;
            verdicts.push(format!(
                "- {kbps} kbit/s × {players}: the default's added p99 {:.1} ms, {:+.1} ms from tern without merging ({:.1} ms): within {P99_SLACK_MS} ms {}",
                d.added_p99_ms,
                over,
                z.added_p99_ms,
                if over <= P99_SLACK_MS { "**met**" } else { "**missed**" }
            ));
        }
        if let (Some(d), Some(n)) = (picked.get(DEFAULT), picked.get(NGINX))
            && players >= 1000
            && n.cpu_secs_per_gb > 0.0
        {
            let share = d.cpu_secs_per_gb / n.cpu_secs_per_gb;
            verdicts.push(format!(
                "- {kbps} kbit/s × {players}: the default's CPU-s/GB {:.2} is {share:.2} of nginx-rtmp's ({:.2}): at most ⅔ {}",
                d.cpu_secs_per_gb,
                n.cpu_secs_per_gb,
                if share <= CPU_SHARE { "**met**" } else { "**missed**" }
            ));
        }
    }
    if !verdicts.is_empty() {
        out.push_str("\nGoals:\n\n");
        for v in verdicts {
            out.push_str(&v);
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(server: &str, players: usize, cpu_gb: f64, p99: f64) -> Record {
        let mut s: MediaStep = serde_json::from_value(serde_json::json!({
            "server": server, "bitrate_kbps": 2500, "players": players,
            "playing": players, "failed": 0, "window_secs": 6.0,
            "delivered_bytes": 1_000_000_000u64, "frames": 1000, "lost_frames": 0,
            "lag_p50_ms": 1.0, "lag_p99_ms": p99, "lag_max_ms": p99, "lag_growth_ms": 0.0,
            "added_p50_ms": 1.0, "added_p99_ms": p99, "added_p999_ms": p99 + 1.0,
            "publisher_late_ms": 0.0, "player_bytes": [1, 2, 3],
            "player_max_lag_ms": [1.0, 2.0, 3.0], "server_cpu_secs": cpu_gb,
            "server_cpu": 0.2, "tool_cpu": 0.2, "server_demand": 0.2, "tool_demand": 0.2,
            "server_rss_base": 0, "server_rss_stream": 0, "server_rss": 0,
            "cpu_secs_per_gb": 0.0, "rss_per_player": 0.0, "sustained": true,
            "messages_sent": 0
        }))
        .expect("a media step");
        s.derive();
        Record::Media(s)
    }

    #[test]
    fn goals_are_judged_per_step() {
        let records = vec![
            step(DEFAULT, 100, 1.0, 12.0),
            step(ZERO, 100, 1.0, 6.0),
            step(NGINX, 100, 1.0, 3.0),
            step(DEFAULT, 500, 1.0, 9.0),
            step(ZERO, 500, 1.0, 6.0),
            step(NGINX, 500, 1.0, 3.0),
            step(DEFAULT, 1000, 0.6, 100.0),
            step(FIXED, 1000, 0.6, 100.0),
            step(NGINX, 1000, 1.0, 30.0),
        ];
        let text = render(&records);
        assert!(
            text.contains("× 100: the default's added p99 12.0 ms, +6.0 ms"),
            "{text}"
        );
        assert!(text.contains("(6.0 ms): within 5 ms **missed**"), "{text}");
        assert!(text.contains("× 500: the default's added p99 9.0 ms, +3.0 ms from tern without merging (6.0 ms): within 5 ms **met**"), "{text}");
        assert!(
            text.contains("is 0.60 of nginx-rtmp's (1.00): at most ⅔ **met**"),
            "{text}"
        );
        assert!(
            text.contains("| 2500 kbit/s | 1000 | tern-merge-100-fixed | 0.60 | 0.60 |"),
            "{text}"
        );
    }

    #[test]
    fn nothing_without_the_default_and_the_peer() {
        assert_eq!(render(&[step(ZERO, 100, 1.0, 5.0)]), "");
    }
}
