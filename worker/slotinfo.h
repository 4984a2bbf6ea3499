/*
 * slotinfo: the pipe's replication slot as the source sees it (position, lag, retained WAL,
 * wal_status), for the CDC worker's periodic report and for the monitor role that watches the
 * slot of a Paused pipe (no worker streams from it then, so its retained WAL grows).
 */
#ifndef PGFERRY_SLOTINFO_H
#define PGFERRY_SLOTINFO_H

#include <libpq-fe.h>
#include <stddef.h>
#include "errclass.h"
#include "state.pb-c.h"
#include "worker.h"
#include "worker.pb-c.h"

typedef struct {
    Pgferry__Worker__SlotInfo msg; /* its strings point into the buffers below */
    char current[32], confirmed[32], restart[32], wal_status[32];
} slotinfo_t;

/* Reads the slot. A missing or lost slot is a FATAL error whose message says how to recover. */
errclass_t slotinfo_query(PGconn *pg, const char *slot, slotinfo_t *out, char *err, size_t errlen);

/* The monitor role: reports the slot every interval_ms until stopped. */
errclass_t monitor_run(const Pgferry__State__PipeSpec *spec, worker_t *w, int interval_ms,
                       char *err, size_t errlen);

#endif
