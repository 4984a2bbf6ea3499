/* daemon_config: parsing and validation only; no side effects on the system. */
#include "daemon_config.h"
#include "meta.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *key;
    const char *help;
} key_t_;

static const key_t_ keys[] = {
    {"state_dir", "directory for the state store and sockets (created 0700)"},
    {"control_endpoint", "control socket; default ipc://STATE_DIR/control.sock"},
    {"worker_bin", "path of pgferry-worker; default: next to pgferryd"},
    {"log_level", "error | warn | info | debug (default info)"},
    {"log_format", "text | json (default text)"},
    {"backoff_initial_ms", "first worker restart delay (default 1000)"},
    {"backoff_max_ms", "longest worker restart delay (default 60000)"},
    {"degraded_after", "consecutive worker failures before Degraded (default 3)"},
    {"max_failures", "consecutive worker failures before Failed (default 20)"},
    {"stop_grace_ms", "time a worker gets between SIGTERM and SIGKILL (default 10000)"},
    {"max_pipes", "pipes this daemon accepts (default 100)"},
    {"default_snapshot_workers",
     "range workers per pipe when create does not say (default: cores)"},
    {"batch_max_rows", "CDC batch limit in rows for new pipes (default 100000)"},
    {"batch_max_bytes", "CDC batch limit in bytes for new pipes (default 16777216)"},
    {"batch_max_wait_ms",
     "CDC insert pace of new pipes: the least time between two inserts into a table (default 200)"},
    {"retained_wal_warning_mb",
     "warn when a pipe's slot retains more WAL than this many MB (default 1024)"},
    {"history_max_events", "history events kept per pipe, oldest dropped first (default 1000)"},
    {"metrics_listen", "serve Prometheus metrics on http://HOST:PORT/metrics (default off)"},
    {"secrets_dir", "pipes' --dest-password-file must lie inside it (default STATE_DIR/secrets, "
                    "created 0700; none = files refused)"},
    {"secret_env_prefix", "pipes' --dest-password-env must start with it (default "
                          "PGFERRY_SECRET_; none = variables refused)"},
    {"secret_bind", "NAME = HOST:PORT[, HOST:PORT...]: where the secret file or variable NAME "
                    "may be sent (repeatable; file only; unbound secrets are refused)"},
    {"allow_cleartext_password",
     "true lets workers answer a source's clear-text password request (default false)"},
    {"source_passfile", "libpq password file of the workers (default none: no pgpass, no "
                        "PGPASSWORD; entries must name host and port)"},
};

void
daemon_config_defaults(daemon_config_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/pgferry");
    c->log_level = PGF_LOG_INFO;
    c->backoff_initial_ms = 1000;
    c->backoff_max_ms = 60000;
    c->degraded_after = 3;
    c->max_failures = 20;
    c->stop_grace_ms = 10000;
    c->max_pipes = 100;
    c->default_snapshot_workers = 0;
    c->batch_max_rows = BATCH_DEFAULT_MAX_ROWS;
    c->batch_max_bytes = BATCH_DEFAULT_MAX_BYTES;
    c->batch_max_wait_ms = BATCH_DEFAULT_MAX_WAIT_MS;
    c->retained_wal_warning_mb = 1024;
    c->history_max_events = 1000;
    snprintf(c->secret_env_prefix, sizeof(c->secret_env_prefix), "PGFERRY_SECRET_");
}

static bool
parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*v))
        return false;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x < min || x > max)
        return false;
    *out = x;
    return true;
}

