/* render: formatting only. */
#include "render.h"
#include "chcluster.h"
#include "names.h"
#include "tablename.h"
#include "timeutil.h"

#include <string.h>

static void
table_name(const Pgferry__State__TableSpec *t, char *out, size_t outlen)
{
    tablename_format(t->schema[0] ? t->schema : "public", t->name, out, outlen);
}

/* snapshot progress of the recorded table d, or NULL when no load runs */
static const Pgferry__Control__TableProgress *
table_progress(const Pgferry__Control__PipeStatus *st, const Pgferry__State__TableDef *d)
{
    for (size_t i = 0; d && i < st->n_table_progress; i++) {
        uint32_t k = st->table_progress[i]->table_index;
        if (k < st->record->n_table_defs && st->record->table_defs[k] == d)
            return st->table_progress[i];
    }
    return NULL;
}

/* the definition Setup recorded for t, or NULL before Setup */
static const Pgferry__State__TableDef *
table_def(const Pgferry__State__PipeRecord *r, const Pgferry__State__TableSpec *t)
{
    const char *schema = t->schema[0] ? t->schema : "public";
    for (size_t i = 0; i < r->n_table_defs; i++) {
        if (strcmp(r->table_defs[i]->schema, schema) == 0 &&
            strcmp(r->table_defs[i]->name, t->name) == 0)
            return r->table_defs[i];
    }
    return NULL;
}

static const Pgferry__State__TableStats *
table_stats(const Pgferry__State__PipeRecord *r, const char *target)
{
    for (size_t i = 0; i < r->n_table_stats; i++) {
        if (strcmp(r->table_stats[i]->target, target) == 0)
            return r->table_stats[i];
    }
    return NULL;
}

