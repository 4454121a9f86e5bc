#include "lc_health.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_http.h"
#include "lc_log.h"

#define REASON_MAX 256

typedef enum {
    ROUTE_HEALTHZ = 0,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_OTHER,
    ROUTE_COUNT_,
} route_t;

static const char *const route_paths[ROUTE_COUNT_] = {"/healthz", "/readyz", "/metrics", NULL};
static const char *const route_labels[ROUTE_COUNT_] = {"path=\"/healthz\"", "path=\"/readyz\"",
                                                       "path=\"/metrics\"", "path=\"other\""};

struct lc_health {
    lc_http_t *http; /* the server: binding, connections, closing */
    bool closed;     /* lc_http's close completed and done_cb ran */
    char *service;
    char *healthz_body;
    size_t healthz_len;
    bool (*ready_cb)(void *arg, char *reason, size_t reason_size);
    void *ready_arg;
    lc_metrics_t *metrics;
    lc_metric_t *requests[ROUTE_COUNT_];
    void (*done_cb)(void *arg);
    void *done_arg;
};

/* ---- responses ---- */

static void
respond(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    lc_http_respond(req, status, content_type, body, len);
}

static void
respond_json(h2o_req_t *req, int status, const char *body)
{
    respond(req, status, "application/json", body, strlen(body));
}

static void
respond_ready(lc_health_t *h, h2o_req_t *req)
{
    char reason[REASON_MAX] = "";
    if (h->ready_cb == NULL || h->ready_cb(h->ready_arg, reason, sizeof(reason))) {
        respond_json(req, 200, "{\"status\":\"ready\"}");
        return;
    }
    reason[sizeof(reason) - 1] = '\0';
    /* jansson escapes the reason; it refuses invalid UTF-8, hence the fallback */
    json_t *obj =
        json_pack("{s:s,s:s}", "status", "not_ready", "reason", reason[0] ? reason : "not ready");
    char *body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    respond_json(req, 503, body ? body : "{\"status\":\"not_ready\",\"reason\":\"not ready\"}");
    free(body);
    json_decref(obj);
}

static void
respond_metrics(lc_health_t *h, h2o_req_t *req)
{
    size_t len = 0;
    char *text = lc_metrics_render(h->metrics, &len);
    respond(req, 200, LC_METRICS_CONTENT_TYPE, text, len);
    free(text);
}

static route_t
match_route(h2o_iovec_t path)
{
    for (int r = 0; r < ROUTE_OTHER; r++)
        if (h2o_memis(path.base, path.len, route_paths[r], strlen(route_paths[r])))
            return (route_t) r;
    return ROUTE_OTHER;
}

static int
on_req(lc_http_t *http, h2o_req_t *req, void *arg)
{
    (void) http;
    lc_health_t *h = arg;
    route_t route = match_route(req->path_normalized);
    lc_metric_inc(h->requests[route]);

    if (route == ROUTE_OTHER) {
        respond_json(req, 404, "{\"error\":\"not_found\"}");
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD"));
        respond_json(req, 405, "{\"error\":\"method_not_allowed\"}");
        return 0;
    }
    switch (route) {
    case ROUTE_HEALTHZ:
        respond(req, 200, "application/json", h->healthz_body, h->healthz_len);
        break;
    case ROUTE_READYZ:
        respond_ready(h, req);
        break;
    default:
        respond_metrics(h, req);
        break;
    }
    return 0;
}

/* ---- closing ---- */

static void
on_http_closed(void *arg)
{
    lc_health_t *h = arg;
    h->closed = true;
    if (h->done_cb)
        h->done_cb(h->done_arg); /* may destroy h: nothing after this */
}

void
lc_health_close(lc_health_t *h, void (*done_cb)(void *arg), void *arg)
{
    if (h == NULL)
        return;
    if (lc_http_closing(h->http)) {
        LC_WARN("health", "side port close called twice; ignored");
        return;
    }
    h->done_cb = done_cb;
    h->done_arg = arg;
    lc_http_close(h->http, on_http_closed, h);
}

void
lc_health_destroy(lc_health_t *h)
{
    if (h == NULL)
        return;
    if (!h->closed) {
        LC_ERROR("health", "lc_health_destroy before its close completed: leaking it");
        return;
    }
    lc_http_destroy(h->http);
    free(h->service);
    free(h->healthz_body);
    free(h);
}

/* ---- set-up ---- */

int
lc_health_port(const lc_health_t *h)
{
    return h ? lc_http_port(h->http) : 0;
}

lc_status_t
lc_health_create(uv_loop_t *loop, const char *addr, int port, const lc_health_opts_t *opts,
                 lc_health_t **out)
{
    static const lc_health_opts_t no_opts;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || addr == NULL || out == NULL || port < 0 || port > 65535)
        return LC_ERR_INVALID;
    if (opts == NULL)
        opts = &no_opts;

    lc_health_t *h = LC_NEW(lc_health_t);
    /* the side port only ever reads small requests */
    lc_http_opts_t hopts = {
        .name = "health", .on_req = on_req, .arg = h, .max_body_bytes = 64 * 1024};
    lc_status_t st = lc_http_create(loop, addr, port, &hopts, &h->http);
    if (st != LC_OK) {
        free(h);
        return st;
    }
    h->service = lc_strdup(opts->service ? opts->service : "voxi");
    h->ready_cb = opts->ready_cb;
    h->ready_arg = opts->ready_arg;
    h->metrics = opts->metrics ? opts->metrics : lc_metrics_default();
    for (int r = 0; r < ROUTE_COUNT_; r++)
        h->requests[r] = lc_metrics_counter(
            h->metrics, "voxi_health_requests_total",
            "Requests to the side port (/healthz, /readyz, /metrics) by path.", route_labels[r]);

    json_t *obj = json_pack("{s:s,s:s}", "status", "ok", "service", h->service);
    h->healthz_body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (h->healthz_body == NULL) /* a service name that is not UTF-8 */
        h->healthz_body = lc_strdup("{\"status\":\"ok\"}");
    h->healthz_len = strlen(h->healthz_body);
    *out = h;
    return LC_OK;
}
