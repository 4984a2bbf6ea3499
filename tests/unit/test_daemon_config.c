/* daemon_config: file parsing errors name file, line and key; env and flags override. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_config.h"

static const char *
write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/pgferry-test-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void
test_file(void **state)
{
    (void)state;
    daemon_config_t c;
    char err[512];
    daemon_config_defaults(&c);
    const char *p = write_file("# comment\n\nstate_dir = /tmp/x\nlog_level = debug\n"
                               "backoff_initial_ms=250\nlog_format = \"json\"\n");
    assert_true(daemon_config_load_file(&c, p, err, sizeof(err)));
    assert_string_equal(c.state_dir, "/tmp/x");
    assert_int_equal(c.log_level, PGF_LOG_DEBUG);
    assert_int_equal(c.backoff_initial_ms, 250);
    assert_true(c.log_json);
    unlink(p);

    p = write_file("state_dir = /tmp/x\nbogus_key = 1\n");
    assert_false(daemon_config_load_file(&c, p, err, sizeof(err)));
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, ":2:"));
    assert_non_null(strstr(err, "bogus_key"));
    unlink(p);

    p = write_file("max_failures = lots\n");
    assert_false(daemon_config_load_file(&c, p, err, sizeof(err)));
    assert_non_null(strstr(err, ":1:"));
    assert_non_null(strstr(err, "max_failures"));
    unlink(p);

    p = write_file("just words\n");
    assert_false(daemon_config_load_file(&c, p, err, sizeof(err)));
    unlink(p);

    assert_false(daemon_config_load_file(&c, "/nonexistent/pgferryd.conf", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/pgferryd.conf"));

    /* CDC batch limits, the retained-WAL threshold and the metrics endpoint */
    daemon_config_defaults(&c);
    assert_int_equal(c.batch_max_wait_ms, 200);
    assert_int_equal(c.retained_wal_warning_mb, 1024);
    assert_string_equal(c.metrics_listen, "");
    p = write_file("batch_max_rows = 5000\nbatch_max_bytes = 1048576\nbatch_max_wait_ms = 50\n"
                   "retained_wal_warning_mb = 64\nmetrics_listen = 127.0.0.1:9187\n");
    assert_true(daemon_config_load_file(&c, p, err, sizeof(err)));
    assert_int_equal(c.batch_max_rows, 5000);
    assert_int_equal(c.batch_max_bytes, 1048576);
    assert_int_equal(c.batch_max_wait_ms, 50);
    assert_int_equal(c.retained_wal_warning_mb, 64);
    assert_string_equal(c.metrics_listen, "127.0.0.1:9187");
    unlink(p);
    p = write_file("batch_max_bytes = 10\n"); /* below the 64 kB floor */
    assert_false(daemon_config_load_file(&c, p, err, sizeof(err)));
    assert_non_null(strstr(err, "batch_max_bytes"));
    unlink(p);
    p = write_file("metrics_listen = 9187\n");
    assert_false(daemon_config_load_file(&c, p, err, sizeof(err)));
    assert_non_null(strstr(err, "HOST:PORT"));
    unlink(p);
    assert_false(daemon_config_set(&c, "retained_wal_warning_mb", "0", err, sizeof(err)));
}

