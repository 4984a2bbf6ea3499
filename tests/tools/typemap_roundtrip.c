/*
 * pgferry-test-typemap-roundtrip CH_URL: maps PostgreSQL column types, encodes PostgreSQL text
 * values as RowBinary with typemap, inserts them into a real ClickHouse and reads them back;
 * prints one line per mismatch and exits 1 if there is any. Driven by
 * tests/integration/test_typemap_clickhouse.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chclient.h"
#include "typemap.h"

typedef struct {
    const char *name;
    uint32_t oid;
    char cat;
    int32_t typmod;
    bool not_null;
    const char *want_type;
} col_t;

#define NUMERIC_TYPMOD(p, s) ((((p) << 16) | ((s)&0x7ff)) + 4)

static const col_t cols[] = {
    {"id", PG_OID_INT4, 'N', -1, true, "Int32"},
    {"b", PG_OID_BOOL, 'B', -1, false, "Nullable(UInt8)"},
    {"i2", PG_OID_INT2, 'N', -1, false, "Nullable(Int16)"},
    {"i8", PG_OID_INT8, 'N', -1, false, "Nullable(Int64)"},
    {"o", PG_OID_OID, 'N', -1, false, "Nullable(UInt32)"},
    {"f4", PG_OID_FLOAT4, 'N', -1, false, "Nullable(Float32)"},
    {"f8", PG_OID_FLOAT8, 'N', -1, false, "Nullable(Float64)"},
    {"d9", PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(9, 2), false, "Nullable(Decimal(9, 2))"},
    {"d18", PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(18, 0), false, "Nullable(Decimal(18, 0))"},
    {"d38", PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(38, 10), false, "Nullable(Decimal(38, 10))"},
    {"n", PG_OID_NUMERIC, 'N', -1, false, "Nullable(String)"},
    {"u", PG_OID_UUID, 'U', -1, false, "Nullable(UUID)"},
    {"by", PG_OID_BYTEA, 'U', -1, false, "Nullable(String)"},
    {"t", 25, 'S', -1, false, "Nullable(String)"},
    {"arr", 1007, 'A', -1, false, "Nullable(String)"},
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

/* each row: PostgreSQL text values (NULL = SQL NULL), then what ClickHouse must return for
 * toString(col) (floats: hex of the IEEE bits, bytea: hex of the bytes) */
/* how ClickHouse 18.16 prints NULL in TabSeparatedRaw */
#define NUL "\xe1\xb4\xba\xe1\xb5\x81\xe1\xb4\xb8\xe1\xb4\xb8"

typedef struct {
    const char *in[NCOLS];
    const char *out[NCOLS];
} row_t;

