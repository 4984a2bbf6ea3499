/*
 * lifecycle: the pipe state machine of DESIGN section 4, in one pure function. Every state
 * change in the supervisor goes through lifecycle_apply(); nothing else assigns a state.
 */
#ifndef PGFERRY_LIFECYCLE_H
#define PGFERRY_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include "state.pb-c.h"

typedef Pgferry__State__PipeState pipe_state_t;
typedef Pgferry__State__PipeMode pipe_mode_t;

#define ST_NONE PGFERRY__STATE__PIPE_STATE__PIPE_STATE_NONE
#define ST_PROVISIONING PGFERRY__STATE__PIPE_STATE__PROVISIONING
#define ST_SETUP PGFERRY__STATE__PIPE_STATE__SETUP
#define ST_SNAPSHOT PGFERRY__STATE__PIPE_STATE__SNAPSHOT
#define ST_RUNNING PGFERRY__STATE__PIPE_STATE__RUNNING
#define ST_PAUSING PGFERRY__STATE__PIPE_STATE__PAUSING
#define ST_PAUSED PGFERRY__STATE__PIPE_STATE__PAUSED
#define ST_MODIFYING PGFERRY__STATE__PIPE_STATE__MODIFYING
#define ST_RESYNC PGFERRY__STATE__PIPE_STATE__RESYNC
#define ST_COMPLETED PGFERRY__STATE__PIPE_STATE__COMPLETED
#define ST_FAILED PGFERRY__STATE__PIPE_STATE__FAILED
#define ST_DEGRADED PGFERRY__STATE__PIPE_STATE__DEGRADED
#define ST_COUNT 12 /* ST_NONE .. ST_DEGRADED */

#define MODE_SNAPSHOT_CDC PGFERRY__STATE__PIPE_MODE__SNAPSHOT_CDC
#define MODE_SNAPSHOT_ONLY PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY
#define MODE_CDC_ONLY PGFERRY__STATE__PIPE_MODE__CDC_ONLY

typedef enum {
    LC_EV_VALIDATED = 0,     /* Provisioning: source and destination checks passed */
    LC_EV_VALIDATION_FAILED, /* Provisioning: a check failed */
    LC_EV_SETUP_DONE,        /* Setup: definitions recorded, destination tables created */
    LC_EV_SNAPSHOT_DONE,     /* Snapshot: initial load finished */
    LC_CMD_PAUSE,
    LC_EV_PAUSED, /* Pausing: CDC worker acknowledged its last batch and exited */
    LC_CMD_RESUME,
    LC_CMD_ADD_TABLES,
    LC_CMD_REMOVE_TABLES,
    LC_EV_MODIFIED, /* Modifying: tables left the publication */
    LC_CMD_RESYNC,
    LC_EV_SWAP_DONE, /* Resync: _resync tables swapped in */
    LC_EV_DEGRADED,  /* a worker keeps failing with TRANSIENT errors */
    LC_EV_RECOVERED, /* the retried worker made progress */
    LC_EV_FATAL,     /* FATAL error or retries exhausted */
    LC_CMD_DROP,
    LC_EVENT_COUNT
} lifecycle_event_t;

typedef struct {
    pipe_state_t state;
    pipe_state_t prev_state; /* where Degraded and Modifying return to */
    pipe_mode_t mode;
    bool resyncing; /* the current Snapshot belongs to a resync */
} lifecycle_pipe_t;

/* Applies ev to p. On success updates p and returns true; on refusal leaves p alone and
 * writes a sentence naming the current state and the states that allow ev into err. */
bool lifecycle_apply(lifecycle_pipe_t *p, lifecycle_event_t ev, char *err, size_t errlen);

const char *lifecycle_event_name(lifecycle_event_t ev);

#endif
