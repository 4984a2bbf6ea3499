/* snapshot: exported snapshot, COPY text -> RowBinary -> streaming insert. */
#include "snapshot.h"
#include "buf.h"
#include "chclient.h"
#include "chsql.h"
#include "copytext.h"
#include "log.h"
#include "pgconn.h"
#include "typemap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_EVERY_ROWS 100000

typedef struct {
    PGconn *pg;
    worker_t *w;
    const Pgferry__State__TableDef *def;
    typemap_col_t *cols;
    copytext_field_t *fields;
    buf_t pending;
    size_t offset; /* bytes of pending already handed to curl */
    bool copy_done;
    uint64_t rows, bytes;
    errclass_t cls;
    char err[1024];
} stream_state_t;

/* Fills st->pending with at least `want` bytes of encoded rows, or until COPY ends. */
static bool
fill(stream_state_t *st, size_t want)
{
    while (!st->copy_done && st->pending.len - st->offset < want) {
        char *row = NULL;
        int n = PQgetCopyData(st->pg, &row, 0);
        if (n == -1) {
            st->copy_done = true;
            break;
        }
        if (n < 0) {
            st->cls = ERRCLASS_TRANSIENT;
            snprintf(st->err, sizeof(st->err), "COPY from %s.%s failed: %s", st->def->schema,
                     st->def->name, PQerrorMessage(st->pg));
            return false;
        }
        char e[256], where[128] = "";
        bool ok = copytext_split(row, (size_t)n, st->fields, st->def->n_columns, e, sizeof(e));
        for (size_t i = 0; ok && i < st->def->n_columns; i++) {
            ok = typemap_encode(&st->cols[i], st->fields[i].ptr, st->fields[i].len, &st->pending, e,
                                sizeof(e));
            if (!ok)
                snprintf(where, sizeof(where), "column %.64s: ", st->def->columns[i]->name);
        }
        PQfreemem(row);
        if (!ok) {
            st->cls = ERRCLASS_FATAL;
            snprintf(st->err, sizeof(st->err), "table %s.%s, row %llu: %s%s", st->def->schema,
                     st->def->name, (unsigned long long)st->rows + 1, where, e);
            return false;
        }
        buf_le(&st->pending, 0, 8); /* _pgferry_version: snapshot rows lose to any change */
        buf_byte(&st->pending, 0);  /* _pgferry_is_deleted */
        if (st->pending.oom) {
            st->cls = ERRCLASS_TRANSIENT;
            snprintf(st->err, sizeof(st->err), "out of memory");
            return false;
        }
        st->rows++;
        if (st->rows % PROGRESS_EVERY_ROWS == 0 && st->w) {
            char detail[300];
            snprintf(detail, sizeof(detail), "%s.%s: %llu rows", st->def->schema, st->def->name,
                     (unsigned long long)st->rows);
            worker_send_progress(st->w, st->rows, st->bytes, NULL, detail);
            if (worker_should_stop(st->w)) {
                st->cls = ERRCLASS_TRANSIENT;
                snprintf(st->err, sizeof(st->err), "stopped");
                return false;
            }
        }
    }
    return true;
}

static long
produce(void *ud, char *out, size_t cap)
{
    stream_state_t *st = ud;
    if (!fill(st, cap))
        return -1;
    size_t avail = st->pending.len - st->offset;
    size_t n = avail < cap ? avail : cap;
    if (n == 0)
        return 0; /* the end (an empty table has no buffer at all) */
    memcpy(out, st->pending.data + st->offset, n);
    st->offset += n;
    st->bytes += n;
    if (st->offset == st->pending.len) {
        buf_reset(&st->pending);
        st->offset = 0;
    }
    return (long)n;
}

