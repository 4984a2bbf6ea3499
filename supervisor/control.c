/*
 * control: the control verbs. Each validates the operator's input, acts on the pipe (through
 * pipeops and the store) and answers through ctlchan (now, or later for verify, drop and
 * remove-tables); none sees a ZeroMQ frame. Passwords are masked in everything sent back.
 */
#include "control.h"
#include "ctlchan.h"
#include "status.h"
#include "pipeops.h"
#include "conninfo.h"
#include "metrics.h"
#include "ipc.h"
#include "log.h"
#include "mask.h"
#include "names.h"
#include "tablename.h"
#include "timeutil.h"
#include "churl.h"
#include "chcluster.h"
#include "chexpr.h"
#include "chnames.h"
#include "secrets.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_MAX_TABLES 10000
#define DEFAULT_HISTORY 20

typedef Pgferry__Control__Reply reply_t;

static bool
valid_pipe_name(const char *n, char *err, size_t errlen)
{
    size_t l = strlen(n);
    if (l == 0 || l > 48) {
        snprintf(err, errlen, "pipe name must be 1 to 48 characters");
        return false;
    }
    if (!isalpha((unsigned char)n[0])) {
        snprintf(err, errlen, "pipe name must start with a letter");
        return false;
    }
    for (const char *p = n; *p; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-')) {
            snprintf(err, errlen, "pipe name may contain only letters, digits, '_' and '-'");
            return false;
        }
    }
    return true;
}

/* slot and owned publication names derived from the pipe name: lower case, '-' -> '_' */
static void
derived_name(const char *pipe, char *out, size_t outlen)
{
    size_t o = 0;
    const char *prefix = "pgferry_";
    for (const char *p = prefix; *p && o + 1 < outlen; p++)
        out[o++] = *p;
    for (const char *p = pipe; *p && o + 1 < outlen; p++)
        out[o++] = *p == '-' ? '_' : (char)tolower((unsigned char)*p);
    out[o] = '\0';
}

static bool
valid_slot_name(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > 63)
        return false;
    for (const char *p = n; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    }
    return true;
}

/* The slot and publication of a new pipe (spec, defaults filled in) against every stored
 * pipe (the supervisor is the only writer of the store and handles one request at a time, so
 * nothing can come between this check and the record's write): a slot feeds one pipe only; a
 * publication pgferry owns (it sets its tables) is one pipe's only, a user's may serve several;
 * and pipe names that differ only in case or '-'/'_' are refused as confusable (they derive
 * the same slot and publication names). Every stored pipe counts, of any source (a pipe being
 * dropped too, until its teardown is done). False with the reason in err. */
static bool
check_source_names(supervisor_t *s, const Pgferry__State__PipeSpec *sp, char *err, size_t errlen)
{
    char **names;
    size_t npipes;
    if (!store_list_names(s->store, &names, &npipes)) {
        snprintf(err, errlen, "state store error");
        return false;
    }
    char mine[80], theirs[80];
    derived_name(sp->name, mine, sizeof(mine));
    bool ok = true;
    for (size_t p = 0; p < npipes && ok; p++) {
        const Pgferry__State__PipeRecord *o = store_peek_pipe(s->store, names[p]);
        if (!o || !o->spec || strcmp(names[p], sp->name) == 0)
            continue;
        const Pgferry__State__PipeSpec *os = o->spec;
        const char *dropping = o->dropping ? " (being dropped: wait until its drop is done)" : "";
        derived_name(names[p], theirs, sizeof(theirs));
        ok = false;
        if (strcmp(mine, theirs) == 0)
            snprintf(err, errlen,
                     "pipe name %s is too close to the existing pipe %s%s: names that differ "
                     "only in case or '-'/'_' are refused (both would use the slot and "
                     "publication name %s); choose another name",
                     sp->name, names[p], dropping, mine);
        else if (strcmp(os->slot, sp->slot) == 0)
            snprintf(err, errlen,
                     "replication slot %s is used by pipe %s%s, and a slot feeds one pipe only; "
                     "%s",
                     sp->slot, names[p], dropping,
                     sp->slot_owned ? "choose another pipe name, or name a slot with --slot"
                                    : "name another slot with --slot");
        else if (strcmp(os->publication, sp->publication) == 0 &&
                 (os->publication_owned || sp->publication_owned))
            snprintf(err, errlen, "publication %s is used by pipe %s%s, %s; %s", sp->publication,
                     names[p], dropping,
                     os->publication_owned ? "which owns it (pgferry sets its tables)"
                                           : "and pgferry would set its tables for this pipe",
                     sp->publication_owned ? "choose another pipe name, or name a publication "
                                             "with --publication"
                                           : "name another publication with --publication");
        else
            ok = true;
    }
    store_free_names(names, npipes);
    return ok;
}

void
control_shared_source_names(supervisor_t *s, const Pgferry__State__PipeRecord *rec, char *slot_pipe,
                            char *pub_pipe, size_t len)
{
    slot_pipe[0] = pub_pipe[0] = '\0';
    char **names;
    size_t npipes;
    if (!rec->spec || !store_list_names(s->store, &names, &npipes))
        return;
    for (size_t p = 0; p < npipes; p++) {
        const Pgferry__State__PipeRecord *o = store_peek_pipe(s->store, names[p]);
        if (!o || !o->spec || o->dropping || strcmp(names[p], rec->spec->name) == 0)
            continue;
        if (!slot_pipe[0] && strcmp(o->spec->slot, rec->spec->slot) == 0)
            snprintf(slot_pipe, len, "%s", names[p]);
        if (!pub_pipe[0] && strcmp(o->spec->publication, rec->spec->publication) == 0)
            snprintf(pub_pipe, len, "%s", names[p]);
    }
    store_free_names(names, npipes);
}

/* ---- status building --------------------------------------------------------------- */

/* ---- verbs ------------------------------------------------------------------------- */

/* A table's shaping options, as the daemon accepts them (pgferryctl checks the same with
 * the same functions; other clients may not), t may be NULL (no options); schema.name is the
 * source table, whose name is the destination's without --target. Setup checks them against
 * the source (columns exist, replica identity). */
