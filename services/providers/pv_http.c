#include "pv_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lc_alloc.h"
#include "lc_log.h"

#define USER_AGENT "VoxiHub-Providers/" VOXI_VERSION

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    pv_http_t *h;
    struct sock_ctx *prev, *next;
} sock_ctx_t;

struct pv_http_xfer {
    pv_http_t *h;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char *body;
    pv_http_cbs_t cbs;
    void *arg;
    size_t max_bytes, total;
    bool too_large, aborted, blocked;
    bool ssrf_guard;
    const lc_ssrf_allowlist_t *allowlist;
    int64_t timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
    pv_http_xfer_t *prev, *next;
};

struct pv_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    pv_http_xfer_t *active;
    size_t nactive;
    sock_ctx_t *socks;
    int open_handles;
    bool closing;
    void (*done_cb)(void *arg);
    void *done_arg;
    lc_metric_t *m_active;
};

void
pv_http_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
pv_http_global_cleanup(void)
{
    curl_global_cleanup();
}

static void
xfer_unlink_free(pv_http_t *h, pv_http_xfer_t *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        h->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    h->nactive--;
    lc_metric_set(h->m_active, (double) h->nactive);
    if (x->easy) {
        if (h->multi)
            curl_multi_remove_handle(h->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    free(x->url);
    free(x->body);
    free(x);
}

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    pv_http_xfer_t *x = userdata;
    size_t n = size * nmemb;
    x->total += n;
    if (x->total > x->max_bytes) {
        x->too_large = true;
        return 0;
    }
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (!x->cbs.on_data(x->arg, (int) code, ptr, n)) {
        x->aborted = true;
        return 0;
    }
    return n;
}

static curl_socket_t
on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    pv_http_xfer_t *x = clientp;
    (void) purpose;
    if (x->ssrf_guard) {
        lc_ssrf_ip_t ip;
        if (!lc_ssrf_ip_from_sockaddr(&address->addr, &ip) ||
            lc_ssrf_check(x->allowlist, &ip) != LC_SSRF_PUBLIC) {
            x->blocked = true;
            return CURL_SOCKET_BAD;
        }
    }
    return socket(address->family, address->socktype, address->protocol);
}

static void
finish(pv_http_t *h, CURL *easy, CURLcode rc)
{
    pv_http_xfer_t *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &x);
    pv_http_result_t res;
    memset(&res, 0, sizeof(res));
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    res.http_status = (int) code;
    if (rc == CURLE_OK) {
        res.status = LC_OK;
    } else if (x->aborted) {
        res.status = LC_ERR_CANCELLED;
        snprintf(res.error_text, sizeof(res.error_text), "cancelled");
    } else if (x->too_large) {
        res.status = LC_ERR_TOO_LARGE;
        snprintf(res.error_text, sizeof(res.error_text), "response larger than %zu bytes",
                 x->max_bytes);
    } else if (x->blocked) {
        res.status = LC_ERR_FORBIDDEN;
        snprintf(res.error_text, sizeof(res.error_text), "the address is not allowed (SSRF guard)");
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        res.status = LC_ERR_TIMEOUT;
        snprintf(res.error_text, sizeof(res.error_text), "timed out after %lld ms",
                 (long long) x->timeout_ms);
    } else {
        res.status = LC_ERR_UNAVAILABLE;
        /* curl's message names the host and the failure; nothing secret */
        snprintf(res.error_text, sizeof(res.error_text), "%.190s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
    }
    pv_http_cbs_t cbs = x->cbs;
    void *arg = x->arg;
    xfer_unlink_free(h, x);
    cbs.on_done(arg, &res);
}

static void
check_multi_info(pv_http_t *h)
{
    CURLMsg *msg;
    int left;
    while (h->multi && (msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE)
            finish(h, msg->easy_handle, msg->data.result);
    }
}

