/* pgferry-worker: started by pgferryd only. Connects back, takes its assignment, runs it. */
#include "cdc.h"
#include "exitcodes.h"
#include "log.h"
#include "names.h"
#include "owners.h"
#include "provision.h"
#include "setup.h"
#include "slotinfo.h"
#include "verify.h"
#include "teardown.h"
#include "snapshot.h"
#include "version.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Sends the outcome of a role to the supervisor (Done, or Error with its class), logs it once
 * and returns the process's exit code. */
static int
report(worker_t *w, const char *role, errclass_t cls, Pgferry__Worker__Done *done, const char *err)
{
    /* before the outcome: a worker whose job is over may be told to stop right after it */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        log_info("%s: peak RSS %ld MB", role, (ru.ru_maxrss + 512) / 1024);
    if (cls == ERRCLASS_NONE) {
        worker_send_done(w, done);
        log_info("%s done: %s", role, done->detail);
        return EXIT_OK;
    }
    worker_send_error(w, cls, err);
    log_warn("%s failed (%s): %s", role, cls == ERRCLASS_FATAL ? "FATAL" : "TRANSIENT", err);
    return cls == ERRCLASS_FATAL ? EXIT_FATAL : EXIT_TRANSIENT;
}

/* A store written before slot and publication names were checked at create may hold two
 * pipes that share a slot, or a publication pgferry sets: Setup, a load and the stream of one
 * would take the other's (set the publication to its tables, re-create or confirm the slot).
 * Such a pipe stops with the way out; drop keeps what the other pipe uses. */
static bool
shared_source_refused(worker_role_t rid, const Pgferry__State__PipeSpec *spec,
                      const Pgferry__Worker__Assignment *a, char *err, size_t errlen)
{
    if (rid != ROLE_SETUP && rid != ROLE_SNAPSHOT && rid != ROLE_CDC)
        return false;
    if (a->slot_shared_with && a->slot_shared_with[0]) {
        snprintf(err, errlen,
                 "replication slot %s is used by pipe %s too (a state store written before "
                 "names were checked at create): drop one of the two pipes (drop keeps what the "
                 "other uses), then resync the other",
                 spec->slot, a->slot_shared_with);
        return true;
    }
    if (spec->publication_owned && a->publication_shared_with && a->publication_shared_with[0]) {
        snprintf(err, errlen,
                 "publication %s is used by pipe %s too (a state store written before names "
                 "were checked at create): drop one of the two pipes (drop keeps what the other "
                 "uses), then resync the other",
                 spec->publication, a->publication_shared_with);
        return true;
    }
    return false;
}

