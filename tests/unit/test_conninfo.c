/* conninfo: connection strings libpq would refuse are refused at create, with the reason and
 * without echoing a password; the ones it takes pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "conninfo.h"

static void
test_good(void **state)
{
    (void)state;
    const char *good[] = {
        "postgresql://u:p@127.0.0.1:5432/db",
        "postgres://localhost/db?sslmode=disable&application_name=x",
        "postgresql://",
        "postgresql:///db?host=/var/run/postgresql",
        "postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write",
        "postgresql://[::1]:5432/db",
        "postgresql://u%40x:p%2Fw@h/db?connect_timeout=10&ssl=true",
        "host=127.0.0.1 port=5432 dbname=db user=u password='it\\'s x'",
        "host=a,b port=5432,5433 target_session_attrs=read-write",
        "dbname = db connect_timeout = 5",
        "service=mine",
    };
    char err[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!conninfo_check(good[i], err, sizeof(err)))
            fail_msg("refused %s: %s", good[i], err);
    }
}

static void
test_bad(void **state)
{
    (void)state;
    static const struct {
        const char *s, *want;
    } bad[] = {
        {"postgresql://u:secretpw@h:T/db", "invalid port"},
        {"postgresql://u:secretpw@h:99999/db", "invalid port"},
        {"postgresql://h:5432,h2:x/db", "invalid port"},
        {"postgresql://h/db?bogus=1", "invalid connection option \"bogus\""},
        {"postgresql://h/db?connect_timeout=soon", "invalid integer value"},
        {"postgresql://h/db?sslmode", "missing \"=\""},
        {"postgresql://h/db?x=%zz", "percent"},
        {"postgresql://[::1/db", "IPv6"},
        {"host=h port=T", "invalid port"},
        {"host=h password='secretpw", "unterminated"},
        {"host=h nosuchoption=1", "invalid connection option"},
        {"host h", "missing \"=\""},
        {"postgresql://h/db\x0f", "control character"},
        {"", "empty"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (conninfo_check(bad[i].s, err, sizeof(err)))
            fail_msg("accepted %s", bad[i].s);
        if (!strstr(err, bad[i].want))
            fail_msg("%s: reason '%s' lacks '%s'", bad[i].s, err, bad[i].want);
        if (strstr(err, "secretpw"))
            fail_msg("the reason shows the password: %s", err);
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
