# End to end through the three programs as an operator uses them: pgferryd from a config
# file with JSON logs, a sample table with rows, create -> Provisioning -> Setup -> Snapshot ->
# Running, a cdc-only and a snapshot-only pipe, status and list in both formats, drop. Checks
# that every log line is JSON and names role and pid.
source "$(dirname "$0")/../lib/common.sh"

S="e2e_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric(12,2),
                          created_at timestamptz DEFAULT now());
  INSERT INTO $S.orders (customer, amount) SELECT 'c' || g, g * 1.5 FROM generate_series(1, 1000) g;"

cat >"$TEST_DIR/pgferryd.conf" <<CONF
# pgferryd test configuration
state_dir = $STATE_DIR
log_format = json
log_level = info
backoff_initial_ms = 500
CONF
"$PGFERRYD" --config "$TEST_DIR/pgferryd.conf" >"$TEST_DIR/pgferryd.log" 2>&1 &
DAEMON_PID=$!
wait_for 10 "control socket" "$CTL" --timeout 1000 list

out=$("$CTL" create orders --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" \
      --tables "$S.orders" --dest-database "${CH_DB_PREFIX}orders" --snapshot-workers 2)
assert_contains "$out" "pipe orders created; it is Provisioning" "create output"
wait_for 30 "pipe orders loads and reaches Running" state_is orders Running

j=$(pipe_json orders)
assert_eq "$(jq -r .destination_database <<<"$j")" "${CH_DB_PREFIX}orders" "destination database"
assert_eq "$(jq -r .mode <<<"$j")" "snapshot+cdc" "default mode"
assert_eq "$(jq -r .publication <<<"$j")" "pgferry_orders" "owned publication name"
out=$("$CTL" status orders)
assert_contains "$out" "state        Running since" "text status"
assert_contains "$out" "tables       $S.orders -> ${CH_DB_PREFIX}orders.orders (4 columns, key id)" "text status tables"
assert_contains "$out" "Provisioning  Setup         source and destination validated" "text history"
out=$("$CTL" list)
assert_contains "$out" "orders" "list shows the pipe"
assert_eq "$("$CTL" list --json | jq -r '.[0].state')" Running "list --json"

# a cdc-only pipe goes from Setup to Running without a load: only changes from then on arrive;
# a snapshot-only pipe loads its rows and completes; a bad mode is refused by pgferryctl
create_pipe cdconly "$S.orders" --mode cdc-only >/dev/null
wait_for 30 "cdc-only pipe reaches Running" state_is cdconly Running
assert_eq "$(pipe_json cdconly | jq -r '[.history[].to] | join(",")')" "Provisioning,Setup,Running" "no Snapshot"
psql_q "INSERT INTO $S.orders (customer, amount) VALUES ('after', 1)"
wait_for 20 "the new row arrives" bash -c "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM \`${CH_DB_PREFIX}cdconly\`.orders_live')\" = 1 ]"
assert_eq "$(ch_q "SELECT customer FROM \`${CH_DB_PREFIX}cdconly\`.orders_live")" after "only the change, no load"
"$CTL" drop cdconly >/dev/null
create_pipe snaponly "$S.orders" --mode snapshot-only >/dev/null
wait_for 30 "snapshot-only pipe completes" state_is snaponly Completed
assert_eq "$(pipe_json snaponly | jq -r .mode)" "snapshot-only" "mode recorded"
assert_eq "$(ch_q "SELECT count(), sum(amount) FROM \`${CH_DB_PREFIX}snaponly\`.orders_live FORMAT TSV")" \
    "$(psql_q "SELECT count(*), sum(amount) FROM $S.orders" | tr '|' '\t')" "rows loaded"
set +e; out=$("$CTL" create x --source a --dest b --tables t --mode sometimes 2>&1); rc=$?; set -e
assert_eq "$rc" 2 "bad mode exit code"
assert_contains "$out" "--mode is snapshot+cdc, snapshot-only or cdc-only" "bad mode message"

out=$("$CTL" drop orders)
assert_contains "$out" "replication slot pgferry_orders dropped" "drop removes the slot"
"$CTL" drop snaponly >/dev/null
assert_eq "$("$CTL" list)" "no pipes" "all dropped"

kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; DAEMON_PID=""
# every log line (daemon and workers share the destination) is a JSON object with pid and role
n=0
while IFS= read -r line; do
    jq -e 'has("pid") and has("role") and has("msg") and has("level")' <<<"$line" >/dev/null \
        || fail "log line is not the expected JSON: $line"
    n=$((n + 1))
done <"$TEST_DIR/pgferryd.log"
[ $n -gt 5 ] || fail "too few log lines ($n)"
grep -q '"role":"provision","pipe":"orders"' "$TEST_DIR/pgferryd.log" || fail "worker lines missing from the log"
log "ok ($n JSON log lines)"
