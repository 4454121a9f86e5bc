#include "lc_http.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include "lc_alloc.h"
#include "lc_log.h"

#define LISTEN_BACKLOG 1024
#define DEFAULT_MAX_BODY_BYTES (1024u * 1024u)
#define MIN_BUCKETS 64

typedef enum {
    HTTP_OPEN = 0,
    HTTP_CLOSING,   /* waiting for the listener and the connections to close */
    HTTP_DISPOSING, /* h2o context disposed, waiting for its handles to finish closing */
    HTTP_CLOSED,    /* done_cb called; destroy may free */
} http_state_t;

/* One accepted connection. h2o takes the stream's `data` for its socket and hands our
 * close callback the uv handle, so the handle comes first and we get back by a cast. */
typedef struct http_conn {
    uv_tcp_t tcp;
    lc_http_t *http;
    struct http_conn *prev, *next;
} http_conn_t;

typedef struct {
    h2o_handler_t super; /* first: h2o calls on_req with this pointer */
    lc_http_t *http;
} http_handler_t;

typedef struct {
    h2o_filter_t super; /* first: h2o calls on_setup_ostream with this pointer */
    lc_http_t *http;
} error_filter_t;

typedef struct {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
} error_ostream_t;

/* A deferred request: in a hash chain by id and in a list ordered by deadline. */
typedef struct deferred {
    uint64_t id;
    h2o_req_t *req;
    uint64_t deadline; /* uv_now() milliseconds */
    lc_http_abort_cb on_abort;
    void *arg;
    struct deferred *hash_next;
    struct deferred *prev, *next;
} deferred_t;

/* Lives in the request's pool; its dispose callback tells us the request is freed. */
typedef struct {
    lc_http_t *http;
    uint64_t id;
} deferred_link_t;

struct lc_http {
    uv_loop_t *loop;
    uv_tcp_t *listener; /* heap, freed by its close callback */
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_idle_t fence; /* closed twice at the end: see on_fence_closed */
    int fence_rounds;
    uv_timer_t deadline_timer; /* due at the earliest deferred deadline */
    http_state_t state;
    int port;
    char name[32];
    lc_http_req_cb on_req;
    lc_http_error_cb on_h2o_error;
    void *arg;
    http_conn_t *conns;
    size_t nconns;
    /* deferred requests */
    deferred_t **buckets;
    size_t nbuckets; /* power of two */
    size_t ndeferred;
    uint64_t next_id;
    deferred_t *first, *last; /* by deadline, earliest first */
    void (*done_cb)(void *arg);
    void *done_arg;
};

/* ---- helpers ---- */

const char *
lc_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

void
lc_http_respond(h2o_req_t *req, int status, const char *content_type, const void *body, size_t len)
{
    req->res.status = status;
    req->res.reason = lc_http_reason(status);
    if (content_type != NULL) {
        h2o_iovec_t ct = h2o_strdup(&req->pool, content_type, SIZE_MAX);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct.base,
                       ct.len);
    }
    if (status == 204 || status == 304) {
        /* RFC 9110 6.4.1, 8.6: no content and no Content-Length in these */
        static h2o_generator_t generator = {NULL, NULL};
        h2o_start_response(req, &generator);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    /* h2o_send_inline leaves content_length unset, which makes HTTP/1.1 go chunked */
    req->res.content_length = len;
    h2o_send_inline(req, len > 0 ? body : "", len); /* copies body into the request pool */
}

void
lc_http_add_header(h2o_req_t *req, const char *name, const char *value)
{
    /* h2o keeps pointers to both: they must live as long as the request */
    h2o_iovec_t n = h2o_strdup(&req->pool, name, SIZE_MAX);
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
}

bool
lc_http_header(const h2o_req_t *req, const char *name, h2o_iovec_t *out)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h->name->len == name_len && strncasecmp(h->name->base, name, name_len) == 0) {
            *out = h->value;
            return true;
        }
    }
    return false;
}

