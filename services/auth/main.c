/*
 * voxi-auth: orgs, API keys, JWTs, scopes and rate limits.
 */
#include <stddef.h>
#include <string.h>

#include "lc_service.h"

typedef struct {
    lc_service_config_t common;
} au_config_t;

static au_config_t au_config;

static const lc_config_entry_t au_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(au_config_t, "AUTH", 9102),
    LC_SERVICE_CONFIG_DATABASE(au_config_t),
};

int
main(int argc, char **argv)
{
    lc_service_def_t def = {
        .name = "auth",
        .config_table = au_config_table,
        .config_count = sizeof(au_config_table) / sizeof(au_config_table[0]),
        .config = &au_config,
    };
    return lc_service_main(&def, argc, argv);
}
