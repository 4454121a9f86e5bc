/*
 * voxi-webhooks: signed, retried webhook delivery and tool calls to customer URLs.
 */
#include <stddef.h>
#include <string.h>

#include "lc_service.h"

typedef struct {
    lc_service_config_t common;
} wh_config_t;

static wh_config_t wh_config;

static const lc_config_entry_t wh_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(wh_config_t, "WEBHOOKS", 9104),
    LC_SERVICE_CONFIG_DATABASE(wh_config_t),
};

int
main(int argc, char **argv)
{
    lc_service_def_t def = {
        .name = "webhooks",
        .config_table = wh_config_table,
        .config_count = sizeof(wh_config_table) / sizeof(wh_config_table[0]),
        .config = &wh_config,
    };
    return lc_service_main(&def, argc, argv);
}
