/* State store: write, read, reopen, history order and limits, delete, stale readers; a store
 * filled past its initial map size grows and keeps everything; history is trimmed per pipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <lmdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"

static char dir[256];

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pgferry-test-store-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
put(store_t *s, const char *name, Pgferry__State__PipeState st, uint64_t seq, const char *why)
{
    Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
    Pgferry__State__PipeRecord rec = PGFERRY__STATE__PIPE_RECORD__INIT;
    Pgferry__State__HistoryEvent ev = PGFERRY__STATE__HISTORY_EVENT__INIT;
    spec.name = (char *)name;
    spec.source = "postgresql://u:secret@h/db";
    rec.spec = &spec;
    rec.state = st;
    rec.history_seq = seq;
    ev.seq = seq;
    ev.to = st;
    ev.reason = (char *)why;
    assert_true(store_put_pipe(s, &rec, &ev));
}

static void
test_write_read_reopen(void **state)
{
    (void)state;
    char err[256];
    store_t *s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    put(s, "alpha", PGFERRY__STATE__PIPE_STATE__PROVISIONING, 1, "created");
    put(s, "alpha", PGFERRY__STATE__PIPE_STATE__SETUP, 2, "validated");
    put(s, "beta", PGFERRY__STATE__PIPE_STATE__FAILED, 1, "no key");
    store_destroy(&s);
    assert_null(s);

    s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    Pgferry__State__PipeRecord *r = NULL;
    assert_true(store_get_pipe(s, "alpha", &r));
    assert_non_null(r);
    assert_int_equal(r->state, PGFERRY__STATE__PIPE_STATE__SETUP);
    assert_string_equal(r->spec->source, "postgresql://u:secret@h/db");
    pgferry__state__pipe_record__free_unpacked(r, NULL);
    assert_true(store_get_pipe(s, "gamma", &r));
    assert_null(r);

    char **names;
    size_t n;
    assert_true(store_list_names(s, &names, &n));
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "alpha");
    assert_string_equal(names[1], "beta");
    store_free_names(names, n);

    /* the state file is owner-only */
    char path[300];
    struct stat st;
    snprintf(path, sizeof(path), "%s/state.mdb", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    store_destroy(&s);
}

static void
test_history_order_limit_and_prefix(void **state)
{
    (void)state;
    char err[256];
    store_t *s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    /* "ab" must not see the history of "abc" (key prefix isolation) */
    for (uint64_t i = 1; i <= 300; i++) {
        char why[32];
        snprintf(why, sizeof(why), "event %llu", (unsigned long long)i);
        put(s, "ab", PGFERRY__STATE__PIPE_STATE__RUNNING, i, why);
    }
    put(s, "abc", PGFERRY__STATE__PIPE_STATE__RUNNING, 1, "other pipe");
    Pgferry__State__HistoryEvent **evs;
    size_t n;
    assert_true(store_get_history(s, "ab", 0, &evs, &n));
    assert_int_equal(n, 300);
    assert_string_equal(evs[0]->reason, "event 1");
    assert_string_equal(evs[299]->reason, "event 300");
    store_free_history(evs, n);
    assert_true(store_get_history(s, "ab", 5, &evs, &n));
    assert_int_equal(n, 5);
    assert_string_equal(evs[0]->reason, "event 296");
    assert_string_equal(evs[4]->reason, "event 300");
    store_free_history(evs, n);
    assert_true(store_get_history(s, "abc", 0, &evs, &n));
    assert_int_equal(n, 1);
    assert_string_equal(evs[0]->reason, "other pipe");
    store_free_history(evs, n);
    assert_true(store_get_history(s, "a", 0, &evs, &n));
    assert_int_equal(n, 0);
    store_free_history(evs, n);

    /* delete removes record, history and checkpoints of that pipe only */
    assert_true(store_put_checkpoint(s, "ab", "range/1", "x", 1));
    assert_true(store_put_checkpoint(s, "abc", "range/1", "yz", 2));
    assert_true(store_delete_pipe(s, "ab"));
    Pgferry__State__PipeRecord *r = NULL;
    assert_true(store_get_pipe(s, "ab", &r));
    assert_null(r);
    assert_true(store_get_history(s, "ab", 0, &evs, &n));
    assert_int_equal(n, 0);
    store_free_history(evs, n);
    void *v;
    size_t vl;
    assert_true(store_get_checkpoint(s, "ab", "range/1", &v, &vl));
    assert_null(v);
    assert_true(store_get_checkpoint(s, "abc", "range/1", &v, &vl));
    assert_int_equal(vl, 2);
    assert_memory_equal(v, "yz", 2);
    free(v);
    assert_true(store_get_history(s, "abc", 0, &evs, &n));
    assert_int_equal(n, 1);
    store_free_history(evs, n);
    store_destroy(&s);
}

