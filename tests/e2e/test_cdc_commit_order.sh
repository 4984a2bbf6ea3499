# Row versions follow commit order (issue 11 item 1; docs/ARCHITECTURE.md "Versions"): one key
# written by concurrent transactions whose WAL records interleave must end as the transaction
# that committed last left it.
#  - ordinary primary key, 50 keys: A inserts k; B's insert of k is logged, then waits for A in
#    the unique check; A deletes k and commits; B commits. PostgreSQL has B's rows.
#  - DEFERRABLE key, 10 keys: B inserts k (check deferred); A deletes the old row k and commits;
#    B commits.
#  - a key change: A inserts k; B inserts k (waits); A moves its row to another key; B commits.
#  - one key changed several times inside a transaction that is inserted in many pieces (insert,
#    update, delete, insert again), and the same transaction replayed after the CDC worker was
#    killed half-way through its pieces.
#  - the first case again after a PostgreSQL restart, on a table added to the running pipe, and
#    after a resync.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"
source "$(dirname "$0")/../lib/sessions.sh"
source "$(dirname "$0")/../lib/outage.sh"

S="co_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.co1 (id int PRIMARY KEY, v text);
  CREATE TABLE $S.co2 (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text);
  -- a deferrable key cannot be the replica identity: deletes need FULL
  ALTER TABLE $S.co2 REPLICA IDENTITY FULL;
  CREATE TABLE $S.co3 (id int PRIMARY KEY, v text);
  CREATE TABLE $S.co4 (id int PRIMARY KEY, v text);
  CREATE TABLE $S.big (id int PRIMARY KEY, v text, pad text);
  INSERT INTO $S.co2 SELECT g, 'old' FROM generate_series(1, 10) g;"

# 1 MB batches: the large transaction below is inserted in many pieces
start_daemon --batch_max_bytes 1048576
P=co
DB="\`${CH_DB_PREFIX}$P\`"
create_pipe $P "$S.co1,$S.co2,$S.co3,$S.big" >/dev/null
wait_for 60 "pipe $P reaches Running" state_is $P Running

# interleave TABLE FIRST_KEY: the ordinary-key case on keys FIRST_KEY .. FIRST_KEY+49
interleave() {
    local t=$1 k0=$2 k1=$(($2 + 49)) k
    session_open A
    session_send A "BEGIN; INSERT INTO $S.$t SELECT g, 'a' FROM generate_series($k0, $k1) g;"
    session_sync A
    local pids=()
    for k in $(seq "$k0" "$k1"); do
        psql -X -q "$PGFERRY_PG_URI" -c "INSERT INTO $S.$t VALUES ($k, 'b')" >/dev/null 2>&1 &
        pids+=("$!")
    done
    wait_lock_waiters 50 "INSERT INTO $S.$t VALUES (%"
    session_send A "DELETE FROM $S.$t WHERE id BETWEEN $k0 AND $k1; COMMIT;"
    session_sync A
    session_close A
    local p
    for p in "${pids[@]}"; do wait "$p" || fail "a concurrent insert into $t failed"; done
    assert_eq "$(psql_q "SELECT count(*) FROM $S.$t WHERE id BETWEEN $k0 AND $k1 AND v = 'b'")" 50 \
        "PostgreSQL keeps the inserts that committed last"
}
match() { # TABLE
    wait_match 60 "$1" "SELECT id, v FROM $S.$1 ORDER BY id" "SELECT id, v FROM $DB.$1_live ORDER BY id"
    no_duplicates "$DB.$1" id
}

log "ordinary key: delete logged after a concurrent insert of the same key, committed before it"
interleave co1 1
match co1

log "DEFERRABLE key: insert (check deferred) before a concurrent delete that commits first"
session_open B
session_send B "BEGIN; INSERT INTO $S.co2 SELECT g, 'b' FROM generate_series(1, 10) g;"
session_sync B
psql_q "DELETE FROM $S.co2 WHERE id <= 10 AND v = 'old'"
session_send B "COMMIT;"
session_sync B
session_close B
assert_eq "$(psql_q "SELECT count(*) FROM $S.co2 WHERE v = 'b'")" 10 "PostgreSQL has B's rows"
match co2

log "key change logged after a concurrent insert of the old key"
session_open A
session_send A "BEGIN; INSERT INTO $S.co3 SELECT g, 'a' FROM generate_series(1, 20) g;"
session_sync A
pids=()
for k in $(seq 1 20); do
    psql -X -q "$PGFERRY_PG_URI" -c "INSERT INTO $S.co3 VALUES ($k, 'b')" >/dev/null 2>&1 &
    pids+=("$!")
