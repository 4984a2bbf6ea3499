# Ownership of destination tables (issue 22, items 1 and 2): the registry in ClickHouse
# (<db>._pgferry_owners) says which pipe of which pgferryd owns each table and view pgferry
# creates, with every name derived from a target. Pipes sharing one --dest-database never
# adopt, truncate, swap or drop each other's tables, nor a table nobody owns; a second pgferryd
# (its own state, same database) is refused like a second pipe; --drop-destination releases
# the names; a pipe set up before the registry (no claims) records its claims.
source "$(dirname "$0")/../lib/common.sh"

S="own_$$"
S2="own2_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE; DROP SCHEMA IF EXISTS $S2 CASCADE"
psql_q "CREATE SCHEMA $S; CREATE SCHEMA $S2;
  CREATE TABLE $S.orders (id int PRIMARY KEY, note text);
  CREATE TABLE $S2.orders (id int PRIMARY KEY, note text);
  CREATE TABLE $S.orders_resync (id int PRIMARY KEY, x text);
  CREATE TABLE $S.pre (id int PRIMARY KEY, note text);
  CREATE TABLE $S.orders_live (id int PRIMARY KEY);
  INSERT INTO $S.orders SELECT g, 'p1' FROM generate_series(1, 3) g;
  INSERT INTO $S2.orders SELECT g, 'p2' FROM generate_series(1, 5) g;
  INSERT INTO $S.orders_resync SELECT g, 'q1' FROM generate_series(1, 7) g;
  INSERT INTO $S.pre VALUES (1, 'pre')"
SH="${CH_DB_PREFIX}shared"
SH2="${CH_DB_PREFIX}shared2"
mk() { # mk NAME TABLES DB [flags]: a pipe into database DB
    local name=$1 tables=$2 db=$3; shift 3
    TEST_PIPES+=("$name")
    "$CTL" create "$name" --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables "$tables" \
        --dest-database "$db" "$@" >/dev/null
}
err_of() { pipe_json "$1" | jq -r .last_error.message; }
start_daemon
# A second pgferryd (its own state) on the same servers. Inside one pgferryd, create refuses a
# destination name another of its pipes uses (test_pipe_names); pipes of the second pgferryd are
# known only through the registry in ClickHouse, which is what this test is about.
ST2="$TEST_DIR/state2"
"$PGFERRYD" --state-dir "$ST2" --log-level debug >>"$TEST_DIR/pgferryd2.log" 2>&1 &
D2=$!
CLEANUP_PIDS+=($D2)
CTL2() { PGFERRY_STATE_DIR="$ST2" "$CTL" "$@"; }
wait_for 10 "second pgferryd answers" CTL2 --timeout 2000 list
mk2() { # mk2 NAME TABLES DB [flags]: a pipe of the second pgferryd into database DB
    local name=$1 tables=$2 db=$3; shift 3
    TEST_PIPES+=("$name")
    CTL2 create "$name" --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables "$tables" \
        --dest-database "$db" "$@" >/dev/null
}
state2_is() { [ "$(CTL2 --timeout 5000 status "$1" --json | jq -r .state)" = "$2" ]; }
err2_of() { CTL2 --timeout 5000 status "$1" --json | jq -r .last_error.message; }

