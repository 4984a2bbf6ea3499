/* json: writer state machine over a growing buffer. Out of memory sets j->oom and stops. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
json_init(json_t *j)
{
    memset(j, 0, sizeof(*j));
}

void
json_free(json_t *j)
{
    free(j->data);
    memset(j, 0, sizeof(*j));
}

static void
append(json_t *j, const char *s, size_t n)
{
    if (j->oom)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (j->len + n + 1 > cap)
            cap *= 2;
        char *d = realloc(j->data, cap);
        if (!d) {
            j->oom = true;
            return;
        }
        j->data = d;
        j->cap = cap;
    }
    memcpy(j->data + j->len, s, n);
    j->len += n;
    j->data[j->len] = '\0';
}

static void
begin_value(json_t *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        if (j->has_item[j->depth])
            append(j, ",", 1);
        j->has_item[j->depth] = true;
    }
}

static void
open_(json_t *j, const char *c)
{
    begin_value(j);
    append(j, c, 1);
    if (j->depth + 1 < JSON_MAX_DEPTH)
        j->depth++;
    j->has_item[j->depth] = false;
}

static void
close_(json_t *j, const char *c)
{
    append(j, c, 1);
    if (j->depth > 0)
        j->depth--;
}

void
json_obj_begin(json_t *j)
{
    open_(j, "{");
}

void
json_obj_end(json_t *j)
{
    close_(j, "}");
}

void
json_arr_begin(json_t *j)
{
    open_(j, "[");
}

void
json_arr_end(json_t *j)
{
    close_(j, "]");
}

size_t
json_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)in; p && *p; p++) {
        char tmp[8];
        const char *e = tmp;
        size_t el;
        switch (*p) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            if (*p < 0x20)
                snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
            else {
                tmp[0] = (char)*p;
                tmp[1] = '\0';
            }
        }
        el = strlen(e);
        if (o + el + 1 > cap)
            break;
        memcpy(out + o, e, el);
        o += el;
    }
    out[o] = '\0';
    return o;
}

static void
append_escaped(json_t *j, const char *s)
{
    append(j, "\"", 1);
    char buf[512];
    /* escape in chunks so long strings need no big temporary */
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t chunk = n - i > 64 ? 64 : n - i;
        char part[65];
        memcpy(part, s + i, chunk);
        part[chunk] = '\0';
        size_t el = json_escape(part, buf, sizeof(buf));
        append(j, buf, el);
        i += chunk;
    }
    append(j, "\"", 1);
}

void
json_key(json_t *j, const char *key)
{
    begin_value(j);
    append_escaped(j, key);
    append(j, ":", 1);
    j->after_key = true;
}

void
json_str(json_t *j, const char *v)
{
    if (!v) {
        json_null(j);
        return;
    }
    begin_value(j);
    append_escaped(j, v);
}

void
json_int(json_t *j, int64_t v)
{
    char b[32];
    begin_value(j);
    append(j, b, (size_t)snprintf(b, sizeof(b), "%" PRId64, v));
}

void
json_uint(json_t *j, uint64_t v)
{
    char b[32];
    begin_value(j);
    append(j, b, (size_t)snprintf(b, sizeof(b), "%" PRIu64, v));
}

void
json_double(json_t *j, double v)
{
    char b[40];
    if (!isfinite(v)) {
        json_null(j);
        return;
    }
    begin_value(j);
    append(j, b, (size_t)snprintf(b, sizeof(b), "%.17g", v));
}

void
json_bool(json_t *j, bool v)
{
    begin_value(j);
    append(j, v ? "true" : "false", v ? 4 : 5);
}

void
json_null(json_t *j)
{
    begin_value(j);
    append(j, "null", 4);
}

void
json_kv_str(json_t *j, const char *key, const char *v)
{
    json_key(j, key);
    json_str(j, v);
}

void
json_kv_int(json_t *j, const char *key, int64_t v)
{
    json_key(j, key);
    json_int(j, v);
}

void
json_kv_uint(json_t *j, const char *key, uint64_t v)
{
    json_key(j, key);
    json_uint(j, v);
}

void
json_kv_bool(json_t *j, const char *key, bool v)
{
    json_key(j, key);
    json_bool(j, v);
}
