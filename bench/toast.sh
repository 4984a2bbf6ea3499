#!/usr/bin/env bash
# Benchmark (not a test): an UPDATE of every row of a table whose 8 kB text value stays
# unchanged (stored out of line, so pgoutput does not send it), applied by pgferry under the
# default replica identity (the value is looked up in ClickHouse, one query per piece) against
# the same UPDATE under REPLICA IDENTITY FULL (the old row carries the value), REPEAT rounds
# (default 3) on the same tables. Prints each round and the medians with their spread: the time
# of each, the ratio of the default identity's throughput to FULL's (target >= 0.5), the inserts
# and lookups the default-identity run made, the destination table's active parts afterwards,
# and the CDC worker's peak RSS (target < 100 MB).
#
#   bench/toast.sh [ROWS]   (default 200000; uses $PGFERRY_PG_URI/$PGFERRY_CH_URL if set, else
#                           its own servers; REPEAT=N for the rounds)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${1:-200000}
BIN="$ROOT/build/bin"
WORK=$(mktemp -d /tmp/pgferry-bench-toast-XXXXXX)
chmod 755 "$WORK"
DAEMON=""
S="benchtoast_$$"
DB="benchtoast_$$"
cleanup() {
    if [ -n "$DAEMON" ]; then kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true; fi
    if [ -n "${PGFERRY_PG_URI:-}" ]; then
        psql -X -q "$PGFERRY_PG_URI" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pgferry_benchtoast' AND NOT active" >/dev/null 2>&1 || true
        psql -X -q "$PGFERRY_PG_URI" -c "DROP PUBLICATION IF EXISTS pgferry_benchtoast" -c "DROP SCHEMA IF EXISTS $S CASCADE" >/dev/null 2>&1 || true
        curl -sS "${PGFERRY_CH_URL%/}/" --data-binary "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
    fi
    if [ -n "${OWN_SERVERS:-}" ]; then bash "$ROOT/deploy/dev/servers.sh" destroy "$WORK/servers" >/dev/null 2>&1 || true; fi
    [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

source "$ROOT/bench/lib.sh"
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
export PGFERRY_STATE_DIR="$WORK/state"
start_daemon() {
    "$BIN/pgferryd" --state-dir "$WORK/state" --log-level info >>"$WORK/pgferryd.log" 2>&1 &
    DAEMON=$!
    for _ in $(seq 1 100); do [ -S "$WORK/state/control.sock" ] && break; sleep 0.05; done
}
stop_daemon() { kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=""; }
state() { "$BIN/pgferryctl" status benchtoast --json | jq -r .state; }
confirmed_ge() { [ "$(psql_q "SELECT confirmed_flush_lsn >= '$2' FROM pg_replication_slots WHERE slot_name = '$1'")" = t ]; }

echo "== setup: two tables of $ROWS rows with an 8 kB value stored out of line"
psql_q "SET client_min_messages = warning; CREATE SCHEMA $S;"
for t in def full; do
    psql_q "CREATE TABLE $S.$t (id bigint PRIMARY KEY, status int NOT NULL, big text);
      ALTER TABLE $S.$t ALTER COLUMN big SET STORAGE EXTERNAL;
      INSERT INTO $S.$t SELECT g, 0, repeat(md5(g::text), 256) FROM generate_series(1, $ROWS) g;"
done
psql_q "ALTER TABLE $S.full REPLICA IDENTITY FULL"
start_daemon
"$BIN/pgferryctl" create benchtoast --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" \
    --tables "$S.def,$S.full" --dest-database "$DB" >/dev/null
while [ "$(state)" != Running ]; do sleep 0.5; done
echo "loaded"

# run TABLE: the UPDATE is committed while pgferryd is stopped, then ELAPSED is the time from
# pgferryd's start until its slot confirmed the UPDATE (everything in ClickHouse)
run() {
    stop_daemon
    psql_q "UPDATE $S.$1 SET status = status + 1"
    local end t0
    end=$(committed_lsn)
    t0=$(now)
    start_daemon
    while ! confirmed_ge pgferry_benchtoast "$end"; do sleep 0.05; done
    ELAPSED=$(calc "$(now) - $t0")
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
spread() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
REPEAT=${REPEAT:-3}
: >"$WORK/def"; : >"$WORK/full"; : >"$WORK/ratio"
for r in $(seq 1 "$REPEAT"); do
    echo "== round $r: default replica identity, then REPLICA IDENTITY FULL ($ROWS rows each)"
    run def
    t_def=$ELAPSED
    stop_daemon # the CDC worker logs what it did and its peak memory as it stops
    stats=$(grep -o 'stopped at .* in lookups' "$WORK/pgferryd.log" | tail -1)
    hwm=$(grep -o 'cdc: peak RSS [0-9]* MB' "$WORK/pgferryd.log" | tail -1 | grep -o '[0-9]*')
    start_daemon
    run full
    t_full=$ELAPSED
    echo "$t_def" >>"$WORK/def"
    echo "$t_full" >>"$WORK/full"
    echo "$(calc "$t_full / $t_def")" >>"$WORK/ratio"
    echo "   default $t_def s ($(calc "$ROWS / $t_def") rows/s, worker peak ${hwm} MB), FULL $t_full s ($(calc "$ROWS / $t_full") rows/s), ratio $(calc "$t_full / $t_def")"
    echo "   default identity worker: $stats"
done
for t in def full; do
    got=$(ch "SELECT count(), sum(status), sum(length(big)) FROM $DB.${t}_live FORMAT TSV")
    want=$(psql_q "SELECT count(*), sum(status), sum(length(big)) FROM $S.$t" | tr '|' '\t')
    [ "$got" = "$want" ] || echo "WARNING: $t differs: ClickHouse $got, PostgreSQL $want"
done
parts=$(ch "SELECT count() FROM system.parts WHERE database = '$DB' AND table = 'def' AND active")
echo "== medians of $REPEAT rounds"
echo "default identity: $(median <"$WORK/def") s (spread $(spread <"$WORK/def")), $(calc "$ROWS / $(median <"$WORK/def")") rows/s"
echo "REPLICA IDENTITY FULL: $(median <"$WORK/full") s (spread $(spread <"$WORK/full")), $(calc "$ROWS / $(median <"$WORK/full")") rows/s"
echo "throughput ratio default / FULL: $(median <"$WORK/ratio") (spread $(spread <"$WORK/ratio"), target >= 0.5)"
echo "active parts of the default-identity table afterwards: $parts"
echo "CDC worker peak RSS (last default-identity round): ${hwm} MB (target < 100)"
