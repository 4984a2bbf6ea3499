# A table is one table by its oid, never by a name it once had (issue 23, items 2 and 5):
# (a) a user's publication FOR ALL TABLES: `ALTER TABLE t RENAME TO t_old; CREATE TABLE t (LIKE
#     t_old)` and rows of the new t with t_old's keys: t's destination keeps t_old's rows and
#     gets t_old's changes, nothing of the new t (which the history names as not replicated);
# (b) the pipe's own publication: the same, then add-tables of another table: the publication
#     still holds t_old (by oid) and t_old's changes keep arriving; add-tables of the new t
#     without --target is refused (its destination name is taken);
# (c) resync of a table renamed while no row change followed (the stream has not named it yet);
# (d) a replay from before recorded schema changes (ADD, RENAME, DROP COLUMN with rows between):
#     an open transaction holds the slot's restart_lsn, so PostgreSQL does not write the slot's
#     confirmed position to disk; an immediate restart then sends the stream back before the
#     changes, and the replayed rows must land in the columns they had then.
# RR_SECTIONS (default "a b c d") runs some of them.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"
source "$(dirname "$0")/../lib/sessions.sh"
source "$(dirname "$0")/../lib/outage.sh"

S="rr_$$"
SECTIONS=" ${RR_SECTIONS:-a b c d} "
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE; DROP PUBLICATION IF EXISTS ${S}_all"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.t (id int PRIMARY KEY, v text);
  INSERT INTO $S.t SELECT g, 'old' || g FROM generate_series(1, 5) g;
  CREATE TABLE $S.u (id int PRIMARY KEY, v text);
  INSERT INTO $S.u SELECT g, 'old' || g FROM generate_series(1, 5) g;
  CREATE TABLE $S.w (id int PRIMARY KEY, v text);
  INSERT INTO $S.w VALUES (1, 'w1');
  CREATE TABLE $S.r (id int PRIMARY KEY, a int, b text);
  INSERT INTO $S.r SELECT g, g, 'b' || g FROM generate_series(1, 3) g;
  CREATE TABLE $S.hold (id int);
  CREATE PUBLICATION ${S}_all FOR ALL TABLES"
start_daemon
has() { case "$SECTIONS" in *" $1 "*) return 0 ;; esac; return 1; }
oid_of() { psql_q "SELECT '$1'::regclass::oid"; }

if has a; then
    log "(a) FOR ALL TABLES: t renamed to t_old, a new t with the same keys"
    DA="\`${CH_DB_PREFIX}ra\`"
    create_pipe ra "$S.t" --publication "${S}_all" >/dev/null
    wait_for 60 "pipe ra Running" state_is ra Running
    wait_match 30 "t loaded" "SELECT id, v FROM $S.t ORDER BY id" "SELECT id, v FROM $DA.t_live ORDER BY id"
    old_oid=$(oid_of "$S.t")
    psql_q "ALTER TABLE $S.t RENAME TO t_old; CREATE TABLE $S.t (LIKE $S.t_old INCLUDING ALL)"
    new_oid=$(oid_of "$S.t")
    psql_q "INSERT INTO $S.t SELECT g, 'new' || g FROM generate_series(1, 5) g"
    psql_q "UPDATE $S.t_old SET v = 'upd' || id WHERE id <= 2; INSERT INTO $S.t_old VALUES (6, 'old6')"
    wait_match 20 "t's destination follows t_old" "SELECT id, v FROM $S.t_old ORDER BY id" \
        "SELECT id, v FROM $DA.t_live ORDER BY id"
    psql_q "UPDATE $S.t SET v = 'new-again' WHERE id = 3"
    wait_slot_caught_up 30 pgferry_ra
    sleep 1
    tables_match "SELECT id, v FROM $S.t_old ORDER BY id" "SELECT id, v FROM $DA.t_live ORDER BY id" ||
        { show_diff "SELECT id, v FROM $S.t_old ORDER BY id" "SELECT id, v FROM $DA.t_live ORDER BY id"; fail "rows of the new t reached t's destination"; }
    assert_eq "$(pipe_state ra)" Running "pipe ra after the rename"
    wait_for 60 "status names t_old (recorded once the slot cannot go back before the rename)" bash -c "'$CTL' status ra --json | jq -e '.tables[0].table == \"t_old\"' >/dev/null"
    assert_contains "$(pipe_json ra | jq -r '.history[].reason' | paste -sd' ')" \
        "table $S.t (oid $new_oid) is not the pipe's table $S.t (oid $old_oid, now named $S.t_old); not replicated" \
        "the history names the new t"
    "$CTL" drop ra >/dev/null
