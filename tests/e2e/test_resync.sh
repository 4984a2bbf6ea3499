# Resync (issue 5): from Running under a write load, every table loads again into
# <table>_resync while the old tables keep answering, the pair is swapped with one RENAME, the
# old data dropped, and CDC continues from a new slot with nothing lost or doubled; a reader
# polling the table and its view during all of it never finds them missing. Also the way out of
# Failed (destination table dropped), and a snapshot-only pipe's resync back to Completed.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="resync_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.r1 (id int PRIMARY KEY, v int, t text);
  CREATE TABLE $S.r2 (id int PRIMARY KEY, v text);
  INSERT INTO $S.r1 SELECT g, 0, md5(g::text) FROM generate_series(1, 150000) g;
  INSERT INTO $S.r2 SELECT g, 'r2' FROM generate_series(1, 100) g;"
start_daemon
create_pipe rs "$S.r1,$S.r2" >/dev/null
wait_for 60 "pipe rs reaches Running" state_is rs Running
DB="\`${CH_DB_PREFIX}rs\`"
psql_q "UPDATE $S.r1 SET v = 1 WHERE id <= 10"
wait_match 30 "r1 before the resync" "SELECT id, v FROM $S.r1 ORDER BY id" "SELECT id, v FROM $DB.r1_live ORDER BY id"
# a changed schema that the resync picks up: a column the old destination table lacks
psql_q "ALTER TABLE $S.r2 ADD COLUMN extra int DEFAULT 3"

touch "$TEST_DIR/running"
reader() { # counts every failed query against the table or its view
    while [ -e "$TEST_DIR/running" ]; do
        ch_q "SELECT count() FROM $DB.r1" >/dev/null 2>>"$TEST_DIR/reader.err" || echo fail >>"$TEST_DIR/reader.fail"
        ch_q "SELECT count() FROM $DB.r1_live" >/dev/null 2>>"$TEST_DIR/reader.err" || echo fail >>"$TEST_DIR/reader.fail"
        echo ok >>"$TEST_DIR/reader.ok"
    done
}
writer() {
    local i=0
    while [ -e "$TEST_DIR/running" ]; do
        i=$((i + 1))
        psql -X -q "$PGFERRY_PG_URI" -c "UPDATE $S.r1 SET v = v + 1 WHERE id = $((i * 13 % 150000 + 1));
          INSERT INTO $S.r1 VALUES ($((200000 + i)), $i, 'during resync')" >/dev/null 2>&1 || true
    done
}
reader &
CLEANUP_PIDS+=($!)
READER=$!
writer &
CLEANUP_PIDS+=($!)
WRITER=$!
sleep 1

log "resync a running pipe under load"
out=$("$CTL" resync rs)
assert_contains "$out" "resyncing" "resync reply"
wait_for 120 "pipe rs back in Running after the swap" bash -c \
    "'$CTL' status rs --json | jq -e '.state == \"Running\" and ([.history[].to] | index(\"Resync\")) != null' >/dev/null"
sleep 1
rm -f "$TEST_DIR/running"
wait "$WRITER" || true
wait "$READER" || true
hist=$(pipe_json rs | jq -r '.history[].to' | uniq | paste -sd,)
assert_contains "$hist" "Running,Snapshot,Resync,Running" "resync path in history"
reads=$(wc -l <"$TEST_DIR/reader.ok")
log "reader made $reads rounds of queries during the resync"
[ "$reads" -gt 10 ] || fail "the reader ran too little ($reads)"
[ ! -s "$TEST_DIR/reader.fail" ] || fail "a reader query failed during the swap: $(head -3 "$TEST_DIR/reader.err")"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '${CH_DB_PREFIX}rs' AND (name LIKE '%_resync' OR name LIKE '%pgferry%') AND name != '_pgferry_owners'")" 0 \
    "no _resync or old tables left"
wait_match 60 "r1 after the resync" "SELECT id, v, t FROM $S.r1 ORDER BY id" "SELECT id, v, t FROM $DB.r1_live ORDER BY id"
wait_match 30 "r2 with its new column" "SELECT id, v, extra FROM $S.r2 ORDER BY id" \
    "SELECT id, v, extra FROM $DB.r2_live ORDER BY id"
no_duplicates "$DB.r1" id
grep -q "dropped slot pgferry_rs: this load starts a new one" "$TEST_DIR/pgferryd.log" ||
    fail "the slot was not created anew"
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_rs'")" 1 "one slot"
psql_q "UPDATE $S.r1 SET v = -5 WHERE id = 3; DELETE FROM $S.r2 WHERE id = 1"
wait_match 30 "r1 streams after the resync" "SELECT id, v FROM $S.r1 ORDER BY id" "SELECT id, v FROM $DB.r1_live ORDER BY id"
wait_match 30 "r2 streams after the resync" "SELECT id, v, extra FROM $S.r2 ORDER BY id" \
    "SELECT id, v, extra FROM $DB.r2_live ORDER BY id"

log "resync is the way out of Failed"
ch_q "DROP TABLE $DB.r2" >/dev/null
psql_q "INSERT INTO $S.r2 VALUES (500, 'after drop', 1)"
wait_for 30 "pipe rs Failed" state_is rs Failed
"$CTL" resync rs >/dev/null
wait_for 120 "pipe rs Running again" bash -c "'$CTL' status rs --json | jq -e '.state == \"Running\"' >/dev/null"
wait_match 30 "r2 restored" "SELECT id, v, extra FROM $S.r2 ORDER BY id" \
    "SELECT id, v, extra FROM $DB.r2_live ORDER BY id"
wait_match 30 "r1 intact" "SELECT id, v FROM $S.r1 ORDER BY id" "SELECT id, v FROM $DB.r1_live ORDER BY id"

log "a snapshot-only pipe resyncs back to Completed"
create_pipe so "$S.r2" --mode snapshot-only >/dev/null
wait_for 60 "pipe so Completed" state_is so Completed
psql_q "UPDATE $S.r2 SET v = 'newer'"
"$CTL" resync so >/dev/null
wait_for 60 "pipe so Completed again" bash -c \
    "'$CTL' status so --json | jq -e '.state == \"Completed\" and ([.history[].to] | index(\"Resync\")) != null' >/dev/null"
wait_match 10 "so after its resync" "SELECT id, v FROM $S.r2 ORDER BY id" \
    "SELECT id, v FROM \`${CH_DB_PREFIX}so\`.r2_live ORDER BY id"
set +e; out=$("$CTL" resync nosuch 2>&1); rc=$?; set -e
[ $rc -ne 0 ] || fail "resync of an unknown pipe succeeded"
"$CTL" drop rs >/dev/null
"$CTL" drop so >/dev/null
log "PASS"
