/*
 * voxi-media: the SIP/RTP worker that answers and places calls and runs the agent per call.
 */
#include <stddef.h>
#include <string.h>

#include "lc_service.h"

typedef struct {
    lc_service_config_t common;
} md_config_t;

static md_config_t md_config;

static const lc_config_entry_t md_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(md_config_t, "MEDIA", 9105),
};

int
main(int argc, char **argv)
{
    lc_service_def_t def = {
        .name = "media",
        .config_table = md_config_table,
        .config_count = sizeof(md_config_table) / sizeof(md_config_table[0]),
        .config = &md_config,
    };
    return lc_service_main(&def, argc, argv);
}
