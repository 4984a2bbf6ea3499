# Wide tables and constraint changes (issue 23 items 3 and 4): a table of 400 columns with
# 32-character names and one of 1600 short columns (PostgreSQL's limit) load, stream inserts,
# updates and deletes (an update that leaves 420 TOASTed values unchanged, too), verify clean
# and equal PostgreSQL value for value; DROP NOT NULL followed by a NULL keeps the pipe Running
# (the column becomes Nullable in ClickHouse), and one on an ordering-key column fails naming
# the way out. (An HTTP error with an empty reply: tests/unit/test_chclient.c.)
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="wide_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"

# long NAME: a 32-character column name; short: c1..c1599
long() { printf 'col_%028d' "$1"; }
cols400="" pg400="" ch400=""
for i in $(seq 1 399); do
    n=$(long "$i")
    if [ $((i % 3)) = 0 ]; then cols400+=", $n text"; else cols400+=", $n int"; fi
    pg400+=", coalesce($n::text, '<null>')"
    ch400+=", ifNull(toString($n), '<null>')"
done
cols1600="" pg1600="" ch1600=""
# ClickHouse 18.16 buffers about 2 MB per column file in an insert (a Nullable column has two):
# under the test server's max_memory_usage (4 GB) every 20th column is nullable (see Limits)
for i in $(seq 1 1599); do
    if [ $((i % 20)) = 0 ]; then cols1600+=", c$i int"; else cols1600+=", c$i int NOT NULL"; fi
    pg1600+=", coalesce(c$i::text, '<null>')"
    ch1600+=", ifNull(toString(c$i), '<null>')"
done
# wt: 420 text columns of 32-character names, 96-byte values all TOASTed out of line (the row is
# over 2 KB): an update that leaves them unchanged needs a lookup of all 420 in ClickHouse, whose
# column list takes 18 KB of URL
colst="" pgt="" cht="" valt=""
for i in $(seq 1 420); do
    n=$(long "$i")
    colst+=", $n text"
    pgt+=", md5($n)"
    cht+=", lower(hex(MD5($n)))"
    valt+=", md5(random()::text) || md5(random()::text) || md5(random()::text)"
done
# values of row g: ints g*i (NULL where (g+i) % 7 = 0), texts 'v<g>_<i>'
vals400() {
    local g=$1 i v=""
    for i in $(seq 1 399); do
        if [ $(((g + i) % 7)) = 0 ]; then v+=", NULL"
        elif [ $((i % 3)) = 0 ]; then v+=", 'v${g}_$i'"
        else v+=", $((g * i))"; fi
    done
    echo "($g$v)"
}
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.w400 (id int PRIMARY KEY$cols400);
  CREATE TABLE $S.w1600 (id int PRIMARY KEY$cols1600);
  CREATE TABLE $S.wt (id int PRIMARY KEY, n int$colst);
  CREATE TABLE $S.nn (id int PRIMARY KEY, c int NOT NULL, t text NOT NULL);
  CREATE TABLE $S.ob (id int PRIMARY KEY, c int NOT NULL, v text);
  ALTER TABLE $S.ob REPLICA IDENTITY FULL;
  INSERT INTO $S.nn SELECT g, g, 't' || g FROM generate_series(1, 20) g;
  INSERT INTO $S.ob SELECT g, g, 'v' || g FROM generate_series(1, 20) g;"
rows=""
for g in $(seq 1 40); do rows+="${rows:+, }$(vals400 "$g")"; done
psql_q "INSERT INTO $S.w400 VALUES $rows"
# 1600 columns built by PostgreSQL itself (nullable ones NULL where (g+i) % 11 = 0)
sel=""
for i in $(seq 1 1599); do
    if [ $((i % 20)) = 0 ]; then sel+=", CASE WHEN (g + $i) % 11 = 0 THEN NULL ELSE g * $i END"
    else sel+=", g * $i"; fi
done
psql_q "INSERT INTO $S.w1600 SELECT g$sel FROM generate_series(1, 30) g"
psql_q "INSERT INTO $S.wt SELECT g, 0$valt FROM generate_series(1, 3) g"

start_daemon
create_pipe wide "$S.w400,$S.w1600,$S.wt,$S.nn" >/dev/null
DB="\`${CH_DB_PREFIX}wide\`"
wait_for 120 "pipe wide Running" state_is wide Running
err=$(pipe_json wide | jq -r '.last_error.message // ""')
[ -z "$err" ] || log "last error on the way: $err"

PG400="SELECT id$pg400 FROM $S.w400 ORDER BY id"
CH400="SELECT id$ch400 FROM $DB.w400_live ORDER BY id"
PG1600="SELECT id$pg1600 FROM $S.w1600 ORDER BY id"
CH1600="SELECT id$ch1600 FROM $DB.w1600_live ORDER BY id"
wait_match 60 "w400 after the load" "$PG400" "$CH400"
wait_match 60 "w1600 after the load" "$PG1600" "$CH1600"