bool
daemon_config_set(daemon_config_t *c, const char *key, const char *value, char *err, size_t errlen)
{
    uint64_t u;
#define STR(field)                                                                                 \
    do {                                                                                           \
        if (strlen(value) >= sizeof(c->field)) {                                                   \
            snprintf(err, errlen, "value of %s is too long", key);                                 \
            return false;                                                                          \
        }                                                                                          \
        snprintf(c->field, sizeof(c->field), "%s", value);                                         \
        return true;                                                                               \
    } while (0)
#define NUM(field, lo, hi)                                                                         \
    do {                                                                                           \
        if (!parse_u64(value, lo, hi, &u)) {                                                       \
            snprintf(err, errlen,                                                                  \
                     "bad value '%s' for %s: expected a whole number from %llu to %llu", value,    \
                     key, (unsigned long long)(lo), (unsigned long long)(hi));                     \
            return false;                                                                          \
        }                                                                                          \
        c->field = u;                                                                              \
        return true;                                                                               \
    } while (0)
    if (strcmp(key, "state_dir") == 0)
        STR(state_dir);
    if (strcmp(key, "control_endpoint") == 0)
        STR(control_endpoint);
    if (strcmp(key, "worker_bin") == 0)
        STR(worker_bin);
    if (strcmp(key, "control_remote") == 0)
        STR(control_remote);
    if (strcmp(key, "curve_key_file") == 0)
        STR(curve_key_file);
    if (strcmp(key, "curve_authorized_keys") == 0)
        STR(curve_authorized_keys);
    if (strcmp(key, "secrets_dir") == 0)
        STR(secrets_dir);
    if (strcmp(key, "secret_env_prefix") == 0) {
        if (strcmp(value, "none") != 0 && (strlen(value) < 4 || strlen(value) > 40)) {
            snprintf(err, errlen,
                     "bad value '%s' for secret_env_prefix: 4 to 40 characters, or none", value);
            return false;
        }
        for (const char *p = value; *p; p++) {
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '_')) {
                snprintf(err, errlen,
                         "bad value '%s' for secret_env_prefix: letters, digits and '_' only",
                         value);
                return false;
            }
        }
        STR(secret_env_prefix);
    }
    if (strcmp(key, "secret_bind") == 0) {
        const char *eq = strchr(value, '=');
        char name[sizeof(c->secret_binds[0].name)];
        size_t nl = eq ? (size_t)(eq - value) : 0;
        while (nl > 0 && isspace((unsigned char)value[nl - 1]))
            nl--;
        if (!eq || nl == 0 || nl >= sizeof(name)) {
            snprintf(err, errlen,
                     "bad value '%.200s' for secret_bind: expected NAME = HOST:PORT[, ...]", value);
            return false;
        }
        memcpy(name, value, nl);
        name[nl] = '\0';
        const char *eps = eq + 1;
        while (isspace((unsigned char)*eps))
            eps++;
        char e[256];
        if (!*eps || strlen(eps) >= sizeof(c->secret_binds[0].endpoints) ||
            !secret_endpoints_check(eps, e, sizeof(e))) {
            snprintf(err, errlen, "bad value for secret_bind %s: %s", name,
                     *eps ? (strlen(eps) >= sizeof(c->secret_binds[0].endpoints)
                                 ? "too many endpoints"
                                 : e)
                          : "no endpoint");
            return false;
        }
        size_t i = 0;
        while (i < c->n_secret_binds && strcmp(c->secret_binds[i].name, name) != 0)
            i++;
        if (i == SECRET_BIND_MAX) {
            snprintf(err, errlen, "more than %d secret_bind lines", SECRET_BIND_MAX);
            return false;
        }
        if (i == c->n_secret_binds)
            c->n_secret_binds++;
        snprintf(c->secret_binds[i].name, sizeof(c->secret_binds[i].name), "%s", name);
        snprintf(c->secret_binds[i].endpoints, sizeof(c->secret_binds[i].endpoints), "%s", eps);
        return true;
    }
    if (strcmp(key, "allow_cleartext_password") == 0) {
        if (strcmp(value, "true") == 0)
            c->allow_cleartext_password = true;
        else if (strcmp(value, "false") == 0)
            c->allow_cleartext_password = false;
        else {
            snprintf(err, errlen,
                     "bad value '%s' for allow_cleartext_password: expected true or false", value);
            return false;
        }
        return true;
    }
    if (strcmp(key, "source_passfile") == 0)
        STR(source_passfile);
    if (strcmp(key, "log_level") == 0) {
        if (!log_parse_level(value, &c->log_level)) {
            snprintf(err, errlen,
                     "bad value '%s' for log_level: expected error, warn, info or debug", value);
            return false;
        }
        return true;
    }
    if (strcmp(key, "log_format") == 0) {
        if (strcmp(value, "json") == 0)
            c->log_json = true;
        else if (strcmp(value, "text") == 0)
            c->log_json = false;
        else {
            snprintf(err, errlen, "bad value '%s' for log_format: expected text or json", value);
            return false;
        }
        return true;
    }
    if (strcmp(key, "backoff_initial_ms") == 0)
        NUM(backoff_initial_ms, 10, 3600000);
    if (strcmp(key, "backoff_max_ms") == 0)
        NUM(backoff_max_ms, 10, 86400000);
    if (strcmp(key, "degraded_after") == 0)
        NUM(degraded_after, 1, 1000);
    if (strcmp(key, "max_failures") == 0)
        NUM(max_failures, 1, 100000);
    if (strcmp(key, "stop_grace_ms") == 0)
        NUM(stop_grace_ms, 100, 600000);
    if (strcmp(key, "max_pipes") == 0)
        NUM(max_pipes, 1, 10000);
    if (strcmp(key, "default_snapshot_workers") == 0)
        NUM(default_snapshot_workers, 0, 64);
    if (strcmp(key, "batch_max_rows") == 0)
        NUM(batch_max_rows, 1, 10000000);
    if (strcmp(key, "batch_max_bytes") == 0)
        NUM(batch_max_bytes, 65536, 1073741824);
    if (strcmp(key, "batch_max_wait_ms") == 0)
        NUM(batch_max_wait_ms, 1, 600000);
    if (strcmp(key, "retained_wal_warning_mb") == 0)
        NUM(retained_wal_warning_mb, 1, 100000000);
    if (strcmp(key, "history_max_events") == 0)
        NUM(history_max_events, 10, 10000000);
    if (strcmp(key, "metrics_listen") == 0) {
        const char *colon = strrchr(value, ':');
        if (*value && (!colon || colon == value || !isdigit((unsigned char)colon[1]))) {
            snprintf(err, errlen, "bad value '%s' for metrics_listen: expected HOST:PORT", value);
            return false;
        }
        snprintf(c->metrics_listen, sizeof(c->metrics_listen), "%s", value);
        return true;
    }