void
lc_http_peer_addr(h2o_req_t *req, char *out, size_t out_size)
{
    struct sockaddr_storage ss;
    char host[NI_MAXHOST];
    if (out_size == 0)
        return;
    out[0] = '\0';
    if (req->conn == NULL || req->conn->callbacks->get_peername == NULL)
        return;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *) &ss);
    if (len == 0)
        return;
    size_t n = h2o_socket_getnumerichost((struct sockaddr *) &ss, len, host);
    if (n == SIZE_MAX || n >= out_size)
        return;
    memcpy(out, host, n);
    out[n] = '\0';
}

/* ---- requests ---- */

static int
on_handler_req(h2o_handler_t *self, h2o_req_t *req)
{
    lc_http_t *http = ((http_handler_t *) self)->http;
    return http->on_req(http, req, http->arg);
}

static void
error_ostream_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                   h2o_send_state_t state)
{
    error_ostream_t *o = (error_ostream_t *) self;
    (void) bufs;
    (void) bufcnt;
    bool head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    if (!o->sent && !head && o->body.len > 0) {
        o->sent = true;
        h2o_ostream_send_next(self, req, &o->body, 1, state);
        return;
    }
    o->sent = true;
    h2o_ostream_send_next(self, req, NULL, 0, state);
}

/*
 * h2o binds the requests it refuses before any handler runs (h2o_send_error_generic on a
 * request with no path configuration yet) to the host's fallback path, and this filter
 * sits there alone: everything it sees is one of h2o's own error responses.
 */
static void
on_error_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    lc_http_t *http = ((error_filter_t *) self)->http;
    if (http->on_h2o_error != NULL && req->res.status >= 400) {
        memset(&req->res.headers, 0, sizeof(req->res.headers)); /* h2o's text/plain type */
        h2o_iovec_t body = http->on_h2o_error(http, req, http->arg);
        req->res.content_length = body.len;
        error_ostream_t *o = (error_ostream_t *) h2o_add_ostream(req, sizeof(*o), slot);
        o->super.do_send = error_ostream_send;
        o->body = body;
        o->sent = false;
        slot = &o->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

/* ---- deferred requests ---- */

static deferred_t **
bucket_of(lc_http_t *http, uint64_t id)
{
    return &http->buckets[id & (http->nbuckets - 1)];
}

static void
hash_insert(lc_http_t *http, deferred_t *d)
{
    if (http->ndeferred + 1 > http->nbuckets) {
        size_t old_n = http->nbuckets;
        deferred_t **old = http->buckets;
        http->nbuckets = old_n * 2;
        http->buckets = lc_calloc(http->nbuckets, sizeof(*http->buckets));
        for (size_t i = 0; i < old_n; i++) {
            deferred_t *e = old[i];
            while (e != NULL) {
                deferred_t *next = e->hash_next;
                deferred_t **b = bucket_of(http, e->id);
                e->hash_next = *b;
                *b = e;
                e = next;
            }
        }
        free(old);
    }
    deferred_t **b = bucket_of(http, d->id);
    d->hash_next = *b;
    *b = d;
    http->ndeferred++;
}

/* Unlinks the entry with `id` from the hash and the deadline list; NULL if unknown. */
static deferred_t *
take_deferred(lc_http_t *http, uint64_t id)
{
    if (http->buckets == NULL)
        return NULL;
    for (deferred_t **p = bucket_of(http, id); *p != NULL; p = &(*p)->hash_next) {
        deferred_t *d = *p;
        if (d->id != id)
            continue;
        *p = d->hash_next;
        if (d->prev)
            d->prev->next = d->next;
        else
            http->first = d->next;
        if (d->next)
            d->next->prev = d->prev;
        else
            http->last = d->prev;
        http->ndeferred--;
        return d;
    }
    return NULL;
}

static void on_deadline(uv_timer_t *timer);

static void
arm_deadline_timer(lc_http_t *http)
{
    if (http->first == NULL) {
        uv_timer_stop(&http->deadline_timer);
        return;
    }
    uint64_t now = uv_now(http->loop);
    uint64_t due = http->first->deadline > now ? http->first->deadline - now : 0;
    uv_timer_start(&http->deadline_timer, on_deadline, due, 0);
}

static void
on_deadline(uv_timer_t *timer)
{
    lc_http_t *http = timer->data;
    uint64_t now = uv_now(http->loop);
    while (http->first != NULL && http->first->deadline <= now) {
        deferred_t *d = take_deferred(http, http->first->id);
        h2o_req_t *req = d->req;
        if (http->state != HTTP_OPEN)
            req->http1_is_persistent = 0;
        d->on_abort(http, d->id, req, d->arg);
        if (req->res.status == 0) {
            LC_ERROR(http->name, "deferred request timed out and was not answered: 504");
            lc_http_respond(req, 504, "text/plain; charset=utf-8", "gateway timeout\n", 16);
        }
        free(d);
    }
    arm_deadline_timer(http);
}

static void
on_deferred_req_freed(void *obj)
{
    deferred_link_t *link = obj;
    lc_http_t *http = link->http;
    deferred_t *d = take_deferred(http, link->id);
    if (d == NULL)
        return; /* resumed or timed out before */
    LC_DEBUG(http->name, "deferred request freed before it was answered (client gone)");
    d->on_abort(http, d->id, NULL, d->arg);
    free(d);
    arm_deadline_timer(http);
}

uint64_t
lc_http_defer(lc_http_t *http, h2o_req_t *req, int64_t timeout_ms, lc_http_abort_cb on_abort,
              void *arg)
{
    if (timeout_ms <= 0)
        timeout_ms = 1;
    if (http->buckets == NULL) {
        http->nbuckets = MIN_BUCKETS;
        http->buckets = lc_calloc(http->nbuckets, sizeof(*http->buckets));
    }
    deferred_t *d = LC_NEW(deferred_t);
    d->id = ++http->next_id;
    d->req = req;
    d->deadline = uv_now(http->loop) + (uint64_t) timeout_ms;
    d->on_abort = on_abort;
    d->arg = arg;
    hash_insert(http, d);
    /* deadlines mostly arrive in order: walk from the back */
    deferred_t *after = http->last;
    while (after != NULL && after->deadline > d->deadline)
        after = after->prev;
    d->prev = after;
    d->next = after ? after->next : http->first;
    if (d->next)
        d->next->prev = d;
    else
        http->last = d;
    if (after)
        after->next = d;
    else
        http->first = d;

    deferred_link_t *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_deferred_req_freed);
    link->http = http;
    link->id = d->id;
    if (http->first == d)
        arm_deadline_timer(http);
    return d->id;
}

