/* pgferryctl: the operator's command line. Parses arguments, sends one request, prints. */
#include "ctl.h"
#include "curvekeys.h"
#include "exitcodes.h"
#include "json.h"
#include "names.h"
#include "render.h"
#include "shape.h"
#include "tablename.h"
#include "timeutil.h"
#include "version.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: pgferryctl [--state-dir DIR | --control ENDPOINT] [--timeout MS] VERB ...\n\n"
            "verbs:\n"
            "  create NAME --source URI --dest URL --tables T1,T2 [--mode M]\n"
            "         [--dest-database DB] [--dest-user U] [--dest-password-file F]\n"
            "         [--dest-password-env VAR]\n"
            "         [--cluster NAME [--cluster-layout replicated|sharded] [--zk-path P]\n"
            "          [--insert-quorum N]]\n"
            "         [--publication P] [--slot S] [--snapshot-workers N] [--rows-per-range N]\n"
            "         [--numeric decimal|text] [--exclude-columns S.T.C[,...]]\n"
            "         [--target S.T=NAME] [--order-by S.T=C[,...]] [--partition-by S.T=EXPR]\n"
            "                    create a pipe (M: snapshot+cdc, snapshot-only, cdc-only;\n"
            "                    numeric(p,s) as Decimal(p,s), the default, or as exact text)\n"
            "  list [--json]     one line per pipe\n"
            "  status NAME [--json] [--history N]\n"
            "                    state, settings, workers, errors and history of a pipe\n"
            "  watch NAME [--interval-ms N]\n"
            "                    the status redrawn every second (progress bar while loading)\n"
            "  verify NAME [--table SCHEMA.TABLE]\n"
            "                    compare source and destination (count and checksum per table,\n"
            "                    first differing keys); exit 7 on a difference\n"
            "  metrics --prometheus\n"
            "                    every pipe's state, counters and lag (Prometheus text format)\n"
            "  add-tables NAME SCHEMA.TABLE[,...] [shaping options as for create]\n"
            "                    the tables join the pipe: set up, loaded, then streamed\n"
            "  set NAME KEY=VALUE...\n"
            "                    change batch_max_rows, batch_max_bytes, batch_max_wait_ms or\n"
            "                    snapshot_workers of a pipe (streaming goes on from its position)\n"
            "  remove-tables NAME SCHEMA.TABLE[,...] [--drop-destination]\n"
            "                    the tables leave the pipe (destination tables kept unless\n"
            "                    --drop-destination)\n"
            "  resync NAME       load every table again next to the current data, swap it in,\n"
            "                    continue from a new slot (also the way out of Failed)\n"
            "  pause NAME        finish the batch in flight, acknowledge it, stop streaming\n"
            "  resume NAME       stream again from where the pipe paused\n"
            "  drop NAME [--drop-destination]\n"
            "                    stop the pipe's workers, drop its own slot and publication,\n"
            "                    forget it; --drop-destination also drops its ClickHouse tables\n"
            "  keygen FILE       write a CURVE key pair to FILE (0600) and FILE.pub\n"
            "  version           print the version\n\n"
            "Remote daemons: --control tcp://HOST:PORT --server-key KEY|FILE.pub --key FILE\n"
            "(the daemon's public key, and this client's key pair from keygen).\n\n"
            "The daemon is found at $PGFERRY_CONTROL, else ipc://$PGFERRY_STATE_DIR/control.sock,\n"
            "else ipc:///var/lib/pgferry/control.sock.\n");
}

typedef struct {
    const char *state_dir;
    const char *control;
    int timeout_ms;
    bool json;
    const char *server_key; /* tcp:// only */
    const char *key_file;   /* tcp:// only */
} opts_t;

