/* setup: definitions from PostgreSQL, DDL and verification in ClickHouse. */
#include "setup.h"
#include "owners.h"
#include "slotwait.h"
#include "buf.h"
#include "chclient.h"
#include "chsql.h"
#include "log.h"
#include "meta.h"
#include "pgconn.h"
#include "tablename.h"
#include "typemap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
setup_free_def(Pgferry__State__TableDef *d)
{
    /* every field is its own allocation, as protobuf-c's unpack makes them */
    if (d)
        pgferry__state__table_def__free_unpacked(d, NULL);
}

void
setup_free_result(setup_result_t *r)
{
    for (size_t i = 0; i < r->n_tables; i++)
        setup_free_def(r->tables[i]);
    free(r->tables);
    r->tables = NULL;
    r->n_tables = 0;
}

errclass_t
setup_names_by_oid(PGconn *c, const uint32_t *relids, size_t n, char **schemas, char **names,
                   char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        schemas[i] = names[i] = NULL;
    if (n == 0)
        return ERRCLASS_NONE;
    buf_t arr;
    buf_init(&arr);
    buf_byte(&arr, '{');
    for (size_t i = 0; i < n; i++) {
        char o[16];
        int l = snprintf(o, sizeof(o), "%s%u", i ? "," : "", relids[i]);
        buf_append(&arr, o, (size_t)l);
    }
    buf_append(&arr, "}", 2);
    const char *p[] = {(const char *)arr.data};
    errclass_t cls = ERRCLASS_TRANSIENT;
    PGresult *r = arr.oom ? NULL
                          : pgconn_query(c,
                                         "SELECT u.i, n.nspname, c.relname FROM unnest($1::oid[]) "
                                         "WITH ORDINALITY u(o, i) JOIN pg_class c ON c.oid = u.o "
                                         "JOIN pg_namespace n ON n.oid = c.relnamespace",
                                         1, p, &cls, err, errlen);
    buf_free(&arr);
    if (!r) {
        if (cls == ERRCLASS_TRANSIENT && !err[0])
            snprintf(err, errlen, "out of memory");
        return cls;
    }
    bool oom = false;
    for (int k = 0; k < PQntuples(r); k++) {
        long i = atol(PQgetvalue(r, k, 0)) - 1;
        if (i < 0 || (size_t)i >= n || schemas[i])
            continue;
        schemas[i] = strdup(PQgetvalue(r, k, 1));
        names[i] = strdup(PQgetvalue(r, k, 2));
        oom = oom || !schemas[i] || !names[i];
    }
    PQclear(r);
    if (oom) {
        for (size_t i = 0; i < n; i++) {
            free(schemas[i]);
            free(names[i]);
            schemas[i] = names[i] = NULL;
        }
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    return ERRCLASS_NONE;
}

/* Follows domains down to their base type: oid, typmod, category, NOT NULL. */
static errclass_t
resolve_domain(PGconn *c, uint32_t *oid, int32_t *typmod, char *cat, bool *not_null, char *err,
               size_t errlen)
{
    for (int depth = 0; depth < 32; depth++) {
        char o[16];
        snprintf(o, sizeof(o), "%u", *oid);
        const char *params[] = {o};
        errclass_t cls;
        PGresult *r = pgconn_query(c,
                                   "SELECT typtype, typcategory, typbasetype, typtypmod, "
                                   "typnotnull FROM pg_type WHERE oid = $1::oid",
                                   1, params, &cls, err, errlen);
        if (!r)
            return cls;
        if (PQntuples(r) != 1) {
            PQclear(r);
            snprintf(err, errlen, "type %s disappeared from the source", o);
            return ERRCLASS_FATAL;
        }
        bool domain = PQgetvalue(r, 0, 0)[0] == 'd';
        *cat = PQgetvalue(r, 0, 1)[0];
        if (domain) {
            *oid = (uint32_t)strtoul(PQgetvalue(r, 0, 2), NULL, 10);
            int32_t tm = (int32_t)atoi(PQgetvalue(r, 0, 3));
            if (tm != -1)
                *typmod = tm;
            *not_null = *not_null || PQgetvalue(r, 0, 4)[0] == 't';
        }
        PQclear(r);
        if (!domain)
            return ERRCLASS_NONE;
    }
    snprintf(err, errlen, "domain nesting deeper than 32 levels");
    return ERRCLASS_FATAL;
}

errclass_t
setup_type_info(PGconn *c, uint32_t type_oid, int32_t typmod, setup_type_t *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->base_oid = type_oid;
    out->base_typmod = typmod;
    out->category = 'U';
    char o[16], m[16];
    snprintf(o, sizeof(o), "%u", type_oid);
    snprintf(m, sizeof(m), "%d", (int)typmod);
    const char *p[] = {o, m};
    errclass_t cls;
    PGresult *r =
        pgconn_query(c, "SELECT format_type(oid, $2::int) FROM pg_type WHERE oid = $1::oid", 2, p,
                     &cls, err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) != 1) {
        /* the type is gone (a column of it was dropped since): its text form is what the
         * stream carries, which a String keeps */
        PQclear(r);
        snprintf(out->pg_type, sizeof(out->pg_type), "type %u (dropped)", type_oid);
        return ERRCLASS_NONE;
    }
    snprintf(out->pg_type, sizeof(out->pg_type), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    out->found = true;
    return resolve_domain(c, &out->base_oid, &out->base_typmod, &out->category, &out->not_null, err,
                          errlen);
}

bool
setup_column_excluded(const Pgferry__State__TableSpec *t, const char *col)
{
    for (size_t i = 0; i < t->n_excluded_columns; i++) {
        if (strcmp(t->excluded_columns[i], col) == 0)
            return true;
    }
    return false;
}

static bool
add_skipped(Pgferry__State__TableDef *d, const char *name, const char *reason)
{
    Pgferry__State__SkippedColumn **n =
        realloc(d->skipped_columns, (d->n_skipped_columns + 1) * sizeof(*n));
    if (!n)
        return false;
    d->skipped_columns = n;
    Pgferry__State__SkippedColumn *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return false;
    pgferry__state__skipped_column__init(sc);
    sc->name = strdup(name);
    sc->reason = strdup(reason);
    d->skipped_columns[d->n_skipped_columns++] = sc;
    return sc->name && sc->reason;
}

const char *
setup_skipped_reason(const Pgferry__State__TableDef *d, const char *col)
{
    for (size_t i = 0; i < d->n_skipped_columns; i++) {
        if (strcmp(d->skipped_columns[i]->name, col) == 0)
            return d->skipped_columns[i]->reason;
    }
    return NULL;
}

/* What a user's publication publishes of table relid (PostgreSQL 15 and later: its row filter
 * and column list): fills d->row_filter, and *attnames with the published columns as a
 * PostgreSQL array literal. */
static errclass_t
read_publication(PGconn *c, const char *pub, const char *relid, const char *shown,
                 Pgferry__State__TableDef *d, char **attnames, char *err, size_t errlen)
{
    bool v15 = PQserverVersion(c) >= 150000;
    const char *p[] = {relid, pub};
    errclass_t cls;
    PGresult *r = pgconn_query(
        c,
        v15 ? "SELECT DISTINCT COALESCE(pt.rowfilter, ''), pt.attnames::text "
              "FROM pg_publication_tables pt WHERE pt.pubname = $2 AND " PUB_RELATIONS
            : "SELECT DISTINCT '', NULL FROM pg_publication_tables pt WHERE pt.pubname = $2 "
              "AND " PUB_RELATIONS,
        2, p, &cls, err, errlen);
    if (!r)
        return cls;
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        snprintf(err, errlen,
                 "table %s is not in publication %s; add it (ALTER PUBLICATION %s ADD TABLE "
                 "...) or let pgferry own the publication",
                 shown, pub, pub);
        return ERRCLASS_FATAL;
    }
    if (n > 1) {
        PQclear(r);
        snprintf(err, errlen,
                 "publication %s publishes the partitions of %s with different row filters or "
                 "column lists; pgferry needs one for the whole table",
                 pub, shown);
        return ERRCLASS_FATAL;
    }
    d->row_filter = strdup(PQgetvalue(r, 0, 0));
    *attnames = PQgetisnull(r, 0, 1) ? NULL : strdup(PQgetvalue(r, 0, 1));
    PQclear(r);
    if (!d->row_filter) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    return ERRCLASS_NONE;
}

