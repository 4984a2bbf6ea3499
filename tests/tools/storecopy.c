/*
 * pgferry-test-storecopy STATE_DIR FROM TO: writes a copy of pipe FROM's record as pipe TO,
 * Paused, with FROM's slot and publication: two pipes sharing them, as a store written by a
 * pgferryd before create refused that may hold. pgferryd must not run meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s STATE_DIR FROM TO\n", argv[0]);
        return 2;
    }
    char err[512];
    store_t *s = store_open(argv[1], err, sizeof(err));
    if (!s) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s, argv[2], &rec) || !rec) {
        fprintf(stderr, "no pipe %s\n", argv[2]);
        store_destroy(&s);
        return 1;
    }
    char db[300];
    snprintf(db, sizeof(db), "%s_copy", rec->spec->dest_database);
    char *old_name = rec->spec->name, *old_db = rec->spec->dest_database;
    rec->spec->name = argv[3];
    rec->spec->dest_database = db;
    rec->prev_state = rec->state;
    rec->state = PGFERRY__STATE__PIPE_STATE__PAUSED;
    Pgferry__State__HistoryEvent ev = PGFERRY__STATE__HISTORY_EVENT__INIT;
    ev.seq = ++rec->history_seq;
    ev.from = rec->prev_state;
    ev.to = rec->state;
    ev.time_us = rec->state_since_us;
    ev.reason = "copied by pgferry-test-storecopy";
    bool ok = store_put_pipe(s, rec, &ev);
    rec->spec->name = old_name;
    rec->spec->dest_database = old_db;
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
    store_destroy(&s);
    if (!ok) {
        fprintf(stderr, "store write failed\n");
        return 1;
    }
    return 0;
}
