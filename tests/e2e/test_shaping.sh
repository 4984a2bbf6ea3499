# Pipes shaped the way users ask (issue 12 item 4): --exclude-columns, --target, --order-by,
# --partition-by on create and add-tables; the shape holds in snapshot and CDC, after resync and
# for tables added later; refusals name the reason; `set` changes batch limits and snapshot
# workers of an existing pipe without losing its position.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="shp_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.orders (id int, tenant_id int NOT NULL, amount numeric(10,2), secret text,
    PRIMARY KEY (id, tenant_id));
  INSERT INTO $S.orders SELECT g, g % 5, g * 1.5, 's' || g FROM generate_series(1, 2000) g;
  CREATE TABLE $S.events (id bigint PRIMARY KEY, kind text NOT NULL, note text);
  ALTER TABLE $S.events REPLICA IDENTITY FULL;
  INSERT INTO $S.events SELECT g, 'k' || (g % 3), 'n' || g FROM generate_series(1, 500) g;
  CREATE TABLE $S.more (id int PRIMARY KEY, v text, junk text);
  INSERT INTO $S.more SELECT g, 'v' || g, 'j' FROM generate_series(1, 100) g;
  CREATE TABLE $S.bad (id int PRIMARY KEY, v text NOT NULL);"
start_daemon

log "refusals before anything is created"
set +e
out=$(create_pipe r1 "$S.orders" --target "$S.other=x" 2>&1); rc=$?
assert_eq "$rc" 2 "an option naming a table not in --tables is a usage error ($out)"
assert_contains "$out" "not in the table list" "its reason"
out=$(create_pipe r2 "$S.orders" --exclude-columns "orders" 2>&1); rc=$?
assert_eq "$rc" 2 "--exclude-columns without a column ($out)"
out=$(create_pipe r3 "$S.orders" --partition-by "$S.orders=x; DROP TABLE y" 2>&1); rc=$?
assert_eq "$rc" 2 "--partition-by with ';' ($out)"
set -e

log "create with every shaping option"
create_pipe shp "$S.orders,$S.events" --exclude-columns "$S.orders.secret" \
    --target "$S.orders=orders_v2" --order-by "$S.orders=tenant_id" \
    --partition-by "$S.orders=tenant_id % 4" --order-by "$S.events=kind,id" >/dev/null
wait_for 90 "pipe shp Running" state_is shp Running
DBN="${CH_DB_PREFIX}shp"
DB="\`$DBN\`"
keys() { ch_q "SELECT sorting_key, '|', partition_key FROM system.tables WHERE database = '$DBN' AND name = '$1'" | tr -d '\t'; }
assert_eq "$(keys orders_v2)" "tenant_id, id|tenant_id % 4" "orders: ordering and partition key"
assert_eq "$(keys events)" "kind, id|" "events: ordering key led by a FULL-identity column"
assert_eq "$(ch_q "SELECT count() FROM system.columns WHERE database = '$DBN' AND table = 'orders_v2' AND name = 'secret'")" 0 \
    "the excluded column is not in the destination"
st=$("$CTL" status shp)
assert_contains "$st" "-> $DBN.orders_v2" "status shows the target"
assert_contains "$st" "key tenant_id, id), partitioned by (tenant_id % 4)" "status shows the key and partitioning"
assert_contains "$st" "left out: secret (excluded)" "status shows the excluded column"
assert_eq "$(pipe_json shp | jq -r '.tables[] | select(.table == "orders") | .skipped_columns[0].reason')" excluded "JSON"

psql_q "UPDATE $S.orders SET amount = amount + 1, secret = 'changed' WHERE id % 7 = 0;
  DELETE FROM $S.orders WHERE id % 11 = 0; INSERT INTO $S.orders VALUES (5000, 3, 1, 'x');
  UPDATE $S.orders SET tenant_id = 4 WHERE id = 1;
  UPDATE $S.events SET kind = 'moved' WHERE id <= 10; DELETE FROM $S.events WHERE id BETWEEN 11 AND 20;
  UPDATE $S.events SET note = 'u' WHERE id > 400"
wait_match 60 "orders (CDC)" "SELECT id, tenant_id, amount FROM $S.orders ORDER BY id" \
    "SELECT id, tenant_id, amount FROM $DB.orders_v2_live ORDER BY id"
wait_match 60 "events (CDC)" "SELECT id, kind, note FROM $S.events ORDER BY id" \
    "SELECT id, kind, note FROM $DB.events_live ORDER BY id"
