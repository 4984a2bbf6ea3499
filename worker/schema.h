/*
 * schema: a Relation message whose columns differ from a table's recorded definition (a
 * schema change at the source). The new definition is built from the message itself (column
 * names, type OIDs and typmods, in the stream's order), never from today's catalog, so changes
 * that happened one after another (ADD COLUMN x, rows, DROP COLUMN x) apply in order even when
 * the catalog has moved on. The catalog is only asked what the message cannot tell: a type's
 * properties by its oid, whether a column that left the stream still exists (then it was
 * renamed), and the default PostgreSQL gave older rows of an added column.
 *
 * ClickHouse follows: added columns are added (Nullable), dropped ones stay with their data
 * (made Nullable), renamed ones keep their ClickHouse name, and the live-rows view is created
 * again. A type change that needs another ClickHouse type, a dropped key column or a changed
 * key is FATAL (the way out is a resync).
 */
#ifndef PGFERRY_SCHEMA_H
#define PGFERRY_SCHEMA_H

#include <libpq-fe.h>
#include <stddef.h>
#include "chclient.h"
#include "chcluster.h"
#include "errclass.h"
#include "pgoutput.h"
#include "state.pb-c.h"

/* Builds the definition that matches Relation message rel from the recorded one (old), and
 * applies it in ClickHouse (database db). On success *out is the new definition (caller frees
 * with setup_free_def) and reason a sentence for the pipe's history. user_pub: the user's
 * publication the pipe reads (NULL for the pipe's own): a column it stops publishing, or one
 * the pipe left out that the stream now carries, stops the pipe with resync as the way out. */
errclass_t schema_apply(PGconn *pg, ch_client_t *ch, const chcluster_t *cl, const char *db,
                        const Pgferry__State__TableSpec *ts, const char *user_pub,
                        unsigned tm_flags, const Pgferry__State__TableDef *old,
                        const pgo_msg_t *rel, Pgferry__State__TableDef **out, char *reason,
                        size_t reasonlen, char *err, size_t errlen);

/* A change held NULL in columns of old recorded NOT NULL (null_in[i] for old's column i): the
 * source dropped NOT NULL, which the Relation message does not carry. Each such column becomes
 * Nullable in ClickHouse (MODIFY COLUMN, ON CLUSTER on clusters; the Distributed table and the
 * live view follow) and *out is the new definition. A column of the ordering key cannot be
 * Nullable: FATAL naming the way out, as for a ClickHouse refusal. SET NOT NULL needs nothing
 * (a Nullable column holds the values). */
errclass_t schema_nullable(ch_client_t *ch, const chcluster_t *cl, const char *db,
                           const Pgferry__State__TableDef *old, const bool *null_in,
                           Pgferry__State__TableDef **out, char *reason, size_t reasonlen,
                           char *err, size_t errlen);

/* Whether the key columns the Relation message marks (replica identity) are the recorded key
 * (always true under REPLICA IDENTITY FULL, which marks every column). */
bool schema_key_matches(const Pgferry__State__TableDef *d, const pgo_msg_t *rel);

#endif
