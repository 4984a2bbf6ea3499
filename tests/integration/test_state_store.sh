# The state store's failures: a truncated state.mdb stops pgferryd with one clear line and exit
# code 8, which systemd does not restart (it died of SIGBUS, exit 135, with an empty log); the documented backup (mdb_copy while running) and
# restore round trip; a full state disk is called so (it was "Input/output error").
source "$(dirname "$0")/../lib/common.sh"
command -v mdb_copy >/dev/null || fail "mdb_copy missing (package lmdb-utils)"

start_daemon
create_pipe st_a public.st_missing_a >/dev/null
create_pipe st_b public.st_missing_b >/dev/null
# a store of some size: each pipe's history grows with its failures and notes
for i in $(seq 1 30); do "$CTL" set st_a batch_max_rows=$((1000 + i)) >/dev/null 2>&1 || true; done

# backup while pgferryd runs: a consistent, compacted copy
mdb_copy -n -c "$STATE_DIR/state.mdb" "$TEST_DIR/backup.mdb" || fail "mdb_copy while running"
stop_daemon || fail "pgferryd exited non-zero"

# truncated: pgferryd refuses to start, exits 8 (not a signal), one line says what, where, how
size=$(stat -c %s "$STATE_DIR/state.mdb")
truncate -s $((size / 2)) "$STATE_DIR/state.mdb"
set +e
out=$(timeout 20 "$PGFERRYD" --state-dir "$STATE_DIR" 2>&1); rc=$?
set -e
log "truncated store: exit $rc: $out"
# 8: EXIT_STORE_DAMAGED, which the systemd unit does not restart (RestartPreventExitStatus)
assert_eq "$rc" 8 "exit code on a truncated store (135 = SIGBUS before)"
grep -q "^RestartPreventExitStatus=8$" "$PGFERRY_SOURCE_DIR/deploy/systemd/pgferryd.service" ||
    fail "the unit restarts pgferryd on a damaged store"
assert_eq "$(grep -c . <<<"$out")" 1 "one line on a truncated store"
assert_contains "$out" "state store $STATE_DIR/state.mdb is truncated: $((size / 2)) bytes, its last page needs" "what and where"
assert_contains "$out" "mdb_copy" "how to restore"

# restore: the damaged file aside, the backup in its place
mv "$STATE_DIR/state.mdb" "$STATE_DIR/state.mdb.damaged"
rm -f "$STATE_DIR/state.mdb-lock"
cp "$TEST_DIR/backup.mdb" "$STATE_DIR/state.mdb"
chmod 600 "$STATE_DIR/state.mdb"
start_daemon
assert_eq "$("$CTL" list --json | jq -r '.[].name' | sort | tr '\n' ' ')" "st_a st_b " "pipes after the restore"
assert_eq "$(pipe_json st_a | jq -r '.batch_max_rows')" 1030 "a setting after the restore"
stop_daemon || fail "pgferryd exited non-zero after the restore"

# a full state disk: a 2 MB tmpfs as the state directory, filled up after the start
SMALL="$TEST_DIR/small"
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=2M tmpfs "$SMALL" 2>/dev/null; then
    fail "cannot mount a tmpfs for the full-disk case (needs root)"
fi
EXIT_HOOKS+=("umount -l '$SMALL'")
STATE_DIR="$SMALL/state"
export PGFERRY_STATE_DIR="$STATE_DIR"
start_daemon
# nothing left: ENOSPC
dd if=/dev/zero of="$SMALL/filler" bs=4k 2>/dev/null || true
set +e
out=$(create_pipe st_full public.st_missing_c 2>&1); rc=$?
set -e
log "create on a full disk: exit $rc: $out"
[ $rc -ne 0 ] || fail "create succeeded on a full disk"
assert_contains "$out" "the state disk is full" "the reply on a full disk"
assert_contains "$out" "free on $STATE_DIR" "where the disk is full"
grep -q "state store: write pipe: the state disk is full" "$TEST_DIR/pgferryd.log" || fail "full disk not logged"
# 24 KB left and a record of 2,000 tables: LMDB's write() comes back short, which it reports as
# EIO ("Input/output error" was all an operator saw)
rm -f "$SMALL/filler"
dd if=/dev/zero of="$SMALL/filler" bs=1k count=$(( $(df -k "$SMALL" | awk 'NR == 2 {print $4}') - 24 )) 2>/dev/null || true
many=$(for i in $(seq 1 2000); do printf 'public.st_missing_%04d_%s,' "$i" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done)
set +e
out=$(create_pipe st_big "${many%,}" 2>&1); rc=$?
set -e
log "create of 2,000 tables with 24 KB free: exit $rc: $out"
[ $rc -ne 0 ] || fail "create succeeded on a full disk"
assert_contains "$out" "the state disk is full" "the reply on a short write (EIO)"
rm -f "$SMALL/filler"
create_pipe st_full public.st_missing_c >/dev/null || fail "create after space was freed"
stop_daemon || fail "pgferryd exited non-zero"
log "ok"
