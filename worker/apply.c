/* apply: pending rows per destination table, one per key, versions, TOAST resolution. */
#include "apply.h"
#include "log.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_ENTRY UINT32_MAX
#define EST_INITIAL 2048.0 /* bytes of one looked-up value before any was seen */
#define EST_MIN 64.0

/* One key's pending row. Its bytes live in the table's arena: the key (RowBinary of the key
 * columns in key order), then the row (every definition column; a column still to be looked up
 * holds the "absent" encoding). */
typedef struct {
    size_t off;
    uint32_t key_len, row_len;
    uint64_t version;
    uint32_t partition;
    uint32_t hash;
    int32_t pend; /* into pend[], -1: every value is known */
    bool deleted;
    bool done; /* written out by the TOAST resolution of this flush */
} entry_t;

/* Columns of an entry whose stored values must be looked up, and under which key. */
typedef struct {
    size_t src_off; /* arena */
    uint32_t src_len, src_hash;
    size_t cols_off; /* into pcols (uint32_t each) */
    uint32_t ncols;  /* 0: cancelled (its entry was replaced) */
    double est;      /* bytes counted for it in apply->pend_bytes */
    uint64_t below;  /* the stored row below this version (0: the newest) */
} pend_t;

typedef struct {
    const chtable_t *ct;
    buf_t arena;
    entry_t *ents;
    size_t nents, capents;
    uint32_t *index; /* open addressing over ents by key hash; NO_ENTRY = free */
    size_t index_cap;
    pend_t *pend;
    size_t npend, cappend;
    buf_t pcols;
    size_t garbage;      /* arena bytes of replaced rows */
    size_t pending_vals; /* values still to be looked up */
    double est;          /* bytes of one looked-up value (running estimate) */
    uint64_t bytes_out;
    /* the highest version ClickHouse held when this worker first saw the table: changes below
     * it are there already (a replay), the transaction at it may be there in part */
    uint64_t applied;
    bool applied_known, skipping;
    /* 64-bit hashes of the keys this worker inserted at version `applied` (open addressing,
     * 0 = free): their newest stored row is this worker's */
    uint64_t *seen;
    size_t nseen, capseen;
} atable_t;

struct apply {
    const apply_ops_t *ops;
    void *ud;
    size_t chunk;
    atable_t *tables;
    size_t ntables, captables;
    size_t rows;       /* pending rows, all tables */
    size_t arena;      /* arena bytes, all tables */
    double pend_bytes; /* estimated bytes of the values still to be looked up */
    size_t *offs;      /* scratch: column offsets of a row */
    size_t capoffs;
    buf_t kold, knew; /* scratch: keys of the change at hand */
    uint32_t *lookup; /* scratch: columns of the change at hand to be looked up */
    apply_stats_t st;
};

/* ---- keys and the index -------------------------------------------------------------------- */

static uint32_t
hash_bytes(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static uint64_t
hash64(const unsigned char *p, size_t n)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211u;
    }
    return h ? h : 1;
}

static bool
seen_has(const atable_t *t, const unsigned char *key, size_t len)
{
    if (!t->capseen)
        return false;
    uint64_t h = hash64(key, len);
    for (size_t j = h & (t->capseen - 1); t->seen[j]; j = (j + 1) & (t->capseen - 1)) {
        if (t->seen[j] == h)
            return true;
    }
    return false;
}

static bool
seen_add(atable_t *t, const unsigned char *key, size_t len)
{
    if ((t->nseen + 1) * 2 > t->capseen) {
        size_t cap = t->capseen ? t->capseen * 2 : 256;
        uint64_t *n = calloc(cap, sizeof(*n));
        if (!n)
            return false;
        for (size_t i = 0; i < t->capseen; i++) {
            if (!t->seen[i])
                continue;
            size_t j = t->seen[i] & (cap - 1);
            while (n[j])
                j = (j + 1) & (cap - 1);
            n[j] = t->seen[i];
        }
        free(t->seen);
        t->seen = n;
        t->capseen = cap;
    }
    uint64_t h = hash64(key, len);
    size_t j = h & (t->capseen - 1);
    for (; t->seen[j]; j = (j + 1) & (t->capseen - 1)) {
        if (t->seen[j] == h)
            return true;
    }
    t->seen[j] = h;
    t->nseen++;
    return true;
}

static uint32_t
find(const atable_t *t, const unsigned char *key, size_t len, uint32_t h)
{
    if (!t->index_cap)
        return NO_ENTRY;
    size_t mask = t->index_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t e = t->index[i];
        if (e == NO_ENTRY)
            return NO_ENTRY;
        const entry_t *en = &t->ents[e];
        if (en->hash == h && en->key_len == len && memcmp(t->arena.data + en->off, key, len) == 0)
            return e;
    }
}

static void
index_put(atable_t *t, uint32_t e)
{
    size_t mask = t->index_cap - 1;
    size_t i = t->ents[e].hash & mask;
    while (t->index[i] != NO_ENTRY)
        i = (i + 1) & mask;
    t->index[i] = e;
}

static bool
index_grow(atable_t *t)
{
    if ((t->nents + 1) * 2 <= t->index_cap)
        return true;
    size_t cap = t->index_cap ? t->index_cap * 2 : 1024;
    uint32_t *ix = malloc(cap * sizeof(*ix));
    if (!ix)
        return false;
    memset(ix, 0xff, cap * sizeof(*ix));
    free(t->index);
    t->index = ix;
    t->index_cap = cap;
    for (size_t e = 0; e < t->nents; e++)
        index_put(t, (uint32_t)e);
    return true;
}

/* Encodes the key columns of vals (key order) into out. */
static errclass_t
encode_key(const chtable_t *ct, const pgo_value_t *const *vals, buf_t *out, char *err,
           size_t errlen)
{
    buf_reset(out);
    for (size_t k = 0; k < ct->nkeys; k++) {
        size_t c = ct->keycols[k];
        const pgo_value_t *v = vals[c];
        if (!v || v->kind != 't') {
            snprintf(err, errlen, "a change of %s.%s came without the value of key column %s (%s)",
                     ct->def->schema, ct->def->name, ct->def->columns[c]->name,
                     v && v->kind == 'u' ? "stored out of line and unchanged" : "missing");
            return ERRCLASS_FATAL;
        }
        char e[256];
        if (!typemap_encode(&ct->tm[c], v->data, v->len, out, e, sizeof(e))) {
            snprintf(err, errlen, "key column %s of %s.%s: %s", ct->def->columns[c]->name,
                     ct->def->schema, ct->def->name, e);
            return ERRCLASS_FATAL;
        }
    }
    if (out->oom) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    return ERRCLASS_NONE;
}

