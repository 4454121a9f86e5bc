#include "wh_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "wh_retry.h"
#include "wh_target.h"

#define USER_AGENT "VoxiHub-Webhooks/" VOXI_VERSION
#define CONNECT_TIMEOUT_MAX_MS 10000
#define EASY_POOL_MAX 256 /* idle easy handles kept for reuse (their buffers stay allocated) */

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    wh_http_t *h;
    struct sock_ctx *prev, *next;
} sock_ctx_t;

typedef struct xfer {
    wh_http_t *h;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *resolve;
    char *url;
    char *body;
    size_t body_len;
    bool allow_http;
    wh_target_t target;
    wh_resolve_t *resolving; /* set while the name is being resolved */
    bool completed;          /* the callback ran (a cancelled lookup may still be out) */
    wh_http_done_cb cb;
    void *arg;
    int64_t start_ms;
    int64_t timeout_ms;
    size_t keep_bytes, max_bytes;
    char *kept;
    size_t kept_len, total;
    bool too_large;
    bool blocked;
    wh_http_error_t pre_error; /* for completions decided before curl runs */
    char pre_text[200];
    char errbuf[CURL_ERROR_SIZE];
    struct xfer *prev, *next; /* h->active */
    struct xfer *defer_next;  /* h->deferred */
} xfer_t;

struct wh_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    uv_timer_t defer_timer;
    const lc_ssrf_allowlist_t *al;
    xfer_t *active;
    size_t nactive;
    xfer_t *deferred, *deferred_tail;
    sock_ctx_t *socks;
    CURL *easy_pool[EASY_POOL_MAX];
    size_t easy_pooled;
    int open_handles;
    bool closing;
    void (*done_cb)(void *arg);
    void *done_arg;
    lc_metric_t *m_active;
};