static int
call(const opts_t *o, Pgferry__Control__Request *req, Pgferry__Control__Reply **out)
{
    char ep[700], err[1024];
    if (o->control)
        snprintf(ep, sizeof(ep), "%s", o->control);
    else
        ctl_default_endpoint(o->state_dir, ep, sizeof(ep));
    char spub[41], cpub[41], csec[41];
    bool tcp = strncmp(ep, "tcp://", 6) == 0;
    if (tcp && (!o->server_key || !o->key_file)) {
        fprintf(stderr,
                "pgferryctl: %s is a remote endpoint: it needs --server-key (the "
                "daemon's public key) and --key (this client's key file)\n",
                ep);
        return EXIT_USAGE;
    }
    if (tcp && (!curvekeys_load_public(o->server_key, spub, err, sizeof(err)) ||
                !curvekeys_load(o->key_file, cpub, csec, err, sizeof(err)))) {
        fprintf(stderr, "pgferryctl: %s\n", err);
        return EXIT_USAGE;
    }
    ctl_t *c = ctl_connect(ep, o->timeout_ms, tcp ? spub : NULL, tcp ? cpub : NULL,
                           tcp ? csec : NULL, err, sizeof(err));
    memset(csec, 0, sizeof(csec));
    if (!c) {
        fprintf(stderr, "pgferryctl: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    *out = ctl_call(c, req, err, sizeof(err));
    ctl_destroy(&c);
    if (!*out) {
        fprintf(stderr, "pgferryctl: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    if ((*out)->code != PGFERRY__CONTROL__ERROR_CODE__OK) {
        fprintf(stderr, "pgferryctl: %s\n", (*out)->message);
        int rc = (*out)->code == PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT
                     ? EXIT_USAGE
                     : EXIT_FAILURE_GENERIC;
        pgferry__control__reply__free_unpacked(*out, NULL);
        *out = NULL;
        return rc;
    }
    return EXIT_OK;
}

/* Sends req and prints "pipe NAME<sep><reply message>". */
static int
call_print(const opts_t *o, Pgferry__Control__Request *req, const char *name, const char *sep)
{
    Pgferry__Control__Reply *r;
    int rc = call(o, req, &r);
    if (rc != EXIT_OK)
        return rc;
    printf("pipe %s%s%s\n", name, sep, r->message);
    pgferry__control__reply__free_unpacked(r, NULL);
    return EXIT_OK;
}

static void
print_json(json_t *j)
{
    if (j->oom) {
        fprintf(stderr, "pgferryctl: out of memory\n");
        return;
    }
    printf("%s\n", j->data ? j->data : "null");
}

/* Table specs for parsed names (pointing into tn): *ts the specs, *tp pointers to them. */
static bool
table_specs(tablename_t *tn, size_t n, Pgferry__State__TableSpec **ts,
            Pgferry__State__TableSpec ***tp)
{
    *ts = calloc(n, sizeof(**ts));
    *tp = calloc(n, sizeof(**tp));
    if (!*ts || !*tp) {
        free(*ts);
        free(*tp);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        pgferry__state__table_spec__init(&(*ts)[i]);
        (*ts)[i].schema = tn[i].schema[0] ? tn[i].schema : "public";
        (*ts)[i].name = tn[i].table;
        (*tp)[i] = &(*ts)[i];
    }
    return true;
}

static int
cmd_create(const opts_t *o, int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') {
        fprintf(stderr, "pgferryctl create: missing pipe NAME\n");
        return EXIT_USAGE;
    }
    Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
    spec.name = argv[0];
    const char *tables = NULL;
    shape_t *shape = shape_new();
    if (!shape)
        return EXIT_FAILURE_GENERIC;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "pgferryctl create: %s needs a value\n", k);
            return EXIT_USAGE;
        }
        char *v = argv[++i];
        if (strcmp(k, "--source") == 0)
            spec.source = v;
        else if (strcmp(k, "--dest") == 0)
            spec.dest_url = v;
        else if (strcmp(k, "--tables") == 0)
            tables = v;
        else if (strcmp(k, "--dest-database") == 0)
            spec.dest_database = v;
        else if (strcmp(k, "--dest-user") == 0)
            spec.dest_user = v;
        else if (strcmp(k, "--dest-password-file") == 0)
            spec.dest_password_file = v;
        else if (strcmp(k, "--dest-password-env") == 0)
            spec.dest_password_env = v;
        else if (strcmp(k, "--cluster") == 0)
            spec.cluster = v;
        else if (strcmp(k, "--cluster-layout") == 0)
            spec.cluster_layout = v;
        else if (strcmp(k, "--zk-path") == 0)
            spec.zk_path = v;
        else if (strcmp(k, "--insert-quorum") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 16) {
                fprintf(stderr, "pgferryctl create: --insert-quorum takes 0 to 16\n");
                return EXIT_USAGE;
            }
            spec.insert_quorum = (uint32_t)n;
        } else if (strcmp(k, "--publication") == 0)
            spec.publication = v;
        else if (strcmp(k, "--slot") == 0)
            spec.slot = v;
        else if (strcmp(k, "--snapshot-workers") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 64) {
                fprintf(stderr, "pgferryctl create: --snapshot-workers takes 1 to 64\n");
                return EXIT_USAGE;
            }
            spec.snapshot_workers = (uint32_t)n;
        } else if (strcmp(k, "--rows-per-range") == 0) {
            char *end;
            long long n = strtoll(v, &end, 10);
            if (*end || n < 1000 || n > 1000000000LL) {
                fprintf(stderr, "pgferryctl create: --rows-per-range takes 1000 to 1000000000\n");
                return EXIT_USAGE;
            }
            spec.rows_per_partition = (uint64_t)n;
        } else if (strcmp(k, "--numeric") == 0) {
            if (strcmp(v, "decimal") == 0) {
                spec.numeric_text = false;
            } else if (strcmp(v, "text") == 0) {
                spec.numeric_text = true;
            } else {
                fprintf(stderr, "pgferryctl create: --numeric is decimal or text\n");
                return EXIT_USAGE;
            }
        } else if (strcmp(k, "--mode") == 0) {
            if (!names_parse_mode(v, &spec.mode)) {
                fprintf(stderr,
                        "pgferryctl create: --mode is snapshot+cdc, snapshot-only or cdc-only\n");
                return EXIT_USAGE;
            }
        } else {
            char serr[512];
            int sr = shape_option(shape, k, v, serr, sizeof(serr));
            if (sr < 0 || sr == 0) {
                if (sr < 0)
                    fprintf(stderr, "pgferryctl create: %s\n", serr);
                else
                    fprintf(stderr, "pgferryctl create: unknown option %s\n", k);
                shape_free(shape);
                return EXIT_USAGE;
            }
        }
    }
    if (!spec.source[0] || !spec.dest_url[0] || !tables) {
        fprintf(stderr, "pgferryctl create: --source, --dest and --tables are required\n");
        shape_free(shape);
        return EXIT_USAGE;
    }
    char err[512];
    size_t n;
    tablename_t *tn = tablename_parse_list(tables, &n, err, sizeof(err));
    if (!tn) {
        fprintf(stderr, "pgferryctl create: --tables: %s\n", err);
        shape_free(shape);
        return EXIT_USAGE;
    }
    Pgferry__State__TableSpec *ts, **tp;
    if (!table_specs(tn, n, &ts, &tp)) {
        free(tn);
        shape_free(shape);
        return EXIT_FAILURE_GENERIC;
    }
    spec.tables = tp;
    spec.n_tables = n;
    if (!shape_apply(shape, tp, n, err, sizeof(err))) {
        fprintf(stderr, "pgferryctl create: %s\n", err);
        free(tn);
        free(ts);
        free(tp);
        shape_free(shape);
        return EXIT_USAGE;
    }
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__CreatePipe cp = PGFERRY__CONTROL__CREATE_PIPE__INIT;
    cp.spec = &spec;
    req.body_case = PGFERRY__CONTROL__REQUEST__BODY_CREATE;
    req.create = &cp;
    Pgferry__Control__Reply *r;
    int rc = call(o, &req, &r);
    free(tn);
    free(ts);
    free(tp);
    shape_free(shape);
    if (rc != EXIT_OK)
        return rc;
    if (o->json && r->payload_case == PGFERRY__CONTROL__REPLY__PAYLOAD_STATUS) {
        json_t j;
        json_init(&j);
        render_status_json(&j, r->status);
        print_json(&j);
        json_free(&j);
    } else {
        printf("pipe %s created; it is %s (see: pgferryctl status %s)\n", spec.name,
               r->payload_case == PGFERRY__CONTROL__REPLY__PAYLOAD_STATUS
                   ? names_state(r->status->record->state)
                   : "Provisioning",
               spec.name);
    }
    pgferry__control__reply__free_unpacked(r, NULL);
    return EXIT_OK;
}

