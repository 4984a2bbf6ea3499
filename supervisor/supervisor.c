/*
 * supervisor: the poll loop (control socket, worker socket, signalfd), worker supervision
 * per DESIGN section 8 and the reconcile step that starts the worker each pipe's state asks
 * for. Control requests are decoded in control.c.
 */
#include "supervisor.h"
#include "sup_internal.h"
#include "metrics.h"
#include "backoff.h"
#include "curvekeys.h"
#include "ipc.h"
#include "log.h"
#include "lsn.h"
#include "names.h"
#include "timeutil.h"
#include "worker.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <stddef.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TICK_MS 200
#define HEALTHY_MS 60000 /* a CDC worker streaming this long counts as progress */

/* ---- pipe runtime table ------------------------------------------------------------ */

pipe_rt_t *
sup_rt(supervisor_t *s, const char *name, bool create)
{
    for (size_t i = 0; i < s->nrt; i++) {
        if (strcmp(s->rt[i].name, name) == 0)
            return &s->rt[i];
    }
    if (!create)
        return NULL;
    if (s->nrt == s->caprt) {
        size_t cap = s->caprt ? s->caprt * 2 : 16;
        pipe_rt_t *r = realloc(s->rt, cap * sizeof(*r));
        if (!r)
            return NULL;
        s->rt = r;
        s->caprt = cap;
    }
    pipe_rt_t *r = &s->rt[s->nrt++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    return r;
}

void
sup_rt_clear_plan(pipe_rt_t *rt)
{
    if (rt->plan)
        pgferry__worker__snapshot_plan__free_unpacked(rt->plan, NULL);
    free(rt->range_state);
    free(rt->range_rows);
    free(rt->range_bytes);
    free(rt->range_counted);
    rt->plan = NULL;
    rt->range_state = NULL;
    rt->range_rows = NULL;
    rt->range_bytes = NULL;
    rt->range_counted = NULL;
    rt->stats_flushed_ms = 0;
    rt->ranges_done = 0;
    rt->snapshot_rows = 0;
}

static void
rt_free(pipe_rt_t *rt)
{
    sup_rt_clear_plan(rt);
    control_pending_forget(&rt->verify_reply);
    control_pending_forget(&rt->teardown_reply);
    if (rt->slot)
        pgferry__worker__slot_info__free_unpacked(rt->slot, NULL);
    rt->slot = NULL;
}

double
sup_rt_rate(const pipe_rt_t *rt, int64_t now_ms)
{
    if (rt->rate_len < 2)
        return 0;
    size_t newest = (rt->rate_next + RATE_SAMPLES - 1) % RATE_SAMPLES;
    if (now_ms - rt->rate_ms[newest] > 60000)
        return 0; /* nothing applied for a minute */
    size_t oldest = newest;
    for (size_t k = 1; k < rt->rate_len; k++) {
        size_t i = (newest + RATE_SAMPLES - k) % RATE_SAMPLES;
        if (now_ms - rt->rate_ms[i] > 60000)
            break;
        oldest = i;
    }
    int64_t span = now_ms - rt->rate_ms[oldest];
    if (oldest == newest || span <= 0)
        return 0;
    return (double)(rt->rate_total[newest] - rt->rate_total[oldest]) * 1000.0 / (double)span;
}

void
sup_rt_remove(supervisor_t *s, const char *name)
{
    for (size_t i = 0; i < s->nrt; i++) {
        if (strcmp(s->rt[i].name, name) == 0) {
            rt_free(&s->rt[i]);
            s->rt[i] = s->rt[--s->nrt];
            return;
        }
    }
}

/* ---- transitions ------------------------------------------------------------------- */

static void
set_str(char **field, const char *v)
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
        snprintf(err, errlen, "the state store refused the change (see the daemon log)");
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

/* ---- workers ----------------------------------------------------------------------- */

/* The worker made progress: the failure count starts over and a temporary error is no longer
 * the pipe's state of affairs (the history keeps it; a FATAL one stays: it ended the pipe). */
static void
made_progress(Pgferry__State__PipeRecord *rec)
{
    rec->consecutive_failures = 0;
    if (rec->last_error_class == PGFERRY__STATE__ERROR_CLASS__TRANSIENT) {
        set_str(&rec->last_error, "");
        rec->last_error_class = PGFERRY__STATE__ERROR_CLASS__ERROR_CLASS_NONE;
        rec->last_error_us = 0;
    }
}

static bool drain_signals(supervisor_t *s);

/* The worker role a pipe in this state needs, or ROLE_NONE. */
static worker_role_t
desired_role(const Pgferry__State__PipeRecord *rec)
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
static void
worker_failed(supervisor_t *s, const char *pipe, worker_role_t role, const char *what,
              errclass_t cls, bool ran_healthy)
{
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, pipe, &rec) || !rec)
        return; /* dropped meanwhile */
    char reason[1400], err[512];
    if (desired_role(rec) == ROLE_NONE) {
        /* the pipe moved on (Failed, dropped, paused): nothing to restart */
        log_info("pipe %s: %s worker ended (%s); pipe is %s, not restarting", pipe,
                 names_role(role), what, names_state(rec->state));
        goto out;
    }
    set_str(&rec->last_error, what);
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

#define SETTLE_GRACE_MS 250

/* Reaps every exited child without blocking. The exit is judged later, in settle_exited, so a
 * Done or Error the worker sent just before exiting is read first. */
static void
reap_children(supervisor_t *s)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        proc_t *p = proctable_find_pid(s->procs, pid);
        if (!p) {
            log_debug("reaped unknown child %d", (int)pid);
            continue;
        }
        p->exited = true;
        p->status = status;
        p->exited_at_ms = time_mono_ms();
    }
}

