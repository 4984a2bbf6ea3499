# Supervision against the real servers: a SIGKILLed worker comes back within 2 s and the
# history says so; pgferryd killed and restarted keeps every pipe and restarts its workers;
# SIGTERM leaves no process behind; TRANSIENT failures make a pipe Degraded, then Failed;
# a Degraded pipe recovers by itself when PostgreSQL comes back.
source "$(dirname "$0")/../lib/common.sh"

SERVERS="$PGFERRY_SOURCE_DIR/deploy/dev/servers.sh"
PG_STOPPED=0
restore_pg() { [ $PG_STOPPED = 1 ] && "$SERVERS" start-pg "$PGFERRY_SERVERS_DIR" >/dev/null 2>&1; return 0; }
EXIT_HOOKS+=(restore_pg)

S="it_sup_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY)"
PG_HOSTPART=${PGFERRY_PG_URI#*@}

# a source that accepts connections and never answers keeps a worker busy
"$TOOLS/pgferry-test-blackhole" >"$TEST_DIR/bh.port" &
CLEANUP_PIDS+=($!)
wait_for 5 "blackhole port" test -s "$TEST_DIR/bh.port"
BH="postgresql://postgres:pw@127.0.0.1:$(cat "$TEST_DIR/bh.port")/postgres"

start_daemon --stop-grace-ms 3000
"$CTL" create hang --source "$BH" --dest "$PGFERRY_CH_URL" --tables "$S.t" >/dev/null
create_pipe ok "$S.t" >/dev/null
wait_for 10 "worker of pipe hang" has_worker hang
wait_for 20 "pipe ok reaches Running" state_is ok Running

# 1. SIGKILL a worker: restarted within 2 s, history records it
old=$(worker_pids hang)
kill -KILL "$old"
t0=$(date +%s%N)
wait_for 5 "a new worker for pipe hang" bash -c "p=\$('$CTL' status hang --json | jq -r '.workers[].pid'); [ -n \"\$p\" ] && [ \"\$p\" != $old ]"
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
log "worker restarted after ${elapsed_ms} ms"
[ $elapsed_ms -le 2000 ] || fail "worker restart took ${elapsed_ms} ms (> 2 s)"
j=$(pipe_json hang)
assert_contains "$(jq -r '.history[-1].reason' <<<"$j")" "worker pid $old killed by signal 9" "history records the kill"
assert_eq "$(jq -r .worker_restarts <<<"$j")" 1 "restart counted"
assert_eq "$(jq -r .state <<<"$j")" Provisioning "one failure is not Degraded"

# 2. SIGKILL pgferryd: its worker dies with it (no orphan); a restart keeps all state and
#    starts the worker again
before=$("$CTL" list --json | jq -c '[.[] | {name, state, history: (.history | length)}]')
wpid=$(worker_pids hang)
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""
wait_for 3 "worker $wpid gone after the supervisor died" bash -c "! kill -0 $wpid 2>/dev/null"
start_daemon --stop-grace-ms 3000
after=$("$CTL" list --json | jq -c '[.[] | {name, state, history: (.history | length)}]')
assert_eq "$after" "$before" "pipes survive a SIGKILLed supervisor"
wait_for 5 "worker of pipe hang after restart" has_worker hang
assert_eq "$(pipe_state ok)" Running "running pipe stays Running"
wait_for 5 "CDC worker of pipe ok after restart" has_worker ok

# 3. SIGTERM: workers stopped, nothing left behind, exit code 0
wpid=$(worker_pids hang)
dpid=$DAEMON_PID
stop_daemon || fail "pgferryd exited non-zero after SIGTERM"
! kill -0 "$wpid" 2>/dev/null || fail "worker $wpid survived pgferryd's SIGTERM"
[ -z "$(pgrep -P "$dpid" || true)" ] || fail "children of pgferryd left behind"
grep -q "worker hang/provision pid $wpid .* after stop" "$TEST_DIR/pgferryd.log" || fail "stop not logged"

# 4. TRANSIENT failures: Degraded after degraded_after, Failed after max_failures
start_daemon --backoff-initial-ms 100 --backoff-max-ms 300 --degraded-after 2 --max-failures 20
"$CTL" drop hang >/dev/null
"$CTL" create refused --source "postgresql://postgres:pw@127.0.0.1:1/postgres" \
    --dest "$PGFERRY_CH_URL" --tables "$S.t" >/dev/null
wait_for 10 "pipe refused is Degraded" state_is refused Degraded
j=$(pipe_json refused)
assert_eq "$(jq -r .degraded_from <<<"$j")" Provisioning "Degraded remembers the state"
assert_eq "$(jq -r .last_error.class <<<"$j")" TRANSIENT "error class"
assert_contains "$(jq -r .last_error.message <<<"$j")" "Connection refused" "error message"
wait_for 30 "pipe refused is Failed" state_is refused Failed
j=$(pipe_json refused)
assert_contains "$(jq -r '.history[-1].reason' <<<"$j")" "giving up after 20 consecutive provision worker failures" "Failed reason"
assert_eq "$(jq -r .worker_restarts <<<"$j")" 20 "restart count"
n=$(jq -r .worker_restarts <<<"$j"); sleep 1
assert_eq "$(pipe_json refused | jq -r .worker_restarts)" "$n" "no restarts once Failed"

# 5. Degraded recovers by itself: PostgreSQL down at create, back a moment later
"$SERVERS" stop-pg "$PGFERRY_SERVERS_DIR" >/dev/null
PG_STOPPED=1
create_pipe comeback "$S.t" >/dev/null
wait_for 10 "pipe comeback is Degraded" state_is comeback Degraded
"$SERVERS" start-pg "$PGFERRY_SERVERS_DIR" >/dev/null
PG_STOPPED=0
wait_for 30 "pipe comeback reaches Running" state_is comeback Running
j=$(pipe_json comeback)
assert_eq "$(jq -r '[.history[].to] | join(",")' <<<"$j" | sed 's/\(Provisioning,\)\{1,\}/Provisioning,/g; s/\(Degraded,\)\{1,\}/Degraded,/g')" \
    "Provisioning,Degraded,Provisioning,Setup,Snapshot,Running" "recovery path in history"
assert_eq "$(jq -r .consecutive_failures <<<"$j")" 0 "failure count reset"

stop_daemon || fail "pgferryd exited non-zero"
log "ok"
