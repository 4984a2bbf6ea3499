/*
 * metrics: every pipe's state and counters in the Prometheus text exposition format (0.0.4),
 * for `pgferryctl metrics --prometheus` and the optional HTTP endpoint (metrics_listen), which
 * serves GET /metrics from the supervisor's loop without blocking it (httpd.c).
 */
#ifndef PGFERRY_METRICS_H
#define PGFERRY_METRICS_H

#include "sup_internal.h"

/* The exposition text of every pipe (malloc'd, caller frees), or NULL when out of memory. */
char *metrics_render(supervisor_t *s);
/* The same from pipes' statuses (status.c), without the daemon: what metrics_render prints. */
char *metrics_render_statuses(Pgferry__Control__PipeStatus *const *sts, size_t n);

/* A label value as the exposition format wants it: backslash, double quote and newline escaped
 * (always terminated, truncated to fit). */
void metrics_label(const char *v, char *out, size_t outlen);

/* The HTTP endpoint: a listening socket on host:port (loopback unless configured otherwise),
 * non-blocking, served by httpd. */
int metrics_listen(const char *hostport, char *err, size_t errlen);
/* httpd's handler (ud = the supervisor): GET /metrics gets the text, anything else 404. */
char *metrics_http_handler(void *ud, const char *request_line, const char **status);

#endif
