#!/usr/bin/env bash
# Memory per idle connection: N connections complete the handshake and
# connect, then sit idle; server RSS before and after. tern vs nginx-rtmp.
#
#   bench/idle.sh [CONNECTIONS]           default: 5000
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-bench.XXXXXX)}
n=${1:-5000}
raise_fd_limit
mkdir -p "$OUT"
start_tern "$OUT/tern-idle"
load idle --url "rtmp://127.0.0.1:$TERN_PORT/live" --connections "$n" --label tern \
    --server-pid "$TERN_PID" >> "$OUT/results.jsonl" || echo "tern idle run failed" >&2
stop_tern
start_nginx "$OUT/nginx-idle"
# shellcheck disable=SC2086
load idle --url "rtmp://127.0.0.1:$NGINX_PORT/live" --connections "$n" --label nginx-rtmp \
    $NGINX_PIDS >> "$OUT/results.jsonl" || echo "nginx-rtmp idle run failed" >&2
stop_nginx
echo "records: $OUT/results.jsonl" >&2
