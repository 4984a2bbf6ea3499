/*
 * chnames: the ClickHouse table names pgferry uses for a destination table, and the checks
 * that keep two tables (of one pipe, or of two pipes writing into one database) from using
 * the same name. Pure. Names compare as ClickHouse compares them: exact bytes, case-sensitive.
 *
 * A target T (the --target name, or the source table's name) makes pgferry use T, T_live (the
 * view), T_resync, T_pgferry_old, T_live_pgferry_new, T_live_pgferry_old (resync and view
 * swaps), T_pgferry_dnew and T_pgferry_dold (the sharded layout's Distributed swap, reserved on
 * every layout) and, on the sharded cluster layout, T_local, T_resync_local and
 * T_pgferry_old_local (the worker/setup.c names; keep them in step). The registry of owners
 * (worker/owners.c owners_family) claims exactly these names.
 */
#ifndef PGFERRY_CHNAMES_H
#define PGFERRY_CHNAMES_H

#include <stdbool.h>
#include <stddef.h>

#define CHNAMES_TARGET_MAX 200 /* bytes of a destination table name */
#define CHNAMES_NAME_MAX 256   /* room for a target and its longest suffix */
#define CHNAMES_MAX_DERIVED 11

/* True when target can name a destination table (1 to 200 bytes, no control character, `,
 * / or \, not "." or "..", not starting with _pgferry); otherwise false with the reason. */
bool chnames_target_check(const char *target, char *err, size_t errlen);

/* Writes the names target makes pgferry use (target itself first) into out; returns how
 * many (at most CHNAMES_MAX_DERIVED). */
size_t chnames_derived(const char *target, bool sharded, char out[][CHNAMES_NAME_MAX]);

typedef struct {
    const char *target;
    bool sharded; /* the pipe's cluster layout is "sharded" */
    size_t owner; /* items of one owner may share names (they are the same table) */
} chnames_item_t;

/* Looks for two items of different owners that use one name. Returns 1 with their indices in
 * *a < *b and the name in clash, 0 when every name is used by one owner only, -1 when out of
 * memory. */
int chnames_find_clash(const chnames_item_t *items, size_t n, size_t *a, size_t *b, char *clash,
                       size_t clashlen);

/* True when the two destination URL lists (see churl.h) share an endpoint: the same host
 * (case-insensitive, as written: no name resolution) and port (default 8123, https 8443). */
bool chnames_same_server(const char *urls_a, const char *urls_b);

#endif
