#include "wh_consumer.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "wh_delivery.h"
#include "wh_events.h"
#include "wh_model.h"

#define SETUP_RETRY_MS 1000
#define SETUP_TIMEOUT_MS 5000
#define INSERTS_MAX 4             /* insert statements in flight */
#define NAK_DELAY_NS 1000000000LL /* redelivery delay after a failed insert */

typedef struct {
    wh_consumer_t *c;
    wh_buf_t events; /* JSON text: [{"id","org","type","at","p":<the event>}, ...] */
    size_t nevents;
    char **replies; /* ack subjects, one per message (also for duplicates in the batch) */
    size_t nreplies, cap;
    bool claim;
    int64_t started_mono_ms;
} batch_t;

struct wh_consumer {
    wh_service_t *ws;
    lc_nats_sub_t *sub;
    uv_timer_t setup_timer;
    uv_timer_t batch_timer;
    bool batch_armed;
    bool ready;
    bool setting_up;
    bool stopping;
    batch_t *open; /* collecting */
    size_t inserts;
    int open_handles;
    void (*done_cb)(void *arg);
    void *done_arg;
    lc_metric_t *m_stored, *m_invalid, *m_failed, *m_batches, *m_store_seconds;
};

static void setup_step(wh_consumer_t *c);
static void on_batch_timer(uv_timer_t *t);

/* ---- storing events ---- */

/* migrations/0004_webhooks.sql */
static const char INSERT_SQL[] =
    "SELECT * FROM webhook_store_events($1::json, $2::boolean, $3::bigint, $4)";

static void
batch_free(batch_t *b)
{
    if (b == NULL)
        return;
    wh_buf_free(&b->events);
    for (size_t i = 0; i < b->nreplies; i++)
        free(b->replies[i]);
    free(b->replies);
    free(b);
}

static void
ack_all(wh_consumer_t *c, batch_t *b, const char *what)
{
    for (size_t i = 0; i < b->nreplies; i++) {
        lc_status_t st = lc_nats_publish(c->ws->nats, b->replies[i], what, strlen(what));
        if (st != LC_OK) /* the event comes again after ack_wait; the insert dedupes it */
            LC_LOG_RL(LC_LOG_WARN, "consumer", 1, "ack not sent: %s", lc_status_name(st));
    }
}

static void
on_inserted(lc_status_t status, PGresult *res, void *arg)
{
    batch_t *b = arg;
    wh_consumer_t *c = b->c;
    c->inserts--;
    if (status != LC_OK) {
        lc_metric_add(c->m_failed, (double) b->nevents);
        LC_LOG_RL(LC_LOG_WARN, "consumer", 1,
                  "storing %zu events failed (%s); they will be redelivered", b->nevents,
                  lc_status_name(status));
        char nak[64];
        snprintf(nak, sizeof(nak), "-NAK {\"delay\":%lld}", (long long) NAK_DELAY_NS);
        ack_all(c, b, nak);
        batch_free(b);
        return;
    }
    /* Stored (committed): now, and only now, JetStream may forget them. */
    ack_all(c, b, "+ACK");
    lc_metric_observe(c->m_store_seconds,
                      (double) (lc_time_mono_ms() - b->started_mono_ms) / 1000.0);
    lc_metric_add(c->m_stored, (double) b->nevents);
    lc_metric_inc(c->m_batches);
    if (b->claim && PQntuples(res) > 0)
        wh_delivery_add_jobs(c->ws->delivery, res, 0);
    else if (!b->claim)
        wh_delivery_wake(c->ws->delivery, 0);
    batch_free(b);
    if (c->open && !c->batch_armed) { /* events waited for an insert slot */
        c->batch_armed = true;
        uv_timer_start(&c->batch_timer, on_batch_timer, 0, 0);
    }
}

static void
flush_batch(wh_consumer_t *c)
{
    batch_t *b = c->open;
    if (b == NULL)
        return;
    c->open = NULL;
    if (b->nevents == 0) {
        /* nothing to store (only malformed events): the acks are already sent */
        batch_free(b);
        return;
    }
    wh_buf_append(&b->events, "]", 1);
    b->claim = wh_delivery_wants_more(c->ws->delivery);
    b->started_mono_ms = lc_time_mono_ms();
    const char *text = b->events.data;
    char lock[24];
    snprintf(lock, sizeof(lock), "%" PRId64, (int64_t) WH_LOCK_MS(c->ws->cfg));
    const char *params[] = {text, b->claim ? "true" : "false", lock, c->ws->instance_id};
    c->inserts++;
    lc_status_t st = lc_pg_query(c->ws->pg, INSERT_SQL, 4, params, on_inserted, b);
    if (st != LC_OK)
        on_inserted(st, NULL, b);
}

