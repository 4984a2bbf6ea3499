/* verify: the canonical row text both servers compute, key display, TSV unescaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"

static Pgferry__State__ColumnDef cols[4];
static Pgferry__State__ColumnDef *colp[4];
static Pgferry__State__TableDef def;
static typemap_col_t tm[4];

static void
build_def(void)
{
    const char *names[] = {"id", "name", "ratio", "raw"};
    uint32_t oids[] = {PG_OID_INT4, 25, PG_OID_FLOAT8, PG_OID_BYTEA};
    pgferry__state__table_def__init(&def);
    for (int i = 0; i < 4; i++) {
        pgferry__state__column_def__init(&cols[i]);
        cols[i].name = (char *)names[i];
        cols[i].base_type_oid = oids[i];
        cols[i].typcategory = i == 1 ? "S" : "N";
        cols[i].not_null = i == 0;
        cols[i].key_position = i == 0 ? 1 : 0;
        colp[i] = &cols[i];
        typemap_for_pg(oids[i], cols[i].typcategory[0], -1, cols[i].not_null, 0, 0, &tm[i]);
    }
    cols[3].ch_name = "raw_old"; /* renamed at the source: ClickHouse keeps the old name */
    def.columns = colp;
    def.n_columns = 4;
}

static char *
sql(bool keys_only) /* caller frees */
{
    buf_t b;
    buf_init(&b);
    assert_true(verify_canonical_sql(NULL, &def, tm, keys_only, true, &b));
    buf_byte(&b, '\0');
    return (char *)b.data;
}

static void
test_clickhouse_side(void **state)
{
    (void)state;
    build_def();
    char *k = sql(true);
    assert_string_equal(k, "concat(ifNull(concat('v', toString(length(toString(`id`))), ':', "
                           "toString(`id`)), 'n'), '')");
    char *r = sql(false);
    assert_non_null(strstr(r, "ifNull(concat('v', toString(length(`name`)), ':', `name`), 'n')"));
    /* floats by their IEEE bits, bytea as hex, under the ClickHouse column name */
    assert_non_null(strstr(r, "lower(hex(reverse(reinterpretAsString(`ratio`))))"));
    assert_non_null(strstr(r, "lower(hex(`raw_old`))"));
    assert_null(strstr(r, "`raw`"));
    free(k);
    free(r);
}

/* The number of top-level arguments of the call that starts at s ("name(" ... ")"). */
static int
call_args(const char *s, const char **end)
{
    const char *p = strchr(s, '(') + 1;
    int depth = 0, args = 1;
    bool quoted = false;
    for (; *p; p++) {
        if (quoted) {
            quoted = *p != '\'';
            continue;
        }
        if (*p == '\'')
            quoted = true;
        else if (*p == '(')
            depth++;
        else if (*p == ')' && depth-- == 0)
            break;
        else if (*p == ',' && depth == 0)
            args++;
    }
    *end = p;
    return args;
}

/* 1600 columns (PostgreSQL's most): the PostgreSQL side passes no function more than 100
 * arguments, keeps every column in order, and ClickHouse's side stays one concat */
static void
test_wide(void **state)
{
    (void)state;
    enum { N = 1600 };
    static Pgferry__State__ColumnDef wc[N];
    static Pgferry__State__ColumnDef *wp[N];
    static typemap_col_t wt[N];
    static char names[N][40];
    Pgferry__State__TableDef wd;
    pgferry__state__table_def__init(&wd);
    for (int i = 0; i < N; i++) {
        pgferry__state__column_def__init(&wc[i]);
        snprintf(names[i], sizeof(names[i]), "col_%028d", i);
        wc[i].name = names[i];
        wc[i].base_type_oid = PG_OID_INT4;
        wc[i].typcategory = "N";
        wc[i].key_position = i == 0 ? 1 : 0;
        wc[i].not_null = i == 0;
        wp[i] = &wc[i];
        typemap_for_pg(PG_OID_INT4, 'N', -1, wc[i].not_null, 0, 0, &wt[i]);
    }
    wd.columns = wp;
    wd.n_columns = N;
    buf_t b;
    buf_init(&b);
    assert_true(verify_canonical_sql(NULL, &wd, wt, false, false, &b));
    buf_byte(&b, '\0');
    const char *s = (const char *)b.data, *end;
    /* concat(concat(...), concat(...), ...): the outer call and each group under 100 */
    int groups = call_args(s, &end);
    assert_int_equal(groups, (N + VERIFY_CONCAT_GROUP - 1) / VERIFY_CONCAT_GROUP);
    assert_true(groups <= 100);
    const char *p = s + 7;
    int parts = 0;
    for (int g = 0; g < groups; g++) {
        assert_int_equal(strncmp(p, "concat(", 7), 0);
        int a = call_args(p, &end);
        assert_true(a <= 100);
        parts += a;
        p = end + 1;
        if (g + 1 < groups) {
            assert_int_equal(strncmp(p, ", ", 2), 0);
            p += 2;
        }
    }
    assert_int_equal(parts, N);
    /* every column in order */
    const char *at = s;
    for (int i = 0; i < N; i++) {
        char q[80];
        snprintf(q, sizeof(q), "\"%.39s\"", names[i]);
        at = strstr(at, q);
        assert_non_null(at);
    }
    buf_free(&b);
    /* the key alone: no nesting */
    buf_init(&b);
    assert_true(verify_canonical_sql(NULL, &wd, wt, true, false, &b));
    buf_byte(&b, '\0');
    assert_int_equal(strncmp((const char *)b.data, "concat(CASE", 11), 0);
    buf_free(&b);
    /* ClickHouse's concat takes them all */
    buf_init(&b);
    assert_true(verify_canonical_sql(NULL, &wd, wt, false, true, &b));
    buf_byte(&b, '\0');
    assert_int_equal(call_args((const char *)b.data, &end), N + 1);
    buf_free(&b);
}

static void
test_show_key(void **state)
{
    (void)state;
    char out[64];
    verify_show_key("v2:17v1:a", out, sizeof(out));
    assert_string_equal(out, "17, a");
    verify_show_key("nv3:x:y", out, sizeof(out));
    assert_string_equal(out, "NULL, x:y");
    verify_show_key("v5:ab", out, sizeof(out)); /* a length beyond the text stops cleanly */
    assert_string_equal(out, "ab");
}

static void
test_unescape(void **state)
{
    (void)state;
    char s[] = "a\\tb\\\\c\\nd\\'e";
    verify_tsv_unescape(s);
    assert_string_equal(s, "a\tb\\c\nd'e");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clickhouse_side),
        cmocka_unit_test(test_wide),
        cmocka_unit_test(test_show_key),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
