/* verify: the canonical row text both servers compute, key display, TSV unescaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
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
        cmocka_unit_test(test_show_key),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