static int
cmd_list(const opts_t *o)
{
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__ListPipes lp = PGFERRY__CONTROL__LIST_PIPES__INIT;
    req.body_case = PGFERRY__CONTROL__REQUEST__BODY_LIST;
    req.list = &lp;
    Pgferry__Control__Reply *r;
    int rc = call(o, &req, &r);
    if (rc != EXIT_OK)
        return rc;
    Pgferry__Control__PipeList empty = PGFERRY__CONTROL__PIPE_LIST__INIT;
    const Pgferry__Control__PipeList *l =
        r->payload_case == PGFERRY__CONTROL__REPLY__PAYLOAD_LIST ? r->list : &empty;
    if (o->json) {
        json_t j;
        json_init(&j);
        render_list_json(&j, l);
        print_json(&j);
        json_free(&j);
    } else {
        render_list_text(stdout, l, time_now_us());
    }
    pgferry__control__reply__free_unpacked(r, NULL);
    return EXIT_OK;
}

static int
cmd_status(const opts_t *o, const char *name, uint32_t history)
{
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__GetPipe g = PGFERRY__CONTROL__GET_PIPE__INIT;
    g.name = (char *)name;
    g.history_limit = history;
    req.body_case = PGFERRY__CONTROL__REQUEST__BODY_GET;
    req.get = &g;
    Pgferry__Control__Reply *r;
    int rc = call(o, &req, &r);
    if (rc != EXIT_OK)
        return rc;
    if (r->payload_case != PGFERRY__CONTROL__REPLY__PAYLOAD_STATUS) {
        fprintf(stderr, "pgferryctl: the daemon sent no status\n");
        pgferry__control__reply__free_unpacked(r, NULL);
        return EXIT_FAILURE_GENERIC;
    }
    if (o->json) {
        json_t j;
        json_init(&j);
        render_status_json(&j, r->status);
        print_json(&j);
        json_free(&j);
    } else {
        render_status_text(stdout, r->status, time_now_us());
    }
    pgferry__control__reply__free_unpacked(r, NULL);
    return EXIT_OK;
}

