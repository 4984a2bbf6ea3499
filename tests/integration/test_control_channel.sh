# The control channel: owner-only socket, malformed input answered or dropped, the daemon
# keeps serving; unknown verbs and bad arguments get clear errors.
source "$(dirname "$0")/../lib/common.sh"

start_daemon
EP="ipc://$STATE_DIR/control.sock"

# permissions: state dir 0700, control socket 0600
assert_eq "$(stat -c %a "$STATE_DIR")" 700 "state dir mode"
assert_eq "$(stat -c %a "$STATE_DIR/control.sock")" 600 "control socket mode"
assert_eq "$(stat -c %a "$STATE_DIR/state.mdb")" 600 "state store mode"

out=$("$TOOLS/pgferry-test-rawsend" "$EP" garbage)
assert_contains "$out" "code=1 " "garbage bytes"
# 10,000 undecodable requests: each answered, the log says so about ten times and then how
# many it left out (it wrote one line per request before)
before=$(grep -c "request refused: bad request: not a pgferry control message" "$TEST_DIR/pgferryd.log" || true)
out=$("$TOOLS/pgferry-test-rawsend" "$EP" garbage 10000)
assert_contains "$out" "code=1 " "the 10,000th garbage request is answered"
after=$(grep -c "request refused: bad request: not a pgferry control message" "$TEST_DIR/pgferryd.log" || true)
log "10,000 garbage requests: $((after - before)) log lines"
[ $((after - before)) -le 12 ] || fail "10,000 garbage requests wrote $((after - before)) log lines"
wait_for 15 "the summary of the left-out lines" grep -qE "[0-9]{4} more line\(s\) like this were left out in the last [0-9]+ s: control: request refused" "$TEST_DIR/pgferryd.log"
out=$("$TOOLS/pgferry-test-rawsend" "$EP" truncated)
assert_contains "$out" "code=1 " "truncated protobuf"
out=$("$TOOLS/pgferry-test-rawsend" "$EP" unknown-type)
assert_contains "$out" "code=1 message=bad request: empty or unknown request type" "unknown type"
out=$("$TOOLS/pgferry-test-rawsend" "$EP" bad-version)
assert_contains "$out" "code=2 message=unsupported protocol version 99" "bad version"
out=$("$TOOLS/pgferry-test-rawsend" "$EP" pause-unknown)
assert_contains "$out" "code=3 message=no pipe named x" "a verb for a pipe that does not exist"
out=$("$TOOLS/pgferry-test-rawsend" "$EP" many-frames)
assert_contains "$out" "code=1 message=bad request: unexpected frames" "too many frames"
out=$("$TOOLS/pgferry-test-rawsend" "$EP" empty-frames)
assert_contains "$out" "code=2 message=unsupported protocol version 0" "empty body"
# oversized: ZeroMQ drops the peer (ZMQ_MAXMSGSIZE); no reply, no crash
out=$("$TOOLS/pgferry-test-rawsend" "$EP" oversized)
assert_eq "$out" "no reply" "oversized frame"
kill -0 "$DAEMON_PID" || fail "pgferryd died on malformed input"
# a 62 MB request of 31 million empty table entries is refused before decoding, naming the
# limit (it took 4.1 GB and 9 s to decode); 8 MB of them, under the size limit, are refused by
# what decoding would allocate; the largest legitimate create (10,000 tables with long names,
# exclusions and options) still decodes; the daemon's memory stays bounded and comes back
rss() { awk '/^'"$1"':/ {print $2}' "/proc/$DAEMON_PID/status"; }
rss0=$(rss VmRSS)
out=$("$TOOLS/pgferry-test-rawsend" "$EP" hostile-empty)
assert_contains "$out" "code=1 message=bad request: 62000012 bytes, over the control request limit of 25165824 bytes (24 MiB)" "62 MB request"
out=$("$TOOLS/pgferry-test-rawsend" "$EP" hostile-empty:8)
assert_contains "$out" "over the control request limit of 128 MB (too many entries)" "8 MB of empty entries"
out=$("$TOOLS/pgferry-test-rawsend" "$EP" big-create 2>/dev/null)
assert_contains "$out" "code=6 message=pipe name may contain only" "the largest legitimate create decodes"
t0=$(date +%s%N)
out=$(RAWSEND_TIMEOUT_MS=1000 "$TOOLS/pgferry-test-rawsend" "$EP" valid-list)
assert_contains "$out" "code=0" "the loop answers after the hostile requests"
sleep 0.2
hwm=$(rss VmHWM); rss1=$(rss VmRSS)
log "hostile requests: RSS ${rss0} kB -> ${rss1} kB, peak ${hwm} kB, next answer in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
# under AddressSanitizer the allocator keeps freed memory in quarantine and malloc_trim does
# not apply: the memory figures are checked on the normal build only (the refusals above on both)
if [ -z "${ASAN_OPTIONS:-}" ]; then
    [ "$hwm" -lt 200000 ] || fail "pgferryd peaked at $hwm kB on hostile requests"
    [ "$rss1" -lt $((rss0 + 20000)) ] || fail "pgferryd kept $((rss1 - rss0)) kB after hostile requests"
