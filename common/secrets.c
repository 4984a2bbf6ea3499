/* secrets: the password file and variable rules (see secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool
secret_file_check(const char *dir, const char *path, char *out, size_t outlen, char *err,
                  size_t errlen)
{
    if (!dir || !*dir) {
        snprintf(err, errlen,
                 "--dest-password-file %.200s refused: password files are off in this pgferryd "
                 "(set secrets_dir in its config and put the file there)",
                 path);
        return false;
    }
    char rdir[PATH_MAX], joined[PATH_MAX + 256], rpath[PATH_MAX];
    if (!realpath(dir, rdir)) {
        snprintf(err, errlen, "secrets_dir %.200s: %s", dir, strerror(errno));
        return false;
    }
    if (path[0] == '/')
        snprintf(joined, sizeof(joined), "%.*s", (int)(sizeof(joined) - 1), path);
    else
        snprintf(joined, sizeof(joined), "%s/%.*s", rdir, (int)(sizeof(joined) - strlen(rdir) - 2),
                 path);
    if (!realpath(joined, rpath)) {
        snprintf(err, errlen, "--dest-password-file %.200s: %s", path, strerror(errno));
        return false;
    }
    size_t dl = strlen(rdir);
    bool inside = strncmp(rpath, rdir, dl) == 0 && (rpath[dl] == '/' || dl == 1) &&
                  rpath[dl == 1 ? 1 : dl + 1] != '\0';
    if (!inside) {
        snprintf(err, errlen,
                 "--dest-password-file %.200s refused: it is not inside secrets_dir %.200s "
                 "(symlinks followed)",
                 path, rdir);
        return false;
    }
    struct stat st;
    if (stat(rpath, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "--dest-password-file %.200s refused: not a regular file", path);
        return false;
    }
    if (strlen(rpath) >= outlen) {
        snprintf(err, errlen, "--dest-password-file %.200s: path too long", path);
        return false;
    }
    memcpy(out, rpath, strlen(rpath) + 1);
    return true;
}

bool
secret_env_check(const char *prefix, const char *name, char *err, size_t errlen)
{
    if (!prefix || !*prefix) {
        snprintf(err, errlen,
                 "--dest-password-env %.100s refused: password variables are off in this "
                 "pgferryd (set secret_env_prefix in its config)",
                 name);
        return false;
    }
    size_t pl = strlen(prefix);
    bool ok = strncmp(name, prefix, pl) == 0 && name[pl] != '\0';
    for (const char *p = name + (ok ? pl : 0); ok && *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            ok = false;
    }
    if (!ok) {
        snprintf(err, errlen,
                 "--dest-password-env %.100s refused: pgferryd gives pipes only variables named "
                 "%.60s<NAME> (secret_env_prefix; letters, digits, '_')",
                 name, prefix);
        return false;
    }
    return true;
}
