#!/usr/bin/env bash
# Runs the Autobahn testsuite's fuzzing client against tern's WebSocket echo
# endpoint and fails unless every case of sections 1-7, 9 and 10 is OK,
# NON-STRICT or INFORMATIONAL. Sections 12 and 13 (permessage-deflate, which
# tern does not negotiate) are excluded.
#
#   bash tests/autobahn/run.sh
#
# Needs Python 2.7 (the testsuite is Python 2 only): $TERN_PYTHON2 if set,
# else pyenv's 2.7.18 ($PYENV_ROOT, `pyenv root` or ~/.pyenv), else a
# `python2.7` on PATH. Debian 12 packages no Python 2 and no registry CI
# reaches ships one, so CI relies on the pyenv 2.7.18 of its machine image.
# Without it the script prints SKIPPED and exits 0, unless
# TERN_REQUIRE_TOOLS=1 (CI), where it fails. The testsuite is pip-installed once
# into <target>/autobahn/site; reports go to <target>/autobahn/reports, the
# summary table to <target>/autobahn/summary.md (docs/autobahn.md holds the
# committed copy).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
work_dir="$target/autobahn"
site="$work_dir/site"

find_python2() {
  local candidates=()
  [ -n "${TERN_PYTHON2:-}" ] && candidates+=("$TERN_PYTHON2")
  [ -n "${PYENV_ROOT:-}" ] && candidates+=("$PYENV_ROOT/versions/2.7.18/bin/python")
  if command -v pyenv >/dev/null 2>&1; then
    candidates+=("$(pyenv root)/versions/2.7.18/bin/python")
  fi
  candidates+=("$HOME/.pyenv/versions/2.7.18/bin/python")
  command -v python2.7 >/dev/null 2>&1 && candidates+=("$(command -v python2.7)")
  local py
  for py in "${candidates[@]}"; do
    if [ -x "$py" ] && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

if ! py2=$(find_python2); then
  why="no Python 2.7 found (TERN_PYTHON2, pyenv's 2.7.18, python2.7 on PATH); the Autobahn testsuite needs it"
  if [ "${TERN_REQUIRE_TOOLS:-}" = 1 ]; then
    echo "FAILED: autobahn: $why, and TERN_REQUIRE_TOOLS=1 requires it"
    exit 1
  fi
  echo "SKIPPED: autobahn: $why"
  exit 0
fi
echo "autobahn: Python 2.7 at $py2"

mkdir -p "$work_dir"
if [ ! -f "$site/.installed" ]; then
  echo "autobahn: installing autobahntestsuite into $site"
  rm -rf "$site" "$site.tmp"
  "$py2" -m pip install -q --disable-pip-version-check --no-warn-script-location \
    --target "$site.tmp" autobahntestsuite 2>&1 | grep -v DEPRECATION || true
  "$py2" -c "import site,sys; site.addsitedir(sys.argv[1]); import autobahntestsuite.wstest" "$site.tmp"
  touch "$site.tmp/.installed"
  mv "$site.tmp" "$site"
fi

# The same feature set as `cargo test --workspace` (see tern_binary() in
# tests/src/lib.rs): after the tests this only links the binary.
cargo build -q --workspace --tests --bin tern
tern="$target/debug/tern"

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/tern-autobahn-XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$run_dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cat >"$run_dir/tern.toml" <<'EOF'
[websocket]
echo_path = "/echo"
max_message_bytes = 16777216
EOF

started=""
for _ in 1 2 3 4 5; do
  rtmp_port=$(free_port)
  http_port=$(free_port)
  [ "$rtmp_port" != "$http_port" ] || continue
  "$tern" serve --config "$run_dir/tern.toml" --rtmp-bind "127.0.0.1:$rtmp_port" \
    --http-bind "127.0.0.1:$http_port" --data-dir "$run_dir/data" --log warn \
    >"$run_dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$http_port/healthz" 2>/dev/null; then
      started=yes
      break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$started" ] && break
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
done
if [ -z "$started" ]; then
  echo "autobahn: tern did not start; log:"
  cat "$run_dir/server.log"
  exit 1
fi

reports="$work_dir/reports"
rm -rf "$reports"
cat >"$run_dir/spec.json" <<EOF
{
  "outdir": "$reports",
  "servers": [{"agent": "tern", "url": "ws://127.0.0.1:$http_port/echo"}],
  "cases": ["*"],
  "exclude-cases": ["12.*", "13.*"],
  "exclude-agent-cases": {}
}
EOF

echo "autobahn: fuzzingclient against ws://127.0.0.1:$http_port/echo (tern pid $server_pid)"
begin=$(date +%s)
status=0
(cd "$run_dir" && timeout -k 10 900 "$py2" -c "import site,sys; site.addsitedir(sys.argv.pop(1)); sys.argv[0]='wstest'; from autobahntestsuite.wstest import run; sys.exit(run())" \
  "$site" -m fuzzingclient -s spec.json >"$run_dir/wstest.log" 2>&1) || status=$?
echo "autobahn: fuzzingclient finished in $(( $(date +%s) - begin )) s (exit $status)"
if [ "$status" -ne 0 ] || [ ! -f "$reports/index.json" ]; then
  echo "autobahn: the fuzzing client failed; its log:"
  tail -50 "$run_dir/wstest.log"
  echo "tern's log:"
  tail -50 "$run_dir/server.log"
  exit 1
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "autobahn: tern died during the run; log:"
  tail -50 "$run_dir/server.log"
  exit 1
fi

python3 "$root/tests/autobahn/summarize.py" "$reports" --markdown "$work_dir/summary.md"