static bool
valid_shape(const Pgferry__State__TableSpec *t, const char *schema, const char *name, char *err,
            size_t errlen)
{
    char shown[300], e2[400], what[340];
    tablename_format(schema[0] ? schema : "public", name, shown, sizeof(shown));
    const char *target = t && t->target[0] ? t->target : name;
    if (!chnames_target_check(target, e2, sizeof(e2))) {
        snprintf(err, errlen, "%s%s: %s", t && t->target[0] ? "--target for " : "table ", shown,
                 e2);
        if (!(t && t->target[0]))
            snprintf(err + strlen(err), errlen - strlen(err),
                     "; give it another with --target %s=NAME", shown);
        return false;
    }
    if (!t)
        return true;
    snprintf(what, sizeof(what), "--partition-by for %s", shown);
    if (!chexpr_check(t->partition_by, what, err, errlen))
        return false;
    if (t->n_order_by > 64 || t->n_excluded_columns > 1600) {
        snprintf(err, errlen, "too many --order-by or --exclude-columns columns for %s", shown);
        return false;
    }
    for (size_t i = 0; i < t->n_order_by + t->n_excluded_columns; i++) {
        const char *c = i < t->n_order_by ? t->order_by[i] : t->excluded_columns[i - t->n_order_by];
        if (!c[0] || strlen(c) > TABLENAME_MAX_IDENT) {
            snprintf(err, errlen, "column names for %s must be 1 to 63 bytes", shown);
            return false;
        }
    }
    return true;
}

static const char *
table_target(const Pgferry__State__TableSpec *t)
{
    return t->target[0] ? t->target : t->name;
}

static bool
spec_sharded(const Pgferry__State__PipeSpec *sp)
{
    return sp->cluster[0] && strcmp(sp->cluster_layout, "sharded") == 0;
}

static void
table_shown(const Pgferry__State__TableSpec *t, char *out, size_t outlen)
{
    tablename_format(t->schema[0] ? t->schema : "public", t->name, out, outlen);
}

#define DERIVED_NAMES_HINT                                                                         \
    "pgferry uses T, T_live, T_resync, T_pgferry_old, T_live_pgferry_new, T_live_pgferry_old, "    \
    "T_pgferry_dnew, T_pgferry_dold (and on the sharded layout T_local, T_resync_local, "          \
    "T_pgferry_old_local) for a destination table T"

/* The destination tables of sp (its tables from first_new on are the ones being added; the
 * ones before are the pipe's already) must not share a ClickHouse name with each other, nor
 * with the tables of another pipe of this pgferryd writing into the same database on the same
 * server. False with the reason (both tables, the name, the way out) in err. */
static bool
check_destinations(supervisor_t *s, const Pgferry__State__PipeSpec *sp, size_t first_new, char *err,
                   size_t errlen)
{
    size_t n = sp->n_tables, a, b;
    char clash[CHNAMES_NAME_MAX], ta[300], tb[300];
    chnames_item_t *it = calloc(n + 1, sizeof(*it));
    if (!it) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool sharded = spec_sharded(sp);
    for (size_t i = 0; i < n; i++)
        it[i] = (chnames_item_t){table_target(sp->tables[i]), sharded, i < first_new ? 0 : 1 + i};
    int r = chnames_find_clash(it, n, &a, &b, clash, sizeof(clash));
    free(it);
    if (r < 0) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (r > 0) {
        table_shown(sp->tables[a], ta, sizeof(ta));
        table_shown(sp->tables[b], tb, sizeof(tb));
        snprintf(err, errlen,
                 "tables %.140s and %.140s would both use the destination table name %.220s in "
                 "database %.100s (" DERIVED_NAMES_HINT
                 "); give one of them another name with --target %.140s=NAME",
                 ta, tb, clash, sp->dest_database, b >= first_new ? tb : ta);
        return false;
    }
    char **names;
    size_t npipes;
    if (!store_list_names(s->store, &names, &npipes)) {
        snprintf(err, errlen, "state store error");
        return false;
    }
    bool ok = true;
    for (size_t p = 0; p < npipes && ok; p++) {
        if (strcmp(names[p], sp->name) == 0)
            continue;
        const Pgferry__State__PipeRecord *o = store_peek_pipe(s->store, names[p]);
        if (!o || !o->spec || strcmp(o->spec->dest_database, sp->dest_database) != 0 ||
            !chnames_same_server(o->spec->dest_url, sp->dest_url))
            continue;
        const Pgferry__State__PipeSpec *os = o->spec;
        size_t m = n - first_new + os->n_tables;
        it = calloc(m + 1, sizeof(*it));
        if (!it) {
            snprintf(err, errlen, "out of memory");
            ok = false;
            break;
        }
        bool osh = spec_sharded(os);
        size_t k = 0;
        for (size_t i = first_new; i < n; i++)
            it[k++] = (chnames_item_t){table_target(sp->tables[i]), sharded, 0};
        for (size_t i = 0; i < os->n_tables; i++)
            it[k++] = (chnames_item_t){table_target(os->tables[i]), osh, 1};
        r = chnames_find_clash(it, k, &a, &b, clash, sizeof(clash));
        free(it);
        if (r < 0) {
            snprintf(err, errlen, "out of memory");
            ok = false;
        } else if (r > 0) {
            table_shown(sp->tables[first_new + a], ta, sizeof(ta));
            table_shown(os->tables[b - (n - first_new)], tb, sizeof(tb));
            snprintf(err, errlen,
                     "table %.140s would use the destination table name %.220s in database "
                     "%.100s, which pipe %.64s already uses for its table %.140s on the same "
                     "ClickHouse server (" DERIVED_NAMES_HINT
                     "); give it another name with --target %.140s=NAME, or use another "
                     "--dest-database",
                     ta, clash, sp->dest_database, names[p], tb, ta);
            ok = false;
        }
    }
    store_free_names(names, npipes);
    return ok;
}

