/*
 * applyio: apply_ops_t for the real servers. Inserts and lookups go to ClickHouse over HTTP
 * (lookups send their keys as RowBinary external data, so keys need no SQL literals and match
 * byte for byte); the source lookup reads the current rows from PostgreSQL. SQL text for the
 * apply model lives here and only here.
 */
#ifndef PGFERRY_APPLYIO_H
#define PGFERRY_APPLYIO_H

#include <libpq-fe.h>
#include "apply.h"
#include "chclient.h"

typedef struct {
    ch_client_t *ch;
    /* the plain (not replication) source connection, made usable by ensure_pg */
    PGconn **pg;
    errclass_t (*ensure_pg)(void *ud, char *err, size_t errlen);
    void *ensure_ud;
} applyio_t;

extern const apply_ops_t applyio_ops;

#endif
