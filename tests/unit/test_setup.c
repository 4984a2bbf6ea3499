/* setup: the destination's shape (ordering key led by --order-by columns, PARTITION BY) and
 * its refusals, on definitions built here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "owners.h"
#include "setup.h"

static Pgferry__State__ColumnDef cols[4];
static Pgferry__State__ColumnDef *colp[4];
static Pgferry__State__TableDef def;

static void
make_def(void)
{
    /* (id int, tenant int NOT NULL, note text, region text NOT NULL), key (id, region) */
    static const char *names[] = {"id", "tenant", "note", "region"};
    static const char *types[] = {"Int32", "Int32", "Nullable(String)", "String"};
    static const uint32_t keys[] = {1, 0, 0, 2};
    static const bool notnull[] = {true, true, false, true};
    pgferry__state__table_def__init(&def);
    for (int i = 0; i < 4; i++) {
        pgferry__state__column_def__init(&cols[i]);
        cols[i].name = (char *)names[i];
        cols[i].ch_type = (char *)types[i];
        cols[i].key_position = keys[i];
        cols[i].not_null = notnull[i];
        colp[i] = &cols[i];
    }
    def.schema = "s";
    def.name = "t";
    def.target = "t";
    def.columns = colp;
    def.n_columns = 4;
}

static errclass_t
shape(const char *const *order, size_t n, bool full, char *err, size_t errlen)
{
    Pgferry__State__TableSpec t = PGFERRY__STATE__TABLE_SPEC__INIT;
    t.order_by = (char **)order;
    t.n_order_by = n;
    return setup_shape_order_by(&def, &t, full, "s.t", err, errlen);
}

static void
test_order_by_key_columns(void **state)
{
    (void)state;
    char err[400];
    make_def();
    const char *order[] = {"region"};
    assert_int_equal(shape(order, 1, false, err, sizeof(err)), ERRCLASS_NONE);
    assert_int_equal(cols[3].key_position, 1); /* region first */
    assert_int_equal(cols[0].key_position, 2); /* then the rest of the key */
    assert_int_equal(cols[1].key_position, 0);
    chcluster_t one;
    chcluster_init(&one, "", "", "");
    char *ddl = setup_table_ddl(&one, "db", &def);
    assert_non_null(strstr(ddl, "ENGINE = ReplacingMergeTree(`_pgferry_version`)"));
    assert_null(strstr(ddl, "ON CLUSTER"));
    assert_non_null(strstr(ddl, "ORDER BY (`region`, `id`)"));
    assert_null(strstr(ddl, "PARTITION BY"));
    free(ddl);
}

static void
test_order_by_full_identity(void **state)
{
    (void)state;
    char err[400];
    make_def();
    const char *order[] = {"tenant", "id"};
    /* not in the key: refused unless the identity is FULL */
    assert_int_equal(shape(order, 2, false, err, sizeof(err)), ERRCLASS_FATAL);
    assert_non_null(strstr(err, "not covered by the table's replica identity"));
    make_def();
    assert_int_equal(shape(order, 2, true, err, sizeof(err)), ERRCLASS_NONE);
    assert_int_equal(cols[1].key_position, 1);
    assert_int_equal(cols[0].key_position, 2);
    assert_int_equal(cols[3].key_position, 3);
    def.partition_by = "tenant % 4";
    chcluster_t one;
    chcluster_init(&one, "", "", "");
    char *ddl = setup_table_ddl(&one, "db", &def);
    assert_non_null(strstr(ddl, "PARTITION BY (tenant % 4) ORDER BY (`tenant`, `id`, `region`)"));
    free(ddl);
}

