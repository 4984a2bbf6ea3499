# Interactive PostgreSQL sessions for tests that need concurrent transactions in a fixed order
# (bash, sourced after common.sh). A session is a psql coprocess fed statement by statement;
# session_sync waits until it has run everything sent so far.
#
#   session_open A          open session A
#   session_send A "SQL;"   send statements (returns at once)
#   session_sync A          wait until A ran them (fails the test after 60 s)
#   session_close A         end A (whatever is open is rolled back)
#   wait_lock_waiters N PATTERN: wait until N backends whose query matches PATTERN wait on a lock

declare -A SESSION_IN SESSION_OUT SESSION_PID
SESSION_SEQ=0

session_open() {
    local name=$1 fifo_in="$TEST_DIR/session_$1.in" fifo_out="$TEST_DIR/session_$1.out"
    rm -f "$fifo_in" "$fifo_out"
    mkfifo "$fifo_in" "$fifo_out"
    psql -X -q -At -v ON_ERROR_STOP=0 "$PGFERRY_PG_URI" <"$fifo_in" >"$fifo_out" 2>&1 &
    SESSION_PID[$name]=$!
    CLEANUP_PIDS+=("$!")
    exec {fd_in}>"$fifo_in"
    exec {fd_out}<"$fifo_out"
    SESSION_IN[$name]=$fd_in
    SESSION_OUT[$name]=$fd_out
}

session_send() { printf '%s\n' "$2" >&"${SESSION_IN[$1]}"; }

session_sync() {
    local name=$1 line
    SESSION_SEQ=$((SESSION_SEQ + 1))
    local mark="__sync_${SESSION_SEQ}__"
    printf '\\echo %s\n' "$mark" >&"${SESSION_IN[$name]}"
    while IFS= read -r -t 60 line <&"${SESSION_OUT[$name]}"; do
        [ "$line" = "$mark" ] && return 0
        case "$line" in *ERROR*) log "session $name: $line" ;; esac
    done
    fail "session $name did not finish its statements within 60 s"
}

session_close() {
    local name=$1
    local fin=${SESSION_IN[$name]} fout=${SESSION_OUT[$name]}
    printf '\\q\n' >&"$fin" 2>/dev/null || true
    exec {fin}>&-
    wait "${SESSION_PID[$name]}" 2>/dev/null || true
    exec {fout}<&-
}

wait_lock_waiters() {
    local n=$1 pattern=$2
    wait_for 30 "$n sessions waiting on a lock ($pattern)" pg_true \
        "SELECT count(*) >= $n FROM pg_stat_activity WHERE wait_event_type = 'Lock'
         AND query LIKE '$pattern'"
}
