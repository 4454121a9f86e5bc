#include "lc_nats.h"

#include <inttypes.h>
#include <jansson.h>
#include <nats/adapters/libuv.h> /* defines non-static functions: include in this file only */
#include <nats/nats.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lc_alloc.h"
#include "lc_log.h"

#define PENDING_BUCKETS 1024 /* power of two */
#define DESTROY_WAIT_MS 2000
#define INBOX_MAX 96
#define SUBJECT_MAX 256

struct lc_nats_msg {
    natsMsg *m;
};

typedef enum { ITEM_MSG, ITEM_COMPLETE, ITEM_STATE } item_type_t;

typedef struct item {
    item_type_t type;
    lc_nats_sub_t *sub;
    natsMsg *msg;
    bool connected;
    struct item *next;
} item_t;

struct lc_nats_sub {
    lc_nats_t *nc;
    natsSubscription *ns;
    char *subject;
    char *queue_group;
    lc_nats_msg_cb cb;
    void *arg;
    bool active;
    lc_nats_sub_t *next;
};

typedef struct pending {
    lc_nats_t *nc;
    uint64_t id;
    lc_nats_reply_cb cb;
    void *arg;
    uv_timer_t timer;
    struct pending *next;
} pending_t;

struct lc_nats {
    uv_loop_t *loop;
    natsOptions *opts;
    natsConnection *conn;
    char *url;
    char *name;
    int64_t reconnect_wait_ms;
    size_t max_pending;
    size_t max_queued;
    void (*state_cb)(void *arg, bool connected);
    void *state_arg;

    /* Shared with nats.c threads, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    item_t *head, *tail;
    size_t queued;
    int live_nats_subs;
    bool conn_closed; /* nats.c's closed callback ran: no connection callback follows */
    bool async_closed;
    _Atomic bool connected;
    _Atomic uint64_t dropped;

    /* Loop thread only. */
    uv_async_t async;
    uv_timer_t connect_timer;
    int open_handles;
    lc_nats_sub_t *subs;
    char inbox[INBOX_MAX];
    pending_t *pending[PENDING_BUCKETS];
    size_t npending;
    uint64_t next_id;
    bool closing;
    lc_nats_done_cb done_cb;
    void *done_arg;
};

/* ---- messages ---- */

const char *
lc_nats_msg_subject(const lc_nats_msg_t *msg)
{
    return natsMsg_GetSubject(msg->m);
}

const char *
lc_nats_msg_reply(const lc_nats_msg_t *msg)
{
    return natsMsg_GetReply(msg->m);
}

const void *
lc_nats_msg_data(const lc_nats_msg_t *msg)
{
    return natsMsg_GetData(msg->m);
}

size_t
lc_nats_msg_len(const lc_nats_msg_t *msg)
{
    int n = natsMsg_GetDataLength(msg->m);
    return n > 0 ? (size_t) n : 0;
}

const char *
lc_nats_msg_header(const lc_nats_msg_t *msg, const char *key)
{
    const char *value = NULL;
    if (natsMsgHeader_Get(msg->m, key, &value) != NATS_OK)
        return NULL;
    return value;
}

static lc_status_t
from_nats(natsStatus s, const char *what)
{
    if (s == NATS_OK)
        return LC_OK;
    LC_WARN("nats", "%s: %s", what, natsStatus_GetText(s));
    switch (s) {
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_NOT_YET_CONNECTED:
        return LC_ERR_UNAVAILABLE;
    case NATS_TIMEOUT:
        return LC_ERR_TIMEOUT;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
        return LC_ERR_INVALID;
    case NATS_MAX_PAYLOAD:
        return LC_ERR_TOO_LARGE;
    default:
        return LC_ERR_IO;
    }
}

/* ---- the hand-over queue from nats.c threads to the loop ---- */

/* Called with nc->lock held. */
static void
enqueue_locked(lc_nats_t *nc, item_t *it)
{
    it->next = NULL;
    if (nc->tail)
        nc->tail->next = it;
    else
        nc->head = it;
    nc->tail = it;
    nc->queued++;
    uv_async_send(&nc->async);
}

