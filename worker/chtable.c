/* chtable: encoders and the INSERT statement of one destination table. */
#include "chtable.h"
#include "chsql.h"
#include "meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

errclass_t
chtable_init(chtable_t *t, const char *db, const Pgferry__State__TableDef *def, const char *suffix,
             char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->def = def;
    t->ncols = def->n_columns;
    t->partition = def->partition_column;
    t->tm = calloc(def->n_columns ? def->n_columns : 1, sizeof(*t->tm));
    t->keycols = calloc(def->n_columns ? def->n_columns : 1, sizeof(*t->keycols));
    if (!t->tm || !t->keycols) {
        chtable_free(t);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    char q[300], qt[300], name[300];
    chsql_ident(db, q, sizeof(q));
    snprintf(name, sizeof(name), "%s%s", def->target, suffix ? suffix : "");
    chsql_ident(name, qt, sizeof(qt));
    snprintf(t->qname, sizeof(t->qname), "%s.%s", q, qt);
    buf_t b;
    buf_init(&b);
    buf_append(&b, "INSERT INTO ", 12);
    buf_append(&b, t->qname, strlen(t->qname));
    buf_append(&b, " (", 2);
    for (size_t i = 0; i < def->n_columns; i++) {
        const Pgferry__State__ColumnDef *col = def->columns[i];
        typemap_for_pg(col->base_type_oid, col->typcategory[0], col->base_typmod, col->not_null, 0,
                       typemap_flags_recorded(col->base_type_oid, col->ch_type), &t->tm[i]);
        if (strcmp(t->tm[i].ch_type, col->ch_type) != 0) {
            snprintf(err, errlen,
                     "column %s of %s.%s: recorded type %s, this version maps it to %s; resync "
                     "the pipe",
                     col->name, def->schema, def->name, col->ch_type, t->tm[i].ch_type);
            buf_free(&b);
            chtable_free(t);
            return ERRCLASS_FATAL;
        }
        chsql_ident(chtable_col_name(col), q, sizeof(q));
        if (i)
            buf_append(&b, ", ", 2);
        buf_append(&b, q, strlen(q));
    }
    for (uint32_t k = 1; k <= def->n_columns; k++) {
        for (size_t i = 0; i < def->n_columns; i++) {
            if (def->columns[i]->key_position == k)
                t->keycols[t->nkeys++] = i;
        }
    }
    const char *tail = t->partition ? ", `" META_VERSION "`, `" META_DELETED "`, `" META_PARTITION
                                      "`) FORMAT RowBinary"
                                    : ", `" META_VERSION "`, `" META_DELETED "`) FORMAT RowBinary";
    buf_append(&b, tail, strlen(tail) + 1);
    if (b.oom) {
        buf_free(&b);
        chtable_free(t);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    t->insert_sql = (char *)b.data;
    /* the same columns as Native blocks (the snapshot's loads) */
    size_t rb = strlen("RowBinary"), len = b.len - 1 - rb;
    t->insert_native_sql = malloc(len + sizeof("Native"));
    if (!t->insert_native_sql) {
        chtable_free(t);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    memcpy(t->insert_native_sql, t->insert_sql, len);
    memcpy(t->insert_native_sql + len, "Native", sizeof("Native"));
    return ERRCLASS_NONE;
}

void
chtable_free(chtable_t *t)
{
    free(t->tm);
    free(t->keycols);
    free(t->insert_sql);
    free(t->insert_native_sql);
    t->insert_native_sql = NULL;
    t->tm = NULL;
    t->keycols = NULL;
    t->insert_sql = NULL;
}

void
chtable_put_trailer(const chtable_t *t, buf_t *out, uint64_t version, bool deleted,
                    uint32_t partition)
{
    buf_le(out, version, 8);
    buf_byte(out, deleted ? 1 : 0);
    if (t->partition)
        buf_le(out, partition, 4);
}

size_t
chtable_row_size(const chtable_t *t, const unsigned char *data, size_t len)
{
    size_t pos = 0;
    for (size_t i = 0; i < t->ncols; i++) {
        size_t n = typemap_value_size(&t->tm[i], data + pos, len - pos);
        if (n == 0)
            return 0;
        pos += n;
    }
    size_t trailer = 9 + (t->partition ? 4 : 0);
    return len - pos >= trailer ? pos + trailer : 0;
}

void
chtable_key_structure(const chtable_t *t, buf_t *out)
{
    for (size_t k = 0; k < t->nkeys; k++) {
        char name[16];
        int n = snprintf(name, sizeof(name), "%sk%zu ", k ? ", " : "", k);
        buf_append(out, name, (size_t)n);
        /* key columns are never Nullable (keys are NOT NULL) */
        const char *ty = t->tm[t->keycols[k]].ch_type;
        buf_append(out, ty, strlen(ty));
    }
}

void
chtable_key_tuple(const chtable_t *t, buf_t *out)
{
    char q[300];
    buf_byte(out, '(');
    for (size_t k = 0; k < t->nkeys; k++) {
        chsql_ident(chtable_col_name(t->def->columns[t->keycols[k]]), q, sizeof(q));
        if (k)
            buf_append(out, ", ", 2);
        buf_append(out, q, strlen(q));
    }
    buf_byte(out, ')');
}

void
chtable_memory_hint(const chtable_t *t, char *err, size_t errlen)
{
    const char *p = strstr(err, "Code: ");
    if (!p || atoi(p + 6) != 241) /* MEMORY_LIMIT_EXCEEDED */
        return;
    size_t files = 0;
    for (size_t i = 0; i < t->ncols; i++)
        files += t->tm[i].nullable ? 2 : 1;
    if (files < 400)
        return;
    size_t l = strlen(err);
    snprintf(err + l, errlen > l ? errlen - l : 0,
             " (%s has %zu columns in %zu column files: ClickHouse 18.16 buffers about 2.5 MB "
             "per column file in an insert, so it needs about %zu MB of max_memory_usage; raise "
             "it for pgferry's ClickHouse user)",
             t->qname, t->ncols, files, files * 5 / 2 + 100);
}
