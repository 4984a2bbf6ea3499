# A real Prometheus server (Debian's prometheus package) scrapes pgferryd's /metrics endpoint;
# the pipe's lag series and its state show up in Prometheus's query API (issue 6).
source "$(dirname "$0")/../lib/common.sh"

command -v prometheus >/dev/null || fail "prometheus is not installed (deploy/dev/install-deps.sh installs it)"
S="prom_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.t (id int PRIMARY KEY, v text);
  INSERT INTO $S.t SELECT g, 'v' FROM generate_series(1, 100) g;"
MPORT=$(free_port)
start_daemon --metrics-listen "127.0.0.1:$MPORT"
create_pipe prom "$S.t" >/dev/null
wait_for 60 "pipe prom reaches Running" state_is prom Running
wait_for 20 "lag gauge exposed" bash -c "curl -sS http://127.0.0.1:$MPORT/metrics | grep -q '^pgferry_lag_bytes{pipe=\"prom\"}'"

cat >"$TEST_DIR/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pgferry
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
YML
promtool check config "$TEST_DIR/prometheus.yml" >/dev/null || fail "promtool rejects the scrape config"
# Prometheus on a free port; another port if something took it first (it exits on a failed bind)
prom_ready() { curl -sS -o /dev/null --fail "http://127.0.0.1:$PPORT/-/ready"; }
started=0
for attempt in 1 2 3 4 5; do
    PPORT=$(free_port)
    prometheus --config.file="$TEST_DIR/prometheus.yml" --storage.tsdb.path="$TEST_DIR/tsdb" \
        --web.listen-address="127.0.0.1:$PPORT" >"$TEST_DIR/prometheus.log" 2>&1 &
    PROM=$!
    CLEANUP_PIDS+=($PROM)
    for _ in $(seq 1 100); do
        prom_ready 2>/dev/null && { started=1; break; }
        kill -0 "$PROM" 2>/dev/null || break
        sleep 0.2
    done
    [ $started = 1 ] && break
    log "Prometheus did not start on port $PPORT (attempt $attempt): $(tail -1 "$TEST_DIR/prometheus.log")"
    kill -KILL "$PROM" 2>/dev/null || true
    wait "$PROM" 2>/dev/null || true
done
[ $started = 1 ] || fail "Prometheus did not start: $(tail -3 "$TEST_DIR/prometheus.log")"
q() { curl -sS --get "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1"; }
has_series() { [ "$(q "$1" | jq -r '.data.result | length')" -ge 1 ]; }
wait_for 60 "Prometheus has the pipe's lag series" has_series 'pgferry_lag_bytes{pipe="prom"}'
wait_for 30 "Prometheus has the pipe's state" has_series 'pgferry_pipe_state{pipe="prom",state="Running"} == 1'
assert_eq "$(q 'up{job="pgferry"}' | jq -r '.data.result[0].value[1]')" 1 "scrape target up"
psql_q "INSERT INTO $S.t VALUES (1000, 'new')"
wait_for 30 "the insert counted in Prometheus" \
    has_series 'pgferry_rows_total{pipe="prom",table="t",op="insert"} == 1'
"$CTL" drop prom >/dev/null
log "PASS"