static void
on_nats_msg(natsConnection *conn, natsSubscription *ns, natsMsg *m, void *closure)
{
    (void) conn;
    (void) ns;
    lc_nats_sub_t *sub = closure;
    lc_nats_t *nc = sub->nc;
    pthread_mutex_lock(&nc->lock);
    if (nc->async_closed || nc->queued >= nc->max_queued) {
        pthread_mutex_unlock(&nc->lock);
        natsMsg_Destroy(m);
        atomic_fetch_add(&nc->dropped, 1);
        LC_LOG_RL(LC_LOG_WARN, "nats", 1, "dropped a message for %s: loop queue full or closed",
                  sub->subject);
        return;
    }
    item_t *it = LC_NEW(item_t);
    it->type = ITEM_MSG;
    it->sub = sub;
    it->msg = m;
    enqueue_locked(nc, it);
    pthread_mutex_unlock(&nc->lock);
}

/* nats.c guarantees this is the last callback for the subscription. */
static void
on_sub_complete(void *closure)
{
    lc_nats_sub_t *sub = closure;
    lc_nats_t *nc = sub->nc;
    pthread_mutex_lock(&nc->lock);
    nc->live_nats_subs--;
    pthread_cond_broadcast(&nc->cond);
    if (!nc->async_closed) {
        item_t *it = LC_NEW(item_t);
        it->type = ITEM_COMPLETE;
        it->sub = sub;
        enqueue_locked(nc, it);
    }
    pthread_mutex_unlock(&nc->lock);
}

static void
push_state(lc_nats_t *nc, bool connected)
{
    atomic_store(&nc->connected, connected);
    pthread_mutex_lock(&nc->lock);
    if (!nc->async_closed) {
        item_t *it = LC_NEW(item_t);
        it->type = ITEM_STATE;
        it->connected = connected;
        enqueue_locked(nc, it);
    }
    pthread_mutex_unlock(&nc->lock);
}

static void
on_disconnected(natsConnection *conn, void *closure)
{
    lc_nats_t *nc = closure;
    if (!natsConnection_IsClosed(conn))
        LC_WARN("nats", "disconnected from %s; reconnecting", nc->url);
    push_state(nc, false);
}

static void
on_reconnected(natsConnection *conn, void *closure)
{
    (void) conn;
    LC_INFO("nats", "reconnected");
    push_state(closure, true);
}

/* nats.c guarantees this is the last connection callback. */
static void
on_conn_closed(natsConnection *conn, void *closure)
{
    (void) conn;
    lc_nats_t *nc = closure;
    pthread_mutex_lock(&nc->lock);
    nc->conn_closed = true;
    pthread_cond_broadcast(&nc->cond);
    pthread_mutex_unlock(&nc->lock);
}

static void
sub_unlink_free(lc_nats_t *nc, lc_nats_sub_t *sub)
{
    for (lc_nats_sub_t **pp = &nc->subs; *pp; pp = &(*pp)->next) {
        if (*pp == sub) {
            *pp = sub->next;
            break;
        }
    }
    natsSubscription_Destroy(sub->ns);
    free(sub->subject);
    free(sub->queue_group);
    free(sub);
}

static void
on_async(uv_async_t *handle)
{
    lc_nats_t *nc = handle->data;
    pthread_mutex_lock(&nc->lock);
    item_t *it = nc->head;
    nc->head = nc->tail = NULL;
    nc->queued = 0;
    pthread_mutex_unlock(&nc->lock);

    while (it) {
        item_t *next = it->next;
        switch (it->type) {
        case ITEM_MSG:
            if (it->sub->active && !nc->closing) {
                lc_nats_msg_t msg = {.m = it->msg};
                it->sub->cb(nc, &msg, it->sub->arg);
            }
            natsMsg_Destroy(it->msg);
            break;
        case ITEM_COMPLETE:
            sub_unlink_free(nc, it->sub);
            break;
        case ITEM_STATE:
            if (nc->state_cb && !nc->closing)
                nc->state_cb(nc->state_arg, it->connected);
            break;
        }
        free(it);
        it = next;
    }
}