/* Copies the shaping options of from into to (fresh allocations). */
static bool
copy_shape(Pgferry__State__TableSpec *to, const Pgferry__State__TableSpec *from)
{
    to->target = strdup(from->target);
    to->partition_by = strdup(from->partition_by);
    if (!to->target || !to->partition_by)
        return false;
    if (from->n_excluded_columns) {
        to->excluded_columns = calloc(from->n_excluded_columns, sizeof(char *));
        if (!to->excluded_columns)
            return false;
        for (size_t i = 0; i < from->n_excluded_columns; i++) {
            if (!(to->excluded_columns[to->n_excluded_columns++] =
                      strdup(from->excluded_columns[i])))
                return false;
        }
    }
    if (from->n_order_by) {
        to->order_by = calloc(from->n_order_by, sizeof(char *));
        if (!to->order_by)
            return false;
        for (size_t i = 0; i < from->n_order_by; i++) {
            if (!(to->order_by[to->n_order_by++] = strdup(from->order_by[i])))
                return false;
        }
    }
    return true;
}

/* A reserved secret goes only to the endpoints the operator bound it to (secret_bind). */
static bool
control_secret_bound(const daemon_config_t *cfg, const Pgferry__State__PipeSpec *in, char *err,
                     size_t errlen)
{
    char resolved[PATH_MAX], label[400];
    const secret_bind_t *b;
    if (in->dest_password_file[0]) {
        if (!secret_file_check(cfg->secrets_dir, in->dest_password_file, resolved, sizeof(resolved),
                               err, errlen))
            return false;
        b = secret_bind_find(cfg->secret_binds, cfg->n_secret_binds, cfg->secrets_dir, resolved,
                             NULL);
        snprintf(label, sizeof(label), "--dest-password-file %.300s", in->dest_password_file);
    } else if (in->dest_password_env[0]) {
        b = secret_bind_find(cfg->secret_binds, cfg->n_secret_binds, NULL, NULL,
                             in->dest_password_env);
        snprintf(label, sizeof(label), "--dest-password-env %.300s", in->dest_password_env);
    } else {
        return true;
    }
    return secret_dest_allowed(b, label, in->dest_url, err, errlen);
}

static void
do_create(supervisor_t *s, ctl_call_t *f, Pgferry__Control__CreatePipe *c)
{
    char err[1536];
    Pgferry__State__PipeSpec *in = c->spec;
    if (!in) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, "create without a spec");
        return;
    }
    if (!valid_pipe_name(in->name, err, sizeof(err))) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
        return;
    }
    if (!in->source[0] || !in->dest_url[0]) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT,
                   "a pipe needs --source (PostgreSQL URI) and --dest (ClickHouse URL)");
        return;
    }
    if (!conninfo_check(in->source, err, sizeof(err)) ||
        !conninfo_check_files(in->source, s->cfg.secrets_dir, err, sizeof(err))) {
        /* a malformed source would only fail every worker's connect, for good */
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
        return;
    }
    if (in->n_tables == 0 || in->n_tables > CTL_MAX_TABLES) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT,
                   "a pipe needs 1 to 10000 tables");
        return;
    }
    if (in->mode > PGFERRY__STATE__PIPE_MODE__CDC_ONLY) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, "unknown pipe mode");
        return;
    }
    if (in->dest_password_file[0]) {
        char resolved[PATH_MAX];
        if (!secret_file_check(s->cfg.secrets_dir, in->dest_password_file, resolved,
                               sizeof(resolved), err, sizeof(err))) {
            ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
            return;
        }
    } else if (in->dest_password_env[0] &&
               !secret_env_check(s->cfg.secret_env_prefix, in->dest_password_env, err,
                                 sizeof(err))) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
        return;
    }
    if (!ch_url_list_check(in->dest_url, err, sizeof(err)) ||
        !control_secret_bound(&s->cfg, in, err, sizeof(err)) ||
        !chcluster_check(in->cluster, in->cluster_layout, in->zk_path, in->insert_quorum, err,
                         sizeof(err))) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
        return;
    }
    for (size_t i = 0; i < in->n_tables; i++) {
        Pgferry__State__TableSpec *t = in->tables[i];
        if (!t->name[0] || strlen(t->name) > TABLENAME_MAX_IDENT ||
            strlen(t->schema) > TABLENAME_MAX_IDENT || strlen(t->target) > 200) {
            ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT,
                       "table names must be 1 to 63 bytes");
            return;
        }
        if (!valid_shape(t, t->schema, t->name, err, sizeof(err))) {
            ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
            return;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(in->tables[j]->schema, t->schema) == 0 &&
                strcmp(in->tables[j]->name, t->name) == 0) {
                snprintf(err, sizeof(err), "table %s.%s is listed twice", t->schema, t->name);
                ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
                return;
            }
        }
    }
    Pgferry__State__PipeRecord *existing = NULL;
    if (!store_get_pipe(s->store, in->name, &existing)) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, "state store error");
        return;
    }
    if (existing) {
        pgferry__state__pipe_record__free_unpacked(existing, NULL);
        snprintf(err, sizeof(err), "a pipe named %s already exists", in->name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__ALREADY_EXISTS, err);
        return;
    }
    char **names;
    size_t npipes;
    if (!store_list_names(s->store, &names, &npipes)) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, "state store error");
        return;
    }
    store_free_names(names, npipes);
    if (npipes >= s->cfg.max_pipes) {
        snprintf(err, sizeof(err),
                 "this pgferryd already runs %zu pipe(s), its limit (max_pipes = %u); drop one "
                 "or raise max_pipes",
                 npipes, s->cfg.max_pipes);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE, err);
        return;
    }

    /* the record we store: the request's spec with defaults filled in */
    char dname[80];
    derived_name(in->name, dname, sizeof(dname));
    Pgferry__State__PipeSpec spec = *in;
    spec.base = in->base;
    spec.publication_owned = !in->publication[0];
    spec.slot_owned = !in->slot[0];
    char *pub = NULL, *slot = NULL, *db = NULL;
    pub = in->publication[0] ? strdup(in->publication) : strdup(dname);
    slot = in->slot[0] ? strdup(in->slot) : strdup(dname);
    db = strdup(in->dest_database[0] ? in->dest_database : in->name);
    if (!pub || !slot || !db) {
        free(pub);
        free(slot);
        free(db);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, "out of memory");
        return;
    }
    spec.publication = pub;
    spec.slot = slot;
    spec.dest_database = db;
    if (!valid_slot_name(spec.slot)) {
        snprintf(err, sizeof(err),
                 "slot name '%s' is not valid: use lower-case letters, digits and '_' (max 63)",
                 spec.slot);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
        goto out;
    }
    if (!check_source_names(s, &spec, err, sizeof(err))) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__ALREADY_EXISTS, err);
        goto out;
    }
    if (!check_destinations(s, &spec, 0, err, sizeof(err))) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
        goto out;
    }
    if (!spec.snapshot_workers)
        spec.snapshot_workers = s->cfg.default_snapshot_workers;
    if (!spec.snapshot_workers) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        spec.snapshot_workers = n > 0 ? (uint32_t)n : 2;
    }
    if (spec.snapshot_workers > 64) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT,
                   "snapshot workers must be 1 to 64");
        goto out;
    }
    if (!spec.rows_per_partition)
        spec.rows_per_partition = 500000;
    if (!spec.batch_max_rows)
        spec.batch_max_rows = s->cfg.batch_max_rows;
    if (!spec.batch_max_bytes)
        spec.batch_max_bytes = s->cfg.batch_max_bytes;
    if (!spec.batch_max_wait_ms)
        spec.batch_max_wait_ms = s->cfg.batch_max_wait_ms;

    Pgferry__State__PipeRecord rec = PGFERRY__STATE__PIPE_RECORD__INIT;
    rec.spec = &spec;
    rec.state = ST_PROVISIONING;
    rec.state_since_us = rec.created_us = time_now_us();
    Pgferry__State__HistoryEvent ev = PGFERRY__STATE__HISTORY_EVENT__INIT;
    ev.seq = rec.history_seq = 1;
    ev.from = ST_NONE;
    ev.to = ST_PROVISIONING;
    ev.time_us = rec.created_us;
    ev.reason = "created; validating source and destination";
    if (!store_put_pipe(s->store, &rec, &ev)) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, store_last_error(s->store));
        goto out;
    }
    log_info("pipe %s created (%zu table(s), mode %s)", spec.name, spec.n_tables,
             names_mode(spec.mode));
    sup_rt_remove(s, spec.name);
    {
        reply_t r = PGFERRY__CONTROL__REPLY__INIT;
        Pgferry__Control__PipeStatus *st = status_build(s, spec.name, DEFAULT_HISTORY);
        r.code = PGFERRY__CONTROL__ERROR_CODE__OK;
        r.message = "created";
        if (st) {
            r.payload_case = PGFERRY__CONTROL__REPLY__PAYLOAD_STATUS;
            r.status = st;
        }
        ctl_reply(f, &r);
        status_free(st);
    }
