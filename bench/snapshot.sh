#!/usr/bin/env bash
# Snapshot benchmark (not a test). Builds a table of ROWS rows (default 2,000,000, ~300 MB:
# bigint key, int, short text, numeric(12,2), timestamptz, bool, 64-char text), then in the same
# run times
#   (a) pgferry: a snapshot-only pipe, from entering Snapshot to Completed (pipe history);
#   (b) the plain pipeline: psql COPY (SELECT ...) TO STDOUT | curl INSERT ... FORMAT TSV into
#       an identical ClickHouse table;
# and prints rows/s for both, the ratio, where the baseline's time goes (COPY alone, INSERT
# alone) and the pgferry worker's peak RSS.
#
#   bench/snapshot.sh [ROWS]      (uses the servers in $PGFERRY_PG_URI/$PGFERRY_CH_URL if set,
#                                  else starts its own and removes them afterwards)
#   SNAPSHOT_WORKERS=N bench/snapshot.sh    range workers of the pipe (default: cores)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${1:-2000000}
BIN="$ROOT/build/bin"
WORK=$(mktemp -d /tmp/pgferry-bench-XXXXXX)
chmod 755 "$WORK"
DAEMON=""
cleanup() {
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    [ -n "${OWN_SERVERS:-}" ] && bash "$ROOT/deploy/dev/servers.sh" destroy "$WORK/servers" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$BIN/pgferryd" ] || { cmake -S "$ROOT" -B "$ROOT/build" >/dev/null && cmake --build "$ROOT/build" -j2 >/dev/null; }
if [ -z "${PGFERRY_PG_URI:-}" ]; then
    OWN_SERVERS=1
    eval "$(bash "$ROOT/deploy/dev/servers.sh" start "$WORK/servers")"
fi
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
ch() { curl -sS --fail-with-body "${PGFERRY_CH_URL%/}/" --data-binary "$1"; }
psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" -c "$1"; }
S="bench_$$"

echo "== building $ROWS rows"
psql_q "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $S CASCADE; CREATE SCHEMA $S;
  CREATE TABLE $S.t (id bigint PRIMARY KEY, n int NOT NULL, short text, amount numeric(12,2),
                     created timestamptz, flag bool, long text);
  INSERT INTO $S.t SELECT g, g % 1000, 'item ' || (g % 97), (g % 100000) / 100.0,
    TIMESTAMPTZ '2026-01-01' + g * INTERVAL '1 second', g % 3 = 0,
    md5(g::text) || md5((g + 1)::text) FROM generate_series(1, $ROWS) g;"
psql_q "VACUUM ANALYZE $S.t"
size=$(psql_q "SELECT pg_size_pretty(pg_table_size('$S.t'))")
echo "table size $size"

echo "== (a) pgferry"
"$BIN/pgferryd" --state-dir "$WORK/state" --log-level warn >"$WORK/pgferryd.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 100); do [ -S "$WORK/state/control.sock" ] && break; sleep 0.1; done
export PGFERRY_STATE_DIR="$WORK/state"
DB="bench_$$"
"$BIN/pgferryctl" create bench --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" \
    --tables "$S.t" --dest-database "$DB" --mode snapshot-only \
    --snapshot-workers "${SNAPSHOT_WORKERS:-$(nproc)}" >/dev/null
peak=0
while :; do
    j=$("$BIN/pgferryctl" status bench --json)
    st=$(jq -r .state <<<"$j")
    for pid in $(jq -r '.workers[].pid' <<<"$j"); do
        r=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ -n "$r" ] && [ "$r" -gt "$peak" ] && peak=$r
    done
    case "$st" in Completed | Failed) break ;; esac
    sleep 0.05
done
[ "$st" = Completed ] || { jq -r .last_error.message <<<"$j"; exit 1; }
t_snap=$(jq -r '(.history[] | select(.to == "Completed") | .time_us) - (.history[] | select(.to == "Snapshot") | .time_us)' <<<"$j")
a_s=$(calc "$t_snap / 1000000")
[ "$(ch "SELECT count() FROM \`$DB\`.t")" = "$ROWS" ] || { echo "pgferry row count wrong"; exit 1; }

echo "== (b) psql COPY | curl INSERT FORMAT TSV"
ch "CREATE TABLE \`$DB\`.base AS \`$DB\`.t" >/dev/null
COLS="id, n, short, amount, created, flag::int, long, 0, 0"
INS="INSERT INTO \`$DB\`.base (id, n, short, amount, created, flag, long, _pgferry_version, _pgferry_is_deleted) FORMAT TSV"
export PGOPTIONS="-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3"
t0=$(now)
psql -X -q "$PGFERRY_PG_URI" -c "COPY (SELECT $COLS FROM $S.t) TO STDOUT" |
    curl -sS --fail-with-body "${PGFERRY_CH_URL%/}/?query=$(jq -rn --arg q "$INS" '$q|@uri')" --data-binary @- >/dev/null
t1=$(now)
b_s=$(calc "$t1 - $t0")
[ "$(ch "SELECT count() FROM \`$DB\`.base")" = "$ROWS" ] || { echo "baseline row count wrong"; exit 1; }

echo "== where the baseline's time goes"
t0=$(now); psql -X -q "$PGFERRY_PG_URI" -c "COPY (SELECT $COLS FROM $S.t) TO STDOUT" >"$WORK/dump.tsv"; t1=$(now)
copy_s=$(calc "$t1 - $t0")
ch "TRUNCATE TABLE \`$DB\`.base" >/dev/null
t0=$(now)
curl -sS --fail-with-body "${PGFERRY_CH_URL%/}/?query=$(jq -rn --arg q "$INS" '$q|@uri')" --data-binary @"$WORK/dump.tsv" >/dev/null
t1=$(now)
ins_s=$(calc "$t1 - $t0")

ch "DROP DATABASE \`$DB\`" >/dev/null
psql_q "DROP SCHEMA $S CASCADE"
printf '\nrows %s (%s in PostgreSQL), %s cores, %s snapshot worker(s)\n' "$ROWS" "$size" "$(nproc)" "${SNAPSHOT_WORKERS:-$(nproc)}"
printf '(a) pgferry snapshot       %8.3f s  %10.0f rows/s  worker peak RSS %d MB\n' "$a_s" "$(calc "$ROWS / $a_s")" $((peak / 1024))
printf '(b) psql COPY | curl TSV   %8.3f s  %10.0f rows/s\n' "$b_s" "$(calc "$ROWS / $b_s")"
printf '    COPY to a file alone   %8.3f s\n' "$copy_s"
printf '    TSV INSERT alone       %8.3f s\n' "$ins_s"
printf 'ratio pgferry/baseline: %.2f (target >= 1.5)\n' "$(calc "$b_s / $a_s")"
