#!/usr/bin/env bash
# Heap allocations per relayed media message, under load: a `tern` built
# with `--features count-allocations` (its own target directory, so the
# ordinary build is left alone) serves one publisher and 1, 10, 100, 500
# players; `tern-load media --metrics-url` reads the server's heap counters
# at the start and the end of every window. Server on CPU 0, load tool on
# CPU 1, same configuration as media.sh. Prints the table of
# docs/benchmarks-allocations.md and appends JSON records to
# $OUT/results.jsonl.
#
#   bench/alloc.sh [BITRATE_KBPS]         default: 2500
#   STEPS=1,10,100,500 SETTLE=12 WINDOW=6 OUT=dir
#   FLV=1: the players are HTTP-FLV players (`GET /live/NAME.flv` on the
#   HTTP port; the publisher stays RTMP), labelled tern-http-flv
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-alloc.XXXXXX)}
# 12 s: a player's first acknowledgement (after 2.5 MB, 8 s at 2.5 Mbit/s)
# allocates its input buffer once; with a shorter settle those one-time
# allocations fall into the window and look like a per-player cost.
SETTLE=${SETTLE:-12}
WINDOW=${WINDOW:-6}
STEPS=${STEPS:-1,10,100,500}
kbps=${1:-2500}
build_counting

raise_fd_limit
mkdir -p "$OUT"
machine >&2
start_tern "$OUT/tern-alloc-$kbps"
http_port=$(sed -n 's/^http_bind = "127.0.0.1:\([0-9]*\)"$/\1/p' "$OUT/tern-alloc-$kbps/tern.toml")
wait_port "$http_port"
players=(--label tern)
[ "${FLV:-0}" = 1 ] && players=(--label tern-http-flv --flv-http "127.0.0.1:$http_port")
load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$kbps" --steps "$STEPS" \
    --settle "$SETTLE" --window "$WINDOW" --server-pid "$TERN_PID" "${players[@]}" \
    --metrics-url "http://127.0.0.1:$http_port/metrics" \
    >> "$OUT/results.jsonl" || echo "tern media run at $kbps kbit/s failed" >&2
stop_tern
"$LOAD" report "$OUT/results.jsonl"
echo "records: $OUT/results.jsonl" >&2
