#!/usr/bin/env bash
# The whole comparison in one run (about 20 minutes): installs the peers,
# builds in release, runs media, idle and shared-object loads against tern
# and its peers, then prints the tables (docs/benchmarks.md has the last
# results and how to read them).
#
#   bench/run-all.sh                  OUT=dir to keep the records elsewhere
set -euo pipefail
here=$(dirname "$0")
source "$here/common.sh"
export OUT=${OUT:-$(mktemp -d /tmp/tern-bench.XXXXXX)}
mkdir -p "$OUT"
bash "$here/install-peers.sh" >&2
build
{
    echo "## Machine"
    echo
    machine
    echo
} > "$OUT/machine.md"
bash "$here/media.sh"
bash "$here/idle.sh"
bash "$here/so.sh"
cat "$OUT/machine.md"
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$LOAD" report "$OUT/results.jsonl" | tee "$OUT/report.md"
echo "records: $OUT/results.jsonl, tables: $OUT/report.md" >&2
