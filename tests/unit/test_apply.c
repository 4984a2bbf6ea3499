/* apply: the CDC apply model against a fake ClickHouse (FINAL = the highest version of a key,
 * of equal versions the row inserted last) and a fake source: one row per key per flush,
 * versions, pieces of large transactions in order, unchanged TOAST values from the flush, from
 * one lookup per table and from the source, TRUNCATE order, one-partition truncates, the
 * memory bound and compaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "chtable.h"

/* ---- the table under test: id int (key), v text, big text; optionally partitioned ---------- */

static Pgferry__State__ColumnDef cols[3];
static Pgferry__State__ColumnDef *colp[3];
static Pgferry__State__TableDef def;

static void
make_def(bool partitioned)
{
    static const char *names[] = {"id", "v", "big"};
    static const char *types[] = {"Int32", "Nullable(String)", "Nullable(String)"};
    static const uint32_t oids[] = {23, 25, 25};
    for (int i = 0; i < 3; i++) {
        pgferry__state__column_def__init(&cols[i]);
        cols[i].name = (char *)names[i];
        cols[i].pg_type = (char *)(i ? "text" : "integer");
        cols[i].base_type_oid = oids[i];
        cols[i].base_typmod = -1;
        cols[i].typcategory = (char *)(i ? "S" : "N");
        cols[i].not_null = i == 0;
        cols[i].key_position = i == 0 ? 1 : 0;
        cols[i].ch_type = (char *)types[i];
        colp[i] = &cols[i];
    }
    pgferry__state__table_def__init(&def);
    def.schema = "public";
    def.name = "t";
    def.target = "t";
    def.columns = colp;
    def.n_columns = 3;
    def.partition_column = partitioned;
}

/* ---- the fake ClickHouse ------------------------------------------------------------------- */

typedef struct {
    int32_t id;
    char v[64], big[4096];
    bool v_null, big_null;
    uint64_t version;
    bool deleted;
    uint32_t partition;
    int seq; /* insertion order */
} frow_t;

typedef struct {
    frow_t *rows;
    size_t n, cap;
    int seq;
    int inserts, lookups, source_lookups, truncates, part_truncates;
    size_t max_insert_bytes;
    size_t lookup_budget_override; /* stop lookups after this many bytes (0: as asked) */
    const char *log[64];
    int nlog;
    /* the source's current rows */
    struct {
        int32_t id;
        const char *big;
    } source[16];
    int nsource;
    const chtable_t *ct;
} fake_t;

static fake_t F;

static const char *
get_str(const unsigned char *p, size_t *pos, char *out, size_t cap, bool *isnull)
{
    *isnull = p[(*pos)++] == 1;
    if (*isnull)
        return NULL;
    uint64_t n = 0;
    int shift = 0;
    unsigned char b;
    do {
        b = p[(*pos)++];
        n |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    size_t k = n < cap - 1 ? n : cap - 1;
    memcpy(out, p + *pos, k);
    out[k] = '\0';
    *pos += n;
    return out;
}

static uint64_t
le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void
parse_rows(const unsigned char *d, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = chtable_row_size(F.ct, d + pos, len - pos);
        assert_true(n > 0);
        if (F.n == F.cap) {
            F.cap = F.cap ? F.cap * 2 : 64;
            F.rows = realloc(F.rows, F.cap * sizeof(*F.rows));
        }
        frow_t *r = &F.rows[F.n++];
        memset(r, 0, sizeof(*r));
        size_t p = pos;
        r->id = (int32_t)le(d + p, 4);
        p += 4;
        get_str(d, &p, r->v, sizeof(r->v), &r->v_null);
        get_str(d, &p, r->big, sizeof(r->big), &r->big_null);
        r->version = le(d + p, 8);
        r->deleted = d[p + 8];
        if (F.ct->partition)
            r->partition = (uint32_t)le(d + p + 9, 4);
        r->seq = ++F.seq;
        pos += n;
    }
}

