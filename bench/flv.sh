#!/usr/bin/env bash
# HTTP-FLV players against RTMP players on tern, one server run each, same
# publisher (RTMP) and steps: CPU-s per delivered GB, RSS per player,
# latency (docs/benchmarks.md, "HTTP-FLV players").
#
#   bench/flv.sh [KBPS…]        (default 2500; STEPS=100,500,1000)
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
for kbps in "${bitrates[@]}"; do
    start_tern "$OUT/tern-rtmp-$kbps"
    load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$kbps" --steps "$STEPS" \
        --settle "$SETTLE" --window "$WINDOW" --label tern-rtmp --server-pid "$TERN_PID" \
        >> "$OUT/results.jsonl" || echo "RTMP run at $kbps kbit/s failed" >&2
    stop_tern
    start_tern "$OUT/tern-flv-$kbps"
    load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$kbps" --steps "$STEPS" \
        --settle "$SETTLE" --window "$WINDOW" --label tern-http-flv --server-pid "$TERN_PID" \
        --flv-http "127.0.0.1:$TERN_HTTP_PORT" \
        >> "$OUT/results.jsonl" || echo "HTTP-FLV run at $kbps kbit/s failed" >&2
    stop_tern
done
echo "records: $OUT/results.jsonl" >&2
