/*
 * chexpr: checks an operator-written ClickHouse expression (--partition-by) before pgferry
 * puts it into DDL as "PARTITION BY (expr)". Pure. The expression must stay one expression:
 * brackets balanced and properly nested, quotes closed, no comment (--, #, / *), no ';', no
 * braces, no control characters, and no clause keyword outside brackets (SETTINGS, ORDER,
 * PRIMARY, SAMPLE, TTL, ENGINE, PARTITION, FORMAT, UNION, SELECT, ...; case-insensitive,
 * whole words only, so order_date is a column). Whether the expression means anything is
 * ClickHouse's to say at Setup.
 */
#ifndef PGFERRY_CHEXPR_H
#define PGFERRY_CHEXPR_H

#include <stdbool.h>
#include <stddef.h>

#define CHEXPR_MAX_LEN 1000 /* bytes */

/* True when expr is acceptable; otherwise false with the reason in err (what names the
 * option, e.g. "--partition-by for public.orders"). */
bool chexpr_check(const char *expr, const char *what, char *err, size_t errlen);

#endif
