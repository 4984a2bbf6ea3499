# numeric(p,s) and NaN (issue 3, item 2). Decimal(p,s), the default, cannot hold PostgreSQL's
# NaN: a NaN in the load or in the stream stops the pipe (Failed, with table, column, value and
# the way out named) instead of being changed. A pipe created with `--numeric text` keeps
# numeric(p,s) as exact text: NaN, the widest values, trailing zeros and NULL survive the load and
# every kind of change, also in a key column and through an unchanged-TOAST update.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="numtext_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.n (k numeric(10,2), id int, a numeric(12,2), b numeric(5,5) NOT NULL,
    c numeric(38,0), big text, PRIMARY KEY (k, id));
  INSERT INTO $S.n VALUES
    (1.50, 1, 'NaN', 0.12345, 99999999999999999999999999999999999999, 'x'),
    ('NaN', 2, -9999999999.99, 'NaN', NULL,
     (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3000) g)),
    (0, 3, NULL, -0.00001, -99999999999999999999999999999999999999, repeat('t', 100000)),
    (-0.10, 4, 10.00, 0, 0, NULL);
  CREATE TABLE $S.plain (id int PRIMARY KEY, a numeric(12,2));
  INSERT INTO $S.plain VALUES (1, 1.25), (2, NULL);"

start_daemon --backoff-initial-ms 300

# the default: Decimal, and a NaN in the load fails the pipe with the way out named
create_pipe dec "$S.n" --mode snapshot-only >/dev/null
wait_for 60 "pipe dec fails on NaN" state_is dec Failed
reason=$(pipe_json dec | jq -r '.history[-1].reason')
assert_contains "$reason" "table $S.n" "the table is named"
assert_contains "$reason" "column a" "the column is named"
assert_contains "$reason" "NaN cannot be stored in a Decimal column" "the value is explained"
assert_contains "$reason" "--numeric text" "the way out is named"
assert_eq "$(pipe_json dec | jq -r .numeric)" decimal "status shows the numeric mapping"

# --numeric text: exact text, the same in ClickHouse as PostgreSQL's output
create_pipe txt "$S.n" --numeric text >/dev/null
wait_for 60 "pipe txt reaches Running" state_is txt Running
DB="\`${CH_DB_PREFIX}txt\`"
assert_eq "$(pipe_json txt | jq -r .numeric)" text "status shows the numeric mapping"
assert_contains "$("$CTL" status txt)" "numeric(p,s) as exact text" "text status shows it"
assert_eq "$(ch_q "SELECT groupArray(concat(name, ' ', type)) FROM (SELECT name, type FROM system.columns WHERE database = '${CH_DB_PREFIX}txt' AND table = 'n' AND name IN ('k', 'a', 'b', 'c') ORDER BY name)")" \
    "['a Nullable(String)','b String','c Nullable(String)','k String']" "destination types"
n() { echo "coalesce($1::text, '\\N')"; } # NULL as ClickHouse's TSV prints it
PGQ="SELECT k, id, $(n a), b, $(n c), $(n 'md5(big)') FROM $S.n ORDER BY k, id"
CHQ="SELECT k, id, a, b, c, lower(hex(MD5(big))) FROM $DB.n_live ORDER BY toFloat64(k), id"
wait_match 30 "snapshot" "$PGQ" "$CHQ"
assert_contains "$(ch_q "SELECT groupArray(a) FROM $DB.n")" "'NaN'" "NaN kept in the load"

# every kind of change, NaN in and out, in a key column too, and an update that leaves the
# TOASTed value unchanged (its value comes back from ClickHouse by key, a NaN key included)
psql_q "INSERT INTO $S.n VALUES (2.00, 5, 'NaN', 'NaN', 'NaN', 'new');
  UPDATE $S.n SET a = 'NaN', c = 1 WHERE id = 4;
  UPDATE $S.n SET a = 0.01 WHERE id = 1;
  UPDATE $S.n SET b = 0.5 WHERE id = 3;
  UPDATE $S.n SET b = 0.00001 WHERE k = 'NaN' AND id = 2;
  UPDATE $S.n SET k = 'NaN' WHERE id = 4;
  DELETE FROM $S.n WHERE id = 1;"
CHQ="SELECT k, id, a, b, c, lower(hex(MD5(big))) FROM $DB.n_live ORDER BY k = 'NaN', toFloat64OrZero(k), id"
wait_match 30 "changes" "$PGQ" "$CHQ"
no_duplicates "$DB.n" "k, id"
assert_eq "$(ch_q "SELECT length(big) FROM $DB.n_live WHERE id = 3")" 100000 "unchanged value kept"
assert_eq "$(ch_q "SELECT length(big) FROM $DB.n_live WHERE id = 2")" 96000 "unchanged TOASTed value kept (NaN key)"
[ "$(psql_q "SELECT pg_column_size(big) > 2000 FROM $S.n WHERE id = 2")" = t ] || fail "the big value is not TOASTed"

# a Decimal pipe that meets NaN in the stream stops there, with the position named, and
# what came before it is in ClickHouse
create_pipe decdc "$S.plain" >/dev/null
wait_for 60 "pipe decdc reaches Running" state_is decdc Running
psql_q "UPDATE $S.plain SET a = 2.50 WHERE id = 1"
wait_for 30 "the update before the NaN" bash -c "[ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT toString(a) FROM \`${CH_DB_PREFIX}decdc\`.plain_live WHERE id = 1')\" = 2.50 ]"
psql_q "UPDATE $S.plain SET a = 'NaN' WHERE id = 2"
wait_for 60 "pipe decdc fails on NaN" state_is decdc Failed
reason=$(pipe_json decdc | jq -r '.history[-1].reason')
assert_contains "$reason" "NaN cannot be stored in a Decimal column" "the stream's NaN is explained"
assert_contains "$reason" "plain" "the table is named"
assert_eq "$(ch_q "SELECT toString(a) FROM \`${CH_DB_PREFIX}decdc\`.plain_live WHERE id = 2")" "\\N" "the row is not changed"

stop_daemon || fail "pgferryd exited non-zero"
log "ok"
