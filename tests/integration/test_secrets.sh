# Secrets go only where the operator bound them (issue 22): a reserved ClickHouse password is
# refused at create for an endpoint not bound to it, and refused again by the worker when the
# binding is gone; file-valued libpq keywords of a source string are refused (or confined to
# secrets_dir); workers inherit neither pgferryd's PGPASSWORD nor its pgpass; a source asking
# for a clear-text password is refused by default; a worker holds no descriptor of the state
# store, the lock or pgferryd's sockets.
source "$(dirname "$0")/../lib/common.sh"

S="sec_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY)"
CH_HOSTPART=${PGFERRY_CH_URL#*@}   # 127.0.0.1:port

# a listener that records every byte it gets (an HTTP server that never answers)
"$TOOLS/pgferry-test-fakepg" --raw "$TEST_DIR/raw.rec" >"$TEST_DIR/raw.port" &
CLEANUP_PIDS+=($!)
# a PostgreSQL server that asks for the password in clear text and records what it gets
"$TOOLS/pgferry-test-fakepg" "$TEST_DIR/pg.rec" >"$TEST_DIR/pg.port" &
CLEANUP_PIDS+=($!)
wait_for 5 "listener ports" bash -c "test -s '$TEST_DIR/raw.port' && test -s '$TEST_DIR/pg.port'"
RAW="127.0.0.1:$(cat "$TEST_DIR/raw.port")"
FAKEPG="127.0.0.1:$(cat "$TEST_DIR/pg.port")"
touch "$TEST_DIR/raw.rec" "$TEST_DIR/pg.rec"

ENVPW="Env-Secret-$$"
export PGPASSWORD="Pg-Env-Secret-$$"            # pgferryd's own libpq password
export PGFERRY_SECRET_CH_PW="$PGFERRY_CH_PASSWORD"
export PGFERRY_SECRET_UNBOUND="$ENVPW"
mkdir -p "$STATE_DIR/secrets"
chmod 700 "$STATE_DIR/secrets"
printf '%s\n' "$PGFERRY_CH_PASSWORD" >"$STATE_DIR/secrets/ch.pw"
printf 'File-Secret-%s\n' "$$" >"$STATE_DIR/secrets/raw.pw"
cat >"$TEST_DIR/pgferryd.conf" <<EOF
secret_bind = ch.pw = http://$CH_HOSTPART
secret_bind = PGFERRY_SECRET_CH_PW = $CH_HOSTPART
secret_bind = raw.pw = $RAW
EOF
start_daemon --config "$TEST_DIR/pgferryd.conf"
unset PGPASSWORD PGFERRY_SECRET_CH_PW PGFERRY_SECRET_UNBOUND

refused() { # NAME EXPECTED ARGS...: create is refused (exit 2) with EXPECTED and no pipe is made
    local name=$1 want=$2 out rc; shift 2
    set +e
    out=$("$CTL" create "$name" --tables "$S.t" "$@" 2>&1)
    rc=$?
    set -e
    assert_eq "$rc" 2 "create $name refused as a bad argument"
    assert_contains "$out" "$want" "create $name reason"
    set +e; "$CTL" status "$name" >/dev/null 2>&1; rc=$?; set -e
    [ $rc -ne 0 ] || fail "refused pipe $name exists"
}

# 1. a reserved secret goes only to the endpoints bound to it
refused steal1 "destination $RAW is not bound to this secret" --source "$PGFERRY_PG_URI" \
    --dest "http://default@$RAW" --dest-password-file ch.pw
refused steal2 "destination $RAW is not bound to this secret" --source "$PGFERRY_PG_URI" \
    --dest "http://default@$CH_HOSTPART,http://default@$RAW" --dest-password-env PGFERRY_SECRET_CH_PW
refused steal3 "--dest-password-env PGFERRY_SECRET_UNBOUND refused: this secret is bound to no endpoint" \
    --source "$PGFERRY_PG_URI" --dest "http://default@$RAW" --dest-password-env PGFERRY_SECRET_UNBOUND
refused steal4 "destination 127.0.0.1:80 is not bound" --source "$PGFERRY_PG_URI" \
    --dest "http://default@127.0.0.1" --dest-password-file ch.pw

# 2. file-valued keywords of the source string
refused kw1 'connection option "passfile" refused' --source "$PGFERRY_PG_URI?passfile=/etc/passwd" \
    --dest "$PGFERRY_CH_URL"
refused kw2 'connection option "service" refused' --source "service=prod host=127.0.0.1" \
    --dest "$PGFERRY_CH_URL"
refused kw3 'connection option "sslkey" refused' --source "host=127.0.0.1 sslkey=$STATE_DIR/secrets/ch.pw" \
    --dest "$PGFERRY_CH_URL"
refused kw4 "sslrootcert /etc/passwd refused: it is not inside secrets_dir" \
    --source "$PGFERRY_PG_URI?sslrootcert=/etc/passwd" --dest "$PGFERRY_CH_URL"

# 3. bound secrets work, and a worker holds no descriptor of pgferryd's state or sockets
# (the source over the server's Unix socket when there is one: the clear-text check asks there)
SRC="$PGFERRY_PG_URI"
[ -z "${PGFERRY_PG_SOCKET_DIR:-}" ] || SRC="host=$PGFERRY_PG_SOCKET_DIR port=$PGFERRY_PG_PORT dbname=postgres user=postgres"
TEST_PIPES+=(good)
"$CTL" create good --source "$SRC" --dest "http://default@$CH_HOSTPART" --tables "$S.t" \
    --dest-password-file ch.pw --dest-database "${CH_DB_PREFIX}good" >/dev/null
wait_for 60 "pipe good Running" state_is good Running
wpid=$(worker_pids good | head -1)
[ -n "$wpid" ] || fail "no worker of good"
fds=$(ls -l "/proc/$wpid/fd" 2>/dev/null)
for f in state.mdb lock.mdb pgferryd.lock; do
    ! grep -q "$f" <<<"$fds" || fail "worker $wpid holds a descriptor of $f"
done
dsocks=$(ls -l "/proc/$DAEMON_PID/fd" | grep -o 'socket:\[[0-9]*\]' | sort -u)
wsocks=$(grep -o 'socket:\[[0-9]*\]' <<<"$fds" | sort -u)
[ -z "$(comm -12 <(echo "$dsocks") <(echo "$wsocks"))" ] || fail "worker $wpid shares a socket with pgferryd"
wenv=$(tr '\0' '\n' <"/proc/$wpid/environ")
! grep -q '^PGPASSWORD=' <<<"$wenv" || fail "the worker inherited PGPASSWORD"
grep -qx 'PGPASSFILE=/dev/null/pgferry-none' <<<"$wenv" || fail "the worker may read ~/.pgpass"

# 4. the worker checks the binding again: a pipe whose secret was bound when it was created,
# run by a pgferryd whose configuration no longer binds it, sends nothing
"$CTL" create rawpipe --source "$PGFERRY_PG_URI" --dest "http://default@$RAW" --tables "$S.t" \
    --dest-password-file raw.pw --dest-database "${CH_DB_PREFIX}rawpipe" >/dev/null
TEST_PIPES+=(rawpipe)
wait_for 20 "the bound endpoint gets the password" grep -q "Authorization: Basic" "$TEST_DIR/raw.rec"
stop_daemon
sleep 1.2   # the listener lets the last connection go
: >"$TEST_DIR/raw.rec"
sed -i '/raw.pw/d' "$TEST_DIR/pgferryd.conf"
export PGPASSWORD="Pg-Env-Secret-$$"
start_daemon --config "$TEST_DIR/pgferryd.conf"
wait_for 30 "rawpipe's worker refuses" bash -c "'$CTL' status rawpipe --json | jq -r .last_error.message | grep -q 'raw.pw refused: this secret is bound to no endpoint'"
[ ! -s "$TEST_DIR/raw.rec" ] || fail "the unbound endpoint received: $(head -c 300 "$TEST_DIR/raw.rec")"

# 5. a source that asks for a clear-text password gets none: refused by default, with the reason
"$CTL" create clear --source "postgresql://u:Uri-Secret-$$@$FAKEPG/db" --dest "$PGFERRY_CH_URL" \
    --tables "$S.t" --dest-database "${CH_DB_PREFIX}clear" >/dev/null
TEST_PIPES+=(clear)
wait_for 30 "pipe clear Failed" state_is clear Failed
assert_contains "$(pipe_json clear | jq -r .last_error.message)" "asks for the password in clear text, which pgferry refuses" "clear-text reason"
! grep -q '^password' "$TEST_DIR/pg.rec" || fail "the clear-text server got a password: $(grep '^password' "$TEST_DIR/pg.rec" | sed 's/ .*/ .../')"

# 6. allowed by the operator, a clear-text server gets the string's password only: never
# pgferryd's PGPASSWORD (in its environment since the restart)
stop_daemon
echo "allow_cleartext_password = true" >>"$TEST_DIR/pgferryd.conf"
: >"$TEST_DIR/pg.rec"
export PGPASSWORD="Pg-Env-Secret-$$"
start_daemon --config "$TEST_DIR/pgferryd.conf"
unset PGPASSWORD
"$CTL" create envpw --source "postgresql://u@$FAKEPG/db" --dest "$PGFERRY_CH_URL" \
    --tables "$S.t" --dest-database "${CH_DB_PREFIX}envpw" >/dev/null
TEST_PIPES+=(envpw)
wait_for 30 "the fake server is asked" grep -q '^startup' "$TEST_DIR/pg.rec"
wait_for 30 "pipe envpw reports the failed connection" bash -c "'$CTL' status envpw --json | jq -e '.last_error.message | length > 0' >/dev/null"
! grep -q "Pg-Env-Secret" "$TEST_DIR/pg.rec" || fail "pgferryd's PGPASSWORD was sent to a server a client chose"
! grep -q '^password' "$TEST_DIR/pg.rec" || fail "a password was sent"

# 7. a reload (SIGHUP) applies changed bindings to create: ch.pw now goes to the listener only
echo "secret_bind = ch.pw = $RAW" >>"$TEST_DIR/pgferryd.conf"
kill -HUP "$DAEMON_PID"
wait_for 10 "reload" grep -q "configuration reloaded" "$TEST_DIR/pgferryd.log"
refused moved "destination $CH_HOSTPART is not bound to this secret" --source "$PGFERRY_PG_URI" \
    --dest "http://default@$CH_HOSTPART" --dest-password-file ch.pw
"$CTL" create moved --source "$PGFERRY_PG_URI" --dest "http://default@$RAW" --tables "$S.t" \
    --dest-password-file ch.pw --dest-database "${CH_DB_PREFIX}moved" >/dev/null
TEST_PIPES+=(moved)
log "ok"
