/*
 * apply: how CDC changes become ClickHouse rows (DESIGN section 6; docs/ARCHITECTURE.md
 * "Versions"). Owns the pending rows of every destination table and nothing else: no socket,
 * no SQL text. ClickHouse and the source are reached through apply_ops_t, so unit tests run
 * the same code against a fake ClickHouse.
 *
 * The model:
 *  - a row's version is the commit LSN of its transaction (pgoutput sends it in BEGIN), so a
 *    later commit always outranks an earlier one, whatever order their WAL records had;
 *  - inside a flush each key of a table has one row, the last change of it (an update that
 *    changes the key: a row for the new key, a delete row for the old one); the changes of one
 *    transaction therefore never compete at equal versions inside one insert;
 *  - a transaction too large for one insert goes out in pieces, in order; ClickHouse keeps, of
 *    rows with equal version, the one inserted last, which is the later change;
 *  - a replay is not applied again: the changes of a table with a version below the highest
 *    version ClickHouse held when this worker first saw the table are already there (a table's
 *    rows reach ClickHouse in stream order), so they are skipped; only the transaction at that
 *    version (possibly inserted in part) is applied again;
 *  - unchanged TOASTed values (an update under the default replica identity does not send
 *    them) are taken from the same flush when the key was written earlier in it, otherwise
 *    looked up in ClickHouse in one query per table for all keys that need them (bounded by
 *    chunk_bytes, before anything of the flush is inserted): the newest row of the old key,
 *    which is the value as of the change, since ClickHouse holds nothing later; in the
 *    transaction applied again, the newest row below its version unless this worker wrote the
 *    key in it; for keys ClickHouse does not have (a row of a cdc-only pipe never loaded, a
 *    replay across a TRUNCATE, data removed outside pgferry) the source's current row of the
 *    change's own (new) key: any later change of it is still to come in the stream.
 * Memory: the pending rows (at most about chunk_bytes, then a piece is inserted), plus during
 * a flush one lookup reply of at most chunk_bytes plus one row.
 */
#ifndef PGFERRY_APPLY_H
#define PGFERRY_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chclient.h"
#include "chtable.h"
#include "errclass.h"
#include "pgoutput.h"

/* A row found by a lookup: key (RowBinary of the key columns in key order), whether it is a
 * delete row, and the values of the requested columns (RowBinary, in the requested order). */
typedef bool (*apply_row_fn)(void *ud, const unsigned char *key, size_t key_len, bool deleted,
                             const unsigned char *vals, size_t vals_len);

typedef struct {
    /* INSERT INTO t (t->insert_sql) with a body produced by fn. */
    errclass_t (*insert)(void *ud, const chtable_t *t, ch_stream_fn fn, void *fnud, char *err,
                         size_t errlen);
    /* The latest stored row (FINAL) of each key in keys (nkeys RowBinary key tuples back to
     * back), of the rows with a version below `below` when it is not 0: on_row once per key
     * found, with the values of cols. May stop early once the rows delivered hold budget
     * bytes: *complete is then false and the keys not delivered are asked again. */
    errclass_t (*lookup)(void *ud, const chtable_t *t, const size_t *cols, size_t ncols,
                         const unsigned char *keys, size_t keys_len, size_t nkeys, uint64_t below,
                         size_t budget, apply_row_fn on_row, void *cbud, bool *complete, char *err,
                         size_t errlen);
    /* The source's current row of each key (values encoded as RowBinary); keys it does not
     * have are not delivered. */
    errclass_t (*source_lookup)(void *ud, const chtable_t *t, const size_t *cols, size_t ncols,
                                const unsigned char *keys, size_t keys_len, size_t nkeys,
                                apply_row_fn on_row, void *cbud, char *err, size_t errlen);
    /* Empties the table. */
    errclass_t (*truncate)(void *ud, const chtable_t *t, char *err, size_t errlen);
    /* Writes a delete row at version for every live row of partition `partition`. */
    errclass_t (*truncate_partition)(void *ud, const chtable_t *t, uint32_t partition,
                                     uint64_t version, char *err, size_t errlen);
    /* The highest version stored in the table (0 when it is empty). */
    errclass_t (*max_version)(void *ud, const chtable_t *t, uint64_t *version, char *err,
                              size_t errlen);
} apply_ops_t;