no_duplicates "$DB.orders_v2" "id, tenant_id"
out=$("$CTL" --timeout 120000 verify shp) || fail "verify shp: $out"
assert_contains "$out" "column secret (excluded)" "verify names the excluded column"

log "resync keeps the shape"
"$CTL" resync shp >/dev/null
wait_for 120 "pipe shp Running after resync" bash -c \
    "'$CTL' status shp --json | jq -e '.state == \"Running\"' >/dev/null &&
     [ \"\$('$CTL' status shp --json --history 100 | jq -r '.history[-1].to')\" = Running ] &&
     '$CTL' status shp --json --history 100 | jq -e '[.history[].to] | index(\"Resync\") != null' >/dev/null"
assert_eq "$(keys orders_v2)" "tenant_id, id|tenant_id % 4" "orders after resync"
assert_eq "$(keys events)" "kind, id|" "events after resync"
wait_match 60 "orders after resync" "SELECT id, tenant_id, amount FROM $S.orders ORDER BY id" \
    "SELECT id, tenant_id, amount FROM $DB.orders_v2_live ORDER BY id"

log "add-tables with shaping options"
"$CTL" add-tables shp "$S.more" --target "$S.more=more_x" --exclude-columns "$S.more.junk" >/dev/null
wait_for 90 "pipe shp Running with three tables" bash -c \
    "'$CTL' status shp --json | jq -e '.state == \"Running\" and (.tables | length) == 3' >/dev/null"
psql_q "UPDATE $S.more SET v = 'u', junk = 'jj' WHERE id < 5"
wait_match 60 "more -> more_x" "SELECT id, v FROM $S.more ORDER BY id" \
    "SELECT id, v FROM $DB.more_x_live ORDER BY id"
assert_eq "$(ch_q "SELECT count() FROM system.columns WHERE database = '$DBN' AND table = 'more_x' AND name = 'junk'")" 0 \
    "the excluded column of the added table"

log "an ordering column the replica identity does not cover: Setup refuses with the reason"
create_pipe bad "$S.bad" --order-by "$S.bad=v" >/dev/null
wait_for 60 "pipe bad Failed" state_is bad Failed
assert_contains "$(pipe_json bad | jq -r .last_error)" "not covered by the table's replica identity" "reason"
"$CTL" drop bad >/dev/null

log "set: batch limits and snapshot workers of a running pipe"
wait_for 30 "a confirmed position" bash -c "[ -n \"\$('$CTL' status shp --json | jq -r '.cdc.confirmed_lsn')\" ]"
before=$(pipe_json shp | jq -r .cdc.confirmed_lsn)
out=$("$CTL" set shp batch_max_rows=500 batch_max_wait_ms=100 snapshot_workers=3)
assert_contains "$out" "batch_max_rows=500" "set reply"
wait_for 30 "pipe shp Running with the new settings" bash -c \
    "'$CTL' status shp --json | jq -e '.state == \"Running\" and .batch_max_rows == 500 and .batch_max_wait_ms == 100 and .snapshot_workers == 3' >/dev/null"
assert_contains "$(pipe_json shp | jq -r '.history[].reason' | paste -sd' ')" "settings changed" "history"
assert_contains "$("$CTL" status shp)" "batch_max_rows 500" "text status"
psql_q "INSERT INTO $S.orders SELECT g, g % 5, 1, 'n' FROM generate_series(10001, 13000) g"
wait_match 60 "orders after set" "SELECT id, tenant_id, amount FROM $S.orders ORDER BY id" \
    "SELECT id, tenant_id, amount FROM $DB.orders_v2_live ORDER BY id"
after=$(pipe_json shp | jq -r .cdc.confirmed_lsn)
[ "$(psql_q "SELECT '$after'::pg_lsn >= '$before'::pg_lsn")" = t ] || fail "position went back: $before -> $after"
set +e
out=$("$CTL" set shp batch_max_rows=0 2>&1); rc=$?
assert_eq "$rc" 2 "a bad value is a usage error ($out)"
out=$("$CTL" set shp nosuch=1 2>&1); rc=$?
assert_eq "$rc" 2 "an unknown setting ($out)"
set -e
"$CTL" pause shp >/dev/null
wait_for 30 "Paused" state_is shp Paused
"$CTL" set shp batch_max_bytes=1048576 >/dev/null
wait_for 10 "Paused with the new setting" bash -c \
    "'$CTL' status shp --json | jq -e '.state == \"Paused\" and .batch_max_bytes == 1048576' >/dev/null"
"$CTL" resume shp >/dev/null
wait_for 30 "Running" state_is shp Running
log "ok"
