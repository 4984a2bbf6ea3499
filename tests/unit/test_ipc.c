/* ipc_unpack_cost: a bound of what protobuf-c allocates, from one walk of the wire format. A
 * request of empty entries costs many times its size; any message protobuf-c decodes gets a
 * finite bound (never refused as malformed), also every prefix and byte flip of a real one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "ipc.h"

/* counts what protobuf-c asks for (the peak, as nothing is freed while it unpacks) */
static size_t g_allocated;

static void *
count_alloc(void *ud, size_t size)
{
    (void)ud;
    g_allocated += size;
    return malloc(size);
}

static void
count_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static ProtobufCAllocator counting = {count_alloc, count_free, NULL};

/* what unpacking takes, allocations counted */
static size_t
allocated(const uint8_t *b, size_t n)
{
    g_allocated = 0;
    Pgferry__Control__Request *r = pgferry__control__request__unpack(&counting, n, b);
    assert_non_null(r);
    size_t got = g_allocated;
    pgferry__control__request__free_unpacked(r, &counting);
    return got;
}

static size_t
packed_create(uint8_t **out)
{
    static Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
    static Pgferry__Control__CreatePipe cr = PGFERRY__CONTROL__CREATE_PIPE__INIT;
    static Pgferry__State__TableSpec ts[3];
    static Pgferry__State__TableSpec *tp[3];
    static char *ex[] = {"a", "bb"};
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    for (int i = 0; i < 3; i++) {
        pgferry__state__table_spec__init(&ts[i]);
        ts[i].schema = "public";
        ts[i].name = "t";
        ts[i].n_excluded_columns = 2;
        ts[i].excluded_columns = ex;
        tp[i] = &ts[i];
    }
    spec.name = "p";
    spec.source = "host=h";
    spec.n_tables = 3;
    spec.tables = tp;
    spec.batch_max_rows = 300;
    spec.rows_per_partition = 1u << 20;
    cr.spec = &spec;
    req.version = 1;
    req.body_case = PGFERRY__CONTROL__REQUEST__BODY_CREATE;
    req.create = &cr;
    size_t n = pgferry__control__request__get_packed_size(&req);
    *out = malloc(n);
    pgferry__control__request__pack(&req, *out);
    return n;
}

static void
check_consistent(const uint8_t *b, size_t n)
{
    size_t cost = ipc_unpack_cost(&pgferry__control__request__descriptor, b, n);
    Pgferry__Control__Request *r = pgferry__control__request__unpack(NULL, n, b);
    if (r) {
        assert_true(cost != SIZE_MAX); /* what decodes is never called malformed */
        pgferry__control__request__free_unpacked(r, NULL);
    }
}

static void
test_valid_bounded(void **state)
{
    (void)state;
    uint8_t *b;
    size_t n = packed_create(&b);
    size_t cost = ipc_unpack_cost(&pgferry__control__request__descriptor, b, n);
    assert_true(cost != SIZE_MAX);
    assert_true(cost > n);
    assert_true(cost < 64 * n + 4096);
    assert_true(cost >= allocated(b, n)); /* a bound, not a guess */
    for (size_t i = 0; i <= n; i++)
        check_consistent(b, i);
    uint8_t *m = malloc(n);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, b, n);
            m[i] ^= (uint8_t)(1u << bit);
            check_consistent(m, n);
        }
    }
    free(m);
    free(b);
}

static void
test_empty_entries_costly(void **state)
{
    (void)state;
    /* version 1, create { spec { tables {} x 500,000 } }: 1 MB */
    size_t n = 500000, inner = 2 * n;
    uint8_t *b = malloc(inner + 16), *p = b;
    *p++ = 0x08;
    *p++ = 0x01;
    *p++ = 0x52;
    size_t outer = 1 + 3 + inner; /* 0x0a, a 3-byte length, the entries */
    *p++ = (uint8_t)(0x80 | (outer & 0x7f));
    *p++ = (uint8_t)(0x80 | ((outer >> 7) & 0x7f));
    *p++ = (uint8_t)(outer >> 14);
    *p++ = 0x0a;
    *p++ = (uint8_t)(0x80 | (inner & 0x7f));
    *p++ = (uint8_t)(0x80 | ((inner >> 7) & 0x7f));
    *p++ = (uint8_t)(inner >> 14);
    for (size_t i = 0; i < n; i++) {
        *p++ = 0x3a;
        *p++ = 0x00;
    }
    size_t len = (size_t)(p - b);
    size_t cost = ipc_unpack_cost(&pgferry__control__request__descriptor, b, len);
    assert_true(cost != SIZE_MAX);
    assert_true(cost > 50 * len); /* each 2-byte entry: its struct, a pointer, the bookkeeping */
    size_t got = allocated(b, len);
    assert_true(cost >= got);
    assert_true(cost < 2 * got); /* and not far above */
    free(b);
}

static void
test_malformed(void **state)
{
    (void)state;
    static const uint8_t overlong[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80,
                                       0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    static const uint8_t past_end[] = {0x52, 0x10, 0x0a};
    static const uint8_t group[] = {0x0b, 0x0c};
    static const uint8_t field0[] = {0x00, 0x01};
    assert_true(ipc_unpack_cost(&pgferry__control__request__descriptor, overlong,
                                sizeof(overlong)) == SIZE_MAX);
    assert_true(ipc_unpack_cost(&pgferry__control__request__descriptor, past_end,
                                sizeof(past_end)) == SIZE_MAX);
    assert_true(ipc_unpack_cost(&pgferry__control__request__descriptor, group, sizeof(group)) ==
                SIZE_MAX);
    assert_true(ipc_unpack_cost(&pgferry__control__request__descriptor, field0, sizeof(field0)) ==
                SIZE_MAX);
    assert_true(ipc_unpack_cost(&pgferry__control__request__descriptor, NULL, 0) != SIZE_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_bounded),
        cmocka_unit_test(test_empty_entries_costly),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
