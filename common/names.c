/* names: lookup tables only. */
#include "names.h"

#include <string.h>

const char *
names_state(Pgferry__State__PipeState s)
{
    switch (s) {
    case PGFERRY__STATE__PIPE_STATE__PROVISIONING:
        return "Provisioning";
    case PGFERRY__STATE__PIPE_STATE__SETUP:
        return "Setup";
    case PGFERRY__STATE__PIPE_STATE__SNAPSHOT:
        return "Snapshot";
    case PGFERRY__STATE__PIPE_STATE__RUNNING:
        return "Running";
    case PGFERRY__STATE__PIPE_STATE__PAUSING:
        return "Pausing";
    case PGFERRY__STATE__PIPE_STATE__PAUSED:
        return "Paused";
    case PGFERRY__STATE__PIPE_STATE__MODIFYING:
        return "Modifying";
    case PGFERRY__STATE__PIPE_STATE__RESYNC:
        return "Resync";
    case PGFERRY__STATE__PIPE_STATE__COMPLETED:
        return "Completed";
    case PGFERRY__STATE__PIPE_STATE__FAILED:
        return "Failed";
    case PGFERRY__STATE__PIPE_STATE__DEGRADED:
        return "Degraded";
    default:
        return "(none)";
    }
}

static const char *const mode_names[] = {"snapshot+cdc", "snapshot-only", "cdc-only"};

const char *
names_mode(Pgferry__State__PipeMode m)
{
    return (m >= 0 && m <= 2) ? mode_names[m] : "?";
}

bool
names_parse_mode(const char *s, Pgferry__State__PipeMode *out)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (Pgferry__State__PipeMode)i;
            return true;
        }
    }
    return false;
}

const char *
names_error_class(Pgferry__State__ErrorClass c)
{
    switch (c) {
    case PGFERRY__STATE__ERROR_CLASS__TRANSIENT:
        return "TRANSIENT";
    case PGFERRY__STATE__ERROR_CLASS__FATAL:
        return "FATAL";
    default:
        return "";
    }
}

static const char *const role_names[] = {
    "?",   "provision", "setup",   "snapshot", "snapshot-range",
    "cdc", "swap",      "monitor", "verify",   "teardown"};

const char *
names_role(Pgferry__Worker__WorkerRole r)
{
    size_t i = (size_t)r;
    return i < sizeof(role_names) / sizeof(role_names[0]) ? role_names[i] : "?";
}

bool
names_parse_role(const char *s, Pgferry__Worker__WorkerRole *out)
{
    for (size_t i = 1; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (Pgferry__Worker__WorkerRole)i;
            return true;
        }
    }
    return false;
}
