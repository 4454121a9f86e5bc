/*
 * voxi-registry: agents, phone numbers and calls: the system of record in Postgres.
 *
 * Wiring only: api.c serves the subjects (agents.c, numbers.c, calls.c do the work), events.c
 * publishes changes to JetStream, secret.c seals stored trunk passwords, calls_consumer.c
 * stores call records from the call events.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lc_log.h"
#include "lc_migrate.h"
#include "lc_service.h"
#include "rg_api.h"
#include "rg_calls_consumer.h"
#include "rg_prices.h"
#include "lc_events.h"
#include "rg_secret.h"

typedef struct {
    lc_service_config_t common;
    char *secret_key;
    char *prices;
    int64_t call_events_ack_wait_ms;
} rg_config_t;

static rg_config_t rg_config;

static const lc_config_entry_t rg_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(rg_config_t, "REGISTRY", 9103),
    LC_SERVICE_CONFIG_DATABASE(rg_config_t),
    {"VOXI_REGISTRY_SECRET_KEY", LC_CFG_STRING, NULL, 64, 64, NULL, LC_CFG_SECRET,
     offsetof(rg_config_t, secret_key),
     "64 hex characters (32 bytes): AES-256-GCM key sealing stored trunk passwords; unset = "
     "stored unencrypted (a warning is logged)"},
    {"VOXI_REGISTRY_PRICES", LC_CFG_STRING,
     "telephony_per_min=0.01,stt_per_min=0.006,llm_per_1k_prompt_tokens=0.0005,"
     "llm_per_1k_completion_tokens=0.0015,tts_per_1k_chars=0.015,currency=USD",
     0, 1024, NULL, 0, offsetof(rg_config_t, prices),
     "price table for calls' cost: comma-separated key=value of telephony_per_min, stt_per_min, "
     "llm_per_1k_prompt_tokens, llm_per_1k_completion_tokens, tts_per_1k_chars (missing = 0) "
     "and currency (ISO 4217)"},
    {"VOXI_REGISTRY_CALL_EVENTS_ACK_WAIT_MS", LC_CFG_INT, "30000", 1000, 600000, NULL, 0,
     offsetof(rg_config_t, call_events_ack_wait_ms),
     "JetStream redelivers a call event the registry has not acknowledged within this time"},
};

typedef struct {
    rg_secret_t *secret;
    lc_events_t *events;
    rg_api_t *api;
    rg_prices_t prices;
    rg_calls_consumer_t *calls;
} rg_state_t;

static lc_status_t
rg_start(lc_service_t *svc, void *arg)
{
    rg_state_t *st = arg;
    if (rg_secret_create(rg_config.secret_key, &st->secret) != LC_OK) {
        LC_ERROR("registry", "VOXI_REGISTRY_SECRET_KEY must be 64 hex characters");
        return LC_ERR_CONFIG;
    }
    char why[160];
    if (rg_prices_parse(rg_config.prices, &st->prices, why, sizeof(why)) != LC_OK) {
        LC_ERROR("registry", "VOXI_REGISTRY_PRICES: %s", why);
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
                          .events = st->events,
                          .prices = &st->prices};
    lc_status_t s = rg_api_start(&deps, &st->api);
    if (s == LC_OK) {
        st->calls =
            rg_calls_consumer_create(lc_service_loop(svc), lc_service_nats(svc), lc_service_pg(svc),
                                     lc_service_metrics(svc), rg_config.call_events_ack_wait_ms);
        s = rg_calls_consumer_start(st->calls);
    }
    if (s != LC_OK) {
        /* the service closes without calling stop */
        rg_api_stop(st->api);
        rg_calls_consumer_stop(st->calls);
        lc_events_stop(st->events);
    }
    return s;
}

static void
rg_stop(lc_service_t *svc, void *arg)
{
    (void) svc;
    rg_state_t *st = arg;
    rg_api_stop(st->api);
    rg_calls_consumer_stop(st->calls);
    lc_events_stop(st->events);
}

static size_t
rg_inflight(void *arg)
{
    rg_state_t *st = arg;
    return rg_api_inflight(st->api) + lc_events_inflight(st->events) +
           rg_calls_consumer_inflight(st->calls);
}

static bool
rg_ready(void *arg, char *reason, size_t reason_size)
{
    rg_state_t *st = arg;
    if (st->events == NULL || !lc_events_ready(st->events)) {
        snprintf(reason, reason_size, "event stream " LC_EVENTS_STREAM " not ensured yet");
        return false;
    }
    if (!rg_calls_consumer_ready(st->calls)) {
        snprintf(reason, reason_size, "call-event consumer " RG_CALLS_DURABLE " not created yet");
        return false;
    }
    return true;
}

static void
rg_cleanup(void *arg)
{
    rg_state_t *st = arg;
    rg_api_destroy(st->api);
    rg_calls_consumer_destroy(st->calls);
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
