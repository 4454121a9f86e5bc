/*
 * pv_http: streaming HTTP POSTs to AI vendors on the service's libuv loop.
 *
 * One libcurl multi handle driven by the loop (CURLMOPT_SOCKETFUNCTION with a uv_poll per
 * socket, CURLMOPT_TIMERFUNCTION with one uv_timer), the approach of the webhooks service.
 * Response bytes are handed to on_data as they arrive (server-sent events need this), then
 * on_done runs once. With `ssrf_guard`, an opensocket callback refuses every address the
 * classifier (lc_ssrf.h) does not allow, right before connect: what is checked is what curl
 * connects to, whatever DNS said. Redirects are never followed and proxies from the
 * environment are ignored.
 *
 * Threads: the loop thread; callbacks run on it.
 */
#ifndef PV_HTTP_H
#define PV_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_status.h"
#include "pv_service.h"
#include "lc_ssrf.h"

typedef struct pv_http_xfer pv_http_xfer_t;

typedef struct {
    const char *url;
    const char *const *headers; /* "Name: value", NULL-terminated; copied */
    const char *body;           /* copied */
    size_t body_len;
    int64_t timeout_ms;         /* whole transfer */
    int64_t connect_timeout_ms; /* 0 = timeout_ms */
    size_t max_bytes;           /* response bytes accepted; past it the transfer fails */
    bool ssrf_guard;
    const lc_ssrf_allowlist_t *allowlist; /* with ssrf_guard; borrowed */
} pv_http_req_t;

typedef struct {
    lc_status_t status;   /* LC_OK: a response (any HTTP status) */
    int http_status;      /* 0 without a response */
    char error_text[200]; /* safe to show; "" on a response */
} pv_http_result_t;

/* on_data: a piece of the body, borrowed during the call; return false to abort (on_done
 * then reports LC_ERR_CANCELLED). on_done: exactly once, unless the transfer is cancelled. */
typedef struct {
    bool (*on_data)(void *arg, int http_status, const char *data, size_t len);
    void (*on_done)(void *arg, const pv_http_result_t *res);
} pv_http_cbs_t;

lc_status_t pv_http_create(uv_loop_t *loop, lc_metrics_t *metrics, pv_http_t **out);

/* Starts a POST; on LC_OK *out (may be NULL) identifies it for cancel. Callbacks never run
 * from inside this call. LC_ERR_UNAVAILABLE when closing. */
lc_status_t pv_http_post(pv_http_t *h, const pv_http_req_t *req, const pv_http_cbs_t *cbs,
                         void *arg, pv_http_xfer_t **out);

/* Stops a transfer; no callback runs for it afterwards. */
void pv_http_cancel(pv_http_t *h, pv_http_xfer_t *x);

size_t pv_http_active(const pv_http_t *h);

/* Cancels everything (no callbacks), closes handles; done_cb when closed. Idempotent. */
void pv_http_close(pv_http_t *h, void (*done_cb)(void *arg), void *arg);
/* Frees after close (NULL is a no-op). */
void pv_http_destroy(pv_http_t *h);

void pv_http_global_init(void);
void pv_http_global_cleanup(void);

#endif
