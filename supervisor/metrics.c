/* metrics: Prometheus exposition of the pipes, and a minimal HTTP responder for it. */
#include "metrics.h"
#include "lsn.h"
#include "buf.h"
#include "log.h"
#include "names.h"
#include "timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void
put(buf_t *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void
metrics_label(const char *v, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = v; *p && o + 3 < outlen; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

typedef struct {
    const char *name, *type, *help;
} family_t;

static const family_t FAMILIES[] = {
    {"pgferry_pipes", "gauge", "Pipes this pgferryd manages."},
    {"pgferry_pipe_state", "gauge", "1 for the state the pipe is in, 0 for the others."},
    {"pgferry_pipe_state_since_seconds", "gauge", "Unix time the pipe entered its state."},
    {"pgferry_rows_total", "counter", "Rows applied to a destination table, by operation."},
    {"pgferry_bytes_total", "counter", "RowBinary bytes inserted into a destination table."},
    {"pgferry_transactions_total", "counter", "Source transactions applied by CDC."},
    {"pgferry_lag_bytes", "gauge",
     "WAL between the source's position and the slot's confirmed one."},
    {"pgferry_lag_seconds", "gauge", "Age of the last applied commit (0 when caught up)."},
    {"pgferry_slot_retained_wal_bytes", "gauge", "WAL the pipe's slot keeps on the source."},
    {"pgferry_worker_restarts_total", "counter", "Worker restarts after failures."},
    {"pgferry_workers", "gauge", "Worker processes running for the pipe."},
    {"pgferry_rows_per_second", "gauge", "Changes applied per second over the last minute."},
};
#define NFAM (sizeof(FAMILIES) / sizeof(FAMILIES[0]))

char *
metrics_render(supervisor_t *s)
{
    char **names;
    size_t n;
    if (!store_list_names(s->store, &names, &n))
        return NULL;
    buf_t fam[NFAM];
    for (size_t f = 0; f < NFAM; f++) {
        buf_init(&fam[f]);
        put(&fam[f], "# HELP %s %s\n# TYPE %s %s\n", FAMILIES[f].name, FAMILIES[f].help,
            FAMILIES[f].name, FAMILIES[f].type);
    }
    put(&fam[0], "pgferry_pipes %zu\n", n);
    int64_t now_ms = time_mono_ms(), now_us = time_now_us();
    for (size_t i = 0; i < n; i++) {
        Pgferry__State__PipeRecord *rec = NULL;
        if (!store_get_pipe(s->store, names[i], &rec) || !rec)
            continue;
        char pl[200];
        metrics_label(names[i], pl, sizeof(pl));
        for (int st = 1; st < ST_COUNT; st++)
            put(&fam[1], "pgferry_pipe_state{pipe=\"%s\",state=\"%s\"} %d\n", pl,
                names_state((pipe_state_t)st), (int)rec->state == st);
        put(&fam[2], "pgferry_pipe_state_since_seconds{pipe=\"%s\"} %.3f\n", pl,
            (double)rec->state_since_us / 1e6);
        for (size_t t = 0; t < rec->n_table_stats; t++) {
            const Pgferry__State__TableStats *ts = rec->table_stats[t];
            char tl[600];
            metrics_label(ts->target, tl, sizeof(tl));
            put(&fam[3], "pgferry_rows_total{pipe=\"%s\",table=\"%s\",op=\"snapshot\"} %llu\n", pl,
                tl, (unsigned long long)ts->snapshot_rows);
            put(&fam[3], "pgferry_rows_total{pipe=\"%s\",table=\"%s\",op=\"insert\"} %llu\n", pl,
                tl, (unsigned long long)ts->inserts);
            put(&fam[3], "pgferry_rows_total{pipe=\"%s\",table=\"%s\",op=\"update\"} %llu\n", pl,
                tl, (unsigned long long)ts->updates);
            put(&fam[3], "pgferry_rows_total{pipe=\"%s\",table=\"%s\",op=\"delete\"} %llu\n", pl,
                tl, (unsigned long long)ts->deletes);
            put(&fam[4], "pgferry_bytes_total{pipe=\"%s\",table=\"%s\",op=\"snapshot\"} %llu\n", pl,
                tl, (unsigned long long)ts->snapshot_bytes);
            put(&fam[4], "pgferry_bytes_total{pipe=\"%s\",table=\"%s\",op=\"cdc\"} %llu\n", pl, tl,
                (unsigned long long)ts->bytes);
        }
        put(&fam[5], "pgferry_transactions_total{pipe=\"%s\"} %llu\n", pl,
            (unsigned long long)rec->cdc_transactions);
        pipe_rt_t *rt = sup_rt(s, names[i], false);
        if (rt && rt->slot) {
            put(&fam[6], "pgferry_lag_bytes{pipe=\"%s\"} %llu\n", pl,
                (unsigned long long)rt->slot->lag_bytes);
            put(&fam[8], "pgferry_slot_retained_wal_bytes{pipe=\"%s\"} %llu\n", pl,
                (unsigned long long)rt->slot->retained_bytes);
            double lag_s =
                metrics_lag_seconds(rec->confirmed_lsn, rec->last_commit_time_us, rt->slot, now_us);
            if (lag_s >= 0)
                put(&fam[7], "pgferry_lag_seconds{pipe=\"%s\"} %.3f\n", pl, lag_s);
        }
        put(&fam[9], "pgferry_worker_restarts_total{pipe=\"%s\"} %u\n", pl, rec->worker_restarts);
        put(&fam[10], "pgferry_workers{pipe=\"%s\"} %zu\n", pl,
            proctable_count_pipe(s->procs, names[i], ROLE_NONE));
        put(&fam[11], "pgferry_rows_per_second{pipe=\"%s\"} %.3f\n", pl,
            rt ? sup_rt_rate(rt, now_ms) : 0.0);
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
    }
    store_free_names(names, n);
    buf_t out;
    buf_init(&out);
    for (size_t f = 0; f < NFAM; f++) {
        buf_append(&out, fam[f].data, fam[f].len);
        buf_free(&fam[f]);
    }
    buf_byte(&out, '\0');
    if (out.oom) {
        buf_free(&out);
        return NULL;
    }
    return (char *)out.data;
}

int
metrics_listen(const char *hostport, char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(hostport, ':');
    if (!colon) {
        snprintf(err, errlen, "metrics_listen '%s' is not HOST:PORT", hostport);
        return -1;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : "127.0.0.1", colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "metrics_listen %s: %s", hostport, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        snprintf(err, errlen, "metrics_listen %s: %s", hostport, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

double
metrics_lag_seconds(const char *confirmed_lsn, int64_t last_commit_us,
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

char *
metrics_http_handler(void *ud, const char *line, const char **status)
{
    if (strncmp(line, "GET /metrics ", 13) == 0 || strncmp(line, "GET /metrics?", 13) == 0 ||
        strcmp(line, "GET /metrics") == 0) {
        *status = "200 OK";
        return metrics_render(ud);
    }
    *status = "404 Not Found";
    return strdup("only /metrics is served\n");
}
