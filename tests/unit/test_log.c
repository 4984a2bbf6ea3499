/* log: one write() per line whatever the message holds (input cannot forge log lines), control
 * bytes escaped, secrets masked; log_oneline for history reasons and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static void
test_oneline(void **state)
{
    (void)state;
    char out[128];
    log_oneline("ERROR:  x\nDETAIL:  y\r\n\tHINT: z\n", out, sizeof(out));
    assert_string_equal(out, "ERROR:  x DETAIL:  y HINT: z");
    log_oneline("uri\x0fwith\x1b[31mcontrol\x7f", out, sizeof(out));
    assert_string_equal(out, "uri\\x0fwith\\x1b[31mcontrol\\x7f");
    log_oneline("", out, sizeof(out));
    assert_string_equal(out, "");
    char small[8];
    log_oneline("abcdefghijkl", small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
}

static void
test_one_line_written(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    log_init("test", "p");
    log_set_fd(fds[1]);
    log_set_json(false);
    log_info("forged?\n2026-11-30T00:00:00.000Z error [1 supervisor] fake line\x0f end, "
             "postgresql://u:hunter2@h/db");
    log_set_fd(2);
    close(fds[1]);
    char buf[2048];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strchr(buf, '\n'));
    assert_int_equal(strchr(buf, '\n') - buf, n - 1); /* exactly one line */
    assert_non_null(strstr(buf, "\\x0f end"));
    assert_null(strstr(buf, "hunter2"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oneline),
        cmocka_unit_test(test_one_line_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
