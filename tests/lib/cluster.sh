# A ClickHouse cluster for the cluster tests (bash, sourced after common.sh): ZooKeeper and
# three ClickHouse 18.16 servers from deploy/dev/servers.sh start-cluster. The cluster the
# suite started (PGFERRY_CLUSTER_DIR, see deploy/dev/test.sh) is shared by the cluster tests;
# without one the test starts its own and destroys it at exit.
#   pgferry_replicated: one shard, replicas n1 and n2
#   pgferry_sharded:    shard 01 = n1 + n2, shard 02 = n3
CLUSTER_SERVERS="$PGFERRY_SOURCE_DIR/deploy/dev/servers.sh"
OWN_CLUSTER=""
if [ -z "${PGFERRY_CLUSTER_DIR:-}" ]; then
    OWN_CLUSTER="$TEST_DIR/cluster"
    log "starting a ClickHouse cluster in $OWN_CLUSTER"
    eval "$(bash "$CLUSTER_SERVERS" start-cluster "$OWN_CLUSTER")"
else
    eval "$(bash "$CLUSTER_SERVERS" cluster-env "$PGFERRY_CLUSTER_DIR")"
    # a node or ZooKeeper a test stopped runs again at exit (the cluster is shared)
    EXIT_HOOKS+=("bash '$CLUSTER_SERVERS' start-zk '$PGFERRY_CLUSTER_DIR'")
    for _n in 1 2 3; do EXIT_HOOKS+=("bash '$CLUSTER_SERVERS' start-node '$PGFERRY_CLUSTER_DIR' $_n"); done
fi

node_url() { local v="PGFERRY_CH_NODE$1_URL"; echo "${!v}"; }
# node_q N SQL
node_q() { curl -sS --fail-with-body --max-time 120 "$(node_url "$1")/" --data-binary "$2"; }
node_ctl() { bash "$CLUSTER_SERVERS" "$1" "$PGFERRY_CLUSTER_DIR" "${2:-}" >/dev/null; }
# every test database of this test on every node, dropped at exit
cluster_drop_test_dbs() {
    local n db
    for n in 1 2 3; do
        for db in $(node_q "$n" "SELECT name FROM system.databases WHERE startsWith(name, '$CH_DB_PREFIX')" 2>/dev/null); do
            node_q "$n" "DROP DATABASE IF EXISTS \`$db\`" >/dev/null 2>&1 || true
        done
    done
}
EXIT_HOOKS+=(cluster_drop_test_dbs)
# the cluster's data goes, its logs stay in the test's directory (kept when the test fails)
[ -z "$OWN_CLUSTER" ] ||
    EXIT_HOOKS+=("bash '$CLUSTER_SERVERS' stop '$OWN_CLUSTER'; rm -rf '$OWN_CLUSTER'/n?/data '$OWN_CLUSTER'/zk/data")

# node_match N SECONDS WHAT PGSQL CHSQL: like wait_match, against node N
node_match() {
    local n=$1 secs=$2 what=$3 pg=$4 ch=$5
    local deadline=$(($(date +%s) + secs)) a b
    while [ "$(date +%s)" -le $deadline ]; do
        a=$(psql_tsv "$pg") && b=$(node_q "$n" "$ch FORMAT TSV" 2>/dev/null) && [ "$a" = "$b" ] && return 0
        sleep 0.5
    done
    echo "---- $what on n$n: PostgreSQL (<) vs ClickHouse (>)" >&2
    diff <(psql_tsv "$pg") <(node_q "$n" "$ch FORMAT TSV" 2>&1) | head -20 >&2 || true
    fail "timed out after ${secs}s waiting for $what to match on n$n"
}
