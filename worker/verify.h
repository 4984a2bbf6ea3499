/*
 * verify: compares each table of a pipe in PostgreSQL with its live rows in ClickHouse.
 *
 * Every row becomes a canonical text on both sides (per column: 'n' for NULL, else 'v', the
 * byte length, ':' and the value in a form both servers print identically: PostgreSQL's text
 * output for String columns, decimal digits for integers and decimals, the IEEE bits for floats,
 * hex for bytea). Rows fall into 4096 buckets by the md5 of their key's text; per bucket both
 * sides give the row count and the XOR of the first 64 bits of each row text's md5: an
 * order-independent checksum computed inside each server. Buckets that differ are listed row by
 * row (key and row hash) to name the first differing keys.
 *
 * A consistent point: when the pipe streams, verify first waits until its slot has confirmed
 * the source's WAL position of the moment it started; a bucket that differs is compared again
 * after the pipe caught up once more, and only a difference that stays is reported (a source
 * that keeps writing makes the first round race the stream).
 */
#ifndef PGFERRY_VERIFY_H
#define PGFERRY_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include "errclass.h"
#include "state.pb-c.h"
#include <libpq-fe.h>
#include "buf.h"
#include "typemap.h"
#include "worker.h"

typedef struct {
    uint64_t mismatched_tables;
    char *report; /* malloc'd text, one line per table and per differing key */
} verify_result_t;

errclass_t verify_run(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *tables,
                      size_t n_tables, const char *only_table, bool streaming, worker_t *w,
                      verify_result_t *out, char *err, size_t errlen);

/* Helpers, exposed for the unit tests. */
/* The SQL expression of a row's canonical text on one side (ch: ClickHouse, else PostgreSQL;
 * pg is not used): every column's part, or only the key columns in key order. PostgreSQL's
 * side nests its concat in groups of VERIFY_CONCAT_GROUP parts (its functions take at most 100
 * arguments). Appends to b; false when out of memory. */
#define VERIFY_CONCAT_GROUP 90
bool verify_canonical_sql(PGconn *pg, const Pgferry__State__TableDef *d, const typemap_col_t *tm,
                          bool keys_only, bool ch, buf_t *b);
/* "v2:17v1:a" (a canonical key) -> "17, a"; NULL parts as NULL. */
void verify_show_key(const char *k, char *out, size_t outlen);
/* Undoes ClickHouse's TabSeparated escapes in place. */
void verify_tsv_unescape(char *s);

#endif
