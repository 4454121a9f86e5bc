#include "lc_pg.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define POOL_SIZE_MAX 64
#define NPARAMS_MAX 65535 /* the protocol's Int16 parameter count */
#define SQL_LOG_CHARS 80

typedef struct pg_query {
    struct pg_query *next;
    char *sql;
    char **params; /* nparams entries, NULL for SQL NULL */
    int nparams;
    lc_pg_result_cb cb;
    void *arg;
    uint64_t deadline_ms; /* on the uv_now() clock */
} pg_query_t;

typedef enum {
    CONN_WAITING,    /* backoff timer runs before the next attempt */
    CONN_CONNECTING, /* PQconnectPoll in progress; the timer is the attempt's deadline */
    CONN_IDLE,       /* up, no query */
    CONN_BUSY,       /* up, one query in flight */
    CONN_CLOSED,     /* the pool is closing */
} conn_state_t;

typedef struct pg_conn {
    lc_pg_pool_t *pool;
    int index;
    conn_state_t state;
    PGconn *pg;
    uv_poll_t *poll; /* heap: freed by its close callback; NULL when not watching */
    int poll_events;
    uv_timer_t timer;
    int64_t backoff_ms; /* the next reconnect wait, before jitter */
    pg_query_t *query;  /* in flight when CONN_BUSY */
    PGresult *result;   /* the result kept for `query` so far */
} pg_conn_t;

struct lc_pg_pool {
    uv_loop_t *loop;
    char *conninfo;
    lc_pg_pool_opts_t opts;
    int size;
    pg_conn_t *conns;
    pg_query_t *head, *tail; /* FIFO of queries waiting for a connection */
    size_t queued;
    uv_timer_t deadline_timer; /* fires at the earliest query deadline */
    int open_handles;
    bool closing;
    bool closed; /* every handle has closed */
    bool destroy_requested;
    lc_pg_done_cb done_cb;
    void *done_arg;
};

static void dispatch(lc_pg_pool_t *pool);
static void conn_connect_start(pg_conn_t *conn);

/* libpq messages end with a newline; logs do not want it. */
static int
trimmed_len(const char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    return (int) n;
}

/* ---- queries ---- */

static pg_query_t *
query_new(const char *sql, int nparams, const char *const *params, lc_pg_result_cb cb, void *arg)
{
    pg_query_t *q = LC_NEW(pg_query_t);
    q->sql = lc_strdup(sql);
    q->nparams = nparams;
    if (nparams > 0) {
        q->params = lc_calloc((size_t) nparams, sizeof(char *));
        for (int i = 0; i < nparams; i++)
            q->params[i] = params[i] ? lc_strdup(params[i]) : NULL;
    }
    q->cb = cb;
    q->arg = arg;
    return q;
}

static void
query_free(pg_query_t *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q);
}

/* Delivers the outcome, then frees res and q. The pool may be closed or freed by the
 * callback: callers touch nothing of it afterwards unless they checked. */
static void
query_finish(pg_query_t *q, lc_status_t status, PGresult *res)
{
    q->cb(status, res, q->arg);
    PQclear(res);
    query_free(q);
}

static void
queue_push_tail(lc_pg_pool_t *pool, pg_query_t *q)
{
    q->next = NULL;
    if (pool->tail)
        pool->tail->next = q;
    else
        pool->head = q;
    pool->tail = q;
    pool->queued++;
}

static void
queue_push_head(lc_pg_pool_t *pool, pg_query_t *q)
{
    q->next = pool->head;
    pool->head = q;
    if (pool->tail == NULL)
        pool->tail = q;
    pool->queued++;
}

static pg_query_t *
queue_pop(lc_pg_pool_t *pool)
{
    pg_query_t *q = pool->head;
    if (q == NULL)
        return NULL;
    pool->head = q->next;
    if (pool->head == NULL)
        pool->tail = NULL;
    pool->queued--;
    q->next = NULL;
    return q;
}

/* A singly linked list of queries to finish once the pool's state is consistent again. */
typedef struct {
    pg_query_t *head, **tailp;
} qlist_t;

