/*
 * buf: a growable byte buffer for building ClickHouse inserts. Out of memory is sticky
 * (buf->oom) so encoders can append freely and check once.
 */
#ifndef PGFERRY_BUF_H
#define PGFERRY_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned char *data; /* owned; freed by buf_free */
    size_t len, cap;
    bool oom;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
void buf_reset(buf_t *b); /* len = 0, keeps the allocation */
bool buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_byte(buf_t *b, unsigned char c);
void buf_le(buf_t *b, uint64_t v, int nbytes); /* little-endian integer of nbytes */
void buf_varint(buf_t *b, uint64_t v);         /* LEB128, as ClickHouse string lengths */

#endif
