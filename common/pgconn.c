/* pgconn: the only place that maps libpq status to errclass_t. */
#include "pgconn.h"
#include "conninfo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void
first_line(const char *in, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", in ? in : "");
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    /* libpq joins multi-host attempts with newlines; keep them on one line */
    char *w = out;
    for (char *p = out; *p; p++) {
        char ch = (*p == '\n' || *p == '\t') ? ' ' : *p;
        if (ch == ' ' && w > out && w[-1] == ' ')
            continue;
        *w++ = ch;
    }
    *w = '\0';
}

/* A connected stream socket to host (a directory: its Unix socket) and port, or -1. */
static int
probe_connect(const char *host, const char *port)
{
    if (host[0] == '/' || host[0] == '@') {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/.s.PGSQL.%s", host, port) >=
            sizeof(sa.sun_path))
            return -1;
        if (sa.sun_path[0] == '@')
            sa.sun_path[0] = '\0';
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            close(fd);
            fd = -1;
        }
        return fd;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        int e = 0;
        socklen_t el = sizeof(e);
        if (poll(&p, 1, 5000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static bool
probe_read(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1)
            return false;
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* True when the server at host:port asks for the password in clear text before any TLS, as
 * libpq would meet it with this sslmode; false when it does not, or cannot be asked. */
static bool
probe_asks_cleartext(const char *host, const char *port, const char *user, const char *db,
                     const char *sslmode, bool replication)
{
    int fd = probe_connect(host, port);
    if (fd < 0)
        return false;
    bool tcp = host[0] != '/' && host[0] != '@', asks = false;
    unsigned char b[8];
    if (tcp && strcmp(sslmode, "disable") != 0 && strcmp(sslmode, "allow") != 0) {
        /* prefer: TLS first; a server that takes it gets the password encrypted */
        uint32_t req[2] = {htonl(8), htonl(80877103)};
        if (write(fd, req, sizeof(req)) != (ssize_t)sizeof(req) || !probe_read(fd, b, 1) ||
            b[0] != 'N')
            goto out;
    }
    char msg[1200];
    size_t n = 8;
    const char *kv[] = {"user",    user, "database", db, replication ? "replication" : NULL,
                        "database"};
    for (size_t i = 0; i < 6 && kv[i]; i += 2) {
        size_t kl = strlen(kv[i]) + 1, vl = strlen(kv[i + 1]) + 1;
        if (n + kl + vl + 1 > sizeof(msg))
            goto out;
        memcpy(msg + n, kv[i], kl);
        memcpy(msg + n + kl, kv[i + 1], vl);
        n += kl + vl;
    }
    msg[n++] = '\0';
    uint32_t len = htonl((uint32_t)n), ver = htonl(196608);
    memcpy(msg, &len, 4);
    memcpy(msg + 4, &ver, 4);
    if (write(fd, msg, n) != (ssize_t)n || !probe_read(fd, b, 5) || b[0] != 'R')
        goto out;
    uint32_t code;
    if (probe_read(fd, &code, 4))
        asks = ntohl(code) == 3; /* AuthenticationCleartextPassword */
out:
    /* end like a client that gave up: the server reads EOF and ends quietly; what it sent is
     * read (closing over unread data would reset the connection, which the server logs) */
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 64; i++) {
        char sink[512];
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) != 1 || read(fd, sink, sizeof(sink)) <= 0)
            break;
    }
    close(fd);
    return asks;
}

/* The n-th item of a comma-separated list (the last one when the list is shorter, as libpq
 * uses a single port for every host). */
static void
list_item(const char *list, size_t n, char *out, size_t outlen)
{
    const char *p = list;
    for (size_t i = 0; i < n; i++) {
        const char *c = strchr(p, ',');
        if (!c)
            break;
        p = c + 1;
    }
    size_t l = strcspn(p, ",");
    snprintf(out, outlen, "%.*s", (int)l, p);
}

static const char *
opt_or_env(const char *v, const char *env, const char *def)
{
    if (v && *v)
        return v;
    const char *e = getenv(env);
    return e && *e ? e : def;
}

/* The rules a control client's source string meets in the worker, on libpq's own parse: no
 * file keywords outside secrets_dir, no clear-text password unless the operator allows it. */
