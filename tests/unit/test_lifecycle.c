/* Walks every (state, event) pair of the lifecycle against an independent expected table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lifecycle.h"
#include "names.h"

/* Expected target for (state, event) with prev_state = Running and mode = snapshot+cdc,
 * resyncing = false. ST_NONE with allowed = 0 means refused. Written from DESIGN section 4,
 * independently of lifecycle.c. */
typedef struct {
    pipe_state_t from;
    lifecycle_event_t ev;
    pipe_state_t to;
} rule_t;

static const rule_t rules[] = {
    {ST_PROVISIONING, LC_EV_VALIDATED, ST_SETUP},
    {ST_PROVISIONING, LC_EV_VALIDATION_FAILED, ST_FAILED},
    {ST_SETUP, LC_EV_SETUP_DONE, ST_SNAPSHOT},
    {ST_SNAPSHOT, LC_EV_SNAPSHOT_DONE, ST_RUNNING},
    {ST_RUNNING, LC_CMD_PAUSE, ST_PAUSING},
    {ST_PAUSING, LC_EV_PAUSED, ST_PAUSED},
    {ST_PAUSED, LC_CMD_RESUME, ST_RUNNING},
    {ST_RUNNING, LC_CMD_ADD_TABLES, ST_SNAPSHOT},
    {ST_PAUSED, LC_CMD_ADD_TABLES, ST_SNAPSHOT},
    {ST_RUNNING, LC_CMD_REMOVE_TABLES, ST_MODIFYING},
    {ST_PAUSED, LC_CMD_REMOVE_TABLES, ST_MODIFYING},
    {ST_FAILED, LC_CMD_REMOVE_TABLES, ST_MODIFYING}, /* a dropped source table */
    {ST_MODIFYING, LC_EV_MODIFIED, ST_RUNNING},      /* prev_state is Running in this walk */
    {ST_RUNNING, LC_CMD_RESYNC, ST_SNAPSHOT},
    {ST_PAUSED, LC_CMD_RESYNC, ST_SNAPSHOT},
    {ST_FAILED, LC_CMD_RESYNC, ST_SNAPSHOT},
    {ST_DEGRADED, LC_CMD_RESYNC, ST_SNAPSHOT},
    {ST_COMPLETED, LC_CMD_RESYNC, ST_SNAPSHOT},
    {ST_RESYNC, LC_EV_SWAP_DONE, ST_RUNNING},
    {ST_PROVISIONING, LC_EV_DEGRADED, ST_DEGRADED},
    {ST_SETUP, LC_EV_DEGRADED, ST_DEGRADED},
    {ST_SNAPSHOT, LC_EV_DEGRADED, ST_DEGRADED},
    {ST_RUNNING, LC_EV_DEGRADED, ST_DEGRADED},
    {ST_RESYNC, LC_EV_DEGRADED, ST_DEGRADED},
    {ST_DEGRADED, LC_EV_RECOVERED, ST_RUNNING}, /* back to prev_state */
};

static bool
expected(pipe_state_t from, lifecycle_event_t ev, pipe_state_t *to)
{
    if (ev == LC_EV_FATAL) {
        *to = ST_FAILED;
        return from != ST_FAILED;
    }
    if (ev == LC_CMD_DROP) {
        *to = ST_NONE;
        return true;
    }
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (rules[i].from == from && rules[i].ev == ev) {
            *to = rules[i].to;
            return true;
        }
    }
    return false;
}

static void
test_every_pair(void **state)
{
    (void)state;
    int allowed = 0, refused = 0;
    for (int s = ST_PROVISIONING; s < ST_COUNT; s++) {
        for (int e = 0; e < LC_EVENT_COUNT; e++) {
            lifecycle_pipe_t p = {(pipe_state_t)s, ST_RUNNING, MODE_SNAPSHOT_CDC, false};
            char err[512] = "";
            pipe_state_t want;
            bool ok = expected((pipe_state_t)s, (lifecycle_event_t)e, &want);
            bool got = lifecycle_apply(&p, (lifecycle_event_t)e, err, sizeof(err));
            if (ok != got) {
                fail_msg("state %s event %s: expected %s, got %s (%s)",
                         names_state((pipe_state_t)s), lifecycle_event_name((lifecycle_event_t)e),
                         ok ? "allowed" : "refused", got ? "allowed" : "refused", err);
            }
            if (ok) {
                allowed++;
                if (p.state != want)
                    fail_msg("state %s event %s: expected %s, got %s", names_state((pipe_state_t)s),
                             lifecycle_event_name((lifecycle_event_t)e), names_state(want),
                             names_state(p.state));
            } else {
                refused++;
                /* the refusal names the current state, and the state is unchanged */
                assert_int_equal(p.state, s);
                assert_non_null(strstr(err, names_state((pipe_state_t)s)));
                assert_non_null(strstr(err, lifecycle_event_name((lifecycle_event_t)e)));
            }
        }
    }
    assert_true(allowed > 30);
    assert_true(refused > 100);
}