/* Judges exited workers: a clean finish, an exit we asked for, or a failure to count. */
static void
settle_exited(supervisor_t *s, bool now_all)
{
    int64_t now = time_mono_ms();
    for (size_t i = 0; i < proctable_count(s->procs);) {
        proc_t *p = proctable_at(s->procs, i);
        bool clean = p->done && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
        /* a worker's last messages may still be on their way when its exit is reaped: wait
         * for its trailing Done/Error (or the grace period), also for one we stopped, whose
         * final report holds its last batch */
        if (!p->exited || (!now_all && !p->done && p->reported == ERRCLASS_NONE &&
                           now - p->exited_at_ms < SETTLE_GRACE_MS)) {
            i++;
            continue;
        }
        proc_t copy = *p;
        proctable_remove(s->procs, copy.pid); /* moves another entry into slot i */
        pipe_rt_t *rt = sup_rt(s, copy.pipe, false);
        if (rt && rt->plan && copy.range_index >= 0 &&
            (size_t)copy.range_index < rt->plan->n_ranges &&
            rt->range_state[copy.range_index] == RANGE_RUNNING)
            rt->range_state[copy.range_index] = RANGE_PENDING; /* loaded again later */
        if (rt && copy.role == ROLE_SNAPSHOT && !clean && rt->plan) {
            /* the exported snapshot died with the coordinator: every range worker stops and a
             * new coordinator starts over once they are all gone */
            sup_rt_clear_plan(rt);
            sup_stop_workers(s, copy.pipe, "the snapshot coordinator ended");
        }
        char how[128];
        proctable_describe_status(copy.status, how, sizeof(how));
        if (copy.role == ROLE_VERIFY) {
            /* a verify never counts against the pipe; its requester hears what happened */
            if (rt && rt->verify_reply.npre > 0 && !copy.done) {
                char msg[1400];
                snprintf(msg, sizeof(msg), "verify failed: %s",
                         copy.reported != ERRCLASS_NONE ? copy.error : how);
                control_reply_verify(s, rt, false, false, msg);
            }
            continue;
        }
        if (copy.stopping || s->stopping) {
            log_info("worker %s/%s pid %d %s after stop", copy.pipe, names_role(copy.role),
                     (int)copy.pid, how);
            continue;
        }
        if (clean) {
            log_debug("worker %s/%s pid %d finished", copy.pipe, names_role(copy.role),
                      (int)copy.pid);
            continue;
        }
        if (copy.reported == ERRCLASS_FATAL)
            continue; /* already Failed when the worker reported it */
        char what[1400];
        if (copy.reported == ERRCLASS_TRANSIENT)
            snprintf(what, sizeof(what), "%s", copy.error);
        else
            snprintf(what, sizeof(what), "worker pid %d %s without reporting", (int)copy.pid, how);
        worker_failed(s, copy.pipe, copy.role, what, ERRCLASS_TRANSIENT,
                      copy.healthy_at_ms && now - copy.healthy_at_ms >= HEALTHY_MS);
    }
}

/* ---- worker channel ---------------------------------------------------------------- */

static void
send_to_worker(supervisor_t *s, const zmq_msg_t *id, Pgferry__Worker__SupervisorMessage *m)
{
    const zmq_msg_t *pre[] = {id};
    m->version = IPC_VERSION;
    ipc_send_msg(s->wrk, pre, 1, &m->base);
}

static void assign(supervisor_t *s, proc_t *p, zmq_msg_t *id);

static void
on_hello(supervisor_t *s, zmq_msg_t *id, Pgferry__Worker__Hello *h)
{
    proc_t *p = proctable_find_pid(s->procs, (pid_t)h->pid);
    Pgferry__Worker__SupervisorMessage m = PGFERRY__WORKER__SUPERVISOR_MESSAGE__INIT;
    if (!p || strcmp(p->pipe, h->pipe) != 0 || p->role != h->role || p->stopping) {
        Pgferry__Worker__Stop st = PGFERRY__WORKER__STOP__INIT;
        st.reason = "not a worker of this supervisor";
        m.body_case = PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STOP;
        m.stop = &st;
        log_warn("hello from unknown worker pid %d (%s/%s): told to stop", h->pid, h->pipe,
                 names_role(h->role));
        send_to_worker(s, id, &m);
        return;
    }
    size_t zl = zmq_msg_size(id);
    if (zl > sizeof(p->zid))
        zl = sizeof(p->zid);
    memcpy(p->zid, zmq_msg_data(id), zl);
    p->zid_len = zl;
    assign(s, p, id);
}

/* Sends p its assignment (or Stop when there is nothing left for it) through id. */
static void
assign(supervisor_t *s, proc_t *p, zmq_msg_t *id)
{
    Pgferry__Worker__SupervisorMessage m = PGFERRY__WORKER__SUPERVISOR_MESSAGE__INIT;
    const Pgferry__State__PipeRecord *rec = store_peek_pipe(s->store, p->pipe);
    if (!rec) {
        Pgferry__Worker__Stop st = PGFERRY__WORKER__STOP__INIT;
        st.reason = "pipe no longer exists";
        m.body_case = PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STOP;
        m.stop = &st;
        send_to_worker(s, id, &m);
        return;
    }
    Pgferry__Worker__Assignment a = PGFERRY__WORKER__ASSIGNMENT__INIT;
    Pgferry__Worker__Range one_range;
    a.role = p->role;
    a.spec = rec->spec;
    a.tables = rec->table_defs;
    a.n_tables = rec->n_table_defs;
    pipe_rt_t *rt = sup_rt(s, p->pipe, false);
    if (p->range_index >= 0) {
        if (!rt || !rt->plan || (size_t)p->range_index >= rt->plan->n_ranges) {
            Pgferry__Worker__Stop st = PGFERRY__WORKER__STOP__INIT;
            st.reason = "the snapshot plan is gone";
            m.body_case = PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STOP;
            m.stop = &st;
            send_to_worker(s, id, &m);
            return;
        }
        a.snapshot_name = rt->plan->snapshot_name;
        a.range = rt->plan->ranges[p->range_index];
        /* a range needs its own table's definition only (a pipe of thousands of tables would
         * otherwise send them all with every range) */
        uint32_t ti = a.range->table_index;
        if (ti < rec->n_table_defs) {
            one_range = *a.range;
            one_range.table_index = 0;
            a.range = &one_range;
            a.tables = &rec->table_defs[ti];
            a.n_tables = 1;
        }
    }
    if (p->role == ROLE_CDC && !rec->spec->slot_owned)
        a.skip_before_lsn = rec->snapshot_lsn;
    if (p->role == ROLE_SNAPSHOT) /* CDC ran: the slot holds its position */
        a.keep_slot = rec->confirmed_lsn[0] != '\0' && !rec->resyncing;
    a.resync = rec->resyncing || rec->state == ST_RESYNC;
    Pgferry__State__TableDef **tdefs = NULL;
    if (p->role == ROLE_TEARDOWN) {
        size_t nt = 0;
        tdefs = control_teardown_defs(rec, &nt);
        a.tables = tdefs;
        a.n_tables = tdefs ? nt : 0;
        a.teardown_whole = rec->dropping;
        a.drop_destination = rec->drop_destination;
        a.source_objects = rec->source_objects;
    }
    if (p->role == ROLE_VERIFY && rt) {
        a.verify_table = rt->verify_table;
        a.streaming = rec->state == ST_RUNNING ||
                      (rec->state == ST_DEGRADED && rec->prev_state == ST_RUNNING);
    }
    m.body_case = PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_ASSIGNMENT;
    m.assignment = &a;
    send_to_worker(s, id, &m);
    log_debug("pipe %s: assigned %s to pid %d", p->pipe, names_role(p->role), (int)p->pid);
    free(tdefs);
}

