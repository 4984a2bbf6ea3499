/*
 * sup_internal: what control.c needs from supervisor.c. Not for other modules.
 */
#ifndef PGFERRY_SUP_INTERNAL_H
#define PGFERRY_SUP_INTERNAL_H

#include <zmq.h>
#include "httpd.h"
#include "lifecycle.h"
#include "proctable.h"
#include "store.h"
#include "supervisor.h"
#include "control.pb-c.h"
#include "worker.pb-c.h"

#define RANGE_PENDING 0
#define RANGE_RUNNING 1
#define RANGE_DONE 2
#define RATE_SAMPLES 90

/* A control request whose answer comes later (verify, drop, remove-tables): where it goes. */
typedef struct {
    void *sock;
    zmq_msg_t pre[2]; /* routing frames */
    int npre;         /* 0 = none pending */
} pending_reply_t;

/* What the supervisor knows about a pipe beyond LMDB: restart timing and the snapshot plan.
 * Lost with the supervisor, which is right: a supervisor restart also ends the coordinator and
 * with it the exported snapshot, so a load starts over. */
typedef struct {
    char name[PROC_NAME_MAX + 1];
    int64_t restart_at_ms;               /* monotonic; 0 = no restart pending */
    int64_t restart_at_us;               /* the same moment on the wall clock, for status */
    Pgferry__Worker__SnapshotPlan *plan; /* owned; NULL until the coordinator sent one */
    unsigned char *range_state;          /* RANGE_* per plan range */
    size_t ranges_done;
    uint64_t snapshot_rows;
    uint64_t *range_rows;            /* rows of each finished range */
    uint64_t *range_bytes;           /* and its bytes */
    unsigned char *range_counted;    /* finished and added to the record's table stats */
    int64_t stats_flushed_ms;        /* when the record last took them (monotonic) */
    bool unsettled;                  /* a worker failed since: the next Done reads the record */
    Pgferry__Worker__SlotInfo *slot; /* owned; the last slot report of a CDC/monitor worker */
    int64_t slot_us;                 /* when it came */
    bool wal_warned;                 /* retained WAL above the threshold was logged */
    /* changes applied, sampled at each Applied report, for rows/s over the last minute */
    int64_t rate_ms[RATE_SAMPLES];
    uint64_t rate_total[RATE_SAMPLES];
    size_t rate_next, rate_len;
    uint64_t applied_total;
    pending_reply_t verify_reply;   /* a verify request waiting for its worker */
    pending_reply_t teardown_reply; /* a drop or remove-tables waiting for its teardown worker */
    char verify_table[300];
} pipe_rt_t;

/* The record's statistics of one destination table (created on first use; the record owns
 * it, protobuf-c frees it with the record), and adding to them. */
Pgferry__State__TableStats *sup_table_stats(Pgferry__State__PipeRecord *rec, const char *target);
void sup_table_stats_add(Pgferry__State__PipeRecord *rec, const char *target, uint64_t ins,
                         uint64_t upd, uint64_t del, uint64_t bytes, uint64_t snap_rows,
                         uint64_t snap_bytes);

/* Changes per second over the last minute (0 without two samples in it). */
double sup_rt_rate(const pipe_rt_t *rt, int64_t now_ms);

/* Forgets a pipe's snapshot plan. */
void sup_rt_clear_plan(pipe_rt_t *rt);

struct supervisor {
    daemon_config_t cfg;
    store_t *store;
    void *zctx;
    void *ctl;        /* ROUTER, control.proto, ipc:// owner-only */
    void *remote;     /* ROUTER, control.proto, tcp:// with CURVE; NULL when not configured */
    void *zap;        /* REP on inproc://zeromq.zap.01: admits authorized CURVE clients */
    void *reply_sock; /* the socket the request being handled came from */
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

/* Applies ev to rec through the lifecycle and persists the record with a history event.
 * On refusal writes the reason into err and changes nothing. */
bool sup_transition(supervisor_t *s, Pgferry__State__PipeRecord *rec, lifecycle_event_t ev,
                    const char *reason, char *err, size_t errlen);
/* Persists rec with a history event that records something without a state change. */
bool sup_note(supervisor_t *s, Pgferry__State__PipeRecord *rec, const char *reason);
/* Stops every worker of a pipe (SIGTERM, SIGKILL after the grace period). */
void sup_stop_workers(supervisor_t *s, const char *pipe, const char *reason);
/* Stops the pipe's workers of one role (NULL: every role), gracefully. */
void sup_stop_role(supervisor_t *s, const char *pipe, worker_role_t role, const char *reason);
pipe_rt_t *sup_rt(supervisor_t *s, const char *name, bool create);
void sup_rt_remove(supervisor_t *s, const char *name);

/* Starts a worker of role for pipe (logged on failure). */
proc_t *sup_spawn_worker(supervisor_t *s, const char *pipe, worker_role_t role);
/* Answers the pending verify request of rt (ok: report and whether it matched; else the
 * error message) and forgets it. */
void control_reply_verify(supervisor_t *s, pipe_rt_t *rt, bool ok, bool match, const char *text);
/* Drops a pending reply's frames without answering (the pipe is gone, the daemon stops). */
void control_pending_forget(pending_reply_t *p);
/* The teardown worker of rec's pipe finished (report: what it removed or left): a drop deletes
 * the record, a remove-tables takes the tables out of it and ends Modifying; the waiting
 * requester, if any, gets the report. */
void control_teardown_done(supervisor_t *s, Pgferry__State__PipeRecord *rec, const char *report,
                           bool leftovers);
/* The definitions a teardown worker of rec removes (malloc'd array of pointers into rec). */
Pgferry__State__TableDef **control_teardown_defs(const Pgferry__State__PipeRecord *rec, size_t *n);

/* control.c: handles one control message already received (frames incl. routing id) on
 * sock, and replies on it. */
void control_handle(supervisor_t *s, void *sock, void *frames);

#endif
