# Sources as users have them (issue 12): generated columns; a user's publication on a plain
# table; a publication's row filter and column list (snapshot and CDC, UPDATEs moving rows into
# and out of the filter, a publication changed while the pipe runs); a source table renamed
# while the pipe runs (status, history, verify, resync follow it).
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="src_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE; DROP PUBLICATION IF EXISTS ${S}_pub;
  DROP PUBLICATION IF EXISTS ${S}_plain"
PGVER=$(psql_q "SHOW server_version_num")
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.g (id int PRIMARY KEY, b int, c int GENERATED ALWAYS AS (b * 2) STORED, d text);
  INSERT INTO $S.g (id, b, d) SELECT x, x, 'd' || x FROM generate_series(1, 100) x;
  CREATE TABLE $S.plain (id int PRIMARY KEY, v text);
  INSERT INTO $S.plain SELECT x, 'p' || x FROM generate_series(1, 50) x;
  CREATE TABLE $S.f (id int, region text NOT NULL, amount int, secret text,
    PRIMARY KEY (id, region));
  INSERT INTO $S.f SELECT x, CASE WHEN x % 3 = 0 THEN 'eu' ELSE 'us' END, x, 's' || x
    FROM generate_series(1, 300) x;
  CREATE PUBLICATION ${S}_plain FOR TABLE $S.plain"
# row filters and column lists: PostgreSQL 15 and later
[ "$PGVER" -lt 150000 ] ||
    psql_q "CREATE PUBLICATION ${S}_pub FOR TABLE $S.f (id, region, amount) WHERE (region = 'eu')"
start_daemon

log "generated columns with the pipe's own publication"
create_pipe gen "$S.g" >/dev/null
wait_for 60 "pipe gen Running" state_is gen Running
DB="\`${CH_DB_PREFIX}gen\`"
if [ "$PGVER" -ge 180000 ]; then
    # PostgreSQL 18 publishes stored generated columns: they are replicated
    gen_cols="id, b, c, d"
else
    gen_cols="id, b, d"
    assert_eq "$(ch_q "SELECT count() FROM system.columns WHERE database = '${CH_DB_PREFIX}gen' AND table = 'g' AND name = 'c'")" 0 \
        "the generated column is left out of the destination"
    assert_eq "$(pipe_json gen | jq -r '.tables[0].skipped_columns[] | select(.name == "c") | .reason')" \
        generated "status names the generated column and why"
    assert_contains "$("$CTL" status gen)" "left out: c (generated)" "text status"
fi
psql_q "UPDATE $S.g SET b = b + 1000 WHERE id <= 10; INSERT INTO $S.g (id, b, d) VALUES (101, 5, 'new');
  DELETE FROM $S.g WHERE id = 50"
wait_match 60 "g with its generated column handled" "SELECT $gen_cols FROM $S.g ORDER BY id" \
    "SELECT $gen_cols FROM $DB.g_live ORDER BY id"
hist=$(pipe_json gen | jq -r '.history[].reason' | paste -sd' ')
case "$hist" in *"column c dropped"*) fail "history reports the generated column as dropped: $hist" ;; esac
out=$("$CTL" --timeout 120000 verify gen) || fail "verify gen: $out"
assert_contains "$out" "match (100 rows)" "verify gen"
[ "$PGVER" -ge 180000 ] || assert_contains "$out" "column c (generated)" "verify names the left-out column"

log "a user's publication on a plain table"
create_pipe plain "$S.plain" --publication "${S}_plain" >/dev/null
wait_for 60 "pipe plain Running" state_is plain Running
psql_q "INSERT INTO $S.plain VALUES (51, 'x'); UPDATE $S.plain SET v = 'u' WHERE id = 1"
wait_match 60 "plain" "SELECT id, v FROM $S.plain ORDER BY id" \
    "SELECT id, v FROM \`${CH_DB_PREFIX}plain\`.plain_live ORDER BY id"
assert_eq "$(psql_q "SELECT count(*) FROM pg_publication_tables WHERE pubname = '${S}_plain'")" 1 \
    "the user's publication is left as it was"

