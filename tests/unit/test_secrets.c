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

/* endpoints compare as lowercase host and numeric port, URL default ports filled in */
static void
test_endpoint_norm(void **state)
{
    (void)state;
    char out[300], err[300];
    struct {
        const char *in, *want;
    } good[] = {
        {"ch1:8123", "ch1:8123"},        {" CH1.Example.COM:08123 ", "ch1.example.com:8123"},
        {"http://ch1:8123", "ch1:8123"}, {"http://user:p%40ss@Ch1:8123/db?x=1", "ch1:8123"},
        {"http://ch1", "ch1:80"},        {"HTTPS://ch1/", "ch1:443"},
        {"[::1]:8123", "[::1]:8123"},    {"http://[FE80::1]", "[fe80::1]:80"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!secret_endpoint_norm(good[i].in, strlen(good[i].in), out, sizeof(out), err,
                                  sizeof(err)))
            fail_msg("refused %s: %s", good[i].in, err);
        assert_string_equal(out, good[i].want);
    }
    const char *bad[] = {"ch1",   "ch1:",  "ch1:0", "ch1:65536", "ch1:80x",
                         ":8123", "c h:1", "[::1",  "http://",   "ch/1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (secret_endpoint_norm(bad[i], strlen(bad[i]), out, sizeof(out), err, sizeof(err)))
            fail_msg("accepted %s as %s", bad[i], out);
    }
    assert_true(secret_endpoints_check("ch1:8123, http://ch2", err, sizeof(err)));
    assert_false(secret_endpoints_check("ch1:8123,", err, sizeof(err)));
}

/* every endpoint of a destination must be bound to the secret; unbound secrets go nowhere */
static void
test_bindings(void **state)
{
    (void)state;
    char dir[PATH_MAX + 16], resolved[PATH_MAX], err[600];
    snprintf(dir, sizeof(dir), "%s/secrets", root);
    secret_bind_t binds[4];
    memset(binds, 0, sizeof(binds));
    snprintf(binds[0].name, sizeof(binds[0].name), "ch.pw");
    snprintf(binds[0].endpoints, sizeof(binds[0].endpoints), "CH1:8123, http://ch2:8123");
    snprintf(binds[1].name, sizeof(binds[1].name), "PGFERRY_SECRET_CH");
    snprintf(binds[1].endpoints, sizeof(binds[1].endpoints), "https://ch3");
    snprintf(binds[2].name, sizeof(binds[2].name), "link.pw"); /* resolves outside: never */
    snprintf(binds[2].endpoints, sizeof(binds[2].endpoints), "ch1:8123");

    /* a file binding matches by resolved path: absolute, relative, through a symlink */
    assert_true(secret_file_check(dir, "ch.pw", resolved, sizeof(resolved), err, sizeof(err)));
    assert_ptr_equal(secret_bind_find(binds, 3, dir, resolved, NULL), &binds[0]);
    char inlink[PATH_MAX + 32];
    snprintf(inlink, sizeof(inlink), "%s/inlink.pw", root);
    assert_true(secret_file_check(dir, inlink, resolved, sizeof(resolved), err, sizeof(err)));
    assert_ptr_equal(secret_bind_find(binds, 3, dir, resolved, NULL), &binds[0]);
    assert_true(secret_file_check(dir, "sub/b.pw", resolved, sizeof(resolved), err, sizeof(err)));
    assert_null(secret_bind_find(binds, 3, dir, resolved, NULL));
    assert_ptr_equal(secret_bind_find(binds, 3, NULL, NULL, "PGFERRY_SECRET_CH"), &binds[1]);
    assert_null(secret_bind_find(binds, 3, NULL, NULL, "PGFERRY_SECRET_OTHER"));

    assert_true(secret_dest_allowed(&binds[0], "f", "http://u@ch1:8123", err, sizeof(err)));
    assert_true(
        secret_dest_allowed(&binds[0], "f", "http://CH2:8123/,http://ch1:8123", err, sizeof(err)));
    assert_false(
        secret_dest_allowed(&binds[0], "f", "http://ch1:8123,http://evil:8123", err, sizeof(err)));
    assert_non_null(strstr(err, "destination evil:8123 is not bound"));
    assert_false(secret_dest_allowed(&binds[0], "f", "http://ch1:8124", err, sizeof(err)));
    assert_false(secret_dest_allowed(&binds[0], "f", "http://ch1", err, sizeof(err)));
    assert_non_null(strstr(err, "ch1:80 is not bound"));
    assert_false(secret_dest_allowed(&binds[0], "f", "http://ch1.evil:8123", err, sizeof(err)));
    assert_true(secret_dest_allowed(&binds[1], "e", "https://u@ch3/", err, sizeof(err)));
    assert_false(secret_dest_allowed(&binds[1], "e", "http://ch3", err, sizeof(err)));
    assert_false(
        secret_dest_allowed(NULL, "--dest-password-env X", "http://ch1:8123", err, sizeof(err)));
    assert_non_null(strstr(err, "--dest-password-env X refused: this secret is bound to no"));

    /* the form workers get in their environment */
    char env[4096];
    assert_int_equal(secret_binds_format(binds, 2, env, sizeof(env)), 2);
    secret_bind_t back[4];
    assert_int_equal(secret_binds_parse(env, back, 4), 2);
    assert_string_equal(back[0].name, "ch.pw");
    assert_string_equal(back[0].endpoints, "CH1:8123, http://ch2:8123");
    assert_string_equal(back[1].name, "PGFERRY_SECRET_CH");
    assert_string_equal(back[1].endpoints, "https://ch3");
    assert_int_equal(secret_binds_parse(NULL, back, 4), 0);
    assert_int_equal(secret_binds_parse("", back, 4), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_endpoint_norm),
        cmocka_unit_test(test_bindings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