done
wait_lock_waiters 20 "INSERT INTO $S.co3 VALUES (%"
session_send A "UPDATE $S.co3 SET id = id + 2000 WHERE id <= 20; COMMIT;"
session_sync A
session_close A
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent insert into co3 failed"; done
assert_eq "$(psql_q "SELECT count(*) FROM $S.co3")" 40 "both keys of every pair exist"
match co3

# big_txn TAG: one transaction of ~30 MB in which keys 1..5 go through insert, update, delete
# and insert again, each step ~6 MB of filler rows apart (so each lands in another piece)
big_txn() {
    local tag=$1 base=$(($2 * 100000))
    local filler="INSERT INTO $S.big SELECT $base + 1000 + g + 10000 * \$s, 'filler', repeat(md5(g::text), 32)
                  FROM generate_series(1, 6000) g"
    psql_q "BEGIN;
      DELETE FROM $S.big WHERE id <= 5;
      INSERT INTO $S.big SELECT g, '$tag first', 'x' FROM generate_series(1, 5) g;
      ${filler//\$s/1};
      UPDATE $S.big SET v = '$tag second' WHERE id <= 5;
      ${filler//\$s/2};
      DELETE FROM $S.big WHERE id <= 3;
      ${filler//\$s/3};
      INSERT INTO $S.big SELECT g, '$tag third', 'y' FROM generate_series(1, 2) g;
      ${filler//\$s/4};
      UPDATE $S.big SET v = '$tag last' WHERE id = 4;
      COMMIT;"
}
BIGPG="SELECT id, v, md5(pad) FROM $S.big ORDER BY id"
BIGCH="SELECT id, v, lower(hex(MD5(pad))) FROM $DB.big_live ORDER BY id"

log "one key changed in several pieces of one large transaction"
big_txn run1 1
wait_match 60 "big" "$BIGPG" "$BIGCH"
no_duplicates "$DB.big" id

log "the same kind of transaction replayed after the CDC worker is killed between its pieces"
cdc_pid() { pipe_json $P | jq -r '.workers[] | select(.role == "cdc") | .pid'; }
pid=$(cdc_pid)
[ -n "$pid" ] || fail "no CDC worker"
rows_before=$(ch_q "SELECT count() FROM $DB.big")
big_txn run2 2 &
BIGW=$!
# freeze the worker once some (not all) of the transaction's pieces are in ClickHouse
deadline=$(($(date +%s) + 60))
while :; do
    n=$(ch_q "SELECT count() FROM $DB.big")
    [ $((n - rows_before)) -gt 2000 ] && break
    [ "$(date +%s)" -lt $deadline ] || fail "the large transaction never reached ClickHouse"
    sleep 0.05
done
kill -STOP "$pid"
partial=$(($(ch_q "SELECT count() FROM $DB.big") - rows_before))
log "froze the CDC worker with $partial of ~24000 rows of the transaction inserted"
[ "$partial" -lt 24000 ] || fail "the transaction was fully inserted before the worker froze"
confirmed_before=$(psql_q "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgferry_$P'")
kill -KILL "$pid"
wait $BIGW
wait_for 30 "a new CDC worker" bash -c "[ -n \"\$($CTL status $P --json | jq -r '.workers[] | select(.role == \"cdc\") | .pid')\" ]"
wait_match 90 "big after the replay" "$BIGPG" "$BIGCH"
no_duplicates "$DB.big" id
# the slot is confirmed once pgferryd has stored the counters of what ClickHouse has (a round
# trip after the rows are visible)
wait_for 30 "the slot to move past the replayed transaction" pg_true \
    "SELECT confirmed_flush_lsn > '$confirmed_before' FROM pg_replication_slots WHERE slot_name = 'pgferry_$P'"

log "after a PostgreSQL restart"
pg_restart
interleave co1 101
match co1

log "on a table added to the running pipe"
"$CTL" add-tables $P "$S.co4" >/dev/null
wait_for 60 "pipe $P back in Running after add-tables" state_is $P Running
interleave co4 1
match co4
interleave co1 201
match co1

log "after a resync"
"$CTL" resync $P >/dev/null
wait_for 90 "pipe $P back in Running after resync" state_is $P Running
interleave co1 301
interleave co4 101
match co1
match co4
match co2
match co3
wait_match 60 "big after the resync" "$BIGPG" "$BIGCH"
log "ok"
