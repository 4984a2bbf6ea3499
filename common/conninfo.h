/*
 * conninfo: checks a PostgreSQL connection string (a postgresql:// URI or key=value pairs) the
 * way libpq would read it, without libpq: pgferryd refuses a malformed source at `create` with
 * the reason instead of retrying it forever. No connection is made.
 */
#ifndef PGFERRY_CONNINFO_H
#define PGFERRY_CONNINFO_H

#include <stdbool.h>
#include <stddef.h>

/* True when s parses as libpq would parse it: known keywords, balanced quotes, integer ports
 * (one per host of a multi-host string) and valid percent-escapes. Otherwise false with the
 * reason in err (the string itself is not echoed: it may hold a password). */
bool conninfo_check(const char *s, char *err, size_t errlen);

/* The file-valued keywords of a string conninfo_check accepted: passfile, service, sslkey and
 * sslcert are refused (a control client chooses the string); sslrootcert and sslcrl must be
 * files inside secrets_dir, sslcrldir secrets_dir or a directory inside it. Checked at create
 * and again by the worker (on libpq's own parse) before it connects. */
bool conninfo_check_files(const char *s, const char *secrets_dir, char *err, size_t errlen);
/* One keyword and value of that rule. */
bool conninfo_file_keyword_check(const char *key, const char *val, const char *secrets_dir,
                                 char *err, size_t errlen);

#endif
