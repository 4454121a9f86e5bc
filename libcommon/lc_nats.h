/*
 * lc_nats: a NATS connection driven by a libuv loop (nats.c + its libuv adapter).
 *
 * nats.c delivers messages on its own threads; lc_nats queues them and hands them to the
 * callbacks on the loop thread (mutex + one uv_async_t, drained whole on every wake-up,
 * since uv_async_send coalesces). nats.c has no asynchronous request API, so requests
 * use one wildcard inbox subscription `_INBOX.<nuid>.*`, publish with reply
 * `<inbox>.<n>`, and keep a table of pending requests each with its own deadline timer.
 * A "no responders" status from the server (nobody subscribed to the subject) completes
 * the request at once with LC_ERR_NO_RESPONDERS.
 *
 * Threads: every function must be called on the loop thread, and every callback runs on
 * it. The loop must have been registered with lc_nats_loop_init() on that thread.
 */
#ifndef LC_NATS_H
#define LC_NATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_status.h"

typedef struct lc_nats lc_nats_t;
typedef struct lc_nats_sub lc_nats_sub_t;
typedef struct lc_nats_msg lc_nats_msg_t;

typedef struct {
    const char *url;             /* e.g. "nats://127.0.0.1:4222"; comma-separated list ok */
    const char *name;            /* connection name shown by the server, e.g. "voxi-auth" */
    int64_t connect_timeout_ms;  /* one connect attempt; 0 = 2000 */
    int64_t reconnect_wait_ms;   /* between reconnect attempts; 0 = 250 */
    size_t max_pending_requests; /* 0 = 65536; past it lc_nats_request returns LC_ERR_FULL */
    size_t max_queued_msgs;      /* messages waiting for the loop; 0 = 65536; past it: dropped */
    void (*state_cb)(void *arg, bool connected); /* optional: on (re)connect / disconnect */
    void *state_arg;
} lc_nats_opts_t;

/* A received message; borrowed by callbacks, valid only until the callback returns. */
const char *lc_nats_msg_subject(const lc_nats_msg_t *msg);
const char *lc_nats_msg_reply(const lc_nats_msg_t *msg); /* NULL when none */
const void *lc_nats_msg_data(const lc_nats_msg_t *msg);
size_t lc_nats_msg_len(const lc_nats_msg_t *msg);
/* Value of a header or NULL. */
const char *lc_nats_msg_header(const lc_nats_msg_t *msg, const char *key);

typedef void (*lc_nats_msg_cb)(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg);
/* reply is NULL unless status == LC_OK. */
typedef void (*lc_nats_reply_cb)(lc_status_t status, const lc_nats_msg_t *reply, void *arg);
typedef void (*lc_nats_js_ack_cb)(lc_status_t status, uint64_t seq, bool duplicate, void *arg);
typedef void (*lc_nats_done_cb)(void *arg);

/* Once per loop, on the loop's thread, before lc_nats_connect. */
void lc_nats_loop_init(uv_loop_t *loop);

/*
 * Creates the connection object and starts connecting. When the server is not there yet,
 * connecting is retried from a loop timer every reconnect_wait_ms until lc_nats_close;
 * after the first connection, nats.c reconnects by itself. opts strings are copied.
 */
lc_status_t lc_nats_connect(uv_loop_t *loop, const lc_nats_opts_t *opts, lc_nats_t **out);

bool lc_nats_connected(const lc_nats_t *nc);

/* Subscribes; queue_group NULL for a plain subscription. *out may be NULL if the caller
 * never unsubscribes (it then lives until close). Works before the connection is up:
 * the subscription is made when it connects. */
lc_status_t lc_nats_subscribe(lc_nats_t *nc, const char *subject, const char *queue_group,
                              lc_nats_msg_cb cb, void *arg, lc_nats_sub_t **out);
/* Stops delivery at once: no callback for `sub` runs after this returns. */
void lc_nats_unsubscribe(lc_nats_t *nc, lc_nats_sub_t *sub);

lc_status_t lc_nats_publish(lc_nats_t *nc, const char *subject, const void *data, size_t len);
/* Publishes to the reply subject of a request (copy it to answer later). */
lc_status_t lc_nats_respond(lc_nats_t *nc, const char *reply_subject, const void *data, size_t len);

/*
 * Asynchronous request. When this returns LC_OK, exactly one call of cb follows on a later
 * loop turn, unless the request is cancelled: LC_OK with the reply, LC_ERR_TIMEOUT after
 * timeout_ms, LC_ERR_NO_RESPONDERS, or LC_ERR_CANCELLED when the connection is closed.
 * Any other return (LC_ERR_UNAVAILABLE when not connected, LC_ERR_FULL past
 * max_pending_requests) means cb is never called. *id_out (may be NULL) is for cancel.
 */
lc_status_t lc_nats_request(lc_nats_t *nc, const char *subject, const void *data, size_t len,
                            int64_t timeout_ms, lc_nats_reply_cb cb, void *arg, uint64_t *id_out);
/* Forgets a pending request: its callback is never called. Unknown ids are ignored. */
void lc_nats_request_cancel(lc_nats_t *nc, uint64_t id);
size_t lc_nats_pending_requests(const lc_nats_t *nc);

/*
 * JetStream publish with `Nats-Msg-Id: msg_id` (the stream drops duplicates within its
 * window). cb gets the stream sequence and whether the server saw a duplicate; an error
 * reply from JetStream maps to LC_ERR_PROTOCOL, no stream on the subject to
 * LC_ERR_NO_RESPONDERS.
 */
lc_status_t lc_nats_js_publish(lc_nats_t *nc, const char *subject, const char *msg_id,
                               const void *data, size_t len, int64_t timeout_ms,
                               lc_nats_js_ack_cb cb, void *arg);

/*
 * Creates a file-backed stream, or updates it when it exists with another configuration.
 * subjects: comma-separated list. cb gets LC_OK or the failure (ack args unused).
 */
lc_status_t lc_nats_js_ensure_stream(lc_nats_t *nc, const char *stream, const char *subjects,
                                     int64_t max_age_s, int64_t duplicate_window_s,
                                     int64_t timeout_ms, lc_nats_js_ack_cb cb, void *arg);

/*
 * Closes: unsubscribes everything, fails pending requests with LC_ERR_CANCELLED, closes the
 * connection and the uv handles lc_nats owns, then calls done_cb on the loop. Keep running
 * the loop afterwards so nats.c's adapter can close its own handles.
 */
void lc_nats_close(lc_nats_t *nc, lc_nats_done_cb done_cb, void *arg);

/* Frees after lc_nats_close completed (NULL is a no-op). Waits (bounded) until nats.c's
 * delivery threads have let go of every subscription. */
void lc_nats_destroy(lc_nats_t *nc);

/* Releases nats.c's global state; call once at process exit, after every destroy. */
void lc_nats_library_shutdown(void);

#endif
