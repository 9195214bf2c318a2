#!/usr/bin/env bash
# Installs the real clients the end-to-end tests drive (idempotent: does
# nothing when they are already there): Debian packages, Python's
# `websockets` (the second WebSocket implementation of the bridge tests) and
# playwright-core for the browser test (`npm ci` in tests/browser). The
# Autobahn testsuite installs itself (tests/autobahn/run.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v rtmpdump >/dev/null 2>&1 || missing+=(rtmpdump)
command -v gst-launch-1.0 >/dev/null 2>&1 || missing+=(gstreamer1.0-tools)
if ! gst-inspect-1.0 rtmp2src >/dev/null 2>&1; then
  missing+=(gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
fi
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  echo "tools: all Debian packages present"
else
  echo "tools: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

if python3 -c 'import websockets' >/dev/null 2>&1; then
  echo "tools: python websockets present"
else
  echo "tools: installing python websockets"
  python3 -m pip install -q websockets
fi

if [ -f "$root/tests/browser/node_modules/playwright-core/package.json" ]; then
  echo "tools: playwright-core present"
else
  echo "tools: npm ci in tests/browser"
  (cd "$root/tests/browser" && npm ci --no-audit --no-fund)
fi

# Issue 23: gnuplot draws bench/soak.sh's plot; cargo-fuzz runs the fuzz
# regression (fuzz/ci.sh, with the nightly toolchain the machine has).
if command -v gnuplot >/dev/null 2>&1; then
  echo "tools: gnuplot present"
else
  echo "tools: installing gnuplot-nox"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q gnuplot-nox
fi
if command -v cargo-fuzz >/dev/null 2>&1; then
  echo "tools: cargo-fuzz present"
else
  echo "tools: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
