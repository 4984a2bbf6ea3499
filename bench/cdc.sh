#!/usr/bin/env bash
# CDC benchmarks (not tests), each printing its ratio against a baseline from the same run.
#
# 1. Throughput: CHANGES changes (default 1,000,000: 40% inserts, 40% updates, 20% deletes, in
#    transactions of 10,000) are written while pgferryd is stopped; a second slot created at the
#    same point is drained by `pg_recvlogical` (pgoutput, the pipe's publication) to /dev/null up
#    to the end position; then pgferryd starts and applies the same changes into ClickHouse.
#    pg_recvlogical is timed until it exits at the end position, pgferry from its start until its
#    slot confirmed the end position (everything in ClickHouse); ratio = pgferry rows/s over
#    pg_recvlogical rows/s (target >= 0.8). The CDC worker's peak RSS is printed too.
# 2. Latency: while pgbench writes at RATE transactions/s (default 500) into a table of the pipe
#    (`load`), PROBES probe rows (default 200, one every 50 ms) are committed and polled in
#    ClickHouse until visible, alternately into a quiet table (`probe`) and into the busy `load`
#    table itself; prints commit-to-visible p50/p99 of both and the ratio of the busy table's
#    p99 to the 300 ms target. The baseline is the same probe inserted straight into ClickHouse
#    (what the polling itself costs). The probes commit with synchronous_commit = on: under the
#    development servers' synchronous_commit = off the walsender sends a commit only once the
#    WAL writer flushed it (up to wal_writer_delay, 200 ms, later), a setting of the source, not
#    of pgferry. Also printed: inserts per second into the busy table (ClickHouse block numbers)
#    and the active parts afterwards.
#
#   bench/cdc.sh [CHANGES]   (uses $PGFERRY_PG_URI/$PGFERRY_CH_URL if set, else its own servers)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHANGES=${1:-1000000}
RATE=${RATE:-500}
PROBES=${PROBES:-200}
BIN="$ROOT/build/bin"
WORK=$(mktemp -d /tmp/pgferry-bench-cdc-XXXXXX)
chmod 755 "$WORK"
DAEMON=""
S="benchcdc_$$"
DB="benchcdc_$$"
LOADPID=""
cleanup() {
    # (each line ends true: under set -e a failed kill would end the cleanup early)
    if [ -n "$LOADPID" ]; then kill "$LOADPID" 2>/dev/null || true; fi
    if [ -n "$DAEMON" ]; then kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true; fi
    if [ -n "${PGFERRY_PG_URI:-}" ]; then
        psql -X -q "$PGFERRY_PG_URI" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('bench_recv', 'pgferry_benchcdc') AND NOT active" >/dev/null 2>&1 || true
        psql -X -q "$PGFERRY_PG_URI" -c "DROP PUBLICATION IF EXISTS pgferry_benchcdc" -c "DROP SCHEMA IF EXISTS $S CASCADE" >/dev/null 2>&1 || true
        curl -sS "${PGFERRY_CH_URL%/}/" --data-binary "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
    fi
    if [ -n "${OWN_SERVERS:-}" ]; then bash "$ROOT/deploy/dev/servers.sh" destroy "$WORK/servers" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

source "$ROOT/bench/lib.sh"
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
export PGFERRY_STATE_DIR="$WORK/state"
start_daemon() {
    "$BIN/pgferryd" --state-dir "$WORK/state" --log-level warn >>"$WORK/pgferryd.log" 2>&1 &
    DAEMON=$!
    for _ in $(seq 1 100); do [ -S "$WORK/state/control.sock" ] && break; sleep 0.05; done
}
state() { "$BIN/pgferryctl" status benchcdc --json | jq -r .state; }
confirmed_ge() { [ "$(psql_q "SELECT confirmed_flush_lsn >= '$2' FROM pg_replication_slots WHERE slot_name = '$1'")" = t ]; }

echo "== setup"
psql_q "SET client_min_messages = warning; CREATE SCHEMA $S;
  CREATE TABLE $S.t (id bigint PRIMARY KEY, n int NOT NULL, label text, amount numeric(12,2),
                     changed timestamptz);
  CREATE TABLE $S.probe (id int PRIMARY KEY, at timestamptz);
  CREATE TABLE $S.load (id int PRIMARY KEY, v int);
  INSERT INTO $S.load SELECT g, 0 FROM generate_series(1, 10000) g;"
start_daemon
"$BIN/pgferryctl" create benchcdc --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" \
    --tables "$S.t,$S.probe,$S.load" --dest-database "$DB" >/dev/null
while [ "$(state)" != Running ]; do sleep 0.2; done

echo "== 1. throughput: $CHANGES changes"
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=""
psql_q "SELECT 1 FROM pg_create_logical_replication_slot('bench_recv', 'pgoutput')" >/dev/null
ins=$((CHANGES * 4 / 10)); upd=$((CHANGES * 4 / 10)); del=$((CHANGES - ins - upd))
step=10000
for ((a = 1; a <= ins; a += step)); do
    psql_q "INSERT INTO $S.t SELECT g, g % 1000, 'label ' || g, g / 100.0, now() FROM generate_series($a, $((a + step - 1 < ins ? a + step - 1 : ins))) g"
done
for ((a = 1; a <= upd; a += step)); do
    psql_q "UPDATE $S.t SET n = n + 1, changed = now() WHERE id BETWEEN $a AND $((a + step - 1))"
done
for ((a = 1; a <= del; a += step)); do
    psql_q "DELETE FROM $S.t WHERE id BETWEEN $a AND $((a + step - 1))"
done
END=$(committed_lsn)
echo "changes written; end position $END"

t0=$(now)
# pg_recvlogical exits once the stream reaches the end position
pg_recvlogical -d "$PGFERRY_PG_URI" --slot bench_recv --start -o proto_version=1 \
    -o publication_names=pgferry_benchcdc -f /dev/null -E "$END" --no-loop >/dev/null 2>&1 || true
t_recv=$(calc "$(now) - $t0")
t0=$(now)
start_daemon
while ! confirmed_ge pgferry_benchcdc "$END"; do sleep 0.05; done
t_pgf=$(calc "$(now) - $t0")
pid=$("$BIN/pgferryctl" status benchcdc --json | jq -r '.workers[] | select(.role == "cdc") | .pid')
hwm=$(awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$pid/status")
got=$(ch "SELECT count() FROM $DB.t_live")
want=$(psql_q "SELECT count(*) FROM $S.t")
[ "$got" = "$want" ] || echo "WARNING: ClickHouse has $got live rows, PostgreSQL $want"
echo "pg_recvlogical: $(calc "$t_recv") s, $(calc "$CHANGES / $t_recv") changes/s"
echo "pgferry:        $(calc "$t_pgf") s, $(calc "$CHANGES / $t_pgf") changes/s (incl. daemon start)"
echo "throughput ratio pgferry / pg_recvlogical: $(calc "$t_recv / $t_pgf") (target >= 0.8)"
echo "CDC worker peak RSS: ${hwm} MB"
psql_q "SELECT pg_drop_replication_slot('bench_recv')" >/dev/null

echo "== 2. latency under pgbench at $RATE tps"
cat >"$WORK/load.sql" <<SQL
\set k random(1, 10000)
UPDATE $S.load SET v = v + 1 WHERE id = :k;
SQL
# the load runs until the probes are done (the rate it reached is read off the table)
pgbench -n -c 4 -j 2 -R "$RATE" -T 3600 -f "$WORK/load.sql" "$PGFERRY_PG_URI" \
    >"$WORK/pgbench.log" 2>&1 &
LOADPID=$!
sleep 3
probe() { # id insert-command visible-query -> latency ms
    local t0 t1
    t0=$(date +%s%N)
    eval "$2"
    while [ "$(ch "$3")" != 1 ]; do sleep 0.005; done
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
blocks() { ch "SELECT max(max_block_number) FROM system.parts WHERE database = '$DB' AND table = 'load'"; }
: >"$WORK/lat_pgf"; : >"$WORK/lat_busy"; : >"$WORK/lat_base"
ch "CREATE TABLE $DB.probe_direct (id Int32, at DateTime) ENGINE = MergeTree ORDER BY id" >/dev/null
blocks0=$(blocks); tb0=$(now); v0=$(psql_q "SELECT sum(v) FROM $S.load")
for i in $(seq 1 "$PROBES"); do
    if [ $((i % 2)) = 1 ]; then
        probe "$i" "psql_q \"SET synchronous_commit = on; INSERT INTO $S.probe VALUES ($i, now())\"" \
            "SELECT count() FROM $DB.probe WHERE id = $i" >>"$WORK/lat_pgf"
    else
        probe "$i" "psql_q \"SET synchronous_commit = on; INSERT INTO $S.load VALUES ($((100000 + i)), 0)\"" \
            "SELECT count() FROM $DB.load WHERE id = $((100000 + i))" >>"$WORK/lat_busy"
    fi
    probe "$i" "ch \"INSERT INTO $DB.probe_direct VALUES ($i, now())\" >/dev/null" \
        "SELECT count() FROM $DB.probe_direct WHERE id = $i" >>"$WORK/lat_base"
    sleep 0.05
done
blocks1=$(blocks); tb1=$(now); v1=$(psql_q "SELECT sum(v) FROM $S.load")
kill -TERM "$LOADPID" 2>/dev/null || true
wait "$LOADPID" || true
LOADPID=""
tps=$(calc "($v1 - $v0) / ($tb1 - $tb0)")
pct() { sort -n "$1" | awk -v p="$2" '{a[NR] = $1} END {i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print a[i]}'; }
p50=$(pct "$WORK/lat_pgf" 50); p99=$(pct "$WORK/lat_pgf" 99)
q50=$(pct "$WORK/lat_busy" 50); q99=$(pct "$WORK/lat_busy" 99)
b50=$(pct "$WORK/lat_base" 50); b99=$(pct "$WORK/lat_base" 99)
sleep 5 # merges of the last parts
parts=$(ch "SELECT count() FROM system.parts WHERE database = '$DB' AND active")
echo "load: $tps tps; $PROBES probes"
echo "pgferry commit-to-visible, quiet table: p50 ${p50} ms, p99 ${p99} ms"
echo "pgferry commit-to-visible, the busy table: p50 ${q50} ms, p99 ${q99} ms"
echo "baseline (insert straight into ClickHouse, same polling): p50 ${b50} ms, p99 ${b99} ms"
echo "inserts into the busy table: $(calc "($blocks1 - $blocks0) / ($tb1 - $tb0)") per second"
echo "latency ratio busy-table p99 / 300 ms target: $(calc "$q99 / 300") (target < 1)"
echo "active parts in the pipe's database afterwards: $parts"
