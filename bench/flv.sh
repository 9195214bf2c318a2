#!/usr/bin/env bash
# HTTP-FLV players against RTMP players on tern, one server run each, same
# publisher (RTMP) and steps: CPU-s per delivered GB, RSS per player,
# latency (docs/benchmarks.md, "HTTP-FLV players").
#
#   bench/flv.sh [KBPS…]        (default 2500; STEPS=100,500,1000; REPEAT=1)
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-bench.XXXXXX)}
SETTLE=${SETTLE:-2}
WINDOW=${WINDOW:-6}
STEPS=${STEPS:-100,500,1000}
bitrates=("$@")
[ ${#bitrates[@]} -gt 0 ] || bitrates=(2500)
build
raise_fd_limit
mkdir -p "$OUT"
run_rtmp() {
    start_tern "$OUT/tern-rtmp-$1-$2"
    load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$1" --steps "$STEPS" \
        --settle "$SETTLE" --window "$WINDOW" --label tern-rtmp --server-pid "$TERN_PID" \
        >> "$OUT/results.jsonl" || echo "RTMP run at $1 kbit/s failed" >&2
    stop_tern
}
run_flv() {
    start_tern "$OUT/tern-flv-$1-$2"
    load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$1" --steps "$STEPS" \
        --settle "$SETTLE" --window "$WINDOW" --label tern-http-flv --server-pid "$TERN_PID" \
        --flv-http "127.0.0.1:$TERN_HTTP_PORT" \
        >> "$OUT/results.jsonl" || echo "HTTP-FLV run at $1 kbit/s failed" >&2
    stop_tern
}
# REPEAT=n runs each pair n times, alternating which server goes first, so
# a drift in the machine's load falls on both sides (compare medians).
for kbps in "${bitrates[@]}"; do
    for ((r = 1; r <= ${REPEAT:-1}; r++)); do
        if ((r % 2)); then
            run_rtmp "$kbps" "$r"; run_flv "$kbps" "$r"
        else
            run_flv "$kbps" "$r"; run_rtmp "$kbps" "$r"
        fi
    done
done
echo "records: $OUT/results.jsonl" >&2
