/* pgferryd: reads the configuration and runs the supervisor. Kept thin on purpose. */
#include "daemon_config.h"
#include "exitcodes.h"
#include "log.h"
#include "store.h"
#include "supervisor.h"
#include "version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(void)
{
    printf("usage: pgferryd [--config FILE] [--KEY VALUE ...]\n"
           "       pgferryd --version\n\n"
           "Replicates PostgreSQL into ClickHouse; commanded with pgferryctl.\n"
           "Settings come from FILE (key = value), then PGFERRY_<KEY> environment variables,\n"
           "then flags (--state-dir DIR is the flag for key state_dir). Keys:\n");
    daemon_config_print_keys();
}

int
main(int argc, char **argv)
{
    daemon_config_t cfg;
    char err[1024];
    daemon_config_defaults(&cfg);
    log_init("supervisor", NULL);
    const char *config_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("pgferryd %s\n", PGFERRY_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_file = argv[++i];
    }
    if (config_file)
        snprintf(cfg.config_file, sizeof(cfg.config_file), "%s", config_file);
    if (config_file && !daemon_config_load_file(&cfg, config_file, err, sizeof(err))) {
        fprintf(stderr, "pgferryd: %s\n", err);
        return 2;
    }
    if (!daemon_config_load_env(&cfg, err, sizeof(err))) {
        fprintf(stderr, "pgferryd: %s\n", err);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "pgferryd: unexpected argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
        char key[64];
        snprintf(key, sizeof(key), "%s", argv[i] + 2);
        for (char *p = key; *p; p++) {
            if (*p == '-')
                *p = '_';
        }
        if (!daemon_config_set(&cfg, key, argv[i + 1], err, sizeof(err))) {
            fprintf(stderr, "pgferryd: --%s: %s\n", argv[i] + 2, err);
            return 2;
        }
        i++;
    }
    if (!daemon_config_finish(&cfg, argv[0], err, sizeof(err))) {
        fprintf(stderr, "pgferryd: %s\n", err);
        return 2;
    }
    log_set_level(cfg.log_level);
    log_set_json(cfg.log_json);
    supervisor_t *s = supervisor_new(&cfg);
    if (!s) /* errors already logged; a damaged store is not worth a restart loop */
        return store_open_found_damage() ? EXIT_STORE_DAMAGED : 1;
    int rc = supervisor_run(s);
    supervisor_destroy(&s);
    return rc;
}
