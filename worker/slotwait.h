/*
 * slotwait: creating a logical replication slot waits until every transaction that was running
 * when it started has ended, a prepared one included, however old. This runs the creating
 * command without blocking the worker: while the server waits it asks, every few seconds on a
 * second connection, which transactions hold it back and reports them as the worker's
 * activity (status shows "waiting for prepared transaction 'gid' (prepared 59 s ago)"), and a
 * stop request cancels the command.
 */
#ifndef PGFERRY_SLOTWAIT_H
#define PGFERRY_SLOTWAIT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include "worker.h"

/* Runs sql (params may be NULL) on conn and returns its result (caller PQclear()s; check the
 * status), or NULL when a stop was requested (the command was cancelled; *stopped set) or the
 * connection failed. conninfo opens the second connection. */
PGresult *slotwait_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
                        const char *conninfo, worker_t *w, bool *stopped);

/* The blockers as one sentence ("" when none) from a connection to the source: prepared
 * transactions with gid and age, then other open transactions (pid, user@db, age). */
void slotwait_blockers(PGconn *conn, char *out, size_t outlen);

#endif
