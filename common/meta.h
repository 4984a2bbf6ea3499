/*
 * meta: names and defaults that several modules share, written once: pgferry's own columns
 * in every destination table (DESIGN section 7) and the CDC batch defaults.
 */
#ifndef PGFERRY_META_H
#define PGFERRY_META_H

/* the row's version: 0 for snapshot rows, the commit LSN of its transaction for CDC rows */
#define META_VERSION "_pgferry_version"
/* 1 on a delete row (a tombstone: key columns set, the rest NULL or zero) */
#define META_DELETED "_pgferry_is_deleted"
/* when ClickHouse received the row */
#define META_SYNCED "_pgferry_synced_at"
/* partitioned source tables only: the leaf partition (its relation oid) the row lives in, so a
 * TRUNCATE of one partition removes exactly its rows */
#define META_PARTITION "_pgferry_partition"
/* every pgferry column starts with this; a source column that does too is refused */
#define META_PREFIX "_pgferry_"

#define BATCH_DEFAULT_MAX_ROWS 100000u
#define BATCH_DEFAULT_MAX_BYTES (16u << 20)
#define BATCH_DEFAULT_MAX_WAIT_MS 200u

#endif