log "(a) two pipes, one database, the same table name: the second is refused"
mk p1 "$S.orders" "$SH"
wait_for 60 "p1 Running" state_is p1 Running
wait_for 20 "p1's rows" bash -c "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM \`$SH\`.orders_live')\" = 3 ]"
# the same pgferryd refuses it at create
set +e
out=$("$CTL" create p2 --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables "$S2.orders" \
    --dest-database "$SH" 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "create p2 into p1's table accepted"
assert_contains "$out" "which pipe p1 already uses" "create's refusal names p1"
# a pipe of the other pgferryd: refused by the registry
mk2 p2 "$S2.orders" "$SH"
wait_for 30 "p2 Failed" state2_is p2 Failed
e=$(err2_of p2)
assert_contains "$e" "destination table $SH.orders belongs to pipe p1 of pgferryd" "p2's refusal names p1"
assert_contains "$e" "--target schema.table=name, or use another --dest-database" "p2's refusal names the way out"
CTL2 drop p2 >/dev/null
assert_eq "$(ch_q "SELECT count(), min(note), max(note) FROM \`$SH\`.orders FORMAT CSV")" '3,"p1","p1"' \
    "p1's rows unharmed"
psql_q "INSERT INTO $S.orders VALUES (4, 'p1 streams')"
wait_for 20 "p1 still streams" bash -c "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM \`$SH\`.orders_live')\" = 4 ]"
assert_eq "$(pipe_state p1)" Running "p1 Running"
# the way out: another name
mk p3 "$S2.orders" "$SH" --target "$S2.orders=orders2"
wait_for 60 "p3 Running" state_is p3 Running
wait_for 20 "p3's rows in orders2" bash -c "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM \`$SH\`.orders2_live')\" = 5 ]"
assert_eq "$(ch_q "SELECT count() FROM \`$SH\`.orders_live")" 4 "orders still p1's alone"

log "(b) a target that is another's derived name: refused both ways, nothing destroyed"
# q1 owns orders_resync; q2's orders would resync through orders_resync
mk q1 "$S.orders_resync" "$SH2"
wait_for 60 "q1 Running" state_is q1 Running
mk2 q2 "$S2.orders" "$SH2"
wait_for 30 "q2 Failed" state2_is q2 Failed
assert_contains "$(err2_of q2)" "destination table $SH2.orders_resync (a name pgferry uses for table orders) belongs to pipe q1" \
    "q2's refusal names q1's table"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '$SH2' AND name = 'orders'")" 0 "q2 created nothing"
# p1 owns orders (and so orders_resync) in shared: a pipe wanting orders_resync there is refused
mk2 q3 "$S.orders_resync" "$SH"
wait_for 30 "q3 Failed" state2_is q3 Failed
assert_contains "$(err2_of q3)" "destination table $SH.orders_resync belongs to pipe p1" "q3's refusal names p1"
CTL2 drop q3 >/dev/null
# a resync of the owners swaps their own tables only
"$CTL" resync q1 >/dev/null
wait_for 90 "q1 Running after its resync" bash -c \
    "'$CTL' status q1 --json | jq -e '.state == \"Running\" and ([.history[].to] | index(\"Resync\")) != null' >/dev/null"
assert_eq "$(ch_q "SELECT count(), min(x) FROM \`$SH2\`.orders_resync_live FORMAT CSV")" '7,"q1"' "q1's rows after its resync"
# one pipe whose two targets collide the same way: refused (at create or at Setup), nothing made
set +e
out=$("$CTL" create q4 --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables "$S.orders_resync,$S.orders" \
    --dest-database "${CH_DB_PREFIX}shared4" 2>&1)
rc=$?
set -e
if [ $rc -eq 0 ]; then
    TEST_PIPES+=(q4)
    wait_for 30 "q4 Failed" state_is q4 Failed
    out=$(err_of q4)
fi
assert_contains "$out" "orders_resync" "q4's refusal names the colliding name"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '${CH_DB_PREFIX}shared4' AND name != '_pgferry_owners'")" 0 \
    "q4 created nothing"

# and with the view's name: refused, not "exists with a different definition"
set +e
out=$("$CTL" create q5 --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables "$S.orders,$S.orders_live" \
    --dest-database "${CH_DB_PREFIX}shared5" 2>&1)
rc=$?
set -e
if [ $rc -eq 0 ]; then
    TEST_PIPES+=(q5)
    wait_for 30 "q5 Failed" state_is q5 Failed
    out=$(err_of q5)
fi
assert_contains "$out" "orders_live" "q5's refusal names the colliding name"
case "$out" in *"different definition"*) fail "q5 refused for the wrong reason: $out" ;; esac

log "(c) a second pgferryd (its own state) pointed at the same database is refused"
# the same pipe name as the owner: only the state id tells them apart (snapshot-only: no
# slot or publication of its own to collide with the first p1's)
CTL2 create p1 --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables "$S2.orders" \
    --dest-database "$SH" --mode snapshot-only >/dev/null
wait_for 30 "the second p1 Failed" bash -c "PGFERRY_STATE_DIR='$ST2' '$CTL' status p1 --json | jq -e '.state == \"Failed\"'"
e=$(CTL2 status p1 --json | jq -r .last_error.message)
assert_contains "$e" "destination table $SH.orders belongs to pipe p1 of pgferryd" "second pgferryd refused"
assert_eq "$(ch_q "SELECT count(), min(note) FROM \`$SH\`.orders_live FORMAT CSV")" '4,"p1"' "p1's rows unharmed by the second pgferryd"
CTL2 drop p1 >/dev/null

log "(d) an existing table nobody owns is not adopted"
ch_q "CREATE TABLE \`$SH\`.pre AS \`$SH\`.orders" >/dev/null
ch_q "INSERT INTO \`$SH\`.pre (id, note, _pgferry_version, _pgferry_is_deleted) VALUES (99, 'mine', 1, 0)" >/dev/null
mk d1 "$S.pre" "$SH"
wait_for 30 "d1 Failed" state_is d1 Failed
assert_contains "$(err_of d1)" "destination table $SH.pre exists and no pipe owns it" "d1's refusal"
assert_eq "$(ch_q "SELECT count(), min(note) FROM \`$SH\`.pre FORMAT CSV")" '1,"mine"' "the foreign table untouched"
# nor by a resync of the refused pipe (it never set the table up)
"$CTL" resync d1 >/dev/null
wait_for 60 "d1's resync refused" bash -c "'$CTL' status d1 --json | jq -e '.state == \"Failed\" and ([.history[].to] | map(select(. == \"Failed\")) | length) == 2' >/dev/null"
assert_contains "$(err_of d1)" "destination table $SH.pre exists and no pipe owns it" "d1's resync refused"
assert_eq "$(ch_q "SELECT count(), min(note) FROM \`$SH\`.pre FORMAT CSV")" '1,"mine"' "the foreign table untouched by the resync"

log "(e) drop --drop-destination releases the names; drop without it keeps them"
"$CTL" drop p3 >/dev/null
mk p5 "$S2.orders" "$SH" --target "$S2.orders=orders2"
wait_for 30 "p5 Failed (p3's tables kept their owner)" state_is p5 Failed
assert_contains "$(err_of p5)" "destination table $SH.orders2 belongs to pipe p3" "kept claim named"
"$CTL" drop p5 >/dev/null
"$CTL" drop p1 --drop-destination >/dev/null
wait_for 30 "p1 dropped" bash -c "! '$CTL' status p1 >/dev/null 2>&1"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '$SH' AND name LIKE 'orders%' AND name NOT LIKE 'orders2%'")" 0 \
    "p1's tables dropped"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '$SH' AND name IN ('pre', 'orders2', 'orders2_live')")" 3 \
    "tables p1 does not own stay"
mk p6 "$S2.orders" "$SH"
wait_for 60 "p6 takes orders" state_is p6 Running
wait_for 20 "p6's rows" bash -c "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM \`$SH\`.orders_live')\" = 5 ]"

log "(f) two pipes claiming one name at the same moment: exactly one owns it"
SH3="${CH_DB_PREFIX}shared3"
# (one of each pgferryd: inside one pgferryd, create itself refuses the second)
mk r1 "$S.orders" "$SH3" &
M1=$!
mk2 r2 "$S2.orders" "$SH3" &
M2=$!
wait $M1 $M2
TEST_PIPES+=(r1 r2)
r_state() { if [ "$1" = r1 ]; then pipe_state r1; else CTL2 --timeout 5000 status r2 --json | jq -r .state; fi; }
settled() { for p in r1 r2; do case "$(r_state $p)" in Running | Failed) ;; *) return 1 ;; esac; done; }
wait_for 90 "r1 and r2 settle" settled
states="$(r_state r1),$(r_state r2)"
case "$states" in
Running,Failed) win=r1 lose_err=$(err2_of r2) ;;
Failed,Running) win=r2 lose_err=$(err_of r1) ;;
*) fail "expected one owner of $SH3.orders, got $states" ;;
esac
assert_contains "$lose_err" "destination table $SH3.orders belongs to pipe $win" "the loser names the winner"
assert_eq "$(ch_q "SELECT count() FROM (SELECT pipe, argMax(released, version) AS r FROM \`$SH3\`._pgferry_owners WHERE name = 'orders' GROUP BY pipe, state_id) WHERE r = 0")" 1 \
    "one live claim on orders"

log "a pipe set up before the registry records its claims (upgrade from 0.2)"
ch_q "DROP TABLE \`$SH2\`._pgferry_owners" >/dev/null
"$CTL" resync q1 >/dev/null
wait_for 90 "q1 Running after a resync without registry" bash -c \
    "'$CTL' status q1 --json | jq -e '.state == \"Running\" and ([.history[].to] | map(select(. == \"Resync\")) | length) == 2' >/dev/null"
assert_eq "$(ch_q "SELECT count() FROM \`$SH2\`._pgferry_owners WHERE name = 'orders_resync' AND pipe = 'q1' AND released = 0")" 1 \
    "q1's claim recorded again"
assert_eq "$(ch_q "SELECT count() FROM \`$SH2\`.orders_resync_live")" 7 "q1's rows after the resync"

for p in p6 q1 d1 r1; do "$CTL" drop $p >/dev/null; done
for p in q2 r2; do CTL2 drop $p >/dev/null; done
kill -TERM $D2
wait $D2 || fail "second pgferryd exited non-zero"
"$CTL" drop q4 >/dev/null 2>&1 || true
"$CTL" drop q5 >/dev/null 2>&1 || true
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
