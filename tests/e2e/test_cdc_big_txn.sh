# A 1,000,000-row transaction is applied with bounded memory (issue 4): the CDC worker inserts
# it in pieces as it arrives, its peak resident set (VmHWM) stays under 100 MB, one worker applies
# it without a restart, every row arrives exactly once, and the slot then confirms its commit.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="bigtxn_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S; CREATE TABLE $S.big (id bigint PRIMARY KEY, v int, t text);"
start_daemon
create_pipe big "$S.big" >/dev/null
wait_for 60 "pipe big reaches Running" state_is big Running
wait_for 10 "CDC worker" bash -c "[ -n \"\$('$CTL' status big --json | jq -r '.workers[] | select(.role == \"cdc\") | .pid')\" ]"
pid=$(pipe_json big | jq -r '.workers[] | select(.role == "cdc") | .pid')

t0=$(date +%s)
psql_q "INSERT INTO $S.big SELECT g, g % 1000, 'row number ' || g FROM generate_series(1, 1000000) g"
wait_for 300 "1,000,000 rows in ClickHouse" bash -c \
    "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM \`${CH_DB_PREFIX}big\`.big')\" = 1000000 ]"
log "applied in $(($(date +%s) - t0)) s (including the insert in PostgreSQL)"
wait_slot_caught_up 60 pgferry_big
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
log "CDC worker peak RSS: $((hwm_kb / 1024)) MB"
[ "$hwm_kb" -lt $((100 * 1024)) ] || fail "CDC worker peak RSS $((hwm_kb / 1024)) MB (limit 100 MB)"
assert_eq "$(pipe_json big | jq -r '.workers[] | select(.role == "cdc") | .pid')" "$pid" \
    "one worker applied it all (no restart)"
assert_eq "$(ch_q "SELECT count(), sum(v), sum(length(t)) FROM \`${CH_DB_PREFIX}big\`.big_live")" \
    "$(psql_tsv "SELECT count(*), sum(v), sum(length(t)) FROM $S.big")" "contents"
no_duplicates "\`${CH_DB_PREFIX}big\`.big" id
"$CTL" drop big --drop-destination >/dev/null
log "PASS"
