/*
 * voxi-webhooks: signed, retried webhook delivery and tool calls to customer URLs.
 *
 * This file only reads the configuration and wires the modules (wh_service.c); see
 * wh_consumer.h (events in), wh_delivery.h (attempts and retries), wh_http.h (egress and the
 * SSRF guard), wh_api.h (the REST API on the bus) and wh_invoke.h (tool calls).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_service.h"
#include "wh_http.h"
#include "wh_service.h"
#include "wh_service_hooks.h"

static wh_config_t wh_config;
static wh_service_t wh_service = {.cfg = &wh_config};

#define WH_INT(name, def, min, max, field, help)                                                   \
    {                                                                                              \
        "VOXI_WEBHOOKS_" name, LC_CFG_INT, def, min, max, NULL, 0, offsetof(wh_config_t, field),   \
            help                                                                                   \
    }

static const lc_config_entry_t wh_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(wh_config_t, "WEBHOOKS", 9104),
    LC_SERVICE_CONFIG_DATABASE(wh_config_t),
    WH_INT("HTTP_TIMEOUT_MS", "15000", 100, 120000, http_timeout_ms,
           "timeout of one delivery attempt, connect included"),
    {"VOXI_WEBHOOKS_ALLOW_HTTP", LC_CFG_BOOL, "false", 0, 0, NULL, 0,
     offsetof(wh_config_t, allow_http), "accept plain http:// endpoint and tool URLs"},
    {"VOXI_WEBHOOKS_SSRF_ALLOWLIST", LC_CFG_STRING, NULL, 0, 4096, NULL, 0,
     offsetof(wh_config_t, ssrf_allowlist),
     "comma-separated networks (CIDR) customer URLs may reach despite the SSRF guard"},
    {"VOXI_WEBHOOKS_RETRY_SCALE", LC_CFG_STRING, "1.0", 1, 32, NULL, 0,
     offsetof(wh_config_t, retry_scale),
     "decimal factor (0, 1000] on the retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h)"},
    WH_INT("SECRET_OVERLAP_S", "86400", 0, 30 * 86400, secret_overlap_s,
           "after a rotation, how long the previous secret still signs"),
    WH_INT("DISABLE_AFTER_FAILING_S", "432000", 1, 365 * 86400, disable_after_failing_s,
           "an endpoint failing without a success for this long is disabled"),
    WH_INT("RESPONSE_BYTES_KEPT", "1024", 0, 65536, response_bytes_kept,
           "first bytes of each response body kept in the deliveries log"),
    WH_INT("MAX_CONCURRENT", "512", 1, 10000, max_concurrent,
           "delivery attempts in progress at once"),
    WH_INT("CONSUMER_BATCH", "256", 1, 10000, consumer_batch,
           "events stored per statement; 4x this many may be unacknowledged"),
    WH_INT("ACK_WAIT_MS", "30000", 1000, 3600000, ack_wait_ms,
           "JetStream redelivers an event not acknowledged within this time"),
    WH_INT("POLL_INTERVAL_MS", "1000", 10, 60000, poll_interval_ms,
           "longest wait between two looks for due deliveries"),
    WH_INT("TOOL_TIMEOUT_MAX_MS", "10000", 100, 120000, tool_timeout_max_ms,
           "upper bound of a tool call's timeout"),
    WH_INT("TOOL_MAX_RESPONSE_BYTES", "65536", 1024, 16 * 1024 * 1024, tool_max_response_bytes,
           "largest tool call response accepted"),
};
#define WH_CONFIG_COUNT (sizeof(wh_config_table) / sizeof(wh_config_table[0]))

/* The settings lc_config cannot check are checked here first, so that a bad value exits 2
 * like any configuration error, with every problem listed. */
static int
precheck_config(void)
{
    wh_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    char *errors = NULL;
    lc_status_t st = lc_config_load(wh_config_table, WH_CONFIG_COUNT, &cfg, NULL, NULL, &errors);
    wh_service_t probe = {.cfg = &cfg};
    char extra[512];
    lc_status_t st2 = wh_service_check_config(&probe, extra, sizeof(extra));
    lc_ssrf_allowlist_destroy(probe.allowlist);
    lc_config_free(wh_config_table, WH_CONFIG_COUNT, &cfg);
    if (st == LC_OK && st2 == LC_OK)
        return 0;
    fprintf(stderr, "voxi-webhooks: invalid configuration:\n%s%s", errors ? errors : "",
            st2 != LC_OK ? extra : "");
    free(errors);
    return 2;
}

int
main(int argc, char **argv)
{
    if (argc <= 1 && precheck_config() != 0)
        return 2;
    wh_http_global_init();
    lc_service_def_t def = {
        .name = "webhooks",
        .config_table = wh_config_table,
        .config_count = WH_CONFIG_COUNT,
        .config = &wh_config,
        .db_pool_size = 8,
        .start = wh_service_start,
        .stop = wh_service_stop,
        .inflight = wh_service_inflight,
        .cleanup = wh_service_cleanup,
        .ready = wh_service_ready,
        .arg = &wh_service,
    };
    int code = lc_service_main(&def, argc, argv);
    wh_http_global_cleanup();
    return code;
}
