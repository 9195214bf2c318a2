# Shared by the benchmark scripts: build, start and stop the servers under
# test on loopback, each pinned to CPU 0 (the load tool runs on CPU 1).
# Source it; it defines functions only, plus $ROOT, $LOAD and $TERN.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOAD="$ROOT/target/release/tern-load"
TERN="$ROOT/target/release/tern"
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

build() {
    (cd "$ROOT" && cargo build --release --locked -q -p tern-runtime-std -p tern-bench)
}

# Builds the load tool and a `tern` with `--features count-allocations` in
# its own target directory (the ordinary build is left alone), and points
# $TERN (what start_tern runs) at the counting build.
build_counting() {
    (cd "$ROOT" && cargo build --release --locked -q -p tern-bench --bin tern-load)
    (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target/alloc-count" \
        cargo build --release --locked -q -p tern-runtime-std --features count-allocations --bin tern)
    TERN="$ROOT/target/alloc-count/release/tern"
}

# Enough descriptors for thousands of connections on both sides.
raise_fd_limit() {
    local hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=65536
    ulimit -n "$(( hard < 65536 ? hard : 65536 ))"
}

# A TCP port nobody uses (other people run servers on this machine), below
# the ephemeral range so that no client socket can take it in the meantime.
free_port() {
    local port low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
    while :; do
        port=$(( 20000 + RANDOM % (low - 20000) ))
        if ! ss -Htan "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
}

wait_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        if ss -Htln "sport = :$port" | grep -q .; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $port" >&2
    return 1
}

# Runs the load tool pinned to its CPU.
load() {
    taskset -c "$LOAD_CPU" "$LOAD" "$@"
}

# start_tern DIR: starts tern; sets TERN_PID, TERN_PORT (RTMP) and
# TERN_HTTP_PORT (HTTP and WebSocket).
start_tern() {
    local dir=$1
    mkdir -p "$dir"
    TERN_PORT=$(free_port)
    TERN_HTTP_PORT=$(free_port)
    export TERN_PORT TERN_HTTP_PORT
    cat > "$dir/tern.toml" <<TOML
[server]
rtmp_bind = "127.0.0.1:$TERN_PORT"
http_bind = "127.0.0.1:$TERN_HTTP_PORT"
data_dir = "$dir/data"
${TERN_SERVER:-}

[scopes]
max_connections_per_address = 100000
max_connections_per_scope = 100000
${TERN_SCOPES:-}

# Writers of RATE=0 runs send as fast as their acks allow, above the
# per-connection shared-object rate limit; the benchmarks measure delivery.
[shared_objects]
max_ops_per_sec = 0

# TERN_SERVER adds lines to [server], TERN_SCOPES to [scopes], TERN_STREAMS to [streams], e.g. TERN_STREAMS="merge_write_ms = 0".
[streams]
${TERN_STREAMS:-}

[logging]
level = "warn"
TOML
    taskset -c "$SERVER_CPU" "$TERN" serve --config "$dir/tern.toml" 2> "$dir/tern.log" &
    TERN_PID=$!
    wait_port "$TERN_PORT"
}

stop_tern() {
    kill -TERM "$TERN_PID" 2>/dev/null || true
    wait "$TERN_PID" 2>/dev/null || true
}

# start_nginx DIR: starts nginx-rtmp with the minimal config; sets
# NGINX_PIDS (master and worker) and NGINX_PORT.
start_nginx() {
    local dir=$1
    mkdir -p "$dir"
    NGINX_PORT=$(free_port)
    cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process on; worker_processes 1;
pid $dir/nginx.pid; error_log $dir/error.log warn;
events { worker_connections 19000; }
rtmp { server { listen 127.0.0.1:$NGINX_PORT; chunk_size 4096;
  application live { live on; record off; } } }
CONF
    taskset -c "$SERVER_CPU" nginx -c "$dir/nginx.conf" -p "$dir/" &
    NGINX_MASTER=$!
    wait_port "$NGINX_PORT"
    local worker=""
    for _ in $(seq 1 50); do
        worker=$(pgrep -P "$NGINX_MASTER" | head -1)
        [ -n "$worker" ] && break
        sleep 0.1
    done
    NGINX_PIDS="--server-pid $NGINX_MASTER --server-pid $worker"
}

stop_nginx() {
    kill -QUIT "$NGINX_MASTER" 2>/dev/null || true
    wait "$NGINX_MASTER" 2>/dev/null || true
}

# start_redis DIR: starts redis-server on a loopback port; sets REDIS_PID
# and REDIS_PORT.
start_redis() {
    local dir=$1
    mkdir -p "$dir"
    REDIS_PORT=$(free_port)
    taskset -c "$SERVER_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no --daemonize no --maxclients 20000 \
        --dir "$dir" --logfile "$dir/redis.log" &
    REDIS_PID=$!
    wait_port "$REDIS_PORT"
}

stop_redis() {
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
}

# Describes the machine for the report.
machine() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- peers: $(nginx -v 2>&1 | sed 's/.*: //') with libnginx-mod-rtmp $(dpkg-query -W -f='${Version}' libnginx-mod-rtmp 2>/dev/null), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
}
