/* chnames: destination table names (see chnames.h). */
#include "chnames.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool
chnames_target_check(const char *target, char *err, size_t errlen)
{
    size_t len = strlen(target);
    if (len == 0 || len > CHNAMES_TARGET_MAX) {
        snprintf(err, errlen, "destination table name must be 1 to %d bytes", CHNAMES_TARGET_MAX);
        return false;
    }
    for (const char *c = target; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '`' || *c == '/' || *c == '\\') {
            snprintf(err, errlen,
                     "destination table name %.200s has a character ClickHouse table names "
                     "cannot use here (control characters, `, /, \\)",
                     (unsigned char)*c < 0x20 || *c == 0x7f ? "(with a control character)"
                                                            : target);
            return false;
        }
    }
    if (strncmp(target, "_pgferry", 8) == 0 || strcmp(target, ".") == 0 ||
        strcmp(target, "..") == 0) {
        snprintf(err, errlen, "destination table name %s is reserved", target);
        return false;
    }
    return true;
}

/* _pgferry_dnew and _pgferry_dold are the sharded layout's Distributed swap, but a target is
 * kept from them on every layout: the registry of owners (worker/owners.c) claims the same set */
static const char *const suffixes[] = {
    "_live",         "_resync",      "_pgferry_old", "_live_pgferry_new", "_live_pgferry_old",
    "_pgferry_dnew", "_pgferry_dold"};
static const char *const sharded_suffixes[] = {"_local", "_resync_local", "_pgferry_old_local"};

size_t
chnames_derived(const char *target, bool sharded, char out[][CHNAMES_NAME_MAX])
{
    size_t n = 0;
    snprintf(out[n++], CHNAMES_NAME_MAX, "%s", target);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        snprintf(out[n++], CHNAMES_NAME_MAX, "%s%s", target, suffixes[i]);
    for (size_t i = 0; sharded && i < sizeof(sharded_suffixes) / sizeof(sharded_suffixes[0]); i++)
        snprintf(out[n++], CHNAMES_NAME_MAX, "%s%s", target, sharded_suffixes[i]);
    return n;
}

typedef struct {
    const char *name; /* in one buffer of all names */
    size_t item;
} entry_t;

static int
cmp_entry(const void *x, const void *y)
{
    const entry_t *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->item > b->item) - (a->item < b->item);
}

int
chnames_find_clash(const chnames_item_t *items, size_t n, size_t *a, size_t *b, char *clash,
                   size_t clashlen)
{
    if (n < 2)
        return 0;
    char names[CHNAMES_MAX_DERIVED][CHNAMES_NAME_MAX];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = chnames_derived(items[i].target, items[i].sharded, names);
        for (size_t j = 0; j < k; j++)
            total += strlen(names[j]) + 1;
    }
    entry_t *e = malloc(n * CHNAMES_MAX_DERIVED * sizeof(*e));
    char *buf = malloc(total);
    if (!e || !buf) {
        free(e);
        free(buf);
        return -1;
    }
    size_t ne = 0, used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = chnames_derived(items[i].target, items[i].sharded, names);
        for (size_t j = 0; j < k; j++) {
            size_t l = strlen(names[j]) + 1;
            memcpy(buf + used, names[j], l);
            e[ne].name = buf + used;
            e[ne++].item = i;
            used += l;
        }
    }
    qsort(e, ne, sizeof(*e), cmp_entry);
    int found = 0;
    for (size_t g = 0; g < ne && !found;) {
        size_t h = g + 1;
        for (; h < ne && strcmp(e[h].name, e[g].name) == 0; h++) {
            if (!found && items[e[h].item].owner != items[e[g].item].owner) {
                *a = e[g].item < e[h].item ? e[g].item : e[h].item;
                *b = e[g].item < e[h].item ? e[h].item : e[g].item;
                snprintf(clash, clashlen, "%s", e[g].name);
                found = 1;
            }
        }
        g = h;
    }
    free(e);
    free(buf);
    return found;
}

/* host and port of one endpoint, lower case: "host:port" */
static bool
endpoint_key(const char *url, size_t len, char *out, size_t outlen)
{
    const char *sep = memmem(url, len, "://", 3);
    if (!sep)
        return false;
    bool https = sep - url == 5;
    const char *auth = sep + 3, *end = url + len;
    const char *stop = auth;
    while (stop < end && *stop != '/' && *stop != '?' && *stop != '#')
        stop++;
    for (const char *p = auth; p < stop; p++) {
        if (*p == '@')
            auth = p + 1;
    }
    const char *host = auth, *hend = stop, *port = NULL;
    if (host < stop && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(stop - host));
        if (!close)
            return false;
        hend = close + 1;
        port = hend < stop && *hend == ':' ? hend + 1 : NULL;
    } else {
        const char *colon = memchr(host, ':', (size_t)(stop - host));
        if (colon) {
            hend = colon;
            port = colon + 1;
        }
    }
    size_t hl = (size_t)(hend - host);
    if (hl == 0 || hl + 8 > outlen)
        return false;
    for (size_t i = 0; i < hl; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    long pv = https ? 8443 : 8123;
    if (port && port < stop)
        pv = strtol(port, NULL, 10);
    snprintf(out + hl, outlen - hl, ":%ld", pv);
    return true;
}

bool
chnames_same_server(const char *urls_a, const char *urls_b)
{
    for (const char *p = urls_a; *p;) {
        size_t la = strcspn(p, ",");
        char ka[300];
        if (endpoint_key(p, la, ka, sizeof(ka))) {
            for (const char *q = urls_b; *q;) {
                size_t lb = strcspn(q, ",");
                char kb[300];
                if (endpoint_key(q, lb, kb, sizeof(kb)) && strcmp(ka, kb) == 0)
                    return true;
                q += lb;
                if (*q == ',')
                    q++;
            }
        }
        p += la;
        if (*p == ',')
            p++;
    }
    return false;
}
