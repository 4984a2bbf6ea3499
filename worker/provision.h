/*
 * provision: the Provisioning checks of a pipe (DESIGN section 4): the source is reachable
 * over normal and replication connections, runs with wal_level=logical, the user may
 * replicate, every table exists and has a key, named slot/publication exist; the destination
 * answers with working credentials. It creates nothing.
 */
#ifndef PGFERRY_PROVISION_H
#define PGFERRY_PROVISION_H

#include <stddef.h>
#include "errclass.h"
#include "state.pb-c.h"
#include "worker.h"

typedef struct {
    char source_version[64];
    char dest_version[64];
    char detail[256];
} provision_result_t;

/* Returns ERRCLASS_NONE and fills out, or the error class with an operator-facing sentence in
 * err (what is wrong and how to fix it). w may be NULL (no progress reports). */
errclass_t provision_run(const Pgferry__State__PipeSpec *spec, worker_t *w, provision_result_t *out,
                         char *err, size_t errlen);

#endif
