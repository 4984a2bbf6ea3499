# Nothing a /metrics client does stalls pgferryd (issue 14): while slow-loris clients trickle
# one byte every 0.9 s into the endpoint (and reconnect when dropped), `pgferryctl status`
# answers within 100 ms (median; max under 1 s), a scrape beside them is served (also when 20
# more idle clients hold half a request line, over the 16 slots: issue 22), and a CDC pipe
# keeps applying. Before the endpoint was non-blocking each trickling client held the daemon's
# loop for as long as it kept sending.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="stall_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY, v text);
  INSERT INTO $S.t SELECT g, 'v' || g FROM generate_series(1, 100) g;"

MPORT=$(free_port)
start_daemon --metrics-listen "127.0.0.1:$MPORT"
create_pipe st "$S.t" >/dev/null
wait_for 60 "pipe st reaches Running" state_is st Running

# loris N: connects, sends "GET /metrics HTTP/1.1\r\n" a byte every 0.9 s, never the end of the
# headers; reconnects when the server drops it, until $TEST_DIR/loris is removed
touch "$TEST_DIR/loris"
loris() {
    trap "" PIPE # a dropped connection fails the write: reconnect
    local req="GET /metrics HTTP/1.1"$'\r\n'"X-Slow: 1" i
    while [ -e "$TEST_DIR/loris" ]; do
        exec 3<>"/dev/tcp/127.0.0.1/$MPORT" || { sleep 0.2; continue; }
        echo connect >>"$TEST_DIR/loris.$1"
        for ((i = 0; i < ${#req}; i++)); do
            [ -e "$TEST_DIR/loris" ] || break
            printf '%s' "${req:i:1}" >&3 2>/dev/null || break
            sleep 0.9
        done
        exec 3>&-
    done
}
for n in 1 2 3 4; do
    loris $n &
    CLEANUP_PIDS+=($!)
done
sleep 2   # every loris is connected and mid-request

writes() { echo "INSERT INTO $S.t VALUES ($((1000 + $1)), 'w$1')"; }
start_writer writes 0.1

times=()
for i in $(seq 1 25); do
    t0=$(date +%s%N)
    "$CTL" --timeout 5000 status st >/dev/null || fail "status failed while clients trickle"
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000000)))
    sleep 0.3
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(sed -n 13p <<<"$sorted")
max=$(tail -1 <<<"$sorted")
log "status while 4 clients trickle: median ${median} ms, max ${max} ms (25 calls)"
[ "$median" -lt 100 ] || fail "status median ${median} ms (>= 100 ms) while clients trickle"
[ "$max" -lt 1000 ] || fail "a status call took ${max} ms while clients trickle"

# a scraper beside them is served
out=$(curl -sS --max-time 3 "http://127.0.0.1:$MPORT/metrics")
assert_contains "$out" 'pgferry_pipe_state{pipe="st"' "scrape beside the slow clients"

# 20 more clients connect and send half a request line, more than the 16 slots: a scraper
# still gets its 200 (it evicts the oldest incomplete connection; before, every scrape got a
# 503 until the idle ones were dropped at their deadline)
idle=()
for i in $(seq 1 20); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$MPORT"
    printf 'GET /met' >&$fd
    idle+=("$fd")
done
for i in 1 2 3; do
    code=$(curl -sS --max-time 3 -o "$TEST_DIR/scrape.$i" -w '%{http_code}' "http://127.0.0.1:$MPORT/metrics")
    assert_eq "$code" 200 "scrape $i while 20 idle clients hold half a request line"
    assert_contains "$(cat "$TEST_DIR/scrape.$i")" 'pgferry_pipe_state{pipe="st"' "scrape $i body"
done
for fd in "${idle[@]}"; do exec {fd}>&-; done

# the trickling clients were dropped at their request deadline (2 s) and came back: no loop
# stall
reconnects=$(cat "$TEST_DIR"/loris.* | wc -l)
[ "$reconnects" -ge 8 ] || fail "slow clients were not dropped at their deadline ($reconnects connects)"

stop_writer
rm -f "$TEST_DIR/loris"
wait_match 30 "t" "SELECT id, v FROM $S.t ORDER BY id" \
    "SELECT id, v FROM \`${CH_DB_PREFIX}st\`.t_live ORDER BY id"
n=$(psql_q "SELECT count(*) FROM $S.t")
# the writer ran all along (about 50 rows in those 8 s on a 2-core machine, fewer when busy);
# that all of them arrived is wait_match's
[ "$n" -ge 120 ] || fail "the writer wrote only $((n - 100)) rows"
assert_eq "$(pipe_state st)" Running "pipe state after the slow clients"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
