# A snapshot-only pipe copies every row exactly: edge values of many types compared value by
# value with PostgreSQL (floats bit for bit, text forms by md5), a 1 MB value, a partitioned
# table, 2,000,000 generated rows; a SIGKILLed load restarts and ends with every row once;
# the pipe ends Completed and leaves no slot and no session behind.
source "$(dirname "$0")/../lib/common.sh"

S="it_snap_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
export PGOPTIONS="-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex"
psql_q "CREATE EXTENSION IF NOT EXISTS hstore"
psql_q "CREATE SCHEMA $S;
  CREATE TYPE $S.mood AS ENUM ('sad', 'ok');
  CREATE TYPE $S.pair AS (a int, b text);
  CREATE TABLE $S.zoo (id int PRIMARY KEY, b bool, i2 int2, i8 int8, o oid, f4 float4, f8 float8,
    n12 numeric(12,2), n numeric, u uuid, t text, by bytea, j json, jb jsonb, d date, tm time,
    ttz timetz, ts timestamp, tstz timestamptz, iv interval, ip inet, mac macaddr, e $S.mood,
    ai int[], at text[], h hstore, pt point, cp $S.pair, m money);
  INSERT INTO $S.zoo (id) VALUES (1);
  INSERT INTO $S.zoo VALUES (2, true, -32768, -9223372036854775808, 4294967295, 'NaN', '-Infinity',
    -9999999999.99, 'NaN', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    E'tab\\there\\nnewline \\\\ back\\\\slash \\u00e9\\U0001F600 \\x01 ''q'' \"dq\"',
    (SELECT decode(string_agg(lpad(to_hex(g), 2, '0'), ''), 'hex') FROM generate_series(0, 255) g),
    '{\"a\": [1, 2.50, null]}', '{\"b\": {\"c\": true}}', '4713-01-01 BC', '24:00:00', '23:59:59.999999+13:30',
    '0001-01-01 00:00:00.000001', '-infinity', '-178000000 years 3 mons -1 days 00:00:00.000001', '::1/128',
    '08:00:2b:01:02:03', 'ok', '{{1,NULL},{3,4}}', '{\"a,b\",NULL,\"\",\"x\\\\\\\\y\"}', 'a=>1, \"b c\"=>NULL',
    '(1.5,-2)', '(7,\"x, y\")', -92233720368547758.08);
  INSERT INTO $S.zoo (id, f4, f8, n12, n, d, ts, tstz, t, by) VALUES
    (3, '1.4e-45', '5e-324', 0.01, (repeat('9', 500) || '.' || repeat('1', 500))::numeric, 'infinity',
     '294276-12-31 23:59:59.999999', '2026-11-21 22:45:01.123456+05', '', ''),
    (4, '3.4028235e38', '1.23456789e-295', 0, '-0.0000000000000000000001', '1970-01-01',
     'infinity', '1969-12-31 23:59:59.5+00', repeat('x', 1048576), '\\x00');
  CREATE TABLE $S.parted (id int, d date, v text, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);
  CREATE TABLE $S.p1 PARTITION OF $S.parted FOR VALUES FROM ('2000-01-01') TO ('2050-01-01');
  CREATE TABLE $S.p2 PARTITION OF $S.parted FOR VALUES FROM ('2050-01-01') TO ('2100-01-01');
  INSERT INTO $S.parted SELECT g, DATE '2000-01-01' + g * 10, 'v' || g FROM generate_series(1, 3000) g;
  CREATE TABLE $S.big (id bigint PRIMARY KEY, v text, x numeric(12,2), f float8);
  INSERT INTO $S.big SELECT g, md5(g::text), g / 100.0, g * 1.1 FROM generate_series(1, 2000000) g;
  CREATE TABLE $S.empty (id int PRIMARY KEY);
  CREATE DOMAIN $S.posint AS int CHECK (VALUE > 0);
  CREATE TABLE $S.zoo2 (id int PRIMARY KEY, net cidr, m8 macaddr8, dm $S.posint, tv tsvector,
    ea int[], ch char(5), vc varchar(10), x xml, tm time, ri int4range);
  INSERT INTO $S.zoo2 VALUES (1, '10.1.0.0/16', '08:00:2b:01:02:03:04:05', 42,
    to_tsvector('simple', 'the quick brown fox'), '{}', 'ab', 'xyz', '<a b=''1''>t</a>', '00:00:00.000001', '[1,10)'),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'empty');
  CREATE TABLE $S.wide (id int PRIMARY KEY $(for i in $(seq 1 99); do printf ', c%d int' "$i"; done));
  INSERT INTO $S.wide SELECT g $(for i in $(seq 1 99); do printf ', g + %d' "$i"; done) FROM generate_series(1, 1000) g;
  CREATE TABLE $S.later (id int PRIMARY KEY, v text);
  INSERT INTO $S.later VALUES (1, 'before'), (2, 'before'), (3, 'before');"

