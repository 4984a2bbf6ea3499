# A source failover that loses nothing (issue 13 item 2). PostgreSQL 17 and later: the pipe's
# slot is a failover slot; a primary with a streaming standby that synchronizes slots
# (sync_replication_slots, the primary waiting for it with synchronized_standby_slots), the
# pipe's source given as both hosts with target_session_attrs=read-write; under a write load the
# primary is SIGKILLed and the standby promoted: the pipe goes on from the new primary, and
# every row equals the new primary's. Both servers are this test's own (the shared test server
# is never killed). Before 17: status says that a source failover needs a resync.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

VER=$(psql_q "SHOW server_version_num")
if [ "$VER" -lt 170000 ]; then
    S="fo_$$"
    PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
    psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY, v int)"
    start_daemon
    create_pipe fo "$S.t" >/dev/null
    wait_for 60 "pipe fo Running" state_is fo Running
    wait_for 30 "status has the slot report" bash -c "'$CTL' status fo | grep -q '^failover'"
    assert_contains "$("$CTL" status fo)" "the source has no failover slots (PostgreSQL 17 has): after a source failover the pipe needs a resync" \
        "status on PostgreSQL $VER"
    assert_eq "$(pipe_json fo | jq -r .slot_info.failover)" false "JSON"
    log "ok (PostgreSQL $VER: no failover slots; the failover itself runs on 17 and later)"
    exit 0
fi

SERVERS="$PGFERRY_SOURCE_DIR/deploy/dev/servers.sh"
SRV="$TEST_DIR/srv"
EXIT_HOOKS+=("pg_stop_standby" "bash '$SERVERS' destroy '$SRV'")
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
PGBIN=""
pg_stop_standby() { [ -n "$PGBIN" ] && [ -f "$SRV/standby/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$SRV/standby" -m immediate -w stop; true; }

log "a primary of PostgreSQL $PGFERRY_PG_VERSION and its standby"
eval "$(bash "$SERVERS" start "$SRV" --pg-version "$PGFERRY_PG_VERSION")"
P1=$PGFERRY_PG_PORT
PGBIN=$(dirname "$(readlink -f "/proc/$(head -1 "$SRV/pg/data/postmaster.pid")/exe")")
psql_q "SELECT pg_create_physical_replication_slot('sb', true)" >/dev/null
bash "$SERVERS" stop-pg "$SRV"
# the standby: a copy of the cleanly stopped primary, streaming from it through slot sb
P2=$(free_port)
cp -a "$SRV/pg/data" "$SRV/standby"
rm -f "$SRV/standby/postmaster.pid"
cat >>"$SRV/standby/postgresql.conf" <<CONF
port = $P2
primary_conninfo = 'host=127.0.0.1 port=$P1 user=postgres password=pgferry dbname=postgres application_name=sb'
primary_slot_name = 'sb'
hot_standby_feedback = on
sync_replication_slots = on
CONF
touch "$SRV/standby/standby.signal"
[ "$(id -u)" = 0 ] && chown -R postgres "$SRV/standby"
bash "$SERVERS" start-pg "$SRV"
# the primary sends logical changes only once the standby has them (set after the copy: the
# standby, once promoted, has no standby of its own to wait for)
psql_q "ALTER SYSTEM SET synchronized_standby_slots = 'sb'" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$SRV/standby" -l "$SRV/standby/server.log" -w -t 60 start >/dev/null ||
    fail "the standby did not start: $(tail -5 "$SRV/standby/server.log")"
PRIMARY="postgresql://postgres:pgferry@127.0.0.1:$P1/postgres"
STANDBY="postgresql://postgres:pgferry@127.0.0.1:$P2/postgres"
export PGFERRY_PG_URI="postgresql://postgres:pgferry@127.0.0.1:$P1,127.0.0.1:$P2/postgres?target_session_attrs=read-write"
wait_for 30 "the standby streams" bash -c \
    "[ \"\$(psql -X -At '$PRIMARY' -c \"SELECT count(*) FROM pg_stat_replication WHERE application_name = 'sb' AND state = 'streaming'\")\" = 1 ]"

S="fo_$$"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY, v int, note text);
  INSERT INTO $S.t SELECT g, 0, 'before' FROM generate_series(1, 1000) g"
start_daemon
create_pipe fo "$S.t" >/dev/null
wait_for 60 "pipe fo Running" state_is fo Running
DB="\`${CH_DB_PREFIX}fo\`"
wait_for 30 "status has the slot report" bash -c "'$CTL' status fo | grep -q '^failover'"
assert_contains "$("$CTL" status fo)" "the slot is a failover slot" "status"
assert_eq "$(pipe_json fo | jq -r .slot_info.failover)" true "JSON"

writes() {
    echo "INSERT INTO $S.t VALUES ($((1000 + $1)), $1, 'during') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
          UPDATE $S.t SET v = v + 1 WHERE id = $(($1 % 1000 + 1));
          DELETE FROM $S.t WHERE id = $(($1 % 997 + 1)) AND $1 % 5 = 0"
}
start_writer writes 0.02
log "waiting for the standby to hold a synchronized copy of the pipe's slot"
wait_for 120 "slot pgferry_fo synchronized on the standby" bash -c \
    "[ \"\$(psql -X -At '$STANDBY' -c \"SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgferry_fo' AND synced AND NOT temporary\")\" = 1 ]"
sleep 3

assert_contains "$("$CTL" status fo)" "streams from 127.0.0.1:$P1, timeline 1" "status names the server"

log "SIGKILL of the primary: Degraded while no primary answers"
kill -KILL "$(head -1 "$SRV/pg/data/postmaster.pid")"
wait_for 90 "pipe fo Degraded" state_is fo Degraded
log "promotion of the standby"
as_pg "$PGBIN/pg_ctl" -D "$SRV/standby" -w -t 60 promote >/dev/null || fail "promote failed"
sleep 5
stop_writer
psql -X -q "$STANDBY" -c "INSERT INTO $S.t VALUES (999999, 1, 'after the failover')" ||
    fail "the promoted standby takes no writes"
wait_for 180 "pipe fo Running on the promoted standby" bash -c \
    "'$CTL' status fo --json | jq -e '.state == \"Running\"' >/dev/null &&
     [ \"\$(psql -X -At '$STANDBY' -c \"SELECT confirmed_flush_lsn >= pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = 'pgferry_fo'\")\" = t ]"
export PGFERRY_PG_URI=$STANDBY
wait_match 120 "every row as the new primary has it" "SELECT id, v, note FROM $S.t ORDER BY id" \
    "SELECT id, v, note FROM $DB.t_live ORDER BY id"
no_duplicates "$DB.t" id
out=$("$CTL" --timeout 120000 verify fo) || fail "verify after the failover: $out"
assert_contains "$out" "match" "verify"
hist=$(pipe_json fo | jq -r '.history[] | "\(.to): \(.reason)"' | tail -6)
log "history: $(echo "$hist" | paste -sd'|')"
assert_contains "$hist" "source server changed: streaming from 127.0.0.1:$P2, timeline 2 (was 127.0.0.1:$P1, timeline 1)" \
    "history names the failover"
assert_contains "$hist" "Degraded:" "history has the outage"
assert_contains "$("$CTL" status fo)" "streams from 127.0.0.1:$P2, timeline 2" "status after the failover"
log "ok"