/* A child that opens the store's environment (and a read transaction when `reader`), tells
 * the parent through fd and waits to be killed. */
static pid_t
fork_env_child(int fd, bool reader)
{
    pid_t pid = fork();
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        char path[300];
        snprintf(path, sizeof(path), "%s/state.mdb", dir);
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
            mdb_env_open(env, path, MDB_NOSUBDIR, 0600))
            _exit(1);
        if (reader && mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
            _exit(1);
        ssize_t w = write(fd, "r", 1);
        (void)w;
        for (;;)
            pause();
    }
    return pid;
}

static void
test_stale_reader_cleared(void **state)
{
    (void)state;
    char err[256];
    store_t *s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    put(s, "p", PGFERRY__STATE__PIPE_STATE__RUNNING, 1, "x");
    store_destroy(&s);

    /* LMDB resets its reader table when the opener is alone, so a stale reader only matters
     * while another process keeps the environment open: child A holds it open, child B takes
     * a read transaction and dies without ending it. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t holder = fork_env_child(fds[1], false);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    pid_t pid = fork_env_child(fds[1], true);
    assert_int_equal(read(fds[0], &c, 1), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(store_stale_readers_cleared(s), 1);
    Pgferry__State__PipeRecord *r = NULL;
    assert_true(store_get_pipe(s, "p", &r));
    assert_non_null(r);
    pgferry__state__pipe_record__free_unpacked(r, NULL);
    store_destroy(&s);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    close(fds[0]);
    close(fds[1]);
}

static void
test_bad_inputs(void **state)
{
    (void)state;
    char err[256];
    assert_null(store_open("/proc/definitely/not/here", err, sizeof(err)));
    assert_non_null(strstr(err, "/proc/definitely/not/here"));
    store_t *s = store_open(dir, err, sizeof(err));
    Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
    Pgferry__State__PipeRecord rec = PGFERRY__STATE__PIPE_RECORD__INIT;
    rec.spec = &spec; /* empty name */
    assert_false(store_put_pipe(s, &rec, NULL));
    Pgferry__State__PipeRecord *r = (void *)1;
    assert_true(store_get_pipe(s, "", &r));
    assert_null(r);
    store_destroy(&s);
}

/* 1 MiB to start; ~24 MiB of records, history and checkpoints: every write succeeds, the map
 * grows, a reopened store has it all. */
static void
test_grows_past_initial_size(void **state)
{
    (void)state;
    char err[256];
    store_t *s = store_open_sized(dir, 1 << 20, err, sizeof(err));
    assert_non_null(s);
    store_set_history_max(s, 0);
    size_t before = store_map_size(s);
    char *big = malloc(200000);
    memset(big, 'r', 199999);
    big[199999] = '\0';
    for (uint64_t i = 1; i <= 60; i++)
        put(s, "grow", PGFERRY__STATE__PIPE_STATE__RUNNING, i, big); /* 12 MB of history */
    for (int i = 0; i < 60; i++) {
        char key[32];
        snprintf(key, sizeof(key), "range/%d", i);
        assert_true(store_put_checkpoint(s, "grow", key, big, 200000));
    }
    assert_true(store_times_grown(s) >= 4);
    assert_true(store_map_size(s) >= 16 * before);
    size_t grown = store_map_size(s);
    store_destroy(&s);

    /* a smaller request takes at least what the data needs (LMDB keeps the used size) */
    s = store_open_sized(dir, 1 << 20, err, sizeof(err));
    assert_non_null(s);
    assert_true(store_map_size(s) > (size_t)12 << 20 && store_map_size(s) <= grown);
    Pgferry__State__HistoryEvent **evs;
    size_t n;
    assert_true(store_get_history(s, "grow", 0, &evs, &n));
    assert_int_equal(n, 60);
    assert_int_equal(strlen(evs[59]->reason), 199999);
    store_free_history(evs, n);
    void *v;
    size_t vl;
    assert_true(store_get_checkpoint(s, "grow", "range/59", &v, &vl));
    assert_int_equal(vl, 200000);
    free(v);
    for (uint64_t i = 61; i <= 80; i++) /* and grows again from there */
        put(s, "grow", PGFERRY__STATE__PIPE_STATE__RUNNING, i, big);
    assert_true(store_times_grown(s) >= 1);
    assert_true(store_delete_pipe(s, "grow"));
    free(big);
    store_destroy(&s);
}