/* ---- connecting ---- */

static lc_status_t
nats_subscribe_now(lc_nats_t *nc, lc_nats_sub_t *sub)
{
    natsStatus s;
    if (sub->queue_group)
        s = natsConnection_QueueSubscribe(&sub->ns, nc->conn, sub->subject, sub->queue_group,
                                          on_nats_msg, sub);
    else
        s = natsConnection_Subscribe(&sub->ns, nc->conn, sub->subject, on_nats_msg, sub);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub->ns, on_sub_complete, sub);
    if (s != NATS_OK) {
        natsSubscription_Destroy(sub->ns);
        sub->ns = NULL;
        return from_nats(s, "subscribe");
    }
    /* Bounded per subscription too: nats.c drops (and reports slow consumer) past this. */
    natsSubscription_SetPendingLimits(sub->ns, 65536, 64 * 1024 * 1024);
    pthread_mutex_lock(&nc->lock);
    nc->live_nats_subs++;
    pthread_mutex_unlock(&nc->lock);
    return LC_OK;
}

static void on_inbox_msg(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg);

static void
try_connect(uv_timer_t *timer)
{
    lc_nats_t *nc = timer->data;
    natsStatus s = natsConnection_Connect(&nc->conn, nc->opts);
    if (s != NATS_OK) {
        nc->conn = NULL;
        LC_LOG_RL(LC_LOG_WARN, "nats", 1, "connect to %s failed: %s; retrying every %" PRId64 " ms",
                  nc->url, natsStatus_GetText(s), nc->reconnect_wait_ms);
        uv_timer_start(&nc->connect_timer, try_connect, (uint64_t) nc->reconnect_wait_ms, 0);
        return;
    }
    LC_INFO("nats", "connected to %s", nc->url);
    atomic_store(&nc->connected, true);
    for (lc_nats_sub_t *sub = nc->subs; sub; sub = sub->next)
        if (sub->active && sub->ns == NULL)
            nats_subscribe_now(nc, sub);
    if (nc->state_cb)
        nc->state_cb(nc->state_arg, true);
}

void
lc_nats_loop_init(uv_loop_t *loop)
{
    natsLibuv_Init();
    natsLibuv_SetThreadLocalLoop(loop);
}

