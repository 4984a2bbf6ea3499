/* relmap and schema_key_matches: Relation messages mapped onto a recorded definition; a
 * changed column, type or key is told apart from a relation that only lists columns in
 * another place; excluded columns are left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "relmap.h"
#include "schema.h"

static Pgferry__State__ColumnDef c[3];
static Pgferry__State__ColumnDef *cp[3];
static Pgferry__State__TableDef d;

static void
make(void)
{
    const char *names[] = {"id", "v", "w"};
    for (int i = 0; i < 3; i++) {
        pgferry__state__column_def__init(&c[i]);
        c[i].name = (char *)names[i];
        c[i].type_oid = i ? 25 : 23;
        c[i].typmod = -1;
        c[i].key_position = i == 0;
        cp[i] = &c[i];
    }
    pgferry__state__table_def__init(&d);
    d.columns = cp;
    d.n_columns = 3;
}

static pgo_column_t rc[4];
static pgo_msg_t rel;

static void
relation(int n, const char *const *names, const uint32_t *oids, const uint8_t *flags, char ident)
{
    for (int i = 0; i < n; i++) {
        rc[i].name = names[i];
        rc[i].type_oid = oids[i];
        rc[i].typmod = -1;
        rc[i].flags = flags[i];
    }
    memset(&rel, 0, sizeof(rel));
    rel.kind = PGO_RELATION;
    rel.u.relation.relid = 42;
    rel.u.relation.ncols = (uint16_t)n;
    rel.u.relation.cols = rc;
    rel.u.relation.replident = ident;
}

static bool
excl_w(void *ud, const char *name)
{
    (void)ud;
    return strcmp(name, "x") == 0;
}

static void
test_bind(void **state)
{
    (void)state;
    make();
    relmap_t *m = relmap_new();
    relmap_entry_t *e = relmap_put(m, 42);
    assert_non_null(e);
    assert_int_equal(e->table, -1);
    e->table = 0;
    bool oom;
    /* the same columns, another order, plus an excluded one */
    const char *n1[] = {"w", "id", "x", "v"};
    uint32_t o1[] = {25, 23, 23, 25};
    uint8_t f1[] = {0, 1, 0, 0};
    relation(4, n1, o1, f1, 'd');
    assert_true(relmap_bind(e, &rel, &d, excl_w, NULL, &oom));
    assert_true(e->bound);
    assert_int_equal(e->relcol[0], 1);
    assert_int_equal(e->relcol[1], 3);
    assert_int_equal(e->relcol[2], 0);
    assert_int_equal(e->defcol[2], -1);
    assert_true(schema_key_matches(&d, &rel));
    /* a type change */
    uint32_t o2[] = {25, 23, 23, 23};
    relation(4, n1, o2, f1, 'd');
    assert_false(relmap_bind(e, &rel, &d, excl_w, NULL, &oom));
    assert_false(oom);
    /* a column missing, a column added */
    const char *n3[] = {"id", "v"};
    relation(2, n3, o1 + 1, f1 + 1, 'd');
    assert_false(relmap_bind(e, &rel, &d, NULL, NULL, &oom));
    const char *n4[] = {"id", "v", "w", "new"};
    uint32_t o4[] = {23, 25, 25, 25};
    uint8_t f4[] = {1, 0, 0, 0};
    relation(4, n4, o4, f4, 'd');
    assert_false(relmap_bind(e, &rel, &d, NULL, NULL, &oom));
    /* every other relation of the table binds again after a schema change */
    relation(3, n4, o4, f4, 'd');
    assert_true(relmap_bind(e, &rel, &d, NULL, NULL, &oom));
    relmap_unbind_table(m, 0);
    assert_false(relmap_get(m, 42)->bound);
    assert_null(relmap_get(m, 7));
    relmap_destroy(&m);
    assert_null(m);
}

static void
test_key(void **state)
{
    (void)state;
    make();
    const char *n[] = {"id", "v", "w"};
    uint32_t o[] = {23, 25, 25};
    uint8_t key_v[] = {0, 1, 0};
    relation(3, n, o, key_v, 'i'); /* the replica identity index is on v now */
    assert_false(schema_key_matches(&d, &rel));
    uint8_t key_both[] = {1, 1, 0};
    relation(3, n, o, key_both, 'd');
    assert_false(schema_key_matches(&d, &rel));
    uint8_t all[] = {1, 1, 1};
    relation(3, n, o, all, 'f'); /* FULL marks every column: no key to compare */
    assert_true(schema_key_matches(&d, &rel));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind),
        cmocka_unit_test(test_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