static void
on_batch_timer(uv_timer_t *t)
{
    wh_consumer_t *c = t->data;
    c->batch_armed = false;
    if (c->inserts >= INSERTS_MAX) {
        /* the next insert completion flushes */
        return;
    }
    flush_batch(c);
}

static void
on_event(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    wh_consumer_t *c = arg;
    const char *reply = lc_nats_msg_reply(msg);
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0 || strlen(reply) > 512)
        return; /* not a JetStream delivery */
    wh_event_t ev;
    char why[128];
    if (wh_event_parse(lc_nats_msg_data(msg), lc_nats_msg_len(msg), &ev, why, sizeof(why)) !=
        LC_OK) {
        lc_metric_inc(c->m_invalid);
        LC_LOG_RL(LC_LOG_WARN, "consumer", 1, "dropping a malformed event on %s: %s",
                  lc_nats_msg_subject(msg), why);
        lc_nats_publish(nc, reply, "+TERM", 5);
        return;
    }
    if (c->open == NULL) {
        c->open = LC_NEW(batch_t);
        c->open->c = c;
    }
    batch_t *b = c->open;
    if (b->nreplies == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->replies = lc_realloc(b->replies, b->cap * sizeof(char *));
    }
    wh_buf_t *t = &b->events;
    wh_buf_str(t, b->nevents++ ? ",{\"id\":" : "[{\"id\":");
    wh_buf_json_string(t, ev.id, strlen(ev.id));
    wh_buf_str(t, ",\"org\":");
    wh_buf_json_string(t, ev.org_id, strlen(ev.org_id));
    wh_buf_str(t, ",\"type\":");
    wh_buf_json_string(t, ev.type, strlen(ev.type));
    wh_buf_str(t, ",\"at\":");
    wh_buf_json_string(t, ev.created_at, strlen(ev.created_at));
    wh_buf_str(t, ",\"p\":");
    /* What the endpoints receive: the five documented fields. An event that has exactly
     * those goes out as published (no re-encoding); one with more is cut down to them. */
    if (json_object_size(ev.root) == 5) {
        wh_buf_append(t, lc_nats_msg_data(msg), lc_nats_msg_len(msg));
    } else {
        json_t *payload =
            json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", ev.id, "type", ev.type, "created_at",
                      ev.created_at, "org_id", ev.org_id, "data", json_object_get(ev.root, "data"));
        char *text = json_dumps(payload, JSON_COMPACT);
        wh_buf_str(t, text);
        free(text);
        json_decref(payload);
    }
    wh_buf_append(t, "}", 1);
    b->replies[b->nreplies++] = lc_strdup(reply);
    json_decref(ev.root);
    if (b->nreplies >= (size_t) c->ws->cfg->consumer_batch && c->inserts < INSERTS_MAX) {
        flush_batch(c);
        return;
    }
    if (!c->batch_armed) {
        c->batch_armed = true;
        uv_timer_start(&c->batch_timer, on_batch_timer, 0, 0);
    }
}

/* ---- set-up: stream, then consumer ---- */

static void
on_setup_timer(uv_timer_t *t)
{
    setup_step(t->data);
}

static void
retry_setup(wh_consumer_t *c)
{
    c->setting_up = false;
    if (!c->stopping)
        uv_timer_start(&c->setup_timer, on_setup_timer, SETUP_RETRY_MS, 0);
}

static void
on_consumer_created(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    wh_consumer_t *c = arg;
    if (status != LC_OK) {
        LC_LOG_RL(LC_LOG_WARN, "consumer", 1, "creating the consumer: %s; retrying",
                  lc_status_name(status));
        retry_setup(c);
        return;
    }
    json_error_t jerr;
    json_t *root = json_loadb(lc_nats_msg_data(reply), lc_nats_msg_len(reply), 0, &jerr);
    json_t *error = json_object_get(root, "error");
    if (root == NULL || error != NULL) {
        LC_LOG_RL(LC_LOG_WARN, "consumer", 1, "creating the consumer: %s; retrying",
                  error ? json_string_value(json_object_get(error, "description"))
                        : "unreadable reply");
        json_decref(root);
        retry_setup(c);
        return;
    }
    json_decref(root);
    c->setting_up = false;
    if (!c->ready)
        LC_INFO("consumer", "durable consumer %s on %s ready (deliver group %s)", WH_DURABLE,
                WH_STREAM, WH_QUEUE_GROUP);
    c->ready = true;
}

