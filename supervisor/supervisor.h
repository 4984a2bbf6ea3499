/*
 * supervisor: pgferryd's event loop. Owns the state store, the control and worker sockets,
 * the worker processes and every pipe state transition. The only LMDB writer.
 */
#ifndef PGFERRY_SUPERVISOR_H
#define PGFERRY_SUPERVISOR_H

#include <stdbool.h>
#include "daemon_config.h"

typedef struct supervisor supervisor_t;

/* Opens the store, binds the sockets, takes the state directory lock. NULL on failure
 * (logged). */
supervisor_t *supervisor_new(const daemon_config_t *cfg);
/* Runs until SIGTERM/SIGINT; stops all workers before returning. Returns an exit code. */
int supervisor_run(supervisor_t *s);
void supervisor_destroy(supervisor_t **s);

#endif