static errclass_t
f_insert(void *ud, const chtable_t *t, ch_stream_fn fn, void *fnud, char *err, size_t errlen)
{
    (void)ud;
    (void)err;
    (void)errlen;
    F.ct = t;
    unsigned char *all = NULL;
    size_t len = 0;
    char piece[7]; /* odd pieces: rows cross every boundary */
    long n;
    while ((n = fn(fnud, piece, sizeof(piece))) > 0) {
        all = realloc(all, len + (size_t)n);
        memcpy(all + len, piece, (size_t)n);
        len += (size_t)n;
    }
    assert_true(n == 0);
    parse_rows(all, len);
    free(all);
    F.inserts++;
    if (len > F.max_insert_bytes)
        F.max_insert_bytes = len;
    if (F.nlog < 64)
        F.log[F.nlog++] = "insert";
    return ERRCLASS_NONE;
}

/* FINAL: the highest version of the key (below `below` when not 0); of equal versions the one
 * inserted last */
static const frow_t *
final_below(int32_t id, uint64_t below)
{
    const frow_t *best = NULL;
    for (size_t i = 0; i < F.n; i++) {
        const frow_t *r = &F.rows[i];
        if (below && r->version >= below)
            continue;
        if (r->id == id && (!best || r->version > best->version ||
                            (r->version == best->version && r->seq > best->seq)))
            best = r;
    }
    return best;
}

static const frow_t *
final_row(int32_t id)
{
    return final_below(id, 0);
}

static void
put_str(unsigned char *buf, size_t *pos, const char *s, bool isnull)
{
    buf[(*pos)++] = isnull ? 1 : 0;
    if (isnull)
        return;
    size_t n = strlen(s);
    size_t v = n;
    do {
        unsigned char b = v & 0x7f;
        v >>= 7;
        buf[(*pos)++] = (unsigned char)(b | (v ? 0x80 : 0));
    } while (v);
    memcpy(buf + *pos, s, n);
    *pos += n;
}

static errclass_t
f_lookup(void *ud, const chtable_t *t, const size_t *c, size_t nc, const unsigned char *keys,
         size_t keys_len, size_t nkeys, uint64_t below, size_t budget, apply_row_fn on_row,
         void *cbud, bool *complete, char *err, size_t errlen)
{
    (void)ud;
    (void)t;
    (void)err;
    (void)errlen;
    assert_int_equal(keys_len, nkeys * 4);
    F.lookups++;
    if (F.nlog < 64)
        F.log[F.nlog++] = "lookup";
    if (F.lookup_budget_override)
        budget = F.lookup_budget_override;
    size_t delivered = 0;
    *complete = true;
    for (size_t k = 0; k < nkeys; k++) {
        int32_t id = (int32_t)le(keys + 4 * k, 4);
        const frow_t *r = final_below(id, below);
        if (!r)
            continue;
        if (delivered >= budget) {
            *complete = false;
            return ERRCLASS_NONE;
        }
        unsigned char vals[8300];
        size_t pos = 0;
        for (size_t i = 0; i < nc; i++) {
            if (c[i] == 1)
                put_str(vals, &pos, r->v, r->v_null);
            else
                put_str(vals, &pos, r->big, r->big_null);
        }
        assert_true(on_row(cbud, keys + 4 * k, 4, r->deleted, vals, pos));
        delivered += pos + 4;
    }
    return ERRCLASS_NONE;
}

static errclass_t
f_source_lookup(void *ud, const chtable_t *t, const size_t *c, size_t nc, const unsigned char *keys,
                size_t keys_len, size_t nkeys, apply_row_fn on_row, void *cbud, char *err,
                size_t errlen)
{
    (void)ud;
    (void)t;
    (void)keys_len;
    (void)err;
    (void)errlen;
    F.source_lookups++;
    for (size_t k = 0; k < nkeys; k++) {
        int32_t id = (int32_t)le(keys + 4 * k, 4);
        for (int s = 0; s < F.nsource; s++) {
            if (F.source[s].id != id)
                continue;
            unsigned char vals[8300];
            size_t pos = 0;
            for (size_t i = 0; i < nc; i++)
                put_str(vals, &pos, c[i] == 2 ? F.source[s].big : "source v", false);
            assert_true(on_row(cbud, keys + 4 * k, 4, false, vals, pos));
        }
    }
    return ERRCLASS_NONE;
}

