/*
 * log: formatting and the single write() per line. Owns no other state than the process's
 * role/pipe labels and settings; must not allocate on the heap (usable in low-memory paths).
 */
#include "log.h"
#include "json.h"
#include "mask.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

static char g_role[32] = "?";
static char g_pipe[128] = "";
static log_level_t g_level = PGF_LOG_INFO;
static bool g_json = false;
static int g_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_init(const char *role, const char *pipe)
{
    snprintf(g_role, sizeof(g_role), "%s", role ? role : "?");
    log_set_pipe(pipe);
}

void
log_set_pipe(const char *pipe)
{
    snprintf(g_pipe, sizeof(g_pipe), "%s", pipe ? pipe : "");
}

void
log_set_level(log_level_t level)
{
    g_level = level;
}

log_level_t
log_get_level(void)
{
    return g_level;
}

void
log_set_json(bool json)
{
    g_json = json;
}

bool
log_get_json(void)
{
    return g_json;
}

void
log_set_fd(int fd)
{
    g_fd = fd;
}

const char *
log_level_name(log_level_t level)
{
    return (level >= PGF_LOG_ERROR && level <= PGF_LOG_DEBUG) ? level_names[level] : "?";
}

bool
log_parse_level(const char *s, log_level_t *out)
{
    for (int i = 0; i <= PGF_LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return true;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = PGF_LOG_WARN;
        return true;
    }
    return false;
}

static void
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

void
log_oneline(const char *in, char *out, size_t outlen)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    bool space = false; /* runs of line breaks become one space */
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < outlen; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            if (!space && o > 0)
                out[o++] = ' ';
            space = true;
            continue;
        }
        space = false;
        if (*p < 0x20 || *p == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hx[*p >> 4];
            out[o++] = hx[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    if (outlen)
        out[o < outlen ? o : outlen - 1] = '\0';
}

/* ---- repeated lines ----------------------------------------------------------------
 * The same line from the same place (e.g. one warning per malformed request) is written at
 * most g_rl_burst times per g_rl_window_ms; the rest are counted and one summary line says how
 * many were left out, when the window ends (at the next log call) or the slot is reused. */
#define RL_SLOTS 64
typedef struct {
    uint64_t key; /* 0 = free */
    int64_t window_ms;
    unsigned count, suppressed;
    log_level_t level;
    const char *file;
    int line;
    char sample[120];
} rl_slot_t;
static rl_slot_t g_rl[RL_SLOTS];
static unsigned g_rl_burst = 10;
static int64_t g_rl_window_ms = 10000;

void
log_set_rate_limit(unsigned burst, unsigned window_ms)
{
    g_rl_burst = burst;
    g_rl_window_ms = window_ms;
    memset(g_rl, 0, sizeof(g_rl));
}

static int64_t
mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static uint64_t
rl_key(const char *file, int line, const char *msg)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = file; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ (uint64_t)(unsigned)line) * 1099511628211ull;
    for (const char *p = msg; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h ? h : 1;
}

static void emit(log_level_t level, const char *file, int line, const char *msg);

static void
rl_summarize(rl_slot_t *r, int64_t now)
{
    if (r->suppressed > 0) {
        char m[300];
        snprintf(m, sizeof(m), "%u more line(s) like this were left out in the last %lld s: %s",
                 r->suppressed, (long long)((now - r->window_ms + 999) / 1000), r->sample);
        r->suppressed = 0;
        emit(r->level, r->file, r->line, m);
    }
}

void
log_flush_repeats(void)
{
    int64_t now = mono_ms();
    for (size_t i = 0; i < RL_SLOTS; i++) {
        rl_slot_t *r = &g_rl[i];
        if (r->key && r->suppressed && now - r->window_ms >= g_rl_window_ms)
            rl_summarize(r, now);
    }
}

/* True when the line may be written. */
static bool
rl_admit(log_level_t level, const char *file, int line, const char *msg)
{
    if (g_rl_burst == 0)
        return true;
    int64_t now = mono_ms();
    uint64_t key = rl_key(file, line, msg);
    rl_slot_t *hit = NULL, *oldest = &g_rl[0];
    for (size_t i = 0; i < RL_SLOTS; i++) {
        rl_slot_t *r = &g_rl[i];
        if (r->key && now - r->window_ms >= g_rl_window_ms) {
            rl_summarize(r, now); /* a window ended: say what it left out */
            if (r->key != key)
                r->key = 0;
        }
        if (r->key == key)
            hit = r;
        if (!r->key || (oldest->key && r->window_ms < oldest->window_ms))
            oldest = r;
    }
    if (hit && now - hit->window_ms >= g_rl_window_ms) {
        hit->window_ms = now;
        hit->count = 0;
    }
    if (!hit) {
        hit = oldest;
        if (hit->key)
            rl_summarize(hit, now);
        memset(hit, 0, sizeof(*hit));
        hit->key = key;
        hit->window_ms = now;
        hit->level = level;
        hit->file = file;
        hit->line = line;
        snprintf(hit->sample, sizeof(hit->sample), "%.*s", (int)sizeof(hit->sample) - 1, msg);
    }
    if (++hit->count <= g_rl_burst)
        return true;
    hit->suppressed++;
    return false;
}

void
log_write(log_level_t level, const char *file, int line, const char *fmt, ...)
{
    if (level > g_level)
        return;
    int saved_errno = errno;
    char msg[LOG_LINE_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mask_secrets_inplace(msg, sizeof(msg));
    if (rl_admit(level, file, line, msg))
        emit(level, file, line, msg);
    errno = saved_errno;
}

static void
emit(log_level_t level, const char *file, int line, const char *msg)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", (long)(tv.tv_usec / 1000));

    char out[LOG_LINE_MAX];
    int n;
    if (g_json) {
        char emsg[LOG_LINE_MAX / 2 + 64], epipe[300], erole[80];
        json_escape(msg, emsg, sizeof(emsg));
        json_escape(g_pipe, epipe, sizeof(epipe));
        json_escape(g_role, erole, sizeof(erole));
        n = snprintf(out, sizeof(out),
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"role\":\"%s\",\"pipe\":\"%s\","
                     "\"src\":\"%s:%d\",\"msg\":\"%s\"}\n",
                     ts, level_names[level], (int)getpid(), erole, epipe, base, line, emsg);
    } else {
        /* one line per message whatever it holds: input cannot forge log lines */
        char one[LOG_LINE_MAX / 2];
        log_oneline(msg, one, sizeof(one));
        n = snprintf(out, sizeof(out), "%s %-5s [%d %s%s%s] %s (%s:%d)\n", ts, level_names[level],
                     (int)getpid(), g_role, g_pipe[0] ? " " : "", g_pipe, one, base, line);
    }
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(out)) {
        n = sizeof(out) - 1;
        out[n - 1] = '\n';
    }
    write_all(g_fd, out, (size_t)n);
}
