/*
 * mask: a single left-to-right scan that copies the input and replaces secret values with
 * MASK_TEXT. Must not log (log.c calls it).
 */
#include "mask.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

static void
put(out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && o->len + 1 < o->cap; i++)
        o->buf[o->len++] = s[i];
    o->buf[o->len] = '\0';
}

/* Length of a userinfo "user:secret@" starting at p (just after "://"), or 0 when none.
 * On success *colon is the offset of the ':' inside it. */
static size_t
userinfo_len(const char *p, size_t *colon)
{
    size_t i = 0;
    *colon = (size_t)-1;
    /* the authority ends at '/', '?', '#' or whitespace; the last '@' before that ends
     * the userinfo (passwords may contain '@' when not percent-encoded) */
    size_t at = (size_t)-1;
    for (; p[i] && p[i] != '/' && p[i] != '?' && p[i] != '#' && !isspace((unsigned char)p[i]) &&
           p[i] != '\'' && p[i] != '"';
         i++) {
        if (p[i] == '@')
            at = i;
    }
    if (at == (size_t)-1)
        return 0;
    for (size_t j = 0; j < at; j++) {
        if (p[j] == ':') {
            *colon = j;
            break;
        }
    }
    return at + 1;
}

static bool
key_is_password(const char *s, size_t n)
{
    static const char *const keys[] = {"password", "passwd", "pwd", "sslpassword"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        if (strlen(keys[k]) == n && strncasecmp(s, keys[k], n) == 0)
            return true;
    }
    return false;
}

static void
mask_into(const char *in, out_t *o)
{
    size_t i = 0, n = strlen(in);
    while (i < n) {
        /* URI userinfo */
        if (in[i] == ':' && i + 2 < n && in[i + 1] == '/' && in[i + 2] == '/') {
            put(o, in + i, 3);
            i += 3;
            size_t colon;
            size_t ul = userinfo_len(in + i, &colon);
            if (ul > 0) {
                if (colon != (size_t)-1) {
                    put(o, in + i, colon + 1);
                    put(o, MASK_TEXT, strlen(MASK_TEXT));
                    put(o, "@", 1);
                } else {
                    put(o, in + i, ul);
                }
                i += ul;
            }
            continue;
        }
        /* key=value where key is a password key; the key starts at a word boundary */
        if (isalpha((unsigned char)in[i]) &&
            (i == 0 || !(isalnum((unsigned char)in[i - 1]) || in[i - 1] == '_'))) {
            size_t k = i;
            while (k < n && (isalnum((unsigned char)in[k]) || in[k] == '_'))
                k++;
            size_t e = k;
            while (e < n && in[e] == ' ')
                e++;
            if (e < n && in[e] == '=' && key_is_password(in + i, k - i)) {
                e++;
                while (e < n && in[e] == ' ')
                    e++;
                put(o, in + i, e - i);
                size_t v = e;
                if (v < n && (in[v] == '\'' || in[v] == '"')) {
                    char q = in[v++];
                    while (v < n && in[v] != q) {
                        if (in[v] == '\\' && v + 1 < n)
                            v++;
                        v++;
                    }
                    if (v < n)
                        v++;
                } else {
                    while (v < n && !isspace((unsigned char)in[v]) && in[v] != '&' &&
                           in[v] != ';' && in[v] != ',' && in[v] != '"')
                        v++;
                }
                put(o, MASK_TEXT, strlen(MASK_TEXT));
                i = v;
                continue;
            }
            put(o, in + i, k - i);
            i = k;
            continue;
        }
        put(o, in + i, 1);
        i++;
    }
}

char *
mask_secrets(const char *in)
{
    if (!in)
        return NULL;
    size_t cap = strlen(in) * 2 + 16;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    out_t o = {buf, cap, 0};
    buf[0] = '\0';
    mask_into(in, &o);
    return buf;
}

void
mask_secrets_inplace(char *buf, size_t cap)
{
    if (cap == 0)
        return;
    char tmp[8192];
    size_t n = strlen(buf);
    char *src = n < sizeof(tmp) ? tmp : malloc(n + 1);
    if (!src) {
        buf[0] = '\0';
        return;
    }
    memcpy(src, buf, n + 1);
    out_t o = {buf, cap, 0};
    buf[0] = '\0';
    mask_into(src, &o);
    if (src != tmp)
        free(src);
}