static const row_t rows[] = {
    {{"1", "t", "-32768", "-9223372036854775808", "4294967295", "NaN", "5e-324", "-1234567.89",
      "999999999999999999", "-9999999999999999999999999999.9999999999", "NaN",
      "61f0c404-5cb3-11e7-907b-a6006ad3dba0", "\\x00ff0a5c", "tab\there\nnl \\ back", "{1,NULL,3}"},
     {"1", "1", "-32768", "-9223372036854775808", "4294967295", "0000C07F", "01", "-1234567.89",
      "999999999999999999", "-9999999999999999999999999999.9999999999", "NaN",
      "61f0c404-5cb3-11e7-907b-a6006ad3dba0", "00FF0A5C", "tab\there\nnl \\ back", "{1,NULL,3}"}},
    {{"2", "f", "32767", "9223372036854775807", "0", "-Infinity", "1.23456789e-295", "0.01", "-1",
      "0.0000000001", "1" /* 1000 digits set below */, "00000000-0000-0000-0000-000000000000",
      "\\x", "", "{}"},
     {"2", "0", "32767", "9223372036854775807", "0", "000080FF", "8C60CB1E622FB402", "0.01", "-1",
      "0.0000000001", NULL, "00000000-0000-0000-0000-000000000000", "", "", "{}"}},
    {{"3", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
     {"3", NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL}},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* The column as ClickHouse prints it (TabSeparatedRaw), floats as the hex of their IEEE
 * bytes (reinterpretAsString drops trailing zero bytes), bytea as hex. toString() is not used:
 * 18.16 prints Decimal128 wrongly through it. */
static const char *
select_expr(const col_t *c, char *buf, size_t n)
{
    if (c->oid == PG_OID_FLOAT4 || c->oid == PG_OID_FLOAT8)
        snprintf(buf, n, "if(isNull(%s), NULL, hex(reinterpretAsString(assumeNotNull(%s))))",
                 c->name, c->name);
    else if (c->oid == PG_OID_BYTEA)
        snprintf(buf, n, "if(isNull(%s), NULL, hex(assumeNotNull(%s)))", c->name, c->name);
    else
        snprintf(buf, n, "%s", c->name);
    return buf;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CH_URL\n", argv[0]);
        return 2;
    }
    char err[1024];
    int bad = 0;
    ch_client_t *ch = ch_client_new(argv[1], NULL, NULL, err, sizeof(err));
    if (!ch) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    char *ver = NULL;
    errclass_t cls;
    ver = ch_client_version(ch, &cls, err, sizeof(err));
    if (!ver) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    long vnum = ch_version_number(ver);
    printf("ClickHouse %s\n", ver);
    free(ver);

    char ddl[4096] = "CREATE TABLE pgferry_typemap_test.t (";
    typemap_col_t tm[NCOLS];
    for (size_t i = 0; i < NCOLS; i++) {
        typemap_for_pg(cols[i].oid, cols[i].cat, cols[i].typmod, cols[i].not_null, vnum, 0, &tm[i]);
        if (strcmp(tm[i].ch_type, cols[i].want_type) != 0) {
            printf("MISMATCH type of %s: %s, expected %s\n", cols[i].name, tm[i].ch_type,
                   cols[i].want_type);
            bad++;
        }
        size_t l = strlen(ddl);
        snprintf(ddl + l, sizeof(ddl) - l, "%s%s %s", i ? ", " : "", cols[i].name, tm[i].ch_type);
    }
    strncat(ddl, ") ENGINE = Memory", sizeof(ddl) - strlen(ddl) - 1);
    if (ch_client_query(ch, "DROP DATABASE IF EXISTS pgferry_typemap_test", NULL, err,
                        sizeof(err)) ||
        ch_client_query(ch, "CREATE DATABASE pgferry_typemap_test", NULL, err, sizeof(err)) ||
        ch_client_query(ch, ddl, NULL, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }

    /* a 1000-digit unconstrained numeric */
    char big[1003];
    memset(big, '7', 1000);
    big[0] = '-';
    big[500] = '.';
    big[1000] = '\0';

    buf_t b;
    buf_init(&b);
    for (size_t r = 0; r < NROWS; r++) {
        for (size_t i = 0; i < NCOLS; i++) {
            const char *v = rows[r].in[i];
            if (r == 1 && strcmp(cols[i].name, "n") == 0)
                v = big;
            if (!typemap_encode(&tm[i], v, v ? strlen(v) : 0, &b, err, sizeof(err))) {
                printf("MISMATCH encode row %zu col %s: %s\n", r, cols[i].name, err);
                bad++;
            }
        }
    }
    if (b.oom || ch_client_insert(ch, "INSERT INTO pgferry_typemap_test.t FORMAT RowBinary", b.data,
                                  b.len, err, sizeof(err))) {
        fprintf(stderr, "insert: %s\n", err);
        return 1;
    }
    buf_free(&b);

    for (size_t i = 0; i < NCOLS; i++) {
        char expr[256], sql[512], *out = NULL;
        snprintf(sql, sizeof(sql),
                 "SELECT %s FROM pgferry_typemap_test.t ORDER BY id FORMAT TabSeparatedRaw",
                 select_expr(&cols[i], expr, sizeof(expr)));
        if (ch_client_query(ch, sql, &out, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        char *line = out;
        for (size_t r = 0; r < NROWS; r++) {
            /* TabSeparatedRaw: no escaping, so values with newlines are compared whole */
            const char *want = rows[r].out[i];
            if (r == 1 && strcmp(cols[i].name, "n") == 0)
                want = big;
            size_t wl = strlen(want);
            if (strncmp(line, want, wl) != 0 || line[wl] != '\n') {
                printf("MISMATCH row %zu col %s: got '%.*s', expected '%s'\n", r, cols[i].name,
                       (int)strcspn(line, "\n"), line, want);
                bad++;
                line += strcspn(line, "\n");
            } else {
                line += wl;
            }
            if (*line == '\n')
                line++;
        }
        free(out);
    }
    ch_client_query(ch, "DROP DATABASE IF EXISTS pgferry_typemap_test", NULL, err, sizeof(err));
    ch_client_destroy(&ch);
    printf("%s: %d mismatch(es)\n", bad ? "FAIL" : "ok", bad);
    return bad ? 1 : 0;
}
