/* names: the printable names of pipe states, modes and error classes, and back. */
#ifndef PGFERRY_NAMES_H
#define PGFERRY_NAMES_H

#include <stdbool.h>
#include "state.pb-c.h"
#include "worker.pb-c.h"

const char *names_state(Pgferry__State__PipeState s);
const char *names_mode(Pgferry__State__PipeMode m);
bool names_parse_mode(const char *s, Pgferry__State__PipeMode *out);
const char *names_error_class(Pgferry__State__ErrorClass c);
/* Worker roles: "provision", "setup", "snapshot", "snapshot-range", "cdc", "swap", "monitor",
 * "verify", "teardown" ("?" for anything else), and back (false for an unknown name). */
const char *names_role(Pgferry__Worker__WorkerRole r);
bool names_parse_role(const char *s, Pgferry__Worker__WorkerRole *out);

#endif