static void
qlist_append(qlist_t *l, pg_query_t *q)
{
    q->next = NULL;
    *l->tailp = q;
    l->tailp = &q->next;
}

static void
qlist_finish(qlist_t *l, lc_status_t status)
{
    for (pg_query_t *q = l->head, *next; q; q = next) {
        next = q->next;
        query_finish(q, status, NULL);
    }
}

/* ---- handles and shutdown ---- */

static void
pool_free(lc_pg_pool_t *pool)
{
    free(pool->conns);
    free(pool->conninfo);
    free(pool);
}

/* Runs when a handle has closed: completes the close once the last one is gone. */
static void
handle_gone(lc_pg_pool_t *pool)
{
    pool->open_handles--;
    if (!pool->closing || pool->open_handles > 0 || pool->closed)
        return;
    pool->closed = true;
    lc_pg_done_cb done_cb = pool->done_cb;
    void *done_arg = pool->done_arg;
    if (pool->destroy_requested)
        pool_free(pool);
    if (done_cb)
        done_cb(done_arg);
}

static void
on_poll_closed(uv_handle_t *h)
{
    pg_conn_t *conn = h->data;
    free(h);
    handle_gone(conn->pool);
}

static void
on_conn_timer_closed(uv_handle_t *h)
{
    pg_conn_t *conn = h->data;
    handle_gone(conn->pool);
}

static void
on_deadline_timer_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

/* ---- watching the socket ---- */

static void on_poll(uv_poll_t *handle, int status, int events);

/* Closing (not just stopping) also removes the descriptor from epoll while it is still the
 * one libpq had: libpq may close it and get the same number back for a new socket. */
static void
poll_close(pg_conn_t *conn)
{
    if (conn->poll == NULL)
        return;
    uv_close((uv_handle_t *) conn->poll, on_poll_closed);
    conn->poll = NULL;
    conn->poll_events = 0;
}

static lc_status_t
poll_open(pg_conn_t *conn, int events)
{
    int fd = PQsocket(conn->pg);
    if (fd < 0)
        return LC_ERR_IO;
    uv_poll_t *poll = lc_malloc(sizeof(*poll));
    int rc = uv_poll_init(conn->pool->loop, poll, fd);
    if (rc != 0) {
        free(poll); /* not registered with the loop on failure */
        LC_WARN("pg", "connection %d: uv_poll_init: %s", conn->index, uv_strerror(rc));
        return LC_ERR_IO;
    }
    poll->data = conn;
    conn->pool->open_handles++;
    conn->poll = poll;
    conn->poll_events = events;
    uv_poll_start(poll, events, on_poll);
    return LC_OK;
}

static void
poll_want(pg_conn_t *conn, int events)
{
    if (conn->poll == NULL || conn->poll_events == events)
        return;
    conn->poll_events = events;
    uv_poll_start(conn->poll, events, on_poll);
}

/* ---- connection lifecycle ---- */

static void
on_notice(void *arg, const char *message)
{
    pg_conn_t *conn = arg;
    LC_INFO("pg", "connection %d: server said: %.*s", conn->index, trimmed_len(message), message);
}

/* Stops watching and closes the libpq connection; the in-flight query, if any, stays. */
static void
conn_drop(pg_conn_t *conn)
{
    poll_close(conn); /* before PQfinish, while the descriptor is still libpq's */
    PQfinish(conn->pg);
    conn->pg = NULL;
    PQclear(conn->result);
    conn->result = NULL;
    uv_timer_stop(&conn->timer);
}

static void
on_reconnect_timer(uv_timer_t *timer)
{
    conn_connect_start(timer->data);
}

static void
schedule_reconnect(pg_conn_t *conn)
{
    const lc_pg_pool_opts_t *o = &conn->pool->opts;
    uint32_t r;
    lc_random_bytes(&r, sizeof(r));
    /* Full backoff down to half of it, so a fleet does not reconnect in step. */
    int64_t half = conn->backoff_ms / 2;
    int64_t delay_ms = conn->backoff_ms - (half > 0 ? (int64_t) (r % (uint32_t) (half + 1)) : 0);
    conn->backoff_ms *= 2;
    if (conn->backoff_ms > o->reconnect_max_ms)
        conn->backoff_ms = o->reconnect_max_ms;
    conn->state = CONN_WAITING;
    uv_timer_start(&conn->timer, on_reconnect_timer, (uint64_t) delay_ms, 0);
}

