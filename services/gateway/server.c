/*
 * The gateway's HTTP entry point: every request gets an id, a route (or 404/405), a
 * capacity check, and is then handed to call.c; every response leaves through
 * gw_respond, which adds the common headers and counts it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_authcache.h"
#include "gw_internal.h"
#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "voxi/v1/auth.pb-c.h"

#define STATUS_CLASSES 4 /* 2xx 3xx 4xx 5xx */
/* auth's revocation broadcast (every instance, no queue group) */
#define EVICT_SUBJECT "voxi.auth.cache.evict"
#define AUTHCACHE_SLOTS 4096

static const char *const class_labels[STATUS_CLASSES] = {"2xx", "3xx", "4xx", "5xx"};

/* ---- metrics ---- */

static void
register_metrics(gw_t *gw)
{
    size_t n = gw_route_count + 1;
    gw->requests = lc_calloc(n * STATUS_CLASSES, sizeof(*gw->requests));
    gw->duration = lc_calloc(n, sizeof(*gw->duration));
    for (size_t r = 0; r < n; r++) {
        char route[160], escaped[200], labels[256];
        if (r < gw_route_count)
            snprintf(route, sizeof(route), "%s %s", gw_routes[r].method, gw_routes[r].pattern);
        else
            snprintf(route, sizeof(route), "other");
        lc_metrics_label_escape(route, escaped, sizeof(escaped));
        for (int c = 0; c < STATUS_CLASSES; c++) {
            snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%s\"", escaped,
                     class_labels[c]);
            gw->requests[r * STATUS_CLASSES + (size_t) c] = lc_metrics_counter(
                gw->metrics, "voxi_http_requests_total",
                "Public API requests answered, by route and status class.", labels);
        }
        snprintf(labels, sizeof(labels), "route=\"%s\"", escaped);
        gw->duration[r] = lc_metrics_histogram(
            gw->metrics, "voxi_http_request_duration_seconds",
            "Public API latency from request read to response, by route.", labels, NULL, 0);
    }
    gw->inflight = lc_metrics_gauge(gw->metrics, "voxi_http_inflight_requests",
                                    "Public API requests waiting for auth or a service.", NULL);
}

void
gw_count_response(gw_t *gw, const gw_ctx_t *ctx, int status)
{
    size_t r = ctx->metric_index <= gw_route_count ? ctx->metric_index : gw_route_count;
    int c = status >= 500 ? 3 : status >= 400 ? 2 : status >= 300 ? 1 : 0;
    lc_metric_inc(gw->requests[r * STATUS_CLASSES + (size_t) c]);
    uint64_t elapsed_ns = uv_hrtime() - ctx->started_ns;
    lc_metric_observe(gw->duration[r], (double) elapsed_ns / 1e9);
}

/* ---- responses ---- */

void
gw_common_headers(h2o_req_t *req, const gw_ctx_t *ctx)
{
    lc_http_add_header(req, "X-Request-Id", ctx->request_id);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    gw_ratelimit_headers(req, &ctx->rl);
}

void
gw_respond(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, int status, const char *content_type,
           const char *body, size_t len)
{
    gw_common_headers(req, ctx);
    lc_http_respond(req, status, content_type, body, len);
    gw_count_response(gw, ctx, status);
    LC_DEBUG("http", "%.*s %.*s -> %d (%.1f ms)", (int) req->method.len, req->method.base,
             (int) req->path_normalized.len, req->path_normalized.base, status,
             (double) (uv_hrtime() - ctx->started_ns) / 1e6);
}

void
gw_respond_problem(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, int status, const char *name,
                   const char *detail, const gw_field_error_t *errors, size_t nerrors)
{
    if (status == 503 && h2o_find_header(&req->res.headers, H2O_TOKEN_RETRY_AFTER, -1) < 0)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    size_t len = 0;
    char *body = gw_problem_render(status, name, detail, ctx->request_id, errors, nerrors, &len);
    gw_respond(gw, req, ctx, status, GW_PROBLEM_CONTENT_TYPE, body, len);
    free(body);
}

/* ---- requests ---- */

#define HEALTHZ_PATH "/healthz"
#define HEALTHZ_BODY "{\"status\":\"ok\"}"

/* GET /healthz on the API port: liveness for load balancers that probe the port they
 * route to (the side port has its own). Outside the API and its route table: no auth, no
 * rate limit, no NATS, so it is also the bare-HTTP baseline of tests/bench/bench_api.py. */
static bool
is_healthz(const h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
           h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT(HEALTHZ_PATH));
}

