/*
 * owners: which pipe owns each destination table and view, recorded in ClickHouse itself.
 *
 * Every destination database holds a registry table, OWNERS_TABLE: one row per claim of one
 * concrete name (a target and each name pgferry derives from it) by one claimant (pipe name
 * and the state id of its pgferryd), versioned, released by a newer row. A worker claims every
 * name of a target before it creates, truncates, swaps, alters or drops any of them, and never
 * touches a name someone else claimed. ClickHouse has no compare-and-set: a claim is an insert
 * followed by a read, and the claimant wins only when its claims are the only live ones (see
 * docs/ARCHITECTURE.md, "Ownership of destination tables").
 */
#ifndef PGFERRY_OWNERS_H
#define PGFERRY_OWNERS_H

#include "chclient.h"
#include "chcluster.h"
#include "errclass.h"
#include "state.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

#define OWNERS_TABLE "_pgferry_owners"
#define OWNERS_MAX_NAMES 12

/* Who this worker claims for: its pipe and its pgferryd's state id (copied). */
void owners_set_identity(const char *pipe, const char *state_id);

/* The concrete names pgferry may create for target (the target, its view, the resync and swap
 * names; on a sharded layout also the data tables of those); returns how many. */
size_t owners_family(const chcluster_t *cl, const char *target, char (*names)[300], size_t max);

/* What a name that exists in ClickHouse without any claim means to owners_claim. */
typedef enum {
    OWNERS_FRESH,    /* a table Setup creates now: any such name is refused */
    OWNERS_RECORDED, /* a table of the pipe's recorded definitions (a pipe set up before the
                      * registry): its own names (the table, its view, its data table) are
                      * claimed as they are; any other such name is refused (a resync, its swap
                      * and its load touch them) */
    OWNERS_STREAM,   /* as RECORDED, but other such names are left unclaimed (CDC and a first
                      * load touch only the table's own names) */
} owners_mode_t;

/* Claims every name of target's family in db for this worker's pipe. Names it owns already
 * cost one read. A name another claimant holds: FATAL naming the owner. A name that exists
 * without any claim: see mode. Two claims at the same moment: both withdraw, TRANSIENT (the
 * retry's jittered backoff separates them). */
errclass_t owners_claim(ch_client_t *ch, const chcluster_t *cl, const char *db, const char *target,
                        owners_mode_t mode, char *err, size_t errlen);
/* As owners_claim for targets[0..n) with modes[i], a few dozen per round of queries. */
errclass_t owners_claim_many(ch_client_t *ch, const chcluster_t *cl, const char *db,
                             const char *const *targets, const owners_mode_t *modes, size_t n,
                             char *err, size_t errlen);
/* As owners_claim_many for the targets of defs, all in mode but those with kept[i]
 * (kept may be NULL), which are claimed as OWNERS_STREAM. */
errclass_t owners_claim_defs(ch_client_t *ch, const chcluster_t *cl, const char *db,
                             Pgferry__State__TableDef *const *defs, size_t n, owners_mode_t mode,
                             const bool *kept, char *err, size_t errlen);

/* desc[i] = "db.name belongs to <claimant>" when some other claimant holds a name of
 * defs[i]'s family, else "". */
errclass_t owners_others_defs(ch_client_t *ch, const chcluster_t *cl, const char *db,
                              Pgferry__State__TableDef *const *defs, size_t n, char (*desc)[600],
                              char *err, size_t errlen);

/* Releases this worker's claims on the families of defs (but those with skip[i]; skip may be
 * NULL). */
errclass_t owners_release_defs(ch_client_t *ch, const chcluster_t *cl, const char *db,
                               Pgferry__State__TableDef *const *defs, size_t n, const bool *skip,
                               char *err, size_t errlen);

/* Live claims in db of anybody but this worker's pipe (the database stays while there are). */
errclass_t owners_count_others(ch_client_t *ch, const char *db, long *n, char *err, size_t errlen);

#endif