start_daemon --backoff-initial-ms 300
create_pipe snap "$S.zoo,$S.parted,$S.big,$S.empty,$S.zoo2,$S.wide" --mode snapshot-only \
    --rows-per-range 1000000 >/dev/null
DB="${CH_DB_PREFIX}snap"
coord_pid() { pipe_json "$1" | jq -r '[.workers[] | select(.role == "snapshot") | .pid][0] // empty'; }

# A 2-core CI machine loads a range in about a second, too quickly to catch by polling. So a
# range worker is frozen (SIGSTOP) the moment it reports rows of the big table; it counts as in
# the middle of its range only if it had not logged the range done by then (a frozen worker cannot
# log later). freeze_busy PIPE sets FROZEN_PID and FROZEN_JSON (the status that showed it busy)
# and MOST_WORKERS (the most range workers seen at once).
busy_pid() { jq -r '[.workers[] | select(.role == "snapshot-range" and (.activity | test("big blocks [0-9]+-[0-9a-z]+: [0-9]+ rows"))) | .pid][0] // empty' <<<"$1"; }
freeze_busy() {
    local pipe=$1 j n wpid
    MOST_WORKERS=0
    for _ in $(seq 1 1000); do
        j=$(pipe_json "$pipe")
        n=$(jq -r '[.workers[] | select(.role == "snapshot-range")] | length' <<<"$j")
        [ "$n" -gt "$MOST_WORKERS" ] && MOST_WORKERS=$n
        wpid=$(busy_pid "$j")
        if [ -z "$wpid" ]; then
            [ "$(jq -r .state <<<"$j")" = Completed ] && return 1
            sleep 0.02
            continue
        fi
        # (a range worker loads range after range: it is busy if it reported no Done since)
        local before
        before=$(grep -c "\[$wpid snapshot-range $pipe\] snapshot-range done" "$TEST_DIR/pgferryd.log" || true)
        kill -STOP "$wpid" 2>/dev/null || continue
        sleep 0.3
        if [ "$(grep -c "\[$wpid snapshot-range $pipe\] snapshot-range done" "$TEST_DIR/pgferryd.log" || true)" != "$before" ] ||
            ! pipe_json "$pipe" | jq -e --argjson p "$wpid" '.workers[] | select(.pid == $p) | .activity | test("big blocks")' >/dev/null; then
            kill -CONT "$wpid" 2>/dev/null || true # it had finished: not in the middle
            continue
        fi
        FROZEN_PID=$wpid
        FROZEN_JSON=$j
        return 0
    done
    return 1
}

# kill a range worker in the middle of the big table (progress comes every 100,000 rows of a
# 1,000,000-row range): its range is loaded again, and FINAL shows every row once. The load's
# shape is checked while the worker is frozen.
freeze_busy snap || fail "the load finished before a range worker could be interrupted"
wpid=$FROZEN_PID
j=$FROZEN_JSON
most_workers=$MOST_WORKERS
[ "$most_workers" -ge 2 ] || fail "no parallel range workers"
[ "$(jq -r '.snapshot.ranges_total' <<<"$j")" -gt 4 ] || fail "the load was not split into ranges: $(jq -c .snapshot <<<"$j")"
# per-table progress: the big table has several ranges, the zoo one, and the sums add up
[ "$(jq -r '.tables[] | select(.table == "big") | .snapshot.ranges_total' <<<"$j")" -gt 1 ] || fail "no per-table ranges: $(jq -c '.tables[] | {table, snapshot}' <<<"$j")"
assert_eq "$(jq -r '.tables[] | select(.table == "zoo") | .snapshot.ranges_total' <<<"$j")" 1 "zoo is one range"
assert_eq "$(jq -r '[.tables[].snapshot.ranges_total] | add' <<<"$j")" "$(jq -r .snapshot.ranges_total <<<"$j")" "per-table ranges add up"
assert_contains "$("$CTL" status snap)" "ranges loaded," "text status shows table progress"
state_is snap Snapshot || fail "the pipe left Snapshot while a range was frozen: $(pipe_state snap)"
kill -KILL "$wpid"
killed_seen() { pipe_json snap | jq -r '.history[].reason' | grep -q "worker pid $wpid killed by signal 9"; }
wait_for 10 "the kill is in the history" killed_seen
wait_for 120 "pipe snap completes" state_is snap Completed
j=$(pipe_json snap)
assert_contains "$(jq -r '.history | map(.to) | join(",")' <<<"$j")" "Setup,Snapshot,Snapshot,Completed" "history with the restart"
assert_contains "$(jq -r '.history[-1].reason' <<<"$j")" "2004006 rows in" "done reason"
assert_contains "$(jq -r '.history[].reason' <<<"$j")" "killed by signal 9" "the kill is in the history"

