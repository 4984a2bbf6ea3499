/* cdc: the replication loop (receivelog.c's shape), batching decisions and reports. How rows
 * are made is apply.c's business, schema changes schema.c's, relation ids relmap.c's. */
#include "cdc.h"
#include "owners.h"
#include "apply.h"
#include "applyio.h"
#include "chsql.h"
#include "chtable.h"
#include "log.h"
#include "lsn.h"
#include "meta.h"
#include "pgconn.h"
#include "pgoutput.h"
#include "relmap.h"
#include "schema.h"
#include "setup.h"
#include "tablename.h"
#include "slotinfo.h"
#include "timeutil.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_INTERVAL_MS 10000  /* standby status at least this often */
#define REPORT_INTERVAL_MS 1000   /* Applied reports to the supervisor */
#define STOP_STORED_WAIT_MS 2000  /* at a stop, for the last report to be stored */
#define SLOTINFO_INTERVAL_MS 3000 /* slot position, lag and retained WAL */
#define STOP_CHECK_EVERY 512      /* messages between stop checks under load */
#define CHUNK_MIN_BYTES (1u << 20)
#define CHUNK_MAX_BYTES (16u << 20) /* one insert at most; bounds memory in big transactions */
#define PG_EPOCH_UNIX_US 946684800000000LL
/* libpq keeps its input buffer at the size of the largest message it received: after one this
 * large, the stream is opened again once everything is acknowledged, to give the memory back */
#define REPL_BUFFER_RESET_BYTES (64 << 20)

/* One of the pipe's tables. */
typedef struct {
    size_t index;         /* into spec->tables and the definitions */
    chtable_t ct;         /* the destination (rebuilt after a schema change) */
    int ap;               /* its index in the apply model */
    uint64_t skip_before; /* transactions committed before this are in the table's load */
    /* the commit end its counts go to: stored ones at the start (its changes committed before
     * are applied and counted already), then those of its last insert */
    uint64_t counted_before, counted_end;
    uint64_t n[3][3]; /* [in the transaction, in the batch, to report][insert, update, delete] */
    uint64_t bytes;   /* inserted, to report */
    /* pace: rows pending since (monotonic ms), the last insert (monotonic ms, 0 = none yet),
     * and while rows are pending, the commit end before the first of them: the slot may be
     * confirmed up to there (everything of this table committed before it is inserted) */
    bool held;
    uint64_t hold_at;
    int64_t pending_since, last_insert;
} ctable_t;

typedef struct {
    const Pgferry__State__PipeSpec *spec;
    worker_t *w;
    PGconn *repl, *sql;
    ch_client_t *ch;
    pgoutput_decoder_t *dec;
    Pgferry__State__TableDef **defs; /* the caller's array; replaced in place on schema change */
    ctable_t *tables;
    size_t ntables;
    relmap_t *rels;
    apply_t *ap;
    applyio_t io;
    chcluster_t cl;
    const pgo_value_t **newv, **oldv; /* scratch: a change's values in definition order */
    size_t capv;
    /* positions */
    uint64_t received, flushed, last_commit_end, skip_before;
    /* counted: the supervisor's stored position when this run started (transactions committed
     * before it are applied and counted); confirmed: what the slot was last told */
    uint64_t counted, confirmed;
    int64_t last_commit_time; /* unix us */
    bool in_txn, skip_txn, txn_counted;
    bool reopen;          /* a huge message went through libpq's buffer */
    uint64_t txn_version; /* the transaction's commit LSN: the version of its rows */
    /* definitions changed by the stream are recorded only once the slot is acknowledged past
     * the commit of the transaction that changed them: a worker that dies before replays the
     * transaction with the definitions from before it, not with ones from its future */
    bool defs_changed_in_txn, defs_unsent;
    uint64_t defs_lsn; /* commit end of the last transaction that changed them */
    buf_t defs_reason;
    /* the slot's restart_lsn (last seen): PostgreSQL writes the slot's confirmed position to
     * disk only when restart_lsn or catalog_xmin move, so after a crash of the source the stream
     * can start again anywhere from restart_lsn on, before definitions already recorded: those
     * keep the definitions before them (TableDef.previous) until restart_lsn passes them */
    uint64_t restart;
    /* batch: a table's rows go out at most once per max_wait_ms (see pace()) */
    uint32_t max_rows, max_wait_ms;
    size_t max_bytes;
    /* counters: of the current transaction, of the batch, not yet reported */
    uint64_t b_txn, r_ins, r_upd, r_del, r_txn;
    size_t *held; /* the tables holding rows (ctable_t.held), in no order */
    size_t nheld;
    uint64_t total_changes, batches;
    int64_t next_status, next_report, next_slotinfo;
} cdc_t;

static unsigned
tm_flags(const cdc_t *c)
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

static errclass_t
io_ensure(void *ud, char *err, size_t errlen)
{
    return ensure_sql(ud, err, errlen);
}

