/*
 * tablename: parses operator-written table names ("schema.table", quoted identifiers,
 * comma-separated lists) the way PostgreSQL reads identifiers, and quotes them back.
 */
#ifndef PGFERRY_TABLENAME_H
#define PGFERRY_TABLENAME_H

#include <stdbool.h>
#include <stddef.h>

#define TABLENAME_MAX_IDENT 63 /* PostgreSQL's NAMEDATALEN - 1, in bytes */

typedef struct {
    char schema[TABLENAME_MAX_IDENT + 1];
    char table[TABLENAME_MAX_IDENT + 1];
} tablename_t;

/* Parses one name. Unquoted identifiers fold to lower case; "quoted" keep case, "" is a
 * quote; no schema means "public". On failure writes a reason into err. */
bool tablename_parse(const char *in, tablename_t *out, char *err, size_t errlen);

/* Splits a comma-separated list (commas inside quotes do not split). Returns a malloc'd
 * array of *count names (caller frees), or NULL with err set (also for an empty list). */
tablename_t *tablename_parse_list(const char *in, size_t *count, char *err, size_t errlen);

/* Writes schema.table with each part quoted only when PostgreSQL needs it. */
void tablename_format(const char *schema, const char *table, char *out, size_t outlen);

/* Writes ident quoted for PostgreSQL ("..." with "" doubled) into out. */
void tablename_quote_pg(const char *ident, char *out, size_t outlen);

#endif