fi

if has b; then
    log "(b) the pipe's own publication: u renamed to u_old, a new u, then add-tables"
    DB="\`${CH_DB_PREFIX}rb\`"
    create_pipe rb "$S.u" >/dev/null
    wait_for 60 "pipe rb Running" state_is rb Running
    wait_match 30 "u loaded" "SELECT id, v FROM $S.u ORDER BY id" "SELECT id, v FROM $DB.u_live ORDER BY id"
    uold_oid=$(oid_of "$S.u")
    psql_q "ALTER TABLE $S.u RENAME TO u_old; CREATE TABLE $S.u (LIKE $S.u_old INCLUDING ALL);
      INSERT INTO $S.u SELECT g, 'new' || g FROM generate_series(1, 5) g"
    # no change of u_old yet: the stream has not named it; add-tables sets the publication again
    "$CTL" add-tables rb "$S.w" >/dev/null
    wait_for 60 "pipe rb Running with two tables" bash -c \
        "'$CTL' status rb --json | jq -e '.state == \"Running\" and (.tables | length) == 2' >/dev/null"
    assert_eq "$(psql_q "SELECT string_agg(prrelid::regclass::text, ',' ORDER BY prrelid::regclass::text)
                         FROM pg_publication_rel WHERE prpubid = (SELECT oid FROM pg_publication WHERE pubname = 'pgferry_rb')")" \
        "$S.u_old,$S.w" "the publication holds u_old and w"
    assert_eq "$(psql_q "SELECT count(*) FROM pg_publication_rel WHERE prrelid = $uold_oid
                           AND prpubid = (SELECT oid FROM pg_publication WHERE pubname = 'pgferry_rb')")" 1 \
        "the publication holds u_old's oid"
    psql_q "UPDATE $S.u_old SET v = 'upd' || id WHERE id <= 2; INSERT INTO $S.u_old VALUES (7, 'old7');
      UPDATE $S.u SET v = 'new-again'"
    wait_match 30 "u's destination follows u_old after add-tables" "SELECT id, v FROM $S.u_old ORDER BY id" \
        "SELECT id, v FROM $DB.u_live ORDER BY id"
    wait_match 30 "w" "SELECT id, v FROM $S.w ORDER BY id" "SELECT id, v FROM $DB.w_live ORDER BY id"
    assert_eq "$(pipe_json rb | jq -r '[.tables[].table] | sort | join(",")')" "u_old,w" "rb's tables"
    set +e
    out=$("$CTL" add-tables rb "$S.u" 2>&1); rc=$?
    set -e
    [ $rc -ne 0 ] || fail "add-tables of the new u took u_old's destination name: $out"
    assert_contains "$out" "--target" "the refusal names the way out"
    assert_eq "$(pipe_state rb)" Running "rb after the refused add-tables"
fi

if has c; then
    log "(c) resync of a table renamed with no row change since"
    DB="\`${CH_DB_PREFIX}rb\`"
    if ! has b; then
        create_pipe rb "$S.w" >/dev/null
        wait_for 60 "pipe rb Running" state_is rb Running
    fi
    psql_q "ALTER TABLE $S.w RENAME TO w2"
    "$CTL" resync rb >/dev/null
    wait_for 90 "pipe rb Running (or Failed) after the resync" bash -c \
        "'$CTL' status rb --json | jq -e '(.state == \"Running\" and (.resyncing | not)) or .state == \"Failed\"' >/dev/null"
    assert_eq "$(pipe_state rb)" Running "rb after the resync ($(pipe_json rb | jq -r .last_error))"
    assert_contains "$(pipe_json rb | jq -r '[.tables[].table] | join(",")')" "w2" "rb follows w2"
    psql_q "INSERT INTO $S.w2 VALUES (2, 'w2')"
    wait_match 30 "w2 after the resync" "SELECT id, v FROM $S.w2 ORDER BY id" "SELECT id, v FROM $DB.w_live ORDER BY id"
    if has b; then
        wait_match 30 "u_old after the resync" "SELECT id, v FROM $S.u_old ORDER BY id" \
            "SELECT id, v FROM $DB.u_live ORDER BY id"
    fi
    "$CTL" drop rb >/dev/null
