/* ctlchan: control channel framing and replies (see ctlchan.h). */
#include "ctlchan.h"
#include "ipc.h"
#include "log.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>

/* after a request this large, freed memory goes back to the system (malloc_trim) */
#define CTL_TRIM_AFTER (1024 * 1024)

struct ctl_call {
    void *sock;
    ipc_frames_t *f;
};

/* the routing frames of f: the id, and REQ's empty delimiter when there is one */
static int
routing(const ipc_frames_t *f, const zmq_msg_t *pre[2])
{
    pre[0] = &f->parts[0];
    pre[1] = NULL;
    if (f->n >= 3 && zmq_msg_size(&f->parts[1]) == 0) {
        pre[1] = &f->parts[1];
        return 2;
    }
    return 1;
}

void
ctl_reply(ctl_call_t *c, Pgferry__Control__Reply *r)
{
    const zmq_msg_t *pre[2];
    int npre = routing(c->f, pre);
    r->version = IPC_VERSION;
    ipc_send_msg(c->sock, pre, npre, &r->base);
}

void
ctl_refuse(ctl_call_t *c, Pgferry__Control__ErrorCode code, const char *msg)
{
    Pgferry__Control__Reply r = PGFERRY__CONTROL__REPLY__INIT;
    r.code = code;
    r.message = (char *)msg;
    if (code != PGFERRY__CONTROL__ERROR_CODE__NOT_FOUND)
        log_info("control: request refused: %s", msg);
    ctl_reply(c, &r);
}

void
ctl_defer(ctl_call_t *c, pending_reply_t *p)
{
    const zmq_msg_t *pre[2];
    p->sock = c->sock;
    p->npre = routing(c->f, pre);
    for (int i = 0; i < p->npre; i++) {
        zmq_msg_init(&p->pre[i]);
        zmq_msg_copy(&p->pre[i], (zmq_msg_t *)pre[i]);
    }
}

void
ctl_reply_later(pending_reply_t *p, Pgferry__Control__Reply *r)
{
    if (p->npre == 0)
        return; /* the requester went away (or the daemon restarted in between) */
    const zmq_msg_t *pre[2] = {&p->pre[0], &p->pre[1]};
    r->version = IPC_VERSION;
    ipc_send_msg(p->sock, pre, p->npre, &r->base);
    pending_forget(p);
}

void
ctlchan_handle(supervisor_t *s, void *sock, void *frames, ctl_dispatch_fn dispatch)
{
    ipc_frames_t *f = frames;
    ctl_call_t call = {sock, f};
    /* [id, body] from DEALER or [id, "", body] from REQ; anything else cannot be parsed */
    if (f->n < 2) {
        log_debug("control: dropped a message with %d frame(s)", f->n);
        return;
    }
    if (f->overflow || f->n > 3 || (f->n == 3 && zmq_msg_size(&f->parts[1]) != 0)) {
        ctl_refuse(&call, PGFERRY__CONTROL__ERROR_CODE__BAD_REQUEST,
                   "bad request: unexpected frames");
        return;
    }
    zmq_msg_t *body = &f->parts[f->n - 1];
    size_t len = zmq_msg_size(body);
    if (len > IPC_MAX_REQUEST) {
        char err[160];
        snprintf(err, sizeof(err),
                 "bad request: %zu bytes, over the control request limit of %d bytes (%d MiB)", len,
                 IPC_MAX_REQUEST, IPC_MAX_REQUEST >> 20);
        ctl_refuse(&call, PGFERRY__CONTROL__ERROR_CODE__BAD_REQUEST, err);
        return;
    }
    /* protobuf-c allocates per field occurrence before any count can be checked: 2-byte empty
     * entries cost ~80 bytes each, so the bound is computed from the wire format first */
    size_t cost = ipc_unpack_cost(&pgferry__control__request__descriptor, zmq_msg_data(body), len);
    if (cost != SIZE_MAX && cost > IPC_MAX_DECODE) {
        char err[200];
        snprintf(err, sizeof(err),
                 "bad request: decoding it would take %zu MB, over the control request limit of "
                 "%d MB (too many entries)",
                 cost >> 20, IPC_MAX_DECODE >> 20);
        ctl_refuse(&call, PGFERRY__CONTROL__ERROR_CODE__BAD_REQUEST, err);
        return;
    }
    Pgferry__Control__Request *req =
        cost == SIZE_MAX ? NULL : pgferry__control__request__unpack(NULL, len, zmq_msg_data(body));
    if (!req) {
        log_warn("control: undecodable request (%zu bytes)", zmq_msg_size(body));
        ctl_refuse(&call, PGFERRY__CONTROL__ERROR_CODE__BAD_REQUEST,
                   "bad request: not a pgferry control message");
        return;
    }
    if (req->version != IPC_VERSION) {
        char err[128];
        snprintf(err, sizeof(err), "unsupported protocol version %u (this daemon speaks %d)",
                 req->version, IPC_VERSION);
        ctl_refuse(&call, PGFERRY__CONTROL__ERROR_CODE__UNSUPPORTED_VERSION, err);
    } else {
        dispatch(s, &call, req);
    }
    pgferry__control__request__free_unpacked(req, NULL);
    if (len > CTL_TRIM_AFTER)
        malloc_trim(0); /* a large request's many small blocks go back to the system */
}
