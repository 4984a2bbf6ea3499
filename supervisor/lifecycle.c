/*
 * lifecycle: the transition table. Pure: no I/O, no clock, no allocation.
 */
#include "lifecycle.h"
#include "names.h"

#include <stdio.h>
#include <string.h>

static const char *const event_names[LC_EVENT_COUNT] = {
    "validated", "validation-failed", "setup-done",    "snapshot-done", "pause",  "paused",
    "resume",    "add-tables",        "remove-tables", "modified",      "resync", "swap-done",
    "degraded",  "recovered",         "fatal",         "drop"};

const char *
lifecycle_event_name(lifecycle_event_t ev)
{
    return (ev >= 0 && ev < LC_EVENT_COUNT) ? event_names[ev] : "?";
}

/* States in which a worker does work that can keep failing TRANSIENT. DESIGN names Running
 * and Snapshot; Provisioning, Setup and Resync have workers too (see ARCHITECTURE.md). */
static bool
has_worker(pipe_state_t s)
{
    return s == ST_PROVISIONING || s == ST_SETUP || s == ST_SNAPSHOT || s == ST_RUNNING ||
           s == ST_RESYNC;
}

/* The state ev leads to from p, or ST_NONE when ev is not allowed there. For LC_CMD_DROP the
 * result is ST_NONE on success as well, so drop is handled by the caller. */
static bool
target(const lifecycle_pipe_t *p, lifecycle_event_t ev, pipe_state_t *to)
{
    pipe_state_t s = p->state;
    switch (ev) {
    case LC_EV_VALIDATED:
        *to = ST_SETUP;
        return s == ST_PROVISIONING;
    case LC_EV_VALIDATION_FAILED:
        *to = ST_FAILED;
        return s == ST_PROVISIONING;
    case LC_EV_SETUP_DONE:
        *to = p->mode == MODE_CDC_ONLY ? ST_RUNNING : ST_SNAPSHOT;
        return s == ST_SETUP;
    case LC_EV_SNAPSHOT_DONE:
        if (p->resyncing)
            *to = ST_RESYNC;
        else
            *to = p->mode == MODE_SNAPSHOT_ONLY ? ST_COMPLETED : ST_RUNNING;
        return s == ST_SNAPSHOT;
    case LC_CMD_PAUSE:
        *to = ST_PAUSING;
        return s == ST_RUNNING;
    case LC_EV_PAUSED:
        *to = ST_PAUSED;
        return s == ST_PAUSING;
    case LC_CMD_RESUME:
        *to = ST_RUNNING;
        return s == ST_PAUSED;
    case LC_CMD_ADD_TABLES:
        *to = ST_SNAPSHOT;
        return s == ST_RUNNING || s == ST_PAUSED;
    case LC_CMD_REMOVE_TABLES:
        /* also the way out of Failed after a source table was dropped: without it the pipe
         * streams the other tables again (a snapshot-only pipe has nothing to stream) */
        *to = ST_MODIFYING;
        return s == ST_RUNNING || s == ST_PAUSED ||
               (s == ST_FAILED && p->mode != MODE_SNAPSHOT_ONLY);
    case LC_EV_MODIFIED:
        *to = p->prev_state;
        return s == ST_MODIFYING && (p->prev_state == ST_RUNNING || p->prev_state == ST_PAUSED);
    case LC_CMD_RESYNC:
        *to = ST_SNAPSHOT;
        return s == ST_RUNNING || s == ST_PAUSED || s == ST_FAILED || s == ST_DEGRADED ||
               s == ST_COMPLETED;
    case LC_EV_SWAP_DONE:
        *to = p->mode == MODE_SNAPSHOT_ONLY ? ST_COMPLETED : ST_RUNNING;
        return s == ST_RESYNC;
    case LC_EV_DEGRADED:
        *to = ST_DEGRADED;
        return has_worker(s);
    case LC_EV_RECOVERED:
        *to = p->prev_state;
        return s == ST_DEGRADED && has_worker(p->prev_state);
    case LC_EV_FATAL:
        *to = ST_FAILED;
        return s != ST_NONE && s != ST_FAILED;
    case LC_CMD_DROP:
        *to = ST_NONE;
        return s != ST_NONE;
    default:
        *to = ST_NONE;
        return false;
    }
}

bool
lifecycle_apply(lifecycle_pipe_t *p, lifecycle_event_t ev, char *err, size_t errlen)
{
    pipe_state_t to;
    if (ev < 0 || ev >= LC_EVENT_COUNT) {
        snprintf(err, errlen, "unknown lifecycle event %d", (int)ev);
        return false;
    }
    if (!target(p, ev, &to)) {
        /* name every state that would have allowed it, for the operator */
        char allowed[256] = "";
        for (int s = ST_PROVISIONING; s < ST_COUNT; s++) {
            lifecycle_pipe_t probe = *p;
            pipe_state_t t;
            probe.state = (pipe_state_t)s;
            if (target(&probe, ev, &t)) {
                size_t l = strlen(allowed);
                snprintf(allowed + l, sizeof(allowed) - l, "%s%s", l ? ", " : "",
                         names_state((pipe_state_t)s));
            }
        }
        snprintf(err, errlen, "cannot %s: the pipe is %s (allowed in: %s)",
                 lifecycle_event_name(ev), names_state(p->state), allowed[0] ? allowed : "none");
        return false;
    }
    switch (ev) {
    case LC_CMD_REMOVE_TABLES:
        p->prev_state = p->state == ST_FAILED ? ST_RUNNING : p->state;
        break;
    case LC_EV_DEGRADED:
        p->prev_state = p->state;
        break;
    case LC_EV_MODIFIED:
    case LC_EV_RECOVERED:
        p->prev_state = ST_NONE;
        break;
    case LC_CMD_RESYNC:
        p->resyncing = true;
        p->prev_state = ST_NONE;
        break;
    case LC_EV_SWAP_DONE:
        p->resyncing = false;
        break;
    case LC_EV_FATAL:
        p->prev_state = ST_NONE;
        p->resyncing = false;
        break;
    default:
        break;
    }
    p->state = to;
    return true;
}
