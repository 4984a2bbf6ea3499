/*
 * chclient: ClickHouse over its HTTP interface with libcurl. Owns the URL parsing (user and
 * password are taken out of the URL and sent as HTTP basic auth), error classification
 * (TRANSIENT vs FATAL) and the masked URL shown to operators.
 */
#ifndef PGFERRY_CHCLIENT_H
#define PGFERRY_CHCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include "errclass.h"

typedef struct ch_client ch_client_t;

/* url: http(s)://[user[:password]@]host:port[/][,http(s)://...] (the first endpoint with a user
 * gives the user and password to all). user/password_file override the URL's when
 * non-empty. Returns NULL with err set on a bad URL or unreadable password file. */
ch_client_t *ch_client_new(const char *url, const char *user, const char *password_file, char *err,
                           size_t errlen);
/* As ch_client_new; password_env, when non-empty, names the environment variable holding the
 * password (it wins over the URL's; a password file wins over both). */
ch_client_t *ch_client_new_env(const char *url, const char *user, const char *password_file,
                               const char *password_env, char *err, size_t errlen);
void ch_client_destroy(ch_client_t **c);
/* The longest a whole request may take (connect included); default 300 s. */
void ch_client_set_timeout(ch_client_t *c, long timeout_ms);
/* ClickHouse settings sent with every request, as URL parameters "k=v&k=v" (NULL/"" = none).
 * False when out of memory. */
bool ch_client_set_settings(ch_client_t *c, const char *settings);
/* url may list several endpoints separated by ','. The client uses one at a time, starting with
 * the first; when it fails (unreachable, or its replicated tables read-only for want of
 * ZooKeeper) the next becomes the one in use, and a request whose body is in memory is sent to
 * it at once. ch_client_switches counts those changes: a caller that reads what it wrote
 * before a change must first bring the new endpoint's replicas up to date. */
const char *ch_client_endpoint(const ch_client_t *c); /* base URL, no credentials */
size_t ch_client_endpoints(const ch_client_t *c);
size_t ch_client_current(const ch_client_t *c); /* index of the endpoint in use */
unsigned ch_client_switches(const ch_client_t *c);
/* Endpoint i becomes the one in use; failover false keeps it there when it fails (a check of
 * that endpoint), true lets it move on again. */
void ch_client_use(ch_client_t *c, size_t i, bool failover);
/* Asks the endpoint in use to reach host:port (a node of its cluster, native protocol) as the
 * client's own user but without its password (no credentials in SQL text): SELECT ... FROM
 * remote(...). The node refusing the login counts as an answer. */
errclass_t ch_client_probe_remote(ch_client_t *c, const char *host, unsigned port, char *err,
                                  size_t errlen);

/* Runs sql; on success *out (if out) is a malloc'd NUL-terminated body the caller frees.
 * Returns ERRCLASS_NONE on success, else the class with a message in err. */
errclass_t ch_client_query(ch_client_t *c, const char *sql, char **out, char *err, size_t errlen);

/* As ch_client_query, also giving the body's length (for binary formats such as RowBinary). */
errclass_t ch_client_query_len(ch_client_t *c, const char *sql, char **out, size_t *outlen,
                               char *err, size_t errlen);

/* Runs `query` (e.g. "INSERT INTO db.t FORMAT RowBinary") with body as its data. */
errclass_t ch_client_insert(ch_client_t *c, const char *query, const void *body, size_t len,
                            char *err, size_t errlen);

/* Produces the next piece of a streamed insert body into buf (at most cap bytes). Returns the
 * bytes written, 0 at the end, or -1 to abort (the producer keeps its own error). */
typedef long (*ch_stream_fn)(void *ud, char *buf, size_t cap);

/* Runs `query` with a body produced by fn, sent as HTTP chunked transfer encoding. When fn
 * aborts, returns ERRCLASS_FATAL with err "aborted by the producer" (the caller knows why). */
errclass_t ch_client_insert_stream(ch_client_t *c, const char *query, ch_stream_fn fn, void *ud,
                                   char *err, size_t errlen);

/* Receives a reply in pieces as it arrives. Returning false stops the transfer (not an error). */
typedef bool (*ch_recv_fn)(void *ud, const char *data, size_t len);

/* Runs sql with an external table (ClickHouse's "external data": ext_name with columns
 * ext_structure, e.g. "k0 Int32, k1 String", holding ext_len bytes of RowBinary rows), sent as a
 * multipart POST. The whole reply is computed before it is sent (wait_end_of_query), so an
 * error is always an HTTP error; the body goes to fn as it arrives. *stopped is set when fn
 * stopped the transfer. */
errclass_t ch_client_query_ext(ch_client_t *c, const char *sql, const char *ext_name,
                               const char *ext_structure, const void *ext_data, size_t ext_len,
                               ch_recv_fn fn, void *ud, bool *stopped, char *err, size_t errlen);

/* Replaces secret in text (a NUL-terminated string in cap bytes) with "***", also in the forms
 * an error text may quote it: SQL-escaped (pa\'ss, backslashes doubled), double-quoted,
 * escaped twice, URL-encoded. Every ClickHouse error text the client returns has the client's
 * password scrubbed so. */
void ch_scrub_secret(char *text, size_t cap, const char *secret);

/* The exception code in a ClickHouse error text ("Code: 60, ..." or "Code: 60. ..."), 0 if none. */
int ch_error_code(const char *text);

/* How bad a failed request is, from its HTTP status and body: FATAL for errors no retry fixes
 * (authentication, permissions, an unknown database or table, types, parsing, syntax), else
 * TRANSIENT (too many parts, memory, timeouts, Keeper, read-only replicas, restarts, ...). */
errclass_t ch_classify(long http_status, const char *body);

/* The server's version string ("18.16.1"), or NULL with err set. Caller frees. */
char *ch_client_version(ch_client_t *c, errclass_t *cls, char *err, size_t errlen);

/* Parses "18.16.1" into a comparable number 18016001 (major*1e6 + minor*1e3 + patch). */
long ch_version_number(const char *v);

#endif
