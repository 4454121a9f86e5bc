#include "lc_health.h"

#include <h2o.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "lc_alloc.h"
#include "lc_log.h"

#define LISTEN_BACKLOG 128
#define REASON_MAX 256

typedef enum {
    HEALTH_OPEN = 0,
    HEALTH_CLOSING,   /* waiting for the listener and the connections to close */
    HEALTH_DISPOSING, /* h2o context disposed, waiting for its handles to finish closing */
    HEALTH_CLOSED,    /* done_cb called; destroy may free */
} health_state_t;

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

/* One accepted connection. h2o takes the stream's `data` for its socket and hands our
 * close callback the uv handle, so the handle comes first and we get back by a cast. */
typedef struct health_conn {
    uv_tcp_t tcp;
    lc_health_t *h;
    struct health_conn *prev, *next;
} health_conn_t;

typedef struct {
    h2o_handler_t super; /* first: h2o calls on_req with this pointer */
    lc_health_t *h;
} health_handler_t;

struct lc_health {
    uv_loop_t *loop;
    uv_tcp_t *listener; /* heap, freed by its close callback */
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_idle_t fence; /* closed twice at the end: see finish_close */
    int fence_rounds;
    health_state_t state;
    int port;
    char *service;
    char *healthz_body;
    size_t healthz_len;
    bool (*ready_cb)(void *arg, char *reason, size_t reason_size);
    void *ready_arg;
    lc_metrics_t *metrics;
    lc_metric_t *requests[ROUTE_COUNT_];
    health_conn_t *conns;
    size_t nconns;
    void (*done_cb)(void *arg);
    void *done_arg;
};

/* ---- responses ---- */

static void
respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body,
        size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                   strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    /* h2o_send_inline leaves content_length unset, which makes HTTP/1.1 go chunked */
    req->res.content_length = len;
    h2o_send_inline(req, body, len); /* copies body into the request pool */
}

static void
respond_json(h2o_req_t *req, int status, const char *reason, const char *body)
{
    respond(req, status, reason, "application/json", body, strlen(body));
}

static void
respond_ready(lc_health_t *h, h2o_req_t *req)
{
    char reason[REASON_MAX] = "";
    if (h->ready_cb == NULL || h->ready_cb(h->ready_arg, reason, sizeof(reason))) {
        respond_json(req, 200, "OK", "{\"status\":\"ready\"}");
        return;
    }
    reason[sizeof(reason) - 1] = '\0';
    /* jansson escapes the reason; it refuses invalid UTF-8, hence the fallback */
    json_t *obj =
        json_pack("{s:s,s:s}", "status", "not_ready", "reason", reason[0] ? reason : "not ready");
    char *body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    respond_json(req, 503, "Service Unavailable",
                 body ? body : "{\"status\":\"not_ready\",\"reason\":\"not ready\"}");
    free(body);
    json_decref(obj);
}

