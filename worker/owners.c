/* owners: the registry of destination tables' owners in ClickHouse (see owners.h). */
#include "owners.h"
#include "buf.h"
#include "chsql.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static char me_pipe[256];
static char me_state[64];

void
owners_set_identity(const char *pipe, const char *state_id)
{
    snprintf(me_pipe, sizeof(me_pipe), "%s", pipe ? pipe : "");
    snprintf(me_state, sizeof(me_state), "%s", state_id ? state_id : "");
}

size_t
owners_family(const chcluster_t *cl, const char *target, char (*names)[300], size_t max)
{
    /* every name setup.c, snapshot.c, schema.c and teardown.c derive from a target */
    static const char *const suffixes[] = {"",
                                           "_live",
                                           "_resync",
                                           "_pgferry_old",
                                           "_live_pgferry_new",
                                           "_live_pgferry_old",
                                           "_pgferry_dnew",
                                           "_pgferry_dold"};
    /* the sharded layout's data tables of the names that hold rows */
    static const char *const data[] = {"", "_resync", "_pgferry_old"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]) && n < max; i++)
        snprintf(names[n++], sizeof(names[0]), "%s%s", target, suffixes[i]);
    for (size_t i = 0; cl->sharded && i < sizeof(data) / sizeof(data[0]) && n < max; i++)
        snprintf(names[n++], sizeof(names[0]), "%s%s" CHCLUSTER_LOCAL_SUFFIX, target, data[i]);
    return n;
}