/* metrics [--prometheus]: the exposition text (the only format) */
static int
cmd_metrics(const opts_t *o)
{
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__GetMetrics g = PGFERRY__CONTROL__GET_METRICS__INIT;
    req.body_case = PGFERRY__CONTROL__REQUEST__BODY_METRICS;
    req.metrics = &g;
    Pgferry__Control__Reply *r;
    int rc = call(o, &req, &r);
    if (rc != EXIT_OK)
        return rc;
    fputs(r->message, stdout);
    pgferry__control__reply__free_unpacked(r, NULL);
    return EXIT_OK;
}

/* verify NAME [--table T]: exit 0 on match, 7 on mismatch */
static int
cmd_verify(const opts_t *in, const char *name, const char *table)
{
    opts_t o1 = *in;
    if (o1.timeout_ms == 10000)
        o1.timeout_ms = 3600000; /* comparing big tables takes a while */
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__VerifyPipe v = PGFERRY__CONTROL__VERIFY_PIPE__INIT;
    v.name = (char *)name;
    v.table = (char *)(table ? table : "");
    req.body_case = PGFERRY__CONTROL__REQUEST__BODY_VERIFY;
    req.verify = &v;
    Pgferry__Control__Reply *r;
    int rc = call(&o1, &req, &r);
    if (rc != EXIT_OK)
        return rc;
    if (r->payload_case != PGFERRY__CONTROL__REPLY__PAYLOAD_VERIFY) {
        fprintf(stderr, "pgferryctl: the daemon sent no verify report\n");
        pgferry__control__reply__free_unpacked(r, NULL);
        return EXIT_FAILURE_GENERIC;
    }
    fputs(r->verify->text, stdout);
    rc = r->verify->match ? EXIT_OK : EXIT_VERIFY_MISMATCH;
    if (!r->verify->match)
        fprintf(stderr, "pgferryctl: pipe %s: source and destination differ\n", name);
    pgferry__control__reply__free_unpacked(r, NULL);
    return rc;
}

