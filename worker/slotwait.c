/* slotwait: slot creation that says what it waits for (see slotwait.h). */
#include "slotwait.h"
#include "log.h"
#include "pgconn.h"
#include "timeutil.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

#define REPORT_EVERY_MS 3000

void
slotwait_blockers(PGconn *conn, char *out, size_t outlen)
{
    /* the waiting command's own backend and pgferry's other sessions have no xid of their own
     * here; every transaction with an xid may hold the slot's initial snapshot back */
    static const char sql[] =
        "SELECT 'prepared transaction ' || quote_literal(gid) || ' (prepared ' || "
        "  (extract(epoch FROM now() - prepared))::bigint || ' s ago in database ' || "
        "  quote_ident(database) || ')', prepared "
        "FROM pg_prepared_xacts "
        "UNION ALL "
        "SELECT 'the transaction of backend ' || pid || ' (' || coalesce(usename, '?') || '@' || "
        "  coalesce(datname, '?') || ', open ' || "
        "  (extract(epoch FROM now() - xact_start))::bigint || ' s, ' || coalesce(state, '?') || "
        "  ')', xact_start "
        "FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() "
        "ORDER BY 2 LIMIT 4";
    out[0] = '\0';
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        size_t l = 0;
        for (int i = 0; i < PQntuples(r) && l + 1 < outlen; i++) {
            int n = snprintf(out + l, outlen - l, "%s%s", i ? "; " : "", PQgetvalue(r, i, 0));
            l = n < 0 ? l : l + (size_t)n;
        }
    }
    PQclear(r);
}

PGresult *
slotwait_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
              const char *conninfo, worker_t *w, bool *stopped)
{
    *stopped = false;
    int ok = nparams > 0 ? PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)
                         : PQsendQuery(conn, sql);
    if (!ok)
        return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
    int64_t started = time_mono_ms(), next_report = started + REPORT_EVERY_MS;
    PGconn *side = NULL;
    char last[1024] = "";
    while (PQisBusy(conn)) {
        struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
        int rc = poll(&pfd, 1, 200);
        if (rc > 0 && !PQconsumeInput(conn))
            break; /* the connection failed: PQgetResult says why */
        if (w && worker_should_stop(w)) {
            PGcancel *c = PQgetCancel(conn);
            char e[256];
            if (c) {
                PQcancel(c, e, sizeof(e));
                PQfreeCancel(c);
            }
            *stopped = true;
            break;
        }
        int64_t now = time_mono_ms();
        if (now < next_report)
            continue;
        next_report = now + REPORT_EVERY_MS;
        errclass_t cls;
        char err[512], who[900], activity[1024];
        if (!side)
            side = pgconn_connect(conninfo, "pgferry-slotwait", false, &cls, err, sizeof(err));
        if (!side)
            continue;
        slotwait_blockers(side, who, sizeof(who));
        snprintf(activity, sizeof(activity), "creating the replication slot for %lld s: %s%.900s",
                 (long long)((now - started) / 1000),
                 who[0] ? "PostgreSQL waits for the transactions open when it started to end: "
                        : "PostgreSQL waits for the transactions open when it started to end",
                 who);
        if (w)
            worker_send_progress(w, 0, 0, "", activity);
        if (strcmp(who, last) != 0) { /* logged when the blockers change */
            log_info("%s", activity);
            snprintf(last, sizeof(last), "%s", who);
        }
    }
    if (side)
        PQfinish(side);
    if (*stopped) {
        PGresult *r;
        while ((r = PQgetResult(conn)) != NULL)
            PQclear(r);
        return NULL;
    }
    PGresult *res = PQgetResult(conn), *extra;
    while ((extra = PQgetResult(conn)) != NULL)
        PQclear(extra);
    if (w && time_mono_ms() - started >= REPORT_EVERY_MS)
        worker_send_progress(w, 0, 0, "", "replication slot created");
    return res;
}
