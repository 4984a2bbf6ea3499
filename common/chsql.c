/* chsql: pure quoting helpers. */
#include "chsql.h"

static void
quote(const char *in, char q, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen < 3) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    out[o++] = q;
    for (const char *p = in; *p && o + 3 < outlen; p++) {
        if (*p == q || *p == '\\')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = q;
    out[o] = '\0';
}

void
chsql_ident(const char *ident, char *out, size_t outlen)
{
    quote(ident, '`', out, outlen);
}

void
chsql_string(const char *text, char *out, size_t outlen)
{
    quote(text, '\'', out, outlen);
}
