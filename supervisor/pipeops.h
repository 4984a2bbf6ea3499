/*
 * pipeops: what several parts of pgferryd do to a pipe: state transitions and notes (with
 * their history events), which worker role a state needs, starting and stopping workers,
 * counting a worker's failure (backoff, Degraded, Failed), per-table statistics.
 */
#ifndef PGFERRY_PIPEOPS_H
#define PGFERRY_PIPEOPS_H

#include "sup_internal.h"
#include "errclass.h"
#include "roles.h"

/* Applies ev to rec through the lifecycle and persists the record with a history event.
 * On refusal writes the reason into err and changes nothing. */
bool sup_transition(supervisor_t *s, Pgferry__State__PipeRecord *rec, lifecycle_event_t ev,
                    const char *reason, char *err, size_t errlen);
/* Persists rec with a history event that records something without a state change. */
bool sup_note(supervisor_t *s, Pgferry__State__PipeRecord *rec, const char *reason);
/* Replaces a string field of a record. */
void sup_set_str(char **field, const char *v);
/* A worker made progress: failure counters and a transient error are cleared (not written). */
void sup_made_progress(Pgferry__State__PipeRecord *rec);
/* The worker role a pipe in this state needs, or ROLE_NONE. */
worker_role_t sup_desired_role(const Pgferry__State__PipeRecord *rec);
/* Stops every worker of a pipe (SIGTERM, SIGKILL after the grace period). */
void sup_stop_workers(supervisor_t *s, const char *pipe, const char *reason);
/* Stops the pipe's workers of one role (ROLE_NONE: every role), gracefully. */
void sup_stop_role(supervisor_t *s, const char *pipe, worker_role_t role, const char *reason);
/* Starts a worker of role for pipe (logged on failure). */
proc_t *sup_spawn_worker(supervisor_t *s, const char *pipe, worker_role_t role);
/* One failure of a pipe's worker without progress: counted, then Degraded, Failed or a restart
 * with backoff. ran_healthy: it worked for a while, this failure starts a new run. */
void sup_worker_failed(supervisor_t *s, const char *pipe, worker_role_t role, const char *what,
                       errclass_t cls, bool ran_healthy);
/* The record's statistics of one destination table (created on first use; the record owns
 * it, protobuf-c frees it with the record), and adding to them. */
Pgferry__State__TableStats *sup_table_stats(Pgferry__State__PipeRecord *rec, const char *target);
void sup_table_stats_add(Pgferry__State__PipeRecord *rec, const char *target, uint64_t ins,
                         uint64_t upd, uint64_t del, uint64_t bytes, uint64_t snap_rows,
                         uint64_t snap_bytes);

#endif
