/*
 * teardown: what dropping a pipe removes outside pgferryd: the pipe's own replication slot and
 * publication on the source (a user's are left alone) and, when asked, its destination tables
 * and views (and the database once empty). Runs in a `teardown` worker that pgferryd starts
 * once the pipe's other workers are gone (so pgferryd itself never waits on a database); every
 * step is attempted, and what could not be removed is described with the command that removes
 * it by hand.
 */
#ifndef PGFERRY_TEARDOWN_H
#define PGFERRY_TEARDOWN_H

#include <stdbool.h>
#include <stddef.h>
#include "state.pb-c.h"

/* Returns true when everything was removed; report gets one sentence per step (what was
 * removed, or what was left and why). */
bool teardown_pipe(const Pgferry__State__PipeSpec *spec, bool source_objects,
                   Pgferry__State__TableDef *const *defs, size_t ndefs, bool drop_destination,
                   char *report, size_t reportlen);

/* Tables leaving a pipe: out of its own publication (a user's is left alone; changes of
 * removed tables are then ignored), and with drop_destination their ClickHouse tables and
 * views dropped. defs[i] are the removed tables' definitions. */
bool teardown_tables(const Pgferry__State__PipeSpec *spec, bool source_objects,
                     Pgferry__State__TableDef *const *defs, size_t n, bool drop_destination,
                     char *report, size_t reportlen);

#endif
