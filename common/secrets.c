/* secrets: the password file and variable rules (see secrets.h). */
#include "secrets.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

bool
secret_file_check(const char *dir, const char *path, char *out, size_t outlen, char *err,
                  size_t errlen)
{
    return secret_path_check(dir, "--dest-password-file", path, out, outlen, err, errlen);
}

bool
secret_path_check(const char *dir, const char *label, const char *path, char *out, size_t outlen,
                  char *err, size_t errlen)
{
    if (!dir || !*dir) {
        snprintf(err, errlen,
                 "%s %.200s refused: password files are off in this pgferryd (set secrets_dir "
                 "in its config and put the file there)",
                 label, path);
        return false;
    }
    char rdir[PATH_MAX], joined[PATH_MAX + 256], rpath[PATH_MAX];
    if (!realpath(dir, rdir)) {
        snprintf(err, errlen, "secrets_dir %.200s: %s", dir, strerror(errno));
        return false;
    }
    if (path[0] == '/')
        snprintf(joined, sizeof(joined), "%.*s", (int)(sizeof(joined) - 1), path);
    else
        snprintf(joined, sizeof(joined), "%s/%.*s", rdir, (int)(sizeof(joined) - strlen(rdir) - 2),
                 path);
    if (!realpath(joined, rpath)) {
        snprintf(err, errlen, "%s %.200s: %s", label, path, strerror(errno));
        return false;
    }
    size_t dl = strlen(rdir);
    bool inside = strncmp(rpath, rdir, dl) == 0 && (rpath[dl] == '/' || dl == 1) &&
                  rpath[dl == 1 ? 1 : dl + 1] != '\0';
    if (!inside) {
        snprintf(err, errlen,
                 "%s %.200s refused: it is not inside secrets_dir %.200s (symlinks followed)",
                 label, path, rdir);
        return false;
    }
    struct stat st;
    if (stat(rpath, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %.200s refused: not a regular file", label, path);
        return false;
    }
    if (strlen(rpath) >= outlen) {
        snprintf(err, errlen, "%s %.200s: path too long", label, path);
        return false;
    }
    memcpy(out, rpath, strlen(rpath) + 1);
    return true;
}

bool
secret_env_check(const char *prefix, const char *name, char *err, size_t errlen)
{
    if (!prefix || !*prefix) {
        snprintf(err, errlen,
                 "--dest-password-env %.100s refused: password variables are off in this "
                 "pgferryd (set secret_env_prefix in its config)",
                 name);
        return false;
    }
    size_t pl = strlen(prefix);
    bool ok = strncmp(name, prefix, pl) == 0 && name[pl] != '\0';
    for (const char *p = name + (ok ? pl : 0); ok && *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            ok = false;
    }
    if (!ok) {
        snprintf(err, errlen,
                 "--dest-password-env %.100s refused: pgferryd gives pipes only variables named "
                 "%.60s<NAME> (secret_env_prefix; letters, digits, '_')",
                 name, prefix);
        return false;
    }
    return true;
}

bool
secret_endpoint_norm(const char *in, size_t inlen, char *out, size_t outlen, char *err,
                     size_t errlen)
{
    while (inlen > 0 && (*in == ' ' || *in == '\t')) {
        in++;
        inlen--;
    }
    while (inlen > 0 && (in[inlen - 1] == ' ' || in[inlen - 1] == '\t'))
        inlen--;
    const char *p = in, *end = in + inlen;
    long defport = -1;
    if (inlen > 7 && strncasecmp(p, "http://", 7) == 0) {
        p += 7;
        defport = 80;
    } else if (inlen > 8 && strncasecmp(p, "https://", 8) == 0) {
        p += 8;
        defport = 443;
    }
    if (defport > 0) {
        /* authority only: up to the path, without user info */
        const char *a = p;
        while (a < end && *a != '/' && *a != '?' && *a != '#')
            a++;
        end = a;
        for (const char *q = p; q < end; q++) {
            if (*q == '@')
                p = q + 1;
        }
    }
    const char *host = p, *hend, *port = NULL;
    if (p < end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close) {
            snprintf(err, errlen, "endpoint has a malformed [IPv6] host");
            return false;
        }
        hend = close + 1;
        if (hend < end && *hend != ':') {
            snprintf(err, errlen, "endpoint has a malformed [IPv6] host");
            return false;
        }
        port = hend < end ? hend + 1 : NULL;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
        port = colon ? colon + 1 : NULL;
    }
    if (hend == host) {
        snprintf(err, errlen, "endpoint has no host (expected HOST:PORT)");
        return false;
    }
    for (const char *q = host; q < hend; q++) {
        if (!(isalnum((unsigned char)*q) || *q == '.' || *q == '-' || *q == '_' || *q == '[' ||
              *q == ']' || (*host == '[' && *q == ':'))) {
            snprintf(err, errlen, "endpoint host holds '%c'", *q);
            return false;
        }
    }
    long v = 0;
    if (port) {
        if (port >= end) {
            snprintf(err, errlen, "endpoint has no usable port");
            return false;
        }
        for (const char *q = port; q < end; q++) {
            if (!isdigit((unsigned char)*q) || v > 65535) {
                snprintf(err, errlen, "endpoint has no usable port");
                return false;
            }
            v = v * 10 + (*q - '0');
        }
    } else if (defport > 0) {
        v = defport;
    } else {
        snprintf(err, errlen, "endpoint %.*s names no port (expected HOST:PORT)",
                 (int)(hend - host > 100 ? 100 : hend - host), host);
        return false;
    }
    if (v < 1 || v > 65535) {
        snprintf(err, errlen, "endpoint has no usable port");
        return false;
    }
    size_t hl = (size_t)(hend - host);
    if (hl + 8 > outlen) {
        snprintf(err, errlen, "endpoint host is too long");
        return false;
    }
    for (size_t i = 0; i < hl; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    snprintf(out + hl, outlen - hl, ":%ld", v);
    return true;
}

bool
secret_endpoints_check(const char *list, char *err, size_t errlen)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char norm[300];
        if (!secret_endpoint_norm(p, len, norm, sizeof(norm), err, errlen))
            return false;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

const secret_bind_t *
secret_bind_find(const secret_bind_t *binds, size_t n, const char *dir, const char *file_resolved,
                 const char *env_name)
{
    for (size_t i = 0; i < n; i++) {
        const secret_bind_t *b = &binds[i];
        if (env_name && *env_name) {
            if (strcmp(b->name, env_name) == 0)
                return b;
            continue;
        }
        char resolved[PATH_MAX], e[64];
        if (file_resolved && dir && *dir &&
            secret_path_check(dir, "secret_bind", b->name, resolved, sizeof(resolved), e,
                              sizeof(e)) &&
            strcmp(resolved, file_resolved) == 0)
            return b;
    }
    return NULL;
}

static bool
bound_to(const secret_bind_t *b, const char *norm)
{
    const char *p = b->endpoints;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char one[300], e[128];
        if (secret_endpoint_norm(p, len, one, sizeof(one), e, sizeof(e)) && strcmp(one, norm) == 0)
            return true;
        if (!comma)
            return false;
        p = comma + 1;
    }
}