errclass_t
setup_read_table(PGconn *c, const Pgferry__State__PipeSpec *spec,
                 const Pgferry__State__TableSpec *t, uint32_t by_oid, long ch_version,
                 unsigned tm_flags, Pgferry__State__TableDef **out, char *err, size_t errlen)
{
    char shown[300];
    const char *schema = t->schema[0] ? t->schema : "public";
    tablename_format(schema, t->name, shown, sizeof(shown));
    const char *p1[] = {schema, t->name};
    errclass_t cls;
    int pgver = PQserverVersion(c);
    bool snapshot_only = spec->mode == PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY;
    /* a user's publication decides the rows and columns; the pipe's own publishes all */
    bool user_pub = !snapshot_only && !spec->publication_owned;
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", by_oid);
    const char *p0[] = {oid};
    PGresult *r =
        by_oid ? pgconn_query(c,
                              "SELECT c.oid, c.relpages, c.reltuples, c.relkind, c.relreplident, "
                              "n.nspname, c.relname "
                              "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE c.oid = $1::oid",
                              1, p0, &cls, err, errlen)
               : pgconn_query(c,
                              "SELECT c.oid, c.relpages, c.reltuples, c.relkind, c.relreplident, "
                              "n.nspname, c.relname "
                              "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE n.nspname = $1 AND c.relname = $2",
                              2, p1, &cls, err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) != 1) {
        PQclear(r);
        if (by_oid)
            snprintf(err, errlen,
                     "table %s (oid %u) was dropped at the source; remove it from the pipe "
                     "(pgferryctl remove-tables) or drop the pipe",
                     shown, by_oid);
        else
            snprintf(err, errlen, "table %s does not exist on the source", shown);
        return ERRCLASS_FATAL;
    }
    if (by_oid) { /* known by its oid: under its name today */
        schema = PQgetvalue(r, 0, 5);
        tablename_format(schema, PQgetvalue(r, 0, 6), shown, sizeof(shown));
    }
    Pgferry__State__TableDef *d = calloc(1, sizeof(*d));
    if (!d) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    pgferry__state__table_def__init(d);
    char relid[16];
    snprintf(relid, sizeof(relid), "%s", PQgetvalue(r, 0, 0));
    d->relid = (uint32_t)strtoul(relid, NULL, 10);
    d->relpages = atoll(PQgetvalue(r, 0, 1));
    d->reltuples = atof(PQgetvalue(r, 0, 2));
    /* a partitioned table's rows carry their leaf partition (a TRUNCATE of one partition) */
    d->partition_column = PQgetvalue(r, 0, 3)[0] == 'p';
    bool ident_full = PQgetvalue(r, 0, 4)[0] == 'f';
    d->schema = strdup(schema);
    d->name = strdup(by_oid ? PQgetvalue(r, 0, 6) : t->name);
    PQclear(r);
    d->target = strdup(t->target[0] ? t->target : t->name);
    d->partition_by = strdup(t->partition_by);
    char *attnames = NULL;
    if (user_pub) {
        cls = read_publication(c, spec->publication, relid, shown, d, &attnames, err, errlen);
        if (cls != ERRCLASS_NONE) {
            setup_free_def(d);
            return cls;
        }
    }

    const char *p2[] = {relid, attnames ? attnames : "{}", attnames ? "t" : "f"};
    r = pgconn_query(
        c,
        /* attgenerated: PostgreSQL 12 and later (pgferry supports 13 and later) */
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod, "
        " a.attnotnull, COALESCE((SELECT u.ord FROM unnest(k.indkey::int2[]) WITH "
        "   ORDINALITY u(att, ord) WHERE u.att = a.attnum), 0), a.attnum, a.attgenerated, "
        " NOT $3::bool OR a.attname = ANY($2::name[]) "
        "FROM pg_attribute a "
        "LEFT JOIN LATERAL (SELECT i.indkey FROM pg_index i WHERE i.indrelid = a.attrelid "
        "  AND (i.indisprimary OR i.indisreplident) "
        "  ORDER BY i.indisreplident DESC, i.indisprimary DESC LIMIT 1) k ON true "
        "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        3, p2, &cls, err, errlen);
    free(attnames);
    if (!r) {
        setup_free_def(d);
        return cls;
    }
    int n = PQntuples(r);
    d->columns = calloc((size_t)(n ? n : 1), sizeof(*d->columns));
    if (!d->columns) {
        PQclear(r);
        setup_free_def(d);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    int keys = 0;
    for (int i = 0; i < n; i++) {
        const char *name = PQgetvalue(r, i, 0);
        uint32_t keypos = (uint32_t)atoi(PQgetvalue(r, i, 5));
        char generated = PQgetvalue(r, i, 7)[0];
        bool published = PQgetvalue(r, i, 8)[0] == 't';
        /* Generated columns: PostgreSQL sends stored ones from version 18 on (the publication's
         * publish_generated_columns), virtual ones never. A snapshot-only pipe loads stored
         * ones. Elsewhere they stay out of the destination, from the snapshot on. */
        const char *skip = NULL;
        if (setup_column_excluded(t, name))
            skip = "excluded";
        else if (generated == 'v' || (generated == 's' && !snapshot_only && pgver < 180000))
            skip = "generated";
        else if (!published)
            skip = "not published";
        if (skip) {
            if (keypos) {
                snprintf(err, errlen,
                         "column %s of %s is part of the key and cannot be left out (%s%s%s)", name,
                         shown, skip, user_pub && !published ? " by publication " : "",
                         user_pub && !published ? spec->publication : "");
                PQclear(r);
                setup_free_def(d);
                return ERRCLASS_FATAL;
            }
            if (!add_skipped(d, name, skip)) {
                PQclear(r);
                setup_free_def(d);
                snprintf(err, errlen, "out of memory");
                return ERRCLASS_TRANSIENT;
            }
            continue;
        }
        if (strncmp(name, META_PREFIX, strlen(META_PREFIX)) == 0) {
            snprintf(err, errlen,
                     "column %s of %s clashes with pgferry's own columns (_pgferry_*); "
                     "exclude or rename it",
                     name, shown);
            PQclear(r);
            setup_free_def(d);
            return ERRCLASS_FATAL;
        }
        uint32_t oid = (uint32_t)strtoul(PQgetvalue(r, i, 2), NULL, 10);
        int32_t typmod = (int32_t)atoi(PQgetvalue(r, i, 3));
        bool not_null = PQgetvalue(r, i, 4)[0] == 't';
        char cat = 'U';
        cls = resolve_domain(c, &oid, &typmod, &cat, &not_null, err, errlen);
        if (cls != ERRCLASS_NONE) {
            PQclear(r);
            setup_free_def(d);
            return cls;
        }
        typemap_col_t tm;
        typemap_for_pg(oid, cat, typmod, not_null || keypos > 0, ch_version, tm_flags, &tm);
        Pgferry__State__ColumnDef *col = calloc(1, sizeof(*col));
        if (!col) {
            PQclear(r);
            setup_free_def(d);
            snprintf(err, errlen, "out of memory");
            return ERRCLASS_TRANSIENT;
        }
        pgferry__state__column_def__init(col);
        char catstr[2] = {cat, '\0'};
        col->name = strdup(name);
        col->pg_type = strdup(PQgetvalue(r, i, 1));
        col->base_type_oid = oid;
        col->base_typmod = typmod;
        col->typcategory = strdup(catstr);
        col->not_null = not_null || keypos > 0;
        col->key_position = keypos;
        col->ch_type = strdup(tm.ch_type);
        col->attnum = atoi(PQgetvalue(r, i, 6));
        col->type_oid = (uint32_t)strtoul(PQgetvalue(r, i, 2), NULL, 10);
        col->typmod = (int32_t)atoi(PQgetvalue(r, i, 3));
        d->columns[d->n_columns++] = col;
        keys += keypos > 0;
    }
    PQclear(r);
    if (keys == 0) {
        snprintf(err, errlen,
                 "table %s has no primary key; add one or set REPLICA IDENTITY USING INDEX", shown);
        setup_free_def(d);
        return ERRCLASS_FATAL;
    }
    cls = setup_shape_order_by(d, t, ident_full, shown, err, errlen);
    if (cls != ERRCLASS_NONE) {
        setup_free_def(d);
        return cls;
    }
    *out = d;
    return ERRCLASS_NONE;
}

errclass_t
setup_shape_order_by(Pgferry__State__TableDef *d, const Pgferry__State__TableSpec *t,
                     bool ident_full, const char *shown, char *err, size_t errlen)
{
    if (t->n_order_by == 0)
        return ERRCLASS_NONE;
    /* the key's columns keep their order after the leading ones */
    uint32_t lead = 0;
    Pgferry__State__ColumnDef *leading[64];
    if (t->n_order_by > 64) {
        snprintf(err, errlen, "--order-by for %s names more than 64 columns", shown);
        return ERRCLASS_FATAL;
    }
    for (size_t o = 0; o < t->n_order_by; o++) {
        Pgferry__State__ColumnDef *col = NULL;
        for (size_t i = 0; i < d->n_columns && !col; i++) {
            if (strcmp(d->columns[i]->name, t->order_by[o]) == 0)
                col = d->columns[i];
        }
        if (!col) {
            const char *why = setup_skipped_reason(d, t->order_by[o]);
            snprintf(err, errlen, "--order-by column %s of %s %s%s%s", t->order_by[o], shown,
                     why ? "is not replicated (" : "does not exist", why ? why : "",
                     why ? ")" : "");
            return ERRCLASS_FATAL;
        }
        for (uint32_t k = 0; k < lead; k++) {
            if (leading[k] == col) {
                snprintf(err, errlen, "--order-by for %s names column %s twice", shown, col->name);
                return ERRCLASS_FATAL;
            }
        }
        /* a DELETE carries the replica identity only: the destination's ordering key must
         * be in it, or the delete could not name its row */
        if (!col->key_position && !ident_full) {
            snprintf(err, errlen,
                     "--order-by column %s of %s is not covered by the table's replica identity "
                     "(deletes would not carry it); use key columns, or set REPLICA IDENTITY "
                     "FULL on the source",
                     col->name, shown);
            return ERRCLASS_FATAL;
        }
        if (!col->key_position && !col->not_null) {
            snprintf(err, errlen,
                     "--order-by column %s of %s can be NULL; ClickHouse's ordering key needs "
                     "NOT NULL columns",
                     col->name, shown);
            return ERRCLASS_FATAL;
        }
        leading[lead++] = col;
    }
    /* new key positions: the leading columns, then the key columns not among them */
    uint32_t nkeys = 0;
    for (size_t i = 0; i < d->n_columns; i++)
        nkeys = d->columns[i]->key_position > nkeys ? d->columns[i]->key_position : nkeys;
    uint32_t *newpos = calloc(d->n_columns + 1, sizeof(*newpos));
    if (!newpos) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    for (uint32_t k = 0; k < lead; k++) {
        for (size_t i = 0; i < d->n_columns; i++) {
            if (d->columns[i] == leading[k])
                newpos[i] = k + 1;
        }
    }
    uint32_t next = lead + 1;
    for (uint32_t k = 1; k <= nkeys; k++) {
        for (size_t i = 0; i < d->n_columns; i++) {
            if (d->columns[i]->key_position == k && !newpos[i])
                newpos[i] = next++;
        }
    }
    for (size_t i = 0; i < d->n_columns; i++) {
        d->columns[i]->key_position = newpos[i];
        if (newpos[i])
            d->columns[i]->not_null = true;
    }
    free(newpos);
    return ERRCLASS_NONE;
}

/* appends s to b (NUL-terminated at the end) */
static void
put(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

char *
setup_table_ddl(const chcluster_t *cl, const char *db, const Pgferry__State__TableDef *def)
{
    return setup_table_ddl_named(cl, db, def, def->target);
}

/* the key columns of def, quoted, in key order, into keys (n = how many) */
static size_t
key_idents(const Pgferry__State__TableDef *def, char (*keys)[300], size_t max)
{
    size_t n = 0;
    for (uint32_t k = 1; k <= def->n_columns; k++) {
        for (size_t i = 0; i < def->n_columns; i++) {
            if (def->columns[i]->key_position == k && n < max)
                chsql_ident(chtable_col_name(def->columns[i]), keys[n++], sizeof(keys[0]));
        }
    }
    return n;
}

char *
setup_table_ddl_named(const chcluster_t *cl, const char *db, const Pgferry__State__TableDef *def,
                      const char *name)
{
    buf_t b;
    char q[300], qt[300], data[300], engine[4000];
    buf_init(&b);
    chcluster_data_table(cl, name, data, sizeof(data));
    chsql_ident(db, q, sizeof(q));
    chsql_ident(data, qt, sizeof(qt));
    put(&b, "CREATE TABLE IF NOT EXISTS ");
    put(&b, q);
    put(&b, ".");
    put(&b, qt);
    put(&b, cl->on);
    put(&b, " (");
    for (size_t i = 0; i < def->n_columns; i++) {
        chsql_ident(chtable_col_name(def->columns[i]), q, sizeof(q));
        put(&b, i ? ", " : "");
        put(&b, q);
        put(&b, " ");
        put(&b, def->columns[i]->ch_type);
    }
    put(&b, ", `" META_VERSION "` UInt64, `" META_DELETED "` UInt8, `" META_SYNCED
            "` DateTime DEFAULT now()");
    if (def->partition_column)
        put(&b, ", `" META_PARTITION "` UInt32");
    chcluster_engine(cl, db, data, "`" META_VERSION "`", engine, sizeof(engine));
    put(&b, ") ENGINE = ");
    put(&b, engine);
    if (def->partition_by && def->partition_by[0]) {
        put(&b, " PARTITION BY (");
        put(&b, def->partition_by);
        put(&b, ")");
    }
    put(&b, " ORDER BY (");
    /* key columns in key order */
    char(*keys)[300] = calloc(def->n_columns ? def->n_columns : 1, sizeof(*keys));
    if (!keys) {
        buf_free(&b);
        return NULL;
    }
    size_t nk = key_idents(def, keys, def->n_columns);
    for (size_t k = 0; k < nk; k++) {
        put(&b, k ? ", " : "");
        put(&b, keys[k]);
    }
    free(keys);
    put(&b, ")");
    buf_byte(&b, '\0');
    if (b.oom) {
        buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

char *
setup_dist_ddl(const chcluster_t *cl, const char *db, const Pgferry__State__TableDef *def,
               const char *name, const char *data)
{
    if (!cl->sharded)
        return NULL;
    char q[300], qt[300], ql[300];
    chsql_ident(db, q, sizeof(q));
    chsql_ident(name, qt, sizeof(qt));
    chsql_ident(data, ql, sizeof(ql));
    char(*keys)[300] = calloc(def->n_columns ? def->n_columns : 1, sizeof(*keys));
    const char **kp = calloc(def->n_columns ? def->n_columns : 1, sizeof(*kp));
    size_t elen = 1200 + 320 * def->n_columns;
    char *engine = malloc(elen);
    buf_t b;
    buf_init(&b);
    if (keys && kp && engine) {
        size_t nk = key_idents(def, keys, def->n_columns);
        for (size_t k = 0; k < nk; k++)
            kp[k] = keys[k];
        chcluster_distributed_engine(cl, db, data, kp, nk, engine, elen);
        put(&b, "CREATE TABLE IF NOT EXISTS ");
        put(&b, q);
        put(&b, ".");
        put(&b, qt);
        put(&b, cl->on);
        put(&b, " AS ");
        put(&b, q);
        put(&b, ".");
        put(&b, ql);
        put(&b, " ENGINE = ");
        put(&b, engine);
        buf_byte(&b, '\0');
    } else {
        b.oom = true;
    }
    free(keys);
    free(kp);
    free(engine);
    if (b.oom) {
        buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

errclass_t
setup_create_table(ch_client_t *ch, const chcluster_t *cl, const char *db,
                   const Pgferry__State__TableDef *def, const char *name, char *err, size_t errlen)
{
    char data[300];
    chcluster_data_table(cl, name, data, sizeof(data));
    char *ddl = setup_table_ddl_named(cl, db, def, name);
    char *dist = cl->sharded ? setup_dist_ddl(cl, db, def, name, data) : NULL;
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (!ddl || (cl->sharded && !dist))
        snprintf(err, errlen, "out of memory");
    else
        cls = ch_client_query(ch, ddl, NULL, err, errlen);
    if (cls == ERRCLASS_NONE && dist)
        cls = ch_client_query(ch, dist, NULL, err, errlen);
    free(ddl);
    free(dist);
    return cls;
}

errclass_t
setup_drop(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *name, bool with_data,
           char *err, size_t errlen)
{
    char q[300], qt[300], sql[1200];
    chsql_ident(db, q, sizeof(q));
    chsql_ident(name, qt, sizeof(qt));
    snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s.%s%s", q, qt, cl->on);
    errclass_t cls = ch_client_query(ch, sql, NULL, err, errlen);
    if (cls == ERRCLASS_NONE && with_data && cl->sharded) {
        char data[300];
        chcluster_data_table(cl, name, data, sizeof(data));
        chsql_ident(data, qt, sizeof(qt));
        snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s.%s%s", q, qt, cl->on);
        cls = ch_client_query(ch, sql, NULL, err, errlen);
    }
    return cls;
}

char *
setup_view_ddl(const chcluster_t *cl, const char *db, const Pgferry__State__TableDef *def)
{
    char view[300];
    snprintf(view, sizeof(view), "%s_live", def->target);
    return setup_view_ddl_named(cl, db, def, view);
}

char *
setup_view_ddl_named(const chcluster_t *cl, const char *db, const Pgferry__State__TableDef *def,
                     const char *view)
{
    buf_t b;
    char q[300], qt[300];
    buf_init(&b);
    chsql_ident(db, q, sizeof(q));
    chsql_ident(view, qt, sizeof(qt));
    put(&b, "CREATE VIEW IF NOT EXISTS ");
    put(&b, q);
    put(&b, ".");
    put(&b, qt);
    put(&b, cl->on);
    put(&b, " AS SELECT ");
    for (size_t i = 0; i < def->n_columns; i++) {
        chsql_ident(chtable_col_name(def->columns[i]), qt, sizeof(qt));
        put(&b, i ? ", " : "");
        put(&b, qt);
    }
    chsql_ident(def->target, qt, sizeof(qt));
    put(&b, " FROM ");
    put(&b, q);
    put(&b, ".");
    put(&b, qt);
    put(&b, " FINAL WHERE `" META_DELETED "` = 0");
    buf_byte(&b, '\0');
    if (b.oom) {
        buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* ClickHouse's TabSeparated escaping, to compare names as system.columns prints them */
static void
tsv_escape(const char *in, buf_t *b)
{
    for (const char *p = in; *p; p++) {
        switch (*p) {
        case '\\':
            put(b, "\\\\");
            break;
        case '\t':
            put(b, "\\t");
            break;
        case '\n':
            put(b, "\\n");
            break;
        case '\r':
            put(b, "\\r");
            break;
        case '\b':
            put(b, "\\b");
            break;
        case '\f':
            put(b, "\\f");
            break;
        case '\'':
            put(b, "\\'");
            break;
        default:
            buf_byte(b, (unsigned char)*p);
        }
    }
}

/* The destination table must have exactly our columns, types and key. */
static errclass_t
verify_table(ch_client_t *ch, const chcluster_t *cl, const char *db,
             const Pgferry__State__TableDef *def, char *err, size_t errlen)
{
    char qdb[300], qt[300], sql[1024], data[300];
    chcluster_data_table(cl, def->target, data, sizeof(data));
    chsql_string(db, qdb, sizeof(qdb));
    chsql_string(data, qt, sizeof(qt));
    snprintf(sql, sizeof(sql),
             "SELECT name, type, is_in_sorting_key FROM system.columns WHERE database = %s AND "
             "table = %s FORMAT TabSeparated",
             qdb, qt);
    char *got = NULL;
    errclass_t cls = ch_client_query(ch, sql, &got, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    buf_t want;
    buf_init(&want);
    for (size_t i = 0; i < def->n_columns; i++) {
        tsv_escape(chtable_col_name(def->columns[i]), &want);
        put(&want, "\t");
        tsv_escape(def->columns[i]->ch_type, &want);
        put(&want, def->columns[i]->key_position ? "\t1\n" : "\t0\n");
    }
    put(&want,
        META_VERSION "\tUInt64\t0\n" META_DELETED "\tUInt8\t0\n" META_SYNCED "\tDateTime\t0\n");
    if (def->partition_column)
        put(&want, META_PARTITION "\tUInt32\t0\n");
    buf_byte(&want, '\0');
    cls = ERRCLASS_NONE;
    if (!want.oom && strcmp(got, (char *)want.data) != 0) {
        /* name the first differing line for the operator */
        const char *a = got, *b = (char *)want.data;
        while (*a && *a == *b && *a != '\0') {
            const char *na = strchr(a, '\n'), *nb = strchr(b, '\n');
            if (!na || !nb || na - a != nb - b || strncmp(a, b, (size_t)(na - a)) != 0)
                break;
            a = na + 1;
            b = nb + 1;
        }
        snprintf(err, errlen,
                 "destination table %s.%s exists with a different definition (has '%.*s', "
                 "pgferry needs '%.*s'); drop it or choose another --dest-database",
                 db, data, (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
        for (char *p = err; *p; p++) {
            if (*p == '\t')
                *p = ' ';
        }
        cls = ERRCLASS_FATAL;
    }
    buf_free(&want);
    free(got);
    return cls;
}

/* The pipe's own publication: created with its tables, or set to them when Setup runs again.
 * The names are the definitions', which are the tables' current ones (setup_run finds known
 * tables by oid: SET TABLE by an old name would publish whatever table has that name now). */
static errclass_t
ensure_publication(PGconn *pg, const Pgferry__State__PipeSpec *spec,
                   Pgferry__State__TableDef *const *defs, size_t n, char *err, size_t errlen)
{
    buf_t b;
    buf_init(&b);
    errclass_t cls;
    const char *p[] = {spec->publication};
    PGresult *r = pgconn_query(pg, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1, p, &cls,
                               err, errlen);
    if (!r)
        return cls;
    bool exists = PQntuples(r) > 0;
    PQclear(r);
    char *pub = PQescapeIdentifier(pg, spec->publication, strlen(spec->publication));
    if (!pub) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    put(&b, exists ? "ALTER PUBLICATION " : "CREATE PUBLICATION ");
    put(&b, pub);
    put(&b, exists ? " SET TABLE " : " FOR TABLE ");
    PQfreemem(pub);
    for (size_t i = 0; i < n; i++) {
        char *qs = PQescapeIdentifier(pg, defs[i]->schema, strlen(defs[i]->schema));
        char *qn = PQescapeIdentifier(pg, defs[i]->name, strlen(defs[i]->name));
        if (qs && qn) {
            put(&b, i ? ", " : "");
            put(&b, qs);
            put(&b, ".");
            put(&b, qn);
        } else {
            b.oom = true;
        }
        PQfreemem(qs);
        PQfreemem(qn);
    }
    /* partitions publish as themselves (not via their root): PostgreSQL sends a TRUNCATE of
     * one partition only then, and its relid tells which rows go */
    /* from PostgreSQL 18 on, stored generated columns can be published: then they are */
    const char *opts =
        PQserverVersion(pg) >= 180000
            ? "publish_via_partition_root = false, publish_generated_columns = stored"
            : "publish_via_partition_root = false";
    if (!exists) {
        put(&b, " WITH (");
        put(&b, opts);
        put(&b, ")");
    }
    buf_byte(&b, '\0');
    if (b.oom) {
        buf_free(&b);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    r = PQexec(pg, (char *)b.data);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        cls = pgconn_classify(r, pg);
        snprintf(err, errlen, "cannot %s publication %s: %s", exists ? "alter" : "create",
                 spec->publication, PQresultErrorMessage(r));
        PQclear(r);
        buf_free(&b);
        return cls;
    }
    PQclear(r);
    if (exists) {
        buf_reset(&b);
        char *pub2 = PQescapeIdentifier(pg, spec->publication, strlen(spec->publication));
        put(&b, "ALTER PUBLICATION ");
        put(&b, pub2 ? pub2 : "\"\"");
        put(&b, " SET (");
        put(&b, opts);
        put(&b, ")");
        buf_byte(&b, '\0');
        PQfreemem(pub2);
        r = b.oom ? NULL : PQexec(pg, (char *)b.data);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            cls = pgconn_classify(r, pg);
            snprintf(err, errlen, "cannot alter publication %s: %s", spec->publication,
                     PQresultErrorMessage(r));
            PQclear(r);
            buf_free(&b);
            return cls;
        }
        PQclear(r);
    }
    buf_free(&b);
    log_info("publication %s %s", spec->publication, exists ? "updated" : "created");
    return ERRCLASS_NONE;
}

static Pgferry__State__TableDef *
copy_def(const Pgferry__State__TableDef *d)
{
    size_t n = pgferry__state__table_def__get_packed_size(d);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    pgferry__state__table_def__pack(d, buf);
    Pgferry__State__TableDef *c = pgferry__state__table_def__unpack(NULL, n, buf);
    free(buf);
    return c;
}

static const Pgferry__State__TableDef *
find_def(Pgferry__State__TableDef *const *defs, size_t n, const Pgferry__State__TableSpec *t)
{
    const char *schema = t->schema[0] ? t->schema : "public";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(defs[i]->schema, schema) == 0 && strcmp(defs[i]->name, t->name) == 0)
            return defs[i];
    }
    return NULL;
}

/* The kept definitions under their tables' current names (by oid): a table renamed at the
 * source that the stream has not named yet (no row change since) is still the pipe's table; a
 * new table that took its old name is not. A known table dropped is FATAL. note: the renames,
 * for the history. */
static errclass_t
follow_known(PGconn *pg, setup_result_t *out, const bool *kept, char *note, size_t notelen,
             char *err, size_t errlen)
{
    size_t n = out->n_tables;
    uint32_t *relids = calloc(n + 1, sizeof(*relids));
    char **schemas = calloc(n + 1, sizeof(*schemas)), **names = calloc(n + 1, sizeof(*names));
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (!relids || !schemas || !names) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        relids[i] = kept[i] ? out->tables[i]->relid : 0;
    cls = setup_names_by_oid(pg, relids, n, schemas, names, err, errlen);
    for (size_t i = 0; cls == ERRCLASS_NONE && i < n; i++) {
        Pgferry__State__TableDef *d = out->tables[i];
        if (!kept[i] || !d->relid)
            continue;
        if (!schemas[i]) {
            snprintf(err, errlen,
                     "table %s.%s (oid %u) was dropped at the source; remove it from the pipe "
                     "(pgferryctl remove-tables) or drop the pipe",
                     d->schema, d->name, d->relid);
            cls = ERRCLASS_FATAL;
            break;
        }
        if (strcmp(schemas[i], d->schema) == 0 && strcmp(names[i], d->name) == 0)
            continue;
        char from[300], to[300];
        tablename_format(d->schema, d->name, from, sizeof(from));
        tablename_format(schemas[i], names[i], to, sizeof(to));
        char one[1000];
        snprintf(one, sizeof(one),
                 "table %s renamed to %s at the source (destination table %s unchanged)", from, to,
                 d->target);
        size_t l = strlen(note);
        if (l + strlen(one) + 3 < notelen)
            snprintf(note + l, notelen - l, "%s%s", l ? "; " : "", one);
        log_info("table %s renamed to %s at the source (found by its oid %u)", from, to, d->relid);
        free(d->schema);
        free(d->name);
        d->schema = schemas[i];
        d->name = names[i];
        schemas[i] = names[i] = NULL;
    }
out:
    for (size_t i = 0; schemas && names && i < n; i++) {
        free(schemas[i]);
        free(names[i]);
    }
    free(relids);
    free(schemas);
    free(names);
    return cls;
}

/* Resync: a fresh, empty <target>_resync table next to each destination table. */
static errclass_t
resync_tables(ch_client_t *ch, const chcluster_t *cl, const char *db, setup_result_t *out,
              char *err, size_t errlen)
{
    for (size_t i = 0; i < out->n_tables; i++) {
        char name[300];
        snprintf(name, sizeof(name), "%s_resync", out->tables[i]->target);
        errclass_t cls = setup_drop(ch, cl, db, name, true, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = setup_create_table(ch, cl, db, out->tables[i], name, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
    }
    snprintf(out->detail, sizeof(out->detail),
             "resync: %zu table(s) read again from the source, empty _resync tables ready in %s",
             out->n_tables, db);
    return ERRCLASS_NONE;
}

errclass_t
setup_run(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *existing,
          size_t n_existing, bool resync, worker_t *w, setup_result_t *out, char *err,
          size_t errlen)
{
    bool *kept = NULL, *recorded = NULL;
    char renamed[600] = "";
    owners_mode_t *modes = NULL;
    const char **targets = NULL;
    memset(out, 0, sizeof(*out));
    errclass_t cls;
    ch_client_t *ch = worker_dest_client(spec, err, errlen);
    if (!ch)
        return ERRCLASS_FATAL;
    PGconn *pg = NULL;
    char *ver = ch_client_version(ch, &cls, err, errlen);
    if (!ver)
        goto done;
    long vnum = ch_version_number(ver);
    free(ver);
    pg = pgconn_connect(spec->source, "pgferry-setup", false, &cls, err, errlen);
    if (!pg)
        goto done;
    out->tables = calloc(spec->n_tables, sizeof(*out->tables));
    if (!out->tables) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
        goto done;
    }
    kept = calloc(spec->n_tables + 1, sizeof(bool));
    recorded = calloc(spec->n_tables + 1, sizeof(bool));
    modes = calloc(spec->n_tables + 1, sizeof(*modes));
    targets = calloc(spec->n_tables + 1, sizeof(*targets));
    if (!kept || !recorded || !modes || !targets) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
        goto done;
    }
    for (size_t i = 0; i < spec->n_tables; i++) {
        /* tables set up before (a pipe that gets more tables) stay as recorded */
        const Pgferry__State__TableDef *old = find_def(existing, n_existing, spec->tables[i]);
        recorded[i] = old != NULL;
        if (old && !resync) {
            out->tables[i] = copy_def(old);
            kept[i] = true;
            cls = out->tables[i] ? ERRCLASS_NONE : ERRCLASS_TRANSIENT;
            if (!out->tables[i])
                snprintf(err, errlen, "out of memory");
        } else {
            /* a resync reads a known table again by its oid, under whatever name it has now */
            cls = setup_read_table(pg, spec, spec->tables[i], old ? old->relid : 0, vnum,
                                   spec->numeric_text ? TYPEMAP_NUMERIC_TEXT : 0u, &out->tables[i],
                                   err, errlen);
        }
        if (cls != ERRCLASS_NONE) {
            if (out->tables[i])
                setup_free_def(out->tables[i]);
            out->tables[i] = NULL;
            goto done;
        }
        out->n_tables++;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out->tables[j]->target, out->tables[i]->target) == 0) {
                snprintf(err, errlen,
                         "tables %s.%s and %s.%s would both land in destination table %s; give "
                         "one another destination (--target %s.%s=NAME) or replicate them in "
                         "separate pipes (separate --dest-database)",
                         out->tables[j]->schema, out->tables[j]->name, out->tables[i]->schema,
                         out->tables[i]->name, out->tables[i]->target, out->tables[i]->schema,
                         out->tables[i]->name);
                cls = ERRCLASS_FATAL;
                goto done;
            }
            /* one table's target among the names pgferry derives from another's */
            for (int k = 0; k < 2; k++) {
                const char *a = out->tables[k ? i : j]->target, *b = out->tables[k ? j : i]->target;
                char fam[OWNERS_MAX_NAMES][300];
                chcluster_t fcl;
                worker_cluster(spec, &fcl);
                size_t nf = owners_family(&fcl, a, fam, OWNERS_MAX_NAMES);
                for (size_t f = 1; f < nf; f++) {
                    if (strcmp(fam[f], b) == 0) {
                        snprintf(err, errlen,
                                 "destination table %s is a name pgferry uses for destination "
                                 "table %s (its view, resync or swap); give one of them another "
                                 "name with --target schema.table=name",
                                 b, a);
                        cls = ERRCLASS_FATAL;
                        goto done;
                    }
                }
            }
        }
    }
    cls = follow_known(pg, out, kept, renamed, sizeof(renamed), err, errlen);
    if (cls != ERRCLASS_NONE)
        goto done;
    if (spec->mode != PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY && spec->publication_owned) {
        cls = ensure_publication(pg, spec, out->tables, out->n_tables, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto done;
    }
    if (spec->mode == PGFERRY__STATE__PIPE_MODE__CDC_ONLY && spec->slot_owned) {
        /* no snapshot: the slot starts where the source is now */
        const char *sp[] = {spec->slot};
        bool stopped = false;
        /* (a failover slot from 17 on, see the snapshot's slot); a slot that exists is the
         * one an earlier attempt of this Setup created */
        PGresult *r = slotwait_exec(pg,
                                    PQserverVersion(pg) >= 170000
                                        ? "SELECT pg_create_logical_replication_slot($1, "
                                          "'pgoutput', false, false, true) "
                                          "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots "
                                          "WHERE slot_name = $1)"
                                        : "SELECT pg_create_logical_replication_slot($1, "
                                          "'pgoutput') "
                                          "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots "
                                          "WHERE slot_name = $1)",
                                    1, sp, spec->source, w, &stopped);
        if (stopped || PQresultStatus(r) != PGRES_TUPLES_OK) {
            cls = stopped ? ERRCLASS_TRANSIENT : pgconn_classify(r, pg);
            snprintf(err, errlen, "cannot create the replication slot: %s",
                     stopped ? "stopped while waiting" : PQerrorMessage(pg));
            PQclear(r);
            goto done;
        }
        PQclear(r);
    }
    PQfinish(pg);
    pg = NULL;

    char qdb[300], sql[700];
    chcluster_t cl;
    worker_cluster(spec, &cl);
    chsql_ident(spec->dest_database, qdb, sizeof(qdb));
    snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS %s%s", qdb, cl.on);
    cls = ch_client_query(ch, sql, NULL, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto done;
    /* every name of every table is this pipe's before anything is created or dropped; tables
     * the pipe recorded before (set up by a version without the registry) are claimed as they
     * are, any other existing table is refused */
    for (size_t i = 0; i < out->n_tables; i++) {
        /* a resync reloads recorded tables only as the pipe's own: a table the pipe never set
         * up (its Setup was refused) is taken over by no resync */
        targets[i] = out->tables[i]->target;
        modes[i] = !recorded[i] ? OWNERS_FRESH : resync ? OWNERS_RECORDED : OWNERS_STREAM;
    }
    cls =
        owners_claim_many(ch, &cl, spec->dest_database, targets, modes, out->n_tables, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto done;
    if (resync) {
        cls = resync_tables(ch, &cl, spec->dest_database, out, err, errlen);
        goto done;
    }
    for (size_t i = 0; i < out->n_tables; i++) {
        if (kept[i])
            continue;
        char *vddl = setup_view_ddl(&cl, spec->dest_database, out->tables[i]);
        if (!vddl) {
            snprintf(err, errlen, "out of memory");
            cls = ERRCLASS_TRANSIENT;
            goto done;
        }
        cls = setup_create_table(ch, &cl, spec->dest_database, out->tables[i],
                                 out->tables[i]->target, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = verify_table(ch, &cl, spec->dest_database, out->tables[i], err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = ch_client_query(ch, vddl, NULL, err, errlen);
        free(vddl);
        if (cls != ERRCLASS_NONE)
            goto done;
        if (w) {
            char detail[300];
            snprintf(detail, sizeof(detail), "destination table %s.%s ready", spec->dest_database,
                     out->tables[i]->target);
            worker_send_progress(w, 0, 0, NULL, detail);
        }
    }
    snprintf(out->detail, sizeof(out->detail), "%zu destination table(s) ready in database %s%s%s",
             out->n_tables, spec->dest_database, renamed[0] ? "; " : "", renamed);
    cls = ERRCLASS_NONE;
done:
    free(kept);
    free(recorded);
    free(modes);
    free(targets);
    if (pg)
        PQfinish(pg);
    ch_client_destroy(&ch);
    if (cls != ERRCLASS_NONE)
        setup_free_result(out);
    return cls;
}

/* Whether db.name exists in ClickHouse. */
static errclass_t
ch_exists(ch_client_t *ch, const char *db, const char *name, bool *out, char *err, size_t errlen)
{
    char qdb[300], qn[300], sql[800], *body = NULL;
    chsql_string(db, qdb, sizeof(qdb));
    chsql_string(name, qn, sizeof(qn));
    snprintf(sql, sizeof(sql),
             "SELECT count() FROM system.tables WHERE database = %s AND name = %s", qdb, qn);
    errclass_t cls = ch_client_query(ch, sql, &body, err, errlen);
    if (cls == ERRCLASS_NONE)
        *out = body && atoi(body) > 0;
    free(body);
    return cls;
}

/* Puts `fresh` in the place of `name` with one RENAME statement (the old one, if any, moves
 * to `old` and is dropped afterwards). Safe to run again after a crash at any point. */
static errclass_t
swap_in(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *name, const char *fresh,
        const char *old, char *err, size_t errlen)
{
    bool has_name, has_fresh, has_old;
    errclass_t cls = ch_exists(ch, db, name, &has_name, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = ch_exists(ch, db, fresh, &has_fresh, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    char q[300], a[300], b[300], c[300], sql[2900];
    chsql_ident(db, q, sizeof(q));
    chsql_ident(name, a, sizeof(a));
    chsql_ident(fresh, b, sizeof(b));
    chsql_ident(old, c, sizeof(c));
    if (has_fresh) {
        if (has_name)
            snprintf(sql, sizeof(sql), "RENAME TABLE %s.%s TO %s.%s, %s.%s TO %s.%s%s", q, a, q, c,
                     q, b, q, a, cl->on);
        else
            snprintf(sql, sizeof(sql), "RENAME TABLE %s.%s TO %s.%s%s", q, b, q, a, cl->on);
        cls = ch_client_query(ch, sql, NULL, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
    }
    cls = ch_exists(ch, db, old, &has_old, err, errlen);
    if (cls == ERRCLASS_NONE && has_old) {
        snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s.%s%s", q, c, cl->on);
        cls = ch_client_query(ch, sql, NULL, err, errlen);
    }
    return cls;
}

errclass_t
setup_redo_dist(ch_client_t *ch, const chcluster_t *cl, const char *db,
                const Pgferry__State__TableDef *def, char *err, size_t errlen)
{
    if (!cl->sharded)
        return ERRCLASS_NONE;
    char fresh[300], old[300];
    snprintf(fresh, sizeof(fresh), "%s_pgferry_dnew", def->target);
    snprintf(old, sizeof(old), "%s_pgferry_dold", def->target);
    /* a Distributed table named fresh over target_local (the name it reads at query time) */
    char data[300];
    chcluster_data_table(cl, def->target, data, sizeof(data));
    char *ddl = setup_dist_ddl(cl, db, def, fresh, data);
    if (!ddl) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    errclass_t cls = setup_drop(ch, cl, db, fresh, false, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = ch_client_query(ch, ddl, NULL, err, errlen);
    free(ddl);
    if (cls == ERRCLASS_NONE)
        cls = swap_in(ch, cl, db, def->target, fresh, old, err, errlen);
    return cls;
}

errclass_t
setup_swap(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *tables,
           size_t n_tables, worker_t *w, char *detail, size_t detaillen, char *err, size_t errlen)
{
    ch_client_t *ch = worker_dest_client(spec, err, errlen);
    if (!ch)
        return ERRCLASS_FATAL;
    errclass_t cls = ERRCLASS_NONE;
    const char *db = spec->dest_database;
    chcluster_t cl;
    worker_cluster(spec, &cl);
    cls = owners_claim_defs(ch, &cl, db, tables, n_tables, OWNERS_RECORDED, NULL, err, errlen);
    for (size_t i = 0; i < n_tables && cls == ERRCLASS_NONE; i++) {
        const Pgferry__State__TableDef *d = tables[i];
        char fresh[300], old[300], view[300], vfresh[300], vold[300];
        snprintf(fresh, sizeof(fresh), "%s_resync", d->target);
        snprintf(old, sizeof(old), "%s_pgferry_old", d->target);
        snprintf(view, sizeof(view), "%s_live", d->target);
        snprintf(vfresh, sizeof(vfresh), "%s_live_pgferry_new", d->target);
        snprintf(vold, sizeof(vold), "%s_live_pgferry_old", d->target);
        if (cl.sharded) {
            /* the rows: target_resync_local takes target_local's place; then target, a
             * Distributed table over target_local with the new columns, and target_resync
             * (the Distributed table the load wrote through) goes */
            char dl[300], fl[300], ol[300];
            chcluster_data_table(&cl, d->target, dl, sizeof(dl));
            chcluster_data_table(&cl, fresh, fl, sizeof(fl));
            chcluster_data_table(&cl, old, ol, sizeof(ol));
            cls = swap_in(ch, &cl, db, dl, fl, ol, err, errlen);
            if (cls == ERRCLASS_NONE)
                cls = setup_redo_dist(ch, &cl, db, d, err, errlen);
            if (cls == ERRCLASS_NONE)
                cls = setup_drop(ch, &cl, db, fresh, false, err, errlen);
        } else {
            cls = swap_in(ch, &cl, db, d->target, fresh, old, err, errlen);
        }
        if (cls != ERRCLASS_NONE)
            break;
        /* the view lists the columns, which a resync may have changed: a new one, swapped in
         * the same way, so it never goes missing */
        char *vddl = setup_view_ddl_named(&cl, db, d, vfresh);
        cls = vddl ? setup_drop(ch, &cl, db, vfresh, false, err, errlen) : ERRCLASS_TRANSIENT;
        if (!vddl)
            snprintf(err, errlen, "out of memory");
        if (cls == ERRCLASS_NONE)
            cls = ch_client_query(ch, vddl, NULL, err, errlen);
        free(vddl);
        if (cls == ERRCLASS_NONE)
            cls = swap_in(ch, &cl, db, view, vfresh, vold, err, errlen);
        if (cls == ERRCLASS_NONE && w) {
            char msg[400];
            snprintf(msg, sizeof(msg), "swapped %s.%s", db, d->target);
            worker_send_progress(w, 0, 0, NULL, msg);
        }
    }
    if (cls == ERRCLASS_NONE)
        snprintf(detail, detaillen, "%zu table(s) swapped in %s; the old data is dropped", n_tables,
                 db);
    ch_client_destroy(&ch);
    return cls;
}
