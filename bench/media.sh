#!/usr/bin/env bash
# Live media: tern vs nginx-rtmp, same synthetic stream, same player steps,
# one after the other in this run. Server on CPU 0, load tool on CPU 1.
# Each ramp stops after the first step with lag growth (or lost frames) or
# with the load tool saturated. Appends JSON records to $OUT/results.jsonl.
#
#   bench/media.sh [BITRATE_KBPS...]      default: 600 2500
# Then tern again without its GOP cache (nginx-rtmp keeps none) at
# NO_GOP_STEPS (default 100,500,1000; empty to skip), labelled
# tern-no-gop-cache: the same features, for RSS per player.
#
# ROUNDS=N runs all of it N times, tern and nginx-rtmp taking turns; the
# report then shows each step's run with the median CPU-s/GB and the range
# (a shared machine drifts by a third within minutes: nginx-rtmp's own
# figure at 1000 x 2.5 Mbit/s moved between 0.93 and 1.23 in one hour).
#
#   STEPS_600=... STEPS_2500=... NO_GOP_STEPS=... SETTLE=2 WINDOW=6 ROUNDS=1 OUT=dir
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-bench.XXXXXX)}
SETTLE=${SETTLE:-2}
WINDOW=${WINDOW:-6}
ROUNDS=${ROUNDS:-1}
bitrates=("$@")
[ ${#bitrates[@]} -gt 0 ] || bitrates=(600 2500)
raise_fd_limit
mkdir -p "$OUT"
for round in $(seq "$ROUNDS"); do
for kbps in "${bitrates[@]}"; do
    var="STEPS_$kbps"
    steps=${!var:-100,250,500,750,1000,1500,2000,3000,4000}
    start_tern "$OUT/tern-media-$kbps-$round"
    load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$kbps" --steps "$steps" \
        --settle "$SETTLE" --window "$WINDOW" --label tern --server-pid "$TERN_PID" \
        >> "$OUT/results.jsonl" || echo "tern media run at $kbps kbit/s failed" >&2
    stop_tern
    start_nginx "$OUT/nginx-media-$kbps-$round"
    # shellcheck disable=SC2086 # NGINX_PIDS is two options
    load media --url "rtmp://127.0.0.1:$NGINX_PORT/live" --bitrate "$kbps" --steps "$steps" \
        --settle "$SETTLE" --window "$WINDOW" --label nginx-rtmp $NGINX_PIDS \
        >> "$OUT/results.jsonl" || echo "nginx-rtmp media run at $kbps kbit/s failed" >&2
    stop_nginx
    if [ -n "${NO_GOP_STEPS-100,500,1000}" ]; then
        TERN_STREAMS="gop_cache = false" start_tern "$OUT/tern-no-gop-media-$kbps-$round"
        load media --url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$kbps" \
            --steps "${NO_GOP_STEPS-100,500,1000}" --settle "$SETTLE" --window "$WINDOW" \
            --label tern-no-gop-cache --server-pid "$TERN_PID" \
            >> "$OUT/results.jsonl" || echo "tern (no GOP cache) media run at $kbps kbit/s failed" >&2
        stop_tern
    fi
done
done
echo "records: $OUT/results.jsonl" >&2
