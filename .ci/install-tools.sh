#!/usr/bin/env bash
# Installs the real clients the end-to-end tests drive (idempotent: does
# nothing when they are already there). Debian packages only.
set -euo pipefail
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v rtmpdump >/dev/null 2>&1 || missing+=(rtmpdump)
command -v gst-launch-1.0 >/dev/null 2>&1 || missing+=(gstreamer1.0-tools)
if ! gst-inspect-1.0 rtmp2src >/dev/null 2>&1; then
  missing+=(gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "tools: all present"
  exit 0
fi
echo "tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