/* Progress that moved data counts as recovery from Degraded and resets the failure count. A
 * CDC worker's report that it streams is not progress: it only starts the HEALTHY_MS clock
 * (on_applied), since a worker whose inserts keep failing must still reach Degraded/Failed. */
/* The server a CDC worker streams from: recorded, and a change (another host, or a new timeline
 * after a promotion) noted in the history. */
static void
on_source_server(supervisor_t *s, proc_t *p, const char *server)
{
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    if (strcmp(rec->source_server, server) != 0) {
        char reason[800];
        if (rec->source_server[0])
            snprintf(reason, sizeof(reason),
                     "source server changed: streaming from %s (was %s): a failover of the "
                     "source; the slot's position carried over",
                     server, rec->source_server);
        else
            snprintf(reason, sizeof(reason), "streaming from %s", server);
        bool changed = rec->source_server[0] != '\0';
        set_str(&rec->source_server, server);
        if (changed) {
            log_info("pipe %s: %s", p->pipe, reason);
            sup_note(s, rec, reason);
        } else {
            store_put_pipe(s->store, rec, NULL);
        }
    }
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

static void
on_progress(supervisor_t *s, proc_t *p, Pgferry__Worker__Progress *pr)
{
    snprintf(p->activity, sizeof(p->activity), "%s", pr->detail);
    if (pr->source_server[0]) {
        on_source_server(s, p, pr->source_server);
        return;
    }
    if (pr->rows == 0 && pr->lsn[0] == '\0')
        return;
    if (p->role == ROLE_CDC && pr->rows == 0) {
        if (!p->healthy_at_ms)
            p->healthy_at_ms = time_mono_ms();
        return;
    }
    const Pgferry__State__PipeRecord *peek = store_peek_pipe(s->store, p->pipe);
    if (!peek ||
        !(peek->consecutive_failures > 0 || peek->state == ST_DEGRADED || peek->last_error[0]))
        return; /* nothing to clear: no write */
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    {
        char err[512];
        made_progress(rec);
        if (rec->state == ST_DEGRADED) {
            if (!sup_transition(s, rec, LC_EV_RECOVERED, "the worker is making progress again", err,
                                sizeof(err)))
                log_warn("pipe %s: %s", p->pipe, err);
        } else {
            store_put_pipe(s->store, rec, NULL);
        }
    }
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

/* A range worker finished its range: it gets the next pending one of the plan (its
 * connections stay open), or Stop when none is left for it. */
static void
next_range(supervisor_t *s, proc_t *p, pipe_rt_t *rt)
{
    if (p->stopping || p->zid_len == 0)
        return;
    zmq_msg_t id;
    zmq_msg_init_data(&id, p->zid, p->zid_len, NULL, NULL);
    for (size_t i = 0; rt->plan && i < rt->plan->n_ranges; i++) {
        if (rt->range_state[i] != RANGE_PENDING)
            continue;
        p->range_index = (int)i;
        rt->range_state[i] = RANGE_RUNNING;
        p->done = false;
        assign(s, p, &id);
        zmq_msg_close(&id);
        return;
    }
    Pgferry__Worker__SupervisorMessage m = PGFERRY__WORKER__SUPERVISOR_MESSAGE__INIT;
    Pgferry__Worker__Stop st = PGFERRY__WORKER__STOP__INIT;
    st.reason = "no range left to load";
    m.body_case = PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STOP;
    m.stop = &st;
    send_to_worker(s, &id, &m);
    zmq_msg_close(&id);
}

static void
on_done(supervisor_t *s, proc_t *p, Pgferry__Worker__Done *d)
{
    p->done = true;
    if (p->role == ROLE_VERIFY) {
        pipe_rt_t *vrt = sup_rt(s, p->pipe, false);
        if (vrt && vrt->verify_reply.npre > 0)
            control_reply_verify(s, vrt, true, d->rows == 0, d->detail);
        return;
    }
    /* the common case of a big load, a range done with more to come and nothing to write:
     * the next range goes out without reading the record */
    pipe_rt_t *qrt = sup_rt(s, p->pipe, false);
    if (p->role == ROLE_SNAPSHOT_RANGE && qrt && qrt->plan && !qrt->unsettled &&
        p->range_index >= 0 && (size_t)p->range_index < qrt->plan->n_ranges &&
        qrt->range_state[p->range_index] != RANGE_DONE &&
        qrt->ranges_done + 1 < qrt->plan->n_ranges &&
        time_mono_ms() - qrt->stats_flushed_ms < 1000) {
        qrt->range_state[p->range_index] = RANGE_DONE;
        qrt->range_rows[p->range_index] = d->rows;
        qrt->range_bytes[p->range_index] = d->bytes;
        qrt->ranges_done++;
        qrt->snapshot_rows += d->rows;
        next_range(s, p, qrt);
        return;
    }
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    char err[512];
    /* failure counters or a transient error to clear: the record is written below */
    bool was_failing = rec->consecutive_failures > 0 || rec->state == ST_DEGRADED ||
                       rec->last_error_class == PGFERRY__STATE__ERROR_CLASS__TRANSIENT;
    made_progress(rec);
    if (rec->state == ST_DEGRADED &&
        !sup_transition(s, rec, LC_EV_RECOVERED, "the retried worker succeeded", err, sizeof(err)))
        log_warn("pipe %s: %s", p->pipe, err);
    if (p->role == ROLE_PROVISION) {
        set_str(&rec->source_version, d->source_version);
        set_str(&rec->dest_version, d->dest_version);
        char reason[600];
        snprintf(reason, sizeof(reason), "source and destination validated (%s)", d->detail);
        rec->source_objects = true;
        if (!sup_transition(s, rec, LC_EV_VALIDATED, reason, err, sizeof(err)))
            log_warn("pipe %s: %s", p->pipe, err);
    } else if (p->role == ROLE_SETUP) {
        /* the record takes the worker's definitions for the write, then gives them back so
         * each allocation is freed by its owner */
        Pgferry__State__TableDef **old = rec->table_defs;
        size_t n_old = rec->n_table_defs;
        rec->table_defs = d->tables;
        rec->n_table_defs = d->n_tables;
        if (rec->state == ST_SNAPSHOT && rec->resyncing) {
            rec->resync_ready = true; /* the definitions are new: every table loads again */
            sup_note(s, rec, d->detail);
        } else if (rec->state == ST_SNAPSHOT) /* added tables: the load follows in this state */
            sup_note(s, rec, d->detail);
        else if (!sup_transition(s, rec, LC_EV_SETUP_DONE, d->detail, err, sizeof(err)))
            log_warn("pipe %s: %s", p->pipe, err);
        rec->table_defs = old;
        rec->n_table_defs = n_old;
    } else if (p->role == ROLE_SNAPSHOT_RANGE) {
        pipe_rt_t *rt = sup_rt(s, p->pipe, false);
        if (rt && rt->plan && p->range_index >= 0 && (size_t)p->range_index < rt->plan->n_ranges &&
            rt->range_state[p->range_index] != RANGE_DONE) {
            rt->range_state[p->range_index] = RANGE_DONE;
            rt->range_rows[p->range_index] = d->rows;
            rt->range_bytes[p->range_index] = d->bytes;
            rt->ranges_done++;
            rt->snapshot_rows += d->rows;
            bool last = rt->ranges_done == rt->plan->n_ranges;
            int64_t now = time_mono_ms();
            /* the record's per-table counts take the finished ranges at most once a second
             * (and at the end): a load of thousands of small tables does not rewrite the
             * record for each (status shows the ranges from memory meanwhile) */
            if (last || now - rt->stats_flushed_ms >= 1000 || was_failing) {
                for (size_t i = 0; i < rt->plan->n_ranges; i++) {
                    if (rt->range_state[i] != RANGE_DONE || rt->range_counted[i])
                        continue;
                    rt->range_counted[i] = 1;
                    uint32_t ti = rt->plan->ranges[i]->table_index;
                    if (ti < rec->n_table_defs)
                        sup_table_stats_add(rec, rec->table_defs[ti]->target, 0, 0, 0, 0,
                                            rt->range_rows[i], rt->range_bytes[i]);
                }
                rt->stats_flushed_ms = now;
                rt->unsettled = false;
                if (!last)
                    store_put_pipe(s->store, rec, NULL);
            }
            if (last) {
                char reason[400];
                snprintf(reason, sizeof(reason),
                         "%llu rows in %zu range(s) loaded at snapshot %s (%s) by up to %u "
                         "worker(s)",
                         (unsigned long long)rt->snapshot_rows, rt->plan->n_ranges,
                         rt->plan->snapshot_name, rt->plan->consistent_lsn,
                         rec->spec->snapshot_workers);
                set_str(&rec->snapshot_lsn, rt->plan->consistent_lsn);
                for (size_t t = 0; t < rec->n_table_defs; t++) {
                    if (!rec->table_defs[t]->snapshot_lsn[0])
                        set_str(&rec->table_defs[t]->snapshot_lsn, rt->plan->consistent_lsn);
                }
                if (rec->spec->slot_owned && (!rec->confirmed_lsn[0] || rec->resyncing))
                    set_str(&rec->confirmed_lsn, rt->plan->consistent_lsn); /* a new slot */
                if (!sup_transition(s, rec, LC_EV_SNAPSHOT_DONE, reason, err, sizeof(err)))
                    log_warn("pipe %s: %s", p->pipe, err);
                sup_rt_clear_plan(rt);
            } else {
                next_range(s, p, rt);
            }
        }
    } else if (p->role == ROLE_TEARDOWN) {
        control_teardown_done(s, rec, d->detail, d->leftovers);
    } else if (p->role == ROLE_SWAP) {
        rec->resync_ready = false;
        if (!sup_transition(s, rec, LC_EV_SWAP_DONE, d->detail, err, sizeof(err)))
            log_warn("pipe %s: %s", p->pipe, err);
    } else {
        store_put_pipe(s->store, rec, NULL);
    }
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

static void
on_error(supervisor_t *s, proc_t *p, Pgferry__Worker__Error *e)
{
    bool fatal = e->class_ == PGFERRY__STATE__ERROR_CLASS__FATAL;
    p->reported = fatal ? ERRCLASS_FATAL : ERRCLASS_TRANSIENT;
    snprintf(p->error, sizeof(p->error), "%s", e->message);
    log_warn("pipe %s: %s worker reports %s error: %s", p->pipe, names_role(p->role),
             fatal ? "FATAL" : "TRANSIENT", e->message);
    if (!fatal || p->role == ROLE_VERIFY)
        return; /* counted when the worker exits (a verify's goes to its requester) */
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    set_str(&rec->last_error, e->message);
    rec->last_error_class = PGFERRY__STATE__ERROR_CLASS__FATAL;
    rec->last_error_us = time_now_us();
    char err[512];
    lifecycle_event_t ev = rec->state == ST_PROVISIONING ? LC_EV_VALIDATION_FAILED : LC_EV_FATAL;
    if (!sup_transition(s, rec, ev, e->message, err, sizeof(err)))
        log_warn("pipe %s: %s", p->pipe, err);
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

/* CDC: ClickHouse confirmed more transactions; the record keeps the position and counters.
 * Only a report that moved something (changes applied, or the confirmed position advanced, as
 * it does on an idle source) is progress: the worker also reports on a timer and when it fails,
 * and a worker that starts, reports and then fails every insert must still reach Degraded. */
static void
on_applied(supervisor_t *s, proc_t *p, Pgferry__Worker__Applied *a)
{
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    uint64_t before = 0, after = 0;
    bool moved =
        a->lsn[0] && lsn_parse(a->lsn, &after) &&
        (!rec->confirmed_lsn[0] || !lsn_parse(rec->confirmed_lsn, &before) || after > before);
    /* streaming without a failure for HEALTHY_MS counts too (a source with no WAL at all) */
    bool progress = moved || a->inserts || a->updates || a->deletes || a->transactions ||
                    (p->healthy_at_ms && time_mono_ms() - p->healthy_at_ms >= HEALTHY_MS);
    if (moved) /* the stored position never goes backwards */
        set_str(&rec->confirmed_lsn, a->lsn);
    if (a->commit_time_us)
        rec->last_commit_time_us = a->commit_time_us;
    rec->last_applied_us = time_now_us();
    rec->cdc_inserts += a->inserts;
    rec->cdc_updates += a->updates;
    rec->cdc_deletes += a->deletes;
    rec->cdc_transactions += a->transactions;
    for (size_t i = 0; i < a->n_tables; i++)
        sup_table_stats_add(rec, a->tables[i]->target, a->tables[i]->inserts, a->tables[i]->updates,
                            a->tables[i]->deletes, a->tables[i]->bytes, 0, 0);
    pipe_rt_t *rt = sup_rt(s, p->pipe, true);
    if (rt) {
        rt->applied_total += a->inserts + a->updates + a->deletes;
        rt->rate_ms[rt->rate_next] = time_mono_ms();
        rt->rate_total[rt->rate_next] = rt->applied_total;
        rt->rate_next = (rt->rate_next + 1) % RATE_SAMPLES;
        if (rt->rate_len < RATE_SAMPLES)
            rt->rate_len++;
    }
    char err[512];
    if (p->stopping)
        progress = false; /* a worker on its way out moves no state */
    if (progress)
        made_progress(rec);
    if (progress && rec->state == ST_DEGRADED) {
        if (!sup_transition(s, rec, LC_EV_RECOVERED, "the CDC worker is applying changes again",
                            err, sizeof(err)))
            log_warn("pipe %s: %s", p->pipe, err);
    } else {
        store_put_pipe(s->store, rec, NULL);
    }
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

/* The slot report: kept for status and metrics; retained WAL above the threshold is logged
 * once per crossing and noted in the history. The message is taken out of m. */
static void
on_slot(supervisor_t *s, proc_t *p, Pgferry__Worker__WorkerMessage *m)
{
    pipe_rt_t *rt = sup_rt(s, p->pipe, true);
    if (!rt)
        return;
    if (rt->slot)
        pgferry__worker__slot_info__free_unpacked(rt->slot, NULL);
    rt->slot = m->slot;
    m->slot = NULL;
    m->body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY__NOT_SET;
    rt->slot_us = time_now_us();
    uint64_t limit = s->cfg.retained_wal_warning_mb * 1048576ull;
    /* hysteresis: a warning ends only once the WAL is back under 80 % of the threshold, so WAL
     * hovering at the threshold does not add a history event every few seconds */
    bool above = rt->wal_warned ? rt->slot->retained_bytes > limit / 5 * 4
                                : rt->slot->retained_bytes > limit;
    if (above == rt->wal_warned)
        return;
    rt->wal_warned = above;
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    char reason[400];
    if (above)
        snprintf(reason, sizeof(reason),
                 "WARNING: slot %s retains %.1f MB of WAL on the source (threshold %llu MB)%s",
                 rec->spec->slot, (double)rt->slot->retained_bytes / 1048576.0,
                 (unsigned long long)s->cfg.retained_wal_warning_mb,
                 rec->state == ST_PAUSED ? "; resume the pipe or drop it" : "");
    else
        snprintf(reason, sizeof(reason),
                 "slot %s retains %.1f MB of WAL again (below 80 %% of %llu MB)", rec->spec->slot,
                 (double)rt->slot->retained_bytes / 1048576.0,
                 (unsigned long long)s->cfg.retained_wal_warning_mb);
    if (above)
        log_warn("pipe %s: %s", p->pipe, reason);
    else
        log_info("pipe %s: %s", p->pipe, reason);
    sup_note(s, rec, reason);
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

/* CDC: the source's table definitions changed; the record takes the new ones (out of d). */
static void
on_definitions(supervisor_t *s, proc_t *p, Pgferry__Worker__Definitions *d)
{
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    Pgferry__State__TableDef **old = rec->table_defs;
    size_t n_old = rec->n_table_defs;
    /* a table renamed at the source: the pipe's spec follows it (resync and add-tables read
     * the source by name) */
    for (size_t i = 0; rec->spec && i < d->n_tables; i++) {
        for (size_t k = 0; k < n_old; k++) {
            if (strcmp(old[k]->target, d->tables[i]->target) != 0 ||
                (strcmp(old[k]->schema, d->tables[i]->schema) == 0 &&
                 strcmp(old[k]->name, d->tables[i]->name) == 0))
                continue;
            for (size_t t = 0; t < rec->spec->n_tables; t++) {
                Pgferry__State__TableSpec *ts = rec->spec->tables[t];
                const char *schema = ts->schema[0] ? ts->schema : "public";
                if (strcmp(schema, old[k]->schema) != 0 || strcmp(ts->name, old[k]->name) != 0)
                    continue;
                char *ns = strdup(d->tables[i]->schema), *nn = strdup(d->tables[i]->name);
                if (!ns || !nn) {
                    free(ns);
                    free(nn);
                    break;
                }
                if (ts->schema != protobuf_c_empty_string)
                    free(ts->schema);
                if (ts->name != protobuf_c_empty_string)
                    free(ts->name);
                ts->schema = ns;
                ts->name = nn;
                if (!ts->target[0]) { /* the destination keeps its name */
                    char *tg = strdup(old[k]->target);
                    if (tg)
                        ts->target = tg;
                }
            }
        }
    }
    rec->table_defs = d->tables;
    rec->n_table_defs = d->n_tables;
    log_info("pipe %s: %s", p->pipe, d->reason);
    sup_note(s, rec, d->reason);
    rec->table_defs = old;
    rec->n_table_defs = n_old;
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

/* The coordinator's plan: its ranges become the pipe's work list. The plan is taken out of m. */
static void
on_plan(supervisor_t *s, proc_t *p, Pgferry__Worker__WorkerMessage *m)
{
    pipe_rt_t *rt = sup_rt(s, p->pipe, true);
    if (!rt || p->role != ROLE_SNAPSHOT)
        return;
    sup_rt_clear_plan(rt);
    size_t nr = m->plan->n_ranges ? m->plan->n_ranges : 1;
    rt->range_state = calloc(nr, 1);
    rt->range_counted = calloc(nr, 1);
    rt->range_rows = calloc(nr, sizeof(uint64_t));
    rt->range_bytes = calloc(nr, sizeof(uint64_t));
    if (!rt->range_state || !rt->range_rows || !rt->range_bytes || !rt->range_counted) {
        sup_rt_clear_plan(rt);
        log_error("pipe %s: out of memory for the snapshot plan", p->pipe);
        return;
    }
    rt->plan = m->plan;
    m->plan = NULL; /* now owned by rt */
    /* a load that starts over counts its rows anew */
    Pgferry__State__PipeRecord *rec = NULL;
    if (store_get_pipe(s->store, p->pipe, &rec) && rec) {
        for (size_t i = 0; i < rec->n_table_stats; i++) {
            for (size_t t = 0; t < rec->n_table_defs; t++) {
                if (strcmp(rec->table_defs[t]->target, rec->table_stats[i]->target) == 0 &&
                    !rec->table_defs[t]->snapshot_lsn[0])
                    rec->table_stats[i]->snapshot_rows = rec->table_stats[i]->snapshot_bytes = 0;
            }
        }
        store_put_pipe(s->store, rec, NULL);
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
    }
    log_info("pipe %s: snapshot %s planned as %zu range(s)", p->pipe, rt->plan->snapshot_name,
             rt->plan->n_ranges);
}

static void
handle_worker_message(supervisor_t *s)
{
    ipc_frames_t f;
    if (!ipc_recv_frames(s->wrk, &f, ZMQ_DONTWAIT))
        return;
    if (f.n != 2 || f.overflow) {
        log_warn("worker socket: dropped a message with %d frame(s)", f.n);
        ipc_frames_close(&f);
        return;
    }
    Pgferry__Worker__WorkerMessage *m = pgferry__worker__worker_message__unpack(
        NULL, zmq_msg_size(&f.parts[1]), zmq_msg_data(&f.parts[1]));
    if (!m || m->version != IPC_VERSION) {
        log_warn("worker socket: dropped an undecodable or wrong-version message");
        if (m)
            pgferry__worker__worker_message__free_unpacked(m, NULL);
        ipc_frames_close(&f);
        return;
    }
    if (m->body_case == PGFERRY__WORKER__WORKER_MESSAGE__BODY_HELLO) {
        on_hello(s, &f.parts[0], m->hello);
    } else {
        /* every other message comes from a worker that said Hello: find it by routing id */
        proc_t *p = NULL;
        for (size_t i = 0; i < proctable_count(s->procs); i++) {
            proc_t *q = proctable_at(s->procs, i);
            if (q->zid_len == zmq_msg_size(&f.parts[0]) &&
                memcmp(q->zid, zmq_msg_data(&f.parts[0]), q->zid_len) == 0) {
                p = q;
                break;
            }
        }
        /* a worker being stopped still reports what it finished (a CDC worker's last batch
         * and schema change): those are facts, kept; anything that would move the pipe is not */
        bool final_report = m->body_case == PGFERRY__WORKER__WORKER_MESSAGE__BODY_APPLIED ||
                            m->body_case == PGFERRY__WORKER__WORKER_MESSAGE__BODY_DEFINITIONS ||
                            m->body_case == PGFERRY__WORKER__WORKER_MESSAGE__BODY_SLOT;
        if (!p) {
            log_debug("worker socket: message from an unknown routing id dropped");
        } else if (p->stopping && !final_report) {
            /* its trailing Done/Error still ends the wait for its last reports */
            if (m->body_case == PGFERRY__WORKER__WORKER_MESSAGE__BODY_DONE)
                p->done = true;
            else if (m->body_case == PGFERRY__WORKER__WORKER_MESSAGE__BODY_ERROR)
                p->reported = ERRCLASS_TRANSIENT;
            log_debug("worker socket: message from stopping worker %d ignored", (int)p->pid);
        } else {
            switch (m->body_case) {
            case PGFERRY__WORKER__WORKER_MESSAGE__BODY_PROGRESS:
                on_progress(s, p, m->progress);
                break;
            case PGFERRY__WORKER__WORKER_MESSAGE__BODY_DONE:
                on_done(s, p, m->done);
                break;
            case PGFERRY__WORKER__WORKER_MESSAGE__BODY_ERROR:
                on_error(s, p, m->error);
                break;
            case PGFERRY__WORKER__WORKER_MESSAGE__BODY_PLAN:
                on_plan(s, p, m);
                break;
            case PGFERRY__WORKER__WORKER_MESSAGE__BODY_APPLIED:
                on_applied(s, p, m->applied);
                break;
            case PGFERRY__WORKER__WORKER_MESSAGE__BODY_DEFINITIONS:
                on_definitions(s, p, m->definitions);
                break;
            case PGFERRY__WORKER__WORKER_MESSAGE__BODY_SLOT:
                on_slot(s, p, m);
                break;
            case PGFERRY__WORKER__WORKER_MESSAGE__BODY_CHECKPOINT:
                store_put_checkpoint(s->store, p->pipe, m->checkpoint->key,
                                     m->checkpoint->value.data, m->checkpoint->value.len);
                break;
            default:
                log_warn("worker socket: unknown message type %d", (int)m->body_case);
            }
        }
    }
    pgferry__worker__worker_message__free_unpacked(m, NULL);
    ipc_frames_close(&f);
}

/* ---- reconcile --------------------------------------------------------------------- */

/* Whether a worker of this role belongs to a pipe in rec's state. */
static bool
role_wanted(const Pgferry__State__PipeRecord *rec, worker_role_t role)
{
    if (role == ROLE_VERIFY)
        return true; /* on demand, ends by itself */
    worker_role_t want = desired_role(rec);
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
static int64_t
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
        worker_role_t role = desired_role(rec);
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
            role = desired_role(rec);
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
                worker_failed(s, names[i], role, "cannot start the worker program",
                              ERRCLASS_TRANSIENT, false);
            }
        } else if (is_snapshot && main && !main->exited && rt && rt->plan && !waiting) {
            pump_ranges(s, rec, rt);
        }
    }
    store_free_names(names, n);
    return next;
}

/* ---- lifecycle of the daemon ------------------------------------------------------- */

/* The remote control socket: CURVE server with the daemon's key; a ZAP handler in this thread
 * admits only the authorized client keys. */
static bool
open_remote(supervisor_t *s)
{
    char pub[41], sec[41], err[1024];
    if (!curvekeys_load(s->cfg.curve_key_file, pub, sec, err, sizeof(err)) ||
        !curvekeys_load_authorized(s->cfg.curve_authorized_keys, &s->auth_keys, &s->n_auth_keys,
                                   err, sizeof(err))) {
        log_error("remote control: %s", err);
        return false;
    }
    int one = 1;
    s->zap = zmq_socket(s->zctx, ZMQ_REP);
    s->remote = zmq_socket(s->zctx, ZMQ_ROUTER);
    if (!s->zap || !s->remote || zmq_bind(s->zap, "inproc://zeromq.zap.01") != 0 ||
        !ipc_socket_defaults(s->remote, 0) ||
        zmq_setsockopt(s->remote, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(s->remote, ZMQ_CURVE_SECRETKEY, sec, 40) != 0 ||
        zmq_setsockopt(s->remote, ZMQ_ZAP_DOMAIN, "pgferry", 7) != 0) {
        log_error("remote control: cannot set up CURVE: %s", zmq_strerror(errno));
        return false;
    }
    memset(sec, 0, sizeof(sec));
    if (zmq_bind(s->remote, s->cfg.control_remote) != 0) {
        log_error("cannot bind the remote control socket %s: %s", s->cfg.control_remote,
                  zmq_strerror(errno));
        return false;
    }
    log_info("remote control on %s (CURVE, server key %s, %zu authorized client key(s))",
             s->cfg.control_remote, pub, s->n_auth_keys);
    return true;
}

/* One ZAP request (RFC 27): version, request id, domain, address, identity, mechanism,
 * credentials. CURVE clients whose public key is authorized get 200, everyone else 400. */
static void
handle_zap(supervisor_t *s)
{
    zmq_msg_t fr[8];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t scratch, *m = n < 8 ? &fr[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, s->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            n++;
    }
    if (n < 6) {
        for (int i = 0; i < n; i++)
            zmq_msg_close(&fr[i]);
        return;
    }
    bool ok = false;
    if (zmq_msg_size(&fr[5]) == 5 && memcmp(zmq_msg_data(&fr[5]), "CURVE", 5) == 0 && n >= 7 &&
        zmq_msg_size(&fr[6]) == 32) {
        for (size_t i = 0; i < s->n_auth_keys && !ok; i++)
            ok = memcmp(zmq_msg_data(&fr[6]), s->auth_keys + i * 32, 32) == 0;
    }
    if (!ok) {
        char addr[64];
        snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&fr[3]),
                 (const char *)zmq_msg_data(&fr[3]));
        log_warn("remote control: refused a client from %s (key not authorized)", addr);
    }
    zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, zmq_msg_data(&fr[1]), zmq_msg_size(&fr[1]), ZMQ_SNDMORE);
    zmq_send(s->zap, ok ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, ok ? "OK" : "not authorized", ok ? 2 : 14, ZMQ_SNDMORE);
    zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
    zmq_send(s->zap, "", 0, 0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&fr[i]);
}

supervisor_t *
supervisor_new(const daemon_config_t *cfg)
{
    supervisor_t *s = calloc(1, sizeof(*s));
    char err[1024];
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->sigfd = -1;
    s->lockfd = -1;
    umask(077);
    if (mkdir(cfg->state_dir, 0700) != 0 && errno != EEXIST) {
        log_error("cannot create state directory %s: %s", cfg->state_dir, strerror(errno));
        goto fail;
    }
    char path[700];
    snprintf(path, sizeof(path), "%s/pgferryd.lock", cfg->state_dir);
    s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        log_error("state directory %s is in use by another pgferryd (lock %s: %s)", cfg->state_dir,
                  path, strerror(errno));
        goto fail;
    }
    /* the password rules of pipes: checked at create and, through the environment the
     * workers inherit, by every worker before it reads a password */
    if (cfg->secrets_dir[0] && mkdir(cfg->secrets_dir, 0700) != 0 && errno != EEXIST)
        log_warn("cannot create secrets_dir %s: %s", cfg->secrets_dir, strerror(errno));
    if (setenv("PGFERRY_SECRETS_DIR", cfg->secrets_dir, 1) != 0 ||
        setenv("PGFERRY_SECRET_ENV_PREFIX", cfg->secret_env_prefix, 1) != 0) {
        log_error("cannot set the workers' password rules: %s", strerror(errno));
        goto fail;
    }
    char pidbuf[32];
    int pl = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
    if (ftruncate(s->lockfd, 0) != 0 || write(s->lockfd, pidbuf, (size_t)pl) != pl)
        log_warn("cannot write pid into %s", path);

    s->store = store_open(cfg->state_dir, err, sizeof(err));
    if (!s->store) {
        log_error("%s", err);
        goto fail;
    }
    store_set_history_max(s->store, cfg->history_max_events);
    s->procs = proctable_new();
    s->zctx = zmq_ctx_new();
    if (!s->procs || !s->zctx)
        goto fail;
    s->ctl = zmq_socket(s->zctx, ZMQ_ROUTER);
    s->wrk = zmq_socket(s->zctx, ZMQ_ROUTER);
    if (!s->ctl || !s->wrk || !ipc_socket_defaults(s->ctl, 0) || !ipc_socket_defaults(s->wrk, 0))
        goto fail;
    if (zmq_bind(s->ctl, cfg->control_endpoint) != 0) {
        log_error("cannot bind the control socket %s: %s", cfg->control_endpoint,
                  zmq_strerror(errno));
        goto fail;
    }
    const char *cp = ipc_endpoint_path(cfg->control_endpoint);
    if (cp && chmod(cp, 0600) != 0)
        log_warn("chmod %s: %s", cp, strerror(errno));
    char wep[600];
    snprintf(wep, sizeof(wep), "ipc://%s/workers.sock", cfg->state_dir);
    if (zmq_bind(s->wrk, wep) != 0) {
        log_error("cannot bind the worker socket %s: %s", wep, zmq_strerror(errno));
        goto fail;
    }
    if (cfg->control_remote[0] && !open_remote(s))
        goto fail; /* logged */
    if (cfg->metrics_listen[0]) {
        char err[512];
        int mfd = metrics_listen(cfg->metrics_listen, err, sizeof(err));
        if (mfd < 0) {
            log_error("%s", err);
            goto fail;
        }
        /* 16 clients at once, 5 s each from connect to the last byte: nothing a client does
         * can hold the loop */
        s->metrics = httpd_new(mfd, 16, 5000, metrics_http_handler, s);
        if (!s->metrics) {
            close(mfd);
            log_error("out of memory");
            goto fail;
        }
        log_info("serving Prometheus metrics on http://%s/metrics", cfg->metrics_listen);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        goto fail;
    }
    return s;
fail:
    supervisor_destroy(&s);
    return NULL;
}

/* Tells systemd (Type=notify) about readiness and reloads; a no-op without NOTIFY_SOCKET. */
static void
notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t pl = strlen(path);
    if (pl >= sizeof(sa.sun_path))
        return;
    memcpy(sa.sun_path, path, pl);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
    if (sendto(fd, state, strlen(state), 0, (struct sockaddr *)&sa, len) < 0)
        log_warn("cannot notify systemd: %s", strerror(errno));
    close(fd);
}

