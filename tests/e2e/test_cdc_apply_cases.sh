# CDC cases of issue 11 item 3 against the real servers:
#  - TRUNCATE of one leaf partition removes exactly that partition's rows, with the pipe's own
#    publication and with a user publication on the parent (both publish partitions as
#    themselves); a TRUNCATE of every partition empties the table;
#  - a paused pipe resumed after ADD COLUMN x, rows, DROP COLUMN x applies both in order (the
#    definition comes from the stream, not today's catalog);
#  - after a pause the stored counters include everything applied, and the stored position is
#    never 0/0 and never goes backwards, also while a first transaction takes long.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="ac_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE; DROP PUBLICATION IF EXISTS ${S}_pub"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.pt (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
  CREATE TABLE $S.pt_eu PARTITION OF $S.pt FOR VALUES IN ('eu');
  CREATE TABLE $S.pt_us PARTITION OF $S.pt FOR VALUES IN ('us');
  CREATE TABLE $S.pt_ap PARTITION OF $S.pt FOR VALUES IN ('ap');
  CREATE TABLE $S.up (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
  CREATE TABLE $S.up_eu PARTITION OF $S.up FOR VALUES IN ('eu');
  CREATE TABLE $S.up_us PARTITION OF $S.up FOR VALUES IN ('us');
  CREATE TABLE $S.sc (id int PRIMARY KEY, a text);
  CREATE TABLE $S.cnt (id int PRIMARY KEY, v int);
  INSERT INTO $S.pt SELECT g, (ARRAY['eu','us','ap'])[g % 3 + 1], 'p' || g FROM generate_series(1, 300) g;
  INSERT INTO $S.up SELECT g, (ARRAY['eu','us'])[g % 2 + 1], 'u' || g FROM generate_series(1, 200) g;
  INSERT INTO $S.sc SELECT g, 'a' || g FROM generate_series(1, 10) g;
  CREATE PUBLICATION ${S}_pub FOR TABLE $S.up;"

start_daemon
P=ac
DB="\`${CH_DB_PREFIX}$P\`"
create_pipe $P "$S.pt,$S.sc,$S.cnt" >/dev/null
U=acu
DBU="\`${CH_DB_PREFIX}$U\`"
create_pipe $U "$S.up" --publication "${S}_pub" >/dev/null
wait_for 60 "pipe $P reaches Running" state_is $P Running
wait_for 60 "pipe $U reaches Running" state_is $U Running
assert_eq "$(psql_q "SELECT pubviaroot FROM pg_publication WHERE pubname = 'pgferry_$P'")" f \
    "the pipe's publication publishes partitions as themselves"
assert_eq "$(ch_q "SELECT count() FROM system.columns WHERE database = '${CH_DB_PREFIX}$P' AND table = 'pt' AND name = '_pgferry_partition'")" 1 \
    "a partitioned source's destination has the partition column"

PTPG="SELECT id, region, v FROM $S.pt ORDER BY id, region"
PTCH="SELECT id, region, v FROM $DB.pt_live ORDER BY id, region"
UPPG="SELECT id, region, v FROM $S.up ORDER BY id, region"
UPCH="SELECT id, region, v FROM $DBU.up_live ORDER BY id, region"

log "TRUNCATE of one partition (the pipe's publication), with rows moved between partitions first"
psql_q "UPDATE $S.pt SET region = 'eu' WHERE id IN (2, 5) AND region = 'ap';
  UPDATE $S.pt SET region = 'ap' WHERE id = 3 AND region = 'eu';
  BEGIN; INSERT INTO $S.pt VALUES (1000, 'ap', 'before'); TRUNCATE $S.pt_ap;
         INSERT INTO $S.pt VALUES (1001, 'ap', 'after'), (1002, 'us', 'after'); COMMIT;"
wait_match 60 "pt after TRUNCATE pt_ap" "$PTPG" "$PTCH"
assert_eq "$(psql_q "SELECT count(*) FROM $S.pt")" \
    "$(ch_q "SELECT count() FROM $DB.pt_live")" "row counts"
no_duplicates "$DB.pt" "id, region"

log "TRUNCATE of one partition (a user publication on the parent)"
psql_q "TRUNCATE $S.up_us; INSERT INTO $S.up VALUES (5000, 'us', 'new us')"
wait_match 60 "up after TRUNCATE up_us" "$UPPG" "$UPCH"
assert_eq "$(ch_q "SELECT count() FROM $DBU.up_live WHERE region = 'eu'")" 100 \
    "the other partition's rows stay"

log "TRUNCATE of the partitioned table (every partition) empties it"
psql_q "TRUNCATE $S.pt; INSERT INTO $S.pt VALUES (1, 'eu', 'fresh')"
wait_match 60 "pt after TRUNCATE pt" "$PTPG" "$PTCH"
grep -q "truncated \`${CH_DB_PREFIX}$P\`.\`pt\`" "$TEST_DIR/pgferryd.log" ||
    fail "a TRUNCATE of every partition did not truncate the destination table"

log "ADD COLUMN, rows, DROP COLUMN while the pipe is paused"
"$CTL" pause $P >/dev/null
wait_for 30 "pipe $P Paused" state_is $P Paused
psql_q "ALTER TABLE $S.sc ADD COLUMN x int;
  INSERT INTO $S.sc VALUES (100, 'with x', 42);
  UPDATE $S.sc SET x = 7, a = 'x set' WHERE id = 1;
  ALTER TABLE $S.sc DROP COLUMN x;
  INSERT INTO $S.sc VALUES (101, 'after drop');
  ALTER TABLE $S.sc ADD COLUMN y text DEFAULT 'dflt';
  INSERT INTO $S.sc VALUES (102, 'with y', 'yy');"
"$CTL" resume $P >/dev/null
wait_for 30 "pipe $P Running" state_is $P Running
wait_match 60 "sc after the schema changes" \
    "SELECT id, a, coalesce(y, '<null>') FROM $S.sc ORDER BY id" \
    "SELECT id, a, ifNull(y, '<null>') FROM $DB.sc_live ORDER BY id"
assert_eq "$(ch_q "SELECT x FROM $DB.sc FINAL WHERE id = 100")" 42 \
    "the value of the column added and dropped while paused"
hist=$(pipe_json $P | jq -r '.history[].reason')
assert_contains "$hist" "column x added as Nullable(Int32)"
assert_contains "$hist" "column x dropped at the source"
state_is $P Running || fail "the pipe did not stay Running"

log "counters and position after a pause; the position never 0/0 nor backwards"
# a new CDC worker whose first transaction takes seconds to stream (it used to report 0/0)
"$CTL" pause $P >/dev/null
wait_for 30 "pipe $P Paused" state_is $P Paused
"$CTL" resume $P >/dev/null
wait_for 30 "pipe $P Running" state_is $P Running
before_ins=$(pipe_json $P | jq -r '[.tables[] | select(.target == "cnt") | .inserts] | add // 0')
watch_pos() {
    local last="" cur
    while [ -e "$TEST_DIR/watching" ]; do
        cur=$("$CTL" status $P --json 2>/dev/null | jq -r '.cdc.confirmed_lsn // ""')
        [ -n "$cur" ] && echo "$cur" >>"$TEST_DIR/positions"
        sleep 0.05
    done
}
touch "$TEST_DIR/watching"
watch_pos &
WPID=$!
CLEANUP_PIDS+=("$WPID")
# a first transaction that takes a few seconds to stream, then a burst, then a pause
psql_q "INSERT INTO $S.cnt SELECT g, g FROM generate_series(1, 300000) g"
# (on a busy machine it can take longer to stream than the burst takes: it lands first)
wait_for 60 "the large transaction applied" bash -c "[ \"\$(curl -s '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() >= 300000 FROM $DB.cnt_live')\" = 1 ]"
for i in $(seq 1 20); do psql_q "INSERT INTO $S.cnt VALUES (1000000 + $i, $i)"; done
"$CTL" pause $P >/dev/null
wait_for 30 "pipe $P Paused" state_is $P Paused
rm -f "$TEST_DIR/watching"
wait $WPID || true
after_ins=$(pipe_json $P | jq -r '[.tables[] | select(.target == "cnt") | .inserts] | add // 0')
in_ch=$(ch_q "SELECT count() FROM $DB.cnt_live")
log "paused with $in_ch of 300020 rows applied (a pause ends the batch in flight, not the stream)"
[ "$in_ch" -ge 300000 ] || fail "the large transaction was not applied before the pause"
assert_eq "$((after_ins - before_ins))" "$in_ch" \
    "inserts counted for the table once Paused shows = rows in ClickHouse"
pos=$(pipe_json $P | jq -r .cdc.confirmed_lsn)
slot=$(psql_q "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgferry_$P'")
assert_eq "$pos" "$slot" "the stored position is the slot's after the pause"
! grep -qx '0/0' "$TEST_DIR/positions" || fail "status showed position 0/0"
prev=""
while read -r lsn; do
    if [ -n "$prev" ] && [ "$(psql_q "SELECT '$lsn'::pg_lsn < '$prev'::pg_lsn")" = t ]; then
        fail "the stored position went backwards: $prev then $lsn"
    fi
    prev=$lsn
done < <(uniq "$TEST_DIR/positions")
log "$(uniq "$TEST_DIR/positions" | wc -l) distinct positions seen, none 0/0 or backwards"
"$CTL" resume $P >/dev/null
wait_for 30 "pipe $P Running" state_is $P Running
wait_for 30 "every row of cnt" bash -c "[ \"\$(curl -s '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM $DB.cnt_live')\" = 300020 ]"
wait_for 10 "the counters catch up" bash -c "[ \"\$($CTL status $P --json | jq '[.tables[] | select(.target == \"cnt\") | .inserts] | add')\" = $((before_ins + 300020)) ]"
log "a column added and renamed before the stream brings the addition (found by tests/nemesis)"
"$CTL" pause $P >/dev/null
wait_for 30 "pipe $P Paused" state_is $P Paused
psql_q "ALTER TABLE $S.sc ADD COLUMN z int;
  UPDATE $S.sc SET z = id * 10 WHERE id <= 5;
  ALTER TABLE $S.sc RENAME COLUMN z TO z2;
  UPDATE $S.sc SET z2 = z2 + 1 WHERE id <= 3;"
"$CTL" resume $P >/dev/null
wait_for 30 "pipe $P Running" state_is $P Running
wait_match 60 "sc with the renamed new column" \
    "SELECT id, coalesce(z2::text, '<null>') FROM $S.sc ORDER BY id" \
    "SELECT id, ifNull(toString(z), '<null>') FROM $DB.sc FINAL WHERE _pgferry_is_deleted = 0 ORDER BY id"
assert_contains "$(pipe_json $P | jq -r '.history[].reason')" "column z renamed to z2"

log "verify after a DROP COLUMN that no row change followed yet"
psql_q "ALTER TABLE $S.sc DROP COLUMN y"
out=$("$CTL" --timeout 120000 verify $P --table "$S.sc") || fail "verify: $out"
assert_contains "$out" "not compared: column y"
assert_contains "$out" "match"
log "ok"