static errclass_t
load_table(PGconn *pg, ch_client_t *ch, const char *db, const Pgferry__State__TableDef *def,
           worker_t *w, uint64_t *rows, uint64_t *bytes, char *err, size_t errlen)
{
    errclass_t cls;
    char relid[16];
    snprintf(relid, sizeof(relid), "%u", def->relid);
    const char *p[] = {relid};
    PGresult *r = pgconn_query(pg, "SELECT relkind FROM pg_class WHERE oid = $1::oid", 1, p, &cls,
                               err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "table %s.%s was dropped on the source", def->schema, def->name);
        return ERRCLASS_FATAL;
    }
    bool partitioned = PQgetvalue(r, 0, 0)[0] == 'p';
    PQclear(r);

    stream_state_t st;
    memset(&st, 0, sizeof(st));
    st.pg = pg;
    st.w = w;
    st.def = def;
    st.cols = calloc(def->n_columns, sizeof(*st.cols));
    st.fields = calloc(def->n_columns, sizeof(*st.fields));
    buf_t copy, ins;
    buf_init(&copy);
    buf_init(&ins);
    buf_init(&st.pending);
    cls = ERRCLASS_TRANSIENT;
    if (!st.cols || !st.fields) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    char q[300];
    chsql_ident(db, q, sizeof(q));
    buf_append(&ins, "INSERT INTO ", 12);
    buf_append(&ins, q, strlen(q));
    chsql_ident(def->target, q, sizeof(q));
    buf_byte(&ins, '.');
    buf_append(&ins, q, strlen(q));
    buf_append(&ins, " (", 2);
    buf_append(&copy, "COPY (SELECT ", 13);
    for (size_t i = 0; i < def->n_columns; i++) {
        const Pgferry__State__ColumnDef *c = def->columns[i];
        typemap_for_pg(c->base_type_oid, c->typcategory[0], c->base_typmod, c->not_null, 0,
                       &st.cols[i]);
        if (strcmp(st.cols[i].ch_type, c->ch_type) != 0) {
            snprintf(err, errlen,
                     "column %s of %s.%s: recorded type %s, this version maps it to %s; resync "
                     "the pipe",
                     c->name, def->schema, def->name, c->ch_type, st.cols[i].ch_type);
            cls = ERRCLASS_FATAL;
            goto out;
        }
        char *pi = PQescapeIdentifier(pg, c->name, strlen(c->name));
        chsql_ident(c->name, q, sizeof(q));
        if (!pi) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (i) {
            buf_append(&copy, ", ", 2);
            buf_append(&ins, ", ", 2);
        }
        buf_append(&copy, pi, strlen(pi));
        buf_append(&ins, q, strlen(q));
        PQfreemem(pi);
    }
    char *ps = PQescapeIdentifier(pg, def->schema, strlen(def->schema));
    char *pt = PQescapeIdentifier(pg, def->name, strlen(def->name));
    if (!ps || !pt) {
        PQfreemem(ps);
        PQfreemem(pt);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* ONLY: an inheritance child is another table; a partitioned root reads its partitions */
    const char *from = partitioned ? " FROM " : " FROM ONLY ";
    buf_append(&copy, from, strlen(from));
    buf_append(&copy, ps, strlen(ps));
    buf_byte(&copy, '.');
    buf_append(&copy, pt, strlen(pt));
    buf_append(&copy, ") TO STDOUT", 12); /* includes the NUL */
    PQfreemem(ps);
    PQfreemem(pt);
    const char *tail = ", `_pgferry_version`, `_pgferry_is_deleted`) FORMAT RowBinary";
    buf_append(&ins, tail, strlen(tail) + 1);
    if (copy.oom || ins.oom) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    /* a load always starts from an empty table, so a restarted load cannot double rows */
    chsql_ident(db, q, sizeof(q));
    char trunc[700], qt[300];
    chsql_ident(def->target, qt, sizeof(qt));
    snprintf(trunc, sizeof(trunc), "TRUNCATE TABLE %s.%s", q, qt);
    cls = ch_client_query(ch, trunc, NULL, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;

    r = PQexec(pg, (char *)copy.data);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        cls = pgconn_classify(r, pg);
        snprintf(err, errlen, "COPY from %s.%s: %s", def->schema, def->name,
                 PQresultErrorMessage(r));
        PQclear(r);
        goto out;
    }
    PQclear(r);
    st.cls = ERRCLASS_NONE;
    cls = ch_client_insert_stream(ch, (char *)ins.data, produce, &st, err, errlen);
    if (st.cls != ERRCLASS_NONE) {
        cls = st.cls;
        snprintf(err, errlen, "%s", st.err);
        goto out;
    }
    if (cls != ERRCLASS_NONE)
        goto out;
    r = PQgetResult(pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        cls = pgconn_classify(r, pg);
        snprintf(err, errlen, "COPY from %s.%s ended with: %s", def->schema, def->name,
                 PQresultErrorMessage(r));
        PQclear(r);
        goto out;
    }
    PQclear(r);
    while ((r = PQgetResult(pg)) != NULL)
        PQclear(r);
    *rows += st.rows;
    *bytes += st.bytes;
    log_info("table %s.%s: %llu rows loaded", def->schema, def->name, (unsigned long long)st.rows);
    cls = ERRCLASS_NONE;
out:
    free(st.cols);
    free(st.fields);
    buf_free(&st.pending);
    buf_free(&copy);
    buf_free(&ins);
    return cls;
}

