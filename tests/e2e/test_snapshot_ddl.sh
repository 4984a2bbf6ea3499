# DDL between Setup and a load (found by tests/nemesis: a column renamed before a resync's load
# made every range's COPY fail, FATAL). The load locks its tables before its snapshot and reads
# the definitions again under it: here an ALTER that renames a column is open (holding its lock)
# while Setup records the old name; the load waits for the lock, the ALTER commits, and the load
# must go on with the new name - for a new pipe and for a resync (snapshot-only pipes: a
# publication's creation would wait for the ALTER's lock itself). While a load runs, DDL on its
# tables waits for it.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"
source "$(dirname "$0")/../lib/sessions.sh"

S="sd_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.t (id int PRIMARY KEY, a text, b int);
  INSERT INTO $S.t SELECT g, 'a' || g, g FROM generate_series(1, 1000) g;"
start_daemon
P=sd
DB="\`${CH_DB_PREFIX}$P\`"

log "a column renamed by an ALTER that was open while Setup ran"
session_open A
session_send A "BEGIN; ALTER TABLE $S.t RENAME COLUMN a TO a2;"
session_sync A
create_pipe $P "$S.t" --mode snapshot-only >/dev/null
wait_for 30 "the load waiting for the ALTER's lock" pg_true \
    "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%LOCK TABLE%$S%'"
assert_eq "$(pipe_json $P | jq -r '.tables[0].columns[1].name')" a "Setup recorded the old name"
session_send A "COMMIT;"
session_sync A
session_close A
wait_for 60 "pipe $P reaches Completed" state_is $P Completed
assert_eq "$(pipe_json $P | jq -r '.tables[0].columns[1].name')" a2 "the load's definition"
wait_match 30 "t" "SELECT id, a2, b FROM $S.t ORDER BY id" "SELECT id, a2, b FROM $DB.t_live ORDER BY id"
assert_contains "$(pipe_json $P | jq -r '.history[].reason')" "changed between Setup and the load"

log "the same before a resync's load"
session_open A
session_send A "BEGIN; ALTER TABLE $S.t RENAME COLUMN b TO b2;"
session_sync A
"$CTL" resync $P >/dev/null
wait_for 30 "the resync's load waiting for the ALTER's lock" pg_true \
    "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%LOCK TABLE%$S%'"
session_send A "COMMIT;"
session_sync A
session_close A
wait_for 60 "pipe $P back in Completed after the resync" state_is $P Completed
wait_match 30 "t after the resync" "SELECT id, a2, b2 FROM $S.t ORDER BY id" \
    "SELECT id, a2, b2 FROM $DB.t_live ORDER BY id"

log "DDL during a load: the load gives way and starts over after it"
psql_q "INSERT INTO $S.t SELECT g, 'x', g FROM generate_series(1001, 600000) g"
P=sd2
DB="\`${CH_DB_PREFIX}$P\`"
create_pipe $P "$S.t" --rows-per-range 100000 --snapshot-workers 1 >/dev/null
# the load is over in well under a second: its range worker is frozen as soon as it exists, so
# the ALTER comes while the load runs (the coordinator, which holds the locks, is not frozen)
RANGE_PID=""
for _ in $(seq 1 3000); do
    RANGE_PID=$(pgrep -f -- "--pipe $P --role snapshot-range" | head -1 || true)
    [ -n "$RANGE_PID" ] && kill -STOP "$RANGE_PID" 2>/dev/null && break
    RANGE_PID=""
    sleep 0.01
done
[ -n "$RANGE_PID" ] || fail "no range worker to hold the load"
thaw() { kill -CONT "$RANGE_PID" 2>/dev/null || true; }
EXIT_HOOKS+=(thaw)
wait_for 30 "the load holding its lock" pg_true \
    "SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.relation = '$S.t'::regclass
       AND l.mode = 'AccessShareLock' AND a.application_name = 'pgferry-snapshot'"
[ "$(pipe_state $P)" = Snapshot ] || fail "the load ended before the ALTER: $(pipe_state $P)"
t0=$(date +%s%N)
psql_q "SET lock_timeout = '20s'; ALTER TABLE $S.t ADD COLUMN c int DEFAULT 7"
thaw
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
log "the ALTER went through after $waited ms"
[ $waited -lt 15000 ] || fail "the ALTER waited $waited ms for the load"
wait_for 120 "pipe $P reaches Running" state_is $P Running
assert_contains "$(pipe_json $P | jq -r '.history[].reason')" "waits for the load; the load stops for it"
psql_q "UPDATE $S.t SET c = 8 WHERE id = 1"
wait_match 60 "t after the load and the ALTER" "SELECT count(*), sum(b2), sum(c) FROM $S.t" \
    "SELECT count(), sum(b2), sum(c) FROM $DB.t_live"
no_duplicates "$DB.t" id
log "ok"