/* Offsets of every column of a row into a->offs (offs[ncols] = end); false if malformed. */
static bool
row_offsets(apply_t *a, const chtable_t *ct, const unsigned char *row, size_t len)
{
    if (a->capoffs < ct->ncols + 1) {
        size_t *o = realloc(a->offs, (ct->ncols + 1) * sizeof(*o));
        if (!o)
            return false;
        a->offs = o;
        a->capoffs = ct->ncols + 1;
    }
    size_t pos = 0;
    for (size_t i = 0; i < ct->ncols; i++) {
        a->offs[i] = pos;
        size_t n = typemap_value_size(&ct->tm[i], row + pos, len - pos);
        if (n == 0)
            return false;
        pos += n;
    }
    a->offs[ct->ncols] = pos;
    return pos == len;
}

/* Appends len bytes that are themselves in the arena (at off) to the arena. */
static void
arena_copy(buf_t *arena, size_t off, size_t len)
{
    if (!len || !buf_reserve(arena, len))
        return;
    memcpy(arena->data + arena->len, arena->data + off, len);
    arena->len += len;
}

static const uint32_t *
pend_cols(const atable_t *t, const pend_t *p)
{
    return (const uint32_t *)(t->pcols.data + p->cols_off);
}

static bool
pend_has(const atable_t *t, const pend_t *p, uint32_t col)
{
    const uint32_t *c = pend_cols(t, p);
    for (uint32_t i = 0; i < p->ncols; i++) {
        if (c[i] == col)
            return true;
    }
    return false;
}

static void
pend_cancel(apply_t *a, atable_t *t, pend_t *p)
{
    t->pending_vals -= p->ncols;
    a->pend_bytes -= p->est;
    p->ncols = 0;
    p->est = 0;
}

/* ---- the table's pending rows -------------------------------------------------------------- */

static void
table_reset(apply_t *a, atable_t *t)
{
    a->rows -= t->nents;
    a->arena -= t->arena.len;
    for (size_t i = 0; i < t->npend; i++)
        a->pend_bytes -= t->pend[i].est;
    if (a->pend_bytes < 0.5)
        a->pend_bytes = 0;
    buf_reset(&t->arena);
    buf_reset(&t->pcols);
    t->nents = 0;
    t->npend = 0;
    t->garbage = 0;
    t->pending_vals = 0;
    if (t->index)
        memset(t->index, 0xff, t->index_cap * sizeof(*t->index));
}

static void
table_free(atable_t *t)
{
    buf_free(&t->arena);
    buf_free(&t->pcols);
    free(t->ents);
    free(t->index);
    free(t->pend);
    free(t->seen);
    memset(t, 0, sizeof(*t));
}

/* Makes the row at key_off (key_len key bytes, then row_len row bytes) the pending row of its
 * key, replacing an earlier one. */
static errclass_t
put_entry(apply_t *a, atable_t *t, size_t key_off, size_t key_len, size_t row_len, uint64_t version,
          uint32_t partition, bool deleted, int32_t pend, char *err, size_t errlen)
{
    if (t->arena.oom || t->pcols.oom || !index_grow(t)) {
        snprintf(err, errlen, "out of memory buffering changes for %s", t->ct->qname);
        return ERRCLASS_TRANSIENT;
    }
    uint32_t h = hash_bytes(t->arena.data + key_off, key_len);
    uint32_t e = find(t, t->arena.data + key_off, key_len, h);
    entry_t *en;
    if (e != NO_ENTRY) {
        en = &t->ents[e];
        t->garbage += en->key_len + en->row_len;
        if (en->pend >= 0)
            pend_cancel(a, t, &t->pend[en->pend]);
        a->st.collapsed++;
    } else {
        if (t->nents == t->capents) {
            size_t cap = t->capents ? t->capents * 2 : 256;
            entry_t *n = realloc(t->ents, cap * sizeof(*n));
            if (!n) {
                snprintf(err, errlen, "out of memory buffering changes for %s", t->ct->qname);
                return ERRCLASS_TRANSIENT;
            }
            t->ents = n;
            t->capents = cap;
        }
        e = (uint32_t)t->nents++;
        en = &t->ents[e];
        en->hash = h;
        index_put(t, e);
        a->rows++;
    }
    en->off = key_off;
    en->key_len = (uint32_t)key_len;
    en->row_len = (uint32_t)row_len;
    en->version = version;
    en->partition = partition;
    en->deleted = deleted;
    en->done = false;
    en->pend = pend;
    return ERRCLASS_NONE;
}

/* Records that columns cols of a row are to be looked up under key src (src_len bytes, at
 * src_off in the arena when src is NULL). Returns the pend index or -1 on out of memory. */
static int32_t
add_pend(apply_t *a, atable_t *t, const unsigned char *src, size_t src_off, size_t src_len,
         const uint32_t *cols, uint32_t ncols, uint64_t below)
{
    if (t->npend == t->cappend) {
        size_t cap = t->cappend ? t->cappend * 2 : 64;
        pend_t *n = realloc(t->pend, cap * sizeof(*n));
        if (!n)
            return -1;
        t->pend = n;
        t->cappend = cap;
    }
    pend_t *p = &t->pend[t->npend];
    p->src_off = t->arena.len;
    if (src)
        buf_append(&t->arena, src, src_len);
    else
        arena_copy(&t->arena, src_off, src_len);
    p->src_len = (uint32_t)src_len;
    p->src_hash = hash_bytes(t->arena.data + p->src_off, src_len);
    p->cols_off = t->pcols.len;
    buf_append(&t->pcols, cols, ncols * sizeof(*cols));
    if (t->arena.oom || t->pcols.oom)
        return -1;
    p->ncols = ncols;
    p->below = below;
    p->est = t->est * ncols;
    t->pending_vals += ncols;
    a->pend_bytes += p->est;
    return (int32_t)t->npend++;
}

