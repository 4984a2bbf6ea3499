/* backoff: doubling, cap, jitter bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backoff.h"

static void
test_doubling_and_cap(void **state)
{
    (void)state;
    assert_int_equal(backoff_delay_ms(1, 1000, 60000, 0.5), 1000);
    assert_int_equal(backoff_delay_ms(2, 1000, 60000, 0.5), 2000);
    assert_int_equal(backoff_delay_ms(3, 1000, 60000, 0.5), 4000);
    assert_int_equal(backoff_delay_ms(7, 1000, 60000, 0.5), 60000);
    assert_int_equal(backoff_delay_ms(1000, 1000, 60000, 0.5), 60000);
    assert_int_equal(backoff_delay_ms(0, 1000, 60000, 0.5), 1000);
}

static void
test_jitter_bounds(void **state)
{
    (void)state;
    /* first restart stays within 2 s whatever the jitter */
    assert_int_equal(backoff_delay_ms(1, 1000, 60000, 0.0), 750);
    assert_true(backoff_delay_ms(1, 1000, 60000, 0.999999) < 1250);
    assert_true(backoff_delay_ms(9, 1000, 60000, 0.99) <= 60000);
    for (int i = 0; i < 10000; i++) {
        double r = backoff_rand01();
        assert_true(r >= 0.0 && r < 1.0);
        uint64_t d = backoff_delay_ms(1, 1000, 60000, r);
        assert_true(d >= 750 && d < 1250);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubling_and_cap),
        cmocka_unit_test(test_jitter_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
