/* render: the watch progress bar and the status text of a running pipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

static void
test_bar(void **state)
{
    (void)state;
    char b[64];
    render_progress_bar(b, sizeof(b), 5, 10, 10);
    assert_string_equal(b, "[#####.....]  50.0%");
    render_progress_bar(b, sizeof(b), 0, 0, 4);
    assert_string_equal(b, "[....]   0.0%");
    render_progress_bar(b, sizeof(b), 12, 10, 4); /* clamped */
    assert_string_equal(b, "[####] 100.0%");
    render_progress_bar(b, 8, 1, 3, 40); /* too narrow for a bar */
    assert_string_equal(b, " 33.3%");
}

static void
test_watch_frame(void **state)
{
    (void)state;
    Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
    spec.name = "p";
    Pgferry__State__TableDef def = PGFERRY__STATE__TABLE_DEF__INIT;
    def.reltuples = 1000;
    Pgferry__State__TableDef *defs[] = {&def};
    Pgferry__State__PipeRecord rec = PGFERRY__STATE__PIPE_RECORD__INIT;
    rec.spec = &spec;
    rec.state = PGFERRY__STATE__PIPE_STATE__SNAPSHOT;
    rec.table_defs = defs;
    rec.n_table_defs = 1;
    Pgferry__Control__PipeStatus st = PGFERRY__CONTROL__PIPE_STATUS__INIT;
    st.record = &rec;
    st.snapshot_ranges_total = 4;
    st.snapshot_ranges_done = 1;
    st.snapshot_rows = 250;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    render_watch_frame(f, &st, 0);
    fclose(f);
    assert_non_null(strstr(text, "load     [##########..............................]  25.0%  1/4 "
                                 "ranges, 250 rows of ~1000"));
    assert_non_null(strstr(text, "state        Snapshot since"));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bar),
        cmocka_unit_test(test_watch_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
