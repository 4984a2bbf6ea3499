/*
 * supervisor: the daemon's life: start (state directory lock, store, sockets, the /metrics
 * and remote endpoints), the poll loop (control sockets, worker socket, signalfd, /metrics)
 * that hands each input to its module (ctlchan/control, workers, remote, httpd) and runs
 * reconcile, SIGHUP reloads, and shutdown. See sup_internal.h for who does what.
 */
#include "supervisor.h"
#include "sup_internal.h"
#include "control.h"
#include "ctlchan.h"
#include "pipeops.h"
#include "reconcile.h"
#include "remote.h"
#include "workers.h"
#include "metrics.h"
#include "backoff.h"
#include "curvekeys.h"
#include "ipc.h"
#include "log.h"
#include "lsn.h"
#include "names.h"
#include "timeutil.h"
#include "worker.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <stddef.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TICK_MS 200

/* ---- lifecycle of the daemon ------------------------------------------------------- */

supervisor_t *
supervisor_new(const daemon_config_t *cfg)
{
    supervisor_t *s = calloc(1, sizeof(*s));
    char err[1024];
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->sigfd = -1;
    s->lockfd = -1;
    umask(077);
    if (mkdir(cfg->state_dir, 0700) != 0 && errno != EEXIST) {
        log_error("cannot create state directory %s: %s", cfg->state_dir, strerror(errno));
        goto fail;
    }
    char path[700];
    snprintf(path, sizeof(path), "%s/pgferryd.lock", cfg->state_dir);
    s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        log_error("state directory %s is in use by another pgferryd (lock %s: %s)", cfg->state_dir,
                  path, strerror(errno));
        goto fail;
    }
    /* the password rules of pipes: checked at create and, through the environment the
     * workers inherit, by every worker before it reads a password */
    if (cfg->secrets_dir[0] && mkdir(cfg->secrets_dir, 0700) != 0 && errno != EEXIST)
        log_warn("cannot create secrets_dir %s: %s", cfg->secrets_dir, strerror(errno));
    if (setenv("PGFERRY_SECRETS_DIR", cfg->secrets_dir, 1) != 0 ||
        setenv("PGFERRY_SECRET_ENV_PREFIX", cfg->secret_env_prefix, 1) != 0) {
        log_error("cannot set the workers' password rules: %s", strerror(errno));
        goto fail;
    }
    char pidbuf[32];
    int pl = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
    if (ftruncate(s->lockfd, 0) != 0 || write(s->lockfd, pidbuf, (size_t)pl) != pl)
        log_warn("cannot write pid into %s", path);

    s->store = store_open(cfg->state_dir, err, sizeof(err));
    if (!s->store) {
        log_error("%s", err);
        goto fail;
    }
    store_set_history_max(s->store, cfg->history_max_events);
    s->procs = proctable_new();
    s->zctx = zmq_ctx_new();
    if (!s->procs || !s->zctx)
        goto fail;
    char **wenv = daemon_config_worker_env(&s->cfg, environ);
    if (!wenv)
        goto fail;
    proctable_set_env(s->procs, wenv);
    s->ctl = zmq_socket(s->zctx, ZMQ_ROUTER);
    s->wrk = zmq_socket(s->zctx, ZMQ_ROUTER);
    if (!s->ctl || !s->wrk || !ipc_socket_defaults(s->ctl, 0) || !ipc_socket_defaults(s->wrk, 0))
        goto fail;
    if (zmq_bind(s->ctl, cfg->control_endpoint) != 0) {
        log_error("cannot bind the control socket %s: %s", cfg->control_endpoint,
                  zmq_strerror(errno));
        goto fail;
    }
    const char *cp = ipc_endpoint_path(cfg->control_endpoint);
    if (cp && chmod(cp, 0600) != 0)
        log_warn("chmod %s: %s", cp, strerror(errno));
    char wep[600];
    snprintf(wep, sizeof(wep), "ipc://%s/workers.sock", cfg->state_dir);
    if (zmq_bind(s->wrk, wep) != 0) {
        log_error("cannot bind the worker socket %s: %s", wep, zmq_strerror(errno));
        goto fail;
    }
    if (cfg->control_remote[0] && !remote_open(s))
        goto fail; /* logged */
    if (cfg->metrics_listen[0]) {
        char err[512];
        int mfd = metrics_listen(cfg->metrics_listen, err, sizeof(err));
        if (mfd < 0) {
            log_error("%s", err);
            goto fail;
        }
        /* 16 clients at once, 5 s each from connect to the last byte (2 s to the end of the
         * request; a new one evicts the oldest incomplete one): nothing a client does
         * can hold the loop */
        s->metrics = httpd_new(mfd, 16, 5000, metrics_http_handler, s);
        if (!s->metrics) {
            close(mfd);
            log_error("out of memory");
            goto fail;
        }
        log_info("serving Prometheus metrics on http://%s/metrics", cfg->metrics_listen);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        goto fail;
    }
    return s;
