# Seeing what a pipe does (issue 6): list and status show lag, rows/s and per-table counters
# (text and JSON); `metrics --prometheus` parses with promtool and carries the pipe's series; the
# /metrics HTTP endpoint serves the same and 404s anything else; verify reports a match, then
# catches rows corrupted and removed in ClickHouse on purpose (exit 7, naming the keys), and
# --table narrows it.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="observe_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.o (id int PRIMARY KEY, name text, amount numeric(10,2), big numeric(30,5),
                     ratio float8, ok bool, raw bytea, u uuid, at timestamptz, n int);
  INSERT INTO $S.o SELECT g, 'name ' || g, g * 1.25, g * 123456789.12345, g / 7.0, g % 2 = 0,
    decode(md5(g::text), 'hex'), md5(g::text)::uuid, TIMESTAMPTZ '2026-01-01' + g * INTERVAL '1 min',
    CASE WHEN g % 3 = 0 THEN NULL ELSE g END FROM generate_series(1, 3000) g;
  CREATE TABLE $S.other (k text PRIMARY KEY, v int);
  INSERT INTO $S.other SELECT 'k' || g, g FROM generate_series(1, 100) g;"

MPORT=$(free_port)
start_daemon --metrics-listen "127.0.0.1:$MPORT"
create_pipe ob "$S.o,$S.other" >/dev/null
wait_for 60 "pipe ob reaches Running" state_is ob Running
DB="\`${CH_DB_PREFIX}ob\`"
psql_q "UPDATE $S.o SET name = 'changed', ratio = -0.0 WHERE id <= 10;
  DELETE FROM $S.o WHERE id BETWEEN 11 AND 15;
  INSERT INTO $S.o (id, name, ratio) VALUES (5000, NULL, 'NaN'), (5001, 'inf', '-Infinity');"
wait_match 30 "o" "SELECT id, coalesce(name, '<null>') FROM $S.o ORDER BY id" \
    "SELECT id, ifNull(name, '<null>') FROM $DB.o_live ORDER BY id"

log "status and list"
wait_for 20 "slot report in status" bash -c "[ \"\$('$CTL' status ob --json | jq -r '.slot_info')\" != null ]"
wait_for 20 "applied counters reported" bash -c "[ \"\$('$CTL' status ob --json | jq -r '.cdc.transactions')\" = 1 ]"
j=$(pipe_json ob)
assert_eq "$(jq -r '.tables[0].inserts' <<<"$j")" 2 "per-table inserts"
assert_eq "$(jq -r '.tables[0].updates' <<<"$j")" 10 "per-table updates"
assert_eq "$(jq -r '.tables[0].deletes' <<<"$j")" 5 "per-table deletes"
assert_eq "$(jq -r '.tables[0].snapshot_rows' <<<"$j")" 3000 "per-table snapshot rows"
assert_eq "$(jq -r '.cdc.transactions' <<<"$j")" 1 "one transaction (psql -c runs the statements in one)"
[ "$(jq -r '.cdc.confirmed_lsn' <<<"$j")" != "" ] || fail "no confirmed LSN"
[ "$(jq -r '.lag_bytes' <<<"$j")" != null ] || fail "no lag in bytes"
[ "$(jq -r '.lag_seconds' <<<"$j")" != null ] || fail "no lag in seconds"
out=$("$CTL" status ob)
assert_contains "$out" "cdc 2 ins, 10 upd, 5 del" "text status per table"
assert_contains "$out" "MB behind the source" "text status lag"
assert_contains "$out" "of WAL (wal_status reserved)" "text status retained WAL"
out=$("$CTL" list)
assert_contains "$out" "LAG(s)" "list header"
assert_contains "$out" "ROWS/S" "list header"
assert_eq "$("$CTL" list --json | jq -r '.[0].cdc.inserts')" 2 "list --json counters"

log "watch"
set +e; timeout --preserve-status -s INT 2.6 "$CTL" watch ob --interval-ms 500 >"$TEST_DIR/watch.out"; rc=$?; set -e
assert_eq "$rc" 0 "watch ends cleanly on Ctrl-C"
frames=$(grep -c "^pgferryctl watch ob" "$TEST_DIR/watch.out")
[ "$frames" -ge 4 ] || fail "watch drew $frames frames in 2.6 s at 0.5 s"
assert_contains "$(cat "$TEST_DIR/watch.out")" "state        Running since" "watch shows the status"

