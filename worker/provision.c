/* provision: read-only checks against both servers. */
#include "provision.h"
#include "chsql.h"
#include "chclient.h"
#include "log.h"
#include "pgconn.h"
#include "tablename.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the majors pgferry is tested on (tests/matrix/run): 13 to 18 */
#define MIN_PG_VERSION 130000
#define MAX_PG_VERSION 189999
#define MIN_CH_VERSION 18016000L

static errclass_t
check_table(PGconn *c, const Pgferry__State__TableSpec *t, char *err, size_t errlen)
{
    char shown[300];
    tablename_format(t->schema[0] ? t->schema : "public", t->name, shown, sizeof(shown));
    const char *params[] = {t->schema[0] ? t->schema : "public", t->name};
    errclass_t cls;
    PGresult *r = pgconn_query(
        c,
        "SELECT c.relkind, c.relreplident, "
        " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
        " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident), "
        " has_table_privilege(c.oid, 'SELECT'), c.relispartition "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2",
        2, params, &cls, err, errlen);
    if (!r)
        return cls;
    if (PQntuples(r) == 0) {
        snprintf(err, errlen, "table %s does not exist on the source", shown);
        PQclear(r);
        return ERRCLASS_FATAL;
    }
    char kind = PQgetvalue(r, 0, 0)[0], ident = PQgetvalue(r, 0, 1)[0];
    bool has_pk = PQgetvalue(r, 0, 2)[0] == 't', has_ri = PQgetvalue(r, 0, 3)[0] == 't';
    bool can_select = PQgetvalue(r, 0, 4)[0] == 't', is_part = PQgetvalue(r, 0, 5)[0] == 't';
    PQclear(r);
    if (kind != 'r' && kind != 'p') {
        const char *what = kind == 'v'   ? "a view"
                           : kind == 'm' ? "a materialized view"
                           : kind == 'f' ? "a foreign table"
                                         : "not a table";
        snprintf(err, errlen, "%s is %s; only tables can be replicated", shown, what);
        return ERRCLASS_FATAL;
    }
    if (is_part) {
        snprintf(err, errlen, "%s is a partition; name its partitioned (root) table instead",
                 shown);
        return ERRCLASS_FATAL;
    }
    if (!can_select) {
        snprintf(err, errlen,
                 "permission denied: the source user cannot SELECT from %s; "
                 "GRANT SELECT ON %s TO the pipe's user",
                 shown, shown);
        return ERRCLASS_FATAL;
    }
    if (ident == 'n') {
        snprintf(err, errlen,
                 "table %s has REPLICA IDENTITY NOTHING, so updates and deletes cannot be "
                 "replicated; set REPLICA IDENTITY DEFAULT (with a primary key) or USING INDEX",
                 shown);
        return ERRCLASS_FATAL;
    }
    if (!has_pk && !(ident == 'i' && has_ri)) {
        snprintf(err, errlen,
                 "table %s has no primary key; add one or set REPLICA IDENTITY USING INDEX", shown);
        return ERRCLASS_FATAL;
    }
    return ERRCLASS_NONE;
}

