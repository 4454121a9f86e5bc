/*
 * voxi-registry: agents, phone numbers and calls: the system of record in Postgres.
 */
#include <stddef.h>
#include <string.h>
#include "lc_migrate.h"
#include "lc_service.h"

typedef struct {
    lc_service_config_t common;
} rg_config_t;

static rg_config_t rg_config;

static const lc_config_entry_t rg_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(rg_config_t, "REGISTRY", 9103),
    LC_SERVICE_CONFIG_DATABASE(rg_config_t),
};

int
main(int argc, char **argv)
{
    /* `voxi-registry migrate` applies pending migrations and exits (operators, make run). */
    if (argc > 1 && strcmp(argv[1], "migrate") == 0)
        return lc_migrate_main(argc - 1, argv + 1);
    lc_service_def_t def = {
        .name = "registry",
        .config_table = rg_config_table,
        .config_count = sizeof(rg_config_table) / sizeof(rg_config_table[0]),
        .config = &rg_config,
    };
    return lc_service_main(&def, argc, argv);
}
