# Degraded and back (issue 5): ClickHouse stopped for a minute while the pipe runs and rows keep
# coming -> Degraded within the backoff policy, Running again by itself once ClickHouse is back,
# no row lost; then the same with PostgreSQL stopped. PGFERRY_CH_DOWN_SECONDS shortens the
# minute for local runs.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"
source "$(dirname "$0")/../lib/outage.sh"

DOWN=${PGFERRY_CH_DOWN_SECONDS:-60}
S="degr_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.g (id serial PRIMARY KEY, at timestamptz DEFAULT now(), v int);"

start_daemon --backoff-initial-ms 500 --backoff-max-ms 4000 --degraded-after 3 --max-failures 1000
create_pipe dg "$S.g" >/dev/null
wait_for 60 "pipe dg reaches Running" state_is dg Running

writes() { echo "INSERT INTO $S.g (v) VALUES ($1)"; }
start_writer writes 0.2
sleep 1

log "ClickHouse down for ${DOWN}s"
ch_stop
t0=$(date +%s)
wait_for 30 "pipe dg Degraded" state_is dg Degraded
log "Degraded after $(($(date +%s) - t0)) s"
j=$(pipe_json dg)
assert_eq "$(jq -r .degraded_from <<<"$j")" Running "Degraded remembers Running"
assert_contains "$(jq -r .last_error.message <<<"$j")" "ClickHouse" "the reason names ClickHouse"
assert_eq "$(jq -r .last_error.class <<<"$j")" TRANSIENT "transient"
left=$((DOWN - ($(date +%s) - t0)))
[ $left -gt 0 ] && sleep $left
ch_start
wait_for 30 "pipe dg Running again" state_is dg Running
assert_contains "$(pipe_json dg | jq -r '.history[-1].reason')" "again" "recovery in history"

log "PostgreSQL down for 10 s"
pg_stop
wait_for 30 "pipe dg Degraded" state_is dg Degraded
sleep 5
pg_start
wait_for 30 "pipe dg Running again" state_is dg Running
sleep 1
stop_writer
n=$(psql_q "SELECT count(*) FROM $S.g")
log "$n rows written around the outages"
[ "$n" -gt 100 ] || fail "too few rows written ($n)"
wait_match 60 "g after the outages" "SELECT id, at::text, v FROM $S.g ORDER BY id" \
    "SELECT id, at, v FROM \`${CH_DB_PREFIX}dg\`.g_live ORDER BY id"
no_duplicates "\`${CH_DB_PREFIX}dg\`.g" id
# a transient error is shown until the pipe makes progress again, then cleared
error_cleared() { [ "$(pipe_json "$1" | jq -r '.last_error // empty | .message')" = "" ]; }
psql_q "INSERT INTO $S.g (v) VALUES (-1)" >/dev/null
wait_for 30 "the transient error cleared after progress" error_cleared dg
hist=$(pipe_json dg | jq -r '.history[].to' | uniq | paste -sd,)
assert_contains "$hist" "Running,Degraded,Running,Degraded,Running" "Degraded and back, twice, in history"
"$CTL" drop dg >/dev/null
log "PASS"
