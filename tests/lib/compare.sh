# Comparing a source table with its destination (bash, sourced after common.sh).
# Both sides are rendered as tab-separated text with NULL as <null>; differences fail the test
# with the first differing lines.

# psql_tsv SQL: rows of SQL, tab-separated
psql_tsv() { psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" -c "$1"; }

# tables_match PGSQL CHSQL: true when both render identically
tables_match() {
    local a b
    a=$(psql_tsv "$1") || return 1
    b=$(ch_q "$2 FORMAT TSV") || return 1
    [ "$a" = "$b" ]
}

# show_diff PGSQL CHSQL: the first differences (for a failure message)
show_diff() {
    diff <(psql_tsv "$1") <(ch_q "$2 FORMAT TSV") | head -20 >&2 || true
}

# wait_match SECONDS WHAT PGSQL CHSQL
wait_match() {
    local secs=$1 what=$2 pg=$3 ch=$4
    local deadline=$(($(date +%s) + secs))
    while [ "$(date +%s)" -le $deadline ]; do
        if tables_match "$pg" "$ch"; then return 0; fi
        sleep 0.3
    done
    echo "---- $what: PostgreSQL (<) vs ClickHouse (>)" >&2
    show_diff "$pg" "$ch"
    fail "timed out after ${secs}s waiting for $what to match"
}

# no_duplicates DB.TABLE KEYCOLS: FINAL must show each key once
no_duplicates() {
    local n
    n=$(ch_q "SELECT count() FROM (SELECT $2, count() AS c FROM $1 FINAL GROUP BY $2 HAVING c > 1)")
    assert_eq "$n" 0 "duplicate keys in $1 under FINAL"
}

# wait_slot_caught_up SECONDS SLOT: the slot confirmed everything committed so far
wait_slot_caught_up() {
    local lsn
    lsn=$(committed_lsn)
    wait_for "$1" "slot $2 confirms $lsn" slot_confirms "$2" "$lsn"
}
# committed_lsn: a position at or after the end of every commit so far. One synchronous commit
# flushes the WAL before it (under synchronous_commit = off a commit that returned may not be
# flushed, and the walsender reads only flushed WAL); the insert position would not do either:
# WAL of no transaction can wait unflushed behind it for long. The commit must write WAL (a
# logical message): PostgreSQL commits a transaction that only took an id asynchronously.
committed_lsn() {
    psql -X -q -At -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" \
        -c "BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_logical_emit_message(true, 'pgferry-test', ''); COMMIT" \
        -c "SELECT pg_current_wal_flush_lsn()" | tail -1
}
slot_confirms() {
    [ "$(psql_q "SELECT confirmed_flush_lsn >= '$2' FROM pg_replication_slots WHERE slot_name = '$1'")" = t ]
}
# pg_true SQL: the query returns t
pg_true() { [ "$(psql_q "$1")" = t ]; }
