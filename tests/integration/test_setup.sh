# Setup against the real servers: definitions recorded, ClickHouse tables created with the
# lossless types, the key as ORDER BY in key order, a live-rows view; names that need quoting;
# re-running over matching tables is harmless; a conflicting table or a name collision fails
# with the reason.
source "$(dirname "$0")/../lib/common.sh"

S="it_setup_$$"
S2="it_setup2_$$"
LONG=$(printf 'l%.0s' $(seq 1 63))   # a 63-byte table name
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE; DROP SCHEMA IF EXISTS $S2 CASCADE"
cols100=$(for i in $(seq 1 99); do printf ', c%d int' "$i"; done)
psql_q "CREATE EXTENSION IF NOT EXISTS hstore"
psql_q "CREATE SCHEMA $S; CREATE SCHEMA $S2;
  CREATE TYPE $S.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN $S.money2 AS numeric(10,2) NOT NULL;
  CREATE TYPE $S.pair AS (a int, b text);
  CREATE TABLE $S.types (
    id bigint PRIMARY KEY, b bool, i2 int2, i4 int4 NOT NULL, o oid, f4 float4, f8 float8,
    n12 numeric(12,2), n numeric, big numeric(50,5), m money, c char(3), vc varchar(20), t text,
    by bytea, u uuid, j json, jb jsonb, d date, tm time, ttz timetz, ts timestamp,
    tstz timestamptz, iv interval, ip inet, net cidr, mac macaddr, e $S.mood, dm $S.money2,
    ai int[], at text[], tv tsvector, pt point, h hstore, cp $S.pair);
  CREATE TABLE $S.\"Mixed Case\" (\"Id\" int, \"k 2\" text, v text, PRIMARY KEY (\"k 2\", \"Id\"));
  CREATE TABLE $S.\"order\" (\"select\" int PRIMARY KEY, \"from\" text);
  CREATE TABLE $S.$LONG (id int PRIMARY KEY);
  CREATE TABLE $S.parted (id int, d date, v text, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);
  CREATE TABLE $S.parted_a PARTITION OF $S.parted FOR VALUES FROM ('2000-01-01') TO ('2100-01-01');
  CREATE TABLE $S.empty (id int PRIMARY KEY);
  CREATE TABLE $S.wide (id int PRIMARY KEY $cols100);
  CREATE TABLE $S.ri (a int NOT NULL, b int NOT NULL, v text);
  CREATE UNIQUE INDEX ri_ba ON $S.ri (b, a);
  ALTER TABLE $S.ri REPLICA IDENTITY USING INDEX ri_ba;
  CREATE TABLE $S.dup (id int PRIMARY KEY); CREATE TABLE $S2.dup (id int PRIMARY KEY);
  CREATE TABLE $S.conflict (id int PRIMARY KEY, v text);"

start_daemon
DB="${CH_DB_PREFIX}setup"
create_pipe setup "$S.types,$S.\"Mixed Case\",$S.\"order\",$S.$LONG,$S.parted,$S.empty,$S.wide,$S.ri" >/dev/null
wait_for 30 "pipe setup finishes Setup and its load" state_is setup Running

# the type mapping, column by column, as ClickHouse reports it
got=$(ch_q "SELECT name, type, is_in_sorting_key FROM system.columns WHERE database = '$DB' AND table = 'types' FORMAT TSV")
want="id	Int64	1
b	Nullable(UInt8)	0
i2	Nullable(Int16)	0
i4	Int32	0
o	Nullable(UInt32)	0
f4	Nullable(Float32)	0
f8	Nullable(Float64)	0
n12	Nullable(Decimal(12, 2))	0
n	Nullable(String)	0
big	Nullable(String)	0
m	Nullable(String)	0
c	Nullable(String)	0
vc	Nullable(String)	0
t	Nullable(String)	0
by	Nullable(String)	0
u	Nullable(UUID)	0
j	Nullable(String)	0
jb	Nullable(String)	0
d	Nullable(String)	0
tm	Nullable(String)	0
ttz	Nullable(String)	0
ts	Nullable(String)	0
tstz	Nullable(String)	0
iv	Nullable(String)	0
ip	Nullable(String)	0
net	Nullable(String)	0
mac	Nullable(String)	0
e	Nullable(String)	0
dm	Decimal(10, 2)	0
ai	Nullable(String)	0
at	Nullable(String)	0
tv	Nullable(String)	0
pt	Nullable(String)	0
h	Nullable(String)	0
cp	Nullable(String)	0
_pgferry_version	UInt64	0
_pgferry_is_deleted	UInt8	0
_pgferry_synced_at	DateTime	0"
[ "$got" = "$want" ] || fail "types table differs: $(diff <(echo "$want") <(echo "$got"))"

