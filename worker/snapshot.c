/* snapshot: exported snapshot, binary COPY -> Native blocks -> streaming insert. */
#include "snapshot.h"
#include "owners.h"
#include "slotwait.h"
#include "buf.h"
#include "chclient.h"
#include "chsql.h"
#include "applyio.h"
#include "chtable.h"
#include "meta.h"
#include "native.h"
#include "log.h"
#include "pgconn.h"
#include "setup.h"
#include "typemap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_EVERY_ROWS 100000
/* One INSERT carries at most about this much: ClickHouse builds blocks of up to
 * max_insert_block_size rows (a million), which for wide rows (8 kB each) is more memory than a
 * server allows a query; a range goes in several inserts instead. */
#define INSERT_MAX_BYTES (128u << 20)

/* A Native block goes out when it holds this many rows or bytes: big enough that ClickHouse's
 * per-block work is nothing, small enough to keep a worker's memory flat. */
#define BLOCK_ROWS 65536
#define BLOCK_BYTES (8u << 20)

typedef struct {
    PGconn *pg;
    worker_t *w;
    const Pgferry__State__TableDef *def;
    const char *label; /* what progress reports call this load */
    const chtable_t *ct;
    uint32_t partition;   /* the relation read (a leaf partition's oid) */
    native_block_t block; /* the definition's columns, then version, deleted, partition */
    typemap_col_t *inner; /* per column: its encoder without Nullable */
    bool header_seen;     /* the binary COPY's header (it precedes the first row) */
    bool hold;            /* the last byte of the block sent before is kept back in held */
    unsigned char held;
    size_t in_insert; /* bytes given to the current INSERT */
    bool copy_done;
    uint64_t rows, bytes;
    errclass_t cls;
    char err[1024];
} stream_state_t;

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Adds one binary COPY row (one CopyData message, the header before the first) to the block.
 * False with e set; *end on the trailer. */
static bool
add_row(stream_state_t *st, const unsigned char *p, size_t n, bool *end, char *e, size_t elen,
        char *where, size_t wlen)
{
    static const unsigned char sig[11] = "PGCOPY\n\377\r\n";
    size_t pos = 0;
    if (!st->header_seen) {
        if (n < 19 || memcmp(p, sig, 11) != 0) {
            snprintf(e, elen, "not a binary COPY header");
            return false;
        }
        pos = 19 + (size_t)be32(p + 15); /* signature, flags, extension length, extension */
        if (pos > n) {
            snprintf(e, elen, "not a binary COPY header");
            return false;
        }
        st->header_seen = true;
    }
    if (n - pos < 2) {
        snprintf(e, elen, "truncated binary COPY row");
        return false;
    }
    int nf = (int16_t)((unsigned)p[pos] << 8 | p[pos + 1]);
    pos += 2;
    if (nf == -1) {
        *end = true;
        return true;
    }
    size_t ncols = st->def->n_columns;
    if ((size_t)nf != ncols) {
        snprintf(e, elen, "a row of %d columns, expected %zu", nf, ncols);
        return false;
    }
    for (size_t i = 0; i < ncols; i++) {
        native_col_t *col = &st->block.cols[i];
        if (n - pos < 4) {
            snprintf(e, elen, "truncated binary COPY row");
            return false;
        }
        uint32_t len = be32(p + pos);
        pos += 4;
        bool null = len == 0xffffffffu;
        if (!null && len > n - pos) {
            snprintf(e, elen, "truncated binary COPY row");
            return false;
        }
        bool ok = true;
        if (null && !st->ct->tm[i].nullable) {
            /* the definition was read before the source dropped NOT NULL (a load retried
             * later): a new definition comes with a resync */
            snprintf(e, elen,
                     "NULL in a NOT NULL column (NOT NULL was dropped at the source after the "
                     "pipe read the table's definition: resync the pipe)");
            ok = false;
        } else if (null) {
            buf_byte(&col->nulls, 1);
            typemap_encode_zero(&st->inner[i], &col->data);
        } else {
            if (col->nullable)
                buf_byte(&col->nulls, 0);
            ok = typemap_encode_binary(&st->inner[i], p + pos, len, &col->data, e, elen);
            pos += len;
        }
        if (!ok) {
            snprintf(where, wlen, "column %.64s: ", st->def->columns[i]->name);
            return false;
        }
    }
    /* version 0: snapshot rows lose to any change */
    buf_le(&st->block.cols[ncols].data, 0, 8);
    buf_byte(&st->block.cols[ncols + 1].data, 0);
    if (st->ct->partition)
        buf_le(&st->block.cols[ncols + 2].data, st->partition, 4);
    st->block.rows++;
    return true;
}

