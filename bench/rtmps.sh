#!/usr/bin/env bash
# What TLS costs: CPU-seconds per delivered GB of one tern, 200 players of
# the same stream over plain RTMP, then over RTMPS (rustls, ring), in one
# run of one server (the publisher stays on plain RTMP). Server on CPU 0,
# load tool on CPU 1. ROUNDS=N repeats the pair, plain and TLS taking turns
# on the same server. Appends JSON records (labels tern-rtmp, tern-rtmps)
# to $OUT/results.jsonl and prints the ratio per round.
#
#   bench/rtmps.sh [BITRATE_KBPS]      default: 2500
#   PLAYERS=200 SETTLE=3 WINDOW=8 ROUNDS=3 OUT=dir
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-$(mktemp -d /tmp/tern-bench.XXXXXX)}
SETTLE=${SETTLE:-3}
WINDOW=${WINDOW:-8}
ROUNDS=${ROUNDS:-3}
PLAYERS=${PLAYERS:-200}
kbps=${1:-2500}
raise_fd_limit
mkdir -p "$OUT"
build
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2> /dev/null
RTMPS_PORT=$(free_port)
TERN_SERVER="rtmps_bind = \"127.0.0.1:$RTMPS_PORT\"" \
TERN_TABLES="[tls]
cert = \"$OUT/cert.pem\"
key = \"$OUT/key.pem\"" \
    start_tern "$OUT/tern-rtmps-$kbps"
wait_port "$RTMPS_PORT"
common=(--url "rtmp://127.0.0.1:$TERN_PORT/live" --bitrate "$kbps" --steps "$PLAYERS"
        --settle "$SETTLE" --window "$WINDOW" --server-pid "$TERN_PID")
for round in $(seq "$ROUNDS"); do
    load media "${common[@]}" --name "plain$round" --label tern-rtmp \
        >> "$OUT/results.jsonl" || echo "plain RTMP run $round failed" >&2
    load media "${common[@]}" --name "tls$round" --label tern-rtmps \
        --rtmps-address "127.0.0.1:$RTMPS_PORT" --tls-ca "$OUT/cert.pem" \
        >> "$OUT/results.jsonl" || echo "RTMPS run $round failed" >&2
done
stop_tern
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [r for r in rows if r.get("mode") == "media"]
def per_gb(r):
    return r["server_cpu_secs"] / (r["delivered_bytes"] / 1e9) if r["delivered_bytes"] else float("nan")
plain = [r for r in steps if r["server"] == "tern-rtmp"]
tls = [r for r in steps if r["server"] == "tern-rtmps"]
for i, (p, t) in enumerate(zip(plain, tls), 1):
    print(f"round {i}: {p['players']} players x {p['bitrate_kbps']} kbit/s: "
          f"RTMP {per_gb(p):.3f} CPU-s/GB (cpu {p['server_cpu']:.2f}, lost {p['lost_frames']}, failed {p['failed']}), "
          f"RTMPS {per_gb(t):.3f} CPU-s/GB (cpu {t['server_cpu']:.2f}, lost {t['lost_frames']}, failed {t['failed']}), "
          f"ratio {per_gb(t) / per_gb(p):.2f}")
PY
echo "records: $OUT/results.jsonl" >&2
