# Provisioning against the real servers: good tables reach Setup; each kind of bad source or
# destination ends in Failed with the reason verbatim, without restarts; no password shows.
source "$(dirname "$0")/../lib/common.sh"

S="it_prov_$$"
SECRET="Zq9-distinct-Xv$$"
PG_CLEANUP_SQL="DROP SCHEMA IF EXISTS $S CASCADE; DROP ROLE IF EXISTS ${S}_norepl;
  SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${S}_slot';"
psql_q "CREATE SCHEMA $S;
  CREATE TABLE $S.good (id bigint PRIMARY KEY, v text);
  CREATE TABLE $S.\"Mixed Case\" (\"Id\" int, k2 text, PRIMARY KEY (\"Id\", k2));
  CREATE TABLE $S.parted (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);
  CREATE TABLE $S.parted_2026 PARTITION OF $S.parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
  CREATE TABLE $S.nokey (v text);
  CREATE TABLE $S.ri (a int NOT NULL, b text);
  CREATE UNIQUE INDEX ri_a ON $S.ri (a);
  ALTER TABLE $S.ri REPLICA IDENTITY USING INDEX ri_a;
  CREATE TABLE $S.nothing (id int PRIMARY KEY);
  ALTER TABLE $S.nothing REPLICA IDENTITY NOTHING;
  CREATE VIEW $S.v AS SELECT 1 AS x;
  CREATE ROLE ${S}_norepl LOGIN PASSWORD '$SECRET';
  GRANT USAGE ON SCHEMA $S TO ${S}_norepl; GRANT SELECT ON $S.good TO ${S}_norepl;"
psql_q "SELECT pg_create_logical_replication_slot('${S}_slot', 'pgoutput')" >/dev/null
TAKEN="taken$$"   # the slot pgferry would create for pipe $TAKEN exists already
psql_q "SELECT pg_create_logical_replication_slot('pgferry_$TAKEN', 'pgoutput')" >/dev/null
PG_CLEANUP_SQL="$PG_CLEANUP_SQL SELECT pg_drop_replication_slot('pgferry_$TAKEN');"