/* Reads rows into the block until it is full or COPY ends, then seals it (when it has rows). */
static bool
fill(stream_state_t *st)
{
    size_t bytes = 0;
    while (!st->copy_done && st->block.rows < BLOCK_ROWS && bytes < BLOCK_BYTES) {
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
        bool end = false;
        bool ok = add_row(st, (const unsigned char *)row, (size_t)n, &end, e, sizeof(e), where,
                          sizeof(where));
        PQfreemem(row);
        if (!ok) {
            st->cls = ERRCLASS_FATAL;
            snprintf(st->err, sizeof(st->err), "table %s.%s, row %llu: %s%s", st->def->schema,
                     st->def->name, (unsigned long long)st->rows + 1, where, e);
            return false;
        }
        if (end)
            continue;
        bytes += (size_t)n;
        st->rows++;
        if (st->rows % PROGRESS_EVERY_ROWS == 0 && st->w) {
            char detail[300];
            snprintf(detail, sizeof(detail), "%s: %llu rows", st->label,
                     (unsigned long long)st->rows);
            worker_send_progress(st->w, st->rows, st->bytes, NULL, detail);
            if (worker_should_stop(st->w)) {
                st->cls = ERRCLASS_TRANSIENT;
                snprintf(st->err, sizeof(st->err), "stopped");
                return false;
            }
        }
    }
    if (st->block.rows > 0 && !native_block_seal(&st->block)) {
        st->cls = ERRCLASS_TRANSIENT;
        snprintf(st->err, sizeof(st->err), "out of memory");
        return false;
    }
    return true;
}

/* curl's read callback: the sealed block's bytes, straight from its column buffers. The last
 * byte of each block is kept back until the next block is complete (or COPY ended): ClickHouse
 * takes a body that ends at a block boundary as complete, even when the connection was cut, so
 * a worker killed while it waits for PostgreSQL must leave a block unfinished for ClickHouse to
 * refuse the INSERT rather than keep part of a range. */
static long
produce(void *ud, char *out, size_t cap)
{
    stream_state_t *st = ud;
    for (;;) {
        if (st->hold) {
            if (!st->block.sealed && !st->copy_done && st->in_insert < INSERT_MAX_BYTES &&
                !fill(st))
                return -1;
            out[0] = (char)st->held;
            st->hold = false;
            st->bytes++;
            st->in_insert++;
            return 1;
        }
        if (!st->block.sealed) {
            /* at a block boundary past the limit: this INSERT ends, the next one goes on */
            if (st->in_insert >= INSERT_MAX_BYTES || st->copy_done)
                return 0;
            if (!fill(st))
                return -1;
            if (!st->block.sealed)
                return 0; /* the end (no rows left) */
        }
        size_t left = native_block_left(&st->block);
        size_t n = native_block_read(&st->block, (unsigned char *)out, left > cap ? cap : left - 1);
        if (left <= cap) {
            native_block_read(&st->block, &st->held, 1);
            st->hold = true;
        }
        st->bytes += n;
        st->in_insert += n;
        if (n > 0)
            return (long)n;
    }
}

/* Imports the exported snapshot into a new REPEATABLE READ, READ ONLY transaction on pg. */
static errclass_t
import_snapshot(PGconn *pg, const char *name, char *err, size_t errlen)
{
    errclass_t cls;
    PGresult *r = pgconn_query(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL,
                               &cls, err, errlen);
    if (!r)
        return cls;
    PQclear(r);
    char *lit = PQescapeLiteral(pg, name, strlen(name));
    char set[300];
    snprintf(set, sizeof(set), "SET TRANSACTION SNAPSHOT %s", lit ? lit : "''");
    PQfreemem(lit);
    r = PQexec(pg, set);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        /* the coordinator is gone (its snapshot with it): retrying is right, it comes back */
        snprintf(err, errlen, "cannot import snapshot %s: %s", name, PQresultErrorMessage(r));
        PQclear(r);
        return ERRCLASS_TRANSIENT;
    }
    PQclear(r);
    return ERRCLASS_NONE;
}

static errclass_t
get_relkind(PGconn *pg, const Pgferry__State__TableDef *def, char *kind, char *err, size_t errlen)
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
    *kind = PQgetvalue(r, 0, 0)[0];
    PQclear(r);
    return ERRCLASS_NONE;
}

/* Appends the COPY's select list. In binary COPY each value comes in its type's send format:
 * the columns kept as String are asked for as their type's text output (the bytes the CDC
 * stream carries), through the output function itself, since a cast to text can differ from it
 * (inet, char(n)); text, varchar, char(n) and json send their text as it is. The other columns
 * are cast to the type their encoder reads (a no-op unless the column's type changed). */
/* A String column whose binary form is not already its text output: text, varchar, char(n)
 * and json send their text as it is; anything else goes through its output function. */
static bool
needs_output_fn(const Pgferry__State__ColumnDef *c, const typemap_col_t *tm)
{
    uint32_t b = c->base_type_oid;
    bool as_is = c->typcategory[0] != 'A' && (b == 25 || b == 1043 || b == 1042 || b == 114);
    return tm->kind == TM_STRING && !as_is;
}