static int
on_req(lc_http_t *http, h2o_req_t *req, void *arg)
{
    (void) http;
    gw_t *gw = arg;
    gw_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.started_ns = uv_hrtime();
    ctx.metric_index = gw_route_count;
    h2o_iovec_t hdr = {NULL, 0};
    lc_http_header(req, "x-request-id", &hdr);
    gw_request_id_pick(hdr.base, hdr.len, ctx.request_id);
    lc_log_context_set(ctx.request_id, NULL);

    if (is_healthz(req)) {
        gw_respond(gw, req, &ctx, 200, "application/json", HEALTHZ_BODY, sizeof(HEALTHZ_BODY) - 1);
        goto done;
    }
    gw_match_result_t match;
    switch (gw_route_match(req->method.base, req->method.len, req->path_normalized.base,
                           req->path_normalized.len, &match)) {
    case GW_MATCH_NOT_FOUND:
        gw_respond_problem(gw, req, &ctx, 404, "not_found", "No such route.", NULL, 0);
        goto done;
    case GW_MATCH_BAD_METHOD: {
        char detail[GW_DETAIL_MAX], method[24];
        gw_printable(req->method.base, req->method.len, 16, method, sizeof(method));
        snprintf(detail, sizeof(detail), "Method %s is not allowed here; allowed: %s.", method,
                 match.allow);
        lc_http_add_header(req, "Allow", match.allow);
        gw_respond_problem(gw, req, &ctx, 405, "method_not_allowed", detail, NULL, 0);
        goto done;
    }
    case GW_MATCH_OK:
        break;
    }
    ctx.metric_index = match.index;

    /* the announced size is enforced by h2o before reading (413 through on_h2o_error);
     * this is the actual size, which a chunked body only reveals once read */
    if (req->entity.base != NULL && req->entity.len > (size_t) gw->cfg->max_body_bytes) {
        char detail[GW_DETAIL_MAX];
        snprintf(detail, sizeof(detail), "The request body is larger than %lld bytes.",
                 (long long) gw->cfg->max_body_bytes);
        gw_respond_problem(gw, req, &ctx, 413, "too_large", detail, NULL, 0);
        goto done;
    }
    if (gw->ncalls >= (size_t) gw->cfg->max_inflight) {
        LC_LOG_RL(LC_LOG_WARN, "http", 1, "at capacity: %zu requests in progress", gw->ncalls);
        gw_respond_problem(gw, req, &ctx, 503, "full", "The gateway is at capacity; retry shortly.",
                           NULL, 0);
        goto done;
    }
    gw_call_start(gw, req, &ctx, &match);
done:
    lc_log_context_clear();
    return 0;
}

/* Gives h2o's own errors (body over the limit, malformed request) our shape. */
static h2o_iovec_t
on_h2o_error(lc_http_t *http, h2o_req_t *req, void *arg)
{
    (void) http;
    gw_t *gw = arg;
    gw_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.started_ns = uv_hrtime();
    ctx.metric_index = gw_route_count;
    h2o_iovec_t hdr = {NULL, 0};
    lc_http_header(req, "x-request-id", &hdr);
    gw_request_id_pick(hdr.base, hdr.len, ctx.request_id);

    int status = req->res.status;
    char detail[GW_DETAIL_MAX];
    switch (status) {
    case 413:
        snprintf(detail, sizeof(detail), "The request body is larger than %lld bytes.",
                 (long long) gw->cfg->max_body_bytes);
        break;
    case 417:
        snprintf(detail, sizeof(detail), "Only Expect: 100-continue is supported.");
        break;
    case 400:
        snprintf(detail, sizeof(detail), "Malformed HTTP request.");
        break;
    default:
        snprintf(detail, sizeof(detail), "%s.", lc_http_reason(status));
        break;
    }
    size_t len = 0;
    char *body = gw_problem_render(status, gw_problem_name_for_http(status), detail, ctx.request_id,
                                   NULL, 0, &len);
    h2o_iovec_t out = h2o_strdup(&req->pool, body, len);
    free(body);
    lc_http_add_header(req, "X-Request-Id", ctx.request_id);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT(GW_PROBLEM_CONTENT_TYPE));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    gw_count_response(gw, &ctx, status);
    LC_DEBUG("http", "refused by the HTTP layer: %d", status);
    return out;
}

/* ---- revocation ---- */

/* A key was revoked: its cached decisions go at once (auth drops its own the same way). */
static void
on_evict(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    gw_t *gw = arg;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    if (lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                     &voxi__v1__key_revoked__descriptor, &env, &body) == LC_OK) {
        Voxi__V1__KeyRevoked *kr = (Voxi__V1__KeyRevoked *) body;
        if (kr->secret_hash.len == GW_AUTHCACHE_HASH_LEN)
            gw_authcache_evict(gw->authcache, kr->secret_hash.data);
    }
    lc_pb_free(env, body);
}

/* ---- lifecycle ---- */

gw_t *
gw_create(const gw_config_t *cfg)
{
    gw_t *gw = LC_NEW(gw_t);
    gw->cfg = cfg;
    return gw;
}

lc_status_t
gw_start(gw_t *gw, uv_loop_t *loop, lc_nats_t *nc, lc_metrics_t *metrics)
{
    gw->loop = loop;
    gw->nats = nc;
    gw->metrics = metrics;
    LC_TRY(gw_openapi_load(gw));
    register_metrics(gw);
    gw->authcache = gw_authcache_create(AUTHCACHE_SLOTS, metrics);
    LC_TRY(lc_nats_subscribe(nc, EVICT_SUBJECT, NULL, on_evict, gw, &gw->evict_sub));
    lc_http_opts_t opts = {
        .name = "http",
        .on_req = on_req,
        .arg = gw,
        .max_body_bytes = (size_t) gw->cfg->max_body_bytes,
        .on_h2o_error = on_h2o_error,
    };
    return lc_http_create(loop, gw->cfg->http_addr, (int) gw->cfg->http_port, &opts, &gw->http);
}

static void
on_http_closed(void *arg)
{
    gw_t *gw = arg;
    gw->http_closed = true;
}

void
gw_stop(gw_t *gw)
{
    if (gw->http != NULL && !lc_http_closing(gw->http)) {
        LC_INFO("http", "no longer accepting API connections; %zu requests in progress",
                gw->ncalls);
        lc_http_close(gw->http, on_http_closed, gw);
    }
}

size_t
gw_inflight(const gw_t *gw)
{
    return gw->ncalls;
}

int
gw_port(const gw_t *gw)
{
    return lc_http_port(gw->http);
}

void
gw_destroy(gw_t *gw)
{
    if (gw == NULL)
        return;
    if (gw->http != NULL) {
        if (gw->http_closed)
            lc_http_destroy(gw->http);
        else
            LC_ERROR("http", "API server still open at exit: leaking it");
    }
    gw_openapi_free(gw);
    gw_authcache_destroy(gw->authcache);
    free(gw->requests);
    free(gw->duration);
    free(gw);
}
