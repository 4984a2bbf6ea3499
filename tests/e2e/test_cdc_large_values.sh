# Large values and bounded memory (issue 11 item 3), against the real servers:
#  - a 200 MB bytea value (PGFERRY_BIG_MB) is loaded, an update of another column of its row
#    (the value unchanged, default replica identity: it is looked up in ClickHouse) applies,
#    and an update of the value itself applies; worker peak RSS is printed for each step and
#    the lookup path stays under 2x the value plus 64 MB;
#  - one transaction writing 50 tables x 10 MB stays under batch_max_bytes in total (peak RSS
#    printed, bounded);
#  - a value whose text form passes PostgreSQL's 1 GB limit stops CDC with a reason that names
#    it, never an endless retry; the snapshot, which reads COPY's binary form, loads it, and
#    stops the same way on a row over 1 GB in binary form.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

MB=${PGFERRY_BIG_MB:-200}
S="lv_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.bigv (id int PRIMARY KEY, note text, b bytea);
  ALTER TABLE $S.bigv ALTER COLUMN b SET STORAGE EXTERNAL;
  CREATE TABLE $S.huge (id int PRIMARY KEY, b bytea);"
for i in $(seq 1 50); do psql_q "CREATE TABLE $S.m$i (id int PRIMARY KEY, pad text)"; done
log "a $MB MB bytea value (random bytes, stored out of line)"
psql_q "INSERT INTO $S.bigv SELECT 1, 'first', (SELECT string_agg(decode(md5(g::text || random()::text), 'hex'), ''::bytea)
        FROM generate_series(1, $MB * 65536) g)"

start_daemon
P=lv
DB="\`${CH_DB_PREFIX}$P\`"
tables="$S.bigv"
for i in $(seq 1 50); do tables="$tables,$S.m$i"; done
create_pipe $P "$tables" >/dev/null
wait_for 180 "pipe $P reaches Running" state_is $P Running

BIGPG="SELECT id, note, octet_length(b), md5(b) FROM $S.bigv"
BIGCH="SELECT id, note, length(b), lower(hex(MD5(b))) FROM $DB.bigv_live"
wait_match 60 "the loaded value" "$BIGPG" "$BIGCH"
# the workers log their peak RSS when they end: the last such line of a role
peak() { grep -o "\[[0-9]* $1 $P\] $1: peak RSS [0-9]* MB" "$TEST_DIR/pgferryd.log" | tail -1 | grep -o '[0-9]* MB$' | cut -d' ' -f1; }
range_peak=$(grep -o "\[[0-9]* snapshot-range $P\] snapshot-range: peak RSS [0-9]* MB" "$TEST_DIR/pgferryd.log" |
    grep -o '[0-9]* MB$' | cut -d' ' -f1 | sort -n | tail -1)
log "range worker loading the $MB MB value: peak RSS $range_peak MB"
# a fresh CDC worker for each measured step: pause (it logs its peak and ends), resume
restart_cdc() {
    "$CTL" pause $P >/dev/null
    wait_for 60 "pipe $P Paused" state_is $P Paused
    "$CTL" resume $P >/dev/null
    wait_for 60 "pipe $P Running" state_is $P Running
}
end_cdc() {
    "$CTL" pause $P >/dev/null
    wait_for 60 "pipe $P Paused" state_is $P Paused
    wait_for 10 "the CDC worker's last log line" bash -c "[ \$(grep -c 'cdc: peak RSS' '$TEST_DIR/pgferryd.log') -gt $1 ]"
    peak cdc
}

log "an update of another column: the $MB MB value is unchanged and looked up in ClickHouse"
restart_cdc
ends=$(grep -c 'cdc: peak RSS' "$TEST_DIR/pgferryd.log")
psql_q "UPDATE $S.bigv SET note = 'second' WHERE id = 1"
wait_match 120 "the row after the update (value kept)" "$BIGPG" "$BIGCH"
lookup_peak=$(end_cdc "$ends")
log "CDC worker, unchanged $MB MB value looked up: peak RSS $lookup_peak MB"
[ "$lookup_peak" -le $((2 * MB + 64)) ] ||
    fail "the CDC worker used $lookup_peak MB for a $MB MB unchanged value (limit 2x + 64 MB)"
state_is $P Paused || fail "the pipe failed"

