#!/usr/bin/env bash
# Cluster benchmark (not a test): the same snapshot and the same CDC changes into one ClickHouse
# node and into the two-replica cluster of deploy/dev/servers.sh start-cluster (replicated
# layout, --dest listing both replicas), each printing cluster/single ratios from this run.
#
# 1. Snapshot: ROWS rows (default 1,000,000; 2 range workers) loaded by a new pipe, timed from
#    create until the pipe is Running; REPEAT runs (default 3) alternating single and cluster;
#    medians with min-max.
# 2. CDC: CHANGES changes (default 300,000: inserts, then updates of the same rows, in
#    transactions of 10,000) written while the pipe runs, timed from the first write until the
#    pipe's slot confirms the end position (everything in ClickHouse: on the cluster, confirmed
#    by the replica written to; with QUORUM=2 by both); REPEAT runs as above.
#
#   bench/cluster.sh [ROWS] [CHANGES]   (uses $PGFERRY_PG_URI/$PGFERRY_CH_URL if set, else its
#   own servers; the cluster is always its own, in a temporary directory)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${1:-1000000}
CHANGES=${2:-300000}
REPEAT=${REPEAT:-3}
QUORUM=${QUORUM:-0}
BIN="$ROOT/build/bin"
WORK=$(mktemp -d /tmp/pgferry-bench-cluster-XXXXXX)
chmod 755 "$WORK"
DAEMON=""
S="benchcl_$$"
cleanup() {
    if [ -n "$DAEMON" ]; then kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true; fi
    if [ -n "${PGFERRY_PG_URI:-}" ]; then
        for p in $(psql -X -q -At "$PGFERRY_PG_URI" -c "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgferry_bcl%' AND NOT active" 2>/dev/null); do
            psql -X -q "$PGFERRY_PG_URI" -c "SELECT pg_drop_replication_slot('$p')" -c "DROP PUBLICATION IF EXISTS $p" >/dev/null 2>&1 || true
        done
        psql -X -q "$PGFERRY_PG_URI" -c "DROP SCHEMA IF EXISTS $S CASCADE" >/dev/null 2>&1 || true
        for db in $(curl -sS "${PGFERRY_CH_URL%/}/" --data-binary "SELECT name FROM system.databases WHERE startsWith(name, 'benchcl_')" 2>/dev/null); do
            curl -sS "${PGFERRY_CH_URL%/}/" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
        done
    fi
    bash "$ROOT/deploy/dev/servers.sh" destroy "$WORK/cluster" >/dev/null 2>&1 || true
    if [ -n "${OWN_SERVERS:-}" ]; then bash "$ROOT/deploy/dev/servers.sh" destroy "$WORK/servers" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

source "$ROOT/bench/lib.sh"
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
# median and range of the numbers in a file: "median (min-max)"
stats() { sort -g "$1" | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f (%.3f-%.3f)", m, v[1], v[NR] }'; }
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
eval "$(bash "$ROOT/deploy/dev/servers.sh" start-cluster "$WORK/cluster")"
CLUSTER_DEST="http://default:$PGFERRY_CH_PASSWORD@${PGFERRY_CH_NODE1_URL#*@},${PGFERRY_CH_NODE2_URL#*@}"
CLUSTER_DEST="${CLUSTER_DEST/,/,http://}"
export PGFERRY_STATE_DIR="$WORK/state"
"$BIN/pgferryd" --state-dir "$WORK/state" --log-level warn >>"$WORK/pgferryd.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 100); do [ -S "$WORK/state/control.sock" ] && break; sleep 0.05; done
state() { "$BIN/pgferryctl" status "$1" --json | jq -r .state; }
confirmed_ge() { [ "$(psql_q "SELECT confirmed_flush_lsn >= '$2' FROM pg_replication_slots WHERE slot_name = '$1'")" = t ]; }

echo "== setup: $ROWS rows; cluster $PGFERRY_CLUSTER_REPLICATED (n1, n2), quorum $QUORUM"
psql_q "SET client_min_messages = warning; CREATE SCHEMA $S;
  CREATE TABLE $S.snap (id bigint PRIMARY KEY, n int NOT NULL, label text, amount numeric(12,2));
  INSERT INTO $S.snap SELECT g, g % 1000, 'label ' || g, g / 100.0 FROM generate_series(1, $ROWS) g;
  CREATE TABLE $S.cdc (id bigint PRIMARY KEY, n int NOT NULL, label text);
  ANALYZE $S.snap;"
# create NAME TABLE KIND [mode]: a pipe into one node (single) or the cluster
create() {
    local name=$1 table=$2 kind=$3 mode=${4:-snapshot+cdc}
    if [ "$kind" = single ]; then
        "$BIN/pgferryctl" create "$name" --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" \
            --tables "$S.$table" --dest-database "$name" --snapshot-workers 2 --mode "$mode" >/dev/null
    else
        local q=()
        [ "$QUORUM" -gt 1 ] && q=(--insert-quorum "$QUORUM")
        "$BIN/pgferryctl" create "$name" --source "$PGFERRY_PG_URI" --dest "$CLUSTER_DEST" \
            --tables "$S.$table" --dest-database "$name" --snapshot-workers 2 --mode "$mode" \
            --cluster "$PGFERRY_CLUSTER_REPLICATED" "${q[@]}" >/dev/null
    fi
}
drop() { "$BIN/pgferryctl" drop "$1" --drop-destination >/dev/null; while "$BIN/pgferryctl" status "$1" >/dev/null 2>&1; do sleep 0.2; done; }

echo "== 1. snapshot of $ROWS rows, $REPEAT runs each"
: >"$WORK/snap_single"; : >"$WORK/snap_cluster"
for r in $(seq 1 "$REPEAT"); do
    for kind in single cluster; do
        name="bcl_s${kind:0:1}$r"
        t0=$(now)
        create "$name" snap "$kind"
        while [ "$(state "$name")" != Running ]; do sleep 0.1; done
        t=$(calc "$(now) - $t0")
        echo "run $r $kind: $t s, $(calc "$ROWS / $t") rows/s"
        calc "$ROWS / $t" >>"$WORK/snap_$kind"; echo >>"$WORK/snap_$kind"
        drop "$name"
    done
done
echo "single node: $(stats "$WORK/snap_single") rows/s"
echo "cluster:     $(stats "$WORK/snap_cluster") rows/s"
echo "snapshot ratio cluster/single: $(calc "$(median "$WORK/snap_cluster") / $(median "$WORK/snap_single")")"

echo "== 2. CDC: $CHANGES changes, $REPEAT runs each"
: >"$WORK/cdc_single"; : >"$WORK/cdc_cluster"
half=$((CHANGES / 2)); step=10000
for r in $(seq 1 "$REPEAT"); do
    for kind in single cluster; do
        name="bcl_c${kind:0:1}$r"
        psql_q "TRUNCATE $S.cdc"
        create "$name" cdc "$kind" cdc-only
        while [ "$(state "$name")" != Running ]; do sleep 0.1; done
        t0=$(now)
        for ((a = 1; a <= half; a += step)); do
            psql_q "INSERT INTO $S.cdc SELECT g, g % 1000, 'label ' || g FROM generate_series($a, $((a + step - 1 < half ? a + step - 1 : half))) g"
        done
        for ((a = 1; a <= half; a += step)); do
            psql_q "UPDATE $S.cdc SET n = n + 1 WHERE id BETWEEN $a AND $((a + step - 1))"
        done
        END=$(committed_lsn)
        while ! confirmed_ge "pgferry_$name" "$END"; do sleep 0.05; done
        t=$(calc "$(now) - $t0")
        echo "run $r $kind: $t s, $(calc "$CHANGES / $t") changes/s"
        calc "$CHANGES / $t" >>"$WORK/cdc_$kind"; echo >>"$WORK/cdc_$kind"
        drop "$name"
    done
done
echo "single node: $(stats "$WORK/cdc_single") changes/s"
echo "cluster:     $(stats "$WORK/cdc_cluster") changes/s"
echo "CDC ratio cluster/single: $(calc "$(median "$WORK/cdc_cluster") / $(median "$WORK/cdc_single")")"
