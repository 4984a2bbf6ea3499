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
#include "worker.h"

typedef struct {
    uint64_t mismatched_tables;
    char *report; /* malloc'd text, one line per table and per differing key */
} verify_result_t;

errclass_t verify_run(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *tables,
                      size_t n_tables, const char *only_table, bool streaming, worker_t *w,
                      verify_result_t *out, char *err, size_t errlen);

#endif