const char *
wh_http_error_name(wh_http_error_t e)
{
    switch (e) {
    case WH_HTTP_RESPONSE:
        return "response";
    case WH_HTTP_TIMEOUT:
        return "timeout";
    case WH_HTTP_BLOCKED:
        return "blocked";
    case WH_HTTP_INVALID:
        return "invalid_url";
    case WH_HTTP_DNS:
        return "dns";
    case WH_HTTP_CONNECT:
        return "connect";
    case WH_HTTP_TLS:
        return "tls";
    case WH_HTTP_TOO_LARGE:
        return "too_large";
    case WH_HTTP_ERROR:
        return "error";
    case WH_HTTP_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

void
wh_http_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
wh_http_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- transfers ---- */

static void
active_link(wh_http_t *h, xfer_t *x)
{
    x->prev = NULL;
    x->next = h->active;
    if (h->active)
        h->active->prev = x;
    h->active = x;
    h->nactive++;
    lc_metric_set(h->m_active, (double) h->nactive);
}

static void
active_unlink(wh_http_t *h, xfer_t *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        h->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    h->nactive--;
    lc_metric_set(h->m_active, (double) h->nactive);
}

static void
xfer_free(xfer_t *x)
{
    wh_http_t *h = x->h;
    if (x->easy && !h->closing && h->easy_pooled < EASY_POOL_MAX) {
        curl_easy_reset(x->easy); /* options cleared; allocated buffers kept */
        h->easy_pool[h->easy_pooled++] = x->easy;
    } else if (x->easy) {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->resolve);
    free(x->url);
    free(x->body);
    free(x->kept);
    free(x);
}

/* Runs the callback once and unlinks; frees unless a cancelled lookup still holds x. */
static void
xfer_complete(xfer_t *x, wh_http_result_t *res)
{
    wh_http_t *h = x->h;
    active_unlink(h, x);
    x->completed = true;
    res->duration_ms = lc_time_mono_ms() - x->start_ms;
    res->body = x->kept ? x->kept : "";
    res->body_len = x->kept_len;
    res->body_total = x->total;
    x->cb(res, x->arg);
    if (x->resolving == NULL)
        xfer_free(x);
}

static void
result_init(wh_http_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
}

static void
complete_error(xfer_t *x, wh_http_error_t e, const char *text)
{
    wh_http_result_t res;
    result_init(&res);
    res.error = e;
    snprintf(res.error_text, sizeof(res.error_text), "%s", text);
    xfer_complete(x, &res);
}

static void
on_defer(uv_timer_t *t)
{
    wh_http_t *h = t->data;
    xfer_t *x = h->deferred;
    h->deferred = h->deferred_tail = NULL;
    while (x) {
        xfer_t *next = x->defer_next;
        complete_error(x, x->pre_error, x->pre_text);
        x = next;
    }
}

/* Completes x on a later loop turn (callbacks never run from inside wh_http_send). */
static void
defer_error(xfer_t *x, wh_http_error_t e, const char *text)
{
    wh_http_t *h = x->h;
    x->pre_error = e;
    snprintf(x->pre_text, sizeof(x->pre_text), "%s", text);
    x->defer_next = NULL;
    if (h->deferred_tail)
        h->deferred_tail->defer_next = x;
    else
        h->deferred = x;
    h->deferred_tail = x;
    uv_timer_start(&h->defer_timer, on_defer, 0, 0);
}

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    xfer_t *x = userdata;
    size_t n = size * nmemb;
    x->total += n;
    if (x->total > x->max_bytes) {
        x->too_large = true;
        return 0; /* aborts the transfer */
    }
    if (x->kept_len < x->keep_bytes) {
        if (x->kept == NULL)
            x->kept = lc_malloc(x->keep_bytes + 1);
        size_t take = x->keep_bytes - x->kept_len;
        if (take > n)
            take = n;
        memcpy(x->kept + x->kept_len, ptr, take);
        x->kept_len += take;
        x->kept[x->kept_len] = '\0';
    }
    return n;
}

/* The last check, right before connect: whatever address curl picked must pass the guard
 * (pinning makes this the checked address; this also covers reused DNS cache entries). */
static curl_socket_t
on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    xfer_t *x = clientp;
    (void) purpose;
    lc_ssrf_ip_t ip;
    if (!lc_ssrf_ip_from_sockaddr(&address->addr, &ip) ||
        lc_ssrf_check(x->h->al, &ip) != LC_SSRF_PUBLIC) {
        x->blocked = true;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

static wh_http_error_t
map_curl_error(CURLcode rc, xfer_t *x)
{
    switch (rc) {
    case CURLE_OK:
        return WH_HTTP_RESPONSE;
    case CURLE_OPERATION_TIMEDOUT:
        return WH_HTTP_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
        return WH_HTTP_DNS;
    case CURLE_COULDNT_CONNECT:
        return x->blocked ? WH_HTTP_BLOCKED : WH_HTTP_CONNECT;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        return x->too_large || rc == CURLE_FILESIZE_EXCEEDED ? WH_HTTP_TOO_LARGE : WH_HTTP_ERROR;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return WH_HTTP_TLS;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return WH_HTTP_CONNECT;
    default:
        return WH_HTTP_ERROR;
    }
}

static void
finish_curl(wh_http_t *h, CURL *easy, CURLcode rc)
{
    xfer_t *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &x);
    curl_multi_remove_handle(h->multi, easy);
    wh_http_result_t res;
    result_init(&res);
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    res.error = map_curl_error(rc, x);
    if (res.error == WH_HTTP_RESPONSE || res.error == WH_HTTP_TOO_LARGE) {
        res.status = (int) code;
        struct curl_header *hdr = NULL;
        if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK)
            res.retry_after_ms = wh_retry_after_parse_ms(hdr->value, lc_time_wall_ms());
        char *ct = NULL;
        if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(res.content_type, sizeof(res.content_type), "%s", ct);
    }
    switch (res.error) {
    case WH_HTTP_RESPONSE:
        break;
    case WH_HTTP_TIMEOUT:
        snprintf(res.error_text, sizeof(res.error_text), "timed out after %lld ms",
                 (long long) x->timeout_ms);
        break;
    case WH_HTTP_BLOCKED:
        snprintf(res.error_text, sizeof(res.error_text), "the address is not allowed (SSRF guard)");
        break;
    case WH_HTTP_TOO_LARGE:
        snprintf(res.error_text, sizeof(res.error_text), "response larger than %zu bytes",
                 x->max_bytes);
        break;
    default:
        /* curl's message names the host and the failure, nothing of ours */
        snprintf(res.error_text, sizeof(res.error_text), "%.190s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        break;
    }
    xfer_complete(x, &res);
}

static void
check_multi_info(wh_http_t *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE)
            finish_curl(h, msg->easy_handle, msg->data.result);
    }
}