/* (Re)builds the destination of table i from its current definition. */
static errclass_t
table_prepare(cdc_t *c, ctable_t *t, char *err, size_t errlen)
{
    const Pgferry__State__TableDef *def = c->defs[t->index];
    chtable_free(&t->ct);
    t->skip_before = 0;
    if (def->snapshot_lsn[0] && !lsn_parse(def->snapshot_lsn, &t->skip_before)) {
        snprintf(err, errlen, "bad snapshot position %s of %s.%s", def->snapshot_lsn, def->schema,
                 def->name);
        return ERRCLASS_FATAL;
    }
    errclass_t cls = chtable_init(&t->ct, c->spec->dest_database, def, "", err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    if (def->n_columns > c->capv) {
        const pgo_value_t **a = realloc(c->newv, def->n_columns * sizeof(*a));
        const pgo_value_t **b = a ? realloc(c->oldv, def->n_columns * sizeof(*b)) : NULL;
        if (a)
            c->newv = a;
        if (b)
            c->oldv = b;
        if (!a || !b) {
            snprintf(err, errlen, "out of memory");
            return ERRCLASS_TRANSIENT;
        }
        c->capv = def->n_columns;
    }
    return ERRCLASS_NONE;
}

/* ---- replication protocol ---------------------------------------------------------------- */

/* What the slot may be told: what ClickHouse has (flushed), but no further than the supervisor
 * has stored with its counters, so a report lost with pgferryd (SIGKILL) is streamed, applied
 * and counted again instead of its counts being lost while the slot moved on. */
static uint64_t
confirm_position(const cdc_t *c)
{
    uint64_t stored = worker_stored_lsn(c->w);
    if (stored < c->counted)
        stored = c->counted;
    return c->flushed < stored ? c->flushed : stored;
}

/* Drops the definitions before each table's that no replay can need: the source never sends
 * the stream again from before the slot's restart_lsn (see TableDef.previous). */
static void
prune_previous(cdc_t *c)
{
    for (size_t i = 0; i < c->ntables; i++) {
        for (Pgferry__State__TableDef *d = c->defs[i]; d && d->previous; d = d->previous) {
            uint64_t at = 0;
            if (!d->defs_lsn[0] || !lsn_parse(d->defs_lsn, &at) || at > c->restart)
                continue; /* not committed yet, or a replay may still start before it */
            setup_free_def(d->previous);
            d->previous = NULL;
            break;
        }
    }
}

/* Definitions changed by the stream are recorded once ClickHouse has the rows of the last
 * transaction that changed them, with the ones before them while a replay can still go back
 * there. The slot may be confirmed there only later (once pgferryd stored the counters): a
 * replay from before the change starts from the definitions before it (start_definitions). */
static void
maybe_send_defs(cdc_t *c)
{
    if (!c->defs_unsent || c->defs_changed_in_txn || c->flushed < c->defs_lsn)
        return;
    prune_previous(c);
    buf_byte(&c->defs_reason, '\0');
    const char *reason = c->defs_reason.oom ? "schema changes" : (char *)c->defs_reason.data;
    if (!worker_send_definitions(c->w, c->defs, c->ntables, reason))
        log_warn("could not report the new definitions: %s", reason);
    buf_reset(&c->defs_reason);
    c->defs_unsent = false;
}

static errclass_t
send_status(cdc_t *c, char *err, size_t errlen)
{
    unsigned char m[34];
    int64_t now_pg = time_now_us() - PG_EPOCH_UNIX_US;
    uint64_t pos = confirm_position(c);
    m[0] = 'r';
    /* written = flushed: nothing is "written" short of ClickHouse having it. Reporting the last
     * keepalive's position there would tell an idle walsender we have everything, and it would
     * not ping us with the end of the WAL it read, so the slot would stop at the last commit */
    put_be64(m + 1, pos);
    put_be64(m + 9, pos);
    put_be64(m + 17, pos); /* applied */
    put_be64(m + 25, (uint64_t)now_pg);
    m[33] = 0;
    if (PQputCopyData(c->repl, (const char *)m, sizeof(m)) <= 0 || PQflush(c->repl) != 0) {
        snprintf(err, errlen, "cannot send the replication status: %s", PQerrorMessage(c->repl));
        return ERRCLASS_TRANSIENT;
    }
    c->next_status = time_mono_ms() + STATUS_INTERVAL_MS;
    c->confirmed = pos;
    maybe_send_defs(c);
    return ERRCLASS_NONE;
}

/* The supervisor stored a position beyond what the slot was told, and ClickHouse has it */
static bool
status_due(const cdc_t *c)
{
    return confirm_position(c) > c->confirmed;
}

/* The definitions changed (reason for the history): recorded once acknowledged. */
static void
defs_changed(cdc_t *c, const char *reason)
{
    if (c->defs_reason.len)
        buf_append(&c->defs_reason, "; ", 2);
    buf_append(&c->defs_reason, reason, strlen(reason));
    c->defs_changed_in_txn = true;
    c->defs_unsent = true;
}

/* What ClickHouse confirmed since the last report, for the supervisor (status, metrics, and
 * the stored position: never 0/0, which would read as "nothing confirmed yet"). */
static void
report_applied(cdc_t *c, bool force)
{
    int64_t now = time_mono_ms();
    if (!force && now < c->next_report)
        return;
    c->next_report = now + REPORT_INTERVAL_MS;
    char lsn[32] = "";
    if (c->flushed)
        lsn_format(c->flushed, lsn, sizeof(lsn));
    Pgferry__Worker__Applied a = PGFERRY__WORKER__APPLIED__INIT;
    a.lsn = lsn;
    a.commit_time_us = c->last_commit_time;
    a.inserts = c->r_ins;
    a.updates = c->r_upd;
    a.deletes = c->r_del;
    a.transactions = c->r_txn;
    Pgferry__Worker__TableCounts *tc = calloc(c->ntables + 1, sizeof(*tc));
    Pgferry__Worker__TableCounts **tcp = calloc(c->ntables + 1, sizeof(*tcp));
    char(*tl)[32] = calloc(c->ntables + 1, sizeof(*tl));
    for (size_t i = 0; tc && tcp && tl && i < c->ntables; i++) {
        ctable_t *t = &c->tables[i];
        uint64_t taken = apply_take_table_bytes(c->ap, t->ap);
        t->bytes += taken;
        a.bytes += taken;
        if (!t->n[2][0] && !t->n[2][1] && !t->n[2][2] && !t->bytes)
            continue;
        pgferry__worker__table_counts__init(&tc[a.n_tables]);
        tc[a.n_tables].target = c->defs[t->index]->target;
        tc[a.n_tables].inserts = t->n[2][0];
        tc[a.n_tables].updates = t->n[2][1];
        tc[a.n_tables].deletes = t->n[2][2];
        tc[a.n_tables].bytes = t->bytes;
        if (t->counted_end)
            lsn_format(t->counted_end, tl[a.n_tables], sizeof(tl[a.n_tables]));
        tc[a.n_tables].counted_lsn = tl[a.n_tables];
        tcp[a.n_tables] = &tc[a.n_tables];
        a.n_tables++;
    }
    a.tables = tcp;
    if ((tc && tcp && tl) && worker_send_applied(c->w, &a)) {
        c->r_ins = c->r_upd = c->r_del = c->r_txn = 0;
        for (size_t i = 0; i < c->ntables; i++) {
            memset(c->tables[i].n[2], 0, sizeof(c->tables[i].n[2]));
            c->tables[i].bytes = 0;
        }
    }
    free(tc);
    free(tcp);
    free(tl);
    char detail[200];
    snprintf(detail, sizeof(detail), "streaming: confirmed %s, %" PRIu64 " change(s) this run",
             lsn[0] ? lsn : "-", c->total_changes);
    worker_send_progress(c->w, 0, 0, NULL, detail);
}

/* Every few seconds: the slot as the source sees it (lag, retained WAL) for status and metrics,
 * and whether every table still exists (one query for all). A lost or missing slot, or a table
 * dropped at the source, is FATAL; trouble reaching the source only skips a report. */
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
    buf_t arr;
    buf_init(&arr);
    buf_byte(&arr, '{');
    for (size_t i = 0; i < c->ntables; i++) {
        char s[16];
        int l = snprintf(s, sizeof(s), "%s%u", i ? "," : "", c->defs[i]->relid);
        buf_append(&arr, s, (size_t)l);
    }
    buf_append(&arr, "}", 2);
    errclass_t qc;
    const char *p[] = {(const char *)arr.data};
    PGresult *r = arr.oom ? NULL
                          : pgconn_query(c->sql,
                                         "SELECT r FROM unnest($1::oid[]) r WHERE NOT EXISTS "
                                         "(SELECT 1 FROM pg_class WHERE oid = r)",
                                         1, p, &qc, e, sizeof(e));
    buf_free(&arr);
    if (r && PQntuples(r) > 0) {
        uint32_t gone = (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        for (size_t i = 0; i < c->ntables; i++) {
            const Pgferry__State__TableDef *d = c->defs[i];
            if (d->relid != gone)
                continue;
            snprintf(err, errlen,
                     "table %s.%s was dropped at the source; its changes stop here. Remove it "
                     "from the pipe (pgferryctl remove-tables) or drop the pipe",
                     d->schema, d->name);
            return ERRCLASS_FATAL;
        }
        return ERRCLASS_NONE;
    }
    PQclear(r);
    slotinfo_t si;
    errclass_t cls = slotinfo_query(c->sql, c->spec->slot, &si, e, sizeof(e));
    if (cls == ERRCLASS_FATAL) {
        snprintf(err, errlen, "%s", e);
        return cls;
    }
    if (cls == ERRCLASS_NONE) {
        worker_send_slot(c->w, &si.msg);
        if (si.restart[0])
            lsn_parse(si.restart, &c->restart);
    } else
        log_warn("slot report skipped: %s", e);
    return ERRCLASS_NONE;
}

/* The position the slot may be confirmed at: the last commit received, or before it the
 * commit end before the first pending row of a table still waiting for its insert. */
static uint64_t
ack_position(const cdc_t *c)
{
    uint64_t pos = c->last_commit_end;
    for (size_t k = 0; k < c->nheld; k++) {
        if (c->tables[c->held[k]].hold_at < pos)
            pos = c->tables[c->held[k]].hold_at;
    }
    return pos;
}

/* Table t has nothing pending (inserted, or emptied by a TRUNCATE): its counts are reported
 * and it holds the slot back no more. */
static void
table_inserted(cdc_t *c, ctable_t *t)
{
    for (size_t k = 0; t->held && k < c->nheld; k++) {
        if (&c->tables[c->held[k]] == t) {
            c->held[k] = c->held[--c->nheld];
            break;
        }
    }
    t->counted_end = c->last_commit_end; /* its counted rows are of commits up to here */
    for (int op = 0; op < 3; op++) {
        t->n[2][op] += t->n[1][op];
        c->r_ins += op == 0 ? t->n[1][op] : 0;
        c->r_upd += op == 1 ? t->n[1][op] : 0;
        c->r_del += op == 2 ? t->n[1][op] : 0;
        t->n[1][op] = 0;
    }
    t->held = false;
}

/* Confirms to the slot what every table has inserted. */
static errclass_t
ack(cdc_t *c, char *err, size_t errlen)
{
    uint64_t pos = ack_position(c);
    if (pos <= c->flushed)
        return ERRCLASS_NONE;
    c->flushed = pos;
    c->r_txn += c->b_txn;
    c->b_txn = 0;
    errclass_t cls = send_status(c, err, errlen);
    if (cls == ERRCLASS_NONE)
        report_applied(c, false);
    return cls;
}

/* Inserts everything pending and confirms the last commit received to the slot. */
static errclass_t
flush_and_ack(cdc_t *c, char *err, size_t errlen)
{
    if (apply_pending_rows(c->ap))
        c->batches++;
    errclass_t cls = apply_flush(c->ap, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    int64_t now = time_mono_ms();
    while (c->nheld) {
        ctable_t *t = &c->tables[c->held[c->nheld - 1]];
        t->last_insert = now;
        table_inserted(c, t);
    }
    return ack(c, err, errlen);
}

/* The pace of inserts, per table (between transactions): a table's rows are inserted once the
 * stream has nothing more to read (idle) and its last insert is max_wait_ms old, so a quiet
 * table's change is inserted at once and a busy table gets at most one insert per max_wait_ms
 * (ClickHouse merges keep up with a few parts per second per table); while the stream never
 * pauses, once its oldest pending row has waited max_wait_ms. Then the slot is confirmed as far
 * as every table has inserted. */
static errclass_t
pace(cdc_t *c, bool idle, char *err, size_t errlen)
{
    if (c->in_txn)
        return ERRCLASS_NONE;
    int64_t now = time_mono_ms();
    for (size_t k = c->nheld; k-- > 0;) { /* table_inserted moves the last entry to k */
        ctable_t *t = &c->tables[c->held[k]];
        if (apply_table_pending_rows(c->ap, t->ap) == 0) {
            table_inserted(c, t);
            continue;
        }
        int64_t due = idle ? t->last_insert + c->max_wait_ms : t->pending_since + c->max_wait_ms;
        if (now < due)
            continue;
        c->batches++;
        errclass_t cls = apply_flush_table(c->ap, t->ap, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        t->last_insert = time_mono_ms();
        table_inserted(c, t);
    }
    return ack(c, err, errlen);
}

/* Milliseconds until pace() inserts something when the stream stays idle (-1: nothing
 * pending). */
static int64_t
pace_wait(const cdc_t *c)
{
    if (c->in_txn || apply_pending_rows(c->ap) == 0)
        return -1;
    int64_t now = time_mono_ms(), wait = -1;
    for (size_t k = 0; k < c->nheld; k++) {
        const ctable_t *t = &c->tables[c->held[k]];
        if (apply_table_pending_rows(c->ap, t->ap) == 0)
            continue;
        int64_t w = t->last_insert + c->max_wait_ms - now;
        if (w < 0)
            w = 0;
        if (wait < 0 || w < wait)
            wait = w;
    }
    return wait;
}

/* ---- relations ------------------------------------------------------------------------------ */

/* Which of the pipe's tables a relation is: by oid, or as a partition of one. Never by name: a
 * table renamed at the source keeps its oid (and its destination), and a new table that took
 * its old name is another table. *named: a table of the pipe whose recorded name the relation
 * has (for the note that it is not replicated), -1. */
static errclass_t
rel_table(cdc_t *c, const pgo_msg_t *m, int *out, int *named, char *err, size_t errlen)
{
    *out = *named = -1;
    for (size_t i = 0; i < c->ntables; i++) {
        const Pgferry__State__TableDef *d = c->defs[i];
        bool same_name = strcmp(d->schema, m->u.relation.nspname) == 0 &&
                         strcmp(d->name, m->u.relation.relname) == 0;
        /* (a definition recorded without its oid can only go by its name) */
        if (d->relid == m->u.relation.relid || (d->relid == 0 && same_name)) {
            *out = (int)i;
            return ERRCLASS_NONE;
        }
        if (same_name)
            *named = (int)i;
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
        if (c->defs[i]->relid == root) {
            *out = (int)i;
            *named = -1;
            break;
        }
    }
    return ERRCLASS_NONE;
}

/* A relation under the recorded name of one of the pipe's tables, but not that table (a table
 * renamed and another created under its old name): its changes are not applied, and the
 * history says so once. */
static errclass_t
note_namesake(cdc_t *c, relmap_entry_t *e, int named, const pgo_msg_t *m, char *err, size_t errlen)
{
    if (e->noted)
        return ERRCLASS_NONE;
    const Pgferry__State__TableDef *d = c->defs[named];
    char *schemas[1] = {NULL}, *names[1] = {NULL};
    uint32_t relid = d->relid;
    errclass_t cls = ensure_sql(c, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = setup_names_by_oid(c->sql, &relid, 1, schemas, names, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    char rel[300], ours[300], now[300], note[1200];
    tablename_format(m->u.relation.nspname, m->u.relation.relname, rel, sizeof(rel));
    tablename_format(d->schema, d->name, ours, sizeof(ours));
    if (schemas[0])
        tablename_format(schemas[0], names[0], now, sizeof(now));
    snprintf(note, sizeof(note),
             "table %s (oid %u) is not the pipe's table %s (oid %u, %s%s); not replicated — "
             "add-tables to replicate it",
             rel, m->u.relation.relid, ours, d->relid, schemas[0] ? "now named " : "dropped",
             schemas[0] ? now : "");
    free(schemas[0]);
    free(names[0]);
    log_info("%s", note);
    worker_send_note(c->w, note);
    e->noted = true;
    return ERRCLASS_NONE;
}

static bool
excluded_cb(void *ud, const char *name)
{
    return setup_column_excluded(ud, name);
}

/* Binds relation entry e to its table's definition; false when they differ. */
static bool
bind(cdc_t *c, relmap_entry_t *e, const pgo_msg_t *m, char *err, size_t errlen, errclass_t *cls)
{
    ctable_t *t = &c->tables[e->table];
    bool oom;
    bool ok = relmap_bind(e, m, c->defs[t->index], excluded_cb, c->spec->tables[t->index], &oom) &&
              schema_key_matches(c->defs[t->index], m);
    *cls = ERRCLASS_NONE;
    if (oom) {
        snprintf(err, errlen, "out of memory");
        *cls = ERRCLASS_TRANSIENT;
    }
    if (!ok)
        e->bound = false;
    return ok;
}

/* The table itself (its oid) under another name: renamed at the source. The definition takes
 * the new name (status, verify and resync follow it); the destination table stays. */
static errclass_t
follow_rename(cdc_t *c, int table, const pgo_msg_t *m, char *err, size_t errlen)
{
    Pgferry__State__TableDef *d = c->defs[table];
    if (d->relid != m->u.relation.relid || (strcmp(d->schema, m->u.relation.nspname) == 0 &&
                                            strcmp(d->name, m->u.relation.relname) == 0))
        return ERRCLASS_NONE;
    /* the name it has now: a replay brings Relation messages from before later renames */
    char *ns = NULL, *nn = NULL;
    uint32_t relid = d->relid;
    errclass_t cls = ensure_sql(c, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = setup_names_by_oid(c->sql, &relid, 1, &ns, &nn, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    if (ns && strcmp(d->schema, ns) == 0 && strcmp(d->name, nn) == 0) {
        free(ns);
        free(nn);
        return ERRCLASS_NONE;
    }
    if (!ns) { /* dropped since: the message's name */
        free(nn);
        ns = strdup(m->u.relation.nspname);
        nn = strdup(m->u.relation.relname);
    }
    if (!ns || !nn) {
        free(ns);
        free(nn);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    char from[300], to[300], reason[800];
    tablename_format(d->schema, d->name, from, sizeof(from));
    tablename_format(ns, nn, to, sizeof(to));
    snprintf(reason, sizeof(reason),
             "table %s renamed to %s at the source (destination table %s "
             "unchanged)",
             from, to, d->target);
    free(d->schema);
    free(d->name);
    d->schema = ns;
    d->name = nn;
    log_info("%s", reason);
    defs_changed(c, reason);
    return ERRCLASS_NONE;
}

static errclass_t
on_relation(cdc_t *c, const pgo_msg_t *m, char *err, size_t errlen)
{
    relmap_entry_t *e = relmap_put(c->rels, m->u.relation.relid);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    int table, named;
    errclass_t cls = rel_table(c, m, &table, &named, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    e->table = table;
    e->bound = false;
    if (table < 0) {
        log_debug("relation %s.%s (oid %u) is not in this pipe; its changes are ignored",
                  m->u.relation.nspname, m->u.relation.relname, m->u.relation.relid);
        return named >= 0 ? note_namesake(c, e, named, m, err, errlen) : ERRCLASS_NONE;
    }
    if ((cls = follow_rename(c, table, m, err, errlen)) != ERRCLASS_NONE)
        return cls;
    if (bind(c, e, m, err, errlen, &cls) || cls != ERRCLASS_NONE)
        return cls;
    /* a schema change: the table's pending rows have the old columns, so they go first */
    ctable_t *t = &c->tables[table];
    cls = apply_flush_table(c->ap, t->ap, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = ensure_sql(c, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    Pgferry__State__TableDef *nd = NULL;
    char reason[2000];
    cls = schema_apply(c->sql, c->ch, &c->cl, c->spec->dest_database, c->spec->tables[t->index],
                       c->spec->publication_owned ? NULL : c->spec->publication, tm_flags(c),
                       c->defs[t->index], m, &nd, reason, sizeof(reason), err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    /* the definition before keeps its place behind the new one until no replay can need it;
     * the new one takes effect at this transaction's commit (set there) */
    nd->previous = c->defs[t->index];
    c->defs[t->index] = nd;
    if ((cls = table_prepare(c, t, err, errlen)) != ERRCLASS_NONE)
        return cls;
    apply_set_table(c->ap, t->ap, &t->ct);
    relmap_unbind_table(c->rels, table); /* the others map again at their next Relation */
    e->table = table;
    if (!bind(c, e, m, err, errlen, &cls)) {
        if (cls == ERRCLASS_NONE) {
            snprintf(err, errlen,
                     "relation %s.%s still differs from its definition after the schema change "
                     "was applied",
                     m->u.relation.nspname, m->u.relation.relname);
            cls = ERRCLASS_FATAL;
        }
        return cls;
    }
    defs_changed(c, reason);
    log_info("%s", reason);
    return ERRCLASS_NONE;
}

/* ---- changes -------------------------------------------------------------------------------- */

/* The values of tuple tup in definition order (through the relation's column map). */
static const pgo_value_t *const *
by_definition(const relmap_entry_t *e, const pgo_tuple_t *tup, const pgo_value_t **out)
{
    for (size_t k = 0; k < e->ndef; k++)
        out[k] = &tup->values[e->relcol[k]];
    return out;
}

/* A NULL in a column recorded NOT NULL: the source dropped NOT NULL, which no Relation message
 * tells. The table's pending rows (encoded for the old types) go first, then its columns follow
 * (schema_nullable), before the change is applied. */
static errclass_t
follow_nullable(cdc_t *c, const relmap_entry_t *e, const pgo_msg_t *m, char *err, size_t errlen)
{
    ctable_t *t = &c->tables[e->table];
    const Pgferry__State__TableDef *d = c->defs[t->index];
    const pgo_tuple_t *tups[2] = {&m->u.change.new_tuple, &m->u.change.old_tuple};
    bool *null_in = NULL;
    for (int k = 0; k < 2; k++) {
        /* an old key ('K') has NULL in every column but the key's */
        if (k == 0 ? m->kind == PGO_DELETE : m->u.change.old_kind != 'O')
            continue;
        const pgo_value_t *const *v = by_definition(e, tups[k], c->newv);
        for (size_t i = 0; i < d->n_columns && i < e->ndef; i++) {
            if (!d->columns[i]->not_null || v[i]->kind != 'n')
                continue;
            if (!null_in && !(null_in = calloc(d->n_columns, sizeof(bool)))) {
                snprintf(err, errlen, "out of memory");
                return ERRCLASS_TRANSIENT;
            }
            null_in[i] = true;
        }
    }
    if (!null_in)
        return ERRCLASS_NONE;
    Pgferry__State__TableDef *nd = NULL;
    char reason[2000];
    errclass_t cls = apply_flush_table(c->ap, t->ap, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = schema_nullable(c->ch, &c->cl, c->spec->dest_database, d, null_in, &nd, reason,
                              sizeof(reason), err, errlen);
    free(null_in);
    if (cls != ERRCLASS_NONE)
        return cls;
    setup_free_def(c->defs[t->index]);
    c->defs[t->index] = nd;
    if ((cls = table_prepare(c, t, err, errlen)) != ERRCLASS_NONE)
        return cls;
    apply_set_table(c->ap, t->ap, &t->ct);
    defs_changed(c, reason);
    log_info("%s", reason);
    return ERRCLASS_NONE;
}

static errclass_t
on_change(cdc_t *c, const pgo_msg_t *m, char *err, size_t errlen)
{
    if (c->skip_txn)
        return ERRCLASS_NONE;
    relmap_entry_t *e = relmap_get(c->rels, m->u.change.relid);
    if (!e) {
        snprintf(err, errlen, "change for relation %u before its Relation message",
                 m->u.change.relid);
        return ERRCLASS_FATAL;
    }
    if (e->table < 0)
        return ERRCLASS_NONE;
    ctable_t *t = &c->tables[e->table];
    if (c->txn_version < t->skip_before)
        return ERRCLASS_NONE; /* committed before the table's load read it */
    if (c->txn_version < t->counted_before)
        return ERRCLASS_NONE; /* replayed: inserted and counted before */
    const pgo_tuple_t *oldt = &m->u.change.old_tuple, *newt = &m->u.change.new_tuple;
    const pgo_tuple_t *check = m->kind == PGO_DELETE ? oldt : newt;
    if (!e->bound || check->ncols != e->nrel || (m->u.change.old_kind && oldt->ncols != e->nrel)) {
        snprintf(err, errlen, "relation %u changed shape without a new Relation message",
                 m->u.change.relid);
        return ERRCLASS_FATAL;
    }
    errclass_t fcls = follow_nullable(c, e, m, err, errlen);
    if (fcls != ERRCLASS_NONE)
        return fcls;
    char ok = m->u.change.old_kind;
    uint32_t part = m->u.change.relid;
    c->total_changes++;
    if (!t->held) {
        t->held = true;
        t->hold_at = c->last_commit_end;
        t->pending_since = time_mono_ms();
        c->held[c->nheld++] = e->table;
    }
    t->n[0][m->kind == PGO_INSERT ? 0 : m->kind == PGO_UPDATE ? 1 : 2]++;
    switch (m->kind) {
    case PGO_INSERT:
        return apply_insert(c->ap, t->ap, by_definition(e, newt, c->newv), c->txn_version, part,
                            err, errlen);
    case PGO_DELETE:
        return apply_delete(c->ap, t->ap, by_definition(e, oldt, c->oldv), c->txn_version, part,
                            err, errlen);
    case PGO_UPDATE:
        return apply_update(c->ap, t->ap, ok ? by_definition(e, oldt, c->oldv) : NULL, ok == 'O',
                            by_definition(e, newt, c->newv), c->txn_version, part, err, errlen);
    default:
        return ERRCLASS_NONE;
    }
}

/* The leaf partitions of partitioned table root now, sorted; NULL with *n = 0 for a plain table. */
static errclass_t
leaves_of(cdc_t *c, uint32_t root, uint32_t **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    errclass_t cls = ensure_sql(c, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    char rid[16];
    snprintf(rid, sizeof(rid), "%u", root);
    const char *p[] = {rid};
    PGresult *r = pgconn_query(c->sql,
                               "SELECT relid::oid FROM pg_partition_tree($1::oid::regclass) "
                               "WHERE isleaf AND relid <> $1::oid::regclass",
                               1, p, &cls, err, errlen);
    if (!r)
        return cls;
    *out = calloc((size_t)PQntuples(r) + 1, sizeof(**out));
    if (!*out) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    for (int i = 0; i < PQntuples(r); i++)
        (*out)[(*n)++] = (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
    return ERRCLASS_NONE;
}

/* TRUNCATE of plain tables, partitioned roots (publish_via_partition_root) or leaf partitions:
 * a table whose every leaf is in the message is emptied, single leaves lose their rows only. */
static errclass_t
on_truncate(cdc_t *c, const pgo_msg_t *m, char *err, size_t errlen)
{
    if (c->skip_txn)
        return ERRCLASS_NONE;
    errclass_t cls = ERRCLASS_NONE;
    for (size_t i = 0; i < c->ntables && cls == ERRCLASS_NONE; i++) {
        ctable_t *t = &c->tables[i];
        if (c->txn_version < t->skip_before || c->txn_version < t->counted_before)
            continue;
        const Pgferry__State__TableDef *d = c->defs[i];
        uint32_t *named = calloc(m->u.truncate.nrels + 1, sizeof(*named));
        size_t nn = 0;
        bool whole = false;
        if (!named) {
            snprintf(err, errlen, "out of memory");
            return ERRCLASS_TRANSIENT;
        }
        for (uint32_t k = 0; k < m->u.truncate.nrels; k++) {
            uint32_t relid = m->u.truncate.relids[k];
            const relmap_entry_t *e = relmap_get(c->rels, relid);
            if (!e || e->table != (int)i)
                continue;
            if (relid == d->relid)
                whole = true;
            else
                named[nn++] = relid;
        }
        if (!whole && nn) {
            /* leaves: all of today's leaves means the whole table */
            uint32_t *leaves = NULL;
            size_t nl = 0;
            cls = leaves_of(c, d->relid, &leaves, &nl, err, errlen);
            if (cls == ERRCLASS_NONE) {
                size_t covered = 0;
                for (size_t a = 0; a < nl; a++) {
                    for (size_t b = 0; b < nn; b++)
                        covered += leaves[a] == named[b];
                }
                whole = nl > 0 && covered == nl;
            }
            free(leaves);
        }
        if (cls == ERRCLASS_NONE && whole)
            cls = apply_truncate(c->ap, t->ap, 0, c->txn_version, err, errlen);
        for (size_t k = 0; cls == ERRCLASS_NONE && !whole && k < nn; k++)
            cls = apply_truncate(c->ap, t->ap, named[k], c->txn_version, err, errlen);
        free(named);
    }
    return cls;
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
        /* the commit's LSN: every row of the transaction gets it as its version, so versions
         * follow commit order (docs/ARCHITECTURE.md "Versions") */
        c->txn_version = m.u.begin.final_lsn;
        c->skip_txn = c->skip_before && m.u.begin.final_lsn < c->skip_before;
        /* replayed from a slot behind the stored position: applied and counted already */
        c->txn_counted = c->counted && m.u.begin.final_lsn < c->counted;
        c->skip_txn = c->skip_txn || c->txn_counted;
        for (size_t i = 0; i < c->ntables; i++)
            memset(c->tables[i].n[0], 0, sizeof(c->tables[i].n[0]));
        return ERRCLASS_NONE;
    case PGO_COMMIT: {
        c->in_txn = false;
        c->skip_txn = false;
        c->last_commit_end = m.u.commit.end_lsn;
        if (c->defs_changed_in_txn) {
            c->defs_lsn = m.u.commit.end_lsn;
            c->defs_changed_in_txn = false;
            char at[32];
            lsn_format(m.u.commit.end_lsn, at, sizeof(at));
            for (size_t i = 0; i < c->ntables; i++) {
                for (Pgferry__State__TableDef *d = c->defs[i]; d && d->previous && !d->defs_lsn[0];
                     d = d->previous) {
                    char *v = strdup(at);
                    if (v)
                        d->defs_lsn = v;
                }
            }
        }
        c->last_commit_time = m.u.commit.commit_time + PG_EPOCH_UNIX_US;
        for (size_t i = 0; i < c->ntables; i++) {
            for (int op = 0; op < 3; op++)
                c->tables[i].n[1][op] += c->tables[i].n[0][op];
            memset(c->tables[i].n[0], 0, sizeof(c->tables[i].n[0]));
        }
        if (!c->txn_counted)
            c->b_txn++;
        c->txn_counted = false;
        if (apply_pending_rows(c->ap) >= c->max_rows || apply_pending_bytes(c->ap) >= c->max_bytes)
            return flush_and_ack(c, err, errlen);
        return pace(c, false, err, errlen);
    }
    case PGO_RELATION:
        return on_relation(c, &m, err, errlen);
    case PGO_INSERT:
    case PGO_UPDATE:
    case PGO_DELETE:
        return on_change(c, &m, err, errlen);
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
    bool idle = !c->in_txn && apply_pending_rows(c->ap) == 0;
    if (idle && end > c->flushed) {
        c->flushed = end;
        return send_status(c, err, errlen);
    }
    if (reply)
        return send_status(c, err, errlen);
    return ERRCLASS_NONE;
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* Which server the stream comes from (a source given as several hosts picks the primary) and
 * its timeline: the supervisor records a change (a failover) in the history. */
static void
report_server(cdc_t *c)
{
    PGresult *r = PQexec(c->repl, "IDENTIFY_SYSTEM");
    char server[300];
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) >= 2) {
        snprintf(server, sizeof(server), "%s:%s, timeline %s", PQhost(c->repl), PQport(c->repl),
                 PQgetvalue(r, 0, 1));
        log_info("source server %s", server);
        worker_send_source_server(c->w, server);
    }
    PQclear(r);
}

static errclass_t
start_replication(cdc_t *c, char *err, size_t errlen)
{
    errclass_t cls;
    c->repl = pgconn_connect(c->spec->source, "pgferry-cdc", true, &cls, err, errlen);
    if (!c->repl)
        return cls;
    report_server(c);
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
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (!msg)
            msg = PQresultErrorMessage(r);
        char pos[32];
        lsn_format(c->in_txn ? c->txn_version : c->received, pos, sizeof(pos));
        if (strstr(msg, "can no longer get changes") || strstr(msg, "has been invalidated")) {
            snprintf(err, errlen,
                     "replication slot %s was invalidated (the source removed WAL it needed); "
                     "resync the pipe: %s",
                     c->spec->slot, msg);
        } else if (strstr(msg, "invalid memory alloc request size") ||
                   strstr(msg, "Cannot enlarge string buffer")) {
            /* logical replication sends values as text, and PostgreSQL's text forms stop at
             * 1 GB: a retry meets the same change again */
            snprintf(err, errlen,
                     "PostgreSQL cannot send a change of the transaction %s %s: its text form is "
                     "larger than 1 GB (a bytea value over 512 MB, or a row over 1 GB of text), "
                     "which logical replication cannot carry (%s). Reduce the value at the "
                     "source, then resync the pipe",
                     c->in_txn ? "committed at" : "after", pos, msg);
            cls = ERRCLASS_FATAL;
        } else {
            snprintf(err, errlen, "replication stream ended: %s", msg);
        }
    } else {
        snprintf(err, errlen, "replication stream ended: %s", PQerrorMessage(c->repl));
    }
    PQclear(r);
    return cls;
}

static void
cdc_free(cdc_t *c)
{
    if (c->repl)
        PQfinish(c->repl);
    if (c->sql)
        PQfinish(c->sql);
    for (size_t i = 0; c->tables && i < c->ntables; i++)
        chtable_free(&c->tables[i].ct);
    free(c->tables);
    free(c->held);
    free(c->newv);
    free(c->oldv);
    relmap_destroy(&c->rels);
    apply_destroy(&c->ap);
    applyio_free(&c->io);
    buf_free(&c->defs_reason);
    pgoutput_decoder_destroy(&c->dec);
    ch_client_destroy(&c->ch);
}

/* The definitions in force where the stream starts (the slot's confirmed position): after a
 * crash of the source that can be before schema changes already recorded, whose definitions
 * then make way for the ones before them (the stream brings the changes again). */
static errclass_t
start_definitions(cdc_t *c, char *err, size_t errlen)
{
    bool any = false;
    for (size_t i = 0; i < c->ntables; i++)
        any = any || c->defs[i]->previous;
    if (!any)
        return ERRCLASS_NONE;
    errclass_t cls = ensure_sql(c, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    slotinfo_t si;
    char e[1024];
    cls = slotinfo_query(c->sql, c->spec->slot, &si, e, sizeof(e));
    uint64_t start = 0;
    if (cls != ERRCLASS_NONE) {
        snprintf(err, errlen, "%s", e);
        return cls;
    }
    if (!si.confirmed[0] || !lsn_parse(si.confirmed, &start))
        return ERRCLASS_NONE; /* no position to compare */
    if (si.restart[0])
        lsn_parse(si.restart, &c->restart);
    for (size_t i = 0; i < c->ntables; i++) {
        Pgferry__State__TableDef *d = c->defs[i];
        uint64_t at = 0;
        while (d->previous && d->defs_lsn[0] && lsn_parse(d->defs_lsn, &at) && at > start) {
            Pgferry__State__TableDef *prev = d->previous;
            d->previous = NULL;
            log_info("table %s.%s: the stream starts at %s, before the schema change committed "
                     "at %s: its definition from before that (the stream brings the change "
                     "again)",
                     d->schema, d->name, si.confirmed, d->defs_lsn);
            /* the name is the table's now either way */
            free(prev->schema);
            free(prev->name);
            prev->schema = d->schema;
            prev->name = d->name;
            d->schema = d->name = NULL;
            setup_free_def(d);
            d = prev;
        }
        c->defs[i] = d;
    }
    return ERRCLASS_NONE;
}

errclass_t
cdc_run(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef **tables, size_t n_tables,
        const char *skip_before_lsn, const char *counted_lsn, char **table_counted,
        size_t n_table_counted, worker_t *w, char *err, size_t errlen)
{
    cdc_t c;
    memset(&c, 0, sizeof(c));
    c.spec = spec;
    c.w = w;
    c.defs = tables;
    c.ntables = n_tables;
    c.max_rows = spec->batch_max_rows ? spec->batch_max_rows : BATCH_DEFAULT_MAX_ROWS;
    c.max_bytes = spec->batch_max_bytes ? (size_t)spec->batch_max_bytes : BATCH_DEFAULT_MAX_BYTES;
    c.max_wait_ms = spec->batch_max_wait_ms ? spec->batch_max_wait_ms : BATCH_DEFAULT_MAX_WAIT_MS;
    size_t chunk = c.max_bytes < CHUNK_MIN_BYTES   ? CHUNK_MIN_BYTES
                   : c.max_bytes > CHUNK_MAX_BYTES ? CHUNK_MAX_BYTES
                                                   : c.max_bytes;
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (skip_before_lsn && *skip_before_lsn && !lsn_parse(skip_before_lsn, &c.skip_before)) {
        snprintf(err, errlen, "bad snapshot position %s", skip_before_lsn);
        return ERRCLASS_FATAL;
    }
    if (counted_lsn && *counted_lsn && !lsn_parse(counted_lsn, &c.counted)) {
        snprintf(err, errlen, "bad stored position %s", counted_lsn);
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
    worker_cluster(spec, &c.cl);
    {
        /* CDC's inserts are what is acknowledged to the source: the pipe's insert_quorum */
        char settings[200];
        worker_dest_settings(spec, true, settings, sizeof(settings));
        if (!ch_client_set_settings(c.ch, settings)) {
            ch_client_destroy(&c.ch);
            snprintf(err, errlen, "out of memory");
            return ERRCLASS_TRANSIENT;
        }
    }
    /* the stream writes into the pipe's own tables only (a pipe set up before the registry
     * records its claims here) */
    errclass_t ocls = owners_claim_defs(c.ch, &c.cl, spec->dest_database, tables, n_tables,
                                        OWNERS_STREAM, NULL, err, errlen);
    if (ocls != ERRCLASS_NONE) {
        ch_client_destroy(&c.ch);
        return ocls;
    }
    c.io.ch = c.ch;
    c.io.cl = &c.cl;
    c.io.db = spec->dest_database;
    c.io.pg = &c.sql;
    c.io.ensure_pg = io_ensure;
    c.io.ensure_ud = &c;
    c.dec = pgoutput_decoder_new();
    c.rels = relmap_new();
    c.ap = apply_new(&applyio_ops, &c.io, chunk);
    c.tables = calloc(n_tables, sizeof(*c.tables));
    c.held = calloc(n_tables ? n_tables : 1, sizeof(*c.held));
    if (!c.dec || !c.rels || !c.ap || !c.tables || !c.held) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((cls = start_definitions(&c, err, errlen)) != ERRCLASS_NONE)
        goto out;
    for (size_t i = 0; i < n_tables; i++) {
        c.tables[i].index = i;
        cls = table_prepare(&c, &c.tables[i], err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
        if (i < n_table_counted && table_counted[i][0] &&
            !lsn_parse(table_counted[i], &c.tables[i].counted_before)) {
            snprintf(err, errlen, "bad stored position %s of table %s", table_counted[i],
                     tables[i]->target);
            cls = ERRCLASS_FATAL;
            goto out;
        }
        /* a worker that died inside a TRUNCATE may have left the table's merges stopped */
        cls =
            applyio_start_merges(c.ch, &c.cl, spec->dest_database, tables[i]->target, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
        c.tables[i].ap = apply_add_table(c.ap, &c.tables[i].ct);
        if (c.tables[i].ap < 0) {
            snprintf(err, errlen, "out of memory");
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
    }
    cls = start_replication(&c, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    c.next_status = time_mono_ms() + STATUS_INTERVAL_MS;
    c.next_report = time_mono_ms() + REPORT_INTERVAL_MS;
    {
        /* streaming from the slot with ClickHouse reachable: healthy (ends Degraded); the
         * slot's confirmed position is where this run starts */
        slotinfo_t si;
        char e[1024];
        if ((cls = ensure_sql(&c, err, errlen)) != ERRCLASS_NONE)
            goto out;
        cls = slotinfo_query(c.sql, spec->slot, &si, e, sizeof(e));
        if (cls != ERRCLASS_NONE) {
            snprintf(err, errlen, "%s", e);
            goto out;
        }
        if (si.confirmed[0])
            lsn_parse(si.confirmed, &c.flushed);
        if (si.restart[0])
            lsn_parse(si.restart, &c.restart);
        c.received = c.flushed;
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
        if (n > REPL_BUFFER_RESET_BYTES)
            c.reopen = true;
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
            if ((now >= c.next_status || status_due(&c)) && (cls = send_status(&c, err, errlen)))
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
        if ((cls = pace(&c, true, err, errlen)) != ERRCLASS_NONE)
            goto out;
        if (c.reopen && !c.in_txn && apply_pending_rows(c.ap) == 0 &&
            confirm_position(&c) >= c.flushed) {
            /* everything received is in ClickHouse and stored with its counters: the slot is
             * told so, and resends nothing we need again (reopened earlier, it would send the
             * large message again from the position pgferryd had not stored yet) */
            if (c.confirmed < c.flushed && (cls = send_status(&c, err, errlen)) != ERRCLASS_NONE)
                goto out;
            PQfinish(c.repl);
            c.repl = NULL;
            c.reopen = false;
            log_info("replication connection opened again to release the buffer of a large "
                     "message");
            if ((cls = start_replication(&c, err, errlen)) != ERRCLASS_NONE)
                goto out;
            continue;
        }
        if ((now >= c.next_status || status_due(&c)) && (cls = send_status(&c, err, errlen)))
            goto out;
        report_applied(&c, false);
        if ((cls = maybe_slotinfo(&c, err, errlen)) != ERRCLASS_NONE)
            goto out;
        int64_t wait = 100, due = pace_wait(&c);
        if (due >= 0 && due < wait)
            wait = due;
        struct pollfd pfd = {PQsocket(c.repl), POLLIN, 0};
        poll(&pfd, 1, wait > 0 ? (int)wait : 0);
        if (!PQconsumeInput(c.repl)) {
            snprintf(err, errlen, "lost the replication connection: %s", PQerrorMessage(c.repl));
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
    }
    /* stopped: what ClickHouse takes now is acknowledged up to the last whole transaction; a
     * transaction stopped in the middle comes again from its start, its rows with the same
     * versions (the later insert of equal versions wins, and it is the same row) */
    cls = flush_and_ack(&c, err, errlen);
    if (cls == ERRCLASS_NONE) {
        report_applied(&c, true);
        /* the slot moves to the last batch once the supervisor stored its counts (it does not
         * answer when it is gone: the next run streams that batch again and counts it) */
        if (worker_await_stored(w, c.flushed, STOP_STORED_WAIT_MS) && status_due(&c))
            cls = send_status(&c, err, errlen);
        char lsn[32];
        lsn_format(c.flushed, lsn, sizeof(lsn));
        const apply_stats_t *st = apply_stats(c.ap);
        log_info("stopped at %s after %" PRIu64 " change(s) in %" PRIu64 " batch(es): %" PRIu64
                 " row(s) in %" PRIu64 " insert(s), %" PRIu64
                 " collapsed, unchanged TOAST values: %" PRIu64 " from the batch, %" PRIu64
                 " by %" PRIu64 " lookup(s), %" PRIu64
                 " from the source; %.1f s in inserts, %.1f s "
                 "in lookups",
                 lsn, c.total_changes, c.batches, st->rows, st->inserts, st->collapsed,
                 st->from_batch, st->looked_up, st->lookups, st->from_source,
                 (double)st->insert_ms / 1000.0, (double)st->lookup_ms / 1000.0);
    }
out:
    if (cls != ERRCLASS_NONE && c.flushed)
        report_applied(&c, true);
    cdc_free(&c);
    return cls;
}