PG_HOSTPART=${PGFERRY_PG_URI#*@}                 # 127.0.0.1:port/postgres
CH_HOSTPART=${PGFERRY_CH_URL#*@}                 # 127.0.0.1:port

export PGFERRY_SECRET_CH_PW="$PGFERRY_CH_PASSWORD"     # the daemon's environment holds a password
# reserved secrets go only to the endpoints they are bound to: here the test ClickHouse
start_daemon --secret-bind "PGFERRY_SECRET_CH_PW=$CH_HOSTPART" \
    --secret-bind "PGFERRY_SECRET_NOT_SET=$CH_HOSTPART" --secret-bind "ch.pw=$CH_HOSTPART"
unset PGFERRY_SECRET_CH_PW

create_pipe good "$S.good,$S.\"Mixed Case\",$S.parted,$S.ri" >/dev/null
create_pipe nokey "$S.good,$S.nokey" >/dev/null
create_pipe missing "$S.does_not_exist" >/dev/null
create_pipe view "$S.v" >/dev/null
create_pipe partition "$S.parted_2026" >/dev/null
create_pipe nothing "$S.nothing" >/dev/null
create_pipe userslot "$S.good" --slot "${S}_slot" >/dev/null
create_pipe "$TAKEN" "$S.good" >/dev/null
create_pipe noslot "$S.good" --slot "${S}_missing" >/dev/null
create_pipe nopub "$S.good" --publication "${S}_nopub" >/dev/null
"$CTL" create norepl --source "postgresql://${S}_norepl:$SECRET@$PG_HOSTPART" \
    --dest "$PGFERRY_CH_URL" --tables "$S.good" >/dev/null
"$CTL" create badpgpw --source "postgresql://postgres:$SECRET@$PG_HOSTPART" \
    --dest "$PGFERRY_CH_URL" --tables "$S.good" >/dev/null
"$CTL" create badchpw --source "$PGFERRY_PG_URI" \
    --dest "http://default:$SECRET@$CH_HOSTPART" --tables "$S.good" >/dev/null

# the ClickHouse password from a variable of pgferryd's environment (the URL has none)
create_pipe envpw "$S.good" --dest "http://default@$CH_HOSTPART" --dest-password-env PGFERRY_SECRET_CH_PW >/dev/null
create_pipe noenv "$S.good" --dest "http://default@$CH_HOSTPART" --dest-password-env PGFERRY_SECRET_NOT_SET >/dev/null
# ... or from a file inside secrets_dir (STATE_DIR/secrets by default, made by pgferryd)
[ "$(stat -c %a "$STATE_DIR/secrets")" = 700 ] || fail "secrets_dir is not 0700"
printf '%s\n' "$PGFERRY_CH_PASSWORD" >"$STATE_DIR/secrets/ch.pw"
create_pipe filepw "$S.good" --dest "http://default@$CH_HOSTPART" --dest-password-file ch.pw >/dev/null

for p in envpw noenv filepw good userslot $TAKEN nokey missing view partition nothing noslot nopub norepl badpgpw badchpw; do
    wait_for 20 "pipe $p leaves Provisioning" bash -c "[ \"\$('$CTL' status $p --json | jq -r .state)\" != Provisioning ]"
done

wait_for 20 "pipe good finishes Setup and its load" state_is good Running
j=$(pipe_json good)
assert_contains "$(jq -r .source_version <<<"$j")" "PostgreSQL 15" "source version recorded"
assert_contains "$(jq -r .destination_version <<<"$j")" "ClickHouse 18.16" "dest version recorded"
assert_eq "$(jq -r '.history | map(.to) | join(",")' <<<"$j")" "Provisioning,Setup,Snapshot,Running" "history"
assert_eq "$(jq -r '.tables[1].table' <<<"$j")" "Mixed Case" "quoted table name kept"
assert_eq "$(jq -r .slot <<<"$j")" "pgferry_good" "default slot name"

check_failed() { # pipe, expected reason fragment
    local j; j=$(pipe_json "$1")
    assert_eq "$(jq -r .state <<<"$j")" Failed "state of $1"
    assert_contains "$(jq -r .last_error.message <<<"$j")" "$2" "reason of $1"
    assert_eq "$(jq -r .last_error.class <<<"$j")" FATAL "error class of $1"
    assert_eq "$(jq -r .worker_restarts <<<"$j")" 0 "$1 was not restarted"
    assert_contains "$(jq -r '.history[-1].reason' <<<"$j")" "$2" "history of $1"
}
check_failed nokey "table $S.nokey has no primary key; add one or set REPLICA IDENTITY USING INDEX"
check_failed missing "table $S.does_not_exist does not exist on the source"
check_failed view "$S.v is a view; only tables can be replicated"
check_failed partition "is a partition; name its partitioned (root) table instead"
check_failed nothing "REPLICA IDENTITY NOTHING"
check_failed "$TAKEN" "replication slot pgferry_$TAKEN already exists"
wait_for 20 "pipe userslot reaches Running" state_is userslot Running
j=$(pipe_json userslot)
assert_eq "$(jq -r .slot_owned <<<"$j")" false "user's slot is not owned"

check_failed noslot "replication slot ${S}_missing does not exist"
check_failed nopub "publication ${S}_nopub does not exist"
check_failed norepl "may not replicate"
check_failed noenv "the ClickHouse password variable PGFERRY_SECRET_NOT_SET is not set in pgferryd's environment"
wait_for 20 "pipe envpw reaches Running" state_is envpw Running
wait_for 20 "pipe filepw reaches Running" state_is filepw Running
check_failed badpgpw "password authentication failed"
check_failed badchpw "Wrong password"

# the text status names the reason too
out=$("$CTL" status nokey)
assert_contains "$out" "Failed since" "text status state"
assert_contains "$out" "has no primary key; add one or set REPLICA IDENTITY USING INDEX" "text reason"

# the distinctive password appears nowhere: replies, list, log, state files
all=$("$CTL" list; "$CTL" list --json; for p in norepl badpgpw badchpw; do "$CTL" status $p; "$CTL" status $p --json; done)
case "$all" in *"$SECRET"*) fail "password shown by pgferryctl" ;; esac
assert_contains "$all" ":*****@" "masked URIs shown"
! grep -q -- "$SECRET" "$TEST_DIR/pgferryd.log" || fail "password in the daemon log"

# a malformed source is refused at create, with the reason, without the password; control
# characters in it are not written raw into the log (they could forge log lines)
# refused_create NAME SOURCE EXPECTED: create is refused as a bad argument (exit 2) with EXPECTED
# in the reply, which never shows the password
refused_create() {
    local out rc
    set +e
    out=$("$CTL" create "$1" --source "$2" --dest "$PGFERRY_CH_URL" --tables "$S.good" 2>&1)
    rc=$?
    set -e
    assert_eq "$rc" 2 "create $1 is refused as a bad argument"
    assert_contains "$out" "$3"
    case "$out" in *"$SECRET"*) fail "password in the refusal" ;; esac
}
refused_create badport "postgresql://postgres:$SECRET@127.0.0.1:T/postgres" 'invalid port "T"'
refused_create badopt "postgresql://127.0.0.1/postgres?nosuch=1" 'invalid connection option "nosuch"'
refused_create badctl "$(printf 'postgresql://127.0.0.1/db\x0f\n2026 error [1 supervisor] forged')" \
    "control character"