h2o_req_t *
lc_http_resume(lc_http_t *http, uint64_t id)
{
    deferred_t *d = take_deferred(http, id);
    if (d == NULL)
        return NULL;
    h2o_req_t *req = d->req;
    free(d);
    arm_deadline_timer(http);
    /* parsed before the close began, it was kept alive: say Connection: close now */
    if (http->state != HTTP_OPEN)
        req->http1_is_persistent = 0;
    return req;
}

size_t
lc_http_deferred(const lc_http_t *http)
{
    return http ? http->ndeferred : 0;
}

/* ---- connections ---- */

static void maybe_finish_close(lc_http_t *http);

static void
on_conn_closed(uv_handle_t *handle)
{
    http_conn_t *c = (http_conn_t *) handle;
    lc_http_t *http = c->http;
    if (c->prev)
        c->prev->next = c->next;
    else
        http->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    http->nconns--;
    free(c);
    maybe_finish_close(http);
}

static void
on_connection(uv_stream_t *listener, int status)
{
    lc_http_t *http = listener->data;
    if (status != 0) {
        LC_LOG_RL(LC_LOG_WARN, http->name, 1, "accept failed: %s", uv_strerror(status));
        return;
    }
    http_conn_t *c = LC_NEW(http_conn_t);
    c->http = http;
    c->next = http->conns;
    if (http->conns)
        http->conns->prev = c;
    http->conns = c;
    http->nconns++;
    uv_tcp_init(http->loop, &c->tcp);
    int rc = uv_accept(listener, (uv_stream_t *) &c->tcp);
    if (rc != 0) {
        LC_LOG_RL(LC_LOG_WARN, http->name, 1, "accept failed: %s", uv_strerror(rc));
        uv_close((uv_handle_t *) &c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    /* from here h2o owns the connection and closes the handle with on_conn_closed */
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *) &c->tcp, on_conn_closed);
    h2o_accept(&http->accept_ctx, sock);
}

