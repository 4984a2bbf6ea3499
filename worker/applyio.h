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
#include "chcluster.h"

typedef struct {
    char *target;
    unsigned switches; /* ch_client_switches when its replica was last synced */
} applyio_synced_t;

typedef struct {
    ch_client_t *ch;
    const chcluster_t *cl; /* NULL or one node: no replica to sync */
    const char *db;        /* the destination database */
    applyio_synced_t *synced;
    size_t nsynced;
    /* the plain (not replication) source connection, made usable by ensure_pg */
    PGconn **pg;
    errclass_t (*ensure_pg)(void *ud, char *err, size_t errlen);
    void *ensure_ud;
} applyio_t;

extern const apply_ops_t applyio_ops;

/* On a cluster: the replica of target's data at the endpoint in use synced (worker_sync_replica)
 * once, and again after each endpoint switch, before pgferry reads the table. */
errclass_t applyio_synced(applyio_t *io, const char *target, char *err, size_t errlen);
void applyio_free(applyio_t *io);

/* Empties table `db`.`table` in ClickHouse so that its rows stay gone: in ClickHouse 18.16 a
 * merge that is running during TRUNCATE can finish afterwards and bring the merged rows back.
 * Merges of the table are stopped, the running ones awaited, the table truncated, merges
 * started again. Parts that TRUNCATE left on disk would come back at ClickHouse's next start:
 * a mutation deleting every row of the parts older than it follows the TRUNCATE. On a cluster
 * only that mutation, ON CLUSTER (see applyio.c). */
errclass_t applyio_truncate(ch_client_t *ch, const chcluster_t *cl, const char *db,
                            const char *table, char *err, size_t errlen);

/* Starts the table's merges (after a worker died between stopping and starting them). */
errclass_t applyio_start_merges(ch_client_t *ch, const chcluster_t *cl, const char *db,
                                const char *table, char *err, size_t errlen);

#endif