log "an update of the value itself"
"$CTL" resume $P >/dev/null
wait_for 60 "pipe $P Running" state_is $P Running
ends=$(grep -c 'cdc: peak RSS' "$TEST_DIR/pgferryd.log")
psql_q "UPDATE $S.bigv SET b = b || '\\x00ff'::bytea, note = 'third' WHERE id = 1"
wait_match 120 "the row with the new value" "$BIGPG" "$BIGCH"
value_peak=$(end_cdc "$ends")
log "CDC worker, new $MB MB bytea value in the stream: peak RSS $value_peak MB"

log "one transaction writing 50 tables x 10 MB"
"$CTL" resume $P >/dev/null
wait_for 60 "pipe $P Running" state_is $P Running
ends=$(grep -c 'cdc: peak RSS' "$TEST_DIR/pgferryd.log")
sql="BEGIN;"
for i in $(seq 1 50); do
    sql="$sql INSERT INTO $S.m$i SELECT g, repeat(md5((g * $i)::text), 32) FROM generate_series(1, 10000) g;"
done
psql_q "$sql COMMIT;"
for i in 1 25 50; do
    wait_match 120 "m$i" "SELECT count(*), sum(length(pad)) FROM $S.m$i" \
        "SELECT count(), sum(length(pad)) FROM $DB.m${i}_live"
done
wait_slot_caught_up 60 "pgferry_$P"
multi_peak=$(end_cdc "$ends")
log "CDC worker, 50 tables x 10 MB in one transaction (batch_max_bytes 16 MB): peak RSS $multi_peak MB"
[ "$multi_peak" -le 120 ] || fail "the CDC worker used $multi_peak MB for a 500 MB transaction over 50 tables"
for i in $(seq 1 50); do
    tables_match "SELECT count(*), sum(length(pad)) FROM $S.m$i" \
        "SELECT count(), sum(length(pad)) FROM $DB.m${i}_live" || fail "table m$i differs"
done

log "a bytea over 512 MB (text form over 1 GB): the pipe stops with the reason"
"$CTL" resume $P >/dev/null
wait_for 60 "pipe $P Running" state_is $P Running
H=lvh
create_pipe $H "$S.huge" --mode cdc-only >/dev/null
wait_for 60 "pipe $H reaches Running" state_is $H Running
psql_q "INSERT INTO $S.huge SELECT 1, string_agg(decode(repeat('ab', 1048576), 'hex'), ''::bytea) FROM generate_series(1, 600)"
wait_for 60 "pipe $H Failed" state_is $H Failed
reason=$(pipe_json $H | jq -r .last_error.message)
assert_contains "$reason" "larger than 1 GB"
assert_contains "$reason" "resync the pipe"
assert_eq "$(pipe_json $H | jq -r .worker_restarts)" 0 "no retries of a change that cannot be sent"
log "the snapshot reads that value in COPY's binary form (600 MB, under the limit): it loads"
HS=lvs
create_pipe $HS "$S.huge" --mode snapshot-only >/dev/null
wait_for 180 "pipe $HS Completed" state_is $HS Completed
HDB="\`${CH_DB_PREFIX}$HS\`"
wait_match 60 "the 600 MB value" "SELECT id, octet_length(b), md5(b) FROM $S.huge" \
    "SELECT id, length(b), lower(hex(MD5(b))) FROM $HDB.huge_live"
huge_peak=$(grep -o "\[[0-9]* snapshot-range $HS\] snapshot-range: peak RSS [0-9]* MB" "$TEST_DIR/pgferryd.log" |
    grep -o '[0-9]* MB$' | cut -d' ' -f1 | sort -n | tail -1)
log "range worker loading the 600 MB value: peak RSS $huge_peak MB"
log "a row over 1 GB in binary form (two 600 MB values): the snapshot stops with the reason"
psql_q "CREATE TABLE $S.huge2 (id int PRIMARY KEY, a bytea, b bytea);
  INSERT INTO $S.huge2 SELECT 1, b, b FROM $S.huge"
HS2=lvs2
create_pipe $HS2 "$S.huge2" --mode snapshot-only >/dev/null
wait_for 120 "pipe $HS2 Failed" state_is $HS2 Failed
reason=$(pipe_json $HS2 | jq -r .last_error.message)
assert_contains "$reason" "table $S.huge2"
assert_contains "$reason" "larger than 1 GB"
case "$reason" in *$'\n'*) fail "a reason over several lines: $reason" ;; esac
state_is $P Running || fail "the other pipe was disturbed"
log "peaks (MB): load $range_peak, looked-up value $lookup_peak, streamed value $value_peak, 50 tables $multi_peak, 600 MB load $huge_peak"
log "ok"