static void
test_env_and_finish(void **state)
{
    (void)state;
    daemon_config_t c;
    char err[512];
    daemon_config_defaults(&c);
    setenv("PGFERRY_DEGRADED_AFTER", "5", 1);
    assert_true(daemon_config_load_env(&c, err, sizeof(err)));
    assert_int_equal(c.degraded_after, 5);
    setenv("PGFERRY_DEGRADED_AFTER", "-1", 1);
    assert_false(daemon_config_load_env(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "PGFERRY_DEGRADED_AFTER"));
    unsetenv("PGFERRY_DEGRADED_AFTER");

    daemon_config_defaults(&c);
    snprintf(c.state_dir, sizeof(c.state_dir), "/tmp/pgf");
    snprintf(c.worker_bin, sizeof(c.worker_bin), "/bin/true");
    assert_true(daemon_config_finish(&c, "pgferryd", err, sizeof(err)));
    assert_string_equal(c.control_endpoint, "ipc:///tmp/pgf/control.sock");
    /* password rules: files inside STATE_DIR/secrets, variables PGFERRY_SECRET_*; none = off */
    assert_string_equal(c.secrets_dir, "/tmp/pgf/secrets");
    assert_string_equal(c.secret_env_prefix, "PGFERRY_SECRET_");
    daemon_config_t d;
    daemon_config_defaults(&d);
    snprintf(d.worker_bin, sizeof(d.worker_bin), "/bin/true");
    assert_true(daemon_config_set(&d, "secrets_dir", "none", err, sizeof(err)));
    assert_true(daemon_config_set(&d, "secret_env_prefix", "none", err, sizeof(err)));
    assert_true(daemon_config_finish(&d, "pgferryd", err, sizeof(err)));
    assert_string_equal(d.secrets_dir, "");
    assert_string_equal(d.secret_env_prefix, "");
    assert_false(daemon_config_set(&d, "secret_env_prefix", "", err, sizeof(err)));
    assert_false(daemon_config_set(&d, "secret_env_prefix", "A=B_", err, sizeof(err)));
    assert_non_null(strstr(err, "letters, digits"));
    assert_true(daemon_config_set(&d, "secrets_dir", "rel/dir", err, sizeof(err)));
    assert_false(daemon_config_finish(&d, "pgferryd", err, sizeof(err)));
    assert_non_null(strstr(err, "absolute"));

    assert_true(
        daemon_config_set(&c, "control_endpoint", "tcp://127.0.0.1:5555", err, sizeof(err)));
    assert_false(daemon_config_finish(&c, "pgferryd", err, sizeof(err)));
    assert_non_null(strstr(err, "control_remote"));

    /* a tcp:// remote control endpoint refuses to start without CURVE keys */
    daemon_config_defaults(&c);
    snprintf(c.worker_bin, sizeof(c.worker_bin), "/bin/true");
    assert_true(daemon_config_set(&c, "control_remote", "tcp://127.0.0.1:5555", err, sizeof(err)));
    assert_false(daemon_config_finish(&c, "pgferryd", err, sizeof(err)));
    assert_non_null(strstr(err, "needs CURVE keys"));
    assert_true(daemon_config_set(&c, "curve_key_file", "/k", err, sizeof(err)));
    assert_true(daemon_config_set(&c, "curve_authorized_keys", "/a", err, sizeof(err)));
    assert_true(daemon_config_finish(&c, "pgferryd", err, sizeof(err)));
    assert_true(daemon_config_set(&c, "control_remote", "ipc:///x", err, sizeof(err)));
    assert_false(daemon_config_finish(&c, "pgferryd", err, sizeof(err)));

    daemon_config_defaults(&c);
    snprintf(c.worker_bin, sizeof(c.worker_bin), "/bin/true");
    c.backoff_initial_ms = 5000;
    c.backoff_max_ms = 1000;
    assert_false(daemon_config_finish(&c, "pgferryd", err, sizeof(err)));
}

