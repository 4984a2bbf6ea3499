/* applyio: the apply model's inserts, lookups and truncates against ClickHouse and PostgreSQL. */
#include "applyio.h"
#include "chsql.h"
#include "log.h"
#include "meta.h"
#include "pgconn.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether table t is missing from a server that stays up: missing now, and again after
 * MISSING_CONFIRM_S on a server whose uptime covers the wait. A ClickHouse that is shutting down
 * answers "doesn't exist" for about 15 s and is gone after that; one that restarted in between
 * has a shorter uptime. */
#define MISSING_CONFIRM_S 20
static bool
table_gone(applyio_t *io, const chtable_t *t)
{
    char sql[700], e[256];
    snprintf(sql, sizeof(sql), "EXISTS TABLE %s", t->qname);
    for (int check = 0; check < 2; check++) {
        if (check) {
            log_warn("destination table %s is missing; asking again in %d s before stopping the "
                     "pipe (a ClickHouse shutting down answers so for a while)",
                     t->qname, MISSING_CONFIRM_S);
            sleep(MISSING_CONFIRM_S);
        }
        char *out = NULL, *up = NULL;
        errclass_t ec = ch_client_query(io->ch, sql, &out, e, sizeof(e));
        bool missing = ec == ERRCLASS_NONE && out && atoi(out) == 0;
        if (missing && check)
            ec = ch_client_query(io->ch, "SELECT uptime()", &up, e, sizeof(e));
        long uptime = ec == ERRCLASS_NONE && up ? atol(up) : 0;
        free(out);
        free(up);
        if (!missing || (check && uptime < MISSING_CONFIRM_S))
            return false;
    }
    return true;
}

/* A statement on t failed with cls/err: a table or database ClickHouse does not know is
 * FATAL once confirmed gone (table_gone), with the way out; anything else stays as it is. */
static errclass_t
gone_is_fatal(applyio_t *io, const chtable_t *t, errclass_t cls, char *err, size_t errlen)
{
    if (cls != ERRCLASS_NONE && (ch_error_code(err) == 60 || ch_error_code(err) == 81)) {
        size_t l = strlen(err);
        if (!table_gone(io, t)) {
            snprintf(err + l, errlen - l,
                     " (not confirmed: the table exists when asked again, or the server "
                     "restarted: retrying)");
            return ERRCLASS_TRANSIENT;
        }
        snprintf(err + l, errlen - l,
                 " (destination table %s is gone: it was dropped outside pgferry; resync the "
                 "pipe to recreate and reload it)",
                 t->qname);
        return ERRCLASS_FATAL;
    }
    return cls;
}

static errclass_t
io_insert(void *ud, const chtable_t *t, ch_stream_fn fn, void *fnud, char *err, size_t errlen)
{
    applyio_t *io = ud;
    errclass_t cls = ch_client_insert_stream(io->ch, t->insert_sql, fn, fnud, err, errlen);
    if (cls != ERRCLASS_NONE)
        chtable_memory_hint(t, err, errlen);
    return gone_is_fatal(io, t, cls, err, errlen);
}

/* ---- lookups in ClickHouse ----------------------------------------------------------------- */

/* The stored rows of the asked keys without FINAL (FINAL in ClickHouse 18.16 turns PREWHERE off
 * and reads every value of each touched granule: with large values that is most of the table),
 * ordered by key; of a key's rows the reader keeps what FINAL would: the highest version, of
 * equal versions the one in the later part (parts hold at most one row of a key, and their
 * block numbers follow insert order). */
typedef struct {
    const chtable_t *t;
    const size_t *cols;
    size_t ncols;
    apply_row_fn on_row;
    void *cbud;
    size_t budget, delivered;
    uint64_t below; /* rows of this version or later are passed over (0: none) */
    buf_t in;       /* reply bytes not yet done with: from the current key's best row on */
    size_t used;    /* of in: parsed */
    /* the current key's best row so far, in place in `in` (a large value is not copied) */
    size_t best_off, best_len, best_kl, best_vl;
    uint64_t best_version, best_block;
    bool have_best, stopped, failed;
} reader_t;

