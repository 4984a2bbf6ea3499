# Adding and removing tables (issue 5): add-tables to a Running pipe -> Snapshot of the new
# table only (the other table keeps its data and its changes made meanwhile arrive) -> Running;
# add-tables to a Paused pipe; remove-tables -> Modifying -> back, the table leaves the
# publication, its changes stop, its destination table stays (dropped only with the flag).
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="mod_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.x (id int PRIMARY KEY, v int);
  CREATE TABLE $S.z (id int PRIMARY KEY, v int);
  CREATE TABLE $S.y (id int PRIMARY KEY, v text);
  INSERT INTO $S.x SELECT g, 0 FROM generate_series(1, 1000) g;
  INSERT INTO $S.z SELECT g, 0 FROM generate_series(1, 200000) g;
  INSERT INTO $S.y SELECT g, 'y' FROM generate_series(1, 10) g;"
start_daemon
create_pipe mt "$S.x" >/dev/null
wait_for 60 "pipe mt reaches Running" state_is mt Running
DB="\`${CH_DB_PREFIX}mt\`"

writes() {
    echo "UPDATE $S.x SET v = v + 1 WHERE id = $(($1 % 1000 + 1));
          UPDATE $S.z SET v = v + 1 WHERE id = $(($1 * 7 % 200000 + 1));
          INSERT INTO $S.x VALUES ($((1000 + $1)), $1)"
}
start_writer writes
sleep 1

log "add a table to the running pipe while both tables are written"
old_slot_lsn=$(psql_q "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgferry_mt'")
out=$("$CTL" add-tables mt "$S.z")
assert_contains "$out" "adding" "add-tables reply"
wait_for 60 "pipe mt loads the new table and is Running again" bash -c \
    "[ \"\$('$CTL' status mt --json | jq -r '[.history[].to] | join(\",\")')\" != '' ] &&
     '$CTL' status mt --json | jq -e '.state == \"Running\" and (.tables | length) == 2' >/dev/null"
sleep 1
stop_writer
hist=$(pipe_json mt | jq -r '.history[].to' | uniq | paste -sd,)
assert_contains "$hist" "Running,Snapshot,Running" "Snapshot for the new table in history"
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_mt'")" 1 "the pipe's slot was kept"
assert_eq "$(psql_q "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'pgferry_mt' AND tablename = 'z'")" 1 \
    "the new table joined the publication"
wait_match 60 "x (changes made during the load)" "SELECT id, v FROM $S.x ORDER BY id" \
    "SELECT id, v FROM $DB.x_live ORDER BY id"
wait_match 60 "z (loaded while written)" "SELECT id, v FROM $S.z ORDER BY id" \
    "SELECT id, v FROM $DB.z_live ORDER BY id"
no_duplicates "$DB.x" id
no_duplicates "$DB.z" id
assert_eq "$(pipe_json mt | jq -r '.tables[] | select(.table == "x") | .snapshot_rows')" 1000 \
    "x was not loaded again"

log "refusals"
set +e
out=$("$CTL" add-tables mt "$S.x" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "adding a table twice succeeded"
assert_contains "$out" "already in pipe mt" "add refusal"
out=$("$CTL" remove-tables mt "$S.x,$S.z" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "removing every table succeeded"
assert_contains "$out" "drop the pipe instead" "remove-all refusal"
out=$("$CTL" remove-tables mt "$S.nosuch" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "removing an unknown table succeeded"
assert_contains "$out" "is not in pipe mt" "remove unknown refusal"
set -e

log "add a table to a paused pipe"
"$CTL" pause mt >/dev/null
wait_for 10 "pipe mt Paused" state_is mt Paused
psql_q "UPDATE $S.x SET v = -1 WHERE id = 1"
"$CTL" add-tables mt "$S.y" >/dev/null
wait_for 60 "pipe mt Running with three tables" bash -c \
    "'$CTL' status mt --json | jq -e '.state == \"Running\" and (.tables | length) == 3' >/dev/null"
wait_match 30 "y" "SELECT id, v FROM $S.y ORDER BY id" "SELECT id, v FROM $DB.y_live ORDER BY id"
wait_match 30 "x after the paused add" "SELECT id, v FROM $S.x ORDER BY id" \
    "SELECT id, v FROM $DB.x_live ORDER BY id"

log "remove a table: its changes stop, its destination table stays"
out=$("$CTL" remove-tables mt "$S.z")
assert_contains "$out" "left publication pgferry_mt" "remove reply"
assert_contains "$out" "destination tables kept" "remove reply"
hist=$(pipe_json mt | jq -r '.history[].to' | uniq | paste -sd,)
assert_contains "$hist" "Running,Modifying,Running" "Modifying in history"
assert_eq "$(pipe_json mt | jq -r '.tables | length')" 2 "two tables left"
assert_eq "$(psql_q "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'pgferry_mt' AND tablename = 'z'")" 0 \
    "z left the publication"
before=$(ch_q "SELECT sum(v) FROM $DB.z_live")
psql_q "UPDATE $S.z SET v = v + 1000 WHERE id <= 100; UPDATE $S.x SET v = 7 WHERE id = 2"
wait_match 30 "x still streams" "SELECT id, v FROM $S.x ORDER BY id" "SELECT id, v FROM $DB.x_live ORDER BY id"
assert_eq "$(ch_q "SELECT sum(v) FROM $DB.z_live")" "$before" "changes of a removed table do not arrive"

log "remove with --drop-destination"
out=$("$CTL" remove-tables mt "$S.y" --drop-destination)
assert_contains "$out" "1 destination table(s) and their views dropped" "drop reply"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '${CH_DB_PREFIX}mt' AND name LIKE 'y%'")" 0 \
    "y dropped in ClickHouse"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '${CH_DB_PREFIX}mt' AND name = 'z'")" 1 \
    "z still in ClickHouse"
wait_for 10 "pipe mt Running" state_is mt Running
"$CTL" drop mt >/dev/null

log "drop a snapshot+cdc pipe in the middle of its load: no session, no slot left"
create_pipe md "$S.z" --snapshot-workers 1 --rows-per-range 1000 >/dev/null
loading() { pipe_json md | jq -e '.state == "Snapshot" and ([.workers[] | select(.role == "snapshot-range")] | length) > 0' >/dev/null; }
wait_for 60 "pipe md loading" loading
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_md'")" 1 "the load's slot exists"
"$CTL" drop md >/dev/null
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_md'")" 0 "slot gone"
wait_for 10 "no pgferry session left" pg_true \
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name LIKE 'pgferry%'"
assert_eq "$(psql_q "SELECT count(*) FROM pg_publication WHERE pubname = 'pgferry_md'")" 0 "publication gone"
log "PASS"
