/* remote: the CURVE control endpoint (see remote.h). */
#include "remote.h"
#include "sup_internal.h"
#include "ipc.h"
#include "log.h"
#include "lsn.h"
#include "names.h"
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "curvekeys.h"

/* The remote control socket: CURVE server with the daemon's key; a ZAP handler in this thread
 * admits only the authorized client keys. */
bool
remote_open(supervisor_t *s)
{
    char pub[41], sec[41], err[1024];
    if (!curvekeys_load(s->cfg.curve_key_file, pub, sec, err, sizeof(err)) ||
        !curvekeys_load_authorized(s->cfg.curve_authorized_keys, &s->auth_keys, &s->n_auth_keys,
                                   err, sizeof(err))) {
        log_error("remote control: %s", err);
        return false;
    }
    int one = 1;
    s->zap = zmq_socket(s->zctx, ZMQ_REP);
    s->remote = zmq_socket(s->zctx, ZMQ_ROUTER);
    if (!s->zap || !s->remote || zmq_bind(s->zap, "inproc://zeromq.zap.01") != 0 ||
        !ipc_socket_defaults(s->remote, 0) ||
        zmq_setsockopt(s->remote, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(s->remote, ZMQ_CURVE_SECRETKEY, sec, 40) != 0 ||
        zmq_setsockopt(s->remote, ZMQ_ZAP_DOMAIN, "pgferry", 7) != 0) {
        log_error("remote control: cannot set up CURVE: %s", zmq_strerror(errno));
        return false;
    }
    memset(sec, 0, sizeof(sec));
    if (zmq_bind(s->remote, s->cfg.control_remote) != 0) {
        log_error("cannot bind the remote control socket %s: %s", s->cfg.control_remote,
                  zmq_strerror(errno));
        return false;
    }
    log_info("remote control on %s (CURVE, server key %s, %zu authorized client key(s))",
             s->cfg.control_remote, pub, s->n_auth_keys);
    return true;
}

/* Refused clients are logged with their address REFUSALS_LOGGED times a minute; the rest are
 * counted and one line a minute (and one at shutdown) says how many, so a scan of the port or a
 * client retrying with a wrong key cannot fill the log. */
#define REFUSALS_LOGGED 5
#define REFUSAL_WINDOW_MS 60000

static struct {
    int64_t start_ms; /* 0: no window open */
    unsigned logged, more;
    char last[64];
} g_refused;

static void
refusals_summary(int64_t now)
{
    if (g_refused.more)
        log_warn("remote control: refused %u more client(s) in the last %lld s (key not "
                 "authorized), the last from %s",
                 g_refused.more, (long long)((now - g_refused.start_ms + 999) / 1000),
                 g_refused.last);
    g_refused.more = 0;
    g_refused.logged = 0;
    g_refused.start_ms = 0;
}

void
remote_tick(supervisor_t *s, bool stopping)
{
    (void)s;
    int64_t now = time_mono_ms();
    if (g_refused.start_ms && (stopping || now - g_refused.start_ms >= REFUSAL_WINDOW_MS))
        refusals_summary(now);
}

static void
refused(const char *addr)
{
    int64_t now = time_mono_ms();
    if (g_refused.start_ms && now - g_refused.start_ms >= REFUSAL_WINDOW_MS)
        refusals_summary(now);
    if (!g_refused.start_ms)
        g_refused.start_ms = now;
    if (g_refused.logged < REFUSALS_LOGGED) {
        g_refused.logged++;
        log_warn("remote control: refused a client from %s (key not authorized)", addr);
    } else {
        g_refused.more++;
        snprintf(g_refused.last, sizeof(g_refused.last), "%s", addr);
    }
}

/* One ZAP request (RFC 27): version, request id, domain, address, identity, mechanism,
 * credentials. CURVE clients whose public key is authorized get 200, everyone else 400. */
void
remote_handle_zap(supervisor_t *s)
{
    zmq_msg_t fr[8];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t scratch, *m = n < 8 ? &fr[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, s->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            n++;
    }
    if (n < 6) {
        for (int i = 0; i < n; i++)
            zmq_msg_close(&fr[i]);
        return;
    }
    bool ok = false;
    if (zmq_msg_size(&fr[5]) == 5 && memcmp(zmq_msg_data(&fr[5]), "CURVE", 5) == 0 && n >= 7 &&
        zmq_msg_size(&fr[6]) == 32) {
        for (size_t i = 0; i < s->n_auth_keys && !ok; i++)
            ok = memcmp(zmq_msg_data(&fr[6]), s->auth_keys + i * 32, 32) == 0;
    }
    if (!ok) {
        char addr[64];
        snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&fr[3]),
                 (const char *)zmq_msg_data(&fr[3]));
        refused(addr);
    }
    zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, zmq_msg_data(&fr[1]), zmq_msg_size(&fr[1]), ZMQ_SNDMORE);
    zmq_send(s->zap, ok ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, ok ? "OK" : "not authorized", ok ? 2 : 14, ZMQ_SNDMORE);
    zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
    zmq_send(s->zap, "", 0, 0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&fr[i]);
}