static bool
source_allowed(const char *conninfo, bool replication, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        PQfreemem(perr);
        return true; /* PQconnectdbParams reports it */
    }
    const char *dir = getenv("PGFERRY_SECRETS_DIR");
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *user = NULL, *db = NULL,
               *sslmode = NULL;
    bool ok = true;
    for (PQconninfoOption *o = opts; o->keyword && ok; o++) {
        if (!o->val)
            continue;
        ok = conninfo_file_keyword_check(o->keyword, o->val, dir ? dir : "", err, errlen);
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "sslmode") == 0)
            sslmode = o->val;
    }
    const char *allow = getenv("PGFERRY_ALLOW_CLEARTEXT_PASSWORD");
    if (ok && !(allow && strcmp(allow, "true") == 0) && PQlibVersion() < 160000) {
        /* libpq 16 refuses by itself (require_auth, below); older ones are asked first */
        struct passwd *pw = getpwuid(geteuid());
        user = opt_or_env(user, "PGUSER", pw ? pw->pw_name : "postgres");
        db = opt_or_env(db, "PGDATABASE", user);
        sslmode = opt_or_env(sslmode, "PGSSLMODE", "prefer");
        const char *hosts =
            opt_or_env(hostaddr, "PGHOSTADDR", opt_or_env(host, "PGHOST", "/var/run/postgresql"));
        const char *ports = opt_or_env(port, "PGPORT", "5432");
        bool tls_only = strcmp(sslmode, "require") == 0 || strcmp(sslmode, "verify-ca") == 0 ||
                        strcmp(sslmode, "verify-full") == 0;
        size_t nh = 1;
        for (const char *q = hosts; *q; q++)
            nh += *q == ',';
        for (size_t i = 0; i < nh && !tls_only && ok; i++) {
            char h[256], pt[16];
            list_item(hosts, i, h, sizeof(h));
            list_item(ports, i, pt, sizeof(pt));
            if (!h[0])
                snprintf(h, sizeof(h), "/var/run/postgresql");
            if (!pt[0])
                snprintf(pt, sizeof(pt), "5432");
            if (probe_asks_cleartext(h, pt, user, db, sslmode, replication)) {
                snprintf(err, errlen,
                         "cannot connect to the source: the server at %s port %s asks for the "
                         "password in clear text, which pgferry refuses "
                         "(allow_cleartext_password in pgferryd's configuration; or use scram or "
                         "TLS with sslmode=require)",
                         h, pt);
                ok = false;
            }
        }
    }
    PQconninfoFree(opts);
    return ok;
}

PGconn *
pgconn_connect(const char *conninfo, const char *app_name, bool replication, errclass_t *cls,
               char *err, size_t errlen)
{
    /* output functions give one canonical text per value under these settings; typemap and the
     * destination's String columns rely on it */
    if (!source_allowed(conninfo, replication, err, errlen)) {
        *cls = ERRCLASS_FATAL;
        return NULL;
    }
    const char *allow = getenv("PGFERRY_ALLOW_CLEARTEXT_PASSWORD");
    bool require_auth = !(allow && strcmp(allow, "true") == 0) && PQlibVersion() >= 160000;
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL, NULL,
                          NULL};
    const char *vals[] = {conninfo, app_name, "10", PGCONN_PINNED_OPTIONS, NULL, NULL, NULL};
    size_t k = 4;
    if (replication) {
        keys[k] = "replication";
        vals[k++] = "database";
    }
    if (require_auth) {
        keys[k] = "require_auth";
        vals[k++] = "!password";
    }
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        *cls = ERRCLASS_TRANSIENT;
        snprintf(err, errlen, "out of memory creating a PostgreSQL connection");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[1024];
        first_line(PQerrorMessage(c), msg, sizeof(msg));
        /* libpq gives no SQLSTATE for connection failures: classify by what the server said */
        if (strstr(msg, "authentication failed") || strstr(msg, "pg_hba.conf") ||
            strstr(msg, "does not exist") || strstr(msg, "password") ||
            strstr(msg, "permission denied") || strstr(msg, "invalid connection option") ||
            strstr(msg, "invalid URI") || strstr(msg, "missing \"=\"") ||
            strstr(msg, "not permitted to log in") ||
            strstr(msg, "must be superuser or replication"))
            *cls = ERRCLASS_FATAL;
        else
            *cls = ERRCLASS_TRANSIENT;
        snprintf(err, errlen, "cannot connect to the source: %s", msg);
        PQfinish(c);
        return NULL;
    }
    *cls = ERRCLASS_NONE;
    return c;
}

errclass_t
pgconn_classify(const PGresult *res, PGconn *conn)
{
    if (conn && PQstatus(conn) != CONNECTION_OK)
        return ERRCLASS_TRANSIENT;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return ERRCLASS_TRANSIENT;
    /* 08 connection, 53 resources, 57 operator intervention (shutdown), 40 rollback
     * (serialization, deadlock), 55P03 lock not available */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57", 2) == 0 || strncmp(state, "40", 2) == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "55006") == 0)
        return ERRCLASS_TRANSIENT;
    return ERRCLASS_FATAL;
}

PGresult *
pgconn_query(PGconn *conn, const char *sql, int nparams, const char *const *params, errclass_t *cls,
             char *err, size_t errlen)
{
    PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *cls = ERRCLASS_NONE;
        return r;
    }
    char msg[1024];
    first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(conn), msg, sizeof(msg));
    *cls = pgconn_classify(r, conn);
    snprintf(err, errlen, "source query failed: %s", msg);
    PQclear(r);
    return NULL;
}

const char *
pgconn_message(const PGresult *res, PGconn *conn, char *out, size_t outlen)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!m || !*m)
        m = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                              : (conn ? PQerrorMessage(conn) : "");
    snprintf(out, outlen, "%s", m);
    size_t n = strlen(out);
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t')
            out[i] = ' ';
    }
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
    return out;
}

bool
pgconn_too_large(const PGresult *res)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *d = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    return (m && (strstr(m, "invalid memory alloc request size") ||
                  strstr(m, "Cannot enlarge string buffer"))) ||
           (d && strstr(d, "Cannot enlarge string buffer"));
}