if [ "$PGVER" -ge 150000 ]; then
    log "a row filter and a column list: the destination holds what the publication publishes"
    create_pipe filt "$S.f" --publication "${S}_pub" >/dev/null
    wait_for 60 "pipe filt Running" state_is filt Running
    FDB="\`${CH_DB_PREFIX}filt\`"
    assert_eq "$(ch_q "SELECT count() FROM $FDB.f_live")" 100 "the snapshot loaded the filtered rows only"
    assert_eq "$(ch_q "SELECT count() FROM system.columns WHERE database = '${CH_DB_PREFIX}filt' AND table = 'f' AND name = 'secret'")" 0 \
        "the unpublished column is not in the destination"
    assert_contains "$("$CTL" status filt)" "rows where (region = 'eu'::text)" "status shows the filter"
    # into the filter, out of it, within it, outside it
    psql_q "UPDATE $S.f SET region = 'eu' WHERE id IN (1, 2);
      UPDATE $S.f SET region = 'us' WHERE id IN (3, 6);
      UPDATE $S.f SET amount = -amount WHERE id IN (9, 4);
      INSERT INTO $S.f VALUES (1000, 'eu', 1, 'x'), (1001, 'us', 1, 'y');
      DELETE FROM $S.f WHERE id IN (12, 5)"
    wait_match 60 "f (filtered)" "SELECT id, region, amount FROM $S.f WHERE region = 'eu' ORDER BY id" \
        "SELECT id, region, amount FROM $FDB.f_live ORDER BY id"
    out=$("$CTL" --timeout 120000 verify filt) || fail "verify filt: $out"
    assert_contains "$out" "match (" "verify filt"
    assert_contains "$out" "column secret (not published)" "verify names the unpublished column"

    log "the publication's column list changes while the pipe runs: stopped with resync named"
    psql_q "ALTER PUBLICATION ${S}_pub SET TABLE $S.f (id, region) WHERE (region = 'eu');
      UPDATE $S.f SET amount = 7 WHERE id = 1"
    wait_for 60 "pipe filt Failed" state_is filt Failed
    err=$(pipe_json filt | jq -r .last_error)
    assert_contains "$err" "no longer published by publication ${S}_pub" "the reason"
    assert_contains "$err" "resync" "the way out"
    "$CTL" resync filt >/dev/null
    wait_for 120 "pipe filt Running after resync" state_is filt Running
    wait_match 60 "f after the resync" "SELECT id, region FROM $S.f WHERE region = 'eu' ORDER BY id" \
        "SELECT id, region FROM $FDB.f_live ORDER BY id"
    assert_eq "$(pipe_json filt | jq -r '.tables[0].skipped_columns | map(.name) | sort | join(",")')" \
        "amount,secret" "the new column list is followed"

    log "the row filter changes: verify says so instead of comparing"
    psql_q "ALTER PUBLICATION ${S}_pub SET TABLE $S.f (id, region) WHERE (region <> 'xx')"
    set +e
    out=$("$CTL" --timeout 120000 verify filt); rc=$?
    set -e
    [ $rc -ne 0 ] || fail "verify matched after the row filter changed: $out"
    assert_contains "$out" "filters rows differently" "verify names the changed filter"
    "$CTL" drop filt >/dev/null
else
    log "PostgreSQL $PGVER: no row filters or column lists (version 15 and later)"
fi

log "a source table renamed while the pipe runs"
psql_q "ALTER TABLE $S.g RENAME TO g2; INSERT INTO $S.g2 (id, b, d) VALUES (200, 1, 'after rename')"
wait_for 60 "status shows the new name" bash -c \
    "'$CTL' status gen --json | jq -e '.tables[0].table == \"g2\"' >/dev/null"
assert_contains "$(pipe_json gen | jq -r '.history[].reason' | paste -sd' ')" \
    "table $S.g renamed to $S.g2" "history records the rename"
wait_match 60 "g2 into the same destination" "SELECT $gen_cols FROM $S.g2 ORDER BY id" \
    "SELECT $gen_cols FROM $DB.g_live ORDER BY id"
out=$("$CTL" --timeout 120000 verify gen) || fail "verify after rename: $out"
assert_contains "$out" "$S.g2 -> ${CH_DB_PREFIX}gen.g: match" "verify after rename"
"$CTL" resync gen >/dev/null
wait_for 120 "pipe gen Running after resync" bash -c \
    "'$CTL' status gen --json | jq -e '.state == \"Running\" and (.resyncing | not)' >/dev/null"
psql_q "UPDATE $S.g2 SET d = 'post-resync' WHERE id = 1"
wait_match 60 "g2 after resync" "SELECT $gen_cols FROM $S.g2 ORDER BY id" \
    "SELECT $gen_cols FROM $DB.g_live ORDER BY id"
log "add-tables and remove-tables after the rename"
psql_q "CREATE TABLE $S.extra (id int PRIMARY KEY); INSERT INTO $S.extra VALUES (1)"
"$CTL" add-tables gen "$S.extra" >/dev/null
wait_for 60 "pipe gen Running with two tables" bash -c \
    "'$CTL' status gen --json | jq -e '.state == \"Running\" and (.tables | length) == 2' >/dev/null"
out=$("$CTL" remove-tables gen "$S.g2") || fail "remove-tables by the new name: $out"
wait_for 60 "pipe gen Running with one table" bash -c \
    "'$CTL' status gen --json | jq -e '.state == \"Running\" and (.tables | length) == 1 and .tables[0].table == \"extra\"' >/dev/null"
log "ok"
