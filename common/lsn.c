/* lsn: the text form PostgreSQL prints (pg_lsn), upper-case hex without leading zeros. */
#include "lsn.h"

#include <stdio.h>

bool
lsn_parse(const char *s, uint64_t *out)
{
    unsigned int hi, lo;
    char tail;
    if (!s || sscanf(s, "%X/%X%c", &hi, &lo, &tail) != 2)
        return false;
    *out = (uint64_t)hi << 32 | lo;
    return true;
}

void
lsn_format(uint64_t lsn, char *out, size_t outlen)
{
    snprintf(out, outlen, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}
