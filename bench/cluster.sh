#!/usr/bin/env bash
# Shared-object fan-out across a three-node cluster (docs/cluster.md) next
# to one node, in the same run: a `nats-server -js` and three tern nodes
# ([cluster] on that NATS), SUBSCRIBERS RTMP subscribers and WRITERS RTMP
# writers spread round-robin over the three nodes (tern-load so --also-url),
# every writer at RATE changes/s; then one tern node alone with the same
# clients. Reports p50/p99 delivery latency (send to receipt, one clock) and
# delivered changes/s; the CPU column counts every server process given
# (--server-pid): the three nodes and nats-server, or the single node.
# All server processes share SERVER_CPU (the load tool runs on LOAD_CPU).
# Run it on an otherwise idle machine: the load average is printed with
# the figures.
#
#   bench/cluster.sh
#   SUBSCRIBERS=1000 WRITERS=10 RATE=1 SIZE=128 WARMUP=3 DURATION=20 ROUNDS=2 OUT=dir
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-bench.XXXXXX)}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
WRITERS=${WRITERS:-10}
RATE=${RATE:-1}
SIZE=${SIZE:-128}
WARMUP=${WARMUP:-3}
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-2}
command -v nats-server >/dev/null || { echo "needs nats-server (apt-get install nats-server)" >&2; exit 1; }
raise_fd_limit
mkdir -p "$OUT"
[ -x "$LOAD" ] && [ -x "$TERN" ] || build
common=(--subscribers "$SUBSCRIBERS" --writers "$WRITERS" --rate "$RATE" --size "$SIZE"
        --warmup "$WARMUP" --duration "$DURATION")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/uptime.txt" >&2

NATS_PORT=$(free_port)
taskset -c "$SERVER_CPU" nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$OUT/nats" \
    > "$OUT/nats.log" 2>&1 &
NATS_PID=$!
wait_port "$NATS_PORT"
ports=(); pids=()
for i in 1 2 3; do
    TERN_TABLES="[cluster]
nats_url = \"nats://127.0.0.1:$NATS_PORT\"
node_id = \"bench-n$i\"" start_tern "$OUT/node$i"
    ports+=("$TERN_PORT"); pids+=("$TERN_PID")
done
# Each node reads the whole stream at start; give them a moment.
sleep 1

stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    kill -TERM "$NATS_PID" 2>/dev/null || true
    wait "$NATS_PID" 2>/dev/null || true
}
trap stop_all EXIT
single_pid=""
for round in $(seq "$ROUNDS"); do
    room="chat/cluster-r$round"
    load so --url "rtmp://127.0.0.1:${ports[0]}/$room" \
        --also-url "rtmp://127.0.0.1:${ports[1]}/$room" --also-url "rtmp://127.0.0.1:${ports[2]}/$room" \
        "${common[@]}" --label tern-cluster-3 \
        --server-pid "${pids[0]}" --server-pid "${pids[1]}" --server-pid "${pids[2]}" --server-pid "$NATS_PID" \
        >> "$OUT/results.jsonl" || echo "cluster run failed" >&2
done
stop_all
trap - EXIT
start_tern "$OUT/single"
for round in $(seq "$ROUNDS"); do
    load so --url "rtmp://127.0.0.1:$TERN_PORT/chat/single-r$round" "${common[@]}" \
        --label tern-single --server-pid "$TERN_PID" \
        >> "$OUT/results.jsonl" || echo "single-node run failed" >&2
done
stop_tern
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/uptime.txt" >&2
echo "records: $OUT/results.jsonl" >&2
