#!/usr/bin/env bash
# A fuzzing campaign: runs each target for SECS seconds under `nice -n 19`,
# one after the other, resuming from (and adding to) fuzz/corpus/<target>,
# and appends one line per run to fuzz/campaign.tsv:
#   date  commit  target  seconds  executions  cov  ft  corpus_files  result
# docs/fuzzing.md sums these lines per target (hours, executions).
#
# Usage: bash fuzz/campaign.sh SECS [TARGET…]   (default: every target)
# A crash leaves its input in fuzz/artifacts/<target>/ and the run's log in
# fuzz/artifacts/<target>.log; the campaign goes on with the next target.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: campaign.sh SECS [TARGET…]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
commit=$(git rev-parse --short HEAD)
[ -z "$(git status --porcelain -- core fuzz/src fuzz/fuzz_targets)" ] || commit="$commit+dirty"
cargo +nightly fuzz build >/dev/null 2>&1 || { echo "cargo fuzz build failed" >&2; exit 1; }
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="fuzz/artifacts/$t.log"
    started=$(date +%s)
    if nice -n 19 cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
        result=clean
    else
        result=CRASH
    fi
    execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
    # libFuzzer's own figure when it finished; wall time when it stopped
    # on a finding (it prints no "Done" line then).
    secs_run=$(awk '/Done [0-9]+ runs in/ { print $(NF-1) }' "$log")
    [ -n "$secs_run" ] || secs_run=$(( $(date +%s) - started ))
    last=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -1)
    cov=$(echo "$last" | awk '{ print $2 }')
    ft=$(echo "$last" | awk '{ print $4 }')
    files=$(find "fuzz/corpus/$t" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$commit" "$t" \
        "${secs_run:-$secs}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$files" "$result" \
        | tee -a fuzz/campaign.tsv
done
