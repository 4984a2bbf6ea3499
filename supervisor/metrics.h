/*
 * metrics: every pipe's state and counters in the Prometheus text exposition format (0.0.4),
 * for `pgferryctl metrics --prometheus` and the optional HTTP endpoint (metrics_listen), which
 * serves GET /metrics from the supervisor's loop without blocking it (httpd.c).
 */
#ifndef PGFERRY_METRICS_H
#define PGFERRY_METRICS_H

#include "sup_internal.h"

/* The exposition text (malloc'd, caller frees), or NULL when out of memory. */
char *metrics_render(supervisor_t *s);

/* A label value as the exposition format wants it: backslash, double quote and newline escaped
 * (always terminated, truncated to fit). */
void metrics_label(const char *v, char *out, size_t outlen);

/* A pipe's lag in seconds for status and metrics: 0 when caught up (the slot has nothing after
 * the confirmed position, or the confirmed position is at or past the source end the last slot
 * report saw), else the age of the last applied commit; -1 when unknown (no slot report yet, or
 * nothing applied). */
double metrics_lag_seconds(const char *confirmed_lsn, int64_t last_commit_us,
                           const Pgferry__Worker__SlotInfo *slot, int64_t now_us);

/* The HTTP endpoint: a listening socket on host:port (loopback unless configured otherwise),
 * non-blocking, served by httpd. */
int metrics_listen(const char *hostport, char *err, size_t errlen);
/* httpd's handler (ud = the supervisor): GET /metrics gets the text, anything else 404. */
char *metrics_http_handler(void *ud, const char *request_line, const char **status);

#endif
