/*
 * remote: the optional tcp:// control endpoint with ZeroMQ CURVE (the daemon's key pair) and
 * the ZAP handler that admits only the authorized client keys.
 */
#ifndef PGFERRY_REMOTE_H
#define PGFERRY_REMOTE_H

#include "sup_internal.h"

/* Opens the endpoint of cfg.control_remote; false (logged) when it cannot. */
bool remote_open(supervisor_t *s);
/* Answers one ZAP request waiting on s->zap. */
void remote_handle_zap(supervisor_t *s);
/* Says how many refused clients were left out of the log, once a minute or when stopping. */
void remote_tick(supervisor_t *s, bool stopping);

#endif
