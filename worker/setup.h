/*
 * setup: the Setup stage (DESIGN sections 4 and 7). Reads each source table's definition
 * (columns in order, types with typmods, nullability, key columns in key order), chooses the
 * destination types (typemap), and creates the ClickHouse database, one ReplacingMergeTree
 * table per source table and a view of its live rows. Re-running it over matching tables is
 * harmless; an existing table that does not match is a FATAL error naming the difference.
 */
#ifndef PGFERRY_SETUP_H
#define PGFERRY_SETUP_H

#include <stddef.h>
#include <libpq-fe.h>
#include "errclass.h"
#include "state.pb-c.h"
#include "chcluster.h"
#include "chtable.h"
#include "worker.h"

typedef struct {
    Pgferry__State__TableDef **tables; /* owned; free with setup_free_result */
    size_t n_tables;
    char detail[1024];
} setup_result_t;

/* existing: definitions recorded before (tables added to a running pipe keep the others as
 * they are: no DDL, no re-read, only their current names, found by oid); NULL/0 for a new pipe.
 * A table is its oid: a known table renamed at the source keeps its definition under its new
 * name, a new table that took its old name is not it. */
/* resync: every table read again from the catalog (a known one by its oid; existing also tells
 * which tables the pipe set up before: they are its own in the registry of owners,
 * worker/owners.h) and an empty
 * <target>_resync table created for each; the destination tables are left alone. */
errclass_t setup_run(const Pgferry__State__PipeSpec *spec,
                     Pgferry__State__TableDef *const *existing, size_t n_existing, bool resync,
                     worker_t *w, setup_result_t *out, char *err, size_t errlen);
void setup_free_result(setup_result_t *r);

/* Resync's last step: each <target>_resync table (and a new live-rows view) takes the place of
 * the old one with a single RENAME, the old data is dropped. Safe to run again. */
errclass_t setup_swap(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *tables,
                      size_t n_tables, worker_t *w, char *detail, size_t detaillen, char *err,
                      size_t errlen);

/* Reads one source table's definition (current catalog) on c: the columns the pipe replicates
 * (those it leaves out in skipped_columns, with the reason: excluded, generated, not published
 * by the pipe's user publication), the publication's row filter, and the shape the spec asks
 * for (order-by, partition-by). tm_flags: TYPEMAP_* flags of the pipe (numeric_text). */
/* relid: the table's oid when the pipe knows it (its name may have changed: the definition
 * takes the current one); 0 to find it by t's name. */
errclass_t setup_read_table(PGconn *c, const Pgferry__State__PipeSpec *spec,
                            const Pgferry__State__TableSpec *t, uint32_t relid, long ch_version,
                            unsigned tm_flags, Pgferry__State__TableDef **out, char *err,
                            size_t errlen);
/* The names relations relids[0..n) have now (a table is its oid, whatever it is called):
 * schemas[i] and names[i] are allocated (the caller frees them), both NULL when no relation has
 * that oid any more. */
errclass_t setup_names_by_oid(PGconn *c, const uint32_t *relids, size_t n, char **schemas,
                              char **names, char *err, size_t errlen);
/* Puts t's --order-by columns first in d's key (key_position): refused unless each is
 * replicated, NOT NULL and covered by the replica identity (a key column, or identity FULL). */
errclass_t setup_shape_order_by(Pgferry__State__TableDef *d, const Pgferry__State__TableSpec *t,
                                bool ident_full, const char *shown, char *err, size_t errlen);
/* SQL: the rows of pg_publication_tables pt that are table $1 (an oid): itself, or its
 * partitions */
#define PUB_RELATIONS                                                                              \
    "format('%I.%I', pt.schemaname, pt.tablename)::regclass::oid IN "                              \
    "(SELECT $1::oid UNION ALL SELECT relid FROM pg_partition_tree($1::oid::regclass))"

/* Why column col of the source is not in d ("excluded", "generated", "not published"), or NULL */
const char *setup_skipped_reason(const Pgferry__State__TableDef *d, const char *col);
void setup_free_def(Pgferry__State__TableDef *d);

/* What the catalog says of a type (by oid, for a column seen in the replication stream):
 * domains followed to their base type. A type that no longer exists is not an error: found is
 * false and the column maps to String (its text form is what the stream carries). */
typedef struct {
    bool found;
    uint32_t base_oid;
    int32_t base_typmod;
    char category; /* pg_type.typcategory of the base type */
    bool not_null; /* a domain's NOT NULL */
    char pg_type[256];
} setup_type_t;
errclass_t setup_type_info(PGconn *c, uint32_t type_oid, int32_t typmod, setup_type_t *out,
                           char *err, size_t errlen);
/* Whether the pipe's spec leaves column col of table t out. */
bool setup_column_excluded(const Pgferry__State__TableSpec *t, const char *col);

/* The CREATE VIEW statement of def's live rows (ON CLUSTER on a cluster). Caller frees. */
char *setup_view_ddl(const chcluster_t *cl, const char *db, const Pgferry__State__TableDef *def);
char *setup_view_ddl_named(const chcluster_t *cl, const char *db,
                           const Pgferry__State__TableDef *def, const char *view);

/* The CREATE TABLE statement of the table holding def's rows under the name `name` (name_local
 * in a sharded layout). Caller frees. */
char *setup_table_ddl_named(const chcluster_t *cl, const char *db,
                            const Pgferry__State__TableDef *def, const char *name);

/* The CREATE TABLE statement for def in database db (exposed for tests). Caller frees. */
char *setup_table_ddl(const chcluster_t *cl, const char *db, const Pgferry__State__TableDef *def);
/* Sharded layout: the Distributed table `name` over the data table `data`; NULL otherwise.
 * Caller frees. */
char *setup_dist_ddl(const chcluster_t *cl, const char *db, const Pgferry__State__TableDef *def,
                     const char *name, const char *data);
/* Creates (IF NOT EXISTS) the table(s) of def under the name `name`. */
errclass_t setup_create_table(ch_client_t *ch, const chcluster_t *cl, const char *db,
                              const Pgferry__State__TableDef *def, const char *name, char *err,
                              size_t errlen);
/* Sharded layout: def's Distributed table made again over target_local (its columns as they
 * are now), swapped in with one RENAME. No-op otherwise. */
errclass_t setup_redo_dist(ch_client_t *ch, const chcluster_t *cl, const char *db,
                           const Pgferry__State__TableDef *def, char *err, size_t errlen);
/* DROP TABLE IF EXISTS db.name (a view too), and its name_local when with_data in a sharded
 * layout. */
errclass_t setup_drop(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *name,
                      bool with_data, char *err, size_t errlen);

#endif