/* SIGHUP: re-reads the configuration file and applies what can change while running (log
 * level and format, backoff, failure limits, grace period, pipe limits). Sockets, the state
 * directory and the password rules (secrets_dir, secret_env_prefix) need a restart; a file that no
 * longer parses changes nothing. */
static void
reload_config(supervisor_t *s)
{
    if (!s->cfg.config_file[0]) {
        log_info("received SIGHUP: no configuration file to reload");
        return;
    }
    notify_systemd("RELOADING=1");
    daemon_config_t c;
    char err[1024];
    daemon_config_defaults(&c);
    if (!daemon_config_load_file(&c, s->cfg.config_file, err, sizeof(err)) ||
        !daemon_config_load_env(&c, err, sizeof(err))) {
        log_error("reload refused, keeping the running settings: %s", err);
    } else {
        if (strcmp(c.state_dir, s->cfg.state_dir) != 0 ||
            (c.control_endpoint[0] && strcmp(c.control_endpoint, s->cfg.control_endpoint) != 0))
            log_warn("state_dir and control_endpoint change only with a restart");
        s->cfg.log_level = c.log_level;
        s->cfg.log_json = c.log_json;
        s->cfg.backoff_initial_ms = c.backoff_initial_ms;
        s->cfg.backoff_max_ms = c.backoff_max_ms;
        s->cfg.degraded_after = c.degraded_after;
        s->cfg.max_failures = c.max_failures;
        s->cfg.stop_grace_ms = c.stop_grace_ms;
        s->cfg.max_pipes = c.max_pipes;
        s->cfg.default_snapshot_workers = c.default_snapshot_workers;
        s->cfg.history_max_events = c.history_max_events;
        store_set_history_max(s->store, c.history_max_events);
        log_set_level(c.log_level);
        log_set_json(c.log_json);
        log_info("configuration reloaded from %s", s->cfg.config_file);
    }
    notify_systemd("READY=1");
}