size_t
lc_http_connections(const lc_http_t *http)
{
    return http ? http->nconns : 0;
}

/* ---- closing ---- */

/*
 * h2o_context_dispose() of h2o 2.2.5 without its last line. It ends with
 * `uv_run(ctx->loop, UV_RUN_NOWAIT)` to finish closing the uv_timer_t's embedded in the
 * context (closed with no callback), and uv_run must not be called from a loop callback.
 * It cannot be called after the loop either: the context's message queue holds a
 * referenced, active uv_async_t, so uv_run never returns while the context lives. So we
 * dispose from a callback with the same steps and learn when the closes have finished
 * from the fence handle (on_fence_closed). Keep in step with lib/core/context.c when h2o
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
 * The context's timers (and our deadline timer) are closed with no callback and live
 * inside *http, so *http may be freed only once libuv has finished closing them. libuv
 * finishes every close requested before an iteration's close phase in that phase; a close
 * requested from a close callback waits for the next one. So: close the fence together
 * with the timers, and from its callback close it once more. When the second callback
 * runs, the phase that finished the timers is over, whatever order libuv runs callbacks
 * in within one phase.
 */
static void
on_fence_closed(uv_handle_t *handle)
{
    lc_http_t *http = handle->data;
    if (++http->fence_rounds < 2) {
        uv_idle_init(http->loop, &http->fence);
        http->fence.data = http;
        uv_close((uv_handle_t *) &http->fence, on_fence_closed);
        return;
    }
    h2o_config_dispose(&http->config);
    http->state = HTTP_CLOSED;
    LC_INFO(http->name, "server on port %d closed", http->port);
    if (http->done_cb)
        http->done_cb(http->done_arg); /* may destroy http: nothing after this */
}

static void
maybe_finish_close(lc_http_t *http)
{
    if (http->state != HTTP_CLOSING || http->listener != NULL || http->nconns > 0)
        return;
    http->state = HTTP_DISPOSING;
    dispose_context(&http->ctx);
    uv_close((uv_handle_t *) &http->deadline_timer, NULL);
    uv_idle_init(http->loop, &http->fence);
    http->fence.data = http;
    uv_close((uv_handle_t *) &http->fence, on_fence_closed);
}

static void
free_handle(uv_handle_t *handle)
{
    free(handle);
}

static void
on_listener_closed(uv_handle_t *handle)
{
    lc_http_t *http = handle->data;
    free(handle);
    http->listener = NULL;
    maybe_finish_close(http);
}

