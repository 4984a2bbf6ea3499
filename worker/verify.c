/* verify: bucketed, order-independent comparison of source and destination tables. */
#include "verify.h"
#include "buf.h"
#include "chclient.h"
#include "chsql.h"
#include "log.h"
#include "pgconn.h"
#include "setup.h"
#include "tablename.h"
#include "timeutil.h"
#include "typemap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBUCKETS 4096
#define MAX_SHOWN_KEYS 10
#define MAX_DETAILED_BUCKETS 8

typedef struct {
    uint64_t count, hsum;
} bucket_t;

static void
puts_(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* One column's canonical part, PostgreSQL side. */
static void
pg_part(const typemap_col_t *tm, const char *qcol, buf_t *b)
{
    char e[700];
    switch (tm->kind) {
    case TM_BOOL:
        snprintf(e, sizeof(e), "CASE WHEN %s THEN '1' ELSE '0' END", qcol);
        break;
    case TM_FLOAT32:
        snprintf(e, sizeof(e), "regexp_replace(encode(float4send(%s), 'hex'), '^(00)+', '')", qcol);
        break;
    case TM_FLOAT64:
        snprintf(e, sizeof(e), "regexp_replace(encode(float8send(%s), 'hex'), '^(00)+', '')", qcol);
        break;
    case TM_BYTEA:
        snprintf(e, sizeof(e), "encode(%s, 'hex')", qcol);
        break;
    default:
        /* the type's output function, which made the text ClickHouse got (COPY, pgoutput): a
         * cast to text differs for some types (char(n) drops its blanks, inet adds /32) */
        snprintf(e, sizeof(e), "concat(%s)", qcol);
        break;
    }
    char s[2400];
    snprintf(s, sizeof(s),
             "CASE WHEN %s IS NULL THEN 'n' ELSE 'v' || octet_length(%s) || ':' || %s END", qcol, e,
             e);
    puts_(b, s);
}

/* One column's canonical part, ClickHouse side. */
static void
ch_part(const typemap_col_t *tm, const char *qcol, buf_t *b)
{
    char e[700];
    switch (tm->kind) {
    case TM_STRING:
        snprintf(e, sizeof(e), "%s", qcol);
        break;
    case TM_FLOAT32:
    case TM_FLOAT64:
        /* the IEEE bits big-endian; reinterpretAsString drops high zero bytes, as the
         * PostgreSQL side drops leading 00 pairs */
        snprintf(e, sizeof(e), "lower(hex(reverse(reinterpretAsString(%s))))", qcol);
        break;
    case TM_BYTEA:
        snprintf(e, sizeof(e), "lower(hex(%s))", qcol);
        break;
    default:
        snprintf(e, sizeof(e), "toString(%s)", qcol);
        break;
    }
    char s[1600];
    snprintf(s, sizeof(s), "ifNull(concat('v', toString(length(%s)), ':', %s), 'n')", e, e);
    puts_(b, s);
}

/* The canonical text of the key columns (keys_only) or of all columns, as SQL: the columns'
 * parts concatenated. PostgreSQL's functions take at most 100 arguments, so there the parts go
 * in groups of VERIFY_CONCAT_GROUP, each its own concat, inside one concat (up to 1600 columns
 * make 18 groups): the same text as one concat of all the parts. */
bool
verify_canonical_sql(PGconn *pg, const Pgferry__State__TableDef *d, const typemap_col_t *tm,
                     bool keys_only, bool ch, buf_t *b)
{
    (void)pg;
    size_t total = 0;
    for (size_t i = 0; i < d->n_columns; i++)
        total += !keys_only || d->columns[i]->key_position > 0;
    bool nest = !ch && total > VERIFY_CONCAT_GROUP;
    puts_(b, nest ? "concat(concat(" : "concat(");
    size_t n = 0;
    for (uint32_t k = keys_only ? 1 : 0; keys_only ? k <= d->n_columns : k == 0; k++) {
        for (size_t i = 0; i < d->n_columns; i++) {
            if (keys_only && d->columns[i]->key_position != k)
                continue;
            if (n && nest && n % VERIFY_CONCAT_GROUP == 0)
                puts_(b, "), concat(");
            else if (n)
                puts_(b, ", ");
            n++;
            char q[300];
            if (ch) {
                chsql_ident(chtable_col_name(d->columns[i]), q, sizeof(q));
                ch_part(&tm[i], q, b);
            } else {
                tablename_quote_pg(d->columns[i]->name, q, sizeof(q));
                pg_part(&tm[i], q, b);
            }
        }
        if (!keys_only)
            break;
    }
    if (nest)
        puts_(b, ")");
    puts_(b, ch || n < 2 ? ", '')" : ")"); /* ClickHouse's concat wants two arguments */
    return !b->oom;
}

static int
bucket_index(const char *hex3)
{
    return (int)strtol(hex3, NULL, 16) & (NBUCKETS - 1);
}

/* ClickHouse TabSeparated escapes, undone in place */
void
verify_tsv_unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            switch (*p) {
            case 't':
                *o++ = '\t';
                break;
            case 'n':
                *o++ = '\n';
                break;
            case 'r':
                *o++ = '\r';
                break;
            case '0':
                *o++ = '\0';
                break;
            case 'b':
                *o++ = '\b';
                break;
            case 'f':
                *o++ = '\f';
                break;
            default:
                *o++ = *p;
            }
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

typedef struct {
    char *key, *hash;
} keyrow_t;

static int
keyrow_cmp(const void *a, const void *b)
{
    return strcmp(((const keyrow_t *)a)->key, ((const keyrow_t *)b)->key);
}

/* "v2:17v1:a" -> "17, a" for people */
void
verify_show_key(const char *k, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    while (*k && o + 8 < outlen) {
        if (o)
            o += (size_t)snprintf(out + o, outlen - o, ", ");
        if (*k == 'n') {
            o += (size_t)snprintf(out + o, outlen - o, "NULL");
            k++;
            continue;
        }
        char *end;
        unsigned long len = strtoul(k + 1, &end, 10);
        if (*k != 'v' || *end != ':')
            break;
        size_t have = strnlen(end + 1, len); /* a malformed length cannot read past the end */
        size_t avail = outlen - o - 1;
        size_t take = have < avail ? have : avail;
        memcpy(out + o, end + 1, take);
        o += take;
        out[o] = '\0';
        k = end + 1 + have;
    }
}

typedef struct {
    PGconn *pg;
    ch_client_t *ch;
    const Pgferry__State__PipeSpec *spec;
    const Pgferry__State__TableDef *d;
    typemap_col_t *tm;
    char pgtable[8192], chtable[600];
    char shown[700]; /* "schema.table -> database.table" for the report */
    buf_t pgkey, pgrow, chkey, chrow;
} vt_t;

static errclass_t
buckets(vt_t *v, bucket_t *pgb, bucket_t *chb, uint64_t *pgrows, uint64_t *chrows, char *err,
        size_t errlen)
{
    memset(pgb, 0, NBUCKETS * sizeof(*pgb));
    memset(chb, 0, NBUCKETS * sizeof(*chb));
    *pgrows = *chrows = 0;
    buf_t q;
    buf_init(&q);
    puts_(&q, "SELECT substr(md5(");
    buf_append(&q, v->pgkey.data, v->pgkey.len);
    /* the sum of the row hashes modulo 2^64 (ClickHouse's UInt64 sum wraps the same way):
     * order-independent, and unlike an XOR a row twice does not cancel out; bit_xor would also
     * need PostgreSQL 14 */
    puts_(&q, "), 1, 3), count(*), ((sum(('x' || substr(md5(");
    buf_append(&q, v->pgrow.data, v->pgrow.len);
    puts_(&q, "), 1, 16))::bit(64)::bigint::numeric) % 18446744073709551616) + "
              "18446744073709551616) % 18446744073709551616 FROM ");
    puts_(&q, v->pgtable);
    puts_(&q, " GROUP BY 1");
    buf_byte(&q, '\0');
    errclass_t cls;
    PGresult *r = q.oom ? NULL : pgconn_query(v->pg, (char *)q.data, 0, NULL, &cls, err, errlen);
    buf_free(&q);
    if (!r)
        return q.oom ? ERRCLASS_TRANSIENT : cls;
    for (int i = 0; i < PQntuples(r); i++) {
        bucket_t *bk = &pgb[bucket_index(PQgetvalue(r, i, 0))];
        bk->count = strtoull(PQgetvalue(r, i, 1), NULL, 10);
        bk->hsum = strtoull(PQgetvalue(r, i, 2), NULL, 10);
        *pgrows += bk->count;
    }
    PQclear(r);
    buf_init(&q);
    puts_(&q, "SELECT substring(lower(hex(MD5(");
    buf_append(&q, v->chkey.data, v->chkey.len);
    puts_(&q, "))), 1, 3) AS _pgferry_bucket, count(), sum(reinterpretAsUInt64(reverse(unhex("
              "substring(hex(MD5(");
    buf_append(&q, v->chrow.data, v->chrow.len);
    puts_(&q, ")), 1, 16))))) FROM ");
    puts_(&q, v->chtable);
    puts_(&q,
          " FINAL WHERE `_pgferry_is_deleted` = 0 GROUP BY _pgferry_bucket FORMAT TabSeparated");
    buf_byte(&q, '\0');
    char *body = NULL;
    cls = q.oom ? ERRCLASS_TRANSIENT : ch_client_query(v->ch, (char *)q.data, &body, err, errlen);
    buf_free(&q);
    if (cls != ERRCLASS_NONE)
        return cls;
    for (char *line = body, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2)
            continue;
        bucket_t *bk = &chb[bucket_index(line)];
        bk->count = strtoull(t1 + 1, NULL, 10);
        bk->hsum = strtoull(t2 + 1, NULL, 10);
        *chrows += bk->count;
    }
    free(body);
    return ERRCLASS_NONE;
}

