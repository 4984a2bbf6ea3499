/* teardown: slot, publication and destination removal for a dropped pipe. */
#include "teardown.h"
#include "owners.h"
#include "chclient.h"
#include "chsql.h"
#include "log.h"
#include "pgconn.h"
#include "setup.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
add(char *report, size_t len, const char *sentence)
{
    size_t l = strlen(report);
    snprintf(report + l, len - l, "%s%s", l ? "; " : "", sentence);
}

/* Drops the slot, waiting briefly for a walsender of a just-stopped worker to let go. */
static bool
drop_slot(PGconn *pg, const char *slot, char *report, size_t len)
{
    char s[700], err[512];
    const char *p[] = {slot};
    errclass_t cls;
    for (int attempt = 0; attempt < 100; attempt++) {
        PGresult *r =
            pgconn_query(pg, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", 1, p,
                         &cls, err, sizeof(err));
        if (!r)
            break;
        bool exists = PQntuples(r) == 1, active = exists && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (!exists) {
            add(report, len, "no replication slot to drop");
            return true;
        }
        if (active && attempt == 20) {
            /* still held after 2 s: a session of the pipe's own that outlived its worker (a
             * walsender not yet noticing, a slot creation waiting for old transactions); the
             * slot is the pipe's and the pipe is going, so its holder goes */
            PGresult *t = pgconn_query(pg,
                                       "SELECT pg_terminate_backend(active_pid) FROM "
                                       "pg_replication_slots WHERE slot_name = $1 AND "
                                       "active_pid IS NOT NULL",
                                       1, p, &cls, err, sizeof(err));
            if (t) {
                log_info("replication slot %s still in use after 2 s: its backend was "
                         "terminated",
                         slot);
                PQclear(t);
            }
        }
        if (active) {
            usleep(100 * 1000);
            continue;
        }
        r = pgconn_query(pg, "SELECT pg_drop_replication_slot($1)", 1, p, &cls, err, sizeof(err));
        if (r) {
            PQclear(r);
            snprintf(s, sizeof(s), "replication slot %s dropped", slot);
            add(report, len, s);
            return true;
        }
    }
    if (!err[0])
        snprintf(err, sizeof(err), "it stayed in use");
    snprintf(s, sizeof(s),
             "replication slot %s NOT dropped (%.300s); it holds WAL on the source: drop it with "
             "SELECT pg_drop_replication_slot('%s')",
             slot, err, slot);
    add(report, len, s);
    return false;
}

static bool
drop_publication(PGconn *pg, const char *pub, char *report, size_t len)
{
    char s[700];
    char *q = PQescapeIdentifier(pg, pub, strlen(pub));
    snprintf(s, sizeof(s), "DROP PUBLICATION IF EXISTS %s", q ? q : "\"?\"");
    PQfreemem(q);
    PGresult *r = PQexec(pg, s);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (ok)
        snprintf(s, sizeof(s), "publication %s dropped", pub);
    else
        snprintf(s, sizeof(s), "publication %s NOT dropped (%.300s)", pub, PQresultErrorMessage(r));
    PQclear(r);
    add(report, len, s);
    return ok;
}