fail:
    supervisor_destroy(&s);
    return NULL;
}

/* Tells systemd (Type=notify) about readiness and reloads; a no-op without NOTIFY_SOCKET. */
static void
notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t pl = strlen(path);
    if (pl >= sizeof(sa.sun_path))
        return;
    memcpy(sa.sun_path, path, pl);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
    if (sendto(fd, state, strlen(state), 0, (struct sockaddr *)&sa, len) < 0)
        log_warn("cannot notify systemd: %s", strerror(errno));
    close(fd);
}

/* SIGHUP: re-reads the configuration file and applies what can change while running (log
 * level and format, backoff, failure limits, grace period, pipe limits). Sockets, the state
 * directory and the password rules (secrets_dir, secret_env_prefix) need a restart; a file that no
 * longer parses changes nothing. The secrets' bindings, allow_cleartext_password and
 * source_passfile apply to workers started after the reload (and to create). */
static void
reload_config(supervisor_t *s)
{
    if (!s->cfg.config_file[0]) {
        log_info("received SIGHUP: no configuration file to reload");
        return;
    }
    notify_systemd("RELOADING=1");
    daemon_config_t c;
    char err[1024];
    daemon_config_defaults(&c);
    if (!daemon_config_load_file(&c, s->cfg.config_file, err, sizeof(err)) ||
        !daemon_config_load_env(&c, err, sizeof(err))) {
        log_error("reload refused, keeping the running settings: %s", err);
    } else if (strcmp(c.source_passfile, "none") != 0 && c.source_passfile[0] &&
               !daemon_config_passfile_check(c.source_passfile, err, sizeof(err))) {
        log_error("reload refused, keeping the running settings: %s", err);
    } else {
        if (strcmp(c.source_passfile, "none") == 0)
            c.source_passfile[0] = '\0';
        memcpy(s->cfg.secret_binds, c.secret_binds, sizeof(c.secret_binds));
        s->cfg.n_secret_binds = c.n_secret_binds;
        s->cfg.allow_cleartext_password = c.allow_cleartext_password;
        memcpy(s->cfg.source_passfile, c.source_passfile, sizeof(c.source_passfile));
        char **wenv = daemon_config_worker_env(&s->cfg, environ);
        if (wenv)
            proctable_set_env(s->procs, wenv);
        else
            log_error("out of memory: workers keep the previous environment");
        if (strcmp(c.state_dir, s->cfg.state_dir) != 0 ||
            (c.control_endpoint[0] && strcmp(c.control_endpoint, s->cfg.control_endpoint) != 0))
            log_warn("state_dir and control_endpoint change only with a restart");
        s->cfg.log_level = c.log_level;
        s->cfg.log_json = c.log_json;
        s->cfg.backoff_initial_ms = c.backoff_initial_ms;
        s->cfg.backoff_max_ms = c.backoff_max_ms;
        s->cfg.degraded_after = c.degraded_after;
        s->cfg.max_failures = c.max_failures;
        s->cfg.stop_grace_ms = c.stop_grace_ms;
        s->cfg.max_pipes = c.max_pipes;
        s->cfg.default_snapshot_workers = c.default_snapshot_workers;
        s->cfg.history_max_events = c.history_max_events;
        store_set_history_max(s->store, c.history_max_events);
        log_set_level(c.log_level);
        log_set_json(c.log_json);
        log_info("configuration reloaded from %s", s->cfg.config_file);
    }
    notify_systemd("READY=1");
}

static bool
drain_signals(supervisor_t *s)
{
    struct signalfd_siginfo si;
    bool child = false;
    while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            child = true;
            break;
        case SIGTERM:
        case SIGINT:
            if (!s->stopping)
                log_info("received %s: stopping workers and exiting", strsignal((int)si.ssi_signo));
            s->stopping = true;
            break;
        case SIGHUP:
            reload_config(s);
            break;
        }
    }
    return child;
}

/* Whether a ZeroMQ socket has a message waiting (poll's revents can be stale after reads). */
static bool
has_input(void *sock)
{
    int ev = 0;
    size_t el = sizeof(ev);
    return zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &el) == 0 && (ev & ZMQ_POLLIN);
}

/* Answers up to 64 waiting control requests on sock (the ipc:// or the tcp:// endpoint). */
static void
serve_control(supervisor_t *s, void *sock)
{
    for (int i = 0; i < 64 && has_input(sock); i++) {
        ipc_frames_t f;
        if (!ipc_recv_frames(sock, &f, ZMQ_DONTWAIT))
            break;
        ctlchan_handle(s, sock, &f, control_dispatch);
        ipc_frames_close(&f);
    }
}

