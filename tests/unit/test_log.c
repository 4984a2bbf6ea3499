/* log: one write() per line whatever the message holds (input cannot forge log lines), control
 * bytes escaped, secrets masked; log_oneline for history reasons and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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

static size_t
count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[9000];
    size_t n = 0;
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* 10,000 identical warnings from one place: 10 lines and one summary per window; different
 * lines from the same place are not held back by each other */
static void
test_repeated_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/pgferry-logtest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    log_init("test", "");
    log_set_fd(fd);
    log_set_rate_limit(10, 300);
    for (int i = 0; i < 10000; i++)
        log_warn("worker socket: dropped an undecodable message");
    for (int i = 0; i < 5; i++)
        log_warn("pipe p%d: started", i); /* same place, different lines: all written */
    assert_int_equal(count_lines(path, "dropped an undecodable message"), 10);
    assert_int_equal(count_lines(path, ": started"), 5);
    usleep(350 * 1000);
    log_flush_repeats(); /* the window ended: a daemon's loop writes the summary */
    assert_int_equal(count_lines(path, "9990 more line(s) like this were left out"), 1);
    log_flush_repeats(); /* once */
    log_info("a later line");
    assert_int_equal(count_lines(path, "more line(s) like this were left out"), 1);
    assert_int_equal(count_lines(path, "a later line"), 1);
    /* a new window admits the line again */
    log_warn("worker socket: dropped an undecodable message");
    assert_int_equal(count_lines(path, "dropped an undecodable message"), 12);
    /* off */
    log_set_rate_limit(0, 0);
    for (int i = 0; i < 50; i++)
        log_warn("unlimited");
    assert_int_equal(count_lines(path, "unlimited"), 50);
    log_set_rate_limit(10, 10000);
    log_set_fd(2);
    close(fd);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oneline),
        cmocka_unit_test(test_one_line_written),
        cmocka_unit_test(test_repeated_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
