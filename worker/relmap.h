/*
 * relmap: what each relation id of the replication stream is for the pipe: which of its tables
 * (or none), and where each column of the relation goes in that table's recorded definition.
 * Filled from Relation messages; pure data, no I/O.
 */
#ifndef PGFERRY_RELMAP_H
#define PGFERRY_RELMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pgoutput.h"
#include "state.pb-c.h"

typedef struct {
    uint32_t relid;
    int table;   /* index of the pipe's table; -1: not in this pipe (changes ignored) */
    bool bound;  /* the columns below match the table's current definition */
    bool noted;  /* not the pipe's table, though under one's name: the history said so */
    int *defcol; /* per relation column: definition column, -1 (left out of the pipe) */
    int *relcol; /* per definition column: relation column */
    size_t nrel, ndef;
} relmap_entry_t;

typedef struct relmap relmap_t;

relmap_t *relmap_new(void);
void relmap_destroy(relmap_t **m);

/* The entry of relid, or NULL before its first Relation message. */
relmap_entry_t *relmap_get(relmap_t *m, uint32_t relid);
/* The entry of relid, created (table -1, unbound) when new. NULL on out of memory. */
relmap_entry_t *relmap_put(relmap_t *m, uint32_t relid);

/* Maps the relation's columns onto definition d (by name; excluded(ud, name) leaves a column
 * out). True when every definition column is there with the recorded type; false when the
 * relation differs (a schema change) or on out of memory (*oom). */
bool relmap_bind(relmap_entry_t *e, const pgo_msg_t *rel, const Pgferry__State__TableDef *d,
                 bool (*excluded)(void *ud, const char *name), void *ud, bool *oom);

/* Every relation of table (a schema change was applied) maps again at its next Relation
 * message; until then its changes are refused. */
void relmap_unbind_table(relmap_t *m, int table);

#endif
