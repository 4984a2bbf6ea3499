/* worker: ZeroMQ DEALER and signal flag of a worker process. No database code here. */
#include "worker.h"
#include "exitcodes.h"
#include "ipc.h"
#include "log.h"
#include "lsn.h"
#include "names.h"
#include "timeutil.h"
#include "secrets.h"
#include "chsql.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop_signal;
static volatile sig_atomic_t g_exit_at_once;

static void
on_stop_signal(int sig)
{
    (void)sig;
    if (g_exit_at_once)
        _exit(EXIT_STOPPED);
    g_stop_signal = 1;
}

void
worker_install_signals(bool exit_at_once)
{
    g_exit_at_once = exit_at_once;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

struct worker {
    void *ctx;
    void *sock;
    bool stop;
    uint64_t stored; /* cdc: the supervisor stored Applied reports up to here */
};

static bool
send_msg(worker_t *w, Pgferry__Worker__WorkerMessage *m)
{
    m->version = IPC_VERSION;
    return ipc_send_msg(w->sock, NULL, 0, &m->base);
}

worker_t *
worker_connect(const char *endpoint, const char *pipe, worker_role_t role, char *err, size_t errlen)
{
    worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->ctx = zmq_ctx_new();
    w->sock = w->ctx ? zmq_socket(w->ctx, ZMQ_DEALER) : NULL;
    if (!w->sock || !ipc_socket_defaults(w->sock, 5000)) {
        snprintf(err, errlen, "cannot create the supervisor socket: %s", zmq_strerror(errno));
        worker_destroy(&w);
        return NULL;
    }
    char id[256];
    snprintf(id, sizeof(id), "%s/%s/%d", pipe, names_role(role), (int)getpid());
    zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, id, strlen(id));
    if (zmq_connect(w->sock, endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to the supervisor at %s: %s", endpoint,
                 zmq_strerror(errno));
        worker_destroy(&w);
        return NULL;
    }
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    Pgferry__Worker__Hello h = PGFERRY__WORKER__HELLO__INIT;
    h.pipe = (char *)pipe;
    h.role = role;
    h.pid = (int32_t)getpid();
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_HELLO;
    m.hello = &h;
    /* DONTWAIT on a fresh DEALER may fail with EAGAIN before the connection exists; retry */
    int64_t deadline = time_mono_ms() + 5000;
    while (!send_msg(w, &m)) {
        if (time_mono_ms() > deadline || g_stop_signal) {
            snprintf(err, errlen, "cannot say hello to the supervisor at %s", endpoint);
            worker_destroy(&w);
            return NULL;
        }
        usleep(10000);
    }
    return w;
}

void
worker_destroy(worker_t **wp)
{
    worker_t *w = *wp;
    if (!w)
        return;
    if (w->sock)
        zmq_close(w->sock);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    free(w);
    *wp = NULL;
}

/* Receives one supervisor message within timeout_ms; NULL on timeout or garbage. */
static Pgferry__Worker__SupervisorMessage *
recv_msg(worker_t *w, int timeout_ms)
{
    zmq_pollitem_t it = {w->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0 || !(it.revents & ZMQ_POLLIN))
        return NULL;
    ipc_frames_t f;
    if (!ipc_recv_frames(w->sock, &f, ZMQ_DONTWAIT))
        return NULL;
    Pgferry__Worker__SupervisorMessage *m = NULL;
    if (f.n == 1 && !f.overflow)
        m = pgferry__worker__supervisor_message__unpack(NULL, zmq_msg_size(&f.parts[0]),
                                                        zmq_msg_data(&f.parts[0]));
    ipc_frames_close(&f);
    if (m && m->version != IPC_VERSION) {
        log_warn("supervisor speaks protocol version %u, not %d", m->version, IPC_VERSION);
        pgferry__worker__supervisor_message__free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}

Pgferry__Worker__SupervisorMessage *
worker_await_assignment(worker_t *w, int timeout_ms)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    while (!g_stop_signal && !w->stop) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return NULL;
        Pgferry__Worker__SupervisorMessage *m = recv_msg(w, left > 100 ? 100 : (int)left);
        if (!m)
            continue;
        if (m->body_case == PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_ASSIGNMENT)
            return m;
        if (m->body_case == PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STOP) {
            log_info("supervisor says stop: %s", m->stop->reason);
            w->stop = true;
        }
        pgferry__worker__supervisor_message__free_unpacked(m, NULL);
    }
    return NULL;
}

/* A message after the assignment: Stop, or the position of the stored Applied reports. */
static void
on_supervisor_message(worker_t *w, Pgferry__Worker__SupervisorMessage *m)
{
    uint64_t lsn;
    if (m->body_case == PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STOP) {
        log_info("supervisor says stop: %s", m->stop->reason);
        w->stop = true;
    } else if (m->body_case == PGFERRY__WORKER__SUPERVISOR_MESSAGE__BODY_STORED &&
               lsn_parse(m->stored->lsn, &lsn) && lsn > w->stored) {
        w->stored = lsn;
    }
    pgferry__worker__supervisor_message__free_unpacked(m, NULL);
}