static void
test_mode_dependent_targets(void **state)
{
    (void)state;
    char err[256];
    lifecycle_pipe_t p = {ST_SETUP, ST_NONE, MODE_CDC_ONLY, false};
    assert_true(lifecycle_apply(&p, LC_EV_SETUP_DONE, err, sizeof(err)));
    assert_int_equal(p.state, ST_RUNNING);

    p = (lifecycle_pipe_t){ST_SNAPSHOT, ST_NONE, MODE_SNAPSHOT_ONLY, false};
    assert_true(lifecycle_apply(&p, LC_EV_SNAPSHOT_DONE, err, sizeof(err)));
    assert_int_equal(p.state, ST_COMPLETED);
}

static void
test_resync_walk(void **state)
{
    (void)state;
    char err[256];
    lifecycle_pipe_t p = {ST_FAILED, ST_NONE, MODE_SNAPSHOT_CDC, false};
    assert_true(lifecycle_apply(&p, LC_CMD_RESYNC, err, sizeof(err)));
    assert_int_equal(p.state, ST_SNAPSHOT);
    assert_true(p.resyncing);
    assert_true(lifecycle_apply(&p, LC_EV_SNAPSHOT_DONE, err, sizeof(err)));
    assert_int_equal(p.state, ST_RESYNC);
    assert_true(lifecycle_apply(&p, LC_EV_SWAP_DONE, err, sizeof(err)));
    assert_int_equal(p.state, ST_RUNNING);
    assert_false(p.resyncing);

    /* a snapshot-only pipe resynced from Completed ends Completed again */
    p = (lifecycle_pipe_t){ST_COMPLETED, ST_NONE, MODE_SNAPSHOT_ONLY, false};
    assert_true(lifecycle_apply(&p, LC_CMD_RESYNC, err, sizeof(err)));
    assert_true(lifecycle_apply(&p, LC_EV_SNAPSHOT_DONE, err, sizeof(err)));
    assert_true(lifecycle_apply(&p, LC_EV_SWAP_DONE, err, sizeof(err)));
    assert_int_equal(p.state, ST_COMPLETED);
}

static void
test_degraded_returns_to_previous(void **state)
{
    (void)state;
    char err[256];
    lifecycle_pipe_t p = {ST_SNAPSHOT, ST_NONE, MODE_SNAPSHOT_CDC, false};
    assert_true(lifecycle_apply(&p, LC_EV_DEGRADED, err, sizeof(err)));
    assert_int_equal(p.state, ST_DEGRADED);
    assert_int_equal(p.prev_state, ST_SNAPSHOT);
    assert_false(lifecycle_apply(&p, LC_EV_DEGRADED, err, sizeof(err)));
    assert_true(lifecycle_apply(&p, LC_EV_RECOVERED, err, sizeof(err)));
    assert_int_equal(p.state, ST_SNAPSHOT);

    /* Modifying returns to Paused when it came from Paused */
    p = (lifecycle_pipe_t){ST_PAUSED, ST_NONE, MODE_SNAPSHOT_CDC, false};
    assert_true(lifecycle_apply(&p, LC_CMD_REMOVE_TABLES, err, sizeof(err)));
    assert_int_equal(p.state, ST_MODIFYING);
    assert_true(lifecycle_apply(&p, LC_EV_MODIFIED, err, sizeof(err)));
    assert_int_equal(p.state, ST_PAUSED);

    /* from Failed (a source table dropped) removing it leads back to Running; not for a
     * snapshot-only pipe, which has nothing to stream */
    p = (lifecycle_pipe_t){ST_FAILED, ST_NONE, MODE_SNAPSHOT_CDC, false};
    assert_true(lifecycle_apply(&p, LC_CMD_REMOVE_TABLES, err, sizeof(err)));
    assert_true(lifecycle_apply(&p, LC_EV_MODIFIED, err, sizeof(err)));
    assert_int_equal(p.state, ST_RUNNING);
    p = (lifecycle_pipe_t){ST_FAILED, ST_NONE, MODE_SNAPSHOT_ONLY, false};
    assert_false(lifecycle_apply(&p, LC_CMD_REMOVE_TABLES, err, sizeof(err)));
}

static void
test_refusal_message(void **state)
{
    (void)state;
    char err[256];
    lifecycle_pipe_t p = {ST_SNAPSHOT, ST_NONE, MODE_SNAPSHOT_CDC, false};
    assert_false(lifecycle_apply(&p, LC_CMD_PAUSE, err, sizeof(err)));
    assert_string_equal(err, "cannot pause: the pipe is Snapshot (allowed in: Running)");
    assert_false(lifecycle_apply(&p, (lifecycle_event_t)999, err, sizeof(err)));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pair),      cmocka_unit_test(test_mode_dependent_targets),
        cmocka_unit_test(test_resync_walk),     cmocka_unit_test(test_degraded_returns_to_previous),
        cmocka_unit_test(test_refusal_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
