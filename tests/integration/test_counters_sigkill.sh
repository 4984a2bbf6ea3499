# Per-table counters survive a SIGKILL of pgferryd (issue 22, item 11): the CDC worker confirmed
# the slot as soon as ClickHouse had a batch and told pgferryd its counts up to a second later,
# so pgferryd killed in between lost them for good (the slot had moved on). Now the slot is
# confirmed only as far as pgferryd has stored the counts with the position, and a batch whose
# report was lost is streamed, applied and counted again. Three rounds: rows in, pgferryd killed
# the moment ClickHouse has them, started again; the counters equal the rows applied, exactly.
source "$(dirname "$0")/../lib/common.sh"

S="cnt_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.c (id int PRIMARY KEY, v int);
  CREATE TABLE $S.q (id int PRIMARY KEY); CREATE TABLE $S.b (id int PRIMARY KEY, v int);
  CREATE PROCEDURE $S.churn(n int) LANGUAGE plpgsql AS \$\$
  BEGIN
    FOR i IN 1..n LOOP
      INSERT INTO $S.b VALUES (i, i);
      COMMIT;
      PERFORM pg_sleep(0.02);
    END LOOP;
  END \$\$;"
start_daemon
P=cnt
create_pipe $P "$S.c,$S.q,$S.b" --mode cdc-only >/dev/null
wait_for 60 "pipe $P Running" state_is $P Running
DB="\`${CH_DB_PREFIX}$P\`"
streaming() { "$CTL" status $P --json | jq -r '.workers[].activity' | grep -q streaming; }
wait_for 30 "$P streaming" streaming
inserts() { pipe_json $P | jq -r --arg t "${1:-c}" '[.tables[] | select(.table == $t) | .inserts] | add // 0'; }

for round in 1 2 3; do
    psql_q "INSERT INTO $S.c SELECT g, g FROM generate_series($((round * 1000 - 999)), $((round * 1000))) g"
    wait_for 30 "round $round in ClickHouse" bash -c \
        "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM $DB.c_live')\" = $((round * 1000)) ]"
    kill -KILL "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null || true
    log "round $round: pgferryd killed"
    start_daemon
    wait_for 60 "$P streaming again" streaming
done
counted() { [ "$(inserts "$1")" = "$2" ]; }
wait_for 30 "the counters of every row applied" counted c 3000
sleep 2 # and they stay there: no batch counted twice
assert_eq "$(inserts)" 3000 "per-table inserts after three SIGKILLs"
assert_eq "$(pipe_json $P | jq -r '.cdc.inserts')" 3000 "pipe inserts after three SIGKILLs"
assert_eq "$(pipe_json $P | jq -r '.cdc.transactions')" 3 "transactions after three SIGKILLs"
assert_eq "$(ch_q "SELECT count(), sum(v) FROM $DB.c_live" | tr '\t' ' ')" "3000 4501500" "ClickHouse rows"

log "a table inserted while another holds the slot back, then pgferryd killed"
# at a pace of 3 s, b (a commit every 20 ms) is inserted every 3 s and holds the slot back to
# its first pending commit; q's row goes in at once and is counted, but the stored position
# stays before its commit. The replay after the kill must not count q's row again (it did,
# before positions were kept per table, whenever pgferryd or the worker died there).
set_and_restart $P batch_max_wait_ms=3000
psql_q "CALL $S.churn(250)" &
churn=$!
CLEANUP_PIDS+=($churn)
sleep 1
psql_q "INSERT INTO $S.q VALUES (1)"
wait_for 20 "q's row counted" counted q 1
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
wait "$churn" || fail "the churn of b"
start_daemon
wait_for 60 "$P streaming again" streaming
wait_for 30 "b's counters" counted b 250
sleep 2
assert_eq "$(inserts q)" 1 "q's inserts after the kill (its row counted once)"
assert_eq "$(inserts b)" 250 "b's inserts after the kill"
assert_eq "$(inserts c)" 3000 "c's inserts, untouched"
assert_eq "$(ch_q "SELECT count() FROM $DB.b_live")" 250 "b's rows in ClickHouse"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