lc_status_t
pv_http_post(pv_http_t *h, const pv_http_req_t *req, const pv_http_cbs_t *cbs, void *arg,
             pv_http_xfer_t **out)
{
    if (h->closing)
        return LC_ERR_UNAVAILABLE;
    pv_http_xfer_t *x = LC_NEW(pv_http_xfer_t);
    x->h = h;
    x->cbs = *cbs;
    x->arg = arg;
    x->url = lc_strdup(req->url);
    x->body = lc_strndup(req->body ? req->body : "", req->body_len);
    x->max_bytes = req->max_bytes ? req->max_bytes : 1;
    x->ssrf_guard = req->ssrf_guard;
    x->allowlist = req->allowlist;
    x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 1;
    for (const char *const *hp = req->headers; hp && *hp; hp++)
        x->headers = curl_slist_append(x->headers, *hp);
    x->headers = curl_slist_append(x->headers, "Expect:");
    CURL *e = curl_easy_init();
    if (e == NULL)
        abort(); /* only fails on OOM */
    x->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) x->timeout_ms);
    curl_easy_setopt(
        e, CURLOPT_CONNECTTIMEOUT_MS,
        (long) (req->connect_timeout_ms > 0 ? req->connect_timeout_ms : x->timeout_ms));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    x->next = h->active;
    if (h->active)
        h->active->prev = x;
    h->active = x;
    h->nactive++;
    lc_metric_set(h->m_active, (double) h->nactive);
    CURLMcode mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        LC_WARN("http", "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        x->easy = NULL;
        curl_easy_cleanup(e);
        xfer_unlink_free(h, x);
        return LC_ERR_INTERNAL;
    }
    if (out)
        *out = x;
    return LC_OK;
}

void
pv_http_cancel(pv_http_t *h, pv_http_xfer_t *x)
{
    if (h == NULL || x == NULL)
        return;
    xfer_unlink_free(h, x);
}

size_t
pv_http_active(const pv_http_t *h)
{
    return h ? h->nactive : 0;
}

/* ---- curl multi on libuv ---- */

static void
on_poll(uv_poll_t *handle, int status, int events)
{
    sock_ctx_t *sc = handle->data;
    pv_http_t *h = sc->h;
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
handle_closed(pv_http_t *h)
{
    h->open_handles--;
    if (h->closing && h->open_handles == 0 && h->done_cb)
        h->done_cb(h->done_arg);
}

static void
on_timer_closed(uv_handle_t *handle)
{
    handle_closed(handle->data);
}

static void
on_sock_closed(uv_handle_t *handle)
{
    sock_ctx_t *sc = handle->data;
    pv_http_t *h = sc->h;
    free(sc);
    handle_closed(h);
}

static void
sock_close(pv_http_t *h, sock_ctx_t *sc)
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
    pv_http_t *h = userp;
    sock_ctx_t *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            if (!h->closing)
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
    pv_http_t *h = t->data;
    int running = 0;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(h);
}

static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void) multi;
    pv_http_t *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timer, (uint64_t) timeout_ms, 0);
    return 0;
}

lc_status_t
pv_http_create(uv_loop_t *loop, lc_metrics_t *metrics, pv_http_t **out)
{
    pv_http_t *h = LC_NEW(pv_http_t);
    h->loop = loop;
    h->multi = curl_multi_init();
    if (h->multi == NULL)
        abort();
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 64L);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->open_handles = 1;
    h->m_active = lc_metrics_gauge(metrics, "voxi_providers_http_active",
                                   "vendor HTTP requests in progress", NULL);
    *out = h;
    return LC_OK;
}

void
pv_http_close(pv_http_t *h, void (*done_cb)(void *arg), void *arg)
{
    if (h == NULL || h->closing)
        return;
    h->closing = true;
    h->done_cb = done_cb;
    h->done_arg = arg;
    while (h->active)
        xfer_unlink_free(h, h->active);
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (h->socks)
        sock_close(h, h->socks);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *) &h->timer, on_timer_closed);
}

void
pv_http_destroy(pv_http_t *h)
{
    if (h == NULL)
        return;
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h);
}
