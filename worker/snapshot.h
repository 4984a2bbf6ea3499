/*
 * snapshot: the initial load of a snapshot-only pipe (DESIGN section 5), in two roles.
 *
 * The coordinator ("snapshot") creates a temporary logical slot with an exported snapshot on a
 * replication connection, truncates the destination tables (a restarted load starts from empty),
 * splits every table (every leaf partition of a partitioned table) into CTID block ranges of
 * about rows_per_partition rows, sends that plan to the supervisor and then keeps the snapshot
 * alive until it is told to stop. The temporary slot goes with its connection, so nothing is
 * left behind.
 *
 * A range worker ("snapshot-range") imports the snapshot (REPEATABLE READ, READ ONLY), COPYs its
 * range in text format, converts every row to RowBinary (typemap) and streams it into
 * ClickHouse with one chunked HTTP insert, so memory stays bounded. Snapshot rows carry version
 * 0; a range loaded twice after a crash collapses under FINAL.
 */
#ifndef PGFERRY_SNAPSHOT_H
#define PGFERRY_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include "chclient.h"
#include "errclass.h"
#include "state.pb-c.h"
#include "worker.h"
#include "worker.pb-c.h"

typedef struct {
    uint64_t rows, bytes;
    char detail[256];
} snapshot_result_t;

/* resync: the load goes into <target>_resync tables. Loads the tables without a snapshot_lsn.
 * keep_slot: the pipe's slot holds unapplied changes (tables added to a running pipe): the snapshot
 * comes from a temporary slot. */
/* The definitions of the tables to load are read again under the exported snapshot: one that
 * changed since Setup (a column renamed, added or dropped in between) replaces the recorded one
 * in tables (the caller's array), its still empty destination table is created again, and the
 * new definitions go to the supervisor before the plan. */
errclass_t snapshot_coordinate(const Pgferry__State__PipeSpec *spec,
                               Pgferry__State__TableDef **tables, size_t n_tables, bool keep_slot,
                               bool resync, worker_t *w, snapshot_result_t *out, char *err,
                               size_t errlen);

/* The connections a range worker keeps from one range to the next. */
typedef struct {
    PGconn *pg;
    ch_client_t *ch;
} snapshot_session_t;

/* Loads one range over ss's connections (opened on first use, closed after a failure). */
errclass_t snapshot_load_range_in(snapshot_session_t *ss, const Pgferry__State__PipeSpec *spec,
                                  Pgferry__State__TableDef *const *tables, size_t n_tables,
                                  const char *snapshot_name, const Pgferry__Worker__Range *range,
                                  bool resync, worker_t *w, snapshot_result_t *out, char *err,
                                  size_t errlen);
void snapshot_session_close(snapshot_session_t *ss);

errclass_t snapshot_load_range(const Pgferry__State__PipeSpec *spec,
                               Pgferry__State__TableDef *const *tables, size_t n_tables,
                               const char *snapshot_name, const Pgferry__Worker__Range *range,
                               bool resync, worker_t *w, snapshot_result_t *out, char *err,
                               size_t errlen);

#endif
