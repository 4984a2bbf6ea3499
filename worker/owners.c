/* owners: the registry of destination tables' owners in ClickHouse (see owners.h). */
#include "owners.h"

#include "chnames.h"
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
    /* the names create's checks keep apart (common/chnames.c), so the two never disagree */
    char derived[CHNAMES_MAX_DERIVED][CHNAMES_NAME_MAX];
    size_t nd = chnames_derived(target, cl->sharded, derived), n = 0;
    for (size_t i = 0; i < nd && n < max; i++, n++) {
        size_t l = strnlen(derived[i], sizeof(names[0]) - 1);
        memcpy(names[n], derived[i], l);
        names[n][l] = '\0';
    }
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

/* a round of queries covers targets while their names take at most this many bytes: a SELECT
 * lists them twice and stays well below ClickHouse's max_query_size (256 KiB) */
#define OWNERS_ROUND_BYTES 90000
#define OWNERS_ROUND_MAX 1000

/* the names of some targets' families, and what was found about each */
typedef struct {
    char (*names)[300];
    size_t n;
    size_t *tgt;        /* names[i] is a name of targets[tgt[i]] */
    bool *own;          /* the table's own name (the table, its view, its data table) */
    bool *mine;         /* a live claim of this worker's pipe */
    bool *need;         /* to be claimed */
    bool *ex;           /* exists in ClickHouse */
    char (*tdesc)[400]; /* per target: "name belongs to <claimant>", or "" */
    int first_other;    /* the lowest index of a name another claimant holds, or -1 */
    char owner[400];    /* that claimant */
    unsigned long long max_version;
} nameset_t;

static void
nameset_free(nameset_t *ns)
{
    free(ns->names);
    free(ns->tgt);
    free(ns->own);
    free(ns->mine);
    free(ns->need);
    free(ns->ex);
    free(ns->tdesc);
    memset(ns, 0, sizeof(*ns));
}

/* the families of targets[0..n) */
static bool
nameset_init(nameset_t *ns, const chcluster_t *cl, const char *const *targets, size_t n)
{
    memset(ns, 0, sizeof(*ns));
    size_t cap = n * OWNERS_MAX_NAMES + 1;
    ns->names = calloc(cap, sizeof(*ns->names));
    ns->tgt = calloc(cap, sizeof(*ns->tgt));
    ns->own = calloc(cap, sizeof(bool));
    ns->mine = calloc(cap, sizeof(bool));
    ns->need = calloc(cap, sizeof(bool));
    ns->ex = calloc(cap, sizeof(bool));
    ns->tdesc = calloc(n + 1, sizeof(*ns->tdesc));
    if (!ns->names || !ns->tgt || !ns->own || !ns->mine || !ns->need || !ns->ex || !ns->tdesc) {
        nameset_free(ns);
        return false;
    }
    for (size_t t = 0; t < n; t++) {
        char data[300];
        chcluster_data_table(cl, targets[t], data, sizeof(data));
        size_t k = owners_family(cl, targets[t], ns->names + ns->n, OWNERS_MAX_NAMES);
        for (size_t i = 0; i < k; i++) {
            ns->tgt[ns->n + i] = t;
            ns->own[ns->n + i] = i == 0 || i == 1 || strcmp(ns->names[ns->n + i], data) == 0;
        }
        ns->n += k;
    }
    return true;
}

/* ['a', 'b', ...] of names into b ("(...)" with paren) */
static void
name_array(buf_t *b, char (*names)[300], size_t n, bool paren)
{
    put(b, paren ? "(" : "[");
    for (size_t i = 0; i < n; i++) {
        char lit[620];
        chsql_string(names[i], lit, sizeof(lit));
        put(b, i ? ", " : "");
        put(b, lit);
    }
    put(b, paren ? ")" : "]");
}

/* The live claims on the names (on a cluster after the replica read from fetched every claim
 * the replication log holds). */
