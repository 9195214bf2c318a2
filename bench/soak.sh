#!/usr/bin/env bash
# Soak: tern under churn for DURATION seconds (docs/reliability.md).
#
#   bench/soak.sh DURATION      e.g. 3600 (the hour), 180 (CI)
#
# `tern-load soak` keeps PLAYERS players (each 5-30 s, then replaced),
# PUBLISHERS publishers (20-40 s on, 3 s off, one room each) and SO_CLIENTS
# shared-object clients (half RTMP, half WebSocket; 10-40 s each, writing
# about once a second, in SO_ROOMS rooms renamed every ROOM_GENERATION s)
# busy, and checks that no shared-object change is lost or duplicated.
# Every 10 s the script samples the server's RSS, descriptors and threads
# (/proc) and its connections, rooms, streams and objects (/api/stats).
# After the load it waits for room_idle (5 s here) to pass.
#
# Pass: no change lost or duplicated, no client error; after WARMUP
# seconds of load, RSS and descriptor counts stay within 5 % (max / min);
# when the load stops, rooms, streams, objects and connections go to 0.
# Writes OUT/samples.tsv, OUT/load.json, OUT/summary.txt and OUT/soak.png
# (gnuplot); exit status 1 if a check fails.
#
# Environment: PLAYERS=500 PUBLISHERS=4 SO_CLIENTS=200 SO_ROOMS=20
# ROOM_GENERATION=60 BITRATE=300 (kbit/s per stream) WARMUP (default: a
# quarter of DURATION, at most 300 s) PROFILE=release|debug OUT=dir.
# HEAP=1: run the `count-allocations` build (release) and sample its live
# heap (`tern_heap_live_bytes` in /metrics) beside RSS, to tell a leak (the
# live heap grows) from memory the allocator keeps (RSS grows, live heap
# flat); its spread is reported as a note, and drawn in the plot.
set -euo pipefail
source "$(dirname "$0")/common.sh"
DURATION=${1:?usage: bench/soak.sh DURATION_SECONDS}
OUT=${OUT:-$(mktemp -d /tmp/tern-soak.XXXXXX)}
PROFILE=${PROFILE:-release}
WARMUP=${WARMUP:-$(( DURATION / 4 < 300 ? DURATION / 4 : 300 ))}
ROOM_IDLE=5
mkdir -p "$OUT"
# A stop file left by an earlier run into the same OUT would end the
# sampler after its first sample.
rm -f "$OUT/stop"
if [ "${HEAP:-0}" = 1 ]; then
    build_counting
elif [ "$PROFILE" = release ]; then
    build
else
    # Debug (CI): the feature set of `cargo test --workspace`, whose
    # dependencies are then already built (tests/src/lib.rs, tern_binary).
    (cd "$ROOT" && cargo build --locked -q --workspace --tests --bin tern --bin tern-load)
    LOAD="$ROOT/target/debug/tern-load"
    TERN="$ROOT/target/debug/tern"
fi
raise_fd_limit
TERN_SCOPES="room_idle_secs = $ROOM_IDLE" start_tern "$OUT/tern"
trap 'stop_tern' EXIT

# The sampler: one line every 10 s until OUT/stop exists.
python3 - "$TERN_PID" "$TERN_HTTP_PORT" "$OUT" <<'PY' &
import json, os, sys, time, urllib.request
pid, port, out = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.time()
with open(os.path.join(out, "samples.tsv"), "w") as f:
    f.write("t\trss_kb\tfds\tthreads\trtmp\tws\trooms\tstreams\tobjects\theap_kb\n")
    while True:
        status = open(f"/proc/{pid}/status").read()
        field = lambda k: int(next(l.split()[1] for l in status.splitlines() if l.startswith(k + ":")))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        try:
            stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=20))
            rooms = sum(1 for s in stats["scopes"] if s["path"].count("/") > 1)
            counts = (f"{stats['connections']['rtmp']}\t{stats['connections']['websocket']}\t"
                      f"{rooms}\t{len(stats['streams'])}\t{len(stats['shared_objects'])}")
        except Exception as e:  # a busy machine: keep the /proc figures, mark the rest
            print(f"soak: /api/stats did not answer: {e}", file=sys.stderr)
            counts = "\t".join(["nan"] * 5)
        heap = "nan"  # only the count-allocations build has the gauge
        try:
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20).read().decode()
            heap = next((f"{int(l.split()[1]) / 1024:.0f}" for l in metrics.splitlines()
                         if l.startswith("tern_heap_live_bytes ")), "nan")
        except Exception as e:
            print(f"soak: /metrics did not answer: {e}", file=sys.stderr)
        f.write(f"{time.time() - start:.0f}\t{field('VmRSS')}\t{fds}\t{field('Threads')}\t{counts}\t{heap}\n")
        f.flush()
        if os.path.exists(os.path.join(out, "stop")):
            break
        time.sleep(10)
PY
SAMPLER=$!

echo "soak: $DURATION s of load, samples in $OUT/samples.tsv"
load_status=0
load soak --rtmp "127.0.0.1:$TERN_PORT" --ws "127.0.0.1:$TERN_HTTP_PORT" \
    --duration "$DURATION" --players "${PLAYERS:-500}" --publishers "${PUBLISHERS:-4}" \
    --so-clients "${SO_CLIENTS:-200}" --so-rooms "${SO_ROOMS:-20}" \
    --room-generation "${ROOM_GENERATION:-60}" --bitrate "${BITRATE:-300}" \
    > "$OUT/load.json" || load_status=$?
