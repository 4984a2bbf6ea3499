/*
 * log: formatting and the single write() per line. Owns no other state than the process's
 * role/pipe labels and settings; must not allocate on the heap (usable in low-memory paths).
 */
#include "log.h"
#include "json.h"
#include "mask.h"

#include <errno.h>
#include <stdarg.h>
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
    errno = saved_errno;
}