static errclass_t
read_claims(ch_client_t *ch, const chcluster_t *cl, const char *db, nameset_t *c, char *err,
            size_t errlen)
{
    memset(c->mine, 0, c->n * sizeof(bool));
    for (size_t i = 0; i < c->n; i++)
        c->tdesc[c->tgt[i]][0] = '\0';
    c->first_other = -1;
    c->owner[0] = '\0';
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
    name_array(&b, c->names, c->n, false);
    put(&b, ", name), pipe, state_id, toString(argMax(claimed, version)), argMax(released, "
            "version), max(version) FROM ");
    put(&b, qdb);
    put(&b, ".`" OWNERS_TABLE "` WHERE name IN ");
    name_array(&b, c->names, c->n, true);
    put(&b, " GROUP BY name, pipe, state_id FORMAT TabSeparated");
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
            if (idx >= 0 && (size_t)idx < c->n && strcmp(f[4], "0") == 0) {
                if (strcmp(f[1], me_pipe) == 0 && strcmp(f[2], me_state) == 0) {
                    c->mine[idx] = true;
                } else {
                    char who[400];
                    snprintf(who, sizeof(who), "pipe %s of pgferryd %s (claimed %s)", f[1], f[2],
                             f[3]);
                    if (c->first_other < 0 || idx < c->first_other) {
                        c->first_other = (int)idx;
                        snprintf(c->owner, sizeof(c->owner), "%s", who);
                    }
                    char *d = c->tdesc[c->tgt[idx]];
                    if (!d[0])
                        snprintf(d, sizeof(c->tdesc[0]), "%.100s belongs to %.280s", c->names[idx],
                                 who);
                }
            }
        }
        line = end ? end + 1 : NULL;
    }
    free(body);
    return ERRCLASS_NONE;
}

