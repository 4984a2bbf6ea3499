# Degraded while ClickHouse is up but refuses the inserts (issue 5, DESIGN 8): the pipe's
# ClickHouse user turns read-only (its profile changed in a users.d file, which the server reloads
# by itself), so every CDC worker starts, streams, and fails its first insert with a temporary
# error (Code 164). Starting and streaming is not progress: the failures count, the pipe becomes
# Degraded (from Running) after the configured number, and the reason says why. Once the user
# may write again the pipe is Running by itself, and no row written meanwhile is lost or doubled.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

: "${PGFERRY_SERVERS_DIR:?the test changes a ClickHouse user: it needs the servers of deploy/dev/servers.sh}"
S="refused_$$"
CHUSER="pgferry_ro_$$"
CHPASS="pw_$$"
UDIR="$PGFERRY_SERVERS_DIR/ch/users.d"
UFILE="$UDIR/$CHUSER.xml"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
mkdir -p "$UDIR"
EXIT_HOOKS+=("rm -f '$UFILE'")
ch_user() { # READONLY: (re)writes the test user's profile
    cat >"$UFILE.tmp" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><$CHUSER><readonly>$1</readonly></$CHUSER></profiles>
  <users><$CHUSER><password>$CHPASS</password><networks><ip>127.0.0.1</ip></networks>
    <profile>$CHUSER</profile><quota>default</quota></$CHUSER></users>
</yandex>
XML
    mv "$UFILE.tmp" "$UFILE"
}
USER_URL="http://$CHUSER:$CHPASS@127.0.0.1:$PGFERRY_CH_HTTP_PORT"
user_q() { curl -sS --max-time 10 "$USER_URL/" --data-binary "$1"; }
user_can_write() { [ "$(user_q "SELECT value FROM system.settings WHERE name = 'readonly'" 2>/dev/null)" = 0 ]; }
user_is_readonly() { [ "$(user_q "SELECT value FROM system.settings WHERE name = 'readonly'" 2>/dev/null)" = 1 ]; }
ch_user 0
wait_for 30 "ClickHouse loads the test user" user_can_write

psql_q "CREATE SCHEMA $S; CREATE TABLE $S.r (id serial PRIMARY KEY, v int, at timestamptz DEFAULT now());
  INSERT INTO $S.r (v) SELECT g FROM generate_series(1, 1000) g;"
start_daemon --backoff-initial-ms 300 --backoff-max-ms 2000 --degraded-after 3 --max-failures 1000
TEST_PIPES+=(rf)
"$CTL" create rf --source "$PGFERRY_PG_URI" --dest "$USER_URL" --tables "$S.r" \
    --dest-database "${CH_DB_PREFIX}rf" >/dev/null
EXIT_HOOKS+=("ch_q 'DROP DATABASE IF EXISTS \`${CH_DB_PREFIX}rf\`'")
wait_for 60 "pipe rf reaches Running" state_is rf Running
DB="\`${CH_DB_PREFIX}rf\`"

writes() { echo "INSERT INTO $S.r (v) VALUES ($1); UPDATE $S.r SET v = -v WHERE id = $(($1 % 1000 + 1))"; }
start_writer writes 0.1
streamed() { [ "$(ch_q "SELECT count() FROM $DB.r_live")" -gt 1005 ]; }
wait_for 30 "rows written after the load arrive" streamed

log "the pipe's ClickHouse user becomes read-only"
ch_user 1
wait_for 30 "ClickHouse reloads the user as read-only" user_is_readonly
t0=$(date +%s)
wait_for 60 "pipe rf Degraded" state_is rf Degraded
log "Degraded after $(($(date +%s) - t0)) s"
j=$(pipe_json rf)
assert_eq "$(jq -r .degraded_from <<<"$j")" Running "Degraded remembers Running"
assert_contains "$(jq -r .last_error.message <<<"$j")" "readonly" "the reason is ClickHouse's"
assert_eq "$(jq -r .last_error.class <<<"$j")" TRANSIENT "a temporary error"
starts=$(grep -c "pipe rf: started cdc worker" "$TEST_DIR/pgferryd.log")
[ "$starts" -ge 3 ] || fail "expected the CDC worker to have been restarted (started $starts times)"
# it keeps retrying while Degraded and stays there: no progress, no Failed (max-failures 1000)
sleep 4
state_is rf Degraded || fail "pipe left Degraded while ClickHouse still refuses: $(pipe_state rf)"
[ "$(grep -c "pipe rf: started cdc worker" "$TEST_DIR/pgferryd.log")" -gt "$starts" ] ||
    fail "no retry while Degraded"

log "the user may write again"
ch_user 0
wait_for 30 "ClickHouse reloads the user" user_can_write
wait_for 60 "pipe rf Running again" state_is rf Running
assert_contains "$(pipe_json rf | jq -r '.history[-1].reason')" "again" "recovery in history"
sleep 1
stop_writer
wait_match 60 "r after the refusal" "SELECT id, v, at::text FROM $S.r ORDER BY id" \
    "SELECT id, v, at FROM $DB.r_live ORDER BY id"
no_duplicates "$DB.r" id
hist=$(pipe_json rf | jq -r '.history[].to' | uniq | paste -sd,)
assert_contains "$hist" "Running,Degraded,Running" "Degraded and back in history"
"$CTL" drop rf >/dev/null
log "PASS"