/* secret_bind lines, the clear-text switch, source_passfile and the workers' environment */
static void
test_secret_rules(void **state)
{
    (void)state;
    daemon_config_t c;
    char err[600];
    daemon_config_defaults(&c);
    assert_int_equal(c.n_secret_binds, 0);
    assert_false(c.allow_cleartext_password);
    assert_true(daemon_config_set(&c, "secret_bind", "ch.pw = ch1:8123, http://ch2:8123", err,
                                  sizeof(err)));
    assert_true(
        daemon_config_set(&c, "secret_bind", "PGFERRY_SECRET_X=https://ch3", err, sizeof(err)));
    assert_true(daemon_config_set(&c, "secret_bind", "ch.pw = ch9:8123", err, sizeof(err)));
    assert_int_equal(c.n_secret_binds, 2); /* the later line of a name replaces the earlier */
    assert_string_equal(c.secret_binds[0].name, "ch.pw");
    assert_string_equal(c.secret_binds[0].endpoints, "ch9:8123");
    assert_string_equal(c.secret_binds[1].name, "PGFERRY_SECRET_X");
    const char *bad[] = {
        "ch.pw", "= ch1:8123", "ch.pw =", "ch.pw = ch1", "ch.pw = ch1:8123,", "ch.pw = ch1:99999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (daemon_config_set(&c, "secret_bind", bad[i], err, sizeof(err)))
            fail_msg("accepted secret_bind %s", bad[i]);
    }
    assert_true(daemon_config_set(&c, "allow_cleartext_password", "true", err, sizeof(err)));
    assert_true(c.allow_cleartext_password);
    assert_false(daemon_config_set(&c, "allow_cleartext_password", "yes", err, sizeof(err)));

    /* source_passfile entries must name host and port */
    char pf[] = "/tmp/pgferry-pgpass-XXXXXX";
    int fd = mkstemp(pf);
    assert_true(fd >= 0);
    const char *pt = "# c\nh1:5432:db:u:pw\nh\\:x:5433:*:*:pw\n";
    assert_true(write(fd, pt, strlen(pt)) == (ssize_t)strlen(pt));
    close(fd);
    assert_true(daemon_config_passfile_check(pf, err, sizeof(err)));
    FILE *f = fopen(pf, "a");
    fputs("*:5432:*:*:pw\n", f);
    fclose(f);
    assert_false(daemon_config_passfile_check(pf, err, sizeof(err)));
    assert_non_null(strstr(err, ":4: every entry must name its host and port"));
    assert_null(strstr(err, "pw"));
    f = fopen(pf, "w");
    fputs("h1:*:*:*:pw\n", f);
    fclose(f);
    assert_false(daemon_config_passfile_check(pf, err, sizeof(err)));
    assert_false(daemon_config_passfile_check("rel", err, sizeof(err)));
    unlink(pf);

    /* workers: no libpq password, service or key variables of pgferryd; the rules instead */
    snprintf(c.secrets_dir, sizeof(c.secrets_dir), "/s");
    char *base[] = {"PATH=/bin",
                    "PGPASSWORD=leak",
                    "PGPASSFILE=/home/x/.pgpass",
                    "PGSERVICE=p",
                    "PGSSLKEY=/k",
                    "PGFERRY_SECRET_X=pw",
                    "PGHOST=h",
                    "PGFERRY_BOUND_SECRETS=forged",
                    NULL};
    char **env = daemon_config_worker_env(&c, base);
    assert_non_null(env);
    bool path = false, secret = false, host = false, passfile = false, binds = false, clear = false;
    for (size_t i = 0; env[i]; i++) {
        if (strncmp(env[i], "PGPASSWORD=", 11) == 0 || strncmp(env[i], "PGSERVICE=", 10) == 0 ||
            strcmp(env[i], "PGSSLKEY=/k") == 0 || strstr(env[i], "forged") ||
            strstr(env[i], ".pgpass"))
            fail_msg("the worker gets %s", env[i]);
        path |= strcmp(env[i], "PATH=/bin") == 0;
        secret |= strcmp(env[i], "PGFERRY_SECRET_X=pw") == 0;
        host |= strcmp(env[i], "PGHOST=h") == 0;
        passfile |= strcmp(env[i], "PGPASSFILE=/dev/null/pgferry-none") == 0;
        binds |= strcmp(env[i], "PGFERRY_BOUND_SECRETS=ch.pw=ch9:8123\n"
                                "PGFERRY_SECRET_X=https://ch3") == 0;
        clear |= strcmp(env[i], "PGFERRY_ALLOW_CLEARTEXT_PASSWORD=true") == 0;
    }
    assert_true(path && secret && host && passfile && binds && clear);
    daemon_config_free_env(env);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_env_and_finish),
        cmocka_unit_test(test_secret_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