errclass_t
snapshot_run(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *tables,
             size_t n_tables, worker_t *w, snapshot_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    errclass_t cls;
    PGconn *repl = NULL, *pg = NULL;
    PGresult *r = NULL;
    if (n_tables == 0) {
        snprintf(err, errlen, "no table definitions recorded; the pipe needs Setup again");
        return ERRCLASS_FATAL;
    }
    ch_client_t *ch =
        ch_client_new(spec->dest_url, spec->dest_user, spec->dest_password_file, err, errlen);
    if (!ch)
        return ERRCLASS_FATAL;
    repl = pgconn_connect(spec->source, "pgferry-snapshot", true, &cls, err, errlen);
    if (!repl)
        goto done;
    /* a temporary slot: it exists only while this connection does, so a snapshot-only pipe
     * leaves nothing behind, whatever happens to this process */
    char cmd[200];
    snprintf(cmd, sizeof(cmd),
             "CREATE_REPLICATION_SLOT pgferry_snap_%d TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT",
             (int)getpid());
    r = PQexec(repl, cmd);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) < 3) {
        cls = pgconn_classify(r, repl);
        snprintf(err, errlen, "cannot create the snapshot slot: %s", PQerrorMessage(repl));
        goto done;
    }
    char snapname[128], lsn[64];
    snprintf(lsn, sizeof(lsn), "%s", PQgetvalue(r, 0, 1));
    snprintf(snapname, sizeof(snapname), "%s", PQgetvalue(r, 0, 2));
    PQclear(r);
    r = NULL;
    log_info("exported snapshot %s at %s", snapname, lsn);

    pg = pgconn_connect(spec->source, "pgferry-snapshot", false, &cls, err, errlen);
    if (!pg)
        goto done;
    char *lit = PQescapeLiteral(pg, snapname, strlen(snapname));
    char set[300];
    snprintf(set, sizeof(set), "SET TRANSACTION SNAPSHOT %s", lit ? lit : "''");
    PQfreemem(lit);
    r = pgconn_query(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, &cls, err,
                     errlen);
    if (!r)
        goto done;
    PQclear(r);
    r = pgconn_query(pg, set, 0, NULL, &cls, err, errlen);
    if (!r)
        goto done;
    PQclear(r);
    r = NULL;

    for (size_t i = 0; i < n_tables; i++) {
        cls = load_table(pg, ch, spec->dest_database, tables[i], w, &out->rows, &out->bytes, err,
                         errlen);
        if (cls != ERRCLASS_NONE)
            goto done;
        if (w) {
            char detail[300];
            snprintf(detail, sizeof(detail), "%zu of %zu table(s) loaded, %llu rows", i + 1,
                     n_tables, (unsigned long long)out->rows);
            worker_send_progress(w, out->rows, out->bytes, NULL, detail);
        }
    }
    r = pgconn_query(pg, "COMMIT", 0, NULL, &cls, err, errlen);
    if (!r)
        goto done;
    snprintf(out->detail, sizeof(out->detail),
             "%llu rows from %zu table(s) loaded at snapshot %s (%s)",
             (unsigned long long)out->rows, n_tables, snapname, lsn);
    cls = ERRCLASS_NONE;
done:
    if (r)
        PQclear(r);
    if (pg)
        PQfinish(pg);
    if (repl)
        PQfinish(repl); /* drops the temporary slot */
    ch_client_destroy(&ch);
    return cls;
}