# counts: every row once under FINAL (the live view); the interrupted range may have left a
# partial first attempt in the raw table, which FINAL collapses
for t in zoo parted big empty zoo2 wide; do
    pg=$(psql_q "SELECT count(*) FROM $S.$t")
    assert_eq "$(ch_q "SELECT count() FROM \`$DB\`.\`${t}_live\`")" "$pg" "live rows in $t"
    [ "$(ch_q "SELECT count() FROM \`$DB\`.\`$t\`")" -ge "$pg" ] || fail "rows missing in raw $t"
done
assert_eq "$(ch_q "SELECT count() FROM (SELECT id FROM \`$DB\`.big FINAL GROUP BY id HAVING count() > 1)")" 0 "no key twice under FINAL"
# the values: under FINAL (the raw table may hold the killed attempt's blocks a second time)
assert_eq "$(ch_q "SELECT sum(id), sum(x), uniqExact(v) FROM \`$DB\`.big FINAL FORMAT TSV")" \
    "$(psql_q "SELECT sum(id), sum(x), count(DISTINCT v) FROM $S.big" | tr '|' '\t')" "big table sums"
assert_eq "$(ch_q "SELECT max(_pgferry_version), max(_pgferry_is_deleted) FROM \`$DB\`.big FORMAT TSV")" "0	0" "snapshot rows carry version 0"

# every value of the zoo, in a canonical form on both sides
# floats: IEEE bytes, big-endian hex without leading zero bytes (18.16's reinterpretAsFixedString
# drops them); other columns through their output functions, as COPY prints them
fb() { echo "regexp_replace(encode($1, 'hex'), '^(00)+', '')"; }
pgcanon="SELECT id, b::int, i2, i8, o, $(fb 'float4send(f4)'), $(fb 'float8send(f8)'),
  n12, md5(n::text), u, md5(t), encode(by, 'hex'), md5(j::text), md5(jb::text), d, tm,
  ttz, ts, tstz, iv, ip, mac, e, md5(ai::text),
  md5(at::text), md5(h::text), pt, md5(cp::text), md5(m::text) FROM $S.zoo ORDER BY id"
f() { echo "if(isNull($1), NULL, lower(hex(reverse(reinterpretAsFixedString(assumeNotNull($1))))))"; }
h() { echo "lower(hex(MD5($1)))"; }
chcanon="SELECT id, b, i2, i8, o, $(f f4), $(f f8), n12, $(h n), u, $(h t), lower(hex(by)), $(h j),
  $(h jb), d, tm, ttz, ts, tstz, iv, ip, mac, e, $(h ai), $(h at), $(h h), pt, $(h cp), $(h m)
  FROM \`$DB\`.zoo_live ORDER BY id FORMAT TSV"
psql -X -q -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" -c "COPY ($pgcanon) TO STDOUT" >"$TEST_DIR/pg.tsv"
ch_q "$chcanon" >"$TEST_DIR/ch.tsv"
if ! diff "$TEST_DIR/pg.tsv" "$TEST_DIR/ch.tsv" >"$TEST_DIR/diff.txt"; then
    fail "zoo values differ (< PostgreSQL, > ClickHouse):
$(head -20 "$TEST_DIR/diff.txt")"
fi
[ "$(wc -l <"$TEST_DIR/pg.tsv")" -eq 4 ] || fail "zoo comparison compared nothing"
assert_eq "$(ch_q "SELECT length(t) FROM \`$DB\`.zoo WHERE id = 4")" 1048576 "1 MB value"
# the rest of the types, through their output functions
psql -X -q -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" -c "COPY (SELECT id, net, m8, dm, md5(tv::text), ea, ch, vc, md5(x::text), tm, ri FROM $S.zoo2 ORDER BY id) TO STDOUT" >"$TEST_DIR/pg2.tsv"
ch_q "SELECT id, net, m8, dm, lower(hex(MD5(tv))), ea, ch, vc, lower(hex(MD5(x))), tm, ri FROM \`$DB\`.zoo2_live ORDER BY id FORMAT TSV" >"$TEST_DIR/ch2.tsv"
diff "$TEST_DIR/pg2.tsv" "$TEST_DIR/ch2.tsv" >"$TEST_DIR/diff2.txt" || fail "zoo2 values differ: $(cat "$TEST_DIR/diff2.txt")"
assert_eq "$(ch_q "SELECT sum(c99) FROM \`$DB\`.wide")" "$(psql_q "SELECT sum(c99) FROM $S.wide")" "100-column table"

# consistency: changes committed while the load runs are not in it, also in a table read later
# (every table is read in the one exported snapshot)
create_pipe consistent "$S.big,$S.later" --mode snapshot-only --rows-per-range 1000000 >/dev/null
freeze_busy consistent || fail "the third load finished before it could be caught under way"
psql_q "UPDATE $S.big SET v = 'changed' WHERE id IN (1, 1999999);
  DELETE FROM $S.big WHERE id = 2;
  INSERT INTO $S.big VALUES (3000000, 'new', 0, 0);
  UPDATE $S.later SET v = 'after' WHERE id = 1; DELETE FROM $S.later WHERE id = 2;
  INSERT INTO $S.later VALUES (4, 'after')"
kill -CONT "$FROZEN_PID"
wait_for 120 "pipe consistent completes" state_is consistent Completed
assert_eq "$(ch_q "SELECT count(), countIf(v = 'changed'), countIf(id = 2), countIf(id = 3000000) FROM \`${CH_DB_PREFIX}consistent\`.big_live FORMAT TSV")" \
    "2000000	0	1	0" "the load is the snapshot, not what came after"
assert_eq "$(ch_q "SELECT count() FROM \`${CH_DB_PREFIX}consistent\`.big FINAL")" 2000000 "rows under FINAL"
assert_eq "$(ch_q "SELECT groupArray(concat(toString(id), '=', v)) FROM (SELECT id, v FROM \`${CH_DB_PREFIX}consistent\`.later ORDER BY id)")" \
    "['1=before','2=before','3=before']" "a table read later is from the same snapshot"

# killing the coordinator loses the exported snapshot: every range worker stops, and a new
# coordinator starts over only when they are gone, so even the raw table ends exact
create_pipe coordkill "$S.big" --mode snapshot-only --rows-per-range 1000000 >/dev/null
freeze_busy coordkill || fail "the fourth load finished before its coordinator could be killed"
cpid=$(coord_pid coordkill)
[ -n "$cpid" ] || fail "no coordinator to kill"
kill -KILL "$cpid"
kill -CONT "$FROZEN_PID"
wait_for 120 "pipe coordkill completes" state_is coordkill Completed
assert_eq "$(ch_q "SELECT count() FROM \`${CH_DB_PREFIX}coordkill\`.big")" "$(psql_q "SELECT count(*) FROM $S.big")" "raw rows after a full restart"
# no worker outlives the load (the one that loaded the last range, when the load ended before
# the coordinator's death was seen, used to wait for a next range until pgferryd stopped)
wait_for 15 "no worker of coordkill left" bash -c "[ -z \"\$('$CTL' status coordkill --json | jq -r '.workers[].pid')\" ]"

# dropping a pipe in the middle of its load stops its workers; sessions and slot go with them
create_pipe dropme "$S.big" --mode snapshot-only --rows-per-range 1000000 >/dev/null
freeze_busy dropme || fail "the second load finished before it could be dropped"
dpids=$(worker_pids dropme | tr '\n' ' ')
[ -n "$dpids" ] || fail "no workers to stop"
# the frozen worker goes on once the drop has asked it to stop
"$CTL" drop dropme >/dev/null &
drop_pid=$!
sleep 0.5
kill -CONT "$FROZEN_PID" 2>/dev/null || true
wait "$drop_pid" || fail "drop failed"
for dpid in $dpids; do
    wait_for 15 "dropped pipe's worker $dpid gone" bash -c "! kill -0 $dpid 2>/dev/null"
    grep -q "worker dropme/snapshot[-a-z]* pid $dpid .* after stop" "$TEST_DIR/pgferryd.log" || fail "worker $dpid was not stopped by the drop"
done

# nothing left behind: no temporary slot, no pgferry session
assert_eq "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgferry_snap_%'")" 0 "temporary slot gone"
wait_for 10 "no pgferry sessions" bash -c "[ \"\$(psql -XAtq '$PGFERRY_PG_URI' -c \"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgferry%'\")\" = 0 ]"
[ -z "$(worker_pids snap)" ] || fail "a Completed pipe has a worker"

stop_daemon || fail "pgferryd exited non-zero"
log "ok"
