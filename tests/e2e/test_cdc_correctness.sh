# CDC against the real servers, case by case (issue 4, "Correctness cases"): every case is
# compared with PostgreSQL afterwards (live rows under FINAL), and FINAL must never show a key
# twice. Also: writes during the initial load (snapshot-to-CDC handoff), a table outside the
# pipe, a partitioned table, two pipes on one database, schema changes reported in history, and
# the slot moving while only another database writes.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="cdc_$$"
OTHERDB="cdc_other_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
cleanup_other() { psql -X -q "$PGFERRY_PG_URI" -c "DROP DATABASE IF EXISTS $OTHERDB" >/dev/null 2>&1; }
EXIT_HOOKS+=(cleanup_other)

# TOASTed values must be incompressible to be stored out of line (pgoutput then sends 'u')
BIG="(SELECT string_agg(md5(g::text || random()::text), '') FROM generate_series(1, 400) g)"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.t1 (id int PRIMARY KEY, v text, big text);
  CREATE TABLE $S.t2 (id int PRIMARY KEY, v text, big text);
  ALTER TABLE $S.t2 REPLICA IDENTITY FULL;
  CREATE TABLE $S.t3 (a int, b text, v int, PRIMARY KEY (a, b));
  CREATE TABLE $S.ignored (id int PRIMARY KEY, v text);
  CREATE TABLE $S.parted (id int, region text, v text, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
  CREATE TABLE $S.parted_eu PARTITION OF $S.parted FOR VALUES IN ('eu');
  CREATE TABLE $S.parted_us PARTITION OF $S.parted FOR VALUES IN ('us');
  CREATE TABLE $S.tr1 (id int PRIMARY KEY, v text);
  CREATE TABLE $S.tr2 (id int PRIMARY KEY, v text);
  CREATE TABLE $S.sc (id int PRIMARY KEY, a int NOT NULL, b text);
  CREATE TABLE $S.load (id bigint PRIMARY KEY, v int, t text);
  INSERT INTO $S.t1 SELECT g, 'v' || g, NULL FROM generate_series(1, 2000) g;
  INSERT INTO $S.t2 SELECT g, 'v' || g, NULL FROM generate_series(1, 2000) g;
  UPDATE $S.t1 SET big = $BIG WHERE id <= 5;
  UPDATE $S.t2 SET big = $BIG WHERE id <= 5;
  INSERT INTO $S.t3 SELECT g, 'k' || g, g FROM generate_series(1, 100) g;
  INSERT INTO $S.parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'p' || g
    FROM generate_series(1, 100) g;
  INSERT INTO $S.tr1 SELECT g, 'a' FROM generate_series(1, 50) g;
  INSERT INTO $S.tr2 SELECT g, 'b' FROM generate_series(1, 50) g;
  INSERT INTO $S.sc SELECT g, g, 'b' || g FROM generate_series(1, 20) g;
  INSERT INTO $S.load SELECT g, g, md5(g::text) FROM generate_series(1, 300000) g;"

start_daemon
P=cdc1
DB="\`${CH_DB_PREFIX}$P\`"

# writes while the initial load runs belong to CDC from the slot's consistent point
writes() {
    echo "BEGIN;
          UPDATE $S.load SET v = v + 1 WHERE id = (($1 * 7919) % 300000) + 1;
          DELETE FROM $S.load WHERE id = (($1 * 104729) % 300000) + 1;
          INSERT INTO $S.load VALUES (300000 + $1, $1, 'during load');
          COMMIT;"
}
start_writer writes
create_pipe $P "$S.t1,$S.t2,$S.t3,$S.parted,$S.tr1,$S.tr2,$S.sc,$S.load" --snapshot-workers 2 \
    >/dev/null
wait_for 60 "pipe $P reaches Running" state_is $P Running
sleep 1
stop_writer
n_writes=$(psql_q "SELECT count(*) FROM $S.load WHERE t = 'during load'")
log "writer committed $n_writes transactions around the load"
[ "$n_writes" -gt 5 ] || fail "the writer made too few writes ($n_writes) to test the handoff"
SLOT=$(pipe_json $P | jq -r .slot)
assert_eq "$SLOT" "pgferry_$P" "owned slot"
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT temporary")" 1 \
    "a permanent slot for the pipe"
wait_match 60 "load (handoff)" "SELECT id, v, t FROM $S.load ORDER BY id" \
    "SELECT id, v, t FROM $DB.load_live ORDER BY id"

# a second pipe on the same database, on t1 only
P2=cdc2
DB2="\`${CH_DB_PREFIX}$P2\`"
create_pipe $P2 "$S.t1" >/dev/null
wait_for 60 "pipe $P2 reaches Running" state_is $P2 Running

log "insert, update, delete; several updates in one transaction; delete and re-insert"
psql_q "INSERT INTO $S.t1 VALUES (5001, 'new', NULL), (5002, 'gone', NULL);
  UPDATE $S.t1 SET v = 'updated' WHERE id = 10;
  DELETE FROM $S.t1 WHERE id IN (11, 5002);
  BEGIN; UPDATE $S.t1 SET v = 'one' WHERE id = 12; UPDATE $S.t1 SET v = 'two' WHERE id = 12;
         UPDATE $S.t1 SET v = 'three' WHERE id = 12; COMMIT;
  BEGIN; DELETE FROM $S.t1 WHERE id = 13; INSERT INTO $S.t1 VALUES (13, 'reborn', NULL); COMMIT;
  BEGIN; INSERT INTO $S.t1 VALUES (14000, 'short-lived', NULL); DELETE FROM $S.t1 WHERE id = 14000; COMMIT;"

log "key changes (single and composite key)"
psql_q "UPDATE $S.t1 SET id = 9000 WHERE id = 15;
  UPDATE $S.t3 SET b = 'changed' WHERE a = 1;
  UPDATE $S.t3 SET a = 1000, v = -1 WHERE a = 2;
  BEGIN; UPDATE $S.t3 SET a = 3000 WHERE a = 3; UPDATE $S.t3 SET a = 3 WHERE a = 3000; COMMIT;"

log "unchanged TOAST values, default replica identity and FULL; NULL vs unchanged"
psql_q "UPDATE $S.t1 SET v = 'toast kept' WHERE id IN (1, 2);
  UPDATE $S.t2 SET v = 'toast kept' WHERE id IN (1, 2);
  UPDATE $S.t1 SET big = NULL WHERE id = 3;
  UPDATE $S.t2 SET big = NULL WHERE id = 3;
  UPDATE $S.t1 SET id = 7000 WHERE id = 4;
  UPDATE $S.t2 SET id = 7000 WHERE id = 4;
  BEGIN; UPDATE $S.t1 SET v = 'x1' WHERE id = 5; UPDATE $S.t1 SET v = 'x2' WHERE id = 5; COMMIT;
  UPDATE $S.t1 SET big = $BIG, v = 'new toast' WHERE id = 6;
  UPDATE $S.t1 SET v = 'after new toast' WHERE id = 6;"

log "truncate: one table, two tables, and inside a transaction with inserts"
psql_q "TRUNCATE $S.tr1;
  INSERT INTO $S.tr1 VALUES (1, 'after truncate');
  BEGIN; INSERT INTO $S.tr2 VALUES (100, 'before'); TRUNCATE $S.tr1, $S.tr2;
         INSERT INTO $S.tr2 VALUES (101, 'after'); INSERT INTO $S.tr1 VALUES (2, 'after'); COMMIT;"

log "partitions, and a table outside the pipe"
psql_q "INSERT INTO $S.parted VALUES (1000, 'eu', 'new eu'), (1001, 'us', 'new us');
  UPDATE $S.parted SET v = 'moved' WHERE id = 2 AND region = 'eu';
  UPDATE $S.parted SET region = 'us' WHERE id = 4;
  DELETE FROM $S.parted WHERE id = 5;
  INSERT INTO $S.ignored VALUES (1, 'not replicated');"

T1PG="SELECT id, coalesce(v, '<null>'), coalesce(md5(big), '<null>') FROM $S.t1 ORDER BY id"
t1ch() { echo "SELECT id, ifNull(v, '<null>'), ifNull(lower(hex(MD5(big))), '<null>') FROM $1.t1_live ORDER BY id"; }
wait_match 30 "t1" "$T1PG" "$(t1ch "$DB")"
wait_match 30 "t1 in the second pipe" "$T1PG" "$(t1ch "$DB2")"
wait_match 30 "t2 (REPLICA IDENTITY FULL)" \
    "SELECT id, coalesce(v, '<null>'), coalesce(md5(big), '<null>') FROM $S.t2 ORDER BY id" \
    "SELECT id, ifNull(v, '<null>'), ifNull(lower(hex(MD5(big))), '<null>') FROM $DB.t2_live ORDER BY id"
wait_match 30 "t3 (composite key)" "SELECT a, b, v FROM $S.t3 ORDER BY a, b" \
    "SELECT a, b, v FROM $DB.t3_live ORDER BY a, b"
wait_match 30 "tr1" "SELECT id, v FROM $S.tr1 ORDER BY id" "SELECT id, v FROM $DB.tr1_live ORDER BY id"
wait_match 30 "tr2" "SELECT id, v FROM $S.tr2 ORDER BY id" "SELECT id, v FROM $DB.tr2_live ORDER BY id"
wait_match 30 "parted" "SELECT id, region, v FROM $S.parted ORDER BY id, region" \
    "SELECT id, region, v FROM $DB.parted_live ORDER BY id, region"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '${CH_DB_PREFIX}$P' AND name LIKE 'ignored%'")" 0 \
    "no destination for a table outside the pipe"
# the stored TOAST values are the real ones, not empty strings
assert_eq "$(ch_q "SELECT count() FROM $DB.t1_live WHERE length(big) = 12800")" \
    "$(psql_q "SELECT count(*) FROM $S.t1 WHERE length(big) = 12800")" "TOAST values present"
[ "$(psql_q "SELECT count(*) FROM $S.t1 WHERE length(big) = 12800 AND v = 'toast kept'")" = 2 ] ||
    fail "test setup: expected two TOASTed rows updated"

log "schema changes mid-stream, with DML in the same transactions"
psql_q "BEGIN; ALTER TABLE $S.sc ADD COLUMN c int DEFAULT 5; INSERT INTO $S.sc VALUES (100, 100, 'x', 6); COMMIT;
  BEGIN; ALTER TABLE $S.sc ADD COLUMN d text; UPDATE $S.sc SET d = 'dee' WHERE id = 1; COMMIT;
  BEGIN; ALTER TABLE $S.sc RENAME COLUMN b TO b2; UPDATE $S.sc SET b2 = 'renamed' WHERE id = 2; COMMIT;
  BEGIN; ALTER TABLE $S.sc DROP COLUMN a; INSERT INTO $S.sc VALUES (101, 'no a', 7, 'dd'); COMMIT;
  UPDATE $S.sc SET c = 50 WHERE id = 3;"
wait_match 30 "sc after schema changes" \
    "SELECT id, coalesce(b2, '<null>'), coalesce(c::text, '<null>'), coalesce(d, '<null>') FROM $S.sc ORDER BY id" \
    "SELECT id, ifNull(b, '<null>'), ifNull(toString(c), '<null>'), ifNull(d, '<null>') FROM $DB.sc_live ORDER BY id"
# the dropped column keeps its old values in ClickHouse, NULL in new rows
assert_eq "$(ch_q "SELECT a FROM $DB.sc FINAL WHERE id = 1")" 1 "dropped column keeps old data"
assert_eq "$(ch_q "SELECT isNull(a) FROM $DB.sc FINAL WHERE id = 101")" 1 "dropped column NULL in new rows"
hist=$(pipe_json $P | jq -r '.history[].reason')
assert_contains "$hist" "column c added as Nullable(Int32)" "history: add column"
assert_contains "$hist" "column d added as Nullable(String)" "history: add column without default"
assert_contains "$hist" "column b renamed to b2 (ClickHouse keeps column b)" "history: rename"
assert_contains "$hist" "column a dropped at the source" "history: drop column"
# a new column named like a renamed column's ClickHouse column (b2 is still b there): it gets
# b_2 (it used to share b with b2, and the _live view could not be made: the pipe stopped)
psql_q "BEGIN; ALTER TABLE $S.sc ADD COLUMN b text; UPDATE $S.sc SET b = 'new b' WHERE id = 3; COMMIT;
  UPDATE $S.sc SET b2 = 'b2 again' WHERE id = 1;"
wait_match 30 "sc with b2 and the new b" \
    "SELECT id, coalesce(b2, '<null>'), coalesce(b, '<null>') FROM $S.sc ORDER BY id" \
    "SELECT id, ifNull(b, '<null>'), ifNull(b_2, '<null>') FROM $DB.sc_live ORDER BY id"
assert_contains "$(pipe_json $P | jq -r '.history[].reason')" "column b goes to ClickHouse column b_2" \
    "history: the new column's ClickHouse name"
state_is $P Running || fail "the pipe is $(pipe_state $P) after the new column b"

for t in t1:id t2:id t3:a,b tr1:id tr2:id parted:id,region sc:id load:id; do
    no_duplicates "$DB.${t%%:*}" "${t#*:}"
done
no_duplicates "$DB2.t1" id

log "the slot moves while only another database writes (100 MB)"
wait_slot_caught_up 30 "$SLOT"
psql_q "CREATE DATABASE $OTHERDB"
before=$(psql_q "SELECT pg_current_wal_lsn()")
psql -X -q -v ON_ERROR_STOP=1 "${PGFERRY_PG_URI%/*}/$OTHERDB" -c \
    "CREATE TABLE filler (id int, pad text);
     INSERT INTO filler SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 400000) g;" \
    >/dev/null
