/*
 * daemon_config: pgferryd's settings from a `key = value` file, PGFERRY_* environment
 * variables and command-line flags (in that order, later wins). Errors name the file, line
 * and key.
 */
#ifndef PGFERRY_DAEMON_CONFIG_H
#define PGFERRY_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "log.h"
#include "secrets.h"

typedef struct {
    char state_dir[512];
    char control_endpoint[600]; /* default ipc://STATE_DIR/control.sock */
    char worker_bin[1024];      /* default: pgferry-worker next to pgferryd */
    log_level_t log_level;
    bool log_json;
    uint64_t backoff_initial_ms;
    uint64_t backoff_max_ms;
    uint32_t degraded_after;           /* consecutive failures without progress -> Degraded */
    uint32_t max_failures;             /* consecutive failures without progress -> Failed */
    uint64_t stop_grace_ms;            /* SIGTERM -> SIGKILL */
    uint32_t max_pipes;                /* pipes this daemon accepts */
    uint32_t default_snapshot_workers; /* per pipe when create does not say; 0 = cores */
    uint32_t batch_max_rows;           /* CDC batch limits of new pipes */
    uint64_t batch_max_bytes;
    uint32_t batch_max_wait_ms;
    uint64_t retained_wal_warning_mb; /* warn when a slot retains more WAL than this */
    uint32_t history_max_events;      /* history events kept per pipe */
    char metrics_listen[128];         /* host:port of the /metrics HTTP endpoint; "" = off */
    char config_file[512];            /* where the settings came from, for SIGHUP */
    char control_remote[256];         /* optional tcp:// control endpoint, CURVE only */
    char curve_key_file[512];         /* the daemon's key pair (pgferryctl keygen) */
    char curve_authorized_keys[512];  /* client public keys allowed on control_remote */
    char secrets_dir[512];            /* --dest-password-file must be inside; "" = off */
    char secret_env_prefix[64];       /* --dest-password-env must start with it; "" = off */
    secret_bind_t secret_binds[SECRET_BIND_MAX]; /* where each reserved secret may go */
    size_t n_secret_binds;
    bool allow_cleartext_password; /* workers may answer a clear-text password request */
    char source_passfile[512];     /* the workers' PGPASSFILE; "" = none */
} daemon_config_t;

void daemon_config_defaults(daemon_config_t *c);
/* Sets one key; err gets "unknown key" / "bad value" sentences. */
bool daemon_config_set(daemon_config_t *c, const char *key, const char *value, char *err,
                       size_t errlen);
bool daemon_config_load_file(daemon_config_t *c, const char *path, char *err, size_t errlen);
/* Applies PGFERRY_<KEY> environment variables for every known key. */
bool daemon_config_load_env(daemon_config_t *c, char *err, size_t errlen);
/* Fills derived defaults and checks consistency. */
bool daemon_config_finish(daemon_config_t *c, const char *argv0, char *err, size_t errlen);
/* The environment of a worker: base without the libpq variables that would send pgferryd's
 * passwords, keys or service files to a server a control client chose, plus the password rules
 * (bindings, clear-text policy, PGPASSFILE). A NULL-terminated array of malloc'd strings
 * (daemon_config_free_env), NULL when out of memory. */
char **daemon_config_worker_env(const daemon_config_t *c, char *const *base);
void daemon_config_free_env(char **env);
/* A source_passfile whose every entry names its host and port (libpq then sends each password
 * only to the server it is for). */
bool daemon_config_passfile_check(const char *path, char *err, size_t errlen);
/* Prints the keys with their meaning (for --help). */
void daemon_config_print_keys(void);

#endif
