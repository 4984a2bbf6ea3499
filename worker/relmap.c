/* relmap: relation ids of the stream -> the pipe's tables and definition columns. */
#include "relmap.h"

#include <stdlib.h>
#include <string.h>

struct relmap {
    relmap_entry_t *e;
    size_t n, cap;
};

relmap_t *
relmap_new(void)
{
    return calloc(1, sizeof(relmap_t));
}

static void
unbind(relmap_entry_t *e)
{
    free(e->defcol);
    free(e->relcol);
    e->defcol = e->relcol = NULL;
    e->nrel = e->ndef = 0;
    e->bound = false;
}

void
relmap_destroy(relmap_t **mp)
{
    relmap_t *m = *mp;
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        unbind(&m->e[i]);
    free(m->e);
    free(m);
    *mp = NULL;
}

relmap_entry_t *
relmap_get(relmap_t *m, uint32_t relid)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->e[i].relid == relid)
            return &m->e[i];
    }
    return NULL;
}

relmap_entry_t *
relmap_put(relmap_t *m, uint32_t relid)
{
    relmap_entry_t *e = relmap_get(m, relid);
    if (e)
        return e;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        relmap_entry_t *a = realloc(m->e, cap * sizeof(*a));
        if (!a)
            return NULL;
        m->e = a;
        m->cap = cap;
    }
    e = &m->e[m->n++];
    memset(e, 0, sizeof(*e));
    e->relid = relid;
    e->table = -1;
    return e;
}

bool
relmap_bind(relmap_entry_t *e, const pgo_msg_t *rel, const Pgferry__State__TableDef *d,
            bool (*excluded)(void *ud, const char *name), void *ud, bool *oom)
{
    *oom = false;
    unbind(e);
    size_t n = rel->u.relation.ncols;
    e->defcol = calloc(n + 1, sizeof(int));
    e->relcol = calloc(d->n_columns + 1, sizeof(int));
    if (!e->defcol || !e->relcol) {
        unbind(e);
        *oom = true;
        return false;
    }
    e->nrel = n;
    e->ndef = d->n_columns;
    for (size_t k = 0; k < d->n_columns; k++)
        e->relcol[k] = -1;
    size_t matched = 0;
    for (size_t j = 0; j < n; j++) {
        const pgo_column_t *rc = &rel->u.relation.cols[j];
        e->defcol[j] = -1;
        if (excluded && excluded(ud, rc->name))
            continue;
        int k = -1;
        for (size_t i = 0; i < d->n_columns; i++) {
            if (strcmp(d->columns[i]->name, rc->name) == 0) {
                k = (int)i;
                break;
            }
        }
        if (k < 0 || e->relcol[k] >= 0)
            return false; /* a column the definition lacks */
        const Pgferry__State__ColumnDef *c = d->columns[k];
        if (c->type_oid && (c->type_oid != rc->type_oid || c->typmod != rc->typmod))
            return false; /* its type changed */
        e->defcol[j] = k;
        e->relcol[k] = (int)j;
        matched++;
    }
    if (matched != d->n_columns)
        return false; /* a column the relation lacks */
    e->bound = true;
    return true;
}

void
relmap_unbind_table(relmap_t *m, int table)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->e[i].table == table)
            unbind(&m->e[i]);
    }
}
