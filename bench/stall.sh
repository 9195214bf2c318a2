#!/usr/bin/env bash
# The high-player ramp, RUNS times in a row on fresh tern servers (issue 23,
# docs/benchmarks.md "A stall at 3000 players"): one publisher at KBPS and
# `tern-load media` players at STEPS. Each step's record carries a
# per-second timeline (frames, frames more than 500 ms late, the largest
# lag, the server's CPU in that second); the tool prints a "late frames"
# line for a step that had any. Ends with how many runs sustained every
# step.
#
#   bench/stall.sh
#   KBPS=2500 STEPS=2000,3000,4000 RUNS=3 SETTLE=3 WINDOW=10 OUT=dir
#
# The experiment for a shared machine (docs/benchmarks.md, "What a stall
# is"): HOG=N adds N busy loops at nice 0, on the CPUs HOG_CPUS (default
# the server's), busy HOG_ON seconds then idle HOG_OFF seconds, over and
# over while the load runs: another job taking the CPU in bursts, as a
# build does. PERF=SECS records `perf sched` system-wide for SECS seconds
# from the start of each run's last step (in $OUT/run-N.perf.data, with
# `perf sched latency` and the server's `perf sched timehist` summary in
# run-N.sched.txt).
set -euo pipefail
source "$(dirname "$0")/common.sh"
KBPS=${KBPS:-2500}
STEPS=${STEPS:-2000,3000,4000}
RUNS=${RUNS:-3}
SETTLE=${SETTLE:-3}
WINDOW=${WINDOW:-10}
HOG=${HOG:-0}
HOG_CPUS=${HOG_CPUS:-$SERVER_CPU}
HOG_ON=${HOG_ON:-3}
HOG_OFF=${HOG_OFF:-7}
PERF=${PERF:-0}
OUT=${OUT:-$(mktemp -d /tmp/tern-stall.XXXXXX)}
# hog LOG: HOG busy loops on HOG_CPUS, HOG_ON s on and HOG_OFF s off, until
# killed; LOG gets the wall-clock start of each burst.
hog() {
    local log=$1 i
    trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM
    while :; do
        sleep "$HOG_OFF"
        echo "burst $(date +%s.%N)" >> "$log"
        for i in $(seq "$HOG"); do
            taskset -c "$HOG_CPUS" timeout "$HOG_ON" bash -c 'while :; do :; done' &
        done
        wait
    done
}

# perf_at_last_step LOAD_PID PREFIX: when the step before the last has
# printed its line in PREFIX.log (the last step's players start connecting
# then; with one step, at once), records `perf sched` for PERF seconds:
# make it cover the ramp, SETTLE and WINDOW.
perf_at_last_step() {
    local load_pid=$1 prefix=$2
    [ "$PERF" -gt 0 ] || return 0
    until [ "$STEPS" = "$last" ] || grep -q " $before_last players:" "$prefix.log"; do
        kill -0 "$load_pid" 2>/dev/null || return 0
        sleep 0.2
    done
    perf sched record -a -o "$prefix.perf.data" -- sleep "$PERF" >/dev/null 2>&1 || return 0
    # Every task's largest and mean wait between waking and running, worst
    # first; then the server's own summary.
    { perf sched latency -i "$prefix.perf.data" -p -s max | head -40
      perf sched timehist -i "$prefix.perf.data" -p "$TERN_PID" -s | tail -30
    } > "$prefix.sched.txt" 2>&1 || true
}

raise_fd_limit
mkdir -p "$OUT"
build
machine > "$OUT/machine.md"
last=${STEPS##*,}
before_last=$(tr ',' '\n' <<< "$STEPS" | tail -2 | head -1)
for run in $(seq "$RUNS"); do
    echo "$(date -u +%H:%M:%S) run $run, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    start_tern "$OUT/run-$run"
    hog_pid=""
    if [ "$HOG" -gt 0 ]; then
        hog "$OUT/run-$run.hog" &
        hog_pid=$!
    fi
    : > "$OUT/run-$run.log"
    load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$KBPS" --steps "$STEPS" \
        --settle "$SETTLE" --window "$WINDOW" --label "tern-run-$run" --server-pid "$TERN_PID" \
        > "$OUT/run-$run.jsonl" 2> "$OUT/run-$run.log" &
    load_pid=$!
    tail -f --pid "$load_pid" "$OUT/run-$run.log" >&2 &
    perf_at_last_step "$load_pid" "$OUT/run-$run"
    wait "$load_pid" || echo "run $run: the load tool failed" >&2
    [ -z "$hog_pid" ] || { kill "$hog_pid" 2>/dev/null; wait "$hog_pid" 2>/dev/null || true; }
    stop_tern
done
# A run counts as sustained when its record for the last step is there and
# says so (the tool stops a ramp at its first step that is not sustained).
sustained=$(cat "$OUT"/run-*.jsonl | python3 -c '
import json, sys
last = int(sys.argv[1])
print(sum(1 for line in sys.stdin if line.strip()
          and (r := json.loads(line)).get("players") == last and r.get("sustained")))' "$last")
echo "runs sustaining $last players: $sustained of $RUNS (records in $OUT/run-*.jsonl)"
