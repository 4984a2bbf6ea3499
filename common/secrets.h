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

#endif
