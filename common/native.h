/*
 * native: a block of rows in ClickHouse's Native format, built column by column. A Native insert
 * body is a sequence of blocks; each is the column count and row count (LEB128), then per
 * column its name, its type (both length-prefixed strings) and its values: fixed-width values
 * back to back, strings as length-prefixed bytes, a Nullable column as one byte per row (1 =
 * NULL) followed by the values (a zero value under a NULL). ClickHouse reads it column by
 * column, without the per-value dispatch RowBinary costs it. No I/O.
 */
#ifndef PGFERRY_NATIVE_H
#define PGFERRY_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

typedef struct {
    bool nullable;
    buf_t head;  /* name and type */
    buf_t nulls; /* one byte per row when nullable */
    buf_t data;
} native_col_t;

typedef struct {
    native_col_t *cols;
    size_t ncols;
    size_t rows;
    buf_t head;      /* column and row counts, once sealed */
    bool sealed;     /* complete: being read out, takes no rows */
    size_t seg, off; /* read position: segment (head, then per column head, nulls, data) */
} native_block_t;

/* False on out of memory. */
bool native_block_init(native_block_t *b, size_t ncols);
void native_block_free(native_block_t *b);
/* Names column i; type as ClickHouse spells it, e.g. Nullable(String). */
void native_block_column(native_block_t *b, size_t i, const char *name, const char *type,
                         bool nullable);
/* Bytes the block's values take so far. */
size_t native_block_bytes(const native_block_t *b);
/* Ends the block (it has rows): it is then read out with native_block_read, straight from the
 * column buffers. False on out of memory (in any of its buffers). */
bool native_block_seal(native_block_t *b);
/* Copies up to cap next bytes of the sealed block to out; after the last, the block is empty
 * and takes rows again. Returns the bytes copied (0 when not sealed). */
size_t native_block_read(native_block_t *b, unsigned char *out, size_t cap);
/* Bytes of the sealed block not read yet (0 when not sealed). */
size_t native_block_left(const native_block_t *b);
/* Seals the block (when it has rows) and appends all of it to out. False on out of memory. */
bool native_block_flush(native_block_t *b, buf_t *out);

#endif
