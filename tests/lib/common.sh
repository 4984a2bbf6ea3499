# Shared helpers for the integration and e2e tests (bash). Sourced, not run.
# Needs the servers of deploy/dev/servers.sh (PGFERRY_PG_URI, PGFERRY_CH_URL) and the build's
# binaries (PGFERRY_BIN_DIR, set by ctest).
set -euo pipefail

: "${PGFERRY_BIN_DIR:?PGFERRY_BIN_DIR is not set: run the tests through ctest}"
if [ -z "${PGFERRY_PG_URI:-}" ] || [ -z "${PGFERRY_CH_URL:-}" ]; then
    echo "FAIL: no test servers. Run deploy/dev/test.sh, or first: eval \"\$(deploy/dev/servers.sh start)\"" >&2
    exit 1
fi
PGFERRYD="$PGFERRY_BIN_DIR/pgferryd"
CTL="$PGFERRY_BIN_DIR/pgferryctl"
TOOLS="$PGFERRY_BIN_DIR"
TEST_NAME=$(basename "$0" .sh)
TEST_DIR=$(mktemp -d "/tmp/pgferry-$TEST_NAME-XXXXXX")
chmod 755 "$TEST_DIR"
STATE_DIR="$TEST_DIR/state"
DAEMON_PID=""
CLEANUP_PIDS=()
TEST_PIPES=()   # pipes created by create_pipe: their slots/publications are removed at exit
EXIT_HOOKS=()   # commands run at exit (after the exit status is taken), e.g. restarting a server
export PGFERRY_STATE_DIR="$STATE_DIR"

log() { echo "[$TEST_NAME] $*" >&2; }
fail() {
    echo "FAIL [$TEST_NAME]: $*" >&2
    if [ -f "$TEST_DIR/pgferryd.log" ]; then
        echo "---- pgferryd.log (last 40 lines)" >&2
        tail -40 "$TEST_DIR/pgferryd.log" >&2
    fi
    exit 1
}

cleanup() {
    local rc=$?
    local h
    for h in "${EXIT_HOOKS[@]}"; do eval "$h" >/dev/null 2>&1 || true; done
    [ -f "$TEST_DIR/daemon.pid" ] && DAEMON_PID=$(cat "$TEST_DIR/daemon.pid")
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    local p
    for p in "${CLEANUP_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ -n "${PG_CLEANUP_SQL:-}" ]; then psql_q "$PG_CLEANUP_SQL" >/dev/null 2>&1 || true; fi
    # slots and publications of this test's pipes (a failed test may leave them)
    local name
    for name in "${TEST_PIPES[@]}"; do
        for _ in $(seq 1 50); do
            [ "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_$name' AND active" 2>/dev/null)" = 0 ] && break
            sleep 0.1
        done
        psql_q "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                WHERE slot_name = 'pgferry_$name' AND NOT active" >/dev/null 2>&1 || true
        psql_q "DROP PUBLICATION IF EXISTS pgferry_$name" >/dev/null 2>&1 || true
    done
    # a sanitizer report from the daemon or any worker fails the test, whatever else passed
    if [ -f "$TEST_DIR/pgferryd.log" ] &&
        grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TEST_DIR/pgferryd.log"; then
        echo "FAIL [$TEST_NAME]: sanitizer report in pgferryd.log:" >&2
        grep -E -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TEST_DIR/pgferryd.log" | head -60 >&2
        rc=1
    fi
    if [ $rc -eq 0 ] && [ -z "${PGFERRY_KEEP_TEST_FILES:-}" ]; then rm -rf "$TEST_DIR"; else echo "test files kept in $TEST_DIR" >&2; fi
    exit $rc
}
trap cleanup EXIT

psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" -c "$1"; }

# start_daemon [extra pgferryd flags...]: starts pgferryd on STATE_DIR and waits for its socket
start_daemon() {
    "$PGFERRYD" --state-dir "$STATE_DIR" --log-level debug "$@" >>"$TEST_DIR/pgferryd.log" 2>&1 &
    DAEMON_PID=$!
    # also on disk: a daemon started in a subshell (a fault injected in $(...)) is stopped at exit
    echo "$DAEMON_PID" >"$TEST_DIR/daemon.pid"
    local i
    for i in $(seq 1 100); do
        [ -S "$STATE_DIR/control.sock" ] && "$CTL" --timeout 2000 list >/dev/null 2>&1 && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || fail "pgferryd exited at start"
        sleep 0.1
    done
    fail "pgferryd did not start within 10 s"
}

