#!/usr/bin/env bash
# Snapshot benchmark (not a test). Builds a table of ROWS rows (default 2,000,000, ~300 MB:
# bigint key, int, short text, numeric(12,2), timestamptz, bool, 64-char text), then in the same
# run times
#   (a) pgferry: a snapshot-only pipe, from entering Snapshot to Completed (pipe history);
#   (b) the plain pipeline: psql COPY (SELECT ...) TO STDOUT | curl INSERT ... FORMAT TSV into
#       an identical ClickHouse table;
# REPEAT times (default 5, (a) and (b) alternating, each into a fresh destination table), and
# prints every run, the medians (with the spread, min-max) of wall time, rows/s and total CPU per
# million rows of both sides, the wall-time ratio and the CPU ratio, where the baseline's time
# goes (COPY alone, INSERT alone) and the pgferry workers' peak RSS. One run on a shared 2-core
# machine varies by 25 %: read the medians. Total CPU is PostgreSQL's backends + the ClickHouse
# server (including the merges a load's parts cause: each side waits until ClickHouse has no
# merge running before its CPU is read) + pgferry's workers or psql and curl; it is measured
# when the servers are the ones deploy/dev/servers.sh started (PGFERRY_SERVERS_DIR).
#
#   bench/snapshot.sh [ROWS]      (uses the servers in $PGFERRY_PG_URI/$PGFERRY_CH_URL if set,
#                                  else starts its own and removes them afterwards)
#   SNAPSHOT_WORKERS=N bench/snapshot.sh    range workers of the pipe (default: cores)
#   ROWS_PER_RANGE=N bench/snapshot.sh      the pipe's --rows-per-range (default 500000)
#   REPEAT=N bench/snapshot.sh              runs of (a) and (b) (default 5)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${1:-2000000}
REPEAT=${REPEAT:-5}
WORKERS=${SNAPSHOT_WORKERS:-$(nproc)}
RUNS=()
BIN="$ROOT/build/bin"
WORK=$(mktemp -d /tmp/pgferry-bench-XXXXXX)
chmod 755 "$WORK"
DAEMON=""
cleanup() {
    if [ -n "$DAEMON" ]; then kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true; fi
    if [ -n "${OWN_SERVERS:-}" ]; then bash "$ROOT/deploy/dev/servers.sh" destroy "$WORK/servers" >/dev/null 2>&1 || true; fi
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
cpu_used() { # MARK_BEFORE MARK_AFTER: "PG_SECONDS CH_SECONDS", nothing when not measured
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); if (x[1] == "" || x[2] == "") exit;
        printf "%.2f %.2f", y[1] - x[1], y[2] - x[2] }'
}
# waits until ClickHouse runs no merge of database $1 (a load's merges are part of its cost)
settle() {
    sleep 0.5
    for _ in $(seq 1 300); do
        [ "$(ch "SELECT count() FROM system.merges WHERE database = '$1'")" = 0 ] && return
        sleep 0.1
    done
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
A=() B=() R=() CA=() CB=() CR=()
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
    settle "$DB"
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
    settle "$DB"
    b_cpu=$(cpu_used "$mark_b0" "$(cpu_mark)")
    b_clients=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/b.time")
    b_s=$(calc "$t1 - $t0")
    [ "$(ch "SELECT count() FROM \`$DB\`.base")" = "$ROWS" ] || { echo "baseline row count wrong"; exit 1; }
    A+=("$a_s") B+=("$b_s") R+=("$(calc "$b_s / $a_s")")
    RUNS+=("$(printf '%d  (a) %6.3f s  (b) %6.3f s  ratio %.2f' "$run" "$a_s" "$b_s" "$(calc "$b_s / $a_s")")")
    if [ -n "$a_cpu" ] && [ -n "$b_cpu" ]; then
        read -r a_pg a_ch <<<"$a_cpu"
        read -r b_pg b_ch <<<"$b_cpu"
        a_tot=$(calc "$a_pg + $a_ch + $a_workers") b_tot=$(calc "$b_pg + $b_ch + $b_clients")
        CA+=("$(calc "$a_tot * 1000000 / $ROWS")") CB+=("$(calc "$b_tot * 1000000 / $ROWS")")
        CR+=("$(calc "$a_tot / $b_tot")")
        RUNS+=("$(printf '   CPU (a) %5.2f s: PostgreSQL %.2f s, ClickHouse %.2f s, pgferry workers %.2f s' \
            "$a_tot" "$a_pg" "$a_ch" "$a_workers")")
        RUNS+=("$(printf '   CPU (b) %5.2f s: PostgreSQL %.2f s, ClickHouse %.2f s, psql + curl %.2f s' \
            "$b_tot" "$b_pg" "$b_ch" "$b_clients")")
    fi
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
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
a_s=$(median "${A[@]}")
b_s=$(median "${B[@]}")
printf '\nrows %s (%s in PostgreSQL), %s cores, %s snapshot worker(s), %s run(s)\n' "$ROWS" "$size" "$(nproc)" "$WORKERS" "$REPEAT"
printf '%s\n' "${RUNS[@]}"
printf 'medians (min-max of the runs):\n'
printf '(a) pgferry snapshot       %8.3f s (%s)  %10.0f rows/s  worker peak RSS %d MB\n' "$a_s" "$(spread "${A[@]}")" "$(calc "$ROWS / $a_s")" $((peak / 1024))
printf '(b) psql COPY | curl TSV   %8.3f s (%s)  %10.0f rows/s\n' "$b_s" "$(spread "${B[@]}")" "$(calc "$ROWS / $b_s")"
printf '    COPY to a file alone   %8.3f s\n' "$copy_s"
printf '    TSV INSERT alone       %8.3f s\n' "$ins_s"
if [ "${#CA[@]}" -gt 0 ]; then
    printf 'CPU per million rows: (a) %.2f s (%s), (b) %.2f s (%s)\n' "$(median "${CA[@]}")" "$(spread "${CA[@]}")" \
        "$(median "${CB[@]}")" "$(spread "${CB[@]}")"
    printf 'CPU ratio pgferry/baseline: %.2f (runs %s; target <= 0.7)\n' "$(median "${CR[@]}")" "$(spread "${CR[@]}")"
else
    printf 'CPU: not measured (the servers are not ones deploy/dev/servers.sh started)\n'
fi
printf 'ratio pgferry/baseline (medians): %.2f (runs %s; target >= 1.5)\n' "$(calc "$b_s / $a_s")" "$(spread "${R[@]}")"
