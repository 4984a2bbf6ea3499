/* schema: schema changes seen in the replication stream, applied to the definition and
 * ClickHouse. */
#include "schema.h"
#include "owners.h"
#include "buf.h"
#include "chsql.h"
#include "chtable.h"
#include "log.h"
#include "pgconn.h"
#include "setup.h"
#include "typemap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
schema_key_matches(const Pgferry__State__TableDef *d, const pgo_msg_t *rel)
{
    if (rel->u.relation.replident == 'f')
        return true; /* every column is marked: the message does not tell the key */
    size_t marked = 0, keys = 0;
    for (size_t i = 0; i < d->n_columns; i++)
        keys += d->columns[i]->key_position > 0;
    for (size_t j = 0; j < rel->u.relation.ncols; j++) {
        const pgo_column_t *rc = &rel->u.relation.cols[j];
        if (!(rc->flags & 1))
            continue;
        marked++;
        bool is_key = false;
        for (size_t i = 0; i < d->n_columns; i++) {
            if (strcmp(d->columns[i]->name, rc->name) == 0 ||
                strcmp(chtable_col_name(d->columns[i]), rc->name) == 0)
                is_key = d->columns[i]->key_position > 0;
        }
        if (!is_key)
            return false;
    }
    return marked == keys;
}

static Pgferry__State__ColumnDef *
col_copy(const Pgferry__State__ColumnDef *s)
{
    size_t n = pgferry__state__column_def__get_packed_size(s);
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return NULL;
    pgferry__state__column_def__pack(s, b);
    Pgferry__State__ColumnDef *d = pgferry__state__column_def__unpack(NULL, n, b);
    free(b);
    return d;
}

static void
set_string(char **field, const char *v)
{
    char *n = strdup(v);
    if (!n)
        return;
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = n;
}

static void
note(buf_t *reason, const char *fmt, const char *a, const char *b, const char *d)
{
    char s[900];
    snprintf(s, sizeof(s), fmt, a, b, d);
    if (reason->len)
        buf_append(reason, "; ", 2);
    buf_append(reason, s, strlen(s));
}

/* The destination's columns as "name\ttype\n" lines (TabSeparated, escaped). */
static errclass_t
ch_columns(ch_client_t *ch, const char *db, const char *table, char **out, char *err, size_t errlen)
{
    char qdb[300], qt[300], sql[800];
    chsql_string(db, qdb, sizeof(qdb));
    chsql_string(table, qt, sizeof(qt));
    snprintf(sql, sizeof(sql),
             "SELECT name, type FROM system.columns WHERE database = %s AND table = %s "
             "FORMAT TabSeparated",
             qdb, qt);
    return ch_client_query(ch, sql, out, err, errlen);
}

