/*
 * pv_service: the providers service's state, its configuration and the lc_service hooks.
 *
 * Sessions are opened with a request on voxi.providers.<kind>.open (queue group
 * "providers"); the instance that takes one keeps it in its session table and receives its
 * input on voxi.providers.in.<instance_id>.<session_id> (one wildcard subscription). See
 * proto/voxi/v1/providers.proto for the protocol and pv_session.h for a session's life.
 *
 * Threads: the loop thread, except where a module says otherwise.
 */
#ifndef PV_SERVICE_H
#define PV_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_service.h"
#include "lc_ssrf.h"

typedef struct {
    lc_service_config_t common;
    bool test_engines;
    int64_t max_sessions;
    int64_t stt_decoders;
    char *stt_model_dir;
    int64_t stt_max_queued_ms;
    char *openai_base_url;
    char *openai_api_key;
    char *openai_model;
    int64_t openai_timeout_ms;
    int64_t openai_connect_timeout_ms;
    char *ssrf_allowlist;
} pv_config_t;

typedef struct pv_session pv_session_t;
typedef struct pv_stt_pool pv_stt_pool_t;
typedef struct pv_http pv_http_t;

/* Metering and outcome counters (registered once at start). */
typedef struct {
    lc_metric_t *sessions_active;
    lc_metric_t *stt_seconds;
    lc_metric_t *llm_prompt_tokens;
    lc_metric_t *llm_completion_tokens;
    lc_metric_t *tts_characters;
    lc_metric_t *tts_seconds;
    lc_metric_t *input_dropped;
} pv_metrics_t;

typedef struct pv_service {
    pv_config_t *cfg;
    lc_service_t *svc;
    uv_loop_t *loop;
    lc_nats_t *nats;
    lc_metrics_t *metrics;
    pv_metrics_t m;
    const char *instance_id;
    char in_prefix[128]; /* "voxi.providers.in.<instance_id>." */
    lc_nats_sub_t *open_subs[3];
    lc_nats_sub_t *in_sub;
    /* sessions by id: open addressing would do; a list is enough for the bounded count */
    pv_session_t *sessions;
    size_t nsessions;
    size_t allocated_sessions; /* in the table or still held by a job after the end */
    uv_timer_t sweep_timer;
    uv_timer_t drain_timer;
    bool draining;
    bool closed;
    int64_t linger_until_ms; /* draining: last events still being written to NATS */
    pv_stt_pool_t *stt_pool;
    pv_http_t *http;
    lc_ssrf_allowlist_t *allowlist;
} pv_service_t;

/* Closes the service's own handles once draining and no session is left (idempotent). */
void pv_service_maybe_close(pv_service_t *ps);

/* lc_service hooks; arg is the pv_service_t. */
lc_status_t pv_service_start(lc_service_t *svc, void *arg);
void pv_service_stop(lc_service_t *svc, void *arg);
size_t pv_service_inflight(void *arg);
bool pv_service_ready(void *arg, char *reason, size_t reason_size);
void pv_service_cleanup(void *arg);

#endif
