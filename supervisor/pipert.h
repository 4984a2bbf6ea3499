/*
 * pipert: what pgferryd knows about a pipe beyond LMDB, one runtime entry per pipe: restart
 * timing, the snapshot plan and its ranges, the last slot report, the rate samples and the
 * control requests waiting for a worker. Lost with the daemon, which is right: a daemon
 * restart also ends the load's coordinator and with it the exported snapshot.
 */
#ifndef PGFERRY_PIPERT_H
#define PGFERRY_PIPERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>
#include "proctable.h"
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

typedef struct supervisor supervisor_t;

/* The entry of a pipe (created when asked and missing; NULL when out of memory or absent). */
pipe_rt_t *sup_rt(supervisor_t *s, const char *name, bool create);
void sup_rt_remove(supervisor_t *s, const char *name);
void sup_rt_free(pipe_rt_t *rt);
/* Changes per second over the last minute (0 without two samples in it). */
double sup_rt_rate(const pipe_rt_t *rt, int64_t now_ms);
/* Forgets a pipe's snapshot plan. */
void sup_rt_clear_plan(pipe_rt_t *rt);
/* Drops a pending reply's frames without answering (the pipe is gone, the daemon stops). */
void pending_forget(pending_reply_t *p);

#endif