/* The first block number of a part name ("all_12_15_2": 12). */
static uint64_t
part_block(const unsigned char *name, size_t len)
{
    int fields = 0;
    size_t i = len;
    while (i > 0 && fields < 3) {
        i--;
        if (name[i] == '_')
            fields++;
    }
    uint64_t b = 0;
    for (size_t k = i + 1; k < len && name[k] >= '0' && name[k] <= '9'; k++)
        b = b * 10 + (uint64_t)(name[k] - '0');
    return b;
}

/* Bytes of the row at p (key, the asked columns, deleted flag, version, part name), 0 if
 * incomplete; *key_len, *vals_len, *part_off and *part_len tell the parts. */
static size_t
row_size(const reader_t *r, const unsigned char *p, size_t len, size_t *key_len, size_t *vals_len,
         size_t *part_off, size_t *part_len)
{
    size_t pos = 0;
    for (size_t k = 0; k < r->t->nkeys; k++) {
        size_t n = typemap_value_size(&r->t->tm[r->t->keycols[k]], p + pos, len - pos);
        if (n == 0)
            return 0;
        pos += n;
    }
    *key_len = pos;
    for (size_t i = 0; i < r->ncols; i++) {
        size_t n = typemap_value_size(&r->t->tm[r->cols[i]], p + pos, len - pos);
        if (n == 0)
            return 0;
        pos += n;
    }
    *vals_len = pos - *key_len;
    if (len - pos < 9)
        return 0;
    pos += 9; /* deleted, version */
    uint64_t n = 0;
    int shift = 0;
    for (;;) {
        if (pos >= len || shift > 63)
            return 0;
        unsigned char b = p[pos++];
        n |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    if (len - pos < n)
        return 0;
    *part_off = pos;
    *part_len = (size_t)n;
    return pos + (size_t)n;
}

static uint64_t
le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Hands the current key's best row on. */
static bool
emit_best(reader_t *r)
{
    if (!r->have_best)
        return true;
    r->have_best = false;
    const unsigned char *b = r->in.data + r->best_off;
    r->delivered += r->best_len;
    return r->on_row(r->cbud, b, r->best_kl, b[r->best_kl + r->best_vl] != 0, b + r->best_kl,
                     r->best_vl);
}

static bool
on_reply(void *ud, const char *data, size_t len)
{
    reader_t *r = ud;
    buf_append(&r->in, data, len);
    if (r->in.oom) {
        r->failed = true;
        return false;
    }
    for (;;) {
        const unsigned char *p = r->in.data + r->used;
        size_t avail = r->in.len - r->used, kl, vl, po, pl;
        size_t n = row_size(r, p, avail, &kl, &vl, &po, &pl);
        if (n == 0)
            break;
        uint64_t version = le64(p + kl + vl + 1), block = part_block(p + po, pl);
        if (r->below && version >= r->below) {
            r->used += n;
            continue;
        }
        bool same =
            r->have_best && kl == r->best_kl && memcmp(p, r->in.data + r->best_off, kl) == 0;
        if (!same) {
            /* a new key: the previous one is complete */
            if (!emit_best(r)) {
                r->failed = true;
                return false;
            }
            if (r->delivered >= r->budget) {
                r->stopped = true; /* enough for now: the caller asks for the rest again */
                return false;
            }
        }
        if (!same || version > r->best_version ||
            (version == r->best_version && block > r->best_block)) {
            r->best_off = r->used;
            r->best_len = kl + vl + 1;
            r->best_kl = kl;
            r->best_vl = vl;
            r->best_version = version;
            r->best_block = block;
            r->have_best = true;
        }
        r->used += n;
    }
    /* what comes before the best row (and the parsed rows after it, but for simplicity those
     * stay until the key changes) is no longer needed */
    size_t keep = r->have_best ? r->best_off : r->used;
    if (keep) {
        memmove(r->in.data, r->in.data + keep, r->in.len - keep);
        r->in.len -= keep;
        r->used -= keep;
        if (r->have_best)
            r->best_off -= keep;
    }
    return true;
}

errclass_t
applyio_synced(applyio_t *io, const char *target, char *err, size_t errlen)
{
    if (!io->cl || !chcluster_on(io->cl))
        return ERRCLASS_NONE;
    /* sharded: the Distributed table picks a replica of each shard itself, and one that came
     * back since the last sync is picked again: every read is preceded by a sync */
    if (io->cl->sharded)
        return worker_sync_replica(io->ch, io->cl, io->db, target, err, errlen);
    unsigned sw = ch_client_switches(io->ch);
    size_t i;
    for (i = 0; i < io->nsynced; i++) {
        if (strcmp(io->synced[i].target, target) == 0)
            break;
    }
    if (i < io->nsynced && io->synced[i].switches == sw)
        return ERRCLASS_NONE;
    errclass_t cls = worker_sync_replica(io->ch, io->cl, io->db, target, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    if (i == io->nsynced) {
        applyio_synced_t *n = realloc(io->synced, (io->nsynced + 1) * sizeof(*n));
        char *name = strdup(target);
        if (!n || !name) {
            free(name);
            if (n)
                io->synced = n;
            snprintf(err, errlen, "out of memory");
            return ERRCLASS_TRANSIENT;
        }
        io->synced = n;
        io->synced[io->nsynced++].target = name;
    }
    /* what the client switched to while syncing is synced again next time */
    io->synced[i].switches = sw;
    return ERRCLASS_NONE;
}

void
applyio_free(applyio_t *io)
{
    for (size_t i = 0; i < io->nsynced; i++)
        free(io->synced[i].target);
    free(io->synced);
    io->synced = NULL;
    io->nsynced = 0;
}

/* Bytes of s in a URL (curl_easy_escape keeps only letters, digits and "-._~"). */
static size_t
url_len(const char *s, size_t n)
{
    size_t l = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        l += (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~'
                 ? 1
                 : 3;
    }
    return l;
}

/* The most of a lookup's SELECT in the URL: its keys go as external data (multipart), and
 * ClickHouse 18.16 takes the statement of such a request from the URL only, which it refuses
 * over 16 KB. A lookup of more columns is made in groups (lookup_split). */
#define LOOKUP_URL_MAX 12000

/* The lookup SELECT of columns cols[0..ncols) of t (NUL-terminated in sql). */
static void
lookup_sql(const chtable_t *t, const size_t *cols, size_t ncols, buf_t *sql)
{
    char q[300];
    buf_append(sql, "SELECT ", 7);
    for (size_t k = 0; k < t->nkeys; k++) {
        chsql_ident(chtable_col_name(t->def->columns[t->keycols[k]]), q, sizeof(q));
        buf_append(sql, q, strlen(q));
        buf_append(sql, ", ", 2);
    }
    for (size_t i = 0; i < ncols; i++) {
        chsql_ident(chtable_col_name(t->def->columns[cols[i]]), q, sizeof(q));
        buf_append(sql, q, strlen(q));
        buf_append(sql, ", ", 2);
    }
    const char *mid = "`" META_DELETED "`, `" META_VERSION "`, _part FROM ";
    buf_append(sql, mid, strlen(mid));
    buf_append(sql, t->qname, strlen(t->qname));
    buf_append(sql, " PREWHERE ", 10);
    chtable_key_tuple(t, sql);
    buf_append(sql, " IN _pgferry_keys ORDER BY ", 27);
    chtable_key_tuple(t, sql);
    const char *tail = " FORMAT RowBinary";
    buf_append(sql, tail, strlen(tail) + 1);
}

static errclass_t
lookup_once(applyio_t *io, const chtable_t *t, const size_t *cols, size_t ncols,
            const unsigned char *keys, size_t keys_len, uint64_t below, size_t budget,
            apply_row_fn on_row, void *cbud, bool *complete, char *err, size_t errlen)
{
    buf_t sql, st;
    buf_init(&sql);
    buf_init(&st);
    lookup_sql(t, cols, ncols, &sql);
    chtable_key_structure(t, &st);
    buf_byte(&st, '\0');
    reader_t r;
    memset(&r, 0, sizeof(r));
    r.t = t;
    r.cols = cols;
    r.ncols = ncols;
    r.on_row = on_row;
    r.cbud = cbud;
    r.budget = budget ? budget : (size_t)-1;
    r.below = below;
    buf_init(&r.in);
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (sql.oom || st.oom) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    bool stopped = false;
    cls = ch_client_query_ext(io->ch, (char *)sql.data, "_pgferry_keys", (char *)st.data, keys,
                              keys_len, on_reply, &r, &stopped, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    if (!r.failed && !r.stopped && !emit_best(&r))
        r.failed = true;
    if (r.failed) {
        snprintf(err, errlen, "out of memory reading stored values of %s", t->qname);
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    if (!r.stopped && r.in.len != r.used) {
        snprintf(err, errlen, "a lookup in %s returned %zu bytes that are not a whole row",
                 t->qname, r.in.len - r.used);
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    *complete = !r.stopped;
out:
    buf_free(&r.in);
    buf_free(&sql);
    buf_free(&st);
    return cls;
}

/* One group's rows: per row u32 key_len, u32 vals_len, u8 deleted, key, vals. */
typedef struct {
    buf_t data;
    size_t n;
} collected_t;

static bool
collect_row(void *ud, const unsigned char *key, size_t key_len, bool deleted,
            const unsigned char *vals, size_t vals_len)
{
    collected_t *c = ud;
    uint32_t kl = (uint32_t)key_len, vl = (uint32_t)vals_len;
    unsigned char d = deleted ? 1 : 0;
    buf_append(&c->data, &kl, 4);
    buf_append(&c->data, &vl, 4);
    buf_append(&c->data, &d, 1);
    buf_append(&c->data, key, key_len);
    buf_append(&c->data, vals, vals_len);
    c->n++;
    return !c->data.oom;
}

/* A lookup of more columns than one URL holds: the columns in groups, one lookup each (all of
 * the keys, no budget), the rows put together key by key. Each group's rows are what FINAL
 * would keep, ordered by key, and nothing writes the table between the groups (the pipe is its
 * only writer, and this is before the flush's insert): the same keys in the same order. */
static errclass_t
lookup_split(applyio_t *io, const chtable_t *t, const size_t *cols, size_t ncols,
             const unsigned char *keys, size_t keys_len, uint64_t below, size_t base_len,
             apply_row_fn on_row, void *cbud, bool *complete, char *err, size_t errlen)
{
    size_t ngroups = 0, *gstart = calloc(ncols + 1, sizeof(size_t));
    collected_t *g = NULL;
    buf_t row;
    buf_init(&row);
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (!gstart) {
        snprintf(err, errlen, "out of memory");
        return cls;
    }
    for (size_t i = 0, len = base_len; i < ncols; i++) {
        char q[300];
        chsql_ident(chtable_col_name(t->def->columns[cols[i]]), q, sizeof(q));
        size_t cl = url_len(q, strlen(q)) + 6; /* and ", " */
        if (i == 0 || len + cl > LOOKUP_URL_MAX) {
            gstart[ngroups++] = i;
            len = base_len;
        }
        len += cl;
    }
    gstart[ngroups] = ncols;
    g = calloc(ngroups, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < ngroups; k++) {
        buf_init(&g[k].data);
        bool done;
        cls = lookup_once(io, t, cols + gstart[k], gstart[k + 1] - gstart[k], keys, keys_len, below,
                          (size_t)-1, collect_row, &g[k], &done, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
        if (g[k].data.oom) {
            snprintf(err, errlen, "out of memory reading stored values of %s", t->qname);
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
        if (g[k].n != g[0].n) {
            snprintf(err, errlen,
                     "a lookup in %s in %zu groups of columns found %zu rows in one, %zu in "
                     "another",
                     t->qname, ngroups, g[0].n, g[k].n);
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
    }
    size_t *pos = calloc(ngroups, sizeof(size_t));
    if (!pos) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    for (size_t r = 0; r < g[0].n && cls == ERRCLASS_NONE; r++) {
        buf_reset(&row);
        const unsigned char *key0 = NULL;
        uint32_t kl0 = 0;
        bool deleted = false;
        for (size_t k = 0; k < ngroups; k++) {
            const unsigned char *p = g[k].data.data + pos[k];
            uint32_t kl, vl;
            memcpy(&kl, p, 4);
            memcpy(&vl, p + 4, 4);
            if (k == 0) {
                key0 = p + 9;
                kl0 = kl;
            } else if (kl != kl0 || memcmp(p + 9, key0, kl) != 0) {
                snprintf(err, errlen,
                         "a lookup in %s in %zu groups of columns found other keys in one group",
                         t->qname, ngroups);
                cls = ERRCLASS_TRANSIENT;
                break;
            }
            deleted = deleted || p[8];
            buf_append(&row, p + 9 + kl, vl);
            pos[k] += 9 + (size_t)kl + vl;
        }
        if (cls != ERRCLASS_NONE)
            break;
        if (row.oom || !on_row(cbud, key0, kl0, deleted, row.data, row.len)) {
            snprintf(err, errlen, "out of memory reading stored values of %s", t->qname);
            cls = ERRCLASS_TRANSIENT;
        }
    }
    free(pos);
    *complete = true;
out:
    for (size_t k = 0; g && k < ngroups; k++)
        buf_free(&g[k].data);
    free(g);
    free(gstart);
    buf_free(&row);
    return cls;
}

static errclass_t
io_lookup(void *ud, const chtable_t *t, const size_t *cols, size_t ncols, const unsigned char *keys,
          size_t keys_len, size_t nkeys, uint64_t below, size_t budget, apply_row_fn on_row,
          void *cbud, bool *complete, char *err, size_t errlen)
{
    (void)nkeys;
    applyio_t *io = ud;
    errclass_t cls = applyio_synced(io, t->def->target, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    buf_t sql;
    buf_init(&sql);
    lookup_sql(t, cols, ncols, &sql);
    size_t ul = sql.oom ? 0 : url_len((const char *)sql.data, sql.len - 1);
    buf_reset(&sql);
    lookup_sql(t, cols, 0, &sql);
    size_t base = sql.oom ? 0 : url_len((const char *)sql.data, sql.len - 1);
    bool oom = sql.oom;
    buf_free(&sql);
    if (oom) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    if (ul <= LOOKUP_URL_MAX || ncols < 2)
        return lookup_once(io, t, cols, ncols, keys, keys_len, below, budget, on_row, cbud,
                           complete, err, errlen);
    return lookup_split(io, t, cols, ncols, keys, keys_len, below, base, on_row, cbud, complete,
                        err, errlen);
}

/* ---- the source's current rows ------------------------------------------------------------- */

/* Appends s as an element of a PostgreSQL array literal. */
static void
array_elem(buf_t *b, const unsigned char *s, size_t n)
{
    buf_byte(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            buf_byte(b, '\\');
        buf_byte(b, s[i]);
    }
    buf_byte(b, '"');
}

static errclass_t
io_source_lookup(void *ud, const chtable_t *t, const size_t *cols, size_t ncols,
                 const unsigned char *keys, size_t keys_len, size_t nkeys, apply_row_fn on_row,
                 void *cbud, char *err, size_t errlen)
{
    applyio_t *io = ud;
    errclass_t cls = io->ensure_pg(io->ensure_ud, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    PGconn *pg = *io->pg;
    const Pgferry__State__TableDef *d = t->def;
    size_t nk = t->nkeys;
    buf_t sql, vals, keyb, *arr = calloc(nk, sizeof(buf_t));
    buf_init(&sql);
    buf_init(&vals);
    buf_init(&keyb);
    const char **params = calloc(nk, sizeof(*params));
    PGresult *res = NULL;
    cls = ERRCLASS_TRANSIENT;
    if (!arr || !params) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* one text array per key column, element i of each from key tuple i */
    for (size_t k = 0; k < nk; k++)
        buf_byte(&arr[k], '{');
    size_t pos = 0;
    for (size_t i = 0; i < nkeys; i++) {
        for (size_t k = 0; k < nk; k++) {
            buf_reset(&keyb);
            bool isnull;
            size_t n =
                typemap_text(&t->tm[t->keycols[k]], keys + pos, keys_len - pos, &keyb, &isnull);
            if (n == 0 || isnull) {
                snprintf(err, errlen, "internal error: malformed key of %s", t->qname);
                cls = ERRCLASS_FATAL;
                goto out;
            }
            pos += n;
            if (i)
                buf_byte(&arr[k], ',');
            array_elem(&arr[k], keyb.data, keyb.len);
        }
    }
    char *rel = NULL;
    {
        char *qs = PQescapeIdentifier(pg, d->schema, strlen(d->schema));
        char *qn = PQescapeIdentifier(pg, d->name, strlen(d->name));
        if (qs && qn) {
            size_t l = strlen(qs) + strlen(qn) + 2;
            rel = malloc(l);
            if (rel)
                snprintf(rel, l, "%s.%s", qs, qn);
        }
        PQfreemem(qs);
        PQfreemem(qn);
    }
    if (!rel) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    buf_append(&sql, "SELECT ", 7);
    buf_t tuple;
    buf_init(&tuple);
    for (size_t k = 0; k < nk; k++) {
        const char *c = d->columns[t->keycols[k]]->name;
        char *qc = PQescapeIdentifier(pg, c, strlen(c));
        if (qc) {
            buf_append(&tuple, k ? ", " : "", k ? 2 : 0);
            buf_append(&tuple, qc, strlen(qc));
        }
        PQfreemem(qc);
    }
    buf_append(&sql, tuple.data, tuple.len);
    for (size_t i = 0; i < ncols; i++) {
        const char *c = d->columns[cols[i]]->name;
        char *qc = PQescapeIdentifier(pg, c, strlen(c));
        if (qc) {
            buf_append(&sql, ", ", 2);
            buf_append(&sql, qc, strlen(qc));
        }
        PQfreemem(qc);
    }
    buf_append(&sql, " FROM ", 6);
    buf_append(&sql, rel, strlen(rel));
    free(rel);
    buf_append(&sql, " WHERE (", 8);
    buf_append(&sql, tuple.data, tuple.len);
    buf_append(&sql, ") IN (SELECT * FROM unnest(", 27);
    buf_free(&tuple);
    for (size_t k = 0; k < nk; k++) {
        char ph[32];
        int l = snprintf(ph, sizeof(ph), "%s$%zu::", k ? ", " : "", k + 1);
        buf_append(&sql, ph, (size_t)l);
        const char *ty = d->columns[t->keycols[k]]->pg_type;
        buf_append(&sql, ty, strlen(ty));
        buf_append(&sql, "[]", 2);
        buf_append(&arr[k], "}", 2);
        params[k] = (const char *)arr[k].data;
    }
    buf_append(&sql, "))", 3);
    for (size_t k = 0; k < nk; k++) {
        if (arr[k].oom)
            sql.oom = true;
    }
    if (sql.oom) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    res = pgconn_query(pg, (const char *)sql.data, (int)nk, params, &cls, err, errlen);
    if (!res)
        goto out;
    for (int row = 0; row < PQntuples(res); row++) {
        char e[256];
        buf_reset(&keyb);
        buf_reset(&vals);
        bool ok = true;
        for (size_t k = 0; ok && k < nk; k++)
            ok = typemap_encode(&t->tm[t->keycols[k]], PQgetvalue(res, row, (int)k),
                                (size_t)PQgetlength(res, row, (int)k), &keyb, e, sizeof(e));
        for (size_t i = 0; ok && i < ncols; i++) {
            int f = (int)(nk + i);
            ok = PQgetisnull(res, row, f)
                     ? typemap_encode(&t->tm[cols[i]], NULL, 0, &vals, e, sizeof(e))
                     : typemap_encode(&t->tm[cols[i]], PQgetvalue(res, row, f),
                                      (size_t)PQgetlength(res, row, f), &vals, e, sizeof(e));
        }
        if (!ok) {
            snprintf(err, errlen, "%s.%s (current row at the source): %s", d->schema, d->name, e);
            cls = ERRCLASS_FATAL;
            goto out;
        }
        if (keyb.oom || vals.oom ||
            !on_row(cbud, keyb.data, keyb.len, false, vals.data, vals.len)) {
            snprintf(err, errlen, "out of memory");
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
    }
    log_info("%s: %d of %zu row(s) with unchanged TOAST values read from the source's current "
             "rows (ClickHouse had none for them)",
             t->qname, PQntuples(res), nkeys);
    cls = ERRCLASS_NONE;
out:
    PQclear(res);
    for (size_t k = 0; arr && k < nk; k++)
        buf_free(&arr[k]);
    free(arr);
    free(params);
    buf_free(&sql);
    buf_free(&vals);
    buf_free(&keyb);
    return cls;
}

/* ---- truncates ------------------------------------------------------------------------------ */

static errclass_t
merges_cmd(ch_client_t *ch, const char *what, const char *db, const char *table, char *err,
           size_t errlen)
{
    char q[300], qt[300], sql[800];
    chsql_ident(db, q, sizeof(q));
    chsql_ident(table, qt, sizeof(qt));
    snprintf(sql, sizeof(sql), "SYSTEM %s MERGES %s.%s", what, q, qt);
    return ch_client_query(ch, sql, NULL, err, errlen);
}

errclass_t
applyio_start_merges(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *table,
                     char *err, size_t errlen)
{
    if (chcluster_on(cl))
        return ERRCLASS_NONE; /* a cluster's truncate never stops them */
    return merges_cmd(ch, "START", db, table, err, errlen);
}

errclass_t
applyio_truncate(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *table,
                 char *err, size_t errlen)
{
    if (chcluster_on(cl)) {
        /* A replicated table's TRUNCATE is passed to the replicas' leader with the server's
         * own credentials, which a secured cluster refuses; a mutation is replicated through
         * ZooKeeper instead. It applies to every part older than itself (rows written after
         * it stay), on every replica, including one that is down now when it comes back. */
        char data[300], q[300], qn[300], sql[1000];
        chcluster_data_table(cl, table, data, sizeof(data));
        chsql_ident(db, q, sizeof(q));
        chsql_ident(data, qn, sizeof(qn));
        snprintf(sql, sizeof(sql), "ALTER TABLE %s.%s%s DELETE WHERE 1", q, qn, cl->on);
        return ch_client_query(ch, sql, NULL, err, errlen);
    }
    errclass_t cls = merges_cmd(ch, "STOP", db, table, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    char qdb[300], qt[300], sql[1000];
    chsql_string(db, qdb, sizeof(qdb));
    chsql_string(table, qt, sizeof(qt));
    snprintf(sql, sizeof(sql),
             "SELECT count() FROM system.merges WHERE database = %s AND table = %s", qdb, qt);
    for (int i = 0;; i++) {
        char *out = NULL;
        cls = ch_client_query(ch, sql, &out, err, errlen);
        bool running = cls == ERRCLASS_NONE && out && atoi(out) > 0;
        free(out);
        if (cls != ERRCLASS_NONE)
            break;
        if (!running)
            break;
        if (i == 6000) { /* ten minutes */
            snprintf(err, errlen, "merges of %s.%s did not end within 10 minutes", db, table);
            cls = ERRCLASS_TRANSIENT;
            break;
        }
        usleep(100 * 1000);
    }
    if (cls == ERRCLASS_NONE) {
        char q[300], qn[300];
        chsql_ident(db, q, sizeof(q));
        chsql_ident(table, qn, sizeof(qn));
        snprintf(sql, sizeof(sql), "TRUNCATE TABLE %s.%s", q, qn);
        cls = ch_client_query(ch, sql, NULL, err, errlen);
        /* TRUNCATE takes the parts out of the table in memory only: parts it could not delete
         * from disk at once (the sources of a recent merge, kept for 8 minutes; every part
         * when the server is shutting down) are loaded again at the next start. A mutation is
         * kept on disk and applies to every part older than itself, including such parts when
         * they come back; made after the TRUNCATE, it finds no part to rewrite now. */
        if (cls == ERRCLASS_NONE) {
            snprintf(sql, sizeof(sql), "ALTER TABLE %s.%s DELETE WHERE 1", q, qn);
            cls = ch_client_query(ch, sql, NULL, err, errlen);
        }
    }
    char e2[512];
    errclass_t started = merges_cmd(ch, "START", db, table, e2, sizeof(e2));
    if (cls == ERRCLASS_NONE && started != ERRCLASS_NONE) {
        snprintf(err, errlen, "%s", e2);
        cls = started;
    }
    return cls;
}

static errclass_t
io_truncate(void *ud, const chtable_t *t, char *err, size_t errlen)
{
    applyio_t *io = ud;
    errclass_t cls = applyio_truncate(io->ch, io->cl, io->db, t->def->target, err, errlen);
    if (cls == ERRCLASS_NONE)
        log_info("truncated %s (TRUNCATE at the source)", t->qname);
    return cls;
}

static errclass_t
io_truncate_partition(void *ud, const chtable_t *t, uint32_t partition, uint64_t version, char *err,
                      size_t errlen)
{
    applyio_t *io = ud;
    if (!t->partition) {
        snprintf(err, errlen,
                 "TRUNCATE of one partition of %s.%s: its destination table %s was created "
                 "without the %s column, so the partition's rows cannot be told apart; resync "
                 "the pipe",
                 t->def->schema, t->def->name, t->qname, META_PARTITION);
        return ERRCLASS_FATAL;
    }
    buf_t sql, keys;
    buf_init(&sql);
    buf_init(&keys);
    chtable_key_tuple(t, &keys);
    /* (a, b) -> a, b */
    char kl[4096];
    snprintf(kl, sizeof(kl), "%.*s", (int)(keys.len - 2), (char *)keys.data + 1);
    char head[8192];
    int n = snprintf(head, sizeof(head),
                     "INSERT INTO %s (%s, `" META_VERSION "`, `" META_DELETED "`, `" META_PARTITION
                     "`) SELECT %s, toUInt64(%llu), toUInt8(1), toUInt32(%u) FROM %s FINAL "
                     "WHERE `" META_PARTITION "` = %u AND `" META_DELETED "` = 0",
                     t->qname, kl, kl, (unsigned long long)version, partition, t->qname, partition);
    buf_free(&keys);
    errclass_t cls = applyio_synced(io, t->def->target, err, errlen);
    if (cls != ERRCLASS_NONE) {
        buf_free(&sql);
        return cls;
    }
    if (n < 0 || (size_t)n >= sizeof(head)) {
        snprintf(err, errlen, "key of %s too long for a partition truncate", t->qname);
        cls = ERRCLASS_FATAL;
    } else {
        cls = ch_client_query(io->ch, head, NULL, err, errlen);
    }
    if (cls == ERRCLASS_NONE)
        log_info("%s: rows of partition %u deleted (TRUNCATE of that partition at the source)",
                 t->qname, partition);
    buf_free(&sql);
    return cls;
}

static errclass_t
io_max_version(void *ud, const chtable_t *t, uint64_t *version, char *err, size_t errlen)
{
    applyio_t *io = ud;
    /* On a cluster, 0 (nothing is skipped: a replay applies its changes again, as before the
     * skip existed). The highest version is only known after a sync of the replica, and that
     * waits for parts only a replica that is down has: a CDC worker started after a replica
     * died would stall until it is back, where the stream must go on through the others. */
    if (io->cl && chcluster_on(io->cl)) {
        *version = 0;
        return ERRCLASS_NONE;
    }
    errclass_t cls = applyio_synced(io, t->def->target, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    char sql[1200];
    snprintf(sql, sizeof(sql), "SELECT max(`" META_VERSION "`) FROM %s", t->qname);
    char *out = NULL;
    cls = ch_client_query(io->ch, sql, &out, err, errlen);
    if (cls == ERRCLASS_NONE)
        *version = out ? strtoull(out, NULL, 10) : 0;
    free(out);
    return gone_is_fatal(io, t, cls, err, errlen);
}

const apply_ops_t applyio_ops = {
    .insert = io_insert,
    .lookup = io_lookup,
    .source_lookup = io_source_lookup,
    .truncate = io_truncate,
    .truncate_partition = io_truncate_partition,
    .max_version = io_max_version,
};
