/* chcluster: cluster DDL pieces (see chcluster.h). */
#include "chcluster.h"
#include "chsql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool
plain_name(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    }
    return *s != '\0';
}

bool
chcluster_check(const char *cluster, const char *layout, const char *zk_path,
                uint32_t insert_quorum, char *err, size_t errlen)
{
    if (!cluster[0]) {
        if (layout[0] || zk_path[0] || insert_quorum) {
            snprintf(err, errlen, "--cluster-layout, --zk-path and --insert-quorum need --cluster");
            return false;
        }
        return true;
    }
    if (strlen(cluster) > 200 || !plain_name(cluster)) {
        snprintf(err, errlen,
                 "--cluster takes a cluster name of remote_servers (1 to 200 letters, digits, "
                 "'_', '-' or '.')");
        return false;
    }
    if (layout[0] && strcmp(layout, "replicated") != 0 && strcmp(layout, "sharded") != 0) {
        snprintf(err, errlen, "--cluster-layout is replicated or sharded");
        return false;
    }
    if (insert_quorum > 16) {
        snprintf(err, errlen, "--insert-quorum takes 0 to 16");
        return false;
    }
    if (zk_path[0]) {
        if (zk_path[0] != '/' || strlen(zk_path) > 500) {
            snprintf(err, errlen, "--zk-path must start with '/' (at most 500 bytes)");
            return false;
        }
        for (const unsigned char *p = (const unsigned char *)zk_path; *p; p++) {
            if (*p < ' ' || *p == '\'' || *p == '\\' || *p == 0x7f) {
                snprintf(err, errlen, "--zk-path holds a quote, backslash or control character");
                return false;
            }
        }
        if (!strstr(zk_path, "{uid}")) {
            snprintf(err, errlen,
                     "--zk-path must contain {uid} (each table pgferry creates, a resync's "
                     "included, needs a path of its own)");
            return false;
        }
        if (strcmp(layout, "sharded") == 0 && !strstr(zk_path, "{shard}")) {
            snprintf(err, errlen, "--zk-path of a sharded layout must contain {shard}");
            return false;
        }
    }
    return true;
}

void
chcluster_init(chcluster_t *cl, const char *cluster, const char *layout, const char *zk_path)
{
    memset(cl, 0, sizeof(*cl));
    snprintf(cl->name, sizeof(cl->name), "%s", cluster ? cluster : "");
    cl->sharded = cl->name[0] && layout && strcmp(layout, "sharded") == 0;
    snprintf(cl->zk_path, sizeof(cl->zk_path), "%s",
             zk_path && zk_path[0] ? zk_path : CHCLUSTER_DEFAULT_ZK_PATH);
    if (cl->name[0]) {
        char q[210];
        chsql_string(cl->name, q, sizeof(q));
        snprintf(cl->on, sizeof(cl->on), " ON CLUSTER %s", q);
    }
}

void
chcluster_data_table(const chcluster_t *cl, const char *target, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s", target, cl->sharded ? CHCLUSTER_LOCAL_SUFFIX : "");
}

/* appends s to out[*len..] (always terminated, cut at outlen) */
static void
add(char *out, size_t outlen, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + 1 >= outlen)
        return;
    if (n > outlen - 1 - *len)
        n = outlen - 1 - *len;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

void
chcluster_engine(const chcluster_t *cl, const char *db, const char *table, const char *version_col,
                 char *out, size_t outlen)
{
    if (!cl->name[0]) {
        snprintf(out, outlen, "ReplacingMergeTree(%s)", version_col);
        return;
    }
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long uid = ((unsigned long long)ts.tv_sec << 32) ^
                             ((unsigned long long)ts.tv_nsec << 8) ^
                             ((unsigned long long)getpid() << 40) ^ (++counter * 0x9e3779b9ULL);
    char uidtxt[20], path[1600];
    snprintf(uidtxt, sizeof(uidtxt), "%016llx", uid);
    size_t len = 0;
    path[0] = '\0';
    for (const char *p = cl->zk_path; *p;) {
        if (strncmp(p, "{database}", 10) == 0) {
            add(path, sizeof(path), &len, db);
            p += 10;
        } else if (strncmp(p, "{table}", 7) == 0) {
            add(path, sizeof(path), &len, table);
            p += 7;
        } else if (strncmp(p, "{uid}", 5) == 0) {
            add(path, sizeof(path), &len, uidtxt);
            p += 5;
        } else {
            char c[2] = {*p++, '\0'};
            add(path, sizeof(path), &len, c);
        }
    }
    char qpath[3300];
    chsql_string(path, qpath, sizeof(qpath));
    snprintf(out, outlen, "ReplicatedReplacingMergeTree(%s, '{replica}', %s)", qpath, version_col);
}

void
chcluster_distributed_engine(const chcluster_t *cl, const char *db, const char *local,
                             const char *const *keys, size_t n, char *out, size_t outlen)
{
    char qc[420], qd[600], ql[600];
    chsql_string(cl->name, qc, sizeof(qc));
    chsql_string(db, qd, sizeof(qd));
    chsql_string(local, ql, sizeof(ql));
    size_t len = 0;
    out[0] = '\0';
    add(out, outlen, &len, "Distributed(");
    add(out, outlen, &len, qc);
    add(out, outlen, &len, ", ");
    add(out, outlen, &len, qd);
    add(out, outlen, &len, ", ");
    add(out, outlen, &len, ql);
    add(out, outlen, &len, ", cityHash64(");
    for (size_t i = 0; i < n; i++) {
        add(out, outlen, &len, i ? ", toString(" : "toString(");
        add(out, outlen, &len, keys[i]);
        add(out, outlen, &len, ")");
    }
    add(out, outlen, &len, "))");
}