bool
worker_should_stop(worker_t *w)
{
    if (g_stop_signal)
        w->stop = true;
    while (!w->stop) {
        Pgferry__Worker__SupervisorMessage *m = recv_msg(w, 0);
        if (!m)
            break;
        on_supervisor_message(w, m);
    }
    return w->stop;
}

uint64_t
worker_stored_lsn(const worker_t *w)
{
    return w->stored;
}

bool
worker_await_stored(worker_t *w, uint64_t lsn, int timeout_ms)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    while (w->stored < lsn) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return false;
        Pgferry__Worker__SupervisorMessage *m = recv_msg(w, left > 100 ? 100 : (int)left);
        if (m)
            on_supervisor_message(w, m);
    }
    return true;
}

ch_client_t *
worker_dest_client(const Pgferry__State__PipeSpec *spec, char *err, size_t errlen)
{
    /* the rules pgferryd checked at create, checked again here: the file is read now */
    const char *dir = getenv("PGFERRY_SECRETS_DIR");
    const char *prefix = getenv("PGFERRY_SECRET_ENV_PREFIX");
    char resolved[PATH_MAX];
    const char *file = spec->dest_password_file;
    if (file[0]) {
        if (!secret_file_check(dir ? dir : "", file, resolved, sizeof(resolved), err, errlen))
            return NULL;
        file = resolved;
    } else if (spec->dest_password_env[0] &&
               !secret_env_check(prefix ? prefix : "", spec->dest_password_env, err, errlen)) {
        return NULL;
    }
    if (file[0] || spec->dest_password_env[0]) {
        /* and only to the endpoints the operator bound the secret to, as pgferryd's
         * configuration says now (the stored spec is not trusted alone) */
        static secret_bind_t binds[SECRET_BIND_MAX];
        size_t nb = secret_binds_parse(getenv("PGFERRY_BOUND_SECRETS"), binds, SECRET_BIND_MAX);
        char label[400];
        const secret_bind_t *b;
        if (file[0]) {
            b = secret_bind_find(binds, nb, dir, resolved, NULL);
            snprintf(label, sizeof(label), "--dest-password-file %.300s", spec->dest_password_file);
        } else {
            b = secret_bind_find(binds, nb, NULL, NULL, spec->dest_password_env);
            snprintf(label, sizeof(label), "--dest-password-env %.300s", spec->dest_password_env);
        }
        if (!secret_dest_allowed(b, label, spec->dest_url, err, errlen))
            return NULL;
    }
    ch_client_t *c = ch_client_new_env(spec->dest_url, spec->dest_user, file,
                                       spec->dest_password_env, err, errlen);
    char settings[200];
    worker_dest_settings(spec, false, settings, sizeof(settings));
    if (c && !ch_client_set_settings(c, settings)) {
        ch_client_destroy(&c);
        snprintf(err, errlen, "out of memory");
    }
    if (c && ch_client_endpoints(c) > 1) {
        /* start on the first endpoint that answers (a query is sent on to the next endpoint
         * when one fails); when none does, the worker's own first request says so */
        char e[512];
        (void)ch_client_query(c, "SELECT 1", NULL, e, sizeof(e));
    }
    return c;
}

void
worker_cluster(const Pgferry__State__PipeSpec *spec, chcluster_t *cl)
{
    chcluster_init(cl, spec->cluster, spec->cluster_layout, spec->zk_path);
}

void
worker_dest_settings(const Pgferry__State__PipeSpec *spec, bool quorum, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!spec->cluster[0])
        return;
    /* a sharded layout's inserts into the Distributed table return once every shard has its
     * rows (not when they are queued on the node written to); reads and writes go to the
     * replicas in the configured order, the same ones while they are healthy */
    bool sharded = strcmp(spec->cluster_layout, "sharded") == 0;
    snprintf(out, outlen, "%s%s",
             sharded ? "insert_distributed_sync=1&load_balancing=in_order" : "",
             quorum && spec->insert_quorum > 1 ? (sharded ? "&" : "") : "");
    if (quorum && spec->insert_quorum > 1) {
        size_t n = strlen(out);
        snprintf(out + n, outlen - n, "insert_quorum=%u", spec->insert_quorum);
    }
}

