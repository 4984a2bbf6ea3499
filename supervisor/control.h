/*
 * control: the control verbs (create, get, list, drop, add/remove tables, verify, set, pause,
 * resume, resync, metrics) and their replies; verify, drop and remove-tables answer when
 * their worker is done.
 */
#ifndef PGFERRY_CONTROL_H
#define PGFERRY_CONTROL_H

#include "sup_internal.h"
#include "ctlchan.h"

/* The verbs: the ctlchan dispatcher (req decoded and version-checked; answers through c). */
void control_dispatch(supervisor_t *s, ctl_call_t *c, Pgferry__Control__Request *req);
/* Answers the pending verify request of rt (ok: report and whether it matched; else the
 * error message) and forgets it. */
void control_reply_verify(supervisor_t *s, pipe_rt_t *rt, bool ok, bool match, const char *text);
/* The teardown worker of rec's pipe finished (report: what it removed or left): a drop deletes
 * the record, a remove-tables takes the tables out of it and ends Modifying; the waiting
 * requester, if any, gets the report. */
void control_teardown_done(supervisor_t *s, Pgferry__State__PipeRecord *rec, const char *report,
                           bool leftovers);
/* The definitions a teardown worker of rec removes (malloc'd array of pointers into rec). */
Pgferry__State__TableDef **control_teardown_defs(const Pgferry__State__PipeRecord *rec, size_t *n);
/* Another stored pipe (not being dropped) that uses rec's slot, and one that uses its
 * publication, into slot_pipe and pub_pipe ("" for none): their teardown must keep them. */
void control_shared_source_names(supervisor_t *s, const Pgferry__State__PipeRecord *rec,
                                 char *slot_pipe, char *pub_pipe, size_t len);

#endif
