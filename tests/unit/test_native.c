/* native: the Native block layout, read out in pieces of any size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "native.h"

static void
fill_block(native_block_t *b)
{
    native_block_column(b, 0, "s", "Nullable(String)", true);
    native_block_column(b, 1, "f", "UInt8", false);
    const char *vals[] = {"ab", NULL, "c"};
    for (int r = 0; r < 3; r++) {
        native_col_t *s = &b->cols[0], *f = &b->cols[1];
        buf_byte(&s->nulls, vals[r] ? 0 : 1);
        size_t n = vals[r] ? strlen(vals[r]) : 0;
        buf_varint(&s->data, n);
        buf_append(&s->data, vals[r] ? vals[r] : "", n);
        buf_byte(&f->data, (unsigned char)(r + 7));
        b->rows++;
    }
}

static const unsigned char want[] = {
    2,   3, /* columns, rows */
    1,   's', 16,  'N', 'u', 'l', 'l', 'a', 'b', 'l', 'e',
    '(', 'S', 't', 'r', 'i', 'n', 'g', ')', 0,   1,   0, /* null map */
    2,   'a', 'b', 0,   1,   'c', /* values, an empty string under the NULL */
    1,   'f', 5,   'U', 'I', 'n', 't', '8', 7,   8,   9};

static void
test_layout(void **state)
{
    (void)state;
    native_block_t b;
    buf_t out;
    assert_true(native_block_init(&b, 2));
    buf_init(&out);
    assert_true(native_block_flush(&b, &out)); /* no rows: nothing */
    assert_int_equal(out.len, 0);
    fill_block(&b);
    assert_int_equal(native_block_bytes(&b), 3 + 6 + 3);
    assert_true(native_block_flush(&b, &out));
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    assert_int_equal(b.rows, 0);
    assert_false(b.sealed);
    assert_int_equal(native_block_bytes(&b), 0);
    buf_free(&out);
    native_block_free(&b);
}

/* read out in pieces of 1..7 bytes: the same bytes, then the block takes rows again */
static void
test_read_in_pieces(void **state)
{
    (void)state;
    for (size_t piece = 1; piece <= 7; piece++) {
        native_block_t b;
        assert_true(native_block_init(&b, 2));
        fill_block(&b);
        assert_int_equal(native_block_read(&b, (unsigned char[1]){0}, 1), 0); /* not sealed */
        assert_true(native_block_seal(&b));
        unsigned char got[sizeof(want) + 16];
        size_t n = 0, k;
        assert_int_equal(native_block_left(&b), sizeof(want));
        while ((k = native_block_read(&b, got + n, piece)) > 0) {
            assert_true(k <= piece);
            n += k;
            assert_true(n <= sizeof(want));
            assert_int_equal(native_block_left(&b), sizeof(want) - n);
        }
        assert_int_equal(n, sizeof(want));
        assert_memory_equal(got, want, sizeof(want));
        assert_false(b.sealed);
        fill_block(&b); /* a second block over the same buffers */
        assert_true(native_block_seal(&b));
        n = 0;
        while ((k = native_block_read(&b, got + n, piece)) > 0)
            n += k;
        assert_int_equal(n, sizeof(want));
        assert_memory_equal(got, want, sizeof(want));
        native_block_free(&b);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_read_in_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
