/* pipeops: what several parts of pgferryd do to a pipe (see pipeops.h). */
#include "pipeops.h"
#include "pipert.h"
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
#include "backoff.h"

void
sup_set_str(char **field, const char *v)
{
    /* unpacked proto3 strings are individually allocated unless they are the shared empty
     * default */
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    char one[4096];
    log_oneline(v ? v : "", one, sizeof(one)); /* errors and reasons are shown on one line */
    *field = strdup(one);
    if (!*field)
        *field = (char *)protobuf_c_empty_string;
}

static bool
persist(supervisor_t *s, Pgferry__State__PipeRecord *rec, pipe_state_t from, const char *reason)
{
    Pgferry__State__HistoryEvent ev = PGFERRY__STATE__HISTORY_EVENT__INIT;
    char one[4096];
    log_oneline(reason ? reason : "", one, sizeof(one)); /* one line in the history table */
    rec->history_seq++;
    ev.seq = rec->history_seq;
    ev.from = from;
    ev.to = rec->state;
    ev.time_us = time_now_us();
    ev.reason = one;
    return store_put_pipe(s->store, rec, &ev);
}

bool
sup_transition(supervisor_t *s, Pgferry__State__PipeRecord *rec, lifecycle_event_t ev,
               const char *reason, char *err, size_t errlen)
{
    lifecycle_pipe_t lp = {rec->state, rec->prev_state, rec->spec->mode, rec->resyncing};
    pipe_state_t from = rec->state;
    if (!lifecycle_apply(&lp, ev, err, errlen))
        return false;
    rec->state = lp.state;
    rec->prev_state = lp.prev_state;
    rec->resyncing = lp.resyncing;
    rec->state_since_us = time_now_us();
    if (!persist(s, rec, from, reason)) {
        snprintf(err, errlen, "the state store refused the change: %s", store_last_error(s->store));
        return false;
    }
    log_info("pipe %s: %s -> %s (%s)", rec->spec->name, names_state(from), names_state(rec->state),
             reason);
    return true;
}

bool
sup_note(supervisor_t *s, Pgferry__State__PipeRecord *rec, const char *reason)
{
    return persist(s, rec, rec->state, reason);
}

/* The worker made progress: the failure count starts over and a temporary error is no longer
 * the pipe's state of affairs (the history keeps it; a FATAL one stays: it ended the pipe). */
void
sup_made_progress(Pgferry__State__PipeRecord *rec)
{
    rec->consecutive_failures = 0;
    if (rec->last_error_class == PGFERRY__STATE__ERROR_CLASS__TRANSIENT) {
        sup_set_str(&rec->last_error, "");
        rec->last_error_class = PGFERRY__STATE__ERROR_CLASS__ERROR_CLASS_NONE;
        rec->last_error_us = 0;
    }
}

/* The worker role a pipe in this state needs, or ROLE_NONE. */
worker_role_t
sup_desired_role(const Pgferry__State__PipeRecord *rec)
{
    if (rec->dropping)
        return ROLE_TEARDOWN; /* slot, publication, destination; then the record goes */
    pipe_state_t st = rec->state == ST_DEGRADED ? rec->prev_state : rec->state;
    switch (st) {
    case ST_MODIFYING:
        return rec->n_removing > 0 ? ROLE_TEARDOWN : ROLE_NONE; /* tables leave the publication */
    case ST_PROVISIONING:
        return ROLE_PROVISION;
    case ST_SETUP:
        return ROLE_SETUP;
    case ST_SNAPSHOT:
        if (rec->n_table_defs < rec->spec->n_tables || (rec->resyncing && !rec->resync_ready))
            return ROLE_SETUP; /* added tables or a resync: definitions and tables first */
        return ROLE_SNAPSHOT;
    case ST_RESYNC:
        return ROLE_SWAP;
    case ST_RUNNING:
        return ROLE_CDC;
    case ST_PAUSED:
        return ROLE_MONITOR; /* nobody streams: watch the WAL the slot retains */
    default:
        return ROLE_NONE;
    }
}

void
sup_stop_workers(supervisor_t *s, const char *pipe, const char *reason)
{
    sup_stop_role(s, pipe, ROLE_NONE, reason);
}

void
sup_stop_role(supervisor_t *s, const char *pipe, worker_role_t role, const char *reason)
{
    int64_t now = time_mono_ms();
    for (size_t i = 0; i < proctable_count(s->procs); i++) {
        proc_t *p = proctable_at(s->procs, i);
        if (strcmp(p->pipe, pipe) != 0 || p->stopping || (role != ROLE_NONE && p->role != role))
            continue;
        log_info("stopping worker %s/%s pid %d: %s", p->pipe, names_role(p->role), (int)p->pid,
                 reason);
        if (p->zid_len > 0) {
            Pgferry__Worker__SupervisorMessage m = PGFERRY__WORKER__SUPERVISOR_MESSAGE__INIT;
            Pgferry__Worker__Stop st = PGFERRY__WORKER__STOP__INIT;
            st.reason = (char *)reason;
            m.version = IPC_VERSION;
            m.body_case = PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STOP;
            m.stop = &st;
            zmq_msg_t id;
            zmq_msg_init_data(&id, p->zid, p->zid_len, NULL, NULL);
            const zmq_msg_t *pre[] = {&id};
            ipc_send_msg(s->wrk, pre, 1, &m.base);
            zmq_msg_close(&id);
        }
        proctable_stop(p, now, (int64_t)s->cfg.stop_grace_ms);
    }
}

