# No loss and no duplicates after faults (issue 4): while pgbench writes (inserts, updates,
# deletes on random keys), SIGKILL the CDC worker, SIGKILL pgferryd (and start it again),
# restart ClickHouse, and restart PostgreSQL. Afterwards the destination matches the source
# exactly and FINAL shows every key once.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"
source "$(dirname "$0")/../lib/outage.sh"

S="faults_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"

psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.f (id int PRIMARY KEY, v int NOT NULL, t text);
  INSERT INTO $S.f SELECT g, 0, md5(g::text) FROM generate_series(1, 20000) g;"
cat >"$TEST_DIR/workload.sql" <<SQL
\set k random(1, 30000)
\set d random(1, 30000)
BEGIN;
INSERT INTO $S.f VALUES (:k, 1, 'ins ' || :k) ON CONFLICT (id) DO UPDATE SET v = f.v + 1, t = 'upd';
DELETE FROM $S.f WHERE id = :d AND v % 3 = 0;
UPDATE $S.f SET v = v + 10 WHERE id = :k + 1;
END;
SQL
# load runs in the background; pgbench's own errors (PostgreSQL restarting) are expected
workload() { # seconds
    pgbench -n -c 2 -R 300 -T "$1" -f "$TEST_DIR/workload.sql" "$PGFERRY_PG_URI" \
        >>"$TEST_DIR/pgbench.log" 2>&1 || true
}
PGF="SELECT id, v, coalesce(t, '<null>') FROM $S.f ORDER BY id"
CHF() { echo "SELECT id, v, ifNull(t, '<null>') FROM \`${CH_DB_PREFIX}fp\`.f_live ORDER BY id"; }

DAEMON_FLAGS=(--backoff-initial-ms 200 --backoff-max-ms 1000 --max-failures 1000)
start_daemon "${DAEMON_FLAGS[@]}"
create_pipe fp "$S.f" >/dev/null
wait_for 60 "pipe fp reaches Running" state_is fp Running
cdc_pid() { pipe_json fp | jq -r '.workers[] | select(.role == "cdc") | .pid'; }
wait_for 10 "CDC worker" bash -c "[ -n \"\$('$CTL' status fp --json | jq -r '.workers[] | select(.role == \"cdc\") | .pid')\" ]"

workload 16 &
LOAD=$!
CLEANUP_PIDS+=($LOAD)

sleep 2
log "SIGKILL the CDC worker under load"
old=$(cdc_pid)
kill -KILL "$old"
wait_for 10 "a new CDC worker" bash -c "p=\$('$CTL' status fp --json | jq -r '.workers[] | select(.role == \"cdc\") | .pid'); [ -n \"\$p\" ] && [ \"\$p\" != $old ]"

sleep 2
log "SIGKILL pgferryd under load, then start it again"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""
sleep 1
start_daemon "${DAEMON_FLAGS[@]}"
wait_for 10 "CDC worker after the restart" bash -c "[ -n \"\$('$CTL' status fp --json | jq -r '.workers[] | select(.role == \"cdc\") | .pid')\" ]"

sleep 2
log "restart ClickHouse under load"
ch_stop
sleep 3
ch_start
wait "$LOAD" || true
wait_match 90 "table f after worker kill, daemon kill and ClickHouse restart" "$PGF" "$(CHF)"
no_duplicates "\`${CH_DB_PREFIX}fp\`.f" id
grep -q "exited\|killed by signal 9" "$TEST_DIR/pgferryd.log" || fail "no worker failure logged"

log "restart PostgreSQL under load"
workload 12 &
LOAD=$!
CLEANUP_PIDS+=($LOAD)
sleep 3
pg_restart
wait "$LOAD" || true
workload 3 # the clients cut off by the restart: a little more load on the new server
wait_for 60 "pipe fp Running again" state_is fp Running
wait_match 90 "table f after the PostgreSQL restart" "$PGF" "$(CHF)"
no_duplicates "\`${CH_DB_PREFIX}fp\`.f" id
n=$(psql_q "SELECT count(*) FROM $S.f WHERE v > 0")
log "rows touched by the workload: $n"
[ "$n" -gt 1000 ] || fail "the workload touched too few rows ($n)"
hist=$(pipe_json fp | jq -r '.history[].reason')
assert_contains "$hist" "cdc worker failed" "worker failures recorded in history"
"$CTL" drop fp >/dev/null
log "PASS"