static volatile sig_atomic_t g_interrupted;
static void
on_interrupt(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

/* watch NAME: the status, redrawn in place every interval until interrupted */
static int
cmd_watch(const opts_t *o, const char *name, uint32_t history, int interval_ms)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool tty = isatty(STDOUT_FILENO);
    int rc = EXIT_OK;
    while (!g_interrupted) {
        Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
        Pgferry__Control__GetPipe g = PGFERRY__CONTROL__GET_PIPE__INIT;
        g.name = (char *)name;
        g.history_limit = history ? history : 5;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_GET;
        req.get = &g;
        Pgferry__Control__Reply *r;
        rc = call(o, &req, &r);
        if (rc != EXIT_OK)
            return rc;
        /* home and clear (a terminal), or a separator line (a pipe or file) */
        fputs(tty ? "\033[H\033[2J" : "\f\n", stdout);
        char ts[40];
        time_format_us(time_now_us(), ts, sizeof(ts));
        printf("pgferryctl watch %s  (every %.1f s, Ctrl-C to stop)  %s\n\n", name,
               interval_ms / 1000.0, ts);
        if (r->payload_case == PGFERRY__CONTROL__REPLY__PAYLOAD_STATUS)
            render_watch_frame(stdout, r->status, time_now_us());
        fflush(stdout);
        pgferry__control__reply__free_unpacked(r, NULL);
        for (int waited = 0; waited < interval_ms && !g_interrupted; waited += 50)
            usleep(50 * 1000);
    }
    return rc;
}

/* add-tables / remove-tables NAME T1,T2 [--drop-destination] */
static int
cmd_tables(const opts_t *in, const char *verb, const char *name, const char *list, bool drop_dest,
           shape_t *shape)
{
    opts_t o1 = *in;
    if (o1.timeout_ms == 10000)
        o1.timeout_ms = 60000; /* removing waits for the CDC worker to stop */
    char err[512];
    size_t n;
    tablename_t *tn = tablename_parse_list(list, &n, err, sizeof(err));
    if (!tn) {
        fprintf(stderr, "pgferryctl %s: %s\n", verb, err);
        return EXIT_USAGE;
    }
    char **names = calloc(n, sizeof(*names));
    char(*bufs)[300] = calloc(n, sizeof(*bufs));
    if (!names || !bufs) {
        free(tn);
        free(names);
        free(bufs);
        return EXIT_FAILURE_GENERIC;
    }
    for (size_t i = 0; i < n; i++) {
        tablename_format(tn[i].schema[0] ? tn[i].schema : "public", tn[i].table, bufs[i],
                         sizeof(bufs[i]));
        names[i] = bufs[i];
    }
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__AddTables a = PGFERRY__CONTROL__ADD_TABLES__INIT;
    Pgferry__Control__RemoveTables rm = PGFERRY__CONTROL__REMOVE_TABLES__INIT;
    Pgferry__State__TableSpec *ts, **tp;
    if (!table_specs(tn, n, &ts, &tp)) {
        free(tn);
        free(names);
        free(bufs);
        return EXIT_FAILURE_GENERIC;
    }
    if (!shape_apply(shape, tp, n, err, sizeof(err))) {
        fprintf(stderr, "pgferryctl %s: %s\n", verb, err);
        free(tn);
        free(names);
        free(bufs);
        free(ts);
        free(tp);
        return EXIT_USAGE;
    }
    if (strcmp(verb, "add-tables") == 0) {
        a.name = (char *)name;
        a.tables = names;
        a.n_tables = n;
        a.shaped = tp;
        a.n_shaped = n;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_ADD_TABLES;
        req.add_tables = &a;
    } else {
        rm.name = (char *)name;
        rm.tables = names;
        rm.n_tables = n;
        rm.drop_destination = drop_dest;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_REMOVE_TABLES;
        req.remove_tables = &rm;
    }
    int rc = call_print(&o1, &req, name, ": ");
    free(tn);
    free(names);
    free(bufs);
    free(ts);
    free(tp);
    return rc;
}

/* set NAME KEY=VALUE... */
static int
cmd_set(const opts_t *o, const char *name, char **settings, size_t n)
{
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__SetPipe sp = PGFERRY__CONTROL__SET_PIPE__INIT;
    sp.name = (char *)name;
    sp.settings = settings;
    sp.n_settings = n;
    req.body_case = PGFERRY__CONTROL__REQUEST__BODY_SET;
    req.set = &sp;
    return call_print(o, &req, name, ": ");
}

/* pause / resume / resync NAME */
static int
cmd_simple(const opts_t *o, const char *verb, const char *name)
{
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__PausePipe pp = PGFERRY__CONTROL__PAUSE_PIPE__INIT;
    Pgferry__Control__ResumePipe rp = PGFERRY__CONTROL__RESUME_PIPE__INIT;
    Pgferry__Control__ResyncPipe sp = PGFERRY__CONTROL__RESYNC_PIPE__INIT;
    if (strcmp(verb, "resync") == 0) {
        sp.name = (char *)name;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_RESYNC;
        req.resync = &sp;
    } else if (strcmp(verb, "pause") == 0) {
        pp.name = (char *)name;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_PAUSE;
        req.pause = &pp;
    } else {
        rp.name = (char *)name;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_RESUME;
        req.resume = &rp;
    }
    return call_print(o, &req, name, " ");
}

