/*
 * copytext: splits one row of PostgreSQL's COPY text format into fields and undoes its
 * escaping (\N is NULL; \\ \t \n \r \b \f \v, \ooo octal and \xhh hex are bytes).
 */
#ifndef PGFERRY_COPYTEXT_H
#define PGFERRY_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *ptr; /* NULL for SQL NULL; points into the row (unescaped in place) */
    size_t len;
} copytext_field_t;

/* Parses row (len bytes, a trailing newline allowed) in place into exactly nfields fields.
 * False with err set when the row has another number of fields or a bad escape. */
bool copytext_split(char *row, size_t len, copytext_field_t *fields, size_t nfields, char *err,
                    size_t errlen);

#endif
