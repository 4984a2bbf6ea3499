# A pipe of 5,000 tables (issue 14): created, loaded, streamed, shown (status, list, --json)
# and dropped. Every message that carries the pipe's tables fits the channels; a range worker
# loads range after range over one connection; pgferryd reads the record once per change, not
# once per event. The times are logged (docs/BENCHMARKS.md records them): create -> Running,
# status/list, a change in ClickHouse, drop.
source "$(dirname "$0")/../lib/common.sh"

N=${PGFERRY_MANY_TABLES:-5000}
S="mt_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  DO \$\$ BEGIN
    FOR i IN 1..$N LOOP
      EXECUTE format('CREATE TABLE $S.t%s (id int PRIMARY KEY, v text, n numeric(12,2), at timestamptz)', i);
      EXECUTE format('INSERT INTO $S.t%s SELECT g, ''v'' || g, g * 1.5, TIMESTAMPTZ ''2026-01-01'' + g * INTERVAL ''1 h'' FROM generate_series(1, 3) g', i);
    END LOOP;
  END \$\$;"
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

start_daemon
DB="${CH_DB_PREFIX}big"
t0=$(date +%s%N)
create_pipe big "$(seq -s, -f "$S.t%g" 1 "$N")" --snapshot-workers 2 >/dev/null
wait_for 900 "pipe of $N tables reaches Running" state_is big Running
running_ms=$(ms_since "$t0")
j=$(pipe_json big)
assert_eq "$(jq -r '.tables | length' <<<"$j")" "$N" "tables in status --json"
assert_contains "$(jq -r '.history[] | select(.to == "Running") | .reason' <<<"$j")" "$((3 * N)) rows in $N range(s)" "load reason"
setup_s=$(jq -r '[.history[] | select(.to == "Setup" or .to == "Snapshot" or .to == "Running") | .time_us] | "\((.[1] - .[0]) / 1000000 | floor) s setup, \((.[2] - .[1]) / 1000000 | floor) s load"' <<<"$j")
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '$DB' AND name NOT LIKE '%_live' AND name != '_pgferry_owners'")" "$N" "destination tables"
assert_eq "$(ch_q "SELECT count() FROM merge('$DB', '^t[0-9]+\$')")" "$((3 * N))" "rows loaded"
[ "$(jq -r .worker_restarts <<<"$j")" = 0 ] || fail "workers had to be restarted"

# shown: text and JSON, status and list
times=""
for v in "status big" "status big --json" "list" "list --json"; do
    t=$(date +%s%N)
    "$CTL" --timeout 60000 $v >"$TEST_DIR/out" || fail "$v failed"
    times="$times $v: $(ms_since "$t") ms ($(wc -c <"$TEST_DIR/out") bytes);"
done
assert_contains "$(cat "$TEST_DIR/out")" "\"name\":\"big\"" "list --json"
assert_contains "$("$CTL" list)" "Running" "list"

# streamed: changes to tables at both ends and the middle
t=$(date +%s%N)
psql_q "INSERT INTO $S.t1 VALUES (100, 'new', 1, now()); UPDATE $S.t$((N / 2)) SET v = 'changed' WHERE id = 1;
  DELETE FROM $S.t$N WHERE id = 2;"
seen() {
    [ "$(ch_q "SELECT (SELECT count() FROM \`$DB\`.t1_live WHERE id = 100), (SELECT v FROM \`$DB\`.t$((N / 2))_live WHERE id = 1), (SELECT count() FROM \`$DB\`.t${N}_live) FORMAT TSV")" = "1	changed	2" ]
}
wait_for 60 "the changes in ClickHouse" seen
visible_ms=$(ms_since "$t")

t=$(date +%s%N)
out=$("$CTL" --timeout 600000 drop big --drop-destination)
drop_ms=$(ms_since "$t")
assert_contains "$out" "$N destination table(s) and their views dropped" "drop reply"
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_big'")" 0 "slot dropped"
log "$N tables: create -> Running $((running_ms / 1000)) s ($setup_s);$times change visible $visible_ms ms; drop $((drop_ms / 1000)) s"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
