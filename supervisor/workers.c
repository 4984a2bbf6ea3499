/* workers: the worker channel and worker exits (see workers.h). */
#include "workers.h"
#include "pipeops.h"
#include "pipert.h"
#include "control.h"
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
#include <sys/wait.h>

static void follow_renames(Pgferry__State__PipeRecord *rec, Pgferry__State__TableDef *const *defs,
                           size_t n);

#define SETTLE_GRACE_MS 250 /* a reaped worker's last messages may still be on their way */
#define HEALTHY_MS 60000    /* a CDC worker streaming this long counts as progress */

static void assign(supervisor_t *s, proc_t *p, zmq_msg_t *id);

/* Reaps every exited child without blocking. The exit is judged later, in settle_exited, so a
 * Done or Error the worker sent just before exiting is read first. */
void
workers_reap(supervisor_t *s)
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
void
workers_settle(supervisor_t *s, bool now_all)
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
        sup_worker_failed(s, copy.pipe, copy.role, what, ERRCLASS_TRANSIENT,
                          copy.healthy_at_ms && now - copy.healthy_at_ms >= HEALTHY_MS);
    }
}

static void
send_to_worker(supervisor_t *s, const zmq_msg_t *id, Pgferry__Worker__SupervisorMessage *m)
{
    const zmq_msg_t *pre[] = {id};
    m->version = IPC_VERSION;
    ipc_send_msg(s->wrk, pre, 1, &m->base);
}

static int
cmp_stats(const void *a, const void *b)
{
    return strcmp((*(Pgferry__State__TableStats *const *)a)->target,
                  (*(Pgferry__State__TableStats *const *)b)->target);
}

/* Per table definition, the position its stored counters go to ("" = none); NULL when out of
 * memory (the worker then counts from the pipe's position only). Sorted once: 10,000 tables. */
static char **
table_counted(const Pgferry__State__PipeRecord *rec)
{
    static char none[] = "";
    char **out = calloc(rec->n_table_defs + 1, sizeof(*out));
    Pgferry__State__TableStats **st = calloc(rec->n_table_stats + 1, sizeof(*st));
    if (!out || !st) {
        free(out);
        free(st);
        return NULL;
    }
    if (rec->n_table_stats)
        memcpy(st, rec->table_stats, rec->n_table_stats * sizeof(*st));
    qsort(st, rec->n_table_stats, sizeof(*st), cmp_stats);
    for (size_t i = 0; i < rec->n_table_defs; i++) {
        Pgferry__State__TableStats key = PGFERRY__STATE__TABLE_STATS__INIT, *kp = &key, **hit;
        key.target = rec->table_defs[i]->target;
        hit = bsearch(&kp, st, rec->n_table_stats, sizeof(*st), cmp_stats);
        out[i] = hit ? (*hit)->counted_lsn : none;
    }
    free(st);
    return out;
}

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
    a.state_id = (char *)store_state_id(s->store);
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
    char **counted = NULL;
    if (p->role == ROLE_CDC) { /* stored with the counters: what came before is counted */
        a.counted_lsn = rec->confirmed_lsn;
        counted = table_counted(rec);
        a.table_counted_lsn = counted;
        a.n_table_counted_lsn = counted ? rec->n_table_defs : 0;
    }
    if (p->role == ROLE_SNAPSHOT) /* CDC ran: the slot holds its position */
        a.keep_slot = rec->confirmed_lsn[0] != '\0' && !rec->resyncing;
    a.resync = rec->resyncing || rec->state == ST_RESYNC;
    Pgferry__State__TableDef **tdefs = NULL;
    char slot_pipe[PROC_NAME_MAX + 1], pub_pipe[PROC_NAME_MAX + 1];
    if (p->role == ROLE_TEARDOWN || p->role == ROLE_SETUP || p->role == ROLE_SNAPSHOT ||
        p->role == ROLE_CDC) {
        /* only a store written before names were checked at create can hold such pairs */
        control_shared_source_names(s, rec, slot_pipe, pub_pipe, sizeof(slot_pipe));
        a.slot_shared_with = slot_pipe;
        a.publication_shared_with = pub_pipe;
    }
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
    free(counted);
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
        sup_set_str(&rec->source_server, server);
        if (changed) {
            log_info("pipe %s: %s", p->pipe, reason);
            sup_note(s, rec, reason);
        } else {
            store_put_pipe(s->store, rec, NULL);
        }
    }
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

