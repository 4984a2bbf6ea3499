/* ctl: ZeroMQ REQ client. */
#include "ctl.h"
#include "ipc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ctl {
    void *ctx;
    void *sock;
    int timeout_ms;
    char endpoint[600];
};

void
ctl_default_endpoint(const char *state_dir, char *out, size_t outlen)
{
    const char *e = getenv("PGFERRY_CONTROL");
    if (!state_dir && e && *e) {
        snprintf(out, outlen, "%s", e);
        return;
    }
    const char *d = state_dir ? state_dir : getenv("PGFERRY_STATE_DIR");
    snprintf(out, outlen, "ipc://%s/control.sock", d && *d ? d : "/var/lib/pgferry");
}

ctl_t *
ctl_connect(const char *endpoint, int timeout_ms, const char *server_pub, const char *client_pub,
            const char *client_sec, char *err, size_t errlen)
{
    const char *path = ipc_endpoint_path(endpoint);
    struct stat st;
    if (path && stat(path, &st) != 0) {
        snprintf(err, errlen, "no pgferryd is listening at %s (%s); is it running?", endpoint,
                 strerror(errno));
        return NULL;
    }
    ctl_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->timeout_ms = timeout_ms;
    snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
    c->ctx = zmq_ctx_new();
    c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_REQ) : NULL;
    if (c->sock && server_pub &&
        (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server_pub, 40) != 0 ||
         zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, client_pub, 40) != 0 ||
         zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, client_sec, 40) != 0)) {
        snprintf(err, errlen, "cannot set CURVE keys: %s", zmq_strerror(errno));
        ctl_destroy(&c);
        return NULL;
    }
    if (!c->sock || !ipc_socket_defaults(c->sock, 0) ||
        zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms)) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms)) != 0 ||
        zmq_connect(c->sock, endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        ctl_destroy(&c);
        return NULL;
    }
    return c;
}

void
ctl_destroy(ctl_t **cp)
{
    ctl_t *c = *cp;
    if (!c)
        return;
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c);
    *cp = NULL;
}

Pgferry__Control__Reply *
ctl_call(ctl_t *c, Pgferry__Control__Request *req, char *err, size_t errlen)
{
    req->version = IPC_VERSION;
    size_t len = pgferry__control__request__get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pgferry__control__request__pack(req, buf);
    int rc = zmq_send(c->sock, buf, len, 0);
    free(buf);
    if (rc < 0) {
        snprintf(err, errlen, "cannot send to pgferryd at %s: %s", c->endpoint,
                 zmq_strerror(errno));
        return NULL;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, 0) < 0) {
        snprintf(err, errlen, "no answer from pgferryd at %s within %d ms", c->endpoint,
                 c->timeout_ms);
        zmq_msg_close(&m);
        return NULL;
    }
    Pgferry__Control__Reply *r =
        pgferry__control__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    zmq_msg_close(&m);
    if (!r)
        snprintf(err, errlen, "pgferryd sent an undecodable reply");
    return r;
}
