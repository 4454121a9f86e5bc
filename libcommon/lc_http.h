/*
 * lc_http: a plain HTTP/1.1 server (h2o 2.2.5) on a libuv loop, with one request callback.
 *
 * lc_http owns what every h2o server on our loops does the same way: binding and
 * listening, accepting, tracking the open connections, closing gracefully (a response in
 * progress is finished with Connection: close, idle keep-alive connections are ended at
 * once) and disposing h2o's context and configuration without leaving handles or memory
 * behind. What to answer is the callback's business (lc_health and the gateway use it).
 *
 * Answering later: h2o 2.2.5 does not tell when an HTTP/1 client goes away while a
 * handler has not answered yet, and the request memory may be freed under a stale
 * pointer. lc_http_defer() registers such a request under an id with a deadline and a
 * hook on the request's memory pool; whoever answers later asks lc_http_resume(id) for the
 * request, which returns NULL once it has timed out or been freed. Keep ids, never
 * h2o_req_t pointers, across loop turns.
 *
 * Errors h2o produces itself before a request reaches the callback (a body over
 * max_body_bytes: 413; a malformed request line, broken chunked encoding: 400; an unknown
 * Expect: 417) can be rewritten by the optional on_h2o_error callback, so that a server
 * whose errors have a fixed shape keeps it for those too. One exception: bytes that do
 * not parse as an HTTP request line at all get h2o's fixed text/plain 400, written
 * straight to the socket (h2o 2.2.5 offers no hook there).
 *
 * Plain HTTP/1.x only (no TLS, no HTTP/2 upgrade), no Server header. Creating a server
 * sets SIGPIPE to ignored for the process (a peer closing mid-response must not kill it).
 *
 * Threads: every function must be called on the loop thread; every callback runs on it.
 */
#ifndef LC_HTTP_H
#define LC_HTTP_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_status.h"

typedef struct lc_http lc_http_t;

/*
 * Called for every request that h2o has read completely (headers and body, the body in
 * req->entity). Answer with lc_http_respond (or any h2o_send_* call) before returning, or
 * defer with lc_http_defer and answer on a later loop turn. Return 0; a non-zero return
 * makes h2o answer 404 itself.
 */
typedef int (*lc_http_req_cb)(lc_http_t *http, h2o_req_t *req, void *arg);

/*
 * Rewrites an error response h2o generated itself (see above). req->res.status and
 * req->res.reason are set and the response has no headers yet; the callback may add
 * headers (Content-Type included) and returns the new body, which must stay valid until
 * the request is freed (allocate it in req->pool or return static text).
 */
typedef h2o_iovec_t (*lc_http_error_cb)(lc_http_t *http, h2o_req_t *req, void *arg);

typedef struct {
    /* Log subsystem and the server's name in log lines, e.g. "health"; copied (up to 31
     * bytes). NULL = "http". */
    const char *name;
    lc_http_req_cb on_req; /* required */
    void *arg;             /* passed to on_req and on_h2o_error */
    /* Largest request body h2o reads; a bigger one is refused with 413 before it is read
     * when Content-Length announces it, or as soon as a chunked body passes it.
     * 0 = 1 MiB. */
    size_t max_body_bytes;
    lc_http_error_cb on_h2o_error; /* optional; NULL keeps h2o's text/plain errors */
} lc_http_opts_t;

/*
 * Binds addr:port (numeric IPv4 or IPv6; port 0 picks a free port) on `loop` and starts
 * serving. opts is copied. On success *out owns the server: end it with lc_http_close,
 * then lc_http_destroy.
 * Errors: LC_ERR_INVALID (bad address, port or argument), LC_ERR_IO (bind or listen
 * failed, e.g. address in use; logged with addr:port and the libuv error). On error *out
 * is NULL and there is nothing to close or destroy, but a listening handle may still be
 * closing on the loop: run the loop before uv_loop_close().
 */
lc_status_t lc_http_create(uv_loop_t *loop, const char *addr, int port, const lc_http_opts_t *opts,
                           lc_http_t **out);

/* The port actually bound (useful with port 0). */
int lc_http_port(const lc_http_t *http);

/* Connections open right now (accepted and not yet closed). */
size_t lc_http_connections(const lc_http_t *http);

/*
 * Stops listening and ends the open connections: a request being answered (deferred ones
 * included) gets its response with Connection: close, idle keep-alive connections are
 * shut at once. Deferred requests keep their deadlines. When every uv handle the server
 * owns is closed, done_cb(arg) runs once on the loop (done_cb may be NULL), never from
 * inside this call; from then on lc_http_destroy may be called, even from inside done_cb.
 * A second call is ignored. http NULL is a no-op.
 */
void lc_http_close(lc_http_t *http, void (*done_cb)(void *arg), void *arg);

/* True once lc_http_close has been called. */
bool lc_http_closing(const lc_http_t *http);

/*
 * Frees a server whose close has completed (done_cb ran). NULL is a no-op. Called before
 * that, it logs an error and leaks rather than free memory the loop still uses.
 */
void lc_http_destroy(lc_http_t *http);

/* ---- answering later ---- */

/*
 * Called when a deferred request ends without lc_http_resume: `req` is the request, still
 * alive, when its deadline passed (answer it now, e.g. with 504, before returning), or
 * NULL when h2o freed it (the client is gone: there is nobody to answer). Either way the
 * id is forgotten when the callback returns.
 */
typedef void (*lc_http_abort_cb)(lc_http_t *http, uint64_t id, h2o_req_t *req, void *arg);

/*
 * Registers `req` (borrowed from h2o; the handler must then return 0 without answering) as
 * answered later. Returns its id, never 0. Exactly one of these follows: the owner calls
 * lc_http_resume(id) and answers, or on_abort runs (deadline after timeout_ms, or the
 * request freed). timeout_ms <= 0 means 1 ms.
 */
uint64_t lc_http_defer(lc_http_t *http, h2o_req_t *req, int64_t timeout_ms,
                       lc_http_abort_cb on_abort, void *arg);

/*
 * Ends the deferral of `id` and returns its request, which the caller must answer before
 * returning to the loop. NULL when the id is unknown: already resumed, timed out or freed
 * (on_abort has run then). The abort callback is not called after this.
 */
h2o_req_t *lc_http_resume(lc_http_t *http, uint64_t id);

/* Deferred requests not yet resumed or aborted. */
size_t lc_http_deferred(const lc_http_t *http);

/* ---- helpers for handlers ---- */

/*
 * Sends a complete response: status, the standard reason phrase, Content-Type (NULL =
 * none), Content-Length and the body (copied into the request pool; len 0 for none; a
 * 204 or 304 never carries one). Headers already added to req->res stay.
 */
void lc_http_respond(h2o_req_t *req, int status, const char *content_type, const void *body,
                     size_t len);

/* Adds a response header; name and value are copied. */
void lc_http_add_header(h2o_req_t *req, const char *name, const char *value);

/* The value of the first request header called `name` (case-insensitive); false if none.
 * The value is borrowed from the request. */
bool lc_http_header(const h2o_req_t *req, const char *name, h2o_iovec_t *out);

/* The client's numeric address ("127.0.0.1", "::1") into out (NUL-terminated; at least
 * 46 bytes for IPv6 to fit); "" if unknown. */
void lc_http_peer_addr(h2o_req_t *req, char *out, size_t out_size);

/* Standard reason phrase of an HTTP status ("Not Found"), "Unknown" if none. */
const char *lc_http_reason(int status);

#endif
