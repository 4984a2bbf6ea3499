/*
 * secrets: where a pipe may take its ClickHouse password from. A pipe names a password file or
 * an environment variable; a control client (possibly remote) chooses those names, so they are
 * restricted to what the operator set aside for the purpose: files inside `secrets_dir`, and
 * variables whose name starts with `secret_env_prefix`. pgferryd checks at create, the worker
 * checks again before reading (the file may have become a symlink since). Pure except for the
 * file-system lookups of secret_file_check.
 */
#ifndef PGFERRY_SECRETS_H
#define PGFERRY_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

/* True when path (absolute, or relative to dir) resolves, after following every symlink, to a
 * regular file strictly inside dir (also resolved). The resolved path goes to out. dir "" means
 * password files are off. err names the path as given and the configured dir, never content. */
bool secret_file_check(const char *dir, const char *path, char *out, size_t outlen, char *err,
                       size_t errlen);

/* True when name is prefix followed by at least one of [A-Za-z0-9_] and nothing else. prefix ""
 * means password variables are off. */
bool secret_env_check(const char *prefix, const char *name, char *err, size_t errlen);

/* secret_file_check with the option named in errors (e.g. "sslrootcert"). */
bool secret_path_check(const char *dir, const char *label, const char *path, char *out,
                       size_t outlen, char *err, size_t errlen);

/*
 * Bindings: a reserved secret (a file of secrets_dir, a variable of secret_env_prefix) goes only
 * to the endpoints the operator tied it to in pgferryd's configuration (`secret_bind = NAME =
 * HOST:PORT, ...`). NAME is a file name (relative to secrets_dir, or absolute) or a variable
 * name; an endpoint is HOST:PORT or a URL (http default port 80, https 443). Hosts compare
 * lowercase, ports as numbers; a secret without a binding goes nowhere.
 */
#define SECRET_BIND_MAX 32
typedef struct {
    char name[128];
    char endpoints[512]; /* comma-separated, as configured */
} secret_bind_t;

/* Normalises one endpoint (HOST:PORT, [V6]:PORT or http[s]://[userinfo@]HOST[:PORT][/...]) to
 * "host:port" (host lowercase, IPv6 in brackets). False with the reason otherwise. */
bool secret_endpoint_norm(const char *in, size_t inlen, char *out, size_t outlen, char *err,
                          size_t errlen);

/* True when every endpoint of list is valid; used when the configuration is read. */
bool secret_endpoints_check(const char *list, char *err, size_t errlen);

/* The binding of a secret: for a file, the one whose name resolves (in dir) to file_resolved;
 * for a variable, the one named env_name. NULL when none. */
const secret_bind_t *secret_bind_find(const secret_bind_t *binds, size_t n, const char *dir,
                                      const char *file_resolved, const char *env_name);

/* True when every endpoint of the destination list urls (comma-separated URLs) is among the
 * endpoints of b. Otherwise false with err naming the secret (label) and the first endpoint not
 * tied to it; b NULL means the secret has no binding. */
bool secret_dest_allowed(const secret_bind_t *b, const char *label, const char *urls, char *err,
                         size_t errlen);

/* The bindings as one string for a worker's environment ("NAME=EP,EP" lines) and back. */
size_t secret_binds_format(const secret_bind_t *binds, size_t n, char *out, size_t outlen);
size_t secret_binds_parse(const char *s, secret_bind_t *out, size_t max);

#endif