out:
    free(pub);
    free(slot);
    free(db);
}

static void
do_get(supervisor_t *s, ctl_call_t *f, Pgferry__Control__GetPipe *g)
{
    size_t limit = g->history_limit ? g->history_limit : DEFAULT_HISTORY;
    if (limit > 1000)
        limit = 1000;
    Pgferry__Control__PipeStatus *st = status_build(s, g->name, limit);
    if (!st) {
        char err[200];
        snprintf(err, sizeof(err), "no pipe named %.64s", g->name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__NOT_FOUND, err);
        return;
    }
    reply_t r = PGFERRY__CONTROL__REPLY__INIT;
    r.payload_case = PGFERRY__CONTROL__REPLY__PAYLOAD_STATUS;
    r.status = st;
    ctl_reply(f, &r);
    status_free(st);
}

static void
do_list(supervisor_t *s, ctl_call_t *f)
{
    char **names;
    size_t n;
    if (!store_list_names(s->store, &names, &n)) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, "state store error");
        return;
    }
    Pgferry__Control__PipeList list = PGFERRY__CONTROL__PIPE_LIST__INIT;
    list.pipes = calloc(n ? n : 1, sizeof(*list.pipes));
    for (size_t i = 0; list.pipes && i < n; i++) {
        Pgferry__Control__PipeStatus *st = status_build(s, names[i], 0);
        if (st)
            list.pipes[list.n_pipes++] = st;
    }
    reply_t r = PGFERRY__CONTROL__REPLY__INIT;
    r.payload_case = PGFERRY__CONTROL__REPLY__PAYLOAD_LIST;
    r.list = &list;
    ctl_reply(f, &r);
    for (size_t i = 0; i < list.n_pipes; i++)
        status_free(list.pipes[i]);
    free(list.pipes);
    store_free_names(names, n);
}

void
control_reply_verify(supervisor_t *s, pipe_rt_t *rt, bool ok, bool match, const char *text)
{
    reply_t r = PGFERRY__CONTROL__REPLY__INIT;
    Pgferry__Control__VerifyReport vr = PGFERRY__CONTROL__VERIFY_REPORT__INIT;
    r.version = IPC_VERSION;
    if (ok) {
        vr.match = match;
        vr.text = (char *)text;
        r.payload_case = PGFERRY__CONTROL__REPLY__PAYLOAD_VERIFY;
        r.verify = &vr;
        r.message = match ? "match" : "mismatch";
    } else {
        r.code = PGFERRY__CONTROL__ERROR_CODE__INTERNAL;
        r.message = (char *)text;
    }
    (void)s;
    ctl_reply_later(&rt->verify_reply, &r);
}

/* verify: runs a verify worker; the reply is sent when it reports (control_reply_verify) */
static void
do_verify(supervisor_t *s, ctl_call_t *f, Pgferry__Control__VerifyPipe *v)
{
    char err[512];
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, v->name, &rec) || !rec) {
        snprintf(err, sizeof(err), "no pipe named %.64s", v->name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__NOT_FOUND, err);
        return;
    }
    pipe_state_t st = rec->state == ST_DEGRADED ? rec->prev_state : rec->state;
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
    if (st != ST_RUNNING && st != ST_PAUSED && st != ST_COMPLETED) {
        snprintf(err, sizeof(err),
                 "verify compares loaded tables: the pipe must be Running, Paused or Completed "
                 "(it is %s)",
                 names_state(st));
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE, err);
        return;
    }
    pipe_rt_t *rt = sup_rt(s, v->name, true);
    if (!rt) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, "out of memory");
        return;
    }
    if (rt->verify_reply.npre > 0) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE,
                   "a verify of this pipe is already running");
        return;
    }
    snprintf(rt->verify_table, sizeof(rt->verify_table), "%s", v->table);
    if (!sup_spawn_worker(s, v->name, ROLE_VERIFY)) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, "cannot start a verify worker");
        return;
    }
    ctl_defer(f, &rt->verify_reply);
}

