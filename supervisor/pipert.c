/* pipert: the runtime entries of pipes (see pipert.h). */
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

void
sup_rt_free(pipe_rt_t *rt)
{
    sup_rt_clear_plan(rt);
    pending_forget(&rt->verify_reply);
    pending_forget(&rt->teardown_reply);
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
            sup_rt_free(&s->rt[i]);
            s->rt[i] = s->rt[--s->nrt];
            return;
        }
    }
}

void
pending_forget(pending_reply_t *p)
{
    for (int i = 0; i < p->npre; i++)
        zmq_msg_close(&p->pre[i]);
    p->npre = 0;
}
