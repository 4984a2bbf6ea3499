/* cdc: replication loop, apply into ClickHouse, schema changes. */
#include "cdc.h"
#include "lsn.h"
#include "buf.h"
#include "chclient.h"
#include "chsql.h"
#include "log.h"
#include "pgconn.h"
#include "pgoutput.h"
#include "setup.h"
#include "slotinfo.h"
#include "timeutil.h"
#include "typemap.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_INTERVAL_MS 10000  /* standby status at least this often */
#define REPORT_INTERVAL_MS 1000   /* Applied reports to the supervisor */
#define SLOTINFO_INTERVAL_MS 3000 /* slot position, lag and retained WAL */
#define STOP_CHECK_EVERY 512      /* messages between stop checks under load */
#define CHUNK_MIN_BYTES (1u << 20)
#define CHUNK_MAX_BYTES (16u << 20) /* one insert at most; bounds memory in big transactions */
#define PG_EPOCH_UNIX_US 946684800000000LL

/* One destination table: its definition, encoders and pending rows. */
typedef struct {
    Pgferry__State__TableDef **defp; /* slot in the caller's array (replaced on schema change) */
    size_t index;                    /* into spec->tables and the definitions */
    typemap_col_t *tm;               /* per definition column */
    char *insert_sql;
    char qname[600]; /* `db`.`table` */
    buf_t rows;
    size_t nrows;
    uint64_t n[3][3]; /* [in the transaction, in the batch, to report][insert, update, delete] */
    uint64_t bytes;   /* inserted, to report */
    uint64_t skip_before; /* transactions committed before this are in the table's load */
} ctable_t;

/* What a Relation message told us about one relation id. */
typedef struct {
    uint32_t relid;
    int table;   /* into c->tables; -1: not in this pipe, changes ignored */
    int *defcol; /* per relation column: definition column, or -1 (excluded column) */
    int *relcol; /* per definition column: relation column */
    size_t nrel, ndef;
} relmap_t;

typedef struct {
    const Pgferry__State__PipeSpec *spec;
    worker_t *w;
    PGconn *repl, *sql;
    ch_client_t *ch;
    long ch_version;
    pgoutput_decoder_t *dec;
    ctable_t *tables;
    size_t ntables;
    Pgferry__State__TableDef **defs;
    relmap_t *rels;
    size_t nrels, caprels;
    /* positions */
    uint64_t received, flushed, last_commit_end, skip_before;
    int64_t last_commit_time; /* unix us */
    bool in_txn, skip_txn;
    uint64_t txn_final;
    int64_t txn_time;
    /* batch */
    size_t batch_rows, batch_bytes;
    int64_t batch_deadline; /* monotonic ms; 0 = no committed data pending */
    uint32_t max_rows, max_wait_ms;
    size_t max_bytes, chunk_bytes;
    /* counters: of the current transaction, of the batch, not yet reported */
    uint64_t t_ins, t_upd, t_del, b_ins, b_upd, b_del, b_txn, r_ins, r_upd, r_del, r_txn, r_bytes;
    uint64_t total_changes;
    int64_t next_status, next_report, next_slotinfo;
    char err[2048];
} cdc_t;

/* typemap flags for columns mapped now (added or changed by a schema change) */
static unsigned
cdc_tm_flags(const cdc_t *c)
{
    return c->spec->numeric_text ? TYPEMAP_NUMERIC_TEXT : 0u;
}

static uint64_t
get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void
put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

/* ---- destination tables ------------------------------------------------------------- */

