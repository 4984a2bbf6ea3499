/* reconcile: the workers each pipe needs (see reconcile.h). */
#include "reconcile.h"
#include "pipeops.h"
#include "pipert.h"
#include "workers.h"
#include "sup_internal.h"
#include "ipc.h"
#include "log.h"
#include "lsn.h"
#include "names.h"
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether a worker of this role belongs to a pipe in rec's state. */
static bool
role_wanted(const Pgferry__State__PipeRecord *rec, worker_role_t role)
{
    if (role == ROLE_VERIFY)
        return true; /* on demand, ends by itself */
    worker_role_t want = sup_desired_role(rec);
    if (want == ROLE_NONE)
        return false;
    return role == want || (want == ROLE_SNAPSHOT && role == ROLE_SNAPSHOT_RANGE);
}

/* Hands pending ranges of a pipe's snapshot plan to new range workers, up to the pipe's
 * snapshot_workers at a time. */
static void
pump_ranges(supervisor_t *s, const Pgferry__State__PipeRecord *rec, pipe_rt_t *rt)
{
    size_t running = proctable_count_pipe(s->procs, rec->spec->name, ROLE_SNAPSHOT_RANGE);
    size_t limit = rec->spec->snapshot_workers ? rec->spec->snapshot_workers : 1;
    for (size_t i = 0; i < rt->plan->n_ranges && running < limit; i++) {
        if (rt->range_state[i] != RANGE_PENDING)
            continue;
        proc_t *p = sup_spawn_worker(s, rec->spec->name, ROLE_SNAPSHOT_RANGE);
        if (!p)
            return; /* logged; tried again on the next turn */
        p->range_index = (int)i;
        rt->range_state[i] = RANGE_RUNNING;
        running++;
    }
}

/* Starts the workers each pipe needs and stops workers nobody needs. Returns the earliest
 * pending restart deadline (monotonic ms) or -1. */
int64_t
reconcile(supervisor_t *s)
{
    char **names;
    size_t n;
    int64_t next = -1, now = time_mono_ms();
    if (!store_list_names(s->store, &names, &n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        /* read-only (decoded once per write of the pipe, not once per turn) */
        const Pgferry__State__PipeRecord *rec = store_peek_pipe(s->store, names[i]);
        if (!rec)
            continue;
        worker_role_t role = sup_desired_role(rec);
        /* workers of a role this state does not want are stopped */
        for (size_t k = 0; k < proctable_count(s->procs); k++) {
            proc_t *p = proctable_at(s->procs, k);
            if (strcmp(p->pipe, names[i]) == 0 && !p->stopping && !p->done && !p->exited &&
                !role_wanted(rec, p->role)) {
                char why[128];
                snprintf(why, sizeof(why), "pipe is %s", names_state(rec->state));
                sup_stop_workers(s, names[i], why);
                break;
            }
        }
        /* Paused once the CDC worker is gone (stopping included): its last report, with the
         * batch it acknowledged on the way out, has been read by then */
        if (rec->state == ST_PAUSING && !proctable_find_role_any(s->procs, names[i], ROLE_CDC)) {
            char err[512];
            Pgferry__State__PipeRecord *mrec = NULL;
            if (store_get_pipe(s->store, names[i], &mrec) && mrec) {
                if (!sup_transition(s, mrec, LC_EV_PAUSED,
                                    "the CDC worker acknowledged its last batch and stopped", err,
                                    sizeof(err)))
                    log_warn("pipe %s: %s", names[i], err);
                pgferry__state__pipe_record__free_unpacked(mrec, NULL);
            }
            if (!(rec = store_peek_pipe(s->store, names[i]))) /* written: read it again */
                continue;
            role = sup_desired_role(rec);
        }
        pipe_rt_t *rt = sup_rt(s, names[i], false);
        bool waiting = rt && rt->restart_at_ms > now;
        if (waiting && (next < 0 || rt->restart_at_ms < next))
            next = rt->restart_at_ms;
        proc_t *main = role != ROLE_NONE ? proctable_find_role(s->procs, names[i], role) : NULL;
        bool is_snapshot = role == ROLE_SNAPSHOT;
        /* teardown starts once every other worker is gone (a streaming one holds the slot) */
        bool is_teardown = role == ROLE_TEARDOWN;
        /* a CDC worker that is stopping still holds the slot: its successor waits for it */
        bool cdc_leaving =
            role == ROLE_CDC && proctable_find_role_any(s->procs, names[i], ROLE_CDC) != NULL;
        if (role != ROLE_NONE && !main && !waiting && !cdc_leaving &&
            !((is_snapshot || is_teardown) &&
              proctable_count_pipe(s->procs, names[i], ROLE_NONE) > 0)) {
            /* (a new snapshot coordinator waits until every worker of the old load is gone,
             * so nothing of the old load lands after the new one's TRUNCATE) */
            if (rt)
                rt->restart_at_ms = rt->restart_at_us = 0;
            if (is_snapshot && (rt = sup_rt(s, names[i], true)) != NULL)
                sup_rt_clear_plan(rt);
            if (!sup_spawn_worker(s, names[i], role)) {
                rec = NULL; /* worker_failed writes the pipe */
                sup_worker_failed(s, names[i], role, "cannot start the worker program",
                                  ERRCLASS_TRANSIENT, false);
            }
        } else if (is_snapshot && main && !main->exited && rt && rt->plan && !waiting) {
            pump_ranges(s, rec, rt);
        }
    }
    store_free_names(names, n);
    return next;
}