void
render_status_text(FILE *out, const Pgferry__Control__PipeStatus *st, int64_t now_us)
{
    const Pgferry__State__PipeRecord *r = st->record;
    const Pgferry__State__PipeSpec *sp = r->spec;
    char ts[40], dur[32];
    time_format_us(r->state_since_us, ts, sizeof(ts));
    time_format_duration(now_us - r->state_since_us, dur, sizeof(dur));
    fprintf(out, "pipe         %s\n", sp->name);
    fprintf(out, "state        %s since %s (%s)", names_state(r->state), ts, dur);
    if (r->state == PGFERRY__STATE__PIPE_STATE__DEGRADED)
        fprintf(out, ", retrying %s", names_state(r->prev_state));
    if (r->dropping)
        fprintf(out,
                "\ndropping     workers stop, then a teardown worker removes the slot and "
                "publication%s",
                r->drop_destination ? " and the destination tables" : "");
    else if (r->n_removing > 0)
        fprintf(out, "\nremoving     %zu table(s)%s", r->n_removing,
                r->drop_destination ? " and their destination tables" : "");
    fprintf(out, "\nmode         %s%s\n", names_mode(sp->mode),
            sp->numeric_text ? " (numeric(p,s) as exact text)" : "");
    fprintf(out, "source       %s%s%s%s\n", sp->source, r->source_version[0] ? "  (" : "",
            r->source_version, r->source_version[0] ? ")" : "");
    if (r->source_server[0])
        fprintf(out, "streams from %s\n", r->source_server);
    fprintf(out, "destination  %s database %s%s%s%s\n", sp->dest_url, sp->dest_database,
            r->dest_version[0] ? "  (" : "", r->dest_version, r->dest_version[0] ? ")" : "");
    if (sp->cluster[0]) {
        fprintf(out, "cluster      %s, layout %s", sp->cluster,
                sp->cluster_layout[0] ? sp->cluster_layout : "replicated");
        if (sp->insert_quorum > 1)
            fprintf(out, ", insert_quorum %u", sp->insert_quorum);
        fprintf(out, "\n");
    }
    for (size_t i = 0; i < sp->n_tables; i++) {
        char tn[300];
        table_name(sp->tables[i], tn, sizeof(tn));
        fprintf(out, "%s%s", i ? "             " : "tables       ", tn);
        const Pgferry__State__TableDef *d = table_def(r, sp->tables[i]);
        if (d) {
            fprintf(out, " -> %s.%s (%zu columns, key", sp->dest_database, d->target, d->n_columns);
            for (uint32_t k = 1; k <= d->n_columns; k++) {
                for (size_t c = 0; c < d->n_columns; c++) {
                    if (d->columns[c]->key_position == k)
                        fprintf(out, "%s%s", k == 1 ? " " : ", ", d->columns[c]->name);
                }
            }
            fprintf(out, ")");
            if (d->partition_by && d->partition_by[0])
                fprintf(out, ", partitioned by (%s)", d->partition_by);
            if (d->row_filter && d->row_filter[0])
                fprintf(out, "\n               rows where %s (publication's row filter)",
                        d->row_filter);
            for (size_t c = 0; c < d->n_skipped_columns; c++)
                fprintf(out, "%s%s (%s)",
                        c ? ", " : "\n               left out: ", d->skipped_columns[c]->name,
                        d->skipped_columns[c]->reason);
            const Pgferry__Control__TableProgress *tp = table_progress(st, d);
            if (tp)
                fprintf(out, ", %u of %u ranges loaded, %llu rows", tp->ranges_done,
                        tp->ranges_total, (unsigned long long)tp->rows);
            const Pgferry__State__TableStats *ts = table_stats(r, d->target);
            if (ts) {
                fprintf(out,
                        "\n               snapshot %llu rows (%.1f MB); cdc %llu ins, %llu upd, "
                        "%llu del",
                        (unsigned long long)ts->snapshot_rows,
                        (double)ts->snapshot_bytes / 1048576.0, (unsigned long long)ts->inserts,
                        (unsigned long long)ts->updates, (unsigned long long)ts->deletes);
                if (ts->last_applied_us) {
                    char la[40];
                    time_format_us(ts->last_applied_us, la, sizeof(la));
                    fprintf(out, ", last applied %s", la);
                }
            }
        }
        fprintf(out, "\n");
    }
    fprintf(out,
            "settings     snapshot_workers %u, batch_max_rows %u, batch_max_bytes %llu, "
            "batch_max_wait_ms %u\n",
            sp->snapshot_workers, sp->batch_max_rows, (unsigned long long)sp->batch_max_bytes,
            sp->batch_max_wait_ms);
    if (sp->mode != PGFERRY__STATE__PIPE_MODE__SNAPSHOT_ONLY)
        fprintf(out, "slot         %s (%s), publication %s (%s)\n", sp->slot,
                sp->slot_owned ? "owned by the pipe" : "user's", sp->publication,
                sp->publication_owned ? "owned by the pipe" : "user's");
    if (r->confirmed_lsn[0] || r->cdc_transactions) {
        fprintf(out, "cdc          confirmed %s", r->confirmed_lsn[0] ? r->confirmed_lsn : "-");
        if (r->last_commit_time_us) {
            time_format_us(r->last_commit_time_us, ts, sizeof(ts));
            fprintf(out, ", last applied commit from %s", ts);
        }
        fprintf(out,
                "\n             %llu inserts, %llu updates, %llu deletes in %llu transactions; "
                "%.1f changes/s over the last minute\n",
                (unsigned long long)r->cdc_inserts, (unsigned long long)r->cdc_updates,
                (unsigned long long)r->cdc_deletes, (unsigned long long)r->cdc_transactions,
                st->rows_per_second);
    }
    if (st->slot) {
        fprintf(out, "lag          %.1f MB behind the source (%s)",
                (double)st->slot->lag_bytes / 1048576.0, st->slot->current_lsn);
        if (st->lag_seconds >= 0)
            fprintf(out, ", %.1f s", st->lag_seconds);
        time_format_duration(now_us - st->slot_info_us, dur, sizeof(dur));
        fprintf(out, "; slot retains %.1f MB of WAL (wal_status %s) [%s ago]\n",
                (double)st->slot->retained_bytes / 1048576.0,
                st->slot->wal_status[0] ? st->slot->wal_status : "?", dur);
        if (st->slot->failover_known)
            fprintf(out, "failover     %s\n",
                    st->slot->failover > 0
                        ? "the slot is a failover slot: a standby that synchronizes it "
                          "(sync_replication_slots) can be promoted and the pipe goes on"
                    : st->slot->failover == 0
                        ? "the slot is not a failover slot: after a source failover the pipe "
                          "needs a resync"
                        : "the source has no failover slots (PostgreSQL 17 has): after a "
                          "source failover the pipe needs a resync");
    }
    if (st->warning[0])
        fprintf(out, "WARNING      %s\n", st->warning);
    if (st->snapshot_ranges_total > 0)
        fprintf(out, "snapshot     %u of %u ranges loaded, %llu rows in them\n",
                st->snapshot_ranges_done, st->snapshot_ranges_total,
                (unsigned long long)st->snapshot_rows);
    if (st->n_workers == 0) {
        fprintf(out, "workers      none\n");
    } else {
        for (size_t i = 0; i < st->n_workers; i++) {
            time_format_duration(now_us - st->workers[i]->started_us, dur, sizeof(dur));
            fprintf(out, "%s %s pid %d, up %s%s%s\n", i ? "            " : "workers     ",
                    st->workers[i]->role, st->workers[i]->pid, dur,
                    st->workers[i]->activity[0] ? ": " : "", st->workers[i]->activity);
        }
    }
    if (r->worker_restarts || r->consecutive_failures) {
        fprintf(out, "restarts     %u in total, %u in a row without progress", r->worker_restarts,
                r->consecutive_failures);
        if (st->next_restart_us > 0) {
            int64_t left = st->next_restart_us - now_us;
            fprintf(out, "; next in %.1f s", left > 0 ? (double)left / 1e6 : 0.0);
        }
        fprintf(out, "\n");
    }
    if (r->last_error[0]) {
        time_format_us(r->last_error_us, ts, sizeof(ts));
        fprintf(out, "last error   %s at %s: %s\n", names_error_class(r->last_error_class), ts,
                r->last_error);
    }
    if (st->n_history > 0) {
        fprintf(out, "\nhistory\n  %-21s %-13s %-13s %s\n", "TIME", "FROM", "TO", "REASON");
        for (size_t i = 0; i < st->n_history; i++) {
            const Pgferry__State__HistoryEvent *e = st->history[i];
            time_format_us(e->time_us, ts, sizeof(ts));
            fprintf(out, "  %-21s %-13s %-13s %s\n", ts, e->from ? names_state(e->from) : "(new)",
                    names_state(e->to), e->reason);
        }
    }
}