static bool
drop_destination(const Pgferry__State__PipeSpec *spec, Pgferry__State__TableDef *const *defs,
                 size_t ndefs, bool whole, char *report, size_t len)
{
    char err[1024], s[1200], q[300];
    ch_client_t *ch = worker_dest_client(spec, err, sizeof(err));
    if (!ch) {
        snprintf(s, sizeof(s), "destination tables NOT dropped (%.900s)", err);
        add(report, len, s);
        return false;
    }
    chcluster_t cl;
    worker_cluster(spec, &cl);
    /* a DROP answers at once; a hung server is reported. ON CLUSTER waits for every node (up
     * to the servers' distributed_ddl_task_timeout, 180 s by default). */
    ch_client_set_timeout(ch, chcluster_on(&cl) ? 200000 : 20000);
    bool ok = true;
    size_t dropped = 0;
    chsql_ident(spec->dest_database, q, sizeof(q));
    /* only what this pipe owns goes, and its claims with it */
    char(*owner)[600] = calloc(ndefs + 1, sizeof(*owner));
    bool *skip = calloc(ndefs + 1, sizeof(bool));
    if (!owner || !skip) {
        add(report, len, "destination tables NOT dropped (out of memory)");
        ok = false;
    } else if (owners_others_defs(ch, &cl, spec->dest_database, defs, ndefs, owner, err,
                                  sizeof(err)) != ERRCLASS_NONE) {
        snprintf(s, sizeof(s), "destination tables NOT dropped (%.900s)", err);
        add(report, len, s);
        ok = false;
    }
    for (size_t i = 0; i < ndefs && ok; i++) {
        if (owner[i][0]) {
            snprintf(s, sizeof(s), "destination table %s.%s left alone: %s", spec->dest_database,
                     defs[i]->target, owner[i]);
            add(report, len, s);
            skip[i] = true;
            continue;
        }
        for (int view = 1; view >= 0 && ok; view--) {
            char name[300];
            snprintf(name, sizeof(name), "%s%s", defs[i]->target, view ? "_live" : "");
            if (setup_drop(ch, &cl, spec->dest_database, name, !view, err, sizeof(err)) !=
                ERRCLASS_NONE) {
                snprintf(s, sizeof(s), "destination table %s.%s NOT dropped (%.500s)",
                         spec->dest_database, name, err);
                add(report, len, s);
                ok = false;
            }
        }
        dropped += ok;
    }
    if (ok && owners_release_defs(ch, &cl, spec->dest_database, defs, ndefs, skip, err,
                                  sizeof(err)) != ERRCLASS_NONE) {
        snprintf(s, sizeof(s), "the claims on the dropped tables NOT released (%.900s)", err);
        add(report, len, s);
        ok = false;
    }
    free(owner);
    free(skip);
    if (ok) {
        snprintf(s, sizeof(s), "%zu destination table(s) and their views dropped", dropped);
        add(report, len, s);
    }
    if (ok && whole) {
        /* the database goes too once nothing else lives in it (but the registry of owners,
         * while nobody else holds a claim in it) */
        char lit[300], *out = NULL;
        long others = 0;
        chsql_string(spec->dest_database, lit, sizeof(lit));
        snprintf(s, sizeof(s),
                 "SELECT count() FROM system.tables WHERE database = %s AND name != "
                 "'" OWNERS_TABLE "'",
                 lit);
        if (owners_count_others(ch, spec->dest_database, &others, err, sizeof(err)) !=
                ERRCLASS_NONE ||
            ch_client_query(ch, s, &out, err, sizeof(err)) != ERRCLASS_NONE) {
            snprintf(s, sizeof(s), "database %s NOT dropped (%.500s)", spec->dest_database, err);
            add(report, len, s);
            ok = false;
        } else if (out && atoi(out) == 0 && others == 0) {
            snprintf(s, sizeof(s), "DROP DATABASE IF EXISTS %s%s", q, cl.on);
            if (ch_client_query(ch, s, NULL, err, sizeof(err)) == ERRCLASS_NONE) {
                snprintf(s, sizeof(s), "database %s dropped", spec->dest_database);
            } else {
                snprintf(s, sizeof(s), "database %s NOT dropped (%.500s)", spec->dest_database,
                         err);
                ok = false;
            }
            add(report, len, s);
        }
        free(out);
    }
    ch_client_destroy(&ch);
    return ok;
}

bool
teardown_pipe(const Pgferry__State__PipeSpec *spec, bool source_objects_recorded,
              Pgferry__State__TableDef *const *defs, size_t ndefs, bool drop_dest, char *report,
              size_t reportlen)
{
    report[0] = '\0';
    bool ok = true;
    /* a snapshot-only pipe's slot is temporary (gone with its worker); a pipe that never got
     * past Provisioning created nothing, and what exists under its names is someone else's */
    bool source_objects = spec->mode != PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY &&
                          (spec->slot_owned || spec->publication_owned) && source_objects_recorded;
    if (source_objects) {
        char err[1024];
        errclass_t cls;
        PGconn *pg = pgconn_connect(spec->source, "pgferry-drop", false, &cls, err, sizeof(err));
        if (!pg) {
            char s[1400];
            snprintf(s, sizeof(s),
                     "source unreachable (%.900s): replication slot %s and publication %s were NOT "
                     "dropped; drop them by hand",
                     err, spec->slot_owned ? spec->slot : "-",
                     spec->publication_owned ? spec->publication : "-");
            add(report, reportlen, s);
            ok = false;
        } else {
            if (spec->slot_owned)
                ok = drop_slot(pg, spec->slot, report, reportlen) && ok;
            if (spec->publication_owned)
                ok = drop_publication(pg, spec->publication, report, reportlen) && ok;
            PQfinish(pg);
        }
    }
    if (drop_dest)
        ok = drop_destination(spec, defs, ndefs, true, report, reportlen) && ok;
    if (!report[0])
        add(report, reportlen, "nothing to remove outside pgferryd");
    return ok;
}