grep -q "request refused: invalid port" "$TEST_DIR/pgferryd.log" || fail "refusals are logged"
grep -q "request refused: the source connection string holds a control character" \
    "$TEST_DIR/pgferryd.log" || fail "the control-character refusal is logged"
! grep -q "^2026 error \[1 supervisor\] forged" "$TEST_DIR/pgferryd.log" || fail "a forged log line"
! grep -q $'\x0f' "$TEST_DIR/pgferryd.log" || fail "a raw control byte in the log"
for p in badport badopt badctl; do
    set +e; "$CTL" status $p >/dev/null 2>&1; rc=$?; set -e
    assert_eq "$rc" 1 "refused pipe $p does not exist"
done

# a Failed pipe gets no workers and stays Failed
sleep 1
assert_eq "$(pipe_state nokey)" Failed "Failed is stable"
assert_eq "$(worker_pids nokey)" "" "no worker for a Failed pipe"

# drop forgets a pipe; its name can be used again
"$CTL" drop nokey >/dev/null
set +e; "$CTL" status nokey >/dev/null 2>&1; rc=$?; set -e
assert_eq "$rc" 1 "dropped pipe is gone"
create_pipe nokey "$S.good" >/dev/null
wait_for 20 "re-created pipe reaches Running" state_is nokey Running
assert_eq "$(pipe_json nokey | jq -r '.history | length')" 4 "history starts anew"

# a source without logical decoding: its own small cluster with wal_level = replica
PG2="$TEST_DIR/pg-replica"
EXIT_HOOKS+=("bash '$PGFERRY_SOURCE_DIR/deploy/dev/servers.sh' destroy '$PG2'")
PGFERRY_PG_EXTRA_CONF="wal_level = replica" bash "$PGFERRY_SOURCE_DIR/deploy/dev/servers.sh" start-pg "$PG2" >/dev/null
PG2_PORT=$(sed -n 's/^PG_PORT=//p' "$PG2/ports")
psql -X -q "postgresql://postgres:pgferry@127.0.0.1:$PG2_PORT/postgres" -c "CREATE TABLE t (id int PRIMARY KEY)"
"$CTL" create replica --source "postgresql://postgres:pgferry@127.0.0.1:$PG2_PORT/postgres" \
    --dest "$PGFERRY_CH_URL" --tables t >/dev/null
wait_for 20 "pipe replica leaves Provisioning" bash -c "[ \"\$('$CTL' status replica --json | jq -r .state)\" != Provisioning ]"
check_failed replica "wal_level is 'replica' on the source; set wal_level = logical and restart PostgreSQL"

stop_daemon || fail "pgferryd exited non-zero"
log "ok"
