# A resync requested while the CDC worker still holds a schema change (found by the nemesis
# test): the worker, stopped for the resync, acknowledges its last batch and only then sends
# the definitions it changed; they arrive after the resync's setup recorded the new ones. They
# used to replace them, marking every table loaded: the load planned no range and the pipe
# stayed in Snapshot for good. Now definitions from a CDC worker count only while CDC owns
# them; the resync loads every table and ends Running, equal to PostgreSQL, with the new column.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="latedefs_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.t (id int PRIMARY KEY, v int);
  INSERT INTO $S.t SELECT g, g FROM generate_series(1, 1000) g;"
start_daemon
P=ld
create_pipe $P "$S.t" >/dev/null
wait_for 60 "pipe $P Running" state_is $P Running
DB="\`${CH_DB_PREFIX}$P\`"
# a long pace and a large batch: the change below stays pending in the worker
set_and_restart $P batch_max_wait_ms=60000 batch_max_rows=2000000
# the table's first insert after the restart goes at once; its next waits for the pace
psql_q "INSERT INTO $S.t VALUES (1001, 1001)"
wait_match 30 "t" "SELECT count(*) FROM $S.t" "SELECT count() FROM $DB.t_live"
psql_q "ALTER TABLE $S.t ADD COLUMN z int;
  INSERT INTO $S.t SELECT g, g, -g FROM generate_series(2000, 201999) g;"
# the worker has the 200,000 rows and the new column, unacknowledged
wait_for 30 "the worker received the change" bash -c "psql -X -At '$PGFERRY_PG_URI' -c \"SELECT sent_lsn >= pg_current_wal_lsn() FROM pg_stat_replication WHERE application_name = 'pgferry-cdc'\" | grep -q t"
state_is $P Running || fail "not Running before the resync: $(pipe_state $P)"
"$CTL" resync $P >/dev/null
wait_for 120 "the resync ends Running" state_is $P Running
grep -q "definitions from a stopped CDC worker ignored" "$TEST_DIR/pgferryd.log" ||
    log "the stopped worker's definitions came before the resync's setup this run"
wait_match 60 "t after the resync" "SELECT count(*), sum(v), sum(z) FROM $S.t" \
    "SELECT count(), sum(v), sum(z) FROM $DB.t_live"
psql_q "INSERT INTO $S.t VALUES (999999, 1, 7)"
wait_match 90 "a change after the resync" "SELECT count(*), sum(v), sum(z) FROM $S.t" \
    "SELECT count(), sum(v), sum(z) FROM $DB.t_live"
log "ok"
