#!/usr/bin/env bash
# Snapshot benchmark (not a test). Builds a table of ROWS rows (default 2,000,000, ~300 MB:
# bigint key, int, short text, numeric(12,2), timestamptz, bool, 64-char text), then in the same
# run times
#   (a) pgferry: a snapshot-only pipe, from entering Snapshot to Completed (pipe history);
#   (b) the plain pipeline: psql COPY (SELECT ...) TO STDOUT | curl INSERT ... FORMAT TSV into
#       an identical ClickHouse table;
# REPEAT times (default 3, (a) and (b) alternating, each into a fresh destination table), and
# prints every run, the medians' rows/s and ratio (one run on a shared 2-core machine varies by
# 25 %), where the baseline's time goes (COPY alone, INSERT alone), the CPU each side used (when
# the servers are the ones deploy/dev/servers.sh started) and the pgferry workers' peak RSS.
#
#   bench/snapshot.sh [ROWS]      (uses the servers in $PGFERRY_PG_URI/$PGFERRY_CH_URL if set,
#                                  else starts its own and removes them afterwards)
#   SNAPSHOT_WORKERS=N bench/snapshot.sh    range workers of the pipe (default: cores)
#   ROWS_PER_RANGE=N bench/snapshot.sh      the pipe's --rows-per-range (default 500000)
#   REPEAT=N bench/snapshot.sh              runs of (a) and (b) (default 3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${1:-2000000}
REPEAT=${REPEAT:-3}
WORKERS=${SNAPSHOT_WORKERS:-$(nproc)}
RUNS=()
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

source "$ROOT/bench/lib.sh"
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
S="bench_$$"
# CPU seconds a process and its reaped children have used (PostgreSQL's backends are children of
# the postmaster, the range workers of pgferryd); empty when the servers are not ours to read
TICKS=$(getconf CLK_TCK)
cpu_of() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk -v t="$TICKS" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / t }' "/proc/$1/stat"; }
PG_PID=""; CH_PID=""
if [ -n "${PGFERRY_SERVERS_DIR:-}" ]; then
    PG_PID=$(head -1 "$PGFERRY_SERVERS_DIR/pg/data/postmaster.pid" 2>/dev/null || true)
    CH_PID=$(cat "$PGFERRY_SERVERS_DIR/ch/pid" 2>/dev/null || true)
fi
cpu_mark() { echo "$(cpu_of "$PG_PID") $(cpu_of "$CH_PID")"; }
cpu_used() { # MARK_BEFORE MARK_AFTER: "PostgreSQL X s, ClickHouse Y s"
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); if (x[1] == "" || x[2] == "") exit;
        printf "PostgreSQL %.2f s, ClickHouse %.2f s", y[1] - x[1], y[2] - x[2] }'
}

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

