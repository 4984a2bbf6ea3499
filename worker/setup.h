/*
 * setup: the Setup stage (DESIGN sections 4 and 7). Reads each source table's definition
 * (columns in order, types with typmods, nullability, key columns in key order), chooses the
 * destination types (typemap), and creates the ClickHouse database, one ReplacingMergeTree
 * table per source table and a view of its live rows. Re-running it over matching tables is
 * harmless; an existing table that does not match is a FATAL error naming the difference.
 */
#ifndef PGFERRY_SETUP_H
#define PGFERRY_SETUP_H

#include <stddef.h>
#include "errclass.h"
#include "state.pb-c.h"
#include "worker.h"

typedef struct {
    Pgferry__State__TableDef **tables; /* owned; free with setup_free_result */
    size_t n_tables;
    char detail[256];
} setup_result_t;

errclass_t setup_run(const Pgferry__State__PipeSpec *spec, worker_t *w, setup_result_t *out,
                     char *err, size_t errlen);
void setup_free_result(setup_result_t *r);

/* The CREATE TABLE statement for def in database db (exposed for tests). Caller frees. */
char *setup_table_ddl(const char *db, const Pgferry__State__TableDef *def);

#endif
