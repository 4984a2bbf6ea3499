/* churl: the destination URL check (see churl.h). */
#include "churl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool
ch_url_check(const char *url, char *err, size_t errlen)
{
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            snprintf(err, errlen, "destination URL holds a space or control character");
            return false;
        }
    }
    const char *sep = strstr(url, "://");
    if (!sep || sep == url) {
        snprintf(err, errlen, "destination is not a valid URL (expected http://host:8123)");
        return false;
    }
    size_t sl = (size_t)(sep - url);
    if (!((sl == 4 && strncasecmp(url, "http", 4) == 0) ||
          (sl == 5 && strncasecmp(url, "https", 5) == 0))) {
        snprintf(err, errlen, "destination URL scheme must be http or https, not %.*s",
                 (int)(sl < 20 ? sl : 20), url);
        return false;
    }
    const char *auth = sep + 3;
    size_t al = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + al; p++) {
        if (*p == '@')
            at = p;
    }
    const char *host = at ? at + 1 : auth, *end = auth + al;
    const char *port = NULL;
    if (host < end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close || close == host + 1) {
            snprintf(err, errlen, "destination URL has a malformed [IPv6] host");
            return false;
        }
        for (const char *p = host + 1; p < close; p++) {
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.') {
                snprintf(err, errlen, "destination URL has a malformed [IPv6] host");
                return false;
            }
        }
        if (close + 1 < end && close[1] != ':') {
            snprintf(err, errlen, "destination is not a valid URL (expected http://host:8123)");
            return false;
        }
        port = close + 1 < end ? close + 1 : NULL;
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        const char *hend = colon ? colon : end;
        if (hend == host) {
            snprintf(err, errlen, "destination URL has no host (expected http://host:8123)");
            return false;
        }
        for (const char *p = host; p < hend; p++) {
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_') {
                snprintf(err, errlen, "destination URL host holds '%c'", *p);
                return false;
            }
        }
        port = colon;
    }
    if (port) {
        const char *d = port + 1;
        long v = 0;
        if (d >= end) {
            snprintf(err, errlen, "destination URL has no usable port");
            return false;
        }
        for (const char *p = d; p < end; p++) {
            if (!isdigit((unsigned char)*p) || v > 65535) {
                snprintf(err, errlen, "destination URL has no usable port");
                return false;
            }
            v = v * 10 + (*p - '0');
        }
        if (v < 1 || v > 65535) {
            snprintf(err, errlen, "destination URL has no usable port");
            return false;
        }
    }
    return true;
}

bool
ch_url_list_check(const char *list, char *err, size_t errlen)
{
    size_t n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char one[2048];
        if (len == 0) {
            snprintf(err, errlen, "destination list has an empty entry (URLs separated by ',')");
            return false;
        }
        if (len >= sizeof(one)) {
            snprintf(err, errlen, "destination URL is longer than %zu bytes", sizeof(one) - 1);
            return false;
        }
        if (++n > CH_URL_MAX_ENDPOINTS) {
            snprintf(err, errlen, "destination lists more than %d endpoints", CH_URL_MAX_ENDPOINTS);
            return false;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (!ch_url_check(one, err, errlen)) {
            if (n > 1 || end) {
                char why[512];
                snprintf(why, sizeof(why), "%s", err);
                snprintf(err, errlen, "destination endpoint %zu: %s", n, why);
            }
            return false;
        }
        if (!end)
            return true;
        p = end + 1;
    }
}
