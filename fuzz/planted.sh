#!/usr/bin/env bash
# Evidence that the `hub` target's invariants can fail (issue 23): plants a
# bug in a throw-away copy of the tree and fuzzes `hub` from an empty corpus
# until it finds it, or SECS pass.
#
#   bash fuzz/planted.sh [SECS] [PATCH]
#   defaults: 900 s, fuzz/planted/outbox-skips-notice.patch (an outbox that
#   drops the third queued notice without a word)
#
# The copy is a detached `git worktree` of HEAD under a temporary directory
# with the patch applied; the main tree and its target/ are left alone (the
# copy builds its own). Exits 0 when the fuzzer found the bug (its log
# and the input are kept in the printed directory), 1 when it did not.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-900}
patch=$(realpath "${2:-fuzz/planted/outbox-skips-notice.patch}")
scratch=$(mktemp -d /tmp/tern-planted.XXXXXX)
tree="$scratch/tree"
git worktree add --detach -q "$tree" HEAD
trap 'git worktree remove --force "$tree"' EXIT
git -C "$tree" apply "$patch"
echo "planted: $(basename "$patch") in $tree; fuzzing hub for up to $secs s" >&2
mkdir -p "$scratch/corpus" "$scratch/artifacts"
(cd "$tree/fuzz" && cargo +nightly fuzz build hub >/dev/null 2>&1)
started=$(date +%s)
if (cd "$tree/fuzz" && nice -n 10 cargo +nightly fuzz run hub "$scratch/corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$scratch/artifacts/") >"$scratch/hub.log" 2>&1; then
    echo "planted: not found in $secs s (log $scratch/hub.log)" >&2
    exit 1
fi
took=$(( $(date +%s) - started ))
execs=$(grep -oE '^#[0-9]+' "$scratch/hub.log" | tail -1 | tr -d '#')
echo "planted: found after $took s and about ${execs:-?} executions:" >&2
grep -m1 -A3 "panicked at" "$scratch/hub.log" >&2 || true
echo "planted: log and input in $scratch" >&2
