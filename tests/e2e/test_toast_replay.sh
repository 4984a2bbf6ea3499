# Unchanged TOAST values across a replay (issue 23 item 1), against the real servers:
#  - a key changed while its 8 kB value (stored out of line) stays unchanged, then the old key
#    used again for a new row (UPDATE 1 -> 1001; INSERT 1); keys swapped through a temporary key
#    (2 -> -2, 3 -> 2, -2 -> 3); an update of the value of a row and a key change of it in the
#    same transaction; last the same sequences in one transaction (11 -> 1011, INSERT 11,
#    12 -> -12, 13 -> 12, -12 -> 13); ClickHouse merges (OPTIMIZE FINAL); then an immediate
#    PostgreSQL restart (the slot's position goes back to the last checkpoint, so the stream
#    replays all of it over rows ClickHouse already has): every key keeps its own value (md5
#    per key equal to PostgreSQL's), verify is clean;
#  - a cdc-only pipe (rows there before the pipe are never loaded): a key change of such a row
#    with its value unchanged writes the value the row has, not NULL.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"
source "$(dirname "$0")/../lib/outage.sh"

S="tr_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
# an 8 kB value that does not compress: md5 chunks of a seed
big() { echo "(SELECT string_agg(md5('$1' || g), '') FROM generate_series(1, 256) g)"; }
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.t (id int PRIMARY KEY, note int, v text);
  ALTER TABLE $S.t ALTER COLUMN v SET STORAGE EXTERNAL;
  CREATE TABLE $S.c (id int PRIMARY KEY, v text);
  ALTER TABLE $S.c ALTER COLUMN v SET STORAGE EXTERNAL;
  INSERT INTO $S.c VALUES (1, $(big c1)), (2, $(big c2));"
for i in 1 2 3 4 11 12 13; do psql_q "INSERT INTO $S.t VALUES ($i, 0, $(big "t$i"))"; done

start_daemon
P=tr
DB="\`${CH_DB_PREFIX}$P\`"
create_pipe $P "$S.t" >/dev/null
C=trc
DBC="\`${CH_DB_PREFIX}$C\`"
create_pipe $C "$S.c" --mode cdc-only >/dev/null
wait_for 60 "pipe $P reaches Running" state_is $P Running
wait_for 60 "pipe $C reaches Running" state_is $C Running

TPG="SELECT id, note, md5(v) FROM $S.t ORDER BY id"
TCH="SELECT id, note, lower(hex(MD5(v))) FROM $DB.t_live ORDER BY id"
wait_match 60 "the loaded rows" "$TPG" "$TCH"
# the slot's position as of now is what an immediate restart goes back to
psql_q "CHECKPOINT"

log "key changes with the value unchanged, keys used again and swapped"
psql_q "UPDATE $S.t SET id = 1001 WHERE id = 1"
psql_q "INSERT INTO $S.t VALUES (1, 1, $(big new1))"
psql_q "UPDATE $S.t SET id = -2 WHERE id = 2"
psql_q "UPDATE $S.t SET id = 2 WHERE id = 3"
psql_q "UPDATE $S.t SET id = 3 WHERE id = -2"
psql_q "BEGIN; UPDATE $S.t SET v = $(big t4b) WHERE id = 4; UPDATE $S.t SET note = 4 WHERE id = 4;
  UPDATE $S.t SET id = 1004 WHERE id = 4; COMMIT"
# the last transaction: the one a replay applies again over its own rows
psql_q "BEGIN; UPDATE $S.t SET id = 1011 WHERE id = 11; INSERT INTO $S.t VALUES (11, 1, $(big new11));
  UPDATE $S.t SET id = -12 WHERE id = 12; UPDATE $S.t SET id = 12 WHERE id = 13;
  UPDATE $S.t SET id = 13 WHERE id = -12; COMMIT"
wait_match 60 "the rows before the restart" "$TPG" "$TCH"
# merges keep of each key only its newest row: the rows the replayed transaction replaced go
ch_q "OPTIMIZE TABLE $DB.t FINAL"
# the cdc-only table: its rows were never loaded
psql_q "UPDATE $S.c SET id = 1001 WHERE id = 1"
CPG="SELECT id, md5(v) FROM $S.c WHERE id = 1001"
CCH="SELECT id, lower(hex(MD5(v))) FROM $DBC.c_live ORDER BY id"
wait_match 60 "cdc-only: the re-keyed row that was never loaded keeps its value" "$CPG" "$CCH"

log "immediate PostgreSQL restart: the stream replays the changes over what ClickHouse has"
PG_DOWN=1; "$SERVERS" restart-pg "$PGFERRY_SERVERS_DIR" immediate >/dev/null; PG_DOWN=0
# a change after the replayed ones, so that the match below is known to include the replay
wait_for 60 "PostgreSQL back" psql_q "SELECT 1"
psql_q "UPDATE $S.t SET note = 99 WHERE id = 1001"
wait_match 90 "every key keeps its own value after the replay" "$TPG" "$TCH"
wait_for 60 "pipe $P Running" state_is $P Running
out=$("$CTL" --timeout 120000 verify $P) || fail "verify: $out"
log "verify: $out"
no_duplicates "$DB.t" "id"
log "ok"
