/*
 * cdc: the Running stage (DESIGN section 6). Streams the pipe's publication from its slot
 * (START_REPLICATION, pgoutput protocol 1) on a replication connection, turns every change into
 * a RowBinary row of its destination table (version = the change's WAL position, deletes as
 * rows with _pgferry_is_deleted = 1), inserts batches cut at commits, and only then tells the
 * slot that the batch's last commit is flushed. With nothing pending it confirms the positions
 * keepalives report, so an idle pipe does not hold WAL.
 *
 * Schema changes arrive as Relation messages: added columns are added in ClickHouse (with the
 * source's default for existing rows where PostgreSQL recorded one), renamed columns keep their
 * ClickHouse name, dropped columns stay in ClickHouse as Nullable; the new definitions go to
 * the supervisor with a sentence for the pipe's history.
 */
#ifndef PGFERRY_CDC_H
#define PGFERRY_CDC_H

#include <stddef.h>
#include "errclass.h"
#include "state.pb-c.h"
#include "worker.h"

/* Runs until stopped (ERRCLASS_NONE after flushing and acknowledging what was received) or an
 * error. tables are the recorded definitions; they are replaced in place when the source's
 * schema changes (the array stays owned by the caller's message). skip_before_lsn: transactions
 * committed before this position are skipped (already in the snapshot); NULL or "" for none.
 * counted_lsn: the position the supervisor stored with the counters; transactions committed
 * before it are skipped too (applied and counted), and the slot is confirmed no further than
 * the supervisor says it stored. table_counted[i] (n_table_counted of them, "" = none): the same
 * per table, whose counts can go past the pipe's position (a table inserted while another
 * holds the slot back). */
errclass_t cdc_run(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef **tables,
                   size_t n_tables, const char *skip_before_lsn, const char *counted_lsn,
                   char **table_counted, size_t n_table_counted, worker_t *w, char *err,
                   size_t errlen);

#endif
