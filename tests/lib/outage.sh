# Stopping and starting the test servers on purpose (bash, sourced after common.sh). A server a
# test stopped is started again at exit whatever happens.
SERVERS="$PGFERRY_SOURCE_DIR/deploy/dev/servers.sh"
CH_DOWN=0
PG_DOWN=0
restore_servers() {
    [ $CH_DOWN = 1 ] && "$SERVERS" start-ch "$PGFERRY_SERVERS_DIR" >/dev/null 2>&1
    [ $PG_DOWN = 1 ] && "$SERVERS" start-pg "$PGFERRY_SERVERS_DIR" >/dev/null 2>&1
    return 0
}
EXIT_HOOKS+=(restore_servers)
ch_stop() { CH_DOWN=1; "$SERVERS" stop-ch "$PGFERRY_SERVERS_DIR" >/dev/null; }
ch_start() { "$SERVERS" start-ch "$PGFERRY_SERVERS_DIR" >/dev/null; CH_DOWN=0; }
pg_stop() { PG_DOWN=1; "$SERVERS" stop-pg "$PGFERRY_SERVERS_DIR" >/dev/null; }
pg_start() { "$SERVERS" start-pg "$PGFERRY_SERVERS_DIR" >/dev/null; PG_DOWN=0; }
pg_restart() { PG_DOWN=1; "$SERVERS" restart-pg "$PGFERRY_SERVERS_DIR" >/dev/null; PG_DOWN=0; }
