/* buf: growth and little-endian/varint appends. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void
buf_init(buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void
buf_free(buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void
buf_reset(buf_t *b)
{
    b->len = 0;
}

bool
buf_grow(buf_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void
buf_varint(buf_t *b, uint64_t v)
{
    do {
        unsigned char c = v & 0x7f;
        v >>= 7;
        if (v)
            c |= 0x80;
        buf_byte(b, c);
    } while (v);
}
