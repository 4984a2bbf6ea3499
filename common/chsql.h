/* chsql: quoting for ClickHouse SQL (identifiers in backquotes, string literals). */
#ifndef PGFERRY_CHSQL_H
#define PGFERRY_CHSQL_H

#include <stddef.h>

/* `ident` with backquote and backslash escaped, into out (always terminated). */
void chsql_ident(const char *ident, char *out, size_t outlen);
/* 'text' with quote and backslash escaped, into out (always terminated). */
void chsql_string(const char *text, char *out, size_t outlen);

#endif