#undef STR
#undef NUM
    snprintf(err, errlen, "unknown key '%s'", key);
    return false;
}

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

bool
daemon_config_load_file(daemon_config_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return false;
    }
    char line[2048];
    int lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected 'key = value', got '%.60s'", path, lineno, s);
            ok = false;
            break;
        }
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        size_t vl = strlen(v);
        if (vl >= 2 && ((v[0] == '"' && v[vl - 1] == '"') || (v[0] == '\'' && v[vl - 1] == '\''))) {
            v[vl - 1] = '\0';
            v++;
        }
        char e[512];
        if (!daemon_config_set(c, k, v, e, sizeof(e))) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, e);
            ok = false;
        }
    }
    fclose(f);
    return ok;
}

bool
daemon_config_load_env(daemon_config_t *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].key, "secret_bind") == 0)
            continue; /* PGFERRY_SECRET_BIND would be a secret variable's name */
        char name[64] = "PGFERRY_";
        size_t l = strlen(name);
        for (const char *p = keys[i].key; *p && l + 1 < sizeof(name); p++)
            name[l++] = (char)toupper((unsigned char)*p);
        name[l] = '\0';
        const char *v = getenv(name);
        if (!v)
            continue;
        char e[512];
        if (!daemon_config_set(c, keys[i].key, v, e, sizeof(e))) {
            snprintf(err, errlen, "environment %s: %s", name, e);
            return false;
        }
    }
    return true;
}

