/* pgoutput: a cursor over the message with checked big-endian reads. */
#include "pgoutput.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pgoutput_decoder {
    pgo_value_t *vals[2]; /* old and new tuple values */
    size_t vcap[2];
    pgo_column_t *cols;
    size_t ccap;
    uint32_t *relids;
    size_t rcap;
};

typedef struct {
    const uint8_t *p, *end;
    char *err;
    size_t errlen;
    bool failed;
} rd_t;

static bool
fail(rd_t *r, const char *what)
{
    if (!r->failed)
        snprintf(r->err, r->errlen, "malformed pgoutput message: %s", what);
    r->failed = true;
    return false;
}

static bool
need(rd_t *r, size_t n, const char *what)
{
    if (r->failed)
        return false;
    if ((size_t)(r->end - r->p) < n)
        return fail(r, what);
    return true;
}

static uint64_t
be(rd_t *r, int n, const char *what)
{
    uint64_t v = 0;
    if (!need(r, (size_t)n, what))
        return 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | r->p[i];
    r->p += n;
    return v;
}

static const char *
str(rd_t *r, const char *what)
{
    if (r->failed)
        return NULL;
    const uint8_t *z = memchr(r->p, 0, (size_t)(r->end - r->p));
    if (!z) {
        fail(r, what);
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p = z + 1;
    return s;
}

static bool
grow(void **arr, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return true;
    size_t c = *cap ? *cap : 16;
    while (c < want)
        c *= 2;
    void *a = realloc(*arr, c * elem);
    if (!a)
        return false;
    *arr = a;
    *cap = c;
    return true;
}

static bool
tuple(pgoutput_decoder_t *d, rd_t *r, int which, pgo_tuple_t *t)
{
    uint16_t n = (uint16_t)be(r, 2, "tuple column count");
    if (r->failed)
        return false;
    if (n > PGO_MAX_COLUMNS)
        return fail(r, "more columns than PostgreSQL allows");
    if (!grow((void **)&d->vals[which], &d->vcap[which], n ? n : 1, sizeof(pgo_value_t)))
        return fail(r, "out of memory");
    for (uint16_t i = 0; i < n; i++) {
        pgo_value_t *v = &d->vals[which][i];
        v->kind = (char)be(r, 1, "value kind");
        v->data = NULL;
        v->len = 0;
        switch (v->kind) {
        case 'n':
        case 'u':
            break;
        case 't':
        case 'b': {
            uint32_t len = (uint32_t)be(r, 4, "value length");
            if (!need(r, len, "value data"))
                return false;
            v->data = (const char *)r->p;
            v->len = len;
            r->p += len;
            break;
        }
        default:
            return r->failed ? false : fail(r, "unknown value kind");
        }
    }
    t->ncols = n;
    t->values = d->vals[which];
    return !r->failed;
}

pgoutput_decoder_t *
pgoutput_decoder_new(void)
{
    return calloc(1, sizeof(pgoutput_decoder_t));
}

void
pgoutput_decoder_destroy(pgoutput_decoder_t **dp)
{
    pgoutput_decoder_t *d = *dp;
    if (!d)
        return;
    free(d->vals[0]);
    free(d->vals[1]);
    free(d->cols);
    free(d->relids);
    free(d);
    *dp = NULL;
}

bool
pgoutput_decode(pgoutput_decoder_t *d, const uint8_t *buf, size_t len, pgo_msg_t *msg, char *err,
                size_t errlen)
{
    rd_t r = {buf, buf + len, err, errlen, false};
    memset(msg, 0, sizeof(*msg));
    if (len == 0) {
        snprintf(err, errlen, "malformed pgoutput message: empty");
        return false;
    }
    msg->kind = (pgo_kind_t)be(&r, 1, "kind");
    switch (msg->kind) {
    case PGO_BEGIN:
        msg->u.begin.final_lsn = be(&r, 8, "begin lsn");
        msg->u.begin.commit_time = (int64_t)be(&r, 8, "begin time");
        msg->u.begin.xid = (uint32_t)be(&r, 4, "xid");
        break;
    case PGO_COMMIT:
        msg->u.commit.flags = (uint8_t)be(&r, 1, "commit flags");
        msg->u.commit.commit_lsn = be(&r, 8, "commit lsn");
        msg->u.commit.end_lsn = be(&r, 8, "commit end lsn");
        msg->u.commit.commit_time = (int64_t)be(&r, 8, "commit time");
        break;
    case PGO_ORIGIN:
        msg->u.origin.lsn = be(&r, 8, "origin lsn");
        msg->u.origin.name = str(&r, "origin name");
        break;
    case PGO_RELATION: {
        msg->u.relation.relid = (uint32_t)be(&r, 4, "relation id");
        msg->u.relation.nspname = str(&r, "namespace");
        msg->u.relation.relname = str(&r, "relation name");
        msg->u.relation.replident = (char)be(&r, 1, "replica identity");
        uint16_t n = (uint16_t)be(&r, 2, "column count");
        if (r.failed)
            break;
        if (n > PGO_MAX_COLUMNS) {
            fail(&r, "more columns than PostgreSQL allows");
            break;
        }
        if (!grow((void **)&d->cols, &d->ccap, n ? n : 1, sizeof(pgo_column_t))) {
            fail(&r, "out of memory");
            break;
        }
        for (uint16_t i = 0; i < n && !r.failed; i++) {
            d->cols[i].flags = (uint8_t)be(&r, 1, "column flags");
            d->cols[i].name = str(&r, "column name");
            d->cols[i].type_oid = (uint32_t)be(&r, 4, "column type");
            d->cols[i].typmod = (int32_t)be(&r, 4, "column typmod");
        }
        msg->u.relation.ncols = n;
        msg->u.relation.cols = d->cols;
        break;
    }
    case PGO_TYPE:
        msg->u.type.oid = (uint32_t)be(&r, 4, "type oid");
        msg->u.type.nspname = str(&r, "type namespace");
        msg->u.type.name = str(&r, "type name");
        break;
    case PGO_INSERT:
        msg->u.change.relid = (uint32_t)be(&r, 4, "relation id");
        if ((char)be(&r, 1, "tuple marker") != 'N' && !r.failed)
            fail(&r, "insert without a new tuple");
        tuple(d, &r, 1, &msg->u.change.new_tuple);
        break;
    case PGO_UPDATE: {
        msg->u.change.relid = (uint32_t)be(&r, 4, "relation id");
        char m = (char)be(&r, 1, "tuple marker");
        if (!r.failed && (m == 'K' || m == 'O')) {
            msg->u.change.old_kind = m;
            if (tuple(d, &r, 0, &msg->u.change.old_tuple))
                m = (char)be(&r, 1, "tuple marker");
        }
        if (!r.failed && m != 'N')
            fail(&r, "update without a new tuple");
        tuple(d, &r, 1, &msg->u.change.new_tuple);
        break;
    }
    case PGO_DELETE: {
        msg->u.change.relid = (uint32_t)be(&r, 4, "relation id");
        char m = (char)be(&r, 1, "tuple marker");
        if (!r.failed && m != 'K' && m != 'O')
            fail(&r, "delete without an old key or row");
        msg->u.change.old_kind = m;
        tuple(d, &r, 0, &msg->u.change.old_tuple);
        break;
    }
    case PGO_TRUNCATE: {
        uint32_t n = (uint32_t)be(&r, 4, "relation count");
        msg->u.truncate.options = (uint8_t)be(&r, 1, "truncate options");
        if (r.failed)
            break;
        if ((size_t)(r.end - r.p) / 4 < n) {
            fail(&r, "more relations than the message holds");
            break;
        }
        if (!grow((void **)&d->relids, &d->rcap, n ? n : 1, sizeof(uint32_t))) {
            fail(&r, "out of memory");
            break;
        }
        for (uint32_t i = 0; i < n; i++)
            d->relids[i] = (uint32_t)be(&r, 4, "relation id");
        msg->u.truncate.nrels = n;
        msg->u.truncate.relids = d->relids;
        break;
    }
    case PGO_MESSAGE: {
        msg->u.message.flags = (uint8_t)be(&r, 1, "message flags");
        msg->u.message.lsn = be(&r, 8, "message lsn");
        msg->u.message.prefix = str(&r, "message prefix");
        uint32_t n = (uint32_t)be(&r, 4, "message length");
        if (need(&r, n, "message content")) {
            msg->u.message.content = (const char *)r.p;
            msg->u.message.len = n;
            r.p += n;
        }
        break;
    }
    default:
        snprintf(err, errlen, "unknown pgoutput message type 0x%02x", buf[0]);
        return false;
    }
    if (!r.failed && r.p != r.end)
        fail(&r, "trailing bytes");
    return !r.failed;
}
