/*
 * buf: a growable byte buffer for building ClickHouse inserts. Out of memory is sticky
 * (buf->oom) so encoders can append freely and check once.
 */
#ifndef PGFERRY_BUF_H
#define PGFERRY_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    unsigned char *data; /* owned; freed by buf_free */
    size_t len, cap;
    bool oom;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
void buf_reset(buf_t *b); /* len = 0, keeps the allocation */
/* Makes room for extra more bytes (the slow path of buf_reserve). */
bool buf_grow(buf_t *b, size_t extra);
void buf_varint(buf_t *b, uint64_t v); /* LEB128, as ClickHouse string lengths */

/* The appends below are inline: the snapshot calls them for every value it converts. */
static inline bool
buf_reserve(buf_t *b, size_t extra)
{
    if (!b->oom && b->len + extra <= b->cap)
        return true;
    return buf_grow(b, extra);
}

static inline void
buf_append(buf_t *b, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void
buf_byte(buf_t *b, unsigned char c)
{
    if (!buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
}

/* little-endian integer of nbytes */
static inline void
buf_le(buf_t *b, uint64_t v, int nbytes)
{
    if (!buf_reserve(b, (size_t)nbytes))
        return;
    for (int i = 0; i < nbytes; i++) {
        b->data[b->len++] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

#endif
