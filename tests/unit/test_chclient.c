/* chclient: URL handling, version numbers, and a refused connection classed TRANSIENT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "chclient.h"

static void
test_urls(void **state)
{
    (void)state;
    char err[256];
    ch_client_t *c = ch_client_new("http://u:p@127.0.0.1:8123", NULL, NULL, err, sizeof(err));
    assert_non_null(c);
    ch_client_destroy(&c);
    assert_null(c);
    assert_null(ch_client_new("ftp://h:1", NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "ftp"));
    assert_null(ch_client_new("not a url", NULL, NULL, err, sizeof(err)));
    assert_null(ch_client_new("http://h:1", NULL, "/nonexistent/pw", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/pw"));
}

static void
test_refused_is_transient(void **state)
{
    (void)state;
    char err[256];
    /* port 1 on loopback: nothing listens there, the kernel refuses at once */
    ch_client_t *c =
        ch_client_new("http://default:secret@127.0.0.1:1", NULL, NULL, err, sizeof(err));
    assert_non_null(c);
    errclass_t cls;
    char *v = ch_client_version(c, &cls, err, sizeof(err));
    assert_null(v);
    assert_int_equal(cls, ERRCLASS_TRANSIENT);
    assert_null(strstr(err, "secret"));
    ch_client_destroy(&c);
}

static void
test_version_number(void **state)
{
    (void)state;
    assert_int_equal(ch_version_number("18.16.1"), 18016001);
    assert_int_equal(ch_version_number("23.8.2.7"), 23008002);
    assert_true(ch_version_number("20.1.1") > ch_version_number("19.17.9"));
    assert_int_equal(ch_version_number("garbage"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_refused_is_transient),
        cmocka_unit_test(test_version_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
