/*
 * mask: hides passwords in connection strings before anything is logged or displayed.
 * Handles URIs (scheme://user:secret@host), conninfo (password=secret, password='a b') and
 * URI query parameters (?password=secret&...).
 */
#ifndef PGFERRY_MASK_H
#define PGFERRY_MASK_H

#include <stddef.h>

#define MASK_TEXT "*****"

/* Returns a malloc'd masked copy (caller frees), or NULL when out of memory. */
char *mask_secrets(const char *in);

/* Masks buf (NUL-terminated, capacity cap) in place; output is truncated to fit cap. */
void mask_secrets_inplace(char *buf, size_t cap);

#endif