bool
teardown_tables(const Pgferry__State__PipeSpec *spec, bool source_objects,
                Pgferry__State__TableDef *const *defs, size_t n, bool drop_dest, char *report,
                size_t reportlen)
{
    report[0] = '\0';
    bool ok = true;
    if (spec->mode != PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY && spec->publication_owned &&
        source_objects) {
        char err[1024], s[1400];
        errclass_t cls;
        PGconn *pg = pgconn_connect(spec->source, "pgferry-modify", false, &cls, err, sizeof(err));
        if (!pg) {
            snprintf(s, sizeof(s), "source unreachable (%.900s)", err);
            add(report, reportlen, s);
            return false;
        }
        char *pub = PQescapeIdentifier(pg, spec->publication, strlen(spec->publication));
        /* the tables by oid, under their names now: a table renamed at the source is still the
         * pipe's, and a new one under its old name is not */
        uint32_t *relids = calloc(n + 1, sizeof(*relids));
        char **schemas = calloc(n + 1, sizeof(*schemas)), **names = calloc(n + 1, sizeof(*names));
        for (size_t i = 0; relids && i < n; i++)
            relids[i] = defs[i]->relid;
        if (!relids || !schemas || !names ||
            setup_names_by_oid(pg, relids, n, schemas, names, err, sizeof(err)) != ERRCLASS_NONE) {
            snprintf(s, sizeof(s), "tables could NOT leave publication %s (%.900s)",
                     spec->publication, relids && schemas && names ? err : "out of memory");
            add(report, reportlen, s);
            ok = false;
            PQfreemem(pub);
            pub = NULL;
        }
        for (size_t i = 0; pub && i < n; i++) {
            const char *sch = schemas[i], *nam = names[i];
            if (!defs[i]->relid) { /* recorded without its oid */
                sch = defs[i]->schema;
                nam = defs[i]->name;
            }
            if (!sch) { /* dropped: no longer in any publication */
                snprintf(s, sizeof(s), "%s.%s is no longer on the source", defs[i]->schema,
                         defs[i]->name);
                add(report, reportlen, s);
                continue;
            }
            char *qs = PQescapeIdentifier(pg, sch, strlen(sch));
            char *qn = PQescapeIdentifier(pg, nam, strlen(nam));
            char sql[1400];
            snprintf(sql, sizeof(sql),
                     "DO $$BEGIN ALTER PUBLICATION %s DROP TABLE %s.%s; "
                     "EXCEPTION WHEN undefined_object OR undefined_table THEN NULL; END$$",
                     pub, qs ? qs : "", qn ? qn : "");
            PQfreemem(qs);
            PQfreemem(qn);
            PGresult *r = PQexec(pg, sql);
            if (PQresultStatus(r) == PGRES_COMMAND_OK) {
                snprintf(s, sizeof(s), "%s.%s left publication %s", defs[i]->schema, defs[i]->name,
                         spec->publication);
            } else {
                snprintf(s, sizeof(s), "%s.%s could NOT leave publication %s (%.300s)",
                         defs[i]->schema, defs[i]->name, spec->publication,
                         PQresultErrorMessage(r));
                ok = false;
            }
            PQclear(r);
            add(report, reportlen, s);
        }
        for (size_t i = 0; schemas && names && i < n; i++) {
            free(schemas[i]);
            free(names[i]);
        }
        free(relids);
        free(schemas);
        free(names);
        PQfreemem(pub);
        PQfinish(pg);
    } else if (spec->mode != PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY) {
        char s[600];
        snprintf(s, sizeof(s),
                 "publication %s is the user's: left as it is (changes of removed tables are "
                 "ignored)",
                 spec->publication);
        add(report, reportlen, s);
    }
    if (drop_dest)
        ok = drop_destination(spec, defs, n, false, report, reportlen) && ok;
    else
        add(report, reportlen, "destination tables kept");
    return ok;
}
