/*
 * worker: the worker process's side of the supervisor channel (DEALER): Hello, waiting for
 * the Assignment, and the reports (Progress, Checkpoint, Done, Error). Also owns the stop
 * flag set by SIGTERM/SIGINT or a Stop message.
 */
#ifndef PGFERRY_WORKER_H
#define PGFERRY_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "errclass.h"
#include "roles.h"
#include "worker.pb-c.h"

typedef struct worker worker_t;

#include "chclient.h"
#include "chcluster.h"
#include "state.pb-c.h"

/* The ClickHouse client for a pipe's destination (URL, user, password file or variable). */
ch_client_t *worker_dest_client(const Pgferry__State__PipeSpec *spec, char *err, size_t errlen);
/* The pipe's cluster layout (chcluster.h). */
void worker_cluster(const Pgferry__State__PipeSpec *spec, chcluster_t *cl);
/* The ClickHouse settings of the pipe's requests ("" on one node); quorum adds the pipe's
 * insert_quorum (CDC's inserts: what is acknowledged to the source). */
void worker_dest_settings(const Pgferry__State__PipeSpec *spec, bool quorum, char *out,
                          size_t outlen);
/* On a cluster, waits until the replica of target's data table at the endpoint in use has
 * every part the replication log names (SYSTEM SYNC REPLICA): run before reading what was
 * written, by this process through another endpoint or by another process. No-op on one node. */
errclass_t worker_sync_replica(ch_client_t *ch, const chcluster_t *cl, const char *db,
                               const char *target, char *err, size_t errlen);

/* Installs the stop-signal handlers (SIGTERM, SIGINT). With exit_at_once the process exits
 * inside the handler (for roles that hold nothing worth finishing, e.g. provisioning, which
 * may be blocked in a connect); otherwise the handler only sets the stop flag. */
void worker_install_signals(bool exit_at_once);

/* Connects to the supervisor and says Hello. NULL with err set on failure. */
worker_t *worker_connect(const char *endpoint, const char *pipe, worker_role_t role, char *err,
                         size_t errlen);
/* Flushes pending reports (bounded) and closes. */
void worker_destroy(worker_t **w);

/* Waits for the Assignment. Returns it (caller frees with
 * pgferry__worker__supervisor_message__free_unpacked) or NULL on Stop, signal or timeout. */
Pgferry__Worker__SupervisorMessage *worker_await_assignment(worker_t *w, int timeout_ms);

/* True once a stop was requested; polls the socket without blocking. */
bool worker_should_stop(worker_t *w);

/* CDC: the position up to which the supervisor has stored the Applied reports (with their
 * counters), as it last said (worker_should_stop reads what arrived); 0 before it said. The
 * slot is confirmed no further. */
uint64_t worker_stored_lsn(const worker_t *w);
/* Waits up to timeout_ms until the supervisor says it stored up to lsn (also after a stop). */
bool worker_await_stored(worker_t *w, uint64_t lsn, int timeout_ms);

/* Waits up to timeout_ms for a stop request (signal or Stop message); true once requested. */
bool worker_wait_stop(worker_t *w, int timeout_ms);

bool worker_send_plan(worker_t *w, Pgferry__Worker__SnapshotPlan *plan);
/* CDC: the server it streams from ("host:port, timeline N"), once per connection */
bool worker_send_source_server(worker_t *w, const char *server);
/* A history note for the pipe (the supervisor does not repeat one of its recent events) */
bool worker_send_note(worker_t *w, const char *note);
bool worker_send_progress(worker_t *w, uint64_t rows, uint64_t bytes, const char *lsn,
                          const char *detail);
bool worker_send_done(worker_t *w, Pgferry__Worker__Done *done);
bool worker_send_applied(worker_t *w, Pgferry__Worker__Applied *a);
bool worker_send_definitions(worker_t *w, Pgferry__State__TableDef **tables, size_t n,
                             const char *reason);
bool worker_send_slot(worker_t *w, Pgferry__Worker__SlotInfo *si);
bool worker_send_error(worker_t *w, errclass_t cls, const char *message);

#endif
