/* tablename: identifier parsing and quoting; pure functions, no I/O. */
#include "tablename.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses one identifier at *pp into out; advances *pp past it. */
static bool
parse_ident(const char **pp, char *out, char *err, size_t errlen)
{
    const char *p = *pp;
    size_t n = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '"') {
        p++;
        for (;;) {
            if (*p == '\0') {
                snprintf(err, errlen, "unterminated quoted identifier");
                return false;
            }
            if (*p == '"') {
                if (p[1] == '"') {
                    p++;
                } else {
                    p++;
                    break;
                }
            }
            if (n >= TABLENAME_MAX_IDENT) {
                snprintf(err, errlen, "identifier longer than %d bytes", TABLENAME_MAX_IDENT);
                return false;
            }
            out[n++] = *p++;
        }
        if (n == 0) {
            snprintf(err, errlen, "empty quoted identifier");
            return false;
        }
    } else {
        while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == '$' ||
                      (unsigned char)*p >= 0x80)) {
            if (n >= TABLENAME_MAX_IDENT) {
                snprintf(err, errlen, "identifier longer than %d bytes", TABLENAME_MAX_IDENT);
                return false;
            }
            out[n++] = (char)tolower((unsigned char)*p);
            p++;
        }
        if (n == 0) {
            snprintf(err, errlen, "expected a table name at '%.20s'", p);
            return false;
        }
        if (isdigit((unsigned char)out[0])) {
            snprintf(err, errlen, "unquoted identifier may not start with a digit");
            return false;
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    out[n] = '\0';
    *pp = p;
    return true;
}

bool
tablename_parse(const char *in, tablename_t *out, char *err, size_t errlen)
{
    const char *p = in;
    char first[TABLENAME_MAX_IDENT + 1];
    if (!parse_ident(&p, first, err, errlen))
        return false;
    if (*p == '.') {
        p++;
        if (!parse_ident(&p, out->table, err, errlen))
            return false;
        memcpy(out->schema, first, sizeof(first));
    } else {
        snprintf(out->schema, sizeof(out->schema), "public");
        memcpy(out->table, first, sizeof(first));
    }
    if (*p != '\0') {
        snprintf(err, errlen, "unexpected '%.20s' after table name", p);
        return false;
    }
    return true;
}

tablename_t *
tablename_parse_list(const char *in, size_t *count, char *err, size_t errlen)
{
    size_t cap = 8, n = 0;
    tablename_t *arr = malloc(cap * sizeof(*arr));
    char *item = malloc(strlen(in) + 1);
    if (!arr || !item) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    const char *p = in;
    while (*p) {
        size_t l = 0;
        bool q = false;
        while (*p && (q || *p != ',')) {
            if (*p == '"')
                q = !q;
            item[l++] = *p++;
        }
        item[l] = '\0';
        if (*p == ',')
            p++;
        char *s = item;
        while (*s == ' ')
            s++;
        if (*s == '\0') {
            snprintf(err, errlen, "empty table name in list");
            goto fail;
        }
        if (n == cap) {
            cap *= 2;
            tablename_t *a = realloc(arr, cap * sizeof(*arr));
            if (!a) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            arr = a;
        }
        char e[200];
        if (!tablename_parse(s, &arr[n], e, sizeof(e))) {
            snprintf(err, errlen, "bad table name '%s': %s", s, e);
            goto fail;
        }
        for (size_t k = 0; k < n; k++) {
            if (strcmp(arr[k].schema, arr[n].schema) == 0 &&
                strcmp(arr[k].table, arr[n].table) == 0) {
                snprintf(err, errlen, "table %s.%s is listed twice", arr[n].schema, arr[n].table);
                goto fail;
            }
        }
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "no table given");
        goto fail;
    }
    free(item);
    *count = n;
    return arr;
fail:
    free(item);
    free(arr);
    return NULL;
}

static bool
needs_quote(const char *id)
{
    if (!id[0] || isdigit((unsigned char)id[0]))
        return true;
    for (const char *p = id; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return true;
    }
    /* a small set of reserved words that appear as table names in practice */
    static const char *const kw[] = {"user",   "order",   "group",      "table", "select",  "from",
                                     "where",  "limit",   "offset",     "all",   "default", "check",
                                     "column", "primary", "references", "to",    "end",     "case"};
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
        if (strcmp(id, kw[i]) == 0)
            return true;
    }
    return false;
}

void
tablename_quote_pg(const char *ident, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen < 3) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (const char *p = ident; *p && o + 3 < outlen; p++) {
        if (*p == '"')
            out[o++] = '"';
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = '\0';
}

void
tablename_format(const char *schema, const char *table, char *out, size_t outlen)
{
    char s[2 * TABLENAME_MAX_IDENT + 3], t[2 * TABLENAME_MAX_IDENT + 3];
    if (needs_quote(schema))
        tablename_quote_pg(schema, s, sizeof(s));
    else
        snprintf(s, sizeof(s), "%s", schema);
    if (needs_quote(table))
        tablename_quote_pg(table, t, sizeof(t));
    else
        snprintf(t, sizeof(t), "%s", table);
    snprintf(out, outlen, "%s.%s", s, t);
}