static bool
spec_has_table(const Pgferry__State__PipeSpec *sp, const tablename_t *t, size_t *idx)
{
    for (size_t i = 0; i < sp->n_tables; i++) {
        const char *schema = sp->tables[i]->schema[0] ? sp->tables[i]->schema : "public";
        if (strcmp(schema, t->schema) == 0 && strcmp(sp->tables[i]->name, t->table) == 0) {
            if (idx)
                *idx = i;
            return true;
        }
    }
    return false;
}

/* Parses the table names of add/remove; false with err set. */
static bool
parse_tables(char **in, size_t n, tablename_t **out, char *err, size_t errlen)
{
    if (n == 0 || n > CTL_MAX_TABLES) {
        snprintf(err, errlen, "name 1 to 10000 tables");
        return false;
    }
    tablename_t *t = calloc(n, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!tablename_parse(in[i], &t[i], err, errlen)) {
            free(t);
            return false;
        }
        if (!t[i].schema[0])
            snprintf(t[i].schema, sizeof(t[i].schema), "public");
        for (size_t k = 0; k < i; k++) {
            if (strcmp(t[k].schema, t[i].schema) == 0 && strcmp(t[k].table, t[i].table) == 0) {
                snprintf(err, errlen, "table %.200s named twice", in[i]);
                free(t);
                return false;
            }
        }
    }
    *out = t;
    return true;
}

/* add-tables: the tables join the pipe; Snapshot sets up and loads only them (CDC of the other
 * tables pauses meanwhile: the slot keeps their changes), then Running. */
static void
do_add_tables(supervisor_t *s, ctl_call_t *f, Pgferry__Control__AddTables *a)
{
    char err[1536];
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, a->name, &rec) || !rec) {
        snprintf(err, sizeof(err), "no pipe named %.64s", a->name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__NOT_FOUND, err);
        return;
    }
    tablename_t *t = NULL;
    if (!parse_tables(a->tables, a->n_tables, &t, err, sizeof(err))) {
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
        return;
    }
    Pgferry__State__PipeSpec *sp = rec->spec;
    char added[2048] = "";
    for (size_t i = 0; i < a->n_tables; i++) {
        char shown[300];
        tablename_format(t[i].schema, t[i].table, shown, sizeof(shown));
        if (spec_has_table(sp, &t[i], NULL)) {
            snprintf(err, sizeof(err), "table %s is already in pipe %s", shown, a->name);
            goto refuse;
        }
        if (!valid_shape(i < a->n_shaped ? a->shaped[i] : NULL, t[i].schema, t[i].table, err,
                         sizeof(err)))
            goto refuse;
        /* a destination name the pipe already uses (a table renamed at the source keeps its
         * destination, and a new table under its old name would default to it) */
        const char *tg =
            i < a->n_shaped && a->shaped[i]->target[0] ? a->shaped[i]->target : t[i].table;
        for (size_t k = 0; k < sp->n_tables; k++) {
            const Pgferry__State__TableSpec *ts = sp->tables[k];
            if (strcmp(ts->target[0] ? ts->target : ts->name, tg) != 0)
                continue;
            char owner[300];
            tablename_format(ts->schema[0] ? ts->schema : "public", ts->name, owner, sizeof(owner));
            snprintf(err, sizeof(err),
                     "destination table %.64s is already table %.100s's in pipe %.64s; give "
                     "%.80s another one (add-tables --target %.80s=NAME)",
                     tg, owner, a->name, shown, shown);
            goto refuse;
        }
        size_t l = strlen(added);
        snprintf(added + l, sizeof(added) - l, "%s%s", l ? ", " : "", shown);
    }
    lifecycle_pipe_t lp = {rec->state, rec->prev_state, sp->mode, rec->resyncing};
    if (sp->mode == PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY) {
        snprintf(err, sizeof(err),
                 "a snapshot-only pipe does not take more tables; create "
                 "another pipe");
        goto refuse;
    }
    if (!lifecycle_apply(&lp, LC_CMD_ADD_TABLES, err, sizeof(err))) {
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        free(t);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE, err);
        return;
    }
    Pgferry__State__TableSpec **nt =
        realloc(sp->tables, (sp->n_tables + a->n_tables) * sizeof(*nt));
    if (!nt) {
        snprintf(err, sizeof(err), "out of memory");
        goto refuse;
    }
    sp->tables = nt;
    size_t first_new = sp->n_tables;
    for (size_t i = 0; i < a->n_tables; i++) {
        Pgferry__State__TableSpec *ts = calloc(1, sizeof(*ts));
        if (!ts)
            break;
        pgferry__state__table_spec__init(ts);
        ts->schema = strdup(t[i].schema);
        ts->name = strdup(t[i].table);
        sp->tables[sp->n_tables++] = ts;
        /* shaped[i] is table i's options (pgferryctl sends one per table, in order) */
        if (i < a->n_shaped && !copy_shape(ts, a->shaped[i])) {
            snprintf(err, sizeof(err), "out of memory");
            goto refuse;
        }
    }
    if (sp->n_tables < first_new + a->n_tables) {
        snprintf(err, sizeof(err), "out of memory");
        goto refuse;
    }
    if (!check_destinations(s, sp, first_new, err, sizeof(err)))
        goto refuse;
    char reason[2200];
    snprintf(reason, sizeof(reason),
             "table(s) %s added by the operator: setting up and loading them", added);
    if (!sup_transition(s, rec, LC_CMD_ADD_TABLES, reason, err, sizeof(err)))
        goto refuse;
    log_info("pipe %s: %s", a->name, reason);
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
    free(t);
    reply_t r = PGFERRY__CONTROL__REPLY__INIT;
    r.message = "adding: the pipe sets up and loads the new tables, then returns to Running";
    ctl_reply(f, &r);
    return;
refuse:
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
    free(t);
    ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
}