/* on a cluster: ON CLUSTER, Replicated engine with its own path, Distributed when sharded */
static void
test_cluster_ddl(void **state)
{
    (void)state;
    make_def();
    def.partition_by = NULL;
    chcluster_t rep, sh;
    chcluster_init(&rep, "c1", "replicated", "");
    char *a = setup_table_ddl(&rep, "db", &def), *b = setup_table_ddl(&rep, "db", &def);
    assert_non_null(strstr(a, "CREATE TABLE IF NOT EXISTS `db`.`t` ON CLUSTER 'c1' ("));
    assert_non_null(strstr(a, "ENGINE = ReplicatedReplacingMergeTree("
                              "'/clickhouse/tables/{shard}/pgferry/db/t/"));
    assert_non_null(strstr(a, "', '{replica}', `_pgferry_version`) ORDER BY (`id`"));
    /* every CREATE gets a path of its own (a resync creates the same name again) */
    assert_string_not_equal(a, b);
    assert_null(setup_dist_ddl(&rep, "db", &def, "t", "t"));
    free(a);
    free(b);
    chcluster_init(&sh, "c2", "sharded", "/zk/{shard}/{database}.{table}/{uid}");
    a = setup_table_ddl(&sh, "db", &def);
    assert_non_null(strstr(a, "CREATE TABLE IF NOT EXISTS `db`.`t_local` ON CLUSTER 'c2' ("));
    assert_non_null(strstr(a, "ReplicatedReplacingMergeTree('/zk/{shard}/db.t_local/"));
    b = setup_dist_ddl(&sh, "db", &def, "t", "t_local");
    assert_string_equal(b, "CREATE TABLE IF NOT EXISTS `db`.`t` ON CLUSTER 'c2' AS `db`.`t_local` "
                           "ENGINE = Distributed('c2', 'db', 't_local', "
                           "cityHash64(toString(`id`), toString(`region`)))");
    free(a);
    free(b);
    a = setup_view_ddl(&sh, "db", &def);
    assert_non_null(strstr(a, "CREATE VIEW IF NOT EXISTS `db`.`t_live` ON CLUSTER 'c2' AS SELECT"));
    assert_non_null(strstr(a, "FROM `db`.`t` FINAL"));
    free(a);
}

static void
test_order_by_refusals(void **state)
{
    (void)state;
    char err[400];
    make_def();
    const char *nullable[] = {"note"};
    assert_int_equal(shape(nullable, 1, true, err, sizeof(err)), ERRCLASS_FATAL);
    assert_non_null(strstr(err, "can be NULL"));
    const char *missing[] = {"nope"};
    assert_int_equal(shape(missing, 1, true, err, sizeof(err)), ERRCLASS_FATAL);
    assert_non_null(strstr(err, "does not exist"));
    const char *twice[] = {"id", "id"};
    assert_int_equal(shape(twice, 2, true, err, sizeof(err)), ERRCLASS_FATAL);
    assert_non_null(strstr(err, "twice"));
    /* a column left out is named with its reason */
    Pgferry__State__SkippedColumn sc = PGFERRY__STATE__SKIPPED_COLUMN__INIT;
    sc.name = "gen";
    sc.reason = "generated";
    Pgferry__State__SkippedColumn *scp[] = {&sc};
    def.skipped_columns = scp;
    def.n_skipped_columns = 1;
    const char *skipped[] = {"gen"};
    assert_int_equal(shape(skipped, 1, true, err, sizeof(err)), ERRCLASS_FATAL);
    assert_non_null(strstr(err, "not replicated (generated)"));
    assert_string_equal(setup_skipped_reason(&def, "gen"), "generated");
    assert_null(setup_skipped_reason(&def, "id"));
}

/* every name a pipe may create for a target is claimed: the family of a target */
static void
test_owner_family(void **state)
{
    (void)state;
    chcluster_t one, sh;
    chcluster_init(&one, "", "", "");
    chcluster_init(&sh, "c", "sharded", "");
    char names[OWNERS_MAX_NAMES][300];
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
    size_t n = owners_family(&one, "orders", names, OWNERS_MAX_NAMES);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], want[i]);
    n = owners_family(&sh, "orders", names, OWNERS_MAX_NAMES);
    assert_int_equal(n, 11);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], want[i]);
    /* what setup.c and the cluster module derive is in it */
    char data[300];
    chcluster_data_table(&sh, "orders_resync", data, sizeof(data));
    assert_string_equal(data, names[9]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_by_key_columns), cmocka_unit_test(test_order_by_full_identity),
        cmocka_unit_test(test_order_by_refusals),    cmocka_unit_test(test_cluster_ddl),
        cmocka_unit_test(test_owner_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
