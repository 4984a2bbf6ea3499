# The CDC insert pace (issue 16, item 2), against the real servers:
#  - a change to a quiet table is in ClickHouse as soon as the stream pauses after its commit,
#    not batch_max_wait_ms later (before: every commit waited for the batch timer);
#  - a table written by a steady stream of small transactions gets at most one insert per
#    batch_max_wait_ms (ClickHouse block numbers count the inserts), not one per commit;
#  - the slot is confirmed only as far as every table has inserted: a quiet table's insert does
#    not confirm the commit of a busy table's rows still waiting for their turn;
#  - nothing is lost: both tables equal to PostgreSQL at the end, the slot caught up.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="pace_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.quiet (id int PRIMARY KEY, v int);
  CREATE TABLE $S.busy (id int PRIMARY KEY, v int);
  CREATE PROCEDURE $S.churn(n int, pause float8) LANGUAGE plpgsql AS \$\$
  BEGIN
    FOR i IN 1..n LOOP
      INSERT INTO $S.busy VALUES (1000 + i, i);
      COMMIT;
      PERFORM pg_sleep(pause);
    END LOOP;
  END \$\$;"
start_daemon
P=pc
create_pipe $P "$S.quiet,$S.busy" --mode cdc-only >/dev/null
wait_for 60 "pipe $P Running" state_is $P Running
DB="\`${CH_DB_PREFIX}$P\`"
SLOT=$(pipe_json $P | jq -r .slot)
set_wait() { # MS: a new pace; the CDC worker restarts with it
    set_and_restart $P "batch_max_wait_ms=$1"
    assert_eq "$(pipe_json $P | jq -r .batch_max_wait_ms)" "$1" "the setting"
}
ms_now() { echo $(($(date +%s%N) / 1000000)); }
visible() { [ "$(ch_q "SELECT count() FROM $DB.$1 WHERE id = $2")" = 1 ]; }

log "a quiet table's change is inserted at once (pace 3000 ms)"
set_wait 3000
for i in 1 2 3; do
    t0=$(ms_now)
    psql_q "SET synchronous_commit = on; INSERT INTO $S.quiet VALUES ($i, $i)"
    wait_for 20 "quiet row $i" visible quiet $i
    took=$(($(ms_now) - t0))
    log "quiet row $i visible after $took ms"
    [ "$took" -lt 2000 ] || fail "a change to a quiet table waited $took ms (the pace is 3000 ms)"
    sleep 3.2 # the table's last insert is older than the pace again
done

log "a busy table: at most one insert per pace (1000 ms)"
set_wait 1000
blocks() { ch_q "SELECT max(max_block_number) FROM system.parts WHERE database = '${CH_DB_PREFIX}$P' AND table = 'busy'"; }
b0=$(blocks)
[ -n "$b0" ] || b0=0
t0=$(ms_now)
psql_q "CALL $S.churn(150, 0.02)"
t1=$(ms_now)
wait_match 30 "busy" "SELECT count(*), sum(v) FROM $S.busy" "SELECT count(), sum(v) FROM $DB.busy_live"
b1=$(blocks)
inserts=$((b1 - b0))
limit=$(((t1 - t0) / 1000 + 3))
log "150 commits in $((t1 - t0)) ms went in $inserts insert(s) (at most $limit allowed)"
[ "$inserts" -ge 1 ] || fail "no insert counted"
[ "$inserts" -le "$limit" ] || fail "$inserts inserts into the busy table in $((t1 - t0)) ms at a pace of 1000 ms"

log "the slot waits for the busy table's pending rows (pace 6000 ms)"
set_wait 6000
psql_q "SET synchronous_commit = on; INSERT INTO $S.busy VALUES (1, 1)"
wait_for 20 "busy row 1 (the table's first insert since the restart)" visible busy 1
psql_q "SET synchronous_commit = on; INSERT INTO $S.busy VALUES (2, 2)"
lsn2=$(committed_lsn)
psql_q "SET synchronous_commit = on; INSERT INTO $S.quiet VALUES (10, 10)"
wait_for 20 "quiet row 10" visible quiet 10
if ! visible busy 2; then
    slot_confirms "$SLOT" "$lsn2" && fail "the slot confirmed $lsn2 while busy row 2 was not in ClickHouse"
    log "busy row 2 is waiting for its turn and the slot is not confirmed past it: ok"
else
    log "busy row 2 was already inserted (a slow machine): the hold was not observable this run"
fi
wait_for 30 "busy row 2" visible busy 2
wait_slot_caught_up 30 "$SLOT"

tables_match "SELECT id, v FROM $S.quiet ORDER BY id" "SELECT id, v FROM $DB.quiet_live ORDER BY id" ||
    fail "quiet differs"
tables_match "SELECT id, v FROM $S.busy ORDER BY id" "SELECT id, v FROM $DB.busy_live ORDER BY id" ||
    fail "busy differs"
log "ok"
