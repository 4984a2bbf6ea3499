/*
 * reconcile: starts the workers each pipe's state asks for (one role per state, range workers
 * for a load's pending ranges) and stops the workers nobody needs.
 */
#ifndef PGFERRY_RECONCILE_H
#define PGFERRY_RECONCILE_H

#include "sup_internal.h"

/* One pass over every pipe; returns the earliest pending restart deadline (monotonic ms) or
 * -1. */
int64_t reconcile(supervisor_t *s);

#endif
