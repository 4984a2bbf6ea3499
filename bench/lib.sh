# Shared by the benchmarks (bash, sourced once the script has set ROOT, BIN, WORK and its cleanup
# trap): builds the binaries if they are missing, starts PostgreSQL and ClickHouse in
# $WORK/servers when no servers are given (OWN_SERVERS=1: the script's cleanup removes them),
# and the small helpers both scripts use.
[ -x "$BIN/pgferryd" ] || { cmake -S "$ROOT" -B "$ROOT/build" >/dev/null && cmake --build "$ROOT/build" -j2 >/dev/null; }
if [ -z "${PGFERRY_PG_URI:-}" ]; then
    OWN_SERVERS=1
    eval "$(bash "$ROOT/deploy/dev/servers.sh" start "$WORK/servers")"
fi
now() { date +%s.%N; }
ch() { curl -sS --fail-with-body "${PGFERRY_CH_URL%/}/" --data-binary "$1"; }
psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" -c "$1"; }
# committed_lsn: a position at or after the end of every commit so far (one synchronous commit
# flushes the WAL before it; under synchronous_commit = off a commit that returned may not be
# flushed yet, and the walsender reads only flushed WAL)
committed_lsn() {
    psql -X -q -At -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" \
        -c "SELECT 1 FROM (SELECT set_config('synchronous_commit', 'on', true), txid_current()) s" \
        -c "SELECT pg_current_wal_flush_lsn()" | tail -1
}