/* Inserts this worker's claim (released = 0) or release (1) of each name with which[i]. */
static errclass_t
write_claims(ch_client_t *ch, const char *db, const nameset_t *c, const bool *which, int released,
             char *err, size_t errlen)
{
    /* versions grow: later than anything read, and than this process's earlier rows */
    static unsigned long long last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long v =
        (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
    if (v <= c->max_version)
        v = c->max_version + 1;
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
    for (size_t i = 0; i < c->n; i++) {
        if (!which[i])
            continue;
        char lit[620];
        chsql_string(c->names[i], lit, sizeof(lit));
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

/* c->ex[i] = the name exists in db */
static errclass_t
existing(ch_client_t *ch, const char *db, nameset_t *c, char *err, size_t errlen)
{
    char lit[300];
    chsql_string(db, lit, sizeof(lit));
    buf_t b;
    buf_init(&b);
    put(&b, "SELECT indexOf(");
    name_array(&b, c->names, c->n, false);
    put(&b, ", name) FROM system.tables WHERE database = ");
    put(&b, lit);
    put(&b, " AND name IN ");
    name_array(&b, c->names, c->n, true);
    put(&b, " FORMAT TabSeparated");
    buf_byte(&b, '\0');
    char *body = NULL;
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (b.oom)
        snprintf(err, errlen, "out of memory");
    else
        cls = ch_client_query(ch, (char *)b.data, &body, err, errlen);
    buf_free(&b);
    memset(c->ex, 0, c->n * sizeof(bool));
    for (char *p = body; cls == ERRCLASS_NONE && p && *p;) {
        long idx = strtol(p, &p, 10) - 1;
        if (idx >= 0 && (size_t)idx < c->n)
            c->ex[idx] = true;
        while (*p == '\n')
            p++;
        if (*p && (*p < '0' || *p > '9'))
            break;
    }
    free(body);
    return cls;
}

static void
refusal(const char *db, const nameset_t *c, const char *target, char *err, size_t errlen)
{
    char what[700];
    const char *name = c->names[c->first_other];
    if (strcmp(name, target) == 0)
        snprintf(what, sizeof(what), "destination table %s.%s", db, target);
    else
        snprintf(what, sizeof(what), "destination table %s.%s (a name pgferry uses for table %s)",
                 db, name, target);
    snprintf(err, errlen,
             "%s belongs to %s; give this table another name with --target schema.table=name, "
             "or use another --dest-database (a pipe dropped without --drop-destination keeps "
             "its names: create it again in its pgferryd and drop it with --drop-destination to "
             "free them)",
             what, c->owner);
}

/* how many of targets[0..n) one round of queries covers (at least one) */
static size_t
round_size(const char *const *targets, size_t n)
{
    size_t k = 0, bytes = 0;
    while (k < n && k < OWNERS_ROUND_MAX) {
        bytes += OWNERS_MAX_NAMES * (2 * strlen(targets[k]) + 32);
        if (k && bytes > OWNERS_ROUND_BYTES)
            break;
        k++;
    }
    return k ? k : 1;
}

/* One round of claims for targets[0..n). */
static errclass_t
claim_chunk(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *const *targets,
            const owners_mode_t *modes, size_t n, char *err, size_t errlen)
{
    nameset_t c;
    if (!nameset_init(&c, cl, targets, n)) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    errclass_t cls = read_claims(ch, cl, db, &c, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    /* a name this pipe holds and another claimant too: a newcomer between its insert and its
     * withdrawal (it finds this claim on its second read and withdraws), so it is read again
     * for a while before it counts; two established claims of one name never happen */
    for (int again = 0; c.first_other >= 0 && c.mine[c.first_other] && again < 10; again++) {
        struct timespec pause = {0, 200L * 1000 * 1000};
        nanosleep(&pause, NULL);
        cls = read_claims(ch, cl, db, &c, err, errlen);
        if (cls != ERRCLASS_NONE)
            goto out;
    }
    if (c.first_other >= 0) {
        refusal(db, &c, targets[c.tgt[c.first_other]], err, errlen);
        cls = ERRCLASS_FATAL;
        goto out;
    }
    bool any = false;
    for (size_t i = 0; i < c.n; i++)
        any |= c.need[i] = !c.mine[i];
    if (!any)
        goto out;
    cls = existing(ch, db, &c, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    for (size_t i = 0; i < c.n; i++) {
        if (!c.need[i] || !c.ex[i])
            continue;
        owners_mode_t mode = modes[c.tgt[i]];
        /* the table's own names, which a pipe set up before the registry created */
        if (mode != OWNERS_FRESH && c.own[i])
            continue;
        if (mode == OWNERS_STREAM) {
            c.need[i] = false;
            continue;
        }
        snprintf(err, errlen,
                 "destination table %s.%s exists and no pipe owns it (pgferry does not take over "
                 "a table it did not create); drop it, give this table another name with --target "
                 "schema.table=name, or use another --dest-database",
                 db, c.names[i]);
        cls = ERRCLASS_FATAL;
        goto out;
    }
    cls = write_claims(ch, db, &c, c.need, 0, err, errlen);
    if (cls == ERRCLASS_NONE)
        cls = read_claims(ch, cl, db, &c, err, errlen);
    if (cls != ERRCLASS_NONE)
        goto out;
    if (c.first_other >= 0) {
        /* somebody claimed at the same moment: neither may go on; both withdraw and try
         * again after a jittered backoff, when one of them finds the other established */
        char owner[400];
        snprintf(owner, sizeof(owner), "%s", c.owner);
        int idx = c.first_other;
        if (write_claims(ch, db, &c, c.need, 1, err, errlen) != ERRCLASS_NONE)
            log_warn("cannot withdraw claims in %s: %s", db, err);
        snprintf(err, errlen,
                 "destination table %s.%s was claimed at the same moment by %s; trying again", db,
                 c.names[idx], owner);
        cls = ERRCLASS_TRANSIENT;
        goto out;
    }
    for (size_t i = 0; i < c.n; i++) {
        if (c.need[i] && !c.mine[i]) {
            snprintf(err, errlen, "the claim on destination table %s.%s did not show; trying again",
                     db, c.names[i]);
            cls = ERRCLASS_TRANSIENT;
            goto out;
        }
    }
    for (size_t t = 0; t < n; t++)
        log_debug("destination table %s.%s claimed for pipe %s", db, targets[t], me_pipe);
out:
    nameset_free(&c);
    return cls;
}

errclass_t
owners_claim_many(ch_client_t *ch, const chcluster_t *cl, const char *db,
                  const char *const *targets, const owners_mode_t *modes, size_t n, char *err,
                  size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(targets[i], OWNERS_TABLE) == 0) {
            snprintf(err, errlen,
                     "destination table %s.%s is pgferry's registry of owners; give this table "
                     "another name with --target schema.table=name",
                     db, targets[i]);
            return ERRCLASS_FATAL;
        }
    }
    errclass_t cls = n ? ensure_registry(ch, cl, db, err, errlen) : ERRCLASS_NONE;
    for (size_t i = 0, k; i < n && cls == ERRCLASS_NONE; i += k) {
        k = round_size(targets + i, n - i);
        cls = claim_chunk(ch, cl, db, targets + i, modes + i, k, err, errlen);
    }
    return cls;
}

errclass_t
owners_claim(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *target,
             owners_mode_t mode, char *err, size_t errlen)
{
    const char *t[] = {target};
    owners_mode_t m[] = {mode};
    return owners_claim_many(ch, cl, db, t, m, 1, err, errlen);
}

errclass_t
owners_claim_defs(ch_client_t *ch, const chcluster_t *cl, const char *db,
                  Pgferry__State__TableDef *const *defs, size_t n, owners_mode_t mode,
                  const bool *kept, char *err, size_t errlen)
{
    const char **t = calloc(n + 1, sizeof(*t));
    owners_mode_t *m = calloc(n + 1, sizeof(*m));
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (!t || !m) {
        snprintf(err, errlen, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            t[i] = defs[i]->target;
            m[i] = kept && kept[i] ? OWNERS_STREAM : mode;
        }
        cls = owners_claim_many(ch, cl, db, t, m, n, err, errlen);
    }
    free(t);
    free(m);
    return cls;
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

/* calls fn for each round of the families of defs' targets, with its claims read */
static errclass_t
each_round(ch_client_t *ch, const chcluster_t *cl, const char *db,
           Pgferry__State__TableDef *const *defs, size_t n,
           errclass_t (*fn)(ch_client_t *, const char *, nameset_t *, size_t, void *, char *,
                            size_t),
           void *ud, char *err, size_t errlen)
{
    bool reg;
    errclass_t cls = n ? has_registry(ch, db, &reg, err, errlen) : ERRCLASS_NONE;
    if (cls != ERRCLASS_NONE || !n || !reg)
        return cls;
    const char **t = calloc(n, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    for (size_t i = 0; i < n; i++)
        t[i] = defs[i]->target;
    for (size_t i = 0, k; i < n && cls == ERRCLASS_NONE; i += k) {
        k = round_size(t + i, n - i);
        nameset_t c;
        if (!nameset_init(&c, cl, t + i, k)) {
            snprintf(err, errlen, "out of memory");
            cls = ERRCLASS_TRANSIENT;
            break;
        }
        cls = read_claims(ch, cl, db, &c, err, errlen);
        if (cls == ERRCLASS_NONE)
            cls = fn(ch, db, &c, i, ud, err, errlen);
        nameset_free(&c);
    }
    free(t);
    return cls;
}

static errclass_t
note_others(ch_client_t *ch, const char *db, nameset_t *c, size_t first, void *ud, char *err,
            size_t errlen)
{
    (void)ch;
    (void)err;
    (void)errlen;
    char(*desc)[600] = ud;
    size_t nt = c->n ? c->tgt[c->n - 1] + 1 : 0;
    for (size_t t = 0; t < nt; t++) {
        if (c->tdesc[t][0])
            snprintf(desc[first + t], sizeof(desc[0]), "%.180s.%s", db, c->tdesc[t]);
    }
    return ERRCLASS_NONE;
}

errclass_t
owners_others_defs(ch_client_t *ch, const chcluster_t *cl, const char *db,
                   Pgferry__State__TableDef *const *defs, size_t n, char (*desc)[600], char *err,
                   size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        desc[i][0] = '\0';
    return each_round(ch, cl, db, defs, n, note_others, desc, err, errlen);
}

static errclass_t
release_mine(ch_client_t *ch, const char *db, nameset_t *c, size_t first, void *ud, char *err,
             size_t errlen)
{
    const bool *skip = ud;
    for (size_t i = 0; skip && i < c->n; i++) {
        if (skip[first + c->tgt[i]])
            c->mine[i] = false;
    }
    return write_claims(ch, db, c, c->mine, 1, err, errlen);
}

errclass_t
owners_release_defs(ch_client_t *ch, const chcluster_t *cl, const char *db,
                    Pgferry__State__TableDef *const *defs, size_t n, const bool *skip, char *err,
                    size_t errlen)
{
    return each_round(ch, cl, db, defs, n, release_mine, (void *)skip, err, errlen);
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