static lc_status_t
make_options(lc_nats_t *nc, int64_t connect_timeout_ms)
{
    natsStatus s = natsOptions_Create(&nc->opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(nc->opts, nc->url);
    if (s == NATS_OK)
        s = natsOptions_SetName(nc->opts, nc->name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(nc->opts, connect_timeout_ms);
    if (s == NATS_OK) /* PITFALLS: without it every write waits ~1 ms for the flusher */
        s = natsOptions_SetSendAsap(nc->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(nc->opts, nc->loop, natsLibuv_Attach, natsLibuv_Read,
                                     natsLibuv_Write, natsLibuv_Detach);
    if (s == NATS_OK) /* one delivery pool, not a thread per subscription */
        s = natsOptions_UseGlobalMessageDelivery(nc->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(nc->opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(nc->opts, nc->reconnect_wait_ms);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(nc->opts, on_disconnected, nc);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(nc->opts, on_reconnected, nc);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(nc->opts, on_conn_closed, nc);
    return from_nats(s, "options");
}

lc_status_t
lc_nats_connect(uv_loop_t *loop, const lc_nats_opts_t *opts, lc_nats_t **out)
{
    lc_nats_t *nc = LC_NEW(lc_nats_t);
    nc->loop = loop;
    nc->url = lc_strdup(opts->url ? opts->url : "nats://127.0.0.1:4222");
    nc->name = lc_strdup(opts->name ? opts->name : "voxi");
    nc->reconnect_wait_ms = opts->reconnect_wait_ms > 0 ? opts->reconnect_wait_ms : 250;
    nc->max_pending = opts->max_pending_requests ? opts->max_pending_requests : 65536;
    nc->max_queued = opts->max_queued_msgs ? opts->max_queued_msgs : 65536;
    nc->state_cb = opts->state_cb;
    nc->state_arg = opts->state_arg;
    pthread_mutex_init(&nc->lock, NULL);
    pthread_cond_init(&nc->cond, NULL);

    natsInbox *inbox = NULL;
    if (natsInbox_Create(&inbox) != NATS_OK)
        abort(); /* only fails on OOM */
    snprintf(nc->inbox, sizeof(nc->inbox), "%s", (const char *) inbox);
    natsInbox_Destroy(inbox);

    lc_status_t st =
        make_options(nc, opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 2000);
    if (st != LC_OK) {
        natsOptions_Destroy(nc->opts);
        pthread_mutex_destroy(&nc->lock);
        pthread_cond_destroy(&nc->cond);
        free(nc->url);
        free(nc->name);
        free(nc);
        return st;
    }

    uv_async_init(loop, &nc->async, on_async);
    nc->async.data = nc;
    uv_timer_init(loop, &nc->connect_timer);
    nc->connect_timer.data = nc;
    nc->open_handles = 2;

    char wildcard[INBOX_MAX + 4];
    snprintf(wildcard, sizeof(wildcard), "%s.*", nc->inbox);
    lc_nats_subscribe(nc, wildcard, NULL, on_inbox_msg, NULL, NULL);

    /* The first attempt runs on the next loop turn, so a caller can finish wiring first. */
    uv_timer_start(&nc->connect_timer, try_connect, 0, 0);
    *out = nc;
    return LC_OK;
}

bool
lc_nats_connected(const lc_nats_t *nc)
{
    return nc != NULL && atomic_load(&nc->connected) && !nc->closing;
}

/* ---- subscriptions and publishing ---- */

lc_status_t
lc_nats_subscribe(lc_nats_t *nc, const char *subject, const char *queue_group, lc_nats_msg_cb cb,
                  void *arg, lc_nats_sub_t **out)
{
    if (nc->closing)
        return LC_ERR_UNAVAILABLE;
    if (subject == NULL || subject[0] == '\0' || strlen(subject) > SUBJECT_MAX)
        return LC_ERR_INVALID;
    lc_nats_sub_t *sub = LC_NEW(lc_nats_sub_t);
    sub->nc = nc;
    sub->subject = lc_strdup(subject);
    sub->queue_group = queue_group ? lc_strdup(queue_group) : NULL;
    sub->cb = cb;
    sub->arg = arg;
    sub->active = true;
    sub->next = nc->subs;
    nc->subs = sub;
    if (nc->conn != NULL) {
        lc_status_t st = nats_subscribe_now(nc, sub);
        if (st != LC_OK) {
            sub_unlink_free(nc, sub);
            return st;
        }
    }
    if (out)
        *out = sub;
    return LC_OK;
}

void
lc_nats_unsubscribe(lc_nats_t *nc, lc_nats_sub_t *sub)
{
    if (sub == NULL || !sub->active)
        return;
    sub->active = false;
    if (sub->ns == NULL)
        sub_unlink_free(nc, sub);
    else
        natsSubscription_Unsubscribe(sub->ns); /* freed when nats.c says it is complete */
}

lc_status_t
lc_nats_publish(lc_nats_t *nc, const char *subject, const void *data, size_t len)
{
    if (!lc_nats_connected(nc))
        return LC_ERR_UNAVAILABLE;
    return from_nats(natsConnection_Publish(nc->conn, subject, data, (int) len), "publish");
}

lc_status_t
lc_nats_respond(lc_nats_t *nc, const char *reply_subject, const void *data, size_t len)
{
    if (reply_subject == NULL || reply_subject[0] == '\0')
        return LC_ERR_INVALID;
    return lc_nats_publish(nc, reply_subject, data, len);
}

/* ---- requests ---- */

static pending_t **
pending_slot(lc_nats_t *nc, uint64_t id)
{
    pending_t **pp = &nc->pending[id & (PENDING_BUCKETS - 1)];
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    return pp;
}

static void
on_pending_timer_closed(uv_handle_t *h)
{
    pending_t *p = h->data;
    lc_nats_t *nc = p->nc;
    free(p);
    nc->open_handles--;
    if (nc->closing && nc->open_handles == 0 && nc->done_cb)
        nc->done_cb(nc->done_arg);
}

/* Removes the request from the table; returns it, or NULL when unknown. */
static pending_t *
pending_take(lc_nats_t *nc, uint64_t id)
{
    pending_t **pp = pending_slot(nc, id);
    pending_t *p = *pp;
    if (p == NULL)
        return NULL;
    *pp = p->next;
    nc->npending--;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *) &p->timer, on_pending_timer_closed);
    return p;
}

static void
on_request_timeout(uv_timer_t *timer)
{
    pending_t *p = timer->data;
    lc_nats_reply_cb cb = p->cb;
    void *arg = p->arg;
    pending_take(p->nc, p->id);
    cb(LC_ERR_TIMEOUT, NULL, arg);
}

static void
on_inbox_msg(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) arg;
    const char *subject = lc_nats_msg_subject(msg);
    const char *dot = strrchr(subject, '.');
    if (dot == NULL)
        return;
    char *end;
    uint64_t id = strtoull(dot + 1, &end, 10);
    if (*end != '\0')
        return;
    pending_t *p = pending_take(nc, id);
    if (p == NULL)
        return; /* late reply after timeout or cancel */
    if (natsMsg_IsNoResponders(msg->m))
        p->cb(LC_ERR_NO_RESPONDERS, NULL, p->arg);
    else
        p->cb(LC_OK, msg, p->arg);
}

/* Publishes `data` with a reply subject in our inbox; `msg_id` adds a Nats-Msg-Id header. */
static lc_status_t
request_internal(lc_nats_t *nc, const char *subject, const char *msg_id, const void *data,
                 size_t len, int64_t timeout_ms, lc_nats_reply_cb cb, void *arg, uint64_t *id_out)
{
    if (!lc_nats_connected(nc))
        return LC_ERR_UNAVAILABLE;
    if (nc->npending >= nc->max_pending)
        return LC_ERR_FULL;

    uint64_t id = ++nc->next_id;
    char reply[INBOX_MAX + 24];
    snprintf(reply, sizeof(reply), "%s.%" PRIu64, nc->inbox, id);

    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, reply, data, (int) len);
    if (s == NATS_OK && msg_id != NULL)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(nc->conn, m);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        return from_nats(s, "request publish");

    pending_t *p = LC_NEW(pending_t);
    p->nc = nc;
    p->id = id;
    p->cb = cb;
    p->arg = arg;
    uv_timer_init(nc->loop, &p->timer);
    p->timer.data = p;
    nc->open_handles++;
    uv_timer_start(&p->timer, on_request_timeout, (uint64_t) (timeout_ms > 0 ? timeout_ms : 1), 0);
    pending_t **slot = &nc->pending[id & (PENDING_BUCKETS - 1)];
    p->next = *slot;
    *slot = p;
    nc->npending++;
    if (id_out)
        *id_out = id;
    return LC_OK;
}

lc_status_t
lc_nats_request(lc_nats_t *nc, const char *subject, const void *data, size_t len,
                int64_t timeout_ms, lc_nats_reply_cb cb, void *arg, uint64_t *id_out)
{
    return request_internal(nc, subject, NULL, data, len, timeout_ms, cb, arg, id_out);
}

void
lc_nats_request_cancel(lc_nats_t *nc, uint64_t id)
{
    pending_take(nc, id);
}

size_t
lc_nats_pending_requests(const lc_nats_t *nc)
{
    return nc->npending;
}

/* ---- JetStream ---- */

typedef struct {
    lc_nats_t *nc;
    lc_nats_js_ack_cb cb;
    void *arg;
    char *retry_subject; /* stream ensure: the UPDATE subject, used once */
    char *body;
    int64_t timeout_ms;
} js_ctx_t;

static void
js_ctx_free(js_ctx_t *ctx)
{
    free(ctx->retry_subject);
    free(ctx->body);
    free(ctx);
}

/* Parses a JetStream API reply; returns its err_code (0 when it is a success). */
static int
js_parse(const lc_nats_msg_t *reply, uint64_t *seq, bool *duplicate, lc_status_t *st)
{
    json_error_t jerr;
    json_t *root = json_loadb(lc_nats_msg_data(reply), lc_nats_msg_len(reply), 0, &jerr);
    int err_code = 0;
    *st = LC_OK;
    if (root == NULL || !json_is_object(root)) {
        *st = LC_ERR_PROTOCOL;
        json_decref(root);
        return -1;
    }
    json_t *error = json_object_get(root, "error");
    if (error != NULL) {
        err_code = (int) json_integer_value(json_object_get(error, "err_code"));
        LC_WARN("nats", "jetstream error %d: %s", err_code,
                json_string_value(json_object_get(error, "description"))
                    ? json_string_value(json_object_get(error, "description"))
                    : "?");
        *st = LC_ERR_PROTOCOL;
        if (err_code == 0)
            err_code = -1;
    } else {
        *seq = (uint64_t) json_integer_value(json_object_get(root, "seq"));
        *duplicate = json_is_true(json_object_get(root, "duplicate"));
    }
    json_decref(root);
    return err_code;
}

static void
on_js_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    js_ctx_t *ctx = arg;
    uint64_t seq = 0;
    bool duplicate = false;
    if (status == LC_OK) {
        int err_code = js_parse(reply, &seq, &duplicate, &status);
        /* 10058: stream name already in use with a different configuration -> update. */
        if (err_code == 10058 && ctx->retry_subject != NULL) {
            char *subject = ctx->retry_subject;
            ctx->retry_subject = NULL;
            status = request_internal(ctx->nc, subject, NULL, ctx->body, strlen(ctx->body),
                                      ctx->timeout_ms, on_js_reply, ctx, NULL);
            free(subject);
            if (status == LC_OK)
                return;
        }
    }
    ctx->cb(status, seq, duplicate, ctx->arg);
    js_ctx_free(ctx);
}