/* A worker's history note, unless one of the pipe's recent events already says it (a CDC
 * worker notes what it finds in the stream once per run; a restarted one finds it again). */
static void
on_note(supervisor_t *s, proc_t *p, const char *note)
{
    Pgferry__State__HistoryEvent **evs = NULL;
    size_t n = 0;
    bool seen = false;
    if (store_get_history(s->store, p->pipe, 50, &evs, &n)) {
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(evs[i]->reason, note) == 0;
        store_free_history(evs, n);
    }
    Pgferry__State__PipeRecord *rec = NULL;
    if (seen || !store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    log_info("pipe %s: %s", p->pipe, note);
    sup_note(s, rec, note);
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

static void
on_progress(supervisor_t *s, proc_t *p, Pgferry__Worker__Progress *pr)
{
    snprintf(p->activity, sizeof(p->activity), "%s", pr->detail);
    if (pr->note[0]) {
        on_note(s, p, pr->note);
        return;
    }
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
        sup_made_progress(rec);
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
    sup_made_progress(rec);
    if (rec->state == ST_DEGRADED &&
        !sup_transition(s, rec, LC_EV_RECOVERED, "the retried worker succeeded", err, sizeof(err)))
        log_warn("pipe %s: %s", p->pipe, err);
    if (p->role == ROLE_PROVISION) {
        sup_set_str(&rec->source_version, d->source_version);
        sup_set_str(&rec->dest_version, d->dest_version);
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
        follow_renames(rec, d->tables, d->n_tables); /* setup finds known tables by oid */
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
                sup_set_str(&rec->snapshot_lsn, rt->plan->consistent_lsn);
                for (size_t t = 0; t < rec->n_table_defs; t++) {
                    if (!rec->table_defs[t]->snapshot_lsn[0])
                        sup_set_str(&rec->table_defs[t]->snapshot_lsn, rt->plan->consistent_lsn);
                }
                if (rec->spec->slot_owned && (!rec->confirmed_lsn[0] || rec->resyncing))
                    sup_set_str(&rec->confirmed_lsn, rt->plan->consistent_lsn); /* a new slot */
                if (!sup_transition(s, rec, LC_EV_SNAPSHOT_DONE, reason, err, sizeof(err)))
                    log_warn("pipe %s: %s", p->pipe, err);
                /* the worker of the last range waits for its next one like the others: it is
                 * told there is none (reconcile stops the pipe's other workers when the state
                 * no longer wants them, but a worker that sent Done is not among those it
                 * looks at: with the coordinator already gone, this one was left waiting) */
                next_range(s, p, rt);
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
    sup_set_str(&rec->last_error, e->message);
    rec->last_error_class = PGFERRY__STATE__ERROR_CLASS__FATAL;
    rec->last_error_us = time_now_us();
    char err[512];
    lifecycle_event_t ev = rec->state == ST_PROVISIONING ? LC_EV_VALIDATION_FAILED : LC_EV_FATAL;
    if (!sup_transition(s, rec, ev, e->message, err, sizeof(err)))
        log_warn("pipe %s: %s", p->pipe, err);
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
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
        sup_set_str(&rec->confirmed_lsn, a->lsn);
    if (a->commit_time_us)
        rec->last_commit_time_us = a->commit_time_us;
    rec->last_applied_us = time_now_us();
    rec->cdc_inserts += a->inserts;
    rec->cdc_updates += a->updates;
    rec->cdc_deletes += a->deletes;
    rec->cdc_transactions += a->transactions;
    for (size_t i = 0; i < a->n_tables; i++) {
        sup_table_stats_add(rec, a->tables[i]->target, a->tables[i]->inserts, a->tables[i]->updates,
                            a->tables[i]->deletes, a->tables[i]->bytes, 0, 0);
        /* where the table's counts go to, kept with them (a replay skips what they include) */
        Pgferry__State__TableStats *t = sup_table_stats(rec, a->tables[i]->target);
        uint64_t was = 0, now = 0;
        if (t && lsn_parse(a->tables[i]->counted_lsn, &now) &&
            (!lsn_parse(t->counted_lsn, &was) || now > was))
            sup_set_str(&t->counted_lsn, a->tables[i]->counted_lsn);
    }
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
        sup_made_progress(rec);
    bool stored;
    if (progress && rec->state == ST_DEGRADED) {
        stored = sup_transition(s, rec, LC_EV_RECOVERED, "the CDC worker is applying changes again",
                                err, sizeof(err));
        if (!stored)
            log_warn("pipe %s: %s", p->pipe, err);
    } else {
        stored = store_put_pipe(s->store, rec, NULL);
    }
    /* the counters and the position are stored together: the worker may now confirm the slot
     * that far (it never goes further, so a report lost with this process comes again) */
    if (stored && rec->confirmed_lsn[0] && p->zid_len > 0) {
        Pgferry__Worker__SupervisorMessage m = PGFERRY__WORKER__SUPERVISOR_MESSAGE__INIT;
        Pgferry__Worker__AppliedStored st = PGFERRY__WORKER__APPLIED_STORED__INIT;
        st.lsn = rec->confirmed_lsn;
        m.body_case = PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STORED;
        m.stored = &st;
        zmq_msg_t id;
        zmq_msg_init_data(&id, p->zid, p->zid_len, NULL, NULL);
        send_to_worker(s, &id, &m);
        zmq_msg_close(&id);
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

/* Tables renamed at the source (new definitions under another name, same destination): the
 * pipe's spec takes the new names, so the spec's tables and the definitions keep pairing by name
 * (the destination keeps its name). */
static void
follow_renames(Pgferry__State__PipeRecord *rec, Pgferry__State__TableDef *const *defs, size_t n)
{
    Pgferry__State__TableDef **old = rec->table_defs;
    size_t n_old = rec->n_table_defs;
    for (size_t i = 0; rec->spec && i < n; i++) {
        for (size_t k = 0; k < n_old; k++) {
            if (strcmp(old[k]->target, defs[i]->target) != 0 ||
                (strcmp(old[k]->schema, defs[i]->schema) == 0 &&
                 strcmp(old[k]->name, defs[i]->name) == 0))
                continue;
            for (size_t t = 0; t < rec->spec->n_tables; t++) {
                Pgferry__State__TableSpec *ts = rec->spec->tables[t];
                const char *schema = ts->schema[0] ? ts->schema : "public";
                if (strcmp(schema, old[k]->schema) != 0 || strcmp(ts->name, old[k]->name) != 0)
                    continue;
                char *ns = strdup(defs[i]->schema), *nn = strdup(defs[i]->name);
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
}

/* CDC: the source's table definitions changed; the record takes the new ones (out of d). */
static void
on_definitions(supervisor_t *s, proc_t *p, Pgferry__Worker__Definitions *d)
{
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, p->pipe, &rec) || !rec)
        return;
    /* From a CDC worker, only while it is the one that keeps the definitions (the load's
     * coordinator sends the ones it read again under its snapshot, in Snapshot). A CDC worker
     * stopped for a resync or add/remove-tables sends the definitions it changed as it
     * acknowledges its last batch, which can come after the setup worker recorded new ones (a
     * resync's, with every table to load again): taking them then marked every table loaded,
     * the load planned no range and the pipe stayed in Snapshot (found by the nemesis test).
     * What the stopped worker changed is in the new definitions (read from the source) or is
     * seen again by the next CDC worker, which gets the Relation message anew. */
    bool cdc_owns = rec->state == ST_RUNNING || rec->state == ST_PAUSING ||
                    rec->state == ST_PAUSED || rec->state == ST_DEGRADED || rec->state == ST_FAILED;
    if (p->role == ROLE_CDC && (!cdc_owns || rec->resyncing || d->n_tables != rec->n_table_defs)) {
        log_info("pipe %s: definitions from a stopped CDC worker ignored (pipe %s): %s", p->pipe,
                 names_state(rec->state), d->reason);
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        return;
    }
    Pgferry__State__TableDef **old = rec->table_defs;
    size_t n_old = rec->n_table_defs;
    follow_renames(rec, d->tables, d->n_tables);
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

void
workers_handle_message(supervisor_t *s)
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