fi

if has d; then
    log "(d) a replay from before recorded ADD, RENAME and DROP COLUMN"
    DD="\`${CH_DB_PREFIX}rd\`"
    create_pipe rd "$S.r" >/dev/null
    wait_for 60 "pipe rd Running" state_is rd Running
    wait_match 30 "r loaded" "SELECT id, a, b FROM $S.r ORDER BY id" "SELECT id, a, b FROM $DD.r_live ORDER BY id"
    session_open H
    session_send H "BEGIN; INSERT INTO $S.hold VALUES (1);"
    session_sync H
    # the slot's last moves: a CHECKPOINT logs the running transactions (restart_lsn may move up
    # to H's start, once) and a change after it is acknowledged; from here on nothing moves
    # restart_lsn or catalog_xmin, so PostgreSQL writes no later confirmed position to disk
    psql_q "CHECKPOINT"
    psql_q "UPDATE $S.r SET b = 'b1x' WHERE id = 1"
    wait_slot_caught_up 30 pgferry_rd
    before=$(psql_q "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgferry_rd'")
    psql_q "INSERT INTO $S.r VALUES (10, 10, 'b10')"
    psql_q "ALTER TABLE $S.r ADD COLUMN c int DEFAULT 5"
    psql_q "INSERT INTO $S.r VALUES (11, 11, 'b11', 11)"
    psql_q "ALTER TABLE $S.r RENAME COLUMN a TO a2"
    psql_q "INSERT INTO $S.r VALUES (12, 12, 'b12', 12); UPDATE $S.r SET a2 = 20 WHERE id = 2"
    psql_q "ALTER TABLE $S.r DROP COLUMN b"
    psql_q "INSERT INTO $S.r VALUES (13, 13, 13); UPDATE $S.r SET c = 100 WHERE id = 3"
    q_pg="SELECT id, a2, c FROM $S.r ORDER BY id"
    q_ch="SELECT id, a, c FROM $DD.r_live ORDER BY id"
    wait_match 30 "r after the schema changes" "$q_pg" "$q_ch"
    wait_slot_caught_up 30 pgferry_rd
    sleep 1
    log "definitions recorded before the restart: $(pipe_json rd | jq -c '[.tables[0].columns[].name]')"
    # paused (no worker reads the slot) while PostgreSQL restarts, to see where the slot is then
    "$CTL" pause rd >/dev/null
    wait_for 30 "pipe rd Paused" state_is rd Paused
    pg_restart_immediate() { PG_DOWN=1; "$SERVERS" restart-pg "$PGFERRY_SERVERS_DIR" immediate >/dev/null; PG_DOWN=0; }
    pg_restart_immediate
    session_close H
    after=$(psql_q "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgferry_rd'")
    log "slot confirmed $before before the changes, $after after the restart"
    pg_true "SELECT '$after'::pg_lsn <= '$before'::pg_lsn" ||
        fail "the restart did not send the slot back before the schema changes ($after > $before): nothing replayed"
    "$CTL" resume rd >/dev/null
    psql_q "INSERT INTO $S.r VALUES (14, 14, 14)"
    wait_for 90 "pipe rd Running and streaming past the replay" bash -c \
        "'$CTL' status rd --json | jq -e '.state == \"Running\"' >/dev/null && [ \"\$(curl -sS '${PGFERRY_CH_URL%/}/' --data-binary 'SELECT count() FROM $DD.r_live WHERE id = 14')\" = 1 ]"
    wait_match 30 "r after the replay" "$q_pg" "$q_ch"
    assert_eq "$(ch_q "SELECT arrayStringConcat(groupArray(name), ',') FROM (SELECT name FROM system.columns
                        WHERE database = '${CH_DB_PREFIX}rd' AND table = 'r' AND NOT startsWith(name, '_pgferry'))")" \
        "id,a,b,c" "ClickHouse columns after the replay"
    wait_for 60 "rd's definition recorded as id, a2, c" bash -c \
        "[ \"\$('$CTL' status rd --json | jq -c '[.tables[0].columns[].name]')\" = '[\"id\",\"a2\",\"c\"]' ]"
    out=$("$CTL" --timeout 120000 verify rd) || fail "verify after the replay: $out"
    "$CTL" drop rd >/dev/null
fi
log "ok"
