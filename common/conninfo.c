/* conninfo: libpq's connection-string syntax, checked without libpq (PostgreSQL 15's keywords). */
#include "conninfo.h"

#include <ctype.h>
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

static bool
check_pair(const char *k, size_t kl, const char *v, size_t vl, char *err, size_t errlen)
{
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
check_uri(const char *s, char *err, size_t errlen)
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
            !check_pair(k, kl, v, vl, err, errlen))
            return false;
        q = amp ? amp + 1 : q + len;
    }
    return true;
}

static bool
check_pairs(const char *s, char *err, size_t errlen)
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
        if (!check_pair(k, kl, v, vl, err, errlen))
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
        return check_uri(s, err, errlen);
    return check_pairs(s, err, errlen);
}
