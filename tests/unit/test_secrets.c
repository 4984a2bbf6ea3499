/* secrets: a pipe's password file must resolve inside secrets_dir (symlinks and ".." followed),
 * its password variable must carry the configured prefix; both can be turned off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secrets.h"

static char root[PATH_MAX];

static void
put(const char *rel, const char *content)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/pgferry-secrets-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/secrets", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/secrets/sub", root);
    mkdir(p, 0700);
    put("secrets/ch.pw", "pw\n");
    put("secrets/sub/b.pw", "pw\n");
    put("outside.key", "private\n");
    char target[PATH_MAX + 64], link[PATH_MAX + 64];
    snprintf(target, sizeof(target), "%s/outside.key", root);
    snprintf(link, sizeof(link), "%s/secrets/link.pw", root);
    if (symlink(target, link) != 0)
        return -1;
    snprintf(target, sizeof(target), "%s/secrets/ch.pw", root);
    snprintf(link, sizeof(link), "%s/inlink.pw", root);
    if (symlink(target, link) != 0)
        return -1;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void
test_files(void **state)
{
    (void)state;
    char dir[PATH_MAX + 16], p[PATH_MAX + 64], out[PATH_MAX], err[600];
    snprintf(dir, sizeof(dir), "%s/secrets", root);
    /* allowed: a name relative to the directory, an absolute path inside, a subdirectory, a
     * symlink from outside that resolves inside */
    assert_true(secret_file_check(dir, "ch.pw", out, sizeof(out), err, sizeof(err)));
    assert_non_null(strstr(out, "/secrets/ch.pw"));
    snprintf(p, sizeof(p), "%s/secrets/sub/b.pw", root);
    assert_true(secret_file_check(dir, p, out, sizeof(out), err, sizeof(err)));
    assert_true(secret_file_check(dir, "sub/b.pw", out, sizeof(out), err, sizeof(err)));
    snprintf(p, sizeof(p), "%s/inlink.pw", root);
    assert_true(secret_file_check(dir, p, out, sizeof(out), err, sizeof(err)));
    /* refused: outside, through "..", through a symlink inside pointing out, the directory
     * itself, a subdirectory, a missing file, with files off */
    snprintf(p, sizeof(p), "%s/outside.key", root);
    assert_false(secret_file_check(dir, p, out, sizeof(out), err, sizeof(err)));
    assert_non_null(strstr(err, "not inside secrets_dir"));
    assert_null(strstr(err, "private"));
    assert_false(secret_file_check(dir, "../outside.key", out, sizeof(out), err, sizeof(err)));
    assert_non_null(strstr(err, "not inside secrets_dir"));
    assert_false(secret_file_check(dir, "link.pw", out, sizeof(out), err, sizeof(err)));
    assert_non_null(strstr(err, "not inside secrets_dir"));
    assert_false(secret_file_check(dir, dir, out, sizeof(out), err, sizeof(err)));
    assert_false(secret_file_check(dir, ".", out, sizeof(out), err, sizeof(err)));
    assert_false(secret_file_check(dir, "sub", out, sizeof(out), err, sizeof(err)));
    assert_non_null(strstr(err, "not a regular file"));
    assert_false(secret_file_check(dir, "missing.pw", out, sizeof(out), err, sizeof(err)));
    assert_non_null(strstr(err, "No such file"));
    assert_false(secret_file_check(dir, "/etc/passwd", out, sizeof(out), err, sizeof(err)));
    assert_false(secret_file_check("", "ch.pw", out, sizeof(out), err, sizeof(err)));
    assert_non_null(strstr(err, "password files are off"));
    /* a directory that is a prefix of another is not the other */
    char sib[PATH_MAX + 64];
    snprintf(sib, sizeof(sib), "%s/secrets2", root);
    mkdir(sib, 0700);
    put("secrets2/x.pw", "x");
    snprintf(p, sizeof(p), "%s/secrets2/x.pw", root);
    assert_false(secret_file_check(dir, p, out, sizeof(out), err, sizeof(err)));
}

static void
test_env(void **state)
{
    (void)state;
    char err[400];
    assert_true(secret_env_check("PGFERRY_SECRET_", "PGFERRY_SECRET_CH", err, sizeof(err)));
    assert_true(secret_env_check("PGFERRY_SECRET_", "PGFERRY_SECRET_a_1", err, sizeof(err)));
    const char *bad[] = {"HOME",
                         "PGFERRY_SECRET_",
                         "PGFERRY_SECRET",
                         "XPGFERRY_SECRET_A",
                         "PGFERRY_SECRET_A B",
                         "PGFERRY_SECRET_A=B",
                         "pgferry_secret_a",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (secret_env_check("PGFERRY_SECRET_", bad[i], err, sizeof(err)))
            fail_msg("accepted variable '%s'", bad[i]);
        assert_non_null(strstr(err, "refused"));
    }
    assert_false(secret_env_check("", "PGFERRY_SECRET_CH", err, sizeof(err)));
    assert_non_null(strstr(err, "variables are off"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