static bool
drain_signals(supervisor_t *s)
{
    struct signalfd_siginfo si;
    bool child = false;
    while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            child = true;
            break;
        case SIGTERM:
        case SIGINT:
            if (!s->stopping)
                log_info("received %s: stopping workers and exiting", strsignal((int)si.ssi_signo));
            s->stopping = true;
            break;
        case SIGHUP:
            reload_config(s);
            break;
        }
    }
    return child;
}

/* Whether a ZeroMQ socket has a message waiting (poll's revents can be stale after reads). */
static bool
has_input(void *sock)
{
    int ev = 0;
    size_t el = sizeof(ev);
    return zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &el) == 0 && (ev & ZMQ_POLLIN);
}

/* Answers up to 64 waiting control requests on sock (the ipc:// or the tcp:// endpoint). */
static void
serve_control(supervisor_t *s, void *sock)
{
    for (int i = 0; i < 64 && has_input(sock); i++) {
        ipc_frames_t f;
        if (!ipc_recv_frames(sock, &f, ZMQ_DONTWAIT))
            break;
        control_handle(s, sock, &f);
        ipc_frames_close(&f);
    }
}

int
supervisor_run(supervisor_t *s)
{
    log_info("pgferryd serving %s (state %s)", s->cfg.control_endpoint, s->cfg.state_dir);
    notify_systemd("READY=1");
    int64_t next_restart = reconcile(s);
    int64_t last_reconcile = time_mono_ms();
    while (!s->stopping) {
        int64_t now = time_mono_ms();
        int64_t timeout = TICK_MS;
        int64_t kill_at = proctable_enforce_kills(s->procs, now);
        if (next_restart >= 0 && next_restart - now < timeout)
            timeout = next_restart - now;
        if (kill_at >= 0 && kill_at - now < timeout)
            timeout = kill_at - now;
        for (size_t i = 0; i < proctable_count(s->procs); i++) {
            if (proctable_at(s->procs, i)->exited && timeout > 50)
                timeout = 50;
        }
        if (timeout < 0)
            timeout = 0;
        if (s->metrics) {
            int64_t d = httpd_next_deadline(s->metrics);
            if (d >= 0 && d - now < timeout)
                timeout = d - now < 0 ? 0 : d - now;
        }
        zmq_pollitem_t items[5 + 1 + 16] = {{s->ctl, 0, ZMQ_POLLIN, 0},
                                            {s->wrk, 0, ZMQ_POLLIN, 0},
                                            {NULL, s->sigfd, ZMQ_POLLIN, 0},
                                            {s->zap, 0, ZMQ_POLLIN, 0},
                                            {s->remote, 0, ZMQ_POLLIN, 0}};
        size_t nbase = s->remote ? 5 : 3;
        size_t nhttp = s->metrics ? httpd_poll_items(s->metrics, items + nbase,
                                                     sizeof(items) / sizeof(items[0]) - nbase)
                                  : 0;
        int rc = zmq_poll(items, (int)(nbase + nhttp), (long)timeout);
        if (rc < 0 && errno != EINTR) {
            log_error("zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        bool child = (items[2].revents & ZMQ_POLLIN) && drain_signals(s);
        /* bounded batches so one busy socket cannot starve the others */
        for (int i = 0; i < 64 && (items[1].revents & ZMQ_POLLIN) && has_input(s->wrk); i++)
            handle_worker_message(s);
        if (items[0].revents & ZMQ_POLLIN)
            serve_control(s, s->ctl);
        if (s->metrics)
            httpd_handle(s->metrics, items + nbase, nhttp, time_mono_ms());
        if (s->remote) {
            for (int i = 0; i < 16 && (items[3].revents & ZMQ_POLLIN) && has_input(s->zap); i++)
                handle_zap(s);
            if (items[4].revents & ZMQ_POLLIN)
                serve_control(s, s->remote);
        }
        if (child)
            reap_children(s);
        settle_exited(s, false);
        log_flush_repeats();
        now = time_mono_ms();
        if (rc > 0 || now - last_reconcile >= TICK_MS ||
            (next_restart >= 0 && now >= next_restart)) {
            next_restart = reconcile(s);
            last_reconcile = now;
        }
    }

    notify_systemd("STOPPING=1");
    /* shutdown: SIGTERM every worker, wait for the grace period, then SIGKILL */
    for (size_t i = 0; i < proctable_count(s->procs); i++) {
        proc_t *p = proctable_at(s->procs, i);
        proctable_stop(p, time_mono_ms(), (int64_t)s->cfg.stop_grace_ms);
    }
    while (proctable_count(s->procs) > 0) {
        int64_t now = time_mono_ms();
        int64_t kill_at = proctable_enforce_kills(s->procs, now);
        long timeout = kill_at >= 0 ? (long)(kill_at - now) : 100;
        if (timeout < 10)
            timeout = 10;
        zmq_pollitem_t it = {NULL, s->sigfd, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, timeout);
        drain_signals(s);
        reap_children(s);
        settle_exited(s, true);
    }
    log_info("pgferryd stopped");
    return 0;
}

void
supervisor_destroy(supervisor_t **sp)
{
    supervisor_t *s = *sp;
    if (!s)
        return;
    if (s->ctl)
        zmq_close(s->ctl);
    if (s->remote)
        zmq_close(s->remote);
    if (s->zap)
        zmq_close(s->zap);
    free(s->auth_keys);
    if (s->wrk)
        zmq_close(s->wrk);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    const char *cp = ipc_endpoint_path(s->cfg.control_endpoint);
    if (cp && s->lockfd >= 0 && s->store)
        unlink(cp);
    if (s->sigfd >= 0)
        close(s->sigfd);
    httpd_destroy(&s->metrics);
    store_destroy(&s->store);
    proctable_destroy(&s->procs);
    for (size_t i = 0; i < s->nrt; i++)
        rt_free(&s->rt[i]);
    free(s->rt);
    if (s->lockfd >= 0)
        close(s->lockfd);
    free(s);
    *sp = NULL;
}
