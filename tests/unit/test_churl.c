/* churl: destination URLs pgferryd accepts at create (without libcurl) and the ones it refuses,
 * with a reason that never repeats a password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "churl.h"

static void
test_good(void **state)
{
    (void)state;
    const char *good[] = {
        "http://127.0.0.1:8123",  "http://u:p@127.0.0.1:8123/", "https://ch.example.internal",
        "HTTP://host:1",          "http://[::1]:8123",          "http://default@h_1.x-y:65535/",
        "http://u%40x:p%2F@h:80", "http://h:8123/?x=1",
    };
    char err[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!ch_url_check(good[i], err, sizeof(err)))
            fail_msg("refused %s: %s", good[i], err);
    }
}

static void
test_bad(void **state)
{
    (void)state;
    const struct {
        const char *url, *reason;
    } bad[] = {
        {"not a url", "space"},
        {"ftp://h:1", "scheme must be http or https, not ftp"},
        {"h:8123", "not a valid URL"},
        {"://h", "not a valid URL"},
        {"http://", "no host"},
        {"http://u:secret@:8123", "no host"},
        {"http://h:", "no usable port"},
        {"http://h:0", "no usable port"},
        {"http://h:65536", "no usable port"},
        {"http://h:80x", "no usable port"},
        {"http://h:99999999999999999999", "no usable port"},
        {"http://[::1", "IPv6"},
        {"http://[zz]:1", "IPv6"},
        {"http://h\x01:1", "control character"},
        {"http://ho$t:1", "host holds '$'"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ch_url_check(bad[i].url, err, sizeof(err)))
            fail_msg("accepted %s", bad[i].url);
        if (!strstr(err, bad[i].reason))
            fail_msg("%s: reason '%s' lacks '%s'", bad[i].url, err, bad[i].reason);
        assert_null(strstr(err, "secret"));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
