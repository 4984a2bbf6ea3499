# Remote control over tcp:// with CURVE, on loopback: keygen writes key files with the right
# modes and never overwrites; the daemon refuses a tcp:// endpoint without keys; an authorized
# client is served, an unknown client key and a client with the wrong server key get nothing;
# the owner-only ipc:// socket keeps working beside it.
source "$(dirname "$0")/../lib/common.sh"

K="$TEST_DIR/keys"
mkdir -p "$K"
out=$("$CTL" keygen "$K/server.key")
assert_contains "$out" "public key: " "keygen output"
"$CTL" keygen "$K/alice.key" >/dev/null
"$CTL" keygen "$K/mallory.key" >/dev/null
assert_eq "$(stat -c %a "$K/alice.key")" 600 "secret key file mode"
assert_eq "$(stat -c %a "$K/alice.key.pub")" 644 "public key file mode"
set +e; out=$("$CTL" keygen "$K/alice.key" 2>&1); rc=$?; set -e
[ $rc -ne 0 ] || fail "keygen overwrote a key"
assert_contains "$out" "not overwriting a key" "keygen refuses to overwrite"
cp "$K/alice.key.pub" "$K/authorized_keys"

port=""
for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || fail "no free port"
EP="tcp://127.0.0.1:$port"

# no keys: refused at start, with the reason
set +e; out=$("$PGFERRYD" --state-dir "$STATE_DIR" --control-remote "$EP" 2>&1); rc=$?; set -e
assert_eq "$rc" 2 "tcp:// without keys exit code"
assert_contains "$out" "needs CURVE keys" "tcp:// without keys message"

start_daemon --control-remote "$EP" --curve-key-file "$K/server.key" \
    --curve-authorized-keys "$K/authorized_keys" --secret-bind "ch.pw=${PGFERRY_CH_URL#*@}"
grep -q "remote control on $EP (CURVE" "$TEST_DIR/pgferryd.log" || fail "remote endpoint not announced"

remote() { # KEYFILE SERVERKEY ARGS...: pgferryctl over tcp with a short timeout
    local key=$1 skey=$2; shift 2
    "$CTL" --control "$EP" --server-key "$skey" --key "$key" --timeout 2000 "$@"
}
create_pipe local1 public.t >/dev/null   # over ipc://, as always
out=$(remote "$K/alice.key" "$K/server.key.pub" list)
assert_contains "$out" "local1" "authorized client is served"
assert_eq "$(remote "$K/alice.key" "$(cat "$K/server.key.pub")" list --json | jq length)" 1 "server key given as text"

# an authorized remote client cannot make a pipe send the daemon's files or environment as a
# ClickHouse password: files outside secrets_dir and variables without the prefix are refused
# at create, with the reason, and no pipe is made
printf 'pw\n' >"$STATE_DIR/secrets/ch.pw"
ln -s "$K/server.key" "$STATE_DIR/secrets/sneaky.pw"
refused_remote() { # NAME EXPECTED ARGS...
    local name=$1 want=$2 out rc; shift 2
    set +e
    out=$(remote "$K/alice.key" "$K/server.key.pub" create "$name" --source "$PGFERRY_PG_URI" \
        --dest "http://default@127.0.0.1:1" --tables public.t "$@" 2>&1)
    rc=$?
    set -e
    assert_eq "$rc" 2 "remote create $name refused as a bad argument"
    assert_contains "$out" "$want" "remote create $name reason"
    set +e; "$CTL" status "$name" >/dev/null 2>&1; rc=$?; set -e
    [ $rc -ne 0 ] || fail "refused pipe $name exists"
}
refused_remote steal1 "not inside secrets_dir" --dest-password-file "$K/server.key"
refused_remote steal2 "not inside secrets_dir" --dest-password-file ../pgferryd.lock
refused_remote steal3 "not inside secrets_dir" --dest-password-file sneaky.pw
refused_remote steal4 "No such file" --dest-password-file nosuch.pw
refused_remote steal5 "only variables named PGFERRY_SECRET_<NAME>" --dest-password-env HOME
refused_remote steal6 "only variables named PGFERRY_SECRET_<NAME>" --dest-password-env PGFERRY_CH_URL
# ... nor send a file of secrets_dir to an endpoint the operator did not bind it to
refused_remote steal7 "destination 127.0.0.1:1 is not bound to this secret" --dest-password-file ch.pw
out=$(remote "$K/alice.key" "$K/server.key.pub" create allowed --source "$PGFERRY_PG_URI" \
    --dest "$PGFERRY_CH_URL" --tables public.t --dest-password-file ch.pw --dest-database "${CH_DB_PREFIX}allowed")
TEST_PIPES+=(allowed)
assert_contains "$out" "created" "a file inside secrets_dir is accepted remotely"
grep -q "request refused: --dest-password-file .*server.key refused" "$TEST_DIR/pgferryd.log" ||
    fail "the refusal is logged"

set +e; out=$(remote "$K/mallory.key" "$K/server.key.pub" list 2>&1); rc=$?; set -e
assert_eq "$rc" 5 "unknown client key gets no answer"
assert_contains "$out" "no answer from pgferryd" "unknown client key"
wait_for 5 "refusal logged" grep -q "remote control: refused a client from 127.0.0.1" "$TEST_DIR/pgferryd.log"

set +e; out=$(remote "$K/alice.key" "$K/mallory.key.pub" list 2>&1); rc=$?; set -e
assert_eq "$rc" 5 "wrong server key gets no answer"

# unauthorized clients from 20 addresses at once (each retries its handshake): the log names
# the first 5 of the minute and then says how many more were refused (one line each before)
pids=()
for i in $(seq 10 29); do
    "$CTL" --control "tcp://127.0.0.$i:0;127.0.0.1:$port" --server-key "$K/server.key.pub" \
        --key "$K/mallory.key" --timeout 1500 list >/dev/null 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
lines=$(grep -c "remote control: refused a client from" "$TEST_DIR/pgferryd.log" || true)
log "unauthorized clients from 20 addresses: $lines refusal line(s)"
[ "$lines" -le 5 ] || fail "$lines refusal lines logged (5 a minute expected)"

set +e; out=$("$CTL" --control "$EP" list 2>&1); rc=$?; set -e
assert_eq "$rc" 2 "tcp:// without client keys"
assert_contains "$out" "needs --server-key" "client keys required"

"$CTL" list >/dev/null || fail "ipc:// control stopped working"
stop_daemon || fail "pgferryd exited non-zero"
more=$(sed -n 's/.*remote control: refused \([0-9]*\) more client(s) in the last .*/\1/p' "$TEST_DIR/pgferryd.log")
log "refused clients left out of the log: ${more:-none}"
# 21 refused clients in all (mallory's first attempt and the 20): 5 named, the rest counted
[ $((lines + ${more:-0})) -ge 21 ] || fail "the summary of the refused clients: '${more}'"
log "ok"
