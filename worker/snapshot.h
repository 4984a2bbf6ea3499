/*
 * snapshot: the initial load of a snapshot-only pipe, in one worker process. A temporary
 * logical slot on a replication connection exports a snapshot; a second connection imports it
 * (REPEATABLE READ, READ ONLY) and COPYs each table in text format; every row is converted to
 * RowBinary (typemap) and streamed into ClickHouse with a chunked HTTP insert, so memory stays
 * bounded whatever the table size. Each table is truncated in ClickHouse first: a restarted
 * load starts over and never doubles a row. Snapshot rows carry version 0.
 *
 * Not here yet: parallel range workers and range checkpoints (DESIGN section 5), and the
 * permanent slot a snapshot+cdc pipe needs.
 */
#ifndef PGFERRY_SNAPSHOT_H
#define PGFERRY_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include "errclass.h"
#include "state.pb-c.h"
#include "worker.h"

typedef struct {
    uint64_t rows, bytes;
    char detail[256];
} snapshot_result_t;

errclass_t snapshot_run(const Pgferry__State__PipeSpec *spec,
                        Pgferry__State__TableDef *const *tables, size_t n_tables, worker_t *w,
                        snapshot_result_t *out, char *err, size_t errlen);

#endif
