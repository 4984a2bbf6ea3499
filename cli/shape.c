/* shape: --exclude-columns, --target, --order-by, --partition-by for create and add-tables. */
#include "shape.h"
#include "tablename.h"
#include "chexpr.h"
#include "chnames.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SH_EXCLUDE, SH_TARGET, SH_ORDER_BY, SH_PARTITION_BY };

typedef struct {
    int kind;
    tablename_t table;
    char *value; /* SH_TARGET, SH_PARTITION_BY; SH_EXCLUDE: the column */
    char **cols; /* SH_ORDER_BY */
    size_t n_cols;
} shape_entry_t;

struct shape {
    shape_entry_t *e;
    size_t n;
    char **strs; /* every string handed out, freed with s */
    size_t n_strs;
    char **lists; /* order-by arrays */
    size_t n_lists;
};

static const char *const option_name[] = {"--exclude-columns", "--target", "--order-by",
                                          "--partition-by"};

shape_t *
shape_new(void)
{
    return calloc(1, sizeof(shape_t));
}

void
shape_free(shape_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_strs; i++)
        free(s->strs[i]);
    for (size_t i = 0; i < s->n_lists; i++)
        free(s->lists[i]);
    free(s->strs);
    free(s->lists);
    free(s->e);
    free(s);
}

static bool
keep(char ***arr, size_t *n, char *p)
{
    char **a = realloc(*arr, (*n + 1) * sizeof(*a));
    if (!a)
        return false;
    *arr = a;
    a[(*n)++] = p;
    return true;
}

static char *
keep_str(shape_t *s, const char *from, size_t len)
{
    char *p = malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, from, len);
    p[len] = '\0';
    if (!keep(&s->strs, &s->n_strs, p)) {
        free(p);
        return NULL;
    }
    return p;
}

/* One identifier as PostgreSQL reads it: "quoted" keeps case ("" is a quote), otherwise
 * folded to lower case. */
static bool
parse_ident(const char *in, size_t len, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t o = 0;
    if (len == 0) {
        snprintf(err, errlen, "empty column name");
        return false;
    }
    if (in[0] == '"') {
        size_t i = 1;
        for (; i < len; i++) {
            if (in[i] == '"') {
                if (i + 1 < len && in[i + 1] == '"') {
                    i++;
                } else {
                    break;
                }
            }
            if (o + 1 >= outlen || o >= TABLENAME_MAX_IDENT) {
                snprintf(err, errlen, "column name longer than %d bytes", TABLENAME_MAX_IDENT);
                return false;
            }
            out[o++] = in[i];
        }
        if (i != len - 1 || o == 0) {
            snprintf(err, errlen, "bad quoted column name %.*s", (int)len, in);
            return false;
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)in[i];
            if (ch == '"' || ch == '.' || ch == ',' || isspace(ch) || ch < 0x20) {
                snprintf(err, errlen, "bad column name %.*s (quote it)", (int)len, in);
                return false;
            }
            if (o + 1 >= outlen || o >= TABLENAME_MAX_IDENT) {
                snprintf(err, errlen, "column name longer than %d bytes", TABLENAME_MAX_IDENT);
                return false;
            }
            out[o++] = (char)tolower(ch);
        }
    }
    out[o] = '\0';
    return true;
}

/* The first ch outside "quotes" from p on, or NULL */
static const char *
unquoted(const char *p, char ch)
{
    bool q = false;
    for (; *p; p++) {
        if (*p == '"')
            q = !q;
        else if (*p == ch && !q)
            return p;
    }
    return NULL;
}

/* The end of the list item starting at p: the next comma outside quotes, or the end. */
static const char *
item_end(const char *p)
{
    const char *c = unquoted(p, ',');
    return c ? c : p + strlen(p);
}

/* The last '.' outside quotes in [p, end), or NULL */
static const char *
last_dot(const char *p, const char *end)
{
    bool q = false;
    const char *dot = NULL;
    for (; p < end; p++) {
        if (*p == '"')
            q = !q;
        else if (*p == '.' && !q)
            dot = p;
    }
    return dot;
}

static shape_entry_t *
add_entry(shape_t *s, int kind)
{
    shape_entry_t *e = realloc(s->e, (s->n + 1) * sizeof(*e));
    if (!e)
        return NULL;
    s->e = e;
    memset(&e[s->n], 0, sizeof(*e));
    e[s->n].kind = kind;
    return &e[s->n++];
}

static bool
parse_table(const char *from, size_t len, tablename_t *out, char *err, size_t errlen)
{
    char t[300];
    if (len == 0 || len >= sizeof(t)) {
        snprintf(err, errlen, "missing or too long table name");
        return false;
    }
    memcpy(t, from, len);
    t[len] = '\0';
    if (!tablename_parse(t, out, err, errlen))
        return false;
    if (!out->schema[0])
        snprintf(out->schema, sizeof(out->schema), "public");
    return true;
}

static int
oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return -1;
}

