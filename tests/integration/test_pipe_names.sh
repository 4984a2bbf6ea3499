# Names two pipes must not share (issue 22, items 3, 10, 11): pipes whose names differ only in
# case or '-'/'_' (one slot, one publication), a --slot that is another pipe's, destination
# tables whose pgferry names (T_live, T_resync, ...) collide within a pipe or with another
# pipe's in the same database, a --partition-by that smuggles in clauses and a --target the
# CLI refuses (sent past pgferryctl). The refused twin's drop leaves the healthy pipe's slot
# and publication, and the healthy pipe keeps streaming.
source "$(dirname "$0")/../lib/common.sh"

S="it_names_$$"
A="n$$-x"          # the healthy pipe
B="n${$}_x"        # its twin: same derived slot and publication name
SLOT="pgferry_n$$_x"
# (each refused pipe has its own name, so every check fails on its own where the code lets
# a pipe through; what such a pipe creates goes at exit)
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE;
  SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
   WHERE slot_name LIKE 'pgferry_%$$%' AND NOT active;
  DO \$\$DECLARE p text; BEGIN FOR p IN SELECT pubname FROM pg_publication
   WHERE pubname LIKE 'pgferry_%$$%' LOOP EXECUTE 'DROP PUBLICATION ' || quote_ident(p);
   END LOOP; END\$\$;"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.orders (id bigint PRIMARY KEY, v text);
  CREATE TABLE $S.other (id bigint PRIMARY KEY);
  CREATE TABLE $S.orders_resync (id bigint PRIMARY KEY);
  CREATE TABLE $S.orders_live (id bigint PRIMARY KEY);
  INSERT INTO $S.orders VALUES (1, 'one');"
start_daemon
EP="ipc://$STATE_DIR/control.sock"

refused() { # what, expected fragment..., then -- and the command
    local what=$1; shift
    local frags=()
    while [ "$1" != -- ]; do frags+=("$1"); shift; done
    shift
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    [ $rc -ne 0 ] || fail "$what was accepted: $out"
    local f
    for f in "${frags[@]}"; do assert_contains "$out" "$f" "$what"; done
}

# twins created close together: the second is refused, naming the first
create_pipe "$A" "$S.orders" >/dev/null
refused "twin pipe $B" "pipe $A" "$SLOT" -- create_pipe "$B" "$S.other"
# a --slot that is another pipe's derived slot
refused "--slot of pipe $A" "slot $SLOT" "pipe $A" -- create_pipe o1$$ "$S.other" --slot "$SLOT"
# a --publication that pipe A owns
refused "--publication of pipe $A" "publication $SLOT" "pipe $A" -- \
    create_pipe o2$$ "$S.other" --publication "$SLOT"

# destination names of one pipe that collide (T and T_resync, T and T_live)
refused "orders_resync next to orders" "$S.orders_resync" "$S.orders" "orders_resync" "--target" -- \
    create_pipe o3$$ "$S.orders_resync,$S.orders"
refused "orders next to orders_live" "$S.orders" "$S.orders_live" "--target" -- \
    create_pipe o4$$ "$S.orders,$S.orders_live"
refused "two tables with one --target" "$S.other" "--target" -- \
    create_pipe o5$$ "$S.orders,$S.other" --target "$S.other=orders"
# ... or with another pipe's in the same database on the same server
refused "orders_live in pipe $A's database" "pipe $A" "$S.orders" "orders_live" "--dest-database" -- \
    "$CTL" create o6$$ --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" \
    --tables "$S.orders_live" --dest-database "$CH_DB_PREFIX$A"

# a --partition-by that closes the parenthesis and adds clauses: pgferryctl refuses it ...
HOSTILE="id) ORDER BY (tuple()) SETTINGS index_granularity = 1 --"
refused "hostile --partition-by (pgferryctl)" "--partition-by" -- \
    create_pipe o7$$ "$S.orders" --partition-by "$S.orders=$HOSTILE"
# ... and pgferryd too, sent past pgferryctl
out=$(RAWSEND_PIPE="h1$$" RAWSEND_TABLE="$S.orders" RAWSEND_PARTITION_BY="$HOSTILE" \
    RAWSEND_DB="${CH_DB_PREFIX}hostile" "$TOOLS/pgferry-test-rawsend" "$EP" create)
assert_contains "$out" "code=6 " "hostile --partition-by (pgferryd)"
assert_contains "$out" "--partition-by for $S.orders" "hostile --partition-by (pgferryd)"
out=$(RAWSEND_PIPE="h2$$" RAWSEND_TABLE="$S.orders" RAWSEND_PARTITION_BY="id SETTINGS index_granularity = 1" \
    RAWSEND_DB="${CH_DB_PREFIX}hostile" "$TOOLS/pgferry-test-rawsend" "$EP" create)