static errclass_t
select_list(PGconn *pg, const Pgferry__State__TableDef *def, const chtable_t *ct, uint32_t relid,
            buf_t *copy, char *err, size_t errlen)
{
    PGresult *outfns = NULL;
    errclass_t cls = ERRCLASS_NONE;
    for (size_t i = 0; i < def->n_columns; i++) {
        if (needs_output_fn(def->columns[i], &ct->tm[i]) && !outfns) {
            char r[16];
            snprintf(r, sizeof(r), "%u", relid);
            const char *pr[] = {r};
            outfns =
                pgconn_query(pg,
                             "SELECT a.attname, t.typoutput::regproc::text FROM pg_attribute a "
                             "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1::oid "
                             "AND a.attnum > 0 AND NOT a.attisdropped",
                             1, pr, &cls, err, errlen);
            if (!outfns)
                return cls;
        }
    }
    static const char *casts[] = {
        [TM_BOOL] = "bool",      [TM_INT16] = "int2",      [TM_INT32] = "int4",
        [TM_INT64] = "int8",     [TM_UINT32] = "oid",      [TM_FLOAT32] = "float4",
        [TM_FLOAT64] = "float8", [TM_DECIMAL] = "numeric", [TM_UUID] = "uuid",
        [TM_BYTEA] = "bytea",
    };
    for (size_t i = 0; i < def->n_columns && cls == ERRCLASS_NONE; i++) {
        const Pgferry__State__ColumnDef *c = def->columns[i];
        char *pi = PQescapeIdentifier(pg, c->name, strlen(c->name));
        if (!pi) {
            snprintf(err, errlen, "out of memory");
            cls = ERRCLASS_TRANSIENT;
            break;
        }
        if (i)
            buf_append(copy, ", ", 2);
        const char *fn = NULL;
        for (int r = 0; outfns && needs_output_fn(c, &ct->tm[i]) && r < PQntuples(outfns); r++) {
            if (strcmp(PQgetvalue(outfns, r, 0), c->name) == 0)
                fn = PQgetvalue(outfns, r, 1);
        }
        if (needs_output_fn(c, &ct->tm[i])) {
            if (!fn) {
                snprintf(err, errlen, "column %s of %s.%s is gone from the source table", c->name,
                         def->schema, def->name);
                cls = ERRCLASS_TRANSIENT;
            }
            buf_append(copy, fn ? fn : "", fn ? strlen(fn) : 0);
            buf_append(copy, "(", 1);
            buf_append(copy, pi, strlen(pi));
            buf_append(copy, ")::pg_catalog.text", 18);
        } else {
            buf_append(copy, pi, strlen(pi));
            if (ct->tm[i].kind != TM_STRING) {
                buf_append(copy, "::pg_catalog.", 13);
                buf_append(copy, casts[ct->tm[i].kind], strlen(casts[ct->tm[i].kind]));
            }
        }
        PQfreemem(pi);
    }
    PQclear(outfns);
    return cls;
}

/* Streams `COPY (SELECT <columns> FROM ONLY relation [WHERE ...]) TO STDOUT` into def's
 * destination table. */
