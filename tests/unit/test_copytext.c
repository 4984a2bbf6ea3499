/* copytext: fields, NULLs, every escape, malformed rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "copytext.h"

static void
test_split(void **state)
{
    (void)state;
    char row[] = "1\t\\N\ta\\tb\\nc\\\\d\t\t\\x41\\101\\r\\b\\f\\v\\N\n";
    copytext_field_t f[5];
    char err[100];
    assert_true(copytext_split(row, strlen(row), f, 5, err, sizeof(err)));
    assert_int_equal(f[0].len, 1);
    assert_memory_equal(f[0].ptr, "1", 1);
    assert_null(f[1].ptr);
    assert_int_equal(f[2].len, 7);
    assert_memory_equal(f[2].ptr, "a\tb\nc\\d", 7);
    assert_non_null(f[3].ptr); /* empty string, not NULL */
    assert_int_equal(f[3].len, 0);
    assert_int_equal(f[4].len, 7);
    assert_memory_equal(f[4].ptr, "AA\r\b\f\vN", 7);
}

static void
test_single_and_null_only(void **state)
{
    (void)state;
    char a[] = "\\N";
    copytext_field_t f[2];
    char err[100];
    assert_true(copytext_split(a, strlen(a), f, 1, err, sizeof(err)));
    assert_null(f[0].ptr);
    char b[] = "\\Nx"; /* not a NULL marker: an escaped N then x */
    assert_true(copytext_split(b, strlen(b), f, 1, err, sizeof(err)));
    assert_int_equal(f[0].len, 2);
    assert_memory_equal(f[0].ptr, "Nx", 2);
    char c[] = "\t";
    assert_true(copytext_split(c, strlen(c), f, 2, err, sizeof(err)));
    assert_int_equal(f[0].len, 0);
    assert_int_equal(f[1].len, 0);
    /* plain text before and after an escape, a plain last field without a newline */
    char d[] = "plain text\\\\more\\ttail\\tend\\101\tplain last";
    assert_true(copytext_split(d, strlen(d), f, 2, err, sizeof(err)));
    assert_int_equal(f[0].len, 25);
    assert_memory_equal(f[0].ptr, "plain text\\more\ttail\tendA", 25);
    assert_int_equal(f[1].len, 10);
    assert_memory_equal(f[1].ptr, "plain last", 10);
}

static void
test_malformed(void **state)
{
    (void)state;
    copytext_field_t f[2];
    char err[100];
    char a[] = "1\t2\t3";
    assert_false(copytext_split(a, strlen(a), f, 2, err, sizeof(err)));
    char b[] = "1";
    assert_false(copytext_split(b, strlen(b), f, 2, err, sizeof(err)));
    assert_non_null(strstr(err, "expected 2"));
    char c[] = "1\tab\\";
    assert_false(copytext_split(c, strlen(c), f, 2, err, sizeof(err)));
    assert_non_null(strstr(err, "backslash"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_single_and_null_only),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
