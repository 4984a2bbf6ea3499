/*
 * chtable: one destination table as the writers see it (the snapshot's range workers and CDC):
 * the encoder of every recorded column, its quoted name, and the INSERT statement whose
 * RowBinary rows (or Native blocks) are the columns in definition order, then the version, the
 * deleted flag and, for partitioned sources, the leaf partition. The one place that INSERT is
 * built. No I/O.
 */
#ifndef PGFERRY_CHTABLE_H
#define PGFERRY_CHTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "errclass.h"
#include "state.pb-c.h"
#include "typemap.h"

/* The destination column of a source column (its own name unless renamed at the source). */
static inline const char *
chtable_col_name(const Pgferry__State__ColumnDef *c)
{
    return c->ch_name && c->ch_name[0] ? c->ch_name : c->name;
}

typedef struct {
    const Pgferry__State__TableDef *def; /* not owned */
    typemap_col_t *tm;                   /* per definition column; owned */
    size_t ncols;
    size_t *keycols; /* definition columns of the key, in key order; owned */
    size_t nkeys;
    bool partition;          /* rows end with the leaf partition (META_PARTITION) */
    char qname[600];         /* `db`.`table` (with the suffix) */
    char *insert_sql;        /* owned */
    char *insert_native_sql; /* the same INSERT taking Native blocks; owned */
} chtable_t;

/* Prepares t for def in database db; suffix ("" or "_resync") is appended to the table name.
 * A recorded ClickHouse type this version would map differently is FATAL (resync). */
errclass_t chtable_init(chtable_t *t, const char *db, const Pgferry__State__TableDef *def,
                        const char *suffix, char *err, size_t errlen);
void chtable_free(chtable_t *t);

/* Appends the row's trailer: version, deleted flag and (when the table has it) the partition. */
void chtable_put_trailer(const chtable_t *t, buf_t *out, uint64_t version, bool deleted,
                         uint32_t partition);

/* Bytes of the RowBinary row (columns + trailer) at data, 0 when len is too short. */
size_t chtable_row_size(const chtable_t *t, const unsigned char *data, size_t len);

/* The ClickHouse structure of the key ("k1 Int32, k2 String": external data for lookups), and
 * the quoted key columns as a tuple ("(`a`, `b`)"). Appended to out. */
void chtable_key_structure(const chtable_t *t, buf_t *out);
void chtable_key_tuple(const chtable_t *t, buf_t *out);

/* Appends to err (a failed insert into t) what a memory-limit refusal of a wide table needs:
 * ClickHouse 18.16 buffers about 2.5 MB per column file (a Nullable column has two). */
void chtable_memory_hint(const chtable_t *t, char *err, size_t errlen);

#endif
