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
buf_reserve(buf_t *b, size_t extra)
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
buf_append(buf_t *b, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void
buf_byte(buf_t *b, unsigned char c)
{
    if (!buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
}

void
buf_le(buf_t *b, uint64_t v, int nbytes)
{
    if (!buf_reserve(b, (size_t)nbytes))
        return;
    for (int i = 0; i < nbytes; i++) {
        b->data[b->len++] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
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
