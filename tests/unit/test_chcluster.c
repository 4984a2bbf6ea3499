/* chcluster: the checks of the cluster options and the pieces of cluster DDL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "chcluster.h"

static void
test_check(void **state)
{
    (void)state;
    char err[300];
    assert_true(chcluster_check("", "", "", 0, err, sizeof(err)));
    assert_true(chcluster_check("prod_2x2", "", "", 0, err, sizeof(err)));
    assert_true(chcluster_check("c", "sharded", "/ch/{shard}/{table}/{uid}", 2, err, sizeof(err)));
    /* options that mean nothing without a cluster */
    assert_false(chcluster_check("", "sharded", "", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "need --cluster"));
    assert_false(chcluster_check("", "", "", 2, err, sizeof(err)));
    assert_false(chcluster_check("a b", "", "", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "--cluster takes"));
    assert_false(chcluster_check("c", "mirrored", "", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "replicated or sharded"));
    assert_false(chcluster_check("c", "", "/p/{table}", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "{uid}"));
    assert_false(chcluster_check("c", "sharded", "/p/{uid}", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "{shard}"));
    assert_false(chcluster_check("c", "", "p/{uid}", 0, err, sizeof(err)));
    assert_false(chcluster_check("c", "", "/p'/{uid}", 0, err, sizeof(err)));
    assert_false(chcluster_check("c", "", "", 17, err, sizeof(err)));
}

static void
test_pieces(void **state)
{
    (void)state;
    chcluster_t one, rep, sh;
    char out[2000];
    chcluster_init(&one, "", "", "");
    assert_false(chcluster_on(&one));
    assert_string_equal(one.on, "");
    chcluster_data_table(&one, "t", out, sizeof(out));
    assert_string_equal(out, "t");
    chcluster_engine(&one, "db", "t", "`v`", out, sizeof(out));
    assert_string_equal(out, "ReplacingMergeTree(`v`)");

    chcluster_init(&rep, "c", "", "");
    assert_true(chcluster_on(&rep));
    assert_false(rep.sharded);
    assert_string_equal(rep.on, " ON CLUSTER 'c'");
    chcluster_data_table(&rep, "t", out, sizeof(out));
    assert_string_equal(out, "t");
    chcluster_engine(&rep, "d'b", "t", "`v`", out, sizeof(out));
    assert_non_null(
        strstr(out, "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/pgferry/d\\'b/t/"));
    char again[2000];
    chcluster_engine(&rep, "d'b", "t", "`v`", again, sizeof(again));
    assert_string_not_equal(out, again); /* {uid} is fresh each time */

    chcluster_init(&sh, "c", "sharded", "");
    assert_true(sh.sharded);
    chcluster_data_table(&sh, "t", out, sizeof(out));
    assert_string_equal(out, "t_local");
    const char *keys[] = {"`a`", "`b`"};
    chcluster_distributed_engine(&sh, "db", "t_local", keys, 2, out, sizeof(out));
    assert_string_equal(
        out, "Distributed('c', 'db', 't_local', cityHash64(toString(`a`), toString(`b`)))");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
