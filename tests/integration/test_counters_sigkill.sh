# Per-table counters survive a SIGKILL of pgferryd (issue 22, item 11): the CDC worker confirmed
# the slot as soon as ClickHouse had a batch and told pgferryd its counts up to a second later,
# so pgferryd killed in between lost them for good (the slot had moved on). Now the slot is
# confirmed only as far as pgferryd has stored the counts with the position, and a batch whose
# report was lost is streamed, applied and counted again. Three rounds: rows in, pgferryd killed
# the moment ClickHouse has them, started again; the counters equal the rows applied, exactly.
source "$(dirname "$0")/../lib/common.sh"

S="cnt_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.c (id int PRIMARY KEY, v int);"
start_daemon
P=cnt
create_pipe $P "$S.c" --mode cdc-only >/dev/null
wait_for 60 "pipe $P Running" state_is $P Running
DB="\`${CH_DB_PREFIX}$P\`"
streaming() { "$CTL" status $P --json | jq -r '.workers[].activity' | grep -q streaming; }
wait_for 30 "$P streaming" streaming
inserts() { pipe_json $P | jq -r '.tables[0].inserts'; }

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
wait_for 30 "the counters of every row applied" bash -c "[ \"\$('$CTL' status $P --json | jq -r '.tables[0].inserts')\" = 3000 ]"
sleep 2 # and they stay there: no batch counted twice
assert_eq "$(inserts)" 3000 "per-table inserts after three SIGKILLs"
assert_eq "$(pipe_json $P | jq -r '.cdc.inserts')" 3000 "pipe inserts after three SIGKILLs"
assert_eq "$(pipe_json $P | jq -r '.cdc.transactions')" 3 "transactions after three SIGKILLs"
assert_eq "$(ch_q "SELECT count(), sum(v) FROM $DB.c_live" | tr '\t' ' ')" "3000 4501500" "ClickHouse rows"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