static void
respond_metrics(lc_health_t *h, h2o_req_t *req)
{
    size_t len = 0;
    char *text = lc_metrics_render(h->metrics, &len);
    respond(req, 200, "OK", LC_METRICS_CONTENT_TYPE, text, len);
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
on_req(h2o_handler_t *self, h2o_req_t *req)
{
    lc_health_t *h = ((health_handler_t *) self)->h;
    route_t route = match_route(req->path_normalized);
    lc_metric_inc(h->requests[route]);

    if (route == ROUTE_OTHER) {
        respond_json(req, 404, "Not Found", "{\"error\":\"not_found\"}");
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD"));
        respond_json(req, 405, "Method Not Allowed", "{\"error\":\"method_not_allowed\"}");
        return 0;
    }
    switch (route) {
    case ROUTE_HEALTHZ:
        respond(req, 200, "OK", "application/json", h->healthz_body, h->healthz_len);
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

/* ---- connections ---- */

static void maybe_finish_close(lc_health_t *h);

static void
on_conn_closed(uv_handle_t *handle)
{
    health_conn_t *c = (health_conn_t *) handle;
    lc_health_t *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    free(c);
    maybe_finish_close(h);
}

static void
on_connection(uv_stream_t *listener, int status)
{
    lc_health_t *h = listener->data;
    if (status != 0) {
        LC_LOG_RL(LC_LOG_WARN, "health", 1, "side port accept failed: %s", uv_strerror(status));
        return;
    }
    health_conn_t *c = LC_NEW(health_conn_t);
    c->h = h;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    uv_tcp_init(h->loop, &c->tcp);
    int rc = uv_accept(listener, (uv_stream_t *) &c->tcp);
    if (rc != 0) {
        LC_LOG_RL(LC_LOG_WARN, "health", 1, "side port accept failed: %s", uv_strerror(rc));
        uv_close((uv_handle_t *) &c->tcp, on_conn_closed);
        return;
    }
    /* from here h2o owns the connection and closes the handle with on_conn_closed */
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *) &c->tcp, on_conn_closed);
    h2o_accept(&h->accept_ctx, sock);
}

/* ---- closing ---- */

/*
 * h2o_context_dispose() of h2o 2.2.5 without its last line. It ends with
 * `uv_run(ctx->loop, UV_RUN_NOWAIT)` to finish closing the uv_timer_t's embedded in the
 * context (closed with no callback), and uv_run must not be called from a loop callback.
 * It cannot be called after the loop either: the context's message queue holds a
 * referenced, active uv_async_t, so uv_run never returns while the context lives. So we
 * dispose from a callback with the same steps and learn when the closes have finished
 * from the fence handle (finish_close). Keep in step with lib/core/context.c when h2o
 * is upgraded.
 */
static void
dispose_context(h2o_context_t *ctx)
{
    h2o_globalconf_t *config = ctx->globalconf;

    for (size_t i = 0; config->hosts[i] != NULL; i++) {
        h2o_hostconf_t *hostconf = config->hosts[i];
        for (size_t j = 0; j != hostconf->paths.size; j++)
            h2o_context_dispose_pathconf_context(ctx, hostconf->paths.entries + j);
        h2o_context_dispose_pathconf_context(ctx, &hostconf->fallback_path);
    }
    free(ctx->_pathconfs_inited.entries);
    free(ctx->_module_configs);
    /* h2o_context_request_shutdown() would have linked HTTP/2's GOAWAY timer here, and
     * h2o_timeout_dispose asserts that no entry is linked; we never call it, but make sure */
    if (h2o_timeout_is_linked(&ctx->http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&ctx->http2._graceful_shutdown_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->zero_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->one_sec_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->hundred_ms_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->handshake_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->http1.req_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->http2.idle_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->http2.graceful_shutdown_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->proxy.io_timeout);
    h2o_filecache_destroy(ctx->filecache);
    ctx->filecache = NULL;
    for (size_t i = 0; i != ctx->storage.size; i++) {
        h2o_context_storage_item_t *item = ctx->storage.entries + i;
        if (item->dispose != NULL)
            item->dispose(item->data);
    }
    free(ctx->storage.entries);
    h2o_multithread_unregister_receiver(ctx->queue, &ctx->receivers.hostinfo_getaddr);
    h2o_multithread_destroy_queue(ctx->queue); /* closes its uv_async_t, frees itself */
    if (ctx->_timestamp_cache.value != NULL)
        h2o_mem_release_shared(ctx->_timestamp_cache.value);
}

/*
 * The context's timers are closed with no callback and live inside *h, so *h may be freed
 * only once libuv has finished closing them. libuv finishes every close requested before
 * an iteration's close phase in that phase; a close requested from a close callback
 * waits for the next one. So: close the fence together with the timers, and from its
 * callback close it once more. When the second callback runs, the phase that finished
 * the timers is over, whatever order libuv runs callbacks in within one phase.
 */
static void
on_fence_closed(uv_handle_t *handle)
{
    lc_health_t *h = handle->data;
    if (++h->fence_rounds < 2) {
        uv_idle_init(h->loop, &h->fence);
        h->fence.data = h;
        uv_close((uv_handle_t *) &h->fence, on_fence_closed);
        return;
    }
    h2o_config_dispose(&h->config);
    h->state = HEALTH_CLOSED;
    LC_INFO("health", "side port closed");
    if (h->done_cb)
        h->done_cb(h->done_arg); /* may destroy h: nothing after this */
}

static void
maybe_finish_close(lc_health_t *h)
{
    if (h->state != HEALTH_CLOSING || h->listener != NULL || h->nconns > 0)
        return;
    h->state = HEALTH_DISPOSING;
    dispose_context(&h->ctx);
    uv_idle_init(h->loop, &h->fence);
    h->fence.data = h;
    uv_close((uv_handle_t *) &h->fence, on_fence_closed);
}

static void
free_handle(uv_handle_t *handle)
{
    free(handle);
}

static void
on_listener_closed(uv_handle_t *handle)
{
    lc_health_t *h = handle->data;
    free(handle);
    h->listener = NULL;
    maybe_finish_close(h);
}

void
lc_health_close(lc_health_t *h, void (*done_cb)(void *arg), void *arg)
{
    if (h == NULL)
        return;
    if (h->state != HEALTH_OPEN) {
        LC_WARN("health", "side port close called twice; ignored");
        return;
    }
    h->state = HEALTH_CLOSING;
    h->done_cb = done_cb;
    h->done_arg = arg;
    /*
     * HTTP/1 in h2o answers with Connection: close once shutdown_requested is set. We set
     * the flag rather than call h2o_context_request_shutdown(), which also arms HTTP/2's
     * GOAWAY timer on one_sec_timeout (we serve no HTTP/2): that keeps the loop alive a
     * second and trips an assertion in h2o_timeout_dispose if still armed.
     */
    h->ctx.shutdown_requested = 1;
    uv_close((uv_handle_t *) h->listener, on_listener_closed);
    /*
     * h2o 2.2.5 has no call to close idle HTTP/1 connections. Shutting down the read side
     * does it through h2o's own path: a connection waiting for a request reads EOF and
     * closes; one writing a response finishes writing, goes back to reading and then sees
     * EOF. Its req_timeout (10 s) remains the backstop.
     */
    for (health_conn_t *c = h->conns; c != NULL; c = c->next) {
        uv_os_fd_t fd;
        if (!uv_is_closing((uv_handle_t *) &c->tcp) && uv_fileno((uv_handle_t *) &c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RD);
    }
}

void
lc_health_destroy(lc_health_t *h)
{
    if (h == NULL)
        return;
    if (h->state != HEALTH_CLOSED) {
        LC_ERROR("health", "lc_health_destroy before its close completed: leaking it");
        return;
    }
    free(h->service);
    free(h->healthz_body);
    free(h);
}

/* ---- set-up ---- */

static void
ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

int
lc_health_port(const lc_health_t *h)
{
    return h ? h->port : 0;
}

static lc_status_t
listen_on(uv_loop_t *loop, const char *addr, int port, uv_tcp_t **out, int *bound_port)
{
    struct sockaddr_storage ss;
    char where[300];
    bool v6 = strchr(addr, ':') != NULL;
    snprintf(where, sizeof(where), v6 ? "[%s]:%d" : "%s:%d", addr, port);
    if ((v6 ? uv_ip6_addr(addr, port, (struct sockaddr_in6 *) &ss)
            : uv_ip4_addr(addr, port, (struct sockaddr_in *) &ss)) != 0) {
        LC_ERROR("health", "side port address %s is not a numeric IPv4 or IPv6 address", where);
        return LC_ERR_INVALID;
    }

    uv_tcp_t *tcp = lc_malloc(sizeof(*tcp));
    int rc = uv_tcp_init(loop, tcp);
    if (rc != 0) {
        free(tcp);
        LC_ERROR("health", "side port %s: uv_tcp_init: %s", where, uv_strerror(rc));
        return LC_ERR_INTERNAL;
    }
    /* libuv may report EADDRINUSE from bind or only from listen */
    const char *step = "bind";
    rc = uv_tcp_bind(tcp, (const struct sockaddr *) &ss, 0);
    if (rc == 0) {
        step = "listen";
        rc = uv_listen((uv_stream_t *) tcp, LISTEN_BACKLOG, on_connection);
    }
    if (rc != 0) {
        LC_ERROR("health", "cannot %s side port %s: %s (%s)", step, where, uv_strerror(rc),
                 uv_err_name(rc));
        uv_close((uv_handle_t *) tcp, free_handle);
        return LC_ERR_IO;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    *bound_port = port;
    if (uv_tcp_getsockname(tcp, (struct sockaddr *) &bound, &len) == 0)
        *bound_port =
            ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                              : ((struct sockaddr_in *) &bound)->sin_port);
    *out = tcp;
    return LC_OK;
}

lc_status_t
lc_health_create(uv_loop_t *loop, const char *addr, int port, const lc_health_opts_t *opts,
                 lc_health_t **out)
{
    static const lc_health_opts_t no_opts;
    uv_tcp_t *listener = NULL;
    int bound_port = 0;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || addr == NULL || out == NULL || port < 0 || port > 65535)
        return LC_ERR_INVALID;
    if (opts == NULL)
        opts = &no_opts;
    ignore_sigpipe();
    LC_TRY(listen_on(loop, addr, port, &listener, &bound_port));

    lc_health_t *h = LC_NEW(lc_health_t);
    h->loop = loop;
    h->listener = listener;
    h->port = bound_port;
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

    h2o_config_init(&h->config);
    h->config.server_name = h2o_iovec_init(H2O_STRLIT("")); /* no Server header */
    h->config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *hostconf =
        h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    health_handler_t *handler = (health_handler_t *) h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->h = h;
    h2o_context_init(&h->ctx, loop, &h->config);
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->config.hosts;

    listener->data = h;
    LC_INFO("health", "side port listening on %s%s%s:%d", strchr(addr, ':') ? "[" : "", addr,
            strchr(addr, ':') ? "]" : "", h->port);
    *out = h;
    return LC_OK;
}