assert_contains "$out" "code=6 " "--partition-by with a top-level SETTINGS (pgferryd)"
i=3
for t in . ..; do
    i=$((i + 1))
    out=$(RAWSEND_PIPE="h$i$$" RAWSEND_TABLE="$S.orders" RAWSEND_TARGET="$t" \
        RAWSEND_DB="${CH_DB_PREFIX}hostile" "$TOOLS/pgferry-test-rawsend" "$EP" create)
    assert_contains "$out" "code=6 message=--target for $S.orders: destination table name $t is reserved" "--target $t (pgferryd)"
done
assert_eq "$("$CTL" list --json | jq -r '[.[].name] | sort | join(",")')" "$A" "only pipe $A exists"

# the twin's drop finds nothing; pipe A keeps its slot and publication and streams
wait_for 60 "pipe $A Running" state_is "$A" Running
"$CTL" --timeout 30000 drop "$B" >/dev/null 2>&1 || true
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'")" 1 "pipe $A's slot"
assert_eq "$(psql_q "SELECT string_agg(schemaname || '.' || tablename, ',') FROM pg_publication_tables WHERE pubname = '$SLOT'")" \
    "$S.orders" "pipe $A's publication holds its table only"
psql_q "INSERT INTO $S.orders VALUES (2, 'two')"
wait_for 30 "row 2 in pipe $A's destination" bash -c \
    "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary \"SELECT count() FROM \\\`$CH_DB_PREFIX$A\\\`.orders FINAL WHERE id = 2 AND _pgferry_is_deleted = 0\")\" = 1 ]"
assert_eq "$(pipe_state "$A")" Running "pipe $A still Running"

# add-tables checks the same: a table whose name is one pgferry uses for orders, a hostile
# --partition-by
refused "add-tables orders_live next to orders" "$S.orders_live" "$S.orders" "orders_live" "--target" -- \
    "$CTL" add-tables "$A" "$S.orders_live"
refused "add-tables with a hostile --partition-by" "--partition-by" -- \
    "$CTL" add-tables "$A" "$S.other" --partition-by "$S.other=$HOSTILE"
"$CTL" add-tables "$A" "$S.orders_live" --target "$S.orders_live=live_orders" >/dev/null ||
    fail "add-tables with a --target that clashes with nothing"
wait_for 60 "pipe $A Running with two tables" bash -c \
    "'$CTL' status '$A' --json | jq -e '.state == \"Running\" and (.tables | length) == 2' >/dev/null"

# a store written before create refused sharing may hold two pipes with one slot and
# publication: neither sets the publication, re-creates the slot or streams (each would take
# the other's); the drop of one keeps what the other uses, and a resync brings the other back
stop_daemon >/dev/null || true
"$TOOLS/pgferry-test-storecopy" "$STATE_DIR" "$A" "copy$$" || fail "storecopy"
start_daemon
wait_for 60 "pipe $A Failed: its slot is used by copy$$ too" bash -c \
    "'$CTL' status '$A' --json | jq -e '.state == \"Failed\" and (.last_error.message // \"\" | contains(\"used by pipe copy$$ too\"))' >/dev/null"
out=$("$CTL" --timeout 60000 remove-tables "copy$$" "$S.orders_live" 2>&1) ||
    fail "remove-tables copy$$: $out"
assert_contains "$out" "publication $SLOT kept: pipe $A uses it too" "remove-tables of the copy"
assert_eq "$(psql_q "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = '$SLOT'")" \
    "orders,orders_live" "pipe $A's publication after the copy's remove-tables"
out=$("$CTL" --timeout 60000 drop "copy$$" 2>&1) || fail "drop copy$$: $out"
assert_contains "$out" "replication slot $SLOT kept: pipe $A uses it too" "drop of the copy"
assert_contains "$out" "publication $SLOT kept: pipe $A uses it too" "drop of the copy"
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'")" 1 \
    "pipe $A's slot after the copy's drop"
assert_eq "$(psql_q "SELECT count(*) FROM pg_publication WHERE pubname = '$SLOT'")" 1 \
    "pipe $A's publication after the copy's drop"
"$CTL" resync "$A" >/dev/null || fail "resync $A after the copy's drop"
wait_for 90 "pipe $A Running again" state_is "$A" Running
psql_q "INSERT INTO $S.orders VALUES (3, 'three')"
wait_for 30 "row 3 in pipe $A's destination" bash -c \
    "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary \"SELECT count() FROM \\\`$CH_DB_PREFIX$A\\\`.orders FINAL WHERE id = 3 AND _pgferry_is_deleted = 0\")\" = 1 ]"
log "OK"