static errclass_t
f_truncate(void *ud, const chtable_t *t, char *err, size_t errlen)
{
    (void)ud;
    (void)t;
    (void)err;
    (void)errlen;
    F.n = 0;
    F.truncates++;
    if (F.nlog < 64)
        F.log[F.nlog++] = "truncate";
    return ERRCLASS_NONE;
}

static errclass_t
f_truncate_partition(void *ud, const chtable_t *t, uint32_t partition, uint64_t version, char *err,
                     size_t errlen)
{
    (void)ud;
    (void)t;
    (void)err;
    (void)errlen;
    F.part_truncates++;
    size_t n = F.n;
    for (size_t i = 0; i < n; i++) {
        const frow_t *r = final_row(F.rows[i].id);
        if (r != &F.rows[i] || r->deleted || r->partition != partition)
            continue;
        if (F.n == F.cap) {
            F.cap *= 2;
            F.rows = realloc(F.rows, F.cap * sizeof(*F.rows));
        }
        frow_t *d = &F.rows[F.n++];
        memset(d, 0, sizeof(*d));
        d->id = F.rows[i].id;
        d->v_null = d->big_null = true;
        d->version = version;
        d->deleted = true;
        d->partition = partition;
        d->seq = ++F.seq;
    }
    return ERRCLASS_NONE;
}

static errclass_t
f_max_version(void *ud, const chtable_t *t, uint64_t *version, char *err, size_t errlen)
{
    (void)ud;
    (void)t;
    (void)err;
    (void)errlen;
    *version = 0;
    for (size_t i = 0; i < F.n; i++) {
        if (F.rows[i].version > *version)
            *version = F.rows[i].version;
    }
    return ERRCLASS_NONE;
}

static const apply_ops_t fake_ops = {
    f_insert, f_lookup, f_source_lookup, f_truncate, f_truncate_partition, f_max_version};

/* ---- helpers ------------------------------------------------------------------------------- */

static chtable_t ct;
static apply_t *A;
static int T;

static int
setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    make_def(false);
    char err[256];
    assert_int_equal(chtable_init(&ct, "db", &def, "", err, sizeof(err)), ERRCLASS_NONE);
    F.ct = &ct;
    A = apply_new(&fake_ops, NULL, 1 << 20);
    T = apply_add_table(A, &ct);
    return 0;
}

static int
setup_partitioned(void **state)
{
    setup(state);
    chtable_free(&ct);
    make_def(true);
    char err[256];
    assert_int_equal(chtable_init(&ct, "db", &def, "", err, sizeof(err)), ERRCLASS_NONE);
    apply_set_table(A, T, &ct);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    apply_destroy(&A);
    chtable_free(&ct);
    free(F.rows);
    return 0;
}

/* a tuple: id, v, big; NULL text = SQL NULL, "\x01" = unchanged TOAST value */
static pgo_value_t vbuf[2][3];
static const pgo_value_t *vptr[2][3];
static char idtext[2][16];

static const pgo_value_t *const *
tup(int slot, int id, const char *v, const char *big)
{
    snprintf(idtext[slot], sizeof(idtext[slot]), "%d", id);
    const char *vals[3] = {idtext[slot], v, big};
    for (int i = 0; i < 3; i++) {
        pgo_value_t *x = &vbuf[slot][i];
        if (!vals[i]) {
            x->kind = 'n';
        } else if (vals[i][0] == '\x01') {
            x->kind = 'u';
        } else {
            x->kind = 't';
            x->data = vals[i];
            x->len = (uint32_t)strlen(vals[i]);
        }
        vptr[slot][i] = x;
    }
    return vptr[slot];
}
#define U "\x01"