static errclass_t
stream_range(PGconn *pg, ch_client_t *ch, const char *db, const Pgferry__State__TableDef *def,
             bool resync, const char *relation, uint32_t relid, const char *where,
             const char *label, worker_t *w, snapshot_result_t *out, char *err, size_t errlen)
{
    errclass_t cls = ERRCLASS_TRANSIENT;
    stream_state_t st;
    chtable_t ct;
    memset(&st, 0, sizeof(st));
    buf_t copy;
    buf_init(&copy);
    PGresult *r;
    cls = chtable_init(&ct, db, def, resync ? "_resync" : "", err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    cls = ERRCLASS_TRANSIENT;
    st.pg = pg;
    st.w = w;
    st.def = def;
    st.label = label;
    st.ct = &ct;
    st.partition = relid;
    st.inner = calloc(def->n_columns ? def->n_columns : 1, sizeof(*st.inner));
    if (!st.inner || !native_block_init(&st.block, def->n_columns + 2 + (ct.partition ? 1 : 0))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < def->n_columns; i++) {
        st.inner[i] = ct.tm[i];
        st.inner[i].nullable = false;
        native_block_column(&st.block, i, chtable_col_name(def->columns[i]), ct.tm[i].ch_type,
                            ct.tm[i].nullable);
    }
    native_block_column(&st.block, def->n_columns, META_VERSION, "UInt64", false);
    native_block_column(&st.block, def->n_columns + 1, META_DELETED, "UInt8", false);
    if (ct.partition)
        native_block_column(&st.block, def->n_columns + 2, META_PARTITION, "UInt32", false);
    buf_append(&copy, "COPY (SELECT ", 13);
    cls = select_list(pg, def, &ct, relid, &copy, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    cls = ERRCLASS_TRANSIENT;
    /* ONLY: a leaf partition or plain table, never its inheritance children */
    buf_append(&copy, " FROM ONLY ", 11);
    buf_append(&copy, relation, strlen(relation));
    /* the rows the publication publishes: its row filter applies from the snapshot on */
    bool filtered = def->row_filter && def->row_filter[0];
    if ((where && *where) || filtered) {
        buf_append(&copy, " WHERE ", 7);
        if (where && *where) {
            buf_append(&copy, "(", 1);
            buf_append(&copy, where, strlen(where));
            buf_append(&copy, ")", 1);
        }
        if (where && *where && filtered)
            buf_append(&copy, " AND ", 5);
        if (filtered) {
            buf_append(&copy, "(", 1);
            buf_append(&copy, def->row_filter, strlen(def->row_filter));
            buf_append(&copy, ")", 1);
        }
    }
    buf_append(&copy, ") TO STDOUT (FORMAT binary)", 28); /* includes the NUL */
    if (copy.oom) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    r = PQexec(pg, (char *)copy.data);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        cls = pgconn_classify(r, pg);
        char m[600];
        snprintf(err, errlen, "COPY from %s: %s", label, pgconn_message(r, pg, m, sizeof(m)));
        PQclear(r);
        goto out;
    }
    PQclear(r);
    st.cls = ERRCLASS_NONE;
    do {
        st.in_insert = 0;
        cls = ch_client_insert_stream(ch, ct.insert_native_sql, produce, &st, err, errlen);
        if (st.cls != ERRCLASS_NONE) {
            cls = st.cls;
            snprintf(err, errlen, "%s", st.err);
            goto out;
        }
        if (cls != ERRCLASS_NONE) {
            chtable_memory_hint(&ct, err, errlen);
            goto out;
        }
    } while (!st.copy_done || st.block.sealed || st.hold);
    r = PQgetResult(pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char m[600];
        pgconn_message(r, pg, m, sizeof(m));
        if (pgconn_too_large(r)) {
            snprintf(err, errlen,
                     "table %s.%s (%s): a row is larger than 1 GB in COPY's binary form, which "
                     "PostgreSQL cannot produce (%s); "
                     "reduce the value at the source, then resync the pipe",
                     def->schema, def->name, label, m);
            cls = ERRCLASS_FATAL;
        } else {
            cls = pgconn_classify(r, pg);
            snprintf(err, errlen, "COPY from %s ended with: %s", label, m);
        }
        PQclear(r);
        goto out;
    }
    PQclear(r);
    while ((r = PQgetResult(pg)) != NULL)
        PQclear(r);
    out->rows += st.rows;
    out->bytes += st.bytes;
    cls = ERRCLASS_NONE;
out:
    chtable_free(&ct);
    native_block_free(&st.block);
    free(st.inner);
    buf_free(&copy);
    return cls;
}

/* Appends the ranges of one relation (its current size in blocks split into pieces of about
 * rows_per_partition rows; the last piece, up to a quarter longer, open-ended so rows in blocks
 * added later are read) */
static errclass_t
plan_relation(PGconn *pg, uint32_t table_index, const char *oid, uint64_t rows_per_partition,
              Pgferry__Worker__SnapshotPlan *plan, size_t *cap, char *err, size_t errlen)
{
    errclass_t cls;
    const char *p[] = {oid};
    PGresult *r = pgconn_query(
        pg,
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
        " pg_relation_size(c.oid) / current_setting('block_size')::bigint, c.relpages, "
        " c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = $1::oid",
        1, p, &cls, err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "relation %s disappeared from the source", oid);
        return ERRCLASS_FATAL;
    }
    uint64_t blocks = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    double relpages = atof(PQgetvalue(r, 0, 2)), reltuples = atof(PQgetvalue(r, 0, 3));
    double per_block = (relpages > 0 && reltuples > 0) ? reltuples / relpages : 100.0;
    uint64_t step = (uint64_t)((double)rows_per_partition / (per_block > 1 ? per_block : 1));
    if (step < 1)
        step = 1;
    char *relation = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!relation) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    for (uint64_t start = 0;; start += step) {
        if (plan->n_ranges == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            Pgferry__Worker__Range **a = realloc(plan->ranges, nc * sizeof(*a));
            if (!a) {
                free(relation);
                snprintf(err, errlen, "out of memory");
                return ERRCLASS_TRANSIENT;
            }
            plan->ranges = a;
            *cap = nc;
        }
        Pgferry__Worker__Range *rg = calloc(1, sizeof(*rg));
        if (!rg) {
            free(relation);
            snprintf(err, errlen, "out of memory");
            return ERRCLASS_TRANSIENT;
        }
        pgferry__worker__range__init(rg);
        rg->table_index = table_index;
        rg->relation = strdup(relation);
        rg->relid = (uint32_t)strtoul(oid, NULL, 10);
        rg->start_block = start;
        /* a remainder under a quarter piece joins the last piece instead of costing a worker
         * start of its own */
        rg->end_block = start + step + step / 4 >= blocks ? 0 : start + step;
        plan->ranges[plan->n_ranges++] = rg;
        if (rg->end_block == 0)
            break;
    }
    free(relation);
    return ERRCLASS_NONE;
}

static void
free_plan_ranges(Pgferry__Worker__SnapshotPlan *plan)
{
    for (size_t i = 0; i < plan->n_ranges; i++) {
        free(plan->ranges[i]->relation);
        free(plan->ranges[i]);
    }
    free(plan->ranges);
    plan->ranges = NULL;
    plan->n_ranges = 0;
}

/* A load that starts over drops the slot an earlier attempt created (nothing has been read
 * from it: CDC starts only after the load). Waits for a dying walsender to release it. */
