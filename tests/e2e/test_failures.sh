# Failed with an actionable reason, and no restart loop (issue 5): the slot dropped under a
# running pipe, the slot invalidated while paused (max_slot_wal_keep_size), a source table
# dropped, the destination table dropped, the source credentials revoked.
source "$(dirname "$0")/../lib/common.sh"

S="fail_$$"
ROLE="pgf_u_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
reset_pg() {
    psql_q "ALTER SYSTEM RESET max_slot_wal_keep_size" >/dev/null 2>&1
    psql_q "SELECT pg_reload_conf()" >/dev/null 2>&1
    psql_q "DROP PUBLICATION IF EXISTS pgferry_creds" >/dev/null 2>&1
    psql_q "DROP SCHEMA IF EXISTS $S CASCADE" >/dev/null 2>&1
    psql_q "DROP OWNED BY $ROLE" >/dev/null 2>&1
    psql_q "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
}
EXIT_HOOKS+=(reset_pg)
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.a (id int PRIMARY KEY, v text); INSERT INTO $S.a VALUES (1, 'a');
  CREATE TABLE $S.b (id int PRIMARY KEY, v text); INSERT INTO $S.b VALUES (1, 'b');
  CREATE TABLE $S.c (id int PRIMARY KEY, v text); INSERT INTO $S.c VALUES (1, 'c');
  CREATE TABLE $S.c2 (id int PRIMARY KEY, v text); INSERT INTO $S.c2 VALUES (1, 'c2');
  CREATE TABLE $S.d (id int PRIMARY KEY, v text); INSERT INTO $S.d VALUES (1, 'd');
  CREATE TABLE $S.filler (id int, pad text);
  CREATE ROLE $ROLE LOGIN REPLICATION PASSWORD 'first-pw';
  GRANT USAGE, CREATE ON SCHEMA $S TO $ROLE;
  GRANT CREATE ON DATABASE postgres TO $ROLE;"
psql_q "SET ROLE $ROLE; CREATE TABLE $S.e (id int PRIMARY KEY, v text); INSERT INTO $S.e VALUES (1, 'e');"

start_daemon
check_failed() { # pipe, reason fragment
    wait_for 90 "pipe $1 is Failed" state_is "$1" Failed
    local j; j=$(pipe_json "$1")
    assert_eq "$(jq -r .last_error.class <<<"$j")" FATAL "error class of $1"
    assert_contains "$(jq -r .last_error.message <<<"$j")" "$2" "reason of $1"
    assert_contains "$(jq -r '.history[-1].reason' <<<"$j")" "$2" "history of $1"
    local n; n=$(jq -r .worker_restarts <<<"$j")
    sleep 3
    assert_eq "$(pipe_json "$1" | jq -r .worker_restarts)" "$n" "no restarts of $1 once Failed"
    assert_eq "$(pipe_json "$1" | jq -r '.workers | length')" 0 "no workers for Failed $1"
    log "$1: $(jq -r .last_error.message <<<"$j")"
}
for p in slotdrop srcdrop dstdrop lost; do
    t=$(case $p in slotdrop) echo "$S.a" ;; srcdrop) echo "$S.c,$S.c2" ;; dstdrop) echo "$S.d" ;; lost) echo "$S.b" ;; esac)
    create_pipe $p "$t" >/dev/null
done
URI_E="postgresql://$ROLE:first-pw@127.0.0.1:$PGFERRY_PG_PORT/postgres"
"$CTL" create creds --source "$URI_E" --dest "$PGFERRY_CH_URL" --tables "$S.e" \
    --dest-database "${CH_DB_PREFIX}creds" >/dev/null
TEST_PIPES+=(creds)
for p in slotdrop srcdrop dstdrop lost creds; do
    wait_for 60 "pipe $p reaches Running" state_is $p Running
done

log "the slot dropped under a running pipe"
for _ in $(seq 1 50); do
    psql_q "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
            WHERE slot_name = 'pgferry_slotdrop' AND active" >/dev/null
    psql_q "SELECT pg_drop_replication_slot('pgferry_slotdrop')" >/dev/null 2>&1 && break
    sleep 0.1
done
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_slotdrop'")" 0 "slot dropped"
check_failed slotdrop "dropped outside pgferry"

log "a source table dropped"
psql_q "DROP TABLE $S.c"
check_failed srcdrop "table $S.c was dropped at the source"
# the way out: the dropped table leaves the pipe, the other one streams again
out=$("$CTL" remove-tables srcdrop "$S.c")
# (a dropped table has left every publication already: the report says so)
assert_contains "$out" "$S.c is no longer on the source" "remove-tables from Failed"
wait_for 20 "pipe srcdrop Running again" state_is srcdrop Running
psql_q "INSERT INTO $S.c2 VALUES (2, 'after')"
wait_for 20 "c2 streams again" bash -c \
    "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM \`${CH_DB_PREFIX}srcdrop\`.c2_live')\" = 2 ]"

log "the destination table dropped"
ch_q "DROP TABLE \`${CH_DB_PREFIX}dstdrop\`.d" >/dev/null
psql_q "INSERT INTO $S.d VALUES (2, 'after the drop')"
check_failed dstdrop "destination table"
assert_contains "$(pipe_json dstdrop | jq -r .last_error.message)" "resync the pipe" "recovery path named"

log "the source credentials revoked"
psql_q "ALTER ROLE $ROLE PASSWORD 'second-pw'"
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '$ROLE'" >/dev/null
check_failed creds "password authentication failed"
! grep -q "first-pw\|second-pw" "$TEST_DIR/pgferryd.log" || fail "a password reached the log"

log "the slot invalidated while the pipe is paused"
"$CTL" pause lost >/dev/null
wait_for 10 "pipe lost is Paused" state_is lost Paused
psql_q "ALTER SYSTEM SET max_slot_wal_keep_size = '2MB'"
psql_q "SELECT pg_reload_conf()" >/dev/null
for _ in 1 2 3; do
    psql_q "INSERT INTO $S.filler SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g;"
    psql_q "SELECT pg_switch_wal()" >/dev/null
    psql_q "CHECKPOINT"
done
wait_for 20 "slot pgferry_lost is lost" \
    bash -c "[ \"\$(psql -X -At '$PGFERRY_PG_URI' -c \"SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'pgferry_lost'\")\" = lost ]"
check_failed lost "invalidated"
log "PASS"
