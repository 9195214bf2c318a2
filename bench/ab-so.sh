#!/usr/bin/env bash
# A/B of two tern binaries on the shared-object fan-out: the binaries take
# turns (ROUNDS times each, alternating, so both see the same machine), each
# serving SUBSCRIBERS subscribers and 10 writers at RATE changes/s per
# writer for 8 s; prints the server's user and system CPU per delivery
# (from /proc over the last 5 s), the latency p50/p99, delivered changes/s
# and the load tool's CPU of each run. RATE=0: as fast as deliveries allow.
#
#   bench/ab-so.sh OLD_TERN NEW_TERN
#   ROUNDS=3 RATE=1 SUBSCRIBERS=1000 WS_SHARE=0 OUT=dir
#
# AB=load: OLD and NEW are two tern-load binaries instead, taking turns
# against this checkout's tern (what a change to the load tool does to the
# latency it measures).
#
# To get an older binary: git worktree add /tmp/old <commit> &&
# (cd /tmp/old && cargo build --release -p tern-runtime-std).
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -eq 2 ] || { echo "usage: $0 OLD_TERN NEW_TERN" >&2; exit 2; }
binaries=("$1" "$2")
AB=${AB:-tern}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-1}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
WS_SHARE=${WS_SHARE:-0}
OUT=${OUT:-$(mktemp -d /tmp/tern-ab.XXXXXX)}
raise_fd_limit
mkdir -p "$OUT"
(cd "$ROOT" && cargo build --release --locked -q -p tern-bench --bin tern-load)
ticks=$(getconf CLK_TCK)
for round in $(seq "$ROUNDS"); do
    for which in 0 1; do
        if [ "$AB" = load ]; then LOAD=${binaries[$which]}; else TERN=${binaries[$which]}; fi
        label=$([ "$which" = 0 ] && echo old || echo new)
        start_tern "$OUT/$label-$round"
        room="chat/ab$round$which"
        args=(--url "rtmp://127.0.0.1:$TERN_PORT/$room" --subscribers "$SUBSCRIBERS"
              --rate "$RATE" --writers 10 --size 128 --window 4 --duration 8
              --label "tern-$label" --server-pid "$TERN_PID")
        if [ "$WS_SHARE" != 0 ]; then
            args+=(--ws-url "ws://127.0.0.1:$TERN_HTTP_PORT/$room" --ws-share "$WS_SHARE")
        fi
        load so "${args[@]}" > "$OUT/$label-$round.json" &
        loader=$!
        sleep 4
        read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$TERN_PID/stat")
        sleep 5
        read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$TERN_PID/stat")
        wait "$loader"
        stop_tern
        python3 - "$OUT/$label-$round.json" "$label" "$ticks" "$u0" "$s0" "$u1" "$s1" <<'PY'
import json, sys
record = json.loads(open(sys.argv[1]).read().splitlines()[-1])
label, ticks = sys.argv[2], int(sys.argv[3])
u0, s0, u1, s1 = map(int, sys.argv[4:8])
delivered = record["delivered_per_sec"] * 5
per = lambda t: t / ticks / delivered * 1e6
print(f'{label}: user {per(u1 - u0):.2f} µs, system {per(s1 - s0):.2f} µs per delivery; '
      f'latency p50 {record["latency_p50_ms"]} ms, p99 {record["latency_p99_ms"]} ms; '
      f'{record["delivered_per_sec"]:.0f} delivered/s; load tool CPU {record["tool_cpu"]:.0%}')
PY
    done
done
