# drop and remove-tables run in a teardown worker, so pgferryd never waits on a database
# (issue 14): a drop against a ClickHouse that accepts connections and never answers takes
# its time in the worker while another pipe is paused, resumed and shown at once; the pipe
# being dropped refuses other verbs and shows "dropping"; the drop's reply names what was
# left; a pgferryd killed in the middle of a drop finishes it after its restart.
source "$(dirname "$0")/../lib/common.sh"

S="td_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY, v text);
  CREATE TABLE $S.u (id int PRIMARY KEY);
  INSERT INTO $S.t SELECT g, 'v' || g FROM generate_series(1, 100) g;"

"$TOOLS/pgferry-test-blackhole" >"$TEST_DIR/bh.port" &
CLEANUP_PIDS+=($!)
wait_for 5 "blackhole port" test -s "$TEST_DIR/bh.port"
HUNG="http://default@127.0.0.1:$(cat "$TEST_DIR/bh.port")"

start_daemon --stop-grace-ms 3000
create_pipe near "$S.t,$S.u" >/dev/null
wait_for 60 "pipe near reaches Running" state_is near Running
"$CTL" create far --source "$PGFERRY_PG_URI" --dest "$HUNG" --tables "$S.t" >/dev/null
wait_for 10 "provision worker of far" has_worker far

# the drop waits on the hung ClickHouse (20 s request timeout) in its teardown worker
t0=$(date +%s)
"$CTL" --timeout 120000 drop far --drop-destination >"$TEST_DIR/drop.out" 2>&1 &
DROP=$!
wait_for 10 "far shows dropping" bash -c "'$CTL' status far --json | jq -e .dropping >/dev/null"
wait_for 10 "teardown worker of far" bash -c "'$CTL' status far --json | jq -e '[.workers[].role] == [\"teardown\"]' >/dev/null"
assert_contains "$("$CTL" status far)" "dropping     workers stop, then a teardown worker" "text status"
assert_contains "$("$CTL" list)" "(dropping)" "list shows it"
set +e; out=$("$CTL" pause far 2>&1); rc=$?; set -e
assert_eq "$rc" 1 "a verb on a pipe being dropped is refused"
assert_contains "$out" "is being dropped" "refusal reason"

# meanwhile the daemon serves everything else at once
ms() { local t=$(date +%s%N); "$@" >/dev/null || fail "'$*' failed during the drop"; echo $((($(date +%s%N) - t) / 1000000)); }
slow=0
for verb in "status near" "pause near" "list" "status far"; do
    m=$(ms "$CTL" $verb)
    log "$verb: $m ms"
    [ "$m" -lt 1000 ] || slow=1
done
wait_for 20 "near Paused" state_is near Paused
m=$(ms "$CTL" resume near); log "resume near: $m ms"; [ "$m" -lt 1000 ] || slow=1
[ $slow = 0 ] || fail "a control call took over 1 s while a drop waited on ClickHouse"
wait_for 20 "near Running again" state_is near Running
psql_q "INSERT INTO $S.t VALUES (1000, 'during the drop')"
wait_for 20 "near applies during the drop" bash -c \
    "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary \"SELECT count() FROM \\\`${CH_DB_PREFIX}near\\\`.t_live WHERE id = 1000\")\" = 1 ]"
kill -0 $DROP 2>/dev/null || fail "the drop answered before its teardown worker could finish"

wait $DROP || fail "drop exited non-zero: $(cat "$TEST_DIR/drop.out")"
took=$(($(date +%s) - t0))
out=$(cat "$TEST_DIR/drop.out")
log "drop of far answered after ${took} s: $out"
assert_contains "$out" "dropped with leftovers" "drop reply"
assert_contains "$out" "NOT dropped" "what was left"
set +e; "$CTL" status far >/dev/null 2>&1; rc=$?; set -e
[ $rc -ne 0 ] || fail "far still exists"

# remove-tables also runs in the teardown worker and answers when it is done
out=$("$CTL" remove-tables near "$S.u" --drop-destination)
assert_contains "$out" "left publication pgferry_near" "remove-tables reply"
wait_for 20 "near Running after remove-tables" state_is near Running
assert_eq "$(pipe_json near | jq -r '[.tables[].table] | join(",")')" t "u left the record"
assert_eq "$(ch_q "SELECT count() FROM system.tables WHERE database = '${CH_DB_PREFIX}near' AND name LIKE 'u%'")" 0 "u's tables dropped"
assert_eq "$(psql_q "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'pgferry_near' AND tablename = 'u'")" 0 "u left the publication"

# a pgferryd SIGKILLed during a drop finishes it after its restart
"$CTL" create again --source "$PGFERRY_PG_URI" --dest "$HUNG" --tables "$S.t" >/dev/null
"$CTL" --timeout 60000 drop again --drop-destination >/dev/null 2>&1 &
CLEANUP_PIDS+=($!) # (its daemon is killed below: this client gets no answer)
wait_for 10 "teardown worker of again" bash -c "'$CTL' status again --json | jq -e '[.workers[].role] == [\"teardown\"]' >/dev/null"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
start_daemon --stop-grace-ms 3000
assert_eq "$("$CTL" status again --json | jq -r .dropping)" true "the drop is remembered"
wait_for 60 "again dropped after the restart" bash -c "! '$CTL' status again >/dev/null 2>&1"
grep -q "pipe again dropped" "$TEST_DIR/pgferryd.log" || fail "the finished drop is not logged"

"$CTL" drop near >/dev/null
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_near'")" 0 "near's slot dropped"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