written=$(psql_q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$before')::bigint")
log "WAL written by the other database: $((written / 1048576)) MB"
[ "$written" -gt $((90 * 1048576)) ] || fail "the other database wrote only $written bytes"
wait_slot_caught_up 30 "$SLOT"
psql_q "CHECKPOINT" >/dev/null
wait_for 30 "slot $SLOT retains little WAL" \
    pg_true "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) < 16 * 1048576 FROM pg_replication_slots WHERE slot_name = '$SLOT'"

log "drop removes the slot and the publication"
out=$("$CTL" drop $P2 --drop-destination)
assert_contains "$out" "replication slot pgferry_$P2 dropped" "drop output"
assert_contains "$out" "publication pgferry_$P2 dropped" "drop output"
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_$P2'")" 0 "slot gone"
assert_eq "$(psql_q "SELECT count(*) FROM pg_publication WHERE pubname = 'pgferry_$P2'")" 0 "publication gone"
assert_eq "$(ch_q "SELECT count() FROM system.databases WHERE name = '${CH_DB_PREFIX}$P2'")" 0 "destination dropped"
"$CTL" drop $P >/dev/null
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'")" 0 "slot gone"
assert_eq "$(ch_q "SELECT count() FROM $DB.t1_live")" "$(psql_q "SELECT count(*) FROM $S.t1")" \
    "destination kept without --drop-destination"
log "PASS"
