/*
 * voxi-gateway: the public HTTP API: validates, authenticates through auth, forwards over
 * NATS. The modules: gw.h (server.c, call.c, openapi.c), gw_routes.h, gw_request.h,
 * gw_problem.h.
 *
 *   voxi-gateway            run (configured by VOXI_* variables, see README.md)
 *   voxi-gateway --routes   print the route table (method path subject scope class)
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "gw.h"
#include "gw_routes.h"
#include "lc_service.h"

static gw_config_t gw_config;

static const lc_config_entry_t gw_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(gw_config_t, "GATEWAY", 9101),
    {"VOXI_GATEWAY_HTTP_ADDR", LC_CFG_STRING, "127.0.0.1", 1, 255, NULL, 0,
     offsetof(gw_config_t, http_addr), "address the public HTTP API binds (numeric IPv4 or IPv6)"},
    {"VOXI_GATEWAY_HTTP_PORT", LC_CFG_INT, "8080", 0, 65535, NULL, 0,
     offsetof(gw_config_t, http_port), "port of the public HTTP API (0 = any free port)"},
    {"VOXI_GATEWAY_REQUEST_TIMEOUT_MS", LC_CFG_INT, "5000", 10, 300000, NULL, 0,
     offsetof(gw_config_t, request_timeout_ms),
     "deadline for the owning service's answer; past it the caller gets 504"},
    {"VOXI_GATEWAY_AUTH_TIMEOUT_MS", LC_CFG_INT, "2000", 10, 60000, NULL, 0,
     offsetof(gw_config_t, auth_timeout_ms),
     "deadline for auth's answer (voxi.auth.authenticate); past it the caller gets 504"},
    {"VOXI_GATEWAY_MAX_BODY_BYTES", LC_CFG_INT, "1048576", 1024, 16777216, NULL, 0,
     offsetof(gw_config_t, max_body_bytes),
     "largest request body accepted (413 past it); NATS max_payload bounds what can be "
     "forwarded"},
    {"VOXI_GATEWAY_MAX_INFLIGHT", LC_CFG_INT, "10000", 1, 1000000, NULL, 0,
     offsetof(gw_config_t, max_inflight),
     "requests in progress at once; past it new ones get 503 with Retry-After"},
};

static gw_t *gateway;

static lc_status_t
on_start(lc_service_t *svc, void *arg)
{
    (void) arg;
    return gw_start(gateway, lc_service_loop(svc), lc_service_nats(svc), lc_service_metrics(svc));
}

static void
on_stop(lc_service_t *svc, void *arg)
{
    (void) svc;
    (void) arg;
    gw_stop(gateway);
}

static size_t
on_inflight(void *arg)
{
    (void) arg;
    return gw_inflight(gateway);
}

int
main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--routes") == 0) {
        gw_routes_print(stdout);
        return 0;
    }
    gateway = gw_create(&gw_config);
    lc_service_def_t def = {
        .name = "gateway",
        .config_table = gw_config_table,
        .config_count = sizeof(gw_config_table) / sizeof(gw_config_table[0]),
        .config = &gw_config,
        .start = on_start,
        .stop = on_stop,
        .inflight = on_inflight,
    };
    int code = lc_service_main(&def, argc, argv);
    gw_destroy(gateway);
    return code;
}