static errclass_t relieve(apply_t *a, char *err, size_t errlen);

/* ---- changes ------------------------------------------------------------------------------- */

static errclass_t
encode_value(const chtable_t *ct, size_t i, const pgo_value_t *v, buf_t *out, char *err,
             size_t errlen)
{
    char e[256];
    bool ok;
    if (!v || v->kind == 'n') {
        ok = typemap_encode(&ct->tm[i], NULL, 0, out, e, sizeof(e));
    } else if (v->kind == 't') {
        ok = typemap_encode(&ct->tm[i], v->data, v->len, out, e, sizeof(e));
    } else {
        snprintf(e, sizeof(e), "a value of kind '%c' where a value was expected", v->kind);
        ok = false;
    }
    if (!ok) {
        snprintf(err, errlen, "%s.%s column %s: %s", ct->def->schema, ct->def->name,
                 ct->def->columns[i]->name, e);
        return ERRCLASS_FATAL;
    }
    return ERRCLASS_NONE;
}

/* The end of a change: the arena grew from `before`; keep the totals and the memory bound. */
static errclass_t
changed(apply_t *a, atable_t *t, size_t before, errclass_t cls, char *err, size_t errlen)
{
    a->arena += t->arena.len - before;
    if (cls != ERRCLASS_NONE)
        return cls;
    return relieve(a, err, errlen);
}

/* Whether a change at version is in ClickHouse already: versions below the highest one stored
 * when this worker first saw the table (read then). A table's rows reach ClickHouse in stream
 * order (its flushes insert all its pending rows, in order, and a failed insert ends the
 * worker), so a stored row of a later transaction means every earlier change of the table is
 * stored too; the transaction at that version may be stored only in part (its pieces) and is
 * applied again. */