bool
secret_dest_allowed(const secret_bind_t *b, const char *label, const char *urls, char *err,
                    size_t errlen)
{
    const char *p = urls;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char norm[300], e[200];
        if (!secret_endpoint_norm(p, len, norm, sizeof(norm), e, sizeof(e))) {
            snprintf(err, errlen, "destination endpoint: %s", e);
            return false;
        }
        if (!b) {
            snprintf(err, errlen,
                     "%.200s refused: this secret is bound to no endpoint (secret_bind in "
                     "pgferryd's configuration), so it is not sent to %s",
                     label, norm);
            return false;
        }
        if (!bound_to(b, norm)) {
            snprintf(err, errlen,
                     "%.200s refused: destination %s is not bound to this secret (secret_bind "
                     "in pgferryd's configuration)",
                     label, norm);
            return false;
        }
        if (!comma)
            return true;
        p = comma + 1;
    }
}

size_t
secret_binds_format(const secret_bind_t *binds, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + o, outlen - o, "%s%s=%s", i ? "\n" : "", binds[i].name,
                         binds[i].endpoints);
        if (w < 0 || (size_t)w >= outlen - o) {
            out[o] = '\0';
            return i;
        }
        o += (size_t)w;
    }
    return n;
}

size_t
secret_binds_parse(const char *s, secret_bind_t *out, size_t max)
{
    size_t n = 0;
    while (s && *s && n < max) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (eq && (size_t)(eq - s) < sizeof(out[n].name) &&
            len - (size_t)(eq - s) - 1 < sizeof(out[n].endpoints)) {
            snprintf(out[n].name, sizeof(out[n].name), "%.*s", (int)(eq - s), s);
            snprintf(out[n].endpoints, sizeof(out[n].endpoints), "%.*s",
                     (int)(len - (size_t)(eq - s) - 1), eq + 1);
            n++;
        }
        s = nl ? nl + 1 : s + len;
    }
    return n;
}