lc_status_t
lc_nats_js_publish(lc_nats_t *nc, const char *subject, const char *msg_id, const void *data,
                   size_t len, int64_t timeout_ms, lc_nats_js_ack_cb cb, void *arg)
{
    if (msg_id == NULL || msg_id[0] == '\0')
        return LC_ERR_INVALID;
    js_ctx_t *ctx = LC_NEW(js_ctx_t);
    ctx->nc = nc;
    ctx->cb = cb;
    ctx->arg = arg;
    lc_status_t st =
        request_internal(nc, subject, msg_id, data, len, timeout_ms, on_js_reply, ctx, NULL);
    if (st != LC_OK)
        js_ctx_free(ctx);
    return st;
}

lc_status_t
lc_nats_js_ensure_stream(lc_nats_t *nc, const char *stream, const char *subjects, int64_t max_age_s,
                         int64_t duplicate_window_s, int64_t timeout_ms, lc_nats_js_ack_cb cb,
                         void *arg)
{
    json_t *subj = json_array();
    char *list = lc_strdup(subjects);
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        json_array_append_new(subj, json_string(tok));
    free(list);
    json_t *cfg = json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:i}", "name", stream, "subjects",
                            subj, "storage", "file", "retention", "limits", "discard", "old",
                            "max_age", (json_int_t) (max_age_s * 1000000000), "duplicate_window",
                            (json_int_t) (duplicate_window_s * 1000000000), "num_replicas", 1);
    js_ctx_t *ctx = LC_NEW(js_ctx_t);
    ctx->nc = nc;
    ctx->cb = cb;
    ctx->arg = arg;
    ctx->timeout_ms = timeout_ms;
    ctx->body = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);

    char subject[SUBJECT_MAX];
    snprintf(subject, sizeof(subject), "$JS.API.STREAM.UPDATE.%s", stream);
    ctx->retry_subject = lc_strdup(subject);
    snprintf(subject, sizeof(subject), "$JS.API.STREAM.CREATE.%s", stream);
    lc_status_t st = request_internal(nc, subject, NULL, ctx->body, strlen(ctx->body), timeout_ms,
                                      on_js_reply, ctx, NULL);
    if (st != LC_OK)
        js_ctx_free(ctx);
    return st;
}

