#!/usr/bin/env bash
# The demo: local PostgreSQL + ClickHouse, pgferry built and its supervisor running, a sample
# table with a writer that keeps changing it, a snapshot+cdc pipe on it replicating live, then
# the pipe's status and the rows arriving in ClickHouse.
#
#   deploy/dev/demo.sh          start everything (again: reuses what runs)
#   deploy/dev/demo.sh stop     stop the supervisor and both servers
#
# Everything lives in $PGFERRY_DEMO_DIR (default /tmp/pgferry-demo).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${PGFERRY_DEMO_DIR:-/tmp/pgferry-demo}
SERVERS="$ROOT/deploy/dev/servers.sh"
BIN="$ROOT/build/bin"
STATE="$DEMO/state"

daemon_pid() { [ -f "$STATE/pgferryd.lock" ] && head -1 "$STATE/pgferryd.lock" 2>/dev/null || true; }
daemon_running() { local p; p=$(daemon_pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ -S "$STATE/control.sock" ]; }

writer_running() { [ -f "$DEMO/writer.pid" ] && kill -0 "$(cat "$DEMO/writer.pid")" 2>/dev/null; }

if [ "${1:-}" = "stop" ]; then
    if writer_running; then kill -TERM "$(cat "$DEMO/writer.pid")"; fi
    rm -f "$DEMO/writer.pid"
    if daemon_running; then kill -TERM "$(daemon_pid)"; fi
    [ -d "$DEMO/servers" ] && bash "$SERVERS" stop "$DEMO/servers"
    echo "demo stopped (data kept in $DEMO; remove the directory to start afresh)"
    exit 0
fi

bash "$ROOT/deploy/dev/install-deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
mkdir -p "$DEMO"
eval "$(bash "$SERVERS" start "$DEMO/servers")"

psql -X -q -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" <<'SQL'
CREATE TABLE IF NOT EXISTS public.demo_orders (
    id bigserial PRIMARY KEY,
    customer text NOT NULL,
    amount numeric(12,2),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.demo_orders (customer, amount)
SELECT 'customer ' || g, round((random() * 1000)::numeric, 2) FROM generate_series(1, 1000) g
WHERE NOT EXISTS (SELECT 1 FROM public.demo_orders);
SQL

if ! daemon_running; then
    "$BIN/pgferryd" --state-dir "$STATE" >>"$DEMO/pgferryd.log" 2>&1 &
    for _ in $(seq 1 100); do daemon_running && break; sleep 0.1; done
    daemon_running || { tail -20 "$DEMO/pgferryd.log" >&2; echo "pgferryd did not start" >&2; exit 1; }
fi
export PGFERRY_STATE_DIR="$STATE"
state() { "$BIN/pgferryctl" status demo --json 2>/dev/null | sed -n 's/^{"name":"demo","state":"\([A-Za-z]*\)".*/\1/p'; }
if ! "$BIN/pgferryctl" status demo >/dev/null 2>&1; then
    "$BIN/pgferryctl" create demo --source "$PGFERRY_PG_URI" --dest "$PGFERRY_CH_URL" \
        --tables public.demo_orders
fi
for _ in $(seq 1 300); do
    case "$(state)" in
        Provisioning | Setup | Snapshot | "") sleep 0.1 ;;
        *) break ;;
    esac
done

# a writer that keeps the sample table changing: one new order a second, an amount updated and
# now and then an order deleted
if ! writer_running; then
    (
        trap 'exit 0' TERM
        i=0
        while :; do
            i=$((i + 1))
            psql -X -q "$PGFERRY_PG_URI" -c "INSERT INTO public.demo_orders (customer, amount)
                VALUES ('live customer $i', $((i % 500)).25);
              UPDATE public.demo_orders SET amount = amount + 1
                WHERE id = (SELECT min(id) + ($i % 100) FROM public.demo_orders);
              DELETE FROM public.demo_orders WHERE id = (SELECT min(id) FROM public.demo_orders)
                AND $i % 10 = 0" >/dev/null 2>&1 || true
            sleep 1
        done
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$DEMO/writer.pid"
fi

"$BIN/pgferryctl" status demo
counts() {
    echo "  PostgreSQL public.demo_orders: $(psql -XAtq "$PGFERRY_PG_URI" -c 'SELECT count(*), sum(amount) FROM public.demo_orders' | tr '|' ' ')" \
         "   ClickHouse demo.demo_orders_live: $(curl -s "${PGFERRY_CH_URL%/}/" --data-binary 'SELECT count(), sum(amount) FROM demo.demo_orders_live' | tr '\t' ' ')"
}
echo
echo "rows and the sum of amounts on both sides, as the writer changes the table (pgferry applies"
echo "each change within about a second):"
for _ in 1 2 3 4 5; do counts; sleep 2; done
cat <<TXT

The demo runs: the writer keeps changing public.demo_orders and pipe "demo" replicates it live.
Try:
  export PGFERRY_STATE_DIR=$STATE
  $BIN/pgferryctl watch demo
  $BIN/pgferryctl verify demo
  $BIN/pgferryctl metrics --prometheus
Logs: $DEMO/pgferryd.log.  Stop: $0 stop
TXT
