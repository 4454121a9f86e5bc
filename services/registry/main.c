/*
 * voxi-registry: agents, phone numbers and calls: the system of record in Postgres.
 *
 * Wiring only: api.c serves the subjects (agents.c, numbers.c do the work), events.c
 * publishes changes to JetStream, secret.c seals stored trunk passwords.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lc_log.h"
#include "lc_migrate.h"
#include "lc_service.h"
#include "rg_api.h"
#include "lc_events.h"
#include "rg_secret.h"

typedef struct {
    lc_service_config_t common;
    char *secret_key;
} rg_config_t;

static rg_config_t rg_config;

static const lc_config_entry_t rg_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(rg_config_t, "REGISTRY", 9103),
    LC_SERVICE_CONFIG_DATABASE(rg_config_t),
    {"VOXI_REGISTRY_SECRET_KEY", LC_CFG_STRING, NULL, 64, 64, NULL, LC_CFG_SECRET,
     offsetof(rg_config_t, secret_key),
     "64 hex characters (32 bytes): AES-256-GCM key sealing stored trunk passwords; unset = "
     "stored unencrypted (a warning is logged)"},
};

typedef struct {
    rg_secret_t *secret;
    lc_events_t *events;
    rg_api_t *api;
} rg_state_t;

static lc_status_t
rg_start(lc_service_t *svc, void *arg)
{
    rg_state_t *st = arg;
    if (rg_secret_create(rg_config.secret_key, &st->secret) != LC_OK) {
        LC_ERROR("registry", "VOXI_REGISTRY_SECRET_KEY must be 64 hex characters");
        return LC_ERR_CONFIG;
    }
    if (!rg_secret_has_key(st->secret))
        LC_WARN("registry", "VOXI_REGISTRY_SECRET_KEY is not set: outbound trunk passwords are "
                            "stored unencrypted");
    st->events =
        lc_events_create(lc_service_loop(svc), lc_service_nats(svc), lc_service_metrics(svc),
                         "voxi_registry_events_total", "change events published, by outcome");
    rg_api_deps_t deps = {.loop = lc_service_loop(svc),
                          .nats = lc_service_nats(svc),
                          .pg = lc_service_pg(svc),
                          .metrics = lc_service_metrics(svc),
                          .secret = st->secret,
                          .events = st->events};
    lc_status_t s = rg_api_start(&deps, &st->api);
    if (s != LC_OK)
        lc_events_stop(st->events); /* the service closes without calling stop */
    return s;
}

static void
rg_stop(lc_service_t *svc, void *arg)
{
    (void) svc;
    rg_state_t *st = arg;
    rg_api_stop(st->api);
    lc_events_stop(st->events);
}

static size_t
rg_inflight(void *arg)
{
    rg_state_t *st = arg;
    return rg_api_inflight(st->api) + lc_events_inflight(st->events);
}

static bool
rg_ready(void *arg, char *reason, size_t reason_size)
{
    rg_state_t *st = arg;
    if (st->events == NULL || !lc_events_ready(st->events)) {
        snprintf(reason, reason_size, "event stream " LC_EVENTS_STREAM " not ensured yet");
        return false;
    }
    return true;
}

static void
rg_cleanup(void *arg)
{
    rg_state_t *st = arg;
    rg_api_destroy(st->api);
    lc_events_destroy(st->events);
    rg_secret_destroy(st->secret);
}

int
main(int argc, char **argv)
{
    /* `voxi-registry migrate` applies pending migrations and exits (operators, make run). */
    if (argc > 1 && strcmp(argv[1], "migrate") == 0)
        return lc_migrate_main(argc - 1, argv + 1);
    static rg_state_t state;
    lc_service_def_t def = {
        .name = "registry",
        .config_table = rg_config_table,
        .config_count = sizeof(rg_config_table) / sizeof(rg_config_table[0]),
        .config = &rg_config,
        .start = rg_start,
        .stop = rg_stop,
        .inflight = rg_inflight,
        .ready = rg_ready,
        .cleanup = rg_cleanup,
        .arg = &state,
    };
    return lc_service_main(&def, argc, argv);
}
