#!/usr/bin/env bash
# Fails if a no_std crate (tern-core, tern-runtime-embedded) pulls any
# dependency's `std` feature in its normal (non-dev) dependency graph.
set -euo pipefail
status=0
for crate in tern-core tern-runtime-embedded; do
  tree=$(cargo tree --locked -p "$crate" -e features -e normal --prefix none)
  if grep -E 'feature "std"' <<<"$tree"; then
    echo "FAIL: $crate pulls a std feature (lines above)"
    status=1
  else
    echo "ok: $crate has no std feature in its dependency graph"
  fi
done
exit $status
