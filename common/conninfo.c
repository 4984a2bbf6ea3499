/* conninfo: libpq's connection-string syntax, checked without libpq (PostgreSQL 15's keywords). */
#include "conninfo.h"
#include "secrets.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const keywords[] = {"host",
                                       "hostaddr",
                                       "port",
                                       "dbname",
                                       "user",
                                       "password",
                                       "passfile",
                                       "channel_binding",
                                       "connect_timeout",
                                       "client_encoding",
                                       "options",
                                       "application_name",
                                       "fallback_application_name",
                                       "keepalives",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "sslmode",
                                       "requiressl",
                                       "sslcompression",
                                       "sslcert",
                                       "sslkey",
                                       "sslpassword",
                                       "sslrootcert",
                                       "sslcrl",
                                       "sslcrldir",
                                       "sslsni",
                                       "requirepeer",
                                       "ssl_min_protocol_version",
                                       "ssl_max_protocol_version",
                                       "krbsrvname",
                                       "gsslib",
                                       "gssencmode",
                                       "replication",
                                       "target_session_attrs",
                                       "service",
                                       NULL};

static const char *const integer_keywords[] = {
    "connect_timeout",  "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", NULL};

static bool
in_list(const char *const *list, const char *k, size_t kl)
{
    for (size_t i = 0; list[i]; i++) {
        if (strlen(list[i]) == kl && strncmp(list[i], k, kl) == 0)
            return true;
    }
    return false;
}

/* An integer as libpq's parse_int_param reads it (optional spaces and sign, digits). */
static bool
is_integer(const char *v, size_t n, long *out)
{
    size_t i = 0;
    while (i < n && isspace((unsigned char)v[i]))
        i++;
    size_t start = i;
    if (i < n && (v[i] == '-' || v[i] == '+'))
        i++;
    size_t digits = i;
    while (i < n && isdigit((unsigned char)v[i]))
        i++;
    if (i == digits)
        return false;
    size_t end = i;
    while (i < n && isspace((unsigned char)v[i]))
        i++;
    if (i != n || end - start > 10)
        return false;
    char tmp[16];
    memcpy(tmp, v + start, end - start);
    tmp[end - start] = '\0';
    *out = strtol(tmp, NULL, 10);
    return true;
}

/* Each comma-separated port of a (multi-host) port list. */
static bool
check_ports(const char *v, size_t n, char *err, size_t errlen)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && v[i] != ',')
            continue;
        long port;
        if (i > start && (!is_integer(v + start, i - start, &port) || port < 1 || port > 65535)) {
            snprintf(err, errlen, "invalid port \"%.*s\" in the source connection string",
                     (int)(i - start > 20 ? 20 : i - start), v + start);
            return false;
        }
        start = i + 1;
    }
    return true;
}

/* set while conninfo_check_files walks a string: the file keywords are checked instead */
typedef struct {
    const char *dir;
} files_ctx_t;

bool
conninfo_file_keyword_check(const char *key, const char *val, const char *secrets_dir, char *err,
                            size_t errlen)
{
    /* files a control client could make the worker send or use as the operator's identity */
    static const char *const refused[] = {"passfile", "service", "sslkey", "sslcert", NULL};
    /* public material a connection may need (certificate authorities, revocation lists) */
    static const char *const confined[] = {"sslrootcert", "sslcrl", "sslcrldir", NULL};
    if (!val)
        return true;
    /* present at all, even empty: libpq takes an empty one as "the default file" (~/.pgpass,
     * ~/.postgresql/postgresql.key), past the workers' environment */
    if (in_list(refused, key, strlen(key))) {
        snprintf(err, errlen,
                 "connection option \"%s\" refused in the source connection string: pgferry "
                 "does not let a pipe choose files of pgferryd's host (passwords: in the "
                 "connection string, or source_passfile in pgferryd's configuration)",
                 key);
        return false;
    }
    if (in_list(confined, key, strlen(key)) && *val) {
        char resolved[PATH_MAX], e[600];
        if (strcmp(key, "sslcrldir") == 0) {
            /* a directory: secrets_dir itself or one inside it */
            char rdir[PATH_MAX], joined[2 * PATH_MAX], rval[PATH_MAX];
            bool ok = secrets_dir && *secrets_dir && realpath(secrets_dir, rdir);
            if (ok) {
                snprintf(joined, sizeof(joined), "%s%s%s", val[0] == '/' ? "" : rdir,
                         val[0] == '/' ? "" : "/", val);
                size_t dl = strlen(rdir);
                ok = realpath(joined, rval) && strncmp(rval, rdir, dl) == 0 &&
                     (rval[dl] == '\0' || rval[dl] == '/');
            }
            if (!ok) {
                snprintf(err, errlen,
                         "connection option \"sslcrldir\" refused in the source connection "
                         "string: it must be secrets_dir or a directory inside it");
                return false;
            }
            return true;
        }
        if (!secret_path_check(secrets_dir, key, val, resolved, sizeof(resolved), e, sizeof(e))) {
            snprintf(err, errlen, "in the source connection string: %s", e);
            return false;
        }
    }
    return true;
}

