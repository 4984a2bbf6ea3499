# Twenty pipes side by side on one supervisor: created at once, each loads its own small table
# (snapshot-only), all end Completed with exact counts, and no worker process is left.
source "$(dirname "$0")/../lib/common.sh"

S="e2e_many_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
sql="CREATE SCHEMA $S;"
for i in $(seq 1 20); do
    sql="$sql CREATE TABLE $S.t$i (id int PRIMARY KEY, v text);
      INSERT INTO $S.t$i SELECT g, repeat('x', $i) FROM generate_series(1, 100 * $i) g;"
done
psql_q "$sql"

start_daemon
for i in $(seq 1 20); do
    create_pipe "p$i" "$S.t$i" --mode snapshot-only >/dev/null
done
assert_eq "$("$CTL" list --json | jq length)" 20 "twenty pipes listed"
all_done() { [ "$("$CTL" list --json | jq '[.[] | select(.state == "Completed")] | length')" = 20 ]; }
wait_for 120 "all twenty pipes Completed" all_done
for i in $(seq 1 20); do
    assert_eq "$(ch_q "SELECT count(), sum(length(v)) FROM \`${CH_DB_PREFIX}p$i\`.t${i}_live FORMAT TSV")" \
        "$((100 * i))	$((100 * i * i))" "rows of pipe p$i"
done
[ "$("$CTL" list --json | jq '[.[].workers[]] | length')" = 0 ] || fail "workers left after all pipes completed"
[ "$("$CTL" list --json | jq '[.[] | .worker_restarts] | add')" = 0 ] || fail "workers had to be restarted"
dpid=$DAEMON_PID
stop_daemon || fail "pgferryd exited non-zero"
[ -z "$(pgrep -P "$dpid" || true)" ] || fail "children left behind"
log "ok"