/* ---- shutdown ---- */

static void
on_own_handle_closed(uv_handle_t *h)
{
    lc_nats_t *nc = h->data;
    nc->open_handles--;
    if (nc->open_handles == 0 && nc->done_cb)
        nc->done_cb(nc->done_arg);
}

void
lc_nats_close(lc_nats_t *nc, lc_nats_done_cb done_cb, void *arg)
{
    if (nc->closing)
        return;
    nc->closing = true;
    nc->done_cb = done_cb;
    nc->done_arg = arg;
    uv_timer_stop(&nc->connect_timer);

    for (lc_nats_sub_t *sub = nc->subs, *next; sub; sub = next) {
        next = sub->next;
        lc_nats_unsubscribe(nc, sub);
    }
    for (size_t b = 0; b < PENDING_BUCKETS; b++) {
        while (nc->pending[b]) {
            pending_t *p = nc->pending[b];
            lc_nats_reply_cb cb = p->cb;
            void *cb_arg = p->arg;
            pending_take(nc, p->id);
            cb(LC_ERR_CANCELLED, NULL, cb_arg);
        }
    }
    if (nc->conn)
        natsConnection_Close(nc->conn);
    atomic_store(&nc->connected, false);

    pthread_mutex_lock(&nc->lock);
    nc->async_closed = true;
    pthread_mutex_unlock(&nc->lock);
    uv_close((uv_handle_t *) &nc->async, on_own_handle_closed);
    uv_close((uv_handle_t *) &nc->connect_timer, on_own_handle_closed);
}

