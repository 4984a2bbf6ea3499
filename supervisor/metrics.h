/*
 * metrics: every pipe's state and counters in the Prometheus text exposition format (0.0.4),
 * for `pgferryctl metrics --prometheus` and the optional HTTP endpoint (metrics_listen), which
 * serves GET /metrics from the supervisor's loop.
 */
#ifndef PGFERRY_METRICS_H
#define PGFERRY_METRICS_H

#include "sup_internal.h"

/* The exposition text (malloc'd, caller frees), or NULL when out of memory. */
char *metrics_render(supervisor_t *s);

/* A label value as the exposition format wants it: backslash, double quote and newline escaped
 * (always terminated, truncated to fit). */
void metrics_label(const char *v, char *out, size_t outlen);

/* The HTTP endpoint: a listening socket on host:port (loopback unless configured otherwise). */
int metrics_listen(const char *hostport, char *err, size_t errlen);
/* Accepts one connection on fd and answers it (GET /metrics: 200 with the text; else 404). */
void metrics_serve_one(supervisor_t *s, int fd);

#endif