static errclass_t
check_source(const Pgferry__State__PipeSpec *spec, worker_t *w, provision_result_t *out, char *err,
             size_t errlen)
{
    errclass_t cls;
    PGconn *c = pgconn_connect(spec->source, "pgferry-provision", false, &cls, err, errlen);
    if (!c)
        return cls;
    PGresult *r = pgconn_query(
        c,
        "SELECT current_setting('server_version_num')::int, current_setting('server_version'), "
        " current_setting('wal_level'), "
        " (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), "
        " current_setting('max_replication_slots')::int - "
        "   (SELECT count(*) FROM pg_replication_slots)::int, "
        " current_database()",
        0, NULL, &cls, err, errlen);
    if (!r)
        goto done;
    int vnum = atoi(PQgetvalue(r, 0, 0));
    snprintf(out->source_version, sizeof(out->source_version), "PostgreSQL %s",
             PQgetvalue(r, 0, 1));
    char wal_level[32];
    snprintf(wal_level, sizeof(wal_level), "%s", PQgetvalue(r, 0, 2));
    bool can_replicate = PQgetvalue(r, 0, 3)[0] == 't';
    int free_slots = atoi(PQgetvalue(r, 0, 4));
    char dbname[128];
    snprintf(dbname, sizeof(dbname), "%s", PQgetvalue(r, 0, 5));
    PQclear(r);
    cls = ERRCLASS_FATAL;
    if (vnum < MIN_PG_VERSION || vnum > MAX_PG_VERSION) {
        snprintf(err, errlen,
                 "the source runs %s; pgferry supports PostgreSQL 13 to 18 (the "
                 "versions it is tested on)",
                 out->source_version);
        goto done;
    }
    if (strcmp(wal_level, "logical") != 0) {
        snprintf(err, errlen,
                 "wal_level is '%s' on the source; set wal_level = logical and restart "
                 "PostgreSQL",
                 wal_level);
        goto done;
    }
    if (!can_replicate) {
        snprintf(err, errlen,
                 "the source user may not replicate; ALTER ROLE ... WITH REPLICATION (or use a "
                 "superuser)");
        goto done;
    }
    for (size_t i = 0; i < spec->n_tables; i++) {
        cls = check_table(c, spec->tables[i], err, errlen);
        if (cls != ERRCLASS_NONE)
            goto done;
    }
    if (w)
        worker_send_progress(w, 0, 0, NULL, "source tables checked");

    /* slot and publication named by the operator must exist; ours must not exist yet */
    if (spec->mode != PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY) {
        const char *sp[] = {spec->slot};
        r = pgconn_query(c,
                         "SELECT plugin, slot_type, database FROM pg_replication_slots "
                         "WHERE slot_name = $1",
                         1, sp, &cls, err, errlen);
        if (!r)
            goto done;
        bool exists = PQntuples(r) > 0;
        bool usable = exists && strcmp(PQgetvalue(r, 0, 0), "pgoutput") == 0 &&
                      strcmp(PQgetvalue(r, 0, 1), "logical") == 0 &&
                      strcmp(PQgetvalue(r, 0, 2), dbname) == 0;
        PQclear(r);
        cls = ERRCLASS_FATAL;
        if (spec->slot_owned && exists) {
            snprintf(err, errlen,
                     "replication slot %s already exists on the source; drop it "
                     "(SELECT pg_drop_replication_slot('%s')) or name it with --slot to reuse it",
                     spec->slot, spec->slot);
            goto done;
        }
        if (!spec->slot_owned && !usable) {
            snprintf(err, errlen,
                     exists ? "replication slot %s is not a pgoutput logical slot of database "
                              "%s"
                            : "replication slot %s does not exist in database %s",
                     spec->slot, dbname);
            goto done;
        }
        if (spec->slot_owned && free_slots <= 0) {
            snprintf(err, errlen,
                     "no free replication slot on the source; raise max_replication_slots or "
                     "drop an unused slot");
            goto done;
        }
        const char *pp[] = {spec->publication};
        r = pgconn_query(c, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1, pp, &cls, err,
                         errlen);
        if (!r)
            goto done;
        exists = PQntuples(r) > 0;
        PQclear(r);
        cls = ERRCLASS_FATAL;
        if (spec->publication_owned && exists) {
            snprintf(err, errlen,
                     "publication %s already exists on the source; drop it or name it with "
                     "--publication to reuse it",
                     spec->publication);
            goto done;
        }
        if (!spec->publication_owned && !exists) {
            snprintf(err, errlen, "publication %s does not exist on the source", spec->publication);
            goto done;
        }
    }
    PQfinish(c);
    c = NULL;

    /* a replication connection: pg_hba.conf must allow it */
    c = pgconn_connect(spec->source, "pgferry-provision", true, &cls, err, errlen);
    if (!c) {
        if (cls == ERRCLASS_FATAL) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l,
                     " (replication connection: pg_hba.conf needs a 'replication' entry)");
        }
        return cls;
    }
    r = PQexec(c, "IDENTIFY_SYSTEM");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        cls = pgconn_classify(r, c);
        snprintf(err, errlen, "IDENTIFY_SYSTEM on a replication connection failed: %s",
                 PQerrorMessage(c));
        PQclear(r);
        goto done;
    }
    PQclear(r);
    cls = ERRCLASS_NONE;