static errclass_t
table_prepare(cdc_t *c, ctable_t *t, char *err, size_t errlen)
{
    const Pgferry__State__TableDef *def = *t->defp;
    free(t->tm);
    free(t->insert_sql);
    t->insert_sql = NULL;
    t->tm = calloc(def->n_columns ? def->n_columns : 1, sizeof(*t->tm));
    t->skip_before = 0;
    if (def->snapshot_lsn[0] && !lsn_parse(def->snapshot_lsn, &t->skip_before)) {
        snprintf(err, errlen, "bad snapshot position %s of %s.%s", def->snapshot_lsn, def->schema,
                 def->name);
        return ERRCLASS_FATAL;
    }
    buf_t b;
    buf_init(&b);
    char q[300], qt[300];
    chsql_ident(c->spec->dest_database, q, sizeof(q));
    chsql_ident(def->target, qt, sizeof(qt));
    snprintf(t->qname, sizeof(t->qname), "%s.%s", q, qt);
    buf_append(&b, "INSERT INTO ", 12);
    buf_append(&b, t->qname, strlen(t->qname));
    buf_append(&b, " (", 2);
    for (size_t i = 0; t->tm && i < def->n_columns; i++) {
        const Pgferry__State__ColumnDef *col = def->columns[i];
        typemap_for_pg(col->base_type_oid, col->typcategory[0], col->base_typmod, col->not_null,
                       c->ch_version, typemap_flags_recorded(col->base_type_oid, col->ch_type),
                       &t->tm[i]);
        if (strcmp(t->tm[i].ch_type, col->ch_type) != 0) {
            snprintf(err, errlen,
                     "column %s of %s.%s: recorded type %s, this version maps it to %s; resync "
                     "the pipe",
                     col->name, def->schema, def->name, col->ch_type, t->tm[i].ch_type);
            buf_free(&b);
            return ERRCLASS_FATAL;
        }
        chsql_ident(setup_ch_name(col), q, sizeof(q));
        if (i)
            buf_append(&b, ", ", 2);
        buf_append(&b, q, strlen(q));
    }
    const char *tail = ", `_pgferry_version`, `_pgferry_is_deleted`) FORMAT RowBinary";
    buf_append(&b, tail, strlen(tail) + 1);
    if (!t->tm || b.oom) {
        buf_free(&b);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    t->insert_sql = (char *)b.data;
    return ERRCLASS_NONE;
}

/* Inserts a table's pending rows (no acknowledgement: that happens at a commit boundary). */
static errclass_t
table_flush(cdc_t *c, ctable_t *t, char *err, size_t errlen)
{
    if (t->nrows == 0)
        return ERRCLASS_NONE;
    if (t->rows.oom) {
        snprintf(err, errlen, "out of memory buffering changes for %s", t->qname);
        return ERRCLASS_TRANSIENT;
    }
    errclass_t cls = ch_client_insert(c->ch, t->insert_sql, t->rows.data, t->rows.len, err, errlen);
    if (cls != ERRCLASS_NONE) {
        if (strstr(err, "Code: 60,") || strstr(err, "Code: 81,")) { /* unknown table/database */
            size_t l = strlen(err);
            snprintf(err + l, errlen - l,
                     " (destination table %s is gone: it was dropped outside pgferry; resync "
                     "the pipe to recreate and reload it)",
                     t->qname);
            return ERRCLASS_FATAL;
        }
        return cls;
    }
    c->r_bytes += t->rows.len;
    t->bytes += t->rows.len;
    c->batch_bytes -= t->rows.len < c->batch_bytes ? t->rows.len : c->batch_bytes;
    buf_reset(&t->rows);
    t->nrows = 0;
    if (t->rows.cap > 2 * c->chunk_bytes) { /* give a huge buffer back */
        buf_free(&t->rows);
        buf_init(&t->rows);
    }
    return ERRCLASS_NONE;
}

static errclass_t
flush_tables(cdc_t *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->ntables; i++) {
        errclass_t cls = table_flush(c, &c->tables[i], err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
    }
    return ERRCLASS_NONE;
}

/* ---- replication protocol ------------------------------------------------------------ */

static errclass_t
send_status(cdc_t *c, bool reply_requested, char *err, size_t errlen)
{
    unsigned char m[34];
    int64_t now_pg = time_now_us() - PG_EPOCH_UNIX_US;
    m[0] = 'r';
    put_be64(m + 1, c->received > c->flushed ? c->received : c->flushed); /* written */
    put_be64(m + 9, c->flushed);
    put_be64(m + 17, c->flushed); /* applied */
    put_be64(m + 25, (uint64_t)now_pg);
    m[33] = reply_requested ? 1 : 0;
    if (PQputCopyData(c->repl, (const char *)m, sizeof(m)) <= 0 || PQflush(c->repl) != 0) {
        snprintf(err, errlen, "cannot send the replication status: %s", PQerrorMessage(c->repl));
        return ERRCLASS_TRANSIENT;
    }
    c->next_status = time_mono_ms() + STATUS_INTERVAL_MS;
    return ERRCLASS_NONE;
}

static void
report_applied(cdc_t *c, bool force)
{
    int64_t now = time_mono_ms();
    if (!force && now < c->next_report)
        return;
    c->next_report = now + REPORT_INTERVAL_MS;
    char lsn[32];
    lsn_format(c->flushed, lsn, sizeof(lsn));
    Pgferry__Worker__Applied a = PGFERRY__WORKER__APPLIED__INIT;
    a.lsn = lsn;
    a.commit_time_us = c->last_commit_time;
    a.inserts = c->r_ins;
    a.updates = c->r_upd;
    a.deletes = c->r_del;
    a.transactions = c->r_txn;
    a.bytes = c->r_bytes;
    Pgferry__Worker__TableCounts *tc = calloc(c->ntables + 1, sizeof(*tc));
    Pgferry__Worker__TableCounts **tcp = calloc(c->ntables + 1, sizeof(*tcp));
    for (size_t i = 0; tc && tcp && i < c->ntables; i++) {
        ctable_t *t = &c->tables[i];
        if (!t->n[2][0] && !t->n[2][1] && !t->n[2][2] && !t->bytes)
            continue;
        pgferry__worker__table_counts__init(&tc[a.n_tables]);
        tc[a.n_tables].target = (*t->defp)->target;
        tc[a.n_tables].inserts = t->n[2][0];
        tc[a.n_tables].updates = t->n[2][1];
        tc[a.n_tables].deletes = t->n[2][2];
        tc[a.n_tables].bytes = t->bytes;
        tcp[a.n_tables] = &tc[a.n_tables];
        a.n_tables++;
    }
    a.tables = tcp;
    if ((tc && tcp) && worker_send_applied(c->w, &a)) {
        c->r_ins = c->r_upd = c->r_del = c->r_txn = c->r_bytes = 0;
        for (size_t i = 0; i < c->ntables; i++) {
            memset(c->tables[i].n[2], 0, sizeof(c->tables[i].n[2]));
            c->tables[i].bytes = 0;
        }
    }
    free(tc);
    free(tcp);
    char detail[200];
    snprintf(detail, sizeof(detail), "streaming: confirmed %s, %" PRIu64 " change(s) this run", lsn,
             c->total_changes);
    worker_send_progress(c->w, 0, 0, NULL, detail);
}

static errclass_t ensure_sql(cdc_t *c, char *err, size_t errlen);

/* Every few seconds: the slot as the source sees it (lag, retained WAL) for status and metrics.
 * A lost or missing slot is FATAL; trouble reaching the source only skips a report. */
static errclass_t
maybe_slotinfo(cdc_t *c, char *err, size_t errlen)
{
    int64_t now = time_mono_ms();
    if (now < c->next_slotinfo)
        return ERRCLASS_NONE;
    c->next_slotinfo = now + SLOTINFO_INTERVAL_MS;
    char e[1024];
    if (ensure_sql(c, e, sizeof(e)) != ERRCLASS_NONE) {
        log_warn("slot report skipped: %s", e);
        return ERRCLASS_NONE;
    }
    /* a table dropped at the source just stops sending changes: say so instead */
    for (size_t i = 0; i < c->ntables; i++) {
        const Pgferry__State__TableDef *d = *c->tables[i].defp;
        char relid[16];
        snprintf(relid, sizeof(relid), "%u", d->relid);
        const char *p[] = {relid};
        errclass_t qc;
        PGresult *r = pgconn_query(c->sql, "SELECT 1 FROM pg_class WHERE oid = $1::oid", 1, p, &qc,
                                   e, sizeof(e));
        if (!r)
            break; /* unreachable now: the stream says more soon */
        bool gone = PQntuples(r) == 0;
        PQclear(r);
        if (gone) {
            snprintf(err, errlen,
                     "table %s.%s was dropped at the source; its changes stop here. Remove it "
                     "from the pipe (pgferryctl remove-tables) or drop the pipe",
                     d->schema, d->name);
            return ERRCLASS_FATAL;
        }
    }
    slotinfo_t si;
    errclass_t cls = slotinfo_query(c->sql, c->spec->slot, &si, e, sizeof(e));
    if (cls == ERRCLASS_FATAL) {
        snprintf(err, errlen, "%s", e);
        return cls;
    }
    if (cls == ERRCLASS_NONE)
        worker_send_slot(c->w, &si.msg);
    else
        log_warn("slot report skipped: %s", e);
    return ERRCLASS_NONE;
}

/* Inserts everything pending and confirms the last commit received to the slot. */
static errclass_t
flush_and_ack(cdc_t *c, char *err, size_t errlen)
{
    errclass_t cls = flush_tables(c, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    c->r_ins += c->b_ins;
    c->r_upd += c->b_upd;
    c->r_del += c->b_del;
    c->r_txn += c->b_txn;
    c->b_ins = c->b_upd = c->b_del = c->b_txn = 0;
    for (size_t i = 0; i < c->ntables; i++) {
        for (int op = 0; op < 3; op++) {
            c->tables[i].n[2][op] += c->tables[i].n[1][op];
            c->tables[i].n[1][op] = 0;
        }
    }
    c->batch_rows = 0;
    c->batch_deadline = 0;
    if (c->last_commit_end > c->flushed) {
        c->flushed = c->last_commit_end;
        cls = send_status(c, false, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        report_applied(c, false);
    }
    return ERRCLASS_NONE;
}

/* ---- relations and schema changes ----------------------------------------------------- */

static relmap_t *
rel_find(cdc_t *c, uint32_t relid)
{
    for (size_t i = 0; i < c->nrels; i++) {
        if (c->rels[i].relid == relid)
            return &c->rels[i];
    }
    return NULL;
}

static errclass_t
ensure_sql(cdc_t *c, char *err, size_t errlen)
{
    if (c->sql && PQstatus(c->sql) == CONNECTION_OK)
        return ERRCLASS_NONE;
    if (c->sql)
        PQfinish(c->sql);
    errclass_t cls;
    c->sql = pgconn_connect(c->spec->source, "pgferry-cdc", false, &cls, err, errlen);
    return c->sql ? ERRCLASS_NONE : cls;
}

/* Which of the pipe's tables a relation is: by oid, by name, or as a partition of one. */
static errclass_t
rel_table(cdc_t *c, const pgo_msg_t *m, int *out, char *err, size_t errlen)
{
    *out = -1;
    for (size_t i = 0; i < c->ntables; i++) {
        const Pgferry__State__TableDef *d = *c->tables[i].defp;
        if (d->relid == m->u.relation.relid || (strcmp(d->schema, m->u.relation.nspname) == 0 &&
                                                strcmp(d->name, m->u.relation.relname) == 0)) {
            *out = (int)i;
            return ERRCLASS_NONE;
        }
    }
    errclass_t cls = ensure_sql(c, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    char relid[16];
    snprintf(relid, sizeof(relid), "%u", m->u.relation.relid);
    const char *p[] = {relid};
    PGresult *r =
        pgconn_query(c->sql, "SELECT pg_partition_root($1::oid)::oid", 1, p, &cls, err, errlen);
    if (!r)
        return cls;
    uint32_t root = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
                        ? (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10)
                        : 0;
    PQclear(r);
    for (size_t i = 0; root && i < c->ntables; i++) {
        if ((*c->tables[i].defp)->relid == root) {
            *out = (int)i;
            break;
        }
    }
    return ERRCLASS_NONE;
}

static int
def_col_by(const Pgferry__State__TableDef *d, const char *name, bool by_ch_name)
{
    for (size_t i = 0; i < d->n_columns; i++) {
        const char *n = by_ch_name ? setup_ch_name(d->columns[i]) : d->columns[i]->name;
        if (strcmp(n, name) == 0)
            return (int)i;
    }
    return -1;
}

static Pgferry__State__ColumnDef *
col_copy(const Pgferry__State__ColumnDef *s)
{
    Pgferry__State__ColumnDef *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    pgferry__state__column_def__init(d);
    d->name = strdup(s->name);
    d->pg_type = strdup(s->pg_type);
    d->base_type_oid = s->base_type_oid;
    d->base_typmod = s->base_typmod;
    d->typcategory = strdup(s->typcategory);
    d->not_null = s->not_null;
    d->key_position = s->key_position;
    d->ch_type = strdup(s->ch_type);
    d->attnum = s->attnum;
    d->type_oid = s->type_oid;
    d->typmod = s->typmod;
    if (s->ch_name && s->ch_name[0])
        d->ch_name = strdup(s->ch_name);
    if (!d->name || !d->pg_type || !d->typcategory || !d->ch_type || !d->ch_name) {
        pgferry__state__column_def__free_unpacked(d, NULL);
        return NULL;
    }
    return d;
}

static void
set_string(char **field, const char *v)
{
    char *n = strdup(v);
    if (!n)
        return;
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = n;
}

/* The destination's columns as "name\ttype\n" lines (TabSeparated, escaped). */
static errclass_t
ch_columns(cdc_t *c, const Pgferry__State__TableDef *def, char **out, char *err, size_t errlen)
{
    char qdb[300], qt[300], sql[800];
    chsql_string(c->spec->dest_database, qdb, sizeof(qdb));
    chsql_string(def->target, qt, sizeof(qt));
    snprintf(sql, sizeof(sql),
             "SELECT name, type FROM system.columns WHERE database = %s AND table = %s "
             "FORMAT TabSeparated",
             qdb, qt);
    return ch_client_query(c->ch, sql, out, err, errlen);
}

/* The type of column name in ch_columns output, or NULL. Names with characters that
 * TabSeparated escapes are compared escaped. */
static const char *
ch_column_type(const char *cols, const char *name, char *type, size_t typelen)
{
    size_t nl = strlen(name);
    for (const char *p = cols; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncmp(p, name, nl) == 0 && p[nl] == '\t') {
            size_t tl = ll - nl - 1;
            snprintf(type, typelen, "%.*s", (int)tl, p + nl + 1);
            return type;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* The source's default for rows that existed before `ALTER TABLE ... ADD COLUMN ... DEFAULT`
 * (pg_attribute.attmissingval), as a ClickHouse DEFAULT expression. *volatile_fill is set when
 * the column has a default PostgreSQL filled by rewriting the table (not replicated). */
static errclass_t
missing_default(cdc_t *c, uint32_t relid, const char *col, const typemap_col_t *tm, buf_t *out,
                bool *volatile_fill, char *err, size_t errlen)
{
    *volatile_fill = false;
    char rid[16];
    snprintf(rid, sizeof(rid), "%u", relid);
    const char *p[] = {rid, col};
    errclass_t cls;
    PGresult *r = pgconn_query(c->sql,
                               "SELECT atthasmissing, atthasdef, attmissingval::text, "
                               " format_type(atttypid, atttypmod) FROM pg_attribute "
                               "WHERE attrelid = $1::oid AND attname = $2",
                               2, p, &cls, err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ERRCLASS_NONE;
    }
    bool has_missing = PQgetvalue(r, 0, 0)[0] == 't', has_def = PQgetvalue(r, 0, 1)[0] == 't';
    if (!has_missing || PQgetisnull(r, 0, 2)) {
        *volatile_fill = has_def;
        PQclear(r);
        return ERRCLASS_NONE;
    }
    /* attmissingval is a one-element array of the column's type: take the element as text */
    char q[600];
    snprintf(q, sizeof(q), "SELECT (($1)::%s[])[1]::text", PQgetvalue(r, 0, 3));
    char *arr = strdup(PQgetvalue(r, 0, 2));
    PQclear(r);
    if (!arr) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    const char *p2[] = {arr};
    r = pgconn_query(c->sql, q, 1, p2, &cls, err, errlen);
    free(arr);
    if (!r)
        return cls;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        char e[256];
        const char *v = PQgetvalue(r, 0, 0);
        buf_append(out, " DEFAULT ", 9);
        if (!typemap_literal(tm, v, strlen(v), out, e, sizeof(e))) {
            PQclear(r);
            snprintf(err, errlen, "default of new column %s: %s", col, e);
            return ERRCLASS_FATAL;
        }
    }
    PQclear(r);
    return ERRCLASS_NONE;
}

static errclass_t
ch_exec(cdc_t *c, buf_t *sql, char *err, size_t errlen)
{
    buf_byte(sql, '\0');
    if (sql->oom) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    log_info("ClickHouse: %s", (char *)sql->data);
    return ch_client_query(c->ch, (char *)sql->data, NULL, err, errlen);
}

static void
note(buf_t *reason, const char *fmt, const char *a, const char *b, const char *d)
{
    char s[900];
    snprintf(s, sizeof(s), fmt, a, b, d);
    if (reason->len)
        buf_append(reason, "; ", 2);
    buf_append(reason, s, strlen(s));
}

/* A Relation message whose columns differ from the definition: bring ClickHouse and the
 * definition up to date. Called with the table's pending rows already inserted. */
static errclass_t
schema_change(cdc_t *c, ctable_t *t, const pgo_msg_t *m, char *err, size_t errlen)
{
    const Pgferry__State__TableSpec *ts = c->spec->tables[t->index];
    Pgferry__State__TableDef *old = *t->defp, *cur = NULL, *nd = NULL;
    char *chcols = NULL;
    buf_t reason, sql;
    buf_init(&reason);
    buf_init(&sql);
    bool *used = calloc(old->n_columns + 1, sizeof(bool));
    errclass_t cls = ensure_sql(c, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    cls = ERRCLASS_TRANSIENT;
    if (!used) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* the current catalog: types, attnums and NOT NULL of what the message names */
    cls = setup_read_table(c->sql, ts, c->ch_version, cdc_tm_flags(c), &cur, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    cls = ch_columns(c, old, &chcols, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    nd = calloc(1, sizeof(*nd));
    if (nd) {
        pgferry__state__table_def__init(nd);
        nd->columns = calloc(m->u.relation.ncols + 1, sizeof(*nd->columns));
    }
    if (!nd || !nd->columns) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    nd->schema = strdup(old->schema);
    nd->name = strdup(old->name);
    nd->target = strdup(old->target);
    nd->relid = old->relid;
    nd->relpages = old->relpages;
    nd->reltuples = old->reltuples;
    char shown[400];
    snprintf(shown, sizeof(shown), "%s.%s", old->schema, old->name);
    for (size_t j = 0; j < m->u.relation.ncols; j++) {
        const pgo_column_t *rc = &m->u.relation.cols[j];
        if (setup_column_excluded(ts, rc->name))
            continue;
        int k = def_col_by(old, rc->name, false);
        if (k < 0)
            k = def_col_by(old, rc->name, true); /* replayed after a rename */
        int ck = def_col_by(cur, rc->name, false);
        if (k < 0 && ck >= 0 && cur->columns[ck]->attnum) {
            /* renamed: the same attnum under a name the stream no longer uses */
            for (size_t i = 0; i < old->n_columns; i++) {
                if (!used[i] && old->columns[i]->attnum == cur->columns[ck]->attnum) {
                    k = (int)i;
                    note(&reason, "column %s renamed to %s (ClickHouse keeps column %s)",
                         old->columns[i]->name, rc->name, setup_ch_name(old->columns[i]));
                    break;
                }
            }
        }
        Pgferry__State__ColumnDef *nc = NULL;
        if (k >= 0) {
            used[k] = true;
            nc = col_copy(old->columns[k]);
            if (!nc) {
                snprintf(err, errlen, "out of memory");
                cls = ERRCLASS_TRANSIENT;
                goto out;
            }
            if (strcmp(nc->name, rc->name) != 0) {
                if (!nc->ch_name || !nc->ch_name[0] || nc->ch_name == protobuf_c_empty_string)
                    set_string(&nc->ch_name, old->columns[k]->name);
                set_string(&nc->name, rc->name);
                if (strcmp(nc->ch_name, nc->name) == 0) { /* renamed back */
                    free(nc->ch_name);
                    nc->ch_name = (char *)protobuf_c_empty_string;
                }
            }
            bool type_changed =
                nc->type_oid && (nc->type_oid != rc->type_oid || nc->typmod != rc->typmod);
            if (type_changed) {
                if (ck < 0) {
                    snprintf(err, errlen,
                             "column %s of %s changed type and is gone from the catalog; resync "
                             "the table",
                             rc->name, shown);
                    pgferry__state__column_def__free_unpacked(nc, NULL);
                    cls = ERRCLASS_FATAL;
                    goto out;
                }
                const Pgferry__State__ColumnDef *cc = cur->columns[ck];
                typemap_col_t tm;
                typemap_for_pg(cc->base_type_oid, cc->typcategory[0], cc->base_typmod, nc->not_null,
                               c->ch_version, cdc_tm_flags(c), &tm);
                if (strcmp(tm.ch_type, nc->ch_type) != 0) {
                    snprintf(err, errlen,
                             "column %s of %s changed type from %s to %s, which needs ClickHouse "
                             "type %s instead of %s; resync the pipe",
                             rc->name, shown, nc->pg_type, cc->pg_type, tm.ch_type, nc->ch_type);
                    pgferry__state__column_def__free_unpacked(nc, NULL);
                    cls = ERRCLASS_FATAL;
                    goto out;
                }
                note(&reason, "column %s changed type from %s to %s", rc->name, nc->pg_type,
                     cc->pg_type);
                set_string(&nc->pg_type, cc->pg_type);
                nc->base_type_oid = cc->base_type_oid;
                nc->base_typmod = cc->base_typmod;
                nc->type_oid = rc->type_oid;
                nc->typmod = rc->typmod;
            }
        } else {
            /* added */
            if (ck < 0) {
                snprintf(err, errlen,
                         "column %s of %s appeared in the stream but is no longer in the catalog; "
                         "resync the table",
                         rc->name, shown);
                cls = ERRCLASS_FATAL;
                goto out;
            }
            nc = col_copy(cur->columns[ck]);
            if (!nc) {
                snprintf(err, errlen, "out of memory");
                cls = ERRCLASS_TRANSIENT;
                goto out;
            }
            /* rows from before the change have no value: the column is Nullable in ClickHouse */
            typemap_col_t tm;
            typemap_for_pg(nc->base_type_oid, nc->typcategory[0], nc->base_typmod, false,
                           c->ch_version, cdc_tm_flags(c), &tm);
            nc->not_null = false;
            nc->key_position = 0;
            set_string(&nc->ch_type, tm.ch_type);
            char type[200], q[300];
            if (!ch_column_type(chcols, nc->name, type, sizeof(type))) {
                bool vol = false;
                chsql_ident(nc->name, q, sizeof(q));
                buf_reset(&sql);
                buf_append(&sql, "ALTER TABLE ", 12);
                buf_append(&sql, t->qname, strlen(t->qname));
                buf_append(&sql, " ADD COLUMN ", 12);
                buf_append(&sql, q, strlen(q));
                buf_byte(&sql, ' ');
                buf_append(&sql, tm.ch_type, strlen(tm.ch_type));
                cls = missing_default(c, old->relid, nc->name, &tm, &sql, &vol, err, errlen);
                if (cls == ERRCLASS_NONE)
                    cls = ch_exec(c, &sql, err, errlen);
                if (cls != ERRCLASS_NONE) {
                    pgferry__state__column_def__free_unpacked(nc, NULL);
                    goto out;
                }
                note(&reason, vol ? "column %s added as %s (%s)" : "column %s added as %s%s",
                     nc->name, tm.ch_type,
                     vol ? "PostgreSQL filled existing rows by rewriting the table, which is not "
                           "replicated: rows from before show NULL until resync"
                         : "");
            }
        }
        nd->columns[nd->n_columns++] = nc;
    }
    /* columns the stream no longer has */
    for (size_t i = 0; i < old->n_columns; i++) {
        if (used[i])
            continue;
        const Pgferry__State__ColumnDef *oc = old->columns[i];
        if (oc->key_position) {
            snprintf(err, errlen, "key column %s of %s was dropped or renamed; resync the pipe",
                     oc->name, shown);
            cls = ERRCLASS_FATAL;
            goto out;
        }
        char type[200], q[300];
        if (ch_column_type(chcols, setup_ch_name(oc), type, sizeof(type)) &&
            strncmp(type, "Nullable(", 9) != 0) {
            chsql_ident(setup_ch_name(oc), q, sizeof(q));
            buf_reset(&sql);
            buf_append(&sql, "ALTER TABLE ", 12);
            buf_append(&sql, t->qname, strlen(t->qname));
            buf_append(&sql, " MODIFY COLUMN ", 15);
            buf_append(&sql, q, strlen(q));
            buf_append(&sql, " Nullable(", 10);
            buf_append(&sql, type, strlen(type));
            buf_byte(&sql, ')');
            cls = ch_exec(c, &sql, err, errlen);
            if (cls != ERRCLASS_NONE)
                goto out;
        }
        note(&reason, "column %s dropped at the source (ClickHouse keeps column %s%s)", oc->name,
             setup_ch_name(oc), ", NULL in new rows");
    }
    /* the live-rows view lists the columns */
    {
        char view[300], qv[300];
        snprintf(view, sizeof(view), "%s_live", old->target);
        chsql_ident(view, qv, sizeof(qv));
        char q[300];
        chsql_ident(c->spec->dest_database, q, sizeof(q));
        buf_reset(&sql);
        char drop[700];
        snprintf(drop, sizeof(drop), "DROP TABLE IF EXISTS %s.%s", q, qv);
        buf_append(&sql, drop, strlen(drop));
        cls = ch_exec(c, &sql, err, errlen);
        char *vddl = cls == ERRCLASS_NONE ? setup_view_ddl(c->spec->dest_database, nd) : NULL;
        if (cls == ERRCLASS_NONE && vddl)
            cls = ch_client_query(c->ch, vddl, NULL, err, errlen);
        free(vddl);
        if (cls != ERRCLASS_NONE)
            goto out;
    }
    *t->defp = nd;
    nd = NULL;
    pgferry__state__table_def__free_unpacked(old, NULL);
    cls = table_prepare(c, t, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    if (reason.len == 0)
        note(&reason, "column order or types of %s%s%s changed", shown, "", "");
    char msg[2000];
    snprintf(msg, sizeof(msg), "schema change in %s: %.*s", shown, (int)reason.len,
             (char *)reason.data);
    if (!worker_send_definitions(c->w, c->defs, c->ntables, msg))
        log_warn("could not report the new definitions: %s", msg);
    log_info("%s", msg);
    cls = ERRCLASS_NONE;
out:
    free(used);
    free(chcols);
    buf_free(&reason);
    buf_free(&sql);
    if (cur)
        setup_free_def(cur);
    if (nd)
        pgferry__state__table_def__free_unpacked(nd, NULL);
    return cls;
}

static errclass_t
on_relation(cdc_t *c, const pgo_msg_t *m, char *err, size_t errlen)
{
    relmap_t *rm = rel_find(c, m->u.relation.relid);
    if (!rm) {
        if (c->nrels == c->caprels) {
            size_t nc = c->caprels ? c->caprels * 2 : 8;
            relmap_t *a = realloc(c->rels, nc * sizeof(*a));
            if (!a) {
                snprintf(err, errlen, "out of memory");
                return ERRCLASS_TRANSIENT;
            }
            c->rels = a;
            c->caprels = nc;
        }
        rm = &c->rels[c->nrels++];
        memset(rm, 0, sizeof(*rm));
        rm->relid = m->u.relation.relid;
    }
    free(rm->defcol);
    free(rm->relcol);
    rm->defcol = rm->relcol = NULL;
    errclass_t cls = rel_table(c, m, &rm->table, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    if (rm->table < 0) {
        log_debug("relation %s.%s is not in this pipe; its changes are ignored",
                  m->u.relation.nspname, m->u.relation.relname);
        return ERRCLASS_NONE;
    }
    ctable_t *t = &c->tables[rm->table];
    const Pgferry__State__TableSpec *ts = c->spec->tables[t->index];
    /* the same columns, names and types as recorded? */
    for (int pass = 0; pass < 2; pass++) {
        const Pgferry__State__TableDef *d = *t->defp;
        size_t n = m->u.relation.ncols, matched = 0;
        bool same = true;
        free(rm->defcol);
        free(rm->relcol);
        rm->defcol = calloc(n + 1, sizeof(int));
        rm->relcol = calloc(d->n_columns + 1, sizeof(int));
        if (!rm->defcol || !rm->relcol) {
            snprintf(err, errlen, "out of memory");
            return ERRCLASS_TRANSIENT;
        }
        rm->nrel = n;
        rm->ndef = d->n_columns;
        for (size_t j = 0; j < n && same; j++) {
            const pgo_column_t *rc = &m->u.relation.cols[j];
            rm->defcol[j] = -1;
            if (setup_column_excluded(ts, rc->name))
                continue;
            int k = def_col_by(d, rc->name, false);
            if (k < 0 || (d->columns[k]->type_oid && (d->columns[k]->type_oid != rc->type_oid ||
                                                      d->columns[k]->typmod != rc->typmod))) {
                same = false;
                break;
            }
            rm->defcol[j] = k;
            rm->relcol[k] = (int)j;
            matched++;
        }
        if (same && matched == d->n_columns)
            return ERRCLASS_NONE;
        if (pass == 1) {
            snprintf(err, errlen,
                     "relation %s.%s still differs from its definition after the "
                     "schema change was applied",
                     m->u.relation.nspname, m->u.relation.relname);
            return ERRCLASS_FATAL;
        }
        /* rows pending for this table have the old column list */
        cls = table_flush(c, t, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = schema_change(c, t, m, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        /* every other relation mapped to this table maps again on its next Relation */
        for (size_t i = 0; i < c->nrels; i++) {
            if (&c->rels[i] != rm && c->rels[i].table == rm->table) {
                free(c->rels[i].defcol);
                free(c->rels[i].relcol);
                c->rels[i].defcol = c->rels[i].relcol = NULL;
                c->rels[i].ndef = 0;
            }
        }
    }
    return ERRCLASS_NONE;
}

/* ---- changes -------------------------------------------------------------------------- */

/* Reads the stored values of the given definition columns for the row with the key in keytup
 * from ClickHouse (an update that left TOASTed values unchanged does not send them). */
static errclass_t
fetch_stored(cdc_t *c, ctable_t *t, const relmap_t *rm, const pgo_tuple_t *keytup, const int *cols,
             size_t ncols, unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
    const Pgferry__State__TableDef *d = *t->defp;
    errclass_t cls = table_flush(c, t, err, errlen); /* earlier changes of this batch first */
    if (cls != ERRCLASS_NONE)
        return cls;
    buf_t q;
    buf_init(&q);
    char id[300];
    buf_append(&q, "SELECT ", 7);
    for (size_t i = 0; i < ncols; i++) {
        chsql_ident(setup_ch_name(d->columns[cols[i]]), id, sizeof(id));
        if (i)
            buf_append(&q, ", ", 2);
        buf_append(&q, id, strlen(id));
    }
    buf_append(&q, " FROM ", 6);
    buf_append(&q, t->qname, strlen(t->qname));
    buf_append(&q, " FINAL WHERE ", 13);
    int nk = 0;
    for (size_t k = 0; k < d->n_columns; k++) {
        if (!d->columns[k]->key_position)
            continue;
        const pgo_value_t *v = &keytup->values[rm->relcol[k]];
        if (v->kind != 't') {
            buf_free(&q);
            snprintf(err, errlen, "update of %s.%s without the key column %s", d->schema, d->name,
                     d->columns[k]->name);
            return ERRCLASS_FATAL;
        }
        chsql_ident(setup_ch_name(d->columns[k]), id, sizeof(id));
        if (nk++)
            buf_append(&q, " AND ", 5);
        buf_append(&q, id, strlen(id));
        buf_append(&q, " = ", 3);
        char e[256];
        if (!typemap_literal(&t->tm[k], v->data, v->len, &q, e, sizeof(e))) {
            buf_free(&q);
            snprintf(err, errlen, "key of %s.%s: %s", d->schema, d->name, e);
            return ERRCLASS_FATAL;
        }
    }
    const char *tail = " ORDER BY `_pgferry_version` DESC LIMIT 1 FORMAT RowBinary";
    buf_append(&q, tail, strlen(tail) + 1);
    if (q.oom) {
        buf_free(&q);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    char *body = NULL;
    cls = ch_client_query_len(c->ch, (char *)q.data, &body, outlen, err, errlen);
    buf_free(&q);
    if (cls != ERRCLASS_NONE)
        return cls;
    *out = (unsigned char *)body;
    return ERRCLASS_NONE;
}

/* Appends one row to the table's pending insert: values from tup (mapped through rm), 'u'
 * values from old (REPLICA IDENTITY FULL) or from ClickHouse, absent ones as NULL/zero. */
static errclass_t
add_row(cdc_t *c, ctable_t *t, const relmap_t *rm, const pgo_tuple_t *tup, const pgo_tuple_t *old,
        char old_kind, const pgo_tuple_t *keytup, uint64_t version, bool deleted, char *err,
        size_t errlen)
{
    const Pgferry__State__TableDef *d = *t->defp;
    if (tup->ncols != rm->nrel) {
        snprintf(err, errlen, "change of %s.%s has %u columns, its relation %zu", d->schema,
                 d->name, tup->ncols, rm->nrel);
        return ERRCLASS_FATAL;
    }
    /* unchanged TOAST values not in an old row: read them back from ClickHouse */
    int fetch_cols[64];
    size_t nfetch = 0;
    unsigned char *stored = NULL;
    size_t stored_len = 0, stored_pos = 0;
    for (size_t k = 0; k < d->n_columns && !deleted; k++) {
        const pgo_value_t *v = &tup->values[rm->relcol[k]];
        if (v->kind != 'u')
            continue;
        if (old_kind == 'O' && old->values[rm->relcol[k]].kind == 't')
            continue;
        if (nfetch == sizeof(fetch_cols) / sizeof(fetch_cols[0])) {
            snprintf(err, errlen, "more than 64 unchanged TOAST columns in %s.%s", d->schema,
                     d->name);
            return ERRCLASS_FATAL;
        }
        fetch_cols[nfetch++] = (int)k;
    }
    if (nfetch) {
        errclass_t cls =
            fetch_stored(c, t, rm, keytup, fetch_cols, nfetch, &stored, &stored_len, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        if (stored_len == 0) {
            free(stored);
            snprintf(err, errlen,
                     "an update of %s.%s left a TOASTed value unchanged, but ClickHouse has no "
                     "row for its key; resync the table",
                     d->schema, d->name);
            return ERRCLASS_FATAL;
        }
    }
    size_t start = t->rows.len, f = 0;
    for (size_t k = 0; k < d->n_columns; k++) {
        const pgo_value_t *v = &tup->values[rm->relcol[k]];
        char e[256];
        bool ok = true;
        if (v->kind == 'u' && !deleted) {
            if (old_kind == 'O' && old->values[rm->relcol[k]].kind == 't') {
                v = &old->values[rm->relcol[k]];
            } else {
                size_t sz =
                    typemap_value_size(&t->tm[k], stored + stored_pos, stored_len - stored_pos);
                if (sz == 0 || f >= nfetch || fetch_cols[f] != (int)k) {
                    free(stored);
                    t->rows.len = start;
                    snprintf(err, errlen, "unreadable stored value of %s in %s.%s",
                             d->columns[k]->name, d->schema, d->name);
                    return ERRCLASS_FATAL;
                }
                buf_append(&t->rows, stored + stored_pos, sz);
                stored_pos += sz;
                f++;
                continue;
            }
        }
        if (v->kind == 't')
            ok = typemap_encode(&t->tm[k], v->data, v->len, &t->rows, e, sizeof(e));
        else if (deleted || v->kind == 'u')
            typemap_encode_absent(&t->tm[k], &t->rows);
        else
            ok = typemap_encode(&t->tm[k], NULL, 0, &t->rows, e, sizeof(e));
        if (!ok) {
            free(stored);
            t->rows.len = start;
            snprintf(err, errlen, "%s.%s column %s at %X/%X: %s", d->schema, d->name,
                     d->columns[k]->name, (unsigned)(version >> 32), (unsigned)version, e);
            return ERRCLASS_FATAL;
        }
    }
    free(stored);
    buf_le(&t->rows, version, 8);
    buf_byte(&t->rows, deleted ? 1 : 0);
    t->nrows++;
    c->batch_rows++;
    c->batch_bytes += t->rows.len - start;
    if (t->rows.len >= c->chunk_bytes)
        return table_flush(c, t, err, errlen);
    return ERRCLASS_NONE;
}

static bool
keys_differ(const Pgferry__State__TableDef *d, const relmap_t *rm, const pgo_tuple_t *a,
            const pgo_tuple_t *b)
{
    for (size_t k = 0; k < d->n_columns; k++) {
        if (!d->columns[k]->key_position)
            continue;
        const pgo_value_t *x = &a->values[rm->relcol[k]], *y = &b->values[rm->relcol[k]];
        if (x->kind != y->kind || x->len != y->len ||
            (x->len && memcmp(x->data, y->data, x->len) != 0))
            return true;
    }
    return false;
}

static errclass_t
on_change(cdc_t *c, const pgo_msg_t *m, uint64_t lsn, char *err, size_t errlen)
{
    if (c->skip_txn)
        return ERRCLASS_NONE;
    relmap_t *rm = rel_find(c, m->u.change.relid);
    if (!rm) {
        snprintf(err, errlen, "change for relation %u before its Relation message",
                 m->u.change.relid);
        return ERRCLASS_FATAL;
    }
    if (rm->table < 0)
        return ERRCLASS_NONE;
    ctable_t *t = &c->tables[rm->table];
    if (c->txn_final < t->skip_before)
        return ERRCLASS_NONE; /* committed before the table's load read it */
    if (!rm->defcol || rm->ndef != (*t->defp)->n_columns) {
        snprintf(err, errlen, "relation %u changed shape without a new Relation message",
                 m->u.change.relid);
        return ERRCLASS_FATAL;
    }
    const pgo_tuple_t *oldt = &m->u.change.old_tuple, *newt = &m->u.change.new_tuple;
    char ok = m->u.change.old_kind;
    c->total_changes++;
    t->n[0][m->kind == PGO_INSERT ? 0 : m->kind == PGO_UPDATE ? 1 : 2]++;
    switch (m->kind) {
    case PGO_INSERT:
        c->t_ins++;
        return add_row(c, t, rm, newt, NULL, 0, newt, lsn, false, err, errlen);
    case PGO_DELETE:
        c->t_del++;
        return add_row(c, t, rm, oldt, NULL, 0, oldt, lsn, true, err, errlen);
    case PGO_UPDATE: {
        c->t_upd++;
        const pgo_tuple_t *keyt = ok ? oldt : newt;
        /* the new row first: unchanged TOAST values are read back under the old key */
        errclass_t cls = add_row(c, t, rm, newt, oldt, ok, keyt, lsn, false, err, errlen);
        if (cls == ERRCLASS_NONE && ok && keys_differ(*t->defp, rm, oldt, newt)) {
            /* the key changed: the old key's row is deleted (same version, another key) */
            cls = add_row(c, t, rm, oldt, NULL, 0, oldt, lsn, true, err, errlen);
        }
        return cls;
    }
    default:
        return ERRCLASS_NONE;
    }
}

static errclass_t
on_truncate(cdc_t *c, const pgo_msg_t *m, char *err, size_t errlen)
{
    if (c->skip_txn)
        return ERRCLASS_NONE;
    /* everything before the truncate lands first, in order */
    errclass_t cls = flush_tables(c, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    for (uint32_t i = 0; i < m->u.truncate.nrels; i++) {
        relmap_t *rm = rel_find(c, m->u.truncate.relids[i]);
        if (!rm || rm->table < 0)
            continue;
        ctable_t *t = &c->tables[rm->table];
        if (c->txn_final < t->skip_before)
            continue;
        char sql[700];
        snprintf(sql, sizeof(sql), "TRUNCATE TABLE %s", t->qname);
        cls = ch_client_query(c->ch, sql, NULL, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        log_info("truncated %s (TRUNCATE at the source)", t->qname);
    }
    return ERRCLASS_NONE;
}

static errclass_t
handle_xlogdata(cdc_t *c, const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    if (len < 25) {
        snprintf(err, errlen, "short XLogData message (%zu bytes)", len);
        return ERRCLASS_FATAL;
    }
    uint64_t start = get_be64(buf + 1), end = get_be64(buf + 9);
    if (end > c->received)
        c->received = end;
    pgo_msg_t m;
    char e[512];
    if (!pgoutput_decode(c->dec, buf + 25, len - 25, &m, e, sizeof(e))) {
        snprintf(err, errlen, "undecodable pgoutput message at %X/%X: %s", (unsigned)(start >> 32),
                 (unsigned)start, e);
        return ERRCLASS_FATAL;
    }
    switch (m.kind) {
    case PGO_BEGIN:
        c->in_txn = true;
        c->txn_final = m.u.begin.final_lsn;
        c->txn_time = m.u.begin.commit_time + PG_EPOCH_UNIX_US;
        c->skip_txn = c->skip_before && m.u.begin.final_lsn < c->skip_before;
        c->t_ins = c->t_upd = c->t_del = 0;
        for (size_t i = 0; i < c->ntables; i++)
            memset(c->tables[i].n[0], 0, sizeof(c->tables[i].n[0]));
        return ERRCLASS_NONE;
    case PGO_COMMIT: {
        c->in_txn = false;
        c->skip_txn = false;
        c->last_commit_end = m.u.commit.end_lsn;
        c->last_commit_time = m.u.commit.commit_time + PG_EPOCH_UNIX_US;
        for (size_t i = 0; i < c->ntables; i++) {
            for (int op = 0; op < 3; op++)
                c->tables[i].n[1][op] += c->tables[i].n[0][op];
            memset(c->tables[i].n[0], 0, sizeof(c->tables[i].n[0]));
        }
        c->b_ins += c->t_ins;
        c->b_upd += c->t_upd;
        c->b_del += c->t_del;
        c->b_txn++;
        int64_t now = time_mono_ms();
        if (!c->batch_deadline)
            c->batch_deadline = now + c->max_wait_ms;
        if (c->batch_rows >= c->max_rows || c->batch_bytes >= c->max_bytes ||
            now >= c->batch_deadline)
            return flush_and_ack(c, err, errlen);
        return ERRCLASS_NONE;
    }
    case PGO_RELATION:
        return on_relation(c, &m, err, errlen);
    case PGO_INSERT:
    case PGO_UPDATE:
    case PGO_DELETE:
        return on_change(c, &m, start, err, errlen);
    case PGO_TRUNCATE:
        return on_truncate(c, &m, err, errlen);
    case PGO_ORIGIN:
    case PGO_TYPE:
    case PGO_MESSAGE:
        return ERRCLASS_NONE;
    }
    return ERRCLASS_NONE;
}

static errclass_t
handle_keepalive(cdc_t *c, const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    if (len < 18) {
        snprintf(err, errlen, "short keepalive message (%zu bytes)", len);
        return ERRCLASS_FATAL;
    }
    uint64_t end = get_be64(buf + 1);
    bool reply = buf[17] != 0;
    if (end > c->received)
        c->received = end;
    /* nothing received is waiting for ClickHouse: every transaction committed before `end`
     * has been applied, so the slot may move there (WAL of other tables or databases) */
    bool idle = !c->in_txn && c->batch_deadline == 0 && c->batch_rows == 0;
    if (idle && end > c->flushed) {
        c->flushed = end;
        return send_status(c, false, err, errlen);
    }
    if (reply)
        return send_status(c, false, err, errlen);
    return ERRCLASS_NONE;
}

/* ---- the loop -------------------------------------------------------------------------- */

static errclass_t
start_replication(cdc_t *c, char *err, size_t errlen)
{
    errclass_t cls;
    c->repl = pgconn_connect(c->spec->source, "pgferry-cdc", true, &cls, err, errlen);
    if (!c->repl)
        return cls;
    /* publication_names is a list of identifiers inside a string literal */
    buf_t b;
    buf_init(&b);
    char slot[200];
    snprintf(slot, sizeof(slot),
             "START_REPLICATION SLOT \"%s\" LOGICAL 0/0 (proto_version '1', "
             "publication_names '\"",
             c->spec->slot);
    buf_append(&b, slot, strlen(slot));
    for (const char *p = c->spec->publication; *p; p++) {
        if (*p == '"')
            buf_byte(&b, '"');
        if (*p == '\'')
            buf_byte(&b, '\'');
        buf_byte(&b, (unsigned char)*p);
    }
    buf_append(&b, "\"')", 4);
    if (b.oom) {
        buf_free(&b);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    PGresult *r = PQexec(c->repl, (char *)b.data);
    buf_free(&b);
    if (PQresultStatus(r) != PGRES_COPY_BOTH) {
        cls = pgconn_classify(r, c->repl);
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
        msg[strcspn(msg, "\n")] = '\0';
        snprintf(err, errlen, "cannot stream from slot %s: %s%s", c->spec->slot, msg,
                 strstr(msg, "does not exist") && strstr(msg, "slot")
                     ? " (the slot was dropped outside pgferry: changes since are lost; resync "
                       "the pipe)"
                 : strstr(msg, "can no longer get changes")
                     ? " (the slot was invalidated: the source removed WAL it needed, see "
                       "max_slot_wal_keep_size; resync the pipe)"
                     : "");
        PQclear(r);
        return cls;
    }
    PQclear(r);
    log_info("streaming slot %s, publication %s", c->spec->slot, c->spec->publication);
    return ERRCLASS_NONE;
}

/* Why the server ended the stream. */
static errclass_t
stream_ended(cdc_t *c, char *err, size_t errlen)
{
    PGresult *r = PQgetResult(c->repl);
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (r && PQresultStatus(r) != PGRES_COMMAND_OK) {
        cls = pgconn_classify(r, c->repl);
        const char *msg = PQresultErrorMessage(r);
        if (strstr(msg, "can no longer get changes") || strstr(msg, "has been invalidated"))
            snprintf(err, errlen,
                     "replication slot %s was invalidated (the source removed WAL it needed); "
                     "resync the pipe: %s",
                     c->spec->slot, msg);
        else
            snprintf(err, errlen, "replication stream ended: %s", msg);
    } else {
        snprintf(err, errlen, "replication stream ended: %s", PQerrorMessage(c->repl));
    }
    PQclear(r);
    return cls;
}

errclass_t
cdc_run(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef **tables, size_t n_tables,
        const char *skip_before_lsn, worker_t *w, char *err, size_t errlen)
{
    cdc_t c;
    memset(&c, 0, sizeof(c));
    c.spec = spec;
    c.w = w;
    c.defs = tables;
    c.ntables = n_tables;
    c.max_rows = spec->batch_max_rows ? spec->batch_max_rows : 100000;
    c.max_bytes = spec->batch_max_bytes ? (size_t)spec->batch_max_bytes : 16u << 20;
    c.max_wait_ms = spec->batch_max_wait_ms ? spec->batch_max_wait_ms : 250;
    c.chunk_bytes = c.max_bytes < CHUNK_MIN_BYTES   ? CHUNK_MIN_BYTES
                    : c.max_bytes > CHUNK_MAX_BYTES ? CHUNK_MAX_BYTES
                                                    : c.max_bytes;
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (skip_before_lsn && *skip_before_lsn && !lsn_parse(skip_before_lsn, &c.skip_before)) {
        snprintf(err, errlen, "bad snapshot position %s", skip_before_lsn);
        return ERRCLASS_FATAL;
    }
    if (n_tables != spec->n_tables || n_tables == 0) {
        snprintf(err, errlen, "%zu table definitions for %zu tables; the pipe needs Setup again",
                 n_tables, spec->n_tables);
        return ERRCLASS_FATAL;
    }
    c.ch = worker_dest_client(spec, err, errlen);
    if (!c.ch)
        return ERRCLASS_FATAL;
    c.dec = pgoutput_decoder_new();
    c.tables = calloc(n_tables, sizeof(*c.tables));
    if (!c.dec || !c.tables) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    char *ver = ch_client_version(c.ch, &cls, err, errlen);
    if (!ver)
        goto out;
    c.ch_version = ch_version_number(ver);
    free(ver);
    for (size_t i = 0; i < n_tables; i++) {
        c.tables[i].defp = &tables[i];
        c.tables[i].index = i;
        buf_init(&c.tables[i].rows);
        cls = table_prepare(&c, &c.tables[i], err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
    }
    cls = start_replication(&c, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    c.next_status = time_mono_ms() + STATUS_INTERVAL_MS;
    c.next_report = time_mono_ms() + REPORT_INTERVAL_MS;
    {
        /* streaming from the slot with ClickHouse reachable: healthy (ends Degraded) */
        slotinfo_t si;
        char e[1024];
        if ((cls = ensure_sql(&c, err, errlen)) != ERRCLASS_NONE)
            goto out;
        cls = slotinfo_query(c.sql, spec->slot, &si, e, sizeof(e));
        if (cls != ERRCLASS_NONE) {
            snprintf(err, errlen, "%s", e);
            goto out;
        }
        worker_send_slot(w, &si.msg);
        worker_send_progress(w, 0, 0, si.confirmed, "streaming");
    }
    unsigned since_check = 0;
    for (;;) {
        if (++since_check >= STOP_CHECK_EVERY) {
            since_check = 0;
            if (worker_should_stop(w))
                break;
        }
        char *msg = NULL;
        int n = PQgetCopyData(c.repl, &msg, 1);
        if (n > 0) {
            const unsigned char *b = (const unsigned char *)msg;
            if (b[0] == 'w')
                cls = handle_xlogdata(&c, b, (size_t)n, err, errlen);
            else if (b[0] == 'k')
                cls = handle_keepalive(&c, b, (size_t)n, err, errlen);
            else
                cls = ERRCLASS_NONE;
            PQfreemem(msg);
            if (cls != ERRCLASS_NONE)
                goto out;
            int64_t now = time_mono_ms();
            if (now >= c.next_status && (cls = send_status(&c, false, err, errlen)))
                goto out;
            report_applied(&c, false);
            if ((cls = maybe_slotinfo(&c, err, errlen)) != ERRCLASS_NONE)
                goto out;
            continue;
        }
        if (n == -1) {
            cls = stream_ended(&c, err, errlen);
            goto out;
        }
        if (n < -1) {
            snprintf(err, errlen, "replication stream failed: %s", PQerrorMessage(c.repl));
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
        /* nothing to read: time-driven work, then wait for the socket */
        since_check = 0;
        if (worker_should_stop(w))
            break;
        int64_t now = time_mono_ms();
        if (c.batch_deadline && !c.in_txn && now >= c.batch_deadline) {
            cls = flush_and_ack(&c, err, errlen);
            if (cls != ERRCLASS_NONE)
                goto out;
        }
        if (now >= c.next_status && (cls = send_status(&c, false, err, errlen)))
            goto out;
        report_applied(&c, false);
        if ((cls = maybe_slotinfo(&c, err, errlen)) != ERRCLASS_NONE)
            goto out;
        int64_t wait = 100;
        if (c.batch_deadline && !c.in_txn && c.batch_deadline - now < wait)
            wait = c.batch_deadline - now;
        struct pollfd pfd = {PQsocket(c.repl), POLLIN, 0};
        poll(&pfd, 1, wait > 0 ? (int)wait : 0);
        if (!PQconsumeInput(c.repl)) {
            snprintf(err, errlen, "lost the replication connection: %s", PQerrorMessage(c.repl));
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
    }
    /* stopped: what ClickHouse takes now is acknowledged, the rest comes again next time */
    cls = flush_and_ack(&c, err, errlen);
    if (cls == ERRCLASS_NONE) {
        report_applied(&c, true);
        char lsn[32];
        lsn_format(c.flushed, lsn, sizeof(lsn));
        log_info("stopped at %s after %" PRIu64 " change(s)", lsn, c.total_changes);
    }
out:
    if (cls != ERRCLASS_NONE && c.flushed)
        report_applied(&c, true);
    if (c.repl)
        PQfinish(c.repl);
    if (c.sql)
        PQfinish(c.sql);
    for (size_t i = 0; c.tables && i < n_tables; i++) {
        free(c.tables[i].tm);
        free(c.tables[i].insert_sql);
        buf_free(&c.tables[i].rows);
    }
    free(c.tables);
    for (size_t i = 0; i < c.nrels; i++) {
        free(c.rels[i].defcol);
        free(c.rels[i].relcol);
    }
    free(c.rels);
    pgoutput_decoder_destroy(&c.dec);
    ch_client_destroy(&c.ch);
    return cls;
}
