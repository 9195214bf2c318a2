#!/usr/bin/env bash
# Coverage of each target's corpus: `cargo fuzz coverage` (an instrumented
# build in the workspace's target/, every corpus input run once), then the
# llvm-cov TOTAL line over tern-core's files (the fuzz crate, the standard
# library and dependencies left out): regions, functions, lines.
# Needs `rustup component add llvm-tools-preview --toolchain nightly`.
#
# Usage: bash fuzz/coverage.sh [TARGET…]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
llvm="$(rustc +nightly --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
triple=x86_64-unknown-linux-gnu
for t in "${targets[@]}"; do
    if [ "${SKIP_RUN:-0}" != 1 ]; then
        cargo +nightly fuzz coverage "$t" "fuzz/corpus/$t" >/dev/null 2>&1
    fi
    total=$("$llvm/llvm-cov" report "target/$triple/coverage/$triple/release/$t" \
        -instr-profile="fuzz/coverage/$t/coverage.profdata" \
        -ignore-filename-regex='/\.cargo/|/rustc/|fuzz/' | grep '^TOTAL')
    # TOTAL regions missed cover functions missed executed lines missed cover …
    echo "$total" | awk -v t="$t" '{ printf "%s\tregions %s/%s (%s)\tfunctions %s (%s)\tlines %s/%s (%s)\n", t, $2-$3, $2, $4, $5-$6, $7, $8-$9, $8, $10 }'
done
