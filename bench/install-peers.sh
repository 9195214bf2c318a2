#!/usr/bin/env bash
# Installs the benchmark peers (nginx with the RTMP module, Redis) from
# Debian's packages. Idempotent: does nothing when they are already there.
set -euo pipefail

need=()
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(nginx libnginx-mod-rtmp)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -eq 0 ]; then
    echo "peers already installed: $(nginx -v 2>&1), $(redis-server --version | cut -d' ' -f1-3)"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
# The packages start system services on the default ports; the benchmarks run
# their own instances on other ports, so stop the system ones if they came up.
for service in nginx redis-server; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
        $SUDO systemctl stop "$service" || true
    fi
done
echo "installed: ${need[*]}"
