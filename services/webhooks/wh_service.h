/*
 * wh_service: the configuration and the context every module of voxi-webhooks shares.
 *
 * main.c owns one wh_service_t: it fills `cfg` from the environment (lc_config), and its
 * start hook creates the modules in order (http engine, delivery, consumer, API, tool
 * calls); stop and shutdown run in reverse. Modules borrow the context for their lifetime.
 *
 * Threads: the loop thread only.
 */
#ifndef WH_SERVICE_H
#define WH_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_events.h"
#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_pg.h"
#include "lc_service.h"
#include "lc_ssrf.h"

typedef struct {
    lc_service_config_t common;
    int64_t http_timeout_ms;
    bool allow_http;
    char *ssrf_allowlist;
    char *retry_scale; /* text; parsed into wh_service_t.retry_scale */
    int64_t secret_overlap_s;
    int64_t disable_after_failing_s;
    int64_t response_bytes_kept;
    int64_t max_concurrent;
    int64_t consumer_batch;
    int64_t ack_wait_ms;
    int64_t poll_interval_ms;
    int64_t tool_timeout_max_ms;
    int64_t tool_max_response_bytes;
} wh_config_t;

/* Names of the event stream and of our durable consumer on it. */
#define WH_STREAM "VOXI_EVENTS"
#define WH_STREAM_SUBJECTS "voxi.events.>"
#define WH_STREAM_MAX_AGE_S (7 * 24 * 3600)
#define WH_STREAM_DUPLICATE_WINDOW_S 120
#define WH_DURABLE "webhooks"
#define WH_QUEUE_GROUP "webhooks"

/* Bytes of one event we accept from the stream (NATS max_payload is 1 MB). */
#define WH_EVENT_MAX_BYTES (1024 * 1024)
/* Identifier and type lengths we accept from outside. */
#define WH_ID_MAX 64
#define WH_TYPE_MAX 100
#define WH_URL_MAX 2048

typedef struct wh_http wh_http_t;
typedef struct wh_delivery wh_delivery_t;
typedef struct wh_consumer wh_consumer_t;
typedef struct wh_api wh_api_t;

typedef struct {
    const wh_config_t *cfg;
    double retry_scale;
    lc_ssrf_allowlist_t *allowlist;

    lc_service_t *svc;
    uv_loop_t *loop;
    lc_nats_t *nats;
    lc_pg_pool_t *pg;
    lc_metrics_t *metrics;
    const char *instance_id;
    lc_events_t *events; /* endpoint.disabled, function.executed */

    wh_http_t *http;
    wh_delivery_t *delivery;
    wh_consumer_t *consumer;
    wh_api_t *api;
    bool draining;
} wh_service_t;

/*
 * Checks the settings lc_config cannot (the scale is a decimal number, the allowlist a list
 * of networks) and fills retry_scale and allowlist. On error appends one line per problem
 * to `errors` (errors_size bytes) and returns LC_ERR_CONFIG.
 */
lc_status_t wh_service_check_config(wh_service_t *ws, char *errors, size_t errors_size);

#endif
