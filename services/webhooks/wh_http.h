/*
 * wh_http: outbound HTTP to customer URLs on the service's libuv loop.
 *
 * One libcurl multi handle driven by the loop (CURLMOPT_SOCKETFUNCTION with a uv_poll per
 * socket, CURLMOPT_TIMERFUNCTION with one uv_timer): no thread per request, connections
 * reused across requests, HTTP/2 where a TLS server offers it. Every request goes through
 * the SSRF guard first (wh_target: literal check, or one uv_getaddrinfo and a check of every
 * address) and curl is pinned to the checked addresses; an opensocket callback checks the
 * address once more right before each connect. Redirects are never followed, proxies from
 * the environment are ignored, only http and https are spoken.
 *
 * Threads: the loop thread; callbacks run on it.
 */
#ifndef WH_HTTP_H
#define WH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_status.h"
#include "wh_service.h"
#include "lc_ssrf.h"

typedef enum {
    WH_HTTP_RESPONSE = 0, /* a response arrived; see status */
    WH_HTTP_TIMEOUT,
    WH_HTTP_BLOCKED,   /* SSRF guard */
    WH_HTTP_INVALID,   /* the URL is not acceptable */
    WH_HTTP_DNS,       /* the host name does not resolve */
    WH_HTTP_CONNECT,   /* connection refused / reset / unreachable */
    WH_HTTP_TLS,       /* TLS handshake or certificate */
    WH_HTTP_TOO_LARGE, /* response body over max_bytes */
    WH_HTTP_ERROR,     /* anything else curl reports */
    WH_HTTP_CANCELLED, /* wh_http_close */
} wh_http_error_t;

const char *wh_http_error_name(wh_http_error_t e);

typedef struct {
    const char *url;
    const char *const *headers; /* "Name: value", NULL-terminated; copied */
    const void *body;           /* POST body; copied */
    size_t body_len;
    int64_t timeout_ms; /* whole request, connect included */
    size_t keep_bytes;  /* response bytes kept for the result */
    size_t max_bytes;   /* response bytes accepted; past it: WH_HTTP_TOO_LARGE */
    bool allow_http;    /* plain http allowed */
} wh_http_req_t;

typedef struct {
    wh_http_error_t error;
    int status;           /* HTTP status, 0 when no response */
    char error_text[200]; /* safe to show customers; "" on a response */
    const char *body;     /* kept bytes (NUL-terminated); borrowed during the callback */
    size_t body_len;
    size_t body_total; /* bytes received */
    int64_t duration_ms;
    int64_t retry_after_ms; /* parsed Retry-After, -1 when absent */
    char content_type[96];
} wh_http_result_t;

typedef void (*wh_http_done_cb)(const wh_http_result_t *res, void *arg);

/* allowlist: borrowed, outlives the engine. metrics: where to count, borrowed. */
lc_status_t wh_http_create(uv_loop_t *loop, const lc_ssrf_allowlist_t *allowlist,
                           size_t max_connections, lc_metrics_t *metrics, wh_http_t **out);

/*
 * Starts a request. On LC_OK, cb runs exactly once on a later loop turn (with
 * WH_HTTP_CANCELLED when the engine is closed first). LC_ERR_UNAVAILABLE when closing.
 */
lc_status_t wh_http_send(wh_http_t *h, const wh_http_req_t *req, wh_http_done_cb cb, void *arg);

/* Requests in progress (resolving or transferring). */
size_t wh_http_active(const wh_http_t *h);

/* Cancels every request (their callbacks run before this returns), closes the handles;
 * done_cb runs when the last is closed. A second call is ignored. */
void wh_http_close(wh_http_t *h, void (*done_cb)(void *arg), void *arg);

/* Frees after close completed (NULL is a no-op). */
void wh_http_destroy(wh_http_t *h);

/* curl_global_init / cleanup; once per process, main thread. */
void wh_http_global_init(void);
void wh_http_global_cleanup(void);

#endif