static void
on_stream(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    wh_consumer_t *c = arg;
    (void) seq;
    (void) duplicate;
    if (status != LC_OK) {
        LC_LOG_RL(LC_LOG_WARN, "consumer", 1, "ensuring stream %s: %s; retrying", WH_STREAM,
                  lc_status_name(status));
        retry_setup(c);
        return;
    }
    const wh_config_t *cfg = c->ws->cfg;
    json_t *config =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:s, s:s}", "durable_name",
                  WH_DURABLE, "name", WH_DURABLE, "deliver_subject", WH_DELIVER_SUBJECT,
                  "deliver_group", WH_QUEUE_GROUP, "deliver_policy", "all", "ack_policy",
                  "explicit", "ack_wait", (json_int_t) cfg->ack_wait_ms * 1000000,
                  "max_ack_pending", (json_int_t) cfg->consumer_batch * 4, "max_deliver", -1,
                  "filter_subject", WH_STREAM_SUBJECTS, "replay_policy", "instant");
    json_t *body = json_pack("{s:s, s:o}", "stream_name", WH_STREAM, "config", config);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    lc_status_t st =
        lc_nats_request(c->ws->nats, "$JS.API.CONSUMER.CREATE." WH_STREAM "." WH_DURABLE, text,
                        strlen(text), SETUP_TIMEOUT_MS, on_consumer_created, c, NULL);
    free(text);
    if (st != LC_OK)
        retry_setup(c);
}

static void
setup_step(wh_consumer_t *c)
{
    if (c->stopping || c->setting_up)
        return;
    if (!lc_nats_connected(c->ws->nats)) {
        retry_setup(c);
        return;
    }
    c->setting_up = true;
    if (lc_nats_js_ensure_stream(c->ws->nats, WH_STREAM, WH_STREAM_SUBJECTS, WH_STREAM_MAX_AGE_S,
                                 WH_STREAM_DUPLICATE_WINDOW_S, SETUP_TIMEOUT_MS, on_stream,
                                 c) != LC_OK)
        retry_setup(c);
}

/* ---- life cycle ---- */

lc_status_t
wh_consumer_create(wh_service_t *ws, wh_consumer_t **out)
{
    wh_consumer_t *c = LC_NEW(wh_consumer_t);
    c->ws = ws;
    uv_timer_init(ws->loop, &c->setup_timer);
    c->setup_timer.data = c;
    uv_timer_init(ws->loop, &c->batch_timer);
    c->batch_timer.data = c;
    c->open_handles = 2;
    lc_metrics_t *m = ws->metrics;
    c->m_stored = lc_metrics_counter(m, "voxi_webhooks_events_total", "events consumed",
                                     "outcome=\"stored\"");
    c->m_invalid = lc_metrics_counter(m, "voxi_webhooks_events_total", "events consumed",
                                      "outcome=\"invalid\"");
    c->m_failed = lc_metrics_counter(m, "voxi_webhooks_events_total", "events consumed",
                                     "outcome=\"store_failed\"");
    c->m_batches =
        lc_metrics_counter(m, "voxi_webhooks_event_batches_total", "event batches stored", NULL);
    c->m_store_seconds = lc_metrics_histogram(m, "voxi_webhooks_event_store_seconds",
                                              "time to store a batch of events", NULL, NULL, 0);
    *out = c;
    return LC_OK;
}

lc_status_t
wh_consumer_start(wh_consumer_t *c)
{
    LC_TRY(
        lc_nats_subscribe(c->ws->nats, WH_DELIVER_SUBJECT, WH_QUEUE_GROUP, on_event, c, &c->sub));
    uv_timer_start(&c->setup_timer, on_setup_timer, 0, 0);
    return LC_OK;
}

bool
wh_consumer_ready(const wh_consumer_t *c)
{
    return c != NULL && c->ready;
}

void
wh_consumer_stop(wh_consumer_t *c)
{
    if (c == NULL || c->stopping)
        return;
    c->stopping = true;
    lc_nats_unsubscribe(c->ws->nats, c->sub);
    c->sub = NULL;
    uv_timer_stop(&c->setup_timer);
}

size_t
wh_consumer_inflight(const wh_consumer_t *c)
{
    if (c == NULL)
        return 0;
    return c->inserts + (c->open ? c->open->nreplies : 0);
}

static void
on_closed(uv_handle_t *h)
{
    wh_consumer_t *c = h->data;
    if (--c->open_handles == 0 && c->done_cb)
        c->done_cb(c->done_arg);
}

void
wh_consumer_close(wh_consumer_t *c, void (*done_cb)(void *arg), void *arg)
{
    c->done_cb = done_cb;
    c->done_arg = arg;
    c->stopping = true;
    uv_close((uv_handle_t *) &c->setup_timer, on_closed);
    uv_close((uv_handle_t *) &c->batch_timer, on_closed);
}

void
wh_consumer_destroy(wh_consumer_t *c)
{
    if (c == NULL)
        return;
    batch_free(c->open); /* unacked: JetStream redelivers them */
    free(c);
}