proc_t *
sup_spawn_worker(supervisor_t *s, const char *pipe, worker_role_t role)
{
    char endpoint[600];
    snprintf(endpoint, sizeof(endpoint), "ipc://%s/workers.sock", s->cfg.state_dir);
    char *argv[] = {s->cfg.worker_bin,
                    "--endpoint",
                    endpoint,
                    "--pipe",
                    (char *)pipe,
                    "--role",
                    (char *)names_role(role),
                    "--log-level",
                    (char *)log_level_name(s->cfg.log_level),
                    "--log-format",
                    s->cfg.log_json ? "json" : "text",
                    NULL};
    char err[512];
    proc_t *p = proctable_spawn(s->procs, pipe, role, argv, err, sizeof(err));
    if (!p) {
        log_error("pipe %s: cannot start a %s worker: %s", pipe, names_role(role), err);
        return NULL;
    }
    log_info("pipe %s: started %s worker pid %d", pipe, names_role(role), (int)p->pid);
    return p;
}

/* One failure of a pipe's worker without progress: count it, then Degraded, Failed or a
 * restart with backoff. */
void
sup_worker_failed(supervisor_t *s, const char *pipe, worker_role_t role, const char *what,
                  errclass_t cls, bool ran_healthy)
{
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, pipe, &rec) || !rec)
        return; /* dropped meanwhile */
    char reason[1400], err[512];
    if (sup_desired_role(rec) == ROLE_NONE) {
        /* the pipe moved on (Failed, dropped, paused): nothing to restart */
        log_info("pipe %s: %s worker ended (%s); pipe is %s, not restarting", pipe,
                 names_role(role), what, names_state(rec->state));
        goto out;
    }
    sup_set_str(&rec->last_error, what);
    rec->last_error_class = cls == ERRCLASS_FATAL ? PGFERRY__STATE__ERROR_CLASS__FATAL
                                                  : PGFERRY__STATE__ERROR_CLASS__TRANSIENT;
    rec->last_error_us = time_now_us();
    pipe_rt_t *frt = sup_rt(s, pipe, true);
    if (frt)
        frt->unsettled = true; /* the next Done writes the record (made_progress) */
    if (cls == ERRCLASS_FATAL) {
        snprintf(reason, sizeof(reason), "%s", what);
        if (!sup_transition(s, rec, LC_EV_FATAL, reason, err, sizeof(err)))
            log_error("pipe %s: %s", pipe, err);
        goto out;
    }
    if (ran_healthy)
        rec->consecutive_failures = 0; /* it worked for a while: this failure starts a new run */
    rec->consecutive_failures++;
    rec->worker_restarts++;
    if (rec->consecutive_failures >= s->cfg.max_failures) {
        snprintf(reason, sizeof(reason),
                 "giving up after %u consecutive %s worker failures without progress; last: %s",
                 rec->consecutive_failures, names_role(role), what);
        if (!sup_transition(s, rec, LC_EV_FATAL, reason, err, sizeof(err)))
            log_error("pipe %s: %s", pipe, err);
        goto out;
    }
    uint64_t delay = backoff_delay_ms(rec->consecutive_failures, s->cfg.backoff_initial_ms,
                                      s->cfg.backoff_max_ms, backoff_rand01());
    snprintf(reason, sizeof(reason), "%s worker failed (%u in a row): %s; restarting in %.2f s",
             names_role(role), rec->consecutive_failures, what, (double)delay / 1000.0);
    log_warn("pipe %s: %s", pipe, reason);
    if (rec->consecutive_failures >= s->cfg.degraded_after && rec->state != ST_DEGRADED) {
        if (!sup_transition(s, rec, LC_EV_DEGRADED, reason, err, sizeof(err))) {
            log_warn("pipe %s: %s", pipe, err);
            sup_note(s, rec, reason);
        }
    } else {
        sup_note(s, rec, reason);
    }
    pipe_rt_t *rt = sup_rt(s, pipe, true);
    if (rt) {
        rt->restart_at_ms = time_mono_ms() + (int64_t)delay;
        rt->restart_at_us = time_now_us() + (int64_t)delay * 1000;
    }
out:
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

Pgferry__State__TableStats *
sup_table_stats(Pgferry__State__PipeRecord *rec, const char *target)
{
    for (size_t i = 0; i < rec->n_table_stats; i++) {
        if (strcmp(rec->table_stats[i]->target, target) == 0)
            return rec->table_stats[i];
    }
    Pgferry__State__TableStats **a =
        realloc(rec->table_stats, (rec->n_table_stats + 1) * sizeof(*a));
    if (!a)
        return NULL;
    rec->table_stats = a;
    Pgferry__State__TableStats *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    pgferry__state__table_stats__init(t);
    t->target = strdup(target);
    if (!t->target) {
        free(t);
        return NULL;
    }
    rec->table_stats[rec->n_table_stats++] = t;
    return t;
}

void
sup_table_stats_add(Pgferry__State__PipeRecord *rec, const char *target, uint64_t ins, uint64_t upd,
                    uint64_t del, uint64_t bytes, uint64_t snap_rows, uint64_t snap_bytes)
{
    Pgferry__State__TableStats *t = sup_table_stats(rec, target);
    if (!t)
        return;
    t->inserts += ins;
    t->updates += upd;
    t->deletes += del;
    t->bytes += bytes;
    t->snapshot_rows += snap_rows;
    t->snapshot_bytes += snap_bytes;
    if (ins || upd || del)
        t->last_applied_us = time_now_us();
}
