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
set -euo pipefail
source "$(dirname "$0")/common.sh"
KBPS=${KBPS:-2500}
STEPS=${STEPS:-2000,3000,4000}
RUNS=${RUNS:-3}
SETTLE=${SETTLE:-3}
WINDOW=${WINDOW:-10}
OUT=${OUT:-$(mktemp -d /tmp/tern-stall.XXXXXX)}
raise_fd_limit
mkdir -p "$OUT"
build
machine > "$OUT/machine.md"
last=${STEPS##*,}
for run in $(seq "$RUNS"); do
    echo "$(date -u +%H:%M:%S) run $run, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    start_tern "$OUT/run-$run"
    load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$KBPS" --steps "$STEPS" \
        --settle "$SETTLE" --window "$WINDOW" --label "tern-run-$run" --server-pid "$TERN_PID" \
        > "$OUT/run-$run.jsonl" || echo "run $run: the load tool failed" >&2
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
