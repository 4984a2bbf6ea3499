/*
 * conninfo: checks a PostgreSQL connection string (a postgresql:// URI or key=value pairs) the
 * way libpq would read it, without libpq: pgferryd refuses a malformed source at `create` with
 * the reason instead of retrying it forever. Pure; no connection is made.
 */
#ifndef PGFERRY_CONNINFO_H
#define PGFERRY_CONNINFO_H

#include <stdbool.h>
#include <stddef.h>

/* True when s parses as libpq would parse it: known keywords, balanced quotes, integer ports
 * (one per host of a multi-host string) and valid percent-escapes. Otherwise false with the
 * reason in err (the string itself is not echoed: it may hold a password). */
bool conninfo_check(const char *s, char *err, size_t errlen);

#endif
