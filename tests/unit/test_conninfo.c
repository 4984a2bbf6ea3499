/* conninfo: connection strings libpq would refuse are refused at create, with the reason and
 * without echoing a password; the ones it takes pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* file-valued keywords a control client must not choose: refused, or confined to secrets_dir */
static void
test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/pgferry-conninfo-XXXXXX", p[200], err[600];
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof(p), "%s/ca.crt", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/crls", dir);
    assert_int_equal(mkdir(p, 0700), 0);

    const char *good[] = {
        "host=h dbname=d", "postgresql://u:secretpw@h/d?sslmode=verify-full&sslrootcert=ca.crt",
        "host=h sslrootcert=ca.crt sslcrldir=crls", "host=h sslcrldir=.", "host=h sslrootcert=''"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!conninfo_check_files(good[i], dir, err, sizeof(err)))
            fail_msg("refused %s: %s", good[i], err);
    }
    struct {
        const char *s, *want;
    } bad[] = {
        {"host=h passfile=/etc/passwd", "\"passfile\" refused"},
        {"host=h passfile=''", "\"passfile\" refused"},
        {"host=h sslcert=", "\"sslcert\" refused"},
        {"postgresql://h/d?passfile=%2Fetc%2Fpasswd", "\"passfile\" refused"},
        {"host=h service=prod", "\"service\" refused"},
        {"host=h sslkey=ca.crt", "\"sslkey\" refused"},
        {"postgresql://h/d?sslcert=x", "\"sslcert\" refused"},
        {"host=h sslrootcert=/etc/ssl/certs/ca-certificates.crt", "not inside secrets_dir"},
        {"host=h sslrootcert='../x'", "sslrootcert"},
        {"host=h sslcrl=/etc/passwd", "not inside secrets_dir"},
        {"host=h sslcrldir=/etc", "\"sslcrldir\" refused"},
        {"host=h sslcrldir=..", "\"sslcrldir\" refused"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (conninfo_check_files(bad[i].s, dir, err, sizeof(err)))
            fail_msg("accepted %s", bad[i].s);
        if (!strstr(err, bad[i].want))
            fail_msg("%s: reason '%s' lacks '%s'", bad[i].s, err, bad[i].want);
    }
    /* secrets_dir off: confined files are refused too */
    assert_false(conninfo_check_files("host=h sslrootcert=ca.crt", "", err, sizeof(err)));
    assert_true(conninfo_file_keyword_check("host", "h", dir, err, sizeof(err)));
    assert_false(conninfo_file_keyword_check("passfile", "/x", dir, err, sizeof(err)));
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