bool
daemon_config_finish(daemon_config_t *c, const char *argv0, char *err, size_t errlen)
{
    if (c->state_dir[0] != '/') {
        char cwd[PATH_MAX], abs[sizeof(c->state_dir)];
        if (!getcwd(cwd, sizeof(cwd)) ||
            (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, c->state_dir) >= sizeof(abs)) {
            snprintf(err, errlen, "state_dir %s: cannot make it absolute", c->state_dir);
            return false;
        }
        memcpy(c->state_dir, abs, sizeof(abs));
    }
    if (!c->secrets_dir[0]) {
        if ((size_t)snprintf(c->secrets_dir, sizeof(c->secrets_dir), "%s/secrets", c->state_dir) >=
            sizeof(c->secrets_dir)) {
            snprintf(err, errlen, "state_dir is too long for the default secrets_dir");
            return false;
        }
    } else if (strcmp(c->secrets_dir, "none") == 0) {
        c->secrets_dir[0] = '\0';
    } else if (c->secrets_dir[0] != '/') {
        snprintf(err, errlen, "secrets_dir %s: must be an absolute path (or none)", c->secrets_dir);
        return false;
    }
    if (strcmp(c->secret_env_prefix, "none") == 0)
        c->secret_env_prefix[0] = '\0';
    if (strcmp(c->source_passfile, "none") == 0)
        c->source_passfile[0] = '\0';
    if (c->source_passfile[0] && !daemon_config_passfile_check(c->source_passfile, err, errlen))
        return false;
    if (!c->control_endpoint[0])
        snprintf(c->control_endpoint, sizeof(c->control_endpoint), "ipc://%s/control.sock",
                 c->state_dir);
    /* sun_path is 108 bytes */
    if (strlen(c->state_dir) + strlen("/control.sock") >= 100) {
        snprintf(err, errlen, "state_dir %s is too long for a Unix socket path (max ~85 bytes)",
                 c->state_dir);
        return false;
    }
    if (strncmp(c->control_endpoint, "ipc://", 6) != 0) {
        snprintf(err, errlen,
                 "control_endpoint %s: must be ipc:// (owner-only); for remote control set "
                 "control_remote = tcp://... with curve_key_file and curve_authorized_keys",
                 c->control_endpoint);
        return false;
    }
    if (c->control_remote[0]) {
        if (strncmp(c->control_remote, "tcp://", 6) != 0) {
            snprintf(err, errlen, "control_remote %s: must be a tcp:// endpoint",
                     c->control_remote);
            return false;
        }
        if (!c->curve_key_file[0] || !c->curve_authorized_keys[0]) {
            snprintf(err, errlen,
                     "control_remote %s refused: a tcp:// control endpoint needs CURVE keys "
                     "(curve_key_file and curve_authorized_keys; pgferryctl keygen makes keys)",
                     c->control_remote);
            return false;
        }
    }
    if (c->backoff_max_ms < c->backoff_initial_ms) {
        snprintf(err, errlen, "backoff_max_ms (%llu) is below backoff_initial_ms (%llu)",
                 (unsigned long long)c->backoff_max_ms, (unsigned long long)c->backoff_initial_ms);
        return false;
    }
    if (c->max_failures < c->degraded_after) {
        snprintf(err, errlen, "max_failures (%u) is below degraded_after (%u)", c->max_failures,
                 c->degraded_after);
        return false;
    }
    if (!c->worker_bin[0]) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
            snprintf(self, sizeof(self), "%s", argv0);
            n = (ssize_t)strlen(self);
        }
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            slash[1] = '\0';
        else
            self[0] = '\0';
        if (strlen(self) + sizeof("pgferry-worker") > sizeof(c->worker_bin)) {
            snprintf(err, errlen, "the program directory path is too long; set worker_bin");
            return false;
        }
        snprintf(c->worker_bin, sizeof(c->worker_bin), "%.*spgferry-worker",
                 (int)(sizeof(c->worker_bin) - sizeof("pgferry-worker")), self);
    }
    if (access(c->worker_bin, X_OK) != 0) {
        snprintf(err, errlen, "worker program %s is not executable: %s", c->worker_bin,
                 strerror(errno));
        return false;
    }
    return true;
}

