#!/usr/bin/env bash
# A/B of two tern binaries on live media: the binaries take turns (ROUNDS
# times each, alternating, so both see the same machine), each serving one
# publisher and STEPS players at KBPS; prints the load tool's line for each
# step (CPU-s per delivered GB, RSS per player, lag, CPU used/wanted).
#
#   bench/ab-media.sh OLD_TERN NEW_TERN
#   ROUNDS=3 KBPS=2500 STEPS=100,500 WINDOW=10 SETTLE=2 OUT=dir
#   FLV=1: the players are HTTP-FLV players (`--flv-http`) instead of RTMP
#
# To get an older binary: git worktree add /tmp/old <commit> &&
# (cd /tmp/old && cargo build --release -p tern-runtime-std).
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -eq 2 ] || { echo "usage: $0 OLD_TERN NEW_TERN" >&2; exit 2; }
binaries=("$1" "$2")
ROUNDS=${ROUNDS:-3}
KBPS=${KBPS:-2500}
STEPS=${STEPS:-100,500}
WINDOW=${WINDOW:-10}
SETTLE=${SETTLE:-2}
OUT=${OUT:-$(mktemp -d /tmp/tern-ab-media.XXXXXX)}
raise_fd_limit
mkdir -p "$OUT"
(cd "$ROOT" && cargo build --release --locked -q -p tern-bench --bin tern-load)
for round in $(seq "$ROUNDS"); do
    for which in 0 1; do
        TERN=${binaries[$which]}
        label=$([ "$which" = 0 ] && echo old || echo new)
        start_tern "$OUT/$label-$round"
        load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$KBPS" --steps "$STEPS" \
            --settle "$SETTLE" --window "$WINDOW" --label "tern-$label" --server-pid "$TERN_PID" \
            ${FLV:+--flv-http "127.0.0.1:$TERN_HTTP_PORT"} \
            > "$OUT/$label-$round.jsonl" 2> "$OUT/$label-$round.log" ||
            echo "$label run $round failed" >&2
        stop_tern
        grep " players: " "$OUT/$label-$round.log" || cat "$OUT/$label-$round.log" >&2
    done
done
echo "records: $OUT" >&2
