/*
 * ctlchan: the control channel's framing. A request comes as [id, body] from a DEALER or
 * [id, "", body] from a REQ client on the owner-only ipc:// socket or the CURVE tcp:// one;
 * ctlchan checks the frames, decodes the versioned envelope and hands the request to the
 * dispatcher (control.c's) with a ctl_call_t, through which the verb answers now (ctl_reply,
 * ctl_refuse) or later (ctl_defer, then ctl_reply_later). Malformed input gets an error
 * reply, or is dropped when it cannot be answered; it never stops the daemon.
 */
#ifndef PGFERRY_CTLCHAN_H
#define PGFERRY_CTLCHAN_H

#include "sup_internal.h"

/* One request being answered (valid during control_dispatch only). */
typedef struct ctl_call ctl_call_t;

/* Runs the verb of req (decoded, version checked) and answers through c. */
typedef void (*ctl_dispatch_fn)(supervisor_t *s, ctl_call_t *c, Pgferry__Control__Request *req);

/* Handles one message already received (frames incl. routing id) on sock: a well-formed
 * request goes to dispatch. */
void ctlchan_handle(supervisor_t *s, void *sock, void *frames, ctl_dispatch_fn dispatch);

void ctl_reply(ctl_call_t *c, Pgferry__Control__Reply *r);
/* An error reply; refusals other than NOT_FOUND are logged (escaped, never with a password). */
void ctl_refuse(ctl_call_t *c, Pgferry__Control__ErrorCode code, const char *msg);
/* Keeps where the answer goes for ctl_reply_later (the verb returns without replying). */
void ctl_defer(ctl_call_t *c, pending_reply_t *p);
/* Answers a deferred request (nothing when it is no longer pending) and forgets it. */
void ctl_reply_later(pending_reply_t *p, Pgferry__Control__Reply *r);

#endif