static errclass_t
drop_own_slot(const Pgferry__State__PipeSpec *spec, char *err, size_t errlen)
{
    errclass_t cls;
    PGconn *pg = pgconn_connect(spec->source, "pgferry-snapshot", false, &cls, err, errlen);
    if (!pg)
        return cls;
    const char *p[] = {spec->slot};
    for (int attempt = 0;; attempt++) {
        PGresult *r =
            pgconn_query(pg, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", 1, p,
                         &cls, err, errlen);
        if (!r)
            break;
        bool exists = PQntuples(r) == 1, active = exists && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (!exists) {
            cls = ERRCLASS_NONE;
            break;
        }
        if (!active) {
            r = pgconn_query(pg, "SELECT pg_drop_replication_slot($1)", 1, p, &cls, err, errlen);
            if (r) {
                PQclear(r);
                log_info("dropped slot %s: this load starts a new one", spec->slot);
                cls = ERRCLASS_NONE;
                break;
            }
            if (attempt < 50)
                continue; /* it became active between the two queries */
            break;
        }
        if (attempt >= 100) {
            snprintf(err, errlen, "replication slot %s is in use by another process", spec->slot);
            cls = ERRCLASS_TRANSIENT;
            break;
        }
        usleep(100 * 1000);
    }
    PQfinish(pg);
    return cls;
}

/* Whether an ACCESS EXCLUSIVE lock request waits on one of the relations being loaded; *who
 * names one ("" when none). */
