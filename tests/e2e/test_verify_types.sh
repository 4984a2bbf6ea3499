# verify over the whole type zoo (issue 12 item 3): every type of the README's type table, in
# columns named like the aliases and function names verify's queries use. Equal data must
# match (char(n) with its blanks too); one changed value per type must name its key; after
# the change is undone, verify must match again.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/compare.sh"

S="vty_$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE"
HSTORE=$(psql_q "SELECT count(*) FROM pg_available_extensions WHERE name = 'hstore'")
psql_q "CREATE SCHEMA $S;
  CREATE TYPE $S.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN $S.posint AS int CHECK (VALUE > 0);
  CREATE TABLE $S.zoo (
    id int PRIMARY KEY,
    b bool, count smallint, k int, h bigint, \"key\" oid, hash real, concat double precision,
    md5 numeric(12,2), x numeric, \"group\" uuid, bucket bytea, money money, src char(5),
    v varchar(20), n text, j json, jb jsonb, xm xml, d date, t time, ttz timetz,
    ts timestamp, tstz timestamptz, iv interval, ip inet, net cidr, mac macaddr, mac8 macaddr8,
    pt point, tsv tsvector, r int4range, e $S.mood, dom $S.posint, arr int[], arr2 text[][])"
if [ "$HSTORE" = 1 ]; then
    psql_q "CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA $S" 2>/dev/null
    HS=$(psql_q "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'hstore'").hstore
    psql_q "ALTER TABLE $S.zoo ADD COLUMN hs $HS"
fi
psql_q "INSERT INTO $S.zoo SELECT g, g % 2 = 0, g, g * 1000, g * 100000000000, g, g / 3.0, g / 7.0,
    g * 1.25, g / 9.0, md5(g::text)::uuid, decode(md5(g::text), 'hex'), g * 1.5, 'c' || g,
    'v' || g, 'text ' || g, ('{\"a\": ' || g || '}')::json, ('{\"b\": [' || g || ']}')::jsonb,
    ('<x>' || g || '</x>')::xml, date '2020-01-01' + g, time '10:00' + g * interval '1 minute',
    timetz '10:00+02', timestamp '2020-01-01 00:00:00.5' + g * interval '1 hour',
    timestamptz '2020-01-01 00:00+05' + g * interval '1 day', g * interval '1 second',
    ('10.0.0.' || g)::inet, '10.1.0.0/16', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
    point(g, -g), to_tsvector('simple', 'word' || g), int4range(g, g + 10), 'ok', g,
    ARRAY[g, NULL, g + 1], ARRAY[ARRAY['a', 'b'], ARRAY['c', NULL]]
  FROM generate_series(1, 60) g;
  INSERT INTO $S.zoo (id) VALUES (61)"
[ "$HSTORE" = 1 ] && psql_q "UPDATE $S.zoo SET hs = ('a=>' || id)::$HS WHERE id <= 60"
start_daemon
create_pipe vt "$S.zoo" >/dev/null
wait_for 90 "pipe vt Running" state_is vt Running
out=$("$CTL" --timeout 120000 verify vt) || fail "verify on equal data: $out"
assert_contains "$out" "match (61 rows)" "equal data matches"
# a row committed just before verify (under synchronous_commit = off, as on the test server):
# verify waits until the pipe has it (it used to compare first, about every other time)
for i in 1 2 3 4 5 6 7 8; do
    psql_q "INSERT INTO $S.zoo (id) VALUES ($((100 + i)))"
    out=$("$CTL" --timeout 120000 verify vt) || fail "verify right after a commit ($i): $out"
done
psql_q "DELETE FROM $S.zoo WHERE id > 100"
out=$("$CTL" --timeout 120000 verify vt) || fail "verify after the deletes: $out" # caught up before the pause

# one change per column: "column=new value" applied to row 1, 2, ... (groups of 8 rows)
changes=(
    "b=NOT b" "count=-count" "k=k + 1" "h=h - 1" "\"key\"=(\"key\"::int8 + 1)::oid" "hash=hash * 2"
    "concat=concat + 1e-15" "md5=md5 + 0.01" "x=x * 3" "\"group\"='00000000-0000-0000-0000-000000000000'"
    "bucket='\\x00'" "money=money + 0.01::money" "src='c'" "v=v || ' '" "n=n || 'x'"
    "j='{\"a\":1}'" "jb=jb || '{\"z\": 1}'" "xm='<y/>'" "d=d + 1" "t=t + interval '1 microsecond'"
    "ttz=timetz '10:00+03'" "ts=ts + interval '1 microsecond'" "tstz=tstz + interval '1 second'"
    "iv=iv + interval '1 month'" "ip='10.0.0.200/24'" "net='10.2.0.0/16'" "mac='08:00:2b:01:02:04'"
    "mac8='08:00:2b:01:02:03:04:06'" "pt=point(0, 0)" "tsv=to_tsvector('simple', 'other')"
    "r=int4range(1, 2, '[]')" "e='happy'" "dom=dom + 1000" "arr=ARRAY[1]" "arr2='{{a,b},{c,d}}'"
    "b=NULL" "n=''"
)
[ "$HSTORE" = 1 ] && changes+=("hs=('a=>zz')::$HS")
psql_q "CREATE TABLE $S.zoo_orig AS SELECT * FROM $S.zoo"
"$CTL" pause vt >/dev/null
wait_for 30 "pipe vt Paused" state_is vt Paused
i=0
while [ $i -lt ${#changes[@]} ]; do
    sql="" keys=()
    for g in 0 1 2 3 4 5 6 7; do
        [ $((i + g)) -lt ${#changes[@]} ] || break
        row=$((i + g + 1))
        sql+="UPDATE $S.zoo SET ${changes[$((i + g))]} WHERE id = $row;"
        keys+=("$row")
    done
    psql_q "BEGIN; $sql COMMIT;"
    set +e
    out=$("$CTL" --timeout 120000 verify vt); rc=$?
    set -e
    [ $rc -ne 0 ] || fail "verify matched after changing: $sql"
    for k in "${keys[@]}"; do
        assert_contains "$out" "key ($k)" "verify names the key of: ${changes[$((k - 1))]}"
    done
    n=$(grep -c "  key (" <<<"$out" || true)
    assert_eq "$n" "${#keys[@]}" "verify names exactly the changed keys ($out)"
    # undo: the destination still has the old values (the pipe is paused); take them back from
    # a copy made before the change
    psql_q "BEGIN; DELETE FROM $S.zoo WHERE id BETWEEN $((i + 1)) AND $((i + ${#keys[@]}));
      INSERT INTO $S.zoo SELECT * FROM ${S}.zoo_orig WHERE id BETWEEN $((i + 1)) AND $((i + ${#keys[@]})); COMMIT" 2>/dev/null ||
        fail "could not undo group at $i"
    out=$("$CTL" --timeout 120000 verify vt) || fail "verify after undoing the changes: $out"
    i=$((i + 8))
done
"$CTL" resume vt >/dev/null
wait_for 30 "pipe vt Running" state_is vt Running
log "ok"
