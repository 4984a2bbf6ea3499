/* mask: passwords never survive masking, everything else does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "mask.h"

static void
check(const char *in, const char *want)
{
    char *m = mask_secrets(in);
    assert_non_null(m);
    assert_string_equal(m, want);
    free(m);
}

static void
test_uris(void **state)
{
    (void)state;
    check("postgresql://alice:s3cr3t@db:5432/app", "postgresql://alice:*****@db:5432/app");
    check("http://default:p%40ss@127.0.0.1:8123", "http://default:*****@127.0.0.1:8123");
    check("postgres://alice@db/app", "postgres://alice@db/app");
    check("postgres://db/app", "postgres://db/app");
    check("http://u:pa@ss@host:1/x", "http://u:*****@host:1/x");
    check("see postgresql://a:b@h/d and http://c:d@e",
          "see postgresql://a:*****@h/d and http://c:*****@e");
    check("postgresql://h/db?user=a&password=zz&sslmode=require",
          "postgresql://h/db?user=a&password=*****&sslmode=require");
}

static void
test_conninfo(void **state)
{
    (void)state;
    check("host=h user=u password=hunter2 dbname=d", "host=h user=u password=***** dbname=d");
    check("host=h password = 'a b\\' c' dbname=d", "host=h password = ***** dbname=d");
    check("PASSWORD=x", "PASSWORD=*****");
    check("mypassword=keep", "mypassword=keep");
    check("no secrets here", "no secrets here");
    check("", "");
}

static void
test_inplace_truncates_safely(void **state)
{
    (void)state;
    char buf[32] = "postgresql://a:verysecret@h/d";
    mask_secrets_inplace(buf, sizeof(buf));
    assert_string_equal(buf, "postgresql://a:*****@h/d");
    char small[20] = "password=abcdefghij";
    mask_secrets_inplace(small, sizeof(small));
    assert_null(strstr(small, "abc"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uris),
        cmocka_unit_test(test_conninfo),
        cmocka_unit_test(test_inplace_truncates_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
