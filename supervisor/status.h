/*
 * status: one pipe as status, list and metrics show it (control.proto's PipeStatus): the
 * record with secrets masked, history, workers, load progress, the last slot report, rows/s,
 * lag in seconds and warnings. control.c replies with it, metrics.c renders it.
 */
#ifndef PGFERRY_STATUS_H
#define PGFERRY_STATUS_H

#include "sup_internal.h"

/* The status of one pipe with its last history_limit events (0: none); NULL when it does not
 * exist or on error. Free with status_free. */
Pgferry__Control__PipeStatus *status_build(supervisor_t *s, const char *name, size_t history_limit);
void status_free(Pgferry__Control__PipeStatus *st);

/* A pipe's lag in seconds: 0 when caught up (the slot has nothing after the confirmed
 * position, or the confirmed position is at or past the source end the last slot report saw),
 * else the age of the last applied commit; -1 when unknown (no slot report yet, or nothing
 * applied). */
double status_lag_seconds(const char *confirmed_lsn, int64_t last_commit_us,
                          const Pgferry__Worker__SlotInfo *slot, int64_t now_us);

#endif
