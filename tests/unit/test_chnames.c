/* chnames: the destination names a target makes pgferry use, clashes between targets (exact
 * bytes, as ClickHouse compares), the target check shared by pgferryctl and pgferryd, and
 * whether two destinations share a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "chnames.h"

static void
test_derived(void **state)
{
    (void)state;
    char out[CHNAMES_MAX_DERIVED][CHNAMES_NAME_MAX];
    size_t n = chnames_derived("orders", false, out);
    const char *want[] = {"orders",
                          "orders_live",
                          "orders_resync",
                          "orders_pgferry_old",
                          "orders_live_pgferry_new",
                          "orders_live_pgferry_old",
                          "orders_pgferry_dnew",
                          "orders_pgferry_dold",
                          "orders_local",
                          "orders_resync_local",
                          "orders_pgferry_old_local"};
    /* the Distributed swap's names are kept free on every layout (the registry claims them) */
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(out[i], want[i]);
    n = chnames_derived("orders", true, out);
    assert_int_equal(n, 11);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(out[i], want[i]);
}

static int
clash2(const char *x, const char *y, bool sharded, char *name)
{
    chnames_item_t it[2] = {{x, sharded, 0}, {y, sharded, 1}};
    size_t a = 9, b = 9;
    int r = chnames_find_clash(it, 2, &a, &b, name, CHNAMES_NAME_MAX);
    if (r == 1) {
        assert_int_equal(a, 0);
        assert_int_equal(b, 1);
    }
    return r;
}

static void
test_clash(void **state)
{
    (void)state;
    char name[CHNAMES_NAME_MAX];
    assert_int_equal(clash2("orders_resync", "orders", false, name), 1);
    assert_string_equal(name, "orders_resync");
    assert_int_equal(clash2("orders", "orders_live", false, name), 1);
    assert_string_equal(name, "orders_live");
    assert_int_equal(clash2("orders", "orders", false, name), 1);
    assert_int_equal(clash2("orders_live", "orders_pgferry_old", false, name), 0);
    assert_int_equal(clash2("orders", "orders_live_pgferry_new", false, name), 1);
    assert_int_equal(clash2("a", "a_live_pgferry_new", false, name), 1);
    /* T_live's view swap names: orders_live_pgferry_old = (orders_live)_pgferry_old */
    assert_int_equal(clash2("orders", "orders_live", false, name), 1);
    /* _local only on the sharded layout */
    assert_int_equal(clash2("orders", "orders_local", false, name), 0);
    assert_int_equal(clash2("orders", "orders_local", true, name), 1);
    assert_string_equal(name, "orders_local");
    assert_int_equal(clash2("x", "x_pgferry_dnew", true, name), 1);
    /* exact bytes: ClickHouse table names are case-sensitive */
    assert_int_equal(clash2("Orders", "orders", false, name), 0);
    assert_int_equal(clash2("orders", "ORDERS_live", false, name), 0);
    assert_int_equal(clash2("orders", "customers", true, name), 0);
    assert_int_equal(clash2("orders", "orders_archive", true, name), 0);

    /* one owner may repeat itself; a clash is between owners only */
    chnames_item_t it[4] = {{"a", false, 0}, {"b", false, 0}, {"a", false, 0}, {"c", false, 1}};
    size_t a, b;
    assert_int_equal(chnames_find_clash(it, 4, &a, &b, name, sizeof(name)), 0);
    it[3].target = "b_resync";
    assert_int_equal(chnames_find_clash(it, 4, &a, &b, name, sizeof(name)), 1);
    assert_int_equal(a, 1);
    assert_int_equal(b, 3);
    assert_string_equal(name, "b_resync");
    /* one sharded item is enough for its _local names */
    chnames_item_t mixed[2] = {{"t", true, 0}, {"t_local", false, 1}};
    assert_int_equal(chnames_find_clash(mixed, 2, &a, &b, name, sizeof(name)), 1);
    assert_int_equal(chnames_find_clash(mixed, 1, &a, &b, name, sizeof(name)), 0);
}

static void
test_clash_many(void **state)
{
    (void)state;
    /* many distinct tables: no clash; one added at the end clashes with the first */
    enum { N = 3000 };
    static char names[N + 1][32];
    static chnames_item_t it[N + 1];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "t%zu", i);
        it[i] = (chnames_item_t){names[i], true, i};
    }
    size_t a, b;
    char name[CHNAMES_NAME_MAX];
    assert_int_equal(chnames_find_clash(it, N, &a, &b, name, sizeof(name)), 0);
    snprintf(names[N], sizeof(names[N]), "t0_live");
    it[N] = (chnames_item_t){names[N], true, N};
    assert_int_equal(chnames_find_clash(it, N + 1, &a, &b, name, sizeof(name)), 1);
    assert_int_equal(a, 0);
    assert_int_equal(b, N);
}

static void
test_target_check(void **state)
{
    (void)state;
    char err[400];
    const char *good[] = {"orders", "Orders 2", "x.y", "...", "a-b", "заказы", "pgferry_x"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!chnames_target_check(good[i], err, sizeof(err)))
            fail_msg("refused %s: %s", good[i], err);
    }
    static const struct {
        const char *t, *reason;
    } bad[] = {
        {".", "reserved"},      {"..", "reserved"},    {"_pgferry_x", "reserved"},
        {"", "1 to 200 bytes"}, {"a`b", "cannot use"}, {"a/b", "cannot use"},
        {"a\\b", "cannot use"}, {"a\nb", "control"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (chnames_target_check(bad[i].t, err, sizeof(err)))
            fail_msg("accepted '%s'", bad[i].t);
        if (!strstr(err, bad[i].reason))
            fail_msg("'%s': reason '%s' lacks '%s'", bad[i].t, err, bad[i].reason);
    }
    char long_name[CHNAMES_TARGET_MAX + 2];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(chnames_target_check(long_name, err, sizeof(err)));
    long_name[CHNAMES_TARGET_MAX] = '\0';
    assert_true(chnames_target_check(long_name, err, sizeof(err)));
}

static void
test_same_server(void **state)
{
    (void)state;
    assert_true(chnames_same_server("http://127.0.0.1:8123", "http://u:p@127.0.0.1:8123/"));
    assert_true(chnames_same_server("http://h1:1,http://h2:2", "http://h3:3,http://H2:2"));
    assert_true(chnames_same_server("http://ch", "http://ch:8123"));
    assert_true(chnames_same_server("https://ch", "https://ch:8443"));
    assert_true(chnames_same_server("http://[::1]:9000/x", "http://[::1]:9000"));
    assert_false(chnames_same_server("http://127.0.0.1:8123", "http://127.0.0.1:8124"));
    assert_false(chnames_same_server("http://a:8123", "http://b:8123"));
    assert_false(chnames_same_server("http://h1:1,http://h2:2", "http://h3:3"));
    assert_false(chnames_same_server("http://ch", "https://ch"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derived),     cmocka_unit_test(test_clash),
        cmocka_unit_test(test_clash_many),  cmocka_unit_test(test_target_check),
        cmocka_unit_test(test_same_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
