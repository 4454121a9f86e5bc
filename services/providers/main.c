/*
 * voxi-providers: speech-to-text, LLM and text-to-speech sessions, local engines and vendor APIs.
 */
#include <stddef.h>
#include <string.h>

#include "lc_service.h"

typedef struct {
    lc_service_config_t common;
} pv_config_t;

static pv_config_t pv_config;

static const lc_config_entry_t pv_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(pv_config_t, "PROVIDERS", 9106),
};

int
main(int argc, char **argv)
{
    lc_service_def_t def = {
        .name = "providers",
        .config_table = pv_config_table,
        .config_count = sizeof(pv_config_table) / sizeof(pv_config_table[0]),
        .config = &pv_config,
    };
    return lc_service_main(&def, argc, argv);
}