/* The type of column name in ch_columns output, or NULL. */
static const char *
ch_column_type(const char *cols, const char *name, char *type, size_t typelen)
{
    size_t nl = strlen(name);
    for (const char *p = cols; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncmp(p, name, nl) == 0 && p[nl] == '\t') {
            snprintf(type, typelen, "%.*s", (int)(ll - nl - 1), p + nl + 1);
            return type;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* The source's default for rows that existed before `ALTER TABLE ... ADD COLUMN ... DEFAULT`
 * (pg_attribute.attmissingval), as a ClickHouse DEFAULT expression. *volatile_fill: the column
 * has a default PostgreSQL filled in by rewriting the table (which is not replicated). A column
 * no longer in the catalog (dropped since) has neither. */
static errclass_t
missing_default(PGconn *pg, uint32_t relid, const char *col, const typemap_col_t *tm, buf_t *out,
                bool *volatile_fill, char *err, size_t errlen)
{
    *volatile_fill = false;
    char rid[16];
    snprintf(rid, sizeof(rid), "%u", relid);
    const char *p[] = {rid, col};
    errclass_t cls;
    PGresult *r = pgconn_query(pg,
                               "SELECT atthasmissing, atthasdef, attmissingval::text, "
                               " format_type(atttypid, atttypmod) FROM pg_attribute "
                               "WHERE attrelid = $1::oid AND attname = $2 AND NOT attisdropped",
                               2, p, &cls, err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ERRCLASS_NONE;
    }
    bool has_missing = PQgetvalue(r, 0, 0)[0] == 't', has_def = PQgetvalue(r, 0, 1)[0] == 't';
    if (!has_missing || PQgetisnull(r, 0, 2)) {
        *volatile_fill = has_def;
        PQclear(r);
        return ERRCLASS_NONE;
    }
    /* attmissingval is a one-element array of the column's type: take the element as text */
    char q[600];
    snprintf(q, sizeof(q), "SELECT (($1)::%s[])[1]::text", PQgetvalue(r, 0, 3));
    char *arr = strdup(PQgetvalue(r, 0, 2));
    PQclear(r);
    if (!arr) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    const char *p2[] = {arr};
    r = pgconn_query(pg, q, 1, p2, &cls, err, errlen);
    free(arr);
    if (!r)
        return cls;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        char e[256];
        const char *v = PQgetvalue(r, 0, 0);
        buf_append(out, " DEFAULT ", 9);
        if (!typemap_literal(tm, v, strlen(v), out, e, sizeof(e))) {
            PQclear(r);
            snprintf(err, errlen, "default of new column %s: %s", col, e);
            return ERRCLASS_FATAL;
        }
    }
    PQclear(r);
    return ERRCLASS_NONE;
}

/* Whether ClickHouse column name belongs to another column of the new definition: a column
 * of old that stays (old_msg[k] >= 0) or one already added to nd (other than self). */
static bool
ch_name_taken(const Pgferry__State__TableDef *old, const int *old_msg,
              const Pgferry__State__TableDef *nd, const Pgferry__State__ColumnDef *self,
              const char *name)
{
    for (size_t k = 0; k < old->n_columns; k++) {
        if (old_msg[k] >= 0 && strcmp(chtable_col_name(old->columns[k]), name) == 0)
            return true;
    }
    for (size_t i = 0; i < nd->n_columns; i++) {
        if (nd->columns[i] != self && strcmp(chtable_col_name(nd->columns[i]), name) == 0)
            return true;
    }
    return false;
}

static errclass_t
ch_exec(ch_client_t *ch, buf_t *sql, char *err, size_t errlen)
{
    buf_byte(sql, '\0');
    if (sql->oom) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    log_info("ClickHouse: %s", (char *)sql->data);
    return ch_client_query(ch, (char *)sql->data, NULL, err, errlen);
}

/* Which of the attnums still name a column of relid (not dropped): survive[i] for attnums[i]. */
static errclass_t
surviving(PGconn *pg, uint32_t relid, const int *attnums, size_t n, bool *survive, char *err,
          size_t errlen)
{
    buf_t arr;
    buf_init(&arr);
    buf_byte(&arr, '{');
    for (size_t i = 0; i < n; i++) {
        char s[16];
        int l = snprintf(s, sizeof(s), "%s%d", i ? "," : "", attnums[i]);
        buf_append(&arr, s, (size_t)l);
    }
    buf_append(&arr, "}", 2);
    char rid[16];
    snprintf(rid, sizeof(rid), "%u", relid);
    const char *p[] = {rid, (const char *)arr.data};
    errclass_t cls = ERRCLASS_TRANSIENT;
    PGresult *r = arr.oom
                      ? NULL
                      : pgconn_query(pg,
                                     "SELECT attnum FROM pg_attribute WHERE attrelid = "
                                     "$1::oid AND attnum = ANY($2::int2[]) AND NOT attisdropped",
                                     2, p, &cls, err, errlen);
    buf_free(&arr);
    if (!r)
        return cls;
    memset(survive, 0, n * sizeof(*survive));
    for (int row = 0; row < PQntuples(r); row++) {
        int a = atoi(PQgetvalue(r, row, 0));
        for (size_t i = 0; i < n; i++) {
            if (attnums[i] == a)
                survive[i] = true;
        }
    }
    PQclear(r);
    return ERRCLASS_NONE;
}

/* A column of the message new to the definition: its definition from the message's type. */
static errclass_t
added_column(PGconn *pg, uint32_t relid, const pgo_column_t *rc, unsigned tm_flags,
             Pgferry__State__ColumnDef **out, typemap_col_t *tm, char *err, size_t errlen)
{
    setup_type_t ti;
    errclass_t cls = setup_type_info(pg, rc->type_oid, rc->typmod, &ti, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    /* its attnum, when the catalog still has it under this name: a later rename is then told
     * from a drop and an add */
    int attnum = 0;
    char rid[16];
    snprintf(rid, sizeof(rid), "%u", relid);
    const char *p[] = {rid, rc->name};
    PGresult *r = pgconn_query(pg,
                               "SELECT attnum FROM pg_attribute WHERE attrelid = $1::oid AND "
                               "attname = $2 AND NOT attisdropped",
                               2, p, &cls, err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) == 1)
        attnum = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    /* rows from before the change have no value: Nullable in ClickHouse */
    typemap_for_pg(ti.base_oid, ti.category, ti.base_typmod, false, 0, tm_flags, tm);
    Pgferry__State__ColumnDef *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    pgferry__state__column_def__init(c);
    char cat[2] = {ti.category, '\0'};
    c->name = strdup(rc->name);
    c->pg_type = strdup(ti.pg_type);
    c->base_type_oid = ti.base_oid;
    c->base_typmod = ti.base_typmod;
    c->typcategory = strdup(cat);
    c->ch_type = strdup(tm->ch_type);
    c->type_oid = rc->type_oid;
    c->typmod = rc->typmod;
    c->attnum = attnum;
    if (!c->name || !c->pg_type || !c->typcategory || !c->ch_type) {
        pgferry__state__column_def__free_unpacked(c, NULL);
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    *out = c;
    return ERRCLASS_NONE;
}

/* The publication changed under the pipe: a column left out at Setup (generated, not
 * published) is in the stream now, or the user's publication stopped publishing a column the
 * table still has. Either way rows already in ClickHouse do not match what it publishes now. */
static errclass_t
publication_changed(PGconn *pg, const char *user_pub, const Pgferry__State__TableDef *old,
                    const pgo_msg_t *rel, const int *old_msg, const char *shown, char *err,
                    size_t errlen)
{
    for (size_t j = 0; j < rel->u.relation.ncols; j++) {
        const char *name = rel->u.relation.cols[j].name;
        const char *why = setup_skipped_reason(old, name);
        for (size_t k = 0; why && k < old->n_columns; k++) {
            if (strcmp(old->columns[k]->name, name) == 0)
                why = NULL; /* a column of that name was added since */
        }
        if (why && strcmp(why, "excluded") != 0) {
            snprintf(err, errlen,
                     "column %s of %s is in the stream now but was left out when the pipe was "
                     "set up (%s): the publication changed; resync the pipe to load it",
                     rel->u.relation.cols[j].name, shown, why);
            return ERRCLASS_FATAL;
        }
    }
    if (!user_pub || !user_pub[0] || PQserverVersion(pg) < 150000)
        return ERRCLASS_NONE;
    for (size_t k = 0; k < old->n_columns; k++) {
        if (old_msg[k] >= 0)
            continue;
        char rid[16];
        snprintf(rid, sizeof(rid), "%u", old->relid);
        const char *p[] = {rid, old->columns[k]->name, user_pub};
        errclass_t cls;
        PGresult *r = pgconn_query(pg,
                                   "SELECT 1 FROM pg_attribute a WHERE a.attrelid = $1::oid AND "
                                   "a.attname = $2 AND NOT a.attisdropped AND NOT EXISTS "
                                   "(SELECT 1 FROM pg_publication_tables pt WHERE pt.pubname = $3 "
                                   "AND $2 = ANY(pt.attnames) AND " PUB_RELATIONS ")",
                                   3, p, &cls, err, errlen);
        if (!r)
            return cls;
        bool unpublished = PQntuples(r) > 0;
        PQclear(r);
        if (unpublished) {
            snprintf(err, errlen,
                     "column %s of %s is no longer published by publication %s (its column list "
                     "changed); resync the pipe to follow the publication",
                     old->columns[k]->name, shown, user_pub);
            return ERRCLASS_FATAL;
        }
    }
    return ERRCLASS_NONE;
}

/* Drops the live-rows view of target before a MODIFY COLUMN of its table: ClickHouse 18.16
 * crashes (a segmentation fault) when a view created before a column became Nullable is read
 * (found with a Nullable(Decimal) column; any read of the view between the ALTER and its
 * re-creation did it). Without the view such a read fails cleanly until it is created again. */
static errclass_t
drop_view_first(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *target,
                char *err, size_t errlen)
{
    char view[300];
    snprintf(view, sizeof(view), "%s_live", target);
    return setup_drop(ch, cl, db, view, false, err, errlen);
}

/* The sharded layout's Distributed table and the live-rows view take the data table's columns
 * again after a change of them (schema_apply, schema_nullable). */
static errclass_t
redo_dependents(ch_client_t *ch, const chcluster_t *cl, const char *db,
                const Pgferry__State__TableDef *nd, char *err, size_t errlen)
{
    errclass_t cls = setup_redo_dist(ch, cl, db, nd, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    char view[300];
    snprintf(view, sizeof(view), "%s_live", nd->target);
    cls = setup_drop(ch, cl, db, view, false, err, errlen);
    char *vddl = cls == ERRCLASS_NONE ? setup_view_ddl(cl, db, nd) : NULL;
    if (cls == ERRCLASS_NONE && !vddl) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
    }
    if (cls == ERRCLASS_NONE)
        cls = ch_client_query(ch, vddl, NULL, err, errlen);
    free(vddl);
    return cls;
}

errclass_t
schema_apply(PGconn *pg, ch_client_t *ch, const chcluster_t *cl, const char *db,
             const Pgferry__State__TableSpec *ts, const char *user_pub, unsigned tm_flags,
             const Pgferry__State__TableDef *old, const pgo_msg_t *rel,
             Pgferry__State__TableDef **out, char *reason_out, size_t reasonlen, char *err,
             size_t errlen)
{
    size_t nm = rel->u.relation.ncols, no = old->n_columns;
    Pgferry__State__TableDef *nd = NULL;
    char *chcols = NULL, qtab[900];
    buf_t reason, sql;
    buf_init(&reason);
    buf_init(&sql);
    int *msg_old = calloc(nm + 1, sizeof(int)); /* message column -> old column, -1 */
    int *old_msg = calloc(no + 1, sizeof(int)); /* old column -> message column, -1 */
    int *attnums = calloc(no + 1, sizeof(int));
    size_t *uold = calloc(no + 1, sizeof(size_t));
    bool *survive = calloc(no + 1, sizeof(bool));
    errclass_t cls = ERRCLASS_TRANSIENT;
    char shown[400];
    snprintf(shown, sizeof(shown), "%s.%s", old->schema, old->name);
    if (!msg_old || !old_msg || !attnums || !uold || !survive) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* ALTERs and the view's replacement: on the pipe's own table only */
    cls = owners_claim(ch, cl, db, old->target, OWNERS_STREAM, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    cls = ERRCLASS_TRANSIENT;
    for (size_t k = 0; k < no; k++)
        old_msg[k] = -1;
    /* 1. the same name, or the ClickHouse name (a message from before a rename, replayed) */
    for (size_t j = 0; j < nm; j++) {
        const char *name = rel->u.relation.cols[j].name;
        msg_old[j] = -1;
        if (setup_column_excluded(ts, name))
            continue;
        for (int pass = 0; pass < 2 && msg_old[j] < 0; pass++) {
            for (size_t k = 0; k < no; k++) {
                const char *n = pass ? chtable_col_name(old->columns[k]) : old->columns[k]->name;
                if (old_msg[k] < 0 && strcmp(n, name) == 0) {
                    msg_old[j] = (int)k;
                    old_msg[k] = (int)j;
                    break;
                }
            }
        }
    }
    /* 2. renamed columns: an old column that left the stream but still exists in the catalog
     * (by attnum) was renamed. Columns added later have higher attnums, so in stream order
     * (attnum order) the renamed ones come first among the unmatched. */
    size_t nu = 0;
    for (size_t k = 0; k < no; k++) {
        if (old_msg[k] < 0 && old->columns[k]->attnum > 0) {
            uold[nu] = k;
            attnums[nu++] = old->columns[k]->attnum;
        }
    }
    size_t unmatched_msg = 0;
    for (size_t j = 0; j < nm; j++)
        unmatched_msg += msg_old[j] < 0 && !setup_column_excluded(ts, rel->u.relation.cols[j].name);
    if (nu && unmatched_msg) {
        cls = surviving(pg, old->relid, attnums, nu, survive, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
        size_t j = 0;
        for (size_t i = 0; i < nu; i++) {
            if (!survive[i])
                continue;
            while (j < nm &&
                   (msg_old[j] >= 0 || setup_column_excluded(ts, rel->u.relation.cols[j].name)))
                j++;
            if (j == nm)
                break;
            size_t k = uold[i];
            msg_old[j] = (int)k;
            old_msg[k] = (int)j;
            note(&reason, "column %s renamed to %s (ClickHouse keeps column %s)",
                 old->columns[k]->name, rel->u.relation.cols[j].name,
                 chtable_col_name(old->columns[k]));
        }
    }
    /* columns whose attnum is unknown (added by a schema change and renamed before the stream
     * brought the addition): a leftover of the same type, in stream order, is taken as renamed */
    for (size_t k = 0; k < no; k++) {
        if (old_msg[k] >= 0 || old->columns[k]->attnum > 0)
            continue;
        for (size_t j = 0; j < nm; j++) {
            const pgo_column_t *rc = &rel->u.relation.cols[j];
            if (msg_old[j] >= 0 || setup_column_excluded(ts, rc->name) ||
                rc->type_oid != old->columns[k]->type_oid)
                continue;
            msg_old[j] = (int)k;
            old_msg[k] = (int)j;
            note(&reason, "column %s renamed to %s (ClickHouse keeps column %s)",
                 old->columns[k]->name, rc->name, chtable_col_name(old->columns[k]));
            break;
        }
    }
    /* a key column that left the stream, or a key that changed, needs a new load */
    for (size_t k = 0; k < no; k++) {
        if (old->columns[k]->key_position && old_msg[k] < 0) {
            snprintf(err, errlen, "key column %s of %s was dropped; resync the pipe",
                     old->columns[k]->name, shown);
            cls = ERRCLASS_FATAL;
            goto out;
        }
    }
    if (rel->u.relation.replident != 'f') { /* FULL marks every column: no key to compare */
        for (size_t j = 0; j < nm; j++) {
            bool marked = rel->u.relation.cols[j].flags & 1;
            bool was_key = msg_old[j] >= 0 && old->columns[msg_old[j]]->key_position > 0;
            if (marked != was_key) {
                snprintf(err, errlen,
                         "the key of %s changed (column %s is %s part of it); the destination "
                         "table is ordered by the old key: resync the pipe",
                         shown, rel->u.relation.cols[j].name, marked ? "now" : "no longer");
                cls = ERRCLASS_FATAL;
                goto out;
            }
        }
    }
    cls = publication_changed(pg, user_pub, old, rel, old_msg, shown, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    char data[300];
    chcluster_data_table(cl, old->target, data, sizeof(data));
    cls = ch_columns(ch, db, data, &chcols, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    nd = calloc(1, sizeof(*nd));
    if (nd) {
        pgferry__state__table_def__init(nd);
        nd->columns = calloc(nm + 1, sizeof(*nd->columns));
    }
    if (!nd || !nd->columns) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    nd->schema = strdup(old->schema);
    nd->name = strdup(old->name);
    nd->target = strdup(old->target);
    nd->relid = old->relid;
    nd->relpages = old->relpages;
    nd->reltuples = old->reltuples;
    nd->snapshot_lsn = strdup(old->snapshot_lsn);
    nd->partition_column = old->partition_column;
    nd->row_filter = strdup(old->row_filter);
    nd->partition_by = strdup(old->partition_by);
    if (old->n_skipped_columns) {
        nd->skipped_columns = calloc(old->n_skipped_columns, sizeof(*nd->skipped_columns));
        for (size_t i = 0; nd->skipped_columns && i < old->n_skipped_columns; i++) {
            Pgferry__State__SkippedColumn *sc = calloc(1, sizeof(*sc));
            if (!sc)
                break;
            pgferry__state__skipped_column__init(sc);
            sc->name = strdup(old->skipped_columns[i]->name);
            sc->reason = strdup(old->skipped_columns[i]->reason);
            nd->skipped_columns[nd->n_skipped_columns++] = sc;
        }
    }
    if (!nd->row_filter || !nd->partition_by || nd->n_skipped_columns != old->n_skipped_columns) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    {
        char q[300], qt[300];
        chsql_ident(db, q, sizeof(q));
        chsql_ident(data, qt, sizeof(qt));
        /* the statements go on with " ADD COLUMN" and the like */
        snprintf(qtab, sizeof(qtab), "%s.%s%s", q, qt, cl->on);
    }
    /* 3. the new definition, in stream order */
    for (size_t j = 0; j < nm; j++) {
        const pgo_column_t *rc = &rel->u.relation.cols[j];
        if (setup_column_excluded(ts, rc->name))
            continue;
        Pgferry__State__ColumnDef *nc = NULL;
        int k = msg_old[j];
        if (k >= 0) {
            nc = col_copy(old->columns[k]);
            if (!nc) {
                snprintf(err, errlen, "out of memory");
                cls = ERRCLASS_TRANSIENT;
                goto out;
            }
            nd->columns[nd->n_columns++] = nc;
            if (strcmp(nc->name, rc->name) != 0) {
                if (!nc->ch_name || !nc->ch_name[0])
                    set_string(&nc->ch_name, old->columns[k]->name);
                set_string(&nc->name, rc->name);
                if (strcmp(nc->ch_name, nc->name) == 0) { /* renamed back */
                    free(nc->ch_name);
                    nc->ch_name = (char *)protobuf_c_empty_string;
                }
            }
            if (nc->type_oid && (nc->type_oid != rc->type_oid || nc->typmod != rc->typmod)) {
                setup_type_t ti;
                cls = setup_type_info(pg, rc->type_oid, rc->typmod, &ti, err, errlen);
                if (cls != ERRCLASS_NONE)
                    goto out;
                typemap_col_t tm;
                typemap_for_pg(ti.base_oid, ti.category, ti.base_typmod, nc->not_null, 0, tm_flags,
                               &tm);
                if (strcmp(tm.ch_type, nc->ch_type) != 0) {
                    snprintf(err, errlen,
                             "column %s of %s changed type from %s to %s, which needs ClickHouse "
                             "type %s instead of %s; resync the pipe",
                             rc->name, shown, nc->pg_type, ti.pg_type, tm.ch_type, nc->ch_type);
                    cls = ERRCLASS_FATAL;
                    goto out;
                }
                note(&reason, "column %s changed type from %s to %s", rc->name, nc->pg_type,
                     ti.pg_type);
                char cat[2] = {ti.category, '\0'};
                set_string(&nc->pg_type, ti.pg_type);
                set_string(&nc->typcategory, cat);
                nc->base_type_oid = ti.base_oid;
                nc->base_typmod = ti.base_typmod;
                nc->type_oid = rc->type_oid;
                nc->typmod = rc->typmod;
            }
            continue;
        }
        typemap_col_t tm;
        cls = added_column(pg, old->relid, rc, tm_flags, &nc, &tm, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
        nd->columns[nd->n_columns++] = nc;
        char type[200], q[300];
        /* the name may be a kept column's in ClickHouse (a column renamed at the source keeps
         * its ClickHouse name, and a new column can take the old name): the new one gets the
         * first of name_2, name_3, ... no kept column uses (the same choice when replayed) */
        if (ch_name_taken(old, old_msg, nd, nc, nc->name)) {
            char cand[300];
            for (int n = 2;; n++) {
                snprintf(cand, sizeof(cand), "%s_%d", nc->name, n);
                if (ch_name_taken(old, old_msg, nd, nc, cand))
                    continue;
                if (ch_column_type(chcols, cand, type, sizeof(type)) &&
                    strcmp(type, tm.ch_type) != 0)
                    continue;
                break;
            }
            char *dup = strdup(cand);
            if (!dup) {
                snprintf(err, errlen, "out of memory");
                cls = ERRCLASS_TRANSIENT;
                goto out;
            }
            nc->ch_name = dup;
            note(&reason, "column %s goes to ClickHouse column %s (%s is a renamed column's)",
                 nc->name, cand, nc->name);
        }
        if (ch_column_type(chcols, chtable_col_name(nc), type, sizeof(type))) {
            /* already there: a replay, or a column dropped and added again */
            note(&reason, "column %s is in the stream again (ClickHouse has column %s %s)",
                 nc->name, chtable_col_name(nc), type);
            if (strcmp(type, tm.ch_type) != 0) {
                snprintf(err, errlen,
                         "column %s of %s came back as %s, but ClickHouse still has the earlier "
                         "column %s %s (a column dropped and added again with another type); "
                         "resync the pipe",
                         nc->name, shown, nc->pg_type, nc->name, type);
                cls = ERRCLASS_FATAL;
                goto out;
            }
            continue;
        }
        bool vol = false;
        chsql_ident(chtable_col_name(nc), q, sizeof(q));
        buf_reset(&sql);
        buf_append(&sql, "ALTER TABLE ", 12);
        buf_append(&sql, qtab, strlen(qtab));
        buf_append(&sql, " ADD COLUMN ", 12);
        buf_append(&sql, q, strlen(q));
        buf_byte(&sql, ' ');
        buf_append(&sql, tm.ch_type, strlen(tm.ch_type));
        cls = missing_default(pg, old->relid, nc->name, &tm, &sql, &vol, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = ch_exec(ch, &sql, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
        note(&reason, vol ? "column %s added as %s (%s)" : "column %s added as %s%s", nc->name,
             tm.ch_type,
             vol ? "PostgreSQL filled existing rows by rewriting the table, which is not "
                   "replicated: rows from before show NULL until resync"
                 : "");
    }
    /* 4. columns the stream no longer has: kept in ClickHouse, Nullable, NULL in new rows */
    for (size_t k = 0; k < no; k++) {
        if (old_msg[k] >= 0)
            continue;
        const Pgferry__State__ColumnDef *oc = old->columns[k];
        char type[200], q[300];
        if (ch_column_type(chcols, chtable_col_name(oc), type, sizeof(type)) &&
            strncmp(type, "Nullable(", 9) != 0) {
            chsql_ident(chtable_col_name(oc), q, sizeof(q));
            buf_reset(&sql);
            buf_append(&sql, "ALTER TABLE ", 12);
            buf_append(&sql, qtab, strlen(qtab));
            buf_append(&sql, " MODIFY COLUMN ", 15);
            buf_append(&sql, q, strlen(q));
            buf_append(&sql, " Nullable(", 10);
            buf_append(&sql, type, strlen(type));
            buf_byte(&sql, ')');
            cls = drop_view_first(ch, cl, db, old->target, err, errlen);
            if (cls == ERRCLASS_NONE)
                cls = ch_exec(ch, &sql, err, errlen);
            if (cls != ERRCLASS_NONE)
                goto out;
        }
        note(&reason, "column %s dropped at the source (ClickHouse keeps column %s%s)", oc->name,
             chtable_col_name(oc), ", NULL in new rows");
    }
    /* 5. a sharded layout's Distributed table and 6. the live-rows view take the columns */
    cls = redo_dependents(ch, cl, db, nd, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    if (reason.len == 0)
        note(&reason, "column order or types of %s%s%s changed", shown, "", "");
    snprintf(reason_out, reasonlen, "schema change in %s: %.*s", shown, (int)reason.len,
             (char *)reason.data);
    *out = nd;
    nd = NULL;
    cls = ERRCLASS_NONE;
out:
    free(msg_old);
    free(old_msg);
    free(attnums);
    free(uold);
    free(survive);
    free(chcols);
    buf_free(&reason);
    buf_free(&sql);
    if (nd)
        setup_free_def(nd);
    return cls;
}

errclass_t
schema_nullable(ch_client_t *ch, const chcluster_t *cl, const char *db,
                const Pgferry__State__TableDef *old, const bool *null_in,
                Pgferry__State__TableDef **out, char *reason_out, size_t reasonlen, char *err,
                size_t errlen)
{
    char shown[400], data[300], qtab[900];
    snprintf(shown, sizeof(shown), "%s.%s", old->schema, old->name);
    *out = NULL;
    /* a column of the ordering key cannot be Nullable in ClickHouse: nothing to follow */
    for (size_t i = 0; i < old->n_columns; i++) {
        const Pgferry__State__ColumnDef *c = old->columns[i];
        if (null_in[i] && c->not_null && c->key_position) {
            snprintf(err, errlen,
                     "column %s of %s was made nullable at the source (ALTER COLUMN ... DROP NOT "
                     "NULL) and a change holds NULL in it, but it is in the destination's "
                     "ordering key (--order-by), which ClickHouse cannot make Nullable: set it "
                     "NOT NULL again at the source (after changing the NULL rows) and resync the "
                     "pipe, or remove the table and add it again without it in --order-by",
                     c->name, shown);
            return ERRCLASS_FATAL;
        }
    }
    chcluster_data_table(cl, old->target, data, sizeof(data));
    char *chcols = NULL;
    errclass_t cls = ch_columns(ch, db, data, &chcols, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    size_t n = pgferry__state__table_def__get_packed_size(old);
    uint8_t *packed = malloc(n ? n : 1);
    Pgferry__State__TableDef *nd = NULL;
    if (packed) {
        pgferry__state__table_def__pack(old, packed);
        nd = pgferry__state__table_def__unpack(NULL, n, packed);
        free(packed);
    }
    buf_t reason, sql;
    buf_init(&reason);
    buf_init(&sql);
    if (!nd) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    {
        char q[300], qt[300];
        chsql_ident(db, q, sizeof(q));
        chsql_ident(data, qt, sizeof(qt));
        snprintf(qtab, sizeof(qtab), "%s.%s%s", q, qt, cl->on);
    }
    /* one ALTER for all of them (a wide table can lose many NOT NULLs at once) */
    const Pgferry__State__ColumnDef *first = NULL;
    buf_append(&sql, "ALTER TABLE ", 12);
    buf_append(&sql, qtab, strlen(qtab));
    size_t nmod = 0;
    for (size_t i = 0; i < nd->n_columns; i++) {
        Pgferry__State__ColumnDef *c = nd->columns[i];
        if (!null_in[i] || !c->not_null)
            continue;
        char type[200], q[300], nt[256];
        snprintf(nt, sizeof(nt), "Nullable(%s)", c->ch_type);
        /* already Nullable: the change was made before a restart and is seen again */
        if (!ch_column_type(chcols, chtable_col_name(c), type, sizeof(type)) ||
            strcmp(type, nt) != 0) {
            chsql_ident(chtable_col_name(c), q, sizeof(q));
            const char *mc = nmod++ ? ", MODIFY COLUMN " : " MODIFY COLUMN ";
            buf_append(&sql, mc, strlen(mc));
            buf_append(&sql, q, strlen(q));
            buf_byte(&sql, ' ');
            buf_append(&sql, nt, strlen(nt));
            first = first ? first : c;
        }
        c->not_null = false;
        set_string(&c->ch_type, nt);
        note(&reason, "column %s dropped NOT NULL at the source (ClickHouse column %s is %s now)",
             c->name, chtable_col_name(c), nt);
    }
    if (nmod) {
        cls = drop_view_first(ch, cl, db, old->target, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = ch_exec(ch, &sql, err, errlen);
        if (cls == ERRCLASS_FATAL) {
            char e[700];
            snprintf(e, sizeof(e), "%s", err);
            snprintf(err, errlen,
                     "column %s of %s was made nullable at the source (ALTER COLUMN ... DROP NOT "
                     "NULL) and a change holds NULL in it, but ClickHouse cannot make its column "
                     "Nullable (%s): resync the pipe, or remove the table and add it again with "
                     "the column in --exclude-columns",
                     first->name, shown, e);
        }
        if (cls != ERRCLASS_NONE)
            goto out;
    }
    /* the definitions kept before this one (TableDef.previous: a replay from before an earlier
     * schema change goes back to them) describe the same ClickHouse columns, which are Nullable
     * now: so are they, or such a replay would write plain values into a Nullable column (the
     * change that made it Nullable is not applied again: its rows are in ClickHouse already) */
    for (Pgferry__State__TableDef *p = nd->previous; p; p = p->previous) {
        for (size_t j = 0; j < p->n_columns; j++) {
            Pgferry__State__ColumnDef *pc = p->columns[j];
            for (size_t i = 0; pc->not_null && i < nd->n_columns; i++) {
                const Pgferry__State__ColumnDef *c = nd->columns[i];
                char nt[256];
                snprintf(nt, sizeof(nt), "Nullable(%s)", pc->ch_type);
                if (null_in[i] && strcmp(chtable_col_name(c), chtable_col_name(pc)) == 0 &&
                    strcmp(c->ch_type, nt) == 0) {
                    pc->not_null = false;
                    set_string(&pc->ch_type, nt);
                }
            }
        }
    }
    cls = redo_dependents(ch, cl, db, nd, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    snprintf(reason_out, reasonlen, "schema change in %s: %.*s", shown, (int)reason.len,
             (char *)reason.data);
    *out = nd;
    nd = NULL;
out:
    free(chcols);
    buf_free(&reason);
    buf_free(&sql);
    if (nd)
        setup_free_def(nd);
    return cls;
}