bool
daemon_config_passfile_check(const char *path, char *err, size_t errlen)
{
    if (path[0] != '/') {
        snprintf(err, errlen, "source_passfile %s: must be an absolute path (or none)", path);
        return false;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "source_passfile %s: cannot read: %s", path, strerror(errno));
        return false;
    }
    /* hostname:port:database:username:password; a '*' host or port would send the password to
     * any server a control client names */
    char line[2048];
    int lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char fields[2][300];
        size_t fi = 0, fl = 0;
        for (const char *p = s; *p && fi < 2; p++) {
            if (*p == '\\' && p[1]) {
                p++;
            } else if (*p == ':') {
                fields[fi][fl] = '\0';
                fi++;
                fl = 0;
                continue;
            }
            if (fl + 1 < sizeof(fields[0]))
                fields[fi][fl++] = *p;
        }
        if (fi < 2 || strcmp(fields[0], "*") == 0 || strcmp(fields[1], "*") == 0 || !fields[0][0] ||
            !fields[1][0]) {
            snprintf(err, errlen,
                     "source_passfile %s:%d: every entry must name its host and port (no '*'): "
                     "a password goes only to the server it names",
                     path, lineno);
            ok = false;
        }
    }
    fclose(f);
    return ok;
}

static bool
env_dropped(const char *kv)
{
    /* libpq's password, service and client-key variables, and the rules set below */
    static const char *const names[] = {"PGPASSWORD",
                                        "PGPASSFILE",
                                        "PGSERVICE",
                                        "PGSERVICEFILE",
                                        "PGSYSCONFDIR",
                                        "PGSSLKEY",
                                        "PGSSLCERT",
                                        "PGSSLROOTCERT",
                                        "PGSSLCRL",
                                        "PGSSLCRLDIR",
                                        "PGFERRY_BOUND_SECRETS",
                                        "PGFERRY_ALLOW_CLEARTEXT_PASSWORD",
                                        "PGFERRY_SECRETS_DIR",
                                        "PGFERRY_SECRET_ENV_PREFIX",
                                        NULL};
    for (size_t i = 0; names[i]; i++) {
        size_t l = strlen(names[i]);
        if (strncmp(kv, names[i], l) == 0 && kv[l] == '=')
            return true;
    }
    return false;
}

char **
daemon_config_worker_env(const daemon_config_t *c, char *const *base)
{
    size_t n = 0;
    while (base && base[n])
        n++;
    char **env = calloc(n + 10, sizeof(char *));
    if (!env)
        return NULL;
    size_t o = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (!env_dropped(base[i]))
            ok = (env[o++] = strdup(base[i])) != NULL;
    }
    static char binds[SECRET_BIND_MAX * 700];
    secret_binds_format(c->secret_binds, c->n_secret_binds, binds, sizeof(binds));
    /* a path that cannot exist: libpq then reads no ~/.pgpass; the client certificate and key
     * of ~/.postgresql are not offered to servers a control client chose */
    const char *none = "/dev/null/pgferry-none";
    const char *const add[][2] = {
        {"PGPASSFILE", c->source_passfile[0] ? c->source_passfile : none},
        {"PGSSLCERT", none},
        {"PGSSLKEY", none},
        {"PGFERRY_BOUND_SECRETS", binds},
        {"PGFERRY_ALLOW_CLEARTEXT_PASSWORD", c->allow_cleartext_password ? "true" : "false"},
        {"PGFERRY_SECRETS_DIR", c->secrets_dir},
        {"PGFERRY_SECRET_ENV_PREFIX", c->secret_env_prefix},
    };
    for (size_t i = 0; i < sizeof(add) / sizeof(add[0]) && ok; i++) {
        size_t l = strlen(add[i][0]) + strlen(add[i][1]) + 2;
        if ((env[o] = malloc(l)) == NULL) {
            ok = false;
            break;
        }
        snprintf(env[o++], l, "%s=%s", add[i][0], add[i][1]);
    }
    if (!ok) {
        daemon_config_free_env(env);
        return NULL;
    }
    return env;
}

void
daemon_config_free_env(char **env)
{
    if (!env)
        return;
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

void
daemon_config_print_keys(void)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        printf("  %-20s %s\n", keys[i].key, keys[i].help);
}