fi

# and it still serves valid requests
out=$("$TOOLS/pgferry-test-rawsend" "$EP" valid-list)
assert_contains "$out" "code=0" "valid request after garbage"
out=$("$CTL" list)
assert_eq "$out" "no pipes" "list"

# operator errors are explained, with a usage exit code
set +e
out=$("$CTL" create "bad name" --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables t 2>&1); rc=$?
set -e
assert_eq "$rc" 2 "bad pipe name exit code"
assert_contains "$out" "pipe name may contain only" "bad pipe name"
set +e
out=$("$CTL" create p --source "$PGFERRY_PG_URI" --dest "ftp://x:1" --tables t 2>&1); rc=$?
set -e
assert_eq "$rc" 2 "bad dest exit code"
assert_contains "$out" "scheme must be http or https" "bad destination URL"
set +e
out=$("$CTL" create p --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables 'a,"b' 2>&1); rc=$?
set -e
assert_eq "$rc" 2 "bad table list exit code"
assert_contains "$out" "unterminated quoted identifier" "bad table name"
set +e
out=$("$CTL" status nosuchpipe 2>&1); rc=$?
set -e
assert_eq "$rc" 1 "status of a missing pipe"
assert_contains "$out" "no pipe named nosuchpipe" "missing pipe"
set +e
out=$("$CTL" frobnicate 2>&1); rc=$?
set -e
assert_eq "$rc" 2 "unknown verb exit code"
assert_contains "$out" "unknown verb 'frobnicate'" "unknown verb"

# no daemon: a clear message and its own exit code
set +e
out=$("$CTL" --state-dir "$TEST_DIR/nowhere" list 2>&1); rc=$?
set -e
assert_eq "$rc" 5 "no daemon exit code"
assert_contains "$out" "no pgferryd is listening" "no daemon"

# a second daemon on the same state directory is refused
set +e
out=$("$PGFERRYD" --state-dir "$STATE_DIR" 2>&1); rc=$?
set -e
[ $rc -ne 0 ] || fail "second pgferryd on the same state dir started"
assert_contains "$out" "in use by another pgferryd" "state dir lock"

stop_daemon || fail "pgferryd exited non-zero on SIGTERM"
[ ! -e "$STATE_DIR/control.sock" ] || fail "control socket left behind"

# limits from the configuration: max_pipes refuses the next create with the reason; a default
# number of snapshot workers applies when create does not give one
start_daemon --max-pipes 2 --default-snapshot-workers 3
create_pipe one public.a >/dev/null
create_pipe two public.b --snapshot-workers 1 >/dev/null
set +e; out=$(create_pipe three public.c 2>&1); rc=$?; set -e
assert_eq "$rc" 1 "over max_pipes exit code"
assert_contains "$out" "already runs 2 pipe(s), its limit (max_pipes = 2)" "max_pipes reason"
assert_eq "$(pipe_json one | jq -r '.snapshot_workers')" 3 "default_snapshot_workers"
assert_eq "$(pipe_json two | jq -r '.snapshot_workers')" 1 "explicit snapshot workers"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
