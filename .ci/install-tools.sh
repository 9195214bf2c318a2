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

# Interop matrix (tests/tests/e2e/interop.rs, docs/interop.md): the players
# mpv and VLC, headless, without their desktop recommends. GStreamer's
# rtmpsink/rtmpsrc (librtmp) come with gstreamer1.0-plugins-bad above.
interop=()
command -v mpv >/dev/null 2>&1 || interop+=(mpv)
command -v cvlc >/dev/null 2>&1 || interop+=(vlc-bin vlc-plugin-base)
if [ ${#interop[@]} -eq 0 ]; then
  echo "tools: interop players present"
else
  echo "tools: installing ${interop[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${interop[@]}"
fi

# NATS (issue 22, tests/tests/e2e/cluster.rs, docs/cluster.md): Debian's
# nats-server with JetStream, the cluster bus the tern nodes share.
if command -v nats-server >/dev/null 2>&1; then
  echo "tools: nats-server present"
else
  echo "tools: installing nats-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends nats-server
fi

if python3 -c 'import websockets' >/dev/null 2>&1; then
  echo "tools: python websockets present"
else
  echo "tools: installing python websockets"
  python3 -m pip install -q websockets
fi

# py3amf: the independent AMF3 codec of tests/tests/e2e/amf3_py3amf.rs (driven
# through tests/python/amf3_interop.py).
if python3 -c 'import pyamf.amf3' >/dev/null 2>&1; then
  echo "tools: python py3amf present"
else
  echo "tools: installing python py3amf"
  python3 -m pip install -q py3amf==0.9.1
fi

if [ -f "$root/tests/browser/node_modules/playwright-core/package.json" ]; then
  echo "tools: playwright-core present"
else
  echo "tools: npm ci in tests/browser"
  (cd "$root/tests/browser" && npm ci --no-audit --no-fund)
fi

# The TAP test (runtime-embedded-host/tests/tap_namespace.rs) needs root,
# `ip` from iproute2 and /dev/net/tun; under TERN_REQUIRE_TOOLS=1 it fails
# without them. Install iproute2 when `ip` is missing, and make the TUN
# device node (major 10, minor 200) when the kernel has TUN but /dev lacks
# the node, as in some minimal containers.
if command -v ip >/dev/null 2>&1; then
  echo "tools: iproute2 present"
else
  echo "tools: installing iproute2"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q iproute2
fi
if [ -e /dev/net/tun ]; then
  echo "tools: /dev/net/tun present"
else
  echo "tools: creating /dev/net/tun"
  # Not fatal here: without it the TAP test fails (TERN_REQUIRE_TOOLS=1)
  # and says why, while the other tests still run.
  { mkdir -p /dev/net && mknod -m 666 /dev/net/tun c 10 200; } \
    || echo "tools: WARNING: cannot create /dev/net/tun; the TAP test will fail"
fi

# The Autobahn testsuite (tests/autobahn/run.sh) needs Python 2.7, which
# neither Debian 12 nor PyPI provides: CI relies on the machine image's
# pyenv 2.7.18 (the script pip-installs the suite itself). Say so here, so a
# machine without it is visible before the tests (run.sh fails under
# TERN_REQUIRE_TOOLS=1).
py2="${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python"
if [ -x "$py2" ] || [ -n "${TERN_PYTHON2:-}" ] || command -v python2.7 >/dev/null 2>&1; then
  echo "tools: Python 2.7 for Autobahn present"
else
  echo "tools: WARNING: no Python 2.7 for Autobahn (pyenv 2.7.18 missing); tests/autobahn/run.sh will fail"
fi

# nginx-rtmp, for the "same webhook, two servers" test of HTTP callbacks
# (tests/tests/e2e/webhooks.rs); the benchmarks install it too
# (bench/install-peers.sh).
if [ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] && command -v nginx >/dev/null 2>&1; then
  echo "tools: nginx-rtmp present"
else
  echo "tools: installing nginx libnginx-mod-rtmp"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q nginx libnginx-mod-rtmp
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