stop_daemon() { # SIGTERM and wait; returns the exit code
    kill -TERM "$DAEMON_PID"
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=""
    rm -f "$TEST_DIR/daemon.pid"
    return $rc
}

# wait_for SECONDS DESCRIPTION CMD...: retries CMD every 0.1 s
wait_for() {
    local secs=$1 what=$2; shift 2
    local deadline=$(( $(date +%s%N) + secs * 1000000000 ))
    while [ "$(date +%s%N)" -lt $deadline ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    fail "timed out after ${secs}s waiting for: $what"
}

# pipe_json NAME: the status of a pipe as JSON
pipe_json() { "$CTL" --timeout 5000 status "$1" --json --history 100; }
pipe_state() { pipe_json "$1" | jq -r .state; }
state_is() { [ "$(pipe_state "$1")" = "$2" ]; }
worker_pids() { pipe_json "$1" | jq -r '.workers[].pid'; }
has_worker() { [ -n "$(worker_pids "$1")" ]; }
# set_and_restart NAME KEY=VALUE...: changes a Running pipe's settings and waits until the new
# CDC worker (set restarts it) streams
set_and_restart() {
    local name=$1 old
    shift
    old=$(worker_pids "$name")
    "$CTL" set "$name" "$@" >/dev/null || fail "set $name $*"
    wait_for 60 "pipe $name Running" state_is "$name" Running
    wait_for 30 "a new CDC worker of $name" bash -c "p=\$('$CTL' status $name --json | jq -r '.workers[].pid'); [ -n \"\$p\" ] && [ \"\$p\" != '$old' ]"
    wait_for 30 "$name streaming" bash -c "'$CTL' status $name --json | jq -r '.workers[].activity' | grep -q streaming"
}

assert_eq() { [ "$1" = "$2" ] || fail "${3:-values differ}: expected '$2', got '$1'"; }
assert_contains() {
    case "$1" in *"$2"*) ;; *) fail "${3:-missing text}: '$2' not in '$1'" ;; esac
}

# ClickHouse: every test pipe gets its own database (CH_DB_PREFIX + pipe name), dropped at exit
CH_DB_PREFIX="t$$_"
ch_q() { curl -sS --fail-with-body --max-time 60 "${PGFERRY_CH_URL%/}/" --data-binary "$1"; }
ch_drop_test_dbs() {
    local db
    for db in $(ch_q "SELECT name FROM system.databases WHERE startsWith(name, '$CH_DB_PREFIX')"); do
        ch_q "DROP DATABASE IF EXISTS \`$db\`" >/dev/null
    done
}
EXIT_HOOKS+=(ch_drop_test_dbs)

# create_pipe NAME TABLES [extra ctl flags...]
create_pipe() {
    local name=$1 tables=$2; shift 2
    TEST_PIPES+=("$name")
    "$CTL" create "$name" --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables "$tables" \
        --dest-database "$CH_DB_PREFIX$name" "$@"
}

# free_port: a loopback TCP port nobody listens on, from 20000 up to the ephemeral range
# (so an outgoing connection's source port cannot take it between this check and the bind)
free_port() {
    local p lo
    lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "${lo:-0}" -gt 21000 ] || lo=60000
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % (lo - 20000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    fail "no free loopback port"
}

# start_writer FUNC [PAUSE]: in the background, runs the SQL that `FUNC i` prints for i = 1, 2,
# ... (a failed statement is ignored: the servers may be down on purpose), PAUSE seconds apart,
# until stop_writer
WRITER=""
start_writer() {
    local fn=$1 pause=${2:-0}
    touch "$TEST_DIR/writing"
    (
        i=0
        while [ -e "$TEST_DIR/writing" ]; do
            i=$((i + 1))
            psql -X -q "$PGFERRY_PG_URI" -c "$("$fn" "$i")" >/dev/null 2>&1 || true
            [ "$pause" = 0 ] || sleep "$pause"
        done
    ) &
    WRITER=$!
    CLEANUP_PIDS+=("$WRITER")
}
stop_writer() {
    rm -f "$TEST_DIR/writing"
    wait "$WRITER" || true
}
