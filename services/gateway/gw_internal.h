/*
 * gw_internal: what the gateway's files share: the gateway object, the per-request
 * response context, and the functions each file offers the others.
 *
 *   server.c   HTTP entry point: request id, routing, capacity, responses, metrics
 *   call.c     the deferred part: authenticate, check the request, forward, map the reply
 *   openapi.c  the embedded OpenAPI document and the /docs page
 *
 * Threads: loop thread only.
 */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw.h"
#include "gw_problem.h"
#include "gw_request.h"
#include "gw_routes.h"
#include "lc_http.h"

#define GW_POLICY_MAX 128
/* lc_http's own deadline on a deferred request is a backstop behind the NATS timeout. */
#define GW_DEADLINE_GRACE_MS 1000

/* The rate-limit state auth reported for a request, sent back as headers. */
typedef struct {
    bool present;
    int64_t limit, remaining, reset_s, retry_after_s;
    char policy[GW_POLICY_MAX]; /* printable ASCII, "" when none */
} gw_ratelimit_t;

/* What every response of one request needs besides status and body. */
typedef struct {
    char request_id[GW_REQUEST_ID_SIZE];
    size_t metric_index; /* index into gw_routes, or gw_route_count for "other" */
    uint64_t started_ns; /* uv_hrtime() when the request arrived */
    gw_ratelimit_t rl;   /* after auth answered */
} gw_ctx_t;

struct gw {
    const gw_config_t *cfg;
    uv_loop_t *loop;
    lc_nats_t *nats;
    lc_http_t *http;
    bool http_closed;
    size_t ncalls; /* requests waiting for auth or a service */
    /* metrics; index gw_route_count is "other" (no route matched) */
    lc_metrics_t *metrics;
    lc_metric_t **requests; /* [route][class], class 0..3 = 2xx, 3xx, 4xx, 5xx */
    lc_metric_t **duration; /* [route] */
    lc_metric_t *inflight;
    /* auth decisions with rate-limit slices (gw_authcache.h), and the revocation broadcast
     * that drops them */
    struct gw_authcache *authcache;
    lc_nats_sub_t *evict_sub;
    /* the OpenAPI document and the docs page (openapi.c) */
    const char *openapi;
    size_t openapi_len;
    char *docs_html;
    size_t docs_len;
};

/* ---- server.c ---- */

/* Sends a JSON (or other) response with the headers every response carries: X-Request-Id,
 * Cache-Control: no-store, the rate-limit headers when auth reported them; records the
 * metrics. body is copied. */
/* The headers of every API response: X-Request-Id, Cache-Control: no-store, rate limits. */
void gw_common_headers(h2o_req_t *req, const gw_ctx_t *ctx);
/* Counts a response in the request metrics of its route and status class. */
void gw_count_response(gw_t *gw, const gw_ctx_t *ctx, int status);
void gw_respond(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, int status, const char *content_type,
                const char *body, size_t len);

/* Sends a problem+json error (see gw_problem.h); a 503 also gets Retry-After: 1 unless
 * the response has one already. */
void gw_respond_problem(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, int status, const char *name,
                        const char *detail, const gw_field_error_t *errors, size_t nerrors);

/* ---- call.c ---- */

/* Takes over a routed request: asks auth, then serves it (local route) or forwards it.
 * Answers at once when that cannot start. */
void gw_call_start(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, const gw_match_result_t *match);

/* Adds the rate-limit headers of rl to the response being built (no-op when absent). */
void gw_ratelimit_headers(h2o_req_t *req, const gw_ratelimit_t *rl);

/* ---- openapi.c ---- */

/* Parses the embedded document, builds the docs page; LC_ERR_PROTOCOL if it does not
 * parse. */
lc_status_t gw_openapi_load(gw_t *gw);
void gw_openapi_free(gw_t *gw);
/* Answers a local route (after auth allowed it). */
void gw_serve_local(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, gw_local_t which);

#endif
