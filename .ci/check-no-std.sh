#!/usr/bin/env bash
# Fails if a no_std crate pulls any dependency's `std` feature.
#
# tern-runtime-embedded: its whole graph, all edge kinds (normal, build and
# dev), exactly `cargo tree -p tern-runtime-embedded -e features`. Its host
# tests and examples, which need std, live in tern-runtime-embedded-host.
#
# tern-core: normal edges only. Its dev-dependencies (proptest, insta) use
# std by design: DESIGN.md allows std under cfg(test), and they never reach
# a device build.
set -euo pipefail
status=0

check() {
  local crate=$1
  shift
  local tree
  tree=$(cargo tree --locked -p "$crate" "$@" --prefix none)
  if grep -E 'feature "std"' <<<"$tree"; then
    echo "FAIL: $crate pulls a std feature (lines above; cargo tree -p $crate $*)"
    status=1
  else
    echo "ok: $crate has no std feature (cargo tree -p $crate $*)"
  fi
}

check tern-core -e features -e normal
check tern-runtime-embedded -e features
exit $status
