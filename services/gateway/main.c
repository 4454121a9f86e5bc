/*
 * voxi-gateway: the public HTTP API: validates, authenticates through auth, forwards over NATS.
 */
#include <stddef.h>
#include <string.h>

#include "lc_service.h"

typedef struct {
    lc_service_config_t common;
} gw_config_t;

static gw_config_t gw_config;

static const lc_config_entry_t gw_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(gw_config_t, "GATEWAY", 9101),
};

int
main(int argc, char **argv)
{
    lc_service_def_t def = {
        .name = "gateway",
        .config_table = gw_config_table,
        .config_count = sizeof(gw_config_table) / sizeof(gw_config_table[0]),
        .config = &gw_config,
    };
    return lc_service_main(&def, argc, argv);
}
