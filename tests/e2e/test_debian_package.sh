# The Debian package: built from the tree with cpack, installed with apt-get, files, owners and
# modes checked, the systemd unit verified, the installed daemon run as the pgferry user with a
# real (snapshot-only) pipe, a SIGHUP reload, a clean stop, then a purge that leaves nothing.
# Needs root; refuses to touch a machine where a pgferry package is already installed.
source "$(dirname "$0")/../lib/common.sh"

[ "$(id -u)" = 0 ] || fail "this test installs a Debian package and needs root"
if dpkg-query -W -f='${Status}' pgferry 2>/dev/null | grep -q installed; then
    fail "a pgferry package is already installed here; this test installs and purges one"
fi
PKG_PID=""
purge_pkg() {
    [ -n "$PKG_PID" ] && kill -KILL "$PKG_PID" 2>/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq pgferry >/dev/null 2>&1 || true
}
EXIT_HOOKS+=(purge_pkg)

log "building the package"
cmake -S "$PGFERRY_SOURCE_DIR" -B "$TEST_DIR/pkg" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$TEST_DIR/pkg" -j "$(nproc)" >/dev/null
(cd "$TEST_DIR/pkg" && cpack -G DEB >/dev/null)
deb=$(ls "$TEST_DIR"/pkg/pgferry_*_*.deb)
dpkg-deb -f "$deb" Depends | grep -q libzmq5 || fail "runtime dependencies not declared"

log "installing $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$TEST_DIR/apt.log" 2>&1 ||
    fail "apt-get install failed: $(tail -5 "$TEST_DIR/apt.log")"

mode_owner() { stat -c '%a %U:%G' "$1"; }
for f in /usr/bin/pgferryd /usr/bin/pgferry-worker /usr/bin/pgferryctl; do
    assert_eq "$(mode_owner "$f")" "755 root:root" "$f"
done
assert_eq "$(mode_owner /var/lib/pgferry)" "700 pgferry:pgferry" "state directory"
assert_eq "$(mode_owner /etc/pgferry/pgferryd.conf)" "640 root:pgferry" "configuration file"
assert_eq "$(mode_owner /lib/systemd/system/pgferryd.service)" "644 root:root" "systemd unit"
[ "$(id -u pgferry)" -lt 1000 ] || fail "pgferry is not a system user"
grep -qx /etc/pgferry/pgferryd.conf /var/lib/dpkg/info/pgferry.conffiles || fail "config is not a conffile"
assert_contains "$(/usr/bin/pgferryd --version)" "pgferryd 0." "installed binary runs"
systemd-analyze verify /lib/systemd/system/pgferryd.service >"$TEST_DIR/verify.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$TEST_DIR/verify.log")"
grep -q '^Type=notify' /lib/systemd/system/pgferryd.service || fail "unit is not Type=notify"

log "running the installed daemon as the pgferry user"
env -u PGFERRY_STATE_DIR setpriv --reuid=pgferry --regid=pgferry --init-groups \
    /usr/bin/pgferryd --config /etc/pgferry/pgferryd.conf >"$TEST_DIR/installed.log" 2>&1 &
PKG_PID=$!
wait_for 10 "installed daemon's socket" test -S /var/lib/pgferry/control.sock
assert_eq "$(stat -c '%a %U' /var/lib/pgferry/control.sock)" "600 pgferry" "control socket"
assert_eq "$(stat -c '%a %U' /var/lib/pgferry/state.mdb)" "600 pgferry" "state store"
S="e2e_pkg_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY, v text);
  INSERT INTO $S.t SELECT g, 'v' || g FROM generate_series(1, 5000) g"
PCTL=(/usr/bin/pgferryctl --state-dir /var/lib/pgferry)
"${PCTL[@]}" create pkg --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" --tables "$S.t" \
    --mode snapshot-only --dest-database "${CH_DB_PREFIX}pkg" >/dev/null
wait_for 60 "pipe on the installed daemon completes" \
    bash -c "[ \"\$(${PCTL[*]} status pkg --json | jq -r .state)\" = Completed ]"
assert_eq "$(ch_q "SELECT count() FROM \`${CH_DB_PREFIX}pkg\`.t_live")" 5000 "rows loaded"
kill -HUP "$PKG_PID"
wait_for 5 "reload logged" grep -q "configuration reloaded from /etc/pgferry/pgferryd.conf" "$TEST_DIR/installed.log"
kill -TERM "$PKG_PID"
rc=0; wait "$PKG_PID" || rc=$?
PKG_PID=""
assert_eq "$rc" 0 "installed daemon stops cleanly"

log "purging"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq pgferry >/dev/null 2>&1 || fail "purge failed"
for f in /usr/bin/pgferryd /usr/bin/pgferryctl /etc/pgferry /var/lib/pgferry /lib/systemd/system/pgferryd.service; do
    [ ! -e "$f" ] || fail "$f left after purge"
done
! getent passwd pgferry >/dev/null || fail "user pgferry left after purge"
log "ok"