int
main(int argc, char **argv)
{
    const char *endpoint = NULL, *pipe = NULL, *role = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("pgferry-worker %s\n", PGFERRY_VERSION);
            return EXIT_OK;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pgferry-worker: %s needs a value\n", argv[i]);
            return EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--endpoint") == 0)
            endpoint = v;
        else if (strcmp(argv[i - 1], "--pipe") == 0)
            pipe = v;
        else if (strcmp(argv[i - 1], "--role") == 0)
            role = v;
        else if (strcmp(argv[i - 1], "--log-level") == 0) {
            log_level_t l;
            if (log_parse_level(v, &l))
                log_set_level(l);
        } else if (strcmp(argv[i - 1], "--log-format") == 0)
            log_set_json(strcmp(v, "json") == 0);
        else {
            fprintf(stderr, "pgferry-worker: unknown option %s\n", argv[i - 1]);
            return EXIT_USAGE;
        }
    }
    worker_role_t rid = ROLE_NONE;
    if (!endpoint || !pipe || !role || !names_parse_role(role, &rid)) {
        fprintf(stderr, "pgferry-worker is started by pgferryd "
                        "(--endpoint E --pipe P --role R)\n");
        return EXIT_USAGE;
    }
    log_init(role, pipe);
    /* provisioning, setup and a range load hold nothing that must be finished: they stop at
     * once (an interrupted range is loaded again) */
    worker_install_signals(rid == ROLE_PROVISION || rid == ROLE_SETUP ||
                           rid == ROLE_SNAPSHOT_RANGE || rid == ROLE_VERIFY);
    char err[2048];
    worker_t *w = worker_connect(endpoint, pipe, rid, err, sizeof(err));
    if (!w) {
        log_error("%s", err);
        return EXIT_TRANSIENT;
    }
    Pgferry__Worker__SupervisorMessage *m = worker_await_assignment(w, 10000);
    if (!m) {
        log_warn("no assignment from the supervisor; exiting");
        worker_destroy(&w);
        return EXIT_STOPPED;
    }
    int rc;
    const Pgferry__State__PipeSpec *spec = m->assignment->spec;
    if (spec)
        owners_set_identity(spec->name, m->assignment->state_id);
    Pgferry__Worker__Done d = PGFERRY__WORKER__DONE__INIT;
    errclass_t cls;
    if (!spec || m->assignment->role != rid) {
        log_error("assignment does not match role %s", role);
        rc = EXIT_USAGE;
    } else if (rid == ROLE_PROVISION) {
        provision_result_t res;
        cls = provision_run(spec, w, &res, err, sizeof(err));
        d.source_version = res.source_version;
        d.dest_version = res.dest_version;
        d.detail = res.detail;
        rc = report(w, role, cls, &d, err);
    } else if (shared_source_refused(rid, spec, m->assignment, err, sizeof(err))) {
        /* a store written before slot and publication names were checked at create: setting
         * the publication, re-creating the slot or streaming would take the other pipe's */
        rc = report(w, role, ERRCLASS_FATAL, &d, err);
    } else if (rid == ROLE_SETUP) {
        setup_result_t res;
        bool rs = m->assignment->resync;
        /* a resync reads every table again, the known ones by their oid */
        cls = setup_run(spec, m->assignment->tables, m->assignment->n_tables, rs, w, &res, err,
                        sizeof(err));
        d.detail = res.detail;
        d.tables = res.tables;
        d.n_tables = res.n_tables;
        rc = report(w, role, cls, &d, err);
        setup_free_result(&res);
    } else if (rid == ROLE_SNAPSHOT) {
        snapshot_result_t res;
        cls = snapshot_coordinate(spec, m->assignment->tables, m->assignment->n_tables,
                                  m->assignment->keep_slot, m->assignment->resync, w, &res, err,
                                  sizeof(err));
        d.detail = res.detail;
        rc = report(w, role, cls, &d, err);
    } else if (rid == ROLE_SNAPSHOT_RANGE) {
        /* range after range: after each Done the supervisor sends the next range of the plan
         * or Stop; the connections stay open in between (a load of thousands of small tables
         * costs one process per worker, not one per table) */
        snapshot_session_t ss = {0};
        for (;;) {
            snapshot_result_t res;
            const Pgferry__Worker__Assignment *a = m->assignment;
            cls = snapshot_load_range_in(&ss, a->spec, a->tables, a->n_tables, a->snapshot_name,
                                         a->range, a->resync, w, &res, err, sizeof(err));
            Pgferry__Worker__Done rd = PGFERRY__WORKER__DONE__INIT;
            rd.detail = res.detail;
            rd.rows = res.rows;
            rd.bytes = res.bytes;
            rc = report(w, role, cls, &rd, err);
            if (cls != ERRCLASS_NONE)
                break;
            Pgferry__Worker__SupervisorMessage *next = worker_await_assignment(w, 60000);
            if (!next)
                break; /* Stop (no range left) or no word from the supervisor */
            if (next->assignment->role != rid || !next->assignment->spec) {
                pgferry__worker__supervisor_message__free_unpacked(next, NULL);
                break;
            }
            pgferry__worker__supervisor_message__free_unpacked(m, NULL);
            m = next;
        }
        snapshot_session_close(&ss);
    } else if (rid == ROLE_VERIFY) {
        verify_result_t res;
        cls = verify_run(spec, m->assignment->tables, m->assignment->n_tables,
                         m->assignment->verify_table, m->assignment->streaming, w, &res, err,
                         sizeof(err));
        d.detail = res.report ? res.report : "";
        d.rows = res.mismatched_tables;
        rc = report(w, role, cls, &d, err);
        free(res.report);
    } else if (rid == ROLE_SWAP) {
        char detail[300] = "";
        cls = setup_swap(spec, m->assignment->tables, m->assignment->n_tables, w, detail,
                         sizeof(detail), err, sizeof(err));
        d.detail = detail;
        rc = report(w, role, cls, &d, err);
    } else if (rid == ROLE_TEARDOWN) {
        /* everything is attempted; what is left is in the report, never an error */
        char text[4096];
        const Pgferry__Worker__Assignment *a = m->assignment;
        /* a slot or publication another pipe uses stays (as if it were the user's) */
        Pgferry__State__PipeSpec own = *spec;
        own.slot_owned = own.slot_owned && !a->slot_shared_with[0];
        own.publication_owned = own.publication_owned && !a->publication_shared_with[0];
        bool clean = a->teardown_whole
                         ? teardown_pipe(&own, a->source_objects, a->tables, a->n_tables,
                                         a->drop_destination, text, sizeof(text))
                         : teardown_tables(&own, a->source_objects, a->tables, a->n_tables,
                                           a->drop_destination, text, sizeof(text));
        for (int k = 0; k < 2; k++) {
            const char *with = k ? a->publication_shared_with : a->slot_shared_with;
            if (with[0] && (k ? spec->publication_owned : spec->slot_owned))
                snprintf(text + strlen(text), sizeof(text) - strlen(text),
                         "; %s %s kept: pipe %s uses it too",
                         k ? "publication" : "replication slot", k ? spec->publication : spec->slot,
                         with);
        }
        d.detail = text;
        d.leftovers = !clean;
        rc = report(w, role, ERRCLASS_NONE, &d, err);
    } else if (rid == ROLE_MONITOR) {
        cls = monitor_run(spec, w, 5000, err, sizeof(err));
        d.detail = "stopped";
        rc = report(w, role, cls, &d, err);
    } else if (rid == ROLE_CDC) {
        cls = cdc_run(spec, m->assignment->tables, m->assignment->n_tables,
                      m->assignment->skip_before_lsn, m->assignment->counted_lsn,
                      m->assignment->table_counted_lsn, m->assignment->n_table_counted_lsn, w, err,
                      sizeof(err));
        d.detail = "stopped";
        rc = report(w, role, cls, &d, err);
    } else {
        snprintf(err, sizeof(err), "unknown worker role %s", role);
        rc = report(w, role, ERRCLASS_FATAL, &d, err);
    }
    pgferry__worker__supervisor_message__free_unpacked(m, NULL);
    worker_destroy(&w);
    return rc;
}