static void
start_curl(xfer_t *x)
{
    wh_http_t *h = x->h;
    int64_t left = x->timeout_ms - (lc_time_mono_ms() - x->start_ms);
    if (left <= 0) {
        complete_error(x, WH_HTTP_TIMEOUT, "timed out resolving the host name");
        return;
    }
    if (!x->target.literal) {
        /* Pin curl to the addresses we checked: "host:port:addr1,addr2". */
        char entry[WH_HOST_MAX + 16 + WH_TARGET_MAX_ADDRS * (LC_SSRF_IP_TEXT_MAX + 3)];
        int n = snprintf(entry, sizeof(entry), "%s:%d:", x->target.host, x->target.port);
        for (size_t i = 0; i < x->target.naddrs && n > 0 && (size_t) n < sizeof(entry); i++) {
            char ip[LC_SSRF_IP_TEXT_MAX];
            lc_ssrf_ip_format(&x->target.addrs[i], ip, sizeof(ip));
            n += snprintf(entry + n, sizeof(entry) - (size_t) n,
                          x->target.addrs[i].family == AF_INET6 ? "%s[%s]" : "%s%s", i ? "," : "",
                          ip);
        }
        x->resolve = curl_slist_append(NULL, entry);
    }
    CURL *e = h->easy_pooled > 0 ? h->easy_pool[--h->easy_pooled] : curl_easy_init();
    if (e == NULL)
        abort(); /* only fails on OOM */
    x->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, x->allow_http ? "http,https" : "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) left);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) (left < CONNECT_TIMEOUT_MAX_MS ? left : CONNECT_TIMEOUT_MAX_MS));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    if (x->resolve)
        curl_easy_setopt(e, CURLOPT_RESOLVE, x->resolve);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) x->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) x->max_bytes);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    CURLMcode mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        LC_WARN("http", "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        complete_error(x, WH_HTTP_ERROR, "internal error starting the request");
    }
}

static bool
check_target(xfer_t *x)
{
    char bad[LC_SSRF_IP_TEXT_MAX];
    lc_ssrf_class_t c = wh_target_check(&x->target, x->h->al, bad);
    if (c == LC_SSRF_PUBLIC)
        return true;
    char text[200];
    snprintf(text, sizeof(text), "%.100s resolves to a %s address (%s), which is not allowed",
             x->target.host, lc_ssrf_class_name(c), bad);
    complete_error(x, WH_HTTP_BLOCKED, text);
    return false;
}

static void
on_target_resolved(lc_status_t status, const wh_target_t *t, void *arg)
{
    xfer_t *x = arg;
    x->resolving = NULL;
    if (x->completed) { /* cancelled by close while the lookup was out */
        xfer_free(x);
        return;
    }
    if (status != LC_OK) {
        char text[200];
        snprintf(text, sizeof(text), "could not resolve host %.150s", x->target.host);
        complete_error(x, status == LC_ERR_CANCELLED ? WH_HTTP_CANCELLED : WH_HTTP_DNS, text);
        return;
    }
    x->target = *t;
    if (check_target(x))
        start_curl(x);
}

lc_status_t
wh_http_send(wh_http_t *h, const wh_http_req_t *req, wh_http_done_cb cb, void *arg)
{
    if (h->closing)
        return LC_ERR_UNAVAILABLE;
    xfer_t *x = LC_NEW(xfer_t);
    x->h = h;
    x->cb = cb;
    x->arg = arg;
    x->start_ms = lc_time_mono_ms();
    x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 1;
    x->keep_bytes = req->keep_bytes;
    x->max_bytes = req->max_bytes > 0 ? req->max_bytes : 1;
    x->allow_http = req->allow_http;
    x->url = lc_strdup(req->url ? req->url : "");
    if (req->body_len > 0) {
        x->body = lc_malloc(req->body_len);
        memcpy(x->body, req->body, req->body_len);
        x->body_len = req->body_len;
    }
    for (const char *const *hp = req->headers; hp && *hp; hp++)
        x->headers = curl_slist_append(x->headers, *hp);
    x->headers = curl_slist_append(x->headers, "Expect:"); /* no 100-continue round trip */
    active_link(h, x);

    char err[160];
    if (wh_url_parse(x->url, x->allow_http, &x->target, err, sizeof(err)) != LC_OK) {
        char text[200];
        snprintf(text, sizeof(text), "the URL %s", err);
        defer_error(x, WH_HTTP_INVALID, text);
        return LC_OK;
    }
    if (x->target.literal) {
        char bad[LC_SSRF_IP_TEXT_MAX];
        lc_ssrf_class_t c = wh_target_check(&x->target, h->al, bad);
        if (c != LC_SSRF_PUBLIC) {
            char text[200];
            snprintf(text, sizeof(text), "%s is a %s address, which is not allowed", bad,
                     lc_ssrf_class_name(c));
            defer_error(x, WH_HTTP_BLOCKED, text);
            return LC_OK;
        }
        start_curl(x); /* completion comes from the loop, never from here */
        return LC_OK;
    }
    if (wh_target_resolve(h->loop, &x->target, on_target_resolved, x, &x->resolving) != LC_OK)
        defer_error(x, WH_HTTP_ERROR, "internal error resolving the host name");
    return LC_OK;
}

size_t
wh_http_active(const wh_http_t *h)
{
    return h ? h->nactive : 0;
}

/* ---- curl multi on libuv ---- */

