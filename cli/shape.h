/*
 * shape: the options that shape a pipe's destination tables (create and add-tables):
 *   --exclude-columns s.t.c1,s.t.c2   source columns left out
 *   --target s.t=name                 destination table name
 *   --order-by s.t=a,b                leading columns of the destination's ordering key
 *   --partition-by s.t=EXPR           the destination's PARTITION BY (a ClickHouse expression)
 * Each option may repeat; each names a table of the command's table list.
 */
#ifndef PGFERRY_CLI_SHAPE_H
#define PGFERRY_CLI_SHAPE_H

#include "state.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct shape shape_t;

shape_t *shape_new(void);
void shape_free(shape_t *s);

/* Takes option k with value v: 1 when k is a shaping option and v is valid, 0 when k is not a
 * shaping option, -1 with a reason in err when v is not valid. */
int shape_option(shape_t *s, const char *k, const char *v, char *err, size_t errlen);

/* Sets the shaping fields of tables t[0..n) (which point into s afterwards: keep s until t is
 * no longer used). False with a reason when an option names a table not among them, or two
 * options set the same thing of one table. */
bool shape_apply(shape_t *s, Pgferry__State__TableSpec **t, size_t n, char *err, size_t errlen);

#endif
