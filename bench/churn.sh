#!/usr/bin/env bash
# What tern keeps after a crowd leaves: CONNECTIONS idle clients connect,
# then all disconnect; prints the server's anonymous RSS before, with them,
# and WAIT seconds after they left. Run it with TERN_SERVER="heap_trim_secs = 0"
# and without (default 10 s; WAIT defaults to 12) to see what the trim returns.
#
#   bench/churn.sh      CONNECTIONS=3000 WAIT=12 OUT=dir
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-bench.XXXXXX)}
CONNECTIONS=${CONNECTIONS:-3000}
raise_fd_limit
mkdir -p "$OUT"
start_tern "$OUT/tern-churn"
anon() { awk '/^RssAnon/ {print $2 " kB"}' "/proc/$TERN_PID/status"; }
echo "before: $(anon)"
load idle --url "rtmp://127.0.0.1:$TERN_PORT/live" --connections "$CONNECTIONS" \
    --server-pid "$TERN_PID" --settle 1 | tail -1
sleep "${WAIT:-12}"
echo "${WAIT:-12} s after all left: $(anon)"
stop_tern