int
shape_option(shape_t *s, const char *k, const char *v, char *err, size_t errlen)
{
    int kind = -1;
    for (int i = 0; i < 4; i++) {
        if (strcmp(k, option_name[i]) == 0)
            kind = i;
    }
    if (kind < 0)
        return 0;
    char e2[300];
    if (kind == SH_EXCLUDE) {
        if (!*v) {
            snprintf(err, errlen, "%s: empty list", k);
            return -1;
        }
        for (const char *p = v; *p;) {
            const char *end = item_end(p);
            const char *dot = last_dot(p, end);
            if (!dot) {
                snprintf(err, errlen, "%s: %.*s is not SCHEMA.TABLE.COLUMN or TABLE.COLUMN", k,
                         (int)(end - p), p);
                return -1;
            }
            shape_entry_t *e = add_entry(s, kind);
            char col[TABLENAME_MAX_IDENT + 1];
            if (!e)
                return oom(err, errlen);
            if (!parse_table(p, (size_t)(dot - p), &e->table, e2, sizeof(e2)) ||
                !parse_ident(dot + 1, (size_t)(end - dot - 1), col, sizeof(col), e2, sizeof(e2))) {
                snprintf(err, errlen, "%s: %.*s: %s", k, (int)(end - p), p, e2);
                return -1;
            }
            if (!(e->value = keep_str(s, col, strlen(col))))
                return oom(err, errlen);
            p = *end ? end + 1 : end;
        }
        return 1;
    }
    const char *eq = unquoted(v, '='); /* ends the table part of "s.t=value" */
    if (!eq || !eq[1]) {
        snprintf(err, errlen, "%s takes SCHEMA.TABLE=%s", k,
                 kind == SH_TARGET     ? "NAME"
                 : kind == SH_ORDER_BY ? "COLUMN[,COLUMN...]"
                                       : "EXPRESSION");
        return -1;
    }
    shape_entry_t *e = add_entry(s, kind);
    if (!e)
        return oom(err, errlen);
    if (!parse_table(v, (size_t)(eq - v), &e->table, e2, sizeof(e2))) {
        snprintf(err, errlen, "%s: %s", k, e2);
        return -1;
    }
    const char *val = eq + 1;
    if (kind == SH_TARGET) {
        if (!chnames_target_check(val, e2, sizeof(e2))) {
            snprintf(err, errlen, "%s: %s", k, e2);
            return -1;
        }
        e->value = keep_str(s, val, strlen(val));
        return e->value ? 1 : oom(err, errlen);
    }
    if (kind == SH_PARTITION_BY) {
        if (!chexpr_check(val, k, err, errlen))
            return -1;
        e->value = keep_str(s, val, strlen(val));
        return e->value ? 1 : oom(err, errlen);
    }
    /* SH_ORDER_BY */
    for (const char *p = val; *p;) {
        const char *end = item_end(p);
        char col[TABLENAME_MAX_IDENT + 1];
        if (!parse_ident(p, (size_t)(end - p), col, sizeof(col), e2, sizeof(e2))) {
            snprintf(err, errlen, "%s: %s", k, e2);
            return -1;
        }
        char **cols = realloc(e->cols, (e->n_cols + 1) * sizeof(*cols));
        if (!cols)
            return oom(err, errlen);
        if (!e->cols && !keep(&s->lists, &s->n_lists, (char *)cols)) {
            free(cols);
            return oom(err, errlen);
        }
        if (e->cols != cols) { /* moved: the kept pointer follows */
            for (size_t i = 0; i < s->n_lists; i++) {
                if (s->lists[i] == (char *)e->cols)
                    s->lists[i] = (char *)cols;
            }
        }
        e->cols = cols;
        if (!(cols[e->n_cols] = keep_str(s, col, strlen(col))))
            return oom(err, errlen);
        e->n_cols++;
        p = *end ? end + 1 : end;
    }
    return 1;
}

static bool
same_table(const tablename_t *a, const Pgferry__State__TableSpec *t)
{
    const char *schema = t->schema && t->schema[0] ? t->schema : "public";
    return strcmp(a->schema, schema) == 0 && strcmp(a->table, t->name) == 0;
}

bool
shape_apply(shape_t *s, Pgferry__State__TableSpec **t, size_t n, char *err, size_t errlen)
{
    if (!s)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        shape_entry_t *e = &s->e[i];
        char shown[300];
        tablename_format(e->table.schema, e->table.table, shown, sizeof(shown));
        Pgferry__State__TableSpec *ts = NULL;
        for (size_t k = 0; k < n && !ts; k++) {
            if (same_table(&e->table, t[k]))
                ts = t[k];
        }
        if (!ts) {
            snprintf(err, errlen, "%s names table %s, which is not in the table list",
                     option_name[e->kind], shown);
            return false;
        }
        switch (e->kind) {
        case SH_EXCLUDE: {
            for (size_t c = 0; c < ts->n_excluded_columns; c++) {
                if (strcmp(ts->excluded_columns[c], e->value) == 0) {
                    snprintf(err, errlen, "--exclude-columns names %s.%s twice", shown, e->value);
                    return false;
                }
            }
            char **a = realloc(ts->n_excluded_columns ? ts->excluded_columns : NULL,
                               (ts->n_excluded_columns + 1) * sizeof(*a));
            if (!a || (!ts->n_excluded_columns && !keep(&s->lists, &s->n_lists, (char *)a))) {
                free(a);
                snprintf(err, errlen, "out of memory");
                return false;
            }
            for (size_t l = 0; l < s->n_lists; l++) {
                if (ts->n_excluded_columns && s->lists[l] == (char *)ts->excluded_columns)
                    s->lists[l] = (char *)a;
            }
            ts->excluded_columns = a;
            a[ts->n_excluded_columns++] = e->value;
            break;
        }
        case SH_TARGET:
            if (ts->target && ts->target[0]) {
                snprintf(err, errlen, "--target is given twice for %s", shown);
                return false;
            }
            ts->target = e->value;
            break;
        case SH_PARTITION_BY:
            if (ts->partition_by && ts->partition_by[0]) {
                snprintf(err, errlen, "--partition-by is given twice for %s", shown);
                return false;
            }
            ts->partition_by = e->value;
            break;
        case SH_ORDER_BY:
            if (ts->n_order_by) {
                snprintf(err, errlen, "--order-by is given twice for %s", shown);
                return false;
            }
            ts->order_by = e->cols;
            ts->n_order_by = e->n_cols;
            break;
        }
    }
    return true;
}
