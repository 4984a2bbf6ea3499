# A TRUNCATE that stays through a ClickHouse restart (found by tests/nemesis, seed 777663912).
# ClickHouse 18.16's TRUNCATE takes parts out of the table in memory; parts still on disk (the
# sources of a merge, kept for 8 minutes; parts truncated while the server shuts down) are
# loaded again at the next start and their rows come back. pgferry follows each TRUNCATE with a
# mutation that deletes every row of the parts that existed before it, which ClickHouse keeps on
# disk and applies to such parts when it loads them.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"
source "$(dirname "$0")/../lib/outage.sh"

S="trrs_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY, v text);"

start_daemon
create_pipe tr "$S.t" >/dev/null
wait_for 60 "pipe tr reaches Running" state_is tr Running
DB="${CH_DB_PREFIX}tr"
PGQ="SELECT id, v FROM $S.t ORDER BY id"
CHQ="SELECT id, v FROM \`$DB\`.t_live ORDER BY id"

# three parts, then merged: their sources stay on disk as outdated parts
for b in 0 1 2; do
    psql_q "INSERT INTO $S.t SELECT g, 'batch $b' FROM generate_series($((b * 100 + 1)), $((b * 100 + 100))) g"
    wait_match 30 "batch $b" "$PGQ" "$CHQ"
done
ch_q "OPTIMIZE TABLE \`$DB\`.t FINAL" >/dev/null
outdated=$(ch_q "SELECT count() FROM system.parts WHERE database = '$DB' AND table = 't' AND NOT active")
log "$outdated outdated part(s) on disk after the merge"
[ "$outdated" -ge 2 ] || fail "the merge left no outdated parts (the test needs them)"

psql_q "TRUNCATE $S.t; INSERT INTO $S.t VALUES (1000, 'after the truncate')"
wait_match 30 "the truncate" "$PGQ" "$CHQ"

log "ClickHouse restarted"
ch_stop
ch_start
psql_q "INSERT INTO $S.t VALUES (1001, 'after the restart')"
wait_for 60 "pipe tr Running" state_is tr Running
# verify right away: it waits for the pending mutation, so it does not report the rows that
# are about to go
out=$("$CTL" --timeout 120000 verify tr 2>&1) || fail "verify after the restart: $out"
assert_contains "$out" "match (2 rows)"
wait_match 30 "the table after the restart" "$PGQ" "$CHQ"
n=$(ch_q "SELECT count() FROM \`$DB\`.t FINAL WHERE id < 1000")
assert_eq "$n" 0 "rows from before the truncate in the table"
"$CTL" drop tr >/dev/null
log "PASS"