static void
ins(int id, const char *v, const char *big, uint64_t version)
{
    char err[256];
    assert_int_equal(apply_insert(A, T, tup(0, id, v, big), version, 0, err, sizeof(err)),
                     ERRCLASS_NONE);
}

static void
upd(int oldid, int id, const char *v, const char *big, uint64_t version)
{
    char err[256];
    const pgo_value_t *const *o = oldid != id ? tup(1, oldid, NULL, NULL) : NULL;
    assert_int_equal(apply_update(A, T, o, false, tup(0, id, v, big), version, 0, err, sizeof(err)),
                     ERRCLASS_NONE);
}

static void
del(int id, uint64_t version)
{
    char err[256];
    assert_int_equal(apply_delete(A, T, tup(1, id, NULL, NULL), version, 0, err, sizeof(err)),
                     ERRCLASS_NONE);
}

static void
flush(void)
{
    char err[256];
    assert_int_equal(apply_flush(A, err, sizeof(err)), ERRCLASS_NONE);
}

/* the live value of key id under FINAL: NULL when absent or deleted */
static const frow_t *
live(int32_t id)
{
    const frow_t *r = final_row(id);
    return r && !r->deleted ? r : NULL;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void
test_one_row_per_key(void **state)
{
    (void)state;
    ins(1, "a", "x", 100);
    upd(1, 1, "b", "x", 100);
    upd(1, 1, "c", "x", 100);
    ins(2, "z", NULL, 100);
    assert_int_equal(apply_pending_rows(A), 2);
    flush();
    assert_int_equal(F.inserts, 1);
    assert_int_equal(F.n, 2); /* the last change of each key, nothing else */
    assert_string_equal(live(1)->v, "c");
    assert_int_equal(live(1)->version, 100);
    assert_true(live(2)->big_null);
    assert_int_equal(apply_stats(A)->collapsed, 2);
    assert_int_equal(apply_pending_rows(A), 0);
}

static void
test_versions_follow_commit_order(void **state)
{
    (void)state;
    /* the delete's WAL record came after the insert's, but its transaction committed first:
     * the insert's transaction has the higher commit LSN, so it wins in any insert order */
    ins(5, "A", NULL, 100);
    flush();
    del(5, 200);            /* A: delete, commit at 200 */
    ins(5, "B", NULL, 300); /* B: insert, commit at 300 */
    flush();
    assert_string_equal(live(5)->v, "B");
    /* the same with the rows inserted in the other order (a replay splits batches anew) */
    free(F.rows);
    memset(&F, 0, sizeof(F));
    F.ct = &ct;
    ins(6, "B", NULL, 300);
    flush();
    del(6, 200);
    flush();
    assert_non_null(live(6));
    assert_string_equal(live(6)->v, "B");
}

static void
test_key_change(void **state)
{
    (void)state;
    ins(1, "one", "X", 10);
    flush();
    upd(1, 2, "moved", U, 20); /* the key changes: a row for 2, a delete row for 1 */
    flush();
    assert_null(live(1));
    assert_non_null(live(2));
    assert_string_equal(live(2)->v, "moved");
    assert_string_equal(live(2)->big, "X"); /* the unchanged value, read under the old key */
    assert_int_equal(F.lookups, 1);
}

static void
test_pieces_in_order(void **state)
{
    (void)state;
    apply_destroy(&A);
    A = apply_new(&fake_ops, NULL, 2048); /* small pieces */
    T = apply_add_table(A, &ct);
    char filler[200];
    memset(filler, 'f', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    /* one transaction (version 500): key 1 through insert, update, delete, insert, with
     * filler rows between so each step is in another piece */
    ins(1, "first", NULL, 500);
    for (int i = 0; i < 30; i++)
        ins(1000 + i, "filler", filler, 500);
    upd(1, 1, "second", NULL, 500);
    for (int i = 0; i < 30; i++)
        ins(2000 + i, "filler", filler, 500);
    del(1, 500);
    for (int i = 0; i < 30; i++)
        ins(3000 + i, "filler", filler, 500);
    ins(1, "last", NULL, 500);
    flush();
    assert_true(F.inserts >= 4);
    assert_true(F.max_insert_bytes <= 2048 + 512);
    assert_string_equal(live(1)->v, "last");
    /* the same transaction replayed (a crash before its commit was acknowledged) */
    ins(1, "first", NULL, 500);
    for (int i = 0; i < 30; i++)
        ins(1000 + i, "filler", filler, 500);
    flush(); /* a crash here leaves the early state visible for a while ... */
    assert_string_equal(live(1)->v, "first");
    upd(1, 1, "second", NULL, 500);
    del(1, 500);
    ins(1, "last", NULL, 500);
    flush(); /* ... until the replay reaches the end */
    assert_string_equal(live(1)->v, "last");
}

static void
test_toast_from_flush(void **state)
{
    (void)state;
    ins(1, "a", "BIG", 10);
    upd(1, 1, "b", U, 11);
    upd(1, 1, "c", U, 12);
    flush();
    assert_int_equal(F.lookups, 0); /* the value was in the flush itself */
    assert_string_equal(live(1)->big, "BIG");
    assert_string_equal(live(1)->v, "c");
    assert_int_equal(apply_stats(A)->from_batch, 2);
}

static void
test_toast_one_lookup(void **state)
{
    (void)state;
    for (int i = 1; i <= 300; i++) {
        char big[32];
        snprintf(big, sizeof(big), "big-%d", i);
        ins(i, "old", big, 10);
    }
    flush();
    int before = F.inserts;
    for (int i = 1; i <= 300; i++)
        upd(i, i, "status=1", U, 20); /* UPDATE t SET v = ... on every row */
    flush();
    assert_int_equal(F.lookups, 1); /* one query for all 300 keys */
    assert_int_equal(F.inserts - before, 1);
    for (int i = 1; i <= 300; i++) {
        char big[32];
        snprintf(big, sizeof(big), "big-%d", i);
        assert_string_equal(live(i)->big, big);
        assert_string_equal(live(i)->v, "status=1");
    }
    assert_int_equal(apply_stats(A)->looked_up, 300);
}

static void
test_toast_lookup_budget(void **state)
{
    (void)state;
    for (int i = 1; i <= 50; i++)
        ins(i, "old", "a value of some length", 10);
    flush();
    F.lookup_budget_override = 100; /* the reply stops after a few rows */
    for (int i = 1; i <= 50; i++)
        upd(i, i, "new", U, 20);
    flush();
    assert_true(F.lookups > 5);
    for (int i = 1; i <= 50; i++)
        assert_string_equal(live(i)->big, "a value of some length");
}

static void
test_toast_chain_in_flush(void **state)
{
    (void)state;
    ins(1, "one", "X", 10);
    flush();
    /* 1 -> 2 -> 3 in one flush, the value unchanged all along: it is looked up under 1, and
     * the delete row of 1 must not reach ClickHouse before that lookup */
    upd(1, 2, "two", U, 20);
    upd(2, 3, "three", U, 30);
    flush();
    assert_int_equal(F.lookups, 1);
    assert_null(live(1));
    assert_null(live(2));
    assert_string_equal(live(3)->big, "X");
    assert_string_equal(live(3)->v, "three");
}

static void
test_toast_from_source(void **state)
{
    (void)state;
    /* ClickHouse has no row for key 7 (a replay after a TRUNCATE): the source's current row */
    F.source[0].id = 7;
    F.source[0].big = "from source";
    F.nsource = 1;
    upd(7, 7, "v", U, 40);
    upd(8, 8, "v", U, 40); /* neither has key 8: a delete row (a later change removed it) */
    flush();
    assert_int_equal(F.lookups, 1);
    assert_int_equal(F.source_lookups, 1);
    assert_string_equal(live(7)->big, "from source");
    assert_null(live(8));
    assert_true(final_row(8)->deleted);
    assert_int_equal(final_row(8)->version, 40);
    assert_int_equal(apply_stats(A)->from_source, 1);
    assert_int_equal(apply_stats(A)->unresolved, 1);
    /* a delete row in ClickHouse counts as no row */
    del(7, 50);
    flush();
    upd(7, 7, "back", U, 60);
    flush();
    assert_int_equal(F.source_lookups, 2);
    assert_string_equal(live(7)->big, "from source");
}

static void
test_toast_full_identity(void **state)
{
    (void)state;
    char err[256];
    /* REPLICA IDENTITY FULL: the old row carries the value, no lookup */
    assert_int_equal(apply_update(A, T, tup(1, 4, "old", "OLDBIG"), true, tup(0, 4, "new", U), 10,
                                  0, err, sizeof(err)),
                     ERRCLASS_NONE);
    flush();
    assert_int_equal(F.lookups, 0);
    assert_string_equal(live(4)->big, "OLDBIG");
}

static void
test_truncate_order(void **state)
{
    (void)state;
    char err[256];
    ins(1, "before", NULL, 10);
    assert_int_equal(apply_truncate(A, T, 0, 20, err, sizeof(err)), ERRCLASS_NONE);
    ins(2, "after", NULL, 20);
    flush();
    assert_string_equal(F.log[0], "insert"); /* what came before went in first */
    assert_string_equal(F.log[1], "truncate");
    assert_string_equal(F.log[2], "insert");
    assert_null(live(1));
    assert_string_equal(live(2)->v, "after");
}

static void
test_truncate_partition(void **state)
{
    (void)state;
    char err[256];
    for (int i = 1; i <= 10; i++)
        assert_int_equal(
            apply_insert(A, T, tup(0, i, "p", NULL), 10, i % 2 ? 7 : 8, err, sizeof(err)),
            ERRCLASS_NONE);
    flush();
    /* key 3 moves from partition 7 to 8 (a delete in one, an insert in the other) */
    assert_int_equal(apply_delete(A, T, tup(1, 3, NULL, NULL), 20, 7, err, sizeof(err)),
                     ERRCLASS_NONE);
    assert_int_equal(apply_insert(A, T, tup(0, 3, "moved", NULL), 20, 8, err, sizeof(err)),
                     ERRCLASS_NONE);
    assert_int_equal(apply_truncate(A, T, 7, 30, err, sizeof(err)), ERRCLASS_NONE);
    flush();
    for (int i = 1; i <= 10; i++) {
        if (i % 2 && i != 3)
            assert_null(live(i));
        else
            assert_non_null(live(i));
    }
    assert_string_equal(live(3)->v, "moved");
    assert_int_equal(F.part_truncates, 1);
}

static void
test_memory_bound(void **state)
{
    (void)state;
    apply_destroy(&A);
    A = apply_new(&fake_ops, NULL, 64 * 1024);
    T = apply_add_table(A, &ct);
    char val[1000];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    size_t peak = 0;
    for (int i = 0; i < 2000; i++) {
        ins(i, "x", val, 10);
        if (apply_pending_bytes(A) > peak)
            peak = apply_pending_bytes(A);
    }
    flush();
    assert_true(peak <= 64 * 1024 + 2048);
    assert_true(F.inserts >= 30);
    assert_int_equal(F.n, 2000);
}

static void
test_compaction(void **state)
{
    (void)state;
    apply_destroy(&A);
    A = apply_new(&fake_ops, NULL, 16 * 1024);
    T = apply_add_table(A, &ct);
    /* one row changed 10,000 times in a transaction: replaced rows are compacted away, not
     * inserted piece by piece */
    for (int i = 0; i < 10000; i++) {
        char v[32];
        snprintf(v, sizeof(v), "n%d", i);
        upd(1, 1, v, "same", 10);
    }
    assert_true(apply_pending_bytes(A) < 16 * 1024);
    flush();
    assert_int_equal(F.inserts, 1);
    assert_string_equal(live(1)->v, "n9999");
}

static void
test_missing_key_value(void **state)
{
    (void)state;
    char err[256];
    const pgo_value_t *const *t = tup(0, 1, "v", NULL);
    ((pgo_value_t *)t[0])->kind = 'u'; /* a key stored out of line and unchanged */
    assert_int_equal(apply_update(A, T, NULL, false, t, 10, 0, err, sizeof(err)), ERRCLASS_FATAL);
    assert_non_null(strstr(err, "key column id"));
    assert_int_equal(apply_pending_rows(A), 0);
}

/* ---- replays (issue 23 item 1): a new worker applies again what ClickHouse already has ----- */

/* A new worker (the old one died after its inserts, before the slot was acknowledged). */
static void
new_worker(size_t chunk)
{
    apply_destroy(&A);
    A = apply_new(&fake_ops, NULL, chunk);
    T = apply_add_table(A, &ct);
}

/* ClickHouse's merges: of each key only the row FINAL keeps is left */
static void
merge_all(void)
{
    size_t k = 0;
    for (size_t i = 0; i < F.n; i++) {
        if (final_row(F.rows[i].id) == &F.rows[i])
            F.rows[k++] = F.rows[i];
    }
    F.n = k;
}

static void
test_replay_rekey_then_reuse(void **state)
{
    (void)state;
    ins(1, "a", "OLD1", 10);
    flush();
    /* UPDATE t SET id = 1001 WHERE id = 1 (value unchanged); INSERT INTO t VALUES (1, new) */
    for (int run = 0; run < 2; run++) {
        if (run)
            new_worker(1 << 20); /* the replay: both transactions again, in one batch */
        upd(1, 1001, U, U, 20);
        if (!run)
            flush();
        ins(1, "n", "NEW1", 30);
        flush();
    }
    assert_string_equal(live(1001)->big, "OLD1");
    assert_string_equal(live(1)->big, "NEW1");
    assert_int_equal(apply_stats(A)->replayed, 1);
}

static void
test_replay_swap_through_temporary_key(void **state)
{
    (void)state;
    ins(2, "b", "BIG2", 10);
    ins(3, "c", "BIG3", 10);
    flush();
    /* 2 -> -2, 3 -> 2, -2 -> 3: three transactions, each in its own batch, then all replayed
     * in one batch */
    for (int run = 0; run < 2; run++) {
        if (run)
            new_worker(1 << 20);
        upd(2, -2, U, U, 20);
        if (!run)
            flush();
        upd(3, 2, U, U, 30);
        if (!run)
            flush();
        upd(-2, 3, U, U, 40);
        flush();
        assert_string_equal(live(2)->big, "BIG3");
        assert_string_equal(live(3)->big, "BIG2");
        assert_null(live(-2));
    }
}

/* The transaction at the highest stored version is applied again: its lookups take the rows
 * below its version (its own later rows are stored already). */
static void
test_replay_last_transaction(void **state)
{
    (void)state;
    ins(11, "a", "BIG11", 10);
    ins(12, "b", "BIG12", 10);
    ins(13, "c", "BIG13", 10);
    ins(99, "z", "BIG99", 10);
    flush();
    for (int run = 0; run < 2; run++) {
        if (run)
            new_worker(1 << 20);
        /* one transaction: 11 -> 1011, INSERT 11, 12 -> -12, 13 -> 12, -12 -> 13 */
        upd(11, 1011, U, U, 20);
        ins(11, "n", "NEW11", 20);
        upd(12, -12, U, U, 20);
        upd(13, 12, U, U, 20);
        upd(-12, 13, U, U, 20);
        if (run) /* a later transaction in the same batch: its lookup takes the newest row */
            upd(99, 99, "y", U, 30);
        flush();
        assert_string_equal(live(99)->big, "BIG99");
        assert_string_equal(live(1011)->big, "BIG11");
        assert_string_equal(live(11)->big, "NEW11");
        assert_string_equal(live(12)->big, "BIG13");
        assert_string_equal(live(13)->big, "BIG12");
    }
    assert_int_equal(apply_stats(A)->replayed, 0);
}

/* Merges left only the rows of the replayed transaction: the rows below its version are gone,
 * so the values come from the source's current rows of the changes' own keys. */
static void
test_replay_last_transaction_merged(void **state)
{
    (void)state;
    ins(11, "a", "BIG11", 10);
    ins(12, "b", "BIG12", 10);
    ins(13, "c", "BIG13", 10);
    flush();
    upd(11, 1011, U, U, 20);
    ins(11, "n", "NEW11", 20);
    upd(12, -12, U, U, 20);
    upd(13, 12, U, U, 20);
    upd(-12, 13, U, U, 20);
    flush();
    merge_all();
    const struct {
        int32_t id;
        const char *big;
    } src[] = {{11, "NEW11"}, {12, "BIG13"}, {13, "BIG12"}, {1011, "BIG11"}};
    for (int i = 0; i < 4; i++) {
        F.source[i].id = src[i].id;
        F.source[i].big = src[i].big;
    }
    F.nsource = 4;
    new_worker(1 << 20);
    upd(11, 1011, U, U, 20);
    ins(11, "n", "NEW11", 20);
    upd(12, -12, U, U, 20);
    upd(13, 12, U, U, 20);
    upd(-12, 13, U, U, 20);
    flush();
    assert_string_equal(live(1011)->big, "BIG11");
    assert_string_equal(live(11)->big, "NEW11");
    assert_string_equal(live(12)->big, "BIG13");
    assert_string_equal(live(13)->big, "BIG12");
}

/* A large transaction applied again in pieces: a key it wrote in an earlier piece of the replay
 * is looked up as that piece left it, not below the transaction's version. */
static void
test_replay_pieces(void **state)
{
    (void)state;
    ins(5, "a", "BIG5", 10);
    flush();
    for (int run = 0; run < 2; run++) {
        if (run)
            new_worker(1 << 20);
        upd(5, 5, "b", "CHANGED5", 20);
        flush(); /* a piece */
        upd(5, 5, "c", U, 20);
        flush(); /* a piece */
        upd(5, 1005, U, U, 20);
        ins(5, "n", "NEW5", 20);
        flush();
        assert_string_equal(live(1005)->big, "CHANGED5");
        assert_string_equal(live(1005)->v, "c");
        assert_string_equal(live(5)->big, "NEW5");
    }
}

/* A never loaded row (cdc-only) re-keyed with its value unchanged: the source's current row of
 * the new key, not of the old one (no longer there). */
static void
test_toast_source_new_key(void **state)
{
    (void)state;
    F.source[0].id = 1001;
    F.source[0].big = "kept";
    F.nsource = 1;
    upd(1, 1001, U, U, 20);
    flush();
    assert_string_equal(live(1001)->big, "kept");
    assert_int_equal(apply_stats(A)->from_source, 1);
    assert_int_equal(apply_stats(A)->unresolved, 0);
}

/* The same row re-keyed again (1 -> 1001, then 1001 -> 2001) by a transaction already committed
 * when the first one is applied: the source has neither 1 nor 1001. The first update is written
 * as a delete row (a NULL value there, or an older row of 1001, would be carried on to 2001);
 * the second asks the source for 2001. */
static void
test_toast_source_rekeyed_again(void **state)
{
    (void)state;
    F.source[0].id = 2001;
    F.source[0].big = "kept";
    F.nsource = 1;
    ins(1001, "x", "OTHER ROW", 10); /* 1001 was another row, deleted before */
    flush();
    del(1001, 15);
    upd(1, 1001, U, U, 20);
    flush();
    assert_null(live(1001));
    assert_int_equal(apply_stats(A)->unresolved, 1);
    upd(1001, 2001, U, U, 30);
    flush();
    assert_string_equal(live(2001)->big, "kept");
    assert_null(live(1001));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_row_per_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_follow_commit_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pieces_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toast_from_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toast_one_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toast_lookup_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toast_chain_in_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toast_from_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toast_full_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_partition, setup_partitioned, teardown),
        cmocka_unit_test_setup_teardown(test_memory_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_rekey_then_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_swap_through_temporary_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_last_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_last_transaction_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toast_source_new_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toast_source_rekeyed_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
