/*
 * proctable: the supervisor's worker processes: fork+exec with signals blocked, exec failure
 * reported through a close-on-exec pipe, and the table of live children. It does not decide
 * when to start or stop a worker (supervisor.c does).
 */
#ifndef PGFERRY_PROCTABLE_H
#define PGFERRY_PROCTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "errclass.h"
#include "roles.h"

#define PROC_NAME_MAX 64
#define PROC_ID_MAX 256

typedef struct {
    pid_t pid;
    char pipe[PROC_NAME_MAX + 1];
    worker_role_t role;
    int64_t started_us;
    unsigned char zid[PROC_ID_MAX]; /* ZeroMQ routing id, known after Hello */
    size_t zid_len;
    bool done;             /* reported Done */
    errclass_t reported;   /* class of the Error it reported, if any */
    char error[1024];      /* that Error's message */
    bool stopping;         /* we asked it to stop: its exit is no failure */
    int64_t kill_at_ms;    /* monotonic deadline for SIGKILL while stopping */
    char activity[256];    /* last Progress detail */
    bool exited;           /* reaped; kept until its trailing messages are read */
    int status;            /* wait status once exited */
    int64_t exited_at_ms;  /* monotonic */
    int range_index;       /* snapshot-range: the range of the pipe's plan it loads; else -1 */
    int64_t healthy_at_ms; /* cdc: monotonic time it reported streaming; 0 before */
} proc_t;

typedef struct proctable proctable_t;

proctable_t *proctable_new(void);
void proctable_destroy(proctable_t **t);
/* The environment workers get from now on (NULL-terminated, malloc'd strings; the table takes
 * it and frees the previous one). NULL: pgferryd's own. */
void proctable_set_env(proctable_t *t, char **env);

/* fork+exec argv[0] with argv. The child dies with SIGTERM when the supervisor dies. On
 * success adds a proc_t for pipe/role and returns it (owned by the table). */
proc_t *proctable_spawn(proctable_t *t, const char *pipe, worker_role_t role, char *const argv[],
                        char *err, size_t errlen);

proc_t *proctable_find_pid(proctable_t *t, pid_t pid);
/* The worker of a pipe with this role that is not being stopped (it may have exited but not
 * settled yet), or NULL. */
proc_t *proctable_find_role(proctable_t *t, const char *pipe, worker_role_t role);
/* As proctable_find_role, also finding workers being stopped or exited but not yet settled. */
proc_t *proctable_find_role_any(proctable_t *t, const char *pipe, worker_role_t role);
/* How many entries a pipe has: with ROLE_NONE all of them (stopping and exited included),
 * else the ones of that role that are not being stopped. */
size_t proctable_count_pipe(proctable_t *t, const char *pipe, worker_role_t role);
size_t proctable_count(const proctable_t *t);
proc_t *proctable_at(proctable_t *t, size_t i);
/* Removes the entry of pid (after it was reaped). */
void proctable_remove(proctable_t *t, pid_t pid);

/* Asks p to stop: SIGTERM now, SIGKILL at now + grace_ms (see proctable_enforce_kills). */
void proctable_stop(proc_t *p, int64_t now_ms, int64_t grace_ms);
/* SIGKILLs stopping children whose grace period is over; returns the earliest pending
 * deadline (or -1). */
int64_t proctable_enforce_kills(proctable_t *t, int64_t now_ms);

/* Describes a wait status: "exited with status 3", "killed by signal 9". */
void proctable_describe_status(int status, char *out, size_t outlen);

#endif
