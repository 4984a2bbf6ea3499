# Pause and resume under a running write load (issue 5): Running -> Pausing -> Paused within
# 5 s, nothing more arrives while paused, status shows the WAL the slot retains and warns past
# the configured threshold (also in the log and history), pause is refused where it makes no
# sense, resume is back to Running within 5 s, and afterwards every change made while paused is
# there exactly once.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="pause_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.pr (id int PRIMARY KEY, v int NOT NULL, pad text);
  INSERT INTO $S.pr SELECT g, 0, repeat('p', 200) FROM generate_series(1, 5000) g;
  CREATE TABLE $S.nokey (v int);"
cat >"$TEST_DIR/workload.sql" <<SQL
\set k random(1, 8000)
INSERT INTO $S.pr VALUES (:k, 1, repeat('w', 300)) ON CONFLICT (id) DO UPDATE SET v = pr.v + 1;
SQL
start_daemon --retained-wal-warning-mb 2
create_pipe pp "$S.pr" >/dev/null
wait_for 60 "pipe pp reaches Running" state_is pp Running
DB="\`${CH_DB_PREFIX}pp\`"

pgbench -n -c 2 -R 400 -T 25 -f "$TEST_DIR/workload.sql" "$PGFERRY_PG_URI" >"$TEST_DIR/pgbench.log" 2>&1 &
LOAD=$!
CLEANUP_PIDS+=($LOAD)
sleep 3

t0=$(date +%s%N)
out=$("$CTL" pause pp)
assert_contains "$out" "pausing" "pause reply"
wait_for 5 "pipe pp Paused within 5 s" state_is pp Paused
log "Paused after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
hist=$(pipe_json pp | jq -r '[.history[].to] | join(",")')
assert_contains "$hist" "Running,Pausing,Paused" "Pausing then Paused in history"
assert_eq "$(pipe_json pp | jq -r '[.workers[].role] | join(",")')" monitor "only the slot monitor runs while paused"

c1=$(ch_q "SELECT count(), sum(v) FROM $DB.pr FINAL")
sleep 3
c2=$(ch_q "SELECT count(), sum(v) FROM $DB.pr FINAL")
assert_eq "$c2" "$c1" "nothing arrives while paused"

# pause where it makes no sense
set +e; out=$("$CTL" pause pp 2>&1); rc=$?; set -e
[ $rc -ne 0 ] || fail "pausing a Paused pipe succeeded"
assert_contains "$out" "Paused" "refusal names the state"
create_pipe bad "$S.nokey" >/dev/null
wait_for 20 "pipe bad fails" state_is bad Failed
set +e; out=$("$CTL" pause bad 2>&1); rc=$?; set -e
[ $rc -ne 0 ] || fail "pausing a Failed pipe succeeded"
assert_contains "$out" "Failed" "refusal names the state"
assert_contains "$out" "Running" "refusal names where pause is allowed"

# the retained WAL grows while paused: shown, and a warning past 2 MB
wait_for 20 "retained WAL above the threshold while paused" \
    bash -c "[ \"\$('$CTL' status pp --json | jq -r '.warning')\" != null ]"
j=$(pipe_json pp)
retained=$(jq -r .slot_info.retained_bytes <<<"$j")
log "slot retains $((retained / 1024)) kB while paused"
[ "$retained" -gt $((2 * 1048576)) ] || fail "retained WAL not reported ($retained)"
assert_contains "$("$CTL" status pp)" "WARNING      slot retains" "text status warns"
assert_contains "$("$CTL" status pp)" "of WAL (wal_status" "text status shows retained WAL"
assert_contains "$(jq -r '.history[].reason' <<<"$j")" "WARNING: slot pgferry_pp retains" "history warns"
grep -q "WARNING: slot pgferry_pp retains" "$TEST_DIR/pgferryd.log" || fail "no warning in the log"

t0=$(date +%s%N)
"$CTL" resume pp >/dev/null
wait_for 5 "pipe pp Running within 5 s" state_is pp Running
log "Running after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
set +e; out=$("$CTL" resume pp 2>&1); rc=$?; set -e
[ $rc -ne 0 ] || fail "resuming a Running pipe succeeded"

wait "$LOAD" || true
grep -q "^tps" "$TEST_DIR/pgbench.log" || fail "pgbench did not run: $(tail -3 "$TEST_DIR/pgbench.log")"
wait_match 60 "pr after pause and resume" "SELECT id, v, pad FROM $S.pr ORDER BY id" \
    "SELECT id, v, pad FROM $DB.pr_live ORDER BY id"
no_duplicates "$DB.pr" id
wait_for 20 "warning cleared once caught up" bash -c "[ \"\$('$CTL' status pp --json | jq -r '.warning')\" = null ]"
"$CTL" drop pp >/dev/null
log "PASS"
