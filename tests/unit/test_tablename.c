/* tablename: PostgreSQL identifier rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "tablename.h"

static void
test_parse(void **state)
{
    (void)state;
    tablename_t t;
    char err[200];
    assert_true(tablename_parse("Orders", &t, err, sizeof(err)));
    assert_string_equal(t.schema, "public");
    assert_string_equal(t.table, "orders");
    assert_true(tablename_parse("Sales.\"Order Items\"", &t, err, sizeof(err)));
    assert_string_equal(t.schema, "sales");
    assert_string_equal(t.table, "Order Items");
    assert_true(tablename_parse("\"a\"\"b\".\"x.y\"", &t, err, sizeof(err)));
    assert_string_equal(t.schema, "a\"b");
    assert_string_equal(t.table, "x.y");
    char longname[70];
    memset(longname, 'a', 63);
    longname[63] = '\0';
    assert_true(tablename_parse(longname, &t, err, sizeof(err)));
    longname[63] = 'a';
    longname[64] = '\0';
    assert_false(tablename_parse(longname, &t, err, sizeof(err)));
    assert_non_null(strstr(err, "63"));
    assert_false(tablename_parse("\"unterminated", &t, err, sizeof(err)));
    assert_false(tablename_parse("a.b.c", &t, err, sizeof(err)));
    assert_false(tablename_parse("", &t, err, sizeof(err)));
    assert_false(tablename_parse("\"\"", &t, err, sizeof(err)));
    assert_false(tablename_parse("1abc", &t, err, sizeof(err)));
}

static void
test_list(void **state)
{
    (void)state;
    char err[200];
    size_t n;
    tablename_t *l = tablename_parse_list("a, s.b,\"c,d\"", &n, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(n, 3);
    assert_string_equal(l[1].schema, "s");
    assert_string_equal(l[2].table, "c,d");
    free(l);
    assert_null(tablename_parse_list("a,,b", &n, err, sizeof(err)));
    assert_null(tablename_parse_list("a,A", &n, err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    assert_null(tablename_parse_list("", &n, err, sizeof(err)));
}

static void
test_format(void **state)
{
    (void)state;
    char out[300];
    tablename_format("public", "orders", out, sizeof(out));
    assert_string_equal(out, "public.orders");
    tablename_format("Sales", "order", out, sizeof(out));
    assert_string_equal(out, "\"Sales\".\"order\"");
    tablename_format("s", "a\"b", out, sizeof(out));
    assert_string_equal(out, "s.\"a\"\"b\"");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
