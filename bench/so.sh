#!/usr/bin/env bash
# Shared-object fan-out (RTMP) vs Redis pub/sub with the same value sizes:
# K writers, N subscribers; at a fixed rate (latency under load), at a low
# rate (LOW_RATE per writer: one change's fan-out at a time, what a single
# change costs to reach every subscriber) and as fast as deliveries allow
# (delivered changes/s). Then tern once more per subscriber count at both
# fixed rates with WS_SHARE (default 0.5) of the subscribers and writers on
# WebSocket (JSON protocol) in the same room; the report compares those
# rows with the same Redis runs. The fixed-rate runs are repeated ROUNDS
# times (tern and Redis taking turns): one run's p99 moves by a third from
# run to run on a shared machine, so the report shows and judges the median.
#
#   bench/so.sh [SUBSCRIBERS...]          default: 100 1000
#   WRITERS=10 RATE=10 LOW_RATE=1 SIZE=128 WINDOW=4 DURATION=8 WS_SHARE=0.5 ROUNDS=3 OUT=dir
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-bench.XXXXXX)}
WRITERS=${WRITERS:-10}
RATE=${RATE:-10}
LOW_RATE=${LOW_RATE:-1}
SIZE=${SIZE:-128}
WINDOW=${WINDOW:-4}
DURATION=${DURATION:-8}
WS_SHARE=${WS_SHARE:-0.5}
ROUNDS=${ROUNDS:-3}
subs=("$@")
[ ${#subs[@]} -gt 0 ] || subs=(100 1000)
raise_fd_limit
mkdir -p "$OUT"
common=(--writers "$WRITERS" --size "$SIZE" --window "$WINDOW" --duration "$DURATION")
start_tern "$OUT/tern-so"
start_redis "$OUT/redis-so"
for round in $(seq "$ROUNDS"); do
    for n in "${subs[@]}"; do
        rates=("$RATE" "$LOW_RATE")
        # The closed-loop (max rate) run measures throughput: once is enough.
        [ "$round" -gt 1 ] || rates+=(0)
        for rate in "${rates[@]}"; do
            room="so$n-$rate-r$round"
            load so --url "rtmp://127.0.0.1:$TERN_PORT/chat/$room" --subscribers "$n" \
                --rate "$rate" "${common[@]}" --label tern --server-pid "$TERN_PID" \
                >> "$OUT/results.jsonl" || echo "tern so run failed" >&2
            load so --redis "127.0.0.1:$REDIS_PORT" --so-name "$room" --subscribers "$n" \
                --rate "$rate" "${common[@]}" --label redis --server-pid "$REDIS_PID" \
                >> "$OUT/results.jsonl" || echo "redis so run failed" >&2
        done
    done
    for n in "${subs[@]}"; do
        for rate in "$RATE" "$LOW_RATE"; do
            room="chat/so$n-$rate-ws-r$round"
            load so --url "rtmp://127.0.0.1:$TERN_PORT/$room" \
                --ws-url "ws://127.0.0.1:$TERN_HTTP_PORT/$room" --ws-share "$WS_SHARE" \
                --subscribers "$n" --rate "$rate" "${common[@]}" --label tern --server-pid "$TERN_PID" \
                >> "$OUT/results.jsonl" || echo "tern so run (WebSocket share $WS_SHARE) failed" >&2
        done
    done
done
stop_tern
stop_redis
echo "records: $OUT/results.jsonl" >&2
