/*
 * json: a small streaming JSON writer for --json output and JSON log lines. Commas and
 * nesting are tracked for the caller. It does not parse JSON.
 */
#ifndef PGFERRY_JSON_H
#define PGFERRY_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32

typedef struct {
    char *data; /* owned; NUL-terminated; freed by json_free */
    size_t len, cap;
    int depth;
    bool has_item[JSON_MAX_DEPTH];
    bool after_key;
    bool oom;
} json_t;

void json_init(json_t *j);
void json_free(json_t *j);
void json_obj_begin(json_t *j);
void json_obj_end(json_t *j);
void json_arr_begin(json_t *j);
void json_arr_end(json_t *j);
void json_key(json_t *j, const char *key);
void json_str(json_t *j, const char *v); /* NULL writes null */
void json_int(json_t *j, int64_t v);
void json_uint(json_t *j, uint64_t v);
void json_double(json_t *j, double v);
void json_bool(json_t *j, bool v);
void json_null(json_t *j);

void json_kv_str(json_t *j, const char *key, const char *v);
void json_kv_int(json_t *j, const char *key, int64_t v);
void json_kv_uint(json_t *j, const char *key, uint64_t v);
void json_kv_bool(json_t *j, const char *key, bool v);

/* Escapes `in` as the inside of a JSON string into out (capacity cap, always terminated,
 * truncated to fit). Returns the length written. */
size_t json_escape(const char *in, char *out, size_t cap);

#endif
