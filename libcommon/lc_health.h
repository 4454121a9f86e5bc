/*
 * lc_health: the small HTTP side port every service exposes, served by lc_http (h2o 2.2.5)
 * on the service's libuv loop.
 *
 *   GET /healthz  200 {"status":"ok","service":"<name>"}      the process is alive
 *   GET /readyz   200 {"status":"ready"}                       ready_cb says ready
 *                 503 {"status":"not_ready","reason":"..."}   ready_cb says not ready
 *   GET /metrics  200 the registry in Prometheus text format 0.0.4
 *   any other path: 404 {"error":"not_found"}
 *   other methods than GET and HEAD on the three paths: 405 {"error":"method_not_allowed"}
 *   with `Allow: GET, HEAD`.
 *
 * Paths match exactly after h2o's normalisation; a query string is ignored. Every response
 * carries Content-Length and `Cache-Control: no-store`. Requests are counted in the
 * registry as voxi_health_requests_total{path="/healthz"|"/readyz"|"/metrics"|"other"}.
 *
 * Plain HTTP/1.x only (no TLS, no HTTP/2 upgrade): bind it to a private address. Creating
 * a side port sets SIGPIPE to ignored for the process (a peer closing mid-response must
 * not kill the service).
 *
 * Threads: every function must be called on the loop thread; ready_cb runs on it.
 */
#ifndef LC_HEALTH_H
#define LC_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_status.h"

typedef struct lc_health lc_health_t;

typedef struct {
    /* Shown by /healthz; copied. NULL = "voxi". */
    const char *service;
    /* Called on every /readyz. Return false when not ready and write why into `reason`
     * (reason_size bytes, NUL-terminated, starts out empty; an empty reason is reported
     * as "not ready"). NULL = always ready. */
    bool (*ready_cb)(void *arg, char *reason, size_t reason_size);
    void *ready_arg;
    /* Rendered by /metrics and where requests are counted; borrowed, must outlive the side
     * port. NULL = lc_metrics_default(). */
    lc_metrics_t *metrics;
} lc_health_opts_t;

/*
 * Binds addr:port (numeric IPv4 or IPv6; port 0 picks a free port) on `loop` and starts
 * serving. opts may be NULL (all defaults); it is copied. On success *out owns the side
 * port: end it with lc_health_close, then lc_health_destroy.
 * Errors: LC_ERR_INVALID (bad address, port or argument), LC_ERR_IO (bind or listen
 * failed, e.g. address in use; logged with addr:port and the libuv error). On error *out
 * is NULL and there is nothing to close or destroy, but a listening handle may still be
 * closing on the loop: run the loop before uv_loop_close().
 */
lc_status_t lc_health_create(uv_loop_t *loop, const char *addr, int port,
                             const lc_health_opts_t *opts, lc_health_t **out);

/* The port actually bound (useful with port 0). */
int lc_health_port(const lc_health_t *h);

/*
 * Stops listening and ends the open connections: a request already being answered gets
 * its response (with Connection: close), idle keep-alive connections are shut at once.
 * When every uv handle the side port owns is closed, done_cb(arg) runs once on the loop
 * (done_cb may be NULL); from then on lc_health_destroy may be called, even from inside
 * done_cb. A second call is ignored. h NULL is a no-op.
 */
void lc_health_close(lc_health_t *h, void (*done_cb)(void *arg), void *arg);

/*
 * Frees a side port whose close has completed (done_cb ran). NULL is a no-op. Called
 * before that, it logs an error and leaks rather than free memory the loop still uses.
 */
void lc_health_destroy(lc_health_t *h);

#endif