int
supervisor_run(supervisor_t *s)
{
    log_info("pgferryd serving %s (state %s)", s->cfg.control_endpoint, s->cfg.state_dir);
    notify_systemd("READY=1");
    int64_t next_restart = reconcile(s);
    int64_t last_reconcile = time_mono_ms();
    while (!s->stopping) {
        int64_t now = time_mono_ms();
        int64_t timeout = TICK_MS;
        int64_t kill_at = proctable_enforce_kills(s->procs, now);
        if (next_restart >= 0 && next_restart - now < timeout)
            timeout = next_restart - now;
        if (kill_at >= 0 && kill_at - now < timeout)
            timeout = kill_at - now;
        for (size_t i = 0; i < proctable_count(s->procs); i++) {
            if (proctable_at(s->procs, i)->exited && timeout > 50)
                timeout = 50;
        }
        if (timeout < 0)
            timeout = 0;
        if (s->metrics) {
            int64_t d = httpd_next_deadline(s->metrics);
            if (d >= 0 && d - now < timeout)
                timeout = d - now < 0 ? 0 : d - now;
        }
        zmq_pollitem_t items[5 + 1 + 16] = {{s->ctl, 0, ZMQ_POLLIN, 0},
                                            {s->wrk, 0, ZMQ_POLLIN, 0},
                                            {NULL, s->sigfd, ZMQ_POLLIN, 0},
                                            {s->zap, 0, ZMQ_POLLIN, 0},
                                            {s->remote, 0, ZMQ_POLLIN, 0}};
        size_t nbase = s->remote ? 5 : 3;
        size_t nhttp = s->metrics ? httpd_poll_items(s->metrics, items + nbase,
                                                     sizeof(items) / sizeof(items[0]) - nbase)
                                  : 0;
        int rc = zmq_poll(items, (int)(nbase + nhttp), (long)timeout);
        if (rc < 0 && errno != EINTR) {
            log_error("zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        bool child = (items[2].revents & ZMQ_POLLIN) && drain_signals(s);
        /* bounded batches so one busy socket cannot starve the others */
        for (int i = 0; i < 64 && (items[1].revents & ZMQ_POLLIN) && has_input(s->wrk); i++)
            workers_handle_message(s);
        if (items[0].revents & ZMQ_POLLIN)
            serve_control(s, s->ctl);
        if (s->metrics)
            httpd_handle(s->metrics, items + nbase, nhttp, time_mono_ms());
        if (s->remote) {
            for (int i = 0; i < 16 && (items[3].revents & ZMQ_POLLIN) && has_input(s->zap); i++)
                remote_handle_zap(s);
            if (items[4].revents & ZMQ_POLLIN)
                serve_control(s, s->remote);
        }
        if (child)
            workers_reap(s);
        workers_settle(s, false);
        log_flush_repeats();
        if (s->remote)
            remote_tick(s, false);
        now = time_mono_ms();
        if (rc > 0 || now - last_reconcile >= TICK_MS ||
            (next_restart >= 0 && now >= next_restart)) {
            next_restart = reconcile(s);
            last_reconcile = now;
        }
    }

    notify_systemd("STOPPING=1");
    if (s->remote)
        remote_tick(s, true);
    /* shutdown: SIGTERM every worker, wait for the grace period, then SIGKILL */
    for (size_t i = 0; i < proctable_count(s->procs); i++) {
        proc_t *p = proctable_at(s->procs, i);
        proctable_stop(p, time_mono_ms(), (int64_t)s->cfg.stop_grace_ms);
    }
    while (proctable_count(s->procs) > 0) {
        int64_t now = time_mono_ms();
        int64_t kill_at = proctable_enforce_kills(s->procs, now);
        long timeout = kill_at >= 0 ? (long)(kill_at - now) : 100;
        if (timeout < 10)
            timeout = 10;
        /* the workers' last reports (a CDC worker's final batch and its counts) are stored */
        zmq_pollitem_t it[2] = {{NULL, s->sigfd, ZMQ_POLLIN, 0}, {s->wrk, 0, ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, timeout);
        for (int i = 0; i < 64 && has_input(s->wrk); i++)
            workers_handle_message(s);
        drain_signals(s);
        workers_reap(s);
        workers_settle(s, true);
    }
    log_info("pgferryd stopped");
    return 0;
}

void
supervisor_destroy(supervisor_t **sp)
{
    supervisor_t *s = *sp;
    if (!s)
        return;
    if (s->ctl)
        zmq_close(s->ctl);
    if (s->remote)
        zmq_close(s->remote);
    if (s->zap)
        zmq_close(s->zap);
    free(s->auth_keys);
    if (s->wrk)
        zmq_close(s->wrk);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    const char *cp = ipc_endpoint_path(s->cfg.control_endpoint);
    if (cp && s->lockfd >= 0 && s->store)
        unlink(cp);
    if (s->sigfd >= 0)
        close(s->sigfd);
    httpd_destroy(&s->metrics);
    store_destroy(&s->store);
    proctable_destroy(&s->procs);
    for (size_t i = 0; i < s->nrt; i++)
        sup_rt_free(&s->rt[i]);
    free(s->rt);
    if (s->lockfd >= 0)
        close(s->lockfd);
    free(s);
    *sp = NULL;
}
