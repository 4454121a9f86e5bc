/*
 * lc_pg: a pool of PostgreSQL connections driven by a libuv loop (libpq's asynchronous API).
 *
 * Each connection is connected with PQconnectStart/PQconnectPoll under a uv_poll (which is
 * recreated on every connect step, since libpq may switch to a new socket, possibly with
 * the same descriptor number, when it tries the next address), then switched to
 * non-blocking mode. A connection runs one query at a time: PQsendQueryParams, PQflush
 * until the request is out, then PQconsumeInput and PQgetResult until NULL before the
 * next query is sent.
 *
 * Queries are queued FIFO when every connection is busy or none is up, up to
 * max_queued. Every query has a deadline (query_timeout_ms after lc_pg_query): a query
 * still queued at its deadline fails with LC_ERR_TIMEOUT, so queries ride out a short
 * database outage instead of failing at once. A query still running at its deadline also
 * fails with LC_ERR_TIMEOUT and its connection is dropped and reconnected, because
 * libpq 15 has no non-blocking cancel; the server notices the dropped client only when it
 * next talks to it, so put a statement_timeout in the conninfo (options='-c
 * statement_timeout=...') to bound the work on the server as well.
 *
 * A connection that fails or drops is reconnected after an exponential backoff
 * (reconnect_min_ms doubling up to reconnect_max_ms, each wait jittered down to half).
 * connect_timeout in the conninfo is ignored by libpq's asynchronous connect, so the pool
 * applies its own connect_timeout_ms to every attempt.
 *
 * PQconnectStart resolves host names with a blocking lookup: use hostaddr= or a Unix
 * socket directory in host= for a loop that must never block.
 *
 * Threads: every function must be called on the loop thread, and every callback runs on
 * it. Nothing here is thread-safe.
 */
#ifndef LC_PG_H
#define LC_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_status.h"

typedef struct lc_pg_pool lc_pg_pool_t;

/*
 * The outcome of one query, called exactly once for every lc_pg_query that returned LC_OK,
 * always from the loop (never from inside lc_pg_query):
 *   LC_OK              PGRES_COMMAND_OK or PGRES_TUPLES_OK; res is the result.
 *   LC_ERR_DB          the server or libpq rejected the query; res is the error result
 *                      (PQresultErrorField(res, PG_DIAG_SQLSTATE) says why) or NULL. The
 *                      message has been logged with LC_WARN.
 *   LC_ERR_UNAVAILABLE the connection was lost while the query ran: it may or may not have
 *                      been executed. res is NULL.
 *   LC_ERR_TIMEOUT     the deadline passed (queued or running). res is NULL.
 *   LC_ERR_CANCELLED   the pool was closed first. res is NULL.
 * res is borrowed: it is freed when the callback returns (copy what you need). The
 * callback may call lc_pg_query, lc_pg_pool_close and lc_pg_pool_destroy.
 */
typedef void (*lc_pg_result_cb)(lc_status_t status, PGresult *res, void *arg);
typedef void (*lc_pg_done_cb)(void *arg);

/* Tuning; zero fields take the default. */
typedef struct {
    size_t max_queued;          /* queries waiting for a connection; 0 = 1024 */
    int64_t query_timeout_ms;   /* from lc_pg_query to the result; 0 = 5000 */
    int64_t connect_timeout_ms; /* one connection attempt; 0 = 5000 */
    int64_t reconnect_min_ms;   /* first backoff; 0 = 100 */
    int64_t reconnect_max_ms;   /* backoff cap; 0 = 5000 */
} lc_pg_pool_opts_t;

/*
 * Creates a pool of `size` (1..64) connections and starts connecting them; returns at once.
 * conninfo: a libpq keyword/value string or URI, copied, never logged (it may hold a
 * password). Returns LC_ERR_CONFIG when libpq cannot parse conninfo, LC_ERR_INVALID for a
 * bad size. A server that is not up yet is not an error: connecting is retried until
 * lc_pg_pool_close. lc_pg_pool_create uses the default options.
 */
lc_status_t lc_pg_pool_create(uv_loop_t *loop, const char *conninfo, int size, lc_pg_pool_t **out);
/* opts: borrowed, may be NULL. */
lc_status_t lc_pg_pool_create_opts(uv_loop_t *loop, const char *conninfo, int size,
                                   const lc_pg_pool_opts_t *opts, lc_pg_pool_t **out);

/*
 * Queues a parameterised text-format query (PQsendQueryParams: one statement, parameters
 * $1..$n, types inferred by the server). sql and params (params[i] NULL is SQL NULL) are
 * copied: the caller's buffers may go away on return.
 * Returns LC_OK when cb will be called (see lc_pg_result_cb). Otherwise cb is never called:
 * LC_ERR_FULL when max_queued queries already wait, LC_ERR_UNAVAILABLE when the pool is
 * closing, LC_ERR_INVALID for a NULL sql or cb or nparams outside 0..65535.
 */
lc_status_t lc_pg_query(lc_pg_pool_t *pool, const char *sql, int nparams, const char *const *params,
                        lc_pg_result_cb cb, void *arg);

/* At least one connection is up (for /readyz). */
bool lc_pg_pool_ready(const lc_pg_pool_t *pool);
/* Connections up now, and queries waiting for one (for metrics). */
int lc_pg_pool_connected(const lc_pg_pool_t *pool);
size_t lc_pg_pool_queued(const lc_pg_pool_t *pool);

/*
 * Starts closing: fails the running and queued queries with LC_ERR_CANCELLED (their
 * callbacks run before this returns: the running ones, then the queue in FIFO order), closes
 * the connections and stops reconnecting, then closes the pool's uv handles. done_cb (may be NULL)
 * runs on a later loop turn once every handle is closed; keep running the loop until then. A second
 * call is ignored.
 */
void lc_pg_pool_close(lc_pg_pool_t *pool, lc_pg_done_cb done_cb, void *arg);

/*
 * Frees the pool (NULL is a no-op). After close's done_cb it frees at once. Before that it
 * closes the pool if needed (as lc_pg_pool_close with no done_cb, or keeping the done_cb
 * already given) and the memory is freed when the last handle has closed: the caller must
 * keep running the loop. Either way the pool must not be used after this call.
 */
void lc_pg_pool_destroy(lc_pg_pool_t *pool);

#endif