/* remove-tables: Modifying while the tables leave the publication (and with the flag their
 * destination tables go), then back to the state before. */
static void
do_remove_tables(supervisor_t *s, ctl_call_t *f, Pgferry__Control__RemoveTables *m)
{
    char err[512];
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, m->name, &rec) || !rec) {
        snprintf(err, sizeof(err), "no pipe named %.64s", m->name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__NOT_FOUND, err);
        return;
    }
    tablename_t *t = NULL;
    size_t *idx = NULL;
    Pgferry__State__PipeSpec *sp = rec->spec;
    Pgferry__Control__ErrorCode code = PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT;
    if (!parse_tables(m->tables, m->n_tables, &t, err, sizeof(err)))
        goto refuse;
    idx = calloc(m->n_tables, sizeof(*idx));
    if (!idx) {
        snprintf(err, sizeof(err), "out of memory");
        goto refuse;
    }
    for (size_t i = 0; i < m->n_tables; i++) {
        if (!spec_has_table(sp, &t[i], &idx[i])) {
            char shown[300];
            tablename_format(t[i].schema, t[i].table, shown, sizeof(shown));
            snprintf(err, sizeof(err), "table %s is not in pipe %s", shown, m->name);
            goto refuse;
        }
    }
    if (m->n_tables >= sp->n_tables) {
        snprintf(err, sizeof(err), "that would leave pipe %s without tables; drop the pipe instead",
                 m->name);
        goto refuse;
    }
    pipe_rt_t *prt = sup_rt(s, m->name, false);
    if (prt && prt->teardown_reply.npre > 0) {
        snprintf(err, sizeof(err), "pipe %s is removing tables already; wait for it", m->name);
        code = PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE;
        goto refuse;
    }
    char reason[600];
    snprintf(reason, sizeof(reason),
             "removing %zu table(s) at the operator's request: workers stop, then a teardown "
             "worker takes them out of the publication%s",
             m->n_tables, m->drop_destination ? " and drops their destination tables" : "");
    /* the tables to remove are recorded (a restarted pgferryd finishes the job); reconcile
     * stops every worker (nothing streams while the publication changes) and then starts a
     * teardown worker; its Done ends Modifying and answers this request */
    rec->removing = calloc(m->n_tables, sizeof(*rec->removing));
    if (!rec->removing) {
        snprintf(err, sizeof(err), "out of memory");
        code = PGFERRY__CONTROL__ERROR_CODE__INTERNAL;
        goto refuse;
    }
    for (size_t i = 0; i < m->n_tables; i++) {
        Pgferry__State__TableRef *ref = malloc(sizeof(*ref));
        const Pgferry__State__TableSpec *ts = sp->tables[idx[i]];
        char *sc = strdup(ts->schema[0] ? ts->schema : "public"), *nm = strdup(ts->name);
        if (!ref || !sc || !nm) {
            free(ref);
            free(sc);
            free(nm);
            snprintf(err, sizeof(err), "out of memory");
            code = PGFERRY__CONTROL__ERROR_CODE__INTERNAL;
            goto refuse;
        }
        pgferry__state__table_ref__init(ref);
        ref->schema = sc;
        ref->name = nm;
        rec->removing[rec->n_removing++] = ref;
    }
    rec->drop_destination = m->drop_destination;
    if (!sup_transition(s, rec, LC_CMD_REMOVE_TABLES, reason, err, sizeof(err))) {
        code = PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE;
        goto refuse;
    }
    sup_stop_workers(s, m->name, "tables leave the pipe");
    pipe_rt_t *rt = sup_rt(s, m->name, true);
    if (rt)
        ctl_defer(f, &rt->teardown_reply);
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
    free(t);
    free(idx);
    return;
refuse:
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
    free(t);
    free(idx);
    ctl_refuse(f, code, err);
}

/* pause and resume: a lifecycle command; the reconcile loop stops or starts the workers */
static void
do_command(supervisor_t *s, ctl_call_t *f, const char *name, lifecycle_event_t ev,
           const char *reason, const char *done)
{
    char err[512];
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, name, &rec) || !rec) {
        snprintf(err, sizeof(err), "no pipe named %.64s", name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__NOT_FOUND, err);
        return;
    }
    if (!sup_transition(s, rec, ev, reason, err, sizeof(err))) {
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE, err);
        return;
    }
    if (ev == LC_CMD_RESYNC) {
        rec->resync_ready = false;
        rec->consecutive_failures = 0;
        store_put_pipe(s->store, rec, NULL);
    }
    if (ev == LC_CMD_RESUME || ev == LC_CMD_RESYNC) {
        pipe_rt_t *rt = sup_rt(s, name, false);
        if (rt)
            rt->restart_at_ms = rt->restart_at_us = 0;
    }
    log_info("pipe %s: %s", name, reason);
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
    reply_t r = PGFERRY__CONTROL__REPLY__INIT;
    r.message = (char *)done;
    ctl_reply(f, &r);
}

/* set: settings of an existing pipe. The CDC worker in flight acknowledges its batch and
 * stops; the next one streams from the acknowledged position with the new limits. A load in
 * flight runs its remaining ranges with the new worker count. */
