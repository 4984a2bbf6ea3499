/* lsn: PostgreSQL WAL positions as text ("16/B374D848") and as 64-bit numbers. */
#ifndef PGFERRY_LSN_H
#define PGFERRY_LSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* False on malformed text (anything but two hex numbers around one slash). */
bool lsn_parse(const char *s, uint64_t *out);
void lsn_format(uint64_t lsn, char *out, size_t outlen);

#endif