done:
    if (c)
        PQfinish(c);
    return cls;
}

/* first line of a query's output, or "" */
static errclass_t
query_line(ch_client_t *ch, const char *sql, char *line, size_t linelen, char *err, size_t errlen)
{
    char *out = NULL;
    errclass_t cls = ch_client_query(ch, sql, &out, err, errlen);
    if (cls == ERRCLASS_NONE)
        snprintf(line, linelen, "%.*s", (int)strcspn(out ? out : "", "\n"), out ? out : "");
    free(out);
    return cls;
}

/* A cluster destination: on every endpoint, the cluster is defined (one shard for the
 * replicated layout), the {shard} and {replica} macros are, and ZooKeeper is configured and
 * answers; every node of the cluster answers the first endpoint. Errors name what is missing
 * and where. */
static errclass_t
check_cluster(const Pgferry__State__PipeSpec *spec, ch_client_t *ch, char *err, size_t errlen)
{
    char qc[450], sql[1200], line[1200];
    chsql_string(spec->cluster, qc, sizeof(qc));
    bool sharded = strcmp(spec->cluster_layout, "sharded") == 0;
    errclass_t cls = ERRCLASS_NONE;
    for (size_t i = 0; i < ch_client_endpoints(ch) && cls == ERRCLASS_NONE; i++) {
        ch_client_use(ch, i, false);
        const char *ep = ch_client_endpoint(ch);
        snprintf(sql, sizeof(sql),
                 "SELECT count(), uniqExact(shard_num) FROM system.clusters WHERE cluster = %s",
                 qc);
        if ((cls = query_line(ch, sql, line, sizeof(line), err, errlen)) != ERRCLASS_NONE) {
            char why[600];
            snprintf(why, sizeof(why), "%s", err);
            snprintf(err, errlen, "ClickHouse endpoint %s does not answer: %s", ep, why);
            break;
        }
        unsigned long nodes = 0, shards = 0;
        sscanf(line, "%lu\t%lu", &nodes, &shards);
        if (nodes == 0) {
            snprintf(
                sql, sizeof(sql),
                "SELECT arrayStringConcat(groupUniqArray(cluster), ', ') FROM system.clusters");
            if (query_line(ch, sql, line, sizeof(line), err, errlen) != ERRCLASS_NONE)
                line[0] = '\0';
            snprintf(err, errlen,
                     "cluster %s is not defined in remote_servers of ClickHouse at %s (it has: "
                     "%.600s)",
                     spec->cluster, ep, line[0] ? line : "none");
            return ERRCLASS_FATAL;
        }
        if (!sharded && shards > 1) {
            snprintf(err, errlen,
                     "cluster %s has %lu shards; the replicated layout keeps all rows on every "
                     "node and needs one shard (--cluster-layout sharded for more)",
                     spec->cluster, shards);
            return ERRCLASS_FATAL;
        }
        const char *macros[] = {"shard", "replica"};
        for (size_t m = 0; m < 2; m++) {
            snprintf(sql, sizeof(sql), "SELECT count() FROM system.macros WHERE macro = '%s'",
                     macros[m]);
            if ((cls = query_line(ch, sql, line, sizeof(line), err, errlen)) != ERRCLASS_NONE)
                break;
            if (atoi(line) == 0) {
                snprintf(err, errlen,
                         "ClickHouse at %s defines no {%s} macro (<macros> in its config); "
                         "replicated tables of cluster %s need {shard} and {replica}",
                         ep, macros[m], spec->cluster);
                return ERRCLASS_FATAL;
            }
        }
        if (cls != ERRCLASS_NONE)
            break;
        cls = query_line(ch, "SELECT count() FROM system.zookeeper WHERE path = '/'", line,
                         sizeof(line), err, errlen);
        if (cls != ERRCLASS_NONE) {
            int code = ch_error_code(err);
            char why[600];
            snprintf(why, sizeof(why), "%s", err);
            if (code == 225 || strstr(why, "no ZooKeeper") || strstr(why, "No ZooKeeper")) {
                snprintf(err, errlen,
                         "ZooKeeper is not configured on ClickHouse at %s (<zookeeper> in its "
                         "config); replicated tables need it",
                         ep);
                return ERRCLASS_FATAL;
            }
            snprintf(err, errlen, "ZooKeeper of ClickHouse at %s does not answer: %s", ep, why);
            break;
        }
    }
    if (cls != ERRCLASS_NONE)
        return cls;
    /* every node of the cluster, as the first endpoint reaches it */
    ch_client_use(ch, 0, false);
    char *nodes = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT host_name, port FROM system.clusters WHERE cluster = %s FORMAT TabSeparated",
             qc);
    if ((cls = ch_client_query(ch, sql, &nodes, err, errlen)) != ERRCLASS_NONE)
        return cls;
    for (char *p = nodes; p && *p && cls == ERRCLASS_NONE;) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        char host[300];
        unsigned port = 0;
        if (sscanf(p, "%299[^\t]\t%u", host, &port) == 2) {
            cls = ch_client_probe_remote(ch, host, port, err, errlen);
            if (cls != ERRCLASS_NONE) {
                char why[600];
                snprintf(why, sizeof(why), "%s", err);
                snprintf(err, errlen,
                         "node %s:%u of cluster %s does not answer (asked from %s): %s", host, port,
                         spec->cluster, ch_client_endpoint(ch), why);
            }
        }
        p = eol ? eol + 1 : NULL;
    }
    free(nodes);
    ch_client_use(ch, 0, true);
    return cls;
}

