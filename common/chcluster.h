/*
 * chcluster: what a ClickHouse cluster destination changes in the SQL pgferry writes (pure).
 *
 * A pipe created with --cluster NAME runs every DDL statement ON CLUSTER NAME and creates its
 * data tables with ReplicatedReplacingMergeTree. Layout "replicated" (the default): one shard,
 * the table named after the target on every node. Layout "sharded": the data lives in
 * <target>_local on every shard, and <target> is a Distributed table over them sharded by a
 * hash of the key (every version of a key lands on one shard, where ReplacingMergeTree
 * collapses it); inserts, the _live view and pgferry's reads use <target>.
 */
#ifndef PGFERRY_CHCLUSTER_H
#define PGFERRY_CHCLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHCLUSTER_DEFAULT_ZK_PATH "/clickhouse/tables/{shard}/pgferry/{database}/{table}/{uid}"
#define CHCLUSTER_LOCAL_SUFFIX "_local"

typedef struct {
    char name[201]; /* "" = one node */
    bool sharded;
    char zk_path[501]; /* the pattern */
    char on[240];      /* " ON CLUSTER 'name'" or "" */
} chcluster_t;

/* Checks a pipe's cluster options as create receives them; false with the reason in err. */
bool chcluster_check(const char *cluster, const char *layout, const char *zk_path,
                     uint32_t insert_quorum, char *err, size_t errlen);
/* From checked options. */
void chcluster_init(chcluster_t *cl, const char *cluster, const char *layout, const char *zk_path);
static inline bool
chcluster_on(const chcluster_t *cl)
{
    return cl->name[0] != '\0';
}
/* The table that holds the rows of target: target itself, or target_local when sharded. */
void chcluster_data_table(const chcluster_t *cl, const char *target, char *out, size_t outlen);
/* The ENGINE of a new data table named table in db, versioned by version_col (a quoted
 * identifier): ReplacingMergeTree, or ReplicatedReplacingMergeTree with the path pattern's
 * {database}, {table} and {uid} filled ({uid} fresh on each call, so a table created again
 * under an old name gets its own path; {shard} and {replica} are the servers' macros). */
void chcluster_engine(const chcluster_t *cl, const char *db, const char *table,
                      const char *version_col, char *out, size_t outlen);
/* "Distributed('cluster', 'db', 'local', cityHash64(toString(k1), ...))" for the quoted key
 * column identifiers keys[0..n) */
void chcluster_distributed_engine(const chcluster_t *cl, const char *db, const char *local,
                                  const char *const *keys, size_t n, char *out, size_t outlen);

#endif