static void
do_set(supervisor_t *s, ctl_call_t *f, Pgferry__Control__SetPipe *m)
{
    static const struct {
        const char *key;
        unsigned long long lo, hi;
    } known[] = {{"batch_max_rows", 1, 10000000},
                 {"batch_max_bytes", 65536, 1073741824},
                 {"batch_max_wait_ms", 1, 600000},
                 {"snapshot_workers", 1, 64}};
    char err[512];
    if (m->n_settings == 0 || m->n_settings > 16) {
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT,
                   "set takes 1 to 16 KEY=VALUE settings: batch_max_rows, batch_max_bytes, "
                   "batch_max_wait_ms, snapshot_workers");
        return;
    }
    unsigned long long val[4];
    bool given[4] = {false, false, false, false};
    for (size_t i = 0; i < m->n_settings; i++) {
        const char *kv = m->settings[i];
        const char *eq = strchr(kv, '=');
        int k = -1;
        for (int j = 0; eq && j < 4; j++) {
            if (strlen(known[j].key) == (size_t)(eq - kv) &&
                strncmp(kv, known[j].key, (size_t)(eq - kv)) == 0)
                k = j;
        }
        if (k < 0) {
            snprintf(err, sizeof(err),
                     "unknown setting '%.*s': set takes batch_max_rows, batch_max_bytes, "
                     "batch_max_wait_ms, snapshot_workers (as KEY=VALUE)",
                     (int)(eq ? eq - kv : (ptrdiff_t)strnlen(kv, 64)), kv);
            ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
            return;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(eq + 1, &end, 10);
        if (errno || end == eq + 1 || *end || eq[1] == '-' || v < known[k].lo || v > known[k].hi) {
            snprintf(err, sizeof(err), "%s takes %llu to %llu, not '%.40s'", known[k].key,
                     known[k].lo, known[k].hi, eq + 1);
            ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_ARGUMENT, err);
            return;
        }
        val[k] = v;
        given[k] = true;
    }
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, m->name, &rec) || !rec) {
        snprintf(err, sizeof(err), "no pipe named %.64s", m->name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__NOT_FOUND, err);
        return;
    }
    if (rec->state == ST_COMPLETED || rec->state == ST_PROVISIONING) {
        snprintf(err, sizeof(err), "pipe %s is %s: nothing to set", m->name,
                 names_state(rec->state));
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE, err);
        return;
    }
    Pgferry__State__PipeSpec *sp = rec->spec;
    char reason[600] = "settings changed by the operator:";
    size_t l = strlen(reason);
    uint64_t *fields[4] = {NULL, &sp->batch_max_bytes, NULL, NULL};
    uint32_t *fields32[4] = {&sp->batch_max_rows, NULL, &sp->batch_max_wait_ms,
                             &sp->snapshot_workers};
    for (int k = 0; k < 4; k++) {
        if (!given[k])
            continue;
        unsigned long long old = fields[k] ? *fields[k] : *fields32[k];
        if (fields[k])
            *fields[k] = val[k];
        else
            *fields32[k] = (uint32_t)val[k];
        l += (size_t)snprintf(reason + l, sizeof(reason) - l, " %s=%llu (was %llu)", known[k].key,
                              val[k], old);
        if (l >= sizeof(reason))
            l = sizeof(reason) - 1;
    }
    if (!sup_note(s, rec, reason)) {
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, store_last_error(s->store));
        return;
    }
    log_info("pipe %s: %s", m->name, reason);
    /* the CDC worker takes the limits at its start: it acknowledges its batch and stops,
     * and the next one streams from there */
    if (given[0] || given[1] || given[2])
        sup_stop_role(s, m->name, ROLE_CDC, "settings changed: restarting with the new limits");
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
    reply_t r = PGFERRY__CONTROL__REPLY__INIT;
    char msg[700];
    snprintf(msg, sizeof(msg), "%s", reason + strlen("settings changed by the operator: "));
    r.message = msg;
    ctl_reply(f, &r);
}

static void
do_drop(supervisor_t *s, ctl_call_t *f, Pgferry__Control__DropPipe *d)
{
    char err[512];
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s->store, d->name, &rec) || !rec) {
        snprintf(err, sizeof(err), "no pipe named %.64s", d->name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__NOT_FOUND, err);
        return;
    }
    lifecycle_pipe_t lp = {rec->state, rec->prev_state, rec->spec->mode, rec->resyncing};
    pipe_rt_t *rt = sup_rt(s, d->name, true);
    bool removing = rt && rt->teardown_reply.npre > 0;
    if (removing)
        snprintf(err, sizeof(err), "pipe %s is removing tables; drop it when that is done",
                 d->name);
    if (removing || !lifecycle_apply(&lp, LC_CMD_DROP, err, sizeof(err))) {
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE, err);
        return;
    }
    /* recorded first (a restarted pgferryd finishes the drop); reconcile stops the workers
     * and, once they are all gone, starts the teardown worker, whose Done deletes the record
     * and answers this request. pgferryd itself never waits on a database. */
    rec->dropping = true;
    rec->drop_destination = d->drop_destination;
    char reason[300];
    snprintf(reason, sizeof(reason),
             "dropping at the operator's request: workers stop, then a teardown worker removes "
             "the pipe's slot and publication%s",
             d->drop_destination ? " and its destination tables" : "");
    if (!sup_note(s, rec, reason)) {
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, store_last_error(s->store));
        return;
    }
    log_info("pipe %s: %s", d->name, reason);
    sup_stop_workers(s, d->name, "pipe dropped");
    if (rt)
        ctl_defer(f, &rt->teardown_reply);
    pgferry__state__pipe_record__free_unpacked(rec, NULL);
}

Pgferry__State__TableDef **
control_teardown_defs(const Pgferry__State__PipeRecord *rec, size_t *n)
{
    *n = 0;
    Pgferry__State__TableDef **out = calloc(rec->n_table_defs + 1, sizeof(*out));
    for (size_t d = 0; out && d < rec->n_table_defs; d++) {
        bool take = rec->dropping;
        for (size_t r = 0; !take && r < rec->n_removing; r++)
            take = strcmp(rec->table_defs[d]->schema, rec->removing[r]->schema) == 0 &&
                   strcmp(rec->table_defs[d]->name, rec->removing[r]->name) == 0;
        if (take)
            out[(*n)++] = rec->table_defs[d];
    }
    return out;
}