static errclass_t
ddl_waiting(PGconn *pg, const Pgferry__Worker__SnapshotPlan *plan,
            Pgferry__State__TableDef *const *tables, size_t n_tables, char *who, size_t wholen,
            char *err, size_t errlen)
{
    who[0] = '\0';
    buf_t arr;
    buf_init(&arr);
    buf_byte(&arr, '{');
    size_t n = 0;
    for (size_t i = 0; i < n_tables; i++) {
        if (tables[i]->snapshot_lsn[0])
            continue;
        char o[16];
        int l = snprintf(o, sizeof(o), "%s%u", n++ ? "," : "", tables[i]->relid);
        buf_append(&arr, o, (size_t)l);
    }
    for (size_t i = 0; i < plan->n_ranges; i++) {
        char o[16];
        int l = snprintf(o, sizeof(o), "%s%u", n++ ? "," : "", plan->ranges[i]->relid);
        buf_append(&arr, o, (size_t)l);
    }
    buf_append(&arr, "}", 2);
    const char *p[] = {(const char *)arr.data};
    errclass_t cls = ERRCLASS_TRANSIENT;
    PGresult *r = arr.oom ? NULL
                          : pgconn_query(pg,
                                         "SELECT relation::regclass::text FROM pg_locks WHERE NOT "
                                         "granted AND mode = 'AccessExclusiveLock' AND relation "
                                         "= ANY($1::oid[]) LIMIT 1",
                                         1, p, &cls, err, errlen);
    buf_free(&arr);
    if (!r)
        return cls;
    if (PQntuples(r) > 0)
        snprintf(who, wholen, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return ERRCLASS_NONE;
}

/* Holds ACCESS SHARE locks on the tables to load, on a connection of its own, from before the
 * snapshot is exported until the load ends (as pg_dump does): no DDL can change the columns
 * between the snapshot and a range's COPY (whose names are resolved in the current catalog), or
 * rewrite a table (which an older snapshot would then see empty). A DDL statement that comes
 * during the load is not kept waiting: the coordinator sees it queued and ends, the load
 * starts over after the DDL. */
static errclass_t
lock_tables(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *tables,
            size_t n_tables, PGconn **out, char *err, size_t errlen)
{
    errclass_t cls;
    *out = NULL;
    PGconn *pg = pgconn_connect(spec->source, "pgferry-snapshot", false, &cls, err, errlen);
    if (!pg)
        return cls;
    /* the tables by oid, under their names now (a table renamed since Setup is still it) */
    uint32_t *relids = calloc(n_tables + 1, sizeof(*relids));
    char **schemas = calloc(n_tables + 1, sizeof(*schemas));
    char **names = calloc(n_tables + 1, sizeof(*names));
    if (!relids || !schemas || !names) {
        free(relids);
        free(schemas);
        free(names);
        PQfinish(pg);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    for (size_t i = 0; i < n_tables; i++)
        relids[i] = tables[i]->snapshot_lsn[0] ? 0 : tables[i]->relid;
    cls = setup_names_by_oid(pg, relids, n_tables, schemas, names, err, errlen);
    buf_t b;
    buf_init(&b);
    buf_append(&b, "BEGIN; SET LOCAL lock_timeout = '60s'; LOCK TABLE ", 50);
    size_t n = 0;
    for (size_t i = 0; cls == ERRCLASS_NONE && i < n_tables; i++) {
        if (tables[i]->snapshot_lsn[0])
            continue;
        if (!schemas[i]) {
            snprintf(err, errlen, "table %s.%s (oid %u) was dropped at the source",
                     tables[i]->schema, tables[i]->name, tables[i]->relid);
            cls = ERRCLASS_FATAL;
            break;
        }
        char *qs = PQescapeIdentifier(pg, schemas[i], strlen(schemas[i]));
        char *qn = PQescapeIdentifier(pg, names[i], strlen(names[i]));
        if (qs && qn) {
            if (n++)
                buf_append(&b, ", ", 2);
            buf_append(&b, qs, strlen(qs));
            buf_byte(&b, '.');
            buf_append(&b, qn, strlen(qn));
        } else {
            b.oom = true;
        }
        PQfreemem(qs);
        PQfreemem(qn);
    }
    buf_append(&b, " IN ACCESS SHARE MODE", 22);
    for (size_t i = 0; i < n_tables; i++) {
        free(schemas[i]);
        free(names[i]);
    }
    free(relids);
    free(schemas);
    free(names);
    if (cls != ERRCLASS_NONE) {
        buf_free(&b);
        PQfinish(pg);
        return cls;
    }
    if (b.oom) {
        buf_free(&b);
        PQfinish(pg);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    if (n == 0) {
        buf_free(&b);
        *out = pg;
        return ERRCLASS_NONE;
    }
    PGresult *r = PQexec(pg, (char *)b.data);
    buf_free(&b);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char m[600];
        pgconn_message(r, pg, m, sizeof(m));
        cls = pgconn_classify(r, pg);
        if (strstr(m, "lock timeout"))
            cls = ERRCLASS_TRANSIENT; /* a long transaction holds an exclusive lock: later */
        snprintf(err, errlen, "cannot lock the tables to load: %s", m);
        PQclear(r);
        PQfinish(pg);
        return cls;
    }
    PQclear(r);
    *out = pg;
    return ERRCLASS_NONE;
}

/* Whether two definitions describe the same columns (names, types, key). */
static bool
same_columns(const Pgferry__State__TableDef *a, const Pgferry__State__TableDef *b)
{
    if (a->n_columns != b->n_columns || a->partition_column != b->partition_column)
        return false;
    for (size_t i = 0; i < a->n_columns; i++) {
        const Pgferry__State__ColumnDef *x = a->columns[i], *y = b->columns[i];
        if (strcmp(chtable_col_name(x), chtable_col_name(y)) != 0 ||
            strcmp(x->name, y->name) != 0 || strcmp(x->ch_type, y->ch_type) != 0 ||
            x->key_position != y->key_position ||
            (x->type_oid && y->type_oid && (x->type_oid != y->type_oid || x->typmod != y->typmod)))
            return false;
    }
    return true;
}

/* The loads of tables whose columns changed between Setup and this snapshot use the columns as
 * of the snapshot: the definition is read again on pg (in the snapshot's transaction), the
 * empty destination table made again, and the definitions reported. */
static errclass_t
refresh_definitions(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef **tables,
                    size_t n_tables, bool resync, PGconn *pg, ch_client_t *ch, worker_t *w,
                    char *err, size_t errlen)
{
    char reason[1000] = "";
    size_t rl = 0;
    for (size_t i = 0; i < n_tables; i++) {
        if (tables[i]->snapshot_lsn[0])
            continue; /* loaded before */
        Pgferry__State__TableDef *cur = NULL;
        errclass_t cls =
            setup_read_table(pg, spec, spec->tables[i], tables[i]->relid, 0,
                             spec->numeric_text ? TYPEMAP_NUMERIC_TEXT : 0u, &cur, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        if (same_columns(cur, tables[i])) {
            setup_free_def(cur);
            continue;
        }
        char dest[300];
        chcluster_t cl;
        worker_cluster(spec, &cl);
        snprintf(dest, sizeof(dest), "%s%s", cur->target, resync ? "_resync" : "");
        cls = setup_drop(ch, &cl, spec->dest_database, dest, true, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = setup_create_table(ch, &cl, spec->dest_database, cur, dest, err, errlen);
        if (cls == ERRCLASS_NONE && !resync) {
            char view[320];
            snprintf(view, sizeof(view), "%s_live", cur->target);
            cls = setup_drop(ch, &cl, spec->dest_database, view, false, err, errlen);
            char *vddl =
                cls == ERRCLASS_NONE ? setup_view_ddl(&cl, spec->dest_database, cur) : NULL;
            if (cls == ERRCLASS_NONE && vddl)
                cls = ch_client_query(ch, vddl, NULL, err, errlen);
            free(vddl);
        }
        if (cls != ERRCLASS_NONE) {
            setup_free_def(cur);
            return cls;
        }
        rl += (size_t)snprintf(reason + rl, rl < sizeof(reason) ? sizeof(reason) - rl : 0,
                               "%s%s.%s", rl ? ", " : "", cur->schema, cur->name);
        if (rl >= sizeof(reason))
            rl = sizeof(reason) - 1;
        setup_free_def(tables[i]);
        tables[i] = cur;
    }
    if (rl == 0)
        return ERRCLASS_NONE;
    char msg[1200];
    snprintf(msg, sizeof(msg),
             "the columns of %s changed between Setup and the load; loading them as of the "
             "snapshot",
             reason);
    log_info("%s", msg);
    if (!worker_send_definitions(w, tables, n_tables, msg)) {
        snprintf(err, errlen, "cannot send the new definitions to the supervisor");
        return ERRCLASS_TRANSIENT;
    }
    return ERRCLASS_NONE;
}

errclass_t
snapshot_coordinate(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef **tables,
                    size_t n_tables, bool keep_slot, bool resync, worker_t *w,
                    snapshot_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    errclass_t cls;
    PGconn *repl = NULL, *pg = NULL, *locks = NULL;
    PGresult *r = NULL;
    Pgferry__Worker__SnapshotPlan plan = PGFERRY__WORKER__SNAPSHOT_PLAN__INIT;
    size_t cap = 0;
    if (n_tables == 0) {
        snprintf(err, errlen, "no table definitions recorded; the pipe needs Setup again");
        return ERRCLASS_FATAL;
    }
    ch_client_t *ch = worker_dest_client(spec, err, errlen);
    if (!ch)
        return ERRCLASS_FATAL;
    /* the load drops, creates and truncates the pipe's tables: its own only */
    {
        chcluster_t ocl;
        worker_cluster(spec, &ocl);
        cls = owners_claim_defs(ch, &ocl, spec->dest_database, tables, n_tables,
                                resync ? OWNERS_RECORDED : OWNERS_STREAM, NULL, err, errlen);
        if (cls != ERRCLASS_NONE) {
            ch_client_destroy(&ch);
            return cls;
        }
    }
    cls = lock_tables(spec, tables, n_tables, &locks, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto done;
    repl = pgconn_connect(spec->source, "pgferry-snapshot", true, &cls, err, errlen);
    if (!repl)
        goto done;
    /* a snapshot+cdc pipe with its own slot creates it here, permanent, and CDC starts at its
     * consistent point. Otherwise a temporary slot: it exists only while this connection does,
     * so nothing is left behind whatever happens to this process (CDC from a user's slot skips
     * what committed before this snapshot). */
    bool permanent =
        spec->mode != PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY && spec->slot_owned && !keep_slot;
    if (permanent) {
        cls = drop_own_slot(spec, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto done;
    }
    char cmd[200];
    /* from PostgreSQL 17 on the pipe's slot is a failover slot: a standby that synchronizes
     * slots (sync_replication_slots) has it too, and the pipe goes on from a promoted standby */
    if (permanent && PQserverVersion(repl) >= 170000)
        snprintf(cmd, sizeof(cmd),
                 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput (SNAPSHOT 'export', FAILOVER)",
                 spec->slot); /* slot names are [a-z0-9_] (checked at create) */
    else if (permanent)
        snprintf(cmd, sizeof(cmd),
                 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput EXPORT_SNAPSHOT", spec->slot);
    else
        snprintf(cmd, sizeof(cmd),
                 "CREATE_REPLICATION_SLOT pgferry_snap_%d TEMPORARY LOGICAL pgoutput "
                 "EXPORT_SNAPSHOT",
                 (int)getpid());
    bool stopped = false;
    r = slotwait_exec(repl, cmd, 0, NULL, spec->source, w, &stopped);
    if (stopped) {
        snprintf(err, errlen, "stopped while creating the replication slot");
        cls = ERRCLASS_TRANSIENT;
        goto done;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) < 3) {
        cls = pgconn_classify(r, repl);
        snprintf(err, errlen, "cannot create the %s slot: %s", permanent ? "pipe's" : "snapshot",
                 PQerrorMessage(repl));
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
    cls = import_snapshot(pg, snapname, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = refresh_definitions(spec, tables, n_tables, resync, pg, ch, w, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto done;
    for (size_t i = 0; i < n_tables; i++) {
        if (tables[i]->snapshot_lsn[0])
            continue; /* loaded before: a pipe that got more tables loads only those */
        char kind = 0, oid[16];
        cls = get_relkind(pg, tables[i], &kind, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto done;
        snprintf(oid, sizeof(oid), "%u", tables[i]->relid);
        if (kind != 'p') {
            cls = plan_relation(pg, (uint32_t)i, oid, spec->rows_per_partition, &plan, &cap, err,
                                errlen);
            if (cls != ERRCLASS_NONE)
                goto done;
            continue;
        }
        const char *p[] = {oid};
        r = pgconn_query(pg,
                         "SELECT relid::oid FROM pg_partition_tree($1::regclass) "
                         "WHERE isleaf ORDER BY relid",
                         1, p, &cls, err, errlen);
        if (!r)
            goto done;
        for (int k = 0; k < PQntuples(r); k++) {
            cls = plan_relation(pg, (uint32_t)i, PQgetvalue(r, k, 0), spec->rows_per_partition,
                                &plan, &cap, err, errlen);
            if (cls != ERRCLASS_NONE)
                goto done;
        }
        PQclear(r);
        r = NULL;
    }
    r = pgconn_query(pg, "COMMIT", 0, NULL, &cls, err, errlen);
    if (!r)
        goto done;
    PQclear(r);
    r = NULL;
    PQfinish(pg);
    pg = NULL;

    /* a load always starts from empty tables, so a restarted load cannot double rows */
    for (size_t i = 0; i < n_tables; i++) {
        if (tables[i]->snapshot_lsn[0])
            continue;
        char dest[300];
        snprintf(dest, sizeof(dest), "%s%s", tables[i]->target, resync ? "_resync" : "");
        chcluster_t cl;
        worker_cluster(spec, &cl);
        cls = applyio_truncate(ch, &cl, spec->dest_database, dest, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto done;
    }
    plan.snapshot_name = snapname;
    plan.consistent_lsn = lsn;
    if (!worker_send_plan(w, &plan)) {
        snprintf(err, errlen, "cannot send the plan to the supervisor");
        cls = ERRCLASS_TRANSIENT;
        goto done;
    }
    log_info("snapshot %s: %zu range(s) over %zu table(s)", snapname, plan.n_ranges, n_tables);
    char detail[200];
    snprintf(detail, sizeof(detail), "holding snapshot %s for %zu range(s)", snapname,
             plan.n_ranges);
    worker_send_progress(w, 0, 0, NULL, detail);

    /* keep the snapshot alive (an idle replication connection) until told to stop; if the
     * server goes away the snapshot is gone, and a new coordinator starts over */
    while (!worker_wait_stop(w, 1000)) {
        if (locks) {
            /* DDL on a table of the load queues behind our lock, and a range's COPY would then
             * queue behind the DDL: the load gives way and starts over after it */
            char who[300];
            cls = ddl_waiting(locks, &plan, tables, n_tables, who, sizeof(who), err, errlen);
            if (cls != ERRCLASS_NONE)
                goto done;
            if (who[0]) {
                snprintf(err, errlen,
                         "a statement needing an exclusive lock on %s waits for the load; the "
                         "load stops for it and starts over afterwards",
                         who);
                cls = ERRCLASS_TRANSIENT;
                goto done;
            }
        }
        if (locks && (!PQconsumeInput(locks) || PQstatus(locks) != CONNECTION_OK)) {
            snprintf(err, errlen, "lost the connection holding the tables' locks: %s",
                     PQerrorMessage(locks));
            cls = ERRCLASS_TRANSIENT;
            goto done;
        }
        if (!PQconsumeInput(repl) || PQstatus(repl) != CONNECTION_OK) {
            snprintf(err, errlen, "lost the replication connection holding snapshot %s: %s",
                     snapname, PQerrorMessage(repl));
            cls = ERRCLASS_TRANSIENT;
            goto done;
        }
    }
    snprintf(out->detail, sizeof(out->detail), "released snapshot %s", snapname);
    cls = ERRCLASS_NONE;
done:
    if (r)
        PQclear(r);
    if (pg)
        PQfinish(pg);
    if (repl)
        PQfinish(repl); /* drops the temporary slot */
    if (locks)
        PQfinish(locks); /* the load is over: DDL may go on */
    free_plan_ranges(&plan);
    ch_client_destroy(&ch);
    return cls;
}

errclass_t
snapshot_load_range_in(snapshot_session_t *ss, const Pgferry__State__PipeSpec *spec,
                       Pgferry__State__TableDef *const *tables, size_t n_tables,
                       const char *snapshot_name, const Pgferry__Worker__Range *range, bool resync,
                       worker_t *w, snapshot_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!range || !snapshot_name || !*snapshot_name || range->table_index >= n_tables) {
        snprintf(err, errlen, "range assignment without a snapshot or a valid table");
        return ERRCLASS_FATAL;
    }
    const Pgferry__State__TableDef *def = tables[range->table_index];
    errclass_t cls = ERRCLASS_NONE;
    /* a worker loads range after range over the same connections: each range is one
     * transaction importing the coordinator's snapshot */
    if (!ss->ch && !(ss->ch = worker_dest_client(spec, err, errlen)))
        return ERRCLASS_FATAL;
    if (!ss->pg &&
        !(ss->pg = pgconn_connect(spec->source, "pgferry-snapshot", false, &cls, err, errlen)))
        goto fail;
    cls = import_snapshot(ss->pg, snapshot_name, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto fail;
    char where[160], label[400];
    if (range->end_block)
        snprintf(where, sizeof(where), "ctid >= '(%llu,0)'::tid AND ctid < '(%llu,0)'::tid",
                 (unsigned long long)range->start_block, (unsigned long long)range->end_block);
    else
        snprintf(where, sizeof(where), "ctid >= '(%llu,0)'::tid",
                 (unsigned long long)range->start_block);
    snprintf(label, sizeof(label), "%s blocks %llu-%s", range->relation,
             (unsigned long long)range->start_block, range->end_block ? "" : "end");
    if (range->end_block) {
        size_t l = strlen(label);
        snprintf(label + l, sizeof(label) - l, "%llu", (unsigned long long)range->end_block);
    }
    cls = stream_range(ss->pg, ss->ch, spec->dest_database, def, resync, range->relation,
                       range->relid ? range->relid : def->relid, where, label, w, out, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto fail;
    PGresult *r = pgconn_query(ss->pg, "COMMIT", 0, NULL, &cls, err, errlen);
    if (!r)
        goto fail;
    PQclear(r);
    snprintf(out->detail, sizeof(out->detail), "%.200s: %llu rows", label,
             (unsigned long long)out->rows);
    return ERRCLASS_NONE;
fail:
    snapshot_session_close(ss); /* the connection's state is unknown: a next range starts anew */
    return cls;
}

void
snapshot_session_close(snapshot_session_t *ss)
{
    if (ss->pg)
        PQfinish(ss->pg);
    ss->pg = NULL;
    ch_client_destroy(&ss->ch);
}

errclass_t
snapshot_load_range(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *tables,
                    size_t n_tables, const char *snapshot_name, const Pgferry__Worker__Range *range,
                    bool resync, worker_t *w, snapshot_result_t *out, char *err, size_t errlen)
{
    snapshot_session_t ss = {0};
    errclass_t cls = snapshot_load_range_in(&ss, spec, tables, n_tables, snapshot_name, range,
                                            resync, w, out, err, errlen);
    snapshot_session_close(&ss);
    return cls;
}