static void
conn_attempt_failed(pg_conn_t *conn, const char *why)
{
    LC_LOG_RL(LC_LOG_WARN, "pg", 1, "connection %d: connect failed: %.*s; retrying", conn->index,
              trimmed_len(why), why);
    conn_drop(conn);
    schedule_reconnect(conn);
}

/* Drops a connection that was up and schedules its reconnect; returns its in-flight query
 * (now detached) for the caller to finish. */
static pg_query_t *
conn_abandon(pg_conn_t *conn)
{
    pg_query_t *q = conn->query;
    conn->query = NULL;
    conn_drop(conn);
    schedule_reconnect(conn);
    return q;
}

static void
conn_lost(pg_conn_t *conn, const char *why)
{
    LC_WARN("pg", "connection %d lost: %.*s", conn->index, trimmed_len(why), why);
    pg_query_t *q = conn_abandon(conn);
    if (q)
        query_finish(q, LC_ERR_UNAVAILABLE, NULL);
}

static void
on_connect_timeout(uv_timer_t *timer)
{
    conn_attempt_failed(timer->data, "timed out");
}

static void
conn_up(pg_conn_t *conn)
{
    uv_timer_stop(&conn->timer);
    if (PQsetnonblocking(conn->pg, 1) != 0) {
        conn_attempt_failed(conn, PQerrorMessage(conn->pg));
        return;
    }
    if (poll_open(conn, UV_READABLE) != LC_OK) {
        conn_attempt_failed(conn, "cannot watch the socket");
        return;
    }
    conn->state = CONN_IDLE;
    conn->backoff_ms = conn->pool->opts.reconnect_min_ms;
    LC_INFO("pg", "connection %d up (server %d)", conn->index, PQserverVersion(conn->pg));
    dispatch(conn->pool);
}

/* One PQconnectPoll step, with a fresh uv_poll for whatever socket libpq now uses. */
static void
conn_connect_step(pg_conn_t *conn)
{
    poll_close(conn);
    switch (PQconnectPoll(conn->pg)) {
    case PGRES_POLLING_READING:
        if (poll_open(conn, UV_READABLE) != LC_OK)
            conn_attempt_failed(conn, "cannot watch the socket");
        break;
    case PGRES_POLLING_WRITING:
        if (poll_open(conn, UV_WRITABLE) != LC_OK)
            conn_attempt_failed(conn, "cannot watch the socket");
        break;
    case PGRES_POLLING_OK:
        conn_up(conn);
        break;
    default:
        conn_attempt_failed(conn, PQerrorMessage(conn->pg));
        break;
    }
}

static void
conn_connect_start(pg_conn_t *conn)
{
    conn->state = CONN_CONNECTING;
    conn->pg = PQconnectStart(conn->pool->conninfo);
    if (conn->pg == NULL)
        abort(); /* only on out of memory */
    PQsetNoticeProcessor(conn->pg, on_notice, conn);
    if (PQstatus(conn->pg) == CONNECTION_BAD) {
        conn_attempt_failed(conn, PQerrorMessage(conn->pg));
        return;
    }
    uv_timer_start(&conn->timer, on_connect_timeout, (uint64_t) conn->pool->opts.connect_timeout_ms,
                   0);
    /* libpq: before the first PQconnectPoll, behave as if it asked for writable. */
    if (poll_open(conn, UV_WRITABLE) != LC_OK)
        conn_attempt_failed(conn, "cannot watch the socket");
}

/* ---- running queries ---- */

static lc_status_t
result_status(const pg_query_t *q, const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return LC_OK;
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *msg = primary ? primary : res ? PQresultErrorMessage(res) : "no result";
    if (*msg == '\0')
        msg = PQresStatus(st);
    LC_WARN("pg", "query failed: sqlstate=%s %.*s (sql: %.*s)", sqlstate ? sqlstate : "-",
            trimmed_len(msg), msg, SQL_LOG_CHARS, q->sql);
    return LC_ERR_DB;
}

