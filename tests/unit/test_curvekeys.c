/* curvekeys: key files, public keys, authorized keys; Z85 keys contain '#' and '='. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "curvekeys.h"

/* valid Z85 keys (each 5-character group stays below 2^32) with '#' and '=' inside */
#define KEY_HASH "0#00000000000000000000000000000000000000"
#define KEY_EQ "0=00000000000000000000000000000000000000"

static char dir[64];

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pgferry-test-keys-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
put(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
test_generate_and_load(void **state)
{
    (void)state;
    char path[128], pubpath[160], pub[41], sec[41], pub2[41], err[256];
    snprintf(path, sizeof(path), "%s/k", dir);
    assert_true(curvekeys_generate(path, err, sizeof(err)));
    assert_false(curvekeys_generate(path, err, sizeof(err))); /* never overwrites */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(curvekeys_load(path, pub, sec, err, sizeof(err)));
    assert_int_equal(strlen(pub), 40);
    assert_int_equal(strlen(sec), 40);
    snprintf(pubpath, sizeof(pubpath), "%s.pub", path);
    assert_true(curvekeys_load_public(pubpath, pub2, err, sizeof(err)));
    assert_string_equal(pub, pub2);
    assert_true(curvekeys_load_public(pub, pub2, err, sizeof(err))); /* the key as text */
    assert_string_equal(pub, pub2);
}

static void
test_keys_with_hash_and_equals(void **state)
{
    (void)state;
    assert_int_equal(strlen(KEY_HASH), 40);
    char p[128], pub[41], sec[41], err[256];
    put("kf", "# pgferry CURVE key pair\npublic = " KEY_EQ "\nsecret = " KEY_HASH "\n");
    snprintf(p, sizeof(p), "%s/kf", dir);
    assert_true(curvekeys_load(p, pub, sec, err, sizeof(err)));
    assert_string_equal(pub, KEY_EQ);
    assert_string_equal(sec, KEY_HASH);
    put("pub", KEY_HASH "\n");
    snprintf(p, sizeof(p), "%s/pub", dir);
    assert_true(curvekeys_load_public(p, pub, err, sizeof(err)));
    assert_string_equal(pub, KEY_HASH);

    put("auth", "# operators\n\n" KEY_HASH "\n  " KEY_EQ "  \n");
    snprintf(p, sizeof(p), "%s/auth", dir);
    unsigned char *keys;
    size_t n;
    assert_true(curvekeys_load_authorized(p, &keys, &n, err, sizeof(err)));
    assert_int_equal(n, 2);
    free(keys);
    put("bad", KEY_HASH "\nnot-a-key\n");
    snprintf(p, sizeof(p), "%s/bad", dir);
    assert_false(curvekeys_load_authorized(p, &keys, &n, err, sizeof(err)));
    assert_non_null(strstr(err, ":2: not a Z85"));
    assert_false(curvekeys_load("/nonexistent/key", pub, sec, err, sizeof(err)));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generate_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_with_hash_and_equals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