static void
on_poll(uv_poll_t *handle, int status, int events)
{
    sock_ctx_t *sc = handle->data;
    wh_http_t *h = sc->h;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running = 0;
    curl_multi_socket_action(h->multi, sc->fd, flags, &running);
    check_multi_info(h);
}

static void
on_handle_closed(uv_handle_t *handle)
{
    wh_http_t *h = handle->data;
    h->open_handles--;
    if (h->closing && h->open_handles == 0 && h->done_cb)
        h->done_cb(h->done_arg);
}

static void
on_sock_closed(uv_handle_t *handle)
{
    sock_ctx_t *sc = handle->data;
    wh_http_t *h = sc->h;
    free(sc);
    h->open_handles--;
    if (h->closing && h->open_handles == 0 && h->done_cb)
        h->done_cb(h->done_arg);
}

static void
sock_close(wh_http_t *h, sock_ctx_t *sc)
{
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        h->socks = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    uv_poll_stop(&sc->poll);
    uv_close((uv_handle_t *) &sc->poll, on_sock_closed);
}

static int
on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void) easy;
    wh_http_t *h = userp;
    sock_ctx_t *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            if (!h->closing) /* during curl_multi_cleanup the socket hash is going away */
                curl_multi_assign(h->multi, s, NULL);
            sock_close(h, sc);
        }
        return 0;
    }
    if (sc == NULL) {
        sc = LC_NEW(sock_ctx_t);
        sc->fd = s;
        sc->h = h;
        if (uv_poll_init_socket(h->loop, &sc->poll, s) != 0) {
            LC_WARN("http", "uv_poll_init_socket failed for fd %d", (int) s);
            free(sc);
            return -1;
        }
        sc->poll.data = sc;
        h->open_handles++;
        sc->next = h->socks;
        if (h->socks)
            h->socks->prev = sc;
        h->socks = sc;
        curl_multi_assign(h->multi, s, sc);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&sc->poll, events, on_poll);
    return 0;
}

static void
on_timer(uv_timer_t *t)
{
    wh_http_t *h = t->data;
    int running = 0;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(h);
}

static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void) multi;
    wh_http_t *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else /* 0 means "as soon as possible": the next loop turn, never from inside curl */
        uv_timer_start(&h->timer, on_timer, (uint64_t) timeout_ms, 0);
    return 0;
}

lc_status_t
wh_http_create(uv_loop_t *loop, const lc_ssrf_allowlist_t *allowlist, size_t max_connections,
               lc_metrics_t *metrics, wh_http_t **out)
{
    wh_http_t *h = LC_NEW(wh_http_t);
    h->loop = loop;
    h->al = allowlist;
    h->multi = curl_multi_init();
    if (h->multi == NULL)
        abort(); /* only fails on OOM */
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
                      (long) (max_connections ? max_connections : 64));
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_timer_init(loop, &h->defer_timer);
    h->defer_timer.data = h;
    h->open_handles = 2;
    h->m_active =
        lc_metrics_gauge(metrics, "voxi_webhooks_http_active",
                         "outbound HTTP requests in progress (resolving or transferring)", NULL);
    *out = h;
    return LC_OK;
}

void
wh_http_close(wh_http_t *h, void (*done_cb)(void *arg), void *arg)
{
    if (h == NULL || h->closing)
        return;
    h->closing = true;
    h->done_cb = done_cb;
    h->done_arg = arg;
    /* Deferred completions and running transfers end now, as cancelled. */
    xfer_t *d = h->deferred;
    h->deferred = h->deferred_tail = NULL;
    while (d) {
        xfer_t *next = d->defer_next;
        complete_error(d, WH_HTTP_CANCELLED, "cancelled: the service is shutting down");
        d = next;
    }
    while (h->active) {
        xfer_t *x = h->active;
        if (x->easy)
            curl_multi_remove_handle(h->multi, x->easy);
        if (x->resolving)
            wh_resolve_cancel(x->resolving);
        complete_error(x, WH_HTTP_CANCELLED, "cancelled: the service is shutting down");
    }
    while (h->easy_pooled > 0)
        curl_easy_cleanup(h->easy_pool[--h->easy_pooled]);
    curl_multi_cleanup(h->multi); /* closes cached connections (socket callbacks REMOVE) */
    h->multi = NULL;
    while (h->socks)
        sock_close(h, h->socks);
    uv_timer_stop(&h->timer);
    uv_timer_stop(&h->defer_timer);
    uv_close((uv_handle_t *) &h->timer, on_handle_closed);
    uv_close((uv_handle_t *) &h->defer_timer, on_handle_closed);
}

void
wh_http_destroy(wh_http_t *h)
{
    if (h == NULL)
        return;
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h);
}