LOAD_END=$(awk 'END { print $1 }' "$OUT/samples.tsv")
# Let room_idle pass (rooms and objects linger that long), and one more sample.
sleep $(( ROOM_IDLE * 2 + 12 ))
touch "$OUT/stop"
wait "$SAMPLER" || echo "soak: the sampler failed" >&2

# The checks (their exit status is the script's; the plot is drawn either way).
set +e
python3 - "$OUT" "$WARMUP" "$LOAD_END" "$load_status" <<'PY' | tee "$OUT/summary.txt"
import json, sys
out, warmup, load_end, load_status = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rows = [l.rstrip("\n").split("\t") for l in open(f"{out}/samples.tsv")]
head, rows = rows[0], [dict(zip(rows[0], map(float, r))) for r in rows[1:]]
steady = [r for r in rows if warmup <= r["t"] <= load_end]
ok = True
def check(cond, what):
    global ok
    ok &= cond
    print(("pass  " if cond else "FAIL  ") + what)
try:
    load = json.load(open(f"{out}/load.json"))
except Exception as e:
    load = {}
    check(False, f"the load tool printed no report (exit {load_status}): {e}")
if load:
    print("load: " + json.dumps(load))
    check(load["skipped"] == 0 and load["repeated"] == 0,
          f"shared-object changes: {load['writes']} writes, {load['acks']} acks, {load['changes']} changes "
          f"received, {load['skipped']} skipped, {load['repeated']} repeated")
    errors = load["publish_errors"] + load["play_errors"] + load["so_errors"]
    check(errors == 0, f"client errors: {errors} (first: {load['first_error']})")
    check(load["acks"] > 0 and load["changes"] > 0 and load["played_bytes"] > 0, "load flowed")
for key in ("rss_kb", "fds"):
    vals = [r[key] for r in steady]
    if len(vals) < 2:
        check(False, f"{key}: fewer than 2 samples after the {warmup:.0f} s warm-up")
        continue
    lo, hi = min(vals), max(vals)
    check((hi - lo) / lo <= 0.05,
          f"{key} after {warmup:.0f} s warm-up: min {lo:.0f}, max {hi:.0f}, spread {100 * (hi - lo) / lo:.1f} % "
          f"(first {vals[0]:.0f}, last {vals[-1]:.0f}, {len(vals)} samples)")
heap = [r["heap_kb"] for r in steady if r["heap_kb"] == r["heap_kb"]]
if len(heap) >= 2:
    lo, hi = min(heap), max(heap)
    print(f"note  live heap (kB) after {warmup:.0f} s warm-up: min {lo:.0f}, max {hi:.0f}, "
          f"spread {100 * (hi - lo) / lo:.1f} % (first {heap[0]:.0f}, last {heap[-1]:.0f}, {len(heap)} samples); "
          f"after the load {rows[-1]['heap_kb']:.0f}")
missing = sum(1 for r in rows if r["rooms"] != r["rooms"])
if missing:
    print(f"note  /api/stats did not answer within 20 s for {missing} of {len(rows)} samples")
last = rows[-1]
check(last["rooms"] == 0 and last["objects"] == 0 and last["streams"] == 0
      and last["rtmp"] == 0 and last["ws"] == 0,
      f"after the load (t={last['t']:.0f} s): rooms {last['rooms']:.0f}, streams {last['streams']:.0f}, "
      f"objects {last['objects']:.0f}, connections {last['rtmp'] + last['ws']:.0f}; "
      f"RSS {last['rss_kb']:.0f} kB, descriptors {last['fds']:.0f}")
rows = [r for r in rows if r["rooms"] == r["rooms"]]
peak = max(rows, key=lambda r: r["rtmp"] + r["ws"])
print(f"peak connections {peak['rtmp'] + peak['ws']:.0f} at t={peak['t']:.0f} s; peak rooms "
      f"{max(r['rooms'] for r in rows):.0f}; threads {min(r['threads'] for r in rows):.0f}-{max(r['threads'] for r in rows):.0f}")
print("soak: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
status=${PIPESTATUS[0]}
set -e

if command -v gnuplot > /dev/null; then
    gnuplot <<GP
set terminal pngcairo size 1000,700 font ",10"
set output "$OUT/soak.png"
set multiplot layout 2,1 title "tern soak: $DURATION s of churn (samples every 10 s)"
set key outside right
set xlabel "seconds"
set arrow from $WARMUP, graph 0 to $WARMUP, graph 1 nohead dt 2
set arrow from $LOAD_END, graph 0 to $LOAD_END, graph 1 nohead dt 2
set ylabel "RSS (MB)"
set y2label "descriptors"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot "$OUT/samples.tsv" using 1:(\$2/1024) skip 1 axes x1y1 with lines lw 2 title "RSS (MB)", \
     "" using 1:(\$10/1024) skip 1 axes x1y1 with lines lw 2 title "live heap (MB)", \
     "" using 1:3 skip 1 axes x1y2 with lines lw 2 title "descriptors"
unset y2label
unset y2tics
set ytics mirror
set ylabel "count"
plot "$OUT/samples.tsv" using 1:(\$5+\$6) skip 1 with lines lw 2 title "connections", \
     "" using 1:7 skip 1 with lines title "rooms", \
     "" using 1:9 skip 1 with lines title "shared objects", \
     "" using 1:8 skip 1 with lines title "streams"
unset multiplot
GP
    echo "soak: plot in $OUT/soak.png"
else
    echo "soak: gnuplot not installed, no plot (apt-get install gnuplot-nox)"
    status=1
fi
exit "$status"
