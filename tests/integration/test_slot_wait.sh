# Creating a replication slot waits for every transaction open at that moment, a prepared one
# included (issue 14): status says what the pipe waits for (the prepared transaction's gid and
# age), the log says it once, a drop during the wait is answered at once and leaves no slot,
# and the pipe goes on when the transaction ends. Both paths: the snapshot's slot and a
# cdc-only pipe's slot (Setup).
source "$(dirname "$0")/../lib/common.sh"

S="sw_$$"
GID="pgferry_test_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
# (ROLLBACK PREPARED cannot share a transaction with the schema's cleanup: a hook of its own)
rollback_prepared() { psql_q "ROLLBACK PREPARED '$GID'"; }
EXIT_HOOKS=(rollback_prepared "${EXIT_HOOKS[@]}")
[ "$(psql_q "SHOW max_prepared_transactions")" -gt 0 ] ||
    fail "the test server has max_prepared_transactions = 0 (deploy/dev/servers.sh sets 10)"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY, v text);
  INSERT INTO $S.t SELECT g, 'v' || g FROM generate_series(1, 10) g;"
psql -X -q -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" -c "BEGIN; INSERT INTO $S.t VALUES (100, 'prepared');
  PREPARE TRANSACTION '$GID';" || fail "cannot prepare a transaction"

start_daemon
activity() { pipe_json "$1" | jq -r '[.workers[].activity] | join(" | ")'; }

for mode in snapshot+cdc cdc-only; do
    name="w${mode%%[+-]*}"
    create_pipe "$name" "$S.t" --mode "$mode" >/dev/null
    wait_for 30 "$name reports what it waits for" bash -c \
        "'$CTL' status $name --json | jq -r '[.workers[].activity] | join(\" \")' | grep -q \"prepared transaction '$GID' (prepared [0-9]* s ago\""
    a=$(activity "$name")
    log "$mode: $a"
    assert_contains "$a" "creating the replication slot for" "activity names the step"
    assert_contains "$("$CTL" status "$name")" "prepared transaction '$GID'" "text status shows it"
done
grep -q "PostgreSQL waits for the transactions open when it started to end: prepared transaction '$GID'" \
    "$TEST_DIR/pgferryd.log" || fail "the wait is not logged"
n=$(grep -c "prepared transaction '$GID'" "$TEST_DIR/pgferryd.log")
[ "$n" -le 4 ] || fail "the wait is logged $n times (once per change of blockers expected)"

# a drop during the wait: the command is cancelled, the answer comes at once, no slot is left
t0=$(date +%s%N)
"$CTL" drop wcdc >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
log "drop during the wait answered in $ms ms"
[ "$ms" -lt 5000 ] || fail "drop during the slot wait took $ms ms"
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_wcdc'")" 0 "no slot after the drop"

# the transaction ends: the other pipe loads and runs, with the prepared row committed
psql_q "COMMIT PREPARED '$GID'"
wait_for 60 "wsnapshot reaches Running" state_is wsnapshot Running
psql_q "INSERT INTO $S.t VALUES (200, 'after')"
wait_for 30 "rows in ClickHouse" bash -c "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM \`${CH_DB_PREFIX}wsnapshot\`.t_live')\" = 12 ]"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
