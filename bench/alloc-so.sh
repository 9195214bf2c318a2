#!/usr/bin/env bash
# Heap allocations per shared-object change, under load: the counting build
# of `tern` (as bench/alloc.sh) serves WRITERS writers and N subscribers at
# RATE changes/s per writer; /metrics is read 6 s into the run and 4 s
# later. Prints allocations per change and per delivery for each
# subscriber count, all-RTMP and all-WebSocket: if nothing is allocated per
# subscriber, allocations per change do not grow with the subscribers.
#
#   bench/alloc-so.sh [SUBSCRIBERS...]    default: 10 100 1000
#   WRITERS=10 RATE=10 SIZE=128 OUT=dir
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-alloc.XXXXXX)}
WRITERS=${WRITERS:-10}
RATE=${RATE:-10}
SIZE=${SIZE:-128}
subs=("$@")
[ ${#subs[@]} -gt 0 ] || subs=(10 100 1000)
build_counting

raise_fd_limit
mkdir -p "$OUT"
start_tern "$OUT/tern-alloc-so"
wait_port "$TERN_HTTP_PORT"
allocations() {
    curl -s "http://127.0.0.1:$TERN_HTTP_PORT/metrics" |
        awk '/^tern_heap_allocations_total/ {print $2}'
}
echo "| transport | subscribers | changes/s | allocations per change | per delivery |"
echo "|---|---|---|---|---|"
for transport in rtmp ws; do
    for n in "${subs[@]}"; do
        room="chat/alloc-$transport-$n"
        args=(--url "rtmp://127.0.0.1:$TERN_PORT/$room" --subscribers "$n" --writers "$WRITERS"
            --rate "$RATE" --size "$SIZE" --duration 8 --label tern --server-pid "$TERN_PID")
        if [ "$transport" = ws ]; then
            args+=(--ws-url "ws://127.0.0.1:$TERN_HTTP_PORT/$room" --ws-share 1)
        fi
        load so "${args[@]}" > "$OUT/so-$transport-$n.json" 2> /dev/null &
        pid=$!
        sleep 6
        a0=$(allocations)
        sleep 4
        a1=$(allocations)
        wait "$pid"
        python3 - "$OUT/so-$transport-$n.json" "$a0" "$a1" "$n" "$transport" <<'PY'
import json, sys
record = json.loads(open(sys.argv[1]).read().splitlines()[-1])
a0, a1, subs, transport = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
delivered = record["delivered_per_sec"] * 4
changes = delivered / subs
print(f"| {transport} | {subs} | {changes / 4:.0f} | {(a1 - a0) / changes:.1f} | {(a1 - a0) / delivered:.3f} |")
PY
    done
done
stop_tern
