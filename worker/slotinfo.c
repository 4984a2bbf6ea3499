/* slotinfo: pg_replication_slots for one slot, and the monitor loop. */
#include "slotinfo.h"
#include "log.h"
#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

errclass_t
slotinfo_query(PGconn *pg, const char *slot, slotinfo_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    pgferry__worker__slot_info__init(&out->msg);
    const char *p[] = {slot};
    errclass_t cls;
    PGresult *r = pgconn_query(
        pg,
        "SELECT pg_current_wal_lsn(), confirmed_flush_lsn, restart_lsn, "
        " COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint, "
        " COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, "
        " COALESCE(wal_status, ''), COALESCE(safe_wal_size, -1), "
        /* failover slots: PostgreSQL 17 and later have the column */
        " COALESCE((to_jsonb(s) ->> 'failover')::bool::int, -1) "
        "FROM pg_replication_slots s WHERE slot_name = $1",
        1, p, &cls, err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen,
                 "replication slot %s no longer exists on the source (dropped outside pgferry); "
                 "resync the pipe to start from a new slot",
                 slot);
        return ERRCLASS_FATAL;
    }
    snprintf(out->current, sizeof(out->current), "%s", PQgetvalue(r, 0, 0));
    snprintf(out->confirmed, sizeof(out->confirmed), "%s", PQgetvalue(r, 0, 1));
    snprintf(out->restart, sizeof(out->restart), "%s", PQgetvalue(r, 0, 2));
    snprintf(out->wal_status, sizeof(out->wal_status), "%s", PQgetvalue(r, 0, 5));
    long long lag = atoll(PQgetvalue(r, 0, 3)), kept = atoll(PQgetvalue(r, 0, 4));
    out->msg.lag_bytes = lag > 0 ? (uint64_t)lag : 0;
    out->msg.retained_bytes = kept > 0 ? (uint64_t)kept : 0;
    out->msg.safe_wal_size = atoll(PQgetvalue(r, 0, 6));
    out->msg.failover = atoi(PQgetvalue(r, 0, 7));
    out->msg.failover_known = true;
    PQclear(r);
    out->msg.current_lsn = out->current;
    out->msg.confirmed_lsn = out->confirmed;
    out->msg.restart_lsn = out->restart;
    out->msg.wal_status = out->wal_status;
    if (strcmp(out->wal_status, "lost") == 0) {
        snprintf(err, errlen,
                 "replication slot %s was invalidated (wal_status lost: the source removed WAL "
                 "it needed, see max_slot_wal_keep_size); changes are missing, resync the pipe",
                 slot);
        return ERRCLASS_FATAL;
    }
    return ERRCLASS_NONE;
}

static bool
send_slot(worker_t *w, slotinfo_t *si)
{
    return worker_send_slot(w, &si->msg);
}

errclass_t
monitor_run(const Pgferry__State__PipeSpec *spec, worker_t *w, int interval_ms, char *err,
            size_t errlen)
{
    errclass_t cls = ERRCLASS_NONE;
    PGconn *pg = NULL;
    do {
        if (!pg) {
            pg = pgconn_connect(spec->source, "pgferry-monitor", false, &cls, err, errlen);
            if (!pg)
                return cls;
        }
        slotinfo_t si;
        cls = slotinfo_query(pg, spec->slot, &si, err, errlen);
        if (cls != ERRCLASS_NONE)
            break;
        send_slot(w, &si);
        char detail[200];
        snprintf(detail, sizeof(detail), "watching slot %s: %.1f MB of WAL retained", spec->slot,
                 (double)si.msg.retained_bytes / 1048576.0);
        worker_send_progress(w, 0, 0, NULL, detail);
    } while (!worker_wait_stop(w, interval_ms));
    if (pg)
        PQfinish(pg);
    return cls;
}
