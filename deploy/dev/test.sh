#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, builds pgferry twice
# (normal, and with AddressSanitizer + UndefinedBehaviorSanitizer), starts real PostgreSQL and
# ClickHouse servers on free loopback ports in a temporary directory, runs ctest (unit,
# integration and e2e on the normal build; unit and integration on the sanitizer build; the
# reduced PostgreSQL version matrix, tests/matrix/run --reduced), and
# stops the servers. Exits non-zero when anything fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
JOBS=$(nproc 2>/dev/null || echo 2)

bash "$ROOT/deploy/dev/install-deps.sh"

echo "== build (RelWithDebInfo)"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j "$JOBS"
echo "== build (ASan + UBSan)"
cmake -S "$ROOT" -B "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DPGFERRY_SANITIZE=ON >/dev/null
cmake --build "$ROOT/build-asan" -j "$JOBS"

SERVERS_DIR=$(mktemp -d /tmp/pgferry-test-servers-XXXXXX)
trap 'bash "$ROOT/deploy/dev/servers.sh" destroy "$SERVERS_DIR" || true' EXIT
echo "== servers"
eval "$(bash "$ROOT/deploy/dev/servers.sh" start "$SERVERS_DIR")"
echo "PostgreSQL on 127.0.0.1:$PGFERRY_PG_PORT, ClickHouse on 127.0.0.1:$PGFERRY_CH_HTTP_PORT"

rc=0
echo "== ctest: unit, integration, e2e"
(cd "$ROOT/build" && ctest --output-on-failure -L 'unit|integration|e2e') || rc=1
echo "== PostgreSQL versions 13 to 18 (reduced matrix; 15 ran above) and 12 refused"
bash "$ROOT/tests/matrix/run" --reduced --versions "13 14 16 17 18" || rc=1
echo "== ctest under ASan + UBSan: unit, integration"
(cd "$ROOT/build-asan" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -L 'unit|integration') || rc=1
[ $rc -eq 0 ] && echo "== all tests passed" || echo "== TESTS FAILED"
exit $rc