typedef struct apply apply_t;

/* chunk_bytes: the most pending bytes held before a piece is inserted. NULL on out of memory. */
apply_t *apply_new(const apply_ops_t *ops, void *ud, size_t chunk_bytes);
void apply_destroy(apply_t **a);

/* Registers a destination table; returns its index, -1 on out of memory. The chtable stays the
 * caller's and must live until apply_destroy or apply_set_table. */
int apply_add_table(apply_t *a, const chtable_t *t);
/* The table changed shape (schema change): its pending rows must have been flushed. */
void apply_set_table(apply_t *a, int table, const chtable_t *t);

/* Changes. Values are given per definition column (vals[i] for definition column i). The
 * version is the transaction's commit LSN; partition the relation the change came from (a leaf
 * partition's oid; ignored for tables without the partition column). */
errclass_t apply_insert(apply_t *a, int table, const pgo_value_t *const *newv, uint64_t version,
                        uint32_t partition, char *err, size_t errlen);
/* oldv: the key columns at least (replica identity), or the whole old row. */
errclass_t apply_delete(apply_t *a, int table, const pgo_value_t *const *oldv, uint64_t version,
                        uint32_t partition, char *err, size_t errlen);
/* oldv: NULL when the update did not send an old row (key unchanged, default identity);
 * old_full: oldv holds every column (REPLICA IDENTITY FULL), so unchanged TOAST values come
 * from it. */
errclass_t apply_update(apply_t *a, int table, const pgo_value_t *const *oldv, bool old_full,
                        const pgo_value_t *const *newv, uint64_t version, uint32_t partition,
                        char *err, size_t errlen);
/* TRUNCATE at version: every pending row (all tables) is inserted first; partition 0 empties the
 * table, another value removes the rows of that partition only. */
errclass_t apply_truncate(apply_t *a, int table, uint32_t partition, uint64_t version, char *err,
                          size_t errlen);

/* Inserts every pending row (the batch, or a piece of a large transaction). */
errclass_t apply_flush(apply_t *a, char *err, size_t errlen);
/* Inserts the pending rows of one table. */
errclass_t apply_flush_table(apply_t *a, int table, char *err, size_t errlen);

/* Pending rows and bytes (the bytes include an estimate of the TOAST values to be looked up). */
size_t apply_pending_rows(const apply_t *a);
size_t apply_table_pending_rows(const apply_t *a, int table);
size_t apply_pending_bytes(const apply_t *a);

typedef struct {
    uint64_t inserts;     /* INSERT statements sent */
    uint64_t rows;        /* rows inserted */
    uint64_t bytes;       /* RowBinary bytes inserted */
    uint64_t lookups;     /* lookup queries sent to ClickHouse */
    uint64_t looked_up;   /* keys resolved by them */
    uint64_t from_batch;  /* unchanged values taken from the same flush */
    uint64_t from_source; /* keys resolved from the source's current row */
    uint64_t unresolved;  /* rows neither had the values of (written as deleted: a later change
                           * of the key is due) */
    uint64_t replayed;    /* changes skipped: ClickHouse already had them (a replay) */
    uint64_t collapsed;   /* changes replaced by a later change of the same key */
    uint64_t insert_ms;   /* time spent in inserts (producing the rows included) */
    uint64_t lookup_ms;   /* time spent in lookups in ClickHouse (the resolving included) */
} apply_stats_t;
const apply_stats_t *apply_stats(const apply_t *a);
/* RowBinary bytes inserted into table since the last call (for per-table reports). */
uint64_t apply_take_table_bytes(apply_t *a, int table);

#endif