void
lc_http_close(lc_http_t *http, void (*done_cb)(void *arg), void *arg)
{
    if (http == NULL)
        return;
    if (http->state != HTTP_OPEN) {
        LC_WARN(http->name, "close called twice; ignored");
        return;
    }
    http->state = HTTP_CLOSING;
    http->done_cb = done_cb;
    http->done_arg = arg;
    /*
     * HTTP/1 in h2o answers with Connection: close once shutdown_requested is set. We set
     * the flag rather than call h2o_context_request_shutdown(), which also arms HTTP/2's
     * GOAWAY timer on one_sec_timeout (we serve no HTTP/2): that keeps the loop alive a
     * second and trips an assertion in h2o_timeout_dispose if still armed.
     */
    http->ctx.shutdown_requested = 1;
    uv_close((uv_handle_t *) http->listener, on_listener_closed);
    /*
     * h2o 2.2.5 has no call to close idle HTTP/1 connections. Shutting down the read side
     * does it through h2o's own path: a connection waiting for a request reads EOF and
     * closes; one writing a response, or waiting for a deferred one (h2o stops reading
     * while a request is handled), finishes it, goes back to reading and then sees EOF.
     * Its req_timeout (10 s) remains the backstop.
     */
    for (http_conn_t *c = http->conns; c != NULL; c = c->next) {
        uv_os_fd_t fd;
        if (!uv_is_closing((uv_handle_t *) &c->tcp) && uv_fileno((uv_handle_t *) &c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RD);
    }
}

bool
lc_http_closing(const lc_http_t *http)
{
    return http != NULL && http->state != HTTP_OPEN;
}

void
lc_http_destroy(lc_http_t *http)
{
    if (http == NULL)
        return;
    if (http->state != HTTP_CLOSED) {
        LC_ERROR(http->name, "lc_http_destroy before its close completed: leaking it");
        return;
    }
    free(http->buckets);
    free(http);
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
lc_http_port(const lc_http_t *http)
{
    return http ? http->port : 0;
}

static lc_status_t
listen_on(uv_loop_t *loop, const char *name, const char *addr, int port, uv_tcp_t **out,
          int *bound_port)
{
    struct sockaddr_storage ss;
    char where[300];
    bool v6 = strchr(addr, ':') != NULL;
    snprintf(where, sizeof(where), v6 ? "[%s]:%d" : "%s:%d", addr, port);
    if ((v6 ? uv_ip6_addr(addr, port, (struct sockaddr_in6 *) &ss)
            : uv_ip4_addr(addr, port, (struct sockaddr_in *) &ss)) != 0) {
        LC_ERROR(name, "address %s is not a numeric IPv4 or IPv6 address", where);
        return LC_ERR_INVALID;
    }

    uv_tcp_t *tcp = lc_malloc(sizeof(*tcp));
    int rc = uv_tcp_init(loop, tcp);
    if (rc != 0) {
        free(tcp);
        LC_ERROR(name, "%s: uv_tcp_init: %s", where, uv_strerror(rc));
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
        LC_ERROR(name, "cannot %s %s: %s (%s)", step, where, uv_strerror(rc), uv_err_name(rc));
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
lc_http_create(uv_loop_t *loop, const char *addr, int port, const lc_http_opts_t *opts,
               lc_http_t **out)
{
    uv_tcp_t *listener = NULL;
    int bound_port = 0;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || addr == NULL || out == NULL || opts == NULL || opts->on_req == NULL ||
        port < 0 || port > 65535)
        return LC_ERR_INVALID;
    const char *name = opts->name ? opts->name : "http";
    ignore_sigpipe();
    LC_TRY(listen_on(loop, name, addr, port, &listener, &bound_port));

    lc_http_t *http = LC_NEW(lc_http_t);
    http->loop = loop;
    http->listener = listener;
    http->port = bound_port;
    snprintf(http->name, sizeof(http->name), "%s", name);
    http->on_req = opts->on_req;
    http->on_h2o_error = opts->on_h2o_error;
    http->arg = opts->arg;
    uv_timer_init(loop, &http->deadline_timer);
    http->deadline_timer.data = http;

    h2o_config_init(&http->config);
    http->config.server_name = h2o_iovec_init(H2O_STRLIT("")); /* no Server header */
    http->config.http1.upgrade_to_http2 = 0;
    http->config.max_request_entity_size =
        opts->max_body_bytes > 0 ? opts->max_body_bytes : DEFAULT_MAX_BODY_BYTES;
    h2o_hostconf_t *hostconf =
        h2o_config_register_host(&http->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    http_handler_t *handler = (http_handler_t *) h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_handler_req;
    handler->http = http;
    error_filter_t *filter =
        (error_filter_t *) h2o_create_filter(&hostconf->fallback_path, sizeof(*filter));
    filter->super.on_setup_ostream = on_error_setup_ostream;
    filter->http = http;
    h2o_context_init(&http->ctx, loop, &http->config);
    http->accept_ctx.ctx = &http->ctx;
    http->accept_ctx.hosts = http->config.hosts;

    listener->data = http;
    LC_INFO(http->name, "listening on %s%s%s:%d", strchr(addr, ':') ? "[" : "", addr,
            strchr(addr, ':') ? "]" : "", http->port);
    *out = http;
    return LC_OK;
}