engine() { ch_q "SELECT engine_full FROM system.tables WHERE database = '$DB' AND name = '$1'"; }
assert_contains "$(engine types)" "ReplacingMergeTree(_pgferry_version) ORDER BY id" "types engine"
assert_contains "$(engine 'Mixed Case')" "ORDER BY (\`k 2\`, Id)" "composite key in key order"
assert_contains "$(engine order)" "ORDER BY select SETTINGS" "keyword names"
assert_contains "$(engine "$LONG")" "ReplacingMergeTree" "63-byte name"
assert_contains "$(engine parted)" "ORDER BY (id, d)" "partitioned table lands in one table"
assert_contains "$(engine ri)" "ORDER BY (b, a)" "replica identity index is the key"
assert_eq "$(ch_q "SELECT count() FROM system.columns WHERE database = '$DB' AND table = 'wide'")" 103 "100 columns + 3"
assert_eq "$(ch_q "SELECT engine FROM system.tables WHERE database = '$DB' AND name = 'Mixed Case_live'")" View "live view"
assert_eq "$(ch_q "SELECT count() FROM \`$DB\`.\`empty_live\`")" 0 "live view answers"
# the view hides deleted rows and keeps the latest version of a key
ch_q "INSERT INTO \`$DB\`.\`order\` (\`select\`, \`from\`, _pgferry_version, _pgferry_is_deleted) VALUES (1, 'old', 1, 0), (1, 'new', 2, 0), (2, 'gone', 1, 0), (2, 'gone', 3, 1)"
assert_eq "$(ch_q "SELECT \`select\`, \`from\` FROM \`$DB\`.\`order_live\` FORMAT TSV")" "1	new" "live view semantics"

# status shows the recorded definitions
j=$(pipe_json setup)
assert_eq "$(jq -r '.tables[0].columns | length' <<<"$j")" 35 "columns recorded"
assert_eq "$(jq -r '.tables[0].columns[] | select(.name == "dm") | .pg_type' <<<"$j")" "$S.money2" "domain recorded"
assert_eq "$(jq -r '.tables[1].columns[] | select(.name == "k 2") | .key_position' <<<"$j")" 1 "key position"
assert_contains "$("$CTL" status setup)" "-> $DB.Mixed Case (3 columns, key k 2, Id)" "text status"
assert_contains "$(jq -r '.history[] | select(.to == "Snapshot") | .reason' <<<"$j")" "8 destination table(s) ready in database $DB" "history"

# running Setup again over the same tables is harmless
"$CTL" drop setup >/dev/null
create_pipe setup "$S.types,$S.\"Mixed Case\"" >/dev/null
wait_for 30 "re-created pipe finishes Setup" state_is setup Running
assert_eq "$(ch_q "SELECT count() FROM \`$DB\`.\`order_live\`")" 1 "existing data untouched"

# an existing destination table pgferry did not create: never adopted (whatever its columns;
# test_ownership has one that matches), Failed with the ways out named
ch_q "CREATE DATABASE \`${CH_DB_PREFIX}conflict\`"
ch_q "CREATE TABLE \`${CH_DB_PREFIX}conflict\`.conflict (id Int64, v String) ENGINE = MergeTree ORDER BY id"
create_pipe conflict "$S.conflict" >/dev/null
wait_for 30 "pipe conflict fails" state_is conflict Failed
assert_contains "$(pipe_json conflict | jq -r .last_error.message)" "destination table ${CH_DB_PREFIX}conflict.conflict exists and no pipe owns it" "conflict reason"
assert_eq "$(ch_q "SELECT count() FROM system.columns WHERE database = '${CH_DB_PREFIX}conflict' AND table = 'conflict'")" 2 "the foreign table untouched"
# a table of the pipe's own whose definition differs (changed by hand): Failed, the difference named
"$CTL" drop conflict >/dev/null
ch_q "DROP TABLE \`${CH_DB_PREFIX}conflict\`.conflict"
create_pipe conflict "$S.conflict" >/dev/null
wait_for 30 "pipe conflict Running" state_is conflict Running
"$CTL" drop conflict >/dev/null
ch_q "DROP TABLE \`${CH_DB_PREFIX}conflict\`.conflict"
ch_q "CREATE TABLE \`${CH_DB_PREFIX}conflict\`.conflict (id Int64, v String) ENGINE = MergeTree ORDER BY id"
create_pipe conflict "$S.conflict" >/dev/null
wait_for 30 "pipe conflict fails" state_is conflict Failed
assert_contains "$(pipe_json conflict | jq -r .last_error.message)" "exists with a different definition (has 'id Int64 1', pgferry needs 'id Int32 1')" "conflict reason"

# two source tables that would land in one destination table: refused at create (Setup
# refuses them too, for a record written before create checked)
out=$(create_pipe dup "$S.dup,$S2.dup" 2>&1) && fail "pipe dup was accepted"
assert_contains "$out" "tables $S.dup and $S2.dup would both use the destination table name dup" "collision reason"

stop_daemon || fail "pgferryd exited non-zero"
log "ok"