/* Keeps one result per query: the last one, except that an error is never replaced. */
static void
keep_result(pg_conn_t *conn, PGresult *res)
{
    if (conn->result == NULL) {
        conn->result = res;
        return;
    }
    ExecStatusType kept = PQresultStatus(conn->result);
    if (kept != PGRES_COMMAND_OK && kept != PGRES_TUPLES_OK) {
        PQclear(res);
        return;
    }
    PQclear(conn->result);
    conn->result = res;
}

/* Sends q on an idle connection. On failure the query goes back to the head of the queue
 * and the connection is dropped: nothing can have been executed, since the server commits
 * the implicit transaction only at the trailing Sync message, the last bytes libpq writes,
 * and a failed send or flush means they did not all go out. So no callback runs from here,
 * which lets lc_pg_query dispatch at once. */
static void
conn_send(pg_conn_t *conn, pg_query_t *q)
{
    int flushed = -1;
    if (PQsendQueryParams(conn->pg, q->sql, q->nparams, NULL, (const char *const *) q->params, NULL,
                          NULL, 0))
        flushed = PQflush(conn->pg);
    if (flushed < 0) {
        queue_push_head(conn->pool, q);
        LC_WARN("pg", "connection %d lost on send: %.*s", conn->index,
                trimmed_len(PQerrorMessage(conn->pg)), PQerrorMessage(conn->pg));
        conn_abandon(conn);
        return;
    }
    conn->query = q;
    conn->state = CONN_BUSY;
    /* Non-blocking libpq: what did not fit in the socket buffer goes out when writable. */
    poll_want(conn, flushed == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void
dispatch(lc_pg_pool_t *pool)
{
    for (int i = 0; i < pool->size && pool->head; i++) {
        pg_conn_t *conn = &pool->conns[i];
        if (conn->state == CONN_IDLE)
            conn_send(conn, queue_pop(pool));
    }
}

/* The query on conn has all its results. */
static void
conn_query_done(pg_conn_t *conn)
{
    lc_pg_pool_t *pool = conn->pool;
    pg_query_t *q = conn->query;
    PGresult *res = conn->result;
    conn->query = NULL;
    conn->result = NULL;
    conn->state = CONN_IDLE;
    lc_status_t status = result_status(q, res);
    if (PQstatus(conn->pg) == CONNECTION_BAD) /* e.g. the server ended the session */
        conn_lost(conn, PQerrorMessage(conn->pg));
    query_finish(q, status, res);
    if (!pool->closing)
        dispatch(pool);
}

static void
conn_collect(pg_conn_t *conn)
{
    while (!PQisBusy(conn->pg)) {
        PGresult *res = PQgetResult(conn->pg);
        if (res == NULL) {
            conn_query_done(conn);
            return;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            /* The pool has no COPY API: leaving the COPY state needs blocking calls. */
            PQclear(res);
            LC_WARN("pg", "COPY is not supported by lc_pg (sql: %.*s)", SQL_LOG_CHARS,
                    conn->query->sql);
            pg_query_t *q = conn_abandon(conn);
            query_finish(q, LC_ERR_DB, NULL);
            return;
        }
        keep_result(conn, res);
    }
}

static void
conn_io(pg_conn_t *conn, int status, int events)
{
    if (status < 0) {
        conn_lost(conn, uv_strerror(status));
        return;
    }
    if ((events & UV_READABLE) && !PQconsumeInput(conn->pg)) {
        conn_lost(conn, PQerrorMessage(conn->pg));
        return;
    }
    if (conn->poll_events & UV_WRITABLE) {
        int rc = PQflush(conn->pg);
        if (rc < 0) {
            conn_lost(conn, PQerrorMessage(conn->pg));
            return;
        }
        if (rc == 0)
            poll_want(conn, UV_READABLE);
    }
    if (conn->state == CONN_BUSY) {
        conn_collect(conn);
        return;
    }
    for (PGnotify *n; (n = PQnotifies(conn->pg)) != NULL;)
        PQfreemem(n); /* nobody LISTENs through the pool */
    if (PQstatus(conn->pg) == CONNECTION_BAD)
        conn_lost(conn, PQerrorMessage(conn->pg));
}

static void
on_poll(uv_poll_t *handle, int status, int events)
{
    pg_conn_t *conn = handle->data;
    if (conn->state == CONN_CONNECTING)
        conn_connect_step(conn);
    else
        conn_io(conn, status, events);
}

/* ---- deadlines ---- */

static void on_deadline(uv_timer_t *timer);

static void
arm_deadline(lc_pg_pool_t *pool)
{
    uint64_t earliest = UINT64_MAX;
    if (pool->head) /* FIFO with one timeout: the head has the queue's earliest deadline */
        earliest = pool->head->deadline_ms;
    for (int i = 0; i < pool->size; i++) {
        const pg_conn_t *conn = &pool->conns[i];
        if (conn->state == CONN_BUSY && conn->query->deadline_ms < earliest)
            earliest = conn->query->deadline_ms;
    }
    if (earliest == UINT64_MAX) {
        uv_timer_stop(&pool->deadline_timer);
        return;
    }
    uint64_t now = uv_now(pool->loop);
    uv_timer_start(&pool->deadline_timer, on_deadline, earliest > now ? earliest - now : 0, 0);
}

static void
on_deadline(uv_timer_t *timer)
{
    lc_pg_pool_t *pool = timer->data;
    uint64_t now = uv_now(pool->loop);
    qlist_t expired = {NULL, &expired.head};
    int running = 0;
    while (pool->head && pool->head->deadline_ms <= now)
        qlist_append(&expired, queue_pop(pool));
    for (int i = 0; i < pool->size; i++) {
        pg_conn_t *conn = &pool->conns[i];
        if (conn->state == CONN_BUSY && conn->query->deadline_ms <= now) {
            /* No non-blocking cancel in libpq 15: give up the connection instead. */
            qlist_append(&expired, conn_abandon(conn));
            running++;
        }
    }
    if (expired.head)
        LC_LOG_RL(LC_LOG_WARN, "pg", 1, "queries timed out after %" PRId64 " ms (%d running)",
                  pool->opts.query_timeout_ms, running);
    arm_deadline(pool);
    qlist_finish(&expired, LC_ERR_TIMEOUT);
}

/* ---- public API ---- */

static void
opts_resolve(lc_pg_pool_opts_t *o, const lc_pg_pool_opts_t *given)
{
    if (given)
        *o = *given;
    if (o->max_queued == 0)
        o->max_queued = 1024;
    if (o->query_timeout_ms <= 0)
        o->query_timeout_ms = 5000;
    if (o->connect_timeout_ms <= 0)
        o->connect_timeout_ms = 5000;
    if (o->reconnect_min_ms <= 0)
        o->reconnect_min_ms = 100;
    if (o->reconnect_max_ms < o->reconnect_min_ms)
        o->reconnect_max_ms = o->reconnect_min_ms > 5000 ? o->reconnect_min_ms : 5000;
}

static lc_status_t
check_conninfo(const char *conninfo)
{
    char *err = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo, &err);
    if (parsed == NULL) {
        const char *msg = err ? err : "out of memory";
        LC_ERROR("pg", "invalid database conninfo: %.*s", trimmed_len(msg), msg);
        PQfreemem(err);
        return LC_ERR_CONFIG;
    }
    PQconninfoFree(parsed);
    return LC_OK;
}

lc_status_t
lc_pg_pool_create_opts(uv_loop_t *loop, const char *conninfo, int size,
                       const lc_pg_pool_opts_t *opts, lc_pg_pool_t **out)
{
    *out = NULL;
    if (loop == NULL || conninfo == NULL || size < 1 || size > POOL_SIZE_MAX)
        return LC_ERR_INVALID;
    LC_TRY(check_conninfo(conninfo));

    lc_pg_pool_t *pool = LC_NEW(lc_pg_pool_t);
    pool->loop = loop;
    pool->conninfo = lc_strdup(conninfo);
    opts_resolve(&pool->opts, opts);
    pool->size = size;
    pool->conns = lc_calloc((size_t) size, sizeof(pg_conn_t));
    uv_timer_init(loop, &pool->deadline_timer);
    pool->deadline_timer.data = pool;
    pool->open_handles = 1;
    for (int i = 0; i < size; i++) {
        pg_conn_t *conn = &pool->conns[i];
        conn->pool = pool;
        conn->index = i;
        conn->backoff_ms = pool->opts.reconnect_min_ms;
        uv_timer_init(loop, &conn->timer);
        conn->timer.data = conn;
        pool->open_handles++;
    }
    for (int i = 0; i < size; i++)
        conn_connect_start(&pool->conns[i]);
    *out = pool;
    return LC_OK;
}

lc_status_t
lc_pg_pool_create(uv_loop_t *loop, const char *conninfo, int size, lc_pg_pool_t **out)
{
    return lc_pg_pool_create_opts(loop, conninfo, size, NULL, out);
}

lc_status_t
lc_pg_query(lc_pg_pool_t *pool, const char *sql, int nparams, const char *const *params,
            lc_pg_result_cb cb, void *arg)
{
    if (sql == NULL || cb == NULL || nparams < 0 || nparams > NPARAMS_MAX ||
        (nparams > 0 && params == NULL))
        return LC_ERR_INVALID;
    if (pool->closing)
        return LC_ERR_UNAVAILABLE;
    if (pool->queued >= pool->opts.max_queued) {
        LC_LOG_RL(LC_LOG_WARN, "pg", 1, "query queue full (%zu waiting)", pool->queued);
        return LC_ERR_FULL;
    }
    pg_query_t *q = query_new(sql, nparams, params, cb, arg);
    q->deadline_ms = uv_now(pool->loop) + (uint64_t) pool->opts.query_timeout_ms;
    queue_push_tail(pool, q);
    dispatch(pool);
    /* Deadlines only grow, so a running timer already fires early enough. */
    if (!uv_is_active((uv_handle_t *) &pool->deadline_timer))
        arm_deadline(pool);
    return LC_OK;
}

bool
lc_pg_pool_ready(const lc_pg_pool_t *pool)
{
    return lc_pg_pool_connected(pool) > 0;
}

int
lc_pg_pool_connected(const lc_pg_pool_t *pool)
{
    int up = 0;
    for (int i = 0; i < pool->size; i++)
        if (pool->conns[i].state == CONN_IDLE || pool->conns[i].state == CONN_BUSY)
            up++;
    return up;
}

size_t
lc_pg_pool_queued(const lc_pg_pool_t *pool)
{
    return pool->queued;
}

void
lc_pg_pool_close(lc_pg_pool_t *pool, lc_pg_done_cb done_cb, void *arg)
{
    if (pool->closing)
        return;
    pool->closing = true;
    pool->done_cb = done_cb;
    pool->done_arg = arg;

    qlist_t cancelled = {NULL, &cancelled.head};
    for (int i = 0; i < pool->size; i++) {
        pg_conn_t *conn = &pool->conns[i];
        if (conn->query)
            qlist_append(&cancelled, conn->query);
        conn->query = NULL;
        conn_drop(conn);
        conn->state = CONN_CLOSED;
        uv_close((uv_handle_t *) &conn->timer, on_conn_timer_closed);
    }
    while (pool->head)
        qlist_append(&cancelled, queue_pop(pool));
    uv_close((uv_handle_t *) &pool->deadline_timer, on_deadline_timer_closed);
    qlist_finish(&cancelled, LC_ERR_CANCELLED);
}

void
lc_pg_pool_destroy(lc_pg_pool_t *pool)
{
    if (pool == NULL)
        return;
    if (pool->closed) {
        pool_free(pool);
        return;
    }
    pool->destroy_requested = true;
    if (!pool->closing)
        lc_pg_pool_close(pool, NULL, NULL);
}
