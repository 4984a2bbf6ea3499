#!/usr/bin/env bash
# Regenerates tests/fixtures/pgoutput_v1.txt: real pgoutput (proto_version 1) messages from a
# PostgreSQL 15 server, one per line as "<kind> <hex>", for tests/unit/test_pgoutput.c.
# Needs a server with wal_level=logical (e.g. eval "$(deploy/dev/servers.sh start)").
set -euo pipefail
: "${PGFERRY_PG_URI:?start the servers first}"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$PGFERRY_PG_URI" -c "$1"; }
q "SET client_min_messages = warning; DROP SCHEMA IF EXISTS cap CASCADE; DROP PUBLICATION IF EXISTS cap_pub;
   SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'cap_slot'" >/dev/null
q "CREATE SCHEMA cap; CREATE TYPE cap.mood AS ENUM ('sad', 'ok');
   CREATE TABLE cap.t (id int PRIMARY KEY, txt text, n numeric(12,2), m cap.mood, big text);
   CREATE TABLE cap.f (id int PRIMARY KEY, v text); ALTER TABLE cap.f REPLICA IDENTITY FULL;
   CREATE PUBLICATION cap_pub FOR TABLE cap.t, cap.f"
q "SELECT pg_create_logical_replication_slot('cap_slot', 'pgoutput')" >/dev/null
q "INSERT INTO cap.t VALUES (1, 'a', 1.50, 'ok', NULL)"
q "BEGIN; UPDATE cap.t SET txt = 'b' WHERE id = 1; UPDATE cap.t SET id = 2 WHERE id = 1; COMMIT"
q "INSERT INTO cap.t VALUES (3, E'tab\\there', NULL, NULL, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g))"
q "UPDATE cap.t SET txt = 'toast kept' WHERE id = 3"
q "DELETE FROM cap.t WHERE id = 2"
q "INSERT INTO cap.f VALUES (1, 'x'); UPDATE cap.f SET v = 'y'; DELETE FROM cap.f"
q "TRUNCATE cap.t, cap.f RESTART IDENTITY"
# (Message and Origin are not produced through pg_logical_slot_get_binary_changes here; the
# unit test builds those two from the protocol documentation)
q "SELECT get_byte(data, 0), encode(data, 'hex') FROM pg_logical_slot_get_binary_changes('cap_slot', NULL, NULL,
     'proto_version', '1', 'publication_names', 'cap_pub', 'messages', 'true')" |
    while IFS='|' read -r b hex; do printf '%s %s\n' "$(printf "\\$(printf '%03o' "$b")")" "$hex"; done
q "SET client_min_messages = warning; SELECT pg_drop_replication_slot('cap_slot');
   DROP PUBLICATION cap_pub; DROP SCHEMA cap CASCADE" >/dev/null