log "metrics"
"$CTL" metrics --prometheus >"$TEST_DIR/metrics.txt"
promtool check metrics <"$TEST_DIR/metrics.txt" || fail "promtool rejects the metrics"
m=$(cat "$TEST_DIR/metrics.txt")
assert_contains "$m" "pgferry_pipe_state{pipe=\"ob\",state=\"Running\"} 1" "state gauge"
assert_contains "$m" "pgferry_pipe_state{pipe=\"ob\",state=\"Paused\"} 0" "other states 0"
assert_contains "$m" "pgferry_rows_total{pipe=\"ob\",table=\"o\",op=\"update\"} 10" "rows counter"
assert_contains "$m" "pgferry_rows_total{pipe=\"ob\",table=\"o\",op=\"snapshot\"} 3000" "snapshot rows"
assert_contains "$m" "pgferry_lag_bytes{pipe=\"ob\"}" "lag gauge"
assert_contains "$m" "pgferry_slot_retained_wal_bytes{pipe=\"ob\"}" "retained WAL gauge"
assert_contains "$m" "pgferry_worker_restarts_total{pipe=\"ob\"} 0" "restarts counter"
http=$(curl -sS -i "http://127.0.0.1:$MPORT/metrics")
assert_contains "$http" "HTTP/1.1 200 OK" "HTTP status"
assert_contains "$http" "text/plain; version=0.0.4" "content type"
assert_contains "$http" "pgferry_pipe_state{pipe=\"ob\",state=\"Running\"} 1" "HTTP body"
curl -sS "http://127.0.0.1:$MPORT/metrics" | promtool check metrics || fail "promtool rejects the HTTP metrics"
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")" 404 "only /metrics"

log "verify: a match"
out=$("$CTL" verify ob) || fail "verify of equal tables failed: $out"
assert_contains "$out" "$S.o -> ${CH_DB_PREFIX}ob.o: match (2997 rows)" "verify match line"
assert_contains "$out" "$S.other -> ${CH_DB_PREFIX}ob.other: match (100 rows)" "verify second table"

log "verify: planted differences"
cols="id, name, amount, big, ratio, ok, raw, u, at, n, _pgferry_version, _pgferry_is_deleted"
ch_q "INSERT INTO $DB.o ($cols) SELECT id, 'tampered', amount, big, ratio, ok, raw, u, at, n,
        toUInt64(9000000000000000000), 0 FROM $DB.o FINAL WHERE id = 42" >/dev/null
ch_q "INSERT INTO $DB.o ($cols) SELECT id, name, amount, big, ratio, ok, raw, u, at, n,
        toUInt64(9000000000000000000), 1 FROM $DB.o FINAL WHERE id = 43" >/dev/null
set +e; out=$("$CTL" verify ob 2>"$TEST_DIR/verify.err"); rc=$?; set -e
assert_eq "$rc" 7 "verify exit code on a mismatch"
assert_contains "$out" "$S.o -> ${CH_DB_PREFIX}ob.o: MISMATCH (PostgreSQL 2997 rows, ClickHouse 2996 rows" "mismatch line"
assert_contains "$out" "key (42): values differ" "tampered key named"
assert_contains "$out" "key (43): only in PostgreSQL" "removed key named"
assert_contains "$out" "other: match (100 rows)" "the other table still matches"
assert_contains "$(cat "$TEST_DIR/verify.err")" "source and destination differ" "stderr says so"
out=$("$CTL" verify ob --table "$S.other") || fail "verify --table of a matching table failed"
assert_contains "$out" "match (100 rows)" "verify --table"
case "$out" in *"$S.o "*) fail "verify --table compared another table" ;; esac
set +e; out=$("$CTL" verify ob --table nosuch 2>&1); rc=$?; set -e
[ $rc -ne 0 ] || fail "verify of an unknown table succeeded"
assert_contains "$out" "no table nosuch" "unknown table named"
"$CTL" drop ob >/dev/null
log "PASS"
