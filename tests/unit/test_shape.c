/* shape: the shaping options of create and add-tables, parsed and applied to table specs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shape.h"

static Pgferry__State__TableSpec *
spec(const char *schema, const char *name)
{
    Pgferry__State__TableSpec *t = calloc(1, sizeof(*t));
    pgferry__state__table_spec__init(t);
    t->schema = (char *)schema;
    t->name = (char *)name;
    return t;
}

static void
free_specs(Pgferry__State__TableSpec **t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i]->n_excluded_columns == 0)
            t[i]->excluded_columns = NULL;
        free(t[i]);
    }
}

static void
test_every_option(void **state)
{
    (void)state;
    char err[256];
    shape_t *s = shape_new();
    assert_int_equal(
        shape_option(s, "--exclude-columns", "S.T.c1,t.\"Col,X\",s.t.C2", err, sizeof(err)), 1);
    assert_int_equal(shape_option(s, "--target", "s.t=Orders_V2", err, sizeof(err)), 1);
    assert_int_equal(shape_option(s, "--order-by", "s.t=tenant,\"Id\"", err, sizeof(err)), 1);
    assert_int_equal(shape_option(s, "--partition-by", "t=toYYYYMM(d)", err, sizeof(err)), 1);
    assert_int_equal(shape_option(s, "--source", "x", err, sizeof(err)), 0);
    Pgferry__State__TableSpec *t[] = {spec("s", "t"), spec("public", "t")};
    assert_true(shape_apply(s, t, 2, err, sizeof(err)));
    assert_int_equal(t[0]->n_excluded_columns, 2);
    assert_string_equal(t[0]->excluded_columns[0], "c1");
    assert_string_equal(t[0]->excluded_columns[1], "c2");
    assert_int_equal(t[1]->n_excluded_columns, 1);
    assert_string_equal(t[1]->excluded_columns[0], "Col,X");
    assert_string_equal(t[0]->target, "Orders_V2");
    assert_int_equal(t[0]->n_order_by, 2);
    assert_string_equal(t[0]->order_by[0], "tenant");
    assert_string_equal(t[0]->order_by[1], "Id");
    assert_string_equal(t[1]->partition_by, "toYYYYMM(d)");
    assert_int_equal(t[1]->n_order_by, 0);
    free_specs(t, 2);
    shape_free(s);
}

static void
test_bad_values(void **state)
{
    (void)state;
    char err[256];
    static const char *const bad[][2] = {
        {"--exclude-columns", "nodot"},
        {"--exclude-columns", ""},
        {"--exclude-columns", "s.t."},
        {"--exclude-columns", "s.t.\"open"},
        {"--target", "s.t"},
        {"--target", "s.t="},
        {"--target", "s.t=a/b"},
        {"--target", "s.t=_pgferry_x"},
        {"--order-by", "s.t="},
        {"--order-by", "s.t=a,,b"},
        {"--order-by", "s.t=a b"},
        {"--partition-by", "s.t=x; DROP TABLE y"},
        {"--partition-by", "=x"},
        {"--partition-by", "s.t=id) ORDER BY (tuple()) SETTINGS index_granularity = 1 --"},
        {"--partition-by", "s.t=id SETTINGS index_granularity = 1"},
        {"--partition-by", "s.t=(id"},
        {"--target", "s.t=."},
        {"--target", "s.t=.."},
        {"--target", "a.b.c=x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        shape_t *s = shape_new();
        err[0] = '\0';
        int r = shape_option(s, bad[i][0], bad[i][1], err, sizeof(err));
        if (r != -1)
            fail_msg("%s %s was accepted", bad[i][0], bad[i][1]);
        assert_true(strlen(err) > 0);
        shape_free(s);
    }
}

static void
test_apply_refusals(void **state)
{
    (void)state;
    char err[256];
    Pgferry__State__TableSpec *t[] = {spec("public", "t")};
    shape_t *s = shape_new();
    assert_int_equal(shape_option(s, "--target", "other=x", err, sizeof(err)), 1);
    assert_false(shape_apply(s, t, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "public.other"));
    assert_non_null(strstr(err, "not in the table list"));
    shape_free(s);
    s = shape_new();
    assert_int_equal(shape_option(s, "--target", "t=x", err, sizeof(err)), 1);
    assert_int_equal(shape_option(s, "--target", "t=y", err, sizeof(err)), 1);
    assert_false(shape_apply(s, t, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    shape_free(s);
    t[0]->target = (char *)"";
    s = shape_new();
    assert_int_equal(shape_option(s, "--exclude-columns", "t.a,t.a", err, sizeof(err)), 1);
    assert_false(shape_apply(s, t, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    shape_free(s);
    assert_true(shape_apply(NULL, t, 1, err, sizeof(err))); /* no options */
    free_specs(t, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_option),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_apply_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
