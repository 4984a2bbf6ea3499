# Running under a service manager: readiness through NOTIFY_SOCKET (READY=1 once the sockets
# are bound, RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1 at SIGTERM); a reload
# applies a changed log level from the file; a broken file is refused and the daemon keeps
# its settings; an unknown key stops a fresh start with the file, line and key named.
source "$(dirname "$0")/../lib/common.sh"

CONF="$TEST_DIR/pgferryd.conf"
printf 'state_dir = %s\nlog_level = info\n' "$STATE_DIR" >"$CONF"
"$TOOLS/pgferry-test-notify-listen" "$TEST_DIR/notify.sock" 60 >"$TEST_DIR/notify.log" &
CLEANUP_PIDS+=($!)
LISTENER=$!
wait_for 5 "notify socket" test -S "$TEST_DIR/notify.sock"
NOTIFY_SOCKET="$TEST_DIR/notify.sock" "$PGFERRYD" --config "$CONF" >"$TEST_DIR/pgferryd.log" 2>&1 &
DAEMON_PID=$!
wait_for 10 "READY=1" grep -qx "READY=1" "$TEST_DIR/notify.log"
[ -S "$STATE_DIR/control.sock" ] || fail "READY=1 came before the control socket existed"
"$CTL" list >/dev/null || fail "not serving after READY=1"

# reload: debug lines appear only after the file says so
! grep -q " debug " "$TEST_DIR/pgferryd.log" || fail "debug lines before the reload"
printf 'state_dir = %s\nlog_level = debug\n' "$STATE_DIR" >"$CONF"
kill -HUP "$DAEMON_PID"
wait_for 5 "reload logged" grep -q "configuration reloaded from $CONF" "$TEST_DIR/pgferryd.log"
wait_for 5 "RELOADING=1" grep -qx "RELOADING=1" "$TEST_DIR/notify.log"
"$CTL" create dbg --source "postgresql://u:p@127.0.0.1:1/db" --dest "$PGFERRY_CH_URL" --tables t >/dev/null
wait_for 5 "debug lines after the reload" grep -q " debug .*pipe dbg: assigned provision" "$TEST_DIR/pgferryd.log"
"$CTL" drop dbg >/dev/null

# a broken file is refused at reload; the daemon keeps serving with its settings
printf 'state_dir = %s\nlog_level = loud\n' "$STATE_DIR" >"$CONF"
kill -HUP "$DAEMON_PID"
wait_for 5 "refused reload logged" grep -q "reload refused, keeping the running settings: $CONF:2: bad value 'loud' for log_level" "$TEST_DIR/pgferryd.log"
"$CTL" list >/dev/null || fail "not serving after a refused reload"

stop_daemon || fail "pgferryd exited non-zero"
wait_for 5 "STOPPING=1" grep -qx "STOPPING=1" "$TEST_DIR/notify.log"

# the same broken file stops a fresh start, naming file, line and key
set +e; out=$("$PGFERRYD" --config "$CONF" 2>&1); rc=$?; set -e
assert_eq "$rc" 2 "bad config exit code"
assert_contains "$out" "$CONF:2: bad value 'loud' for log_level" "bad config message"
printf 'state_dir = %s\nlog_levle = info\n' "$STATE_DIR" >"$CONF"
set +e; out=$("$PGFERRYD" --config "$CONF" 2>&1); rc=$?; set -e
assert_contains "$out" "$CONF:2: unknown key 'log_levle'" "unknown key message"
# environment and flags override the file
printf 'state_dir = /nonexistent/dir\nlog_level = info\n' "$STATE_DIR" >"$CONF"
PGFERRY_STATE_DIR="$STATE_DIR" "$PGFERRYD" --config "$CONF" --log-level debug >"$TEST_DIR/over.log" 2>&1 &
DAEMON_PID=$!
wait_for 10 "daemon on the overridden state dir" "$CTL" list
"$CTL" create dbg2 --source "postgresql://u:p@127.0.0.1:1/db" --dest "$PGFERRY_CH_URL" --tables t >/dev/null
wait_for 5 "--log-level flag overrides the file" grep -q " debug .*pipe dbg2: assigned provision" "$TEST_DIR/over.log"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
