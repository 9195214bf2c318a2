#!/usr/bin/env bash
# Added latency and CPU per delivered GB: tern with its default (adaptive)
# merge window, with the fixed 100 ms window, without merging, and
# nginx-rtmp, at each of STEPS players x KBPS. Every (step, server) pair is
# its own run of one step on a fresh server, and the four servers take
# turns step by step (the order rotates), so load from other users of a
# shared machine hits them alike. tern's runs also measure chat during
# video: CHAT_PLAYERS of the players use a shared object that the
# publisher changes CHAT_RATE times a second, and /metrics is polled every
# second for the merge window in force ($OUT/<run>/merge-window.log). The
# machine's load average is logged before every run. Prints the tables (`tern-load report`, the
# latency table last) and writes the records to $OUT/results.jsonl.
#
#   bench/latency.sh
#   KBPS=2500 STEPS=100,500,1000 ROUNDS=1 SETTLE=3 WINDOW=8 CHAT_PLAYERS=10 CHAT_RATE=10 OUT=dir
#   RUN_TIMEOUT=180 (seconds one run may take; a starved run is cut, not waited for)
set -euo pipefail
source "$(dirname "$0")/common.sh"
KBPS=${KBPS:-2500}
STEPS=${STEPS:-100,500,1000}
ROUNDS=${ROUNDS:-1}
SETTLE=${SETTLE:-3}
WINDOW=${WINDOW:-8}
CHAT_PLAYERS=${CHAT_PLAYERS:-10}
CHAT_RATE=${CHAT_RATE:-10}
RUN_TIMEOUT=${RUN_TIMEOUT:-180}
OUT=${OUT:-$(mktemp -d /tmp/tern-latency.XXXXXX)}
raise_fd_limit
mkdir -p "$OUT"
build
machine > "$OUT/machine.md"

# run_one SERVER PLAYERS ROUND: one step on a fresh server.
run_one() {
    local server=$1 players=$2 round=$3 dir="$OUT/$1-$2-$3"
    echo "$(date -u +%H:%M:%S) $server $players players, load average $(cut -d' ' -f1-3 /proc/loadavg)" \
        | tee -a "$OUT/uptime.log" >&2
    local common=(--bitrate "$KBPS" --steps "$players" --settle "$SETTLE" --window "$WINDOW"
        --stream-baseline 0 --label "$server")
    if [ "$server" = nginx-rtmp ]; then
        start_nginx "$dir"
        # shellcheck disable=SC2086 # NGINX_PIDS is two options
        timeout "$RUN_TIMEOUT" taskset -c "$LOAD_CPU" "$LOAD" media --url "rtmp://127.0.0.1:$NGINX_PORT/live" "${common[@]}" $NGINX_PIDS \
            >> "$OUT/results.jsonl" 2> "$dir.log" || echo "$server $players failed" >&2
        stop_nginx
    else
        case $server in
            tern) TERN_STREAMS="" ;;
            tern-merge-100-fixed) TERN_STREAMS=$'merge_write_ms = 100\nmerge_write_adaptive = false' ;;
            tern-merge-0) TERN_STREAMS="merge_write_ms = 0" ;;
        esac
        TERN_STREAMS=$TERN_STREAMS start_tern "$dir"
        # The merge window in force and the load that set it, every second
        # (/metrics): what the adaptive rule decided during the run.
        (while kill -0 "$TERN_PID" 2>/dev/null; do
            echo "$(date -u +%T) $(curl -s "http://127.0.0.1:$TERN_HTTP_PORT/metrics" |
                grep -E '^tern_(merge_window_microseconds|media_load_per_second) ' | tr '\n' ' ')"
            sleep 1
        done > "$dir/merge-window.log") &
        local poller=$!
        timeout "$RUN_TIMEOUT" taskset -c "$LOAD_CPU" "$LOAD" media --url "rtmp://127.0.0.1:$TERN_PORT/live" "${common[@]}" \
            --chat-players "$CHAT_PLAYERS" --chat-rate "$CHAT_RATE" --server-pid "$TERN_PID" \
            >> "$OUT/results.jsonl" 2> "$dir.log" || echo "$server $players failed" >&2
        echo "  merge window at the end of the window: $(tail -n 2 "$dir/merge-window.log" | head -n 1)" >> "$dir.log"
        stop_tern
        wait "$poller" 2>/dev/null || true
    fi
    grep -E " players: |chat during video|merge window" "$dir.log" >&2 || cat "$dir.log" >&2
}

servers=(tern tern-merge-100-fixed tern-merge-0 nginx-rtmp)
turn=0
for round in $(seq "$ROUNDS"); do
    for players in ${STEPS//,/ }; do
        for i in 0 1 2 3; do
            run_one "${servers[$(( (i + turn) % 4 ))]}" "$players" "$round"
        done
        turn=$(( turn + 1 ))
    done
done
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.md"
cat "$OUT/machine.md"
echo
"$LOAD" report "$OUT/results.jsonl" | tee "$OUT/report.md"
echo "records: $OUT/results.jsonl, load averages: $OUT/uptime.log" >&2