/* The rows of one bucket on both sides, compared key by key; appends findings to rep. */
static errclass_t
bucket_detail(vt_t *v, int bucket, buf_t *rep, int *shown, char *err, size_t errlen)
{
    char b3[8];
    snprintf(b3, sizeof(b3), "%03x", bucket);
    buf_t q;
    buf_init(&q);
    puts_(&q, "SELECT ");
    buf_append(&q, v->pgkey.data, v->pgkey.len);
    puts_(&q, ", substr(md5(");
    buf_append(&q, v->pgrow.data, v->pgrow.len);
    puts_(&q, "), 1, 16) FROM ");
    puts_(&q, v->pgtable);
    puts_(&q, " WHERE substr(md5(");
    buf_append(&q, v->pgkey.data, v->pgkey.len);
    puts_(&q, "), 1, 3) = $1");
    buf_byte(&q, '\0');
    const char *p[] = {b3};
    errclass_t cls;
    PGresult *r = q.oom ? NULL : pgconn_query(v->pg, (char *)q.data, 1, p, &cls, err, errlen);
    buf_free(&q);
    if (!r)
        return cls;
    buf_init(&q);
    puts_(&q, "SELECT ");
    buf_append(&q, v->chkey.data, v->chkey.len);
    puts_(&q, ", lower(substring(hex(MD5(");
    buf_append(&q, v->chrow.data, v->chrow.len);
    puts_(&q, ")), 1, 16)) FROM ");
    puts_(&q, v->chtable);
    puts_(&q, " FINAL WHERE `_pgferry_is_deleted` = 0 AND substring(lower(hex(MD5(");
    buf_append(&q, v->chkey.data, v->chkey.len);
    char tail[80];
    snprintf(tail, sizeof(tail), "))), 1, 3) = '%s' FORMAT TabSeparated", b3);
    puts_(&q, tail);
    buf_byte(&q, '\0');
    char *body = NULL;
    cls = q.oom ? ERRCLASS_TRANSIENT : ch_client_query(v->ch, (char *)q.data, &body, err, errlen);
    buf_free(&q);
    if (cls != ERRCLASS_NONE) {
        PQclear(r);
        return cls;
    }
    size_t na = (size_t)PQntuples(r), nb = 0, capb = 16;
    keyrow_t *a = calloc(na + 1, sizeof(*a)), *bb = calloc(capb, sizeof(*bb));
    for (size_t i = 0; a && i < na; i++) {
        a[i].key = PQgetvalue(r, (int)i, 0);
        a[i].hash = PQgetvalue(r, (int)i, 1);
    }
    for (char *line = body, *next; bb && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *tab = strrchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        verify_tsv_unescape(line);
        if (nb == capb) {
            keyrow_t *g = realloc(bb, 2 * capb * sizeof(*bb));
            if (!g)
                break;
            bb = g;
            capb *= 2;
        }
        bb[nb].key = line;
        bb[nb].hash = tab + 1;
        nb++;
    }
    if (!a || !bb) {
        free(a);
        free(bb);
        free(body);
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    qsort(a, na, sizeof(*a), keyrow_cmp);
    qsort(bb, nb, sizeof(*bb), keyrow_cmp);
    size_t i = 0, j = 0;
    while ((i < na || j < nb) && *shown < MAX_SHOWN_KEYS) {
        int c = i >= na ? 1 : j >= nb ? -1 : strcmp(a[i].key, bb[j].key);
        const char *what = NULL, *key;
        if (c < 0) {
            what = "only in PostgreSQL";
            key = a[i++].key;
        } else if (c > 0) {
            what = "only in ClickHouse";
            key = bb[j++].key;
        } else {
            key = a[i].key;
            if (strcmp(a[i].hash, bb[j].hash) != 0)
                what = "values differ";
            i++;
            j++;
        }
        if (what) {
            char shownkey[300], line[400];
            verify_show_key(key, shownkey, sizeof(shownkey));
            snprintf(line, sizeof(line), "  key (%s): %s\n", shownkey, what);
            puts_(rep, line);
            (*shown)++;
        }
    }
    free(a);
    free(bb);
    free(body);
    PQclear(r);
    return ERRCLASS_NONE;
}

/* Waits until the pipe's slot confirmed the source's current WAL position. */
static errclass_t
catch_up(PGconn *pg, const char *slot, char *err, size_t errlen)
{
    errclass_t cls;
    /* everything committed so far is flushed by one synchronous commit that wrote WAL (under
     * synchronous_commit = off a commit that returned may not be flushed, and the walsender
     * reads only flushed WAL); the flush position is then past the end of every commit. The
     * commit must write WAL of its own: PostgreSQL flushes a commit at once only then (one that
     * only took a transaction id, txid_current(), is committed asynchronously: found on a
     * loaded machine, where verify reported a row inserted just before as missing). A
     * transactional logical message writes WAL, needs no privilege and is not a change of any
     * table (pgferry's stream ignores messages). */
    PGresult *r = PQexec(pg, "BEGIN; SET LOCAL synchronous_commit = on; "
                             "SELECT pg_logical_emit_message(true, 'pgferry', ''); COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        cls = pgconn_classify(r, pg);
        snprintf(err, errlen, "cannot flush the source's WAL: %s", PQerrorMessage(pg));
        PQclear(r);
        return cls;
    }
    PQclear(r);
    r = pgconn_query(pg, "SELECT pg_current_wal_flush_lsn()::text", 0, NULL, &cls, err, errlen);
    if (!r)
        return cls;
    char lsn[40];
    snprintf(lsn, sizeof(lsn), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *p[] = {slot, lsn};
    int64_t deadline = time_mono_ms() + 120000;
    for (;;) {
        r = pgconn_query(pg,
                         "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots "
                         "WHERE slot_name = $1",
                         2, p, &cls, err, errlen);
        if (!r)
            return cls;
        bool ok = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (ok)
            return ERRCLASS_NONE;
        if (time_mono_ms() > deadline) {
            snprintf(err, errlen, "the pipe did not catch up with %s within 120 s", lsn);
            return ERRCLASS_TRANSIENT;
        }
        usleep(100 * 1000);
    }
}

/* The definition's columns that the source table has now, into cols (*n of them); the others
 * are named in skipped with the reason. */
/* Waits (up to 60 s) until ClickHouse has carried out the mutations of the pipe's database: a
 * TRUNCATE is followed by one, and after a ClickHouse restart it deletes the rows of parts the
 * TRUNCATE left on disk; comparing before that would report rows that are about to go. */
static errclass_t settle_mutations_here(ch_client_t *ch, const char *db, char *err, size_t errlen);

/* On a cluster every endpoint's mutations (a shard's are visible on its own nodes only); an
 * endpoint that does not answer is skipped. */
static errclass_t
settle_mutations(ch_client_t *ch, const chcluster_t *cl, const char *db, char *err, size_t errlen)
{
    if (!chcluster_on(cl) || ch_client_endpoints(ch) < 2)
        return settle_mutations_here(ch, db, err, errlen);
    size_t start = ch_client_current(ch);
    errclass_t cls = ERRCLASS_NONE;
    for (size_t i = 0; i < ch_client_endpoints(ch) && cls == ERRCLASS_NONE; i++) {
        ch_client_use(ch, i, false);
        cls = settle_mutations_here(ch, db, err, errlen);
        if (cls != ERRCLASS_NONE && strstr(err, "unreachable"))
            cls = ERRCLASS_NONE;
    }
    ch_client_use(ch, start, true);
    return cls;
}

static errclass_t
settle_mutations_here(ch_client_t *ch, const char *db, char *err, size_t errlen)
{
    char qdb[300], sql[600];
    chsql_string(db, qdb, sizeof(qdb));
    snprintf(sql, sizeof(sql),
             "SELECT count() FROM system.mutations WHERE database = %s AND NOT is_done", qdb);
    for (int i = 0; i < 600; i++) {
        char *out = NULL;
        errclass_t cls = ch_client_query(ch, sql, &out, err, errlen);
        bool pending = cls == ERRCLASS_NONE && out && atoi(out) > 0;
        free(out);
        if (cls != ERRCLASS_NONE || !pending)
            return cls;
        usleep(100 * 1000);
    }
    log_warn("verify: mutations in %s still running after 60 s; comparing anyway", db);
    return ERRCLASS_NONE;
}

static errclass_t
compared_columns(PGconn *pg, const Pgferry__State__TableDef *d, Pgferry__State__ColumnDef **cols,
                 size_t *n, char *skipped, size_t skippedlen, char *err, size_t errlen)
{
    char relid[16];
    snprintf(relid, sizeof(relid), "%u", d->relid);
    const char *p[] = {relid};
    errclass_t cls;
    PGresult *r = pgconn_query(pg,
                               "SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND "
                               "attnum > 0 AND NOT attisdropped",
                               1, p, &cls, err, errlen);
    if (!r)
        return cls;
    *n = 0;
    size_t sl = 0;
    skipped[0] = '\0';
    for (size_t i = 0; i < d->n_columns; i++) {
        bool there = false;
        for (int k = 0; k < PQntuples(r) && !there; k++)
            there = strcmp(PQgetvalue(r, k, 0), d->columns[i]->name) == 0;
        if (there || d->columns[i]->key_position) {
            cols[(*n)++] = d->columns[i];
            continue;
        }
        if (sl < skippedlen)
            sl += (size_t)snprintf(skipped + sl, skippedlen - sl,
                                   "%scolumn %s (gone from the source; the stream brings the "
                                   "change with the table's next row change)",
                                   sl ? ", " : "", d->columns[i]->name);
    }
    for (int k = 0; k < PQntuples(r); k++) {
        const char *name = PQgetvalue(r, k, 0);
        bool known = false;
        for (size_t i = 0; i < d->n_columns && !known; i++)
            known = strcmp(name, d->columns[i]->name) == 0;
        const char *why = known ? NULL : setup_skipped_reason(d, name);
        if (!known && sl < skippedlen)
            sl += (size_t)snprintf(
                skipped + sl, skippedlen - sl, "%scolumn %s (%s)", sl ? ", " : "", name,
                why ? why : "added at the source and not yet seen in the stream");
    }
    PQclear(r);
    return ERRCLASS_NONE;
}

static errclass_t
verify_table(vt_t *v, bool streaming, buf_t *rep, bool *match, char *err, size_t errlen)
{
    static bucket_t pgb[NBUCKETS], chb[NBUCKETS], pgb2[NBUCKETS], chb2[NBUCKETS];
    uint64_t pgrows, chrows;
    errclass_t cls = buckets(v, pgb, chb, &pgrows, &chrows, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    int differ[NBUCKETS], nd = 0;
    for (int b = 0; b < NBUCKETS; b++) {
        if (pgb[b].count != chb[b].count || pgb[b].hsum != chb[b].hsum)
            differ[nd++] = b;
    }
    if (nd > 0 && streaming) {
        /* the stream may have been between the two reads: look again once caught up */
        chcluster_t cl;
        worker_cluster(v->spec, &cl);
        cls = catch_up(v->pg, v->spec->slot, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = settle_mutations(v->ch, &cl, v->spec->dest_database, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls =
                worker_sync_replica(v->ch, &cl, v->spec->dest_database, v->d->target, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = buckets(v, pgb2, chb2, &pgrows, &chrows, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        int kept = 0;
        for (int k = 0; k < nd; k++) {
            int b = differ[k];
            if (pgb2[b].count != chb2[b].count || pgb2[b].hsum != chb2[b].hsum)
                differ[kept++] = b;
        }
        nd = kept;
    }
    char line[1400];
    *match = nd == 0;
    if (*match) {
        snprintf(line, sizeof(line), "%s: match (%llu rows)\n", v->shown,
                 (unsigned long long)pgrows);
        puts_(rep, line);
        return ERRCLASS_NONE;
    }
    snprintf(line, sizeof(line),
             "%s: MISMATCH (PostgreSQL %llu rows, ClickHouse %llu rows; %d of %d "
             "buckets differ)\n",
             v->shown, (unsigned long long)pgrows, (unsigned long long)chrows, nd, NBUCKETS);
    puts_(rep, line);
    int shown = 0;
    for (int k = 0; k < nd && k < MAX_DETAILED_BUCKETS && shown < MAX_SHOWN_KEYS; k++) {
        cls = bucket_detail(v, differ[k], rep, &shown, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
    }
    return ERRCLASS_NONE;
}

/* The source relation of d as SQL for a FROM clause: the table under its name today (found
 * by its oid: a table renamed at the source is still found), with the publication's row filter
 * (the rows the pipe replicates). *differs when the comparison cannot be made and the report
 * says why: the table is gone, or the user's publication filters rows differently now. */
static errclass_t
source_relation(PGconn *pg, const Pgferry__State__PipeSpec *spec, const Pgferry__State__TableDef *d,
                char *out, size_t outlen, const vt_t *v, buf_t *rep, bool *differs, char *err,
                size_t errlen)
{
    char relid[16];
    snprintf(relid, sizeof(relid), "%u", d->relid);
    const char *p[] = {relid, spec->publication};
    errclass_t cls;
    PGresult *r =
        pgconn_query(pg,
                     "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid",
                     1, p, &cls, err, errlen);
    if (!r)
        return cls;
    *differs = PQntuples(r) != 1;
    if (*differs) {
        PQclear(r);
        puts_(rep, v->shown);
        puts_(rep, ": the source table is gone (dropped since the pipe last saw it)\n");
        return ERRCLASS_NONE;
    }
    int n;
    if (d->row_filter && d->row_filter[0])
        n = snprintf(out, outlen, "(SELECT * FROM %s WHERE (%s)) AS _pgferry_src",
                     PQgetvalue(r, 0, 0), d->row_filter);
    else
        n = snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "the row filter of %s.%s is too long to compare (%d bytes)",
                 d->schema, d->name, n);
        return ERRCLASS_FATAL;
    }
    if (spec->publication_owned || spec->mode == PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY ||
        PQserverVersion(pg) < 150000)
        return ERRCLASS_NONE;
    r = pgconn_query(pg,
                     "SELECT DISTINCT COALESCE(pt.rowfilter, '') FROM pg_publication_tables pt "
                     "WHERE pt.pubname = $2 AND " PUB_RELATIONS,
                     2, p, &cls, err, errlen);
    if (!r)
        return cls;
    const char *now = PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : NULL;
    const char *was = d->row_filter ? d->row_filter : "";
    if (!now || strcmp(now, was) != 0) {
        *differs = true;
        puts_(rep, v->shown);
        puts_(rep, ": not compared: publication ");
        puts_(rep, spec->publication);
        if (!now) {
            puts_(rep, " no longer publishes the table (or publishes its partitions "
                       "differently)");
        } else {
            puts_(rep, " filters rows differently since the pipe was set up (was '");
            puts_(rep, was[0] ? was : "no filter");
            puts_(rep, "', now '");
            puts_(rep, now[0] ? now : "no filter");
            puts_(rep, "')");
        }
        puts_(rep, "; resync the pipe to follow the publication\n");
    }
    PQclear(r);
    return ERRCLASS_NONE;
}

errclass_t
verify_run(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *tables,
           size_t n_tables, const char *only_table, bool streaming, worker_t *w,
           verify_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    errclass_t cls;
    buf_t rep;
    buf_init(&rep);
    ch_client_t *ch = worker_dest_client(spec, err, errlen);
    if (!ch)
        return ERRCLASS_FATAL;
    PGconn *pg = pgconn_connect(spec->source, "pgferry-verify", false, &cls, err, errlen);
    if (!pg) {
        ch_client_destroy(&ch);
        return cls;
    }
    if (streaming) {
        worker_send_progress(w, 0, 0, NULL, "verify: waiting for the pipe to catch up");
        cls = catch_up(pg, spec->slot, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
    }
    chcluster_t cl;
    worker_cluster(spec, &cl);
    cls = settle_mutations(ch, &cl, spec->dest_database, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    size_t done = 0;
    for (size_t t = 0; t < n_tables; t++) {
        const Pgferry__State__TableDef *d = tables[t];
        char full[300];
        snprintf(full, sizeof(full), "%s.%s", d->schema, d->name);
        if (only_table && *only_table && strcmp(only_table, full) != 0 &&
            strcmp(only_table, d->name) != 0)
            continue;
        vt_t v;
        memset(&v, 0, sizeof(v));
        v.pg = pg;
        v.ch = ch;
        v.spec = spec;
        v.d = d;
        v.tm = calloc(d->n_columns + 1, sizeof(*v.tm));
        char cq[300], ct[300];
        chsql_ident(spec->dest_database, cq, sizeof(cq));
        chsql_ident(d->target, ct, sizeof(ct));
        snprintf(v.chtable, sizeof(v.chtable), "%s.%s", cq, ct);
        char src[300];
        tablename_format(d->schema, d->name, src, sizeof(src));
        snprintf(v.shown, sizeof(v.shown), "%s -> %s.%s", src, spec->dest_database, d->target);
        bool differs = false;
        /* on a cluster, the replicas read hold everything written through any endpoint */
        cls = worker_sync_replica(ch, &cl, spec->dest_database, d->target, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = source_relation(pg, spec, d, v.pgtable, sizeof(v.pgtable), &v, &rep, &differs,
                                  err, errlen);
        if (cls != ERRCLASS_NONE) {
            free(v.tm);
            goto out;
        }
        if (differs) {
            free(v.tm);
            out->mismatched_tables++;
            done++;
            continue;
        }
        buf_init(&v.pgkey);
        buf_init(&v.pgrow);
        buf_init(&v.chkey);
        buf_init(&v.chrow);
        /* the columns both sides have: a column the source dropped, or one it added, since the
         * stream last brought a change of the table is not in the definitions yet */
        Pgferry__State__TableDef cmp = *d;
        Pgferry__State__ColumnDef **cols = calloc(d->n_columns + 1, sizeof(*cols));
        char skipped[600] = "";
        cls = cols ? compared_columns(pg, d, cols, &cmp.n_columns, skipped, sizeof(skipped), err,
                                      errlen)
                   : ERRCLASS_TRANSIENT;
        if (!cols)
            snprintf(err, errlen, "out of memory");
        if (cls != ERRCLASS_NONE) {
            free(cols);
            free(v.tm);
            goto out;
        }
        cmp.columns = cols;
        v.d = &cmp;
        for (size_t i = 0; v.tm && i < cmp.n_columns; i++)
            typemap_for_pg(cols[i]->base_type_oid, cols[i]->typcategory[0], cols[i]->base_typmod,
                           cols[i]->not_null, 0,
                           typemap_flags_recorded(cols[i]->base_type_oid, cols[i]->ch_type),
                           &v.tm[i]);
        bool ok = v.tm && v.pgtable[0] &&
                  verify_canonical_sql(pg, &cmp, v.tm, true, false, &v.pgkey) &&
                  verify_canonical_sql(pg, &cmp, v.tm, false, false, &v.pgrow) &&
                  verify_canonical_sql(pg, &cmp, v.tm, true, true, &v.chkey) &&
                  verify_canonical_sql(pg, &cmp, v.tm, false, true, &v.chrow);
        if (skipped[0]) {
            puts_(&rep, v.shown);
            puts_(&rep, ": not compared: ");
            puts_(&rep, skipped);
            puts_(&rep, "\n");
        }
        bool match = false;
        char detail[400];
        snprintf(detail, sizeof(detail), "verify: comparing %s", full);
        worker_send_progress(w, 0, 0, NULL, detail);
        cls = ok ? verify_table(&v, streaming, &rep, &match, err, errlen) : ERRCLASS_TRANSIENT;
        if (!ok)
            snprintf(err, errlen, "out of memory");
        free(v.tm);
        free(cols);
        buf_free(&v.pgkey);
        buf_free(&v.pgrow);
        buf_free(&v.chkey);
        buf_free(&v.chrow);
        if (cls != ERRCLASS_NONE)
            goto out;
        out->mismatched_tables += !match;
        done++;
    }
    if (done == 0) {
        snprintf(err, errlen, "the pipe has no table %s", only_table ? only_table : "");
        cls = ERRCLASS_FATAL;
        goto out;
    }
    buf_byte(&rep, '\0');
    if (rep.oom) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    out->report = (char *)rep.data;
    rep.data = NULL;
    cls = ERRCLASS_NONE;
out:
    buf_free(&rep);
    PQfinish(pg);
    ch_client_destroy(&ch);
    return cls;
}
