/*
 * sup_internal: the daemon's state, shared by the modules of pgferryd (supervisor.c owns it:
 * creates, runs and destroys it). Who does what with it:
 *   pipert.c    runtime entries of pipes (plan, slot report, rates, pending replies)
 *   pipeops.c   transitions, notes, starting/stopping workers, failure accounting
 *   workers.c   the worker channel and worker exits
 *   reconcile.c the workers each pipe's state needs
 *   control.c   control verbs; status.c builds what status, list and metrics show
 *   remote.c    the CURVE control endpoint; httpd.c/metrics.c the /metrics endpoint
 */
#ifndef PGFERRY_SUP_INTERNAL_H
#define PGFERRY_SUP_INTERNAL_H

#include <zmq.h>
#include "httpd.h"
#include "lifecycle.h"
#include "pipert.h"
#include "proctable.h"
#include "store.h"
#include "supervisor.h"
#include "control.pb-c.h"
#include "worker.pb-c.h"

struct supervisor {
    daemon_config_t cfg;
    store_t *store;
    void *zctx;
    void *ctl;    /* ROUTER, control.proto, ipc:// owner-only */
    void *remote; /* ROUTER, control.proto, tcp:// with CURVE; NULL when not configured */
    void *zap;    /* REP on inproc://zeromq.zap.01: admits authorized CURVE clients */
    unsigned char *auth_keys; /* 32-byte client public keys allowed on remote */
    size_t n_auth_keys;
    void *wrk; /* ROUTER, worker.proto */
    int sigfd;
    httpd_t *metrics; /* the /metrics endpoint, NULL when off */
    int lockfd;
    proctable_t *procs;
    pipe_rt_t *rt;
    size_t nrt, caprt;
    bool stopping;
};

#endif