static errclass_t
replayed(apply_t *a, atable_t *t, uint64_t version, bool *skip, char *err, size_t errlen)
{
    *skip = false;
    if (!t->applied_known) {
        errclass_t cls = a->ops->max_version(a->ud, t->ct, &t->applied, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        t->applied_known = true;
    }
    if (version > t->applied && t->seen) {
        free(t->seen); /* past the transaction applied again */
        t->seen = NULL;
        t->nseen = t->capseen = 0;
    }
    if (version >= t->applied) {
        if (t->skipping) {
            t->skipping = false;
            log_info("%s: the replay reached the changes ClickHouse does not have all of",
                     t->ct->qname);
        }
        return ERRCLASS_NONE;
    }
    if (!t->skipping)
        log_info("%s: changes below version %llu are in ClickHouse already (a replay): skipped",
                 t->ct->qname, (unsigned long long)t->applied);
    t->skipping = true;
    a->st.replayed++;
    *skip = true;
    return ERRCLASS_NONE;
}

errclass_t
apply_insert(apply_t *a, int table, const pgo_value_t *const *newv, uint64_t version,
             uint32_t partition, char *err, size_t errlen)
{
    atable_t *t = &a->tables[table];
    const chtable_t *ct = t->ct;
    bool skip;
    errclass_t cls = replayed(a, t, version, &skip, err, errlen);
    if (cls != ERRCLASS_NONE || skip)
        return cls;
    cls = encode_key(ct, newv, &a->knew, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    size_t start = t->arena.len;
    buf_append(&t->arena, a->knew.data, a->knew.len);
    for (size_t i = 0; i < ct->ncols; i++) {
        if ((cls = encode_value(ct, i, newv[i], &t->arena, err, errlen)) != ERRCLASS_NONE) {
            t->arena.len = start;
            return cls;
        }
    }
    cls = put_entry(a, t, start, a->knew.len, t->arena.len - start - a->knew.len, version,
                    partition, false, -1, err, errlen);
    return changed(a, t, start, cls, err, errlen);
}

/* A delete row (tombstone) for the key in kbuf: key columns set, the rest absent. */
static errclass_t
put_tombstone(apply_t *a, atable_t *t, const pgo_value_t *const *oldv, const buf_t *kbuf,
              uint64_t version, uint32_t partition, char *err, size_t errlen)
{
    const chtable_t *ct = t->ct;
    size_t start = t->arena.len;
    buf_append(&t->arena, kbuf->data, kbuf->len);
    for (size_t i = 0; i < ct->ncols; i++) {
        if (ct->def->columns[i]->key_position) {
            errclass_t cls = encode_value(ct, i, oldv[i], &t->arena, err, errlen);
            if (cls != ERRCLASS_NONE) {
                t->arena.len = start;
                return cls;
            }
        } else {
            typemap_encode_absent(&ct->tm[i], &t->arena);
        }
    }
    return put_entry(a, t, start, kbuf->len, t->arena.len - start - kbuf->len, version, partition,
                     true, -1, err, errlen);
}

errclass_t
apply_delete(apply_t *a, int table, const pgo_value_t *const *oldv, uint64_t version,
             uint32_t partition, char *err, size_t errlen)
{
    atable_t *t = &a->tables[table];
    bool skip;
    errclass_t cls = replayed(a, t, version, &skip, err, errlen);
    if (cls != ERRCLASS_NONE || skip)
        return cls;
    size_t before = t->arena.len;
    cls = encode_key(t->ct, oldv, &a->kold, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = put_tombstone(a, t, oldv, &a->kold, version, partition, err, errlen);
    return changed(a, t, before, cls, err, errlen);
}

errclass_t
apply_update(apply_t *a, int table, const pgo_value_t *const *oldv, bool old_full,
             const pgo_value_t *const *newv, uint64_t version, uint32_t partition, char *err,
             size_t errlen)
{
    atable_t *t = &a->tables[table];
    const chtable_t *ct = t->ct;
    bool skip;
    errclass_t cls = replayed(a, t, version, &skip, err, errlen);
    if (cls != ERRCLASS_NONE || skip)
        return cls;
    if ((cls = encode_key(ct, newv, &a->knew, err, errlen)) != ERRCLASS_NONE)
        return cls;
    /* the key the row had before: unchanged TOAST values are what was stored under it */
    const buf_t *kold = &a->knew;
    if (oldv) {
        if ((cls = encode_key(ct, oldv, &a->kold, err, errlen)) != ERRCLASS_NONE)
            return cls;
        kold = &a->kold;
    }
    bool key_changed = kold != &a->knew && (kold->len != a->knew.len ||
                                            memcmp(kold->data, a->knew.data, kold->len) != 0);
    /* the old key written earlier in this flush: its row holds the values to keep */
    uint32_t src = find(t, kold->data, kold->len, hash_bytes(kold->data, kold->len));
    const entry_t *se = src != NO_ENTRY && !t->ents[src].deleted ? &t->ents[src] : NULL;
    if (se && !row_offsets(a, ct, t->arena.data + se->off + se->key_len, se->row_len)) {
        snprintf(err, errlen, "internal error: unreadable pending row of %s", ct->qname);
        return ERRCLASS_FATAL;
    }
    const pend_t *sp = se && se->pend >= 0 && t->pend[se->pend].ncols ? &t->pend[se->pend] : NULL;
    uint32_t nlookup = 0;
    size_t start = t->arena.len;
    buf_append(&t->arena, a->knew.data, a->knew.len);
    for (size_t i = 0; i < ct->ncols; i++) {
        const pgo_value_t *v = newv[i];
        if (!v || v->kind != 'u') {
            cls = encode_value(ct, i, v, &t->arena, err, errlen);
        } else if (old_full && oldv && oldv[i] && oldv[i]->kind != 'u') {
            cls = encode_value(ct, i, oldv[i], &t->arena, err, errlen);
        } else if (se && !(sp && pend_has(t, sp, (uint32_t)i))) {
            arena_copy(&t->arena, se->off + se->key_len + a->offs[i], a->offs[i + 1] - a->offs[i]);
            a->st.from_batch++;
        } else {
            typemap_encode_absent(&ct->tm[i], &t->arena);
            a->lookup[nlookup++] = (uint32_t)i;
        }
        if (cls != ERRCLASS_NONE) {
            t->arena.len = start;
            return cls;
        }
    }
    size_t row_len = t->arena.len - start - a->knew.len;
    int32_t pend = -1;
    if (nlookup) {
        /* stored in ClickHouse under the old key, or under the key the old key's own pending
         * row waits on. ClickHouse holds nothing of later changes, except in the transaction
         * applied again (version == applied): there rows of its own later changes may be
         * stored, so the row below its version, unless this worker stored the key in it */
        uint64_t below = version == t->applied && !seen_has(t, kold->data, kold->len) ? version : 0;
        pend = sp ? add_pend(a, t, NULL, sp->src_off, sp->src_len, a->lookup, nlookup, sp->below)
                  : add_pend(a, t, kold->data, 0, kold->len, a->lookup, nlookup, below);
        if (pend < 0) {
            snprintf(err, errlen, "out of memory buffering changes for %s", ct->qname);
            return changed(a, t, start, ERRCLASS_TRANSIENT, err, errlen);
        }
    }
    cls =
        put_entry(a, t, start, a->knew.len, row_len, version, partition, false, pend, err, errlen);
    if (cls == ERRCLASS_NONE && key_changed) /* the old key: a delete row, same version */
        cls = put_tombstone(a, t, oldv, kold, version, partition, err, errlen);
    return changed(a, t, start, cls, err, errlen);
}

/* ---- inserting ----------------------------------------------------------------------------- */

/* The body of one insert: the arena's rows not written otherwise, then extra buffers. */
typedef struct {
    atable_t *t;
    size_t ent;
    size_t pos;
    unsigned char trailer[16];
    size_t trailer_len;
    int phase; /* 0: row bytes, 1: trailer */
    const buf_t *extra[2];
    size_t nextra, xi, xpos;
    uint64_t rows, bytes;
} body_t;

static bool
next_entry(body_t *b)
{
    while (b->ent < b->t->nents) {
        const entry_t *e = &b->t->ents[b->ent];
        if (!e->done && !(e->pend >= 0 && b->t->pend[e->pend].ncols > 0))
            return true;
        b->ent++;
    }
    return false;
}

static size_t
take(char *out, size_t cap, const unsigned char *src, size_t len, size_t *pos)
{
    size_t k = len - *pos < cap ? len - *pos : cap;
    memcpy(out, src + *pos, k);
    *pos += k;
    return k;
}

static long
produce(void *ud, char *out, size_t cap)
{
    body_t *b = ud;
    size_t n = 0;
    while (n < cap) {
        if (next_entry(b)) {
            const entry_t *e = &b->t->ents[b->ent];
            if (b->phase == 0) {
                n += take(out + n, cap - n, b->t->arena.data + e->off + e->key_len, e->row_len,
                          &b->pos);
                if (b->pos < e->row_len)
                    break;
                buf_t tr = {b->trailer, 0, sizeof(b->trailer), false};
                chtable_put_trailer(b->t->ct, &tr, e->version, e->deleted, e->partition);
                b->trailer_len = tr.len;
                b->phase = 1;
                b->pos = 0;
            }
            n += take(out + n, cap - n, b->trailer, b->trailer_len, &b->pos);
            if (b->pos < b->trailer_len)
                break;
            b->phase = 0;
            b->pos = 0;
            b->ent++;
            b->rows++;
            continue;
        }
        if (b->xi >= b->nextra)
            break;
        const buf_t *x = b->extra[b->xi];
        n += take(out + n, cap - n, x->data, x->len, &b->xpos);
        if (b->xpos == x->len) {
            b->xi++;
            b->xpos = 0;
        }
    }
    b->bytes += n;
    return (long)n;
}

/* One INSERT: the arena's rows (when arena_rows) and the rows in x1 and x2. */
static errclass_t
send_insert(apply_t *a, atable_t *t, bool arena_rows, const buf_t *x1, uint64_t x1rows,
            const buf_t *x2, uint64_t x2rows, char *err, size_t errlen)
{
    body_t b;
    memset(&b, 0, sizeof(b));
    b.t = t;
    b.ent = arena_rows ? 0 : t->nents;
    if (x1 && x1->len)
        b.extra[b.nextra++] = x1;
    if (x2 && x2->len)
        b.extra[b.nextra++] = x2;
    if (!next_entry(&b) && b.nextra == 0)
        return ERRCLASS_NONE;
    int64_t t0 = time_mono_ms();
    errclass_t cls = a->ops->insert(a->ud, t->ct, produce, &b, err, errlen);
    a->st.insert_ms += (uint64_t)(time_mono_ms() - t0);
    if (cls != ERRCLASS_NONE)
        return cls;
    a->st.inserts++;
    a->st.rows += b.rows + x1rows + x2rows;
    a->st.bytes += b.bytes;
    t->bytes_out += b.bytes;
    return ERRCLASS_NONE;
}

/* ---- resolving unchanged TOAST values ------------------------------------------------------ */

/* Rows found by one lookup, by key. */
typedef struct {
    buf_t data;     /* per row: u32 key_len, u32 vals_len, u8 deleted, key, vals */
    size_t *offs;   /* row starts */
    uint32_t *slot; /* open addressing: row index + 1, 0 free */
    size_t n, cap, slots;
    size_t bytes;
} found_t;

static void
found_free(found_t *f)
{
    buf_free(&f->data);
    free(f->offs);
    free(f->slot);
    memset(f, 0, sizeof(*f));
}

static bool
on_found(void *ud, const unsigned char *key, size_t key_len, bool deleted,
         const unsigned char *vals, size_t vals_len)
{
    found_t *f = ud;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        size_t *o = realloc(f->offs, cap * sizeof(*o));
        if (!o)
            return false;
        f->offs = o;
        f->cap = cap;
    }
    f->offs[f->n++] = f->data.len;
    uint32_t kl = (uint32_t)key_len, vl = (uint32_t)vals_len;
    unsigned char d = deleted ? 1 : 0;
    buf_append(&f->data, &kl, 4);
    buf_append(&f->data, &vl, 4);
    buf_append(&f->data, &d, 1);
    buf_append(&f->data, key, key_len);
    buf_append(&f->data, vals, vals_len);
    f->bytes += vals_len;
    return !f->data.oom;
}

static bool
found_index(found_t *f)
{
    f->slots = 16;
    while (f->slots < f->n * 2)
        f->slots *= 2;
    f->slot = calloc(f->slots, sizeof(*f->slot));
    if (!f->slot)
        return false;
    for (size_t i = 0; i < f->n; i++) {
        const unsigned char *p = f->data.data + f->offs[i];
        uint32_t kl;
        memcpy(&kl, p, 4);
        size_t j = hash_bytes(p + 9, kl) & (f->slots - 1);
        while (f->slot[j])
            j = (j + 1) & (f->slots - 1);
        f->slot[j] = (uint32_t)i + 1;
    }
    return true;
}

/* The values found for key, or NULL (a delete row counts as not found). */
static const unsigned char *
found_get(const found_t *f, const unsigned char *key, size_t key_len, uint32_t h, size_t *vals_len)
{
    if (!f->slots)
        return NULL;
    for (size_t j = h & (f->slots - 1); f->slot[j]; j = (j + 1) & (f->slots - 1)) {
        const unsigned char *p = f->data.data + f->offs[f->slot[j] - 1];
        uint32_t kl, vl;
        memcpy(&kl, p, 4);
        memcpy(&vl, p + 4, 4);
        if (kl == key_len && memcmp(p + 9, key, key_len) == 0) {
            if (p[8])
                return NULL;
            *vals_len = vl;
            return p + 9 + kl;
        }
    }
    return NULL;
}

/* How many pending rows not yet written wait on each key (to hold back a written row whose key
 * a later lookup still reads: it must not be in ClickHouse before that lookup). */
typedef struct {
    uint32_t *slot; /* pend index + 1, 0 free */
    uint32_t *count;
    size_t cap;
} srcset_t;

static uint32_t *
srcset_count(srcset_t *s, const atable_t *t, const unsigned char *key, size_t len, uint32_t h)
{
    for (size_t j = h & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1)) {
        const pend_t *q = &t->pend[s->slot[j] - 1];
        if (q->src_hash == h && q->src_len == len &&
            memcmp(t->arena.data + q->src_off, key, len) == 0)
            return &s->count[j];
    }
    return NULL;
}

static bool
srcset_init(srcset_t *s, const atable_t *t, const uint32_t *pe, size_t n)
{
    s->cap = 16;
    while (s->cap < n * 2)
        s->cap *= 2;
    s->slot = calloc(s->cap, sizeof(*s->slot));
    s->count = calloc(s->cap, sizeof(*s->count));
    if (!s->slot || !s->count)
        return false;
    for (size_t i = 0; i < n; i++) {
        int32_t pi = t->ents[pe[i]].pend;
        const pend_t *p = &t->pend[pi];
        uint32_t *c = srcset_count(s, t, t->arena.data + p->src_off, p->src_len, p->src_hash);
        if (c) {
            (*c)++;
            continue;
        }
        size_t j = p->src_hash & (s->cap - 1);
        while (s->slot[j])
            j = (j + 1) & (s->cap - 1);
        s->slot[j] = (uint32_t)pi + 1;
        s->count[j] = 1;
    }
    return true;
}

/* Writes entry e's row into out with its pending columns from vals (the values of the union
 * columns ucols, RowBinary, in order); vals NULL leaves them absent. */
static bool
materialize(apply_t *a, atable_t *t, const entry_t *e, const uint32_t *ucols, size_t nucols,
            const unsigned char *vals, size_t vals_len, buf_t *out)
{
    const chtable_t *ct = t->ct;
    const unsigned char *row = t->arena.data + e->off + e->key_len;
    if (!row_offsets(a, ct, row, e->row_len))
        return false;
    const pend_t *p = &t->pend[e->pend];
    size_t vpos = 0, u = 0;
    for (size_t i = 0; i < ct->ncols; i++) {
        const unsigned char *v = NULL;
        size_t vl = 0;
        while (vals && u < nucols && ucols[u] < i) {
            size_t n = typemap_value_size(&ct->tm[ucols[u]], vals + vpos, vals_len - vpos);
            if (n == 0)
                return false;
            vpos += n;
            u++;
        }
        if (vals && u < nucols && ucols[u] == i) {
            v = vals + vpos;
            vl = typemap_value_size(&ct->tm[i], v, vals_len - vpos);
            if (vl == 0)
                return false;
        }
        if (v && pend_has(t, p, (uint32_t)i))
            buf_append(out, v, vl);
        else
            buf_append(out, row + a->offs[i], a->offs[i + 1] - a->offs[i]);
    }
    chtable_put_trailer(ct, out, e->version, e->deleted, e->partition);
    return !out->oom;
}

/* Writes entry e as a delete row of its key (key columns set, the others absent). */
static bool
materialize_deleted(apply_t *a, atable_t *t, const entry_t *e, buf_t *out)
{
    const chtable_t *ct = t->ct;
    const unsigned char *row = t->arena.data + e->off + e->key_len;
    if (!row_offsets(a, ct, row, e->row_len))
        return false;
    for (size_t i = 0; i < ct->ncols; i++) {
        if (ct->def->columns[i]->key_position)
            buf_append(out, row + a->offs[i], a->offs[i + 1] - a->offs[i]);
        else
            typemap_encode_absent(&ct->tm[i], out);
    }
    chtable_put_trailer(ct, out, e->version, true, e->partition);
    return !out->oom;
}

typedef struct {
    apply_t *a;
    atable_t *t;
    uint64_t below; /* of the group at hand */
    uint32_t *ucols;
    size_t *sizecols;
    size_t nucols;
    srcset_t ss;
    buf_t keys;
    found_t f;
    buf_t *mat, *deferred;
    uint64_t *matrows, *defrows;
} resolver_t;

/* Writes pending entry ei with the values found (v NULL: as a delete row of its key). */
static bool
write_resolved(resolver_t *r, uint32_t ei, const unsigned char *v, size_t vl)
{
    atable_t *t = r->t;
    entry_t *e = &t->ents[ei];
    const pend_t *p = &t->pend[e->pend];
    uint32_t *cnt = srcset_count(&r->ss, t, t->arena.data + p->src_off, p->src_len, p->src_hash);
    if (cnt && *cnt)
        (*cnt)--;
    uint32_t *mine = srcset_count(&r->ss, t, t->arena.data + e->off, e->key_len, e->hash);
    bool waited_on = mine && *mine > 0;
    buf_t *out = waited_on ? r->deferred : r->mat;
    if (v ? !materialize(r->a, t, e, r->ucols, r->nucols, v, vl, out)
          : !materialize_deleted(r->a, t, e, out))
        return false;
    (*(waited_on ? r->defrows : r->matrows))++;
    e->done = true;
    return true;
}

/* Looks up the source keys of entries es[0..n) (ClickHouse, or the source when from_source). */
static errclass_t
lookup_group(resolver_t *r, const uint32_t *es, size_t n, bool from_source, bool *complete,
             char *err, size_t errlen)
{
    atable_t *t = r->t;
    buf_reset(&r->keys);
    for (size_t i = 0; i < n; i++) {
        /* the source: the change's own key (the row as it is now; an older key may belong to
         * another row by now); ClickHouse: the key the value was stored under */
        const entry_t *e = &t->ents[es[i]];
        const pend_t *p = &t->pend[e->pend];
        if (from_source)
            buf_append(&r->keys, t->arena.data + e->off, e->key_len);
        else
            buf_append(&r->keys, t->arena.data + p->src_off, p->src_len);
    }
    found_free(&r->f);
    if (r->keys.oom) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    errclass_t cls;
    *complete = true;
    if (from_source) {
        cls = r->a->ops->source_lookup(r->a->ud, t->ct, r->sizecols, r->nucols, r->keys.data,
                                       r->keys.len, n, on_found, &r->f, err, errlen);
    } else {
        int64_t t0 = time_mono_ms();
        cls = r->a->ops->lookup(r->a->ud, t->ct, r->sizecols, r->nucols, r->keys.data, r->keys.len,
                                n, r->below, r->a->chunk, on_found, &r->f, complete, err, errlen);
        r->a->st.lookup_ms += (uint64_t)(time_mono_ms() - t0);
        r->a->st.lookups++;
    }
    if (cls != ERRCLASS_NONE)
        return cls;
    if (r->f.data.oom || !found_index(&r->f)) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    if (r->f.n) {
        double est = (double)r->f.bytes / (double)(r->f.n * (r->nucols ? r->nucols : 1));
        t->est = est < EST_MIN ? EST_MIN : est;
    }
    return ERRCLASS_NONE;
}

static const unsigned char *
found_for(resolver_t *r, uint32_t ei, bool from_source, size_t *vl)
{
    const entry_t *e = &r->t->ents[ei];
    if (from_source)
        return found_get(&r->f, r->t->arena.data + e->off, e->key_len, e->hash, vl);
    const pend_t *p = &r->t->pend[e->pend];
    return found_get(&r->f, r->t->arena.data + p->src_off, p->src_len, p->src_hash, vl);
}

/* Entries per lookup: as many as the chunk size holds by the current estimate. */
static size_t
group_size(const resolver_t *r)
{
    double per_key = r->t->est * (double)(r->nucols ? r->nucols : 1) + 16.0;
    double g = (double)r->a->chunk / per_key;
    return g < 1 ? 1 : g > 1e6 ? 1000000 : (size_t)g;
}

/* Resolves every pending row of t by groups: ClickHouse first, the source for the keys
 * ClickHouse does not have. Rows go to mat (inserted early when it passes the chunk size) or,
 * while a pending row still waits on their key, to deferred. */
static errclass_t
resolve(apply_t *a, atable_t *t, buf_t *mat, uint64_t *matrows, buf_t *deferred, uint64_t *defrows,
        char *err, size_t errlen)
{
    const chtable_t *ct = t->ct;
    errclass_t cls = ERRCLASS_TRANSIENT;
    resolver_t r;
    memset(&r, 0, sizeof(r));
    r.a = a;
    r.t = t;
    r.mat = mat;
    r.deferred = deferred;
    r.matrows = matrows;
    r.defrows = defrows;
    buf_init(&r.keys);
    size_t np = 0, nmiss = 0;
    uint32_t *pe = malloc((t->nents ? t->nents : 1) * sizeof(*pe));
    uint32_t *miss = malloc((t->nents ? t->nents : 1) * sizeof(*miss));
    bool *ucol = calloc(ct->ncols + 1, sizeof(bool));
    r.ucols = malloc((ct->ncols + 1) * sizeof(*r.ucols));
    r.sizecols = malloc((ct->ncols + 1) * sizeof(*r.sizecols));
    if (!pe || !miss || !ucol || !r.ucols || !r.sizecols)
        goto oom;
    for (size_t i = 0; i < t->nents; i++) {
        const entry_t *e = &t->ents[i];
        if (e->pend < 0 || t->pend[e->pend].ncols == 0)
            continue;
        pe[np++] = (uint32_t)i;
        const pend_t *p = &t->pend[e->pend];
        for (uint32_t c = 0; c < p->ncols; c++)
            ucol[pend_cols(t, p)[c]] = true;
    }
    for (size_t i = 0; i < ct->ncols; i++) {
        if (ucol[i]) {
            r.sizecols[r.nucols] = i;
            r.ucols[r.nucols++] = (uint32_t)i;
        }
    }
    if (!srcset_init(&r.ss, t, pe, np))
        goto oom;
    /* the rows asked below a version first (a lookup asks one bound) */
    size_t nb = 0, nu = 0;
    for (size_t i = 0; i < np; i++) {
        if (t->pend[t->ents[pe[i]].pend].below)
            pe[nb++] = pe[i];
        else
            miss[nu++] = pe[i]; /* miss is free until the first lookup */
    }
    memcpy(pe + nb, miss, nu * sizeof(*pe));
    /* pe[head..np): still to resolve */
    size_t head = 0;
    while (head < np) {
        size_t n = group_size(&r);
        if (n > np - head)
            n = np - head;
        r.below = t->pend[t->ents[pe[head]].pend].below;
        for (size_t i = 1; i < n; i++) {
            if (t->pend[t->ents[pe[head + i]].pend].below != r.below) {
                n = i;
                break;
            }
        }
        bool complete;
        cls = lookup_group(&r, pe + head, n, false, &complete, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
        size_t keep = head; /* not delivered by an incomplete reply: asked again */
        nmiss = 0;
        for (size_t i = head; i < head + n; i++) {
            size_t vl = 0;
            const unsigned char *v = found_for(&r, pe[i], false, &vl);
            if (v) {
                a->st.looked_up++;
                if (!write_resolved(&r, pe[i], v, vl))
                    goto oom;
            } else if (complete) {
                miss[nmiss++] = pe[i];
            } else {
                pe[keep++] = pe[i];
            }
        }
        if (!complete && keep == head + n) {
            snprintf(err, errlen, "a lookup of stored values in %s returned no row", ct->qname);
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
        memmove(pe + keep, pe + head + n, (np - head - n) * sizeof(*pe));
        np -= head + n - keep;
        /* ClickHouse has no live row for these keys: the source's current row */
        for (size_t m = 0; m < nmiss;) {
            size_t k = group_size(&r);
            if (k > nmiss - m)
                k = nmiss - m;
            cls = lookup_group(&r, miss + m, k, true, &complete, err, errlen);
            if (cls != ERRCLASS_NONE)
                goto out;
            for (size_t i = m; i < m + k; i++) {
                size_t vl = 0;
                const unsigned char *v = found_for(&r, miss[i], true, &vl);
                if (v) {
                    a->st.from_source++;
                } else {
                    /* the source has no row under the change's key any more: a later committed
                     * transaction deleted, re-keyed or truncated it, and the stream brings that
                     * with a higher version. A row without the values (NULL) would be carried
                     * on by a later update that keeps them, and an older row left live under
                     * the key as well: a delete row, so that such an update finds nothing here
                     * and asks the source for its own key */
                    a->st.unresolved++;
                    log_warn("%s: an update kept a TOASTed value that neither ClickHouse nor the "
                             "source has (a later transaction deleted or re-keyed that row; the "
                             "stream brings it): written as a delete row until then",
                             ct->qname);
                }
                if (!write_resolved(&r, miss[i], v, vl))
                    goto oom;
            }
            m += k;
        }
        if (mat->len >= a->chunk) {
            cls = send_insert(a, t, false, mat, *matrows, NULL, 0, err, errlen);
            if (cls != ERRCLASS_NONE)
                goto out;
            buf_reset(mat);
            *matrows = 0;
        }
    }
    cls = ERRCLASS_NONE;
    goto out;
oom:
    snprintf(err, errlen, "out of memory resolving unchanged TOAST values of %s", ct->qname);
    cls = ERRCLASS_TRANSIENT;
out:
    found_free(&r.f);
    buf_free(&r.keys);
    free(pe);
    free(miss);
    free(ucol);
    free(r.ucols);
    free(r.sizecols);
    free(r.ss.slot);
    free(r.ss.count);
    return cls;
}

/* ---- flushing ------------------------------------------------------------------------------ */

static errclass_t
flush_table(apply_t *a, atable_t *t, char *err, size_t errlen)
{
    if (t->nents == 0)
        return ERRCLASS_NONE;
    buf_t mat, deferred;
    buf_init(&mat);
    buf_init(&deferred);
    uint64_t matrows = 0, defrows = 0;
    errclass_t cls = ERRCLASS_NONE;
    if (t->pending_vals)
        cls = resolve(a, t, &mat, &matrows, &deferred, &defrows, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = send_insert(a, t, true, &mat, matrows, &deferred, defrows, err, errlen);
    buf_free(&mat);
    buf_free(&deferred);
    if (cls != ERRCLASS_NONE) {
        /* the rows stay pending (the worker ends on this error; its successor replays them) */
        for (size_t i = 0; i < t->nents; i++)
            t->ents[i].done = false;
        return cls;
    }
    /* the keys of the transaction applied again that this worker stored: their lookups take
     * the newest row from now on */
    for (size_t i = 0; t->applied && i < t->nents; i++) {
        const entry_t *e = &t->ents[i];
        if (e->version == t->applied && !seen_add(t, t->arena.data + e->off, e->key_len)) {
            snprintf(err, errlen, "out of memory recording the keys of a replayed transaction");
            return ERRCLASS_TRANSIENT;
        }
    }
    table_reset(a, t);
    return ERRCLASS_NONE;
}

/* Memory kept between flushes (empty arenas, entry arrays and indexes keep their capacity for
 * the next batch) stays under one chunk for all tables together: a transaction over many
 * tables would otherwise leave each of them holding a chunk's worth. */
static void
trim(apply_t *a)
{
    size_t kept = 0;
    for (size_t i = 0; i < a->ntables; i++) {
        const atable_t *t = &a->tables[i];
        kept += t->arena.cap + t->capents * sizeof(entry_t) + t->index_cap * sizeof(uint32_t);
    }
    for (size_t i = 0; i < a->ntables && kept > a->chunk; i++) {
        atable_t *t = &a->tables[i];
        if (t->nents)
            continue;
        kept -= t->arena.cap + t->capents * sizeof(entry_t) + t->index_cap * sizeof(uint32_t);
        buf_free(&t->arena);
        buf_init(&t->arena);
        free(t->ents);
        free(t->index);
        t->ents = NULL;
        t->index = NULL;
        t->capents = t->index_cap = 0;
    }
}

errclass_t
apply_flush_table(apply_t *a, int table, char *err, size_t errlen)
{
    errclass_t cls = flush_table(a, &a->tables[table], err, errlen);
    trim(a);
    return cls;
}

errclass_t
apply_flush(apply_t *a, char *err, size_t errlen)
{
    for (size_t i = 0; i < a->ntables; i++) {
        errclass_t cls = flush_table(a, &a->tables[i], err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
    }
    trim(a);
    return ERRCLASS_NONE;
}

/* Copies the live rows of t into a fresh arena (after many changes of the same keys). */
static bool
compact(apply_t *a, atable_t *t)
{
    buf_t n;
    buf_init(&n);
    if (!buf_reserve(&n, t->arena.len - t->garbage))
        return false;
    for (size_t i = 0; i < t->nents; i++) {
        entry_t *e = &t->ents[i];
        size_t off = n.len;
        buf_append(&n, t->arena.data + e->off, e->key_len + e->row_len);
        e->off = off;
        if (e->pend >= 0) {
            pend_t *p = &t->pend[e->pend];
            size_t so = n.len;
            buf_append(&n, t->arena.data + p->src_off, p->src_len);
            p->src_off = so;
        }
    }
    if (n.oom) {
        buf_free(&n);
        return false;
    }
    a->arena -= t->arena.len - n.len;
    buf_free(&t->arena);
    t->arena = n;
    t->garbage = 0;
    return true;
}

/* Keeps what is pending under the chunk size: compacts tables full of replaced rows, else
 * inserts everything (a piece of a large transaction). */
static errclass_t
relieve(apply_t *a, char *err, size_t errlen)
{
    if (apply_pending_bytes(a) < a->chunk)
        return ERRCLASS_NONE;
    for (size_t i = 0; i < a->ntables; i++) {
        atable_t *t = &a->tables[i];
        if (t->garbage > t->arena.len / 2)
            compact(a, t);
    }
    if (apply_pending_bytes(a) < a->chunk)
        return ERRCLASS_NONE;
    return apply_flush(a, err, errlen);
}

errclass_t
apply_truncate(apply_t *a, int table, uint32_t partition, uint64_t version, char *err,
               size_t errlen)
{
    bool skip;
    errclass_t cls = replayed(a, &a->tables[table], version, &skip, err, errlen);
    if (cls != ERRCLASS_NONE || skip)
        return cls;
    if ((cls = apply_flush(a, err, errlen)) != ERRCLASS_NONE)
        return cls;
    const chtable_t *ct = a->tables[table].ct;
    if (partition)
        return a->ops->truncate_partition(a->ud, ct, partition, version, err, errlen);
    return a->ops->truncate(a->ud, ct, err, errlen);
}

/* ---- the object ---------------------------------------------------------------------------- */

apply_t *
apply_new(const apply_ops_t *ops, void *ud, size_t chunk_bytes)
{
    apply_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->lookup = malloc(PGO_MAX_COLUMNS * sizeof(*a->lookup));
    if (!a->lookup) {
        free(a);
        return NULL;
    }
    a->ops = ops;
    a->ud = ud;
    a->chunk = chunk_bytes ? chunk_bytes : 1;
    buf_init(&a->kold);
    buf_init(&a->knew);
    return a;
}

void
apply_destroy(apply_t **ap)
{
    apply_t *a = *ap;
    if (!a)
        return;
    for (size_t i = 0; i < a->ntables; i++)
        table_free(&a->tables[i]);
    free(a->tables);
    free(a->offs);
    free(a->lookup);
    buf_free(&a->kold);
    buf_free(&a->knew);
    free(a);
    *ap = NULL;
}

int
apply_add_table(apply_t *a, const chtable_t *t)
{
    if (a->ntables == a->captables) {
        size_t cap = a->captables ? a->captables * 2 : 8;
        atable_t *n = realloc(a->tables, cap * sizeof(*n));
        if (!n)
            return -1;
        a->tables = n;
        a->captables = cap;
    }
    atable_t *at = &a->tables[a->ntables];
    memset(at, 0, sizeof(*at));
    at->ct = t;
    at->est = EST_INITIAL;
    buf_init(&at->arena);
    buf_init(&at->pcols);
    return (int)a->ntables++;
}

void
apply_set_table(apply_t *a, int table, const chtable_t *t)
{
    a->tables[table].ct = t;
}

size_t
apply_pending_rows(const apply_t *a)
{
    return a->rows;
}

size_t
apply_table_pending_rows(const apply_t *a, int table)
{
    return a->tables[table].nents;
}

size_t
apply_pending_bytes(const apply_t *a)
{
    return a->arena + (size_t)(a->pend_bytes > 0 ? a->pend_bytes : 0);
}

const apply_stats_t *
apply_stats(const apply_t *a)
{
    return &a->st;
}

uint64_t
apply_take_table_bytes(apply_t *a, int table)
{
    uint64_t b = a->tables[table].bytes_out;
    a->tables[table].bytes_out = 0;
    return b;
}