/* remove-tables finished: the record forgets the tables (spec, definitions, statistics) */
static void
forget_removed(Pgferry__State__PipeRecord *rec)
{
    Pgferry__State__PipeSpec *sp = rec->spec;
    size_t k = 0;
    for (size_t i = 0; i < sp->n_tables; i++) {
        Pgferry__State__TableSpec *ts = sp->tables[i];
        const char *schema = ts->schema[0] ? ts->schema : "public";
        bool rm = false;
        for (size_t r = 0; !rm && r < rec->n_removing; r++)
            rm = strcmp(schema, rec->removing[r]->schema) == 0 &&
                 strcmp(ts->name, rec->removing[r]->name) == 0;
        if (rm)
            pgferry__state__table_spec__free_unpacked(ts, NULL);
        else
            sp->tables[k++] = ts;
    }
    sp->n_tables = k;
    k = 0;
    for (size_t d = 0; d < rec->n_table_defs; d++) {
        Pgferry__State__TableDef *td = rec->table_defs[d];
        bool rm = false;
        for (size_t r = 0; !rm && r < rec->n_removing; r++)
            rm = strcmp(td->schema, rec->removing[r]->schema) == 0 &&
                 strcmp(td->name, rec->removing[r]->name) == 0;
        if (!rm) {
            rec->table_defs[k++] = td;
            continue;
        }
        for (size_t st = 0; st < rec->n_table_stats; st++) {
            if (rec->table_stats[st] && strcmp(rec->table_stats[st]->target, td->target) == 0) {
                pgferry__state__table_stats__free_unpacked(rec->table_stats[st], NULL);
                rec->table_stats[st] = NULL;
            }
        }
        pgferry__state__table_def__free_unpacked(td, NULL);
    }
    rec->n_table_defs = k;
    k = 0;
    for (size_t st = 0; st < rec->n_table_stats; st++) {
        if (rec->table_stats[st])
            rec->table_stats[k++] = rec->table_stats[st];
    }
    rec->n_table_stats = k;
    for (size_t r = 0; r < rec->n_removing; r++)
        pgferry__state__table_ref__free_unpacked(rec->removing[r], NULL);
    rec->n_removing = 0;
    rec->drop_destination = false;
}

void
control_teardown_done(supervisor_t *s, Pgferry__State__PipeRecord *rec, const char *report,
                      bool leftovers)
{
    char err[512], name[PROC_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", rec->spec->name);
    pipe_rt_t *rt = sup_rt(s, name, false);
    reply_t r = PGFERRY__CONTROL__REPLY__INIT;
    char msg[4300];
    if (rec->dropping) {
        log_info("pipe %s: drop: %s", name, report);
        snprintf(msg, sizeof(msg), "%s%s", leftovers ? "dropped with leftovers: " : "", report);
        if (!store_delete_pipe(s->store, name)) {
            r.code = PGFERRY__CONTROL__ERROR_CODE__INTERNAL;
            snprintf(msg, sizeof(msg), "%s", store_last_error(s->store));
        } else {
            log_info("pipe %s dropped (was %s)", name, names_state(rec->state));
        }
        r.message = msg;
        if (rt)
            ctl_reply_later(&rt->teardown_reply, &r);
        sup_rt_remove(s, name);
        return;
    }
    forget_removed(rec);
    snprintf(msg, sizeof(msg), "%s%s", leftovers ? "with leftovers: " : "", report);
    if (!sup_transition(s, rec, LC_EV_MODIFIED, msg, err, sizeof(err)))
        log_warn("pipe %s: %s", name, err);
    log_info("pipe %s: tables removed: %s", name, report);
    r.message = msg;
    if (rt)
        ctl_reply_later(&rt->teardown_reply, &r);
}

/* A pipe being dropped takes no other command. */
static bool
refuse_if_dropping(supervisor_t *s, ctl_call_t *f, const char *name)
{
    const Pgferry__State__PipeRecord *rec = name ? store_peek_pipe(s->store, name) : NULL;
    if (!rec)
        return false; /* the verb itself says "no pipe named" */
    if (rec->dropping) {
        char err[300];
        snprintf(err, sizeof(err),
                 "pipe %.64s is being dropped (its teardown worker removes what it created)", name);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INVALID_STATE, err);
    }
    return rec->dropping;
}

void
control_dispatch(supervisor_t *s, ctl_call_t *f, Pgferry__Control__Request *req)
{
    const char *target = NULL;
    switch (req->body_case) {
    case PGFERRY__CONTROL__REQUEST__BODY_DROP:
        target = req->drop->name;
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_ADD_TABLES:
        target = req->add_tables->name;
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_REMOVE_TABLES:
        target = req->remove_tables->name;
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_VERIFY:
        target = req->verify->name;
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_SET:
        target = req->set->name;
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_PAUSE:
        target = req->pause->name;
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_RESYNC:
        target = req->resync->name;
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_RESUME:
        target = req->resume->name;
        break;
    default:
        break;
    }
    if (target && refuse_if_dropping(s, f, target))
        return;
    switch (req->body_case) {
    case PGFERRY__CONTROL__REQUEST__BODY_CREATE:
        do_create(s, f, req->create);
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_LIST:
        do_list(s, f);
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_GET:
        do_get(s, f, req->get);
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_DROP:
        do_drop(s, f, req->drop);
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_METRICS: {
        char *text = metrics_render(s);
        if (!text) {
            ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__INTERNAL, "cannot render metrics");
            break;
        }
        reply_t r = PGFERRY__CONTROL__REPLY__INIT;
        r.message = text;
        ctl_reply(f, &r);
        free(text);
        break;
    }
    case PGFERRY__CONTROL__REQUEST__BODY_ADD_TABLES:
        do_add_tables(s, f, req->add_tables);
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_REMOVE_TABLES:
        do_remove_tables(s, f, req->remove_tables);
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_VERIFY:
        do_verify(s, f, req->verify);
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_SET:
        do_set(s, f, req->set);
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_PAUSE:
        do_command(s, f, req->pause->name, LC_CMD_PAUSE, "paused by the operator",
                   "pausing: the CDC worker finishes its batch, acknowledges it and stops");
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_RESYNC:
        do_command(s, f, req->resync->name, LC_CMD_RESYNC,
                   "resync requested by the operator: every table loads again into "
                   "<table>_resync, then takes the old one's place",
                   "resyncing: loading every table again next to the current data");
        break;
    case PGFERRY__CONTROL__REQUEST__BODY_RESUME:
        do_command(s, f, req->resume->name, LC_CMD_RESUME, "resumed by the operator",
                   "resumed: streaming from where the pipe paused");
        break;
    case PGFERRY__CONTROL__REQUEST__BODY__NOT_SET:
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__BAD_REQUEST,
                   "bad request: empty or unknown request type");
        break;
    default: {
        char err[160];
        snprintf(err, sizeof(err), "request type %d is not supported by this pgferryd version",
                 (int)req->body_case);
        ctl_refuse(f, PGFERRY__CONTROL__ERROR_CODE__BAD_REQUEST, err);
    }
    }
}
