/* curvekeys: file formats only; the sockets are configured by their owners. */
#include "curvekeys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static bool
valid_z85(const char *s)
{
    unsigned char bin[32];
    return strlen(s) == CURVEKEY_Z85_LEN && zmq_z85_decode(bin, s) != NULL;
}

static bool
write_file(const char *path, mode_t mode, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return false;
    }
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n && fchmod(fd, mode) == 0;
    close(fd);
    if (!ok)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return ok;
}

bool
curvekeys_generate(const char *path, char *err, size_t errlen)
{
    char pub[41], sec[41], pubpath[4096], text[160];
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(err, errlen, "this libzmq cannot make CURVE keys: %s", zmq_strerror(errno));
        return false;
    }
    snprintf(pubpath, sizeof(pubpath), "%s.pub", path);
    if (access(path, F_OK) == 0 || access(pubpath, F_OK) == 0) {
        snprintf(err, errlen, "%s or %s exists already; not overwriting a key", path, pubpath);
        return false;
    }
    snprintf(text, sizeof(text),
             "# pgferry CURVE key pair: keep this file secret\npublic = %s\nsecret = %s\n", pub,
             sec);
    if (!write_file(path, 0600, text, err, errlen))
        return false;
    snprintf(text, sizeof(text), "%s\n", pub);
    return write_file(pubpath, 0644, text, err, errlen);
}

/* the value of "key = value" lines, or a bare 40-character line (key "") */
static bool
read_keys(const char *path, char *pub, char *sec, char *bare, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        return false;
    }
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        s[strcspn(s, "\r\n")] = '\0';
        /* Z85 uses '#' and '=' too: a line that is a key is a key, a comment is a whole line */
        if (*s == '\0' || (*s == '#' && !valid_z85(s)))
            continue;
        char *eq = strchr(s, '=');
        char *val = s;
        char *out = bare;
        if (eq && strlen(s) != CURVEKEY_Z85_LEN) {
            *eq = '\0';
            val = eq + 1;
            while (isspace((unsigned char)*val))
                val++;
            size_t kl = strlen(s);
            while (kl > 0 && isspace((unsigned char)s[kl - 1]))
                s[--kl] = '\0';
            out = strcmp(s, "public") == 0 ? pub : strcmp(s, "secret") == 0 ? sec : NULL;
        }
        if (out && valid_z85(val))
            snprintf(out, 41, "%.40s", val);
    }
    fclose(f);
    return true;
}

bool
curvekeys_load(const char *path, char *pub, char *sec, char *err, size_t errlen)
{
    char p[41] = "", s[41] = "", b[41] = "";
    if (!read_keys(path, p, s, b, err, errlen))
        return false;
    if (!p[0] || (sec && !s[0])) {
        snprintf(err, errlen, "%s is not a pgferry key file (made by pgferryctl keygen)", path);
        return false;
    }
    snprintf(pub, 41, "%.40s", p);
    if (sec)
        snprintf(sec, 41, "%.40s", s);
    return true;
}

bool
curvekeys_load_public(const char *path_or_key, char *pub, char *err, size_t errlen)
{
    if (valid_z85(path_or_key) && access(path_or_key, F_OK) != 0) {
        snprintf(pub, 41, "%.40s", path_or_key);
        return true;
    }
    char p[41] = "", s[41] = "", b[41] = "";
    if (!read_keys(path_or_key, p, s, b, err, errlen))
        return false;
    const char *k = p[0] ? p : b;
    if (!k[0]) {
        snprintf(err, errlen, "%s holds no public key", path_or_key);
        return false;
    }
    snprintf(pub, 41, "%.40s", k);
    return true;
}

bool
curvekeys_load_authorized(const char *path, unsigned char **keys, size_t *n, char *err,
                          size_t errlen)
{
    FILE *f = fopen(path, "r");
    *keys = NULL;
    *n = 0;
    if (!f) {
        snprintf(err, errlen, "cannot read authorized keys %s: %s", path, strerror(errno));
        return false;
    }
    char line[256];
    int lineno = 0;
    size_t cap = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        s[strcspn(s, " \t\r\n")] = '\0';
        if (*s == '\0' || (*s == '#' && !valid_z85(s)))
            continue;
        if (!valid_z85(s)) {
            snprintf(err, errlen, "%s:%d: not a Z85 CURVE public key", path, lineno);
            fclose(f);
            free(*keys);
            *keys = NULL;
            *n = 0;
            return false;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            unsigned char *k = realloc(*keys, cap * 32);
            if (!k) {
                fclose(f);
                snprintf(err, errlen, "out of memory");
                return false;
            }
            *keys = k;
        }
        zmq_z85_decode(*keys + *n * 32, s);
        (*n)++;
    }
    fclose(f);
    return true;
}