void
lc_nats_destroy(lc_nats_t *nc)
{
    if (nc == NULL)
        return;
    /* nats.c's threads may still hold subscriptions and owe the connection callbacks:
     * wait for their last word (closed callback, complete callbacks), bounded. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DESTROY_WAIT_MS / 1000;
    pthread_mutex_lock(&nc->lock);
    while (nc->live_nats_subs > 0 || (nc->conn != NULL && !nc->conn_closed))
        if (pthread_cond_timedwait(&nc->cond, &nc->lock, &until) != 0)
            break;
    if (nc->live_nats_subs > 0 || (nc->conn != NULL && !nc->conn_closed))
        LC_WARN("nats", "nats.c still holds %d subscriptions or the connection at destroy",
                nc->live_nats_subs);
    item_t *it = nc->head;
    nc->head = nc->tail = NULL;
    pthread_mutex_unlock(&nc->lock);

    while (it) {
        item_t *next = it->next;
        if (it->type == ITEM_MSG)
            natsMsg_Destroy(it->msg);
        free(it);
        it = next;
    }
    while (nc->subs)
        sub_unlink_free(nc, nc->subs);
    natsConnection_Destroy(nc->conn);
    natsOptions_Destroy(nc->opts);
    pthread_mutex_destroy(&nc->lock);
    pthread_cond_destroy(&nc->cond);
    free(nc->url);
    free(nc->name);
    free(nc);
}

void
lc_nats_library_shutdown(void)
{
    nats_CloseAndWait(2000);
}
