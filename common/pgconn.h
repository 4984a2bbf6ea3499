/*
 * pgconn: opening libpq connections the way every pgferry process needs them
 * (application_name, connect timeout, optional replication mode) and classifying failures.
 * PGresult and ConnStatusType become errclass_t here.
 */
#ifndef PGFERRY_PGCONN_H
#define PGFERRY_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include "errclass.h"

/* Session settings of every pgferry connection (they override the user's `options`). */
#define PGCONN_PINNED_OPTIONS                                                                      \
    "-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=3 "          \
    "-c bytea_output=hex"

/* Connects to conninfo (URI or key=value). Returns NULL with err/cls set on failure. */
PGconn *pgconn_connect(const char *conninfo, const char *app_name, bool replication,
                       errclass_t *cls, char *err, size_t errlen);

/* Classifies a failed result by SQLSTATE: connection/resource problems are TRANSIENT,
 * the rest (missing objects, privileges, syntax) FATAL. */
errclass_t pgconn_classify(const PGresult *res, PGconn *conn);

/* The server's message of a failed result on one line (the primary message; the connection's
 * message when there is no result), written into out. */
const char *pgconn_message(const PGresult *res, PGconn *conn, char *out, size_t outlen);

/* Whether a failure is PostgreSQL refusing to build a value over its 1 GB limit (a bytea over
 * 512 MB has a hex text form over 1 GB): no retry helps. */
bool pgconn_too_large(const PGresult *res);

/* Runs a query that returns rows (params may be NULL). On failure logs nothing, writes
 * "context: server message" into err, sets *cls and returns NULL. Caller PQclear()s. */
PGresult *pgconn_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                       errclass_t *cls, char *err, size_t errlen);

#endif