log "CDC: inserts, updates, deletes on both wide tables"
rows=""
for g in $(seq 41 60); do rows+="${rows:+, }$(vals400 "$g")"; done
psql_q "INSERT INTO $S.w400 VALUES $rows;
  UPDATE $S.w400 SET $(long 1) = -id, $(long 399) = 'u' || id, $(long 200) = NULL WHERE id % 4 = 0;
  DELETE FROM $S.w400 WHERE id % 5 = 0;
  INSERT INTO $S.w1600 SELECT g$sel FROM generate_series(31, 45) g;
  UPDATE $S.w1600 SET c1 = -id, c1599 = id * 2, c800 = NULL WHERE id % 3 = 0;
  DELETE FROM $S.w1600 WHERE id % 7 = 0;"
wait_match 60 "w400 after CDC" "$PG400" "$CH400"
wait_match 60 "w1600 after CDC" "$PG1600" "$CH1600"
log "an update that leaves 420 TOASTed values unchanged (a lookup of 420 columns)"
psql_q "UPDATE $S.wt SET n = n + 1 WHERE id <= 2"
wait_match 60 "wt after the update" "SELECT id, n$pgt FROM $S.wt ORDER BY id" \
    "SELECT id, n$cht FROM $DB.wt_live ORDER BY id"
state_is wide Running || fail "pipe wide left Running: $(pipe_json wide | jq -c .last_error)"
out=$("$CTL" --timeout 120000 verify wide) || fail "verify of the wide tables: $out"
assert_contains "$out" "match (48 rows)" "verify of w400"
assert_contains "$out" "match (39 rows)" "verify of w1600"
assert_contains "$out" "match (3 rows)" "verify of wt"

PGNN="SELECT id, coalesce(c::text, '<null>'), coalesce(t, '<null>') FROM $S.nn ORDER BY id"
CHNN="SELECT id, ifNull(toString(c), '<null>'), ifNull(t, '<null>') FROM $DB.nn_live ORDER BY id"
wait_match 60 "nn after the load" "$PGNN" "$CHNN"

log "DROP NOT NULL, then NULLs: the pipe follows"
psql_q "ALTER TABLE $S.nn ALTER COLUMN c DROP NOT NULL;
  INSERT INTO $S.nn VALUES (1000, NULL, 'null c');
  ALTER TABLE $S.nn ALTER COLUMN t DROP NOT NULL;
  UPDATE $S.nn SET t = NULL WHERE id = 3;
  UPDATE $S.nn SET c = NULL, t = NULL WHERE id = 4;"
wait_match 60 "nn after DROP NOT NULL" "$PGNN" "$CHNN"
state_is wide Running || fail "pipe wide left Running: $(pipe_json wide | jq -c .last_error)"
assert_eq "$(ch_q "SELECT type FROM system.columns WHERE database = '${CH_DB_PREFIX}wide' AND table = 'nn' AND name = 'c'")" \
    "Nullable(Int32)" "c became Nullable in ClickHouse"
# definitions are recorded once the slot is confirmed past the change, which comes after the
# rows are visible (the supervisor stores the counters first)
history_tells_not_null() { pipe_json wide | jq -r '[.history[].reason] | join(" | ")' | grep -q "NOT NULL"; }
wait_for 30 "the history tells the change" history_tells_not_null
out=$("$CTL" --timeout 120000 verify wide --table "$S.nn") || fail "verify after DROP NOT NULL: $out"
assert_contains "$out" "match (21 rows)" "verify of nn"
# SET NOT NULL again needs nothing (Nullable holds the values)
psql_q "UPDATE $S.nn SET c = 0 WHERE c IS NULL; ALTER TABLE $S.nn ALTER COLUMN c SET NOT NULL;
  INSERT INTO $S.nn VALUES (1001, 1001, 'x')"
wait_match 60 "nn after SET NOT NULL" "$PGNN" "$CHNN"
state_is wide Running || fail "pipe wide left Running after SET NOT NULL"

log "DROP NOT NULL on an ordering-key column: fails naming the way out"
create_pipe wob "$S.ob" --order-by "$S.ob=c" >/dev/null
wait_for 60 "pipe wob Running" state_is wob Running
psql_q "ALTER TABLE $S.ob ALTER COLUMN c DROP NOT NULL; INSERT INTO $S.ob VALUES (100, NULL, 'x')"
wait_for 60 "pipe wob Failed" state_is wob Failed
msg=$(pipe_json wob | jq -r .last_error.message)
log "ordering key: $msg"
assert_contains "$msg" "column c of $S.ob" "the column is named"
assert_contains "$msg" "resync" "the way out is named"
assert_contains "$msg" "--order-by" "the cause is named"
state_is wide Running || fail "pipe wide left Running"
log "ok"