"$BIN/pgferryd" --state-dir "$WORK/state" --log-level warn >"$WORK/pgferryd.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 100); do [ -S "$WORK/state/control.sock" ] && break; sleep 0.1; done
export PGFERRY_STATE_DIR="$WORK/state"
COLS="id, n, short, amount, created, flag::int, long, 0, 0"
export PGOPTIONS="-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3"
TIMEFORMAT='%U %S'
peak=0
A=() B=()
for run in $(seq 1 "$REPEAT"); do
    echo "== run $run of $REPEAT: (a) pgferry"
    DB="bench_$$_$run"
    mark_a0=$(cpu_mark)
    w0=$(cpu_of "$DAEMON")
    "$BIN/pgferryctl" create "bench$run" --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" \
        --tables "$S.t" --dest-database "$DB" --mode snapshot-only \
        --snapshot-workers "$WORKERS" ${ROWS_PER_RANGE:+--rows-per-range "$ROWS_PER_RANGE"} >/dev/null
    while :; do
        j=$("$BIN/pgferryctl" status "bench$run" --json)
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
    a_cpu=$(cpu_used "$mark_a0" "$(cpu_mark)")
    a_workers=$(awk -v a="$(cpu_of "$DAEMON")" -v b="$w0" 'BEGIN { printf "%.2f", a - b }')
    [ "$(ch "SELECT count() FROM \`$DB\`.t")" = "$ROWS" ] || { echo "pgferry row count wrong"; exit 1; }

    echo "== run $run of $REPEAT: (b) psql COPY | curl INSERT FORMAT TSV"
    ch "CREATE TABLE \`$DB\`.base AS \`$DB\`.t" >/dev/null
    INS="INSERT INTO \`$DB\`.base (id, n, short, amount, created, flag, long, _pgferry_version, _pgferry_is_deleted) FORMAT TSV"
    mark_b0=$(cpu_mark)
    t0=$(now)
    { time (psql -X -q "$PGFERRY_PG_URI" -c "COPY (SELECT $COLS FROM $S.t) TO STDOUT" |
        curl -sS --fail-with-body "${PGFERRY_CH_URL%/}/?query=$(jq -rn --arg q "$INS" '$q|@uri')" --data-binary @- >/dev/null); } 2>"$WORK/b.time"
    t1=$(now)
    b_cpu=$(cpu_used "$mark_b0" "$(cpu_mark)")
    b_clients=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/b.time")
    b_s=$(calc "$t1 - $t0")
    [ "$(ch "SELECT count() FROM \`$DB\`.base")" = "$ROWS" ] || { echo "baseline row count wrong"; exit 1; }
    A+=("$a_s") B+=("$b_s")
    RUNS+=("$(printf '%d  (a) %6.3f s  (b) %6.3f s  ratio %.2f' "$run" "$a_s" "$b_s" "$(calc "$b_s / $a_s")")")
    [ -n "$a_cpu" ] && RUNS+=("$(printf '   CPU (a): %s, pgferry workers %s s' "$a_cpu" "$a_workers")") &&
        RUNS+=("$(printf '   CPU (b): %s, psql + curl %s s' "$b_cpu" "$b_clients")")
done

echo "== where the baseline's time goes"
t0=$(now); psql -X -q "$PGFERRY_PG_URI" -c "COPY (SELECT $COLS FROM $S.t) TO STDOUT" >"$WORK/dump.tsv"; t1=$(now)
copy_s=$(calc "$t1 - $t0")
ch "TRUNCATE TABLE \`$DB\`.base" >/dev/null
t0=$(now)
curl -sS --fail-with-body "${PGFERRY_CH_URL%/}/?query=$(jq -rn --arg q "$INS" '$q|@uri')" --data-binary @"$WORK/dump.tsv" >/dev/null
t1=$(now)
ins_s=$(calc "$t1 - $t0")

for run in $(seq 1 "$REPEAT"); do ch "DROP DATABASE \`bench_$$_$run\`" >/dev/null; done
psql_q "DROP SCHEMA $S CASCADE"
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
a_s=$(median "${A[@]}")
b_s=$(median "${B[@]}")
printf '\nrows %s (%s in PostgreSQL), %s cores, %s snapshot worker(s), %s run(s)\n' "$ROWS" "$size" "$(nproc)" "$WORKERS" "$REPEAT"
printf '%s\n' "${RUNS[@]}"
printf 'median:\n'
printf '(a) pgferry snapshot       %8.3f s  %10.0f rows/s  worker peak RSS %d MB\n' "$a_s" "$(calc "$ROWS / $a_s")" $((peak / 1024))
printf '(b) psql COPY | curl TSV   %8.3f s  %10.0f rows/s\n' "$b_s" "$(calc "$ROWS / $b_s")"
printf '    COPY to a file alone   %8.3f s\n' "$copy_s"
printf '    TSV INSERT alone       %8.3f s\n' "$ins_s"
printf 'ratio pgferry/baseline (medians): %.2f (target >= 1.5)\n' "$(calc "$b_s / $a_s")"