static int
cmd_drop(const opts_t *in, const char *name, bool drop_destination)
{
    opts_t o1 = *in;
    const opts_t *o = &o1;
    if (o1.timeout_ms == 10000)
        o1.timeout_ms = 60000; /* stopping workers and removing the slot take a while */
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__DropPipe d = PGFERRY__CONTROL__DROP_PIPE__INIT;
    d.name = (char *)name;
    d.drop_destination = drop_destination;
    req.body_case = PGFERRY__CONTROL__REQUEST__BODY_DROP;
    req.drop = &d;
    Pgferry__Control__Reply *r;
    int rc = call(o, &req, &r);
    if (rc != EXIT_OK)
        return rc;
    printf("pipe %s dropped: %s\n", name, r->message);
    pgferry__control__reply__free_unpacked(r, NULL);
    return EXIT_OK;
}

int
main(int argc, char **argv)
{
    opts_t o = {NULL, NULL, 10000, false, NULL, NULL};
    int i = 1;
    /* global options come before the verb */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("pgferryctl %s\n", PGFERRY_VERSION);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            o.json = true;
        } else if (i + 1 < argc && strcmp(argv[i], "--state-dir") == 0) {
            o.state_dir = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--control") == 0) {
            o.control = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--server-key") == 0) {
            o.server_key = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--key") == 0) {
            o.key_file = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0) {
            o.timeout_ms = atoi(argv[++i]);
            if (o.timeout_ms <= 0)
                o.timeout_ms = 10000;
        } else {
            fprintf(stderr, "pgferryctl: unknown option %s\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *verb = argv[i++];
    /* read verbs accept --json and --history after the verb too */
    const char *name = NULL;
    uint32_t history = 0;
    bool drop_destination = false;
    const char *verify_table = NULL;
    const char *second = NULL; /* add-tables / remove-tables: the table list */
    int interval_ms = 1000;
    int rest = i;
    shape_t *shape = NULL; /* add-tables: made at its first shaping option */
    char serr[512];
    int sr = 0;
    if (strcmp(verb, "create") != 0) {
        for (; i < argc; i++) {
            if (strcmp(argv[i], "--json") == 0)
                o.json = true;
            else if (strcmp(argv[i], "--interval-ms") == 0 && strcmp(verb, "watch") == 0 &&
                     i + 1 < argc)
                interval_ms = atoi(argv[++i]);
            else if (strcmp(argv[i], "--table") == 0 && strcmp(verb, "verify") == 0 && i + 1 < argc)
                verify_table = argv[++i];
            else if (strcmp(argv[i], "--prometheus") == 0 && strcmp(verb, "metrics") == 0)
                ; /* the one format there is */
            else if (strcmp(argv[i], "--drop-destination") == 0 &&
                     (strcmp(verb, "drop") == 0 || strcmp(verb, "remove-tables") == 0))
                drop_destination = true;
            else if (strcmp(argv[i], "--history") == 0 && i + 1 < argc)
                history = (uint32_t)atoi(argv[++i]);
            else if (strcmp(verb, "add-tables") == 0 && argv[i][0] == '-' && i + 1 < argc &&
                     (shape || (shape = shape_new())) &&
                     (sr = shape_option(shape, argv[i], argv[i + 1], serr, sizeof(serr))) != 0) {
                if (sr < 0) {
                    fprintf(stderr, "pgferryctl add-tables: %s\n", serr);
                    shape_free(shape);
                    return EXIT_USAGE;
                }
                i++;
            } else if (argv[i][0] == '-') {
                fprintf(stderr, "pgferryctl %s: unknown option %s\n", verb, argv[i]);
                shape_free(shape);
                return EXIT_USAGE;
            } else if (!name)
                name = argv[i];
            else if (!second &&
                     (strcmp(verb, "add-tables") == 0 || strcmp(verb, "remove-tables") == 0))
                second = argv[i];
            else if (strcmp(verb, "set") == 0)
                ; /* KEY=VALUE settings, read by cmd_set */
            else {
                fprintf(stderr, "pgferryctl %s: unexpected argument %s\n", verb, argv[i]);
                shape_free(shape);
                return EXIT_USAGE;
            }
        }
    }
    if (strcmp(verb, "create") == 0)
        return cmd_create(&o, argc - rest, argv + rest);
    if (strcmp(verb, "set") == 0) {
        /* set NAME KEY=VALUE...: the settings are the arguments after the name */
        char **kv = NULL;
        size_t nkv = 0;
        const char *pname = NULL;
        for (int k = rest; k < argc; k++) {
            if (argv[k][0] == '-')
                continue; /* --json and friends, taken above */
            if (!pname) {
                pname = argv[k];
            } else {
                kv = kv ? kv : calloc((size_t)argc, sizeof(*kv));
                if (!kv)
                    return EXIT_FAILURE_GENERIC;
                kv[nkv++] = argv[k];
            }
        }
        if (!pname || nkv == 0) {
            fprintf(stderr, "pgferryctl set: usage: set NAME KEY=VALUE... (batch_max_rows, "
                            "batch_max_bytes, batch_max_wait_ms, snapshot_workers)\n");
            free(kv);
            return EXIT_USAGE;
        }
        int rc = cmd_set(&o, pname, kv, nkv);
        free(kv);
        return rc;
    }
    if (strcmp(verb, "version") == 0) {
        printf("pgferryctl %s\n", PGFERRY_VERSION);
        return EXIT_OK;
    }
    if (strcmp(verb, "list") == 0)
        return cmd_list(&o);
    if (strcmp(verb, "metrics") == 0)
        return cmd_metrics(&o);
    if (strcmp(verb, "keygen") == 0) {
        char err[512];
        if (!name) {
            fprintf(stderr, "pgferryctl keygen: missing FILE\n");
            return EXIT_USAGE;
        }
        if (!curvekeys_generate(name, err, sizeof(err))) {
            fprintf(stderr, "pgferryctl keygen: %s\n", err);
            return EXIT_FAILURE_GENERIC;
        }
        char pub[41];
        if (!curvekeys_load(name, pub, NULL, err, sizeof(err))) {
            fprintf(stderr, "pgferryctl keygen: %s\n", err);
            return EXIT_FAILURE_GENERIC;
        }
        printf("wrote %s (secret, mode 0600) and %s.pub\npublic key: %s\n", name, name, pub);
        return EXIT_OK;
    }
    if (strcmp(verb, "add-tables") == 0 || strcmp(verb, "remove-tables") == 0) {
        if (!name || !second) {
            fprintf(stderr, "pgferryctl %s: usage: %s NAME SCHEMA.TABLE[,...]\n", verb, verb);
            return EXIT_USAGE;
        }
        int rc = cmd_tables(&o, verb, name, second, drop_destination, shape);
        shape_free(shape);
        return rc;
    }
    if (strcmp(verb, "watch") == 0) {
        if (!name) {
            fprintf(stderr, "pgferryctl watch: missing pipe NAME\n");
            return EXIT_USAGE;
        }
        if (interval_ms < 100 || interval_ms > 3600000) {
            fprintf(stderr, "pgferryctl watch: --interval-ms is 100 to 3600000\n");
            return EXIT_USAGE;
        }
        return cmd_watch(&o, name, history, interval_ms);
    }
    if (strcmp(verb, "verify") == 0) {
        if (!name) {
            fprintf(stderr, "pgferryctl verify: missing pipe NAME\n");
            return EXIT_USAGE;
        }
        return cmd_verify(&o, name, verify_table);
    }
    if (strcmp(verb, "pause") == 0 || strcmp(verb, "resume") == 0 || strcmp(verb, "resync") == 0) {
        if (!name) {
            fprintf(stderr, "pgferryctl %s: missing pipe NAME\n", verb);
            return EXIT_USAGE;
        }
        return cmd_simple(&o, verb, name);
    }
    if (strcmp(verb, "status") == 0 || strcmp(verb, "drop") == 0) {
        if (!name) {
            fprintf(stderr, "pgferryctl %s: missing pipe NAME\n", verb);
            return EXIT_USAGE;
        }
        return verb[0] == 's' ? cmd_status(&o, name, history)
                              : cmd_drop(&o, name, drop_destination);
    }
    fprintf(stderr, "pgferryctl: unknown verb '%s'\n", verb);
    usage(stderr);
    return EXIT_USAGE;
}
