/* pgconn: the only place that maps libpq status to errclass_t. */
#include "pgconn.h"

#include <stdio.h>
#include <string.h>

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

PGconn *
pgconn_connect(const char *conninfo, const char *app_name, bool replication, errclass_t *cls,
               char *err, size_t errlen)
{
    /* output functions give one canonical text per value under these settings; typemap and the
     * destination's String columns rely on it */
    const char *keys[] = {"dbname",  "application_name", "connect_timeout",
                          "options", "replication",      NULL};
    const char *vals[] = {
        conninfo, app_name, "10", PGCONN_PINNED_OPTIONS, replication ? "database" : NULL, NULL};
    if (!replication)
        keys[4] = NULL;
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