static bool
check_pair(const char *k, size_t kl, const char *v, size_t vl, char *err, size_t errlen,
           const files_ctx_t *fc)
{
    if (fc) {
        char key[64];
        if (kl >= sizeof(key))
            return true;
        memcpy(key, k, kl);
        key[kl] = '\0';
        return conninfo_file_keyword_check(key, v, fc->dir, err, errlen);
    }
    if (!in_list(keywords, k, kl)) {
        snprintf(err, errlen, "invalid connection option \"%.*s\" in the source connection string",
                 (int)(kl > 40 ? 40 : kl), k);
        return false;
    }
    if (kl == 4 && strncmp(k, "port", 4) == 0)
        return check_ports(v, vl, err, errlen);
    long n;
    if (in_list(integer_keywords, k, kl) && vl > 0 && !is_integer(v, vl, &n)) {
        snprintf(err, errlen,
                 "invalid integer value \"%.*s\" for connection option \"%.*s\" in the source "
                 "connection string",
                 (int)(vl > 20 ? 20 : vl), v, (int)kl, k);
        return false;
    }
    return true;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out; false on a bad escape. */
static bool
decode(const char *s, size_t n, char *out, size_t outlen, size_t *olen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return false;
            c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            if (c == '\0')
                return false;
            i += 2;
        }
        if (o + 1 >= outlen)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    *olen = o;
    return true;
}

static bool
check_uri(const char *s, char *err, size_t errlen, const files_ctx_t *fc)
{
    const char *p = strstr(s, "://") + 3;
    /* user[:password]@ */
    const char *at = NULL;
    for (const char *q = p; *q && *q != '/' && *q != '?'; q++) {
        if (*q == '@')
            at = q;
    }
    const char *host = at ? at + 1 : p;
    /* host list, each host[:port], IPv6 in brackets */
    char ports[512];
    size_t pl = 0;
    const char *q = host;
    while (*q && *q != '/' && *q != '?') {
        if (*q == '[') {
            const char *close = strchr(q, ']');
            if (!close) {
                snprintf(err, errlen, "unterminated IPv6 address in the source URI");
                return false;
            }
            q = close + 1;
        } else {
            while (*q && *q != ':' && *q != ',' && *q != '/' && *q != '?')
                q++;
        }
        if (*q == ':') {
            const char *ps = ++q;
            while (*q && *q != ',' && *q != '/' && *q != '?')
                q++;
            if (q > ps) {
                char dec[64];
                size_t dl;
                if (!decode(ps, (size_t)(q - ps), dec, sizeof(dec), &dl) ||
                    !check_ports(dec, dl, err, errlen)) {
                    if (!err[0])
                        snprintf(err, errlen, "invalid port in the source URI");
                    return false;
                }
                if (pl + dl + 2 < sizeof(ports)) {
                    memcpy(ports + pl, dec, dl);
                    pl += dl;
                    ports[pl++] = ',';
                }
            }
        } else if (*q && *q != ',' && *q != '/' && *q != '?') {
            snprintf(err, errlen, "unexpected character in the host part of the source URI");
            return false;
        }
        if (*q == ',')
            q++;
    }
    if (*q == '/')
        q = q + strcspn(q, "?");
    if (*q != '?')
        return true;
    q++;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        if (!eq) {
            snprintf(err, errlen, "missing \"=\" after a parameter of the source URI");
            return false;
        }
        char k[128], v[1024];
        size_t kl, vl;
        if (!decode(q, (size_t)(eq - q), k, sizeof(k), &kl) ||
            !decode(eq + 1, len - (size_t)(eq - q) - 1, v, sizeof(v), &vl)) {
            snprintf(err, errlen, "invalid percent-encoded value in the source URI");
            return false;
        }
        /* libpq reads ssl=true as sslmode=require */
        if (!(strcmp(k, "ssl") == 0 && strcmp(v, "true") == 0) &&
            !check_pair(k, kl, v, vl, err, errlen, fc))
            return false;
        q = amp ? amp + 1 : q + len;
    }
    return true;
}

static bool
check_pairs(const char *s, char *err, size_t errlen, const files_ctx_t *fc)
{
    const char *p = s;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            return true;
        const char *k = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t kl = (size_t)(p - k);
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '=') {
            snprintf(err, errlen, "missing \"=\" after \"%.*s\" in the source connection string",
                     (int)(kl > 40 ? 40 : kl), k);
            return false;
        }
        p++;
        while (isspace((unsigned char)*p))
            p++;
        char v[1024];
        size_t vl = 0;
        if (*p == '\'') {
            p++;
            for (;;) {
                if (!*p) {
                    snprintf(err, errlen,
                             "unterminated quoted string in the source connection "
                             "string");
                    return false;
                }
                if (*p == '\\' && p[1])
                    p++;
                else if (*p == '\'')
                    break;
                if (vl + 1 < sizeof(v))
                    v[vl++] = *p;
                p++;
            }
            p++;
        } else {
            while (*p && !isspace((unsigned char)*p)) {
                if (*p == '\\' && p[1])
                    p++;
                if (vl + 1 < sizeof(v))
                    v[vl++] = *p;
                p++;
            }
        }
        v[vl] = '\0';
        if (!check_pair(k, kl, v, vl, err, errlen, fc))
            return false;
    }
}

bool
conninfo_check(const char *s, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!s || !*s) {
        snprintf(err, errlen, "the source connection string is empty");
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(err, errlen,
                     "the source connection string holds a control character "
                     "(0x%02x)",
                     *p);
            return false;
        }
    }
    if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0)
        return check_uri(s, err, errlen, NULL);
    return check_pairs(s, err, errlen, NULL);
}

bool
conninfo_check_files(const char *s, const char *secrets_dir, char *err, size_t errlen)
{
    err[0] = '\0';
    files_ctx_t fc = {secrets_dir ? secrets_dir : ""};
    if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0)
        return check_uri(s, err, errlen, &fc);
    return check_pairs(s, err, errlen, &fc);
}
