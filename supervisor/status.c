/* status: what status, list and metrics show of a pipe (see status.h). */
#include "status.h"
#include "lsn.h"
#include "mask.h"
#include "names.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double
status_lag_seconds(const char *confirmed_lsn, int64_t last_commit_us,
                   const Pgferry__Worker__SlotInfo *slot, int64_t now_us)
{
    if (!slot)
        return -1; /* no report yet (e.g. right after a worker restart): unknown, not old */
    uint64_t confirmed, current;
    /* caught up: nothing after the confirmed position, or the pipe's confirmed position is at
     * or past what the last slot report saw as the source's end (a report older than the
     * pipe's last acknowledgement) */
    if (slot->lag_bytes == 0 ||
        (confirmed_lsn && lsn_parse(confirmed_lsn, &confirmed) && slot->current_lsn &&
         lsn_parse(slot->current_lsn, &current) && confirmed >= current))
        return 0;
    if (last_commit_us <= 0)
        return -1;
    double d = (double)(now_us - last_commit_us) / 1e6;
    return d < 0 ? 0 : d;
}

void
status_free(Pgferry__Control__PipeStatus *st)
{
    if (!st)
        return;
    if (st->record)
        pgferry__state__pipe_record__free_unpacked(st->record, NULL);
    store_free_history(st->history, st->n_history);
    for (size_t i = 0; i < st->n_workers; i++) {
        free(st->workers[i]->role);
        free(st->workers[i]->activity);
        free(st->workers[i]);
    }
    free(st->workers);
    for (size_t i = 0; i < st->n_table_progress; i++)
        free(st->table_progress[i]);
    free(st->table_progress);
    if (st->warning && st->warning != protobuf_c_empty_string)
        free(st->warning);
    free(st);
}

static void
mask_field(char **field)
{
    char *m = mask_secrets(*field);
    if (!m)
        return;
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = m;
}

/* The status of one pipe, secrets masked; NULL when it does not exist or on error. */
Pgferry__Control__PipeStatus *
status_build(supervisor_t *s, const char *name, size_t history_limit)
{
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, name, &rec) || !rec)
        return NULL;
    Pgferry__Control__PipeStatus *st = calloc(1, sizeof(*st));
    if (!st) {
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        return NULL;
    }
    pgferry__control__pipe_status__init(st);
    st->record = rec;
    mask_field(&rec->spec->source);
    mask_field(&rec->spec->dest_url);
    mask_field(&rec->last_error);
    if (history_limit > 0 &&
        !store_get_history(s->store, name, history_limit, &st->history, &st->n_history)) {
        st->history = NULL;
        st->n_history = 0;
    }
    for (size_t i = 0; i < st->n_history; i++)
        mask_field(&st->history[i]->reason);
    size_t nw = 0;
    for (size_t i = 0; i < proctable_count(s->procs); i++)
        nw += strcmp(proctable_at(s->procs, i)->pipe, name) == 0;
    if (nw > 0) {
        st->workers = calloc(nw, sizeof(*st->workers));
        for (size_t i = 0; st->workers && i < proctable_count(s->procs); i++) {
            proc_t *p = proctable_at(s->procs, i);
            if (strcmp(p->pipe, name) != 0)
                continue;
            Pgferry__Control__WorkerInfo *w = calloc(1, sizeof(*w));
            if (!w)
                break;
            pgferry__control__worker_info__init(w);
            w->pid = p->pid;
            w->role = strdup(names_role(p->role));
            w->started_us = p->started_us;
            w->activity = strdup(p->activity);
            st->workers[st->n_workers++] = w;
        }
    }
    pipe_rt_t *rt = sup_rt(s, name, false);
    st->next_restart_us = (rt && rt->restart_at_ms > 0) ? rt->restart_at_us : 0;
    if (rt && rt->slot) {
        st->slot = rt->slot; /* borrowed: free_status leaves it alone */
        st->slot_info_us = rt->slot_us;
        if (rt->wal_warned) {
            char warning[200];
            snprintf(warning, sizeof(warning),
                     "slot retains %.1f MB of WAL on the source (threshold %llu MB)",
                     (double)rt->slot->retained_bytes / 1048576.0,
                     (unsigned long long)s->cfg.retained_wal_warning_mb);
            char *w = strdup(warning);
            if (w)
                st->warning = w;
        }
    }
    if (rt)
        st->rows_per_second = sup_rt_rate(rt, time_mono_ms());
    st->lag_seconds =
        status_lag_seconds(rec->confirmed_lsn, rec->last_commit_time_us, st->slot, time_now_us());
    if (rt && rt->plan) {
        st->snapshot_ranges_total = (uint32_t)rt->plan->n_ranges;
        st->snapshot_ranges_done = (uint32_t)rt->ranges_done;
        st->snapshot_rows = rt->snapshot_rows;
        /* per table: ranges carry their table's index */
        size_t nt = rec->n_table_defs;
        st->table_progress = nt ? calloc(nt, sizeof(*st->table_progress)) : NULL;
        for (size_t t = 0; st->table_progress && t < nt; t++) {
            Pgferry__Control__TableProgress *tp = calloc(1, sizeof(*tp));
            if (!tp)
                break;
            pgferry__control__table_progress__init(tp);
            tp->table_index = (uint32_t)t;
            for (size_t r = 0; r < rt->plan->n_ranges; r++) {
                if (rt->plan->ranges[r]->table_index != t)
                    continue;
                tp->ranges_total++;
                if (rt->range_state[r] == RANGE_DONE) {
                    tp->ranges_done++;
                    tp->rows += rt->range_rows[r];
                }
            }
            st->table_progress[st->n_table_progress++] = tp;
        }
    }
    return st;
}
