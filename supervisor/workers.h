/*
 * workers: pgferryd's side of the worker channel (Hello -> Assignment, Progress, Done, Error,
 * Applied, SlotInfo, Definitions, Plan; the next range for a range worker) and of worker
 * exits (reaped, then judged once their last messages are read).
 */
#ifndef PGFERRY_WORKERS_H
#define PGFERRY_WORKERS_H

#include "sup_internal.h"

/* Handles one message waiting on the worker socket, if any. */
void workers_handle_message(supervisor_t *s);
/* Reaps exited children (after SIGCHLD). */
void workers_reap(supervisor_t *s);
/* Judges exited workers: a clean finish, an exit that was asked for, or a failure to count;
 * now_all: also those whose trailing messages have not come (shutdown). */
void workers_settle(supervisor_t *s, bool now_all);

#endif
