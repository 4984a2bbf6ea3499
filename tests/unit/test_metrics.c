/* metrics: label values are escaped as the Prometheus text format requires. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "metrics.h"

static void
test_label(void **state)
{
    (void)state;
    char out[64];
    metrics_label("plain_name-1", out, sizeof(out));
    assert_string_equal(out, "plain_name-1");
    metrics_label("Mixed \"Case\"\\x\nnext", out, sizeof(out));
    assert_string_equal(out, "Mixed \\\"Case\\\"\\\\x\\nnext");
    metrics_label("\"\"\"\"\"\"\"\"", out, 8); /* truncated, never an unpaired escape */
    assert_string_equal(out, "\\\"\\\"\\\"");  /* three pairs and the NUL */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