static errclass_t
check_dest(const Pgferry__State__PipeSpec *spec, provision_result_t *out, char *err, size_t errlen)
{
    ch_client_t *ch = worker_dest_client(spec, err, errlen);
    if (!ch)
        return ERRCLASS_FATAL;
    errclass_t cls;
    char *v = ch_client_version(ch, &cls, err, errlen);
    if (v && spec->cluster[0]) {
        cls = check_cluster(spec, ch, err, errlen);
        if (cls != ERRCLASS_NONE) {
            free(v);
            v = NULL;
        }
    }
    ch_client_destroy(&ch);
    if (!v)
        return cls;
    snprintf(out->dest_version, sizeof(out->dest_version), "ClickHouse %s", v);
    long num = ch_version_number(v);
    free(v);
    if (num < MIN_CH_VERSION) {
        snprintf(err, errlen, "the destination runs %s; pgferry needs ClickHouse 18.16 or newer",
                 out->dest_version);
        return ERRCLASS_FATAL;
    }
    return ERRCLASS_NONE;
}

errclass_t
provision_run(const Pgferry__State__PipeSpec *spec, worker_t *w, provision_result_t *out, char *err,
              size_t errlen)
{
    memset(out, 0, sizeof(*out));
    errclass_t cls = check_source(spec, w, out, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    if (w && worker_should_stop(w)) {
        snprintf(err, errlen, "stopped");
        return ERRCLASS_TRANSIENT;
    }
    cls = check_dest(spec, out, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    snprintf(out->detail, sizeof(out->detail), "%s, %s, %zu table(s)", out->source_version,
             out->dest_version, spec->n_tables);
    return ERRCLASS_NONE;
}
