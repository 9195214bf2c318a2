#!/usr/bin/env bash
# CI's fuzz regression (called from .ci/run): builds every target with
# nightly, replays the committed crash inputs (fuzz/regressions/<target>/),
# then runs each target SECS seconds (default 30) starting from its committed
# minimized corpus (fuzz/corpus/<target>/), FUZZ_JOBS (2) targets at a time. New inputs
# go to a scratch directory, so the tree stays as committed.
#
#   fuzz/ci.sh [SECS]       both steps
#   fuzz/ci.sh build        the crate's tests, the build and the regression inputs
#   fuzz/ci.sh run [SECS]   the timed runs (after `build`)
set -euo pipefail
cd "$(dirname "$0")/.."
step=all
case "${1:-}" in
    build) step=build; shift ;;
    run) step=run; shift ;;
esac
secs=${1:-30}
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
start=$(date +%s)
mapfile -t targets < <(cargo +nightly fuzz list)
if [ "$step" != run ]; then
# The fuzz crate's own tests (the hub world's live-room prelude reaches the
# media drop policy).
cargo +nightly test --manifest-path fuzz/Cargo.toml --lib
cargo +nightly fuzz build
built=$(date +%s)
echo "fuzz: build took $((built - start)) s"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
        cargo +nightly fuzz run "$t" fuzz/regressions/"$t"/* -- -runs=1 >"$scratch/$t.regressions.log" 2>&1 \
            || { cat "$scratch/$t.regressions.log"; echo "fuzz: $t regression input fails" >&2; exit 1; }
        echo "fuzz: $t replays $(ls fuzz/regressions/$t | wc -l) regression inputs"
    fi
done
rm -rf "$scratch"
fi
[ "$step" = build ] && exit 0
built=$(date +%s)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
run() {
    local t=$1
    mkdir -p "$scratch/$t"
    local corpus=()
    [ -d "fuzz/corpus/$t" ] && corpus=("fuzz/corpus/$t")
    if cargo +nightly fuzz run "$t" "$scratch/$t" "${corpus[@]}" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$scratch/" >"$scratch/$t.log" 2>&1; then
        echo "fuzz: $t clean, $(awk '/stat::number_of_executed_units/ { print $2 }' "$scratch/$t.log") executions in ${secs} s"
    else
        tail -60 "$scratch/$t.log"
        echo "fuzz: $t FAILED (input in the log above)" >&2
        return 1
    fi
}
failed=0
jobs=${FUZZ_JOBS:-2}
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    pids=()
    for t in "${targets[@]:i:jobs}"; do
        run "$t" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
done
echo "fuzz: runs took $(($(date +%s) - built)) s"
exit $failed
