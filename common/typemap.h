/*
 * typemap: which ClickHouse type holds a PostgreSQL column without loss, and how one value in
 * PostgreSQL's text form becomes ClickHouse RowBinary. Used by Setup (DDL) and by the snapshot
 * and CDC writers (values). Pure: no I/O.
 *
 * Values are always sent as RowBinary, never as text: ClickHouse 18.16 parses text floats
 * inexactly (5e-324 -> 0, 1.23456789e-295 off by one ULP), RowBinary is bit-exact.
 * Text inputs are PostgreSQL's output functions under pinned settings (DateStyle=ISO,
 * IntervalStyle=postgres, TimeZone=UTC, extra_float_digits=3, bytea_output=hex).
 */
#ifndef PGFERRY_TYPEMAP_H
#define PGFERRY_TYPEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

/* built-in type OIDs (fixed in pg_type.dat) */
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_OID 26
#define PG_OID_FLOAT4 700
#define PG_OID_FLOAT8 701
#define PG_OID_NUMERIC 1700
#define PG_OID_UUID 2950

typedef enum {
    TM_STRING = 0, /* the PostgreSQL text form, byte for byte */
    TM_BOOL,       /* UInt8 0/1 */
    TM_INT16,
    TM_INT32,
    TM_INT64,
    TM_UINT32,
    TM_FLOAT32,
    TM_FLOAT64,
    TM_DECIMAL, /* Decimal(p,s); NaN is refused (no Decimal holds it) */
    TM_UUID,
    TM_BYTEA, /* String holding the raw bytes */
} typemap_kind_t;

typedef struct {
    typemap_kind_t kind;
    bool nullable;
    int precision, scale; /* TM_DECIMAL */
    char ch_type[80];     /* e.g. "Nullable(Decimal(12, 2))" */
} typemap_col_t;

/* flags for typemap_for_pg */
#define TYPEMAP_NUMERIC_TEXT 1u /* numeric(p,s) as exact text (String) instead of Decimal(p,s) */

/* Maps a column. base_oid/typmod are after resolving domains to their base type; typcategory
 * is pg_type.typcategory of that base ('A' arrays, 'E' enums, ...). ch_version is
 * ch_version_number() of the destination (types newer than the server are never chosen). */
void typemap_for_pg(uint32_t base_oid, char typcategory, int32_t typmod, bool not_null,
                    long ch_version, unsigned flags, typemap_col_t *out);

/* The flags under which a column recorded at Setup with destination type recorded_ch_type was
 * mapped (a numeric(p,s) recorded as String was set up with TYPEMAP_NUMERIC_TEXT). */
unsigned typemap_flags_recorded(uint32_t base_oid, const char *recorded_ch_type);

/* Appends one value as RowBinary. val == NULL is SQL NULL (refused for a non-nullable column).
 * val is the raw text (not COPY-escaped), len bytes. False with err set on a value the column
 * cannot take. */
bool typemap_encode(const typemap_col_t *c, const char *val, size_t len, buf_t *out, char *err,
                    size_t errlen);

/* Appends one non-NULL value given in PostgreSQL's binary send format (COPY ... (FORMAT binary))
 * as the RowBinary value alone, without a Nullable flag (ClickHouse Native columns keep NULLs
 * apart). The value's PostgreSQL type must be the column's base type, except for TM_STRING,
 * whose binary form is the type's text output (text, or an output function's result cast to
 * text). False with err set on a value the column cannot take. */
bool typemap_encode_binary(const typemap_col_t *c, const unsigned char *val, size_t len, buf_t *out,
                           char *err, size_t errlen);

/* Appends the type's zero value without a Nullable flag (what a Native column holds under a
 * NULL). */
void typemap_encode_zero(const typemap_col_t *c, buf_t *out);

/* Appends the value of a column that has no value in a change (a delete carries only the key):
 * NULL when nullable, else the type's zero. */
void typemap_encode_absent(const typemap_col_t *c, buf_t *out);

/* Bytes taken by the first RowBinary value of column c in data (len bytes), 0 if incomplete. */
size_t typemap_value_size(const typemap_col_t *c, const unsigned char *data, size_t len);

/* Appends a ClickHouse SQL expression equal to the value (PostgreSQL text form), for WHERE
 * clauses and DEFAULT expressions. False with err set on a value the column cannot take. */
bool typemap_literal(const typemap_col_t *c, const char *val, size_t len, buf_t *out, char *err,
                     size_t errlen);

/* Appends PostgreSQL's text form of the RowBinary value of column c at data (the form
 * typemap_encode reads back into the same bytes; bytea as \x hex). Returns the bytes the value
 * takes, 0 when incomplete; *is_null for SQL NULL (nothing appended). */
size_t typemap_text(const typemap_col_t *c, const unsigned char *data, size_t len, buf_t *out,
                    bool *is_null);

#endif
