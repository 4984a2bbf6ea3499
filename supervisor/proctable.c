/*
 * proctable: process creation and bookkeeping. The fork child touches no ZeroMQ context,
 * LMDB environment or libpq connection: it only resets signals, marks every descriptor but
 * stdin, stdout and stderr close-on-exec (the state store, sockets, the lock) and execs.
 */
#include "proctable.h"
#include "log.h"
#include "names.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct proctable {
    proc_t *procs;
    size_t n, cap;
    char **env;
};

extern char **environ;

void
proctable_set_env(proctable_t *t, char **env)
{
    if (t->env) {
        for (size_t i = 0; t->env[i]; i++)
            free(t->env[i]);
        free(t->env);
    }
    t->env = env;
}

/* In the fork child: every descriptor from 3 up is closed at exec (the exec-report pipe is
 * close-on-exec already). close_range where the kernel has it, else one fcntl per number. */
static void
cloexec_from_3(int maxfd)
{
#ifdef CLOSE_RANGE_CLOEXEC
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    for (int fd = 3; fd < maxfd; fd++)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

proctable_t *
proctable_new(void)
{
    return calloc(1, sizeof(proctable_t));
}

void
proctable_destroy(proctable_t **tp)
{
    if (!*tp)
        return;
    free((*tp)->procs);
    proctable_set_env(*tp, NULL);
    free(*tp);
    *tp = NULL;
}

proc_t *
proctable_spawn(proctable_t *t, const char *pipe, worker_role_t role, char *const argv[], char *err,
                size_t errlen)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        proc_t *p = realloc(t->procs, cap * sizeof(proc_t));
        if (!p) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        t->procs = p;
        t->cap = cap;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe2: %s", strerror(errno));
        return NULL;
    }
    struct rlimit rl;
    int maxfd =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1048576
            ? (int)rl.rlim_cur
            : 1048576;
    char **envp = t->env ? t->env : environ;
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* child: restore default dispositions, unblock, exec */
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(fds[0]);
        cloexec_from_3(maxfd);
        execve(argv[0], argv, envp);
        int e = errno;
        ssize_t w = write(fds[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    int fork_errno = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        snprintf(err, errlen, "fork: %s", strerror(fork_errno));
        return NULL;
    }
    int child_errno = 0;
    ssize_t r;
    do {
        r = read(fds[0], &child_errno, sizeof(child_errno));
    } while (r < 0 && errno == EINTR);
    close(fds[0]);
    if (r == (ssize_t)sizeof(child_errno)) {
        waitpid(pid, NULL, 0);
        snprintf(err, errlen, "cannot execute %s: %s", argv[0], strerror(child_errno));
        return NULL;
    }
    proc_t *p = &t->procs[t->n++];
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    snprintf(p->pipe, sizeof(p->pipe), "%s", pipe);
    p->role = role;
    p->started_us = time_now_us();
    p->range_index = -1;
    return p;
}

proc_t *
proctable_find_pid(proctable_t *t, pid_t pid)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->procs[i].pid == pid)
            return &t->procs[i];
    }
    return NULL;
}

proc_t *
proctable_find_role(proctable_t *t, const char *pipe, worker_role_t role)
{
    for (size_t i = 0; i < t->n; i++) {
        if (!t->procs[i].stopping && strcmp(t->procs[i].pipe, pipe) == 0 &&
            t->procs[i].role == role)
            return &t->procs[i];
    }
    return NULL;
}

proc_t *
proctable_find_role_any(proctable_t *t, const char *pipe, worker_role_t role)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->procs[i].pipe, pipe) == 0 && t->procs[i].role == role)
            return &t->procs[i];
    }
    return NULL;
}

size_t
proctable_count_pipe(proctable_t *t, const char *pipe, worker_role_t role)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->procs[i].pipe, pipe) != 0)
            continue;
        if (role == ROLE_NONE || (!t->procs[i].stopping && t->procs[i].role == role))
            n++;
    }
    return n;
}

size_t
proctable_count(const proctable_t *t)
{
    return t->n;
}

proc_t *
proctable_at(proctable_t *t, size_t i)
{
    return i < t->n ? &t->procs[i] : NULL;
}

void
proctable_remove(proctable_t *t, pid_t pid)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->procs[i].pid == pid) {
            t->procs[i] = t->procs[t->n - 1];
            t->n--;
            return;
        }
    }
}

void
proctable_stop(proc_t *p, int64_t now_ms, int64_t grace_ms)
{
    if (p->stopping)
        return;
    p->stopping = true;
    p->kill_at_ms = now_ms + grace_ms;
    if (p->exited) /* reaped already: its pid may belong to someone else now */
        return;
    if (kill(p->pid, SIGTERM) != 0 && errno != ESRCH)
        log_warn("kill(%d, SIGTERM): %s", (int)p->pid, strerror(errno));
}

int64_t
proctable_enforce_kills(proctable_t *t, int64_t now_ms)
{
    int64_t next = -1;
    for (size_t i = 0; i < t->n; i++) {
        proc_t *p = &t->procs[i];
        if (!p->stopping || p->kill_at_ms == 0 || p->exited)
            continue;
        if (now_ms >= p->kill_at_ms) {
            log_warn("worker %s/%s pid %d did not stop within its grace period; sending SIGKILL",
                     p->pipe, names_role(p->role), (int)p->pid);
            kill(p->pid, SIGKILL);
            p->kill_at_ms = 0;
        } else if (next < 0 || p->kill_at_ms < next) {
            next = p->kill_at_ms;
        }
    }
    return next;
}

void
proctable_describe_status(int status, char *out, size_t outlen)
{
    if (WIFEXITED(status))
        snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, outlen, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, outlen, "ended with wait status %d", status);
}