errclass_t
worker_sync_replica(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *target,
                    char *err, size_t errlen)
{
    if (!chcluster_on(cl))
        return ERRCLASS_NONE;
    char data[300], q[300], qt[300], sql[800];
    chcluster_data_table(cl, target, data, sizeof(data));
    chsql_ident(db, q, sizeof(q));
    chsql_ident(data, qt, sizeof(qt));
    snprintf(sql, sizeof(sql), "SYSTEM SYNC REPLICA %s.%s", q, qt);
    /* a sharded layout's reads go through the Distributed table to a replica of each shard:
     * every endpoint's replica is synced (one that does not answer serves no read either) */
    size_t n = cl->sharded ? ch_client_endpoints(ch) : 1, start = ch_client_current(ch);
    errclass_t cls = ERRCLASS_NONE;
    size_t synced = 0;
    for (size_t k = 0; k < n && cls == ERRCLASS_NONE; k++) {
        ch_client_use(ch, (start + k) % ch_client_endpoints(ch), n == 1);
        cls = ch_client_query(ch, sql, NULL, err, errlen);
        if (cls != ERRCLASS_NONE && n > 1 && strstr(err, "unreachable")) {
            cls = ERRCLASS_NONE; /* a node that is down */
            continue;
        }
        synced += cls == ERRCLASS_NONE;
        if (cls != ERRCLASS_NONE) {
            char why[512];
            snprintf(why, sizeof(why), "%s", err);
            snprintf(err, errlen,
                     "replica of %s.%s at %s is not up to date with what pgferry wrote (SYSTEM "
                     "SYNC REPLICA: %s)",
                     db, data, ch_client_endpoint(ch), why);
        }
    }
    ch_client_use(ch, start, true);
    if (cls == ERRCLASS_NONE && synced == 0) {
        snprintf(err, errlen, "no ClickHouse endpoint answers to sync %s.%s", db, data);
        cls = ERRCLASS_TRANSIENT;
    }
    return cls;
}

bool
worker_wait_stop(worker_t *w, int timeout_ms)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    while (!worker_should_stop(w)) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return false;
        zmq_pollitem_t it = {w->sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, left > 100 ? 100 : (long)left);
    }
    return true;
}

bool
worker_send_plan(worker_t *w, Pgferry__Worker__SnapshotPlan *plan)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_PLAN;
    m.plan = plan;
    return send_msg(w, &m);
}

bool
worker_send_progress(worker_t *w, uint64_t rows, uint64_t bytes, const char *lsn,
                     const char *detail)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    Pgferry__Worker__Progress p = PGFERRY__WORKER__PROGRESS__INIT;
    p.rows = rows;
    p.bytes = bytes;
    p.lsn = (char *)(lsn ? lsn : "");
    p.detail = (char *)(detail ? detail : "");
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_PROGRESS;
    m.progress = &p;
    return send_msg(w, &m);
}

bool
worker_send_source_server(worker_t *w, const char *server)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    Pgferry__Worker__Progress p = PGFERRY__WORKER__PROGRESS__INIT;
    p.detail = "streaming";
    p.source_server = (char *)server;
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_PROGRESS;
    m.progress = &p;
    return send_msg(w, &m);
}

bool
worker_send_note(worker_t *w, const char *note)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    Pgferry__Worker__Progress p = PGFERRY__WORKER__PROGRESS__INIT;
    p.detail = "streaming";
    p.note = (char *)note;
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_PROGRESS;
    m.progress = &p;
    return send_msg(w, &m);
}

bool
worker_send_done(worker_t *w, Pgferry__Worker__Done *done)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_DONE;
    m.done = done;
    return send_msg(w, &m);
}

bool
worker_send_error(worker_t *w, errclass_t cls, const char *message)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    Pgferry__Worker__Error e = PGFERRY__WORKER__ERROR__INIT;
    e.class_ = cls == ERRCLASS_FATAL ? PGFERRY__STATE__ERROR_CLASS__FATAL
                                     : PGFERRY__STATE__ERROR_CLASS__TRANSIENT;
    e.message = (char *)message;
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_ERROR;
    m.error = &e;
    return send_msg(w, &m);
}

bool
worker_send_applied(worker_t *w, Pgferry__Worker__Applied *a)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_APPLIED;
    m.applied = a;
    return send_msg(w, &m);
}

bool
worker_send_definitions(worker_t *w, Pgferry__State__TableDef **tables, size_t n,
                        const char *reason)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    Pgferry__Worker__Definitions d = PGFERRY__WORKER__DEFINITIONS__INIT;
    d.tables = tables;
    d.n_tables = n;
    d.reason = (char *)reason;
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_DEFINITIONS;
    m.definitions = &d;
    return send_msg(w, &m);
}

bool
worker_send_slot(worker_t *w, Pgferry__Worker__SlotInfo *si)
{
    Pgferry__Worker__WorkerMessage m = PGFERRY__WORKER__WORKER_MESSAGE__INIT;
    m.body_case = PGFERRY__WORKER__WORKER_MESSAGE__BODY_SLOT;
    m.slot = si;
    return send_msg(w, &m);
}
