/* native: ClickHouse Native blocks built column by column. */
#include "native.h"

#include <stdlib.h>
#include <string.h>

bool
native_block_init(native_block_t *b, size_t ncols)
{
    memset(b, 0, sizeof(*b));
    b->cols = calloc(ncols ? ncols : 1, sizeof(*b->cols));
    if (!b->cols)
        return false;
    b->ncols = ncols;
    buf_init(&b->head);
    for (size_t i = 0; i < ncols; i++) {
        buf_init(&b->cols[i].head);
        buf_init(&b->cols[i].nulls);
        buf_init(&b->cols[i].data);
    }
    return true;
}

void
native_block_free(native_block_t *b)
{
    for (size_t i = 0; b->cols && i < b->ncols; i++) {
        buf_free(&b->cols[i].head);
        buf_free(&b->cols[i].nulls);
        buf_free(&b->cols[i].data);
    }
    buf_free(&b->head);
    free(b->cols);
    memset(b, 0, sizeof(*b));
}

static void
put_string(buf_t *out, const char *s)
{
    size_t n = strlen(s);
    buf_varint(out, n);
    buf_append(out, s, n);
}

void
native_block_column(native_block_t *b, size_t i, const char *name, const char *type, bool nullable)
{
    native_col_t *c = &b->cols[i];
    buf_reset(&c->head);
    put_string(&c->head, name);
    put_string(&c->head, type);
    c->nullable = nullable;
}

size_t
native_block_bytes(const native_block_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->ncols; i++)
        n += b->cols[i].nulls.len + b->cols[i].data.len;
    return n;
}

bool
native_block_seal(native_block_t *b)
{
    bool oom = b->head.oom;
    buf_reset(&b->head);
    buf_varint(&b->head, b->ncols);
    buf_varint(&b->head, b->rows);
    for (size_t i = 0; i < b->ncols; i++)
        oom = oom || b->cols[i].head.oom || b->cols[i].nulls.oom || b->cols[i].data.oom;
    b->sealed = true;
    b->seg = 0;
    b->off = 0;
    return !oom && !b->head.oom;
}

/* segment k of the sealed block: 0 the head, then 3 per column (head, nulls, data) */
static const buf_t *
segment(const native_block_t *b, size_t k)
{
    if (k == 0)
        return &b->head;
    const native_col_t *c = &b->cols[(k - 1) / 3];
    switch ((k - 1) % 3) {
    case 0:
        return &c->head;
    case 1:
        return c->nullable ? &c->nulls : NULL;
    default:
        return &c->data;
    }
}

size_t
native_block_read(native_block_t *b, unsigned char *out, size_t cap)
{
    size_t n = 0, nsegs = 1 + 3 * b->ncols;
    while (b->sealed && n < cap) {
        const buf_t *s = segment(b, b->seg);
        size_t len = s ? s->len : 0, take = len - b->off < cap - n ? len - b->off : cap - n;
        if (take)
            memcpy(out + n, s->data + b->off, take);
        n += take;
        b->off += take;
        if (b->off < len)
            continue;
        b->seg++;
        b->off = 0;
        if (b->seg == nsegs) { /* all read: the block is empty again */
            for (size_t i = 0; i < b->ncols; i++) {
                buf_reset(&b->cols[i].nulls);
                buf_reset(&b->cols[i].data);
            }
            b->rows = 0;
            b->sealed = false;
        }
    }
    return n;
}

size_t
native_block_left(const native_block_t *b)
{
    if (!b->sealed)
        return 0;
    size_t n = 0, nsegs = 1 + 3 * b->ncols;
    for (size_t k = b->seg; k < nsegs; k++) {
        const buf_t *s = segment(b, k);
        n += s ? s->len : 0;
    }
    return n - b->off;
}

bool
native_block_flush(native_block_t *b, buf_t *out)
{
    if (b->rows == 0)
        return true;
    if (!native_block_seal(b))
        return false;
    unsigned char tmp[65536];
    size_t n;
    while ((n = native_block_read(b, tmp, sizeof(tmp))) > 0)
        buf_append(out, tmp, n);
    return !out->oom;
}
