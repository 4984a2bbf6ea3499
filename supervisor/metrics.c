/* metrics: Prometheus exposition of the pipes, and a minimal HTTP responder for it. */
#include "metrics.h"
#include "status.h"
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
metrics_render_statuses(Pgferry__Control__PipeStatus *const *sts, size_t n)
{
    buf_t fam[NFAM];
    for (size_t f = 0; f < NFAM; f++) {
        buf_init(&fam[f]);
        put(&fam[f], "# HELP %s %s\n# TYPE %s %s\n", FAMILIES[f].name, FAMILIES[f].help,
            FAMILIES[f].name, FAMILIES[f].type);
    }
    put(&fam[0], "pgferry_pipes %zu\n", n);
    for (size_t i = 0; i < n; i++) {
        const Pgferry__Control__PipeStatus *st = sts[i];
        const Pgferry__State__PipeRecord *rec = st->record;
        char pl[200];
        metrics_label(rec->spec->name, pl, sizeof(pl));
        for (int k = 1; k < ST_COUNT; k++)
            put(&fam[1], "pgferry_pipe_state{pipe=\"%s\",state=\"%s\"} %d\n", pl,
                names_state((pipe_state_t)k), (int)rec->state == k);
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
        if (st->slot) {
            put(&fam[6], "pgferry_lag_bytes{pipe=\"%s\"} %llu\n", pl,
                (unsigned long long)st->slot->lag_bytes);
            put(&fam[8], "pgferry_slot_retained_wal_bytes{pipe=\"%s\"} %llu\n", pl,
                (unsigned long long)st->slot->retained_bytes);
        }
        if (st->lag_seconds >= 0)
            put(&fam[7], "pgferry_lag_seconds{pipe=\"%s\"} %.3f\n", pl, st->lag_seconds);
        put(&fam[9], "pgferry_worker_restarts_total{pipe=\"%s\"} %u\n", pl, rec->worker_restarts);
        put(&fam[10], "pgferry_workers{pipe=\"%s\"} %zu\n", pl, st->n_workers);
        put(&fam[11], "pgferry_rows_per_second{pipe=\"%s\"} %.3f\n", pl, st->rows_per_second);
    }
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

char *
metrics_render(supervisor_t *s)
{
    char **names;
    size_t n;
    if (!store_list_names(s->store, &names, &n))
        return NULL;
    Pgferry__Control__PipeStatus **sts = calloc(n ? n : 1, sizeof(*sts));
    size_t k = 0;
    for (size_t i = 0; sts && i < n; i++) {
        Pgferry__Control__PipeStatus *st = status_build(s, names[i], 0);
        if (st)
            sts[k++] = st;
    }
    store_free_names(names, n);
    char *text = sts ? metrics_render_statuses(sts, k) : NULL;
    for (size_t i = 0; i < k; i++)
        status_free(sts[i]);
    free(sts);
    return text;
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
