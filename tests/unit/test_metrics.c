/* metrics: label values are escaped as the Prometheus text format requires; lag in seconds is
 * 0 when caught up, the last commit's age otherwise, unknown without a slot report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "status.h"

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
    assert_true(status_lag_seconds("0/5000000", now - 10000000, &si, now) == 0);
    /* WAL after the confirmed position: the last commit's age */
    si.lag_bytes = 4096;
    assert_true(status_lag_seconds("0/4FFF000", now - 10000000, &si, now) == 10.0);
    /* the pipe acknowledged past what the (older) slot report saw: caught up, not 10 s */
    assert_true(status_lag_seconds("0/5000100", now - 10000000, &si, now) == 0);
    assert_true(status_lag_seconds("1/0", now - 10000000, &si, now) == 0);
    /* no slot report yet (a worker just restarted), or nothing applied: unknown */
    assert_true(status_lag_seconds("0/5000100", now - 10000000, NULL, now) == -1);
    assert_true(status_lag_seconds("", 0, &si, now) == -1);
    /* a malformed position does not count as caught up */
    assert_true(status_lag_seconds("x", now - 2000000, &si, now) == 2.0);
}

/* the exposition text from statuses: every family's HELP/TYPE once, the pipe's series with
 * escaped labels, lag only when known */
static void
test_render_statuses(void **state)
{
    (void)state;
    Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
    Pgferry__State__PipeRecord rec = PGFERRY__STATE__PIPE_RECORD__INIT;
    Pgferry__State__TableStats ts = PGFERRY__STATE__TABLE_STATS__INIT, *tsp = &ts;
    Pgferry__Worker__SlotInfo si = PGFERRY__WORKER__SLOT_INFO__INIT;
    Pgferry__Control__PipeStatus st = PGFERRY__CONTROL__PIPE_STATUS__INIT, *stp = &st;
    Pgferry__Control__WorkerInfo wi = PGFERRY__CONTROL__WORKER_INFO__INIT, *wip = &wi;
    spec.name = "shop";
    rec.spec = &spec;
    rec.state = PGFERRY__STATE__PIPE_STATE__RUNNING;
    rec.cdc_transactions = 7;
    ts.target = "Order \"Items\"";
    ts.inserts = 5;
    ts.snapshot_rows = 100;
    rec.table_stats = &tsp;
    rec.n_table_stats = 1;
    si.lag_bytes = 4096;
    si.retained_bytes = 8192;
    st.record = &rec;
    st.slot = &si;
    st.lag_seconds = -1;
    st.rows_per_second = 2.5;
    st.workers = &wip;
    st.n_workers = 1;
    char *text = metrics_render_statuses(&stp, 1);
    assert_non_null(text);
    assert_non_null(strstr(text, "pgferry_pipes 1\n"));
    assert_non_null(strstr(text, "pgferry_pipe_state{pipe=\"shop\",state=\"Running\"} 1\n"));
    assert_non_null(strstr(text, "pgferry_pipe_state{pipe=\"shop\",state=\"Paused\"} 0\n"));
    assert_non_null(strstr(
        text, "pgferry_rows_total{pipe=\"shop\",table=\"Order \\\"Items\\\"\",op=\"insert\"} 5\n"));
    assert_non_null(strstr(text, "pgferry_transactions_total{pipe=\"shop\"} 7\n"));
    assert_non_null(strstr(text, "pgferry_lag_bytes{pipe=\"shop\"} 4096\n"));
    assert_null(strstr(text, "pgferry_lag_seconds{")); /* unknown: no sample */
    assert_non_null(strstr(text, "pgferry_workers{pipe=\"shop\"} 1\n"));
    assert_non_null(strstr(text, "pgferry_rows_per_second{pipe=\"shop\"} 2.500\n"));
    char *first = strstr(text, "# TYPE pgferry_rows_total counter");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE pgferry_rows_total counter"));
    free(text);
    st.lag_seconds = 0;
    text = metrics_render_statuses(&stp, 1);
    assert_non_null(strstr(text, "pgferry_lag_seconds{pipe=\"shop\"} 0.000\n"));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label),
        cmocka_unit_test(test_lag_seconds),
        cmocka_unit_test(test_render_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