static void
put(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* the registry exists in db (created once per process and database) */
static errclass_t
ensure_registry(ch_client_t *ch, const chcluster_t *cl, const char *db, char *err, size_t errlen)
{
    static char ready[256];
    if (strcmp(ready, db) == 0)
        return ERRCLASS_NONE;
    char qdb[300], lit[300], sql[1400], *body = NULL;
    chsql_ident(db, qdb, sizeof(qdb));
    chsql_string(db, lit, sizeof(lit));
    snprintf(sql, sizeof(sql),
             "SELECT count() FROM system.tables WHERE database = %s AND name = '" OWNERS_TABLE "'",
             lit);
    errclass_t cls = ch_client_query(ch, sql, &body, err, errlen);
    bool exists = cls == ERRCLASS_NONE && body && atoi(body) > 0;
    free(body);
    if (cls != ERRCLASS_NONE)
        return cls;
    if (!exists) {
        snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS %s%s", qdb, cl->on);
        cls = ch_client_query(ch, sql, NULL, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
        char engine[200];
        if (chcluster_on(cl)) {
            /* one registry for every node of the cluster, all shards: no {shard} in the path
             * (the servers' {replica} macros differ across shards); its own uid, since a
             * database created again must not meet the old registry's ZooKeeper data */
            uint64_t uid = 0;
            if (getrandom(&uid, sizeof(uid), 0) != (ssize_t)sizeof(uid))
                uid = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
            snprintf(engine, sizeof(engine),
                     "ReplicatedReplacingMergeTree('/clickhouse/pgferry_owners/%016llx', "
                     "'{replica}', version)",
                     (unsigned long long)uid);
        } else {
            snprintf(engine, sizeof(engine), "ReplacingMergeTree(version)");
        }
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS %s.`" OWNERS_TABLE "`%s (name String, pipe String, "
                 "state_id String, claimed DateTime, version UInt64, released UInt8) ENGINE = %s "
                 "ORDER BY (name, pipe, state_id)",
                 qdb, cl->on, engine);
        cls = ch_client_query(ch, sql, NULL, err, errlen);
        if (cls != ERRCLASS_NONE)
            return cls;
    }
    snprintf(ready, sizeof(ready), "%s", db);
    return ERRCLASS_NONE;
}

typedef struct {
    bool mine[OWNERS_MAX_NAMES];  /* a live claim of this worker's pipe */
    bool other[OWNERS_MAX_NAMES]; /* a live claim of somebody else */
    int first_other;              /* the lowest index of a name another claimant holds, or -1 */
    char owner[400];              /* that claimant */
    unsigned long long max_version;
} claims_t;

/* ['a', 'b', ...] of names into b */
static void
name_array(buf_t *b, char (*names)[300], size_t n)
{
    put(b, "[");
    for (size_t i = 0; i < n; i++) {
        char lit[620];
        chsql_string(names[i], lit, sizeof(lit));
        put(b, i ? ", " : "");
        put(b, lit);
    }
    put(b, "]");
}

/* The live claims on names (on a cluster after the replica read from fetched every claim the
 * replication log holds). */
static errclass_t
read_claims(ch_client_t *ch, const chcluster_t *cl, const char *db, char (*names)[300], size_t n,
            claims_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->first_other = -1;
    char qdb[300];
    chsql_ident(db, qdb, sizeof(qdb));
    buf_t b;
    buf_init(&b);
    errclass_t cls;
    if (chcluster_on(cl)) {
        put(&b, "SYSTEM SYNC REPLICA ");
        put(&b, qdb);
        put(&b, ".`" OWNERS_TABLE "`");
        buf_byte(&b, '\0');
        cls = b.oom ? ERRCLASS_TRANSIENT : ch_client_query(ch, (char *)b.data, NULL, err, errlen);
        if (cls != ERRCLASS_NONE) {
            buf_free(&b);
            return cls;
        }
        buf_reset(&b);
    }
    put(&b, "SELECT indexOf(");
    name_array(&b, names, n);
    put(&b, ", name), pipe, state_id, toString(argMax(claimed, version)), argMax(released, "
            "version), max(version) FROM ");
    put(&b, qdb);
    put(&b, ".`" OWNERS_TABLE "` WHERE has(");
    name_array(&b, names, n);
    put(&b, ", name) GROUP BY name, pipe, state_id FORMAT TabSeparated");
    buf_byte(&b, '\0');
    char *body = NULL;
    if (b.oom) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
    } else {
        cls = ch_client_query(ch, (char *)b.data, &body, err, errlen);
    }
    buf_free(&b);
    if (cls != ERRCLASS_NONE)
        return cls;
    for (char *line = body; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char *f[6] = {0};
        int nf = 0;
        for (char *p = line; nf < 6; nf++) {
            f[nf] = p;
            char *t = strchr(p, '\t');
            if (!t) {
                nf++;
                break;
            }
            *t = '\0';
            p = t + 1;
        }
        if (nf == 6) {
            long idx = strtol(f[0], NULL, 10) - 1;
            unsigned long long v = strtoull(f[5], NULL, 10);
            if (v > c->max_version)
                c->max_version = v;
            if (idx >= 0 && (size_t)idx < n && strcmp(f[4], "0") == 0) {
                if (strcmp(f[1], me_pipe) == 0 && strcmp(f[2], me_state) == 0) {
                    c->mine[idx] = true;
                } else {
                    c->other[idx] = true;
                    if (c->first_other < 0 || idx < c->first_other) {
                        c->first_other = (int)idx;
                        snprintf(c->owner, sizeof(c->owner), "pipe %s of pgferryd %s (claimed %s)",
                                 f[1], f[2], f[3]);
                    }
                }
            }
        }
        line = end ? end + 1 : NULL;
    }
    free(body);
    return ERRCLASS_NONE;
}

/* Inserts this worker's claim (released = 0) or release (1) of each names[i] with which[i]. */
static errclass_t
write_claims(ch_client_t *ch, const char *db, char (*names)[300], size_t n, const bool *which,
             int released, unsigned long long after, char *err, size_t errlen)
{
    /* versions grow: later than anything read, and than this process's earlier rows */
    static unsigned long long last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long v =
        (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
    if (v <= after)
        v = after + 1;
    if (v <= last)
        v = last + 1;
    last = v;
    char qdb[300], lp[300], ls[300], ver[40];
    chsql_ident(db, qdb, sizeof(qdb));
    chsql_string(me_pipe, lp, sizeof(lp));
    chsql_string(me_state, ls, sizeof(ls));
    snprintf(ver, sizeof(ver), "%llu", v);
    buf_t b;
    buf_init(&b);
    put(&b, "INSERT INTO ");
    put(&b, qdb);
    put(&b, ".`" OWNERS_TABLE "` (name, pipe, state_id, claimed, version, released) VALUES ");
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        if (!which[i])
            continue;
        char lit[620];
        chsql_string(names[i], lit, sizeof(lit));
        put(&b, rows++ ? ", (" : "(");
        put(&b, lit);
        put(&b, ", ");
        put(&b, lp);
        put(&b, ", ");
        put(&b, ls);
        put(&b, ", now(), ");
        put(&b, ver);
        put(&b, released ? ", 1)" : ", 0)");
    }
    buf_byte(&b, '\0');
    errclass_t cls = ERRCLASS_NONE;
    if (b.oom) {
        snprintf(err, errlen, "out of memory");
        cls = ERRCLASS_TRANSIENT;
    } else if (rows) {
        cls = ch_client_query(ch, (char *)b.data, NULL, err, errlen);
    }
    buf_free(&b);
    return cls;
}

/* which[i] = names[i] exists in db */
static errclass_t
existing(ch_client_t *ch, const char *db, char (*names)[300], size_t n, bool *which, char *err,
         size_t errlen)
{
    char lit[300];
    chsql_string(db, lit, sizeof(lit));
    buf_t b;
    buf_init(&b);
    put(&b, "SELECT indexOf(");
    name_array(&b, names, n);
    put(&b, ", name) FROM system.tables WHERE database = ");
    put(&b, lit);
    put(&b, " AND has(");
    name_array(&b, names, n);
    put(&b, ", name) FORMAT TabSeparated");
    buf_byte(&b, '\0');
    char *body = NULL;
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (b.oom)
        snprintf(err, errlen, "out of memory");
    else
        cls = ch_client_query(ch, (char *)b.data, &body, err, errlen);
    buf_free(&b);
    memset(which, 0, n * sizeof(*which));
    for (char *p = body; cls == ERRCLASS_NONE && p && *p;) {
        long idx = strtol(p, &p, 10) - 1;
        if (idx >= 0 && (size_t)idx < n)
            which[idx] = true;
        while (*p == '\n')
            p++;
        if (*p && (*p < '0' || *p > '9'))
            break;
    }
    free(body);
    return cls;
}

static void
refusal(const char *db, char (*names)[300], int idx, const char *target, const char *owner,
        char *err, size_t errlen)
{
    char what[700];
    if (strcmp(names[idx], target) == 0)
        snprintf(what, sizeof(what), "destination table %s.%s", db, target);
    else
        snprintf(what, sizeof(what), "destination table %s.%s (a name pgferry uses for table %s)",
                 db, names[idx], target);
    snprintf(err, errlen,
             "%s belongs to %s; give this table another name with --target schema.table=name, "
             "or use another --dest-database (a pipe dropped without --drop-destination keeps "
             "its names: create it again in its pgferryd and drop it with --drop-destination to "
             "free them)",
             what, owner);
}

errclass_t
owners_claim(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *target,
             owners_mode_t mode, char *err, size_t errlen)
{
    if (strcmp(target, OWNERS_TABLE) == 0) {
        snprintf(err, errlen,
                 "destination table %s.%s is pgferry's registry of owners; give this table "
                 "another name with --target schema.table=name",
                 db, target);
        return ERRCLASS_FATAL;
    }
    char names[OWNERS_MAX_NAMES][300];
    size_t n = owners_family(cl, target, names, OWNERS_MAX_NAMES);
    errclass_t cls = ensure_registry(ch, cl, db, err, errlen);
    claims_t c;
    if (cls == ERRCLASS_NONE)
        cls = read_claims(ch, cl, db, names, n, &c, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    if (c.first_other >= 0) {
        refusal(db, names, c.first_other, target, c.owner, err, errlen);
        return ERRCLASS_FATAL;
    }
    bool need[OWNERS_MAX_NAMES], any = false;
    for (size_t i = 0; i < n; i++)
        any |= need[i] = !c.mine[i];
    if (!any)
        return ERRCLASS_NONE;
    bool ex[OWNERS_MAX_NAMES];
    cls = existing(ch, db, names, n, ex, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    char data[300];
    chcluster_data_table(cl, target, data, sizeof(data));
    for (size_t i = 0; i < n; i++) {
        if (!need[i] || !ex[i])
            continue;
        /* the table's own names, which a pipe set up before the registry created */
        bool own = i == 0 || i == 1 || strcmp(names[i], data) == 0;
        if (mode != OWNERS_FRESH && own)
            continue;
        if (mode == OWNERS_STREAM) {
            need[i] = false;
            continue;
        }
        snprintf(err, errlen,
                 "destination table %s.%s exists and no pipe owns it (pgferry does not take over "
                 "a table it did not create); drop it, give this table another name with --target "
                 "schema.table=name, or use another --dest-database",
                 db, names[i]);
        return ERRCLASS_FATAL;
    }
    cls = write_claims(ch, db, names, n, need, 0, c.max_version, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = read_claims(ch, cl, db, names, n, &c, err, errlen);
    if (cls != ERRCLASS_NONE)
        return cls;
    if (c.first_other >= 0) {
        /* somebody claimed at the same moment: neither may go on; both withdraw and try
         * again after a jittered backoff, when one of them finds the other established */
        char owner[400];
        snprintf(owner, sizeof(owner), "%s", c.owner);
        errclass_t w = write_claims(ch, db, names, n, need, 1, c.max_version, err, errlen);
        if (w != ERRCLASS_NONE)
            log_warn("cannot withdraw the claim on %s.%s: %s", db, target, err);
        snprintf(err, errlen,
                 "destination table %s.%s was claimed at the same moment by %s; trying again", db,
                 names[c.first_other], owner);
        return ERRCLASS_TRANSIENT;
    }
    for (size_t i = 0; i < n; i++) {
        if (need[i] && !c.mine[i]) {
            snprintf(err, errlen, "the claim on destination table %s.%s did not show; trying again",
                     db, names[i]);
            return ERRCLASS_TRANSIENT;
        }
    }
    log_info("destination table %s.%s claimed for pipe %s%s", db, target, me_pipe,
             mode != OWNERS_FRESH ? " (a table the pipe had set up before)" : "");
    return ERRCLASS_NONE;
}

/* whether db has the registry (nothing to read otherwise) */
static errclass_t
has_registry(ch_client_t *ch, const char *db, bool *out, char *err, size_t errlen)
{
    char lit[300], sql[600], *body = NULL;
    chsql_string(db, lit, sizeof(lit));
    snprintf(sql, sizeof(sql),
             "SELECT count() FROM system.tables WHERE database = %s AND name = '" OWNERS_TABLE "'",
             lit);
    errclass_t cls = ch_client_query(ch, sql, &body, err, errlen);
    *out = cls == ERRCLASS_NONE && body && atoi(body) > 0;
    free(body);
    return cls;
}

errclass_t
owners_other(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *target,
             bool *other, char *owner, size_t ownerlen, char *err, size_t errlen)
{
    *other = false;
    bool reg;
    errclass_t cls = has_registry(ch, db, &reg, err, errlen);
    if (cls != ERRCLASS_NONE || !reg)
        return cls;
    char names[OWNERS_MAX_NAMES][300];
    size_t n = owners_family(cl, target, names, OWNERS_MAX_NAMES);
    claims_t c;
    cls = read_claims(ch, cl, db, names, n, &c, err, errlen);
    if (cls == ERRCLASS_NONE && c.first_other >= 0) {
        *other = true;
        snprintf(owner, ownerlen, "%s.%s belongs to %s", db, names[c.first_other], c.owner);
    }
    return cls;
}

errclass_t
owners_release(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *target,
               char *err, size_t errlen)
{
    bool reg;
    errclass_t cls = has_registry(ch, db, &reg, err, errlen);
    if (cls != ERRCLASS_NONE || !reg)
        return cls;
    char names[OWNERS_MAX_NAMES][300];
    size_t n = owners_family(cl, target, names, OWNERS_MAX_NAMES);
    claims_t c;
    cls = read_claims(ch, cl, db, names, n, &c, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = write_claims(ch, db, names, n, c.mine, 1, c.max_version, err, errlen);
    return cls;
}

errclass_t
owners_count_others(ch_client_t *ch, const char *db, long *n, char *err, size_t errlen)
{
    *n = 0;
    bool reg;
    errclass_t cls = has_registry(ch, db, &reg, err, errlen);
    if (cls != ERRCLASS_NONE || !reg)
        return cls;
    char qdb[300], lp[300], ls[300], sql[1400], *body = NULL;
    chsql_ident(db, qdb, sizeof(qdb));
    chsql_string(me_pipe, lp, sizeof(lp));
    chsql_string(me_state, ls, sizeof(ls));
    snprintf(sql, sizeof(sql),
             "SELECT count() FROM (SELECT pipe, state_id, argMax(released, version) AS r FROM "
             "%s.`" OWNERS_TABLE "` GROUP BY name, pipe, state_id) WHERE r = 0 AND NOT (pipe = "
             "%s AND state_id = %s)",
             qdb, lp, ls);
    cls = ch_client_query(ch, sql, &body, err, errlen);
    if (cls == ERRCLASS_NONE)
        *n = body ? atol(body) : 0;
    free(body);
    return cls;
}
