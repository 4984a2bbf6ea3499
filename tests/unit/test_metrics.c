/* metrics: label values are escaped as the Prometheus text format requires; lag in seconds is
 * 0 when caught up, the last commit's age otherwise, unknown without a slot report. */
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

static void
test_lag_seconds(void **state)
{
    (void)state;
    Pgferry__Worker__SlotInfo si = PGFERRY__WORKER__SLOT_INFO__INIT;
    int64_t now = 1000000000000;
    si.current_lsn = "0/5000000";
    si.lag_bytes = 0;
    assert_true(metrics_lag_seconds("0/5000000", now - 10000000, &si, now) == 0);
    /* WAL after the confirmed position: the last commit's age */
    si.lag_bytes = 4096;
    assert_true(metrics_lag_seconds("0/4FFF000", now - 10000000, &si, now) == 10.0);
    /* the pipe acknowledged past what the (older) slot report saw: caught up, not 10 s */
    assert_true(metrics_lag_seconds("0/5000100", now - 10000000, &si, now) == 0);
    assert_true(metrics_lag_seconds("1/0", now - 10000000, &si, now) == 0);
    /* no slot report yet (a worker just restarted), or nothing applied: unknown */
    assert_true(metrics_lag_seconds("0/5000100", now - 10000000, NULL, now) == -1);
    assert_true(metrics_lag_seconds("", 0, &si, now) == -1);
    /* a malformed position does not count as caught up */
    assert_true(metrics_lag_seconds("x", now - 2000000, &si, now) == 2.0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label),
        cmocka_unit_test(test_lag_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