/* peek: decoded once, the same until the pipe is written, then the new content */
static void
test_peek(void **state)
{
    (void)state;
    char err[256];
    store_t *s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    assert_null(store_peek_pipe(s, "p"));
    put(s, "p", PGFERRY__STATE__PIPE_STATE__SNAPSHOT, 1, "a");
    put(s, "q", PGFERRY__STATE__PIPE_STATE__PAUSED, 1, "a");
    const Pgferry__State__PipeRecord *a = store_peek_pipe(s, "p");
    assert_non_null(a);
    assert_int_equal(a->state, PGFERRY__STATE__PIPE_STATE__SNAPSHOT);
    assert_ptr_equal(store_peek_pipe(s, "p"), a);
    const Pgferry__State__PipeRecord *q = store_peek_pipe(s, "q");
    put(s, "p", PGFERRY__STATE__PIPE_STATE__RUNNING, 2, "b");
    assert_int_equal(store_peek_pipe(s, "p")->state, PGFERRY__STATE__PIPE_STATE__RUNNING);
    assert_ptr_equal(store_peek_pipe(s, "q"), q); /* another pipe's stays */
    assert_true(store_delete_pipe(s, "p"));
    assert_null(store_peek_pipe(s, "p"));
    store_destroy(&s);
}

static void
test_history_trimmed(void **state)
{
    (void)state;
    char err[256];
    store_t *s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    store_set_history_max(s, 50);
    for (uint64_t i = 1; i <= 400; i++) {
        char why[32];
        snprintf(why, sizeof(why), "event %llu", (unsigned long long)i);
        put(s, "t", PGFERRY__STATE__PIPE_STATE__RUNNING, i, why);
        put(s, "t2", PGFERRY__STATE__PIPE_STATE__RUNNING, i, why);
    }
    Pgferry__State__HistoryEvent **evs;
    size_t n;
    assert_true(store_get_history(s, "t", 0, &evs, &n));
    assert_int_equal(n, 50);
    assert_string_equal(evs[0]->reason, "event 351");
    assert_string_equal(evs[49]->reason, "event 400");
    store_free_history(evs, n);
    /* a lower limit trims the excess at the next event */
    store_set_history_max(s, 10);
    put(s, "t", PGFERRY__STATE__PIPE_STATE__RUNNING, 401, "event 401");
    assert_true(store_get_history(s, "t", 0, &evs, &n));
    assert_int_equal(n, 10);
    assert_string_equal(evs[0]->reason, "event 392");
    store_free_history(evs, n);
    assert_true(store_get_history(s, "t2", 0, &evs, &n)); /* the other pipe kept its 50 */
    assert_int_equal(n, 50);
    store_free_history(evs, n);
    store_destroy(&s);
}

/* Opens dir's store in a child, which exits 0 when store_open refused it with want in the
 * message; a signal in the child (SIGBUS inside LMDB before) fails the test. */
static void
assert_refused(const char *want)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[1024] = "";
        store_t *s = store_open(dir, err, sizeof(err));
        fprintf(stderr, "store_open: %s\n", s ? "opened" : err);
        _exit(!s && strstr(err, want) && strstr(err, "mdb_copy") ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        fail_msg("store_open died of signal %d", WTERMSIG(st));
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* a store cut short (a full disk, a bad copy) or with its header overwritten is refused with
 * what, where and how to restore, never a signal */
static void
test_damaged_refused(void **state)
{
    (void)state;
    char err[256], path[300], val[1000];
    store_t *s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < 2000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        assert_true(store_put_checkpoint(s, "p", key, val, sizeof(val)));
    }
    store_destroy(&s);
    snprintf(path, sizeof(path), "%s/state.mdb", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 3), 0);
    assert_refused("is truncated");
    assert_int_equal(truncate(path, 100), 0);
    assert_refused("no valid LMDB header");
    /* an empty file is a new store */
    assert_int_equal(truncate(path, 0), 0);
    s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    store_destroy(&s);
}

/* an id record of another shape is damage: refused, never replaced by a new id (which would
 * disown every destination table the pipes own) */
static void
test_state_id_damaged(void **state)
{
    (void)state;
    char err[256], path[600];
    store_t *s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    store_destroy(&s);
    snprintf(path, sizeof(path), "%s/state.mdb", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val k = {.mv_size = 8, .mv_data = "state_id"}, v = {.mv_size = 5, .mv_data = "short"};
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    assert_refused("its id record is not 32 hex digits");
}

/* the store's id: 32 hex digits, made once, the same after a reopen, another in another store */
static void
test_state_id(void **state)
{
    (void)state;
    char err[256], id[33], other[300];
    store_t *s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    snprintf(id, sizeof(id), "%s", store_state_id(s));
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    store_destroy(&s);
    s = store_open(dir, err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(store_state_id(s), id);
    /* a whole file: a later start failure is not called damage (pgferryd's exit code 8 stops
     * systemd's restarts) */
    assert_false(store_open_found_damage());
    store_destroy(&s);
    snprintf(other, sizeof(other), "%s/other", dir);
    s = store_open(other, err, sizeof(err));
    assert_non_null(s);
    assert_string_not_equal(store_state_id(s), id);
    store_destroy(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_read_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_order_limit_and_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_reader_cleared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grows_past_initial_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_trimmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_id_damaged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