void
render_status_json(json_t *j, const Pgferry__Control__PipeStatus *st)
{
    const Pgferry__State__PipeRecord *r = st->record;
    const Pgferry__State__PipeSpec *sp = r->spec;
    json_obj_begin(j);
    json_kv_str(j, "name", sp->name);
    json_kv_str(j, "state", names_state(r->state));
    json_kv_int(j, "state_since_us", r->state_since_us);
    if (r->state == PGFERRY__STATE__PIPE_STATE__DEGRADED)
        json_kv_str(j, "degraded_from", names_state(r->prev_state));
    json_kv_bool(j, "dropping", r->dropping);
    json_kv_int(j, "removing_tables", (int64_t)r->n_removing);
    json_kv_str(j, "mode", names_mode(sp->mode));
    json_kv_str(j, "source", sp->source);
    json_kv_str(j, "source_version", r->source_version);
    json_kv_str(j, "destination", sp->dest_url);
    json_kv_str(j, "destination_database", sp->dest_database);
    json_kv_str(j, "destination_version", r->dest_version);
    json_kv_str(j, "slot", sp->slot);
    json_kv_bool(j, "slot_owned", sp->slot_owned);
    json_kv_str(j, "publication", sp->publication);
    json_kv_bool(j, "publication_owned", sp->publication_owned);
    json_kv_int(j, "created_us", r->created_us);
    json_kv_uint(j, "snapshot_workers", sp->snapshot_workers);
    json_kv_uint(j, "batch_max_rows", sp->batch_max_rows);
    json_kv_uint(j, "batch_max_bytes", sp->batch_max_bytes);
    json_kv_uint(j, "batch_max_wait_ms", sp->batch_max_wait_ms);
    json_kv_str(j, "numeric", sp->numeric_text ? "text" : "decimal");
    if (sp->cluster[0]) {
        json_kv_str(j, "cluster", sp->cluster);
        json_kv_str(j, "cluster_layout", sp->cluster_layout[0] ? sp->cluster_layout : "replicated");
        json_kv_str(j, "zk_path", sp->zk_path[0] ? sp->zk_path : CHCLUSTER_DEFAULT_ZK_PATH);
        json_kv_uint(j, "insert_quorum", sp->insert_quorum);
    }
    json_key(j, "tables");
    json_arr_begin(j);
    for (size_t i = 0; i < sp->n_tables; i++) {
        json_obj_begin(j);
        json_kv_str(j, "schema", sp->tables[i]->schema[0] ? sp->tables[i]->schema : "public");
        json_kv_str(j, "table", sp->tables[i]->name);
        const Pgferry__State__TableDef *d = table_def(r, sp->tables[i]);
        if (d) {
            json_kv_str(j, "target", d->target);
            json_kv_str(j, "row_filter", d->row_filter ? d->row_filter : "");
            json_kv_str(j, "partition_by", d->partition_by ? d->partition_by : "");
            json_key(j, "skipped_columns");
            json_arr_begin(j);
            for (size_t c = 0; c < d->n_skipped_columns; c++) {
                json_obj_begin(j);
                json_kv_str(j, "name", d->skipped_columns[c]->name);
                json_kv_str(j, "reason", d->skipped_columns[c]->reason);
                json_obj_end(j);
            }
            json_arr_end(j);
            json_kv_int(j, "estimated_rows", d->reltuples < 0 ? -1 : (int64_t)d->reltuples);
            const Pgferry__State__TableStats *ts = table_stats(r, d->target);
            json_kv_uint(j, "snapshot_rows", ts ? ts->snapshot_rows : 0);
            json_kv_uint(j, "snapshot_bytes", ts ? ts->snapshot_bytes : 0);
            json_kv_uint(j, "inserts", ts ? ts->inserts : 0);
            json_kv_uint(j, "updates", ts ? ts->updates : 0);
            json_kv_uint(j, "deletes", ts ? ts->deletes : 0);
            json_kv_uint(j, "cdc_bytes", ts ? ts->bytes : 0);
            json_kv_int(j, "last_applied_us", ts ? ts->last_applied_us : 0);
            const Pgferry__Control__TableProgress *tp = table_progress(st, d);
            if (tp) {
                json_key(j, "snapshot");
                json_obj_begin(j);
                json_kv_uint(j, "ranges_total", tp->ranges_total);
                json_kv_uint(j, "ranges_done", tp->ranges_done);
                json_kv_uint(j, "rows_in_done_ranges", tp->rows);
                json_obj_end(j);
            }
            json_key(j, "columns");
            json_arr_begin(j);
            for (size_t c = 0; c < d->n_columns; c++) {
                json_obj_begin(j);
                json_kv_str(j, "name", d->columns[c]->name);
                /* the destination column (a column renamed at the source keeps its name) */
                json_kv_str(j, "ch_name",
                            d->columns[c]->ch_name && d->columns[c]->ch_name[0]
                                ? d->columns[c]->ch_name
                                : d->columns[c]->name);
                json_kv_str(j, "pg_type", d->columns[c]->pg_type);
                json_kv_str(j, "ch_type", d->columns[c]->ch_type);
                json_kv_uint(j, "key_position", d->columns[c]->key_position);
                json_obj_end(j);
            }
            json_arr_end(j);
        }
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "workers");
    json_arr_begin(j);
    for (size_t i = 0; i < st->n_workers; i++) {
        json_obj_begin(j);
        json_kv_str(j, "role", st->workers[i]->role);
        json_kv_int(j, "pid", st->workers[i]->pid);
        json_kv_int(j, "started_us", st->workers[i]->started_us);
        json_kv_str(j, "activity", st->workers[i]->activity);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_kv_uint(j, "worker_restarts", r->worker_restarts);
    json_kv_uint(j, "consecutive_failures", r->consecutive_failures);
    json_kv_int(j, "next_restart_us", st->next_restart_us);
    json_key(j, "snapshot");
    if (st->snapshot_ranges_total > 0) {
        json_obj_begin(j);
        json_kv_uint(j, "ranges_total", st->snapshot_ranges_total);
        json_kv_uint(j, "ranges_done", st->snapshot_ranges_done);
        json_kv_uint(j, "rows_in_done_ranges", st->snapshot_rows);
        json_obj_end(j);
    } else {
        json_null(j);
    }
    json_key(j, "cdc");
    json_obj_begin(j);
    json_kv_str(j, "confirmed_lsn", r->confirmed_lsn);
    json_kv_int(j, "last_commit_time_us", r->last_commit_time_us);
    json_kv_int(j, "last_applied_us", r->last_applied_us);
    json_kv_uint(j, "inserts", r->cdc_inserts);
    json_kv_uint(j, "updates", r->cdc_updates);
    json_kv_uint(j, "deletes", r->cdc_deletes);
    json_kv_uint(j, "transactions", r->cdc_transactions);
    json_key(j, "rows_per_second");
    json_double(j, st->rows_per_second);
    json_obj_end(j);
    json_kv_str(j, "source_server", r->source_server);
    json_key(j, "slot_info");
    if (st->slot) {
        json_obj_begin(j);
        json_kv_str(j, "current_lsn", st->slot->current_lsn);
        json_kv_str(j, "confirmed_lsn", st->slot->confirmed_lsn);
        json_kv_str(j, "restart_lsn", st->slot->restart_lsn);
        json_kv_uint(j, "lag_bytes", st->slot->lag_bytes);
        json_kv_uint(j, "retained_bytes", st->slot->retained_bytes);
        json_kv_str(j, "wal_status", st->slot->wal_status);
        json_kv_int(j, "safe_wal_size", st->slot->safe_wal_size);
        json_key(j, "failover");
        if (st->slot->failover_known)
            json_bool(j, st->slot->failover > 0);
        else
            json_null(j);
        json_kv_int(j, "time_us", st->slot_info_us);
        json_obj_end(j);
    } else {
        json_null(j);
    }
    json_key(j, "lag_bytes");
    if (st->slot)
        json_uint(j, st->slot->lag_bytes);
    else
        json_null(j);
    json_key(j, "lag_seconds");
    if (st->lag_seconds >= 0)
        json_double(j, st->lag_seconds);
    else
        json_null(j);
    json_key(j, "warning");
    if (st->warning[0])
        json_str(j, st->warning);
    else
        json_null(j);
    json_key(j, "last_error");
    if (r->last_error[0]) {
        json_obj_begin(j);
        json_kv_str(j, "class", names_error_class(r->last_error_class));
        json_kv_str(j, "message", r->last_error);
        json_kv_int(j, "time_us", r->last_error_us);
        json_obj_end(j);
    } else {
        json_null(j);
    }
    json_key(j, "history");
    json_arr_begin(j);
    for (size_t i = 0; i < st->n_history; i++) {
        const Pgferry__State__HistoryEvent *e = st->history[i];
        json_obj_begin(j);
        json_kv_uint(j, "seq", e->seq);
        json_key(j, "from");
        if (e->from)
            json_str(j, names_state(e->from));
        else
            json_null(j);
        json_kv_str(j, "to", names_state(e->to));
        json_kv_int(j, "time_us", e->time_us);
        json_kv_str(j, "reason", e->reason);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

static void
format_bytes(uint64_t b, char *out, size_t outlen)
{
    if (b < 1024)
        snprintf(out, outlen, "%llu B", (unsigned long long)b);
    else if (b < 1048576)
        snprintf(out, outlen, "%.1f kB", (double)b / 1024.0);
    else if (b < 1073741824ull)
        snprintf(out, outlen, "%.1f MB", (double)b / 1048576.0);
    else
        snprintf(out, outlen, "%.1f GB", (double)b / 1073741824.0);
}

void
render_list_text(FILE *out, const Pgferry__Control__PipeList *l, int64_t now_us)
{
    if (l->n_pipes == 0) {
        fprintf(out, "no pipes\n");
        return;
    }
    fprintf(out, "%-24s %-13s %-9s %-6s %-10s %-8s %-9s %s\n", "NAME", "STATE", "SINCE", "TABLES",
            "LAG", "LAG(s)", "ROWS/S", "LAST ERROR");
    for (size_t i = 0; i < l->n_pipes; i++) {
        const Pgferry__Control__PipeStatus *st = l->pipes[i];
        const Pgferry__State__PipeRecord *r = st->record;
        char dur[32], errs[61], lag[32] = "-", lags[32] = "-", rate[32] = "-";
        time_format_duration(now_us - r->state_since_us, dur, sizeof(dur));
        snprintf(errs, sizeof(errs), "%s", r->last_error);
        if (strlen(r->last_error) > 60)
            memcpy(errs + 56, "...", 4);
        if (st->slot)
            format_bytes(st->slot->lag_bytes, lag, sizeof(lag));
        if (st->lag_seconds >= 0)
            snprintf(lags, sizeof(lags), "%.1f", st->lag_seconds);
        if (r->confirmed_lsn[0])
            snprintf(rate, sizeof(rate), "%.1f", st->rows_per_second);
        fprintf(out, "%-24s %-13s %-9s %-6zu %-10s %-8s %-9s %s\n", r->spec->name,
                r->dropping ? "(dropping)" : names_state(r->state), dur, r->spec->n_tables, lag,
                lags, rate, errs);
    }
}

void
render_list_json(json_t *j, const Pgferry__Control__PipeList *l)
{
    json_arr_begin(j);
    for (size_t i = 0; i < l->n_pipes; i++)
        render_status_json(j, l->pipes[i]);
    json_arr_end(j);
}

void
render_progress_bar(char *out, size_t outlen, double done, double total, int width)
{
    double f = total > 0 ? done / total : 0;
    if (f < 0)
        f = 0;
    if (f > 1)
        f = 1;
    if (width < 1 || (size_t)width + 12 > outlen) {
        snprintf(out, outlen, "%5.1f%%", f * 100);
        return;
    }
    int fill = (int)(f * width + 0.5);
    size_t o = 0;
    out[o++] = '[';
    for (int i = 0; i < width; i++)
        out[o++] = i < fill ? '#' : '.';
    snprintf(out + o, outlen - o, "] %5.1f%%", f * 100);
}

void
render_watch_frame(FILE *out, const Pgferry__Control__PipeStatus *st, int64_t now_us)
{
    const Pgferry__State__PipeRecord *r = st->record;
    if (r->state == PGFERRY__STATE__PIPE_STATE__SNAPSHOT) {
        char bar[128];
        double est = 0;
        for (size_t i = 0; i < r->n_table_defs; i++)
            est += r->table_defs[i]->reltuples > 0 ? r->table_defs[i]->reltuples : 0;
        if (st->snapshot_ranges_total > 0) {
            render_progress_bar(bar, sizeof(bar), st->snapshot_ranges_done,
                                st->snapshot_ranges_total, 40);
            fprintf(out, "load     %s  %u/%u ranges, %llu rows", bar, st->snapshot_ranges_done,
                    st->snapshot_ranges_total, (unsigned long long)st->snapshot_rows);
            if (est > 0)
                fprintf(out, " of ~%.0f", est);
            fprintf(out, "\n\n");
        } else {
            fprintf(out, "load     planning (exporting a snapshot, splitting tables)\n\n");
        }
    }
    render_status_text(out, st, now_us);
}
